// The global `performance` (not node:perf_hooks') so that tests can fake the clock.
import type { Writable } from 'node:stream';
import { type ClientOptions, connect, DEFAULTS, type Message, type TlsOptions } from '@wskit/core';
import { SingleBar } from 'cli-progress';
import { type Command, InvalidArgumentError } from 'commander';
import { explainConnectError } from './hints.js';
import {
  type CliIo,
  clientTls,
  errorMessage,
  parseDuration,
  parseSize,
  requireWsUrl,
  usageHint,
  write,
} from './util.js';

// ---- the pluggable client ------------------------------------------------------------

/** What a load-generator connection reports back. */
export interface BenchEvents {
  /** A message arrived: its size in bytes and its type. */
  message(size: number, binary: boolean): void;
  /** The connection ended (code 1006 when it ended without a closing handshake). */
  close(code: number, reason: string): void;
  /** A send failed or the transport reported an error. */
  error(err: Error): void;
}

/** One open connection of a client implementation, as the load generator drives it. */
export interface BenchConnection {
  /** Sends one message without waiting for anything (failures go to `events.error`). */
  send(data: string | Buffer, binary: boolean): void;
  /** Closing handshake; resolves once the connection is gone. */
  close(): Promise<void>;
  /** Drops the connection at once. */
  terminate(): void;
}

export interface BenchConnectOptions {
  /** The echoes are this large: the client must accept messages and frames of this size. */
  maxMessageSize: number;
  /** Offer permessage-deflate. */
  deflate: boolean;
  tls?: TlsOptions;
  /** ms; the client's default when absent. */
  handshakeTimeout?: number;
}

/**
 * Opens one connection to `url` and wires its events. The load generator is the same for
 * every client; bench/ plugs in the `ws` package and a raw TCP client through this to
 * compare them with the wskit client under identical load.
 */
export type BenchConnector = (
  url: string,
  events: BenchEvents,
  options: BenchConnectOptions,
) => Promise<BenchConnection>;

/** The wskit client (`connect` from @wskit/core), with 'message' events. */
export const wskitConnector: BenchConnector = async (url, events, options) => {
  const limit = Math.max(options.maxMessageSize, DEFAULTS.maxMessageSize);
  const clientOptions: ClientOptions = {
    maxMessageSize: limit,
    maxFrameSize: limit,
    ...(options.deflate ? { perMessageDeflate: true } : {}),
    ...(options.tls ? { tls: options.tls } : {}),
    ...(options.handshakeTimeout !== undefined ? { handshakeTimeout: options.handshakeTimeout } : {}),
  };
  const ws = await connect(url, clientOptions);
  ws.on('message', (msg: Message) => events.message(msg.size, msg.type === 'binary'));
  ws.on('error', (err: Error) => events.error(err));
  ws.closed.then((info) => events.close(info.code, info.reason));
  const onSendError = (err: unknown) => events.error(err instanceof Error ? err : new Error(String(err)));
  return {
    send: (data, binary) => {
      ws.send(data, { binary }).catch(onSendError);
    },
    close: async () => {
      await ws.close(1000);
    },
    terminate: () => ws.terminate(),
  };
};

// ---- the load generator --------------------------------------------------------------

