/**
 * permessage-deflate interop with the `ws` npm package, both ways: a `ws` server with our
 * client, and our server with a `ws` client. For each of ws's perMessageDeflate parameters
 * (serverNoContextTakeover, clientNoContextTakeover, serverMaxWindowBits 8..15,
 * clientMaxWindowBits true / 8..15, threshold) both sides must report the same
 * Sec-WebSocket-Extensions, and text and binary messages of 16 B .. 1 MiB, fragmented and
 * not, must come back byte for byte through an echo on the other side.
 *
 * Windows of 8 bits: zlib has no raw 8-bit deflate, so both wskit and `ws` compress with
 * zlib at 9 bits, whose matches reach at most 250 bytes back (a valid 8-bit stream); both
 * inflate what they receive (wskit with 9 bits, `ws` with 8). The frames wskit sends with its
 * own 8-bit window are read off the wire: RSV1 set, and the payloads inflate with zlib at 8.
 */
import { createHash } from 'node:crypto';
import type { AddressInfo, Socket } from 'node:net';
import { inflateRawSync, constants as zconst } from 'node:zlib';
import {
  type ClientOptions,
  connect,
  type Frame,
  type Message,
  type ServerOptions,
  type WebSocket,
  WebSocketServer,
} from '@wskit/core';
import { parseExtensions } from '@wskit/core/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import {
  WebSocket as WsClient,
  type PerMessageDeflateOptions as WsDeflateOptions,
  WebSocketServer as WsServer,
} from 'ws';
import { zlibContexts } from '../../packages/core/src/node/deflate.js';

const MiB = 1024 * 1024;
const LIMITS = { maxMessageSize: 4 * MiB, maxFrameSize: 4 * MiB } as const;
const SIZES = [16, 1000, 1024, 16 * 1024, 100_000, MiB];

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** ASCII, JSON-like, deterministic: compressible like real traffic. */
function textPayload(size: number): string {
  let s = '';
  let i = 0;
  while (s.length < size) {
    s += `{"seq":${i},"user":"u${(i * 7919) % 1000}","tags":["a${i % 13}","b${i % 7}"],"ok":${i % 2 === 0}},`;
    i++;
  }
  return s.slice(0, size);
}

/** Deterministic bytes: half pseudo-random (incompressible), half a repeating pattern. */
function binaryPayload(size: number): Buffer {
  const out = Buffer.allocUnsafe(size);
  let x = size | 1;
  for (let i = 0; i < size; i++) {
    if ((i >> 10) % 2 === 0) {
      x = (x * 1103515245 + 12345) >>> 0;
      out[i] = x >>> 24;
    } else {
      out[i] = (i * 31) & 0xff;
    }
  }
  return out;
}

/** Three pieces (some may be empty for tiny sizes). */
function thirds<T extends string | Buffer>(data: T): T[] {
  const n = data.length;
  const a = Math.floor(n / 3);
  const b = Math.floor((2 * n) / 3);
  return [data.slice(0, a), data.slice(a, b), data.slice(b)] as T[];
}

/** The parameters of one extensions header, sorted (for order-independent comparison). */
function paramsOf(header: string): string[] {
  const [ext, ...rest] = parseExtensions(header);
  expect(rest).toHaveLength(0);
  expect(ext?.name).toBe('permessage-deflate');
  return ext!.params.map(([k, v]) => (v === true ? k : `${k}=${v}`)).sort();
}

/** A frame as seen on the wire. */
interface WireFrame {
  fin: boolean;
  /** RSV bits as in Frame.rsv: 4 is RSV1. */
  rsv: number;
  opcode: number;
  masked: boolean;
  length: number;
  /** The payload, unmasked. */
  payload: Buffer;
}

/**
 * Reads the frames of everything `socket` receives from now on. The listener goes first and
 * copies each chunk: ws unmasks what it receives in place, in the very buffers emitted.
 */
