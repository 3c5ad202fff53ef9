import type { IncomingMessage, ServerResponse } from 'node:http';
import { HandshakeError } from '../protocol/errors.js';
import { formatExtensions } from '../protocol/extensions.js';
import { selectSubprotocol, validateRequest } from '../protocol/handshake.js';
import {
  negotiate,
  type PerMessageDeflateOptions,
  validateDeflateOptions,
} from '../protocol/permessage-deflate.js';
import { Admission } from './admission.js';
import { type ResolvedConnectionOptions, type Stage, type TopicHub, WebSocket } from './connection.js';
import { createPerMessageDeflate } from './deflate.js';
import type { DiagnosticsServer } from './diagnostics.js';
import * as diag from './diagnostics.js';
import { HandshakeTimers } from './handshake-timer.js';
import { createLogger, type Logger } from './logger.js';
import { DEFAULTS, type DeflateOption, resolveConnectionOptions } from './options.js';
import { defaultAcceptance } from './origin-guard.js';
import type { Handler, Reply, RouteOptions, ServerOptions, UpgradeContext } from './server-types.js';
import { defaultStages } from './stages.js';
import type { ServerTotals } from './stats.js';
import type { UpgradeExchange } from './upgrade-exchange.js';
import { buildUpgradeRequest, originForm, type UpgradeRequest } from './upgrade-request.js';

/** What the WebSocketServer lends to the handshake. */
export interface UpgradeHost {
  readonly options: ServerOptions;
  readonly log: Logger;
  readonly hub: TopicHub;
  isClosing(): boolean;
  openConnections(): number;
  findRoute(path: string): { pattern: string; handler: Handler; options: RouteOptions } | undefined;
  /** A connection completed its handshake. */
  opened(ws: WebSocket): void;
  /** Handshake counters (stats()) and the server named in diagnostics events. */
  readonly totals: ServerTotals;
  readonly server: DiagnosticsServer;
}

/** What the connections of one route share (see Upgrader.settingsFor). */
interface RouteSettings {
  opts: RouteOptions;
  connection: ResolvedConnectionOptions;
  stages: readonly Stage[];
  logger: Logger;
  deflate: PerMessageDeflateOptions | undefined;
}

/**
 * The server side of the opening handshake (RFC 6455 §4.2), once per upgrade request:
 * validation, capacity, the access decision (acceptConnection, or the origin check),
 * subprotocol and extension negotiation, the acceptance or the HTTP refusal (each
 * spoken by the exchange: bytes on an HTTP/1.1 socket, or HTTP/2 response HEADERS), the
 * handshake timer, and the new connection handed to its handler.
 */
export class Upgrader {
  readonly timers: HandshakeTimers;
  readonly admission: Admission;
  private readonly settings = new WeakMap<object, RouteSettings>();

  constructor(private readonly host: UpgradeHost) {
    this.timers = new HandshakeTimers(host.options.handshakeTimeout ?? DEFAULTS.handshakeTimeout, host.log);
    this.admission = new Admission(host.options);
  }

  /** See WebSocketServer.handleUpgrade. Never throws: every failure is an HTTP answer. */
  async handle(
    exchange: UpgradeExchange,
    handler: Handler | undefined,
    context: UpgradeContext,
  ): Promise<WebSocket | null> {
    const socket = exchange.stream;
    this.timers.track(socket);
    socket.on('error', onEarlyError);
    try {
      const req = exchange.req as IncomingMessage;
      if (diag.handshakeObserved()) diag.publishHandshakeStart(this.host.server, req, socket);
      const upgrade = () => this.upgrade(exchange, handler, context);
      return await diag.traceHandshake(this.host.server, req, socket, upgrade);
    } catch (err) {
      this.host.log.error({ err }, 'unexpected error during the handshake');
      this.refuse(exchange, 500, 'Internal Server Error');
      return null;
    } finally {
      socket.off('error', onEarlyError);
    }
  }

