/**
 * Flow control in both directions: a consumer that does not read stops the socket from
 * being read (and the sender feels it), a peer that does not read makes the sender's
 * send() promises wait and, past maxBufferedAmount, gets closed with 1008; small sends in
 * one tick leave in few socket writes; the default size limits hold.
 */
import { Socket } from 'node:net';
import { connect, type Logger, Opcode, type WebSocket } from '@wskit/core';
import { describe, expect, it, vi } from 'vitest';
import { resourcesPerTest } from '../../../../test/support/clients.js';
import { closeCode, echo, frameBytes, rawClient, sleep, startServer, waitFor, within } from './raw.js';
import { nextConnection } from './util.js';

const res = resourcesPerTest();

const KiB = 1024;
const MiB = 1024 * 1024;

/** Waits until `read()` returns the same value for `quietMs`; returns that value. */
async function settle(read: () => number, quietMs = 300, timeout = 10_000): Promise<number> {
  const deadline = Date.now() + timeout;
  let last = read();
  let since = Date.now();
  while (Date.now() < deadline) {
    await sleep(50);
    const now = read();
    if (now !== last) {
      last = now;
      since = Date.now();
    } else if (Date.now() - since >= quietMs) {
      return now;
    }
  }
  throw new Error(`Value kept changing for ${timeout} ms (last ${last})`);
}

function numbered(i: number, size: number): Buffer {
  const b = Buffer.alloc(size, i & 0xff);
  b.writeUInt32BE(i, 0);
  return b;
}

describe('a consumer that does not read', () => {
  it('stops reading the socket (sender stays buffered), then gets every message in order', async () => {
    const next = nextConnection();
    const { url } = await startServer(res, next.handler, { pingInterval: 0, maxQueuedMessages: 8 });
    // The sender may buffer more than the whole burst: only the receiver limits it here.
    const client = await connect(url, { pingInterval: 0, maxBufferedAmount: 64 * MiB });
    res.add(() => client.terminate());
    const server = await next.ws;

    const N = 400;
    const SIZE = 64 * KiB;
    let acknowledged = 0;
    const sends = [];
    for (let i = 0; i < N; i++) sends.push(client.send(numbered(i, SIZE)).then(() => acknowledged++));

    // Far more than the socket buffers on both ends can hold stays with the sender.
    const stuck = await settle(() => client.bufferedAmount);
    expect(stuck).toBeGreaterThan(2 * MiB);
    expect(acknowledged).toBeLessThan(N);
    expect(server.readyState).toBe(1);

    // Now the handler starts consuming: nothing was lost, nothing reordered.
    for (let i = 0; i < N; i++) {
      const msg = await within(server.receive(), 10_000, `message ${i}`);
      expect(msg).not.toBeNull();
      expect(msg!.type).toBe('binary');
      expect(msg!.size).toBe(SIZE);
      expect(msg!.data.readUInt32BE(0)).toBe(i);
      expect(msg!.data[SIZE - 1]).toBe(i & 0xff);
    }
    await within(Promise.all(sends), 10_000, 'every send() to resolve');
    expect(client.bufferedAmount).toBe(0);
  });

  it('with a message listener (concurrent consumption), keeps reading', async () => {
    const received: number[] = [];
    const { url } = await startServer(
      res,
      (ws) => {
        ws.on('message', (m) => received.push(m.data.readUInt32BE(0)));
      },
      { pingInterval: 0, maxQueuedMessages: 8 },
    );
    const client = await connect(url, { pingInterval: 0, maxBufferedAmount: 64 * MiB });
    res.add(() => client.terminate());
    const N = 200;
    await Promise.all(Array.from({ length: N }, (_, i) => client.send(numbered(i, 64 * KiB))));
    await waitFor(() => received.length === N, 10_000, 'all messages');
    expect(received).toEqual(Array.from({ length: N }, (_, i) => i));
  });
});

