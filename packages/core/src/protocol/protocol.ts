import { CloseCode, isValidWireCloseCode } from './close-codes.js';
import { buildClosePayload, parseClosePayload, truncateUtf8 } from './close-frame.js';
import { InvalidStateError, WebSocketError } from './errors.js';
import { type DataOpcode, type Frame, isControlOpcode, Opcode, Rsv } from './frame.js';
import { type FrameHeader, FrameParser, type FrameParserOptions } from './frame-parser.js';
import { encodeFrameInto } from './frame-writer.js';
import { DEFAULT_MAX_FRAGMENTS, MessageAssembler } from './message-assembler.js';

export const ReadyState = { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 } as const;
export type ReadyState = (typeof ReadyState)[keyof typeof ReadyState];

export type Side = 'client' | 'server';

export interface ProtocolOptions {
  side: Side;
  /** Default 1 MiB. */
  maxFrameSize?: number;
  /** Default 1 MiB; for compressed messages, counted after inflation. */
  maxMessageSize?: number;
  /** Frames one message may span. Default 16384; one more fails with 1009. */
  maxFragments?: number;
  /** permessage-deflate was negotiated: RSV1 marks compressed messages. */
  compression?: boolean;
  /**
   * When the peer breaks the protocol, hold our Close until releaseClose(), so that
   * replies to the messages received before the violation can go out first. Default
   * false: the Close is queued at once.
   */
  holdCloseOnFailure?: boolean;
  /**
   * Hold the answer to the peer's Close until releaseCloseReply(), so that replies to the
   * messages that arrived right before it can still be sent (RFC 6455 §5.5.1 lets an
   * endpoint send its Close once its current message is sent). Default false: answered
   * at once.
   */
  holdCloseReply?: boolean;
}

export type ProtocolEvent =
  | { type: 'message'; opcode: DataOpcode; data: Buffer }
  | { type: 'ping'; data: Buffer }
  | { type: 'pong'; data: Buffer }
  /** The peer's Close frame (code 1005 when it had none). */
  | { type: 'close'; code: number; reason: string }
  /** The peer broke the protocol; a Close frame with error.code is queued (or held). */
  | { type: 'error'; error: WebSocketError };

/** The empty output and event lists shared by every idle connection (never written to). */
const NO_OUTPUT: Buffer[] = [];
const NO_EVENTS: ProtocolEvent[] = [];

/** Frame stages plugged into the engine (see Protocol.frameHooks). */
export interface FrameHooks {
  inbound(frame: Frame): Frame | null;
  outbound(frame: Frame): Frame | null;
  /** False when outbound() would return every frame as it is: the engine then skips it. */
  readonly outboundActive?: boolean;
}

/**
 * The inflating stage of permessage-deflate (RFC 7692 §7.2.2), supplied by the transport
 * (zlib is asynchronous). The engine hands it the payloads of one or more consecutive
 * frames of a compressed message; the stage answers with receiveInflated() (any number
 * of pieces, the last with `last`) or inflateFailed(). Nothing else is read meanwhile.
 */
export interface Inflater {
  inflate(payloads: Buffer[], fin: boolean, limit: number): void;
}

export interface ProtocolSendOptions {
  /** false: this is a fragment; later sends of the same type continue the message. */
  fin?: boolean;
  /** Payload is already deflated (RFC 7692): sets RSV1 on the message's first frame. */
  compressed?: boolean;
  /**
   * The payload is the engine's to change (e.g. freshly encoded from a string): a client
   * masks a large one in place instead of copying it next to the header.
   */
  owned?: boolean;
}

export const DEFAULT_MAX_SIZE = 1024 * 1024;

/**
 * The end-of-stream item of takeOutput(): the transport ends its side of TCP (a
 * half-close) when it meets it. Compared by identity; zero bytes long, so a
 * Buffer.concat of the output is still the wire bytes.
 */
export const END_OF_STREAM: Buffer = Buffer.alloc(0);

