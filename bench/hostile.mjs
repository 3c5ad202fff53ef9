#!/usr/bin/env node
// Hostile peers against wskit and ws, each with its default server options:
//
//   a  tiny fragments   one connection sends a message just under 1 MiB as 1-byte frames
//   b  ping flood       200,000 pings from a peer that never reads
//   c  header alloc     1,000 connections each send only a header announcing 1 MiB
//   d  publish backlog  1,000 x 64 KiB published to a paused reader while a fragmented
//                       send is open (wskit: wss.publish; ws: a loop of send, no fragment)
//
// Each (attack, library) gets a fresh server process (lib/hostile-server.mjs); this
// process is the attacker and speaks raw TCP. Printed: the server's peak RSS growth over
// its settled baseline, its heap + ArrayBuffer growth (settled, attacker's connections
// still open: an untouched Buffer.allocUnsafe shows there, not in RSS), and
// what the server did to the attacking connection. Needs a build (`tsc -b`).
//
//   node bench/hostile.mjs [--only a,c] [--libs wskit,ws]
import { once } from 'node:events';
import { connect as netConnect } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { spawnWorker } from './lib/ipc.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const HOST = '127.0.0.1';
const MiB = 1024 * 1024;
const { values } = parseArgs({
  options: { only: { type: 'string', default: 'a,b,c,d' }, libs: { type: 'string', default: 'wskit,ws' } },
});
const ONLY = values.only.split(',');
const LIBS = values.libs.split(',');

