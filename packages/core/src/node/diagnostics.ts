/**
 * Observability hooks on `node:diagnostics_channel`: the channels, their payloads, and the
 * small `publishX()` functions that build a payload. The I/O code calls them behind a
 * `channel.hasSubscribers` check, so nothing is built (and no function is called) while
 * nobody listens. Channels are process-wide: one subscriber sees every server and client
 * of the process (payloads carry the `ws` and, for handshakes, the `server`).
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { describeCloseCode } from '../protocol/close-codes.js';
import type { WebSocketError } from '../protocol/errors.js';
import { Opcode } from '../protocol/frame.js';
import type { CloseInfo } from './connection-types.js';
import type { Message } from './message.js';

/** The names of the channels, as `diagnostics_channel.subscribe()` takes them. */
export const CHANNELS = {
  handshakeStart: 'wskit:handshake:start',
  handshakeAccept: 'wskit:handshake:accept',
  handshakeRefuse: 'wskit:handshake:refuse',
  connectionOpen: 'wskit:connection:open',
  connectionClose: 'wskit:connection:close',
  messageReceived: 'wskit:message:received',
  messageSent: 'wskit:message:sent',
  pingRtt: 'wskit:ping:rtt',
  backpressure: 'wskit:backpressure',
  protocolError: 'wskit:error:protocol',
  handlerError: 'wskit:error:handler',
} as const;

/** The names of the TracingChannels (`diagnostics_channel.tracingChannel(name)`). */
export const TRACING_CHANNELS = {
  /** Around a server's handling of an upgrade request, up to 101 or the refusal. */
  handshake: 'wskit:handshake',
  /** Around a 'message' listener call (its synchronous part) or a consume() handler. */
  message: 'wskit:message',
} as const;

/**
 * What the publishers read from a connection (WebSocket has all of it). Structural, so
 * that this module needs nothing from connection.ts; the payload types in
 * diagnostics-types.ts name the WebSocket.
 */
export interface ObservedConnection {
  readonly route: string;
  readonly protocol: string;
  readonly extensions: string;
  readonly transport: string;
  readonly bufferedAmount: number;
  readonly openedAt: number;
  messagesReceived: number;
  messagesSent: number;
  bytesReceived: number;
  bytesSent: number;
  peerClosedFirst: boolean;
  emit(event: string | symbol, ...args: unknown[]): boolean;
}
type WebSocket = ObservedConnection;

/** Which server, if any, a handshake event is about (structural). */
export interface DiagnosticsServer {
  stats(): unknown;
}

export const channels = {
  handshakeStart: diagnosticsChannel.channel(CHANNELS.handshakeStart),
  handshakeAccept: diagnosticsChannel.channel(CHANNELS.handshakeAccept),
  handshakeRefuse: diagnosticsChannel.channel(CHANNELS.handshakeRefuse),
  connectionOpen: diagnosticsChannel.channel(CHANNELS.connectionOpen),
  connectionClose: diagnosticsChannel.channel(CHANNELS.connectionClose),
  messageReceived: diagnosticsChannel.channel(CHANNELS.messageReceived),
  messageSent: diagnosticsChannel.channel(CHANNELS.messageSent),
  pingRtt: diagnosticsChannel.channel(CHANNELS.pingRtt),
  backpressure: diagnosticsChannel.channel(CHANNELS.backpressure),
  protocolError: diagnosticsChannel.channel(CHANNELS.protocolError),
  handlerError: diagnosticsChannel.channel(CHANNELS.handlerError),
};

export const tracing = {
  handshake: diagnosticsChannel.tracingChannel<object, object>(TRACING_CHANNELS.handshake),
  message: diagnosticsChannel.tracingChannel<object, object>(TRACING_CHANNELS.message),
};

/** The transport label of a connection ('http/1.1' until a connection says otherwise). */
export function transportOf(ws: WebSocket): string {
  return ws.transport;
}

// ---- handshakes ------------------------------------------------------------------------

/** When each handshake seen by a subscriber started (only filled while someone listens). */
interface HandshakeStartOf {
  request: IncomingMessage;
  start: number;
}
const handshakeStarts = new WeakMap<Duplex, HandshakeStartOf>();

/** True when any handshake channel (plain or tracing) has a subscriber. */
export function handshakeObserved(): boolean {
  return (
    channels.handshakeStart.hasSubscribers ||
    channels.handshakeAccept.hasSubscribers ||
    channels.handshakeRefuse.hasSubscribers
  );
}

