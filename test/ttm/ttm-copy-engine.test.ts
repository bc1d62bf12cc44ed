/**
 * Executable specification of src/ttm/ttm-copy-engine.ts: the in-order copy ring pipelined TTM
 * moves run on. Bytes land only when a job's fence signals; jobs wait for their dependencies and
 * for every earlier job; a failed dependency passes its error on while the copy still happens;
 * a null source clears; with bytesPerMs a job takes size / bytesPerMs milliseconds of clock time;
 * idle() and disposal wait for the ring to empty.
 *
 * Every case runs on a VirtualClock: the engine's timers fire only when the test ticks.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { VirtualClock, useClock, type Clock } from '../../src/base/clock.js';
import { BugError, DmaBufError, InvalidArgumentError } from '../../src/base/errors.js';
import { DmaFence } from '../../src/fence/dma-fence.js';
import { TtmCopyEngine } from '../../src/ttm/ttm-copy-engine.js';
import { mightReclaim } from '../../src/node.js';
import { watch } from '../helpers/completion.js';
import { recordMode, seen } from '../helpers/lockdep-mode.js';
import { mockFence } from '../helpers/mock-fence.js';

/** `size` bytes counting up from `seed` (mod 256), so a copy is recognisable. */
function pattern(size: number, seed = 1): Uint8Array {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = (seed + i) & 0xff;
  return bytes;
}

