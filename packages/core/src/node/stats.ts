/**
 * `wss.stats()`: what a server holds and has done. Open connections are counted when
 * stats() is called (from their own counters); closed ones are added into a few totals
 * when they close. Nothing is allocated per connection or per message.
 */
import type { CloseInfo, WebSocket } from './connection.js';
import { closeInitiator, transportOf } from './diagnostics.js';

export interface ServerStats {
  /** Open connections (handshake done, not closed yet). */
  connections: number;
  /** Open connections by route pattern ('' for connections an adapter gave no pattern). */
  connectionsByRoute: Record<string, number>;
  /** Open connections by transport ('http/1.1', 'h2'). */
  connectionsByTransport: Record<string, number>;
  /** Handshakes answered since the server was created. */
  handshakes: { accepted: number; refused: number };
  /** Data messages and their payload bytes (uncompressed), open and closed connections together. */
  messages: { received: number; sent: number };
  bytes: { received: number; sent: number };
  /** Connections closed so far. */
  closed: number;
  /**
   * Connections closed so far, by the code that ended them: the code this side sent when
   * it closed first, else the code the connection reported (1006 for no Close at all).
   */
  closeCodes: Record<string, number>;
}

/** The running totals of a server (see ServerStats). */
export class ServerTotals {
  accepted = 0;
  refused = 0;
  private closedCount = 0;
  private messagesReceived = 0;
  private messagesSent = 0;
  private bytesReceived = 0;
  private bytesSent = 0;
  private readonly closeCodes = new Map<number, number>();

  /** A connection of the server closed: its counters join the totals. */
  closed(ws: WebSocket, info: CloseInfo, sentCode: number | undefined, receivedClose: boolean): void {
    this.closedCount++;
    this.messagesReceived += ws.messagesReceived;
    this.messagesSent += ws.messagesSent;
    this.bytesReceived += ws.bytesReceived;
    this.bytesSent += ws.bytesSent;
    const local = closeInitiator(ws, sentCode, receivedClose) === 'local' && sentCode !== undefined;
    const code = local ? sentCode : info.code;
    this.closeCodes.set(code, (this.closeCodes.get(code) ?? 0) + 1);
  }

  snapshot(open: Iterable<WebSocket>): ServerStats {
    const byRoute: Record<string, number> = {};
    const byTransport: Record<string, number> = {};
    let connections = 0;
    let messagesReceived = this.messagesReceived;
    let messagesSent = this.messagesSent;
    let bytesReceived = this.bytesReceived;
    let bytesSent = this.bytesSent;
    for (const ws of open) {
      connections++;
      byRoute[ws.route] = (byRoute[ws.route] ?? 0) + 1;
      const transport = transportOf(ws);
      byTransport[transport] = (byTransport[transport] ?? 0) + 1;
      messagesReceived += ws.messagesReceived;
      messagesSent += ws.messagesSent;
      bytesReceived += ws.bytesReceived;
      bytesSent += ws.bytesSent;
    }
    const closeCodes: Record<string, number> = {};
    for (const [code, n] of [...this.closeCodes].sort((a, b) => a[0] - b[0])) closeCodes[code] = n;
    return {
      connections,
      connectionsByRoute: byRoute,
      connectionsByTransport: byTransport,
      handshakes: { accepted: this.accepted, refused: this.refused },
      messages: { received: messagesReceived, sent: messagesSent },
      bytes: { received: bytesReceived, sent: bytesSent },
      closed: this.closedCount,
      closeCodes,
    };
  }
}
