/**
 * Family 7 — the closing handshake (RFC 6455 §5.5.1, §7): a Close is answered with a Close
 * echoing the code; nothing after the peer's Close is processed; close codes and reasons
 * are validated (§7.4); and the TCP connection ends in the right order (§7.1.1: the
 * server first), also when the peer misbehaves.
 */
import { OP, text } from '../harness/peer.js';
import { asciiText, hex, randomBytesSeeded } from '../harness/util.js';
import { type Case, defineCase } from './common.js';

export function closeCases(): Case[] {
  const cases: Case[] = [];
  const add = (c: Omit<Case, 'family' | 'directions'> & { directions?: Case['directions'] }) =>
    cases.push(defineCase({ ...c, family: 7 }));

  // 7.1: what follows a Close is ignored.
  add({
    id: '7.1.1',
    description:
      'Send a text message followed by a Close (1000) in one write: the message is echoed, then the Close.',
    run: async (p) => {
      p.notePeerClose();
      await p.write([...p.messageFrames('text', 'Hello, world!'), p.closeFrame(1000)]);
    },
    expect: { echo: [text('Hello, world!')] },
  });
  add({
    id: '7.1.2',
    description: 'Send a Close twice: only one Close comes back.',
    run: async (p) => {
      p.notePeerClose();
      await p.write([p.closeFrame(1000), p.closeFrame(1000)]);
    },
    expect: {},
  });
  add({
    id: '7.1.3',
    description: 'Send a Close, then a ping: no pong.',
    run: async (p) => {
      p.notePeerClose();
      await p.write([p.closeFrame(1000), p.frame({ opcode: OP.PING, payload: 'after close' })]);
    },
    expect: {},
  });
  add({
    id: '7.1.4',
    description: 'Send a Close, then a text message: not echoed.',
    run: async (p) => {
      p.notePeerClose();
      await p.write([p.closeFrame(1000), p.frame({ opcode: OP.TEXT, payload: 'after close' })]);
    },
    expect: {},
  });
  add({
    id: '7.1.5',
    description:
      'Send the first fragment of a text message, a Close, then the last fragment: nothing is echoed.',
    run: async (p) => {
      p.notePeerClose();
      await p.write([
        p.frame({ opcode: OP.TEXT, fin: false, payload: 'fragment1' }),
        p.closeFrame(1000),
        p.frame({ opcode: OP.CONT, payload: 'fragment2' }),
      ]);
    },
    expect: {},
  });
  const big = asciiText(256 * 1024);
  add({
    id: '7.1.6',
    description:
      'Send a 256 KiB text message, a Close, then a ping, in one write (echo and pong may be dropped).',
    informational: true,
    run: async (p) => {
      p.notePeerClose();
      await p.write([
        ...p.messageFrames('text', big),
        p.closeFrame(1000),
        p.frame({ opcode: OP.PING, payload: 'after close' }),
      ]);
    },
    expect: { echo: [text(big)] },
  });
  add({
    id: '7.1.7',
    description:
      'Send a Close, then a frame with reserved bits set: ignored, the Close (1000) is still answered normally.',
    run: async (p) => {
      p.notePeerClose();
      await p.write([p.closeFrame(1000), p.frame({ opcode: OP.TEXT, rsv: 7, payload: 'garbage' })]);
    },
    expect: {},
  });
  add({
    id: '7.1.8',
    description: 'Send a Close, then invalid UTF-8 text: ignored (no 1007), the Close (1000) is answered.',
    run: async (p) => {
      p.notePeerClose();
      await p.write([p.closeFrame(1000), p.frame({ opcode: OP.TEXT, payload: hex('c0af') })]);
    },
    expect: {},
  });
  add({
    id: '7.1.9',
    description: 'Send three text messages and a Close in one write: all three are echoed before the Close.',
    run: async (p) => {
      p.notePeerClose();
      await p.write([
        ...p.messageFrames('text', 'one'),
        ...p.messageFrames('text', 'two'),
        ...p.messageFrames('text', 'three'),
        p.closeFrame(1000),
      ]);
    },
    expect: { echo: [text('one'), text('two'), text('three')] },
  });
  add({
    id: '7.1.10',
    description: 'Send a Close chopped into 1-byte writes.',
    run: (p) => p.close(1000, 'chopped', { chop: 1 }),
    expect: {},
  });

  // 7.3: payload shapes.
  add({
    id: '7.3.1',
    description: 'Send a Close without payload: the answer is a Close without a status code.',
    run: (p) => p.close(null),
    expect: { close: [null], closeNonStrict: [1000] },
  });
  add({
    id: '7.3.2',
    description: 'Send a Close with a 1-byte payload (a status code needs 2 bytes).',
    run: async (p) => {
      p.notePeerClose();
      await p.send({ opcode: OP.CLOSE, payload: Buffer.from([0x03]) });
    },
    expect: { fail: true },
  });
  add({
    id: '7.3.3',
    description: 'Send a Close with code 1000 and no reason.',
    run: (p) => p.close(1000),
    expect: {},
  });
  add({
    id: '7.3.4',
    description: 'Send a Close with code 1000 and a short reason.',
    run: (p) => p.close(1000, 'Hello World!'),
    expect: {},
  });
  add({
    id: '7.3.5',
    description: 'Send a Close with code 1000 and a 123-byte reason (the largest that fits).',
    run: (p) => p.close(1000, asciiText(123)),
    expect: {},
  });
  add({
    id: '7.3.6',
    description: 'Send a Close with code 1000 and a 124-byte reason (a 126-byte control frame).',
    run: async (p) => {
      p.notePeerClose();
      await p.send({ opcode: OP.CLOSE, payload: Buffer.concat([Buffer.from([0x03, 0xe8]), asciiText(124)]) });
    },
    expect: { fail: true },
  });
  add({
    id: '7.3.7',
    description: 'Send a Close with code 1000 and a multi-byte UTF-8 reason.',
    run: (p) => p.close(1000, 'κόσμε — 日本 😀'),
    expect: {},
  });

  // 7.5: invalid reasons.
  add({
    id: '7.5.1',
    description: 'Send a Close with code 1000 and a reason that is invalid UTF-8.',
    run: async (p) => {
      p.notePeerClose();
      await p.send({
        opcode: OP.CLOSE,
        payload: Buffer.concat([Buffer.from([0x03, 0xe8]), hex(`cebae1bdb9cf83cebcceb5eda080656469746564`)]),
      });
    },
    expect: { fail: { codes: [1007] } },
  });
  add({
    id: '7.5.2',
    description: 'Send a Close with code 1000 and a reason ending in a truncated sequence.',
    run: async (p) => {
      p.notePeerClose();
      await p.send({
        opcode: OP.CLOSE,
        payload: Buffer.concat([Buffer.from([0x03, 0xe8]), Buffer.from('bye'), hex('e282')]),
      });
    },
    expect: { fail: { codes: [1007] } },
  });
  add({
    id: '7.5.3',
    description: 'Send a Close with code 1000 and an overlong-encoded reason.',
    run: async (p) => {
      p.notePeerClose();
      await p.send({ opcode: OP.CLOSE, payload: Buffer.concat([Buffer.from([0x03, 0xe8]), hex('c0af')]) });
    },
    expect: { fail: { codes: [1007] } },
  });

  // 7.7: valid codes are echoed.
  const valid = [
    1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999,
  ];
  valid.forEach((code, i) => {
    add({
      id: `7.7.${i + 1}`,
      description: `Send a Close with the valid code ${code}: the answer echoes it.`,
      run: (p) => p.close(code, `code ${code}`),
      expect: { close: [code] },
    });
  });
  // 7.9: invalid codes fail the connection.
  const invalid = [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535];
  invalid.forEach((code, i) => {
    add({
      id: `7.9.${i + 1}`,
      description: `Send a Close with the invalid code ${code} (RFC 6455 §7.4).`,
      run: (p) => p.close(code),
      expect: { fail: true },
    });
  });

  // 7.13: the TCP close and the close timeouts.
  add({
    id: '7.13.1',
    description:
      'The peer never closes TCP after the closing handshake: the server closes it at once (RFC 6455 §7.1.1).',
    directions: ['server'],
    run: (p) => p.close(1000),
    expect: {},
  });
  add({
    id: '7.13.2',
    description:
      'The fuzzing server completes the closing handshake but never closes TCP: the client gives up after its closeTimeout (300 ms).',
    directions: ['client'],
    run: (p) => p.close(1000),
    expect: {},
    options: { serverKeepsTcpOpen: true, closeTimeout: 300 },
  });
  add({
    id: '7.13.3',
    description:
      'After a protocol error the peer never answers our Close nor closes TCP: our side ends the TCP connection itself.',
    run: (p) => p.send({ opcode: OP.TEXT, rsv: 2, payload: 'bad' }),
    expect: { fail: true },
    options: { silentPeer: true, closeTimeout: 300 },
  });
  add({
    id: '7.13.4',
    description:
      "After the peer's Close is answered the peer goes silent (no TCP close): our side still ends the connection within its closeTimeout (300 ms).",
    run: (p) => p.close(1000),
    expect: {},
    options: { silentPeer: true, serverKeepsTcpOpen: true, closeTimeout: 300 },
    check: (p) =>
      p.implEndAt === undefined ? [{ outcome: 'FAILED', note: 'our side never ended TCP' }] : [],
  });
  add({
    id: '7.13.5',
    description:
      'Send a Close and end TCP right away (half-close): our side still answers the Close and closes its side.',
    run: async (p) => {
      await p.close(1000);
      p.endTcp();
    },
    expect: {},
  });
  add({
    id: '7.13.6',
    description:
      'Send a Close in the middle of a large message being echoed (1 MiB binary, then Close at once).',
    informational: true,
    run: async (p) => {
      p.notePeerClose();
      await p.write([...p.messageFrames('binary', randomBytesSeeded(1024 * 1024, 3)), p.closeFrame(1000)]);
    },
    expect: { echo: [{ type: 'binary', data: randomBytesSeeded(1024 * 1024, 3) }] },
  });
  return cases;
}
