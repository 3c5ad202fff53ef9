// The `wskit` command, also callable from code (tests, scripts). Pinned by test/api/exports.test.ts.
export { type BenchOptions, type BenchResult, runBench } from './bench.js';
export { type ConnectOptions, runConnect } from './connect.js';
export { createProgram, main, type ProgramResult } from './program.js';
export { runServe, type ServeHandle, type ServeOptions } from './serve.js';
export type { CliIo } from './util.js';
