import {
  createServer as createHttpServer,
  type Server as HttpServer,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { CloseCode } from '../protocol/close-codes.js';
import { Opcode } from '../protocol/frame.js';
import { encodeFrame } from '../protocol/frame-writer.js';
import { compileGlob, globMatch } from '../protocol/glob.js';
import { answerPlainRequest, checkDeflateOption, Upgrader } from './accept-upgrade.js';
import { type CloseInfo, type TopicHub, WebSocket } from './connection.js';
import type { Fanout, FanoutTarget, PublishOptions } from './fanout.js';
import { PendingUpgrade } from './framework-upgrade.js';
import { Http2Exchange, refusalEndsStream } from './http2-exchange.js';
import {
  type AnyHttp2Server,
  closeHttp2Server,
  createHttp2Server,
  isHttp2Server,
  onExtendedConnect,
} from './http2-server.js';
import { createLogger, type Logger } from './logger.js';
import { type Data, toPayload } from './message.js';
import { DEFAULTS, resolveConnectionOptions } from './options.js';
import type { Handler, RouteOptions, ServerOptions, UpgradeContext } from './server-types.js';
import { type ServerStats, ServerTotals } from './stats.js';
import { Http1Exchange, type UpgradeExchange } from './upgrade-exchange.js';
import { createUpgradeResponse } from './upgrade-response.js';

export { deflateOptions } from './accept-upgrade.js';
export { addressKey, SERVER_DEFAULTS } from './admission.js';
export type {
  AccessHooks,
  Handler,
  Reply,
  RouteOptions,
  ServerOptions,
  UpgradeContext,
} from './server-types.js';

interface Route {
  pattern: string;
  regex: RegExp;
  handler: Handler;
  options: RouteOptions;
}

/**
 * A WebSocket server: routes upgrade requests to handlers. Use it standalone (listen),
 * on an existing http/https server (attach), or from a framework (handleUpgrade).
 */
export class WebSocketServer implements TopicHub, FanoutTarget {
  readonly options: ServerOptions;
  private readonly routes: Route[] = [];
  private readonly clientSet = new Set<WebSocket>();
  private readonly totals = new ServerTotals();
  private readonly topicIndex = new Map<string, Set<WebSocket>>();
  private readonly log: Logger;
  private readonly upgrader: Upgrader;
  private ownServer: HttpServer | HttpsServer | AnyHttp2Server | undefined;
  private attached = new Set<HttpServer | HttpsServer | AnyHttp2Server>();
  private closing = false;
  private fanoutHooks: Fanout | undefined;

  constructor(options: ServerOptions = {}) {
    validateRouteOptions(options); // bad options fail here, not on every upgrade
    checkDeflateOption(options.perMessageDeflate);
    this.options = options;
    this.log = createLogger(options.logger, options.logLevel);
    this.upgrader = new Upgrader({
      options,
      log: this.log,
      hub: this,
      isClosing: () => this.closing,
      openConnections: () => this.clientSet.size,
      findRoute: (path) => this.routes.find((r) => r.regex.test(path)),
      opened: (ws) => this.clientSet.add(ws),
      totals: this.totals,
      server: this,
    });
    if (options.fanout !== undefined) this.setFanout(options.fanout);
  }

  /** Open connections by route and transport, message and byte totals, close codes seen. */
  stats(): ServerStats {
    return this.totals.snapshot(this.clientSet);
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

  /** @internal The connection is closed: it leaves `clients`, its counters join the totals. */
  connectionClosed(ws: WebSocket, info?: CloseInfo, sentCode?: number, receivedClose = false): void {
    if (info !== undefined && this.clientSet.has(ws)) this.totals.closed(ws, info, sentCode, receivedClose);
    this.clientSet.delete(ws);
    this.upgrader.admission.connectionClosed(ws);
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

  /**
   * Listens to `server`'s 'upgrade' events (and times out stalled handshakes). On an
   * HTTP/2 server, also serves WebSockets over HTTP/2 (RFC 8441 extended CONNECT); with
   * `allowHTTP1`, HTTP/1.1 Upgrades keep arriving as 'upgrade'.
   */
  attach(server: HttpServer | HttpsServer | AnyHttp2Server): this {
    if (this.attached.has(server)) return this;
    this.attached.add(server);
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      this.handleUpgrade(req, socket, head).catch((err: unknown) => {
        this.log.error({ err }, 'upgrade failed');
        socket.destroy();
      });
    });
    if (isHttp2Server(server)) {
      // The TLS handshakeTimeout covers the session; each stream is timed from its CONNECT.
      onExtendedConnect(server, (req) => {
        const exchange = new Http2Exchange(req);
        this.handleExchange(exchange).catch((err: unknown) => {
          this.log.error({ err }, 'extended CONNECT failed');
          exchange.stream.destroy();
        });
      });
      return this;
    }
    const event = 'setSecureContext' in server ? 'secureConnection' : 'connection';
    const timers = this.upgrader.timers;
    server.on(event, (socket: Socket) => timers.track(socket));
    server.on('request', (req: IncomingMessage) => timers.done(req.socket));
    return this;
  }

  /**
   * Starts a standalone http (or https, with `tls`) server for this WebSocketServer.
   * `http2: true`: an HTTP/2 server (h2 and HTTP/1.1 with `tls`, else h2c) serving RFC 8441.
   */
  async listen(port: number, host?: string, opts: { http2?: boolean } = {}): Promise<AddressInfo> {
    if (this.ownServer !== undefined) throw new Error('listen() was already called');
    const tls = this.options.tls;
    const handshakeTimeout = this.options.handshakeTimeout ?? DEFAULTS.handshakeTimeout;
    let server: HttpServer | HttpsServer | AnyHttp2Server;
    if (opts.http2 === true) server = createHttp2Server(tls, handshakeTimeout);
    else {
      server = tls ? createHttpsServer({ ...tls, handshakeTimeout }) : createHttpServer();
      server.on('request', answerPlainRequest);
    }
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
    return this.ownServer;
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
    return this.upgrader.handle(new Http1Exchange(req, socket, head), handler, context);
  }

  /** @internal The handshake of one upgrade, over HTTP/1.1 or HTTP/2. */
  handleExchange(
    exchange: UpgradeExchange,
    handler?: Handler,
    context: UpgradeContext = {},
  ): Promise<WebSocket | null> {
    return this.upgrader.handle(exchange, handler, context);
  }

  /**
   * For framework adapters: an upgrade request the framework is about to route. Its
   * middleware may refuse it through `pending.res`; a WebSocket route calls
   * `pending.accept(handler, context)`, which does everything else (origin check, 101 or
   * refusal, the connection). The handshakeTimeout runs from now.
   */
  beginUpgrade(
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
  ): PendingUpgrade<IncomingMessage, ServerResponse>;
  /** The same for an extended CONNECT (RFC 8441), with the request and response Node made for it. */
  beginUpgrade(
    req: Http2ServerRequest,
    res: Http2ServerResponse,
  ): PendingUpgrade<Http2ServerRequest, Http2ServerResponse>;
  beginUpgrade(
    req: IncomingMessage | Http2ServerRequest,
    socketOrRes: Duplex | Http2ServerResponse,
    head?: Buffer,
  ): PendingUpgrade {
    const handle = (e: UpgradeExchange, fn: Handler, c: UpgradeContext) => this.handleExchange(e, fn, c);
    const timers = this.upgrader.timers;
    if (head === undefined) {
      const res = socketOrRes as Http2ServerResponse;
      const exchange = new Http2Exchange(req as Http2ServerRequest);
      // Routers match GET routes: RFC 8441 §5 has the extended CONNECT stand for the GET of
      // the HTTP/1.1 handshake. Only `method` says so; the headers keep :method CONNECT.
      Object.defineProperty(req, 'method', {
        value: 'GET',
        configurable: true,
        enumerable: true,
        writable: true,
      });
      const response = { res, release: refusalEndsStream(res) };
      return new PendingUpgrade(exchange, response, handle, timers, this.log);
    }
    const socket = socketOrRes as Duplex;
    const exchange = new Http1Exchange(req as IncomingMessage, socket, head);
    const response = createUpgradeResponse(req as IncomingMessage, socket);
    return new PendingUpgrade(exchange, response, handle, timers, this.log);
  }

  /**
   * For framework adapters: calls `route` with each upgrade request `server` receives, as
   * a PendingUpgrade for the framework to route: HTTP/1.1 Upgrades ('upgrade') and, on an
   * HTTP/2 server, extended CONNECTs (RFC 8441, advertised in the server's SETTINGS).
   */
  routeUpgrades(
    server: HttpServer | HttpsServer | AnyHttp2Server,
    route: (pending: PendingUpgrade) => void,
  ): this {
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      route(this.beginUpgrade(req, socket, head));
    });
    if (isHttp2Server(server)) onExtendedConnect(server, (req, res) => route(this.beginUpgrade(req, res)));
    return this;
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
    const server = this.ownServer;
    if (server !== undefined && isHttp2Server(server)) await closeHttp2Server(server);
    else if (server !== undefined) {
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
