import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { VirtualClock, useClock } from '../../src/base/clock.js';
import { BugError, InvalidArgumentError } from '../../src/base/errors.js';
import { DmaFence, fenceContextAlloc, type DmaFenceOps } from '../../src/fence/dma-fence.js';
import { DmaFenceArray } from '../../src/fence/dma-fence-array.js';
import { DmaFenceChain } from '../../src/fence/dma-fence-chain.js';
import { SYNC_FILE_NAME_MAX, SyncFile } from '../../src/fence/sync-file.js';
import { mockFence } from '../helpers/mock-fence.js';

function gpuFence(
  timeline: string,
  context = fenceContextAlloc(),
  seqno = 1,
  extra: Partial<DmaFenceOps> = {},
): DmaFence {
  return new DmaFence({ getDriverName: () => 'gpu', getTimelineName: () => timeline, ...extra }, context, seqno);
}

describe('SyncFile', () => {
  it('sanity: wraps a fence and hands the same fence back', () => {
    const f = mockFence();
    using file = new SyncFile(f);
    assert.equal(file.fence, f);
    assert.equal(file.poll(), false);
    f.signal();
    assert.equal(file.poll(), true);
  });

  describe('names', () => {
    it('derives driver-timeline<context>-<seqno> from the fence when none is given', () => {
      const f = gpuFence('ring0', fenceContextAlloc(), 42);
      using file = new SyncFile(f);
      assert.equal(file.name, `gpu-ring0${f.context}-42`);
    });

    it('late: the derived name follows the fence, which reports detached names once signaled', () => {
      const f = gpuFence('ring0');
      using file = new SyncFile(f);
      f.signal();
      assert.equal(file.name, `detached-driver-signaled-timeline${f.context}-1`);
    });

    it('keeps a user name as given; an empty name means "derive one", as in the kernel', () => {
      const f = gpuFence('ring0');
      using named = new SyncFile(f, 'frame 7');
      using unnamed = new SyncFile(f, '');
      f.signal();
      assert.equal(named.name, 'frame 7');
      assert.equal(unnamed.name, `detached-driver-signaled-timeline${f.context}-1`);
    });

    it('accepts up to 31 bytes of UTF-8 and rejects longer names with InvalidArgumentError', () => {
      const f = mockFence();
      assert.equal(SYNC_FILE_NAME_MAX, 31);
      assert.equal(new SyncFile(f, 'x'.repeat(31)).name.length, 31);
      assert.throws(() => new SyncFile(f, 'x'.repeat(32)), InvalidArgumentError);
      // 'é' is two bytes: 15 of them plus one ASCII byte fit, 16 do not.
      assert.equal(new SyncFile(f, `${'é'.repeat(15)}x`).name, `${'é'.repeat(15)}x`);
      assert.throws(() => new SyncFile(f, 'é'.repeat(16)), /32 bytes of UTF-8; at most 31 fit/);
      // An astral character is four bytes.
      assert.throws(() => new SyncFile(f, '🙂'.repeat(8)), /32 bytes/);
    });

    it('rejects names that are not strings or contain NUL', () => {
      const f = mockFence();
      assert.throws(() => new SyncFile(f, 7 as unknown as string), /name must be a string/);
      assert.throws(() => new SyncFile(f, 'a\0b'), /NUL/);
    });
  });

  describe('merge', () => {
    it('holds the flattened pending work of both files, in ascending context order', () => {
      const x = gpuFence('a');
      const y = gpuFence('b');
      const z = gpuFence('c');
      using a = new SyncFile(new DmaFenceArray([z, x], fenceContextAlloc(), 1));
      using b = new SyncFile(y);
      using merged = SyncFile.merge('both', a, b);
      assert.equal(merged.name, 'both');
      const array = DmaFenceArray.toArray(merged.fence);
      assert.ok(array);
      assert.deepEqual(array.fences, [x, y, z]);
      assert.equal(a.fence.isContainer, true, 'inputs unchanged');
      assert.equal(b.fence, y);
    });

    it('gives the single pending fence itself when the rest has signaled', () => {
      const pending = mockFence();
      const done = mockFence();
      done.signal();
      using merged = SyncFile.merge('one', new SyncFile(done), new SyncFile(pending));
      assert.equal(merged.fence, pending);
    });

    it('merging a file with itself keeps one copy of the fence', () => {
      const f = mockFence();
      using file = new SyncFile(f);
      using merged = SyncFile.merge('self', file, file);
      assert.equal(merged.fence, f);
    });

    it('late: merging signaled files gives a signaled stub stamped with the latest signal time', () => {
      using _c = useClock(new VirtualClock());
      const a = mockFence();
      const b = mockFence();
      a.signal(30);
      b.signal(20);
      using merged = SyncFile.merge('done', new SyncFile(a), new SyncFile(b));
      assert.equal(merged.fence.signaledFlag, true);
      assert.equal(merged.fence.timestamp, 30);
      assert.equal(merged.poll(), true);
    });

    it('rejects bad names, non-files and disposed files', () => {
      using a = new SyncFile(mockFence());
      assert.throws(() => SyncFile.merge('x'.repeat(40), a, a), InvalidArgumentError);
      assert.throws(() => SyncFile.merge('m', a, mockFence() as unknown as SyncFile), /b must be a SyncFile/);
      const gone = new SyncFile(mockFence());
      gone[Symbol.dispose]();
      assert.throws(() => SyncFile.merge('m', gone, a), BugError);
    });
  });

  describe('info', () => {
    it('reports every leaf with names, status, error and timestamp', () => {
      using _c = useClock(new VirtualClock(100));
      const ok = gpuFence('ring0');
      const bad = gpuFence('ring1');
      const busy = gpuFence('ring2');
      ok.signal(110);
      bad.setError('EIO');
      bad.signal(120);
      using file = new SyncFile(new DmaFenceArray([ok, bad, busy], fenceContextAlloc(), 1), 'job');
      const info = file.info();
      assert.equal(info.name, 'job');
      assert.deepEqual(info.fences, [
        { name: 'signaled-timeline', driverName: 'detached-driver', status: 'signaled', timestamp: 110 },
        { name: 'signaled-timeline', driverName: 'detached-driver', status: 'error', error: bad.error, timestamp: 120 },
        { name: 'ring2', driverName: 'gpu', status: 'active' },
      ]);
      assert.equal('timestamp' in info.fences[2]!, false, 'no timestamp before signal');
    });

    it('combined status: signaled only when every leaf is, else the first active or failed leaf wins', () => {
      const make = (...states: ('signaled' | 'error' | 'active')[]): SyncFile => {
        const leaves = states.map((state) => {
          const f = mockFence();
          if (state === 'error') f.setError('EIO');
          if (state !== 'active') f.signal();
          return f;
        });
        return new SyncFile(leaves.length === 1 ? leaves[0]! : new DmaFenceArray(leaves, fenceContextAlloc(), 1));
      };
      assert.equal(make('signaled', 'signaled').info().status, 'signaled');
      assert.equal(make('signaled', 'active', 'error').info().status, 'active');
      assert.equal(make('signaled', 'error', 'active').info().status, 'error');
      assert.equal(make('error', 'signaled').info().status, 'error');
      assert.equal(make('active').info().status, 'active');
    });

    it("walks chains: each point's payload, arrays expanded, signaled older points left out", () => {
      const a = gpuFence('a');
      const b = gpuFence('b');
      const c = gpuFence('c');
      const old = gpuFence('old');
      const p1 = new DmaFenceChain(null, old, 1);
      const p2 = new DmaFenceChain(p1, new DmaFenceArray([a, b], fenceContextAlloc(), 1), 2);
      const p3 = new DmaFenceChain(p2, c, 3);
      old.signal();
      using file = new SyncFile(p3);
      assert.deepEqual(
        file.info().fences.map((f) => f.name),
        ['c', 'a', 'b'],
      );
    });

    it("reads a leaf's names before polling its status, so a leaf found done by the poll keeps live names", () => {
      let done = false;
      const polled = gpuFence('lazy', fenceContextAlloc(), 1, { signaled: () => done });
      using file = new SyncFile(polled);
      done = true;
      const [leaf] = file.info().fences;
      assert.equal(leaf?.status, 'signaled');
      assert.equal(leaf?.name, 'lazy');
      assert.equal(leaf?.driverName, 'gpu');
      assert.equal(typeof leaf?.timestamp, 'number');
    });

    it('status looks at the fence itself: a signal-on-any array can be signaled while a leaf is pending', () => {
      const [a, b] = [mockFence(), mockFence()];
      const any = new DmaFenceArray([a, b], fenceContextAlloc(), 1, { signalOnAny: true });
      using file = new SyncFile(any);
      any.enableSwSignaling();
      a.signal();
      assert.equal(file.status, 'signaled');
      assert.equal(file.info().status, 'active');
    });
  });

  describe('deadlines', () => {
    it('forwards a deadline to every fence inside a merged file', () => {
      const logs: number[][] = [[], []];
      const leaves = logs.map((log) =>
        gpuFence('d', fenceContextAlloc(), 1, { setDeadline: (_f, d) => void log.push(d) }),
      );
      using merged = SyncFile.merge('m', new SyncFile(leaves[0]!), new SyncFile(leaves[1]!));
      merged.setDeadline(5);
      assert.deepEqual(logs, [[5], [5]]);
    });

    it('late: a signaled fence gets no deadline', () => {
      const log: number[] = [];
      const f = gpuFence('d', fenceContextAlloc(), 1, { setDeadline: (_f, d) => void log.push(d) });
      using file = new SyncFile(f);
      f.signal();
      file.setDeadline(5);
      assert.deepEqual(log, []);
    });

    it('rejects a deadline that is not a finite number', () => {
      using file = new SyncFile(mockFence());
      assert.throws(() => file.setDeadline(Number.NaN), InvalidArgumentError);
    });
  });

  describe('poll', () => {
    it('installs one callback on the first poll and no more on later polls', () => {
      const f = mockFence();
      using file = new SyncFile(f);
      assert.equal(f.signalingEnabled, false);
      assert.equal(file.poll(), false);
      assert.equal(f.signalingEnabled, true);
      assert.equal(f.pendingCallbacks, 1);
      file.poll();
      file.poll();
      assert.equal(f.pendingCallbacks, 1);
    });

    it('lets a fence that needs watching (an array) make progress between polls', () => {
      const members = [mockFence(), mockFence()];
      const array = new DmaFenceArray(members, fenceContextAlloc(), 1);
      using file = new SyncFile(array);
      assert.equal(file.poll(), false);
      assert.equal(array.signalingEnabled, true);
      for (const m of members) m.signal();
      assert.equal(array.signaledFlag, true, 'signaled by the members, not by the next poll');
      assert.equal(file.poll(), true);
    });

    it('late: polling an already signaled fence says true and leaves no callback', () => {
      const f = mockFence();
      f.signal();
      using file = new SyncFile(f);
      assert.equal(file.poll(), true);
      assert.equal(f.pendingCallbacks, 0);
    });
  });

  describe('wait', () => {
    it('delegates to the fence, with timeouts on the virtual clock', async () => {
      const clock = new VirtualClock();
      using _c = useClock(clock);
      const f = mockFence();
      using file = new SyncFile(f);
      const short = file.wait({ timeout: 5 });
      await clock.tick(5);
      assert.equal(await short, false);
      const long = file.wait({ timeout: 50 });
      f.signal();
      assert.equal(await long, true);
      assert.equal(clock.pendingTimers, 0);
    });
  });

  describe('dispose', () => {
    it('removes the poll callback, once, and is idempotent', () => {
      const f = mockFence();
      const other = new SyncFile(f);
      other.poll();
      const file = new SyncFile(f);
      file.poll();
      assert.equal(f.pendingCallbacks, 2);
      file[Symbol.dispose]();
      assert.equal(f.pendingCallbacks, 1, "only this file's callback was removed");
      file[Symbol.dispose]();
      assert.equal(f.pendingCallbacks, 1);
      assert.equal(file.isDisposed, true);
      other[Symbol.dispose]();
      assert.equal(f.pendingCallbacks, 0);
    });

    it('works with `using`', () => {
      const f = mockFence();
      let escaped: SyncFile | undefined;
      {
        using file = new SyncFile(f);
        file.poll();
        escaped = file;
      }
      assert.equal(escaped.isDisposed, true);
      assert.equal(f.pendingCallbacks, 0);
    });

    it('late: disposing after the fence signaled is harmless', () => {
      const f = mockFence();
      const file = new SyncFile(f);
      file.poll();
      f.signal();
      file[Symbol.dispose]();
      assert.equal(file.isDisposed, true);
      assert.equal(f.signaledFlag, true);
    });

    it('any other use of a disposed file is a BugError; wait rejects with one', async () => {
      const file = new SyncFile(mockFence());
      file[Symbol.dispose]();
      assert.throws(() => file.poll(), BugError);
      assert.throws(() => file.info(), BugError);
      assert.throws(() => file.fence, /SyncFile\.fence: the file was disposed/);
      assert.throws(() => file.name, BugError);
      assert.throws(() => file.setDeadline(1), BugError);
      await assert.rejects(file.wait(), BugError);
      assert.equal(String(file), 'SyncFile(disposed)');
    });
  });

  it('rejects a fence that is not a DmaFence', () => {
    assert.throws(() => new SyncFile({} as DmaFence), /fence must be a DmaFence/);
    assert.throws(() => new SyncFile(undefined as unknown as DmaFence), InvalidArgumentError);
  });
});
