/**
 * Helpers for the Express adapter tests (not a test file): servers on 127.0.0.1:0 that
 * are closed after each test, tracked clients, raw upgrade exchanges over node:net.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { type AddressInfo, connect as netConnect } from 'node:net';
import { type ClientOptions, connect, HandshakeError, type WebSocket } from '@wskit/core';
import { type ExpressWsOptions, expressWs } from '@wskit/express';

export const HOST = '127.0.0.1';

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const cleanups: Array<() => unknown> = [];

export function onCleanup(fn: () => unknown): void {
  cleanups.push(fn);
}

/** Use as `afterEach(runCleanups)`: undoes everything in reverse order. */
export async function runCleanups(): Promise<void> {
  while (cleanups.length > 0) {
    const fn = cleanups.pop()!;
    try {
      await withTimeout(Promise.resolve().then(fn), 10_000, 'cleanup');
    } catch {
      // Keep going: one failing cleanup must not leak the others.
    }
  }
}

export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not done within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export async function waitFor(condition: () => boolean, ms = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`${what}: still false after ${ms} ms`);
    await sleep(10);
  }
}

/** An Express app (4 or 5) with expressWs() on an http server, not yet listening. */
// biome-ignore lint/suspicious/noExplicitAny: the tests drive two Express majors through one helper
export function setup<A extends (...args: any[]) => any>(app: A, options: ExpressWsOptions = {}) {
  const server: Server = createServer(app);
  const instance = expressWs(app, server, options);
  onCleanup(async () => {
    for (const ws of instance.wss.clients) ws.terminate();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await instance.wss.close();
  });
  return {
    ...instance,
    server,
    /** Starts listening on 127.0.0.1:0; returns the ws:// base URL. */
    async listen(): Promise<string> {
      await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
      return `ws://${HOST}:${(server.address() as AddressInfo).port}`;
    },
  };
}

/** The port of a ws:// base URL. */
export const portOf = (base: string): number => Number(new URL(base).port);

/** connect() whose connection is terminated after the test. */
export async function open(url: string, options: ClientOptions = {}): Promise<WebSocket> {
  const ws = await connect(url, { handshakeTimeout: 5000, ...options });
  onCleanup(() => ws.terminate());
  return ws;
}

/** The HandshakeError of a refused connect(). */
export async function refused(url: string, options: ClientOptions = {}): Promise<HandshakeError> {
  try {
    const ws = await connect(url, { handshakeTimeout: 5000, ...options });
    ws.terminate();
  } catch (err) {
    if (err instanceof HandshakeError) return err;
    throw err;
  }
  throw new Error(`expected ${url} to be refused, but the handshake succeeded`);
}

/** The next message as text (fails the test when none arrives within 5 s). */
export async function nextText(ws: WebSocket): Promise<string> {
  const msg = await withTimeout(ws.receive(), 5000, 'next message');
  if (msg === null) throw new Error('the connection closed before a message arrived');
  return msg.text();
}

/**
 * Sends a raw upgrade request and collects everything the server writes until it closes
 * the connection. `closed` is false if the server kept the socket open for `ms`.
 */
export function rawUpgrade(
  port: number,
  path: string,
  extraHeaders: Record<string, string> = {},
  ms = 5000,
  omit: string[] = [],
): Promise<{ text: string; closed: boolean }> {
  const headers: Record<string, string> = {
    Host: `${HOST}:${port}`,
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': randomBytes(16).toString('base64'),
    'Sec-WebSocket-Version': '13',
    ...extraHeaders,
  };
  for (const name of omit) delete headers[name];
  const lines = [`GET ${path} HTTP/1.1`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), '', ''];
  return new Promise((resolve, reject) => {
    const socket = netConnect(port, HOST);
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closed: false });
    }, ms);
    socket.on('connect', () => socket.write(lines.join('\r\n')));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closed: true });
    });
  });
}

/** A logger that records every call. */
export function recordingLogger() {
  const calls: Array<{ level: string; obj: unknown; msg: string | undefined }> = [];
  const at =
    (level: string) =>
    (obj: unknown, msg?: string): void => {
      calls.push({ level, obj, msg });
    };
  return { calls, logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') } };
}
