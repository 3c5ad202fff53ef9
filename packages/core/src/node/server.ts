import { createServer as createHttpServer, type Server as HttpServer, type IncomingMessage } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { CloseCode } from '../protocol/close-codes.js';
import { HandshakeError } from '../protocol/errors.js';
import { formatExtensions } from '../protocol/extensions.js';
import { Opcode } from '../protocol/frame.js';
import { encodeFrame } from '../protocol/frame-writer.js';
import { compileGlob, globMatch } from '../protocol/glob.js';
import {
  buildAcceptResponse,
  buildRejectionResponse,
  selectSubprotocol,
  validateRequest,
} from '../protocol/handshake.js';
import {
  negotiate,
  type PerMessageDeflateOptions,
  validateDeflateOptions,
} from '../protocol/permessage-deflate.js';
import { type Data, type TopicHub, toPayload, WebSocket } from './connection.js';
import { createPerMessageDeflate } from './deflate.js';
import type { Fanout, FanoutTarget, PublishOptions } from './fanout.js';
import {
  type AnyHttp2Server,
  attachHttp2,
  closeHttp2Server,
  createHttp2Server,
  isHttp2Server,
} from './http2-server.js';
import { createLogger, type Logger } from './logger.js';
import {
  type ConnectionOptions,
  DEFAULTS,
  type DeflateOption,
  resolveConnectionOptions,
  type TlsOptions,
} from './options.js';
import {
  buildUpgradeRequest,
  checkOrigin,
  type OriginPolicy,
  originForm,
  type UpgradeRequest,
} from './upgrade-request.js';

export type Handler = (ws: WebSocket, req: UpgradeRequest) => void | Promise<void>;

/** Writes the HTTP refusal of an upgrade: status, body and extra headers. */
export type Reply = (status: number, body?: string, headers?: Record<string, string>) => void;

export interface AccessHooks {
  /** Decides whether to accept; false -> accessDenied. Default: the same-origin check. */
  acceptConnection?: (req: UpgradeRequest) => boolean | Promise<boolean>;
  /** Writes the refusal. Default: 403 "Access denied". */
  accessDenied?: (req: UpgradeRequest, reply: Reply) => void;
  /** Allowed Origin values (globs; '*' for any) or a predicate, for the default acceptConnection. */
  origins?: OriginPolicy;
}

export interface RouteOptions extends AccessHooks, ConnectionOptions {
  /** Subprotocols this route speaks, as globs in preference order (or a chooser). */
  protocols?: readonly string[] | ((offered: string[]) => string | undefined | null);
  perMessageDeflate?: DeflateOption;
}

export interface ServerOptions extends RouteOptions {
  /** An upgrade request slower than this (ms) is dropped. Default 10000. */
  handshakeTimeout?: number;
  /** Further upgrades are answered 503 (with Retry-After). Default Infinity. */
  maxConnections?: number;
  /**
   * Upgrade requests received but not answered yet (their acceptConnection is still
   * running); further ones are answered 503 with Retry-After. Default 1024.
   */
  maxPendingHandshakes?: number;
  /**
   * Open connections plus pending handshakes from one remote address (IPv4-mapped IPv6
   * counts as IPv4); further ones are answered 503 with Retry-After. Default Infinity:
   * behind a reverse proxy or a large NAT every client has the same address.
   */
  maxConnectionsPerIp?: number;
  /** The Retry-After value (seconds) of the 503 answers above. Default 5. */
  retryAfter?: number;
  /** For listen(): serve wss:// with this certificate and key. */
  tls?: TlsOptions;
  /** Carries publish() to other processes (e.g. `redisFanout()` from @wskit/redis). */
  fanout?: Fanout;
}

interface Route {
  pattern: string;
  regex: RegExp;
  handler: Handler;
  options: RouteOptions;
}

export interface UpgradeContext {
  /** Route parameters found by a framework router. */
  params?: Record<string, string>;
  /** Per-route options from an adapter (override the server's). */
  route?: RouteOptions;
}

const noopHandler: Handler = () => {};

/** Defaults of the server-only limits (SECURITY.md explains the choices). */
export const SERVER_DEFAULTS = {
  maxConnections: Number.POSITIVE_INFINITY,
  maxPendingHandshakes: 1024,
  maxConnectionsPerIp: Number.POSITIVE_INFINITY,
  retryAfter: 5,
} as const;

