import type { IncomingMessage, Server } from 'node:http';
import type { Http2SecureServer, Http2Server } from 'node:http2';
import type { Server as HttpsServer } from 'node:https';
import {
  guardOrigin,
  type OriginPolicy,
  type PendingUpgrade,
  type RouteOptions,
  type ServerOptions,
  type WebSocket,
  WebSocketServer,
} from '@wskit/core';
import type Koa from 'koa';

declare module 'koa' {
  interface DefaultContext {
    /** The WebSocket of an upgraded request (set in `app.ws` middleware). */
    websocket?: WebSocket;
  }
}

type Middleware = Koa.Middleware;
type Next = Koa.Next;
type Context = Koa.ParameterizedContext;

const UPGRADE = Symbol('wskit.koa.upgrade');
type UpgradeableRequest = IncomingMessage & { [UPGRADE]?: PendingUpgrade };

export type KoaWsOptions = ServerOptions;

export interface KoaWs {
  /** The WebSocketServer doing the handshakes (clients, find, publish, close). */
  readonly wss: WebSocketServer;
  /** Middleware run for upgrade requests after the app's own stack; `ctx.websocket` is open. */
  use(middleware: Middleware): KoaWs;
  readonly middleware: readonly Middleware[];
  /**
   * Hooks a server's upgrade requests (done for you by `app.listen`): 'upgrade', and on an
   * `http2` server made with `app.callback()` also RFC 8441 extended CONNECTs.
   */
  attach(server: Server | HttpsServer | Http2Server | Http2SecureServer): KoaWs;
  /** Closes every WebSocket with 1001 and resolves when all are closed. */
  close(code?: number, reason?: string): Promise<void>;
}

export type KoaWithWs<App extends Koa> = App & { ws: KoaWs };

function compose(stack: readonly Middleware[]): (ctx: Context, next?: Next) => Promise<void> {
  return (ctx, next) => {
    let index = -1;
    const dispatch = async (i: number): Promise<void> => {
      if (i <= index) throw new Error('next() called multiple times');
      index = i;
      const fn = i === stack.length ? next : stack[i];
      if (fn === undefined) return;
      await fn(ctx, () => dispatch(i + 1));
    };
    return dispatch(0);
  };
}

interface KoaInternals {
  createContext(req: IncomingMessage, res: unknown): Context;
  handleRequest(ctx: Context, fn: (ctx: Context) => Promise<void>): Promise<void>;
}

/**
 * Adds WebSocket support to a Koa app: upgrade requests go through the app's own
 * middleware (auth, sessions, @koa/router with `websocket()` routes), then through the
 * `app.ws` stack. Anything that answers with a status refuses the upgrade with a real
 * HTTP response; an upgrade nothing accepts gets Koa's 404.
 */
export function koaWs<App extends Koa>(app: App, options: KoaWsOptions = {}): KoaWithWs<App> {
  const wss = new WebSocketServer(options);
  const stack: Middleware[] = [];
  const attached = new WeakSet<object>();

  // The end of the app's stack for upgrade requests: the app.ws middleware, if any.
  const wsTerminal: Middleware = async (ctx, next) => {
    const pending = (ctx.req as UpgradeableRequest)[UPGRADE];
    if (pending === undefined || pending.handled || stack.length === 0) return next();
    await upgradeWith(ctx, pending, undefined, (ws) => {
      ctx.websocket = ws;
      return compose(stack)(ctx);
    });
  };

  // Koa's own middleware runs on the upgrade (an extended CONNECT is routed as GET); an
  // answer it gives (ctx.status) goes out through `pending.res`, else a websocket() route
  // or the app.ws stack accepts it.
  const onUpgrade = (pending: PendingUpgrade) => {
    const req = pending.req as UpgradeableRequest;
    req[UPGRADE] = pending;
    const internals = app as unknown as KoaInternals;
    const ctx = internals.createContext(req, pending.res);
    const fn = compose([...app.middleware, wsTerminal]);
    internals.handleRequest(ctx, fn).catch((err: unknown) => pending.fail(err));
  };

  const handle: KoaWs = {
    wss,
    middleware: stack,
    use(middleware) {
      if (typeof middleware !== 'function') throw new TypeError('app.ws.use() takes a middleware function');
      stack.push(middleware);
      return handle;
    },
    attach(server) {
      if (attached.has(server)) return handle;
      attached.add(server);
      wss.routeUpgrades(server, onUpgrade);
      // Koa has no close() of its own, and server.close() waits for every socket, upgraded
      // ones included, with no event when it starts: so this server's close() (this
      // instance only) also closes the WebSockets.
      const close = server.close.bind(server);
      server.close = ((cb?: (err?: Error) => void) => {
        void wss.close();
        return close(cb);
      }) as typeof server.close;
      return handle;
    },
    close: (code, reason) => wss.close(code, reason),
  };

  const listen = app.listen.bind(app);
  app.listen = ((...args: Parameters<App['listen']>) => {
    const server = listen(...args);
    handle.attach(server);
    return server;
  }) as App['listen'];

  const withWs = app as KoaWithWs<App>;
  withWs.ws = handle;
  return withWs;
}

