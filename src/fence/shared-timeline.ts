/**
 * shared-timeline: a 64-bit point counter in shared memory that several threads signal and wait.
 *
 * Overview: a {@link SharedTimeline} is the cross-thread counterpart of a timeline syncobj (or a
 * `sw_sync` timeline): one monotonically increasing counter; point N is reached once the counter
 * is at least N. Any thread that holds the timeline (the creator, or another thread through
 * {@link SharedTimeline.fromDescriptor} of the {@link SharedTimeline.descriptor} it was sent)
 * may signal a point ({@link SharedTimeline.signal}), read the counter
 * ({@link SharedTimeline.value}), get a {@link DmaFence} for a point
 * ({@link SharedTimeline.fence}) or wait for one ({@link SharedTimeline.wait}). Each thread keeps
 * one waiter per timeline; one wake signals every point fence up to the counter's new value.
 *
 * Models `drm_syncobj` timeline points driven from user space (`DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL`,
 * `_QUERY`, `_TIMELINE_WAIT`), as Vulkan timeline semaphores use them, in shared memory.
 *
 * Contract:
 * - Points are positive safe integers (point 0, the start, is always reached: its fence and
 *   wait are done at once). The counter only grows: signalling a point at or below
 *   it changes nothing and returns `false` (the kernel would chain an out-of-order point; a
 *   counter cannot go back, which is what Vulkan requires).
 * - A point signals carry no error, as the timeline-signal ioctl's do not. What a timeline can
 *   carry is its end: {@link SharedTimeline.fail} (a signaller died, the device was lost) makes
 *   every point above the counter signal with the given error, in every thread, now and later;
 *   after it, `signal()` refuses (`false`). The counter and the failure are one 64-bit word, so
 *   every thread agrees which points made it.
 * - Point fences are `seqno64` fences on one context per timeline per thread. Signalling is
 *   enabled lazily: a fence is watched once waited on or given a callback, and then holds the
 *   thread open until it signals; polling reads the counter.
 * - Uses only web-standard APIs (it runs in browsers as in Node).
 *
 * @example
 * ```ts
 * import { SharedTimeline } from 'dmabuf';
 * const frames = new SharedTimeline({ name: 'frames' });
 * // postMessage(frames.descriptor) to a worker, which calls SharedTimeline.fromDescriptor()
 * const third = frames.fence(3);
 * frames.signal(3);
 * await third.wait();
 * console.log(frames.value); // 3
 * ```
 */

import { ERRNO, InvalidArgumentError, describeValue, type ErrnoCode } from '../base/errors.js';
import { defineOptions, optionalSignal, optionalString, optionalTimeout, requiredErrno } from '../base/options.js';
import { DmaFence, fenceContextAlloc, type DmaFenceOps, type FenceWaitOptions } from './dma-fence.js';
import { SharedWordWaiter, errnoCode, errorFromErrno } from './shared-wait.js';

const parseInit = defineOptions('SharedTimeline', { name: optionalString });
const parseWaitOptions = defineOptions('SharedTimeline.wait', { timeout: optionalTimeout, signal: optionalSignal });

// Layout: 32-bit words 0..7, then the 64-bit state word at byte 32.
const W_WAKE = 0; // bumped after every change of the state word
const W_ERRNO = 1; // why the timeline failed (written before the failed bit is set)
const W_MAGIC = 2;
const W_ID = 4; // 4 random words
const STATE_INDEX = 4; // BigInt64 index of the state word (byte 32)
const BYTES = 48;
const MAGIC = 0x64_6d_74_31; // 'dmt1'

/** The state word's failed bit; the counter is the bits below it. */
const FAILED = 1n << 62n;
const COUNTER = FAILED - 1n;

/** The transferable form of a timeline: send it with `postMessage`. */
export interface SharedTimelineDescriptor {
  readonly type: 'dmabuf-shared-timeline';
  readonly buffer: SharedArrayBuffer;
  readonly name: string;
}

/** Options of {@link SharedTimeline}. */
export interface SharedTimelineInit {
  /** Name in fence descriptions and messages. */
  readonly name?: string;
}

/** A point fence of a {@link SharedTimeline}. */
export class SharedTimelinePoint extends DmaFence {
  readonly #watch: TimelineWatch;

  static readonly #ops: DmaFenceOps<SharedTimelinePoint> = Object.freeze({
    getDriverName: () => 'shared-timeline',
    getTimelineName: (f: SharedTimelinePoint) => f.#watch.name,
    enableSignaling: (f: SharedTimelinePoint) => f.#watch.watch(f),
    signaled: (f: SharedTimelinePoint) => f.#watch.complete(f),
  });

  /** @internal use {@link SharedTimeline.fence}. */
  constructor(watch: TimelineWatch, point: number) {
    super(SharedTimelinePoint.#ops, watch.context, point, { seqno64: true });
    this.#watch = watch;
  }
}

