import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';

/** What a connection does with its socket's events. */
export interface SocketSink {
  socketData(chunk: Buffer): void;
  /** The peer ended its side. */
  socketEnd(): void;
  /** The socket is gone. */
  socketClosed(): void;
  socketError(err: Error): void;
  socketDrained(): void;
}

/** Where a socket's shared listeners find their connection. */
const kSink = Symbol('wskit.connection');
type OwnedSocket = Duplex & { [kSink]: SocketSink };

// The listeners are shared by every connection (no closures per connection): each finds
// its connection through the socket (`this`).
const listeners: Array<[string, (this: OwnedSocket, ...args: never[]) => void]> = [
  [
    'data',
    function (this: OwnedSocket, chunk: Buffer) {
      this[kSink].socketData(chunk);
    },
  ],
  [
    'end',
    function (this: OwnedSocket) {
      this[kSink].socketEnd();
    },
  ],
  [
    'close',
    function (this: OwnedSocket) {
      this[kSink].socketClosed();
    },
  ],
  [
    'error',
    function (this: OwnedSocket, err: Error) {
      this[kSink].socketError(err);
    },
  ],
  [
    'drain',
    function (this: OwnedSocket) {
      this[kSink].socketDrained();
    },
  ],
];

/**
 * Routes a socket's events to `sink`, with Nagle off and no socket idle timeout (the
 * connection has its own). A peer that ended its side before anyone listened (e.g.
 * while an async acceptConnection ran) won't emit 'end' again: the sink hears of it now.
 */
export function bindSocket(socket: Duplex, sink: SocketSink): void {
  const s = socket as Partial<Socket>;
  if (typeof s.setNoDelay === 'function') s.setNoDelay(true);
  if (typeof s.setTimeout === 'function') s.setTimeout(0);
  (socket as OwnedSocket)[kSink] = sink;
  for (const [event, listener] of listeners) socket.on(event, listener as (...args: unknown[]) => void);
  if (s.readableEnded === true) queueMicrotask(() => sink.socketEnd());
}
