/**
 * Family 4 — reserved opcodes (RFC 6455 §5.2): 0x3-0x7 (data) and 0xB-0xF (control) are
 * reserved; receiving one fails the connection with 1002.
 */
import { OP, text } from '../harness/peer.js';
import { type Case, defineCase } from './common.js';

const RESERVED = [3, 4, 5, 6, 7, 11, 12, 13, 14, 15];

export function opcodeCases(): Case[] {
  const cases: Case[] = [];
  for (const op of RESERVED) {
    const name = `reserved ${op < 8 ? 'non-control' : 'control'} opcode 0x${op.toString(16).toUpperCase()}`;
    const id = (n: number) => `4.${op}.${n}`;
    cases.push(
      defineCase({
        id: id(1),
        family: 4,
        description: `Send a frame with ${name} and no payload.`,
        run: (p) => p.send({ opcode: op }),
        expect: { fail: true },
      }),
      defineCase({
        id: id(2),
        family: 4,
        description: `Send a frame with ${name} and a payload.`,
        run: (p) => p.send({ opcode: op, payload: 'reserved for future use' }),
        expect: { fail: true },
      }),
      defineCase({
        id: id(3),
        family: 4,
        description: `Send a small text message (echo awaited), then a frame with ${name}, then a ping.`,
        run: async (p) => {
          await p.sendText('Hello, world!');
          await p.waitItems(1);
          await p.write([p.frame({ opcode: op, payload: 'x' }), p.frame({ opcode: OP.PING, payload: 'p' })]);
        },
        expect: { echo: [text('Hello, world!')], fail: true },
      }),
      defineCase({
        id: id(4),
        family: 4,
        description: `Send a text fragment, a frame with ${name}, then the last fragment: nothing is echoed.`,
        run: (p) =>
          p.write([
            p.frame({ opcode: OP.TEXT, fin: false, payload: 'frag-1 ' }),
            p.frame({ opcode: op, payload: 'x' }),
            p.frame({ opcode: OP.CONT, payload: 'frag-2' }),
          ]),
        expect: { fail: true },
      }),
      defineCase({
        id: id(5),
        family: 4,
        description: `Send a non-final frame (FIN=0) with ${name}.`,
        run: (p) => p.send({ opcode: op, fin: false, payload: 'x' }),
        expect: { fail: true },
      }),
      defineCase({
        id: id(6),
        family: 4,
        description: `Send a frame with ${name} followed by a valid text message in one write: nothing is echoed.`,
        run: (p) =>
          p.write([
            p.frame({ opcode: op, payload: 'x' }),
            p.frame({ opcode: OP.TEXT, payload: 'valid after' }),
          ]),
        expect: { fail: true },
      }),
    );
  }
  return cases;
}
