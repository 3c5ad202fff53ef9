/**
 * Family 9 — limits and performance: large messages in one frame, in many fragments and in
 * many small writes, round-trip series, and the size limits (maxFrameSize and
 * maxMessageSize, checked from the frame header before the payload arrives). Durations
 * are reported for information; the outcome is judged on correctness only.
 */
import { binary, OP, text } from '../harness/peer.js';
import type { Expectation } from '../harness/types.js';
import { asciiText, KiB, MiB, randomBytesSeeded } from '../harness/util.js';
import { type Case, defineCase } from './common.js';

const human = (n: number) => (n >= MiB ? `${n / MiB} MiB` : n >= KiB ? `${n / KiB} KiB` : `${n} B`);

export function limitCases(): Case[] {
  const cases: Case[] = [];
  const add = (c: Omit<Case, 'family' | 'directions'>) => cases.push(defineCase({ ...c, family: 9 }));
  const slow = { timeout: 30_000 };
  const payloads = new Map<string, Buffer>();
  // Payloads are built lazily and shared, so the suite holds each size once.
  const payload = (type: 'text' | 'binary', n: number) => {
    const key = `${type}:${n}`;
    let b = payloads.get(key);
    if (b === undefined) {
      b = type === 'text' ? asciiText(n) : randomBytesSeeded(n, n ^ 0x5bd1e995);
      payloads.set(key, b);
    }
    return b;
  };
  const item = (type: 'text' | 'binary', n: number) =>
    type === 'text' ? text(payload(type, n)) : binary(payload(type, n));
  // Expectations build their payloads on first use too (a getter), not when cases are listed.
  const lazy = (type: 'text' | 'binary', n: number, count = 1): Expectation => ({
    get echo() {
      return Array.from({ length: count }, () => item(type, n));
    },
  });

  const types = [
    { sub: 0, type: 'text' as const },
    { sub: 1, type: 'binary' as const },
  ];
  // 9.1/9.2: one frame.
  for (const t of types) {
    [64 * KiB, 256 * KiB, MiB, 4 * MiB, 16 * MiB].forEach((n, i) => {
      add({
        id: `9.${1 + t.sub}.${i + 1}`,
        description: `Send a ${t.type} message of ${human(n)} in one frame.`,
        run: (p) => p.sendMessage(t.type, payload(t.type, n)),
        expect: lazy(t.type, n),
        options: slow,
      });
    });
  }
  // 9.3/9.4: 4 MiB in fragments.
  const fragmentSizes = [64, 256, KiB, 4 * KiB, 16 * KiB, 64 * KiB, 256 * KiB, MiB, 4 * MiB];
  for (const t of types) {
    fragmentSizes.forEach((f, i) => {
      add({
        id: `9.${3 + t.sub}.${i + 1}`,
        description: `Send a ${t.type} message of 4 MiB in fragments of ${human(f)}.`,
        run: (p) => p.sendMessage(t.type, payload(t.type, 4 * MiB), { fragmentSize: f }),
        expect: lazy(t.type, 4 * MiB),
        options: slow,
      });
    });
  }
  // 9.5/9.6: 1 MiB in one frame, written in small chops.
  const chops = [64, 128, 256, 512, 1024, 2048];
  for (const t of types) {
    chops.forEach((c, i) => {
      add({
        id: `9.${5 + t.sub}.${i + 1}`,
        description: `Send a ${t.type} message of 1 MiB in one frame, written in pieces of ${c} bytes.`,
        run: (p) => p.sendMessage(t.type, payload(t.type, MiB), { chop: c }),
        expect: lazy(t.type, MiB),
        options: slow,
      });
    });
  }
  // 9.7/9.8: round trips, one message at a time.
  const rtSizes = [0, 16, 64, 256, 1024, 4096];
  for (const t of types) {
    rtSizes.forEach((n, i) => {
      add({
        id: `9.${7 + t.sub}.${i + 1}`,
        description: `Send 500 ${t.type} messages of ${n} bytes one after the other, each after the previous echo.`,
        run: async (p) => {
          for (let k = 1; k <= 500; k++) {
            await p.sendMessage(t.type, payload(t.type, n));
            if (!(await p.waitItems(k, 5000))) return;
          }
        },
        expect: lazy(t.type, n, 500),
        options: slow,
      });
    });
  }

  // 9.9: limits (correctness).
  const limit = 64 * KiB;
  const limited = { maxFrameSize: limit, maxMessageSize: limit };
  add({
    id: '9.9.1',
    description: `With maxFrameSize ${human(limit)}: a frame of ${human(limit)} + 1 fails with 1009 from its header, before the payload is sent.`,
    run: async (p) => {
      const f = p.frame({ opcode: OP.BINARY, payload: randomBytesSeeded(limit + 1, 1) });
      const header = 10 + (p.masked ? 4 : 0);
      await p.write(f.subarray(0, header));
      await p.waitFailure();
      p.mark('payload');
      await p.write(f.subarray(header));
    },
    expect: { fail: { codes: [1009] }, failBefore: 'payload' },
    options: limited,
  });
  add({
    id: '9.9.2',
    description: `With maxMessageSize ${human(limit)}: a message in 3 fragments of 32 KiB fails with 1009 at the third fragment's header.`,
    run: async (p) => {
      const frames = p.messageFrames('binary', randomBytesSeeded(96 * KiB, 2), { fragmentSize: 32 * KiB });
      await p.write(frames.slice(0, 2));
      const header = 4 + (p.masked ? 4 : 0);
      await p.write(frames[2]!.subarray(0, header));
      await p.waitFailure();
      p.mark('payload');
      await p.write(frames[2]!.subarray(header));
    },
    expect: { fail: { codes: [1009] }, failBefore: 'payload' },
    options: limited,
  });
  add({
    id: '9.9.3',
    description: 'A frame header announcing 2^53-1 bytes fails with 1009 at once.',
    run: (p) => {
      const head = Buffer.from([
        0x82,
        (p.masked ? 0x80 : 0) | 127,
        0x00,
        0x1f,
        0xff,
        0xff,
        0xff,
        0xff,
        0xff,
        0xff,
      ]);
      return p.write(
        Buffer.concat([head, p.masked ? Buffer.from([1, 2, 3, 4]) : Buffer.alloc(0), Buffer.alloc(100)]),
      );
    },
    expect: { fail: { codes: [1009] } },
  });
  add({
    id: '9.9.4',
    description: `With maxMessageSize ${human(limit)}: a message of exactly ${human(limit)} in 4 fragments is echoed.`,
    run: (p) => p.sendBinary(randomBytesSeeded(limit, 4), { fragmentSize: limit / 4 }),
    expect: { echo: [binary(randomBytesSeeded(limit, 4))] },
    options: limited,
  });
  add({
    id: '9.9.5',
    description: `With maxFrameSize ${human(limit)}: a frame of exactly ${human(limit)} is echoed.`,
    run: (p) => p.sendText(asciiText(limit)),
    expect: { echo: [text(asciiText(limit))] },
    options: limited,
  });
  add({
    id: '9.9.6',
    description: `With maxMessageSize ${human(limit)}: a text message of ${human(limit)} + 1 in one frame fails with 1009.`,
    run: (p) => p.sendText(asciiText(limit + 1)),
    expect: { fail: { codes: [1009] } },
    options: limited,
  });
  add({
    id: '9.9.7',
    description: `With maxMessageSize ${human(limit)}: many small fragments adding up to ${human(limit)} + 1 fail with 1009.`,
    run: (p) => p.sendBinary(randomBytesSeeded(limit + 1, 5), { fragmentSize: 1000 }),
    expect: { fail: { codes: [1009] } },
    options: limited,
  });
  return cases;
}
