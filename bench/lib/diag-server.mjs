// The echo server of bench/diagnostics.mjs in its own process: @wskit/core loaded from
// `core` (this tree's build, or another build for a before/after comparison), with
// nobody, no-op subscribers, or @wskit/metrics listening on the diagnostics channels.
import diagnosticsChannel from 'node:diagnostics_channel';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { serveRequests } from './ipc.mjs';

let wss;
const noop = () => {};

serveRequests({
  async start({ core, mode }) {
    const { WebSocketServer, CHANNELS, TRACING_CHANNELS } = await import(pathToFileURL(core).href);
    wss = new WebSocketServer();
    wss.route('/echo', (ws) => {
      ws.on('message', (m) => {
        ws.send(m.data, { binary: m.type === 'binary' }).catch(noop);
      });
    });
    if (mode === 'noop') {
      for (const name of Object.values(CHANNELS)) diagnosticsChannel.subscribe(name, noop);
      for (const name of Object.values(TRACING_CHANNELS)) {
        diagnosticsChannel
          .tracingChannel(name)
          .subscribe({ start: noop, end: noop, asyncStart: noop, asyncEnd: noop, error: noop });
      }
    } else if (mode === 'metrics') {
      const { collectMetrics } = await import('../../packages/metrics/dist/index.js');
      // prom-client is a dependency of packages/metrics, not of the workspace root.
      const { Registry } = createRequire(new URL('../../packages/metrics/package.json', import.meta.url))(
        'prom-client',
      );
      collectMetrics(wss, { register: new Registry() });
    }
    const { port } = await wss.listen(0, '127.0.0.1');
    return { echo: `ws://127.0.0.1:${port}/echo` };
  },
  cpu: () => process.cpuUsage(),
  async close() {
    await wss?.close();
  },
});
