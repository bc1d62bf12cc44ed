import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  SRC_DIR,
  STRIPPED_FILES,
  crossRow,
  fenceSide,
  hookReferences,
  hookedBuild,
  loadBuild,
  lockSide,
  loopsFor,
  stripLockdepHooks,
  typeCheckCopy,
  writeCopies,
  type Build,
  type CopySet,
} from '../../bench/lockdep.bench.js';
import type { Side } from '../../bench/harness.js';
import { asOtherTask } from '../helpers/other-task.js';

const read = (rel: string): string => fs.readFileSync(path.join(SRC_DIR, rel), 'utf8');

async function runOnce(side: Side, batch: number): Promise<void> {
  await side.setup?.(batch);
  await side.run(batch);
}

/**
 * A short scripted run through both modules (callbacks, waits, late cases, a queued lock, a
 * wait-die back-off and its slow lock), as text: builds that behave alike print the same lines.
 */
async function transcript(build: Build): Promise<string[]> {
  const { DmaFence, fenceContextAlloc } = build.fence;
  const { WwAcquireCtx, WwClass, WwMutex } = build.ww;
  const log: string[] = [];
  const ops = { getDriverName: () => 'transcript', getTimelineName: () => 'transcript' };
  const context = fenceContextAlloc();
  const f = new DmaFence(ops, context, 1);
  log.push(`addCallback ${f.addCallback(() => log.push('callback ran'))}`);
  const waiting = f.wait();
  log.push(`signal ${f.signal(5)}, again ${f.signal(6)}, status ${f.status}, timestamp ${f.timestamp}`);
  log.push(
    `wait ${await waiting}, late wait ${await f.wait()}, late addCallback ${f.addCallback(() => log.push('late callback ran'))}`,
  );
  const g = new DmaFence(ops, context, 2);
  log.push(`waitAny ${await DmaFence.waitAny([g, f])}, zero-timeout wait ${await g.wait({ timeout: 0 })}`);
  g.setError('EIO');
  log.push(`error signal ${g.signal(7)}, status ${g.status}`);

  const cls = new WwClass('lockdep_bench_transcript', 'wait-die');
  const a = new WwMutex(cls, 'a');
  const b = new WwMutex(cls, 'b');
  await a.lock();
  log.push(`tryLock on a held mutex ${a.tryLock()}`);
  const queued = asOtherTask(async () => {
    await a.lock();
    log.push(`queued lock granted, waiters ${a.waiters}`);
    a.unlock();
  });
  log.push(`waiters ${a.waiters}`);
  a.unlock();
  await queued;
  const older = new WwAcquireCtx(cls);
  const younger = new WwAcquireCtx(cls);
  await asOtherTask(() => b.lock(older));
  const youngerRun = asOtherTask(async () => {
    await a.lock(younger);
    try {
      await b.lock(younger);
      log.push('younger got b');
    } catch (err) {
      log.push(`younger backs off: ${(err as Error).name}, contending ${younger.contendingLock?.name}`);
    }
    a.unlock();
    await b.lockSlow(younger);
    log.push(`younger slow-locked b, holds ${younger.acquired}`);
    b.unlock();
    younger.fini();
  });
  for (let turns = 0; b.waiters === 0; turns++) {
    assert.ok(turns < 100, 'the younger context never queued on b');
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  b.unlock();
  older.fini();
  await youngerRun;
  log.push(`all free ${!a.isLocked && !b.isLocked}`);
  return log;
}

describe('stripLockdepHooks', () => {
  it('sanity: both hooked files lose lines and keep no hook reference', () => {
    for (const rel of STRIPPED_FILES) {
      const source = read(rel);
      assert.ok(hookReferences(source).length > 0, `${rel} should have hooks to strip`);
      const stripped = stripLockdepHooks(source, rel);
      assert.ok(stripped.removed.length > 0, `${rel}: nothing removed`);
      assert.deepEqual(hookReferences(stripped.source), [], `${rel}: hooks left`);
      assert.doesNotMatch(stripped.source, /\bimport \{[^}]*\blockdep\b[^}]*\}/, `${rel}: still imports the binding`);
    }
  });

  it('deletes only hook lines: every other line of the file survives in order', () => {
    for (const rel of STRIPPED_FILES) {
      const source = read(rel);
      const { source: out, removed, rewritten } = stripLockdepHooks(source, rel);
      const before = source.split('\n').length;
      const afterLines = out.split('\n').length;
      assert.equal(before - afterLines, removed.length, `${rel}: line count vs removed list`);
      for (const r of rewritten)
        assert.match(
          r,
          /=> (import \{ [^}]+ \} from '[^']+';|const \w+ = undefined;)$/,
          `${rel}: unexpected rewrite ${r}`,
        );
    }
  });

  it('keeps the hot paths apart from the hooks: signal, addCallback, lock and unlock are still there', () => {
    const fence = stripLockdepHooks(read('fence/dma-fence.ts'), 'fence/dma-fence.ts').source;
    const ww = stripLockdepHooks(read('locking/ww-mutex.ts'), 'locking/ww-mutex.ts').source;
    for (const sig of [
      'signal(timestamp?: number): boolean {',
      'addCallback(callback: FenceCallback): boolean {',
      'wait(options?: FenceWaitOptions): Promise<boolean> {',
    ]) {
      assert.ok(fence.includes(sig), `dma-fence.ts lost ${sig}`);
    }
    for (const sig of [
      'lock(ctx?: WwAcquireCtx | null, options?: WwLockOptions): Promise<void> {',
      'unlock(): void {',
      'tryLock(ctx?: WwAcquireCtx | null): boolean {',
    ]) {
      assert.ok(ww.includes(sig), `ww-mutex.ts lost ${sig}`);
    }
  });

  it('fails loudly on a file without hooks', () => {
    assert.throws(() => stripLockdepHooks(read('base/clock.ts'), 'base/clock.ts'), /removed nothing/);
  });

  it('fails loudly on a hook in a statement shape it does not know', () => {
    const source = [
      "import { lockdep } from '../base/lockdep-hooks.js';",
      'export function f(): void {',
      '  const x = [',
      '    lockdep,',
      '  ];',
      '}',
    ].join('\n');
    assert.throws(() => stripLockdepHooks(source, 'probe.ts'), /shape it does not know/);
  });

  it('fails loudly when a hook survives in a string (nothing may mention one afterwards)', () => {
    const source = [
      "import { lockdep } from '../base/lockdep-hooks.js';",
      'export function f(): void {',
      '  lockdep?.mightReclaim();',
      "  console.log('lockdep is off');",
      '}',
    ].join('\n');
    assert.throws(() => stripLockdepHooks(source, 'probe.ts'), /hook reference\(s\) left/);
  });
});

