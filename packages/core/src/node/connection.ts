import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { CloseCode } from '../protocol/close-codes.js';
import { buildClosePayload } from '../protocol/close-frame.js';
import { InvalidStateError, WebSocketError } from '../protocol/errors.js';
import { type DataOpcode, type Frame, Opcode } from '../protocol/frame.js';
import { Protocol, type ProtocolEvent, ReadyState, type Side } from '../protocol/protocol.js';
import type { MessageCompressor } from './compressor.js';
import { type Logger, silentLogger } from './logger.js';
import { Message } from './message.js';
import type { ResolvedConnectionOptions } from './options.js';
import { RateLimiter } from './rate-limit.js';
import { autoPing, autoPong, type Stage, TimerWheel } from './stages.js';

export type Data = string | ArrayBufferView | ArrayBuffer;

export interface SendOptions {
  /** Send a string as a binary message. Buffers and views are binary unless `binary: false`. */
  binary?: boolean;
  /** false: don't compress this message even when permessage-deflate is on. */
  compress?: boolean;
  /** false: this is a fragment; later sends of the same type continue it until fin: true. */
  fin?: boolean;
}

export interface CloseInfo {
  /** The peer's close code, 1005 when its Close had none, 1006 when there was no Close. */
  code: number;
  reason: string;
  /** Both Close frames were exchanged before the TCP connection ended. */
  wasClean: boolean;
}

/** Where server-side connections register their topic subscriptions (the server). */
/** The server a server-side connection belongs to: topic subscriptions, and its end. */
export interface TopicHub {
  subscribe(ws: WebSocket, topic: string): void;
  unsubscribe(ws: WebSocket, topic: string): void;
  /** Called once when the connection is closed (before its 'close' event). */
  connectionClosed?(ws: WebSocket): void;
}

export interface ConnectionInit {
  side: Side;
  socket: Duplex;
  options: ResolvedConnectionOptions;
  protocol?: string;
  extensions?: string;
  compressor?: MessageCompressor;
  path?: string;
  /** Bytes that arrived with the handshake, after its head. */
  head?: Buffer;
  logger?: Logger;
  hub?: TopicHub;
}

type PendingSend = PendingData | PendingClose | PendingEncoded;

/** A frame encoded once for many connections (publish), in line with the queued sends. */
interface PendingEncoded {
  kind: 'encoded';
  bytes: Buffer;
}

interface PendingClose {
  kind: 'close';
  code: number;
  reason: string;
}

interface PendingData {
  kind: 'data';
  opcode: DataOpcode;
  payload: Buffer;
  fin: boolean;
  compress: boolean;
  resolve: () => void;
  reject: (err: Error) => void;
}

/** A frames() reader: the frames it has not read yet. */
type FrameTap = Frame[] & { wake?: () => void };

/** Why the socket is not being read (flags: several can hold at once). */
const PauseReason = {
  /** The inbox is full: the consumer is behind. */
  INBOX: 1,
  /** A frames() reader is behind. */
  FRAMES: 2,
  /** A compressed message is being inflated. */
  INFLATE: 4,
  /** The peer's Close waits for our pending sends (deferClose). */
  CLOSE: 8,
} as const;
type PauseReason = (typeof PauseReason)[keyof typeof PauseReason];

interface PendingPing {
  start: number;
  resolve: (rtt: number) => void;
  reject: (err: Error) => void;
}

const EMPTY = Buffer.alloc(0);
const noop = (): void => {};
const FRAME_TAP_LIMIT = 1024;

/** The bytes of a message payload, without copying Buffers and views. */
export function toPayload(data: Data): Buffer {
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (Buffer.isBuffer(data)) return data;
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (data instanceof ArrayBuffer) return Buffer.from(data);
  throw new TypeError('send() takes a string, an ArrayBufferView or an ArrayBuffer');
}

/** Where a socket's shared listeners find their connection. */
const kConnection = Symbol('wskit.connection');
type OwnedSocket = Duplex & { [kConnection]: WebSocket };

/** `state` is the protocol's; a connection whose socket is gone reports at least CLOSING. */
const notOpen = (state: number) => {
  const reported = Math.max(state, ReadyState.CLOSING);
  return new InvalidStateError(`WebSocket is not open (readyState ${reported})`, reported);
};

/**
 * A rejected promise that nobody has to await: `void ws.send(x)` on a closed connection
 * must not end the process with an unhandled rejection, while `await ws.send(x)` still
 * throws.
 */
function rejected<T>(err: unknown): Promise<T> {
  const p = Promise.reject(err instanceof Error ? err : new Error(String(err)));
  p.catch(noop);
  return p as Promise<T>;
}

/** `p`, with its rejection (if any) counted as handled: see rejected(). */
function quiet<T>(p: Promise<T>): Promise<T> {
  p.catch(noop);
  return p;
}

/**
 * A WebSocket connection on a Node socket, either side. This is the I/O half: it moves
 * bytes between the socket and a sans-I/O `Protocol`, runs the frame stages, timers,
 * compression, and the message APIs (`receive()`, `for await`, 'message' events).
 */
export class WebSocket extends EventEmitter {
  static readonly CONNECTING = ReadyState.CONNECTING;
  static readonly OPEN = ReadyState.OPEN;
  static readonly CLOSING = ReadyState.CLOSING;
  static readonly CLOSED = ReadyState.CLOSED;

  readonly isServer: boolean;
  readonly protocol: string;
  readonly extensions: string;
  readonly path: string;
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
  readonly localAddress: string | undefined;
  readonly localPort: number | undefined;
  /** Round-trip time of the last answered ping, in ms (undefined before the first). */
  rtt: number | undefined;

  private readonly socket: Duplex;
  private readonly proto: Protocol;
  private readonly opts: ResolvedConnectionOptions;
  private readonly log: Logger;
  private readonly compressor: MessageCompressor | undefined;
  private readonly hub: TopicHub | undefined;
  /** Replaced, never changed in place (`stages` hands it out). */
  private stageList: Stage[] = [];
  /** `topics`, created on first use. */
  private topicSet: Set<string> | undefined;

