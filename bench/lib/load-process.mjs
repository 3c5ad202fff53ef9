// A load process for the server-side and client-side echo scenarios of run.mjs.
//
// client 'raw': sockets of raw-load.mjs — pre-built masked frames, echoes counted from the
//   frame headers; the cheap load under which a server is measured alone.
// client 'wskit' / 'ws': the library's client (connectors.mjs) — the load *is* what is
//   measured (client-side scenarios), against the same server.
//
// The orchestrator drives it, per connection set (one per implementation, kept open across
// the repetitions of a workload): open (connections), start (each connection sends
// `pipeline` messages, then one more per echo), mark (counters, CPU and clock now; latencies
// since the previous mark), pause (no new sends, the echoes in flight awaited), close.
import { performance } from 'node:perf_hooks';
import { connectors } from './connectors.mjs';
import { serveRequests } from './ipc.mjs';
import { buildFrame, FrameScanner, loadPayload, rawHandshake } from './raw-load.mjs';

/** A set of connections to one server with one workload, and its counters. */
class LoadSet {
  conns = [];
  running = false;
  messages = 0;
  errors = 0;
  errorSamples = new Set();
  inFlight = 0;
  drained = () => {};
  /** Round trips (ms) since the last mark, when one message is in flight per connection. */
  latencies = [];

  constructor(pipeline) {
    this.pipeline = pipeline;
    this.timed = pipeline === 1;
  }

  error(err) {
    this.errors++;
    if (this.errorSamples.size < 3) this.errorSamples.add(err instanceof Error ? err.message : String(err));
  }

  received(n) {
    this.messages += n;
    if (!this.running) {
      this.inFlight -= n;
      if (this.inFlight <= 0) this.drained();
    }
  }
}

const sets = new Map();

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

async function openRaw(set, { url, size, binary, pipeline }) {
  const { batch, flen } = frameBatch(size, binary, pipeline);
  const { socket, rest } = await rawHandshake(url);
  const scanner = new FrameScanner(size);
  let sentAt = 0;
  const onData = (chunk) => {
    const n = scanner.scan(chunk);
    if (n === 0) {
      if (scanner.closeSeen) set.error(new Error('the server sent a Close frame'));
      return;
    }
    if (set.timed) {
      const now = performance.now();
      set.latencies.push(now - sentAt);
      sentAt = now;
    }
    set.received(n);
    if (set.running) socket.write(n === pipeline ? batch : batch.subarray(0, n * flen));
  };
  socket.on('data', onData);
  socket.on('error', (err) => set.error(err));
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

async function openLibrary(set, connector, { url, size, binary, pipeline }) {
  const payload = libraryPayload(size, binary);
  let wrong = 0;
  let sentAt = 0;
  let closing = false;
  const link = await connector(
    url,
    {
      message(got, isBinary) {
        if (got !== size || isBinary !== binary) wrong++;
        if (set.timed) {
          const now = performance.now();
          set.latencies.push(now - sentAt);
          sentAt = now;
        }
        set.received(1);
        if (set.running) link.send(payload, binary);
      },
      close(code) {
        if (!closing) set.error(new Error(`closed by the server (${code})`));
      },
      error: (err) => set.error(err),
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
      closing = true;
      link.terminate();
    },
  };
}

function percentile(sorted, p) {
  return sorted.length === 0
    ? Number.NaN
    : sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

function setOf(id) {
  const set = sets.get(id);
  if (set === undefined) throw new Error(`no connection set ${id}`);
  return set;
}

serveRequests({
  async open({ id, client, url, connections, size, binary, pipeline }) {
    const connector = connectors[client];
    if (client !== 'raw' && connector === undefined) throw new Error(`unknown client ${client}`);
    if (sets.has(id)) throw new Error(`connection set ${id} is open`);
    const set = new LoadSet(pipeline);
    sets.set(id, set);
    const args = { url, size, binary, pipeline };
    // 50 handshakes at a time.
    let next = 0;
    const opener = async () => {
      while (next < connections) {
        next++;
        set.conns.push(await (client === 'raw' ? openRaw(set, args) : openLibrary(set, connector, args)));
      }
    };
    await Promise.all(Array.from({ length: Math.min(50, connections) }, opener));
    return { opened: set.conns.length };
  },

  start({ id }) {
    const set = setOf(id);
    set.running = true;
    set.latencies = [];
    for (const c of set.conns) c.start();
  },

  mark({ id }) {
    const set = setOf(id);
    const sorted = set.latencies.sort((a, b) => a - b);
    const out = {
      t: performance.now(),
      cpu: process.cpuUsage(),
      messages: set.messages,
      errors: set.errors + set.conns.reduce((n, c) => n + c.errors(), 0),
      latency: { count: sorted.length, p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99) },
    };
    set.latencies = [];
    return out;
  },

  /** No new messages; the echoes in flight are awaited (bounded), the connections stay open. */
  async pause({ id }) {
    const set = setOf(id);
    set.running = false;
    const done = new Promise((resolve) => {
      set.drained = resolve;
    });
    // While running, every echo was answered with a new message: all of them are in flight.
    set.inFlight = set.conns.length * set.pipeline;
    const settled =
      set.inFlight <= 0 ||
      (await Promise.race([done.then(() => true), new Promise((r) => setTimeout(() => r(false), 10_000))]));
    return { drained: settled, errors: set.errors, errorSamples: [...set.errorSamples] };
  },

  close({ id }) {
    const set = sets.get(id);
    if (set === undefined) return;
    set.running = false;
    for (const c of set.conns) c.close();
    sets.delete(id);
  },
});
