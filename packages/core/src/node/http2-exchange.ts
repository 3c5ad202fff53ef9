/**
 * The upgrade exchange of a WebSocket over HTTP/2 (RFC 8441): an extended CONNECT stream
 * checked with the rules of RFC 8441 §4-5 and answered with response HEADERS.
 */
import {
  constants,
  type Http2ServerRequest,
  type Http2ServerResponse,
  type OutgoingHttpHeaders,
  type ServerHttp2Stream,
} from 'node:http2';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { HandshakeError } from '../protocol/errors.js';
import { computeAccept, isValidKey, type ValidatedRequest, validateRequest } from '../protocol/handshake.js';
import type { AcceptAnswer, UpgradeExchange } from './upgrade-exchange.js';

const EMPTY = Buffer.alloc(0);

/** Stands for the Sec-WebSocket-Key HTTP/2 does without, in validation only (never sent). */
const NO_KEY = 'AAAAAAAAAAAAAAAAAAAAAA==';

/** Connection-specific fields: not allowed in HTTP/2 (RFC 9113 §8.2.2), or RFC 6455-only. */
const NOT_IN_H2 = new Set([
  'connection',
  'upgrade',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'sec-websocket-accept',
]);

/** Is this an extended CONNECT (RFC 8441 §4: a CONNECT with `:protocol`)? */
export function isExtendedConnect(headers: Record<string, unknown>): boolean {
  return headers[':method'] === 'CONNECT' && headers[':protocol'] !== undefined;
}

/** Does the extended CONNECT ask for a WebSocket (RFC 8441 §4, `:protocol` websocket)? */
export function isWebSocketConnect(headers: Record<string, unknown>): boolean {
  const protocol = headers[':protocol'];
  return isExtendedConnect(headers) && typeof protocol === 'string' && protocol.toLowerCase() === 'websocket';
}

/** An extended CONNECT with `:protocol` websocket (RFC 8441 §5). */
export class Http2Exchange implements UpgradeExchange {
  readonly transport = 'h2';
  readonly stream: ServerHttp2Stream;
  readonly head = EMPTY;
  private clientKey: string | undefined;

  constructor(readonly req: Http2ServerRequest) {
    this.stream = req.stream;
    exposeAddresses(this.stream, this.stream.session?.socket as Socket | undefined);
  }

  /**
   * RFC 8441 §5: the request is that of RFC 6455 §4.2.1 with `:method` CONNECT and
   * `:protocol` websocket for the GET, and without Upgrade, Connection and
   * Sec-WebSocket-Key; `:scheme`, `:path` and `:authority` are required (RFC 8441 §4).
   * The remaining rules (version 13, the protocol and extension lists) are those of
   * RFC 6455, checked by the same code on a view of the request made for it.
   */
  validate(): ValidatedRequest {
    const h2 = this.req.headers;
    for (const name of [':scheme', ':path', ':authority'] as const) {
      const value = h2[name];
      if (typeof value !== 'string' || value === '') {
        throw new HandshakeError(`The extended CONNECT request has no ${name} pseudo-header.`, {
          status: 400,
        });
      }
    }
    // Some clients (undici 7) still send a key over h2 and check the accept value.
    const sent = h2['sec-websocket-key'];
    this.clientKey = typeof sent === 'string' && isValidKey(sent) ? sent : undefined;
    const headers: Record<string, string | string[] | undefined> = {};
    for (const [name, value] of Object.entries(h2)) if (!name.startsWith(':')) headers[name] = value;
    try {
      const validated = validateRequest({
        method: 'GET',
        httpVersion: '1.1',
        url: h2[':path'] as string,
        headers: {
          ...headers,
          host: h2[':authority'] as string,
          upgrade: 'websocket',
          connection: 'upgrade',
          'sec-websocket-key': this.clientKey ?? NO_KEY,
        },
      });
      return validated;
    } catch (err) {
      // 426 means "switch to the Upgrade", which HTTP/2 has not: 400, with the versions.
      if (err instanceof HandshakeError && err.status === 426)
        throw new HandshakeError(err.message, { status: 400, headers: err.headers });
      throw err;
    }
  }

  accept(answer: AcceptAnswer): void {
    const headers: OutgoingHttpHeaders = { ':status': 200 };
    if (answer.protocol !== undefined) headers['sec-websocket-protocol'] = answer.protocol;
    if (answer.extensions !== '') headers['sec-websocket-extensions'] = answer.extensions;
    if (this.clientKey !== undefined) headers['sec-websocket-accept'] = computeAccept(this.clientKey);
    this.stream.respond(headers, { endStream: false });
    // RFC 6455 §7.1.1: after the closing handshake the server closes the connection first.
    // Our END_STREAM stands for it (RFC 8441 §5); a peer that does not end its side then
    // gets RST_STREAM(NO_ERROR), instead of holding the stream until closeTimeout.
    this.stream.once('finish', () => stopRequest(this.stream));
  }

  refuse(status: number, body: string, headers: Record<string, string> = {}): void {
    const stream = this.stream;
    if (stream.destroyed || stream.headersSent) return;
    const fields: OutgoingHttpHeaders = { 'content-type': 'text/plain; charset=utf-8' };
    for (const [name, value] of Object.entries(headers)) {
      const lower = name.toLowerCase();
      if (!NOT_IN_H2.has(lower) && lower !== 'content-length') fields[lower] = value;
    }
    const bytes = Buffer.from(body, 'utf8');
    fields['content-length'] = String(bytes.length);
    try {
      stream.respond({ ...fields, ':status': status });
    } catch {
      const text = Buffer.from('Internal Server Error\n');
      stream.respond({ ':status': 500, 'content-type': 'text/plain', 'content-length': text.length });
      stream.end(text);
      stopRequest(stream);
      return;
    }
    stream.end(bytes);
    stopRequest(stream);
  }
}

/**
 * After a complete answer, RFC 9113 §8.1 lets the server end the request stream with
 * RST_STREAM(NO_ERROR): the client need not half-close a CONNECT it will not use. Node
 * sends the reset once the answer is written.
 */
export function stopRequest(stream: ServerHttp2Stream): void {
  if (!stream.destroyed && !stream.closed && !stream.readableEnded) stream.close(constants.NGHTTP2_NO_ERROR);
}

/** A framework's refusal through the compatibility response ends the request stream too. */
export function refusalEndsStream(res: Http2ServerResponse): () => void {
  const onFinish = () => stopRequest(res.stream);
  res.once('finish', onFinish);
  return () => res.off('finish', onFinish);
}

/** The connection reads its peer's address from its socket: give the stream the session's. */
export function exposeAddresses(stream: Duplex, socket: Socket | undefined): void {
  const fields = {
    remoteAddress: socket?.remoteAddress,
    remotePort: socket?.remotePort,
    localAddress: socket?.localAddress,
    localPort: socket?.localPort,
  };
  for (const [name, value] of Object.entries(fields)) {
    Object.defineProperty(stream, name, { value, configurable: true, enumerable: false });
  }
}
