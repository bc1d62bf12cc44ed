/**
 * TTM copy engine: the modelled GPU copy ring that pipelined buffer moves run on.
 *
 * Overview: a driver moves a busy buffer object without waiting for it by handing the copy to a
 * GPU engine and getting a fence back (`ttm_bo_move_accel_cleanup()` then hangs the old memory
 * on that fence, in a ghost object or a manager's eviction fence slots). {@link TtmCopyEngine} is
 * that engine for dmabuf: {@link TtmCopyEngine.copy} queues a job (a copy, or a clear when there
 * is no source) and returns a {@link DmaFence} at once; the job waits for its dependencies and
 * for every job queued before it (one in-order ring, like a GPU's SDMA/blit ring), then the bytes
 * move on a clock timer and the fence signals. With `bytesPerMs` the engine takes
 * `size / bytesPerMs` milliseconds per job, one job after another, so benchmarks see pipelining
 * and eviction latency; without it every ready job completes on the next timer tick.
 *
 * Models the copy path a TTM driver provides through `ttm_device_funcs.move` (amdgpu's
 * `amdgpu_copy_buffer()` / `amdgpu_fill_buffer()` on its buffer-funcs ring, scheduled by
 * `drm_sched`, returning the job's finished fence), reduced to one ring. As in drm_sched, a
 * dependency that failed passes its error on to the job's fence; unlike a real scheduler the
 * copy is still performed, because the engine is also what keeps moved data intact here.
 *
 * Contract:
 * - Fences are `DmaFence`s on {@link TtmCopyEngine.context} with seqnos 1, 2, 3..., driver name
 *   `'ttm'` and the engine's name as timeline. They signal in seqno order, never inside `copy()`.
 * - A job runs only when every dependency has signaled and every earlier job has signaled.
 * - `src()` and `dst()` are called once, when the job starts on the engine (never inside
 *   `copy()`), and the copy uses `TypedArray.prototype.set` (a clear uses `fill(0)`). Source and
 *   destination must have the same length.
 * - They run, like the rest of the job, in a fence signalling section of a validator task of its
 *   own: they must not take locks, wait, or allocate with reclaim (the kernel's rule for code on
 *   the way to signalling a fence).
 * - A failing dependency gives its error object to the job's fence (the first such dependency, in
 *   the order given); the bytes are still copied. A job that cannot copy (a view function threw,
 *   the lengths differ) gets its own error instead, copies nothing, and the ring goes on.
 * - With `bytesPerMs`, a job starts when both it is ready and the previous job has ended, and
 *   ends `size / bytesPerMs` later; its fence's timestamp is that modelled end. Timers fire late
 *   on a real clock; every job that has ended by then completes in one batch.
 * - `idle({ signal })` waits until every queued job has signaled; an abort rejects with
 *   `signal.reason` and leaves no waiter. Disposal waits the same way, then `copy()` is a
 *   {@link BugError}; jobs queued while it waits are still accepted (the shared
 *   {@link QueueState}). An idle engine has no timer armed.
 *
 * @example
 * ```ts
 * import { TtmCopyEngine } from 'dmabuf';
 * await using engine = new TtmCopyEngine({ name: 'sdma0', bytesPerMs: 1 << 20 });
 * const from = new Uint8Array(4096).fill(7);
 * const to = new Uint8Array(4096);
 * const fence = engine.copy(() => from, () => to);
 * await fence.wait();
 * console.log(to[0], engine.bytesCopied); // 7 4096
 * ```
 */

import { BugError, DmaBufError, InvalidArgumentError, describeValue } from '../base/errors.js';
import { getClock, type TimerHandle } from '../base/clock.js';
import { defineOptions, defineSignalOnly, invalidArgument, optionalString } from '../base/options.js';
import { QueueState } from '../base/queue-state.js';
import { DmaFence, fenceContextAlloc, type DmaFenceOps } from '../fence/dma-fence.js';
import { lockdepTask, signallingSection } from '../locking/lockdep.js';

/** Options for a {@link TtmCopyEngine}. */
export interface TtmCopyEngineOptions {
  /** The fences' timeline name (default 'ttm-copy'). */
  readonly name?: string;
  /** Modelled copy speed in bytes per millisecond (> 0); omitted: each ready job ends on the next timer tick. */
  readonly bytesPerMs?: number;
}

const parseOptions = defineOptions('TtmCopyEngine', {
  name: optionalString,
  bytesPerMs: (value, fn, name) => {
    if (value === undefined || (typeof value === 'number' && value > 0 && !Number.isNaN(value))) return value;
    throw invalidArgument(
      fn,
      name,
      value,
      'a positive number of bytes per millisecond, or omitted to copy on the next tick',
    );
  },
});
const parseIdleOptions = defineSignalOnly('TtmCopyEngine.idle');

/** Float slack when comparing a modelled end time with the clock (a nanosecond). */
const EPSILON_MS = 1e-6;

