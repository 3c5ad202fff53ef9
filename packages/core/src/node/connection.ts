import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { CloseCode } from '../protocol/close-codes.js';
import { WebSocketError } from '../protocol/errors.js';
import { type DataOpcode, type Frame, Opcode } from '../protocol/frame.js';
import { Protocol, type ProtocolEvent, ReadyState, type Side } from '../protocol/protocol.js';
import type { MessageCompressor } from './compressor.js';
import { FrameTaps } from './frame-taps.js';
import { IdleTimer } from './idle-timer.js';
import { Inbox } from './inbox.js';
import { type Logger, silentLogger } from './logger.js';
import { type Data, Message, toPayload } from './message.js';
import { PingTracker } from './ping-tracker.js';
import { notOpen, quiet, rejected } from './promises.js';
import { RateLimiter, type RateLimitOptions } from './rate-limit.js';
import { SendQueue } from './send-queue.js';
import { type Clock, systemClock } from './timer-wheel.js';

export type { Data } from './message.js';

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

/**
 * A frame interceptor. `inbound` sees each frame received before the connection acts
 * on it, `outbound` each frame before it is encoded; both return the frame (possibly a
 * changed one), or null to swallow it. Stages run in the order they were added
 * (outbound ones in reverse), and must not block.
 */
export interface Stage {
  readonly name: string;
  inbound?(frame: Frame, ws: WebSocket): Frame | null;
  outbound?(frame: Frame, ws: WebSocket): Frame | null;
  /** Called when the stage is added to an open connection. */
  attach?(ws: WebSocket): void;
  /** Called when the stage is removed or the connection closes. */
  detach?(ws: WebSocket): void;
}

/** The server a server-side connection belongs to: topic subscriptions, and its end. */
export interface TopicHub {
  subscribe(ws: WebSocket, topic: string): void;
  unsubscribe(ws: WebSocket, topic: string): void;
  /** Called once when the connection is closed (before its 'close' event). */
  connectionClosed?(ws: WebSocket): void;
}

/** A connection's options with every default applied (see options.ts). */
export interface ResolvedConnectionOptions {
  pingInterval: number;
  connectionTimeout: number;
  closeTimeout: number;
  maxFrameSize: number;
  maxMessageSize: number;
  maxBufferedAmount: number;
  onBackpressure: ((ws: WebSocket) => void) | undefined;
  maxQueuedMessages: number;
  maxFragments: number;
  rateLimit: RateLimitOptions | undefined;
  dropIncomingPings: boolean;
  propagateCommonErrors: boolean;
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
  /** Stages attached before anything is read (auto-pong, auto-ping). */
  stages?: readonly Stage[];
  /** Timers and time; the system's by default. */
  clock?: Clock;
  /** How the connection arrived. Default 'http/1.1'. */
  transport?: Transport;
}

/** How a connection arrived: an HTTP/1.1 Upgrade, or an HTTP/2 stream (RFC 8441). */
export type Transport = 'http/1.1' | 'h2';

/** Why the socket is not being read (flags: several can hold at once). */
const Paused = { INBOX: 1, FRAMES: 2, INFLATE: 4 } as const;

const EMPTY = Buffer.alloc(0);

/** Where a socket's shared listeners find their connection. */
const kConnection = Symbol('wskit.connection');
type OwnedSocket = Duplex & { [kConnection]: WebSocket };

