#!/usr/bin/env node
/**
 * permessage-deflate benchmark: wskit vs ws, each library as both server and client of
 * itself, with the same messages and the same parameters (defaults on both sides:
 * context takeover, 15-bit windows, zlib's default level and memLevel, threshold 1 KiB,
 * 10 concurrent zlib operations).
 *
 *  1. Compressed echo throughput on one connection: 1000 JSON-like text messages of 16 KiB
 *     (all different) and 1000 binary messages of 10 KiB, with 64 messages in flight.
 *  2. Memory per connection with compression: 500 connections open at once, one message
 *     echoed on each (so both ends hold a compressor and a decompressor); heap and RSS
 *     growth divided by 500. Each measurement runs in a fresh process (RSS never shrinks,
 *     so a second measurement in the same process would reuse the first one's pages).
 *     Client and server share that process: a figure covers both ends of one connection.
 *     The same without compression is measured as the baseline.
 *  3. Compressed messages in many fragments, into each library's server: binary and text
 *     messages of 32 KiB and 128 KiB, each sent as fragments of 256 B and of 4 KiB, as a
 *     client that compresses every fragment with a sync flush does (ws and wskit clients
 *     with `fin: false`): one frame per fragment, RSV1 on the first, the same DEFLATE
 *     stream throughout. The client is the same for both libraries and nearly free: the
 *     frames are compressed and masked once in advance and replayed on a raw socket, and the
 *     echoes (compressed by the server, one frame) are only counted, not inflated. So the
 *     figure is the server's: inflating many small frames, then deflating the echo.
 *  4. The server alone (runs first): each library's server in a child process of its own,
 *     the load from raw sockets replaying 16 KiB JSON-like text messages compressed in
 *     advance (one DEFLATE stream with context takeover, one frame per message), 1
 *     connection and 100 connections; messages per second, server CPU time per message
 *     (user + system, all threads: zlib works in the thread pool) and echo bytes per
 *     message. Then the server's memory per connection with compression negotiated:
 *     before any message, just after one 16 KiB message each, 11 s idle after it (wskit
 *     closes idle compressors), and the peak RSS while every connection echoes.
 *
 * Usage: npx tsc -b packages/core && node bench/deflate.mjs [--quick] [--server | --fragmented]
 * (--server: only part 4; BENCH_SERVER_EXEC_ARGV='--cpu-prof' profiles the server children)
 * Prints a table and writes bench/results/deflate.json.
 */
import { execFileSync, fork } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createDeflateRaw, constants as zconst } from 'node:zlib';
import { WebSocket as WsClient, WebSocketServer as WsServer } from 'ws';
import { connect, WebSocketServer } from '../packages/core/dist/index.js';
import { zlibContexts } from '../packages/core/dist/node/deflate.js';
import { encodeFrame } from '../packages/core/dist/protocol/index.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const QUICK = process.argv.includes('--quick');
const MESSAGES = QUICK ? 200 : 1000;
const RUNS = QUICK ? 1 : 5;
const WINDOW = 64;
const CONNECTIONS = QUICK ? 100 : 500;
const HOST = '127.0.0.1';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc');

// ---- payloads ----------------------------------------------------------------------------

function jsonLike(bytes, seed) {
  const words = ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta', 'eta', 'theta', 'iota', 'kappa'];
  let x = seed * 7919 + 1;
  let s = '[';
  while (s.length < bytes) {
    x = (x * 1103515245 + 12345) % 2147483648;
    s += `{"id":${x % 1000003},"user":"${words[x % 10]}-${x % 977}","score":${(x % 10007) / 100},"active":${x % 3 === 0},"tags":["${words[(x >> 3) % 10]}","${words[(x >> 7) % 10]}"]},`;
  }
  return s.slice(0, bytes);
}

function binary(bytes, seed) {
  const out = Buffer.allocUnsafe(bytes);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < bytes; i++) {
    if ((i >> 8) % 2 === 0) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      x >>>= 0;
      out[i] = x & 0xff;
    } else {
      out[i] = (i * 7 + seed) & 0xff;
    }
  }
  return out;
}

