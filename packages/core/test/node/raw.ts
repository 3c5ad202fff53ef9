/**
 * Raw-socket helpers for the connection tests (not a test file). They do the opening
 * handshake by hand over node:net / node:http and then speak frames byte by byte, so a
 * test can send exactly the bytes it wants and see exactly the frames the peer sends.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { type AddressInfo, connect as netConnect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import {
  connect,
  type Frame,
  type Handler,
  type Message,
  type ServerOptions,
  type WebSocket,
} from '@wskit/core';
import {
  type Resources,
  realTimers,
  type StartedWss,
  sleep,
  startWss,
  waitFor,
  withTimeout as within,
} from '../../../../test/support/clients.js';
import { FrameParser } from '../../src/protocol/frame-parser.js';
import { encodeFrame } from '../../src/protocol/frame-writer.js';
import { acceptFor } from './util.js';

// The waiting utilities of test/support, under the names the raw-peer suites use.
export { sleep, waitFor, within };

/** A frame as a test writes it: opcode and payload required, the rest defaulted. */
export interface FrameSpec {
  opcode: number;
  payload?: Buffer | string;
  fin?: boolean;
  rsv?: number;
  masked?: boolean;
}

/** Encodes one frame to bytes; `masked` defaults to `defaultMasked`. */
export function frameBytes(spec: FrameSpec, defaultMasked: boolean): Buffer {
  const payload =
    spec.payload === undefined
      ? Buffer.alloc(0)
      : typeof spec.payload === 'string'
        ? Buffer.from(spec.payload)
        : spec.payload;
  const frame: Frame = {
    fin: spec.fin ?? true,
    rsv: spec.rsv ?? 0,
    opcode: spec.opcode,
    masked: spec.masked ?? defaultMasked,
    payload,
  };
  return Buffer.concat(encodeFrame(frame));
}

/** A Close payload: code (2 bytes, big-endian) followed by the reason bytes. */
export function closePayload(code: number, reason: Buffer | string = ''): Buffer {
  const r = typeof reason === 'string' ? Buffer.from(reason) : reason;
  const out = Buffer.alloc(2 + r.length);
  out.writeUInt16BE(code, 0);
  r.copy(out, 2);
  return out;
}

/** The status code of a received Close frame (1005 when it had none). */
export function closeCode(frame: Frame): number {
  return frame.payload.length >= 2 ? frame.payload.readUInt16BE(0) : 1005;
}

/**
 * Reads frames off a socket with the FrameParser of `side` ('client' reads what a server
 * sends: unmasked frames; 'server' reads masked client frames). Frames are kept in
 * arrival order; `next()` hands them out one by one.
 */
export class FrameReader {
  readonly frames: Frame[] = [];
  /** Number of 'data' events seen (each a read from the socket). */
  reads = 0;
  bytes = 0;
  /** Set when the peer sent bytes the parser rejects. */
  parseError: Error | undefined;
  /** Resolves when the peer ended its side (FIN) or the socket closed. */
  readonly ended: Promise<void>;
  /** Resolves when the socket is fully closed. */
  readonly closed: Promise<void>;
  isEnded = false;
  isClosed = false;
  private readonly parser: FrameParser;
  private cursor = 0;
  private wake: (() => void) | undefined;

  constructor(
    readonly socket: Duplex,
    side: 'client' | 'server',
    head?: Buffer,
  ) {
    this.parser = new FrameParser({ side, maxFrameSize: 1 << 30 });
    let endedResolve!: () => void;
    this.ended = new Promise((resolve) => {
      endedResolve = resolve;
    });
    this.closed = new Promise((resolve) => {
      socket.once('close', () => {
        this.isClosed = true;
        this.isEnded = true;
        endedResolve();
        this.wake?.();
        resolve();
      });
    });
    socket.once('end', () => {
      this.isEnded = true;
      endedResolve();
      this.wake?.();
    });
    socket.on('error', () => {
      // A reset by the peer is an outcome the tests look at, not a crash.
    });
    if (head !== undefined && head.length > 0) this.push(head);
    socket.on('data', (chunk: Buffer) => {
      this.reads++;
      this.push(chunk);
    });
  }

