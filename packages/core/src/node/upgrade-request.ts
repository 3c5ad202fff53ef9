import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { ExtensionOffer } from '../protocol/extensions.js';
import { globMatch } from '../protocol/glob.js';

/** What a handler and the access hooks learn about an upgrade request. */
export interface UpgradeRequest {
  /** The request target in origin form, e.g. "/chat/42?token=x" (even if sent in absolute form). */
  url: string;
  /** The path without the query, e.g. "/chat/42". */
  path: string;
  query: URLSearchParams;
  /** Route parameters, filled by the framework adapters ({} otherwise). */
  params: Record<string, string>;
  headers: IncomingHttpHeaders;
  origin: string | undefined;
  host: string | undefined;
  remoteAddress: string | undefined;
  remotePort: number | undefined;
  /** Subprotocols the client asked for, in its order of preference. */
  protocols: string[];
  /** Extensions the client offered. */
  extensions: ExtensionOffer[];
  /** The underlying Node request. */
  raw: IncomingMessage;
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
  raw: IncomingMessage,
  fields: { protocols: string[]; extensions: ExtensionOffer[]; params?: Record<string, string> },
): UpgradeRequest {
  const url = originForm(raw.url ?? '/');
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
    host: raw.headers.host,
    remoteAddress: raw.socket?.remoteAddress,
    remotePort: raw.socket?.remotePort,
    protocols: fields.protocols,
    extensions: fields.extensions,
    raw,
  };
}

const DEFAULT_PORTS: Record<string, string> = { 'http:': '80', 'https:': '443', 'ws:': '80', 'wss:': '443' };

/** Host header and Origin's host:port compared, default ports folded. */
function isSameOrigin(origin: string, hostHeader: string | undefined): boolean {
  if (hostHeader === undefined) return false;
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false; // includes the opaque origin "null"
  }
  const port = url.port || DEFAULT_PORTS[url.protocol] || '';
  const host = hostHeader.toLowerCase();
  const wanted = url.hostname.toLowerCase();
  return host === `${wanted}:${port}` || (port === DEFAULT_PORTS[url.protocol] && host === wanted);
}

export function originAllowed(policy: OriginPolicy, origin: string, req: UpgradeRequest): boolean {
  if (typeof policy === 'function') return policy(origin, req);
  return policy.some((p) => p === '*' || p === origin || globMatch(p, origin));
}

/**
 * The default acceptConnection: requests without Origin (non-browser clients) pass; a
 * browser's Origin must be the request's own host unless `origins` allows it.
 */
export function checkOrigin(req: UpgradeRequest, origins: OriginPolicy | undefined): boolean {
  const origin = req.origin;
  if (origin === undefined) return true;
  if (origins !== undefined) return originAllowed(origins, origin, req);
  return isSameOrigin(origin, req.host);
}

/** An acceptConnection hook that allows only these origins (and non-browser clients). */
export function originGuard(origins: OriginPolicy): (req: UpgradeRequest) => boolean {
  return (req) => checkOrigin(req, origins);
}
