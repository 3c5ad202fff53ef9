import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WS, { WebSocketServer as WSServer } from 'ws';
import {
  cleanup,
  generateCert,
  onCleanup,
  removeCert,
  type TestCert,
  withTimeout,
} from '../../../test/support/clients.js';
import { runConnect, runServe } from '../src/index.js';
import { formatBinary, parseHeader, parsePort, parseSize } from '../src/util.js';
import { Capture, type InProcessRun, runInProcess } from './helpers.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const BIN = join(ROOT, 'packages/cli/dist/bin.js');

// ---- helpers -------------------------------------------------------------------------

afterEach(cleanup);

const LISTENING = /wskit: listening on (wss?:\/\/\S+)\n/;

async function serveInProcess(args: string[]): Promise<InProcessRun & { url: string }> {
  const run = runInProcess(['serve', '--port', '0', '--host', '127.0.0.1', ...args]);
  const m = await Promise.race([
    run.stdout.waitFor(LISTENING),
    run.exit.then((code) => {
      throw new Error(`serve exited with ${code}: ${run.stderr.text}`);
    }),
  ]);
  return { ...run, url: m[1]! };
}

interface SpawnedRun {
  child: ChildProcess;
  stdout: Capture;
  stderr: Capture;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function spawnCli(args: string[]): SpawnedRun {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
  const stdout = new Capture();
  const stderr = new Capture();
  child.stdout!.on('data', (d: Buffer) => stdout.feed(d));
  child.stderr!.on('data', (d: Buffer) => stderr.feed(d));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal }));
  });
  onCleanup(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exit;
    }
  });
  return { child, stdout, stderr, exit };
}

/** Opens a `ws` client (an independent implementation) and waits for 'open'. */
async function openClient(url: string, options: WS.ClientOptions = {}, protocols?: string[]): Promise<WS> {
  const ws = new WS(url, protocols, options);
  ws.on('error', () => {}); // failures show up as rejections or close codes below
  onCleanup(() => ws.terminate());
  await withTimeout(
    new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) =>
        reject(new Error(`unexpected response ${res.statusCode}`)),
      );
    }),
    10_000,
    `open ${url}`,
  );
  return ws;
}

interface Received {
  data: Buffer;
  isBinary: boolean;
}

/** Collects a ws client's messages; `next()` resolves with the next one. */
function messages(ws: WS): { next(): Promise<Received> } {
  const queue: Received[] = [];
  const waiting: Array<(m: Received) => void> = [];
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    const m = { data: Buffer.from(data), isBinary };
    const w = waiting.shift();
    if (w) w(m);
    else queue.push(m);
  });
  return {
    next: () => {
      const m = queue.shift();
      if (m) return Promise.resolve(m);
      return withTimeout(new Promise<Received>((resolve) => waiting.push(resolve)), 10_000, 'message');
    },
  };
}

function closeEvent(ws: WS): Promise<{ code: number; reason: string }> {
  return withTimeout(
    new Promise((resolve) =>
      ws.once('close', (code: number, reason: Buffer) => resolve({ code, reason: reason.toString() })),
    ),
    10_000,
    'close event',
  );
}

/** A `ws` server on 127.0.0.1:0 for the connect tests. */
async function wsServer(
  options: Omit<WS.ServerOptions, 'port' | 'host'> = {},
): Promise<{ wss: WSServer; url: string }> {
  const wss = new WSServer({ port: 0, host: '127.0.0.1', ...options });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  onCleanup(
    () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => resolve());
      }),
  );
  const { port } = wss.address() as AddressInfo;
  return { wss, url: `ws://127.0.0.1:${port}` };
}

function nextConnection(wss: WSServer): Promise<{ ws: WS; req: import('node:http').IncomingMessage }> {
  return withTimeout(
    new Promise((resolve) => wss.once('connection', (ws, req) => resolve({ ws, req }))),
    10_000,
    'server connection',
  );
}

// ---- argument parsing --------------------------------------------------------------------

