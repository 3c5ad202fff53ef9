/**
 * The fuzzing peer: writes exact frame bytes (any chunking, any timing, invalid on
 * purpose when a case wants it) and records everything our implementation sends back:
 * each frame, the messages and pongs, its Close, and how the TCP connection ended.
 */
import type { Duplex } from 'node:stream';
import type { Frame } from '@wskit/core';
import { encodeFrame, FrameParser } from '@wskit/core/protocol';
import type { PeerDeflate } from './pmd.js';
import type { Direction, Expectation, ExpectedItem, ObservedFrame } from './types.js';

export const OP = { CONT: 0x0, TEXT: 0x1, BINARY: 0x2, CLOSE: 0x8, PING: 0x9, PONG: 0xa } as const;

export interface OutFrame {
  opcode: number;
  payload?: Buffer | string;
  fin?: boolean;
  rsv?: number;
  /** Default: masked when the peer is the client (RFC 6455 §5.3), as it must be. */
  mask?: boolean;
  /** A fixed masking key (4 bytes). */
  maskKey?: Buffer;
}

export interface WriteOptions {
  /** Write the bytes in pieces of this size (each its own write). */
  chop?: number;
  /** Pause between the pieces (ms); without it the peer yields one event-loop turn. */
  delayMs?: number;
}

export interface MessageOptions extends WriteOptions {
  /** Split the payload (compressed payload, with `compress`) into frames of this size. */
  fragmentSize?: number | number[];
  /**
   * Compress with the negotiated permessage-deflate (RSV1 on the first frame only). Without
   * an agreed extension, or with an 8-bit window zlib cannot produce, the message goes plain.
   */
  compress?: boolean;
  /** With compress: end the message with a BFINAL block. */
  finalBlock?: boolean;
  /** Write each frame separately, pausing this long (ms) between frames. */
  frameDelayMs?: number;
}

export interface ReceivedItem {
  type: 'text' | 'binary' | 'pong' | 'ping';
  data: Buffer;
  /** Was the message compressed (RSV1)? */
  compressed?: boolean;
  at: number;
}

const MAX_RECORDED_FRAMES = 400;
const TAIL_WAIT_MS = 25;
/** At most this many event-loop turns per chopped write. */
const MAX_YIELDS = 2048;

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

export function toBuffer(data: Buffer | string | undefined): Buffer {
  if (data === undefined) return Buffer.alloc(0);
  return typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
}

/** Bytes of one frame as the peer would send it. */
export function frameBytes(f: OutFrame, masked: boolean): Buffer {
  const parts = encodeFrame(
    {
      fin: f.fin ?? true,
      rsv: f.rsv ?? 0,
      opcode: f.opcode,
      masked: f.mask ?? masked,
      payload: toBuffer(f.payload),
    },
    f.maskKey,
  );
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}

/** A Close payload: code (null: none) and reason (string or raw bytes). */
export function closePayload(code: number | null | undefined, reason?: string | Buffer): Buffer {
  if (code === null || code === undefined) return Buffer.alloc(0);
  const r = toBuffer(reason);
  const out = Buffer.alloc(2 + r.length);
  out.writeUInt16BE(code, 0);
  r.copy(out, 2);
  return out;
}

/** RFC 6455 §7.4: may this code appear on the wire? (The harness's own copy of the rule.) */
function wireCode(code: number): boolean {
  return (
    (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) ||
    (code >= 3000 && code <= 4999)
  );
}

export interface PeerInit {
  /** The raw byte stream: a TCP socket (HTTP/1.1), or an extended CONNECT stream (HTTP/2). */
  socket: Duplex;
  direction: Direction;
  /** Bytes that came with the handshake, after its head. */
  head: Buffer;
  deflate?: PeerDeflate;
  negotiated?: string;
  silent?: boolean;
  serverKeepsTcpOpen?: boolean;
  h2?: boolean;
}

export class Peer {
  readonly direction: Direction;
  /** The peer's own role: the client when it fuzzes our server. */
  readonly role: 'client' | 'server';
  readonly masked: boolean;
  readonly socket: Duplex;
  /** Over HTTP/2, "TCP" is the stream: END_STREAM is the FIN, RST_STREAM the reset. */
  readonly h2: boolean;
  readonly deflate: PeerDeflate | undefined;
  readonly negotiated: string;
  readonly start = performance.now();

