/** Pieces smaller than this are copied together into blocks. */
const MIN_KEPT_PIECE = 1024;
const BLOCK_SIZE = 16 * 1024;

/**
 * Collects the pieces of something that arrives in parts (a frame's payload over several
 * reads, a message over several frames) so that it costs at most about twice its size,
 * however it was cut. A piece that is small, or a small view of a larger buffer (a frame
 * inside a socket read), is copied into a block shared with its neighbours: kept as is,
 * a million 1-byte pieces would cost a Buffer object each, and a 1-byte view can pin a
 * 64 KiB read. Larger pieces are kept without a copy.
 */
export class PieceCollector {
  /** Bytes collected. */
  size = 0;
  private parts: Buffer[] | undefined;
  /** The block small pieces are copied into, and how much of it is used. */
  private block: Buffer | undefined;
  private blockUsed = 0;

  /** Number of buffers held (blocks count once). */
  get count(): number {
    return this.parts?.length ?? 0;
  }

  /** Adds a piece; `room` is how many more bytes may still come (bounds a new block). */
  add(piece: Buffer, room: number): void {
    if (piece.length === 0) return;
    this.parts ??= [];
    const parts = this.parts;
    this.size += piece.length;
    if (piece.length >= MIN_KEPT_PIECE && piece.length * 2 >= piece.buffer.byteLength) {
      parts.push(piece);
      this.block = undefined;
      return;
    }
    const block = this.block;
    if (block !== undefined && this.blockUsed + piece.length <= block.length) {
      piece.copy(block, this.blockUsed);
      this.blockUsed += piece.length;
      parts[parts.length - 1] = block.subarray(0, this.blockUsed);
      return;
    }
    const next = Buffer.allocUnsafeSlow(Math.max(piece.length, Math.min(BLOCK_SIZE, piece.length + room)));
    piece.copy(next, 0);
    this.block = next;
    this.blockUsed = piece.length;
    parts.push(next.subarray(0, piece.length));
  }

  /** Everything collected as one buffer (no copy when it is one piece); then empty. */
  take(): Buffer {
    const parts = this.parts ?? [];
    let data = parts.length === 1 ? parts[0]! : Buffer.concat(parts, this.size);
    // A short result left in a block gives the block back.
    const block = this.block;
    if (block !== undefined && data.buffer === block.buffer && data.length * 2 < block.length) {
      data = Buffer.from(data);
    }
    this.clear();
    return data;
  }

  /** Copies what was collected into `target` from offset 0; then empty. */
  moveTo(target: Buffer): void {
    let at = 0;
    for (const part of this.parts ?? []) {
      part.copy(target, at);
      at += part.length;
    }
    this.clear();
  }

  clear(): void {
    this.size = 0;
    this.parts = undefined;
    this.block = undefined;
    this.blockUsed = 0;
  }
}
