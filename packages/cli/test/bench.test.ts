import { createServer } from 'node:net';
import type { Message, WebSocket, WebSocketServer } from '@wskit/core';
import { afterEach, describe, expect, it, onTestFinished, vi } from 'vitest';
import { cleanup, startWss, withTimeout } from '../../../test/support/clients.js';
import {
  type BenchConnector,
  type BenchResult,
  benchPayload,
  formatBenchResult,
  parseCount,
  parseSeconds,
  runBench,
} from '../src/bench.js';
import { type InProcessRun, runInProcess } from './helpers.js';

// ---- helpers -------------------------------------------------------------------------

afterEach(cleanup);

interface Seen {
  type: 'text' | 'binary';
  size: number;
}

/**
 * A wskit echo server on 127.0.0.1:0. `onMessage` may replace the echo; every message
 * received is recorded in `seen`.
 */
async function echoServer(
  onMessage?: (ws: WebSocket, msg: Message) => void,
): Promise<{ url: string; wss: WebSocketServer; seen: Seen[]; opened: () => number }> {
  const seen: Seen[] = [];
  let opened = 0;
  const { wss, url } = await startWss({
    '/*': (ws) => {
      opened++;
      ws.on('message', (msg: Message) => {
        seen.push({ type: msg.type, size: msg.size });
        if (onMessage) onMessage(ws, msg);
        else ws.send(msg.data, { binary: msg.type === 'binary' }).catch(() => {});
      });
    },
  });
  return { url: `${url}bench`, wss, seen, opened: () => opened };
}

function parseJson(run: InProcessRun): BenchResult {
  const lines = run.stdout.text.trim().split('\n');
  expect(lines).toHaveLength(1);
  return JSON.parse(lines[0]!) as BenchResult;
}

/** The figures of a clean run agree with each other. */
function expectConsistent(r: BenchResult): void {
  expect(r.bytes).toBe(r.messages * r.size);
  expect(r.seconds).toBeGreaterThan(0);
  expect(r.messagesPerSecond).toBeCloseTo(r.messages / r.seconds, 3);
  expect(r.megabytesPerSecond).toBeCloseTo(r.bytes / 1e6 / r.seconds, 6);
  const l = r.latencyMs;
  expect(l.p50).toBeGreaterThan(0);
  expect(l.p50).toBeLessThanOrEqual(l.p90);
  expect(l.p90).toBeLessThanOrEqual(l.p99);
  expect(l.p99).toBeLessThanOrEqual(l.p999);
  expect(l.p999).toBeLessThanOrEqual(l.max);
  expect(l.mean).toBeGreaterThan(0);
  expect(l.mean).toBeLessThanOrEqual(l.max);
  // No round trip can take longer than the whole run.
  expect(l.max).toBeLessThanOrEqual(r.seconds * 1000 + 1);
}

// ---- the command ---------------------------------------------------------------------

