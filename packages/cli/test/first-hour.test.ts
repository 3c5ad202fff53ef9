// What a newcomer meets first: the command at hand in a clone, the interactive session's
// connection details and prompt, error hints in words, --handshake-timeout, the bench
// progress bar, and the README's programmatic example.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocketServer } from '@wskit/core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  cleanup,
  generateCert,
  onCleanup,
  removeCert,
  type TestCert,
  withTimeout,
} from '../../../test/support/clients.js';
import { runBench, runConnect, runServe } from '../src/index.js';
import { Capture, runInProcess } from './helpers.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
afterEach(cleanup);

async function echoServer(options: ConstructorParameters<typeof WebSocketServer>[0] = {}) {
  const wss = new WebSocketServer(options);
  wss.route('/*', async (ws) => {
    for await (const msg of ws) await ws.send(msg.data, { binary: msg.type === 'binary' });
  });
  const { port } = await wss.listen(0, '127.0.0.1');
  onCleanup(() => wss.close());
  return { wss, url: `ws://127.0.0.1:${port}/` };
}

describe('the command at hand', () => {
  it('`npx wskit --help` works at the root of the clone (a linked bin, no path to dist)', () => {
    const out = execFileSync('npx', ['--no-install', 'wskit', '--help'], { cwd: ROOT, encoding: 'utf8' });
    expect(out).toMatch(/Usage: wskit \[options\] \[command\]/);
    expect(out).toMatch(/connect/);
    expect(out).toMatch(/bench/);
  });

  it.each([
    ['connect', ['connect', 'ws://127.0.0.1:1/', '--bogus']],
    ['bench', ['bench', 'ws://127.0.0.1:1/', '--connections', 'lots']],
    ['serve', ['serve']],
  ])('a usage error of %s names `wskit help %s`', async (command, args) => {
    const run = runInProcess(args);
    expect(await run.exit).toBe(2);
    expect(run.stderr.text).toContain(`(run 'wskit help ${command}' for usage)`);
  });
});

describe('wskit connect, interactive', () => {
  it('says what was negotiated, shows a prompt, and reports the close it started', async () => {
    const { url } = await echoServer({ protocols: ['chat.v2'], perMessageDeflate: true });
    const run = runInProcess(['connect', url, '--interactive', '--protocol', 'chat.v2', '--deflate']);
    await run.stderr.waitFor(/Ctrl-D/);
    expect(run.stderr.text).toContain(`wskit: connected to ${url}\n`);
    expect(run.stderr.text).toMatch(/subprotocol {2}chat\.v2\n/);
    expect(run.stderr.text).toMatch(/extensions {3}permessage-deflate/);
    expect(run.stderr.text).toMatch(/TLS {10}no \(ws:\/\/: not encrypted\)/);
    await run.stderr.waitFor(/> $/);
    run.stdin.write('hi there\n');
    await run.stdout.waitFor(/hi there\n/);
    expect(run.stdout.text).toBe('hi there\n'); // the prompt is on stderr: stdout stays the messages
    run.stdin.end();
    expect(await withTimeout(run.exit, 10_000, 'exit')).toBe(0);
    expect(run.stderr.text).toMatch(/wskit: closed 1000 normal-closure\n$/);
  });

  it('reports a close by the server with its code and reason', async () => {
    const wss = new WebSocketServer();
    wss.route('/*', (ws) => void ws.close(4001, 'kicked out'));
    const { port } = await wss.listen(0, '127.0.0.1');
    onCleanup(() => wss.close());
    const run = runInProcess(['connect', `ws://127.0.0.1:${port}/`, '-i']);
    expect(await withTimeout(run.exit, 10_000, 'exit')).toBe(1);
    expect(run.stderr.text).toMatch(/wskit: connected to/);
    expect(run.stderr.text).toMatch(/wskit: closed 4001 kicked out\n$/);
  });

  it('is quiet without a terminal (scripts keep their output)', async () => {
    const { url } = await echoServer();
    const run = runInProcess(['connect', url]);
    run.stdin.write('x\n');
    await run.stdout.waitFor(/x\n/);
    run.stdin.end();
    expect(await run.exit).toBe(0);
    expect(run.stderr.text).toBe('');
  });
});

