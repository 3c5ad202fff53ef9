// Server side of bench/redis-fanout.mjs: a WebSocket server of one implementation
// (wskit + @wskit/redis, or socket.io 4 + @socket.io/redis-adapter) on a shared Redis.
// argv: impl redisUrl index. IPC: 'ready' {port}; {cmd:'burst', count, size} -> 'burst-done';
// {cmd:'paced', count, every} -> 'paced-done'; {cmd:'cpu'} -> {cpu}.
import { createServer } from 'node:http';
import { createClient } from 'redis';
import { WebSocketServer } from '../../packages/core/dist/index.js';
import { redisFanout } from '../../packages/redis/dist/index.js';

const [impl, url, indexArg] = process.argv.slice(2);
const index = Number(indexArg);
let publish;
let port;

if (impl === 'wskit') {
  const wss = new WebSocketServer({ pingInterval: 0, connectionTimeout: 0 });
  const fanout = redisFanout(wss, { url });
  fanout.on('error', (err) => console.error('fanout error', err.message));
  wss.route('/*', (ws) => ws.subscribe('room'));
  port = (await wss.listen(0, '127.0.0.1')).port;
  await fanout.ready();
  publish = (text) => wss.publish('room', text);
} else {
  const { Server } = await import('socket.io');
  const { createAdapter } = await import('@socket.io/redis-adapter');
  const pub = createClient({ url });
  const sub = pub.duplicate();
  await Promise.all([pub.connect(), sub.connect()]);
  const http = createServer();
  const io = new Server(http, { transports: ['websocket'], adapter: createAdapter(pub, sub) });
  io.on('connection', (socket) => socket.join('room'));
  await new Promise((r) => http.listen(0, '127.0.0.1', r));
  port = http.address().port;
  publish = (text) => io.to('room').emit('m', text);
}

const pad = (s, size) => s + 'x'.repeat(Math.max(0, size - s.length));
const stamp = () => process.hrtime.bigint().toString(); // CLOCK_MONOTONIC: comparable across processes

process.on('message', async (msg) => {
  if (msg.cmd === 'burst') {
    // Back to back, in slices so that the event loop can write and read Redis meanwhile.
    for (let i = 0; i < msg.count; i += 100) {
      for (let j = i; j < Math.min(msg.count, i + 100); j++) publish(pad(`${stamp()}|${index}|`, msg.size));
      await new Promise((r) => setImmediate(r));
    }
    process.send({ event: 'burst-done' });
  } else if (msg.cmd === 'paced') {
    for (let i = 0; i < msg.count; i++) {
      publish(pad(`${stamp()}|${index}|`, msg.size));
      await new Promise((r) => setTimeout(r, msg.every));
    }
    process.send({ event: 'paced-done' });
  }
});
process.send({ event: 'ready', port });