describe('wskit bench', () => {
  it('--json: N connections × M messages all come back, with consistent figures', async () => {
    const srv = await echoServer();
    const run = runInProcess([
      'bench',
      srv.url,
      '--connections',
      '3',
      '--messages',
      '20',
      '--size',
      '100',
      '--json',
    ]);
    expect(await withTimeout(run.exit, 20_000, 'bench')).toBe(0);
    expect(run.stderr.text).toBe('');
    const r = parseJson(run);
    expect(r).toMatchObject({
      url: srv.url,
      connections: 3,
      connected: 3,
      size: 100,
      binary: false,
      pipeline: 1,
      messages: 60,
      bytes: 6000,
      errors: 0,
      errorSamples: [],
    });
    expectConsistent(r);
    // The server saw exactly those messages: 60 text messages of 100 bytes, 3 connections.
    expect(srv.opened()).toBe(3);
    expect(srv.seen).toHaveLength(60);
    expect(srv.seen.every((m) => m.type === 'text' && m.size === 100)).toBe(true);
    // Every connection is closed at the end.
    await withTimeout(
      (async () => {
        while (srv.wss.clients.size > 0) await new Promise((r) => setTimeout(r, 10));
      })(),
      20_000,
      'connections closed',
    );
  });

  it('--binary --size 1KiB --pipeline 4 sends binary messages, 4 in flight per connection', async () => {
    // This server holds messages until it has 4 from a connection, then echoes them all:
    // only a client that really keeps 4 in flight gets any answer. It also checks that
    // the client never has more than 4 in flight.
    const held = new Map<WebSocket, Message[]>();
    let maxHeld = 0;
    const srv = await echoServer((ws, msg) => {
      const list = held.get(ws) ?? [];
      held.set(ws, list);
      list.push(msg);
      maxHeld = Math.max(maxHeld, list.length);
      if (list.length === 4) {
        for (const m of list.splice(0)) ws.send(m.data, { binary: m.type === 'binary' }).catch(() => {});
      }
    });
    const run = runInProcess([
      'bench',
      srv.url,
      '-c',
      '2',
      '-n',
      '12',
      '--size',
      '1KiB',
      '--binary',
      '--pipeline',
      '4',
      '--json',
    ]);
    expect(await withTimeout(run.exit, 20_000, 'bench')).toBe(0);
    const r = parseJson(run);
    expect(r).toMatchObject({
      connections: 2,
      size: 1024,
      binary: true,
      pipeline: 4,
      messages: 24,
      errors: 0,
    });
    expectConsistent(r);
    expect(maxHeld).toBe(4);
    expect(srv.seen).toHaveLength(24);
    expect(srv.seen.every((m) => m.type === 'binary' && m.size === 1024)).toBe(true);
  });

  it('prints a readable report by default', async () => {
    const srv = await echoServer();
    const run = runInProcess(['bench', srv.url, '-c', '2', '-n', '15', '-s', '64']);
    expect(await withTimeout(run.exit, 20_000, 'bench')).toBe(0);
    const out = run.stdout.text;
    expect(out).toContain(`wskit bench: 2 connections to ${srv.url}, 64 B text messages, pipeline 1`);
    expect(out).toMatch(/connected {3}2\/2 in \d+\.\d{3} s/);
    expect(out).toMatch(/echoed {6}30 messages in \d+\.\d{3} s, 0 errors/);
    expect(out).toMatch(/throughput {2}[\d,]+ msg\/s, \d+\.\d{2} MB\/s/);
    expect(out).toMatch(
      /latency {5}p50 [\d.]+ ms, p90 [\d.]+ ms, p99 [\d.]+ ms, p99\.9 [\d.]+ ms, max [\d.]+ ms, mean [\d.]+ ms/,
    );
  });

  it('--duration sends until the time is up; with --messages, whichever comes first', async () => {
    const srv = await echoServer();
    const timed = runInProcess(['bench', srv.url, '--duration', '0.3', '--pipeline', '2', '--json']);
    expect(await withTimeout(timed.exit, 20_000, 'timed bench')).toBe(0);
    const r = parseJson(timed);
    expect(r.errors).toBe(0);
    expect(r.messages).toBeGreaterThan(0);
    expect(r.messages).toBe(srv.seen.length);
    expect(r.seconds).toBeGreaterThanOrEqual(0.25); // stops sending at the deadline, not before
    expectConsistent(r);

    const capped = runInProcess([
      'bench',
      srv.url,
      '-c',
      '2',
      '--duration',
      '30s',
      '--messages',
      '5',
      '--json',
    ]);
    expect(await withTimeout(capped.exit, 20_000, 'capped bench')).toBe(0);
    expect(parseJson(capped)).toMatchObject({ messages: 10, errors: 0 });
  });

  it('a signal stops an endless run and the figures so far are reported', async () => {
    const srv = await echoServer();
    const run = runInProcess(['bench', srv.url, '--duration', '600', '--json']);
    await withTimeout(
      (async () => {
        while (srv.seen.length < 20) await new Promise((r) => setTimeout(r, 10));
      })(),
      20_000,
      'messages flowing',
    );
    run.signals.emit('signal', 'SIGINT');
    expect(await withTimeout(run.exit, 20_000, 'exit after the signal')).toBe(0);
    const r = parseJson(run);
    expect(r.errors).toBe(0);
    expect(r.messages).toBeGreaterThanOrEqual(20);
    expect(r.messages).toBe(srv.seen.length);
  });

  it('wrong echoes are errors and the exit code is 1', async () => {
    let n = 0;
    const srv = await echoServer((ws, msg) => {
      // Every third answer has the wrong size, every fifth the wrong type.
      n++;
      const data = n % 3 === 0 ? msg.data.subarray(1) : msg.data;
      const binary = n % 5 === 0 ? msg.type !== 'binary' : msg.type === 'binary';
      ws.send(data, { binary }).catch(() => {});
    });
    const run = runInProcess(['bench', srv.url, '-n', '15', '--json']);
    expect(await withTimeout(run.exit, 20_000, 'bench')).toBe(1);
    const r = parseJson(run);
    // 15 answers: 3, 6, 9, 12 and 15 have the wrong size, 5, 10 and 15 the wrong type.
    expect(r.errors).toBe(7);
    expect(r.messages).toBe(8);
    expect(r.errorSamples[0]).toBe('wrong echo: 63 bytes text');
    expect(r.errorSamples).toContain('wrong echo: 64 bytes binary');
  });

  it('a server that closes mid-run: an error and exit code 1, without hanging', async () => {
    const srv = await echoServer((ws, msg) => {
      if (srv.seen.length === 5) ws.close(1011, 'gone').catch(() => {});
      else ws.send(msg.data, { binary: msg.type === 'binary' }).catch(() => {});
    });
    const run = runInProcess(['bench', srv.url, '-n', '100', '--json']);
    expect(await withTimeout(run.exit, 20_000, 'bench')).toBe(1);
    const r = parseJson(run);
    expect(r.messages).toBe(4);
    expect(r.errors).toBe(1);
    expect(r.errorSamples).toEqual(['connection closed during the run: 1011 gone']);
  });

  it('a refused connection: exit code 1 and the reason on stderr', async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as { port: number };
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const run = runInProcess(['bench', `ws://127.0.0.1:${port}/`, '-c', '2']);
    expect(await withTimeout(run.exit, 20_000, 'bench')).toBe(1);
    expect(run.stderr.text).toMatch(/^wskit: cannot connect to ws:\/\/127\.0\.0\.1:\d+\/: .*ECONNREFUSED/);
  });

  const invalid: Array<[string, string[], RegExp]> = [
    ['no URL', ['bench'], /missing required argument 'url'/],
    ['an http URL', ['bench', 'http://127.0.0.1:1/'], /ws:\/\/ or wss:\/\//],
    ['zero connections', ['bench', 'ws://127.0.0.1:1/', '--connections', '0'], /positive integer/],
    ['a fractional message count', ['bench', 'ws://127.0.0.1:1/', '--messages', '2.5'], /positive integer/],
    ['a bad size', ['bench', 'ws://127.0.0.1:1/', '--size', 'huge'], /size in bytes/],
    ['a bad pipeline', ['bench', 'ws://127.0.0.1:1/', '--pipeline', 'x'], /positive integer/],
    ['a negative duration', ['bench', 'ws://127.0.0.1:1/', '--duration', '-1'], /seconds/],
    ['an unknown option', ['bench', 'ws://127.0.0.1:1/', '--turbo'], /unknown option '--turbo'/],
    ['an unreadable CA', ['bench', 'wss://127.0.0.1:1/', '--ca', '/nonexistent/ca.pem'], /cannot read/],
  ];
  for (const [name, args, message] of invalid) {
    it(`exits 2 for ${name}`, async () => {
      const run = runInProcess(args);
      expect(await withTimeout(run.exit, 20_000, name)).toBe(2);
      expect(run.stderr.text).toMatch(message);
      expect(run.stdout.text).toBe('');
    });
  }
});

