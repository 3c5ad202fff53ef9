// The client process of bench/http2.mjs: opens WebSockets over one HTTP/2 session or over
// separate TCP connections, measures handshakes, memory and echo throughput.
import { connect as h2connect } from 'node:http2';
import { connect } from '../../packages/core/dist/index.js';
import { serveRequests } from './ipc.mjs';

const sockets = [];
let session;

function memory() {
  globalThis.gc?.();
  globalThis.gc?.();
  const m = process.memoryUsage();
  return { heapUsed: m.heapUsed, rss: m.rss };
}

async function openSession(port, window) {
  const s = h2connect(`http://127.0.0.1:${port}`, window ? { settings: { initialWindowSize: window } } : {});
  if (window) s.on('connect', () => s.setLocalWindowSize(window * 16));
  s.on('error', () => {});
  await new Promise((resolve, reject) => {
    s.once('remoteSettings', resolve);
    s.once('error', reject);
  });
  return s;
}

/** One WebSocket keeps `inFlight` messages in flight until `deadline`; returns echoes. */
async function pump(ws, payload, inFlight, deadline) {
  let echoed = 0;
  for (let i = 0; i < inFlight; i++) await ws.send(payload);
  for (;;) {
    const m = await ws.receive();
    if (m === null) throw new Error('closed during the echo run');
    echoed++;
    if (performance.now() >= deadline) break;
    await ws.send(payload);
  }
  // Drain what is still in flight.
  for (let i = 1; i < inFlight; i++) await ws.receive();
  return echoed;
}

serveRequests({
  memory,
  /** Opens `count` WebSockets, `parallel` handshakes at a time; one h2 session if `http2`. */
  async open({ port, http2, count, parallel, window }) {
    if (http2) session = await openSession(port, window);
    const url = `ws://127.0.0.1:${port}/echo`;
    const options = http2
      ? { http2: true, http2Session: session, pingInterval: 0, connectionTimeout: 0 }
      : { pingInterval: 0, connectionTimeout: 0 };
    const started = performance.now();
    let next = 0;
    const worker = async () => {
      while (next < count) {
        next++;
        sockets.push(await connect(url, options));
      }
    };
    await Promise.all(Array.from({ length: parallel }, worker));
    const ms = performance.now() - started;
    const transports = new Set(sockets.map((ws) => ws.transport));
    return { ms, count: sockets.length, transports: [...transports] };
  },
  /** Every open WebSocket echoes `size`-byte binary messages for `seconds`. */
  async echo({ size, inFlight, seconds }) {
    const payload = Buffer.alloc(size, 0x61);
    const started = performance.now();
    const deadline = started + seconds * 1000;
    const counts = await Promise.all(sockets.map((ws) => pump(ws, payload, inFlight, deadline)));
    const ms = performance.now() - started;
    const messages = counts.reduce((a, b) => a + b, 0);
    return {
      messages,
      ms,
      perSecond: (messages / ms) * 1000,
      bytesPerSecond: ((messages * size) / ms) * 1000,
    };
  },
  async close() {
    await Promise.all(sockets.map((ws) => ws.close(1000).catch(() => {})));
    sockets.length = 0;
    session?.close();
    return true;
  },
});
