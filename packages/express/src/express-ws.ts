import { type Server as HttpServer, type IncomingMessage, ServerResponse } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import {
  createLogger,
  DEFAULTS,
  type RouteOptions,
  type ServerOptions,
  type UpgradeContext,
  type WebSocket,
  WebSocketServer,
} from '@wskit/core';
import type { Request, RequestHandler, Router } from 'express';
import {
  isRouter,
  kUpgrade,
  kWsRoute,
  type Middleware,
  type Routable,
  routerOf,
  routerPrototype,
  teachLayers,
  type UpgradeRequestMessage,
  type UpgradeState,
  upgradeState,
} from './internals.js';
import { stringParams } from './origin-guard.js';

/** A WebSocket route handler: runs once the handshake succeeded. */
export type WebSocketHandler = (ws: WebSocket, req: Request) => void | Promise<void>;

/**
 * Per-route options, given as the argument right before the handler:
 * acceptConnection / accessDenied / origins, protocols, perMessageDeflate and the
 * connection limits and timeouts. They override the app-level options.
 */
export type WebSocketRouteOptions = RouteOptions;

/** Options of expressWs(): those of the WebSocketServer (they apply to every ws route). */
export type ExpressWsOptions = ServerOptions;

/** Route paths as Express accepts them. */
export type PathParams = string | RegExp | ReadonlyArray<string | RegExp>;

/** Route middleware: functions or (nested) arrays of them, as for app.get(). */
export type WebSocketMiddleware = RequestHandler | readonly WebSocketMiddleware[];

/** `ws(path, ...middleware, [routeOptions], handler)`. */
export interface WebSocketMethod<This> {
  (path: PathParams, ...handlers: [...WebSocketMiddleware[], WebSocketHandler]): This;
  (path: PathParams, ...handlers: [...WebSocketMiddleware[], WebSocketRouteOptions, WebSocketHandler]): This;
}

/** An app or router with ws routes. */
export interface WithWebSocketMethod {
  ws: WebSocketMethod<this>;
}

/**
 * An Express Router with ws(). Every router has ws() once expressWs() ran; TypeScript
 * learns it from `applyTo(router)` or from this type: `express.Router() as WebSocketRouter`.
 */
export type WebSocketRouter = Router & WithWebSocketMethod;

type AnyServer = HttpServer | HttpsServer;

export interface ExpressWs<A extends object> {
  /** The same app, now with `app.ws()`. */
  app: A & WithWebSocketMethod;
  /** The server behind every ws route of this app: clients, publish(), close(). */
  wss: WebSocketServer;
  getWss(): WebSocketServer;
  /** Adds `ws()` to an existing router (or sub-app); its routes use this instance's server. */
  applyTo<R extends object>(target: R): R & WithWebSocketMethod;
  /** Routes the upgrade requests of one more http/https server through the app. */
  attach(server: AnyServer): void;
}

const kInstance: unique symbol = Symbol.for('wskit.express.instance');
const kSharedWs: unique symbol = Symbol.for('wskit.express.sharedWs');

/**
 * Adds WebSocket routes to an Express app: `app.ws('/chat/:room', ...middleware, handler)`,
 * and `router.ws(...)` on routers.
 *
 * Upgrade requests of `server` (or of the servers `app.listen()` creates) go through the
 * app like any request: app-level middleware, mounted routers, route middleware. Only
 * routes made with ws() match them, and ws() routes never match plain HTTP requests. A
 * middleware can refuse the upgrade with an ordinary response (`res.status(401).end()`);
 * no match gets Express's 404 and `next(err)` Express's error response. When a ws route
 * is reached, the handshake is handed to `wss.handleUpgrade()` of @wskit/core.
 *
 * Shutdown: `server.close()` also closes every WebSocket with 1001 (going away);
 * `await wss.close()` resolves once they are all closed.
 */
