/**
 * Shared helpers of the interop suites: our server and client and the `ws` library's
 * peers wrapped in small queues, and a driver for the Python peer scripts. Cleanup, time
 * limits and the test certificate come from test/support.
 */
import { type ChildProcessWithoutNullStreams, execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { createServer as createNetServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type ClientOptions,
  connect,
  type RouteOptions,
  type ServerOptions,
  type UpgradeRequest,
  type WebSocket,
  WebSocketServer,
} from '@wskit/core';
import {
  WebSocket as WsClient,
  type ClientOptions as WsClientOptions,
  WebSocketServer as WsServer,
  type ServerOptions as WsServerOptions,
} from 'ws';
import { type Resources, type TestCert, withTimeout as within } from '../support/clients.js';

// test/support's withTimeout, under the name the interop suites use.
export { within };

// ---- small async utilities ------------------------------------------------------------------

/** An unbounded FIFO whose shift() waits for the next item. */
export class AsyncQueue<T> {
  private items: T[] = [];
  private waiters: Array<(item: T) => void> = [];

  constructor(private readonly label: string) {}

  push(item: T): void {
    const waiter = this.waiters.shift();
    if (waiter !== undefined) waiter(item);
    else this.items.push(item);
  }

  shift(ms = 10_000): Promise<T> {
    const item = this.items.shift();
    if (item !== undefined) return Promise.resolve(item);
    const next = new Promise<T>((resolve) => this.waiters.push(resolve));
    return within(next, ms, this.label);
  }

  get size(): number {
    return this.items.length;
  }
}

export const sha256 = (data: Buffer | string): string => createHash('sha256').update(data).digest('hex');

// ---- payloads -------------------------------------------------------------------------------

const BASE = Buffer.from(Array.from({ length: 251 }, (_, i) => (i * 7 + 13) % 251));
const ALPHABET = 'abcdefghijklmnopqrstuvwxyz';

/** The binary pattern python/common.py generates: byte i is (i * 7 + 13) % 251. */
export function patternBytes(size: number): Buffer {
  const out = Buffer.allocUnsafe(size);
  for (let offset = 0; offset < size; offset += BASE.length) {
    BASE.copy(out, offset, 0, Math.min(BASE.length, size - offset));
  }
  return out;
}

/** The text pattern python/common.py generates: a..z repeated, `size` ASCII characters. */
export function patternText(size: number): string {
  return ALPHABET.repeat(Math.ceil(size / 26)).slice(0, size);
}

/**
 * A string of exactly `bytes` bytes of UTF-8 mixing 1-, 2-, 3- and 4-byte characters
 * (ASCII pads the end), so that multi-byte characters straddle frame-size boundaries.
 */
export function mixedText(bytes: number): string {
  const cycle = ['a', 'é', '✓', '😀', 'Z', 'ж', '中'];
  const big = Math.max(0, bytes - 3);
  const parts: string[] = [];
  let length = 0;
  let i = 0;
  // Build in blocks so 16 MiB stays fast.
  const block = cycle.join('');
  const blockBytes = Buffer.byteLength(block);
  while (length + blockBytes <= big) {
    parts.push(block);
    length += blockBytes;
  }
  while (length < bytes) {
    const ch = cycle[i++ % cycle.length]!;
    const n = Buffer.byteLength(ch);
    if (length + n <= bytes) {
      parts.push(ch);
      length += n;
    } else {
      parts.push('a');
      length += 1;
    }
  }
  const out = parts.join('');
  if (Buffer.byteLength(out) !== bytes)
    throw new Error(`mixedText(${bytes}) built ${Buffer.byteLength(out)} bytes`);
  return out;
}

// ---- transports and IPv6 --------------------------------------------------------------------

export interface Transport {
  name: string;
  host: '127.0.0.1' | '::1';
  secure: boolean;
}

export function urlFor(t: Transport, port: number, path = '/'): string {
  const host = t.host.includes(':') ? `[${t.host}]` : t.host;
  return `${t.secure ? 'wss' : 'ws'}://${host}:${port}${path}`;
}

/** Can a TCP server listen on `host` here (e.g. '::1' where IPv6 is disabled)? */
export function canListenOn(host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createNetServer();
    server.once('error', () => resolve(false));
    server.listen(0, host, () => server.close(() => resolve(true)));
  });
}

// ---- our server and client ------------------------------------------------------------------

export interface ReceivedSummary {
  type: 'text' | 'binary';
  size: number;
  sha256: string;
}

export interface ServerConnection {
  ws: WebSocket;
  req: UpgradeRequest;
}

