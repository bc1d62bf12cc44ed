/**
 * Benchmark: what do the lock validator's hooks cost, switched off and switched on?
 *
 * Question: while the validator is off, each hook on a hot path is one `lockdep !== null` check
 * of a live ES-module binding. Does that keep fence signalling and an uncontended ww lock/unlock
 * within 5% of the same code without the hooks? What do the same operations cost with the
 * validator on (record mode, acquisition stacks on and off), and what does its tracker cost the
 * rest of the process?
 *
 * Baseline ("hooks stripped"): `src/` copied to a temporary directory several times, with
 * {@link stripLockdepHooks} removing the hooks from `fence/dma-fence.ts` and `locking/ww-mutex.ts`
 * in some copies (on the syntax tree: the `lockdep` binding as the constant `null`, folded, dead
 * code dropped); the other copies stay unmodified. All are imported into this process, each a
 * module graph of its own, so both sides are loaded the same way and differ only in the hooks.
 *
 * Target: hooks present but off >= 0.95x the stripped rate, for fence create + 1 callback +
 * signal and for uncontended `await m.lock(); m.unlock()` (plain and inside one acquire context).
 *
 * Overview, in three phases, because the validator changes the whole process:
 * 1. Off, before `src/node.ts` is loaded. On a shared machine single rounds move by 20% or more,
 *    and V8 gives some copies of the very same code faster machine code than others (up to 1.5x
 *    apart for fence signalling). So every copy is warmed, all copies are timed round-robin in
 *    short rounds, each copy is rated by its 90th-percentile round (load only slows a round
 *    down), and the ratio is the median over all (hooked, stripped) copy pairs. Each row has a
 *    "same code" twin comparing two sets of stripped copies the same way: its distance from
 *    1.00x is the resolution.
 * 2. Importing `src/node.ts` enables an `AsyncLocalStorage`, and the first lock recorded while on
 *    enables the tracker's promise hook. Neither can be undone: every promise of the process pays
 *    from then on. The process rows sample the stripped build and a bare Promise loop before the
 *    import, after it, and after the validator was on once, one phase after the other.
 * 3. On vs off for `src/` itself, interleaved by {@link compare}: each side's untimed setup turns
 *    the validator on or off. `disableLockdep()` afterwards.
 * This benchmark must therefore run last in a full run (see `bench/index.ts`).
 *
 * Contract: every round checks that all its callbacks ran, or all its locks were taken and the
 * mutex is free again. The stripping fails loudly when it deletes nothing or leaves a hook, and
 * the full run type-checks the stripped copy (last, so the compiler's heap weighs on no timing).
 *
 * @example
 * ```ts
 * // npm run bench -- lockdep
 * import { definition } from './lockdep.bench.js';
 * import { budget } from './harness.js';
 * const report = await definition.run({ budget: budget(true), progress: console.error });
 * ```
 */

import { disableLockdep, enableLockdep, lockdepEnabled, lockdepReports, resetLockdep } from '../src/locking/lockdep.js';
import {
  compare,
  formatRate,
  median,
  opsPerSecond,
  quantile,
  ratioStats,
  throughputRow,
  type BenchContext,
  type BenchDefinition,
  type BenchReport,
  type Row,
  type Side,
  type Target,
} from './harness.js';
import { promiseSide } from './fence-signal.bench.js';
import {
  hookedBuild,
  loadBuild,
  typeCheckCopy,
  writeCopies,
  type Build,
  type CopySet,
  type SourceCopy,
} from './lockdep-strip.js';

export * from './lockdep-strip.js';

/** Fences per round in the process and enabled rows (as in fence-signal). */
export const FENCE_BATCH = 50_000;
/** Lock/unlock pairs per round in the process and enabled rows (as in ww-mutex). */
export const LOCK_BATCH = 20_000;
/** Lock/unlock pairs per round with a stack captured per lock (tens of microseconds each). */
export const STACK_LOCK_BATCH = 500;
/**
 * Operations per round in the off-vs-stripped rows: short rounds, many of them (a fence round
 * allocates a few megabytes, so only some rounds include a young-generation collection).
 */
export const OFF_BATCH = { fence: 20_000, lock: 10_000 } as const;

/** Sizes of phase 1: copies per set, timed rounds, untimed warm-up runs per copy. */
export function offBudget(quick: boolean): { copies: number; rounds: number; warm: number } {
  return quick ? { copies: 2, rounds: 16, warm: 8 } : { copies: 6, rounds: 40, warm: 15 };
}

