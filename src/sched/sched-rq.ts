/**
 * drm_sched run queues and the entity-selection policies: FAIR, FIFO and round-robin.
 *
 * Overview: a scheduler picks the next entity to run a job from through its run queues. A
 * {@link DrmSchedRq} orders the entities that have queued jobs by a key that the policy decides:
 * - **FAIR** (the default; the kernel's 2026 policy, `sched_rq.c`): one run queue; entities are
 *   ordered by *virtual runtime*, the GPU time their jobs used scaled up by their priority
 *   (× 2, 4, 16, 128 for kernel, high, normal, low), so the entity that got least weighted time
 *   goes next. An entity that goes idle keeps its lead or lag relative to the others, and one that
 *   comes back is placed near the front (ahead of lower priorities, behind higher ones).
 * - **FIFO** (the kernel's default from 6.2 to 7.1): one run queue per priority, strict priority
 *   across them; inside one, the entity whose head job was submitted first goes next.
 * - **RR** (round-robin): one run queue per priority, strict priority; inside one, entities take
 *   turns in the order they joined the queue.
 * Whatever the policy, an entity whose head job does not fit in the free credits blocks every
 * other entity (the kernel's `-ENOSPC` rule): the scheduler never skips ahead to a smaller job.
 *
 * Models `drivers/gpu/drm/scheduler/sched_rq.c` ([N], FAIR) and the run-queue half of
 * `sched_main.c` ([B], FIFO and RR), and `struct drm_sched_rq`.
 *
 * Contract:
 * - Only entities with queued jobs are ordered. Those whose head job waits for a dependency are
 *   kept apart from the runnable ones, so {@link DrmSchedRq.peek} is the first *runnable* entity
 *   in key order in O(1) and every change is O(log n) — the kernel walks a tree past blocked
 *   entities instead. The order is the same.
 * - Ties are broken by arrival, so runs are deterministic.
 * - Keys are pairs of numbers compared lexicographically: (vruntime, arrival) for FAIR, (submit
 *   time, submit sequence) of the head job for FIFO, (lap, position) for RR.
 *
 * @example
 * ```ts
 * import { DrmSchedPriority, DrmSchedRq, DrmSchedRqNode, fifoPolicy } from 'dmabuf';
 * const rq = new DrmSchedRq(fifoPolicy, { avgJobTime: 0 });
 * const a = new DrmSchedRqNode('a', DrmSchedPriority.Normal);
 * const b = new DrmSchedRqNode('b', DrmSchedPriority.Normal);
 * rq.add(b, 5, 2); // b's head job was submitted at t = 5 (submission #2)
 * rq.add(a, 3, 1);
 * console.log(rq.peek() === a); // true: oldest head job first
 * ```
 */

import { type Check, invalidArgument } from '../base/options.js';

/**
 * Job and entity priorities; a lower value is a higher priority (the kernel's order since 6.8).
 * @see enum drm_sched_priority
 */
export const DrmSchedPriority = Object.freeze({ Kernel: 0, High: 1, Normal: 2, Low: 3 } as const);
export type DrmSchedPriority = (typeof DrmSchedPriority)[keyof typeof DrmSchedPriority];

/** Number of priorities, and of run queues per scheduler under FIFO and RR. */
export const DRM_SCHED_PRIORITY_COUNT = 4;

const PRIORITY_NAMES = ['kernel', 'high', 'normal', 'low'] as const;

/**
 * `'kernel'`, `'high'`, `'normal'` or `'low'`.
 * @throws {InvalidArgumentError} for anything but a {@link DrmSchedPriority} (or its name).
 */
export function schedPriorityName(priority: DrmSchedPriority): string {
  return PRIORITY_NAMES[checkSchedPriority(priority, 'schedPriorityName', 'priority')];
}

/**
 * @internal
 * Checks a priority: one of {@link DrmSchedPriority}'s values or its lower-case name.
 * @throws {InvalidArgumentError} naming argument `name` of `fn`.
 */
export const checkSchedPriority: Check<DrmSchedPriority> = (value, fn, name) => {
  if (typeof value === 'string') {
    const i = (PRIORITY_NAMES as readonly string[]).indexOf(value);
    if (i >= 0) return i as DrmSchedPriority;
  } else if (value === 0 || value === 1 || value === 2 || value === 3) {
    return value;
  }
  throw invalidArgument(
    fn,
    name,
    value,
    "a DrmSchedPriority (Kernel 0, High 1, Normal 2, Low 3) or its name ('kernel', 'high', 'normal', 'low')",
  );
};

