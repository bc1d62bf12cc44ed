/**
 * Benchmark: can DrmExec lock overlapping buffer sets as fast as ordered async-mutex locking,
 * without needing the order?
 *
 * Question: 16 async tasks each run transactions that lock 4 of 16 shared objects (a seeded
 * random choice, in random order), hold them across one `setImmediate` turn (the "work"), and
 * unlock. Is {@link DrmExec} (objects with a {@link DmaResv} and a trivial refcount) at least as
 * fast in transactions per second as async-mutex acquiring the same sets in a globally sorted
 * order, the only deadlock-free discipline a plain mutex offers? And does the ordering matter:
 * run in the objects' random order, does async-mutex deadlock while DrmExec completes?
 *
 * Baseline: async-mutex 0.5.0, one `Mutex` per object; each transaction sorts its 4 indices,
 * acquires in that order, holds across the same turn and releases in reverse.
 *
 * Target: DrmExec (random order) >= 1x the sorted async-mutex rate. Two diagnostic rows carry
 * no target: DrmExec locking in sorted order (does the order spare wait-die its back-offs?) and
 * DrmExec on a wound-wait class (objects and ticket; the reservation class is wait-die).
 *
 * Deadlock check (untimed): the same workload with async-mutex in the random order, watched by a
 * 200 ms no-progress watchdog. When it fires, the tasks' wait-for graph (which task holds each
 * object, which object each task waits for) is searched for a cycle, which proves the stall is a
 * deadlock and not slowness; the transactions then in flight are reported as stalled, and the
 * mutexes' queues are cancelled so the tasks unwind. DrmExec runs the same random-order
 * workload under the same watchdog and must complete it. Back-offs per transaction (body re-runs
 * of `untilAllLocked`) are reported for every DrmExec run.
 *
 * Overview: the plans (which objects each task locks, in which order) are generated once per
 * seed before timing and shared by both sides; a round is every task running its plan to the
 * end, joined with `Promise.all`.
 *
 * Contract: every round checks that every transaction completed and every object is unlocked
 * with its reference count back at 1. The watched runs always end: a stalled async-mutex run is
 * unwound by cancelling its queues, a stalled DrmExec run (not expected) by aborting its signal.
 *
 * @example
 * ```ts
 * // npm run bench -- drm-exec
 * import { definition } from './drm-exec.bench.js';
 * import { budget } from './harness.js';
 * const report = await definition.run({ budget: budget(true), progress: console.error });
 * ```
 */

import { E_CANCELED, Mutex, type MutexInterface } from 'async-mutex';
import { DrmExec, type DrmExecObject } from '../src/exec/drm-exec.js';
import { WwClass } from '../src/locking/ww-mutex.js';
import { DmaResv } from '../src/resv/dma-resv.js';
import {
  compare,
  median,
  seededRandom,
  type BenchContext,
  type BenchDefinition,
  type BenchReport,
  type Row,
  type Side,
} from './harness.js';

export const TASKS = 16;
export const OBJECTS = 16;
export const PER_TX = 4;
/** Transactions per task per timed round (a round is TASKS x this). */
export const TX_PER_TASK = 32;
/** How long the deadlock check waits without a completed transaction before it looks for a cycle. */
export const WATCHDOG_MS = 200;
export const SEED = 0x5eed_e7ec;

/** One task's plan: for each transaction, the object indices in locking order. */
export type Plan = readonly (readonly number[])[];

/** `k` distinct integers of [0, n), in random order (a partial Fisher-Yates shuffle). */
export function pickDistinct(n: number, k: number, random: () => number): number[] {
  if (!Number.isSafeInteger(n) || !Number.isSafeInteger(k) || k < 0 || k > n) {
    throw new RangeError(`pickDistinct: need 0 <= k <= n integers, got n=${n}, k=${k}`);
  }
  const pool = Array.from({ length: n }, (_, i) => i);
  for (let i = 0; i < k; i++) {
    const j = i + Math.floor(random() * (n - i));
    [pool[i], pool[j]] = [pool[j]!, pool[i]!];
  }
  return pool.slice(0, k);
}

