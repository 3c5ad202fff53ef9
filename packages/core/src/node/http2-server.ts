/**
 * WebSockets over HTTP/2 (RFC 8441), server side: which HTTP/2 streams are WebSocket
 * upgrades, and the standalone HTTP/2 server of listen(). The handshake itself is the one
 * of HTTP/1.1 (accept-upgrade.ts), spoken through an Http2Exchange.
 */
import {
  createSecureServer,
  createServer,
  type Http2SecureServer,
  type Http2Server,
  Http2ServerRequest,
  Http2ServerResponse,
  type Http2Session,
  type IncomingHttpHeaders,
  type ServerHttp2Stream,
} from 'node:http2';
import { isExtendedConnect, isWebSocketConnect, stopRequest } from './http2-exchange.js';
import type { TlsOptions } from './options.js';

export type AnyHttp2Server = Http2Server | Http2SecureServer;

/** Called with each extended CONNECT asking for a WebSocket. */
export type ExtendedConnectListener = (req: Http2ServerRequest, res: Http2ServerResponse) => void;

/** Duck-typed: only HTTP/2 servers have updateSettings(). */
export function isHttp2Server(server: object): server is AnyHttp2Server {
  return typeof (server as { updateSettings?: unknown }).updateSettings === 'function';
}

/**
 * Advertises SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441 §3) on `server` and calls
 * `listener` with every extended CONNECT whose `:protocol` is websocket. On a server with
 * a request handler (Node's compatibility API: Koa's app.callback(), Fastify), Node
 * emits those as 'connect' with its own request and response objects; without one, only
 * the stream arrives, and the same objects are made here.
 */
export function onExtendedConnect(server: AnyHttp2Server, listener: ExtendedConnectListener): void {
  server.updateSettings({ enableConnectProtocol: true });
  server.on(
    'stream',
    (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, _flags: number, rawHeaders: string[]) => {
      if (server.listenerCount('request') > 0 || !isExtendedConnect(headers)) return; // see 'connect'
      if (!isWebSocketConnect(headers)) {
        if (server.listenerCount('stream') === 1) notImplemented(stream, headers);
        return;
      }
      listener(new Http2ServerRequest(stream, headers, {}, rawHeaders), new Http2ServerResponse(stream));
    },
  );
  server.on('connect', (req: Http2ServerRequest, res: Http2ServerResponse) => {
    if (isWebSocketConnect(req.headers)) {
      listener(req, res);
      return;
    }
    if (server.listenerCount('connect') > 1) return; // the app answers other CONNECTs itself
    if (isExtendedConnect(req.headers)) {
      notImplemented(req.stream, req.headers);
      return;
    }
    // What Node answers a CONNECT nobody listens for.
    res.statusCode = 405;
    res.end();
  });
}

/** An extended CONNECT for a protocol not served here: 501 Not Implemented (RFC 9110 §15.6.2). */
function notImplemented(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
  if (stream.destroyed || stream.headersSent) return;
  const body = Buffer.from(`The protocol ${JSON.stringify(headers[':protocol'])} is not supported.\n`);
  stream.respond({
    ':status': 501,
    'content-type': 'text/plain; charset=utf-8',
    'content-length': String(body.length),
  });
  stream.end(body);
  stopRequest(stream);
}

const ownSessions = new WeakMap<AnyHttp2Server, Set<Http2Session>>();

/**
 * For listen(port, host, { http2: true }): h2 over TLS (with HTTP/1.1 for clients without
 * ALPN h2) when `tls` is given, else h2c with prior knowledge. Plain requests are answered
 * with a short refusal: this server speaks WebSocket only.
 */
export function createHttp2Server(tls: TlsOptions | undefined, handshakeTimeout: number): AnyHttp2Server {
  const settings = { enableConnectProtocol: true };
  const server = tls
    ? createSecureServer({ ...tls, allowHTTP1: true, settings, handshakeTimeout })
    : createServer({ settings });
  const sessions = new Set<Http2Session>();
  ownSessions.set(server, sessions);
  server.on('session', (session: Http2Session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
  });
  server.on('request', (req: Http2ServerRequest, res: Http2ServerResponse) => {
    const body = 'This endpoint speaks WebSocket (RFC 6455 Upgrade, or RFC 8441 over HTTP/2).\n';
    const h1 = req.httpVersionMajor < 2;
    res.writeHead(h1 ? 426 : 400, {
      ...(h1 ? { Upgrade: 'websocket', Connection: 'close' } : {}),
      'Content-Type': 'text/plain; charset=utf-8',
      'Content-Length': String(Buffer.byteLength(body)),
    });
    res.end(body);
  });
  return server;
}

/** Closes a server made by createHttp2Server: sends GOAWAY to its sessions, then stops. */
export async function closeHttp2Server(server: AnyHttp2Server): Promise<void> {
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    for (const session of ownSessions.get(server) ?? []) session.close();
  });
}
