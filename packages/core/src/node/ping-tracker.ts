import type { Clock } from './timer-wheel.js';

interface PendingPing {
  start: number;
  resolve: (rtt: number) => void;
  reject: (err: Error) => void;
}

/**
 * The Pings of one connection that wait for their Pong, by payload, and the round-trip
 * times their Pongs give. Holds no Map while nothing is pending (most of the time).
 */
export class PingTracker {
  private pending: Map<string, PendingPing> | undefined;
  private counter = 0;

  /** A payload for a Ping that has none of its own: a counter, unique among pending ones. */
  nextPayload(): Buffer {
    const payload = Buffer.allocUnsafe(4);
    payload.writeUInt32BE(this.counter++ >>> 0);
    return payload;
  }

  isPending(payload: Buffer): boolean {
    return this.pending?.has(payload.toString('latin1')) ?? false;
  }

  /** Resolves with the round-trip time once the Ping with this payload is answered. */
  track(payload: Buffer, clock: Clock): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      this.pending ??= new Map();
      this.pending.set(payload.toString('latin1'), { start: clock.now(), resolve, reject });
    });
  }

  /**
   * A Pong arrived: the round-trip time of the Ping it answers, or undefined when it
   * answers none (an unsolicited Pong). RFC 6455 §5.5.3: a Pong may answer only the latest
   * Ping; it acknowledges the earlier ones too.
   */
  answer(payload: Buffer, clock: Clock): number | undefined {
    const pending = this.pending;
    const key = payload.toString('latin1');
    if (pending === undefined || !pending.has(key)) return undefined;
    const now = clock.now();
    let rtt: number | undefined;
    for (const [k, ping] of pending) {
      pending.delete(k);
      const elapsed = now - ping.start;
      ping.resolve(elapsed);
      if (k === key) {
        rtt = elapsed;
        break;
      }
    }
    if (pending.size === 0) this.pending = undefined;
    return rtt;
  }

  /** The connection closed: every pending Ping fails with the error `err()` makes. */
  rejectAll(err: () => Error): void {
    const pending = this.pending;
    this.pending = undefined;
    if (pending !== undefined) for (const ping of pending.values()) ping.reject(err());
  }
}