/** Bits of Protocol.flags. */
const Flag = {
  eofReceived: 1,
  eofSent: 2,
  compression: 4,
  inflating: 8,
  holdCloseOnFailure: 16,
  holdCloseReply: 32,
  closeReplyHeld: 64,
  outgoingCompressed: 128,
  batchEndsMessage: 256,
} as const;

/** A send accepted now and encoded later (see reserveSend()): how to frame it. */
type Reservation = { kind: 'data'; opcode: number; rsv: number; fin: boolean } | { kind: 'encoded' };

/**
 * The WebSocket connection as a state machine, without I/O (the model of
 * python-websockets' protocol.py). Bytes go in through receiveData() and receiveEof();
 * events come out of nextEvent() / takeEvents(), parsed on demand so that a transport
 * that stops asking stops the work. Everything to write, the end of our side of TCP
 * included, goes to an output queue read with takeOutput(). The engine decides every
 * step of closing: when our Close goes out (behind reserved sends, after a held
 * failure, as the answer to the peer's), and when the transport should end TCP
 * (RFC 6455 §7.1.1). Nothing here blocks, reads a clock or touches a socket.
 */
export class Protocol {
  readonly side: Side;
  state: ReadyState = ReadyState.OPEN;
  /** The Close frame we sent, once sent. */
  closeSent: { code: number; reason: string } | undefined;
  /** The Close frame we received, once received. */
  closeReceived: { code: number; reason: string } | undefined;
  /** The violation that failed the connection, if any. */
  failure: WebSocketError | undefined;

  /**
   * The transport's frame stages: `inbound` sees every received frame before the state
   * machine does, `outbound` every outgoing frame before it is encoded; each returns the
   * frame to use (possibly changed) or null to drop it.
   */
  frameHooks: FrameHooks | undefined;
  /** Inflates compressed messages; required when compression is on. */
  inflater: Inflater | undefined;

  /** The connection's yes/no facts, one bit each (Flag): idle connections stay small. */
  private flags = 0;
  /** The parser and assembler, created when the first bytes arrive (idle connections are cheaper). */
  private parserState: AssemblingParser | undefined;
  private assemblerState: MessageAssembler | undefined;
  private readonly options: ProtocolOptions;
  /** What to write; NO_OUTPUT (shared, never written to) while empty: see out(). */
  private output: Buffer[] = NO_OUTPUT;
  /** Events not taken yet; NO_EVENTS (shared, never written to) while empty: see pushEvent(). */
  private events: ProtocolEvent[] = NO_EVENTS;
  /** Payloads of a compressed message collected for one inflate() call. */
  private inflateBatch: Buffer[] | undefined;
  /** The Close that fail() holds until releaseClose(). */
  private heldClose: { code: number; reason: string } | undefined;
  /** Our Close, due as soon as the reserved sends are out. */
  private pendingClose: { code: number | undefined; reason: string } | undefined;
  /** Sends accepted and not encoded yet, in order (undefined when none). */
  private reservations: Reservation[] | undefined;
  /** Opcode of the outgoing fragmented message in progress, 0 when none. */
  private outgoingOpcode: 0 | DataOpcode = 0;
  /** Encoded frames waiting for the open fragmented message to end (RFC 6455 §5.4). */
  private heldFrames: Buffer[] | undefined;
  /** Bytes in heldFrames. */
  heldBytes = 0;

  constructor(options: ProtocolOptions) {
    this.side = options.side;
    this.setFlag(Flag.compression, options.compression ?? false);
    this.setFlag(Flag.holdCloseOnFailure, options.holdCloseOnFailure ?? false);
    this.setFlag(Flag.holdCloseReply, options.holdCloseReply ?? false);
    // The limits are read when the first bytes arrive: a caller's object that may still
    // change is copied now (Link passes one frozen object per route and side).
    this.options = Object.isFrozen(options) ? options : { ...options };
  }

  private get assembler(): MessageAssembler {
    this.assemblerState ??= new MessageAssembler(
      this.options.maxMessageSize ?? DEFAULT_MAX_SIZE,
      this.options.maxFragments ?? DEFAULT_MAX_FRAGMENTS,
    );
    return this.assemblerState;
  }