async function upgradeWith(
  ctx: Context,
  pending: PendingUpgrade,
  routeOptions: RouteOptions | undefined,
  run: (ws: WebSocket) => unknown,
): Promise<void> {
  ctx.respond = false; // the handshake writes its own answer (101 or a refusal)
  const params = (ctx as Context & { params?: Record<string, string> }).params;
  await pending.accept(
    (ws) => {
      // A handler error also goes to Koa's own error channel (app.on('error'), by default
      // logged by Koa), then the core closes the connection with 1011.
      const report = (err: unknown): never => {
        ctx.app.emit('error', err, ctx);
        throw err;
      };
      let result: unknown;
      try {
        result = run(ws);
      } catch (err) {
        report(err);
      }
      return result instanceof Promise ? result.then(() => {}, report) : undefined;
    },
    {
      ...(params ? { params } : {}),
      ...(routeOptions ? { route: routeOptions } : {}),
      // @koa/router's pattern of the matched route ('/chat/:id'), for stats and metrics labels.
      pattern: (ctx as Context & { _matchedRoute?: unknown })._matchedRoute?.toString() ?? '', // diag
    },
  );
}

/**
 * Route middleware (e.g. for @koa/router): performs the handshake on an upgrade request
 * and runs `handler(ws, ctx)` (`ctx.params` from the router). A plain HTTP request to the
 * same route passes on to the next middleware, and gets 426 Upgrade Required if nothing
 * else answers it.
 */
export function websocket<C extends Context = Context>(
  handler: (ws: WebSocket, ctx: C) => unknown,
  routeOptions?: RouteOptions,
): Middleware {
  return async (ctx, next) => {
    const pending = (ctx.req as UpgradeableRequest)[UPGRADE];
    if (pending === undefined) {
      await next();
      if (ctx.status === 404 && ctx.body == null) {
        ctx.status = 426;
        ctx.set('Upgrade', 'websocket');
        ctx.body = 'Upgrade Required';
      }
      return;
    }
    if (pending.handled) return;
    await upgradeWith(ctx, pending, routeOptions, (ws) => {
      ctx.websocket = ws;
      return handler(ws, ctx as C);
    });
  };
}

/**
 * Middleware refusing (403 "Access denied") an upgrade whose browser Origin is not
 * allowed (the core's guardOrigin()); requests without Origin and plain HTTP requests
 * pass. For the upgrades it lets through it REPLACES the default origin check (same-origin,
 * or the `origins` option).
 */
export function originGuard(origins: OriginPolicy): Middleware {
  return async (ctx, next) => {
    const params = (ctx as Context & { params?: Record<string, string> }).params;
    if (
      (ctx.req as UpgradeableRequest)[UPGRADE] !== undefined &&
      !guardOrigin(ctx.req, origins, { params })
    ) {
      ctx.status = 403;
      ctx.body = 'Access denied';
      return;
    }
    await next();
  };
}

/** Is this context an upgrade request not handled yet? */
export function isWebSocketRequest(ctx: Context): boolean {
  const pending = (ctx.req as UpgradeableRequest)[UPGRADE];
  return pending !== undefined && !pending.handled;
}

export type { OriginPolicy, RouteOptions, ServerOptions, WebSocket } from '@wskit/core';
