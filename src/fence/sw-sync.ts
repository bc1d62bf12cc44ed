/**
 * sw_sync: a software timeline whose points signal when a counter reaches them.
 *
 * Overview: a {@link SwSyncTimeline} is a 32-bit counter with fences hanging off it. Each
 * {@link SyncPt} from {@link SwSyncTimeline.createFence} waits for one value; {@link SwSyncTimeline.inc}
 * moves the counter forward and signals, in value order and synchronously, every point it
 * reached. In the kernel this is a debugfs test driver; here it is also the natural producer for
 * CPU-side work (a worker finishing item N calls `inc()`), and the fence source most tests use.
 *
 * Models `drivers/dma-buf/sw_sync.c` (timeline, points, the CREATE_FENCE / INC / GET_DEADLINE
 * ioctls, release of the file) and the `objs:` part of `drivers/dma-buf/sync_debug.c`.
 *
 * Contract:
 * - Values are unsigned 32-bit and compare with the 32-bit wrap-around rule: a point is reached
 *   when it is not later than the counter, i.e. when it lies at most 2^31 behind it. A point asked
 *   for at a value already reached is returned signaled.
 * - At most one live (unsignaled) point exists per value: asking again returns the same object.
 * - Every live point lies between 1 and 2^31-1 ahead of the counter. `inc(n)` keeps that true by
 *   advancing in steps of at most 2^31-1 (as the kernel's INC ioctl does), so `inc(n)` signals
 *   exactly the points at most `n` ahead, even across the wrap and for `n >= 2^31`.
 * - Points signal in value order; each point's callbacks run inside `inc()` before the next
 *   point signals. A callback may create points or call `inc()` again.
 * - Points are meant to be signaled by their timeline; one signaled directly (`pt.signal()`)
 *   leaves the live set at once and is never signaled again by `inc()`.
 * - `destroy()` (or `[Symbol.dispose]`) fails every live point with `ENOENT` and signals it, in
 *   value order; then `createFence` and `inc` are {@link BugError}s. Reads stay allowed.
 *
 * @example
 * ```ts
 * import { SwSyncTimeline } from 'dmabuf';
 * using timeline = new SwSyncTimeline('uploads');
 * const first = timeline.createFence(1);
 * const second = timeline.createFence(2);
 * second.addCallback(() => console.log('upload 2 done'));
 * timeline.inc(); // signals first
 * timeline.inc(); // signals second, printing "upload 2 done"
 * console.log(first.status, await second.wait({ timeout: 0 })); // "signaled" true
 * ```
 */

import { BugError, InvalidArgumentError, describeValue } from '../base/errors.js';
import { DmaFence, fenceContextAlloc, seqnoIsLater, type DmaFenceOps } from './dma-fence.js';

/** Largest timeline value; values and increments are unsigned 32-bit. */
const U32_MAX = 0xffff_ffff;
/** The kernel's INT_MAX: the largest single step the INC ioctl takes. */
const MAX_STEP = 0x7fff_ffff;
/** `char name[32]` in `struct sync_timeline`, one byte kept for the terminator. */
const MAX_NAME_BYTES = 31;

/** Name used when none is given; the kernel uses the opening task's name. */
export const SW_SYNC_DEFAULT_NAME = 'sw_sync';

// Privileged hooks between the two classes of this module, assigned in static blocks so that
// nothing outside the module can reach them while the classes keep true private fields.
let forgetPoint: (pt: SyncPt) => void;
let constructing = false;

/**
 * One point on a {@link SwSyncTimeline}: a fence that signals when the timeline reaches `seqno`.
 * Created only through {@link SwSyncTimeline.createFence}.
 * @see struct sync_pt
 */
export class SyncPt extends DmaFence {
  readonly #timeline: SwSyncTimeline;
  #deadline: number | undefined = undefined;

