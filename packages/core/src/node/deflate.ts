import { type DeflateRaw, type InflateRaw, constants, createDeflateRaw, createInflateRaw } from 'node:zlib';
import { CloseCode } from '../protocol/close-codes.js';
import { WebSocketError } from '../protocol/errors.js';
import {
  type DeflateParams,
  type PerMessageDeflateOptions,
  resolveThreshold,
  sideParams,
} from '../protocol/permessage-deflate.js';
import type { MessageCompressor } from './compressor.js';

/** RFC 7692 §7.2.1: the empty stored block that ends every sync flush. */
const TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);

/**
 * zlib work runs in libuv's thread pool; many connections inflating at once would
 * queue thousands of jobs and fragment memory. All connections of the process share
 * this bound on concurrent zlib operations; the rest wait their turn in order.
 */
export class ZlibLimiter {
  private running = 0;
  private readonly queue: Array<() => void> = [];
  constructor(readonly concurrency: number) {}

  async run<T>(job: () => Promise<T>): Promise<T> {
    if (this.running >= this.concurrency) await new Promise<void>((resolve) => this.queue.push(resolve));
    this.running++;
    try {
      return await job();
    } finally {
      this.running--;
      this.queue.shift()?.();
    }
  }

  get active(): number {
    return this.running;
  }

  get waiting(): number {
    return this.queue.length;
  }
}

export const zlibLimiter = new ZlibLimiter(10);

/** Live zlib contexts in this process (for leak checks). */
let liveContexts = 0;
export const zlibContexts = (): number => liveContexts;

class PerMessageDeflate implements MessageCompressor {
  readonly threshold: number;
  private inflater: InflateRaw | undefined;
  private deflater: DeflateRaw | undefined;
  private closed = false;
  private readonly p: ReturnType<typeof sideParams>;
  private readonly level: number | undefined;
  private readonly memLevel: number | undefined;

  constructor(params: DeflateParams, side: 'client' | 'server', options: PerMessageDeflateOptions) {
    this.p = sideParams(params, side);
    this.threshold = resolveThreshold(options);
    this.level = options.level;
    this.memLevel = options.memLevel;
  }

  compress(data: Buffer, fin: boolean): Promise<Buffer> {
    return zlibLimiter.run(() => this.deflate(data, fin));
  }

  decompress(data: Buffer, fin: boolean, limit: number, onChunk: (chunk: Buffer) => void): Promise<void> {
    return zlibLimiter.run(() => this.inflate(data, fin, limit, onChunk));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.dropInflater();
    this.dropDeflater();
  }

  private deflate(data: Buffer, fin: boolean): Promise<Buffer> {
    if (this.closed) return Promise.reject(new Error('Compressor closed'));
    if (this.deflater === undefined) {
      this.deflater = createDeflateRaw({
        windowBits: this.p.deflateWindowBits,
        ...(this.level !== undefined ? { level: this.level } : {}),
        ...(this.memLevel !== undefined ? { memLevel: this.memLevel } : {}),
      });
      liveContexts++;
    }
    const deflater = this.deflater;
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let length = 0;
      const onData = (chunk: Buffer) => {
        chunks.push(chunk);
        length += chunk.length;
      };
      const onError = (err: Error) => {
        deflater.off('data', onData);
        this.dropDeflater();
        reject(err);
      };
      deflater.on('data', onData);
      deflater.once('error', onError);
      deflater.write(data);
      deflater.flush(constants.Z_SYNC_FLUSH, () => {
        deflater.off('data', onData);
        deflater.off('error', onError);
        if (this.closed) {
          reject(new Error('Compressor closed'));
          return;
        }
        let out = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, length);
        // RFC 7692 §7.2.1: remove the 00 00 ff ff of the final sync flush.
        if (fin && out.length >= 4 && out.subarray(out.length - 4).equals(TAIL)) out = out.subarray(0, out.length - 4);
        if (fin && this.p.deflateNoContextTakeover) deflater.reset();
        resolve(out);
      });
    });
  }

  private inflate(data: Buffer, fin: boolean, limit: number, onChunk: (chunk: Buffer) => void): Promise<void> {
    if (this.closed) return Promise.reject(new Error('Compressor closed'));
    if (this.inflater === undefined) {
      this.inflater = createInflateRaw({ windowBits: this.p.inflateWindowBits });
      liveContexts++;
    }
    const inflater = this.inflater;
    return new Promise((resolve, reject) => {
      let produced = 0;
      let failed = false;
      const fail = (err: Error) => {
        if (failed) return;
        failed = true;
        inflater.off('data', onData);
        // The stream state is unknown now: drop it. The connection is failing anyway.
        this.dropInflater();
        reject(err);
      };
      const onData = (chunk: Buffer) => {
        produced += chunk.length;
        if (produced > limit) {
          // Stop at once: a small compressed message may expand without bound.
          fail(new WebSocketError(CloseCode.MESSAGE_TOO_BIG, `Inflated message exceeds maxMessageSize`));
          return;
        }
        onChunk(chunk);
      };
      const onError = (err: Error) =>
        fail(new WebSocketError(CloseCode.INVALID_FRAME_PAYLOAD_DATA, `Invalid deflate data: ${err.message}`));
      inflater.on('data', onData);
      inflater.once('error', onError);
      inflater.write(data);
      // RFC 7692 §7.2.2: append the tail that the sender removed, then flush.
      if (fin) inflater.write(TAIL);
      inflater.flush(constants.Z_SYNC_FLUSH, () => {
        if (failed) return;
        inflater.off('data', onData);
        inflater.off('error', onError);
        if (fin && this.p.inflateNoContextTakeover) inflater.reset();
        resolve();
      });
    });
  }

  private dropInflater(): void {
    if (this.inflater === undefined) return;
    this.inflater.removeAllListeners();
    this.inflater.on('error', () => {});
    this.inflater.close();
    this.inflater = undefined;
    liveContexts--;
  }

  private dropDeflater(): void {
    if (this.deflater === undefined) return;
    this.deflater.removeAllListeners();
    this.deflater.on('error', () => {});
    this.deflater.close();
    this.deflater = undefined;
    liveContexts--;
  }
}

export function createPerMessageDeflate(
  params: DeflateParams,
  side: 'client' | 'server',
  options: PerMessageDeflateOptions,
): MessageCompressor {
  return new PerMessageDeflate(params, side, options);
}
