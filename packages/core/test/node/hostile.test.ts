/**
 * Hostile peers over real sockets (issue 9): what one peer can make the server hold is
 * bounded by what it sent, bad input never crashes or leaks, and messages that arrived in
 * full before a violation are still handled, with their replies sent before our Close.
 * Memory figures themselves are measured by bench/hostile.mjs against ws.
 */
import { deflateRawSync } from 'node:zlib';
import { connect, InvalidStateError, type Logger, Opcode, type WebSocket } from '@wskit/core';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { resourcesPerTest } from '../../../../test/support/clients.js';
import { advanceUntil, FAKED } from '../../../../test/support/clock.js';
import {
  closeCode,
  type FrameSpec,
  frameBytes,
  RawServer,
  rawClient,
  startServer,
  waitFor,
  within,
} from './raw.js';
import { nextConnection } from './util.js';

const res = resourcesPerTest();
afterEach(() => {
  vi.useRealTimers(); // runs before the cleanups of `res` (afterEach hooks run newest first)
});
const KiB = 1024;
const MiB = 1024 * KiB;

/** A route handler that echoes in order, one message at a time. */
async function orderedEcho(ws: WebSocket): Promise<void> {
  for await (const msg of ws) await ws.send(msg.data, { binary: msg.type === 'binary' });
}

/** Frames of one message split into fragments of `size` bytes (masked, as a client sends). */
function fragments(opcode: number, payload: Buffer, size: number): Buffer {
  const out: Buffer[] = [];
  for (let i = 0; i < payload.length; i += size) {
    const last = i + size >= payload.length;
    out.push(
      frameBytes({ opcode: i === 0 ? opcode : 0, fin: last, payload: payload.subarray(i, i + size) }, true),
    );
  }
  return Buffer.concat(out);
}

describe('tiny fragments', () => {
  it('a message in more fragments than maxFragments (default 16384) is closed with 1009', async () => {
    const next = nextConnection();
    const { port } = await startServer(res, next.handler, { pingInterval: 0 });
    const raw = await rawClient(res, port);
    const server = await next.ws;
    // Just under 1 MiB as 1-byte frames: 20,000 of them in one write is enough to trip it.
    raw.write(fragments(Opcode.BINARY, Buffer.alloc(20_000, 7), 1));
    const close = await raw.nextOf(Opcode.CLOSE, 10_000);
    expect(closeCode(close)).toBe(1009);
    expect(close.payload.subarray(2).toString()).toMatch(/16384 fragments/);
    await within(server.closed, 10_000, 'the server connection to close');
  });

  it('a message of exactly maxFragments 1-byte fragments is assembled and delivered', async () => {
    const { port } = await startServer(res, orderedEcho, { pingInterval: 0, maxFragments: 5000 });
    const raw = await rawClient(res, port);
    const payload = Buffer.from(Array.from({ length: 5000 }, (_, i) => i & 0xff));
    raw.write(fragments(Opcode.BINARY, payload, 1));
    const echoed = await raw.nextOf(Opcode.BINARY, 10_000);
    expect(echoed.payload.equals(payload)).toBe(true);
  });

  it('maxFragments counts frames of compressed messages too', async () => {
    const next = nextConnection();
    const { port } = await startServer(res, next.handler, {
      pingInterval: 0,
      maxFragments: 3,
      perMessageDeflate: true,
    });
    const raw = await rawClient(res, port, { headers: { 'Sec-WebSocket-Extensions': 'permessage-deflate' } });
    expect(raw.responseHead).toMatch(/permessage-deflate/i);
    const compressed = deflateRawSync(Buffer.from('abcdefgh'));
    const frames = [...compressed.subarray(0, compressed.length - 0)].map((byte, i, all) =>
      frameBytes(
        {
          opcode: i === 0 ? Opcode.TEXT : 0,
          rsv: i === 0 ? 4 : 0,
          fin: i === all.length - 1,
          payload: Buffer.from([byte]),
        },
        true,
      ),
    );
    expect(frames.length).toBeGreaterThan(3);
    raw.write(Buffer.concat(frames));
    expect(closeCode(await raw.nextOf(Opcode.CLOSE, 10_000))).toBe(1009);
  });
});

