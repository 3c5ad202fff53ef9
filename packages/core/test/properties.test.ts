import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { WebSocketError } from '../src/protocol/errors.js';
import { Opcode } from '../src/protocol/frame.js';
import { FrameParser } from '../src/protocol/frame-parser.js';
import { encodeFrame } from '../src/protocol/frame-writer.js';
import { Protocol, type ProtocolEvent } from '../src/protocol/protocol.js';
import { bytewise, closeCodeOf, cutAt, feedAll, mkFrame, outputFrames } from './helpers.js';

type Side = 'client' | 'server';
const SIDES: Side[] = ['server', 'client'];

/** Splits `buf` at the positions (mod length+1); repeated positions give empty fragments. */
function fragments(buf: Buffer, cuts: readonly number[]): Buffer[] {
  const points = cuts.map((c) => c % (buf.length + 1)).sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(buf.subarray(prev, p));
    prev = p;
  }
  out.push(buf.subarray(prev));
  return out;
}

const controlArb = fc.record({
  opcode: fc.constantFrom(Opcode.PING, Opcode.PONG),
  payload: fc.uint8Array({ maxLength: 125 }).map((a) => Buffer.from(a)),
  at: fc.nat(),
});

const messageArb = fc.record({
  text: fc.boolean(),
  str: fc.string({ unit: 'binary', maxLength: 60 }),
  bin: fc.oneof(
    { weight: 6, arbitrary: fc.uint8Array({ maxLength: 300 }) },
    {
      weight: 1,
      arbitrary: fc.integer({ min: 65530, max: 66000 }).map((n) => new Uint8Array(n).fill(n & 0xff)),
    },
  ),
  cuts: fc.array(fc.nat(), { maxLength: 4 }),
  controls: fc.array(controlArb, { maxLength: 3 }),
  compressed: fc.boolean(),
});

const scenarioArb = fc.record({
  messages: fc.array(messageArb, { minLength: 1, maxLength: 5 }),
  close: fc.option(
    fc.record({ code: fc.constantFrom(1000, 1001, 3000, 4999), reason: fc.string({ maxLength: 20 }) }),
  ),
  trailing: fc.uint8Array({ maxLength: 20 }),
});

/** One line per event, so that event lists compare cheaply and readably. */
function summarize(events: readonly ProtocolEvent[]): string[] {
  return events.flatMap((e) => {
    switch (e.type) {
      case 'inflate':
        return [];
      case 'message':
        return [`message ${e.opcode} ${e.data.toString('hex')}`];
      case 'ping':
      case 'pong':
        return [`${e.type} ${e.data.toString('hex')}`];
      case 'close':
        return [`close ${e.code} ${e.reason}`];
      case 'error':
        return [`error ${e.error.code}`];
      default:
        throw new Error(`unexpected event ${JSON.stringify(e)}`);
    }
  });
}

type Scenario = typeof scenarioArb extends fc.Arbitrary<infer T> ? T : never;

/** Wire bytes sent by the peer of `side`, and the events `side` must report. */
function build(s: Scenario, side: Side, compression: boolean): { bytes: Buffer; expected: string[] } {
  const masked = side === 'server';
  const parts: Buffer[] = [];
  const expected: string[] = [];
  for (const m of s.messages) {
    const opcode = m.text ? Opcode.TEXT : Opcode.BINARY;
    const payload = m.text ? Buffer.from(m.str) : Buffer.from(m.bin);
    const frags = fragments(payload, m.cuts);
    frags.forEach((frag, i) => {
      const first = i === 0;
      const frame = mkFrame(first ? opcode : Opcode.CONTINUATION, frag, {
        fin: i === frags.length - 1,
        masked,
        rsv: first && compression && m.compressed ? 4 : 0,
      });
      parts.push(...encodeFrame(frame));
      for (const c of m.controls.filter((c) => c.at % frags.length === i)) {
        parts.push(...encodeFrame(mkFrame(c.opcode, c.payload, { masked })));
        if (i < frags.length - 1)
          expected.push(`${c.opcode === Opcode.PING ? 'ping' : 'pong'} ${c.payload.toString('hex')}`);
      }
      if (i === frags.length - 1) {
        expected.push(`message ${opcode} ${payload.toString('hex')}`);
        // Controls placed after the last fragment come after the message.
        for (const c of m.controls.filter((c) => c.at % frags.length === i)) {
          expected.push(`${c.opcode === Opcode.PING ? 'ping' : 'pong'} ${c.payload.toString('hex')}`);
        }
      }
    });
  }
  if (s.close !== null) {
    const payload = Buffer.alloc(2 + Buffer.byteLength(s.close.reason));
    payload.writeUInt16BE(s.close.code);
    payload.write(s.close.reason, 2);
    parts.push(...encodeFrame(mkFrame(Opcode.CLOSE, payload, { masked })));
    expected.push(`close ${s.close.code} ${s.close.reason}`);
    // Anything after the peer's Close is ignored, even garbage.
    parts.push(Buffer.from(s.trailing));
  }
  return { bytes: Buffer.concat(parts), expected };
}

