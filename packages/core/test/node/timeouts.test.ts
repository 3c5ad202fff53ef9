/**
 * Timers of a connection and of the handshakes: connectionTimeout, pingInterval,
 * closeTimeout and handshakeTimeout (server and client), with raw peers that misbehave on
 * purpose. Time is vitest's fake clock: each test moves it forward itself and waits for
 * the real socket events in between, so no test sleeps and machine speed does not matter.
 */
import { createServer as createHttpServer } from 'node:http';
import {
  type AddressInfo,
  createServer as createNetServer,
  connect as netConnect,
  type Socket,
} from 'node:net';
import { connect, HandshakeError, Opcode, WebSocketServer } from '@wskit/core';
import { describe, expect, it, vi } from 'vitest';
import { WebSocket as WsClient } from 'ws';
import { resourcesPerTest } from '../../../../test/support/clients.js';
import { advanceUntil, turn, useFakeClock } from '../../../../test/support/clock.js';
import { closeCode, echoHandler, rawClient, startServer, within } from './raw.js';
import { nextConnection } from './util.js';

const res = resourcesPerTest();
useFakeClock();

/** Resolves on the next `event` of `emitter` (with its first argument). */
const once = <T>(emitter: { once(event: string, fn: (arg: T) => void): unknown }, event: string) =>
  new Promise<T>((resolve) => emitter.once(event, resolve));

/** A round trip through a live raw client: proves its socket is still open. */
async function pingPong(raw: Awaited<ReturnType<typeof rawClient>>): Promise<void> {
  raw.send({ opcode: Opcode.PING, payload: 'alive?' });
  const pong = await raw.nextOf(Opcode.PONG);
  expect(pong.payload.toString()).toBe('alive?');
}

/** Opens a TCP connection, writes `bytes`, and reports when the server drops it. */
async function stalledSocket(
  port: number,
  bytes: string,
): Promise<{ socket: Socket; closed: Promise<void> }> {
  const socket = netConnect({ port, host: '127.0.0.1' });
  res.add(() => socket.destroy());
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  socket.write(bytes);
  socket.resume();
  return { socket, closed };
}

const PARTIAL_HEAD = 'GET / HTTP/1.1\r\nHost: x\r\n';

