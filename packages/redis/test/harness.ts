// Real redis-server instances for the tests: started on free loopback ports in temp dirs,
// stopped (and the dirs removed) by stopAll(). No mocks.
import { type ChildProcess, execFile, fork, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect, type WebSocket } from '@wskit/core';

export const HOST = '127.0.0.1';

/** Is a redis-server >= 7 (sharded pub/sub) installed? */
export function redisAvailable(): boolean {
  const r = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  const m = /v=(\d+)\./.exec(r.stdout ?? '');
  return r.status === 0 && m !== null && Number(m[1]) >= 7;
}

async function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, HOST, () => srv.close(() => resolve(true)));
  });
}

/** A free port whose cluster bus port (port + 10000) is free too. */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = 20000 + Math.floor(Math.random() * 35000);
    if ((await portFree(port)) && (await portFree(port + 10000))) return port;
  }
}

/** Polls `cond` until it holds (a condition, not a sleep), for at most `timeout` ms. */
export async function waitFor(
  cond: () => boolean | Promise<boolean>,
  what: string,
  timeout = 20_000,
): Promise<void> {
  const end = Date.now() + timeout;
  for (;;) {
    try {
      if (await cond()) return;
    } catch {
      // not yet (e.g. Redis still starting)
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export class RedisInstance {
  readonly port: number;
  readonly dir: string;
  private readonly extra: string[];
  private proc: ChildProcess | undefined;

  constructor(port: number, extra: string[] = []) {
    this.port = port;
    this.dir = mkdtempSync(join(tmpdir(), 'wskit-redis-'));
    this.extra = extra;
  }

  get url(): string {
    return `redis://${HOST}:${this.port}`;
  }

  /** Starts redis-server and resolves when it accepts connections. */
  async start(): Promise<void> {
    const args = [
      '--port',
      String(this.port),
      '--bind',
      HOST,
      '--dir',
      this.dir,
      '--save',
      '',
      '--appendonly',
      'no',
      '--daemonize',
      'no',
      '--loglevel',
      'notice',
      ...this.extra,
    ];
    const proc = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = proc;
    let out = '';
    await new Promise<void>((resolve, reject) => {
      const onData = (chunk: Buffer) => {
        out += chunk.toString();
        if (out.includes('Ready to accept connections')) {
          proc.stdout?.off('data', onData);
          proc.stdout?.resume();
          resolve();
        }
      };
      proc.stdout?.on('data', onData);
      proc.once('exit', (code) => reject(new Error(`redis-server exited (${code}): ${out}`)));
    });
  }

  /** SIGKILL (no goodbye to the clients), resolved when the process is gone. */
  async kill(): Promise<void> {
    const proc = this.proc;
    this.proc = undefined;
    if (proc === undefined || proc.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      proc.once('exit', () => resolve());
      proc.kill('SIGKILL');
    });
  }

  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }

  cli(...args: string[]): Promise<string> {
    return new Promise((resolve, reject) => {
      execFile('redis-cli', ['-h', HOST, '-p', String(this.port), ...args], (err, stdout) =>
        err ? reject(err) : resolve(stdout),
      );
    });
  }
}

export async function startStandalone(): Promise<RedisInstance> {
  const r = new RedisInstance(await freePort());
  await r.start();
  return r;
}

/** A 3-master Cluster (no replicas); a master's slots stay down while it is, the others serve. */
export async function startCluster(masters = 3): Promise<RedisInstance[]> {
  const nodes: RedisInstance[] = [];
  for (let i = 0; i < masters; i++) {
    const node = new RedisInstance(await freePort(), [
      '--cluster-enabled',
      'yes',
      '--cluster-config-file',
      'nodes.conf',
      '--cluster-node-timeout',
      '2000',
      '--cluster-require-full-coverage',
      'no',
    ]);
    await node.start();
    nodes.push(node);
  }
  await new Promise<void>((resolve, reject) => {
    execFile(
      'redis-cli',
      [
        '--cluster',
        'create',
        ...nodes.map((n) => `${HOST}:${n.port}`),
        '--cluster-replicas',
        '0',
        '--cluster-yes',
      ],
      (err, _out, stderr) => (err ? reject(new Error(`cluster create: ${stderr}`)) : resolve()),
    );
  });
  await clusterOk(nodes);
  return nodes;
}

/** Waits until every node says cluster_state:ok and knows all the masters. */
export async function clusterOk(nodes: RedisInstance[]): Promise<void> {
  await waitFor(async () => {
    for (const n of nodes) {
      const info = await n.cli('cluster', 'info');
      if (!info.includes('cluster_state:ok')) return false;
      if (!info.includes(`cluster_known_nodes:${nodes.length}`)) return false;
    }
    return true;
  }, 'the cluster to be ok');
}

// ---- server processes -------------------------------------------------------------------

const FIXTURE = fileURLToPath(new URL('./fixtures/server-process.mjs', import.meta.url));

export interface PublishOutcome {
  ok: boolean;
  local: number;
  remote?: number;
  error?: string;
}

export class ServerProcess {
  readonly proc: ChildProcess;
  port = 0;
  up = true;
  private nextId = 0;
  private readonly pending = new Map<number, (r: PublishOutcome) => void>();
  private readonly waiters: Array<() => void> = [];

  constructor(redis: { url: string } | { cluster: Array<{ host: string; port: number }> }) {
    this.proc = fork(FIXTURE, [JSON.stringify({ redis })], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.proc.on('message', (msg: { event?: string; port?: number; id?: number } & PublishOutcome) => {
      if (msg.event === 'ready') this.port = msg.port ?? 0;
      else if (msg.event === 'up') this.up = true;
      else if (msg.event === 'down') this.up = false;
      else if (msg.id !== undefined) {
        this.pending.get(msg.id)?.(msg);
        this.pending.delete(msg.id);
      }
      for (const w of this.waiters.splice(0)) w();
    });
  }

  /** Resolves on the next message from the process that makes `cond` true. */
  async until(cond: () => boolean, what: string, timeout = 20_000): Promise<void> {
    const end = Date.now() + timeout;
    while (!cond()) {
      if (this.proc.exitCode !== null) throw new Error(`server process exited while waiting for ${what}`);
      const left = end - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  async ready(): Promise<void> {
    await this.until(() => this.port !== 0, 'the server process to listen');
  }

  publish(topic: string, data: string | Buffer, opts: { compress?: boolean } = {}): Promise<PublishOutcome> {
    const id = this.nextId++;
    const binary = typeof data !== 'string';
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.proc.send({
        id,
        cmd: 'publish',
        topic,
        data: Buffer.from(data).toString('base64'),
        binary,
        compress: opts.compress ?? false,
      });
    });
  }

  async kill(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      this.proc.once('exit', () => resolve());
      this.proc.kill('SIGKILL');
    });
  }
}

// ---- WebSocket clients ------------------------------------------------------------------

export interface Received {
  type: 'text' | 'binary';
  data: Buffer;
}

export class Client {
  readonly ws: WebSocket;
  readonly got: Received[] = [];
  private waiters: Array<() => void> = [];

  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on('message', (m: { type: 'text' | 'binary'; data: Buffer }) => {
      this.got.push({ type: m.type, data: m.data });
      for (const w of this.waiters.splice(0)) w();
    });
  }

  static async open(port: number, topics: string[], deflate: boolean): Promise<Client> {
    const ws = await connect(`ws://${HOST}:${port}/?topics=${topics.join(',')}`, {
      perMessageDeflate: deflate,
      pingInterval: 0,
    });
    return new Client(ws);
  }

  async until(count: number, timeout = 20_000): Promise<void> {
    const end = Date.now() + timeout;
    while (this.got.length < count) {
      const left = end - Date.now();
      if (left <= 0) throw new Error(`client got ${this.got.length} of ${count} messages`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }
}