// ---- the load generator as a library ----------------------------------------------------

describe('runBench', () => {
  /** An in-memory echo "server": answers each message on the next turn of the event loop. */
  const memoryEcho =
    (log: { maxMessageSize: number[]; sent: Array<string | Buffer> }): BenchConnector =>
    async (_url, events, options) => {
      log.maxMessageSize.push(options.maxMessageSize);
      let open = true;
      return {
        send(data, binary) {
          log.sent.push(data);
          const size = typeof data === 'string' ? Buffer.byteLength(data) : data.length;
          setImmediate(() => {
            if (open) events.message(size, binary);
          });
        },
        async close() {
          open = false;
        },
        terminate() {
          open = false;
        },
      };
    };

  it('drives any client through the connector interface', async () => {
    const log = { maxMessageSize: [] as number[], sent: [] as Array<string | Buffer> };
    const r = await runBench({
      url: 'mem://echo',
      connector: memoryEcho(log),
      connections: 4,
      messages: 25,
      size: 300,
      binary: true,
      pipeline: 3,
    });
    expect(r).toMatchObject({ connected: 4, messages: 100, errors: 0, bytes: 30_000 });
    expectConsistent(r);
    expect(log.maxMessageSize).toEqual([300, 300, 300, 300]);
    expect(log.sent).toHaveLength(100);
    expect(log.sent.every((d) => Buffer.isBuffer(d) && d.length === 300)).toBe(true);
  });

  it('counts messages that never come back as errors after the stall timeout', async () => {
    // A fake clock: the watchdog's interval and performance.now() both advance on demand.
    vi.useFakeTimers({
      toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'performance'],
    });
    onTestFinished(() => {
      vi.useRealTimers();
    });
    const run = runBench({
      url: 'mem://void',
      connector: async () => ({ send() {}, close: async () => {}, terminate() {} }),
      connections: 2,
      messages: 10,
      pipeline: 3,
      stallTimeout: 200,
    });
    await vi.advanceTimersByTimeAsync(199);
    let settled = false;
    void run.then(() => {
      settled = true;
    });
    await vi.advanceTimersByTimeAsync(0);
    expect(settled).toBe(false); // no verdict before the stall timeout
    await vi.advanceTimersByTimeAsync(300);
    const r = await run;
    expect(r.messages).toBe(0);
    expect(r.errors).toBe(6); // 2 connections × 3 in flight
    expect(r.errorSamples[0]).toMatch(/no echo for 200 ms: 6 messages never came back/);
  });

  it('rejects invalid options', async () => {
    await expect(runBench({ url: 'ws://x/', connections: 0 })).rejects.toThrow(RangeError);
    await expect(runBench({ url: 'ws://x/', pipeline: 1.5 })).rejects.toThrow(RangeError);
    await expect(runBench({ url: 'ws://x/', duration: -2 })).rejects.toThrow(RangeError);
  });

  it('benchPayload builds ASCII text or bytes of the exact size', () => {
    for (const size of [1, 64, 4096, 4097, 100_000]) {
      const text = benchPayload(size, false);
      expect(typeof text).toBe('string');
      expect(Buffer.byteLength(text as string)).toBe(size);
      expect(/^[A-Za-z0-9]+$/.test(text as string)).toBe(true);
      const bin = benchPayload(size, true);
      expect(Buffer.isBuffer(bin) && bin.length === size).toBe(true);
    }
  });

  it('parses counts and seconds', () => {
    expect(parseCount('32')).toBe(32);
    for (const bad of ['0', '-3', '1.5', 'ten', '']) expect(() => parseCount(bad), bad).toThrow();
    expect(parseSeconds('10')).toBe(10);
    expect(parseSeconds('2.5')).toBe(2.5);
    expect(parseSeconds('30s')).toBe(30);
    for (const bad of ['0', '-1', 'soon', '1m']) expect(() => parseSeconds(bad), bad).toThrow();
  });

  it('formatBenchResult lists the errors it saw', () => {
    const text = formatBenchResult({
      url: 'ws://h/',
      connections: 1,
      connected: 1,
      size: 10,
      binary: true,
      pipeline: 1,
      messages: 1,
      bytes: 10,
      errors: 2,
      errorSamples: ['first problem', 'second problem'],
      seconds: 0.5,
      connectSeconds: 0.01,
      messagesPerSecond: 2,
      megabytesPerSecond: 0.00002,
      latencyMs: { p50: 1, p90: 1, p99: 1, p999: 1, max: 1, mean: 1 },
    });
    expect(text).toContain('1 connection to ws://h/, 10 B binary messages');
    expect(text).toContain('echoed      1 message in 0.500 s, 2 errors');
    expect(text).toMatch(/error {7}first problem\n {2}error {7}second problem\n$/);
  });
});
