import type { Duplex } from 'node:stream';
import type { Logger } from './logger.js';

/**
 * The handshakeTimeout of upgrade requests: a socket whose handshake is not answered in
 * time is destroyed. Timed from the first sign of the request (a new connection, an
 * 'upgrade' event or a framework starting to route it) to the answer.
 *
 * Every socket gets the same timeout, so the order they were tracked in is the order of
 * their deadlines: the sockets wait in one insertion-ordered Map and one Node timer, armed
 * for the oldest, serves them all (no Timeout and closure per handshake).
 */
export class HandshakeTimers {
  /** Deadlines (performance.now() ms) of the sockets being timed, oldest first. */
  private readonly due = new Map<Duplex, number>();
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly timeout: number,
    private readonly log: Logger,
  ) {}

  /** Starts timing `socket`'s handshake, unless it is already timed. */
  track(socket: Duplex): void {
    if (this.timeout <= 0 || this.due.has(socket)) return;
    // (No 'close' listener: an entry for a socket already gone is dropped at its deadline,
    // and a listener would stay attached for the connection's whole life.)
    const deadline = performance.now() + this.timeout;
    this.due.set(socket, deadline);
    if (this.timer === undefined) this.arm(deadline);
  }

  /**
   * The handshake of `socket` was answered (101 or a refusal). A later request on the same
   * keep-alive connection is timed anew. While other sockets wait the timer stays armed
   * (when it fires, it moves on to the oldest one left); with none left it is cleared.
   */
  done(socket: Duplex): void {
    if (!this.due.delete(socket) || this.due.size > 0 || this.timer === undefined) return;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(deadline: number): void {
    this.timer = setTimeout(() => this.expire(), Math.max(1, Math.ceil(deadline - performance.now())));
    this.timer.unref();
  }

  private expire(): void {
    this.timer = undefined;
    const now = performance.now();
    for (const [socket, deadline] of this.due) {
      if (deadline > now) {
        this.arm(deadline);
        return;
      }
      this.due.delete(socket);
      if (socket.destroyed) continue;
      this.log.debug({ handshakeTimeout: this.timeout }, 'handshake timeout: dropping the socket');
      socket.destroy();
    }
  }
}
