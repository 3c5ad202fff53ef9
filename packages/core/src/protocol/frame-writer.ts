import type { Frame } from './frame.js';
import { alignedFrame, applyMask, copyMasked, nextMaskKey } from './mask.js';

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
  return writeHeaderOf(target, offset, h.fin, h.rsv, h.opcode, h.maskKey, h.payloadLength);
}

/** writeHeader() with the fields as arguments: no object per frame on the send path. */
function writeHeaderOf(
  target: Uint8Array,
  offset: number,
  fin: boolean,
  rsv: number,
  opcode: number,
  maskKey: Uint8Array | undefined,
  len: number,
): number {
  target[offset] = (fin ? 0x80 : 0) | ((rsv & 7) << 4) | (opcode & 0xf);
  const maskBit = maskKey ? 0x80 : 0;
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
  if (maskKey) {
    target[pos++] = maskKey[0]!;
    target[pos++] = maskKey[1]!;
    target[pos++] = maskKey[2]!;
    target[pos++] = maskKey[3]!;
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
  const out: Buffer[] = [];
  encodeFrameInto(out, frame.fin, frame.rsv, frame.opcode, frame.masked, frame.payload, maskKey);
  return out;
}

/** encodeFrame() that appends the buffers to `out`, with the frame's fields as arguments. */
export function encodeFrameInto(
  out: Buffer[],
  fin: boolean,
  rsv: number,
  opcode: number,
  masked: boolean,
  payload: Buffer,
  maskKey?: Uint8Array,
  /** The payload may be masked in place (it is the caller's own copy). */
  owned = false,
): void {
  const len = payload.length;
  const key = masked ? (maskKey ?? nextMaskKey()) : undefined;
  const hsize = headerSize(len, key !== undefined);
  // A large payload goes after its header as it is: unmasked, or masked in place when
  // it is the caller's own copy. Anything else is copied (masked) next to its header.
  if (len > COALESCE_LIMIT && (key === undefined || owned)) {
    const header = Buffer.allocUnsafe(hsize);
    writeHeaderOf(header, 0, fin, rsv, opcode, key, len);
    if (key !== undefined) applyMask(payload, key);
    out.push(header, payload);
    return;
  }
  const bytes = key !== undefined ? alignedFrame(hsize, payload) : Buffer.allocUnsafe(hsize + len);
  writeHeaderOf(bytes, 0, fin, rsv, opcode, key, len);
  if (len > 0) {
    if (key !== undefined) copyMasked(payload, bytes, hsize, key);
    else bytes.set(payload, hsize);
  }
  out.push(bytes);
}
