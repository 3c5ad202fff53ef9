/**
 * The TypeScript typing of ws(): compiles test/types/routes.fixture.ts with the project's
 * compiler and options and expects no diagnostics (its `@ts-expect-error` lines must meet
 * errors). Checks types, so it runs the compiler rather than the code.
 */
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const fixture = fileURLToPath(new URL('./types/routes.fixture.ts', import.meta.url));
const src = (p: string) => fileURLToPath(new URL(p, import.meta.url));

function diagnostics(file: string): string[] {
  const program = ts.createProgram([file], {
    strict: true,
    noEmit: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    esModuleInterop: true,
    skipLibCheck: true,
    types: ['node'],
    allowImportingTsExtensions: true,
    paths: {
      '@wskit/express': [src('../src/index.ts')],
      '@wskit/core': [src('../../core/src/index.ts')],
    },
  });
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const where = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start) : undefined;
    const text = ts.flattenDiagnosticMessageText(d.messageText, '\n');
    return `${d.file?.fileName ?? ''}:${where ? where.line + 1 : '?'} ${text}`;
  });
}

describe('typing of ws()', () => {
  it('types req.params from the path, and express.Router() has ws()', () => {
    expect(diagnostics(fixture)).toEqual([]);
  }, 60_000);
});
