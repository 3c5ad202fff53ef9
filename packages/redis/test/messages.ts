import { expect } from 'vitest';
import type { Received } from './harness.js';

/** Every byte value, so that a payload that is not carried byte for byte shows. */
const ALL_BYTES = Buffer.from(Array.from({ length: 256 }, (_, i) => i));

/** Message `seq` of publisher `pub`: even ones text (UTF-8 beyond ASCII), odd ones binary. */
export function message(pub: number, seq: number): string | Buffer {
  if (seq % 2 === 0) return `${pub}:${seq}:héllo ✓`;
  return Buffer.concat([Buffer.from([0xff, pub, seq >> 8, seq & 0xff]), ALL_BYTES]);
}

export function parse(m: Received): { pub: number; seq: number } {
  if (m.type === 'text') {
    const [pub, seq, rest] = m.data.toString('utf8').split(':');
    expect(rest).toBe('héllo ✓');
    return { pub: Number(pub), seq: Number(seq) };
  }
  expect(m.data[0]).toBe(0xff);
  expect(m.data.subarray(4).equals(ALL_BYTES)).toBe(true);
  return { pub: m.data[1]!, seq: (m.data[2]! << 8) | m.data[3]! };
}

/**
 * Asserts `got` holds exactly the messages `expected[pub]` (lists of sequence numbers) of
 * each publisher, once each, in publish order per publisher, with the right type.
 */
export function expectExactlyOnceInOrder(got: Received[], expected: Map<number, number[]>): void {
  const seen = new Map<number, number[]>();
  for (const m of got) {
    const { pub, seq } = parse(m);
    expect(m.type).toBe(seq % 2 === 0 ? 'text' : 'binary');
    const list = seen.get(pub) ?? [];
    seen.set(pub, list);
    list.push(seq);
  }
  for (const [pub, seqs] of expected) expect(seen.get(pub) ?? [], `publisher ${pub}`).toEqual(seqs);
  for (const pub of seen.keys()) expect(expected.has(pub), `unexpected publisher ${pub}`).toBe(true);
}

export const range = (from: number, to: number): number[] =>
  Array.from({ length: to - from }, (_, i) => from + i);