  // One table for every point, as the kernel's timeline_fence_ops; everything per-timeline is
  // reached through the point, so the table holds no state.
  static readonly #ops: DmaFenceOps<SyncPt> = Object.freeze({
    getDriverName: () => 'sw_sync',
    getTimelineName: (pt: SyncPt) => pt.#timeline.name,
    // Reached means "not later than the counter", with the 32-bit rule.
    signaled: (pt: SyncPt) => !seqnoIsLater(pt.seqno, pt.#timeline.value, false),
    setDeadline(pt: SyncPt, deadline: number): void {
      // Several waiters may each hint; the soonest is the one worth honouring.
      if (pt.#deadline === undefined || deadline < pt.#deadline) pt.#deadline = deadline;
    },
  });

  /** @throws {BugError} when called directly; use {@link SwSyncTimeline.createFence}. */
  constructor(timeline: SwSyncTimeline, value: number) {
    if (!constructing) {
      throw new BugError(
        `SyncPt: points are created by SwSyncTimeline.createFence(), ` +
          `not with new (asked for value ${describeValue(value)})`,
      );
    }
    super(SyncPt.#ops, timeline.context, value);
    this.#timeline = timeline;
  }

  /** The timeline this point belongs to (the kernel's `dma_fence_parent()`). */
  get timeline(): SwSyncTimeline {
    return this.#timeline;
  }

  /**
   * The earliest deadline hint received while pending, in clock milliseconds, or `undefined`
   * when none was set. Kept after the point signals. @see timeline_fence_set_deadline()
   */
  get deadline(): number | undefined {
    return this.#deadline;
  }

  /**
   * Signals the point. The timeline does this from {@link SwSyncTimeline.inc}; a direct call
   * also works and takes the point out of the timeline's live set first, so a later
   * `createFence` of the same value makes a fresh point.
   */
  override signal(timestamp?: number): boolean {
    // Leave the live set before callbacks run (as the kernel unlinks before signalling), but
    // only when the base class is going to accept the call.
    if (!this.signaledFlag && (timestamp === undefined || Number.isFinite(timestamp))) forgetPoint(this);
    return super.signal(timestamp);
  }

  override toString(): string {
    return `SyncPt(${this.describe()})`;
  }
}

/**
 * Heap order: `a` comes before `b` when it is earlier on the timeline. Plain signed 32-bit
 * difference is enough because every point in the heap lies within 2^31-1 ahead of the counter,
 * so any two differ by less than 2^31 and the comparison is a total order consistent with the
 * distance from the counter, whatever the counter's current value.
 */
function before(a: SyncPt, b: SyncPt): boolean {
  return ((a.seqno - b.seqno) | 0) < 0;
}

function heapPush(heap: SyncPt[], pt: SyncPt): void {
  let i = heap.length;
  heap.push(pt);
  while (i > 0) {
    const parent = (i - 1) >> 1;
    const above = heap[parent]!;
    if (!before(pt, above)) break;
    heap[i] = above;
    i = parent;
  }
  heap[i] = pt;
}

function heapPop(heap: SyncPt[]): SyncPt | undefined {
  const top = heap[0];
  const last = heap.pop();
  if (top === undefined || last === undefined || heap.length === 0) return top;
  const n = heap.length;
  let i = 0;
  for (;;) {
    const left = 2 * i + 1;
    if (left >= n) break;
    const right = left + 1;
    let child = left;
    if (right < n && before(heap[right]!, heap[left]!)) child = right;
    const lower = heap[child]!;
    if (!before(lower, last)) break;
    heap[i] = lower;
    i = child;
  }
  heap[i] = last;
  return top;
}

function checkU32(what: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > U32_MAX) {
    throw new InvalidArgumentError(
      `${what} must be an unsigned 32-bit integer (0 .. 4294967295), got ${describeValue(value)}`,
    );
  }
  return value;
}

const utf8 = new TextEncoder();