export function publishHandshakeStart(
  server: DiagnosticsServer,
  request: IncomingMessage,
  socket: Duplex,
): void {
  handshakeStarts.set(socket, { request, start: performance.now() });
  if (channels.handshakeStart.hasSubscribers) {
    channels.handshakeStart.publish({ server, request, socket });
  }
}

/** The start recorded for this socket's handshake, forgotten as it is read. */
function takeStart(socket: Duplex): HandshakeStartOf | undefined {
  const started = handshakeStarts.get(socket);
  handshakeStarts.delete(socket);
  return started;
}

/** Milliseconds since the handshake started, if its start was recorded. */
function sinceStart(started: HandshakeStartOf | undefined): number | undefined {
  return started === undefined ? undefined : performance.now() - started.start;
}

export function publishHandshakeAccept(
  server: DiagnosticsServer,
  request: IncomingMessage,
  socket: Duplex,
  ws: WebSocket,
): void {
  const started = takeStart(socket);
  if (!channels.handshakeAccept.hasSubscribers) return;
  channels.handshakeAccept.publish({
    server,
    request,
    ws,
    route: ws.route,
    protocol: ws.protocol,
    extensions: ws.extensions,
    duration: sinceStart(started),
  });
}

export function publishHandshakeRefuse(
  server: DiagnosticsServer,
  socket: Duplex,
  status: number,
  body: string,
): void {
  const started = takeStart(socket);
  if (!channels.handshakeRefuse.hasSubscribers) return;
  channels.handshakeRefuse.publish({
    server,
    request: started?.request,
    socket,
    status,
    reason: body.endsWith('\n') ? body.slice(0, -1) : body,
    duration: sinceStart(started),
  });
}

/** Runs a server's upgrade, inside the 'wskit:handshake' TracingChannel when someone listens. */
export function traceHandshake<T extends WebSocket | null>(
  server: DiagnosticsServer,
  request: IncomingMessage,
  socket: Duplex,
  fn: () => Promise<T>,
): Promise<T> {
  if (!tracing.handshake.hasSubscribers) return fn();
  const context = { server, request, socket };
  return tracing.handshake.tracePromise(fn, context) as Promise<T>;
}

// ---- connections -----------------------------------------------------------------------

export function publishConnectionOpen(ws: WebSocket): void {
  channels.connectionOpen.publish({
    ws,
    route: ws.route,
    transport: transportOf(ws),
  });
}

/** Who sent the first Close, from what the connection recorded. */
export function closeInitiator(
  ws: WebSocket,
  sentCode: number | undefined,
  receivedClose: boolean,
): 'local' | 'remote' | 'none' {
  if (ws.peerClosedFirst) return 'remote';
  if (sentCode !== undefined) return 'local';
  return receivedClose ? 'remote' : 'none';
}

export function publishClose(
  ws: WebSocket,
  info: CloseInfo,
  sentCode: number | undefined,
  received: object | undefined,
): void {
  const initiator = closeInitiator(ws, sentCode, received !== undefined);
  channels.connectionClose.publish({
    ws,
    route: ws.route,
    transport: transportOf(ws),
    code: info.code,
    reason: info.reason,
    wasClean: info.wasClean,
    sentCode,
    initiator,
    effectiveCode: initiator === 'local' && sentCode !== undefined ? sentCode : info.code,
    duration: performance.now() - ws.openedAt,
    messagesReceived: ws.messagesReceived,
    messagesSent: ws.messagesSent,
    bytesReceived: ws.bytesReceived,
    bytesSent: ws.bytesSent,
  });
}

// ---- messages --------------------------------------------------------------------------

/** Counts a received message; publishes it when someone listens. */
export function noteReceived(ws: WebSocket, msg: Message, compressedSize: number): void {
  ws.messagesReceived++;
  ws.bytesReceived += msg.data.length;
  if (channels.messageReceived.hasSubscribers) received(ws, msg, compressedSize);
}

/** Publishes a received message (the connection counts it itself). */
export function received(ws: WebSocket, msg: Message, compressedSize: number): void {
  channels.messageReceived.publish({
    ws,
    type: msg.type,
    size: msg.data.length,
    compressedSize: compressedSize > 0 ? compressedSize : undefined,
    fin: true,
  });
}