describe('argument parsers', () => {
  it('parseSize takes plain bytes and binary/decimal units', () => {
    expect(parseSize('65536')).toBe(65536);
    expect(parseSize('64KiB')).toBe(65536);
    expect(parseSize('16MiB')).toBe(16 * 1024 * 1024);
    expect(parseSize('16mib')).toBe(16 * 1024 * 1024);
    expect(parseSize('1GiB')).toBe(1024 ** 3);
    expect(parseSize('2k')).toBe(2048);
    expect(parseSize('1KB')).toBe(1000);
    expect(parseSize('3MB')).toBe(3_000_000);
    expect(parseSize('1.5KiB')).toBe(1536);
    expect(parseSize('10 B')).toBe(10);
  });

  it('parseSize refuses what is not a size', () => {
    for (const bad of ['', 'abc', '-1', '0', '1XB', '12 MiBs', 'KiB', '1e3', '0.1']) {
      expect(() => parseSize(bad), bad).toThrow(/size/);
    }
  });

  it('parsePort takes 0-65535 only', () => {
    expect(parsePort('0')).toBe(0);
    expect(parsePort('8080')).toBe(8080);
    expect(parsePort('65535')).toBe(65535);
    for (const bad of ['65536', '-1', 'http', '80.5', '']) expect(() => parsePort(bad), bad).toThrow(/port/);
  });

  it("parseHeader splits 'Name: value' and refuses bad names and line breaks", () => {
    expect(parseHeader('X-Token: abc')).toEqual(['X-Token', 'abc']);
    expect(parseHeader('Authorization:Bearer a:b')).toEqual(['Authorization', 'Bearer a:b']);
    expect(parseHeader('X-Empty:')).toEqual(['X-Empty', '']);
    for (const bad of ['novalue', ': v', 'Bad Name: v', 'X: a\r\nInjected: 1']) {
      expect(() => parseHeader(bad), bad).toThrow();
    }
  });

  it('formatBinary shows the size and a hex preview cut after 32 bytes', () => {
    expect(formatBinary(Buffer.from([1, 2, 0xff]))).toBe('<binary 3 bytes: 0102ff>');
    expect(formatBinary(Buffer.from([7]))).toBe('<binary 1 byte: 07>');
    expect(formatBinary(Buffer.alloc(0))).toBe('<binary 0 bytes>');
    const long = formatBinary(Buffer.alloc(100, 0xab));
    expect(long).toBe(`<binary 100 bytes: ${'ab'.repeat(32)}…>`);
  });
});

