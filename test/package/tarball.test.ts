// The tarball as `npm pack` makes it and `npm install` unpacks it: only the library with its types,
// the compiled CLI, the README, LICENSE and CHANGELOG, small enough, and with a
// manifest that tells the truth.
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type PackedPackage, packedPackage } from '../helpers/packed.js';

/** What may be in the tarball. `dist/cli/` is the compiled `dmabuf` command (issue 12). */
const ALLOWED: readonly RegExp[] = [
  /^package\.json$/,
  /^README\.md$/,
  /^LICENSE$/,
  /^CHANGELOG\.md$/,
  /^dist\/cli\/vendor\/uplot\/(uPlot\.iife\.min\.js|uPlot\.min\.css|LICENSE)$/,
  /^dist\/.+\.(js|d\.ts)$/,
];

/** Development tools that a user of the library must never have to install. */
const DEV_TOOLS = [
  'tsx',
  'esbuild',
  'typescript',
  '@types/node',
  'c8',
  'typedoc',
  'playwright-core',
  'fast-check',
  '@biomejs/biome',
  'async-mutex',
  'generic-pool',
];

/**
 * The largest a consumer's `node_modules` may be after `npm install dmabuf` (issue 11). To stay
 * under it the package ships no TypeScript sources and no source or declaration maps, and vendors
 * the two files of the chart library that `dmabuf run` inlines instead of depending on all of
 * `uplot`. (Maps were a third of the compiled package; tsc's ES2022 output keeps the sources'
 * shape, names and comments, so a stack trace into dist/ reads like one into src/.)
 */
const NODE_MODULES_LIMIT = 2 * 1024 * 1024;

interface Manifest {
  name: string;
  type?: string;
  engines?: { node?: string };
  sideEffects?: boolean | string[];
  exports?: Record<string, Record<string, string> | string>;
  dependencies?: Record<string, string>;
  bin?: Record<string, string> | string;
  repository?: { url?: string };
  homepage?: string;
  bugs?: { url?: string };
  license?: string;
}

let pkg: PackedPackage;
let paths: Set<string>;
let manifest: Manifest;

/** Sum of file sizes under `dir` (apparent size: independent of the file system's blocks). */
function treeBytes(dir: string): number {
  let total = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) total += treeBytes(full);
    else total += fs.lstatSync(full).size;
  }
  return total;
}