export interface OurServer {
  wss: WebSocketServer;
  port: number;
  url(path?: string): string;
  /** Server-side connections, as they open (both routes). */
  connections: AsyncQueue<ServerConnection>;
  /** What the /echo route received, in order. */
  received: ReceivedSummary[];
  close(): Promise<void>;
}

/**
 * Our WebSocketServer on an ephemeral port: '/echo' echoes (and records what it got),
 * '/probe' does nothing, so the test drives the server side itself.
 */
export async function startServer(
  t: Transport,
  options: ServerOptions = {},
  routeOptions: RouteOptions = {},
  cert?: TestCert,
): Promise<OurServer> {
  const tls = t.secure ? (cert === undefined ? undefined : { cert: cert.cert, key: cert.key }) : undefined;
  if (t.secure && tls === undefined) throw new Error('a wss:// server needs a certificate');
  const wss = new WebSocketServer({
    pingInterval: 0,
    closeTimeout: 2000,
    ...options,
    ...(tls ? { tls } : {}),
  });
  const connections = new AsyncQueue<ServerConnection>('a server-side connection');
  const received: ReceivedSummary[] = [];
  wss.route(
    '/echo',
    async (ws, req) => {
      connections.push({ ws, req });
      for await (const m of ws) {
        received.push({ type: m.type, size: m.size, sha256: sha256(m.data) });
        await ws.send(m.data, { binary: m.type === 'binary' });
      }
    },
    routeOptions,
  );
  wss.route('/probe', (ws, req) => connections.push({ ws, req }), routeOptions);
  const { port } = await wss.listen(0, t.host);
  return {
    wss,
    port,
    url: (path = '/echo') => urlFor(t, port, path),
    connections,
    received,
    close: () => wss.close(),
  };
}

/** Runs `fn` with a fresh server and always closes the server afterwards. */
export async function withServer<T>(
  t: Transport,
  options: ServerOptions & { route?: RouteOptions; cert?: TestCert },
  fn: (server: OurServer) => Promise<T>,
): Promise<T> {
  const { route, cert, ...serverOptions } = options;
  const server = await startServer(t, serverOptions, route, cert);
  try {
    return await fn(server);
  } finally {
    await server.close();
  }
}

/** Our client, with no keepalive pings, terminated when `resources` are released. */
export async function openOurClient(
  url: string,
  options: ClientOptions,
  resources: Resources,
): Promise<WebSocket> {
  const ws = await connect(url, { pingInterval: 0, closeTimeout: 2000, ...options });
  resources.add(() => {
    if (ws.readyState !== 3) ws.terminate();
  });
  return ws;
}

/** The 'ping' events of one of our connections, queued. */
export function pingEvents(ws: WebSocket): AsyncQueue<Buffer> {
  const q = new AsyncQueue<Buffer>('a ping event on our side');
  ws.on('ping', (data: Buffer) => q.push(data));
  return q;
}

/** Reads the next `n` frames from a frames() tap while `run` happens, then stops tapping. */
export async function takeFrames(
  ws: WebSocket,
  n: number,
  run: () => unknown,
): Promise<Array<[number, boolean]>> {
  const it = ws.frames()[Symbol.asyncIterator]();
  const out: Array<[number, boolean]> = [];
  try {
    await run();
    while (out.length < n) {
      const next = await within(it.next(), 10_000, 'a frame');
      if (next.done) break;
      out.push([next.value.opcode, next.value.fin]);
    }
  } finally {
    await it.return?.();
  }
  return out;
}

// ---- the ws library as a peer ---------------------------------------------------------------

export interface WsMessage {
  data: Buffer;
  binary: boolean;
}

/** A `ws` WebSocket with everything it reports queued up for the test. */
export interface WsPeer {
  ws: WsClient;
  messages: AsyncQueue<WsMessage>;
  pings: AsyncQueue<Buffer>;
  pongs: AsyncQueue<Buffer>;
  closed: Promise<{ code: number; reason: string }>;
}

function toBuffer(data: WsClient.RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

export function wrapWs(ws: WsClient): WsPeer {
  const messages = new AsyncQueue<WsMessage>('a message at the ws peer');
  const pings = new AsyncQueue<Buffer>('a ping at the ws peer');
  const pongs = new AsyncQueue<Buffer>('a pong at the ws peer');
  ws.on('message', (data, binary) => messages.push({ data: toBuffer(data), binary }));
  ws.on('ping', (data) => pings.push(data));
  ws.on('pong', (data) => pongs.push(data));
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString('utf8') }));
  });
  return { ws, messages, pings, pongs, closed };
}

