import type { IncomingMessage } from 'node:http';
import { Duplex } from 'node:stream';
import {
  buildUpgradeRequest,
  type ClientOptions,
  checkOrigin,
  connect,
  createUpgradeResponse,
  type OriginPolicy,
  type ServerOptions,
  type WebSocket,
  WebSocketServer,
  type RouteOptions as WsRouteOptions,
} from '@wskit/core';
import type {
  ContextConfigDefault,
  FastifyBaseLogger,
  FastifyInstance,
  FastifyPluginAsync,
  FastifyReply,
  FastifyRequest,
  FastifySchema,
  FastifyTypeProvider,
  FastifyTypeProviderDefault,
  onRequestHookHandler,
  RawReplyDefaultExpression,
  RawRequestDefaultExpression,
  RawServerBase,
  RawServerDefault,
  RouteGenericInterface,
} from 'fastify';
import fp from 'fastify-plugin';

/** A websocket route handler: `this` is the route's Fastify instance (its encapsulation context). */
export type WebSocketHandler<
  RawServer extends RawServerBase = RawServerDefault,
  RawRequest extends RawRequestDefaultExpression<RawServer> = RawRequestDefaultExpression<RawServer>,
  RouteGeneric extends RouteGenericInterface = RouteGenericInterface,
  ContextConfig = ContextConfigDefault,
  SchemaCompiler extends FastifySchema = FastifySchema,
  TypeProvider extends FastifyTypeProvider = FastifyTypeProviderDefault,
  Logger extends FastifyBaseLogger = FastifyBaseLogger,
> = (
  this: FastifyInstance<RawServer, RawRequest, RawReplyDefaultExpression<RawServer>, Logger, TypeProvider>,
  socket: WebSocket,
  request: FastifyRequest<
    RouteGeneric,
    RawServer,
    RawRequest,
    SchemaCompiler,
    TypeProvider,
    ContextConfig,
    Logger
  >,
) => unknown;

declare module 'fastify' {
  interface FastifyInstance {
    /** The WebSocketServer behind the plugin (clients, find, publish). */
    websocketServer: WebSocketServer;
    /** Opens a WebSocket to `path` through an in-memory connection: no listening port needed. */
    injectWS(path?: string, options?: InjectWSOptions): Promise<WebSocket>;
  }
  interface FastifyRequest {
    /** True for a WebSocket upgrade request. */
    ws: boolean;
  }
  interface RouteShorthandOptions<
    RawServer extends RawServerBase = RawServerDefault,
    RawRequest extends RawRequestDefaultExpression<RawServer> = RawRequestDefaultExpression<RawServer>,
    RawReply extends RawReplyDefaultExpression<RawServer> = RawReplyDefaultExpression<RawServer>,
    RouteGeneric extends RouteGenericInterface = RouteGenericInterface,
    ContextConfig = ContextConfigDefault,
    SchemaCompiler extends FastifySchema = FastifySchema,
    TypeProvider extends FastifyTypeProvider = FastifyTypeProviderDefault,
    Logger extends FastifyBaseLogger = FastifyBaseLogger,
  > {
    /** This route accepts WebSocket upgrades; the handler gets `(socket, request)`. */
    websocket?: boolean;
    /** Per-route WebSocket options (limits, protocols, perMessageDeflate, access hooks). */
    wsOptions?: WsRouteOptions;
  }
  interface RouteOptions<
    RawServer extends RawServerBase = RawServerDefault,
    RawRequest extends RawRequestDefaultExpression<RawServer> = RawRequestDefaultExpression<RawServer>,
    RawReply extends RawReplyDefaultExpression<RawServer> = RawReplyDefaultExpression<RawServer>,
    RouteGeneric extends RouteGenericInterface = RouteGenericInterface,
    ContextConfig = ContextConfigDefault,
    SchemaCompiler extends FastifySchema = FastifySchema,
    TypeProvider extends FastifyTypeProvider = FastifyTypeProviderDefault,
    Logger extends FastifyBaseLogger = FastifyBaseLogger,
  > {
    /** With `handler` for plain HTTP: the same route also serves WebSocket upgrades. */
    wsHandler?: WebSocketHandler<
      RawServer,
      RawRequest,
      RouteGeneric,
      ContextConfig,
      SchemaCompiler,
      TypeProvider,
      Logger
    >;
  }
  interface RouteShorthandMethod<
    RawServer extends RawServerBase = RawServerDefault,
    RawRequest extends RawRequestDefaultExpression<RawServer> = RawRequestDefaultExpression<RawServer>,
    RawReply extends RawReplyDefaultExpression<RawServer> = RawReplyDefaultExpression<RawServer>,
    TypeProvider extends FastifyTypeProvider = FastifyTypeProviderDefault,
    Logger extends FastifyBaseLogger = FastifyBaseLogger,
  > {
    // A call signature merged into Fastify's interface (a function type could not merge).
    // biome-ignore lint/style/useShorthandFunctionType: declaration merging
    <
      RouteGeneric extends RouteGenericInterface = RouteGenericInterface,
      ContextConfig = ContextConfigDefault,
      const SchemaCompiler extends FastifySchema = FastifySchema,
    >(
      path: string,
      opts: RouteShorthandOptions<
        RawServer,
        RawRequest,
        RawReply,
        RouteGeneric,
        ContextConfig,
        SchemaCompiler,
        TypeProvider,
        Logger
      > & { websocket: true },
      handler: WebSocketHandler<
        RawServer,
        RawRequest,
        RouteGeneric,
        ContextConfig,
        SchemaCompiler,
        TypeProvider,
        Logger
      >,
    ): FastifyInstance<RawServer, RawRequest, RawReply, Logger, TypeProvider>;
  }
}

