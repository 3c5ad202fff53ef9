/**
 * WebSockets over HTTP/2 (RFC 8441), client side: `connect(url, { http2: true | 'auto' })`.
 * wss: negotiates h2 by ALPN, ws: uses h2c with prior knowledge (RFC 9113 §3.3). The
 * server's SETTINGS must carry SETTINGS_ENABLE_CONNECT_PROTOCOL = 1 (RFC 8441 §3); with
 * 'auto' a server without it (or without h2) gets the HTTP/1.1 Upgrade instead.
 */
import type { IncomingMessage } from 'node:http';
import {
  type ClientHttp2Session,
  type ClientHttp2Stream,
  connect as connectSession,
  constants,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
} from 'node:http2';
import { connect as netConnect } from 'node:net';
import type { Duplex } from 'node:stream';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import { HandshakeError, type HandshakeResponse } from '../protocol/errors.js';
import { formatExtensions } from '../protocol/extensions.js';
import { buildRequestHeaders, computeAccept, generateKey, validateResponse } from '../protocol/handshake.js';
import { buildOffers } from '../protocol/permessage-deflate.js';
import { agreedCompressor, readBody, tlsSettings, toOfferList } from './client-handshake.js';
import type { ClientOptions } from './client-options.js';
import { WebSocket } from './connection.js';
import { exposeAddresses } from './http2-exchange.js';
import { createLogger } from './logger.js';
import { DEFAULTS, type ResolvedConnectionOptions } from './options.js';
import { defaultStages } from './stages.js';

type Attempt = WebSocket | { error: HandshakeError; location: URL };

/** Header fields of an HTTP/1.1 upgrade that HTTP/2 forbids or RFC 8441 §5 drops. */
const NOT_IN_H2 = new Set(['host', 'upgrade', 'connection', 'sec-websocket-key', 'keep-alive']);

/**
 * One connection attempt over HTTP/2. `fallback` makes the same attempt over HTTP/1.1
 * (used by 'auto' when the server does not offer h2 or RFC 8441).
 */
export async function attemptHttp2(
  url: URL,
  options: ClientOptions,
  connectionOptions: ResolvedConnectionOptions,
  fallback: () => Promise<Attempt>,
): Promise<Attempt> {
  const auto = options.http2 === 'auto';
  const secure = url.protocol === 'wss:' || url.protocol === 'https:';
  // h2c has no negotiation: 'auto' on ws: would have to guess, so it uses HTTP/1.1.
  if (auto && !secure && options.http2Session === undefined) return fallback();
  const timeout = options.handshakeTimeout ?? DEFAULTS.handshakeTimeout;
  const deadline = new Deadline(timeout);
  try {
    const opened = options.http2Session ?? (await deadline.race(openSession(url, options, secure, auto)));
    if (opened === 'no-h2') return fallback();
    const session = opened;
    const owned = options.http2Session === undefined;
    if (!(await deadline.race(connectProtocolEnabled(session)))) {
      if (owned) session.close();
      if (auto) return fallback();
      throw new HandshakeError(
        'The server does not accept WebSockets over HTTP/2: its SETTINGS lack ' +
          'SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441 §3).',
        { status: 0 },
      );
    }
    return await deadline.race(request(url, options, connectionOptions, session, owned, deadline));
  } finally {
    deadline.clear();
  }
}

/** A handshake timeout over several steps: whatever step is running when it fires fails. */
class Deadline {
  private timer: NodeJS.Timeout | undefined;
  private readonly expired: Promise<never>;
  private readonly cleanups = new Set<() => void>();

  constructor(ms: number) {
    this.expired = new Promise<never>((_, reject) => {
      this.timer = setTimeout(() => {
        for (const cleanup of this.cleanups) cleanup();
        reject(new HandshakeError(`Handshake timed out after ${ms} ms`, { status: 0 }));
      }, ms);
    });
    this.expired.catch(() => {});
  }

  /** On expiry, `cleanup` runs (destroying what the step opened). */
  onExpiry(cleanup: () => void): void {
    this.cleanups.add(cleanup);
  }

  race<T>(step: Promise<T>): Promise<T> {
    return Promise.race([step, this.expired]);
  }

  clear(): void {
    clearTimeout(this.timer);
    this.cleanups.clear();
  }
}

