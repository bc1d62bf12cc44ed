/**
 * The slow path of fence waits: waiting on one or several fences with a timeout and an abort
 * signal, leaving nothing behind whichever outcome comes first.
 *
 * Overview: `DmaFence.wait()` and `DmaFence.waitAny()` answer the common cases themselves
 * (already signaled, a poll, a plain wait); this module holds the general case, so dma-fence.ts
 * stays the fence itself. Models the waiter side of `dma_fence_default_wait()` and
 * `dma_fence_wait_any_timeout()`.
 *
 * Contract:
 * - Settles exactly once: the index of the first signaled fence (in array order) once any has
 *   signaled; when the timeout runs out, -1 (`wait()`'s `false`) or, given `timeoutError`, a
 *   rejection with that error (`waitAny()`); a rejection with `abort.reason` when aborted.
 * - Whichever comes first removes the callback from every fence, the timer and the abort listener
 *   (a {@link Waiter} does the bookkeeping).
 * - Callbacks go on through `lrAddCallback`: the caller already told the validator it may wait.
 *
 * @example
 * ```ts
 * import { DmaFence } from 'dmabuf';
 * const a = new DmaFence('a');
 * const b = new DmaFence('b');
 * setTimeout(() => b.signal(), 1);
 * console.log(await DmaFence.waitAny([a, b], { timeout: 1000 })); // 1 (this module does the waiting)
 * ```
 */

import { Waiter } from '../base/waiter.js';
import type { DmaFence } from './dma-fence.js';

/**
 * @internal
 * The slow wait: a callback on every fence, an optional timer and an optional abort listener,
 * all removed by whichever outcome comes first. Resolves with the first signaled index; on
 * timeout with -1, or rejects with `timeoutError(fences, timeout)` when given.
 */
export function waitWithCleanup(
  fences: readonly DmaFence[],
  timeout: number | undefined,
  abort: AbortSignal | undefined,
  timeoutError?: (fences: readonly DmaFence[], timeout: number) => Error,
): Promise<number> {
  const waiter = new Waiter<number>(() => {
    for (const fence of fences) fence.removeCallback(onSignal);
  });
  const onSignal = (): void => {
    let index = 0;
    while (index < fences.length && !fences[index]!.signaledFlag) index++;
    waiter.resolve(index);
  };
  for (const fence of fences) {
    // The waiter accepted the wait (and mightWait judged it); no plain-callback report here.
    if (!fence.lrAddCallback(onSignal)) {
      onSignal();
      return waiter.promise;
    }
  }
  waiter.timeoutAfter(timeout, () => {
    if (timeoutError === undefined) waiter.resolve(-1);
    else waiter.reject(timeoutError(fences, timeout!));
  });
  waiter.abortOn(abort);
  return waiter.promise;
}
