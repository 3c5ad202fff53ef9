import { protocolError, tooBig, WebSocketError } from './errors.js';
import { type Frame, isControlOpcode, isKnownOpcode, MAX_CONTROL_PAYLOAD, Rsv } from './frame.js';
import { applyMask } from './mask.js';
import { PieceCollector } from './piece-collector.js';

export interface FrameHeader {
  fin: boolean;
  rsv: number;
  opcode: number;
  masked: boolean;
  length: number;
}

export interface FrameParserOptions {
  /** 'server' expects masked frames, 'client' unmasked ones (RFC 6455 §5.1). */
  side: 'client' | 'server';
  /** Largest payload accepted; a larger length fails with 1009 before any payload is read. */
  maxFrameSize: number;
  /** RSV bits that negotiated extensions give a meaning to (RSV1 for permessage-deflate). */
  allowedRsv?: number;
  /** Called once a header is complete and valid, before its payload is read. May throw. */
  onHeader?: (header: FrameHeader) => void;
  /** Called with each unmasked piece of a payload that is still incomplete. May throw. */
  onPartialPayload?: (piece: Buffer, header: FrameHeader) => void;
}

const EMPTY = Buffer.alloc(0);
/** Payloads split across reads from this size up are gathered into one buffer as they come. */
const MIN_WHOLE = 4096;
/** The chunk list while nothing is buffered; push() replaces it, so it is never written. */
const NO_CHUNKS: Buffer[] = [];
/** applyMask() takes the key as bytes: filled from a parser's key right before each use. */
const MASK_BYTES = new Uint8Array(4);

function maskBytes(key: number): Uint8Array {
  MASK_BYTES[0] = key >>> 24;
  MASK_BYTES[1] = (key >>> 16) & 0xff;
  MASK_BYTES[2] = (key >>> 8) & 0xff;
  MASK_BYTES[3] = key & 0xff;
  return MASK_BYTES;
}

/**
 * Incremental frame parser: bytes in, frames out. Bytes may arrive in any chunking.
 * Header rules of RFC 6455 §5.2-§5.5 are checked as soon as the header is complete,
 * so an oversized or malformed frame fails before its payload is buffered.
 */
export class FrameParser {
  allowedRsv: number;
  maxFrameSize: number;
  private readonly expectMasked: boolean;
  private readonly onHeader: FrameParserOptions['onHeader'];
  private readonly onPartialPayload: FrameParserOptions['onPartialPayload'];

  /** The bytes received and not parsed yet; NO_CHUNKS when there are none (no array kept). */
  private chunks: Buffer[] = NO_CHUNKS;
  private buffered = 0;
  // Frame whose header is read but whose payload is still arriving.
  private header: FrameHeader | null = null;
  /** The masking key of the current frame (RFC 6455 §5.3) as an int32: no buffer per parser. */
  private maskKey = 0;
  /**
   * The pieces of that payload received so far, unmasked. Memory follows the bytes that
   * actually arrived, not the length the header announced: a peer that sends only a
   * header costs the header.
   */
  private pieces: PieceCollector | undefined; // created by the first payload split across reads
  /**
   * The whole payload's buffer, allocated once half of the payload has arrived (so it
   * costs at most twice the bytes received): later pieces are unmasked straight into it,
   * with no copy into pieces and no join at the end.
   */
  private whole: Buffer | undefined;
  private received = 0;
  private failed = false;

  constructor(options: FrameParserOptions) {
    this.expectMasked = options.side === 'server';
    this.maxFrameSize = options.maxFrameSize;
    this.allowedRsv = options.allowedRsv ?? 0;
    this.onHeader = options.onHeader;
    this.onPartialPayload = options.onPartialPayload;
  }

  /** Bytes held that are not yet part of a returned frame. */
  get bufferedAmount(): number {
    return this.buffered + this.received;
  }

  /**
   * Hands bytes to the parser. The parser takes ownership: masked payloads are unmasked
   * in place, and frames may be views into `chunk` — pass a copy if you keep using it.
   */
  push(chunk: Buffer): void {
    if (chunk.length === 0 || this.failed) return;
    if (this.buffered === 0) this.chunks = [chunk];
    else this.chunks.push(chunk);
    this.buffered += chunk.length;
  }

  /** The next complete frame, or null until more bytes arrive. Throws WebSocketError. */
  next(): Frame | null {
    if (this.failed) return null;
    try {
      return this.parse();
    } catch (err) {
      this.discard();
      throw err;
    }
  }