describe('ping flood', () => {
  it('200,000 pings from a peer that never reads: pongs are coalesced, the backlog stays small', async () => {
    const next = nextConnection();
    const { port } = await startServer(res, next.handler, { pingInterval: 0 });
    const raw = await rawClient(res, port);
    const server = await next.ws;
    let pings = 0;
    server.on('ping', () => pings++);
    raw.socket.pause(); // never reads: our pongs pile up unless they are coalesced

    const N = 200_000;
    const PAYLOAD = 125; // the largest control payload: 26 MB of pongs if each were kept
    const batch = 5000;
    for (let sent = 0; sent < N; sent += batch) {
      const frames: Buffer[] = [];
      for (let i = sent; i < sent + batch; i++) {
        const payload = Buffer.alloc(PAYLOAD, 0x2e);
        payload.writeUInt32BE(i, 0);
        frames.push(frameBytes({ opcode: Opcode.PING, payload }, true));
      }
      if (!raw.socket.write(Buffer.concat(frames))) {
        await new Promise<void>((resolve) => raw.socket.once('drain', () => resolve()));
      }
    }
    await waitFor(() => pings === N, 60_000, 'every ping to be read by the server');
    // Without coalescing, 200,000 pongs of 127 bytes wait for the peer (or trip 1008).
    expect(server.bufferedAmount).toBeLessThan(1 * MiB);
    expect(server.readyState).toBe(1);

    // The peer reads again: the last Pong it gets answers the last Ping.
    raw.socket.resume();
    await waitFor(
      () => {
        const pongs = raw.reader.frames.filter((f) => f.opcode === Opcode.PONG);
        return pongs.length > 0 && pongs[pongs.length - 1]!.payload.readUInt32BE(0) === N - 1;
      },
      30_000,
      'the Pong of the last Ping',
    );
    const pongs = raw.reader.frames.filter((f) => f.opcode === Opcode.PONG).length;
    expect(pongs).toBeLessThan(N);
  });

  it('pings answered while the peer reads are each answered', async () => {
    const { port } = await startServer(res, orderedEcho, { pingInterval: 0 });
    const raw = await rawClient(res, port);
    const pings: FrameSpec[] = Array.from({ length: 50 }, (_, i) => ({
      opcode: Opcode.PING,
      payload: `p${i}`,
    }));
    raw.sendAll(pings);
    for (let i = 0; i < 50; i++) {
      expect((await raw.nextOf(Opcode.PONG, 5000)).payload.toString()).toBe(`p${i}`);
    }
  });
});

describe('allocation from a frame header', () => {
  it('a header announcing 1 MiB costs what was received, not 1 MiB', async () => {
    const { port } = await startServer(res, () => {}, { pingInterval: 0 });
    const N = 200;
    const clients = await Promise.all(Array.from({ length: N }, () => rawClient(res, port)));
    const before = process.memoryUsage().arrayBuffers;
    const header = Buffer.alloc(14);
    header[0] = 0x82;
    header[1] = 0x80 | 127;
    header.writeUInt32BE(0, 2);
    header.writeUInt32BE(MiB, 6); // exactly maxFrameSize: allowed
    header.writeUInt32BE(0x01020304, 10);
    for (const c of clients) {
      // A ping first: its Pong proves the server has read the header behind it (same write).
      c.write(
        Buffer.concat([frameBytes({ opcode: Opcode.PING, payload: 'x' }, true), header, Buffer.alloc(16)]),
      );
    }
    await Promise.all(clients.map((c) => c.nextOf(Opcode.PONG, 10_000)));
    const grown = process.memoryUsage().arrayBuffers - before;
    // Allocating the announced length would take N MiB here.
    expect(grown).toBeLessThan((N * MiB) / 4);
  });
});

