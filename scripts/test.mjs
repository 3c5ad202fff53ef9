#!/usr/bin/env node
// The whole test suite, as CI runs it:
//  1. set-up: system packages the interop suites talk to, install, build (= type check);
//  2. lint of the files git tracks (scripts/lint.mjs: untracked scratch files don't count);
//  3. every vitest suite on this Node (20), conformance included, then the soak tests
//     (vitest.soak.config.ts) in their short form (`npm run soak` runs the long one);
//  4. the package and ws-interop suites again on Node 22 and 24 (binaries from the npm
//     registry's `node` package), unless WSKIT_NODE_MATRIX=0;
//  5. a line per Node version with what ran there, then one closing line
//     "N passed, N failed" that counts each test once: a test that ran on several Node
//     versions passed if it passed on all of them, and failed otherwise.
// Extra arguments go to the main vitest run (e.g. a path filter); they turn the matrix off.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const results = join(root, 'test-results');
const step = (cmd, args, env = {}) =>
  spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } }).status ?? 1;

/** Each test once, by file and full name: its worst outcome over the Node versions. */
const outcomes = new Map();
/** Per Node version: what ran there. */
const legs = [];
// Failed anywhere is failed; passed anywhere else is passed; skipped everywhere is skipped.
const RANK = { skipped: 0, passed: 1, failed: 2 };
const record = (key, outcome) => {
  const before = outcomes.get(key);
  if (before === undefined || RANK[outcome] > RANK[before]) outcomes.set(key, outcome);
};
/** Set-up and lint count as one failed check each. */
let stepFailures = 0;
const finish = (code, note = '') => {
  for (const leg of legs) {
    const skipped = leg.skipped ? `, ${leg.skipped} skipped` : '';
    console.log(`${leg.label} (${leg.what}): ${leg.passed} passed, ${leg.failed} failed${skipped}`);
  }
  const count = (o) => [...outcomes.values()].filter((v) => v === o).length;
  const failed = count('failed') + stepFailures;
  const skipped = count('skipped') ? `, ${count('skipped')} skipped` : '';
  console.log(`${count('passed')} passed, ${failed} failed${skipped}${note}`);
  process.exit(code);
};

if (step('node', ['scripts/setup.mjs', '--system']) !== 0) {
  stepFailures++;
  finish(1, ' (set-up or type check failed)');
}
if (step('node', ['scripts/lint.mjs']) !== 0) {
  stepFailures++;
  finish(1, ' (lint failed)');
}

rmSync(results, { recursive: true, force: true });
mkdirSync(results, { recursive: true });

/** Runs vitest under `node` (a command line prefix) and records each test's outcome. */
function vitest(label, what, nodeCommand, args) {
  const report = join(results, `${label.toLowerCase().replace(/\W+/g, '-')}.json`);
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
  const leg = { label, what, passed: 0, failed: 0, skipped: 0 };
  legs.push(leg);
  if (!existsSync(report)) {
    leg.failed++;
    record(`${label}: no test report`, 'failed');
    console.log(`(${label}: no test report)`);
    return 1;
  }
  const r = JSON.parse(readFileSync(report, 'utf8'));
  for (const file of r.testResults ?? []) {
    const name = relative(root, file.name);
    // A file that failed to load has no assertion results: it counts as one failure.
    if (file.status === 'failed' && file.assertionResults.length === 0) {
      leg.failed++;
      record(`${name} (failed to load)`, 'failed');
    }
    for (const t of file.assertionResults) {
      const outcome = t.status === 'passed' ? 'passed' : t.status === 'failed' ? 'failed' : 'skipped';
      leg[outcome]++;
      record(`${name} > ${t.fullName}`, outcome);
    }
  }
  return status;
}

const userArgs = process.argv.slice(2);
const major = process.versions.node.split('.')[0];
let status = vitest(
  `Node ${major}`,
  userArgs.length === 0 ? 'full suite' : userArgs.join(' '),
  [process.execPath],
  userArgs,
);

if (userArgs.length === 0) {
  // The soak tests in their short form (`npm run soak` is the long one).
  const s = vitest(
    `Node ${major} soak`,
    'soak tests, short form',
    [process.execPath],
    ['--config', 'vitest.soak.config.ts'],
  );
  if (s !== 0) status = s;
}

if (userArgs.length === 0 && process.env.WSKIT_NODE_MATRIX !== '0') {
  for (const other of ['22', '24']) {
    const s = vitest(
      `Node ${other}`,
      'packages + ws interop',
      ['npx', '--yes', `node@${other}`],
      ['packages', 'test/interop/ws-peer.test.ts'],
    );
    if (s !== 0) status = s;
  }
}
finish(status === 0 && [...outcomes.values()].every((o) => o !== 'failed') ? 0 : 1);
