// The installed package in plain Node, without tsx or any loader: ESM import, require(), the
// dmabuf/node entry with the validator switched on from the environment, a generic `source`
// condition, the exports map's limits, and Node bundles made by esbuild (which honour
// sideEffects).
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { build, transform } from 'esbuild';
import { type PackedPackage, cleanEnv, packedPackage, runTool, scratchDir } from '../helpers/packed.js';
import { SMOKE_EXPECTED } from './smoke-program.js';

const SMOKE_SOURCE = fs.readFileSync(new URL('./smoke-program.ts', import.meta.url), 'utf8');

let pkg: PackedPackage;
let dir: string;

/** Runs `file` (in `dir`) with plain node; resolves to its stdout lines and stderr. */
async function node(
  args: readonly string[],
  env: Readonly<Record<string, string>> = {},
): Promise<{ lines: string[]; stderr: string }> {
  const { stdout, stderr } = await runTool(process.execPath, args, dir, { env: cleanEnv(env), timeout: 60_000 });
  return { lines: stdout.trim().split('\n'), stderr };
}

describe('the package in plain Node', () => {
  before(async () => {
    pkg = await packedPackage();
    dir = scratchDir(pkg, 'node-check');
    // The smoke program with its types stripped, as an ES module and as a CommonJS one.
    for (const [format, ext] of [
      ['esm', 'mjs'],
      ['cjs', 'cjs'],
    ] as const) {
      const { code } = await transform(SMOKE_SOURCE, { loader: 'ts', format, target: 'node20' });
      fs.writeFileSync(path.join(dir, `smoke-program.${ext}`), code);
    }
    fs.writeFileSync(
      path.join(dir, 'main.mjs'),
      "import * as dmabuf from 'dmabuf';\nimport { smoke } from './smoke-program.mjs';\n" +
        'await smoke(dmabuf, (line) => console.log(line));\n',
    );
    fs.writeFileSync(
      path.join(dir, 'main.cjs'),
      "const dmabuf = require('dmabuf');\nconst { smoke } = require('./smoke-program.cjs');\n" +
        'smoke(dmabuf, (line) => console.log(line)).catch((err) => {\n' +
        '  console.error(err);\n  process.exitCode = 1;\n});\n',
    );
  });

  it('sanity: an ES module importing dmabuf runs the smoke program', async () => {
    const { lines, stderr } = await node(['main.mjs']);
    assert.deepEqual(lines, SMOKE_EXPECTED);
    assert.equal(stderr, '');
  });

  it('require() loads the ES module package (Node ^20.19 || >=22.12) and runs the same program', async () => {
    const { lines, stderr } = await node(['main.cjs']);
    assert.deepEqual(lines, SMOKE_EXPECTED);
    // Node 20 still calls require(esm) experimental; nothing else may be printed.
    const other = stderr.split('\n').filter((l) => l.trim() !== '' && !/ExperimentalWarning|--trace-warnings/.test(l));
    assert.deepEqual(other, []);
  });

  it("dmabuf/node turns the validator on from DMABUF_LOCKDEP=1 and reports sites in the caller's file", async () => {
    fs.writeFileSync(
      path.join(dir, 'lockdep.mjs'),
      `import { Mutex, lockdepEnabled, lockdepReports } from 'dmabuf/node';
async function takeInOrder(first, second) {
  await first.lock();
  await second.lock();
  second.unlock();
  first.unlock();
}
const a = new Mutex('node.a');
const b = new Mutex('node.b');
await takeInOrder(a, b);
await takeInOrder(b, a);
const message = lockdepReports()[0]?.message ?? '';
console.log(lockdepEnabled());
console.log(lockdepReports()[0]?.kind);
console.log(message.split('\\n').filter((l, i, all) => /acquired at:$/.test(all[i - 1] ?? '')).join('\\n'));
`,
    );
    const { lines } = await node(['lockdep.mjs'], { DMABUF_LOCKDEP: '1', DMABUF_LOCKDEP_MODE: 'record' });
    assert.equal(lines[0], 'true');
    assert.equal(lines[1], 'circular-dependency');
    const firstFrames = lines.slice(2);
    assert.ok(firstFrames.length >= 2, lines.join('\n'));
    for (const frame of firstFrames)
      assert.match(frame, /at Mutex\.lock \(.*node_modules\/dmabuf\/dist\/locking\/mutex\.js/, frame);
  });

  it('a consumer running with a generic --conditions=source still gets dist/', async () => {
    fs.writeFileSync(path.join(dir, 'resolve.mjs'), "console.log(import.meta.resolve('dmabuf'));\n");
    const { lines } = await node(['--conditions=source', 'resolve.mjs']);
    assert.match(lines[0] ?? '', /node_modules\/dmabuf\/dist\/index\.js$/);
    const ran = await node(['--conditions=source', 'main.mjs']);
    assert.deepEqual(ran.lines, SMOKE_EXPECTED);
  });

  it('dmabuf/testing moves time by hand for a fence of dmabuf', async () => {
    fs.writeFileSync(
      path.join(dir, 'testing.mjs'),
      `import { VirtualClock, mockFence, useClock } from 'dmabuf/testing';
const clock = new VirtualClock();
const restore = useClock(clock);
const waited = mockFence().wait({ timeout: 50 });
await clock.tick(50);
console.log(await waited);
restore[Symbol.dispose]();
`,
    );
    const { lines, stderr } = await node(['testing.mjs']);
    assert.deepEqual(lines, ['false']);
    assert.equal(stderr, '');
  });

  it('only the exported entry points resolve: deep imports fail, package.json is readable', async () => {
    fs.writeFileSync(
      path.join(dir, 'exports.mjs'),
      `import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
console.log(require('dmabuf/package.json').name);
try {
  await import('dmabuf/dist/fence/dma-fence.js');
  console.log('deep import resolved');
} catch (err) {
  console.log(err.code);
}
`,
    );
    const { lines } = await node(['exports.mjs']);
    assert.deepEqual(lines, ['dmabuf', 'ERR_PACKAGE_PATH_NOT_EXPORTED']);
  });

  for (const format of ['esm', 'cjs'] as const) {
    it(`an esbuild ${format} bundle keeps the side effect of import 'dmabuf/node'`, async () => {
      const entry = path.join(dir, `side-effect-${format}.mjs`);
      fs.writeFileSync(
        entry,
        "import 'dmabuf/node';\nimport { lockdepEnabled } from 'dmabuf';\nconsole.log(lockdepEnabled());\n",
      );
      const outfile = entry.replace(/\.mjs$/, format === 'esm' ? '.bundle.mjs' : '.bundle.cjs');
      const result = await build({
        entryPoints: [entry],
        absWorkingDir: dir,
        bundle: true,
        platform: 'node',
        format,
        target: 'node20',
        outfile,
        logLevel: 'silent',
      });
      assert.deepEqual(
        result.warnings.map((w) => w.text),
        [],
        'esbuild drops nothing as side-effect free',
      );
      const { lines } = await node([outfile], { DMABUF_LOCKDEP: '1' });
      assert.deepEqual(lines, ['true']);
    });
  }
});
