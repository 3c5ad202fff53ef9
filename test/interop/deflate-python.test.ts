/**
 * permessage-deflate interop with Python `websockets` (Debian's python3-websockets 10.4,
 * run with /usr/bin/python3), both ways: a Python server with our client, and our server
 * with a Python client. The Python peers (python/deflate_*.py) echo every message; both
 * sides must agree on the parameters, and text and binary messages of 16 B .. 1 MiB,
 * fragmented and not, must come back byte for byte.
 *
 * Windows of 8 bits: zlib has no raw 8-bit deflate, so wskit compresses with zlib at 9 bits
 * (matches at most 250 bytes back, a valid 8-bit stream); Python inflates with 8 bits.
 *
 * Without the module the suite is skipped (with a warning); with CI set it fails instead.
 */
import { type ChildProcessWithoutNullStreams, execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { inflateRawSync, constants as zconst } from 'node:zlib';
import {
  type ClientOptions,
  connect,
  type ServerOptions,
  type WebSocket,
  WebSocketServer,
} from '@wskit/core';
import { parseExtensions } from '@wskit/core/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { checkClientOutput, echoAll, FrameTapProxy, probeMessages, WINDOW_CASES } from './client-window.js';

const PYTHON = '/usr/bin/python3';
const SCRIPTS = fileURLToPath(new URL('./python/', import.meta.url));
const MiB = 1024 * 1024;
const LIMITS = { maxMessageSize: 4 * MiB, maxFrameSize: 4 * MiB } as const;
const SIZES = [16, 1000, 16 * 1024, 100_000, MiB];

function probePython(): { version: string } | { problem: string } {
  try {
    const out = execFileSync(PYTHON, ['-c', 'import websockets; print(websockets.__version__)'], {
      stdio: 'pipe',
      timeout: 20_000,
    });
    return { version: out.toString().trim() };
  } catch (err) {
    return { problem: err instanceof Error ? (err.message.split('\n')[0] ?? err.message) : String(err) };
  }
}

const probe = probePython();
const available = 'version' in probe;
if (!available) {
  const why = `Python websockets is not importable by ${PYTHON} (${probe.problem}); install python3-websockets.`;
  if (process.env.CI) {
    describe('permessage-deflate with Python websockets', () => {
      it('needs the websockets module', () => {
        throw new Error(why);
      });
    });
  } else {
    console.warn(`[deflate-python] SKIPPED: ${why}`);
  }
}

// ---- payloads ----------------------------------------------------------------------------

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function textPayload(size: number): string {
  let s = '';
  let i = 0;
  while (s.length < size) {
    s += `{"n":${i},"name":"item-${(i * 7919) % 1000}","flags":[${i % 5},${i % 11}],"active":${i % 3 === 0}},`;
    i++;
  }
  return s.slice(0, size);
}

function binaryPayload(size: number): Buffer {
  const out = Buffer.allocUnsafe(size);
  let x = (size * 2654435761) >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    if ((i >> 9) % 3 === 0) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      x >>>= 0;
      out[i] = x & 0xff;
    } else {
      out[i] = (i * 13 + (i >> 8)) & 0xff;
    }
  }
  return out;
}

const payloads = SIZES.flatMap((size) => [
  { label: `text ${size}`, data: textPayload(size) as string | Buffer, size },
  { label: `binary ${size}`, data: binaryPayload(size) as string | Buffer, size },
]);

function thirds<T extends string | Buffer>(data: T): T[] {
  const n = data.length;
  const a = Math.floor(n / 3);
  const b = Math.floor((2 * n) / 3);
  return [data.slice(0, a), data.slice(a, b), data.slice(b)] as T[];
}

async function send(ws: WebSocket, data: string | Buffer, fragmented: boolean): Promise<void> {
  const binary = typeof data !== 'string';
  const parts = fragmented ? thirds(data) : [data];
  for (let i = 0; i < parts.length; i++) await ws.send(parts[i]!, { binary, fin: i === parts.length - 1 });
}

/** Sends every payload and checks each echo; returns how many went round. */
async function roundTrips(ws: WebSocket, fragmented: boolean): Promise<number> {
  let n = 0;
  for (const p of payloads) {
    await send(ws, p.data, fragmented);
    const m = await ws.receive();
    if (m === null) throw new Error(`closed before the echo of ${p.label}`);
    expect(m.type, p.label).toBe(typeof p.data === 'string' ? 'text' : 'binary');
    expect(m.size, p.label).toBe(p.size);
    expect(sha(m.data), p.label).toBe(sha(Buffer.from(p.data)));
    n++;
  }
  return n;
}

