#!/usr/bin/env node
/**
 * WebSockets over HTTP/2 (RFC 8441, h2c) against HTTP/1.1, with wskit on both ends:
 *
 *  1. 1,000 WebSockets over ONE HTTP/2 session vs 1,000 over separate TCP connections:
 *     memory per WebSocket (server and client process, heap and RSS growth after GC),
 *     handshake time (50 in flight), and echo throughput with all of them busy (64 B,
 *     one message in flight per WebSocket).
 *  2. ONE WebSocket over h2 vs over HTTP/1.1 echoing 16 KiB binary messages (8 in flight):
 *     throughput and the ratio h2 / HTTP/1.1 (issue 12's target: at least 0.8).
 *
 * Server and client each run in their own process (fresh for every measurement), so
 * their event loops and memory readings are separate. Imports the built packages.
 *
 * Usage: npx tsc -b && node bench/http2.mjs [--quick] [--count N]
 * Not part of the test run. Prints a markdown table on stdout, progress on stderr.
 */
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnWorker } from './lib/ipc.mjs';
import { median } from './lib/stats.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const countArg = argv.indexOf('--count');
const COUNT = countArg >= 0 ? Number(argv[countArg + 1]) : 1000;
const SECONDS = quick ? 1 : 3;
const REPEATS = quick ? 1 : 3;
const log = (s) => process.stderr.write(`${s}\n`);

async function withPair(fn) {
  const server = spawnWorker(join(HERE, 'lib/h2-server.mjs'), 'server');
  const client = spawnWorker(join(HERE, 'lib/h2-client.mjs'), 'client');
  try {
    return await fn(server, client);
  } finally {
    await client.call('close').catch(() => {});
    await Promise.all([client.stop(), server.stop()]);
  }
}

async function many(http2) {
  return withPair(async (server, client) => {
    const { port } = await server.call('start', { http2 });
    const s0 = await server.call('memory');
    const c0 = await client.call('memory');
    const opened = await client.call('open', { port, http2, count: COUNT, parallel: 50 });
    const want = http2 ? 'h2' : 'http/1.1';
    if (opened.transports.length !== 1 || opened.transports[0] !== want)
      throw new Error(`expected ${want}, got ${opened.transports.join(', ')}`);
    const s1 = await server.call('memory');
    const c1 = await client.call('memory');
    if (s1.clients !== COUNT) throw new Error(`server has ${s1.clients} clients`);
    const echo = await client.call('echo', { size: 64, inFlight: 1, seconds: SECONDS });
    return {
      handshakeMs: opened.ms,
      serverHeap: (s1.heapUsed - s0.heapUsed) / COUNT,
      serverRss: (s1.rss - s0.rss) / COUNT,
      clientHeap: (c1.heapUsed - c0.heapUsed) / COUNT,
      clientRss: (c1.rss - c0.rss) / COUNT,
      echoPerSecond: echo.perSecond,
    };
  });
}

async function single(http2, window) {
  return withPair(async (server, client) => {
    const { port } = await server.call('start', { http2, window });
    await client.call('open', { port, http2, count: 1, parallel: 1, window });
    await client.call('echo', { size: 16 * 1024, inFlight: 8, seconds: 0.3 }); // warm-up
    return client.call('echo', { size: 16 * 1024, inFlight: 8, seconds: SECONDS });
  });
}

const kb = (b) => `${(b / 1024).toFixed(1)} KiB`;
const n = (x) => Math.round(x).toLocaleString('en-US');

