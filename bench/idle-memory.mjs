#!/usr/bin/env node
/**
 * Idle-connection memory and handshake cost of the server alone, wskit against ws, and
 * the floors under both: a bare node:http server whose 'upgrade' handler writes a static
 * 101 and keeps the socket, and a node:net server doing the same without node:http.
 *
 * The load is raw sockets in this process sending a fixed upgrade request (a fresh key
 * each), so no WebSocket library runs on the client side. Each server runs in a fresh
 * child process (with --expose-gc) per measurement:
 *   memory     — heap, RSS and external bytes per idle connection after GC, N connections;
 *   handshakes — M connections (C at a time), each destroyed once its 101 arrives: the
 *                server's CPU time per handshake (user + system) and the wall-clock rate.
 * Implementations take turns in a rotating order; medians of the repetitions.
 *
 * Usage: npx tsc -b && node bench/idle-memory.mjs [--reps 3] [--idle 2000] [--handshakes 3000]
 *        [--only wskit,ws,http,net] [--cpu-prof DIR]
 */
import { fork } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createServer as createHttpServer } from 'node:http';
import { connect, createServer as createNetServer } from 'node:net';

const HOST = '127.0.0.1';
const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

// ---- the server child ---------------------------------------------------------------------

async function startServer(kind) {
  if (kind.startsWith('wskit')) {
    // WSKIT_BASE=dir: a second build of @wskit/core measured as 'wskit-base' (A/B runs).
    const base = kind.endsWith('-base') ? process.env.WSKIT_BASE : undefined;
    const { WebSocketServer } = await import(base ? `${base}/index.js` : '../packages/core/dist/index.js');
    const options = kind.startsWith('wskit-quiet') ? { pingInterval: 0, connectionTimeout: 0 } : {};
    const wss = new WebSocketServer(options);
    wss.route('/echo', (ws) => {
      ws.on('message', (m) => ws.send(m.data, { binary: m.type === 'binary' }).catch(() => {}));
    });
    const { port } = await wss.listen(0, HOST);
    return { port, count: () => wss.clients.size };
  }
  if (kind === 'ws') {
    const { WebSocketServer } = await import('ws');
    const server = createHttpServer();
    const wss = new WebSocketServer({ noServer: true });
    wss.on('connection', (ws) => {
      ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    });
    server.on('upgrade', (req, socket, head) => {
      wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
    });
    await new Promise((resolve) => server.listen(0, HOST, resolve));
    return { port: server.address().port, count: () => wss.clients.size };
  }
  const sockets = new Set();
  const keep = (socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
  };
  const answer = (key) =>
    'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
    `Sec-WebSocket-Accept: ${createHash('sha1')
      .update(key + GUID)
      .digest('base64')}\r\n\r\n`;
  if (kind === 'http') {
    // node:http's floor: what an 'upgrade' event costs before any WebSocket code runs.
    const server = createHttpServer();
    server.on('upgrade', (req, socket) => {
      keep(socket);
      // Read on and end our side after the peer's (node:http's server allows half-open).
      socket.on('end', () => socket.end());
      socket.resume();
      socket.write(answer(req.headers['sec-websocket-key']));
    });
    await new Promise((resolve) => server.listen(0, HOST, resolve));
    return { port: server.address().port, count: () => sockets.size };
  }
  if (kind === 'net') {
    // The floor without node:http: read the head, answer, keep the socket.
    const server = createNetServer((socket) => {
      keep(socket);
      let head = '';
      const onData = (chunk) => {
        head += chunk.toString('latin1');
        const end = head.indexOf('\r\n\r\n');
        if (end === -1) return;
        socket.off('data', onData);
        const key = /sec-websocket-key: *([^\r]+)/i.exec(head)?.[1] ?? '';
        socket.write(answer(key));
      };
      socket.on('data', onData);
    });
    await new Promise((resolve) => server.listen(0, HOST, resolve));
    return { port: server.address().port, count: () => sockets.size };
  }
  throw new Error(`unknown kind ${kind}`);
}

async function settled() {
  for (let i = 0; i < 4; i++) {
    await new Promise((resolve) => setTimeout(resolve, 40));
    globalThis.gc?.();
  }
  const { heapUsed, rss, external } = process.memoryUsage();
  return { heapUsed, rss, external };
}

if (process.argv[2] === '--child') {
  const server = await startServer(process.argv[3]);
  const ops = {
    memory: settled,
    cpu: () => process.cpuUsage(),
    count: () => server.count(),
    snapshot: async () => {
      globalThis.gc?.();
      return (await import('node:v8')).writeHeapSnapshot(`/tmp/idle-${process.argv[3]}.heapsnapshot`);
    },
    exit: () => process.exit(0),
  };
  process.on('message', async ({ id, op }) => {
    process.send({ id, value: await ops[op]() });
  });
  process.send({ id: -1, value: server.port });
} else {
  await main();
}

// ---- the orchestrator and its raw-socket load ---------------------------------------------

