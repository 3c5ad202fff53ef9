/**
 * WebSockets over HTTP/2 (RFC 8441), server side. An extended CONNECT stream
 * (`:method` CONNECT, `:protocol` websocket) goes through the same upgrade path as an
 * HTTP/1.1 Upgrade: routes, capacity limits, acceptConnection/accessDenied, subprotocol
 * and permessage-deflate negotiation. The stream is presented as the request's socket; the
 * HTTP/1.1 answer that path writes (101 or a refusal) is turned into HTTP/2 response
 * HEADERS here, and from then on the stream carries the WebSocket frames.
 */
import type { IncomingMessage } from 'node:http';
import {
  constants,
  createSecureServer,
  createServer,
  type Http2SecureServer,
  type Http2Server,
  type Http2ServerRequest,
  type Http2ServerResponse,
  type Http2Session,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
  type ServerHttp2Stream,
} from 'node:http2';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { Opcode } from '../protocol/frame.js';
import { generateKey, isValidKey } from '../protocol/handshake.js';
import type { WebSocket } from './connection.js';
import type { Logger } from './logger.js';
import type { TlsOptions } from './options.js';
import type { Stage } from './stages.js';
import { exposeAddresses, markTransport } from './transport.js';

export type AnyHttp2Server = Http2Server | Http2SecureServer;

/** What this module needs from the WebSocketServer: its HTTP/1.1 upgrade entry point. */
interface Upgrader {
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<WebSocket | null>;
}

/** The request object handed to the upgrade path (and found as `UpgradeRequest.raw`). */
export interface Http2UpgradeRequest {
  /** 'GET': the extended CONNECT stands for the GET of an HTTP/1.1 upgrade (RFC 8441 §5). */
  method: 'GET';
  httpVersion: '2.0';
  httpVersionMajor: 2;
  httpVersionMinor: 0;
  /** `:path`. */
  url: string;
  /** The regular header fields, with `host` taken from `:authority` (RFC 9113 §8.3.1). */
  headers: IncomingHttpHeaders;
  /** The TCP/TLS socket of the HTTP/2 session (remoteAddress, encrypted, ...). */
  socket: Socket;
  /** The HTTP/2 stream, and all its header fields, pseudo-headers included. */
  stream: ServerHttp2Stream;
  http2Headers: IncomingHttpHeaders;
}

const EMPTY = Buffer.alloc(0);

/** Duck-typed: only HTTP/2 servers have updateSettings(). */
export function isHttp2Server(server: object): server is AnyHttp2Server {
  return typeof (server as { updateSettings?: unknown }).updateSettings === 'function';
}

/** Is this the extended CONNECT of RFC 8441 §4 (a CONNECT with `:protocol`)? */
export function isExtendedConnect(headers: IncomingHttpHeaders): boolean {
  return headers[':method'] === 'CONNECT' && headers[':protocol'] !== undefined;
}

const attachedServers = new WeakMap<AnyHttp2Server, Set<Http2Session>>();

/**
 * Serves RFC 8441 WebSockets on an HTTP/2 server: advertises SETTINGS_ENABLE_CONNECT_PROTOCOL
 * (RFC 8441 §3) to every new session and answers extended CONNECT streams. HTTP/1.1
 * Upgrade requests (on a server with `allowHTTP1`) still arrive through 'upgrade'.
 */
export function attachHttp2(wss: Upgrader, server: AnyHttp2Server, log: Logger): void {
  if (attachedServers.has(server)) return;
  const sessions = new Set<Http2Session>();
  attachedServers.set(server, sessions);
  server.updateSettings({ enableConnectProtocol: true });
  server.on('session', (session: Http2Session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
  });
  server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
    if (!isExtendedConnect(headers)) return;
    if (!isWebSocketProtocol(headers) && server.listenerCount('connect') > 1) return; // the app's
    serveStream(wss, stream, headers, log);
  });
  // With a request handler (the compatibility API: Koa, Express-like callbacks), Node
  // emits 'connect' for every CONNECT stream and answers 405 when nobody listens. Our
  // streams are served above; other CONNECTs keep Node's answer unless the app listens.
  server.on('connect', (req: Http2ServerRequest, res: Http2ServerResponse) => {
    if (server.listenerCount('connect') > 1) return; // the app answers CONNECT itself
    if (isExtendedConnect(req.headers)) return; // served by the 'stream' listener above
    res.statusCode = constants.HTTP_STATUS_METHOD_NOT_ALLOWED;
    res.end();
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    wss.handleUpgrade(req, socket, head).catch((err: unknown) => {
      log.error({ err }, 'upgrade failed');
      socket.destroy();
    });
  });
}