/**
 * A WebSocket connection on a Node socket, either side: the I/O half of a sans-I/O
 * `Protocol`, which decides everything about frames and closing. This class moves bytes
 * between the two, runs the timers and the message APIs (`receive()`, `for await`,
 * 'message' events); the Inbox holds received messages, the SendQueue what is on its way
 * out.
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
  /** How the connection arrived: 'http/1.1' (Upgrade) or 'h2' (an HTTP/2 stream, RFC 8441). */
  readonly transport: Transport;
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
  private readonly clock: Clock;
  private readonly compressor: MessageCompressor | undefined;
  private readonly hub: TopicHub | undefined;
  private readonly sender: SendQueue<WebSocket>;
  private readonly rateLimiter: RateLimiter | undefined;
  /** Replaced, never changed in place (`stages` hands it out). */
  private stageList: readonly Stage[] = [];
  // Parts that most connections never use are created on first use.
  private topicSet: Set<string> | undefined;
  private inboxState: Inbox | undefined;
  private taps: FrameTaps | undefined;
  private pings: PingTracker | undefined;
  /** Why reading is paused: Paused flags; reading resumes once none is left. */
  private pausedFor = 0;
  private processing = false;
  /** The end of the closing handshake is being waited for (destroys the socket when due). */
  private closeTimer: unknown;
  /** Bounds the wait of a held Close (closeWhenSettled); set while one is held. */
  private settleTimer: unknown;
  private settleCheck = false;
  private closedPromise: Promise<CloseInfo> | undefined;
  private resolveClosed: ((info: CloseInfo) => void) | undefined;
  private closeInfo: CloseInfo | undefined;
  private finished = false;
  /** When bytes last arrived (connectionTimeout). @internal */
  lastActivity: number;

  constructor(init: ConnectionInit) {
    super({ captureRejections: true });
    this.isServer = init.side === 'server';
    this.socket = init.socket;
    this.opts = init.options;
    this.log = init.logger ?? silentLogger;
    this.clock = init.clock ?? systemClock;
    this.compressor = init.compressor;
    this.hub = init.hub;
    this.protocol = init.protocol ?? '';
    this.extensions = init.extensions ?? '';
    this.path = init.path ?? '/';
    this.transport = init.transport ?? 'http/1.1';
    const s = init.socket as Partial<Socket>;
    this.remoteAddress = s.remoteAddress;
    this.remotePort = s.remotePort;
    this.localAddress = s.localAddress;
    this.localPort = s.localPort;
    this.lastActivity = this.clock.now();
    this.proto = new Protocol({
      side: init.side,
      maxFrameSize: this.opts.maxFrameSize,
      maxMessageSize: this.opts.maxMessageSize,
      maxFragments: this.opts.maxFragments,
      compression: init.compressor !== undefined,
      // Replies to the messages received before a violation, or right before the peer's
      // Close, go out before our Close.
      holdCloseOnFailure: true,
      holdCloseReply: true,
    });
    if (init.compressor !== undefined) this.proto.inflater = this;
    this.sender = new SendQueue<WebSocket>({
      socket: this.socket,
      protocol: this.proto,
      compressor: init.compressor,
      host: this,
      log: this.log,
      maxBufferedAmount: this.opts.maxBufferedAmount,
      onBackpressure: this.opts.onBackpressure,
      owner: this,
    });
    if (this.opts.rateLimit !== undefined) this.rateLimiter = new RateLimiter(this.opts.rateLimit);

    const socket = this.socket as Socket & OwnedSocket;
    if (typeof socket.setNoDelay === 'function') socket.setNoDelay(true);
    if (typeof socket.setTimeout === 'function') socket.setTimeout(0);
    // The listeners are shared by every connection (no closures per connection).
    socket[kConnection] = this;
    for (const [event, listener] of WebSocket.socketListeners) socket.on(event, listener);
    // The peer may have ended its side before anyone listened (e.g. while an async
    // acceptConnection ran): 'end' won't fire again, so act on it now.
    if ((socket as Partial<Socket>).readableEnded === true) queueMicrotask(() => this.onEnd());

    this.on('newListener', this.onNewListener);
    for (const stage of init.stages ?? []) this.use(stage);
    IdleTimer.start(this, this.opts.connectionTimeout, this.clock);
    if (init.head && init.head.length > 0) this.onData(init.head);
  }

  // ---- introspection -------------------------------------------------------------------

  get readyState(): ReadyState {
    return this.proto.state;
  }

  /** Settles when the TCP connection is gone, with how it closed. */
  get closed(): Promise<CloseInfo> {
    this.closedPromise ??=
      this.closeInfo !== undefined
        ? Promise.resolve(this.closeInfo)
        : new Promise((resolve) => {
            this.resolveClosed = resolve;
          });
    return this.closedPromise;
  }

  /** Bytes queued for the peer and not yet written to the network (see SendQueue). */
  get bufferedAmount(): number {
    return this.sender.bufferedAmount;
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

  /** The connection is gone (its 'close' event fired or is firing). @internal */
  get ended(): boolean {
    return this.finished;
  }

  // ---- sending -------------------------------------------------------------------------

  /**
   * Sends a message, or a fragment with `fin: false`. Resolves when the bytes are handed
   * to the socket — after its 'drain' when the socket's buffer is full, so a loop of
   * `await ws.send()` follows the peer's pace.
   */
  send(data: Data, options: SendOptions = {}): Promise<void> {
    if (!this.proto.canSendData) return rejected(notOpen(this.readyState));
    try {
      const payload = toPayload(data);
      const opcode: DataOpcode = (options.binary ?? typeof data !== 'string') ? Opcode.BINARY : Opcode.TEXT;
      // RFC 7692 §6: a message is compressed as a whole, as decided for its first fragment.
      const compress = this.proto.sendingFragments
        ? this.proto.sendingCompressed
        : this.compressor !== undefined &&
          options.compress !== false &&
          payload.length >= this.compressor.threshold;
      return this.sender.send(opcode, payload, options.fin ?? true, compress);
    } catch (err) {
      return rejected(err);
    }
  }

  /** Sends a Ping; resolves with the round-trip time in ms when its Pong arrives. */
  ping(data?: Data): Promise<number> {
    if (!this.proto.canSendControl || this.finished) return rejected(notOpen(this.readyState));
    this.pings ??= new PingTracker();
    try {
      const payload = data === undefined ? this.pings.nextPayload() : toPayload(data);
      if (this.pings.isPending(payload)) throw new Error('A ping with this payload is already pending');
      this.proto.ping(payload);
      const answered = quiet(this.pings.track(payload, this.clock));
      this.sender.flushQuietly();
      return answered;
    } catch (err) {
      return rejected(err);
    }
  }

  /** Sends a Pong (auto-pong answers each Ping with one); coalesced for a peer that does not read. */
  pong(data: Data = EMPTY): void {
    this.sender.pong(toPayload(data));
  }

  /**
   * Starts the closing handshake, after the messages already accepted by send(). Resolves
   * when the connection is closed; the socket is destroyed after closeTimeout if the peer
   * does not complete the handshake.
   */
  close(code: number = CloseCode.NORMAL_CLOSURE, reason = ''): Promise<CloseInfo> {
    if (this.finished) return this.closed;
    try {
      this.proto.close(code, reason);
    } catch (err) {
      return rejected(err);
    }
    this.sender.flushQuietly();
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
    const msg = this.inbox.take();
    if (msg !== undefined) return Promise.resolve(msg);
    const closing = this.proto.closeReceived !== undefined && !this.proto.closeReplyPending;
    if (this.finished || closing || this.proto.failure) {
      this.checkSettled();
      return Promise.resolve(null);
    }
    return this.inbox.wait();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Message, void, undefined> {
    for (let msg = await this.receive(); msg !== null; msg = await this.receive()) yield msg;
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
    for (let msg = await this.receive(); msg !== null; msg = await this.receive()) {
      const m = msg;
      this.inbox.handlerStarted();
      const task: Promise<void> = Promise.resolve()
        .then(() => handler(m, this))
        .then(
          () => {},
          (err: unknown) => this.handlerFailed(err),
        )
        .finally(() => {
          inflight.delete(task);
          this.inbox.handlerEnded();
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
    return this.sender.flush();
  }

  /** Every inbound frame, after the inbound stages, as it arrives. */
  frames(): AsyncIterable<Frame> {
    this.taps ??= new FrameTaps({
      pauseReading: () => this.pauseReading(Paused.FRAMES),
      resumeReading: () => this.resumeReading(Paused.FRAMES),
      get ended(): boolean {
        return self.finished;
      },
    });
    const self = this;
    this.syncStageHooks();
    return this.taps.reader();
  }

  /** Adds a frame stage (after the existing ones). Replaces a stage of the same name. */
  use(stage: Stage): this {
    if (this.stageList.some((s) => s.name === stage.name)) this.unuse(stage.name);
    this.stageList = this.stageList.concat([stage]); // concat: no spare capacity
    this.syncStageHooks();
    if (!this.finished) stage.attach?.(this);
    return this;
  }

  /** Removes the stage with this name (e.g. 'auto-pong', 'auto-ping'). */
  unuse(name: string): boolean {
    const stage = this.stageList.find((s) => s.name === name);
    if (stage === undefined) return false;
    this.stageList = this.stageList.filter((s) => s !== stage);
    this.syncStageHooks();
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
   * Writes a complete frame encoded once for many connections (publish), in order with
   * the sends already accepted. Returns false when the connection no longer takes data.
   * @internal
   */
  sendEncoded(bytes: Buffer): boolean {
    return this.sender.publish(bytes);
  }

  // ---- internals: inbound --------------------------------------------------------------

  private get inbox(): Inbox {
    this.inboxState ??= new Inbox(this.opts.maxQueuedMessages, {
      pauseReading: () => this.pauseReading(Paused.INBOX),
      resumeReading: () => this.resumeReading(Paused.INBOX),
    });
    return this.inboxState;
  }

  private onNewListener(event: string | symbol): void {
    if (event === 'message' && (this.inboxState?.size ?? 0) > 0) queueMicrotask(() => this.flushInbox());
  }

  private onData(chunk: Buffer): void {
    this.lastActivity = this.clock.now();
    this.proto.receiveData(chunk);
    this.processInbound();
  }

  /** Takes the protocol's events while reading is not paused, and writes its output. */
  private processInbound(): void {
    if (this.processing) return;
    this.processing = true;
    try {
      while (this.pausedFor === 0 && !this.finished) {
        const event = this.proto.nextEvent();
        if (event === undefined) break;
        this.handleEvent(event);
      }
    } catch (err) {
      this.log.error({ err }, 'internal error');
      this.proto.fail(new WebSocketError(CloseCode.INTERNAL_SERVER_ERROR, 'Internal error'));
    } finally {
      this.processing = false;
    }
    if (!this.finished) this.sender.flushQuietly();
  }

  private handleEvent(event: ProtocolEvent): void {
    switch (event.type) {
      case 'message': {
        const msg = new Message(event.opcode === Opcode.TEXT ? 'text' : 'binary', event.data);
        if (this.rateLimiter === undefined || this.withinRateLimit(msg)) this.deliver(msg);
        return;
      }
      case 'ping':
        this.emit('ping', event.data);
        return;
      case 'pong': {
        this.emit('pong', event.data);
        const rtt = this.pings?.answer(event.data, this.clock);
        if (rtt !== undefined) this.rtt = rtt;
        return;
      }
      case 'close':
        this.log.debug({ code: event.code, reason: event.reason }, 'close frame received');
        this.armCloseTimer();
        // Consumers woken by the messages before it get one event-loop turn to reply;
        // the protocol then sends our Close behind their replies.
        setImmediate(() => {
          this.proto.releaseCloseReply();
          if (!this.finished) this.sender.flushQuietly();
          this.inboxState?.end();
        });
        return;
      case 'error': {
        const err = event.error;
        this.log.debug({ code: err.code, err: err.message }, 'protocol error');
        if (this.opts.propagateCommonErrors) this.emitError(err);
        this.inboxState?.end();
        // A held Close: closeWhenSettled bounds the wait; the close timer starts once it is out.
        if (this.proto.closeHeld) this.closeWhenSettled();
        else this.armCloseTimer();
        return;
      }
    }
  }

  /** The protocol's Inflater: permessage-deflate through the connection's zlib contexts. @internal */
  inflate(payloads: Buffer[], fin: boolean, limit: number): void {
    const compressor = this.compressor as MessageCompressor;
    // Bytes arriving meanwhile would pile up in the parser: stop reading until done.
    this.pauseReading(Paused.INFLATE);
    const data = payloads.length === 1 ? (payloads[0] as Buffer) : payloads;
    compressor
      .decompress(data, fin, limit, (chunk) => {
        this.proto.receiveInflated(chunk, false);
        if (!this.proto.inflateInProgress) this.resumeReading(Paused.INFLATE); // failed: report it now
      })
      .then(
        () => this.proto.receiveInflated(EMPTY, true),
        (err: unknown) =>
          this.proto.inflateFailed(
            err instanceof WebSocketError ? err : String((err as Error)?.message ?? err),
          ),
      )
      .then(() => {
        if (this.finished) return;
        this.resumeReading(Paused.INFLATE);
        this.processInbound();
      })
      .catch((err: unknown) => this.handlerFailed(err));
  }

  /** Applies rateLimit to a received message; false when it is not to be delivered. */
  private withinRateLimit(msg: Message): boolean {
    if (this.rateLimiter?.take(msg.size) !== false) return true;
    if (this.opts.rateLimit?.action === 'drop') {
      this.log.debug({ size: msg.size }, 'message dropped: rate limit');
      this.emit('ratelimit', msg);
      return false;
    }
    this.log.info({ size: msg.size }, 'rate limit exceeded: closing with 1008');
    const err = new WebSocketError(CloseCode.POLICY_VIOLATION, 'Rate limit exceeded');
    this.proto.fail(err, { holdClose: true });
    return false;
  }

  private deliver(msg: Message): void {
    if (this.listenerCount('message') > 0) {
      this.emitMessage(msg);
      return;
    }
    // Closing: keep reading so the peer's Close gets through; the queue stays bounded.
    if (!this.inbox.push(msg, this.proto.closeSent !== undefined))
      this.log.debug({ size: msg.size }, 'message dropped: received after our Close with the queue full');
  }

  private emitMessage(msg: Message): void {
    try {
      this.emit('message', msg);
    } catch (err) {
      this.handlerFailed(err);
    }
  }

  private flushInbox(): void {
    for (let msg = this.inbox.shift(); msg !== undefined; msg = this.inbox.shift()) {
      this.emitMessage(msg);
      if (this.listenerCount('message') === 0) break;
    }
  }

  private pauseReading(reason: number): void {
    if ((this.pausedFor & reason) !== 0) return;
    this.pausedFor |= reason;
    this.socket.pause();
  }

  private resumeReading(reason: number): void {
    if ((this.pausedFor & reason) === 0) return;
    this.pausedFor &= ~reason;
    if (this.pausedFor !== 0 || this.finished) return;
    this.socket.resume();
    queueMicrotask(() => this.processInbound());
  }

  /** Points the protocol's stage hooks at the stages (and the frames() readers). */
  private syncStageHooks(): void {
    const inbound = this.stageList.filter((s) => s.inbound !== undefined);
    const outbound = this.stageList.filter((s) => s.outbound !== undefined).reverse();
    this.proto.onInboundFrame =
      inbound.length === 0 && this.taps === undefined
        ? undefined
        : (frame) => this.runInbound(inbound, frame);
    this.proto.onOutboundFrame =
      outbound.length === 0
        ? undefined
        : (frame) => {
            let current: Frame | null = frame;
            for (const stage of outbound)
              if (current !== null) current = stage.outbound?.(current, this) ?? null;
            return current;
          };
  }

  private runInbound(inbound: readonly Stage[], frame: Frame): Frame | null {
    let current: Frame | null = frame;
    // A stage that swallows a frame hides it from later stages, frames() and handlers.
    for (const stage of inbound) if (current !== null) current = stage.inbound?.(current, this) ?? null;
    if (current !== null) this.taps?.push(current, this.proto.closeSent !== undefined);
    return current;
  }

  // ---- internals: closing (SendQueueHost) ----------------------------------------------

  /** Our Close is out: the peer's must be read whatever the consumers do. @internal */
  closeSent(): void {
    this.inboxState?.release();
    this.taps?.release();
    this.armCloseTimer();
  }

  /** @internal */
  streamEnded(): void {
    this.armCloseTimer();
  }

  /** @internal */
  protocolChanged(): void {
    queueMicrotask(() => this.processInbound());
  }

  /** @internal */
  idle(): void {
    this.checkSettled();
  }

  /**
   * The peer broke the protocol after messages that arrived in full: those are still
   * handled, and the replies to them go out before our Close (held by the protocol).
   * The Close is released once the consumers are done with them and sends are out, one
   * more event-loop turn later (for 'message' listeners), or after closeTimeout.
   */
  private closeWhenSettled(): void {
    if (this.settleTimer !== undefined) return;
    this.settleTimer = this.clock.setTimer(() => this.releaseHeldClose(), this.opts.closeTimeout);
    this.checkSettled();
  }

  private checkSettled(): void {
    if (this.settleTimer === undefined || this.settleCheck) return;
    const settled = () => (this.inboxState?.settled ?? true) && !this.sender.pending;
    if (!settled()) return;
    this.settleCheck = true;
    setImmediate(() => {
      this.settleCheck = false;
      if (settled()) this.releaseHeldClose();
    });
  }

  private releaseHeldClose(): void {
    this.clock.clearTimer(this.settleTimer);
    if (this.finished || !this.proto.closeHeld) return;
    this.proto.releaseClose();
    this.sender.flushQuietly();
  }

  private armCloseTimer(): void {
    if (this.closeTimer !== undefined || this.finished) return;
    this.closeTimer = this.clock.setTimer(() => {
      this.log.debug({ closeTimeout: this.opts.closeTimeout }, 'close timeout: destroying the socket');
      this.terminate();
    }, this.opts.closeTimeout);
  }

  /** connectionTimeout passed without a byte from the peer (see IdleTimer). @internal */
  idleTimeout(idle: number): void {
    this.log.info({ idle }, 'connection timeout: nothing received');
    if (this.proto.closeSent) this.terminate();
    else this.close(CloseCode.GOING_AWAY, 'connection timeout').catch(() => {});
  }

  /** Reading is paused (backpressure): the peer's silence can't be observed. @internal */
  get readingPaused(): boolean {
    return this.pausedFor !== 0;
  }

  private onEnd(): void {
    // The peer ended its side; the protocol ends ours once what it sent is handled.
    this.proto.receiveEof();
    this.armCloseTimer();
    if (!this.finished) this.sender.flushQuietly();
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.proto.connectionLost();
    IdleTimer.stop(this, this.opts.connectionTimeout, this.clock);
    this.clock.clearTimer(this.closeTimer);
    this.clock.clearTimer(this.settleTimer);
    for (const stage of this.stageList) stage.detach?.(this);
    this.compressor?.close();
    if (!this.socket.destroyed) this.socket.destroy();

    const received = this.proto.closeReceived;
    const info: CloseInfo = {
      code: received?.code ?? CloseCode.ABNORMAL_CLOSURE,
      reason: received?.reason ?? '',
      wasClean: received !== undefined && this.proto.closeSent !== undefined,
    };
    const closedErr = notOpen(ReadyState.CLOSED);
    this.pings?.rejectAll(closedErr);
    this.sender.drop(closedErr);
    if (this.topicSet !== undefined) for (const topic of this.topicSet) this.hub?.unsubscribe(this, topic);
    this.hub?.connectionClosed?.(this);
    this.inboxState?.end();
    this.taps?.wakeAll();
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

  /** A user handler failed: close with 1011 and report it. @internal */
  handlerFailed(err: unknown): void {
    this.log.error({ err }, 'handler error: closing with 1011');
    this.emitError(err instanceof Error ? err : new Error(String(err)));
    if (!this.proto.closeSent && !this.finished) {
      this.close(CloseCode.INTERNAL_SERVER_ERROR, 'Internal error').catch(() => {});
    }
  }

  private emitError(err: Error): void {
    // Never throw from an 'error' nobody listens to.
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }

  override [EventEmitter.captureRejectionSymbol](err: unknown): void {
    this.handlerFailed(err);
  }

  /** The socket's listeners, shared by all connections (`this` is the socket). */
  private static readonly socketEvents = {
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
      const ws = this[kConnection];
      ws.log.debug({ err: err.message }, 'socket error');
      if (ws.opts.propagateCommonErrors) ws.emitError(err);
    },
    drain(this: OwnedSocket): void {
      this[kConnection].sender.drained();
    },
  };

  private static readonly socketListeners = Object.entries(WebSocket.socketEvents) as Array<
    [string, (this: OwnedSocket, ...args: unknown[]) => void]
  >;
}
