/**
 * Family 10 — miscellaneous: auto-fragmentation. A message larger than the receiver's
 * frame size limit arrives in fragments within the limit and must be reassembled.
 */
import { binary, text } from '../harness/peer.js';
import { asciiText, KiB, MiB, multibyteText, randomBytesSeeded } from '../harness/util.js';
import { type Case, defineCase } from './common.js';

export function miscCases(): Case[] {
  const cases: Case[] = [];
  const add = (c: Omit<Case, 'family' | 'directions'>) => cases.push(defineCase({ ...c, family: 10 }));
  const t64 = asciiText(64 * KiB);
  const b64 = randomBytesSeeded(64 * KiB, 10);
  add({
    id: '10.1.1',
    description: 'Send a 64 KiB text message auto-fragmented into frames of 1300 bytes.',
    run: (p) => p.sendText(t64, { fragmentSize: 1300 }),
    expect: { echo: [text(t64)] },
  });
  add({
    id: '10.1.2',
    description: 'Send a 64 KiB binary message auto-fragmented into frames of 1300 bytes.',
    run: (p) => p.sendBinary(b64, { fragmentSize: 1300 }),
    expect: { echo: [binary(b64)] },
  });
  const m1 = asciiText(MiB);
  add({
    id: '10.1.3',
    description:
      'With maxFrameSize 16 KiB (maxMessageSize 2 MiB): a 1 MiB text message in 16 KiB fragments is reassembled.',
    run: (p) => p.sendText(m1, { fragmentSize: 16 * KiB }),
    expect: { echo: [text(m1)] },
    options: { maxFrameSize: 16 * KiB, maxMessageSize: 2 * MiB, timeout: 10_000 },
  });
  const bm1 = randomBytesSeeded(MiB, 13);
  add({
    id: '10.1.4',
    description:
      'With maxFrameSize 16 KiB (maxMessageSize 2 MiB): a 1 MiB binary message in 16 KiB fragments is reassembled.',
    run: (p) => p.sendBinary(bm1, { fragmentSize: 16 * KiB }),
    expect: { echo: [binary(bm1)] },
    options: { maxFrameSize: 16 * KiB, maxMessageSize: 2 * MiB, timeout: 10_000 },
  });
  const b100 = randomBytesSeeded(100 * KiB, 14);
  add({
    id: '10.1.5',
    description: 'With maxFrameSize 1 KiB: a 100 KiB binary message in 1000-byte fragments is reassembled.',
    run: (p) => p.sendBinary(b100, { fragmentSize: 1000 }),
    expect: { echo: [binary(b100)] },
    options: { maxFrameSize: KiB },
  });
  const mt = multibyteText(64 * KiB);
  add({
    id: '10.1.6',
    description:
      'Send 64 KiB of multi-byte UTF-8 text in 1300-byte fragments (characters split across frames).',
    run: (p) => p.sendText(mt, { fragmentSize: 1300 }),
    expect: { echo: [text(mt)] },
  });
  add({
    id: '10.1.7',
    description:
      'With maxFrameSize 1 KiB: a text and a binary message of 10 KiB each in 1 KiB fragments, back to back.',
    run: (p) =>
      p.write([
        ...p.messageFrames('text', asciiText(10 * KiB), { fragmentSize: KiB }),
        ...p.messageFrames('binary', randomBytesSeeded(10 * KiB, 15), { fragmentSize: KiB }),
      ]),
    expect: { echo: [text(asciiText(10 * KiB)), binary(randomBytesSeeded(10 * KiB, 15))] },
    options: { maxFrameSize: KiB },
  });
  add({
    id: '10.1.8',
    description:
      'With maxFrameSize 1 KiB: a 64 KiB message in 1300-byte fragments fails with 1009 (a frame over the limit).',
    run: (p) => p.sendText(t64, { fragmentSize: 1300 }),
    expect: { fail: { codes: [1009] } },
    options: { maxFrameSize: KiB },
  });
  return cases;
}
