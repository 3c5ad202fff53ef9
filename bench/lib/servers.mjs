// The servers, each with the same two endpoints (`ceiling`: echo only):
//   echo  — every message goes back to its sender with its type;
//   bcast — subscribers; a message {"count","size","binary"} from any of them makes the
//           server send `count` messages of `size` bytes to all of them (fan-out).
// Each runs in its own process (server-process.mjs), so the load generator doesn't
// share its event loop.
import { createServer as createHttpServer } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { performance } from 'node:perf_hooks';
import { WebSocketServer as WsServer } from 'ws';
import { WebSocketServer } from '../../packages/core/dist/index.js';
import { encodeRecord, RecordParser } from './raw.mjs';
import { startCeilingServer } from './raw-load.mjs';

const HOST = '127.0.0.1';
const noop = () => {};

/** Fan-out payloads, built once per (size, type): random bytes or ASCII text, as a Buffer. */
const payloads = new Map();
function fanoutPayload(size, binary) {
  const key = `${size}:${binary}`;
  let p = payloads.get(key);
  if (p === undefined) {
    p = Buffer.allocUnsafe(size);
    for (let i = 0; i < size; i++)
      p[i] = binary ? (Math.random() * 256) | 0 : 97 + ((Math.random() * 26) | 0);
    payloads.set(key, p);
  }
  return p;
}

/** Time spent in the servers' fan-out loops (publish, or the loop over the clients). */
export const fanoutStats = { calls: 0, ms: 0, deliveries: 0 };

/**
 * Runs `count` fan-outs and times them up to the end of the current tick: writes that a
 * library defers with cork() and process.nextTick (wskit does) are counted too.
 */
function timedFanout(count, fn) {
  const t0 = performance.now();
  let deliveries = 0;
  for (let i = 0; i < count; i++) deliveries += fn();
  fanoutStats.calls += count;
  fanoutStats.deliveries += deliveries;
  process.nextTick(() => {
    fanoutStats.ms += performance.now() - t0;
  });
}

const servers = {
  /** wskit with its defaults (keepalive pings, idle timeout), or with `options` on top. */
  async wskit(options = {}) {
    const wss = new WebSocketServer(options);
    wss.route('/echo', (ws) => {
      ws.on('message', (m) => {
        ws.send(m.data, { binary: m.type === 'binary' }).catch(noop);
      });
    });
    wss.route('/bcast', (ws) => {
      ws.subscribe('bench');
      ws.on('message', (m) => {
        const req = JSON.parse(m.text());
        const payload = fanoutPayload(req.size, req.binary);
        timedFanout(req.count, () => wss.publish('bench', payload, { binary: req.binary }));
      });
    });
    const { port } = await wss.listen(0, HOST);
    return {
      urls: { echo: `ws://${HOST}:${port}/echo`, bcast: `ws://${HOST}:${port}/bcast` },
      count: () => wss.clients.size,
      close: () => wss.close(),
    };
  },

  /** ws with its defaults (no compression on the server side), routed by path. */
  async ws() {
    const server = createHttpServer();
    const echo = new WsServer({ noServer: true });
    const bcast = new WsServer({ noServer: true });
    echo.on('connection', (ws) => {
      ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    });
    bcast.on('connection', (ws) => {
      ws.on('message', (data) => {
        const req = JSON.parse(data.toString());
        const payload = fanoutPayload(req.size, req.binary);
        const opts = { binary: req.binary };
        timedFanout(req.count, () => {
          let n = 0;
          for (const client of bcast.clients) {
            if (client.readyState === 1) {
              client.send(payload, opts);
              n++;
            }
          }
          return n;
        });
      });
    });
    server.on('upgrade', (req, socket, head) => {
      const path = (req.url ?? '/').split('?', 1)[0];
      const target = path === '/echo' ? echo : path === '/bcast' ? bcast : undefined;
      if (target === undefined) {
        socket.destroy();
        return;
      }
      target.handleUpgrade(req, socket, head, (ws) => target.emit('connection', ws, req));
    });
    await new Promise((resolve) => server.listen(0, HOST, resolve));
    const { port } = server.address();
    return {
      urls: { echo: `ws://${HOST}:${port}/echo`, bcast: `ws://${HOST}:${port}/bcast` },
      count: () => echo.clients.size + bcast.clients.size,
      close: () =>
        new Promise((resolve) => {
          for (const c of echo.clients) c.terminate();
          for (const c of bcast.clients) c.terminate();
          server.close(() => resolve());
          server.closeAllConnections?.();
        }),
    };
  },

  /** node:net with length-prefixed records: the ceiling. */
  async raw() {
    const sockets = new Set();
    const subscribers = new Set();
    const track = (socket, set) => {
      socket.setNoDelay(true);
      sockets.add(socket);
      set?.add(socket);
      socket.on('error', noop);
      socket.on('close', () => {
        sockets.delete(socket);
        set?.delete(socket);
      });
    };
    const echo = createNetServer((socket) => {
      track(socket);
      const parser = new RecordParser();
      socket.on('data', (chunk) => {
        parser.push(chunk);
        let r = parser.next();
        if (r === null) return;
        socket.cork();
        for (; r !== null; r = parser.next()) socket.write(r.raw);
        socket.uncork();
      });
    });
    const bcast = createNetServer((socket) => {
      track(socket, subscribers);
      const parser = new RecordParser();
      socket.on('data', (chunk) => {
        parser.push(chunk);
        for (let r = parser.next(); r !== null; r = parser.next()) {
          const req = JSON.parse(r.payload.toString());
          const record = encodeRecord(fanoutPayload(req.size, req.binary), req.binary);
          // Cork every socket for the rest of the tick, like wskit's connections do, so a
          // burst leaves in one writev per socket.
          for (const s of subscribers) s.cork();
          process.nextTick(() => {
            for (const s of subscribers) s.uncork();
          });
          timedFanout(req.count, () => {
            let n = 0;
            for (const s of subscribers) {
              s.write(record);
              n++;
            }
            return n;
          });
        }
      });
    });
    const listen = (server) =>
      new Promise((resolve) => server.listen(0, HOST, () => resolve(server.address().port)));
    const [echoPort, bcastPort] = [await listen(echo), await listen(bcast)];
    return {
      urls: { echo: `tcp://${HOST}:${echoPort}/`, bcast: `tcp://${HOST}:${bcastPort}/` },
      count: () => sockets.size,
      close: async () => {
        for (const s of sockets) s.destroy();
        await Promise.all([echo, bcast].map((s) => new Promise((resolve) => s.close(() => resolve()))));
      },
    };
  },

  /** The raw-socket mode's ceiling: node:net echoing the same WebSocket frames (echo only). */
  ceiling: () => startCeilingServer(HOST),
};

export function startServer(kind, options) {
  const start = servers[kind];
  if (start === undefined) throw new Error(`unknown server kind ${kind}`);
  return start(options);
}
