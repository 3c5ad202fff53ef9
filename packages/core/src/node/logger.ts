/** A pino-compatible logger: pino, bunyan-style or console-like objects all fit. */
export interface Logger {
  debug(obj: unknown, msg?: string): void;
  info(obj: unknown, msg?: string): void;
  warn(obj: unknown, msg?: string): void;
  error(obj: unknown, msg?: string): void;
}

export type LogLevel = 'silent' | 'error' | 'warn' | 'info' | 'debug';

const RANK: Record<LogLevel, number> = { silent: 0, error: 1, warn: 2, info: 3, debug: 4 };
const noop = (): void => {};

export const silentLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop };

/**
 * Wraps a logger so that messages below `level` cost one function call and nothing
 * else. Without a logger, everything is silent; with one and no level, 'info'.
 */
export function createLogger(logger: Logger | undefined, level?: LogLevel): Logger {
  if (logger === undefined) return silentLogger;
  const rank = RANK[level ?? 'info'];
  return {
    debug: rank >= 4 ? (o, m) => logger.debug(o, m) : noop,
    info: rank >= 3 ? (o, m) => logger.info(o, m) : noop,
    warn: rank >= 2 ? (o, m) => logger.warn(o, m) : noop,
    error: rank >= 1 ? (o, m) => logger.error(o, m) : noop,
  };
}