  private get parser(): AssemblingParser {
    this.parserState ??= new AssemblingParser(
      {
        side: this.side,
        maxFrameSize: this.options.maxFrameSize ?? DEFAULT_MAX_SIZE,
        allowedRsv: this.is(Flag.compression) ? Rsv.RSV1 : 0,
      },
      this.assembler,
    );
    return this.parserState;
  }

  /** The peer ended its side of TCP. */
  get eofReceived(): boolean {
    return this.is(Flag.eofReceived);
  }

  /** END_OF_STREAM was queued: the transport ends our side of TCP. */
  get eofSent(): boolean {
    return this.is(Flag.eofSent);
  }

  /** The output list to append to (a new one in place of the shared empty one). */
  private out(): Buffer[] {
    if (this.output === NO_OUTPUT) this.output = [];
    return this.output;
  }

  private pushEvent(event: ProtocolEvent): void {
    if (this.events === NO_EVENTS) this.events = [];
    this.events.push(event);
  }

  private is(flag: number): boolean {
    return (this.flags & flag) !== 0;
  }

  private setFlag(flag: number, on: boolean): void {
    this.flags = on ? this.flags | flag : this.flags & ~flag;
  }

  get maxMessageSize(): number {
    return this.assemblerState?.maxMessageSize ?? this.options.maxMessageSize ?? DEFAULT_MAX_SIZE;
  }

  /** Bytes received and held by the parser. */
  get bufferedInbound(): number {
    return this.parserState?.bufferedAmount ?? 0;
  }

  /** A compressed message is being inflated (no event comes out until it is done). */
  get inflateInProgress(): boolean {
    return this.is(Flag.inflating);
  }

  /** Has the end of our side of TCP been queued? (Kept for callers of the old name.) */
  get shouldCloseTransport(): boolean {
    return this.is(Flag.eofSent);
  }

  /**
   * Who is expected to close the TCP connection next (RFC 6455 §7.1.1): 'us' once
   * END_OF_STREAM is queued, 'peer' once the closing handshake is done on a client (the
   * server closes first), undefined while the connection is open.
   */
  get transportCloser(): 'us' | 'peer' | undefined {
    if (this.is(Flag.eofSent)) return 'us';
    if (this.closeSent !== undefined && (this.closeReceived !== undefined || this.failure !== undefined))
      return 'peer';
    return undefined;
  }

  // ---- inbound -------------------------------------------------------------------------

  /** Bytes from the peer; the engine owns `chunk` from now on (it unmasks in place). */
  receiveData(chunk: Buffer): void {
    // RFC 6455 §5.5.1: nothing is processed after the peer's Close frame.
    if (this.closeReceived !== undefined || this.failure !== undefined || this.state === ReadyState.CLOSED)
      return;
    this.parser.push(chunk);
  }

  /** The peer ended its side of TCP. Ours ends once everything received was handled. */
  receiveEof(): void {
    if (this.is(Flag.eofReceived)) return;
    this.setFlag(Flag.eofReceived, true);
    this.endStreamWhenDone();
  }

  /**
   * The next event, parsing received bytes as needed; undefined when more bytes are
   * needed, a compressed message is being inflated, or input ended.
   */
  nextEvent(): ProtocolEvent | undefined {
    for (;;) {
      const events = this.events;
      if (events.length > 0) {
        const queued = events.shift() as ProtocolEvent;
        // An emptied queue goes back to the shared empty one: no spare capacity kept.
        if (events.length === 0) this.events = NO_EVENTS;
        return queued;
      }
      if (!this.receiveNextFrame()) break;
    }
    this.endStreamWhenDone();
    return undefined;
  }

  /** Every event available now (see nextEvent()). */
  takeEvents(): ProtocolEvent[] {
    const all: ProtocolEvent[] = [];
    for (let e = this.nextEvent(); e !== undefined; e = this.nextEvent()) all.push(e);
    return all;
  }