export interface BenchOptions {
  /** URL of an echo server (every message comes back with its type). */
  url: string;
  /** Connections, opened before the clock starts. Default 1. */
  connections?: number;
  /** Messages per connection. Default 1000, or no limit with `duration`. */
  messages?: number;
  /** Payload size in bytes. Default 64. */
  size?: number;
  /** Binary messages (default: text). */
  binary?: boolean;
  /** Stop sending after this many seconds (and after `messages`, if given, whichever first). */
  duration?: number;
  /** Messages in flight per connection (1: send, await the echo, send the next). Default 1. */
  pipeline?: number;
  /** Offer permessage-deflate (the payload is random, so it doesn't compress). */
  deflate?: boolean;
  tls?: TlsOptions;
  /** The client implementation. Default: the wskit client. */
  connector?: BenchConnector;
  /** Connections opened at the same time while connecting. Default 64. */
  connectConcurrency?: number;
  /**
   * Give up when no echo arrived for this many ms (in-flight messages count as errors).
   * Default 10000.
   */
  stallTimeout?: number;
  /** Aborting stops sending; the run ends once the messages in flight are back. */
  signal?: AbortSignal;
  /**
   * Called every `progressInterval` ms while messages are sent, and once more when the
   * echoes are all in (`done: true`); for a progress bar.
   */
  onProgress?: (progress: BenchProgress) => void;
  /** Default 200 ms. */
  progressInterval?: number;
  /** Per-connection handshake timeout in ms (default: the client's, 10 s). */
  handshakeTimeout?: number;
}

/** Where a run is, for progress reports. */
export interface BenchProgress {
  /** Echoes received so far. */
  received: number;
  errors: number;
  /** Echoes expected in all (connections × messages), or undefined for a --duration run. */
  total: number | undefined;
  /** Since the first send. */
  elapsedSeconds: number;
  /** The --duration of the run, if any. */
  durationSeconds: number | undefined;
  done: boolean;
}

export interface LatencySummary {
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

export interface BenchResult {
  url: string;
  connections: number;
  /** Connections that completed the handshake. */
  connected: number;
  size: number;
  binary: boolean;
  pipeline: number;
  /** Echoes received with the right size and type. */
  messages: number;
  /** Payload bytes of those echoes (one direction). */
  bytes: number;
  /** Failed connections, failed sends, wrong or missing echoes, unexpected closes. */
  errors: number;
  /** The first few error messages. */
  errorSamples: string[];
  /** From the first send to the last echo. */
  seconds: number;
  /** Time to open every connection. */
  connectSeconds: number;
  messagesPerSecond: number;
  /** Payload megabytes (10^6 bytes) echoed per second, counted once. */
  megabytesPerSecond: number;
  /** Round trip of each message, from its send to its echo, in ms. */
  latencyMs: LatencySummary;
}

const SAMPLE_CAP = 1 << 20;
const MAX_ERROR_SAMPLES = 5;

/**
 * Round-trip times. Keeps every sample up to a million, then a uniform random sample
 * of them (reservoir sampling), so long runs use bounded memory.
 */
class LatencyRecorder {
  private samples = new Float64Array(4096);
  private kept = 0;
  private seen = 0;
  private sum = 0;
  private max = 0;

  add(ms: number): void {
    this.seen++;
    this.sum += ms;
    if (ms > this.max) this.max = ms;
    if (this.kept < SAMPLE_CAP) {
      if (this.kept === this.samples.length) {
        const bigger = new Float64Array(Math.min(SAMPLE_CAP, this.samples.length * 2));
        bigger.set(this.samples);
        this.samples = bigger;
      }
      this.samples[this.kept++] = ms;
      return;
    }
    const j = Math.floor(Math.random() * this.seen);
    if (j < SAMPLE_CAP) this.samples[j] = ms;
  }

