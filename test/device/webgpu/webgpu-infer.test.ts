/**
 * The over-budget inference workload (`bench/webgpu-infer-workload.ts`): weights three times the
 * VRAM budget, layers in order, twice; TTM evicts and restores, every output is exact.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { inferModel, inferReference, loadModel, runOnDevice } from '../../../bench/webgpu-infer-workload.js';
import { makeDevice, webgpuSkip } from '../../helpers/webgpu.js';

const skip = await webgpuSkip();

describe('the over-budget inference workload', { skip }, () => {
  it('sanity: one layer within the budget gives the reference output', async () => {
    await using gpu = await makeDevice(1 << 20);
    const model = inferModel({ layers: 1, dim: 64, batch: 4, seed: 3 });
    const weights = await loadModel(gpu, model);
    assert.deepEqual(await runOnDevice(gpu, weights, model), inferReference(model), 'exact output');
    for (const w of weights) await gpu.free(w);
  });

  it('weights 3x the budget: every pass exact, TTM evicted, the budget held', async () => {
    // 12 layers of 256 x 256 f32 (256 KiB each, 3 MiB together) under a 1 MiB budget.
    await using gpu = await makeDevice(1 << 20);
    const model = inferModel({ layers: 12, dim: 256, batch: 8, seed: 11 });
    const total = model.weights.reduce((s, w) => s + w.byteLength, 0);
    assert.ok(total >= 3 * gpu.budgetBytes, `weights ${total} bytes, 3x the budget`);
    const weights = await loadModel(gpu, model);
    const want = inferReference(model);
    for (let pass = 0; pass < 2; pass++)
      assert.deepEqual(await runOnDevice(gpu, weights, model), want, `pass ${pass}: exact output`);
    const stats = gpu.ttm.stats();
    assert.ok(stats.evictions >= 12, `weights were evicted (${stats.evictions})`);
    assert.ok(gpu.vram.stats().peakBytes <= gpu.budgetBytes, 'never over the budget');
    for (const w of weights) await gpu.free(w);
  });
});