function hostOf(url: URL): string {
  return url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
}

/** Opens the TCP/TLS connection and the HTTP/2 session; 'no-h2' when ALPN chose HTTP/1.1. */
async function openSession(
  url: URL,
  options: ClientOptions,
  secure: boolean,
  auto: boolean,
): Promise<ClientHttp2Session | 'no-h2'> {
  const host = hostOf(url);
  const port = url.port ? Number(url.port) : secure ? 443 : 80;
  const family = options.family ? { family: options.family } : {};
  let socket: Duplex;
  if (options.createConnection) {
    socket = options.createConnection();
  } else if (secure) {
    const tls = options.tls ?? {};
    const tlsSocket: TLSSocket = tlsConnect({
      host,
      port,
      ...family,
      // RFC 9113 §3.2: h2 is chosen by ALPN; 'auto' also offers HTTP/1.1.
      ALPNProtocols: auto ? ['h2', 'http/1.1'] : ['h2'],
      ...tlsSettings(tls, host),
    });
    await new Promise<void>((resolve, reject) => {
      tlsSocket.once('secureConnect', resolve);
      tlsSocket.once('error', reject);
    }).catch((err: unknown) => {
      tlsSocket.destroy();
      throw err;
    });
    if (tlsSocket.alpnProtocol !== 'h2') {
      tlsSocket.destroy();
      if (auto) return 'no-h2';
      throw new HandshakeError(
        `The server did not agree to HTTP/2 (ALPN: ${JSON.stringify(tlsSocket.alpnProtocol || 'none')}).`,
        { status: 0 },
      );
    }
    socket = tlsSocket;
  } else {
    socket = netConnect({ host, port, ...family });
  }
  const authority = `${secure ? 'https' : 'http'}://${url.host}`;
  const session = connectSession(authority, {
    createConnection: () => socket,
    settings: { enablePush: false },
  });
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => {
      session.off('remoteSettings', onSettings);
      session.destroy();
      reject(err);
    };
    const onSettings = () => {
      session.off('error', onError);
      // From now on a session error (an error GOAWAY, a reset TCP connection) closes its
      // streams, and each WebSocket on them with 1006; it must not crash the process.
      session.on('error', ignore);
      resolve();
    };
    session.once('remoteSettings', onSettings);
    session.once('error', onError);
  });
  return session;
}

/**
 * Has the server advertised SETTINGS_ENABLE_CONNECT_PROTOCOL? The server's SETTINGS is
 * the first frame it sends (RFC 9113 §3.4), so once a PING is answered they have arrived
 * (needed for a session given by the caller, whose settings may still be on the way).
 */
async function connectProtocolEnabled(session: ClientHttp2Session): Promise<boolean> {
  const enabled = () => session.remoteSettings.enableConnectProtocol === true;
  if (enabled()) return true;
  if (session.connecting) {
    await new Promise<void>((resolve, reject) => {
      session.once('connect', () => resolve());
      session.once('error', reject);
    });
  }
  // Whichever comes first: the SETTINGS themselves, or the answer to a PING sent after them.
  await new Promise<void>((resolve, reject) => {
    session.once('remoteSettings', () => resolve());
    const sent = session.ping((err) => (err ? reject(err) : resolve()));
    if (!sent) resolve();
  });
  return enabled();
}