log(`bench/http2: ${COUNT} WebSockets, ${SECONDS} s echo runs, ${REPEATS} repetition(s)`);
const manyRuns = { h2: [], h1: [] };
const singleRuns = { h2: [], h2w: [], h1: [] };
/** Stream window of the tuned h2 run (session window: 16 times that). */
const WINDOW = 1024 * 1024;
for (let r = 0; r < REPEATS; r++) {
  // Alternate the order so neither mode always runs on a warmer machine.
  const order = r % 2 === 0 ? [true, false] : [false, true];
  for (const http2 of order) {
    const key = http2 ? 'h2' : 'h1';
    log(`  ${COUNT} × ${key} (repetition ${r + 1})`);
    manyRuns[key].push(await many(http2));
    log(`  1 × ${key}, 16 KiB (repetition ${r + 1})`);
    singleRuns[key].push(await single(http2));
    if (http2) {
      log(`  1 × h2 with 1 MiB stream windows, 16 KiB (repetition ${r + 1})`);
      singleRuns.h2w.push(await single(true, WINDOW));
    }
  }
}
const med = (runs, field) => median(runs.map((x) => x[field]));

const rows = [
  ['handshakes, 50 in flight (total)', (k) => `${n(med(manyRuns[k], 'handshakeMs'))} ms`],
  ['handshakes per second', (k) => n((COUNT / med(manyRuns[k], 'handshakeMs')) * 1000)],
  ['server heap per WebSocket', (k) => kb(med(manyRuns[k], 'serverHeap'))],
  ['server RSS per WebSocket', (k) => kb(med(manyRuns[k], 'serverRss'))],
  ['client heap per WebSocket', (k) => kb(med(manyRuns[k], 'clientHeap'))],
  ['client RSS per WebSocket', (k) => kb(med(manyRuns[k], 'clientRss'))],
  ['echo, 64 B, all busy (msg/s)', (k) => n(med(manyRuns[k], 'echoPerSecond'))],
];
const ratio = (a, b) => (a / b).toFixed(2);
const lines = [
  `| ${COUNT} WebSockets | one HTTP/2 session (h2c) | ${COUNT} TCP connections (HTTP/1.1) | h2 / HTTP/1.1 |`,
  '|---|---:|---:|---:|',
];
const rawOf = {
  'handshakes, 50 in flight (total)': (k) => med(manyRuns[k], 'handshakeMs'),
  'handshakes per second': (k) => COUNT / med(manyRuns[k], 'handshakeMs'),
  'server heap per WebSocket': (k) => med(manyRuns[k], 'serverHeap'),
  'server RSS per WebSocket': (k) => med(manyRuns[k], 'serverRss'),
  'client heap per WebSocket': (k) => med(manyRuns[k], 'clientHeap'),
  'client RSS per WebSocket': (k) => med(manyRuns[k], 'clientRss'),
  'echo, 64 B, all busy (msg/s)': (k) => med(manyRuns[k], 'echoPerSecond'),
};
for (const [name, fmt] of rows)
  lines.push(`| ${name} | ${fmt('h2')} | ${fmt('h1')} | ${ratio(rawOf[name]('h2'), rawOf[name]('h1'))} |`);
const s1 = med(singleRuns.h1, 'perSecond');
const mib = (k) => (med(singleRuns[k], 'bytesPerSecond') / 2 ** 20).toFixed(1);
lines.push('');
const each = (k) => singleRuns[k].map((x) => n(x.perSecond)).join(', ');
lines.push(
  '| one WebSocket, 16 KiB binary, 8 in flight | echoes/s | MiB/s each way | h2 / HTTP/1.1 | echoes/s of each run |',
);
lines.push('|---|---:|---:|---:|---|');
lines.push(`| HTTP/1.1 | ${n(s1)} | ${mib('h1')} | 1.00 | ${each('h1')} |`);
for (const [k, name] of [
  ['h2', "h2c, Node's default windows (64 KiB stream and session)"],
  ['h2w', 'h2c, 1 MiB stream windows, 16 MiB session windows'],
]) {
  const v = med(singleRuns[k], 'perSecond');
  lines.push(`| ${name} | ${n(v)} | ${mib(k)} | **${ratio(v, s1)}** | ${each(k)} |`);
}
lines.push('');
lines.push(
  `Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, load average ${loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')}; medians of ${REPEATS} run(s), ${SECONDS} s each.`,
);
process.stdout.write(`${lines.join('\n')}\n`);
