#!/usr/bin/env node
/**
 * A/B check of the diagnostics channels' cost on a loaded machine, in one process: rounds
 * of pipelined 64 B echoes over loopback TCP against two echo servers, taking turns —
 *   base — another build of @wskit/core (e.g. the commit before the channels; --base FILE),
 *   this — this tree's build, with nobody subscribed (--mode off, the default) or with a
 *          no-op subscriber on every channel and tracing channel for the whole run
 *          (--mode noop).
 * The two modes need separate runs: subscribing switches the channel objects' prototype
 * (process-wide, by name), and code that saw both shapes is slower than either.
 * The client is the base build, or --client FILE (a third copy is fairest, see CLIENT). Many short rounds, and the
 * minimum and median per round; the process's CPU time per round (user + system) leaves
 * out the time it waited for a core on a busy shared machine.
 *
 * Usage: npx tsc -b && node bench/diagnostics-inproc.mjs --base FILE [--mode off|noop]
 *          [--client FILE] [--rounds 61] [--messages 10000]
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const argv = process.argv.slice(2);
const arg = (name, fallback) => {
  const i = argv.indexOf(name);
  return i === -1 ? fallback : argv[i + 1];
};
const BASE = arg('--base', undefined);
if (BASE === undefined) {
  process.stderr.write('usage: node bench/diagnostics-inproc.mjs --base path/to/other/core/dist/index.js\n');
  process.exit(2);
}
const ROUNDS = Number(arg('--rounds', 21));
const MESSAGES = Number(arg('--messages', 20000));
const PIPELINE = 16;
const MODE = arg('--mode', 'off');
// The client's build: by default the base build. A third copy (e.g. of the base build at
// another path) keeps both servers' code apart from the client's: with the client sharing
// the base server's module, a null run (two copies of one build) favoured base by ~2 %.
const CLIENT = arg('--client', BASE);

const current = await import(pathToFileURL(join(HERE, '../packages/core/dist/index.js')).href);
const base = await import(pathToFileURL(resolve(BASE)).href);
const clientLib = await import(pathToFileURL(resolve(CLIENT)).href);
const noop = () => {};

async function echoServer(lib) {
  const wss = new lib.WebSocketServer({ pingInterval: 0 });
  wss.route('/echo', (ws) => {
    ws.on('message', (m) => ws.send(m.data, { binary: m.type === 'binary' }).catch(noop));
  });
  const { port } = await wss.listen(0, '127.0.0.1');
  const client = await clientLib.connect(`ws://127.0.0.1:${port}/echo`, { pingInterval: 0 });
  return { wss, client };
}

/** MESSAGES round trips, PIPELINE in flight; resolves with the wall and CPU ms taken. */
function round(client) {
  const payload = Buffer.alloc(64, 97);
  return new Promise((done) => {
    let sent = 0;
    let received = 0;
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    const onMessage = () => {
      received++;
      if (received === MESSAGES) {
        client.off('message', onMessage);
        const cpu = process.cpuUsage(cpu0);
        done({ wall: performance.now() - t0, cpu: (cpu.user + cpu.system) / 1000 });
      } else if (sent < MESSAGES) {
        sent++;
        client.send(payload, { binary: false }).catch(noop);
      }
    };
    client.on('message', onMessage);
    for (; sent < PIPELINE; sent++) client.send(payload, { binary: false }).catch(noop);
  });
}

function subscribeAll() {
  const names = Object.values(current.CHANNELS);
  for (const name of names) diagnosticsChannel.subscribe(name, noop);
  const tracing = Object.values(current.TRACING_CHANNELS).map((n) => diagnosticsChannel.tracingChannel(n));
  const handlers = { start: noop, end: noop, asyncStart: noop, asyncEnd: noop, error: noop };
  for (const tc of tracing) tc.subscribe(handlers);
  return () => {
    for (const name of names) diagnosticsChannel.unsubscribe(name, noop);
    for (const tc of tracing) tc.unsubscribe(handlers);
  };
}

const configs = { base: await echoServer(base), [MODE]: await echoServer(current) };
if (MODE === 'noop') subscribeAll();
const names = Object.keys(configs);
const times = Object.fromEntries(names.map((n) => [n, []]));
for (const n of names) await round(configs[n].client); // warm-up
for (let r = 0; r < ROUNDS; r++) {
  for (const n of names.map((_, i) => names[(i + r) % names.length])) {
    times[n].push(await round(configs[n].client));
  }
}
const sorted = (a) => [...a].sort((x, y) => x - y);
const stat = (values) => {
  const s = sorted(values);
  return { min: s[0], median: s[Math.floor(s.length / 2)] };
};
const rows = names.map((n) => ({
  config: n,
  wall: stat(times[n].map((t) => t.wall)),
  cpu: stat(times[n].map((t) => t.cpu)),
}));
const ref = rows.find((r) => r.config === 'base');
const pct = (a, b) => `${((a / b - 1) * 100).toFixed(1).padStart(5)}%`;
process.stdout.write(`${ROUNDS} rounds of ${MESSAGES} round trips (ms per round; % vs base)\n`);
for (const r of rows) {
  process.stdout.write(
    `${r.config.padEnd(5)} CPU median ${r.cpu.median.toFixed(1).padStart(6)} (${pct(r.cpu.median, ref.cpu.median)})` +
      `  CPU min ${r.cpu.min.toFixed(1).padStart(6)} (${pct(r.cpu.min, ref.cpu.min)})` +
      `  wall median ${r.wall.median.toFixed(1).padStart(6)} (${pct(r.wall.median, ref.wall.median)})` +
      `  wall min ${r.wall.min.toFixed(1).padStart(6)} (${pct(r.wall.min, ref.wall.min)})\n`,
  );
}
for (const c of Object.values(configs)) {
  c.client.terminate();
  await c.wss.close();
}
