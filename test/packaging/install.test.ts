// A user's app, outside the workspace: the packed tarballs (scripts/pack.mjs, as the README
// says) installed with npm next to the packages each README's install line names, then the
// README examples run as they are printed, apart from the port (0 instead of 3000/8080) and
// a few lines appended to talk to the server and shut it down:
//   - as ESM (.mjs, the JavaScript examples),
//   - as TypeScript, strict, module nodenext: each TypeScript example compiled both as an
//     ES module (.mts) and as CommonJS (.cts, where imports become require()), then run,
//   - as CommonJS require() (.cjs) for the JavaScript examples.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publishablePackages, root } from '../../scripts/packages.mjs';

const readme = (path: string) => readFileSync(join(root, path), 'utf8');

/** The first fenced block of `lang` after `heading` (or after the start). */
function codeBlock(text: string, lang: string, heading?: string): string {
  const from = heading === undefined ? 0 : text.indexOf(heading);
  if (from === -1) throw new Error(`no heading ${heading}`);
  const m = new RegExp(`\`\`\`${lang}\\n([\\s\\S]*?)\`\`\``).exec(text.slice(from));
  if (!m) throw new Error(`no ${lang} block after ${heading}`);
  return m[1]!;
}

/** The `npm install ...` lines of a README's first sh block that installs @wskit packages. */
function installLines(text: string): string[][] {
  for (const m of text.matchAll(/```sh\n([\s\S]*?)```/g)) {
    const lines = m[1]!
      .split('\n')
      .map((l) => l.replace(/#.*/, '').trim())
      .filter((l) => l.startsWith('npm install'));
    if (lines.some((l) => l.includes('@wskit/'))) return lines.map((l) => l.split(/\s+/).slice(2));
  }
  throw new Error('no npm install line');
}

const withPort0 = (code: string) =>
  code
    .replace(/\.listen\(3000\)/g, '.listen(0)')
    .replace(/listen\(\{ port: 3000 \}\)/g, 'listen({ port: 0 })')
    .replace(/\.listen\(8080, /g, '.listen(0, ');

interface Example {
  name: string;
  lang: 'js' | 'ts';
  code: string;
  /** Appended: talks to the example's server and ends the process's work. */
  epilogue: string;
  /** stdout must match. */
  expect: RegExp;
  /** stderr must match (default: empty). */
  stderr?: RegExp;
}

const examples: Example[] = [
  {
    name: 'root',
    lang: 'ts',
    code: codeBlock(readme('README.md'), 'ts', '## A server and a client in ten lines'),
    epilogue: '',
    expect: /^hello\n$/,
  },
  {
    name: 'express',
    lang: 'js',
    code: codeBlock(readme('packages/express/README.md'), 'js', '## Example'),
    epilogue: `
await new Promise((resolve) => (server.listening ? resolve() : server.once('listening', resolve)));
{
  const { connect } = await import('@wskit/core');
  const client = await connect(\`ws://127.0.0.1:\${server.address().port}/public/feed\`);
  console.log('received', (await client.receive()).text());
  await client.close();
}
server.close();
await wss.close();
`,
    expect: /^received welcome\n$/,
  },
  {
    name: 'koa',
    lang: 'ts',
    code: codeBlock(readme('packages/koa/README.md'), 'ts'),
    epilogue: `
await new Promise((resolve) => (server.listening ? resolve(undefined) : server.once('listening', resolve)));
{
  const { connect } = await import('@wskit/core');
  const { port } = server.address() as { port: number };
  const client = await connect(\`ws://127.0.0.1:\${port}/other\`, { headers: { Cookie: 'session=1' } });
  console.log('received', (await client.receive())?.text());
  await client.close();
}
server.close();
await app.ws.close();
`,
    expect: /^received hello\n$/,
  },
  {
    name: 'fastify',
    lang: 'ts',
    code: codeBlock(readme('packages/fastify/README.md'), 'ts').replace(
      'Fastify({ logger: true })',
      'Fastify()',
    ),
    epilogue: `
{
  const { connect } = await import('@wskit/core');
  const { port } = app.server.address() as { port: number };
  const client = await connect(\`ws://127.0.0.1:\${port}/live\`, { headers: { Authorization: 'Bearer ok' } });
  console.log('received', (await client.receive())?.text());
  await client.close();
}
await app.close();
`,
    expect: /^received live\n$/,
  },
  {
    name: 'cli',
    lang: 'ts',
    code: codeBlock(readme('packages/cli/README.md'), 'ts', '## Programmatic use'),
    epilogue: '',
    expect: /^wskit: listening on ws:\/\/127\.0\.0\.1:\d+\/echo\ntrue\n0\n$/,
    stderr: /^wskit: closed 1001 going-away\n$/,
  },
];

/** The same program as CommonJS: imports become require(), the rest runs in an async function. */
function asCommonJs(code: string, lang: 'js' | 'ts'): string {
  const lines = code.split('\n');
  const imports = lines.filter((l) => l.startsWith('import '));
  const body = lines.filter((l) => !l.startsWith('import '));
  // TypeScript turns its own imports into require() in a .cts file.
  const head =
    lang === 'ts'
      ? imports
      : imports.map((l) => {
          const m = /^import (.+) from '([^']+)';$/.exec(l);
          if (!m) throw new Error(`cannot convert ${l}`);
          const what = m[1]!.trim();
          // require(esm) gives the module namespace: a default export is its .default.
          return what.startsWith('{')
            ? `const ${what.replace(/ as /g, ': ')} = require('${m[2]}');`
            : `const ${what} = require('${m[2]}').default ?? require('${m[2]}');`;
        });
  return `${head.join('\n')}\nvoid (async () => {\n${body.join('\n')}\n})();\n`;
}

let app: string;
let tarballs: Map<string, string>;

function run(
  file: string,
  node: string[] = [process.execPath],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const [cmd, ...prefix] = node;
    const child = spawn(cmd!, [...prefix, file], { cwd: app });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    // An example that doesn't finish is a failure: the test's own timeout reports it.
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

beforeAll(() => {
  const work = mkdtempSync(join(tmpdir(), 'wskit-app-'));
  app = join(work, 'my-app');
  mkdirSync(app);
  const packed = join(work, 'tarballs');
  execFileSync(process.execPath, [join(root, 'scripts/pack.mjs'), '--out', packed, '--quiet'], { cwd: root });
  tarballs = new Map(
    publishablePackages().map((p: { name: string; version: string }) => [
      p.name,
      join(packed, `${p.name.slice(1).replace('/', '-')}-${p.version}.tgz`),
    ]),
  );
  expect(readdirSync(packed).sort()).toEqual([...tarballs.values()].map((f) => f.split('/').pop()).sort());

  // What the READMEs tell a user to install, with the tarballs in place of @wskit/*.
  const wanted = new Set<string>(tarballs.values());
  for (const file of [
    'packages/core/README.md',
    'packages/express/README.md',
    'packages/koa/README.md',
    'packages/fastify/README.md',
  ]) {
    for (const args of installLines(readme(file))) {
      for (const a of args) if (a !== '-D' && !a.startsWith('@wskit/')) wanted.add(a);
    }
  }
  writeFileSync(join(app, 'package.json'), `${JSON.stringify({ name: 'my-app', private: true }, null, 2)}\n`);
  execFileSync(
    'npm',
    ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', ...wanted],
    {
      cwd: app,
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  writeFileSync(
    join(app, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        module: 'nodenext',
        moduleResolution: 'nodenext',
        target: 'es2022',
        types: ['node'],
        outDir: 'out',
        rootDir: 'src',
        skipLibCheck: false,
      },
      include: ['src'],
    }),
  );
  mkdirSync(join(app, 'src'));
  for (const ex of examples) {
    const code = `${withPort0(ex.code)}${ex.epilogue}`;
    if (ex.lang === 'ts') {
      writeFileSync(join(app, 'src', `${ex.name}.mts`), code);
      writeFileSync(join(app, 'src', `${ex.name}.cts`), asCommonJs(code, 'ts'));
    } else {
      writeFileSync(join(app, `${ex.name}.mjs`), code);
      writeFileSync(join(app, `${ex.name}.cjs`), asCommonJs(code, 'js'));
    }
  }
}, 300_000);

afterAll(() => {
  if (app) rmSync(join(app, '..'), { recursive: true, force: true });
});

describe('the packed packages in an app of their own', () => {
  it('were installed from the tarballs, not linked to the workspace', () => {
    const core = JSON.parse(readFileSync(join(app, 'node_modules/@wskit/core/package.json'), 'utf8'));
    expect(core.version).toBe(publishablePackages()[0].version);
    const lock = readFileSync(join(app, 'package-lock.json'), 'utf8');
    expect(lock).toMatch(/"resolved": "file:.*wskit-core-[\d.]+\.tgz"/);
    expect(lock).not.toContain(root);
  });

  it('type-check under TypeScript strict with module nodenext (ESM and CommonJS)', () => {
    let output = '';
    try {
      execFileSync(join(app, 'node_modules/.bin/tsc'), ['-p', '.'], { cwd: app, encoding: 'utf8' });
    } catch (err) {
      output = String((err as { stdout?: string }).stdout ?? err);
    }
    // Our declaration files are checked too (skipLibCheck off); a clash between two
    // third-party type packages (as @types/koa has with content-disposition's own types
    // today) is not ours to fix and is left out.
    const errors = output
      .split('\n')
      .filter((l) => /error TS/.test(l))
      .filter((l) => !l.startsWith('node_modules/') || l.startsWith('node_modules/@wskit/'));
    expect(errors).toEqual([]);
    expect(output === '' || /error TS/.test(output)).toBe(true);
  }, 120_000);

  const variants = examples.flatMap((ex) =>
    ex.lang === 'ts'
      ? [
          [ex.name, 'TypeScript as ESM', `out/${ex.name}.mjs`, ex] as const,
          [ex.name, 'TypeScript as CommonJS', `out/${ex.name}.cjs`, ex] as const,
        ]
      : [
          [ex.name, 'ESM', `${ex.name}.mjs`, ex] as const,
          [ex.name, 'CommonJS require()', `${ex.name}.cjs`, ex] as const,
        ],
  );
  it.each(variants)(
    'the %s README example runs (%s)',
    async (_name, _how, file, ex) => {
      const r = await run(file);
      expect(r.stderr).toMatch(ex.stderr ?? /^$/);
      expect(r.stdout).toMatch(ex.expect);
      expect(r.code).toBe(0);
    },
    60_000,
  );

  // require(esm) on the other Node lines the project supports (binaries from the registry's
  // `node` package, as scripts/test.mjs's matrix uses); WSKIT_NODE_MATRIX=0 turns it off.
  const matrix = process.env.WSKIT_NODE_MATRIX === '0' ? [] : ['22', '24'];
  const cjs = variants.filter(([, how]) => how.includes('CommonJS'));
  it.each(matrix.flatMap((major) => cjs.map((v) => [major, ...v] as const)))(
    'on Node %s, the %s README example runs (%s)',
    async (major, _name, _how, file, ex) => {
      const r = await run(file, ['npx', '--yes', `node@${major}`]);
      expect(r.stdout).toMatch(ex.expect);
      expect(r.code).toBe(0);
    },
    120_000,
  );
});
