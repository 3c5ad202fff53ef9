import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Opcode } from '../src/protocol/frame.js';
import { encodeFrame, encodeFrameInto, headerSize, writeHeader } from '../src/protocol/frame-writer.js';
import { applyMask, nextMaskKey } from '../src/protocol/mask.js';
import { bytewise, encode, hex, mkFrame, parseChunks, RFC_MASK } from './helpers.js';

const hello = Buffer.from('Hello');
const bin256 = Buffer.from(Array.from({ length: 256 }, (_, i) => (i * 7 + 3) & 0xff));
const bin64k = Buffer.from(Array.from({ length: 65536 }, (_, i) => (i * 31 + (i >> 8)) & 0xff));

/** RFC 6455 §5.7 examples. `side` is the receiver that accepts the bytes. */
const vectors = [
  {
    name: 'single-frame unmasked text "Hello"',
    frames: [mkFrame(Opcode.TEXT, hello)],
    wire: [hex('81 05 48 65 6c 6c 6f')],
    side: 'client' as const,
  },
  {
    name: 'single-frame masked text "Hello"',
    frames: [mkFrame(Opcode.TEXT, hello, { masked: true })],
    wire: [hex('81 85 37 fa 21 3d 7f 9f 4d 51 58')],
    side: 'server' as const,
  },
  {
    name: 'fragmented unmasked text "Hel" + "lo"',
    frames: [mkFrame(Opcode.TEXT, 'Hel', { fin: false }), mkFrame(Opcode.CONTINUATION, 'lo')],
    wire: [hex('01 03 48 65 6c'), hex('80 02 6c 6f')],
    side: 'client' as const,
  },
  {
    name: 'unmasked ping "Hello"',
    frames: [mkFrame(Opcode.PING, hello)],
    wire: [hex('89 05 48 65 6c 6c 6f')],
    side: 'client' as const,
  },
  {
    name: 'masked pong "Hello"',
    frames: [mkFrame(Opcode.PONG, hello, { masked: true })],
    wire: [hex('8a 85 37 fa 21 3d 7f 9f 4d 51 58')],
    side: 'server' as const,
  },
  {
    name: '256-byte unmasked binary',
    frames: [mkFrame(Opcode.BINARY, bin256)],
    wire: [Buffer.concat([hex('82 7E 01 00'), bin256])],
    side: 'client' as const,
  },
  {
    name: '64 KiB unmasked binary',
    frames: [mkFrame(Opcode.BINARY, bin64k)],
    wire: [Buffer.concat([hex('82 7F 00 00 00 00 00 01 00 00'), bin64k])],
    side: 'client' as const,
  },
];

describe('RFC 6455 §5.7 examples', () => {
  for (const v of vectors) {
    it(`encodes ${v.name} byte for byte`, () => {
      v.frames.forEach((f, i) => {
        const before = Buffer.from(f.payload);
        expect(encode(f, RFC_MASK).equals(v.wire[i]!)).toBe(true);
        // The caller's payload is never modified by masking.
        expect(f.payload.equals(before)).toBe(true);
      });
    });

    it(`parses ${v.name} whole and byte by byte`, () => {
      const bytes = Buffer.concat(v.wire);
      const whole = parseChunks({ side: v.side, maxFrameSize: 1 << 20 }, [bytes]);
      const single = parseChunks({ side: v.side, maxFrameSize: 1 << 20 }, bytewise(bytes));
      for (const r of [whole, single]) {
        expect(r.error).toBeUndefined();
        expect(r.frames).toEqual(v.frames);
      }
    });
  }

  it('an owned payload is masked in place and sent after its header, the same bytes on the wire', () => {
    for (const size of [1025, 4096, 70_001]) {
      const payload = Buffer.from('é'.repeat(size).slice(0, size), 'utf8').subarray(0, size);
      const expected = Buffer.concat(encodeFrame(mkFrame(Opcode.TEXT, payload, { masked: true }), RFC_MASK));
      const owned = Buffer.from(payload);
      const out: Buffer[] = [];
      encodeFrameInto(out, true, 0, Opcode.TEXT, true, owned, RFC_MASK, true);
      expect(out).toHaveLength(2);
      expect(out[1]).toBe(owned); // no copy: the payload itself, masked
      expect(Buffer.concat(out).equals(expected)).toBe(true);
      // Small payloads are still copied next to their header (one buffer, caller's untouched).
      const small = Buffer.from('hello');
      const one: Buffer[] = [];
      encodeFrameInto(one, true, 0, Opcode.TEXT, true, small, RFC_MASK, true);
      expect(one).toHaveLength(1);
      expect(small.toString()).toBe('hello');
    }
  });

  it('the RFC masked "Hello" payload is the unmasked bytes XOR 37 fa 21 3d', () => {
    const masked = Buffer.from(hello);
    applyMask(masked, RFC_MASK);
    expect(masked.equals(hex('7f 9f 4d 51 58'))).toBe(true);
    applyMask(masked, RFC_MASK);
    expect(masked.equals(hello)).toBe(true);
  });
});