function request(
  url: URL,
  options: ClientOptions,
  connectionOptions: ResolvedConnectionOptions,
  session: ClientHttp2Session,
  owned: boolean,
  deadline: Deadline,
): Promise<Attempt> {
  const key = generateKey(); // only to reuse the response checks; never sent
  const protocols = options.protocols ?? [];
  const deflateOffers = toOfferList(options.perMessageDeflate);
  const extensions = deflateOffers.length > 0 ? formatExtensions(buildOffers(deflateOffers)) : '';
  const upgradeHeaders = buildRequestHeaders({
    key,
    protocols,
    extensions,
    ...(options.origin !== undefined ? { origin: options.origin } : {}),
    ...(options.headers ? { headers: options.headers } : {}),
  });
  let authority = url.host;
  // RFC 8441 §4 / RFC 9113 §8.3.1: :authority carries what Host would (a Host given in
  // `headers` wins, as over HTTP/1.1).
  const headers: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(upgradeHeaders)) {
    const lower = name.toLowerCase();
    if (lower === 'host') authority = value;
    if (NOT_IN_H2.has(lower)) continue;
    headers[lower] = value;
  }
  if (url.username !== '' || url.password !== '') {
    const credentials = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
    headers.authorization ??= `Basic ${Buffer.from(credentials).toString('base64')}`;
  }
  const closeOwned = () => {
    if (owned && !session.closed) session.close();
  };

  return new Promise<Attempt>((resolve, reject) => {
    let stream: ClientHttp2Stream;
    try {
      stream = session.request(
        {
          ...headers,
          ':method': 'CONNECT',
          ':protocol': 'websocket',
          ':scheme': url.protocol === 'wss:' || url.protocol === 'https:' ? 'https' : 'http',
          ':path': `${url.pathname}${url.search}`,
          ':authority': authority,
        },
        { endStream: false },
      );
    } catch (err) {
      closeOwned();
      reject(err);
      return;
    }
    deadline.onExpiry(() => {
      stream.destroy();
      closeOwned();
    });
    const onEarly = (err: Error) => {
      closeOwned();
      reject(err);
    };
    stream.once('error', onEarly);
    const onEarlyClose = () => {
      closeOwned();
      reject(new HandshakeError(`The server reset the stream (code ${stream.rstCode ?? 0})`, { status: 0 }));
    };
    stream.once('close', onEarlyClose);
    stream.once('response', (h2: IncomingHttpHeaders) => {
      const status = Number(h2[':status']);
      const plain: Record<string, string | string[] | undefined> = {};
      for (const [name, value] of Object.entries(h2)) if (!name.startsWith(':')) plain[name] = value;
      if (status !== 200) {
        readBody(stream as unknown as IncomingMessage).then((body) => {
          const response: HandshakeResponse = { status, headers: plain, body };
          const error = new HandshakeError(`Unexpected server response: ${status}`, { response });
          stream.close(constants.NGHTTP2_CANCEL);
          const location = typeof plain.location === 'string' ? plain.location : undefined;
          if (status >= 300 && status < 400 && location !== undefined) {
            try {
              resolve({ error, location: new URL(location, url) });
              return;
            } catch {
              // An unparsable Location: report the response itself.
            }
          }
          reject(error);
        }, reject);
        return;
      }
      const response: HandshakeResponse = { status, headers: plain, body: '' };
      let ws: WebSocket;
      try {
        // RFC 8441 §5: a 2xx answer stands for 101, without Sec-WebSocket-Accept; the
        // subprotocol and extension checks are those of RFC 6455 §4.1.
        const checked = validateResponse(
          {
            status: 101,
            headers: {
              ...plain,
              upgrade: 'websocket',
              connection: 'upgrade',
              'sec-websocket-accept': computeAccept(key),
            },
          },
          { key, protocols },
        );
        // 1010 for an extension that was not offered, or an invalid answer (RFC 7692 §7.1).
        const compressor = agreedCompressor(checked.extensions, deflateOffers);
        exposeAddresses(stream, session.socket);
        stream.off('close', onEarlyClose);
        stream.off('error', onEarly);
        if (owned) stream.once('close', closeOwned); // the session lives as long as its WebSocket
        ws = new WebSocket({
          side: 'client',
          socket: stream,
          transport: 'h2',
          options: connectionOptions,
          // Auto-pong (RFC 6455 §5.5.2) and auto-ping, as over HTTP/1.1.
          stages: defaultStages(connectionOptions),
          ...(checked.protocol !== undefined ? { protocol: checked.protocol } : {}),
          extensions: checked.extensions.length > 0 ? formatExtensions(checked.extensions) : '',
          ...(compressor ? { compressor } : {}),
          path: url.pathname,
          logger: createLogger(options.logger, options.logLevel),
        });
      } catch (err) {
        // RFC 6455 §4.1: fail the connection; no Close frame, the stream is cancelled.
        stream.on('error', () => {});
        stream.close(constants.NGHTTP2_CANCEL);
        closeOwned();
        reject(
          err instanceof HandshakeError
            ? new HandshakeError(err.message, { status: err.status, response, cause: err })
            : err,
        );
        return;
      }
      resolve(ws);
    });
  });
}

function ignore(): void {}
