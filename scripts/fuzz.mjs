#!/usr/bin/env node
/**
 * The long fuzzing run: `npm run fuzz -- --minutes 10 [--target frames,handshake] [--seed N]`.
 * Gives each target that many minutes (default 10), keeps the inputs that reach new code
 * in test/fuzz/corpus/<target>/ (commit them: the default test run replays them), and
 * writes findings to test-results/fuzz/findings/<target>/.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    target: { type: 'string', default: '' },
    seed: { type: 'string' },
  },
});
const minutes = Number(values.minutes);
if (!(minutes > 0)) {
  console.error('--minutes must be a positive number');
  process.exit(2);
}
const root = fileURLToPath(new URL('..', import.meta.url));
const env = {
  ...process.env,
  WSKIT_FUZZ_SECONDS: String(Math.round(minutes * 60)),
  WSKIT_FUZZ_SAVE: '1',
  WSKIT_FUZZ_TARGETS: values.target,
  ...(values.seed !== undefined ? { WSKIT_FUZZ_SEED: values.seed } : {}),
};
const result = spawnSync(
  'node_modules/.bin/vitest',
  ['run', '--config', 'vitest.soak.config.ts', 'test/fuzz/fuzz.soak.test.ts'],
  {
    cwd: root,
    env,
    stdio: 'inherit',
  },
);
process.exit(result.status ?? 1);
