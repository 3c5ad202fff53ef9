import { describe, expect, it } from 'vitest';
import { InvalidStateError, WebSocketError } from '../src/protocol/errors.js';
import { type Frame, Opcode } from '../src/protocol/frame.js';
import {
  END_OF_STREAM,
  Protocol,
  type ProtocolEvent,
  type ProtocolOptions,
  ReadyState,
} from '../src/protocol/protocol.js';
import { closeCodeOf, encode, feed, hex, mkFrame, outputFrames } from './helpers.js';

type Side = 'client' | 'server';
const SIDES: Side[] = ['server', 'client'];

const make = (side: Side, options: Partial<ProtocolOptions> = {}) => new Protocol({ side, ...options });

/** A frame as the peer of `side` puts it on the wire (masked towards a server). */
const to = (side: Side, opcode: number, payload: Buffer | string = '', fields: Partial<Frame> = {}) =>
  encode(mkFrame(opcode, payload, { ...fields, masked: side === 'server' }));

const closePayload = (code: number, reason = '') => {
  const b = Buffer.alloc(2 + Buffer.byteLength(reason));
  b.writeUInt16BE(code, 0);
  b.write(reason, 2);
  return b;
};

const messages = (events: ProtocolEvent[]) =>
  events.flatMap((e) =>
    e.type === 'message' ? [{ opcode: e.opcode, data: e.data.toString('latin1') }] : [],
  );
const errors = (events: ProtocolEvent[]) => events.filter((e) => e.type === 'error');

/**
 * Feeds the chunks one by one: no error before chunk `failAt`, exactly one error there
 * with `code`, nothing after; a Close frame with `code` is queued and the transport
 * should be closed.
 */
function expectFailure(p: Protocol, chunks: Buffer[], code: number, failAt = chunks.length - 1): void {
  for (let i = 0; i < chunks.length; i++) {
    const events = feed(p, chunks[i]!);
    const errs = errors(events);
    if (i < failAt) {
      expect(errs, `unexpected error at chunk ${i}`).toEqual([]);
    } else if (i === failAt) {
      expect(errs, `error expected at chunk ${i}`).toHaveLength(1);
      const e = errs[0]!;
      if (e.type !== 'error') throw new Error('unreachable');
      expect(e.error).toBeInstanceOf(WebSocketError);
      expect(e.error.code).toBe(code);
    } else {
      expect(events).toEqual([]);
    }
  }
  expect(p.failure?.code).toBe(code);
  const out = outputFrames(p);
  const closes = out.filter((f) => f.opcode === Opcode.CLOSE);
  expect(closes).toHaveLength(1);
  expect(closeCodeOf(closes[0]!)).toBe(code);
  expect(closes[0]!.masked).toBe(p.side === 'client');
  expect(p.closeSent?.code).toBe(code);
  expect(p.state).toBe(ReadyState.CLOSING);
  expect(p.shouldCloseTransport).toBe(true);
  expect(p.bufferedInbound).toBe(0);
  // A failed connection stays failed and quiet.
  expect(feed(p, to(p.side, Opcode.TEXT, 'after'))).toEqual([]);
  expect(p.takeOutput()).toEqual([]);
}

