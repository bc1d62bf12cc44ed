/**
 * reject-soon: a rejected promise for control flow that is expected, at a fraction of the cost.
 *
 * Overview: a promise that is already rejected when it is returned has no handler yet, so Node
 * records it as a possible unhandled rejection and un-records it when the caller's `await`
 * attaches one a moment later. That bookkeeping costs about a microsecond (1.1-1.4 µs measured
 * here against 0.3-0.5 µs for this helper, both awaited at once), more than a whole uncontended
 * lock.
 * For rejections that are part of a protocol and happen all the time (a wound/wait back-off),
 * {@link rejectSoon} returns a pending promise and rejects it one microtask later, by when the
 * caller that awaits the call at once is listening.
 *
 * Contract:
 * - The promise rejects with `reason`, one microtask after the call; it never fulfils.
 * - A caller that never handles it gets the same unhandled rejection as with `Promise.reject`.
 * - Only for expected, frequent rejections; errors that report bugs keep `Promise.reject`.
 *
 * @example
 * ```ts
 * import { rejectSoon } from './reject-soon.js';
 * try {
 *   await rejectSoon(new Error('back off'));
 * } catch (err) {
 *   console.log((err as Error).message); // 'back off'
 * }
 * ```
 */

let pendingReason: unknown;

// Reactions of a settled promise run as plain microtasks. Node's queueMicrotask wraps each
// callback in an async resource and costs twice as much (about 0.7 µs against 0.3 µs here).
const SETTLED: Promise<void> = Promise.resolve();

// One module-level executor: a call makes one closure (the reaction below), not two.
function rejectOnNextMicrotask(_resolve: unknown, reject: (reason: unknown) => void): void {
  const reason = pendingReason;
  pendingReason = undefined;
  void SETTLED.then(() => reject(reason));
}

/** A promise that rejects with `reason` one microtask from now (see the module overview). */
export function rejectSoon(reason: unknown): Promise<never> {
  pendingReason = reason;
  return new Promise<never>(rejectOnNextMicrotask);
}
