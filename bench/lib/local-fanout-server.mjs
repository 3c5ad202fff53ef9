// Server side of bench/local-fanout.mjs. argv: impl (wskit | ws).
// IPC: 'ready' {port}; {cmd:'round', messages, size} -> 'sent' {sendMs, cpuUs}

import { WebSocketServer as WsServer } from 'ws';
import { WebSocketServer as WskitServer } from '../../packages/core/dist/index.js';

const impl = process.argv[2];
let port;
let fanout;
if (impl === 'wskit') {
  const wss = new WskitServer({ pingInterval: 0, connectionTimeout: 0, maxConnections: 20000 });
  wss.route('/*', (ws) => ws.subscribe('t'));
  port = (await wss.listen(0, '127.0.0.1')).port;
  fanout = (data) => wss.publish('t', data);
} else {
  const wss = new WsServer({ port: 0, host: '127.0.0.1', perMessageDeflate: false });
  await new Promise((r) => wss.once('listening', r));
  port = wss.address().port;
  // The loop ws's README shows for broadcasting.
  fanout = (data) => {
    for (const client of wss.clients) if (client.readyState === 1) client.send(data);
  };
}
process.on('message', (msg) => {
  if (msg.cmd !== 'round') return;
  const data = 'x'.repeat(msg.size);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < msg.messages; i++) fanout(data);
  // Until the end of the tick: writes deferred with cork() count.
  setImmediate(() => {
    const sendMs = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    process.send({ event: 'sent', sendMs, cpuUs: cpu.user + cpu.system });
  });
});
process.send({ event: 'ready', port });
