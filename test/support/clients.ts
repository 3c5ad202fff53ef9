/**
 * Test support shared by every package (not a test file): a cleanup registry, clients of
 * @wskit/core that are terminated after the test, refusal checks, a WebSocketServer and a
 * plain HTTP server on ephemeral ports, an echo handler, waiting utilities and a throwaway
 * TLS certificate.
 *
 * Typical use: `afterEach(cleanup)`, then `open(url)`, `expectRefusal(url)`, `startWss(...)`
 * in the tests; whatever they open is undone after the test, newest first.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type ClientOptions,
  connect,
  type Handler,
  HandshakeError,
  type ServerOptions,
  type WebSocket,
  WebSocketServer,
} from '@wskit/core';
import type { HandshakeResponse } from '@wskit/core/protocol';
import { afterEach, expect } from 'vitest';

export const HOST = '127.0.0.1';

/**
 * The real clock, taken before any test can install vitest's fake timers: the guards below
 * (withTimeout, waitFor) bound real waiting, so they keep working in a fake-clock test.
 */
export const realTimers = {
  setTimeout: globalThis.setTimeout,
  clearTimeout: globalThis.clearTimeout,
  now: Date.now,
};

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Rejects when `promise` has not settled within `ms` of real time. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what = 'promise'): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = realTimers.setTimeout(
      () => reject(new Error(`Timed out after ${ms} ms waiting for ${what}`)),
      ms,
    );
  });
  return Promise.race([promise, timeout]).finally(() => realTimers.clearTimeout(timer));
}

/** Polls `condition` until it holds; rejects after `ms` of real time. */
export async function waitFor(condition: () => boolean, ms = 5000, what = 'condition'): Promise<void> {
  const deadline = realTimers.now() + ms;
  while (!condition()) {
    if (realTimers.now() > deadline) throw new Error(`${what}: still false after ${ms} ms`);
    await new Promise((resolve) => realTimers.setTimeout(resolve, 10));
  }
}

// ---- cleanup ----------------------------------------------------------------------------

/** Things a test opened, undone newest first by `release()` (from afterEach). */
export class Resources {
  private fns: Array<() => unknown> = [];

  /** `onError` hears about a cleanup step that failed; by default failures are ignored. */
  constructor(private readonly onError?: (err: unknown) => void) {}

  add(fn: () => unknown): void {
    this.fns.push(fn);
  }

  async release(): Promise<void> {
    const fns = this.fns.reverse();
    this.fns = [];
    for (const fn of fns) {
      try {
        await withTimeout(Promise.resolve().then(fn), 10_000, 'a cleanup step');
      } catch (err) {
        // A failing cleanup must not hide the test's own result or skip the other cleanups.
        this.onError?.(err);
      }
    }
  }
}

/** Resources for a suite that passes them around explicitly, released after each test. */
export function resourcesPerTest(onError?: (err: unknown) => void): Resources {
  const res = new Resources(onError);
  afterEach(() => res.release());
  return res;
}

const perTest = new Resources();

/** Registers something to undo after the current test (with `afterEach(cleanup)`). */
export function onCleanup(fn: () => unknown): void {
  perTest.add(fn);
}

/** Undoes everything registered with onCleanup() and the helpers below; for afterEach. */
export function cleanup(): Promise<void> {
  return perTest.release();
}

/** Terminates a connection after the test (or when `res` is released). Returns it. */
export function track<T extends { terminate(): void }>(ws: T, res: Resources = perTest): T {
  res.add(() => ws.terminate());
  return ws;
}

// ---- clients ----------------------------------------------------------------------------

/** No keepalive pings, and a hung handshake fails in seconds. */
const CLIENT_DEFAULTS: ClientOptions = { handshakeTimeout: 5000, pingInterval: 0 };

/** connect() whose connection is terminated after the test. */
export async function open(
  url: string,
  options: ClientOptions = {},
  res: Resources = perTest,
): Promise<WebSocket> {
  return track(await connect(url, { ...CLIENT_DEFAULTS, ...options }), res);
}

/** Sends `message(i)` on every client at once; resolves with the text of each one's next message. */
export function exchangeAll(
  clients: readonly WebSocket[],
  message: (i: number) => string,
): Promise<Array<string | undefined>> {
  return Promise.all(
    clients.map(async (ws, i) => {
      await ws.send(message(i));
      return (await ws.receive())?.text();
    }),
  );
}

/** The HandshakeError of a connect() that must be refused. */
export async function refused(url: string, options: ClientOptions = {}): Promise<HandshakeError> {
  const err = await connect(url, { ...CLIENT_DEFAULTS, ...options }).then(
    (ws) => {
      ws.terminate();
      throw new Error(`expected ${url} to be refused, but the handshake succeeded`);
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(HandshakeError);
  return err as HandshakeError;
}

/** The HTTP response of a connect() that must be refused. */
export async function expectRefusal(url: string, options: ClientOptions = {}): Promise<HandshakeResponse> {
  return (await refused(url, options)).response!;
}

// ---- servers ----------------------------------------------------------------------------

/**
 * Echoes every message back with its type, one at a time, until the peer closes. A route
 * handler of the core and of the adapters alike (the request is not looked at).
 */
export async function echo(ws: WebSocket, _req?: unknown): Promise<void> {
  for await (const msg of ws) await ws.send(msg.data, { binary: msg.type === 'binary' });
}

/** Shuts a server down without waiting for peers that never answer a Close. */
export async function stopServer(wss: WebSocketServer): Promise<void> {
  for (const ws of wss.clients) ws.terminate();
  await wss.close();
}

export interface StartedWss {
  wss: WebSocketServer;
  port: number;
  /** ws://127.0.0.1:PORT/ */
  url: string;
}

/**
 * A WebSocketServer listening on 127.0.0.1:0, stopped after the test (or when `res` is
 * released). `routes` is one handler for every path, or handlers by glob pattern.
 */
export async function startWss(
  routes: Handler | Record<string, Handler>,
  options: ServerOptions = {},
  res: Resources = perTest,
): Promise<StartedWss> {
  const wss = new WebSocketServer(options);
  if (typeof routes === 'function') wss.route('*', routes);
  else for (const [pattern, handler] of Object.entries(routes)) wss.route(pattern, handler);
  const { port } = await wss.listen(0, HOST);
  res.add(() => stopServer(wss));
  return { wss, port, url: `ws://${HOST}:${port}/` };
}

/** A plain node:http server on 127.0.0.1:0, closed after the test. */
export async function plainServer(
  server: Server = createServer(),
): Promise<{ server: Server; port: number }> {
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  onCleanup(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return { server, port: (server.address() as AddressInfo).port };
}

// ---- TLS --------------------------------------------------------------------------------

export interface TestCert {
  /** PEM text of the certificate and of its key. */
  cert: string;
  key: string;
  /** The same, as files in `dir`. */
  certFile: string;
  keyFile: string;
  dir: string;
}

/** A throwaway self-signed certificate for localhost, 127.0.0.1 and ::1 (openssl CLI). */
export function generateCert(): TestCert {
  const dir = mkdtempSync(join(tmpdir(), 'wskit-test-tls-'));
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-sha256',
      '-days',
      '1',
      '-keyout',
      keyFile,
      '-out',
      certFile,
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1',
    ],
    { stdio: 'pipe' },
  );
  return { cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8'), certFile, keyFile, dir };
}

export function removeCert(cert: TestCert | undefined): void {
  if (cert !== undefined) rmSync(cert.dir, { recursive: true, force: true });
}
