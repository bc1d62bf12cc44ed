// The `dmabuf` command as users get it: `npm install` of the packed tarball, then the bin from
// node_modules/.bin, with no TypeScript tool in the consumer's node_modules.
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { RunJson } from '../../src/cli/run-json.js';
import { type PackedPackage, cleanEnv, packedPackage, scratchDir } from '../helpers/packed.js';
import { schemaProblems } from '../helpers/run-json-schema.js';

let pkg: PackedPackage;

/** Runs the installed bin in `cwd`; never rejects. */
function dmabuf(
  cwd: string,
  args: readonly string[],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const bin = path.join(pkg.consumer, 'node_modules', '.bin', 'dmabuf');
  return new Promise((resolve) => {
    execFile(bin, [...args], { cwd, env: cleanEnv(), timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : null, stdout, stderr });
    });
  });
}

describe('the installed dmabuf command', () => {
  before(async () => {
    pkg = await packedPackage();
  });

  it('sanity: npx-style dmabuf run churn works from the compiled package, writing its report and trace', async () => {
    const dir = scratchDir(pkg, 'dmabuf-run-bin');
    const r = await dmabuf(dir, ['run', 'churn', '--duration', '300ms', '--budget', '16M', '--json', '--no-progress']);
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout) as RunJson;
    assert.deepEqual(schemaProblems(doc), []);
    assert.equal(doc.scenarios[0]?.status, 'ok');
    assert.equal(doc.outputs.report, path.join(dir, 'dmabuf-run', 'report.html'));
    assert.match(readFileSync(doc.outputs.report!, 'utf8'), /uPlot/, 'the chart library was found and inlined');
    assert.ok(existsSync(doc.outputs.trace!), 'trace written');
  });

  it('runs the soft device from the compiled package: inference and release-storm, its workers included', async () => {
    const dir = scratchDir(pkg, 'dmabuf-run-soft');
    const r = await dmabuf(dir, [
      'run',
      'inference',
      'release-storm',
      '--duration',
      '300ms',
      '--budget',
      '16M',
      '--json',
      '--no-progress',
      '--no-report',
      '--no-trace',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout) as RunJson;
    assert.deepEqual(
      doc.scenarios.map((s) => [s.name, s.status]),
      [
        ['inference', 'ok'],
        ['release-storm', 'ok'],
      ],
    );
  });

  it('needs no TypeScript tool: neither tsx nor typescript is installed beside it', () => {
    for (const tool of ['tsx', 'typescript', 'esbuild']) {
      assert.equal(existsSync(path.join(pkg.consumer, 'node_modules', tool)), false, `${tool} installed`);
    }
  });

  it('exits 2 with the valid scenarios for an unknown one', async () => {
    const r = await dmabuf(scratchDir(pkg, 'dmabuf-run-bad'), ['run', 'nope']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown scenario: nope; valid scenarios: churn/);
  });
});
