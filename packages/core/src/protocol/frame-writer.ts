import type { Frame } from './frame.js';
import { copyMasked, nextMaskKey } from './mask.js';

/**
 * Payloads up to this size are copied next to their header, so a frame is one buffer.
 * Larger ones go out as [header, payload]: profiled on a 16 KiB echo, the copy (and the
 * fresh buffer it needs) cost more than one more buffer in the socket's writev.
 */
const COALESCE_LIMIT = 1024;

export interface FrameHeaderFields {
  fin: boolean;
  rsv: number;
  opcode: number;
  /** The 4-byte masking key, or undefined for an unmasked frame. */
  maskKey: Uint8Array | undefined;
  payloadLength: number;
}

/** Header size for a payload length (RFC 6455 §5.2: 7, 7+16 or 7+64 bits), plus the key. */
export function headerSize(payloadLength: number, masked: boolean): number {
  const base = payloadLength < 126 ? 2 : payloadLength < 0x10000 ? 4 : 10;
  return masked ? base + 4 : base;
}

/** Writes the frame header at `offset` in `target`, using the minimal length encoding. */
export function writeHeader(target: Uint8Array, offset: number, h: FrameHeaderFields): number {
  const len = h.payloadLength;
  target[offset] = (h.fin ? 0x80 : 0) | ((h.rsv & 7) << 4) | (h.opcode & 0xf);
  const maskBit = h.maskKey ? 0x80 : 0;
  let pos = offset + 2;
  if (len < 126) {
    target[offset + 1] = maskBit | len;
  } else if (len < 0x10000) {
    target[offset + 1] = maskBit | 126;
    target[pos++] = len >>> 8;
    target[pos++] = len & 0xff;
  } else {
    target[offset + 1] = maskBit | 127;
    // 64-bit length, most significant bit 0 (RFC 6455 §5.2). JS numbers stay below 2^53.
    const hi = Math.floor(len / 0x100000000);
    const lo = len >>> 0;
    target[pos++] = (hi >>> 24) & 0xff;
    target[pos++] = (hi >>> 16) & 0xff;
    target[pos++] = (hi >>> 8) & 0xff;
    target[pos++] = hi & 0xff;
    target[pos++] = lo >>> 24;
    target[pos++] = (lo >>> 16) & 0xff;
    target[pos++] = (lo >>> 8) & 0xff;
    target[pos++] = lo & 0xff;
  }
  if (h.maskKey) {
    target[pos++] = h.maskKey[0]!;
    target[pos++] = h.maskKey[1]!;
    target[pos++] = h.maskKey[2]!;
    target[pos++] = h.maskKey[3]!;
  }
  return pos - offset;
}

/**
 * Serializes a frame. Masked frames (client to server) get a fresh random key and a
 * masked copy of the payload; the caller's buffer is never modified. Unmasked frames
 * with a large payload come back as [header, payload] so the payload is not copied.
 * `maskKey` may be forced (tests, RFC vectors).
 */
export function encodeFrame(frame: Frame, maskKey?: Uint8Array): Buffer[] {
  const payload = frame.payload;
  const len = payload.length;
  const key = frame.masked ? (maskKey ?? nextMaskKey()) : undefined;
  const hsize = headerSize(len, key !== undefined);
  const fields: FrameHeaderFields = {
    fin: frame.fin,
    rsv: frame.rsv,
    opcode: frame.opcode,
    maskKey: key,
    payloadLength: len,
  };
  if (key !== undefined || len <= COALESCE_LIMIT) {
    const out = Buffer.allocUnsafe(hsize + len);
    writeHeader(out, 0, fields);
    if (len > 0) {
      if (key !== undefined) copyMasked(payload, out, hsize, key);
      else out.set(payload, hsize);
    }
    return [out];
  }
  const header = Buffer.allocUnsafe(hsize);
  writeHeader(header, 0, fields);
  return [header, payload];
}
