/**
 * What a connection needs from a per-message compression extension. The zlib-backed
 * implementation is in deflate.ts; the protocol layer only sees compressed payloads.
 */
export interface MessageCompressor {
  /** Messages smaller than this many bytes are sent uncompressed. */
  readonly threshold: number;
  /**
   * Deflates one frame's worth of an outgoing message. `fin` ends the message: the
   * trailing empty block 00 00 ff ff is removed (RFC 7692 §7.2.1).
   */
  compress(data: Buffer, fin: boolean): Promise<Buffer>;
  /**
   * Inflates one frame of an incoming message, or several consecutive frames of it (in
   * order), handing each piece of output to `onChunk` as it is produced. `fin` ends the
   * message (00 00 ff ff is appended first, RFC 7692 §7.2.2). Stops and rejects with a
   * WebSocketError 1009 as soon as more than `limit` bytes came out, or 1007 for invalid
   * deflate data.
   */
  decompress(
    data: Buffer | readonly Buffer[],
    fin: boolean,
    limit: number,
    onChunk: (chunk: Buffer) => void,
  ): Promise<void>;
  /** Releases the zlib contexts; later calls reject. */
  close(): void;
}
