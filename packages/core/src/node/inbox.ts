import type { Message } from './message.js';

/** What the inbox asks of its connection: stop and restart reading the socket. */
export interface ReadingHost {
  pauseReading(reason: number): void;
  resumeReading(reason: number): void;
}

/**
 * Received messages waiting for an ordered consumer (`receive()`, `for await`,
 * `consume()`), the consumers waiting for messages, and the flow control between them:
 * once `limit` messages wait, reading stops until the consumer has taken half of them.
 * Messages go to waiting consumers first, in order; the queue is used only when nobody
 * waits.
 */
export class Inbox {
  private readonly limit: number;
  private readonly host: ReadingHost;
  /** The pause reason the inbox stands for. */
  private readonly reason: number;
  private messages: Message[] = [];
  private waiters: Array<(msg: Message | null) => void> | undefined;
  private paused = false;
  /** An ordered consumer took a message and has not asked for the next one yet. */
  private holding = false;
  /** consume() handlers still running. */
  private busy = 0;

  constructor(limit: number, host: ReadingHost, reason: number) {
    this.limit = limit;
    this.host = host;
    this.reason = reason;
  }

  get size(): number {
    return this.messages.length;
  }

  /**
   * The consumers are done with everything delivered so far: nothing queued, no ordered
   * consumer between two receive() calls, no consume() handler running.
   */
  get settled(): boolean {
    return this.messages.length === 0 && !this.holding && this.busy === 0;
  }

  /**
   * Hands a message to a waiting consumer, or queues it. `closing`: our Close is out, so
   * reading must go on until the peer's Close arrives; the queue stays bounded by
   * dropping what does not fit (returns false then).
   */
  push(msg: Message, closing: boolean): boolean {
    const waiter = this.waiters?.shift();
    if (waiter !== undefined) {
      this.holding = true;
      waiter(msg);
      return true;
    }
    if (closing) {
      if (this.messages.length >= this.limit) return false;
      this.messages.push(msg);
      return true;
    }
    this.messages.push(msg);
    if (this.messages.length >= this.limit && !this.paused) {
      this.paused = true;
      this.host.pauseReading(this.reason);
    }
    return true;
  }

  /** The oldest queued message, for an ordered consumer (undefined when none is queued). */
  take(): Message | undefined {
    this.holding = false; // the consumer is done with what it had
    const msg = this.messages.shift();
    if (msg === undefined) return undefined;
    this.holding = true;
    this.afterTake();
    return msg;
  }

  /** The oldest queued message, for a 'message' listener (no ordered consumer holds it). */
  shift(): Message | undefined {
    const msg = this.messages.shift();
    if (msg !== undefined) this.afterTake();
    return msg;
  }

  /** Waits for the next message; `null` arrives through end(). */
  wait(): Promise<Message | null> {
    return new Promise((resolve) => {
      this.waiters ??= [];
      this.waiters.push(resolve);
    });
  }

  /** No more messages will come: waiting consumers get null (once the queue is empty). */
  end(): void {
    const waiters = this.waiters;
    if (waiters === undefined || this.messages.length > 0) return;
    this.waiters = undefined;
    for (const w of waiters) w(null);
  }

  /** Stop holding reading back (our Close is out: the peer's must still be read). */
  release(): void {
    if (!this.paused) return;
    this.paused = false;
    this.host.resumeReading(this.reason);
  }

  handlerStarted(): void {
    this.busy++;
  }

  handlerEnded(): void {
    this.busy--;
  }

  private afterTake(): void {
    if (this.paused && this.messages.length < Math.ceil(this.limit / 2)) this.release();
  }
}

/**
 * Runs `handle` for every message `next()` yields, at most `concurrency` at once, in
 * arrival order of start; resolves once `next()` yields null and every handler is done.
 * A handler that throws or rejects is reported to `failed`.
 */
export async function consumeInOrder(
  inbox: Inbox,
  next: () => Promise<Message | null>,
  handle: (msg: Message) => unknown,
  hooks: { concurrency: number; failed(err: unknown): void; settled(): void },
): Promise<void> {
  const limit = Math.max(1, hooks.concurrency);
  const inflight = new Set<Promise<void>>();
  for (let msg = await next(); msg !== null; msg = await next()) {
    const m = msg;
    inbox.handlerStarted();
    const task: Promise<void> = Promise.resolve()
      .then(() => handle(m))
      .then(
        () => {},
        (err: unknown) => hooks.failed(err),
      )
      .finally(() => {
        inflight.delete(task);
        inbox.handlerEnded();
        hooks.settled();
      });
    inflight.add(task);
    if (inflight.size >= limit) await Promise.race(inflight);
  }
  await Promise.all(inflight);
}
