#!/usr/bin/env node
// Runs the default test suite several times in a row (3 unless --rounds N) while other
// processes keep every core busy (one `while (true)` spinner per core), and reports pass or
// fail per round with the failed tests' names: a test that passes here does not depend on
// the machine's speed. Arguments after `--` go to vitest instead of the default run, e.g.
//   node scripts/stress.mjs -- packages test/conformance test/interop
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const dash = argv.indexOf('--');
const own = dash === -1 ? argv : argv.slice(0, dash);
const vitestArgs = dash === -1 ? [] : argv.slice(dash + 1);
const roundsAt = own.indexOf('--rounds');
const rounds = roundsAt === -1 ? 3 : Number(own[roundsAt + 1]);
const cores = availableParallelism();
const results = join(root, 'test-results');
mkdirSync(results, { recursive: true });

const spinners = Array.from({ length: cores }, () =>
  spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }),
);
const stopSpinners = () => {
  for (const s of spinners) if (s.exitCode === null) s.kill('SIGKILL');
};
process.on('exit', stopSpinners);
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    stopSpinners();
    process.exit(130);
  });
}
console.log(
  `stress: ${rounds} rounds of vitest run ${vitestArgs.join(' ') || '(the default run)'}, ` +
    `${cores} spinner process(es) keeping ${cores} core(s) busy`,
);

/** One vitest run; resolves with its exit status. */
function runVitest(report) {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      [
        join(root, 'node_modules/vitest/vitest.mjs'),
        'run',
        '--reporter=dot',
        '--reporter=json',
        `--outputFile.json=${report}`,
        ...vitestArgs,
      ],
      { cwd: root, stdio: 'inherit' },
    );
    child.on('exit', (code) => resolve(code ?? 1));
  });
}

const summary = [];
for (let round = 1; round <= rounds; round++) {
  const report = join(results, `stress-round-${round}.json`);
  const started = Date.now();
  const status = await runVitest(report);
  const seconds = Math.round((Date.now() - started) / 1000);
  let line;
  if (existsSync(report)) {
    const r = JSON.parse(readFileSync(report, 'utf8'));
    const failed = [];
    for (const file of r.testResults ?? []) {
      const name = relative(root, file.name);
      if (file.status === 'failed' && file.assertionResults.length === 0)
        failed.push(`${name} (failed to load)`);
      for (const t of file.assertionResults)
        if (t.status === 'failed') failed.push(`${name} > ${t.fullName}`);
    }
    const ok = status === 0 && failed.length === 0;
    line = `round ${round}: ${ok ? 'pass' : 'FAIL'}, ${r.numPassedTests} passed, ${failed.length} failed, ${seconds} s`;
    for (const f of failed) line += `\n  failed: ${f}`;
  } else {
    line = `round ${round}: FAIL, no test report (vitest exit ${status}), ${seconds} s`;
  }
  summary.push({ ok: line.includes(': pass,'), line });
  console.log(`\nstress ${line}`);
}
stopSpinners();
console.log('\nstress summary');
for (const s of summary) console.log(s.line);
process.exit(summary.every((s) => s.ok) ? 0 : 1);
