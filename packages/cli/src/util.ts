import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { describeCloseCode, type Logger, type LogLevel, type TlsOptions } from '@wskit/core';
import { type Command, InvalidArgumentError } from 'commander';

/** Where a command reads and writes; the process's streams and signals by default. */
export interface CliIo {
  stdin: Readable;
  stdout: Writable;
  stderr: Writable;
  /**
   * Subscribes to shutdown requests (SIGINT and SIGTERM for the real process) and
   * returns a function that unsubscribes.
   */
  onSignal(listener: (signal: NodeJS.Signals) => void): () => void;
}

export const LOG_LEVELS: readonly LogLevel[] = ['silent', 'error', 'warn', 'info', 'debug'];

const processSignals = (listener: (signal: NodeJS.Signals) => void): (() => void) => {
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM'];
  for (const s of signals) process.on(s, listener);
  return () => {
    for (const s of signals) process.off(s, listener);
  };
};

export function resolveIo(io: Partial<CliIo> = {}): CliIo {
  return {
    stdin: io.stdin ?? process.stdin,
    stdout: io.stdout ?? process.stdout,
    stderr: io.stderr ?? process.stderr,
    onSignal: io.onSignal ?? processSignals,
  };
}

/** Writes `text` and resolves once the stream accepted it (after 'drain' when it is full). */
export function write(stream: Writable, text: string | Buffer): Promise<void> {
  return new Promise((resolve) => {
    if (stream.destroyed || stream.writableEnded) {
      resolve();
      return;
    }
    if (stream.write(text)) {
      resolve();
      return;
    }
    const done = () => {
      stream.off('drain', done);
      stream.off('close', done);
      stream.off('error', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('close', done);
    stream.on('error', done);
  });
}

// ---- argument parsers ----------------------------------------------------------------

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kib: 1024,
  kb: 1000,
  m: 1024 ** 2,
  mib: 1024 ** 2,
  mb: 1000 ** 2,
  g: 1024 ** 3,
  gib: 1024 ** 3,
  gb: 1000 ** 3,
};

/**
 * A byte size: plain bytes ("65536") or a number with a unit: B, KiB/MiB/GiB (powers of
 * 1024; K/M/G alone mean the same), KB/MB/GB (powers of 1000). Units are case-insensitive.
 * Returns a positive integer number of bytes; throws InvalidArgumentError otherwise.
 */
export function parseSize(value: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(value);
  const unit = m ? SIZE_UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) {
    throw new InvalidArgumentError('expected a size in bytes, e.g. 65536, 64KiB, 16MiB or 1GB.');
  }
  const bytes = Math.floor(Number(m[1]) * unit);
  if (bytes < 1) throw new InvalidArgumentError('the size must be at least 1 byte.');
  if (!Number.isSafeInteger(bytes)) throw new InvalidArgumentError('the size is too large.');
  return bytes;
}

/** A TCP port, 0-65535 (0 picks a free one). */
export function parsePort(value: string): number {
  if (!/^\d{1,5}$/.test(value.trim()) || Number(value) > 65535) {
    throw new InvalidArgumentError('expected a port number from 0 to 65535.');
  }
  return Number(value);
}

export function parseLogLevel(value: string): LogLevel {
  const level = value.toLowerCase() as LogLevel;
  if (!LOG_LEVELS.includes(level)) {
    throw new InvalidArgumentError(`expected one of ${LOG_LEVELS.join(', ')}.`);
  }
  return level;
}

/** RFC 9110 §5.6.2: a header name is a token. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** "Name: value" -> [name, value]. */
export function parseHeader(value: string): [string, string] {
  const colon = value.indexOf(':');
  const name = colon === -1 ? '' : value.slice(0, colon).trim();
  if (!TOKEN.test(name)) {
    throw new InvalidArgumentError("expected 'Name: value' with a valid header name.");
  }
  const headerValue = value.slice(colon + 1).trim();
  if (/[\r\n\0]/.test(headerValue)) {
    throw new InvalidArgumentError('a header value cannot contain line breaks or NUL.');
  }
  return [name, headerValue];
}

/** Collects a repeatable option's values into a list. */
export function collect<T>(parse: (value: string) => T): (value: string, previous: T[] | undefined) => T[] {
  return (value, previous) => [...(previous ?? []), parse(value)];
}

// ---- formatting ----------------------------------------------------------------------

/** A host as it goes into a URL: IPv6 addresses in brackets (a zone id's % escaped). */
export function urlHost(host: string): string {
  return isIPv6(host) ? `[${host.replace(/%/g, '%25')}]` : host;
}

const HEX_PREVIEW = 32;

/** `<binary 5 bytes: 68656c6c6f>`; longer payloads are cut after 32 bytes, with "…". */
export function formatBinary(data: Buffer): string {
  const n = data.length;
  const unit = n === 1 ? 'byte' : 'bytes';
  if (n === 0) return '<binary 0 bytes>';
  const hex = data.subarray(0, HEX_PREVIEW).toString('hex');
  return `<binary ${n} ${unit}: ${hex}${n > HEX_PREVIEW ? '…' : ''}>`;
}

