// A load process for the server-side and client-side echo scenarios of run.mjs.
//
// client 'raw': sockets of raw-load.mjs — pre-built masked frames, echoes counted from the
//   frame headers; the cheap load under which a server is measured alone.
// client 'wskit' / 'ws': the library's client (connectors.mjs) — the load *is* what is
//   measured (client-side scenarios), against the same server.
//
// The orchestrator drives it: open (connections), start (each connection sends `pipeline`
// messages, then one more per echo), mark (counters, CPU and clock now; latencies since the
// previous mark), stop (no new sends, wait for the echoes in flight, close).
import { performance } from 'node:perf_hooks';
import { connectors } from './connectors.mjs';
import { serveRequests } from './ipc.mjs';
import { buildFrame, FrameScanner, loadPayload, rawHandshake } from './raw-load.mjs';

let conns = [];
let running = false;
let messages = 0;
let errors = 0;
const errorSamples = new Set();
let inFlight = 0;
let perConnection = 1;
let drained = () => {};
/** Round trips (ms) since the last mark, when one message is in flight per connection. */
let latencies = [];
let timed = false;

function error(err) {
  errors++;
  if (errorSamples.size < 3) errorSamples.add(err instanceof Error ? err.message : String(err));
}

function received(n) {
  messages += n;
  if (!running) {
    inFlight -= n;
    if (inFlight <= 0) drained();
  }
}

/**
 * `pipeline` copies of one pre-built frame back to back, built once per workload and
 * shared by every connection: n echoes are answered with one write of the first n frames.
 */
const batches = new Map();
function frameBatch(size, binary, pipeline) {
  const key = `${size}:${binary}:${pipeline}`;
  let b = batches.get(key);
  if (b === undefined) {
    const frame = buildFrame(loadPayload(size, binary), binary);
    const batch = Buffer.allocUnsafe(frame.length * pipeline);
    for (let i = 0; i < pipeline; i++) frame.copy(batch, i * frame.length);
    b = { batch, flen: frame.length };
    batches.set(key, b);
  }
  return b;
}

/** Payloads for the library clients, one per (size, type). */
const payloads = new Map();
function libraryPayload(size, binary) {
  const key = `${size}:${binary}`;
  let p = payloads.get(key);
  if (p === undefined) {
    // Text goes as a string, binary as a Buffer: what an application hands to send().
    const raw = loadPayload(size, binary);
    p = binary ? raw : raw.toString('latin1');
    payloads.set(key, p);
  }
  return p;
}

async function openRaw({ url, size, binary, pipeline }) {
  const { batch, flen } = frameBatch(size, binary, pipeline);
  const { socket, rest } = await rawHandshake(url);
  const scanner = new FrameScanner(size);
  let sentAt = 0;
  const onData = (chunk) => {
    const n = scanner.scan(chunk);
    if (n === 0) {
      if (scanner.closeSeen) error(new Error('the server sent a Close frame'));
      return;
    }
    if (timed) {
      const now = performance.now();
      latencies.push(now - sentAt);
      sentAt = now;
    }
    received(n);
    if (running) socket.write(n === pipeline ? batch : batch.subarray(0, n * flen));
  };
  socket.on('data', onData);
  socket.on('error', error);
  if (rest.length > 0) onData(rest);
  return {
    start() {
      sentAt = performance.now();
      socket.write(batch);
    },
    errors: () => scanner.wrongSizes,
    close() {
      socket.destroy();
    },
  };
}

async function openLibrary(connector, { url, size, binary, pipeline }) {
  const payload = libraryPayload(size, binary);
  let wrong = 0;
  let sentAt = 0;
  const link = await connector(
    url,
    {
      message(got, isBinary) {
        if (got !== size || isBinary !== binary) wrong++;
        if (timed) {
          const now = performance.now();
          latencies.push(now - sentAt);
          sentAt = now;
        }
        received(1);
        if (running) link.send(payload, binary);
      },
      close(code) {
        if (running) error(new Error(`closed by the server (${code})`));
      },
      error,
    },
    { maxMessageSize: 2 * 1024 * 1024, deflate: false },
  );
  return {
    start() {
      sentAt = performance.now();
      for (let i = 0; i < pipeline; i++) link.send(payload, binary);
    },
    errors: () => wrong,
    close() {
      link.terminate();
    },
  };
}

function percentile(sorted, p) {
  return sorted.length === 0
    ? Number.NaN
    : sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

serveRequests({
  async open({ client, url, connections, size, binary, pipeline }) {
    const connector = connectors[client];
    if (client !== 'raw' && connector === undefined) throw new Error(`unknown client ${client}`);
    messages = 0;
    errors = 0;
    errorSamples.clear();
    latencies = [];
    timed = pipeline === 1;
    const args = { url, size, binary, pipeline };
    const opened = [];
    // 50 handshakes at a time.
    let next = 0;
    const opener = async () => {
      while (next < connections) {
        next++;
        opened.push(await (client === 'raw' ? openRaw(args) : openLibrary(connector, args)));
      }
    };
    await Promise.all(Array.from({ length: Math.min(50, connections) }, opener));
    conns = opened;
    perConnection = pipeline;
    return { opened: conns.length };
  },

  start() {
    running = true;
    for (const c of conns) c.start();
  },

  mark() {
    const sorted = latencies.sort((a, b) => a - b);
    const out = {
      t: performance.now(),
      cpu: process.cpuUsage(),
      messages,
      errors: errors + conns.reduce((n, c) => n + c.errors(), 0),
      latency: { count: sorted.length, p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99) },
    };
    latencies = [];
    return out;
  },

  async stop() {
    running = false;
    // Everything still in flight is awaited (bounded), so the next measurement starts clean.
    const done = new Promise((resolve) => {
      drained = resolve;
    });
    // While running, every echo was answered with a new message: all of them are in flight.
    inFlight = conns.length * perConnection;
    const settled =
      inFlight <= 0 ||
      (await Promise.race([done.then(() => true), new Promise((r) => setTimeout(() => r(false), 10_000))]));
    for (const c of conns) c.close();
    conns = [];
    return { drained: settled, errors, errorSamples: [...errorSamples] };
  },
});
