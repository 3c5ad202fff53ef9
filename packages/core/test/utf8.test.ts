import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { soak } from '../../../test/support/soak.js';
import { isValidUtf8, Utf8Validator } from '../src/protocol/utf8.js';
import { cutAt, hex } from './helpers.js';

const decoder = new TextDecoder('utf-8', { fatal: true });

/** Reference: the WHATWG decoder in fatal mode. */
function refValid(bytes: Uint8Array): boolean {
  try {
    decoder.decode(bytes);
    return true;
  } catch {
    return false;
  }
}

// Every constraint on a continuation byte is a sub-range of 80..BF bounded by these values.
const CONT = [0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf];
const SUFFIXES: number[][] = [[]];
for (let k = 1; k <= 3; k++) {
  for (const s of SUFFIXES.filter((x) => x.length === k - 1)) for (const c of CONT) SUFFIXES.push([...s, c]);
}

/** Brute force: can some 0-3 byte suffix make `prefix` valid UTF-8? */
function refExtendable(prefix: Uint8Array): boolean {
  const buf = new Uint8Array(prefix.length + 3);
  buf.set(prefix);
  for (const s of SUFFIXES) {
    buf.set(s, prefix.length);
    if (refValid(buf.subarray(0, prefix.length + s.length))) return true;
  }
  return false;
}

/** Index of the first byte after which the prefix can no longer become valid, or -1. */
function refFirstBad(bytes: Uint8Array): number {
  for (let i = 0; i < bytes.length; i++) if (!refExtendable(bytes.subarray(0, i + 1))) return i;
  return -1;
}

/** Feeds `bytes` to a new validator one at a time; `failedAt` is the first write() that failed, or -1. */
function feedByteByByte(bytes: Uint8Array): { v: Utf8Validator; failedAt: number } {
  const v = new Utf8Validator();
  for (let i = 0; i < bytes.length; i++) {
    if (!v.write(bytes.subarray(i, i + 1))) return { v, failedAt: i };
  }
  return { v, failedAt: -1 };
}

const INTERESTING = [
  0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xe1, 0xec, 0xed, 0xee,
  0xef, 0xf0, 0xf1, 0xf3, 0xf4, 0xf5, 0xf7, 0xf8, 0xfe, 0xff,
];

/** Byte strings that are valid, almost valid, or noise. */
const byteStrings = fc.oneof(
  fc.uint8Array({ maxLength: 40 }),
  fc.array(fc.constantFrom(...INTERESTING), { maxLength: 24 }).map((a) => Uint8Array.from(a)),
  fc.string({ unit: 'binary', maxLength: 20 }).map((s) => new Uint8Array(Buffer.from(s))),
  fc
    .tuple(
      fc.string({ unit: 'binary', minLength: 1, maxLength: 20 }),
      fc.array(fc.tuple(fc.nat(), fc.constantFrom(...INTERESTING)), { minLength: 1, maxLength: 3 }),
      fc.nat(),
    )
    .map(([s, edits, cut]) => {
      const bytes = Buffer.from(s);
      for (const [at, b] of edits) bytes[at % bytes.length] = b;
      // Sometimes truncate, leaving a sequence unfinished.
      return new Uint8Array(bytes.subarray(0, bytes.length - (cut % 3)));
    }),
);

