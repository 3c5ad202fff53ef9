// The soak tests (*.soak.test.ts): leak cycles, no-loss runs, coverage-guided fuzzing.
// `npm test` runs them in a short form; `npm run soak` sets WSKIT_SOAK=1 for the long one.
// (Not mergeConfig: it would concatenate the default run's include and exclude lists.)
import { configDefaults, defineConfig } from 'vitest/config';
import base from './vitest.config.js';

export default defineConfig({
  ...base,
  test: {
    ...base.test,
    include: [
      'packages/*/test/**/*.soak.test.ts',
      'test/**/*.soak.test.ts',
      // Unit tests whose property runs are short in the default run, long here.
      ...(process.env.WSKIT_SOAK === '1' ? ['packages/core/test/utf8.test.ts'] : []),
    ],
    exclude: [...configDefaults.exclude],
    testTimeout: 600_000,
  },
});