describe('invalid command lines exit with 2', () => {
  const cases: Array<[string, string[], RegExp]> = [
    ['no command', [], /Usage: wskit/],
    ['unknown command', ['sing'], /unknown command/],
    ['serve without --port', ['serve'], /--port/],
    ['serve with a bad port', ['serve', '--port', 'abc'], /port number/],
    ['serve with a bad size', ['serve', '--port', '0', '--max-message-size', '12XB'], /size in bytes/],
    ['serve with a bad frame size', ['serve', '--port', '0', '--max-frame-size', '0'], /at least 1 byte/],
    ['serve with an unknown option', ['serve', '--port', '0', '--colour'], /unknown option/],
    ['serve with a bad log level', ['serve', '--port', '0', '--log-level', 'loud'], /silent, error/],
    ['serve with --tls-cert alone', ['serve', '--port', '0', '--tls-cert', 'x.pem'], /go together/],
    [
      'serve with unreadable TLS files',
      ['serve', '--port', '0', '--tls-cert', '/nonexistent/c', '--tls-key', '/nonexistent/k'],
      /cannot read/,
    ],
    ['serve with a relative path', ['serve', '--port', '0', '--path', 'echo'], /must start with/],
    ['connect without URL', ['connect'], /missing required argument/],
    ['connect with a non-WebSocket URL', ['connect', 'http://127.0.0.1:1/'], /ws:\/\/ or wss:\/\//],
    ['connect with garbage for a URL', ['connect', 'not a url'], /ws:\/\/ or wss:\/\//],
    ['connect with a bad header', ['connect', 'ws://127.0.0.1:1/', '--header', 'novalue'], /Name: value/],
    [
      'connect with an unreadable CA',
      ['connect', 'wss://127.0.0.1:1/', '--ca', '/nonexistent/ca.pem'],
      /cannot read/,
    ],
  ];
  for (const [name, args, message] of cases) {
    it(name, async () => {
      const run = runInProcess(args);
      expect(await withTimeout(run.exit, 10_000, name)).toBe(2);
      expect(run.stderr.text).toMatch(message);
    });
  }

  it('--help exits 0 and prints the usage on stdout', async () => {
    const run = runInProcess(['serve', '--help']);
    expect(await run.exit).toBe(0);
    expect(run.stdout.text).toMatch(/--max-message-size <size>/);
  });
});

// ---- serve ---------------------------------------------------------------------------

describe('wskit serve', () => {
  it('prints the URL with the real port and echoes text as text and binary as binary', async () => {
    const srv = await serveInProcess([]);
    const m = /^ws:\/\/127\.0\.0\.1:(\d+)\/$/.exec(srv.url);
    expect(m).not.toBeNull();
    expect(Number(m![1])).toBeGreaterThan(0);
    expect(srv.stdout.text.split('\n').filter(Boolean)).toHaveLength(1);

    const ws = await openClient(`${srv.url}any/path?x=1`);
    const inbox = messages(ws);
    ws.send('hello, wörld');
    ws.send(Buffer.from([0, 1, 2, 255]));
    ws.send('');
    const a = await inbox.next();
    expect(a).toEqual({ data: Buffer.from('hello, wörld'), isBinary: false });
    const b = await inbox.next();
    expect(b).toEqual({ data: Buffer.from([0, 1, 2, 255]), isBinary: true });
    const c = await inbox.next();
    expect(c).toEqual({ data: Buffer.alloc(0), isBinary: false });
  });

  it('--path serves that path only; other paths get 404', async () => {
    const srv = await serveInProcess(['--path', '/echo']);
    expect(srv.url).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/echo$/);
    const ws = await openClient(srv.url);
    const inbox = messages(ws);
    ws.send('on the route');
    expect((await inbox.next()).data.toString()).toBe('on the route');

    const base = srv.url.replace(/\/echo$/, '');
    for (const path of ['/', '/other', '/echo/more']) {
      const other = new WS(`${base}${path}`);
      other.on('error', () => {});
      onCleanup(() => other.terminate());
      const status = await withTimeout(
        new Promise<number>((resolve, reject) => {
          other.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
          other.once('open', () => reject(new Error(`${path} was accepted`)));
        }),
        10_000,
        `refusal of ${path}`,
      );
      expect(status, path).toBe(404);
    }
  });

  it('--max-message-size 1KiB echoes 1 KiB and closes a 2 KiB message with 1009', async () => {
    const srv = await serveInProcess(['--max-message-size', '1KiB']);
    const ws = await openClient(srv.url);
    const inbox = messages(ws);
    ws.send(Buffer.alloc(1024, 1));
    expect((await inbox.next()).data.length).toBe(1024);
    const closed = closeEvent(ws);
    ws.send(Buffer.alloc(2048, 2));
    expect((await closed).code).toBe(1009);
  });

  it('--max-frame-size closes a larger frame with 1009 even when the message size allows it', async () => {
    const srv = await serveInProcess(['--max-frame-size', '512', '--max-message-size', '1MiB']);
    const ws = await openClient(srv.url);
    const inbox = messages(ws);
    // Two 400-byte fragments make one 800-byte message: each frame is under the limit.
    ws.send(Buffer.alloc(400, 1), { fin: false });
    ws.send(Buffer.alloc(400, 2), { fin: true });
    expect((await inbox.next()).data.length).toBe(800);
    const closed = closeEvent(ws);
    ws.send(Buffer.alloc(600, 3));
    expect((await closed).code).toBe(1009);
  });

  it('--deflate negotiates permessage-deflate; without it the extension is declined', async () => {
    const plain = await serveInProcess([]);
    const c1 = await openClient(plain.url, { perMessageDeflate: true });
    expect(c1.extensions).toBe('');

    const srv = await serveInProcess(['--deflate']);
    const ws = await openClient(srv.url, { perMessageDeflate: { threshold: 0 } });
    expect(ws.extensions).toMatch(/permessage-deflate/);
    const inbox = messages(ws);
    const text = 'compress me '.repeat(1000);
    ws.send(text);
    ws.send(Buffer.alloc(5000, 7));
    const a = await inbox.next();
    expect(a.isBinary).toBe(false);
    expect(a.data.toString()).toBe(text);
    const b = await inbox.next();
    expect(b.isBinary).toBe(true);
    expect(b.data.equals(Buffer.alloc(5000, 7))).toBe(true);
  });

  it('--protocol selects a subprotocol the client offers', async () => {
    const srv = await serveInProcess(['--protocol', 'chat.v2', '--protocol', 'chat.v1']);
    const ws = await openClient(srv.url, {}, ['chat.v1', 'chat.v2']);
    expect(ws.protocol).toBe('chat.v2');
  });

  it('prints IPv6 hosts in brackets', async () => {
    const run = runInProcess(['serve', '--port', '0', '--host', '::1']);
    const m = await run.stdout.waitFor(LISTENING);
    expect(m[1]).toMatch(/^ws:\/\/\[::1\]:\d+\/$/);
    const ws = await openClient(m[1]!);
    const inbox = messages(ws);
    ws.send('v6');
    expect((await inbox.next()).data.toString()).toBe('v6');
  });

  it('on SIGTERM closes every client with 1001, prints a line and exits 0', async () => {
    const srv = await serveInProcess([]);
    const a = await openClient(srv.url);
    const b = await openClient(`${srv.url}b`);
    const closedA = closeEvent(a);
    const closedB = closeEvent(b);
    srv.signals.emit('signal', 'SIGTERM');
    expect((await closedA).code).toBe(1001);
    expect((await closedB).code).toBe(1001);
    expect(await withTimeout(srv.exit, 10_000, 'exit')).toBe(0);
    expect(srv.stdout.text).toMatch(/SIGTERM received, closing 2 connections with 1001/);
  });

  it('a port already in use exits 1 with a message', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    onCleanup(() => new Promise<void>((resolve) => blocker.close(() => resolve())));
    const { port } = blocker.address() as AddressInfo;
    const run = runInProcess(['serve', '--port', String(port), '--host', '127.0.0.1']);
    expect(await withTimeout(run.exit, 10_000, 'exit')).toBe(1);
    expect(run.stderr.text).toMatch(/cannot serve on 127\.0\.0\.1:\d+: .*EADDRINUSE/);
  });

  it('runServe (programmatic) returns a handle whose close() sends 1001', async () => {
    const stdout = new Capture();
    const handle = await runServe({ port: 0, host: '127.0.0.1', path: '/p', stdout });
    onCleanup(() => handle.close());
    expect(stdout.text).toBe(`wskit: listening on ${handle.url}\n`);
    expect(handle.url).toBe(`ws://127.0.0.1:${handle.address.port}/p`);
    const ws = await openClient(handle.url);
    const closed = closeEvent(ws);
    await handle.close();
    expect((await closed).code).toBe(1001);
  });
});

