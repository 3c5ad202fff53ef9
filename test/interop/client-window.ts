/**
 * Shared by the client-window suites (deflate-client-window.test.ts with our server,
 * deflate-python.test.ts with a Python server): a server asks our client for a window of
 * 8..15 bits, with or without client_no_context_takeover, and what the client really
 * sent is read back off the wire.
 *
 * - `FrameTapProxy` sits between our client and the server (plain TCP both ways) and
 *   parses the raw bytes the client writes: every frame, as sent, still compressed.
 * - `windowProbe()` payloads repeat earlier bytes at distances from 100 B to 30 KB, so a
 *   compressor with a wider window than agreed would use matches the agreed one cannot hold.
 * - `inflateWithin()` decodes the captured messages with zlib limited to the agreed window
 *   and 64-byte output buffers (Node's smallest: zlib checks a distance against its window
 *   only when it reaches behind the output of the current call), a fresh inflater per
 *   message without context takeover.
 */
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { inflateRawSync, constants as zconst } from 'node:zlib';
import type { Frame, WebSocket } from '@wskit/core';
import { FrameParser } from '@wskit/core/protocol';

const TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);

/** A TCP proxy that records the frames the client sends (after the HTTP request head). */
export class FrameTapProxy {
  readonly frames: Frame[] = [];
  parseError: Error | undefined;
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(targetPort: number): Promise<FrameTapProxy> {
    let self!: FrameTapProxy;
    const server = createServer((client) => self.accept(client, targetPort));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    self = new FrameTapProxy(server, port);
    return self;
  }

  private accept(client: Socket, targetPort: number): void {
    const upstream = netConnect(targetPort, '127.0.0.1');
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.setNoDelay(true);
      s.on('error', () => {});
      s.on('close', () => this.sockets.delete(s));
    }
    upstream.pipe(client);
    client.on('end', () => upstream.end());
    upstream.on('close', () => client.destroy());
    client.on('close', () => upstream.destroy());
    const parser = new FrameParser({ side: 'server', maxFrameSize: 1 << 30, allowedRsv: 7 });
    let head: Buffer | null = Buffer.alloc(0);
    client.on('data', (chunk: Buffer) => {
      upstream.write(chunk);
      let bytes = chunk;
      if (head !== null) {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        bytes = head.subarray(end + 4);
        head = null;
      }
      if (this.parseError !== undefined) return;
      try {
        parser.push(bytes);
        for (let f = parser.next(); f !== null; f = parser.next()) {
          this.frames.push({ ...f, payload: Buffer.from(f.payload) });
        }
      } catch (err) {
        this.parseError = err instanceof Error ? err : new Error(String(err));
      }
    });
  }

  /** The data frames recorded so far (control frames left out). */
  dataFrames(): Frame[] {
    return this.frames.filter((f) => f.opcode <= 2);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** Deterministic pseudo-random bytes (xorshift32). */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x = (x ^ (x << 13)) >>> 0;
    x = (x ^ (x >>> 17)) >>> 0;
    x = (x ^ (x << 5)) >>> 0;
    return x;
  };
}

const DISTANCES = [100, 250, 300, 600, 1200, 2500, 5000, 9000, 17000, 30000];

/**
 * `size` bytes in 64-byte blocks: about half of them copies of the block some distance
 * back (cycling through DISTANCES), the rest random. Text: the same shape in letters.
 */
export function windowProbe(size: number, seed: number, text: boolean): Buffer {
  const next = rng(seed * 7919 + size);
  const out = Buffer.alloc(size);
  let k = 0;
  for (let pos = 0; pos < size; pos += 64) {
    const n = Math.min(64, size - pos);
    const d = DISTANCES[k++ % DISTANCES.length]!;
    if (pos >= d && next() % 2 === 0) out.copyWithin(pos, pos - d, pos - d + n);
    else for (let i = 0; i < n; i++) out[pos + i] = text ? 0x61 + (next() % 26) : next() & 0xff;
  }
  return out;
}

export const PROBE_SIZES = [1, 100, 255, 256, 257, 600, 1000, 4096, 16_384, 40_000, 70_000, 200_000];

export interface ProbeMessage {
  data: Buffer;
  text: boolean;
  /** Sent as three fragments. */
  fragmented: boolean;
}

/** Every size as text and as binary, each sent twice (the second copy can refer to the first). */
export function probeMessages(): ProbeMessage[] {
  const list: ProbeMessage[] = [];
  PROBE_SIZES.forEach((size, i) => {
    for (const text of [true, false]) {
      const data = windowProbe(size, i + 1, text);
      list.push({ data, text, fragmented: false }, { data, text, fragmented: size >= 1000 });
    }
  });
  return list;
}