function isWebSocketProtocol(headers: IncomingHttpHeaders): boolean {
  const protocol = headers[':protocol'];
  return typeof protocol === 'string' && protocol.toLowerCase() === 'websocket';
}

function serveStream(
  wss: Upgrader,
  stream: ServerHttp2Stream,
  headers: IncomingHttpHeaders,
  log: Logger,
): void {
  stream.on('error', ignore); // a reset before the WebSocket exists must not throw
  // RFC 8441 §4: a server that does not support the protocol named by :protocol refuses
  // the request; 501 says "not implemented here".
  if (!isWebSocketProtocol(headers)) {
    refuse(stream, 501, `The protocol ${JSON.stringify(headers[':protocol'])} is not supported.`);
    return;
  }
  // RFC 8441 §4 and RFC 9113 §8.5: an extended CONNECT carries :scheme, :path and
  // :authority. (nghttp2 already resets most malformed ones with PROTOCOL_ERROR.)
  for (const name of [':scheme', ':path', ':authority'] as const) {
    const value = headers[name];
    if (typeof value !== 'string' || value === '') {
      refuse(stream, 400, `The extended CONNECT request has no ${name} pseudo-header.`);
      return;
    }
  }
  const session = stream.session;
  const sessionSocket = session?.socket as Socket | undefined;
  exposeAddresses(stream, sessionSocket);
  markTransport(stream, 'h2');
  // RFC 8441 §5 drops Sec-WebSocket-Key/Accept, but some clients (undici 7) still send the
  // key and check the accept value over h2: answer such a key, harmless for the rest.
  const sentKey = headers['sec-websocket-key'];
  const clientKey = typeof sentKey === 'string' && isValidKey(sentKey) ? sentKey : undefined;
  answerAsHttp2(stream, clientKey !== undefined);
  const req: Http2UpgradeRequest = {
    method: 'GET',
    httpVersion: '2.0',
    httpVersionMajor: 2,
    httpVersionMinor: 0,
    url: headers[':path'] as string,
    headers: upgradeHeaders(headers, clientKey),
    socket: sessionSocket as Socket,
    stream,
    http2Headers: headers,
  };
  wss
    .handleUpgrade(req as unknown as IncomingMessage, stream, EMPTY)
    .then((ws) => {
      stream.off('error', ignore);
      ws?.use(closeStreamAfterHandshake(stream));
    })
    .catch((err: unknown) => {
      log.error({ err }, 'extended CONNECT failed');
      stream.destroy();
    });
}

/**
 * The header fields the upgrade path validates, for an extended CONNECT: the regular ones,
 * `host` from :authority, and the HTTP/1.1 fields RFC 8441 §5 leaves out (Upgrade,
 * Connection, Sec-WebSocket-Key) as non-enumerable stand-ins, invisible to
 * Object.keys() and logging.
 */
function upgradeHeaders(h2: IncomingHttpHeaders, clientKey: string | undefined): IncomingHttpHeaders {
  const headers: IncomingHttpHeaders = {};
  for (const [name, value] of Object.entries(h2)) {
    if (name.startsWith(':') || name === 'sec-websocket-key') continue;
    headers[name] = value;
  }
  headers.host = h2[':authority'] as string;
  const hidden = (name: string, value: string) =>
    Object.defineProperty(headers, name, { value, enumerable: false, writable: true, configurable: true });
  hidden('upgrade', 'websocket');
  hidden('connection', 'upgrade');
  hidden('sec-websocket-key', clientKey ?? generateKey());
  return headers;
}

/** Connection-specific fields: not allowed in HTTP/2 (RFC 9113 §8.2.2), or RFC 6455-only. */
const DROPPED = new Set([
  'connection',
  'upgrade',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'sec-websocket-accept',
]);

/**
 * Intercepts the first write of the upgrade path, the HTTP/1.1 answer head, and sends it as
 * HTTP/2 response HEADERS instead: 101 becomes 200 (RFC 8441 §5); anything else is a
 * refusal with its status and body. Later writes are WebSocket frames, passed through.
 */
