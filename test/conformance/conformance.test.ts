import { mkdirSync } from 'node:fs';
/**
 * The conformance suite: every case of every family, in both directions, graded the way
 * the Autobahn TestSuite grades them. Writes report.json, report.html and summary.md next
 * to this file, then asserts that every non-informational case is strict OK.
 *
 * CONFORMANCE_FAMILIES=1,7 runs only some families (the 400-case floor is then skipped).
 */
import { fileURLToPath } from 'node:url';
import { constants, deflateRawSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { defineCase } from './cases/common.js';
import { utf8Samples } from './cases/f06-utf8.js';
import { FAMILIES } from './cases/index.js';
import { OP, text } from './harness/peer.js';
import { PeerDeflate } from './harness/pmd.js';
import { summarize, writeHtml, writeJson, writeMarkdown } from './harness/report.js';
import { runOne } from './harness/runner.js';
import { DIRECTIONS, runFamilies } from './harness/suite.js';
import type { Case, CaseResult, Direction } from './harness/types.js';
import { randomBytesSeeded } from './harness/util.js';

/** (family, direction) units run at once; the cases of one unit run one after the other. */
const CONCURRENCY = 3;

const selected = (process.env.CONFORMANCE_FAMILIES ?? '')
  .split(',')
  .map((s) => Number(s.trim()))
  .filter((n) => n > 0);
const families = selected.length > 0 ? FAMILIES.filter((f) => selected.includes(f.family)) : FAMILIES;
const here = (name: string) => fileURLToPath(new URL(name, import.meta.url));
// `npm run conformance` publishes the reports next to this file (linked from README.md);
// other runs (npm test, CI) write them to test-results/ and leave the tree clean.
const reportDir =
  process.env.WSKIT_CONFORMANCE_PUBLISH === '1' ? here('.') : here('../../test-results/conformance/');
const out = (name: string) => {
  mkdirSync(reportDir, { recursive: true });
  return `${reportDir.replace(/\/$/, '')}/${name}`;
};

const runAll = () => runFamilies(families, 'http/1.1', CONCURRENCY);

describe('conformance (Autobahn TestSuite case families)', () => {
  let results: CaseResult[] = [];

  beforeAll(async () => {
    const started = performance.now();
    results = await runAll();
    const meta = {
      generated: new Date().toISOString(),
      node: process.version,
      wallMs: Math.round(performance.now() - started),
    };
    const infos = families.map((f) => ({ family: f.family, name: f.name }));
    const summary = summarize(results, infos);
    writeJson(out('report.json'), results, summary, meta);
    writeHtml(out('report.html'), results, summary, infos, meta);
    writeMarkdown(out('summary.md'), summary, meta);
  }, 280_000);

  it.runIf(selected.length === 0)('runs at least 400 cases across both directions', () => {
    expect(results.length).toBeGreaterThanOrEqual(400);
    for (const d of DIRECTIONS) expect(results.filter((r) => r.direction === d).length).toBeGreaterThan(150);
  });

  for (const f of families) {
    const cases = f.cases();
    for (const d of DIRECTIONS) {
      const count = cases.filter((c) => c.directions.includes(d)).length;
      if (count === 0) continue;
      it(`family ${f.family} (${f.name}), direction ${d}: ${count} cases, every non-informational case strict OK`, () => {
        const mine = results.filter((r) => r.family === f.family && r.direction === d);
        expect(mine.length).toBe(count);
        const bad = mine
          .filter((r) => !r.informational && r.outcome !== 'OK')
          .map((r) => `${r.id} ${r.outcome}: ${r.notes.join(' | ')}`);
        expect(bad, `cases not strict OK:\n${bad.join('\n')}`).toEqual([]);
        // Informational cases are recorded as such, never graded.
        for (const r of mine.filter((x) => x.informational)) expect(r.outcome).toBe('INFORMATIONAL');
      });
    }
  }
});

describe('the harness itself', () => {
  it('the reference UTF-8 checker agrees with a fatal TextDecoder on every sample', () => {
    const decoder = new TextDecoder('utf-8', { fatal: true });
    const samples = utf8Samples();
    expect(samples.length).toBeGreaterThan(100);
    for (const s of samples) {
      let decodes = true;
      try {
        decoder.decode(s.bytes);
      } catch {
        decodes = false;
      }
      expect(s.valid, `${s.id} ${s.label}`).toBe(decodes);
    }
    // Both kinds are represented.
    expect(samples.filter((s) => s.valid).length).toBeGreaterThan(30);
    expect(samples.filter((s) => !s.valid).length).toBeGreaterThan(50);
  });

  it('grades deviations as deviations (negative controls)', async () => {
    const controls: Array<[Case, Direction, CaseResult['outcome']]> = [
      [
        defineCase({
          id: 'x.1',
          family: 0,
          description: 'expects an echo that is not what was sent',
          run: (p) => p.sendText('sent'),
          expect: { echo: [text('something else')] },
        }),
        'server',
        'FAILED',
      ],
      [
        defineCase({
          id: 'x.2',
          family: 0,
          description: 'expects a failure for a valid message',
          run: (p) => p.sendText('valid'),
          expect: { fail: true },
        }),
        'client',
        'FAILED',
      ],
      [
        defineCase({
          id: 'x.3',
          family: 0,
          description: 'expects close code 1001 where 1000 is echoed',
          run: (p) => p.close(1000),
          expect: { close: [1001] },
        }),
        'server',
        'FAILED',
      ],
      [
        defineCase({
          id: 'x.4',
          family: 0,
          description: 'marks the fail-fast point before the invalid byte is sent',
          run: async (p) => {
            p.mark('rest');
            await p.send({ opcode: OP.TEXT, payload: Buffer.from([0xc0, 0xaf]) });
          },
          expect: { fail: { codes: [1007] }, failBefore: 'rest' },
        }),
        'server',
        'NON-STRICT',
      ],
      [
        defineCase({
          id: 'x.5',
          family: 0,
          description: 'expects 1002 where 1007 is right',
          run: (p) => p.send({ opcode: OP.TEXT, payload: Buffer.from([0xff]) }),
          expect: { fail: true },
        }),
        'client',
        'NON-STRICT',
      ],
    ];
    for (const [c, d, outcome] of controls) {
      const r = await runOne(c, d);
      expect(r.outcome, `${c.id}: ${r.notes.join(' | ')}`).toBe(outcome);
    }
  });

  it('the peer inflates with exactly the agreed window and context rules', () => {
    const block = randomBytesSeeded(4096, 77);
    const compress = (data: Buffer, dictionary?: Buffer) => {
      const out = deflateRawSync(data, {
        windowBits: 15,
        finishFlush: constants.Z_SYNC_FLUSH,
        ...(dictionary ? { dictionary } : {}),
      });
      return out.subarray(0, out.length - 4);
    };
    // A 15-bit window sender referring 4 KiB back into the previous message.
    const first = compress(block);
    const second = compress(block, block);
    const agreed15 = new PeerDeflate({
      deflateBits: 15,
      deflateNoContextTakeover: false,
      inflateBits: 15,
      inflateNoContextTakeover: false,
    });
    expect(agreed15.decompress(first).equals(block)).toBe(true);
    expect(agreed15.decompress(second).equals(block)).toBe(true);
    // With 9 bits agreed, the same stream reaches beyond the window: caught.
    const agreed9 = new PeerDeflate({
      deflateBits: 9,
      deflateNoContextTakeover: false,
      inflateBits: 9,
      inflateNoContextTakeover: false,
    });
    agreed9.decompress(first);
    expect(() => agreed9.decompress(second)).toThrow();
    // With no context takeover agreed, a reference into the previous message is caught.
    const noContext = new PeerDeflate({
      deflateBits: 15,
      deflateNoContextTakeover: true,
      inflateBits: 15,
      inflateNoContextTakeover: true,
    });
    noContext.decompress(first);
    expect(() => noContext.decompress(second)).toThrow();
  });
});
