/// <reference types="@webgpu/types" />
/**
 * webgpu-ring: a WebGPU queue as a ring whose submissions are hardware fences.
 *
 * Overview: WebGPU has no per-submission completion object; `queue.onSubmittedWorkDone()` is
 * queue-wide and its promises settle in call order. A {@link WebGpuRing} turns each
 * {@link WebGpuRing.submit} into a {@link DmaFence} with the next seqno on the ring's fence
 * context, signalled when an `onSubmittedWorkDone()` called after that submission resolves. The
 * ring keeps one such call outstanding at a time: when it resolves, every submission made
 * before it was called is done, and one more call covers whatever was submitted meanwhile (so
 * 16 submissions in flight cost about two completion promises, not 16). Completion is processed
 * like a GPU interrupt: when submission N is known done, every fence up to N signals, in seqno
 * order, in one pass. Each submission runs inside a
 * `validation` and an `out-of-memory` error scope, so a submission WebGPU rejects (a destroyed
 * buffer, an invalid command buffer, an allocation failure) gives its own fence the error. When
 * the device is lost, {@link WebGpuRing.forceCompletion} signals every pending fence with the
 * loss as its error and the ring refuses further submissions.
 *
 * Models `drivers/gpu/drm/amd/amdgpu/amdgpu_fence.c` and the submission half of
 * `amdgpu_ring.c`: `amdgpu_fence_emit()` (a seqno per submission on the ring's context),
 * `amdgpu_fence_process()` (signal everything up to the completed seqno),
 * `amdgpu_fence_driver_force_completion()` (after a reset or unplug) and
 * `amdgpu_fence_wait_empty()`. Differences: the "completed seqno" is learnt from promises, not
 * read from memory; an error is known per submission (error scopes, or Dawn's synchronous error
 * report) where a kernel ring learns of it by a reset.
 *
 * Contract:
 * - Seqnos are 1, 2, 3... on {@link WebGpuRing.context}; fences signal in seqno order, never
 *   inside `submit()`, each once both its completion and its error scopes are known.
 * - With `errorScopes` (the default), a fence whose submission WebGPU rejected signals with a
 *   `DmaBufError('EIO')` (validation) or `('ENOMEM')` (out of memory) carrying the WebGPU error
 *   as `cause`. Without them, errors forwarded to {@link WebGpuRing.uncapturedError} follow its
 *   attribution rule: exact for an error raised inside `queue.submit()` (Dawn in Node), every
 *   pending fence otherwise (browsers, which report errors asynchronously).
 * - After {@link WebGpuRing.forceCompletion} (device lost) every fence not yet signalled
 *   signals with that error; later `submit()` calls throw it. A fence whose completion was
 *   reported before the loss keeps its success: WebGPU cannot say more.
 * - Completion runs in a validator task of its own, inside a fence signalling section.
 *
 * @example
 * ```ts
 * import { WebGpuRing, requestWebGpuDevice } from 'dmabuf/webgpu';
 * process.env.VK_ICD_FILENAMES ??= '/usr/lib/chromium/vk_swiftshader_icd.json';
 * const { device, release } = await requestWebGpuDevice();
 * const ring = new WebGpuRing(device, { name: 'gfx' });
 * const fence = ring.submit([device.createCommandEncoder().finish()]);
 * await fence.wait();
 * console.log(fence.seqno, fence.status); // 1 signaled
 * device.destroy();
 * release();
 * ```
 */

import { DmaBufError, InvalidArgumentError, describeValue } from '../../base/errors.js';
import { DmaFence, fenceContextAlloc, type DmaFenceOps } from '../../fence/dma-fence.js';
import { lockdepTask, signallingSection } from '../../locking/lockdep.js';

/** Options of a {@link WebGpuRing}. */
export interface WebGpuRingOptions {
  /** The fences' timeline name (default `'webgpu-queue'`). */
  readonly name?: string;
  /**
   * Wrap each submission in error scopes so its own fence gets its error (default true). They
   * cost Dawn two extra promises per submission (a third to a half of an empty submission's time
   * on SwiftShader, `bench/webgpu-submit.bench.ts`); without them, forward the device's
   * uncaptured errors to {@link WebGpuRing.uncapturedError} (a `WebGpuDevice` does): on
   * Dawn, which raises a submission's error inside `queue.submit()`, attribution stays exact;
   * in a browser an error fails every fence still pending.
   */
  readonly errorScopes?: boolean;
}

/** One submission not yet signalled. */
interface RingEntry {
  readonly fence: DmaFence;
  /** The queue reported the submission done. */
  done: boolean;
  /** Error scopes still to settle. */
  scopes: number;
  error: Error | null;
}