/** A complete upgrade request for `path` (with the sample key of RFC 6455 §1.3). */
const fullUpgrade = (path: string): string =>
  `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n';

describe('connectionTimeout', () => {
  it('closes a silent peer with 1001 and then ends the TCP connection', async () => {
    const next = nextConnection();
    const { port } = await startServer(res, next.handler, {
      pingInterval: 50, // pings go out, but this peer never answers them
      connectionTimeout: 300,
      closeTimeout: 300,
    });
    const raw = await rawClient(res, port);
    const ws = await next.ws;
    const { value: close, elapsed } = await advanceUntil(raw.nextOf(Opcode.CLOSE, 10_000), {
      what: 'the idle Close',
    });
    expect(closeCode(close)).toBe(1001);
    // Never before connectionTimeout; at most one wheel slot (300 / 16 ms) and a step late.
    expect(elapsed).toBeGreaterThanOrEqual(300);
    expect(elapsed).toBeLessThanOrEqual(300 + 300 / 16 + 10);
    // The server pinged the silent peer (once: an unanswered Ping is not repeated) before
    // giving up on it.
    expect(raw.reader.frames.filter((f) => f.opcode === Opcode.PING)).toHaveLength(1);
    // The peer never answers the Close: the server ends TCP after its closeTimeout.
    const ended = await advanceUntil(raw.ended, { what: 'the server to end the TCP connection' });
    expect(ended.elapsed).toBeGreaterThanOrEqual(300 - 10);
    const info = await within(ws.closed, 5000, 'the server connection to close');
    expect(info.wasClean).toBe(false);
    expect(ws.readyState).toBe(3);
  });

  it('keeps a connection whose peer answers pings open past several connectionTimeouts (our client)', async () => {
    const next = nextConnection(echoHandler);
    const { url } = await startServer(res, next.handler, { pingInterval: 60, connectionTimeout: 250 });
    // The client sends nothing on its own: only its pongs keep the server's clock fresh.
    const client = await connect(url, { pingInterval: 0, connectionTimeout: 0 });
    res.add(() => client.terminate());
    const server = await next.ws;
    let pings = 0;
    client.on('ping', () => pings++);
    // 20 keepalive rounds = 1.2 s, almost 5 connectionTimeouts; each pong is awaited
    // before the clock moves on, as it would arrive well within an interval.
    for (let round = 0; round < 20; round++) {
      await advanceUntil(once(server, 'pong'), { step: 5, limit: 200, what: `pong ${round}` });
    }
    expect(pings).toBe(20);
    expect(server.readyState).toBe(1);
    expect(client.readyState).toBe(1);
    expect(server.rtt).toBeTypeOf('number');
    await client.send('after the wait');
    expect((await within(client.receive(), 5000))?.text()).toBe('after the wait');
  });

  it('keeps a connection whose peer answers pings open past several connectionTimeouts (ws)', async () => {
    const next = nextConnection(echoHandler);
    const { url } = await startServer(res, next.handler, { pingInterval: 60, connectionTimeout: 250 });
    const client = new WsClient(url);
    res.add(() => client.terminate());
    await new Promise<void>((resolve, reject) => {
      client.once('open', () => resolve());
      client.once('error', reject);
    });
    const server = await next.ws;
    let closedEarly = false;
    client.once('close', () => {
      closedEarly = true;
    });
    for (let round = 0; round < 20; round++) {
      await advanceUntil(once(server, 'pong'), { step: 5, limit: 200, what: `pong ${round}` });
    }
    expect(closedEarly).toBe(false);
    expect(server.readyState).toBe(1);
    const echoed = new Promise<string>((resolve) => client.once('message', (d) => resolve(String(d))));
    client.send('from ws');
    expect(await within(echoed, 5000)).toBe('from ws');
  });

  it('closes the same connection when its peer does not answer the pings (control)', async () => {
    // The same server as above, but a raw peer that never answers: the idle check fires,
    // so the tests above do depend on the pongs.
    const next = nextConnection();
    const { port } = await startServer(res, next.handler, { pingInterval: 60, connectionTimeout: 250 });
    const raw = await rawClient(res, port);
    await next.ws;
    const { value: close, elapsed } = await advanceUntil(raw.nextOf(Opcode.CLOSE, 10_000), {
      step: 5,
    });
    expect(closeCode(close)).toBe(1001);
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(250 + 250 / 16 + 5 + 1);
  });

  it('also counts a connection without keepalive as idle (no pings, no data: 1001)', async () => {
    const next = nextConnection();
    const { url } = await startServer(res, next.handler, {
      pingInterval: 0,
      connectionTimeout: 200,
      closeTimeout: 1000,
    });
    const client = await connect(url, { pingInterval: 0, connectionTimeout: 0 });
    res.add(() => client.terminate());
    // Our client answers the server's Close: the closing handshake is clean, code 1001.
    const { value: code, elapsed } = await advanceUntil(once<number>(client, 'close'), {
      what: 'the client to be closed by the idle server',
    });
    expect(code).toBe(1001);
    expect(elapsed).toBeGreaterThanOrEqual(200);
    expect(elapsed).toBeLessThanOrEqual(200 + 200 / 16 + 10);
    const info = await within((await next.ws).closed, 5000, 'the server connection to close');
    expect(info).toMatchObject({ wasClean: true });
  });
});

describe('closeTimeout', () => {
  it('destroys a connection whose peer never answers our Close (1006, not clean)', async () => {
    const next = nextConnection();
    const { port } = await startServer(res, next.handler, {
      pingInterval: 0,
      connectionTimeout: 0,
      closeTimeout: 200,
    });
    const raw = await rawClient(res, port);
    const ws = await next.ws;
    const { value: info, elapsed } = await advanceUntil(ws.close(1000, 'bye'), {
      what: 'close() to resolve',
    });
    expect(info).toEqual({ code: 1006, reason: '', wasClean: false });
    expect(elapsed).toBeGreaterThanOrEqual(200);
    expect(elapsed).toBeLessThanOrEqual(210);
    // The peer did get our Close first; then the socket was torn down.
    const close = await raw.nextOf(Opcode.CLOSE);
    expect(closeCode(close)).toBe(1000);
    expect(close.payload.subarray(2).toString()).toBe('bye');
    await within(raw.reader.closed, 5000, 'the raw socket to be closed');
  });

  it("lets the server's close() finish although a peer never answers", async () => {
    const next = nextConnection();
    const { wss, port } = await startServer(res, next.handler, {
      pingInterval: 0,
      connectionTimeout: 0,
      closeTimeout: 200,
    });
    const raw = await rawClient(res, port);
    const ws = await next.ws;
    const { elapsed } = await advanceUntil(wss.close(), { what: 'wss.close()' });
    expect(elapsed).toBeGreaterThanOrEqual(200);
    expect(closeCode(await raw.nextOf(Opcode.CLOSE))).toBe(1001);
    expect(await ws.closed).toMatchObject({ code: 1006, wasClean: false });
    expect(wss.clients.size).toBe(0);
  });
});

describe('handshakeTimeout (server)', () => {
  it('drops a half-sent upgrade request (listen)', async () => {
    const wss = new WebSocketServer({ handshakeTimeout: 200 });
    wss.route('*', () => {});
    const { port } = await wss.listen(0, '127.0.0.1');
    res.add(() => wss.close());
    const { closed } = await stalledSocket(port, PARTIAL_HEAD);
    // Node's own headersTimeout is 60 s of real time: a drop here is the handshake timer.
    const { elapsed } = await advanceUntil(closed, { what: 'the stalled socket to be dropped' });
    expect(elapsed).toBeGreaterThanOrEqual(200 - 30); // the timer may start a few steps in
    expect(elapsed).toBeLessThanOrEqual(200 + 30);
  });

  it('drops a half-sent upgrade request (attach)', async () => {
    const http = createHttpServer((_req, reply) => reply.end('plain http'));
    const wss = new WebSocketServer({ handshakeTimeout: 200 }).attach(http);
    wss.route('*', () => {});
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    res.add(
      () =>
        new Promise<void>((resolve) => {
          http.close(() => resolve());
          http.closeAllConnections();
        }),
    );
    const port = (http.address() as AddressInfo).port;
    const { closed } = await stalledSocket(port, PARTIAL_HEAD);
    const { elapsed } = await advanceUntil(closed, { what: 'the stalled socket to be dropped' });
    expect(elapsed).toBeLessThanOrEqual(200 + 30);
  });

  it('does not drop a connection that completed the handshake in time', async () => {
    const next = nextConnection();
    const { port } = await startServer(res, next.handler, {
      handshakeTimeout: 150,
      pingInterval: 0,
      connectionTimeout: 0,
    });
    const raw = await rawClient(res, port);
    await next.ws;
    await vi.advanceTimersByTimeAsync(500);
    for (let i = 0; i < 5; i++) await turn();
    expect(raw.reader.isEnded).toBe(false);
    await pingPong(raw);
  });

  it('drops an upgrade whose async acceptConnection never resolves', async () => {
    const wss = new WebSocketServer({
      handshakeTimeout: 200,
      acceptConnection: () => new Promise<boolean>(() => {}),
    });
    let handled = false;
    wss.route('*', () => {
      handled = true;
    });
    const { port } = await wss.listen(0, '127.0.0.1');
    res.add(() => wss.close());
    const { closed } = await stalledSocket(port, fullUpgrade('/'));
    await advanceUntil(closed, { what: 'the socket of the stalled acceptConnection to be dropped' });
    expect(handled).toBe(false);
    expect(wss.clients.size).toBe(0);
  });

  it('frees the connection slot of an upgrade dropped while acceptConnection was pending', async () => {
    const wss = new WebSocketServer({
      handshakeTimeout: 200,
      maxConnections: 1,
      acceptConnection: (req) => (req.path === '/stall' ? new Promise<boolean>(() => {}) : true),
    });
    wss.route('*', echoHandler);
    const { port } = await wss.listen(0, '127.0.0.1');
    res.add(() => wss.close());
    const { closed } = await stalledSocket(port, fullUpgrade('/stall'));
    await advanceUntil(closed, { what: 'the stalled upgrade to be dropped' });
    // The one allowed connection must be available again (not a 503 forever).
    const ws = await connect(`ws://127.0.0.1:${port}/ok`, { pingInterval: 0 });
    res.add(() => ws.terminate());
    await ws.send('slot');
    expect((await within(ws.receive(), 5000))?.text()).toBe('slot');
  });
});