  // Collections that most connections never use are created on first use.
  private inbox: Message[] = [];
  private waiters: Array<(msg: Message | null) => void> | undefined;
  private frameTaps: Set<FrameTap> | undefined;
  /** Why reading is paused: PauseReason flags; reading resumes once none is left. */
  private pausedFor = 0;
  private inflating = false;
  /** Frames of the compressed message being received, collected for one zlib call. */
  private inflateBatch: Buffer[] | undefined;
  private processing = false;

  private sendQueue: PendingSend[] | undefined;
  /** Bytes waiting in sendQueue and heldFrames (not yet handed to the socket). */
  private queuedBytes = 0;
  /** The part of queuedBytes that is published frames (they count as backlog at once). */
  private publishedWaiting = 0;
  private sending = false;
  /** The outgoing fragmented message that send() calls are continuing, if any. */
  private outgoingMessage: { opcode: DataOpcode; compress: boolean } | undefined;
  private corked = false;
  private drainWaiters: Array<() => void> | undefined;
  /** Pings awaiting their Pong, by payload; undefined when none is pending. */
  private pendingPings: Map<string, PendingPing> | undefined;
  private pingCounter = 0;
  /** Pongs handed to the socket and not flushed yet. */
  private pongsUnsent = 0;
  /** A Pong was written in this tick (the socket is corked until the tick ends). */
  private pongThisTick = false;
  /** The Pong owed for the latest Ping while an earlier one is unsent (RFC 6455 §5.5.3). */
  private owedPong: Buffer | undefined;
  /** The inbound message rate limit, if configured. */
  private readonly rateLimiter: RateLimiter | undefined;
  /** An ordered consumer took a message and has not asked for the next one yet. */
  private consumerHolding = false;
  /** consume() handlers still running. */
  private busyHandlers = 0;

  private lastActivity = Date.now();
  private closeTimer: NodeJS.Timeout | undefined;
  /** Bounds the wait of a held Close (closeWhenSettled); set while one is held. */
  private settleTimer: NodeJS.Timeout | undefined;
  /** A checkSettled() turn is scheduled. */
  private settleCheck = false;
  /** `closed`, created on first access (many connections never ask for it). */
  private closedPromise: Promise<CloseInfo> | undefined;
  private resolveClosed: ((info: CloseInfo) => void) | undefined;
  /** How the connection closed, once it has. */
  private closeInfo: CloseInfo | undefined;
  private finished = false;
  /** The peer's Close, received but not acted on yet (see deferClose). */
  private deferredClose: Frame | undefined;
  /** Called once the send queue is empty (a deferred Close waits for it). */
  private onSendsIdle: (() => void) | undefined;
  private backpressureReported = false;
  /** socket.writableLength when this tick's first write began: the unread backlog. */
  private tickBacklog = 0;
  /** close() was called: no new sends, even while earlier ones are still queued. */
  private closeRequested = false;
  /** The peer ended its side of TCP; ours ends once everything received was handled. */
  private peerEnded = false;
  /** Every complete frame received so far has been handled (nothing paused or pending). */
  private inboundDrained = true;
  /** Frames encoded once for many connections, waiting for a fragmented message to end. */
  private heldFrames: Buffer[] | undefined;

  constructor(init: ConnectionInit) {
    super({ captureRejections: true });
    this.isServer = init.side === 'server';
    this.socket = init.socket;
    this.opts = init.options;
    this.log = init.logger ?? silentLogger;
    this.compressor = init.compressor;
    this.hub = init.hub;
    this.protocol = init.protocol ?? '';
    this.extensions = init.extensions ?? '';
    this.path = init.path ?? '/';
    const s = init.socket as Partial<Socket>;
    this.remoteAddress = s.remoteAddress;
    this.remotePort = s.remotePort;
    this.localAddress = s.localAddress;
    this.localPort = s.localPort;
    this.proto = new Protocol({
      side: init.side,
      maxFrameSize: this.opts.maxFrameSize,
      maxMessageSize: this.opts.maxMessageSize,
      maxFragments: this.opts.maxFragments,
      compression: init.compressor !== undefined,
      // Replies to the messages received before a violation go out before our Close.
      holdCloseOnFailure: true,
    });
    if (this.opts.rateLimit !== undefined) this.rateLimiter = new RateLimiter(this.opts.rateLimit);

    const socket = this.socket as Socket & OwnedSocket;
    if (typeof socket.setNoDelay === 'function') socket.setNoDelay(true);
    if (typeof socket.setTimeout === 'function') socket.setTimeout(0);
    // The listeners are shared by every connection (no closures per connection): each
    // finds its connection through the socket.
    const listeners = WebSocket.socketListeners;
    socket[kConnection] = this;
    socket.on('data', listeners.data);
    socket.on('end', listeners.end);
    socket.on('close', listeners.close);
    socket.on('error', listeners.error);
    socket.on('drain', listeners.drain);
    // The peer may have ended its side before anyone listened (e.g. while an async
    // acceptConnection ran): 'end' won't fire again, so act on it now.
    if ((socket as Partial<Socket>).readableEnded === true) queueMicrotask(() => this.onEnd());

    // A prototype method: EventEmitter calls it with `this` set to the connection.
    this.on('newListener', this.onNewListener);

    if (!this.opts.dropIncomingPings) this.use(autoPong());
    if (this.opts.pingInterval > 0) this.use(autoPing(this.opts.pingInterval));
    this.armIdleTimer();
    if (init.head && init.head.length > 0) this.onData(init.head);
  }

  // ---- introspection -------------------------------------------------------------------

  get readyState(): ReadyState {
    const state = this.proto.state;
    return state === ReadyState.OPEN && this.closeRequested ? ReadyState.CLOSING : state;
  }

  /** Settles when the TCP connection is gone, with how it closed. */
  get closed(): Promise<CloseInfo> {
    if (this.closedPromise === undefined) {
      const info = this.closeInfo;
      this.closedPromise =
        info !== undefined
          ? Promise.resolve(info)
          : new Promise((resolve) => {
              this.resolveClosed = resolve;
            });
    }
    return this.closedPromise;
  }

