import type { IncomingHttpHeaders } from 'node:http';
import type { ExtensionOffer } from '../protocol/extensions.js';
import { parseExtensions } from '../protocol/extensions.js';
import type { RawUpgradeRequest } from './upgrade-exchange.js';

/** What a handler and the access hooks learn about an upgrade request. */
export interface UpgradeRequest {
  /** The request target in origin form, e.g. "/chat/42?token=x" (even if sent in absolute form). */
  url: string;
  /** The path without the query, e.g. "/chat/42". */
  path: string;
  query: URLSearchParams;
  /** Route parameters, filled by the framework adapters ({} otherwise). */
  params: Record<string, string>;
  /** The request's header fields as received (over HTTP/2 with the pseudo-headers). */
  headers: IncomingHttpHeaders;
  origin: string | undefined;
  /** The Host header, or over HTTP/2 the `:authority` (RFC 9113 §8.3.1). */
  host: string | undefined;
  remoteAddress: string | undefined;
  remotePort: number | undefined;
  /** Subprotocols the client asked for, in its order of preference. */
  protocols: string[];
  /** Extensions the client offered. */
  extensions: ExtensionOffer[];
  /** The underlying Node request: an IncomingMessage, or an Http2ServerRequest over HTTP/2. */
  raw: RawUpgradeRequest;
}

/** A list of allowed Origin values (globs, '*' for any) or a predicate. */
export type OriginPolicy = readonly string[] | ((origin: string, req: UpgradeRequest) => boolean);

/**
 * The origin form ("/path?query") of a request target. RFC 9112 §3.2.2: a server must
 * also accept the absolute form ("ws://host/path?query"), which some clients send.
 */
export function originForm(target: string): string {
  if (target.startsWith('/')) return target;
  try {
    const parsed = new URL(target);
    return `${parsed.pathname}${parsed.search}`;
  } catch {
    return target;
  }
}

export function buildUpgradeRequest(
  raw: RawUpgradeRequest,
  fields: {
    protocols: string[];
    extensions: ExtensionOffer[];
    params?: Record<string, string> | undefined;
    /** The URL to describe, when a framework rewrote `raw.url` (Express's originalUrl). */
    url?: string | undefined;
  },
): UpgradeRequest {
  const url = originForm(fields.url ?? raw.url ?? '/');
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  const origin = raw.headers.origin;
  return {
    url,
    path,
    query: new URLSearchParams(q === -1 ? '' : url.slice(q + 1)),
    params: fields.params ?? {},
    headers: raw.headers,
    origin: typeof origin === 'string' ? origin : undefined,
    host: hostOf(raw.headers),
    remoteAddress: raw.socket?.remoteAddress,
    remotePort: raw.socket?.remotePort,
    protocols: fields.protocols,
    extensions: fields.extensions,
    raw,
  };
}

/**
 * The UpgradeRequest of a request not validated yet (for a framework's route guard, which
 * runs before the handshake): malformed protocol or extension headers read as none; the
 * handshake itself refuses them later with 400.
 */
export function describeUpgrade(
  raw: RawUpgradeRequest,
  fields: { params?: Record<string, string> | undefined; url?: string | undefined } = {},
): UpgradeRequest {
  let extensions: ExtensionOffer[] = [];
  try {
    extensions = parseExtensions(raw.headers['sec-websocket-extensions']);
  } catch {
    // Left to the handshake.
  }
  const header = raw.headers['sec-websocket-protocol'];
  const protocols =
    typeof header === 'string'
      ? header
          .split(',')
          .map((p) => p.trim())
          .filter((p) => p !== '')
      : [];
  return buildUpgradeRequest(raw, { protocols, extensions, ...fields });
}

function hostOf(headers: IncomingHttpHeaders): string | undefined {
  const authority = headers[':authority'];
  return typeof authority === 'string' ? authority : headers.host;
}
