/**
 * Benchmark: what does the GPU scheduler cost per job, next to the promise queue a JavaScript
 * user would otherwise reach for, and does that cost stay flat with many clients?
 *
 * Question: a job through {@link DrmGpuScheduler} does more than a task through a promise queue
 * (two fences with seqnos, dependency bookkeeping, a policy pick, credits, a free step in ring
 * order). Is it still at least as fast as p-queue on the shapes both can express, and does the
 * per-job cost stay flat when 10,000 entities have 100,000 jobs queued?
 *
 * Rows:
 * 1. no-op jobs through one entity, submit to `finished` (runJob returns null), against p-queue
 *    with `concurrency` = the credit limit (64) running the same no-op tasks; one op = one job
 *    from creation to its completion (the round awaits the last one);
 * 2. chained jobs alternating between two entities, each depending on the previous job's
 *    `finished`, against p-queue tasks that each await the previous task's promise;
 * 3. scale, per policy: 100,000 jobs per round pushed over 10,000 entities (10 each, all queued
 *    before the scheduler runs) against the same 100,000 jobs pushed 100 at a time over 10
 *    entities (1,000 bursts); one op = one job. A calibration row runs the same two shapes
 *    through p-queue, without target: what 100,000 live queued objects cost any JS queue here.
 *
 * Baseline: p-queue 9.3.5 (`new PQueue({ concurrency })`, `add()`, the returned promises) for rows
 * 1 and 2; the scheduler itself with a small population for row 3.
 *
 * Target: rows 1 and 2 >= 1x; row 3 >= 0.5x (flat).
 *
 * Contract: every round checks that every job ran and was freed (or every task ran), so a side
 * that skipped work cannot look fast.
 *
 * @example
 * ```ts
 * // npm run bench -- sched
 * import { definition } from './sched.bench.js';
 * import { budget } from './harness.js';
 * const report = await definition.run({ budget: budget(true), progress: console.error });
 * ```
 */

import PQueue from 'p-queue';
import type { DrmSchedPolicy } from '../src/sched/sched-rq.js';
import { DrmSchedEntity } from '../src/sched/sched-entity.js';
import { DrmSchedJob } from '../src/sched/sched-job.js';
import { DrmGpuScheduler, DrmGpuSchedStat } from '../src/sched/sched-main.js';
import { compare, type BenchContext, type BenchDefinition, type BenchReport, type Row, type Side } from './harness.js';

/** Ring space in rows 1 and 2, and p-queue's concurrency. */
export const CREDIT_LIMIT = 64;
/** Jobs per timed round in rows 1 and 2. */
export const BATCH = 20_000;
/** Row 3: the large population. */
export const MANY_ENTITIES = 10_000;
export const MANY_JOBS = 100_000;
/** Row 3: the small population. */
export const FEW_ENTITIES = 10;
export const FEW_JOBS = 100;

/** A scheduler whose backend does nothing (runJob returns null), counting runs and frees. */
export function noopScheduler(policy: DrmSchedPolicy['name'] = 'fair', creditLimit = CREDIT_LIMIT) {
  const counts = { run: 0, freed: 0 };
  const sched = new DrmGpuScheduler({
    name: 'bench-ring',
    creditLimit,
    policy,
    ops: {
      runJob: () => {
        counts.run++;
        return null;
      },
      timedOutJob: () => DrmGpuSchedStat.Reset,
      freeJob: () => {
        counts.freed++;
      },
    },
  });
  return { sched, counts };
}

function checkCounts(side: string, counts: { run: number; freed: number }, expected: number): void {
  if (counts.run !== expected || counts.freed !== expected) {
    throw new Error(
      `${side}: ran ${counts.run} and freed ${counts.freed} of ${expected} jobs; the round did not complete`,
    );
  }
}

/** Waits until the scheduler freed `expected` jobs (freeing runs on microtasks after finished). */
async function freedAll(counts: { freed: number }, expected: number): Promise<void> {
  while (counts.freed < expected) await new Promise<void>((resolve) => setImmediate(resolve));
}