  readonly frames: ObservedFrame[] = [];
  framesTotal = 0;
  readonly items: ReceivedItem[] = [];
  /** Protocol violations by our implementation, as the peer saw them. */
  readonly violations: string[] = [];
  readonly notes: string[] = [];
  readonly marks = new Map<string, number>();
  /** Our implementation's Close frame. */
  implClose: { code: number | null; reason: string; at: number } | undefined;
  peerCloseAt: number | undefined;
  /** When our implementation's FIN (or a reset) arrived. */
  implEndAt: number | undefined;
  peerEndAt: number | undefined;
  /**
   * Which side ended TCP first, by the order of the events (times are rounded to 0.1 ms,
   * and over loopback a FIN can be answered within that).
   */
  firstEnd: 'impl' | 'peer' | undefined;
  closedAt: number | undefined;
  socketError: string | undefined;
  /** The peer gave up waiting and destroyed the socket. */
  gaveUp = false;

  private readonly parser: FrameParser;
  private readonly silent: boolean;
  private readonly serverKeepsTcpOpen: boolean;
  private assembling: { opcode: number; compressed: boolean; parts: Buffer[] } | null = null;
  private waiters = new Set<() => void>();

  constructor(init: PeerInit) {
    this.direction = init.direction;
    this.role = init.direction === 'server' ? 'client' : 'server';
    this.masked = this.role === 'client';
    this.socket = init.socket;
    this.h2 = init.h2 ?? false;
    this.deflate = init.deflate;
    this.negotiated = init.negotiated ?? '';
    this.silent = init.silent ?? false;
    this.serverKeepsTcpOpen = init.serverKeepsTcpOpen ?? false;
    // The peer parses what our side sends: frames from a server are unmasked, from a client masked.
    this.parser = new FrameParser({
      side: this.role,
      maxFrameSize: Number.MAX_SAFE_INTEGER,
      allowedRsv: 7,
    });
    const s = this.socket;
    s.on('data', (chunk: Buffer) => this.onData(chunk));
    s.on('end', () => {
      this.firstEnd ??= 'impl';
      this.implEndAt ??= this.now();
      this.notify();
    });
    s.on('error', (err: NodeJS.ErrnoException) => {
      this.socketError ??= err.code ?? err.message;
      this.firstEnd ??= 'impl';
      this.implEndAt ??= this.now();
      this.notify();
    });
    s.on('close', () => {
      // RFC 8441 §5: over HTTP/2 our side may end its stream with RST_STREAM(NO_ERROR)
      // instead of END_STREAM (no 'end' then, and no error): that ends its side too.
      if (this.h2 && this.implEndAt === undefined && !this.gaveUp) {
        this.firstEnd ??= 'impl';
        this.implEndAt = this.now();
      }
      this.closedAt = this.now();
      this.notify();
    });
    if (init.head.length > 0) this.onData(init.head);
    s.resume();
  }

  /** ms since the connection opened. */
  now(): number {
    return Math.round((performance.now() - this.start) * 10) / 10;
  }

  /** Our side has closed or is closing: its Close arrived, or TCP ended. */
  get implGone(): boolean {
    return this.implClose !== undefined || this.implEndAt !== undefined || this.closedAt !== undefined;
  }

  get writable(): boolean {
    return !this.socket.destroyed && !this.socket.writableEnded;
  }

  // ---- sending ---------------------------------------------------------------------------

  mark(name: string): void {
    this.marks.set(name, this.now());
  }

  sleep(ms: number): Promise<void> {
    return sleep(ms);
  }

  /** Bytes of a frame, masked as this peer must (unless the frame says otherwise). */
  frame(f: OutFrame): Buffer {
    return frameBytes(f, this.masked);
  }

