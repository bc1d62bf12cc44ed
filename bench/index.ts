/**
 * The benchmark registry: every question `npm run bench` can answer, loaded on demand.
 *
 * Overview: each entry names one `bench/<name>.bench.ts` file and imports it only when that
 * benchmark runs, so a module that is being rewritten breaks its own benchmark and no other.
 *
 * Contract: names are unique, lower-case, and equal to the file name without `.bench.ts`; the
 * order here is the order of a full run.
 *
 * @example
 * ```ts
 * import { BENCHMARKS, findBenchmark } from './index.js';
 * console.log(BENCHMARKS.map((b) => b.name).join(', '));
 * const definition = await findBenchmark('fence-signal')!.load();
 * ```
 */

import type { BenchEntry } from './harness.js';

export type { BenchEntry };

export const BENCHMARKS: readonly BenchEntry[] = [
  {
    name: 'fence-signal',
    summary: 'fence create + callback + signal vs new Promise + .then + resolve (target >= 2x)',
    load: async () => (await import('./fence-signal.bench.js')).definition,
  },
  {
    name: 'fence-wait',
    summary: 'await fence.wait() vs await on a Promise, signaled before and after the wait (target >= 0.8x)',
    load: async () => (await import('./fence-wait.bench.js')).definition,
  },
  {
    name: 'fence-memory',
    summary: 'bytes per pending fence and per chain node vs a Promise with its resolve kept (target <= 2x)',
    load: async () => (await import('./fence-memory.bench.js')).definition,
  },
  {
    name: 'fence-chain',
    summary: "chain GC policies 'walk' vs 'queue': 4096-point timelines and seed 000's append-only timeline",
    load: async () => (await import('./fence-chain.bench.js')).definition,
  },
  {
    name: 'ww-mutex',
    summary:
      'WwMutex uncontended lock/unlock (target >= 10x) and hand-off ' +
      'to 100 queued waiters (target >= 3x) vs async-mutex',
    load: async () => (await import('./ww-mutex.bench.js')).definition,
  },
  {
    name: 'drm-exec',
    summary:
      '16 tasks locking 4 of 16 objects: DrmExec vs async-mutex in ' +
      'sorted order (target >= 1x); unsorted async-mutex deadlocks',
    load: async () => (await import('./drm-exec.bench.js')).definition,
  },
  {
    name: 'dma-resv',
    summary: 'DmaResv addFence with slot reuse over 64 contexts and unlocked iteration vs a plain array (no target)',
    load: async () => (await import('./dma-resv.bench.js')).definition,
  },
  {
    name: 'heap-alloc',
    summary:
      'DmaHeap allocate p50/p99 under alloc/free churn (64 KiB, 1 MiB) vs new ' +
      'ArrayBuffer (1 MiB p99 target >= 5x lower) and an inline-zeroing pool (lower)',
    load: async () => (await import('./heap-alloc.bench.js')).definition,
  },
  {
    name: 'heap-pool',
    summary: 'DmaHeap 64 KiB allocate + put vs generic-pool acquire + release (target >= 2x)',
    load: async () => (await import('./heap-pool.bench.js')).definition,
  },
  {
    name: 'ttm-reclaim',
    summary:
      'TTM delayed delete, fence signal to memory freed: per-object ' +
      'work items vs 10 ms periodic scan (p99 <= 1 ms and >= 5x lower)',
    load: async () => (await import('./ttm-reclaim.bench.js')).definition,
  },
  {
    name: 'ttm-release-storm',
    summary:
      '10,000 busy BOs released at once, fences over 1 s: peak work items (<= ' +
      '16), time to free all, memory held, reclaim latency vs the 10 ms scan',
    load: async () => (await import('./ttm-release-storm.bench.js')).definition,
  },
  {
    name: 'ttm-evict',
    summary:
      'eviction VRAM -> System bytes/s (memcpy; copy engine diagnostic) ' +
      'vs Uint8Array.set, 64 x 64 KiB and 16 x 1 MiB (target >= 0.7x)',
    load: async () => (await import('./ttm-evict.bench.js')).definition,
  },
  {
    name: 'ttm-validate',
    summary:
      'validate() with 100,000 vs 100 BOs on the LRU (in place; one eviction; >= ' +
      '0.5x) and range manager alloc at 100,000 vs 100 live ranges (>= 0.1x)',
    load: async () => (await import('./ttm-validate.bench.js')).definition,
  },
  {
    name: 'sched',
    summary:
      'DrmGpuScheduler no-op and chained jobs vs p-queue (target >= 1x); ' +
      'per-job cost at 10,000 entities / 100,000 jobs vs 10 / 100 (>= 0.5x)',
    load: async () => (await import('./sched.bench.js')).definition,
  },
  {
    name: 'sched-fairness',
    summary:
      'two clients on one ring under FAIR, FIFO and RR (tests_scheduler.c workloads, ' +
      'virtual time): engine-time shares and latency p50/p99; FAIR within 10% of fair',
    load: async () => (await import('./sched-fairness.bench.js')).definition,
  },
  {
    name: 'webgpu-submit',
    summary:
      'WebGpuRing submit + fence wait vs raw queue.submit + ' +
      'onSubmittedWorkDone on Dawn/SwiftShader (target <= 1.1x time)',
    load: async () => (await import('./webgpu-submit.bench.js')).definition,
  },
  {
    name: 'webgpu-evict',
    summary:
      'TTM eviction + restore bytes/s on the WebGPU device vs a raw ' +
      'copyBufferToBuffer + mapAsync / writeBuffer loop (target >= 0.8x)',
    load: async () => (await import('./webgpu-evict.bench.js')).definition,
  },
  {
    name: 'webgpu-infer',
    summary:
      'a model 3-4x the VRAM budget on the WebGPU device (TTM evicts and ' +
      'restores the weights) vs recreating buffers per layer; outputs exact',
    load: async () => (await import('./webgpu-infer.bench.js')).definition,
  },
  {
    name: 'webgpu-alloc',
    summary:
      'VRAM as a GPUBuffer per buffer object vs ranges of one 64 MiB GPUBuffer: new and restored buffers (no target)',
    load: async () => (await import('./webgpu-alloc.bench.js')).definition,
  },
  {
    name: 'run-cost',
    summary: 'dmabuf run: churn throughput with trace, live progress and report on vs all off (target >= 0.9x)',
    load: async () => (await import('./run-cost.bench.js')).definition,
  },
  {
    name: 'soft-wake',
    summary:
      'soft device: job completion to fence signal on the main thread, ' +
      'p50/p99, vs half a postMessage round trip (target <= 1x latency)',
    load: async () => (await import('./soft-wake.bench.js')).definition,
  },
  {
    name: 'soft-ring',
    summary:
      'soft device: no-op jobs/s through the command ring vs one postMessage per job with a reply (target >= 5x)',
    load: async () => (await import('./soft-ring.bench.js')).definition,
  },
  {
    name: 'soft-matmul',
    summary: 'soft device: f32 matmul split over 2 compute workers vs 1 (target >= 1.6x on 2 cores)',
    load: async () => (await import('./soft-matmul.bench.js')).definition,
  },
  {
    name: 'soft-copy',
    summary: 'soft device: copy-engine bytes/s vs Uint8Array.set on the main thread (target >= 0.7x)',
    load: async () => (await import('./soft-copy.bench.js')).definition,
  },
  // Last: it imports src/node.ts, whose promise hooks stay installed for the rest of the process.
  {
    name: 'lockdep',
    summary:
      'lock validator hooks off vs stripped from the code (target >= ' +
      '0.95x); on (stacks on/off) vs off; promise cost of the tracker',
    load: async () => (await import('./lockdep.bench.js')).definition,
  },
];

/** The entry called `name`, or undefined. */
export function findBenchmark(name: string): BenchEntry | undefined {
  return BENCHMARKS.find((b) => b.name === name);
}
