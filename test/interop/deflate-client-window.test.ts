/**
 * The client's default permessage-deflate offer carries client_max_window_bits (RFC 7692
 * §7.1.2.2), so a server may choose the client's window. For every window 8..15, with and
 * without client_no_context_takeover, our server asks for it, our client (default offer)
 * agrees, and messages of 1 B .. 200 KB echo back; what the client wrote is captured off
 * the wire by a proxy and decoded by zlib limited to that window (9 for 8).
 * The Python `websockets` server does the same in deflate-python.test.ts.
 */
import { deflateRawSync, constants as zconst } from 'node:zlib';
import { connect, WebSocketServer } from '@wskit/core';
import { afterEach, describe, expect, it } from 'vitest';
import {
  checkClientOutput,
  echoAll,
  FrameTapProxy,
  inflateWithin,
  probeMessages,
  WINDOW_CASES,
  windowProbe,
} from './client-window.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) {
    try {
      await fn();
    } catch {
      // keep cleaning
    }
  }
});

const messages = probeMessages();

describe('the client window chosen by the server (our server)', () => {
  it('the probe catches a compressor that uses a wider window than agreed', () => {
    const data = windowProbe(70_000, 3, false);
    const wide = deflateRawSync(data, { windowBits: 15, finishFlush: zconst.Z_SYNC_FLUSH }).subarray(0, -4);
    for (let bits = 8; bits <= 14; bits++) {
      expect(() => inflateWithin([wide], bits, true), `${bits} bits`).toThrow(/too far back/);
    }
    expect(inflateWithin([wide], 15, true).equals(data)).toBe(true);
    // A message that refers back into the one before (context takeover) cannot be read
    // as a message without context.
    const a = windowProbe(4000, 5, true);
    const sync = { finishFlush: zconst.Z_SYNC_FLUSH } as const;
    const first = deflateRawSync(a, sync).subarray(0, -4);
    const second = deflateRawSync(a, { ...sync, dictionary: a }).subarray(0, -4);
    expect(inflateWithin([first, second], 12, false).equals(Buffer.concat([a, a]))).toBe(true);
    expect(() => inflateWithin([first, second], 12, true)).toThrow(/too far back/);
  });

  it.each(WINDOW_CASES)(
    'client_max_window_bits=$bits, client_no_context_takeover: $noContextTakeover',
    async ({ bits, noContextTakeover }) => {
      const wss = new WebSocketServer({
        pingInterval: 0,
        perMessageDeflate: { clientMaxWindowBits: bits, clientNoContextTakeover: noContextTakeover },
      });
      const serverSide: string[] = [];
      wss.route('/*', async (ws) => {
        serverSide.push(ws.extensions);
        for await (const m of ws) await ws.send(m.data, { binary: m.type === 'binary' });
      });
      const { port } = await wss.listen(0, '127.0.0.1');
      cleanups.push(() => wss.close());
      const proxy = await FrameTapProxy.start(port);
      cleanups.push(() => proxy.close());

      const ws = await connect(`ws://127.0.0.1:${proxy.port}/`, {
        pingInterval: 0,
        perMessageDeflate: { threshold: 0 },
      });
      cleanups.push(() => ws.terminate());
      const expected = `permessage-deflate; ${noContextTakeover ? 'client_no_context_takeover; ' : ''}client_max_window_bits=${bits}`;
      expect(ws.extensions).toBe(expected);
      expect(serverSide).toEqual([expected]);

      await echoAll(ws, messages);
      await ws.close(1000);
      expect(proxy.parseError).toBeUndefined();
      checkClientOutput(proxy.dataFrames(), messages, bits, noContextTakeover);
    },
  );
});
