/**
 * permessage-deflate (RFC 7692), the zlib side and its use by connections: the compressor
 * on its own (round trips, the 00 00 ff ff tail, context takeover, window bits, invalid
 * data, the decompression bomb), the process-wide zlib limiter, and whole connections
 * (negotiation end to end, RSV1, threshold and per-message opt-out, options per server /
 * route / client, 1009 and 1007 closes, client 1010 failures, context release).
 */
import { randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createDeflateRaw, deflateRawSync, inflateRawSync, constants as zconst } from 'node:zlib';
import {
  type ClientOptions,
  connect,
  type Frame,
  type Message,
  type RouteOptions,
  type ServerOptions,
  type UpgradeRequest,
  type WebSocket,
  WebSocketError,
  WebSocketServer,
  zlibLimiter,
} from '@wskit/core';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createPerMessageDeflate, DEFAULT_LEVEL, ZlibLimiter, zlibContexts } from '../src/node/deflate.js';
import { sweepIdleCompressors } from '../src/node/idle-compressors.js';
import { computeAccept } from '../src/protocol/handshake.js';
import type { DeflateParams } from '../src/protocol/permessage-deflate.js';

const TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);
const KiB = 1024;
const MiB = 1024 * 1024;

const PARAMS: DeflateParams = {
  serverNoContextTakeover: false,
  clientNoContextTakeover: false,
  serverMaxWindowBits: 15,
  clientMaxWindowBits: 15,
};

/** JSON-like text: compressible, but not trivially (varying numbers and words). */
function jsonLike(bytes: number, seed = 1): Buffer {
  const words = ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta', 'eta', 'theta'];
  const parts: string[] = [];
  let length = 0;
  let x = seed;
  while (length < bytes) {
    x = (x * 1103515245 + 12345) % 2147483648;
    const item = `{"id":${x % 100000},"name":"${words[x % 8]}","ok":${x % 3 === 0},"v":${(x % 997) / 10}},`;
    parts.push(item);
    length += item.length;
  }
  return Buffer.from(parts.join('').slice(0, bytes));
}

/** A random block repeated: every repeat references data `block` bytes back. */
function repeatedBlock(block: number, times: number): Buffer {
  const b = randomBytes(block);
  return Buffer.concat(Array.from({ length: times }, () => b));
}

/** Deterministic pseudo-random bytes (xorshift32), so that the window tests repeat exactly. */
function pseudoRandom(seed: number): (n: number) => Buffer {
  let x = seed >>> 0 || 1;
  return (n) => {
    const out = Buffer.alloc(n);
    for (let i = 0; i < n; i++) {
      x = (x ^ (x << 13)) >>> 0;
      x = (x ^ (x >>> 17)) >>> 0;
      x = (x ^ (x << 5)) >>> 0;
      out[i] = x & 0xff;
    }
    return out;
  };
}

/**
 * Input on which matches just beyond an 8-bit window are worth taking: for every distance
 * d in 201..300, a random 50-byte block repeated d bytes after its start (random filler in
 * between, so the repeat is the only match), plus a few blocks repeated 400..700 bytes later,
 * and long highly repetitive runs. About 40 KiB.
 */
function farMatches(): Buffer {
  const rnd = pseudoRandom(0x5eed);
  const parts: Buffer[] = [];
  for (let d = 201; d <= 300; d++) {
    const block = rnd(50);
    parts.push(block, rnd(d - 50), block);
    if (d % 10 === 0) parts.push(Buffer.alloc(300 + d, 'ab'), Buffer.alloc(d, d));
  }
  for (let d = 400; d <= 700; d += 50) {
    const block = rnd(60);
    parts.push(block, rnd(d - 60), block);
  }
  return Buffer.concat(parts);
}

/** The fixed tables of RFC 1951 §3.2.5: base and extra bits of length and distance codes. */
const LENGTH_BASE: number[] = [];
const LENGTH_EXTRA: number[] = [];
for (let code = 257, base = 3; code <= 284; code++) {
  const extra = code < 265 ? 0 : (code - 261) >> 2;
  LENGTH_BASE.push(base);
  LENGTH_EXTRA.push(extra);
  base += 1 << extra;
}
LENGTH_BASE.push(258);
LENGTH_EXTRA.push(0);
const DIST_BASE: number[] = [];
const DIST_EXTRA: number[] = [];
for (let code = 0, base = 1; code < 30; code++) {
  const extra = code < 4 ? 0 : (code >> 1) - 1;
  DIST_BASE.push(base);
  DIST_EXTRA.push(extra);
  base += 1 << extra;
}
/** RFC 1951 §3.2.7: the order of the code length code lengths. */
const CL_ORDER = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];

/**
 * A strict raw DEFLATE (RFC 1951) decoder for the window checks: it decodes a whole stream
 * (several messages, each with its 00 00 ff ff put back) and reports the largest distance
 * any back-reference used. zlib's own inflater cannot tell: it checks a distance against
 * its window only when the reference reaches behind the output buffer of the current call.
 */
function inspectDeflate(stream: Buffer): { data: Buffer; maxDistance: number; beyond256: number } {
  let pos = 0; // in bits
  const bit = (): number => {
    if (pos >= stream.length * 8) throw new Error('truncated deflate stream');
    const b = (stream[pos >> 3]! >> (pos & 7)) & 1;
    pos++;
    return b;
  };
  const bits = (n: number): number => {
    let v = 0;
    for (let i = 0; i < n; i++) v |= bit() << i;
    return v;
  };
  /** A canonical Huffman code from code lengths; decoding reads one bit at a time. */
  const huffman = (lengths: number[]) => {
    const counts = new Array<number>(16).fill(0);
    for (const l of lengths) counts[l]!++;
    counts[0] = 0;
    const symbols: number[] = [];
    for (let l = 1; l < 16; l++) {
      for (let sym = 0; sym < lengths.length; sym++) if (lengths[sym] === l) symbols.push(sym);
    }
    return (): number => {
      let code = 0;
      let first = 0;
      let index = 0;
      for (let l = 1; l < 16; l++) {
        code |= bit();
        const count = counts[l]!;
        if (code - first < count) return symbols[index + code - first]!;
        index += count;
        first = (first + count) << 1;
        code <<= 1;
      }
      throw new Error('invalid Huffman code');
    };
  };
  const fixedLit = huffman(
    Array.from({ length: 288 }, (_, i) => (i < 144 ? 8 : i < 256 ? 9 : i < 280 ? 7 : 8)),
  );
  const fixedDist = huffman(new Array<number>(30).fill(5));
  const out: number[] = [];
  let maxDistance = 0;
  let beyond256 = 0;
  let final = false;
  // A message ends with a sync flush (an empty stored block), so the stream ends byte-aligned.
  while (!final && pos < stream.length * 8) {
    final = bit() === 1;
    const type = bits(2);
    if (type === 0) {
      pos = (pos + 7) & ~7;
      const len = bits(16);
      if ((bits(16) ^ 0xffff) !== len) throw new Error('bad stored block length');
      for (let i = 0; i < len; i++) out.push(bits(8));
      continue;
    }
    let lit = fixedLit;
    let dist = fixedDist;
    if (type === 2) {
      const hlit = bits(5) + 257;
      const hdist = bits(5) + 1;
      const hclen = bits(4) + 4;
      const clLengths = new Array<number>(19).fill(0);
      for (let i = 0; i < hclen; i++) clLengths[CL_ORDER[i]!] = bits(3);
      const cl = huffman(clLengths);
      const lengths: number[] = [];
      while (lengths.length < hlit + hdist) {
        const sym = cl();
        if (sym < 16) lengths.push(sym);
        else if (sym === 16) {
          const prev = lengths.at(-1);
          if (prev === undefined) throw new Error('repeat with no previous length');
          for (let n = 3 + bits(2); n > 0; n--) lengths.push(prev);
        } else for (let n = sym === 17 ? 3 + bits(3) : 11 + bits(7); n > 0; n--) lengths.push(0);
      }
      lit = huffman(lengths.slice(0, hlit));
      dist = huffman(lengths.slice(hlit, hlit + hdist));
    } else if (type !== 1) throw new Error('reserved block type');
    for (;;) {
      const sym = lit();
      if (sym < 256) out.push(sym);
      else if (sym === 256) break;
      else {
        const length = LENGTH_BASE[sym - 257]! + bits(LENGTH_EXTRA[sym - 257]!);
        const code = dist();
        if (sym > 285 || code > 29) throw new Error('invalid length or distance code');
        const distance = DIST_BASE[code]! + bits(DIST_EXTRA[code]!);
        if (distance > out.length) throw new Error('distance before the start of the stream');
        if (distance > maxDistance) maxDistance = distance;
        if (distance > 256) beyond256++;
        for (let i = 0; i < length; i++) out.push(out[out.length - distance]!);
      }
    }
  }
  return { data: Buffer.from(out), maxDistance, beyond256 };
}

/**
 * zlib's raw inflate with an 8-bit window (which it does support, unlike deflate), with
 * 64-byte output buffers (the smallest Node allows), so that it checks most distances
 * against the 256-byte window: a reference further back than 256 + 63 bytes always fails.
 */
function inflate8(stream: Buffer): Buffer {
  return inflateRawSync(stream, { windowBits: 8, chunkSize: 64, finishFlush: zconst.Z_SYNC_FLUSH });
}

/** Every compressed message of a connection, each with its tail put back: one stream. */
const asStream = (messages: Buffer[]): Buffer => Buffer.concat(messages.flatMap((m) => [m, TAIL]));

type Compressor = ReturnType<typeof createPerMessageDeflate>;

/** Decompresses one whole message with `c`, collecting the output. */
async function inflateAll(c: Compressor, data: Buffer, limit = 64 * MiB): Promise<Buffer> {
  const out: Buffer[] = [];
  await c.decompress(data, true, limit, (chunk) => out.push(Buffer.from(chunk)));
  return Buffer.concat(out);
}

const settle = <T>(p: Promise<T>) =>
  p.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );

