/**
 * permessage-deflate with a real browser: headless Chromium (Debian's /usr/bin/chromium,
 * driven by playwright-core) loads a page from an http server that our WebSocketServer is
 * attached to (same origin, so the default origin check passes). The page opens a
 * WebSocket, compression is negotiated, and 1 MiB text and binary messages go both ways
 * and are checked byte for byte on both sides.
 */
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  type Frame,
  type ServerOptions,
  type UpgradeRequest,
  type WebSocket,
  WebSocketServer,
} from '@wskit/core';
import { type Browser, chromium } from 'playwright-core';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, onCleanup } from '../support/clients.js';

const CHROMIUM = '/usr/bin/chromium';
const MiB = 1024 * 1024;
const SIZE = MiB;

/**
 * The deterministic payloads, as JavaScript source shared by the page and this test (the
 * same text runs on both sides). Text mixes ASCII with 2-, 3- and 4-byte UTF-8.
 */
const PATTERN_JS = `
function textPattern(units) {
  const pieces = ['{"id":', '"name":"wskit",', '"ok":true,', 'é', '✓', '😀', 'ж', '中', ' '];
  let out = '';
  let i = 0;
  while (out.length < units) {
    out += pieces[(i * 7 + (i >> 3)) % pieces.length] + (i % 97);
    i++;
  }
  return out.slice(0, units - 2) + 'zz';
}
function binaryPattern(size) {
  const out = new Uint8Array(size);
  let x = 0x9e3779b9;
  for (let i = 0; i < size; i++) {
    if ((i >> 11) % 2 === 0) {
      x ^= x << 13; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
      out[i] = x & 0xff;
    } else {
      out[i] = (i * 31 + (i >> 10)) & 0xff;
    }
  }
  return out;
}
`;

const { textPattern, binaryPattern } = new Function(
  `${PATTERN_JS}; return { textPattern, binaryPattern };`,
)() as { textPattern: (units: number) => string; binaryPattern: (size: number) => Uint8Array };

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>wskit deflate</title></head>
<body>
<script>
${PATTERN_JS}
function sameBytes(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
window.runTest = async function (size) {
  const ws = new WebSocket('ws://' + location.host + '/ws');
  ws.binaryType = 'arraybuffer';
  const inbox = [];
  const waiters = [];
  ws.onmessage = (e) => (waiters.length ? waiters.shift()(e.data) : inbox.push(e.data));
  const next = () => (inbox.length ? Promise.resolve(inbox.shift()) : new Promise((r) => waiters.push(r)));
  const closed = new Promise((r) => (ws.onclose = (e) => r({ code: e.code, wasClean: e.wasClean })));
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = () => reject(new Error('WebSocket error before open'));
  });
  const text = textPattern(size);
  const bin = binaryPattern(size);
  const checks = {};
  ws.send(text);
  const t = await next();
  checks.textEcho = typeof t === 'string' && t === text;
  ws.send(bin);
  const b = await next();
  checks.binaryEcho = b instanceof ArrayBuffer && sameBytes(new Uint8Array(b), bin);
  ws.send('send yours');
  const st = await next();
  checks.serverText = typeof st === 'string' && st === text;
  const sb = await next();
  checks.serverBinary = sb instanceof ArrayBuffer && sameBytes(new Uint8Array(sb), bin);
  const extensions = ws.extensions;
  ws.close(1000, 'done');
  return { extensions, checks, textLength: text.length, close: await closed };
};
</script>
</body></html>`;

const launchable = existsSync(CHROMIUM);
if (!launchable) {
  if (process.env.CI) throw new Error(`${CHROMIUM} is missing: install Debian's chromium package`);
  console.warn(`[browser] SKIPPED: ${CHROMIUM} not found`);
}

afterEach(cleanup);

interface ServerSide {
  ws: WebSocket;
  req: UpgradeRequest;
  frames: Frame[];
  received: Array<{ type: string; equal: boolean; size: number }>;
  done: Promise<void>;
}