function tapFrames(socket: Socket): WireFrame[] {
  const frames: WireFrame[] = [];
  let buffered = Buffer.alloc(0);
  socket.prependListener('data', (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    for (;;) {
      if (buffered.length < 2) return;
      const b0 = buffered[0]!;
      const b1 = buffered[1]!;
      let length = b1 & 0x7f;
      let offset = 2;
      if (length === 126) {
        offset = 4;
        if (buffered.length < offset) return;
        length = buffered.readUInt16BE(2);
      } else if (length === 127) {
        offset = 10;
        if (buffered.length < offset) return;
        length = Number(buffered.readBigUInt64BE(2));
      }
      const masked = (b1 & 0x80) !== 0;
      const mask = masked ? offset : -1;
      if (masked) offset += 4;
      if (buffered.length < offset + length) return;
      const payload = Buffer.from(buffered.subarray(offset, offset + length));
      if (masked) for (let i = 0; i < length; i++) payload[i] = payload[i]! ^ buffered[mask + (i & 3)]!;
      frames.push({ fin: (b0 & 0x80) !== 0, rsv: (b0 >> 4) & 7, opcode: b0 & 0x0f, masked, length, payload });
      buffered = buffered.subarray(offset + length);
    }
  });
  return frames;
}

/**
 * The messages of a connection (context takeover: one DEFLATE stream, each message with its
 * 00 00 ff ff put back) inflated by zlib with an 8-bit window and 64-byte output buffers
 * (Node's smallest), so that it checks distances against the window: anything more than
 * 256 + 63 bytes back fails with "invalid distance too far back".
 */
function inflate8(messages: Buffer[]): Buffer {
  const tail = Buffer.from([0x00, 0x00, 0xff, 0xff]);
  const stream = Buffer.concat(messages.flatMap((m) => [m, tail]));
  return inflateRawSync(stream, { windowBits: 8, chunkSize: 64, finishFlush: zconst.Z_SYNC_FLUSH });
}

// ---- resources -------------------------------------------------------------------------

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) {
    try {
      await fn();
    } catch {
      // keep cleaning
    }
  }
});

class Queue<T> {
  private items: T[] = [];
  private waiters: Array<(v: T) => void> = [];
  push(v: T): void {
    const w = this.waiters.shift();
    if (w) w(v);
    else this.items.push(v);
  }
  shift(ms = 20_000): Promise<T> {
    const v = this.items.shift();
    if (v !== undefined) return Promise.resolve(v);
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('timed out waiting for a message')), ms);
      this.waiters.push((item) => {
        clearTimeout(timer);
        resolve(item);
      });
    });
  }
}

interface Received {
  data: Buffer;
  binary: boolean;
}

/** A ws socket's messages, queued. */
function wsMessages(ws: WsClient): Queue<Received> {
  const q = new Queue<Received>();
  ws.on('message', (data, isBinary) => {
    const buf = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
    q.push({ data: buf, binary: isBinary });
  });
  return q;
}

/** Sends with ws, in three fragments when asked; resolves once written. */
async function wsSend(ws: WsClient, data: string | Buffer, fragmented: boolean): Promise<void> {
  const binary = typeof data !== 'string';
  const parts = fragmented ? thirds(data) : [data];
  for (let i = 0; i < parts.length; i++) {
    await new Promise<void>((resolve, reject) =>
      ws.send(parts[i]!, { binary, fin: i === parts.length - 1 }, (err) => (err ? reject(err) : resolve())),
    );
  }
}

/** Sends with wskit, in three fragments when asked. */
async function ourSend(ws: WebSocket, data: string | Buffer, fragmented: boolean): Promise<void> {
  const binary = typeof data !== 'string';
  const parts = fragmented ? thirds(data) : [data];
  for (let i = 0; i < parts.length; i++) {
    await ws.send(parts[i]!, { binary, fin: i === parts.length - 1 });
  }
}

