/**
 * The WebGPU device under 1,000 seeded random steps on a tight VRAM budget: allocate, write,
 * validate, compute (saxpy), evict, pin/unpin, put; every buffer's contents checked against a
 * JavaScript model, pinned buffers never move, the budget is never exceeded. `TEST_SEED` replays.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { seededRandom } from '../../../src/base/random.js';
import type { TtmBufferObject } from '../../../src/ttm/ttm-bo.js';
import { TtmMemType } from '../../../src/ttm/ttm-placement.js';
import type { TtmResource } from '../../../src/ttm/ttm-resource.js';
import { saxpyReference } from '../../../src/device/webgpu/webgpu-compute.js';
import type { WebGpuDevice } from '../../../src/device/webgpu/webgpu-device.js';
import { testSeed } from '../../helpers/mock-fence.js';
import { makeDevice, webgpuSkip } from '../../helpers/webgpu.js';

const skip = await webgpuSkip();
const KiB = 1024;
const BUDGET = 64 * KiB;
const STEPS = 1000;

interface Live {
  readonly bo: TtmBufferObject;
  /** What the buffer must hold. */
  expect: Float32Array;
  /** The resource it was pinned in, while pinned. */
  pinnedIn: TtmResource | null;
}

async function readFloats(gpu: WebGpuDevice, bo: TtmBufferObject): Promise<Float32Array> {
  return new Float32Array((await gpu.read(bo)).buffer);
}

function sameBits(a: Float32Array, b: Float32Array): boolean {
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

async function place(bo: TtmBufferObject, memType: number): Promise<void> {
  await bo.reserve();
  try {
    await bo.validate([{ memType }]);
  } finally {
    bo.unreserve();
  }
}

async function randomRun(seed: number): Promise<Record<string, number>> {
  const rand = seededRandom(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)]!;
  await using gpu = await makeDevice(BUDGET);
  const live: Live[] = [];
  const counts: Record<string, number> = {};
  const checkPinned = (step: number): void => {
    for (const l of live)
      if (l.pinnedIn !== null) assert.equal(l.bo.resource, l.pinnedIn, `step ${step}: pinned ${l.bo.name} moved`);
    assert.ok(gpu.vram.usage <= BUDGET, `step ${step}: VRAM ${gpu.vram.usage} over the budget ${BUDGET}`);
  };
  for (let step = 0; step < STEPS; step++) {
    const r = rand();
    const op =
      live.length < 2 || (r < 0.12 && live.length < 14)
        ? 'allocate'
        : r < 0.3
          ? 'write'
          : r < 0.42
            ? 'validate'
            : r < 0.62
              ? 'compute'
              : r < 0.67
                ? 'evict'
                : r < 0.75
                  ? 'pin'
                  : r < 0.82
                    ? 'put'
                    : 'check';
    counts[op] = (counts[op] ?? 0) + 1;
    switch (op) {
      case 'allocate': {
        const size = (1 + Math.floor(rand() * 4)) * 4 * KiB;
        const memType = rand() < 0.7 ? TtmMemType.VRAM : TtmMemType.System;
        const bo = await gpu.createBuffer({ size, placement: [{ memType }], name: `b${step}` });
        live.push({ bo, expect: new Float32Array(size / 4), pinnedIn: null });
        break;
      }
      case 'write': {
        const l = pick(live);
        const data = new Float32Array(l.expect.length).map(() => Math.floor(rand() * 256) - 128);
        await gpu.write(l.bo, data);
        l.expect = data;
        break;
      }
      case 'validate': {
        const l = pick(live);
        if (l.pinnedIn !== null) break;
        await place(l.bo, rand() < 0.5 ? TtmMemType.VRAM : TtmMemType.System);
        break;
      }
      case 'compute': {
        const x = pick(live);
        const y = pick(live);
        if (x === y) break;
        const n = Math.min(x.expect.length, y.expect.length);
        const a = rand() < 0.5 ? 1 : -1;
        await gpu.submit([{ bo: x.bo }, { bo: y.bo, write: true }], (encoder, binding) =>
          gpu.kernels.saxpy(encoder, { a, x: binding(x.bo), y: binding(y.bo), n }),
        );
        const next = y.expect.slice();
        next.set(saxpyReference(a, x.expect.subarray(0, n), y.expect.subarray(0, n)));
        y.expect = next;
        break;
      }
      case 'evict':
        await gpu.evictAll();
        break;
      case 'pin': {
        const l = pick(live);
        await l.bo.reserve();
        try {
          if (l.pinnedIn !== null) {
            l.bo.unpin();
            l.pinnedIn = null;
          } else if (live.filter((p) => p.pinnedIn !== null).length < 2 && l.expect.byteLength <= 16 * KiB) {
            await l.bo.validate([{ memType: TtmMemType.VRAM }]);
            l.bo.pin();
            l.pinnedIn = l.bo.resource;
          }
        } finally {
          l.bo.unreserve();
        }
        break;
      }
      case 'put': {
        const i = Math.floor(rand() * live.length);
        const [l] = live.splice(i, 1);
        if (l!.pinnedIn !== null) {
          await l!.bo.reserve();
          l!.bo.unpin();
          l!.bo.unreserve();
        }
        // Sometimes wait for the real free, sometimes let the delayed delete run on.
        const freed = gpu.free(l!.bo);
        if (rand() < 0.5) await freed;
        break;
      }
      default: {
        const l = pick(live);
        const got = await readFloats(gpu, l.bo);
        assert.ok(sameBits(got, l.expect), `step ${step}: ${l.bo.name} holds the wrong bytes`);
      }
    }
    checkPinned(step);
  }
  for (const l of live) {
    const got = await readFloats(gpu, l.bo);
    assert.ok(sameBits(got, l.expect), `end: ${l.bo.name} holds the wrong bytes`);
    if (l.pinnedIn !== null) {
      await l.bo.reserve();
      l.bo.unpin();
      l.bo.unreserve();
    }
    await gpu.free(l.bo);
  }
  const stats = gpu.ttm.stats();
  return { ...counts, evictions: stats.evictions, moves: stats.moves };
}

