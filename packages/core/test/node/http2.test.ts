/**
 * WebSockets over HTTP/2 (RFC 8441): our client against our server over h2 (TLS) and h2c,
 * several WebSockets on one session, refusals as HTTP/2 responses, stream resets and
 * GOAWAY, per-stream flow control, and the client's 'auto' fallback to HTTP/1.1.
 */
import {
  type ClientHttp2Session,
  type ClientHttp2Stream,
  constants,
  createSecureServer,
  Http2ServerRequest,
  type Http2Session,
  connect as h2connect,
  type IncomingHttpHeaders,
  type ServerHttp2Stream,
} from 'node:http2';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import {
  type ClientOptions,
  connect,
  HandshakeError,
  type UpgradeRequest,
  type WebSocket,
  WebSocketServer,
} from '@wskit/core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  cleanup,
  echo,
  generateCert,
  HOST,
  onCleanup,
  removeCert,
  stopServer,
  type TestCert,
  track,
} from '../../../../test/support/clients.js';
import { nextConnection } from './util.js';

afterEach(cleanup);

let cert: TestCert;
beforeAll(() => {
  cert = generateCert();
});
afterAll(() => removeCert(cert));

const CLIENT: ClientOptions = { handshakeTimeout: 5000, pingInterval: 0 };

async function h2Server(secure: boolean, options: ConstructorParameters<typeof WebSocketServer>[0] = {}) {
  const requests: UpgradeRequest[] = [];
  const wss = new WebSocketServer({
    pingInterval: 0,
    ...(secure ? { tls: { cert: cert.cert, key: cert.key } } : {}),
    ...options,
  });
  wss.route('/echo', (ws, req) => {
    requests.push(req);
    return echo(ws, req);
  });
  const { port } = await wss.listen(0, HOST, { http2: true });
  onCleanup(() => stopServer(wss));
  const scheme = secure ? 'wss' : 'ws';
  return { wss, port, requests, url: `${scheme}://${HOST}:${port}` };
}

function tlsOptions(): ClientOptions {
  return { tls: { ca: cert.cert } };
}

async function roundTrip(ws: WebSocket, data: string | Buffer): Promise<{ type: string; data: Buffer }> {
  await ws.send(data);
  const msg = await ws.receive();
  if (msg === null) throw new Error('closed before the echo');
  return { type: msg.type, data: msg.data };
}

/** A raw HTTP/2 session to the server, closed after the test. */
async function rawSession(port: number, secure: boolean): Promise<ClientHttp2Session> {
  const session = h2connect(
    `${secure ? 'https' : 'http'}://${HOST}:${port}`,
    secure ? { ca: cert.cert } : {},
  );
  onCleanup(() => session.destroy());
  await new Promise<void>((resolve, reject) => {
    session.once('remoteSettings', () => resolve());
    session.once('error', reject);
  });
  return session;
}

function extendedConnect(
  session: ClientHttp2Session,
  port: number,
  extra: Record<string, string> = {},
): ClientHttp2Stream {
  return session.request(
    {
      ':method': 'CONNECT',
      ':protocol': 'websocket',
      ':scheme': 'http',
      ':path': '/echo',
      ':authority': `${HOST}:${port}`,
      'sec-websocket-version': '13',
      ...extra,
    },
    { endStream: false },
  );
}

function responseOf(stream: ClientHttp2Stream): Promise<{ headers: IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    let headers: IncomingHttpHeaders = {};
    let body = '';
    stream.on('response', (h) => {
      headers = h;
    });
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      body += chunk;
    });
    stream.on('close', () => resolve({ headers, body }));
    stream.on('error', reject);
  });
}

/** A masked client frame (RFC 6455 §5.3), for raw streams. */
function clientFrame(opcode: number, payload: Buffer): Buffer {
  const mask = Buffer.from([1, 2, 3, 4]);
  const masked = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!));
  if (payload.length >= 126) throw new Error('short frames only');
  return Buffer.concat([Buffer.from([0x80 | opcode, 0x80 | payload.length]), mask, masked]);
}

/** The code of the connection's 'close' event. */
const closeEvent = (ws: WebSocket) => new Promise<number>((resolve) => ws.once('close', resolve));

