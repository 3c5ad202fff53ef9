/** Runs case families as (family, direction) units, a few at once, over one transport. */
import type { Family } from '../cases/index.js';
import { runOne } from './runner.js';
import type { Case, CaseResult, Direction, Transport } from './types.js';

export const DIRECTIONS: Direction[] = ['server', 'client'];

interface Unit {
  family: number;
  direction: Direction;
  cases: Case[];
}

/** `concurrency` units run at once; the cases of one unit run one after the other. */
export async function runFamilies(
  families: Family[],
  transport: Transport,
  concurrency: number,
): Promise<CaseResult[]> {
  const units: Unit[] = [];
  for (const f of families) {
    const cases = f.cases();
    for (const d of DIRECTIONS) {
      const own = cases.filter((c) => c.directions.includes(d));
      if (own.length > 0) units.push({ family: f.family, direction: d, cases: own });
    }
  }
  // Heaviest units first, so the long ones overlap the short ones.
  const weight = (u: Unit) => (u.family === 9 ? 3 : u.family >= 12 ? 2 : u.family === 6 ? 1 : 0);
  const queue = [...units].sort((a, b) => weight(b) - weight(a));
  const byUnit = new Map<Unit, CaseResult[]>();
  const worker = async () => {
    for (;;) {
      const unit = queue.shift();
      if (unit === undefined) return;
      const out: CaseResult[] = [];
      for (const c of unit.cases) out.push(await runOne(c, unit.direction, transport));
      byUnit.set(unit, out);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return units.flatMap((u) => byUnit.get(u) ?? []);
}