function spawnServer(kind, cpuProf) {
  const execArgv = ['--expose-gc'];
  if (cpuProf) execArgv.push('--cpu-prof', `--cpu-prof-dir=${cpuProf}`, `--cpu-prof-name=${kind}.cpuprofile`);
  const child = fork(new URL(import.meta.url).pathname, ['--child', kind], {
    execArgv,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const pending = new Map();
  let nextId = 0;
  let onPort;
  const ready = new Promise((resolve) => {
    onPort = resolve;
  });
  child.on('message', ({ id, value }) => {
    if (id === -1) onPort(value);
    pending.get(id)?.(value);
    pending.delete(id);
  });
  const call = (op) =>
    new Promise((resolve) => {
      const id = nextId++;
      pending.set(id, resolve);
      child.send({ id, op });
    });
  const stop = async () => {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.send({ id: nextId++, op: 'exit' });
    await exited;
  };
  return { ready, call, stop };
}

/** Opens one upgraded connection; resolves with the socket once the 101 head arrived. */
function openOne(port) {
  return new Promise((resolve, reject) => {
    const key = randomBytes(16).toString('base64');
    const socket = connect(port, HOST);
    let head = '';
    socket.setNoDelay(true);
    socket.on('error', reject);
    socket.once('connect', () => {
      socket.write(
        `GET /echo HTTP/1.1\r\nHost: ${HOST}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
    const onData = (chunk) => {
      head += chunk.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      socket.off('data', onData);
      if (!head.startsWith('HTTP/1.1 101')) reject(new Error(head.split('\r\n', 1)[0]));
      else resolve(socket);
    };
    socket.on('data', onData);
  });
}

async function openMany(port, count, concurrency, keep) {
  const sockets = [];
  let started = 0;
  const worker = async () => {
    while (started < count) {
      started++;
      const socket = await openOne(port);
      if (keep) sockets.push(socket);
      else socket.destroy();
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return sockets;
}

async function waitForCount(server, predicate) {
  for (let i = 0; i < 600; i++) {
    if (predicate(await server.call('count'))) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error('server count not reached');
}

async function measureMemory(kind, n) {
  const server = spawnServer(kind);
  const port = await server.ready;
  try {
    const warm = await openMany(port, 100, 50, true);
    for (const s of warm) s.destroy();
    await waitForCount(server, (c) => c === 0);
    const before = await server.call('memory');
    const sockets = await openMany(port, n, 100, true);
    await waitForCount(server, (c) => c >= n);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const after = await server.call('memory');
    if (process.env.IDLE_SNAPSHOT) process.stderr.write(`snapshot ${await server.call('snapshot')}\n`);
    for (const s of sockets) s.destroy();
    const per = (key) => (after[key] - before[key]) / n;
    return { heap: per('heapUsed'), rss: per('rss'), external: per('external') };
  } finally {
    await server.stop();
  }
}

async function measureHandshakes(kind, m, concurrency, cpuProf) {
  const server = spawnServer(kind, cpuProf);
  const port = await server.ready;
  try {
    await openMany(port, Math.ceil(m / 5), concurrency, false); // warm-up
    await waitForCount(server, (c) => c === 0);
    const c0 = await server.call('cpu');
    const t0 = performance.now();
    await openMany(port, m, concurrency, false);
    const seconds = (performance.now() - t0) / 1000;
    const c1 = await server.call('cpu');
    const cpuUs = (c1.user - c0.user + c1.system - c0.system) / m;
    return { perSecond: m / seconds, cpuUs };
  } finally {
    await server.stop();
  }
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

async function main() {
  const args = process.argv.slice(2);
  const arg = (name, fallback) => {
    const i = args.indexOf(name);
    return i === -1 ? fallback : args[i + 1];
  };
  const reps = Number(arg('--reps', 3));
  const idle = Number(arg('--idle', 2000));
  const handshakes = Number(arg('--handshakes', 3000));
  const kinds = arg('--only', 'wskit,wskit-quiet,ws,http,net').split(',');
  const cpuProf = arg('--cpu-prof', undefined);
  const skip = new Set(arg('--skip', '').split(','));
  const mem = Object.fromEntries(kinds.map((k) => [k, []]));
  const hs = Object.fromEntries(kinds.map((k) => [k, []]));
  for (let rep = 0; rep < reps; rep++) {
    const order = kinds.map((_, i) => kinds[(i + rep) % kinds.length]);
    for (const kind of order) {
      if (!skip.has('memory')) mem[kind].push(await measureMemory(kind, idle));
      if (!skip.has('handshakes')) hs[kind].push(await measureHandshakes(kind, handshakes, 50, cpuProf));
    }
  }
  const kib = (b) => `${(b / 1024).toFixed(2)} KiB`.padStart(10);
  for (const kind of kinds) {
    const line = [`${kind.padEnd(12)}`];
    if (mem[kind].length > 0) {
      const heap = median(mem[kind].map((r) => r.heap));
      const rss = median(mem[kind].map((r) => r.rss));
      const ext = median(mem[kind].map((r) => r.external));
      line.push(`heap ${kib(heap)}  rss ${kib(rss)}  external ${kib(ext)}`);
    }
    if (hs[kind].length > 0) {
      const rate = median(hs[kind].map((r) => r.perSecond));
      const cpu = median(hs[kind].map((r) => r.cpuUs));
      line.push(`handshakes ${Math.round(rate)}/s  server CPU ${cpu.toFixed(1)} µs/handshake`);
    }
    process.stdout.write(`${line.join('  ')}\n`);
  }
  if (kinds.includes('wskit') && kinds.includes('ws')) {
    const r = (k, list, key) => median(list[k].map((x) => x[key]));
    if (mem.ws.length > 0)
      process.stdout.write(
        `wskit/ws: heap ${(r('wskit', mem, 'heap') / r('ws', mem, 'heap')).toFixed(2)}, rss ${(r('wskit', mem, 'rss') / r('ws', mem, 'rss')).toFixed(2)}\n`,
      );
    if (hs.ws.length > 0)
      process.stdout.write(
        `wskit/ws: handshakes/s ${(r('wskit', hs, 'perSecond') / r('ws', hs, 'perSecond')).toFixed(2)}, CPU/handshake ${(r('wskit', hs, 'cpuUs') / r('ws', hs, 'cpuUs')).toFixed(2)}\n`,
      );
  }
}