/** Sends each message and checks its echo, byte for byte. */
export async function echoAll(ws: WebSocket, messages: ProbeMessage[]): Promise<void> {
  for (const [n, m] of messages.entries()) {
    const payload = m.text ? m.data.toString('latin1') : m.data;
    if (m.fragmented) {
      const a = Math.floor(m.data.length / 3);
      const b = Math.floor((2 * m.data.length) / 3);
      const parts = [payload.slice(0, a), payload.slice(a, b), payload.slice(b)];
      for (let i = 0; i < 3; i++) await ws.send(parts[i]!, { binary: !m.text, fin: i === 2 });
    } else {
      await ws.send(payload, { binary: !m.text });
    }
    const echo = await ws.receive();
    if (echo === null) throw new Error(`closed before the echo of message ${n}`);
    if (echo.type !== (m.text ? 'text' : 'binary')) throw new Error(`echo ${n}: type ${echo.type}`);
    if (!Buffer.from(echo.data).equals(m.data)) throw new Error(`echo ${n}: wrong bytes (${echo.size})`);
  }
}

/** The messages in `frames`, each as its frames' payloads joined: [first frame's RSV, payload]. */
export function messagesOf(frames: Frame[]): Array<{ rsv: number; payload: Buffer }> {
  const out: Array<{ rsv: number; payload: Buffer }> = [];
  let parts: Buffer[] = [];
  let rsv = 0;
  for (const f of frames) {
    if (f.opcode !== 0) rsv = f.rsv;
    parts.push(f.payload);
    if (f.fin) {
      out.push({ rsv, payload: Buffer.concat(parts) });
      parts = [];
    }
  }
  return out;
}

/**
 * Inflates compressed messages with zlib limited to the agreed window: windowBits = `bits`,
 * 9 for an agreed 8 (zlib's rule, as on our server). With context takeover the messages
 * form one DEFLATE stream; without, each starts afresh. Returns all output joined; throws
 * ("invalid distance too far back") on a reference outside the window.
 */
export function inflateWithin(payloads: Buffer[], bits: number, noContextTakeover: boolean): Buffer {
  const options = { windowBits: Math.max(9, bits), chunkSize: 64, finishFlush: zconst.Z_SYNC_FLUSH };
  if (noContextTakeover) {
    return Buffer.concat(payloads.map((p) => inflateRawSync(Buffer.concat([p, TAIL]), options)));
  }
  return inflateRawSync(Buffer.concat(payloads.flatMap((p) => [p, TAIL])), options);
}

/**
 * Checks what our client sent against what it was asked: every message compressed (RSV1;
 * the tests use threshold 0), and the messages decode within the agreed window to exactly
 * the bytes sent. For 8 bits, zlib's own 8-bit inflater reads them too (with 64-byte
 * buffers it fails on anything more than 256 + 63 bytes back).
 */
export function checkClientOutput(
  frames: Frame[],
  sent: ProbeMessage[],
  bits: number,
  noContextTakeover: boolean,
): void {
  const messages = messagesOf(frames);
  if (messages.length !== sent.length) {
    throw new Error(`captured ${messages.length} messages, sent ${sent.length}`);
  }
  const plain = messages.filter((m) => (m.rsv & 0x4) === 0).length;
  if (plain > 0) throw new Error(`${plain} message(s) sent uncompressed`);
  const payloads = messages.map((m) => m.payload);
  const expected = Buffer.concat(sent.map((m) => m.data));
  if (!inflateWithin(payloads, bits, noContextTakeover).equals(expected)) {
    throw new Error(`the messages inflated within ${bits} bits differ from what was sent`);
  }
  if (bits === 8) {
    const options = { windowBits: 8, chunkSize: 64, finishFlush: zconst.Z_SYNC_FLUSH };
    const out = noContextTakeover
      ? Buffer.concat(payloads.map((p) => inflateRawSync(Buffer.concat([p, TAIL]), options)))
      : inflateRawSync(Buffer.concat(payloads.flatMap((p) => [p, TAIL])), options);
    if (!out.equals(expected))
      throw new Error('the messages inflated within 8 bits differ from what was sent');
  }
}

/** The client windows a server may ask for, with and without client_no_context_takeover. */
export const WINDOW_CASES = [8, 9, 10, 11, 12, 13, 14, 15].flatMap((bits) =>
  [false, true].map((noContextTakeover) => ({ bits, noContextTakeover })),
);
