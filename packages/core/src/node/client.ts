import { type ClientRequest, request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Duplex } from 'node:stream';
import { HandshakeError, type HandshakeResponse } from '../protocol/errors.js';
import { formatExtensions } from '../protocol/extensions.js';
import { buildRequestHeaders, generateKey, validateResponse } from '../protocol/handshake.js';
import { buildOffers, validateDeflateOptions } from '../protocol/permessage-deflate.js';
import { agreedCompressor, readBody, tlsSettings, toOfferList } from './client-handshake.js';
import type { ClientOptions } from './client-options.js';
import { WebSocket } from './connection.js';
import { attemptHttp2 } from './http2-client.js';
import { createLogger } from './logger.js';
import { DEFAULTS, resolveConnectionOptions } from './options.js';
import { defaultStages } from './stages.js';

/** The hard cap on redirects followed by one connect(), whatever followRedirects says. */
export const MAX_REDIRECTS = 20;

/** Request headers that carry credentials: never sent on to another origin. */
const CREDENTIAL_HEADERS = new Set(['authorization', 'cookie', 'proxy-authorization']);

/**
 * Opens a WebSocket connection (ws: or wss:). Resolves once the handshake succeeded.
 * A non-101 answer rejects with HandshakeError whose `.response` holds status, headers
 * and body; a response that breaks the protocol rejects with HandshakeError, an
 * unacceptable extension answer with WebSocketError 1010.
 */
export async function connect(url: string | URL, options: ClientOptions = {}): Promise<WebSocket> {
  const connectionOptions = resolveConnectionOptions(options);
  for (const offer of toOfferList(options.perMessageDeflate)) validateDeflateOptions(offer, 'client');
  let target = new URL(url);
  const limit = Math.min(Math.max(0, Math.floor(options.followRedirects ?? 0)), MAX_REDIRECTS);
  let hopOptions = options;
  const visited = new Set([visitKey(target)]);
  for (let hops = 0; ; hops++) {
    const outcome = await attempt(target, hopOptions, connectionOptions);
    if (outcome instanceof WebSocket) return outcome;
    const { error, location } = outcome;
    const fail = (message: string) =>
      new HandshakeError(message, {
        ...(error.response ? { response: error.response } : { status: error.status }),
        cause: error,
      });
    if (limit === 0) throw error;
    const answer = `${error.response?.status ?? ''} to ${redact(location)}`;
    if (hops >= limit) {
      throw fail(
        `Too many redirects: followed ${hops} (followRedirects: ${limit}); the last was a ${answer}.`,
      );
    }
    if (isSecure(target) && !isSecure(location) && options.allowInsecureRedirects !== true) {
      throw fail(
        `Refused a redirect from ${redact(target)} to ${redact(location)}: it leaves TLS. ` +
          'Set allowInsecureRedirects to follow it.',
      );
    }
    const key = visitKey(location);
    if (visited.has(key)) throw fail(`Redirect loop: ${redact(location)} was already visited.`);
    visited.add(key);
    if (originOf(location) !== originOf(target)) {
      // Another origin gets none of the caller's credentials (the WHATWG Fetch rules
      // for a cross-origin redirect), and once dropped they stay dropped.
      location.username = '';
      location.password = '';
      hopOptions = { ...hopOptions, ...withoutCredentials(hopOptions.headers) };
    }
    target = location;
  }
}

function isSecure(url: URL): boolean {
  return url.protocol === 'wss:' || url.protocol === 'https:';
}

/** scheme://host:port, with ws: counted as http: and wss: as https: (same transport). */
function originOf(url: URL): string {
  const secure = isSecure(url);
  const port = url.port || (secure ? '443' : '80');
  return `${secure ? 'https' : url.protocol === 'ws:' || url.protocol === 'http:' ? 'http' : url.protocol}//${url.hostname.toLowerCase()}:${port}`;
}

function visitKey(url: URL): string {
  return `${originOf(url)}${url.pathname}${url.search}`;
}

/** A URL for messages: no user info. */
function redact(url: URL): string {
  const copy = new URL(url.href);
  copy.username = '';
  copy.password = '';
  return copy.href;
}

function withoutCredentials(headers: Record<string, string> | undefined): {
  headers?: Record<string, string>;
} {
  if (headers === undefined) return {};
  const kept: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase();
    // A Host header named the old origin; node writes the new one.
    if (CREDENTIAL_HEADERS.has(lower) || lower === 'host') continue;
    kept[name] = value;
  }
  return { headers: kept };
}

type Attempt = WebSocket | { error: HandshakeError; location: URL };