/**
 * @internal
 * FAIR's weights: GPU time is scaled by 2^shift before it counts as virtual runtime
 * (`vruntime_shift[]` in `sched_rq.c`): kernel ≈ 2× high ≈ 8× normal ≈ 64× low per unit of time.
 */
export const FAIR_VRUNTIME_SHIFT: readonly number[] = Object.freeze([1, 2, 4, 7]);

/** One nanosecond in clock milliseconds: FAIR's tie nudges, as in the kernel. */
const NANOSECOND = 1e-6;
/** One microsecond in clock milliseconds. */
const MICROSECOND = 1e-3;

/** Where a node sits: nowhere, among the runnable entities, or among the blocked ones. */
const OUTSIDE = 0;
const RUNNABLE = 1;
const BLOCKED = 2;

/**
 * What a run queue keeps per entity: its key, its place in the queue, and the GPU-time statistics
 * that FAIR orders by (the kernel's `struct drm_sched_entity_stats` plus the tree node). The
 * entity owns one and hands it to the queue; the scheduler updates the statistics when it frees
 * the entity's jobs.
 */
export class DrmSchedRqNode<Owner = unknown> {
  /** Whose node this is (the entity). */
  readonly owner: Owner;
  #priority: DrmSchedPriority;
  /** GPU time of this entity's freed jobs, in clock milliseconds. */
  runtime = 0;
  /** The part of {@link runtime} already turned into virtual runtime. */
  prevRuntime = 0;
  /** FAIR's virtual runtime (weighted GPU time), clock milliseconds. */
  vruntime = 0;
  /** Exponentially weighted average job duration (weight 1/4), clock milliseconds. */
  avgJobTime = 0;
  /** FAIR: the virtual runtime relative to the queue's minimum, saved when the entity went idle. */
  savedVruntime = 0;

  /** The key: compared lexicographically, lowest first. */
  key1 = 0;
  key2 = 0;
  /** Joined the queue's entity list (kept while idle, left on kill): counts towards the score. */
  onList = false;
  /** RR: position in the entity list. */
  position = 0;
  /** Which heap (OUTSIDE, RUNNABLE, BLOCKED) and where in it. */
  heap = OUTSIDE;
  heapIndex = -1;

  /** @throws {InvalidArgumentError} for a priority that is not a {@link DrmSchedPriority} (or its name). */
  constructor(owner: Owner, priority: DrmSchedPriority) {
    this.owner = owner;
    this.#priority = checkSchedPriority(priority, 'DrmSchedRqNode', 'priority');
  }

  /** The entity's priority now (FAIR reads it at every pop; FIFO and RR when a queue is chosen). */
  get priority(): DrmSchedPriority {
    return this.#priority;
  }

  /**
   * Checked: FAIR's weight is looked up by priority, and anything else made a NaN virtual runtime.
   * @throws {InvalidArgumentError} for a priority that is not a {@link DrmSchedPriority} (or its name).
   */
  set priority(priority: DrmSchedPriority) {
    this.#priority = checkSchedPriority(priority, 'DrmSchedRqNode.priority', 'priority');
  }

  /** Whether the entity has queued jobs in the queue (runnable or blocked). */
  get queued(): boolean {
    return this.heap !== OUTSIDE;
  }

  /** Whether the entity is queued and not waiting for a dependency. */
  get runnable(): boolean {
    return this.heap === RUNNABLE;
  }

  /**
   * Adds a freed job's GPU time (the kernel's `drm_sched_entity_stats_job_add_gpu_time()`).
   * @throws {InvalidArgumentError} for a duration that is negative or not finite: GPU time only
   *   grows (the scheduler charges 0 for a job whose hardware fence signalled before its
   *   predecessor's).
   */
  accountJob(duration: number): void {
    if (typeof duration !== 'number' || !(duration >= 0 && duration < Infinity)) {
      throw invalidArgument('DrmSchedRqNode.accountJob', 'duration', duration, 'a finite number of milliseconds >= 0');
    }
    this.runtime += duration;
    this.avgJobTime = schedAvgTimeUpdate(this.avgJobTime, duration);
  }
}

/** @internal The kernel's `DECLARE_EWMA(drm_sched_avgtime, 6, 4)`: weight 1/4, the first sample taken as is. */
export function schedAvgTimeUpdate(average: number, sample: number): number {
  return average === 0 ? sample : average + (sample - average) / 4;
}