  /**
   * Bytes queued for the peer and not yet written to the network: data, control frames
   * and published frames, wherever they wait (the socket, the send queue, or behind an
   * open fragmented message).
   */
  get bufferedAmount(): number {
    return this.socket.writableLength + this.queuedBytes;
  }

  /** Topics this connection is subscribed to (server side). */
  get topics(): Set<string> {
    this.topicSet ??= new Set();
    return this.topicSet;
  }

  /** The stages in their order, auto-pong and auto-ping included. */
  get stages(): readonly Stage[] {
    return this.stageList;
  }

  // ---- sending -------------------------------------------------------------------------

  /**
   * Sends a message, or a fragment with `fin: false`. Resolves when the bytes are handed
   * to the socket — after its 'drain' when the socket's buffer is full, so a loop of
   * `await ws.send()` follows the peer's pace.
   */
  send(data: Data, options: SendOptions = {}): Promise<void> {
    if (this.proto.state !== ReadyState.OPEN || this.proto.closeSent || this.closeRequested) {
      return rejected(notOpen(this.readyState));
    }
    let payload: Buffer;
    try {
      payload = toPayload(data);
    } catch (err) {
      return rejected(err);
    }
    const binary = options.binary ?? typeof data !== 'string';
    const opcode: DataOpcode = binary ? Opcode.BINARY : Opcode.TEXT;
    const fin = options.fin ?? true;
    // RFC 7692 §6: a message is compressed as a whole, so its continuation fragments follow
    // the choice made for its first fragment (which may still be waiting in the queue).
    const open = this.outgoingMessage;
    if (open !== undefined && open.opcode !== opcode) {
      return rejected(
        new TypeError(
          'A fragmented message is in progress: finish it (fin: true) before sending another type',
        ),
      );
    }
    const compress =
      open !== undefined
        ? open.compress
        : this.compressor !== undefined &&
          options.compress !== false &&
          payload.length >= this.compressor.threshold;
    this.outgoingMessage = fin ? undefined : { opcode, compress };

    if (!compress && !this.sendsPending) {
      try {
        this.proto.send(opcode, payload, { fin });
      } catch (err) {
        return rejected(err);
      }
      const written = this.flush();
      if (fin) this.releaseHeldFrames();
      return written;
    }
    return quiet(
      new Promise<void>((resolve, reject) => {
        this.sendQueue ??= [];
        this.sendQueue.push({ kind: 'data', opcode, payload, fin, compress, resolve, reject });
        this.queuedBytes += payload.length;
        if (!this.sending) void this.pumpSends();
      }),
    );
  }

  /** Sends a Ping; resolves with the round-trip time in ms when its Pong arrives. */
  ping(data?: Data): Promise<number> {
    if (this.proto.state !== ReadyState.OPEN || this.proto.closeSent) {
      return rejected(notOpen(this.proto.state));
    }
    let payload: Buffer;
    if (data === undefined) {
      payload = Buffer.allocUnsafe(4);
      payload.writeUInt32BE(this.pingCounter++ >>> 0);
    } else {
      payload = toPayload(data);
    }
    const key = payload.toString('latin1');
    if (this.pendingPings?.has(key))
      return rejected(new Error('A ping with this payload is already pending'));
    try {
      this.proto.ping(payload);
    } catch (err) {
      return rejected(err);
    }
    return quiet(
      new Promise<number>((resolve, reject) => {
        this.pendingPings ??= new Map();
        this.pendingPings.set(key, { start: performance.now(), resolve, reject });
        this.flushQuietly();
      }),
    );
  }

  /**
   * Sends a Pong (auto-pong answers each Ping with one; alone it is a unidirectional
   * heartbeat). While an earlier Pong still waits in the socket's buffer, only the latest
   * one is kept and sent when that one is flushed (RFC 6455 §5.5.3 allows answering only
   * the most recent Ping): a peer that floods pings and never reads can't grow our
   * buffers.
   */
  pong(data: Data = EMPTY): void {
    if (this.proto.state !== ReadyState.OPEN || this.proto.closeSent) return;
    const payload = toPayload(data);
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
    this.writeToSocket(out, () => this.pongFlushed()).catch(noop);
    this.pongThisTick = true;
  }

  private pongFlushed(): void {
    if (--this.pongsUnsent > 0) return;
    const owed = this.owedPong;
    this.owedPong = undefined;
    if (owed !== undefined && !this.finished) this.pong(owed);
  }

  /**
   * Starts the closing handshake, after the messages already accepted by send(). Resolves
   * when the connection is closed; the socket is destroyed after closeTimeout if the peer
   * does not complete the handshake.
   */
  close(code: number = CloseCode.NORMAL_CLOSURE, reason = ''): Promise<CloseInfo> {
    if (this.finished || this.proto.closeSent || this.closeRequested) return this.closed;
    try {
      if (this.sendsPending) {
        buildClosePayload(code, reason); // validate now, so a bad code fails this call
        this.sendQueue ??= [];
        this.sendQueue.push({ kind: 'close', code, reason });
        this.closeRequested = true;
      } else {
        this.proto.close(code, reason);
        this.afterCloseSent();
      }
    } catch (err) {
      return rejected(err);
    }
    return this.closed;
  }

  /** Destroys the socket at once, without a closing handshake. */
  terminate(): void {
    this.socket.destroy();
    this.finish();
  }

  // ---- receiving -----------------------------------------------------------------------

