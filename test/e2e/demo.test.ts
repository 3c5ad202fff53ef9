/**
 * The demo (examples/express-chat) end to end: its server as `npm run demo` starts it (a
 * child process, PORT/HOST/PING_INTERVAL from the environment), pages in headless
 * Chromium (Debian's /usr/bin/chromium through playwright-core). Every wait is for a
 * condition on the page or the process, never a fixed delay.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const CHROMIUM = '/usr/bin/chromium';
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SERVER = fileURLToPath(new URL('../../examples/express-chat/server.js', import.meta.url));
const PAGE = readFileSync(new URL('../../examples/express-chat/index.html', import.meta.url), 'utf8');
const WAIT = 15_000;

const launchable = existsSync(CHROMIUM);
if (!launchable) {
  if (process.env.CI) throw new Error(`${CHROMIUM} is missing: install Debian's chromium package`);
  console.warn(`[demo e2e] SKIPPED: ${CHROMIUM} not found`);
}

interface Demo {
  child: ChildProcess;
  port: number;
  stderr: () => string;
  exit: Promise<number | null>;
}

/** Starts the demo server; resolves once it printed its URL, rejects if it exits first. */
function startDemo(port: number): Promise<Demo> {
  const child = spawn(process.execPath, [SERVER], {
    cwd: ROOT,
    env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', PING_INTERVAL: '200' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
  });
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /http:\/\/127\.0\.0\.1:(\d+)\//.exec(out);
      if (m) resolve({ child, port: Number(m[1]), stderr: () => err, exit });
    });
    exit.then((code) => reject(new Error(`demo exited with ${code}: ${err}`)));
  });
}

async function stopDemo(demo: Demo | undefined): Promise<void> {
  if (demo === undefined || demo.child.exitCode !== null) return;
  demo.child.kill('SIGTERM');
  await demo.exit;
}

