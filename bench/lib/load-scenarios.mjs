// The echo scenarios measured with load processes (load-process.mjs), for run.mjs:
//
// server side — raw-socket load (pre-built masked frames) against the wskit server, the ws
//   server and the raw-TCP ceiling (raw-load.mjs); the server process is measured alone:
//   messages/s, messages per server-CPU-second, server CPU µs per message.
// client side — the wskit client and the ws client as the load, against the same ws
//   server: client messages/s and client CPU µs per message.
//
// Per workload, every implementation's connections are opened once and kept for all the
// repetitions. One measurement: start, let it run `warmup` s, mark (server CPU and every
// loader's counters), run `seconds` s, mark again, pause (the echoes in flight awaited).
// Only what happened between the two marks counts, so neither handshakes nor ramp-up nor
// draining are in the figures.
import { join } from 'node:path';
import { spawnWorker } from './ipc.mjs';
import { median, ratio } from './stats.mjs';

const MiB = 1024 * 1024;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const rotate = (list, n) => list.map((_, i) => list[(i + n) % list.length]);
const cpuMs = (a, b) => (b.user - a.user + b.system - a.system) / 1000;

export function sizeLabel(bytes) {
  return bytes >= MiB ? `${bytes / MiB} MiB` : bytes >= 1024 ? `${bytes / 1024} KiB` : `${bytes} B`;
}

/**
 * The echo workloads of both modes: pipelined at 1 and 100 connections, then one in
 * flight. `quick`: fewer of them, still every frame-header length, text and binary.
 */
export function loadConfigs({ quick = false, connectionCounts = [1, 100] } = {}) {
  const shapes = quick
    ? [
        [64, true],
        [16 * 1024, false],
        [MiB, true],
      ]
    : [
        [64, true],
        [64, false],
        [1024, true],
        [16 * 1024, true],
        [16 * 1024, false],
        [MiB, true],
      ];
  const configs = [];
  for (const connections of connectionCounts) {
    for (const [size, binary] of shapes) {
      // 32 in flight per connection; for 1 MiB few, so the bytes in flight stay bounded.
      const pipeline = size < MiB ? 32 : connections === 1 ? 4 : 2;
      configs.push({ group: 'pipelined', size, binary, connections, pipeline });
    }
  }
  for (const size of quick ? [64] : [64, 16 * 1024])
    configs.push({ group: 'one in flight', size, binary: true, connections: 1, pipeline: 1 });
  return configs.map((c) => ({ ...c, scenario: loadScenarioName(c) }));
}

export function loadScenarioName({ size, binary, connections, pipeline }) {
  return `${sizeLabel(size)} ${binary ? 'binary' : 'text'}, ${connections} conn${connections === 1 ? '' : 's'} × ${pipeline} in flight`;
}

/** The issue's targets for a scenario (ratios to ws and to the ceiling); undefined: none. */
export function loadTargets(config, side) {
  if (side === 'client') return { ws: 1.2 };
  if (config.pipeline === 1) return { ws: 1.1 };
  if (config.size >= 16 * 1024) return { ws: 1.2, ceiling: 0.9 };
  if (config.size >= 1024) return { ws: 2 };
  return { ws: 3 };
}

/** Splits `n` connections over `k` loaders (the first ones get the remainder). */
function split(n, k) {
  return Array.from({ length: k }, (_, i) => Math.floor(n / k) + (i < n % k ? 1 : 0)).filter((c) => c > 0);
}

/** The load processes a workload uses, and how many connections each opens. */
function assignment(loaders, config) {
  const parts = config.pipeline === 1 ? [config.connections] : split(config.connections, loaders.length);
  return parts.map((connections, i) => ({ loader: loaders[i], connections }));
}

/** Opens the implementation's connection set for a workload (kept across repetitions). */
async function openSet({ key, loaders, client, url }, config) {
  await Promise.all(
    assignment(loaders, config).map(({ loader, connections }) =>
      loader.call('open', {
        id: key,
        client,
        url,
        connections,
        size: config.size,
        binary: config.binary,
        pipeline: config.pipeline,
      }),
    ),
  );
}

async function closeSet({ key, loaders }, config) {
  await Promise.all(assignment(loaders, config).map(({ loader }) => loader.call('close', { id: key })));
}

