/**
 * instrumentOpenTelemetry() with the real SDK and its in-memory exporters: handshake spans
 * (accepted, refused, continuing an incoming traceparent, parenting the spans made in
 * acceptConnection), opt-in message spans parenting the handler's spans, and the metrics.
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import { context, propagation } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { CHANNELS, connect, TRACING_CHANNELS, type WebSocket, WebSocketServer } from '@wskit/core';
import { instrumentOpenTelemetry } from '@wskit/metrics/otel';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectRefusal, resourcesPerTest } from '../../../test/support/clients.js';
import { within } from '../../core/test/node/raw.js';

const res = resourcesPerTest();
const exporter = new InMemorySpanExporter();
const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const appTracer = tracerProvider.getTracer('app');

beforeAll(() => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
});
afterAll(() => {
  context.disable();
  propagation.disable();
});

async function until(condition: () => boolean, what: string): Promise<void> {
  await within(
    (async () => {
      while (!condition()) await new Promise((resolve) => setImmediate(resolve));
    })(),
    10_000,
    what,
  );
}

async function start(wss: WebSocketServer): Promise<string> {
  const { port } = await wss.listen(0, '127.0.0.1');
  res.add(async () => {
    for (const ws of wss.clients) ws.terminate();
    await wss.close();
  });
  return `ws://127.0.0.1:${port}`;
}

const spans = (name: string): ReadableSpan[] => exporter.getFinishedSpans().filter((s) => s.name === name);
const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId;

describe('OpenTelemetry spans', () => {
  it('trace handshakes: accepted, refused, and continuing a traceparent', async () => {
    exporter.reset();
    const wss = new WebSocketServer({
      pingInterval: 0,
      protocols: ['v1'],
      // A span made while the application decides: a child of the handshake span.
      acceptConnection: (req) => {
        appTracer.startSpan('check access').end();
        return req.path !== '/denied';
      },
    });
    wss.route('/ok/*', () => {});
    wss.route('/denied', () => {});
    const otel = instrumentOpenTelemetry(wss, { tracerProvider, metrics: false });
    res.add(() => otel.stop());
    const base = await start(wss);

    const traceId = '0af7651916cd43dd8448eb211c80319c';
    const parentId = 'b7ad6b7169203331';
    const client = await connect(`${base}/ok/1?secret=x`, {
      pingInterval: 0,
      protocols: ['v1'],
      headers: { traceparent: `00-${traceId}-${parentId}-01`, 'User-Agent': 'otel-test' },
    });
    res.add(() => client.terminate());
    expect((await expectRefusal(`${base}/denied`)).status).toBe(403);
    expect((await expectRefusal(`${base}/missing`)).status).toBe(404);
    await until(() => spans('WebSocket upgrade').length === 3, 'three handshake spans');

    const [accepted, denied, missing] = spans('WebSocket upgrade');
    expect(accepted!.kind).toBe(1); // SpanKind.SERVER
    expect(accepted!.spanContext().traceId).toBe(traceId);
    expect(parentOf(accepted!)).toBe(parentId);
    expect(accepted!.attributes).toMatchObject({
      'http.request.method': 'GET',
      'url.path': '/ok/1',
      'url.scheme': 'ws',
      'http.response.status_code': 101,
      'http.route': '/ok/*',
      'websocket.subprotocol': 'v1',
      'user_agent.original': 'otel-test',
      'client.address': '127.0.0.1',
    });
    expect(JSON.stringify(accepted!.attributes)).not.toContain('secret');
    expect(denied!.attributes).toMatchObject({ 'url.path': '/denied', 'http.response.status_code': 403 });
    expect(denied!.status.code).toBe(0); // a 4xx is not a server error
    expect(missing!.attributes).toMatchObject({ 'http.response.status_code': 404 });

    // acceptConnection ran inside each routed handshake's span (the 404 never reached it).
    const checks = spans('check access');
    expect(checks).toHaveLength(2);
    expect(checks.map(parentOf)).toEqual([accepted!.spanContext().spanId, denied!.spanContext().spanId]);
    expect(checks[0]!.spanContext().traceId).toBe(traceId);
  });

  it('trace message handling when asked to, with the handler inside the span', async () => {
    exporter.reset();
    const wss = new WebSocketServer({ pingInterval: 0 });
    wss.route('/listener', (ws) => {
      ws.on('message', (m) => {
        appTracer.startSpan('handle').end();
        ws.send(m.data).catch(() => {});
      });
    });
    wss.route('/consume', (ws) => {
      void ws.consume(async (m) => {
        await new Promise((resolve) => setImmediate(resolve));
        appTracer.startSpan('handle').end(); // after an await: still in the message's context
        if (m.text() === 'bad') throw new Error('bad message');
        await ws.send(m.data);
      });
    });
    const otel = instrumentOpenTelemetry(wss, { tracerProvider, metrics: false, messageSpans: true });
    res.add(() => otel.stop());
    const base = await start(wss);
    for (const path of ['listener', 'consume']) {
      const client = await connect(`${base}/${path}`, { pingInterval: 0 });
      res.add(() => client.terminate());
      await client.send(`hi ${path}`);
      expect((await client.receive())?.text()).toBe(`hi ${path}`);
      if (path === 'consume') {
        await client.send('bad');
        expect((await client.closed).code).toBe(1011);
      }
    }
    await until(() => spans('WebSocket message').length === 3, 'three message spans');
    const messages = spans('WebSocket message');
    expect(messages.map((s) => [s.attributes['wskit.handler'], s.attributes['http.route']])).toEqual([
      ['listener', '/listener'],
      ['consume', '/consume'],
      ['consume', '/consume'],
    ]);
    expect(messages[0]!.attributes).toMatchObject({
      'websocket.message.type': 'text',
      'websocket.message.size': 11,
    });
    expect(messages[2]!.status.code).toBe(2); // ERROR
    expect(messages[2]!.events.map((e) => e.name)).toEqual(['exception']);
    const handles = spans('handle');
    expect(handles.map(parentOf)).toEqual(messages.map((s) => s.spanContext().spanId));
  });

  it('makes no message spans unless asked', async () => {
    exporter.reset();
    const wss = new WebSocketServer({ pingInterval: 0 });
    wss.route('/*', (ws) => {
      ws.on('message', (m) => ws.send(m.data).catch(() => {}));
    });
    const otel = instrumentOpenTelemetry(wss, { tracerProvider, metrics: false });
    res.add(() => otel.stop());
    const client = await connect(`${await start(wss)}/x`, { pingInterval: 0 });
    res.add(() => client.terminate());
    await client.send('x');
    await client.receive();
    expect(spans('WebSocket message')).toEqual([]);
    expect(spans('WebSocket upgrade')).toHaveLength(1);
    otel.stop();
    for (const name of Object.values(TRACING_CHANNELS)) {
      expect(diagnosticsChannel.tracingChannel(name).hasSubscribers, name).toBe(false);
    }
    for (const name of Object.values(CHANNELS))
      expect(diagnosticsChannel.hasSubscribers(name), name).toBe(false);
  });
});

describe('OpenTelemetry metrics', () => {
  it('count what a session did', async () => {
    const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
    const reader = new PeriodicExportingMetricReader({
      exporter: metricExporter,
      exportIntervalMillis: 3_600_000,
    });
    const meterProvider = new MeterProvider({ readers: [reader] });
    res.add(() => meterProvider.shutdown());
    const wss = new WebSocketServer({ pingInterval: 0 });
    const opened: WebSocket[] = [];
    wss.route('/room/*', (ws) => {
      opened.push(ws);
      ws.on('message', (m) => ws.send(m.data).catch(() => {}));
    });
    const otel = instrumentOpenTelemetry(wss, { meterProvider, handshakeSpans: false });
    res.add(() => otel.stop());
    const base = await start(wss);
    const a = await connect(`${base}/room/1`, { pingInterval: 0 });
    const b = await connect(`${base}/room/2`, { pingInterval: 0 });
    res.add(() => a.terminate());
    res.add(() => b.terminate());
    await expectRefusal(`${base}/nope`);
    await until(() => opened.length === 2, 'two connections');
    for (const text of ['abc', 'defg']) {
      await a.send(text);
      await a.receive();
    }
    await opened[0]!.ping();
    await b.close(4002);
    await until(() => wss.clients.size === 1, 'b to close');

    await reader.forceFlush();
    const exported = metricExporter.getMetrics();
    const all = exported[exported.length - 1]!.scopeMetrics.flatMap((s) => s.metrics);
    const points = (name: string) => {
      const metric = all.find((m) => m.descriptor.name === name);
      return (metric?.dataPoints ?? []).map((p) => [p.attributes, p.value]);
    };
    expect(points('wskit.connections')).toEqual([
      [{ 'http.route': '/room/*', 'network.transport.protocol': 'http/1.1' }, 1],
    ]);
    expect(points('wskit.handshakes')).toEqual([
      [{ 'wskit.outcome': 'accepted', 'http.response.status_code': 101 }, 2],
      [{ 'wskit.outcome': 'refused', 'http.response.status_code': 404 }, 1],
    ]);
    expect(points('wskit.messages')).toEqual([
      [{ 'wskit.direction': 'received', 'websocket.message.type': 'text' }, 2],
      [{ 'wskit.direction': 'sent', 'websocket.message.type': 'binary' }, 2], // m.data: a Buffer
    ]);
    expect(points('wskit.message.bytes')).toEqual([
      [{ 'wskit.direction': 'received', 'websocket.message.type': 'text' }, 7],
      [{ 'wskit.direction': 'sent', 'websocket.message.type': 'binary' }, 7],
    ]);
    expect(points('wskit.closes')).toEqual([
      [{ 'websocket.close.code': 4002, 'wskit.close.side': 'client' }, 1],
    ]);
    const rtt = points('wskit.ping.rtt');
    expect(rtt).toHaveLength(1);
    expect((rtt[0]![1] as { count: number }).count).toBe(1);
    expect(points('wskit.buffered_amount.max')).toEqual([[{}, 0]]);
  });
});
