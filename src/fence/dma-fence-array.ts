/**
 * dma-fence-array: one fence standing for a fixed set of fences.
 *
 * Overview: a {@link DmaFenceArray} signals when every member has signaled, or, built with
 * `signalOnAny`, when the first one has. It is how a job with several dependencies, or a merge
 * of several sync files, is handed around as one fence. The array carries the first error any
 * member reported. Arrays hold only plain fences: to combine containers, flatten them first with
 * `unwrap()` / `unwrapMerge()` from `dma-fence-unwrap.ts`.
 *
 * Models `drivers/dma-buf/dma-fence-array.c` and `include/linux/dma-fence-array.h` as of v6.x,
 * signal-on-any included (newer kernels removed it).
 *
 * Contract:
 * - The member list is copied and frozen at construction; it is never empty and never holds a
 *   container (array or chain), since nesting is what the kernel forbids to bound recursion.
 * - Nothing is watched until signaling is enabled (a callback, a wait, `enableSwSignaling`).
 *   Enabling puts one callback on every member; members that have already signaled count at
 *   once. When the count of outstanding members reaches zero (one member for `signalOnAny`) the
 *   array signals synchronously, inside the member's `signal()` or inside the enabling call.
 * - The array's error is the first error a member is seen with, recorded before the array
 *   signals and never replaced: members that finish with an error after the array signaled
 *   (possible with `signalOnAny`) change nothing.
 * - Polling an array that nobody enabled (`isSignaled()`) counts signaled members without
 *   arming anything. When that count says "done", the first error among the signaled members
 *   (in member order) becomes the array's error. The kernel's v6.x code drops member errors on
 *   this path; newer kernels record them, and so does this port.
 * - Deadlines are passed on to every member.
 * - Once a `signalOnAny` array has signaled, its callbacks are taken off the members still
 *   pending, so long-lived members do not keep it reachable (the kernel leaves them in place
 *   until each member signals).
 *
 * @example
 * ```ts
 * import { DmaFence, DmaFenceArray, fenceContextAlloc } from 'dmabuf';
 * const ops = { getDriverName: () => 'example', getTimelineName: () => 'copy' };
 * const copies = fenceContextAlloc();
 * const a = new DmaFence(ops, copies, 1);
 * const b = new DmaFence(ops, copies, 2);
 * const both = new DmaFenceArray([a, b], fenceContextAlloc(), 1);
 * both.enableSwSignaling();
 * a.signal();
 * console.log(both.signaledFlag); // false: b is still running
 * b.setError('EIO');
 * b.signal();
 * console.log(both.status, both.error?.message); // 'error' and b's error
 * ```
 */

import { BugError } from '../base/errors.js';
import { defineOptions, invalidArgument, optionalBoolean, requiredIndex } from '../base/options.js';
import { DmaFence, type DmaFenceOps } from './dma-fence.js';

const parseInit = defineOptions('DmaFenceArray', { signalOnAny: optionalBoolean });

/** Options for {@link DmaFenceArray}. */
export interface DmaFenceArrayInit {
  /** Signal when the first member signals instead of the last. @see dma_fence_array_create() */
  readonly signalOnAny?: boolean;
}

/**
 * A fence that signals when all (or, with `signalOnAny`, any) of its members have signaled
 * (`struct dma_fence_array`).
 * @see dma_fence_array_create()
 */
export class DmaFenceArray extends DmaFence {
  /** The members, in the order given. Frozen; the array owns this copy. */
  readonly fences: readonly DmaFence[];
  /** Whether the first member to signal completes the array. */
  readonly signalOnAny: boolean;
  /** Members still to signal before the array does; meaningful once signaling is enabled. */
  #pending: number;
  // One callback per array, shared by every member: no closure per member.
  readonly #onMemberSignaled: (member: DmaFence) => void;

