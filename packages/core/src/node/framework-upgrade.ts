import type { ServerResponse } from 'node:http';
import type { Http2ServerResponse } from 'node:http2';
import type { Duplex } from 'node:stream';
import type { WebSocket } from './connection.js';
import type { HandshakeTimers } from './handshake-timer.js';
import type { Logger } from './logger.js';
import type { Handler, UpgradeContext } from './server-types.js';
import type { RawUpgradeRequest, UpgradeExchange } from './upgrade-exchange.js';

/** A WebSocketServer, as far as accept() needs one. */
export interface UpgradeTarget {
  /** @internal */
  handleExchange(
    exchange: UpgradeExchange,
    handler: Handler,
    context: UpgradeContext,
  ): Promise<WebSocket | null>;
}

/** The response a framework may refuse an upgrade with, and how to detach it before the handshake. */
export interface UpgradeResponse<Res extends ServerResponse | Http2ServerResponse> {
  res: Res;
  release: () => void;
}

/**
 * An upgrade request that a web framework is routing (from `wss.beginUpgrade()`). The
 * framework runs its router, hooks and middleware with `req` and `res`: `res` writes an
 * ordinary HTTP answer (a middleware's 401, the framework's 404 or error page): onto the
 * socket, which is then closed, or as the HTTP/2 response of the extended CONNECT stream.
 * When a WebSocket route is reached, the adapter calls `accept()`, and the core takes
 * over: origin check and access hooks, the acceptance or the refusal, the connection and
 * its handler. From the first byte to the answer, the server's handshakeTimeout applies.
 */
export class PendingUpgrade<
  Req extends RawUpgradeRequest = RawUpgradeRequest,
  Res extends ServerResponse | Http2ServerResponse = ServerResponse | Http2ServerResponse,
> {
  /** The HTTP response the framework may answer (refuse) the upgrade with. */
  readonly res: Res;
  private readonly release: () => void;
  private accepted = false;

  /** @internal Made by WebSocketServer.beginUpgrade(). */
  constructor(
    private readonly exchange: UpgradeExchange,
    response: UpgradeResponse<Res>,
    private readonly handleExchange: UpgradeTarget['handleExchange'],
    private readonly timers: HandshakeTimers,
    private readonly log: Logger,
  ) {
    const socket = exchange.stream;
    // Node leaves an upgraded socket without 'error' listener: a reset while the
    // framework routes (or while a refusal drains) must not crash the process.
    socket.on('error', ignore);
    timers.track(socket);
    this.res = response.res;
    this.release = response.release;
    this.res.once('finish', () => timers.done(socket));
  }

  /** The request: an IncomingMessage (HTTP/1.1) or an Http2ServerRequest (RFC 8441). */
  get req(): Req {
    return this.exchange.req as Req;
  }

  /** The byte stream the WebSocket will use: the socket, or the HTTP/2 stream. */
  get socket(): Duplex {
    return this.exchange.stream;
  }

  /** 'http/1.1', or 'h2' for an extended CONNECT. */
  get transport(): UpgradeExchange['transport'] {
    return this.exchange.transport;
  }

  /** True once accept() ran, or the framework answered the request with `res`. */
  get handled(): boolean {
    return this.accepted || this.answered;
  }

  private get answered(): boolean {
    return this.res.headersSent || this.res.writableEnded;
  }

  /**
   * The framework's router chose a WebSocket route: performs the handshake and runs
   * `handler`. Resolves with the connection, or null when the upgrade was refused (an
   * HTTP answer went out) or when it was already handled (a middleware answered and
   * still passed the request on: that answer stands). `server`: another WebSocketServer
   * than the one that began the upgrade does the handshake (with its own options).
   */
  async accept(
    handler: Handler,
    context: UpgradeContext = {},
    server?: UpgradeTarget,
  ): Promise<WebSocket | null> {
    if (this.handled || this.socket.destroyed) return null;
    this.accepted = true;
    this.release();
    try {
      if (server === undefined) return await this.handleExchange(this.exchange, handler, context);
      this.timers.done(this.socket); // the other server times the rest itself
      return await server.handleExchange(this.exchange, handler, context);
    } catch (err) {
      this.log.error({ err }, 'upgrade failed');
      this.socket.destroy();
      return null;
    }
  }

  /** The framework failed to route the request: 500, unless an answer already began. */
  fail(err: unknown): void {
    this.log.error({ err }, 'the framework failed to route an upgrade request');
    if (this.accepted) return;
    if (this.res.headersSent) {
      this.socket.destroy();
      return;
    }
    this.res.statusCode = 500;
    this.res.end('Internal Server Error\n');
  }
}

function ignore(): void {}
