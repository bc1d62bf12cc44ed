/**
 * dma-fence-unwrap: looking inside containers, and flattening several fences into one.
 *
 * Overview: chains and arrays wrap other fences. {@link unwrap} visits the plain fences inside
 * any of them (a chain's points, each point's payload, an array's members), which is what
 * sync-file info, merging and deadline hints need. {@link unwrapMerge} turns any number of
 * fences, containers or not, into the smallest equivalent fence: a signaled stub when nothing
 * is pending, the single pending fence itself, or one flat {@link DmaFenceArray} holding the
 * latest pending fence of each timeline. {@link dedupFences} is the sorting step it uses.
 *
 * Models `drivers/dma-buf/dma-fence-unwrap.c` and `include/linux/dma-fence-unwrap.h`.
 *
 * Contract:
 * - Unwrapping never nests deeper than chain → array → leaf, because arrays hold no containers
 *   and chain payloads are never chains; a plain fence unwraps to itself.
 * - Walking a chain collects it ({@link DmaFenceChain.walk}): signaled points older than the
 *   head are skipped and spliced out, so they are not yielded. The head's contents always are.
 * - Leaves are yielded lazily; the walk advances only when the next leaf is asked for.
 * - {@link unwrapMerge} never consumes or changes its inputs and never returns a container
 *   nested in a container. Its array lists fences in ascending context order, one per context.
 *
 * @example
 * ```ts
 * import { DmaFence, DmaFenceArray, fenceContextAlloc, unwrap, unwrapMerge } from 'dmabuf';
 * const ops = { getDriverName: () => 'example', getTimelineName: () => 'render' };
 * const a = new DmaFence(ops, fenceContextAlloc(), 1);
 * const b = new DmaFence(ops, fenceContextAlloc(), 1);
 * const both = new DmaFenceArray([a, b], fenceContextAlloc(), 1);
 * console.log([...unwrap(both)].length); // 2
 * const merged = unwrapMerge(both, a);
 * console.log(DmaFenceArray.toArray(merged)?.numFences); // 2: the second `a` was dropped
 * b.signal();
 * console.log(unwrapMerge(both) === a); // true: a is the only fence still pending
 * ```
 */

import { InvalidArgumentError, describeValue } from '../base/errors.js';
import { DmaFence, fenceContextAlloc } from './dma-fence.js';
import { DmaFenceArray } from './dma-fence-array.js';
import { DmaFenceChain } from './dma-fence-chain.js';

/**
 * Every plain fence inside `head`: for each chain point visited by a collecting walk, the
 * point's payload, or the members when that payload is an array. A plain predecessor at the
 * end of a chain is yielded as well; a plain `head` is yielded once.
 * @throws {InvalidArgumentError} when `head` is not a fence.
 * @see dma_fence_unwrap_for_each()
 */
export function unwrap(head: DmaFence): IterableIterator<DmaFence> {
  checkFence('unwrap', head, 'head');
  return unwrapLeaves(head);
}

function* unwrapLeaves(head: DmaFence): Generator<DmaFence, void, undefined> {
  for (let node: DmaFence | null = head; node !== null; node = DmaFenceChain.walk(node)) {
    const contents = DmaFenceChain.contained(node);
    if (contents instanceof DmaFenceArray) yield* contents.fences;
    else yield contents;
  }
}

/**
 * Sorts `fences` in place by context (ascending), the latest fence of each context first, then
 * keeps only that latest fence per context. Works in place like the kernel and returns the same
 * array, shortened.
 * @throws {InvalidArgumentError} when `fences` is not an array of fences.
 * @see dma_fence_dedup_array()
 */
export function dedupFences(fences: DmaFence[]): DmaFence[] {
  if (!Array.isArray(fences)) {
    throw new InvalidArgumentError(`dedupFences: fences must be an array of DmaFence, got ${describeValue(fences)}`);
  }
  for (let i = 0; i < fences.length; i++) checkFence('dedupFences', fences[i], `fences[${i}]`);
  fences.sort(compareContextThenLatest);
  let kept = 0;
  for (let i = 1; i < fences.length; i++) {
    const fence = fences[i]!;
    if (fence.context !== fences[kept]!.context) fences[++kept] = fence;
  }
  fences.length = fences.length === 0 ? 0 : kept + 1;
  return fences;
}

function compareContextThenLatest(a: DmaFence, b: DmaFence): number {
  if (a.context !== b.context) return a.context < b.context ? -1 : 1;
  if (DmaFence.isLater(b, a)) return 1;
  if (DmaFence.isLater(a, b)) return -1;
  return 0;
}

/**
 * Flattens `fences` (plain fences, arrays, chains, in any mix) into one fence that signals when
 * all the pending work inside them is done:
 * - nothing pending: a new signaled stub carrying the latest signal time among the leaves
 *   (0, the clock's origin, when there were no leaves at all, i.e. no arguments; the kernel
 *   starts its maximum from 0 too);
 * - one pending fence (after dropping duplicates and older points of the same timeline): that
 *   fence itself;
 * - otherwise a new {@link DmaFenceArray} on a fresh context, seqno 1, holding the latest
 *   pending fence of each context in ascending context order.
 * Signaled leaves are left out; polling them may signal them (as `isSignaled()` does).
 * @throws {InvalidArgumentError} when an argument is not a fence.
 * @see dma_fence_unwrap_merge()
 */
export function unwrapMerge(...fences: DmaFence[]): DmaFence {
  for (let i = 0; i < fences.length; i++) checkFence('unwrapMerge', fences[i], `argument ${i}`);
  // One pass is enough: nothing can signal concurrently between two passes as in the kernel.
  const pending: DmaFence[] = [];
  let latest: number | undefined;
  for (const head of fences) {
    for (const leaf of unwrapLeaves(head)) {
      if (!leaf.isSignaled()) {
        pending.push(leaf);
        continue;
      }
      const t = leaf.timestamp!;
      if (latest === undefined || t > latest) latest = t;
    }
  }
  if (pending.length === 0) return DmaFence.allocatePrivateStub(latest ?? 0);
  if (pending.length === 1) return pending[0]!;
  const unique = dedupFences(pending);
  if (unique.length === 1) return unique[0]!;
  return new DmaFenceArray(unique, fenceContextAlloc(1), 1);
}

function checkFence(what: string, value: unknown, name: string): void {
  if (!(value instanceof DmaFence)) {
    throw new InvalidArgumentError(`${what}: ${name} must be a DmaFence, got ${describeValue(value)}`);
  }
}
