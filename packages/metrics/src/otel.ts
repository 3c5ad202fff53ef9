/**
 * OpenTelemetry for @wskit/core servers, through `@opentelemetry/api` (the application
 * brings the SDK): a span per handshake, optionally a span per handled message, and the
 * metrics of collectMetrics() as OpenTelemetry instruments.
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import {
  type Attributes,
  type Context,
  context,
  type MeterProvider,
  metrics,
  propagation,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TracerProvider,
  trace,
} from '@opentelemetry/api';
import {
  CHANNELS,
  type HandshakeRefuseEvent,
  type HandshakeTraceContext,
  type MessageTraceContext,
  TRACING_CHANNELS,
  type WebSocket,
  type WebSocketServer,
} from '@wskit/core';
import { connectionsByRouteAndTransport, maxBufferedAmount, observe } from './observe.js';

export interface OpenTelemetryOptions {
  /** Default: the global tracer provider (`trace.getTracerProvider()`). */
  tracerProvider?: TracerProvider;
  /** Default: the global meter provider (`metrics.getMeterProvider()`). */
  meterProvider?: MeterProvider;
  /** Spans for handshakes. Default true. */
  handshakeSpans?: boolean;
  /**
   * A span per message handled by a 'message' listener or a consume() handler (opt-in:
   * one span per message is a lot of spans). Default false.
   */
  messageSpans?: boolean;
  /** The metrics (counters, histograms, gauges). Default true. */
  metrics?: boolean;
}

export interface OpenTelemetryInstrumentation {
  /** Stops listening (spans in progress still end). */
  stop(): void;
}

const SCOPE = '@wskit/metrics';
const noop = (): void => {};

/**
 * A store for TracingChannel.bindStore() that runs the traced code inside an OpenTelemetry
 * context, so that spans made by handlers (acceptConnection, 'message' listeners, consume()
 * handlers) become children of ours. diagnostics_channel calls only its run() method.
 */
const otelStore = {
  run<R>(ctx: Context, fn: (...args: unknown[]) => R, ...args: unknown[]): R {
    return context.with(ctx, fn, undefined, ...args);
  },
};
type StoreLike = Parameters<ReturnType<typeof diagnosticsChannel.tracingChannel>['start']['bindStore']>[0];

function requestAttributes(req: IncomingMessage): Attributes {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const socket = req.socket as Socket | undefined;
  const attributes: Attributes = {
    'http.request.method': req.method ?? 'GET',
    'url.path': q === -1 ? url : url.slice(0, q),
    'url.scheme': (socket as { encrypted?: boolean } | undefined)?.encrypted ? 'wss' : 'ws',
    'network.protocol.name': 'http',
    'network.protocol.version': req.httpVersion,
  };
  if (socket?.remoteAddress !== undefined) attributes['client.address'] = socket.remoteAddress;
  const agent = req.headers['user-agent'];
  if (agent !== undefined) attributes['user_agent.original'] = agent;
  return attributes;
}

/**
 * Instruments `wss` with OpenTelemetry. Spans: 'WebSocket upgrade' (kind SERVER, a child
 * of the request's `traceparent` when there is one) for each handshake, ending with the
 * 101 or the refusal; with `messageSpans`, 'WebSocket message' (kind CONSUMER) around each
 * handled message. Metrics: see the README.
 */
