/**
 * Benchmark: what does a reservation object cost over a plain array of fences?
 *
 * Questions:
 * 1. `addFence` with slot reuse: a reservation holds one pending fence from each of 64 contexts
 *    (64 GPU queues that used the buffer). One operation is a writer's whole step: take the lock,
 *    `reserveFences(1)`, `addFence` of a later fence from one of the 64 contexts (seeded random),
 *    unlock. The fence replaces its context's older fence, so the list stays at 64.
 * 2. Unlocked iteration: the same 64 fences, every other one signaled; one operation is one full
 *    pass of `fencesUnlocked(DmaResvUsage.Bookkeep)`, which yields the 32 unsignaled ones.
 *
 * Baselines: a plain array of `{ fence, usage }`-like parallel arrays in the same rounds.
 * 1. "same context": find the slot of the same context and replace it, else push: the
 *    replacement search and nothing else. A second row uses the kernel's full rule on the plain
 *    array (same context with an equal or stronger usage and a later-or-same seqno, or any
 *    signaled fence, polled with `isSignaled()`), which is what `addFence` must do, without the
 *    lock and the reservation.
 * 2. A `for` loop over a plain array counting the fences whose `isSignaled()` is false.
 *
 * Target: none; the ratios say what the reservation's rules and bookkeeping cost.
 *
 * Overview and fairness: the fences of a round are made in the untimed `setup`, with the same
 * seeded context sequence on both sides (each side has its own 64 contexts, so the sides never
 * share a fence). The dmabuf side takes the lock with `tryLock()`, which is the synchronous half
 * of `lock()`: `await resv.lock()` would add one microtask turn per operation that the plain
 * array does not pay.
 *
 * Contract: each round checks the list still holds 64 fences (every add reused a slot), and each
 * iteration round checks every pass saw exactly the 32 unsignaled fences.
 *
 * @example
 * ```ts
 * // npm run bench -- dma-resv
 * import { definition } from './dma-resv.bench.js';
 * import { budget } from './harness.js';
 * const report = await definition.run({ budget: budget(true), progress: console.error });
 * ```
 */

import { DmaFence, fenceContextAlloc, type DmaFenceOps } from '../src/fence/dma-fence.js';
import { DmaResv, DmaResvUsage } from '../src/resv/dma-resv.js';
import {
  compare,
  formatDuration,
  seededRandom,
  type BenchContext,
  type BenchDefinition,
  type BenchReport,
  type Row,
  type Side,
} from './harness.js';

const ops: DmaFenceOps = Object.freeze({
  getDriverName: () => 'bench',
  getTimelineName: () => 'resv',
});

/** Contexts (queues) with a fence in the reservation. */
export const CONTEXTS = 64;
/** Writer steps per timed round. */
export const ADD_BATCH = 50_000;
/** Full unlocked passes per timed round. */
export const ITER_BATCH = 10_000;
export const SEED = 0x0de5_e7f0;

const USAGE = DmaResvUsage.Read;

/**
 * `batch` fences, each a later point of one of `CONTEXTS` contexts starting at `base`, chosen
 * by a generator seeded with `SEED + round` so both sides of a round see the same sequence.
 * `seqnos` carries each context's last point from round to round.
 */
function laterFences(base: number, seqnos: number[], round: number, batch: number): DmaFence[] {
  const random = seededRandom((SEED + round) >>> 0);
  const out = new Array<DmaFence>(batch);
  for (let i = 0; i < batch; i++) {
    const c = Math.floor(random() * CONTEXTS);
    out[i] = new DmaFence(ops, base + c, ++seqnos[c]!);
  }
  return out;
}

function checkCount(side: string, n: number): void {
  if (n !== CONTEXTS)
    throw new Error(`dma-resv: ${side} holds ${n} fences after the round, expected ${CONTEXTS}: a slot was not reused`);
}

/** dmabuf, question 1: tryLock, reserveFences(1), addFence, unlock. */
export function resvAddSide(): Side {
  const base = fenceContextAlloc(CONTEXTS);
  const seqnos = new Array<number>(CONTEXTS).fill(1);
  const resv = new DmaResv({ name: 'bench-64-contexts' });
  if (!resv.tryLock()) throw new Error('dma-resv: a fresh reservation was locked');
  resv.reserveFences(CONTEXTS);
  for (let c = 0; c < CONTEXTS; c++) resv.addFence(new DmaFence(ops, base + c, 1), USAGE);
  resv.unlock();
  let round = 0;
  let fences: DmaFence[] = [];
  return {
    label: 'DmaResv',
    setup(batch: number): void {
      fences = laterFences(base, seqnos, round++, batch);
    },
    run(batch: number): void {
      for (let i = 0; i < batch; i++) {
        if (!resv.tryLock()) throw new Error('dma-resv: the reservation is unexpectedly locked');
        resv.reserveFences(1);
        resv.addFence(fences[i]!, USAGE);
        resv.unlock();
      }
      checkCount('DmaResv', resv.numFences);
    },
  };
}

/**
 * Baseline, question 1: a plain array. With `fullRule`, the kernel's replacement rule (same
 * context, usage and order checks, or a signaled slot); otherwise only the same-context search.
 */
