// A minimal chat on Fastify: open http://127.0.0.1:3002 in two tabs.
import { readFileSync } from 'node:fs';
import { wsPlugin } from '@wskit/fastify';
import Fastify from 'fastify';

const page = readFileSync(new URL('../koa-chat/index.html', import.meta.url), 'utf8');
const app = Fastify({ logger: { level: 'info' } });
await app.register(wsPlugin);

app.get('/', (_req, reply) => reply.type('text/html').send(page));
app.get('/chat', { websocket: true }, async (socket, req) => {
  const name = req.query.name || 'anon';
  socket.subscribe('room');
  app.websocketServer.publish('room', `${name} joined`);
  for await (const msg of socket) app.websocketServer.publish('room', `${name}: ${msg.text()}`);
  app.websocketServer.publish('room', `${name} left`);
});

await app.listen({ port: Number(process.env.PORT ?? 3002), host: '127.0.0.1' });