describe('TtmCopyEngine', () => {
  it(
    'sanity: the bytes land in dst when the fence signals, not before; ' + 'fences are ttm/<name> seqnos 1, 2, ...',
    async () => {
      const clock = new VirtualClock();
      using _c = useClock(clock);
      const engine = new TtmCopyEngine({ name: 'sdma0' });
      const src = pattern(4096);
      const dst = new Uint8Array(4096);
      const fence = engine.copy(
        () => src,
        () => dst,
      );
      assert.equal(fence.context, engine.context);
      assert.equal(fence.seqno, 1);
      assert.equal(fence.driverName, 'ttm');
      assert.equal(fence.timelineName, 'sdma0');
      assert.equal(fence.signaledFlag, false, 'never signals inside copy()');
      assert.equal(dst[5], 0);
      assert.equal(engine.pendingJobs, 1);
      fence.addCallback(() => assert.deepEqual(dst, src, 'the copy is complete when the callbacks run'));
      await clock.tick(0);
      assert.equal(fence.status, 'signaled');
      assert.deepEqual(dst, src);
      assert.equal(engine.bytesCopied, 4096);
      assert.equal(engine.pendingJobs, 0);
      assert.equal(engine.copy(null, () => dst).seqno, 2);
      await clock.tick(0);
      await engine[Symbol.asyncDispose]();
      assert.equal(clock.pendingTimers, 0);
    },
  );

  it('resolves src and dst when the job runs, not in copy(): the caller may set the memory up afterwards', async () => {
    const clock = new VirtualClock();
    using _c = useClock(clock);
    const engine = new TtmCopyEngine();
    let dst: Uint8Array | null = null;
    let calls = 0;
    const fence = engine.copy(
      () => (calls++, pattern(64, 9)),
      () => (calls++, dst!),
    );
    assert.equal(calls, 0);
    dst = new Uint8Array(64);
    await clock.tick(0);
    assert.equal(calls, 2, 'each view function is called once');
    assert.equal(fence.status, 'signaled');
    assert.deepEqual(dst, pattern(64, 9));
  });

  it('a null source clears the destination to zeros', async () => {
    const clock = new VirtualClock();
    using _c = useClock(clock);
    const engine = new TtmCopyEngine();
    const dst = pattern(8192, 3);
    const fence = engine.copy(null, () => dst);
    assert.equal(dst[0], 3);
    await clock.tick(0);
    assert.equal(fence.status, 'signaled');
    assert.ok(
      dst.every((b) => b === 0),
      'every byte is zero',
    );
    assert.equal(engine.bytesCopied, 8192);
  });

  it('overlapping views of one buffer copy correctly (a move inside one arena)', async () => {
    const clock = new VirtualClock();
    using _c = useClock(clock);
    const engine = new TtmCopyEngine();
    const arena = pattern(12);
    const expected = arena.slice(0, 8);
    engine.copy(
      () => arena.subarray(0, 8),
      () => arena.subarray(4, 12),
    );
    await clock.tick(0);
    assert.deepEqual(arena.subarray(4, 12), expected);
  });

  describe('ordering and dependencies', () => {
    it('a job waits for every dependency; it runs on the timer after the last one signals', async () => {
      const clock = new VirtualClock();
      using _c = useClock(clock);
      const engine = new TtmCopyEngine();
      const a = mockFence();
      const b = mockFence();
      const dst = new Uint8Array(16);
      const fence = engine.copy(
        () => pattern(16),
        () => dst,
        [a, b],
      );
      await clock.tick(5);
      assert.equal(fence.signaledFlag, false);
      a.signal();
      await clock.tick(5);
      assert.equal(fence.signaledFlag, false, 'b is still pending');
      assert.equal(dst[0], 0);
      b.signal();
      assert.equal(fence.signaledFlag, false, 'not inside the dependency signal either');
      await clock.tick(0);
      assert.equal(fence.status, 'signaled');
      assert.deepEqual(dst, pattern(16));
    });

    it('late: dependencies already signaled at copy() time do not hold the job', async () => {
      const clock = new VirtualClock();
      using _c = useClock(clock);
      const engine = new TtmCopyEngine();
      const done = mockFence();
      done.signal();
      const fence = engine.copy(null, () => new Uint8Array(4), [done, DmaFence.getStub()]);
      await clock.tick(0);
      assert.equal(fence.status, 'signaled');
    });

    it('in order: a later job whose dependencies are ready first still waits for the earlier job', async () => {
      const clock = new VirtualClock();
      using _c = useClock(clock);
      const engine = new TtmCopyEngine();
      const blocker = mockFence();
      const order: number[] = [];
      const first = engine.copy(null, () => new Uint8Array(4), [blocker]);
      const second = engine.copy(null, () => new Uint8Array(4));
      first.addCallback(() => order.push(1));
      second.addCallback(() => order.push(2));
      await clock.tick(10);
      assert.equal(second.signaledFlag, false, 'the ring is in order');
      assert.equal(engine.pendingJobs, 2);
      blocker.signal();
      await clock.tick(0);
      assert.deepEqual(order, [1, 2]);
    });

    it('chained moves: a job may depend on an earlier job of the same engine, and the data flows through', async () => {
      const clock = new VirtualClock();
      using _c = useClock(clock);
      const engine = new TtmCopyEngine({ bytesPerMs: 1024 });
      const vram = pattern(4096, 5);
      const tt = new Uint8Array(4096);
      const back = new Uint8Array(4096);
      const evict = engine.copy(
        () => vram,
        () => tt,
      );
      const restore = engine.copy(
        () => tt,
        () => back,
        [evict],
      );
      await clock.tick(8);
      assert.equal(restore.status, 'signaled');
      assert.deepEqual(back, vram);
      assert.equal(evict.timestamp, 4);
      assert.equal(restore.timestamp, 8);
    });

    it('a fence callback may queue the next job (pipelining); it runs after, in order', async () => {
      const clock = new VirtualClock();
      using _c = useClock(clock);
      const engine = new TtmCopyEngine();
      const dst = new Uint8Array(4);
      let next: DmaFence | null = null;
      const first = engine.copy(
        () => Uint8Array.of(1, 2, 3, 4),
        () => dst,
      );
      first.addCallback(() => {
        next = engine.copy(null, () => dst);
      });
      await clock.tick(0);
      assert.ok(next !== null, 'the callback queued a job');
      await clock.tick(0);
      assert.equal((next as DmaFence).status, 'signaled');
      assert.deepEqual(dst, new Uint8Array(4));
      assert.ok((next as DmaFence).seqno > first.seqno, 'a later seqno');
    });
  });

  describe('errors', () => {
    it('a dependency that failed gives its error object to the job; the copy is still done', async () => {
      const clock = new VirtualClock();
      using _c = useClock(clock);
      const engine = new TtmCopyEngine();
      const dep = mockFence();
      const src = pattern(32);
      const dst = new Uint8Array(32);
      const fence = engine.copy(
        () => src,
        () => dst,
        [mockFence(), dep].map((f, i) => (i === 0 ? DmaFence.getStub() : f)),
      );
      dep.setError('EIO');
      dep.signal();
      await clock.tick(0);
      assert.equal(fence.status, 'error');
      assert.equal(fence.error, dep.error, 'the same error object');
      assert.ok(fence.error instanceof DmaBufError && fence.error.code === 'EIO', `error: ${String(fence.error)}`);
      assert.deepEqual(dst, src, 'data must not be lost');
    });

    it('late: a dependency that had already failed before copy() propagates too; the next job is clean', async () => {
      const clock = new VirtualClock();
      using _c = useClock(clock);
      const engine = new TtmCopyEngine();
      const dep = mockFence();
      const boom = new Error('gpu reset');
      dep.setError(boom);
      dep.signal();
      const dst = new Uint8Array(8);
      const failed = engine.copy(
        () => pattern(8),
        () => dst,
        [dep],
      );
      const clean = engine.copy(null, () => new Uint8Array(8));
      await clock.tick(0);
      assert.equal(failed.error, boom);
      assert.deepEqual(dst, pattern(8));
      assert.equal(clean.status, 'signaled', 'errors follow dependencies, not ring order');
    });

    it('the first failed dependency in the order given wins', async () => {
      const clock = new VirtualClock();
      using _c = useClock(clock);
      const engine = new TtmCopyEngine();
      const a = mockFence();
      const b = mockFence();
      const fence = engine.copy(null, () => new Uint8Array(4), [a, b]);
      b.setError('ENOMEM');
      b.signal();
      a.setError('EIO');
      a.signal();
      await clock.tick(0);
      assert.equal(fence.error, a.error);
    });

    it(
      'mismatched sizes or a throwing view function fail that job (fence error, nothing copied) ' +
        'and the ring goes on',
      async () => {
        const clock = new VirtualClock();
        using _c = useClock(clock);
        const engine = new TtmCopyEngine({ bytesPerMs: 1024 });
        const dst = new Uint8Array(16);
        const mismatch = engine.copy(
          () => pattern(32),
          () => dst,
        );
        const thrower = engine.copy(null, () => {
          throw new RangeError('unmapped');
        });
        const notAView = engine.copy(null, () => [0, 0] as unknown as Uint8Array);
        const ok = engine.copy(
          () => pattern(16),
          () => dst,
        );
        await clock.tick(1);
        assert.ok(
          mismatch.error instanceof BugError && /32 bytes into a 16-byte destination/.test(mismatch.error.message),
          String(mismatch.error),
        );
        assert.deepEqual(dst, pattern(16), 'only the last job wrote');
        assert.ok(thrower.error instanceof RangeError, String(thrower.error));
        assert.ok(notAView.error instanceof InvalidArgumentError, String(notAView.error));
        assert.equal(ok.status, 'signaled');
        assert.equal(engine.bytesCopied, 16, 'failed jobs copy nothing');
      },
    );

    it('bad arguments throw synchronously and queue nothing', () => {
      const engine = new TtmCopyEngine();
      assert.throws(() => engine.copy(null, 'dst' as never), InvalidArgumentError);
      assert.throws(() => engine.copy(new Uint8Array(4) as never, () => new Uint8Array(4)), InvalidArgumentError);
      assert.throws(
        () => engine.copy(null, () => new Uint8Array(4), [mockFence(), 'fence' as never]),
        InvalidArgumentError,
      );
      assert.equal(engine.pendingJobs, 0);
      for (const bad of [0, -1, Number.NaN, '1024']) {
        assert.throws(
          () => new TtmCopyEngine({ bytesPerMs: bad as number }),
          (e: unknown) => e instanceof InvalidArgumentError && e.message.includes('bytesPerMs'),
          `bytesPerMs ${String(bad)}`,
        );
      }
    });
  });

  describe('timing with bytesPerMs', () => {
    it('a job takes size / bytesPerMs ms of clock time; the fence timestamp is its end', async () => {
      const clock = new VirtualClock(100);
      using _c = useClock(clock);
      const engine = new TtmCopyEngine({ bytesPerMs: 1024 });
      const dst = new Uint8Array(4096);
      const fence = engine.copy(
        () => pattern(4096),
        () => dst,
      );
      await clock.tick(3.5);
      assert.equal(fence.signaledFlag, false);
      assert.equal(dst[1], 0, 'no bytes before the end');
      await clock.tick(0.5);
      assert.equal(fence.status, 'signaled');
      assert.equal(fence.timestamp, 104);
      assert.deepEqual(dst, pattern(4096));
    });

    it('jobs run back to back, and a job waiting for a dependency starts when it signals', async () => {
      const clock = new VirtualClock();
      using _c = useClock(clock);
      const engine = new TtmCopyEngine({ bytesPerMs: 1024 });
      const later = mockFence();
      const a = engine.copy(null, () => new Uint8Array(2048)); // 0 .. 2
      const b = engine.copy(null, () => new Uint8Array(4096)); // 2 .. 6
      const c = engine.copy(null, () => new Uint8Array(1024), [later]); // ready at 10: 10 .. 11
      const d = engine.copy(null, () => new Uint8Array(1024)); // 11 .. 12
      await clock.tick(10);
      assert.deepEqual([a.timestamp, b.timestamp, c.timestamp], [2, 6, undefined]);
      later.signal();
      await clock.tick(1);
      assert.equal(c.timestamp, 11);
      assert.equal(d.signaledFlag, false);
      await clock.tick(1);
      assert.equal(d.timestamp, 12);
      assert.equal(clock.pendingTimers, 0, 'idle: no timer armed');
    });

    it('a timer that fires late completes every job that has ended by then, in one batch', () => {
      // A clock whose timers fire only when told, at whatever time the test says: a busy event loop.
      let now = 0;
      const timers: { due: number; fn: () => void }[] = [];
      let armed = 0;
      const late: Clock = {
        now: () => now,
        setTimer(delay, fn) {
          armed++;
          const timer = { due: now + delay, fn };
          timers.push(timer);
          return timer;
        },
        clearTimer(handle) {
          const i = timers.indexOf(handle as (typeof timers)[number]);
          if (i >= 0) timers.splice(i, 1);
        },
      };
      /** Moves time to `t`, then fires the timers due by then (ones armed meanwhile included). */
      const fireAt = (t: number): void => {
        now = t;
        for (let i = timers.findIndex((x) => x.due <= t); i >= 0; i = timers.findIndex((x) => x.due <= t)) {
          timers.splice(i, 1)[0]!.fn();
        }
      };
      using _c = useClock(late);
      const engine = new TtmCopyEngine({ bytesPerMs: 1000 });
      const fences: DmaFence[] = [];
      for (let i = 0; i < 10; i++) fences.push(engine.copy(null, () => new Uint8Array(1000)));
      assert.equal(armed, 1, 'one dispatch timer for ten jobs');
      fireAt(0); // the first job starts at 0 and ends at 1
      assert.equal(armed, 2);
      fireAt(25); // 24 ms late: all ten have ended by now
      assert.deepEqual(
        fences.map((f) => f.timestamp),
        [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
        'each job keeps its modelled end as timestamp',
      );
      assert.equal(armed, 2, 'no timer per job');
      assert.equal(timers.length, 0);
      assert.equal(engine.bytesCopied, 10_000);
    });
  });

  describe('without bytesPerMs', () => {
    it('every ready job completes on the next timer tick, regardless of size, with a single timer', async () => {
      const clock = new VirtualClock();
      using _c = useClock(clock);
      const engine = new TtmCopyEngine();
      const fences: DmaFence[] = [];
      for (let i = 0; i < 100; i++) fences.push(engine.copy(null, () => new Uint8Array(i === 50 ? 1 << 20 : 64)));
      assert.equal(clock.pendingTimers, 1, 'one timer for the whole batch');
      await clock.tick(0);
      assert.ok(
        fences.every((f) => f.status === 'signaled'),
        'all 100 signaled',
      );
      assert.equal(engine.bytesCopied, 99 * 64 + (1 << 20));
    });

    it('10,000 jobs, each depending on the one before by fence, finish in one tick and in seqno order', async () => {
      const clock = new VirtualClock();
      using _c = useClock(clock);
      const engine = new TtmCopyEngine();
      const started = performance.now();
      let last: DmaFence | null = null;
      let lastSeqno = 0;
      let inOrder = true;
      for (let i = 0; i < 10_000; i++) {
        const fence: DmaFence = engine.copy(null, () => new Uint8Array(16), last === null ? undefined : [last]);
        fence.addCallback((f) => {
          inOrder &&= f.seqno === lastSeqno + 1;
          lastSeqno = f.seqno;
        });
        last = fence;
      }
      await clock.tick(0);
      assert.equal(engine.pendingJobs, 0);
      assert.equal(lastSeqno, 10_000);
      assert.ok(inOrder, 'fences signaled in seqno order');
      const elapsed = performance.now() - started;
      assert.ok(elapsed < 2_000, `10,000 jobs took ${elapsed.toFixed(0)} ms`);
    });
  });

  describe('idle and disposal', () => {
    it('idle() resolves once every job has signaled; late: at once on an idle engine', async () => {
      const clock = new VirtualClock();
      using _c = useClock(clock);
      const engine = new TtmCopyEngine({ bytesPerMs: 100 });
      const dep = mockFence();
      engine.copy(null, () => new Uint8Array(100));
      engine.copy(null, () => new Uint8Array(100), [dep]);
      const idle = watch(engine.idle());
      await clock.tick(5);
      assert.equal(idle().state, 'pending');
      assert.equal(engine.pendingJobs, 1);
      dep.signal();
      await clock.tick(1);
      assert.equal(idle().state, 'fulfilled');
      const again = watch(engine.idle());
      await Promise.resolve();
      assert.equal(again().state, 'fulfilled');
    });

    it('disposal waits for the ring to empty (jobs queued meanwhile included), then copy() is a BugError', async () => {
      const clock = new VirtualClock();
      using _c = useClock(clock);
      const engine = new TtmCopyEngine({ name: 'closing' });
      const dep = mockFence();
      const first = engine.copy(null, () => new Uint8Array(4), [dep]);
      const closing = watch(engine[Symbol.asyncDispose]());
      const meanwhile = engine.copy(null, () => new Uint8Array(4));
      await clock.tick(1);
      assert.equal(closing().state, 'pending');
      dep.signal();
      await clock.tick(0);
      assert.equal(closing().state, 'fulfilled');
      assert.equal(first.status, 'signaled');
      assert.equal(meanwhile.status, 'signaled');
      assert.throws(
        () => engine.copy(null, () => new Uint8Array(4)),
        (e: unknown) => e instanceof BugError && /"closing" is disposed/.test(e.message),
      );
      await engine[Symbol.asyncDispose](); // idempotent
      assert.equal(clock.pendingTimers, 0);
    });

    it('await using disposes at the end of the block, after the copies landed', async () => {
      const clock = new VirtualClock();
      using _c = useClock(clock);
      const dst = new Uint8Array(8);
      const block = (async (): Promise<void> => {
        await using engine = new TtmCopyEngine();
        engine.copy(
          () => pattern(8),
          () => dst,
        );
      })();
      await clock.tick(0);
      await block;
      assert.deepEqual(dst, pattern(8));
    });
  });
});

describe('TtmCopyEngine.idle with a signal (issue 10)', () => {
  it(
    'an abort rejects idle() with the reason and leaves no waiter; ' + 'the jobs go on and a later idle() resolves',
    async () => {
      const clock = new VirtualClock();
      using _clock = useClock(clock);
      await using engine = new TtmCopyEngine({ name: 'abortable' });
      const dep = mockFence();
      const fence = engine.copy(null, () => new Uint8Array(16), [dep]);
      const controller = new AbortController();
      const reason = new Error('stop waiting');
      const idle = watch(engine.idle({ signal: controller.signal }));
      controller.abort(reason);
      await clock.tick(0);
      const state = idle();
      assert.ok(
        state.state === 'rejected' && state.reason === reason,
        `idle() must reject with the reason, got ${state.state}`,
      );
      dep.signal();
      await clock.runAll();
      await engine.idle();
      assert.equal(fence.signaledFlag, true, 'the job was not cancelled by the abort');
      await assert.rejects(engine.idle({ signal: {} as AbortSignal }), InvalidArgumentError);
    },
  );
});

describe('TtmCopyEngine under the validator', () => {
  recordMode();

  it('src and dst run in a fence signalling section: reclaiming there is reported', async () => {
    const clock = new VirtualClock();
    using _c = useClock(clock);
    const engine = new TtmCopyEngine();
    const fence = engine.copy(null, () => {
      mightReclaim(); // allocating on the way to a fence signal: the kernel forbids it
      return new Uint8Array(4);
    });
    await clock.tick(0);
    assert.equal(fence.status, 'signaled');
    assert.equal(seen().length, 1, seen().join('; '));
    assert.match(seen()[0]!, /dma_fence_map -> fs_reclaim/);
  });
});
