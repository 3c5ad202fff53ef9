export { type BenchOptions, type BenchResult, runBench } from './bench.js';
export { type ConnectOptions, runConnect } from './connect.js';
export { createProgram, main, type ProgramResult, USAGE_ERROR } from './program.js';
export { ALL_PATHS, DEFAULT_HOST, runServe, type ServeHandle, type ServeOptions } from './serve.js';
export { type CliIo, formatBinary, parseHeader, parsePort, parseSize } from './util.js';
