/**
 * Koa on an `http2.createSecureServer({ allowHTTP1: true }, app.callback())` server:
 * websocket() routes and the app.ws stack served over HTTP/2 (RFC 8441 extended CONNECT),
 * HTTP/1.1 Upgrade on the same port, and middleware refusals as HTTP/2 responses.
 */
import { createSecureServer, connect as h2connect, type IncomingHttpHeaders } from 'node:http2';
import type { AddressInfo } from 'node:net';
import Router from '@koa/router';
import type { ClientOptions } from '@wskit/core';
import { type KoaWithWs, koaWs, websocket } from '@wskit/koa';
import Koa from 'koa';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  cleanup,
  generateCert,
  onCleanup,
  open,
  refused,
  removeCert,
  type TestCert,
} from '../../../test/support/clients.js';

afterEach(cleanup);

let cert: TestCert;
beforeAll(() => {
  cert = generateCert();
});
afterAll(() => removeCert(cert));

async function startH2(app: KoaWithWs<Koa>): Promise<string> {
  const server = createSecureServer({ key: cert.key, cert: cert.cert, allowHTTP1: true }, app.callback());
  app.ws.attach(server);
  onCleanup(() => new Promise((r) => server.close(r)));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `wss://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const h2 = (): ClientOptions => ({ http2: true, tls: { ca: cert.cert } });

async function rawConnect(url: string, path: string): Promise<IncomingHttpHeaders> {
  const session = h2connect(url.replace('wss:', 'https:'), { ca: cert.cert });
  onCleanup(() => session.destroy());
  await new Promise((resolve) => session.once('remoteSettings', resolve));
  const stream = session.request(
    { ':method': 'CONNECT', ':protocol': 'websocket', ':path': path, 'sec-websocket-version': '13' },
    { endStream: false },
  );
  stream.on('error', () => {});
  return new Promise((resolve) => stream.once('response', resolve));
}

describe('@wskit/koa over HTTP/2', () => {
  it('serves @koa/router websocket() routes over h2 and HTTP/1.1 on one port', async () => {
    const app = koaWs(new Koa());
    const methods: string[] = [];
    app.use(async (ctx, next) => {
      methods.push(`${ctx.method} ${ctx.req.httpVersion}`);
      await next();
    });
    const router = new Router();
    router.get(
      '/chat/:room',
      websocket(async (ws, ctx) => {
        await ws.send(`room=${ctx.params.room} via ${ws.transport}`);
        for await (const m of ws) await ws.send(m.data, { binary: m.type === 'binary' });
      }),
    );
    app.use(router.routes());
    const url = await startH2(app);

    const ws = await open(`${url}/chat/42`, h2());
    expect(ws.transport).toBe('h2');
    expect((await ws.receive())?.text()).toBe('room=42 via h2');
    await ws.send(Buffer.from([1, 2, 3]));
    const echoed = await ws.receive();
    expect(echoed?.type).toBe('binary');
    expect([...(echoed?.data ?? [])]).toEqual([1, 2, 3]);
    expect(methods).toEqual(['GET 2.0']);

    const h1 = await open(`${url}/chat/7`, { tls: { ca: cert.cert } });
    expect(h1.transport).toBe('http/1.1');
    expect((await h1.receive())?.text()).toBe('room=7 via http/1.1');
  });

  it('middleware refusals and Koa 404 arrive as HTTP/2 statuses', async () => {
    const app = koaWs(new Koa());
    app.use(async (ctx, next) => {
      if (ctx.path === '/x' && ctx.get('authorization') !== 'Bearer ok') {
        ctx.status = 401;
        ctx.set('WWW-Authenticate', 'Bearer');
        ctx.body = 'login first';
        return;
      }
      await next();
    });
    const router = new Router();
    router.get(
      '/x',
      websocket(async (ws) => {
        await ws.send('welcome');
      }),
    );
    app.use(router.routes());
    const url = await startH2(app);

    const res = (await refused(`${url}/x`, h2())).response;
    expect(res?.status).toBe(401);
    expect(res?.headers['www-authenticate']).toBe('Bearer');
    expect(res?.body).toBe('login first');
    expect((await rawConnect(url, '/x'))[':status']).toBe(401);
    expect((await rawConnect(url, '/nowhere'))[':status']).toBe(404);

    const ws = await open(`${url}/x`, { ...h2(), headers: { Authorization: 'Bearer ok' } });
    expect(ws.transport).toBe('h2');
    expect((await ws.receive())?.text()).toBe('welcome');
  });

  it('runs the app.ws stack over h2, and an accessDenied hook answers with its status', async () => {
    const app = koaWs(new Koa(), {
      acceptConnection: (req) => req.headers['x-key'] === 'k',
      accessDenied: (_req, reply) => reply(418, 'no key'),
    });
    app.ws.use(async (ctx) => {
      await ctx.websocket!.send(`stack:${ctx.path}`);
    });
    const url = await startH2(app);
    const res = (await refused(`${url}/s`, h2())).response;
    expect(res?.status).toBe(418);
    expect(res?.body).toBe('no key');
    const ws = await open(`${url}/s`, { ...h2(), headers: { 'X-Key': 'k' } });
    expect((await ws.receive())?.text()).toBe('stack:/s');
  });
});
