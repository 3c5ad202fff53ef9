import type { WebSocketServer } from '@wskit/core';
import { Counter, register as defaultRegister, Gauge, Histogram, type Registry } from 'prom-client';
import {
  type CloseSide,
  connectionsByRouteAndTransport,
  type Direction,
  maxBufferedAmount,
  observe,
} from './observe.js';

export interface CollectMetricsOptions {
  /** The prom-client registry to register the metrics in. Default: prom-client's global one. */
  register?: Registry;
  /** Prefix of every metric name. Default 'wskit_'. */
  prefix?: string;
  /** Buckets of the ping round-trip histogram, in seconds. */
  rttBuckets?: number[];
  /** Buckets of the handshake and connection duration histograms, in seconds. */
  durationBuckets?: number[];
  /** Labels added to every metric (e.g. { instance: 'a' }); their values must be bounded. */
  labels?: Record<string, string>;
}

export interface MetricsCollector {
  /** Stops listening and removes the metrics from the registry. */
  stop(): void;
}

/** prom-client keeps the name on the instance without declaring it in its types. */
const metricName = (metric: object): string => (metric as { name: string }).name;

const RTT_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
const DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 60, 300, 1800, 3600];
const RATIO_BUCKETS = [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1, 1.5];

/**
 * Prometheus metrics for `wss`, built on its diagnostics channels (and, for the gauges, on
 * the server's state when a scrape asks). Labels are bounded: route patterns, close codes,
 * HTTP statuses, message types.
 */
export function collectMetrics(wss: WebSocketServer, options: CollectMetricsOptions = {}): MetricsCollector {
  const registers = [options.register ?? defaultRegister];
  const prefix = options.prefix ?? 'wskit_';
  const extra = options.labels ?? {};
  const extraNames = Object.keys(extra);
  const name = (n: string) => `${prefix}${n}`;

  const connections = new Gauge({
    name: name('connections'),
    help: 'Open WebSocket connections, by route pattern and transport.',
    labelNames: ['route', 'transport', ...extraNames],
    registers,
    collect() {
      this.reset();
      for (const { route, transport, count } of connectionsByRouteAndTransport(wss)) {
        this.set({ route, transport, ...extra }, count);
      }
    },
  });
  const bufferedMax = new Gauge({
    name: name('buffered_amount_max_bytes'),
    help: 'The largest bufferedAmount (bytes queued for the peer) among the open connections.',
    labelNames: extraNames,
    registers,
    collect() {
      this.set(extra, maxBufferedAmount(wss));
    },
  });
  const handshakes = new Counter({
    name: name('handshakes_total'),
    help: 'Upgrade requests answered, by outcome and HTTP status.',
    labelNames: ['outcome', 'status', ...extraNames],
    registers,
  });
  const handshakeDuration = new Histogram({
    name: name('handshake_duration_seconds'),
    help: 'Time from the upgrade request to its answer (101 or a refusal).',
    labelNames: ['outcome', ...extraNames],
    buckets: options.durationBuckets ?? DURATION_BUCKETS,
    registers,
  });
  const messages = new Counter({
    name: name('messages_total'),
    help: 'Data messages, by direction and type.',
    labelNames: ['direction', 'type', ...extraNames],
    registers,
  });
  const bytes = new Counter({
    name: name('message_bytes_total'),
    help: 'Payload bytes of data messages (uncompressed), by direction and type.',
    labelNames: ['direction', 'type', ...extraNames],
    registers,
  });
  const deflateRatio = new Histogram({
    name: name('deflate_ratio'),
    help: 'Compressed size / payload size of each permessage-deflate message, by direction.',
    labelNames: ['direction', ...extraNames],
    buckets: RATIO_BUCKETS,
    registers,
  });
  const closes = new Counter({
    name: name('closes_total'),
    help: 'Closed connections, by the code that ended them and the side that sent the first Close.',
    labelNames: ['code', 'side', ...extraNames],
    registers,
  });
  const connectionDuration = new Histogram({
    name: name('connection_duration_seconds'),
    help: 'How long connections stayed open, by route pattern.',
    labelNames: ['route', ...extraNames],
    buckets: options.durationBuckets ?? DURATION_BUCKETS,
    registers,
  });
  const rtt = new Histogram({
    name: name('ping_rtt_seconds'),
    help: 'Round-trip time of answered pings.',
    labelNames: extraNames,
    buckets: options.rttBuckets ?? RTT_BUCKETS,
    registers,
  });
  const backpressure = new Counter({
    name: name('backpressure_events_total'),
    help: "Send backlogs past the socket's high-water mark ('high-water') or past maxBufferedAmount ('slow-consumer').",
    labelNames: ['kind', 'action', ...extraNames],
    registers,
  });
  const protocolErrors = new Counter({
    name: name('protocol_errors_total'),
    help: 'Connections failed for a protocol or policy violation, by close code.',
    labelNames: ['code', 'reason', ...extraNames],
    registers,
  });
  const handlerErrors = new Counter({
    name: name('handler_errors_total'),
    help: 'Handlers that threw or rejected (the connection closes with 1011), by route pattern.',
    labelNames: ['route', ...extraNames],
    registers,
  });

  // The hot children, resolved once: no label hashing per message.
  const messageChildren = new Map<string, { count: Counter.Internal; size: Counter.Internal }>();
  for (const direction of ['received', 'sent'] satisfies Direction[]) {
    for (const type of ['text', 'binary'] as const) {
      const labels = { direction, type, ...extra };
      messageChildren.set(`${direction}:${type}`, {
        count: messages.labels(labels),
        size: bytes.labels(labels),
      });
    }
  }
  // Zero values for the series every dashboard expects, before the first event.
  for (const outcome of ['accepted', 'refused']) handshakeDuration.zero({ outcome, ...extra });

  const stop = observe(wss, {
    handshake(outcome, status, seconds) {
      handshakes.inc({ outcome, status: String(status), ...extra });
      if (seconds !== undefined) handshakeDuration.observe({ outcome, ...extra }, seconds);
    },
    message(direction, type, size, compressedSize, complete) {
      const child = messageChildren.get(`${direction}:${type}`)!;
      if (complete) child.count.inc();
      child.size.inc(size);
      if (compressedSize !== undefined && size > 0) {
        deflateRatio.observe({ direction, ...extra }, compressedSize / size);
      }
    },
    close(code: number, side: CloseSide, route: string, seconds: number) {
      closes.inc({ code: String(code), side, ...extra });
      connectionDuration.observe({ route, ...extra }, seconds);
    },
    rtt(seconds) {
      rtt.observe(extra, seconds);
    },
    backpressure(kind, action) {
      backpressure.inc({ kind, action, ...extra });
    },
    protocolError(code, reason) {
      protocolErrors.inc({ code: String(code), reason, ...extra });
    },
    handlerError(route) {
      handlerErrors.inc({ route, ...extra });
    },
  });

  const all = [
    connections,
    bufferedMax,
    handshakes,
    handshakeDuration,
    messages,
    bytes,
    deflateRatio,
    closes,
    connectionDuration,
    rtt,
    backpressure,
    protocolErrors,
    handlerErrors,
  ];
  return {
    stop() {
      stop();
      for (const metric of all) for (const r of registers) r.removeSingleMetric(metricName(metric));
    },
  };
}
