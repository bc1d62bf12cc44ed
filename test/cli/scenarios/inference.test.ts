// The inference scenario on the soft device (the default) and on the WebGPU device (Dawn on
// SwiftShader; skipped locally without an adapter, failing in CI): weights over the budget,
// evicted and restored by TTM, exact output.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { runScenarios } from '../../../src/cli/runner.js';
import type { VariantResult } from '../../../src/cli/run-result.js';
import { inference, layerDim, referenceOutput } from '../../../src/cli/scenarios/inference.js';
import { seededRandom } from '../../../src/base/random.js';
import { matmulReference } from '../../../src/device/webgpu/webgpu-compute.js';
import { toTraceJson } from '../../../src/cli/trace.js';
import { traceProblems } from '../../helpers/trace-check.js';
import { webgpuSkip } from '../../helpers/webgpu.js';

const skip = await webgpuSkip();
const MiB = 1024 * 1024;

describe('inference sizes', () => {
  it('sanity: a layer is about an eighth of the budget, its side a multiple of 64', () => {
    for (const budget of [4 * MiB, 16 * MiB, 64 * MiB, 1024 * MiB]) {
      const dim = layerDim(budget);
      assert.equal(dim % 64, 0, `${dim} for ${budget}`);
      const layer = dim * dim * 4;
      assert.ok(
        layer <= budget / 8 && layer > budget / 8 / 1.5,
        `${layer} bytes per layer under a ${budget}-byte budget`,
      );
    }
  });
});

describe('inference reference', () => {
  it('equals a dense product of every layer, zeros skipped or not', () => {
    const seed = 11;
    const random = seededRandom(seed);
    const dim = 16;
    // Dense and sparse layers of small integers (a third of the weights zero), exact in f32.
    const weights = Array.from({ length: 3 }, () =>
      new Float32Array(dim * dim).map(() => (random() < 1 / 3 ? 0 : Math.floor(random() * 5) - 2)),
    );
    const input = new Float32Array(8 * dim).map(() => Math.floor(random() * 7) - 3);
    let want: Float32Array = input;
    for (const w of weights) want = matmulReference(want, w, 8, dim, dim);
    assert.deepEqual(referenceOutput(weights, input, dim), want, `seed ${seed}`);
  });
});

describe('inference scenario on the soft device', () => {
  it('sanity: one pass over budget evicts and restores weights, stays within the budget, and is exact', async () => {
    const run = await runScenarios({
      scenarios: [inference],
      options: { seed: 2, budgetBytes: 4 * MiB, durationMs: 200, device: 'soft' },
      compare: null,
      trace: true,
    });
    const v: VariantResult = run.scenarios[0]!.variants[0]!;
    assert.equal(v.status, 'ok', v.error);
    const metric = (key: string): number => v.metrics.find((m) => m.key === key)?.value ?? Number.NaN;
    assert.ok(metric('passes') >= 1, 'a complete pass');
    assert.equal(metric('layers'), 20 * metric('passes'));
    assert.ok(metric('evictions') > 0, `TTM evicted weights (${metric('evictions')} evictions)`);
    // Every layer's weights came into VRAM at least once: 20 layers of about an eighth of the budget.
    assert.ok(metric('bytes_moved') >= 20 * layerDim(4 * MiB) ** 2 * 4, `bytes moved ${metric('bytes_moved')}`);
    assert.ok(metric('vram_peak') > 0 && metric('vram_peak') <= 4 * MiB, 'within the budget');
    assert.ok(metric('efficiency') > 0, 'a throughput against the ideal');
    assert.ok(metric('layer_p99') >= metric('layer_p50'), 'p99 >= p50');
    assert.match(v.notes.join('\n'), /equals the CPU reference bit for bit/);
    assert.deepEqual(
      v.tracks.filter((t) => t.kind === 'engine').map((t) => t.name),
      ['compute.0'],
      'one track per engine',
    );
    assert.equal(v.charts[0]?.id, 'engine-occupancy');
    assert.deepEqual(traceProblems(JSON.parse(JSON.stringify(toTraceJson(run)))), []);
  });

  it('runs on both devices, the soft one by default', () => {
    assert.deepEqual(inference.devices, ['soft', 'webgpu']);
  });
});

describe('inference scenario on the WebGPU device', { skip }, () => {
  it('sanity: one pass over budget evicts and restores weights, stays within the budget, and is exact', async () => {
    const run = await runScenarios({
      scenarios: [inference],
      options: { seed: 2, budgetBytes: 4 * MiB, durationMs: 200, device: 'webgpu' },
      compare: null,
      trace: true,
    });
    const v: VariantResult = run.scenarios[0]!.variants[0]!;
    assert.equal(v.status, 'ok', v.error);
    const metric = (key: string): number => v.metrics.find((m) => m.key === key)?.value ?? Number.NaN;
    assert.ok(metric('passes') >= 1, 'a complete pass');
    assert.equal(metric('layers'), 20 * metric('passes'));
    assert.ok(metric('evictions') > 0 && metric('bytes_moved') > 0, 'TTM evicted and restored');
    assert.ok(metric('vram_peak') <= 4 * MiB, 'within the budget');
    assert.ok(metric('efficiency') > 0, 'a throughput against the ideal');
    assert.match(v.notes.join('\n'), /equals the CPU reference bit for bit/);
    assert.deepEqual(
      v.tracks.filter((t) => t.kind === 'engine').map((t) => t.name),
      ['webgpu queue'],
      'one track per engine',
    );
    assert.equal(v.charts[0]?.id, 'engine-occupancy');
    assert.deepEqual(traceProblems(JSON.parse(JSON.stringify(toTraceJson(run)))), []);
  });
});
