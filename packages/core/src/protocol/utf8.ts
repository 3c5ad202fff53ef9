import { isUtf8 } from 'node:buffer';

/**
 * Length of the sequence a lead byte announces, or 0 when the byte can never start one.
 * RFC 3629 §4: C0, C1 and F5..FF never appear in UTF-8.
 */
function sequenceLength(lead: number): number {
  if (lead < 0x80) return 1;
  if (lead < 0xc2) return 0;
  if (lead < 0xe0) return 2;
  if (lead < 0xf0) return 3;
  if (lead < 0xf5) return 4;
  return 0;
}

/**
 * Could `bytes[start..end)` (an incomplete sequence) still become valid UTF-8? Checks the
 * second byte's narrowed range (no overlongs, no surrogates, nothing past U+10FFFF) and
 * that the rest are continuation bytes, so invalid text fails at the first bad byte.
 */
function isValidPrefix(bytes: Uint8Array, start: number, end: number): boolean {
  const lead = bytes[start]!;
  if (sequenceLength(lead) === 0) return false;
  if (end - start >= 2) {
    const b1 = bytes[start + 1]!;
    let lo = 0x80;
    let hi = 0xbf;
    if (lead === 0xe0) lo = 0xa0;
    else if (lead === 0xed) hi = 0x9f;
    else if (lead === 0xf0) lo = 0x90;
    else if (lead === 0xf4) hi = 0x8f;
    if (b1 < lo || b1 > hi) return false;
  }
  for (let i = start + 2; i < end; i++) if ((bytes[i]! & 0xc0) !== 0x80) return false;
  return true;
}

/** Whole-buffer check (native). */
export function isValidUtf8(bytes: Uint8Array): boolean {
  return bytes.length === 0 || isUtf8(bytes);
}

/**
 * Incremental UTF-8 validator for text messages split across frames (and across
 * decompressed chunks). `write` returns false as soon as the bytes seen so far can no
 * longer be the start of valid UTF-8 — RFC 6455 §8.1 asks to fail the connection at once.
 */
export class Utf8Validator {
  /** An incomplete sequence carried to the next write (allocated on first need). */
  private pending: Uint8Array | undefined;
  private pendingLength = 0;

  reset(): void {
    this.pendingLength = 0;
  }

  /** An independent validator in the same state (to look ahead without committing). */
  clone(): Utf8Validator {
    const copy = new Utf8Validator();
    if (this.pending !== undefined) copy.pending = this.pending.slice();
    copy.pendingLength = this.pendingLength;
    return copy;
  }

  write(chunk: Uint8Array): boolean {
    let offset = 0;
    if (this.pendingLength > 0) {
      const pending = this.pending!;
      const need = sequenceLength(pending[0]!) - this.pendingLength;
      const take = Math.min(need, chunk.length);
      for (let i = 0; i < take; i++) pending[this.pendingLength++] = chunk[i]!;
      offset = take;
      if (!isValidPrefix(pending, 0, this.pendingLength)) return false;
      if (take < need) return true;
      this.pendingLength = 0;
    }
    const len = chunk.length;
    if (offset === len) return true;
    // Find an incomplete sequence at the end: scan back over at most 3 bytes.
    let tail = len;
    for (let i = len - 1; i >= offset && i >= len - 3; i--) {
      const b = chunk[i]!;
      if ((b & 0xc0) === 0x80) continue;
      if (b >= 0xc0) {
        const expected = sequenceLength(b) || 4;
        if (len - i < expected) tail = i;
      }
      break;
    }
    if (tail > offset && !isUtf8(chunk.subarray(offset, tail))) return false;
    if (tail < len) {
      if (!isValidPrefix(chunk, tail, len)) return false;
      this.pending ??= new Uint8Array(4);
      this.pending.set(chunk.subarray(tail, len));
      this.pendingLength = len - tail;
    }
    return true;
  }

  /** True when the text ended on a sequence boundary. */
  end(): boolean {
    const complete = this.pendingLength === 0;
    this.pendingLength = 0;
    return complete;
  }
}
