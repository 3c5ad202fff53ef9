#!/usr/bin/env node
// Packs every publishable package (packages/*) with the pinned pnpm into a folder
// (default ./tarballs) and prints the npm command that installs them in another app,
// for trying wskit before it is on the registry:
//   node scripts/pack.mjs [--out DIR] [--quiet]
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pnpm, publishablePackages, root } from './packages.mjs';

const args = process.argv.slice(2);
const outAt = args.indexOf('--out');
const out = resolve(outAt === -1 ? join(root, 'tarballs') : args[outAt + 1]);
const quiet = args.includes('--quiet');

mkdirSync(out, { recursive: true });
for (const f of readdirSync(out)) if (f.endsWith('.tgz')) rmSync(join(out, f));
const files = [];
for (const pkg of publishablePackages()) {
  // pnpm pack runs the package's prepack (a build) first.
  execFileSync('npx', ['--yes', pnpm, 'pack', '--pack-destination', out], {
    cwd: pkg.dir,
    stdio: quiet ? 'ignore' : ['ignore', 'ignore', 'inherit'],
  });
  files.push(join(out, `${pkg.name.replace(/^@/, '').replace('/', '-')}-${pkg.version}.tgz`));
}
if (!quiet) {
  console.log(`packed ${files.length} packages into ${out}; in your app:`);
  console.log(`  npm install ${files.join(' ')}`);
}
