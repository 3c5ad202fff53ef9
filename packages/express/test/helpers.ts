/**
 * Helpers for the Express adapter tests (not a test file): Express apps on 127.0.0.1:0
 * that are closed after each test, raw upgrade exchanges over node:net. Cleanup and
 * tracked clients come from test/support.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { type AddressInfo, connect as netConnect } from 'node:net';
import type { WebSocket, WebSocketServer } from '@wskit/core';
import { type ExpressWsOptions, expressWs } from '@wskit/express';
import { HOST, onCleanup, realTimers, withTimeout } from '../../../test/support/clients.js';

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

/**
 * `app.listen(0, HOST)`: the server that the adapter hooks by itself. Its WebSocket
 * clients and connections are dropped after the test (closing it is left to the test).
 */
export async function appListen(
  app: { listen(port: number, host: string): Server },
  wss: WebSocketServer,
): Promise<{ server: Server; port: number }> {
  const server = app.listen(0, HOST);
  onCleanup(() => {
    for (const ws of wss.clients) ws.terminate();
    server.closeAllConnections();
  });
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  return { server, port: (server.address() as AddressInfo).port };
}

/** The port of a ws:// base URL. */
export const portOf = (base: string): number => Number(new URL(base).port);

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
    const timer = realTimers.setTimeout(() => {
      socket.destroy();
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closed: false });
    }, ms);
    socket.on('connect', () => socket.write(lines.join('\r\n')));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', (err) => {
      realTimers.clearTimeout(timer);
      reject(err);
    });
    socket.on('close', () => {
      realTimers.clearTimeout(timer);
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