/** Plans for `tasks` tasks of `txPerTask` transactions, each locking `perTx` of `objects`. */
export function makePlans(
  seed: number,
  tasks = TASKS,
  txPerTask = TX_PER_TASK,
  objects = OBJECTS,
  perTx = PER_TX,
): Plan[] {
  const random = seededRandom(seed);
  return Array.from({ length: tasks }, () =>
    Array.from({ length: txPerTask }, () => pickDistinct(objects, perTx, random)),
  );
}

/**
 * A cycle in a wait-for graph: task t waits for object `waitingOn[t]` (-1: not waiting), held by
 * task `holder[o]` (-1: free or held by nobody we track). Returns the tasks of one cycle in
 * wait order, or null. With plain mutexes a cycle never resolves: it is a deadlock.
 */
export function findWaitCycle(holder: readonly number[], waitingOn: readonly number[]): number[] | null {
  const state = new Array<number>(waitingOn.length).fill(0); // 0 unvisited, 1 on the current path, 2 done
  for (let start = 0; start < waitingOn.length; start++) {
    const path: number[] = [];
    let t = start;
    while (t >= 0 && t < waitingOn.length && state[t] === 0) {
      state[t] = 1;
      path.push(t);
      const o = waitingOn[t]!;
      t = o < 0 ? -1 : (holder[o] ?? -1);
    }
    if (t >= 0 && t < waitingOn.length && state[t] === 1) return path.slice(path.indexOf(t));
    for (const p of path) state[p] = 2;
  }
  return null;
}

/** A buffer object for DrmExec: a reservation and a reference count starting at 1. */
class BenchObject implements DrmExecObject {
  readonly resv: DmaResv;
  refs = 1;
  constructor(name: string, wwClass?: WwClass) {
    this.resv = new DmaResv(wwClass !== undefined ? { name, wwClass } : { name });
  }
  get(): void {
    this.refs++;
  }
  put(): void {
    if (--this.refs <= 0)
      throw new Error(`drm-exec bench: ${this.resv.mutex.name} dropped its last reference; a put() too many`);
  }
}

const immediate = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** What one run of a side leaves behind. */
interface Counts {
  completed: number;
  backoffs: number;
  /** Transactions started and not finished. */
  inFlight: number;
}

function checkObjects(side: string, objects: readonly BenchObject[]): void {
  for (const o of objects) {
    if (o.resv.isLocked || o.refs !== 1) {
      throw new Error(
        `drm-exec: ${side} left ${o.resv.mutex.name} ${o.resv.isLocked ? 'locked' : 'unlocked'} ` +
          `with ${o.refs} references (expected unlocked, 1)`,
      );
    }
  }
}

/** One DrmExec task: each transaction locks its objects in plan order (or sorted), holds them a turn, unlocks. */
async function drmExecTask(
  plan: Plan,
  objects: readonly BenchObject[],
  options: DrmExecSideOptions,
  counts: Counts,
  isStopped: () => boolean = () => false,
): Promise<void> {
  const { sorted = false, wwClass, signal } = options;
  const execOptions = { ...(wwClass !== undefined ? { wwClass } : {}), ...(signal !== undefined ? { signal } : {}) };
  for (const planned of plan) {
    if (isStopped()) return;
    const tx = sorted ? [...planned].sort((a, b) => a - b) : planned;
    let runs = 0;
    counts.inFlight++;
    try {
      await using exec = new DrmExec(execOptions);
      await exec.untilAllLocked(async (e) => {
        runs++;
        for (const i of tx) await e.lockObj(objects[i]!);
      });
      counts.backoffs += runs - 1;
      await immediate();
      counts.completed++;
    } catch (err) {
      if (signal?.aborted === true) return; // the watchdog gave up on this run
      throw err;
    } finally {
      counts.inFlight--;
    }
  }
}

/** One async-mutex task in sorted order: sort, acquire in order, hold a turn, release in reverse. */
async function sortedMutexTask(plan: Plan, mutexes: readonly Mutex[], counts: Counts): Promise<void> {
  const releases: MutexInterface.Releaser[] = [];
  for (const planned of plan) {
    const tx = [...planned].sort((a, b) => a - b);
    for (const i of tx) releases.push(await mutexes[i]!.acquire());
    await immediate();
    counts.completed++;
    while (releases.length > 0) releases.pop()!();
  }
}