// A server child (--serve=) needs none of these: they would skew its memory baseline.
const SERVE_CHILD = process.argv.some((a) => a.startsWith('--serve='));
const WORKLOADS = SERVE_CHILD
  ? []
  : [
      {
        name: `${MESSAGES} x 16 KiB JSON text`,
        messages: Array.from({ length: MESSAGES }, (_, i) => jsonLike(16 * 1024, i)),
      },
      {
        name: `${MESSAGES} x 10 KiB binary`,
        messages: Array.from({ length: MESSAGES }, (_, i) => binary(10 * 1024, i)),
      },
    ];

const byteLength = (m) => (typeof m === 'string' ? Buffer.byteLength(m) : m.length);

// ---- the two libraries behind one interface --------------------------------------------

let DEFLATE = true;

const libraries = {
  wskit: {
    async server() {
      const wss = new WebSocketServer({
        pingInterval: 0,
        perMessageDeflate: DEFLATE,
        maxBufferedAmount: 256 * 1024 * 1024,
      });
      wss.route('/*', (ws) => {
        ws.on('message', (m) => {
          ws.send(m.data, { binary: m.type === 'binary' }).catch(() => {});
        });
      });
      const { port } = await wss.listen(0, HOST);
      return { url: `ws://${HOST}:${port}/`, close: () => wss.close() };
    },
    async client(url) {
      const ws = await connect(url, {
        pingInterval: 0,
        perMessageDeflate: DEFLATE,
        maxBufferedAmount: 256 * 1024 * 1024,
      });
      return {
        extensions: ws.extensions,
        send: (data) => {
          ws.send(data).catch(() => {});
        },
        onMessage: (fn) => ws.on('message', (m) => fn(m.size)),
        close: () => ws.close(),
      };
    },
  },
  ws: {
    async server() {
      const wss = new WsServer({ port: 0, host: HOST, perMessageDeflate: DEFLATE });
      await new Promise((resolve) => wss.once('listening', resolve));
      wss.on('connection', (ws) => {
        ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
      });
      return {
        url: `ws://${HOST}:${wss.address().port}/`,
        close: () =>
          new Promise((resolve) => {
            for (const c of wss.clients) c.terminate();
            wss.close(() => resolve());
          }),
      };
    },
    async client(url) {
      const ws = new WsClient(url, { perMessageDeflate: DEFLATE });
      await new Promise((resolve, reject) => {
        ws.once('open', resolve);
        ws.once('error', reject);
      });
      let extensions = '';
      const ext = ws._extensions?.['permessage-deflate']?.params; // for the report only
      if (ext) {
        extensions = [
          'permessage-deflate',
          ...Object.entries(ext).map(([k, v]) => (v === true ? k : `${k}=${v}`)),
        ].join('; ');
      }
      return {
        extensions,
        send: (data) => ws.send(data, { binary: typeof data !== 'string' }),
        onMessage: (fn) => ws.on('message', (data) => fn(data.length)),
        close: () =>
          new Promise((resolve) => {
            ws.once('close', resolve);
            ws.close();
          }),
      };
    },
  },
};

// ---- 1. throughput -----------------------------------------------------------------------

/** Echoes every message of the workload with WINDOW in flight; returns seconds. */
async function echoRun(client, messages) {
  return new Promise((resolve, reject) => {
    let sent = 0;
    let received = 0;
    const expected = messages.map(byteLength);
    const start = process.hrtime.bigint();
    const pump = () => {
      while (sent < messages.length && sent - received < WINDOW) client.send(messages[sent++]);
    };
    client.onMessage((size) => {
      if (size !== expected[received])
        reject(new Error(`echo ${received}: ${size} bytes, expected ${expected[received]}`));
      received++;
      if (received === messages.length) resolve(Number(process.hrtime.bigint() - start) / 1e9);
      else pump();
    });
    pump();
  });
}

