// The validator inside single-file bundles (esbuild, as an application would ship it): it must
// load in every output format and its reports must keep their acquisition sites, although every
// frame of a bundle has the same file name.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { build, type Format } from 'esbuild';

const run = promisify(execFile);
const nodeEntry = fileURLToPath(new URL('../../src/node.ts', import.meta.url));

/** Two tasks taking two mutexes in opposite orders, in record mode; prints what the report says. */
const PROGRAM = `
import { Mutex, enableLockdep, lockdepReports, lockdepTask } from ${JSON.stringify(nodeEntry)};

async function takeInOrder(first, second) {
  await first.lock();
  await second.lock();
  second.unlock();
  first.unlock();
}

const result = enableLockdep({ mode: 'record' });
const a = new Mutex('bundle.a');
const b = new Mutex('bundle.b');
await lockdepTask(() => takeInOrder(a, b));
await lockdepTask(() => takeInOrder(b, a));
const report = lockdepReports()[0];
const message = report?.message ?? '';
const section = (from, to) => message.slice(message.indexOf(from), message.indexOf(to)).split('\\n').slice(1);
console.log(JSON.stringify({
  enabled: result.enabled,
  kind: report?.kind,
  held: section('bundle.b was acquired at:', 'bundle.a is being acquired at:'),
  acquiring: section('bundle.a is being acquired at:', 'but the reverse chain'),
}));
`;

interface Outcome {
  enabled: boolean;
  kind?: string;
  held: string[];
  acquiring: string[];
}

let dir: string;

/** Bundles the program into one file of `format` and runs it in plain node. */
async function bundleAndRun(format: Format, minify: boolean): Promise<Outcome> {
  const source = path.join(dir, `program-${format}-${minify ? 'min' : 'plain'}.mjs`);
  fs.writeFileSync(source, format === 'esm' ? PROGRAM : wrapAsync(PROGRAM));
  const outfile = source.replace(/\.mjs$/, format === 'esm' ? '.bundle.mjs' : '.bundle.cjs');
  const result = await build({
    entryPoints: [source],
    bundle: true,
    format,
    platform: 'node',
    target: 'node20',
    minify,
    outfile,
    logLevel: 'silent',
  });
  assert.deepEqual(result.errors, [], 'esbuild reports no errors');
  const { stdout } = await run(process.execPath, [outfile], { env: { PATH: process.env['PATH'] ?? '' } });
  return JSON.parse(stdout.trim()) as Outcome;
}

/** Moves the program's top-level awaits into an async function (CJS and IIFE have no top-level await). */
function wrapAsync(program: string): string {
  const at = program.indexOf('const result');
  return `${program.slice(0, at)}(async () => {\n${program.slice(at)}\n})();\n`;
}

describe('lockdep in a single-file bundle', () => {
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dmabuf-lockdep-bundle-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('sanity: an ESM bundle loads, enables the validator and reports the inverted order', async () => {
    const out = await bundleAndRun('esm', false);
    assert.equal(out.enabled, true);
    assert.equal(out.kind, 'circular-dependency');
  });

  for (const format of ['esm', 'cjs', 'iife'] as const) {
    it(`a ${format} bundle keeps both acquisition sites, starting at the lock call in the caller's code`, async () => {
      const out = await bundleAndRun(format, false);
      assert.equal(out.kind, 'circular-dependency', `${format}: ${JSON.stringify(out)}`);
      for (const site of [out.held, out.acquiring]) {
        assert.match(site[0] ?? '', /at Mutex\.lock \(.*\.bundle\.c?m?js:\d+:\d+\)/, site.join('\n'));
        assert.match(site[1] ?? '', /at takeInOrder \(/, site.join('\n'));
      }
    });
  }

  it('a minified IIFE bundle loads and its sites still start at a lock call', async () => {
    const out = await bundleAndRun('iife', true);
    assert.equal(out.kind, 'circular-dependency', JSON.stringify(out));
    for (const site of [out.held, out.acquiring]) {
      assert.ok(site.length >= 2, `a site with frames: ${site.join('\n')}`);
      assert.match(site[0] ?? '', /at \S+\.lock \(/, site.join('\n'));
    }
  });
});
