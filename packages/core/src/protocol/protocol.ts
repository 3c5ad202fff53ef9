import { CloseCode, isValidWireCloseCode } from './close-codes.js';
import { buildClosePayload, parseClosePayload, truncateUtf8 } from './close-frame.js';
import { InvalidStateError, WebSocketError } from './errors.js';
import { type DataOpcode, type Frame, isControlOpcode, Opcode, Rsv } from './frame.js';
import { type FrameHeader, FrameParser, type FrameParserOptions } from './frame-parser.js';
import { encodeFrame } from './frame-writer.js';
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
}

export type ProtocolEvent =
  | { type: 'message'; opcode: DataOpcode; data: Buffer }
  /**
   * A frame of a compressed message: inflate it, then call receiveInflated(). Frames
   * without fin may be collected and inflated together (see receiveInflated()).
   */
  | { type: 'inflate'; data: Buffer; fin: boolean }
  | { type: 'ping'; data: Buffer }
  | { type: 'pong'; data: Buffer }
  /** The peer's Close frame (code 1005 when it had none). */
  | { type: 'close'; code: number; reason: string }
  /** The peer broke the protocol; a Close frame with error.code is queued. */
  | { type: 'error'; error: WebSocketError };

export interface ProtocolSendOptions {
  /** false: this is a fragment; later sends of the same type continue the message. */
  fin?: boolean;
  /** Payload is already deflated (RFC 7692): sets RSV1 on the message's first frame. */
  compressed?: boolean;
}

export const DEFAULT_MAX_SIZE = 1024 * 1024;