async function startApp(
  perMessageDeflate: ServerOptions['perMessageDeflate'],
): Promise<{ url: string; sides: ServerSide[] }> {
  const http: Server = createServer((req, res) => {
    if (req.url === '/' || req.url === '/index.html') {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
      res.end(PAGE);
      return;
    }
    res.writeHead(404).end();
  });
  const wss = new WebSocketServer({ pingInterval: 0, closeTimeout: 3000, perMessageDeflate }).attach(http);
  const sides: ServerSide[] = [];
  const text = textPattern(SIZE);
  const bin = Buffer.from(binaryPattern(SIZE));
  wss.route(
    '/ws',
    (ws, req) => {
      const frames: Frame[] = [];
      ws.use({
        name: 'browser-spy',
        inbound(frame) {
          frames.push({ ...frame, payload: Buffer.alloc(0) });
          return frame;
        },
      });
      const received: ServerSide['received'] = [];
      const done = (async () => {
        for await (const m of ws) {
          if (m.type === 'text' && m.text() === 'send yours') {
            await ws.send(text);
            await ws.send(bin);
            continue;
          }
          const expected = m.type === 'text' ? Buffer.from(text) : bin;
          received.push({ type: m.type, equal: m.data.equals(expected), size: m.size });
          await ws.send(m.data, { binary: m.type === 'binary' });
        }
      })();
      sides.push({ ws, req, frames, received, done });
    },
    // 1 MiB of payload plus the frame: above the 1 MiB defaults.
    { maxMessageSize: 4 * MiB, maxFrameSize: 4 * MiB },
  );
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  onCleanup(async () => {
    await wss.close();
    http.closeAllConnections();
    await new Promise<void>((resolve) => http.close(() => resolve()));
  });
  return { url: `http://127.0.0.1:${(http.address() as AddressInfo).port}/`, sides };
}

const cases: Array<{ name: string; deflate: ServerOptions['perMessageDeflate']; agreed: string }> = [
  { name: 'default parameters', deflate: true, agreed: 'permessage-deflate' },
  {
    name: 'no context takeover and 9-bit windows both ways',
    deflate: {
      serverNoContextTakeover: true,
      clientNoContextTakeover: true,
      serverMaxWindowBits: 9,
      clientMaxWindowBits: 9,
    },
    agreed:
      'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=9; client_max_window_bits=9',
  },
];

describe.skipIf(!launchable)('headless Chromium with permessage-deflate', () => {
  it.each(cases)(
    '$name: negotiated, and 1 MiB text and binary messages are exchanged exactly',
    async (c) => {
      const app = await startApp(c.deflate);
      const browser: Browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
      });
      onCleanup(() => browser.close());
      const page = await browser.newPage();
      const pageErrors: string[] = [];
      page.on('pageerror', (err) => pageErrors.push(err.message));
      await page.goto(app.url);
      const result = (await page.evaluate(
        (size) => (window as unknown as { runTest(n: number): unknown }).runTest(size),
        SIZE,
      )) as {
        extensions: string;
        checks: Record<string, boolean>;
        textLength: number;
        close: { code: number; wasClean: boolean };
      };
      expect(pageErrors).toEqual([]);

      expect(app.sides).toHaveLength(1);
      const side = app.sides[0]!;
      await side.done;
      // The browser's offer, and the same agreement seen from both ends.
      expect(side.req.headers['sec-websocket-extensions']).toMatch(
        /^permessage-deflate; client_max_window_bits\b/,
      );
      expect(side.req.origin).toBe(app.url.slice(0, -1));
      expect(side.ws.extensions).toBe(c.agreed);
      expect(result.extensions).toBe(side.ws.extensions);

      expect(result.checks).toEqual({
        textEcho: true,
        binaryEcho: true,
        serverText: true,
        serverBinary: true,
      });
      expect(side.received).toEqual([
        { type: 'text', equal: true, size: Buffer.byteLength(textPattern(SIZE)) },
        { type: 'binary', equal: true, size: SIZE },
      ]);
      expect(Buffer.byteLength(textPattern(SIZE))).toBeGreaterThan(SIZE); // multi-byte characters in it
      // The browser really compressed: RSV1 on the first frame of each of its data messages.
      const firsts = side.frames.filter((f) => f.opcode === 1 || f.opcode === 2);
      expect(firsts.map((f) => f.rsv)).toEqual([4, 4, 4]);
      expect(result.close.code).toBe(1000);
    },
    90_000,
  );
});
