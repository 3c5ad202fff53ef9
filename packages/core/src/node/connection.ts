import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { CloseCode } from '../protocol/close-codes.js';
import { type DataOpcode, type Frame, Opcode } from '../protocol/frame.js';
import { ReadyState } from '../protocol/protocol.js';
import type {
  CloseInfo,
  ConnectionInitOf,
  ConnectionSettings,
  SendOptions,
  StageOf,
  TopicHubOf,
  Transport,
} from './connection-types.js';
import { channels, publishConnectionOpen } from './diagnostics.js';
import { Link } from './link.js';
import { type Data, type Message, toPayload } from './message.js';
import { notOpen, rejected } from './promises.js';

const EMPTY = Buffer.alloc(0);

export type { CloseInfo, SendOptions, Transport } from './connection-types.js';
export type { Data } from './message.js';
/** A frame interceptor (see StageOf). */
export type Stage = StageOf<WebSocket>;
export type TopicHub = TopicHubOf<WebSocket>;
export type ResolvedConnectionOptions = ConnectionSettings<WebSocket>;
export type ConnectionInit = ConnectionInitOf<WebSocket>;

/**
 * A WebSocket connection on a Node socket, either side. This is the API; the machinery
 * (moving bytes between the socket and the sans-I/O Protocol, queues, timers) is its
 * Link.
 *
 * Events: 'message' (Message), 'ping' and 'pong' (payload), 'close' (code, reason),
 * 'error' (Error), 'ratelimit' (the dropped Message).
 */
export class WebSocket extends EventEmitter {
  static readonly CONNECTING = ReadyState.CONNECTING;
  static readonly OPEN = ReadyState.OPEN;
  static readonly CLOSING = ReadyState.CLOSING;
  static readonly CLOSED = ReadyState.CLOSED;

  readonly isServer: boolean;
  /** The subprotocol agreed in the handshake ('' for none). */
  readonly protocol: string;
  /** The extensions agreed in the handshake, as sent in Sec-WebSocket-Extensions. */
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
  /** The route pattern that accepted this connection ('' when none: clients, adapters without one). */
  readonly route: string;
  /** Data messages received. (Counters: read them, don't write them.) */
  messagesReceived = 0;
  /** Data messages sent (a fragmented message counts once, when its last fragment goes). */
  messagesSent = 0;
  /** Payload bytes of the data messages received (after inflation). */
  bytesReceived = 0;
  /** Payload bytes of the data messages sent (before deflation). */
  bytesSent = 0;
  /** performance.now() when the connection opened. */
  readonly openedAt = performance.now();
  /** The peer's Close arrived before we sent one. @internal */
  peerClosedFirst = false;

  private readonly link: Link<WebSocket>;
  private readonly hub: TopicHub | undefined;
  /** `topics`, created on first use. */
  private topicSet: Set<string> | undefined;

  constructor(init: ConnectionInit) {
    super({ captureRejections: true });
    this.isServer = init.side === 'server';
    this.protocol = init.protocol ?? '';
    this.extensions = init.extensions ?? '';
    this.path = init.path ?? '/';
    this.transport = init.transport ?? 'http/1.1';
    this.hub = init.hub;
    this.route = init.route ?? '';
    const link = new Link<WebSocket>(this, init);
    this.link = link;
    ({
      remoteAddress: this.remoteAddress,
      remotePort: this.remotePort,
      localAddress: this.localAddress,
      localPort: this.localPort,
    } = init.socket as Partial<Socket>);
    this.on('newListener', this.onNewListener);
    if (channels.connectionOpen.hasSubscribers) publishConnectionOpen(this);
    link.start(init.head);
  }

  // ---- introspection -------------------------------------------------------------------

  get readyState(): ReadyState {
    return this.link.proto.state;
  }

  /** Settles when the TCP connection is gone, with how it closed. */
  get closed(): Promise<CloseInfo> {
    return this.link.closed;
  }

  /**
   * Bytes queued for the peer and not yet written to the network: data, control frames
   * and published frames, wherever they wait (the socket, the send queue, or behind an
   * open fragmented message).
   */
  get bufferedAmount(): number {
    return this.link.sender.bufferedAmount;
  }

  /** Topics this connection is subscribed to (server side). */
  get topics(): Set<string> {
    this.topicSet ??= new Set();
    return this.topicSet;
  }

  /** The stages in their order, auto-pong and auto-ping included. */
  get stages(): readonly Stage[] {
    return this.link.stageRunner.stages;
  }

  // ---- sending -------------------------------------------------------------------------