export interface WsClientAttempt {
  peer: WsPeer;
  /** Settles with the peer once open; rejects with the ws client's error. */
  open: Promise<WsPeer>;
  /** Headers of the 101 response, once it arrived. */
  upgradeHeaders: Promise<IncomingHttpHeaders>;
}

/** Starts a `ws` client (listeners attached before anything can arrive). */
export function startWsClient(
  url: string,
  protocols: string[] | undefined,
  options: WsClientOptions,
  resources: Resources,
): WsClientAttempt {
  const ws = protocols === undefined ? new WsClient(url, options) : new WsClient(url, protocols, options);
  const peer = wrapWs(ws);
  resources.add(() => {
    if (ws.readyState !== WsClient.CLOSED) ws.terminate();
  });
  const upgradeHeaders = new Promise<IncomingHttpHeaders>((resolve) => {
    ws.once('upgrade', (res: IncomingMessage) => resolve(res.headers));
  });
  const open = new Promise<WsPeer>((resolve, reject) => {
    ws.once('open', () => resolve(peer));
    ws.once('error', reject);
  });
  ws.on('error', () => {}); // later errors are seen through 'close'
  return { peer, open: within(open, 10_000, `the ws client to open ${url}`), upgradeHeaders };
}

export function openWsClient(
  url: string,
  options: WsClientOptions & { protocols?: string[] },
  resources: Resources,
): Promise<WsPeer> {
  const { protocols, ...rest } = options;
  return startWsClient(url, protocols, rest, resources).open;
}

export interface WsServerConnection extends WsPeer {
  req: IncomingMessage;
}

export interface WsPeerServer {
  port: number;
  url(path?: string): string;
  connections: AsyncQueue<WsServerConnection>;
  close(): Promise<void>;
}

/**
 * A `ws` WebSocketServer on an ephemeral port (on an https server for wss://). Requests
 * to '/echo' are echoed; every connection is also queued for the test.
 */
export async function startWsServer(
  t: Transport,
  options: Omit<WsServerOptions, 'port' | 'host' | 'server' | 'noServer'>,
  cert?: TestCert,
): Promise<WsPeerServer> {
  let https: HttpsServer | undefined;
  let server: WsServer;
  if (t.secure) {
    if (cert === undefined) throw new Error('a wss:// server needs a certificate');
    https = createHttpsServer({ cert: cert.cert, key: cert.key });
    server = new WsServer({ ...options, server: https });
    const h = https;
    await new Promise<void>((resolve, reject) => {
      h.once('error', reject);
      h.listen(0, t.host, () => resolve());
    });
  } else {
    server = new WsServer({ ...options, port: 0, host: t.host });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.once('listening', () => resolve());
    });
  }
  const port = ((https ?? server).address() as AddressInfo).port;
  const connections = new AsyncQueue<WsServerConnection>('a connection at the ws server');
  server.on('connection', (ws, req) => {
    const peer = wrapWs(ws);
    if (req.url === '/echo') ws.on('message', (data, binary) => ws.send(data, { binary }));
    connections.push({ ...peer, req });
  });
  return {
    port,
    url: (path = '/echo') => urlFor(t, port, path),
    connections,
    close: async () => {
      for (const ws of server.clients) ws.terminate();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      if (https !== undefined) {
        const h = https;
        h.closeAllConnections();
        await new Promise<void>((resolve) => h.close(() => resolve()));
      }
    },
  };
}

// ---- the Python peer ------------------------------------------------------------------------

/** Debian's interpreter, which has python3-websockets (the pyenv one first on PATH doesn't). */
export const SYSTEM_PYTHON = '/usr/bin/python3';
const PYTHON_DIR = fileURLToPath(new URL('./python/', import.meta.url));

/** The websockets version importable by SYSTEM_PYTHON, or null with the reason. */
export function pythonWebsockets(): { version: string | null; problem?: string } {
  try {
    const out = execFileSync(SYSTEM_PYTHON, ['-c', 'import websockets; print(websockets.__version__)'], {
      stdio: 'pipe',
      timeout: 20_000,
    });
    return { version: out.toString().trim() };
  } catch (err) {
    const detail = err instanceof Error ? err.message.split('\n')[0] : String(err);
    return { version: null, problem: detail };
  }
}

export type PyMessage = Record<string, unknown>;

/**
 * One python/{client,server}.py process. `call()` sends a command and waits for its
 * reply; `event()` waits for the next unsolicited report with that name.
 */
