// Client side of bench/local-fanout.mjs: `count` ws clients; counts messages.
// argv: port count. IPC: 'ready'; {cmd:'expect', total} -> 'done'
import { WebSocket } from 'ws';

const [port, count] = process.argv.slice(2).map(Number);
let received = 0;
let target = Number.POSITIVE_INFINITY;
const onMessage = () => {
  if (++received >= target) {
    target = Number.POSITIVE_INFINITY;
    process.send({ event: 'done' });
  }
};
for (let i = 0; i < count; i += 200) {
  const batch = [];
  for (let k = i; k < Math.min(count, i + 200); k++) {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate: false });
    ws.on('message', onMessage);
    batch.push(new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject)));
  }
  await Promise.all(batch);
}
process.on('message', (msg) => {
  if (msg.cmd === 'expect') {
    received = 0;
    target = msg.total;
  }
});
process.send({ event: 'ready' });