describe.each(SIDES)('Protocol (%s): messages survive any chunking', (side) => {
  for (const compression of [false, true]) {
    it(`fragmented messages with interleaved control frames${compression ? ', RSV1 with compression' : ''}`, () => {
      fc.assert(
        fc.property(scenarioArb, fc.array(fc.nat(), { maxLength: 30 }), (scenario, cuts) => {
          const { bytes, expected } = build(scenario, side, compression);
          const chunkings = [[bytes], cutAt(bytes, cuts)];
          if (bytes.length <= 2000) chunkings.push(bytewise(bytes));
          for (const chunks of chunkings) {
            const p = new Protocol({ side, compression });
            const events = feedAll(p, chunks);
            expect(summarize(events)).toEqual(expected);
            expect(p.failure).toBeUndefined();
            const out = outputFrames(p);
            if (scenario.close !== null) {
              // The Close is echoed with the peer's code.
              expect(out).toHaveLength(1);
              expect(closeCodeOf(out[0]!)).toBe(scenario.close.code);
            } else {
              expect(out).toEqual([]);
            }
          }
        }),
        { numRuns: 120 },
      );
    });
  }

  it('a peer Protocol that sends the scenario is understood (send/ping round trip)', () => {
    fc.assert(
      fc.property(scenarioArb, fc.array(fc.nat(), { maxLength: 30 }), (scenario, cuts) => {
        const sender = new Protocol({ side: side === 'server' ? 'client' : 'server' });
        const expected: string[] = [];
        for (const m of scenario.messages) {
          const opcode = m.text ? Opcode.TEXT : Opcode.BINARY;
          const payload = m.text ? Buffer.from(m.str) : Buffer.from(m.bin);
          const frags = fragments(payload, m.cuts);
          frags.forEach((frag, i) => {
            sender.send(opcode, frag, { fin: i === frags.length - 1 });
            for (const c of m.controls.filter((c) => c.at % frags.length === i && i < frags.length - 1)) {
              sender.ping(c.payload);
              expected.push(`ping ${c.payload.toString('hex')}`);
            }
          });
          expected.push(`message ${opcode} ${payload.toString('hex')}`);
        }
        const receiver = new Protocol({ side });
        const events = feedAll(receiver, cutAt(Buffer.concat(sender.takeOutput()), cuts));
        expect(summarize(events)).toEqual(expected);
      }),
      { numRuns: 100 },
    );
  });
});

/** Byte streams: noise, valid streams, and valid streams with a few bytes changed. */
function streamArb(side: Side) {
  const valid = fc
    .tuple(scenarioArb, fc.boolean())
    .map(([s, compression]) => build({ ...s, trailing: new Uint8Array(0) }, side, compression).bytes);
  const mutated = fc
    .tuple(
      valid,
      fc.array(fc.tuple(fc.nat(), fc.nat({ max: 255 })), { minLength: 1, maxLength: 4 }),
      fc.option(fc.nat()),
    )
    .map(([bytes, edits, cut]) => {
      const b = Buffer.from(bytes);
      for (const [at, v] of edits) if (b.length > 0) b[at % b.length] = v;
      return cut === null ? b : b.subarray(0, cut % (b.length + 1));
    });
  const headerish = fc
    .array(
      fc.oneof(
        fc.constantFrom(
          0x81,
          0x01,
          0x80,
          0x82,
          0x88,
          0x89,
          0x8a,
          0xc1,
          0x00,
          0x7e,
          0x7f,
          0xfe,
          0xff,
          0xfd,
          0xe0,
        ),
        fc.nat({ max: 255 }),
      ),
      { maxLength: 200 },
    )
    .map((a) => Buffer.from(a));
  return fc.oneof(
    fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
    headerish,
    mutated,
  );
}

