import type { AddressInfo } from 'node:net';
import { isIP } from 'node:net';
import type { Writable } from 'node:stream';
import {
  createLogger,
  type Logger,
  type LogLevel,
  type ServerOptions,
  type TlsOptions,
  type WebSocket,
  WebSocketServer,
} from '@wskit/core';
import { formatClose, streamLogger, urlHost, write } from './util.js';

export interface ServeOptions {
  /** TCP port; 0 picks a free one (the handle's `address` and `url` tell which). */
  port: number;
  /** Address or host name to listen on. Default 127.0.0.1. */
  host?: string;
  /** Route pattern (a glob on the URL path, e.g. "/echo" or "/chat/*"). Default every path. */
  path?: string;
  maxMessageSize?: number;
  maxFrameSize?: number;
  /** Negotiate permessage-deflate (RFC 7692) with clients that offer it. */
  deflate?: boolean;
  /** Subprotocols to accept, in preference order (globs). */
  protocols?: string[];
  /** Allowed Origin values for browser clients ('*' for any). Default: same origin only. */
  origins?: string[];
  /** Serve wss:// with this certificate and key. */
  tls?: TlsOptions;
  /** Log level of the server's diagnostics on stderr. Default 'warn'. */
  logLevel?: LogLevel;
  /** Where the "listening" line goes. Default process.stdout. */
  stdout?: Writable;
  /** Where diagnostics go. Default process.stderr. */
  stderr?: Writable;
  /** Use this logger instead of the line logger on `stderr`. */
  logger?: Logger;
}

export interface ServeHandle {
  /** ws://HOST:PORT/PATH (wss:// with TLS), with the real port. */
  readonly url: string;
  readonly address: AddressInfo;
  readonly server: WebSocketServer;
  /** Graceful stop: every client gets `code` (1001 going-away), then the listener closes. */
  close(code?: number, reason?: string): Promise<void>;
}

export const DEFAULT_HOST = '127.0.0.1';
export const ALL_PATHS = '/*';

/** Echoes each message back with its type, in order, at the pace the client reads. */
async function echo(ws: WebSocket): Promise<void> {
  for await (const msg of ws) {
    try {
      await ws.send(msg.data, { binary: msg.type === 'binary' });
    } catch {
      return; // closing: nothing more can be sent
    }
  }
}

/**
 * Starts the echo server and prints `wskit: listening on ws://HOST:PORT/PATH`. Rejects
 * when the options are invalid or the port can't be bound.
 */
export async function runServe(options: ServeOptions): Promise<ServeHandle> {
  const stdout = options.stdout ?? process.stdout;
  const stderr = options.stderr ?? process.stderr;
  const host = options.host ?? DEFAULT_HOST;
  const path = options.path ?? ALL_PATHS;
  if (!path.startsWith('/')) throw new RangeError(`The path must start with "/" (got "${path}")`);
  const logLevel = options.logLevel ?? 'warn';
  const baseLogger = options.logger ?? streamLogger(stderr);
  const log = createLogger(baseLogger, logLevel);

  const serverOptions: ServerOptions = {
    logger: baseLogger,
    logLevel,
    ...(options.maxMessageSize !== undefined ? { maxMessageSize: options.maxMessageSize } : {}),
    ...(options.maxFrameSize !== undefined ? { maxFrameSize: options.maxFrameSize } : {}),
    ...(options.deflate ? { perMessageDeflate: true } : {}),
    ...(options.protocols && options.protocols.length > 0 ? { protocols: options.protocols } : {}),
    ...(options.origins && options.origins.length > 0 ? { origins: options.origins } : {}),
    ...(options.tls ? { tls: options.tls } : {}),
  };
  const wss = new WebSocketServer(serverOptions);
  wss.route(path, (ws, req) => {
    const peer = `${urlHost(req.remoteAddress ?? '?')}:${req.remotePort ?? '?'}`;
    log.info(
      { path: req.path, protocol: ws.protocol || undefined, extensions: ws.extensions || undefined },
      `open ${peer}`,
    );
    ws.closed.then((info) =>
      log.info({ wasClean: info.wasClean }, `closed ${peer} ${formatClose(info.code, info.reason)}`),
    );
    return echo(ws);
  });

  const address = await wss.listen(options.port, host);
  // A host name stays as given (it may be what a certificate names); addresses are
  // shown as bound, which normalizes them.
  const shownHost = isIP(host) === 0 ? host : address.address;
  const shownPath = path === ALL_PATHS ? '/' : path;
  const url = `${options.tls ? 'wss' : 'ws'}://${urlHost(shownHost)}:${address.port}${shownPath}`;
  await write(stdout, `wskit: listening on ${url}\n`);

  return {
    url,
    address,
    server: wss,
    close: (code = 1001, reason = '') => wss.close(code, reason),
  };
}