/** Per-thread watch of one timeline: its local context and the point fences waiting on it. */
class TimelineWatch {
  readonly i32: Int32Array;
  readonly state: BigInt64Array;
  readonly name: string;
  readonly context = fenceContextAlloc();
  readonly waiter: SharedWordWaiter;
  /** Watched points, a min-heap by seqno. */
  readonly #heap: SharedTimelinePoint[] = [];

  constructor(buffer: SharedArrayBuffer, name: string) {
    this.i32 = new Int32Array(buffer, 0, 8);
    this.state = new BigInt64Array(buffer, 0, BYTES / 8);
    this.name = name;
    this.waiter = new SharedWordWaiter(this.i32, W_WAKE, () => this.#wake());
  }

  /** Signals `f` when its point was reached or the timeline failed below it. */
  complete(f: SharedTimelinePoint): boolean {
    if (f.signaledFlag) return true;
    const state = Atomics.load(this.state, STATE_INDEX);
    if (BigInt(f.seqno) <= (state & COUNTER)) {
      f.signal();
      return true;
    }
    if ((state & FAILED) === 0n) return false;
    f.setError(errorFromErrno(Atomics.load(this.i32, W_ERRNO), f.describe()));
    f.signal();
    return true;
  }

  watch(f: SharedTimelinePoint): boolean {
    if (this.complete(f)) return false;
    heapPush(this.#heap, f);
    this.waiter.start();
    return !this.complete(f);
  }

  #wake(): void {
    const heap = this.#heap;
    while (heap.length > 0) {
      const first = heap[0]!;
      if (!first.signaledFlag && !this.complete(first)) break;
      heapPop(heap);
    }
    if (heap.length === 0) this.waiter.stop();
  }
}

function heapPush(heap: SharedTimelinePoint[], f: SharedTimelinePoint): void {
  let i = heap.length;
  heap.push(f);
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (heap[parent]!.seqno <= f.seqno) break;
    heap[i] = heap[parent]!;
    i = parent;
  }
  heap[i] = f;
}

function heapPop(heap: SharedTimelinePoint[]): void {
  const last = heap.pop()!;
  if (heap.length === 0) return;
  let i = 0;
  for (;;) {
    const left = 2 * i + 1;
    if (left >= heap.length) break;
    const right = left + 1;
    const child = right < heap.length && heap[right]!.seqno < heap[left]!.seqno ? right : left;
    if (heap[child]!.seqno >= last.seqno) break;
    heap[i] = heap[child]!;
    i = child;
  }
  heap[i] = last;
}

// This thread's watches by timeline id, so every handle of one timeline shares one waiter.
const watches = new Map<string, TimelineWatch>();

function checkPoint(what: string, point: unknown, lowest = 1): number {
  if (typeof point !== 'number' || !Number.isSafeInteger(point) || point < lowest) {
    throw new InvalidArgumentError(
      `${what}: point must be a safe integer of at least ${lowest}, got ${describeValue(point)}`,
    );
  }
  return point;
}

// Set by fromDescriptor() around its constructor call: attach instead of create.
let attaching: SharedTimelineDescriptor | undefined;

function watchOf(descriptor: SharedTimelineDescriptor): TimelineWatch {
  const i32 = new Int32Array(descriptor.buffer, 0, 8);
  let id = '';
  for (let i = 0; i < 4; i++) id += (i32[W_ID + i]! >>> 0).toString(16).padStart(8, '0');
  let watch = watches.get(id);
  if (watch === undefined) {
    watch = new TimelineWatch(descriptor.buffer, descriptor.name);
    watches.set(id, watch);
  }
  return watch;
}

/**
 * A point counter in shared memory, signalled and awaited from any thread.
 * @see drm_syncobj_timeline_signal_ioctl()
 */
export class SharedTimeline {
  /** Send this to another thread; it attaches with {@link SharedTimeline.fromDescriptor}. */
  readonly descriptor: SharedTimelineDescriptor;
  readonly #watch: TimelineWatch;

  /**
   * Creates a new timeline at 0.
   * @throws {InvalidArgumentError} for a name that is not a string.
   */
  constructor(init?: SharedTimelineInit) {
    let descriptor = attaching;
    attaching = undefined;
    if (descriptor === undefined) {
      const name = parseInit(init).name ?? 'shared-timeline';
      const buffer = new SharedArrayBuffer(BYTES);
      const i32 = new Int32Array(buffer);
      i32[W_MAGIC] = MAGIC;
      const random = new Uint32Array(4);
      crypto.getRandomValues(random);
      i32.set(new Int32Array(random.buffer), W_ID);
      descriptor = Object.freeze({ type: 'dmabuf-shared-timeline', buffer, name });
    }
    this.descriptor = descriptor;
    this.#watch = watchOf(descriptor);
  }