/**
 * The floor for sorted locking: the least a promise-based mutex can do. Free: lock() returns a
 * shared resolved promise; taken: one promise per waiter, and unlock() hands the lock straight to
 * the oldest waiter. No cancellation, no timeouts, no releaser objects: bench only.
 */
export class MinimalMutex {
  #locked = false;
  readonly #waiters: (() => void)[] = [];

  get isLocked(): boolean {
    return this.#locked;
  }

  lock(): Promise<void> {
    if (!this.#locked) {
      this.#locked = true;
      return RESOLVED;
    }
    return new Promise<void>((resolve) => this.#waiters.push(resolve));
  }

  unlock(): void {
    const next = this.#waiters.shift();
    // The lock passes to `next` without being freed in between.
    if (next !== undefined) next();
    else this.#locked = false;
  }
}

const RESOLVED: Promise<void> = Promise.resolve();

/** One minimal-mutex task in sorted order: the same steps as {@link sortedMutexTask}. */
async function sortedMinimalTask(plan: Plan, mutexes: readonly MinimalMutex[], counts: Counts): Promise<void> {
  const held: MinimalMutex[] = [];
  for (const planned of plan) {
    const tx = [...planned].sort((a, b) => a - b);
    for (const i of tx) {
      const m = mutexes[i]!;
      await m.lock();
      held.push(m);
    }
    await immediate();
    counts.completed++;
    while (held.length > 0) held.pop()!.unlock();
  }
}

/** Floor baseline: {@link MinimalMutex}, one per object, acquired in sorted order. */
export function sortedMinimalSide(plans: readonly Plan[]): Side {
  const mutexes = Array.from({ length: OBJECTS }, () => new MinimalMutex());
  const total = plans.reduce((n, p) => n + p.length, 0);
  return {
    label: 'minimal mutex sorted',
    async run(batch: number): Promise<void> {
      if (batch !== total) throw new Error(`drm-exec: batch ${batch} differs from the plans' ${total} transactions`);
      const counts: Counts = { completed: 0, backoffs: 0, inFlight: 0 };
      await Promise.all(plans.map((plan) => sortedMinimalTask(plan, mutexes, counts)));
      if (counts.completed !== total)
        throw new Error(`drm-exec: minimal mutex completed ${counts.completed} of ${total} transactions`);
      if (mutexes.some((m) => m.isLocked)) throw new Error('drm-exec: minimal mutex left a mutex locked');
    },
  };
}

/** How the DrmExec side locks: in plan order or sorted, on the reservation class or another. */
export interface DrmExecSideOptions {
  readonly sorted?: boolean;
  /** Lock class of the objects and the exec's ticket; the reservation class (wait-die) by default. */
  readonly wwClass?: WwClass;
  /** Given to every DrmExec; aborting it makes the tasks give up (the watched run's way out). */
  readonly signal?: AbortSignal;
}

/**
 * dmabuf side: every task runs its plan through DrmExec. Back-offs per transaction of each round go to
 * `backoffsPerTx`.
 */
export function drmExecSide(plans: readonly Plan[], options: DrmExecSideOptions, backoffsPerTx: number[]): Side {
  const objects = Array.from({ length: OBJECTS }, (_, i) => new BenchObject(`bo${i}`, options.wwClass));
  const total = plans.reduce((n, p) => n + p.length, 0);
  return {
    label:
      `DrmExec${options.sorted === true ? ' sorted' : ''}` +
      (options.wwClass !== undefined ? ` ${options.wwClass.algorithm}` : ''),
    async run(batch: number): Promise<void> {
      if (batch !== total) throw new Error(`drm-exec: batch ${batch} differs from the plans' ${total} transactions`);
      const counts: Counts = { completed: 0, backoffs: 0, inFlight: 0 };
      await Promise.all(plans.map((plan) => drmExecTask(plan, objects, options, counts)));
      if (counts.completed !== total)
        throw new Error(`drm-exec: DrmExec completed ${counts.completed} of ${total} transactions`);
      checkObjects('DrmExec', objects);
      backoffsPerTx.push(counts.backoffs / total);
    },
  };
}

/** Baseline: async-mutex, one Mutex per object, acquired in sorted order. */
export function sortedMutexSide(plans: readonly Plan[]): Side {
  const mutexes = Array.from({ length: OBJECTS }, () => new Mutex());
  const total = plans.reduce((n, p) => n + p.length, 0);
  return {
    label: 'async-mutex sorted',
    async run(batch: number): Promise<void> {
      if (batch !== total) throw new Error(`drm-exec: batch ${batch} differs from the plans' ${total} transactions`);
      const counts: Counts = { completed: 0, backoffs: 0, inFlight: 0 };
      await Promise.all(plans.map((plan) => sortedMutexTask(plan, mutexes, counts)));
      if (counts.completed !== total)
        throw new Error(`drm-exec: async-mutex completed ${counts.completed} of ${total} transactions`);
      if (mutexes.some((m) => m.isLocked())) throw new Error('drm-exec: async-mutex left a mutex locked');
    },
  };
}

/** The outcome of one watched run of the random-order workload. */
export interface WatchedRun {
  readonly total: number;
  readonly completed: number;
  /** Transactions in flight when the watchdog fired (0 when the run completed). */
  readonly stalled: number;
  /** Tasks of a wait-for cycle found when the watchdog fired, or null. */
  readonly cycle: readonly number[] | null;
  readonly backoffs: number;
}

/** One watchdog interval: `promise` resolves when it is over; `cancel` drops it early. */
export interface WatchdogInterval {
  readonly promise: Promise<void>;
  cancel(): void;
}

/** Starts watchdog intervals; the benchmark uses real time, tests count event-loop turns. */
export type Watchdog = () => WatchdogInterval;

/** Intervals of `ms` real milliseconds. */
export function timeWatchdog(ms: number): Watchdog {
  return () => {
    let timer: NodeJS.Timeout | undefined;
    const promise = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
    });
    return { promise, cancel: () => clearTimeout(timer) };
  };
}