describe('a peer that does not read', () => {
  /** Sends 16 KiB chunks, one per macrotask, without waiting for send() to resolve. */
  function flood(ws: WebSocket, stop: () => boolean): Promise<number> {
    return (async () => {
      let sent = 0;
      while (!stop() && ws.readyState === 1) {
        ws.send(numbered(sent, 16 * KiB)).catch(() => {});
        sent++;
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      return sent;
    })();
  }

  it('is closed with 1008 once maxBufferedAmount is passed', async () => {
    const next = nextConnection();
    const warn = vi.fn();
    const logger: Logger = { debug: () => {}, info: () => {}, warn, error: () => {} };
    const { port } = await startServer(res, next.handler, {
      pingInterval: 0,
      maxBufferedAmount: 64 * KiB,
      closeTimeout: 5000,
      logger,
      logLevel: 'warn',
    });
    const raw = await rawClient(res, port);
    raw.socket.pause();
    const server = await next.ws;
    const sent = await within(
      flood(server, () => false),
      20_000,
      'the server to stop sending',
    );
    expect(sent).toBeGreaterThan(4); // the kernel buffers took some before the limit hit
    expect(server.readyState).toBeGreaterThanOrEqual(2);
    expect(warn).toHaveBeenCalled();

    // The peer wakes up: it gets the data that was queued, then the Close 1008, then EOF.
    raw.socket.resume();
    await within(raw.ended, 10_000, 'the connection to end');
    const frames = raw.reader.frames;
    const data = frames.filter((f) => f.opcode === Opcode.BINARY);
    expect(data.length).toBeGreaterThan(0);
    expect(data.map((f) => f.payload.readUInt32BE(0))).toEqual(data.map((_, i) => i));
    const last = frames[frames.length - 1]!;
    expect(last.opcode).toBe(Opcode.CLOSE);
    expect(closeCode(last)).toBe(1008);
    expect((await server.closed).wasClean).toBe(false);
  });

  it('is not closed while it keeps reading (same limit, same flood)', async () => {
    const next = nextConnection();
    const { port } = await startServer(res, next.handler, { pingInterval: 0, maxBufferedAmount: 64 * KiB });
    const raw = await rawClient(res, port);
    const server = await next.ws;
    let stop = false;
    const flooding = flood(server, () => stop);
    await waitFor(() => raw.reader.bytes > 4 * MiB, 20_000, '4 MiB to arrive');
    stop = true;
    const sent = await flooding;
    expect(server.readyState).toBe(1);
    await waitFor(() => raw.reader.frames.length === sent, 10_000, 'every frame');
    expect(raw.reader.frames.every((f) => f.opcode === Opcode.BINARY)).toBe(true);
  });

  it('calls onBackpressure instead of closing when given', async () => {
    const next = nextConnection();
    const onBackpressure = vi.fn();
    const { port } = await startServer(res, next.handler, {
      pingInterval: 0,
      maxBufferedAmount: 64 * KiB,
      onBackpressure,
    });
    const raw = await rawClient(res, port);
    raw.socket.pause();
    const server = await next.ws;
    let stop = false;
    const flooding = flood(server, () => stop);
    await waitFor(() => onBackpressure.mock.calls.length > 0, 20_000, 'onBackpressure');
    stop = true;
    const sent = await flooding;
    expect(onBackpressure.mock.calls[0]![0]).toBe(server);
    expect(server.readyState).toBe(1);
    expect(server.bufferedAmount).toBeGreaterThan(64 * KiB);

    raw.socket.resume();
    await waitFor(() => raw.reader.frames.length === sent, 20_000, 'every frame');
    raw.reader.frames.forEach((f, i) => {
      expect(f.opcode).toBe(Opcode.BINARY);
      expect(f.payload.readUInt32BE(0)).toBe(i);
    });
    expect(server.readyState).toBe(1);
  });

  it('paces a loop of `await ws.send(bigChunk)` to the reader', async () => {
    const next = nextConnection();
    const { port } = await startServer(res, next.handler, { pingInterval: 0 });
    const raw = await rawClient(res, port);
    raw.socket.pause();
    const server = await next.ws;
    const N = 200;
    const CHUNK = 128 * KiB; // 25 MiB in all: more than any socket buffer
    let done = 0;
    const loop = (async () => {
      for (let i = 0; i < N; i++) {
        await server.send(numbered(i, CHUNK));
        done++;
      }
    })();
    const stalledAt = await settle(() => done);
    expect(stalledAt).toBeLessThan(N);
    // Only about one chunk waits in user space: the rest is the kernel's.
    expect(server.bufferedAmount).toBeLessThanOrEqual(2 * (CHUNK + 14));

    raw.socket.resume();
    await within(loop, 30_000, 'the send loop to finish once the peer reads');
    await waitFor(() => raw.reader.frames.length === N, 30_000, 'every frame');
    raw.reader.frames.forEach((f, i) => {
      expect(f.payload.length).toBe(CHUNK);
      expect(f.payload.readUInt32BE(0)).toBe(i);
    });
  });
});

describe('write coalescing', () => {
  it('sends many small messages of one tick in fewer socket writes than sends', async () => {
    const COUNT = 100;
    const { port } = await startServer(
      res,
      (ws) => {
        ws.on('message', () => {
          for (let i = 0; i < COUNT; i++) ws.send(`m${i}`).catch(() => {});
        });
      },
      { pingInterval: 0 },
    );
    const raw = await rawClient(res, port);
    const proto = Socket.prototype as unknown as Record<
      '_write' | '_writev',
      (...args: unknown[]) => unknown
    >;
    const original = { _write: proto._write, _writev: proto._writev };
    let writes = 0;
    const rawPort = raw.socket.localPort;
    const counting = (fn: (...args: unknown[]) => unknown) =>
      function (this: Socket, ...args: unknown[]) {
        if (this.remotePort === rawPort) writes++;
        return fn.apply(this, args);
      };
    proto._write = counting(original._write);
    proto._writev = counting(original._writev);
    try {
      const readsBefore = raw.reader.reads;
      raw.send({ opcode: Opcode.TEXT, payload: 'go' });
      await waitFor(() => raw.reader.frames.length === COUNT, 5000, 'all messages');
      expect(raw.reader.frames.map((f) => f.payload.toString())).toEqual(
        Array.from({ length: COUNT }, (_, i) => `m${i}`),
      );
      expect(writes).toBeGreaterThan(0); // the spy saw the server socket at all
      expect(writes).toBeLessThan(COUNT / 10);
      expect(raw.reader.reads - readsBefore).toBeLessThan(COUNT);
    } finally {
      proto._write = original._write;
      proto._writev = original._writev;
    }
  });
});

describe('default size limits (1 MiB)', () => {
  it('echoes a message of exactly 1 MiB', async () => {
    const { port } = await startServer(res, (ws) => echo(ws), { pingInterval: 0 });
    const raw = await rawClient(res, port);
    raw.send({ opcode: Opcode.BINARY, payload: numbered(7, MiB) });
    const frame = await raw.next(20_000);
    expect(frame.opcode).toBe(Opcode.BINARY);
    expect(frame.payload.length).toBe(MiB);
    expect(frame.payload.readUInt32BE(0)).toBe(7);
  });

  it('closes with 1009 on a single frame of 1 MiB + 1', async () => {
    const { port } = await startServer(res, (ws) => echo(ws), { pingInterval: 0 });
    const raw = await rawClient(res, port);
    raw.write(frameBytes({ opcode: Opcode.BINARY, payload: Buffer.alloc(MiB + 1) }, true));
    const frame = await raw.next(10_000);
    expect(frame.opcode).toBe(Opcode.CLOSE);
    expect(closeCode(frame)).toBe(1009);
    await within(raw.ended, 5000);
  });

  it('closes with 1009 on a fragmented message of 1 MiB + 1', async () => {
    const { port } = await startServer(res, (ws) => echo(ws), { pingInterval: 0 });
    const raw = await rawClient(res, port);
    raw.sendAll([
      { opcode: Opcode.BINARY, fin: false, payload: Buffer.alloc(MiB / 2) },
      { opcode: 0, fin: false, payload: Buffer.alloc(MiB / 2) },
      { opcode: 0, fin: true, payload: Buffer.alloc(1) },
    ]);
    const frame = await raw.next(10_000);
    expect(frame.opcode).toBe(Opcode.CLOSE);
    expect(closeCode(frame)).toBe(1009);
  });

  it('our client gets 1009 from a default server when it sends 1 MiB + 1', async () => {
    const { url } = await startServer(res, (ws) => echo(ws), { pingInterval: 0 });
    const client = await connect(url, { pingInterval: 0 });
    res.add(() => client.terminate());
    const closed = new Promise<number>((resolve) => client.once('close', (code: number) => resolve(code)));
    await client.send(Buffer.alloc(MiB + 1));
    expect(await within(closed, 10_000)).toBe(1009);
  });
});