/** The ring is compacted once this many jobs have been taken from its front. */
const COMPACT_AT = 1024;

interface CopyJob {
  readonly fence: DmaFence;
  readonly src: (() => Uint8Array) | null;
  readonly dst: () => Uint8Array;
  /** The dependencies, kept to read their errors when the job runs; null when there were none. */
  readonly deps: readonly DmaFence[] | null;
  /** Dependencies not signaled yet. */
  waiting: number;
  /** Clock time the job became ready (queued, or its last dependency signaled). */
  readyAt: number;
}

/** The front job once started: its resolved views (or why it cannot copy) and its modelled end. */
interface StartedJob {
  readonly job: CopyJob;
  readonly src: Uint8Array | null;
  readonly dst: Uint8Array | null;
  readonly error: Error | null;
  readonly end: number;
}

/**
 * An in-order copy ring that returns a fence per job.
 * @see amdgpu_copy_buffer()
 */
export class TtmCopyEngine implements AsyncDisposable {
  readonly name: string;
  /** Fence context of the ring. @see dma_fence_context_alloc() */
  readonly context: number;
  readonly #bytesPerMs: number | undefined;
  readonly #ops: DmaFenceOps;

  /** Jobs not yet signaled, in queue order: `#jobs[#head..]`. */
  #jobs: (CopyJob | undefined)[] = [];
  #head = 0;
  #seqno = 0;
  #bytesCopied = 0;

  /** The front job once it has started. */
  #current: StartedJob | null = null;
  /** Modelled end of the last job that completed (nothing starts before it). */
  #lastEnd = -Infinity;
  #timer: TimerHandle | null = null;
  #running = false;

  readonly #state = new QueueState(() => this.pendingJobs === 0);