/** Gets V8's gc() without --expose-gc (for steadier heap measurements). */
function getGc(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

// ---------------------------------------------------------------------------------------
// Resources of the connection tests

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

interface Started {
  wss: WebSocketServer;
  port: number;
  url: (path?: string) => string;
  /** Server-side connections and their requests, in order. */
  conns: Array<{ ws: WebSocket; req: UpgradeRequest }>;
  next: () => Promise<{ ws: WebSocket; req: UpgradeRequest }>;
}

/** Our server with an echoing route '/echo' (and '/idle', which only records). */
async function startServer(options: ServerOptions = {}, echoRoute: RouteOptions = {}): Promise<Started> {
  const wss = new WebSocketServer({ pingInterval: 0, closeTimeout: 2000, ...options });
  const conns: Started['conns'] = [];
  const waiters: Array<(c: Started['conns'][number]) => void> = [];
  const record = (ws: WebSocket, req: UpgradeRequest) => {
    const c = { ws, req };
    conns.push(c);
    waiters.shift()?.(c);
  };
  let taken = 0;
  wss.route(
    '/echo',
    async (ws, req) => {
      record(ws, req);
      for await (const m of ws) await ws.send(m.data, { binary: m.type === 'binary' });
    },
    echoRoute,
  );
  wss.route('/idle', (ws, req) => record(ws, req));
  const { port } = await wss.listen(0, '127.0.0.1');
  cleanups.push(() => wss.close());
  return {
    wss,
    port,
    url: (path = '/echo') => `ws://127.0.0.1:${port}${path}`,
    conns,
    next: () => {
      const c = conns[taken];
      if (c !== undefined) {
        taken++;
        return Promise.resolve(c);
      }
      return new Promise((resolve) => {
        waiters.push((conn) => {
          taken++;
          resolve(conn);
        });
      });
    },
  };
}

async function client(url: string, options: ClientOptions = {}): Promise<WebSocket> {
  const ws = await connect(url, { pingInterval: 0, closeTimeout: 2000, ...options });
  cleanups.push(() => (ws.readyState < 2 ? ws.close().catch(() => ws.terminate()) : ws.terminate()));
  return ws;
}

/** Records the inbound frames (after reassembly by the parser, before inflation). */
function spy(ws: WebSocket): Frame[] {
  const frames: Frame[] = [];
  ws.use({
    name: 'test-spy',
    inbound(frame) {
      frames.push({ ...frame, payload: Buffer.from(frame.payload) });
      return frame;
    },
  });
  return frames;
}

/** The WebSocketErrors a connection reports (with propagateCommonErrors). */
function errorsOf(ws: WebSocket): WebSocketError[] {
  const errors: WebSocketError[] = [];
  ws.on('error', (err: unknown) => {
    if (err instanceof WebSocketError) errors.push(err);
  });
  return errors;
}

async function receiveOne(ws: WebSocket): Promise<Message> {
  const m = await ws.receive();
  if (m === null) throw new Error('connection closed before a message arrived');
  return m;
}

/** Waits until `check()` holds (polling), or throws after `ms`. */
async function eventually(check: () => boolean, ms = 10_000, what = 'a condition'): Promise<void> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * A hand-written upgrade request with this Sec-WebSocket-Extensions; resolves with the
 * extensions of the 101 answer (the socket is then dropped).
 */
function rawUpgrade(url: string, extensions: string): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url.replace(/^ws:/, 'http:'), {
      agent: false,
      headers: {
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': randomBytes(16).toString('base64'),
        'Sec-WebSocket-Extensions': extensions,
      },
    });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      const value = res.headers['sec-websocket-extensions'];
      resolve(Array.isArray(value) ? value.join(', ') : value);
    });
    req.on('response', (res) => {
      res.resume();
      reject(new Error(`expected 101, got ${res.statusCode}`));
    });
    req.on('error', reject);
    req.end();
  });
}

// =======================================================================================
// The compressor on its own

describe('compressor round trips', () => {
  const sizes = [0, 1, 100, 1023, 1024, 16 * KiB, 64 * KiB + 7, MiB];

  it.each(sizes)('round-trips %i bytes of text and of random bytes, both directions', async (size) => {
    const server = createPerMessageDeflate(PARAMS, 'server');
    const clientSide = createPerMessageDeflate(PARAMS, 'client');
    try {
      for (const data of [jsonLike(size), randomBytes(size)]) {
        const toClient = await server.compress(data, true);
        expect((await inflateAll(clientSide, toClient)).equals(data)).toBe(true);
        const toServer = await clientSide.compress(data, true);
        expect((await inflateAll(server, toServer)).equals(data)).toBe(true);
      }
    } finally {
      server.close();
      clientSide.close();
    }
  });

  it('round-trips a sequence of different messages with context takeover', async () => {
    const a = createPerMessageDeflate(PARAMS, 'server');
    const b = createPerMessageDeflate(PARAMS, 'client');
    try {
      for (let i = 0; i < 50; i++) {
        const data = i % 3 === 0 ? randomBytes(i * 97) : jsonLike(i * 301, i);
        expect((await inflateAll(b, await a.compress(data, true))).equals(data)).toBe(true);
      }
    } finally {
      a.close();
      b.close();
    }
  });

  it('round-trips a message compressed in fragments (fin=false, then fin=true)', async () => {
    const a = createPerMessageDeflate(PARAMS, 'client');
    const b = createPerMessageDeflate(PARAMS, 'server');
    try {
      const parts = [jsonLike(5000, 1), jsonLike(3, 2), Buffer.alloc(0), jsonLike(20000, 3)];
      const out: Buffer[] = [];
      for (let i = 0; i < parts.length; i++) {
        const fin = i === parts.length - 1;
        const compressed = await a.compress(parts[i]!, fin);
        await b.decompress(compressed, fin, 64 * MiB, (chunk) => out.push(Buffer.from(chunk)));
      }
      expect(Buffer.concat(out).equals(Buffer.concat(parts))).toBe(true);
    } finally {
      a.close();
      b.close();
    }
  });
});

describe('the 00 00 ff ff tail (RFC 7692 §7.2.1)', () => {
  it('removes the tail at the end of a message and a plain inflater reads it once put back', async () => {
    const c = createPerMessageDeflate(PARAMS, 'server');
    try {
      const data = jsonLike(10_000);
      const out = await c.compress(data, true);
      expect(out.subarray(out.length - 4).equals(TAIL)).toBe(false);
      const plain = inflateRawSync(Buffer.concat([out, TAIL]), { finishFlush: zconst.Z_SYNC_FLUSH });
      expect(plain.equals(data)).toBe(true);
    } finally {
      c.close();
    }
  });

  it('keeps the tail on a fragment that does not end the message', async () => {
    const c = createPerMessageDeflate(PARAMS, 'client');
    try {
      const out = await c.compress(jsonLike(3000), false);
      expect(out.subarray(out.length - 4).equals(TAIL)).toBe(true);
    } finally {
      c.close();
    }
  });

  it('compresses an empty message to the single byte 00', async () => {
    const c = createPerMessageDeflate(PARAMS, 'client');
    const d = createPerMessageDeflate(PARAMS, 'server');
    try {
      const out = await c.compress(Buffer.alloc(0), true);
      expect(out.toString('hex')).toBe('00');
      expect((await inflateAll(d, out)).length).toBe(0);
    } finally {
      c.close();
      d.close();
    }
  });

  it('appends the tail when inflating: reads what another deflater produced without it', async () => {
    const d = createPerMessageDeflate(PARAMS, 'client');
    try {
      const data = jsonLike(4000);
      const full = deflateRawSync(data, { finishFlush: zconst.Z_SYNC_FLUSH });
      expect(full.subarray(full.length - 4).equals(TAIL)).toBe(true);
      expect((await inflateAll(d, full.subarray(0, full.length - 4))).equals(data)).toBe(true);
    } finally {
      d.close();
    }
  });

  it('reads messages that end with a BFINAL block (RFC 7692 §7.2.3.4), one after another', async () => {
    const d = createPerMessageDeflate(PARAMS, 'client');
    try {
      for (const text of ['first message', 'second message', 'third one']) {
        const finished = deflateRawSync(Buffer.from(text)); // Z_FINISH: ends with BFINAL=1
        expect((await inflateAll(d, finished)).toString()).toBe(text);
      }
    } finally {
      d.close();
    }
  });
});

describe('context takeover (RFC 7692 §7.1.1)', () => {
  const message = jsonLike(8000, 42);

  async function twoSizes(params: DeflateParams, side: 'client' | 'server'): Promise<[number, number]> {
    const c = createPerMessageDeflate(params, side);
    const peer = createPerMessageDeflate(params, side === 'server' ? 'client' : 'server');
    try {
      const first = await c.compress(message, true);
      const second = await c.compress(message, true);
      // Whatever the sizes, the peer (configured from the same agreement) reads both.
      expect((await inflateAll(peer, first)).equals(message)).toBe(true);
      expect((await inflateAll(peer, second)).equals(message)).toBe(true);
      return [first.length, second.length];
    } finally {
      c.close();
      peer.close();
    }
  }

  it('with takeover, the second identical message is much smaller (both sides)', async () => {
    for (const side of ['server', 'client'] as const) {
      const [first, second] = await twoSizes(PARAMS, side);
      expect(second).toBeLessThan(first / 5);
    }
  });

  it('without takeover, the second identical message is as big as the first', async () => {
    const server = await twoSizes({ ...PARAMS, serverNoContextTakeover: true }, 'server');
    expect(server[1]).toBe(server[0]);
    const clientSide = await twoSizes({ ...PARAMS, clientNoContextTakeover: true }, 'client');
    expect(clientSide[1]).toBe(clientSide[0]);
    // Each side only honours its own parameter: the client keeps its context here.
    const other = await twoSizes({ ...PARAMS, serverNoContextTakeover: true }, 'client');
    expect(other[1]).toBeLessThan(other[0] / 5);
  });

  it('the decompressor of a no-takeover peer is reset between messages (stale context is not needed)', async () => {
    const params = { ...PARAMS, clientNoContextTakeover: true };
    const serverSide = createPerMessageDeflate(params, 'server');
    try {
      // Independent streams, each from a fresh deflater: as a no-takeover client sends.
      for (let i = 0; i < 3; i++) {
        const data = jsonLike(3000, i);
        const raw = deflateRawSync(data, { finishFlush: zconst.Z_SYNC_FLUSH });
        expect((await inflateAll(serverSide, raw.subarray(0, raw.length - 4))).equals(data)).toBe(true);
      }
    } finally {
      serverSide.close();
    }
  });
});