/** The key a remote address is counted under: IPv4-mapped IPv6 as IPv4, lower case. */
export function addressKey(address: string | undefined): string | undefined {
  if (address === undefined || address === '') return undefined;
  const lower = address.toLowerCase();
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/.exec(lower);
  return mapped ? mapped[1] : lower;
}

function limitOption(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || Number.isNaN(value) || value < 0) {
    throw new RangeError(`${name} must be a non-negative number (got ${String(value)})`);
  }
  return value;
}

/**
 * A WebSocket server: routes upgrade requests to handlers. Use it standalone (listen),
 * on an existing http/https server (attach), or from a framework (handleUpgrade).
 */
export class WebSocketServer implements TopicHub, FanoutTarget {
  readonly options: ServerOptions;
  private readonly routes: Route[] = [];
  private readonly clientSet = new Set<WebSocket>();
  private readonly topicIndex = new Map<string, Set<WebSocket>>();
  private readonly log: Logger;
  private readonly handshakeTimeout: number;
  private readonly maxConnections: number;
  private readonly maxPendingHandshakes: number;
  private readonly maxConnectionsPerIp: number;
  private readonly retryAfter: string;
  /** Open connections plus pending handshakes, per remote address (only with a per-IP limit). */
  private readonly perAddress = new Map<string, number>();
  private readonly addressOf = new Map<WebSocket, string>();
  private readonly pendingHandshakes = new WeakMap<Duplex, NodeJS.Timeout | null>();
  private ownServer: HttpServer | HttpsServer | undefined;
  private ownHttp2: AnyHttp2Server | undefined;
  private attached = new Set<HttpServer | HttpsServer>();
  private closing = false;
  private upgrading = 0;
  private fanoutHooks: Fanout | undefined;

  constructor(options: ServerOptions = {}) {
    validateRouteOptions(options); // bad options fail here, not on every upgrade
    checkDeflateOption(options.perMessageDeflate);
    this.options = options;
    this.log = createLogger(options.logger, options.logLevel);
    this.handshakeTimeout = options.handshakeTimeout ?? DEFAULTS.handshakeTimeout;
    this.maxConnections = limitOption(
      'maxConnections',
      options.maxConnections,
      SERVER_DEFAULTS.maxConnections,
    );
    this.maxPendingHandshakes = limitOption(
      'maxPendingHandshakes',
      options.maxPendingHandshakes,
      SERVER_DEFAULTS.maxPendingHandshakes,
    );
    this.maxConnectionsPerIp = limitOption(
      'maxConnectionsPerIp',
      options.maxConnectionsPerIp,
      SERVER_DEFAULTS.maxConnectionsPerIp,
    );
    this.retryAfter = String(
      Math.ceil(limitOption('retryAfter', options.retryAfter, SERVER_DEFAULTS.retryAfter)),
    );
    if (options.fanout !== undefined) this.setFanout(options.fanout);
  }

  /** Connections that completed the handshake and are not closed yet. */
  get clients(): ReadonlySet<WebSocket> {
    return this.clientSet;
  }

  /** Adds a route: `pattern` is a glob on the URL path, e.g. "/chat/*". First match wins. */
  route(pattern: string, handler: Handler, routeOptions: RouteOptions = {}): this {
    validateRouteOptions(routeOptions);
    checkDeflateOption(routeOptions.perMessageDeflate);
    this.routes.push({ pattern, regex: compileGlob(pattern), handler, options: routeOptions });
    return this;
  }

  /** Connections whose remote end matches: `host` and `port` are globs ("10.0.*", "5*"). */
  find(filter: { host?: string; port?: string }): WebSocket[] {
    const out: WebSocket[] = [];
    for (const ws of this.clientSet) {
      if (filter.host !== undefined && !globMatch(filter.host, ws.remoteAddress ?? '')) continue;
      if (filter.port !== undefined && !globMatch(filter.port, String(ws.remotePort ?? ''))) continue;
      out.push(ws);
    }
    return out;
  }

  // ---- pub/sub -------------------------------------------------------------------------