describe.each(SIDES)('Protocol (%s): violations', (side) => {
  const peer = (opcode: number, payload: Buffer | string = '', fields: Partial<Frame> = {}) =>
    to(side, opcode, payload, fields);

  describe('frame header', () => {
    for (const rsv of [4, 2, 1, 7]) {
      it(`RSV=${rsv} without an extension -> 1002`, () => {
        expectFailure(make(side), [peer(Opcode.TEXT, 'x', { rsv })], 1002);
      });
    }

    it('RSV1 is allowed on a first data frame with compression', () => {
      const p = make(side, { compression: true });
      const events = feed(p, peer(Opcode.TEXT, 'abc', { rsv: 4 }));
      expect(events.map((e) => e.type)).toEqual(['message']);
      expect(p.failure).toBeUndefined();
    });

    it('RSV2 and RSV3 stay forbidden with compression -> 1002', () => {
      expectFailure(make(side, { compression: true }), [peer(Opcode.TEXT, 'x', { rsv: 2 })], 1002);
      expectFailure(make(side, { compression: true }), [peer(Opcode.BINARY, 'x', { rsv: 1 })], 1002);
    });

    it('RSV1 on a continuation frame, even with compression -> 1002', () => {
      expectFailure(
        make(side, { compression: true }),
        [peer(Opcode.TEXT, 'a', { rsv: 4, fin: false }), peer(Opcode.CONTINUATION, 'b', { rsv: 4 })],
        1002,
      );
      expectFailure(
        make(side, { compression: true }),
        [peer(Opcode.TEXT, 'a', { fin: false }), peer(Opcode.CONTINUATION, 'b', { rsv: 4 })],
        1002,
      );
    });

    for (const opcode of [Opcode.PING, Opcode.PONG, Opcode.CLOSE]) {
      it(`RSV1 on control opcode ${opcode}, even with compression -> 1002`, () => {
        expectFailure(make(side, { compression: true }), [peer(opcode, '', { rsv: 4 })], 1002);
      });
    }

    for (const opcode of [3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf]) {
      it(`reserved opcode 0x${opcode.toString(16)} -> 1002`, () => {
        expectFailure(make(side), [peer(opcode, 'x')], 1002);
      });
    }

    for (const opcode of [Opcode.PING, Opcode.PONG, Opcode.CLOSE]) {
      it(`fragmented control frame (opcode ${opcode}) -> 1002`, () => {
        expectFailure(make(side), [peer(opcode, '', { fin: false })], 1002);
      });
      it(`control frame (opcode ${opcode}) with 126 bytes of payload -> 1002`, () => {
        const payload = opcode === Opcode.CLOSE ? closePayload(1000, 'r'.repeat(124)) : Buffer.alloc(126, 1);
        expect(payload).toHaveLength(126);
        const bytes = peer(opcode, payload);
        const headerLen = side === 'server' ? 8 : 4;
        // Detected from the header: the payload never needs to arrive.
        expectFailure(make(side), [bytes.subarray(0, headerLen)], 1002);
      });
    }

    it('a control frame of 125 bytes is fine', () => {
      const p = make(side);
      const events = feed(p, peer(Opcode.PING, Buffer.alloc(125, 0x2a)));
      expect(events).toEqual([{ type: 'ping', data: Buffer.alloc(125, 0x2a) }]);
    });

    it(`${side === 'server' ? 'unmasked frame to a server' : 'masked frame to a client'} -> 1002`, () => {
      const wrong = encode(mkFrame(Opcode.TEXT, 'hi', { masked: side === 'client' }));
      expectFailure(make(side), [wrong], 1002);
    });

    it('64-bit length with the most significant bit set -> 1002', () => {
      const header = Buffer.concat([
        hex('82'),
        Buffer.from([(side === 'server' ? 0x80 : 0) | 0x7f]),
        hex('80 00 00 00 00 00 00 10'),
        side === 'server' ? hex('11 22 33 44') : Buffer.alloc(0),
      ]);
      expectFailure(make(side), [header], 1002);
    });

    it('frame over maxFrameSize -> 1009 from the header alone', () => {
      const p = make(side, { maxFrameSize: 1000, maxMessageSize: 1 << 20 });
      const bytes = peer(Opcode.BINARY, Buffer.alloc(1001));
      const headerLen = side === 'server' ? 8 : 4;
      expectFailure(p, [bytes.subarray(0, headerLen - 1), bytes.subarray(headerLen - 1, headerLen)], 1009);
      expect(p.bufferedInbound).toBe(0);
      // Exactly maxFrameSize is accepted.
      const q = make(side, { maxFrameSize: 1000 });
      expect(messages(feed(q, peer(Opcode.BINARY, Buffer.alloc(1000))))).toHaveLength(1);
    });

    it('frame over the default maxFrameSize (1 MiB) -> 1009 from a 64-bit header', () => {
      const header = Buffer.concat([
        hex('82'),
        Buffer.from([(side === 'server' ? 0x80 : 0) | 0x7f]),
        hex('00 00 00 00 00 10 00 01'),
        side === 'server' ? hex('11 22 33 44') : Buffer.alloc(0),
      ]);
      expectFailure(make(side), [header], 1009);
    });
  });

  it('bytes that followed a violation in the same chunk are dropped', () => {
    const p = make(side);
    const events = feed(
      p,
      Buffer.concat([
        peer(Opcode.CONTINUATION, 'x'),
        peer(Opcode.TEXT, 'never'),
        peer(Opcode.BINARY, Buffer.alloc(500)),
      ]),
    );
    expect(events.map((e) => e.type)).toEqual(['error']);
    expect(p.bufferedInbound).toBe(0);
  });

  describe('fragmentation', () => {
    it('continuation without a message to continue -> 1002', () => {
      expectFailure(make(side), [peer(Opcode.CONTINUATION, 'x')], 1002);
      expectFailure(make(side), [peer(Opcode.CONTINUATION, 'x', { fin: false })], 1002);
      expectFailure(make(side), [peer(Opcode.TEXT, 'done'), peer(Opcode.CONTINUATION, 'x')], 1002, 1);
    });

    for (const [first, second] of [
      [Opcode.TEXT, Opcode.TEXT],
      [Opcode.TEXT, Opcode.BINARY],
      [Opcode.BINARY, Opcode.TEXT],
      [Opcode.BINARY, Opcode.BINARY],
    ]) {
      it(`new opcode ${second} inside a fragmented opcode ${first} message -> 1002`, () => {
        expectFailure(
          make(side),
          [peer(first, 'a', { fin: false }), peer(Opcode.PING, 'p'), peer(second, 'b')],
          1002,
          2,
        );
      });
    }

    it('message over maxMessageSize -> 1009 at the header of the fragment that overflows', () => {
      const p = make(side, { maxMessageSize: 10 });
      const third = peer(Opcode.CONTINUATION, 'abc');
      const headerLen = side === 'server' ? 6 : 2;
      expectFailure(
        p,
        [
          peer(Opcode.BINARY, 'abcd', { fin: false }),
          peer(Opcode.CONTINUATION, 'efgh', { fin: false }),
          third.subarray(0, headerLen),
        ],
        1009,
        2,
      );
    });

    it('a message of exactly maxMessageSize across fragments is delivered', () => {
      const p = make(side, { maxMessageSize: 10 });
      const events = [
        ...feed(p, peer(Opcode.TEXT, 'abcd', { fin: false })),
        ...feed(p, peer(Opcode.CONTINUATION, 'efgh', { fin: false })),
        ...feed(p, peer(Opcode.CONTINUATION, 'ij')),
      ];
      expect(messages(events)).toEqual([{ opcode: 1, data: 'abcdefghij' }]);
      expect(p.failure).toBeUndefined();
    });

    it('limits are those of the options at construction, even if that object changes later', () => {
      // The parser and assembler are created on the first bytes: they must not read a
      // caller's options object that was reused and changed since.
      const options: ProtocolOptions = { side, maxFrameSize: 100, maxMessageSize: 10, maxFragments: 2 };
      const p = new Protocol(options);
      const q = new Protocol(options);
      options.maxFrameSize = 1 << 20;
      options.maxMessageSize = 1 << 20;
      options.maxFragments = 1000;
      expect(p.maxMessageSize).toBe(10);
      expectFailure(p, [peer(Opcode.BINARY, 'x'.repeat(11))], 1009);
      expectFailure(q, [peer(Opcode.BINARY, 'x'.repeat(101))], 1009);
      const r = new Protocol(options);
      r.receiveData(peer(Opcode.TEXT, 'y'.repeat(101)));
      expect(messages(r.takeEvents())).toEqual([{ opcode: 1, data: 'y'.repeat(101) }]);
    });

    it('control frames interleaved with fragments are delivered in order', () => {
      const p = make(side);
      const bytes = Buffer.concat([
        peer(Opcode.TEXT, 'Hel', { fin: false }),
        peer(Opcode.PING, 'p1'),
        peer(Opcode.CONTINUATION, '', { fin: false }),
        peer(Opcode.PONG, 'p2'),
        peer(Opcode.CONTINUATION, 'lo'),
      ]);
      const events = feed(p, bytes);
      expect(events.map((e) => e.type)).toEqual(['ping', 'pong', 'message']);
      expect(messages(events)).toEqual([{ opcode: 1, data: 'Hello' }]);
    });
  });

  describe('UTF-8', () => {
    const invalid: [string, string][] = [
      ['overlong C0 80', 'c0 80'],
      ['overlong E0 80 80', 'e0 80 80'],
      ['surrogate ED A0 80', 'ed a0 80'],
      ['above U+10FFFF F4 90 80 80', 'f4 90 80 80'],
      ['lone continuation', '80'],
      ...Array.from({ length: 11 }, (_, i): [string, string] => {
        const b = (0xf5 + i).toString(16);
        return [`byte ${b}`, `${b} 80 80 80`];
      }),
    ];
    for (const [name, h] of invalid) {
      it(`${name} in a text frame -> 1007`, () => {
        expectFailure(make(side), [peer(Opcode.TEXT, Buffer.concat([Buffer.from('ok '), hex(h)]))], 1007);
      });
    }

    const valid: [string, string][] = [
      ['1-byte', '41 7f'],
      ['2-byte', 'c2 80 df bf'],
      ['3-byte', 'e0 a0 80 ed 9f bf ee 80 80 ef bf bf'],
      ['4-byte', 'f0 90 80 80 f0 9f 98 80'],
      ['U+10FFFF', 'f4 8f bf bf'],
    ];
    for (const [name, h] of valid) {
      it(`${name} sequences are valid, whole and fragmented byte by byte`, () => {
        const bytes = hex(h);
        const p = make(side);
        expect(messages(feed(p, peer(Opcode.TEXT, bytes)))).toEqual([
          { opcode: 1, data: bytes.toString('latin1') },
        ]);
        const chunks = Array.from(bytes, (b, i) =>
          peer(i === 0 ? Opcode.TEXT : Opcode.CONTINUATION, Buffer.from([b]), {
            fin: i === bytes.length - 1,
          }),
        );
        const events = chunks.flatMap((c) => feed(p, c));
        expect(errors(events)).toEqual([]);
        expect(messages(events)).toEqual([{ opcode: 1, data: bytes.toString('latin1') }]);
      });
    }

    it('binary messages are not checked for UTF-8', () => {
      const p = make(side);
      expect(messages(feed(p, peer(Opcode.BINARY, hex('c0 80 ff'))))).toHaveLength(1);
      expect(p.failure).toBeUndefined();
    });

    it('an invalid first fragment fails at that fragment', () => {
      expectFailure(make(side), [peer(Opcode.TEXT, hex('41 ff'), { fin: false })], 1007);
      expectFailure(make(side), [peer(Opcode.TEXT, hex('41 e0 80'), { fin: false })], 1007);
    });

    it('a first fragment ending inside a valid sequence does not fail', () => {
      const p = make(side);
      const events = [
        ...feed(p, peer(Opcode.TEXT, hex('41 f0 9f'), { fin: false })),
        ...feed(p, peer(Opcode.CONTINUATION, hex('98'), { fin: false })),
        ...feed(p, peer(Opcode.PING)),
        ...feed(p, peer(Opcode.CONTINUATION, hex('80 42'))),
      ];
      expect(errors(events)).toEqual([]);
      expect(messages(events)).toEqual([{ opcode: 1, data: hex('41 f0 9f 98 80 42').toString('latin1') }]);
    });

    it('an invalid sequence split across fragments fails at the fragment that completes it', () => {
      for (const [a, b] of [
        ['41 ed', 'a0 80'],
        ['41 e0', '80 80'],
        ['f4', '90 80 80'],
        ['e2 82', '41'],
      ]) {
        expectFailure(
          make(side),
          [
            peer(Opcode.TEXT, hex(a!), { fin: false }),
            peer(Opcode.PING, 'between'),
            peer(Opcode.CONTINUATION, hex(b!), { fin: false }),
          ],
          1007,
          2,
        );
      }
    });

    it('a text frame still arriving fails as soon as an invalid byte arrives', () => {
      const payload = Buffer.concat([Buffer.from('abc'), hex('c0'), Buffer.from('defghijklmn')]);
      const bytes = peer(Opcode.TEXT, payload);
      const headerLen = side === 'server' ? 6 : 2;
      expectFailure(
        make(side),
        [bytes.subarray(0, headerLen + 3), bytes.subarray(headerLen + 3, headerLen + 4)],
        1007,
        1,
      );
    });

    it('a continuation frame still arriving fails as soon as an invalid byte arrives', () => {
      const first = peer(Opcode.TEXT, hex('41 e2'), { fin: false });
      const bytes = peer(Opcode.CONTINUATION, Buffer.concat([hex('82 41'), Buffer.from('more text')]));
      const headerLen = side === 'server' ? 6 : 2;
      expectFailure(
        make(side),
        [first, bytes.subarray(0, headerLen + 1), bytes.subarray(headerLen + 1, headerLen + 2)],
        1007,
        2,
      );
    });

    it('a large text frame arriving in pieces with valid sequences split between them is accepted', () => {
      const text = 'héllo wörld 😀 ✓ '.repeat(20);
      const bytes = peer(Opcode.TEXT, text);
      const p = make(side);
      const events: ProtocolEvent[] = [];
      for (let i = 0; i < bytes.length; i += 3) events.push(...feed(p, bytes.subarray(i, i + 3)));
      expect(errors(events)).toEqual([]);
      expect(events).toHaveLength(1);
      expect(events[0]!.type === 'message' && events[0]!.data.toString()).toBe(text);
    });

    it('a message ending in the middle of a sequence -> 1007', () => {
      expectFailure(make(side), [peer(Opcode.TEXT, hex('41 e2 82'))], 1007);
      expectFailure(
        make(side),
        [peer(Opcode.TEXT, hex('41 e2'), { fin: false }), peer(Opcode.CONTINUATION, hex('82'))],
        1007,
        1,
      );
      expectFailure(
        make(side),
        [peer(Opcode.TEXT, hex('f0 9f 98'), { fin: false }), peer(Opcode.CONTINUATION)],
        1007,
        1,
      );
    });
  });

  describe('close frames', () => {
    it('a 1-byte close payload -> 1002', () => {
      expectFailure(make(side), [peer(Opcode.CLOSE, hex('03'))], 1002);
    });

    for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000]) {
      it(`close code ${code} -> 1002`, () => {
        expectFailure(make(side), [peer(Opcode.CLOSE, closePayload(code))], 1002);
      });
    }

    for (const code of [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999]) {
      it(`close code ${code} is accepted and echoed`, () => {
        const p = make(side);
        const events = feed(p, peer(Opcode.CLOSE, closePayload(code, 'reason ✓')));
        expect(events).toEqual([{ type: 'close', code, reason: 'reason ✓' }]);
        const out = outputFrames(p);
        expect(out).toHaveLength(1);
        expect(out[0]!.opcode).toBe(Opcode.CLOSE);
        expect(closeCodeOf(out[0]!)).toBe(code);
      });
    }

    it('a close reason with invalid UTF-8 -> 1007', () => {
      expectFailure(
        make(side),
        [peer(Opcode.CLOSE, Buffer.concat([closePayload(1000, 'ab'), hex('ed a0 80')]))],
        1007,
      );
    });
  });
});

