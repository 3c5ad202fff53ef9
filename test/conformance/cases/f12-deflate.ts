/**
 * Family 12 — permessage-deflate (RFC 7692) with the default offer: series of compressed
 * messages of growing size, text and binary, in one frame and fragmented, so that the
 * shared LZ77 window (context takeover) is used across messages; plus the rules around
 * compressed frames (RSV1 on the first frame only, invalid deflate data, inflated size).
 */
import { binary, type MessageOptions, OP, pong, text } from '../harness/peer.js';
import type { ExpectedItem, Outcome } from '../harness/types.js';
import { KiB, MiB, mixedBinary, wordsText } from '../harness/util.js';
import { type Case, defineCase } from './common.js';

export const DEFLATE_SIZES = [16, 64, 256, KiB, 4 * KiB, 16 * KiB, 64 * KiB, 128 * KiB];

const human = (n: number) => (n >= KiB ? `${n / KiB} KiB` : `${n} B`);

/**
 * The default setup: our client's default offer (client_max_window_bits without a value),
 * plain answer, our sides with their default options.
 */
const DEFAULT_DEFLATE = {
  offer: 'permessage-deflate; client_max_window_bits',
  client: {},
  response: 'permessage-deflate',
  server: {},
};

/** Messages for a series: `count` messages of `size` bytes, some repeated for the shared window. */
export function series(type: 'text' | 'binary', size: number, count: number, seed: number): Buffer[] {
  return Array.from({ length: count }, (_, i) =>
    type === 'text' ? wordsText(size, seed + (i % 3)) : mixedBinary(size, seed + (i % 3)),
  );
}

const items = (type: 'text' | 'binary', msgs: Buffer[]): ExpectedItem[] =>
  msgs.map((m) => (type === 'text' ? text(m) : binary(m)));

/** Our side compresses what is at least its threshold (1024 bytes by default). */
function compressedEchoes(threshold: number) {
  return (p: import('../harness/peer.js').Peer): Array<{ outcome: Outcome; note: string }> => {
    const missed = p.items.filter(
      (i) => (i.type === 'text' || i.type === 'binary') && i.data.length >= threshold && !i.compressed,
    );
    return missed.length > 0
      ? [
          {
            outcome: 'NON-STRICT',
            note: `${missed.length} echo(es) of >= ${threshold} bytes were not compressed`,
          },
        ]
      : [];
  };
}

