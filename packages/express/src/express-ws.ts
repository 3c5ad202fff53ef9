import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { createLogger, type UpgradeContext, WebSocketServer } from '@wskit/core';
import type { Request } from 'express';
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
  upgradeState,
} from './internals.js';
import { stringParams } from './origin-guard.js';
import type {
  AnyServer,
  ExpressWs,
  ExpressWsOptions,
  PathParams,
  WebSocketHandler,
  WebSocketRouteOptions,
  WithWebSocketMethod,
} from './types.js';

const kInstance: unique symbol = Symbol.for('wskit.express.instance');
const kSharedWs: unique symbol = Symbol.for('wskit.express.sharedWs');

type AppHandle = (this: unknown, req: IncomingMessage, res: ServerResponse) => void;

/**
 * Adds WebSocket routes to an Express app: `app.ws('/chat/:room', ...middleware, handler)`,
 * and `router.ws(...)` on routers.
 *
 * Upgrade requests of `server` (or of the servers `app.listen()` creates) go through the
 * app like any request: app-level middleware, mounted routers, route middleware. Only
 * routes made with ws() match them, and ws() routes never match plain HTTP requests. A
 * middleware can refuse the upgrade with an ordinary response (`res.status(401).end()`);
 * no match gets Express's 404 and `next(err)` Express's error response. When a ws route
 * is reached, the core's upgrade (`wss.beginUpgrade()`, then `accept()`) does the rest.
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
  const ownWs = createWsMethod(wss);
  define(app, 'ws', ownWs);
  // Routers share one ws(): their routes use the server that received the request.
  const proto = routerPrototype(root) as { ws?: { [kSharedWs]?: boolean } };
  if (proto.ws?.[kSharedWs] !== true) define(proto, 'ws', createWsMethod(undefined));

  // The whole app routes the upgrade; whatever answers it through `pending.res` (a
  // middleware's refusal, Express's 404 or error handler) is the HTTP answer.
  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const pending = wss.beginUpgrade(req, socket, head);
    (req as UpgradeRequestMessage)[kUpgrade] = { pending, wss };
    try {
      (handle as AppHandle).call(app, req, pending.res);
    } catch (err) {
      pending.fail(err);
    }
  };
  const hooked = new WeakSet<AnyServer>();
  const attach = (srv: AnyServer): void => {
    if (hooked.has(srv)) return;
    hooked.add(srv);
    srv.on('upgrade', onUpgrade);
    // Express has no close() of its own, and an http server's close() waits for every
    // socket, upgraded ones included, with no event when it starts: so this server's
    // close() (this instance only) also says going-away to the WebSocket clients.
    const close = srv.close;
    define(srv, 'close', function (this: AnyServer, ...args: unknown[]) {
      wss.close().catch((err: unknown) => log.error({ err }, 'closing the WebSocket connections failed'));
      return (close as (...a: unknown[]) => AnyServer).apply(this, args);
    });
  };

  // Without a server: hook the ones this app's listen() creates.
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

/** The last handler of every ws route: hands the upgrade to the core. */
function upgradeHandler(
  handler: WebSocketHandler,
  routeOptions: WebSocketRouteOptions | undefined,
  bound: WebSocketServer | undefined,
): Middleware {
  return function webSocketUpgrade(req: Request, _res: unknown, next: (err?: unknown) => void): void {
    const state = upgradeState(req);
    if (state === undefined) {
      next(); // a plain HTTP request (the router already keeps these away)
      return;
    }
    // A middleware answered and still called next(): that answer stands.
    if (state.pending.handled) return;
    // Inside a mounted router req.url is relative to the mount point; the handshake (and
    // ws.path, UpgradeRequest.url) should see the URL the client asked for.
    if (typeof req.originalUrl === 'string') req.url = req.originalUrl;
    const context: UpgradeContext = { params: stringParams(req.params) };
    if (routeOptions !== undefined) context.route = routeOptions;
    context.pattern = routePattern(req); // labels stats and metrics
    // `bound`: a route of another expressWs() instance (a mounted sub-app) uses its server.
    const server = bound === undefined || bound === state.wss ? undefined : bound;
    void state.pending.accept((ws) => handler(ws, req), context, server);
  } as Middleware;
}

/**
 * The pattern of the matched route ('/api/rooms/:room'), with its routers' mount paths; a
 * mount path segment that is a parameter's value (routers with mergeParams) is put back as
 * ':name', so that labels stay bounded.
 */
function routePattern(req: Request): string {
  const path = (req as { route?: { path?: unknown } }).route?.path;
  const byValue = new Map<string, string>();
  for (const [name, value] of Object.entries((req.params ?? {}) as Record<string, unknown>)) {
    if (typeof value === 'string' && value !== '') byValue.set(value, `:${name}`);
  }
  const base = (req.baseUrl ?? '')
    .split('/')
    .map((segment) => byValue.get(segment) ?? segment)
    .join('/');
  return `${base}${typeof path === 'string' ? path : ''}`;
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
