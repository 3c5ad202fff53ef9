// The payloads of the diagnostics channels (see diagnostics.ts). A module of types only,
// so that the connection code, which publishes them, never imports the connection type back.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocketError } from '../protocol/errors.js';
import type { WebSocket } from './connection.js';
import type { Message } from './message.js';

/** Which server, if any, a handshake event is about (a structural type: no import cycle). */
export interface DiagnosticsServer {
  stats(): unknown;
}

export interface HandshakeStartEvent {
  server: DiagnosticsServer;
  request: IncomingMessage;
  socket: Duplex;
}

export interface HandshakeAcceptEvent {
  server: DiagnosticsServer;
  request: IncomingMessage;
  ws: WebSocket;
  /** The route pattern that matched ('' when an adapter gave none). */
  route: string;
  protocol: string;
  extensions: string;
  /** ms since the request reached the server (undefined if its start was not seen). */
  duration: number | undefined;
}

export interface HandshakeRefuseEvent {
  server: DiagnosticsServer;
  /** undefined when the refusal's request was not seen by a subscriber at its start. */
  request: IncomingMessage | undefined;
  socket: Duplex;
  /** The HTTP status of the refusal (403, 404, 400, 426, 503, ...). */
  status: number;
  /** The refusal's body text, without the trailing newline. */
  reason: string;
  duration: number | undefined;
}

export interface ConnectionOpenEvent {
  ws: WebSocket;
  route: string;
  transport: string;
}

export interface ConnectionCloseEvent {
  ws: WebSocket;
  route: string;
  transport: string;
  /** As the connection's 'close' event reports it (the peer's code, 1005 or 1006). */
  code: number;
  reason: string;
  wasClean: boolean;
  /** The code of the Close this side sent, if it sent one. */
  sentCode: number | undefined;
  /** Who sent the first Close frame: this side, the peer, or nobody (the TCP connection just ended). */
  initiator: 'local' | 'remote' | 'none';
  /** The code that ended the connection: sentCode if this side closed first, else code. */
  effectiveCode: number;
  /** ms the connection was open. */
  duration: number;
  messagesReceived: number;
  messagesSent: number;
  /** Payload bytes of data messages (after inflation / before deflation). */
  bytesReceived: number;
  bytesSent: number;
}

export interface MessageEvent {
  ws: WebSocket;
  type: 'text' | 'binary';
  /** Payload bytes (uncompressed). */
  size: number;
  /** Bytes on the wire when the message was compressed (permessage-deflate), else undefined. */
  compressedSize: number | undefined;
  /** false for a fragment of a message sent with `fin: false` (sent side only). */
  fin: boolean;
}

export interface PingRttEvent {
  ws: WebSocket;
  /** Round-trip time of the ping, in ms. */
  rtt: number;
}

export interface BackpressureEvent {
  ws: WebSocket;
  /**
   * 'high-water': the socket's buffer went past its high-water mark (sends now wait for
   * 'drain'); 'slow-consumer': the unread backlog went past maxBufferedAmount, and the
   * connection is closed with 1008 ('close') or handed to onBackpressure ('callback').
   */
  kind: 'high-water' | 'slow-consumer';
  action: 'wait' | 'close' | 'callback';
  bufferedAmount: number;
  /** The mark that was passed (bytes). */
  limit: number;
}

export interface ProtocolErrorEvent {
  ws: WebSocket;
  /** The close code the failure closes with (1002, 1007, 1008, 1009, 1011, ...). */
  code: number;
  /** Symbol-like name of the code ('protocol-error', 'message-too-big', ...). */
  reason: string;
  /** What was violated, in words. */
  message: string;
  error: WebSocketError;
}

export interface HandlerErrorEvent {
  ws: WebSocket;
  error: unknown;
}

/** The context object of the 'wskit:handshake' TracingChannel. */
export interface HandshakeTraceContext {
  server: DiagnosticsServer;
  request: IncomingMessage;
  socket: Duplex;
  /** Set when the handshake ends: the connection, or null when refused. */
  result?: WebSocket | null;
  error?: unknown;
}

/** The context object of the 'wskit:message' TracingChannel. */
export interface MessageTraceContext {
  ws: WebSocket;
  message: Message;
  /** 'listener': a 'message' event listener; 'consume': a consume() handler. */
  via: 'listener' | 'consume';
  result?: unknown;
  error?: unknown;
}
