/**
 * Test helpers for async "tasks": a one-shot {@link Completion} (the kernel's `struct completion`,
 * used by the lock self-tests as ready/go/done latches), event-loop turns for interleaving, and
 * bounded waits that report a hang as a value instead of hanging the test.
 *
 * Nothing here reads the clock: "a while" is always a number of `setImmediate` turns.
 */

/** One `setImmediate` turn: every pending microtask and I/O callback runs before it resolves. */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** `turns` event-loop turns (the "dummy load" and the interleaving points of async tasks). */
export async function yieldTurns(turns = 1): Promise<void> {
  for (let i = 0; i < turns; i++) await nextTurn();
}

/** A one-shot latch: `complete()` once, any number of `wait()`s. */
export class Completion {
  #done = false;
  #resolve!: () => void;
  readonly #promise = new Promise<void>((resolve) => {
    this.#resolve = resolve;
  });

  /** `completion_done()`: true once `complete()` ran. */
  get done(): boolean {
    return this.#done;
  }

  /** `complete()`: releases every waiter, now and later. */
  complete(): void {
    this.#done = true;
    this.#resolve();
  }

  /** `wait_for_completion()`. */
  wait(): Promise<void> {
    return this.#promise;
  }

  /** `wait_for_completion_timeout()` with the timeout in event-loop turns; returns `done`. */
  async waitTurns(turns: number): Promise<boolean> {
    for (let i = 0; i < turns && !this.#done; i++) await nextTurn();
    return this.#done;
  }
}

/** How a promise stood after a bounded wait. */
export type Outcome<T> =
  | { readonly state: 'fulfilled'; readonly value: T }
  | { readonly state: 'rejected'; readonly reason: unknown }
  | { readonly state: 'pending' };

/**
 * Watches `promise` and returns a function reporting its outcome so far, so a test can assert
 * "still waiting" without awaiting something that may never settle. Attaching the watcher also
 * marks a rejection as handled.
 */
export function watch<T>(promise: Promise<T>): () => Outcome<T> {
  let outcome: Outcome<T> = { state: 'pending' };
  promise.then(
    (value) => {
      outcome = { state: 'fulfilled', value };
    },
    (reason: unknown) => {
      outcome = { state: 'rejected', reason };
    },
  );
  return () => outcome;
}

/** Waits at most `turns` event-loop turns for `promise`; a hang comes back as `{ state: 'pending' }`. */
export async function settleWithin<T>(promise: Promise<T>, turns: number): Promise<Outcome<T>> {
  const outcome = watch(promise);
  for (let i = 0; i < turns && outcome().state === 'pending'; i++) await nextTurn();
  return outcome();
}

/** Turns after which a test calls a task hung. */
export const HANG_TURNS = 5_000;

/** The error a call settles with, or null when it succeeded; fails the test if it hangs. */
export async function outcome(promise: Promise<unknown>, what: string, turns = HANG_TURNS): Promise<unknown> {
  const result = await settleWithin(promise, turns);
  if (result.state === 'pending') throw new Error(`${what} hung for ${turns} event-loop turns`);
  return result.state === 'rejected' ? result.reason : null;
}

/** What a task returns; fails the test if it hangs, rethrows what it threw. */
export async function finish<T>(task: Promise<T>, what: string, turns = HANG_TURNS): Promise<T> {
  const result = await settleWithin(task, turns);
  if (result.state === 'pending') throw new Error(`${what} hung for ${turns} event-loop turns`);
  if (result.state === 'rejected') throw result.reason;
  return result.value;
}
