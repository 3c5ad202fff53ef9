import type { WebSocket } from './connection.js';
import type { Fanout } from './fanout.js';
import type { ConnectionOptions, DeflateOption, TlsOptions } from './options.js';
import type { OriginPolicy, UpgradeRequest } from './upgrade-request.js';

export type Handler = (ws: WebSocket, req: UpgradeRequest) => void | Promise<void>;

/** Writes the HTTP refusal of an upgrade: status, body and extra headers. */
export type Reply = (status: number, body?: string, headers?: Record<string, string>) => void;

export interface AccessHooks {
  /** Decides whether to accept; false -> accessDenied. Default: the same-origin check. */
  acceptConnection?: (req: UpgradeRequest) => boolean | Promise<boolean>;
  /** Writes the refusal. Default: 403 "Access denied". */
  accessDenied?: (req: UpgradeRequest, reply: Reply) => void;
  /** Allowed Origin values (globs; '*' for any) or a predicate, for the default acceptConnection. */
  origins?: OriginPolicy;
}

export interface RouteOptions extends AccessHooks, ConnectionOptions {
  /** Subprotocols this route speaks, as globs in preference order (or a chooser). */
  protocols?: readonly string[] | ((offered: string[]) => string | undefined | null);
  perMessageDeflate?: DeflateOption;
}

export interface ServerOptions extends RouteOptions {
  /** An upgrade request slower than this (ms) is dropped. Default 10000. */
  handshakeTimeout?: number;
  /** Further upgrades are answered 503 (with Retry-After). Default Infinity. */
  maxConnections?: number;
  /**
   * Upgrade requests received but not answered yet (their acceptConnection is still
   * running); further ones are answered 503 with Retry-After. Default 1024.
   */
  maxPendingHandshakes?: number;
  /**
   * Open connections plus pending handshakes from one remote address (IPv4-mapped IPv6
   * counts as IPv4); further ones are answered 503 with Retry-After. Default Infinity:
   * behind a reverse proxy or a large NAT every client has the same address.
   */
  maxConnectionsPerIp?: number;
  /** The Retry-After value (seconds) of the 503 answers above. Default 5. */
  retryAfter?: number;
  /** For listen(): serve wss:// with this certificate and key. */
  tls?: TlsOptions;
  /** Carries publish() to other processes (e.g. `redisFanout()` from @wskit/redis). */
  fanout?: Fanout;
}

export interface UpgradeContext {
  /** Route parameters found by a framework router. */
  params?: Record<string, string>;
  /** Per-route options from an adapter (override the server's). */
  route?: RouteOptions;
  /** The adapter's route pattern ('/chat/:room'), for stats and metrics labels. */
  pattern?: string;
}
