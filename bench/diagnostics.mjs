#!/usr/bin/env node
/**
 * The cost of the diagnostics channels on the echo path: pipelined echo round trips
 * (bench/run.mjs's load generator and wskit client) against the wskit echo server with
 *   off     — nobody subscribed (the default: must cost nothing measurable),
 *   noop    — a no-op subscriber on every channel and tracing channel,
 *   metrics — @wskit/metrics' collectMetrics() (prom-client) subscribed,
 *   base    — optionally, another build of @wskit/core with nobody subscribed (e.g. the
 *             commit before the channels), given with --base path/to/core/dist/index.js.
 * Each configuration runs in its own server process; they take turns within each of the
 * repetitions (rotating order) and the median is reported, with CPU time per message.
 *
 * Usage: npx tsc -b && node bench/diagnostics.mjs [--reps 3] [--seconds 2] [--base FILE] [--only a,b]
 */
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnWorker } from './lib/ipc.mjs';
import { formatCount, median } from './lib/stats.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const argv = process.argv.slice(2);
const arg = (name, fallback) => {
  const i = argv.indexOf(name);
  return i === -1 ? fallback : argv[i + 1];
};
const REPS = Number(arg('--reps', 3));
const SECONDS = Number(arg('--seconds', 2));
const BASE = arg('--base', undefined);
const CORE = join(HERE, '../packages/core/dist/index.js');

const configs = [
  { name: 'off', core: CORE, mode: 'off' },
  { name: 'noop', core: CORE, mode: 'noop' },
  { name: 'metrics', core: CORE, mode: 'metrics' },
];
if (BASE !== undefined) configs.unshift({ name: 'base', core: resolve(BASE), mode: 'off' });
// --only base,off: a subset of the configurations (more repetitions in the same time).
const ONLY = arg('--only', undefined)?.split(',');
if (ONLY !== undefined) configs.splice(0, configs.length, ...configs.filter((c) => ONLY.includes(c.name)));

const SCENARIOS = [
  { connections: 1, size: 64, binary: false, pipeline: 16 },
  { connections: 32, size: 1024, binary: true, pipeline: 16 },
];
const rotate = (list, n) => list.map((_, i) => list[(i + n) % list.length]);
const log = (line) => process.stderr.write(`${line}\n`);

const pairs = {};
for (const c of configs) {
  const server = spawnWorker(join(HERE, 'lib/diag-server.mjs'), `${c.name} server`);
  const client = spawnWorker(join(HERE, 'lib/client-process.mjs'), `${c.name} client`);
  const urls = await server.call('start', { core: c.core, mode: c.mode });
  await client.call('init', { kind: 'wskit' });
  pairs[c.name] = { server, client, urls };
}

const cpuOf = async (pair, fn) => {
  const [s0, c0] = await Promise.all([pair.server.call('cpu'), pair.client.call('cpu')]);
  const value = await fn();
  const [s1, c1] = await Promise.all([pair.server.call('cpu'), pair.client.call('cpu')]);
  const ms = (a, b) => (b.user - a.user + b.system - a.system) / 1000;
  return { value, serverCpuMs: ms(s0, s1), clientCpuMs: ms(c0, c1) };
};

const rows = [];
for (const scenario of SCENARIOS) {
  const label = `echo ${scenario.size} B ${scenario.binary ? 'binary' : 'text'}, ${scenario.connections} conn × ${scenario.pipeline}`;
  for (const c of configs) {
    const p = pairs[c.name];
    await p.client.call('echo', { ...scenario, url: p.urls.echo, duration: 0.3 }); // warm-up
  }
  const runs = Object.fromEntries(configs.map((c) => [c.name, []]));
  for (let rep = 0; rep < REPS; rep++) {
    for (const c of rotate(configs, rep)) {
      const p = pairs[c.name];
      const { value, serverCpuMs } = await cpuOf(p, () =>
        p.client.call('echo', { ...scenario, url: p.urls.echo, duration: SECONDS }),
      );
      runs[c.name].push({
        rate: value.messagesPerSecond,
        serverUs: (serverCpuMs * 1000) / Math.max(1, value.messages),
        errors: value.errors,
      });
    }
  }
  const off = median(runs.off.map((r) => r.rate));
  for (const c of configs) {
    const rs = runs[c.name];
    const rate = median(rs.map((r) => r.rate));
    const serverUs = median(rs.map((r) => r.serverUs));
    rows.push({ scenario: label, config: c.name, rate, serverUs, runs: rs.map((r) => Math.round(r.rate)) });
    log(
      `${label.padEnd(36)} ${c.name.padEnd(8)} ${formatCount(rate).padStart(9)} msg/s ` +
        `(${((rate / off - 1) * 100).toFixed(1).padStart(5)}% vs off)  server CPU ${serverUs.toFixed(2)} µs/msg  runs ${rs
          .map((r) => formatCount(r.rate))
          .join(' / ')}${rs.some((r) => r.errors > 0) ? '  ERRORS' : ''}`,
    );
  }
}
for (const p of Object.values(pairs)) {
  await p.server.call('close').catch(() => {});
  await Promise.all([p.client.stop(), p.server.stop()]);
}
process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
