/**
 * Executable specification of src/heap/shrinker.ts: count/scan checking, the registry's
 * registration-order batch scans (partial frees, targets, Infinity), the seeks-scaled general
 * pass, unregistering through the handle, no reclaim recursion, and the `mightReclaim` report
 * to the validator (record mode, so the file also passes under `DMABUF_LOCKDEP=1`).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BugError, InvalidArgumentError } from '../../src/base/errors.js';
import {
  DEFAULT_SEEKS,
  SHRINK_BATCH,
  Shrinker,
  ShrinkerRegistry,
  type ShrinkerOptions,
} from '../../src/heap/shrinker.js';
import { signallingSection } from '../../src/node.js';
import { dmaFenceMap, fsReclaim } from '../../src/base/lockdep-hooks.js';
import { recordMode, seen } from '../helpers/lockdep-mode.js';

/** A cache of `pages` pages whose scans are logged as `name:n`; `perScan` caps one scan's frees. */
function cache(name: string, pages: number, log: string[], options?: ShrinkerOptions & { perScan?: number }) {
  const { perScan, ...shrinkerOptions } = options ?? {};
  const state = { pages };
  const shrinker = new Shrinker(
    name,
    {
      count: () => state.pages,
      scan: (n) => {
        log.push(`${name}:${n}`);
        const freed = Math.min(n, state.pages, perScan ?? Infinity);
        state.pages -= freed;
        return freed;
      },
    },
    shrinkerOptions,
  );
  return { state, shrinker };
}

describe('Shrinker', () => {
  it('sanity: defaults are the kernel DEFAULT_SEEKS (2) and SHRINK_BATCH (128); count and scan call the ops', () => {
    const log: string[] = [];
    const { shrinker, state } = cache('c', 10, log);
    assert.equal(shrinker.name, 'c');
    assert.equal(shrinker.seeks, DEFAULT_SEEKS);
    assert.equal(shrinker.seeks, 2);
    assert.equal(shrinker.batch, SHRINK_BATCH);
    assert.equal(shrinker.batch, 128);
    assert.equal(shrinker.count(), 10);
    assert.equal(shrinker.scan(4), 4);
    assert.equal(state.pages, 6);
    assert.deepEqual(log, ['c:4']);
  });

  it('rejects non-positive seeks or batch and ops without count/scan', () => {
    const ops = { count: () => 0, scan: () => 0 };
    assert.throws(() => new Shrinker('x', ops, { seeks: 0 }), InvalidArgumentError);
    assert.throws(() => new Shrinker('x', ops, { batch: -1 }), InvalidArgumentError);
    assert.throws(() => new Shrinker('x', ops, { batch: 1.5 }), InvalidArgumentError);
    assert.throws(() => new Shrinker('x', { count: () => 0 } as never), InvalidArgumentError);
  });

  it('a count or scan returning a negative or non-number is a BugError naming the shrinker', () => {
    const bad = new Shrinker('broken', { count: () => -1, scan: () => Number.NaN });
    assert.throws(
      () => bad.count(),
      (e: unknown) => e instanceof BugError && e.message.includes('"broken"') && e.message.includes('count()'),
    );
    assert.throws(
      () => bad.scan(3),
      (e: unknown) => e instanceof BugError && e.message.includes('scan(3)'),
    );
  });
});

