/**
 * The WebGPU benchmarks' sides run for real on a small batch: the inference workload's sides
 * (dmabuf over budget, recreate per layer, every layer resident) each compute exact outputs.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { CASES, deviceSide, recreateSide } from '../../bench/webgpu-infer.bench.js';
import { inferModel } from '../../bench/webgpu-infer-workload.js';
import { makeDevice, webgpuSkip } from '../helpers/webgpu.js';

const skip = await webgpuSkip();

describe('webgpu-infer bench sides', { skip }, () => {
  it('sanity: every side runs two passes of the first case with exact outputs (they throw otherwise)', async () => {
    const c = CASES[0]!;
    const model = inferModel(c.shape);
    await using gpu = await makeDevice(c.budgetBytes);
    const sides = [await deviceSide(gpu, model), recreateSide(gpu.gpu, model), recreateSide(gpu.gpu, model, true)];
    try {
      for (const side of sides) await assert.doesNotReject(Promise.resolve(side.run(2)), side.label);
    } finally {
      for (const side of sides) await side.close();
    }
    assert.ok(gpu.ttm.stats().evictions > 0, 'the dmabuf side evicted weights (they are 3x the budget)');
    assert.ok(gpu.vram.stats().peakBytes <= c.budgetBytes, 'and never went over the budget');
  });
});
