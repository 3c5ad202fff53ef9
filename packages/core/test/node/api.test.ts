import {
  type ClientOptions,
  connect,
  type Handler,
  InvalidStateError,
  type Message,
  type ServerOptions,
  WebSocket,
  WebSocketServer,
} from '@wskit/core';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, HOST, track, waitFor, withTimeout } from '../../../../test/support/clients.js';
import { closeCodeToReason, reasonToCloseCode } from '../../src/protocol/close-codes.js';
import { CLOSE_CODE_TABLE } from '../helpers.js';
import { serve } from './util.js';

afterEach(cleanup);

interface Pair {
  client: WebSocket;
  /** The server side of the same connection. */
  server: WebSocket;
  wss: WebSocketServer;
}

/** A server running `handler` and one client connected to it. */
async function pair(
  handler: Handler = () => {},
  serverOptions: ServerOptions = {},
  clientOptions: ClientOptions = {},
): Promise<Pair> {
  let serverSide: WebSocket | undefined;
  const wss = new WebSocketServer(serverOptions).route('/*', (ws, req) => {
    serverSide = ws;
    return handler(ws, req);
  });
  const port = await serve(wss);
  const client = track(await connect(`ws://${HOST}:${port}/api`, clientOptions));
  await waitFor(() => serverSide !== undefined);
  return { client, server: serverSide!, wss };
}

/**
 * Counts the data frames `ws` has read off its socket (an inbound stage), whether or not
 * a reader took them yet: a handler waits on it instead of sleeping until messages queue up.
 */
function arrivals(ws: WebSocket): { count: () => number; atLeast: (n: number) => Promise<void> } {
  let count = 0;
  ws.use({
    name: 'count-arrivals',
    inbound(frame) {
      if (frame.opcode === 1 || frame.opcode === 2) count++;
      return frame;
    },
  });
  return {
    count: () => count,
    atLeast: (n) => waitFor(() => count >= n, 10_000, `${n} messages to arrive`),
  };
}

async function next(ws: WebSocket): Promise<Message> {
  const msg = await withTimeout(ws.receive(), 5000, 'receive');
  expect(msg).not.toBeNull();
  return msg!;
}

/** Describes each message received: "type:hex". */
const describeBack: Handler = async (ws) => {
  for await (const msg of ws) await ws.send(`${msg.type}:${msg.data.toString('hex')}`);
};