function attempt(
  url: URL,
  options: ClientOptions,
  connectionOptions: ReturnType<typeof resolveConnectionOptions>,
): Promise<Attempt> {
  const secure = url.protocol === 'wss:' || url.protocol === 'https:';
  if (!secure && url.protocol !== 'ws:' && url.protocol !== 'http:') {
    return Promise.reject(new SyntaxError(`Unsupported URL scheme ${url.protocol} (use ws: or wss:)`));
  }
  if ((options.http2 !== undefined && options.http2 !== false) || options.http2Session !== undefined) {
    return attemptHttp2(url, options, connectionOptions, () =>
      attempt(url, { ...options, http2: false }, connectionOptions),
    );
  }
  const key = generateKey();
  const protocols = options.protocols ?? [];
  const deflateOffers = toOfferList(options.perMessageDeflate);
  const extensions = deflateOffers.length > 0 ? formatExtensions(buildOffers(deflateOffers)) : '';
  const hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const port = url.port ? Number(url.port) : secure ? 443 : 80;
  const headers = buildRequestHeaders({
    key,
    protocols,
    extensions,
    ...(options.origin !== undefined ? { origin: options.origin } : {}),
    ...(options.headers ? { headers: options.headers } : {}),
  });
  // RFC 9110 §4.2.4: user info never goes into a request target.
  const path = options.stripHost === false ? redact(url) : `${url.pathname}${url.search}`;
  // User info in the URL is sent as Basic credentials (an Authorization header wins).
  const auth =
    url.username !== '' || url.password !== ''
      ? `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`
      : undefined;
  const tls = options.tls ?? {};
  const timeout = options.handshakeTimeout ?? DEFAULTS.handshakeTimeout;
  const log = createLogger(options.logger, options.logLevel);

  return new Promise<Attempt>((resolve, reject) => {
    let settled = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      fn();
    };
    const requestOptions = {
      host: hostname,
      port,
      path,
      method: 'GET',
      headers,
      ...(auth !== undefined ? { auth } : {}),
      // A custom transport replaces the agent (node uses createConnection only without one).
      ...(options.createConnection
        ? { createConnection: options.createConnection }
        : { agent: false as const }),
      ...(options.family ? { family: options.family } : {}),
      ...(secure
        ? {
            ...tlsSettings(tls, hostname),
          }
        : {}),
    };
    const req: ClientRequest = secure ? httpsRequest(requestOptions) : httpRequest(requestOptions);
    const timer = setTimeout(() => {
      settle(() => reject(new HandshakeError(`Handshake timed out after ${timeout} ms`, { status: 0 })));
      req.destroy();
    }, timeout);

    req.on('error', (err) => settle(() => reject(err)));

    req.on('response', (res: IncomingMessage) => {
      readBody(res).then(
        (body) => {
          const response: HandshakeResponse = {
            status: res.statusCode ?? 0,
            ...(res.statusMessage !== undefined ? { statusText: res.statusMessage } : {}),
            headers: res.headers,
            body,
          };
          const error = new HandshakeError(
            `Unexpected server response: ${response.status}${res.statusMessage ? ` ${res.statusMessage}` : ''}`,
            { response },
          );
          const location = res.headers.location;
          if (response.status >= 300 && response.status < 400 && location) {
            try {
              settle(() => resolve({ error, location: new URL(location, url) }));
              return;
            } catch {
              // An unparsable Location: report the response itself.
            }
          }
          settle(() => reject(error));
        },
        (err: unknown) => settle(() => reject(err)),
      );
    });

    req.on('upgrade', (res: IncomingMessage, socket: Duplex, head: Buffer) => {
      const response: HandshakeResponse = { status: res.statusCode ?? 0, headers: res.headers, body: '' };
      let ws: WebSocket;
      try {
        const checked = validateResponse(
          { status: response.status, headers: res.headers },
          { key, protocols },
        );
        // 1010 for an extension that was not offered, or an invalid answer (RFC 7692 §7.1).
        const compressor = agreedCompressor(checked.extensions, deflateOffers);
        ws = new WebSocket({
          side: 'client',
          socket,
          options: connectionOptions,
          stages: defaultStages(connectionOptions),
          ...(checked.protocol !== undefined ? { protocol: checked.protocol } : {}),
          extensions: checked.extensions.length > 0 ? formatExtensions(checked.extensions) : '',
          ...(compressor ? { compressor } : {}),
          path: url.pathname,
          head,
          logger: log,
        });
      } catch (err) {
        failUpgrade(socket);
        const error =
          err instanceof HandshakeError
            ? new HandshakeError(err.message, { status: err.status, response, cause: err })
            : err;
        settle(() => reject(error));
        return;
      }
      settle(() => resolve(ws));
    });

    req.end();
  });
}

/**
 * RFC 6455 §4.1: a client that rejects the server's handshake response (a wrong accept
 * key, a subprotocol or extension it did not offer) "MUST _Fail the WebSocket
 * Connection_". The WebSocket connection was never established, so no frame is sent,
 * not even a Close (the 1010 of §7.4.1 is what the caller sees): the TCP connection is
 * just closed.
 */
function failUpgrade(socket: Duplex): void {
  socket.on('error', () => {}); // a reset now must not become an uncaught error
  socket.destroy();
}

export type { ClientOptions } from './client-options.js';