/** Scheduler-wide statistics a run queue reads (FAIR places returning entities with them). */
export interface DrmSchedQueueStats {
  /** Exponentially weighted average duration of every job of the scheduler, clock milliseconds. */
  avgJobTime: number;
}

/**
 * An entity-selection policy: how a run queue keys its entities. One object per policy, shared
 * by every run queue using it.
 */
export interface DrmSchedPolicy {
  readonly name: 'fair' | 'fifo' | 'rr';
  /** One run queue per priority (strict priority between them), or one for all. */
  readonly queuePerPriority: boolean;
  /** The entity's queue just went from empty to one job, submitted at `submitTime` as number `submitSeq`. */
  keyOnAdd(rq: DrmSchedRq, node: DrmSchedRqNode, submitTime: number, submitSeq: number): void;
  /**
   * A job was taken from the entity. With `hasNext`, the new head job was submitted at
   * `nextTime` as number `nextSeq`; without, the queue is now empty (the node has already left
   * the heaps then).
   */
  keyOnPop(rq: DrmSchedRq, node: DrmSchedRqNode, hasNext: boolean, nextTime: number, nextSeq: number): void;
  /** The entity was blocked on a dependency that has now signalled. */
  keyOnUnblock(rq: DrmSchedRq, node: DrmSchedRqNode): void;
  /** The entity was picked to run its head job. */
  selected(rq: DrmSchedRq, node: DrmSchedRqNode): void;
}

/** FIFO: the entity whose head job was submitted first. @see drm_sched_rq_select_entity_fifo() */
export const fifoPolicy: DrmSchedPolicy = Object.freeze({
  name: 'fifo' as const,
  queuePerPriority: true,
  keyOnAdd(_rq: DrmSchedRq, node: DrmSchedRqNode, submitTime: number, submitSeq: number): void {
    node.key1 = submitTime;
    node.key2 = submitSeq;
  },
  keyOnPop(_rq: DrmSchedRq, node: DrmSchedRqNode, hasNext: boolean, nextTime: number, nextSeq: number): void {
    if (!hasNext) return;
    node.key1 = nextTime;
    node.key2 = nextSeq;
  },
  keyOnUnblock(): void {},
  selected(): void {},
});

/**
 * RR: entities take turns in list order, resuming after the last one picked. The key is
 * (lap, position): an entity after the cursor runs in this lap, one at or before it in the next,
 * so the heap minimum is exactly "the first runnable entity after the cursor, wrapping around".
 * @see drm_sched_rq_select_entity_rr()
 */
export const rrPolicy: DrmSchedPolicy = Object.freeze({
  name: 'rr' as const,
  queuePerPriority: true,
  keyOnAdd(rq: DrmSchedRq, node: DrmSchedRqNode): void {
    rq.placeAfterCursor(node);
  },
  keyOnPop(rq: DrmSchedRq, node: DrmSchedRqNode, hasNext: boolean): void {
    if (hasNext) rq.placeAfterCursor(node);
  },
  keyOnUnblock(rq: DrmSchedRq, node: DrmSchedRqNode): void {
    rq.placeAfterCursor(node);
  },
  selected(rq: DrmSchedRq, node: DrmSchedRqNode): void {
    rq.moveCursor(node);
  },
});

/**
 * FAIR: least virtual runtime first. @see drm_sched_rq_select_entity(), drm_sched_rq_add_entity(),
 * drm_sched_rq_pop_entity() in the kernel's sched_rq.c
 */
