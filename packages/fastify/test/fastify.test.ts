import { HandshakeError } from '@wskit/core';
import { originGuard, wsPlugin } from '@wskit/fastify';
import Fastify, { type FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import {
  cleanup,
  exchangeAll,
  expectRefusal,
  onCleanup,
  open,
  track,
} from '../../../test/support/clients.js';
import { rawExchange, upgradeRequest } from '../../core/test/node/util.js';

afterEach(cleanup);

async function build(options: Parameters<typeof wsPlugin>[1] = {}): Promise<FastifyInstance> {
  const app = Fastify({ logger: false });
  onCleanup(() => app.close());
  await app.register(wsPlugin, options);
  return app;
}

async function listen(app: FastifyInstance): Promise<string> {
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('no address');
  return `ws://127.0.0.1:${address.port}`;
}

describe('@wskit/fastify', () => {
  it('serves { websocket: true } routes with params and query', async () => {
    const app = await build();
    app.get<{ Params: { room: string }; Querystring: { who: string } }>(
      '/chat/:room',
      { websocket: true },
      async (socket, req) => {
        await socket.send(`${req.params.room}:${req.query.who}:${req.ws}`);
        for await (const m of socket) await socket.send(m.text().toUpperCase());
      },
    );
    const url = await listen(app);
    const ws = await open(`${url}/chat/7?who=ann`);
    expect((await ws.receive())?.text()).toBe('7:ann:true');
    await ws.send('hey');
    expect((await ws.receive())?.text()).toBe('HEY');
  });

  it('labels connections with the route pattern, prefixes included (stats, metrics)', async () => {
    const app = await build();
    app.get('/chat/:room', { websocket: true }, () => {});
    await app.register(
      async (child) => {
        child.get('/feed/*', { websocket: true }, () => {});
      },
      { prefix: '/v1' },
    );
    const url = await listen(app);
    for (const path of ['/chat/a', '/chat/b', '/v1/feed/x/y']) await open(`${url}${path}`);
    await expect.poll(() => app.websocketServer.clients.size).toBe(3);
    expect(app.websocketServer.stats().connectionsByRoute).toEqual({ '/chat/:room': 2, '/v1/feed/*': 1 });
  });

  it('works with fastify.route and serves HTTP and WebSocket on one route', async () => {
    const app = await build();
    app.route({
      method: 'GET',
      url: '/both',
      handler: async () => ({ via: 'http' }),
      wsHandler: async (socket) => {
        await socket.send('via ws');
      },
    });
    app.route({
      method: 'GET',
      url: '/ws-only',
      websocket: true,
      handler: async () => {},
    });
    const url = await listen(app);
    const res = await request(app.server).get('/both');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ via: 'http' });
    expect((await request(app.server).get('/ws-only')).status).toBe(426);
    const ws = await open(`${url}/both`);
    expect((await ws.receive())?.text()).toBe('via ws');
  });

  it('runs onRequest, preValidation and preHandler hooks on the upgrade, which can refuse it', async () => {
    const app = await build();
    const order: string[] = [];
    app.addHook('onRequest', async (req) => {
      order.push(`onRequest:${req.ws}`);
    });
    app.addHook('preValidation', async () => {
      order.push('preValidation');
    });
    app.addHook('preHandler', async (req, reply) => {
      order.push('preHandler');
      if (req.headers.authorization !== 'Bearer ok') {
        await reply.code(401).header('WWW-Authenticate', 'Bearer').send({ error: 'login first' });
      }
    });
    app.get('/secure', { websocket: true }, async (socket) => {
      order.push('handler');
      await socket.send('in');
    });
    const url = await listen(app);
    const res = await expectRefusal(`${url}/secure`);
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toBe('Bearer');
    expect(JSON.parse(res.body)).toEqual({ error: 'login first' });
    expect(order).toEqual(['onRequest:true', 'preValidation', 'preHandler']);

    order.length = 0;
    const ws = await open(`${url}/secure`, { headers: { Authorization: 'Bearer ok' } });
    expect((await ws.receive())?.text()).toBe('in');
    expect(order).toEqual(['onRequest:true', 'preValidation', 'preHandler', 'handler']);
  });

  it('gives an unmatched websocket path Fastify 404, and a hook error Fastify 500', async () => {
    const app = await build();
    app.get('/ok', { websocket: true }, () => {});
    app.get(
      '/boom',
      {
        websocket: true,
        onRequest: async () => {
          throw new Error('broken hook');
        },
      },
      () => {},
    );
    const url = await listen(app);
    const missing = await expectRefusal(`${url}/missing`);
    expect(missing.status).toBe(404);
    expect(JSON.parse(missing.body)).toMatchObject({ statusCode: 404 });
    const boom = await expectRefusal(`${url}/boom`);
    expect(boom.status).toBe(500);
    expect(JSON.parse(boom.body)).toMatchObject({ message: 'broken hook' });
  });

  it('respects plugin encapsulation: a child context route sees its decorators and hooks', async () => {
    const app = await build();
    await app.register(async (child) => {
      child.decorate('greeting', 'hello from child');
      child.addHook('onRequest', async (req) => {
        (req as unknown as { tag: string }).tag = 'child-hook';
      });
      child.get('/child', { websocket: true }, async function (socket, req) {
        const greeting = (this as unknown as { greeting: string }).greeting;
        await socket.send(`${greeting}|${(req as unknown as { tag: string }).tag}`);
      });
    });
    app.get('/parent', { websocket: true }, async function (socket, req) {
      const has = (this as unknown as { hasDecorator(n: string): boolean }).hasDecorator('greeting');
      await socket.send(`${has}|${(req as unknown as { tag?: string }).tag ?? 'none'}`);
    });
    const url = await listen(app);
    const child = await open(`${url}/child`);
    expect((await child.receive())?.text()).toBe('hello from child|child-hook');
    const parent = await open(`${url}/parent`);
    expect((await parent.receive())?.text()).toBe('false|none');
  });

  it('checks origins for the app, per route (wsOptions) and with originGuard', async () => {
    const app = await build({ origins: ['https://app.example'] });
    app.get('/app', { websocket: true }, async (s) => {
      await s.send('ok');
    });
    app.get('/route', { websocket: true, wsOptions: { origins: ['https://route.example'] } }, async (s) => {
      await s.send('ok');
    });
    app.get('/guard', { websocket: true, onRequest: originGuard(['https://guard.example']) }, async (s) => {
      await s.send('ok');
    });
    const url = await listen(app);
    expect((await expectRefusal(`${url}/app`, { origin: 'https://evil.example' })).status).toBe(403);
    expect((await (await open(`${url}/app`, { origin: 'https://app.example' })).receive())?.text()).toBe(
      'ok',
    );
    expect((await expectRefusal(`${url}/route`, { origin: 'https://app.example' })).status).toBe(403);
    expect((await (await open(`${url}/route`, { origin: 'https://route.example' })).receive())?.text()).toBe(
      'ok',
    );
    const guarded = await expectRefusal(`${url}/guard`, { origin: 'https://evil.example' });
    expect(guarded.status).toBe(403);
    expect(guarded.body).toBe('Access denied');
  });

  it("lets a route's originGuard() replace the app-level origin check for that route", async () => {
    const app = await build({ origins: ['https://app.example'] });
    app.get<{ Params: { id: string } }>(
      '/admin/:id',
      { websocket: true, onRequest: originGuard(['https://partner.example']) },
      async (s, req) => {
        await s.send(`admin ${req.params.id}`);
      },
    );
    app.get('/own', { websocket: true }, async (s) => {
      await s.send('own');
    });
    const url = await listen(app);
    const partner = await open(`${url}/admin/7`, { origin: 'https://partner.example' });
    expect((await partner.receive())?.text()).toBe('admin 7');
    expect((await (await open(`${url}/admin/8`)).receive())?.text()).toBe('admin 8'); // no Origin
    // Replaced, not added to: the app's own origin is not on this route's list.
    expect((await expectRefusal(`${url}/admin/7`, { origin: 'https://app.example' })).status).toBe(403);
    expect((await expectRefusal(`${url}/admin/7`, { origin: 'https://evil.example' })).status).toBe(403);
    // Other routes keep the app-level check.
    expect((await (await open(`${url}/own`, { origin: 'https://app.example' })).receive())?.text()).toBe(
      'own',
    );
    expect((await expectRefusal(`${url}/own`, { origin: 'https://partner.example' })).status).toBe(403);
  });

  it('drops an upgrade that a hook never answers after handshakeTimeout', async () => {
    const app = await build({ handshakeTimeout: 200 });
    app.get('/stall', { websocket: true, onRequest: () => new Promise<void>(() => {}) }, async (s) => {
      await s.send('never');
    });
    const url = await listen(app);
    const port = Number(new URL(url).port);
    const { text } = upgradeRequest(`127.0.0.1:${port}`, { path: '/stall' });
    await expect(rawExchange(port, text, 5000)).rejects.toThrow(/closed without a complete HTTP answer/);
  });

  it('acceptConnection and accessDenied hooks', async () => {
    const app = await build({
      acceptConnection: (req) => req.headers['x-key'] === 'k',
      accessDenied: (_req, reply) => reply(401, 'key please'),
    });
    app.get('/k', { websocket: true }, async (s) => {
      await s.send('in');
    });
    const url = await listen(app);
    const res = await expectRefusal(`${url}/k`);
    expect(res.status).toBe(401);
    expect(res.body.trim()).toBe('key please');
    expect((await (await open(`${url}/k`, { headers: { 'X-Key': 'k' } })).receive())?.text()).toBe('in');
  });

  it('closes with 1011 when the handler throws and logs through the Fastify logger', async () => {
    const lines: string[] = [];
    const app = Fastify({
      logger: { level: 'error', stream: { write: (line: string) => lines.push(line) } },
    });
    onCleanup(() => app.close());
    await app.register(wsPlugin);
    app.get('/bad', { websocket: true }, async () => {
      throw new Error('handler exploded');
    });
    const url = await listen(app);
    const ws = await open(`${url}/bad`);
    expect((await ws.closed).code).toBe(1011);
    expect(lines.some((l) => l.includes('handler exploded'))).toBe(true);
  });

  it('fastify.close() closes every socket with 1001', async () => {
    const app = await build();
    app.get('/idle', { websocket: true }, () => {});
    const url = await listen(app);
    const a = await open(`${url}/idle`);
    const b = await open(`${url}/idle`);
    await app.close();
    expect((await a.closed).code).toBe(1001);
    expect((await b.closed).code).toBe(1001);
    expect(app.websocketServer.clients.size).toBe(0);
  });

  it('injectWS opens a connection without a listening port', async () => {
    const app = await build();
    app.get('/echo', { websocket: true }, async (socket) => {
      for await (const m of socket) await socket.send(m.data, { binary: m.type === 'binary' });
    });
    await app.ready();
    const ws = await app.injectWS('/echo');
    track(ws);
    await ws.send('in memory');
    expect((await ws.receive())?.text()).toBe('in memory');
    await ws.send(Buffer.from([1, 2, 3]));
    const bin = await ws.receive();
    expect(bin?.type).toBe('binary');
    expect([...(bin?.data ?? [])]).toEqual([1, 2, 3]);
    expect(app.server.listening).toBe(false);
    const refused = await app.injectWS('/nowhere').catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(HandshakeError);
    expect((refused as HandshakeError).response?.status).toBe(404);
  });

  it('works when registered inside another plugin with fastify-plugin', async () => {
    const app = Fastify();
    onCleanup(() => app.close());
    await app.register(
      fp(async (inner) => {
        await inner.register(wsPlugin);
      }),
    );
    app.get('/x', { websocket: true }, async (s) => {
      await s.send('nested');
    });
    await app.ready();
    const ws = await app.injectWS('/x');
    track(ws);
    expect((await ws.receive())?.text()).toBe('nested');
  });

  it('serves many concurrent clients', async () => {
    const app = await build();
    app.get<{ Params: { id: string } }>('/n/:id', { websocket: true }, async (socket, req) => {
      for await (const m of socket) await socket.send(`${req.params.id}:${m.text()}`);
    });
    const url = await listen(app);
    const clients = await Promise.all(Array.from({ length: 50 }, (_, i) => open(`${url}/n/${i}`)));
    const replies = await exchangeAll(clients, (i) => `m${i}`);
    expect(replies).toEqual(clients.map((_, i) => `${i}:m${i}`));
  });
});
