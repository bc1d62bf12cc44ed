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
 *   signaled, -1 when the timeout ran out, or a rejection with `abort.reason`.
 * - Whichever comes first removes the callback from every fence, the timer and the abort listener.
 * - Callbacks go on through `lrAddCallback`: the caller already told the validator it may wait.
 *
 * @example
 * ```ts
 * import { DmaFence, fenceContextAlloc } from 'dmabuf';
 * const ops = { getDriverName: () => 'example', getTimelineName: () => 'q' };
 * const a = new DmaFence(ops, fenceContextAlloc(), 1);
 * const b = new DmaFence(ops, fenceContextAlloc(), 1);
 * setTimeout(() => b.signal(), 1);
 * console.log(await DmaFence.waitAny([a, b], { timeout: 1000 })); // 1 (this module does the waiting)
 * ```
 */

import { getClock } from '../base/clock.js';
import type { DmaFence } from './dma-fence.js';

/**
 * The slow wait: a callback on every fence, an optional timer and an optional abort listener,
 * all removed by whichever outcome comes first. Resolves with the first signaled index or -1.
 */
export function waitWithCleanup(
  fences: readonly DmaFence[],
  timeout: number | undefined,
  abort: AbortSignal | undefined,
): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const clock = getClock();
    let timer: object | undefined;
    let settled = false;
    const cleanup = (): void => {
      settled = true;
      for (const fence of fences) fence.removeCallback(onSignal);
      if (timer !== undefined) clock.clearTimer(timer);
      abort?.removeEventListener('abort', onAbort);
    };
    const onSignal = (): void => {
      if (settled) return;
      cleanup();
      let index = 0;
      while (index < fences.length && !fences[index]!.signaledFlag) index++;
      resolve(index);
    };
    const onAbort = (): void => {
      if (settled) return;
      cleanup();
      reject(abort!.reason);
    };
    for (const fence of fences) {
      // The waiter accepted the wait (and mightWait judged it); no plain-callback report here.
      if (!fence.lrAddCallback(onSignal)) {
        onSignal();
        return;
      }
    }
    if (timeout !== undefined) {
      timer = clock.setTimer(timeout, () => {
        if (settled) return;
        cleanup();
        resolve(-1);
      });
    }
    abort?.addEventListener('abort', onAbort, { once: true });
  });
}