export const fairPolicy: DrmSchedPolicy = Object.freeze({
  name: 'fair' as const,
  queuePerPriority: false,
  keyOnAdd(rq: DrmSchedRq, node: DrmSchedRqNode): void {
    const head = rq.head();
    const base = head?.vruntime ?? 0;
    let relative = node.savedVruntime;
    if (relative === 0 && head !== null) {
      const shift = FAIR_VRUNTIME_SHIFT[node.priority]!;
      if (node.priority > head.priority) {
        // Lower priority than the front runner: start about one job (its own and an average one) behind.
        relative = (MICROSECOND + node.avgJobTime + rq.stats.avgJobTime) * 2 ** shift;
      } else if (node.priority < head.priority) {
        relative = -(head.priority - node.priority) * NANOSECOND;
      } else {
        // Equal priority: short jobs go just ahead of the front runner, long ones just behind.
        relative = node.avgJobTime <= rq.stats.avgJobTime ? -NANOSECOND : NANOSECOND;
      }
    }
    node.savedVruntime = 0;
    node.vruntime = base + relative;
    node.key1 = node.vruntime;
    node.key2 = rq.nextArrival();
  },
  keyOnPop(rq: DrmSchedRq, node: DrmSchedRqNode, hasNext: boolean): void {
    node.vruntime += (node.runtime - node.prevRuntime) * 2 ** FAIR_VRUNTIME_SHIFT[node.priority]!;
    node.prevRuntime = node.runtime;
    if (!hasNext) {
      const min = rq.head()?.vruntime ?? 0;
      node.savedVruntime = node.vruntime > min ? node.vruntime - min : 0;
      return;
    }
    node.key1 = node.vruntime;
    node.key2 = rq.nextArrival();
  },
  keyOnUnblock(): void {},
  selected(): void {},
});

/** The policies by name. */
export const DRM_SCHED_POLICIES: Readonly<Record<DrmSchedPolicy['name'], DrmSchedPolicy>> = Object.freeze({
  fair: fairPolicy,
  fifo: fifoPolicy,
  rr: rrPolicy,
});

/**
 * A run queue: the entities of one scheduler (and, under FIFO and RR, one priority) that have
 * jobs queued, ordered by the policy's key.
 * @see struct drm_sched_rq
 */
export class DrmSchedRq {
  readonly policy: DrmSchedPolicy;
  readonly stats: DrmSchedQueueStats;

  readonly #runnable: DrmSchedRqNode[] = [];
  readonly #blocked: DrmSchedRqNode[] = [];
  #listed = 0;
  #nextPosition = 0;
  #arrivals = 0;
  /** RR cursor: the key of the entity picked last. */
  #cursorLap = 0;
  #cursorPosition = -1;

  /** @throws {InvalidArgumentError} for a policy without its four functions, or stats without `avgJobTime`. */
  constructor(policy: DrmSchedPolicy, stats: DrmSchedQueueStats) {
    const p = policy as Partial<DrmSchedPolicy> | null;
    if (
      typeof p !== 'object' ||
      p === null ||
      typeof p.keyOnAdd !== 'function' ||
      typeof p.keyOnPop !== 'function' ||
      typeof p.keyOnUnblock !== 'function' ||
      typeof p.selected !== 'function'
    ) {
      throw invalidArgument('DrmSchedRq', 'policy', policy, 'a DrmSchedPolicy (fairPolicy, fifoPolicy, rrPolicy)');
    }
    if (typeof stats !== 'object' || stats === null || typeof stats.avgJobTime !== 'number') {
      throw invalidArgument('DrmSchedRq', 'stats', stats, 'an object { avgJobTime: number }');
    }
    this.policy = policy;
    this.stats = stats;
  }

  /** Entities on the queue's list (idle ones included until they are killed): the score. */
  get listed(): number {
    return this.#listed;
  }

  /** Entities with queued jobs, runnable or blocked. */
  get queued(): number {
    return this.#runnable.length + this.#blocked.length;
  }

  /**
   * The entity's queue went from empty to one job: list it if needed and key it as runnable.
   * @see drm_sched_rq_add_entity()
   */
  add(node: DrmSchedRqNode, submitTime: number, submitSeq: number): void {
    if (!node.onList) {
      node.onList = true;
      node.position = this.#nextPosition++;
      this.#listed++;
    }
    if (node.heap !== OUTSIDE) return;
    this.policy.keyOnAdd(this, node, submitTime, submitSeq);
    this.#insert(this.#runnable, node, RUNNABLE);
  }

  /** Takes the entity off the queue and its list (kill, teardown, moving to another scheduler). */
  remove(node: DrmSchedRqNode): void {
    this.#leaveHeap(node);
    if (node.onList) {
      node.onList = false;
      this.#listed--;
    }
  }

  /**
   * A job was popped from the entity. With `hasNext` the new head job was submitted at
   * `nextTime` as number `nextSeq`; without, the entity's queue is empty.
   * @see drm_sched_rq_pop_entity()
   */
  popped(node: DrmSchedRqNode, hasNext: boolean, nextTime = 0, nextSeq = 0): void {
    if (!hasNext) this.#leaveHeap(node);
    this.policy.keyOnPop(this, node, hasNext, nextTime, nextSeq);
    if (hasNext && node.heap === RUNNABLE) this.#siftAny(this.#runnable, node);
  }