describe.each(SIDES)('Protocol (%s): closing handshake', (side) => {
  const peer = (opcode: number, payload: Buffer | string = '', fields: Partial<Frame> = {}) =>
    to(side, opcode, payload, fields);

  it('receiving a Close in OPEN emits close, echoes the code, and goes to CLOSING', () => {
    const p = make(side);
    expect(p.state).toBe(ReadyState.OPEN);
    const events = feed(p, peer(Opcode.CLOSE, closePayload(1001, 'going')));
    expect(events).toEqual([{ type: 'close', code: 1001, reason: 'going' }]);
    expect(p.state).toBe(ReadyState.CLOSING);
    expect(p.closeReceived).toEqual({ code: 1001, reason: 'going' });
    const out = outputFrames(p);
    expect(out).toHaveLength(1);
    expect(out[0]!.opcode).toBe(Opcode.CLOSE);
    expect(out[0]!.masked).toBe(side === 'client');
    expect(closeCodeOf(out[0]!)).toBe(1001);
    expect(p.closeSent?.code).toBe(1001);
    // RFC 6455 §7.1.1: the server closes the TCP connection first.
    expect(p.shouldCloseTransport).toBe(side === 'server');
  });

  it('an empty Close is answered with an empty Close and reported as 1005', () => {
    const p = make(side);
    expect(feed(p, peer(Opcode.CLOSE))).toEqual([{ type: 'close', code: 1005, reason: '' }]);
    const out = outputFrames(p);
    expect(out).toHaveLength(1);
    expect(out[0]!.opcode).toBe(Opcode.CLOSE);
    expect(out[0]!.payload).toHaveLength(0);
  });

  it('after a received Close, further frames are ignored', () => {
    const p = make(side);
    const events = feed(
      p,
      Buffer.concat([
        peer(Opcode.TEXT, 'before'),
        peer(Opcode.CLOSE, closePayload(1000)),
        peer(Opcode.TEXT, 'after'),
      ]),
    );
    expect(events.map((e) => e.type)).toEqual(['message', 'close']);
    // The bytes after the Close are dropped, not held.
    expect(p.bufferedInbound).toBe(0);
    expect(feed(p, peer(Opcode.PING, 'x'))).toEqual([]);
    expect(feed(p, hex('ff ff ff ff'))).toEqual([]); // not even garbage fails it
    expect(p.failure).toBeUndefined();
    expect(outputFrames(p).map((f) => f.opcode)).toEqual([Opcode.CLOSE]);
    expect(() => p.send(Opcode.TEXT, Buffer.from('x'))).toThrow(InvalidStateError);
  });

  it('after we sent Close: send/ping/pong throw, data is still delivered until the peer Close', () => {
    const p = make(side);
    p.close(1000, 'bye');
    expect(p.state).toBe(ReadyState.CLOSING);
    expect(p.shouldCloseTransport).toBe(false);
    const sent = outputFrames(p);
    expect(sent).toHaveLength(1);
    expect(closeCodeOf(sent[0]!)).toBe(1000);
    expect(sent[0]!.payload.subarray(2).toString()).toBe('bye');
    expect(() => p.send(Opcode.TEXT, Buffer.from('x'))).toThrow();
    expect(() => p.ping()).toThrow();
    expect(() => p.pong()).toThrow();

    const events = feed(
      p,
      Buffer.concat([peer(Opcode.TEXT, 'late'), peer(Opcode.BINARY, 'late2', { fin: false })]),
    );
    expect(messages(events)).toEqual([{ opcode: 1, data: 'late' }]);
    expect(messages(feed(p, peer(Opcode.CONTINUATION, '!')))).toEqual([{ opcode: 2, data: 'late2!' }]);
    expect(feed(p, peer(Opcode.PING, 'p'))).toEqual([{ type: 'ping', data: Buffer.from('p') }]);

    expect(feed(p, peer(Opcode.CLOSE, closePayload(1000)))).toEqual([
      { type: 'close', code: 1000, reason: '' },
    ]);
    // No second Close: ours was already sent. The server ends TCP first (RFC 6455 §7.1.1).
    expect(p.takeOutput()).toEqual(side === 'server' ? [END_OF_STREAM] : []);
    expect(p.shouldCloseTransport).toBe(side === 'server');
    expect(feed(p, peer(Opcode.TEXT, 'ignored'))).toEqual([]);
  });

  it('close() twice sends one frame', () => {
    const p = make(side);
    p.close(1000);
    p.close(1001, 'again');
    p.close();
    const out = outputFrames(p);
    expect(out).toHaveLength(1);
    expect(closeCodeOf(out[0]!)).toBe(1000);
    expect(p.closeSent).toEqual({ code: 1000, reason: '' });
  });

  it('close(undefined) sends a Close without a status code', () => {
    const p = make(side);
    p.close(undefined);
    const out = outputFrames(p);
    expect(out[0]!.opcode).toBe(Opcode.CLOSE);
    expect(out[0]!.payload).toHaveLength(0);
  });

  for (const code of [1005, 1006, 1015, 999, 0, 1004, 2999, 5000]) {
    it(`close(${code}) throws RangeError and leaves the connection open`, () => {
      const p = make(side);
      expect(() => p.close(code)).toThrow(RangeError);
      expect(p.takeOutput()).toEqual([]);
      expect(p.state).toBe(ReadyState.OPEN);
      expect(p.closeSent).toBeUndefined();
      p.close(4000, 'app');
      expect(closeCodeOf(outputFrames(p)[0]!)).toBe(4000);
    });
  }

  it('a reason over 123 bytes throws RangeError; 123 bytes is fine', () => {
    const p = make(side);
    expect(() => p.close(1000, 'x'.repeat(124))).toThrow(RangeError);
    expect(() => p.close(1000, 'é'.repeat(62))).toThrow(RangeError);
    expect(p.takeOutput()).toEqual([]);
    p.close(1000, 'x'.repeat(123));
    const out = outputFrames(p);
    expect(out[0]!.payload).toHaveLength(125);
  });

  it('the transport closes on the server once both Closes passed, never on the client', () => {
    const p = make(side);
    p.close(1000);
    p.takeOutput();
    expect(p.shouldCloseTransport).toBe(false);
    feed(p, peer(Opcode.CLOSE, closePayload(1000)));
    expect(p.shouldCloseTransport).toBe(side === 'server');
    p.connectionLost();
    expect(p.state).toBe(ReadyState.CLOSED);
  });

  it('after connectionLost, nothing is processed and close() does nothing', () => {
    const p = make(side);
    p.connectionLost();
    expect(feed(p, peer(Opcode.TEXT, 'x'))).toEqual([]);
    p.close(1000);
    expect(p.takeOutput()).toEqual([]);
    expect(() => p.send(Opcode.TEXT, Buffer.from('x'))).toThrow();
  });
});