/** Records inbound frames of a wskit connection (opcode, RSV, fin). */
function spy(ws: WebSocket): Frame[] {
  const frames: Frame[] = [];
  ws.use({
    name: 'interop-spy',
    inbound(frame) {
      frames.push({ ...frame, payload: Buffer.alloc(0) });
      return frame;
    },
  });
  return frames;
}

/** A ws server echoing every message; on '/frag' the echo goes back in three fragments. */
async function startWsServer(perMessageDeflate: WsDeflateOptions | boolean) {
  const server = new WsServer({ port: 0, host: '127.0.0.1', perMessageDeflate, maxPayload: 8 * MiB });
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  const sockets = new Queue<{ ws: WsClient; header: string | undefined; wire: WireFrame[] }>();
  // The Sec-WebSocket-Extensions that ws answers with (its ws.extensions only has names).
  const answered = new WeakMap<object, string | undefined>();
  server.on('headers', (headers, req) => {
    const line = headers.find((h) => /^sec-websocket-extensions:/i.test(h));
    answered.set(req, line?.slice(line.indexOf(':') + 1).trim());
  });
  server.on('connection', (ws, req) => {
    // What the client sends from now on, read off the wire.
    const wire = tapFrames(req.socket);
    const fragmented = req.url === '/frag';
    ws.on('message', (data, isBinary) => {
      const buf = Buffer.isBuffer(data) ? data : Buffer.concat(data as Buffer[]);
      void wsSend(ws, isBinary ? buf : buf.toString('utf8'), fragmented).catch(() => {});
    });
    sockets.push({ ws, header: answered.get(req), wire });
  });
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const ws of server.clients) ws.terminate();
        server.close(() => resolve());
      }),
  );
  const { port } = server.address() as AddressInfo;
  return { url: (path = '/') => `ws://127.0.0.1:${port}${path}`, sockets };
}

/** Our server echoing every message; on '/frag' the echo goes back in three fragments. */
async function startOurServer(perMessageDeflate: ServerOptions['perMessageDeflate']) {
  const wss = new WebSocketServer({ pingInterval: 0, closeTimeout: 2000, perMessageDeflate, ...LIMITS });
  const sockets = new Queue<{ ws: WebSocket; frames: Frame[] }>();
  wss.route('/*', async (ws, req) => {
    const frames = spy(ws);
    sockets.push({ ws, frames });
    const fragmented = req.path === '/frag';
    for await (const m of ws) await ourSend(ws, m.type === 'binary' ? m.data : m.text(), fragmented);
  });
  const { port } = await wss.listen(0, '127.0.0.1');
  cleanups.push(() => wss.close());
  return { url: (path = '/') => `ws://127.0.0.1:${port}${path}`, sockets };
}

async function ourClient(
  url: string,
  perMessageDeflate: ClientOptions['perMessageDeflate'],
): Promise<WebSocket> {
  const ws = await connect(url, { pingInterval: 0, closeTimeout: 2000, perMessageDeflate, ...LIMITS });
  cleanups.push(() => (ws.readyState < 2 ? ws.close() : ws.terminate()));
  return ws;
}

/**
 * A ws client, open, with the Sec-WebSocket-Extensions of the 101 it got and the frames
 * the server sends it, read off the wire.
 */