/** Intervals of `turns` event-loop turns (setImmediate), for tests that must not sleep. */
export function turnWatchdog(turns: number): Watchdog {
  return () => {
    let cancelled = false;
    const promise = new Promise<void>((resolve) => {
      let left = turns;
      const step = (): void => {
        if (cancelled) return;
        if (--left <= 0) resolve();
        else setImmediate(step);
      };
      setImmediate(step);
    });
    return {
      promise,
      cancel: () => {
        cancelled = true;
      },
    };
  };
}

/**
 * Runs `tasks` until they all finish or `completed()` does not move for one watchdog interval;
 * on a stall calls `onStall` (which must make the tasks finish) and reports that it did.
 */
async function watch(
  tasks: Promise<unknown>[],
  completed: () => number,
  watchdog: Watchdog,
  onStall: () => void,
): Promise<boolean> {
  const all = Promise.all(tasks).then(() => true);
  let last = completed();
  for (;;) {
    const interval = watchdog();
    const finished = await Promise.race([all, interval.promise.then(() => false)]);
    interval.cancel();
    if (finished) return false;
    if (completed() === last) {
      onStall();
      await all;
      return true;
    }
    last = completed();
  }
}

/** The random-order workload with async-mutex, under the watchdog. */
export async function unsortedMutexRun(
  plans: readonly Plan[],
  watchdog: Watchdog = timeWatchdog(WATCHDOG_MS),
): Promise<WatchedRun> {
  const mutexes = Array.from({ length: OBJECTS }, () => new Mutex());
  const holder = new Array<number>(OBJECTS).fill(-1);
  const waitingOn = new Array<number>(plans.length).fill(-1);
  const total = plans.reduce((n, p) => n + p.length, 0);
  let completed = 0;
  let stopped = false;
  const task = async (t: number, plan: Plan): Promise<void> => {
    for (const tx of plan) {
      if (stopped) return;
      const held: { index: number; release: MutexInterface.Releaser }[] = [];
      try {
        for (const i of tx) {
          waitingOn[t] = i;
          const release = await mutexes[i]!.acquire();
          waitingOn[t] = -1;
          holder[i] = t;
          held.push({ index: i, release });
        }
        await immediate();
        completed++;
      } catch (err) {
        if (err === E_CANCELED) return; // the watchdog unwinds a deadlocked run
        throw err;
      } finally {
        for (let j = held.length - 1; j >= 0; j--) {
          holder[held[j]!.index] = -1;
          held[j]!.release();
        }
      }
    }
  };
  let stalled = 0;
  let cycle: number[] | null = null;
  await watch(
    plans.map((plan, t) => task(t, plan)),
    () => completed,
    watchdog,
    () => {
      stalled = waitingOn.filter((o) => o >= 0).length;
      cycle = findWaitCycle(holder, waitingOn);
      stopped = true;
      for (const m of mutexes) m.cancel();
    },
  );
  return { total, completed, stalled, cycle, backoffs: 0 };
}