  /**
   * Inflated bytes of the frames handed to the inflater, in order; `last` marks the final
   * piece of that batch.
   */
  receiveInflated(chunk: Buffer, last: boolean): void {
    if (!this.is(Flag.inflating)) return; // failed or lost meanwhile
    const fin = last && this.is(Flag.batchEndsMessage);
    if (last) this.setFlag(Flag.inflating, false);
    try {
      this.emitAssembly(this.assembler.pushInflated(chunk, fin));
    } catch (err) {
      this.failReceived(asWebSocketError(err));
    }
  }

  /** The inflater failed: invalid deflate data (1007), or a WebSocketError of its own (1009). */
  inflateFailed(error: WebSocketError | string): void {
    if (!this.is(Flag.inflating)) return;
    this.setFlag(Flag.inflating, false);
    this.failReceived(
      typeof error === 'string' ? new WebSocketError(CloseCode.INVALID_FRAME_PAYLOAD_DATA, error) : error,
    );
  }

  /** The transport is gone (EOF, reset or destroyed). */
  connectionLost(): void {
    this.state = ReadyState.CLOSED;
    this.heldClose = undefined;
    this.setFlag(Flag.closeReplyHeld, false);
    this.pendingClose = undefined;
    this.reservations = undefined;
    this.setFlag(Flag.inflating, false);
    this.inflateBatch = undefined;
    this.heldFrames = undefined;
    this.heldBytes = 0;
    this.parserState?.discard(); // nothing received is processed after the connection is gone
  }

  // ---- outbound ------------------------------------------------------------------------

  /**
   * Queues a data message or fragment. RFC 6455 §5.4: fragments of one message are not
   * interleaved with other data messages, so a new message cannot start before the
   * fragmented one ends.
   */
  send(opcode: DataOpcode, payload: Buffer, options: ProtocolSendOptions = {}): void {
    this.assertCanSend();
    if (this.reservations !== undefined) throw new Error('send() while reserved sends are waiting');
    const hooks = this.frameHooks;
    if (
      this.outgoingOpcode === 0 &&
      options.fin !== false &&
      options.compressed !== true &&
      (hooks === undefined || hooks.outboundActive === false)
    ) {
      // The common case, a whole uncompressed message that no stage rewrites: straight
      // to the output, with no Frame object on the way.
      this.setFlag(Flag.outgoingCompressed, false);
      encodeFrameInto(this.out(), true, 0, opcode, this.side === 'client', payload, undefined, options.owned);
      return;
    }
    const r = this.accept(opcode, options);
    this.writeFrame({ fin: r.fin, rsv: r.rsv, opcode: r.opcode, masked: this.side === 'client', payload });
    if (r.fin) this.releaseHeldFrames();
  }

  /**
   * Accepts a message (or fragment) that the transport encodes later, e.g. after
   * compressing it: the fragment sequence is checked now, and our Close waits until every
   * reserved send went out through sendReserved(), in order.
   */
  reserveSend(opcode: DataOpcode, options: ProtocolSendOptions = {}): void {
    this.assertCanSend();
    this.reservations ??= [];
    this.reservations.push({ kind: 'data', ...this.accept(opcode, options) });
  }

  /** Accepts a frame encoded once for many connections, to be written by sendReserved(). */
  reserveEncoded(): void {
    this.assertCanSend();
    this.reservations ??= [];
    this.reservations.push({ kind: 'encoded' });
  }

  /**
   * The payload of the oldest reservation (compressed if it was reserved so), or the
   * encoded frame. Returns false when it can no longer be sent (the connection failed or
   * is gone): the transport reports that to whoever is waiting.
   */
  sendReserved(bytes: Buffer): boolean {
    const r = this.reservations?.shift();
    if (this.reservations?.length === 0) this.reservations = undefined;
    if (r === undefined || this.closeSent !== undefined || this.state === ReadyState.CLOSED) {
      this.closeIfDue();
      return false;
    }
    if (r.kind === 'encoded') this.writeEncoded(bytes);
    else {
      this.writeFrame({
        fin: r.fin,
        rsv: r.rsv,
        opcode: r.opcode,
        masked: this.side === 'client',
        payload: bytes,
      });
      if (r.fin) this.releaseHeldFrames();
    }
    this.closeIfDue();
    return true;
  }