describe('publish and backpressure', () => {
  it('frames held behind an open fragmented send count in bufferedAmount and go out after it', async () => {
    const next = nextConnection((ws) => ws.subscribe('t'));
    const { wss, url } = await startServer(res, next.handler, { pingInterval: 0 });
    const client = await connect(url, { pingInterval: 0 });
    res.add(() => client.terminate());
    const server = await next.ws;
    await server.send('frag-', { fin: false });
    for (let i = 0; i < 10; i++) wss.publish('t', Buffer.alloc(64 * KiB, i));
    expect(server.bufferedAmount).toBeGreaterThanOrEqual(10 * 64 * KiB);
    await server.send('end', { fin: true });
    const first = await within(client.receive(), 5000);
    expect(first?.text()).toBe('frag-end');
    for (let i = 0; i < 10; i++) {
      const msg = await within(client.receive(), 5000);
      expect(msg?.data[0]).toBe(i);
    }
    await waitFor(() => server.bufferedAmount === 0, 5000, 'the backlog to drain');
  });

  it('published frames past maxBufferedAmount close a paused reader with 1008', async () => {
    vi.useFakeTimers({ toFake: [...FAKED] }); // the paused reader never answers: closeTimeout ends it
    const warn = vi.fn();
    const logger: Logger = { debug: () => {}, info: () => {}, warn, error: () => {} };
    const next = nextConnection((ws) => ws.subscribe('t'));
    const { wss, port } = await startServer(res, next.handler, {
      pingInterval: 0,
      maxBufferedAmount: MiB,
      closeTimeout: 500,
      logger,
      logLevel: 'warn',
    });
    const raw = await rawClient(res, port);
    raw.socket.pause();
    const server = await next.ws;
    await server.send('open fragment', { fin: false });
    let delivered = 0;
    for (let i = 0; i < 1000; i++) delivered += wss.publish('t', Buffer.alloc(64 * KiB, i));
    // The connection stops taking published frames once it is over the limit.
    expect(delivered).toBeLessThan(40);
    expect(warn).toHaveBeenCalled();
    expect(String(warn.mock.calls[0]?.[1])).toMatch(/slow consumer/);
    expect(server.readyState).toBeGreaterThanOrEqual(2);
    const { value: info, elapsed } = await advanceUntil(server.closed, {
      what: 'the slow reader to be dropped',
    });
    expect(info.code).toBe(1006); // our 1008 Close could not be delivered: closeTimeout ended TCP
    expect(elapsed).toBeGreaterThanOrEqual(500);
  });
});

describe('sending on a connection that is not open', () => {
  it('an un-awaited send() or ping() after the peer left does not crash; an awaited one rejects', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    res.add(() => process.off('unhandledRejection', onUnhandled));

    const next = nextConnection();
    const { url } = await startServer(res, next.handler, { pingInterval: 0, perMessageDeflate: true });
    const client = await connect(url, { pingInterval: 0, perMessageDeflate: true });
    const server = await next.ws;
    void client.close(5000); // an invalid code on an open connection: rejects, nobody awaits
    // Compressed sends wait in the queue: they are rejected when the connection ends.
    for (let i = 0; i < 5; i++) void server.send('x'.repeat(4096));
    client.terminate();
    await within(server.closed, 5000, 'the server side to close');
    void server.send('after the peer left');
    void server.ping();
    // Unhandled rejections are reported once the microtasks of a turn have run.
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    expect(unhandled).toEqual([]);

    const err = await server.send('awaited').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidStateError);
    expect((err as InvalidStateError).readyState).toBe(3);
    expect(err).not.toHaveProperty('code');
    await expect(server.ping()).rejects.toBeInstanceOf(InvalidStateError);
  });
});

