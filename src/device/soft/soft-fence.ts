/**
 * soft-fence: the soft device's hardware fences and the interrupt handler that signals them.
 *
 * Overview: every job written into a ring gets a {@link SoftHwFence} with the job's seqno on the
 * ring's fence context. The engine worker publishes the last seqno it completed in the ring
 * header; {@link SoftFenceDriver.process} (the interrupt handler) reads it once and signals, in
 * order, every fence up to it, each with the error its job's slot reports. The driver keeps one
 * {@link SharedWordWaiter} on that header word while fences are pending, so one wake of the host
 * thread settles a whole batch of completed jobs, and an idle device holds nothing open.
 *
 * Models `drivers/gpu/drm/amd/amdgpu/amdgpu_fence.c`: `amdgpu_fence_emit()` (a fence per
 * emitted job, slot per seqno), `amdgpu_fence_process()` (read the written-back seqno, signal
 * everything up to it) and `amdgpu_fence_driver_force_completion()` (teardown, device loss).
 *
 * Contract:
 * - Fences signal in seqno order, never inside {@link SoftFenceDriver.emit}; a fence's slot is
 *   free for the next job once the fence has been processed (`processed` is updated before
 *   the fence signals, so callbacks may submit more work).
 * - A job whose slot status is non-zero signals with a `DmaBufError` of that errno.
 * - {@link SoftFenceDriver.forceCompletion} signals every pending fence with the given error and
 *   leaves nothing pending; later completions written by an engine are ignored.
 * - Polling a fence (`isSignaled`, `status`) runs the handler: results are visible without
 *   waiting for the wake.
 *
 * @example
 * ```ts
 * import { RingWord, SoftFenceDriver, ringBytes } from 'dmabuf/soft';
 * const ring = new Int32Array(new SharedArrayBuffer(ringBytes(4)));
 * ring[RingWord.Size] = 4;
 * const driver = new SoftFenceDriver(ring, 'gfx.0');
 * const fence = driver.emit(1);
 * Atomics.store(ring, RingWord.Completed, 1); // what the engine worker does
 * console.log(fence.isSignaled()); // true
 * ```
 */

import { BugError, DmaBufError, type ErrnoCode } from '../../base/errors.js';
import { DmaFence, fenceContextAlloc, type DmaFenceOps } from '../../fence/dma-fence.js';
import { SharedWordWaiter, errnoCode } from '../../fence/shared-wait.js';
import { RingWord, SlotWord, seqnoAfter, slotOf, slotWord } from './soft-ring-layout.js';

/** A hardware fence: signalled when the engine has executed the job with this seqno. */
export class SoftHwFence extends DmaFence {
  readonly #driver: SoftFenceDriver;

  static readonly #ops: DmaFenceOps<SoftHwFence> = Object.freeze({
    getDriverName: () => 'soft',
    getTimelineName: (f: SoftHwFence) => f.#driver.name,
    signaled(f: SoftHwFence): boolean {
      f.#driver.process();
      return f.signaledFlag;
    },
  });

  /** @internal made by {@link SoftFenceDriver.emit}. */
  constructor(driver: SoftFenceDriver, seqno: number) {
    super(SoftHwFence.#ops, driver.context, seqno);
    this.#driver = driver;
  }
}

/**
 * The fences of one ring: emitted, pending, and signalled from the engine's write-back.
 * @see amdgpu_fence_driver_init_ring()
 */
export class SoftFenceDriver {
  /** The ring's name (the fences' timeline name). */
  readonly name: string;
  /** The fence context of the ring, kept across engine resets as in the kernel. */
  readonly context: number = fenceContextAlloc();
  readonly #i32: Int32Array;
  readonly #size: number;
  /** Pending fences by slot. */
  readonly #pending: (SoftHwFence | undefined)[];
  #emitted = 0;
  #processed = 0;
  #forced: ErrnoCode | undefined = undefined;
  readonly #waiter: SharedWordWaiter;

  constructor(ring: Int32Array, name: string) {
    this.#i32 = ring;
    this.#size = ring[RingWord.Size]!;
    this.name = name;
    this.#pending = new Array<SoftHwFence | undefined>(this.#size);
    this.#waiter = new SharedWordWaiter(ring, RingWord.Completed, () => this.process());
  }

  /** Last seqno given a fence. */
  get emitted(): number {
    return this.#emitted;
  }

  /** Last seqno whose fence was signalled. */
  get processed(): number {
    return this.#processed;
  }

  /** Fences emitted and not yet signalled. */
  get pendingCount(): number {
    return this.#emitted - this.#processed;
  }

  /** The pending fence that will signal next, or undefined when none is pending. */
  oldestPending(): SoftHwFence | undefined {
    return this.#processed < this.#emitted ? this.#pending[slotOf(this.#processed + 1, this.#size)] : undefined;
  }

  /** Free slots: jobs that may still be written before one completes. */
  get credits(): number {
    return this.#size - this.pendingCount;
  }

  /**
   * The fence of the job with `seqno`, the next one to emit.
   * @throws {BugError} when `seqno` is not the next seqno, the ring is full, or fences were forced.
   * @see amdgpu_fence_emit()
   */
  emit(seqno: number): SoftHwFence {
    if (seqno !== this.#emitted + 1 || this.credits === 0 || this.#forced !== undefined) {
      throw new BugError(
        `SoftFenceDriver ${this.name}: emit(${seqno}) with ${this.#emitted} emitted, ${this.credits} credits` +
          `${this.#forced === undefined ? '' : `, forced to ${this.#forced}`}; ` +
          'emit the next seqno into a ring with room',
      );
    }
    const fence = new SoftHwFence(this, seqno);
    this.#pending[slotOf(seqno, this.#size)] = fence;
    this.#emitted = seqno;
    this.#waiter.start();
    return fence;
  }

  /**
   * The interrupt handler: signals every fence up to the seqno the engine wrote back.
   * @returns how many fences it signalled. @see amdgpu_fence_process()
   */
  process(): number {
    if (this.#forced !== undefined) return 0;
    const completed = Atomics.load(this.#i32, RingWord.Completed);
    let count = 0;
    while (this.#processed < this.#emitted && seqnoAfter(completed, this.#processed | 0)) {
      const seqno = ++this.#processed;
      const slot = slotOf(seqno, this.#size);
      const fence = this.#pending[slot]!;
      this.#pending[slot] = undefined;
      const status = this.#i32[slotWord(slot, SlotWord.Status)]!;
      if (status !== 0) this.#fail(fence, errnoCode(status) ?? 'EIO', 'failed on the engine');
      fence.signal();
      count++;
    }
    if (this.#processed === this.#emitted) this.#waiter.stop();
    return count;
  }

  /**
   * Signals every pending fence with `code` (teardown, device loss); later write-backs are
   * ignored and {@link emit} refuses. Idempotent. @see amdgpu_fence_driver_force_completion()
   */
  forceCompletion(code: ErrnoCode): void {
    if (this.#forced !== undefined) return;
    this.process();
    this.#forced = code;
    this.#waiter.stop();
    while (this.#processed < this.#emitted) {
      const slot = slotOf(++this.#processed, this.#size);
      const fence = this.#pending[slot]!;
      this.#pending[slot] = undefined;
      this.#fail(fence, code, 'was cancelled');
      fence.signal();
    }
  }

  #fail(fence: SoftHwFence, code: ErrnoCode, what: string): void {
    fence.setError(new DmaBufError(code, `soft job ${fence.seqno} on ${this.name} ${what} (${code})`));
  }

  toString(): string {
    return `SoftFenceDriver(${this.name}: ${this.#processed}/${this.#emitted})`;
  }
}
