#!/usr/bin/env node
/**
 * wskit benchmarks, in one run, with ratios to `ws` and to a raw-TCP ceiling. Two load modes:
 *
 * Server side, raw-socket load (lib/raw-load.mjs, lib/load-scenarios.mjs): plain node:net
 * sockets do the Upgrade handshake themselves, then send pre-built masked frames and count
 * the echoes from the frame headers, so the server process is measured alone — the wskit
 * server, the `ws` server (with bufferutil when it loads), and a node:net server echoing
 * the same frames (the ceiling). Messages/s, messages per server-CPU-second, server CPU per
 * message; 64 B to 1 MiB, 1 and 100 connections pipelined, and one message in flight.
 *
 * Client side: the same echo workloads with the wskit client and the ws client as the
 * load, against the same ws server: client messages/s and client CPU per message.
 *
 * Client-library mode (as before): every scenario measured for
 *   wskit   — the wskit server with the wskit client,
 *   ws      — the `ws` package's server with its client,
 *   raw TCP — node:net with length-prefixed records,
 * pipelined echo round trips (64 B to 256 KiB, text and binary, 1 and 32 connections),
 * fan-out to 500 clients (wskit `publish` vs ws looping over its clients), connection setup
 * rate, memory per idle connection, and permessage-deflate (bench/deflate.mjs, with
 * --deflate or in the full run).
 *
 * Every server runs in its own process and every load in another (here: the load
 * generator of `wskit bench`, packages/cli/src/bench.ts, with the wskit, ws or raw TCP
 * client plugged in), so the two ends don't share an event loop. Each measurement is
 * preceded by a warm-up and repeated; the implementations take turns within each
 * repetition (in a rotating order), and the median is reported.
 *
 * Usage: npx tsc -b && node bench/run.mjs [--quick] [--deflate | --no-deflate]
 *                                         [--only GROUP,...] [--loaders N]
 * Writes bench/results/latest.json, latest.md and ratios.svg.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ratioChart } from './lib/chart.mjs';
import { spawnWorker } from './lib/ipc.mjs';
import { clientSideScenarios, loadConfigs, serverSideScenarios } from './lib/load-scenarios.mjs';
import { formatBytes, formatCount, formatMs, median, ratio } from './lib/stats.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..');
/** Where bench/deflate.mjs writes deflate.json. */
const RESULTS = join(HERE, 'results');

const GROUPS = ['server', 'client', 'echo', 'fanout', 'setup', 'memory', 'deflate'];
const USAGE =
  'usage: node bench/run.mjs [--quick] [--deflate | --no-deflate] [--only GROUP,...] [--loaders N]\n' +
  '  --quick       a short run (30-60 s): one repetition, short measurements, every code path\n' +
  '  --deflate     also run bench/deflate.mjs (the full run does unless --no-deflate)\n' +
  `  --only        run these groups only: ${GROUPS.join(', ')}\n` +
  '                (server: raw-socket load, server alone; client: wskit vs ws client;\n' +
  '                echo, fanout, setup, memory: client-library mode; deflate: bench/deflate.mjs)\n' +
  '  --loaders N   raw-socket load processes for the server-side scenarios (default 1)\n' +
  '  --out DIR     write latest.json, latest.md and ratios.svg there (default bench/results)\n' +
  '  --smoke       tiny numbers for bench/smoke.mjs: every code path, no meaningful figures\n';

function parseArgs(argv) {
  const opts = {
    quick: false,
    smoke: false,
    deflate: undefined,
    only: undefined,
    loaders: 1,
    out: undefined,
    help: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--quick') opts.quick = true;
    else if (a === '--deflate') opts.deflate = true;
    else if (a === '--no-deflate') opts.deflate = false;
    else if (a === '--help' || a === '-h') opts.help = true;
    else if (a === '--smoke') {
      opts.smoke = true;
      opts.quick = true;
    } else if (a === '--out' || a.startsWith('--out=')) {
      opts.out = a === '--out' ? argv[++i] : a.slice('--out='.length);
      if (!opts.out) return { error: '--out: a directory' };
    } else if (a === '--only' || a.startsWith('--only=')) {
      const v = a === '--only' ? argv[++i] : a.slice('--only='.length);
      const list = (v ?? '').split(',').filter(Boolean);
      const bad = list.filter((g) => !GROUPS.includes(g));
      if (list.length === 0 || bad.length > 0)
        return { error: `--only: unknown group ${bad.join(',') || '(none)'}` };
      opts.only = new Set(list);
    } else if (a === '--loaders' || a.startsWith('--loaders=')) {
      const v = Number(a === '--loaders' ? argv[++i] : a.slice('--loaders='.length));
      if (!Number.isInteger(v) || v < 1 || v > 8) return { error: '--loaders: an integer from 1 to 8' };
      opts.loaders = v;
    } else return { error: `unknown argument ${a}` };
  }
  return opts;
}

const OPTS = parseArgs(process.argv.slice(2));
if (OPTS.error !== undefined || OPTS.help) {
  if (OPTS.error !== undefined) process.stderr.write(`bench: ${OPTS.error}\n`);
  process.stderr.write(USAGE);
  process.exit(OPTS.error !== undefined ? 2 : 0);
}
const QUICK = OPTS.quick;
const DEFLATE = OPTS.only !== undefined ? OPTS.only.has('deflate') : (OPTS.deflate ?? !QUICK);
const runs = (group) => OPTS.only === undefined || OPTS.only.has(group);

for (const built of ['packages/core/dist/index.js', 'packages/cli/dist/bench.js']) {
  if (!existsSync(join(ROOT, built))) {
    process.stderr.write(`bench: ${built} is missing: build the packages first (npx tsc -b)\n`);
    process.exit(1);
  }
}

const KINDS = ['wskit', 'ws', 'raw'];
const LABEL = { wskit: 'wskit', ws: 'ws', raw: 'raw TCP' };

