/**
 * Queue state: open, draining, closed, and who waits for the queue to run dry.
 *
 * Overview: dmabuf has several queues of background work (the work queue, the heap's
 * deferred-free list, TTM's copy engine). Each holds its own items, but all share one skeleton:
 * while open they accept work; `drain()` waits until nothing is left; closing (async disposal)
 * drains and then refuses new work, while work queued during the drain is still accepted and
 * run; a synchronous disposal closes at once. {@link QueueState} is that skeleton. The owner
 * says what "idle" means (a predicate) and calls {@link QueueState.wake} whenever it may have
 * become idle.
 *
 * Models the life cycle of a kernel workqueue: `drain_workqueue()` (wait until empty, work
 * queued meanwhile included) and `destroy_workqueue()` (drain, then no more `queue_work()`).
 *
 * Contract:
 * - `drain()` resolves once the owner's predicate says idle, checked now and at every `wake()`;
 *   with a `signal` it rejects with `signal.reason` when aborted and leaves no waiter behind.
 * - `close()` moves to `'closing'`, waits for idle, then to `'closed'`; every call returns the
 *   same promise, and a resolved one once closed. `closeNow()` moves to `'closed'` at once.
 * - The state never moves backwards.
 *
 * @example
 * ```ts
 * import { QueueState } from './queue-state.js';
 * const items: string[] = ['a', 'b'];
 * const state = new QueueState(() => items.length === 0);
 * const drained = state.drain();
 * items.length = 0;
 * state.wake();
 * await drained;
 * await state.close();
 * console.log(state.status); // 'closed'
 * ```
 */

import { Waiter } from './waiter.js';

/** @internal Where a queue is in its life: accepting, draining before it closes, or closed. */
export type QueueStatus = 'open' | 'closing' | 'closed';

const RESOLVED: Promise<void> = Promise.resolve();

/** @internal The open / drain / close skeleton shared by dmabuf's background queues. */
export class QueueState {
  readonly #isIdle: () => boolean;
  #status: QueueStatus = 'open';
  #closing: Promise<void> | null = null;
  #waiters: Waiter<void>[] = [];

  /** @param isIdle the owner's "nothing queued, nothing running" test. */
  constructor(isIdle: () => boolean) {
    this.#isIdle = isIdle;
  }

  /** `'open'`, `'closing'` (draining before close) or `'closed'`. */
  get status(): QueueStatus {
    return this.#status;
  }

  /** Whether the queue is closed: new work is refused. */
  get closed(): boolean {
    return this.#status === 'closed';
  }

  /** Number of `drain()` calls still waiting. */
  get drainWaiters(): number {
    return this.#waiters.length;
  }

  /**
   * Resolves once the queue is idle (now, if it is). With `signal`, rejects with its reason on
   * abort and leaves no waiter behind.
   */
  drain(signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#isIdle()) return RESOLVED;
    const waiter = new Waiter<void>();
    this.#waiters.push(waiter);
    if (signal !== undefined) waiter.abortOn(signal, () => this.#forget(waiter));
    return waiter.promise;
  }

  /** The owner made progress: wakes every drain waiter if the queue is now idle. */
  wake(): void {
    if (this.#waiters.length === 0 || !this.#isIdle()) return;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const waiter of waiters) waiter.resolve();
  }

  /** Drains, then closes. Idempotent: every call shares one promise; resolved once closed. */
  close(): Promise<void> {
    if (this.#status === 'closed') return RESOLVED;
    this.#closing ??= (async (): Promise<void> => {
      this.#status = 'closing';
      await this.drain();
      this.#status = 'closed';
    })();
    return this.#closing;
  }

  /** Closes at once, without draining (the owner disposes of what is left). */
  closeNow(): void {
    this.#status = 'closed';
  }

  #forget(waiter: Waiter<void>): void {
    const i = this.#waiters.indexOf(waiter);
    if (i >= 0) this.#waiters.splice(i, 1);
  }
}