/** "1001 going-away", or the code with the peer's own reason when it sent one. */
export function formatClose(code: number, reason: string): string {
  return `${code} ${reason !== '' ? reason : describeCloseCode(code)}`;
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code !== undefined && !err.message.includes(code) ? `${err.message} (${code})` : err.message;
  }
  return String(err);
}

// ---- logging -------------------------------------------------------------------------

function formatFields(obj: unknown): string {
  if (obj === null || obj === undefined) return '';
  if (obj instanceof Error) return ` err=${JSON.stringify(errorMessage(obj))}`;
  if (typeof obj !== 'object') return ` ${String(obj)}`;
  let out = '';
  for (const [key, value] of Object.entries(obj)) {
    if (value === undefined) continue;
    const shown = value instanceof Error ? errorMessage(value) : value;
    let text: string;
    try {
      text = typeof shown === 'string' ? JSON.stringify(shown) : (JSON.stringify(shown) ?? String(shown));
    } catch {
      text = String(shown);
    }
    out += ` ${key}=${text}`;
  }
  return out;
}

/** A pino-compatible logger that writes one line per entry to `stream` (stderr). */
export function streamLogger(stream: Writable): Logger {
  const line =
    (level: string) =>
    (obj: unknown, msg?: string): void => {
      const text = typeof obj === 'string' && msg === undefined ? obj : (msg ?? '');
      const fields = typeof obj === 'string' && msg === undefined ? '' : formatFields(obj);
      stream.write(`wskit [${level}] ${text}${fields}\n`);
    };
  return { debug: line('debug'), info: line('info'), warn: line('warn'), error: line('error') };
}

/** Exit code for a bad command line. */
export const USAGE_ERROR = 2;

/** Reads the file a flag names, or stops with a usage error that names the flag. */
export function readFlagFile(cmd: Command, flag: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    return cmd.error(`error: ${flag}: cannot read ${file}: ${errorMessage(err)}`, { exitCode: USAGE_ERROR });
  }
}

/** The URL argument of `connect` and `bench`: ws: or wss:, else a usage error. */
export function requireWsUrl(cmd: Command, url: string): URL {
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    parsed = undefined;
  }
  if (parsed === undefined || (parsed.protocol !== 'ws:' && parsed.protocol !== 'wss:')) {
    return cmd.error(`error: expected a ws:// or wss:// URL (got "${url}")`, { exitCode: USAGE_ERROR });
  }
  return parsed;
}

/** Client TLS options from `--ca FILE` and `--insecure`, or undefined when neither is given. */
export function clientTls(cmd: Command, flags: { ca?: string; insecure?: boolean }): TlsOptions | undefined {
  const tls: TlsOptions = {};
  if (flags.ca !== undefined) tls.ca = readCaFile(cmd, flags.ca);
  if (flags.insecure) tls.rejectUnauthorized = false;
  return Object.keys(tls).length > 0 ? tls : undefined;
}

/**
 * Reads `--ca FILE`: one or more PEM certificates. Anything else (a private key, a DER
 * file, a typo'd path) stops with a usage error instead of failing later as "untrusted".
 */
export function readCaFile(cmd: Command, file: string): Buffer {
  const pem = readFlagFile(cmd, '--ca', file);
  const text = pem.toString('latin1');
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  const what = /-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)
    ? 'a private key, not a certificate (use the certificate, e.g. cert.pem)'
    : /-----BEGIN CERTIFICATE REQUEST-----/.test(text)
      ? 'a certificate signing request, not a certificate'
      : 'not a PEM certificate (expected -----BEGIN CERTIFICATE-----)';
  if (blocks.length === 0) return cmd.error(`error: --ca: ${file} is ${what}`, { exitCode: USAGE_ERROR });
  for (const block of blocks) {
    try {
      new X509Certificate(block);
    } catch (err) {
      return cmd.error(`error: --ca: ${file} holds a certificate that cannot be read: ${errorMessage(err)}`, {
        exitCode: USAGE_ERROR,
      });
    }
  }
  return pem;
}

/** A duration: "5" or "5s" (seconds), "500ms", "1.5s"; returns milliseconds. */
export function parseDuration(value: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s)?\s*$/i.exec(value);
  const ms = m ? Number(m[1]) * (m[2]?.toLowerCase() === 'ms' ? 1 : 1000) : Number.NaN;
  if (!(ms >= 1) || !Number.isFinite(ms)) {
    throw new InvalidArgumentError('expected a duration such as 5, 5s or 500ms (at least 1 ms).');
  }
  return Math.round(ms);
}

/** The hint after a usage error: the help page of the command that was used. */
export function usageHint(command: string): string {
  return `(run 'wskit help ${command}' for usage)`;
}
