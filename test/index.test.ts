/**
 * Executable specification of the package's entry points (src/index.ts, src/testing.ts) and of
 * the types a user installs: an explicit export list with no internals, helpers for users' tests
 * in `dmabuf/testing`, and a build that strips `@internal` (test/package checks the installed
 * declarations: none carries `@internal`, and strict consumers of every entry type-check).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
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
  it('the build strips @internal (test/package checks the installed declarations and their consumers)', () => {
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
  });
});
