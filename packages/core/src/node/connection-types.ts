import type { Duplex } from 'node:stream';
import type { Frame } from '../protocol/frame.js';
import type { Side } from '../protocol/protocol.js';
import type { MessageCompressor } from './compressor.js';
import type { Logger } from './logger.js';
import type { RateLimitOptions } from './rate-limit.js';
import type { Clock } from './timer-wheel.js';

// The types of a connection, written over the connection type `W` so that this module
// needs nothing from connection.ts (which instantiates them with WebSocket).

export interface SendOptions {
  /** Send a string as a binary message. Buffers and views are binary unless `binary: false`. */
  binary?: boolean;
  /** false: don't compress this message even when permessage-deflate is on. */
  compress?: boolean;
  /** false: this is a fragment; later sends of the same type continue it until fin: true. */
  fin?: boolean;
}

export interface CloseInfo {
  /** The peer's close code, 1005 when its Close had none, 1006 when there was no Close. */
  code: number;
  reason: string;
  /** Both Close frames were exchanged before the TCP connection ended. */
  wasClean: boolean;
}

/** How a connection arrived: an HTTP/1.1 Upgrade, or an HTTP/2 stream (RFC 8441). */
export type Transport = 'http/1.1' | 'h2';

/**
 * A frame interceptor. `inbound` sees each frame received before the connection acts
 * on it, `outbound` each frame before it is encoded; both return the frame (possibly a
 * changed one), or null to swallow it. Stages run in the order they were added
 * (outbound ones in reverse), and must not block.
 */
export interface StageOf<W> {
  readonly name: string;
  inbound?(frame: Frame, ws: W): Frame | null;
  outbound?(frame: Frame, ws: W): Frame | null;
  /** Called when the stage is added to an open connection. */
  attach?(ws: W): void;
  /** Called when the stage is removed or the connection closes. */
  detach?(ws: W): void;
}

/** The server a server-side connection belongs to: topic subscriptions, and its end. */
export interface TopicHubOf<W> {
  subscribe(ws: W, topic: string): void;
  unsubscribe(ws: W, topic: string): void;
  /**
   * Called once when the connection is closed (before its 'close' event), with how it
   * closed, the code of the Close we sent, and whether the peer's arrived.
   */
  connectionClosed?(ws: W, info: CloseInfo, sentCode?: number, receivedClose?: boolean): void;
}

/** A connection's options with every default applied (see options.ts). */
export interface ConnectionSettings<W> {
  pingInterval: number;
  connectionTimeout: number;
  closeTimeout: number;
  maxFrameSize: number;
  maxMessageSize: number;
  maxBufferedAmount: number;
  onBackpressure: ((ws: W) => void) | undefined;
  maxQueuedMessages: number;
  maxFragments: number;
  rateLimit: RateLimitOptions | undefined;
  dropIncomingPings: boolean;
  propagateCommonErrors: boolean;
}

export interface ConnectionInitOf<W> {
  side: Side;
  socket: Duplex;
  options: ConnectionSettings<W>;
  protocol?: string;
  extensions?: string;
  compressor?: MessageCompressor;
  path?: string;
  /** Bytes that arrived with the handshake, after its head. */
  head?: Buffer;
  logger?: Logger;
  hub?: TopicHubOf<W>;
  /** Stages attached before anything is read (auto-pong, auto-ping). */
  stages?: readonly StageOf<W>[];
  /** Timers and time; the system's by default. */
  clock?: Clock;
  /** How the connection arrived. Default 'http/1.1'. */
  transport?: Transport;
  /** The route pattern the server matched (stats and diagnostics labels). */
  route?: string;
}
