/** The public types of @wskit/fastify, and its additions to Fastify's own types. */
import type {
  ClientOptions,
  ServerOptions,
  WebSocket,
  WebSocketServer,
  RouteOptions as WsRouteOptions,
} from '@wskit/core';
import type {
  ContextConfigDefault,
  FastifyBaseLogger,
  FastifyInstance,
  FastifyRequest,
  FastifySchema,
  FastifyTypeProvider,
  FastifyTypeProviderDefault,
  RawReplyDefaultExpression,
  RawRequestDefaultExpression,
  RawServerBase,
  RawServerDefault,
  RouteGenericInterface,
} from 'fastify';

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

export type { WsRouteOptions };