export function deflateCases(): Case[] {
  const cases: Case[] = [];
  const add = (c: Omit<Case, 'family' | 'directions'>) =>
    cases.push(
      defineCase({ ...c, family: 12, options: { deflate: DEFAULT_DEFLATE, timeout: 10_000, ...c.options } }),
    );

  const variants: Array<{ sub: number; type: 'text' | 'binary'; how: string; opts: MessageOptions }> = [
    { sub: 1, type: 'text', how: 'each in one frame', opts: {} },
    { sub: 2, type: 'binary', how: 'each in one frame', opts: {} },
    { sub: 3, type: 'text', how: 'each fragmented into 256-byte frames', opts: { fragmentSize: 256 } },
    {
      sub: 4,
      type: 'binary',
      how: 'each fragmented into frames of 1, 37, 512 and 4096 bytes in turn',
      opts: { fragmentSize: [1, 37, 512, 4096] },
    },
  ];
  for (const v of variants) {
    DEFLATE_SIZES.forEach((size, i) => {
      const count = size >= 64 * KiB ? 5 : 10;
      const msgs = series(v.type, size, count, 100 + i);
      add({
        id: `12.${v.sub}.${i + 1}`,
        description: `Send ${count} compressed ${v.type} messages of ${human(size)}, ${v.how}.`,
        run: async (p) => {
          for (const m of msgs) await p.sendMessage(v.type, m, { compress: true, ...v.opts });
        },
        expect: { echo: items(v.type, msgs) },
        check: compressedEchoes(1024),
      });
    });
  }

  const hello = Buffer.from('Hello, compressed world! Hello, compressed world!');
  add({
    id: '12.5.1',
    description: 'Send an uncompressed text message (RSV1 off) on a connection with permessage-deflate.',
    run: (p) => p.sendText(hello),
    expect: { echo: [text(hello)] },
  });
  const mix = series('text', 2 * KiB, 6, 7);
  add({
    id: '12.5.2',
    description: 'Send 6 text messages of 2 KiB, alternately compressed and not.',
    run: async (p) => {
      for (const [i, m] of mix.entries()) await p.sendText(m, { compress: i % 2 === 0 });
    },
    expect: { echo: items('text', mix) },
  });
  add({
    id: '12.5.3',
    description: 'Send an empty compressed text message.',
    run: (p) => p.sendText('', { compress: true }),
    expect: { echo: [text('')] },
  });
  add({
    id: '12.5.4',
    description:
      'Send a compressed binary message whose payload is the single byte 0x00 (an empty stored block, RFC 7692 §7.2.3.6).',
    run: (p) => p.send({ opcode: OP.BINARY, rsv: 4, payload: Buffer.from([0x00]) }),
    expect: { echo: [binary(Buffer.alloc(0))] },
  });
  add({
    id: '12.5.5',
    description: 'Send a compressed text message whose payload is not valid DEFLATE data.',
    run: (p) => p.send({ opcode: OP.TEXT, rsv: 4, payload: Buffer.from([0xff, 0xff, 0xff, 0xff, 0x01]) }),
    expect: { fail: { codes: [1007] } },
  });
  add({
    id: '12.5.6',
    description: 'Send a compressed message in 2 fragments with RSV1 set on the continuation frame too.',
    run: (p) => {
      const frames = p.messageFrames('text', wordsText(2000, 3), { compress: true, fragmentSize: 100 });
      const second = Buffer.from(frames[1]!);
      second[0] = second[0]! | 0x40;
      return p.write([frames[0]!, second, ...frames.slice(2)]);
    },
    expect: { fail: true },
  });
  add({
    id: '12.5.7',
    description: 'Send a ping with RSV1 set (compression applies to data messages only).',
    run: (p) => p.send({ opcode: OP.PING, rsv: 4, payload: 'p' }),
    expect: { fail: true },
  });
  add({
    id: '12.5.8',
    description: 'Send a compressed text message that inflates to invalid UTF-8.',
    run: (p) =>
      p.sendText(
        Buffer.concat([Buffer.from('valid start '), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from(' end')]),
        {
          compress: true,
        },
      ),
    expect: { fail: { codes: [1007] } },
  });
  add({
    id: '12.5.9',
    description:
      'With maxMessageSize 1 MiB: a compressed message of a few KiB that inflates to 4 MiB fails with 1009.',
    run: (p) => p.sendBinary(Buffer.alloc(4 * MiB), { compress: true }),
    expect: { fail: { codes: [1009] } },
    options: { deflate: DEFAULT_DEFLATE, maxMessageSize: MiB },
  });
  const finals = series('text', 3 * KiB, 4, 9);
  add({
    id: '12.5.10',
    description:
      'Send 4 compressed messages, each ending with a BFINAL block instead of a sync flush (RFC 7692 §7.2.3.4).',
    run: async (p) => {
      for (const m of finals) await p.sendText(m, { compress: true, finalBlock: true });
    },
    expect: { echo: items('text', finals) },
  });
  const beforeClose = wordsText(3000, 12);
  add({
    id: '12.5.11',
    description:
      'Send a compressed text message followed by a Close in one write: the message is echoed before the Close.',
    run: async (p) => {
      p.notePeerClose();
      await p.write([...p.messageFrames('text', beforeClose, { compress: true }), p.closeFrame(1000)]);
    },
    expect: { echo: [text(beforeClose)] },
  });
  const tiny = wordsText(4000, 13);
  add({
    id: '12.5.12',
    description: 'Send a compressed text message whose compressed payload is split into 1-byte fragments.',
    run: (p) => p.sendText(tiny, { compress: true, fragmentSize: 1 }),
    expect: { echo: [text(tiny)] },
  });
  add({
    id: '12.5.13',
    description: 'Send a compressed message in 3 fragments with a ping between the fragments.',
    run: (p) => {
      const frames = p.messageFrames('text', tiny, { compress: true, fragmentSize: 200 });
      const ping = p.frame({ opcode: OP.PING, payload: 'between' });
      return p.write([frames[0]!, ping, ...frames.slice(1)]);
    },
    expect: { echo: [pong('between'), text(tiny)] },
  });
  add({
    id: '12.5.14',
    description:
      'Send a compressed message of 300 KiB of one repeated byte (a high compression ratio), then another.',
    run: async (p) => {
      await p.sendBinary(Buffer.alloc(300 * KiB, 0x61), { compress: true });
      await p.sendBinary(Buffer.alloc(300 * KiB, 0x62), { compress: true });
    },
    expect: { echo: [binary(Buffer.alloc(300 * KiB, 0x61)), binary(Buffer.alloc(300 * KiB, 0x62))] },
  });
  return cases;
}
