// Observability demo: WebSocket routes on Express with Prometheus metrics served next to
// them. `node examples/metrics/server.js`, then open http://127.0.0.1:3005 for a live
// dashboard (it polls /metrics and plots a few series). Environment:
//   PORT   port to listen on (default 3005; 0 picks a free one)
//   HOST   address to listen on (default 127.0.0.1)
//
// Routes: /echo (echoes every message), /rooms/:room (everything said in a room goes to
// everyone in it), GET /metrics (Prometheus text format), GET /stats (wss.stats() as JSON).
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';
import { expressWs } from '@wskit/express';
import { collectMetrics } from '@wskit/metrics';
import express from 'express';
import { collectDefaultMetrics, Registry } from 'prom-client';

const HOST = process.env.HOST ?? '127.0.0.1';
const PORT = Number(process.env.PORT ?? 3005);

const app = express();
const server = createServer(app);
const { wss } = expressWs(app, server, { pingInterval: 2000, perMessageDeflate: true });

const register = new Registry();
collectDefaultMetrics({ register }); // the process's own (CPU, memory, event loop lag)
collectMetrics(wss, { register }); // wskit_* built on @wskit/core's diagnostics channels

app.get('/metrics', async (_req, res) => {
  res.type(register.contentType).send(await register.metrics());
});
app.get('/stats', (_req, res) => {
  res.json(wss.stats());
});
app.get('/', (_req, res) => res.sendFile(fileURLToPath(new URL('./index.html', import.meta.url))));

// '__drop__' asks the server to drop the connection without a Close (a 1006 to observe).
function dropped(ws, msg) {
  if (msg.type !== 'text' || msg.text() !== '__drop__') return false;
  ws.terminate();
  return true;
}

app.ws('/echo', (ws) => {
  ws.on('message', (msg) => {
    if (!dropped(ws, msg)) ws.send(msg.data, { binary: msg.type === 'binary' }).catch(() => {});
  });
});
app.ws('/rooms/:room', (ws, req) => {
  const topic = `room:${req.params.room}`;
  ws.subscribe(topic);
  ws.on('message', (msg) => {
    if (!dropped(ws, msg)) wss.publish(topic, msg.text());
  });
});

server.listen(PORT, HOST, () => {
  const { port } = server.address();
  console.log(`metrics demo on http://${HOST}:${port}/ (scrape http://${HOST}:${port}/metrics)`);
});

const shutdown = async () => {
  await wss.close();
  server.close();
};
process.once('SIGTERM', shutdown);
process.once('SIGINT', shutdown);