describe('the reference itself', () => {
  it('agrees with Buffer round-trips on complete strings', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 30 }), (bytes) => {
        const roundTrip = Buffer.from(Buffer.from(bytes).toString('utf8'), 'utf8').equals(Buffer.from(bytes));
        expect(refValid(bytes)).toBe(roundTrip);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('isValidUtf8', () => {
  const valid = [
    '',
    '41',
    '7f',
    'c2 80', // U+0080
    'df bf', // U+07FF
    'e0 a0 80', // U+0800
    'ed 9f bf', // U+D7FF
    'ee 80 80', // U+E000
    'ef bf bf', // U+FFFF
    'f0 90 80 80', // U+10000
    'f4 8f bf bf', // U+10FFFF
    'ce ba e1 bd b9 cf 83 ce bc ce b5', // κόσμε
    'f0 9f 98 80 41 c3 a9', // 😀Aé
  ];
  const invalid = [
    'c0 80', // overlong NUL
    'c1 bf', // overlong
    'e0 80 80', // overlong
    'e0 9f bf', // overlong
    'f0 80 80 80', // overlong
    'f0 8f bf bf', // overlong
    'ed a0 80', // surrogate U+D800
    'ed bf bf', // surrogate U+DFFF
    'f4 90 80 80', // > U+10FFFF
    'f5 80 80 80',
    'f8 88 80 80 80',
    'fc 84 80 80 80 80',
    'fe',
    'ff',
    '80', // lone continuation
    'bf',
    'c2', // truncated
    'e2 82', // truncated
    'f0 9f 98', // truncated
    'c2 41', // missing continuation
    'e2 28 a1',
    '41 c2 80 80', // extra continuation
  ];
  for (const h of valid) it(`accepts ${h || '(empty)'}`, () => expect(isValidUtf8(hex(h))).toBe(true));
  for (const h of invalid) it(`rejects ${h}`, () => expect(isValidUtf8(hex(h))).toBe(false));
  for (let b = 0xf5; b <= 0xff; b++) {
    it(`rejects lead byte ${b.toString(16)}`, () => {
      expect(isValidUtf8(Buffer.from([b, 0x80, 0x80, 0x80]))).toBe(false);
      expect(new Utf8Validator().write(Buffer.from([b]))).toBe(false);
    });
  }

  it('matches the reference on random byte strings', () => {
    fc.assert(
      fc.property(byteStrings, (bytes) => {
        expect(isValidUtf8(bytes)).toBe(refValid(bytes));
      }),
      { numRuns: 3000 },
    );
  });
});

describe('Utf8Validator', () => {
  /** [bytes, index of the first byte at which write() must fail, or -1 for valid] */
  const earliest: [string, number][] = [
    ['c0 80', 0],
    ['c1 80', 0],
    ['e0 80 80', 1],
    ['e0 9f 80', 1],
    ['ed a0 80', 1],
    ['f0 8f 80 80', 1],
    ['f4 90 80 80', 1],
    ['f5 80 80 80', 0],
    ['ff', 0],
    ['80', 0],
    ['41 42 c2 41', 3],
    ['e2 82 41', 2],
    ['f0 9f 98 41', 3],
    ['f0 9f 98 80 80', 4],
    ['f4 8f bf bf', -1],
    ['ed 9f bf', -1],
    ['e0 a0 80', -1],
  ];
  for (const [h, bad] of earliest) {
    it(`fed byte by byte, ${h} fails at byte ${bad}`, () => {
      const bytes = hex(h);
      const { v, failedAt } = feedByteByByte(bytes);
      expect(failedAt).toBe(bad);
      expect(refFirstBad(bytes)).toBe(bad);
      if (bad === -1) expect(v.end()).toBe(true);
    });
  }

  it('end() is true only on a sequence boundary, and resets the validator', () => {
    const v = new Utf8Validator();
    expect(v.write(hex('41 e2 82'))).toBe(true);
    expect(v.end()).toBe(false);
    // Reset: a continuation byte now starts nothing.
    expect(v.write(hex('ac'))).toBe(false);
    const w = new Utf8Validator();
    expect(w.write(hex('41 e2 82'))).toBe(true);
    expect(w.write(hex('ac'))).toBe(true);
    expect(w.end()).toBe(true);
    expect(w.end()).toBe(true);
    expect(new Utf8Validator().end()).toBe(true);
  });

  it('empty writes change nothing', () => {
    const v = new Utf8Validator();
    expect(v.write(hex('f0'))).toBe(true);
    expect(v.write(Buffer.alloc(0))).toBe(true);
    expect(v.write(hex('9f'))).toBe(true);
    expect(v.write(Buffer.alloc(0))).toBe(true);
    expect(v.write(hex('98 80'))).toBe(true);
    expect(v.end()).toBe(true);
  });

  it('clone() continues from the same state without affecting the original', () => {
    const v = new Utf8Validator();
    expect(v.write(hex('e2'))).toBe(true);
    const c = v.clone();
    expect(c.write(hex('41'))).toBe(false);
    expect(v.write(hex('82 ac'))).toBe(true);
    expect(v.end()).toBe(true);
    const d = new Utf8Validator();
    d.write(hex('f0 9f'));
    const e = d.clone();
    expect(e.write(hex('98 80'))).toBe(true);
    expect(e.end()).toBe(true);
    expect(d.end()).toBe(false);
  });

  it('write() fails exactly when the prefix seen so far cannot become valid, in any chunking', () => {
    fc.assert(
      fc.property(byteStrings, fc.array(fc.nat(), { maxLength: 12 }), (bytes, cuts) => {
        const chunks = cutAt(Buffer.from(bytes), cuts);
        const v = new Utf8Validator();
        let pos = 0;
        for (const chunk of chunks) {
          pos += chunk.length;
          const ok = v.write(chunk);
          expect(ok).toBe(refExtendable(bytes.subarray(0, pos)));
          if (!ok) return;
        }
        expect(v.end()).toBe(refValid(bytes));
      }),
      // The brute-force reference costs up to 259 decodes per check: a long run is a soak.
      { numRuns: soak(300, 3000) },
    );
  });

  it('fed one byte at a time, fails at the earliest impossible byte', () => {
    fc.assert(
      fc.property(byteStrings, (bytes) => {
        const { v, failedAt } = feedByteByByte(bytes);
        expect(failedAt).toBe(refFirstBad(bytes));
        if (failedAt === -1) expect(v.end()).toBe(refValid(bytes));
      }),
      { numRuns: soak(200, 2000) },
    );
  });

  it('valid text split anywhere is accepted', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), fc.array(fc.nat(), { maxLength: 10 }), (s, cuts) => {
        const v = new Utf8Validator();
        for (const chunk of cutAt(Buffer.from(s), cuts)) expect(v.write(chunk)).toBe(true);
        expect(v.end()).toBe(true);
      }),
    );
  });
});
