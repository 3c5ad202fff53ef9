import type { Duplex } from 'node:stream';
import { CloseCode } from '../protocol/close-codes.js';
import { WebSocketError } from '../protocol/errors.js';
import type { DataOpcode } from '../protocol/frame.js';
import { END_OF_STREAM, type Protocol, type ProtocolSendOptions } from '../protocol/protocol.js';
import type { MessageCompressor } from './compressor.js';
import * as diag from './diagnostics.js';
import { channels, type ObservedConnection } from './diagnostics.js';
import type { Logger } from './logger.js';
import { noop, notOpen, quiet, rejected } from './promises.js';

/** Send options shared by every send: no object per message. */
const WHOLE: ProtocolSendOptions = Object.freeze({ fin: true });
const FRAGMENT: ProtocolSendOptions = Object.freeze({ fin: false });
/** A whole message whose payload was encoded for this send (the engine may mask it in place). */
const WHOLE_OWNED: ProtocolSendOptions = Object.freeze({ fin: true, owned: true });

/** Settled once: every send handed over at once returns it (no promise per message). */
const RESOLVED: Promise<void> = Promise.resolve();

/** The queues whose socket was corked in this tick; uncorkAll() runs once at its end. */
let corkedQueues: Array<{ uncork(): void }> = [];

function uncorkAll(): void {
  const queues = corkedQueues;
  corkedQueues = []; // a queue corked again while these uncork schedules a new tick
  for (const queue of queues) {
    try {
      queue.uncork();
    } catch (err) {
      // As uncaught as it was in a tick of its own, without leaving the others corked.
      process.nextTick(() => {
        throw err;
      });
    }
  }
}

/** A send accepted by the protocol (reserveSend/reserveEncoded) and not written yet. */
type QueuedSend =
  | {
      kind: 'data';
      opcode: DataOpcode;
      payload: Buffer;
      fin: boolean;
      compress: boolean;
      resolve: () => void;
      reject: (err: Error) => void;
    }
  /** A frame encoded once for many connections (publish). */
  | { kind: 'encoded'; bytes: Buffer };

/** What the queue tells its connection. */
export interface SendQueueHost {
  /** Our Close frame was handed to the socket. */
  closeSent(): void;
  /** Our side of TCP was ended (the protocol's END_OF_STREAM). */
  streamEnded(): void;
  /** The protocol has new events (a failure decided here): the connection takes them. */
  protocolChanged(): void;
  /** Every queued send went out. */
  idle(): void;
}

/** The connection a SendQueue works for: what it writes to and the settings it follows. */
export interface SendQueueOwner<Owner extends ObservedConnection> extends SendQueueHost {
  readonly socket: Duplex;
  readonly proto: Protocol;
  readonly compressor: MessageCompressor | undefined;
  readonly log: Logger;
  /** maxBufferedAmount: unread bytes allowed for a slow peer; onBackpressure replaces the 1008 close. */
  readonly opts: { maxBufferedAmount: number; onBackpressure: ((owner: Owner) => void) | undefined };
  readonly owner: Owner;
}

/**
 * Everything on its way to the socket: sends waiting for compression (in order, with the
 * published frames accepted behind them), the writes themselves (corked per tick, with
 * 'drain' for callers that wait), the Pongs (coalesced when the peer does not read), the
 * byte count that is `bufferedAmount`, and the slow-peer policy.
 */
export class SendQueue<Owner extends ObservedConnection> {
  // One reference to the connection, not a copy of each setting: idle connections stay small.
  private readonly host: SendQueueOwner<Owner>;

  private queue: QueuedSend[] | undefined;
  /** Bytes waiting in the queue (not yet handed to the socket). */
  private queuedBytes = 0;
  /** The part of queuedBytes that is published frames (they count as backlog at once). */
  private publishedWaiting = 0;
  private pumping = false;
  private corked = false;
  /** socket.writableLength when this tick's first write began: the unread backlog. */
  private tickBacklog = 0;
  private drainWaiters: Array<() => void> | undefined;
  private overLimit = false;
  private closeReported = false;
  private dropped = false;
  /** Pongs handed to the socket and not flushed yet. */
  private pongsUnsent = 0;
  /** A Pong was written in this tick (the socket is corked until the tick ends). */
  private pongThisTick = false;
  /** The Pong owed for the latest Ping while an earlier one is unsent (RFC 6455 §5.5.3). */
  private owedPong: Buffer | undefined;

  constructor(host: SendQueueOwner<Owner>) {
    this.host = host;
  }

  private get socket(): Duplex {
    return this.host.socket;
  }

  private get proto(): Protocol {
    return this.host.proto;
  }

  get maxBufferedAmount(): number {
    return this.host.opts.maxBufferedAmount;
  }

  get onBackpressure(): ((owner: Owner) => void) | undefined {
    return this.host.opts.onBackpressure;
  }

  private get owner(): Owner {
    return this.host.owner;
  }