/**
 * Both libraries on the same workload, runs interleaved (wskit, ws, ws, wskit, ...) so that
 * a noisy neighbour or a warm cache does not favour one of them; the first round warms up.
 */
async function throughput(workload) {
  const names = ['wskit', 'ws'];
  const servers = {};
  const times = { wskit: [], ws: [] };
  const extensions = {};
  try {
    for (const name of names) servers[name] = await libraries[name].server();
    for (let run = 0; run <= RUNS; run++) {
      const order = run % 2 === 0 ? names : [...names].reverse();
      for (const name of order) {
        const client = await libraries[name].client(servers[name].url);
        extensions[name] = client.extensions;
        const seconds = await echoRun(client, workload.messages);
        if (run > 0) times[name].push(seconds);
        await client.close();
      }
    }
  } finally {
    for (const name of names) await servers[name]?.close();
  }
  const bytes = workload.messages.reduce((n, m) => n + byteLength(m), 0);
  return names.map((name) => {
    const sorted = times[name].sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)];
    return {
      library: name,
      workload: workload.name,
      extensions: extensions[name],
      seconds: median,
      messagesPerSecond: workload.messages.length / median,
      mbPerSecond: bytes / median / 1e6,
    };
  });
}

// ---- 3. fragmented compressed messages ----------------------------------------------------

const FRAG_WINDOW = 16;

/** Compresses `messages` as one client would, each split into `fragment`-byte fragments. */
async function fragmentedFrames(messages, fragment, binaryType) {
  const deflater = createDeflateRaw({ windowBits: 15 });
  const chunks = [];
  deflater.on('data', (c) => chunks.push(c));
  const flush = (data) =>
    new Promise((resolve) => {
      deflater.write(data);
      deflater.flush(zconst.Z_SYNC_FLUSH, () => resolve(Buffer.concat(chunks.splice(0))));
    });
  const out = [];
  for (const m of messages) {
    const data = Buffer.from(m);
    const frames = [];
    for (let off = 0; off < data.length; off += fragment) {
      const fin = off + fragment >= data.length;
      let payload = await flush(data.subarray(off, off + fragment));
      if (fin) payload = payload.subarray(0, payload.length - 4); // RFC 7692 §7.2.1
      frames.push(
        ...encodeFrame({
          fin,
          rsv: off === 0 ? 4 : 0,
          opcode: off === 0 ? (binaryType ? 2 : 1) : 0,
          masked: true,
          payload,
        }),
      );
    }
    out.push(Buffer.concat(frames));
  }
  deflater.close();
  return out;
}

/** A raw client: the opening handshake by hand, then replayed frames; echoes are counted. */
async function rawClient(url) {
  const { hostname, port } = new URL(url);
  const socket = netConnect(Number(port), hostname);
  socket.setNoDelay(true);
  await new Promise((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  socket.write(
    'GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n' +
      'Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n',
  );
  let rest = await new Promise((resolve, reject) => {
    let head = Buffer.alloc(0);
    const onData = (chunk) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onData);
      const text = head.subarray(0, end).toString();
      if (!text.startsWith('HTTP/1.1 101') || !/sec-websocket-extensions: permessage-deflate/i.test(text))
        reject(new Error(`unexpected handshake answer: ${text}`));
      else resolve(head.subarray(end + 4));
    };
    socket.on('data', onData);
  });
  socket.pause();
  let onMessage = () => {};
  // Frame headers are parsed, payloads skipped: a message ends with a data frame with FIN.
  let skip = 0;
  let pending = Buffer.alloc(0);
  let bytesIn = 0;
  const parse = (chunk) => {
    bytesIn += chunk.length;
    let buf = pending.length > 0 ? Buffer.concat([pending, chunk]) : chunk;
    let pos = 0;
    for (;;) {
      if (skip > 0) {
        const n = Math.min(skip, buf.length - pos);
        skip -= n;
        pos += n;
        if (skip > 0) break;
      }
      if (buf.length - pos < 2) break;
      const b0 = buf[pos];
      let len = buf[pos + 1] & 0x7f;
      let hlen = 2;
      if (len === 126) hlen = 4;
      else if (len === 127) hlen = 10;
      if (buf.length - pos < hlen) break;
      if (len === 126) len = buf.readUInt16BE(pos + 2);
      else if (len === 127) len = Number(buf.readBigUInt64BE(pos + 2));
      pos += hlen;
      skip = len;
      if ((b0 & 0x80) !== 0 && (b0 & 0x0f) <= 2) onMessage();
    }
    pending = buf.subarray(pos);
    buf = undefined;
  };
  socket.on('data', parse);
  if (rest.length > 0) parse(rest);
  rest = undefined;
  socket.resume();
  return {
    bytesIn: () => bytesIn,
    send: (bytes) => socket.write(bytes),
    onMessage: (fn) => {
      onMessage = fn;
    },
    close: () =>
      new Promise((resolve) => {
        socket.once('close', resolve);
        socket.end(Buffer.from([0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8]));
        setTimeout(() => socket.destroy(), 1000).unref();
      }),
  };
}

