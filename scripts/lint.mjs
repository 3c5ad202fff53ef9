#!/usr/bin/env node
// Lints the files git tracks, and only those: a scratch file that is not (yet) added does
// not fail `npm test`. (biome.json's VCS setting alone still checks untracked files that
// .gitignore does not name.) Extra arguments go to biome (e.g. --write).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const listed = spawnSync('git', ['ls-files', '-z', '--cached'], { cwd: root, encoding: 'utf8' });
if (listed.status !== 0) {
  console.error(`lint: git ls-files failed: ${listed.stderr}`);
  process.exit(1);
}
// Tracked files deleted in the working tree are not there to check.
const files = listed.stdout.split('\0').filter((f) => f !== '' && existsSync(join(root, f)));
const biome = join(root, 'node_modules/.bin/biome');
// --files-ignore-unknown: tracked files biome has no language for (.md, .py, corpora)
// are skipped, as `biome check .` skips them.
const args = [
  'check',
  '--files-ignore-unknown=true',
  '--no-errors-on-unmatched',
  ...process.argv.slice(2),
  ...files,
];
const r = spawnSync(biome, args, { cwd: root, stdio: 'inherit' });
process.exit(r.status ?? 1);