  /**
   * Bytes queued for the peer and not yet written to the network, wherever they wait:
   * the socket, this queue, or behind an open fragmented message (in the protocol).
   */
  get bufferedAmount(): number {
    return this.socket.writableLength + this.queuedBytes + this.proto.heldBytes;
  }

  /** Sends are waiting (later data must go after them). */
  get pending(): boolean {
    return this.pumping || this.queue !== undefined;
  }

  /**
   * Sends a message or fragment: at once when nothing waits and it needs no compression,
   * otherwise in order behind the others. Throws what the protocol refuses.
   */
  send(opcode: DataOpcode, payload: Buffer, fin: boolean, compress: boolean, owned = false): Promise<void> {
    if (!compress && !this.proto.sendsReserved) {
      const options = fin ? (owned ? WHOLE_OWNED : WHOLE) : FRAGMENT;
      this.proto.send(opcode, payload, options);
      diag.noteSent(this.owner, opcode, payload.length, fin, -1);
      return this.flush();
    }
    this.proto.reserveSend(opcode, { fin, compressed: compress });
    return quiet(
      new Promise<void>((resolve, reject) => {
        this.enqueue({ kind: 'data', opcode, payload, fin, compress, resolve, reject }, payload.length);
      }),
    );
  }

  /** A frame encoded once for many connections; false when the connection takes no data. */
  publish(bytes: Buffer): boolean {
    if (!this.proto.canSendData || !this.socket.writable) return false;
    diag.noteSentEncoded(this.owner, bytes);
    if (this.proto.sendsReserved) {
      this.proto.reserveEncoded();
      this.publishedWaiting += bytes.length;
      this.enqueue({ kind: 'encoded', bytes }, bytes.length);
      this.checkBackpressure();
      return true;
    }
    // The common case, nothing in between: straight to the socket, no output queue.
    if (!this.proto.sendingFragments) {
      this.writeOne(bytes);
      return true;
    }
    this.proto.sendEncoded(bytes); // RFC 6455 §5.4: held until the fragmented message ends
    this.checkBackpressure(); // a frame held behind a fragmented message counts at once
    return true;
  }

  /**
   * Sends a Pong. While an earlier Pong still waits in the socket's buffer, only the
   * latest one is kept and sent when that one is flushed (RFC 6455 §5.5.3 allows
   * answering only the most recent Ping): a peer that floods pings and never reads can't
   * grow our buffers.
   */
  pong(payload: Buffer): void {
    if (!this.proto.canSendControl || this.dropped) return;
    // Pongs of one tick leave together; a Pong from an earlier tick still unsent means
    // the peer is not reading: from then on only the latest one is kept.
    if (this.pongsUnsent > 0 && !this.pongThisTick) {
      this.owedPong = payload;
      return;
    }
    this.proto.pong(payload);
    const out = this.proto.takeOutput();
    if (out.length === 0) return; // an outbound stage dropped it
    this.pongsUnsent++;
    this.write(out, () => this.pongFlushed()).catch(noop);
    this.pongThisTick = true;
  }

  /** Writes what the protocol queued. Resolves when handed over (after 'drain' if needed). */
  flush(): Promise<void> {
    const out = this.proto.takeOutput();
    if (out.length === 0) return RESOLVED;
    return this.write(out);
  }

  /** flush() for callers that don't wait: no promise unless there is something to write. */
  flushQuietly(): void {
    const out = this.proto.takeOutput();
    if (out.length > 0) this.write(out).catch(noop);
  }

  /** The socket drained: writers waiting for it go on. */
  drained(): void {
    this.overLimit = false;
    const waiters = this.drainWaiters;
    if (waiters === undefined) return;
    this.drainWaiters = undefined;
    for (const w of waiters) w();
  }

  /** The connection is gone: every waiting send fails with `err`, nothing more is written. */
  drop(err: () => Error): void {
    this.dropped = true;
    const queue = this.queue;
    this.queue = undefined;
    if (queue !== undefined) for (const item of queue) if (item.kind === 'data') item.reject(err());
    this.queuedBytes = 0;
    this.publishedWaiting = 0;
    this.drained();
  }

  private enqueue(item: QueuedSend, size: number): void {
    this.queue ??= [];
    this.queue.push(item);
    this.queuedBytes += size;
    if (!this.pumping) void this.pump();
  }

