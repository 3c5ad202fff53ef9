/**
 * Fastify with `http2: true` (and `https` options): its WebSocket routes served over
 * HTTP/2 (RFC 8441 extended CONNECT) through the usual route definitions, HTTP/1.1
 * Upgrade on the same port (allowHTTP1), and refusals as HTTP/2 responses.
 */
import { connect as h2connect, type IncomingHttpHeaders } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { type ClientOptions, HandshakeError } from '@wskit/core';
import { wsPlugin } from '@wskit/fastify';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
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

async function buildH2(options: Parameters<typeof wsPlugin>[1] = {}): Promise<FastifyInstance> {
  const app = Fastify({
    logger: false,
    http2: true,
    https: { key: cert.key, cert: cert.cert, allowHTTP1: true },
  }) as unknown as FastifyInstance;
  onCleanup(() => app.close());
  await app.register(wsPlugin, options);
  return app;
}

async function listen(app: FastifyInstance): Promise<string> {
  await app.listen({ port: 0, host: '127.0.0.1' });
  return `wss://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
}

const h2 = (): ClientOptions => ({ http2: true, tls: { ca: cert.cert } });

/** The response HEADERS of a raw extended CONNECT (no WebSocket client involved). */
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

describe('@wskit/fastify over HTTP/2', () => {
  it('serves a { websocket: true } route over h2 with params, query and hooks', async () => {
    const app = await buildH2();
    const seen: string[] = [];
    app.addHook('onRequest', async (req) => {
      seen.push(`${req.method} ${req.raw.httpVersion} ${req.ws}`);
    });
    app.get<{ Params: { room: string }; Querystring: { who: string } }>(
      '/chat/:room',
      { websocket: true },
      async (socket, req) => {
        await socket.send(`${req.params.room}:${req.query.who}:${socket.transport}`);
        for await (const m of socket) await socket.send(m.text().toUpperCase());
      },
    );
    const url = await listen(app);
    const ws = await open(`${url}/chat/7?who=ann`, h2());
    expect(ws.transport).toBe('h2');
    expect((await ws.receive())?.text()).toBe('7:ann:h2');
    await ws.send('hey');
    expect((await ws.receive())?.text()).toBe('HEY');
    // RFC 8441 §5: the CONNECT is routed as the GET it stands for.
    expect(seen).toEqual(['GET 2.0 true']);

    // The same route over HTTP/1.1 Upgrade on the same port (allowHTTP1).
    const h1 = await open(`${url}/chat/8?who=bob`, { tls: { ca: cert.cert } });
    expect(h1.transport).toBe('http/1.1');
    expect((await h1.receive())?.text()).toBe('8:bob:http/1.1');
  });

  it('answers a hook refusal and an unmatched path with HTTP/2 statuses', async () => {
    const app = await buildH2();
    const preHandler = async (req: FastifyRequest, reply: FastifyReply) => {
      if (req.headers.authorization !== 'Bearer ok') {
        await reply.code(401).header('WWW-Authenticate', 'Bearer').send({ error: 'login first' });
      }
    };
    app.get('/secure', { websocket: true, preHandler }, async (socket) => {
      await socket.send('in');
    });
    const url = await listen(app);
    const err = await refused(`${url}/secure`, h2());
    expect(err).toBeInstanceOf(HandshakeError);
    expect(err.response?.status).toBe(401);
    expect(err.response?.headers['www-authenticate']).toBe('Bearer');
    expect(JSON.parse(err.response?.body ?? '')).toEqual({ error: 'login first' });
    // Seen by a raw HTTP/2 client: the :status of the stream's response HEADERS.
    expect((await rawConnect(url, '/secure'))[':status']).toBe(401);
    expect((await rawConnect(url, '/missing'))[':status']).toBe(404);

    const ws = await open(`${url}/secure`, { ...h2(), headers: { Authorization: 'Bearer ok' } });
    expect((await ws.receive())?.text()).toBe('in');
  });

  it('applies acceptConnection/accessDenied to h2 requests with their real headers', async () => {
    const headers: Array<Record<string, unknown>> = [];
    const app = await buildH2({
      acceptConnection: (req) => {
        headers.push({ ...req.headers });
        return req.headers['x-key'] === 'k';
      },
      accessDenied: (req, reply) => reply(403, `no key for ${req.host}`),
    });
    app.get('/k', { websocket: true }, async (s) => {
      await s.send('in');
    });
    const url = await listen(app);
    const res = (await refused(`${url}/k`, h2())).response;
    expect(res?.status).toBe(403);
    expect(res?.body).toBe(`no key for ${new URL(url).host}`);
    expect(headers[0]).toMatchObject({ ':method': 'CONNECT', ':protocol': 'websocket', ':path': '/k' });
    expect(headers[0]).not.toHaveProperty('upgrade');
    expect(headers[0]).not.toHaveProperty('sec-websocket-key');
    const ws = await open(`${url}/k`, { ...h2(), headers: { 'X-Key': 'k' } });
    expect((await ws.receive())?.text()).toBe('in');
  });

  it('fastify.close() closes h2 WebSockets with 1001', async () => {
    const app = await buildH2();
    app.get('/c', { websocket: true }, async (s) => {
      await s.send('open');
    });
    const url = await listen(app);
    const ws = await open(`${url}/c`, h2());
    expect((await ws.receive())?.text()).toBe('open');
    const closed = ws.closed;
    await app.close();
    expect(await closed).toMatchObject({ code: 1001, wasClean: true });
  });
});
