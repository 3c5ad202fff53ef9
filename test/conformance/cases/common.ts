import type { Case, Direction } from '../harness/types.js';

export const BOTH: Direction[] = ['server', 'client'];

/** A case; both directions unless said otherwise. */
export function defineCase(c: Omit<Case, 'directions'> & { directions?: Direction[] }): Case {
  return { ...c, directions: c.directions ?? BOTH };
}

export type { Case };