describe('WebGpuDevice under random steps', { skip }, () => {
  it('sanity: a write survives an eviction and a restore', async () => {
    await using gpu = await makeDevice(BUDGET);
    const bo = await gpu.createBuffer({ size: 8 * KiB });
    const data = new Float32Array(2 * KiB).map((_, i) => i);
    await gpu.write(bo, data);
    await gpu.evictAll();
    assert.equal(bo.resource?.memType, TtmMemType.System, 'evicted');
    await place(bo, TtmMemType.VRAM);
    assert.ok(sameBits(await readFloats(gpu, bo), data), 'the same bytes after the round trip');
    await gpu.free(bo);
  });

  it(`${STEPS} seeded steps of allocate / write / validate / compute / evict / pin / put: nothing lost`, async () => {
    const seed = testSeed();
    let stats: Record<string, number>;
    try {
      stats = await randomRun(seed);
    } catch (err) {
      throw new Error(`seed ${seed} (rerun with TEST_SEED=${seed}): ${(err as Error).message}`, { cause: err });
    }
    assert.ok((stats['compute'] ?? 0) > 50, `computed (${JSON.stringify(stats)})`);
    assert.ok((stats['evictions'] ?? 0) > 20, `TTM evicted under the budget (${JSON.stringify(stats)})`);
  });

  it('bad input: a buffer larger than the budget or a working set over it is refused, nothing lost', async () => {
    await using gpu = await makeDevice(BUDGET);
    const a = await gpu.createBuffer({ size: 48 * KiB });
    const b = await gpu.createBuffer({ size: 32 * KiB });
    const data = new Float32Array(12 * KiB).map((_, i) => i % 97);
    await gpu.write(a, data);
    await assert.rejects(gpu.createBuffer({ size: BUDGET + 4 * KiB }), (e: unknown) => {
      return (e as { code?: string }).code === 'ENOMEM' && /never fit/.test((e as Error).message);
    });
    await assert.rejects(
      gpu.submit([{ bo: a }, { bo: b, write: true }], () => {}),
      (e: unknown) => (e as { code?: string }).code === 'ENOMEM',
    );
    assert.equal(a.resv.isLocked || b.resv.isLocked, false, 'nothing left locked');
    assert.ok(sameBits(await readFloats(gpu, a), data), 'a is intact');
    await gpu.free(a);
    await gpu.free(b);
    await gpu.destroy();
    await assert.rejects(
      gpu.createBuffer({ size: 4 * KiB }),
      (e: unknown) => (e as { code?: string }).code === 'ENODEV',
    );
  });
});