  /** Are sends reserved and not yet sent? */
  get sendsReserved(): boolean {
    return this.reservations !== undefined;
  }

  /**
   * Writes a frame encoded once for many connections (publish). RFC 6455 §5.4: while an
   * outgoing fragmented message is open it waits for that message's last frame. Returns
   * false when the connection no longer takes data. Outbound stages don't see it.
   */
  sendEncoded(bytes: Buffer): boolean {
    if (!this.canSendData) return false;
    if (this.reservations !== undefined) throw new Error('sendEncoded() while reserved sends are waiting');
    this.writeEncoded(bytes);
    return true;
  }

  /** Is an outgoing fragmented message open (accepted with fin: false)? */
  get sendingFragments(): boolean {
    return this.outgoingOpcode !== 0;
  }

  /** Is the open outgoing fragmented message compressed? */
  get sendingCompressed(): boolean {
    return this.outgoingOpcode !== 0 && this.is(Flag.outgoingCompressed);
  }

  /** Can data still be sent (open, and no Close sent or requested)? */
  get canSendData(): boolean {
    return this.state === ReadyState.OPEN && this.closeSent === undefined;
  }

  /** Can a Ping or Pong still be sent (our Close is not out)? */
  get canSendControl(): boolean {
    return this.closeSent === undefined && this.state !== ReadyState.CLOSED;
  }

  ping(payload: Buffer = Buffer.alloc(0)): void {
    this.assertCanSendControl();
    this.sendControl(Opcode.PING, payload);
  }

  pong(payload: Buffer = Buffer.alloc(0)): void {
    this.assertCanSendControl();
    this.sendControl(Opcode.PONG, payload);
  }

  /**
   * Starts the closing handshake (RFC 6455 §7.1.2), after the reserved sends.
   * `code` undefined sends a Close frame without a status code; no argument at all sends 1000.
   * (A default parameter would turn an explicit undefined into 1000, so the arguments are counted.)
   */
  close(...args: [code?: number | undefined, reason?: string]): void {
    const code = args.length === 0 ? CloseCode.NORMAL_CLOSURE : args[0];
    const reason = args[1] ?? '';
    if (this.closeSent !== undefined || this.state === ReadyState.CLOSED || this.pendingClose !== undefined)
      return;
    buildClosePayload(code, reason); // a bad code or reason throws here, not later
    this.pendingClose = { code, reason };
    this.state = ReadyState.CLOSING;
    this.closeIfDue();
  }

  /**
   * Low level: writes a frame as given (the caller owns the frame's validity), except
   * that the mask bit follows the side, as RFC 6455 §5.1 requires.
   */
  sendFrame(frame: Frame): void {
    if (frame.opcode === Opcode.CLOSE) {
      if (this.closeSent !== undefined)
        throw new WebSocketError(CloseCode.PROTOCOL_ERROR, 'Close frame already sent');
      const parsed = frame.payload.length === 0 ? undefined : parseClosePayload(frame.payload);
      this.writeFrame({ ...frame, masked: this.side === 'client' });
      this.closeWasSent(parsed ?? { code: CloseCode.NO_STATUS_RCVD, reason: '' });
      return;
    }
    this.assertCanSend();
    this.writeFrame({ ...frame, masked: this.side === 'client' });
  }

  /** What to write, in order; END_OF_STREAM (by identity) means: end our side of TCP. */
  takeOutput(): Buffer[] {
    const out = this.output;
    if (out.length === 0) return out;
    this.output = NO_OUTPUT;
    return out;
  }

  /**
   * Fails the connection (RFC 6455 §7.1.7): queues a Close with the error's code, or
   * holds it until releaseClose() with `holdClose` (the peer broke a rule that the
   * transport checks, like a rate limit). Never throws: a code that may not be sent
   * (1004-1006, 1015, 2000, 5000, ...) goes out as 1011.
   */
  fail(error: WebSocketError, options: { holdClose?: boolean } = {}): void {
    this.failWith(error, options.holdClose ?? false);
  }

