// The spin kernel of the hang scenario, registered on a real soft device: busy for the time asked.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import '../../../src/node.js';
import { SPIN_FOREVER, SPIN_KERNEL_URL, spin } from '../../../src/cli/scenarios/spin-kernel.js';
import { SoftDevice } from '../../../src/device/soft/soft-device.js';

describe('spin kernel', () => {
  it('sanity: one number parameter, writes nothing; for ever is a finite number', () => {
    assert.deepEqual(spin.params, { ms: 'number' });
    assert.deepEqual(spin.writes, []);
    assert.ok(Number.isFinite(SPIN_FOREVER) && SPIN_FOREVER > 1e15);
  });

  it('keeps the engine busy for the time asked', async () => {
    const gpu = new SoftDevice({ engines: { gfx: 1 } });
    try {
      assert.deepEqual(await gpu.registerKernels(SPIN_KERNEL_URL), ['spin']);
      const t0 = performance.now();
      await gpu.submit('gfx', 'spin', { ms: 30 }).wait();
      assert.ok(performance.now() - t0 >= 30, `${performance.now() - t0} ms`);
      const t1 = performance.now();
      spin.run({ ms: 5 });
      assert.ok(performance.now() - t1 >= 5, 'and on this thread');
    } finally {
      await gpu.destroy();
    }
  });
});
