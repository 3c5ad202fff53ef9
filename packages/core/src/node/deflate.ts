/**
 * The zlib half of permessage-deflate (RFC 7692 §7.2): one raw DEFLATE compressor and one
 * decompressor per connection, created on first use and released on close. The
 * negotiation itself (which parameters, which window sizes) is in
 * ../protocol/permessage-deflate.ts.
 */
import {
  constants,
  createDeflateRaw,
  createInflateRaw,
  type DeflateRaw,
  type InflateRaw,
  type ZlibOptions,
} from 'node:zlib';
import { CloseCode } from '../protocol/close-codes.js';
import { WebSocketError } from '../protocol/errors.js';
import {
  type DeflateParams,
  type PerMessageDeflateOptions,
  resolveThreshold,
  type SideParams,
  sideParams,
} from '../protocol/permessage-deflate.js';
import type { MessageCompressor } from './compressor.js';
import { hold, unhold } from './idle-compressors.js';

/** RFC 7692 §7.2.1: the empty stored block that ends every sync flush. */
const TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);

/** An empty stored block (RFC 1951 §3.2.4): what a sync flush without input writes. */
const EMPTY_BLOCK = Buffer.from([0x00, 0x00, 0x00, 0xff, 0xff]);
/** The same at the end of a message, its 00 00 ff ff removed (RFC 7692 §7.2.1). */
const EMPTY_MESSAGE = Buffer.from([0x00]);

function endsWithTail(buf: Buffer): boolean {
  const n = buf.length;
  return n >= 4 && buf[n - 4] === 0x00 && buf[n - 3] === 0x00 && buf[n - 2] === 0xff && buf[n - 1] === 0xff;
}

/**
 * The compression level when none is given. zlib's own default (6) searches hash chains of
 * 128; level 5 stops at 32: on JSON-like text it spends about half the CPU time of level 6
 * for about 5% more output (bench/deflate.mjs).
 */
export const DEFAULT_LEVEL = 5;

/** Inflate input joined into one zlib write up to this size (bytes). */
const MAX_JOIN = 256 * 1024;

/** Default bound of zlibLimiter: concurrent zlib operations in the process. */
export const DEFAULT_ZLIB_CONCURRENCY = 10;

function checkConcurrency(value: number): number {
  if (!Number.isInteger(value) || value < 1) {
    throw new RangeError(`ZlibLimiter concurrency must be an integer >= 1, got ${String(value)}`);
  }
  return value;
}

/**
 * A FIFO bound on concurrent asynchronous jobs. zlib work runs in libuv's thread pool
 * (4 threads by default): many connections inflating at once would queue thousands of
 * jobs there, each holding its buffers, and fragment memory. All connections of the
 * process share `zlibLimiter`; a job beyond the bound waits for a running one to end.
 *
 * A freed slot is handed straight to the next waiter, so a job arriving in between can
 * never overtake the queue or push `active` past `concurrency`.
 */
export class ZlibLimiter {
  private running = 0;
  private highWater = 0;
  private max: number;
  private readonly queue: Array<() => void> = [];

  constructor(concurrency: number = DEFAULT_ZLIB_CONCURRENCY) {
    this.max = checkConcurrency(concurrency);
  }

  /** The bound. Raising it starts waiting jobs at once; lowering it lets running ones finish. */
  get concurrency(): number {
    return this.max;
  }

  set concurrency(value: number) {
    this.max = checkConcurrency(value);
    this.pump();
  }

  /** Runs `job` when a slot is free; settles as the job does. */
  run<T>(job: () => Promise<T>): Promise<T> {
    if (this.running < this.max && this.queue.length === 0) {
      this.take();
      return this.execute(job);
    }
    return new Promise<void>((resolve) => this.queue.push(resolve)).then(() => this.execute(job));
  }

  /** Jobs running now. */
  get active(): number {
    return this.running;
  }

  /** Jobs waiting for a slot. */
  get waiting(): number {
    return this.queue.length;
  }

  /** The largest `active` seen since creation or the last resetPeak(). */
  get peak(): number {
    return this.highWater;
  }

  resetPeak(): void {
    this.highWater = this.running;
  }

  private take(): void {
    this.running++;
    if (this.running > this.highWater) this.highWater = this.running;
  }

  private async execute<T>(job: () => Promise<T>): Promise<T> {
    try {
      return await job();
    } finally {
      this.running--;
      this.pump();
    }
  }

  private pump(): void {
    while (this.running < this.max && this.queue.length > 0) {
      // The slot is counted now, before the waiter's continuation runs.
      this.take();
      this.queue.shift()!();
    }
  }
}

/** The process-wide bound on concurrent zlib operations of all connections. */
export const zlibLimiter = new ZlibLimiter(DEFAULT_ZLIB_CONCURRENCY);

/** Live zlib contexts (compressors + decompressors) in this process, for leak checks. */
let liveContexts = 0;
export const zlibContexts = (): number => liveContexts;

/** Why an operation ended early because the compressor was closed. */
export const COMPRESSOR_CLOSED = 'The compressor was closed (the connection is closed)';