const SMOKE = OPTS.smoke;
const SETTINGS = SMOKE
  ? {
      reps: 1,
      echoSeconds: 0.03,
      warmupSeconds: 0.01,
      fanoutClients: 20,
      fanoutRounds: 2,
      fanoutWarmup: 1,
      setupConnections: 30,
      setupConcurrency: 10,
      idleConnections: 60,
    }
  : QUICK
    ? {
        reps: 1,
        echoSeconds: 0.1,
        warmupSeconds: 0.04,
        fanoutClients: 500,
        fanoutRounds: 5,
        fanoutWarmup: 2,
        setupConnections: 300,
        setupConcurrency: 50,
        idleConnections: 500,
      }
    : {
        reps: 3,
        echoSeconds: 0.4,
        warmupSeconds: 0.1,
        fanoutClients: 500,
        fanoutRounds: 20,
        fanoutWarmup: 4,
        setupConnections: 1000,
        setupConcurrency: 50,
        idleConnections: 2000,
      };
/** The load-process modes (server side and client side): repetitions and measuring window. */
const LOAD_SETTINGS = {
  ...(SMOKE
    ? { reps: 1, seconds: 0.03, warmupSeconds: 0.02 }
    : QUICK
      ? { reps: 1, seconds: 0.1, warmupSeconds: 0.05 }
      : { reps: 3, seconds: 0.5, warmupSeconds: 0.15 }),
  loaders: OPTS.loaders,
  configs: loadConfigs({ quick: QUICK, connectionCounts: SMOKE ? [1, 4] : [1, 100] }),
};
const SIZES = [64, 1024, 16 * 1024, 256 * 1024];
/** Messages in flight per connection: enough to keep both ends busy, bounded in bytes. */
const PIPELINE = { 64: 16, 1024: 16, [16 * 1024]: 8, [256 * 1024]: 2 };
const CONNECTIONS = [1, 32];
/** Each round, the server sends `burst` messages to every client (1: one message to 500). */
const FANOUT = [
  { size: 64, binary: false, burst: 1 },
  { size: 64, binary: false, burst: 10 },
  { size: 16 * 1024, binary: true, burst: 1 },
];

const started = Date.now();
const log = (line) => process.stderr.write(`${line}\n`);
/** A group's heading on stderr, with the time since the start. */
const phase = (line) => log(`${line} [${((Date.now() - started) / 1000).toFixed(0)} s]`);
const rotate = (list, n) => list.map((_, i) => list[(i + n) % list.length]);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitForCount(server, predicate, what, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const n = await server.call('count');
    if (predicate(n)) return n;
    if (Date.now() > deadline)
      throw new Error(`${server.name}: ${what} (count ${n}) not reached in ${timeoutMs} ms`);
    await sleep(25);
  }
}

/**
 * Runs `fn` and measures the CPU time (user + system) that the pair's server and client
 * processes spent meanwhile: a figure that other load on the machine disturbs much less
 * than wall-clock rates.
 */
async function withCpu(pair, fn) {
  const [s0, c0] = await Promise.all([pair.server.call('cpu'), pair.client.call('cpu')]);
  const value = await fn();
  const [s1, c1] = await Promise.all([pair.server.call('cpu'), pair.client.call('cpu')]);
  const ms = (a, b) => (b.user - a.user + b.system - a.system) / 1000;
  return { value, serverCpuMs: ms(s0, s1), clientCpuMs: ms(c0, c1) };
}

/** A server process and a client process for one implementation. */
async function startPair(kind, serverOptions) {
  const server = spawnWorker(join(HERE, 'lib/server-process.mjs'), `${kind} server`);
  const client = spawnWorker(join(HERE, 'lib/client-process.mjs'), `${kind} client`);
  const urls = await server.call('start', { kind, options: serverOptions });
  await client.call('init', { kind });
  return { kind, server, client, urls, stop: () => Promise.all([client.stop(), server.stop()]) };
}

// ---- scenarios ---------------------------------------------------------------------------

function sizeLabel(bytes) {
  return bytes >= 1024 ? `${bytes / 1024} KiB` : `${bytes} B`;
}

function echoConfigs() {
  const configs = [];
  for (const connections of CONNECTIONS) {
    for (const size of SIZES) {
      for (const binary of [false, true])
        configs.push({ connections, size, binary, pipeline: PIPELINE[size] });
    }
  }
  // Plain request/response: one message in flight, so nothing can be batched.
  configs.push({ connections: 1, size: 64, binary: true, pipeline: 1 });
  return configs;
}

