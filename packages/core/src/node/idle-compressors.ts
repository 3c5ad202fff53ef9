// Releasing the zlib contexts of idle compressors (see deflate.ts), on one shared timer.

/** A compressor that can give its idle zlib contexts back. */
export interface IdleReleasable {
  /** Releases the contexts unused since the previous sweep; marks the others. */
  sweep(): void;
}

/**
 * Idle compressors give their zlib contexts back. A deflater holds about 260 KiB (its
 * window, hash chains and pending buffer); nothing obliges a sender to refer to earlier
 * messages (context takeover is a permission, RFC 7692 §7.1.1.1), so an idle connection's
 * deflater is closed and the next message starts a new DEFLATE stream at a message
 * boundary, which any peer's decompressor reads (the new blocks simply do not reach back).
 * A decompressor is released only where the peer promised not to refer back (its
 * no_context_takeover) or ended its stream (BFINAL): otherwise its window is still needed.
 *
 * One process-wide timer (unref'd) sweeps every IDLE_SWEEP_MS: a compressor not used since
 * the previous sweep releases its idle contexts, so a context lives 1 to 2 periods idle.
 */
export const IDLE_SWEEP_MS = 5000;

const holding = new Set<IdleReleasable>();
let sweepTimer: ReturnType<typeof setInterval> | undefined;

export function hold(c: IdleReleasable): void {
  holding.add(c);
  if (sweepTimer === undefined) {
    sweepTimer = setInterval(sweepIdleCompressors, IDLE_SWEEP_MS);
    sweepTimer.unref();
  }
}

export function unhold(c: IdleReleasable): void {
  holding.delete(c);
  if (holding.size === 0 && sweepTimer !== undefined) {
    clearInterval(sweepTimer);
    sweepTimer = undefined;
  }
}

/**
 * One sweep (what the timer runs): compressors idle since the previous sweep release their
 * idle zlib contexts; the others are marked idle for the next. Exported for tests.
 */
export function sweepIdleCompressors(): void {
  for (const c of [...holding]) c.sweep();
}
