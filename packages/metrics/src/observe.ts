/**
 * The channel subscriptions shared by the Prometheus and OpenTelemetry exporters: events
 * of one server's connections are turned into calls on a `Sink` with bounded label
 * values (route patterns, codes, statuses; never raw paths).
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import {
  type BackpressureEvent,
  CHANNELS,
  type ConnectionCloseEvent,
  type HandlerErrorEvent,
  type HandshakeAcceptEvent,
  type HandshakeRefuseEvent,
  type MessageEvent,
  type PingRttEvent,
  type ProtocolErrorEvent,
  type WebSocket,
  type WebSocketServer,
} from '@wskit/core';

export type Direction = 'received' | 'sent';
/** Which endpoint sent the first Close: 'none' when neither did (the TCP connection just ended). */
export type CloseSide = 'server' | 'client' | 'none';

export interface Sink {
  handshake(outcome: 'accepted' | 'refused', status: number, seconds: number | undefined): void;
  /** `complete`: the message ends here (false for a fragment sent with fin: false). */
  message(
    direction: Direction,
    type: 'text' | 'binary',
    size: number,
    compressedSize: number | undefined,
    complete: boolean,
  ): void;
  close(code: number, side: CloseSide, route: string, seconds: number): void;
  rtt(seconds: number): void;
  backpressure(kind: BackpressureEvent['kind'], action: BackpressureEvent['action']): void;
  protocolError(code: number, reason: string): void;
  handlerError(route: string): void;
}

/** The transport label of a connection ('http/1.1' until the connection says otherwise). */
export function transportOf(ws: WebSocket): string {
  return (ws as { transport?: string }).transport ?? 'http/1.1';
}

/** Open connections of `wss` by route and transport (read when a scrape asks). */
export function connectionsByRouteAndTransport(
  wss: WebSocketServer,
): Array<{ route: string; transport: string; count: number }> {
  const counts = new Map<string, { route: string; transport: string; count: number }>();
  for (const ws of wss.clients) {
    const transport = transportOf(ws);
    const key = `${ws.route}\0${transport}`;
    const entry = counts.get(key);
    if (entry === undefined) counts.set(key, { route: ws.route, transport, count: 1 });
    else entry.count++;
  }
  return [...counts.values()];
}

/** The largest bufferedAmount among the open connections of `wss` (0 when none). */
export function maxBufferedAmount(wss: WebSocketServer): number {
  let max = 0;
  for (const ws of wss.clients) if (ws.bufferedAmount > max) max = ws.bufferedAmount;
  return max;
}

/**
 * Subscribes `sink` to the events of `wss`'s connections: those open now and those it
 * accepts from now on. Returns the function that unsubscribes.
 */
export function observe(wss: WebSocketServer, sink: Sink): () => void {
  const mine = new WeakSet<WebSocket>(wss.clients);
  const subscriptions: Array<[string, (message: unknown) => void]> = [];
  const on = <T>(name: string, fn: (event: T) => void) => {
    const listener = (message: unknown) => fn(message as T);
    diagnosticsChannel.subscribe(name, listener);
    subscriptions.push([name, listener]);
  };
  on<HandshakeAcceptEvent>(CHANNELS.handshakeAccept, (e) => {
    if (e.server !== wss) return;
    mine.add(e.ws);
    sink.handshake('accepted', 101, e.duration === undefined ? undefined : e.duration / 1000);
  });
  on<HandshakeRefuseEvent>(CHANNELS.handshakeRefuse, (e) => {
    if (e.server !== wss) return;
    sink.handshake('refused', e.status, e.duration === undefined ? undefined : e.duration / 1000);
  });
  on<MessageEvent>(CHANNELS.messageReceived, (e) => {
    if (mine.has(e.ws)) sink.message('received', e.type, e.size, e.compressedSize, true);
  });
  on<MessageEvent>(CHANNELS.messageSent, (e) => {
    // A fragmented message counts once (at its last fragment); its bytes count as they go.
    if (mine.has(e.ws)) sink.message('sent', e.type, e.size, e.compressedSize, e.fin);
  });
  on<ConnectionCloseEvent>(CHANNELS.connectionClose, (e) => {
    if (!mine.has(e.ws)) return;
    const local = e.ws.isServer ? 'server' : 'client';
    const remote = e.ws.isServer ? 'client' : 'server';
    const side: CloseSide = e.initiator === 'local' ? local : e.initiator === 'remote' ? remote : 'none';
    sink.close(e.effectiveCode, side, e.route, e.duration / 1000);
  });
  on<PingRttEvent>(CHANNELS.pingRtt, (e) => {
    if (mine.has(e.ws)) sink.rtt(e.rtt / 1000);
  });
  on<BackpressureEvent>(CHANNELS.backpressure, (e) => {
    if (mine.has(e.ws)) sink.backpressure(e.kind, e.action);
  });
  on<ProtocolErrorEvent>(CHANNELS.protocolError, (e) => {
    if (mine.has(e.ws)) sink.protocolError(e.code, e.reason);
  });
  on<HandlerErrorEvent>(CHANNELS.handlerError, (e) => {
    if (mine.has(e.ws)) sink.handlerError(e.ws.route);
  });
  return () => {
    for (const [name, listener] of subscriptions.splice(0)) diagnosticsChannel.unsubscribe(name, listener);
  };
}
