/** The public types of @wskit/express. */
import type { Server as HttpServer } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { RouteOptions, ServerOptions, WebSocket, WebSocketServer } from '@wskit/core';
import type { Request, RequestHandler, Router } from 'express';
import type { ParamsDictionary, RouteParameters } from 'express-serve-static-core';

/** The servers whose upgrades an Express app can route. */
export type AnyServer = HttpServer | HttpsServer;

/** A WebSocket route handler: runs once the handshake succeeded. `P`: the route parameters. */
export type WebSocketHandler<P = ParamsDictionary> = (ws: WebSocket, req: Request<P>) => void | Promise<void>;

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
export type WebSocketMiddleware<P = ParamsDictionary> = RequestHandler<P> | readonly WebSocketMiddleware<P>[];

/**
 * `ws(path, ...middleware, [routeOptions], handler)`. With a string path, `req.params` is
 * typed from it as in `app.get()` (`'/chat/:room'` gives `req.params.room: string`).
 */
export interface WebSocketMethod<This> {
  <Path extends string>(
    path: Path,
    ...handlers: [...WebSocketMiddleware<RouteParameters<Path>>[], WebSocketHandler<RouteParameters<Path>>]
  ): This;
  <Path extends string>(
    path: Path,
    ...handlers: [
      ...WebSocketMiddleware<RouteParameters<Path>>[],
      WebSocketRouteOptions,
      WebSocketHandler<RouteParameters<Path>>,
    ]
  ): This;
  (path: PathParams, ...handlers: [...WebSocketMiddleware[], WebSocketHandler]): This;
  (path: PathParams, ...handlers: [...WebSocketMiddleware[], WebSocketRouteOptions, WebSocketHandler]): This;
}

/** An app or router with ws routes. */
export interface WithWebSocketMethod {
  ws: WebSocketMethod<this>;
}

declare module 'express-serve-static-core' {
  interface Router {
    /** WebSocket routes; every router has ws() once expressWs() ran. */
    ws: WebSocketMethod<this>;
  }
}

/** An Express Router with ws() (`express.Router()` is typed with it already). */
export type WebSocketRouter = Router & WithWebSocketMethod;

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
