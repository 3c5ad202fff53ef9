/**
 * The opening handshake (RFC 6455 §4), as pure functions: validating a client's upgrade
 * request, building the server's answer, building the client's request headers and
 * validating the server's answer. No sockets and no http module.
 */
import { Buffer } from 'node:buffer';
import { hash, randomBytes } from 'node:crypto';
import { HandshakeError } from './errors.js';
import { type ExtensionOffer, isToken, parseExtensions } from './extensions.js';
import { globMatch } from './glob.js';

/** RFC 6455 §1.3: the GUID appended to Sec-WebSocket-Key before hashing. */
export const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** The only protocol version wskit speaks (RFC 6455 §4.1). */
export const WS_VERSION = '13';

/** A fresh Sec-WebSocket-Key: 16 random bytes, base64 (RFC 6455 §4.1). */
export function generateKey(): string {
  return randomBytes(16).toString('base64');
}

/** Sec-WebSocket-Accept for a key: base64(SHA-1(key + GUID)) (RFC 6455 §4.2.2). */
export function computeAccept(key: string): string {
  // One-shot hash (Node >= 20.12): no Hash object per handshake.
  return hash('sha1', Buffer.from(key + WS_GUID, 'latin1'), 'base64');
}

// 22 base64 characters carry 132 bits; with "==" that is exactly 16 bytes.
const KEY_PATTERN = /^[A-Za-z0-9+/]{22}==$/;

/**
 * Is this a syntactically valid Sec-WebSocket-Key (base64 of exactly 16 bytes)? The
 * pattern alone says so: 22 base64 characters and "==" always decode to 16 bytes.
 */
export function isValidKey(key: string): boolean {
  return KEY_PATTERN.test(key);
}

// ---------------------------------------------------------------------------------------
// Header helpers

type HeaderValue = string | readonly string[] | undefined;
type HeaderBag = Record<string, string | string[] | undefined>;

/**
 * A header's value by lower-case name. Node's IncomingMessage.headers already uses
 * lower-case names; other spellings are found by a case-insensitive scan.
 */
function header(headers: HeaderBag, name: string): HeaderValue {
  const direct = headers[name];
  if (direct !== undefined) return direct;
  for (const key of Object.keys(headers)) {
    if (key.toLowerCase() === name) return headers[key];
  }
  return undefined;
}

/** A list-valued header as one comma-separated string (several lines are one list). */
function joined(value: HeaderValue): string | undefined {
  if (value === undefined) return undefined;
  return typeof value === 'string' ? value : value.join(', ');
}

/** A single-valued header; a repeated header yields all its values joined (and so fails). */
function single(value: HeaderValue): string | undefined {
  const text = joined(value);
  return text === undefined ? undefined : text.trim();
}

/** Does the comma-separated list contain `token` (ASCII case-insensitive)? */
function listHasToken(value: HeaderValue, token: string): boolean {
  const text = joined(value);
  if (text === undefined) return false;
  if (text.length === token.length && text.toLowerCase() === token) return true; // the usual single token
  return text.split(',').some((item) => item.trim().toLowerCase() === token);
}

/**
 * Parse a Sec-WebSocket-Protocol list. Returns the protocols, or a sentence describing the
 * problem. RFC 6455 §4.1: the elements are tokens and must be unique. Empty list elements
 * are ignored (RFC 7230 §7).
 */
function parseProtocols(value: HeaderValue): string[] | string {
  const text = joined(value);
  if (text === undefined) return [];
  const protocols: string[] = [];
  const seen = new Set<string>();
  for (const raw of text.split(',')) {
    const item = raw.replace(/^[ \t]+|[ \t]+$/g, '');
    if (item === '') continue;
    if (!isToken(item)) return `The subprotocol ${JSON.stringify(item)} is not a valid token.`;
    if (seen.has(item)) return `The subprotocol "${item}" is requested more than once.`;
    seen.add(item);
    protocols.push(item);
  }
  return protocols;
}

// ---------------------------------------------------------------------------------------
// Server: the request

/** The parts of an HTTP request the handshake looks at. Header names are lower-case. */
export interface RequestHead {
  method: string;
  httpVersion: string;
  url?: string | undefined;
  headers: Record<string, string | string[] | undefined>;
}

export interface ValidatedRequest {
  key: string;
  /** Requested subprotocols, in the client's order of preference. */
  protocols: string[];
  /** Requested extensions, in the client's order of preference. */
  extensions: ExtensionOffer[];
  origin: string | undefined;
  host: string | undefined;
}

function badRequest(message: string): HandshakeError {
  return new HandshakeError(message, { status: 400 });
}

