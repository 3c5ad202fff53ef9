// The three clients behind the load generator's connector interface (see
// packages/cli/src/bench.ts, BenchConnector): each opens one connection and reports its
// messages as (size, binary). The load loop itself is the same code for all three.
import WebSocket from 'ws';
import { wskitConnector } from '../../packages/cli/dist/bench.js';
import { rawConnector } from './raw.mjs';

/** The `ws` package's client, used the way its README shows ('message' events). */
export function wsConnector(url, events, options) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: options.deflate });
    let open = false;
    ws.on('message', (data, isBinary) => events.message(data.length, isBinary));
    ws.on('error', (err) => {
      if (open) events.error(err);
      else reject(err);
    });
    ws.on('close', (code, reason) => {
      if (open) events.close(code, reason.toString());
    });
    ws.once('open', () => {
      open = true;
      resolve({
        send: (data, binary) => ws.send(data, { binary }),
        close: () =>
          new Promise((done) => {
            if (ws.readyState === WebSocket.CLOSED) return done();
            ws.once('close', () => done());
            ws.close(1000);
          }),
        terminate: () => ws.terminate(),
      });
    });
  });
}

export const connectors = { wskit: wskitConnector, ws: wsConnector, raw: rawConnector };
