/**
 * Soak tests (files named *.soak.test.ts, run by vitest.soak.config.ts, not by the default
 * run): `npm test` runs them in a short form, `npm run soak` (WSKIT_SOAK=1) in the long one.
 */
export const SOAK = process.env.WSKIT_SOAK === '1';

/** `short` in the CI run, `long` in `npm run soak`. */
export const soak = (short: number, long: number): number => (SOAK ? long : short);