/** Is "1.1" (or "HTTP/1.1") at least HTTP/1.1? */
function atLeastHttp11(version: string): boolean {
  if (version === '1.1') return true; // what Node's parser says for nearly every request
  const match = /^(?:HTTP\/)?(\d+)\.(\d+)$/i.exec(version.trim());
  if (match === null) return false;
  const major = Number(match[1]);
  const minor = Number(match[2]);
  return major > 1 || (major === 1 && minor >= 1);
}

/**
 * Validate a client's opening handshake (RFC 6455 §4.2.1). Throws HandshakeError with the
 * status (and headers) to answer with: 405 for a method other than GET, 426 for an
 * unsupported Sec-WebSocket-Version, 400 for everything else. The error message is a
 * sentence suitable as the response body.
 */
export function validateRequest(head: RequestHead): ValidatedRequest {
  const { headers } = head;

  // Methods are case-sensitive (RFC 9110 §9.1): "get" is not GET.
  if (head.method !== 'GET') {
    // RFC 6455 §4.2.1 item 1; RFC 9110 §15.5.6: a 405 answer lists the allowed methods.
    throw new HandshakeError(`The method ${head.method} is not allowed for a WebSocket upgrade; use GET.`, {
      status: 405,
      headers: { Allow: 'GET' },
    });
  }
  if (!atLeastHttp11(head.httpVersion)) {
    const shown = head.httpVersion.replace(/^HTTP\//i, '');
    throw badRequest(`A WebSocket upgrade requires HTTP/1.1 or later, but the request is HTTP/${shown}.`);
  }
  if (head.url !== undefined && head.url === '') {
    throw badRequest('The request has no target URI.');
  }
  const host = single(header(headers, 'host'));
  if (host === undefined || host === '') {
    throw badRequest('The Host header is missing.');
  }
  if (!listHasToken(header(headers, 'upgrade'), 'websocket')) {
    throw badRequest('The Upgrade header must contain "websocket".');
  }
  if (!listHasToken(header(headers, 'connection'), 'upgrade')) {
    throw badRequest('The Connection header must contain "Upgrade".');
  }
  const key = single(header(headers, 'sec-websocket-key'));
  if (key === undefined || key === '') {
    throw badRequest('The Sec-WebSocket-Key header is missing.');
  }
  if (!isValidKey(key)) {
    throw badRequest('The Sec-WebSocket-Key header must be the base64 encoding of 16 bytes.');
  }
  const version = single(header(headers, 'sec-websocket-version'));
  if (version !== WS_VERSION) {
    // RFC 6455 §4.2.2 / §4.4: answer 426 and list the versions we do speak.
    const what = version === undefined ? 'is missing' : `is ${JSON.stringify(version)}`;
    throw new HandshakeError(`The Sec-WebSocket-Version header ${what}; only version 13 is supported.`, {
      status: 426,
      headers: { 'Sec-WebSocket-Version': WS_VERSION },
    });
  }

  const protocols = parseProtocols(header(headers, 'sec-websocket-protocol'));
  if (typeof protocols === 'string') {
    throw badRequest(`Invalid Sec-WebSocket-Protocol header. ${protocols}`);
  }
  // parseExtensions throws HandshakeError (400) with a descriptive message.
  const extensions = parseExtensions(header(headers, 'sec-websocket-extensions'));
  const origin = single(header(headers, 'origin'));

  return { key, protocols, extensions, origin, host };
}

/**
 * Choose the subprotocol to answer with. With a list, the server's preference order wins:
 * for each supported pattern (a glob) in turn, the first offered protocol it matches is
 * chosen. A function chooses itself; an answer that is not one of the offered protocols
 * counts as none. Returns undefined when no protocol was offered or none fits (RFC 6455
 * §4.2.2: the server then sends no Sec-WebSocket-Protocol header).
 */
export function selectSubprotocol(
  offered: readonly string[],
  supported: readonly string[] | ((offered: string[]) => string | undefined | null),
): string | undefined {
  if (offered.length === 0) return undefined;
  if (typeof supported === 'function') {
    const choice = supported([...offered]);
    return typeof choice === 'string' && offered.includes(choice) ? choice : undefined;
  }
  for (const pattern of supported) {
    for (const protocol of offered) {
      if (globMatch(pattern, protocol)) return protocol;
    }
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------
// Server: the response

/** Reason phrases for the statuses a WebSocket server commonly answers with. */
export const STATUS_TEXT: Readonly<Record<number, string>> = {
  101: 'Switching Protocols',
  200: 'OK',
  301: 'Moved Permanently',
  302: 'Found',
  307: 'Temporary Redirect',
  308: 'Permanent Redirect',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  409: 'Conflict',
  413: 'Content Too Large',
  426: 'Upgrade Required',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

function checkHeaderName(name: string): void {
  if (!isToken(name)) throw new TypeError(`Invalid HTTP header name ${JSON.stringify(name)}`);
}

function checkHeaderValue(name: string, value: string): void {
  if (typeof value !== 'string') throw new TypeError(`The value of header "${name}" must be a string`);
  // A CR or LF would end the header line: header injection / response splitting.
  // RFC 9110 §5.5 also forbids NUL in field values.
  if (/[\r\n\0]/.test(value)) {
    throw new TypeError(`The value of header "${name}" contains a CR, LF or NUL character`);
  }
}

function headerLines(
  headers: Record<string, string | readonly string[]> | undefined,
  skip: ReadonlySet<string>,
): string {
  if (headers === undefined) return '';
  let out = '';
  for (const [name, value] of Object.entries(headers)) {
    checkHeaderName(name);
    if (skip.has(name.toLowerCase())) continue;
    const values = typeof value === 'string' ? [value] : value;
    for (const v of values) {
      checkHeaderValue(name, v);
      out += `${name}: ${v}\r\n`;
    }
  }
  return out;
}

const ACCEPT_RESERVED = new Set([
  'upgrade',
  'connection',
  'sec-websocket-accept',
  'sec-websocket-protocol',
  'sec-websocket-extensions',
]);

/**
 * The raw `101 Switching Protocols` response head, ending with CRLF CRLF. Extra `headers`
 * are appended; ones that would replace a handshake header (Upgrade, Connection,
 * Sec-WebSocket-*) are dropped. Throws TypeError for an invalid header name, a value
 * containing CR/LF, or a protocol that is not a token.
 */
export function buildAcceptResponse(opts: {
  key: string;
  protocol?: string;
  extensions?: string;
  headers?: Record<string, string | string[]>;
}): string {
  let head =
    'HTTP/1.1 101 Switching Protocols\r\n' +
    'Upgrade: websocket\r\n' +
    'Connection: Upgrade\r\n' +
    `Sec-WebSocket-Accept: ${computeAccept(opts.key)}\r\n`;
  if (opts.protocol !== undefined) {
    if (!isToken(opts.protocol)) throw new TypeError(`Invalid subprotocol ${JSON.stringify(opts.protocol)}`);
    head += `Sec-WebSocket-Protocol: ${opts.protocol}\r\n`;
  }
  if (opts.extensions !== undefined && opts.extensions !== '') {
    checkHeaderValue('Sec-WebSocket-Extensions', opts.extensions);
    head += `Sec-WebSocket-Extensions: ${opts.extensions}\r\n`;
  }
  head += headerLines(opts.headers, ACCEPT_RESERVED);
  return `${head}\r\n`;
}

const REJECT_RESERVED = new Set(['connection', 'content-length', 'transfer-encoding']);

/**
 * A raw HTTP/1.1 refusal with a plain-text body: `Connection: close`,
 * `Content-Type: text/plain; charset=utf-8` (unless `headers` sets another Content-Type)
 * and the body's length in bytes. Extra headers may not replace Connection,
 * Content-Length or Transfer-Encoding. Throws RangeError for a status outside 100..999 and
 * TypeError for an invalid header.
 */
export function buildRejectionResponse(
  status: number,
  body: string,
  headers?: Record<string, string>,
): string {
  if (!Number.isInteger(status) || status < 100 || status > 999) {
    throw new RangeError(`Invalid HTTP status code ${String(status)}`);
  }
  const text = STATUS_TEXT[status] ?? '';
  const hasContentType =
    headers !== undefined && Object.keys(headers).some((k) => k.toLowerCase() === 'content-type');
  let head = `HTTP/1.1 ${status} ${text}\r\nConnection: close\r\n`;
  if (!hasContentType) head += 'Content-Type: text/plain; charset=utf-8\r\n';
  head += `Content-Length: ${Buffer.byteLength(body, 'utf8')}\r\n`;
  head += headerLines(headers, REJECT_RESERVED);
  return `${head}\r\n${body}`;
}

// ---------------------------------------------------------------------------------------
// Client: the request

const REQUEST_RESERVED = new Set([
  'upgrade',
  'connection',
  'sec-websocket-key',
  'sec-websocket-version',
  'sec-websocket-protocol',
  'sec-websocket-extensions',
]);

/**
 * Check a client's list of subprotocols: each must be a token and none may repeat (RFC
 * 6455 §4.1). Throws SyntaxError (as the browser WebSocket constructor does).
 */
export function validateProtocols(protocols: readonly string[]): void {
  const seen = new Set<string>();
  for (const protocol of protocols) {
    if (typeof protocol !== 'string' || !isToken(protocol)) {
      throw new SyntaxError(`Invalid subprotocol ${JSON.stringify(protocol)}: it must be a non-empty token`);
    }
    if (seen.has(protocol)) throw new SyntaxError(`The subprotocol "${protocol}" is listed more than once`);
    seen.add(protocol);
  }
}

/**
 * The client's handshake request headers. User `headers` are merged in, but cannot replace
 * the handshake headers (Upgrade, Connection, Sec-WebSocket-*: those user entries are
 * dropped); a user Host or Origin is used only when `host`/`origin` is not given.
 * Throws SyntaxError for an invalid or repeated protocol and TypeError for a header name
 * that is not a token or a value containing CR/LF.
 */
export function buildRequestHeaders(opts: {
  key: string;
  host?: string;
  protocols?: string[];
  extensions?: string;
  origin?: string;
  headers?: Record<string, string>;
}): Record<string, string> {
  const out: Record<string, string> = {};
  const protocols = opts.protocols ?? [];
  validateProtocols(protocols);

  // User headers first, so that a Host/Origin given there keeps its place.
  const explicit = new Set<string>();
  if (opts.host !== undefined) explicit.add('host');
  if (opts.origin !== undefined) explicit.add('origin');
  for (const [name, value] of Object.entries(opts.headers ?? {})) {
    checkHeaderName(name);
    const lower = name.toLowerCase();
    if (REQUEST_RESERVED.has(lower) || explicit.has(lower)) continue;
    checkHeaderValue(name, value);
    out[name] = value;
  }

  if (opts.host !== undefined) {
    checkHeaderValue('Host', opts.host);
    out.Host = opts.host;
  }
  out.Upgrade = 'websocket';
  out.Connection = 'Upgrade';
  checkHeaderValue('Sec-WebSocket-Key', opts.key);
  out['Sec-WebSocket-Key'] = opts.key;
  out['Sec-WebSocket-Version'] = WS_VERSION;
  if (protocols.length > 0) out['Sec-WebSocket-Protocol'] = protocols.join(', ');
  if (opts.extensions !== undefined && opts.extensions !== '') {
    checkHeaderValue('Sec-WebSocket-Extensions', opts.extensions);
    out['Sec-WebSocket-Extensions'] = opts.extensions;
  }
  if (opts.origin !== undefined) {
    checkHeaderValue('Origin', opts.origin);
    out.Origin = opts.origin;
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Client: the response

/**
 * Validate the server's answer (RFC 6455 §4.1, the client's checks of the response).
 * Returns the chosen subprotocol and the accepted extensions; whether those extensions were
 * offered is for the caller to check. Throws HandshakeError (status = the response's status,
 * `response` left undefined for the caller to fill in).
 */
export function validateResponse(
  res: { status: number; headers: Record<string, string | string[] | undefined> },
  expected: { key: string; protocols: string[] },
): { protocol: string | undefined; extensions: ExtensionOffer[] } {
  const fail = (message: string, cause?: unknown) =>
    new HandshakeError(message, cause === undefined ? { status: res.status } : { status: res.status, cause });
  const { headers } = res;

  if (res.status !== 101) {
    const text = STATUS_TEXT[res.status];
    throw fail(
      `The server answered ${res.status}${text ? ` ${text}` : ''} instead of 101 Switching Protocols.`,
    );
  }
  if (!listHasToken(header(headers, 'upgrade'), 'websocket')) {
    throw fail('The server response has no "Upgrade: websocket" header.');
  }
  if (!listHasToken(header(headers, 'connection'), 'upgrade')) {
    throw fail('The server response has no "Connection: Upgrade" header.');
  }
  const accept = single(header(headers, 'sec-websocket-accept'));
  if (accept === undefined) {
    throw fail('The server response has no Sec-WebSocket-Accept header.');
  }
  if (accept !== computeAccept(expected.key)) {
    throw fail('The server response has a wrong Sec-WebSocket-Accept value.');
  }

  let protocol: string | undefined;
  const protocolHeader = header(headers, 'sec-websocket-protocol');
  if (protocolHeader !== undefined) {
    const text = single(protocolHeader)!;
    // RFC 6455 §11.3.4: the header appears at most once in a response, with one protocol.
    if ((typeof protocolHeader !== 'string' && protocolHeader.length > 1) || text.includes(',')) {
      throw fail('The server selected more than one subprotocol.');
    }
    if (expected.protocols.length === 0) {
      throw fail(`The server selected the subprotocol ${JSON.stringify(text)}, but none was requested.`);
    }
    if (!expected.protocols.includes(text)) {
      throw fail(`The server selected the subprotocol ${JSON.stringify(text)}, which was not requested.`);
    }
    protocol = text;
  }

  let extensions: ExtensionOffer[];
  try {
    extensions = parseExtensions(header(headers, 'sec-websocket-extensions'));
  } catch (error) {
    const detail = (error instanceof Error ? error.message : String(error)).replace(
      /^Invalid Sec-WebSocket-Extensions header: /,
      '',
    );
    throw fail(`The server response has an invalid Sec-WebSocket-Extensions header: ${detail}`, error);
  }
  return { protocol, extensions };
}
