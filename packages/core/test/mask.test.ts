import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { alignedFrame, applyMask, copyMasked } from '../src/protocol/mask.js';
import { pseudoRandomBytes } from './helpers.js';

const LARGE = 4096;

function naiveMask(data: Uint8Array, mask: Uint8Array, phase: number): Uint8Array {
  const out = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = data[i]! ^ mask[(i + phase) % 4]!;
  return out;
}

describe('masking large payloads', () => {
  it('masks in place like a byte-by-byte XOR at every size, offset and phase', () => {
    const sizes = [LARGE, LARGE + 1, 16_384 + 63, 65_536, 65_537, 200_003];
    for (const size of sizes) {
      for (const [offset, phase] of [
        [0, 0],
        [1, 1],
        [3, 2],
        [2, 7],
      ] as const) {
        const mask = Uint8Array.of(0x81, 0x02, 0xf3, 0x44);
        const backing = Buffer.alloc(offset + size + 8, 0xee);
        const data = pseudoRandomBytes(size, size + offset);
        data.copy(backing, offset);
        const view = backing.subarray(offset, offset + size);
        applyMask(view, mask, phase);
        expect(view.equals(naiveMask(data, mask, phase)), `${size} @${offset} phase ${phase}`).toBe(true);
        expect(backing.subarray(0, offset).every((b) => b === 0xee)).toBe(true);
        expect(backing.subarray(offset + size).every((b) => b === 0xee)).toBe(true);
      }
    }
  });

  it('masks like a byte-by-byte XOR around the word-loop threshold, at every alignment', () => {
    const mask = Uint8Array.of(0x5a, 0xc3, 0x0f, 0x99);
    for (let size = 0; size <= 300; size++) {
      for (let offset = 0; offset < 8; offset++) {
        for (let phase = 0; phase < 4; phase++) {
          const backing = Buffer.alloc(offset + size + 9, 0xee);
          const data = pseudoRandomBytes(size, 31 * size + offset + 1);
          data.copy(backing, offset);
          const view = backing.subarray(offset, offset + size);
          applyMask(view, mask, phase);
          if (!view.equals(naiveMask(data, mask, phase)) || backing[offset + size] !== 0xee)
            expect.fail(`size ${size} @${offset} phase ${phase}`);
          if (offset > 0 && backing[offset - 1] !== 0xee) expect.fail(`wrote before @${offset}`);
        }
      }
    }
  });

  it('copyMasked equals a byte-by-byte XOR at every source and target alignment', () => {
    const mask = Uint8Array.of(0x11, 0xa2, 0x3c, 0xd4);
    for (const size of [0, 7, 191, 192, 193, 200, 1000, 16_391]) {
      for (let from = 0; from < 8; from++) {
        for (let to = 0; to < 8; to++) {
          const phase = (from + to) & 3;
          const source = Buffer.alloc(from + size);
          pseudoRandomBytes(size, size + from).copy(source, from);
          const view = source.subarray(from);
          const before = Buffer.from(view);
          const target = Buffer.alloc(to + size + 3, 0xee);
          copyMasked(view, target, to, mask, phase);
          if (!target.subarray(to, to + size).equals(naiveMask(before, mask, phase)))
            expect.fail(`size ${size} from @${from} to @${to}`);
          if (!view.equals(before)) expect.fail('the source changed');
          if (!target.subarray(0, to).every((b) => b === 0xee)) expect.fail('wrote before the offset');
          if (!target.subarray(to + size).every((b) => b === 0xee)) expect.fail('wrote past the end');
        }
      }
    }
  });

  it('alignedFrame puts the payload at the alignment of the source', () => {
    for (const headerSize of [6, 8, 14]) {
      for (let from = 0; from < 8; from++) {
        const payload = Buffer.alloc(from + 4096).subarray(from);
        const frame = alignedFrame(headerSize, payload);
        expect(frame.length).toBe(headerSize + 4096);
        expect((frame.byteOffset + headerSize) & 7).toBe(payload.byteOffset & 7);
      }
    }
  });

  it('unmasking a large payload piece by piece equals unmasking it at once', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: LARGE, max: 150_000 }),
        fc.uint8Array({ minLength: 4, maxLength: 4 }),
        fc.array(fc.nat({ max: 150_000 }), { maxLength: 5 }),
        (size, mask, cuts) => {
          const data = pseudoRandomBytes(size, size);
          const whole = Buffer.from(data);
          applyMask(whole, mask);
          const pieces = Buffer.from(data);
          const points = [...new Set(cuts.map((c) => c % (size + 1)))].sort((a, b) => a - b);
          let prev = 0;
          for (const p of [...points, size]) {
            applyMask(pieces.subarray(prev, p), mask, prev);
            prev = p;
          }
          expect(pieces.equals(whole)).toBe(true);
          expect(whole.equals(naiveMask(data, mask, 0))).toBe(true);
        },
      ),
      { numRuns: 40 },
    );
  });

  it('copyMasked writes the masked copy and leaves the source alone', () => {
    for (const size of [0, 5, LARGE - 1, LARGE, 70_001]) {
      const mask = Uint8Array.of(9, 8, 7, 0xf6);
      const source = pseudoRandomBytes(size, 7 + size);
      const before = Buffer.from(source);
      const target = Buffer.alloc(size + 10, 0xee);
      copyMasked(source, target, 6, mask);
      expect(source.equals(before)).toBe(true);
      expect(target.subarray(6, 6 + size).equals(naiveMask(source, mask, 0)), `${size}`).toBe(true);
      expect(target.subarray(0, 6).every((b) => b === 0xee)).toBe(true);
      expect(target.subarray(6 + size).every((b) => b === 0xee)).toBe(true);
    }
  });
});