async function echoScenarios(pairs) {
  const rows = [];
  for (const config of echoConfigs()) {
    const { connections, size, binary } = config;
    const name = `echo ${sizeLabel(size)} ${binary ? 'binary' : 'text'}, ${connections} conn${connections === 1 ? '' : 's'} × ${config.pipeline} in flight`;
    for (const kind of KINDS) {
      await pairs[kind].client.call('echo', {
        ...config,
        url: pairs[kind].urls.echo,
        duration: SETTINGS.warmupSeconds,
      });
    }
    const runs = { wskit: [], ws: [], raw: [] };
    for (let rep = 0; rep < SETTINGS.reps; rep++) {
      for (const kind of rotate(KINDS, rep)) {
        const {
          value: r,
          serverCpuMs,
          clientCpuMs,
        } = await withCpu(pairs[kind], () =>
          pairs[kind].client.call('echo', {
            ...config,
            url: pairs[kind].urls.echo,
            duration: SETTINGS.echoSeconds,
          }),
        );
        runs[kind].push({
          ...r,
          cpuUsPerMessage: ((serverCpuMs + clientCpuMs) * 1000) / Math.max(1, r.messages),
          serverCpuUsPerMessage: (serverCpuMs * 1000) / Math.max(1, r.messages),
        });
      }
    }
    const results = {};
    for (const kind of KINDS) {
      const rs = runs[kind];
      results[kind] = {
        messagesPerSecond: median(rs.map((r) => r.messagesPerSecond)),
        megabytesPerSecond: median(rs.map((r) => r.megabytesPerSecond)),
        p50Ms: median(rs.map((r) => r.latencyMs.p50)),
        p99Ms: median(rs.map((r) => r.latencyMs.p99)),
        cpuUsPerMessage: median(rs.map((r) => r.cpuUsPerMessage)),
        serverCpuUsPerMessage: median(rs.map((r) => r.serverCpuUsPerMessage)),
        messages: rs.reduce((n, r) => n + r.messages, 0),
        errors: rs.reduce((n, r) => n + r.errors, 0),
        errorSamples: [...new Set(rs.flatMap((r) => r.errorSamples))].slice(0, 3),
        runs: rs.map((r) => Math.round(r.messagesPerSecond)),
      };
    }
    const row = {
      scenario: name,
      ...config,
      results,
      ratios: {
        wskitToWs: ratio(results.wskit.messagesPerSecond, results.ws.messagesPerSecond),
        wskitToRaw: ratio(results.wskit.messagesPerSecond, results.raw.messagesPerSecond),
        cpuWskitToWs: ratio(results.wskit.cpuUsPerMessage, results.ws.cpuUsPerMessage),
      },
    };
    rows.push(row);
    log(
      `  ${name.padEnd(52)} ${KINDS.map((k) => `${LABEL[k]} ${formatCount(results[k].messagesPerSecond)}`).join('  ')} msg/s` +
        `  wskit/ws ${r2(row.ratios.wskitToWs)}, CPU/msg wskit/ws ${r2(row.ratios.cpuWskitToWs)}`,
    );
  }
  return rows;
}

async function fanoutScenarios(pairs) {
  const clients = SETTINGS.fanoutClients;
  for (const kind of KINDS) {
    const opened = await pairs[kind].client.call('bcastOpen', { url: pairs[kind].urls.bcast, clients });
    if (opened.opened !== clients)
      throw new Error(`${kind}: only ${opened.opened}/${clients} fan-out clients connected`);
    await waitForCount(pairs[kind].server, (n) => n >= clients, `${clients} subscribers`);
  }
  const rows = [];
  for (const workload of FANOUT) {
    const args = { size: workload.size, binary: workload.binary, burst: workload.burst };
    for (const kind of KINDS) {
      await pairs[kind].client.call('bcastRun', { ...args, rounds: SETTINGS.fanoutWarmup, warmup: 0 });
    }
    const runs = { wskit: [], ws: [], raw: [] };
    for (let rep = 0; rep < SETTINGS.reps; rep++) {
      for (const kind of rotate(KINDS, rep)) {
        const { server, client } = pairs[kind];
        await server.call('resetStats');
        const {
          value: r,
          serverCpuMs,
          clientCpuMs,
        } = await withCpu(pairs[kind], () =>
          client.call('bcastRun', { ...args, rounds: SETTINGS.fanoutRounds, warmup: 0 }),
        );
        const stats = await server.call('stats');
        const deliveries = r.clients * workload.burst * SETTINGS.fanoutRounds;
        runs[kind].push({
          ...r,
          serverUsPerFanout: (stats.ms * 1000) / Math.max(1, stats.calls),
          serverCpuUsPerDelivery: (serverCpuMs * 1000) / deliveries,
          clientCpuUsPerDelivery: (clientCpuMs * 1000) / deliveries,
        });
      }
    }
    const results = {};
    for (const kind of KINDS) {
      const rs = runs[kind];
      results[kind] = {
        deliveriesPerSecond: median(rs.map((r) => r.deliveriesPerSecond)),
        roundP50Ms: median(rs.map((r) => r.roundMs.p50)),
        serverUsPerFanout: median(rs.map((r) => r.serverUsPerFanout)),
        serverCpuUsPerDelivery: median(rs.map((r) => r.serverCpuUsPerDelivery)),
        clientCpuUsPerDelivery: median(rs.map((r) => r.clientCpuUsPerDelivery)),
        errors: rs.reduce((n, r) => n + r.errors, 0),
        runs: rs.map((r) => Math.round(r.deliveriesPerSecond)),
      };
    }
    const name = `fan-out ${sizeLabel(workload.size)} ${workload.binary ? 'binary' : 'text'} to ${clients} clients, ${workload.burst === 1 ? '1 message' : `bursts of ${workload.burst}`}`;
    const row = {
      scenario: name,
      clients,
      ...workload,
      results,
      ratios: {
        wskitToWs: ratio(results.wskit.deliveriesPerSecond, results.ws.deliveriesPerSecond),
        wskitToRaw: ratio(results.wskit.deliveriesPerSecond, results.raw.deliveriesPerSecond),
      },
    };
    rows.push(row);
    log(
      `  ${name.padEnd(52)} ${KINDS.map((k) => `${LABEL[k]} ${formatCount(results[k].deliveriesPerSecond)}`).join('  ')} deliveries/s`,
    );
  }
  for (const kind of KINDS) {
    await pairs[kind].client.call('bcastClose');
    await waitForCount(pairs[kind].server, (n) => n === 0, 'all fan-out clients gone');
  }
  return rows;
}