describe.each([
  ['h2 over TLS', true],
  ['h2c (prior knowledge)', false],
])('our client and server over %s', (_name, secure) => {
  it('echoes text and binary on a stream, both sides report transport h2', async () => {
    const srv = await h2Server(secure);
    const server = nextConnection((ws, req) => {
      srv.requests.push(req);
      void echo(ws, req);
    });
    srv.wss.route('/mine', server.handler);
    const ws = track(await connect(`${srv.url}/mine?x=1`, { ...CLIENT, ...tlsOptions(), http2: true }));
    const peer = await server.ws;
    expect(ws.transport).toBe('h2');
    expect(peer.transport).toBe('h2');
    expect(peer.remoteAddress).toBe(HOST);
    expect(peer.remotePort).toBe(ws.localPort);
    expect(peer.path).toBe('/mine');
    expect(srv.requests[0]?.url).toBe('/mine?x=1');
    expect(srv.requests[0]?.host).toBe(`${HOST}:${srv.port}`);
    // Hooks and handlers see the request as it arrived: no HTTP/1.1 stand-ins.
    expect(srv.requests[0]?.raw).toBeInstanceOf(Http2ServerRequest);
    expect(srv.requests[0]?.headers[':method']).toBe('CONNECT');
    expect(srv.requests[0]?.headers[':protocol']).toBe('websocket');
    for (const name of ['upgrade', 'connection', 'sec-websocket-key'])
      expect(name in (srv.requests[0]?.headers ?? {})).toBe(false);
    expect(await roundTrip(ws, 'héllo')).toEqual({ type: 'text', data: Buffer.from('héllo') });
    const bytes = Buffer.from([0, 1, 2, 255]);
    expect(await roundTrip(ws, bytes)).toEqual({ type: 'binary', data: bytes });
    const big = Buffer.alloc(300_000, 7); // larger than the default 64 KiB stream window
    expect((await roundTrip(ws, big)).data.equals(big)).toBe(true);
    const peerClosed = closeEvent(peer);
    expect(await ws.close(1000, 'bye')).toMatchObject({ code: 1000, wasClean: true });
    expect(await peerClosed).toBe(1000);
    expect(srv.wss.clients.size).toBe(0);
  });

  it('both sides answer pings (auto-pong) and keep the auto-ping stage', async () => {
    const srv = await h2Server(secure);
    const server = nextConnection((ws, req) => void echo(ws, req));
    srv.wss.route('/ping', server.handler);
    const ws = track(await connect(`${srv.url}/ping`, { ...CLIENT, ...tlsOptions(), http2: true }));
    const peer = await server.ws;
    // RFC 6455 §5.5.2: a Ping is answered with a Pong, over HTTP/2 as over HTTP/1.1.
    expect(await peer.ping('from server')).toBeGreaterThanOrEqual(0);
    expect(await ws.ping('from client')).toBeGreaterThanOrEqual(0);
    expect(ws.stages.map((s) => s.name)).toContain('auto-pong');
    expect(peer.stages.map((s) => s.name)).toContain('auto-pong');
  }, 10_000);

  it('negotiates a subprotocol and permessage-deflate', async () => {
    const srv = await h2Server(secure, { protocols: ['chat.v2', 'chat.v1'], perMessageDeflate: true });
    const ws = track(
      await connect(`${srv.url}/echo`, {
        ...CLIENT,
        ...tlsOptions(),
        http2: true,
        protocols: ['chat.v1', 'chat.v2'],
        perMessageDeflate: true,
      }),
    );
    expect(ws.protocol).toBe('chat.v2');
    expect(ws.extensions).toMatch(/^permessage-deflate/);
    expect(srv.requests[0]?.protocols).toEqual(['chat.v1', 'chat.v2']);
    const text = 'compress me '.repeat(1000);
    expect((await roundTrip(ws, text)).data.toString()).toBe(text);
  });

  it('answers refusals as HTTP/2 responses', async () => {
    const srv = await h2Server(secure, {
      acceptConnection: (req) => req.headers.authorization === 'Bearer ok',
      accessDenied: (_req, reply) => reply(401, 'who are you?', { 'www-authenticate': 'Bearer' }),
    });
    const opts = { ...CLIENT, ...tlsOptions(), http2: true as const };
    const missing = await connect(`${srv.url}/nowhere`, opts).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(HandshakeError);
    expect((missing as HandshakeError).response).toMatchObject({ status: 404 });
    expect((missing as HandshakeError).response?.body).toContain('No WebSocket route for /nowhere');
    const denied = await connect(`${srv.url}/echo`, opts).catch((e: unknown) => e);
    expect((denied as HandshakeError).response).toMatchObject({
      status: 401,
      body: 'who are you?',
      headers: { 'www-authenticate': 'Bearer' },
    });
    const ws = track(await connect(`${srv.url}/echo`, { ...opts, headers: { Authorization: 'Bearer ok' } }));
    expect(ws.transport).toBe('h2');
  });

  it.each([
    ['the client', 4000],
    ['the server', 4001],
  ])('%s closing: both Close frames, then the server ends the stream', async (who, code) => {
    const srv = await h2Server(secure);
    const server = nextConnection();
    srv.wss.route('/close', server.handler);
    const streams: ServerHttp2Stream[] = [];
    srv.wss.server?.on('stream', (s: ServerHttp2Stream) => streams.push(s));
    const ws = track(await connect(`${srv.url}/close`, { ...CLIENT, ...tlsOptions(), http2: true }));
    const peer = await server.ws;
    const stream = streams[0]!;
    // RFC 6455 §7.1.1 over RFC 8441 §5: after both Close frames the server ends its side
    // (END_STREAM, from the protocol's END_OF_STREAM) before the stream closes.
    const events: string[] = [];
    stream.once('finish', () => events.push('server END_STREAM'));
    stream.once('close', () => events.push('stream closed'));
    const [initiator, other] = who === 'the client' ? [ws, peer] : [peer, ws];
    const otherClosed = other.closed;
    expect(await initiator.close(code, 'done')).toMatchObject({ code, wasClean: true });
    expect(await otherClosed).toMatchObject({ code, reason: 'done', wasClean: true });
    await new Promise((resolve) => (stream.closed ? resolve(null) : stream.once('close', resolve)));
    expect(events).toEqual(['server END_STREAM', 'stream closed']);
    expect(stream.rstCode).toBe(constants.NGHTTP2_NO_ERROR);
  });

  it('a raw peer that never ends its side: END_STREAM, then RST_STREAM(NO_ERROR)', async () => {
    const srv = await h2Server(secure);
    const server = nextConnection();
    srv.wss.route('/raw', server.handler);
    const session = await rawSession(srv.port, secure);
    const stream = extendedConnect(session, srv.port, {
      ':path': '/raw',
      ':scheme': secure ? 'https' : 'http',
    });
    const peer = await server.ws;
    const peerClosed = peer.closed;
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    const ended = new Promise((resolve) => stream.once('end', resolve));
    const closed = new Promise((resolve) => stream.once('close', resolve));
    stream.write(clientFrame(0x8, Buffer.from([0x03, 0xe8]))); // Close 1000, our side left open
    await ended;
    expect(Buffer.concat(chunks)).toEqual(Buffer.from([0x88, 2, 0x03, 0xe8]));
    await closed;
    expect(stream.rstCode).toBe(constants.NGHTTP2_NO_ERROR);
    expect(await peerClosed).toMatchObject({ code: 1000, wasClean: true });
  });

  it('the client sees 1006 when the server session sends an error GOAWAY', async () => {
    const srv = await h2Server(secure);
    const sessions: Http2Session[] = [];
    srv.wss.server?.on('session', (s: Http2Session) => sessions.push(s));
    const ws = track(await connect(`${srv.url}/echo`, { ...CLIENT, ...tlsOptions(), http2: true }));
    const closed = ws.closed;
    sessions[0]!.goaway(constants.NGHTTP2_INTERNAL_ERROR);
    sessions[0]!.destroy();
    expect(await closed).toMatchObject({ code: 1006, wasClean: false });
  });
});