describe.each(SIDES)('Protocol (%s): outgoing frames', (side) => {
  const wireOf = (p: Protocol) => Buffer.concat(p.takeOutput());

  it('fragments: fin:false then a final send give TEXT + CONTINUATION frames', () => {
    const p = make(side);
    p.send(Opcode.TEXT, Buffer.from('Hel'), { fin: false });
    expect(p.sendingFragments).toBe(true);
    p.ping(Buffer.from('between'));
    p.send(Opcode.TEXT, Buffer.from('lo'));
    expect(p.sendingFragments).toBe(false);
    const frames = outputFrames(p);
    expect(frames.map((f) => [f.fin, f.opcode, f.payload.toString()])).toEqual([
      [false, Opcode.TEXT, 'Hel'],
      [true, Opcode.PING, 'between'],
      [true, Opcode.CONTINUATION, 'lo'],
    ]);
  });

  it('idle connections share nothing: output and events of one never show up in another', () => {
    const a = make(side);
    const b = make(side);
    expect(b.takeOutput()).toEqual([]);
    a.send(Opcode.TEXT, Buffer.from('from a'));
    expect(b.takeOutput()).toEqual([]);
    expect(outputFrames(a).map((f) => f.payload.toString())).toEqual(['from a']);
    b.send(Opcode.TEXT, Buffer.from('from b'));
    expect(a.takeOutput()).toEqual([]);
    expect(outputFrames(b).map((f) => f.payload.toString())).toEqual(['from b']);
    expect(messages(feed(a, to(side, Opcode.TEXT, 'to a')))).toEqual([{ opcode: Opcode.TEXT, data: 'to a' }]);
    expect(b.nextEvent()).toBeUndefined();
    expect(
      messages(feed(b, Buffer.concat([to(side, Opcode.TEXT, 'b1'), to(side, Opcode.TEXT, 'b2')]))),
    ).toEqual([
      { opcode: Opcode.TEXT, data: 'b1' },
      { opcode: Opcode.TEXT, data: 'b2' },
    ]);
    expect(a.nextEvent()).toBeUndefined();
  });

  it('frame hooks see every outgoing frame unless they say outboundActive: false', () => {
    const seen: number[] = [];
    const rewriting = {
      inbound: (f: Frame) => f,
      outbound: (f: Frame) => {
        seen.push(f.opcode);
        return { ...f, payload: Buffer.from(f.payload.toString().toUpperCase()) };
      },
    };
    const p = make(side);
    p.frameHooks = rewriting; // no outboundActive: the engine must ask
    p.send(Opcode.TEXT, Buffer.from('whole'));
    p.send(Opcode.BINARY, Buffer.from('bin'));
    expect(seen).toEqual([Opcode.TEXT, Opcode.BINARY]);
    expect(outputFrames(p).map((f) => f.payload.toString())).toEqual(['WHOLE', 'BIN']);
    p.frameHooks = { ...rewriting, outboundActive: true };
    p.send(Opcode.TEXT, Buffer.from('again'));
    expect(outputFrames(p).map((f) => f.payload.toString())).toEqual(['AGAIN']);
    // A hook that declares itself inactive is skipped, and the bytes are the plain encoding.
    p.frameHooks = { ...rewriting, outboundActive: false };
    p.send(Opcode.TEXT, Buffer.from('plain'));
    const frames = outputFrames(p);
    expect(frames.map((f) => [f.fin, f.opcode, f.masked, f.payload.toString()])).toEqual([
      [true, Opcode.TEXT, side === 'client', 'plain'],
    ]);
    expect(seen).toHaveLength(3);
  });

  it('sending BINARY while a TEXT fragmented message is open throws TypeError', () => {
    const p = make(side);
    p.send(Opcode.TEXT, Buffer.from('a'), { fin: false });
    expect(() => p.send(Opcode.BINARY, Buffer.from('b'))).toThrow(TypeError);
    expect(() => p.send(Opcode.BINARY, Buffer.from('b'), { fin: false })).toThrow(TypeError);
    p.send(Opcode.TEXT, Buffer.from('c'));
    p.send(Opcode.BINARY, Buffer.from('d'));
    const frames = outputFrames(p);
    expect(frames.map((f) => [f.fin, f.opcode, f.payload.toString()])).toEqual([
      [false, Opcode.TEXT, 'a'],
      [true, Opcode.CONTINUATION, 'c'],
      [true, Opcode.BINARY, 'd'],
    ]);
  });

  it(`${side} output is ${side === 'client' ? 'masked' : 'not masked'}`, () => {
    const p = make(side);
    const payload = Buffer.from('a payload that is long enough to see the mask: 0123456789');
    p.send(Opcode.BINARY, payload);
    p.ping(Buffer.from('ping'));
    p.pong(Buffer.from('pong'));
    p.close(1000);
    const bytes = wireOf(p);
    // First frame: mask bit, and the payload bytes as they are on the wire.
    const maskBit = bytes[1]! & 0x80;
    expect(maskBit).toBe(side === 'client' ? 0x80 : 0);
    const len = bytes[1]! & 0x7f;
    expect(len).toBe(payload.length);
    if (side === 'client') {
      const key = bytes.subarray(2, 6);
      const onWire = bytes.subarray(6, 6 + len);
      const unmasked = Buffer.from(onWire.map((b, i) => b ^ key[i % 4]!));
      expect(unmasked.equals(payload)).toBe(true);
    } else {
      expect(bytes.subarray(2, 2 + len).equals(payload)).toBe(true);
    }
    // Every frame parses with the peer's parser (which insists on the right mask bit).
    const peerSide = side === 'server' ? 'client' : 'server';
    const q = new Protocol({ side: peerSide });
    const events = feed(q, bytes);
    expect(events.map((e) => e.type)).toEqual(['message', 'ping', 'pong', 'close']);
    expect(q.failure).toBeUndefined();
  });

  it('masking does not modify the caller payload', () => {
    const p = make(side);
    const payload = Buffer.from('do not touch me, I am the caller buffer!!');
    const copy = Buffer.from(payload);
    p.send(Opcode.TEXT, payload);
    p.takeOutput();
    expect(payload.equals(copy)).toBe(true);
  });

  it('compressed: true sets RSV1 on the first frame only', () => {
    const p = make(side, { compression: true });
    p.send(Opcode.TEXT, Buffer.from('a'), { fin: false, compressed: true });
    p.ping();
    p.send(Opcode.TEXT, Buffer.from('b'), { fin: false, compressed: true });
    p.send(Opcode.TEXT, Buffer.from('c'), { compressed: true });
    p.send(Opcode.BINARY, Buffer.from('d'), { compressed: true });
    p.send(Opcode.BINARY, Buffer.from('e'));
    const frames = outputFrames(p, 4);
    expect(frames.map((f) => [f.opcode, f.rsv])).toEqual([
      [Opcode.TEXT, 4],
      [Opcode.PING, 0],
      [Opcode.CONTINUATION, 0],
      [Opcode.CONTINUATION, 0],
      [Opcode.BINARY, 4],
      [Opcode.BINARY, 0],
    ]);
  });

  it('compressed: true without negotiated compression throws TypeError', () => {
    const p = make(side);
    expect(() => p.send(Opcode.TEXT, Buffer.from('a'), { compressed: true })).toThrow(TypeError);
    expect(p.takeOutput()).toEqual([]);
  });

  it('control payloads over 125 bytes throw RangeError', () => {
    const p = make(side);
    expect(() => p.ping(Buffer.alloc(126))).toThrow(RangeError);
    expect(() => p.pong(Buffer.alloc(126))).toThrow(RangeError);
    p.ping(Buffer.alloc(125));
    expect(outputFrames(p)[0]!.payload).toHaveLength(125);
  });

  it('sendFrame forces the mask bit of the side and records a Close', () => {
    const p = make(side);
    p.sendFrame(mkFrame(Opcode.TEXT, 'raw', { masked: side !== 'client' }));
    p.sendFrame(mkFrame(Opcode.CLOSE, closePayload(3001, 'raw close')));
    expect(p.closeSent).toEqual({ code: 3001, reason: 'raw close' });
    expect(p.state).toBe(ReadyState.CLOSING);
    const frames = outputFrames(p);
    expect(frames.map((f) => [f.opcode, f.masked])).toEqual([
      [Opcode.TEXT, side === 'client'],
      [Opcode.CLOSE, side === 'client'],
    ]);
    expect(() => p.sendFrame(mkFrame(Opcode.CLOSE, ''))).toThrow(WebSocketError);
    expect(() => p.sendFrame(mkFrame(Opcode.TEXT, 'x'))).toThrow(InvalidStateError);
  });
});

