import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { DmaBufError, InvalidArgumentError } from '../../../src/base/errors.js';
import { VirtualClock, useClock } from '../../../src/base/clock.js';
import { DmaFence } from '../../../src/fence/dma-fence.js';
import { SoftDevice, type SoftDeviceOptions } from '../../../src/device/soft/soft-device.js';
import { nodeWorkerPlatform } from '../../../src/device/soft/soft-worker-node.js';
import { mockFence } from '../../helpers/mock-fence.js';

const TEST_KERNELS = new URL('./test-kernels.ts', import.meta.url);

function device(options: SoftDeviceOptions = {}): SoftDevice {
  return new SoftDevice({ platform: nodeWorkerPlatform, ...options });
}

function codeOf(fence: DmaFence): string | undefined {
  const error = fence.error;
  return error === undefined ? undefined : error instanceof DmaBufError ? error.code : `not a DmaBufError: ${error}`;
}

/** Polls (real time) until `condition` holds; fails after `ms`. */
async function until(condition: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = performance.now() + ms;
  while (!condition()) {
    if (performance.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

function isCode(code: string) {
  return (err: unknown): boolean => err instanceof DmaBufError && err.code === code;
}

describe('SoftDevice', () => {
  let gpu: SoftDevice;
  before(async () => {
    gpu = device({ name: 'gpu', engines: { gfx: 1, compute: 2 }, ringSize: 8 });
    await gpu.registerKernels(TEST_KERNELS);
  });
  after(() => gpu.destroy());

  it('sanity: a saxpy job runs on a worker and its fence signals', async () => {
    const memory = gpu.map(new SharedArrayBuffer(16));
    new Float32Array(memory.buffer).set([1, 2, 2, 3]);
    const fence = gpu.submit('compute', 'saxpy', { a: 10, x: memory.range(0, 8), y: memory.range(8, 8) });
    assert.equal(await fence.wait({ timeout: 10_000 }), true);
    assert.equal(fence.error, undefined);
    assert.deepEqual([...new Float32Array(memory.buffer, 8, 2)], [12, 23]);
  });

  it('runs one ring in submission order, through ring wrap-around, fences signalling in order', async () => {
    const log = gpu.map(new SharedArrayBuffer(4 * 601));
    const order: number[] = [];
    const fences: DmaFence[] = [];
    for (let i = 1; i <= 600; i++) {
      const fence = gpu.submit('gfx', 'append', { log: log.range(), value: i });
      fence.addCallback((f) => order.push(f.seqno));
      fences.push(fence);
    }
    await fences.at(-1)!.wait();
    const entries = new Uint32Array(log.buffer);
    assert.equal(entries[0], 600);
    assert.deepEqual(
      [...entries.subarray(1)],
      Array.from({ length: 600 }, (_, i) => i + 1),
    );
    assert.deepEqual(
      order,
      fences.map((f) => f.seqno),
    );
    assert.ok(
      fences.every((f, i) => i === 0 || DmaFence.isLater(f, fences[i - 1]!)),
      'seqnos increase',
    );
  });

  it('spreads an engine over its rings, and keeps order on a pinned ring', async () => {
    const [log0, log1] = [gpu.map(new SharedArrayBuffer(4 * 101)), gpu.map(new SharedArrayBuffer(4 * 101))];
    const fences: DmaFence[] = [];
    for (let i = 1; i <= 100; i++) {
      fences.push(gpu.submit('compute', 'append', { log: log0.range(), value: i }, { ring: 0 }));
      fences.push(gpu.submit('compute', 'append', { log: log1.range(), value: i }, { ring: 1 }));
    }
    await Promise.all(fences.map((f) => f.wait()));
    for (const log of [log0, log1]) {
      assert.deepEqual(
        [...new Uint32Array(log.buffer).subarray(1)],
        Array.from({ length: 100 }, (_, i) => i + 1),
      );
    }
    const rings = gpu.rings('compute');
    assert.equal(rings.length, 2);
    assert.ok(
      rings.every((r) => r.ring.fences.processed >= 100),
      'both rings ran jobs',
    );
  });

  it('a job waits for its dependencies, and a dependency error is not passed on (as in drm_sched)', async () => {
    const log = gpu.map(new SharedArrayBuffer(4 * 3));
    const gate = mockFence();
    const first = gpu.submit('gfx', 'append', { log: log.range(), value: 1 }, { dependencies: [gate] });
    const second = gpu.submit('gfx', 'append', { log: log.range(), value: 2 });
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(first.signaledFlag || second.signaledFlag, false, 'the engine queue waits, in order');
    assert.equal(new Uint32Array(log.buffer)[0], 0);
    gate.setError('EIO');
    gate.signal();
    await second.wait();
    assert.deepEqual([...new Uint32Array(log.buffer)], [2, 1, 2]);
    assert.equal(first.error, undefined);
  });

  it('user kernels run like built-ins; a module is refused when it adds nothing new', async () => {
    const memory = gpu.map(new SharedArrayBuffer(8));
    new Uint8Array(memory.buffer).set([0, 1, 2, 3]);
    await gpu.submit('gfx', 'invert', { src: memory.range(0, 4), dst: memory.range(4, 4) }).wait();
    assert.deepEqual([...new Uint8Array(memory.buffer, 4)], [255, 254, 253, 252]);
    await assert.rejects(gpu.registerKernels(TEST_KERNELS), /already known/);
    await assert.rejects(
      gpu.registerKernels(new URL('../../helpers/mock-fence.ts', import.meta.url)),
      /exports no kernel/,
    );
    assert.ok(gpu.kernelNames.includes('invert'));
  });

  it('a throwing kernel fails its own job with EIO; the ring goes on without a reset', async () => {
    const failed = gpu.submit('gfx', 'boom');
    const next = gpu.submit('gfx', 'noop');
    await next.wait();
    assert.equal(codeOf(failed), 'EIO');
    assert.equal(next.error, undefined);
    assert.equal(gpu.resets.length, 0);
  });

  it('refuses bad input with a typed error and loses nothing', async () => {
    const memory = gpu.map(new SharedArrayBuffer(64));
    const pending = gpu.submit('gfx', 'spin', { ms: 20 });
    const other = device({ name: 'other', engines: { gfx: 1 } });
    const foreign = other.map(new SharedArrayBuffer(64));
    await other.destroy();
    const unmapped = gpu.map(new SharedArrayBuffer(8));
    unmapped.unmap();
    const cases: [string, () => unknown, (err: unknown) => boolean][] = [
      [
        'unknown kernel',
        () => gpu.submit('gfx', 'nope'),
        (e) => e instanceof InvalidArgumentError && /unknown kernel/.test(String(e)),
      ],
      [
        'unknown engine',
        () => gpu.submit('video', 'noop'),
        (e) => e instanceof InvalidArgumentError && /no engine/.test(String(e)),
      ],
      ['bad ring', () => gpu.submit('compute', 'noop', {}, { ring: 2 }), (e) => e instanceof InvalidArgumentError],
      [
        'missing argument',
        () => gpu.submit('gfx', 'fill', { dst: memory }),
        (e) => /value\) is missing/.test(String(e)),
      ],
      ['extra argument', () => gpu.submit('gfx', 'noop', { x: 1 }), (e) => /no parameter "x"/.test(String(e))],
      [
        'NaN',
        () => gpu.submit('gfx', 'fill', { dst: memory, value: Number.NaN }),
        (e) => e instanceof InvalidArgumentError,
      ],
      [
        'misaligned f32',
        () => gpu.submit('gfx', 'saxpy', { a: 1, x: memory.range(1, 8), y: memory.range(16, 8) }),
        (e) => /multiples of 4/.test(String(e)),
      ],
      ['range past the end', () => memory.range(60, 8), (e) => e instanceof InvalidArgumentError],
      [
        'memory of another (destroyed) device',
        () => gpu.submit('gfx', 'fill', { dst: foreign, value: 1 }),
        (e) => e instanceof InvalidArgumentError && /belongs to other/.test(String(e)),
      ],
      ['unmapped memory', () => gpu.submit('gfx', 'fill', { dst: unmapped, value: 1 }), isCode('ENOENT')],
      [
        'not shared memory',
        () => gpu.map(new ArrayBuffer(8) as unknown as SharedArrayBuffer),
        (e) => e instanceof InvalidArgumentError,
      ],
      [
        'not a fence',
        () => gpu.submit('gfx', 'noop', {}, { dependencies: [1 as unknown as DmaFence] }),
        (e) => e instanceof InvalidArgumentError,
      ],
      ['destroyed device', () => other.submit('gfx', 'noop'), isCode('ENODEV')],
    ];
    for (const [what, call, expected] of cases) assert.throws(call, expected, what);
    assert.equal(await pending.wait({ timeout: 10_000 }), true);
    assert.equal(pending.error, undefined, 'work submitted before the bad calls completes');
    const after = gpu.submit('gfx', 'fill', { dst: memory, value: 9 });
    await after.wait();
    assert.ok(
      new Uint8Array(memory.buffer).every((b) => b === 9),
      'and later work runs',
    );
  });
});

describe('SoftDevice scheduling policy', () => {
  /** The order in which four queued jobs of two clients run, under `policy`, on one ring slot. */
  async function order(policy: 'fair' | 'fifo' | 'rr' | undefined): Promise<{ sched: string; log: number[] }> {
    const gpu = device({ engines: { gfx: 1 }, ringSize: 1, ...(policy === undefined ? {} : { policy }) });
    try {
      await gpu.registerKernels(TEST_KERNELS);
      const log = gpu.map(new SharedArrayBuffer(64));
      const [a, b] = [gpu.createContext({ name: 'a' }), gpu.createContext({ name: 'b' })];
      // The ring's one slot is busy, so the jobs below wait in the scheduler, which then picks.
      const busy = gpu.submit('gfx', 'spin', { ms: 50 });
      const jobs = [
        gpu.submit('gfx', 'append', { log: log.range(), value: 1 }, { context: a }),
        gpu.submit('gfx', 'append', { log: log.range(), value: 2 }, { context: a }),
        gpu.submit('gfx', 'append', { log: log.range(), value: 3 }, { context: a }),
        gpu.submit('gfx', 'append', { log: log.range(), value: 10 }, { context: b }),
      ];
      await Promise.all([busy, ...jobs].map((f) => f.wait({ timeout: 10_000 })));
      const words = new Uint32Array(log.buffer);
      return { sched: gpu.scheduler(gpu.rings('gfx')[0]!).policy.name, log: [...words.subarray(1, 1 + words[0]!)] };
    } finally {
      await gpu.destroy();
    }
  }

  it("sanity: the default is FAIR, and the option reaches every ring's scheduler", async () => {
    assert.equal((await order(undefined)).sched, 'fair');
    const gpu = device({ engines: { gfx: 1, copy: 2 }, policy: 'rr' });
    try {
      assert.deepEqual(
        gpu.engines.map((e) => gpu.scheduler(e).policy.name),
        ['rr', 'rr', 'rr'],
      );
    } finally {
      await gpu.destroy();
    }
  });

  it('FIFO runs the oldest queued job first; round-robin lets the clients take turns', async () => {
    const fifo = await order('fifo');
    assert.deepEqual(fifo, { sched: 'fifo', log: [1, 2, 3, 10] }, 'b submitted last, so it runs last');
    const rr = await order('rr');
    assert.deepEqual(rr, { sched: 'rr', log: [1, 10, 2, 3] }, 'a, then b, then a again');
  });

  it('refuses an unknown policy with a typed error naming it', () => {
    assert.throws(
      () => device({ engines: { gfx: 1 }, policy: 'lottery' as 'fair' }),
      (e) =>
        e instanceof InvalidArgumentError && /policy must be 'fair', 'fifo' or 'rr', got "lottery"/.test(String(e)),
    );
  });
});

describe('SoftDevice hangs and faults', () => {
  it(
    'a hang trips the watchdog: ' +
      'ETIMEDOUT, the context turns guilty, the ring resets and runs the jobs behind it, others keep being served',
    async () => {
      const clock = new VirtualClock();
      using _clock = useClock(clock);
      const gpu = device({ engines: { compute: 1, copy: 1 }, hangTimeoutMs: 500 });
      try {
        await gpu.registerKernels(TEST_KERNELS);
        const bad = gpu.createContext({ name: 'bad' });
        const log = gpu.map(new SharedArrayBuffer(16));
        const hung = gpu.submit('compute', 'spin', { ms: Number.MAX_SAFE_INTEGER }, { context: bad });
        const compute = gpu.rings('compute')[0]!;
        await until(() => compute.ring.running !== 0, 'the spin job to start');
        // Written into the ring behind the hung job: it waits there for the engine.
        const behind = gpu.submit('compute', 'append', { log: log.range(), value: 7 });
        await until(() => compute.ring.fences.pendingCount === 2, 'the second job to reach the ring');
        // The copy engine serves its clients while compute hangs.
        for (let i = 0; i < 20; i++) await gpu.submit('copy', 'noop').wait();
        clock.advance(499);
        assert.equal(gpu.resets.length, 0, 'no reset before the timeout');
        clock.advance(1);
        await Promise.all([hung.wait(), behind.wait()]);
        assert.equal(codeOf(hung), 'ETIMEDOUT');
        assert.equal(behind.error, undefined);
        assert.deepEqual(
          [...new Uint32Array(log.buffer, 0, 2)],
          [1, 7],
          'the job behind the hang ran once, on the new engine',
        );
        assert.equal(gpu.resets.length, 1);
        assert.deepEqual(
          { engine: gpu.resets[0]!.engine, code: gpu.resets[0]!.code },
          { engine: 'compute.0', code: 'ETIMEDOUT' },
        );
        assert.equal(gpu.rings('copy')[0]!.resets, 0);
        assert.equal(bad.guilty, true, 'karma made the context guilty');
        assert.equal(gpu.defaultContext.guilty, false);
        const skipped = gpu.submit('compute', 'append', { log: log.range(), value: 8 }, { context: bad });
        const served = gpu.submit('compute', 'append', { log: log.range(), value: 9 });
        await Promise.all([skipped.wait(), served.wait()]);
        assert.equal(codeOf(skipped), 'ECANCELED', "a guilty context's job is not run");
        assert.equal(served.error, undefined);
        assert.deepEqual([...new Uint32Array(log.buffer, 0, 3)], [2, 7, 9]);
      } finally {
        await gpu.destroy({ cancel: true });
      }
    },
  );

  it('a watchdog expiry during a reset or before the fresh worker ran a full timeout blames no one', async () => {
    const clock = new VirtualClock();
    using _clock = useClock(clock);
    const gpu = device({ engines: { compute: 1 }, hangTimeoutMs: 500 });
    try {
      await gpu.registerKernels(TEST_KERNELS);
      const bad = gpu.createContext({ name: 'bad' });
      const good = gpu.createContext({ name: 'good' });
      const log = gpu.map(new SharedArrayBuffer(16));
      const hung = gpu.submit('compute', 'spin', { ms: Number.MAX_SAFE_INTEGER }, { context: bad });
      const compute = gpu.rings('compute')[0]!;
      await until(() => compute.ring.running !== 0, 'the spin job to start');
      const behind = gpu.submit('compute', 'append', { log: log.range(), value: 7 }, { context: good });
      await until(() => compute.ring.fences.pendingCount === 2, 'the second job to reach the ring');
      clock.advance(500); // the watchdog: the reset starts; terminating the spinning worker takes a while
      clock.advance(500); // expires again while the engine is still resetting
      await Promise.all([hung.wait(), behind.wait()]);
      clock.advance(499); // the fresh engine's first moments: not a full timeout of its own yet
      assert.equal(codeOf(hung), 'ETIMEDOUT');
      assert.equal(behind.error, undefined, 'the job behind the hang ran on the fresh engine');
      assert.equal(gpu.resets.length, 1, 'one hang, one reset');
      assert.deepEqual([bad.guilty, good.guilty], [true, false], 'only the hung context is guilty');
      const later = gpu.submit('compute', 'append', { log: log.range(), value: 9 }, { context: good });
      await later.wait();
      assert.equal(later.error, undefined, 'the innocent context is still served');
      assert.deepEqual([...new Uint32Array(log.buffer, 0, 3)], [2, 7, 9]);
    } finally {
      await gpu.destroy({ cancel: true });
    }
  });

  it('a slow start is not a hang: the watchdog waits while the engine executes nothing', async () => {
    const clock = new VirtualClock();
    using _clock = useClock(clock);
    const gpu = device({ engines: { copy: 1 }, hangTimeoutMs: 50 });
    try {
      const fence = gpu.submit('copy', 'noop'); // the worker is still booting
      clock.advance(500);
      await fence.wait();
      assert.equal(fence.error, undefined);
      assert.equal(gpu.resets.length, 0);
    } finally {
      await gpu.destroy();
    }
  });

  it('a worker that exits or runs out of memory is replaced; its job fails with EIO', async () => {
    const gpu = device({ engines: { compute: 1 }, workerResourceLimits: { maxOldGenerationSizeMb: 24 } });
    try {
      await gpu.registerKernels(TEST_KERNELS);
      const killed = gpu.submit('compute', 'die', { code: 3 });
      const next = gpu.submit('compute', 'noop');
      await next.wait({ timeout: 20_000 });
      assert.equal(codeOf(killed), 'EIO');
      assert.equal(next.error, undefined);
      assert.match(gpu.resets[0]!.reason, /exited with code 3/);
      const oom = gpu.submit('compute', 'hog');
      const after = gpu.submit('compute', 'noop');
      await after.wait({ timeout: 60_000 });
      assert.equal(codeOf(oom), 'EIO');
      assert.equal(after.error, undefined);
      assert.equal(gpu.resets.length, 2);
      assert.match(gpu.resets[1]!.reason, /memory|exited/i);
    } finally {
      await gpu.destroy();
    }
  });

  it('resets beyond maxResets lose the device: every pending fence gets ENODEV and every call fails', async () => {
    const gpu = device({ engines: { compute: 1, copy: 1 }, maxResets: 1 });
    await gpu.registerKernels(TEST_KERNELS);
    const gate = mockFence();
    const fences = [
      gpu.submit('compute', 'die', { code: 1 }),
      gpu.submit('compute', 'die', { code: 2 }),
      gpu.submit('compute', 'noop'),
      gpu.submit('copy', 'spin', { ms: Number.MAX_SAFE_INTEGER }),
    ];
    const gated = gpu.submit('copy', 'noop', {}, { dependencies: [gate] });
    const settled = await Promise.allSettled(fences.map((f) => f.wait({ timeout: 30_000 })));
    assert.deepEqual(
      settled.map((s) => s.status === 'fulfilled' && s.value),
      [true, true, true, true],
      'every wait resolved',
    );
    assert.deepEqual(fences.map(codeOf), ['EIO', 'EIO', 'ENODEV', 'ENODEV']);
    assert.equal(gpu.lost, true);
    // A job still waiting for a dependency fails as soon as it signals (a dependency that
    // never signals is its owner's bug, as in the kernel).
    gate.signal();
    await gated.wait();
    assert.equal(codeOf(gated), 'ENODEV');
    assert.throws(() => gpu.submit('copy', 'noop'), isCode('ENODEV'));
    assert.throws(() => gpu.map(new SharedArrayBuffer(8)), /lost/);
    await assert.rejects(gpu.registerKernels(TEST_KERNELS), isCode('ENODEV'));
    await gpu.destroy();
    assert.equal(gpu.lost, true);
  });
});

describe('SoftDevice teardown', () => {
  it('destroy() waits for pending work, then every call fails with ENODEV; it is idempotent', async () => {
    const gpu = device({ engines: { copy: 1 } });
    const memory = gpu.map(new SharedArrayBuffer(1 << 16));
    const fences = Array.from({ length: 50 }, (_, i) => gpu.submit('copy', 'fill', { dst: memory, value: i }));
    const destroyed = gpu.destroy();
    assert.equal(gpu.destroy(), destroyed, 'a second destroy joins the first');
    await destroyed;
    assert.ok(
      fences.every((f) => f.signaledFlag && f.error === undefined),
      'all work finished',
    );
    assert.equal(new Uint8Array(memory.buffer)[0], 49);
    assert.throws(() => gpu.submit('copy', 'noop'), isCode('ENODEV'));
    assert.throws(() => gpu.map(new SharedArrayBuffer(8)), isCode('ENODEV'));
    assert.throws(() => gpu.submit('copy', 'fill', { dst: memory, value: 1 }), isCode('ENODEV'));
    assert.ok(
      gpu.engines.every((e) => e.stopped),
      'workers terminated',
    );
  });

  it(
    'destroy({ cancel: true }) ends work at once: ' + 'on the ring ECANCELED, queued ESRCH (as killed entities)',
    async () => {
      const gpu = device({ engines: { compute: 1 }, ringSize: 4 });
      await gpu.registerKernels(TEST_KERNELS);
      const gate = mockFence();
      const fences = [
        gpu.submit('compute', 'spin', { ms: Number.MAX_SAFE_INTEGER }),
        ...Array.from({ length: 10 }, () => gpu.submit('compute', 'noop')),
      ];
      const gated = gpu.submit('compute', 'noop', {}, { dependencies: [gate] });
      await until(() => gpu.engines[0]!.ring.running !== 0, 'the spin job to start');
      await gpu.destroy({ cancel: true });
      await Promise.all(fences.map((f) => f.wait()));
      assert.deepEqual(fences.map(codeOf), [...new Array(4).fill('ECANCELED'), ...new Array(7).fill('ESRCH')]);
      assert.equal(gated.signaledFlag, false, 'a killed job still waits for its dependencies, as in the kernel');
      gate.signal();
      await gated.wait();
      assert.equal(codeOf(gated), 'ESRCH');
    },
  );

  it('nothing keeps the process alive after destroy(), nor while the device is idle', () => {
    const script = `
      import { SoftDevice } from ${JSON.stringify(
        new URL('../../../src/device/soft/soft-device.ts', import.meta.url).href,
      )};
      import { nodeWorkerPlatform } from ${JSON.stringify(
        new URL('../../../src/device/soft/soft-worker-node.ts', import.meta.url).href,
      )};
      const idle = new SoftDevice({ platform: nodeWorkerPlatform, engines: { copy: 1 } });
      await idle.submit('copy', 'noop').wait();
      const gpu = new SoftDevice({ platform: nodeWorkerPlatform, engines: { copy: 1 } });
      const memory = gpu.map(new SharedArrayBuffer(1024));
      gpu.submit('copy', 'fill', { dst: memory, value: 1 });
      await gpu.destroy();
      console.log('done');
    `;
    const result = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.equal(result.signal, null, `the process was killed after 30 s: something kept it alive\n${result.stderr}`);
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stdout.trim(), 'done');
  });
});