describe('window bits (RFC 7692 §7.1.2)', () => {
  // A random 1000-byte block repeated: with a window >= 1024 bytes the repeats cost almost
  // nothing; with a 512-byte window (9 bits) they can't be referenced at all.
  const data = repeatedBlock(1000, 4);

  it('compresses with the agreed window: 9 bits cannot reach back 1000 bytes, 15 can', async () => {
    const sizes: Record<number, number> = {};
    for (const bits of [9, 10, 11, 15]) {
      const c = createPerMessageDeflate({ ...PARAMS, serverMaxWindowBits: bits }, 'server');
      try {
        expect(c.params.deflateWindowBits).toBe(bits);
        const out = await c.compress(data, true);
        sizes[bits] = out.length;
        // A decompressor with exactly that window reads it.
        const plain = inflateRawSync(Buffer.concat([out, TAIL]), {
          windowBits: bits,
          finishFlush: zconst.Z_SYNC_FLUSH,
        });
        expect(plain.equals(data)).toBe(true);
      } finally {
        c.close();
      }
    }
    expect(sizes[9]).toBeGreaterThan(3500);
    expect(sizes[11]).toBeLessThan(1500);
    expect(sizes[15]).toBeLessThan(1500);
  });

  it('the client compresses with client_max_window_bits', async () => {
    const c = createPerMessageDeflate({ ...PARAMS, clientMaxWindowBits: 9 }, 'client');
    try {
      expect((await c.compress(data, true)).length).toBeGreaterThan(3500);
    } finally {
      c.close();
    }
  });

  it('decompresses with the peer window: a reference further back than it is invalid (1007)', async () => {
    // Two messages from a 15-bit compressor with context takeover: the second one is a
    // reference 1000 bytes back, into the first message, so only the window can serve it.
    const block = randomBytes(1000);
    const sender = createPerMessageDeflate(PARAMS, 'client');
    const first = await sender.compress(block, true);
    const second = await sender.compress(block, true);
    sender.close();
    expect(second.length).toBeLessThan(50);
    const narrow = createPerMessageDeflate({ ...PARAMS, clientMaxWindowBits: 9 }, 'server');
    const wide = createPerMessageDeflate({ ...PARAMS, clientMaxWindowBits: 10 }, 'server');
    try {
      expect(narrow.params.inflateWindowBits).toBe(9);
      expect(wide.params.inflateWindowBits).toBe(10);
      expect((await inflateAll(narrow, first)).equals(block)).toBe(true);
      const r = await settle(inflateAll(narrow, second));
      expect(r.ok).toBe(false);
      expect((r as { error: WebSocketError }).error).toBeInstanceOf(WebSocketError);
      expect((r as { error: WebSocketError }).error.code).toBe(1007);
      // A 1024-byte window holds it.
      expect((await inflateAll(wide, first)).equals(block)).toBe(true);
      expect((await inflateAll(wide, second)).equals(block)).toBe(true);
    } finally {
      narrow.close();
      wide.close();
    }
  });

  it('an 8-bit peer window is inflated with 9 bits', async () => {
    const serverSide = createPerMessageDeflate({ ...PARAMS, clientMaxWindowBits: 8 }, 'server', {
      threshold: 0,
    });
    const clientSide = createPerMessageDeflate({ ...PARAMS, clientMaxWindowBits: 8 }, 'client');
    try {
      // The peer's window limits only what the peer sends: this side compresses as usual.
      // These four fields are all there is (no flag that would stop a side compressing).
      expect(serverSide.params).toStrictEqual({
        deflateWindowBits: 15,
        inflateWindowBits: 9,
        deflateNoContextTakeover: false,
        inflateNoContextTakeover: false,
      });
      expect(serverSide.threshold).toBe(0);
      const small = jsonLike(2000);
      // zlib's 9-bit deflater never reaches further back than 250 bytes: a valid 8-bit stream.
      const raw = deflateRawSync(small, { finishFlush: zconst.Z_SYNC_FLUSH, windowBits: 9 });
      expect((await inflateAll(serverSide, raw.subarray(0, raw.length - 4))).equals(small)).toBe(true);
      // And what our own client with that 8-bit window sends, message after message.
      for (const seed of [1, 2, 3]) {
        const data = jsonLike(10_000, seed);
        expect((await inflateAll(serverSide, await clientSide.compress(data, true))).equals(data)).toBe(true);
      }
    } finally {
      serverSide.close();
      clientSide.close();
    }
  });

  it('a side whose own agreed window is 8 bits compresses within 256 bytes, and still inflates', async () => {
    const cases: Array<[DeflateParams, 'server' | 'client']> = [
      [{ ...PARAMS, serverMaxWindowBits: 8 }, 'server'],
      [{ ...PARAMS, clientMaxWindowBits: 8 }, 'client'],
    ];
    for (const [params, side] of cases) {
      const own8 = createPerMessageDeflate(params, side, { threshold: 0 });
      const byDefault = createPerMessageDeflate(params, side);
      const peer = createPerMessageDeflate(params, side === 'server' ? 'client' : 'server');
      try {
        // zlib runs the 8-bit window as 9 bits both ways, and the usual thresholds apply.
        expect(own8.params, side).toStrictEqual({
          deflateWindowBits: 9,
          inflateWindowBits: 15,
          deflateNoContextTakeover: false,
          inflateNoContextTakeover: false,
        });
        expect(own8.threshold, side).toBe(0);
        expect(byDefault.threshold, side).toBe(1024);
        expect(peer.params.inflateWindowBits, side).toBe(9);
        expect(peer.threshold, side).toBe(1024);
        // Messages compressed with context takeover: much smaller than the text, read by the
        // peer (9 bits) and by zlib with an 8-bit window, and no reference beyond 256 bytes.
        const plain: Buffer[] = [];
        const sent: Buffer[] = [];
        for (const seed of [1, 2, 3]) {
          const data = jsonLike(20_000, seed);
          const compressed = await own8.compress(data, true);
          expect(compressed.length, side).toBeLessThan(data.length / 3);
          expect((await inflateAll(peer, compressed)).equals(data), side).toBe(true);
          plain.push(data);
          sent.push(compressed);
        }
        const seen = inspectDeflate(asStream(sent));
        expect(seen.data.equals(Buffer.concat(plain)), side).toBe(true);
        expect(seen.maxDistance, side).toBeLessThanOrEqual(256);
        expect(inflate8(asStream(sent)).equals(Buffer.concat(plain)), side).toBe(true);
        // The other way: what the peer compresses with its own (15-bit) window is read.
        for (const seed of [4, 5]) {
          const data = jsonLike(20_000, seed);
          const compressed = await peer.compress(data, true);
          expect(compressed.length).toBeLessThan(data.length / 2);
          expect((await inflateAll(own8, compressed)).equals(data), side).toBe(true);
        }
        expect(own8.contexts).toBe(2);
      } finally {
        own8.close();
        byDefault.close();
        peer.close();
      }
    }
  });

  it("zlib's 9-bit raw deflate never refers further back than 256 bytes", async () => {
    const input = farMatches();
    expect(input.length).toBeGreaterThan(30 * KiB);
    /** Two copies of `input` as two messages (context takeover), as one raw stream. */
    async function compressed(params: DeflateParams, level?: number): Promise<Buffer> {
      const c = createPerMessageDeflate(params, 'server', level === undefined ? {} : { level });
      try {
        return asStream([await c.compress(input, true), await c.compress(input, true)]);
      } finally {
        c.close();
      }
    }
    const twice = Buffer.concat([input, input]);
    const within8 = (stream: Buffer) => inspectDeflate(stream).maxDistance <= 256;

    // What we send with an agreed server_max_window_bits=8, at zlib's fast, default and best
    // levels (different match finders): no distance beyond 256 (zlib stops at 512 - 262 = 250),
    // though the ones up to 250 were used; zlib with an 8-bit window reads it.
    for (const level of [1, undefined, 9]) {
      const ours = await compressed({ ...PARAMS, serverMaxWindowBits: 8 }, level);
      const seen = inspectDeflate(ours);
      expect(seen.data.equals(twice), `level ${level}`).toBe(true);
      expect(within8(ours), `level ${level}`).toBe(true);
      expect(seen.beyond256, `level ${level}`).toBe(0);
      expect(seen.maxDistance, `level ${level}`).toBeGreaterThan(200);
      expect(inflate8(ours).equals(twice), `level ${level}`).toBe(true);
    }

    // The same input with larger windows does use distances beyond 256 bytes (the 251..300
    // repeats among them), and both checks above reject that output: they are meaningful.
    for (const bits of [10, 15]) {
      const wide = await compressed({ ...PARAMS, serverMaxWindowBits: bits });
      const seen = inspectDeflate(wide);
      expect(seen.data.equals(twice), `${bits} bits`).toBe(true);
      expect(within8(wide), `${bits} bits`).toBe(false);
      expect(seen.beyond256, `${bits} bits`).toBeGreaterThan(50);
      expect(() => inflate8(wide), `${bits} bits`).toThrow(/invalid distance too far back/);
      // A window just large enough reads it.
      expect(inflateRawSync(wide, { windowBits: bits, finishFlush: zconst.Z_SYNC_FLUSH }).equals(twice)).toBe(
        true,
      );
    }

    // The distance check is exact at the boundary: a single match 256 bytes back is within
    // an 8-bit window, 257 is not.
    for (const d of [256, 257]) {
      const block = pseudoRandom(d)(d);
      const one = deflateRawSync(Buffer.concat([block, block.subarray(0, 40)]), {
        windowBits: 10,
        finishFlush: zconst.Z_SYNC_FLUSH,
      });
      expect(inspectDeflate(one).maxDistance).toBe(d);
      expect(within8(one), String(d)).toBe(d <= 256);
    }
  });
});

