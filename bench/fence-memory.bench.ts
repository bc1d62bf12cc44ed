/**
 * Benchmark: how many bytes does a pending fence, and a timeline point, keep alive?
 *
 * Question: a GPU runtime keeps thousands of fences pending (one per job in flight) and a
 * timeline keeps one chain node per point. Does a pending fence cost no more than twice a bare
 * Promise with its resolve function kept (what it replaces), and a chain node likewise?
 *
 * Baseline: a pending `new Promise` plus its `resolve` function, both held (two holder slots).
 *
 * Target: no more than 2x the baseline's bytes (ratio <= 2), for
 * - a bare pending fence;
 * - a pending fence with one callback (the callback is one shared function, so this counts the
 *   fence's storage for a callback, not a closure the caller may allocate);
 * - a chain node, payload fence NOT counted: the payloads are made before the first heap reading
 *   (they are the caller's jobs and exist with or without a timeline). Rows with the payload
 *   counted, and for the `'queue'` policy, whose global FIFO adds a `WeakRef` and a queue slot
 *   per node, are reported too.
 * Also reported without a target: Promise + resolve + `.then(cb)`, the Promise way of having
 * one callback registered.
 *
 * Overview: {@link compareMemory} allocates N objects into a pre-sized holder array, runs `gc()`
 * twice, and divides the `heapUsed` delta by N; repetitions alternate with the baseline's.
 * Whether fences were signalled earlier in the process (their timestamp field then holds
 * fractional numbers) was checked and makes no difference to a pending fence's size (88 B both
 * ways on Node 20).
 *
 * Contract: needs `node --expose-gc`; without it every row says so and has no numbers.
 *
 * @example
 * ```ts
 * // npm run bench -- fence-memory
 * import { definition } from './fence-memory.bench.js';
 * import { budget } from './harness.js';
 * const report = await definition.run({ budget: budget(true), progress: console.error });
 * ```
 */

import { DmaFence, fenceContextAlloc, type DmaFenceOps } from '../src/fence/dma-fence.js';
import { DmaFenceChain, type ChainGcPolicy } from '../src/fence/dma-fence-chain.js';
import { freshQueue } from './fence-chain.bench.js';
import {
  compareMemory,
  type BenchContext,
  type BenchDefinition,
  type BenchReport,
  type MemorySubject,
  type Row,
} from './harness.js';

const ops: DmaFenceOps = Object.freeze({
  getDriverName: () => 'bench',
  getTimelineName: () => 'memory',
});

const COUNT = 100_000;
const TARGET = { op: '<=', value: 2 } as const;

const sharedCallback = (): void => {};

export const bareFence: MemorySubject = {
  label: 'DmaFence',
  fill(holder, count) {
    const context = fenceContextAlloc();
    for (let i = 0; i < count; i++) holder[i] = new DmaFence(ops, context, i);
  },
};

export const fenceWithCallback: MemorySubject = {
  label: 'DmaFence+cb',
  fill(holder, count) {
    const context = fenceContextAlloc();
    for (let i = 0; i < count; i++) {
      const fence = new DmaFence(ops, context, i);
      fence.addCallback(sharedCallback);
      holder[i] = fence;
    }
  },
};

export const promiseWithResolve: MemorySubject = {
  label: 'Promise+resolve',
  slots: 2,
  fill(holder, count) {
    for (let i = 0; i < count; i++) {
      let resolve!: (value: number) => void;
      holder[2 * i] = new Promise<number>((r) => {
        resolve = r;
      });
      holder[2 * i + 1] = resolve;
    }
  },
};

export const promiseWithThen: MemorySubject = {
  label: 'Promise+resolve+then',
  slots: 2,
  fill(holder, count) {
    for (let i = 0; i < count; i++) {
      let resolve!: (value: number) => void;
      const promise = new Promise<number>((r) => {
        resolve = r;
      });
      void promise.then(sharedCallback);
      holder[2 * i] = promise;
      holder[2 * i + 1] = resolve;
    }
  },
};

/** Chain nodes built into one timeline; payloads made in `prepare` (not counted) unless `withPayload`. */
export function chainNodes(gc: ChainGcPolicy, withPayload: boolean): MemorySubject {
  const context = fenceContextAlloc();
  const makePayloads = (count: number): DmaFence[] => {
    const fences = new Array<DmaFence>(count);
    for (let i = 0; i < count; i++) fences[i] = new DmaFence(ops, context, i + 1);
    return fences;
  };
  return {
    label: `DmaFenceChain ${gc}${withPayload ? '+payload' : ''}`,
    // The queue policy's FIFO is global: empty it of earlier repetitions' nodes first, or
    // their dead entries, dropped while this repetition steps the queue, hide its own cost.
    async prepare(count: number): Promise<DmaFence[] | undefined> {
      if (gc === 'queue') await freshQueue();
      return withPayload ? undefined : makePayloads(count);
    },
    fill(holder, count, prepared) {
      const payloads = withPayload ? makePayloads(count) : (prepared as DmaFence[]);
      let head: DmaFenceChain | null = null;
      for (let i = 0; i < count; i++) {
        head = new DmaFenceChain(head, payloads[i]!, i + 1, { gc });
        holder[i] = head;
      }
    },
  };
}

export const definition: BenchDefinition = {
  name: 'fence-memory',
  question:
    'Does a pending fence (bare, or with one callback) and a chain node ' +
    'cost no more than 2x the bytes of a Promise with its resolve kept?',
  baseline: 'pending new Promise + its resolve function, both held',
  target: '<= 2x the baseline bytes (chain node: payload not counted)',
  async run(ctx: BenchContext): Promise<BenchReport> {
    const reps = ctx.budget.reps;
    const rows: Row[] = [];
    const cases: { name: string; subject: MemorySubject; baseline?: MemorySubject; target: boolean; note?: string }[] =
      [
        { name: 'pending fence, bare', subject: bareFence, target: true },
        { name: 'pending fence, 1 callback', subject: fenceWithCallback, target: true },
        {
          name: 'pending fence, 1 callback vs Promise + .then',
          subject: fenceWithCallback,
          baseline: promiseWithThen,
          target: false,
          note: 'baseline is Promise + resolve + .then(cb), the Promise way of holding one callback; no target',
        },
        { name: 'chain node (walk), payload not counted', subject: chainNodes('walk', false), target: true },
        {
          name: 'chain node (walk) + its payload fence',
          subject: chainNodes('walk', true),
          target: false,
          note: 'payload counted; no target',
        },
        {
          name: 'chain node (queue), payload not counted',
          subject: chainNodes('queue', false),
          target: true,
          note: "includes the global FIFO's WeakRef and array slot (the array grows by doubling, so slack is included)",
        },
      ];
    for (const c of cases) {
      ctx.progress(`fence-memory: ${c.name}`);
      await freshQueue();
      rows.push(
        await compareMemory({
          name: c.name,
          candidate: c.subject,
          baseline: c.baseline ?? promiseWithResolve,
          count: COUNT,
          reps,
          ...(c.target ? { target: TARGET } : {}),
          ...(c.note !== undefined ? { note: c.note } : {}),
        }),
      );
    }
    await freshQueue();
    return {
      rows,
      notes: [
        `${COUNT.toLocaleString('en-US')} objects per repetition, ` +
          `heapUsed delta after gc(), median of ${reps} repetitions`,
      ],
    };
  },
};