function answerAsHttp2(stream: ServerHttp2Stream, keepAccept: boolean): void {
  const restore = () => {
    Reflect.deleteProperty(stream, 'write');
    Reflect.deleteProperty(stream, 'end');
  };
  const define = (name: 'write' | 'end', value: unknown) =>
    Object.defineProperty(stream, name, { value, configurable: true, writable: true });
  define('write', (chunk: string | Uint8Array, ...rest: unknown[]): boolean => {
    restore();
    const [status, headers, body] = parseAnswer(chunk, keepAccept);
    if (status === 101) {
      respond(stream, 200, headers, false);
      const callback = rest.find((arg) => typeof arg === 'function') as (() => void) | undefined;
      if (callback) process.nextTick(callback);
      return true;
    }
    respond(stream, status, headers, body.length === 0);
    return body.length === 0 ? true : stream.write(body);
  });
  define('end', (chunk?: string | Uint8Array | (() => void)): ServerHttp2Stream => {
    restore();
    if (chunk === undefined || typeof chunk === 'function') return stream.end(chunk);
    const [status, headers, body] = parseAnswer(chunk, false);
    respond(stream, status === 101 ? 200 : status, headers, body.length === 0);
    if (body.length > 0) stream.end(body);
    stopRequest(stream);
    return stream;
  });
}

function respond(
  stream: ServerHttp2Stream,
  status: number,
  headers: OutgoingHttpHeaders,
  endStream: boolean,
) {
  if (stream.destroyed || stream.headersSent) return;
  // RFC 6455 §4.4 answers an unsupported version with 426 and Sec-WebSocket-Version; 426
  // means "use Upgrade", which HTTP/2 has not: send 400 with the version list instead.
  const code = status === 426 ? 400 : status;
  stream.respond({ ...headers, ':status': code }, { endStream });
}

/** Parses the head of an HTTP/1.1 answer written by the upgrade path. */
function parseAnswer(chunk: string | Uint8Array, keepAccept: boolean): [number, OutgoingHttpHeaders, Buffer] {
  const raw = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : Buffer.from(chunk);
  const split = raw.indexOf('\r\n\r\n');
  const head = raw.subarray(0, split === -1 ? raw.length : split).toString('latin1');
  const body = split === -1 ? EMPTY : raw.subarray(split + 4);
  const [statusLine = '', ...lines] = head.split('\r\n');
  const status = Number(statusLine.split(' ')[1]) || 500;
  const headers: OutgoingHttpHeaders = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    if (DROPPED.has(name) && !(keepAccept && name === 'sec-websocket-accept')) continue;
    const value = line.slice(colon + 1).trim();
    const previous = headers[name];
    headers[name] =
      previous === undefined
        ? value
        : Array.isArray(previous)
          ? [...previous, value]
          : [String(previous), value];
  }
  return [status, headers, body];
}

function refuse(stream: ServerHttp2Stream, status: number, message: string): void {
  if (stream.destroyed || stream.headersSent) return;
  const body = Buffer.from(`${message}\n`, 'utf8');
  stream.respond({
    ':status': status,
    'content-type': 'text/plain; charset=utf-8',
    'content-length': String(body.length),
  });
  stream.end(body);
  stopRequest(stream);
}

/**
 * After a complete refusal, RFC 9113 §8.1 lets the server end the request stream with
 * RST_STREAM(NO_ERROR): the client need not half-close a CONNECT it will not use. Node
 * sends the reset once the answer is written.
 */
function stopRequest(stream: ServerHttp2Stream): void {
  if (!stream.destroyed) stream.close(constants.NGHTTP2_NO_ERROR);
}

function ignore(): void {}

/**
 * RFC 6455 §7.1.1: after both Close frames the server closes the TCP connection first. Over
 * HTTP/2 the stream stands for it (RFC 8441 §5): once the peer's Close is in and our side is
 * ended (END_STREAM), the stream is closed with RST_STREAM(NO_ERROR) rather than waiting up
 * to closeTimeout for a client that never ends its side.
 */
function closeStreamAfterHandshake(stream: ServerHttp2Stream): Stage {
  const close = () => {
    if (!stream.destroyed) stream.close(constants.NGHTTP2_NO_ERROR);
  };
  return {
    name: 'h2-close-stream',
    inbound(frame) {
      if (frame.opcode === Opcode.CLOSE) {
        if (stream.writableFinished) close();
        else stream.once('finish', close);
      }
      return frame;
    },
  };
}

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
  const sessions = attachedServers.get(server) ?? new Set<Http2Session>();
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    for (const session of sessions) session.close();
  });
}
