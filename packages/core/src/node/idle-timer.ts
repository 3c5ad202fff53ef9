import { type Clock, TimerWheel } from './timer-wheel.js';

/** What the idle check reads and does on a connection. */
export interface IdleWatched {
  /** When bytes last arrived, on the clock's time line. */
  lastActivity: number;
  /** Reading is paused by backpressure: the peer's silence can't be observed. */
  readonly readingPaused: boolean;
  readonly ended: boolean;
  /** Nothing arrived for `idle` ms (at least connectionTimeout). */
  idleTimeout(idle: number): void;
}

/**
 * connectionTimeout: the idle checks of all connections with the same timeout (and
 * clock) share one TimerWheel, so a connection costs a Set entry, not a Node timer. A
 * silent connection is reported between connectionTimeout and connectionTimeout + one
 * slot (1/16 of it, at most 1 s) after its last bytes arrived.
 */
export const IdleTimer = {
  start(ws: IdleWatched, timeout: number, clock: Clock): void {
    if (timeout > 0) wheelFor(timeout, clock).add(ws); // once per connection
  },

  stop(ws: IdleWatched, timeout: number, clock: Clock): void {
    if (timeout > 0) wheelFor(timeout, clock).cancel(ws);
  },
};

const wheels = new WeakMap<Clock, Map<number, TimerWheel<IdleWatched>>>();

function wheelFor(timeout: number, clock: Clock): TimerWheel<IdleWatched> {
  let byTimeout = wheels.get(clock);
  if (byTimeout === undefined) {
    byTimeout = new Map();
    wheels.set(clock, byTimeout);
  }
  let wheel = byTimeout.get(timeout);
  if (wheel === undefined) {
    const created = new TimerWheel<IdleWatched>(
      timeout,
      (ws) => {
        check(ws, created, clock);
        return false; // check() schedules the next one itself
      },
      clock,
    );
    byTimeout.set(timeout, created);
    wheel = created;
  }
  return wheel;
}

function check(ws: IdleWatched, wheel: TimerWheel<IdleWatched>, clock: Clock): void {
  if (ws.ended) return;
  const now = clock.now();
  if (ws.readingPaused) ws.lastActivity = now;
  const idle = now - ws.lastActivity;
  if (idle < wheel.period) wheel.schedule(ws, wheel.period - idle);
  else ws.idleTimeout(idle);
}