  summary(): LatencySummary {
    if (this.kept === 0) return { p50: 0, p90: 0, p99: 0, p999: 0, max: 0, mean: 0 };
    const sorted = this.samples.slice(0, this.kept).sort();
    // Nearest-rank percentile.
    const at = (p: number) => sorted[Math.min(this.kept - 1, Math.max(0, Math.ceil(p * this.kept) - 1))]!;
    return {
      p50: at(0.5),
      p90: at(0.9),
      p99: at(0.99),
      p999: at(0.999),
      max: this.max,
      mean: this.sum / this.seen,
    };
  }
}

/** The bench payload: ASCII text or random bytes, built once and sent every time. */
export function benchPayload(size: number, binary: boolean): string | Buffer {
  if (binary) {
    const buf = Buffer.allocUnsafe(size);
    for (let i = 0; i < size; i++) buf[i] = (Math.random() * 256) | 0;
    return buf;
  }
  const alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
  let text = '';
  for (let i = 0; i < Math.min(size, 4096); i++) text += alphabet[(Math.random() * alphabet.length) | 0];
  return size <= 4096 ? text : text.repeat(Math.ceil(size / 4096)).slice(0, size);
}

function positiveInteger(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (!Number.isSafeInteger(v) || v < 1)
    throw new RangeError(`${name} must be a positive integer (got ${v})`);
  return v;
}

/** One connection's state: the send times of its messages in flight (a ring, FIFO). */
interface Slot {
  link: BenchConnection | undefined;
  ring: Float64Array;
  head: number;
  inflight: number;
  sent: number;
  done: boolean;
}

/**
 * Runs the load: opens the connections, then each keeps `pipeline` messages in flight
 * and sends the next one as each echo arrives, until `messages` per connection were
 * echoed or `duration` passed. Resolves with the counts, rates and latencies; rejects
 * only for invalid options (connection failures are counted as errors).
 */
export async function runBench(options: BenchOptions): Promise<BenchResult> {
  const connections = positiveInteger('connections', options.connections, 1);
  const size = positiveInteger('size', options.size, 64);
  const pipeline = positiveInteger('pipeline', options.pipeline, 1);
  const duration = options.duration;
  if (duration !== undefined && !(duration > 0 && Number.isFinite(duration))) {
    throw new RangeError(`duration must be a positive number of seconds (got ${duration})`);
  }
  const perConnection =
    options.messages !== undefined || duration === undefined
      ? positiveInteger('messages', options.messages, 1000)
      : Number.POSITIVE_INFINITY;
  const binary = options.binary ?? false;
  const connector = options.connector ?? wskitConnector;
  const concurrency = positiveInteger('connectConcurrency', options.connectConcurrency, 64);
  const stallTimeout = options.stallTimeout ?? 10_000;
  const payload = benchPayload(size, binary);

  const latency = new LatencyRecorder();
  const errorSamples: string[] = [];
  let errors = 0;
  const fail = (what: string) => {
    errors++;
    if (errorSamples.length < MAX_ERROR_SAMPLES) errorSamples.push(what);
  };

  let phase: 'connecting' | 'running' | 'closing' = 'connecting';
  let stopping = false;
  let received = 0;
  let lastProgress = performance.now();
  let lastEcho = 0;
  let pending = 0; // slots not done
  let wake: () => void = () => {};
  const finished = new Promise<void>((resolve) => {
    wake = resolve;
  });

  const slots: Slot[] = [];
  const finishSlot = (slot: Slot) => {
    if (slot.done) return;
    slot.done = true;
    if (--pending === 0 && phase === 'running') wake();
  };
  const canSend = (slot: Slot) => !stopping && !slot.done && slot.sent < perConnection;
  const sendOne = (slot: Slot, now: number) => {
    const ring = slot.ring;
    ring[(slot.head + slot.inflight) % ring.length] = now;
    slot.inflight++;
    slot.sent++;
    slot.link!.send(payload, binary);
  };
  const settleIfIdle = (slot: Slot) => {
    if (slot.inflight === 0 && !canSend(slot)) finishSlot(slot);
  };

  const eventsFor = (slot: Slot): BenchEvents => ({
    message(got, gotBinary) {
      const now = performance.now();
      if (phase !== 'running' || slot.done) return;
      if (slot.inflight === 0) {
        fail('a message arrived that was not an echo');
        return;
      }
      const sentAt = slot.ring[slot.head]!;
      slot.head = (slot.head + 1) % slot.ring.length;
      slot.inflight--;
      lastProgress = now;
      if (got === size && gotBinary === binary) {
        received++;
        latency.add(now - sentAt);
        lastEcho = now;
      } else {
        fail(`wrong echo: ${got} bytes ${gotBinary ? 'binary' : 'text'}`);
      }
      if (canSend(slot)) sendOne(slot, now);
      else settleIfIdle(slot);
    },
    close(code, reason) {
      if (phase === 'closing' || slot.done) return;
      fail(`connection closed during the run: ${code}${reason ? ` ${reason}` : ''}`);
      if (phase === 'running') finishSlot(slot);
      else slot.done = true;
    },
    error(err) {
      if (phase === 'closing') return;
      fail(errorMessage(err));
    },
  });

  // ---- connect, a window of `concurrency` handshakes at a time ----
  const connectStart = performance.now();
  const connectOptions: BenchConnectOptions = {
    maxMessageSize: size,
    deflate: options.deflate ?? false,
    ...(options.tls ? { tls: options.tls } : {}),
    ...(options.handshakeTimeout !== undefined ? { handshakeTimeout: options.handshakeTimeout } : {}),
  };
  let next = 0;
  const opener = async () => {
    while (next < connections) {
      const slot: Slot = {
        link: undefined,
        ring: new Float64Array(pipeline),
        head: 0,
        inflight: 0,
        sent: 0,
        done: false,
      };
      slots[next++] = slot;
      try {
        slot.link = await connector(options.url, eventsFor(slot), connectOptions);
      } catch (err) {
        slot.done = true;
        fail((await explainConnectError(options.url, err)).replace(/^wskit: /, ''));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, connections) }, opener));
  const connectSeconds = (performance.now() - connectStart) / 1000;
  const live = slots.filter((s) => s.link !== undefined && !s.done);

