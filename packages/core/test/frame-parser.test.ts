import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { WebSocketError } from '../src/protocol/errors.js';
import { type Frame, Opcode } from '../src/protocol/frame.js';
import { type FrameHeader, FrameParser } from '../src/protocol/frame-parser.js';
import {
  bytewise,
  cutAt,
  encode,
  errorCode,
  hex,
  mkFrame,
  parseChunks,
  pseudoRandomBytes,
  summary,
} from './helpers.js';

type Side = 'client' | 'server';
const masked = (side: Side) => side === 'server';

const smallPayload = fc.uint8Array({ maxLength: 140 }).map((a) => Buffer.from(a));
const anyPayload = fc.oneof(
  { weight: 10, arbitrary: smallPayload },
  {
    weight: 2,
    arbitrary: fc
      .record({
        len: fc.oneof(
          fc.constantFrom(125, 126, 127, 65535, 65536, 65537),
          fc.integer({ min: 126, max: 70_000 }),
        ),
        seed: fc.integer(),
      })
      .map(({ len, seed }) => pseudoRandomBytes(len, seed)),
  },
);

const dataFrame = (rsvBits: fc.Arbitrary<number>) =>
  fc
    .record({ opcode: fc.constantFrom(0, 1, 2), fin: fc.boolean(), rsv: rsvBits, payload: anyPayload })
    .map(({ opcode, fin, rsv, payload }) => ({ opcode, fin, rsv: opcode === 0 ? 0 : rsv, payload }));
const controlFrame = fc.record({
  opcode: fc.constantFrom(8, 9, 10),
  fin: fc.constant(true),
  rsv: fc.constant(0),
  payload: fc.uint8Array({ maxLength: 125 }).map((a) => Buffer.from(a)),
});

const frameList = (rsvBits: fc.Arbitrary<number>) =>
  fc.array(fc.oneof(dataFrame(rsvBits), controlFrame), { minLength: 1, maxLength: 8 });

function serialize(frames: Omit<Frame, 'masked'>[], side: Side): { bytes: Buffer; expected: Frame[] } {
  const expected = frames.map((f) => ({ ...f, masked: masked(side) }));
  return { bytes: Buffer.concat(expected.map((f) => encode(f))), expected };
}

describe('FrameParser: any chunking yields the same frames', () => {
  for (const side of ['server', 'client'] as const) {
    it(`${side} side: whole, random cuts and (for small streams) one byte at a time`, () => {
      fc.assert(
        fc.property(frameList(fc.constant(0)), fc.array(fc.nat(), { maxLength: 40 }), (frames, cuts) => {
          const { bytes, expected } = serialize(frames, side);
          const opts = { side, maxFrameSize: 1 << 20 };
          const whole = parseChunks(opts, [bytes]);
          expect(whole.error).toBeUndefined();
          expect(summary(whole.frames)).toEqual(summary(expected));
          const random = parseChunks(opts, cutAt(bytes, cuts));
          expect(random.error).toBeUndefined();
          expect(summary(random.frames)).toEqual(summary(expected));
          if (bytes.length <= 3000) {
            const single = parseChunks(opts, bytewise(bytes));
            expect(single.error).toBeUndefined();
            expect(summary(single.frames)).toEqual(summary(expected));
          }
        }),
        { numRuns: 150 },
      );
    });
  }

  it('with allowedRsv = RSV1, RSV1 on data frames parses in any chunking', () => {
    fc.assert(
      fc.property(frameList(fc.constantFrom(0, 4)), fc.array(fc.nat(), { maxLength: 20 }), (frames, cuts) => {
        const { bytes, expected } = serialize(frames, 'server');
        const r = parseChunks({ side: 'server', maxFrameSize: 1 << 20, allowedRsv: 4 }, cutAt(bytes, cuts));
        expect(r.error).toBeUndefined();
        expect(summary(r.frames)).toEqual(summary(expected));
      }),
      { numRuns: 100 },
    );
  });

  it('returns each frame as soon as its last byte arrives, not before', () => {
    const frames = [
      mkFrame(Opcode.TEXT, 'abc', { fin: false }),
      mkFrame(Opcode.PING, ''),
      mkFrame(Opcode.CONTINUATION, Buffer.alloc(300, 7)),
    ];
    const parts = frames.map((f) => encode(f));
    const ends = parts.map((_, i) => parts.slice(0, i + 1).reduce((n, p) => n + p.length, 0));
    const parser = new FrameParser({ side: 'client', maxFrameSize: 1000 });
    const bytes = Buffer.concat(parts);
    const got: number[] = [];
    for (let i = 0; i < bytes.length; i++) {
      parser.push(bytes.subarray(i, i + 1));
      for (let f = parser.next(); f !== null; f = parser.next()) got.push(i + 1);
    }
    expect(got).toEqual(ends);
  });
});

