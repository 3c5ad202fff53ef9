#!/usr/bin/env node
// The whole test suite, as CI runs it: set-up (system packages, install, build = type
// check), lint, every vitest suite, then one closing line "N passed, N failed".
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const step = (cmd, args) => {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  return r.status ?? 1;
};

if (step('node', ['scripts/setup.mjs', '--system']) !== 0) {
  console.log('0 passed, 1 failed (set-up or type check failed)');
  process.exit(1);
}
if (step('node_modules/.bin/biome', ['check', '.']) !== 0) {
  console.log('0 passed, 1 failed (lint failed)');
  process.exit(1);
}
mkdirSync(join(root, 'test-results'), { recursive: true });
const report = join(root, 'test-results', 'vitest.json');
const status = step('node_modules/.bin/vitest', [
  'run',
  '--reporter=default',
  '--reporter=json',
  `--outputFile.json=${report}`,
  ...process.argv.slice(2),
]);
if (existsSync(report)) {
  const r = JSON.parse(readFileSync(report, 'utf8'));
  const skipped = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
  const failedSuites = (r.testResults ?? []).filter((t) => t.status === 'failed' && t.assertionResults.length === 0);
  const failed = r.numFailedTests + failedSuites.length;
  console.log(`${r.numPassedTests} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
} else {
  console.log(`0 passed, 1 failed (no test report)`);
}
process.exit(status);
