import type { Duplex } from 'node:stream';
import { CloseCode } from '../protocol/close-codes.js';
import { WebSocketError } from '../protocol/errors.js';
import { Opcode } from '../protocol/frame.js';
import { Protocol, type ProtocolEvent, ReadyState } from '../protocol/protocol.js';
import { ClosedSignal } from './closed-signal.js';
import { ClosingTimers } from './closing-timers.js';
import type { MessageCompressor } from './compressor.js';
import type { CloseInfo, ConnectionInitOf, ConnectionSettings } from './connection-types.js';
import * as diag from './diagnostics.js';
import { channels, type ObservedConnection, tracing } from './diagnostics.js';
import { protocolOptions } from './engine-options.js';
import { IdleTimer } from './idle-timer.js';
import { consumeInOrder, Inbox } from './inbox.js';
import { createInflater } from './inflater.js';
import { type Logger, silentLogger } from './logger.js';
import { type Data, Message, toPayload } from './message.js';
import { PingTracker } from './ping-tracker.js';
import { notOpen, quiet, rejected } from './promises.js';
import { RateLimiter } from './rate-limit.js';
import { SendQueue } from './send-queue.js';
import { bindSocket } from './socket-bridge.js';
import { StageRunner } from './stage-runner.js';
import { type Clock, systemClock } from './timer-wheel.js';

/** The public connection object a Link works for: its events, rtt and counters. */
export interface LinkOwner extends ObservedConnection {
  rtt: number | undefined;
  /** The connection closed (how, the code we sent, whether the peer's Close came); 'close' comes next. */
  linkClosed(info: CloseInfo, sentCode: number | undefined, receivedClose: boolean): void;
  listenerCount(event: string | symbol): number;
}

/** Why the socket is not being read (flags: several can hold at once). */
const Paused = { INBOX: 1, FRAMES: 2, INFLATE: 4 } as const;

/**
 * The machinery behind a WebSocket: moves bytes between its socket and its sans-I/O
 * `Protocol` (which decides everything about frames and closing), and runs the parts —
 * Inbox (received messages), SendQueue (what goes out), StageRunner (frame stages),
 * ClosingTimers, IdleTimer, PingTracker. `W` is the public object (WebSocket) whose
 * events it emits and which stages, hooks and the hub are given.
 */
export class Link<W extends LinkOwner> {
  readonly owner: W;
  readonly socket: Duplex;
  readonly proto: Protocol;
  readonly opts: ConnectionSettings<W>;
  readonly log: Logger;
  private readonly clock: Clock;
  readonly compressor: MessageCompressor | undefined;
  readonly sender: SendQueue<W>;
  readonly stageRunner: StageRunner<W>;
  private closingTimers: ClosingTimers | undefined;
  private readonly rateLimiter: RateLimiter | undefined;
  // Parts that most connections never use are created on first use.
  private inboxState: Inbox | undefined;
  private pings: PingTracker | undefined;
  /** Why reading is paused: Paused flags; reading resumes once none is left. */
  private pausedFor = 0;
  private processing = false;
  /** Compressed bytes of the message being received (diagnostics). */
  private compressedIn = 0;
  private closedSignal: ClosedSignal | undefined;
  private closeInfo: CloseInfo | undefined;
  /** The connection is gone. */
  finished = false;
  /** When bytes last arrived (connectionTimeout). */
  lastActivity: number;

  constructor(owner: W, init: ConnectionInitOf<W>) {
    this.owner = owner;
    this.socket = init.socket;
    this.opts = init.options;
    this.log = init.logger ?? silentLogger;
    this.clock = init.clock ?? systemClock;
    this.compressor = init.compressor;
    this.lastActivity = this.clock.now();
    this.proto = new Protocol(protocolOptions(this.opts, init.side, init.compressor !== undefined));
    if (init.compressor !== undefined)
      this.proto.inflater = createInflater(this.proto, init.compressor, this);
    this.sender = new SendQueue<W>(this);
    this.stageRunner = new StageRunner<W>(this, Paused.FRAMES);
    if (this.opts.rateLimit !== undefined) this.rateLimiter = new RateLimiter(this.opts.rateLimit);
    bindSocket(this.socket, this);
    if (init.stages !== undefined) this.stageRunner.start(init.stages);
  }