describe('payload length encoding', () => {
  const cases = [
    { len: 0, header: '80 00' },
    { len: 125, header: '82 7d' },
    { len: 126, header: '82 7e 00 7e' },
    { len: 127, header: '82 7e 00 7f' },
    { len: 65535, header: '82 7e ff ff' },
    { len: 65536, header: '82 7f 00 00 00 00 00 01 00 00' },
    { len: 65537, header: '82 7f 00 00 00 00 00 01 00 01' },
  ];
  for (const { len, header } of cases) {
    it(`uses the minimal encoding for ${len} bytes`, () => {
      const payload = Buffer.alloc(len, 0x61);
      const opcode = len === 0 ? Opcode.CONTINUATION : Opcode.BINARY;
      const bytes = encode(mkFrame(opcode, payload));
      const h = hex(header);
      expect(bytes.subarray(0, h.length).equals(h)).toBe(true);
      expect(bytes.length).toBe(h.length + len);
      expect(headerSize(len, false)).toBe(h.length);
      expect(headerSize(len, true)).toBe(h.length + 4);

      // Masked: same length field with the mask bit, then the key, then masked payload.
      const masked = encode(mkFrame(opcode, payload, { masked: true }), RFC_MASK);
      expect(masked[1]).toBe(h[1]! | 0x80);
      expect(masked.subarray(2, h.length).equals(h.subarray(2))).toBe(true);
      expect(masked.subarray(h.length, h.length + 4).equals(RFC_MASK)).toBe(true);
      expect(masked.length).toBe(h.length + 4 + len);

      // And it parses back on both sides.
      const c = parseChunks({ side: 'client', maxFrameSize: 1 << 20 }, [bytes]);
      expect(c.frames).toHaveLength(1);
      expect(c.frames[0]!.payload.equals(payload)).toBe(true);
      const s = parseChunks({ side: 'server', maxFrameSize: 1 << 20 }, [masked]);
      expect(s.frames).toHaveLength(1);
      expect(s.frames[0]!.payload.equals(payload)).toBe(true);
    });
  }

  it('writes a 64-bit length above 2^32 with the high bit clear', () => {
    const target = Buffer.alloc(10);
    const n = writeHeader(target, 0, {
      fin: true,
      rsv: 0,
      opcode: Opcode.BINARY,
      maskKey: undefined,
      payloadLength: 2 ** 40 + 0x01020304,
    });
    expect(n).toBe(10);
    expect(target.equals(hex('82 7f 00 00 01 00 01 02 03 04'))).toBe(true);
  });

  it('writes FIN, RSV bits and opcode into the first byte', () => {
    expect(encode(mkFrame(Opcode.TEXT, '', { fin: false, rsv: 4 }))[0]).toBe(0x41);
    expect(encode(mkFrame(Opcode.BINARY, '', { rsv: 7 }))[0]).toBe(0xf2);
    expect(encode(mkFrame(Opcode.CLOSE, ''))[0]).toBe(0x88);
  });

  it('masks outbound frames with a fresh key each time when none is forced', () => {
    const f = mkFrame(Opcode.TEXT, 'same payload', { masked: true });
    const keys = new Set<string>();
    for (let i = 0; i < 64; i++) {
      const bytes = encode(f);
      expect(bytes[1]! & 0x80).toBe(0x80);
      keys.add(bytes.subarray(2, 6).toString('hex'));
      const parsed = parseChunks({ side: 'server', maxFrameSize: 1024 }, [bytes]);
      expect(parsed.frames[0]!.payload.toString()).toBe('same payload');
    }
    expect(keys.size).toBeGreaterThan(60);
    expect(nextMaskKey()).toHaveLength(4);
  });

  it('returns large unmasked payloads without copying, and never returns the caller buffer masked', () => {
    const payload = Buffer.alloc(100_000, 1);
    const parts = encodeFrame(mkFrame(Opcode.BINARY, payload));
    expect(Buffer.concat(parts).subarray(10).equals(payload)).toBe(true);
    const masked = encodeFrame(mkFrame(Opcode.BINARY, payload, { masked: true }), RFC_MASK);
    expect(payload.every((b) => b === 1)).toBe(true);
    expect(Buffer.concat(masked).length).toBe(14 + 100_000);
  });
});

