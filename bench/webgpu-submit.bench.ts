/**
 * Benchmark: what does a hardware fence cost per submission?
 *
 * Question: `WebGpuRing.submit()` wraps each `queue.submit` in two error scopes, calls
 * `onSubmittedWorkDone()`, creates a `DmaFence` with the next seqno and signals it in order.
 * How much slower is submit + `await fence.wait()` than the raw `queue.submit` + `await
 * queue.onSubmittedWorkDone()` a WebGPU user writes today?
 *
 * Sides, interleaved rounds through `compare()`, on one device (Dawn on SwiftShader here):
 * - candidate: `ring.submit([encoder.finish()])` then `await fence.wait()`, one at a time;
 * - baseline: `queue.submit([encoder.finish()])` then `await queue.onSubmittedWorkDone()`.
 * Each op records a fresh command encoder with one 256-byte `clearBuffer` (so the queue has
 * work), on both sides. A second row submits 16 at a time and waits for the last (the
 * pipelined shape: fences signal in one pass). Both again with `errorScopes: false`, a
 * diagnostic row against raw code that opens the same two error scopes, and the full path a
 * `WebGpuDevice` user takes: `gpu.submit()` (lock the buffer object with `DrmExec`, validate it,
 * record, a `DrmGpuScheduler` job, fence the reservation) then `await` the job's finished fence,
 * with and without error scopes.
 *
 * Target: the candidate takes at most 1.1x the time (ops/s ratio >= 0.91).
 *
 * @example
 * ```ts
 * // npm run bench -- webgpu-submit
 * import { definition } from './webgpu-submit.bench.js';
 * import { budget } from './harness.js';
 * const report = await definition.run({ budget: budget(true), progress: console.error });
 * ```
 */
import { WebGpuDevice } from '../src/device/webgpu/webgpu-device.js';
import { WebGpuRing } from '../src/device/webgpu/webgpu-ring.js';
import { VRAM_USAGE } from '../src/device/webgpu/webgpu-vram-mgr.js';
import type { DmaFence } from '../src/fence/dma-fence.js';
import {
  compare,
  type BenchContext,
  type BenchDefinition,
  type BenchReport,
  type Row,
  type Target,
} from './harness.js';
import { benchDevice, queueIdle } from './webgpu-common.js';

export const TARGET: Target = { op: '>=', value: 1 / 1.1, text: '<= 1.1x time' };

export const definition: BenchDefinition = {
  name: 'webgpu-submit',
  question: 'How much does a hardware fence (error scopes, seqno, in-order signal) add to a WebGPU submission?',
  baseline: 'queue.submit + await queue.onSubmittedWorkDone() on the same device',
  target: 'submit + fence wait <= 1.1x the raw time (one at a time and 16 in flight)',
  async run(ctx: BenchContext): Promise<BenchReport> {
    const handle = await benchDevice();
    const device = handle.device;
    const ring = new WebGpuRing(device, { name: 'bench' });
    const unscoped = new WebGpuRing(device, { name: 'bench-unscoped', errorScopes: false });
    const target = device.createBuffer({ size: 4096, usage: VRAM_USAGE });
    const commands = (): GPUCommandBuffer => {
      const encoder = device.createCommandEncoder();
      encoder.clearBuffer(target, 0, 256);
      return encoder.finish();
    };
    const rows: Row[] = [];
    try {
      for (const [inFlight, r] of [
        [1, ring],
        [16, ring],
        [1, unscoped],
        [16, unscoped],
      ] as const) {
        ctx.progress(`webgpu-submit: ${inFlight} in flight${r === ring ? '' : ', no error scopes'}`);
        const row = await compare({
          name:
            (inFlight === 1 ? 'submit + wait, one at a time' : 'submit 16, wait for the last') +
            (r === ring ? '' : ', errorScopes: false'),
          batch: 256,
          rounds: ctx.budget.rounds,
          warmup: ctx.budget.warmup,
          target: TARGET,
          candidate: {
            label: 'WebGpuRing fence',
            async run(n) {
              for (let i = 0; i < n; i += inFlight) {
                let last: DmaFence | null = null;
                for (let j = 0; j < inFlight; j++) last = r.submit([commands()]);
                await last!.wait();
                if (last!.error !== undefined) throw last!.error;
              }
            },
          },
          baseline: {
            label: 'queue.submit + onSubmittedWorkDone',
            async run(n) {
              for (let i = 0; i < n; i += inFlight) {
                let done: Promise<undefined> | null = null;
                for (let j = 0; j < inFlight; j++) {
                  device.queue.submit([commands()]);
                  done = device.queue.onSubmittedWorkDone();
                }
                await done;
              }
            },
          },
        });
        rows.push(row);
      }
      ctx.progress('webgpu-submit: diagnostic, the same error scopes in raw code');
      rows.push(
        await compare({
          name: 'diagnostic: fence vs raw code with the same two error scopes',
          batch: 256,
          rounds: ctx.budget.rounds,
          warmup: ctx.budget.warmup,
          candidate: {
            label: 'WebGpuRing fence',
            async run(n) {
              for (let i = 0; i < n; i++) await ring.submit([commands()]).wait();
            },
          },
          baseline: {
            label: 'raw + pushErrorScope x2 / popErrorScope x2',
            async run(n) {
              for (let i = 0; i < n; i++) {
                device.pushErrorScope('out-of-memory');
                device.pushErrorScope('validation');
                device.queue.submit([commands()]);
                const scopes = [device.popErrorScope(), device.popErrorScope()];
                await Promise.all([...scopes, device.queue.onSubmittedWorkDone()]);
              }
            },
          },
        }),
      );
      for (const errorScopes of [true, false]) {
        ctx.progress(`webgpu-submit: WebGpuDevice.submit through the scheduler, errorScopes ${errorScopes}`);
        const gpu = await WebGpuDevice.create({ budgetBytes: 1 << 20, device, quiet: true, errorScopes });
        const bo = await gpu.createBuffer({ size: 4096, name: 'target' });
        try {
          rows.push(
            await compare({
              name:
                `WebGpuDevice.submit + wait (DrmExec, validate, scheduler ` +
                `job)${errorScopes ? '' : ', errorScopes: false'}`,
              batch: 128,
              rounds: ctx.budget.rounds,
              warmup: ctx.budget.warmup,
              target: TARGET,
              candidate: {
                label: 'WebGpuDevice.submit',
                async run(n) {
                  for (let i = 0; i < n; i++) {
                    const fence = await gpu.submit([{ bo, write: true }], (encoder, binding) =>
                      encoder.clearBuffer(binding(bo).buffer, 0, 256),
                    );
                    await fence.wait();
                    if (fence.error !== undefined) throw fence.error;
                  }
                },
              },
              baseline: {
                label: 'queue.submit + onSubmittedWorkDone',
                async run(n) {
                  for (let i = 0; i < n; i++) {
                    device.queue.submit([commands()]);
                    await device.queue.onSubmittedWorkDone();
                  }
                },
              },
            }),
          );
        } finally {
          bo.put();
          await gpu.destroy();
        }
      }
    } finally {
      await queueIdle(device);
      target.destroy();
      device.destroy();
      await device.lost;
      handle.release();
    }
    return {
      rows,
      notes: [
        `one op = one submission of a 256-byte clearBuffer; adapter: ${handle.adapterName}; ` +
          'the candidate creates a DmaFence per submission and ' +
          'pushes/pops two error scopes (validation, out-of-memory); ' +
          'the ring keeps one onSubmittedWorkDone() outstanding, which completes every submission before it',
      ],
    };
  },
};
