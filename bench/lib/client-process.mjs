// A bench client in its own process, for one implementation (wskit, ws or raw): runs the
// load generator of `wskit bench` (runBench) for the echo scenarios, and the fan-out,
// connection-rate and idle-connection scenarios, all through the same connector.
import { performance } from 'node:perf_hooks';
import { runBench } from '../../packages/cli/dist/bench.js';
import { connectors } from './connectors.mjs';
import { serveRequests, settledMemory } from './ipc.mjs';

let connector;
const CONNECT_OPTIONS = { maxMessageSize: 1024 * 1024, deflate: false };

/** Opens `n` connections, `concurrency` handshakes at a time; returns them and the time taken. */
async function openMany(url, n, concurrency, eventsFor) {
  const links = [];
  const errors = [];
  let next = 0;
  const t0 = performance.now();
  const opener = async () => {
    while (next < n) {
      const i = next++;
      try {
        links[i] = await connector(url, eventsFor(i), CONNECT_OPTIONS);
      } catch (err) {
        errors.push(err instanceof Error ? err.message : String(err));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, opener));
  return { links: links.filter(Boolean), errors, seconds: (performance.now() - t0) / 1000 };
}

const quiet = () => ({ message() {}, close() {}, error() {} });

function median(values) {
  const s = [...values].sort((a, b) => a - b);
  return s.length === 0 ? 0 : s[Math.floor((s.length - 1) / 2)];
}

// ---- fan-out state ----
let bcast;

// ---- idle connections ----
let idle = [];

serveRequests({
  init({ kind }) {
    connector = connectors[kind];
    if (connector === undefined) throw new Error(`unknown client kind ${kind}`);
  },

  async echo(args) {
    const r = await runBench({ ...args, connector });
    return r;
  },

  async bcastOpen({ url, clients }) {
    const state = {
      received: 0,
      target: Number.POSITIVE_INFINITY,
      wake: () => {},
      errors: 0,
      size: 0,
      binary: false,
    };
    const events = () => ({
      message(size, binary) {
        state.received++;
        if (size !== state.size || binary !== state.binary) state.errors++;
        if (state.received >= state.target) state.wake();
      },
      close() {},
      error() {
        state.errors++;
      },
    });
    const opened = await openMany(url, clients, 50, events);
    bcast = { ...opened, state };
    return { opened: opened.links.length, errors: opened.errors.length };
  },

  /**
   * `rounds` fan-outs after `warmup` ones: each round, connection 0 asks the server to
   * send `burst` messages to every subscriber; the round ends when all have arrived.
   */
  async bcastRun({ size, binary, burst, rounds, warmup }) {
    const { links, state } = bcast;
    state.size = size;
    state.binary = binary;
    state.errors = 0;
    const trigger = JSON.stringify({ count: burst, size, binary });
    const times = [];
    for (let round = 0; round < warmup + rounds; round++) {
      state.received = 0;
      state.target = links.length * burst;
      const t0 = performance.now();
      const done = new Promise((resolve, reject) => {
        const timer = setTimeout(
          () =>
            reject(new Error(`fan-out round ${round}: ${state.received}/${state.target} arrived in 15 s`)),
          15_000,
        );
        state.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      links[0].send(trigger, false);
      await done;
      if (round >= warmup) times.push(performance.now() - t0);
    }
    const total = times.reduce((a, b) => a + b, 0);
    const s = [...times].sort((a, b) => a - b);
    return {
      clients: links.length,
      deliveriesPerSecond: (links.length * burst * rounds) / (total / 1000),
      roundMs: { p50: median(times), max: s[s.length - 1] },
      errors: state.errors,
    };
  },

  async bcastClose() {
    if (bcast === undefined) return;
    for (const l of bcast.links) l.terminate();
    bcast = undefined;
  },

  /** Handshakes per second: `connections` opened, `concurrency` at a time, then dropped. */
  async setup({ url, connections, concurrency }) {
    const { links, errors, seconds } = await openMany(url, connections, concurrency, quiet);
    for (const l of links) l.terminate();
    return {
      opened: links.length,
      errors: errors.length,
      errorSample: errors[0],
      seconds,
      rate: links.length / seconds,
    };
  },

  async idleOpen({ url, connections, concurrency }) {
    const r = await openMany(url, connections, concurrency, quiet);
    idle.push(...r.links);
    return { opened: r.links.length, errors: r.errors.length, errorSample: r.errors[0] };
  },

  async idleClose() {
    for (const l of idle) l.terminate();
    idle = [];
  },

  memory: () => settledMemory(),
  cpu: () => process.cpuUsage(),
});
