/**
 * zlib contexts of permessage-deflate are released: after many connect/close cycles with a
 * compressed message each way, no context and no memory stays behind. A soak test (not in
 * the default run): `npm test` runs 300 cycles, `npm run soak` (WSKIT_SOAK=1) 10,000; the
 * memory bounds can only catch a small leak in the long form.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { connect, WebSocketServer } from '@wskit/core';
import { describe, expect, it } from 'vitest';
import { resourcesPerTest, waitFor } from '../../../test/support/clients.js';
import { soak } from '../../../test/support/soak.js';
import { zlibContexts } from '../src/node/deflate.js';

const res = resourcesPerTest();
const MiB = 1024 * 1024;
const CYCLES = soak(300, 10_000);

function getGc(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

/** About `bytes` of JSON-like text (compresses like real traffic), the same for a seed. */
function jsonLike(bytes: number, seed = 1): Buffer {
  const words = ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta', 'eta', 'theta'];
  const parts: string[] = [];
  let length = 0;
  let x = seed;
  while (length < bytes) {
    x = (x * 1103515245 + 12345) % 2147483648;
    const item = `{"id":${x % 100000},"name":"${words[x % 8]}","ok":${x % 3 === 0},"v":${(x % 997) / 10}},`;
    parts.push(item);
    length += item.length;
  }
  return Buffer.from(parts.join('').slice(0, bytes));
}

describe('zlib contexts are released', () => {
  it(`after ${CYCLES} connect/close cycles with a compressed message each way, nothing leaks`, async () => {
    // A server of its own that keeps no reference to its connections.
    const wss = new WebSocketServer({ pingInterval: 0, perMessageDeflate: { threshold: 0 } });
    wss.route('/echo', async (ws) => {
      for await (const m of ws) await ws.send(m.data, { binary: m.type === 'binary' });
    });
    const { port } = await wss.listen(0, '127.0.0.1');
    res.add(() => wss.close());
    const url = `ws://127.0.0.1:${port}/echo`;
    const gc = getGc();
    const payload = jsonLike(200, 3);
    let peakContexts = 0;
    const cycle = async () => {
      const ws = await connect(url, { pingInterval: 0, perMessageDeflate: { threshold: 0 } });
      try {
        if (ws.extensions !== 'permessage-deflate') throw new Error(`not negotiated: ${ws.extensions}`);
        await ws.send(payload);
        const m = await ws.receive();
        if (m === null || !m.data.equals(payload)) throw new Error('echo mismatch');
        peakContexts = Math.max(peakContexts, zlibContexts()); // this connection's, at least
        await ws.close();
      } catch (err) {
        ws.terminate();
        throw err;
      }
    };
    const run = async (count: number, batch: number) => {
      for (let done = 0; done < count; done += batch) {
        await Promise.all(Array.from({ length: Math.min(batch, count - done) }, cycle));
      }
    };
    const settleAll = async () => {
      await waitFor(() => wss.clients.size === 0 && zlibContexts() === 0, 10_000, 'all contexts released');
      for (let i = 0; i < 3; i++) {
        await new Promise((r) => setImmediate(r));
        gc();
      }
    };

    await run(soak(100, 500), 50); // warm-up: JIT, pools, allocator arenas
    await settleAll();
    const base = process.memoryUsage();
    peakContexts = 0;
    await run(CYCLES, 50);
    expect(peakContexts).toBeGreaterThan(0); // compression was really in use
    await settleAll();
    expect(zlibContexts()).toBe(0);
    const end = process.memoryUsage();
    const heapGrowth = end.heapUsed - base.heapUsed;
    const rssGrowth = end.rss - base.rss;
    expect(heapGrowth).toBeLessThan(16 * MiB);
    expect(rssGrowth).toBeLessThan(64 * MiB);
  }, 300_000);
});