  /** Writes raw bytes, whole or chopped. Stops quietly once the socket is gone. */
  async write(bytes: Buffer | Buffer[], opts: WriteOptions = {}): Promise<void> {
    const data = Array.isArray(bytes) ? Buffer.concat(bytes) : bytes;
    if (!opts.chop || opts.chop >= data.length) {
      await this.writeRaw(data);
      return;
    }
    // Without a delay the peer yields an event-loop turn between pieces, so that our side
    // (in this same process) reads them one by one; long runs yield every few pieces.
    const pieces = Math.ceil(data.length / opts.chop);
    const yieldEvery = Math.ceil(pieces / MAX_YIELDS);
    for (let i = 0, k = 1; i < data.length; i += opts.chop, k++) {
      if (!this.writable) return;
      await this.writeRaw(data.subarray(i, i + opts.chop));
      if (opts.delayMs) await sleep(opts.delayMs);
      else if (k % yieldEvery === 0) await nextTurn();
    }
  }

  /** One socket write; waits for 'drain' when the socket's buffer is full. */
  private writeRaw(data: Buffer): Promise<void> {
    if (!this.writable || data.length === 0) return Promise.resolve();
    if (this.socket.write(data)) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.socket.off('drain', done);
        this.socket.off('close', done);
        resolve();
      };
      this.socket.on('drain', done);
      this.socket.on('close', done);
    });
  }

  async send(f: OutFrame, opts: WriteOptions = {}): Promise<void> {
    await this.write(this.frame(f), opts);
  }

  /** Frames of a whole message (fragmented and/or compressed as asked). */
  messageFrames(type: 'text' | 'binary', payload: Buffer | string, opts: MessageOptions = {}): Buffer[] {
    let data = toBuffer(payload);
    let rsv = 0;
    // The peer compresses only when an extension was agreed and its window is one zlib can
    // honour (9-15 bits); otherwise the message goes uncompressed, which is always allowed.
    if (opts.compress && this.deflate !== undefined && this.deflate.config.deflateBits >= 9) {
      data = this.deflate.compress(data, { final: opts.finalBlock ?? false });
      rsv = 4;
    }
    const sizes = opts.fragmentSize;
    const pieces: Buffer[] = [];
    if (sizes === undefined || data.length === 0) {
      pieces.push(data);
    } else {
      const list = Array.isArray(sizes) ? sizes : [sizes];
      let k = 0;
      for (let i = 0; i < data.length; ) {
        const n = Math.max(1, list[k++ % list.length]!);
        pieces.push(data.subarray(i, i + n));
        i += n;
      }
    }
    return pieces.map((p, i) =>
      this.frame({
        opcode: i === 0 ? (type === 'text' ? OP.TEXT : OP.BINARY) : OP.CONT,
        fin: i === pieces.length - 1,
        rsv: i === 0 ? rsv : 0,
        payload: p,
      }),
    );
  }

  async sendMessage(
    type: 'text' | 'binary',
    payload: Buffer | string,
    opts: MessageOptions = {},
  ): Promise<void> {
    const frames = this.messageFrames(type, payload, opts);
    if (opts.frameDelayMs === undefined) {
      await this.write(frames, opts);
      return;
    }
    for (const [i, f] of frames.entries()) {
      if (i > 0) await sleep(opts.frameDelayMs);
      await this.write(f, opts);
    }
  }

  async sendText(text: string | Buffer, opts: MessageOptions = {}): Promise<void> {
    await this.sendMessage('text', text, opts);
  }

  async sendBinary(data: Buffer, opts: MessageOptions = {}): Promise<void> {
    await this.sendMessage('binary', data, opts);
  }

  async ping(payload?: Buffer | string, opts: WriteOptions = {}): Promise<void> {
    await this.send({ opcode: OP.PING, payload: payload ?? Buffer.alloc(0) }, opts);
  }

  async pong(payload?: Buffer | string, opts: WriteOptions = {}): Promise<void> {
    await this.send({ opcode: OP.PONG, payload: payload ?? Buffer.alloc(0) }, opts);
  }

  /** Sends a Close (code null: empty payload). Records when the peer's Close went out. */
  async close(code: number | null = 1000, reason?: string | Buffer, opts: WriteOptions = {}): Promise<void> {
    this.peerCloseAt ??= this.now();
    await this.send({ opcode: OP.CLOSE, payload: closePayload(code, reason) }, opts);
  }

  /** Bytes of a Close frame (to combine with other frames in one write). */
  closeFrame(code: number | null = 1000, reason?: string | Buffer): Buffer {
    return this.frame({ opcode: OP.CLOSE, payload: closePayload(code, reason) });
  }

  /** The caller wrote a Close frame by hand (e.g. inside a combined write). */
  notePeerClose(): void {
    this.peerCloseAt ??= this.now();
  }

  // ---- waiting ---------------------------------------------------------------------------

  /** Resolves true once `pred` holds, false after `timeoutMs`. Re-checked on every event. */
  waitFor(pred: () => boolean, timeoutMs: number): Promise<boolean> {
    if (pred()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const check = () => {
        if (!pred()) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        resolve(pred());
      }, timeoutMs);
      this.waiters.add(check);
    });
  }

  /** Waits until `n` messages/pongs came back (or our side closed). */
  waitItems(n: number, timeoutMs = 5000): Promise<boolean> {
    return this.waitFor(
      () => this.items.filter((i) => i.type !== 'ping').length >= n || this.implGone,
      timeoutMs,
    );
  }

  /** Waits until our side fails the connection (its Close or a TCP end). */
  waitFailure(timeoutMs = 3000): Promise<boolean> {
    return this.waitFor(() => this.implGone, timeoutMs);
  }

  private notify(): void {
    for (const w of [...this.waiters]) w();
  }

  // ---- the end of a case -------------------------------------------------------------------

  /**
   * Ends the case the way the Autobahn fuzzer does: wait for what is expected, close
   * normally if nobody closed yet, then end TCP in the right order for each direction.
   */
  async finish(expect: Expectation, timeoutMs: number): Promise<void> {
    const want = (expect.echo ?? []).length;
    if (expect.fail) await this.waitFailure(timeoutMs);
    else if (want > 0) await this.waitItems(want, timeoutMs);

    if (this.silent) {
      // The peer answers nothing: our side's timers must end the connection.
      if (!expect.fail && this.peerCloseAt === undefined && !this.implGone) await this.close(1000);
      const ended = await this.waitFor(
        () => this.implEndAt !== undefined || this.closedAt !== undefined,
        timeoutMs,
      );
      if (!ended) this.giveUp();
      return;
    }
    if (this.peerCloseAt === undefined && this.implClose === undefined && this.writable && !this.implGone) {
      await this.close(1000);
    }
    await this.waitFor(() => this.implClose !== undefined || this.implEndAt !== undefined, timeoutMs);

    if (this.direction === 'server') {
      // RFC 6455 §7.1.1: the server closes TCP first; the client then closes its side.
      const ended = await this.waitFor(() => this.implEndAt !== undefined, timeoutMs);
      if (!ended) {
        this.giveUp();
        return;
      }
      this.endTcp();
    } else {
      if (!this.serverKeepsTcpOpen) {
        // Give a client that wrongly closes first the chance to show it, then close as the server.
        await this.waitFor(() => this.implEndAt !== undefined, TAIL_WAIT_MS);
        this.endTcp();
      } else {
        const ended = await this.waitFor(() => this.implEndAt !== undefined, timeoutMs);
        if (!ended) {
          this.giveUp();
          return;
        }
        this.endTcp();
      }
    }
    const closed = await this.waitFor(() => this.closedAt !== undefined, timeoutMs);
    if (!closed) this.giveUp();
  }

  /** Ends the peer's side of TCP (FIN). */
  endTcp(): void {
    if (!this.socket.writableEnded && !this.socket.destroyed) {
      this.firstEnd ??= 'peer';
      this.peerEndAt = this.now();
      this.socket.end();
    }
  }

  /** Destroys the socket after a timeout. */
  giveUp(): void {
    if (this.socket.destroyed) return;
    this.gaveUp = true;
    this.firstEnd ??= 'peer';
    this.peerEndAt ??= this.now();
    this.socket.destroy();
  }

  // ---- receiving -------------------------------------------------------------------------

  private onData(chunk: Buffer): void {
    this.parser.push(chunk);
    for (;;) {
      let frame: Frame | null;
      try {
        frame = this.parser.next();
      } catch (err) {
        this.violations.push(`invalid frame from our side: ${(err as Error).message}`);
        this.notify();
        return;
      }
      if (frame === null) break;
      this.onFrame(frame);
    }
    this.notify();
  }

  private onFrame(f: Frame): void {
    const at = this.now();
    this.framesTotal++;
    if (this.frames.length < MAX_RECORDED_FRAMES) {
      this.frames.push({
        opcode: f.opcode,
        fin: f.fin,
        rsv: f.rsv,
        length: f.payload.length,
        head: f.payload.subarray(0, 16).toString('hex'),
        at,
      });
    }
    if (this.implClose !== undefined) {
      this.violations.push(`frame (opcode ${f.opcode}) sent after our side's Close`);
      return;
    }
    switch (f.opcode) {
      case OP.PING:
        this.items.push({ type: 'ping', data: Buffer.from(f.payload), at });
        return;
      case OP.PONG:
        this.items.push({ type: 'pong', data: Buffer.from(f.payload), at });
        return;
      case OP.CLOSE:
        this.onClose(f.payload, at);
        return;
      default:
        this.onData0(f, at);
    }
  }

  private onClose(payload: Buffer, at: number): void {
    let code: number | null = null;
    let reason = '';
    if (payload.length === 1) this.violations.push('our side sent a Close with a 1-byte payload');
    if (payload.length >= 2) {
      code = payload.readUInt16BE(0);
      if (!wireCode(code)) this.violations.push(`our side sent close code ${code}, not allowed on the wire`);
      const r = payload.subarray(2);
      if (!isUtf8(r)) this.violations.push('our side sent a close reason that is not UTF-8');
      reason = r.toString('utf8');
    }
    this.implClose = { code, reason, at };
    if (this.peerCloseAt === undefined && !this.silent && this.writable) {
      // Answer as an endpoint must (RFC 6455 §5.5.1), echoing the code.
      this.close(code !== null && wireCode(code) ? code : null).catch(() => {});
    }
  }

  private onData0(f: Frame, at: number): void {
    if (f.opcode !== OP.CONT) {
      if (this.assembling !== null) this.violations.push('new data frame inside a fragmented message');
      if ((f.rsv & 3) !== 0) this.violations.push(`RSV2/RSV3 set by our side (rsv=${f.rsv})`);
      if ((f.rsv & 4) !== 0 && this.deflate === undefined)
        this.violations.push('RSV1 set by our side without permessage-deflate');
      this.assembling = { opcode: f.opcode, compressed: (f.rsv & 4) !== 0, parts: [] };
    } else {
      if (this.assembling === null) {
        this.violations.push('continuation frame without a message from our side');
        return;
      }
      if (f.rsv !== 0) this.violations.push(`RSV bits on a continuation frame (rsv=${f.rsv})`);
    }
    this.assembling.parts.push(Buffer.from(f.payload));
    if (!f.fin) return;
    const msg = this.assembling;
    this.assembling = null;
    let data: Buffer = Buffer.concat(msg.parts);
    if (msg.compressed && this.deflate !== undefined) {
      try {
        data = this.deflate.decompress(data);
      } catch (err) {
        this.violations.push(`cannot inflate a message from our side: ${(err as Error).message}`);
        return;
      }
    }
    const type = msg.opcode === OP.TEXT ? 'text' : 'binary';
    if (type === 'text' && !isUtf8(data))
      this.violations.push('our side sent a text message that is not UTF-8');
    this.items.push({ type, data, compressed: msg.compressed, at });
  }
}

function isUtf8(b: Buffer): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(b);
    return true;
  } catch {
    return false;
  }
}

/** Helpers to write expectations. */
export const text = (s: string | Buffer): ExpectedItem => ({ type: 'text', data: toBuffer(s) });
export const binary = (b: Buffer): ExpectedItem => ({ type: 'binary', data: b });
export const pong = (p?: string | Buffer): ExpectedItem => ({ type: 'pong', data: toBuffer(p) });
