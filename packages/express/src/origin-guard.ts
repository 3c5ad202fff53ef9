import type { IncomingMessage } from 'node:http';
import {
  originGuard as acceptOrigins,
  type OriginPolicy,
  parseExtensions,
  type UpgradeRequest,
} from '@wskit/core';
import type { RequestHandler } from 'express';

export interface OriginGuardOptions {
  /** HTTP status of the refusal. Default 403. */
  status?: number;
  /** Body of the refusal (text/plain). Default "Access denied". */
  message?: string;
}

/**
 * Express middleware that lets a request through only when its Origin is allowed:
 * `originGuard(['https://app.example', 'https://*.example.org'])`. Same rules as the
 * `origins` option of @wskit/core (globs, '*' for any, or a predicate); requests without
 * an Origin header (non-browser clients) pass. A refused request is answered 403
 * "Access denied" — on an upgrade, that answer goes out instead of the handshake.
 */
export function originGuard(origins: OriginPolicy, options: OriginGuardOptions = {}): RequestHandler {
  const allowed = acceptOrigins(origins);
  const status = options.status ?? 403;
  const message = options.message ?? 'Access denied';
  return (req, res, next) => {
    if (allowed(describeRequest(req))) {
      next();
      return;
    }
    res.statusCode = status;
    res.setHeader('Content-Type', 'text/plain; charset=utf-8');
    res.end(`${message}\n`);
  };
}

/** The UpgradeRequest view of an Express request (for origin predicates). */
export function describeRequest(
  req: IncomingMessage & { originalUrl?: string; params?: unknown },
): UpgradeRequest {
  const url = req.originalUrl ?? req.url ?? '/';
  const q = url.indexOf('?');
  const origin = req.headers.origin;
  let extensions: UpgradeRequest['extensions'] = [];
  try {
    extensions = parseExtensions(req.headers['sec-websocket-extensions']);
  } catch {
    // Malformed: the handshake itself will refuse it with 400; the guard only looks at Origin.
  }
  const protocolHeader = req.headers['sec-websocket-protocol'];
  return {
    url,
    path: q === -1 ? url : url.slice(0, q),
    query: new URLSearchParams(q === -1 ? '' : url.slice(q + 1)),
    params: stringParams(req.params),
    headers: req.headers,
    origin: typeof origin === 'string' ? origin : undefined,
    host: req.headers.host,
    remoteAddress: req.socket?.remoteAddress,
    remotePort: req.socket?.remotePort,
    protocols:
      typeof protocolHeader === 'string'
        ? protocolHeader
            .split(',')
            .map((p) => p.trim())
            .filter((p) => p !== '')
        : [],
    extensions,
    raw: req,
  };
}

/** Express params as plain strings (Express 5 gives arrays for `*splat` wildcards). */
export function stringParams(params: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (params === null || typeof params !== 'object') return out;
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined) continue;
    out[key] = Array.isArray(value) ? value.join('/') : String(value);
  }
  return out;
}