// ---------------------------------------------------------------------------------------------
// The measured operations

let counted = 0;
const onSignal = (): void => {
  counted++;
};

function check(what: string, expected: number, stillLocked = false): void {
  if (counted !== expected)
    throw new Error(`lockdep: ${what} counted ${counted}, expected ${expected}; the round did not complete`);
  if (stillLocked) throw new Error(`lockdep: ${what} left the mutex locked at the end of the round`);
}

/** Fence create + one callback + signal (with `timestamp`: `signal(ts)`, no clock read); one `await` per batch. */
export function fenceSide(build: Build, timestamp?: number): Side {
  const { DmaFence, fenceContextAlloc } = build.fence;
  const ops = Object.freeze({ getDriverName: () => 'bench', getTimelineName: () => 'lockdep' });
  const context = fenceContextAlloc();
  return {
    label: build.label,
    async run(batch: number): Promise<void> {
      counted = 0;
      for (let i = 0; i < batch; i++) {
        const fence = new DmaFence(ops, context, i);
        fence.addCallback(onSignal);
        fence.signal(timestamp);
      }
      await undefined;
      check(`${build.label} fence signal`, batch);
    },
  };
}

/** Uncontended `await m.lock(); m.unlock()`; with `withCtx`, all inside one acquire context per round. */
export function lockSide(build: Build, withCtx: boolean): Side {
  const { WwAcquireCtx, WwClass, WwMutex } = build.ww;
  const cls = new WwClass('bench_lockdep_ww_class', 'wait-die');
  const m = new WwMutex(cls, 'uncontended');
  return {
    label: build.label,
    async run(batch: number): Promise<void> {
      counted = 0;
      if (withCtx) {
        using ctx = new WwAcquireCtx(cls);
        for (let i = 0; i < batch; i++) {
          await m.lock(ctx);
          counted++;
          m.unlock();
        }
      } else {
        for (let i = 0; i < batch; i++) {
          await m.lock();
          counted++;
          m.unlock();
        }
      }
      check(`${build.label} lock/unlock`, batch, m.isLocked);
    },
  };
}

/** The side factories of one instance of this module. */
export interface Loops {
  readonly fenceSide: typeof fenceSide;
  readonly lockSide: typeof lockSide;
}

/**
 * The side factories of a separate instance of this module, for one build. V8 keeps type
 * feedback per function literal: if one `run` loop served several builds, its `m.lock()` and
 * `new DmaFence()` sites would see several classes and go polymorphic, and the rows would
 * measure that dispatch. Importing this file again under another query string gives each build
 * loops of its own, compiled from the same text.
 */
export async function loopsFor(key: string): Promise<Loops> {
  return (await import(`${import.meta.url}?loops=${encodeURIComponent(key)}`)) as Loops;
}

// ---------------------------------------------------------------------------------------------
// Timing

async function runOnce(side: Side, batch: number): Promise<void> {
  await side.setup?.(batch);
  await side.run(batch);
}

/**
 * Round-robin timing of many sides: `warm` untimed runs each, then `rounds` rounds in which every
 * side runs once, starting one further along each round so no side always follows the same one.
 * @returns per side, its rate in each round.
 */
export async function roundRobin(
  sides: readonly Side[],
  batch: number,
  rounds: number,
  warm: number,
): Promise<number[][]> {
  for (const side of sides) for (let i = 0; i < warm; i++) await runOnce(side, batch);
  const rates = sides.map((): number[] => []);
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < sides.length; k++) {
      const i = (k + r) % sides.length;
      await sides[i]!.setup?.(batch);
      const t0 = performance.now();
      await sides[i]!.run(batch);
      rates[i]!.push(opsPerSecond(batch, performance.now() - t0));
    }
  }
  return rates;
}

/** A copy's steady rate: the 90th percentile of its rounds (load only ever slows a round down). */
export function steadyRate(rates: readonly number[]): number {
  return quantile(rates, 0.9);
}

/**
 * Compares two sets of copies by their steady rates. The ratio is the median over every
 * (candidate copy, baseline copy) pair, quartiles over the pairs: V8 gives some copies of the very
 * same code a faster machine-code variant than others (a per-copy lottery, up to 1.5x apart for
 * fence signalling), and comparing every copy with every other keeps one lucky copy from deciding.
 */