  subscribe(ws: WebSocket, topic: string): void {
    let set = this.topicIndex.get(topic);
    if (set === undefined) {
      set = new Set();
      this.topicIndex.set(topic, set);
      set.add(ws);
      this.fanoutHooks?.topicOpened(topic);
      return;
    }
    set.add(ws);
  }

  /** @internal The connection is closed: it leaves `clients`. */
  connectionClosed(ws: WebSocket): void {
    this.clientSet.delete(ws);
    const address = this.addressOf.get(ws);
    if (address !== undefined) {
      this.addressOf.delete(ws);
      this.countAddress(address, -1);
    }
  }

  private countAddress(address: string, delta: number): void {
    const n = (this.perAddress.get(address) ?? 0) + delta;
    if (n <= 0) this.perAddress.delete(address);
    else this.perAddress.set(address, n);
  }

  unsubscribe(ws: WebSocket, topic: string): void {
    const set = this.topicIndex.get(topic);
    if (set === undefined) return;
    set.delete(ws);
    if (set.size === 0) {
      this.topicIndex.delete(topic);
      this.fanoutHooks?.topicClosed(topic);
    }
  }

  /**
   * Attaches the fan-out that carries publish() to other processes (once per server; the
   * `fanout` option does the same). It is told at once about the topics already open.
   */
  setFanout(fanout: Fanout): void {
    if (this.fanoutHooks !== undefined) throw new Error('this server already has a fan-out');
    this.fanoutHooks = fanout;
    fanout.attach(this);
    for (const topic of this.topicIndex.keys()) fanout.topicOpened(topic);
  }

  /** The topics that have at least one subscriber in this process. */
  localTopics(): IterableIterator<string> {
    return this.topicIndex.keys();
  }

  /**
   * Sends a message to every subscriber of `topic`, encoding the frame once (uncompressed
   * unless `compress: true`). Returns the number of local connections it went to. With a
   * fan-out attached, the message also goes to the other processes (see its own report).
   */
  publish(topic: string, data: Data, opts: PublishOptions = {}): number {
    const fanout = this.fanoutHooks;
    if (fanout === undefined) return this.deliverLocal(topic, data, opts);
    const payload = toPayload(data);
    const resolved = { binary: opts.binary ?? typeof data !== 'string', compress: opts.compress ?? false };
    const count = this.deliverLocal(topic, payload, resolved);
    fanout.published(topic, payload, resolved, count);
    return count;
  }

  /** publish() to this process's subscribers only (the fan-out is not told). */
  deliverLocal(topic: string, data: Data, opts: PublishOptions = {}): number {
    const set = this.topicIndex.get(topic);
    if (set === undefined || set.size === 0) return 0;
    const payload = toPayload(data);
    const binary = opts.binary ?? typeof data !== 'string';
    let bytes: Buffer | undefined;
    let count = 0;
    for (const ws of set) {
      if (opts.compress === true && ws.extensions !== '') {
        // RFC 7692 §7.2.3: deflate contexts are per connection, so is the frame.
        if (ws.readyState !== WebSocket.OPEN) continue;
        ws.send(payload, { binary, compress: true }).catch(noopCatch);
        count++;
        continue;
      }
      if (bytes === undefined) {
        const opcode = binary ? Opcode.BINARY : Opcode.TEXT;
        const frame = encodeFrame({ fin: true, rsv: 0, opcode, masked: false, payload });
        bytes = frame.length === 1 ? frame[0]! : Buffer.concat(frame);
      }
      // Written now, or right after the connection's fragmented/queued sends.
      if (ws.sendEncoded(bytes)) count++;
    }
    return count;
  }

  // ---- serving -------------------------------------------------------------------------

