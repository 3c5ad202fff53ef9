/**
 * Family 2 — pings and pongs (RFC 6455 §5.5.2, §5.5.3): every ping is answered with a pong
 * carrying the same payload; unsolicited pongs are ignored; control payloads are at most
 * 125 bytes.
 */
import { OP, pong, text } from '../harness/peer.js';
import { randomBytesSeeded } from '../harness/util.js';
import { type Case, defineCase } from './common.js';

export function pingCases(): Case[] {
  const bin8 = Buffer.from([0x00, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0x00, 0xff]);
  const b125 = Buffer.alloc(125, 0xfe);
  const b126 = Buffer.alloc(126, 0xfe);
  const tenPings = Array.from({ length: 10 }, (_, i) => Buffer.from(`payload-${i}`));
  const cases: Case[] = [
    defineCase({
      id: '2.1',
      family: 2,
      description: 'Send a ping without payload.',
      run: (p) => p.ping(),
      expect: { echo: [pong()] },
    }),
    defineCase({
      id: '2.2',
      family: 2,
      description: 'Send a ping with a small text payload.',
      run: (p) => p.ping('Hello, world!'),
      expect: { echo: [pong('Hello, world!')] },
    }),
    defineCase({
      id: '2.3',
      family: 2,
      description: 'Send a ping with a small binary (non UTF-8) payload.',
      run: (p) => p.ping(bin8),
      expect: { echo: [pong(bin8)] },
    }),
    defineCase({
      id: '2.4',
      family: 2,
      description: 'Send a ping with a binary payload of 125 bytes (the largest allowed).',
      run: (p) => p.ping(b125),
      expect: { echo: [pong(b125)] },
    }),
    defineCase({
      id: '2.5',
      family: 2,
      description: 'Send a ping with a binary payload of 126 bytes (control frames carry at most 125).',
      run: (p) => p.ping(b126),
      expect: { fail: true },
    }),
    defineCase({
      id: '2.6',
      family: 2,
      description: 'Send a ping with a 125-byte payload, chopped into 1-byte writes with 1 ms pauses.',
      run: (p) => p.ping(b125, { chop: 1, delayMs: 1 }),
      expect: { echo: [pong(b125)] },
      options: { timeout: 5000 },
    }),
    defineCase({
      id: '2.7',
      family: 2,
      description: 'Send an unsolicited pong without payload: nothing is answered.',
      run: (p) => p.pong(),
      expect: {},
    }),
    defineCase({
      id: '2.8',
      family: 2,
      description: 'Send an unsolicited pong with payload: nothing is answered.',
      run: (p) => p.pong('unsolicited pong payload'),
      expect: {},
    }),
    defineCase({
      id: '2.9',
      family: 2,
      description: 'Send an unsolicited pong, then a ping: only the ping is answered.',
      run: (p) =>
        p.write([
          p.frame({ opcode: OP.PONG, payload: 'unsolicited' }),
          p.frame({ opcode: OP.PING, payload: 'solicited' }),
        ]),
      expect: { echo: [pong('solicited')] },
    }),
    defineCase({
      id: '2.10',
      family: 2,
      description: 'Send 10 pings in one write: 10 pongs, in order.',
      run: (p) => p.write(tenPings.map((b) => p.frame({ opcode: OP.PING, payload: b }))),
      // RFC 6455 §5.5.3 lets an endpoint answer only the most recent of several pings.
      expect: { echo: tenPings.map((b) => pong(b)), echoNonStrict: [[pong(tenPings[9])]] },
    }),
    defineCase({
      id: '2.11',
      family: 2,
      description: 'Send 10 pings, each chopped into 1-byte writes: 10 pongs, in order.',
      run: async (p) => {
        for (const b of tenPings) await p.ping(b, { chop: 1 });
      },
      expect: { echo: tenPings.map((b) => pong(b)) },
    }),
    defineCase({
      id: '2.12',
      family: 2,
      description: 'Send a ping with a 1-byte payload.',
      run: (p) => p.ping(Buffer.from([0x2a])),
      expect: { echo: [pong(Buffer.from([0x2a]))] },
    }),
    defineCase({
      id: '2.13',
      family: 2,
      description:
        'Send a ping whose payload is invalid UTF-8 (control payloads are not text): answered verbatim.',
      run: (p) => p.ping(Buffer.from([0xc0, 0xaf, 0xed, 0xa0, 0x80, 0xff])),
      expect: { echo: [pong(Buffer.from([0xc0, 0xaf, 0xed, 0xa0, 0x80, 0xff]))] },
    }),
    defineCase({
      id: '2.14',
      family: 2,
      description:
        'Send a ping with 10 payload bytes but the 64-bit length encoding (a control frame length must be <= 125).',
      run: (p) => {
        const key = Buffer.from([1, 2, 3, 4]);
        const payload = Buffer.from('0123456789');
        const head = [0x89, (p.masked ? 0x80 : 0) | 127, 0, 0, 0, 0, 0, 0, 0, 10];
        const body = Buffer.from(payload);
        if (p.masked) for (let i = 0; i < body.length; i++) body[i] = body[i]! ^ key[i & 3]!;
        return p.write(Buffer.concat([Buffer.from(head), p.masked ? key : Buffer.alloc(0), body]));
      },
      expect: { fail: true },
    }),
    defineCase({
      id: '2.15',
      family: 2,
      description: 'Send a pong with a 126-byte payload (control frames carry at most 125).',
      run: (p) => p.pong(b126),
      expect: { fail: true },
    }),
    defineCase({
      id: '2.16',
      family: 2,
      description: 'Send 100 pings with distinct payloads in one write: 100 pongs, in order.',
      run: (p) =>
        p.write(Array.from({ length: 100 }, (_, i) => p.frame({ opcode: OP.PING, payload: `#${i}` }))),
      expect: { echo: Array.from({ length: 100 }, (_, i) => pong(`#${i}`)) },
    }),
    defineCase({
      id: '2.17',
      family: 2,
      description: 'Send a text message, a ping and another text message in one write.',
      run: (p) =>
        p.write([
          ...p.messageFrames('text', 'before'),
          p.frame({ opcode: OP.PING, payload: 'between' }),
          ...p.messageFrames('text', 'after'),
        ]),
      expect: { echo: [text('before'), pong('between'), text('after')] },
    }),
    defineCase({
      id: '2.18',
      family: 2,
      description: 'Send ping, pong, ping, pong alternating: only the pings are answered.',
      run: (p) =>
        p.write([
          p.frame({ opcode: OP.PING, payload: 'a' }),
          p.frame({ opcode: OP.PONG, payload: 'x' }),
          p.frame({ opcode: OP.PING, payload: 'b' }),
          p.frame({ opcode: OP.PONG, payload: 'y' }),
        ]),
      expect: { echo: [pong('a'), pong('b')] },
    }),
    defineCase({
      id: '2.19',
      family: 2,
      description: 'Send 5 pings of random 125-byte payloads, 10 ms apart.',
      run: async (p) => {
        for (let i = 0; i < 5; i++) {
          await p.ping(randomBytesSeeded(125, 100 + i));
          await p.sleep(10);
        }
      },
      expect: { echo: Array.from({ length: 5 }, (_, i) => pong(randomBytesSeeded(125, 100 + i))) },
    }),
  ];
  return cases;
}
