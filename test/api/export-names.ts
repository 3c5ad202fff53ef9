import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const root = fileURLToPath(new URL('../../', import.meta.url));

let program: ts.Program | undefined;
let programRoots: string[] = [];

/**
 * Every name a package entry point exports, values and types, sorted (read by the
 * TypeScript checker). `all` lists the entries that will be asked for: one program serves them.
 */
export function exportedNames(entry: string, all: readonly string[] = [entry]): string[] {
  const file = `${root}${entry}`;
  const roots = all.map((e) => `${root}${e}`);
  if (program === undefined || !roots.every((r) => programRoots.includes(r))) {
    programRoots = roots;
    program = createProgram(roots);
  }
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(file);
  if (source === undefined) throw new Error(`no source file ${file}`);
  const moduleSymbol = checker.getSymbolAtLocation(source);
  if (moduleSymbol === undefined) throw new Error(`${file} is not a module`);
  return checker
    .getExportsOfModule(moduleSymbol)
    .map((s) => s.getName())
    .sort();
}

function createProgram(roots: string[]): ts.Program {
  return ts.createProgram(roots, {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    skipLibCheck: true,
    noEmit: true,
  });
}