export function crossRow(spec: {
  name: string;
  candidate: { label: string; rates: readonly number[][] };
  baseline: { label: string; rates: readonly number[][] };
  batch: number;
  rounds: number;
  target?: Target;
  note: string;
}): Row {
  const cand = spec.candidate.rates.map(steadyRate);
  const base = spec.baseline.rates.map(steadyRate);
  const ratio = ratioStats(
    cand.flatMap((c) => base.map(() => c)),
    cand.flatMap(() => base),
  );
  return throughputRow({
    ...spec,
    candidate: { label: spec.candidate.label, rates: cand },
    baseline: { label: spec.baseline.label, rates: base },
    ratio,
    samples: spec.rounds,
  });
}

/**
 * A row for samples of one phase against samples of an earlier phase, paired by round index (not
 * interleaved). The note adds each phase's best round, the steadier comparison when the load
 * changed between the phases.
 */
function sequentialRow(
  name: string,
  after: { label: string; rates: number[] },
  before: { label: string; rates: number[] },
  batch: number,
  note: string,
): Row {
  const [a, b] = [Math.max(...after.rates), Math.max(...before.rates)];
  return {
    name,
    kind: 'throughput',
    dmabuf: { label: after.label, value: median(after.rates), unit: 'ops/s' },
    baseline: { label: before.label, value: median(before.rates), unit: 'ops/s' },
    ratio: ratioStats(after.rates, before.rates),
    target: null,
    samples: after.rates.length,
    batch,
    note: `${note}; best rounds ${formatRate(a)}/s vs ${formatRate(b)}/s (${(a / b).toFixed(2)}x)`,
  };
}

// ---------------------------------------------------------------------------------------------
// The run

/** The operations of phases 1 and 3, with their rounds' sizes (phase 1, phase 3, phase 3 with stacks). */
interface Case {
  readonly name: string;
  side(loops: Loops, build: Build): Side;
  readonly offBatch: number;
  readonly batch: number;
  readonly stackBatch: number;
  readonly target: boolean;
  readonly note?: string;
}

const FENCE_SIZES = { offBatch: OFF_BATCH.fence, batch: FENCE_BATCH, stackBatch: FENCE_BATCH } as const;
const LOCK_SIZES = { offBatch: OFF_BATCH.lock, batch: LOCK_BATCH, stackBatch: STACK_LOCK_BATCH } as const;
const CASES: readonly Case[] = [
  { name: 'signal, 1 callback', side: (l, b) => l.fenceSide(b), ...FENCE_SIZES, target: true },
  {
    name: 'signal(ts), 1 callback',
    side: (l, b) => l.fenceSide(b, 1.5),
    ...FENCE_SIZES,
    target: false,
    note: 'diagnostic, no target: no clock read in signal(), so the hooks are a larger share of the operation',
  },
  { name: 'uncontended lock/unlock', side: (l, b) => l.lockSide(b, false), ...LOCK_SIZES, target: true },
  {
    name: 'uncontended lock/unlock, one ctx',
    side: (l, b) => l.lockSide(b, true),
    ...LOCK_SIZES,
    target: true,
    note: 'one WwAcquireCtx per round',
  },
];

/** One build with loops of its own. */
interface Loaded {
  readonly build: Build;
  readonly loops: Loops;
}

async function loadAll(copies: readonly SourceCopy[]): Promise<Loaded[]> {
  const out: Loaded[] = [];
  for (const copy of copies) out.push({ build: await loadBuild(copy), loops: await loopsFor(copy.srcDir) });
  return out;
}