describe('the server side of RFC 8441', () => {
  it('advertises SETTINGS_ENABLE_CONNECT_PROTOCOL and validates the extended CONNECT', async () => {
    const srv = await h2Server(false);
    const session = await rawSession(srv.port, false);
    expect(session.remoteSettings.enableConnectProtocol).toBe(true);

    // RFC 6455 §4.4 over HTTP/2: 400 (no 426 without Upgrade) and the versions spoken.
    const badVersion = await responseOf(extendedConnect(session, srv.port, { 'sec-websocket-version': '8' }));
    expect(badVersion.headers[':status']).toBe(400);
    expect(badVersion.headers['sec-websocket-version']).toBe('13');

    const unknown = await responseOf(extendedConnect(session, srv.port, { ':protocol': 'webtransport' }));
    expect(unknown.headers[':status']).toBe(501);

    const missingRoute = await responseOf(extendedConnect(session, srv.port, { ':path': '/none' }));
    expect(missingRoute.headers[':status']).toBe(404);

    // A 200 without Sec-WebSocket-Accept (RFC 8441 §5), then frames on the stream.
    const stream = extendedConnect(session, srv.port);
    const headers = await new Promise<IncomingHttpHeaders>((resolve) => stream.once('response', resolve));
    expect(headers[':status']).toBe(200);
    expect(headers['sec-websocket-accept']).toBeUndefined();
    expect(headers.upgrade).toBeUndefined();
    stream.write(clientFrame(0x1, Buffer.from('hi')));
    const echoed = await new Promise<Buffer>((resolve) => stream.once('data', resolve));
    expect(echoed).toEqual(Buffer.from([0x81, 2, 0x68, 0x69]));
  });

  it('closes with 1006 when the client resets the stream', async () => {
    const srv = await h2Server(false);
    const server = nextConnection();
    srv.wss.route('/reset', server.handler);
    const session = await rawSession(srv.port, false);
    const stream = extendedConnect(session, srv.port, { ':path': '/reset' });
    const peer = await server.ws;
    const closed = closeEvent(peer);
    stream.close(constants.NGHTTP2_CANCEL);
    expect(await closed).toBe(1006);
  });

  it('closes every WebSocket of a session with 1006 on an error GOAWAY', async () => {
    const srv = await h2Server(false);
    const first = nextConnection();
    const second = nextConnection();
    srv.wss.route('/a', first.handler).route('/b', second.handler);
    const session = await rawSession(srv.port, false);
    extendedConnect(session, srv.port, { ':path': '/a' }).on('error', () => {});
    extendedConnect(session, srv.port, { ':path': '/b' }).on('error', () => {});
    const peers = await Promise.all([first.ws, second.ws]);
    const closed = peers.map(closeEvent);
    session.goaway(constants.NGHTTP2_PROTOCOL_ERROR);
    expect(await Promise.all(closed)).toEqual([1006, 1006]);
  });

  it("a stalled stream's flow control is its backpressure; others on the session go on", async () => {
    const srv = await h2Server(false);
    const stalled = nextConnection();
    srv.wss.route('/stalled', stalled.handler);
    const session = await rawSession(srv.port, false);
    const slow = extendedConnect(session, srv.port, { ':path': '/stalled' });
    slow.pause(); // never read: no WINDOW_UPDATE for this stream
    const peer = await stalled.ws;
    const payload = Buffer.alloc(512 * 1024, 1);
    const sent = peer.send(payload);
    sent.catch(() => {});
    expect(peer.bufferedAmount).toBeGreaterThan(256 * 1024);

    // A second WebSocket on the same TCP connection still echoes.
    const ws = track(await connect(`ws://${HOST}:${srv.port}/echo`, { ...CLIENT, http2Session: session }));
    expect(ws.transport).toBe('h2');
    expect((await roundTrip(ws, 'still here')).data.toString()).toBe('still here');
    expect(peer.bufferedAmount).toBeGreaterThan(256 * 1024);

    // Reading again opens the window: the send completes and bufferedAmount drains.
    let received = 0;
    slow.on('data', (chunk: Buffer) => {
      received += chunk.length;
    });
    slow.resume();
    await sent;
    expect(received).toBeGreaterThan(0);
  });
});