describe('send()', () => {
  it('sends strings as text and binary data of every kind as binary', async () => {
    const { client } = await pair(describeBack);
    const backing = new Uint8Array([0xff, 1, 2, 3, 4, 0xff]).buffer;
    const cases: Array<[Parameters<WebSocket['send']>[0], Parameters<WebSocket['send']>[1], string]> = [
      ['héllo', undefined, `text:${Buffer.from('héllo').toString('hex')}`],
      [Buffer.from([0, 1, 2]), undefined, 'binary:000102'],
      [new Uint8Array([9, 8, 7]), undefined, 'binary:090807'],
      // Views must send exactly their window of the underlying buffer.
      [new DataView(backing, 1, 4), undefined, 'binary:01020304'],
      [new Uint8Array(backing, 2, 2), undefined, 'binary:0203'],
      [
        new Uint16Array([0x0102]),
        undefined,
        `binary:${Buffer.from(new Uint16Array([0x0102]).buffer).toString('hex')}`,
      ],
      [new Uint8Array([5, 6]).buffer, undefined, 'binary:0506'],
      ['as binary', { binary: true }, `binary:${Buffer.from('as binary').toString('hex')}`],
      [
        Buffer.from('buffer as text'),
        { binary: false },
        `text:${Buffer.from('buffer as text').toString('hex')}`,
      ],
      ['', undefined, 'text:'],
      [Buffer.alloc(0), undefined, 'binary:'],
    ];
    for (const [data, options, expected] of cases) {
      await expect(client.send(data, options)).resolves.toBeUndefined();
      expect((await next(client)).text(), expected).toBe(expected);
    }
  });

  it('sends large messages intact (64 KiB, 1 MiB)', async () => {
    const { client } = await pair(async (ws) => {
      for await (const msg of ws) await ws.send(msg.data);
    });
    for (const size of [65_536, 1024 * 1024 - 1]) {
      const data = Buffer.alloc(size, 0);
      for (let i = 0; i < size; i++) data[i] = (i * 31) % 251;
      await client.send(data);
      const back = await next(client);
      expect(back.size).toBe(size);
      expect(back.data.equals(data)).toBe(true);
    }
  });

  it('rejects after close, and while closing', async () => {
    const { client } = await pair();
    const closing = client.close();
    // Not a WebSocketError: its code would read like a close code received from the peer.
    await expect(client.send('during closing')).rejects.toBeInstanceOf(InvalidStateError);
    await closing;
    await expect(client.send('after close')).rejects.toThrow(/not open/);
    await expect(client.send(Buffer.from([1]))).rejects.toBeInstanceOf(Error);
    await expect(client.ping()).rejects.toThrow(/not open/);
  });

  it('rejects data it cannot send', async () => {
    const { client } = await pair(describeBack);
    await expect(client.send(42 as unknown as string)).rejects.toBeInstanceOf(TypeError);
    // The connection is still usable.
    await client.send('ok');
    expect((await next(client)).text()).toBe(`text:${Buffer.from('ok').toString('hex')}`);
  });

  it('fin: false sends fragments that arrive as one message', async () => {
    const { client } = await pair(describeBack);
    await client.send('a', { fin: false });
    await client.send('b', { fin: false });
    await client.send('c');
    await client.send('next');
    expect((await next(client)).text()).toBe(`text:${Buffer.from('abc').toString('hex')}`);
    expect((await next(client)).text()).toBe(`text:${Buffer.from('next').toString('hex')}`);

    await client.send(Buffer.from([1]), { fin: false });
    await client.send(Buffer.from([2]), { fin: true });
    expect((await next(client)).text()).toBe('binary:0102');
  });

  it('a message of another type cannot start while a fragmented one is open', async () => {
    const { client } = await pair(describeBack);
    await client.send('a', { fin: false });
    await expect(client.send(Buffer.from([1, 2]))).rejects.toBeInstanceOf(TypeError);
    await expect(client.send('x', { binary: true })).rejects.toBeInstanceOf(TypeError);
    await client.send('b');
    // Only the text message went out, whole.
    expect((await next(client)).text()).toBe(`text:${Buffer.from('ab').toString('hex')}`);
    await client.send(Buffer.from([7]));
    expect((await next(client)).text()).toBe('binary:07');
  });

  it('server-side fragments arrive at the client as one message', async () => {
    const { client } = await pair(async (ws) => {
      await ws.send(Buffer.from('he'), { fin: false, binary: false });
      await ws.send('llo', { fin: true });
    });
    const msg = await next(client);
    expect(msg.type).toBe('text');
    expect(msg.text()).toBe('hello');
  });
});

