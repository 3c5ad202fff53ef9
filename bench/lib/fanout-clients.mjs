// Client side of bench/redis-fanout.mjs: `perServer` clients on each server port, counting
// messages and measuring latency (publish stamp -> receipt) of messages from other processes.
// argv: impl JSON(ports) perServer. IPC: 'ready'; {cmd:'expect', total} -> 'armed', then 'done' {latencies?}
import { WebSocket } from 'ws';

const [impl, portsJson, perArg] = process.argv.slice(2);
const ports = JSON.parse(portsJson);
const perServer = Number(perArg);
let received = 0;
let target = Number.POSITIVE_INFINITY;
let latencies = [];
let recordLatency = false;

function onText(text, serverIndex) {
  received++;
  if (recordLatency) {
    const bar = text.indexOf('|');
    const from = Number(text.slice(bar + 1, text.indexOf('|', bar + 1)));
    if (from !== serverIndex)
      latencies.push(Number(process.hrtime.bigint() - BigInt(text.slice(0, bar))) / 1e6);
  }
  if (received >= target) {
    target = Number.POSITIVE_INFINITY;
    process.send({ event: 'done', latencies: recordLatency ? latencies : undefined });
  }
}

const opens = [];
if (impl === 'wskit') {
  for (const [i, port] of ports.entries()) {
    for (let k = 0; k < perServer; k++) {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate: false });
      ws.on('message', (data) => onText(data.toString(), i));
      opens.push(new Promise((r) => ws.once('open', r)));
    }
  }
} else {
  const { io } = await import('socket.io-client');
  for (const [i, port] of ports.entries()) {
    for (let k = 0; k < perServer; k++) {
      const s = io(`http://127.0.0.1:${port}`, { transports: ['websocket'], forceNew: true });
      s.on('m', (text) => onText(text, i));
      opens.push(new Promise((r) => s.once('connect', r)));
    }
  }
}
await Promise.all(opens);
process.on('message', (msg) => {
  if (msg.cmd === 'expect') {
    received = 0;
    latencies = [];
    recordLatency = msg.latency;
    target = msg.total;
    process.send({ event: 'armed' }); // before anything is published for this phase
  }
});
process.send({ event: 'ready' });