export class PythonPeer {
  readonly exited: Promise<number | null>;
  stderr = '';
  private readonly proc: ChildProcessWithoutNullStreams;
  private nextId = 1;
  private readonly pending = new Map<
    number,
    { resolve: (m: PyMessage) => void; reject: (e: Error) => void }
  >();
  private readonly events: PyMessage[] = [];
  private eventWaiters: Array<{ names: string[]; resolve: (m: PyMessage) => void }> = [];
  private buffer = '';

  private constructor(script: 'client' | 'server', args: string[]) {
    this.proc = spawn(SYSTEM_PYTHON, ['-u', join(PYTHON_DIR, `${script}.py`), ...args], {
      cwd: PYTHON_DIR,
      stdio: 'pipe',
      env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' },
    });
    this.proc.stdout.setEncoding('utf8');
    this.proc.stdout.on('data', (chunk: string) => this.onStdout(chunk));
    this.proc.stderr.setEncoding('utf8');
    this.proc.stderr.on('data', (chunk: string) => {
      this.stderr += chunk;
    });
    this.proc.stdin.on('error', () => {}); // the process may be gone already
    this.exited = new Promise((resolve) => {
      this.proc.once('exit', (code) => {
        for (const p of this.pending.values()) p.reject(new Error(`python exited (${code}): ${this.stderr}`));
        this.pending.clear();
        resolve(code);
      });
    });
  }

  static start(script: 'client' | 'server', args: string[], resources: Resources): PythonPeer {
    const peer = new PythonPeer(script, args);
    resources.add(() => peer.stop());
    return peer;
  }

  private onStdout(chunk: string): void {
    this.buffer += chunk;
    for (;;) {
      const nl = this.buffer.indexOf('\n');
      if (nl < 0) return;
      const line = this.buffer.slice(0, nl);
      this.buffer = this.buffer.slice(nl + 1);
      if (line.trim() === '') continue;
      let msg: PyMessage;
      try {
        msg = JSON.parse(line) as PyMessage;
      } catch {
        this.stderr += `[stdout, not JSON] ${line}\n`;
        continue;
      }
      if (typeof msg.id === 'number') {
        const p = this.pending.get(msg.id);
        this.pending.delete(msg.id);
        if (typeof msg.error === 'string') p?.reject(new Error(`python: ${msg.error}`));
        else p?.resolve(msg);
      } else if (typeof msg.event === 'string') {
        const name = msg.event;
        const waiter = this.eventWaiters.find((w) => w.names.includes(name));
        if (waiter !== undefined) {
          this.eventWaiters = this.eventWaiters.filter((w) => w !== waiter);
          waiter.resolve(msg);
        } else {
          this.events.push(msg);
        }
      }
    }
  }

  call(op: string, params: PyMessage = {}, ms = 15_000): Promise<PyMessage> {
    const id = this.nextId++;
    const reply = new Promise<PyMessage>((resolve, reject) => this.pending.set(id, { resolve, reject }));
    this.proc.stdin.write(`${JSON.stringify({ ...params, id, op })}\n`);
    return within(reply, ms, `the reply to python "${op}"`).catch((err: unknown) => {
      const text = err instanceof Error ? err.message : String(err);
      throw new Error(this.stderr ? `${text}\n--- python stderr ---\n${this.stderr.slice(-2000)}` : text);
    });
  }

  /** The next report named `names` (or one of them), oldest first. */
  event(names: string | string[], ms = 15_000): Promise<PyMessage> {
    const list = typeof names === 'string' ? [names] : names;
    const index = this.events.findIndex((e) => list.includes(e.event as string));
    if (index >= 0) return Promise.resolve(this.events.splice(index, 1)[0]!);
    let waiter: { names: string[]; resolve: (m: PyMessage) => void } | undefined;
    const next = new Promise<PyMessage>((resolve) => {
      waiter = { names: list, resolve };
      this.eventWaiters.push(waiter);
    });
    return within(next, ms, `the python ${list.join('/')} event`).catch((err: unknown) => {
      this.eventWaiters = this.eventWaiters.filter((w) => w !== waiter);
      const text = err instanceof Error ? err.message : String(err);
      throw new Error(`${text}\n--- python stderr ---\n${this.stderr.slice(-2000)}`);
    });
  }

  /** Reports of this name received and not yet taken by event(). */
  eventCount(name: string): number {
    return this.events.filter((e) => e.event === name).length;
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.proc.stdin.end();
    const exited = await Promise.race([
      this.exited.then(() => true),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 5000)),
    ]);
    if (!exited) {
      this.proc.kill('SIGKILL');
      await this.exited;
    }
  }
}

/** Base64 of a payload, as the Python scripts take and report binary data. */
export const b64 = (data: Buffer | string): string => Buffer.from(data).toString('base64');
