#!/usr/bin/env node
// One-step set-up for a fresh machine that has only Node.js and npm:
//  1. (with --system) the Debian packages the interop tests talk to — python3-websockets,
//     chromium, redis-server — when running as root with apt-get and they are missing;
//  2. the workspace, with the pnpm version pinned in package.json fetched through npx
//     (no global pnpm, no corepack);
//  3. a build of every package (tsc -b), which is also the type check.
// Idempotent, and quick when everything is already in place.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { packageManager } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const run = (cmd, args) => execFileSync(cmd, args, { cwd: root, stdio: 'inherit' });
const has = (cmd, args) => spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;

if (process.argv.includes('--system')) {
  const missing = [];
  if (!has('/usr/bin/python3', ['-c', 'import websockets'])) missing.push('python3-websockets');
  if (!existsSync('/usr/bin/chromium')) missing.push('chromium');
  if (!has('sh', ['-c', 'command -v redis-server'])) missing.push('redis-server');
  if (missing.length > 0) {
    const root_ = typeof process.getuid === 'function' && process.getuid() === 0;
    if (root_ && has('sh', ['-c', 'command -v apt-get'])) {
      console.log(`setup: installing ${missing.join(', ')} with apt-get`);
      run('apt-get', ['update', '-qq']);
      execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], {
        cwd: root,
        stdio: 'inherit',
        env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      });
    } else {
      console.log(
        `setup: ${missing.join(', ')} missing (needs root and apt-get); the suites that use them skip`,
      );
    }
  }
}

const frozen = existsSync(join(root, 'pnpm-lock.yaml')) && process.env.CI ? ['--frozen-lockfile'] : [];
run('npx', ['--yes', packageManager, 'install', '--prefer-offline', ...frozen]);
run('npx', ['--yes', packageManager, 'exec', 'tsc', '-b']);