  /** The next message in order; null once the connection is closing and no message is left. */
  receive(): Promise<Message | null> {
    this.consumerHolding = false; // the consumer is done with what it had
    const msg = this.inbox.shift();
    if (msg !== undefined) {
      this.consumerHolding = true;
      this.afterInboxShift();
      return Promise.resolve(msg);
    }
    if (this.finished || this.proto.closeReceived || this.proto.failure) {
      this.checkSettled();
      return Promise.resolve(null);
    }
    return new Promise((resolve) => {
      this.waiters ??= [];
      this.waiters.push(resolve);
    });
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Message, void, undefined> {
    for (;;) {
      const msg = await this.receive();
      if (msg === null) return;
      yield msg;
    }
  }

  /**
   * Runs `handler` for every message with at most `concurrency` at once, in arrival
   * order of start. Reading pauses while all slots are busy. A handler that throws or
   * rejects closes the connection with 1011. Resolves when the connection is closed.
   */
  async consume(
    handler: (msg: Message, ws: WebSocket) => unknown,
    options: { concurrency?: number } = {},
  ): Promise<void> {
    const limit = Math.max(1, options.concurrency ?? 1);
    const inflight = new Set<Promise<void>>();
    for (;;) {
      const msg = await this.receive();
      if (msg === null) break;
      this.busyHandlers++;
      const task: Promise<void> = Promise.resolve()
        .then(() => handler(msg, this))
        .then(
          () => {},
          (err: unknown) => this.handlerFailed(err),
        )
        .finally(() => {
          inflight.delete(task);
          this.busyHandlers--;
          this.checkSettled();
        });
      inflight.add(task);
      if (inflight.size >= limit) await Promise.race(inflight);
    }
    await Promise.all(inflight);
  }

  // ---- low level -----------------------------------------------------------------------

  /** Writes a frame as given (the mask bit follows the side). Outbound stages apply. */
  sendFrame(frame: Frame): Promise<void> {
    try {
      this.proto.sendFrame(frame);
    } catch (err) {
      return rejected(err);
    }
    if (frame.opcode === Opcode.CLOSE) this.afterCloseSent();
    return this.flush();
  }

  /** Every inbound frame, after the inbound stages, as it arrives. */
  frames(): AsyncIterable<Frame> {
    const tap: FrameTap = [];
    this.frameTaps ??= new Set();
    const taps = this.frameTaps;
    const self = this;
    taps.add(tap);
    return {
      [Symbol.asyncIterator](): AsyncIterator<Frame> {
        return {
          async next(): Promise<IteratorResult<Frame>> {
            for (;;) {
              const frame = tap.shift();
              if (frame !== undefined) {
                if (tap.length < FRAME_TAP_LIMIT / 2) self.resumeReading(PauseReason.FRAMES);
                return { value: frame, done: false };
              }
              if (self.finished || !taps.has(tap)) return { value: undefined, done: true };
              await new Promise<void>((resolve) => {
                tap.wake = resolve;
              });
            }
          },
          async return(): Promise<IteratorResult<Frame>> {
            taps.delete(tap);
            self.resumeReading(PauseReason.FRAMES);
            return { value: undefined, done: true };
          },
        };
      },
    };
  }

  /** Adds a frame stage (after the existing ones). Replaces a stage of the same name. */
  use(stage: Stage): this {
    const existing = this.stageList.findIndex((s) => s.name === stage.name);
    if (existing >= 0) this.unuse(stage.name);
    this.stageList = this.stageList.concat([stage]); // concat: no spare capacity
    this.syncOutboundHook();
    if (!this.finished) stage.attach?.(this);
    return this;
  }

  /** Removes the stage with this name (e.g. 'auto-pong', 'auto-ping'). */
  unuse(name: string): boolean {
    const stage = this.stageList.find((s) => s.name === name);
    if (stage === undefined) return false;
    this.stageList = this.stageList.filter((s) => s !== stage);
    this.syncOutboundHook();
    stage.detach?.(this);
    return true;
  }

  // ---- pub/sub -------------------------------------------------------------------------

  subscribe(topic: string): void {
    if (this.hub === undefined) throw new Error('subscribe() needs a server-side connection');
    if (this.finished) return; // a closed connection must not stay in the topic index
    this.topics.add(topic);
    this.hub.subscribe(this, topic);
  }

  unsubscribe(topic: string): void {
    this.topicSet?.delete(topic);
    this.hub?.unsubscribe(this, topic);
  }

  /**
   * Writes a complete frame encoded once for many connections (publish). While an
   * outgoing fragmented message or queued sends are in progress, the frame waits and
   * goes out right after them (RFC 6455 §5.4: no data frame inside a fragmented
   * message). Returns false when the connection no longer takes data. Outbound stages
   * don't see these frames.
   * @internal
   */
  sendEncoded(bytes: Buffer): boolean {
    if (this.proto.state !== ReadyState.OPEN || this.proto.closeSent || this.closeRequested) return false;
    if (!this.socket.writable) return false;
    if (this.sendsPending) {
      // Behind the sends already accepted, in order (and counted in bufferedAmount).
      this.sendQueue ??= [];
      this.sendQueue.push({ kind: 'encoded', bytes });
      this.queuedBytes += bytes.length;
      this.publishedWaiting += bytes.length;
      this.checkBackpressure();
      return true;
    }
    if (this.proto.sendingFragments) {
      this.holdFrame(bytes);
      return true;
    }
    this.writeToSocket([bytes]).catch(noop);
    return true;
  }

  /**
   * RFC 6455 §5.4: a published frame can't go inside the open fragmented message; it
   * waits for its last frame, and counts against maxBufferedAmount meanwhile.
   */
  private holdFrame(bytes: Buffer): void {
    this.heldFrames ??= [];
    this.heldFrames.push(bytes);
    this.queuedBytes += bytes.length;
    this.publishedWaiting += bytes.length;
    this.checkBackpressure();
  }

  /** Writes the frames held during a fragmented message, once its last frame is out. */
  private releaseHeldFrames(): void {
    const held = this.heldFrames;
    if (held === undefined) return;
    if (this.proto.sendingFragments && !this.proto.closeSent && !this.finished) return;
    this.heldFrames = undefined;
    for (const b of held) {
      this.queuedBytes -= b.length;
      this.publishedWaiting -= b.length;
    }
    if (this.proto.closeSent || this.finished || !this.socket.writable) return; // never to be sent
    this.writeToSocket(held).catch(noop);
  }

  // ---- internals: inbound --------------------------------------------------------------

  private onNewListener(event: string | symbol): void {
    if (event === 'message' && this.inbox.length > 0) queueMicrotask(() => this.flushInboxToListeners());
  }

  /** The socket's listeners, shared by all connections (`this` is the socket). */
  private static readonly socketListeners = {
    data(this: OwnedSocket, chunk: Buffer): void {
      this[kConnection].onData(chunk);
    },
    end(this: OwnedSocket): void {
      this[kConnection].onEnd();
    },
    close(this: OwnedSocket): void {
      this[kConnection].finish();
    },
    error(this: OwnedSocket, err: Error): void {
      this[kConnection].onSocketError(err);
    },
    drain(this: OwnedSocket): void {
      this[kConnection].onDrain();
    },
  };

  private onData(chunk: Buffer): void {
    this.lastActivity = Date.now();
    this.proto.receiveData(chunk);
    this.processInbound();
  }

  private processInbound(): void {
    if (this.processing) return;
    this.processing = true;
    this.inboundDrained = false;
    let drained = false;
    try {
      while (this.pausedFor === 0 && !this.inflating && !this.finished) {
        let frame = this.proto.nextFrame();
        if (frame === null) {
          drained = true;
          break;
        }
        let dropped = false;
        for (const stage of this.stageList) {
          if (stage.inbound === undefined) continue;
          const out: Frame | null = stage.inbound(frame, this);
          if (out === null) {
            dropped = true; // a stage swallowed it: no later stage, tap or handler sees it
            break;
          }
          frame = out;
        }
        if (dropped) continue;
        if (this.frameTaps !== undefined) {
          for (const tap of this.frameTaps) {
            tap.push(frame);
            tap.wake?.();
            // Once our Close is out, a slow frames() reader must not hide the peer's Close.
            if (tap.length >= FRAME_TAP_LIMIT && this.proto.closeSent === undefined) {
              this.pauseReading(PauseReason.FRAMES);
            }
          }
        }
        if (frame.opcode === Opcode.CLOSE) {
          this.deferClose(frame);
          break;
        }
        this.proto.receiveFrame(frame);
        this.handleEvents();
      }
      this.handleEvents();
    } catch (err) {
      this.internalError(err);
    } finally {
      this.processing = false;
    }
    if (drained && !this.inflating && this.deferredClose === undefined) {
      this.inboundDrained = true;
      this.endAfterPeer();
    }
  }

  private handleEvents(): void {
    const events = this.proto.takeEvents();
    for (const event of events) {
      if (this.finished) break; // e.g. terminate() from a 'message' listener
      this.handleEvent(event);
    }
    this.flushQuietly();
    if (this.proto.shouldCloseTransport) this.closeTransport();
  }

  private handleEvent(event: ProtocolEvent): void {
    switch (event.type) {
      case 'message': {
        const msg = new Message(event.opcode === Opcode.TEXT ? 'text' : 'binary', event.data);
        if (this.rateLimiter !== undefined && !this.withinRateLimit(msg)) return;
        this.deliver(msg);
        return;
      }
      case 'inflate':
        this.inflate(event.data, event.fin);
        return;
      case 'ping':
        this.emit('ping', event.data);
        return;
      case 'pong':
        this.onPong(event.data);
        return;
      case 'close':
        this.log.debug({ code: event.code, reason: event.reason }, 'close frame received');
        this.wakeWaiters();
        this.armCloseTimer();
        return;
      case 'error': {
        const err = event.error;
        this.log.debug({ code: err.code, err: err.message }, 'protocol error from peer');
        if (this.opts.propagateCommonErrors) this.emitError(err);
        this.wakeWaiters();
        // A held Close: closeWhenSettled bounds the wait, and the close timer starts once it is out.
        if (this.proto.closeHeld) this.closeWhenSettled();
        else this.armCloseTimer();
        return;
      }
    }
  }

  private inflate(data: Buffer, fin: boolean): void {
    if (this.compressor === undefined) return;
    // A message in many small frames costs a zlib call (a thread-pool trip) per frame unless
    // they are joined: while the next frame is a continuation already received whole, this
    // one waits and processInbound() goes on to it. A control frame, a frame still
    // arriving or the last frame ends the collection.
    const batch = this.inflateBatch;
    if (batch === undefined) this.inflateBatch = [data];
    else batch.push(data);
    if (!fin && this.proto.continuationReady) {
      // Should processInbound() stop before reaching it (a stage dropping it, a pause),
      // what was collected is inflated all the same.
      if (batch === undefined) queueMicrotask(() => this.startInflate(false));
      return;
    }
    this.startInflate(fin);
  }

  /** Inflates the collected frames (`fin`: they end the message). */
  private startInflate(fin: boolean): void {
    const compressor = this.compressor;
    const batch = this.inflateBatch;
    if (compressor === undefined || batch === undefined || this.inflating || this.finished) return;
    this.inflateBatch = undefined;
    this.inflating = true;
    // Bytes arriving meanwhile would pile up in the parser: stop reading until done.
    this.pauseReading(PauseReason.INFLATE);
    const limit = this.proto.inflateBudget;
    compressor
      .decompress(batch.length === 1 ? batch[0]! : batch, fin, limit, (chunk) => {
        this.proto.receiveInflated(chunk, false, fin);
        this.handleEvents();
      })
      .then(
        () => this.proto.receiveInflated(EMPTY, true, fin),
        (err: unknown) => {
          if (this.finished) return; // closed meanwhile: the compressor gave up, nothing to report
          if (err instanceof WebSocketError) this.proto.fail(err);
          else this.proto.inflateFailed(err instanceof Error ? err.message : String(err));
        },
      )
      .then(() => {
        this.inflating = false;
        if (this.finished) return;
        this.handleEvents();
        this.resumeReading(PauseReason.INFLATE);
        this.processInbound();
      })
      .catch((err: unknown) => this.internalError(err));
  }

  /**
   * The peer's Close is acted on (and answered) one event-loop turn later, once the
   * consumers woken by the messages that arrived before it have run and the sends they
   * queued (e.g. compression) went out, bounded by closeTimeout: an echo of a message
   * sent right before a Close is not lost. RFC 6455 §5.5.1 lets an endpoint delay its
   * Close until its current message is sent. Nothing after the Close is read meanwhile.
   */
  private deferClose(frame: Frame): void {
    this.pauseReading(PauseReason.CLOSE);
    this.deferredClose = frame;
    let done = false;
    const act = (force: boolean) => {
      if (done) return;
      if (this.finished) {
        clearTimeout(limit); // the connection ended meanwhile: nothing to wait for
        return;
      }
      if (!force && this.sendsPending) {
        this.onSendsIdle = () => act(false); // pumpSends calls this when the queue empties
        return;
      }
      done = true;
      clearTimeout(limit);
      this.onSendsIdle = undefined;
      this.deferredClose = undefined;
      this.proto.receiveFrame(frame);
      this.handleEvents();
      this.resumeReading(PauseReason.CLOSE);
      this.endAfterPeer();
    };
    const limit = setTimeout(() => act(true), this.opts.closeTimeout);
    setImmediate(() => act(false));
  }

  /**
   * The peer broke the protocol after messages that arrived in full: those are still
   * handled, and the replies to them go out before our Close (held by the protocol).
   * The Close is released once the consumers are done with them (the inbox is empty,
   * an ordered consumer came back for more, consume() handlers finished, sends are out)
   * and one more event-loop turn passed for 'message' listeners, or after closeTimeout.
   */
  private closeWhenSettled(): void {
    if (this.settleTimer !== undefined) return;
    this.settleTimer = setTimeout(() => this.releaseHeldClose(), this.opts.closeTimeout);
    this.checkSettled();
  }

  /** Releases the held Close if the consumers are done (see closeWhenSettled). */
  private checkSettled(): void {
    if (this.settleTimer === undefined || this.settleCheck) return;
    if (this.inbox.length > 0 || this.consumerHolding || this.busyHandlers > 0 || this.sendsPending) return;
    this.settleCheck = true;
    setImmediate(() => {
      this.settleCheck = false;
      if (this.inbox.length > 0 || this.consumerHolding || this.busyHandlers > 0 || this.sendsPending) return;
      this.releaseHeldClose();
    });
  }

  private releaseHeldClose(): void {
    clearTimeout(this.settleTimer);
    if (this.finished || !this.proto.closeHeld) return;
    this.proto.releaseClose();
    this.handleEvents();
    this.afterCloseSent();
    this.endAfterPeer();
  }

  /** Applies rateLimit to a received message; false when it is not to be delivered. */
  private withinRateLimit(msg: Message): boolean {
    if (this.rateLimiter!.take(msg.size)) return true;
    if (this.opts.rateLimit?.action === 'drop') {
      this.log.debug({ size: msg.size }, 'message dropped: rate limit');
      this.emit('ratelimit', msg);
      return false;
    }
    this.log.info({ size: msg.size }, 'rate limit exceeded: closing with 1008');
    this.proto.fail(new WebSocketError(CloseCode.POLICY_VIOLATION, 'Rate limit exceeded'), {
      holdClose: true,
    });
    return false;
  }

  private deliver(msg: Message): void {
    if (this.listenerCount('message') > 0) {
      this.emitMessage(msg);
      return;
    }
    const waiter = this.waiters?.shift();
    if (waiter !== undefined) {
      this.consumerHolding = true;
      waiter(msg);
      return;
    }
    if (this.proto.closeSent !== undefined) {
      // Closing: keep reading so the peer's Close gets through; the queue stays bounded.
      if (this.inbox.length >= this.opts.maxQueuedMessages) {
        this.log.debug({ size: msg.size }, 'message dropped: received after our Close with the queue full');
        return;
      }
      this.inbox.push(msg);
      return;
    }
    this.inbox.push(msg);
    if (this.inbox.length >= this.opts.maxQueuedMessages) this.pauseReading(PauseReason.INBOX);
  }

  private emitMessage(msg: Message): void {
    try {
      this.emit('message', msg);
    } catch (err) {
      this.handlerFailed(err);
    }
  }

  private flushInboxToListeners(): void {
    while (this.inbox.length > 0 && this.listenerCount('message') > 0) {
      this.emitMessage(this.inbox.shift()!);
    }
    this.afterInboxShift();
  }

  private afterInboxShift(): void {
    if (this.inbox.length < Math.ceil(this.opts.maxQueuedMessages / 2)) this.resumeReading(PauseReason.INBOX);
  }

  private wakeWaiters(): void {
    const waiters = this.waiters;
    if (waiters === undefined || this.inbox.length > 0) return;
    this.waiters = undefined;
    for (const w of waiters) w(null);
  }

  private onPong(data: Buffer): void {
    this.emit('pong', data);
    const pending = this.pendingPings;
    const key = data.toString('latin1');
    if (pending === undefined || !pending.has(key)) return;
    // RFC 6455 §5.5.3: a Pong may answer only the latest Ping; it acknowledges earlier ones.
    const now = performance.now();
    for (const [k, ping] of pending) {
      pending.delete(k);
      const rtt = now - ping.start;
      ping.resolve(rtt);
      if (k === key) {
        this.rtt = rtt;
        break;
      }
    }
    if (pending.size === 0) this.pendingPings = undefined; // most of the time: no Map kept
  }

  private pauseReading(reason: PauseReason): void {
    if ((this.pausedFor & reason) !== 0) return;
    this.pausedFor |= reason;
    this.socket.pause();
  }

  private resumeReading(reason: PauseReason): void {
    if ((this.pausedFor & reason) === 0) return;
    this.pausedFor &= ~reason;
    if (this.pausedFor !== 0 || this.finished) return;
    this.socket.resume();
    queueMicrotask(() => this.processInbound());
  }

  // ---- internals: outbound -------------------------------------------------------------

  /** Sends are being processed or waiting in the queue (later data must go after them). */
  private get sendsPending(): boolean {
    return this.sending || (this.sendQueue !== undefined && this.sendQueue.length > 0);
  }

  private async pumpSends(): Promise<void> {
    this.sending = true;
    try {
      // finish() drops the queue (sets it undefined) while a compression is awaited.
      for (let item = this.sendQueue?.[0]; item !== undefined; item = this.sendQueue?.[0]) {
        if (item.kind === 'close') {
          this.sendQueue?.shift();
          if (!this.finished && !this.proto.closeSent) {
            this.proto.close(item.code, item.reason);
            this.afterCloseSent();
          }
          continue;
        }
        if (item.kind === 'encoded') {
          this.sendQueue?.shift();
          this.queuedBytes -= item.bytes.length;
          this.publishedWaiting -= item.bytes.length;
          if (this.proto.sendingFragments) {
            this.holdFrame(item.bytes);
          } else if (!this.finished && !this.proto.closeSent && this.socket.writable) {
            this.writeToSocket([item.bytes]).catch(noop);
          }
          continue;
        }
        try {
          let payload = item.payload;
          if (item.compress && this.compressor !== undefined) {
            // RFC 7692 §7.2.1; RSV1 goes on the first frame only (Protocol.send).
            payload = await this.compressor.compress(item.payload, item.fin);
          }
          // finish() may have emptied the queue (and zeroed the count) meanwhile.
          if (this.sendQueue?.[0] === item) {
            this.sendQueue.shift();
            this.queuedBytes -= item.payload.length;
          }
          if (this.finished || this.proto.closeSent) throw notOpen(this.proto.state);
          this.proto.send(item.opcode, payload, { fin: item.fin, compressed: item.compress });
          this.flush().then(item.resolve, item.reject);
          if (item.fin) this.releaseHeldFrames();
        } catch (err) {
          if (this.sendQueue?.[0] === item) {
            this.sendQueue.shift();
            this.queuedBytes -= item.payload.length;
          }
          item.reject(err instanceof Error ? err : new Error(String(err)));
        }
      }
    } finally {
      this.sending = false;
    }
    this.releaseHeldFrames();
    const idle = this.onSendsIdle;
    this.onSendsIdle = undefined;
    idle?.();
    this.checkSettled();
    this.endAfterPeer();
  }

  /** Writes what the protocol queued. Resolves when handed over (after 'drain' if needed). */
  private flush(): Promise<void> {
    const out = this.proto.takeOutput();
    if (out.length === 0) return Promise.resolve();
    return this.writeToSocket(out);
  }

  /** flush() for callers that don't wait: no promise unless there is something to write. */
  private flushQuietly(): void {
    const out = this.proto.takeOutput();
    if (out.length > 0) this.writeToSocket(out).catch(noop);
  }

  private writeToSocket(buffers: Buffer[], written?: () => void): Promise<void> {
    const socket = this.socket;
    if (socket.destroyed || !socket.writable) return rejected(notOpen(this.proto.state));
    // Many small writes in one tick leave in one syscall (writev on uncork).
    if (!this.corked) {
      this.corked = true;
      this.tickBacklog = socket.writableLength;
      socket.cork();
      process.nextTick(() => {
        this.corked = false;
        this.pongThisTick = false;
        socket.uncork();
      });
    }
    let ok = true;
    const last = buffers.length - 1;
    for (let i = 0; i <= last; i++)
      ok =
        written !== undefined && i === last ? socket.write(buffers[i]!, written) : socket.write(buffers[i]!);
    this.checkBackpressure();
    if (ok) return Promise.resolve();
    return new Promise((resolve) => {
      this.drainWaiters ??= [];
      this.drainWaiters.push(resolve);
    });
  }

  private onDrain(): void {
    this.backpressureReported = false;
    const waiters = this.drainWaiters;
    if (waiters === undefined) return;
    this.drainWaiters = undefined;
    for (const w of waiters) w();
  }

  /**
   * A slow consumer leaves earlier data unread: what the socket still buffered when this
   * tick's writes began counts against maxBufferedAmount, and so do published frames
   * waiting in our queues (behind sends, or behind an open fragmented send), which no
   * caller awaits. This tick's own writes and sends waiting for compression don't, so
   * neither one large message nor a burst of sends is penalized.
   */
  private checkBackpressure(): void {
    if (this.backpressureReported) return;
    const socketBacklog = this.corked ? this.tickBacklog : this.socket.writableLength;
    if (socketBacklog + this.publishedWaiting <= this.opts.maxBufferedAmount) return;
    this.backpressureReported = true;
    if (this.opts.onBackpressure) {
      this.opts.onBackpressure(this);
      return;
    }
    this.log.warn({ bufferedAmount: this.bufferedAmount }, 'slow consumer: closing with 1008');
    // A Close held after a violation goes out now (with its own code): the socket ends below.
    if (this.proto.closeHeld) this.releaseHeldClose();
    // The Close 1008 goes out behind the queued data: a peer that reads again before
    // closeTimeout learns why it was closed; one that doesn't is destroyed by the timer.
    this.proto.fail(new WebSocketError(CloseCode.POLICY_VIOLATION, 'Slow consumer: too much data buffered'));
    this.handleEvents();
    this.releaseHeldFrames(); // dropped: our Close is out
    this.armCloseTimer();
    this.socket.end();
  }

  private syncOutboundHook(): void {
    const outbound = this.stageList.filter((s) => s.outbound !== undefined).reverse();
    this.proto.onOutboundFrame =
      outbound.length === 0
        ? undefined
        : (frame) => {
            let current: Frame | null = frame;
            for (const stage of outbound) {
              current = stage.outbound!(current, this);
              if (current === null) return null;
            }
            return current;
          };
  }

  // ---- internals: closing --------------------------------------------------------------

  private afterCloseSent(): void {
    this.flushQuietly();
    this.releaseHeldFrames(); // nothing more goes out after our Close: drop them
    // A consumer that stopped reading must not keep the peer's Close from being seen.
    this.resumeReading(PauseReason.INBOX);
    this.resumeReading(PauseReason.FRAMES);
    this.armCloseTimer();
    if (this.proto.shouldCloseTransport) this.closeTransport();
  }

  private closeTransport(): void {
    if (this.finished) return;
    const socket = this.socket;
    if (!socket.writableEnded) socket.end();
    this.armCloseTimer();
  }

  private armCloseTimer(): void {
    if (this.closeTimer !== undefined || this.finished) return;
    this.closeTimer = setTimeout(() => {
      this.log.debug({ closeTimeout: this.opts.closeTimeout }, 'close timeout: destroying the socket');
      this.socket.destroy();
      this.finish();
    }, this.opts.closeTimeout);
  }

  /**
   * The idle checks of all connections with the same connectionTimeout share one timer
   * (a TimerWheel): a silent connection is closed between connectionTimeout and
   * connectionTimeout + one slot (1/16 of it, at most 1 s) after the last bytes arrived.
   */
  private static readonly idleWheels = new Map<number, TimerWheel<WebSocket>>();

  private static idleWheel(timeout: number): TimerWheel<WebSocket> {
    let wheel = WebSocket.idleWheels.get(timeout);
    if (wheel === undefined) {
      wheel = new TimerWheel<WebSocket>(timeout, (ws) => {
        ws.checkIdle();
        return false; // checkIdle schedules the next check itself
      });
      WebSocket.idleWheels.set(timeout, wheel);
    }
    return wheel;
  }

  private armIdleTimer(): void {
    const timeout = this.opts.connectionTimeout;
    if (timeout > 0) WebSocket.idleWheel(timeout).schedule(this);
  }

  private checkIdle(): void {
    if (this.finished) return;
    const timeout = this.opts.connectionTimeout;
    // While we don't read (backpressure), the peer's silence can't be observed.
    if (this.pausedFor !== 0) this.lastActivity = Date.now();
    const idle = Date.now() - this.lastActivity;
    if (idle < timeout) {
      WebSocket.idleWheel(timeout).schedule(this, timeout - idle);
      return;
    }
    this.log.info({ idle }, 'connection timeout: nothing received');
    if (this.proto.closeSent) {
      this.socket.destroy();
      this.finish();
    } else {
      this.close(CloseCode.GOING_AWAY, 'connection timeout').catch(() => {});
    }
  }

  private onEnd(): void {
    // The peer closed its side (RFC 6455 §7.1.1: the TCP close follows the Close frames).
    // Ours ends once what it sent is handled: a message still inflating, a deferred
    // Close and replies still being compressed go out first (bounded by closeTimeout).
    this.peerEnded = true;
    this.armCloseTimer();
    this.endAfterPeer();
  }

  private endAfterPeer(): void {
    if (!this.peerEnded || this.finished || this.socket.writableEnded) return;
    if (!this.inboundDrained || this.inflating || this.deferredClose !== undefined) return;
    if (this.proto.closeHeld) return;
    if (this.sendsPending) return;
    this.socket.end();
  }

  private onSocketError(err: Error): void {
    this.log.debug({ err: err.message }, 'socket error');
    if (this.opts.propagateCommonErrors) this.emitError(err);
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.proto.connectionLost();
    if (this.opts.connectionTimeout > 0) WebSocket.idleWheel(this.opts.connectionTimeout).cancel(this);
    clearTimeout(this.closeTimer);
    clearTimeout(this.settleTimer);
    for (const stage of this.stageList) stage.detach?.(this);
    this.compressor?.close();
    if (!this.socket.destroyed) this.socket.destroy();

    // The connection ended while the peer's Close waited: it still counts as received.
    if (this.deferredClose !== undefined) this.proto.receiveFrame(this.deferredClose);
    const received = this.proto.closeReceived;
    const info: CloseInfo = {
      code: received?.code ?? CloseCode.ABNORMAL_CLOSURE,
      reason: received?.reason ?? '',
      wasClean: received !== undefined && this.proto.closeSent !== undefined,
    };
    const closedErr = notOpen(ReadyState.CLOSED);
    const pings = this.pendingPings;
    this.pendingPings = undefined;
    if (pings !== undefined) for (const ping of pings.values()) ping.reject(closedErr);
    const queue = this.sendQueue;
    this.sendQueue = undefined;
    if (queue !== undefined) for (const item of queue) if (item.kind === 'data') item.reject(closedErr);
    this.queuedBytes = 0;
    this.publishedWaiting = 0;
    this.heldFrames = undefined;
    this.onDrain();
    if (this.topicSet !== undefined) for (const topic of this.topicSet) this.hub?.unsubscribe(this, topic);
    this.hub?.connectionClosed?.(this);
    this.wakeWaiters();
    if (this.frameTaps !== undefined) for (const tap of this.frameTaps) tap.wake?.();
    this.log.debug(info, 'connection closed');
    this.closeInfo = info;
    this.resolveClosed?.(info);
    this.resolveClosed = undefined;
    try {
      this.emit('close', info.code, info.reason);
    } catch (err) {
      // A throwing 'close' listener must not escape into a socket or timer callback.
      this.log.error({ err }, "a 'close' listener threw");
    }
  }

  // ---- internals: errors ---------------------------------------------------------------

  /** A user handler failed: close with 1011 and report it. */
  handlerFailed(err: unknown): void {
    this.log.error({ err }, 'handler error: closing with 1011');
    this.emitError(err instanceof Error ? err : new Error(String(err)));
    if (!this.proto.closeSent && !this.finished) {
      this.close(CloseCode.INTERNAL_SERVER_ERROR, 'Internal error').catch(() => {});
    }
  }

  private internalError(err: unknown): void {
    this.log.error({ err }, 'internal error');
    this.proto.fail(new WebSocketError(CloseCode.INTERNAL_SERVER_ERROR, 'Internal error'));
    this.handleEvents();
  }

  private emitError(err: Error): void {
    // Never throw from an 'error' nobody listens to.
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }

  override [EventEmitter.captureRejectionSymbol](err: unknown): void {
    this.handlerFailed(err);
  }
}