async function setupScenario(pairs) {
  const { setupConnections: connections, setupConcurrency: concurrency } = SETTINGS;
  const runs = { wskit: [], ws: [], raw: [] };
  for (const kind of KINDS) {
    // Warm-up: a tenth of the connections.
    await pairs[kind].client.call('setup', {
      url: pairs[kind].urls.echo,
      connections: Math.ceil(connections / 10),
      concurrency,
    });
    await waitForCount(pairs[kind].server, (n) => n === 0, 'all connections gone');
  }
  for (let rep = 0; rep < SETTINGS.reps; rep++) {
    for (const kind of rotate(KINDS, rep)) {
      const {
        value: r,
        serverCpuMs,
        clientCpuMs,
      } = await withCpu(pairs[kind], () =>
        pairs[kind].client.call('setup', { url: pairs[kind].urls.echo, connections, concurrency }),
      );
      if (r.errors > 0) log(`  ${kind}: ${r.errors} connections failed (${r.errorSample})`);
      runs[kind].push({
        ...r,
        serverCpuUs: (serverCpuMs * 1000) / Math.max(1, r.opened),
        clientCpuUs: (clientCpuMs * 1000) / Math.max(1, r.opened),
      });
      await waitForCount(pairs[kind].server, (n) => n === 0, 'all connections gone');
    }
  }
  const results = {};
  for (const kind of KINDS) {
    const rs = runs[kind];
    results[kind] = {
      perSecond: median(rs.map((r) => r.rate)),
      serverCpuUs: median(rs.map((r) => r.serverCpuUs)),
      clientCpuUs: median(rs.map((r) => r.clientCpuUs)),
      errors: rs.reduce((n, r) => n + r.errors, 0),
      runs: rs.map((r) => Math.round(r.rate)),
    };
  }
  const row = {
    scenario: `connection setup, ${connections} connections (${concurrency} at a time)`,
    connections,
    concurrency,
    results,
    ratios: {
      wskitToWs: ratio(results.wskit.perSecond, results.ws.perSecond),
      wskitToRaw: ratio(results.wskit.perSecond, results.raw.perSecond),
    },
  };
  log(
    `  ${row.scenario.padEnd(52)} ${KINDS.map((k) => `${LABEL[k]} ${formatCount(results[k].perSecond)}`).join('  ')} /s`,
  );
  return row;
}

/** Memory per idle connection, each implementation in fresh processes (RSS never shrinks). */
async function memoryScenario() {
  const n = SETTINGS.idleConnections;
  const variants = [
    { key: 'wskit', kind: 'wskit', label: 'wskit (defaults: keepalive on)' },
    {
      key: 'wskitQuiet',
      kind: 'wskit',
      label: 'wskit server, pingInterval 0, connectionTimeout 0',
      serverOptions: { pingInterval: 0, connectionTimeout: 0 },
      serverOnly: true,
    },
    { key: 'ws', kind: 'ws', label: 'ws' },
    { key: 'raw', kind: 'raw', label: 'raw TCP' },
  ];
  const results = {};
  for (const v of variants) {
    const pair = await startPair(v.kind, v.serverOptions);
    try {
      // Load and warm the code paths, then measure from a settled heap.
      await pair.client.call('idleOpen', { url: pair.urls.echo, connections: 50, concurrency: 50 });
      await waitForCount(pair.server, (c) => c >= 50, '50 warm-up connections');
      await pair.client.call('idleClose');
      await waitForCount(pair.server, (c) => c === 0, 'warm-up connections gone');
      const serverBefore = await pair.server.call('memory');
      const clientBefore = await pair.client.call('memory');
      const opened = await pair.client.call('idleOpen', {
        url: pair.urls.echo,
        connections: n,
        concurrency: 100,
      });
      if (opened.opened !== n)
        throw new Error(`${v.key}: ${opened.opened}/${n} opened (${opened.errorSample})`);
      await waitForCount(pair.server, (c) => c >= n, `${n} idle connections`);
      await sleep(200);
      const serverAfter = await pair.server.call('memory');
      const clientAfter = await pair.client.call('memory');
      const per = (after, before, key) => (after[key] - before[key]) / n;
      results[v.key] = {
        label: v.label,
        server: {
          heap: per(serverAfter, serverBefore, 'heapUsed'),
          rss: per(serverAfter, serverBefore, 'rss'),
          external: per(serverAfter, serverBefore, 'external'),
        },
        ...(v.serverOnly
          ? {}
          : {
              client: {
                heap: per(clientAfter, clientBefore, 'heapUsed'),
                rss: per(clientAfter, clientBefore, 'rss'),
                external: per(clientAfter, clientBefore, 'external'),
              },
            }),
      };
      await pair.client.call('idleClose');
    } finally {
      await pair.stop();
    }
    const r = results[v.key];
    log(
      `  memory ${v.label.padEnd(50)} server heap ${formatBytes(r.server.heap)} rss ${formatBytes(r.server.rss)}` +
        (r.client ? `, client heap ${formatBytes(r.client.heap)} rss ${formatBytes(r.client.rss)}` : '') +
        ' per connection',
    );
  }
  return {
    scenario: `memory per idle connection (${n} connections)`,
    connections: n,
    results,
    ratios: {
      serverHeapWskitToWs: ratio(results.wskit.server.heap, results.ws.server.heap),
      serverRssWskitToWs: ratio(results.wskit.server.rss, results.ws.server.rss),
      clientHeapWskitToWs: ratio(results.wskit.client.heap, results.ws.client.heap),
      clientRssWskitToWs: ratio(results.wskit.client.rss, results.ws.client.rss),
    },
  };
}

/** Runs bench/deflate.mjs (another script's own measurements) and reads its results file. */
async function deflateScenario() {
  const script = join(HERE, 'deflate.mjs');
  if (!existsSync(script)) return { error: 'bench/deflate.mjs is missing' };
  const args = [script, ...(QUICK ? ['--quick'] : [])];
  const code = await new Promise((resolve) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    child.stdout.on('data', (d) => process.stderr.write(d));
    child.on('close', (c) => resolve(c));
  });
  if (code !== 0) return { error: `bench/deflate.mjs exited with ${code}` };
  try {
    return JSON.parse(readFileSync(join(RESULTS, 'deflate.json'), 'utf8'));
  } catch (err) {
    return { error: `cannot read bench/results/deflate.json: ${err.message}` };
  }
}

// ---- report ------------------------------------------------------------------------------