/** Replays the encoded messages with FRAG_WINDOW in flight; returns seconds. */
function replay(client, encoded) {
  return new Promise((resolve) => {
    let sent = 0;
    let received = 0;
    const start = process.hrtime.bigint();
    const pump = () => {
      while (sent < encoded.length && sent - received < FRAG_WINDOW) client.send(encoded[sent++]);
    };
    client.onMessage(() => {
      received++;
      if (received === encoded.length) resolve(Number(process.hrtime.bigint() - start) / 1e9);
      else pump();
    });
    pump();
  });
}

const FRAGMENTED = [];
for (const size of [32, 128]) {
  for (const type of ['binary', 'text']) {
    for (const fragment of [256, 4096]) {
      const count = Math.max(20, Math.round(((QUICK ? 4 : 16) * 1024) / size));
      FRAGMENTED.push({ size, type, fragment, count });
    }
  }
}

async function fragmentedThroughput(w) {
  const messages = Array.from({ length: w.count }, (_, i) =>
    w.type === 'binary' ? binary(w.size * 1024, i) : jsonLike(w.size * 1024, i),
  );
  const encoded = await fragmentedFrames(messages, w.fragment, w.type === 'binary');
  const frames = Math.ceil((w.size * 1024) / w.fragment);
  const names = ['wskit', 'ws'];
  const servers = {};
  const times = { wskit: [], ws: [] };
  try {
    for (const name of names) servers[name] = await libraries[name].server();
    for (let run = 0; run <= RUNS; run++) {
      const order = run % 2 === 0 ? names : [...names].reverse();
      for (const name of order) {
        const client = await rawClient(servers[name].url);
        const seconds = await replay(client, encoded);
        if (run > 0) times[name].push(seconds);
        await client.close();
      }
    }
  } finally {
    for (const name of names) await servers[name]?.close();
  }
  const median = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const row = {
    workload: `${w.size} KiB ${w.type} in ${w.fragment === 256 ? '256 B' : '4 KiB'} fragments (${frames} frames)`,
    messages: w.count,
    compressedBytesPerMessage: Math.round(encoded.reduce((n, b) => n + b.length, 0) / w.count),
  };
  for (const name of names) row[name] = w.count / median(times[name]);
  row.ratio = row.wskit / row.ws;
  return row;
}

// ---- 4. the server alone: raw-socket load, server CPU and memory -------------------------

/**
 * Each library's server runs in a child process of its own (so its CPU time and memory are
 * its own); the load comes from raw sockets in this process replaying 16 KiB JSON-like text
 * messages compressed in advance the way a client with context takeover sends them (one
 * DEFLATE stream per connection, one frame per message, masked). Every connection replays
 * the same frames; the server's compressed echoes are counted, not inflated.
 */