  /**
   * The opcode of the next frame when all of it (header and payload) is buffered, so that
   * next() would return it at once; -1 otherwise. Reads nothing and checks nothing.
   */
  peekComplete(): number {
    if (this.failed) return -1;
    const h = this.header;
    if (h !== null) return this.received + this.buffered >= h.length ? h.opcode : -1;
    if (this.buffered < 2) return -1;
    const b1 = this.byteAt(1);
    const len7 = b1 & 0x7f;
    const extra = len7 === 126 ? 2 : len7 === 127 ? 8 : 0;
    const size = 2 + extra + ((b1 & 0x80) !== 0 ? 4 : 0);
    if (this.buffered < size) return -1;
    let length = len7;
    if (len7 === 126) length = (this.byteAt(2) << 8) | this.byteAt(3);
    else if (len7 === 127) {
      // Anything past 2^32 is never buffered whole: the high word only has to be zero.
      if ((this.byteAt(2) | this.byteAt(3) | this.byteAt(4) | this.byteAt(5)) !== 0) return -1;
      length =
        ((this.byteAt(6) << 24) | (this.byteAt(7) << 16) | (this.byteAt(8) << 8) | this.byteAt(9)) >>> 0;
    }
    return this.buffered - size >= length ? this.byteAt(0) & 0x0f : -1;
  }

  /** Drops every byte held and stops parsing (after a violation, or once the peer closed). */
  discard(): void {
    this.failed = true;
    this.chunks = NO_CHUNKS;
    this.buffered = 0;
    this.header = null;
    this.pieces?.clear();
    this.whole = undefined;
    this.received = 0;
  }

  private parse(): Frame | null {
    let header = this.header;
    if (header === null) {
      header = this.readHeader();
      if (header === null) return null;
      if (header.length <= this.buffered) {
        const payload = header.length === 0 ? EMPTY : this.take(header.length);
        if (header.masked && payload.length > 0) applyMask(payload, maskBytes(this.maskKey));
        return toFrame(header, payload);
      }
      // The payload spans several reads: keep its pieces as they arrive (unmasked in
      // place, so partial content can be inspected for UTF-8 fail-fast) and join them
      // once the last one is here.
      this.header = header;
      this.received = 0;
    }
    while (this.buffered > 0 && this.received < header.length) {
      const at = this.received;
      const n = Math.min(this.chunks[0]!.length, header.length - at);
      const piece = this.takeFront(n);
      let whole = this.whole;
      if (whole === undefined && (at + n) * 2 >= header.length && header.length >= MIN_WHOLE) {
        whole = Buffer.allocUnsafe(header.length);
        this.pieces?.moveTo(whole);
        this.whole = whole;
      }
      // Unmasked in place while the read is still in the cache, then copied if need be.
      if (header.masked) applyMask(piece, maskBytes(this.maskKey), at);
      let unmasked = piece;
      if (whole !== undefined) {
        piece.copy(whole, at);
        unmasked = whole.subarray(at, at + n);
      } else {
        this.pieces ??= new PieceCollector();
        this.pieces.add(piece, header.length - at - n);
      }
      this.received = at + n;
      if (this.received < header.length) this.partialPayload(unmasked, header);
    }
    if (this.received < header.length) return null;
    const payload = this.whole ?? this.pieces?.take() ?? EMPTY;
    this.whole = undefined;
    this.header = null;
    this.received = 0;
    return toFrame(header, payload);
  }

