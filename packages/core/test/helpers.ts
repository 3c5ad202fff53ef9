/** Shared helpers for the protocol-engine tests (not a test file itself). */
import { WebSocketError } from '../src/protocol/errors.js';
import type { Frame } from '../src/protocol/frame.js';
import { FrameParser, type FrameParserOptions } from '../src/protocol/frame-parser.js';
import { encodeFrame } from '../src/protocol/frame-writer.js';
import type { Protocol, ProtocolEvent } from '../src/protocol/protocol.js';

/** "81 05 48 65" -> bytes. */
export function hex(s: string): Buffer {
  const clean = s.replace(/\s+/g, '');
  if (clean.length % 2 !== 0 || /[^0-9a-f]/i.test(clean)) throw new Error(`bad hex: ${s}`);
  return Buffer.from(clean, 'hex');
}

export const RFC_MASK = hex('37 fa 21 3d');

/** The table of DESIGN.md, "Errors and close codes". */
export const CLOSE_CODE_TABLE: ReadonlyArray<[number, string]> = [
  [1000, 'normal-closure'],
  [1001, 'going-away'],
  [1002, 'protocol-error'],
  [1003, 'unsupported-data'],
  [1005, 'no-status-rcvd'],
  [1006, 'abnormal-closure'],
  [1007, 'invalid-frame-payload-data'],
  [1008, 'policy-violation'],
  [1009, 'message-too-big'],
  [1010, 'mandatory-ext'],
  [1011, 'internal-server-error'],
  [1012, 'service-restart'],
  [1013, 'try-again-later'],
  [1014, 'bad-gateway'],
  [1015, 'tls-handshake'],
];

export function mkFrame(opcode: number, payload: Buffer | string, fields: Partial<Frame> = {}): Frame {
  return {
    fin: true,
    rsv: 0,
    masked: false,
    ...fields,
    opcode,
    payload: typeof payload === 'string' ? Buffer.from(payload) : payload,
  };
}

/** encodeFrame joined into one buffer. */
export function encode(frame: Frame, maskKey?: Uint8Array): Buffer {
  return Buffer.concat(encodeFrame(frame, maskKey));
}

/** A plain copy of a frame's fields, for deep equality (payload as a fresh Buffer). */
export function plain(f: Frame): Frame {
  return { fin: f.fin, rsv: f.rsv, opcode: f.opcode, masked: f.masked, payload: Buffer.from(f.payload) };
}

/** Frames as comparable summaries (payload as hex: deep-equal on big Buffers is slow). */
export function summary(frames: readonly Frame[]): string[] {
  return frames.map(
    (f) => `fin=${f.fin} rsv=${f.rsv} op=${f.opcode} masked=${f.masked} ${f.payload.toString('hex')}`,
  );
}

/** Cuts `buf` at the given positions (taken modulo length+1), copying each piece. */
export function cutAt(buf: Buffer, cuts: readonly number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (buf.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of [...points, buf.length]) {
    if (p > prev) out.push(Buffer.from(buf.subarray(prev, p)));
    prev = Math.max(prev, p);
  }
  return out;
}

/** One-byte pieces (copies). */
export function bytewise(buf: Buffer): Buffer[] {
  return Array.from(buf, (b) => Buffer.from([b]));
}

export interface ParseResult {
  frames: Frame[];
  error: unknown;
  /** Index of the chunk whose push produced the error (or -1). */
  errorAtChunk: number;
}

/** Feeds chunks (copied, since the parser unmasks in place) and collects frames until an error. */
export function parseChunks(options: FrameParserOptions, chunks: readonly Buffer[]): ParseResult {
  const parser = new FrameParser(options);
  const frames: Frame[] = [];
  for (let i = 0; i < chunks.length; i++) {
    parser.push(Buffer.from(chunks[i]!));
    try {
      for (let f = parser.next(); f !== null; f = parser.next()) frames.push(plain(f));
    } catch (error) {
      return { frames, error, errorAtChunk: i };
    }
  }
  return { frames, error: undefined, errorAtChunk: -1 };
}

/** The WebSocketError code of a parse, or undefined when it did not fail. */
export function errorCode(result: ParseResult): number | undefined {
  if (result.error === undefined) return undefined;
  if (!(result.error instanceof WebSocketError)) throw result.error;
  return result.error.code;
}

/**
 * Feeds one chunk to a Protocol and takes every event it yields. Compressed frames are
 * "inflated" as the identity by a synchronous inflater, so the drive never stalls.
 */
export function feed(p: Protocol, chunk: Buffer): ProtocolEvent[] {
  p.inflater ??= {
    inflate(payloads) {
      p.receiveInflated(Buffer.concat(payloads), true);
    },
  };
  p.receiveData(Buffer.from(chunk));
  return p.takeEvents();
}

export function feedAll(p: Protocol, chunks: readonly Buffer[]): ProtocolEvent[] {
  const events: ProtocolEvent[] = [];
  for (const c of chunks) events.push(...feed(p, c));
  return events;
}

/** Parses everything the protocol queued for the wire, as its peer would. */
export function outputFrames(p: Protocol, allowedRsv = 0): Frame[] {
  const bytes = Buffer.concat(p.takeOutput());
  const result = parseChunks(
    { side: p.side === 'server' ? 'client' : 'server', maxFrameSize: Number.MAX_SAFE_INTEGER, allowedRsv },
    [bytes],
  );
  if (result.error !== undefined) throw result.error;
  return result.frames;
}

/** Status code of a Close frame payload (undefined when it has none). */
export function closeCodeOf(f: Frame): number | undefined {
  return f.payload.length >= 2 ? f.payload.readUInt16BE(0) : undefined;
}

/** Data frame as a peer on `from` side would put it on the wire. */
export function wire(from: 'client' | 'server', frame: Omit<Frame, 'masked'>): Buffer {
  return encode({ ...frame, masked: from === 'client' });
}

export const peerOf = (side: 'client' | 'server'): 'client' | 'server' =>
  side === 'server' ? 'client' : 'server';

/** Deterministic bytes that are not periodic (xorshift), cheap at any size: a wrong mask phase shows. */
export function pseudoRandomBytes(length: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}