  /** Is our Close held after a failure (see holdCloseOnFailure)? */
  get closeHeld(): boolean {
    return this.heldClose !== undefined;
  }

  /** Queues the Close that fail() held back. */
  releaseClose(): void {
    const held = this.heldClose;
    if (held === undefined) return;
    this.heldClose = undefined;
    if (this.closeSent === undefined && this.state !== ReadyState.CLOSED)
      this.writeClose(held.code, held.reason);
    this.endStreamWhenDone();
  }

  /** Is the answer to the peer's Close held (see holdCloseReply)? */
  get closeReplyPending(): boolean {
    return this.is(Flag.closeReplyHeld);
  }

  /** Answers the peer's Close (after the reserved sends), or sends it now with `force`. */
  releaseCloseReply(options: { force?: boolean } = {}): void {
    if (!this.is(Flag.closeReplyHeld)) return;
    this.setFlag(Flag.closeReplyHeld, false);
    if (options.force) this.reservations = undefined;
    this.answerClose();
  }

  // ---- internals -----------------------------------------------------------------------

  /**
   * Parses and applies the next frame; false when there is none to take (more bytes
   * needed, inflation running, input closed).
   */
  private receiveNextFrame(): boolean {
    if (this.is(Flag.inflating) || this.closeReceived !== undefined || this.failure !== undefined)
      return false;
    if (this.state === ReadyState.CLOSED) return false;
    let frame: Frame | null;
    try {
      frame = this.parserState?.next() ?? null;
    } catch (err) {
      this.failReceived(asWebSocketError(err));
      return true; // the error event is queued
    }
    if (frame === null) {
      if (this.inflateBatch !== undefined) this.startInflate(false); // its next frame is not here yet
      return this.is(Flag.inflating) || this.events.length > 0;
    }
    if (this.frameHooks !== undefined) {
      const changed = this.frameHooks.inbound(frame);
      if (changed === null) {
        // A stage swallowed it: no later stage or handler sees it.
        if (this.inflateBatch !== undefined && this.parser.peekComplete() !== Opcode.CONTINUATION)
          this.startInflate(false);
        return true;
      }
      frame = changed;
    }
    try {
      if (isControlOpcode(frame.opcode)) this.receiveControl(frame);
      else this.receiveDataFrame(frame);
    } catch (err) {
      this.failReceived(asWebSocketError(err));
    }
    return true;
  }

  private receiveDataFrame(frame: Frame): void {
    const result = this.assembler.pushFrame(frame);
    if (result === null) return;
    if (result.type === 'message') {
      this.pushEvent(result);
      return;
    }
    // A compressed frame. A message in many small frames costs a zlib call per frame
    // unless they are joined: while the next frame is a continuation already received
    // whole, this one waits for it.
    this.inflateBatch ??= [];
    this.inflateBatch.push(result.data);
    if (!result.fin && this.parser.peekComplete() === Opcode.CONTINUATION) return;
    this.startInflate(result.fin);
  }

  private startInflate(fin: boolean): void {
    const batch = this.inflateBatch;
    this.inflateBatch = undefined;
    if (batch === undefined) return;
    if (this.inflater === undefined) throw new Error('a compressed message arrived and no inflater is set');
    this.setFlag(Flag.inflating, true);
    this.setFlag(Flag.batchEndsMessage, fin);
    this.inflater.inflate(batch, fin, this.assembler.remaining);
  }

  private receiveControl(frame: Frame): void {
    switch (frame.opcode) {
      case Opcode.PING:
        this.pushEvent({ type: 'ping', data: frame.payload });
        return;
      case Opcode.PONG:
        this.pushEvent({ type: 'pong', data: frame.payload });
        return;
      case Opcode.CLOSE: {
        const { code, reason } = parseClosePayload(frame.payload);
        this.closeReceived = { code, reason };
        this.inflateBatch = undefined;
        this.parserState?.discard(); // RFC 6455 §5.5.1: nothing after the Close is processed
        this.pushEvent({ type: 'close', code, reason });
        if (this.closeSent !== undefined) {
          this.endStreamWhenDone();
          return;
        }
        if (this.is(Flag.holdCloseReply)) this.setFlag(Flag.closeReplyHeld, true);
        else this.answerClose();
        return;
      }
    }
  }

