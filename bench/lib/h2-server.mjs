// The server process of bench/http2.mjs: an echo WebSocketServer over h2c (RFC 8441) or
// HTTP/1.1, with memory readings after garbage collection.
import { createServer } from 'node:http2';
import { WebSocketServer } from '../../packages/core/dist/index.js';
import { serveRequests } from './ipc.mjs';

let wss;

function memory() {
  globalThis.gc?.();
  globalThis.gc?.();
  const m = process.memoryUsage();
  return { heapUsed: m.heapUsed, rss: m.rss, clients: wss?.clients.size ?? 0 };
}

serveRequests({
  /** `window`: HTTP/2 stream and session windows in bytes (default: Node's 64 KiB). */
  async start({ http2, window }) {
    wss = new WebSocketServer({ pingInterval: 0, connectionTimeout: 0 });
    wss.route('/echo', (ws) => {
      ws.on('message', (m) => {
        ws.send(m.data, { binary: m.type === 'binary' }).catch(() => {});
      });
    });
    if (http2 && window) {
      // The same h2c server as listen(..., { http2: true }) makes, with larger windows.
      const server = createServer({ settings: { enableConnectProtocol: true, initialWindowSize: window } });
      server.on('session', (session) => session.setLocalWindowSize(window * 16));
      wss.attach(server);
      await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
      return { port: server.address().port };
    }
    const { port } = await wss.listen(0, '127.0.0.1', http2 ? { http2: true } : {});
    return { port };
  },
  memory,
});
