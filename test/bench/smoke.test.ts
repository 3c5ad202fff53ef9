import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');

// bench/smoke.mjs does a real bench run with tiny numbers (every group but deflate) and
// checks the report's rows, the echo counts and the SVG chart; no timing assertions.
it('the benchmark runs end to end and writes every row and the chart', () => {
  const run = spawnSync(process.execPath, [join(ROOT, 'bench/smoke.mjs')], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 240_000,
  });
  expect(run.stderr + run.stdout).not.toMatch(/^FAIL/m);
  expect(run.status, run.stdout.slice(-3000) + run.stderr.slice(-3000)).toBe(0);
}, 300_000);
