/**
 * A route's originGuard() from a real browser, for each adapter as its README shows it:
 * the app is restricted to `https://app.example`, one route is guarded for a partner's
 * origin. A page served by the partner (a second http server, on another port: another
 * origin) opens a WebSocket to that route and talks both ways; the same page served from
 * an origin that is not listed is refused with 403. Headless Chromium (Debian's
 * /usr/bin/chromium through playwright-core); every wait is for an event, never a delay.
 */
import { existsSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import type { WebSocket } from '@wskit/core';
import { originGuard as expressGuard, expressWs } from '@wskit/express';
import { originGuard as fastifyGuard, wsPlugin } from '@wskit/fastify';
import { originGuard as koaGuard, koaWs, websocket } from '@wskit/koa';
import { type Browser, type ConsoleMessage, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const CHROMIUM = '/usr/bin/chromium';
const HOST = '127.0.0.1';
const WAIT = 15_000;

// The frameworks are dependencies of their adapter packages, not of the repository root.
const fromPackage = (name: string) =>
  createRequire(new URL(`../../packages/${name}/package.json`, import.meta.url));
const express = fromPackage('express')('express') as typeof import('express');
const Koa = fromPackage('koa')('koa') as typeof import('koa');
const Router = fromPackage('koa')('@koa/router') as typeof import('@koa/router');
const Fastify = fromPackage('fastify')('fastify') as typeof import('fastify').default;

const launchable = existsSync(CHROMIUM);
if (!launchable) {
  if (process.env.CI) throw new Error(`${CHROMIUM} is missing: install Debian's chromium package`);
  console.warn(`[cross-origin e2e] SKIPPED: ${CHROMIUM} not found`);
}

/** The page: opens a WebSocket, sends "ping", reports what happened. */
const PAGE = `<!doctype html><meta charset="utf-8"><title>partner</title><script>
window.talk = (url) => new Promise((resolve) => {
  const got = [];
  let opened = false;
  const ws = new WebSocket(url);
  ws.onopen = () => { opened = true; ws.send('ping'); };
  ws.onmessage = (e) => { got.push(String(e.data)); if (got.length === 2) ws.close(1000); };
  ws.onclose = (e) => resolve({ opened, got, code: e.code });
});
</script>`;

/** What every WebSocket route does: greet with the route parameter, echo one message. */
async function greetAndEcho(ws: WebSocket, id: string): Promise<void> {
  await ws.send(`hello ${id}`);
  const msg = await ws.receive();
  if (msg !== null) await ws.send(`echo:${msg.text()}`);
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  return (server.address() as AddressInfo).port;
}

async function stop(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

interface App {
  /** ws:// URL of the route guarded for the partner's origin. */
  url: string;
  close(): Promise<void>;
}

/** The three adapters, set up as in their READMEs; `partner` is the allowed page origin. */
const adapters: Record<string, (partner: string) => Promise<App>> = {
  async express(partner) {
    const { app, wss } = expressWs(express(), null, { origins: ['https://app.example'] });
    const api = express.Router();
    api.ws('/live/:id', expressGuard([partner]), (ws, req) => greetAndEcho(ws, req.params.id));
    app.use('/api', api);
    const server = app.listen(0, HOST);
    await new Promise<void>((resolve) => server.once('listening', () => resolve()));
    const { port } = server.address() as AddressInfo;
    return {
      url: `ws://${HOST}:${port}/api/live/7`,
      close: async () => {
        server.close();
        await wss.close();
      },
    };
  },
  async koa(partner) {
    const app = koaWs(new Koa(), { origins: ['https://app.example'] });
    const router = new Router();
    router.get(
      '/chat/:room',
      koaGuard([partner]),
      websocket((ws, ctx) => greetAndEcho(ws, String(ctx.params.room))),
    );
    app.use(router.routes());
    const server = app.listen(0, HOST);
    await new Promise<void>((resolve) => server.once('listening', () => resolve()));
    const { port } = server.address() as AddressInfo;
    return {
      url: `ws://${HOST}:${port}/chat/7`,
      close: async () => {
        server.close();
        await app.ws.close();
      },
    };
  },
  async fastify(partner) {
    const app = Fastify();
    await app.register(wsPlugin, { origins: ['https://app.example'] });
    app.get<{ Params: { id: string } }>(
      '/admin/:id',
      { websocket: true, onRequest: fastifyGuard([partner]) },
      (socket, req) => greetAndEcho(socket, req.params.id),
    );
    await app.listen({ port: 0, host: HOST });
    const { port } = app.server.address() as AddressInfo;
    return { url: `ws://${HOST}:${port}/admin/7`, close: () => app.close() };
  },
};

describe.skipIf(!launchable)('a route guarded for another origin, from Chromium', () => {
  let browser: Browser;
  let partnerPages: Server;
  let strangerPages: Server;
  let partner: string;
  let stranger: string;

  beforeAll(async () => {
    const serve = () =>
      createServer((_req: IncomingMessage, res) => {
        res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
        res.end(PAGE);
      });
    partnerPages = serve();
    strangerPages = serve();
    partner = `http://${HOST}:${await listen(partnerPages)}`;
    stranger = `http://${HOST}:${await listen(strangerPages)}`;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await Promise.all([partnerPages, strangerPages].filter(Boolean).map(stop));
  });

  /** Loads the page from `origin` and lets it talk to `url`; also returns its console. */
  async function talkFrom(origin: string, url: string) {
    const page = await browser.newPage();
    page.setDefaultTimeout(WAIT);
    const console: string[] = [];
    page.on('console', (m: ConsoleMessage) => console.push(m.text()));
    await page.goto(`${origin}/`);
    expect(await page.evaluate(() => window.location.origin)).toBe(origin);
    const result = (await page.evaluate((u) => (window as unknown as Talk).talk(u), url)) as TalkResult;
    await page.close();
    return { ...result, console };
  }

  for (const [name, start] of Object.entries(adapters)) {
    it(`${name}: the partner's page talks, a page from an unlisted origin gets 403`, async () => {
      const app = await start(partner);
      try {
        const ok = await talkFrom(partner, app.url);
        expect(ok).toMatchObject({ opened: true, got: ['hello 7', 'echo:ping'], code: 1000 });

        const refused = await talkFrom(stranger, app.url);
        expect(refused).toMatchObject({ opened: false, got: [], code: 1006 });
        // Chromium reports the status of the refused handshake on the page's console.
        expect(refused.console.join('\n')).toMatch(/Unexpected response code: 403/);
      } finally {
        await app.close();
      }
    });
  }
});

interface TalkResult {
  opened: boolean;
  got: string[];
  code: number;
}
interface Talk {
  talk(url: string): Promise<TalkResult>;
}