// ---- TLS -----------------------------------------------------------------------------

describe('TLS (wss://)', () => {
  let tls: TestCert | undefined;
  let cert: string;
  let key: string;

  beforeAll(() => {
    tls = generateCert();
    cert = tls.certFile;
    key = tls.keyFile;
  });

  afterAll(() => removeCert(tls));

  it('serves wss:// with --tls-cert/--tls-key and echoes to a client that trusts the cert', async () => {
    const srv = await serveInProcess(['--tls-cert', cert, '--tls-key', key]);
    expect(srv.url).toMatch(/^wss:\/\/127\.0\.0\.1:\d+\/$/);
    const ws = await openClient(srv.url, { ca: readFileSync(cert) });
    const inbox = messages(ws);
    ws.send('secure');
    ws.send(Buffer.from('bin'));
    expect(await inbox.next()).toEqual({ data: Buffer.from('secure'), isBinary: false });
    expect(await inbox.next()).toEqual({ data: Buffer.from('bin'), isBinary: true });
  });

  it('connect: --ca trusts the server, --insecure skips verification, neither fails with 1', async () => {
    const srv = await serveInProcess(['--tls-cert', cert, '--tls-key', key]);

    // Each waits for the echo before EOF: the Close sent at EOF may overtake it otherwise.
    const trusted = runInProcess(['connect', srv.url, '--ca', cert]);
    trusted.stdin.write('over tls\n');
    await trusted.stdout.waitFor(/over tls\n/);
    trusted.stdin.end();
    expect(await withTimeout(trusted.exit, 10_000, 'exit --ca')).toBe(0);
    expect(trusted.stdout.text).toBe('over tls\n');

    const insecure = runInProcess(['connect', srv.url, '--insecure']);
    insecure.stdin.write('insecure\n');
    await insecure.stdout.waitFor(/insecure\n/);
    insecure.stdin.end();
    expect(await withTimeout(insecure.exit, 10_000, 'exit --insecure')).toBe(0);
    expect(insecure.stdout.text).toBe('insecure\n');

    const untrusted = runInProcess(['connect', srv.url]);
    untrusted.stdin.end('x\n');
    expect(await withTimeout(untrusted.exit, 10_000, 'exit untrusted')).toBe(1);
    expect(untrusted.stderr.text).toMatch(/wskit: cannot connect to wss:.*(self-signed|certificate)/i);
    expect(untrusted.stdout.text).toBe('');
  });
});