describe('messages before a violation', () => {
  const violations: Array<{ name: string; frame: FrameSpec; code: number }> = [
    { name: 'RSV2 set', frame: { opcode: Opcode.TEXT, rsv: 2, payload: 'x' }, code: 1002 },
    { name: 'a reserved opcode', frame: { opcode: 0x3, payload: 'x' }, code: 1002 },
    { name: 'an unmasked frame', frame: { opcode: Opcode.TEXT, payload: 'x', masked: false }, code: 1002 },
    { name: 'a stray continuation', frame: { opcode: 0, payload: 'x' }, code: 1002 },
    { name: 'invalid UTF-8', frame: { opcode: Opcode.TEXT, payload: Buffer.from([0xc3, 0x28]) }, code: 1007 },
  ];
  for (const v of violations) {
    it(`server: valid messages then ${v.name} in one write: echoes first, then Close ${v.code}`, async () => {
      const { port } = await startServer(res, orderedEcho, { pingInterval: 0 });
      const raw = await rawClient(res, port);
      raw.sendAll([
        { opcode: Opcode.TEXT, payload: 'one' },
        { opcode: Opcode.BINARY, payload: 'two' },
        { opcode: Opcode.TEXT, payload: 'three' },
        v.frame,
      ]);
      expect((await raw.next(5000)).payload.toString()).toBe('one');
      expect((await raw.next(5000)).payload.toString()).toBe('two');
      expect((await raw.next(5000)).payload.toString()).toBe('three');
      const close = await raw.next(5000);
      expect(close.opcode).toBe(Opcode.CLOSE);
      expect(closeCode(close)).toBe(v.code);
    });
  }

  it('replies that take a while (an async handler) still go out before the Close', async () => {
    const { port } = await startServer(
      res,
      async (ws) => {
        for await (const msg of ws) {
          await new Promise((resolve) => setImmediate(resolve));
          await new Promise((resolve) => setImmediate(resolve));
          await ws.send(`re:${msg.text()}`);
        }
      },
      { pingInterval: 0, perMessageDeflate: false },
    );
    const raw = await rawClient(res, port);
    raw.sendAll([{ opcode: Opcode.TEXT, payload: 'a' }, { opcode: 0x3 }]);
    expect((await raw.next(5000)).payload.toString()).toBe('re:a');
    expect(closeCode(await raw.next(5000))).toBe(1002);
  });

  it('client: a valid message and a violation in one write from the server', async () => {
    const rawServer = new RawServer();
    const port = await rawServer.listen();
    res.add(() => rawServer.close());
    const client = await connect(`ws://127.0.0.1:${port}/`, { pingInterval: 0 });
    res.add(() => client.terminate());
    const peer = await rawServer.nextPeer();
    const consumer = orderedEcho(client);
    peer.socket.write(
      Buffer.concat([
        frameBytes({ opcode: Opcode.TEXT, payload: 'hello' }, false),
        frameBytes({ opcode: Opcode.TEXT, rsv: 4, payload: 'x' }, false),
      ]),
    );
    expect((await peer.reader.next(5000)).payload.toString()).toBe('hello');
    expect(closeCode(await peer.reader.next(5000))).toBe(1002);
    await consumer;
  });

  it('a consumer that never comes back: the Close goes out after closeTimeout', async () => {
    vi.useFakeTimers({ toFake: [...FAKED] });
    const next = nextConnection();
    const { port } = await startServer(res, next.handler, { pingInterval: 0, closeTimeout: 200 });
    const raw = await rawClient(res, port);
    const server = await next.ws;
    raw.sendAll([{ opcode: Opcode.TEXT, payload: 'kept' }, { opcode: 0x3 }]);
    expect((await within(server.receive(), 5000))?.text()).toBe('kept');
    // Our Close is held meanwhile: a reply still goes out first.
    await server.send('late reply');
    expect((await raw.next(5000)).payload.toString()).toBe('late reply');
    const { value: close, elapsed } = await advanceUntil(raw.nextOf(Opcode.CLOSE, 10_000));
    expect(closeCode(close)).toBe(1002);
    expect(elapsed).toBeGreaterThanOrEqual(200 - 10); // held since the Close arrived, a step earlier
    expect(elapsed).toBeLessThanOrEqual(200 + 10);
  });

  it('a slow consumer while our Close is held: the Close still goes out before the socket ends', async () => {
    const warn = vi.fn();
    const logger: Logger = { debug: () => {}, info: () => {}, warn, error: () => {} };
    const next = nextConnection(async (ws) => {
      for await (const _ of ws) for (let i = 0; i < 8; i++) void ws.send(Buffer.alloc(MiB, i));
    });
    const { port } = await startServer(res, next.handler, {
      pingInterval: 0,
      maxBufferedAmount: MiB,
      closeTimeout: 5000,
      logger,
      logLevel: 'warn',
    });
    const raw = await rawClient(res, port);
    raw.socket.pause();
    raw.sendAll([{ opcode: Opcode.TEXT, payload: 'flood me' }, { opcode: 0x3 }]);
    // The server runs into its limit while our Close is held.
    await waitFor(() => warn.mock.calls.length > 0, 10_000, 'the slow-consumer check');
    raw.socket.resume();
    const close = await raw.nextOf(Opcode.CLOSE, 10_000);
    expect(closeCode(close)).toBe(1002);
  });
});

