import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { type ClientOptions, type CloseInfo, connect, type TlsOptions, type WebSocket } from '@wskit/core';
import { explainConnectError } from './hints.js';
import { formatBinary, formatClose, write } from './util.js';

export interface ConnectOptions {
  url: string;
  /** Send every received message back with its type until the server closes. */
  echo?: boolean;
  /** Subprotocols to offer, in preference order. */
  protocols?: string[];
  /** Extra request headers. */
  headers?: Record<string, string>;
  origin?: string;
  /** Offer permessage-deflate (RFC 7692). */
  deflate?: boolean;
  maxMessageSize?: number;
  maxFrameSize?: number;
  /** TLS: `ca` to trust, `rejectUnauthorized: false` for --insecure. */
  tls?: TlsOptions;
  /** Lines to send (interactive mode). Default process.stdin. */
  stdin?: Readable;
  /** Received messages. Default process.stdout. */
  stdout?: Writable;
  /** Status and errors. Default process.stderr. */
  stderr?: Writable;
  /** Aborting closes the connection with 1000, like the end of stdin. */
  signal?: AbortSignal;
  /** Give up when the server has not completed the handshake after this many ms. Default 10000. */
  handshakeTimeout?: number;
  /**
   * For a person at a terminal: once connected, print what was negotiated (URL,
   * subprotocol, extensions, TLS) on stderr, show a `> ` prompt, and report the close
   * code and reason however the connection ends. Default: when stdin is a TTY.
   */
  interactive?: boolean;
  /** Called once the connection is open (before any message is read or sent). */
  onOpen?: (ws: WebSocket) => void;
}

/** The lines printed on stderr once an interactive session is connected. */
export function describeConnection(url: string, ws: WebSocket, tls: TlsOptions | undefined): string {
  const secure = new URL(url).protocol === 'wss:';
  const tlsLine = !secure
    ? 'no (ws://: not encrypted)'
    : tls?.rejectUnauthorized === false
      ? 'yes, certificate NOT verified (--insecure)'
      : 'yes, certificate verified';
  return [
    `wskit: connected to ${url}`,
    `  subprotocol  ${ws.protocol || '(none)'}`,
    `  extensions   ${ws.extensions || '(none)'}`,
    `  TLS          ${tlsLine}`,
    'Type a line and press Enter to send it; Ctrl-D closes the connection.',
    '',
  ].join('\n');
}

/**
 * Runs the client until the connection is over and resolves with the exit code: 0 after
 * a normal end (stdin EOF or abort, or the server closing with 1000/1001 — in echo mode,
 * the server closing with any code), 1 when the handshake fails or the connection ends
 * otherwise.
 */
export async function runConnect(options: ConnectOptions): Promise<number> {
  const stdout = options.stdout ?? process.stdout;
  const stderr = options.stderr ?? process.stderr;
  const clientOptions: ClientOptions = {
    ...(options.protocols && options.protocols.length > 0 ? { protocols: options.protocols } : {}),
    ...(options.headers ? { headers: options.headers } : {}),
    ...(options.origin !== undefined ? { origin: options.origin } : {}),
    ...(options.deflate ? { perMessageDeflate: true } : {}),
    ...(options.maxMessageSize !== undefined ? { maxMessageSize: options.maxMessageSize } : {}),
    ...(options.maxFrameSize !== undefined ? { maxFrameSize: options.maxFrameSize } : {}),
    ...(options.tls ? { tls: options.tls } : {}),
    ...(options.handshakeTimeout !== undefined ? { handshakeTimeout: options.handshakeTimeout } : {}),
  };
  const stdin = options.stdin ?? process.stdin;
  const human = !options.echo && (options.interactive ?? (stdin as { isTTY?: boolean }).isTTY === true);

  let ws: WebSocket;
  try {
    ws = await connect(options.url, clientOptions);
  } catch (err) {
    await write(stderr, `${await explainConnectError(options.url, err)}\n`);
    return 1;
  }
  if (human) await write(stderr, describeConnection(options.url, ws, options.tls));
  options.onOpen?.(ws);

  // Closing on our side (stdin EOF, abort) is a normal end whatever the server answers.
  let closedByUs = false;
  const closeNormally = () => {
    if (closedByUs) return;
    closedByUs = true;
    ws.close(1000).catch(() => ws.terminate());
  };
  const onAbort = () => closeNormally();
  if (options.signal?.aborted) closeNormally();
  options.signal?.addEventListener('abort', onAbort, { once: true });

  let info: CloseInfo;
  try {
    if (options.echo) {
      info = await echoUntilClosed(ws);
    } else {
      info = await interactive(ws, stdin, stdout, closeNormally, human ? stderr : undefined);
    }
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
  }

  if (closedByUs) {
    if (human) await write(stderr, `wskit: closed ${formatClose(info.code, info.reason)}\n`);
    return 0;
  }
  await write(stderr, `wskit: closed ${formatClose(info.code, info.reason)}\n`);
  if (options.echo) return info.code === 1006 ? 1 : 0;
  return info.code === 1000 || info.code === 1001 ? 0 : 1;
}

/** --echo: every message goes back with its type, in order, until the connection ends. */
async function echoUntilClosed(ws: WebSocket): Promise<CloseInfo> {
  for await (const msg of ws) {
    try {
      await ws.send(msg.data, { binary: msg.type === 'binary' });
    } catch {
      break; // closing
    }
  }
  return ws.closed;
}

/** stdin lines out as text messages, messages in to stdout. */
async function interactive(
  ws: WebSocket,
  stdin: Readable,
  stdout: Writable,
  closeNormally: () => void,
  promptTo?: Writable,
): Promise<CloseInfo> {
  const rl = createInterface({
    input: stdin,
    crlfDelay: Number.POSITIVE_INFINITY,
    terminal: false,
    ...(promptTo ? { output: promptTo, prompt: '> ' } : {}),
  });
  // The prompt goes to stderr, so stdout stays the received messages only; a message
  // arriving while the user types is printed above the prompt, which is then redrawn.
  const prompt = () => {
    if (promptTo && !stdinDone && ws.readyState === 1) rl.prompt(true);
  };
  let stdinDone = false;
  const sending = (async () => {
    try {
      prompt();
      for await (const line of rl) {
        if (ws.readyState !== 1) break;
        try {
          await ws.send(line);
        } catch {
          break;
        }
        prompt();
      }
    } catch {
      // A stdin read error ends the input like EOF.
    }
    if (!stdinDone) {
      stdinDone = true;
      // RFC 6455 §7.1.2: start the closing handshake; the loop below prints what the
      // server still sends until its Close arrives.
      if (ws.readyState === 1) closeNormally();
    }
  })();

  for await (const msg of ws) {
    if (promptTo) await write(promptTo, '\r\x1b[K');
    await write(stdout, msg.type === 'text' ? `${msg.text()}\n` : `${formatBinary(msg.data)}\n`);
    prompt();
  }
  if (promptTo) await write(promptTo, '\r\x1b[K');
  const info = await ws.closed;
  if (!stdinDone) {
    stdinDone = true;
    rl.close();
  }
  await sending;
  return info;
}
