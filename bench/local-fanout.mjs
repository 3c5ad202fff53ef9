#!/usr/bin/env node
// Publish to 10,000 local subscribers: wskit's wss.publish() (one frame per publish)
// against a loop of send() over ws's clients, in the same run. Needs the built packages.
//   node bench/local-fanout.mjs [--quick]
import { fork } from 'node:child_process';

const quick = process.argv.includes('--quick');
const CLIENTS = 10_000;
const ROUNDS = quick ? 3 : 7;
const MESSAGES = 10; // per round
const SIZE = 64;
const here = new URL('./lib/', import.meta.url);

const once = (child, event) =>
  new Promise((resolve, reject) => {
    const onMsg = (m) => {
      if (m.event === event) {
        child.off('message', onMsg);
        resolve(m);
      }
    };
    child.on('message', onMsg);
    child.once('exit', (code) => reject(new Error(`child exited (${code}) waiting for ${event}`)));
  });
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function measure(impl) {
  const server = fork(new URL('local-fanout-server.mjs', here), [impl]);
  const { port } = await once(server, 'ready');
  const clients = fork(new URL('local-fanout-clients.mjs', here), [String(port), String(CLIENTS)]);
  await once(clients, 'ready');
  const rounds = [];
  try {
    for (let r = 0; r < ROUNDS + 1; r++) {
      clients.send({ cmd: 'expect', total: CLIENTS * MESSAGES });
      const done = once(clients, 'done');
      const t0 = performance.now();
      server.send({ cmd: 'round', messages: MESSAGES, size: SIZE });
      const sent = await once(server, 'sent');
      await done;
      const ms = performance.now() - t0;
      if (r > 0) rounds.push({ ms, sendMs: sent.sendMs, cpuUs: sent.cpuUs }); // round 0 warms up
    }
  } finally {
    clients.kill();
    server.kill();
  }
  const deliveries = CLIENTS * MESSAGES;
  return {
    impl,
    deliveredPerSec: deliveries / (median(rounds.map((r) => r.ms)) / 1000),
    sendMs: median(rounds.map((r) => r.sendMs)),
    cpuNsPerDelivery: (median(rounds.map((r) => r.cpuUs)) * 1000) / deliveries,
  };
}

const rows = [];
for (const impl of ['wskit', 'ws']) {
  process.stderr.write(`${impl}: ${CLIENTS} clients...\n`);
  rows.push(await measure(impl));
}
const [w, o] = rows;
console.log(
  `\nPublish to ${CLIENTS} local subscribers: rounds of ${MESSAGES} × ${SIZE} B text, median of ${ROUNDS}.\n`,
);
console.log(
  '| impl | deliveries/s (until all clients have all) | server send loop ms per round | server CPU ns per delivery |',
);
console.log('|---|---|---|---|');
for (const r of rows)
  console.log(
    `| ${r.impl} | ${Math.round(r.deliveredPerSec)} | ${r.sendMs.toFixed(1)} | ${r.cpuNsPerDelivery.toFixed(0)} |`,
  );
console.log(
  `| wskit/ws | ${(w.deliveredPerSec / o.deliveredPerSec).toFixed(2)}× | ${(o.sendMs / w.sendMs).toFixed(2)}× faster | ${(o.cpuNsPerDelivery / w.cpuNsPerDelivery).toFixed(2)}× less |`,
);