describe('compressed sends are not a slow consumer', () => {
  it('a burst of compressed sends past maxBufferedAmount to a reading peer all arrive', async () => {
    const next = nextConnection();
    const { url } = await startServer(res, next.handler, {
      pingInterval: 0,
      perMessageDeflate: true,
      maxBufferedAmount: MiB,
    });
    const client = await connect(url, { pingInterval: 0, perMessageDeflate: true });
    res.add(() => client.terminate());
    const server = await next.ws;
    const sends = Array.from({ length: 20 }, (_, i) => server.send(Buffer.alloc(256 * KiB, i)));
    for (let i = 0; i < 20; i++) expect((await within(client.receive(), 10_000))?.data[0]).toBe(i);
    await within(Promise.all(sends), 10_000, 'every send to resolve');
    expect(server.readyState).toBe(1);
  });
});

describe('rateLimit', () => {
  it("action 'close': the message past the limit closes with 1008; the ones before are handled", async () => {
    const { port } = await startServer(res, orderedEcho, {
      pingInterval: 0,
      rateLimit: { messages: 5, interval: 60_000 },
    });
    const raw = await rawClient(res, port);
    raw.sendAll(Array.from({ length: 8 }, (_, i) => ({ opcode: Opcode.TEXT, payload: `m${i}` })));
    for (let i = 0; i < 5; i++) expect((await raw.next(5000)).payload.toString()).toBe(`m${i}`);
    const close = await raw.next(5000);
    expect(close.opcode).toBe(Opcode.CLOSE);
    expect(closeCode(close)).toBe(1008);
  });

  it("action 'drop': messages past the limit are dropped with a 'ratelimit' event, the connection stays", async () => {
    const dropped: string[] = [];
    const next = nextConnection((ws) =>
      ws.on('ratelimit', (msg: { text(): string }) => dropped.push(msg.text())),
    );
    const { url } = await startServer(res, next.handler, {
      pingInterval: 0,
      rateLimit: { bytes: 10, interval: 60_000, action: 'drop' },
    });
    const client = await connect(url, { pingInterval: 0 });
    res.add(() => client.terminate());
    const server = await next.ws;
    await client.send('12345');
    await client.send('67890');
    await client.send('overflow');
    await client.send('more');
    expect((await within(server.receive(), 5000))?.text()).toBe('12345');
    expect((await within(server.receive(), 5000))?.text()).toBe('67890');
    await waitFor(() => dropped.length === 2, 5000, 'two dropped messages');
    expect(dropped).toEqual(['overflow', 'more']);
    expect(server.readyState).toBe(1);
  });

  it('bad rateLimit options are refused when the server is made', async () => {
    await expect(startServer(res, () => {}, { rateLimit: { interval: 0, messages: 1 } })).rejects.toThrow(
      RangeError,
    );
    await expect(startServer(res, () => {}, { rateLimit: { interval: 1000 } })).rejects.toThrow(
      /messages, bytes/,
    );
  });
});