export function instrumentOpenTelemetry(
  wss: WebSocketServer,
  options: OpenTelemetryOptions = {},
): OpenTelemetryInstrumentation {
  const cleanups: Array<() => void> = [];
  const tracerProvider = options.tracerProvider ?? trace.getTracerProvider();
  const tracer = tracerProvider.getTracer(SCOPE);

  if (options.handshakeSpans !== false) {
    const spans = new WeakMap<HandshakeTraceContext, Span>();
    const refusals = new WeakMap<Duplex, HandshakeRefuseEvent>();
    const tc = diagnosticsChannel.tracingChannel<unknown, HandshakeTraceContext>(TRACING_CHANNELS.handshake);
    const transform = (ctx: HandshakeTraceContext): Context => {
      const active = context.active();
      if (ctx.server !== wss) return active;
      const parent = propagation.extract(active, ctx.request.headers);
      const span = tracer.startSpan(
        'WebSocket upgrade',
        { kind: SpanKind.SERVER, attributes: requestAttributes(ctx.request) },
        parent,
      );
      spans.set(ctx, span);
      return trace.setSpan(parent, span);
    };
    tc.start.bindStore(otelStore as unknown as StoreLike, transform as (ctx: unknown) => unknown);
    const onRefuse = (message: unknown) => {
      const e = message as HandshakeRefuseEvent;
      if (e.server === wss) refusals.set(e.socket, e);
    };
    diagnosticsChannel.subscribe(CHANNELS.handshakeRefuse, onRefuse);
    const finish = (message: unknown) => {
      const ctx = message as HandshakeTraceContext;
      const span = spans.get(ctx);
      if (span === undefined) return;
      spans.delete(ctx);
      if (ctx.error !== undefined) {
        span.recordException(ctx.error instanceof Error ? ctx.error : String(ctx.error));
        span.setStatus({ code: SpanStatusCode.ERROR });
      } else if (ctx.result) {
        const ws: WebSocket = ctx.result;
        span.setAttributes({
          'http.response.status_code': 101,
          'http.route': ws.route,
          'websocket.subprotocol': ws.protocol,
          'websocket.extensions': ws.extensions,
        });
      } else {
        const refusal = refusals.get(ctx.socket);
        refusals.delete(ctx.socket);
        if (refusal !== undefined) {
          span.setAttribute('http.response.status_code', refusal.status);
          // HTTP server span conventions: 4xx is the client's doing, 5xx is an error.
          if (refusal.status >= 500) span.setStatus({ code: SpanStatusCode.ERROR, message: refusal.reason });
          span.setAttribute('websocket.refusal', refusal.reason);
        }
      }
      span.end();
    };
    const handlers = {
      start: noop,
      end: noop,
      asyncStart: noop,
      asyncEnd: finish,
      error: (message: unknown) => {
        const ctx = message as HandshakeTraceContext;
        spans.get(ctx)?.recordException(ctx.error instanceof Error ? ctx.error : String(ctx.error));
      },
    };
    tc.subscribe(handlers);
    cleanups.push(() => {
      tc.start.unbindStore(otelStore as unknown as StoreLike);
      tc.unsubscribe(handlers);
      diagnosticsChannel.unsubscribe(CHANNELS.handshakeRefuse, onRefuse);
    });
  }

  if (options.messageSpans === true) {
    const spans = new WeakMap<MessageTraceContext, Span>();
    const mine = (ws: WebSocket) => ws.isServer && wss.clients.has(ws);
    const tc = diagnosticsChannel.tracingChannel<unknown, MessageTraceContext>(TRACING_CHANNELS.message);
    const transform = (ctx: MessageTraceContext): Context => {
      const active = context.active();
      if (!mine(ctx.ws)) return active;
      const span = tracer.startSpan(
        'WebSocket message',
        {
          kind: SpanKind.CONSUMER,
          attributes: {
            'http.route': ctx.ws.route,
            'websocket.message.type': ctx.message.type,
            'websocket.message.size': ctx.message.size,
            'wskit.handler': ctx.via,
          },
        },
        active,
      );
      spans.set(ctx, span);
      return trace.setSpan(active, span);
    };
    tc.start.bindStore(otelStore as unknown as StoreLike, transform as (ctx: unknown) => unknown);
    const end = (message: unknown) => {
      const ctx = message as MessageTraceContext;
      const span = spans.get(ctx);
      if (span === undefined) return;
      spans.delete(ctx);
      if (ctx.error !== undefined) {
        span.recordException(ctx.error instanceof Error ? ctx.error : String(ctx.error));
        span.setStatus({ code: SpanStatusCode.ERROR });
      }
      span.end();
    };
    const handlers = {
      start: noop,
      asyncStart: noop,
      // A listener's span ends with its synchronous part, a consume() handler's when it settles.
      end: (message: unknown) => {
        if ((message as MessageTraceContext).via === 'listener') end(message);
      },
      asyncEnd: end,
      error: (message: unknown) => {
        if ((message as MessageTraceContext).via === 'listener') end(message);
      },
    };
    tc.subscribe(handlers);
    cleanups.push(() => {
      tc.start.unbindStore(otelStore as unknown as StoreLike);
      tc.unsubscribe(handlers);
    });
  }

  if (options.metrics !== false) {
    const meterProvider = options.meterProvider ?? metrics.getMeterProvider();
    const meter = meterProvider.getMeter(SCOPE);
    const connections = meter.createObservableGauge('wskit.connections', {
      description: 'Open WebSocket connections, by route pattern and transport.',
      unit: '{connection}',
    });
    const bufferedMax = meter.createObservableGauge('wskit.buffered_amount.max', {
      description: 'The largest bufferedAmount among the open connections.',
      unit: 'By',
    });
    const observeGauges = (result: import('@opentelemetry/api').BatchObservableResult) => {
      for (const { route, transport, count } of connectionsByRouteAndTransport(wss)) {
        result.observe(connections, count, { 'http.route': route, 'network.transport.protocol': transport });
      }
      result.observe(bufferedMax, maxBufferedAmount(wss));
    };
    meter.addBatchObservableCallback(observeGauges, [connections, bufferedMax]);
    const handshakes = meter.createCounter('wskit.handshakes', {
      description: 'Upgrade requests answered, by outcome and HTTP status.',
      unit: '{handshake}',
    });
    const handshakeDuration = meter.createHistogram('wskit.handshake.duration', {
      description: 'Time from the upgrade request to its answer.',
      unit: 's',
    });
    const messages = meter.createCounter('wskit.messages', {
      description: 'Data messages, by direction and type.',
      unit: '{message}',
    });
    const bytes = meter.createCounter('wskit.message.bytes', {
      description: 'Payload bytes of data messages (uncompressed), by direction and type.',
      unit: 'By',
    });
    const deflateRatio = meter.createHistogram('wskit.deflate.ratio', {
      description: 'Compressed size / payload size of permessage-deflate messages.',
      unit: '1',
    });
    const closes = meter.createCounter('wskit.closes', {
      description: 'Closed connections, by the code that ended them and the side that closed first.',
      unit: '{connection}',
    });
    const connectionDuration = meter.createHistogram('wskit.connection.duration', {
      description: 'How long connections stayed open.',
      unit: 's',
    });
    const rtt = meter.createHistogram('wskit.ping.rtt', { description: 'Ping round-trip time.', unit: 's' });
    const backpressure = meter.createCounter('wskit.backpressure.events', {
      description: 'Send backlogs past the high-water mark or past maxBufferedAmount.',
      unit: '{event}',
    });
    const protocolErrors = meter.createCounter('wskit.protocol.errors', {
      description: 'Connections failed for a protocol or policy violation.',
      unit: '{error}',
    });
    const handlerErrors = meter.createCounter('wskit.handler.errors', {
      description: 'Handlers that threw or rejected.',
      unit: '{error}',
    });
    const stopObserving = observe(wss, {
      handshake(outcome, status, seconds) {
        const attributes = { 'wskit.outcome': outcome, 'http.response.status_code': status };
        handshakes.add(1, attributes);
        if (seconds !== undefined) handshakeDuration.record(seconds, { 'wskit.outcome': outcome });
      },
      message(direction, type, size, compressedSize, complete) {
        const attributes = { 'wskit.direction': direction, 'websocket.message.type': type };
        if (complete) messages.add(1, attributes);
        bytes.add(size, attributes);
        if (compressedSize !== undefined && size > 0) {
          deflateRatio.record(compressedSize / size, { 'wskit.direction': direction });
        }
      },
      close(code, side, route, seconds) {
        closes.add(1, { 'websocket.close.code': code, 'wskit.close.side': side });
        connectionDuration.record(seconds, { 'http.route': route });
      },
      rtt(seconds) {
        rtt.record(seconds);
      },
      backpressure(kind, action) {
        backpressure.add(1, { 'wskit.backpressure.kind': kind, 'wskit.backpressure.action': action });
      },
      protocolError(code, reason) {
        protocolErrors.add(1, { 'websocket.close.code': code, 'wskit.close.reason': reason });
      },
      handlerError(route) {
        handlerErrors.add(1, { 'http.route': route });
      },
    });
    cleanups.push(() => {
      stopObserving();
      meter.removeBatchObservableCallback(observeGauges, [connections, bufferedMax]);
    });
  }

  return {
    stop() {
      for (const cleanup of cleanups.splice(0)) cleanup();
    },
  };
}