  /** Starts the idle timer and reads the bytes that came with the handshake. */
  start(head: Buffer | undefined): void {
    IdleTimer.start(this, this.opts.connectionTimeout, this.clock);
    if (head !== undefined && head.length > 0) this.socketData(head);
  }

  /** Settles when the TCP connection is gone, with how it closed. */
  get closed(): Promise<CloseInfo> {
    this.closedSignal ??= new ClosedSignal(this.closeInfo);
    return this.closedSignal.closed;
  }

  /** Sends a Ping; resolves with the round-trip time in ms when its Pong arrives. */
  ping(data?: Data): Promise<number> {
    if (!this.proto.canSendControl || this.finished) return rejected(notOpen(this.proto.state));
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

  /** Destroys the socket at once, without a closing handshake. */
  terminate(): void {
    this.socket.destroy();
    this.socketClosed();
  }

  // ---- receiving -----------------------------------------------------------------------

  /** The next message in order; null once the connection is closing and no message is left. */
  receive(): Promise<Message | null> {
    const msg = this.inbox.take();
    if (msg !== undefined) return Promise.resolve(msg);
    const closing = this.proto.closeReceived !== undefined && !this.proto.closeReplyPending;
    if (this.finished || closing || this.proto.failure) {
      this.closingTimers?.checkSettled();
      return Promise.resolve(null);
    }
    return this.inbox.wait();
  }

  /** consume(): see WebSocket.consume. */
  consume(handler: (msg: Message, ws: W) => unknown, concurrency: number): Promise<void> {
    return consumeInOrder(
      this.inbox,
      () => this.receive(),
      (msg) => diag.runHandler(this.owner, msg, handler),
      {
        concurrency,
        failed: (err) => this.handlerFailed(err),
        settled: () => this.closingTimers?.checkSettled(),
      },
    );
  }

  // ---- internals: inbound --------------------------------------------------------------

  private get inbox(): Inbox {
    this.inboxState ??= new Inbox(this.opts.maxQueuedMessages, this, Paused.INBOX);
    return this.inboxState;
  }

  /** A 'message' listener was added: it gets the queued messages. */
  newListener(event: string | symbol): void {
    if (event !== 'message' || (this.inboxState?.size ?? 0) === 0) return;
    queueMicrotask(() => {
      for (let msg = this.inbox.shift(); msg !== undefined; msg = this.inbox.shift()) {
        this.emitMessage(msg);
        if (this.owner.listenerCount('message') === 0) break;
      }
    });
  }

  /** Takes the protocol's events while reading is not paused, and writes its output. */
  private processInbound(): void {
    if (this.processing) return;
    this.processing = true;
    const batch = this.sender.beginBatch();
    try {
      try {
        for (let e = this.nextEvent(); e !== undefined; e = this.nextEvent()) this.handleEvent(e);
      } catch (err) {
        this.internalError(err);
      } finally {
        this.processing = false;
      }
      if (!this.finished) this.sender.flushQuietly();
    } finally {
      // No tick uncorks a batch: whatever escapes (a logger or onBackpressure that
      // throws), the socket must not stay corked.
      if (batch) this.sender.uncork();
    }
  }

  private nextEvent(): ProtocolEvent | undefined {
    return this.pausedFor === 0 && !this.finished ? this.proto.nextEvent() : undefined;
  }

  private handleEvent(event: ProtocolEvent): void {
    switch (event.type) {
      case 'message': {
        const msg = new Message(event.opcode === Opcode.TEXT ? 'text' : 'binary', event.data);
        diag.noteReceived(this.owner, msg, this.compressedIn);
        this.compressedIn = 0;
        if (this.rateLimiter === undefined || this.withinRateLimit(msg)) this.deliver(msg);
        return;
      }
      case 'ping':
        this.owner.emit('ping', event.data);
        return;
      case 'pong': {
        this.owner.emit('pong', event.data);
        const rtt = this.pings?.answer(event.data, this.clock);
        if (rtt === undefined) return;
        this.owner.rtt = rtt;
        if (channels.pingRtt.hasSubscribers) diag.publishPingRtt(this.owner, rtt);
        return;
      }
      case 'close':
        this.log.debug({ code: event.code, reason: event.reason }, 'close frame received');
        if (this.proto.closeSent === undefined) this.owner.peerClosedFirst = true;
        this.timers.armClose();
        // Consumers woken by the messages before it get one event-loop turn to reply;
        // the protocol then sends our Close behind their replies.
        setImmediate(() => {
          this.proto.releaseCloseReply();
          if (!this.finished) this.sender.flushQuietly();
          this.inboxState?.end();
        });
        return;
      case 'error':
        this.log.debug({ code: event.error.code, err: event.error.message }, 'protocol error');
        if (this.opts.propagateCommonErrors) this.emitError(event.error);
        if (channels.protocolError.hasSubscribers) diag.publishProtocolError(this.owner, event.error);
        this.inboxState?.end();
        // A held Close waits for the consumers; the close timer starts once it is out.
        if (this.proto.closeHeld) this.timers.waitForSettle();
        else this.timers.armClose();
        return;
    }
  }

  /** Applies rateLimit to a received message; false when it is not to be delivered. */
  private withinRateLimit(msg: Message): boolean {
    if (this.rateLimiter?.take(msg.size) !== false) return true;
    const drop = this.opts.rateLimit?.action === 'drop';
    this.log[drop ? 'debug' : 'info'](
      { size: msg.size },
      `rate limit exceeded: ${drop ? 'dropped' : 'closing'}`,
    );
    if (drop) this.owner.emit('ratelimit', msg);
    else
      this.proto.fail(new WebSocketError(CloseCode.POLICY_VIOLATION, 'Rate limit exceeded'), {
        holdClose: true,
      });
    return false;
  }

  /** Our own Close (timeouts, failed handlers), after the sends already accepted. */
  private startClosing(code: number, reason: string): void {
    this.proto.close(code, reason);
    this.sender.flushQuietly();
  }

  private deliver(msg: Message): void {
    if (this.owner.listenerCount('message') > 0) this.emitMessage(msg);
    // Closing: keep reading so the peer's Close gets through; the queue stays bounded.
    else if (!this.inbox.push(msg, this.proto.closeSent !== undefined))
      this.log.debug({ size: msg.size }, 'message dropped: received after our Close with the queue full');
  }

  private emitMessage(msg: Message): void {
    try {
      if (tracing.message.start.hasSubscribers) diag.traceListeners(this.owner, msg);
      else this.owner.emit('message', msg);
    } catch (err) {
      this.handlerFailed(err);
    }
  }

  /** Stops reading the socket for `reason` (a Paused flag). */
  pauseReading(reason: number): void {
    if ((this.pausedFor & reason) !== 0) return;
    this.pausedFor |= reason;
    this.socket.pause();
  }

  /** Reading goes on once no reason is left. */
  resumeReading(reason: number): void {
    if ((this.pausedFor & reason) === 0) return;
    this.pausedFor &= ~reason;
    if (this.pausedFor !== 0 || this.finished) return;
    this.socket.resume();
    queueMicrotask(() => this.processInbound());
  }

  /** The closing deadlines, created when closing starts. */
  private get timers(): ClosingTimers {
    this.closingTimers ??= new ClosingTimers(this, this.clock, this.opts.closeTimeout);
    return this.closingTimers;
  }

  // ---- internals: hooks of the parts (@internal, not part of the API) -------------------

  socketData(chunk: Buffer): void {
    this.lastActivity = this.clock.now();
    this.proto.receiveData(chunk);
    this.processInbound();
  }

  /** The peer ended its side; the protocol ends ours once what it sent is handled. */
  socketEnd(): void {
    this.proto.receiveEof();
    this.timers.armClose();
    if (!this.finished) this.sender.flushQuietly();
  }

  socketError(err: Error): void {
    this.log.debug({ err: err.message }, 'socket error');
    if (this.opts.propagateCommonErrors) this.emitError(err);
  }

  socketDrained(): void {
    this.sender.drained();
  }

  pauseForInflate(compressed: number): void {
    this.compressedIn += compressed;
    this.pauseReading(Paused.INFLATE);
  }

  inflateDone(): void {
    this.resumeReading(Paused.INFLATE);
    this.processInbound();
  }

  /** Our Close is out: the peer's must be read whatever the consumers do. */
  closeSent(): void {
    this.inboxState?.release();
    this.stageRunner.releaseReaders();
    this.timers.armClose();
  }

  streamEnded(): void {
    this.timers.armClose();
  }

  protocolChanged(): void {
    queueMicrotask(() => this.processInbound());
  }

  idle(): void {
    this.closingTimers?.checkSettled();
  }

  /** The consumers are done with what was delivered, and no send waits. */
  get settled(): boolean {
    return (this.inboxState?.settled ?? true) && !this.sender.pending;
  }

  releaseHeldClose(): void {
    if (this.finished || !this.proto.closeHeld) return;
    this.proto.releaseClose();
    this.sender.flushQuietly();
  }

  closeTimedOut(): void {
    this.log.debug({ closeTimeout: this.opts.closeTimeout }, 'close timeout: destroying the socket');
    this.terminate();
  }

  /** connectionTimeout passed without a byte from the peer (see IdleTimer). */
  idleTimeout(idle: number): void {
    this.log.info({ idle }, 'connection timeout: nothing received');
    if (this.proto.closeSent) this.terminate();
    else this.startClosing(CloseCode.GOING_AWAY, 'connection timeout');
  }

  /** Reading is paused (backpressure): the peer's silence can't be observed. */
  get readingPaused(): boolean {
    return this.pausedFor !== 0;
  }

  /** The connection is gone (its 'close' event fired or is firing). */
  get ended(): boolean {
    return this.finished;
  }

  /** The socket is gone: settle everything that waits on the connection. */
  socketClosed(): void {
    if (this.finished) return;
    this.finished = true;
    this.proto.connectionLost();
    IdleTimer.stop(this, this.opts.connectionTimeout, this.clock);
    this.closingTimers?.clear();
    this.stageRunner.close();
    this.compressor?.close();
    if (!this.socket.destroyed) this.socket.destroy();
    const received = this.proto.closeReceived;
    const wasClean = received !== undefined && this.proto.closeSent !== undefined;
    const info: CloseInfo = {
      code: received?.code ?? CloseCode.ABNORMAL_CLOSURE,
      reason: received?.reason ?? '',
      wasClean,
    };
    // Built only when something waits for it: most connections close with nothing pending.
    let closedErr: Error | undefined;
    const closedError = () => (closedErr ??= notOpen(ReadyState.CLOSED));
    this.pings?.rejectAll(closedError);
    this.sender.drop(closedError);
    const sentCode = this.proto.closeSent?.code;
    this.owner.linkClosed(info, sentCode, received !== undefined);
    if (channels.connectionClose.hasSubscribers) diag.publishClose(this.owner, info, sentCode, received);
    this.inboxState?.end();
    this.log.debug(info, 'connection closed');
    this.closeInfo = info;
    this.closedSignal?.settle(info);
    try {
      this.owner.emit('close', info.code, info.reason);
    } catch (err) {
      // A throwing 'close' listener must not escape into a socket or timer callback.
      this.log.error({ err }, "a 'close' listener threw");
    }
  }

  /** A user handler failed: close with 1011 and report it. */
  handlerFailed(err: unknown): void {
    this.log.error({ err }, 'handler error: closing with 1011');
    this.emitError(err instanceof Error ? err : new Error(String(err)));
    if (channels.handlerError.hasSubscribers) diag.publishHandlerError(this.owner, err);
    if (!this.proto.closeSent && !this.finished)
      this.startClosing(CloseCode.INTERNAL_SERVER_ERROR, 'Internal error');
  }

  internalError(err: unknown): void {
    this.log.error({ err }, 'internal error');
    this.proto.fail(new WebSocketError(CloseCode.INTERNAL_SERVER_ERROR, 'Internal error'));
    this.protocolChanged();
  }

  private emitError(err: Error): void {
    // Never throw from an 'error' nobody listens to.
    if (this.owner.listenerCount('error') > 0) this.owner.emit('error', err);
  }
}