// ---- raw WebSocket client pieces ----------------------------------------------------

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Races `promise` against a timer; resolves with `fallback` when the timer wins. */
function within(promise, ms, fallback) {
  let timer;
  return Promise.race([
    promise,
    new Promise((resolve) => {
      timer = setTimeout(() => resolve(fallback), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** A masked client frame (mask key 0: the bytes are unchanged, the mask bit is set). */
function frame(opcode, payload = Buffer.alloc(0), fin = true) {
  const len = payload.length;
  const head =
    len < 126
      ? Buffer.from([(fin ? 0x80 : 0) | opcode, 0x80 | len])
      : len < 65536
        ? Buffer.from([(fin ? 0x80 : 0) | opcode, 0x80 | 126, len >> 8, len & 0xff])
        : (() => {
            const h = Buffer.alloc(10);
            h[0] = (fin ? 0x80 : 0) | opcode;
            h[1] = 0x80 | 127;
            h.writeBigUInt64BE(BigInt(len), 2);
            return h;
          })();
  return Buffer.concat([head, Buffer.alloc(4), payload]);
}

/**
 * Opens a connection and completes the handshake. The returned peer watches what the
 * server sends (its Close code, the end of TCP) — when `reading`; a paused peer reads
 * nothing until resume().
 */
async function openPeer(port, path = '/', reading = true) {
  const socket = netConnect({ port, host: HOST });
  socket.on('error', () => {});
  await once(socket, 'connect');
  socket.write(
    `GET ${path} HTTP/1.1\r\nHost: ${HOST}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
  );
  let buf = Buffer.alloc(0);
  while (buf.indexOf('\r\n\r\n') === -1) {
    const [chunk] = await within(once(socket, 'data'), 5000, [null]);
    if (chunk === null) throw new Error('no handshake answer');
    buf = Buffer.concat([buf, chunk]);
  }
  const end = buf.indexOf('\r\n\r\n');
  if (!/^HTTP\/1\.1 101/.test(buf.subarray(0, end).toString('latin1'))) {
    throw new Error(`handshake refused: ${buf.subarray(0, end).toString('latin1').split('\r\n')[0]}`);
  }
  const peer = {
    socket,
    closeCode: undefined, // the code of the server's Close frame, null if it had none
    ended: false, // the server ended TCP (FIN or reset)
    bytesIn: 0,
    frames: 0,
  };
  // A minimal reader of server frames: lengths, and the Close code.
  let pending = buf.subarray(end + 4);
  let skip = 0;
  const onData = (chunk) => {
    peer.bytesIn += chunk.length;
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    for (;;) {
      if (skip > 0) {
        const n = Math.min(skip, pending.length);
        skip -= n;
        pending = pending.subarray(n);
        if (skip > 0) return;
      }
      if (pending.length < 2) return;
      let len = pending[1] & 0x7f;
      let at = 2;
      if (len === 126) {
        if (pending.length < 4) return;
        len = pending.readUInt16BE(2);
        at = 4;
      } else if (len === 127) {
        if (pending.length < 10) return;
        len = Number(pending.readBigUInt64BE(2));
        at = 10;
      }
      const opcode = pending[0] & 0x0f;
      if (opcode === 8) {
        if (pending.length < at + len) return;
        if (peer.closeCode === undefined) peer.closeCode = len >= 2 ? pending.readUInt16BE(at) : null;
      }
      peer.frames++;
      pending = pending.subarray(at);
      skip = len;
    }
  };
  socket.once('close', () => {
    peer.ended = true;
  });
  socket.once('end', () => {
    peer.ended = true;
  });
  peer.resume = () => {
    socket.on('data', onData);
    socket.resume();
  };
  if (reading) peer.resume();
  else socket.pause();
  return peer;
}

/** Writes `chunks` in order, waiting for 'drain'; stops early if the socket goes away. */
async function writeAll(socket, chunks) {
  for (const chunk of chunks) {
    if (socket.destroyed || socket.writableEnded) return false;
    if (!socket.write(chunk)) {
      const drained = await within(
        Promise.race([once(socket, 'drain').then(() => true), once(socket, 'close').then(() => false)]),
        30_000,
        false,
      );
      if (!drained) return false;
    }
  }
  return !socket.destroyed;
}

/** Waits up to `ms` for the server to send a Close or end TCP. */
async function waitForServer(peer, ms) {
  const started = Date.now();
  while (Date.now() - started < ms && peer.closeCode === undefined && !peer.ended) await sleep(20);
}

function outcome(peer) {
  if (peer.closeCode !== undefined) return `closed ${peer.closeCode ?? 'no code'}`;
  if (peer.ended) return 'TCP closed, no Close';
  return 'still open';
}

// ---- the attacks ----------------------------------------------------------------------

const attacks = {
  a: {
    title: 'tiny fragments (1 MiB - 64 B as 1-byte frames)',
    async run(port, server) {
      const peer = await openPeer(port);
      const total = MiB - 64;
      const one = Buffer.from('a');
      const batch = 65536;
      let sent = 0;
      let complete = true;
      while (sent < total) {
        const n = Math.min(batch, total - sent);
        const chunk = [];
        for (let i = 0; i < n; i++) {
          const idx = sent + i;
          chunk.push(frame(idx === 0 ? 0x1 : 0x0, one, idx === total - 1));
        }
        if (!(await writeAll(peer.socket, [Buffer.concat(chunk)]))) {
          complete = false;
          break;
        }
        sent += n;
        if (peer.closeCode !== undefined || peer.ended) {
          complete = sent >= total;
          break;
        }
      }
      await waitForServer(peer, 2000);
      const m = await server.call('measure');
      const note = complete ? 'all fragments sent' : `stopped after ${sent} fragments`;
      peer.socket.destroy();
      return { m, outcome: `${outcome(peer)} (${note})` };
    },
  },
  b: {
    title: 'ping flood (200,000 pings, peer never reads)',
    async run(port, server) {
      const peer = await openPeer(port, '/', false);
      const ping = frame(0x9, Buffer.from('12345678'));
      const chunks = [];
      for (let i = 0; i < 200_000; i += 10_000) chunks.push(Buffer.concat(Array(10_000).fill(ping)));
      await writeAll(peer.socket, chunks);
      await sleep(1000); // let the server process what it received
      const m = await server.call('measure');
      // Now read what the server sent (bounded), to see whether it closed.
      peer.resume();
      await waitForServer(peer, 5000);
      peer.socket.destroy();
      return { m, outcome: outcome(peer) };
    },
  },
  c: {
    title: '1,000 connections, header announcing 1 MiB each',
    async run(port, server) {
      const peers = [];
      for (let i = 0; i < 1000; i += 50) {
        peers.push(...(await Promise.all(Array.from({ length: 50 }, () => openPeer(port)))));
      }
      const header = Buffer.alloc(14);
      header[0] = 0x82;
      header[1] = 0x80 | 127;
      header.writeBigUInt64BE(BigInt(MiB), 2);
      for (const p of peers) p.socket.write(header);
      await sleep(1000);
      const m = await server.call('measure');
      const closed = peers.filter((p) => p.closeCode !== undefined || p.ended).length;
      for (const p of peers) p.socket.destroy();
      return { m, outcome: closed === 0 ? 'all 1000 open' : `${closed}/1000 closed` };
    },
  },
  d: {
    title: '1,000 x 64 KiB published to a paused reader',
    async run(port, server) {
      const peer = await openPeer(port, '/pub', false);
      await sleep(100);
      const r = await server.call('publishAttack', { count: 1000, size: 64 * 1024 });
      await sleep(1000);
      const m = await server.call('measure');
      peer.resume();
      await waitForServer(peer, 10_000);
      peer.socket.destroy();
      return {
        m,
        outcome: `${outcome(peer)}; bufferedAmount ${(r.bufferedAmount / MiB).toFixed(1)} MiB right after`,
      };
    },
  },
};

// ---- orchestration --------------------------------------------------------------------

async function runOne(kind, key) {
  const server = spawnWorker(join(HERE, 'lib/hostile-server.mjs'), `${kind} server`);
  try {
    const { port } = await server.call('start', { kind });
    const base = await server.call('baseline');
    const { m, outcome: what } = await within(attacks[key].run(port, server), 120_000, {
      m: undefined,
      outcome: 'attack timed out',
    });
    return {
      rss: m ? m.peakRss - base.rss : Number.NaN,
      heap: m ? m.heapUsed + m.arrayBuffers - (base.heapUsed + base.arrayBuffers) : Number.NaN,
      outcome: what,
    };
  } catch (err) {
    return { rss: Number.NaN, heap: Number.NaN, outcome: `error: ${err.message.split('\n')[0]}` };
  } finally {
    await server.call('close', {}, 10_000).catch(() => {});
    await server.stop();
  }
}

const mib = (bytes) => (Number.isNaN(bytes) ? '-' : `${(bytes / MiB).toFixed(1)} MiB`);

const rows = [];
for (const key of ONLY) {
  if (attacks[key] === undefined) continue;
  const row = { attack: `${key}) ${attacks[key].title}` };
  for (const kind of LIBS) {
    process.stderr.write(`running ${key} against ${kind}...\n`);
    row[kind] = await runOne(kind, key);
  }
  rows.push(row);
}

const header = [
  'attack',
  ...LIBS.map((k) => `${k} RSS growth (heap + buffers)`),
  ...LIBS.map((k) => `${k} outcome`),
];
const lines = rows.map((r) => [
  r.attack,
  ...LIBS.map((k) => `${mib(r[k].rss)} (${mib(r[k].heap)})`),
  ...LIBS.map((k) => r[k].outcome),
]);
console.log(`| ${header.join(' | ')} |`);
console.log(`|${header.map(() => '---').join('|')}|`);
for (const l of lines) console.log(`| ${l.join(' | ')} |`);
console.log(
  '\nRSS growth: peak RSS during the attack minus the settled RSS before it (fresh server ' +
    'process per row and library). Heap + buffers: settled JS heap plus ArrayBuffer memory ' +
    '(allocated, even if not yet touched) with the attacker still connected, minus before. Outcome: what the attacking peer saw (the Close code the server sent).',
);
process.exit(0);