/** A data frame as it leaves wskit: after compression, before encoding. */
interface SentFrame {
  opcode: number;
  rsv: number;
  fin: boolean;
  payload: Buffer;
}

/** Records the data frames a wskit connection sends from now on. */
function outbound(ws: WebSocket): SentFrame[] {
  const frames: SentFrame[] = [];
  ws.use({
    name: 'outbound-spy',
    outbound(frame) {
      if (frame.opcode <= 2) {
        frames.push({
          opcode: frame.opcode,
          rsv: frame.rsv,
          fin: frame.fin,
          payload: Buffer.from(frame.payload),
        });
      }
      return frame;
    },
  });
  return frames;
}

/**
 * The compressed messages among `frames` (context takeover: one DEFLATE stream, each message
 * with its 00 00 ff ff put back) inflated by zlib with an 8-bit window and 64-byte output
 * buffers (Node's smallest), so that it checks distances against the window: anything more
 * than 256 + 63 bytes back fails with "invalid distance too far back".
 */
function inflate8(frames: SentFrame[]): Buffer {
  const tail = Buffer.from([0x00, 0x00, 0xff, 0xff]);
  const stream = Buffer.concat(frames.flatMap((f) => (f.fin ? [f.payload, tail] : [f.payload])));
  return inflateRawSync(stream, { windowBits: 8, chunkSize: 64, finishFlush: zconst.Z_SYNC_FLUSH });
}

/** Every payload, one after another. */
const allPayloads = () => Buffer.concat(payloads.map((p) => Buffer.from(p.data)));

/** Checks what wskit sent with an 8-bit window of its own: every message compressed. */
function expectCompressedWithin8Bits(sent: SentFrame[]): void {
  const firsts = sent.filter((f) => f.opcode !== 0);
  // RSV1 on every message (threshold 0), one frame each.
  expect(sent.map((f) => [f.opcode, f.rsv, f.fin])).toEqual(
    payloads.map((p) => [typeof p.data === 'string' ? 1 : 2, 4, true]),
  );
  // The text ones, compressed, are far smaller than the text.
  payloads.forEach((p, i) => {
    if (typeof p.data === 'string' && p.size >= 1000) {
      expect(firsts[i]!.payload.length, p.label).toBeLessThan(p.size / 3);
    }
  });
  expect(sha(inflate8(sent))).toBe(sha(allPayloads()));
}

// ---- the Python peer ---------------------------------------------------------------------

type PyEvent = Record<string, unknown> & { event: string };

interface PyDeflate {
  remote_no_context_takeover: boolean;
  local_no_context_takeover: boolean;
  remote_max_window_bits: number;
  local_max_window_bits: number;
}

class PythonPeer {
  readonly exited: Promise<number | null>;
  private readonly proc: ChildProcessWithoutNullStreams;
  private stderr = '';
  private buffer = '';
  private readonly events: PyEvent[] = [];
  private readonly waiters: Array<() => void> = [];

  constructor(script: string, args: string[]) {
    this.proc = spawn(PYTHON, ['-u', `${SCRIPTS}${script}`, ...args], {
      cwd: SCRIPTS,
      stdio: 'pipe',
      env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' },
    });
    this.proc.stdout.setEncoding('utf8');
    this.proc.stderr.setEncoding('utf8');
    this.proc.stdout.on('data', (chunk: string) => this.onStdout(chunk));
    this.proc.stderr.on('data', (chunk: string) => {
      this.stderr += chunk;
    });
    this.proc.stdin.on('error', () => {});
    this.exited = new Promise((resolve) => this.proc.once('exit', (code) => resolve(code)));
    this.exited.then(() => this.wake());
  }

