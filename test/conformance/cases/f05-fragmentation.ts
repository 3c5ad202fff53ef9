/**
 * Family 5 — fragmentation (RFC 6455 §5.4): control frames may come between the fragments
 * of a message but are never fragmented themselves; a continuation frame needs a message
 * to continue; a new data message cannot start inside a fragmented one.
 */
import { binary, OP, pong, text } from '../harness/peer.js';
import { asciiText, multibyteText, randomBytesSeeded } from '../harness/util.js';
import { type Case, defineCase } from './common.js';

export function fragmentationCases(): Case[] {
  const cases: Case[] = [];
  const add = (c: Omit<Case, 'family' | 'directions'>) => cases.push(defineCase({ ...c, family: 5 }));

  add({
    id: '5.1',
    description: 'Send a ping in 2 fragments (control frames must not be fragmented).',
    run: (p) =>
      p.write([
        p.frame({ opcode: OP.PING, fin: false, payload: 'frag-1' }),
        p.frame({ opcode: OP.CONT, payload: 'frag-2' }),
      ]),
    expect: { fail: true },
  });
  add({
    id: '5.2',
    description: 'Send a pong in 2 fragments.',
    run: (p) =>
      p.write([
        p.frame({ opcode: OP.PONG, fin: false, payload: 'frag-1' }),
        p.frame({ opcode: OP.CONT, payload: 'frag-2' }),
      ]),
    expect: { fail: true },
  });
  const modes = [
    { suffix: 'in one write', opts: {} },
    { suffix: 'frame by frame, 10 ms apart', opts: { frameDelayMs: 10 } },
    { suffix: 'chopped into 1-byte writes', opts: { chop: 1 } },
  ];
  modes.forEach((m, i) => {
    add({
      id: `5.${3 + i}`,
      description: `Send a text message in 2 fragments, ${m.suffix}.`,
      run: (p) => p.sendText('fragment1fragment2', { fragmentSize: 9, ...m.opts }),
      expect: { echo: [text('fragment1fragment2')] },
    });
  });
  modes.forEach((m, i) => {
    add({
      id: `5.${6 + i}`,
      description: `Send a text message in 2 fragments with a ping between them, ${m.suffix}.`,
      run: async (p) => {
        const frames = [
          p.frame({ opcode: OP.TEXT, fin: false, payload: 'fragment1' }),
          p.frame({ opcode: OP.PING, payload: 'ping payload' }),
          p.frame({ opcode: OP.CONT, payload: 'fragment2' }),
        ];
        if ('frameDelayMs' in m.opts) {
          for (const f of frames) {
            await p.write(f);
            await p.sleep(10);
          }
        } else await p.write(frames, m.opts);
      },
      expect: { echo: [pong('ping payload'), text('fragment1fragment2')] },
    });
  });
  // Orphan continuations, then a valid message that must not be processed.
  const orphan = (fin: boolean) => [
    { opcode: OP.CONT, fin, payload: 'non-continuation payload' },
    { opcode: OP.TEXT, fin: false, payload: 'fragment1' },
    { opcode: OP.CONT, fin: true, payload: 'fragment2' },
  ];
  [true, false].forEach((fin, j) => {
    modes.forEach((m, i) => {
      add({
        id: `5.${9 + j * 3 + i}`,
        description: `Send a continuation frame with FIN=${fin ? 1 : 0} without a message to continue, then a text message in 2 fragments, ${m.suffix}.`,
        run: async (p) => {
          const frames = orphan(fin).map((f) => p.frame(f));
          if ('frameDelayMs' in m.opts) {
            for (const f of frames) {
              await p.write(f);
              await p.sleep(10);
            }
          } else await p.write(frames, m.opts);
        },
        expect: { fail: true },
      });
    });
  });
  add({
    id: '5.15',
    description:
      'Send a text message in 2 fragments (echo awaited), then a continuation with FIN=0 and another fragmented text message.',
    run: async (p) => {
      await p.sendText('fragment1fragment2', { fragmentSize: 9 });
      await p.waitItems(1);
      await p.write([
        p.frame({ opcode: OP.CONT, fin: false, payload: 'fragment3' }),
        p.frame({ opcode: OP.TEXT, fin: false, payload: 'fragment4' }),
        p.frame({ opcode: OP.CONT, payload: 'fragment5' }),
      ]);
    },
    expect: { echo: [text('fragment1fragment2')], fail: true },
  });
  add({
    id: '5.16',
    description: 'Twice: a continuation with FIN=0, a text frame with FIN=0, a continuation with FIN=1.',
    run: (p) => {
      const round = [
        p.frame({ opcode: OP.CONT, fin: false, payload: 'fragment1' }),
        p.frame({ opcode: OP.TEXT, fin: false, payload: 'fragment2' }),
        p.frame({ opcode: OP.CONT, payload: 'fragment3' }),
      ];
      return p.write([...round, ...round]);
    },
    expect: { fail: true },
  });
  add({
    id: '5.17',
    description: 'Twice: a continuation with FIN=1, a text frame with FIN=0, a continuation with FIN=1.',
    run: (p) => {
      const round = [
        p.frame({ opcode: OP.CONT, payload: 'fragment1' }),
        p.frame({ opcode: OP.TEXT, fin: false, payload: 'fragment2' }),
        p.frame({ opcode: OP.CONT, payload: 'fragment3' }),
      ];
      return p.write([...round, ...round]);
    },
    expect: { fail: true },
  });
  add({
    id: '5.18',
    description: 'Send a text fragment (FIN=0), then a new text frame (FIN=1) instead of a continuation.',
    run: (p) =>
      p.write([
        p.frame({ opcode: OP.TEXT, fin: false, payload: 'fragment1' }),
        p.frame({ opcode: OP.TEXT, payload: 'fragment2' }),
      ]),
    expect: { fail: true },
  });
  const five = ['fragment1', 'fragment2', 'fragment3', 'fragment4', 'fragment5'];
  add({
    id: '5.19',
    description:
      'Send a text message in 5 fragments, with a ping after fragments 2 and 4, 20 ms between frames.',
    run: async (p) => {
      for (const [i, f] of five.entries()) {
        await p.send({ opcode: i === 0 ? OP.TEXT : OP.CONT, fin: i === 4, payload: f });
        if (i === 1 || i === 3) await p.ping(`pongme ${i}`);
        await p.sleep(20);
      }
    },
    expect: { echo: [pong('pongme 1'), pong('pongme 3'), text(five.join(''))] },
  });
  add({
    id: '5.20',
    description: 'As 5.19, each frame chopped into 1-byte writes.',
    run: async (p) => {
      for (const [i, f] of five.entries()) {
        await p.send({ opcode: i === 0 ? OP.TEXT : OP.CONT, fin: i === 4, payload: f }, { chop: 1 });
        if (i === 1 || i === 3) await p.ping(`pongme ${i}`, { chop: 1 });
      }
    },
    expect: { echo: [pong('pongme 1'), pong('pongme 3'), text(five.join(''))] },
  });

  // 5.21+: more fragment shapes.
  const ascii1000 = asciiText(1000);
  add({
    id: '5.21',
    description: 'Send a 1000-byte text message as 1000 fragments of 1 byte.',
    run: (p) => p.sendText(ascii1000, { fragmentSize: 1 }),
    expect: { echo: [text(ascii1000)] },
  });
  const bin1000 = randomBytesSeeded(1000, 21);
  add({
    id: '5.22',
    description: 'Send a 1000-byte binary message as 1000 fragments of 1 byte.',
    run: (p) => p.sendBinary(bin1000, { fragmentSize: 1 }),
    expect: { echo: [binary(bin1000)] },
  });
  const multi = multibyteText(4000);
  [1, 2, 3, 5, 7, 64, 1000, 3999].forEach((n, i) => {
    add({
      id: `5.23.${i + 1}`,
      description: `Send 4000 bytes of multi-byte UTF-8 text in fragments of ${n} bytes (characters split across fragments).`,
      run: (p) => p.sendText(multi, { fragmentSize: n }),
      expect: { echo: [text(multi)] },
    });
  });
  const bin4000 = randomBytesSeeded(4000, 23);
  [1, 3, 64, 1000].forEach((n, i) => {
    add({
      id: `5.24.${i + 1}`,
      description: `Send a 4000-byte binary message in fragments of ${n} bytes.`,
      run: (p) => p.sendBinary(bin4000, { fragmentSize: n }),
      expect: { echo: [binary(bin4000)] },
    });
  });
  add({
    id: '5.25',
    description: 'Send a text message made of 3 empty fragments.',
    run: (p) =>
      p.write([
        p.frame({ opcode: OP.TEXT, fin: false }),
        p.frame({ opcode: OP.CONT, fin: false }),
        p.frame({ opcode: OP.CONT }),
      ]),
    expect: { echo: [text('')] },
  });
  add({
    id: '5.26',
    description: 'Send a binary message: an empty first fragment, then 3 bytes, then an empty last fragment.',
    run: (p) =>
      p.write([
        p.frame({ opcode: OP.BINARY, fin: false }),
        p.frame({ opcode: OP.CONT, fin: false, payload: Buffer.from([1, 2, 3]) }),
        p.frame({ opcode: OP.CONT }),
      ]),
    expect: { echo: [binary(Buffer.from([1, 2, 3]))] },
  });
  add({
    id: '5.27',
    description: 'Send a text fragment (FIN=0), then a binary frame (FIN=1) inside the fragmented message.',
    run: (p) =>
      p.write([
        p.frame({ opcode: OP.TEXT, fin: false, payload: 'fragment1' }),
        p.frame({ opcode: OP.BINARY, payload: Buffer.from([1, 2]) }),
        p.frame({ opcode: OP.CONT, payload: 'fragment2' }),
      ]),
    expect: { fail: true },
  });
  add({
    id: '5.28',
    description: 'Send a text message in 2 fragments with an unsolicited pong between them.',
    run: (p) =>
      p.write([
        p.frame({ opcode: OP.TEXT, fin: false, payload: 'fragment1' }),
        p.frame({ opcode: OP.PONG, payload: 'unsolicited' }),
        p.frame({ opcode: OP.CONT, payload: 'fragment2' }),
      ]),
    expect: { echo: [text('fragment1fragment2')] },
  });
  add({
    id: '5.29',
    description: 'Send a Close frame with FIN=0 (a fragmented control frame).',
    run: async (p) => {
      p.notePeerClose();
      await p.write([
        p.frame({ opcode: OP.CLOSE, fin: false, payload: Buffer.from([0x03, 0xe8]) }),
        p.frame({ opcode: OP.CONT, payload: 'bye' }),
      ]);
    },
    expect: { fail: true },
  });
  add({
    id: '5.30',
    description: 'Send a 10-byte text message in 1-byte fragments with a ping after every fragment.',
    run: (p) => {
      const frames: Buffer[] = [];
      const msg = '0123456789';
      for (let i = 0; i < 10; i++) {
        frames.push(p.frame({ opcode: i === 0 ? OP.TEXT : OP.CONT, fin: i === 9, payload: msg[i]! }));
        frames.push(p.frame({ opcode: OP.PING, payload: `p${i}` }));
      }
      return p.write(frames);
    },
    expect: { echo: [...Array.from({ length: 10 }, (_, i) => pong(`p${i}`)), text('0123456789')] },
  });
  add({
    id: '5.31',
    description: 'Send two fragmented messages back to back (text in 3, binary in 2) in one write.',
    run: (p) =>
      p.write([
        ...p.messageFrames('text', 'aaabbbccc', { fragmentSize: 3 }),
        ...p.messageFrames('binary', Buffer.from([1, 2, 3, 4]), { fragmentSize: 2 }),
      ]),
    expect: { echo: [text('aaabbbccc'), binary(Buffer.from([1, 2, 3, 4]))] },
  });
  add({
    id: '5.32',
    description:
      'Send a text message in 5 fragments, every frame chopped into 1-byte writes with 1 ms pauses.',
    run: (p) => p.sendText('Hello fragmented world', { fragmentSize: 5, chop: 1, delayMs: 1 }),
    expect: { echo: [text('Hello fragmented world')] },
    options: { timeout: 5000 },
  });
  add({
    id: '5.33',
    description: 'Send a complete text message, then a continuation frame (nothing to continue).',
    run: async (p) => {
      await p.sendText('complete');
      await p.waitItems(1);
      await p.send({ opcode: OP.CONT, payload: 'orphan' });
    },
    expect: { echo: [text('complete')], fail: true },
  });
  add({
    id: '5.34',
    description: 'Send a binary fragment (FIN=0), then a text frame with FIN=0 inside it.',
    run: (p) =>
      p.write([
        p.frame({ opcode: OP.BINARY, fin: false, payload: Buffer.from([1]) }),
        p.frame({ opcode: OP.TEXT, fin: false, payload: 'x' }),
        p.frame({ opcode: OP.CONT, payload: 'y' }),
      ]),
    expect: { fail: true },
  });
  add({
    id: '5.35',
    description: 'Send a binary message in 2 fragments with a ping between them, 10 ms apart.',
    run: async (p) => {
      await p.send({ opcode: OP.BINARY, fin: false, payload: Buffer.from([0xde, 0xad]) });
      await p.sleep(10);
      await p.ping('mid');
      await p.sleep(10);
      await p.send({ opcode: OP.CONT, payload: Buffer.from([0xbe, 0xef]) });
    },
    expect: { echo: [pong('mid'), binary(Buffer.from([0xde, 0xad, 0xbe, 0xef]))] },
  });
  add({
    id: '5.36',
    description: 'Send a text message in 64 fragments of varying sizes (1, 2, 3, ... bytes), in one write.',
    run: (p) => {
      const sizes = Array.from({ length: 64 }, (_, i) => i + 1);
      return p.sendText(asciiText(2080), { fragmentSize: sizes });
    },
    expect: { echo: [text(asciiText(2080))] },
  });
  return cases;
}
