/**
 * Resource bounds of the engine without I/O (issue 9): failing never throws, fragments
 * per message are limited, memory follows the bytes received rather than announced
 * lengths, small fragments are not kept one Buffer each; and the rate limiter's buckets
 * on an injected clock.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RateLimiter } from '../src/node/rate-limit.js';
import { isValidWireCloseCode } from '../src/protocol/close-codes.js';
import { WebSocketError } from '../src/protocol/errors.js';
import { Opcode } from '../src/protocol/frame.js';
import { FrameParser } from '../src/protocol/frame-parser.js';
import { MessageAssembler } from '../src/protocol/message-assembler.js';
import type { PieceCollector } from '../src/protocol/piece-collector.js';
import { Protocol, type ProtocolEvent } from '../src/protocol/protocol.js';
import { closeCodeOf, encode, mkFrame, outputFrames } from './helpers.js';

const MiB = 1024 * 1024;

describe('Protocol.fail() never throws', () => {
  it('for any code and message: a valid Close goes out (1011 for codes that may not be sent)', () => {
    fc.assert(
      fc.property(fc.integer({ min: -10, max: 70_000 }), fc.string({ maxLength: 300 }), (code, text) => {
        const p = new Protocol({ side: 'server' });
        expect(() => p.fail(new WebSocketError(code, text))).not.toThrow();
        const out = outputFrames(p);
        expect(out).toHaveLength(1);
        const sent = closeCodeOf(out[0]!);
        expect(sent).toBe(isValidWireCloseCode(code) ? code : 1011);
        expect(out[0]!.payload.length).toBeLessThanOrEqual(125);
      }),
      { numRuns: 2000 },
    );
  });

  for (const code of [1004, 1005, 1006, 1015, 2000, 5000]) {
    it(`fail(${code}) sends 1011 and keeps the error`, () => {
      const p = new Protocol({ side: 'client' });
      p.fail(new WebSocketError(code, 'application failure'));
      expect(closeCodeOf(outputFrames(p)[0]!)).toBe(1011);
      expect(p.failure?.code).toBe(code);
      expect(p.shouldCloseTransport).toBe(true);
    });
  }

  it('holdClose keeps the Close until releaseClose(); sends still go out before it', () => {
    const p = new Protocol({ side: 'server' });
    p.fail(new WebSocketError(1008, 'rate'), { holdClose: true });
    expect(p.closeHeld).toBe(true);
    expect(p.shouldCloseTransport).toBe(false);
    p.send(Opcode.TEXT, Buffer.from('reply'));
    p.releaseClose();
    const out = outputFrames(p);
    expect(out.map((f) => f.opcode)).toEqual([Opcode.TEXT, Opcode.CLOSE]);
    expect(closeCodeOf(out[1]!)).toBe(1008);
    expect(p.shouldCloseTransport).toBe(true);
  });

  it('a violation in received bytes holds the Close when holdCloseOnFailure is set', () => {
    const p = new Protocol({ side: 'client', holdCloseOnFailure: true });
    p.receiveData(
      Buffer.concat([encode(mkFrame(Opcode.TEXT, 'ok')), encode(mkFrame(Opcode.TEXT, 'x', { rsv: 2 }))]),
    );
    const events: ProtocolEvent[] = p.takeEvents();
    expect(events.map((e) => e.type)).toEqual(['message', 'error']);
    expect(p.takeOutput()).toEqual([]);
    p.releaseClose();
    expect(closeCodeOf(outputFrames(p)[0]!)).toBe(1002);
  });
});

describe('maxFragments', () => {
  it('the fragment after maxFragments fails with 1009 from its header', () => {
    const a = new MessageAssembler(MiB, 4);
    a.checkHeader({ fin: false, rsv: 0, opcode: Opcode.TEXT, masked: true, length: 1 });
    a.pushFrame(mkFrame(Opcode.TEXT, 'a', { fin: false }));
    for (let i = 0; i < 3; i++) {
      a.checkHeader({ fin: false, rsv: 0, opcode: 0, masked: true, length: 1 });
      a.pushFrame(mkFrame(0, 'b', { fin: false }));
    }
    let err: unknown;
    try {
      a.checkHeader({ fin: true, rsv: 0, opcode: 0, masked: true, length: 1 });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(WebSocketError);
    expect((err as WebSocketError).code).toBe(1009);
  });

  it('fragments of many sizes and backing buffers reassemble byte for byte', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.uint8Array({ minLength: 0, maxLength: 3000 }), fc.nat(70_000)), {
          minLength: 1,
          maxLength: 60,
        }),
        (pieces) => {
          const a = new MessageAssembler(MiB, 1000);
          const expected = Buffer.concat(pieces.map(([p]) => Buffer.from(p)));
          let result: ReturnType<MessageAssembler['pushFrame']> = null;
          pieces.forEach(([bytes, padding], i) => {
            // Each piece a view inside a larger buffer, as a frame inside a socket read.
            const backing = Buffer.alloc(bytes.length + padding);
            backing.set(bytes, padding);
            const payload = backing.subarray(padding, padding + bytes.length);
            const fin = i === pieces.length - 1;
            result = a.pushFrame(mkFrame(i === 0 ? Opcode.BINARY : 0, payload, { fin }));
          });
          expect(result).not.toBeNull();
          expect(Buffer.compare(result!.data, expected)).toBe(0);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('a message of 1-byte fragments is kept in a few blocks, not a Buffer per byte', () => {
    const a = new MessageAssembler(MiB, 1 << 20);
    const N = 100_000;
    const backing = Buffer.alloc(64 * 1024); // each 1-byte payload a view into a 64 KiB read
    a.pushFrame(mkFrame(Opcode.BINARY, backing.subarray(0, 1), { fin: false }));
    for (let i = 1; i < N - 1; i++)
      a.pushFrame(mkFrame(0, backing.subarray(i % 1000, (i % 1000) + 1), { fin: false }));
    const pieces = (a as unknown as { pieces: PieceCollector }).pieces;
    expect(pieces.size).toBe(N - 1);
    // 100,000 bytes in 16 KiB blocks: 7 buffers, none of them a view of the 64 KiB reads.
    expect(pieces.count).toBeLessThanOrEqual(8);
    const parts = (pieces as unknown as { parts: Buffer[] }).parts;
    for (const part of parts) expect(part.buffer).not.toBe(backing.buffer);
    expect(parts.reduce((n, p) => n + p.buffer.byteLength, 0)).toBeLessThanOrEqual(2 * N);
  });
});

describe('memory follows received bytes', () => {
  it('a header announcing maxFrameSize allocates nothing of that size', () => {
    const parser = new FrameParser({ side: 'server', maxFrameSize: MiB });
    const header = Buffer.from([0x82, 0xff, 0, 0, 0, 0, 0, 0x10, 0, 0, 1, 2, 3, 4]);
    parser.push(Buffer.concat([header, Buffer.alloc(10)]));
    expect(parser.next()).toBeNull();
    const pieces = (parser as unknown as { pieces: { parts: Buffer[] } }).pieces.parts;
    // A block of at most 16 KiB for the 10 bytes, not the announced 1 MiB.
    expect(pieces.reduce((n, p) => n + p.buffer.byteLength, 0)).toBeLessThanOrEqual(16 * 1024);
  });

  it('a frame trickled one byte per read is held in a few blocks, not a Buffer per read', () => {
    const parser = new FrameParser({ side: 'server', maxFrameSize: MiB });
    parser.push(Buffer.from([0x82, 0xff, 0, 0, 0, 0, 0, 0x10, 0, 0, 1, 2, 3, 4]));
    const N = 100_000;
    for (let i = 0; i < N; i++) {
      parser.push(Buffer.from([i & 0xff]));
      expect(parser.next()).toBeNull();
    }
    const pieces = (parser as unknown as { pieces: PieceCollector }).pieces;
    expect(pieces.size).toBe(N);
    expect(pieces.count).toBeLessThanOrEqual(8);
  });

  it('a payload arriving in any chunking parses to the same frame', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: 5000 }),
        fc.array(fc.nat(5100), { maxLength: 20 }),
        (p, cuts) => {
          const bytes = encode(
            mkFrame(Opcode.BINARY, Buffer.from(p), { masked: true }),
            Buffer.from([9, 8, 7, 6]),
          );
          const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((x, y) => x - y);
          const parser = new FrameParser({ side: 'server', maxFrameSize: MiB });
          let last = 0;
          let frame = null;
          for (const point of [...points, bytes.length]) {
            parser.push(Buffer.from(bytes.subarray(last, point)));
            last = point;
            frame = parser.next() ?? frame;
          }
          expect(frame).not.toBeNull();
          expect(Buffer.compare(frame!.payload, Buffer.from(p))).toBe(0);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('RateLimiter (injected clock)', () => {
  it('allows a burst of `messages`, then refills at messages/interval', () => {
    let now = 0;
    const r = new RateLimiter({ messages: 3, interval: 1000 }, () => now);
    expect([r.take(1), r.take(1), r.take(1), r.take(1)]).toEqual([true, true, true, false]);
    now = 333;
    expect(r.take(1)).toBe(false); // 0.999 of a message refilled
    now = 334;
    expect(r.take(1)).toBe(true);
    now = 100_000;
    expect([r.take(1), r.take(1), r.take(1), r.take(1)]).toEqual([true, true, true, false]);
  });

  it('counts bytes; a message larger than the bucket never passes', () => {
    let now = 0;
    const r = new RateLimiter({ bytes: 100, interval: 1000 }, () => now);
    expect(r.take(60)).toBe(true);
    expect(r.take(60)).toBe(false);
    now = 200; // +20 bytes
    expect(r.take(60)).toBe(true);
    now = 1_000_000;
    expect(r.take(101)).toBe(false);
  });
});