export function arrayAddSide(fullRule: boolean): Side {
  const base = fenceContextAlloc(CONTEXTS);
  const seqnos = new Array<number>(CONTEXTS).fill(1);
  const list: DmaFence[] = [];
  const usages: number[] = [];
  for (let c = 0; c < CONTEXTS; c++) {
    list.push(new DmaFence(ops, base + c, 1));
    usages.push(USAGE);
  }
  let round = 0;
  let fences: DmaFence[] = [];
  const addSameContext = (fence: DmaFence, usage: number): void => {
    const context = fence.context;
    for (let i = 0; i < list.length; i++) {
      if (list[i]!.context === context) {
        list[i] = fence;
        usages[i] = usage;
        return;
      }
    }
    list.push(fence);
    usages.push(usage);
  };
  const addFullRule = (fence: DmaFence, usage: number): void => {
    const context = fence.context;
    for (let i = 0; i < list.length; i++) {
      const old = list[i]!;
      if ((old.context === context && usages[i]! >= usage && DmaFence.isLaterOrSame(fence, old)) || old.isSignaled()) {
        list[i] = fence;
        usages[i] = usage;
        return;
      }
    }
    list.push(fence);
    usages.push(usage);
  };
  const add = fullRule ? addFullRule : addSameContext;
  return {
    label: fullRule ? 'Array, kernel rule' : 'Array',
    setup(batch: number): void {
      fences = laterFences(base, seqnos, round++, batch);
    },
    run(batch: number): void {
      for (let i = 0; i < batch; i++) add(fences[i]!, USAGE);
      checkCount(fullRule ? 'Array, kernel rule' : 'Array', list.length);
    },
  };
}

/** 64 pending fences on 64 contexts. */
function pendingFences(): DmaFence[] {
  const base = fenceContextAlloc(CONTEXTS);
  return Array.from({ length: CONTEXTS }, (_, c) => new DmaFence(ops, base + c, 1));
}

/** Signals every other fence (the odd ones). */
function signalHalf(fences: readonly DmaFence[]): void {
  for (let c = 1; c < fences.length; c += 2) fences[c]!.signal();
}

const UNSIGNALED = CONTEXTS / 2;

function checkPass(side: string, seen: number, batch: number): void {
  if (seen !== batch * UNSIGNALED)
    throw new Error(
      `dma-resv: ${side} saw ${seen} unsignaled fences in ${batch} passes, expected ${UNSIGNALED} per pass`,
    );
}

/** dmabuf, question 2: `fencesUnlocked(Bookkeep)` over 64 fences, 32 signaled. */
export function resvIterSide(): Side {
  const fences = pendingFences();
  const resv = new DmaResv({ name: 'bench-half-signaled' });
  if (!resv.tryLock()) throw new Error('dma-resv: a fresh reservation was locked');
  resv.reserveFences(CONTEXTS);
  // Added while pending and signaled after, as work completes: a fence added after signaling
  // would have taken a signaled fence's slot.
  for (const f of fences) resv.addFence(f, USAGE);
  resv.unlock();
  signalHalf(fences);
  return {
    label: 'DmaResv.fencesUnlocked',
    run(batch: number): void {
      let seen = 0;
      for (let i = 0; i < batch; i++) {
        for (const entry of resv.fencesUnlocked(DmaResvUsage.Bookkeep)) if (entry.fence !== null) seen++;
      }
      checkPass('DmaResv.fencesUnlocked', seen, batch);
    },
  };
}

/** Baseline, question 2: a plain array, skipping the signaled fences. */
export function arrayIterSide(): Side {
  const fences = pendingFences();
  signalHalf(fences);
  return {
    label: 'Array filter',
    run(batch: number): void {
      let seen = 0;
      for (let i = 0; i < batch; i++) {
        for (let j = 0; j < fences.length; j++) if (!fences[j]!.isSignaled()) seen++;
      }
      checkPass('Array filter', seen, batch);
    },
  };
}

/** ns per operation of both sides of a row, for the notes. */
function perOp(row: Row): string {
  return `${formatDuration(1e9 / row.dmabuf!.value)} per op (baseline ${formatDuration(1e9 / row.baseline!.value)})`;
}

export const definition: BenchDefinition = {
  name: 'dma-resv',
  question:
    'What do addFence with slot reuse on a 64-context reservation, and an unlocked ' +
    'pass over 64 fences half signaled, cost next to a plain array doing the same?',
  baseline:
    'plain arrays: same-context search (and the kernel replacement ' +
    'rule) for addFence; a for loop with isSignaled() for the iteration',
  target: 'none: ratios reported',
  async run(ctx: BenchContext): Promise<BenchReport> {
    const { rounds, warmup } = ctx.budget;
    const rows: Row[] = [];
    ctx.progress('dma-resv: addFence with slot reuse, 64 contexts');
    const add = await compare({
      name: `addFence, slot reuse, ${CONTEXTS} contexts`,
      candidate: resvAddSide(),
      baseline: arrayAddSide(false),
      batch: ADD_BATCH,
      rounds,
      warmup,
    });
    rows.push({
      ...add,
      note: `one op = tryLock + reserveFences(1) + addFence + unlock vs find-same-context-or-push; ${perOp(add)}`,
    });
    ctx.progress('dma-resv: addFence vs the kernel rule on a plain array');
    const rule = await compare({
      name: `addFence, slot reuse, ${CONTEXTS} contexts, vs kernel rule`,
      candidate: resvAddSide(),
      baseline: arrayAddSide(true),
      batch: ADD_BATCH,
      rounds,
      warmup,
    });
    rows.push({
      ...rule,
      note:
        `baseline applies dma_resv_add_fence's rule (same context + usage + later-or-same, or ` +
        `signaled via isSignaled()) to a plain array, no lock, no reservation; ${perOp(rule)}`,
    });
    ctx.progress('dma-resv: unlocked iteration, 64 fences, half signaled');
    const iter = await compare({
      name: `fencesUnlocked, ${CONTEXTS} fences, half signaled`,
      candidate: resvIterSide(),
      baseline: arrayIterSide(),
      batch: ITER_BATCH,
      rounds,
      warmup,
    });
    rows.push({
      ...iter,
      note: `one op = one full pass yielding the ${UNSIGNALED} unsignaled fences; ${perOp(iter)}`,
    });
    return { rows, notes: [] };
  },
};
