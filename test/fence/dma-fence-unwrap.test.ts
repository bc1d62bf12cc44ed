import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';

import { VirtualClock, useClock } from '../../src/base/clock.js';
import { InvalidArgumentError } from '../../src/base/errors.js';
import { DmaFence, fenceContextAlloc } from '../../src/fence/dma-fence.js';
import { DmaFenceArray } from '../../src/fence/dma-fence-array.js';
import { DmaFenceChain } from '../../src/fence/dma-fence-chain.js';
import { dedupFences, unwrap, unwrapMerge } from '../../src/fence/dma-fence-unwrap.js';
import { mockFence } from '../helpers/mock-fence.js';

/** The kernel self-test's `mock_fence()`: fresh context, seqno 1, signaling enabled. */
function enabledFence(context: number = fenceContextAlloc(), seqno = 1): DmaFence {
  const f = mockFence(context, seqno);
  f.enableSwSignaling();
  return f;
}

/** `mock_array(n, ...)`: an array on a fresh context, seqno 1, all-signaled. */
function mockArray(...fences: DmaFence[]): DmaFenceArray {
  return new DmaFenceArray(fences, fenceContextAlloc(1), 1);
}

/** `mock_chain(prev, fence)`: a chain node with seqno 1. */
function mockChain(prev: DmaFence | null, fence: DmaFence): DmaFenceChain {
  return new DmaFenceChain(prev, fence, 1);
}

/** A chain with one point per payload, seqnos 1, 2, …: its points, oldest first (the last is the head). */
function chainOf<T extends DmaFence[]>(...payloads: T): { [K in keyof T]: DmaFenceChain } {
  const points: DmaFenceChain[] = [];
  for (const [i, fence] of payloads.entries()) points.push(new DmaFenceChain(points.at(-1) ?? null, fence, i + 1));
  return points as { [K in keyof T]: DmaFenceChain };
}

/**
 * The self-tests' "seen" check: every expected fence exactly once, nothing else
 * ("Unexpected fence!" / "Not all fences seen!").
 */
function assertSeenExactly(head: DmaFence, expected: readonly DmaFence[]): void {
  const unseen = new Set(expected);
  for (const fence of unwrap(head)) {
    assert.ok(unseen.delete(fence), `Unexpected fence! ${fence.describe()}`);
  }
  assert.equal(unseen.size, 0, 'Not all fences seen!');
}

describe('st-dma-fence-unwrap', () => {
  it('test_sanitycheck', () => {
    const f = enabledFence();
    const array = mockArray(f);
    const chain = mockChain(null, array);
    assert.ok(chain instanceof DmaFenceChain);
    assert.equal(chain.fence, array);
    assert.deepEqual([...unwrap(chain)], [f]);
  });

  it('test_unwrap_array', () => {
    const f1 = enabledFence();
    const f2 = enabledFence();
    assertSeenExactly(mockArray(f1, f2), [f1, f2]);
  });

  it('test_unwrap_chain', () => {
    const f1 = enabledFence();
    const f2 = enabledFence();
    // prev is a plain fence: it is yielded too.
    assertSeenExactly(mockChain(f1, f2), [f1, f2]);
  });

  it('test_unwrap_chain_array', () => {
    const f1 = enabledFence();
    const f2 = enabledFence();
    assertSeenExactly(mockChain(null, mockArray(f1, f2)), [f1, f2]);
  });

  it('test_unwrap_merge', () => {
    const f1 = enabledFence();
    const f2 = enabledFence();
    const f3 = unwrapMerge(f1, f2);
    assertSeenExactly(f3, [f1, f2]);
  });

  it('test_unwrap_merge_duplicate', () => {
    const f1 = enabledFence();
    const f2 = unwrapMerge(f1, f1);
    assertSeenExactly(f2, [f1]);
  });

  it('test_unwrap_merge_seqno', () => {
    const ctx0 = fenceContextAlloc(1);
    const ctx1 = fenceContextAlloc(1);
    const f1 = enabledFence(ctx1, 1);
    const f2 = enabledFence(ctx1, 2);
    const f3 = enabledFence(ctx0, 1);
    const f4 = unwrapMerge(f1, f2, f3);
    // f3 first (lower context), then only the latest of ctx1; f1 must not appear.
    assert.deepEqual([...unwrap(f4)], [f3, f2]);
  });

  it('test_unwrap_merge_order', () => {
    const f1 = enabledFence();
    const f2 = enabledFence();
    const a1 = mockArray(f1, f2);
    const c1 = mockChain(null, f1);
    const c2 = mockChain(c1, f2);
    // The chain holds the same fences in the opposite order; the merge must still sort them.
    assert.deepEqual([...unwrap(c2)], [f2, f1]);
    const a2 = unwrapMerge(a1, c2);
    const order = [...unwrap(a2)];
    assert.equal(order.length, 2, 'Not all fences seen!');
    assert.equal(order[0], f1, 'Unexpected order!');
    assert.equal(order[1], f2, 'Unexpected order!');
  });

  it('test_unwrap_merge_complex', () => {
    const f1 = enabledFence();
    const f2 = enabledFence();
    const f3 = unwrapMerge(f1, f2);
    // The resulting array has the fences in reverse.
    const f4 = mockArray(f2, f1);
    // Signaled fences should be filtered, the two arrays merged.
    const f5 = unwrapMerge(f3, f4, DmaFence.getStub());
    assertSeenExactly(f5, [f1, f2]);
  });

  it('test_unwrap_merge_complex_seqno', () => {
    const ctx0 = fenceContextAlloc(1);
    const ctx1 = fenceContextAlloc(1);
    const f1 = enabledFence(ctx0, 2);
    const f2 = enabledFence(ctx1, 1);
    const f3 = enabledFence(ctx0, 1);
    const f4 = enabledFence(ctx1, 2);
    const f5 = mockArray(f1, f2);
    const f6 = mockArray(f3, f4);
    const f7 = unwrapMerge(f5, f6);
    assert.deepEqual([...unwrap(f7)], [f1, f4]);
  });
});