  private dequeue(item: QueuedSend, size: number): boolean {
    if (this.queue?.[0] !== item) return false; // dropped meanwhile
    this.queue.shift();
    if (this.queue.length === 0) this.queue = undefined;
    this.queuedBytes -= size;
    if (item.kind === 'encoded') this.publishedWaiting -= size;
    return true;
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      for (let item = this.queue?.[0]; item !== undefined; item = this.queue?.[0]) {
        if (item.kind === 'encoded') {
          this.dequeue(item, item.bytes.length);
          this.proto.sendReserved(item.bytes);
          this.flushQuietly();
          continue;
        }
        let payload = item.payload;
        try {
          // RFC 7692 §7.2.1; RSV1 goes on the first frame only (the protocol sees to it).
          if (item.compress && this.host.compressor !== undefined)
            payload = await this.host.compressor.compress(item.payload, item.fin);
        } catch (err) {
          if (!this.dequeue(item, item.payload.length)) continue;
          item.reject(err instanceof Error ? err : new Error(String(err)));
          // The message can't be sent, and the ones after it can't go without it.
          this.proto.fail(new WebSocketError(CloseCode.INTERNAL_SERVER_ERROR, 'Compression failed'));
          this.flushQuietly();
          this.host.protocolChanged();
          continue;
        }
        if (!this.dequeue(item, item.payload.length)) continue;
        if (!this.proto.sendReserved(payload)) {
          item.reject(notOpen(this.proto.state));
          this.flushQuietly();
          continue;
        }
        diag.noteSent(
          this.owner,
          item.opcode,
          item.payload.length,
          item.fin,
          item.compress ? payload.length : -1,
        );
        this.flush().then(item.resolve, item.reject);
      }
    } finally {
      this.pumping = false;
    }
    this.host.idle();
  }

  private pongFlushed(): void {
    if (--this.pongsUnsent > 0) return;
    const owed = this.owedPong;
    this.owedPong = undefined;
    if (owed !== undefined) this.pong(owed);
  }

  /** One published frame: write() without the array and the promise. */
  private writeOne(bytes: Buffer): void {
    const socket = this.socket;
    if (this.dropped || socket.destroyed || !socket.writable) return;
    this.cork();
    socket.write(bytes);
    this.checkBackpressure();
  }

  /** Many small writes in one tick leave in one syscall (writev on uncork). */
  private cork(): void {
    if (this.corked) return;
    this.corkSocket();
    // One tick for every queue corked in this tick (a publish corks hundreds), not one each.
    if (corkedQueues.length === 0) process.nextTick(uncorkAll);
    corkedQueues.push(this);
  }

  /**
   * Sends made while one read's events are handled leave together when they are done,
   * without waiting for the end of the tick: a request answered at once goes out before
   * the event loop turns. False when the socket is already corked (the tick uncorks it).
   */
  beginBatch(): boolean {
    if (this.corked || this.dropped) return false;
    this.corkSocket();
    return true;
  }

  private corkSocket(): void {
    const socket = this.socket;
    this.corked = true;
    this.tickBacklog = socket.writableLength;
    socket.cork();
  }

  /** The end of the tick (or of a batch): what was written meanwhile goes out. */
  uncork(): void {
    this.corked = false;
    this.pongThisTick = false;
    this.socket.uncork();
  }

  private write(buffers: Buffer[], written?: () => void): Promise<void> {
    const socket = this.socket;
    if (this.dropped || socket.destroyed || !socket.writable) return rejected(notOpen(this.proto.state));
    this.cork();
    let ok = true;
    let ended = false;
    const last = buffers.length - 1;
    for (let i = 0; i <= last; i++) {
      const buffer = buffers[i] as Buffer;
      if (buffer === END_OF_STREAM) {
        ended = true;
        break; // the protocol writes nothing after it
      }
      ok = written !== undefined && i === last ? socket.write(buffer, written) : socket.write(buffer);
    }
    if (this.proto.closeSent !== undefined && !this.closeReported) {
      this.closeReported = true;
      this.host.closeSent();
    }
    if (ended) {
      socket.end();
      this.host.streamEnded();
    }
    this.checkBackpressure();
    if (ok) return RESOLVED;
    if (this.drainWaiters === undefined && channels.backpressure.hasSubscribers)
      diag.highWater(this.owner, this.socket);
    return new Promise((resolve) => {
      this.drainWaiters ??= [];
      this.drainWaiters.push(resolve);
    });
  }

  /**
   * A slow consumer leaves earlier data unread: what the socket still buffered when this
   * tick's writes began counts against maxBufferedAmount, and so do published frames
   * waiting here or behind an open fragmented send, which no caller awaits. This tick's
   * own writes and sends waiting for compression don't, so neither one large message nor
   * a burst of sends is penalized.
   */
  private checkBackpressure(): void {
    if (this.overLimit || this.dropped) return;
    const socketBacklog = this.corked ? this.tickBacklog : this.socket.writableLength;
    if (socketBacklog + this.publishedWaiting + this.proto.heldBytes <= this.maxBufferedAmount) return;
    this.overLimit = true;
    if (channels.backpressure.hasSubscribers) diag.slowConsumer(this.owner, this);
    if (this.onBackpressure !== undefined) {
      this.onBackpressure(this.owner);
      return;
    }
    this.host.log.warn({ bufferedAmount: this.bufferedAmount }, 'slow consumer: closing with 1008');
    // A Close held after a violation goes out now (with its own code). The Close 1008
    // goes out behind the queued data: a peer that reads again before closeTimeout
    // learns why it was closed; one that doesn't is destroyed by the close timer.
    this.proto.releaseClose();
    this.proto.fail(new WebSocketError(CloseCode.POLICY_VIOLATION, 'Slow consumer: too much data buffered'));
    this.flushQuietly();
    this.host.protocolChanged();
  }
}
