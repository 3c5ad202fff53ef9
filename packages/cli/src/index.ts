export { type BenchOptions, type BenchProgress, type BenchResult, progressBar, runBench } from './bench.js';
export { type ConnectOptions, describeConnection, runConnect } from './connect.js';
export { explainConnectError } from './hints.js';
export { createProgram, main, type ProgramResult, USAGE_ERROR } from './program.js';
export { ALL_PATHS, DEFAULT_HOST, runServe, type ServeHandle, type ServeOptions } from './serve.js';
export { type CliIo, formatBinary, parseHeader, parsePort, parseSize } from './util.js';
