// The server side of bench/hostile.mjs: one fresh process per (implementation, attack),
// with that library's default options. It records the peak RSS while an attack runs and
// answers the orchestrator's questions over IPC.
import { WebSocketServer as WsServer } from 'ws';
import { WebSocketServer } from '../../packages/core/dist/index.js';
import { serveRequests, settledMemory } from './ipc.mjs';

const HOST = '127.0.0.1';
const TOPIC = 'hostile';
const noop = () => {};

let server;
let peakRss = 0;
const sampler = setInterval(() => {
  const rss = process.memoryUsage.rss();
  if (rss > peakRss) peakRss = rss;
}, 5);
sampler.unref();

async function startWskit() {
  const wss = new WebSocketServer(); // the defaults, as `new WebSocketServer()` gives them
  const open = new Set();
  wss.route('*', (ws) => {
    open.add(ws);
    ws.on('message', noop); // a consumer, as an application has
    ws.on('error', noop);
    ws.closed.then(() => open.delete(ws), noop);
    if (ws.path === '/pub') ws.subscribe(TOPIC);
  });
  const { port } = await wss.listen(0, HOST);
  return {
    port,
    count: () => open.size,
    async publishAttack({ count, size }) {
      const target = [...open].find((ws) => ws.path === '/pub');
      if (target === undefined) throw new Error('no /pub connection');
      // A fragmented send stays open, so published frames wait behind it.
      target.send('first fragment', { fin: false }).catch(noop);
      const payload = Buffer.alloc(size, 0x61);
      for (let i = 0; i < count; i++) wss.publish(TOPIC, payload, { binary: true });
      return { bufferedAmount: target.bufferedAmount, open: target.readyState === 1 };
    },
    close: () => wss.close(),
  };
}

async function startWs() {
  const wss = new WsServer({ host: HOST, port: 0 }); // ws's defaults
  await new Promise((resolve) => wss.once('listening', resolve));
  const paths = new Map();
  wss.on('connection', (ws, req) => {
    paths.set(ws, req.url);
    ws.on('message', noop);
    ws.on('error', noop);
    ws.on('close', () => paths.delete(ws));
  });
  return {
    port: wss.address().port,
    count: () => wss.clients.size,
    async publishAttack({ count, size }) {
      const target = [...wss.clients].find((ws) => paths.get(ws) === '/pub');
      if (target === undefined) throw new Error('no /pub connection');
      // ws has no publish and no open fragmented send to hide behind: just the sends.
      const payload = Buffer.alloc(size, 0x61);
      for (let i = 0; i < count; i++) target.send(payload, { binary: true });
      return { bufferedAmount: target.bufferedAmount, open: target.readyState === 1 };
    },
    close: () =>
      new Promise((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => resolve());
      }),
  };
}

serveRequests({
  async start({ kind }) {
    server = kind === 'wskit' ? await startWskit() : await startWs();
    return { port: server.port };
  },
  /** Settled memory now, and resets the peak to it. */
  async baseline() {
    const m = await settledMemory();
    peakRss = m.rss;
    return m;
  },
  /** Peak RSS since the baseline, and the settled memory now (connections still held). */
  async measure() {
    const peak = Math.max(peakRss, process.memoryUsage.rss());
    const m = await settledMemory();
    return { peakRss: Math.max(peak, m.rss), ...m };
  },
  count: () => server.count(),
  publishAttack: (args) => server.publishAttack(args),
  async close() {
    await server?.close();
    server = undefined;
  },
});
