import { describe, expect, it } from 'vitest';
import { TimerWheel } from '../../src/node/timer-wheel.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** The wheel's one Node timer (internal state, read to check it is cleared). */
const nodeTimer = (wheel: TimerWheel<string>) =>
  (wheel as unknown as { timer: NodeJS.Timeout | undefined }).timer;

describe('TimerWheel (shared keepalive / idle timer)', () => {
  it('fires each entry never early and at most about one slot late', async () => {
    const period = 160; // slots of 10 ms
    const fired = new Map<string, number>();
    const wheel = new TimerWheel<string>(period, (item) => {
      fired.set(item, performance.now());
      return false;
    });
    const start = performance.now();
    wheel.schedule('a');
    wheel.schedule('b', 40);
    await sleep(period + 200);
    expect(fired.get('a')! - start).toBeGreaterThanOrEqual(period);
    expect(fired.get('b')! - start).toBeGreaterThanOrEqual(40);
    // One slot (10 ms) of granularity, plus generous room for a loaded machine.
    expect(fired.get('b')! - start).toBeLessThan(40 + 10 + 150);
    expect(fired.get('b')!).toBeLessThan(fired.get('a')!);
  });

  it('repeats an entry whose callback returns true, one period apart', async () => {
    const times: number[] = [];
    const wheel = new TimerWheel<string>(50, () => {
      times.push(performance.now());
      return times.length < 4;
    });
    wheel.schedule('x');
    await sleep(50 * 4 + 300);
    expect(times).toHaveLength(4);
    for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeGreaterThanOrEqual(45);
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
    wheel.cancel('third');
    wheel.cancel('drop');
    await sleep(100);
    expect(fired).toContain('keep');
    expect(fired).not.toContain('drop');
    expect(nodeTimer(wheel)).toBeDefined();
    wheel.cancel('keep');
    expect(nodeTimer(wheel)).toBeUndefined();
  });

  it('never fires an entry scheduled with an infinite delay', async () => {
    const fired: string[] = [];
    const wheel = new TimerWheel<string>(40, (item) => {
      fired.push(item);
      return false;
    });
    wheel.schedule('never', Number.POSITIVE_INFINITY);
    await sleep(120);
    expect(fired).toEqual([]);
  });
});
