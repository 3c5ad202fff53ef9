#!/usr/bin/env node
/**
 * The server's per-message path without the kernel: a server-side WebSocket on an
 * in-memory socket (frames in, echoes out to a sink), fed batches of 64 B masked text
 * frames, echoing each with send(). Two builds of @wskit/core take turns in one process —
 * `base` (--base FILE, e.g. the commit before the channels) and `this` (this tree's build,
 * nobody subscribed; or --mode noop: a no-op subscriber on every channel for the run) —
 * and the CPU time per round is compared (median and minimum of many rounds).
 *
 * Usage: npx tsc -b && node bench/diagnostics-micro.mjs --base FILE [--mode off|noop]
 *          [--rounds 101] [--messages 20000]
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import { join, resolve } from 'node:path';
import { Duplex } from 'node:stream';
import { fileURLToPath, pathToFileURL } from 'node:url';

const argv = process.argv.slice(2);
const arg = (name, fallback) => {
  const i = argv.indexOf(name);
  return i === -1 ? fallback : argv[i + 1];
};
const BASE = arg('--base', undefined);
if (BASE === undefined) {
  process.stderr.write('usage: node bench/diagnostics-micro.mjs --base path/to/other/core/dist/index.js\n');
  process.exit(2);
}
const MODE = arg('--mode', 'off');
const ROUNDS = Number(arg('--rounds', 101));
const MESSAGES = Number(arg('--messages', 20000));
const BATCH = 16;
const noop = () => {};

const here = fileURLToPath(new URL('.', import.meta.url));
const current = await import(pathToFileURL(join(here, '../packages/core/dist/index.js')).href);
const base = await import(pathToFileURL(resolve(BASE)).href);

/** A server connection of `lib` on an in-memory socket; returns a function feeding it bytes. */
function serverOf(lib) {
  let sent = 0;
  const socket = new Duplex({
    read() {},
    write(chunk, _encoding, callback) {
      sent += chunk.length;
      callback();
    },
    writev(chunks, callback) {
      for (const c of chunks) sent += c.chunk.length;
      callback();
    },
  });
  const options = {
    ...lib.DEFAULTS,
    pingInterval: 0,
    connectionTimeout: 0,
    onBackpressure: undefined,
    rateLimit: undefined,
    dropIncomingPings: false,
    propagateCommonErrors: false,
  };
  const ws = new lib.WebSocket({ side: 'server', socket, options });
  let received = 0;
  ws.on('message', (m) => {
    received++;
    ws.send(m.data, { binary: false }).catch(noop);
  });
  const frame = Buffer.concat(
    lib.encodeFrame({ fin: true, rsv: 0, opcode: 1, masked: true, payload: Buffer.alloc(64, 97) }),
  );
  const batch = Buffer.concat(Array.from({ length: BATCH }, () => frame));
  return {
    async round() {
      const target = received + MESSAGES;
      const cpu0 = process.cpuUsage();
      while (received < target) {
        socket.emit('data', Buffer.from(batch)); // a copy: frames are unmasked in place
        await new Promise((r) => setImmediate(r)); // the corked writes go out
      }
      const cpu = process.cpuUsage(cpu0);
      return (cpu.user + cpu.system) / 1000;
    },
    sent: () => sent,
  };
}

if (MODE === 'noop') {
  for (const name of Object.values(current.CHANNELS)) diagnosticsChannel.subscribe(name, noop);
  const handlers = { start: noop, end: noop, asyncStart: noop, asyncEnd: noop, error: noop };
  for (const name of Object.values(current.TRACING_CHANNELS))
    diagnosticsChannel.tracingChannel(name).subscribe(handlers);
}
const servers = { base: serverOf(base), [MODE]: serverOf(current) };
const names = Object.keys(servers);
const times = Object.fromEntries(names.map((n) => [n, []]));
for (const n of names) await servers[n].round(); // warm-up
for (let r = 0; r < ROUNDS; r++) {
  for (const n of names.map((_, i) => names[(i + r) % names.length])) times[n].push(await servers[n].round());
}
const stat = (values) => {
  const s = [...values].sort((a, b) => a - b);
  return { min: s[0], median: s[Math.floor(s.length / 2)] };
};
const ref = stat(times.base);
const pct = (a, b) => `${((a / b - 1) * 100).toFixed(1).padStart(5)}%`;
process.stdout.write(
  `${ROUNDS} rounds of ${MESSAGES} messages received and echoed (CPU ms per round; % vs base)\n`,
);
for (const n of names) {
  const s = stat(times[n]);
  process.stdout.write(
    `${n.padEnd(5)} median ${s.median.toFixed(2).padStart(7)} (${pct(s.median, ref.median)})  min ${s.min.toFixed(2).padStart(7)} (${pct(s.min, ref.min)})  = ${((s.median * 1000) / MESSAGES).toFixed(3)} µs/message\n`,
  );
}