function submit(entity: DrmSchedEntity, dep?: DrmSchedJob): DrmSchedJob {
  const job = new DrmSchedJob(entity);
  if (dep !== undefined) job.addDependency(dep.finished);
  job.arm();
  job.push();
  return job;
}

/** Row 1, dmabuf: `batch` no-op jobs through one entity; awaits the last one's finished fence. */
export function schedNoopSide(): Side {
  const { sched, counts } = noopScheduler();
  const entity = new DrmSchedEntity({ schedulers: [sched], name: 'bench' });
  return {
    label: 'DrmGpuScheduler',
    async run(batch: number): Promise<void> {
      counts.run = counts.freed = 0;
      let last: DrmSchedJob | undefined;
      for (let i = 0; i < batch; i++) last = submit(entity);
      await last!.finished.wait();
      await freedAll(counts, batch);
      checkCounts('DrmGpuScheduler', counts, batch);
    },
  };
}

/** Row 1, baseline: `batch` no-op tasks through p-queue; awaits the last task's promise. */
export function pQueueNoopSide(): Side {
  const queue = new PQueue({ concurrency: CREDIT_LIMIT });
  let ran = 0;
  const task = (): void => {
    ran++;
  };
  return {
    label: 'p-queue',
    async run(batch: number): Promise<void> {
      ran = 0;
      let last: Promise<void> | undefined;
      for (let i = 0; i < batch; i++) last = queue.add(task);
      await last;
      if (ran !== batch) throw new Error(`p-queue: ran ${ran} of ${batch} tasks`);
    },
  };
}

/** Row 2, dmabuf: each job depends on the previous one's finished, alternating two entities. */
export function schedChainSide(): Side {
  const { sched, counts } = noopScheduler();
  const entities = [0, 1].map((i) => new DrmSchedEntity({ schedulers: [sched], name: `bench-${i}` }));
  return {
    label: 'DrmGpuScheduler',
    async run(batch: number): Promise<void> {
      counts.run = counts.freed = 0;
      let last: DrmSchedJob | undefined;
      for (let i = 0; i < batch; i++) last = submit(entities[i & 1]!, last);
      await last!.finished.wait();
      await freedAll(counts, batch);
      checkCounts('DrmGpuScheduler chain', counts, batch);
    },
  };
}

/** Row 2, baseline: each p-queue task awaits the previous task's promise. */
export function pQueueChainSide(): Side {
  const queue = new PQueue({ concurrency: CREDIT_LIMIT });
  let ran = 0;
  return {
    label: 'p-queue',
    async run(batch: number): Promise<void> {
      ran = 0;
      let last: Promise<void> = Promise.resolve();
      for (let i = 0; i < batch; i++) {
        const previous = last;
        last = queue.add(async () => {
          await previous;
          ran++;
        });
      }
      await last;
      if (ran !== batch) throw new Error(`p-queue chain: ran ${ran} of ${batch} tasks`);
    },
  };
}

/**
 * Row 3: `total` jobs per round over `entityCount` entities, `perBurst` jobs queued at a time
 * (pushed round-robin over the entities), each burst run to completion before the next.
 */
export function schedScaleSide(
  label: string,
  policy: DrmSchedPolicy['name'],
  entityCount: number,
  perBurst: number,
): Side {
  const { sched, counts } = noopScheduler(policy, Infinity);
  const entities = Array.from(
    { length: entityCount },
    (_, i) => new DrmSchedEntity({ schedulers: [sched], name: `e${i}` }),
  );
  return {
    label,
    async run(total: number): Promise<void> {
      counts.run = counts.freed = 0;
      for (let done = 0; done < total; done += perBurst) {
        let last: DrmSchedJob | undefined;
        for (let i = 0; i < perBurst; i++) last = submit(entities[i % entityCount]!);
        await last!.finished.wait();
        await freedAll(counts, done + perBurst);
      }
      checkCounts(label, counts, total);
    },
  };
}

/**
 * Row 3's calibration: the same burst shapes through p-queue (concurrency 64, no-op tasks), to
 * separate what 100,000 live queued objects cost any JavaScript queue from what is the scheduler's.
 */