// ---- connect -------------------------------------------------------------------------

describe('wskit connect', () => {
  it('sends stdin lines as text, prints replies, and closes with 1000 at EOF', async () => {
    const { wss, url } = await wsServer();
    const conn = nextConnection(wss);
    const run = runInProcess(['connect', `${url}/room`]);
    const { ws, req } = await conn;
    expect(req.url).toBe('/room');
    const got: Received[] = [];
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      got.push({ data: Buffer.from(data), isBinary });
      const text = data.toString();
      if (text === 'bin') ws.send(Buffer.from([0xde, 0xad, 0xbe, 0xef]));
      else if (text === 'long') ws.send(Buffer.alloc(40, 0x5a));
      else ws.send(`re:${text}`);
    });
    const serverSawClose = closeEvent(ws as WS);

    run.stdin.write('hello\nwörld\r\n');
    await run.stdout.waitFor(/re:wörld\n/);
    run.stdin.write('bin\nlong\n');
    await run.stdout.waitFor(/<binary 40 bytes/);
    expect(run.stdout.text).toBe(
      `re:hello\nre:wörld\n<binary 4 bytes: deadbeef>\n<binary 40 bytes: ${'5a'.repeat(32)}…>\n`,
    );
    expect(got).toEqual([
      { data: Buffer.from('hello'), isBinary: false },
      { data: Buffer.from('wörld'), isBinary: false },
      { data: Buffer.from('bin'), isBinary: false },
      { data: Buffer.from('long'), isBinary: false },
    ]);

    run.stdin.end();
    expect((await serverSawClose).code).toBe(1000);
    expect(await withTimeout(run.exit, 10_000, 'exit')).toBe(0);
    expect(run.stderr.text).toBe('');
  });

  it('the server closing with 1001 exits 0; with another code exits 1; both are reported', async () => {
    const { wss, url } = await wsServer();
    const first = nextConnection(wss);
    const a = runInProcess(['connect', url]);
    (await first).ws.close(1001, 'restarting');
    expect(await withTimeout(a.exit, 10_000, 'exit 1001')).toBe(0);
    expect(a.stderr.text).toBe('wskit: closed 1001 restarting\n');

    const second = nextConnection(wss);
    const b = runInProcess(['connect', url]);
    (await second).ws.close(4000, 'custom');
    expect(await withTimeout(b.exit, 10_000, 'exit 4000')).toBe(1);
    expect(b.stderr.text).toBe('wskit: closed 4000 custom\n');

    const third = nextConnection(wss);
    const c = runInProcess(['connect', url]);
    (await third).ws.close(1011);
    expect(await withTimeout(c.exit, 10_000, 'exit 1011')).toBe(1);
    expect(c.stderr.text).toBe('wskit: closed 1011 internal-server-error\n');
  });

  it('--header, --protocol and --origin reach the server', async () => {
    const offered: string[][] = [];
    const { wss, url } = await wsServer({
      handleProtocols: (protocols) => {
        offered.push([...protocols]);
        return protocols.has('json') ? 'json' : false;
      },
    });
    const conn = nextConnection(wss);
    const run = runInProcess([
      'connect',
      `${url}/h`,
      '--header',
      'X-Token: s3cret',
      '--header',
      'X-Multi: a',
      '--header',
      'x-multi: b',
      '--protocol',
      'chat',
      '--protocol',
      'json',
      '--origin',
      'https://example.test',
    ]);
    const { ws, req } = await conn;
    expect(req.headers['x-token']).toBe('s3cret');
    expect(req.headers['x-multi']).toBe('a, b');
    expect(req.headers['sec-websocket-protocol']).toBe('chat, json');
    expect(req.headers.origin).toBe('https://example.test');
    expect(offered).toEqual([['chat', 'json']]);
    expect(ws.protocol).toBe('json');
    run.stdin.end();
    expect(await withTimeout(run.exit, 10_000, 'exit')).toBe(0);
  });

  it('a 403 refusal exits 1 with the status on stderr', async () => {
    const { url } = await wsServer({
      verifyClient: (_info, cb) => cb(false, 403, 'Forbidden'),
    });
    const run = runInProcess(['connect', url]);
    run.stdin.end('never sent\n');
    expect(await withTimeout(run.exit, 10_000, 'exit')).toBe(1);
    expect(run.stderr.text).toMatch(/^wskit: handshake failed: the server answered 403 Forbidden/);
    expect(run.stdout.text).toBe('');
  });

  it('a refused TCP connection exits 1', async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as AddressInfo;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const run = runInProcess(['connect', `ws://127.0.0.1:${port}/`]);
    run.stdin.end();
    expect(await withTimeout(run.exit, 10_000, 'exit')).toBe(1);
    expect(run.stderr.text).toMatch(/cannot connect to ws:\/\/127\.0\.0\.1:\d+\/: .*ECONNREFUSED/);
  });

  it('--echo against the wskit server (programmatic): a shutdown ends it with 0', async () => {
    const stdout = new Capture();
    const handle = await runServe({ port: 0, host: '127.0.0.1', stdout });
    onCleanup(() => handle.close());
    const stderr = new Capture();
    const done = runConnect({
      url: handle.url,
      echo: true,
      stdin: new PassThrough(),
      stdout: new Capture(),
      stderr,
    });
    await withTimeout(
      (async () => {
        while (handle.server.clients.size === 0) await new Promise((r) => setTimeout(r, 20));
      })(),
      10_000,
      'client connected',
    );
    await handle.close(1001);
    expect(await withTimeout(done, 10_000, 'echo exit')).toBe(0);
    expect(stderr.text).toBe('wskit: closed 1001 going-away\n');
  });

  it('an abort signal closes with 1000 and resolves 0', async () => {
    const { wss, url } = await wsServer();
    const conn = nextConnection(wss);
    const abort = new AbortController();
    const done = runConnect({
      url,
      stdin: new PassThrough(),
      stdout: new Capture(),
      stderr: new Capture(),
      signal: abort.signal,
    });
    const { ws } = await conn;
    const closed = closeEvent(ws as WS);
    abort.abort();
    expect((await closed).code).toBe(1000);
    expect(await withTimeout(done, 10_000, 'exit')).toBe(0);
  });
});