export interface InjectWSOptions extends ClientOptions {
  /** Called with the connection as soon as it is open, before the promise resolves. */
  onInit?: (ws: WebSocket) => void;
}

export interface WsPluginOptions extends ServerOptions {
  /** Close code sent to every client when Fastify closes. Default 1001 (going away). */
  closeCode?: number;
}

interface PendingUpgrade {
  socket: Duplex;
  head: Buffer;
  release: () => void;
  handled: boolean;
}

const UPGRADE = Symbol('wskit.fastify.upgrade');
type UpgradeableRequest = IncomingMessage & { [UPGRADE]?: PendingUpgrade };

type AnyHandler = (this: FastifyInstance, request: FastifyRequest, reply: FastifyReply) => unknown;
type AnyWsHandler = (this: FastifyInstance, socket: WebSocket, request: FastifyRequest) => unknown;

const plugin: FastifyPluginAsync<WsPluginOptions> = async (fastify, options) => {
  const { closeCode = 1001, ...serverOptions } = options;
  const wss = new WebSocketServer({ logger: fastify.log, ...serverOptions });
  fastify.decorate('websocketServer', wss);
  fastify.decorateRequest('ws', false);

  fastify.server.on('upgrade', (req: UpgradeableRequest, socket: Duplex, head: Buffer) => {
    const { res, release } = createUpgradeResponse(req, socket);
    req[UPGRADE] = { socket, head, release, handled: false };
    // Fastify's own router, hooks and 404/error handling run on the upgrade request,
    // answering through `res` (bound to the socket) unless a websocket route takes it.
    fastify.routing(req, res);
  });

  fastify.addHook('onRequest', async (request) => {
    if ((request.raw as UpgradeableRequest)[UPGRADE] !== undefined) request.ws = true;
  });

  fastify.addHook('onRoute', (route) => {
    const wsHandler = (route.websocket ? route.handler : route.wsHandler) as AnyWsHandler | undefined;
    if (wsHandler === undefined) return;
    const httpHandler = (route.websocket ? undefined : route.handler) as AnyHandler | undefined;
    const routeOptions = route.wsOptions;
    route.handler = function (this: FastifyInstance, request: FastifyRequest, reply: FastifyReply) {
      const pending = (request.raw as UpgradeableRequest)[UPGRADE];
      if (pending === undefined || pending.handled) {
        if (httpHandler !== undefined) return httpHandler.call(this, request, reply);
        reply.code(426).header('Upgrade', 'websocket').send('Upgrade Required');
        return reply;
      }
      pending.handled = true;
      reply.hijack();
      pending.release();
      return wss
        .handleUpgrade(
          request.raw,
          pending.socket,
          pending.head,
          (ws) => {
            const result = wsHandler.call(this, ws, request);
            return result instanceof Promise ? result.then(() => {}) : undefined;
          },
          {
            params: (request.params ?? {}) as Record<string, string>,
            ...(routeOptions ? { route: routeOptions } : {}),
          },
        )
        .then(() => undefined);
    } as typeof route.handler;
  });

  // Before the http server closes (which waits for every socket), close the WebSockets.
  fastify.addHook('preClose', async () => {
    await wss.close(closeCode);
  });

  fastify.decorate('injectWS', async function injectWS(path = '/', opts: InjectWSOptions = {}) {
    const [client, server] = duplexPair();
    fastify.server.emit('connection', server);
    const { onInit, ...clientOptions } = opts;
    const ws = await connect(new URL(path, 'ws://localhost'), {
      pingInterval: 0,
      ...clientOptions,
      createConnection: () => client,
    });
    onInit?.(ws);
    return ws;
  });
};

/** The Fastify plugin: `await fastify.register(wsPlugin, options)`. */
export const wsPlugin = fp(plugin, { fastify: '5.x', name: '@wskit/fastify' });
export default wsPlugin;

/**
 * An onRequest hook refusing (403 "Access denied") an upgrade whose browser Origin is
 * not allowed; requests without Origin and plain HTTP requests pass.
 */
export function originGuard(origins: OriginPolicy): onRequestHookHandler {
  return (request, reply, done) => {
    const raw = request.raw as UpgradeableRequest;
    if (
      raw[UPGRADE] !== undefined &&
      !checkOrigin(buildUpgradeRequest(raw, { protocols: [], extensions: [] }), origins)
    ) {
      reply.code(403).type('text/plain; charset=utf-8').send('Access denied');
      return;
    }
    done();
  };
}

/** Two connected in-memory duplex streams: what one writes, the other reads. */
function duplexPair(): [Duplex, Duplex] {
  let a: Duplex | undefined;
  let b: Duplex | undefined;
  const make = (peer: () => Duplex | undefined) =>
    new Duplex({
      read() {},
      write(chunk: Buffer, _encoding, callback) {
        peer()?.push(chunk);
        callback();
      },
      final(callback) {
        peer()?.push(null);
        callback();
      },
      destroy(err, callback) {
        const other = peer();
        if (other && !other.destroyed) other.destroy();
        callback(err);
      },
    });
  a = make(() => b);
  b = make(() => a);
  return [a, b];
}

export type { OriginPolicy, WebSocket } from '@wskit/core';
export type { WsRouteOptions };