describe('zlib level and memLevel', () => {
  it('level 0 stores, level 9 compresses, memLevel is passed through', async () => {
    const data = jsonLike(50_000);
    const sizes: number[] = [];
    for (const options of [
      { level: 0 },
      { level: 1 },
      { level: 9, memLevel: 9 },
      { level: 9, memLevel: 1 },
    ]) {
      const c = createPerMessageDeflate(PARAMS, 'server', options);
      const d = createPerMessageDeflate(PARAMS, 'client');
      try {
        const out = await c.compress(data, true);
        sizes.push(out.length);
        expect((await inflateAll(d, out)).equals(data)).toBe(true);
      } finally {
        c.close();
        d.close();
      }
    }
    expect(sizes[0]).toBeGreaterThan(data.length); // stored blocks: a little bigger
    expect(sizes[2]).toBeLessThan(sizes[1]!);
    expect(sizes[3]).not.toBe(sizes[2]); // memLevel changes the output
  });

  it('rejects invalid level and memLevel when a server or route is configured', () => {
    expect(() => new WebSocketServer({ perMessageDeflate: { level: 10 } })).toThrow(RangeError);
    expect(() => new WebSocketServer({ perMessageDeflate: { memLevel: 0 } })).toThrow(RangeError);
    for (const bits of [7, 16]) {
      expect(() => new WebSocketServer({ perMessageDeflate: { serverMaxWindowBits: bits } })).toThrow(
        RangeError,
      );
      expect(() => new WebSocketServer({ perMessageDeflate: { clientMaxWindowBits: bits } })).toThrow(
        RangeError,
      );
    }
    expect(() =>
      new WebSocketServer().route('/x', () => {}, { perMessageDeflate: { threshold: -1 } }),
    ).toThrow(RangeError);
    expect(() =>
      new WebSocketServer().route('/x', () => {}, { perMessageDeflate: { serverMaxWindowBits: 7 } }),
    ).toThrow(RangeError);
    expect(
      () => new WebSocketServer({ perMessageDeflate: { clientMaxWindowBits: 8, level: 9 } }),
    ).not.toThrow();
    // A server window of 8 is valid: the server then compresses with zlib at 9 bits.
    expect(() => new WebSocketServer({ perMessageDeflate: { serverMaxWindowBits: 8 } })).not.toThrow();
    expect(() =>
      new WebSocketServer().route('/x', () => {}, { perMessageDeflate: { serverMaxWindowBits: 8 } }),
    ).not.toThrow();
  });

  it('connect() rejects invalid client options with RangeError before connecting', async () => {
    // Nothing listens on port 9 of 127.0.0.1: a rejection other than RangeError would be
    // a connection error, so the options must have been checked first.
    const bad: ClientOptions['perMessageDeflate'][] = [
      { clientMaxWindowBits: 7 },
      { clientMaxWindowBits: 16 },
      { clientMaxWindowBits: 'x' as unknown as number },
      [{}, { clientMaxWindowBits: 7 }],
      { serverMaxWindowBits: 7 },
      { level: 12 },
      [{}, { memLevel: 10 }],
      { serverMaxWindowBits: 16 },
    ];
    for (const perMessageDeflate of bad) {
      await expect(connect('ws://127.0.0.1:9/', { perMessageDeflate })).rejects.toThrow(RangeError);
    }
  });

  it('connect() takes a client window of 8 (it then compresses with zlib at 9 bits)', async () => {
    // A listener that drops every connection: the attempt fails at the transport, which
    // proves the options were accepted.
    const sink = createNetServer((socket) => socket.destroy());
    await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => sink.close(() => r())));
    const url = `ws://127.0.0.1:${(sink.address() as AddressInfo).port}/`;
    for (const perMessageDeflate of [
      { clientMaxWindowBits: 8 },
      [{ clientMaxWindowBits: 8, serverMaxWindowBits: 8 }, {}],
    ]) {
      const r = await settle(connect(url, { pingInterval: 0, handshakeTimeout: 5000, perMessageDeflate }));
      expect(r.ok).toBe(false);
      expect((r as { error: unknown }).error).not.toBeInstanceOf(RangeError);
    }
  });
});

describe('invalid data and the decompression bomb', () => {
  it('invalid deflate data rejects with 1007 and releases the decompressor', async () => {
    const d = createPerMessageDeflate(PARAMS, 'server');
    try {
      const r = await settle(inflateAll(d, Buffer.from([0xff, 0xff, 0xff, 0xff, 0x00, 0x01])));
      expect(r.ok).toBe(false);
      const err = (r as { error: unknown }).error as WebSocketError;
      expect(err).toBeInstanceOf(WebSocketError);
      expect(err.code).toBe(1007);
      expect(d.contexts).toBe(0);
    } finally {
      d.close();
    }
  });

  it('stops inflating as soon as the limit is passed (1009), handing out no more than the limit', async () => {
    const bomb = await zeroBomb(64 * MiB);
    expect(bomb.length).toBeLessThan(100 * KiB);
    const d = createPerMessageDeflate(PARAMS, 'server');
    try {
      let handed = 0;
      let calls = 0;
      const r = await settle(
        d.decompress(bomb, true, MiB, (chunk) => {
          handed += chunk.length;
          calls++;
        }),
      );
      expect(r.ok).toBe(false);
      expect(((r as { error: unknown }).error as WebSocketError).code).toBe(1009);
      expect(handed).toBeLessThanOrEqual(MiB);
      expect(handed).toBeGreaterThan(MiB - 64 * KiB);
      expect(calls).toBeGreaterThan(0);
      expect(d.contexts).toBe(0);
    } finally {
      d.close();
    }
  });
});

/** `size` zero bytes as one raw-deflate message without its tail, made without holding them. */
function zeroBomb(size: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const deflater = createDeflateRaw({ level: 9 });
    const out: Buffer[] = [];
    deflater.on('data', (c: Buffer) => out.push(c));
    deflater.on('error', reject);
    const zeros = Buffer.alloc(MiB);
    for (let i = 0; i < size / MiB; i++) deflater.write(zeros);
    deflater.flush(zconst.Z_SYNC_FLUSH, () => {
      const all = Buffer.concat(out);
      deflater.close();
      resolve(all.subarray(0, all.length - 4));
    });
  });
}

describe('closing the compressor', () => {
  it('releases both contexts, rejects later calls, and settles an operation in flight', async () => {
    const before = zlibContexts();
    const c = createPerMessageDeflate(PARAMS, 'server');
    expect(c.contexts).toBe(0); // created on first use
    await c.compress(jsonLike(2000), true);
    const raw = deflateRawSync(jsonLike(10), { finishFlush: zconst.Z_SYNC_FLUSH });
    await inflateAll(c, raw.subarray(0, raw.length - 4));
    expect(c.contexts).toBe(2);
    expect(zlibContexts()).toBeGreaterThanOrEqual(before + 2);
    const pending = settle(c.compress(jsonLike(4 * MiB), true));
    c.close();
    const r = await pending;
    expect(r.ok).toBe(false);
    expect(c.contexts).toBe(0);
    expect((await settle(c.compress(Buffer.from('x'), true))).ok).toBe(false);
    expect((await settle(inflateAll(c, Buffer.from([0])))).ok).toBe(false);
    await eventually(() => zlibLimiter.active === 0, 5000, 'the limiter to be idle');
  });
});

describe('idle contexts are released (sweepIdleCompressors)', () => {
  const message = jsonLike(8000, 7);

  it('an idle deflater is closed after two sweeps; the next message starts a new stream the peer reads', async () => {
    const server = createPerMessageDeflate(PARAMS, 'server');
    const peer = createPerMessageDeflate(PARAMS, 'client'); // one inflater throughout
    try {
      const first = await server.compress(message, true);
      const again = await server.compress(message, true); // context takeover: tiny
      expect(again.length).toBeLessThan(first.length / 5);
      sweepIdleCompressors(); // used since the last sweep: only marked
      expect(server.contexts).toBe(1);
      sweepIdleCompressors();
      expect(server.contexts).toBe(0);
      const afterIdle = await server.compress(message, true); // a fresh window: full size
      expect(afterIdle.length).toBe(first.length);
      expect(server.contexts).toBe(1);
      for (const m of [first, again, afterIdle])
        expect((await inflateAll(peer, m)).equals(message)).toBe(true);
      // The peer's decompressor has context takeover: it is kept however idle.
      sweepIdleCompressors();
      sweepIdleCompressors();
      expect(peer.contexts).toBe(1);
      expect((await inflateAll(peer, await server.compress(message, true))).equals(message)).toBe(true);
    } finally {
      server.close();
      peer.close();
    }
  });

  it('keeps a deflater between the fragments of a message, however idle', async () => {
    const a = createPerMessageDeflate(PARAMS, 'client');
    const b = createPerMessageDeflate(PARAMS, 'server');
    try {
      const parts = [jsonLike(5000, 1), jsonLike(7000, 2)];
      const out: Buffer[] = [];
      const first = await a.compress(parts[0]!, false);
      sweepIdleCompressors();
      sweepIdleCompressors();
      sweepIdleCompressors();
      expect(a.contexts).toBe(1);
      const second = await a.compress(parts[1]!, true);
      await b.decompress([first, second], true, 64 * MiB, (chunk) => out.push(Buffer.from(chunk)));
      expect(Buffer.concat(out).equals(Buffer.concat(parts))).toBe(true);
      sweepIdleCompressors();
      sweepIdleCompressors();
      expect(a.contexts).toBe(0);
    } finally {
      a.close();
      b.close();
    }
  });

  it("releases an idle decompressor when the peer has no context takeover, and reads the peer's next message", async () => {
    const params = { ...PARAMS, clientNoContextTakeover: true };
    const serverSide = createPerMessageDeflate(params, 'server');
    const clientSide = createPerMessageDeflate(params, 'client');
    try {
      for (let i = 0; i < 3; i++) {
        const data = jsonLike(3000, i);
        expect((await inflateAll(serverSide, await clientSide.compress(data, true))).equals(data)).toBe(true);
        expect(serverSide.contexts).toBe(1);
        sweepIdleCompressors();
        sweepIdleCompressors();
        expect(serverSide.contexts).toBe(0);
        expect(clientSide.contexts).toBe(0);
      }
    } finally {
      serverSide.close();
      clientSide.close();
    }
  });

  it('over real connections: messages round-trip both ways before and after the release', async () => {
    const s = await startServer({ perMessageDeflate: true });
    const ws = await client(s.url('/echo'), { perMessageDeflate: true });
    sweepIdleCompressors(); // whatever earlier tests left idle goes first
    sweepIdleCompressors();
    const before = zlibContexts();
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 3; i++) {
        const text = jsonLike(4000 + i * 1000, round * 10 + i).toString();
        const reply = receiveOne(ws);
        await ws.send(text);
        expect((await reply).text()).toBe(text);
      }
      sweepIdleCompressors();
      sweepIdleCompressors();
      // Both deflaters are gone; both inflaters (context takeover) stay.
      expect(zlibContexts()).toBe(before + 2);
    }
    await ws.close();
  });
});