  /** Listens to `server`'s 'upgrade' events (and times out stalled handshakes). */
  attach(server: HttpServer | HttpsServer | AnyHttp2Server): this {
    // HTTP/2 (RFC 8441 extended CONNECT, and 'upgrade' with allowHTTP1): http2-server.ts.
    if (isHttp2Server(server)) {
      attachHttp2(this, server, this.log);
      return this;
    }
    if (this.attached.has(server)) return this;
    this.attached.add(server);
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      this.handleUpgrade(req, socket, head).catch((err: unknown) => {
        this.log.error({ err }, 'upgrade failed');
        socket.destroy();
      });
    });
    const event = 'setSecureContext' in server ? 'secureConnection' : 'connection';
    server.on(event, (socket: Socket) => this.trackHandshake(socket));
    server.on('request', (req: IncomingMessage) => this.handshakeDone(req.socket));
    return this;
  }

  /**
   * Starts a standalone http (or https, with `tls`) server for this WebSocketServer.
   * `http2: true`: an HTTP/2 server (h2 with `tls`, else h2c) serving RFC 8441 too.
   */
  async listen(port: number, host?: string, opts: { http2?: boolean } = {}): Promise<AddressInfo> {
    if (this.ownServer !== undefined || this.ownHttp2 !== undefined)
      throw new Error('listen() was already called');
    const tls = this.options.tls;
    if (opts.http2 === true) {
      const h2 = createHttp2Server(tls, this.handshakeTimeout);
      this.ownHttp2 = h2;
      this.attach(h2);
      await new Promise<void>((resolve, reject) => {
        h2.once('error', reject);
        h2.listen(port, host, () => {
          h2.off('error', reject);
          resolve();
        });
      });
      return h2.address() as AddressInfo;
    }
    const server = tls
      ? createHttpsServer({ ...tls, handshakeTimeout: this.handshakeTimeout })
      : createHttpServer();
    server.on('request', (req, res) => {
      let status = 426;
      let body = 'Upgrade Required: this endpoint speaks WebSocket.\n';
      let headers: Record<string, string> = { Upgrade: 'websocket' };
      // A handshake missing its Upgrade or Connection token arrives here, not at 'upgrade':
      // answer it like any other invalid handshake (400 and the reason), not with 426.
      if (req.headers.upgrade !== undefined || req.headers['sec-websocket-key'] !== undefined) {
        try {
          validateRequest({
            method: req.method ?? '',
            httpVersion: req.httpVersion,
            url: req.url,
            headers: req.headers,
          });
        } catch (err) {
          if (err instanceof HandshakeError)
            [status, body, headers] = [err.status, `${err.message}\n`, err.headers];
        }
      }
      res.writeHead(status, {
        ...headers,
        'Content-Type': 'text/plain; charset=utf-8',
        'Content-Length': String(Buffer.byteLength(body)),
        Connection: 'close',
      });
      res.end(body);
    });
    this.ownServer = server;
    this.attach(server);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return server.address() as AddressInfo;
  }

  /** The standalone server started by listen(), if any. */
  get server(): HttpServer | HttpsServer | AnyHttp2Server | undefined {
    return this.ownServer ?? this.ownHttp2;
  }

  /**
   * Handles one upgrade request (from an 'upgrade' event or a framework). Answers it with
   * 101 and returns the connection, or with an HTTP refusal and returns null. Never throws
   * for bad input: every refusal is an HTTP answer.
   */
  async handleUpgrade(
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    handler?: Handler,
    context: UpgradeContext = {},
  ): Promise<WebSocket | null> {
    this.trackHandshake(socket);
    socket.on('error', onEarlyError);
    try {
      return await this.upgrade(req, socket, head, handler, context);
    } catch (err) {
      this.log.error({ err }, 'unexpected error during the handshake');
      this.refuse(socket, 500, 'Internal Server Error');
      return null;
    } finally {
      socket.off('error', onEarlyError);
    }
  }

  private async upgrade(
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    explicitHandler: Handler | undefined,
    context: UpgradeContext,
  ): Promise<WebSocket | null> {
    if (socket.destroyed) return null;
    const url = req.url ?? '/';
    const path = originForm(url).split('?', 1)[0]!;
    let route: Route | undefined;
    if (explicitHandler === undefined) {
      route = this.routes.find((r) => r.regex.test(path));
      if (route === undefined) {
        this.refuse(socket, 404, `No WebSocket route for ${path}`);
        return null;
      }
    }
    const opts: RouteOptions = { ...this.options, ...route?.options, ...context.route };

    let validated: ReturnType<typeof validateRequest>;
    try {
      validated = validateRequest({
        method: req.method ?? '',
        httpVersion: req.httpVersion,
        url,
        headers: req.headers,
      });
    } catch (err) {
      if (err instanceof HandshakeError) {
        this.refuse(socket, err.status, err.message, err.headers);
        return null;
      }
      throw err;
    }
    // Capacity: checked before anything is built for this request, answered 503 with
    // Retry-After (RFC 9110 §10.2.3) so that well-behaved clients back off.
    const busy = (body: string) => {
      this.refuse(socket, 503, body, { 'Retry-After': this.retryAfter });
      return null;
    };
    if (this.closing) return busy('The server is shutting down');
    if (this.clientSet.size + this.upgrading >= this.maxConnections) return busy('Too many connections');
    if (this.upgrading >= this.maxPendingHandshakes) return busy('Too many handshakes in progress');
    const address =
      this.maxConnectionsPerIp === Number.POSITIVE_INFINITY
        ? undefined
        : addressKey(req.socket?.remoteAddress ?? (socket as Partial<Socket>).remoteAddress);
    if (address !== undefined && (this.perAddress.get(address) ?? 0) >= this.maxConnectionsPerIp) {
      return busy('Too many connections from this address');
    }

    const upgradeReq = buildUpgradeRequest(req, {
      protocols: validated.protocols,
      extensions: validated.extensions,
      ...(context.params ? { params: context.params } : {}),
    });
    // The slot is held while acceptConnection runs, and freed when the socket goes away
    // (handshakeTimeout) even if acceptConnection never settles.
    this.upgrading++;
    let holding = true;
    const release = () => {
      if (holding) this.upgrading--;
      holding = false;
    };
    // The address's count is held until the connection closes (or the upgrade fails).
    let addressHeld = address !== undefined;
    if (address !== undefined) this.countAddress(address, 1);
    const releaseAddress = () => {
      if (addressHeld && address !== undefined) this.countAddress(address, -1);
      addressHeld = false;
    };
    socket.once('close', release);
    socket.once('close', releaseAddress);
    const takeAddress = () => {
      // Handed over to the connection: its close releases the address.
      socket.off('close', releaseAddress);
      const held = addressHeld;
      addressHeld = false;
      return held ? address : undefined;
    };
    try {
      let accepted: boolean;
      try {
        accepted = opts.acceptConnection
          ? await opts.acceptConnection(upgradeReq)
          : checkOrigin(upgradeReq, opts.origins);
      } catch (err) {
        this.log.error({ err }, 'acceptConnection threw: refusing');
        accepted = false;
      } finally {
        release();
        socket.off('close', release);
      }
      if (socket.destroyed) return null;
      if (!accepted) {
        this.deny(socket, upgradeReq, opts);
        return null;
      }
      if (this.closing) {
        // close() began while acceptConnection ran: it must not be outlived.
        this.refuse(socket, 503, 'The server is shutting down', { 'Retry-After': this.retryAfter });
        return null;
      }

      const protocol = opts.protocols ? selectSubprotocol(validated.protocols, opts.protocols) : undefined;
      let extensions = '';
      let compressor: ReturnType<typeof createPerMessageDeflate> | undefined;
      const deflate = deflateOptions(opts.perMessageDeflate);
      if (deflate !== undefined) {
        const agreed = negotiate(validated.extensions, deflate);
        if (agreed !== null) {
          extensions = formatExtensions([agreed.response]);
          compressor = createPerMessageDeflate(agreed.params, 'server', deflate);
        }
      }

      const response = buildAcceptResponse({
        key: validated.key,
        ...(protocol !== undefined ? { protocol } : {}),
        extensions,
      });
      this.handshakeDone(socket);
      socket.write(response);
      const ws = new WebSocket({
        side: 'server',
        socket,
        options: resolveConnectionOptions(opts),
        ...(protocol !== undefined ? { protocol } : {}),
        extensions,
        ...(compressor ? { compressor } : {}),
        path,
        head,
        logger: opts.logger || opts.logLevel ? createLogger(opts.logger, opts.logLevel) : this.log,
        hub: this,
      });
      this.clientSet.add(ws);
      const owned = takeAddress();
      if (owned !== undefined) {
        // A connection already closed (its socket died during construction) was counted out.
        if (ws.readyState === WebSocket.CLOSED) this.countAddress(owned, -1);
        else this.addressOf.set(ws, owned);
      }

      this.log.debug({ path, remote: ws.remoteAddress, protocol, extensions }, 'connection open');

      const handler = explicitHandler ?? route?.handler ?? noopHandler;
      try {
        const result = handler(ws, upgradeReq);
        if (result instanceof Promise) result.catch((err: unknown) => ws.handlerFailed(err));
      } catch (err) {
        ws.handlerFailed(err);
      }
      return ws;
    } finally {
      socket.off('close', releaseAddress);
      releaseAddress();
    }
  }

  private deny(socket: Duplex, req: UpgradeRequest, opts: RouteOptions): void {
    let replied = false;
    const answer = (
      status: number,
      body: string,
      headers: Record<string, string> | undefined,
      verbatim: boolean,
    ) => {
      if (replied) return;
      replied = true;
      this.refuse(socket, status, body, headers, verbatim);
    };
    // The hook's body is sent byte for byte.
    const reply: Reply = (status, body = '', headers) => answer(status, body, headers, true);
    try {
      if (opts.accessDenied) opts.accessDenied(req, reply);
    } catch (err) {
      this.log.error({ err }, 'accessDenied threw');
    }
    answer(403, 'Access denied', undefined, false); // the default, when the hook did not reply
  }

  /** Answers with an HTTP error and closes the socket. */
  private refuse(
    socket: Duplex,
    status: number,
    body: string,
    headers?: Record<string, string>,
    verbatim = false,
  ): void {
    this.handshakeDone(socket);
    this.log.debug({ status, body }, 'upgrade refused');
    if (socket.destroyed) return;
    let response: string;
    try {
      response = buildRejectionResponse(status, verbatim ? body : `${body}\n`, headers);
    } catch {
      response = buildRejectionResponse(500, 'Internal Server Error\n');
    }
    // The socket outlives this call while the answer drains: a reset now must not
    // become an unhandled 'error' event.
    socket.on('error', onEarlyError);
    socket.end(response);
    // Don't wait forever for a peer that doesn't read its answer.
    setTimeout(() => socket.destroy(), 1000).unref();
  }

  private trackHandshake(socket: Duplex): void {
    if (this.handshakeTimeout <= 0) return;
    // null: an earlier request on this keep-alive connection finished; time this one anew.
    // (No 'close' listener: a timer that fires for a socket already gone does nothing,
    // and a listener would stay attached for the connection's whole life.)
    if (this.pendingHandshakes.has(socket) && this.pendingHandshakes.get(socket) !== null) return;
    const timer = setTimeout(() => {
      if (socket.destroyed) return;
      this.log.debug({ handshakeTimeout: this.handshakeTimeout }, 'handshake timeout: dropping the socket');
      socket.destroy();
    }, this.handshakeTimeout);
    timer.unref();
    this.pendingHandshakes.set(socket, timer);
  }

  private handshakeDone(socket: Duplex): void {
    const timer = this.pendingHandshakes.get(socket);
    if (timer) clearTimeout(timer);
    this.pendingHandshakes.set(socket, null);
  }

  /**
   * Graceful shutdown: refuses new upgrades, sends `code` (going-away) to every client,
   * and resolves when all are closed (each within its closeTimeout) and the standalone
   * server, if any, has stopped.
   */
  async close(code: number = CloseCode.GOING_AWAY, reason = ''): Promise<void> {
    this.closing = true;
    const all = [...this.clientSet].map((ws) => ws.close(code, reason).catch(() => ws.terminate()));
    await Promise.all(all);
    await this.fanoutHooks?.close?.();
    if (this.ownHttp2 !== undefined) await closeHttp2Server(this.ownHttp2);
    const server = this.ownServer;
    if (server !== undefined) {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections?.();
      });
    }
  }
}

function validateRouteOptions(options: RouteOptions): void {
  resolveConnectionOptions(options);
}

function noopCatch(): void {}

function onEarlyError(): void {
  // A socket error before the connection exists: the socket is destroyed, nothing to do.
}

function deflateOptions(option: DeflateOption | undefined): PerMessageDeflateOptions | undefined {
  if (option === undefined || option === false) return undefined;
  return option === true ? {} : option;
}

/** Throws RangeError/TypeError now for options that could never be used to compress. */
function checkDeflateOption(option: DeflateOption | undefined): void {
  const options = deflateOptions(option);
  if (options !== undefined) validateDeflateOptions(options, 'server');
}

export { deflateOptions };