const r2 = (v) => (Number.isFinite(v) ? v.toFixed(2) : '—');
const cpu = (v) => (Number.isFinite(v) ? (v >= 100 ? v.toFixed(0) : v.toFixed(1)) : '—');
const errorsNote = (results) => {
  const n = KINDS.reduce((sum, k) => sum + (results[k]?.errors ?? 0), 0);
  return n > 0 ? ` ⚠ ${n} errors` : '';
};

function markdown(report) {
  const lines = [];
  const m = report.machine;
  lines.push(`# wskit benchmarks — ${report.date.slice(0, 10)}`);
  lines.push('');
  lines.push(
    `Node ${m.node} on ${m.platform}, ${m.cores} cores (${m.cpu}), ${m.memoryGiB} GiB; ` +
      `load average ${m.loadBefore.join(' / ')} before, ${m.loadAfter.join(' / ')} after; ` +
      `${report.quick ? 'quick run' : `median of ${report.settings.reps}`}, ${report.durationSeconds.toFixed(0)} s in all` +
      `${report.only !== undefined ? ` (only ${report.only.join(', ')})` : ''}. Chart of the ratios: ratios.svg.`,
  );
  lines.push('');
  lines.push(
    'Ratios are wskit divided by the other: above 1, wskit does more per second — or, for CPU time and memory, uses more.',
  );
  lines.push('');

  lines.push(...loadTables(report));

  if (report.echo !== undefined) {
    lines.push(
      '## Client-library mode: echo round trips (messages/s; CPU per message of both processes, and of the server; round-trip latency)',
    );
    lines.push('');
    lines.push(
      '| scenario | wskit | ws | raw TCP | wskit/ws | wskit/raw | CPU µs/msg wskit / ws / raw | CPU wskit/ws | server CPU µs/msg wskit / ws / raw | p50 ms wskit / ws | p99 ms wskit / ws |',
    );
    lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const row of report.echo) {
      const r = row.results;
      lines.push(
        `| ${row.scenario.replace(/^echo /, '')}${errorsNote(r)} | ${formatCount(r.wskit.messagesPerSecond)} | ${formatCount(r.ws.messagesPerSecond)} | ${formatCount(r.raw.messagesPerSecond)} | ${r2(row.ratios.wskitToWs)} | ${r2(row.ratios.wskitToRaw)} | ${cpu(r.wskit.cpuUsPerMessage)} / ${cpu(r.ws.cpuUsPerMessage)} / ${cpu(r.raw.cpuUsPerMessage)} | ${r2(row.ratios.cpuWskitToWs)} | ${cpu(r.wskit.serverCpuUsPerMessage)} / ${cpu(r.ws.serverCpuUsPerMessage)} / ${cpu(r.raw.serverCpuUsPerMessage)} | ${formatMs(r.wskit.p50Ms)} / ${formatMs(r.ws.p50Ms)} | ${formatMs(r.wskit.p99Ms)} / ${formatMs(r.ws.p99Ms)} |`,
      );
    }
    const gm = (key) => r2(geometricMean(report.echo.map((row) => row.ratios[key])));
    lines.push(
      `| **geometric mean** | | | | **${gm('wskitToWs')}** | **${gm('wskitToRaw')}** | | **${gm('cpuWskitToWs')}** | | | |`,
    );
    lines.push('');
  }

  if (report.fanout !== undefined) {
    lines.push('## Fan-out (deliveries/s; wskit `publish` vs ws looping over its clients)');
    lines.push('');
    lines.push(
      '| scenario | wskit | ws | raw TCP | wskit/ws | wskit/raw | server CPU µs/delivery wskit / ws / raw | send loop µs per fan-out wskit / ws | burst p50 ms wskit / ws |',
    );
    lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const row of report.fanout) {
      const r = row.results;
      lines.push(
        `| ${row.scenario.replace(/^fan-out /, '')}${errorsNote(r)} | ${formatCount(r.wskit.deliveriesPerSecond)} | ${formatCount(r.ws.deliveriesPerSecond)} | ${formatCount(r.raw.deliveriesPerSecond)} | ${r2(row.ratios.wskitToWs)} | ${r2(row.ratios.wskitToRaw)} | ${cpu(r.wskit.serverCpuUsPerDelivery)} / ${cpu(r.ws.serverCpuUsPerDelivery)} / ${cpu(r.raw.serverCpuUsPerDelivery)} | ${formatCount(r.wskit.serverUsPerFanout)} / ${formatCount(r.ws.serverUsPerFanout)} | ${formatMs(r.wskit.roundP50Ms)} / ${formatMs(r.ws.roundP50Ms)} |`,
      );
    }
    lines.push('');
  }

  if (report.setup !== undefined) {
    const s = report.setup;
    const sr = s.results;
    const hs = (k) => cpu(sr[k].serverCpuUs + sr[k].clientCpuUs);
    lines.push('## Connection setup (handshakes/s; raw TCP: TCP connects/s)');
    lines.push('');
    lines.push(
      '| scenario | wskit | ws | raw TCP | wskit/ws | wskit/raw | CPU µs/connection wskit / ws / raw |',
    );
    lines.push('|---|---:|---:|---:|---:|---:|---:|');
    lines.push(
      `| ${s.connections} connections, ${s.concurrency} at a time${errorsNote(sr)} | ${formatCount(sr.wskit.perSecond)} | ${formatCount(sr.ws.perSecond)} | ${formatCount(sr.raw.perSecond)} | ${r2(s.ratios.wskitToWs)} | ${r2(s.ratios.wskitToRaw)} | ${hs('wskit')} / ${hs('ws')} / ${hs('raw')} |`,
    );
    lines.push('');
  }

  if (report.memory !== undefined) {
    const mem = report.memory;
    const mr = mem.results;
    lines.push(`## Memory per idle connection (${mem.connections} connections; lower is better)`);
    lines.push('');
    lines.push('| per connection | wskit | wskit, no keepalive | ws | raw TCP | wskit/ws |');
    lines.push('|---|---:|---:|---:|---:|---:|');
    for (const [side, key, label] of [
      ['server', 'heap', 'server heap'],
      ['server', 'rss', 'server RSS'],
      ['client', 'heap', 'client heap'],
      ['client', 'rss', 'client RSS'],
    ]) {
      const cell = (v) => (mr[v][side] ? formatBytes(mr[v][side][key]) : '—');
      lines.push(
        `| ${label} | ${cell('wskit')} | ${cell('wskitQuiet')} | ${cell('ws')} | ${cell('raw')} | ${r2(ratio(mr.wskit[side][key], mr.ws[side][key]))} |`,
      );
    }
    lines.push('');
  }

  const d = report.deflate;
  if (d !== undefined) {
    lines.push('## permessage-deflate (bench/deflate.mjs)');
    lines.push('');
    if (d.error !== undefined) {
      lines.push(`Not measured: ${d.error}.`);
    } else {
      try {
        lines.push(...deflateTable(d));
      } catch (err) {
        lines.push(`bench/results/deflate.json has an unexpected shape (${err.message}); see latest.json.`);
      }
    }
    lines.push('');
  }
  return `${lines.join('\n')}\n`;
}