const SERVER_SCENARIOS = [
  { connections: 1, messagesPerConnection: QUICK ? 300 : 1000, window: 16 },
  { connections: 100, messagesPerConnection: QUICK ? 10 : 30, window: 4 },
];
const SERVER_MEMORY_CONNECTIONS = QUICK ? 100 : 300;
const IDLE_WAIT_MS = 11_000;

async function serveChild(libName) {
  // A child: one server; answers the parent's requests for CPU time and memory over IPC.
  const server = await libraries[libName].server();
  let peak = 0;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, 20);
  process.on('message', async (msg) => {
    if (msg === 'cpu') {
      const { user, system } = process.cpuUsage();
      process.send({ cpu: user + system });
    } else if (msg === 'memory') {
      await settle();
      const m = process.memoryUsage();
      peak = m.rss;
      process.send({ memory: { heap: m.heapUsed, rss: m.rss, external: m.external } });
    } else if (msg === 'peak') {
      process.send({ peak });
    } else if (msg === 'exit') {
      clearInterval(sampler);
      await server.close();
      process.exit(0);
    }
  });
  process.send({ url: server.url });
}

function startServerChild(libName) {
  const args = [`--serve=${libName}`];
  // BENCH_SERVER_EXEC_ARGV: extra node flags for the server (e.g. --cpu-prof), to profile it.
  const execArgv = (process.env.BENCH_SERVER_EXEC_ARGV ?? '').split(' ').filter(Boolean);
  const proc = fork(fileURLToPath(import.meta.url), args, {
    execArgv,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const waiters = [];
  proc.on('message', (m) => waiters.shift()?.(m));
  const ask = (what) =>
    new Promise((resolve) => {
      waiters.push(resolve);
      if (what !== undefined) proc.send(what);
    });
  return ask().then(({ url }) => ({
    url,
    cpu: async () => (await ask('cpu')).cpu,
    memory: async () => (await ask('memory')).memory,
    peak: async () => (await ask('peak')).peak,
    exit: () =>
      new Promise((resolve) => {
        proc.once('exit', resolve);
        proc.send('exit');
      }),
  }));
}

/** Replays `encoded` on every client, `window` in flight on each; resolves when all echoed. */
function replayAll(clients, encoded, window) {
  return Promise.all(
    clients.map(
      (client) =>
        new Promise((resolve) => {
          let sent = 0;
          let received = 0;
          const pump = () => {
            while (sent < encoded.length && sent - received < window) client.send(encoded[sent++]);
          };
          client.onMessage(() => {
            received++;
            if (received === encoded.length) resolve();
            else pump();
          });
          pump();
        }),
    ),
  );
}

async function openRawClients(url, n) {
  const clients = [];
  for (let i = 0; i < n; i += 50)
    clients.push(...(await Promise.all(Array.from({ length: Math.min(50, n - i) }, () => rawClient(url)))));
  return clients;
}

async function serverAlone() {
  const texts = Array.from({ length: 200 }, (_, i) => jsonLike(16 * 1024, i));
  const oneStream = await fragmentedFrames(texts, 16 * 1024, false); // one frame per message
  const names = ['wskit', 'ws'];
  const rows = [];
  for (const sc of SERVER_SCENARIOS) {
    const encoded = Array.from(
      { length: sc.messagesPerConnection },
      (_, i) => oneStream[i % oneStream.length],
    );
    // The 200 messages repeat: a stream of more than 200 needs them compressed as one stream.
    const stream =
      sc.messagesPerConnection <= oneStream.length
        ? encoded
        : await fragmentedFrames(
            Array.from({ length: sc.messagesPerConnection }, (_, i) => texts[i % texts.length]),
            16 * 1024,
            false,
          );
    const samples = { wskit: [], ws: [] };
    const servers = {};
    try {
      for (const name of names) servers[name] = await startServerChild(name);
      for (let run = 0; run <= RUNS; run++) {
        const order = run % 2 === 0 ? names : [...names].reverse();
        for (const name of order) {
          const server = servers[name];
          const clients = await openRawClients(server.url, sc.connections);
          const in0 = clients.reduce((n, c) => n + c.bytesIn(), 0);
          const cpu0 = await server.cpu();
          const t0 = process.hrtime.bigint();
          await replayAll(clients, stream, sc.window);
          const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
          const cpu = (await server.cpu()) - cpu0;
          await Promise.all(clients.map((c) => c.close()));
          const messages = sc.connections * stream.length;
          const echoBytes = (clients.reduce((n, c) => n + c.bytesIn(), 0) - in0) / messages;
          if (run > 0)
            samples[name].push({ perSecond: messages / seconds, cpuMicros: cpu / messages, echoBytes });
        }
      }
    } finally {
      for (const name of names) await servers[name]?.exit();
    }
    const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const row = {
      workload: `16 KiB JSON text, ${sc.connections} connection${sc.connections > 1 ? 's' : ''} x ${stream.length} messages, ${sc.window} in flight each`,
      connections: sc.connections,
      messages: sc.connections * stream.length,
    };
    for (const name of names) {
      row[name] = {
        messagesPerSecond: median(samples[name].map((s) => s.perSecond)),
        cpuMicrosPerMessage: median(samples[name].map((s) => s.cpuMicros)),
        echoBytesPerMessage: median(samples[name].map((s) => s.echoBytes)),
        runs: samples[name],
      };
    }
    row.ratio = row.wskit.messagesPerSecond / row.ws.messagesPerSecond;
    row.cpuRatio = row.wskit.cpuMicrosPerMessage / row.ws.cpuMicrosPerMessage;
    rows.push(row);
    process.stderr.write(
      `  server alone, ${row.workload}: wskit ${row.wskit.messagesPerSecond.toFixed(0)} msg/s ${row.wskit.cpuMicrosPerMessage.toFixed(0)} µs CPU/msg, ws ${row.ws.messagesPerSecond.toFixed(0)} msg/s ${row.ws.cpuMicrosPerMessage.toFixed(0)} µs CPU/msg\n`,
    );
  }
  return rows;
}

/**
 * Server memory per connection with compression negotiated, each library in a fresh child:
 * idle (negotiated, nothing sent yet), after one 16 KiB message echoed on every connection
 * (settled), and the peak RSS while every connection echoes 4 in flight.
 */
async function serverMemory(libName) {
  const n = SERVER_MEMORY_CONNECTIONS;
  const texts = Array.from({ length: 8 }, (_, i) => jsonLike(16 * 1024, i));
  const encoded = await fragmentedFrames(texts, 16 * 1024, false);
  const server = await startServerChild(libName);
  try {
    const base = await server.memory();
    const clients = await openRawClients(server.url, n);
    const idle = await server.memory();
    await replayAll(clients, encoded.slice(0, 1), 1);
    const used = await server.memory();
    // Idle for a while: wskit releases idle deflaters after 5 to 10 s (IDLE_SWEEP_MS).
    await new Promise((r) => setTimeout(r, IDLE_WAIT_MS));
    const later = await server.memory();
    await replayAll(clients, encoded.slice(1), 4);
    const peak = await server.peak();
    await Promise.all(clients.map((c) => c.close()));
    const per = (a, b) => (a - b) / n / 1024;
    return {
      library: libName,
      connections: n,
      idle: {
        heapKiB: per(idle.heap, base.heap),
        rssKiB: per(idle.rss, base.rss),
        externalKiB: per(idle.external, base.external),
      },
      idleAfterMessage: {
        heapKiB: per(later.heap, base.heap),
        rssKiB: per(later.rss, base.rss),
        externalKiB: per(later.external, base.external),
      },
      afterMessage: {
        heapKiB: per(used.heap, base.heap),
        rssKiB: per(used.rss, base.rss),
        externalKiB: per(used.external, base.external),
      },
      peakUnderLoadRssKiB: per(peak, base.rss),
    };
  } finally {
    await server.exit();
  }
}

// ---- 2. memory per connection ------------------------------------------------------------

async function settle() {
  for (let i = 0; i < 4; i++) {
    await new Promise((r) => setTimeout(r, 50));
    gc();
  }
}

async function memory(libName) {
  const lib = libraries[libName];
  const server = await lib.server();
  const message = jsonLike(4 * 1024, 99); // above the threshold: compressed both ways
  try {
    await settle();
    const before = process.memoryUsage();
    const clients = [];
    for (let i = 0; i < CONNECTIONS; i += 50) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(50, CONNECTIONS - i) }, async () => {
          const c = await lib.client(server.url);
          await new Promise((resolve) => {
            c.onMessage(resolve);
            c.send(message);
          });
          return c;
        }),
      );
      clients.push(...batch);
    }
    await settle();
    const after = process.memoryUsage();
    const contexts = libName === 'wskit' ? zlibContexts() : undefined;
    for (let i = 0; i < clients.length; i += 100)
      await Promise.all(clients.slice(i, i + 100).map((c) => c.close()));
    return {
      library: libName,
      compression: DEFLATE,
      connections: CONNECTIONS,
      heapPerConnectionKiB: (after.heapUsed - before.heapUsed) / CONNECTIONS / 1024,
      rssPerConnectionKiB: (after.rss - before.rss) / CONNECTIONS / 1024,
      externalPerConnectionKiB: (after.external - before.external) / CONNECTIONS / 1024,
      ...(contexts !== undefined ? { zlibContexts: contexts } : {}),
    };
  } finally {
    await server.close();
  }
}

