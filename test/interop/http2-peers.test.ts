/**
 * WebSockets over HTTP/2 (RFC 8441) with peers we did not write: headless Chromium
 * (Debian's /usr/bin/chromium through playwright-core) loads a page over h2 from an
 * http2 secure server that our WebSocketServer is attached to, and opens a wss://
 * WebSocket to the same origin, which arrives as an extended CONNECT stream; undici's
 * WebSocket with an `Agent({ allowH2: true })` does the same from Node.
 */
import { existsSync } from 'node:fs';
import { createSecureServer, type Http2SecureServer } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { type ServerOptions, type WebSocket, WebSocketServer } from '@wskit/core';
import { type Browser, chromium } from 'playwright-core';
import { Agent, WebSocket as UndiciWebSocket } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { cleanup, generateCert, onCleanup, removeCert, type TestCert } from '../support/clients.js';

const CHROMIUM = '/usr/bin/chromium';
const launchable = existsSync(CHROMIUM);
if (!launchable && process.env.CI)
  throw new Error(`${CHROMIUM} is missing: install Debian's chromium package`);

afterEach(cleanup);

let cert: TestCert;
beforeAll(() => {
  cert = generateCert();
});
afterAll(() => removeCert(cert));

const PAGE = '<!doctype html><meta charset="utf-8"><title>h2</title><p>over HTTP/2</p>';

interface Served {
  port: number;
  /** Server-side connections, in arrival order, with the HTTP version of the page loads. */
  connections: WebSocket[];
  pageVersions: string[];
}

/** An h2 server (allowHTTP1) serving a page on / and an echo WebSocket route on /ws. */
async function serve(options: ServerOptions): Promise<Served> {
  const connections: WebSocket[] = [];
  const pageVersions: string[] = [];
  const wss = new WebSocketServer({ pingInterval: 0, ...options });
  wss.route('/ws', async (ws) => {
    connections.push(ws);
    for await (const msg of ws) await ws.send(msg.data, { binary: msg.type === 'binary' });
  });
  const server: Http2SecureServer = createSecureServer(
    { cert: cert.cert, key: cert.key, allowHTTP1: true },
    (req, res) => {
      pageVersions.push(req.httpVersion);
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(PAGE);
    },
  );
  wss.attach(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onCleanup(async () => {
    for (const ws of wss.clients) ws.terminate();
    await wss.close();
    await new Promise((resolve) => server.close(resolve));
  });
  return { port: (server.address() as AddressInfo).port, connections, pageVersions };
}

describe.skipIf(!launchable)('Chromium opens wss:// as an HTTP/2 stream', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--ignore-certificate-errors',
      ],
    });
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
  });

  it.each([
    ['with compression', true],
    ['without compression', false],
  ])('text and binary both ways, %s', async (_name, deflate) => {
    const served = await serve({ perMessageDeflate: deflate });
    const page = await browser.newPage();
    onCleanup(() => page.close());
    await page.goto(`https://127.0.0.1:${served.port}/`);
    const result = await page.evaluate(async () => {
      const ws = new WebSocket(`wss://${location.host}/ws`);
      ws.binaryType = 'arraybuffer';
      const replies: Array<string | number[]> = [];
      const done = new Promise<void>((resolve, reject) => {
        ws.onmessage = (e) => {
          replies.push(typeof e.data === 'string' ? e.data : [...new Uint8Array(e.data as ArrayBuffer)]);
          if (replies.length === 2) resolve();
        };
        ws.onerror = () => reject(new Error('WebSocket error'));
      });
      await new Promise((resolve) => {
        ws.onopen = resolve;
      });
      ws.send('héllo over h2 '.repeat(100));
      ws.send(new Uint8Array([0, 1, 2, 250, 255]));
      await done;
      const extensions = ws.extensions;
      ws.close(1000, 'done');
      await new Promise((resolve) => {
        ws.onclose = resolve;
      });
      return { replies, extensions };
    });
    expect(served.pageVersions[0]).toBe('2.0');
    expect(served.connections).toHaveLength(1);
    expect(served.connections[0]!.transport).toBe('h2');
    expect(result.replies).toEqual(['héllo over h2 '.repeat(100), [0, 1, 2, 250, 255]]);
    if (deflate) {
      expect(result.extensions).toMatch(/^permessage-deflate/);
      expect(served.connections[0]!.extensions).toMatch(/^permessage-deflate/);
    } else {
      expect(result.extensions).toBe('');
      expect(served.connections[0]!.extensions).toBe('');
    }
  });
});

describe("undici's WebSocket with allowH2", () => {
  it('connects over h2 and echoes text and binary', async () => {
    const served = await serve({});
    const dispatcher = new Agent({ allowH2: true, connect: { ca: cert.cert } });
    onCleanup(() => dispatcher.close());
    const ws = new UndiciWebSocket(`wss://127.0.0.1:${served.port}/ws`, { dispatcher });
    ws.binaryType = 'arraybuffer';
    const replies: Array<string | number[]> = [];
    const done = new Promise<void>((resolve, reject) => {
      ws.onmessage = (e) => {
        replies.push(typeof e.data === 'string' ? e.data : [...new Uint8Array(e.data as ArrayBuffer)]);
        if (replies.length === 2) resolve();
      };
      ws.onerror = () => reject(new Error('undici WebSocket error'));
    });
    await new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onclose = (e) => reject(new Error(`closed ${e.code} before opening`));
    });
    ws.onclose = null;
    ws.send('from undici');
    ws.send(new Uint8Array([9, 8, 7]));
    await done;
    expect(replies).toEqual(['from undici', [9, 8, 7]]);
    expect(served.connections[0]!.transport).toBe('h2');
    const closed = new Promise<number>((resolve) => {
      ws.onclose = (e) => resolve(e.code);
    });
    const serverSide = served.connections[0]!.closed;
    ws.close(1000);
    expect(await closed).toBe(1000);
    // Both Close frames, then our END_STREAM (and RST_STREAM(NO_ERROR) if undici keeps its
    // side open): the server's connection ends cleanly, without waiting for closeTimeout.
    expect(await serverSide).toMatchObject({ code: 1000, wasClean: true });
  });
});