  /**
   * Sends a message, or a fragment with `fin: false`. Resolves when the bytes are handed
   * to the socket — after its 'drain' when the socket's buffer is full, so a loop of
   * `await ws.send()` follows the peer's pace. Rejects with InvalidStateError once the
   * connection is closing; never leaves an unhandled rejection when not awaited.
   */
  send(data: Data, options: SendOptions = {}): Promise<void> {
    const { proto, sender, compressor } = this.link;
    if (!proto.canSendData) return rejected(notOpen(this.readyState));
    try {
      const payload = toPayload(data);
      const opcode: DataOpcode = (options.binary ?? typeof data !== 'string') ? Opcode.BINARY : Opcode.TEXT;
      // RFC 7692 §6: a message is compressed as a whole, as decided for its first fragment.
      const compress = proto.sendingFragments
        ? proto.sendingCompressed
        : options.compress !== false && payload.length >= (compressor?.threshold ?? Infinity);
      // A string's bytes are a fresh copy: a client may mask them in place.
      return sender.send(opcode, payload, options.fin ?? true, compress, typeof data === 'string');
    } catch (err) {
      return rejected(err);
    }
  }

  /** Sends a Ping; resolves with the round-trip time in ms when its Pong arrives. */
  ping(data?: Data): Promise<number> {
    return this.link.ping(data);
  }

  /**
   * Sends a Pong (auto-pong answers each Ping with one; alone it is a unidirectional
   * heartbeat). While an earlier Pong waits unread, only the latest is kept (RFC 6455
   * §5.5.3).
   */
  pong(data: Data = EMPTY): void {
    this.link.sender.pong(toPayload(data));
  }

  /**
   * Starts the closing handshake, after the messages already accepted by send(). Resolves
   * when the connection is closed; the socket is destroyed after closeTimeout if the peer
   * does not complete the handshake.
   */
  close(code: number = CloseCode.NORMAL_CLOSURE, reason = ''): Promise<CloseInfo> {
    if (this.link.finished) return this.closed;
    try {
      this.link.proto.close(code, reason);
    } catch (err) {
      return rejected(err);
    }
    this.link.sender.flushQuietly();
    return this.closed;
  }

  /** Destroys the socket at once, without a closing handshake. */
  terminate(): void {
    this.link.terminate();
  }

  // ---- receiving -----------------------------------------------------------------------

  /** The next message in order; null once the connection is closing and no message is left. */
  receive(): Promise<Message | null> {
    return this.link.receive();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Message, void, undefined> {
    for (let msg = await this.receive(); msg !== null; msg = await this.receive()) yield msg;
  }

  /**
   * Runs `handler` for every message with at most `concurrency` at once, in arrival
   * order of start. Reading pauses while all slots are busy. A handler that throws or
   * rejects closes the connection with 1011. Resolves when the connection is closed.
   */
  consume(
    handler: (msg: Message, ws: WebSocket) => unknown,
    options: { concurrency?: number } = {},
  ): Promise<void> {
    return this.link.consume(handler, options.concurrency ?? 1);
  }

  // ---- low level -----------------------------------------------------------------------

  /** Writes a frame as given (the mask bit follows the side). Outbound stages apply. */
  sendFrame(frame: Frame): Promise<void> {
    try {
      this.link.proto.sendFrame(frame);
    } catch (err) {
      return rejected(err);
    }
    return this.link.sender.flush();
  }

  /** Every inbound frame, after the inbound stages, as it arrives. */
  frames(): AsyncIterable<Frame> {
    return this.link.stageRunner.reader();
  }

  /** Adds a frame stage (after the existing ones). Replaces a stage of the same name. */
  use(stage: Stage): this {
    this.link.stageRunner.use(stage, !this.link.finished);
    return this;
  }

  /** Removes the stage with this name (e.g. 'auto-pong', 'auto-ping'). */
  unuse(name: string): boolean {
    return this.link.stageRunner.unuse(name);
  }

  // ---- pub/sub -------------------------------------------------------------------------

  subscribe(topic: string): void {
    if (this.hub === undefined) throw new Error('subscribe() needs a server-side connection');
    if (this.link.finished) return; // a closed connection must not stay in the topic index
    this.topics.add(topic);
    this.hub.subscribe(this, topic);
  }

  unsubscribe(topic: string): void {
    this.topicSet?.delete(topic);
    this.hub?.unsubscribe(this, topic);
  }

  /** The connection closed: it leaves its topics and its server. @internal */
  linkClosed(info: CloseInfo, sentCode: number | undefined, receivedClose: boolean): void {
    if (this.topicSet !== undefined) for (const topic of this.topicSet) this.hub?.unsubscribe(this, topic);
    this.hub?.connectionClosed?.(this, info, sentCode, receivedClose);
  }

  /** A frame encoded once for many connections (publish); false when not taken. @internal */
  sendEncoded(bytes: Buffer): boolean {
    return this.link.sender.publish(bytes);
  }

  /** A user handler failed: close with 1011 and report it. @internal */
  handlerFailed(err: unknown): void {
    this.link.handlerFailed(err);
  }

  /** A prototype method: EventEmitter calls it with `this` set to the connection. */
  private onNewListener(event: string | symbol): void {
    this.link.newListener(event);
  }

  override [EventEmitter.captureRejectionSymbol](err: unknown): void {
    this.link.handlerFailed(err);
  }
}
