/**
 * The package as users get it: built, packed with `npm pack`, and installed from the tarball into
 * a scratch project, once per test run.
 *
 * Overview: each test file runs in a process of its own, and `npm test` runs the suite twice, so
 * the result is cached on disk under a key made of every input of the package (its manifest,
 * README, LICENSE, CHANGELOG, compiler settings and `src/`): the first caller builds, packs and
 * installs (about 20 s), later callers in this or the next run reuse it. A lock directory keeps
 * two processes from preparing the same key at once.
 *
 * Contract:
 * - {@link packedPackage} resolves to a scratch project whose `node_modules/dmabuf` was installed
 *   by `npm install <tarball>` (dependencies, if any, from the npm cache or registry as usual).
 * - Tests write their programs into directories of their own under `consumer` (see
 *   {@link scratchDir}) and never change what is installed.
 * - Child processes get {@link cleanEnv}: no npm script variables, no node options, no test
 *   runner or coverage context, no validator switch.
 *
 * @example
 * ```ts
 * import { packedPackage, scratchDir } from '../helpers/packed.js';
 * const pkg = await packedPackage();
 * const dir = scratchDir(pkg, 'my-check'); // consumer/my-check, resolving 'dmabuf' from the tarball
 * ```
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const exec = promisify(execFile);

/** The repository root. */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Files whose content makes up the package, besides everything under `src/`. */
const INPUTS = ['package.json', 'tsconfig.json', 'tsconfig.build.json', 'README.md', 'LICENSE', 'CHANGELOG.md'];

/** One file of the tarball, as `npm pack --json` lists it. */
export interface PackedFile {
  readonly path: string;
  readonly size: number;
}

/** The packed and installed package. */
export interface PackedPackage {
  /** The cache directory holding the tarball and the scratch project. */
  readonly dir: string;
  readonly tarball: string;
  readonly files: readonly PackedFile[];
  /** The scratch project (`"type": "module"`) with the tarball installed. */
  readonly consumer: string;
  /** `consumer/node_modules/dmabuf`. */
  readonly installed: string;
}

/** The environment for child processes (see the module contract). */
export function cleanEnv(extra: Readonly<Record<string, string>> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^npm_/i.test(key) || /^(NODE_OPTIONS|NODE_TEST_CONTEXT|NODE_V8_COVERAGE|DMABUF_LOCKDEP.*)$/.test(key))
      continue;
    env[key] = value;
  }
  return { ...env, ...extra };
}

/** Runs `file` with `args` in `cwd`; rejects with its output when it fails. */
export async function runTool(
  file: string,
  args: readonly string[],
  cwd: string,
  options: { env?: NodeJS.ProcessEnv; timeout?: number } = {},
): Promise<{ stdout: string; stderr: string }> {
  try {
    return await exec(file, [...args], {
      cwd,
      env: options.env ?? cleanEnv(),
      timeout: options.timeout ?? 120_000,
      maxBuffer: 32 << 20,
    });
  } catch (err) {
    const e = err as Error & { stdout?: string; stderr?: string };
    throw new Error(
      `${file} ${args.join(' ')} (in ${cwd}) failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`,
      {
        cause: err,
      },
    );
  }
}

const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';

function inputKey(): string {
  const hash = createHash('sha256');
  const add = (rel: string): void => {
    hash.update(rel);
    hash.update(fs.readFileSync(path.join(REPO_ROOT, rel)));
  };
  for (const rel of INPUTS) if (fs.existsSync(path.join(REPO_ROOT, rel))) add(rel);
  const walk = (dir: string): void => {
    for (const entry of fs
      .readdirSync(path.join(REPO_ROOT, dir), { withFileTypes: true })
      .sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const rel = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(rel);
      else add(rel);
    }
  };
  walk('src');
  return hash.digest('hex').slice(0, 16);
}

const CACHE_PREFIX = 'dmabuf-package-check-';
/** A lock older than this is left over from a killed run (preparing takes well under a minute). */
const STALE_LOCK_MS = 10 * 60_000;
/** Other keys' directories unused for this long are removed (each use touches its directory). */
const STALE_DIR_MS = 24 * 60 * 60_000;

let cached: Promise<PackedPackage> | undefined;

/** The package, built, packed and installed (once per key; see the module overview). */
export function packedPackage(): Promise<PackedPackage> {
  cached ??= prepare();
  return cached;
}

/** A fresh directory `consumer/<name>` for one test's programs. */
export function scratchDir(pkg: PackedPackage, name: string): string {
  const dir = path.join(pkg.consumer, name);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

async function prepare(): Promise<PackedPackage> {
  const dir = path.join(os.tmpdir(), `${CACHE_PREFIX}${inputKey()}`);
  const ready = path.join(dir, 'ready.json');
  const lock = `${dir}.lock`;
  for (;;) {
    if (fs.existsSync(ready)) {
      const now = new Date();
      fs.utimesSync(dir, now, now);
      return JSON.parse(fs.readFileSync(ready, 'utf8')) as PackedPackage;
    }
    try {
      fs.mkdirSync(lock);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      // Another process prepares this key; a lock older than any preparation is left over.
      if (Date.now() - fs.statSync(lock).mtimeMs > STALE_LOCK_MS) fs.rmSync(lock, { recursive: true, force: true });
      await new Promise((resolve) => setTimeout(resolve, 250));
      continue;
    }
    try {
      if (fs.existsSync(ready)) continue;
      removeStale(dir);
      const pkg = await build(dir);
      fs.writeFileSync(ready, JSON.stringify(pkg, null, 2));
      return pkg;
    } finally {
      fs.rmSync(lock, { recursive: true, force: true });
    }
  }
}

/** Removes other keys' directories unused for {@link STALE_DIR_MS}, so that the temp dir does not fill up. */
function removeStale(keep: string): void {
  const tmp = os.tmpdir();
  for (const name of fs.readdirSync(tmp)) {
    const full = path.join(tmp, name);
    if (!name.startsWith(CACHE_PREFIX) || full === keep || full.startsWith(`${keep}.`)) continue;
    try {
      if (Date.now() - fs.statSync(full).mtimeMs > STALE_DIR_MS) fs.rmSync(full, { recursive: true, force: true });
    } catch {
      // Removed by another process meanwhile.
    }
  }
}

async function build(dir: string): Promise<PackedPackage> {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  await runTool(NPM, ['run', 'build'], REPO_ROOT, { timeout: 300_000 });
  const { stdout } = await runTool(NPM, ['pack', '--json', '--ignore-scripts', '--pack-destination', dir], REPO_ROOT);
  const [packed] = JSON.parse(stdout) as [{ filename: string; files: PackedFile[] }];
  const tarball = path.join(dir, packed.filename);
  const consumer = path.join(dir, 'consumer');
  fs.mkdirSync(consumer);
  fs.writeFileSync(
    path.join(consumer, 'package.json'),
    `${JSON.stringify({ name: 'dmabuf-consumer', version: '1.0.0', private: true, type: 'module' }, null, 2)}\n`,
  );
  await runTool(NPM, ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball], consumer, {
    timeout: 300_000,
  });
  return {
    dir,
    tarball,
    files: packed.files.map((f) => ({ path: f.path, size: f.size })),
    consumer,
    installed: path.join(consumer, 'node_modules', 'dmabuf'),
  };
}