  // ---- run ----
  phase = 'running';
  pending = live.length;
  const start = performance.now();
  lastProgress = start;
  const stopSending = () => {
    if (stopping) return;
    stopping = true;
    lastProgress = performance.now(); // the drain gets its own stall window
    for (const slot of live) settleIfIdle(slot);
  };
  const deadline = duration !== undefined ? setTimeout(stopSending, duration * 1000) : undefined;
  const onAbort = () => stopSending();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  if (options.signal?.aborted) stopping = true;
  const report = (done: boolean) =>
    options.onProgress?.({
      received,
      errors,
      total: Number.isFinite(perConnection) ? perConnection * live.length : undefined,
      elapsedSeconds: (performance.now() - start) / 1000,
      durationSeconds: duration,
      done,
    });
  const ticker =
    options.onProgress !== undefined
      ? setInterval(() => report(false), options.progressInterval ?? 200)
      : undefined;
  report(false);
  const watchdog = setInterval(
    () => {
      if (performance.now() - lastProgress < stallTimeout) return;
      const missing = live.reduce((n, s) => n + (s.done ? 0 : s.inflight), 0);
      fail(`no echo for ${stallTimeout} ms: ${missing} message${missing === 1 ? '' : 's'} never came back`);
      errors += Math.max(0, missing - 1);
      for (const slot of live) finishSlot(slot);
    },
    Math.min(250, stallTimeout),
  );
  try {
    for (const slot of live) {
      const now = performance.now();
      while (slot.inflight < pipeline && canSend(slot)) sendOne(slot, now);
      settleIfIdle(slot);
    }
    if (pending > 0) await finished;
  } finally {
    clearTimeout(deadline);
    clearInterval(watchdog);
    clearInterval(ticker);
    report(true);
    options.signal?.removeEventListener('abort', onAbort);
  }
  const end = received > 0 ? lastEcho : performance.now();
  const seconds = Math.max(end - start, 1e-6) / 1000;

  // ---- close ----
  phase = 'closing';
  await Promise.all(
    slots.map(async (slot) => {
      const link = slot.link;
      if (link === undefined) return;
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          link.close(),
          new Promise<void>((resolve) => {
            timer = setTimeout(resolve, 2000);
          }),
        ]);
      } catch {
        // already gone
      } finally {
        clearTimeout(timer);
        link.terminate();
      }
    }),
  );

  return {
    url: options.url,
    connections,
    connected: live.length,
    size,
    binary,
    pipeline,
    messages: received,
    bytes: received * size,
    errors,
    errorSamples,
    seconds,
    connectSeconds,
    messagesPerSecond: received / seconds,
    megabytesPerSecond: (received * size) / 1e6 / seconds,
    latencyMs: latency.summary(),
  };
}