/** Publishes a data frame group handed to the protocol (the connection counts it itself). */
export function sent(
  ws: WebSocket,
  opcode: number,
  size: number,
  fin: boolean,
  compressedSize: number,
): void {
  channels.messageSent.publish({
    ws,
    type: opcode === Opcode.TEXT ? 'text' : 'binary',
    size,
    compressedSize: compressedSize >= 0 ? compressedSize : undefined,
    fin,
  });
}

/**
 * Counts a data frame group handed to the protocol (a message, or a fragment when `fin`
 * is false); publishes it when someone listens. `compressedSize` < 0: not compressed.
 */
export function noteSent(
  ws: WebSocket,
  opcode: number,
  size: number,
  fin: boolean,
  compressedSize: number,
): void {
  if (fin) ws.messagesSent++;
  ws.bytesSent += size;
  if (channels.messageSent.hasSubscribers) sent(ws, opcode, size, fin, compressedSize);
}

/** noteSent() for a send that waited in the queue (and may have been compressed to `wireSize`). */
export function noteQueuedSent(
  ws: WebSocket,
  item: { opcode: number; payload: Buffer; fin: boolean; compress: boolean },
  wireSize: number,
): void {
  noteSent(ws, item.opcode, item.payload.length, item.fin, item.compress ? wireSize : -1);
}

/** The payload length of a complete unmasked frame encoded for publish(). */
function encodedPayloadSize(bytes: Buffer): number {
  const len = bytes[1]! & 0x7f;
  const header = len === 126 ? 4 : len === 127 ? 10 : 2;
  return bytes.length - header;
}

/** Counts a published frame written to one connection (see WebSocket.sendEncoded). */
export function noteSentEncoded(ws: WebSocket, bytes: Buffer): void {
  const compressed = (bytes[0]! & 0x40) !== 0;
  const size = encodedPayloadSize(bytes);
  // A compressed published frame is per connection and went through send(): not here.
  noteSent(ws, bytes[0]! & 0x0f, size, true, compressed ? size : -1);
}

export function publishPingRtt(ws: WebSocket, rtt: number): void {
  channels.pingRtt.publish({ ws, rtt });
}

/** The socket's buffer went past its high-water mark: sends wait for 'drain'. */
export function highWater(ws: WebSocket, socket: Duplex): void {
  publishBackpressure(ws, 'high-water', 'wait', socket.writableHighWaterMark);
}

/** The unread backlog went past maxBufferedAmount. */
export function slowConsumer(
  ws: WebSocket,
  options: { maxBufferedAmount: number; onBackpressure?: unknown },
): void {
  publishBackpressure(
    ws,
    'slow-consumer',
    options.onBackpressure ? 'callback' : 'close',
    options.maxBufferedAmount,
  );
}

function publishBackpressure(
  ws: WebSocket,
  kind: 'high-water' | 'slow-consumer',
  action: 'wait' | 'callback' | 'close',
  limit: number,
): void {
  channels.backpressure.publish({
    ws,
    kind,
    action,
    bufferedAmount: ws.bufferedAmount,
    limit,
  });
}

export function publishProtocolError(ws: WebSocket, error: WebSocketError): void {
  channels.protocolError.publish({
    ws,
    code: error.code,
    reason: describeCloseCode(error.code),
    message: error.message,
    error,
  });
}

export function publishHandlerError(ws: WebSocket, error: unknown): void {
  channels.handlerError.publish({ ws, error });
}

/**
 * Emits 'message' inside the 'wskit:message' TracingChannel (its synchronous part). The
 * connection checks `tracing.message.start.hasSubscribers` per message (one check, not
 * five): subscribe with a `start` handler or bind a store to `start`.
 */
export function traceListeners(ws: WebSocket, message: Message): void {
  const context = { ws, message, via: 'listener' };
  tracing.message.traceSync(() => ws.emit('message', message), context);
}

/** Runs a consume() handler, inside the 'wskit:message' TracingChannel (until it settles) when someone listens. */
export function runHandler<W extends ObservedConnection>(
  ws: W,
  message: Message,
  handler: (msg: Message, ws: W) => unknown,
): unknown {
  if (!tracing.message.hasSubscribers) return handler(message, ws);
  const context = { ws, message, via: 'consume' };
  return tracing.message.tracePromise(async () => handler(message, ws), context);
}
