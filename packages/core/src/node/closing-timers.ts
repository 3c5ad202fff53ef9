import type { Clock } from './timer-wheel.js';

/** What the closing timers read and do on their connection. */
export interface ClosingHost {
  /** The consumers are done with everything delivered, and no send is waiting. */
  readonly settled: boolean;
  /** Sends the Close the protocol holds after a failure. */
  releaseHeldClose(): void;
  /** The closing handshake took longer than closeTimeout: destroy the socket. */
  closeTimedOut(): void;
}

/**
 * The two deadlines of closing. The close timer bounds the closing handshake and the
 * TCP close after it (closeTimeout from our Close, the peer's, or the end of a
 * stream). The settle wait bounds how long a Close held after the peer's violation
 * waits for the consumers to finish the messages that arrived before it: it is sent one
 * event-loop turn after they are done (so 'message' listeners' replies go first), or
 * after closeTimeout.
 */
export class ClosingTimers {
  private readonly host: ClosingHost;
  private readonly clock: Clock;
  private readonly timeout: number;
  private closeTimer: unknown;
  private settleTimer: unknown;
  private settleCheck = false;

  constructor(host: ClosingHost, clock: Clock, timeout: number) {
    this.host = host;
    this.clock = clock;
    this.timeout = timeout;
  }

  armClose(): void {
    if (this.closeTimer !== undefined) return;
    this.closeTimer = this.clock.setTimer(() => this.host.closeTimedOut(), this.timeout);
  }

  /** A Close is held: release it once the consumers settle, or after closeTimeout. */
  waitForSettle(): void {
    if (this.settleTimer !== undefined) return;
    this.settleTimer = this.clock.setTimer(() => this.host.releaseHeldClose(), this.timeout);
    this.checkSettled();
  }

  /** Something the settle wait depends on changed. */
  checkSettled(): void {
    if (this.settleTimer === undefined || this.settleCheck || !this.host.settled) return;
    this.settleCheck = true;
    setImmediate(() => {
      this.settleCheck = false;
      if (!this.host.settled) return;
      this.clock.clearTimer(this.settleTimer);
      this.host.releaseHeldClose();
    });
  }

  clear(): void {
    this.clock.clearTimer(this.closeTimer);
    this.clock.clearTimer(this.settleTimer);
  }
}