const targetNote = (value, target, better = 'higher') => {
  if (target === undefined) return '';
  const met = better === 'higher' ? value >= target : value <= target;
  return `${better === 'higher' ? '≥' : '≤'} ${target} ${met ? '✓' : '✗'}`;
};

/** The server-side (raw-socket load) and client-side tables. */
function loadTables(report) {
  const out = [];
  const ss = report.serverSide;
  if (ss !== undefined) {
    const wm = ss.wsMasking;
    out.push('## Server side: raw-socket load, the server measured alone');
    out.push('');
    out.push(
      `Load: ${ss.loaders} process(es) of plain sockets sending pre-built masked frames, echoes counted from the frame headers. ` +
        `ws ${wm.wsVersion} masks with **${wm.masking}** (bufferutil ${wm.bufferutil ? 'active' : 'NOT active'}). ` +
        'Ceiling: node:net echoing the same frames, still masked (boundaries from the headers, complete frames written back). ' +
        'Per CPU-s: messages per second of server CPU (user + system); "cores": the CPU share the server / the load processes used during the wskit runs.',
    );
    out.push('');
    out.push(
      '| scenario | wskit msg/s | ws msg/s | ceiling msg/s | wskit/ws | wskit/ceiling | per CPU-s wskit/ws | per CPU-s wskit/ceiling | server CPU µs/msg wskit / ws / ceiling | p50 ms wskit / ws / ceiling | p99 ms wskit / ws / ceiling | cores server / load | target ws, ceiling |',
    );
    out.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|');
    for (const row of ss.rows) {
      const r = row.results;
      const k = ['wskit', 'ws', 'ceiling'];
      const t = row.targets ?? {};
      const lat = (key) => (row.pipeline === 1 ? k.map((x) => formatMs(r[x][key])).join(' / ') : '—');
      out.push(
        `| ${row.scenario}${errorsNote(r)} | ${k.map((x) => formatCount(r[x].messagesPerSecond)).join(' | ')} | ${r2(row.ratios.wskitToWs)} | ${r2(row.ratios.wskitToCeiling)} | ${r2(row.ratios.cpuWskitToWs)} | ${r2(row.ratios.cpuWskitToCeiling)} | ${k.map((x) => cpu(r[x].serverCpuUsPerMessage)).join(' / ')} | ${lat('p50Ms')} | ${lat('p99Ms')} | ${r2(r.wskit.serverUtilization)} / ${r2(r.wskit.loadUtilization)} | ${[targetNote(Math.min(row.ratios.wskitToWs, row.ratios.cpuWskitToWs), t.ws), targetNote(Math.min(row.ratios.wskitToCeiling, row.ratios.cpuWskitToCeiling), t.ceiling)].filter(Boolean).join(', ')} |`,
      );
    }
    out.push('');
    const busiest = ss.rows
      .flatMap((row) =>
        ['wskit', 'ws', 'ceiling'].map((k) => ({ row, k, u: row.results[k].loadUtilization })),
      )
      .filter((x) => Number.isFinite(x.u))
      .sort((a, b) => b.u - a.u)[0];
    if (busiest !== undefined) {
      const saturated = busiest.u > 0.85 * ss.loaders;
      out.push(
        `The load processes used at most ${r2(busiest.u)} core(s) of the ${ss.loaders} they could (${busiest.row.scenario}, against ${busiest.k})` +
          (saturated
            ? ': **the load may have been the limit there**; try `--loaders 2`.'
            : ': the load was not the limit.'),
      );
      out.push('');
    }
    out.push(
      'Targets are checked on the lower of the two ratios (per second and per CPU-second). ' +
        'Load CPU µs per message (raw-socket load, wskit runs): ' +
        ss.rows.map((row) => `${row.scenario} ${cpu(row.results.wskit.loadCpuUsPerMessage)}`).join('; ') +
        '.',
    );
    out.push('');
  }
  const cs = report.clientSide;
  if (cs !== undefined) {
    out.push(
      `## Client side: the wskit client vs the ws client as the load (both against the ${cs.server} server)`,
    );
    out.push('');
    out.push(
      '| scenario | wskit client msg/s | ws client msg/s | wskit/ws | client CPU µs/msg wskit / ws | per client CPU-s wskit/ws | server CPU µs/msg (wskit run / ws run) | p50 ms wskit / ws | p99 ms wskit / ws | target |',
    );
    out.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---|');
    for (const row of cs.rows) {
      const r = row.results;
      const lat = (key) => (row.pipeline === 1 ? `${formatMs(r.wskit[key])} / ${formatMs(r.ws[key])}` : '—');
      out.push(
        `| ${row.scenario}${errorsNote(r)} | ${formatCount(r.wskit.messagesPerSecond)} | ${formatCount(r.ws.messagesPerSecond)} | ${r2(row.ratios.wskitToWs)} | ${cpu(r.wskit.loadCpuUsPerMessage)} / ${cpu(r.ws.loadCpuUsPerMessage)} | ${r2(row.ratios.cpuWskitToWs)} | ${cpu(r.wskit.serverCpuUsPerMessage)} / ${cpu(r.ws.serverCpuUsPerMessage)} | ${lat('p50Ms')} | ${lat('p99Ms')} | ${targetNote(Math.min(row.ratios.wskitToWs, row.ratios.cpuWskitToWs), row.targets?.ws)} |`,
      );
    }
    out.push('');
  }
  return out;
}

