import { fileURLToPath } from 'node:url';
import { configDefaults, defineConfig } from 'vitest/config';

const src = (p: string) => fileURLToPath(new URL(p, import.meta.url));

export default defineConfig({
  resolve: {
    // Tests run against the TypeScript sources; `tsc -b` separately checks the build.
    alias: [
      { find: /^@wskit\/core\/protocol$/, replacement: src('./packages/core/src/protocol/index.ts') },
      { find: /^@wskit\/core$/, replacement: src('./packages/core/src/index.ts') },
      { find: /^@wskit\/express$/, replacement: src('./packages/express/src/index.ts') },
      { find: /^@wskit\/koa$/, replacement: src('./packages/koa/src/index.ts') },
      { find: /^@wskit\/fastify$/, replacement: src('./packages/fastify/src/index.ts') },
      { find: /^@wskit\/redis$/, replacement: src('./packages/redis/src/index.ts') },
      { find: /^@wskit\/metrics\/otel$/, replacement: src('./packages/metrics/src/otel.ts') },
      { find: /^@wskit\/metrics$/, replacement: src('./packages/metrics/src/index.ts') },
    ],
  },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'test/**/*.test.ts'],
    // Soak tests (many cycles, long fuzzing) have their own run: vitest.soak.config.ts.
    exclude: [...configDefaults.exclude, '**/*.soak.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
  },
});