describe('ShrinkerRegistry', () => {
  it('sanity: one shrinker, shrink(200) scans batches of 128 then 72 and returns 200', () => {
    const log: string[] = [];
    const reg = new ShrinkerRegistry();
    const { state, shrinker } = cache('a', 300, log);
    using _r = reg.register(shrinker);
    assert.equal(reg.count(), 300);
    assert.equal(reg.shrink(200), 200);
    assert.deepEqual(log, ['a:128', 'a:72']);
    assert.equal(state.pages, 100);
  });

  it('visits shrinkers in registration order, moving on when one is empty, and stops once the target is met', () => {
    const log: string[] = [];
    const reg = new ShrinkerRegistry();
    const a = cache('a', 5, log, { batch: 4 });
    const b = cache('b', 10, log, { batch: 4 });
    const c = cache('c', 10, log, { batch: 4 });
    reg.register(a.shrinker);
    reg.register(b.shrinker);
    reg.register(c.shrinker);
    assert.deepEqual(
      reg.shrinkers.map((s) => s.name),
      ['a', 'b', 'c'],
    );
    // a: 4, then 1 (its count caps the batch); b: 4, then 2 (the rest of the target); c untouched.
    assert.equal(reg.shrink(11), 11);
    assert.deepEqual(log, ['a:4', 'a:1', 'b:4', 'b:2']);
    assert.deepEqual([a.state.pages, b.state.pages, c.state.pages], [0, 4, 10]);
  });

  it('partial frees: a shrinker freeing less than asked is scanned again; one freeing nothing is left', () => {
    const log: string[] = [];
    const reg = new ShrinkerRegistry();
    const slow = cache('slow', 10, log, { batch: 8, perScan: 3 });
    const stuck = new Shrinker('stuck', {
      count: () => 50,
      scan: (n) => {
        log.push(`stuck:${n}`);
        return 0;
      },
    });
    const rest = cache('rest', 100, log);
    reg.register(stuck);
    reg.register(slow.shrinker);
    reg.register(rest.shrinker);
    assert.equal(reg.shrink(12), 12);
    // stuck is asked once and skipped; slow gives 3+3+3+1; rest gives the last 2.
    assert.deepEqual(log, ['stuck:12', 'slow:8', 'slow:7', 'slow:4', 'slow:1', 'rest:2']);
  });

  it('a scan may free more than asked (whole objects); the registry returns what was really freed', () => {
    const reg = new ShrinkerRegistry();
    let left = 3;
    reg.register(new Shrinker('big-objects', { count: () => left * 256, scan: () => (left-- > 0 ? 256 : 0) }));
    assert.equal(reg.shrink(1), 256);
    assert.equal(reg.count(), 512);
  });

  it('shrink(Infinity) empties every shrinker; shrink(0) scans nothing', () => {
    const log: string[] = [];
    const reg = new ShrinkerRegistry();
    const a = cache('a', 300, log);
    const b = cache('b', 7, log);
    reg.register(a.shrinker);
    reg.register(b.shrinker);
    assert.equal(reg.shrink(0), 0);
    assert.deepEqual(log, []);
    assert.equal(reg.shrink(Infinity), 307);
    assert.deepEqual(log, ['a:128', 'a:128', 'a:44', 'b:7']);
    assert.equal(reg.count(), 0);
    assert.equal(reg.shrink(Infinity), 0, 'late: nothing left to free');
  });

  it('rejects a negative or fractional target', () => {
    const reg = new ShrinkerRegistry();
    assert.throws(() => reg.shrink(-1), InvalidArgumentError);
    assert.throws(() => reg.shrink(1.5), InvalidArgumentError);
  });

  it('shrinkPass asks each shrinker for ceil(count / seeks) pages: seeks 1 all, 2 half, 4 a quarter', () => {
    const log: string[] = [];
    const reg = new ShrinkerRegistry();
    const one = cache('one', 10, log, { seeks: 1 });
    const two = cache('two', 9, log, { seeks: 2 });
    const four = cache('four', 400, log, { seeks: 4 });
    reg.register(one.shrinker);
    reg.register(two.shrinker);
    reg.register(four.shrinker);
    assert.equal(reg.shrinkPass(), 10 + 5 + 100);
    assert.deepEqual(log, ['one:10', 'two:5', 'four:100']);
    assert.deepEqual([one.state.pages, two.state.pages, four.state.pages], [0, 4, 300]);
  });

  it('disposing the registration unregisters (idempotently); registering twice is a BugError', () => {
    const log: string[] = [];
    const reg = new ShrinkerRegistry();
    const a = cache('a', 5, log);
    const b = cache('b', 5, log);
    const ra = reg.register(a.shrinker);
    reg.register(b.shrinker);
    assert.throws(() => reg.register(a.shrinker), BugError);
    ra[Symbol.dispose]();
    ra[Symbol.dispose]();
    assert.deepEqual(
      reg.shrinkers.map((s) => s.name),
      ['b'],
    );
    assert.equal(reg.count(), 5);
    assert.equal(reg.shrink(10), 5);
    assert.deepEqual(log, ['b:5']);
    // late: registering again after disposal is allowed and goes to the end.
    reg.register(a.shrinker);
    assert.deepEqual(
      reg.shrinkers.map((s) => s.name),
      ['b', 'a'],
    );
  });

  it('a shrinker unregistered by an earlier scan during a shrink is not scanned', () => {
    const log: string[] = [];
    const reg = new ShrinkerRegistry();
    const b = cache('b', 5, log);
    let rb: Disposable | undefined;
    reg.register(
      new Shrinker('a', {
        count: () => 1,
        scan: () => {
          log.push('a');
          rb?.[Symbol.dispose]();
          return 0;
        },
      }),
    );
    rb = reg.register(b.shrinker);
    assert.equal(reg.shrink(5), 0);
    assert.deepEqual(log, ['a']);
  });

  it('reclaim does not recurse: shrink called from inside a scan frees nothing', () => {
    const reg = new ShrinkerRegistry();
    const inner: number[] = [];
    let pages = 4;
    reg.register(
      new Shrinker('allocating-in-scan', {
        count: () => pages,
        scan: (n) => {
          inner.push(reg.shrink(1), reg.shrinkPass());
          const freed = Math.min(n, pages);
          pages -= freed;
          return freed;
        },
      }),
    );
    assert.equal(reg.shrink(4), 4);
    assert.deepEqual(inner, [0, 0]);
    assert.equal(reg.shrink(0), 0, 'late: the guard is released after the shrink');
  });
});

describe('ShrinkerRegistry under the validator', () => {
  recordMode();

  it('shrink outside a signalling section reports nothing', () => {
    const reg = new ShrinkerRegistry();
    reg.shrink(1);
    reg.shrinkPass();
    assert.deepEqual(seen(), []);
  });

  it('shrink reports mightReclaim: inside a fence signalling section it closes the reclaim -> fence-wait cycle', () => {
    const reg = new ShrinkerRegistry();
    signallingSection(() => reg.shrink(1));
    assert.deepEqual(seen(), [`circular-dependency ${dmaFenceMap.name} -> ${fsReclaim.name}`]);
  });

  it('shrinkPass reports it too', () => {
    const reg = new ShrinkerRegistry();
    signallingSection(() => reg.shrinkPass());
    assert.deepEqual(seen(), [`circular-dependency ${dmaFenceMap.name} -> ${fsReclaim.name}`]);
  });
});