function deflateTable(d) {
  const out = [];
  out.push('| workload (compressed echo, 1 connection) | wskit msg/s | ws msg/s | wskit/ws |');
  out.push('|---|---:|---:|---:|');
  const workloads = [...new Set(d.throughput.map((t) => t.workload))];
  for (const w of workloads) {
    const a = d.throughput.find((t) => t.workload === w && t.library === 'wskit');
    const b = d.throughput.find((t) => t.workload === w && t.library === 'ws');
    out.push(
      `| ${w} | ${formatCount(a.messagesPerSecond)} | ${formatCount(b.messagesPerSecond)} | ${r2(ratio(a.messagesPerSecond, b.messagesPerSecond))} |`,
    );
  }
  if (Array.isArray(d.fragmented) && d.fragmented.length > 0) {
    out.push('');
    out.push('| compressed message in fragments (into the server) | wskit msg/s | ws msg/s | wskit/ws |');
    out.push('|---|---:|---:|---:|');
    for (const r of d.fragmented) {
      out.push(`| ${r.workload} | ${formatCount(r.wskit)} | ${formatCount(r.ws)} | ${r2(r.ratio)} |`);
    }
  }
  out.push('');
  out.push(
    '| memory per connection (both ends) | wskit heap | ws heap | wskit RSS | ws RSS | heap wskit/ws |',
  );
  out.push('|---|---:|---:|---:|---:|---:|');
  for (const compression of [true, false]) {
    const a = d.memory.find((m) => m.library === 'wskit' && m.compression === compression);
    const b = d.memory.find((m) => m.library === 'ws' && m.compression === compression);
    if (a === undefined || b === undefined) continue;
    const kib = (v) => formatBytes(v * 1024);
    out.push(
      `| ${compression ? 'permessage-deflate' : 'no compression'} | ${kib(a.heapPerConnectionKiB)} | ${kib(b.heapPerConnectionKiB)} | ${kib(a.rssPerConnectionKiB)} | ${kib(b.rssPerConnectionKiB)} | ${r2(ratio(a.heapPerConnectionKiB, b.heapPerConnectionKiB))} |`,
    );
  }
  return out;
}

/** The chart's sections, from whatever the run measured. */
function chartSections(report) {
  const sections = [];
  const ss = report.serverSide;
  if (ss !== undefined) {
    sections.push({
      title: `Server side, raw-socket load (ws with ${ss.wsMasking.masking})`,
      rows: ss.rows.map((row) => ({
        label: row.scenario,
        bars: [
          { series: 'ws', value: row.ratios.wskitToWs, target: row.targets?.ws },
          { series: 'wsCpu', value: row.ratios.cpuWskitToWs, target: row.targets?.ws },
          { series: 'ceiling', value: row.ratios.wskitToCeiling, target: row.targets?.ceiling },
          { series: 'ceilingCpu', value: row.ratios.cpuWskitToCeiling, target: row.targets?.ceiling },
        ],
      })),
    });
  }
  const cs = report.clientSide;
  if (cs !== undefined) {
    sections.push({
      title: `Client side: wskit client / ws client (against the ${cs.server} server)`,
      rows: cs.rows.map((row) => ({
        label: row.scenario,
        bars: [
          { series: 'ws', value: row.ratios.wskitToWs, target: row.targets?.ws },
          { series: 'wsCpu', value: row.ratios.cpuWskitToWs, target: row.targets?.ws },
        ],
      })),
    });
  }
  if (report.echo !== undefined) {
    sections.push({
      title: 'Client-library mode: echo, each library as its own client',
      rows: report.echo.map((row) => ({
        label: row.scenario.replace(/^echo /, ''),
        bars: [
          { series: 'ws', value: row.ratios.wskitToWs },
          { series: 'wsCpu', value: 1 / row.ratios.cpuWskitToWs },
          { series: 'ceiling', value: row.ratios.wskitToRaw },
        ],
      })),
    });
  }
  const other = [];
  for (const row of report.fanout ?? []) {
    other.push({
      label: row.scenario,
      bars: [
        { series: 'ws', value: row.ratios.wskitToWs },
        { series: 'ceiling', value: row.ratios.wskitToRaw },
      ],
    });
  }
  if (report.setup !== undefined) {
    other.push({
      label: 'handshakes per second',
      bars: [
        { series: 'ws', value: report.setup.ratios.wskitToWs, target: 1.5 },
        { series: 'ceiling', value: report.setup.ratios.wskitToRaw },
      ],
    });
  }
  if (report.memory !== undefined) {
    const r = report.memory.ratios;
    other.push({
      label: 'memory per idle connection: server heap',
      bars: [{ series: 'lower', value: r.serverHeapWskitToWs, target: 0.6, better: 'lower' }],
    });
    other.push({
      label: 'memory per idle connection: server RSS',
      bars: [{ series: 'lower', value: r.serverRssWskitToWs, target: 0.6, better: 'lower' }],
    });
  }
  if (other.length > 0)
    sections.push({ title: 'Fan-out, handshakes, memory (client-library mode)', rows: other });
  const d = report.deflate;
  if (d !== undefined && d.error === undefined) {
    try {
      sections.push({ title: 'permessage-deflate (bench/deflate.mjs)', rows: deflateChartRows(d) });
    } catch {
      // An unexpected deflate.json shape: the table says so; the chart goes without it.
    }
  }
  return sections;
}

