/**
 * soft-ring: the host's side of one command ring: writing jobs, watching the engine run them.
 *
 * Overview: a {@link SoftRing} owns the ring memory of one engine (see `soft-ring-layout.ts`)
 * and its {@link SoftFenceDriver}. {@link SoftRing.emit} writes a job descriptor into the next
 * slot, publishes the write pointer, wakes the engine and returns the job's hardware fence.
 * The ring has as many credits as slots: a slot is reused only after its previous job's fence
 * was processed, so a full ring refuses (the scheduler in front of it never lets that happen).
 * {@link SoftRing.running} and {@link SoftRing.started} are the hang-detection hooks: what the
 * engine is executing, and a counter that moves whenever it starts a job.
 *
 * Models `drivers/gpu/drm/amd/amdgpu/amdgpu_ring.c` (`amdgpu_ring_alloc()` /
 * `amdgpu_ring_commit()`: write packets, move the write pointer, ring the doorbell).
 *
 * Contract:
 * - Jobs are written in seqno order 1, 2, 3...; the descriptor is complete before the write
 *   pointer moves, so the engine never reads a half-written job.
 * - {@link SoftRing.blame} (engine reset) completes the job the dead engine was running with an
 *   error, so a fresh engine resumes after it.
 *
 * @example
 * ```ts
 * import { SoftRing } from 'dmabuf/soft';
 * const ring = new SoftRing('copy.0', 8);
 * const fence = ring.emit(1, []); // kernel 1 is the built-in noop
 * console.log(fence.seqno, ring.fences.credits); // 1 7
 * // No engine runs this ring: fail its pending job as a teardown would (a pending fence keeps
 * // the process alive, like work in flight on a GPU).
 * ring.fences.forceCompletion('ENODEV');
 * console.log(fence.status, fence.error?.message); // error, with ENODEV
 * ```
 */

import { BugError, ERRNO, InvalidArgumentError, describeValue, type ErrnoCode } from '../../base/errors.js';
import { SoftFenceDriver, type SoftHwFence } from './soft-fence.js';
import { MAX_ARGS, RingWord, SlotWord, ringBytes, seqnoAfter, slotArg, slotOf, slotWord } from './soft-ring-layout.js';

/** Largest ring: 2^16 slots. */
export const MAX_RING_SIZE = 1 << 16;

/** One engine's command ring, host side. @see struct amdgpu_ring */
export class SoftRing {
  readonly name: string;
  /** Slots (credits). */
  readonly size: number;
  /** The ring memory, shared with the engine worker. */
  readonly buffer: SharedArrayBuffer;
  readonly fences: SoftFenceDriver;
  readonly #i32: Int32Array;
  readonly #f64: Float64Array;

  /**
   * @throws {InvalidArgumentError} unless `size` is a power of two in 1 .. 65536 (so slots map
   *   the same way before and after the 32-bit seqnos wrap).
   */
  constructor(name: string, size: number) {
    if (!Number.isSafeInteger(size) || size < 1 || size > MAX_RING_SIZE || (size & (size - 1)) !== 0) {
      throw new InvalidArgumentError(
        `SoftRing ${name}: size must be a power of two in 1 .. ${MAX_RING_SIZE}, got ${describeValue(size)}`,
      );
    }
    this.name = name;
    this.size = size;
    this.buffer = new SharedArrayBuffer(ringBytes(size));
    this.#i32 = new Int32Array(this.buffer);
    this.#f64 = new Float64Array(this.buffer);
    this.#i32[RingWord.Size] = size;
    this.fences = new SoftFenceDriver(this.#i32, name);
  }

  /**
   * Writes a job (kernel id and float64 argument words) into the next slot and wakes the engine.
   * @throws {BugError} when the ring is full or its fences were forced (lost, destroyed).
   * @see amdgpu_ring_commit()
   */
  emit(kernel: number, args: ArrayLike<number>): SoftHwFence {
    if (args.length > MAX_ARGS) {
      throw new BugError(`SoftRing ${this.name}: ${args.length} argument words; a slot holds ${MAX_ARGS}`);
    }
    const seqno = this.fences.emitted + 1;
    const fence = this.fences.emit(seqno);
    const i32 = this.#i32;
    const slot = slotOf(seqno, this.size);
    i32[slotWord(slot, SlotWord.Seqno)] = seqno | 0;
    i32[slotWord(slot, SlotWord.Kernel)] = kernel;
    i32[slotWord(slot, SlotWord.Status)] = 0;
    i32[slotWord(slot, SlotWord.Argc)] = args.length;
    const base = slotArg(slot, 0);
    for (let i = 0; i < args.length; i++) this.#f64[base + i] = args[i]!;
    Atomics.store(i32, RingWord.Submitted, seqno | 0);
    // The doorbell: only an idle engine waits for it (it looks once more after saying so).
    if (Atomics.load(i32, RingWord.Idle) !== 0) Atomics.notify(i32, RingWord.Submitted);
    return fence;
  }

  /** The seqno the engine is executing, or 0 when it is idle (a hang-detection hook). */
  get running(): number {
    const running = Atomics.load(this.#i32, RingWord.Running);
    return running !== 0 && seqnoAfter(running, Atomics.load(this.#i32, RingWord.Completed)) ? running : 0;
  }

  /** Jobs the engines of this ring have started; it stops moving when one hangs. */
  get started(): number {
    return Atomics.load(this.#i32, RingWord.Started);
  }

  /**
   * After the engine died: completes the job it was running, if any, with `code`, so the next
   * engine resumes after it. Call only while no engine runs this ring.
   * @returns the blamed seqno (as the ring stores it), or 0 when the engine was idle.
   */
  blame(code: ErrnoCode): number {
    const i32 = this.#i32;
    const running = this.running;
    Atomics.store(i32, RingWord.Running, 0);
    if (running === 0) return 0;
    i32[slotWord(slotOf(running, this.size), SlotWord.Status)] = ERRNO[code];
    Atomics.store(i32, RingWord.Completed, running);
    return running;
  }

  toString(): string {
    return `SoftRing(${this.name}, ${this.fences.pendingCount}/${this.size} in flight)`;
  }
}
