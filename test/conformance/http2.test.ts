/**
 * The conformance suite over HTTP/2 (RFC 8441): the same cases as conformance.test.ts, in
 * both directions, with the fuzzing peer's raw byte stream carried by an extended CONNECT
 * stream on an h2c session instead of a TCP connection. Our server listens with
 * `http2: true`; our client connects with `http2: true`. END_STREAM stands for the TCP
 * FIN, so "the server closes TCP first" (RFC 6455 §7.1.1) is judged on the streams.
 *
 * Reports go to test-results/conformance/h2-*. CONFORMANCE_FAMILIES=1,7 runs only some.
 */
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { defineCase } from './cases/common.js';
import { FAMILIES } from './cases/index.js';
import { text } from './harness/peer.js';
import { summarize, writeJson, writeMarkdown } from './harness/report.js';
import { runOne } from './harness/runner.js';
import { DIRECTIONS, runFamilies } from './harness/suite.js';
import type { CaseResult } from './harness/types.js';

const CONCURRENCY = 3;
/** Issue 12 asks for at least families 1-7 and 9 over HTTP/2. */
const H2_FAMILIES = [1, 2, 3, 4, 5, 6, 7, 9, 10, 12, 13];

const selected = (process.env.CONFORMANCE_FAMILIES ?? '')
  .split(',')
  .map((s) => Number(s.trim()))
  .filter((n) => n > 0);
const families = FAMILIES.filter((f) => (selected.length > 0 ? selected : H2_FAMILIES).includes(f.family));
const reportDir = fileURLToPath(new URL('../../test-results/conformance/', import.meta.url));

describe('conformance over HTTP/2 (RFC 8441 extended CONNECT, h2c)', () => {
  let results: CaseResult[] = [];

  beforeAll(async () => {
    const started = performance.now();
    results = await runFamilies(families, 'h2', CONCURRENCY);
    const meta = {
      generated: new Date().toISOString(),
      node: process.version,
      wallMs: Math.round(performance.now() - started),
      transport: 'h2',
    };
    const summary = summarize(
      results,
      families.map((f) => ({ family: f.family, name: f.name })),
    );
    mkdirSync(reportDir, { recursive: true });
    writeJson(`${reportDir}h2-report.json`, results, summary, meta);
    writeMarkdown(`${reportDir}h2-summary.md`, summary, meta);
  }, 280_000);

  it.runIf(selected.length === 0)('runs families 1-7 and 9 in both directions', () => {
    for (const fam of [1, 2, 3, 4, 5, 6, 7, 9])
      for (const d of DIRECTIONS)
        expect(results.filter((r) => r.family === fam && r.direction === d).length).toBeGreaterThan(0);
    for (const d of DIRECTIONS) expect(results.filter((r) => r.direction === d).length).toBeGreaterThan(150);
  });

  for (const f of families) {
    const cases = f.cases();
    for (const d of DIRECTIONS) {
      const count = cases.filter((c) => c.directions.includes(d)).length;
      if (count === 0) continue;
      it(`h2 family ${f.family} (${f.name}), direction ${d}: ${count} cases, every non-informational case strict OK`, () => {
        const mine = results.filter((r) => r.family === f.family && r.direction === d);
        expect(mine.length).toBe(count);
        const bad = mine
          .filter((r) => !r.informational && r.outcome !== 'OK')
          .map((r) => `${r.id} ${r.outcome}: ${r.notes.join(' | ')}`);
        expect(bad, `cases not strict OK over h2:\n${bad.join('\n')}`).toEqual([]);
        for (const r of mine.filter((x) => x.informational)) expect(r.outcome).toBe('INFORMATIONAL');
      });
    }
  }

  it('grades deviations over HTTP/2 as deviations (negative controls)', async () => {
    const wrongEcho = defineCase({
      id: 'x.h2.1',
      family: 0,
      description: 'expects an echo that is not what was sent',
      run: (p) => p.sendText('sent'),
      expect: { echo: [text('something else')] },
      options: { timeout: 800 },
    });
    const wrongFail = defineCase({
      id: 'x.h2.2',
      family: 0,
      description: 'expects a failure for a valid message',
      run: (p) => p.sendText('valid'),
      expect: { fail: true },
      options: { timeout: 800 },
    });
    for (const d of DIRECTIONS) {
      expect((await runOne(wrongEcho, d, 'h2')).outcome).toBe('FAILED');
      expect((await runOne(wrongFail, d, 'h2')).outcome).toBe('FAILED');
    }
  });
});