/** Turns a WebGPU error into the fence's error. */
function submissionError(ring: string, seqno: number, error: GPUError): DmaBufError {
  const oom = typeof GPUOutOfMemoryError === 'function' && error instanceof GPUOutOfMemoryError;
  const kind = oom || error.constructor?.name === 'GPUOutOfMemoryError' ? 'ENOMEM' : 'EIO';
  return new DmaBufError(kind, `${ring} submission ${seqno} was rejected by WebGPU: ${error.message}`, {
    cause: error,
  });
}

/**
 * The ring inside `queue.submit()` right now. Dawn (Node) raises a submission's validation error
 * synchronously inside that call, so an uncaptured error seen then belongs to that submission.
 */
let submittingRing: WebGpuRing | null = null;

/**
 * A WebGPU queue whose submissions are hardware fences.
 * @see amdgpu_fence_emit()
 */
export class WebGpuRing {
  readonly name: string;
  /** Fence context of the ring. @see dma_fence_context_alloc() */
  readonly context: number;
  readonly device: GPUDevice;
  /** Whether each submission runs in its own error scopes. */
  readonly errorScopes: boolean;
  readonly #ops: DmaFenceOps;
  /** Pending submissions, oldest first: `#pending[#head..]`. */
  #pending: (RingEntry | undefined)[] = [];
  #head = 0;
  #seqno = 0;
  #completed = 0;
  #last: DmaFence | null = null;
  #dead: Error | null = null;
  /** The seqno covered by the outstanding `onSubmittedWorkDone()`, 0 when none is. */
  #requested = 0;
  /** An uncaptured error raised inside the current `queue.submit()` call. */
  #submitError: Error | null = null;
  readonly #onWorkDone = (): void => this.#workDone(null);
  readonly #onWorkDoneFailed = (error: unknown): void => this.#workDone(error);

  /** @throws {InvalidArgumentError} for a device that is not a GPUDevice-like object or a bad name. */
  constructor(device: GPUDevice, options: WebGpuRingOptions = {}) {
    if (device === null || typeof device !== 'object' || typeof device.queue?.submit !== 'function')
      throw new InvalidArgumentError(`WebGpuRing: device must be a GPUDevice, got ${describeValue(device)}`);
    const name = options.name ?? 'webgpu-queue';
    if (typeof name !== 'string')
      throw new InvalidArgumentError(`WebGpuRing: name must be a string, got ${describeValue(name)}`);
    this.device = device;
    this.name = name;
    this.errorScopes = options.errorScopes ?? true;
    this.context = fenceContextAlloc();
    this.#ops = Object.freeze({ getDriverName: () => 'webgpu', getTimelineName: () => this.name });
  }

  /** The seqno of the last submission (0 before the first). */
  get lastSeqno(): number {
    return this.#seqno;
  }

  /** The highest seqno signalled. */
  get completedSeqno(): number {
    return this.#completed;
  }

  /** Submissions whose fences have not signalled yet. */
  get pendingCount(): number {
    return this.#pending.length - this.#head;
  }

  /** The error the ring was stopped with (device lost), or null while it works. */
  get deadError(): Error | null {
    return this.#dead;
  }