  private onStdout(chunk: string): void {
    this.buffer += chunk;
    let nl = this.buffer.indexOf('\n');
    while (nl >= 0) {
      const line = this.buffer.slice(0, nl).trim();
      this.buffer = this.buffer.slice(nl + 1);
      if (line !== '') {
        try {
          this.events.push(JSON.parse(line) as PyEvent);
        } catch {
          this.stderr += `[not JSON] ${line}\n`;
        }
      }
      nl = this.buffer.indexOf('\n');
    }
    this.wake();
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** The next event with this name (earlier ones of other names stay queued). */
  async next(name: string, ms = 20_000): Promise<PyEvent> {
    const deadline = Date.now() + ms;
    for (;;) {
      const i = this.events.findIndex((e) => e.event === name);
      if (i >= 0) return this.events.splice(i, 1)[0]!;
      if (this.proc.exitCode !== null) {
        throw new Error(`python exited (${this.proc.exitCode}) before "${name}"\n${this.stderr}`);
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for python "${name}"\n${this.stderr}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Closes stdin (the server exits on EOF), then kills it if it lingers. */
  async stop(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.proc.stdin.end();
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(timer);
  }
}

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) {
    try {
      await fn();
    } catch {
      // keep cleaning
    }
  }
});

function startPython(script: string, args: string[]): PythonPeer {
  const peer = new PythonPeer(script, args);
  cleanups.push(() => peer.stop());
  return peer;
}

/** Agreed parameters from our side's extensions string. */
function agreed(header: string) {
  const [ext] = parseExtensions(header);
  const get = (name: string) => ext?.params.find(([k]) => k === name)?.[1];
  const bits = (name: string) => {
    const v = get(name);
    return typeof v === 'string' ? Number(v) : 15;
  };
  return {
    serverNoContextTakeover: get('server_no_context_takeover') === true,
    clientNoContextTakeover: get('client_no_context_takeover') === true,
    serverMaxWindowBits: bits('server_max_window_bits'),
    clientMaxWindowBits: bits('client_max_window_bits'),
  };
}

// ---- Python server, our client ------------------------------------------------------------

interface ServerCase {
  name: string;
  python: Record<string, unknown> | null;
  ours: ClientOptions['perMessageDeflate'];
  expected: string;
}

const serverCases: ServerCase[] = [
  {
    name: "websockets' defaults, client_max_window_bits offered",
    python: null,
    ours: { clientMaxWindowBits: true },
    expected: 'permessage-deflate; server_max_window_bits=12; client_max_window_bits=12',
  },
  {
    name: "websockets' defaults, our default offer",
    python: null,
    ours: true,
    expected: 'permessage-deflate; server_max_window_bits=12; client_max_window_bits=12',
  },
  {
    name: "websockets' defaults, plain offer (clientMaxWindowBits: false)",
    python: null,
    ours: { clientMaxWindowBits: false },
    expected: 'permessage-deflate; server_max_window_bits=12',
  },
  {
    name: 'no context takeover both ways',
    python: { server_no_context_takeover: true, client_no_context_takeover: true },
    ours: true,
    expected: 'permessage-deflate; server_no_context_takeover; client_no_context_takeover',
  },
  {
    name: '9-bit windows both ways',
    python: { server_max_window_bits: 9, client_max_window_bits: 9 },
    ours: { clientMaxWindowBits: true },
    expected: 'permessage-deflate; server_max_window_bits=9; client_max_window_bits=9',
  },
  {
    name: 'a list of offers: the first one is taken',
    python: {},
    ours: [{ serverMaxWindowBits: 10 }, {}],
    expected: 'permessage-deflate; server_max_window_bits=10',
  },
  {
    name: 'everything requested by our client',
    python: { mem_level: 9, level: 9 },
    ours: {
      serverNoContextTakeover: true,
      clientNoContextTakeover: true,
      serverMaxWindowBits: 11,
      clientMaxWindowBits: 10,
      threshold: 0,
      level: 1,
    },
    expected:
      'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=11; client_max_window_bits=10',
  },
];

// ---- our server, Python client ------------------------------------------------------------

interface ClientCase {
  name: string;
  python: Record<string, unknown> | null;
  ours: ServerOptions['perMessageDeflate'];
  expected: string;
}

const clientCases: ClientCase[] = [
  { name: "websockets' defaults", python: null, ours: true, expected: 'permessage-deflate' },
  {
    name: 'Python asks for no context takeover both ways',
    python: { server_no_context_takeover: true, client_no_context_takeover: true },
    ours: { clientNoContextTakeover: true },
    expected: 'permessage-deflate; server_no_context_takeover; client_no_context_takeover',
  },
  {
    name: 'Python limits both windows',
    python: { server_max_window_bits: 10, client_max_window_bits: 11 },
    ours: true,
    expected: 'permessage-deflate; server_max_window_bits=10; client_max_window_bits=11',
  },
  {
    name: 'our server limits both windows to 9 bits',
    python: null,
    ours: { serverMaxWindowBits: 9, clientMaxWindowBits: 9, serverNoContextTakeover: true },
    expected:
      'permessage-deflate; server_no_context_takeover; server_max_window_bits=9; client_max_window_bits=9',
  },
  {
    name: 'our server asks for client_no_context_takeover and a 10-bit client window',
    python: { client_max_window_bits: true, mem_level: 3 },
    ours: { clientNoContextTakeover: true, clientMaxWindowBits: 10, level: 1, threshold: 0 },
    expected: 'permessage-deflate; client_no_context_takeover; client_max_window_bits=10',
  },
];

describe.skipIf(!available)(
  `permessage-deflate with Python websockets ${'version' in probe ? probe.version : ''}`,
  () => {
    describe.each(serverCases)('Python server: $name', (c) => {
      it('our client negotiates the same parameters and every message echoes back exactly', async () => {
        const py = startPython('deflate_server.py', [JSON.stringify(c.python)]);
        const port = (await py.next('listening')).port as number;
        for (const fragmented of [false, true]) {
          const ws = await connect(`ws://127.0.0.1:${port}${fragmented ? '/frag' : '/'}`, {
            pingInterval: 0,
            perMessageDeflate: c.ours,
            ...LIMITS,
          });
          cleanups.push(() => ws.terminate());
          const info = await py.next('connection');
          expect(ws.extensions).toBe(c.expected);
          expect(info.header).toBe(ws.extensions);
          // What Python will do matches the string: it is the server (local side).
          const a = agreed(ws.extensions);
          const d = info.deflate as PyDeflate;
          expect(d.local_no_context_takeover).toBe(a.serverNoContextTakeover);
          expect(d.local_max_window_bits).toBe(a.serverMaxWindowBits);
          expect(d.remote_max_window_bits).toBe(a.clientMaxWindowBits);
          expect(await roundTrips(ws, fragmented)).toBe(payloads.length);
          const closed = await ws.close(1000, 'done');
          expect(closed.code).toBe(1000);
          const done = await py.next('done');
          expect(done.count).toBe(payloads.length);
          expect(done.code).toBe(1000);
        }
      });
    });

    describe.each(clientCases)('Python client: $name', (c) => {
      it('our server negotiates the same parameters and every message echoes back exactly', async () => {
        const results: Array<Promise<number>> = [];
        const wss = new WebSocketServer({
          pingInterval: 0,
          closeTimeout: 3000,
          perMessageDeflate: c.ours,
          ...LIMITS,
        });
        const opened: WebSocket[] = [];
        wss.route('/*', (ws, req) => {
          opened.push(ws);
          results.push(
            (async () => {
              const n = await roundTrips(ws, req.path === '/frag');
              await ws.close(1000, 'done');
              return n;
            })(),
          );
        });
        const { port } = await wss.listen(0, '127.0.0.1');
        cleanups.push(() => wss.close());
        for (const fragmented of [false, true]) {
          const args = [`ws://127.0.0.1:${port}${fragmented ? '/frag' : '/'}`, JSON.stringify(c.python)];
          const py = startPython('deflate_client.py', fragmented ? [...args, 'frag'] : args);
          const open = await py.next('open');
          const ws = opened.at(-1)!;
          expect(ws.extensions).toBe(c.expected);
          expect(open.header).toBe(ws.extensions);
          // Python is the client (local side): what it expects from us matches the string.
          const a = agreed(ws.extensions);
          const d = open.deflate as PyDeflate;
          expect(d.remote_no_context_takeover).toBe(a.serverNoContextTakeover);
          expect(d.remote_max_window_bits).toBe(a.serverMaxWindowBits);
          expect(d.local_max_window_bits).toBeLessThanOrEqual(a.clientMaxWindowBits);
          if (a.clientNoContextTakeover) expect(d.local_no_context_takeover).toBe(true);
          expect(await results.at(-1)!).toBe(payloads.length);
          const closed = await py.next('closed');
          expect(closed.count).toBe(payloads.length);
          expect(closed.code).toBe(1000);
          expect(await py.exited).toBe(0);
        }
      });
    });

    it('Python asks for server_max_window_bits=8: our server agrees, compresses within 8 bits, and inflates Python', async () => {
      const wss = new WebSocketServer({
        pingInterval: 0,
        closeTimeout: 3000,
        perMessageDeflate: { threshold: 0 },
        ...LIMITS,
      });
      let sent: SentFrame[] = [];
      const received: Array<[number, number]> = [];
      let ext: string | undefined;
      let result: Promise<number> | undefined;
      wss.route('/*', (ws) => {
        ext = ws.extensions;
        sent = outbound(ws);
        ws.use({
          name: 'rsv-spy',
          inbound(frame) {
            received.push([frame.opcode, frame.rsv]);
            return frame;
          },
        });
        result = (async () => {
          const n = await roundTrips(ws, false);
          await ws.close(1000, 'done');
          return n;
        })();
      });
      const { port } = await wss.listen(0, '127.0.0.1');
      cleanups.push(() => wss.close());
      const py = startPython('deflate_client.py', [
        `ws://127.0.0.1:${port}/`,
        JSON.stringify({ server_max_window_bits: 8 }),
      ]);
      const open = await py.next('open');
      expect(open.offer).toBe('permessage-deflate; server_max_window_bits=8; client_max_window_bits');
      // Accepted (RFC 7692 §7.1.2.1): we compress with zlib at 9 bits, and Python inflates
      // with an 8-bit window.
      expect(open.header).toBe('permessage-deflate; server_max_window_bits=8');
      expect(ext).toBe(open.header);
      const d = open.deflate as PyDeflate;
      expect(d.remote_max_window_bits).toBe(8);
      expect(d.local_max_window_bits).toBe(15);
      // Every echo came back exactly: Python read all we sent with its 8-bit window.
      expect(await result).toBe(payloads.length);
      const closed = await py.next('closed');
      expect(closed.count).toBe(payloads.length);
      expect(closed.code).toBe(1000);
      expect(await py.exited).toBe(0);
      expectCompressedWithin8Bits(sent);
      // Python's echoes: compressed, every one of them.
      expect(received.filter(([op]) => op === 1 || op === 2).map(([, rsv]) => rsv)).toEqual(
        payloads.map(() => 4),
      );
    });

    it('a Python server sets client_max_window_bits=8: our client compresses within 8 bits, Python inflates it', async () => {
      const py = startPython('deflate_server.py', [JSON.stringify({ client_max_window_bits: 8 })]);
      const port = (await py.next('listening')).port as number;
      const ws = await connect(`ws://127.0.0.1:${port}/`, {
        pingInterval: 0,
        perMessageDeflate: { clientMaxWindowBits: true, threshold: 0 },
        ...LIMITS,
      });
      cleanups.push(() => ws.terminate());
      const sent = outbound(ws);
      const received: number[] = [];
      ws.use({
        name: 'rsv-spy',
        inbound(frame) {
          if (frame.opcode === 1 || frame.opcode === 2) received.push(frame.rsv);
          return frame;
        },
      });
      const info = await py.next('connection');
      expect(ws.extensions).toBe('permessage-deflate; client_max_window_bits=8');
      expect(info.header).toBe(ws.extensions);
      const d = info.deflate as PyDeflate;
      expect(d.remote_max_window_bits).toBe(8);
      expect(d.local_max_window_bits).toBe(15);
      // Every echo came back exactly: Python read all we sent with its 8-bit window.
      expect(await roundTrips(ws, false)).toBe(payloads.length);
      const closed = await ws.close(1000, 'done');
      expect(closed.code).toBe(1000);
      const done = await py.next('done');
      expect(done.count).toBe(payloads.length);
      expect(done.code).toBe(1000);
      expectCompressedWithin8Bits(sent);
      // Python's echoes (its own window is 15 bits) came compressed.
      expect(received).toEqual(payloads.map(() => 4));
    });

    describe('a Python server chooses the window of our client (default offer)', () => {
      const messages = probeMessages();
      it.each(WINDOW_CASES)(
        'client_max_window_bits=$bits, client_no_context_takeover: $noContextTakeover',
        async ({ bits, noContextTakeover }) => {
          const py = startPython('deflate_server.py', [
            JSON.stringify({ client_max_window_bits: bits, client_no_context_takeover: noContextTakeover }),
          ]);
          const port = (await py.next('listening')).port as number;
          const proxy = await FrameTapProxy.start(port);
          cleanups.push(() => proxy.close());
          const ws = await connect(`ws://127.0.0.1:${proxy.port}/`, {
            pingInterval: 0,
            perMessageDeflate: { threshold: 0 },
          });
          cleanups.push(() => ws.terminate());
          const info = await py.next('connection');
          expect(info.offer).toBe('permessage-deflate; client_max_window_bits');
          const expected = `permessage-deflate; ${noContextTakeover ? 'client_no_context_takeover; ' : ''}client_max_window_bits=${bits}`;
          expect(ws.extensions).toBe(expected);
          expect(info.header).toBe(expected);
          const d = info.deflate as PyDeflate;
          expect(d.remote_max_window_bits).toBe(bits);
          expect(d.remote_no_context_takeover).toBe(noContextTakeover);
          // Python inflates with exactly that window: every echo coming back is a first check.
          await echoAll(ws, messages);
          expect((await ws.close(1000, 'done')).code).toBe(1000);
          const done = await py.next('done');
          expect(done.count).toBe(messages.length);
          expect(proxy.parseError).toBeUndefined();
          checkClientOutput(proxy.dataFrames(), messages, bits, noContextTakeover);
        },
      );
    });
  },
);