function naiveMask(data: Uint8Array, mask: Uint8Array, phase: number): Uint8Array {
  const out = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = data[i]! ^ mask[(i + phase) % 4]!;
  return out;
}

describe('applyMask', () => {
  it('equals a naive byte-by-byte XOR for any length, offset and phase', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: 300 }),
        fc.uint8Array({ minLength: 4, maxLength: 4 }),
        fc.nat({ max: 7 }),
        fc.nat({ max: 1000 }),
        (data, mask, offset, phase) => {
          // Place the data at an arbitrary (often unaligned) offset inside a larger buffer,
          // with guard bytes around it that must stay untouched.
          const backing = new Uint8Array(offset + data.length + 8).fill(0xee);
          backing.set(data, offset);
          const view = backing.subarray(offset, offset + data.length);
          applyMask(view, mask, phase);
          expect(Array.from(view)).toEqual(Array.from(naiveMask(data, mask, phase)));
          expect(backing.subarray(0, offset).every((b) => b === 0xee)).toBe(true);
          expect(backing.subarray(offset + data.length).every((b) => b === 0xee)).toBe(true);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('unmasking piece by piece with phases equals unmasking at once', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: 200 }),
        fc.uint8Array({ minLength: 4, maxLength: 4 }),
        fc.array(fc.nat({ max: 200 }), { maxLength: 6 }),
        (data, mask, cuts) => {
          const whole = Buffer.from(data);
          applyMask(whole, mask);
          const pieces = Buffer.from(data);
          const points = [...new Set(cuts.map((c) => c % (data.length + 1)))].sort((a, b) => a - b);
          let prev = 0;
          for (const p of [...points, data.length]) {
            applyMask(pieces.subarray(prev, p), mask, prev);
            prev = p;
          }
          expect(pieces.equals(whole)).toBe(true);
        },
      ),
    );
  });

  it('handles large buffers on the word path (including Buffer pool offsets)', () => {
    const mask = hex('01 02 04 08');
    for (const len of [31, 32, 33, 1000, 4097]) {
      for (let off = 0; off < 4; off++) {
        const data = Buffer.from(Array.from({ length: len + off }, (_, i) => (i * 13) & 0xff)).subarray(off);
        const expected = naiveMask(data, mask, 3);
        applyMask(data, mask, 3);
        expect(Array.from(data)).toEqual(Array.from(expected));
      }
    }
  });
});
