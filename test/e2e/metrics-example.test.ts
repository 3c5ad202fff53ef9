/**
 * examples/metrics end to end: its server in a child process (PORT=0), a scripted session
 * of wskit clients, then a scrape of its /metrics that must show exactly that session
 * (connections by route pattern, messages, close codes); and, where Debian's chromium is
 * installed, its dashboard page plotting the live values and making traffic of its own.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { connect } from '@wskit/core';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseScrape } from '../../packages/metrics/test/scrape.js';

const CHROMIUM = '/usr/bin/chromium';
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SERVER = fileURLToPath(new URL('../../examples/metrics/server.js', import.meta.url));

let child: ChildProcess;
let base: string;
let exit: Promise<number | null>;

beforeAll(async () => {
  child = spawn(process.execPath, [SERVER], {
    cwd: ROOT,
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  exit = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  let err = '';
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
  });
  base = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /(http:\/\/127\.0\.0\.1:\d+)\//.exec(out);
      if (m) resolve(m[1]!);
    });
    exit.then((code) => reject(new Error(`the example exited with ${code}: ${err}`)));
  });
}, 30_000);

afterAll(async () => {
  if (child && child.exitCode === null) {
    child.kill('SIGTERM');
    await exit;
  }
});

async function scrape(): Promise<Map<string, number>> {
  const response = await fetch(`${base}/metrics`);
  expect(response.status).toBe(200);
  return parseScrape(await response.text());
}

describe('examples/metrics', () => {
  it('serves /metrics that match a scripted session exactly', async () => {
    const ws = base.replace('http:', 'ws:');
    const before = await scrape();
    // The process's own metrics are there too (prom-client's defaults).
    expect([...before.keys()].some((k) => k.startsWith('process_cpu_user_seconds_total'))).toBe(true);
    expect(before.get('wskit_handshakes_total{outcome="accepted",status="101"}')).toBeUndefined();

    const echoA = await connect(`${ws}/echo`, { pingInterval: 0 });
    const echoB = await connect(`${ws}/echo`, { pingInterval: 0 });
    const room1 = await connect(`${ws}/rooms/blue`, { pingInterval: 0 });
    const room2 = await connect(`${ws}/rooms/green`, { pingInterval: 0 });
    for (let i = 0; i < 5; i++) {
      await echoA.send(`ping ${i}`);
      await echoA.receive();
    }
    await room1.send('hello blue');
    expect((await room1.receive())?.text()).toBe('hello blue');

    let scraped = await scrape();
    expect(scraped.get('wskit_connections{route="/echo",transport="http/1.1"}')).toBe(2);
    expect(scraped.get('wskit_connections{route="/rooms/:room",transport="http/1.1"}')).toBe(2);
    expect(scraped.get('wskit_handshakes_total{outcome="accepted",status="101"}')).toBe(4);
    expect(scraped.get('wskit_messages_total{direction="received",type="text"}')).toBe(6);
    expect(scraped.get('wskit_messages_total{direction="sent",type="text"}')).toBe(6);
    expect(scraped.get('wskit_message_bytes_total{direction="received",type="text"}')).toBe(5 * 6 + 10);

    await echoB.close(1000);
    await room2.close(4000, 'leaving');
    await echoA.send('__drop__'); // the server drops it without a Close
    expect((await echoA.closed).code).toBe(1006);
    await room1.close();
    await expect
      .poll(async () => (await scrape()).get('wskit_connections{route="/echo",transport="http/1.1"}'), {
        timeout: 10_000,
      })
      .toBeUndefined();
    scraped = await scrape();
    expect([...scraped.entries()].filter(([k]) => k.startsWith('wskit_closes_total')).sort()).toEqual([
      ['wskit_closes_total{code="1000",side="client"}', 2],
      ['wskit_closes_total{code="1006",side="none"}', 1],
      ['wskit_closes_total{code="4000",side="client"}', 1],
    ]);
    expect(scraped.get('wskit_connection_duration_seconds_count{route="/rooms/:room"}')).toBe(2);
    expect(scraped.get('wskit_connection_duration_seconds_count{route="/echo"}')).toBe(2);

    const stats = await (await fetch(`${base}/stats`)).json();
    expect(stats).toMatchObject({
      connections: 0,
      handshakes: { accepted: 4, refused: 0 },
      messages: { received: 7, sent: 6 },
      closeCodes: { 1000: 2, 1006: 1, 4000: 1 },
    });
  });

  it.skipIf(!existsSync(CHROMIUM))(
    'plots live values on its dashboard page',
    async () => {
      const browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
      });
      try {
        const page = await browser.newPage();
        page.setDefaultTimeout(15_000);
        await page.goto(`${base}/`);
        await page.waitForFunction(() => document.getElementById('connections')?.textContent === '0');
        await page.click('#open');
        await page.waitForFunction(() => document.getElementById('mine')?.textContent?.startsWith('5 '));
        await page.waitForFunction(() => document.getElementById('connections')?.textContent === '5');
        await page.click('#burst');
        // Messages per second: a non-zero rate in once the burst is scraped.
        await page.waitForFunction(() =>
          /^[1-9]\d* \/ /.test(document.getElementById('rate')?.textContent ?? ''),
        );
        await page.click('#close');
        await page.waitForFunction(() => document.getElementById('connections')?.textContent === '0');
        expect(await page.locator('#closes').textContent()).toMatch(/1000client closed first\d+/);
      } finally {
        await browser.close();
      }
    },
    60_000,
  );
});