/** One measurement on an open connection set: start, warm up, mark, window, mark, pause. */
async function measure({ key, server, loaders }, config, { warmup, seconds }) {
  const active = assignment(loaders, config).map((a) => a.loader);
  const id = { id: key };
  await Promise.all(active.map((l) => l.call('start', id)));
  await sleep(warmup * 1000);
  const [s0, ...m0] = await Promise.all([server.call('cpu'), ...active.map((l) => l.call('mark', id))]);
  await sleep(seconds * 1000);
  const [s1, ...m1] = await Promise.all([server.call('cpu'), ...active.map((l) => l.call('mark', id))]);
  const stops = await Promise.all(active.map((l) => l.call('pause', id)));
  const messages = m1.reduce((n, m, i) => n + m.messages - m0[i].messages, 0);
  const wallMs = m1.reduce((t, m, i) => t + m.t - m0[i].t, 0) / m1.length;
  const serverCpu = cpuMs(s0, s1);
  const loadCpu = m1.reduce((t, m, i) => t + cpuMs(m0[i].cpu, m.cpu), 0);
  return {
    messages,
    messagesPerSecond: (messages * 1000) / wallMs,
    serverCpuUsPerMessage: (serverCpu * 1000) / Math.max(1, messages),
    messagesPerServerCpuSecond: (messages * 1000) / Math.max(1e-9, serverCpu),
    /** Share of one core the server used (1 = a whole core). */
    serverUtilization: serverCpu / Math.max(1e-9, s1.t - s0.t),
    loadCpuUsPerMessage: (loadCpu * 1000) / Math.max(1, messages),
    messagesPerLoadCpuSecond: (messages * 1000) / Math.max(1e-9, loadCpu),
    /** Cores the load processes used in all (1 = one whole core). */
    loadUtilization: loadCpu / wallMs,
    p50Ms: m1[0].latency.p50,
    p99Ms: m1[0].latency.p99,
    /** Errors of the connection set so far (wrong sizes, closes, socket errors): cumulative. */
    setErrors: m1.reduce((n, m) => n + m.errors, 0),
    /** Load processes whose echoes in flight did not all come back after the window. */
    undrained: stops.reduce((n, s) => n + (s.drained ? 0 : 1), 0),
    errorSamples: stops.flatMap((s) => s.errorSamples),
  };
}

/** A short run of two workloads on every implementation, to warm the JIT of every process. */
async function warmUp(impls, settings) {
  for (const impl of impls) {
    for (const config of [
      { size: 64, binary: true, connections: 4, pipeline: 32 },
      { size: 16 * 1024, binary: false, connections: 4, pipeline: 8 },
    ]) {
      await openSet(impl, config);
      await measure(impl, config, { warmup: 0.05, seconds: settings.warmupSeconds * 2 });
      await closeSet(impl, config);
    }
  }
}

function summarize(runs) {
  const med = (key) => median(runs.map((r) => r[key]));
  return {
    messagesPerSecond: med('messagesPerSecond'),
    messagesPerServerCpuSecond: med('messagesPerServerCpuSecond'),
    serverCpuUsPerMessage: med('serverCpuUsPerMessage'),
    serverUtilization: med('serverUtilization'),
    loadCpuUsPerMessage: med('loadCpuUsPerMessage'),
    messagesPerLoadCpuSecond: med('messagesPerLoadCpuSecond'),
    loadUtilization: med('loadUtilization'),
    p50Ms: med('p50Ms'),
    p99Ms: med('p99Ms'),
    messages: runs.reduce((n, r) => n + r.messages, 0),
    errors: Math.max(0, ...runs.map((r) => r.setErrors)) + runs.reduce((n, r) => n + r.undrained, 0),
    errorSamples: [...new Set(runs.flatMap((r) => r.errorSamples))].slice(0, 3),
    runs: runs.map((r) => Math.round(r.messagesPerSecond)),
  };
}

/**
 * Runs every config for every implementation, `reps` repetitions in rotating order.
 * `impls`: [{ key, server, url, loaders, client }] — each with its own server process and
 * load processes (shared between implementations when they are the same objects).
 */
async function runScenarios({ impls, configs, settings, log, describe }) {
  const rows = [];
  for (const config of configs) {
    const runs = Object.fromEntries(impls.map((i) => [i.key, []]));
    for (const impl of impls) await openSet(impl, config);
    try {
      for (let rep = 0; rep < settings.reps; rep++) {
        for (const impl of rotate(impls, rep)) {
          runs[impl.key].push(
            await measure(impl, config, { warmup: settings.warmupSeconds, seconds: settings.seconds }),
          );
        }
      }
    } finally {
      for (const impl of impls) await closeSet(impl, config);
    }
    const results = Object.fromEntries(impls.map((i) => [i.key, summarize(runs[i.key])]));
    const row = { ...config, results };
    rows.push(row);
    log(describe(row));
  }
  return rows;
}

