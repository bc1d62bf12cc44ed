// The installed package's declarations, type-checked as strict consumers see them: a Node project
// (NodeNext, ESM and CommonJS files, @types/node) and a browser project (bundler resolution, the
// default lib for ES2022, no @types/node), both with skipLibCheck off, so that an error inside
// dmabuf's .d.ts files (or a clash of its global declarations with @types/node's) fails the check
// too. TypeScript's own lib files are not re-checked (skipDefaultLibCheck): that saves seconds.
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type PackedPackage, REPO_ROOT, packedPackage, runTool, scratchDir } from '../helpers/packed.js';

const TSC = path.join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
const SMOKE_SOURCE = fs.readFileSync(new URL('./smoke-program.ts', import.meta.url), 'utf8');

const STRICT = {
  strict: true,
  exactOptionalPropertyTypes: true,
  noUncheckedIndexedAccess: true,
  noImplicitOverride: true,
  skipLibCheck: false,
  skipDefaultLibCheck: true,
  noEmit: true,
};

/** Uses of the API that the smoke program does not make: `using`, options, the Node entry. */
const USING = `import { DmaHeap, SwSyncTimeline, type DmaFence } from 'dmabuf';

export async function owners(): Promise<number> {
  await using heap = new DmaHeap({ budgetBytes: 1 << 20 });
  using timeline = new SwSyncTimeline('consumer');
  const fence: DmaFence = timeline.createFence(1);
  timeline.inc(1);
  const signaled: boolean = await fence.wait({ timeout: 10 });
  return signaled ? heap.stats().liveBytes : -1;
}
`;

let pkg: PackedPackage;

/** Writes `files` and a tsconfig.json with `options` into a fresh directory; runs tsc on it. */
async function typeCheck(
  name: string,
  options: Record<string, unknown>,
  files: Readonly<Record<string, string>>,
): Promise<{ ok: boolean; output: string }> {
  const dir = scratchDir(pkg, name);
  for (const [file, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, file), text);
  const config = { compilerOptions: { ...STRICT, ...options }, files: Object.keys(files) };
  fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify(config, null, 2));
  try {
    const { stdout } = await runTool(process.execPath, [TSC, '-p', dir, '--pretty', 'false'], dir);
    return { ok: true, output: stdout };
  } catch (err) {
    return { ok: false, output: (err as Error).message };
  }
}

const NODE_OPTIONS = {
  target: 'ES2022',
  module: 'NodeNext',
  moduleResolution: 'NodeNext',
  types: ['node'],
  typeRoots: [path.join(REPO_ROOT, 'node_modules', '@types')],
};

const BROWSER_OPTIONS = { target: 'ES2022', module: 'ESNext', moduleResolution: 'Bundler', types: [] };

describe('the package for a strict TypeScript consumer', () => {
  before(async () => {
    pkg = await packedPackage();
  });

  it(
    'sanity: a Node consumer (NodeNext, ESM and CommonJS files; dmabuf, dmabuf/node, dmabuf/testing) ' +
      'compiles against the declarations',
    async () => {
      const result = await typeCheck('ts-node', NODE_OPTIONS, {
        'smoke-program.ts': SMOKE_SOURCE,
        'using.ts': USING,
        'main.mts': `import * as dmabuf from 'dmabuf';
import { enableLockdep, type LockdepReport } from 'dmabuf/node';
import { VirtualClock, mockFence, useClock } from 'dmabuf/testing';
import { smoke } from './smoke-program.js';
await smoke(dmabuf, (line) => console.log(line));
const reports: readonly LockdepReport[] = [];
console.log(enableLockdep({ mode: 'record' }).enabled, reports.length);
using _clock = useClock(new VirtualClock());
const waited: Promise<boolean> = mockFence().wait({ timeout: 1 });
void waited;
`,
        'require.cts': `import dmabuf = require('dmabuf');
export const fence: dmabuf.DmaFence = dmabuf.DmaFence.getStub();
`,
      });
      assert.ok(result.ok, result.output);
    },
  );

  it('a browser consumer with the default lib for ES2022 and no @types/node compiles, using included', async () => {
    const result = await typeCheck('ts-browser', BROWSER_OPTIONS, {
      'smoke-program.ts': SMOKE_SOURCE,
      'using.ts': USING,
    });
    assert.ok(result.ok, result.output);
  });

  it('the check is real: a wrong use of the API fails with the declared types', async () => {
    const result = await typeCheck(
      'ts-wrong',
      { ...BROWSER_OPTIONS, skipLibCheck: true },
      {
        'wrong.ts': `import { DmaFence, DrmExec } from 'dmabuf';
export const signaled: string = DmaFence.getStub().isSignaled();
export const exec = new DrmExec({ signal: undefined });
`,
      },
    );
    assert.equal(result.ok, false, 'tsc accepted wrong code');
    assert.match(result.output, /wrong\.ts\(2,14\): error TS2322/, result.output);
    assert.match(result.output, /wrong\.ts\(3,33\): error TS2379/, result.output);
  });
});
