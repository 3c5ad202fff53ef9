/**
 * Helpers for the Node-layer tests (not a test file itself): the shared setup of the suites
 * that drive a server with raw peers, plain HTTP servers, and raw HTTP exchanges over
 * node:net. Cleanup, tracked clients and waiting utilities come from test/support.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { type AddressInfo, connect as netConnect, type Socket } from 'node:net';
import type { Handler, WebSocket, WebSocketServer } from '@wskit/core';
import { HOST, onCleanup, realTimers, stopServer, withTimeout } from '../../../../test/support/clients.js';

// ---- shared setup --------------------------------------------------------------------

/**
 * Resolves with the server-side connection of the next handshake. `also` runs first on
 * that connection (an echo, say) when the handler is used as the whole route.
 */
export function nextConnection(also?: Handler): { handler: Handler; ws: Promise<WebSocket> } {
  let resolve!: (ws: WebSocket) => void;
  const ws = new Promise<WebSocket>((r) => {
    resolve = r;
  });
  return {
    handler: (w, req) => {
      also?.(w, req);
      resolve(w);
    },
    ws,
  };
}

// ---- servers -------------------------------------------------------------------------

/** wss.listen() on 127.0.0.1:0, closed after the test (clients terminated first). */
export async function serve(wss: WebSocketServer): Promise<number> {
  const address = await wss.listen(0, HOST);
  onCleanup(() => stopServer(wss));
  return address.port;
}

/** A port on 127.0.0.1 where nothing listens (was just freed). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

// ---- raw HTTP over node:net ---------------------------------------------------------

export function newKey(): string {
  return randomBytes(16).toString('base64');
}

/** RFC 6455 §4.2.2, computed here independently of the library. */
export function acceptFor(key: string): string {
  return createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
}

export interface RequestSpec {
  method?: string;
  path?: string;
  version?: string;
  /** Header lines in order; a null value leaves the default header out. */
  headers?: Record<string, string | null>;
  /** Extra raw header lines appended as they are (for repeated headers). */
  extraLines?: readonly string[];
}

/**
 * The text of an upgrade request: defaults to a valid version-13 handshake for
 * `host` with a fresh key. Returns the text and the key used.
 */
export function upgradeRequest(host: string, spec: RequestSpec = {}): { text: string; key: string } {
  const key = newKey();
  const defaults: Record<string, string> = {
    Host: host,
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': key,
    'Sec-WebSocket-Version': '13',
  };
  const merged: Record<string, string | null> = { ...defaults };
  for (const [name, value] of Object.entries(spec.headers ?? {})) {
    const existing = Object.keys(merged).find((k) => k.toLowerCase() === name.toLowerCase());
    if (existing !== undefined) delete merged[existing];
    merged[name] = value;
  }
  let text = `${spec.method ?? 'GET'} ${spec.path ?? '/'} HTTP/${spec.version ?? '1.1'}\r\n`;
  for (const [name, value] of Object.entries(merged)) {
    if (value !== null) text += `${name}: ${value}\r\n`;
  }
  for (const line of spec.extraLines ?? []) text += `${line}\r\n`;
  text += '\r\n';
  const sentKey = merged['Sec-WebSocket-Key'];
  return { text, key: typeof sentKey === 'string' ? sentKey : key };
}

export interface RawResponse {
  statusLine: string;
  status: number;
  /** Lower-case names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  /** Header lines in the order received, as sent. */
  headerLines: string[];
  body: string;
}

function parseHead(head: string): Omit<RawResponse, 'body'> {
  const [statusLine = '', ...lines] = head.split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? Number.NaN);
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  return { statusLine, status, headers, headerLines: lines };
}

/**
 * Sends `request` as is and collects the answer until the server closes the connection.
 * Rejects when the server leaves the socket open for `ms` (a hanging socket is a bug).
 */
export function rawExchange(port: number, request: string | Buffer, ms = 5000): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = netConnect(port, HOST);
    const chunks: Buffer[] = [];
    const timer = realTimers.setTimeout(() => {
      socket.destroy();
      reject(new Error(`the server left the socket open for ${ms} ms; got: ${Buffer.concat(chunks)}`));
    }, ms);
    socket.on('connect', () => socket.write(request));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => {
      // ECONNRESET after the answer still counts as closed; checked on 'close'.
    });
    socket.on('close', () => {
      realTimers.clearTimeout(timer);
      const all = Buffer.concat(chunks).toString('latin1');
      const end = all.indexOf('\r\n\r\n');
      if (end === -1) {
        reject(new Error(`connection closed without a complete HTTP answer: ${JSON.stringify(all)}`));
        return;
      }
      const head = parseHead(all.slice(0, end));
      const bodyBytes = Buffer.from(all.slice(end + 4), 'latin1');
      resolve({ ...head, body: bodyBytes.toString('utf8') });
    });
  });
}

export interface RawUpgrade {
  response: RawResponse;
  socket: Socket;
  /** Bytes received after the response head. */
  rest: Buffer;
}

/**
 * Sends an upgrade request and resolves as soon as the response head is complete, leaving
 * the socket open (destroyed after the test).
 */
export function rawHandshake(port: number, request: string, ms = 5000): Promise<RawUpgrade> {
  return new Promise((resolve, reject) => {
    const socket = netConnect(port, HOST);
    onCleanup(() => socket.destroy());
    let buffered = Buffer.alloc(0);
    const timer = realTimers.setTimeout(() => {
      socket.destroy();
      reject(new Error(`no complete answer within ${ms} ms`));
    }, ms);
    socket.on('connect', () => socket.write(request));
    socket.on('error', (err) => {
      realTimers.clearTimeout(timer);
      reject(err);
    });
    const onData = (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      const end = buffered.indexOf('\r\n\r\n');
      if (end === -1) return;
      realTimers.clearTimeout(timer);
      socket.off('data', onData);
      const head = parseHead(buffered.subarray(0, end).toString('latin1'));
      resolve({ response: { ...head, body: '' }, socket, rest: buffered.subarray(end + 4) });
    };
    socket.on('data', onData);
    socket.on('close', () => {
      realTimers.clearTimeout(timer);
      reject(new Error(`closed before a complete answer: ${JSON.stringify(buffered.toString('latin1'))}`));
    });
  });
}

/** Resolves when `socket` is closed by the peer; rejects after `ms`. */
export function socketClosed(socket: Socket, ms = 5000): Promise<void> {
  if (socket.destroyed) return Promise.resolve();
  return withTimeout(
    new Promise<void>((resolve) => {
      socket.on('error', () => {});
      socket.once('close', () => resolve());
    }),
    ms,
    'socket close',
  );
}