const WORKER = (here, name) => join(here, 'lib', name);

/**
 * Server side: raw-socket load against wskit, ws (with bufferutil if it loads) and the
 * ceiling. Returns { wsMasking, loaders, rows }.
 */
export async function serverSideScenarios({ here, settings, log, fmt }) {
  const kinds = ['wskit', 'ws', 'ceiling'];
  const servers = {};
  const loaders = [];
  try {
    for (const kind of kinds) {
      servers[kind] = spawnWorker(WORKER(here, 'server-process.mjs'), `${kind} server`);
    }
    const urls = {};
    for (const kind of kinds) urls[kind] = (await servers[kind].call('start', { kind })).echo;
    const wsMasking = await servers.ws.call('wsMasking');
    log(`  ws ${wsMasking.wsVersion} masks with ${wsMasking.masking}`);
    for (let i = 0; i < settings.loaders; i++)
      loaders.push(spawnWorker(WORKER(here, 'load-process.mjs'), `raw load ${i}`));
    const impls = kinds.map((kind) => ({
      key: kind,
      server: servers[kind],
      url: urls[kind],
      loaders,
      client: 'raw',
    }));
    // Warm every server's paths (JIT) before anything is measured.
    await warmUp(impls, settings);
    const rows = await runScenarios({
      impls,
      configs: settings.configs,
      settings,
      log,
      describe: (row) => {
        const r = row.results;
        row.targets = loadTargets(row, 'server');
        row.ratios = {
          wskitToWs: ratio(r.wskit.messagesPerSecond, r.ws.messagesPerSecond),
          wskitToCeiling: ratio(r.wskit.messagesPerSecond, r.ceiling.messagesPerSecond),
          cpuWskitToWs: ratio(r.wskit.messagesPerServerCpuSecond, r.ws.messagesPerServerCpuSecond),
          cpuWskitToCeiling: ratio(r.wskit.messagesPerServerCpuSecond, r.ceiling.messagesPerServerCpuSecond),
        };
        return (
          `  ${row.scenario.padEnd(40)} ${kinds.map((k) => `${k} ${fmt.count(r[k].messagesPerSecond)}`).join('  ')} msg/s;` +
          ` wskit/ws ${fmt.r2(row.ratios.wskitToWs)} (per CPU-s ${fmt.r2(row.ratios.cpuWskitToWs)}),` +
          ` /ceiling ${fmt.r2(row.ratios.wskitToCeiling)}; load ${fmt.r2(r.wskit.loadUtilization)} core`
        );
      },
    });
    return { wsMasking, loaders: settings.loaders, rows };
  } finally {
    await Promise.all([...Object.values(servers), ...loaders].map((w) => w.stop().catch(() => {})));
  }
}

/** Client side: the wskit client and the ws client as the load, against one ws server. */
export async function clientSideScenarios({ here, settings, log, fmt }) {
  const clients = ['wskit', 'ws'];
  const server = spawnWorker(WORKER(here, 'server-process.mjs'), 'ws server (client side)');
  const loaders = {};
  try {
    const url = (await server.call('start', { kind: 'ws' })).echo;
    for (const c of clients) loaders[c] = spawnWorker(WORKER(here, 'load-process.mjs'), `${c} client load`);
    const impls = clients.map((c) => ({ key: c, server, url, loaders: [loaders[c]], client: c }));
    await warmUp(impls, settings);
    const rows = await runScenarios({
      impls,
      configs: settings.configs,
      settings,
      log,
      describe: (row) => {
        const r = row.results;
        row.targets = loadTargets(row, 'client');
        row.ratios = {
          wskitToWs: ratio(r.wskit.messagesPerSecond, r.ws.messagesPerSecond),
          cpuWskitToWs: ratio(r.wskit.messagesPerLoadCpuSecond, r.ws.messagesPerLoadCpuSecond),
        };
        return (
          `  ${row.scenario.padEnd(40)} ${clients.map((k) => `${k} client ${fmt.count(r[k].messagesPerSecond)}`).join('  ')} msg/s;` +
          ` wskit/ws ${fmt.r2(row.ratios.wskitToWs)}, per client CPU-s ${fmt.r2(row.ratios.cpuWskitToWs)}`
        );
      },
    });
    return { server: 'ws', rows };
  } finally {
    await Promise.all([server, ...Object.values(loaders)].map((w) => w.stop().catch(() => {})));
  }
}
