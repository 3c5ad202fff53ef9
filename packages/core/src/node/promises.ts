import { InvalidStateError } from '../protocol/errors.js';
import { ReadyState } from '../protocol/protocol.js';

export const noop = (): void => {};

/**
 * A rejected promise that nobody has to await: `void ws.send(x)` on a closed connection
 * must not end the process with an unhandled rejection, while `await ws.send(x)` still
 * throws.
 */
export function rejected<T>(err: unknown): Promise<T> {
  const p = Promise.reject(err instanceof Error ? err : new Error(String(err)));
  p.catch(noop);
  return p as Promise<T>;
}

/** `p`, with its rejection (if any) counted as handled: see rejected(). */
export function quiet<T>(p: Promise<T>): Promise<T> {
  p.catch(noop);
  return p;
}

/** `state` is the protocol's; a connection whose socket is gone reports at least CLOSING. */
export function notOpen(state: number): InvalidStateError {
  const reported = Math.max(state, ReadyState.CLOSING) as ReadyState;
  return new InvalidStateError(`WebSocket is not open (readyState ${reported})`, reported);
}
