import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  crossRow,
  fenceSide,
  hookedBuild,
  loadBuild,
  lockSide,
  loopsFor,
  writeCopies,
  type Build,
  type CopySet,
} from '../../bench/lockdep.bench.js';
import type { Side } from '../../bench/harness.js';

async function runOnce(side: Side, batch: number): Promise<void> {
  await side.setup?.(batch);
  await side.run(batch);
}

describe('lockdep bench sides', () => {
  let set: CopySet;
  let stripped: Build;
  let hookedCopy: Build;

  before(async () => {
    set = writeCopies({ hooked: 1, stripped: 1 });
    stripped = await loadBuild(set.stripped[0]!);
    hookedCopy = await loadBuild(set.hooked[0]!);
  });
  after(() => set.remove());

  it('sanity: runs every measured side on a small batch, each checking its own counts', async () => {
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
