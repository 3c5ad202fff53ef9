#!/usr/bin/env node
// The whole test suite, as CI runs it:
//  1. set-up: system packages the interop suites talk to, install, build (= type check);
//  2. lint;
//  3. every vitest suite on this Node (20), conformance included;
//  4. the package and ws-interop suites again on Node 22 and 24 (binaries from the npm
//     registry's `node` package), unless WSKIT_NODE_MATRIX=0;
//  5. one closing line "N passed, N failed" over all of it.
// Extra arguments go to the main vitest run (e.g. a path filter); they turn the matrix off.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const results = join(root, 'test-results');
const step = (cmd, args, env = {}) =>
  spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } }).status ?? 1;

const totals = { passed: 0, failed: 0, skipped: 0 };
const finish = (code, note = '') => {
  const skipped = totals.skipped ? `, ${totals.skipped} skipped` : '';
  console.log(`${totals.passed} passed, ${totals.failed} failed${skipped}${note}`);
  process.exit(code);
};

if (step('node', ['scripts/setup.mjs', '--system']) !== 0) {
  totals.failed++;
  finish(1, ' (set-up or type check failed)');
}
if (step(join(root, 'node_modules/.bin/biome'), ['check', '.']) !== 0) {
  totals.failed++;
  finish(1, ' (lint failed)');
}

rmSync(results, { recursive: true, force: true });
mkdirSync(results, { recursive: true });

/** Runs vitest under `node` (a command line prefix) and adds its counts to the totals. */
function vitest(label, nodeCommand, args) {
  const report = join(results, `${label}.json`);
  console.log(`\n== vitest on ${label} ==`);
  const [cmd, ...prefix] = nodeCommand;
  const status = step(cmd, [
    ...prefix,
    join(root, 'node_modules/vitest/vitest.mjs'),
    'run',
    '--reporter=default',
    '--reporter=json',
    `--outputFile.json=${report}`,
    ...args,
  ]);
  if (!existsSync(report)) {
    totals.failed++;
    console.log(`(${label}: no test report)`);
    return 1;
  }
  const r = JSON.parse(readFileSync(report, 'utf8'));
  // A file that failed to load has no assertion results: count it as a failure.
  const brokenFiles = (r.testResults ?? []).filter(
    (t) => t.status === 'failed' && t.assertionResults.length === 0,
  );
  totals.passed += r.numPassedTests;
  totals.failed += r.numFailedTests + brokenFiles.length;
  totals.skipped += (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
  return status;
}

const userArgs = process.argv.slice(2);
let status = vitest(`node-${process.versions.node.split('.')[0]}`, [process.execPath], userArgs);

if (userArgs.length === 0 && process.env.WSKIT_NODE_MATRIX !== '0') {
  for (const major of ['22', '24']) {
    const s = vitest(
      `node-${major}`,
      ['npx', '--yes', `node@${major}`],
      ['packages', 'test/interop/ws-peer.test.ts'],
    );
    if (s !== 0) status = s;
  }
}
finish(status === 0 && totals.failed === 0 ? 0 : 1);
