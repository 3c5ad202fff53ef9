import type { LogLevel, TlsOptions } from '@wskit/core';
import { Command, CommanderError, Option } from 'commander';
import { addBenchCommand } from './bench.js';
import { runConnect } from './connect.js';
import { runServe, type ServeHandle } from './serve.js';
import {
  type CliIo,
  clientTls,
  collect,
  errorMessage,
  LOG_LEVELS,
  parseDuration,
  parseHeader,
  parseLogLevel,
  parsePort,
  parseSize,
  readFlagFile,
  requireWsUrl,
  resolveIo,
  USAGE_ERROR,
  usageHint,
  write,
} from './util.js';

export { USAGE_ERROR };

/** Where the commands of a program report their exit code. */
export interface ProgramResult {
  exitCode: number;
}

interface ServeFlags {
  port: number;
  host?: string;
  path?: string;
  maxMessageSize?: number;
  maxFrameSize?: number;
  deflate?: boolean;
  protocol?: string[];
  allowOrigin?: string[];
  tlsCert?: string;
  tlsKey?: string;
  logLevel: LogLevel;
}

interface ConnectFlags {
  echo?: boolean;
  protocol?: string[];
  header?: Array<[string, string]>;
  origin?: string;
  deflate?: boolean;
  maxMessageSize?: number;
  maxFrameSize?: number;
  insecure?: boolean;
  ca?: string;
  handshakeTimeout?: number;
  interactive?: boolean;
}

const VERSION = '0.1.0';

/**
 * The `wskit` command line. Commands write to `io` and store their exit code in
 * `result`; the program throws CommanderError for invalid command lines (see `main`).
 */
export function createProgram(
  ioOverrides: Partial<CliIo> = {},
  result: ProgramResult = { exitCode: 0 },
): Command {
  const io = resolveIo(ioOverrides);
  const program = new Command('wskit');
  program
    .description(
      'WebSocket toolkit: an echo server, an interactive client and a load generator (RFC 6455, RFC 7692).',
    )
    .version(VERSION, '-V, --version')
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
    })
    .exitOverride()
    .showHelpAfterError("(run 'wskit help <command>' for usage)");

  program
    .command('serve')
    .showHelpAfterError(usageHint('serve'))
    .description('run an echo server: every message comes back with its type (text or binary)')
    .addOption(
      new Option('-p, --port <port>', 'port to listen on (0: any free port)')
        .argParser(parsePort)
        .makeOptionMandatory(),
    )
    .option('-H, --host <host>', 'address or host name to listen on', '127.0.0.1')
    .option('--path <path>', 'serve only this path (a glob such as /chat/*); default: every path')
    .option(
      '--max-message-size <size>',
      'largest message accepted (bytes, or 64KiB, 16MiB, 1GB...); larger: close 1009',
      parseSize,
    )
    .option('--max-frame-size <size>', 'largest frame accepted; larger: close 1009', parseSize)
    .option('--deflate', 'enable permessage-deflate compression (RFC 7692)')
    .option('--protocol <name>', 'accept this subprotocol (repeatable, in preference order)', collect(String))
    .option(
      '--allow-origin <origin>',
      "allow browser pages from this Origin (repeatable; '*' for any)",
      collect(String),
    )
    .option('--tls-cert <file>', 'serve wss:// with this PEM certificate (with --tls-key)')
    .option('--tls-key <file>', 'PEM private key of --tls-cert')
    .addOption(
      new Option('--log-level <level>', 'diagnostics on stderr')
        .choices(LOG_LEVELS)
        .default('warn')
        .argParser(parseLogLevel),
    )
    .action(async (flags: ServeFlags, cmd: Command) => {
      if ((flags.tlsCert === undefined) !== (flags.tlsKey === undefined)) {
        cmd.error('error: --tls-cert and --tls-key go together', { exitCode: USAGE_ERROR });
      }
      if (flags.path !== undefined && !flags.path.startsWith('/')) {
        cmd.error(`error: --path must start with "/" (got "${flags.path}")`, { exitCode: USAGE_ERROR });
      }
      let tls: TlsOptions | undefined;
      if (flags.tlsCert !== undefined && flags.tlsKey !== undefined) {
        tls = {
          cert: readFlagFile(cmd, '--tls-cert', flags.tlsCert),
          key: readFlagFile(cmd, '--tls-key', flags.tlsKey),
        };
      }
      result.exitCode = await serveUntilSignal(io, {
        port: flags.port,
        ...(flags.host !== undefined ? { host: flags.host } : {}),
        ...(flags.path !== undefined ? { path: flags.path } : {}),
        ...(flags.maxMessageSize !== undefined ? { maxMessageSize: flags.maxMessageSize } : {}),
        ...(flags.maxFrameSize !== undefined ? { maxFrameSize: flags.maxFrameSize } : {}),
        ...(flags.deflate ? { deflate: true } : {}),
        ...(flags.protocol ? { protocols: flags.protocol } : {}),
        ...(flags.allowOrigin ? { origins: flags.allowOrigin } : {}),
        ...(tls ? { tls } : {}),
        logLevel: flags.logLevel,
      });
    });

  program
    .command('connect')
    .showHelpAfterError(usageHint('connect'))
    .description(
      'connect to a WebSocket server: stdin lines go out as text messages, messages come out on stdout',
    )
    .argument('<url>', 'ws:// or wss:// URL')
    .option(
      '--echo',
      'send every received message back (same type) until the server closes; stdin is not read',
    )
    .option('--protocol <name>', 'offer this subprotocol (repeatable, in preference order)', collect(String))
    .option('--header <header>', "add a request header, 'Name: value' (repeatable)", collect(parseHeader))
    .option('--origin <origin>', 'send this Origin header')
    .option('--deflate', 'offer permessage-deflate compression (RFC 7692)')
    .option('--max-message-size <size>', 'largest message accepted (bytes, or 64KiB, 16MiB...)', parseSize)
    .option('--max-frame-size <size>', 'largest frame accepted', parseSize)
    .option('-k, --insecure', "wss://: don't verify the server's certificate")
    .option('--ca <file>', 'wss://: trust this PEM CA certificate')
    .option(
      '--handshake-timeout <duration>',
      'give up when the handshake takes longer (5, 5s, 500ms)',
      parseDuration,
    )
    .option(
      '-i, --interactive',
      'print what was negotiated, a prompt, and the close (default: stdin is a terminal)',
    )
    .option('--no-interactive', 'no connection details or prompt, even on a terminal')
    .action(async (url: string, flags: ConnectFlags, cmd: Command) => {
      requireWsUrl(cmd, url);
      let headers: Record<string, string> | undefined;
      for (const [name, value] of flags.header ?? []) {
        headers ??= {};
        const key = Object.keys(headers).find((k) => k.toLowerCase() === name.toLowerCase()) ?? name;
        headers[key] = headers[key] === undefined ? value : `${headers[key]}, ${value}`;
      }
      const tls = clientTls(cmd, flags);

      // The first signal closes with 1000 like the end of stdin; after that the default
      // handling is back, so a second Ctrl-C ends the process at once.
      const abort = new AbortController();
      const stopWatching = io.onSignal((signal) => {
        stopWatching();
        abort.abort(signal);
      });
      try {
        result.exitCode = await runConnect({
          url,
          ...(flags.echo ? { echo: true } : {}),
          ...(flags.protocol ? { protocols: flags.protocol } : {}),
          ...(headers ? { headers } : {}),
          ...(flags.origin !== undefined ? { origin: flags.origin } : {}),
          ...(flags.deflate ? { deflate: true } : {}),
          ...(flags.maxMessageSize !== undefined ? { maxMessageSize: flags.maxMessageSize } : {}),
          ...(flags.maxFrameSize !== undefined ? { maxFrameSize: flags.maxFrameSize } : {}),
          ...(tls ? { tls } : {}),
          ...(flags.handshakeTimeout !== undefined ? { handshakeTimeout: flags.handshakeTimeout } : {}),
          ...(flags.interactive !== undefined ? { interactive: flags.interactive } : {}),
          stdin: io.stdin,
          stdout: io.stdout,
          stderr: io.stderr,
          signal: abort.signal,
        });
      } finally {
        stopWatching();
      }
    });

  addBenchCommand(program, io, result);

  return program;
}