describe('receiving', () => {
  it('receive() returns messages in order, then null once closed', async () => {
    const { client } = await pair(async (ws) => {
      for (let i = 0; i < 5; i++) await ws.send(`m${i}`);
      await ws.close(1000, 'done');
    });
    const texts: string[] = [];
    for (let i = 0; i < 5; i++) texts.push((await next(client)).text());
    expect(texts).toEqual(['m0', 'm1', 'm2', 'm3', 'm4']);
    expect(await withTimeout(client.receive(), 5000, 'receive at close')).toBeNull();
    expect(await client.receive()).toBeNull();
    expect(await client.closed).toEqual({ code: 1000, reason: 'done', wasClean: true });
  });

  it('a pending receive() resolves with null when the connection closes', async () => {
    const { client, server } = await pair();
    const pending = client.receive();
    server.terminate();
    expect(await withTimeout(pending, 5000, 'pending receive')).toBeNull();
  });

  it('for await yields every message and ends on close', async () => {
    const { client } = await pair(async (ws) => {
      await ws.send('one');
      await ws.send(Buffer.from([2]));
      await ws.send('three');
      await ws.close();
    });
    const got: string[] = [];
    await withTimeout(
      (async () => {
        for await (const msg of client)
          got.push(`${msg.type}:${msg.type === 'text' ? msg.text() : msg.data[0]}`);
      })(),
      5000,
      'for await',
    );
    expect(got).toEqual(['text:one', 'binary:2', 'text:three']);
    // The loop ends at the peer's Close; the TCP close follows.
    expect(client.readyState).toBeGreaterThanOrEqual(WebSocket.CLOSING);
    expect(await client.closed).toMatchObject({ code: 1000, wasClean: true });
    expect(client.readyState).toBe(WebSocket.CLOSED);
  });

  it('Message has type, data, size, text() and json()', async () => {
    const { client } = await pair(async (ws) => {
      await ws.send(JSON.stringify({ a: [1, 'x'] }));
    });
    const msg = await next(client);
    expect(msg.type).toBe('text');
    expect(Buffer.isBuffer(msg.data)).toBe(true);
    expect(msg.size).toBe(13);
    expect(msg.json()).toEqual({ a: [1, 'x'] });
  });

  it('messages sent before the handler reads are queued, none lost, in order (receive)', async () => {
    const result = new Promise<string[]>((resolve) => {
      void pair(async (ws) => {
        await arrivals(ws).atLeast(50);
        const got: string[] = [];
        for (let i = 0; i < 50; i++) got.push((await ws.receive())!.text());
        resolve(got);
        await ws.send('done');
      }).then(async ({ client }) => {
        for (let i = 0; i < 50; i++) void client.send(`#${i}`);
      });
    });
    const got = await withTimeout(result, 10_000, 'all 50 messages');
    expect(got).toEqual(Array.from({ length: 50 }, (_, i) => `#${i}`));
  });

  it('many more messages than the queue holds are delivered in order once the reader starts', async () => {
    const count = 300; // beyond maxQueuedMessages (64): the socket is paused, then resumed
    let received: string[] = [];
    const { client } = await pair(async (ws) => {
      // The queue fills up (64) and the socket is paused before the reader starts.
      await arrivals(ws).atLeast(64);
      const got: string[] = [];
      for await (const msg of ws) {
        got.push(msg.text());
        if (got.length === count) break;
      }
      received = got;
      await ws.send('done');
    });
    for (let i = 0; i < count; i++) void client.send(`#${i}`);
    expect((await next(client)).text()).toBe('done');
    expect(received).toEqual(Array.from({ length: count }, (_, i) => `#${i}`));
  });

  it("a 'message' listener added later gets the queued messages in order, then the new ones", async () => {
    const got: string[] = [];
    let listening!: () => void;
    const listened = new Promise<void>((resolve) => {
      listening = resolve;
    });
    const { client } = await pair(async (ws) => {
      await arrivals(ws).atLeast(50);
      ws.on('message', (msg: Message) => {
        got.push(msg.text());
        if (got.length === 60) void ws.send('all in');
      });
      listening();
    });
    for (let i = 0; i < 50; i++) void client.send(`q${i}`);
    await withTimeout(listened, 10_000, 'the listener');
    for (let i = 50; i < 60; i++) void client.send(`q${i}`);
    expect((await next(client)).text()).toBe('all in');
    expect(got).toEqual(Array.from({ length: 60 }, (_, i) => `q${i}`));
  });

  it('consume(handler, { concurrency: 4 }) runs at most 4 at once and processes every message', async () => {
    let running = 0;
    let peak = 0;
    const processed: number[] = [];
    const { client } = await pair(async (ws) => {
      await arrivals(ws).atLeast(20); // all 20 messages queue up first
      await ws.consume(
        async (msg) => {
          running++;
          peak = Math.max(peak, running);
          // A few turns of the event loop: the other handlers start meanwhile.
          for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve));
          processed.push(Number(msg.text()));
          running--;
          if (processed.length === 20) await ws.send('finished');
        },
        { concurrency: 4 },
      );
    });
    for (let i = 0; i < 20; i++) void client.send(String(i));
    expect((await withTimeout(client.receive(), 10_000, 'finished'))?.text()).toBe('finished');
    expect(processed.slice().sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(peak).toBe(4);
    expect(running).toBe(0);
  });

  it('consume() resolves when the connection closes', async () => {
    let consumed: Promise<void> | undefined;
    const seen: string[] = [];
    const { client } = await pair((ws) => {
      consumed = ws.consume((msg) => {
        seen.push(msg.text());
      });
    });
    await client.send('x');
    await client.send('y');
    await client.close();
    await waitFor(() => consumed !== undefined);
    await withTimeout(consumed!, 5000, 'consume');
    expect(seen).toEqual(['x', 'y']);
  });
});