describe('the tarball', () => {
  before(async () => {
    pkg = await packedPackage();
    paths = new Set(pkg.files.map((f) => f.path));
    manifest = JSON.parse(fs.readFileSync(path.join(pkg.installed, 'package.json'), 'utf8')) as Manifest;
  });

  it('sanity: npm pack made a tarball that npm install unpacked into node_modules/dmabuf', () => {
    assert.ok(fs.statSync(pkg.tarball).size > 0, pkg.tarball);
    assert.equal(manifest.name, 'dmabuf');
    for (const file of [
      'package.json',
      'dist/index.js',
      'dist/index.d.ts',
      'dist/node.js',
      'dist/node.d.ts',
      'dist/soft.js',
    ])
      assert.ok(paths.has(file) && fs.existsSync(path.join(pkg.installed, file)), `${file} is packed and installed`);
  });

  it('holds only the library, its types, the CLI, README, LICENSE and CHANGELOG', () => {
    const stray = [...paths].filter((p) => !ALLOWED.some((re) => re.test(p)));
    assert.deepEqual(stray, [], `files that do not belong in the package:\n${stray.join('\n')}`);
    for (const file of ['README.md', 'LICENSE', 'CHANGELOG.md']) assert.ok(paths.has(file), `${file} is missing`);
    assert.match(fs.readFileSync(path.join(pkg.installed, 'LICENSE'), 'utf8'), /MIT License[\s\S]*dmabuf contributors/);
  });

  it('declarations carry nothing marked @internal (the build strips it; the consumers type-check without it)', () => {
    const leaking = [...paths].filter(
      (p) => p.endsWith('.d.ts') && fs.readFileSync(path.join(pkg.installed, p), 'utf8').includes('@internal'),
    );
    assert.deepEqual(leaking, []);
  });

  it('has the compiled module and its declarations for every source file, and no maps', () => {
    const repoSrc = path.join(import.meta.dirname, '..', '..', 'src');
    const sources = fs
      .readdirSync(repoSrc, { recursive: true, encoding: 'utf8' })
      .filter((p) => p.endsWith('.ts'))
      .map((p) => p.split(path.sep).join('/'));
    assert.ok(sources.length >= 30, `${sources.length} source files`);
    const missing: string[] = [];
    for (const src of sources) {
      const base = `dist/${src.slice(0, -'.ts'.length)}`;
      for (const ext of ['.js', '.d.ts']) if (!paths.has(base + ext)) missing.push(base + ext);
    }
    assert.deepEqual(missing, []);
    assert.deepEqual(
      [...paths].filter((p) => p.startsWith('src/') || p.endsWith('.map')),
      [],
      'no TypeScript sources and no maps (size budget)',
    );
  });

  it(`installs into a node_modules under ${NODE_MODULES_LIMIT / 1024 / 1024} MB`, () => {
    const bytes = treeBytes(path.join(pkg.consumer, 'node_modules'));
    assert.ok(bytes < NODE_MODULES_LIMIT, `node_modules holds ${bytes} bytes`);
  });

  it('needs no development tool at run time, and has a bin only for a compiled CLI in dist/cli', () => {
    const deps = Object.keys(manifest.dependencies ?? {});
    assert.deepEqual(
      deps.filter((d) => DEV_TOOLS.includes(d)),
      [],
      `runtime dependencies: ${deps.join(', ')}`,
    );
    const bins = typeof manifest.bin === 'string' ? [manifest.bin] : Object.values(manifest.bin ?? {});
    for (const bin of bins) {
      const file = path.posix.normalize(bin);
      assert.match(file, /^dist\/cli\//, `bin ${bin}`);
      assert.ok(paths.has(file), `bin ${bin} is in the package`);
    }
  });

  it("declares dmabuf/node's side effect (compiled and source), and only that", () => {
    assert.ok(Array.isArray(manifest.sideEffects), `sideEffects: ${JSON.stringify(manifest.sideEffects)}`);
    const declared = manifest.sideEffects.map((p) => path.posix.normalize(p));
    // src/node.ts is the same side effect seen through the repository's source condition.
    assert.deepEqual(declared, ['dist/node.js', 'src/node.ts']);
    assert.ok(paths.has('dist/node.js'), 'dist/node.js is in the package');
  });

  it('exports the three entry points with types first, and the repository-only source condition namespaced', () => {
    for (const [subpath, stem] of [
      ['.', 'index'],
      ['./node', 'node'],
      ['./soft', 'soft'],
    ] as const) {
      const entry = manifest.exports?.[subpath];
      assert.ok(typeof entry === 'object', `exports["${subpath}"]`);
      const conditions = Object.keys(entry);
      assert.deepEqual(
        conditions.filter((c) => c !== '@dmabuf/source'),
        ['types', 'default'],
      );
      assert.equal(entry['types'], `./dist/${stem}.d.ts`);
      assert.equal(entry['default'], `./dist/${stem}.js`);
      assert.ok(!('source' in entry), 'no un-namespaced source condition');
    }
  });

  it('states the Node range that require() of an ES module needs, and where to find the project', () => {
    assert.equal(manifest.type, 'module');
    assert.equal(manifest.engines?.node, '^20.19.0 || >=22.12.0');
    assert.equal(manifest.license, 'MIT');
    for (const url of [manifest.repository?.url, manifest.homepage, manifest.bugs?.url])
      assert.match(url ?? '', /github\.com\/dmabuf-js\/dmabuf/);
  });

  it("the README's links work on the registry page: relative ones only to files in the package", () => {
    const readme = fs.readFileSync(path.join(pkg.installed, 'README.md'), 'utf8');
    const links = [...readme.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]!);
    assert.ok(links.length > 5, `${links.length} links`);
    const broken = links.filter((l) => !/^(https?:|mailto:|#)/.test(l) && !paths.has(path.posix.normalize(l)));
    assert.deepEqual(broken, [], 'use absolute repository URLs for files outside the package');
  });
});