describe('Protocol: server output is byte-exact (RFC 6455 §5.7)', () => {
  it('send(TEXT, "Hel", {fin:false}) then send(TEXT, "lo") gives 01 03 48 65 6c / 80 02 6c 6f', () => {
    const p = make('server');
    p.send(Opcode.TEXT, Buffer.from('Hel'), { fin: false });
    expect(Buffer.concat(p.takeOutput()).equals(hex('01 03 48 65 6c'))).toBe(true);
    p.send(Opcode.TEXT, Buffer.from('lo'));
    expect(Buffer.concat(p.takeOutput()).equals(hex('80 02 6c 6f'))).toBe(true);
  });

  it('a ping between fragments: 01 03 ... / 89 05 ... / 80 02 ...', () => {
    const p = make('server');
    p.send(Opcode.TEXT, Buffer.from('Hel'), { fin: false });
    p.ping(Buffer.from('Hello'));
    p.send(Opcode.TEXT, Buffer.from('lo'));
    expect(Buffer.concat(p.takeOutput()).equals(hex('01 03 48 65 6c 89 05 48 65 6c 6c 6f 80 02 6c 6f'))).toBe(
      true,
    );
  });

  it('single frames: text, binary 256, close', () => {
    const p = make('server');
    p.send(Opcode.TEXT, Buffer.from('Hello'));
    expect(Buffer.concat(p.takeOutput()).equals(hex('81 05 48 65 6c 6c 6f'))).toBe(true);
    p.send(Opcode.BINARY, Buffer.alloc(256, 0xab));
    const out = Buffer.concat(p.takeOutput());
    expect(out.subarray(0, 4).equals(hex('82 7e 01 00'))).toBe(true);
    expect(out).toHaveLength(260);
    p.close(1000, 'ok');
    expect(Buffer.concat(p.takeOutput()).equals(hex('88 04 03 e8 6f 6b'))).toBe(true);
  });
});
