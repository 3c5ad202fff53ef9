import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Http2SecureServer } from 'node:http2';
import { Duplex } from 'node:stream';
import {
  connect,
  guardOrigin,
  type OriginPolicy,
  type PendingUpgrade,
  type WebSocket,
  WebSocketServer,
} from '@wskit/core';
import type {
  FastifyInstance,
  FastifyPluginAsync,
  FastifyReply,
  FastifyRequest,
  onRequestHookHandler,
} from 'fastify';
import fp from 'fastify-plugin';
import type { InjectWSOptions, WsPluginOptions } from './types.js';

const UPGRADE = Symbol('wskit.fastify.upgrade');
type UpgradeableRequest = IncomingMessage & { [UPGRADE]?: PendingUpgrade };

type AnyHandler = (this: FastifyInstance, request: FastifyRequest, reply: FastifyReply) => unknown;
type AnyWsHandler = (this: FastifyInstance, socket: WebSocket, request: FastifyRequest) => unknown;

const plugin: FastifyPluginAsync<WsPluginOptions> = async (fastify, options) => {
  const { closeCode = 1001, ...serverOptions } = options;
  const wss = new WebSocketServer({ logger: fastify.log, ...serverOptions });
  fastify.decorate('websocketServer', wss);
  fastify.decorateRequest('ws', false);

  // HTTP/1.1 Upgrades, and with `http2: true` the extended CONNECTs of RFC 8441 (routed
  // as GET): Fastify's own router, hooks and 404/error handling run on the request,
  // answering through `pending.res` unless a websocket route takes it.
  wss.routeUpgrades(fastify.server as Server | Http2SecureServer, (pending) => {
    const req = pending.req as UpgradeableRequest;
    req[UPGRADE] = pending;
    fastify.routing(req, pending.res as ServerResponse);
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
      reply.hijack();
      return pending
        .accept(
          (ws) => {
            const result = wsHandler.call(this, ws, request);
            return result instanceof Promise ? result.then(() => {}) : undefined;
          },
          {
            params: (request.params ?? {}) as Record<string, string>,
            ...(routeOptions ? { route: routeOptions } : {}),
            pattern: route.url, // diag: the route pattern labels stats and metrics
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
 * not allowed (the core's guardOrigin()); requests without Origin and plain HTTP requests
 * pass. For the upgrades it lets through it REPLACES the default origin check
 * (same-origin, or the `origins` option).
 */
export function originGuard(origins: OriginPolicy): onRequestHookHandler {
  return (request, reply, done) => {
    const raw = request.raw as UpgradeableRequest;
    const params = request.params as Record<string, string> | undefined;
    if (raw[UPGRADE] !== undefined && !guardOrigin(raw, origins, { params })) {
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
export type { InjectWSOptions, WebSocketHandler, WsPluginOptions, WsRouteOptions } from './types.js';
