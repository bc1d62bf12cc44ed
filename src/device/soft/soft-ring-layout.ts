/**
 * soft-ring-layout: the command ring's format in shared memory, as both sides read and write it.
 *
 * Overview: each engine of the soft device is fed by a ring of fixed-size job descriptors in a
 * `SharedArrayBuffer`. The host (the main thread, or whichever thread owns the device) writes a
 * descriptor into the slot of its seqno and publishes the seqno in the header's write pointer
 * (`SUBMITTED`); the engine worker executes descriptors in order, writes each job's status into
 * its slot, publishes the last completed seqno (`COMPLETED`) and wakes the host. One wake makes
 * the host signal every hardware fence up to that seqno. Nothing else travels per job: no
 * `postMessage`, no allocation.
 *
 * Models a GPU ring buffer and its packets (amdgpu's `amdgpu_ring` write pointer, the fence
 * value the engine writes back to memory, the PM4 packet format), reduced to one packet kind:
 * "run kernel K with these arguments".
 *
 * Layout (little-endian, as every JS engine's typed arrays):
 * - Header, 16 32-bit words: {@link RingWord}.
 * - Slots of {@link SLOT_BYTES} bytes; seqno s lives in slot `(s - 1) % size`. A slot holds the
 *   seqno (words 0), kernel id (1), status (2: 0 or a positive errno, written by the engine),
 *   argument count (3), then up to {@link MAX_ARGS} float64 arguments from byte 16.
 * - Seqnos are 32-bit and wrap; compare them with {@link seqnoAfter}.
 *
 * Contract: the host writes a slot only when the engine has completed and the host has
 * processed the job that used it before (credits); the engine writes a slot's status only
 * between reading `SUBMITTED` past it and publishing `COMPLETED` past it.
 *
 * @example
 * ```ts
 * import { RING_HEADER_BYTES, RingWord, SLOT_BYTES, ringBytes } from 'dmabuf/soft';
 * const ring = new Int32Array(new SharedArrayBuffer(ringBytes(64)));
 * console.log(ring.length * 4 === RING_HEADER_BYTES + 64 * SLOT_BYTES, RingWord.Completed); // true 1
 * ```
 */

/** Header words of a ring. */
export const RingWord = {
  /** Last seqno the host published (the write pointer). The engine waits on it. */
  Submitted: 0,
  /** Last seqno the engine completed (the fence value written back). The host waits on it. */
  Completed: 1,
  /**
   * Seqno the engine is executing, while it is after `Completed` (else the engine is idle): what a
   * hang or a crash is blamed on.
   */
  Running: 2,
  /** Number of slots. */
  Size: 3,
  /** Jobs the engine has started (all workers of the ring together): a heartbeat for hang detection. */
  Started: 4,
  /** Non-zero while the engine waits for work: the host then wakes it after publishing jobs. */
  Idle: 5,
} as const;

export const RING_HEADER_BYTES = 64;
export const SLOT_BYTES = 128;
/** Float64 arguments per slot. */
export const MAX_ARGS = 14;
/** Slot words (32-bit): seqno, kernel, status, argc. */
export const SlotWord = { Seqno: 0, Kernel: 1, Status: 2, Argc: 3 } as const;
/** Byte offset of the float64 arguments inside a slot. */
export const SLOT_ARGS_OFFSET = 16;

/** Bytes of a ring of `size` slots. */
export function ringBytes(size: number): number {
  return RING_HEADER_BYTES + size * SLOT_BYTES;
}

/** Index of seqno `seqno`'s slot in a ring of `size` slots. */
export function slotOf(seqno: number, size: number): number {
  return ((seqno - 1) >>> 0) % size;
}

/** Int32 index of a slot word. */
export function slotWord(slot: number, word: number): number {
  return (RING_HEADER_BYTES + slot * SLOT_BYTES) / 4 + word;
}

/** Float64 index of a slot's argument `i`. */
export function slotArg(slot: number, i: number): number {
  return (RING_HEADER_BYTES + slot * SLOT_BYTES + SLOT_ARGS_OFFSET) / 8 + i;
}

/** Is 32-bit seqno `a` after `b` (wrapping)? */
export function seqnoAfter(a: number, b: number): boolean {
  return ((a - b) | 0) > 0;
}
