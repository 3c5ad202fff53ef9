import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocket } from './connection.js';

/** How a connection arrived: an HTTP/1.1 Upgrade, or an HTTP/2 stream (RFC 8441). */
export type Transport = 'http/1.1' | 'h2';

const kTransport = Symbol('wskit.transport');

declare module './connection.js' {
  interface WebSocket {
    /** 'h2' for a WebSocket carried by an HTTP/2 stream (RFC 8441), else 'http/1.1'. */
    readonly transport: Transport;
  }
}

type Marked = Duplex & { [kTransport]?: Transport };

/** Marks a byte stream (an HTTP/2 stream) as the transport of the WebSocket built on it. */
export function markTransport(stream: Duplex, transport: Transport): void {
  (stream as Marked)[kTransport] = transport;
}

// The connection keeps its byte stream in `socket`; the mark on it says which transport
// it is. (A `transport` field in ConnectionInit would do the same without reaching in.)
Object.defineProperty(WebSocket.prototype, 'transport', {
  configurable: true,
  enumerable: false,
  get(this: WebSocket): Transport {
    const socket = (this as unknown as { socket?: Marked }).socket;
    return socket?.[kTransport] ?? 'http/1.1';
  },
});

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