  private readHeader(): FrameHeader | null {
    if (this.buffered < 2) return null;
    const b0 = this.byteAt(0);
    const b1 = this.byteAt(1);
    const masked = (b1 & 0x80) !== 0;
    const len7 = b1 & 0x7f;
    const extra = len7 === 126 ? 2 : len7 === 127 ? 8 : 0;
    const size = 2 + extra + (masked ? 4 : 0);
    if (this.buffered < size) return null;

    const fin = (b0 & 0x80) !== 0;
    const rsv = (b0 >> 4) & 7;
    const opcode = b0 & 0x0f;
    // RFC 6455 §5.2: reserved bits must be 0 unless an extension defines them.
    if ((rsv & ~this.allowedRsv) !== 0)
      throw protocolError(`Reserved bits set without a negotiated extension (RSV=${rsv})`);
    if (!isKnownOpcode(opcode)) throw protocolError(`Reserved opcode 0x${opcode.toString(16)}`);
    if (isControlOpcode(opcode)) {
      // RFC 6455 §5.5: control frames are never fragmented and carry at most 125 bytes.
      if (!fin) throw protocolError('Fragmented control frame');
      if (len7 > MAX_CONTROL_PAYLOAD) throw protocolError('Control frame payload longer than 125 bytes');
      // RFC 7692 §6: per-message compression applies to data messages only.
      if (rsv !== 0) throw protocolError('Reserved bits set on a control frame');
    } else if (opcode === 0 && (rsv & Rsv.RSV1) !== 0) {
      // RFC 7692 §6.1: RSV1 marks the first frame of a compressed message only.
      throw protocolError('RSV1 set on a continuation frame');
    }
    // RFC 6455 §5.1: clients mask every frame, servers never do.
    if (masked !== this.expectMasked) {
      throw protocolError(masked ? 'Masked frame from the server' : 'Unmasked frame from the client');
    }

    let length = len7;
    if (len7 === 126) {
      length = (this.byteAt(2) << 8) | this.byteAt(3);
    } else if (len7 === 127) {
      const hi =
        ((this.byteAt(2) << 24) | (this.byteAt(3) << 16) | (this.byteAt(4) << 8) | this.byteAt(5)) >>> 0;
      const lo =
        ((this.byteAt(6) << 24) | (this.byteAt(7) << 16) | (this.byteAt(8) << 8) | this.byteAt(9)) >>> 0;
      // RFC 6455 §5.2: the most significant bit of a 64-bit length must be 0.
      if (hi & 0x80000000) throw protocolError('64-bit payload length with the most significant bit set');
      length = hi * 0x100000000 + lo;
    }
    if (length > this.maxFrameSize) {
      throw tooBig(`Frame payload of ${length} bytes exceeds maxFrameSize (${this.maxFrameSize})`);
    }
    if (masked) {
      const k = 2 + extra;
      this.maskKey =
        (this.byteAt(k) << 24) | (this.byteAt(k + 1) << 16) | (this.byteAt(k + 2) << 8) | this.byteAt(k + 3);
    }
    const header: FrameHeader = { fin, rsv, opcode, masked, length };
    this.dropFront(size);
    this.headerParsed(header);
    return header;
  }

  /** A header is complete and valid, its payload not read yet (calls options.onHeader). May throw. */
  protected headerParsed(header: FrameHeader): void {
    this.onHeader?.(header);
  }

  /** An unmasked piece of a payload that is still incomplete (calls options.onPartialPayload). May throw. */
  protected partialPayload(piece: Buffer, header: FrameHeader): void {
    this.onPartialPayload?.(piece, header);
  }

  private byteAt(index: number): number {
    for (const chunk of this.chunks) {
      if (index < chunk.length) return chunk[index]!;
      index -= chunk.length;
    }
    throw new WebSocketError(1011, 'Parser read past its buffer');
  }

  /** Removes `n` buffered bytes (n <= buffered). */
  private dropFront(n: number): void {
    this.buffered -= n;
    if (this.buffered === 0) {
      this.chunks = NO_CHUNKS; // everything read: don't keep the array's capacity
      return;
    }
    while (n > 0) {
      const first = this.chunks[0]!;
      if (n >= first.length) {
        n -= first.length;
        this.chunks.shift();
      } else {
        this.chunks[0] = first.subarray(n);
        n = 0;
      }
    }
  }

  /** Removes and returns the first `n` bytes of the first chunk (n <= its length), as a view. */
  private takeFront(n: number): Buffer {
    const first = this.chunks[0]!;
    const view = n === first.length ? first : first.subarray(0, n);
    this.dropFront(n);
    return view;
  }

  /** Removes and returns `n` buffered bytes: a view when they sit in one chunk. */
  private take(n: number): Buffer {
    const first = this.chunks[0]!;
    if (first.length >= n) {
      const out = first.subarray(0, n);
      this.dropFront(n);
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const chunk = this.chunks[0]!;
      const k = Math.min(chunk.length, n - filled);
      chunk.copy(out, filled, 0, k);
      filled += k;
      this.dropFront(k);
    }
    return out;
  }
}

function toFrame(h: FrameHeader, payload: Buffer): Frame {
  return { fin: h.fin, rsv: h.rsv, opcode: h.opcode, masked: h.masked, payload };
}
