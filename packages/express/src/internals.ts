/**
 * What @wskit/express needs to know about Express's internals, in one place. Nothing here
 * imports express: everything is found from the app or router the user hands over, so
 * the adapter works with whichever copy (Express 4 or 5) the application uses.
 */
import type { IncomingMessage } from 'node:http';
import type { PendingUpgrade, WebSocketServer } from '@wskit/core';

/** Marks a request that arrived as an HTTP upgrade and is being routed by Express. */
export const kUpgrade: unique symbol = Symbol.for('wskit.express.upgrade');
/** Marks an Express Route created by `ws()`. */
export const kWsRoute: unique symbol = Symbol.for('wskit.express.wsRoute');
/** Marks a Layer prototype that was already taught to tell the two kinds apart. */
const kLayerPatched: unique symbol = Symbol.for('wskit.express.layerPatched');

/** The state of one upgrade request while Express routes it. */
export interface UpgradeState {
  /** The upgrade as the core sees it: its response, and accept() for a ws route. */
  readonly pending: PendingUpgrade;
  /** The WebSocketServer of the expressWs() instance whose http server got the request. */
  readonly wss: WebSocketServer;
}

export type UpgradeRequestMessage = IncomingMessage & { [kUpgrade]?: UpgradeState };

/** Is `req` a WebSocket upgrade request being routed by @wskit/express? */
export function upgradeState(req: object): UpgradeState | undefined {
  return (req as UpgradeRequestMessage)[kUpgrade];
}

export type Middleware = (req: never, res: never, next: (err?: unknown) => void) => unknown;

/** An Express Route (4.x `lib/router/route.js`, 5.x `router/lib/route.js`). */
export interface RouteLike {
  get(...handlers: unknown[]): unknown;
  [kWsRoute]?: boolean;
}

/** An Express Router, or an app (both have route()). */
export interface Routable {
  route(path: unknown): RouteLike;
}

export interface RouterLike extends Routable {
  stack: unknown[];
}

interface LayerLike {
  route?: RouteLike | undefined;
}

type LayerHandle = (this: LayerLike, req: object, res: object, next: (err?: unknown) => void) => unknown;

/** The application's root router: `app.router` in Express 5, `app._router` in Express 4. */
export function routerOf(app: object): RouterLike {
  const express4 = app as { lazyrouter?: () => void; _router?: RouterLike };
  if (typeof express4.lazyrouter === 'function') {
    // Express 4 creates its router on demand; reading app.router throws there.
    express4.lazyrouter.call(app);
    if (express4._router !== undefined) return express4._router;
  } else {
    const router = (app as { router?: RouterLike }).router;
    if (router !== undefined && Array.isArray(router.stack)) return router;
  }
  throw new TypeError('@wskit/express: expected an Express application (express() of Express 4 or 5)');
}

export function isRouter(target: object): target is RouterLike {
  return (
    Array.isArray((target as { stack?: unknown }).stack) && typeof (target as Routable).route === 'function'
  );
}

/** The object holding the router methods (Router.prototype in 5, the `proto` function in 4). */
export function routerPrototype(router: RouterLike): object {
  let proto: object | null = Object.getPrototypeOf(router) as object | null;
  while (proto !== null && !Object.hasOwn(proto, 'route'))
    proto = Object.getPrototypeOf(proto) as object | null;
  if (proto === null) throw new TypeError('@wskit/express: this router has no route() method');
  return proto;
}

/**
 * Makes the routers of this Express copy keep WebSocket routes and HTTP routes apart: a
 * route created by ws() runs only for upgrade requests, every other route only for plain
 * HTTP requests. Middleware (app.use, mounted routers) runs for both, in order.
 *
 * Why a patch: upgrade requests go through the app with their real method (GET) and URL,
 * so that middleware sees what the client sent, and Express has no extension point that
 * lets a route decline a request by something other than method and path. The other
 * ways (rewriting the URL to a hidden path as express-ws does, or a fake method) show
 * middleware a request the client never sent. The patch is installed once per Express
 * copy, only changes what happens when a ws route meets a plain request or an ordinary
 * route meets an upgrade request, and is covered for Express 4 and 5
 * (test/express.test.ts, test/express4.test.ts).
 *
 * The check sits where a router hands a request to a matched route (Layer#handleRequest
 * in Express 5, Layer#handle_request in 4); a skipped route behaves like `next('route')`.
 * The request keeps its real method and URL, so middleware sees what the client sent.
 */
export function teachLayers(router: RouterLike): void {
  // Create a throwaway route on a stand-in router object to reach the Layer prototype.
  const standIn = { stack: [] as unknown[], caseSensitive: false, strict: false };
  router.route.call(standIn, '/');
  const layer = standIn.stack[0];
  const proto =
    layer === undefined ? null : (Object.getPrototypeOf(layer) as Record<string | symbol, unknown>);
  if (proto === null) throw new TypeError('@wskit/express: unsupported Express version (no route layers)');
  if (proto[kLayerPatched] === true) return;
  const name =
    typeof proto.handleRequest === 'function'
      ? 'handleRequest'
      : typeof proto.handle_request === 'function'
        ? 'handle_request'
        : undefined;
  if (name === undefined)
    throw new TypeError('@wskit/express: unsupported Express version (unknown Layer API)');
  const original = proto[name] as LayerHandle;
  const handle: LayerHandle = function (this: LayerLike, req, res, next) {
    const route = this.route;
    if (
      route !== undefined &&
      route !== null &&
      (upgradeState(req) !== undefined) !== (route[kWsRoute] === true)
    ) {
      return next();
    }
    return original.call(this, req, res, next);
  };
  Object.defineProperty(proto, name, {
    value: handle,
    writable: true,
    configurable: true,
    enumerable: false,
  });
  Object.defineProperty(proto, kLayerPatched, { value: true, configurable: true, enumerable: false });
}