describe('FrameParser: buffering', () => {
  it('bufferedAmount counts a partial header, then the partial payload, then drops to 0', () => {
    const parser = new FrameParser({ side: 'client', maxFrameSize: 1000 });
    const bytes = encode(mkFrame(Opcode.BINARY, Buffer.alloc(300, 9)));
    parser.push(bytes.subarray(0, 3));
    expect(parser.next()).toBeNull();
    expect(parser.bufferedAmount).toBe(3);
    parser.push(bytes.subarray(3, 4 + 100));
    expect(parser.next()).toBeNull();
    expect(parser.bufferedAmount).toBe(100);
    parser.push(bytes.subarray(104));
    const f = parser.next();
    expect(f?.payload.length).toBe(300);
    expect(parser.bufferedAmount).toBe(0);
    expect(parser.next()).toBeNull();
  });

  for (const side of ['server', 'client'] as const) {
    it(`${side}: a length over maxFrameSize fails right after the header, with no payload sent`, () => {
      const mask = masked(side) ? hex('01 02 03 04') : Buffer.alloc(0);
      const mbit = masked(side) ? 0x80 : 0;
      const headers = [
        Buffer.concat([Buffer.from([0x82, mbit | 0x7e, 0x00, 0x65]), mask]), // 101 > 100
        Buffer.concat([Buffer.from([0x82, mbit | 0x7f, 0, 0, 0, 0, 0, 1, 0, 0]), mask]), // 65536
        Buffer.concat([Buffer.from([0x82, mbit | 0x7f, 0, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), mask]), // 2^53-1
      ];
      for (const header of headers) {
        const opts = { side, maxFrameSize: 100 };
        // Byte by byte: nothing happens until the header's last byte, then 1009.
        const r = parseChunks(opts, bytewise(header));
        expect(errorCode(r)).toBe(1009);
        expect(r.errorAtChunk).toBe(header.length - 1);
        expect((r.error as WebSocketError).reason).toBe('message-too-big');
      }
      // Exactly maxFrameSize is fine.
      const ok = encode(mkFrame(Opcode.BINARY, Buffer.alloc(100, 1), { masked: masked(side) }));
      expect(parseChunks({ side, maxFrameSize: 100 }, [ok]).frames).toHaveLength(1);
    });
  }

  it('after a failure: next() returns null, pushes are ignored and nothing stays buffered', () => {
    // A partial-payload check that throws (as the assembler's UTF-8 fail-fast does).
    const failing = new FrameParser({
      side: 'client',
      maxFrameSize: 1000,
      onPartialPayload: () => {
        throw new WebSocketError(1007, 'bad');
      },
    });
    failing.push(Buffer.concat([hex('81 0a'), Buffer.from('abc')]));
    expect(() => failing.next()).toThrow(WebSocketError);
    expect(failing.bufferedAmount).toBe(0);
    expect(failing.next()).toBeNull();
    failing.push(hex('81 01 41'));
    expect(failing.next()).toBeNull();
    expect(failing.bufferedAmount).toBe(0);

    const bad = new FrameParser({ side: 'client', maxFrameSize: 1000 });
    bad.push(hex('83 00 81 01 41'));
    expect(() => bad.next()).toThrow(WebSocketError);
    expect(bad.next()).toBeNull();
    expect(bad.bufferedAmount).toBe(0);
  });

  it('calls onHeader once per frame before its payload, and onPartialPayload with unmasked pieces', () => {
    const headers: FrameHeader[] = [];
    const pieces: string[] = [];
    const parser = new FrameParser({
      side: 'server',
      maxFrameSize: 1000,
      onHeader: (h) => headers.push({ ...h }),
      onPartialPayload: (p) => pieces.push(p.toString()),
    });
    const bytes = encode(mkFrame(Opcode.TEXT, 'Hello, world', { masked: true }), hex('37 fa 21 3d'));
    parser.push(bytes.subarray(0, 6));
    expect(parser.next()).toBeNull();
    expect(headers).toEqual([{ fin: true, rsv: 0, opcode: 1, masked: true, length: 12 }]);
    parser.push(bytes.subarray(6, 9));
    parser.push(bytes.subarray(9, 11));
    expect(parser.next()).toBeNull();
    parser.push(bytes.subarray(11, 17));
    expect(parser.next()).toBeNull();
    parser.push(bytes.subarray(17));
    expect(parser.next()?.payload.toString()).toBe('Hello, world');
    // The piece that completes the frame is not reported as partial.
    expect(pieces).toEqual(['Hel', 'lo', ', worl']);
    expect(headers).toHaveLength(1);
  });
});

describe('FrameParser: large payloads split across reads', () => {
  for (const side of ['server', 'client'] as const) {
    it(`${side}: partial pieces are unmasked, before and after the payload is gathered in one buffer`, () => {
      const payload = pseudoRandomBytes(50_000, 7);
      const bytes = encode({ opcode: Opcode.BINARY, fin: true, rsv: 0, masked: masked(side), payload });
      const seen: Buffer[] = [];
      const parser = new FrameParser({
        side,
        maxFrameSize: 1 << 20,
        onPartialPayload: (p) => seen.push(Buffer.from(p)),
      });
      // Pieces of 10 KiB, then 1 byte, then odd sizes, so every key phase shows up.
      const cuts = [14, 10_014, 10_015, 20_000, 33_333, 40_001];
      let prev = 0;
      for (const cut of [...cuts, bytes.length]) {
        parser.push(Buffer.from(bytes.subarray(prev, cut))); // the parser owns what it is given
        const frame = parser.next();
        if (cut < bytes.length) expect(frame).toBeNull();
        else expect(frame?.payload.equals(payload)).toBe(true);
        prev = cut;
      }
      expect(Buffer.concat(seen).equals(payload.subarray(0, Buffer.concat(seen).length))).toBe(true);
      expect(seen).toHaveLength(cuts.length);
    });
  }

  it('allocates the payload buffer only once half of the payload has arrived', () => {
    const size = 16 * 1024 * 1024;
    const payload = Buffer.alloc(size, 0x61);
    const bytes = encode({ opcode: Opcode.BINARY, fin: true, rsv: 0, masked: true, payload });
    const parser = new FrameParser({ side: 'server', maxFrameSize: size });
    const external = () => process.memoryUsage().arrayBuffers;
    const chunkOf = (from: number, to: number) => Buffer.from(bytes.subarray(from, to));
    const first = chunkOf(0, 14 + size * 0.4);
    const before = external();
    parser.push(first);
    expect(parser.next()).toBeNull();
    // 40% arrived: the pieces are kept as they came, no 16 MiB buffer yet.
    expect(external() - before).toBeLessThan(size / 2);
    const second = chunkOf(14 + size * 0.4, 14 + size * 0.6);
    const beforeSecond = external();
    parser.push(second);
    expect(parser.next()).toBeNull();
    // Past half: the payload's buffer exists.
    expect(external() - beforeSecond).toBeGreaterThanOrEqual(size);
    parser.push(chunkOf(14 + size * 0.6, bytes.length));
    expect(parser.next()?.payload.equals(payload)).toBe(true);
  });
});

describe('FrameParser: peekComplete', () => {
  it('tells the opcode of the next frame only once all of it is buffered, reading nothing', () => {
    for (const [side, len] of [
      ['client', 5],
      ['server', 5],
      ['client', 300],
      ['server', 70_000],
    ] as Array<[Side, number]>) {
      const bytes = Buffer.concat([
        encode(
          mkFrame(Opcode.CONTINUATION, pseudoRandomBytes(len, len), { fin: false, masked: masked(side) }),
        ),
        encode(mkFrame(Opcode.PING, 'p', { masked: masked(side) })),
      ]);
      const first = bytes.length - (masked(side) ? 7 : 3);
      const p = new FrameParser({ side, maxFrameSize: 1 << 20 });
      expect(p.peekComplete()).toBe(-1);
      // Byte by byte up to one short of the first frame: never complete.
      for (let i = 0; i < first - 1; i++) {
        p.push(bytes.subarray(i, i + 1));
        expect(p.peekComplete(), `${side} ${len} at ${i}`).toBe(-1);
        // Once the header is complete next() reads it and waits for the payload.
        if (i % 2 === 1) expect(p.next()).toBeNull();
      }
      p.push(bytes.subarray(first - 1, first));
      expect(p.peekComplete()).toBe(Opcode.CONTINUATION);
      expect(p.peekComplete()).toBe(Opcode.CONTINUATION); // nothing was consumed
      expect(p.next()?.payload.equals(pseudoRandomBytes(len, len))).toBe(true);
      expect(p.peekComplete()).toBe(-1);
      p.push(bytes.subarray(first));
      expect(p.peekComplete()).toBe(Opcode.PING);
      expect(p.next()?.opcode).toBe(Opcode.PING);
      expect(p.peekComplete()).toBe(-1);
    }
  });
});

describe('FrameParser: header violations', () => {
  // Each case: bytes as its peer would send them to `side` (masked to the server).
  const on = (side: Side, f: Omit<Frame, 'masked'>, forceMask?: boolean) =>
    encode({ ...f, masked: forceMask ?? masked(side) });
  const cases: { name: string; bytes: (side: Side) => Buffer; code: number; allowedRsv?: number }[] = [
    ...[4, 2, 1, 6, 7].map((rsv) => ({
      name: `RSV=${rsv} without an extension`,
      bytes: (s: Side) => on(s, { fin: true, rsv, opcode: 1, payload: Buffer.from('x') }),
      code: 1002,
    })),
    ...[2, 1].map((rsv) => ({
      name: `RSV=${rsv} even with RSV1 allowed`,
      bytes: (s: Side) => on(s, { fin: true, rsv, opcode: 2, payload: Buffer.from('x') }),
      code: 1002,
      allowedRsv: 4,
    })),
    {
      name: 'RSV1 on a continuation frame with RSV1 allowed',
      bytes: (s) => on(s, { fin: true, rsv: 4, opcode: 0, payload: Buffer.from('x') }),
      code: 1002,
      allowedRsv: 4,
    },
    ...[8, 9, 10].map((opcode) => ({
      name: `RSV1 on control opcode ${opcode} with RSV1 allowed`,
      bytes: (s: Side) => on(s, { fin: true, rsv: 4, opcode, payload: Buffer.alloc(0) }),
      code: 1002,
      allowedRsv: 4,
    })),
    ...[3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf].map((opcode) => ({
      name: `reserved opcode 0x${opcode.toString(16)}`,
      bytes: (s: Side) => on(s, { fin: true, rsv: 0, opcode, payload: Buffer.alloc(0) }),
      code: 1002,
    })),
    ...[8, 9, 10].map((opcode) => ({
      name: `fragmented control opcode ${opcode}`,
      bytes: (s: Side) => on(s, { fin: false, rsv: 0, opcode, payload: Buffer.alloc(0) }),
      code: 1002,
    })),
    ...[8, 9, 10].map((opcode) => ({
      name: `control opcode ${opcode} with 126 bytes of payload`,
      bytes: (s: Side) => on(s, { fin: true, rsv: 0, opcode, payload: Buffer.alloc(126, 0x41) }),
      code: 1002,
    })),
    {
      name: 'mask bit that does not match the side',
      bytes: (s) => on(s, { fin: true, rsv: 0, opcode: 1, payload: Buffer.from('hi') }, !masked(s)),
      code: 1002,
    },
    {
      name: '64-bit length with the most significant bit set',
      bytes: (s) =>
        Buffer.concat([
          hex('82'),
          Buffer.from([(masked(s) ? 0x80 : 0) | 0x7f]),
          hex('80 00 00 00 00 00 00 05'),
          masked(s) ? hex('01 02 03 04') : Buffer.alloc(0),
        ]),
      code: 1002,
    },
  ];

  for (const side of ['server', 'client'] as const) {
    for (const c of cases) {
      it(`${side}: ${c.name} -> ${c.code} at the header's last byte`, () => {
        const bytes = c.bytes(side);
        const len7 = bytes[1]! & 0x7f;
        const headerLen = 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (bytes[1]! & 0x80 ? 4 : 0);
        const opts = { side, maxFrameSize: 1 << 20, allowedRsv: c.allowedRsv ?? 0 };
        const r = parseChunks(opts, bytewise(bytes));
        expect(r.error).toBeInstanceOf(WebSocketError);
        expect(errorCode(r)).toBe(c.code);
        expect(r.errorAtChunk).toBe(headerLen - 1);
        expect(r.frames).toEqual([]);
      });
    }
  }

  it('control frames with exactly 125 bytes and RSV1 on TEXT/BINARY (when allowed) are accepted', () => {
    for (const opcode of [8, 9, 10]) {
      const f = mkFrame(opcode, Buffer.alloc(125, 0x30), { masked: true });
      expect(parseChunks({ side: 'server', maxFrameSize: 1000 }, [encode(f)]).frames).toEqual([f]);
    }
    for (const opcode of [1, 2]) {
      const f = mkFrame(opcode, 'x', { masked: true, rsv: 4, fin: false });
      expect(parseChunks({ side: 'server', maxFrameSize: 1000, allowedRsv: 4 }, [encode(f)]).frames).toEqual([
        f,
      ]);
    }
  });
});