describe('the default level', () => {
  it('is DEFAULT_LEVEL (5): the same output as level 5, and level 6 differs', async () => {
    const data = jsonLike(50_000);
    const out = async (options: { level?: number }) => {
      const c = createPerMessageDeflate(PARAMS, 'server', options);
      try {
        return await c.compress(data, true);
      } finally {
        c.close();
      }
    };
    expect(DEFAULT_LEVEL).toBe(5);
    const byDefault = await out({});
    expect(byDefault.equals(await out({ level: 5 }))).toBe(true);
    expect(byDefault.equals(await out({ level: 6 }))).toBe(false);
  });
});

// =======================================================================================
// The limiter

describe('ZlibLimiter', () => {
  it('never runs more than `concurrency` jobs, and runs them in order', async () => {
    const limiter = new ZlibLimiter(3);
    let running = 0;
    let maxSeen = 0;
    const started: number[] = [];
    const jobs = Array.from({ length: 30 }, (_, i) =>
      limiter.run(async () => {
        started.push(i);
        running++;
        maxSeen = Math.max(maxSeen, running);
        await new Promise((r) => setTimeout(r, 1 + (i % 4)));
        running--;
        return i;
      }),
    );
    expect(limiter.active).toBe(3);
    expect(limiter.waiting).toBe(27);
    expect(await Promise.all(jobs)).toEqual(Array.from({ length: 30 }, (_, i) => i));
    expect(maxSeen).toBe(3);
    expect(limiter.peak).toBe(3);
    expect(started).toEqual(Array.from({ length: 30 }, (_, i) => i));
    expect(limiter.active).toBe(0);
  });

  it('keeps the bound when new jobs arrive while a slot is being handed over', async () => {
    // Jobs end on microtasks and new ones are submitted from other microtasks, so that
    // submissions land between a job's end and its waiter's start.
    const limiter = new ZlibLimiter(2);
    let running = 0;
    let maxSeen = 0;
    let seed = 7;
    const rand = () => {
      seed = (seed * 48271) % 2147483647;
      return seed;
    };
    const all: Promise<unknown>[] = [];
    const job = async () => {
      running++;
      maxSeen = Math.max(maxSeen, running);
      for (let i = rand() % 4; i > 0; i--) await Promise.resolve();
      running--;
    };
    const submit = (depth: number) => {
      all.push(limiter.run(job));
      if (depth > 0) {
        let p = Promise.resolve();
        for (let i = rand() % 6; i > 0; i--) p = p.then(() => {});
        all.push(p.then(() => submit(depth - 1)));
      }
    };
    for (let i = 0; i < 40; i++) submit(6);
    for (let i = 0; i < all.length; i++) await all[i];
    expect(all.length).toBeGreaterThan(200);
    expect(maxSeen).toBe(2);
    expect(limiter.peak).toBe(2);
    expect(limiter.active).toBe(0);
  });

  it('a failing job frees its slot; the bound can be changed at run time', async () => {
    const limiter = new ZlibLimiter(1);
    const failed = settle(limiter.run(() => Promise.reject(new Error('boom'))));
    const ok = limiter.run(() => Promise.resolve('ok'));
    expect((await failed).ok).toBe(false);
    expect(await ok).toBe('ok');

    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const blocked = [limiter.run(() => gate), limiter.run(() => gate), limiter.run(() => gate)];
    expect(limiter.active).toBe(1);
    limiter.concurrency = 3;
    expect(limiter.active).toBe(3);
    expect(limiter.waiting).toBe(0);
    release();
    await Promise.all(blocked);
    expect(() => {
      limiter.concurrency = 0;
    }).toThrow(RangeError);
  });
});

// =======================================================================================
// Connections

describe('negotiation end to end', () => {
  it('agrees on compression and reports the same extensions string on both sides', async () => {
    const s = await startServer({ perMessageDeflate: true });
    const ws = await client(s.url(), { perMessageDeflate: true });
    const { ws: peer, req } = await s.next();
    // The client's default offer lets the server choose its window; ours doesn't ask to.
    expect(req.headers['sec-websocket-extensions']).toBe('permessage-deflate; client_max_window_bits');
    expect(ws.extensions).toBe('permessage-deflate');
    expect(peer.extensions).toBe('permessage-deflate');
  });

  it('sends a list of offers in order: [{ serverMaxWindowBits: 10 }, {}]', async () => {
    const s = await startServer({ perMessageDeflate: { serverMaxWindowBits: 12 } });
    const ws = await client(s.url(), { perMessageDeflate: [{ serverMaxWindowBits: 10 }, {}] });
    const { req } = await s.next();
    expect(req.headers['sec-websocket-extensions']).toBe(
      'permessage-deflate; server_max_window_bits=10; client_max_window_bits, permessage-deflate; client_max_window_bits',
    );
    expect(ws.extensions).toBe('permessage-deflate; server_max_window_bits=10');
  });

  it('the server skips an offer it must decline and takes the next one', async () => {
    // Our client only makes valid offers, so the offers are written by hand here.
    const s = await startServer({ perMessageDeflate: true });
    const fallback = 'permessage-deflate; server_no_context_takeover';
    const cases: Array<[string, string]> = [
      // RFC 7692 §7.1: a duplicate or unknown parameter makes the server decline an offer.
      [`permessage-deflate; server_max_window_bits=10; server_max_window_bits=10, ${fallback}`, fallback],
      [`permessage-deflate; x_unknown, ${fallback}`, fallback],
      // A window of 8 is no reason to decline: the first offer is taken.
      [
        `permessage-deflate; server_max_window_bits=8, ${fallback}`,
        'permessage-deflate; server_max_window_bits=8',
      ],
    ];
    for (const [offer, expected] of cases) {
      const answer = await rawUpgrade(s.url(), offer);
      expect(answer, offer).toBe(expected);
      const { ws: peer, req } = await s.next();
      expect(req.headers['sec-websocket-extensions']).toBe(offer);
      expect(peer.extensions, offer).toBe(expected);
    }
  });

  it('the server takes an offer forcing server_max_window_bits=8: both sides compress, the server within 256 bytes', async () => {
    const s = await startServer({ perMessageDeflate: { threshold: 0 } });
    const ws = await client(s.url(), {
      perMessageDeflate: [{ serverMaxWindowBits: 8, threshold: 0 }, { serverNoContextTakeover: true }],
    });
    expect(ws.extensions).toBe('permessage-deflate; server_max_window_bits=8');
    const { ws: peer } = await s.next();
    expect(peer.extensions).toBe(ws.extensions);
    const toServer = spy(peer);
    const toClient = spy(ws);
    const sizes = [10, 5000, 200_000];
    const sent = sizes.map((size) => jsonLike(size, size));
    for (const data of sent) {
      await ws.send(data);
      expect((await receiveOne(ws)).data.equals(data), String(data.length)).toBe(true);
    }
    // RSV1 on every message either side sent (threshold 0), each one compressed.
    expect(toServer.map((f) => [f.opcode, f.rsv])).toEqual(sizes.map(() => [2, 4]));
    expect(toServer[2]!.payload.length).toBeLessThan(200_000 / 3);
    expect(toClient.map((f) => [f.opcode, f.rsv, f.fin])).toEqual(sizes.map(() => [2, 4, true]));
    expect(toClient[1]!.payload.length).toBeLessThan(5000 / 3);
    expect(toClient[2]!.payload.length).toBeLessThan(200_000 / 3);
    // The server's messages (context takeover: one stream) never refer beyond 256 bytes,
    // and zlib reads them with an 8-bit window.
    const stream = asStream(toClient.map((f) => f.payload));
    const seen = inspectDeflate(stream);
    expect(seen.data.equals(Buffer.concat(sent))).toBe(true);
    expect(seen.maxDistance).toBeLessThanOrEqual(256);
    expect(inflate8(stream).equals(Buffer.concat(sent))).toBe(true);
  });

  it('client_max_window_bits=8: both sides compress, the client within 256 bytes', async () => {
    // Asked by the client itself, and set by the server for a client that offers the parameter.
    const s1 = await startServer({ perMessageDeflate: { threshold: 0 } });
    const a = await client(s1.url(), { perMessageDeflate: { clientMaxWindowBits: 8, threshold: 0 } });
    const s2 = await startServer({ perMessageDeflate: { clientMaxWindowBits: 8, threshold: 0 } });
    const b = await client(s2.url(), { perMessageDeflate: { clientMaxWindowBits: true, threshold: 0 } });
    for (const [s, ws] of [
      [s1, a],
      [s2, b],
    ] as const) {
      expect(ws.extensions).toBe('permessage-deflate; client_max_window_bits=8');
      const { ws: peer } = await s.next();
      expect(peer.extensions).toBe(ws.extensions);
      const toServer = spy(peer);
      const toClient = spy(ws);
      const sent = [10, 5000, 200_000].map((size) => jsonLike(size, size));
      for (const data of sent) {
        await ws.send(data);
        expect((await receiveOne(ws)).data.equals(data), String(data.length)).toBe(true);
      }
      expect(toServer.map((f) => [f.opcode, f.rsv, f.fin])).toEqual(sent.map(() => [2, 4, true]));
      expect(toServer[1]!.payload.length).toBeLessThan(5000 / 3);
      expect(toServer[2]!.payload.length).toBeLessThan(200_000 / 3);
      expect(toClient.map((f) => f.rsv)).toEqual([4, 4, 4]);
      expect(toClient[2]!.payload.length).toBeLessThan(200_000 / 3);
      const stream = asStream(toServer.map((f) => f.payload));
      const seen = inspectDeflate(stream);
      expect(seen.data.equals(Buffer.concat(sent))).toBe(true);
      expect(seen.maxDistance).toBeLessThanOrEqual(256);
      expect(inflate8(stream).equals(Buffer.concat(sent))).toBe(true);
    }
  });

  it('without perMessageDeflate on either side, no extension is agreed', async () => {
    const s = await startServer({});
    const a = await client(s.url(), { perMessageDeflate: true });
    expect(a.extensions).toBe('');
    const s2 = await startServer({ perMessageDeflate: true });
    const b = await client(s2.url());
    expect(b.extensions).toBe('');
    const { req } = await s2.next();
    expect(req.headers['sec-websocket-extensions']).toBeUndefined();
  });

  it('options per route override the server (and perMessageDeflate: false turns it off)', async () => {
    const wss = new WebSocketServer({ pingInterval: 0, perMessageDeflate: { serverMaxWindowBits: 11 } });
    cleanups.push(() => wss.close());
    wss.route('/plain', () => {}, { perMessageDeflate: false });
    wss.route('/small', () => {}, {
      perMessageDeflate: { serverMaxWindowBits: 9, clientNoContextTakeover: true },
    });
    wss.route('/*', () => {});
    const { port } = await wss.listen(0, '127.0.0.1');
    const url = (p: string) => `ws://127.0.0.1:${port}${p}`;
    expect((await client(url('/plain'), { perMessageDeflate: true })).extensions).toBe('');
    expect((await client(url('/small'), { perMessageDeflate: true })).extensions).toBe(
      'permessage-deflate; client_no_context_takeover; server_max_window_bits=9',
    );
    expect((await client(url('/other'), { perMessageDeflate: true })).extensions).toBe(
      'permessage-deflate; server_max_window_bits=11',
    );
  });

  it('client_max_window_bits: the server limits a client that offers it, with or without a value', async () => {
    const s = await startServer({ perMessageDeflate: { clientMaxWindowBits: 10 } });
    expect((await client(s.url(), { perMessageDeflate: { clientMaxWindowBits: true } })).extensions).toBe(
      'permessage-deflate; client_max_window_bits=10',
    );
    expect((await client(s.url(), { perMessageDeflate: { clientMaxWindowBits: 9 } })).extensions).toBe(
      'permessage-deflate; client_max_window_bits=9',
    );
    // Offered by default: the server limits it too.
    expect((await client(s.url(), { perMessageDeflate: {} })).extensions).toBe(
      'permessage-deflate; client_max_window_bits=10',
    );
    // Not offered: the server may not send it.
    expect((await client(s.url(), { perMessageDeflate: { clientMaxWindowBits: false } })).extensions).toBe(
      'permessage-deflate',
    );
  });
});

