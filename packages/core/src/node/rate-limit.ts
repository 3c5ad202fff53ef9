/** Options of the per-connection inbound rate limit (`rateLimit`). */
export interface RateLimitOptions {
  /** Messages allowed per interval (a burst of this many is allowed at once). */
  messages?: number;
  /** Bytes of message payload allowed per interval (after decompression). */
  bytes?: number;
  /** The interval in ms over which `messages` and `bytes` refill. */
  interval: number;
  /** Past the limit: 'close' closes with 1008 (default), 'drop' drops the message and emits 'ratelimit'. */
  action?: 'close' | 'drop';
}

/** A clock that never steps back (Date.now() can, when the wall clock is set). */
const monotonicNow = (): number => performance.now();

/**
 * Two token buckets, messages and bytes, refilled continuously at `limit / interval`
 * per ms up to `limit`. `now` is the clock (injectable for tests).
 */
export class RateLimiter {
  private readonly messageRate: number;
  private readonly byteRate: number;
  private readonly maxMessages: number;
  private readonly maxBytes: number;
  private messages: number;
  private bytes: number;
  private last: number;
  private readonly now: () => number;

  constructor(options: RateLimitOptions, now: () => number = monotonicNow) {
    validateRateLimit(options);
    this.maxMessages = options.messages ?? Number.POSITIVE_INFINITY;
    this.maxBytes = options.bytes ?? Number.POSITIVE_INFINITY;
    this.messageRate = this.maxMessages / options.interval;
    this.byteRate = this.maxBytes / options.interval;
    this.messages = this.maxMessages;
    this.bytes = this.maxBytes;
    this.now = now;
    this.last = now();
  }

  /** Takes one message of `size` bytes; false (and nothing taken) when over the limit. */
  take(size: number): boolean {
    const now = this.now();
    const elapsed = now - this.last;
    if (elapsed > 0) {
      this.last = now;
      this.messages = Math.min(this.maxMessages, this.messages + elapsed * this.messageRate);
      this.bytes = Math.min(this.maxBytes, this.bytes + elapsed * this.byteRate);
    }
    if (this.messages < 1 || this.bytes < size) return false;
    this.messages -= 1;
    this.bytes -= size;
    return true;
  }
}

export function validateRateLimit(o: RateLimitOptions): void {
  if (typeof o !== 'object' || o === null) throw new TypeError('rateLimit must be an object');
  if (!(typeof o.interval === 'number' && o.interval > 0 && Number.isFinite(o.interval)))
    throw new RangeError(`rateLimit.interval must be a positive number of ms (got ${String(o.interval)})`);
  for (const key of ['messages', 'bytes'] as const) {
    const v = o[key];
    if (v !== undefined && !(typeof v === 'number' && v > 0))
      throw new RangeError(`rateLimit.${key} must be a positive number (got ${String(v)})`);
  }
  if (o.messages === undefined && o.bytes === undefined)
    throw new RangeError('rateLimit needs messages, bytes or both');
  if (o.action !== undefined && o.action !== 'close' && o.action !== 'drop')
    throw new RangeError(`rateLimit.action must be 'close' or 'drop' (got ${String(o.action)})`);
}
