#!/usr/bin/env node
// One-step set-up for a fresh machine that has only Node.js and npm:
// installs the workspace with a pinned pnpm fetched through npx (no global pnpm,
// no corepack), then builds every package. Idempotent and quick when up to date.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { packageManager } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const pnpm = packageManager; // e.g. "pnpm@10.34.8"
const run = (cmd, args) => execFileSync(cmd, args, { cwd: root, stdio: 'inherit' });

const frozen = existsSync(join(root, 'pnpm-lock.yaml')) && process.env.CI ? ['--frozen-lockfile'] : [];
run('npx', ['--yes', pnpm, 'install', '--prefer-offline', ...frozen]);
run('npx', ['--yes', pnpm, 'exec', 'tsc', '-b']);