describe('error hints', () => {
  let tls: TestCert | undefined;
  let tlsUrl: string;
  let tlsServer: Awaited<ReturnType<typeof runServe>>;
  beforeAll(async () => {
    tls = generateCert();
    tlsServer = await runServe({ port: 0, tls: { cert: tls.cert, key: tls.key }, stdout: new Capture() });
    tlsUrl = tlsServer.url;
  });
  afterAll(async () => {
    await tlsServer?.close();
    removeCert(tls);
  });

  it('a self-signed certificate suggests --ca and -k', async () => {
    const run = runInProcess(['connect', tlsUrl]);
    run.stdin.end();
    expect(await run.exit).toBe(1);
    expect(run.stderr.text).toMatch(/self-signed/);
    expect(run.stderr.text).toMatch(/hint: .*--ca FILE.*-k\/--insecure/);
  });

  it('ws:// to a TLS port says to use wss://', async () => {
    const run = runInProcess(['connect', tlsUrl.replace('wss:', 'ws:')]);
    run.stdin.end();
    expect(await run.exit).toBe(1);
    expect(run.stderr.text).toMatch(/hint: 127\.0\.0\.1:\d+ speaks TLS.*use wss:\/\/ instead of ws:\/\//);
  });

  it('wss:// to a plain port says to use ws://', async () => {
    const { url } = await echoServer();
    const run = runInProcess(['connect', url.replace('ws:', 'wss:')]);
    run.stdin.end();
    expect(await run.exit).toBe(1);
    expect(run.stderr.text).toMatch(/TLS handshake failed/);
    expect(run.stderr.text).toMatch(/hint: .*not TLS.*use ws:\/\/ instead of wss:\/\//);
    expect(run.stderr.text).not.toMatch(/SSL routines/);
  });

  it('--ca with a private key or a non-PEM file is refused as a usage error', async () => {
    const junk = join(tls!.dir, 'junk.txt');
    writeFileSync(junk, 'hello\n');
    const key = runInProcess(['connect', tlsUrl, '--ca', tls!.keyFile]);
    expect(await key.exit).toBe(2);
    expect(key.stderr.text).toMatch(/--ca: .* is a private key, not a certificate/);
    expect(key.stderr.text).toContain('wskit help connect');
    const other = runInProcess(['bench', tlsUrl, '--ca', junk]);
    expect(await other.exit).toBe(2);
    expect(other.stderr.text).toMatch(/is not a PEM certificate/);
    const good = runInProcess(['connect', tlsUrl, '--ca', tls!.certFile]);
    good.stdin.write('ok\n');
    await good.stdout.waitFor(/ok\n/);
    good.stdin.end();
    expect(await good.exit).toBe(0);
  });

  it('--handshake-timeout gives up on a server that never answers the upgrade', async () => {
    const accepted = new Set<Socket>();
    const silent: NetServer = createNetServer((socket) => {
      accepted.add(socket);
      socket.on('error', () => {});
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    onCleanup(() => {
      for (const socket of accepted) socket.destroy();
      silent.close();
    });
    const { port } = silent.address() as { port: number };
    const run = runInProcess(['connect', `ws://127.0.0.1:${port}/`, '--handshake-timeout', '150ms']);
    run.stdin.end();
    expect(await withTimeout(run.exit, 5_000, 'exit')).toBe(1);
    expect(run.stderr.text).toMatch(/timed out after 150 ms/);
    expect(run.stderr.text).toMatch(/hint: .*--handshake-timeout/);
    const bad = runInProcess(['connect', `ws://127.0.0.1:${port}/`, '--handshake-timeout', 'soon']);
    expect(await bad.exit).toBe(2);
  });
});

describe('wskit bench progress', () => {
  it('reports progress up to the total, and --progress draws a bar on stderr', async () => {
    const { url } = await echoServer();
    const seen: number[] = [];
    let last: { received: number; total: number | undefined; done: boolean } | undefined;
    const r = await runBench({
      url,
      connections: 2,
      messages: 300,
      progressInterval: 5,
      onProgress: (p) => {
        seen.push(p.received);
        last = p;
      },
    });
    expect(r.errors).toBe(0);
    expect(seen.length).toBeGreaterThanOrEqual(2);
    expect([...seen].sort((a, b) => a - b)).toEqual(seen); // never goes back
    expect(last).toMatchObject({ received: 600, total: 600, done: true });

    const run = runInProcess(['bench', url, '-c', '2', '-n', '200', '--progress']);
    expect(await run.exit).toBe(0);
    expect(run.stderr.text).toMatch(/wskit bench \[=+\] 100% 400\/400 msgs/);
    expect(run.stdout.text).toMatch(/latency {5}p50 .* p99\.9 /);
  });
});

describe('README programmatic example', () => {
  it('the client connects before the server closes: it resolves with 0', async () => {
    const stdout = new Capture();
    const stderr = new Capture();
    const server = await runServe({ port: 0, path: '/echo', deflate: true, stdout });
    const exitCode = await runConnect({
      url: server.url,
      echo: true,
      stderr,
      onOpen: () => void server.close(),
    });
    expect(exitCode).toBe(0);
    expect(stderr.text).toBe('wskit: closed 1001 going-away\n');
  });
});