describe('the hook-free copy', () => {
  let set: CopySet;
  let stripped: Build;
  let hookedCopy: Build;

  before(async () => {
    set = writeCopies({ hooked: 1, stripped: 1 });
    stripped = await loadBuild(set.stripped[0]!);
    hookedCopy = await loadBuild(set.hooked[0]!);
  });
  after(() => set.remove());

  it('sanity: the copies are module graphs of their own and the stripped files on disk have no hooks', () => {
    assert.notEqual(stripped.fence.DmaFence, hookedBuild.fence.DmaFence);
    assert.notEqual(stripped.ww.WwMutex, hookedCopy.ww.WwMutex);
    for (const rel of STRIPPED_FILES) {
      assert.deepEqual(hookReferences(fs.readFileSync(path.join(set.stripped[0]!.srcDir, rel), 'utf8')), [], rel);
      assert.equal(
        fs.readFileSync(path.join(set.hooked[0]!.srcDir, rel), 'utf8'),
        read(rel),
        `${rel}: the unmodified copy differs`,
      );
    }
  });

  it('type-checks with the project compiler options', async () => {
    const diagnostics = await typeCheckCopy(set.stripped[0]!);
    assert.notEqual(diagnostics, null, 'typescript is a development dependency and should be installed');
    assert.deepEqual(diagnostics, []);
  });

  it('behaves like src/ and like the unmodified copy on the scripted run', async () => {
    const expected = await transcript(hookedBuild);
    assert.ok(expected.includes('callback ran') && expected.includes('all free true'), expected.join('\n'));
    assert.deepEqual(await transcript(stripped), expected);
    assert.deepEqual(await transcript(hookedCopy), expected);
  });

  it('runs every measured side on a small batch, each checking its own counts', async () => {
    for (const build of [hookedBuild, hookedCopy, stripped]) {
      const loops = await loopsFor(`test-${build.label}`);
      for (const side of [
        loops.fenceSide(build),
        loops.fenceSide(build, 1.5),
        loops.lockSide(build, false),
        loops.lockSide(build, true),
      ]) {
        await assert.doesNotReject(runOnce(side, 200), build.label);
      }
    }
    // The module's own factories are the ones the enabled rows use with src/.
    await assert.doesNotReject(runOnce(fenceSide(hookedBuild), 10));
    await assert.doesNotReject(runOnce(lockSide(hookedBuild, true), 10));
  });

  it('loopsFor gives each key factories of their own', async () => {
    const a = await loopsFor('test-a');
    const b = await loopsFor('test-b');
    assert.notEqual(a.lockSide, b.lockSide);
    assert.equal(await loopsFor('test-a').then((l) => l.lockSide), a.lockSide);
  });
});

describe('crossRow', () => {
  it('compares every candidate copy with every baseline copy by its 90th-percentile round', () => {
    const flat = (v: number): number[] => Array.from({ length: 11 }, (_, i) => (i === 0 ? v / 2 : v));
    // Steady rates: candidate 9 and 12, baseline 10 and 10: ratios 0.9, 0.9, 1.2, 1.2.
    const row = crossRow({
      name: 'probe',
      candidate: { label: 'c', rates: [flat(9), flat(12)] },
      baseline: { label: 'b', rates: [flat(10), flat(10)] },
      batch: 1,
      rounds: 11,
      target: { op: '>=', value: 0.95 },
      note: '',
    });
    assert.ok(Math.abs(row.ratio!.median - 1.05) < 1e-9, `median ${row.ratio!.median}`);
    assert.ok(Math.abs(row.ratio!.q1 - 0.9) < 1e-9 && Math.abs(row.ratio!.q3 - 1.2) < 1e-9, JSON.stringify(row.ratio));
    assert.equal(row.target?.pass, true);
  });
});
