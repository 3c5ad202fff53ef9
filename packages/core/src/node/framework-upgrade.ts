import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocket } from './connection.js';
import type { HandshakeTimers } from './handshake-timer.js';
import type { Logger } from './logger.js';
import type { Handler, UpgradeContext } from './server-types.js';
import { createUpgradeResponse } from './upgrade-response.js';

type HandleUpgrade = (
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  handler: Handler,
  context: UpgradeContext,
) => Promise<WebSocket | null>;

/** A WebSocketServer, as far as accept() needs one. */
export interface UpgradeTarget {
  handleUpgrade(
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    handler: Handler,
    context: UpgradeContext,
  ): Promise<WebSocket | null>;
}

/**
 * An upgrade request that a web framework is routing (from `wss.beginUpgrade()`). The
 * framework runs its router, hooks and middleware with `req` and `res`: `res` writes an
 * ordinary HTTP answer onto the socket (a middleware's 401, the framework's 404 or error
 * page), after which the socket is closed. When a WebSocket route is reached, the
 * adapter calls `accept()`, and the core takes over: origin check and access hooks, the
 * 101 or the refusal, the connection and its handler. From the first byte to the answer,
 * the server's handshakeTimeout applies.
 */
export class PendingUpgrade {
  /** The HTTP response the framework may answer (refuse) the upgrade with. */
  readonly res: ServerResponse;
  private readonly release: () => void;
  private accepted = false;

  /** @internal Made by WebSocketServer.beginUpgrade(). */
  constructor(
    readonly req: IncomingMessage,
    readonly socket: Duplex,
    readonly head: Buffer,
    private readonly handleUpgrade: HandleUpgrade,
    private readonly timers: HandshakeTimers,
    private readonly log: Logger,
  ) {
    // Node leaves an upgraded socket without 'error' listener: a reset while the
    // framework routes (or while a refusal drains) must not crash the process.
    socket.on('error', ignore);
    timers.track(socket);
    const { res, release } = createUpgradeResponse(req, socket);
    this.res = res;
    this.release = release;
    res.once('finish', () => timers.done(socket));
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
      if (server === undefined)
        return await this.handleUpgrade(this.req, this.socket, this.head, handler, context);
      this.timers.done(this.socket); // the other server times the rest itself
      return await server.handleUpgrade(this.req, this.socket, this.head, handler, context);
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