export function expressWs<A extends object>(
  app: A,
  server?: AnyServer | null,
  options: ExpressWsOptions = {},
): ExpressWs<A> {
  const handle = (app as { handle?: unknown }).handle;
  if (typeof app !== 'function' || typeof handle !== 'function') {
    throw new TypeError('expressWs(app): expected an Express application (express())');
  }
  if ((app as { [kInstance]?: unknown })[kInstance] !== undefined) {
    throw new Error('expressWs() was already called for this app: use the instance it returned');
  }
  const root = routerOf(app);
  teachLayers(root);

  const wss = new WebSocketServer(options);
  const log = createLogger(options.logger, options.logLevel);
  const handshakeTimeout = options.handshakeTimeout ?? DEFAULTS.handshakeTimeout;
  const ownWs = createWsMethod(wss);
  define(app, 'ws', ownWs);
  // Routers share one ws(): their routes use the server that received the request.
  const proto = routerPrototype(root) as { ws?: { [kSharedWs]?: boolean } };
  if (proto.ws?.[kSharedWs] !== true) define(proto, 'ws', createWsMethod(undefined));

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    routeUpgrade(app, handle as AppHandle, wss, req, socket, head, handshakeTimeout, log);
  };
  const hooked = new WeakSet<AnyServer>();
  const attach = (srv: AnyServer): void => {
    if (hooked.has(srv)) return;
    hooked.add(srv);
    srv.on('upgrade', onUpgrade);
    // The server's close() is the framework's close(): it also says going-away to the
    // WebSocket clients, whose sockets would otherwise keep it from closing.
    const close = srv.close;
    define(srv, 'close', function (this: AnyServer, ...args: unknown[]) {
      wss.close().catch((err: unknown) => log.error({ err }, 'closing the WebSocket connections failed'));
      return (close as (...a: unknown[]) => AnyServer).apply(this, args);
    });
  };

  // Without a server: hook the ones app.listen() creates.
  const listen = (app as { listen?: unknown }).listen;
  if (typeof listen === 'function') {
    define(app, 'listen', function (this: unknown, ...args: unknown[]) {
      const srv = (listen as (...a: unknown[]) => unknown).apply(this, args);
      if (isServer(srv)) attach(srv);
      return srv;
    });
  }
  if (server !== undefined && server !== null) attach(server);

  const instance: ExpressWs<A> = {
    app: app as A & WithWebSocketMethod,
    wss,
    getWss: () => wss,
    applyTo<R extends object>(target: R): R & WithWebSocketMethod {
      teachLayers(isRouter(target) ? target : routerOf(target));
      define(target, 'ws', ownWs);
      return target as R & WithWebSocketMethod;
    },
    attach,
  };
  define(app, kInstance, instance);
  return instance;
}

/** Whether `req` is a WebSocket upgrade request being routed by @wskit/express. */
export function isWebSocketRequest(req: IncomingMessage): boolean {
  return upgradeState(req) !== undefined;
}

type AppHandle = (this: unknown, req: IncomingMessage, res: ServerResponse) => void;

/**
 * Runs one upgrade request through the app. The response object writes straight onto the
 * socket, so whatever answers the request (a middleware's refusal, Express's 404 or error
 * handler) becomes the HTTP answer to the upgrade, after which the socket is closed.
 */
function routeUpgrade(
  app: object,
  handle: AppHandle,
  wss: WebSocketServer,
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  handshakeTimeout: number,
  log: ReturnType<typeof createLogger>,
): void {
  // Node removed its own listeners from an upgraded socket: without one, an ECONNRESET
  // while a middleware runs (or while a refusal is flushed) would be an uncaught error.
  socket.on('error', ignore);
  const res = new ServerResponse(req);
  res.shouldKeepAlive = false; // "Connection: close": the socket ends with the answer
  res.assignSocket(socket as Socket);

  let claimed = false;
  const timer =
    handshakeTimeout > 0
      ? setTimeout(() => {
          log.debug({ handshakeTimeout }, 'upgrade not answered in time: dropping the socket');
          socket.destroy();
        }, handshakeTimeout)
      : undefined;
  timer?.unref();
  const stopTimer = (): void => clearTimeout(timer);
  socket.once('close', stopTimer);
  res.once('finish', () => {
    stopTimer();
    if (claimed) return;
    res.detachSocket(socket as Socket);
    socket.end();
    // Don't wait forever for a peer that doesn't close its side.
    setTimeout(() => socket.destroy(), 1000).unref();
  });

  const state: UpgradeState = {
    socket,
    head,
    wss,
    claim() {
      if (claimed || socket.destroyed || res.headersSent || res.writableEnded) return false;
      claimed = true;
      stopTimer();
      res.detachSocket(socket as Socket);
      return true;
    },
  };
  (req as UpgradeRequestMessage)[kUpgrade] = state;

  try {
    handle.call(app, req, res);
  } catch (err) {
    log.error({ err }, 'express failed to route an upgrade request');
    if (claimed) return;
    if (res.headersSent) {
      socket.destroy();
    } else {
      res.statusCode = 500;
      res.end('Internal Server Error\n');
    }
  }
}

