/**
 * Executable specification of TTM devices (src/ttm/ttm-device.ts): the KUnit suite
 * `ttm_device_test.c`, then options, managers and teardown.
 *
 * Ported: ttm_device_init_basic, ttm_device_init_multiple, ttm_device_fini_basic, and the
 * meaningful half of ttm_device_init_pools (where the device's pages come from).
 * Dropped, with no counterpart in this design: the `dev_mapping` check of init_basic (no
 * address spaces), ttm_device_init_no_vma_man (there is no vma offset manager to omit; the
 * closest bad input, invalid options, is covered below instead), and the DMA-alloc / DMA32
 * parameters of ttm_device_init_pools (no DMA API, no caching pools).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { BugError, FenceTimeoutError, InvalidArgumentError } from '../../src/base/errors.js';
import { VirtualClock, useClock } from '../../src/base/clock.js';
import type { DmaFence } from '../../src/fence/dma-fence.js';
import { DmaResvUsage } from '../../src/resv/dma-resv.js';
import { WorkQueue } from '../../src/base/workqueue.js';
import { DmaHeap } from '../../src/heap/dma-heap.js';
import { TtmBufferObject } from '../../src/ttm/ttm-bo.js';
import { TtmCopyEngine } from '../../src/ttm/ttm-copy-engine.js';
import { TtmDevice } from '../../src/ttm/ttm-device.js';
import { TtmRangeManager, TtmSysManager } from '../../src/ttm/ttm-range-manager.js';
import { TTM_NUM_MEM_TYPES, TtmMemType } from '../../src/ttm/ttm-placement.js';
import { kunitDevice, mockFuncs, mockManagerInit, placement } from '../helpers/ttm-kunit.js';
import { nextTurn, watch } from '../helpers/completion.js';
import { mockFence } from '../helpers/mock-fence.js';

const run = promisify(execFile);

const KiB = 1024;

describe('ttm_device', () => {
  it('ttm_device_init_basic', async () => {
    const device = kunitDevice();
    assert.match(device.funcs.move.name, /mockMove/, 'the driver functions are set');
    assert.match(device.funcs.evictFlags.name, /mockEvictFlags/);
    assert.ok(device.wq instanceof WorkQueue, 'the delayed-delete workqueue is allocated');
    assert.equal(device.wq.maxActive, 16, "alloc_workqueue('ttm', ..., 16)");
    const sys = device.manager(TtmMemType.System);
    assert.ok(sys !== null, 'the System manager is registered');
    assert.equal(sys.useTt, true);
    assert.equal(sys.useType, true);
    assert.ok(device.heap instanceof DmaHeap, 'the page source');
    assert.ok(TtmDevice.devices().includes(device), 'on the device list');
    await device.fini();
  });

  it('ttm_device_init_multiple', async () => {
    const before = TtmDevice.devices().length;
    const devices = [kunitDevice(), kunitDevice(), kunitDevice()];
    assert.equal(TtmDevice.devices().length, before + 3);
    for (const d of devices) assert.ok(TtmDevice.devices().includes(d));
    for (const d of devices) {
      assert.ok(d.wq instanceof WorkQueue);
      assert.ok(d.manager(TtmMemType.System) !== null);
    }
    assert.equal(new Set(devices.map((d) => d.wq)).size, 3, 'each device has its own queue');
    for (const d of devices) await d.fini();
    assert.equal(TtmDevice.devices().length, before, 'fini leaves the list');
  });

  it('ttm_device_fini_basic', async () => {
    const device = kunitDevice();
    const man = device.manager(TtmMemType.System)!;
    await device.fini();
    assert.equal(man.useType, false, 'the System manager is unused');
    assert.equal(man.lru[0]!.isEmpty, true);
    assert.equal(device.manager(TtmMemType.System), null, 'and unregistered');
    assert.equal(TtmDevice.devices().includes(device), false);
  });

  it('ttm_device_init_pools (pages come from the device heap: its own, or the one given)', async () => {
    const own = kunitDevice();
    assert.ok(own.heap instanceof DmaHeap);
    await using heap = new DmaHeap({ name: 'shared-heap' });
    const given = kunitDevice({ heap });
    assert.equal(given.heap, heap);
    assert.notEqual(own.heap, given.heap);
    const bo = await TtmBufferObject.initValidate(given, { size: 8 * KiB, placement: placement(TtmMemType.System) });
    await bo.reserve();
    bo.kmap(); // populates the tt
    bo.unreserve();
    assert.equal(heap.liveBuffers, 1, 'the System pages came from the given heap');
    assert.equal(own.heap.liveBuffers, 0);
    bo.put();
    await given.fini();
    await own.fini();
    assert.doesNotThrow(() => heap.allocate(4096).put(), 'a given heap outlives the device');
  });
});

describe('TtmDevice', () => {
  it('creates TT and VRAM managers when sized, with a VRAM arena of that size', async () => {
    await using device = new TtmDevice({ ttBytes: 64 * KiB, vramBytes: 128 * KiB, systemBytes: 256 * KiB });
    assert.ok(device.manager(TtmMemType.TT) instanceof TtmSysManager);
    assert.ok(device.manager(TtmMemType.VRAM) instanceof TtmRangeManager);
    assert.equal(device.manager(TtmMemType.TT)!.size, 64 * KiB);
    assert.equal(device.manager(TtmMemType.VRAM)!.size, 128 * KiB);
    assert.equal(device.manager(TtmMemType.VRAM)!.useTt, false, 'VRAM keeps its bytes in the arena');
    assert.equal(device.manager(TtmMemType.System)!.size, 256 * KiB);
    assert.equal(device.vram?.byteLength, 128 * KiB);
    assert.equal(device.copyEngine, null, 'no copy engine unless asked');
  });

  it('without sizes: only System, unlimited, and no arena', async () => {
    await using device = new TtmDevice();
    assert.equal(device.manager(TtmMemType.TT), null);
    assert.equal(device.manager(TtmMemType.VRAM), null);
    assert.equal(device.manager(TtmMemType.System)!.size, Infinity);
    assert.equal(device.vram, null);
  });

  it('copyEngine: true makes a device-owned engine; a given engine is used as is', async () => {
    await using engine = new TtmCopyEngine({ name: 'shared-copy' });
    await using owned = new TtmDevice({ copyEngine: true });
    await using given = new TtmDevice({ copyEngine: engine });
    assert.ok(owned.copyEngine instanceof TtmCopyEngine);
    assert.equal(given.copyEngine, engine);
  });

  it('setManager installs and removes driver managers; the type must be in range', async () => {
    await using device = kunitDevice();
    const man = mockManagerInit(device, TtmMemType.Priv, 64 * KiB);
    assert.equal(device.manager(TtmMemType.Priv), man);
    device.setManager(TtmMemType.Priv, null);
    assert.equal(device.manager(TtmMemType.Priv), null);
    assert.throws(() => device.setManager(TTM_NUM_MEM_TYPES, man), InvalidArgumentError);
    assert.throws(() => device.setManager(-1, man), InvalidArgumentError);
  });

  it('rejects bad options (the nearest thing to ttm_device_init_no_vma_man)', () => {
    const before = TtmDevice.devices().length;
    for (const bad of [
      { vramBytes: 1000 },
      { ttBytes: -4096 },
      { maxActive: 0 },
      { delayedDelete: 'sometimes' },
      { scanIntervalMs: 0 },
      { heap: {} },
      { vramBytess: 4096 },
    ]) {
      assert.throws(() => new TtmDevice(bad as never), InvalidArgumentError, JSON.stringify(bad));
    }
    assert.equal(TtmDevice.devices().length, before, 'refused devices are not listed');
  });

  it('fini is idempotent and [Symbol.asyncDispose] is fini', async () => {
    const device = kunitDevice({ funcs: mockFuncs });
    const first = device.fini();
    assert.equal(device.fini(), first, 'the same promise');
    await first;
    await device[Symbol.asyncDispose]();
    assert.equal(device.manager(TtmMemType.System), null);
  });

  it('creating a buffer object after fini is a BugError', async () => {
    const device = kunitDevice();
    await device.fini();
    assert.throws(() => new TtmBufferObject(device, { size: 4096 }), BugError);
  });

  it('evictAll empties a manager except for pinned buffers, keeping contents', async () => {
    await using device = new TtmDevice({ vramBytes: 64 * KiB });
    const vram = placement(TtmMemType.VRAM);
    const bos: TtmBufferObject[] = [];
    for (let i = 0; i < 4; i++) {
      const bo = await TtmBufferObject.initReserved(device, { size: 16 * KiB, placement: vram });
      bo.kmap().fill(i + 1);
      if (i === 0) bo.pin();
      bo.unreserve();
      bos.push(bo);
    }
    await device.evictAll(TtmMemType.VRAM);
    assert.equal(device.manager(TtmMemType.VRAM)!.usage, 16 * KiB, 'only the pinned buffer stays');
    for (const [i, bo] of bos.entries()) {
      await bo.reserve();
      assert.equal(bo.resource?.memType, i === 0 ? TtmMemType.VRAM : TtmMemType.System);
      assert.ok(
        bo.kmap().every((b) => b === i + 1),
        `contents of buffer ${i}`,
      );
      if (i === 0) bo.unpin();
      bo.unreserve();
      bo.put();
    }
    assert.equal(device.stats().evictions, 3);
  });

  it('evictAll of a type without a manager is an InvalidArgumentError', async () => {
    await using device = kunitDevice();
    await assert.rejects(device.evictAll(TtmMemType.VRAM), InvalidArgumentError);
  });
});

describe('TtmDevice teardown at the trust boundary (issue 10)', () => {
  const VRAM = [{ memType: TtmMemType.VRAM }];

  /** A VRAM buffer whose reservation holds `fence` (unlocked, one reference). */
  async function busyBuffer(device: TtmDevice, fence: DmaFence): Promise<TtmBufferObject> {
    const bo = await TtmBufferObject.initReserved(device, { size: 4 * KiB, placement: VRAM });
    bo.resv.reserveFences(1);
    bo.resv.addFence(fence, DmaResvUsage.Write);
    bo.unreserve();
    return bo;
  }

  it('sanity: fini with every buffer put resolves and frees the memory', async () => {
    const device = new TtmDevice({ vramBytes: 64 * KiB, quiet: true });
    const fence = mockFence();
    (await busyBuffer(device, fence)).put();
    fence.signal();
    await device.fini();
    assert.equal(device.manager(TtmMemType.VRAM)!.usage, 0);
  });

  it('defect 3: after a failed fini, a busy buffer put later is still freed, and fini can finish', async () => {
    const device = new TtmDevice({ vramBytes: 64 * KiB, quiet: true });
    const fence = mockFence();
    const bo = await busyBuffer(device, fence);
    await assert.rejects(device.fini(), (err: unknown) => {
      assert.ok(err instanceof BugError, String(err));
      assert.ok(err.message.startsWith(`TtmDevice ${device.name}`), err.message);
      assert.ok(err.message.includes(bo.name), err.message);
      return true;
    });
    let putError: unknown;
    try {
      bo.put(); // busy: a zombie for the delayed delete
    } catch (err) {
      putError = err;
    }
    assert.equal(putError, undefined, `put() after a failed fini threw ${String(putError)}`);
    assert.equal(device.zombies, 1);
    fence.signal();
    await device.fini(); // nothing is referenced any more: the teardown finishes
    assert.equal(device.manager(TtmMemType.VRAM)!.usage, 0, 'the memory was freed, not accounted for ever');
    assert.equal(device.boCount, 0);
  });

  it(
    'defect 3, late: ' + 'a second failed fini names only the buffers still referenced, and says so about the device',
    async () => {
      const device = new TtmDevice({ vramBytes: 64 * KiB, quiet: true });
      const [f1, f2] = [mockFence(), mockFence()];
      const gone = await busyBuffer(device, f1);
      const kept = await busyBuffer(device, f2);
      await assert.rejects(device.fini(), BugError);
      gone.put();
      f1.signal();
      await assert.rejects(device.fini(), (err: unknown) => {
        assert.ok(err instanceof BugError, String(err));
        assert.ok(
          !err.message.includes(gone.name),
          `the second fini named ${gone.name}, which was put: ${err.message}`,
        );
        assert.ok(err.message.includes(kept.name), err.message);
        return true;
      });
      kept.put();
      f2.signal();
      await device.fini();
    },
  );

  it('defect 4: fini says what it still waits for when its timeout runs out', async () => {
    const clock = new VirtualClock();
    using _clock = useClock(clock);
    const device = new TtmDevice({ vramBytes: 64 * KiB, delayedDelete: 'periodic-scan', quiet: true });
    const stuck = mockFence();
    const bo = await busyBuffer(device, stuck);
    bo.put();
    const fini = watch(device.fini({ timeout: 50 }));
    await clock.tick(50);
    const state = fini();
    assert.equal(state.state, 'rejected', `fini({ timeout }) must give up after the timeout, got ${state.state}`);
    const error = (state as { reason: unknown }).reason;
    assert.ok(error instanceof FenceTimeoutError, String(error));
    assert.ok(error.message.includes(bo.name), error.message);
    assert.match(error.message, /active/, 'it names the fence it waits for');
    stuck.signal();
    await clock.runAll();
    await device.fini();
    assert.equal(device.manager(TtmMemType.VRAM)!.usage, 0);
  });

  it('fini({ signal }): an abort stops the waiting, not the teardown; fini() again waits for it', async () => {
    const device = new TtmDevice({ vramBytes: 64 * KiB, quiet: true });
    const fence = mockFence();
    (await busyBuffer(device, fence)).put();
    const controller = new AbortController();
    const reason = new Error('give up');
    const first = watch(device.fini({ signal: controller.signal }));
    controller.abort(reason);
    await nextTurn();
    const state = first();
    assert.ok(
      state.state === 'rejected' && state.reason === reason,
      `fini must reject with the reason, got ${state.state}`,
    );
    fence.signal();
    await device.fini();
    assert.equal(device.manager(TtmMemType.VRAM)!.usage, 0);
    await assert.rejects(device.fini({ timeout: -1 }), InvalidArgumentError);
  });

  it('defect 4: a periodic-scan device with a zombie that never idles does not keep the process alive', async () => {
    const root = fileURLToPath(new URL('../../', import.meta.url));
    const script = [
      `import { TtmBufferObject, TtmDevice, TtmMemType, DmaFence } from ${JSON.stringify(
        new URL('../../src/index.ts', import.meta.url).href,
      )};`,
      "const device = new TtmDevice({ vramBytes: 1 << 16, delayedDelete: 'periodic-scan', quiet: true });",
      'const bo = await TtmBufferObject.initReserved(device, ' +
        '{ size: 4096, placement: [{ memType: TtmMemType.VRAM }] });',
      "bo.resv.reserveFences(1); bo.resv.addFence(new DmaFence('never'), 'write'); bo.unreserve(); bo.put();",
      "console.log('zombies', device.zombies);",
    ].join('\n');
    const env = { ...process.env };
    delete env['NODE_TEST_CONTEXT'];
    const started = performance.now();
    const { stdout } = await run(
      process.execPath,
      ['--conditions=@dmabuf/source', '--import', 'tsx', '--input-type=module', '-e', script],
      {
        cwd: root,
        env,
        timeout: 20_000,
      },
    );
    assert.match(stdout, /zombies 1/);
    assert.ok(performance.now() - started < 20_000, 'the process exited by itself');
  });
});