/**
 * The WebSocket connection as a state machine, without I/O (the model of
 * python-websockets' protocol.py). Bytes go in through receiveData(); frames come out
 * of nextFrame() and are turned into events by receiveFrame(). Everything to write goes
 * to an output queue read with takeOutput(). Nothing here blocks, reads a clock or
 * touches a socket: the transport decides when to call what.
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
   * Sees every outgoing frame before it is encoded; returns the frame to write (possibly
   * changed) or null to drop it. The transport's outbound frame stages hook in here.
   */
  onOutboundFrame: ((frame: Frame) => Frame | null) | undefined;

  private readonly parser: AssemblingParser;
  private readonly assembler: MessageAssembler;
  private readonly compression: boolean;
  private output: Buffer[] = [];
  private events: ProtocolEvent[] = [];
  /** The last frame of a compressed message was announced and is not inflated yet. */
  private inflating = false;
  private readonly holdCloseOnFailure: boolean;
  /** The Close that fail() holds until releaseClose(). */
  private heldClose: { code: number; reason: string } | undefined;
  /** Opcode of the outgoing fragmented message in progress, 0 when none. */
  private outgoingOpcode: 0 | DataOpcode = 0;

  constructor(options: ProtocolOptions) {
    this.side = options.side;
    this.compression = options.compression ?? false;
    this.holdCloseOnFailure = options.holdCloseOnFailure ?? false;
    this.assembler = new MessageAssembler(
      options.maxMessageSize ?? DEFAULT_MAX_SIZE,
      options.maxFragments ?? DEFAULT_MAX_FRAGMENTS,
    );
    this.parser = new AssemblingParser(
      {
        side: options.side,
        maxFrameSize: options.maxFrameSize ?? DEFAULT_MAX_SIZE,
        allowedRsv: this.compression ? Rsv.RSV1 : 0,
      },
      this.assembler,
    );
  }

  get maxMessageSize(): number {
    return this.assembler.maxMessageSize;
  }

  /** Bytes received and held by the parser. */
  get bufferedInbound(): number {
    return this.parser.bufferedAmount;
  }

  /** Room left in the compressed message being inflated. */
  get inflateBudget(): number {
    return this.assembler.remaining;
  }

  /** Should the transport close the TCP connection now? RFC 6455 §7.1.1: the server closes first. */
  get shouldCloseTransport(): boolean {
    if (this.failure !== undefined) return this.heldClose === undefined;
    return this.side === 'server' && this.closeSent !== undefined && this.closeReceived !== undefined;
  }

  // ---- inbound -------------------------------------------------------------------------

  receiveData(chunk: Buffer): void {
    // RFC 6455 §5.5.1: nothing is processed after the peer's Close frame.
    if (this.closeReceived !== undefined || this.failure !== undefined || this.state === ReadyState.CLOSED)
      return;
    this.parser.push(chunk);
  }

  /**
   * Is the next frame a continuation frame that is already received whole? A transport
   * collecting the frames of a compressed message to inflate them in one go asks this.
   */
  get continuationReady(): boolean {
    if (this.closeReceived !== undefined || this.failure !== undefined) return false;
    return this.parser.peekComplete() === Opcode.CONTINUATION;
  }

  /**
   * The next frame parsed from the received bytes, or null (need more bytes, or failed).
   * Not while the last frame of a compressed message waits for inflation: what follows it
   * belongs to the next message. Earlier frames of that message may still be waiting.
   */
  nextFrame(): Frame | null {
    if (this.inflating) throw new Error('nextFrame() called while a compressed message is being inflated');
    if (this.closeReceived !== undefined || this.failure !== undefined) return null;
    try {
      return this.parser.next();
    } catch (err) {
      this.failReceived(asWebSocketError(err));
      return null;
    }
  }

  /** Applies the state machine to a frame (normally one from nextFrame()). */
  receiveFrame(frame: Frame): void {
    if (this.closeReceived !== undefined || this.failure !== undefined) return;
    try {
      if (isControlOpcode(frame.opcode)) this.receiveControl(frame);
      else this.emitAssembly(this.assembler.pushFrame(frame));
    } catch (err) {
      this.failReceived(asWebSocketError(err));
    }
  }

  /**
   * Inflated bytes of the compressed frames announced by 'inflate' events, in order;
   * `last` marks the final piece of the frames announced so far (the message ends when the
   * last of them had fin, passed as `fin`).
   */
  receiveInflated(chunk: Buffer, last: boolean, fin: boolean): void {
    if (last) this.inflating = false;
    if (this.failure !== undefined) return;
    try {
      this.emitAssembly(this.assembler.pushInflated(chunk, last && fin));
    } catch (err) {
      this.failReceived(asWebSocketError(err));
    }
  }

  /** The transport reports a failure of inflation (invalid deflate data: 1007). */
  inflateFailed(message: string): void {
    this.inflating = false;
    this.failReceived(new WebSocketError(CloseCode.INVALID_FRAME_PAYLOAD_DATA, message));
  }

  /** The transport is gone (EOF, reset or destroyed). */
  connectionLost(): void {
    this.state = ReadyState.CLOSED;
    this.heldClose = undefined;
    this.inflating = false;
    this.parser.discard(); // nothing received is processed after the connection is gone
  }

  takeEvents(): ProtocolEvent[] {
    const events = this.events;
    if (events.length === 0) return events;
    this.events = [];
    return events;
  }

  // ---- outbound ------------------------------------------------------------------------

  /**
   * Queues a data message or fragment. RFC 6455 §5.4: fragments of one message are not
   * interleaved with other data messages, so a new message cannot start before the
   * fragmented one ends.
   */
  send(opcode: DataOpcode, payload: Buffer, options: ProtocolSendOptions = {}): void {
    this.assertCanSend();
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
      if (!this.compression) throw new TypeError('permessage-deflate was not negotiated');
      rsv = Rsv.RSV1; // RFC 7692 §6: RSV1 on the first frame only
    }
    this.outgoingOpcode = fin ? 0 : opcode;
    this.writeFrame({ fin, rsv, opcode: frameOpcode, masked: this.side === 'client', payload });
  }

  /** Is an outgoing fragmented message open (sent with fin: false)? */
  get sendingFragments(): boolean {
    return this.outgoingOpcode !== 0;
  }

  ping(payload: Buffer = Buffer.alloc(0)): void {
    this.assertCanSend();
    this.sendControl(Opcode.PING, payload);
  }

  pong(payload: Buffer = Buffer.alloc(0)): void {
    this.assertCanSend();
    this.sendControl(Opcode.PONG, payload);
  }

  /**
   * Starts the closing handshake (RFC 6455 §7.1.2), or answers the peer's Close.
   * `code` undefined sends a Close frame without a status code; no argument at all sends 1000.
   * (A default parameter would turn an explicit undefined into 1000, so the arguments are counted.)
   */
  close(...args: [code?: number | undefined, reason?: string]): void {
    const code = args.length === 0 ? CloseCode.NORMAL_CLOSURE : args[0];
    const reason = args[1] ?? '';
    if (this.closeSent !== undefined || this.state === ReadyState.CLOSED) return;
    const payload = buildClosePayload(code, reason);
    this.writeFrame({ fin: true, rsv: 0, opcode: Opcode.CLOSE, masked: this.side === 'client', payload });
    this.closeSent = { code: code ?? CloseCode.NO_STATUS_RCVD, reason };
    this.heldClose = undefined;
    this.state = ReadyState.CLOSING;
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
      this.closeSent = parsed ?? { code: CloseCode.NO_STATUS_RCVD, reason: '' };
      this.heldClose = undefined;
      this.state = ReadyState.CLOSING;
      return;
    }
    this.assertCanSend();
    this.writeFrame({ ...frame, masked: this.side === 'client' });
  }

  takeOutput(): Buffer[] {
    const out = this.output;
    if (out.length === 0) return out;
    this.output = [];
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

  /** The peer broke the protocol: fail, holding our Close if holdCloseOnFailure says so. */
  private failReceived(error: WebSocketError): void {
    this.failWith(error, this.holdCloseOnFailure);
  }

  private failWith(error: WebSocketError, hold: boolean): void {
    if (this.failure !== undefined) return;
    this.failure = error;
    this.inflating = false;
    this.parser.discard(); // nothing more is read from a failed connection
    this.events.push({ type: 'error', error });
    if (this.closeSent !== undefined || this.state === ReadyState.CLOSED) return;
    const code = isValidWireCloseCode(error.code) ? error.code : CloseCode.INTERNAL_SERVER_ERROR;
    const close = { code, reason: truncateUtf8(error.message) };
    if (hold) this.heldClose = close;
    else this.close(close.code, close.reason);
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
    if (this.closeSent === undefined && this.state !== ReadyState.CLOSED) this.close(held.code, held.reason);
  }

  // ---- internals -----------------------------------------------------------------------

  private receiveControl(frame: Frame): void {
    switch (frame.opcode) {
      case Opcode.PING:
        this.events.push({ type: 'ping', data: frame.payload });
        return;
      case Opcode.PONG:
        this.events.push({ type: 'pong', data: frame.payload });
        return;
      case Opcode.CLOSE: {
        const { code, reason } = parseClosePayload(frame.payload);
        this.closeReceived = { code, reason };
        this.parser.discard(); // RFC 6455 §5.5.1: nothing after the Close is processed
        this.events.push({ type: 'close', code, reason });
        // RFC 6455 §5.5.1: answer with a Close, echoing the status code received.
        if (this.closeSent === undefined) this.close(code === CloseCode.NO_STATUS_RCVD ? undefined : code);
        return;
      }
    }
  }

  private emitAssembly(result: ReturnType<MessageAssembler['pushFrame']>): void {
    if (result === null) return;
    if (result.type === 'inflate' && result.fin) this.inflating = true;
    this.events.push(result);
  }

  private sendControl(opcode: number, payload: Buffer): void {
    if (payload.length > 125) throw new RangeError('Control frame payload must be at most 125 bytes');
    this.writeFrame({ fin: true, rsv: 0, opcode, masked: this.side === 'client', payload });
  }

  private assertCanSend(): void {
    if (this.closeSent !== undefined || this.state !== ReadyState.OPEN) {
      throw new InvalidStateError(
        'The connection is closing or closed',
        this.state === ReadyState.OPEN ? ReadyState.CLOSING : this.state,
      );
    }
  }

  private writeFrame(frame: Frame): void {
    if (this.onOutboundFrame !== undefined) {
      const changed = this.onOutboundFrame(frame);
      if (changed === null) return;
      frame = changed;
    }
    const parts = encodeFrame(frame);
    for (const part of parts) this.output.push(part);
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
