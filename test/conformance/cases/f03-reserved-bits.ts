/**
 * Family 3 — reserved bits (RFC 6455 §5.2): RSV1-3 must be 0 unless an extension gives
 * them a meaning; none is negotiated here, so any set bit fails the connection with 1002.
 * Messages echoed before the bad frame stay echoed; nothing after it is processed.
 */
import { OP, pong, text } from '../harness/peer.js';
import { type Case, defineCase } from './common.js';

export function reservedBitCases(): Case[] {
  const cases: Case[] = [];
  for (let rsv = 1; rsv <= 7; rsv++) {
    const bits = `RSV=${rsv}`;
    const id = (n: number) => `3.${rsv}.${n}`;
    cases.push(
      defineCase({
        id: id(1),
        family: 3,
        description: `Send a small text message with ${bits}.`,
        run: (p) => p.send({ opcode: OP.TEXT, rsv, payload: 'Hello, world!' }),
        expect: { fail: true },
      }),
      defineCase({
        id: id(2),
        family: 3,
        description: `Send a valid text message, wait for its echo, then a text message with ${bits}, then a ping.`,
        run: async (p) => {
          await p.sendText('valid first');
          await p.waitItems(1);
          await p.write([
            p.frame({ opcode: OP.TEXT, rsv, payload: 'bad' }),
            p.frame({ opcode: OP.PING, payload: 'p' }),
          ]);
        },
        expect: { echo: [text('valid first')], fail: true },
      }),
      defineCase({
        id: id(3),
        family: 3,
        description: `Send a text message with ${bits}, then a valid text message and a ping, all in one write: nothing is echoed.`,
        run: (p) =>
          p.write([
            p.frame({ opcode: OP.TEXT, rsv, payload: 'bad' }),
            p.frame({ opcode: OP.TEXT, payload: 'valid after' }),
            p.frame({ opcode: OP.PING, payload: 'p' }),
          ]),
        expect: { fail: true },
      }),
      defineCase({
        id: id(4),
        family: 3,
        description: `Send a valid text message (echo awaited), then a text message with ${bits} chopped into 1-byte writes.`,
        run: async (p) => {
          await p.sendText('valid first');
          await p.waitItems(1);
          await p.send({ opcode: OP.TEXT, rsv, payload: 'bad bits' }, { chop: 1 });
        },
        expect: { echo: [text('valid first')], fail: true },
      }),
      defineCase({
        id: id(5),
        family: 3,
        description: `Send a small binary message with ${bits}.`,
        run: (p) => p.send({ opcode: OP.BINARY, rsv, payload: Buffer.from([0, 1, 2, 0xff]) }),
        expect: { fail: true },
      }),
      defineCase({
        id: id(6),
        family: 3,
        description: `Send a ping with ${bits}: no pong, the connection fails.`,
        run: (p) => p.send({ opcode: OP.PING, rsv, payload: 'ping' }),
        expect: { fail: true },
      }),
      defineCase({
        id: id(7),
        family: 3,
        description: `Send a pong with ${bits}.`,
        run: (p) => p.send({ opcode: OP.PONG, rsv, payload: 'pong' }),
        expect: { fail: true },
      }),
      defineCase({
        id: id(8),
        family: 3,
        description: `Send a Close (1000) with ${bits}: the connection fails with 1002, not a normal close.`,
        run: async (p) => {
          p.notePeerClose();
          await p.send({ opcode: OP.CLOSE, rsv, payload: Buffer.from([0x03, 0xe8]) });
        },
        expect: { fail: true },
      }),
      defineCase({
        id: id(9),
        family: 3,
        description: `Send a text fragment, then a continuation frame with ${bits} (and a ping).`,
        run: (p) =>
          p.write([
            p.frame({ opcode: OP.TEXT, fin: false, payload: 'frag-1 ' }),
            p.frame({ opcode: OP.CONT, rsv, payload: 'frag-2' }),
            p.frame({ opcode: OP.PING, payload: 'p' }),
          ]),
        expect: { fail: true },
      }),
      defineCase({
        id: id(10),
        family: 3,
        description: `Send a ping (answered), then a text message with ${bits} chopped into 1-byte writes with 1 ms pauses.`,
        run: async (p) => {
          await p.ping('first');
          await p.waitItems(1);
          await p.send({ opcode: OP.TEXT, rsv, payload: 'x' }, { chop: 1, delayMs: 1 });
        },
        expect: { echo: [pong('first')], fail: true },
      }),
    );
  }
  return cases;
}