// ---- the real process ----------------------------------------------------------------

describe('the wskit binary', () => {
  beforeAll(() => {
    try {
      execFileSync('npx', ['tsc', '-b', 'packages/cli'], { cwd: ROOT, stdio: 'pipe' });
    } catch (err) {
      // Other packages may be mid-edit: tsc -b still emits. Fail only without a binary.
      const out = (err as { stdout?: Buffer }).stdout?.toString() ?? String(err);
      if (!existsSync(BIN)) throw new Error(`build failed:\n${out}`);
      console.warn(`tsc -b packages/cli reported errors; testing the emitted build:\n${out}`);
    }
    expect(readFileSync(BIN, 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
  }, 120_000);

  it('bad flags exit 2 with a message on stderr', async () => {
    const a = spawnCli(['serve', '--port', 'nope']);
    const b = spawnCli(['connect', 'ws://127.0.0.1:1/', '--bogus']);
    expect((await withTimeout(a.exit, 10_000, 'exit a')).code).toBe(2);
    expect(a.stderr.text).toMatch(/port number/);
    expect((await withTimeout(b.exit, 10_000, 'exit b')).code).toBe(2);
    expect(b.stderr.text).toMatch(/unknown option '--bogus'/);
  });

  it('serve: prints the URL, echoes, and on SIGTERM closes clients with 1001 and exits 0', async () => {
    const srv = spawnCli(['serve', '--port', '0', '--host', '127.0.0.1']);
    const url = (await srv.stdout.waitFor(LISTENING))[1]!;
    expect(url).toMatch(/^ws:\/\/127\.0\.0\.1:[1-9]\d*\/$/);
    const ws = await openClient(url);
    const inbox = messages(ws);
    ws.send('ping?');
    ws.send(Buffer.from([9, 8, 7]));
    expect(await inbox.next()).toEqual({ data: Buffer.from('ping?'), isBinary: false });
    expect(await inbox.next()).toEqual({ data: Buffer.from([9, 8, 7]), isBinary: true });

    const closed = closeEvent(ws);
    srv.child.kill('SIGTERM');
    expect((await closed).code).toBe(1001);
    expect(await withTimeout(srv.exit, 10_000, 'exit')).toEqual({ code: 0, signal: null });
    expect(srv.stdout.text).toMatch(/SIGTERM received, closing 1 connection with 1001 going-away\n$/);
  });

  it('connect: stdin lines out, replies on stdout, exit 0 at EOF', async () => {
    const { wss, url } = await wsServer();
    wss.on('connection', (ws) => {
      ws.on('message', (data: Buffer, isBinary: boolean) =>
        ws.send(`<${data.toString()}>`, { binary: isBinary }),
      );
    });
    const run = spawnCli(['connect', url]);
    run.child.stdin!.write('one\ntwo\n');
    await run.stdout.waitFor(/<two>\n/);
    expect(run.stdout.text).toBe('<one>\n<two>\n');
    run.child.stdin!.end();
    expect(await withTimeout(run.exit, 10_000, 'exit')).toEqual({ code: 0, signal: null });
  });

  it('connect --echo: sends every message back with its type, exits 0 when the server closes', async () => {
    const { wss, url } = await wsServer();
    const conn = nextConnection(wss);
    const run = spawnCli(['connect', `${url}/echo`, '--echo', '--max-message-size', '1MiB']);
    const { ws } = await conn;
    const inbox = messages(ws as WS);
    const sequence: Array<{ data: Buffer; binary: boolean }> = [
      { data: Buffer.from('first'), binary: false },
      { data: Buffer.from([0, 1, 2, 3]), binary: true },
      { data: Buffer.from('ünïcödé ✓'), binary: false },
      { data: Buffer.alloc(0), binary: true },
      { data: Buffer.alloc(300_000, 0x61), binary: true },
      { data: Buffer.from('last'), binary: false },
    ];
    for (const m of sequence) ws.send(m.data, { binary: m.binary });
    for (const m of sequence) {
      const echoed = await inbox.next();
      expect(echoed.isBinary).toBe(m.binary);
      expect(echoed.data.equals(m.data)).toBe(true);
    }
    ws.close(1000, 'done');
    expect(await withTimeout(run.exit, 10_000, 'exit')).toEqual({ code: 0, signal: null });
    expect(run.stdout.text).toBe('');
    expect(run.stderr.text).toBe('wskit: closed 1000 done\n');
  });

  it('connect: a 403 refusal exits 1 with the status on stderr', async () => {
    const server: Server = createServer();
    server.on('upgrade', (_req, socket) => {
      socket.end('HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 8\r\n\r\nno entry');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    onCleanup(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const { port } = server.address() as AddressInfo;
    const run = spawnCli(['connect', `ws://127.0.0.1:${port}/`]);
    expect((await withTimeout(run.exit, 10_000, 'exit')).code).toBe(1);
    expect(run.stderr.text).toBe('wskit: handshake failed: the server answered 403 Forbidden: no entry\n');
  });
});