// ---- main --------------------------------------------------------------------------------

const serveArg = process.argv.find((a) => a.startsWith('--serve='));
if (serveArg !== undefined) {
  await serveChild(serveArg.slice('--serve='.length));
  await new Promise(() => {}); // until the parent says 'exit'
}
const child = process.argv.find((a) => a.startsWith('--memory='));
if (child !== undefined) {
  // A child run: one memory measurement, printed as JSON.
  const [lib, mode] = child.slice('--memory='.length).split(':');
  DEFLATE = mode !== 'plain';
  console.log(JSON.stringify(await memory(lib)));
  process.exit(0);
}

function memoryInChild(lib, deflate) {
  const args = [fileURLToPath(import.meta.url), `--memory=${lib}:${deflate ? 'deflate' : 'plain'}`];
  if (QUICK) args.push('--quick');
  const out = execFileSync(process.execPath, args, {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return JSON.parse(out.trim().split('\n').at(-1));
}

const started = Date.now();
const ONLY_FRAGMENTED = process.argv.includes('--fragmented');
const ONLY_SERVER = process.argv.includes('--server');
const results = { throughput: [], fragmented: [], memory: [], server: [], serverMemory: [] };
if (!ONLY_FRAGMENTED) {
  results.server = await serverAlone();
  for (const lib of ['wskit', 'ws']) results.serverMemory.push(await serverMemory(lib));
}
for (const workload of ONLY_FRAGMENTED || ONLY_SERVER ? [] : WORKLOADS) {
  for (const r of await throughput(workload)) {
    results.throughput.push(r);
    process.stderr.write(
      `  ${r.library.padEnd(6)} ${workload.name}: ${r.messagesPerSecond.toFixed(0)} msg/s\n`,
    );
  }
}
for (const w of ONLY_SERVER ? [] : FRAGMENTED) {
  const r = await fragmentedThroughput(w);
  results.fragmented.push(r);
  process.stderr.write(
    `  ${r.workload}: wskit ${r.wskit.toFixed(0)} msg/s, ws ${r.ws.toFixed(0)} msg/s (${r.ratio.toFixed(2)}x)\n`,
  );
}
for (const deflate of ONLY_FRAGMENTED || ONLY_SERVER ? [] : [true, false]) {
  for (const lib of ['wskit', 'ws']) results.memory.push(memoryInChild(lib, deflate));
}

const fmt = (n, d = 0) => n.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
const kib = (x) => fmt(x, 1);
const table = [
  '',
  `16 KiB JSON-like text into each server alone (server in its own process, raw-socket load, median of ${RUNS})`,
  '| workload | wskit msg/s | ws msg/s | wskit/ws | wskit CPU µs/msg | ws CPU µs/msg | CPU wskit/ws | echo B/msg wskit | echo B/msg ws |',
  '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  ...results.server.map(
    (r) =>
      `| ${r.workload} | ${fmt(r.wskit.messagesPerSecond)} | ${fmt(r.ws.messagesPerSecond)} | ${fmt(r.ratio, 2)} | ${fmt(r.wskit.cpuMicrosPerMessage)} | ${fmt(r.ws.cpuMicrosPerMessage)} | ${fmt(r.cpuRatio, 2)} | ${fmt(r.wskit.echoBytesPerMessage)} | ${fmt(r.ws.echoBytesPerMessage)} |`,
  ),
  '',
  `server memory per connection with permessage-deflate negotiated (${SERVER_MEMORY_CONNECTIONS} connections, server alone)`,
  '| library | negotiated, no message: heap / RSS KiB | just after 1 msg: heap / RSS KiB | 11 s idle after it: heap / RSS KiB | peak RSS under load KiB |',
  '|---|---:|---:|---:|---:|',
  ...results.serverMemory.map(
    (r) =>
      `| ${r.library} | ${kib(r.idle.heapKiB)} / ${kib(r.idle.rssKiB)} | ${kib(r.afterMessage.heapKiB)} / ${kib(r.afterMessage.rssKiB)} | ${kib(r.idleAfterMessage.heapKiB)} / ${kib(r.idleAfterMessage.rssKiB)} | ${kib(r.peakUnderLoadRssKiB)} |`,
  ),
  '',
  `permessage-deflate echo throughput (one connection, ${WINDOW} in flight, median of ${RUNS})`,
  '| workload | library | msg/s | MB/s | agreed |',
  '|---|---|---:|---:|---|',
  ...results.throughput.map(
    (r) =>
      `| ${r.workload} | ${r.library} | ${fmt(r.messagesPerSecond)} | ${fmt(r.mbPerSecond, 1)} | ${r.extensions} |`,
  ),
  '',
  `compressed messages in many fragments, into each server (raw client, ${FRAG_WINDOW} in flight, median of ${RUNS})`,
  '| workload | messages | compressed B/msg | wskit msg/s | ws msg/s | wskit/ws |',
  '|---|---:|---:|---:|---:|---:|',
  ...results.fragmented.map(
    (r) =>
      `| ${r.workload} | ${r.messages} | ${fmt(r.compressedBytesPerMessage)} | ${fmt(r.wskit)} | ${fmt(r.ws)} | ${fmt(r.ratio, 2)} |`,
  ),
  '',
  `memory per connection (${CONNECTIONS} connections, one message each, both ends in one fresh process)`,
  '| library | compression | heap KiB/conn | RSS KiB/conn | external KiB/conn |',
  '|---|---|---:|---:|---:|',
  ...results.memory.map(
    (r) =>
      `| ${r.library} | ${r.compression ? 'permessage-deflate' : 'none'} | ${fmt(r.heapPerConnectionKiB, 1)} | ${fmt(r.rssPerConnectionKiB, 1)} | ${fmt(r.externalPerConnectionKiB, 1)} |`,
  ),
  '',
];
console.log(table.join('\n'));

const out = {
  benchmark: 'permessage-deflate',
  date: new Date().toISOString(),
  node: process.version,
  platform: `${process.platform} ${process.arch}`,
  quick: QUICK,
  settings: { messages: MESSAGES, runs: RUNS, window: WINDOW, connections: CONNECTIONS },
  durationSeconds: (Date.now() - started) / 1000,
  ...results,
};
const file = join(HERE, 'results', 'deflate.json');
mkdirSync(dirname(file), { recursive: true });
writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
console.log(`wrote ${file} (${out.durationSeconds.toFixed(1)} s)`);
process.exit(0);