// ---- output --------------------------------------------------------------------------

const ms = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
const count = (v: number) => Math.round(v).toLocaleString('en-US');

/** The human-readable report of a run. */
export function formatBenchResult(r: BenchResult): string {
  const plural = (n: number, word: string) => `${count(n)} ${word}${n === 1 ? '' : 's'}`;
  const l = r.latencyMs;
  const lines = [
    `wskit bench: ${plural(r.connections, 'connection')} to ${r.url}, ${r.size} B ${r.binary ? 'binary' : 'text'} messages, pipeline ${r.pipeline}`,
    `  connected   ${r.connected}/${r.connections} in ${r.connectSeconds.toFixed(3)} s`,
    `  echoed      ${plural(r.messages, 'message')} in ${r.seconds.toFixed(3)} s, ${plural(r.errors, 'error')}`,
    `  throughput  ${count(r.messagesPerSecond)} msg/s, ${r.megabytesPerSecond.toFixed(2)} MB/s`,
    `  latency     p50 ${ms(l.p50)} ms, p90 ${ms(l.p90)} ms, p99 ${ms(l.p99)} ms, p99.9 ${ms(l.p999)} ms, max ${ms(l.max)} ms, mean ${ms(l.mean)} ms`,
  ];
  for (const e of r.errorSamples) lines.push(`  error       ${e}`);
  return `${lines.join('\n')}\n`;
}

// ---- the command ---------------------------------------------------------------------

/** A count such as --connections or --messages: a positive integer. */
export function parseCount(value: string): number {
  if (!/^\s*\d+\s*$/.test(value) || Number(value) < 1 || !Number.isSafeInteger(Number(value))) {
    throw new InvalidArgumentError('expected a positive integer.');
  }
  return Number(value);
}

/** Seconds: "10", "2.5" or "30s". */
export function parseSeconds(value: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*s?\s*$/i.exec(value);
  const seconds = m ? Number(m[1]) : Number.NaN;
  if (!(seconds > 0) || !Number.isFinite(seconds)) {
    throw new InvalidArgumentError('expected a positive number of seconds, e.g. 10 or 2.5.');
  }
  return seconds;
}

interface BenchFlags {
  connections: number;
  messages?: number;
  size: number;
  binary?: boolean;
  duration?: number;
  pipeline: number;
  deflate?: boolean;
  insecure?: boolean;
  ca?: string;
  json?: boolean;
  handshakeTimeout?: number;
  progress?: boolean;
}

/**
 * A progress bar on `stream` (stderr) through cli-progress: echoes received out of the
 * total, or seconds elapsed out of --duration. Returns the onProgress callback.
 */
export function progressBar(stream: Writable): (p: BenchProgress) => void {
  let bar: SingleBar | undefined;
  return (p) => {
    const timed = p.total === undefined;
    const total = timed ? Math.round((p.durationSeconds ?? 0) * 10) / 10 : p.total!;
    const value = timed ? Math.min(total, Math.round(p.elapsedSeconds * 10) / 10) : p.received;
    const payload = {
      received: p.received.toLocaleString('en-US'),
      errors: p.errors,
      rate: Math.round(p.received / Math.max(p.elapsedSeconds, 1e-3)).toLocaleString('en-US'),
      unit: timed ? 's' : ' msgs',
    };
    if (bar === undefined) {
      bar = new SingleBar({
        stream,
        format:
          'wskit bench [{bar}] {percentage}% {value}/{total}{unit} | {received} echoes, {rate} msg/s, {errors} errors',
        barsize: 30,
        hideCursor: false,
        clearOnComplete: false,
        // A bar also when stderr is a pipe (--progress), redrawn once a second there.
        noTTYOutput: true,
        notTTYSchedule: 1000,
      });
      bar.start(total, value, payload);
    } else {
      bar.update(p.done && !timed ? total : value, payload);
    }
    if (p.done) {
      if (timed) bar.update(total, payload);
      bar.stop();
    }
  };
}