describe('unwrap', () => {
  it('yields a plain fence exactly once', () => {
    const f = mockFence();
    assert.deepEqual([...unwrap(f)], [f]);
  });

  it('yields a signaled plain head too: the head is always visited', () => {
    const f = mockFence();
    f.signal();
    assert.deepEqual([...unwrap(f)], [f]);
  });

  it('visits chain points newest first, expanding array payloads in member order', () => {
    const a = mockFence();
    const b = mockFence();
    const c = mockFence();
    const [, p2] = chainOf(mockArray(a, b), c);
    assert.deepEqual([...unwrap(p2)], [c, a, b]);
  });

  it("expands an array that is a chain's plain predecessor", () => {
    const [f1, f2, f3] = [mockFence(), mockFence(), mockFence()];
    const chain = new DmaFenceChain(mockArray(f1, f2), f3, 1);
    assert.deepEqual([...unwrap(chain)], [f3, f1, f2]);
  });

  it('skips signaled older points and splices them out of the chain (garbage collection)', () => {
    const [f1, f2, f3] = [mockFence(), mockFence(), mockFence()];
    const [p1, p2, p3] = chainOf(f1, f2, f3);
    f2.signal();
    assert.deepEqual([...unwrap(p3)], [f3, f1]);
    assert.equal(p3.prev, p1, 'the signaled point 2 was spliced out by the walk');
    assert.equal(p2.prevSeqno, 1);
  });

  it('late: still yields the head payload once every point has signaled', () => {
    const [f1, f2] = [mockFence(), mockFence()];
    const [, p2] = chainOf(f1, f2);
    f1.signal();
    f2.signal();
    assert.deepEqual([...unwrap(p2)], [f2]);
    assert.equal(p2.prev, null, 'the walk collected the whole tail');
  });

  it('is lazy: the chain is walked only as far as the caller reads', () => {
    const [f1, f2, f3] = [mockFence(), mockFence(), mockFence()];
    const [p1, p2, p3] = chainOf(f1, f2, f3);
    f2.signal();
    const it = unwrap(p3);
    assert.equal(it.next().value, f3);
    assert.equal(p3.prev, p2, 'nothing collected before the second leaf is asked for');
    assert.equal(it.next().value, f1);
    assert.equal(p3.prev, p1);
  });

  it('rejects a head that is not a fence, at the call', () => {
    assert.throws(() => unwrap(null as unknown as DmaFence), InvalidArgumentError);
    assert.throws(() => unwrap({} as DmaFence), /unwrap: head must be a DmaFence/);
  });
});

