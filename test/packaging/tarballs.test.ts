// The published form of every package (packages/*, so new ones are checked too): the
// tarballs that npm pack and pnpm pack make, and pnpm publish --dry-run.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, posix } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pnpm, publishablePackages, root } from '../../scripts/packages.mjs';

interface Manifest {
  [field: string]: unknown;
  repository?: { type?: string; url?: string; directory?: string };
  bugs?: { url?: string };
  exports: Record<string, unknown>;
  publishConfig?: { access?: string };
  engines?: { node?: string };
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
}
interface Pkg {
  dir: string;
  name: string;
  version: string;
  manifest: Manifest;
}
const packages: Pkg[] = publishablePackages();
const rootManifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const license = readFileSync(join(root, 'LICENSE'), 'utf8');
const packers = ['npm', 'pnpm'] as const;

let work: string;
/** packer -> package name -> folder the tarball was unpacked into */
const unpacked = new Map<string, Map<string, string>>();

function pack(packer: (typeof packers)[number], pkg: Pkg, dest: string): string {
  const [cmd, args] =
    packer === 'npm'
      ? ['npm', ['pack', '--pack-destination', dest]]
      : ['npx', ['--yes', pnpm, 'pack', '--pack-destination', dest]];
  execFileSync(cmd, args, { cwd: pkg.dir, stdio: 'ignore' });
  const tgz = readdirSync(dest).find((f) => f.endsWith('.tgz'));
  if (tgz === undefined) throw new Error(`${packer} pack made no tarball for ${pkg.name}`);
  const into = join(dest, 'x');
  mkdirSync(into);
  execFileSync('tar', ['-xzf', join(dest, tgz), '-C', into]);
  return join(into, 'package');
}

function filesUnder(dir: string, prefix = ''): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) =>
    d.isDirectory() ? filesUnder(join(dir, d.name), `${prefix}${d.name}/`) : [`${prefix}${d.name}`],
  );
}

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'wskit-pack-'));
  execFileSync(join(root, 'node_modules/.bin/tsc'), ['-b'], { cwd: root });
  for (const packer of packers) {
    const byName = new Map<string, string>();
    for (const pkg of packages) {
      const dest = join(work, packer, pkg.name.replace('/', '+'));
      mkdirSync(dest, { recursive: true });
      byName.set(pkg.name, pack(packer, pkg, dest));
    }
    unpacked.set(packer, byName);
  }
}, 180_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

it('finds the packages', () => {
  expect(packages.map((p) => p.name)).toEqual(expect.arrayContaining(['@wskit/core', '@wskit/cli']));
});

describe.each(packages.map((p) => [p.name, p] as const))('%s', (name, pkg) => {
  it('has the metadata a registry page and a bundler need', () => {
    const m = pkg.manifest;
    for (const field of ['description', 'license', 'author', 'homepage', 'keywords'])
      expect(m[field], field).toBeTruthy();
    expect(m.repository).toMatchObject({ type: 'git', url: expect.stringMatching(/^git\+https:/) });
    expect(m.repository?.directory).toBe(posix.join('packages', pkg.dir.split(/[\\/]/).pop()!));
    expect(m.bugs?.url).toMatch(/^https:/);
    expect(typeof m.sideEffects).toBe('boolean');
    expect(m.exports['./package.json']).toBe('./package.json');
    expect(m.publishConfig?.access).toBe('public');
    expect(m.engines?.node).toBe(rootManifest.engines.node);
    // One version line: every package has the same version, and depends on the others'.
    expect(pkg.version).toBe(packages[0]!.version);
    for (const [dep, range] of Object.entries({ ...m.dependencies, ...m.peerDependencies } as Record<
      string,
      string
    >)) {
      if (dep.startsWith('@wskit/')) expect(range, dep).toBe(`^${pkg.version}`);
    }
    // Type packages our .d.ts files import are optional peers.
    for (const peer of Object.keys(m.peerDependencies ?? {})) {
      if (peer.startsWith('@types/')) expect(m.peerDependenciesMeta?.[peer]?.optional, peer).toBe(true);
    }
  });

  it.each(packers)('is complete and self-contained when %s packs it', (packer) => {
    const dir = unpacked.get(packer)!.get(name)!;
    const files = filesUnder(dir);
    const manifestText = readFileSync(join(dir, 'package.json'), 'utf8');
    expect(manifestText).not.toMatch(/"(workspace|link|file):/);
    expect(readFileSync(join(dir, 'LICENSE'), 'utf8')).toBe(license);
    expect(files).toContain('README.md');
    expect(files.filter((f) => f.includes('tsbuildinfo'))).toEqual([]);
    expect(files.filter((f) => /(^|\/)test\//.test(f))).toEqual([]);

    // Every file that exports, main, types and bin name is inside.
    const m = JSON.parse(manifestText);
    const targets: string[] = [m.main, m.types, ...Object.values<string>(m.bin ?? {})];
    const walk = (v: unknown): void => {
      if (typeof v === 'string') targets.push(v);
      else if (v && typeof v === 'object') Object.values(v).forEach(walk);
    };
    walk(m.exports);
    for (const t of targets.filter(Boolean)) expect(existsSync(join(dir, t)), t).toBe(true);

    // Source maps point at files that are in the tarball.
    const maps = files.filter((f) => f.endsWith('.map'));
    expect(maps.length).toBeGreaterThan(0);
    for (const map of maps) {
      const { sources } = JSON.parse(readFileSync(join(dir, map), 'utf8')) as { sources: string[] };
      for (const s of sources) expect(existsSync(join(dir, dirname(map), s)), `${map} -> ${s}`).toBe(true);
    }
  });

  it('passes pnpm publish --dry-run', () => {
    const r = spawnSync('npx', ['--yes', pnpm, 'publish', '--dry-run', '--no-git-checks'], {
      cwd: pkg.dir,
      encoding: 'utf8',
    });
    const output = `${r.stdout}\n${r.stderr}`;
    expect(r.status, output).toBe(0);
    expect(output).toContain(`+ ${name}@${pkg.version}`);
    expect(output).toMatch(/public access/);
    expect(output).not.toMatch(/workspace:/);
  }, 60_000);
});