/** The random-order workload with DrmExec, under the same watchdog. */
export async function drmExecWatchedRun(
  plans: readonly Plan[],
  watchdog: Watchdog = timeWatchdog(WATCHDOG_MS),
): Promise<WatchedRun> {
  const objects = Array.from({ length: OBJECTS }, (_, i) => new BenchObject(`bo${i}`));
  const total = plans.reduce((n, p) => n + p.length, 0);
  const counts: Counts = { completed: 0, backoffs: 0, inFlight: 0 };
  const abort = new AbortController();
  let stalled = 0;
  const stalledRun = await watch(
    plans.map((plan) => drmExecTask(plan, objects, { signal: abort.signal }, counts, () => abort.signal.aborted)),
    () => counts.completed,
    watchdog,
    () => {
      // Not expected: report what was in flight, then abort the lock waits so the tasks end.
      stalled = counts.inFlight;
      abort.abort(new Error('drm-exec: the watchdog saw no progress'));
    },
  );
  checkObjects(stalledRun ? 'DrmExec (watched, after a stall)' : 'DrmExec (watched)', objects);
  return { total, completed: counts.completed, stalled, cycle: null, backoffs: counts.backoffs };
}

function describeCycle(cycle: readonly number[] | null): string {
  if (cycle === null) return 'no wait-for cycle found';
  return `wait-for cycle ${[...cycle, cycle[0]!].map((t) => `task ${t}`).join(' -> ')}`;
}