const closedError = () => new WebSocketError(CloseCode.NO_STATUS_RCVD, COMPRESSOR_CLOSED);

/** Where a zlib stream's output and errors go during one operation. */
interface Sink {
  data(chunk: Buffer): void;
  fail(err: Error): void;
}

/** One connection's permessage-deflate: the zlib side of RFC 7692 §7.2. */
export class PerMessageDeflate implements MessageCompressor {
  readonly threshold: number;
  /** How this side's compressor and decompressor are configured. */
  readonly params: Readonly<SideParams>;
  private readonly zlibOptions: ZlibOptions;
  private inflater: InflateRaw | undefined;
  private deflater: DeflateRaw | undefined;
  private inflateSink: Sink | undefined;
  private deflateSink: Sink | undefined;
  /** The peer ended its DEFLATE stream with a BFINAL block: start a new one next time. */
  private inflaterEnded = false;
  private closed = false;
  /** Used since the last idle sweep. */
  private used = false;
  /** Between the fragments of a message (its last compress / decompress had fin=false). */
  private deflateMidMessage = false;
  private inflateMidMessage = false;

  constructor(params: DeflateParams, side: 'client' | 'server', options: PerMessageDeflateOptions = {}) {
    this.params = sideParams(params, side);
    this.threshold = resolveThreshold(options);
    this.zlibOptions = {
      level: options.level ?? DEFAULT_LEVEL,
      ...(options.memLevel !== undefined ? { memLevel: options.memLevel } : {}),
    };
  }