describe.each(SIDES)('robustness (%s): arbitrary bytes in arbitrary chunks', (side) => {
  it('FrameParser only ever throws WebSocketError, terminates and never holds more than a frame', () => {
    fc.assert(
      fc.property(
        streamArb(side),
        fc.array(fc.nat(), { maxLength: 20 }),
        fc.constantFrom(0, 64, 1000, 1 << 20),
        fc.constantFrom(0, 4),
        (bytes, cuts, maxFrameSize, allowedRsv) => {
          const parser = new FrameParser({ side, maxFrameSize, allowedRsv });
          let frames = 0;
          for (const chunk of cutAt(bytes, cuts)) {
            parser.push(chunk);
            try {
              for (let f = parser.next(); f !== null; f = parser.next()) {
                expect(f.payload.length).toBeLessThanOrEqual(maxFrameSize);
                frames++;
                // Each frame consumes at least its 2-byte header.
                expect(frames).toBeLessThanOrEqual(bytes.length / 2);
              }
            } catch (err) {
              expect(err).toBeInstanceOf(WebSocketError);
              expect([1002, 1009]).toContain((err as WebSocketError).code);
              expect(parser.bufferedAmount).toBe(0);
              return;
            }
            // Between frames: an incomplete header, or part of one payload within the limit.
            expect(parser.bufferedAmount).toBeLessThanOrEqual(Math.max(13, maxFrameSize));
          }
        },
      ),
      { numRuns: 1500 },
    );
  });

  it('Protocol never throws: a violation is one error event and a queued Close with its code', () => {
    fc.assert(
      fc.property(
        streamArb(side),
        fc.array(fc.nat(), { maxLength: 20 }),
        fc.constantFrom(64, 1000, 1 << 20),
        fc.constantFrom(100, 1 << 20),
        fc.boolean(),
        (bytes, cuts, maxFrameSize, maxMessageSize, compression) => {
          const p = new Protocol({ side, maxFrameSize, maxMessageSize, compression });
          const events: ProtocolEvent[] = [];
          for (const chunk of cutAt(bytes, cuts)) {
            events.push(...feedAll(p, [chunk]));
            expect(p.bufferedInbound).toBeLessThanOrEqual(Math.max(13, maxFrameSize));
          }
          const errors = events.filter((e) => e.type === 'error');
          expect(errors.length).toBeLessThanOrEqual(1);
          for (const e of events) {
            if (e.type === 'message') expect(e.data.length).toBeLessThanOrEqual(maxMessageSize);
            if (e.type === 'message' && e.opcode === Opcode.TEXT) {
              expect(() => new TextDecoder('utf-8', { fatal: true }).decode(e.data)).not.toThrow();
            }
          }
          const out = outputFrames(p);
          const closes = out.filter((f) => f.opcode === Opcode.CLOSE);
          expect(closes.length).toBeLessThanOrEqual(1);
          if (errors.length === 1) {
            const e = errors[0]!;
            if (e.type !== 'error') throw new Error('unreachable');
            expect(e.error).toBeInstanceOf(WebSocketError);
            expect([1002, 1007, 1009]).toContain(e.error.code);
            // Its Close was queued (nothing is processed after a peer's Close, so no echo came first).
            expect(p.closeReceived).toBeUndefined();
            expect(closes).toHaveLength(1);
            expect(closeCodeOf(closes[0]!)).toBe(e.error.code);
            expect(p.shouldCloseTransport).toBe(true);
            expect(events[events.length - 1]).toBe(e);
          }
        },
      ),
      { numRuns: 1500 },
    );
  });

  it('Protocol reports the same events whatever the chunking', () => {
    fc.assert(
      fc.property(
        streamArb(side),
        fc.array(fc.nat(), { maxLength: 20 }),
        fc.constantFrom(64, 1 << 20),
        (bytes, cuts, maxFrameSize) => {
          const run = (chunks: Buffer[]) =>
            summarize(feedAll(new Protocol({ side, maxFrameSize, maxMessageSize: 500 }), chunks));
          const whole = run([bytes]);
          expect(run(cutAt(bytes, cuts))).toEqual(whole);
          if (bytes.length <= 400) expect(run(bytewise(bytes))).toEqual(whole);
        },
      ),
      { numRuns: 800 },
    );
  });
});