export const definition: BenchDefinition = {
  name: 'drm-exec',
  question:
    'With 16 tasks each locking 4 of 16 shared objects across an await, is DrmExec (any order) at least as ' +
    'fast as async-mutex in sorted order, and does unsorted async-mutex deadlock where DrmExec completes?',
  baseline:
    'async-mutex 0.5.0, one Mutex per object, acquired in globally ' +
    'sorted order (sort per transaction), released in reverse',
  target: 'DrmExec (random order) >= 1x the sorted async-mutex rate in transactions/s',
  async run(ctx: BenchContext): Promise<BenchReport> {
    const { rounds, warmup, quick } = ctx.budget;
    const rows: Row[] = [];
    const notes: string[] = [];
    const plans = makePlans(SEED);
    const batch = TASKS * TX_PER_TASK;

    const cases: { name: string; options: DrmExecSideOptions; target: boolean; note: string }[] = [
      {
        name: `${TASKS} tasks x ${PER_TX} of ${OBJECTS} objects`,
        options: {},
        target: true,
        note: 'DrmExec locks in the random plan order',
      },
      {
        name: `${TASKS} tasks x ${PER_TX} of ${OBJECTS} objects, DrmExec sorted`,
        options: { sorted: true },
        target: false,
        note: 'diagnostic, no target: DrmExec also locks in sorted order',
      },
      {
        name: `${TASKS} tasks x ${PER_TX} of ${OBJECTS} objects, wound-wait class`,
        options: { wwClass: new WwClass('bench_wound_wait', 'wound-wait') },
        target: false,
        note:
          "diagnostic, no target: objects and ticket on a 'wound-wait' " +
          'class instead of the reservation class (wait-die), random order',
      },
    ];
    for (const c of cases) {
      ctx.progress(`drm-exec: ${c.name}`);
      const backoffs: number[] = [];
      const row = await compare({
        name: c.name,
        candidate: drmExecSide(plans, c.options, backoffs),
        baseline: sortedMutexSide(plans),
        batch,
        rounds,
        warmup,
        ...(c.target ? { target: { op: '>=', value: 1 } as const } : {}),
      });
      // Back-offs are known only after the rounds ran (warm-up rounds included).
      rows.push({
        ...row,
        note:
          `one op = one transaction (lock ${PER_TX}, one setImmediate turn held, unlock); ${batch} per round; ` +
          `DrmExec back-offs per transaction: median ${median(backoffs).toFixed(2)} (range ` +
          `${Math.min(...backoffs).toFixed(2)}-${Math.max(...backoffs).toFixed(2)}); ${c.note}`,
      });
    }

    // The floor (issue 13): how far DrmExec, and async-mutex itself, are from the least a sorted
    // promise mutex can cost. No target.
    ctx.progress(`drm-exec: against a minimal sorted mutex (floor)`);
    const floorBackoffs: number[] = [];
    const floorRow = await compare({
      name: `${TASKS} tasks x ${PER_TX} of ${OBJECTS} objects, vs minimal mutex`,
      candidate: drmExecSide(plans, {}, floorBackoffs),
      baseline: sortedMinimalSide(plans),
      batch,
      rounds,
      warmup,
    });
    rows.push({
      ...floorRow,
      note:
        'floor, no target: baseline is a minimal hand-written promise mutex (no cancellation, direct hand-off), ' +
        'sorted order; ' +
        `DrmExec in the random plan order; back-offs per transaction: median ${median(floorBackoffs).toFixed(2)}`,
    });
    rows.push(
      await compare({
        name: `${TASKS} tasks x ${PER_TX} of ${OBJECTS} objects, async-mutex vs minimal`,
        candidate: sortedMutexSide(plans),
        baseline: sortedMinimalSide(plans),
        batch,
        rounds,
        warmup,
        note: 'floor, no target: how far the library a user would pick is from the minimal sorted mutex',
      }),
    );

    const runs = quick ? 3 : 5;
    ctx.progress(`drm-exec: random order under a ${WATCHDOG_MS} ms watchdog, ${runs} seeds`);
    let deadlocked = 0;
    let execCompleted = 0;
    const perSeed: string[] = [];
    const execBackoffs: number[] = [];
    for (let r = 0; r < runs; r++) {
      const seed = (SEED + r + 1) >>> 0;
      const seedPlans = makePlans(seed);
      const mutexRun = await unsortedMutexRun(seedPlans);
      const execRun = await drmExecWatchedRun(seedPlans);
      if (mutexRun.cycle !== null) deadlocked++;
      if (execRun.completed === execRun.total) execCompleted++;
      execBackoffs.push(execRun.backoffs / Math.max(1, execRun.completed));
      perSeed.push(
        `seed ${seed}: async-mutex ${mutexRun.completed}/${mutexRun.total} completed, ` +
          `${mutexRun.stalled} stalled (${describeCycle(mutexRun.cycle)}); ` +
          `DrmExec ${execRun.completed}/${execRun.total} completed, ${execRun.stalled} stalled, ` +
          `${(execRun.backoffs / Math.max(1, execRun.completed)).toFixed(3)} back-offs/transaction`,
      );
    }
    notes.push(
      `random lock order, ${runs} seeds, ${TASKS} tasks x ${TX_PER_TASK} ` +
        `transactions, ${WATCHDOG_MS} ms no-progress watchdog: ` +
        `async-mutex deadlocked (wait-for cycle found) in ${deadlocked} of ${runs}; ` +
        `DrmExec completed all transactions in ${execCompleted} of ${runs}, ` +
        `median ${median(execBackoffs).toFixed(3)} back-offs/transaction`,
    );
    for (const line of perSeed) notes.push(line);
    return { rows, notes };
  },
};