  /** zlib contexts this connection holds now (0, 1 or 2). */
  get contexts(): number {
    return (this.inflater ? 1 : 0) + (this.deflater ? 1 : 0);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** See sweepIdleCompressors: releases the contexts idle since the previous sweep. */
  sweep(): void {
    if (this.used) {
      this.used = false;
      return;
    }
    if (this.deflater !== undefined && this.deflateSink === undefined && !this.deflateMidMessage)
      this.dropDeflater();
    if (
      this.inflater !== undefined &&
      this.inflateSink === undefined &&
      !this.inflateMidMessage &&
      (this.params.inflateNoContextTakeover || this.inflaterEnded)
    )
      this.dropInflater();
  }

  compress(data: Buffer, fin: boolean): Promise<Buffer> {
    return zlibLimiter.run(() => this.deflate(data, fin));
  }

  decompress(
    data: Buffer | readonly Buffer[],
    fin: boolean,
    limit: number,
    onChunk: (chunk: Buffer) => void,
  ): Promise<void> {
    return zlibLimiter.run(() => this.inflate(data, fin, limit, onChunk));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    // Settle the operations in flight (their zlib callbacks will never come) so that
    // their limiter slots are given back.
    this.deflateSink?.fail(closedError());
    this.inflateSink?.fail(closedError());
    this.dropInflater();
    this.dropDeflater();
  }

  // ---- compressing ---------------------------------------------------------------------

  private deflate(data: Buffer, fin: boolean): Promise<Buffer> {
    if (this.closed) return Promise.reject(closedError());
    this.used = true;
    this.deflateMidMessage = !fin;
    if (data.length === 0) {
      // zlib emits nothing for a sync flush without input right after another one; an
      // empty stored block says the same (the stream is byte-aligned after every flush).
      if (fin && this.params.deflateNoContextTakeover) this.deflater?.reset();
      return Promise.resolve(Buffer.from(fin ? EMPTY_MESSAGE : EMPTY_BLOCK)); // copies: the caller owns it
    }
    const deflater = this.deflater ?? this.openDeflater();
    return new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      let length = 0;
      const sink: Sink = {
        data: (chunk) => {
          chunks.push(chunk);
          length += chunk.length;
        },
        fail: (err) => {
          if (this.deflateSink !== sink) return;
          this.deflateSink = undefined;
          this.dropDeflater();
          reject(err);
        },
      };
      this.deflateSink = sink;
      // One zlib call: every write is sync-flushed (see openDeflater).
      deflater.write(data, () => {
        if (this.deflateSink !== sink) return; // failed or closed meanwhile
        this.deflateSink = undefined;
        let out = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, length);
        if (fin) {
          // RFC 7692 §7.2.1: a message ends with a sync flush whose empty stored block
          // (00 00 ff ff) is removed. Fragments before the last keep theirs.
          if (endsWithTail(out)) out = out.subarray(0, out.length - TAIL.length);
          // RFC 7692 §7.2.3.2 (no context takeover): the next message starts a fresh window.
          if (this.params.deflateNoContextTakeover) deflater.reset();
        }
        resolve(out);
      });
    });
  }

  // ---- decompressing -------------------------------------------------------------------

  private inflate(
    data: Buffer | readonly Buffer[],
    fin: boolean,
    limit: number,
    onChunk: (chunk: Buffer) => void,
  ): Promise<void> {
    if (this.closed) return Promise.reject(closedError());
    this.used = true;
    this.inflateMidMessage = !fin;
    if (this.inflaterEnded) this.dropInflater();
    const inflater = this.inflater ?? this.openInflater();
    return new Promise<void>((resolve, reject) => {
      let produced = 0;
      const sink: Sink = {
        data: (chunk) => {
          produced += chunk.length;
          if (produced > limit) {
            // Stop at once: a few KiB can inflate to gigabytes. The inflater is dropped,
            // so zlib stops producing output within one chunk (16 KiB).
            sink.fail(
              new WebSocketError(
                CloseCode.MESSAGE_TOO_BIG,
                'The message exceeds maxMessageSize once decompressed',
              ),
            );
            return;
          }
          try {
            onChunk(chunk);
          } catch (err) {
            sink.fail(err instanceof Error ? err : new Error(String(err)));
          }
        },
        fail: (err) => {
          if (this.inflateSink !== sink) return;
          this.inflateSink = undefined;
          // The stream's state is unknown now: drop it (the connection is failing anyway).
          this.dropInflater();
          reject(err);
        },
      };
      this.inflateSink = sink;
      const done = () => {
        if (this.inflateSink !== sink) return; // failed, over the limit, or closed
        this.inflateSink = undefined;
        // RFC 7692 §7.2.3.2: without context takeover the peer starts every message with
        // an empty window, so we may too (and must not rely on the old one anyway).
        if (fin && this.params.inflateNoContextTakeover && !this.inflaterEnded) inflater.reset();
        resolve();
      };
      // One zlib call for all the frames (each write is a trip to the thread pool; every
      // write sync-flushes, see openInflater). RFC 7692 §7.2.2: put back the 00 00 ff ff
      // that the sender removed.
      const parts = Buffer.isBuffer(data) ? [data] : data;
      let input: Buffer | undefined;
      if (parts.length === 1 && !fin) input = parts[0]!;
      else {
        let length = fin ? TAIL.length : 0;
        for (const p of parts) length += p.length;
        // Copying is cheap next to a thread-pool trip, but not for a large frame.
        if (length <= MAX_JOIN) input = Buffer.concat(fin ? [...parts, TAIL] : parts, length);
      }
      const inputs = input !== undefined ? [input] : fin ? [...parts, TAIL] : parts;
      const last = inputs.length - 1;
      for (let i = 0; i < last; i++) inflater.write(inputs[i]);
      inflater.write(inputs[last], done); // writes are processed in order
    });
  }

  // ---- zlib contexts -------------------------------------------------------------------

  private openDeflater(): DeflateRaw {
    // RFC 7692 §7.2.1: every write ends with a sync flush (its output is complete, ending
    // in 00 00 ff ff, when its callback runs).
    const deflater = createDeflateRaw({
      ...this.zlibOptions,
      windowBits: this.params.deflateWindowBits,
      flush: constants.Z_SYNC_FLUSH,
    });
    // Guarded: a dropped stream may still report (e.g. an error while closing).
    deflater.on('data', (chunk: Buffer) => {
      if (this.deflater === deflater) this.deflateSink?.data(chunk);
    });
    deflater.on('error', (err: Error) => {
      if (this.deflater === deflater) this.deflateSink?.fail(err);
    });
    this.deflater = deflater;
    liveContexts++;
    hold(this);
    return deflater;
  }

  private openInflater(): InflateRaw {
    // Every write is sync-flushed: its output is complete when its callback runs.
    const inflater = createInflateRaw({
      windowBits: this.params.inflateWindowBits,
      flush: constants.Z_SYNC_FLUSH,
    });
    inflater.on('data', (chunk: Buffer) => {
      if (this.inflater === inflater) this.inflateSink?.data(chunk);
    });
    inflater.on('error', (err: Error) => {
      if (this.inflater !== inflater) return;
      this.inflateSink?.fail(
        new WebSocketError(CloseCode.INVALID_FRAME_PAYLOAD_DATA, `Invalid compressed data: ${err.message}`),
      );
    });
    // RFC 7692 §7.2.3.4: a sender may end a message with a BFINAL block, which ends the
    // DEFLATE stream; what follows is a new stream, so a new decompressor reads it.
    inflater.on('end', () => {
      if (this.inflater === inflater) this.inflaterEnded = true;
    });
    this.inflater = inflater;
    this.inflaterEnded = false;
    liveContexts++;
    hold(this);
    return inflater;
  }

  private dropInflater(): void {
    const inflater = this.inflater;
    if (inflater === undefined) return;
    this.inflater = undefined;
    this.inflaterEnded = false;
    liveContexts--;
    if (this.deflater === undefined) unhold(this);
    inflater.close();
  }

  private dropDeflater(): void {
    const deflater = this.deflater;
    if (deflater === undefined) return;
    this.deflater = undefined;
    liveContexts--;
    if (this.inflater === undefined) unhold(this);
    deflater.close();
  }
}

export function createPerMessageDeflate(
  params: DeflateParams,
  side: 'client' | 'server',
  options: PerMessageDeflateOptions = {},
): PerMessageDeflate {
  return new PerMessageDeflate(params, side, options);
}