export function pQueueScaleSide(label: string, perBurst: number): Side {
  const queue = new PQueue({ concurrency: CREDIT_LIMIT });
  let ran = 0;
  const task = (): void => {
    ran++;
  };
  return {
    label,
    async run(total: number): Promise<void> {
      ran = 0;
      for (let done = 0; done < total; done += perBurst) {
        let last: Promise<void> | undefined;
        for (let i = 0; i < perBurst; i++) last = queue.add(task);
        await last;
      }
      if (ran !== total) throw new Error(`${label}: ran ${ran} of ${total} tasks`);
    },
  };
}

/** 100000 as "100,000". */
function many(n: number): string {
  return n.toLocaleString('en-US');
}

export const definition: BenchDefinition = {
  name: 'sched',
  question:
    'Is a no-op job through DrmGpuScheduler at least as fast as a p-queue task (alone and chained), and is ' +
    'the per-job cost flat from 10 entities / 100 jobs to 10,000 entities / 100,000 jobs?',
  baseline:
    'p-queue 9.3.5 (concurrency = credit limit 64) for no-op and chained tasks; ' +
    'the scheduler at 10 entities / 100 jobs for scale',
  target: 'no-op >= 1x; chained >= 1x; scale >= 0.5x per policy',
  async run(ctx: BenchContext): Promise<BenchReport> {
    const { rounds, warmup } = ctx.budget;
    const rows: Row[] = [];
    ctx.progress('sched: no-op jobs vs p-queue');
    rows.push(
      await compare({
        name: 'no-op jobs, one entity, submit to finished',
        candidate: schedNoopSide(),
        baseline: pQueueNoopSide(),
        batch: BATCH,
        rounds,
        warmup,
        target: { op: '>=', value: 1 },
        note:
          'one op = one job created, armed, pushed, run (runJob returns null), finished and freed; ' +
          `credit limit and p-queue concurrency ${CREDIT_LIMIT}`,
      }),
    );
    ctx.progress('sched: chained jobs vs p-queue');
    rows.push(
      await compare({
        name: 'chained jobs across two entities',
        candidate: schedChainSide(),
        baseline: pQueueChainSide(),
        batch: BATCH,
        rounds,
        warmup,
        target: { op: '>=', value: 1 },
        note:
          "each job depends on the previous job's finished (same ring: pipelined on scheduled); " +
          "p-queue tasks await the previous task's promise",
      }),
    );
    const scaleRounds = Math.max(3, Math.ceil(rounds / 3));
    for (const policy of ['fair', 'fifo', 'rr'] as const) {
      ctx.progress(`sched: scale, ${policy}`);
      rows.push(
        await compare({
          name:
            `scale, ${policy}: ${many(MANY_ENTITIES)} entities / ${many(MANY_JOBS)} queued jobs ` +
            `vs ${FEW_ENTITIES} / ${FEW_JOBS}`,
          candidate: schedScaleSide(`${MANY_ENTITIES} entities`, policy, MANY_ENTITIES, MANY_JOBS),
          baseline: schedScaleSide(`${FEW_ENTITIES} entities`, policy, FEW_ENTITIES, FEW_JOBS),
          batch: MANY_JOBS,
          rounds: scaleRounds,
          warmup: 1,
          target: { op: '>=', value: 0.5 },
          note:
            `one op = one job; ${many(MANY_JOBS)} jobs per round either way, queued all at once over ` +
            `${many(MANY_ENTITIES)} entities, or ${FEW_JOBS} at a time over ${FEW_ENTITIES}`,
        }),
      );
    }
    ctx.progress('sched: scale calibration, p-queue');
    rows.push(
      await compare({
        name: `calibration, p-queue: ${many(MANY_JOBS)} queued tasks vs ${FEW_JOBS} at a time`,
        candidate: pQueueScaleSide(`${MANY_JOBS} queued`, MANY_JOBS),
        baseline: pQueueScaleSide(`${FEW_JOBS} queued`, FEW_JOBS),
        batch: MANY_JOBS,
        rounds: scaleRounds,
        warmup: 1,
        note: 'no target: what holding 100,000 queued objects costs a plain promise queue on this machine (GC, caches)',
      }),
    );
    return { rows, notes: [] };
  },
};
