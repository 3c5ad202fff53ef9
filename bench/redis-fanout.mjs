#!/usr/bin/env node
// Cross-process publish through Redis: wskit + @wskit/redis against socket.io 4 +
// @socket.io/redis-adapter, on the same redis-server, with 2 and 4 server processes.
// Needs `redis-server` on PATH and the built packages (npx tsc -b). Prints a markdown table.
//   node bench/redis-fanout.mjs [--quick]
import { execFileSync, fork, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const quick = process.argv.includes('--quick');
const PER_SERVER = 25; // clients per server process
const BURST = quick ? 1000 : 4000; // messages published by each process in the throughput run
const PACED = quick ? 200 : 1000; // messages for the latency run (one every ms)
const SIZE = 64;
const here = new URL('./lib/', import.meta.url);

const freePort = () =>
  new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
const once = (child, event) =>
  new Promise((resolve, reject) => {
    const onMsg = (m) => {
      if (m.event === event) {
        child.off('message', onMsg);
        resolve(m);
      }
    };
    child.on('message', onMsg);
    child.once('exit', (code) => reject(new Error(`child exited (${code}) waiting for ${event}`)));
  });
const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

async function startRedis() {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'wskit-bench-redis-'));
  const proc = spawn('redis-server', [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--dir',
    dir,
    '--save',
    '',
    '--appendonly',
    'no',
  ]);
  await new Promise((resolve) =>
    proc.stdout.on('data', (d) => d.toString().includes('Ready to accept') && resolve()),
  );
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    stop: () => {
      proc.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function run(impl, processes, redis) {
  const servers = Array.from({ length: processes }, (_, i) =>
    fork(new URL('fanout-server.mjs', here), [impl, redis.url, String(i)], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    }),
  );
  const ports = (await Promise.all(servers.map((s) => once(s, 'ready')))).map((m) => m.port);
  const clients = fork(
    new URL('fanout-clients.mjs', here),
    [impl, JSON.stringify(ports), String(PER_SERVER)],
    {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    },
  );
  await once(clients, 'ready');
  const totalClients = PER_SERVER * processes;
  const expect = async (total, latency) => {
    const armed = once(clients, 'armed');
    clients.send({ cmd: 'expect', total, latency });
    await armed;
    return { done: once(clients, 'done') }; // (not the bare promise: `await` would wait for it)
  };
  try {
    // Warm-up: until one message from each process reaches everybody (subscriptions in place).
    for (;;) {
      const { done } = await expect(totalClients * processes, false);
      for (const s of servers) s.send({ cmd: 'burst', count: 1, size: SIZE });
      const ok = await Promise.race([
        done.then(() => true),
        new Promise((r) => setTimeout(() => r(false), 500)),
      ]);
      if (ok) break;
    }
    // Latency: process 0 publishes one message every ms; remote clients measure.
    let { done } = await expect(totalClients * PACED, true);
    servers[0].send({ cmd: 'paced', count: PACED, size: SIZE, every: 1 });
    const lat = (await done).latencies.sort((a, b) => a - b);
    // Throughput: every process publishes BURST messages back to back.
    ({ done } = await expect(totalClients * BURST * processes, false));
    const t0 = performance.now();
    for (const s of servers) s.send({ cmd: 'burst', count: BURST, size: SIZE });
    await done;
    const seconds = (performance.now() - t0) / 1000;
    return {
      impl,
      processes,
      p50: pct(lat, 50),
      p99: pct(lat, 99),
      msgsPerSec: (BURST * processes) / seconds,
      deliveriesPerSec: (BURST * processes * totalClients) / seconds,
    };
  } finally {
    clients.kill();
    for (const s of servers) s.kill();
  }
}

const redis = await startRedis();
const rows = [];
try {
  for (const processes of [2, 4]) {
    for (const impl of ['wskit', 'socket.io']) {
      process.stderr.write(`${impl}, ${processes} processes...\n`);
      rows.push(await run(impl, processes, redis));
    }
  }
} finally {
  redis.stop();
}
const redisVersion = execFileSync('redis-server', ['--version'])
  .toString()
  .match(/v=(\S+)/)?.[1];
console.log(
  `\nCross-process publish through Redis ${redisVersion}: ${PER_SERVER} clients per process, ${SIZE} B text, ` +
    `${BURST} messages published by each process (throughput), ${PACED} paced 1/ms by one process (latency, remote clients).\n`,
);
console.log('| processes | impl | p50 ms | p99 ms | messages/s | deliveries/s | wskit/socket.io (msg/s) |');
console.log('|---|---|---|---|---|---|---|');
for (const r of rows) {
  const other = rows.find((o) => o.processes === r.processes && o.impl === 'socket.io');
  const ratio = r.impl === 'wskit' ? (r.msgsPerSec / other.msgsPerSec).toFixed(2) : '';
  console.log(
    `| ${r.processes} | ${r.impl} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${Math.round(r.msgsPerSec)} | ${Math.round(r.deliveriesPerSec)} | ${ratio} |`,
  );
}