/** Phase 1: off vs stripped, and stripped vs stripped. @returns a stripped build for phase 2. */
async function offPhase(ctx: BenchContext, rows: Row[], notes: string[], set: CopySet): Promise<Loaded> {
  const { copies: n, rounds, warm } = offBudget(ctx.budget.quick);
  const loaded = await loadAll([...set.hooked, ...set.stripped]);
  for (const c of CASES) {
    ctx.progress(`lockdep: off vs stripped: ${c.name}`);
    const rates = await roundRobin(
      loaded.map((l) => c.side(l.loops, l.build)),
      c.offBatch,
      rounds,
      warm,
    );
    const method =
      `${n} hooked and 2 x ${n} stripped copies, each warmed by ${warm} runs, then ${rounds} ` +
      `round-robin rounds of ${c.offBatch} ops through all; a copy's rate is ` +
      `its 90th-percentile round; ratio: median [quartiles] over all copy pairs`;
    const list = (from: number, to: number): string =>
      rates
        .slice(from, to)
        .map((r) => formatRate(steadyRate(r)))
        .join(' ');
    notes.push(
      `off: ${c.name}: steady rate per copy (/s): hooks ${list(0, n)}; ` +
        `stripped A ${list(n, 2 * n)}; stripped B ${list(2 * n, 3 * n)}`,
    );
    rows.push(
      crossRow({
        name: `off: ${c.name}`,
        candidate: { label: 'hooks, off', rates: rates.slice(0, n) },
        baseline: { label: 'hooks stripped', rates: rates.slice(n) },
        batch: c.offBatch,
        rounds,
        ...(c.target ? { target: { op: '>=', value: 0.95 } } : {}),
        note: `${c.note !== undefined ? `${c.note}; ` : ''}${method}`,
      }),
    );
    rows.push(
      crossRow({
        name: `same code: ${c.name}`,
        candidate: { label: 'stripped, set B', rates: rates.slice(2 * n) },
        baseline: { label: 'stripped, set A', rates: rates.slice(n, 2 * n) },
        batch: c.offBatch,
        rounds,
        note:
          'calibration, no target: the two sets of hook-free copies of the row ' +
          'above against each other; the distance from 1.00x is the resolution',
      }),
    );
  }
  return loaded[n]!;
}

/** Phase 2: the stripped build and bare promises before `src/node.ts`, after it, after the validator was on. */
async function processPhase(ctx: BenchContext, rows: Row[], probe: Loaded): Promise<void> {
  const { rounds, warmup } = ctx.budget;
  const probes = [
    {
      name: 'stripped signal',
      what: 'fence create + 1 callback + signal, hook-free copy (one await per batch)',
      side: probe.loops.fenceSide(probe.build),
      batch: FENCE_BATCH,
    },
    {
      name: 'stripped lock/unlock',
      what: 'uncontended await m.lock(); m.unlock(), hook-free copy',
      side: probe.loops.lockSide(probe.build, false),
      batch: LOCK_BATCH,
    },
    {
      name: 'Promise + then',
      what: 'new Promise + .then(cb) + resolve(), no dmabuf (the fence-signal baseline)',
      side: promiseSide(1),
      batch: LOCK_BATCH,
    },
  ];
  const sample = async (phase: string): Promise<number[][]> => {
    ctx.progress(`lockdep: process-wide probes ${phase}`);
    const out: number[][] = [];
    for (const p of probes) out.push((await roundRobin([p.side], p.batch, rounds, warmup))[0]!);
    return out;
  };
  const before = await sample('before importing src/node.ts');
  await import('../src/node.js');
  const afterImport = await sample('after importing src/node.ts');
  // The tracker's promise hook starts with the first lock recorded while the validator is on.
  resetLockdep();
  const on = enableLockdep({ mode: 'record', stacks: false });
  if (!on.enabled) throw new Error(`lockdep: could not enable the validator: ${on.reason ?? '(no reason given)'}`);
  await runOnce(lockSide(hookedBuild, false), 10);
  disableLockdep();
  const afterOn = await sample('after the validator was on once');
  const seq = (what: string): string => `${what}; one phase after the other, not interleaved, rounds paired by index`;
  probes.forEach((p, i) => {
    const b = { label: 'before import', rates: before[i]! };
    rows.push(
      sequentialRow(
        `process: ${p.name}, node.ts imported`,
        { label: 'node.ts imported', rates: afterImport[i]! },
        b,
        p.batch,
        `${seq(p.what)}; src/node.ts imported, validator never on`,
      ),
    );
    rows.push(
      sequentialRow(
        `process: ${p.name}, on once`,
        { label: 'on once, now off', rates: afterOn[i]! },
        b,
        p.batch,
        `${seq(p.what)}; the validator was on for one lock and is off again`,
      ),
    );
  });
}

