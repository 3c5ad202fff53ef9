/**
 * The bytes of one published message on a Redis channel:
 *
 *   0      1      2        10
 *   +------+------+--------+-----------------+
 *   | 0x77 | flags| origin | payload ...     |
 *   +------+------+--------+-----------------+
 *
 * flags: bit 0 binary message, bit 1 compress. `origin` (8 random bytes) names the
 * publishing process, so that it can ignore its own echo. The payload is carried as is:
 * Redis channels are binary-safe.
 */

const MAGIC = 0x77;
const HEADER = 10;
const BINARY = 1;
const COMPRESS = 2;

export const ORIGIN_LENGTH = 8;

export interface Envelope {
  origin: Buffer;
  binary: boolean;
  compress: boolean;
  payload: Buffer;
}

export function encodeEnvelope(origin: Buffer, payload: Buffer, binary: boolean, compress: boolean): Buffer {
  const out = Buffer.allocUnsafe(HEADER + payload.length);
  out[0] = MAGIC;
  out[1] = (binary ? BINARY : 0) | (compress ? COMPRESS : 0);
  origin.copy(out, 2, 0, ORIGIN_LENGTH);
  payload.copy(out, HEADER);
  return out;
}

/** null for bytes that are not an envelope (someone else's message on the channel). */
export function decodeEnvelope(bytes: Buffer): Envelope | null {
  if (bytes.length < HEADER || bytes[0] !== MAGIC) return null;
  const flags = bytes[1]!;
  return {
    origin: bytes.subarray(2, HEADER),
    binary: (flags & BINARY) !== 0,
    compress: (flags & COMPRESS) !== 0,
    payload: bytes.subarray(HEADER),
  };
}

/** Does `bytes` (an envelope) come from `origin`? Cheaper than decoding it. */
export function fromOrigin(bytes: Buffer, origin: Buffer): boolean {
  return bytes.length >= HEADER && origin.equals(bytes.subarray(2, HEADER));
}
