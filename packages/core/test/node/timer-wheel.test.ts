/** The shared keepalive / idle timer, on vitest's fake clock (it reads setTimeout and performance.now). */
import { describe, expect, it, vi } from 'vitest';
import { useFakeClock } from '../../../../test/support/clock.js';
import { TimerWheel } from '../../src/node/timer-wheel.js';

useFakeClock();

/** The wheel's one Node timer (internal state, read to check it is cleared). */
const nodeTimer = (wheel: TimerWheel<string>) =>
  (wheel as unknown as { timer: NodeJS.Timeout | undefined }).timer;

describe('TimerWheel (shared keepalive / idle timer)', () => {
  it('fires each entry never early and at most one slot late', async () => {
    const period = 160; // slots of 10 ms
    const fired = new Map<string, number>();
    const wheel = new TimerWheel<string>(period, (item) => {
      fired.set(item, performance.now());
      return false;
    });
    // Start in the middle of a slot, the worst case for the rounding.
    await vi.advanceTimersByTimeAsync(3);
    const start = performance.now();
    wheel.schedule('a');
    wheel.schedule('b', 40);
    await vi.advanceTimersByTimeAsync(39);
    expect(fired.size).toBe(0);
    await vi.advanceTimersByTimeAsync(period);
    expect(fired.get('b')! - start).toBeGreaterThanOrEqual(40);
    expect(fired.get('b')! - start).toBeLessThanOrEqual(40 + 10);
    expect(fired.get('a')! - start).toBeGreaterThanOrEqual(period);
    expect(fired.get('a')! - start).toBeLessThanOrEqual(period + 10);
    expect(nodeTimer(wheel)).toBeUndefined(); // nothing left: no timer
  });

  it('add() (a first schedule) fires like schedule(), and cancel() finds its entry', async () => {
    const fired = new Map<string, number>();
    const wheel = new TimerWheel<string>(160, (item) => {
      fired.set(item, performance.now());
      return false;
    });
    const start = performance.now();
    wheel.add('a');
    wheel.add('b', 40);
    wheel.add('c');
    wheel.cancel('c');
    await vi.advanceTimersByTimeAsync(200);
    expect(fired.get('b')! - start).toBeGreaterThanOrEqual(40);
    expect(fired.get('b')! - start).toBeLessThanOrEqual(40 + 10);
    expect(fired.get('a')! - start).toBeGreaterThanOrEqual(160);
    expect(fired.get('a')! - start).toBeLessThanOrEqual(160 + 10);
    expect(fired.has('c')).toBe(false);
    expect(nodeTimer(wheel)).toBeUndefined();
  });

  it('repeats an entry whose callback returns true, one period apart', async () => {
    const times: number[] = [];
    const wheel = new TimerWheel<string>(50, () => {
      times.push(performance.now());
      return times.length < 4;
    });
    wheel.schedule('x');
    await vi.advanceTimersByTimeAsync(50 * 10);
    expect(times).toHaveLength(4);
    for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeCloseTo(50, 5);
  });

  it('cancel() stops an entry, and no Node timer is left once the wheel is empty', async () => {
    const fired: string[] = [];
    const wheel = new TimerWheel<string>(60, (item) => {
      fired.push(item);
      return true;
    });
    wheel.schedule('keep');
    wheel.schedule('drop');
    const timer = nodeTimer(wheel);
    expect(timer).toBeDefined();
    wheel.schedule('third');
    expect(nodeTimer(wheel)).toBe(timer); // one Node timer for any number of entries
    expect(vi.getTimerCount()).toBe(1);
    wheel.cancel('third');
    wheel.cancel('drop');
    await vi.advanceTimersByTimeAsync(100);
    expect(fired).toEqual(['keep']);
    expect(nodeTimer(wheel)).toBeDefined();
    wheel.cancel('keep');
    expect(nodeTimer(wheel)).toBeUndefined();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('never fires an entry scheduled with an infinite delay', async () => {
    const fired: string[] = [];
    const wheel = new TimerWheel<string>(40, (item) => {
      fired.push(item);
      return false;
    });
    wheel.schedule('never', Number.POSITIVE_INFINITY);
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(fired).toEqual([]);
  });
});