describe('the client fails an invalid answer with 1010, sending no frame', () => {
  /**
   * A fake server that answers every upgrade with 101 and this extensions header, then
   * writes `then` (frames) if given. `received` is what the client sent after the handshake,
   * once it ended the connection; `bytes()` the same so far.
   */
  async function fakeServer(
    extensions: string | undefined,
    then?: Buffer,
  ): Promise<{ url: string; received: Promise<Buffer>; bytes: () => Buffer }> {
    let gotBytes!: (b: Buffer) => void;
    const received = new Promise<Buffer>((r) => {
      gotBytes = r;
    });
    const after: Buffer[] = [];
    const sockets = new Set<Socket>();
    const server: NetServer = createNetServer((socket: Socket) => {
      sockets.add(socket);
      let buf = Buffer.alloc(0);
      let answered = false;
      socket.on('data', (chunk: Buffer) => {
        if (answered) {
          after.push(chunk);
          return;
        }
        buf = Buffer.concat([buf, chunk]);
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        answered = true;
        const key = /sec-websocket-key:\s*(\S+)/i.exec(buf.toString('latin1'))![1]!;
        socket.write(
          'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
            `Sec-WebSocket-Accept: ${computeAccept(key)}\r\n` +
            (extensions === undefined ? '' : `Sec-WebSocket-Extensions: ${extensions}\r\n`) +
            '\r\n',
        );
        if (then !== undefined) socket.write(then);
      });
      socket.on('end', () => {
        gotBytes(Buffer.concat(after));
        socket.end();
      });
      socket.on('close', () => gotBytes(Buffer.concat(after)));
      socket.on('error', () => {});
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanups.push(
      () =>
        new Promise<void>((r) => {
          // A connection left open (say, by a failed assertion) must not hold close() up.
          for (const socket of sockets) socket.destroy();
          server.close(() => r());
        }),
    );
    return {
      url: `ws://127.0.0.1:${(server.address() as AddressInfo).port}/`,
      received,
      bytes: () => Buffer.concat(after),
    };
  }

  const cases: Array<[string, string, ClientOptions['perMessageDeflate']]> = [
    ['permessage-deflate was not offered', 'permessage-deflate', undefined],
    ['an unknown extension', 'x-webkit-deflate-frame', true],
    ['an unknown parameter', 'permessage-deflate; foo=1', true],
    [
      'a duplicate parameter',
      'permessage-deflate; server_no_context_takeover; server_no_context_takeover',
      true,
    ],
    [
      'client_max_window_bits that was not offered',
      'permessage-deflate; client_max_window_bits=10',
      { clientMaxWindowBits: false },
    ],
    [
      'client_max_window_bits without a value',
      'permessage-deflate; client_max_window_bits',
      { clientMaxWindowBits: true },
    ],
    [
      'a window larger than requested',
      'permessage-deflate; server_max_window_bits=12',
      { serverMaxWindowBits: 10 },
    ],
    ['an unconfirmed server_no_context_takeover', 'permessage-deflate', { serverNoContextTakeover: true }],
    ['an invalid window value', 'permessage-deflate; server_max_window_bits=16', true],
    [
      'an invalid client window value',
      'permessage-deflate; client_max_window_bits=7',
      { clientMaxWindowBits: true },
    ],
    [
      'a client window larger than our own limit of 8',
      'permessage-deflate; client_max_window_bits=9',
      { clientMaxWindowBits: 8 },
    ],
    ['two answers', 'permessage-deflate, permessage-deflate', [{}, {}]],
  ];

  it.each(cases)('%s', async (_name, header, offer) => {
    const fake = await fakeServer(header);
    const r = await settle(connect(fake.url, { pingInterval: 0, perMessageDeflate: offer }));
    if (r.ok) r.value.terminate(); // unexpectedly open: don't leave it behind
    expect(r.ok).toBe(false);
    const err = (r as { error: unknown }).error as WebSocketError;
    expect(err).toBeInstanceOf(WebSocketError);
    expect(err.code).toBe(1010);
    // RFC 6455 §4.1: the connection was never established: not even a Close goes out.
    expect((await fake.received).length).toBe(0);
  });

  it('accepts client_max_window_bits=8 and server_max_window_bits=8: compresses within 256 bytes, inflates what it gets', async () => {
    // The server's first message, compressed as a server with an 8-bit window may: zlib's
    // 9-bit deflater never refers further back than 250 bytes (its window minus 262).
    const text = jsonLike(3000, 4);
    const deflated = deflateRawSync(text, { finishFlush: zconst.Z_SYNC_FLUSH, windowBits: 9 });
    const payload = deflated.subarray(0, deflated.length - 4);
    expect(payload.length).toBeLessThan(text.length / 2);
    expect(payload.length).toBeGreaterThan(125);
    expect(payload.length).toBeLessThan(65_536);
    // FIN + RSV1 + text, unmasked, 16-bit length.
    const frame = Buffer.concat([
      Buffer.from([0xc1, 126, payload.length >> 8, payload.length & 0xff]),
      payload,
    ]);
    const header = 'permessage-deflate; server_max_window_bits=8; client_max_window_bits=8';
    const fake = await fakeServer(header, frame);
    const ws = await client(fake.url, { perMessageDeflate: { clientMaxWindowBits: true, threshold: 0 } });
    expect(ws.extensions).toBe(header);
    // The frame (RSV1 set) came with the 101: the message is its inflated payload.
    const m = await receiveOne(ws);
    expect(m.type).toBe('text');
    expect(m.data.equals(text)).toBe(true);

    // Our message goes out compressed (threshold 0): RSV1 set, masked, a 16-bit length, and a
    // payload that zlib inflates with an 8-bit window, no reference beyond 256 bytes.
    const out = jsonLike(5000, 5);
    await ws.send(out.toString());
    const headerBytes = 8; // 2 + 16-bit length + mask
    await eventually(
      () => {
        const w = fake.bytes();
        return w.length >= 4 && w.length >= headerBytes + w.readUInt16BE(2);
      },
      5000,
      'the frame at the fake server',
    );
    ws.terminate();
    const wire = fake.bytes();
    expect(wire[0]).toBe(0xc1); // FIN, RSV1, text
    expect(wire[1]).toBe(0x80 | 126); // masked, 16-bit length
    const length = wire.readUInt16BE(2);
    expect(length).toBeLessThan(out.length / 3);
    expect(wire.length).toBe(headerBytes + length);
    const mask = wire.subarray(4, 8);
    const body = Buffer.from(wire.subarray(headerBytes, headerBytes + length));
    for (let i = 0; i < body.length; i++) body[i] = body[i]! ^ mask[i & 3]!;
    const stream = asStream([body]);
    expect(inflate8(stream).equals(out)).toBe(true);
    const seen = inspectDeflate(stream);
    expect(seen.data.equals(out)).toBe(true);
    expect(seen.maxDistance).toBeLessThanOrEqual(256);
  });

  it('accepts a valid answer from the same fake server (the harness itself works)', async () => {
    const fake = await fakeServer('permessage-deflate; server_max_window_bits=9; client_max_window_bits=11');
    const ws = await client(fake.url, { perMessageDeflate: { clientMaxWindowBits: true } });
    expect(ws.extensions).toBe('permessage-deflate; server_max_window_bits=9; client_max_window_bits=11');
    ws.terminate();
  });
});

describe('messages over a compressed connection', () => {
  it('RSV1 is set on the first frame of a compressed message only, and messages round-trip', async () => {
    const s = await startServer({ perMessageDeflate: { threshold: 0 } });
    const ws = await client(s.url('/idle'), { perMessageDeflate: { threshold: 0 } });
    const { ws: peer } = await s.next();
    const frames = spy(peer);
    const a = jsonLike(20_000, 1);
    const b = jsonLike(30_000, 2);
    await ws.send(a.toString(), { fin: false });
    await ws.send(b.toString());
    await ws.send(jsonLike(100, 3).toString());
    const m1 = await receiveOne(peer);
    expect(m1.type).toBe('text');
    expect(m1.data.equals(Buffer.concat([a, b]))).toBe(true);
    expect((await receiveOne(peer)).text()).toBe(jsonLike(100, 3).toString());
    expect(frames.map((f) => [f.opcode, f.rsv, f.fin])).toEqual([
      [1, 4, false],
      [0, 0, true],
      [1, 4, true],
    ]);
    // Compressed on the wire: much smaller than the text.
    expect(frames[0]!.payload.length + frames[1]!.payload.length).toBeLessThan((a.length + b.length) / 3);
  });

  it('continuation fragments follow the first fragment even when queued behind compression', async () => {
    const s = await startServer({ perMessageDeflate: { threshold: 1024 } });
    const ws = await client(s.url('/idle'), { perMessageDeflate: { threshold: 1024 } });
    const { ws: peer } = await s.next();
    const frames = spy(peer);
    const big = jsonLike(200_000, 5);
    // Not awaited: the second and third fragments are decided while the first is queued.
    const sends = [
      ws.send(big.toString(), { fin: false }),
      ws.send('tiny', { fin: false }),
      ws.send(jsonLike(5000, 6).toString()),
      ws.send('small, uncompressed'),
      ws.send(Buffer.from('x'), { fin: false, compress: true }),
      ws.send(Buffer.from(jsonLike(3000, 7))),
    ];
    await Promise.all(sends);
    const m1 = await receiveOne(peer);
    expect(m1.data.equals(Buffer.concat([big, Buffer.from('tiny'), jsonLike(5000, 6)]))).toBe(true);
    expect((await receiveOne(peer)).text()).toBe('small, uncompressed');
    const m3 = await receiveOne(peer);
    expect(m3.type).toBe('binary');
    expect(m3.data.equals(Buffer.concat([Buffer.from('x'), jsonLike(3000, 7)]))).toBe(true);
    expect(frames.map((f) => [f.opcode, f.rsv])).toEqual([
      [1, 4],
      [0, 0],
      [0, 0],
      [1, 0],
      [2, 0], // a 1-byte first fragment is under the threshold: the whole message is plain
      [0, 0],
    ]);
    expect(frames[5]!.payload.equals(jsonLike(3000, 7))).toBe(true);
  });

  it('a fragmented message of one type cannot be interleaved with another', async () => {
    const s = await startServer({ perMessageDeflate: true });
    const ws = await client(s.url('/idle'), { perMessageDeflate: true });
    await ws.send('start', { fin: false });
    await expect(ws.send(Buffer.from('other'))).rejects.toThrow(TypeError);
    await ws.send('end');
    const { ws: peer } = await s.next();
    expect((await receiveOne(peer)).text()).toBe('startend');
  });

  it('threshold (default 1 KiB) and send(data, { compress: false })', async () => {
    const s = await startServer({ perMessageDeflate: true });
    const ws = await client(s.url('/idle'), { perMessageDeflate: true });
    const { ws: peer } = await s.next();
    const frames = spy(peer);
    await ws.send(jsonLike(1023));
    await ws.send(jsonLike(1024));
    await ws.send(jsonLike(50_000), { compress: false });
    await ws.send(jsonLike(50_000));
    for (let i = 0; i < 4; i++) await receiveOne(peer);
    expect(frames.map((f) => f.rsv)).toEqual([0, 4, 0, 4]);
    expect(frames[2]!.payload.length).toBe(50_000);
    expect(frames[3]!.payload.length).toBeLessThan(25_000);

    // A custom threshold, set on the server for what the server sends.
    const s2 = await startServer({ perMessageDeflate: { threshold: 10_000 } });
    const c2 = await client(s2.url(), { perMessageDeflate: true });
    const inbound = spy(c2);
    await c2.send(jsonLike(9_999));
    await c2.send(jsonLike(10_000));
    await receiveOne(c2);
    await receiveOne(c2);
    expect(inbound.map((f) => f.rsv)).toEqual([0, 4]);
  });

  it('the client uses the threshold and level of the offer the server accepted', async () => {
    const s = await startServer({ perMessageDeflate: { serverMaxWindowBits: 12 } });
    const ws = await client(s.url('/idle'), {
      perMessageDeflate: [
        { serverMaxWindowBits: 10, threshold: 1 },
        { threshold: 100_000, level: 0 },
      ],
    });
    expect(ws.extensions).toBe('permessage-deflate; server_max_window_bits=10');
    const { ws: peer } = await s.next();
    const frames = spy(peer);
    await ws.send(jsonLike(500));
    await receiveOne(peer);
    expect(frames[0]!.rsv).toBe(4);
  });

  // One test per combination: each sends 8 MiB and more through zlib, so together they are too much
  // work for one test's time limit on a busy machine.
  const combos: Array<[string, ServerOptions['perMessageDeflate'], ClientOptions['perMessageDeflate']]> = [
    ['defaults', true, true],
    ['no takeover both', { serverNoContextTakeover: true, clientNoContextTakeover: true }, true],
    [
      'client asks server no takeover',
      true,
      { serverNoContextTakeover: true, clientNoContextTakeover: true },
    ],
    ['windows 9', { serverMaxWindowBits: 9, clientMaxWindowBits: 9 }, { clientMaxWindowBits: true }],
    // Both sides compress with zlib at 9 bits (their own windows are 8 bits).
    ['windows 8', { serverMaxWindowBits: 8, clientMaxWindowBits: 8 }, { clientMaxWindowBits: true }],
    ['client window 8 only', { threshold: 0 }, { clientMaxWindowBits: 8, threshold: 0 }],
    ['client windows', true, { serverMaxWindowBits: 9, clientMaxWindowBits: 10 }],
    ['level 1 memLevel 3 threshold 0', { level: 1, memLevel: 3, threshold: 0 }, { level: 9, threshold: 0 }],
  ];
  for (const [name, serverDeflate, clientDeflate] of combos) {
    it(`text and binary messages of many sizes round-trip: ${name}`, async () => {
      const limits = { maxMessageSize: 4 * MiB, maxFrameSize: 4 * MiB };
      const s = await startServer({ perMessageDeflate: serverDeflate, ...limits });
      const ws = await client(s.url(), { perMessageDeflate: clientDeflate, ...limits });
      expect(ws.extensions, name).toMatch(/^permessage-deflate/);
      for (const size of [0, 16, 1500, 70_000, 2 * MiB]) {
        for (const binary of [false, true]) {
          const data = binary
            ? repeatedBlock(Math.max(1, size >> 4), 16).subarray(0, size)
            : jsonLike(size, size);
          await ws.send(data, { binary });
          await ws.send(data, { binary }); // again: exercises context takeover
          for (let i = 0; i < 2; i++) {
            const m = await receiveOne(ws);
            expect(m.type, `${name} ${size}`).toBe(binary ? 'binary' : 'text');
            expect(m.data.equals(data), `${name} ${size} ${binary}`).toBe(true);
          }
        }
      }
      await ws.close();
      await s.wss.close();
    });
  }
});

describe('safety on a connection', () => {
  it('a 100 MiB zero bomb is refused with 1009 using little memory', async () => {
    const bomb = await zeroBomb(100 * MiB);
    expect(bomb.length).toBeLessThan(128 * KiB); // fits a default 1 MiB frame
    const s = await startServer({ perMessageDeflate: true, propagateCommonErrors: true });
    const ws = await client(s.url('/idle'), { perMessageDeflate: true });
    const { ws: peer } = await s.next();
    const serverErrors = errorsOf(peer);
    const gc = getGc();
    gc();
    const base = process.memoryUsage();
    let peakRss = base.rss;
    let peakBuffers = base.arrayBuffers;
    const sampler = setInterval(() => {
      const m = process.memoryUsage();
      peakRss = Math.max(peakRss, m.rss);
      peakBuffers = Math.max(peakBuffers, m.arrayBuffers);
    }, 2);
    try {
      await ws.sendFrame({ fin: true, rsv: 4, opcode: 2, masked: true, payload: bomb });
      const info = await ws.closed;
      expect(info.code).toBe(1009); // the server's Close
      await peer.closed;
      expect(serverErrors.map((e) => e.code)).toEqual([1009]);
    } finally {
      clearInterval(sampler);
    }
    const end = process.memoryUsage();
    peakRss = Math.max(peakRss, end.rss);
    peakBuffers = Math.max(peakBuffers, end.arrayBuffers);
    expect(peakRss - base.rss).toBeLessThan(50 * MiB);
    expect(peakBuffers - base.arrayBuffers).toBeLessThan(20 * MiB);
  });

  it('maxMessageSize counts decompressed bytes, across fragments', async () => {
    const s = await startServer({ perMessageDeflate: { threshold: 0 }, maxMessageSize: 100_000 });
    const ws = await client(s.url(), { perMessageDeflate: { threshold: 0 } });
    const ok = jsonLike(100_000);
    await ws.send(ok);
    expect((await receiveOne(ws)).data.equals(ok)).toBe(true);
    await ws.send(jsonLike(60_000), { fin: false });
    await ws.send(jsonLike(60_000));
    expect((await ws.closed).code).toBe(1009);
  });

  it('invalid deflate data closes with 1007', async () => {
    const s = await startServer({ perMessageDeflate: true, propagateCommonErrors: true });
    const ws = await client(s.url('/idle'), { perMessageDeflate: true });
    const { ws: peer } = await s.next();
    const serverErrors = errorsOf(peer);
    await ws.sendFrame({
      fin: true,
      rsv: 4,
      opcode: 1,
      masked: true,
      payload: Buffer.from('not deflate at all'),
    });
    expect((await ws.closed).code).toBe(1007);
    await peer.closed;
    expect(serverErrors.map((e) => e.code)).toEqual([1007]);
  });

  it('RSV1 on a continuation frame is a protocol error (1002)', async () => {
    const s = await startServer({ perMessageDeflate: true });
    const ws = await client(s.url('/idle'), { perMessageDeflate: true });
    const compressed = deflateRawSync(Buffer.from('hello'), { finishFlush: zconst.Z_SYNC_FLUSH });
    await ws.sendFrame({ fin: false, rsv: 4, opcode: 1, masked: true, payload: compressed });
    await ws.sendFrame({ fin: true, rsv: 4, opcode: 0, masked: true, payload: compressed.subarray(0, 0) });
    expect((await ws.closed).code).toBe(1002);
  });

  it('RSV1 without negotiated compression is a protocol error (1002)', async () => {
    const s = await startServer({});
    const ws = await client(s.url('/idle'));
    await ws.sendFrame({ fin: true, rsv: 4, opcode: 1, masked: true, payload: Buffer.from('x') });
    expect((await ws.closed).code).toBe(1002);
  });

  it('many connections compressing at once never exceed the zlib bound', async () => {
    const saved = zlibLimiter.concurrency;
    zlibLimiter.concurrency = 3;
    zlibLimiter.resetPeak();
    let sawWaiting = 0;
    const watcher = setInterval(() => {
      sawWaiting = Math.max(sawWaiting, zlibLimiter.waiting);
    }, 1);
    try {
      const s = await startServer({ perMessageDeflate: { threshold: 0 } });
      const clients = await Promise.all(
        Array.from({ length: 30 }, () => client(s.url(), { perMessageDeflate: { threshold: 0 } })),
      );
      const data = jsonLike(256 * KiB, 9);
      await Promise.all(
        clients.map(async (ws) => {
          await Promise.all([ws.send(data), ws.send(data), ws.send(data)]);
          for (let i = 0; i < 3; i++) expect((await receiveOne(ws)).data.equals(data)).toBe(true);
        }),
      );
      expect(zlibLimiter.peak).toBeLessThanOrEqual(3);
      expect(zlibLimiter.peak).toBe(3); // the bound was reached, so it was what held them back
      expect(sawWaiting).toBeGreaterThan(0);
    } finally {
      clearInterval(watcher);
      zlibLimiter.concurrency = saved;
    }
    expect(zlibLimiter.active).toBe(0);
  });

  it('a connection closed while inflating gives its limiter slot and contexts back', async () => {
    const s = await startServer({ perMessageDeflate: { threshold: 0 }, maxMessageSize: 64 * MiB });
    const ws = await client(s.url('/idle'), { perMessageDeflate: { threshold: 0 } });
    const { ws: peer } = await s.next();
    const frames = spy(peer);
    const bomb = await zeroBomb(60 * MiB);
    await ws.sendFrame({ fin: true, rsv: 4, opcode: 2, masked: true, payload: bomb });
    // Inflation starts as the frame arrives (and takes far longer than one poll).
    await eventually(() => zlibLimiter.active > 0 || frames.length > 0, 10_000, 'inflation to start');
    peer.terminate();
    ws.terminate();
    await eventually(() => zlibLimiter.active === 0 && zlibContexts() === 0, 10_000, 'the slot and contexts');
  });
});

describe('compressed messages in many frames', () => {
  /**
   * `data` compressed as one message (tail removed) and cut into frames of `size` bytes,
   * RSV1 on the first; `fin: false` leaves the last frame open.
   */
  function compressedFrames(data: Buffer, size: number, text: boolean, fin = true): Frame[] {
    const z = deflateRawSync(data, { finishFlush: zconst.Z_SYNC_FLUSH }).subarray(0, -4);
    const frames: Frame[] = [];
    for (let off = 0; off < z.length; off += size) {
      frames.push({
        fin: fin && off + size >= z.length,
        rsv: off === 0 ? 4 : 0,
        opcode: off === 0 ? (text ? 1 : 2) : 0,
        masked: true,
        payload: z.subarray(off, off + size),
      });
    }
    return frames;
  }

  /** Sends the frames in one tick: they leave in one write and arrive (mostly) together. */
  function sendTogether(ws: WebSocket, frames: Frame[]): Promise<unknown> {
    return Promise.all(frames.map((f) => ws.sendFrame(f)));
  }

  it('frames that arrive together are inflated in a few zlib calls, not one per frame', async () => {
    const s = await startServer({ perMessageDeflate: true });
    const ws = await client(s.url('/idle'), { perMessageDeflate: true });
    const { ws: peer } = await s.next();
    const run = vi.spyOn(zlibLimiter, 'run');
    try {
      for (const text of [false, true]) {
        const data = text ? jsonLike(64 * KiB, 7) : repeatedBlock(3000, 22);
        const frames = compressedFrames(data, 32, text);
        expect(frames.length).toBeGreaterThan(100);
        run.mockClear();
        await sendTogether(ws, frames);
        const m = await receiveOne(peer);
        expect(m.type).toBe(text ? 'text' : 'binary');
        expect(m.data.equals(data)).toBe(true);
        // One call per frame before; now one per batch of frames received whole.
        expect(run.mock.calls.length).toBeLessThan(frames.length / 10);
      }
    } finally {
      run.mockRestore();
    }
  });

  it('a Ping between the frames is answered and the message still arrives whole', async () => {
    const s = await startServer({ perMessageDeflate: true });
    const ws = await client(s.url('/idle'), { perMessageDeflate: true });
    const { ws: peer } = await s.next();
    const pongs: string[] = [];
    ws.on('pong', (data: Buffer) => pongs.push(data.toString()));
    const pings: string[] = [];
    peer.on('ping', (data: Buffer) => pings.push(data.toString()));
    const data = jsonLike(20 * KiB, 3);
    const frames = compressedFrames(data, 100, true);
    const middle = Math.floor(frames.length / 2);
    const ping: Frame = { fin: true, rsv: 0, opcode: 9, masked: true, payload: Buffer.from('mid') };
    await sendTogether(ws, [...frames.slice(0, middle), ping, ...frames.slice(middle)]);
    const m = await receiveOne(peer);
    expect(m.data.equals(data)).toBe(true);
    expect(pings).toEqual(['mid']);
    await eventually(() => pongs.length === 1, 5000, 'the pong');
    expect(pongs).toEqual(['mid']);
  });

  it('invalid UTF-8 early in a compressed text message fails with 1007 before it ends', async () => {
    const s = await startServer({ perMessageDeflate: true, propagateCommonErrors: true });
    const ws = await client(s.url('/idle'), { perMessageDeflate: true });
    const { ws: peer } = await s.next();
    const errors = errorsOf(peer);
    const text = Buffer.concat([Buffer.from('valid start '), Buffer.from([0xc0, 0xaf]), jsonLike(30 * KiB)]);
    // The last frame is never sent: only failing fast can close the connection.
    await sendTogether(ws, compressedFrames(text, 128, true, false).slice(0, -1));
    expect((await ws.closed).code).toBe(1007);
    expect(errors.map((e) => e.code)).toEqual([1007]);
  });

  it('maxMessageSize counts inflated bytes across frames that arrive together (1009)', async () => {
    const s = await startServer({
      perMessageDeflate: true,
      maxMessageSize: 64 * KiB,
      propagateCommonErrors: true,
    });
    const ws = await client(s.url('/idle'), { perMessageDeflate: true });
    const { ws: peer } = await s.next();
    const errors = errorsOf(peer);
    // 8 MiB of zeros in about 8 KiB of deflate data, in 256-byte frames, never finished.
    const bomb = await zeroBomb(8 * MiB);
    const frames: Frame[] = [];
    for (let off = 0; off < bomb.length; off += 256) {
      frames.push({
        fin: false,
        rsv: off === 0 ? 4 : 0,
        opcode: off === 0 ? 2 : 0,
        masked: true,
        payload: bomb.subarray(off, off + 256),
      });
    }
    await sendTogether(ws, frames).catch(() => {});
    expect((await ws.closed).code).toBe(1009);
    expect(errors.map((e) => e.code)).toEqual([1009]);
  });

  it('empty compressed messages in a row, with and without context takeover', async () => {
    for (const nct of [false, true]) {
      const options = { threshold: 0, serverNoContextTakeover: nct, clientNoContextTakeover: nct };
      const s = await startServer({ perMessageDeflate: options });
      const ws = await client(s.url(), { perMessageDeflate: options });
      const sent = [Buffer.alloc(0), Buffer.alloc(0), jsonLike(2000), Buffer.alloc(0), jsonLike(2000)];
      for (const data of sent) await ws.send(data, { binary: true });
      // An empty last fragment, after a non-empty one.
      await ws.send(jsonLike(500), { binary: true, fin: false });
      await ws.send(Buffer.alloc(0), { binary: true });
      for (const data of [...sent, jsonLike(500)]) {
        const m = await receiveOne(ws);
        expect(m.data.equals(data), `${nct} ${data.length}`).toBe(true);
      }
    }
  });
});

describe('compressed messages larger than one zlib write', () => {
  it('incompressible data beyond 256 KiB arrives whole, in one frame or in 4 KiB frames', async () => {
    const s = await startServer({ perMessageDeflate: true, maxMessageSize: 4 * MiB, maxFrameSize: 4 * MiB });
    const ws = await client(s.url('/idle'), { perMessageDeflate: true });
    const { ws: peer } = await s.next();
    const data = pseudoRandom(0xbee)(600 * KiB);
    const z = deflateRawSync(data, { finishFlush: zconst.Z_SYNC_FLUSH }).subarray(0, -4);
    expect(z.length).toBeGreaterThan(512 * KiB);
    for (const size of [z.length, 4 * KiB]) {
      const frames: Frame[] = [];
      for (let off = 0; off < z.length; off += size) {
        frames.push({
          fin: off + size >= z.length,
          rsv: off === 0 ? 4 : 0,
          opcode: off === 0 ? 2 : 0,
          masked: true,
          payload: z.subarray(off, off + size),
        });
      }
      await Promise.all(frames.map((f) => ws.sendFrame(f)));
      const m = await receiveOne(peer);
      expect(m.data.equals(data), `frames of ${size}`).toBe(true);
    }
  });
});