  /** The entity's head job waits for a dependency: not runnable until {@link unblock}. */
  block(node: DrmSchedRqNode): void {
    if (node.heap !== RUNNABLE) return;
    this.#remove(this.#runnable, node);
    this.#insert(this.#blocked, node, BLOCKED);
  }

  /** The dependency signalled: the entity is runnable again. */
  unblock(node: DrmSchedRqNode): void {
    if (node.heap !== BLOCKED) return;
    this.#remove(this.#blocked, node);
    this.policy.keyOnUnblock(this, node);
    this.#insert(this.#runnable, node, RUNNABLE);
  }

  /** The first runnable entity in key order, or null. */
  peek(): DrmSchedRqNode | null {
    return this.#runnable[0] ?? null;
  }

  /** Tells the policy the entity {@link peek} returned was picked. */
  select(node: DrmSchedRqNode): void {
    this.policy.selected(this, node);
  }

  /** The first queued entity in key order, runnable or blocked (FAIR's "leftmost"), or null. */
  head(): DrmSchedRqNode | null {
    const a = this.#runnable[0];
    const b = this.#blocked[0];
    if (a === undefined) return b ?? null;
    if (b === undefined) return a;
    return less(b, a) ? b : a;
  }

  /** A fresh arrival number, for tie-breaks. */
  nextArrival(): number {
    return this.#arrivals++;
  }

  /** RR: keys `node` to run after the cursor, in this lap or the next. */
  placeAfterCursor(node: DrmSchedRqNode): void {
    node.key1 = node.position > this.#cursorPosition ? this.#cursorLap : this.#cursorLap + 1;
    node.key2 = node.position;
  }

  /** RR: the cursor moves to `node`. */
  moveCursor(node: DrmSchedRqNode): void {
    this.#cursorLap = node.key1;
    this.#cursorPosition = node.position;
  }

  #leaveHeap(node: DrmSchedRqNode): void {
    if (node.heap === RUNNABLE) this.#remove(this.#runnable, node);
    else if (node.heap === BLOCKED) this.#remove(this.#blocked, node);
  }

  // A 4-ary min-heap over (key1, key2), each node knowing its index so it can leave from anywhere.
  // Four children per level halve the depth, and so the nodes touched when an entity moves to the back.

  #insert(heap: DrmSchedRqNode[], node: DrmSchedRqNode, where: number): void {
    node.heap = where;
    node.heapIndex = heap.length;
    heap.push(node);
    siftUp(heap, node.heapIndex);
  }

  #remove(heap: DrmSchedRqNode[], node: DrmSchedRqNode): void {
    const i = node.heapIndex;
    const last = heap.pop()!;
    node.heap = OUTSIDE;
    node.heapIndex = -1;
    if (last === node) return;
    heap[i] = last;
    last.heapIndex = i;
    this.#siftAny(heap, last);
  }

  #siftAny(heap: DrmSchedRqNode[], node: DrmSchedRqNode): void {
    siftDown(heap, siftUp(heap, node.heapIndex));
  }
}

function less(a: DrmSchedRqNode, b: DrmSchedRqNode): boolean {
  return a.key1 < b.key1 || (a.key1 === b.key1 && a.key2 < b.key2);
}

function siftUp(heap: DrmSchedRqNode[], index: number): number {
  let i = index;
  const node = heap[i]!;
  while (i > 0) {
    const parent = (i - 1) >> 2;
    const p = heap[parent]!;
    if (!less(node, p)) break;
    heap[i] = p;
    p.heapIndex = i;
    i = parent;
  }
  heap[i] = node;
  node.heapIndex = i;
  return i;
}

function siftDown(heap: DrmSchedRqNode[], index: number): void {
  let i = index;
  const node = heap[i]!;
  const n = heap.length;
  for (;;) {
    const first = 4 * i + 1;
    if (first >= n) break;
    let child = first;
    let c = heap[first]!;
    const last = Math.min(first + 4, n);
    for (let k = first + 1; k < last; k++) {
      const candidate = heap[k]!;
      if (less(candidate, c)) {
        child = k;
        c = candidate;
      }
    }
    if (!less(c, node)) break;
    heap[i] = c;
    c.heapIndex = i;
    i = child;
  }
  heap[i] = node;
  node.heapIndex = i;
}
