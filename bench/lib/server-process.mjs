// A bench server in its own process: `start` one of the servers of servers.mjs, then
// answer the orchestrator's questions (connection count, memory, fan-out timings).
import { performance } from 'node:perf_hooks';
import { serveRequests, settledMemory } from './ipc.mjs';
import { wsMasking } from './raw-load.mjs';
import { fanoutStats, startServer } from './servers.mjs';

let server;

serveRequests({
  async start({ kind, options }) {
    server = await startServer(kind, options);
    return server.urls;
  },
  count: () => server.count(),
  cpu: () => ({ ...process.cpuUsage(), t: performance.now() }),
  wsMasking: () => wsMasking(),
  memory: () => settledMemory(),
  resetStats() {
    fanoutStats.calls = 0;
    fanoutStats.ms = 0;
    fanoutStats.deliveries = 0;
  },
  stats: () => ({ ...fanoutStats }),
  async close() {
    await server?.close();
    server = undefined;
  },
});