  private push(chunk: Buffer): void {
    this.bytes += chunk.length;
    if (this.parseError) return;
    this.parser.push(chunk);
    try {
      for (let f = this.parser.next(); f !== null; f = this.parser.next()) {
        // Copy: the parser may hand out views of socket buffers.
        this.frames.push({ ...f, payload: Buffer.from(f.payload) });
      }
    } catch (err) {
      this.parseError = err as Error;
    }
    this.wake?.();
  }

  /** The next frame not yet returned; rejects on timeout or when the socket ends first. */
  async next(timeout = 5000): Promise<Frame> {
    const deadline = realTimers.now() + timeout;
    for (;;) {
      if (this.parseError) throw this.parseError;
      const frame = this.frames[this.cursor];
      if (frame !== undefined) {
        this.cursor++;
        return frame;
      }
      if (this.isEnded) throw new Error('The socket ended before another frame arrived');
      const left = deadline - realTimers.now();
      if (left <= 0) throw new Error(`No frame within ${timeout} ms`);
      await new Promise<void>((resolve) => {
        const t = realTimers.setTimeout(resolve, left);
        this.wake = () => {
          realTimers.clearTimeout(t);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }

  /** Skips frames until one with `opcode` arrives (e.g. the Close after some pings). */
  async nextOf(opcode: number, timeout = 5000): Promise<Frame> {
    const deadline = realTimers.now() + timeout;
    for (;;) {
      const frame = await this.next(Math.max(1, deadline - realTimers.now()));
      if (frame.opcode === opcode) return frame;
    }
  }

  /** Frames not yet returned by next(). */
  pending(): Frame[] {
    return this.frames.slice(this.cursor);
  }
}

export interface RawClientOptions {
  path?: string;
  host?: string;
  headers?: Record<string, string>;
}

/**
 * A WebSocket client made of a bare TCP socket: it writes the upgrade request itself,
 * checks the 101 answer and then sends whatever frames the test asks for (masked by
 * default, as a client must).
 */
export class RawClient {
  readonly reader: FrameReader;
  readonly responseHead: string;

  private constructor(
    readonly socket: Socket,
    responseHead: string,
    rest: Buffer,
  ) {
    this.responseHead = responseHead;
    this.reader = new FrameReader(socket, 'client', rest);
  }

  static async connect(port: number, options: RawClientOptions = {}): Promise<RawClient> {
    const host = options.host ?? '127.0.0.1';
    const socket = netConnect({ port, host });
    socket.setNoDelay(true);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const key = randomBytes(16).toString('base64');
    const extra = Object.entries(options.headers ?? {})
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('');
    socket.write(
      `GET ${options.path ?? '/'} HTTP/1.1\r\n` +
        `Host: ${host}:${port}\r\n` +
        'Upgrade: websocket\r\n' +
        'Connection: Upgrade\r\n' +
        `Sec-WebSocket-Key: ${key}\r\n` +
        'Sec-WebSocket-Version: 13\r\n' +
        `${extra}\r\n`,
    );
    const { head, rest } = await readHead(socket);
    if (!/^HTTP\/1\.1 101 /.test(head)) {
      socket.destroy();
      throw new Error(`Expected 101, got: ${head.split('\r\n')[0]}`);
    }
    const accept = /\r\nsec-websocket-accept:\s*(\S+)/i.exec(head)?.[1];
    if (accept !== acceptFor(key)) {
      socket.destroy();
      throw new Error(`Bad Sec-WebSocket-Accept in: ${head}`);
    }
    return new RawClient(socket, head, rest);
  }

  /** Writes one frame (masked unless `masked: false`). */
  send(spec: FrameSpec): void {
    this.socket.write(frameBytes(spec, true));
  }

  /** Writes several frames in one write() call. */
  sendAll(specs: FrameSpec[]): void {
    this.socket.write(Buffer.concat(specs.map((s) => frameBytes(s, true))));
  }

  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  next(timeout?: number): Promise<Frame> {
    return this.reader.next(timeout);
  }

  nextOf(opcode: number, timeout?: number): Promise<Frame> {
    return this.reader.nextOf(opcode, timeout);
  }

  get ended(): Promise<void> {
    return this.reader.ended;
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** Reads from `socket` up to the end of an HTTP head; returns the head and what followed it. */
export function readHead(socket: Socket, timeout = 5000): Promise<{ head: string; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const timer = realTimers.setTimeout(() => finish(new Error('No HTTP head within the timeout')), timeout);
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      // Stop reading until the FrameReader takes over, so no frame byte is lost.
      socket.pause();
      finish(undefined, { head: buf.subarray(0, end + 4).toString('latin1'), rest: buf.subarray(end + 4) });
    };
    const onEnd = () => finish(new Error(`The socket ended during the handshake: ${buf.toString('latin1')}`));
    const onError = (err: Error) => finish(err);
    function finish(err: Error | undefined, value?: { head: string; rest: Buffer }) {
      realTimers.clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('error', onError);
      if (err) reject(err);
      else {
        resolve(value!);
        // The reader attaches its 'data' listener synchronously after this resolves.
        queueMicrotask(() => socket.resume());
      }
    }
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('error', onError);
  });
}

/** One connection accepted by a RawServer: the socket after the 101, and a reader of masked frames. */
export interface RawPeer {
  socket: Duplex;
  reader: FrameReader;
  req: IncomingMessage;
  /** Writes one frame (unmasked unless `masked: true`, as a server sends). */
  send(spec: FrameSpec): void;
}

/**
 * A fake WebSocket server on node:http: it answers every upgrade with a correct 101 and
 * then lets the test write arbitrary frames to the client.
 */
export class RawServer {
  readonly server: Server;
  readonly peers: RawPeer[] = [];
  private waiters: Array<(peer: RawPeer) => void> = [];

  constructor() {
    this.server = createServer((_req, res) => {
      res.writeHead(400).end();
    });
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      const key = String(req.headers['sec-websocket-key'] ?? '');
      socket.write(
        'HTTP/1.1 101 Switching Protocols\r\n' +
          'Upgrade: websocket\r\n' +
          'Connection: Upgrade\r\n' +
          `Sec-WebSocket-Accept: ${acceptFor(key)}\r\n\r\n`,
      );
      const reader = new FrameReader(socket, 'server', head);
      const peer: RawPeer = {
        socket,
        reader,
        req,
        send: (spec) => socket.write(frameBytes(spec, false)),
      };
      this.peers.push(peer);
      const waiter = this.waiters.shift();
      waiter?.(peer);
    });
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return (this.server.address() as AddressInfo).port;
  }

  /** The next peer that completes the handshake (or one that already did and wasn't taken). */
  nextPeer(timeout = 5000): Promise<RawPeer> {
    const taken = this.taken;
    if (taken < this.peers.length) {
      this.taken++;
      return Promise.resolve(this.peers[taken]!);
    }
    return within(
      new Promise<RawPeer>((resolve) =>
        this.waiters.push((peer) => {
          this.taken++;
          resolve(peer);
        }),
      ),
      timeout,
      'a raw server peer',
    );
  }

  private taken = 0;

  async close(): Promise<void> {
    for (const p of this.peers) p.socket.destroy();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}

/** A WebSocketServer on 127.0.0.1, port 0, with `handler` on every path; closed by `res`. */
export function startServer(
  res: Resources,
  handler: Handler,
  options: ServerOptions = {},
): Promise<StartedWss> {
  return startWss(handler, options, res);
}

/** Echoes every message back with its type. */
export function echo(ws: WebSocket): void {
  ws.on('message', (msg: Message) => {
    ws.send(msg.data, { binary: msg.type === 'binary' }).catch(() => {});
  });
}

export const echoHandler: Handler = (ws) => echo(ws);

/** A raw client on `port`, destroyed by `res`. */
export async function rawClient(
  res: Resources,
  port: number,
  options?: RawClientOptions,
): Promise<RawClient> {
  const c = await RawClient.connect(port, options);
  res.add(() => c.destroy());
  return c;
}

/** Connects with our client, checks that an echo round trip works, and closes. */
export async function assertEchoWorks(url: string): Promise<void> {
  const ws = await connect(url, { pingInterval: 0 });
  try {
    await ws.send('still alive');
    const msg = await within(ws.receive(), 5000, 'the echo');
    if (msg === null || msg.text() !== 'still alive') {
      throw new Error(`Echo failed: got ${msg === null ? 'null' : JSON.stringify(msg.text())}`);
    }
  } finally {
    await ws.close().catch(() => ws.terminate());
  }
}