describe.skipIf(!launchable)('the express-chat demo in Chromium', () => {
  let browser: Browser;
  let demo: Demo | undefined;
  let base: string;

  beforeAll(async () => {
    demo = await startDemo(0);
    base = `http://127.0.0.1:${demo.port}`;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await stopDemo(demo);
  });

  async function open(path: string): Promise<Page> {
    const page = await browser.newPage({ viewport: { width: 1100, height: 640 } });
    page.setDefaultTimeout(WAIT);
    await page.goto(`${base}${path}`);
    return page;
  }
  const isOpen = (page: Page) => page.waitForFunction(() => document.body.dataset.state === 'open');
  async function say(page: Page, text: string): Promise<void> {
    await page.locator('#say input[name=text]').fill(text);
    await page.locator('#say button').click();
  }
  const logOf = (page: Page) => page.locator('#log');

  it('two pages in a room talk both ways; a page in another room sees nothing; presence is live', async () => {
    const alice = await open('/rooms/garden?name=alice');
    await isOpen(alice);
    // Bob joins through the form, as a person would.
    const bob = await open('/rooms/garden');
    await bob.locator('#join input[name=name]').fill('bob');
    await bob.locator('#join button').click();
    await isOpen(bob);
    const carol = await open('/rooms/cellar?name=carol');
    await isOpen(carol);

    await expect
      .poll(() => alice.locator('#online li').allTextContents(), { timeout: WAIT })
      .toEqual(['alice', 'bob']);
    await say(alice, 'hello bob');
    await logOf(bob).getByText('hello bob').waitFor();
    await say(bob, 'hi alice');
    await logOf(alice).getByText('hi alice').waitFor();
    await expect
      .poll(() => logOf(alice).locator('.name').allTextContents(), { timeout: WAIT })
      .toEqual(['alice: ', 'bob: ']);

    // Carol, in another room, got neither message (both were published before her own
    // message below, which she does see) and sees only herself online.
    await say(carol, 'anyone here?');
    await logOf(carol).getByText('anyone here?').waitFor();
    expect(await logOf(carol).textContent()).not.toMatch(/hello bob|hi alice/);
    expect(await carol.locator('#online li').allTextContents()).toEqual(['carol']);
    expect(await logOf(alice).textContent()).not.toMatch(/anyone here/);

    // Bob leaves: Alice sees the room without him.
    await bob.close();
    await expect
      .poll(() => alice.locator('#online li').allTextContents(), { timeout: WAIT })
      .toEqual(['alice']);
    await alice.close();
    await carol.close();
  });

  it('shows the live connection facts: subprotocol, compression and its ratio, RTT, traffic', async () => {
    const page = await open('/rooms/facts?name=dora');
    await isOpen(page);
    expect(await page.locator('#protocol').textContent()).toBe('chat.v1');
    expect(await page.locator('#compression').textContent()).toMatch(/^permessage-deflate/);
    for (let i = 0; i < 4; i++) await say(page, 'the same words compress well with context takeover');
    await expect.poll(() => page.locator('#log .message').count(), { timeout: WAIT }).toBe(4);
    // A stats message comes with each keepalive Pong (PING_INTERVAL=200 ms here): wait for
    // one that counts our four messages.
    await page.waitForFunction(() => Number(document.getElementById('ratio')!.dataset.in) > 1.5);
    const rtt = Number(await page.locator('#rtt').getAttribute('data-ms'));
    expect(rtt).toBeGreaterThan(0);
    expect(rtt).toBeLessThan(1000); // loopback
    expect(await page.locator('#rtt').textContent()).toMatch(/^\d+\.\d\d ms \(ping every 0\.2 s\)$/);
    const ratioIn = Number(await page.locator('#ratio').getAttribute('data-in'));
    expect(ratioIn).toBeLessThan(50); // Chromium deflates each message; repeats cost a few bytes
    // The stats messages themselves are deflated (threshold 0): the outgoing ratio rises above 1.
    await page.waitForFunction(() => Number(document.getElementById('ratio')!.dataset.out) > 1);
    expect(await page.locator('#ratio').textContent()).toMatch(/^in \d+\.\d\d:1 · out \d+\.\d\d:1$/);
    const messages = (await page.locator('#messages').textContent()) ?? '';
    const [, inCount, outCount] = /^(\d+) in · (\d+) out$/.exec(messages) ?? [];
    expect(Number(outCount)).toBe(4);
    expect(Number(inCount)).toBeGreaterThanOrEqual(6); // welcome, presence, 4 messages, stats...
    expect(await page.locator('#bytes').textContent()).toMatch(/^[\d.]+ (B|KiB) in · [\d.]+ (B|KiB) out$/);
    await page.close();
  });

  it('answers an invalid message with an error and keeps the connection', async () => {
    const page = await open('/rooms/garden?name=eve');
    await isOpen(page);
    await page.evaluate(() => (window as unknown as { chat: { ws: WebSocket } }).chat.ws.send('not json'));
    await logOf(page).getByText('Server: invalid message: not JSON').waitFor();
    await page.evaluate(() =>
      (window as unknown as { chat: { ws: WebSocket } }).chat.ws.send('{"type":"say","text":""}'),
    );
    await logOf(page).locator('.error').nth(1).waitFor();
    expect(await page.evaluate(() => document.body.dataset.state)).toBe('open');
    await say(page, 'still here');
    await logOf(page).getByText('still here').waitFor();
    await page.close();
  });

  it('refuses a page of another origin, and the page shows the reason the server gave', async () => {
    // The same page, served by another server (another origin), pointed at the demo.
    const foreign: Server = createServer((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(PAGE);
    });
    await new Promise<void>((resolve) => foreign.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = foreign.address() as AddressInfo;
      const page = await browser.newPage();
      page.setDefaultTimeout(WAIT);
      await page.goto(
        `http://127.0.0.1:${port}/rooms/garden?name=mallory&server=${encodeURIComponent(base)}`,
      );
      await page.locator('#refusal').waitFor({ state: 'visible' });
      expect(await page.locator('#refusal-text').textContent()).toBe(
        '403 Forbidden: Pages of other sites may not join this chat (origin not allowed).',
      );
      expect(await page.evaluate(() => document.body.dataset.state)).toBe('refused');
      await page.close();
    } finally {
      foreign.close();
    }
  });

  it('reconnects by itself after the server restarts', async () => {
    const page = await open('/rooms/restart?name=frank');
    await isOpen(page);
    const port = demo!.port;
    await stopDemo(demo);
    await logOf(page).getByText('Disconnected: 1001 server restarting.').waitFor();
    await page.waitForFunction(() => document.body.dataset.state !== 'open');
    demo = await startDemo(port);
    await page.waitForFunction(() => document.body.dataset.state === 'open', undefined, { timeout: 30_000 });
    await say(page, 'back again');
    await logOf(page).getByText('back again').waitFor();
    await expect
      .poll(() => page.locator('#online li').allTextContents(), { timeout: WAIT })
      .toEqual(['frank']);
    if (process.env.WSKIT_DEMO_SCREENSHOT) await screenshot(process.env.WSKIT_DEMO_SCREENSHOT);
    await page.close();
  }, 60_000);

  /** The picture in the README: two people in #lobby, facts filled in. */
  async function screenshot(path: string): Promise<void> {
    const ada = await open('/rooms/lobby?name=Ada');
    await isOpen(ada);
    const linus = await open('/rooms/lobby?name=Linus');
    await isOpen(linus);
    await say(ada, 'Hi Linus! This chat runs on @wskit/express.');
    await logOf(linus).getByText('Hi Linus!').waitFor();
    await say(linus, 'Compressed with permessage-deflate, and the page shows the ratio.');
    await say(ada, 'And the RTT from the keepalive pings.');
    await logOf(ada).getByText('RTT from the keepalive').waitFor();
    await ada.waitForFunction(() => Number(document.getElementById('ratio')!.dataset.out) > 1);
    await ada.screenshot({ path });
    await ada.close();
    await linus.close();
  }
});

describe('the demo server', () => {
  it('exits non-zero with a clear message when its port is taken', async () => {
    const first = await startDemo(0);
    try {
      const second = startDemo(first.port);
      await expect(second).rejects.toThrow(/exited with 1: .*port \d+ on 127\.0\.0\.1 is already in use/s);
    } finally {
      await stopDemo(first);
    }
  });
});