describe('the client side', () => {
  it('shares one session between several WebSockets (http2Session)', async () => {
    const srv = await h2Server(true);
    const session = h2connect(`https://${HOST}:${srv.port}`, { ca: cert.cert });
    onCleanup(() => session.destroy());
    const sockets = await Promise.all(
      [0, 1, 2].map(() => connect(`${srv.url}/echo`, { ...CLIENT, ...tlsOptions(), http2Session: session })),
    );
    for (const ws of sockets) track(ws);
    expect(new Set([...srv.wss.clients].map((ws) => ws.remotePort)).size).toBe(1);
    await sockets[0]!.close();
    for (const [i, ws] of sockets.slice(1).entries()) {
      expect((await roundTrip(ws, `n${i}`)).data.toString()).toBe(`n${i}`);
    }
    expect(session.closed).toBe(false); // the caller's session is the caller's to close
  });

  it("closes its own session when the WebSocket's stream ends", async () => {
    const srv = await h2Server(true);
    const sessions: Array<{ closed: Promise<void> }> = [];
    srv.wss.server?.on('session', (s: { once(e: 'close', f: () => void): void }) => {
      sessions.push({ closed: new Promise((resolve) => s.once('close', resolve)) });
    });
    const ws = await connect(`${srv.url}/echo`, { ...CLIENT, ...tlsOptions(), http2: true });
    await ws.close();
    expect(sessions).toHaveLength(1);
    await sessions[0]!.closed;
  });

  it('the server closing the stream ends the WebSocket with 1006', async () => {
    const srv = await h2Server(true);
    const server = nextConnection();
    srv.wss.route('/kill', server.handler);
    const ws = track(await connect(`${srv.url}/kill`, { ...CLIENT, ...tlsOptions(), http2: true }));
    const closed = closeEvent(ws);
    (await server.ws).terminate();
    expect(await closed).toBe(1006);
  });

  describe('fallback', () => {
    /** An h2 server (allowHTTP1) that does not advertise RFC 8441: Upgrade only. */
    async function withoutConnectProtocol() {
      const wss = new WebSocketServer({ pingInterval: 0 }).route('/echo', echo);
      const server = createSecureServer({ cert: cert.cert, key: cert.key, allowHTTP1: true });
      server.on('upgrade', (req, socket, head) => void wss.handleUpgrade(req, socket, head));
      await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
      onCleanup(async () => {
        await stopServer(wss);
        await new Promise((resolve) => server.close(resolve));
      });
      return { port: (server.address() as AddressInfo).port, server };
    }

    it("'auto' uses the HTTP/1.1 Upgrade when the setting is not advertised", async () => {
      const { port } = await withoutConnectProtocol();
      const ws = track(
        await connect(`wss://${HOST}:${port}/echo`, { ...CLIENT, ...tlsOptions(), http2: 'auto' }),
      );
      expect(ws.transport).toBe('http/1.1');
      expect((await roundTrip(ws, 'via h1')).data.toString()).toBe('via h1');
    });

    it('http2: true fails there, naming the missing setting', async () => {
      const { port } = await withoutConnectProtocol();
      const err = await connect(`wss://${HOST}:${port}/echo`, {
        ...CLIENT,
        ...tlsOptions(),
        http2: true,
      }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(HandshakeError);
      expect((err as Error).message).toContain('SETTINGS_ENABLE_CONNECT_PROTOCOL');
    });

    it("'auto' uses HTTP/1.1 with a server that does not offer h2 by ALPN", async () => {
      const wss = new WebSocketServer({ pingInterval: 0 }).route('/echo', echo);
      const server = createHttpsServer({ cert: cert.cert, key: cert.key });
      wss.attach(server);
      await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
      onCleanup(async () => {
        await stopServer(wss);
        await new Promise((resolve) => server.close(resolve));
      });
      const { port } = server.address() as AddressInfo;
      const ws = track(
        await connect(`wss://${HOST}:${port}/echo`, { ...CLIENT, ...tlsOptions(), http2: 'auto' }),
      );
      expect(ws.transport).toBe('http/1.1');
      expect((await roundTrip(ws, 'plain')).data.toString()).toBe('plain');
    });

    it("an h2 server with allowHTTP1 serves both transports on one port; 'auto' picks h2", async () => {
      const srv = await h2Server(true);
      const h1 = track(await connect(`${srv.url}/echo`, { ...CLIENT, ...tlsOptions() }));
      const h2 = track(await connect(`${srv.url}/echo`, { ...CLIENT, ...tlsOptions(), http2: 'auto' }));
      expect([h1.transport, h2.transport]).toEqual(['http/1.1', 'h2']);
      expect((await roundTrip(h1, 'one')).data.toString()).toBe('one');
      expect((await roundTrip(h2, 'two')).data.toString()).toBe('two');
    });
  });
});