  /** RFC 6455 §5.5.1: answer the peer's Close, echoing its status code. */
  private answerClose(): void {
    if (this.closeSent === undefined && this.state !== ReadyState.CLOSED && this.pendingClose === undefined) {
      const code = this.closeReceived?.code;
      this.pendingClose = { code: code === CloseCode.NO_STATUS_RCVD ? undefined : code, reason: '' };
      this.state = ReadyState.CLOSING;
    }
    this.closeIfDue();
  }

  /** Sends the pending Close once no reserved send is left to go before it. */
  private closeIfDue(): void {
    const pending = this.pendingClose;
    if (pending !== undefined && this.reservations === undefined) {
      this.pendingClose = undefined;
      if (this.closeSent === undefined && this.state !== ReadyState.CLOSED)
        this.writeClose(pending.code, pending.reason);
    }
    this.endStreamWhenDone();
  }

  private writeClose(code: number | undefined, reason: string): void {
    const payload = buildClosePayload(code, reason);
    this.writeFrame({ fin: true, rsv: 0, opcode: Opcode.CLOSE, masked: this.side === 'client', payload });
    this.closeWasSent({ code: code ?? CloseCode.NO_STATUS_RCVD, reason });
  }

  private closeWasSent(close: { code: number; reason: string }): void {
    this.closeSent = close;
    this.heldClose = undefined;
    this.pendingClose = undefined;
    this.setFlag(Flag.closeReplyHeld, false); // our Close is out: it answers the peer's too
    this.state = ReadyState.CLOSING;
    // Nothing goes out after our Close: frames waiting for a fragmented message are dropped.
    this.heldFrames = undefined;
    this.heldBytes = 0;
    this.endStreamWhenDone();
  }

  /**
   * Queues END_OF_STREAM when our side of TCP should end (RFC 6455 §7.1.1): at once after
   * a failure once our Close is out; on the server once both Close frames were exchanged
   * (the server closes TCP first); otherwise after the peer's end of stream, once
   * everything received before it was handled.
   */
  private endStreamWhenDone(): void {
    if (this.is(Flag.eofSent) || this.state === ReadyState.CLOSED) return;
    let end: boolean;
    if (this.failure !== undefined) end = this.heldClose === undefined && this.closeSent !== undefined;
    else if (this.side === 'server' && this.closeSent !== undefined && this.closeReceived !== undefined)
      end = true;
    else end = this.is(Flag.eofReceived) && this.inputHandled();
    if (!end) return;
    this.setFlag(Flag.eofSent, true);
    this.out().push(END_OF_STREAM);
  }

  /** Everything received was turned into events and answered (nothing more is coming). */
  private inputHandled(): boolean {
    if (this.is(Flag.inflating) || this.is(Flag.closeReplyHeld) || this.heldClose !== undefined) return false;
    if (this.events.length > 0 || this.inflateBatch !== undefined) return false;
    if (this.pendingClose !== undefined && this.reservations !== undefined) return false;
    if (this.closeReceived !== undefined || this.failure !== undefined) return true;
    return (this.parserState?.peekComplete() ?? -1) === -1;
  }

  /** Checks the fragment sequence of an outgoing message and says how to frame it. */
  private accept(
    opcode: DataOpcode,
    options: ProtocolSendOptions,
  ): { opcode: number; rsv: number; fin: boolean } {
    const fin = options.fin ?? true;
    let frameOpcode: number = opcode;
    let rsv = 0;
    if (this.outgoingOpcode !== 0) {
      if (opcode !== this.outgoingOpcode) {
        throw new TypeError(
          'A fragmented message is in progress: finish it (fin: true) before sending another type',
        );
      }
      frameOpcode = Opcode.CONTINUATION;
    } else if (options.compressed) {
      if (!this.is(Flag.compression)) throw new TypeError('permessage-deflate was not negotiated');
      rsv = Rsv.RSV1; // RFC 7692 §6: RSV1 on the first frame only
    }
    if (this.outgoingOpcode === 0) this.setFlag(Flag.outgoingCompressed, options.compressed ?? false);
    this.outgoingOpcode = fin ? 0 : opcode;
    return { opcode: frameOpcode, rsv, fin };
  }