/** Chart rows from bench/results/deflate.json (the shape bench/deflate.mjs writes). */
function deflateChartRows(d) {
  const rows = [];
  for (const w of [...new Set((d.throughput ?? []).map((t) => t.workload))]) {
    const a = d.throughput.find((t) => t.workload === w && t.library === 'wskit');
    const b = d.throughput.find((t) => t.workload === w && t.library === 'ws');
    if (a === undefined || b === undefined) continue;
    rows.push({
      label: `compressed echo: ${w}`,
      bars: [
        {
          series: 'ws',
          value: ratio(a.messagesPerSecond, b.messagesPerSecond),
          target: /json|text/i.test(w) ? 1.3 : undefined,
        },
      ],
    });
  }
  for (const f of d.fragmented ?? []) {
    rows.push({ label: `fragments in: ${f.workload}`, bars: [{ series: 'ws', value: f.ratio }] });
  }
  const a = (d.memory ?? []).find((m) => m.library === 'wskit' && m.compression === true);
  const b = (d.memory ?? []).find((m) => m.library === 'ws' && m.compression === true);
  if (a !== undefined && b !== undefined) {
    rows.push({
      label: 'memory per connection with compression (heap)',
      bars: [
        {
          series: 'lower',
          value: ratio(a.heapPerConnectionKiB, b.heapPerConnectionKiB),
          target: 1,
          better: 'lower',
        },
      ],
    });
  }
  return rows;
}

function chart(report) {
  const m = report.machine;
  return ratioChart({
    title: `wskit: ratios per scenario — ${report.date.slice(0, 10)}${report.quick ? ' (quick run)' : ''}`,
    subtitle: `Node ${m.node}, ${m.cores} cores (${m.cpu}), load average ${m.loadBefore.join(' / ')} before; log scale; above 1: wskit does more (except memory: lower is better)`,
    sections: chartSections(report),
  });
}

function geometricMean(values) {
  const ok = values.filter((v) => Number.isFinite(v) && v > 0);
  if (ok.length === 0) return Number.NaN;
  return Math.exp(ok.reduce((s, v) => s + Math.log(v), 0) / ok.length);
}

// ---- main --------------------------------------------------------------------------------

const load = () => loadavg().map((v) => Number(v.toFixed(2)));
const report = {
  benchmark: 'wskit vs ws vs raw TCP',
  date: new Date().toISOString(),
  quick: QUICK,
  smoke: SMOKE,
  only: OPTS.only === undefined ? undefined : [...OPTS.only],
  machine: {
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 1024 ** 3),
    loadBefore: load(),
    loadAfter: [],
  },
  settings: {
    ...SETTINGS,
    load: { ...LOAD_SETTINGS, configs: undefined },
    sizes: SIZES,
    pipeline: PIPELINE,
    connections: CONNECTIONS,
    fanout: FANOUT,
  },
};

log(
  `wskit bench: ${QUICK ? 'quick run' : 'full run'} on ${report.machine.cores} cores, Node ${process.version}` +
    (OPTS.only !== undefined ? ` (only ${[...OPTS.only].join(', ')})` : ''),
);
const pairs = {};
let exitCode = 0;
const fmt = { count: formatCount, r2: (v) => r2(v) };
try {
  if (runs('server')) {
    phase(`server side: raw-socket load (${LOAD_SETTINGS.loaders} load process(es)), server measured alone`);
    report.serverSide = await serverSideScenarios({ here: HERE, settings: LOAD_SETTINGS, log, fmt });
  }
  if (runs('client')) {
    phase('client side: wskit client vs ws client as the load, against the ws server');
    report.clientSide = await clientSideScenarios({ here: HERE, settings: LOAD_SETTINGS, log, fmt });
  }
  const libraryMode = ['echo', 'fanout', 'setup'].filter(runs);
  if (libraryMode.length > 0) {
    for (const kind of KINDS) pairs[kind] = await startPair(kind);
    // Warm every path once (JIT) before anything is measured.
    for (const kind of KINDS) {
      for (const binary of [false, true]) {
        await pairs[kind].client.call('echo', {
          url: pairs[kind].urls.echo,
          connections: 4,
          size: 1024,
          binary,
          pipeline: 8,
          duration: QUICK ? 0.1 : 0.3,
        });
      }
    }
    if (runs('echo')) {
      phase('echo round trips (client-library mode)');
      report.echo = await echoScenarios(pairs);
    }
    if (runs('fanout')) {
      phase('fan-out');
      report.fanout = await fanoutScenarios(pairs);
    }
    if (runs('setup')) {
      phase('connection setup');
      report.setup = await setupScenario(pairs);
    }
    await Promise.all(KINDS.map((k) => pairs[k].stop()));
  }
  if (runs('memory')) {
    phase('memory');
    report.memory = await memoryScenario();
  }
  if (DEFLATE) {
    phase('permessage-deflate (bench/deflate.mjs)');
    report.deflate = await deflateScenario();
  }
} catch (err) {
  log(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  exitCode = 1;
} finally {
  await Promise.all(Object.values(pairs).map((p) => p.stop().catch(() => {})));
}

if (exitCode === 0) {
  report.machine.loadAfter = load();
  report.durationSeconds = (Date.now() - started) / 1000;
  const md = markdown(report);
  const out = OPTS.out ?? RESULTS;
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'latest.json'), `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(join(out, 'latest.md'), md);
  writeFileSync(join(out, 'ratios.svg'), chart(report));
  process.stdout.write(`\n${md}`);
  log(`wrote ${out}/latest.json, latest.md and ratios.svg (${report.durationSeconds.toFixed(0)} s)`);
}
process.exit(exitCode);
