/**
 * collectMetrics() on a live server: a scripted session (connections on two routes,
 * messages both ways, a publish, refusals, a protocol error, closes with and without a
 * handshake), then a scrape over HTTP whose series must match exactly what the session did.
 */

import diagnosticsChannel from 'node:diagnostics_channel';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CHANNELS, connect, Opcode, type WebSocket, WebSocketServer } from '@wskit/core';
import { collectMetrics } from '@wskit/metrics';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { expectRefusal, resourcesPerTest } from '../../../test/support/clients.js';
import { rawClient, within } from '../../core/test/node/raw.js';
import { parseScrape } from './scrape.js';

const res = resourcesPerTest();

async function until(condition: () => boolean, what: string): Promise<void> {
  await within(
    (async () => {
      while (!condition()) await new Promise((resolve) => setImmediate(resolve));
    })(),
    10_000,
    what,
  );
}

/** A server with /metrics next to the WebSocket routes. */
async function metricsServer(wss: WebSocketServer, register: Registry): Promise<number> {
  const server = createServer(async (req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'Content-Type': register.contentType });
    res.end(await register.metrics());
  });
  wss.attach(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  res.add(
    () =>
      new Promise<void>((resolve) => {
        for (const ws of wss.clients) ws.terminate();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return (server.address() as AddressInfo).port;
}

async function scrape(port: number): Promise<Map<string, number>> {
  const response = await fetch(`http://127.0.0.1:${port}/metrics`);
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return parseScrape(await response.text());
}

describe('collectMetrics', () => {
  it('matches a scripted session exactly', async () => {
    const register = new Registry();
    const wss = new WebSocketServer({ pingInterval: 0 });
    const serverSide: WebSocket[] = [];
    wss.route('/chat/*', (ws) => {
      serverSide.push(ws);
      ws.subscribe('room');
      ws.on('message', (m) => {
        if (m.text() === 'fail') throw new Error('handler failed');
        ws.send(m.data, { binary: m.type === 'binary' }).catch(() => {});
      });
    });
    wss.route('/feed', (ws) => {
      serverSide.push(ws);
    });
    const collector = collectMetrics(wss, { register });
    res.add(() => collector.stop());
    const port = await metricsServer(wss, register);
    const base = `ws://127.0.0.1:${port}`;

    // 4 connections: 2 on /chat/*, 1 on /feed, 1 raw one that breaks the protocol.
    const a = await connect(`${base}/chat/1`, { pingInterval: 0 });
    const b = await connect(`${base}/chat/2`, { pingInterval: 0 });
    const c = await connect(`${base}/feed`, { pingInterval: 0 });
    for (const ws of [a, b, c]) res.add(() => ws.terminate());
    // 2 refusals: no route (404), foreign Origin (403).
    expect((await expectRefusal(`${base}/nowhere`)).status).toBe(404);
    expect((await expectRefusal(`${base}/feed`, { origin: 'https://evil.example' })).status).toBe(403);
    await until(() => serverSide.length === 3, 'three connections');

    // a: 3 text messages of 5 bytes and 1 binary of 10, each echoed.
    for (const text of ['one..', 'two..', 'three']) await a.send(text);
    await a.send(Buffer.alloc(10));
    for (let i = 0; i < 4; i++) await a.receive();
    // A publish to the 2 chat connections: 2 more text messages sent, 4 bytes each.
    expect(wss.publish('room', 'news')).toBe(2);
    await a.receive();
    await b.receive();
    // The server pings a: one RTT observation.
    await serverSide[0]!.ping();

    let scraped = await scrape(port);
    expect(scraped.get('wskit_connections{route="/chat/*",transport="http/1.1"}')).toBe(2);
    expect(scraped.get('wskit_connections{route="/feed",transport="http/1.1"}')).toBe(1);
    expect(scraped.get('wskit_handshakes_total{outcome="accepted",status="101"}')).toBe(3);
    expect(scraped.get('wskit_handshakes_total{outcome="refused",status="404"}')).toBe(1);
    expect(scraped.get('wskit_handshakes_total{outcome="refused",status="403"}')).toBe(1);
    expect(scraped.get('wskit_messages_total{direction="received",type="text"}')).toBe(3);
    expect(scraped.get('wskit_messages_total{direction="received",type="binary"}')).toBe(1);
    expect(scraped.get('wskit_messages_total{direction="sent",type="text"}')).toBe(5);
    expect(scraped.get('wskit_messages_total{direction="sent",type="binary"}')).toBe(1);
    expect(scraped.get('wskit_message_bytes_total{direction="received",type="text"}')).toBe(15);
    expect(scraped.get('wskit_message_bytes_total{direction="received",type="binary"}')).toBe(10);
    expect(scraped.get('wskit_message_bytes_total{direction="sent",type="text"}')).toBe(23);
    expect(scraped.get('wskit_ping_rtt_seconds_count')).toBe(1);
    expect(scraped.get('wskit_buffered_amount_max_bytes')).toBe(0);
    expect([...scraped.keys()].filter((k) => k.startsWith('wskit_closes_total'))).toEqual([]);

    // Closes: c closes with 4001 (client first), b's handler fails (1011, server first),
    // a goes away without a Close (1006), and a raw peer breaks the protocol (1002).
    await c.close(4001, 'done');
    await b.send('fail');
    expect((await b.closed).code).toBe(1011);
    a.terminate();
    const raw = await rawClient(res, port, { path: '/feed' });
    raw.send({ opcode: Opcode.TEXT, payload: Buffer.from('x'), masked: false });
    await raw.nextOf(Opcode.CLOSE);
    raw.destroy();
    await until(() => wss.clients.size === 0, 'every connection to close');

    scraped = await scrape(port);
    expect([...scraped.entries()].filter(([k]) => k.startsWith('wskit_closes_total'))).toEqual(
      expect.arrayContaining([
        ['wskit_closes_total{code="4001",side="client"}', 1],
        ['wskit_closes_total{code="1011",side="server"}', 1],
        ['wskit_closes_total{code="1006",side="none"}', 1],
        ['wskit_closes_total{code="1002",side="server"}', 1],
      ]),
    );
    expect([...scraped.keys()].filter((k) => k.startsWith('wskit_closes_total'))).toHaveLength(4);
    expect(scraped.get('wskit_handler_errors_total{route="/chat/*"}')).toBe(1);
    expect(scraped.get('wskit_protocol_errors_total{code="1002",reason="protocol-error"}')).toBe(1);
    expect(scraped.get('wskit_handshakes_total{outcome="accepted",status="101"}')).toBe(4);
    expect(scraped.get('wskit_connection_duration_seconds_count{route="/chat/*"}')).toBe(2);
    expect(scraped.get('wskit_connection_duration_seconds_count{route="/feed"}')).toBe(2);
    expect(scraped.get('wskit_messages_total{direction="received",type="text"}')).toBe(4);
    expect([...scraped.keys()].filter((k) => k.startsWith('wskit_connections{'))).toEqual([]);
    // The same session as wss.stats() counts it.
    expect(wss.stats()).toMatchObject({
      handshakes: { accepted: 4, refused: 2 },
      messages: { received: 5, sent: 6 },
      closeCodes: { 1002: 1, 1006: 1, 1011: 1, 4001: 1 },
    });
  });

  it('reports deflate ratios and slow consumers, and stops cleanly', async () => {
    const register = new Registry();
    const wss = new WebSocketServer({
      pingInterval: 0,
      perMessageDeflate: true,
      maxBufferedAmount: 64 * 1024,
    });
    let server: WebSocket | undefined;
    wss.route('/*', (ws) => {
      server = ws;
      ws.on('message', (m) => ws.send(m.text()).catch(() => {}));
    });
    const collector = collectMetrics(wss, { register, prefix: 'app_ws_', labels: { instance: 'x' } });
    const port = await metricsServer(wss, register);
    const client = await connect(`ws://127.0.0.1:${port}/z`, { pingInterval: 0, perMessageDeflate: true });
    res.add(() => client.terminate());
    await client.send('a'.repeat(4000));
    await client.receive();
    let scraped = await scrape(port);
    expect(scraped.get('app_ws_deflate_ratio_count{direction="received",instance="x"}')).toBe(1);
    expect(scraped.get('app_ws_deflate_ratio_count{direction="sent",instance="x"}')).toBe(1);
    // Compressed 4000 identical bytes: far below 1/10 of the size.
    expect(scraped.get('app_ws_deflate_ratio_bucket{le="0.05",direction="received",instance="x"}')).toBe(1);

    // A raw peer that never reads: the server's sends pile up past maxBufferedAmount.
    const raw = await rawClient(res, port, { path: '/slow' });
    raw.socket.pause();
    await until(() => server !== undefined && server.remotePort === raw.socket.localPort, 'the raw peer');
    const slow = server!;
    const chunk = 'y'.repeat(16 * 1024);
    while (slow.readyState === 1) {
      slow.send(chunk, { compress: false }).catch(() => {});
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    scraped = await scrape(port);
    expect(
      scraped.get('app_ws_backpressure_events_total{kind="slow-consumer",action="close",instance="x"}'),
    ).toBe(1);
    expect(
      scraped.get('app_ws_backpressure_events_total{kind="high-water",action="wait",instance="x"}'),
    ).toBeGreaterThan(0);
    expect(scraped.get('app_ws_buffered_amount_max_bytes{instance="x"}')).toBeGreaterThan(64 * 1024);

    collector.stop();
    expect((await register.metrics()).trim()).toBe('');
    expect(register.getMetricsAsArray()).toEqual([]);
    // Nobody listens any more: the core is back on its no-cost path.
    for (const name of Object.values(CHANNELS))
      expect(diagnosticsChannel.hasSubscribers(name), name).toBe(false);
  });
});