/**
 * Adds `wskit bench` to `program`. The exit code goes to `result`: 0 when every message
 * came back, 1 when there were errors, 2 for an invalid command line.
 */
export function addBenchCommand(program: Command, io: CliIo, result: { exitCode: number }): void {
  program
    .command('bench')
    .showHelpAfterError(usageHint('bench'))
    .description(
      'load generator: connections send messages to an echo server and await the echoes; ' +
        'reports messages/s, MB/s and round-trip latency',
    )
    .argument('<url>', 'ws:// or wss:// URL of an echo server (e.g. wskit serve)')
    .option('-c, --connections <n>', 'connections to open', parseCount, 1)
    .option(
      '-n, --messages <m>',
      'messages per connection (default 1000, no limit with --duration)',
      parseCount,
    )
    .option('-s, --size <bytes>', 'message size (bytes, or 1KiB, 64KiB...)', parseSize, 64)
    .option('--binary', 'send binary messages (default: text)')
    .option(
      '-d, --duration <seconds>',
      'send for this long, then wait for the echoes in flight',
      parseSeconds,
    )
    .option('-p, --pipeline <k>', 'messages in flight per connection', parseCount, 1)
    .option('--deflate', 'offer permessage-deflate compression (RFC 7692)')
    .option('-k, --insecure', "wss://: don't verify the server's certificate")
    .option('--ca <file>', 'wss://: trust this PEM CA certificate')
    .option('--json', 'print the result as one JSON object')
    .option(
      '--handshake-timeout <duration>',
      'give up on a connection whose handshake takes longer (5, 500ms)',
      parseDuration,
    )
    .option('--progress', 'show a progress bar on stderr (default: when stderr is a terminal)')
    .option('--no-progress', 'no progress bar')
    .action(async (url: string, flags: BenchFlags, cmd: Command) => {
      requireWsUrl(cmd, url);
      const tls = clientTls(cmd, flags);

      // The first signal stops sending and reports what was measured; after that the
      // default handling is back.
      const abort = new AbortController();
      const stopWatching = io.onSignal(() => {
        stopWatching();
        abort.abort();
      });
      try {
        const showProgress = flags.progress ?? (io.stderr as { isTTY?: boolean }).isTTY === true;
        const r = await runBench({
          url,
          ...(showProgress ? { onProgress: progressBar(io.stderr) } : {}),
          ...(flags.handshakeTimeout !== undefined ? { handshakeTimeout: flags.handshakeTimeout } : {}),
          connections: flags.connections,
          size: flags.size,
          pipeline: flags.pipeline,
          binary: flags.binary ?? false,
          deflate: flags.deflate ?? false,
          ...(flags.messages !== undefined ? { messages: flags.messages } : {}),
          ...(flags.duration !== undefined ? { duration: flags.duration } : {}),
          ...(tls ? { tls } : {}),
          signal: abort.signal,
        });
        if (r.connected === 0) {
          // Nothing was measured: the reason is all there is to say (JSON still gets its object).
          if (flags.json) await report(io.stdout, r, true);
          await write(io.stderr, `wskit: ${r.errorSamples[0] ?? 'no connection could be opened'}\n`);
        } else {
          await report(io.stdout, r, flags.json ?? false);
        }
        result.exitCode = r.errors === 0 && r.connected > 0 ? 0 : 1;
      } finally {
        stopWatching();
      }
    });
}

async function report(stdout: Writable, r: BenchResult, json: boolean): Promise<void> {
  await write(stdout, json ? `${JSON.stringify(r)}\n` : formatBenchResult(r));
}
