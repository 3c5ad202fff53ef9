import type { SecureContextOptions } from 'node:tls';
import type { PerMessageDeflateOptions } from '../protocol/permessage-deflate.js';
import type { ResolvedConnectionOptions, WebSocket } from './connection.js';
import type { Logger, LogLevel } from './logger.js';
import { type RateLimitOptions, validateRateLimit } from './rate-limit.js';

/** Options of a connection, on both sides. Defaults in DEFAULTS below and in DESIGN.md. */
export interface ConnectionOptions {
  /** Background ping every this many ms; 0 turns keepalive off. Default 15000. */
  pingInterval?: number;
  /** Close with 1001 when nothing (not even a pong) arrived for this long; 0 = off. Default 60000. */
  connectionTimeout?: number;
  /** Wait this long for the peer's Close (and its TCP close) before destroying. Default 5000. */
  closeTimeout?: number;
  /** Largest frame payload accepted; larger: close 1009 without reading it. Default 1 MiB. */
  maxFrameSize?: number;
  /** Largest message accepted (after decompression); larger: close 1009. Default 1 MiB. */
  maxMessageSize?: number;
  /** Outgoing bytes allowed to queue up for a slow peer; past it: close 1008. Default 16 MiB. */
  maxBufferedAmount?: number;
  /** Called instead of closing with 1008 when maxBufferedAmount is passed. */
  onBackpressure?: (ws: WebSocket) => void;
  /** Received messages held for a consumer before the socket stops being read. Default 64. */
  maxQueuedMessages?: number;
  /** Frames one received message may span; one more closes with 1009. Default 16384. */
  maxFragments?: number;
  /** Inbound message rate limit per connection (token bucket). Default: none. */
  rateLimit?: RateLimitOptions;
  /** Answer no pings (pongs still count as liveness). Default false. */
  dropIncomingPings?: boolean;
  /** Also report the peer's protocol errors through 'error' events. Default false. */
  propagateCommonErrors?: boolean;
  logger?: Logger;
  logLevel?: LogLevel;
}

export type { ResolvedConnectionOptions };

export const DEFAULTS = {
  pingInterval: 15_000,
  connectionTimeout: 60_000,
  closeTimeout: 5_000,
  handshakeTimeout: 10_000,
  maxFrameSize: 1024 * 1024,
  maxMessageSize: 1024 * 1024,
  maxBufferedAmount: 16 * 1024 * 1024,
  maxQueuedMessages: 64,
  maxFragments: 16384,
} as const;

function nonNegative(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || Number.isNaN(value) || value < 0) {
    throw new RangeError(`${name} must be a non-negative number (got ${String(value)})`);
  }
  return value;
}

function checkedRateLimit(limit: RateLimitOptions | undefined): RateLimitOptions | undefined {
  if (limit !== undefined) validateRateLimit(limit);
  return limit;
}

export function resolveConnectionOptions(o: ConnectionOptions = {}): ResolvedConnectionOptions {
  return {
    pingInterval: nonNegative('pingInterval', o.pingInterval, DEFAULTS.pingInterval),
    connectionTimeout: nonNegative('connectionTimeout', o.connectionTimeout, DEFAULTS.connectionTimeout),
    closeTimeout: nonNegative('closeTimeout', o.closeTimeout, DEFAULTS.closeTimeout),
    maxFrameSize: nonNegative('maxFrameSize', o.maxFrameSize, DEFAULTS.maxFrameSize),
    maxMessageSize: nonNegative('maxMessageSize', o.maxMessageSize, DEFAULTS.maxMessageSize),
    maxBufferedAmount: nonNegative('maxBufferedAmount', o.maxBufferedAmount, DEFAULTS.maxBufferedAmount),
    onBackpressure: o.onBackpressure,
    maxQueuedMessages: Math.max(
      1,
      nonNegative('maxQueuedMessages', o.maxQueuedMessages, DEFAULTS.maxQueuedMessages),
    ),
    maxFragments: Math.max(1, nonNegative('maxFragments', o.maxFragments, DEFAULTS.maxFragments)),
    rateLimit: checkedRateLimit(o.rateLimit),
    dropIncomingPings: o.dropIncomingPings ?? false,
    propagateCommonErrors: o.propagateCommonErrors ?? false,
  };
}

/** TLS material for wss:// (client) or for the standalone server's https listener. */
export interface TlsOptions extends Pick<SecureContextOptions, 'ca' | 'cert' | 'key' | 'passphrase' | 'pfx'> {
  rejectUnauthorized?: boolean;
  servername?: string;
}

export type DeflateOption = boolean | PerMessageDeflateOptions;
