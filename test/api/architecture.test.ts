import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import madge from 'madge';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));
const lines = (file: string) => readFileSync(`${root}${file}`, 'utf8').split('\n').length - 1;
const sources = (dir: string) =>
  readdirSync(`${root}${dir}`)
    .filter((f) => f.endsWith('.ts'))
    .map((f) => `${dir}/${f}`);

// Issue 10: one owner per decision, files small enough to read in one sitting.
describe('architecture', () => {
  it('no import cycle in @wskit/core (type-only imports count)', async () => {
    const graph = await madge(`${root}packages/core/src`, {
      fileExtensions: ['ts'],
      detectiveOptions: { ts: { skipTypeImports: false } },
    });
    expect(graph.circular()).toEqual([]);
  });

  it('the Node wing: connection.ts under 400 lines, no file over 450', () => {
    expect(lines('packages/core/src/node/connection.ts')).toBeLessThan(400);
    for (const file of sources('packages/core/src/node')) expect(lines(file), file).toBeLessThanOrEqual(450);
  });

  it('the adapters are thin: no source file over 250 lines', () => {
    for (const pkg of ['express', 'koa', 'fastify'])
      for (const file of sources(`packages/${pkg}/src`)) expect(lines(file), file).toBeLessThanOrEqual(250);
  });

  it('the protocol engine does no I/O: no Node I/O module and no timer in src/protocol', () => {
    for (const file of sources('packages/core/src/protocol')) {
      const text = readFileSync(`${root}${file}`, 'utf8');
      expect(text, file).not.toMatch(/from 'node:(net|tls|http|https|http2|stream|fs|dgram)'/);
      expect(text, file).not.toMatch(/\b(setTimeout|setInterval|setImmediate|Date\.now|performance\.now)\(/);
    }
  });
});