  /**
   * Attaches to a timeline another thread created and sent as its `descriptor`.
   * @throws {InvalidArgumentError} for anything else.
   */
  static fromDescriptor(descriptor: SharedTimelineDescriptor): SharedTimeline {
    const d = descriptor as Partial<SharedTimelineDescriptor> | null;
    if (
      typeof d !== 'object' ||
      d === null ||
      d.type !== 'dmabuf-shared-timeline' ||
      !(typeof SharedArrayBuffer !== 'undefined' && d.buffer instanceof SharedArrayBuffer) ||
      d.buffer.byteLength !== BYTES ||
      new Int32Array(d.buffer)[W_MAGIC] !== MAGIC ||
      typeof d.name !== 'string'
    ) {
      throw new InvalidArgumentError(
        `SharedTimeline.fromDescriptor: expected a SharedTimeline's descriptor, got ${describeValue(descriptor)}`,
      );
    }
    attaching = Object.freeze({ type: 'dmabuf-shared-timeline', buffer: d.buffer, name: d.name });
    return new SharedTimeline();
  }

  /** The timeline's name. */
  get name(): string {
    return this.descriptor.name;
  }

  /** The counter: the last point reached. @see DRM_IOCTL_SYNCOBJ_QUERY */
  get value(): number {
    return Number(Atomics.load(this.#watch.state, STATE_INDEX) & COUNTER);
  }

  /** Why the timeline failed, or `undefined` while it has not. */
  get error(): ErrnoCode | undefined {
    if ((Atomics.load(this.#watch.state, STATE_INDEX) & FAILED) === 0n) return undefined;
    return errnoCode(Atomics.load(this.#watch.i32, W_ERRNO)) ?? 'EIO';
  }

  /**
   * Raises the counter to `point`, reaching every point up to it in every thread.
   * @returns `false` when the counter was already at or past `point`, or the timeline failed.
   * @throws {InvalidArgumentError} unless `point` is a positive safe integer.
   * @see drm_syncobj_timeline_signal_ioctl()
   */
  signal(point: number): boolean {
    const target = BigInt(checkPoint(`SharedTimeline.signal on ${this.name}`, point));
    const { state, i32 } = this.#watch;
    let current = Atomics.load(state, STATE_INDEX);
    for (;;) {
      if ((current & FAILED) !== 0n || (current & COUNTER) >= target) return false;
      const previous = Atomics.compareExchange(state, STATE_INDEX, current, target);
      if (previous === current) break;
      current = previous;
    }
    Atomics.add(i32, W_WAKE, 1);
    Atomics.notify(i32, W_WAKE);
    return true;
  }

  /**
   * Ends the timeline: every point above the counter signals with `code`, in every thread.
   * @returns `false` when it had already failed (the first code stays).
   * @throws {InvalidArgumentError} when `code` is not an errno name.
   */
  fail(code: ErrnoCode): boolean {
    requiredErrno(code, `SharedTimeline.fail on ${this.name}`, 'code');
    const { state, i32 } = this.#watch;
    let current = Atomics.load(state, STATE_INDEX);
    if ((current & FAILED) !== 0n) return false;
    // Written first: whoever sees the failed bit sees the code. A racing fail() may overwrite it
    // before losing the exchange below; the code then names one of the two failures.
    Atomics.store(i32, W_ERRNO, ERRNO[code]);
    for (;;) {
      const previous = Atomics.compareExchange(state, STATE_INDEX, current, current | FAILED);
      if (previous === current) break;
      if ((previous & FAILED) !== 0n) return false;
      current = previous;
    }
    Atomics.add(i32, W_WAKE, 1);
    Atomics.notify(i32, W_WAKE);
    return true;
  }

  /**
   * A fence of this thread for `point`: signalled once the counter reaches it (or with the
   * timeline's error, once it failed below it).
   * @throws {InvalidArgumentError} unless `point` is a non-negative safe integer.
   * @see drm_syncobj_find_fence()
   */
  fence(point: number): SharedTimelinePoint {
    const f = new SharedTimelinePoint(this.#watch, checkPoint(`SharedTimeline.fence on ${this.name}`, point, 0));
    this.#watch.complete(f);
    return f;
  }

  /**
   * Waits until the counter reaches `point`, as `DmaFence.wait` does.
   * @returns `true` once reached, `false` when the timeout ran out; a failed timeline resolves
   *   `true` too: check {@link error}, or use {@link fence} to see the point's own error.
   * @see DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT
   */
  wait(point: number, options?: FenceWaitOptions): Promise<boolean> {
    try {
      parseWaitOptions(options);
      return this.fence(point).wait(options);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  toString(): string {
    const error = this.error;
    return `SharedTimeline(${this.name} at ${this.value}${error === undefined ? '' : `, failed: ${error}`})`;
  }
}