/** Phase 3: `src/` with the validator on (record mode) against off, interleaved rounds. */
async function onPhase(ctx: BenchContext, rows: Row[]): Promise<void> {
  const own: Loops = { fenceSide, lockSide };
  // The side's untimed setup turns the validator on or off before each of its rounds.
  const switched = (side: Side, label: string, on: (() => void) | null): Side => ({
    label,
    setup: () => (on !== null ? on() : disableLockdep()),
    run: (batch) => side.run(batch),
  });
  try {
    for (const stacks of [false, true]) {
      for (const c of CASES) {
        const batch = stacks ? c.stackBatch : c.batch;
        const label = `on, stacks ${stacks ? 'on' : 'off'}`;
        ctx.progress(`lockdep: ${label} vs off: ${c.name}`);
        const on = (): void => void enableLockdep({ mode: 'record', stacks });
        rows.push(
          await compare({
            name: `${label}: ${c.name}`,
            candidate: switched(c.side(own, hookedBuild), label, on),
            baseline: switched(c.side(own, hookedBuild), 'off', null),
            batch,
            rounds: ctx.budget.rounds,
            warmup: ctx.budget.warmup,
            note:
              `record mode; both sides after src/node.ts was imported and the validator ` +
              `was on once${batch !== c.batch ? `; ${batch} ops per round` : ''}`,
          }),
        );
      }
    }
  } finally {
    disableLockdep();
  }
}

export const definition: BenchDefinition = {
  name: 'lockdep',
  question:
    'With the lock validator off, are fence signal and uncontended ww lock/unlock within 5% of the same code with ' +
    'the hooks stripped? What do they cost with it on, and what does its tracker cost the rest of the process?',
  baseline:
    'copies of src/ with every hook statement deleted, against unmodified ' +
    'copies loaded the same way; enabled rows: src/ with the validator off',
  target:
    'validator off >= 0.95x the hook-free rate (fence signal, lock/unlock, ' +
    'lock/unlock in one ctx); enabled and process-wide costs reported without target',
  async run(ctx: BenchContext): Promise<BenchReport> {
    const rows: Row[] = [];
    const notes: string[] = [];
    // Phase 1 must run in a process without the validator's tracker: turn the validator off if
    // the environment turned it on, and find out whether src/node.ts was loaded already.
    const wasEnabled = lockdepEnabled();
    if (wasEnabled) disableLockdep();
    const trackerPresent = wasEnabled || enableLockdep().enabled;
    if (!wasEnabled) disableLockdep();
    if (trackerPresent) {
      notes.push(
        'src/node.ts was loaded before this benchmark (DMABUF_LOCKDEP=1 or an earlier import): ' +
          'its promise hooks slow both sides of every row, and "before import" is not before it',
      );
    }
    const { copies: n } = offBudget(ctx.budget.quick);
    ctx.progress(`lockdep: writing ${n} unmodified and ${2 * n} hook-free copies of src/`);
    const set = writeCopies({ hooked: n, stripped: 2 * n });
    try {
      for (const [file, s] of Object.entries(set.files)) {
        const after = [...new Set(s.replaced.map((r) => r.split(' => ')[1]))].join('; ');
        notes.push(
          `hooks stripped from ${file}: ${s.removed.length} statements or declarations removed, ` +
            `${s.replaced.length} expressions folded${after !== '' ? ` (to: ${after})` : ''}`,
        );
      }
      const probe = await offPhase(ctx, rows, notes, set);
      await processPhase(ctx, rows, probe);
      await onPhase(ctx, rows);
      // Last: the compiler's heap would otherwise weigh on every measurement after it.
      if (ctx.budget.quick) {
        notes.push(
          'the stripped copy was not type-checked in --quick (about 4 ' +
            's); the full run and test/bench/lockdep.bench.test.ts do',
        );
      } else {
        ctx.progress('lockdep: type-checking the hook-free copy');
        const diagnostics = typeCheckCopy(set.stripped[0]!);
        if (diagnostics.length > 0)
          throw new Error(`lockdep: the stripped copy does not type-check:\n  ${diagnostics.join('\n  ')}`);
        else notes.push("the stripped copy type-checks with the project's compiler options");
      }
    } finally {
      set.remove();
    }
    const reports = lockdepReports();
    notes.push(
      `validator reports during the enabled rows: ` +
        `${reports.length}${reports.length > 0 ? ` (${reports.map((r) => r.kind).join(', ')})` : ''}`,
    );
    resetLockdep();
    if (wasEnabled) notes.push('the validator was on when the benchmark started and is left off');
    return { rows, notes };
  },
};