describe('ping', () => {
  it('ping() resolves with the round-trip time and sets ws.rtt', async () => {
    const { client, server } = await pair();
    const pings: string[] = [];
    server.on('ping', (data: Buffer) => pings.push(data.toString()));
    expect(client.rtt).toBeUndefined();
    const rtt = await withTimeout(client.ping('hello'), 5000, 'ping');
    expect(typeof rtt).toBe('number');
    expect(rtt).toBeGreaterThanOrEqual(0);
    expect(client.rtt).toBe(rtt);
    expect(pings).toEqual(['hello']);

    // Without a payload, and from the server side.
    expect(await client.ping()).toBeGreaterThanOrEqual(0);
    expect(server.rtt).toBeUndefined();
    expect(await withTimeout(server.ping(), 5000, 'server ping')).toBeGreaterThanOrEqual(0);
    expect(typeof server.rtt).toBe('number');
  });

  it('a pending ping rejects when the connection goes away', async () => {
    const { client, server } = await pair();
    server.unuse('auto-pong'); // the server never answers
    const seen = new Promise((resolve) => server.once('ping', resolve));
    const pending = client.ping();
    await withTimeout(seen, 5000, 'the ping to arrive');
    server.terminate();
    await expect(withTimeout(pending, 5000, 'ping')).rejects.toBeInstanceOf(Error);
  });

  it('a ping payload over 125 bytes rejects (RFC 6455 §5.5)', async () => {
    const { client } = await pair();
    await expect(client.ping(Buffer.alloc(126))).rejects.toBeInstanceOf(RangeError);
    expect(await client.ping(Buffer.alloc(125, 1))).toBeGreaterThanOrEqual(0);
  });
});

