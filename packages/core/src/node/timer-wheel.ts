/**
 * Where timers come from: the system's by default, a fake one in tests. The default reads
 * the global setTimeout and performance.now at each call, so test frameworks that replace
 * those (vitest's fake timers) drive it too.
 */
export interface Clock {
  /** Monotonic milliseconds. */
  now(): number;
  setTimer(callback: () => void, ms: number): unknown;
  clearTimer(handle: unknown): void;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  setTimer: (callback, ms) => setTimeout(callback, ms),
  clearTimer: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout> | undefined),
};

/** setTimeout's longest delay: a longer one would fire after 1 ms. */
const MAX_TIMER_DELAY = 2 ** 31 - 1;

/**
 * Timers of many connections on one Node timer: the keepalive pings of all connections
 * with the same pingInterval, the idle checks of all those with the same
 * connectionTimeout. An entry costs a Set entry instead of a Timeout and a closure.
 *
 * Time is cut into slots of `period / k` ms, with k = max(16, period / 1 s): at least 16
 * slots per period and slots of at most a second (15 s: 937.5 ms; 60 s: 1 s; 200 ms:
 * 12.5 ms). An entry fires in the first tick at or after its due time — never early, at
 * most one slot late (plus the event loop's own delay) — together with the other entries
 * of its slot. An entry whose callback returns true fires again exactly one period after
 * its slot, so a periodic entry keeps its period; for another delay, the callback calls
 * schedule() and returns false. No entry is due more than a period ahead, so there are
 * at most k + 2 slots, and cancel() looks through them rather than keeping an index of
 * the entries. The Node timer is armed only while entries exist (it is cleared when the
 * last one is cancelled), so it never keeps the process alive on its own. A non-finite
 * delay never fires.
 * @internal
 */
export class TimerWheel<T> {
  readonly period: number;
  private readonly slotsPerPeriod: number;
  private readonly slotMs: number;
  private readonly onDue: (item: T) => boolean;
  /** Entries by slot number: slot n starts at n * slotMs on the monotonic clock. */
  private readonly slots = new Map<number, Set<T>>();
  private timer: unknown;
  private readonly clock: Clock;
  /** The slot the Node timer is armed for; Infinity when there is no timer. */
  private timerSlot = Infinity;
  private ticking = false;
  /** The entry whose callback is running, and whether it was cancelled or rescheduled meanwhile. */
  private firing: { item: T; settled: boolean } | undefined;

  /** `onDue(item)` runs when an entry is due; true schedules it again one period after its slot. */
  constructor(period: number, onDue: (item: T) => boolean, clock: Clock = systemClock) {
    this.clock = clock;
    if (!(period > 0)) throw new RangeError(`TimerWheel period must be positive (got ${period})`);
    this.period = period;
    this.onDue = onDue;
    const finite = Number.isFinite(period);
    this.slotsPerPeriod = finite ? Math.max(16, Math.ceil(period / 1000)) : 16;
    this.slotMs = finite ? period / this.slotsPerPeriod : 1000;
  }

  /**
   * Fires `item` once `delay` ms have passed (default and longest: one period); replaces
   * its earlier schedule.
   */
  schedule(item: T, delay: number = this.period): void {
    if (this.firing !== undefined && this.firing.item === item) this.firing.settled = true;
    if (!Number.isFinite(delay)) {
      this.cancel(item);
      return;
    }
    this.remove(item);
    this.add(item, delay);
  }

  /**
   * schedule() for an item known not to be scheduled (a connection's first schedule):
   * skips the search for an earlier entry.
   */
  add(item: T, delay: number = this.period): void {
    if (!Number.isFinite(delay)) return;
    const now = this.clock.now();
    const due = now + Math.min(delay, this.period);
    // Never a slot whose time has come: an entry fires in a later tick, not in this one.
    this.insert(item, Math.max(Math.ceil(due / this.slotMs), Math.floor(now / this.slotMs) + 1));
  }

  cancel(item: T): void {
    // Cancelled from inside its own callback (e.g. the connection closed meanwhile): the
    // callback's "again" must not bring it back.
    if (this.firing !== undefined && this.firing.item === item) this.firing.settled = true;
    if (this.remove(item) && this.slots.size === 0) this.arm(); // the last one: clear the timer
  }

  private insert(item: T, slot: number): void {
    let items = this.slots.get(slot);
    if (items === undefined) {
      items = new Set();
      this.slots.set(slot, items);
    }
    items.add(item);
    if (slot < this.timerSlot) this.arm();
  }

  private remove(item: T): boolean {
    for (const [slot, items] of this.slots) {
      if (!items.delete(item)) continue;
      if (items.size === 0) this.slots.delete(slot);
      return true;
    }
    return false;
  }

  private firstSlot(): number {
    let first = Infinity;
    for (const slot of this.slots.keys()) if (slot < first) first = slot;
    return first;
  }

  /** Arms the Node timer for the earliest slot, or clears it when there is none. */
  private arm(): void {
    if (this.ticking) return; // tick() arms once it is done
    const slot = this.firstSlot();
    if (slot === this.timerSlot) return;
    if (this.timer !== undefined) this.clock.clearTimer(this.timer);
    this.timer = undefined;
    this.timerSlot = slot;
    if (slot === Infinity) return;
    const delay = Math.ceil(slot * this.slotMs - this.clock.now());
    this.timer = this.clock.setTimer(() => this.tick(), Math.min(Math.max(delay, 1), MAX_TIMER_DELAY));
  }

  private tick(): void {
    this.timer = undefined;
    this.timerSlot = Infinity;
    this.ticking = true;
    try {
      const current = Math.floor(this.clock.now() / this.slotMs); // the last slot that has begun
      for (let slot = this.firstSlot(); slot <= current; slot = this.firstSlot()) {
        // Entries (re)scheduled meanwhile go to later slots, so this slot empties. It stays
        // in `slots` until then, so that a callback can still cancel the entries left in it.
        const items = this.slots.get(slot)!;
        for (const item of items) {
          items.delete(item);
          if (items.size === 0) this.slots.delete(slot);
          const firing = { item, settled: false };
          this.firing = firing;
          let again: boolean;
          try {
            again = this.onDue(item);
          } finally {
            this.firing = undefined;
          }
          if (again && !firing.settled) {
            // After a long stall of the event loop, not again at once: one slot later.
            this.insert(item, Math.max(slot + this.slotsPerPeriod, current + 1));
          }
        }
      }
    } finally {
      this.ticking = false;
      this.arm();
    }
  }
}
