import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { BugError, DmaBufError, InvalidArgumentError } from '../../src/base/errors.js';
import { VirtualClock, useClock } from '../../src/base/clock.js';
import { DmaFence, seqnoIsLater } from '../../src/fence/dma-fence.js';
import { SW_SYNC_DEFAULT_NAME, SwSyncTimeline, SyncPt } from '../../src/fence/sw-sync.js';
import { mockFence, seededRandom, shuffle, testSeed } from '../helpers/mock-fence.js';

const U32_MAX = 0xffff_ffff;
const INT_MAX = 0x7fff_ffff;

/** Adds a callback to each point that appends its seqno to `log`; asserts the add succeeded. */
function recordSignals(points: readonly SyncPt[], log: number[]): void {
  for (const pt of points)
    assert.equal(
      pt.addCallback((f) => log.push(f.seqno)),
      true,
      `addCallback on pending ${pt.describe()}`,
    );
}

describe('SwSyncTimeline', () => {
  it('sanity: a point signals when the timeline reaches it', () => {
    using timeline = new SwSyncTimeline('sanity');
    const pt = timeline.createFence(1);
    assert.equal(pt.isSignaled(), false);
    timeline.inc();
    assert.equal(pt.isSignaled(), true);
    assert.equal(pt.status, 'signaled');
  });

  it('starts at value 0 with its own context, the default name and no points', () => {
    const a = new SwSyncTimeline();
    const b = new SwSyncTimeline('b');
    assert.equal(a.name, SW_SYNC_DEFAULT_NAME);
    assert.equal(a.name, 'sw_sync');
    assert.equal(a.value, 0);
    assert.equal(a.activePoints, 0);
    assert.equal(a.destroyed, false);
    assert.ok(a.context > 0, 'context 0 belongs to stubs');
    assert.notEqual(a.context, b.context);
    a.destroy();
    b.destroy();
  });

  it('accepts a 31-byte name and rejects 32 bytes or a non-string', () => {
    assert.equal(new SwSyncTimeline('x'.repeat(31)).name.length, 31);
    assert.throws(() => new SwSyncTimeline('x'.repeat(32)), InvalidArgumentError);
    // 16 two-byte characters are 32 bytes of UTF-8: too long for char name[32].
    assert.throws(() => new SwSyncTimeline('é'.repeat(16)), /32 bytes/);
    assert.throws(() => new SwSyncTimeline(42 as unknown as string), InvalidArgumentError);
  });

  it('gives points the sw_sync ops: driver, timeline name, context, always enabled', () => {
    using timeline = new SwSyncTimeline('gfx-queue');
    const pt = timeline.createFence(7);
    assert.ok(pt instanceof DmaFence);
    assert.ok(pt instanceof SyncPt);
    assert.equal(pt.timeline, timeline);
    assert.equal(pt.driverName, 'sw_sync');
    assert.equal(pt.timelineName, 'gfx-queue');
    assert.equal(pt.context, timeline.context);
    assert.equal(pt.seqno, 7);
    assert.equal(pt.isSeqno64, false);
    assert.equal(pt.ops.enableSignaling, undefined, 'no enableSignaling op: points are always enabled');
    assert.match(pt.describe(), new RegExp(`^${timeline.context}:7 gfx-queue sw_sync active$`));
    timeline.inc(7);
    assert.equal(pt.driverName, 'detached-driver', 'late: names detach once signaled');
  });

  it('refuses points made with new instead of createFence', () => {
    using timeline = new SwSyncTimeline();
    assert.throws(() => new SyncPt(timeline, 1), BugError);
    assert.equal(timeline.activePoints, 0);
  });

  it('signals the points of one inc in value order, whatever the creation order', () => {
    using timeline = new SwSyncTimeline();
    const points = [5, 1, 4, 2, 3].map((v) => timeline.createFence(v));
    const log: number[] = [];
    recordSignals(points, log);
    assert.equal(timeline.activePoints, 5);
    timeline.inc(5);
    assert.deepEqual(log, [1, 2, 3, 4, 5]);
    assert.equal(timeline.activePoints, 0);
    assert.equal(timeline.value, 5);
    // Late: callbacks on signaled points are refused and never run.
    assert.equal(
      points[0]!.addCallback(() => log.push(-1)),
      false,
    );
    assert.deepEqual(log, [1, 2, 3, 4, 5]);
  });

  it('signals only the points an inc reaches and leaves the rest active', () => {
    using timeline = new SwSyncTimeline();
    const [p1, p2, p3] = [1, 2, 3].map((v) => timeline.createFence(v));
    timeline.inc(2);
    assert.equal(p1!.status, 'signaled');
    assert.equal(p2!.status, 'signaled');
    assert.equal(p3!.status, 'active');
    assert.equal(timeline.activePoints, 1);
    timeline.inc();
    assert.equal(p3!.status, 'signaled');
  });

  it("runs each point's callbacks before the next point signals, and lets callbacks re-enter", () => {
    using timeline = new SwSyncTimeline();
    const log: string[] = [];
    const p1 = timeline.createFence(1);
    const p2 = timeline.createFence(2);
    const p4 = timeline.createFence(4);
    p1.addCallback(() => {
      log.push(`p1 sees p2 ${p2.signaledFlag ? 'signaled' : 'pending'}`);
      // A point created inside a callback at a reached value signals at once...
      log.push(`reached point ${timeline.createFence(1).status}`);
      // ...and one ahead joins the live set and is picked up in order.
      timeline.createFence(3).addCallback(() => log.push('p3'));
    });
    p2.addCallback(() => {
      log.push('p2');
      timeline.inc(2); // re-entrant: moves on to 4 from inside the walk
    });
    p4.addCallback(() => log.push('p4'));
    timeline.inc(2);
    assert.deepEqual(log, ['p1 sees p2 pending', 'reached point signaled', 'p2', 'p3', 'p4']);
    assert.equal(timeline.value, 4);
    assert.equal(timeline.activePoints, 0);
  });

  it('returns the same object for a value while its point is live, a new one after it signaled', () => {
    using timeline = new SwSyncTimeline();
    const a = timeline.createFence(3);
    assert.equal(timeline.createFence(3), a);
    assert.equal(timeline.activePoints, 1);
    timeline.inc(3);
    // Late: the value is reached, so a fresh point comes back, already signaled.
    const b = timeline.createFence(3);
    assert.notEqual(b, a);
    assert.equal(b.signaledFlag, true);
    assert.notEqual(timeline.createFence(3), b, 'signaled points are never shared');
  });

  it('gives an already signaled point for a reached value, timestamped now', () => {
    const clock = new VirtualClock(1000);
    using _c = useClock(clock);
    using timeline = new SwSyncTimeline();
    timeline.inc(10);
    clock.advance(5);
    for (const v of [0, 5, 10]) {
      const pt = timeline.createFence(v);
      assert.equal(pt.signaledFlag, true, `value ${v} <= 10`);
      assert.equal(pt.status, 'signaled');
      assert.equal(pt.timestamp, 1005);
      assert.equal(
        pt.addCallback(() => assert.fail('must not run')),
        false,
      );
    }
    assert.equal(timeline.createFence(11).signaledFlag, false);
    assert.equal(timeline.activePoints, 1);
  });

  it('treats a value 2^31 or more ahead as behind (the 32-bit rule)', () => {
    using timeline = new SwSyncTimeline();
    timeline.inc(10);
    assert.equal(timeline.createFence(10 + INT_MAX).signaledFlag, false, '2^31-1 ahead is still ahead');
    assert.equal(timeline.createFence(10 + 2 ** 31).signaledFlag, true, '2^31 ahead counts as reached');
  });

  it('inc(0) signals nothing new', () => {
    using timeline = new SwSyncTimeline();
    timeline.inc(4);
    const pt = timeline.createFence(5);
    timeline.inc(0);
    assert.equal(timeline.value, 4);
    assert.equal(pt.signaledFlag, false);
    assert.equal(timeline.activePoints, 1);
    // Late: after the point signals, inc(0) changes nothing either.
    timeline.inc();
    const stamp = pt.timestamp;
    timeline.inc(0);
    assert.equal(timeline.value, 5);
    assert.equal(pt.timestamp, stamp);
  });

  it('signals the right points in order when inc crosses the 32-bit wrap', () => {
    using timeline = new SwSyncTimeline('wrap');
    timeline.inc(0xffff_fff0);
    assert.equal(timeline.value, 0xffff_fff0);
    const values = [10, 0xffff_ffff, 3, 0xffff_fff5, 0];
    const points = values.map((v) => timeline.createFence(v));
    assert.ok(
      points.every((p) => !p.signaledFlag),
      'all five are ahead of 0xfffffff0',
    );
    const log: number[] = [];
    recordSignals(points, log);
    timeline.inc(0x13); // 0xfffffff0 + 0x13 = 0x1_0000_0003 -> 3
    assert.equal(timeline.value, 3);
    assert.deepEqual(log, [0xffff_fff5, 0xffff_ffff, 0, 3]);
    assert.equal(timeline.activePoints, 1);
    assert.equal(timeline.createFence(0xffff_fffa).signaledFlag, true, 'late: behind across the wrap');
    timeline.inc(7);
    assert.deepEqual(log, [0xffff_fff5, 0xffff_ffff, 0, 3, 10]);
  });

  it('advances a big inc in INT_MAX steps like the kernel, so every point up to n ahead signals', () => {
    using timeline = new SwSyncTimeline();
    const near = timeline.createFence(10);
    const far = timeline.createFence(INT_MAX);
    const seen: number[] = [];
    near.addCallback(() => {
      seen.push(timeline.value);
      // Created mid-way at the intermediate value; the remaining steps must still reach it.
      timeline.createFence((timeline.value + 5) >>> 0).addCallback(() => seen.push(timeline.value));
    });
    timeline.inc(U32_MAX);
    // One jump straight to 0xffffffff would leave 10 "ahead" (10 - 0xffffffff = 11 as int32).
    assert.equal(seqnoIsLater(10, U32_MAX, false), true);
    assert.equal(near.status, 'signaled');
    assert.equal(far.status, 'signaled');
    assert.equal(timeline.value, U32_MAX);
    assert.deepEqual(seen, [INT_MAX, 2 * INT_MAX], 'the first step stops at INT_MAX, the second at 2*INT_MAX');
    assert.equal(timeline.activePoints, 0);
  });

  it('inc(2^31) is INT_MAX then 1', () => {
    using timeline = new SwSyncTimeline();
    const values: number[] = [];
    for (const v of [1, INT_MAX]) timeline.createFence(v).addCallback(() => values.push(timeline.value));
    timeline.inc(2 ** 31);
    assert.deepEqual(values, [INT_MAX, INT_MAX]);
    assert.equal(timeline.value, 2 ** 31);
  });

  it('keeps the earliest deadline and reports none as undefined', () => {
    using timeline = new SwSyncTimeline();
    const pt = timeline.createFence(1);
    const other = timeline.createFence(2);
    assert.equal(timeline.getDeadline(pt), undefined, "no deadline set: the kernel's -ENOENT");
    pt.setDeadline(100);
    pt.setDeadline(50);
    pt.setDeadline(70);
    assert.equal(timeline.getDeadline(pt), 50);
    assert.equal(pt.deadline, 50);
    assert.equal(timeline.getDeadline(other), undefined, 'deadlines are per point');
    // A deadline in the past is still a deadline (it means "as soon as possible").
    timeline.createFence(1).setDeadline(-5);
    assert.equal(timeline.getDeadline(pt), -5, 'the deduplicated point is the same object');
  });

  it('ignores setDeadline after signal but still reports the earlier one', () => {
    using timeline = new SwSyncTimeline();
    const pt = timeline.createFence(1);
    const bare = timeline.createFence(2);
    pt.setDeadline(40);
    timeline.inc(2);
    pt.setDeadline(10);
    bare.setDeadline(10);
    assert.equal(timeline.getDeadline(pt), 40);
    assert.equal(timeline.getDeadline(bare), undefined);
  });

  it('rejects getDeadline for fences that are not its points', () => {
    using timeline = new SwSyncTimeline('mine');
    using foreign = new SwSyncTimeline('theirs');
    assert.throws(() => timeline.getDeadline(foreign.createFence(1)), InvalidArgumentError);
    assert.throws(() => timeline.getDeadline(mockFence()), /getDeadline takes a point of this timeline/);
    assert.throws(() => timeline.getDeadline(null as unknown as DmaFence), InvalidArgumentError);
  });

  it('fails pending points with ENOENT on teardown, in value order, and wakes their waiters', async () => {
    const timeline = new SwSyncTimeline('teardown');
    const done = timeline.createFence(1);
    timeline.inc();
    const points = [30, 10, 20].map((v) => timeline.createFence(v));
    const log: number[] = [];
    recordSignals(points, log);
    const waits = points.map((p) => p.wait());
    timeline.destroy();
    assert.deepEqual(log, [10, 20, 30]);
    assert.deepEqual(await Promise.all(waits), [true, true, true]);
    for (const pt of points) {
      assert.equal(pt.status, 'error');
      assert.ok(pt.error instanceof DmaBufError);
      assert.equal(pt.error.code, 'ENOENT');
      assert.equal(pt.pendingCallbacks, 0);
    }
    assert.equal(done.status, 'signaled', 'a point signaled earlier keeps its clean status');
    assert.equal(timeline.activePoints, 0);
    assert.equal(timeline.destroyed, true);
    // Late: a second teardown (destroy or dispose) changes nothing.
    timeline.destroy();
    timeline[Symbol.dispose]();
    assert.deepEqual(log, [10, 20, 30]);
  });

  it('tears down at the end of a using block', () => {
    let pt: SyncPt;
    {
      using timeline = new SwSyncTimeline();
      pt = timeline.createFence(1);
    }
    assert.equal(pt.status, 'error');
    assert.equal(pt.timeline.destroyed, true);
  });

  it('throws BugError for createFence and inc after dispose, naming the timeline', () => {
    const timeline = new SwSyncTimeline('gone');
    const pt = timeline.createFence(1);
    pt.setDeadline(5);
    timeline[Symbol.dispose]();
    assert.throws(
      () => timeline.createFence(2),
      (err: unknown) => err instanceof BugError && /"gone".*createFence after destroy/.test(err.message),
    );
    assert.throws(
      () => timeline.inc(),
      (err: unknown) => err instanceof BugError && /"gone".*inc after destroy/.test(err.message),
    );
    // Reads stay allowed.
    assert.equal(timeline.value, 0);
    assert.equal(timeline.getDeadline(pt), 5);
    assert.match(timeline.describe(), /^gone: 0 \(destroyed\)/);
  });

  it('times out a wait on a pending point with the virtual clock, and wakes one on inc', async () => {
    const clock = new VirtualClock();
    using _c = useClock(clock);
    using timeline = new SwSyncTimeline();
    const pt = timeline.createFence(1);
    assert.equal(await pt.wait({ timeout: 0 }), false, 'timeout 0 polls');
    let result: boolean | undefined;
    void pt.wait({ timeout: 100 }).then((r) => (result = r));
    await clock.tick(99);
    assert.equal(result, undefined);
    await clock.tick(1);
    assert.equal(result, false);
    assert.equal(pt.pendingCallbacks, 0);
    assert.equal(clock.pendingTimers, 0);
    const woken = pt.wait({ timeout: 100 });
    await clock.tick(30);
    timeline.inc();
    assert.equal(await woken, true);
    assert.equal(pt.timestamp, 130);
    assert.equal(clock.pendingTimers, 0);
    // Late: waiting on the signaled point resolves at once.
    assert.equal(await pt.wait({ timeout: 0 }), true);
  });

  it('signals 10,000 points created in random order strictly in value order, one per inc', () => {
    const seed = testSeed();
    const random = seededRandom(seed);
    const count = 10_000;
    using timeline = new SwSyncTimeline('stress');
    // Start at a random place so the run often crosses the 32-bit wrap.
    const start = Math.floor(random() * 2 ** 32);
    timeline.inc(start);
    const offsets = shuffle(
      Array.from({ length: count }, (_, i) => i + 1),
      random,
    );
    const log: number[] = [];
    let bad = '';
    for (const off of offsets) {
      const pt = timeline.createFence((start + off) >>> 0);
      pt.addCallback((f) => {
        if (f.seqno !== timeline.value && bad === '') bad = `point ${f.seqno} signaled at value ${timeline.value}`;
        log.push((f.seqno - start) >>> 0);
      });
    }
    assert.equal(timeline.activePoints, count, `seed ${seed}`);
    for (let i = 1; i <= count; i++) {
      timeline.inc();
      if (log.length !== i) assert.fail(`seed ${seed}: after inc #${i} ${log.length} points had signaled`);
    }
    assert.equal(bad, '', `seed ${seed}: ${bad}`);
    for (let i = 0; i < count; i++) {
      if (log[i] !== i + 1) assert.fail(`seed ${seed}: signal #${i} was offset ${log[i]}, expected ${i + 1}`);
    }
    assert.equal(timeline.activePoints, 0, `seed ${seed}`);
  });

  it('rejects values and increments outside u32 and leaves the timeline unchanged', () => {
    using timeline = new SwSyncTimeline();
    const bad: unknown[] = [-1, 0.5, 2 ** 32, NaN, Infinity, '1', 1n, undefined, null];
    for (const v of bad) {
      assert.throws(() => timeline.createFence(v as number), InvalidArgumentError, `createFence(${String(v)})`);
      if (v !== undefined) assert.throws(() => timeline.inc(v as number), InvalidArgumentError, `inc(${String(v)})`);
    }
    assert.equal(timeline.value, 0);
    assert.equal(timeline.activePoints, 0);
    assert.equal(timeline.createFence(U32_MAX).signaledFlag, true, '0xffffffff is -1 as int32: behind 0');
    timeline.inc(); // undefined means 1
    assert.equal(timeline.value, 1);
  });

  it('lets a point be signaled directly, dropping it from the live set', () => {
    using timeline = new SwSyncTimeline();
    const a = timeline.createFence(2);
    const log: number[] = [];
    a.addCallback(() => log.push(timeline.activePoints));
    assert.equal(a.signal(), true);
    assert.deepEqual(log, [0], 'the point left the live set before its callbacks ran');
    const b = timeline.createFence(2);
    assert.notEqual(b, a);
    assert.equal(b.signaledFlag, false);
    timeline.inc(2);
    assert.equal(b.status, 'signaled');
    assert.deepEqual(log, [0], 'the stale heap entry of a does not signal it again');
    assert.equal(timeline.activePoints, 0);
  });

  it('describes itself like sync_debug: name: value, then points in value order', () => {
    const clock = new VirtualClock(2000);
    using _c = useClock(clock);
    const timeline = new SwSyncTimeline('dump');
    timeline.inc(U32_MAX - 1);
    for (const v of [1, U32_MAX, 0]) timeline.createFence(v);
    assert.equal(
      timeline.describe(),
      ['dump: 4294967294', '  pt 4294967295: active', '  pt 0: active', '  pt 1: active'].join('\n'),
    );
    timeline.inc();
    assert.equal(timeline.describe(), ['dump: 4294967295', '  pt 0: active', '  pt 1: active'].join('\n'));
    clock.advance(5);
    timeline.destroy();
    assert.equal(
      timeline.describe(),
      ['dump: 4294967295 (destroyed)', '  pt 0: error ENOENT @2005ms', '  pt 1: error ENOENT @2005ms'].join('\n'),
    );
    assert.match(
      String(timeline),
      /SwSyncTimeline\(sw_sync timeline "dump" \(context \d+\), value 4294967295, 0 active\)/,
    );
  });

  it('matches a simple model under random createFence/inc sequences (property)', () => {
    type Op = { kind: 'create'; offset: number } | { kind: 'inc'; n: number };
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.record({
        kind: fc.constant('create' as const),
        offset: fc.oneof(fc.integer({ min: -20, max: 40 }), fc.integer({ min: 0, max: U32_MAX })),
      }),
      fc.record({
        kind: fc.constant('inc' as const),
        n: fc.oneof(
          fc.integer({ min: 0, max: 8 }),
          fc.constantFrom(INT_MAX, 2 ** 31, U32_MAX),
          fc.integer({ min: 0, max: U32_MAX }),
        ),
      }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 0, max: U32_MAX }), fc.array(op, { maxLength: 60 }), (start, ops) => {
        using timeline = new SwSyncTimeline('model');
        timeline.inc(start);
        // The model: a counter and a set of live values; inc reaches whatever is within n ahead.
        let value = start;
        const live = new Set<number>();
        const log: number[] = [];
        for (const o of ops) {
          if (o.kind === 'create') {
            const v = (value + o.offset) >>> 0;
            const pt = timeline.createFence(v);
            const ahead = seqnoIsLater(v, value, false);
            assert.equal(pt.signaledFlag, !ahead, `create ${v} at value ${value}`);
            if (ahead && !live.has(v)) {
              live.add(v);
              pt.addCallback((f) => log.push(f.seqno));
            }
          } else {
            const expected = [...live]
              .filter((v) => (v - value) >>> 0 <= o.n)
              .sort((a, b) => ((a - value) >>> 0) - ((b - value) >>> 0));
            for (const v of expected) live.delete(v);
            log.length = 0;
            timeline.inc(o.n);
            value = (value + o.n) >>> 0;
            assert.deepEqual(log, expected, `inc ${o.n}`);
            assert.equal(timeline.value, value);
          }
          assert.equal(timeline.activePoints, live.size);
        }
      }),
      { numRuns: 200 },
    );
  });
});
