import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Router from '@koa/router';
import { koaWs, originGuard, websocket } from '@wskit/koa';
import Koa from 'koa';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, exchangeAll, expectRefusal, onCleanup, open } from '../../../test/support/clients.js';
import { rawExchange, upgradeRequest } from '../../core/test/node/util.js';

afterEach(cleanup);

async function start(app: Koa): Promise<{ url: string; server: Server }> {
  const server = app.listen(0, '127.0.0.1');
  onCleanup(() => new Promise((r) => server.close(r)));
  await new Promise((r) => server.once('listening', r));
  const { port } = server.address() as AddressInfo;
  return { url: `ws://127.0.0.1:${port}`, server };
}

describe('@wskit/koa', () => {
  it('runs the app.ws stack with ctx.websocket after app middleware, in order', async () => {
    const order: string[] = [];
    const app = koaWs(new Koa());
    app.use(async (ctx, next) => {
      order.push(`app:${ctx.path}`);
      await next();
    });
    app.ws.use(async (ctx, next) => {
      order.push('ws1');
      ctx.state.tag = 'x';
      await next();
    });
    app.ws.use(async (ctx) => {
      order.push('ws2');
      const ws = ctx.websocket!;
      const msg = await ws.receive();
      await ws.send(`${ctx.state.tag}:${msg?.text()}:${ctx.query.q}`);
    });
    const { url } = await start(app);
    const ws = await open(`${url}/anything?q=1`);
    await ws.send('hi');
    expect((await ws.receive())?.text()).toBe('x:hi:1');
    expect(order).toEqual(['app:/anything', 'ws1', 'ws2']);
  });

  it('serves @koa/router routes with websocket() and ctx.params', async () => {
    const app = koaWs(new Koa());
    const router = new Router();
    router.get(
      '/chat/:room',
      websocket(async (ws, ctx) => {
        await ws.send(`room=${ctx.params.room}`);
      }),
    );
    app.use(router.routes());
    const { url } = await start(app);
    const ws = await open(`${url}/chat/42`);
    expect((await ws.receive())?.text()).toBe('room=42');
  });

  it("labels connections with @koa/router's route pattern (stats, metrics)", async () => {
    const app = koaWs(new Koa());
    const router = new Router();
    router.get(
      '/chat/:room',
      websocket(() => {}),
    );
    app.use(router.routes());
    app.ws.use(() => {}); // app.ws connections have no router pattern: ''
    const { url } = await start(app);
    for (const path of ['/chat/1', '/chat/2', '/elsewhere']) await open(`${url}${path}`);
    await expect.poll(() => app.ws.wss.clients.size).toBe(3);
    expect(app.ws.wss.stats().connectionsByRoute).toEqual({ '/chat/:room': 2, '': 1 });
  });

  it('a route serves plain HTTP and WebSocket on the same path', async () => {
    const app = koaWs(new Koa());
    const router = new Router();
    router.get(
      '/live',
      websocket(async (ws) => {
        await ws.send('ws');
      }),
      async (ctx) => {
        ctx.body = 'http';
      },
    );
    router.get(
      '/only-ws',
      websocket(() => {}),
    );
    app.use(router.routes());
    const { url, server } = await start(app);
    const res = await request(server).get('/live');
    expect(res.status).toBe(200);
    expect(res.text).toBe('http');
    const plain = await request(server).get('/only-ws');
    expect(plain.status).toBe(426);
    const ws = await open(`${url}/live`);
    expect((await ws.receive())?.text()).toBe('ws');
  });

  it('app middleware can refuse the upgrade with a real HTTP answer', async () => {
    const app = koaWs(new Koa());
    app.use(async (ctx, next) => {
      if (ctx.get('authorization') !== 'Bearer ok') {
        ctx.status = 401;
        ctx.set('WWW-Authenticate', 'Bearer');
        ctx.body = 'login first';
        return;
      }
      await next();
    });
    app.ws.use(async (ctx) => {
      await ctx.websocket!.send('welcome');
    });
    const { url } = await start(app);
    const res = await expectRefusal(`${url}/x`);
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toBe('Bearer');
    expect(res.body).toBe('login first');
    const ws = await open(`${url}/x`, { headers: { Authorization: 'Bearer ok' } });
    expect((await ws.receive())?.text()).toBe('welcome');
  });

  it('an unmatched upgrade gets Koa 404; a middleware error gets Koa 500', async () => {
    const app = koaWs(new Koa());
    app.silent = true;
    const router = new Router();
    router.get(
      '/ok',
      websocket(() => {}),
    );
    router.get('/boom', async () => {
      throw new Error('kaput');
    });
    app.use(router.routes());
    const { url } = await start(app);
    const notFound = await expectRefusal(`${url}/nope`);
    expect(notFound.status).toBe(404);
    expect(notFound.body).toBe('Not Found');
    const boom = await expectRefusal(`${url}/boom`);
    expect(boom.status).toBe(500);
  });

  it('checks origins at the app level and per route, and originGuard works as middleware', async () => {
    const app = koaWs(new Koa(), { origins: ['https://app.example'] });
    const router = new Router();
    router.get(
      '/app-level',
      websocket(async (ws) => {
        await ws.send('ok');
      }),
    );
    router.get(
      '/route-level',
      websocket(
        async (ws) => {
          await ws.send('ok');
        },
        { origins: ['https://other.example'] },
      ),
    );
    router.get(
      '/guarded',
      originGuard(['https://guard.example']),
      websocket(async (ws) => {
        await ws.send('ok');
      }),
    );
    app.use(router.routes());
    const { url } = await start(app);

    expect((await expectRefusal(`${url}/app-level`, { origin: 'https://evil.example' })).status).toBe(403);
    const ok = await open(`${url}/app-level`, { origin: 'https://app.example' });
    expect((await ok.receive())?.text()).toBe('ok');

    expect((await expectRefusal(`${url}/route-level`, { origin: 'https://app.example' })).status).toBe(403);
    const ok2 = await open(`${url}/route-level`, { origin: 'https://other.example' });
    expect((await ok2.receive())?.text()).toBe('ok');

    const denied = await expectRefusal(`${url}/guarded`, { origin: 'https://evil.example' });
    expect(denied.status).toBe(403);
    expect(denied.body).toBe('Access denied');
  });

  it("lets a route's originGuard() replace the app-level origin check for that route", async () => {
    const app = koaWs(new Koa(), { origins: ['https://app.example'] });
    const router = new Router();
    router.get(
      '/chat/:room',
      originGuard(['https://partner.example']),
      websocket(async (ws, ctx) => {
        await ws.send(`room=${ctx.params.room}`);
      }),
    );
    router.get(
      '/own',
      websocket(async (ws) => {
        await ws.send('own');
      }),
    );
    app.use(router.routes());
    const { url } = await start(app);

    const partner = await open(`${url}/chat/7`, { origin: 'https://partner.example' });
    expect((await partner.receive())?.text()).toBe('room=7');
    expect((await (await open(`${url}/chat/8`)).receive())?.text()).toBe('room=8'); // no Origin
    // Replaced, not added to: the app's own origin is not on this route's list.
    expect((await expectRefusal(`${url}/chat/7`, { origin: 'https://app.example' })).status).toBe(403);
    expect((await expectRefusal(`${url}/chat/7`, { origin: 'https://evil.example' })).status).toBe(403);
    // Other routes keep the app-level check.
    expect((await (await open(`${url}/own`, { origin: 'https://app.example' })).receive())?.text()).toBe(
      'own',
    );
    expect((await expectRefusal(`${url}/own`, { origin: 'https://partner.example' })).status).toBe(403);
  });

  it('drops an upgrade that the middleware never answers after handshakeTimeout', async () => {
    const app = koaWs(new Koa(), { handshakeTimeout: 200 });
    app.use(() => new Promise<void>(() => {})); // never settles
    app.ws.use(async (ctx) => {
      await ctx.websocket!.send('never');
    });
    const { url } = await start(app);
    const port = Number(new URL(url).port);
    const { text } = upgradeRequest(`127.0.0.1:${port}`, { path: '/stall' });
    await expect(rawExchange(port, text, 5000)).rejects.toThrow(/closed without a complete HTTP answer/);
  });

  it('acceptConnection / accessDenied hooks per app', async () => {
    const app = koaWs(new Koa(), {
      acceptConnection: async (req) => req.query.get('token') === 'good',
      accessDenied: (_req, reply) => reply(401, 'bad token', { 'X-Why': 'token' }),
    });
    app.ws.use(async (ctx) => {
      await ctx.websocket!.send('in');
    });
    const { url } = await start(app);
    const res = await expectRefusal(`${url}/?token=bad`);
    expect(res.status).toBe(401);
    expect(res.headers['x-why']).toBe('token');
    expect(res.body.trim()).toBe('bad token');
    const ws = await open(`${url}/?token=good`);
    expect((await ws.receive())?.text()).toBe('in');
  });

  it('closes with 1011 when a handler throws, and reports it to the logger', async () => {
    const errors: unknown[] = [];
    const logger = { debug() {}, info() {}, warn() {}, error: (o: unknown) => errors.push(o) };
    const app = koaWs(new Koa(), { logger });
    const koaErrors: unknown[] = [];
    app.on('error', (err: unknown) => koaErrors.push(err));
    app.ws.use(async () => {
      throw new Error('handler failed');
    });
    const router = new Router();
    router.get(
      '/sync',
      websocket(() => {
        throw new Error('sync handler failed');
      }),
    );
    app.use(router.routes());
    const { url } = await start(app);
    const ws = await open(url);
    const info = await ws.closed;
    expect(info.code).toBe(1011);
    expect(errors.length).toBeGreaterThan(0);
    expect((koaErrors[0] as Error).message).toBe('handler failed'); // Koa's own error channel
    const sync = await open(`${url}/sync`);
    expect((await sync.closed).code).toBe(1011);
    expect((koaErrors[1] as Error).message).toBe('sync handler failed');
  });

  it('server.close() closes every WebSocket with 1001', async () => {
    const app = koaWs(new Koa());
    app.ws.use(() => {});
    const { url, server } = await start(app);
    const a = await open(url);
    const b = await open(url);
    const closed = new Promise((r) => server.close(r));
    expect((await a.closed).code).toBe(1001);
    expect((await b.closed).code).toBe(1001);
    await closed;
  });

  it('serves many concurrent clients', async () => {
    const app = koaWs(new Koa());
    const router = new Router();
    router.get(
      '/echo/:id',
      websocket(async (ws, ctx) => {
        for await (const m of ws) await ws.send(`${ctx.params.id}:${m.text()}`);
      }),
    );
    app.use(router.routes());
    const { url } = await start(app);
    const clients = await Promise.all(Array.from({ length: 50 }, (_, i) => open(`${url}/echo/${i}`)));
    const replies = await exchangeAll(clients, (i) => `m${i}`);
    expect(replies).toEqual(clients.map((_, i) => `${i}:m${i}`));
    expect(app.ws.wss.clients.size).toBe(50);
  });
});