/**
 * A software timeline: a 32-bit counter whose points signal as it advances.
 *
 * Live points are kept in two structures, as the kernel keeps an rbtree and a list: a `Map` from
 * value to point answers the dedup question in O(1), and a binary heap ordered by distance from
 * the counter hands out reached points in value order in O(log n) each. A sorted array would
 * need an O(n) insertion for each point created out of order (quadratic for 10,000 shuffled
 * points); the heap never needs the full order except in {@link describe} and {@link destroy},
 * which sort or drain once in O(n log n). A point signaled directly is dropped from the map at
 * once and from the heap lazily, when the counter passes it.
 *
 * @see struct sync_timeline
 */
export class SwSyncTimeline implements Disposable {
  readonly #name: string;
  readonly #context: number;
  #value = 0;
  readonly #live = new Map<number, SyncPt>();
  #heap: SyncPt[] = [];
  #destroyed = false;
  // What teardown failed, kept for describe(): the kernel's list still shows them until freed.
  #tornDown: SyncPt[] = [];

  static {
    forgetPoint = (pt: SyncPt): void => {
      const timeline = pt.timeline;
      if (timeline.#live.get(pt.seqno) === pt) timeline.#live.delete(pt.seqno);
    };
  }

  /**
   * @param name at most 31 bytes of UTF-8 (the kernel's `char name[32]`); defaults to `'sw_sync'`.
   * @throws {InvalidArgumentError} for a non-string or too long name.
   * @see sync_timeline_create()
   */
  constructor(name: string = SW_SYNC_DEFAULT_NAME) {
    if (typeof name !== 'string') {
      throw new InvalidArgumentError(`SwSyncTimeline: name must be a string, got ${describeValue(name)}`);
    }
    const bytes = utf8.encode(name).length;
    if (bytes > MAX_NAME_BYTES) {
      throw new InvalidArgumentError(
        `SwSyncTimeline: name ${JSON.stringify(name)} is ${bytes} ` +
          `bytes of UTF-8; at most ${MAX_NAME_BYTES} fit, shorten it`,
      );
    }
    this.#name = name;
    this.#context = fenceContextAlloc(1);
  }

  /** The timeline's name, also every point's timeline name. @see sync_timeline.name */
  get name(): string {
    return this.#name;
  }

  /** The fence context shared by all points of this timeline. @see sync_timeline.context */
  get context(): number {
    return this.#context;
  }

  /** The counter: the last value reached, unsigned 32-bit. @see sync_timeline.value */
  get value(): number {
    return this.#value;
  }

  /** Number of live points: created, not yet signaled. @see sync_timeline.pt_list */
  get activePoints(): number {
    return this.#live.size;
  }

  /** Whether {@link destroy} has run (the debugfs file was released). */
  get destroyed(): boolean {
    return this.#destroyed;
  }

  /**
   * A fence that signals when the counter reaches `value`. Returns the existing point when one
   * for `value` is still live; returns a new, already signaled point when `value` is reached.
   * @throws {InvalidArgumentError} unless `value` is an unsigned 32-bit integer.
   * @throws {BugError} after {@link destroy}.
   * @see sync_pt_create()
   */
  createFence(value: number): SyncPt {
    this.#checkAlive('createFence');
    checkU32(`${this.#label()}: createFence value`, value);
    const existing = this.#live.get(value);
    if (existing !== undefined) return existing;
    constructing = true;
    let pt: SyncPt;
    try {
      pt = new SyncPt(this, value);
    } finally {
      constructing = false;
    }
    // Polling signals the point at once when its value is already behind the counter.
    if (pt.isSignaled()) return pt;
    this.#live.set(value, pt);
    heapPush(this.#heap, pt);
    return pt;
  }

  /**
   * Advances the counter by `n` and signals every point now reached, in value order, running
   * each point's callbacks before the next signals. Large `n` advances in steps of at most
   * 2^31-1, like the kernel's INC ioctl, so every point at most `n` ahead signals even when the
   * counter wraps; a callback running mid-way sees the intermediate counter.
   * @throws {InvalidArgumentError} unless `n` is an unsigned 32-bit integer.
   * @throws {BugError} after {@link destroy}.
   * @see sw_sync_ioctl_inc(), sync_timeline_signal()
   */
  inc(n = 1): void {
    this.#checkAlive('inc');
    let left = checkU32(`${this.#label()}: inc amount`, n);
    while (left > MAX_STEP) {
      this.#advance(MAX_STEP);
      left -= MAX_STEP;
    }
    this.#advance(left);
  }

  #advance(step: number): void {
    this.#value = (this.#value + step) >>> 0;
    const heap = this.#heap;
    for (;;) {
      const top = heap[0];
      if (top === undefined || seqnoIsLater(top.seqno, this.#value, false)) break;
      heapPop(heap);
      // A point signaled directly already left the live set; only its heap entry remained.
      if (top.signaledFlag) continue;
      this.#live.delete(top.seqno);
      top.signal();
    }
  }

  /**
   * The earliest deadline hint set on `fence`, a point of this timeline, in clock milliseconds;
   * `undefined` when none was set (the kernel's `-ENOENT`).
   * @throws {InvalidArgumentError} when `fence` is not a point of this timeline (`-EINVAL`).
   * @see sw_sync_ioctl_get_deadline()
   */
  getDeadline(fence: DmaFence): number | undefined {
    if (!(fence instanceof SyncPt) || fence.timeline !== this) {
      const what = fence instanceof DmaFence ? `fence ${fence.describe()}` : describeValue(fence);
      throw new InvalidArgumentError(`${this.#label()}: getDeadline takes a point of this timeline, got ${what}`);
    }
    return fence.deadline;
  }

  /**
   * Tears the timeline down: every live point gets the error `ENOENT` and signals, in value
   * order. Idempotent. Afterwards only reads are allowed.
   * @see sw_sync_debugfs_release()
   */
  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    const heap = this.#heap;
    this.#heap = [];
    const tornDown: SyncPt[] = [];
    for (let pt = heapPop(heap); pt !== undefined; pt = heapPop(heap)) {
      if (pt.signaledFlag) continue;
      this.#live.delete(pt.seqno);
      tornDown.push(pt);
      pt.setError('ENOENT');
      pt.signal();
    }
    this.#tornDown = tornDown;
  }

  /** Same as {@link destroy}, so `using timeline = new SwSyncTimeline()` tears it down. */
  [Symbol.dispose](): void {
    this.destroy();
  }

  /**
   * A debug dump in the spirit of sync_debug's `objs:` entry: `name: value`, then one line per
   * point in value order with its status (`active`, `signaled`, `error CODE`) and, once
   * signaled, `@timestamp` in clock milliseconds. Lists the live points; after teardown, the
   * points teardown failed.
   * @see sync_print_obj()
   */
  describe(): string {
    const value = this.#value;
    const points = this.#destroyed ? this.#tornDown : [...this.#live.values()];
    // Distance ahead of the counter gives value order across the wrap.
    if (!this.#destroyed) points.sort((a, b) => ((a.seqno - value) >>> 0) - ((b.seqno - value) >>> 0));
    const lines = [`${this.#name}: ${value}${this.#destroyed ? ' (destroyed)' : ''}`];
    for (const pt of points) lines.push(`  pt ${pt.seqno}: ${pointStatus(pt)}`);
    return lines.join('\n');
  }

  toString(): string {
    return `SwSyncTimeline(${this.#label()}, value ${this.#value}, ${this.#live.size} active)`;
  }

  #label(): string {
    return `sw_sync timeline ${JSON.stringify(this.#name)} (context ${this.#context})`;
  }

  #checkAlive(what: string): void {
    if (this.#destroyed) {
      throw new BugError(
        `${this.#label()}: ${what} after destroy(); the timeline is torn down, create a new SwSyncTimeline`,
      );
    }
  }
}

function pointStatus(pt: SyncPt): string {
  // signaledFlag, not status: describing must not poll and so must not signal anything.
  if (!pt.signaledFlag) return 'active';
  const error = pt.error;
  const code = error === undefined ? '' : ` ${(error as { code?: unknown }).code ?? error.name}`;
  return `${error === undefined ? 'signaled' : 'error'}${code} @${pt.timestamp}ms`;
}
