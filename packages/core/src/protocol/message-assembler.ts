import { invalidPayload, protocolError, tooBig } from './errors.js';
import { type DataOpcode, type Frame, Opcode, Rsv } from './frame.js';
import type { FrameHeader } from './frame-parser.js';
import { PieceCollector } from './piece-collector.js';
import { isValidUtf8, Utf8Validator } from './utf8.js';

/** Default maxFragments: frames per message (ws's server allows 16384 as well). */
export const DEFAULT_MAX_FRAGMENTS = 16384;

export type AssemblyResult =
  | { type: 'message'; opcode: DataOpcode; data: Buffer }
  | { type: 'inflate'; data: Buffer; fin: boolean }
  | null;

/**
 * Joins data frames into messages (RFC 6455 §5.4): checks the fragment sequence,
 * enforces maxMessageSize while assembling, and validates text as it arrives so that
 * invalid UTF-8 fails at the first fragment (or piece of a fragment) that contains it.
 * Compressed messages (RSV1 on the first frame, RFC 7692 §6) are handed out frame by
 * frame for inflation, and their inflated bytes come back through pushInflated().
 */
export class MessageAssembler {
  maxMessageSize: number;
  /** Frames one message may span; one more fails with 1009 from its header. */
  maxFragments: number;
  /** Opcode of the message being assembled, 0 when between messages. */
  private opcode: 0 | DataOpcode = 0;
  private compressed = false;
  private size = 0;
  /** Frames of the message being assembled so far. */
  private fragments = 0;
  /**
   * The pieces of the message being assembled (bounded memory however it is cut); created
   * by the first fragmented message, so connections that never get one don't pay for it.
   */
  private pieces: PieceCollector | undefined;
  /** Validates a text message split across frames (created for the first one). */
  private utf8: Utf8Validator | undefined;
  private lookahead: Utf8Validator | null = null;

  constructor(maxMessageSize: number, maxFragments = DEFAULT_MAX_FRAGMENTS) {
    this.maxMessageSize = maxMessageSize;
    this.maxFragments = maxFragments;
  }

  get inMessage(): boolean {
    return this.opcode !== 0;
  }

  /** Early checks from the header alone, before the payload is read. Throws WebSocketError. */
  checkHeader(h: FrameHeader): void {
    this.lookahead = null;
    if (h.opcode & 0x8) return;
    this.checkSequence(h.opcode);
    if (h.opcode === 0 && this.fragments >= this.maxFragments) {
      throw tooBig(`Message in more than ${this.maxFragments} fragments (maxFragments)`);
    }
    const compressed = h.opcode === 0 ? this.compressed : (h.rsv & Rsv.RSV1) !== 0;
    const size = h.opcode === 0 ? this.size : 0;
    if (!compressed && size + h.length > this.maxMessageSize) {
      throw tooBig(`Message of ${size + h.length}+ bytes exceeds maxMessageSize (${this.maxMessageSize})`);
    }
  }

  /** Validates the visible part of a text frame whose payload is still arriving. */
  checkPartialPayload(piece: Buffer, h: FrameHeader): void {
    const text = h.opcode === Opcode.TEXT || (h.opcode === 0 && this.opcode === Opcode.TEXT);
    const compressed = h.opcode === 0 ? this.compressed : (h.rsv & Rsv.RSV1) !== 0;
    if (!text || compressed) return;
    if (this.lookahead === null) {
      this.lookahead = h.opcode === 0 ? this.validator().clone() : new Utf8Validator();
    }
    if (!this.lookahead.write(piece)) throw invalidPayload('Invalid UTF-8 in text message');
  }

  /** Takes a complete data frame. Throws WebSocketError on a violation. */
  pushFrame(frame: Frame): AssemblyResult {
    this.lookahead = null;
    const { opcode, payload } = frame;
    this.checkSequence(opcode);
    if (opcode !== 0) {
      this.opcode = opcode as DataOpcode;
      this.compressed = (frame.rsv & Rsv.RSV1) !== 0;
      this.size = 0;
      this.fragments = 0;
      // Fast path: an uncompressed message in a single frame.
      if (frame.fin && !this.compressed) {
        this.opcode = 0;
        this.checkSize(payload.length);
        if (opcode === Opcode.TEXT && !isValidUtf8(payload))
          throw invalidPayload('Invalid UTF-8 in text message');
        return { type: 'message', opcode: opcode as DataOpcode, data: payload };
      }
      this.validator().reset();
    }
    this.fragments++;
    if (this.compressed) return { type: 'inflate', data: payload, fin: frame.fin };
    return this.append(payload, frame.fin);
  }

  /** Takes inflated bytes of the current compressed message; `fin` marks its last piece. */
  pushInflated(chunk: Buffer, fin: boolean): AssemblyResult {
    if (!this.compressed || this.opcode === 0)
      throw protocolError('Inflated data outside a compressed message');
    return this.append(chunk, fin);
  }

  /** Room left in the current message before maxMessageSize (for bounded inflation). */
  get remaining(): number {
    return this.maxMessageSize - this.size;
  }

  private append(chunk: Buffer, fin: boolean): AssemblyResult {
    this.checkSize(this.size + chunk.length);
    if (this.opcode === Opcode.TEXT && chunk.length > 0 && !this.validator().write(chunk)) {
      this.discard();
      throw invalidPayload('Invalid UTF-8 in text message');
    }
    if (chunk.length > 0) {
      this.pieces ??= new PieceCollector();
      this.pieces.add(chunk, this.maxMessageSize - this.size - chunk.length);
      this.size += chunk.length;
    }
    if (!fin) return null;
    const opcode = this.opcode as DataOpcode;
    if (opcode === Opcode.TEXT && !this.validator().end()) {
      this.discard();
      throw invalidPayload('Text message ends inside a UTF-8 sequence');
    }
    const data = this.pieces?.take() ?? Buffer.alloc(0);
    this.discard();
    return { type: 'message', opcode, data };
  }

  private checkSequence(opcode: number): void {
    if (opcode === 0) {
      if (this.opcode === 0) throw protocolError('Continuation frame without a message to continue');
    } else if (this.opcode !== 0) {
      throw protocolError('New data frame inside a fragmented message');
    }
  }

  private checkSize(size: number): void {
    if (size > this.maxMessageSize) {
      this.discard();
      throw tooBig(`Message of ${size}+ bytes exceeds maxMessageSize (${this.maxMessageSize})`);
    }
  }

  private discard(): void {
    this.opcode = 0;
    this.compressed = false;
    this.size = 0;
    this.fragments = 0;
    this.pieces?.clear();
  }

  private validator(): Utf8Validator {
    this.utf8 ??= new Utf8Validator();
    return this.utf8;
  }
}