/** Builds a ws() method; `bound` fixes the server, else the request's server is used. */
function createWsMethod(bound: WebSocketServer | undefined) {
  const ws = function (this: Routable, path: PathParams, ...args: unknown[]) {
    const { middleware, routeOptions, handler } = parseArguments(args);
    const route = this.route(path);
    route[kWsRoute] = true;
    route.get(...middleware, upgradeHandler(handler, routeOptions, bound));
    return this;
  };
  if (bound === undefined) define(ws, kSharedWs, true);
  return ws;
}

/** The last handler of every ws route: hands the socket to the WebSocketServer. */
function upgradeHandler(
  handler: WebSocketHandler,
  routeOptions: WebSocketRouteOptions | undefined,
  bound: WebSocketServer | undefined,
): Middleware {
  return function webSocketUpgrade(
    req: Request & UpgradeRequestMessage,
    _res: unknown,
    next: (err?: unknown) => void,
  ): void {
    const state = upgradeState(req);
    if (state === undefined) {
      next(); // a plain HTTP request (the router already keeps these away)
      return;
    }
    // A middleware answered and still called next(): that answer stands.
    if (!state.claim()) return;
    // Inside a mounted router req.url is relative to the mount point; the handshake (and
    // ws.path, UpgradeRequest.url) should see the URL the client asked for.
    if (typeof req.originalUrl === 'string') req.url = req.originalUrl;
    const context: UpgradeContext = { params: stringParams(req.params) };
    if (routeOptions !== undefined) context.route = routeOptions;
    const wss = bound ?? state.wss;
    wss
      .handleUpgrade(req, state.socket, state.head, (ws) => handler(ws, req), context)
      .catch(() => {
        state.socket.destroy();
      });
  } as Middleware;
}

function parseArguments(args: unknown[]): {
  middleware: unknown[];
  routeOptions: WebSocketRouteOptions | undefined;
  handler: WebSocketHandler;
} {
  const rest = [...args];
  const handler = rest.pop();
  if (typeof handler !== 'function') {
    throw new TypeError(
      'ws(path, ...middleware, handler): the last argument must be the handler (ws, req) => {}',
    );
  }
  let routeOptions: WebSocketRouteOptions | undefined;
  if (rest.length > 0 && isPlainObject(rest[rest.length - 1])) {
    routeOptions = rest.pop() as WebSocketRouteOptions;
    // Validates the numeric options now rather than at the first connection.
    new WebSocketServer(routeOptions);
  }
  const middleware = rest.flat(Number.POSITIVE_INFINITY);
  for (const fn of middleware) {
    if (typeof fn !== 'function') {
      throw new TypeError(
        'ws(path, ...middleware, [options], handler): middleware must be functions, and route options go right before the handler',
      );
    }
  }
  return { middleware, routeOptions, handler: handler as WebSocketHandler };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

function isServer(value: unknown): value is AnyServer {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as AnyServer).on === 'function' &&
    typeof (value as AnyServer).close === 'function' &&
    typeof (value as AnyServer).listen === 'function'
  );
}

function define(target: object, key: string | symbol, value: unknown): void {
  Object.defineProperty(target, key, { value, writable: true, configurable: true, enumerable: false });
}

function ignore(): void {}