  private async upgrade(
    exchange: UpgradeExchange,
    explicitHandler: Handler | undefined,
    context: UpgradeContext,
  ): Promise<WebSocket | null> {
    const { req, stream: socket } = exchange;
    if (socket.destroyed) return null;
    const url = req.url ?? '/';
    const path = originForm(url).split('?', 1)[0] ?? '/';
    const route = explicitHandler === undefined ? this.host.findRoute(path) : undefined;
    if (explicitHandler === undefined && route === undefined) {
      this.refuse(exchange, 404, `No WebSocket route for ${path}`);
      return null;
    }
    const settings = this.settingsFor(route, context.route);
    const opts = settings.opts;

    let validated: ReturnType<typeof validateRequest>;
    try {
      validated = exchange.validate();
    } catch (err) {
      if (!(err instanceof HandshakeError)) throw err;
      this.refuse(exchange, err.status, err.message, err.headers);
      return null;
    }
    // Capacity: checked before anything is built for this request, answered 503 with
    // Retry-After (RFC 9110 §10.2.3) so that well-behaved clients back off.
    const address = this.admission.addressFor(req, socket);
    const busy = this.host.isClosing()
      ? 'The server is shutting down'
      : this.admission.busy(this.host.openConnections(), address);
    if (busy !== undefined) {
      this.refuse(exchange, 503, busy, { 'Retry-After': this.admission.retryAfter });
      return null;
    }

    const upgradeReq = buildUpgradeRequest(req, {
      protocols: validated.protocols,
      extensions: validated.extensions,
      params: context.params,
    });
    const ticket = this.admission.hold(socket, address);
    try {
      let accepted: boolean;
      try {
        accepted = opts.acceptConnection
          ? await opts.acceptConnection(upgradeReq)
          : defaultAcceptance(upgradeReq, opts.origins);
      } catch (err) {
        this.host.log.error({ err }, 'acceptConnection threw: refusing');
        accepted = false;
      } finally {
        ticket.endPending();
      }
      if (socket.destroyed) return null;
      if (!accepted) {
        this.deny(exchange, upgradeReq, opts);
        return null;
      }
      if (this.host.isClosing()) {
        // close() began while acceptConnection ran: it must not be outlived.
        const retry = { 'Retry-After': this.admission.retryAfter };
        this.refuse(exchange, 503, 'The server is shutting down', retry);
        return null;
      }

      const protocol = opts.protocols ? selectSubprotocol(validated.protocols, opts.protocols) : undefined;
      let extensions = '';
      let compressor: ReturnType<typeof createPerMessageDeflate> | undefined;
      const deflate = settings.deflate;
      if (deflate !== undefined) {
        const agreed = negotiate(validated.extensions, deflate);
        if (agreed !== null) {
          extensions = formatExtensions([agreed.response]);
          compressor = createPerMessageDeflate(agreed.params, 'server', deflate);
        }
      }

      exchange.accept({ key: validated.key, ...(protocol !== undefined ? { protocol } : {}), extensions });
      this.timers.done(socket);
      const ws = new WebSocket({
        side: 'server',
        socket,
        options: settings.connection,
        stages: settings.stages,
        ...(protocol !== undefined ? { protocol } : {}),
        extensions,
        ...(compressor ? { compressor } : {}),
        path,
        head: exchange.head,
        transport: exchange.transport,
        logger: settings.logger,
        hub: this.host.hub,
        route: route?.pattern ?? context.pattern ?? '',
      });
      this.host.opened(ws);
      this.host.totals.accepted++;
      if (diag.handshakeObserved())
        diag.publishHandshakeAccept(this.host.server, exchange.req as IncomingMessage, socket, ws);
      ticket.adopt(ws);
      this.host.log.debug({ path, remote: ws.remoteAddress, protocol, extensions }, 'connection open');

      const handler = explicitHandler ?? route?.handler ?? noopHandler;
      try {
        const result = handler(ws, upgradeReq);
        if (result instanceof Promise) result.catch((err: unknown) => ws.handlerFailed(err));
      } catch (err) {
        ws.handlerFailed(err);
      }
      return ws;
    } finally {
      ticket.release();
    }
  }

  /**
   * The options of a route merged over the server's, with what every connection of the
   * route shares (resolved options, default stages, logger): computed once per route (or
   * per adapter route options object), not per upgrade.
   */
  private settingsFor(route: object | undefined, routeOptions: RouteOptions | undefined): RouteSettings {
    const key = routeOptions === undefined ? (route ?? this) : route === undefined ? routeOptions : undefined;
    let settings = key === undefined ? undefined : this.settings.get(key);
    if (settings === undefined) {
      const found = route as { options?: RouteOptions } | undefined;
      const opts: RouteOptions = { ...this.host.options, ...found?.options, ...routeOptions };
      const connection = resolveConnectionOptions(opts);
      settings = {
        opts,
        connection,
        stages: Object.freeze(defaultStages(connection)),
        logger: opts.logger || opts.logLevel ? createLogger(opts.logger, opts.logLevel) : this.host.log,
        deflate: deflateOptions(opts.perMessageDeflate),
      };
      if (key !== undefined) this.settings.set(key, settings);
    }
    return settings;
  }

  private deny(exchange: UpgradeExchange, req: UpgradeRequest, opts: RouteOptions): void {
    let replied = false;
    const answer = (
      status: number,
      body: string,
      headers: Record<string, string> | undefined,
      verbatim: boolean,
    ) => {
      if (replied) return;
      replied = true;
      this.refuse(exchange, status, body, headers, verbatim);
    };
    // The hook's body is sent byte for byte.
    const reply: Reply = (status, body = '', headers) => answer(status, body, headers, true);
    try {
      if (opts.accessDenied) opts.accessDenied(req, reply);
    } catch (err) {
      this.host.log.error({ err }, 'accessDenied threw');
    }
    answer(403, 'Access denied', undefined, false); // the default, when the hook did not reply
  }

  /** Answers with an HTTP error and ends the exchange (the socket, or the stream). */
  refuse(
    exchange: UpgradeExchange,
    status: number,
    body: string,
    headers?: Record<string, string>,
    verbatim = false,
  ): void {
    this.timers.done(exchange.stream);
    this.host.totals.refused++;
    if (diag.handshakeObserved())
      diag.publishHandshakeRefuse(this.host.server, exchange.stream, status, body);
    this.host.log.debug({ status, body, transport: exchange.transport }, 'upgrade refused');
    exchange.refuse(status, verbatim ? body : `${body}\n`, headers);
  }
}

/**
 * The answer of a standalone server (listen()) to a plain HTTP request: 426 Upgrade
 * Required, or 400 and the reason for a handshake missing its Upgrade or Connection
 * token (those arrive as requests, not as 'upgrade' events).
 */
export function answerPlainRequest(req: IncomingMessage, res: ServerResponse): void {
  let status = 426;
  let body = 'Upgrade Required: this endpoint speaks WebSocket.\n';
  let headers: Record<string, string> = { Upgrade: 'websocket' };
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
}

const noopHandler: Handler = () => {};

function onEarlyError(): void {
  // A socket error before the connection exists: the socket is destroyed, nothing to do.
}

export function deflateOptions(option: DeflateOption | undefined): PerMessageDeflateOptions | undefined {
  if (option === undefined || option === false) return undefined;
  return option === true ? {} : option;
}

/** Throws RangeError/TypeError now for options that could never be used to compress. */
export function checkDeflateOption(option: DeflateOption | undefined): void {
  const options = deflateOptions(option);
  if (options !== undefined) validateDeflateOptions(options, 'server');
}
