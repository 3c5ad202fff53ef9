import { CloseCode, type CloseReason, describeCloseCode } from './close-codes.js';

/**
 * A failure of the WebSocket connection, carrying the close code that the RFC assigns
 * to it (`code`) and its symbolic name (`reason`, e.g. 'protocol-error').
 */
export class WebSocketError extends Error {
  override name = 'WebSocketError';
  readonly code: number;
  readonly reason: CloseReason | 'application' | 'unknown';

  constructor(code: number, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.reason = describeCloseCode(code) as CloseReason | 'application' | 'unknown';
  }
}

/**
 * An operation that needs an open connection (send, ping) was called on one that is
 * closing or closed. It carries no close code: the connection's own close code is in
 * its 'close' event and `closed` promise.
 */
export class InvalidStateError extends Error {
  override name = 'InvalidStateError';
  /** The connection's readyState when the call was made (2 CLOSING, 3 CLOSED). */
  readonly readyState: number;

  constructor(message: string, readyState: number) {
    super(message);
    this.readyState = readyState;
  }
}

export const protocolError = (message: string) => new WebSocketError(CloseCode.PROTOCOL_ERROR, message);
export const invalidPayload = (message: string) =>
  new WebSocketError(CloseCode.INVALID_FRAME_PAYLOAD_DATA, message);
export const tooBig = (message: string) => new WebSocketError(CloseCode.MESSAGE_TOO_BIG, message);

/** What the server answered instead of `101 Switching Protocols`. */
export interface HandshakeResponse {
  status: number;
  statusText?: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/**
 * The opening handshake failed. On the client, `response` holds the server's non-101
 * answer when there was one. On the server side `status` is the HTTP status to answer with.
 */
export class HandshakeError extends Error {
  override name = 'HandshakeError';
  readonly response: HandshakeResponse | undefined;
  readonly status: number;
  readonly headers: Record<string, string>;

  constructor(
    message: string,
    options: {
      status?: number;
      headers?: Record<string, string>;
      response?: HandshakeResponse;
      cause?: unknown;
    } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.response = options.response;
    this.status = options.status ?? options.response?.status ?? 400;
    this.headers = options.headers ?? {};
  }
}