  private writeEncoded(bytes: Buffer): void {
    if (this.outgoingOpcode !== 0) {
      this.heldFrames ??= [];
      this.heldFrames.push(bytes);
      this.heldBytes += bytes.length;
      return;
    }
    this.out().push(bytes);
  }

  /** The open fragmented message ended: the frames that waited for it go out. */
  private releaseHeldFrames(): void {
    const held = this.heldFrames;
    if (held === undefined || this.outgoingOpcode !== 0) return;
    this.heldFrames = undefined;
    this.heldBytes = 0;
    for (const bytes of held) this.out().push(bytes);
  }

  /** The peer broke the protocol: fail, holding our Close if holdCloseOnFailure says so. */
  private failReceived(error: WebSocketError): void {
    this.failWith(error, this.is(Flag.holdCloseOnFailure));
  }

  private failWith(error: WebSocketError, hold: boolean): void {
    if (this.failure !== undefined) return;
    this.failure = error;
    this.setFlag(Flag.inflating, false);
    this.inflateBatch = undefined;
    this.setFlag(Flag.closeReplyHeld, false);
    this.parserState?.discard(); // nothing more is read from a failed connection
    this.pushEvent({ type: 'error', error });
    if (this.closeSent !== undefined || this.state === ReadyState.CLOSED) {
      this.endStreamWhenDone();
      return;
    }
    const code = isValidWireCloseCode(error.code) ? error.code : CloseCode.INTERNAL_SERVER_ERROR;
    const close = { code, reason: truncateUtf8(error.message) };
    // The failure's Close replaces one waiting for reserved sends; those will not go out.
    this.pendingClose = undefined;
    this.reservations = undefined;
    if (hold) this.heldClose = close;
    else this.writeClose(close.code, close.reason);
  }

  private emitAssembly(result: ReturnType<MessageAssembler['pushFrame']>): void {
    if (result !== null && result.type === 'message') this.pushEvent(result);
  }

  private sendControl(opcode: number, payload: Buffer): void {
    if (payload.length > 125) throw new RangeError('Control frame payload must be at most 125 bytes');
    this.writeFrame({ fin: true, rsv: 0, opcode, masked: this.side === 'client', payload });
  }

  private assertCanSend(): void {
    if (!this.canSendData) {
      throw new InvalidStateError(
        'The connection is closing or closed',
        this.state === ReadyState.OPEN ? ReadyState.CLOSING : this.state,
      );
    }
  }

  private assertCanSendControl(): void {
    if (!this.canSendControl) {
      throw new InvalidStateError(
        'The connection is closing or closed',
        this.state === ReadyState.OPEN ? ReadyState.CLOSING : this.state,
      );
    }
  }

  private writeFrame(frame: Frame): void {
    if (this.frameHooks !== undefined) {
      const changed = this.frameHooks.outbound(frame);
      if (changed === null) return;
      frame = changed;
    }
    encodeFrameInto(this.out(), frame.fin, frame.rsv, frame.opcode, frame.masked, frame.payload);
  }
}

/** A parser whose early checks (header, partial payload) are the assembler's: no closures per connection. */
class AssemblingParser extends FrameParser {
  private readonly assembler: MessageAssembler;

  constructor(options: FrameParserOptions, assembler: MessageAssembler) {
    super(options);
    this.assembler = assembler;
  }

  protected override headerParsed(header: FrameHeader): void {
    this.assembler.checkHeader(header);
  }

  protected override partialPayload(piece: Buffer, header: FrameHeader): void {
    this.assembler.checkPartialPayload(piece, header);
  }
}

function asWebSocketError(err: unknown): WebSocketError {
  if (err instanceof WebSocketError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new WebSocketError(CloseCode.INTERNAL_SERVER_ERROR, message, { cause: err });
}