/**
 * Runs the echo server until a shutdown signal, then closes every client with 1001
 * going-away. A second signal drops the remaining connections at once.
 */
async function serveUntilSignal(io: CliIo, options: Parameters<typeof runServe>[0]): Promise<number> {
  // Listen for signals before the port is bound, so that none is missed in between.
  let handle: ServeHandle | undefined;
  let received: NodeJS.Signals | undefined;
  let signals = 0;
  let wake: () => void = () => {};
  const stop = io.onSignal((signal) => {
    signals++;
    received ??= signal;
    if (signals === 1) wake();
    // Don't wait for slow peers' closing handshakes.
    else if (handle !== undefined) for (const ws of handle.server.clients) ws.terminate();
  });
  try {
    try {
      handle = await runServe({ ...options, stdout: io.stdout, stderr: io.stderr });
    } catch (err) {
      const where = `${options.host ?? '127.0.0.1'}:${options.port}`;
      await write(io.stderr, `wskit: cannot serve on ${where}: ${errorMessage(err)}\n`);
      return 1;
    }
    if (received === undefined) {
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
    const n = handle.server.clients.size;
    await write(
      io.stdout,
      `wskit: ${received} received, closing ${n} connection${n === 1 ? '' : 's'} with 1001 going-away\n`,
    );
    try {
      await handle.close(1001);
    } catch (err) {
      await write(io.stderr, `wskit: error while closing: ${errorMessage(err)}\n`);
    }
    return 0;
  } finally {
    stop();
  }
}

/**
 * Runs the command line `argv` (without the node and script paths) and resolves with
 * the exit code: the command's, 0 for --help/--version, 2 for an invalid command line.
 */
export async function main(argv: readonly string[], io: Partial<CliIo> = {}): Promise<number> {
  const result: ProgramResult = { exitCode: 0 };
  const program = createProgram(io, result);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return result.exitCode;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return 0;
      if (err.code === 'commander.help') return err.exitCode === 0 ? 0 : USAGE_ERROR;
      return USAGE_ERROR;
    }
    const stderr = io.stderr ?? process.stderr;
    await write(stderr, `wskit: ${errorMessage(err)}\n`);
    return 1;
  }
}
