import type { IncomingMessage } from 'node:http';
import type { Http2ServerRequest } from 'node:http2';
import type { Duplex } from 'node:stream';
import {
  buildAcceptResponse,
  buildRejectionResponse,
  type ValidatedRequest,
  validateRequest,
} from '../protocol/handshake.js';
import type { Transport } from './connection.js';

/** The request of an upgrade: an HTTP/1.1 Upgrade, or an HTTP/2 extended CONNECT. */
export type RawUpgradeRequest = IncomingMessage | Http2ServerRequest;

/** What the server answers an accepted upgrade with. */
export interface AcceptAnswer {
  /** The Sec-WebSocket-Key that validate() returned. */
  key: string;
  protocol?: string;
  /** The negotiated Sec-WebSocket-Extensions value ('' for none). */
  extensions: string;
}

/**
 * One upgrade request and the way to answer it: the handshake (accept-upgrade.ts) decides,
 * the exchange speaks the transport. Over HTTP/1.1 the answers are bytes on the socket
 * (101, or a refusal and the socket closed); over HTTP/2 they are response HEADERS on the
 * stream (RFC 8441 §5: 200, or the refusal's :status).
 */
export interface UpgradeExchange {
  readonly transport: Transport;
  /** The request as Node gave it (headers, url, socket), seen by hooks as `UpgradeRequest.raw`. */
  readonly req: RawUpgradeRequest;
  /** The byte stream that carries the WebSocket after the answer: the socket, or the HTTP/2 stream. */
  readonly stream: Duplex;
  /** Bytes that arrived after the request head (HTTP/1.1 only). */
  readonly head: Buffer;
  /** Checks the request; throws HandshakeError with the status and headers to refuse with. */
  validate(): ValidatedRequest;
  /** Sends the acceptance. Throws TypeError for a field that cannot be sent. */
  accept(answer: AcceptAnswer): void;
  /** Sends a refusal (a plain-text body) and ends the exchange. */
  refuse(status: number, body: string, headers?: Record<string, string>): void;
}

/** An HTTP/1.1 Upgrade (RFC 6455 §4.2): the answers are written to the socket. */
export class Http1Exchange implements UpgradeExchange {
  readonly transport = 'http/1.1';

  constructor(
    readonly req: IncomingMessage,
    readonly stream: Duplex,
    readonly head: Buffer,
  ) {}

  validate(): ValidatedRequest {
    const req = this.req;
    return validateRequest({
      method: req.method ?? '',
      httpVersion: req.httpVersion,
      url: req.url,
      headers: req.headers,
    });
  }

  accept(answer: AcceptAnswer): void {
    const { key, protocol, extensions } = answer;
    this.stream.write(
      buildAcceptResponse({ key, ...(protocol !== undefined ? { protocol } : {}), extensions }),
    );
  }

  refuse(status: number, body: string, headers?: Record<string, string>): void {
    const socket = this.stream;
    if (socket.destroyed) return;
    let response: string;
    try {
      response = buildRejectionResponse(status, body, headers);
    } catch {
      response = buildRejectionResponse(500, 'Internal Server Error\n');
    }
    // The socket outlives this call while the answer drains: a reset now must not
    // become an unhandled 'error' event.
    socket.on('error', ignore);
    socket.end(response);
    // Don't wait forever for a peer that doesn't read its answer.
    setTimeout(() => socket.destroy(), 1000).unref();
  }
}

function ignore(): void {}
