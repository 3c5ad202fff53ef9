import type { ClientHttp2Session } from 'node:http2';
import type { Duplex } from 'node:stream';
import type { PerMessageDeflateOptions } from '../protocol/permessage-deflate.js';
import type { ConnectionOptions, TlsOptions } from './options.js';

export interface ClientOptions extends ConnectionOptions {
  /** Subprotocols to offer, in order of preference. */
  protocols?: string[];
  /** Extra request headers. */
  headers?: Record<string, string>;
  /** The Origin header (browsers send one; Node clients usually don't). */
  origin?: string;
  /**
   * permessage-deflate: true for the defaults, options, or a list of offers tried in order
   * (e.g. `[{ serverMaxWindowBits: 10 }, {}]`: "window 10, else plain deflate").
   */
  perMessageDeflate?: boolean | PerMessageDeflateOptions | PerMessageDeflateOptions[];
  /**
   * Follow up to this many 3xx redirects (never more than 20, whatever the value). Default 0.
   * A redirect to another origin (scheme, host or port) drops the credentials: the
   * Authorization, Cookie and Proxy-Authorization entries of `headers` (and a Host entry),
   * and user info in the URL. A URL seen before on the way is a loop and fails.
   */
  followRedirects?: number;
  /** Follow redirects from wss: to ws: (https: to http:). Default false: such a redirect fails. */
  allowInsecureRedirects?: boolean;
  /** Origin-form request line (GET /path). false sends the absolute form (GET ws://host/path). Default true. */
  stripHost?: boolean;
  tls?: TlsOptions;
  /** 4 or 6: resolve the host name to IPv4 or IPv6 only. */
  family?: 4 | 6;
  /** The handshake must complete within this many ms. Default 10000. */
  handshakeTimeout?: number;
  /**
   * Advanced: supplies the transport instead of a TCP/TLS connection (an in-memory duplex
   * pair for tests, a tunnel). The handshake and everything after run over it.
   */
  createConnection?: () => Duplex;
  /**
   * WebSocket over HTTP/2 (RFC 8441): true requires it (h2 by ALPN for wss:, h2c with prior
   * knowledge for ws:); 'auto' uses it when the server offers h2 and advertises
   * SETTINGS_ENABLE_CONNECT_PROTOCOL, else the HTTP/1.1 Upgrade ('auto' on ws: is HTTP/1.1).
   * Default false.
   */
  http2?: boolean | 'auto';
  /**
   * An open HTTP/2 session (from `http2.connect()`) to carry this WebSocket as one more
   * stream: several WebSockets then share one TCP connection. The caller closes it.
   */
  http2Session?: ClientHttp2Session;
}