  readonly #onTimer = (): void => {
    this.#timer = null;
    lockdepTask(() => signallingSection(() => this.#run()));
  };

  /**
   * @throws {InvalidArgumentError} for a non-string name or a `bytesPerMs` that is not a
   *   positive number.
   */
  constructor(options?: TtmCopyEngineOptions) {
    const parsed = parseOptions(options);
    this.name = parsed.name ?? 'ttm-copy';
    this.#bytesPerMs = parsed.bytesPerMs as number | undefined;
    this.context = fenceContextAlloc();
    this.#ops = Object.freeze({ getDriverName: () => 'ttm', getTimelineName: () => this.name });
  }

  /**
   * Queues a copy of `src()` into `dst()`, or a clear of `dst()` when `src` is null. The job
   * starts once every fence in `deps` and every earlier job has signaled; the views are resolved
   * then, not now, so they may name memory the caller sets up after this call.
   * @returns the job's fence (it never signals inside this call).
   * @throws {InvalidArgumentError} for a `dst` that is not a function, a `src` that is neither
   *   a function nor null, or a dependency that is not a DmaFence; nothing is queued then.
   * @throws {BugError} after disposal: the engine is gone, copy with the CPU instead.
   * @see amdgpu_copy_buffer()
   * @see amdgpu_fill_buffer()
   */
  copy(src: (() => Uint8Array) | null, dst: () => Uint8Array, deps?: Iterable<DmaFence>): DmaFence {
    if (typeof dst !== 'function') {
      throw new InvalidArgumentError(
        `TtmCopyEngine "${this.name}": copy() dst must be a function ` +
          `returning the destination view, got ${describeValue(dst)}`,
      );
    }
    if (src !== null && typeof src !== 'function') {
      throw new InvalidArgumentError(
        `TtmCopyEngine "${this.name}": copy() src must be a function returning ` +
          `the source view, or null to clear, got ${describeValue(src)}`,
      );
    }
    let list: DmaFence[] | null = null;
    if (deps !== undefined && deps !== null) {
      if (typeof deps !== 'object' || typeof (deps as Partial<Iterable<unknown>>)[Symbol.iterator] !== 'function') {
        throw invalidArgument('TtmCopyEngine.copy', 'deps', deps, 'an iterable of DmaFence (an array), or omitted');
      }
      list = [];
      for (const dep of deps) {
        if (!(dep instanceof DmaFence)) {
          throw new InvalidArgumentError(
            `TtmCopyEngine "${this.name}": copy() dependencies must be DmaFences, got ${describeValue(dep)}`,
          );
        }
        list.push(dep);
      }
      if (list.length === 0) list = null;
    }
    if (this.#state.closed) {
      throw new BugError(
        `TtmCopyEngine "${this.name}" is disposed and takes no more ` +
          `jobs; copy with the CPU (or on a live engine) instead`,
      );
    }
    const fence = new DmaFence(this.#ops, this.context, ++this.#seqno);
    const job: CopyJob = { fence, src, dst, deps: list, waiting: 0, readyAt: getClock().now() };
    if (list !== null) {
      const onDep = (): void => {
        if (--job.waiting > 0) return;
        job.readyAt = getClock().now();
        if (this.#jobs[this.#head] === job) this.#kick();
      };
      for (const dep of list) {
        if (!dep.isSignaled() && dep.addCallback(onDep)) job.waiting++;
      }
    }
    this.#jobs.push(job);
    this.#kick();
    return fence;
  }

  /** Jobs queued whose fences have not signaled yet. */
  get pendingJobs(): number {
    return this.#jobs.length - this.#head;
  }

  /** Bytes written by completed jobs, copies and clears alike (jobs that failed to copy count 0). */
  get bytesCopied(): number {
    return this.#bytesCopied;
  }

  /**
   * Resolves when every job queued so far, and any queued meanwhile, has signaled.
   * @throws rejects with `signal.reason` when aborted (the jobs go on), or
   *   {@link InvalidArgumentError} for options other than `{ signal? }`.
   */
  idle(options?: { readonly signal?: AbortSignal | undefined }): Promise<void> {
    return parseIdleOptions(options, (signal) => this.#state.drain(signal));
  }

  /** Waits for {@link idle}, then refuses new jobs. Idempotent. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.#state.close();
  }

  toString(): string {
    return (
      `TtmCopyEngine "${this.name}" (${this.#state.status}, ${this.pendingJobs} jobs pending, ` +
      `${this.#bytesCopied} bytes copied)`
    );
  }

  /** Arms a timer for the front job once it is ready, unless one is armed or a batch is running. */
  #kick(): void {
    if (this.#timer !== null || this.#running) return;
    const head = this.#jobs[this.#head];
    if (head === undefined || head.waiting > 0) return;
    this.#timer = getClock().setTimer(0, this.#onTimer);
  }

  /** Starts and completes front jobs in order until one is not ready or has not ended yet. */
  #run(): void {
    this.#running = true;
    try {
      const clock = getClock();
      const now = clock.now();
      for (;;) {
        let current = this.#current;
        if (current === null) {
          const job = this.#jobs[this.#head];
          if (job === undefined || job.waiting > 0) break;
          current = this.#current = this.#start(job, now);
        }
        if (current.end > now + EPSILON_MS) {
          this.#timer = clock.setTimer(current.end - now, this.#onTimer);
          break;
        }
        this.#current = null;
        this.#complete(current.job, current.src, current.dst, current.error, Math.min(current.end, now));
      }
    } finally {
      this.#running = false;
    }
    this.#state.wake();
  }

  /**
   * Resolves the job's views and models its end: with a speed, `size / bytesPerMs` after the
   * later of the previous job's end and the moment it became ready; without one, now.
   */
  #start(job: CopyJob, now: number): StartedJob {
    let src: Uint8Array | null = null;
    let dst: Uint8Array | null = null;
    let error: Error | null = null;
    try {
      dst = checkView('destination', job.dst());
      if (job.src !== null) {
        src = checkView('source', job.src());
        if (src.byteLength !== dst.byteLength) {
          error = new BugError(
            `TtmCopyEngine "${this.name}": job ${job.fence.seqno} copies ` +
              `${src.byteLength} bytes into a ${dst.byteLength}-byte destination; ` +
              'source and destination must be the same size (nothing was copied)',
          );
        }
      }
    } catch (err) {
      error =
        err instanceof Error
          ? err
          : new DmaBufError(
              'EIO',
              `TtmCopyEngine "${this.name}": job ${job.fence.seqno}: a view function threw ${describeValue(err)}`,
            );
    }
    const speed = this.#bytesPerMs;
    if (speed === undefined) return { job, src, dst, error, end: now };
    const size = error === null && dst !== null ? dst.byteLength : 0;
    const end = Math.max(this.#lastEnd, job.readyAt) + size / speed;
    return { job, src, dst, error, end };
  }

  #complete(job: CopyJob, src: Uint8Array | null, dst: Uint8Array | null, error: Error | null, end: number): void {
    this.#jobs[this.#head++] = undefined;
    if (this.#head === this.#jobs.length) {
      this.#jobs = [];
      this.#head = 0;
    } else if (this.#head >= COMPACT_AT && this.#head * 2 >= this.#jobs.length) {
      this.#jobs = this.#jobs.slice(this.#head);
      this.#head = 0;
    }
    this.#lastEnd = end;
    const fence = job.fence;
    if (error !== null) {
      fence.setError(error);
    } else if (dst !== null) {
      if (src === null) dst.fill(0);
      else dst.set(src);
      this.#bytesCopied += dst.byteLength;
      if (job.deps !== null) {
        for (const dep of job.deps) {
          const depError = dep.error;
          if (depError !== undefined) {
            fence.setError(depError);
            break;
          }
        }
      }
    }
    fence.signal(end);
  }
}

function checkView(what: string, view: unknown): Uint8Array {
  if (!(view instanceof Uint8Array)) {
    throw new InvalidArgumentError(
      `TtmCopyEngine: the ${what} function must return a Uint8Array, got ${describeValue(view)}`,
    );
  }
  return view;
}
