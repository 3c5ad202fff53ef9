/**
 * Coverage-guided fuzzing of the frame engine, the handshake parsers and the extension
 * header parser (engine.ts, targets.ts). A soak test (not in the default run): after
 * replaying its kept corpus (corpus/<target>/) each target gets WSKIT_FUZZ_SECONDS, by
 * default 3 in `npm test` and 30 in `npm run soak` (WSKIT_SOAK=1);
 * `npm run fuzz -- --minutes 10` is the long run, which also grows the corpus. A finding
 * is written to findings/<target>/ (not kept in git) and fails the test with its bytes.
 */
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { soak } from '../support/soak.js';
import { type FuzzReport, fuzz } from './engine.js';
import { TARGETS } from './targets.js';

const seconds = Number(process.env.WSKIT_FUZZ_SECONDS ?? soak(3, 30));
const only = (process.env.WSKIT_FUZZ_TARGETS ?? '').split(',').filter((t) => t !== '');
const saveCorpus = process.env.WSKIT_FUZZ_SAVE === '1';
const seed = Number(process.env.WSKIT_FUZZ_SEED ?? Date.now() % 0x7fffffff);
const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

function describeFindings(report: FuzzReport): string {
  return report.findings.map((f) => `${f.error}\n  input (hex): ${f.input.toString('hex')}`).join('\n');
}

describe('fuzzing (coverage-guided)', () => {
  // WSKIT_FUZZ_ONLY narrows the run to some targets: the others are not registered at all.
  for (const target of TARGETS.filter((t) => only.length === 0 || only.includes(t.name))) {
    it(
      `${target.name}: any input parses or fails with the documented error type, within the limits`,
      () => {
        const report = fuzz(target, {
          seconds,
          corpusDir: here(`./corpus/${target.name}`),
          findingsDir: here(`../../test-results/fuzz/findings/${target.name}`),
          saveCorpus,
          seed,
        });
        console.log(
          `fuzz ${target.name}: ${report.execs} execs in ${seconds} s, ${report.edges} blocks covered, ` +
            `corpus ${report.corpus} (+${report.added}), slowest ${report.slowest.ms.toFixed(1)} ms, ` +
            `coverage-guided: ${report.coverageGuided}, seed ${seed}`,
        );
        expect(report.findings, describeFindings(report)).toEqual([]);
        expect(report.execs).toBeGreaterThan(0);
      },
      seconds * 1000 * 3 + 30_000,
    );
  }
});
