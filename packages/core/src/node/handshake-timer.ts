import type { Duplex } from 'node:stream';
import type { Logger } from './logger.js';

/**
 * The handshakeTimeout of upgrade requests: a socket whose handshake is not answered in
 * time is destroyed. One timer per socket, from the first sign of the request (a new
 * connection, an 'upgrade' event or a framework starting to route it) to the answer.
 */
export class HandshakeTimers {
  private readonly timers = new WeakMap<Duplex, NodeJS.Timeout | null>();

  constructor(
    private readonly timeout: number,
    private readonly log: Logger,
  ) {}

  /** Starts timing `socket`'s handshake, unless it is already timed. */
  track(socket: Duplex): void {
    if (this.timeout <= 0) return;
    // null: an earlier request on this keep-alive connection finished; time this one anew.
    // (No 'close' listener: a timer that fires for a socket already gone does nothing,
    // and a listener would stay attached for the connection's whole life.)
    const current = this.timers.get(socket);
    if (current !== undefined && current !== null) return;
    const timer = setTimeout(() => {
      if (socket.destroyed) return;
      this.log.debug({ handshakeTimeout: this.timeout }, 'handshake timeout: dropping the socket');
      socket.destroy();
    }, this.timeout);
    timer.unref();
    this.timers.set(socket, timer);
  }

  /** The handshake of `socket` was answered (101 or a refusal). */
  done(socket: Duplex): void {
    const timer = this.timers.get(socket);
    if (timer) clearTimeout(timer);
    this.timers.set(socket, null);
  }
}
