/** Payload generators and a reference UTF-8 checker, independent of the code under test. */

/** Deterministic pseudo-random bytes (xorshift32), so every run sends the same payloads. */
export function randomBytesSeeded(n: number, seed = 0x9e3779b9): Buffer {
  const out = Buffer.allocUnsafe(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

const PATTERN = Buffer.from('BAsd7&jh23-The quick brown fox jumps over the lazy dog. 0123456789!');

/** ASCII text of exactly n bytes (a repeating pattern). */
export function asciiText(n: number): Buffer {
  const out = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i += PATTERN.length) PATTERN.copy(out, i, 0, Math.min(PATTERN.length, n - i));
  return out;
}

const WORDS = [
  'websocket',
  'frame',
  'deflate',
  'κόσμε',
  'payload',
  'message',
  'context',
  'window',
  'Grüße',
  'echo',
  'takeover',
  'ping',
  'pong',
  '日本語',
  'close',
  'fragment',
  'server',
  'client',
  '😀',
  'inflate',
];

/** Compressible UTF-8 text of exactly n bytes: words from a small vocabulary, padded with ASCII. */
export function wordsText(n: number, seed = 7): Buffer {
  const rnd = randomBytesSeeded(Math.max(16, n), seed);
  const parts: Buffer[] = [];
  let len = 0;
  let i = 0;
  for (;;) {
    const w = Buffer.from(`${WORDS[rnd[i++ % rnd.length]! % WORDS.length]} `);
    if (len + w.length > n) break;
    parts.push(w);
    len += w.length;
  }
  parts.push(Buffer.alloc(n - len, 0x2e));
  return Buffer.concat(parts, n);
}

/** Binary of n bytes that compresses somewhat: random runs mixed with repeats. */
export function mixedBinary(n: number, seed = 11): Buffer {
  const rnd = randomBytesSeeded(n, seed);
  const out = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) out[i] = (i >> 6) % 3 === 0 ? rnd[i]! : (i * 31) & 0xff;
  return out;
}

/** Multi-byte UTF-8 text of about n bytes (complete characters only). */
export function multibyteText(n: number): Buffer {
  const unit = Buffer.from('aκό€😀日本Ωß');
  const out: Buffer[] = [];
  let len = 0;
  while (len + unit.length <= n) {
    out.push(unit);
    len += unit.length;
  }
  out.push(Buffer.alloc(n - len, 0x41));
  return Buffer.concat(out, n);
}

/**
 * Reference UTF-8 check (RFC 3629 §4). Returns the index of the first byte at which the
 * prefix can no longer be the start of valid UTF-8, `bytes.length` when the text is only
 * truncated at the end, or -1 when it is valid.
 */
export function utf8FailIndex(b: Uint8Array): number {
  const n = b.length;
  let i = 0;
  while (i < n) {
    const c = b[i]!;
    if (c < 0x80) {
      i++;
      continue;
    }
    let need: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) need = 1;
    else if (c === 0xe0) {
      need = 2;
      lo = 0xa0; // no overlongs
    } else if (c === 0xed) {
      need = 2;
      hi = 0x9f; // no surrogates
    } else if (c >= 0xe1 && c <= 0xef) need = 2;
    else if (c === 0xf0) {
      need = 3;
      lo = 0x90; // no overlongs
    } else if (c >= 0xf1 && c <= 0xf3) need = 3;
    else if (c === 0xf4) {
      need = 3;
      hi = 0x8f; // nothing above U+10FFFF
    } else return i;
    for (let j = 1; j <= need; j++) {
      if (i + j >= n) return n;
      const d = b[i + j]!;
      const l = j === 1 ? lo : 0x80;
      const h = j === 1 ? hi : 0xbf;
      if (d < l || d > h) return i + j;
    }
    i += need + 1;
  }
  return -1;
}

/** Splits bytes before every byte that is not a continuation byte (code point boundaries). */
export function splitCodePoints(b: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let start = 0;
  for (let i = 1; i <= b.length; i++) {
    if (i === b.length || (b[i]! & 0xc0) !== 0x80) {
      out.push(b.subarray(start, i));
      start = i;
    }
  }
  return out;
}

export const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
export const KiB = 1024;
export const MiB = 1024 * 1024;
