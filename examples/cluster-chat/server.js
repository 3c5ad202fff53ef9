// The Express chat as several processes (node:cluster) on one Redis:
//   redis-server --port 6379 &        (or REDIS_URL=redis://host:port)
//   node examples/cluster-chat/server.js
// then open http://127.0.0.1:3000 in several tabs: each tab may land on another worker,
// and every message reaches everybody.
import cluster from 'node:cluster';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { expressWs } from '@wskit/express';
import { redisFanout } from '@wskit/redis';
import express from 'express';
import { createClient } from 'redis';

const workers = Number(process.env.WORKERS ?? Math.max(2, availableParallelism()));
const port = Number(process.env.PORT ?? 3000);

if (cluster.isPrimary) {
  // The primary only balances: node:cluster hands each new TCP connection to a worker.
  for (let i = 0; i < workers; i++) cluster.fork();
  cluster.on('exit', (worker, code) => {
    console.log(`worker ${worker.process.pid} exited (${code}); the others keep serving`);
  });
  console.log(`cluster chat on http://127.0.0.1:${port} with ${workers} workers`);
} else {
  const fanout = redisFanout({
    client: createClient({ url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' }),
  });
  fanout.on('error', (err) => console.error(`worker ${process.pid}: ${err.message}`));
  const { app, wss } = expressWs(express(), null, { maxMessageSize: 16 * 1024, fanout });

  const page = fileURLToPath(new URL('../express-chat/index.html', import.meta.url));
  app.get('/', (_req, res) => res.sendFile(page));

  function requireName(req, res, next) {
    const name = String(req.query.name ?? '').trim();
    if (name === '' || name.length > 32) {
      res.status(400).send('Pick a name of 1 to 32 characters.');
      return;
    }
    req.user = { name };
    next();
  }

  // Reaches the subscribers of every worker: locally at once, the others through Redis.
  const say = (event) => wss.publish('chat', JSON.stringify({ ...event, at: Date.now() }));

  app.ws('/chat', requireName, async (ws, req) => {
    const { name } = req.user;
    ws.subscribe('chat');
    say({ type: 'system', text: `${name} joined (on worker ${process.pid})` });
    for await (const msg of ws) {
      const text = msg.text().trim();
      if (text !== '') say({ type: 'message', name, text });
    }
    say({ type: 'system', text: `${name} left` });
  });

  const server = app.listen(port, '127.0.0.1');
  const shutdown = async () => {
    server.close();
    await wss.close(); // closes the fan-out's Redis connections too
    process.exit(0);
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}