describe('introspection', () => {
  it('readyState goes OPEN -> CLOSING -> CLOSED; the constants are exported', async () => {
    expect([WebSocket.CONNECTING, WebSocket.OPEN, WebSocket.CLOSING, WebSocket.CLOSED]).toEqual([0, 1, 2, 3]);
    const { client, server } = await pair();
    expect(client.readyState).toBe(WebSocket.OPEN);
    expect(server.readyState).toBe(WebSocket.OPEN);
    const events: Array<[number, string]> = [];
    client.on('close', (code: number, reason: string) => events.push([code, reason]));
    const closing = client.close(4000, 'bye');
    expect(client.readyState).toBe(WebSocket.CLOSING);
    await closing;
    expect(client.readyState).toBe(WebSocket.CLOSED);
    expect(events).toEqual([[4000, '']]);
    expect(await server.closed).toEqual({ code: 4000, reason: 'bye', wasClean: true });
    expect(server.readyState).toBe(WebSocket.CLOSED);
  });

  it('reports protocol, extensions, side, addresses, path and bufferedAmount', async () => {
    const { client, server } = await pair(
      () => {},
      { protocols: ['v2'], perMessageDeflate: true },
      { protocols: ['v1', 'v2'], perMessageDeflate: true },
    );
    expect(client.protocol).toBe('v2');
    expect(server.protocol).toBe('v2');
    expect(client.extensions).toMatch(/^permessage-deflate\b/);
    expect(server.extensions).toBe(client.extensions);
    expect(client.isServer).toBe(false);
    expect(server.isServer).toBe(true);
    expect(client.remoteAddress).toBe(HOST);
    expect(client.localAddress).toBe(HOST);
    expect(server.remoteAddress).toBe(HOST);
    expect(server.localAddress).toBe(HOST);
    expect(client.remotePort).toBe(server.localPort);
    expect(server.remotePort).toBe(client.localPort);
    expect(client.path).toBe('/api');
    expect(server.path).toBe('/api');
    expect(typeof client.bufferedAmount).toBe('number');
    expect(client.bufferedAmount).toBe(0);
    expect(server.bufferedAmount).toBe(0);
  });

  it('without extensions or protocols both are empty strings', async () => {
    const { client, server } = await pair();
    expect([client.protocol, client.extensions, server.protocol, server.extensions]).toEqual([
      '',
      '',
      '',
      '',
    ]);
  });
});

describe('close codes', () => {
  it('closeCodeToReason / reasonToCloseCode map both ways (exported from @wskit/core)', () => {
    for (const [code, reason] of CLOSE_CODE_TABLE) {
      expect(closeCodeToReason(code)).toBe(reason);
      expect(reasonToCloseCode(reason)).toBe(code);
    }
  });

  it('unknown codes and reasons throw', () => {
    for (const code of [999, 1004, 1016, 2000, 4000])
      expect(() => closeCodeToReason(code)).toThrow(RangeError);
    for (const reason of ['nope', 'Normal-Closure', ''])
      expect(() => reasonToCloseCode(reason)).toThrow(RangeError);
  });

  it('close() with a code that may not be sent rejects with RangeError and leaves the connection open', async () => {
    const { client } = await pair(async (ws) => {
      for await (const msg of ws) await ws.send(msg.text());
    });
    for (const code of [1005, 999, 1006, 1015, 1004, 2999, 5000, 0]) {
      await expect(client.close(code), String(code)).rejects.toBeInstanceOf(RangeError);
    }
    await expect(client.close(1000, 'x'.repeat(124))).rejects.toBeInstanceOf(RangeError);
    expect(client.readyState).toBe(WebSocket.OPEN);
    await client.send('still open');
    expect((await next(client)).text()).toBe('still open');
    // A valid application code with a reason goes through.
    const info = await client.close(4321, 'x'.repeat(123));
    expect(info.code).toBe(4321);
  });

  it('the peer sees the code and reason given to close()', async () => {
    const { client, server } = await pair();
    await server.close(1008, 'policy');
    expect(await client.closed).toEqual({ code: 1008, reason: 'policy', wasClean: true });
  });

  it('terminate() closes without a handshake: the peer sees 1006', async () => {
    const { client, server } = await pair();
    const serverEvents: number[] = [];
    server.on('close', (code: number) => serverEvents.push(code));
    client.terminate();
    expect(client.readyState).toBe(WebSocket.CLOSED);
    expect(await client.closed).toMatchObject({ code: 1006, wasClean: false });
    expect(await withTimeout(server.closed, 5000, 'server closed')).toEqual({
      code: 1006,
      reason: '',
      wasClean: false,
    });
    expect(serverEvents).toEqual([1006]);

    const other = await pair();
    other.server.terminate();
    expect(await withTimeout(other.client.closed, 5000, 'client closed')).toMatchObject({
      code: 1006,
      wasClean: false,
    });
  });
});
