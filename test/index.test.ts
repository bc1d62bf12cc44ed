/**
 * Executable specification of the package's entry points (src/index.ts, src/testing.ts) and of
 * the types a user installs: an explicit export list with no internals, helpers for users' tests
 * in `dmabuf/testing`, and declarations with nothing marked `@internal` that still type-check.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import * as api from '../src/index.js';
import * as nodeApi from '../src/node.js';
import * as testing from '../src/testing.js';

// The entries as plain records, so the tests can look names up.
const mainExports: Readonly<Record<string, unknown>> = { ...api };
const nodeExports: Readonly<Record<string, unknown>> = { ...nodeApi };
const testingExports: Readonly<Record<string, unknown>> = { ...testing };

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Driver internals and plumbing that must not be part of the public API. */
const INTERNAL = [
  'describeValue',
  'reportCallbackError',
  'checkIndex',
  'checkTimeout',
  'defineOptions',
  'invalidArgument',
  'isAbortSignal',
  'Waiter',
  'QueueState',
  'runAll',
  'lockdep',
  'installLockdepHooks',
  'lockdepPrime',
  'waitWithCleanup',
  'ttmBoPipelineGutting',
  'ttmLruWalkForEvict',
  'ttmBufferObjectTransfer',
  'ttmDeviceFuncsResolve',
  'checkPlacement',
  'ttmResourceAlloc',
  'linkTail',
  'checkMemType',
] as const;

/** Helpers for users' tests: in dmabuf/testing, not in the main entry. */
const TESTING = ['VirtualClock', 'settle', 'seededRandom', 'shuffle', 'mockFence', 'mockOps'] as const;

function files(dir: string, suffix: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return files(path, suffix);
    return name.endsWith(suffix) ? [path] : [];
  });
}

describe('entry points', () => {
  it('sanity: the main entry exports the core classes', () => {
    const core = { DmaFence: api.DmaFence, DmaResv: api.DmaResv, DrmExec: api.DrmExec, TtmDevice: api.TtmDevice };
    for (const [name, value] of Object.entries(core)) assert.equal(typeof value, 'function', name);
  });

  it('src/index.ts lists its exports: no export *', () => {
    const source = readFileSync(join(ROOT, 'src/index.ts'), 'utf8');
    assert.equal(/^export \*/m.test(source), false, 'src/index.ts must name every export');
  });

  it('no internal helper or driver internal is exported, from dmabuf or dmabuf/node', () => {
    for (const name of INTERNAL) {
      assert.equal(name in mainExports, false, `dmabuf exports ${name}`);
      assert.equal(name in nodeExports, false, `dmabuf/node exports ${name}`);
    }
  });

  it('test helpers live in dmabuf/testing and not in the main entry', () => {
    for (const name of TESTING) {
      assert.notEqual(testingExports[name], undefined, `dmabuf/testing lacks ${name}`);
      assert.equal(name in mainExports, false, `dmabuf exports ${name}; it belongs in dmabuf/testing`);
    }
    const fence = testing.mockFence();
    assert.deepEqual([fence.timelineName, fence.seqno, fence.status], ['mock', 1, 'active']);
    assert.equal(testing.useClock, api.useClock, 'one useClock, reachable from both entries');
  });

  it('package.json maps dmabuf/testing like the other entries', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
      exports: Record<string, Record<string, string>>;
    };
    const entry = pkg.exports['./testing'];
    assert.deepEqual(Object.keys(entry ?? {}), Object.keys(pkg.exports['./node'] ?? {}));
    assert.equal(entry?.['types'], './dist/testing.d.ts');
  });
});

describe('published types', () => {
  it('the build strips @internal, and the declarations it emits type-check on their own', () => {
    const config = ts.getParsedCommandLineOfConfigFile(
      join(ROOT, 'tsconfig.build.json'),
      {},
      {
        ...ts.sys,
        onUnRecoverableConfigFileDiagnostic: (d) => assert.fail(ts.flattenDiagnosticMessageText(d.messageText, '\n')),
      },
    );
    assert.ok(config !== undefined, 'tsconfig.build.json parses');
    assert.equal(config.options.stripInternal, true, 'tsconfig.build.json sets stripInternal');
    // Under node_modules (ignored by git and the linter) so the consumer resolves the packages
    // the declarations import, as an installed copy would.
    mkdirSync(join(ROOT, 'node_modules/.cache'), { recursive: true });
    const out = mkdtempSync(join(ROOT, 'node_modules/.cache/dmabuf-dts-'));
    try {
      const emit = ts.createProgram(config.fileNames, {
        ...config.options,
        outDir: out,
        declaration: true,
        emitDeclarationOnly: true,
        declarationMap: false,
        sourceMap: false,
        noEmit: false,
      });
      const result = emit.emit();
      const emitErrors = ts.getPreEmitDiagnostics(emit).concat(result.diagnostics);
      assert.deepEqual(
        emitErrors.map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n')),
        [],
        'the build emits without errors',
      );
      const dts = files(out, '.d.ts');
      assert.ok(dts.length > 30, `declarations were emitted (${dts.length})`);
      const leaking = dts.filter((file) => readFileSync(file, 'utf8').includes('@internal'));
      assert.deepEqual(leaking, [], 'no declaration carries @internal');
      // A consumer of the three entries, checked against the emitted declarations only.
      writeFileSync(join(out, 'package.json'), '{ "type": "module" }\n');
      const consumer = join(out, 'consumer.ts');
      writeFileSync(
        consumer,
        [
          "import { DmaFence, DmaHeap, TtmDevice, WwMutex } from './index.js';",
          "import { enableLockdep } from './node.js';",
          "import { VirtualClock, mockFence } from './testing.js';",
          'const fence: DmaFence = mockFence(); void fence.wait({ timeout: 1 });',
          'void [DmaHeap, TtmDevice, WwMutex, enableLockdep, new VirtualClock()];',
        ].join('\n'),
      );
      const check = ts.createProgram([...dts, consumer], {
        ...config.options,
        noEmit: true,
        skipLibCheck: false,
        types: ['node', '@webgpu/types'],
        // dmabuf/webgpu's types build on the DOM's, as @webgpu/types does.
        lib: [...(config.options.lib ?? []), 'lib.dom.d.ts'],
        rootDir: out,
      });
      const typeErrors = ts.getPreEmitDiagnostics(check).map((d) => {
        const where = d.file ? `${d.file.fileName.slice(out.length + 1)}: ` : '';
        return where + ts.flattenDiagnosticMessageText(d.messageText, '\n');
      });
      assert.deepEqual(typeErrors, [], 'the published declarations type-check without what @internal removed');
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