async function wsClient(
  url: string,
  perMessageDeflate: WsDeflateOptions | boolean,
): Promise<{ ws: WsClient; header: string | undefined; wire: WireFrame[] }> {
  const ws = new WsClient(url, { perMessageDeflate, maxPayload: 8 * MiB });
  cleanups.push(() => ws.terminate());
  let header: string | undefined;
  let wire: WireFrame[] = [];
  ws.once('upgrade', (res) => {
    const value = res.headers['sec-websocket-extensions'];
    header = Array.isArray(value) ? value.join(', ') : value;
    // Our server sends nothing before the client speaks, so no frame is in the 101's chunk.
    wire = tapFrames(res.socket);
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  ws.on('error', () => {});
  return { ws, header, wire };
}

async function receive(ws: WebSocket): Promise<Message> {
  const m = await ws.receive();
  if (m === null) throw new Error('closed before the echo came back');
  return m;
}

// ---- the parameter combinations ---------------------------------------------------------

interface Combo {
  name: string;
  /** ws's perMessageDeflate option (on whichever side ws is). */
  ws: WsDeflateOptions;
  /** Our client's offer when ws is the server (compatible with ws's requirements). */
  ourClient: ClientOptions['perMessageDeflate'];
  /** Our server's options when ws is the client. */
  ourServer: ServerOptions['perMessageDeflate'];
  /** Expected agreed parameters, ws as the server / ws as the client. */
  expectWsServer: string[];
  expectWsClient: string[];
}

const combos: Combo[] = [
  { name: 'defaults', ws: {}, ourClient: true, ourServer: true, expectWsServer: [], expectWsClient: [] },
  {
    name: 'serverNoContextTakeover',
    ws: { serverNoContextTakeover: true },
    ourClient: true,
    ourServer: true,
    expectWsServer: ['server_no_context_takeover'],
    expectWsClient: ['server_no_context_takeover'],
  },
  {
    name: 'clientNoContextTakeover',
    ws: { clientNoContextTakeover: true },
    ourClient: true,
    ourServer: { clientNoContextTakeover: true },
    expectWsServer: ['client_no_context_takeover'],
    expectWsClient: ['client_no_context_takeover'],
  },
  // With 8, wskit as the server compresses with zlib at 9 bits; ws inflates with 8.
  ...[8, 9, 10, 11, 12, 13, 14, 15].map(
    (bits): Combo => ({
      name: `serverMaxWindowBits ${bits}`,
      ws: { serverMaxWindowBits: bits },
      ourClient: true,
      ourServer: true,
      expectWsServer: [`server_max_window_bits=${bits}`],
      expectWsClient: [`server_max_window_bits=${bits}`],
    }),
  ),
  {
    name: 'clientMaxWindowBits true',
    ws: { clientMaxWindowBits: true },
    ourClient: { clientMaxWindowBits: 11 },
    ourServer: { clientMaxWindowBits: 12 },
    expectWsServer: ['client_max_window_bits=11'],
    expectWsClient: ['client_max_window_bits=12'],
  },
  // With 8, wskit as the client compresses with zlib at 9 bits; ws inflates with 8.
  ...[8, 9, 10, 11, 12, 13, 14, 15].map(
    (bits): Combo => ({
      name: `clientMaxWindowBits ${bits}`,
      ws: { clientMaxWindowBits: bits },
      ourClient: { clientMaxWindowBits: true },
      ourServer: true,
      expectWsServer: [`client_max_window_bits=${bits}`],
      expectWsClient: [`client_max_window_bits=${bits}`],
    }),
  ),
  {
    name: 'threshold 0, no context takeover either way',
    ws: { threshold: 0, serverNoContextTakeover: true, clientNoContextTakeover: true },
    ourClient: true,
    ourServer: { clientNoContextTakeover: true },
    expectWsServer: ['client_no_context_takeover', 'server_no_context_takeover'],
    expectWsClient: ['client_no_context_takeover', 'server_no_context_takeover'],
  },
  {
    name: 'threshold 20000, no context takeover either way',
    ws: { threshold: 20_000, serverNoContextTakeover: true, clientNoContextTakeover: true },
    ourClient: { threshold: 20_000 },
    ourServer: { clientNoContextTakeover: true, threshold: 20_000 },
    expectWsServer: ['client_no_context_takeover', 'server_no_context_takeover'],
    expectWsClient: ['client_no_context_takeover', 'server_no_context_takeover'],
  },
  {
    name: 'everything at once',
    ws: {
      serverNoContextTakeover: true,
      clientNoContextTakeover: true,
      serverMaxWindowBits: 10,
      clientMaxWindowBits: 9,
      zlibDeflateOptions: { level: 1, memLevel: 4 },
    },
    ourClient: { clientMaxWindowBits: true, level: 9, memLevel: 9 },
    ourServer: { clientNoContextTakeover: true, level: 1 },
    expectWsServer: [
      'client_max_window_bits=9',
      'client_no_context_takeover',
      'server_max_window_bits=10',
      'server_no_context_takeover',
    ],
    expectWsClient: [
      'client_max_window_bits=9',
      'client_no_context_takeover',
      'server_max_window_bits=10',
      'server_no_context_takeover',
    ],
  },
];

/**
 * Does ws send this message compressed? ws applies its threshold only when its own side
 * agreed to no context takeover, and decides on the size of the first fragment.
 */
function wsCompresses(combo: Combo, wsIsServer: boolean, size: number, fragmented: boolean): boolean {
  const agreed = wsIsServer ? combo.expectWsServer : combo.expectWsClient;
  const own = wsIsServer ? 'server_no_context_takeover' : 'client_no_context_takeover';
  if (!agreed.includes(own)) return true;
  const first = fragmented ? Math.floor(size / 3) : size;
  return first >= (combo.ws.threshold ?? 1024);
}

const payloads: Array<{ label: string; data: string | Buffer; size: number }> = SIZES.flatMap((size) => [
  { label: `text ${size}`, data: textPayload(size), size },
  { label: `binary ${size}`, data: binaryPayload(size), size },
]);

describe.each(combos)('ws perMessageDeflate: $name', (combo) => {
  it('ws server, wskit client: same extensions, every message echoes back exactly', async () => {
    const server = await startWsServer(combo.ws);
    for (const fragmented of [false, true]) {
      const ws = await ourClient(server.url(fragmented ? '/frag' : '/'), combo.ourClient);
      const peer = await server.sockets.shift();
      // ws reports the names only; the header it answered with is our full string.
      expect(peer.ws.extensions).toBe('permessage-deflate');
      expect(ws.extensions).toBe(peer.header);
      expect(paramsOf(ws.extensions)).toEqual(combo.expectWsServer);
      const frames = spy(ws);
      for (const p of payloads) {
        await ourSend(ws, p.data, fragmented);
        const m = await receive(ws);
        expect(m.type, p.label).toBe(typeof p.data === 'string' ? 'text' : 'binary');
        expect(m.size, p.label).toBe(p.size);
        expect(sha(m.data), p.label).toBe(sha(Buffer.from(p.data)));
      }
      // What ws sent us: RSV1 on the first frame of each compressed message only.
      const firsts = frames.filter((f) => f.opcode !== 0);
      const continuations = frames.filter((f) => f.opcode === 0);
      expect(firsts).toHaveLength(payloads.length);
      expect(continuations.every((f) => f.rsv === 0)).toBe(true);
      if (fragmented) expect(continuations.length).toBe(2 * payloads.length);
      expect(firsts.map((f) => f.rsv)).toEqual(
        payloads.map((p) => (wsCompresses(combo, true, p.size, fragmented) ? 4 : 0)),
      );
      await ws.close();
    }
  });

  it('wskit server, ws client: same extensions, every message echoes back exactly', async () => {
    const server = await startOurServer(combo.ourServer);
    for (const fragmented of [false, true]) {
      const { ws, header } = await wsClient(server.url(fragmented ? '/frag' : '/'), combo.ws);
      const messages = wsMessages(ws);
      const { ws: peer, frames } = await server.sockets.shift();
      expect(ws.extensions).toBe('permessage-deflate');
      expect(peer.extensions).toBe(header);
      expect(paramsOf(peer.extensions)).toEqual(combo.expectWsClient);
      for (const p of payloads) {
        await wsSend(ws, p.data, fragmented);
        const m = await messages.shift();
        expect(m.binary, p.label).toBe(typeof p.data !== 'string');
        expect(m.data.length, p.label).toBe(p.size);
        expect(sha(m.data), p.label).toBe(sha(Buffer.from(p.data)));
      }
      const firsts = frames.filter((f) => f.opcode === 1 || f.opcode === 2);
      expect(firsts).toHaveLength(payloads.length);
      expect(frames.filter((f) => f.opcode === 0).every((f) => f.rsv === 0)).toBe(true);
      expect(firsts.map((f) => f.rsv)).toEqual(
        payloads.map((p) => (wsCompresses(combo, false, p.size, fragmented) ? 4 : 0)),
      );
      const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
      ws.close(1000);
      expect(await closed).toBe(1000);
      await peer.closed;
    }
  });
});

describe('offers and fallbacks against ws', () => {
  it('a ws server that declines the first offer takes the second: [{ serverMaxWindowBits: 10 }, {}]', async () => {
    const server = await startWsServer({ serverMaxWindowBits: 12 });
    const ws = await ourClient(server.url(), [{ serverMaxWindowBits: 10 }, {}]);
    const peer = await server.sockets.shift();
    expect(ws.extensions).toBe('permessage-deflate; server_max_window_bits=12');
    expect(peer.header).toBe(ws.extensions);
    expect(peer.ws.extensions).toBe('permessage-deflate');
    const data = textPayload(50_000);
    await ws.send(data);
    expect((await receive(ws)).text()).toBe(data);
  });

  it('a ws server without compression: no extension, messages still flow', async () => {
    const server = await startWsServer(false);
    const ws = await ourClient(server.url(), true);
    expect(ws.extensions).toBe('');
    expect((await server.sockets.shift()).ws.extensions).toBe('');
    await ws.send(textPayload(5000));
    expect((await receive(ws)).text()).toBe(textPayload(5000));
  });

  it('a ws client without compression gets none from our server', async () => {
    const server = await startOurServer(true);
    const { ws, header } = await wsClient(server.url(), false);
    const { ws: peer } = await server.sockets.shift();
    expect(header).toBeUndefined();
    expect(ws.extensions).toBe('');
    expect(peer.extensions).toBe('');
  });

  const eightBitPayloads = [
    { data: textPayload(16) as string | Buffer, size: 16 },
    { data: textPayload(5000), size: 5000 },
    { data: binaryPayload(5000), size: 5000 },
    { data: textPayload(300_000), size: 300_000 },
  ];
  const opcodeOf = (data: string | Buffer) => (typeof data === 'string' ? 1 : 2);

  it('our server accepts a ws client that asks server_max_window_bits=8, and compresses what it sends', async () => {
    const server = await startOurServer({ threshold: 0 });
    // ws inflates with windowBits 8; 64-byte output buffers make its zlib check the distances.
    const { ws, header, wire } = await wsClient(server.url(), {
      serverMaxWindowBits: 8,
      zlibInflateOptions: { chunkSize: 64 },
    });
    const messages = wsMessages(ws);
    const { ws: peer, frames } = await server.sockets.shift();
    // ws offered "permessage-deflate; server_max_window_bits=8; client_max_window_bits".
    expect(header).toBe('permessage-deflate; server_max_window_bits=8');
    expect(peer.extensions).toBe(header);
    expect(ws.extensions).toBe('permessage-deflate');
    for (const p of eightBitPayloads) {
      await wsSend(ws, p.data, false);
      const m = await messages.shift();
      expect(m.binary).toBe(typeof p.data !== 'string');
      expect(sha(m.data), String(p.size)).toBe(sha(Buffer.from(p.data)));
    }
    // ws compressed every message it sent (its window is 15 bits), and we inflated them...
    expect(frames.map((f) => [f.opcode, f.rsv])).toEqual(eightBitPayloads.map((p) => [opcodeOf(p.data), 4]));
    // ...and our echoes went out compressed too (threshold 0): RSV1 set, unmasked, the text
    // ones far smaller than the text; ws inflated them all with its 8-bit window (above).
    expect(wire.map((f) => [f.opcode, f.rsv, f.fin, f.masked])).toEqual(
      eightBitPayloads.map((p) => [opcodeOf(p.data), 4, true, false]),
    );
    expect(wire[1]!.length).toBeLessThan(5000 / 3);
    expect(wire[3]!.length).toBeLessThan(300_000 / 3);
    // zlib with an 8-bit window reads the whole stream of our messages.
    expect(sha(inflate8(wire.map((f) => f.payload)))).toBe(
      sha(Buffer.concat(eightBitPayloads.map((p) => Buffer.from(p.data)))),
    );
  });

  it('our client with a ws server that sets client_max_window_bits=8: both sides compress', async () => {
    const server = await startWsServer({
      clientMaxWindowBits: 8,
      threshold: 0,
      zlibInflateOptions: { chunkSize: 64 },
    });
    const ws = await ourClient(server.url(), { clientMaxWindowBits: true, threshold: 0 });
    const peer = await server.sockets.shift();
    expect(ws.extensions).toBe('permessage-deflate; client_max_window_bits=8');
    expect(peer.header).toBe(ws.extensions);
    const frames = spy(ws);
    for (const p of eightBitPayloads) {
      await ourSend(ws, p.data, false);
      const m = await receive(ws);
      expect(m.type).toBe(typeof p.data === 'string' ? 'text' : 'binary');
      expect(sha(m.data), String(p.size)).toBe(sha(Buffer.from(p.data)));
    }
    // Ours, on the wire: masked, RSV1 set (threshold 0), the text ones far smaller than the
    // text; the ws server inflated them with its 8-bit window (the echoes above), and so does
    // zlib here.
    expect(peer.wire.map((f) => [f.opcode, f.rsv, f.fin, f.masked])).toEqual(
      eightBitPayloads.map((p) => [opcodeOf(p.data), 4, true, true]),
    );
    expect(peer.wire[1]!.length).toBeLessThan(5000 / 3);
    expect(peer.wire[3]!.length).toBeLessThan(300_000 / 3);
    expect(sha(inflate8(peer.wire.map((f) => f.payload)))).toBe(
      sha(Buffer.concat(eightBitPayloads.map((p) => Buffer.from(p.data)))),
    );
    // ws's echoes (its own window is 15 bits) came compressed, and we inflated them.
    expect(frames.map((f) => f.rsv)).toEqual(eightBitPayloads.map(() => 4));
  });

  it('a ws client with client_max_window_bits=8 is inflated with 9 bits', async () => {
    const server = await startOurServer({ clientMaxWindowBits: 8 });
    const { ws, header } = await wsClient(server.url(), { clientMaxWindowBits: true });
    const messages = wsMessages(ws);
    const { ws: peer } = await server.sockets.shift();
    expect(peer.extensions).toBe('permessage-deflate; client_max_window_bits=8');
    expect(header).toBe(peer.extensions);
    for (const size of [16, 5000, 300_000]) {
      const data = textPayload(size);
      await wsSend(ws, data, false);
      expect((await messages.shift()).data.toString()).toBe(data);
    }
  });

  it('all zlib contexts are released once the connections are closed', async () => {
    const server = await startOurServer(true);
    const { ws } = await wsClient(server.url(), true);
    const messages = wsMessages(ws);
    const { ws: peer } = await server.sockets.shift();
    await wsSend(ws, textPayload(5000), false);
    await messages.shift();
    expect(zlibContexts()).toBeGreaterThan(0);
    ws.close();
    await peer.closed;
    expect(zlibContexts()).toBe(0);
  });
});
