/**
 * Family 1 — framing: text and binary messages of the lengths at the edges of the three
 * length encodings (RFC 6455 §5.2: 7 bits, 16 bits, 64 bits), sent in one write, in
 * 997-byte pieces and in 1-byte writes; plus a few header-encoding cases.
 */
import { binary, OP, text } from '../harness/peer.js';
import { asciiText, randomBytesSeeded } from '../harness/util.js';
import { type Case, defineCase } from './common.js';

const LENGTHS = [0, 125, 126, 127, 128, 65535, 65536];

export function framingCases(): Case[] {
  const cases: Case[] = [];
  const kinds = [
    { sub: 1, type: 'text' as const, make: asciiText },
    { sub: 2, type: 'binary' as const, make: (n: number) => randomBytesSeeded(n, n + 1) },
  ];
  for (const kind of kinds) {
    LENGTHS.forEach((len, i) => {
      const payload = kind.make(len);
      const item = kind.type === 'text' ? text(payload) : binary(payload);
      cases.push(
        defineCase({
          id: `1.${kind.sub}.${i + 1}`,
          family: 1,
          description: `Send a ${kind.type} message with a payload of ${len} bytes in one write.`,
          run: (p) => p.sendMessage(kind.type, payload),
          expect: { echo: [item] },
        }),
      );
      cases.push(
        defineCase({
          id: `1.${kind.sub + 2}.${i + 1}`,
          family: 1,
          description: `Send a ${kind.type} message with a payload of ${len} bytes, chopped into 1-byte writes.`,
          run: (p) => p.sendMessage(kind.type, payload, { chop: 1 }),
          expect: { echo: [item] },
          options: { timeout: 10_000 },
        }),
      );
    });
    const big = kind.make(65536);
    cases.push(
      defineCase({
        id: `1.${kind.sub}.8`,
        family: 1,
        description: `Send a ${kind.type} message of 65536 bytes in writes of 997 bytes.`,
        run: (p) => p.sendMessage(kind.type, big, { chop: 997 }),
        expect: { echo: [kind.type === 'text' ? text(big) : binary(big)] },
      }),
    );
  }

  // 1.5: header encodings.
  const hello = Buffer.from('Hello, world!');
  cases.push(
    defineCase({
      id: '1.5.1',
      family: 1,
      description: 'Send a text frame whose 64-bit length has the most significant bit set (RFC 6455 §5.2).',
      run: async (p) => {
        const f = p.frame({ opcode: OP.TEXT, payload: asciiText(70000) });
        // The 64-bit length follows the 2-byte header; set bit 63.
        f[2] = f[2]! | 0x80;
        await p.write(f.subarray(0, 14));
      },
      expect: { fail: { codes: [1002, 1009] } },
    }),
    defineCase({
      id: '1.5.2',
      family: 1,
      description: 'Send a 13-byte text message whose length uses the 16-bit encoding (not minimal).',
      informational: true,
      run: (p) => p.write(rawFrame(p.masked, OP.TEXT, hello, 16)),
      expect: { echo: [text(hello)] },
    }),
    defineCase({
      id: '1.5.3',
      family: 1,
      description: 'Send a 13-byte text message whose length uses the 64-bit encoding (not minimal).',
      informational: true,
      run: (p) => p.write(rawFrame(p.masked, OP.TEXT, hello, 64)),
      expect: { echo: [text(hello)] },
    }),
    defineCase({
      id: '1.5.4',
      family: 1,
      description: 'Send an unmasked text frame to the server (RFC 6455 §5.1: the server must fail).',
      directions: ['server'],
      run: (p) => p.send({ opcode: OP.TEXT, payload: hello, mask: false }),
      expect: { fail: true },
    }),
    defineCase({
      id: '1.5.5',
      family: 1,
      description: 'Send a masked text frame to the client (RFC 6455 §5.1: the client must fail).',
      directions: ['client'],
      run: (p) => p.send({ opcode: OP.TEXT, payload: hello, mask: true }),
      expect: { fail: true },
    }),
    defineCase({
      id: '1.5.6',
      family: 1,
      description: 'Send a text frame masked with the all-zero key (valid: the key is just a key).',
      directions: ['server'],
      run: (p) => p.send({ opcode: OP.TEXT, payload: hello, maskKey: Buffer.alloc(4) }),
      expect: { echo: [text(hello)] },
    }),
    defineCase({
      id: '1.5.7',
      family: 1,
      description: 'Send three text messages and two binary messages in one write.',
      run: (p) =>
        p.write([
          ...p.messageFrames('text', 'one'),
          ...p.messageFrames('binary', Buffer.from([1, 2, 3])),
          ...p.messageFrames('text', 'two'),
          ...p.messageFrames('binary', Buffer.alloc(0)),
          ...p.messageFrames('text', 'three'),
        ]),
      expect: {
        echo: [
          text('one'),
          binary(Buffer.from([1, 2, 3])),
          text('two'),
          binary(Buffer.alloc(0)),
          text('three'),
        ],
      },
    }),
    defineCase({
      id: '1.5.8',
      family: 1,
      description:
        'Send a 300-byte binary message whose header and masking key arrive in 1-byte writes, the payload in one.',
      run: async (p) => {
        const payload = randomBytesSeeded(300, 5);
        const f = p.frame({ opcode: OP.BINARY, payload });
        const headerLength = 4 + (p.masked ? 4 : 0);
        await p.write(f.subarray(0, headerLength), { chop: 1, delayMs: 2 });
        await p.write(f.subarray(headerLength));
      },
      expect: { echo: [binary(randomBytesSeeded(300, 5))] },
    }),
  );
  return cases;
}

/** A frame with a deliberately chosen length encoding (7, 16 or 64 bits). */
function rawFrame(masked: boolean, opcode: number, payload: Buffer, bits: 7 | 16 | 64): Buffer {
  const key = Buffer.from([0x37, 0xfa, 0x21, 0x3d]);
  const header: number[] = [0x80 | opcode];
  const m = masked ? 0x80 : 0;
  if (bits === 7) header.push(m | payload.length);
  else if (bits === 16) header.push(m | 126, payload.length >> 8, payload.length & 0xff);
  else {
    header.push(m | 127, 0, 0, 0, 0);
    header.push(
      (payload.length >>> 24) & 0xff,
      (payload.length >>> 16) & 0xff,
      (payload.length >>> 8) & 0xff,
    );
    header.push(payload.length & 0xff);
  }
  const body = Buffer.from(payload);
  if (masked) {
    header.push(...key);
    for (let i = 0; i < body.length; i++) body[i] = body[i]! ^ key[i & 3]!;
  }
  return Buffer.concat([Buffer.from(header), body]);
}