describe('dedupFences', () => {
  it('sorts by context and keeps the latest fence of each context, in place', () => {
    const ctxA = fenceContextAlloc();
    const ctxB = fenceContextAlloc();
    const a1 = mockFence(ctxA, 1);
    const a3 = mockFence(ctxA, 3);
    const a2 = mockFence(ctxA, 2);
    const b5 = mockFence(ctxB, 5);
    const input = [b5, a1, a3, a2];
    const out = dedupFences(input);
    assert.equal(out, input, 'works in place and returns the same array');
    assert.deepEqual(out, [a3, b5]);
  });

  it('keeps one of several copies of the same fence', () => {
    const f = mockFence();
    assert.deepEqual(dedupFences([f, f, f]), [f]);
  });

  it('compares seqnos with 32-bit wrap-around, like dma_fence_is_later', () => {
    const ctx = fenceContextAlloc();
    const before = mockFence(ctx, 0xffffffff);
    const after = mockFence(ctx, 1);
    assert.deepEqual(dedupFences([before, after]), [after]);
  });

  it('returns an empty array for an empty input (test_dedup_empty)', () => {
    assert.deepEqual(dedupFences([]), []);
  });

  it('rejects input that is not an array of fences', () => {
    assert.throws(() => dedupFences('x' as unknown as DmaFence[]), InvalidArgumentError);
    assert.throws(() => dedupFences([mockFence(), 3 as unknown as DmaFence]), /fences\[1\] must be a DmaFence/);
  });

  it('property: the result is strictly ascending by context, one latest fence per input context', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 4 }), fc.integer({ min: 0, max: 20 })), { maxLength: 30 }),
        (specs) => {
          const base = fenceContextAlloc(5);
          const fences = specs.map(([c, s]) => mockFence(base + c, s));
          const out = dedupFences(fences.slice());
          const contexts = new Set(fences.map((f) => f.context));
          assert.equal(out.length, contexts.size);
          for (let i = 1; i < out.length; i++) assert.ok(out[i - 1]!.context < out[i]!.context);
          for (const kept of out) {
            for (const f of fences) {
              if (f.context === kept.context) assert.ok(kept.seqno >= f.seqno);
            }
          }
        },
      ),
    );
  });
});

describe('unwrapMerge', () => {
  it('returns the only pending fence itself', () => {
    const pending = mockFence();
    const done = mockFence();
    done.signal();
    assert.equal(unwrapMerge(pending, done), pending);
    assert.equal(unwrapMerge(mockArray(done, pending)), pending);
  });

  it('returns a new signaled stub with the latest leaf timestamp when nothing is pending', () => {
    const clock = new VirtualClock(100);
    using _c = useClock(clock);
    const a = mockFence();
    const b = mockFence();
    b.signal(250);
    a.signal(120);
    const merged = unwrapMerge(mockArray(a, b));
    assert.ok(merged !== a && merged !== b);
    assert.equal(merged.signaledFlag, true);
    assert.equal(merged.context, 0);
    assert.equal(merged.timestamp, 250);
    assert.notEqual(merged, DmaFence.getStub(), 'a private stub, not the shared one');
  });

  it('with no arguments returns a signaled stub timestamped 0 (the kernel starts from 0)', () => {
    using _c = useClock(new VirtualClock(500));
    const merged = unwrapMerge();
    assert.equal(merged.signaledFlag, true);
    assert.equal(merged.timestamp, 0);
  });

  it('builds a flat array on a fresh context with seqno 1, members in ascending context order', () => {
    const ctxs = [fenceContextAlloc(), fenceContextAlloc(), fenceContextAlloc()];
    const [x, y, z] = ctxs.map((c) => mockFence(c, 1)) as [DmaFence, DmaFence, DmaFence];
    const chain = new DmaFenceChain(new DmaFenceChain(null, z, 1), mockArray(y, x), 2);
    const before = fenceContextAlloc();
    const merged = unwrapMerge(chain);
    const array = DmaFenceArray.toArray(merged);
    assert.ok(array, 'an array');
    assert.deepEqual(array.fences, [x, y, z]);
    assert.ok(array.context > before, 'a context allocated for the merge');
    assert.equal(array.seqno, 1);
    assert.equal(array.signalOnAny, false);
    for (const member of array.fences) assert.equal(member.isContainer, false);
  });

  it('does not change its inputs', () => {
    const a = mockFence();
    const b = mockFence();
    const input = mockArray(b, a);
    unwrapMerge(input, a);
    assert.deepEqual(input.fences, [b, a]);
    assert.equal(input.signalingEnabled, false);
    assert.equal(a.pendingCallbacks + b.pendingCallbacks, 0);
  });

  it('leaves out leaves that signal on polling (ops.signaled)', () => {
    let done = false;
    const polled = new DmaFence(
      { getDriverName: () => 'p', getTimelineName: () => 'p', signaled: () => done },
      fenceContextAlloc(),
      1,
    );
    const other = mockFence();
    done = true;
    assert.equal(unwrapMerge(polled, other), other);
    assert.equal(polled.signaledFlag, true, 'polling signaled it');
  });

  it('late: merging fences that all signaled later still gives the earlier array, which then signals', () => {
    const a = mockFence();
    const b = mockFence();
    const merged = unwrapMerge(a, b);
    a.signal();
    b.signal();
    assert.equal(merged.isSignaled(), true);
  });

  it('rejects arguments that are not fences', () => {
    assert.throws(() => unwrapMerge(mockFence(), undefined as unknown as DmaFence), /argument 1 must be a DmaFence/);
    assert.throws(() => unwrapMerge([mockFence()] as unknown as DmaFence), InvalidArgumentError);
  });
});
