import { globMatch } from '../protocol/glob.js';
import type { RawUpgradeRequest } from './upgrade-exchange.js';
import { describeUpgrade, type OriginPolicy, type UpgradeRequest } from './upgrade-request.js';

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
 * Requests must pass `origins`: requests without Origin (non-browser clients) pass; a
 * browser's Origin must be allowed by `origins`, or without it be the request's own host.
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

/** Requests a route's origin guard let through: the guard replaced the default check. */
const guarded = new WeakSet<RawUpgradeRequest>();

/**
 * The check behind the adapters' `originGuard()` middleware: is the Origin of `raw`
 * allowed by `origins`? When it is, that guard REPLACES the default origin check (the
 * same-origin rule, or the `origins` option) for this request's handshake, so a route
 * guarded for `https://partner.example` accepts that page even though the app's default
 * would refuse it. An explicit `acceptConnection` hook still runs.
 */
export function guardOrigin(
  raw: RawUpgradeRequest,
  origins: OriginPolicy,
  fields: { params?: Record<string, string> | undefined; url?: string | undefined } = {},
): boolean {
  if (!checkOrigin(describeUpgrade(raw, fields), origins)) return false;
  guarded.add(raw);
  return true;
}

/**
 * The default acceptConnection: a route guard's verdict (see guardOrigin), else the
 * `origins` option, else same-origin only.
 */
export function defaultAcceptance(req: UpgradeRequest, origins: OriginPolicy | undefined): boolean {
  return guarded.has(req.raw) || checkOrigin(req, origins);
}
