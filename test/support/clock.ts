/**
 * A fake clock for the tests of timeouts and keepalive (not a test file). Timers and clocks
 * are vitest's fakes, so a test moves time forward itself instead of sleeping, and a slow or
 * busy machine cannot make a timer fire early or late. setImmediate, process.nextTick and
 * queueMicrotask stay real: sockets need them to move bytes.
 */
import { afterEach, beforeEach, vi } from 'vitest';
import { realTimers } from './clients.js';

export const FAKED = [
  'setTimeout',
  'clearTimeout',
  'setInterval',
  'clearInterval',
  'Date',
  'performance',
] as const;

/** Fake timers for every test of the calling suite (real ones again before its cleanups run). */
export function useFakeClock(): void {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: [...FAKED] });
  });
  // Registered after the suite's resources, so it runs before their release (afterEach
  // hooks run newest first): cleanups that wait on a timer get real ones.
  afterEach(() => {
    vi.useRealTimers();
  });
}

/** One turn of the real event loop (I/O callbacks included). */
export const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Moves the fake clock forward `step` ms at a time until `promise` settles, letting real
 * I/O run between steps; resolves with its value and the fake time that passed. Rejects
 * when `limit` fake ms pass first, or after 10 s of real time.
 */
export async function advanceUntil<T>(
  promise: Promise<T>,
  {
    step = 10,
    limit = 60_000,
    what = 'the awaited event',
  }: { step?: number; limit?: number; what?: string } = {},
): Promise<{ value: T; elapsed: number }> {
  let settled = false;
  const tracked = promise.then(
    (value) => {
      settled = true;
      return value;
    },
    (err: unknown) => {
      settled = true;
      throw err;
    },
  );
  tracked.catch(() => {});
  const start = performance.now();
  const realDeadline = realTimers.now() + 10_000;
  for (;;) {
    // A few real turns first: what was written may need them to arrive and be handled.
    for (let i = 0; i < 3 && !settled; i++) await turn();
    if (settled) break;
    const elapsed = performance.now() - start;
    if (elapsed >= limit) throw new Error(`${what}: not within ${limit} ms of fake time`);
    if (realTimers.now() > realDeadline) throw new Error(`${what}: not within 10 s of real time`);
    await vi.advanceTimersByTimeAsync(step);
  }
  return { value: await tracked, elapsed: performance.now() - start };
}
