/**
 * The scheduler's submit executor: where its run and free work items execute.
 *
 * Overview: the kernel runs a scheduler's two work items (run the next job, free finished jobs)
 * on one ordered workqueue, never concurrently and never inside the caller that queued them. A
 * {@link DrmSchedExecutor} is the JavaScript equivalent: the scheduler hands it one function
 * ("pump the work items") whenever work is queued and no pump is pending, and the executor calls
 * it later. Three are provided: {@link microtaskExecutor} (the default: the work runs as soon as
 * the current task yields, the lowest latency), {@link macrotaskExecutor} (a `setImmediate` turn
 * later, letting I/O and timers in between), and {@link ManualExecutor}, which runs nothing
 * until a test or a simulation calls {@link ManualExecutor.drain}.
 *
 * Models the ordered `submit_wq` of `drivers/gpu/drm/scheduler/sched_main.c` (`alloc_ordered_workqueue`,
 * `queue_work`).
 *
 * Contract:
 * - `schedule(fn)` never calls `fn` synchronously; every scheduled function is called exactly once.
 * - Functions run in the order they were scheduled.
 *
 * @example
 * ```ts
 * import { ManualExecutor } from 'dmabuf';
 * const executor = new ManualExecutor();
 * let ran = 0;
 * executor.schedule(() => ran++);
 * console.log(ran, executor.pending); // 0 1
 * executor.drain();
 * console.log(ran, executor.pending); // 1 0
 * ```
 */

import { BugError, describeValue, InvalidArgumentError } from '../base/errors.js';
import { requiredFunction, requiredIndex } from '../base/options.js';

/** Runs the scheduler's work later, in order, one function at a time. */
export interface DrmSchedExecutor {
  /** Calls `fn` once, later (never before returning). */
  schedule(fn: () => void): void;
}

/** Runs work on a microtask: right after the current synchronous code. The default. */
export const microtaskExecutor: DrmSchedExecutor = Object.freeze({
  schedule(fn: () => void): void {
    queueMicrotask(fn);
  },
});

const macrotask: (fn: () => void) => void =
  typeof globalThis.setImmediate === 'function' ? (fn) => void setImmediate(fn) : (fn) => void setTimeout(fn, 0);

/** Runs work on a later event-loop turn (`setImmediate`, or a zero timeout in browsers). */
export const macrotaskExecutor: DrmSchedExecutor = Object.freeze({
  schedule(fn: () => void): void {
    macrotask(fn);
  },
});

/**
 * Holds work until {@link drain} is called: for tests that step a scheduler by hand and for
 * simulations that decide when the "submit thread" runs.
 */
export class ManualExecutor implements DrmSchedExecutor {
  #queue: (() => void)[] = [];

  /** @throws {InvalidArgumentError} for anything but a function (it would fail only at {@link drain}). */
  schedule(fn: () => void): void {
    requiredFunction(fn, 'ManualExecutor.schedule', 'fn');
    this.#queue.push(fn);
  }

  /** Functions scheduled and not yet run. */
  get pending(): number {
    return this.#queue.length;
  }

  /**
   * Runs scheduled functions, including those they schedule, until none is left.
   * @param limit the most functions to run (a guard against work that re-queues itself forever).
   * @throws {InvalidArgumentError} for a limit that is not an integer >= 0.
   * @returns how many ran.
   * @throws {BugError} when `limit` functions ran and more are queued.
   * @throws what a function threw; the functions after it stay queued for the next drain.
   */
  drain(limit = 1_000_000): number {
    requiredIndex(limit, 'ManualExecutor.drain', 'limit');
    let ran = 0;
    while (this.#queue.length > 0) {
      if (ran >= limit) {
        throw new BugError(
          `ManualExecutor.drain: ${limit} functions ran and more are queued; work re-queues itself forever`,
        );
      }
      const batch = this.#queue;
      this.#queue = [];
      for (let i = 0; i < batch.length; i++) {
        ran++;
        try {
          batch[i]!();
        } catch (err) {
          // The rest of the batch stays queued, ahead of what was scheduled since: a later drain runs it.
          this.#queue = batch.slice(i + 1).concat(this.#queue);
          throw err;
        }
      }
    }
    return ran;
  }
}

/** @internal The executor for an option value: a name or an executor object. */
export function resolveSchedExecutor(value: unknown): DrmSchedExecutor {
  if (value === undefined || value === 'microtask') return microtaskExecutor;
  if (value === 'macrotask') return macrotaskExecutor;
  if (typeof value === 'object' && value !== null && typeof (value as DrmSchedExecutor).schedule === 'function') {
    return value as DrmSchedExecutor;
  }
  throw new InvalidArgumentError(
    `executor must be 'microtask', 'macrotask' or an object with a schedule(fn) method, got ${describeValue(value)}`,
  );
}