  /**
   * Submits command buffers and returns their hardware fence.
   * @throws {InvalidArgumentError} when `commandBuffers` is not an array; nothing is submitted.
   * @throws {DmaBufError} ENODEV (the loss error) after the device was lost.
   * @see amdgpu_fence_emit()
   */
  submit(commandBuffers: readonly GPUCommandBuffer[]): DmaFence {
    if (!Array.isArray(commandBuffers))
      throw new InvalidArgumentError(
        `WebGpuRing ${this.name}: submit() takes an array of GPUCommandBuffers, got ${describeValue(commandBuffers)}`,
      );
    if (this.#dead !== null) throw this.#dead;
    const device = this.device;
    const scoped = this.errorScopes;
    if (scoped) {
      device.pushErrorScope('out-of-memory');
      device.pushErrorScope('validation');
    }
    this.#submitError = null;
    submittingRing = this;
    try {
      device.queue.submit(commandBuffers);
    } catch (error) {
      this.#submitError = null;
      if (scoped) {
        void device.popErrorScope().catch(() => {});
        void device.popErrorScope().catch(() => {});
      }
      throw new InvalidArgumentError(
        `WebGpuRing ${this.name}: queue.submit() refused its argument: ` +
          `${error instanceof Error ? error.message : String(error)}`,
        { cause: error },
      );
    } finally {
      submittingRing = null;
    }
    const seqno = ++this.#seqno;
    const fence = new DmaFence(this.#ops, this.context, seqno);
    const entry: RingEntry = { fence, done: false, scopes: scoped ? 2 : 0, error: null };
    if (this.#submitError !== null) {
      // The device wraps WebGPU's error; name the submission after the original.
      const cause = (this.#submitError as { cause?: unknown }).cause;
      entry.error = submissionError(
        this.name,
        seqno,
        (cause instanceof Object ? cause : this.#submitError) as GPUError,
      );
      this.#submitError = null;
    }
    this.#pending.push(entry);
    this.#last = fence;
    if (scoped) {
      const onScope = (error: GPUError | null): void => {
        if (error !== null && entry.error === null) entry.error = submissionError(this.name, seqno, error);
        entry.scopes--;
        this.#process();
      };
      const onScopeFailed = (error: unknown): void => {
        entry.error ??= new DmaBufError('EIO', `${this.name} submission ${seqno}: popErrorScope() failed`, {
          cause: error,
        });
        entry.scopes--;
        this.#process();
      };
      device.popErrorScope().then(onScope, onScopeFailed);
      device.popErrorScope().then(onScope, onScopeFailed);
    }
    // One outstanding onSubmittedWorkDone() at a time: when it resolves, everything submitted
    // before it was called is done, and one more call covers whatever came in meanwhile.
    if (this.#requested === 0) this.#request();
    return fence;
  }

  /**
   * A fence for everything queued so far (`writeBuffer` included): an empty submission.
   * @see amdgpu_fence_emit()
   */
  emit(): DmaFence {
    return this.submit([]);
  }

  /** Resolves once every submission so far has signalled. @see amdgpu_fence_wait_empty() */
  async idle(): Promise<void> {
    const last = this.#last;
    if (last !== null) await last.wait();
  }

  /**
   * An error WebGPU raised outside any scope (the owner forwards the device's
   * `uncapturederror` events here). With error scopes, submissions have their own errors and this
   * does nothing. Without them, the attribution rule is:
   * - raised while this ring's `queue.submit()` runs (Dawn reports a submission's validation
   *   error synchronously): that submission's fence gets it, and only that one;
   * - raised while another ring submits: not this ring's;
   * - raised at any other time (browsers report errors asynchronously; the user's own calls):
   *   every fence still pending gets it (conservative: a fence may fail for a neighbour's error).
   * @returns how many fences got (or will get) the error.
   */
  uncapturedError(error: Error): number {
    if (this.errorScopes) return 0;
    if (submittingRing === this) {
      this.#submitError ??= error;
      return 1;
    }
    if (submittingRing !== null) return 0;
    let count = 0;
    for (let i = this.#head; i < this.#pending.length; i++) {
      const entry = this.#pending[i]!;
      if (entry.error === null) {
        entry.error = error;
        count++;
      }
    }
    return count;
  }

  /**
   * Signals every pending fence with `error` (after a device loss) and refuses later
   * submissions with it. Idempotent: the first error stays.
   * @see amdgpu_fence_driver_force_completion()
   */
  forceCompletion(error: Error): void {
    this.#dead ??= error;
    for (const entry of this.#pending) {
      if (entry === undefined) continue;
      entry.error ??= error;
      entry.done = true;
      entry.scopes = 0;
    }
    this.#run();
  }

  toString(): string {
    const state = this.#dead === null ? 'live' : 'dead';
    return `WebGpuRing ${this.name} (${state}, seqno ${this.#completed}/${this.#seqno})`;
  }

  /** Asks the queue for the completion of everything submitted so far. */
  #request(): void {
    this.#requested = this.#seqno;
    this.device.queue.onSubmittedWorkDone().then(this.#onWorkDone, this.#onWorkDoneFailed);
  }

  /** The outstanding `onSubmittedWorkDone()` settled: every submission up to its seqno is done. */
  #workDone(failure: unknown): void {
    const upTo = this.#requested;
    this.#requested = 0;
    for (let i = this.#head; i < this.#pending.length; i++) {
      const e = this.#pending[i]!;
      if (e.fence.seqno > upTo) break;
      if (failure !== null)
        e.error ??= new DmaBufError('EIO', `${this.name} submission ${e.fence.seqno}: onSubmittedWorkDone() rejected`, {
          cause: failure,
        });
      e.done = true;
    }
    if (this.#seqno > upTo && this.#dead === null) this.#request();
    this.#process();
  }

  #process(): void {
    const head = this.#pending[this.#head];
    if (head === undefined || !head.done || head.scopes > 0) return;
    this.#run();
  }

  /**
   * The interrupt handler: signals every front submission that is done with its scopes known.
   * @see amdgpu_fence_process()
   */
  #run(): void {
    lockdepTask(() =>
      signallingSection(() => {
        for (;;) {
          const entry = this.#pending[this.#head];
          if (entry === undefined || !entry.done || entry.scopes > 0) break;
          this.#pending[this.#head++] = undefined;
          if (entry.error !== null) entry.fence.setError(entry.error);
          this.#completed = entry.fence.seqno;
          entry.fence.signal();
        }
        if (this.#head === this.#pending.length) {
          this.#pending = [];
          this.#head = 0;
        } else if (this.#head >= 1024 && this.#head * 2 >= this.#pending.length) {
          this.#pending = this.#pending.slice(this.#head);
          this.#head = 0;
        }
      }),
    );
  }
}
