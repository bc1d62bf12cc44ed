import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { BENCHMARKS } from '../../bench/index.js';
import { renderColumns, resolveNames, UnknownBenchmarkError } from '../../bench/cli.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const main = fileURLToPath(new URL('../../bench/cli.ts', import.meta.url));

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `file` with `args` (default: node), collecting its output and exit code (never rejects). */
function run(args: readonly string[], options: { cwd?: string; timeout?: number; file?: string } = {}): Promise<Ran> {
  return new Promise((resolve) => {
    execFile(
      options.file ?? process.execPath,
      [...args],
      { cwd: options.cwd ?? root, timeout: options.timeout ?? 30_000, maxBuffer: 16 << 20 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : null;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

const cli = (...args: string[]): Promise<Ran> => run(['--expose-gc', '--import', 'tsx', main, ...args]);

describe('benchmark runner', () => {
  it('sanity: --list prints every registered benchmark and exits 0', async () => {
    const r = await cli('--list');
    assert.equal(r.code, 0, r.stderr);
    for (const b of BENCHMARKS)
      assert.match(r.stdout, new RegExp(`^${b.name}\\s`, 'm'), `${b.name} missing from --list`);
  });

  it('--list --json prints the names as JSON', async () => {
    const r = await cli('--list', '--json');
    assert.equal(r.code, 0, r.stderr);
    const list = JSON.parse(r.stdout) as { name: string }[];
    assert.deepEqual(
      list.map((b) => b.name),
      BENCHMARKS.map((b) => b.name),
    );
  });

  it('an unknown benchmark name exits 2 naming it and listing the valid names', async () => {
    const r = await cli('fence-signal', 'no-such-bench');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown benchmark: no-such-bench/);
    for (const b of BENCHMARKS) assert.ok(r.stderr.includes(b.name), `valid name ${b.name} not listed in: ${r.stderr}`);
    assert.equal(r.stdout, '', 'nothing ran');
  });

  it('fence-signal --quick --json prints one parseable document with ratios and targets', async () => {
    const r = await cli('fence-signal', '--quick', '--json');
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout) as {
      quick: boolean;
      gcExposed: boolean;
      machine: { cores: number; node: string };
      benchmarks: {
        name: string;
        rows: { name: string; ratio: { median: number } | null; target: { pass: boolean } | null }[];
      }[];
    };
    assert.equal(doc.quick, true);
    assert.equal(doc.gcExposed, true);
    assert.equal(doc.machine.node, process.version);
    assert.ok(doc.machine.cores >= 1);
    assert.deepEqual(
      doc.benchmarks.map((b) => b.name),
      ['fence-signal'],
    );
    const rows = doc.benchmarks[0]!.rows;
    assert.ok(rows.length >= 1);
    for (const row of rows)
      assert.ok(
        row.ratio !== null && row.ratio.median > 0 && Number.isFinite(row.ratio.median),
        `row ${row.name} has no ratio`,
      );
    assert.equal(typeof rows[0]!.target?.pass, 'boolean', 'the 1-callback row carries the >= 2x target');
    assert.match(r.stderr, /fence-signal/, 'progress goes to stderr');
  });

  it('npm run bench runs it from the repository and passes the exit code through', async () => {
    const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
    const listed = await run(['run', '--silent', 'bench', '--', '--list'], { file: npm });
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /fence-chain/);
    const unknown = await run(['run', '--silent', 'bench', '--', 'nope'], { file: npm });
    assert.equal(unknown.code, 2, unknown.stderr);
  });
});

describe('benchmark runner helpers', () => {
  it('sanity: resolveNames with no names selects every benchmark in registry order', () => {
    assert.deepEqual(
      resolveNames([], BENCHMARKS),
      BENCHMARKS.map((b) => b.name),
    );
  });

  it('resolveNames drops duplicates and throws UnknownBenchmarkError for unknown names', () => {
    assert.deepEqual(resolveNames(['fence-wait', 'fence-wait'], BENCHMARKS), ['fence-wait']);
    assert.throws(
      () => resolveNames(['fence-wait', 'x', 'y'], BENCHMARKS),
      (err: unknown) => err instanceof UnknownBenchmarkError && /benchmarks: x, y/.test(err.message),
    );
  });

  it('renderColumns aligns every cell under its header', () => {
    const text = renderColumns(['a', 'long header'], [['wide cell', 'x']]);
    const [header, rule, line] = text.split('\n');
    assert.equal(header!.indexOf('long header'), line!.indexOf('x'));
    assert.equal(rule, '---------  -----------');
  });
});
