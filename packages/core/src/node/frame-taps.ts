import type { Frame } from '../protocol/frame.js';

/** A frames() reader: the frames it has not read yet. */
type FrameTap = Frame[] & { wake?: () => void };

/** Frames a reader may fall behind before the socket stops being read. */
const FRAME_TAP_LIMIT = 1024;

export interface FrameTapsHost {
  pauseReading(reason: number): void;
  resumeReading(reason: number): void;
  /** The connection is closed: readers end once they have read what they had. */
  readonly ended: boolean;
}

/**
 * The readers of `ws.frames()`: each gets every inbound frame (after the inbound stages)
 * in order. A reader that falls FRAME_TAP_LIMIT frames behind stops the socket being read
 * until it has caught up with half of them.
 */
export class FrameTaps {
  private readonly taps = new Set<FrameTap>();
  private readonly host: FrameTapsHost;
  private readonly reason: number;
  private paused = false;

  constructor(host: FrameTapsHost, reason: number) {
    this.host = host;
    this.reason = reason;
  }

  /** Hands a frame to every reader; `closing`: our Close is out, never hold reading back. */
  push(frame: Frame, closing: boolean): void {
    for (const tap of this.taps) {
      tap.push(frame);
      tap.wake?.();
      // Once our Close is out, a slow reader must not hide the peer's Close.
      if (tap.length >= FRAME_TAP_LIMIT && !closing && !this.paused) {
        this.paused = true;
        this.host.pauseReading(this.reason);
      }
    }
  }

  /** Wakes the readers (the connection ended, or reading may go on). */
  wakeAll(): void {
    for (const tap of this.taps) tap.wake?.();
  }

  /** Stop holding reading back. */
  release(): void {
    if (!this.paused) return;
    this.paused = false;
    this.host.resumeReading(this.reason);
  }

  reader(): AsyncIterable<Frame> {
    const tap: FrameTap = [];
    const taps = this.taps;
    const host = this.host;
    taps.add(tap);
    const catchUp = () => {
      if (tap.length < FRAME_TAP_LIMIT / 2) this.release();
    };
    return {
      [Symbol.asyncIterator](): AsyncIterator<Frame> {
        return {
          async next(): Promise<IteratorResult<Frame>> {
            for (;;) {
              const frame = tap.shift();
              if (frame !== undefined) {
                catchUp();
                return { value: frame, done: false };
              }
              if (host.ended || !taps.has(tap)) return { value: undefined, done: true };
              await new Promise<void>((resolve) => {
                tap.wake = resolve;
              });
            }
          },
          async return(): Promise<IteratorResult<Frame>> {
            taps.delete(tap);
            tap.length = 0;
            catchUp();
            return { value: undefined, done: true };
          },
        };
      },
    };
  }
}