describe('handshakeTimeout (client)', () => {
  it('rejects with HandshakeError when the server accepts TCP but never answers', async () => {
    const sockets = new Set<Socket>();
    let socketClosed!: () => void;
    const closedOne = new Promise<void>((resolve) => {
      socketClosed = resolve;
    });
    let requestRead!: () => void;
    const readOne = new Promise<void>((resolve) => {
      requestRead = resolve;
    });
    const tcp = createNetServer((s) => {
      sockets.add(s);
      s.once('close', () => socketClosed());
      s.on('error', () => {});
      s.once('data', () => requestRead());
      s.resume(); // read the request, answer nothing
    });
    await new Promise<void>((resolve) => tcp.listen(0, '127.0.0.1', resolve));
    res.add(
      () =>
        new Promise<void>((resolve) => {
          for (const s of sockets) s.destroy();
          tcp.close(() => resolve());
        }),
    );
    const port = (tcp.address() as AddressInfo).port;
    const attempt = connect(`ws://127.0.0.1:${port}/`, { handshakeTimeout: 200 }).then(
      () => new Error('connected?'),
      (e: unknown) => e,
    );
    // The request reached the server; nothing is answered however long we wait short of the timeout.
    await within(readOne, 5000, 'the upgrade request');
    await vi.advanceTimersByTimeAsync(199);
    for (let i = 0; i < 5; i++) await turn();
    const { value: err, elapsed } = await advanceUntil(attempt, { step: 1, what: 'connect() to settle' });
    expect(err).toBeInstanceOf(HandshakeError);
    expect(elapsed).toBeLessThanOrEqual(1);
    // The client gave up on its socket too.
    expect(sockets.size).toBe(1);
    await within(closedOne, 5000, 'the client to close its socket');
  });
});
