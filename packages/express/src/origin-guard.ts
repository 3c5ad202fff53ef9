import { guardOrigin, type OriginPolicy } from '@wskit/core';
import type { NextFunction, Request, Response } from 'express';
import type { ParamsDictionary } from 'express-serve-static-core';

/**
 * The middleware originGuard() returns. Generic in the route parameters, so that it does
 * not fix them: `app.ws('/chat/:room', originGuard([...]), (ws, req) => ...)` still types
 * `req.params.room` from the path.
 */
export type OriginGuardMiddleware = <P = ParamsDictionary>(
  req: Request<P>,
  res: Response,
  next: NextFunction,
) => void;

export interface OriginGuardOptions {
  /** HTTP status of the refusal. Default 403. */
  status?: number;
  /** Body of the refusal (text/plain). Default "Access denied". */
  message?: string;
}

/**
 * Express middleware that lets a request through only when its Origin is allowed:
 * `originGuard(['https://app.example', 'https://*.example.org'])`. The check is the core's
 * `guardOrigin()` (globs, '*' for any, or a predicate; requests without Origin pass), and
 * on a ws route it REPLACES the default origin check (same-origin, or the `origins`
 * option) for that route. A refused request is answered 403 "Access denied": on an
 * upgrade, that answer goes out instead of the handshake.
 */
export function originGuard(origins: OriginPolicy, options: OriginGuardOptions = {}): OriginGuardMiddleware {
  const status = options.status ?? 403;
  const message = options.message ?? 'Access denied';
  return (req, res, next) => {
    if (guardOrigin(req, origins, { url: req.originalUrl, params: stringParams(req.params) })) {
      next();
      return;
    }
    res.statusCode = status;
    res.setHeader('Content-Type', 'text/plain; charset=utf-8');
    res.end(`${message}\n`);
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