  /**
   * @param fences the members, copied; at least one, none of them a container.
   * @param context the array's own timeline, usually a fresh `fenceContextAlloc()`.
   * @param seqno the array's position on that timeline.
   * @throws {BugError} for a member that is an array or a chain (the object is not created).
   * @throws {InvalidArgumentError} when `fences` is not a non-empty array of fences, or for a
   *   bad context, seqno or option.
   * @see dma_fence_array_init()
   */
  constructor(fences: readonly DmaFence[], context: number, seqno: number, init?: DmaFenceArrayInit) {
    const members = checkMembers(fences);
    requiredIndex(context, 'DmaFenceArray', 'context');
    requiredIndex(seqno, 'DmaFenceArray', 'seqno');
    const signalOnAny = parseInit(init).signalOnAny ?? false;
    // Waiting for all (or any) of the members inherits their long-running nature (seed 001).
    super(DmaFenceArray.#ops as DmaFenceOps, context, seqno, { longRunning: members.some((m) => m.isLongRunning) });
    this.fences = members;
    this.signalOnAny = signalOnAny;
    this.#pending = signalOnAny ? 1 : members.length;
    this.#onMemberSignaled = (member) => this.#memberSignaled(member);
  }

  /** Number of members. */
  get numFences(): number {
    return this.fences.length;
  }

  /** Always true: an array is a container, so it cannot be a member of another array. @see dma_fence_is_container() */
  override get isContainer(): boolean {
    return true;
  }

  /** `f` as an array, or null when it is not one. @see to_dma_fence_array() */
  static toArray(f: DmaFence | null | undefined): DmaFenceArray | null {
    return f instanceof DmaFenceArray ? f : null;
  }

  /**
   * Whether `f` belongs to `context`: for an array, whether every member does.
   * @see dma_fence_match_context()
   */
  static matchContext(f: DmaFence, context: number): boolean {
    checkFence('DmaFenceArray.matchContext', 'f', f);
    requiredIndex(context, 'DmaFenceArray.matchContext', 'context');
    if (!(f instanceof DmaFenceArray)) return f.context === context;
    for (const member of f.fences) {
      if (member.context !== context) return false;
    }
    return true;
  }

  /**
   * The members of `head` when it is an array, otherwise `head` itself once. Takes nothing and
   * arms nothing. @see dma_fence_array_for_each()
   */
  static members(head: DmaFence): Iterable<DmaFence> {
    checkFence('DmaFenceArray.members', 'head', head);
    return head instanceof DmaFenceArray ? head.fences : [head];
  }

  static readonly #ops: DmaFenceOps<DmaFenceArray> = Object.freeze({
    getDriverName: () => 'dma_fence_array',
    getTimelineName: () => 'unbound',
    enableSignaling: (array: DmaFenceArray) => array.#enable(),
    signaled: (array: DmaFenceArray) => array.#poll(),
    setDeadline(array: DmaFenceArray, deadline: number): void {
      for (const member of array.fences) member.setDeadline(deadline);
    },
  });

  /** @see dma_fence_array_enable_signaling() */
  #enable(): boolean {
    const members = this.fences;
    const callback = this.#onMemberSignaled;
    for (let i = 0; i < members.length; i++) {
      const member = members[i]!;
      if (member.lrAddCallback(callback)) {
        // A member's enabling can signal an earlier member and so finish the array right here.
        if (this.signaledFlag) {
          this.#detach();
          return true;
        }
        continue;
      }
      this.#recordError(member);
      if (--this.#pending === 0) {
        this.#detach();
        return false;
      }
    }
    return true;
  }

  #memberSignaled(member: DmaFence): void {
    this.#recordError(member);
    // Exactly zero: later members of a signal-on-any array drive the count below zero harmlessly.
    if (--this.#pending !== 0) return;
    this.#detach();
    this.signal();
  }

  /** @see dma_fence_array_signaled() */
  #poll(): boolean {
    if (this.signalingEnabled) return this.#pending <= 0;
    // Nobody armed the array: count on a local so that a later enable starts from the full count.
    let pending = this.#pending;
    const members = this.fences;
    for (let i = 0; i < members.length; i++) {
      if (!members[i]!.isSignaled() || --pending !== 0) continue;
      for (let j = 0; j <= i; j++) {
        if (members[j]!.signaledFlag) this.#recordError(members[j]!);
      }
      return true;
    }
    return false;
  }

  /** First error wins, and only while the array is pending (the kernel's PENDING_ERROR cmpxchg). */
  #recordError(member: DmaFence): void {
    const error = member.error;
    if (error === undefined || this.error !== undefined || this.signaledFlag) return;
    this.setError(error);
  }

  /** A signal-on-any array no longer needs to hear from the members still pending. */
  #detach(): void {
    if (!this.signalOnAny) return;
    const callback = this.#onMemberSignaled;
    for (const member of this.fences) {
      if (!member.signaledFlag) member.removeCallback(callback);
    }
  }
}

function checkMembers(fences: readonly DmaFence[]): readonly DmaFence[] {
  if (!Array.isArray(fences)) throw invalidArgument('DmaFenceArray', 'fences', fences, 'an array of DmaFence');
  if (fences.length === 0) {
    throw invalidArgument(
      'DmaFenceArray',
      'fences',
      fences,
      'a non-empty array of DmaFence',
      'use DmaFence.getStub() for "nothing to wait for"',
    );
  }
  const members = fences.slice();
  for (let i = 0; i < members.length; i++) {
    const member = members[i];
    checkFence('DmaFenceArray', `fences[${i}]`, member);
    if (member.isContainer) {
      throw new BugError(
        `DmaFenceArray: member ${i} (${member.describe()}) is a container (array or chain); containers may not nest. ` +
          'Flatten the members first with unwrap() or unwrapMerge()',
      );
    }
  }
  return Object.freeze(members);
}

function checkFence(fn: string, name: string, value: unknown): asserts value is DmaFence {
  if (!(value instanceof DmaFence)) throw invalidArgument(fn, name, value, 'a DmaFence');
}
