import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DmaBufError, InvalidArgumentError } from '../../src/base/errors.js';
import { DmaFence, fenceContextAlloc } from '../../src/fence/dma-fence.js';
import { SyncFile } from '../../src/fence/sync-file.js';
import {
  ImportedFence,
  SharedFenceRegion,
  abandonSharedFenceRegion,
  exportFence,
  exportSyncFile,
  importFence,
  importSyncFile,
  sharedFenceRegionBytes,
  sharedFenceRegionLost,
  watchSharedFences,
  type SharedFenceDescriptor,
} from '../../src/fence/shared-fence.js';
import { mockFence, testSeed } from '../helpers/mock-fence.js';
import { signalInBatches, expectedErrors, type FenceOutcome } from '../helpers/shared-fence-plan.js';
import { WorkerPeer } from '../helpers/worker-peer.js';

const PEER = new URL('../helpers/fence-peer.worker.ts', import.meta.url);
const STRESS = 10_000;

function codeOf(fence: DmaFence): string {
  const error = fence.error;
  return error === undefined ? '' : error instanceof DmaBufError ? error.code : 'not a DmaBufError';
}

/** Compares what an importer saw with what the exporter did, fence by fence. */
function assertOutcomes(seen: readonly FenceOutcome[], expected: readonly FenceOutcome[], seed: number): void {
  assert.equal(seen.length, expected.length, `seed ${seed} (TEST_SEED=${seed} replays): fence count`);
  for (let i = 0; i < expected.length; i++) {
    const [code, ts] = seen[i]!;
    const [wantCode, wantTs] = expected[i]!;
    assert.equal(code, wantCode, `seed ${seed} (TEST_SEED=${seed} replays): errno of fence ${i}`);
    assert.ok(Math.abs(ts - wantTs) < 1e-6, `seed ${seed}: fence ${i} timestamp ${ts} crossed as ${wantTs}`);
  }
}

describe('shared fences (exportFence / importFence)', () => {
  it('sanity: an imported fence signals when the exported one does, with its error', async () => {
    const fence = mockFence();
    const imported = importFence(exportFence(fence));
    assert.equal(imported.isSignaled(), false);
    fence.setError('ETIMEDOUT');
    fence.signal();
    assert.equal(await imported.wait({ timeout: 1000 }), true);
    assert.equal(codeOf(imported), 'ETIMEDOUT');
  });

  it('a descriptor is a plain structured-cloneable object naming the fence', () => {
    const fence = new DmaFence({ getDriverName: () => 'gpu', getTimelineName: () => 'ring0' }, fenceContextAlloc(), 7);
    const descriptor = structuredClone(exportFence(fence));
    assert.equal(descriptor.type, 'dmabuf-shared-fence');
    assert.ok(descriptor.region instanceof SharedArrayBuffer, 'the region travels as shared memory');
    const imported = importFence(descriptor);
    assert.equal(imported.seqno, 7);
    assert.equal(imported.exportedContext, fence.context);
    assert.equal(imported.driverName, 'gpu');
    assert.equal(imported.timelineName, 'ring0');
    fence.signal();
    assert.equal(imported.isSignaled(), true, 'polling reads the slot without a wait');
    assert.equal(imported.driverName, 'detached-driver');
  });

  it('carries the exporter timestamp, and imports an already signaled fence as signaled', () => {
    const fence = mockFence();
    fence.setError('ECANCELED');
    fence.signal(1234.5);
    const imported = importFence(exportFence(fence));
    assert.equal(imported.signaledFlag, true);
    assert.equal(codeOf(imported), 'ECANCELED');
    assert.ok(Math.abs(imported.timestamp! - 1234.5) < 1e-6, `timestamp ${imported.timestamp}`);
  });

  it('an error that is not a DmaBufError crosses as EIO', async () => {
    const fence = mockFence();
    const imported = importFence(exportFence(fence));
    fence.setError(new TypeError('kernel blew up'));
    fence.signal();
    await imported.wait();
    assert.equal(codeOf(imported), 'EIO');
  });

  it('imports of one exporter context share a local context, so ordering still works', () => {
    const context = fenceContextAlloc();
    const [a, b] = [mockFence(context, 1), mockFence(context, 2)];
    const other = mockFence();
    const [ia, ib, io] = [a, b, other].map((f) => importFence(exportFence(f)));
    assert.equal(ia!.context, ib!.context);
    assert.notEqual(ia!.context, io!.context);
    assert.equal(DmaFence.isLater(ib!, ia!), true);
  });

  it('each import uses one right: a second import is EBADF unless exported for more importers', () => {
    const fence = mockFence();
    const once = exportFence(fence);
    importFence(once);
    assert.throws(
      () => importFence(once),
      (err: unknown) => err instanceof DmaBufError && err.code === 'EBADF',
    );
    const twice = exportFence(fence, { importers: 2 });
    const [x, y] = [importFence(twice), importFence(twice)];
    fence.signal();
    assert.ok(x.isSignaled() && y.isSignaled(), 'both imports signal');
    assert.throws(() => exportFence(fence, { importers: -1 }), InvalidArgumentError);
    const published = exportFence(mockFence(), { importers: 0 });
    assert.throws(
      () => importFence(published),
      (err: unknown) => err instanceof DmaBufError && err.code === 'EBADF',
    );
  });

  it('two imports of one descriptor in one thread are both woken', async () => {
    const fence = mockFence();
    const d = exportFence(fence, { importers: 2 });
    const both = [importFence(d), importFence(d)];
    const waits = both.map((f) => f.wait());
    setTimeout(() => fence.signal(), 1);
    assert.deepEqual(await Promise.all(waits), [true, true]);
  });

  it('a region reuses a slot once exporter and importers are done, and a stale descriptor is EBADF', async () => {
    const region = new SharedFenceRegion({ slots: 1 });
    const first = mockFence();
    const d1 = exportFence(first, { region });
    assert.throws(
      () => exportFence(mockFence(), { region }),
      (err: unknown) => err instanceof DmaBufError && err.code === 'ENOSPC',
    );
    const imported = importFence(d1);
    first.signal();
    await imported.wait();
    const d2 = exportFence(mockFence(), { region });
    assert.equal(d2.slot, d1.slot);
    assert.notEqual(d2.generation, d1.generation);
    assert.throws(
      () => importFence(d1),
      (err: unknown) => err instanceof DmaBufError && err.code === 'EBADF',
    );
    assert.equal(region.pendingExports, 1);
  });

  it('rejects what is not a descriptor or a region', () => {
    assert.throws(() => importFence({} as SharedFenceDescriptor), InvalidArgumentError);
    const d = exportFence(mockFence());
    assert.throws(() => importFence({ ...d, region: new SharedArrayBuffer(64) }), /not a SharedFenceRegion/);
    assert.throws(() => importFence({ ...d, slot: 1 << 30 }), /outside/);
    assert.throws(() => exportFence('fence' as unknown as DmaFence), InvalidArgumentError);
    assert.throws(() => abandonSharedFenceRegion(new SharedArrayBuffer(8)), InvalidArgumentError);
    assert.throws(() => new SharedFenceRegion({ slots: 0 }), InvalidArgumentError);
  });

  it('an abandoned region signals every pending import with the error, once', async () => {
    const region = new SharedFenceRegion({ slots: 8 });
    const pending = mockFence();
    const done = mockFence();
    done.signal();
    const [ip, id] = [pending, done].map((f) => importFence(exportFence(f, { region })));
    const waited = ip!.wait();
    assert.equal(abandonSharedFenceRegion(region.buffer, 'ENODEV'), true);
    assert.equal(abandonSharedFenceRegion(region.buffer, 'EIO'), false, 'the first code stays');
    assert.equal(await waited, true);
    assert.equal(codeOf(ip!), 'ENODEV');
    assert.equal(codeOf(id!), '', 'a fence signalled before the loss keeps its own outcome');
    assert.equal(sharedFenceRegionLost(region.buffer), 'ENODEV');
    assert.throws(
      () => exportFence(mockFence(), { region }),
      (err: unknown) => err instanceof DmaBufError && err.code === 'ENODEV',
    );
  });

  it('a timed-out wait on an imported fence leaves it usable', async () => {
    const fence = mockFence();
    const imported = importFence(exportFence(fence));
    assert.equal(await imported.wait({ timeout: 0 }), false);
    assert.equal(await imported.wait({ timeout: 1 }), false);
    fence.signal();
    assert.equal(await imported.wait({ timeout: 1000 }), true);
    assert.ok(imported instanceof ImportedFence);
  });

  it('regions share one buffer; watchers see the pending fences of a region by tag without import rights', async () => {
    const bytes = sharedFenceRegionBytes(4);
    const buffer = new SharedArrayBuffer(2 * bytes);
    const first = new SharedFenceRegion({ slots: 4, buffer });
    const second = new SharedFenceRegion({ slots: 4, buffer, byteOffset: bytes });
    assert.notEqual(first.id, second.id);
    assert.throws(() => new SharedFenceRegion({ slots: 4, buffer }), /already holds a region/);
    assert.throws(() => new SharedFenceRegion({ slots: 4, buffer, byteOffset: 4 }), InvalidArgumentError);
    const [write, read, done] = [mockFence(), mockFence(), mockFence()];
    done.signal();
    exportFence(write, { region: second, importers: 0, tag: 1 });
    exportFence(read, { region: second, importers: 0, tag: 2 });
    exportFence(done, { region: second, importers: 0, tag: 1 });
    const writes = watchSharedFences(buffer, bytes, (tag) => tag === 1);
    assert.equal(writes.length, 1, 'only the pending fence with tag 1');
    assert.equal(watchSharedFences(buffer, bytes, () => true).length, 2);
    assert.equal(watchSharedFences(buffer, 0, () => true).length, 0, 'the other region is empty');
    const [w] = writes;
    assert.notEqual(w!.context, watchSharedFences(buffer, bytes, () => true)[0]!.context, 'a context each');
    write.setError('EIO');
    write.signal();
    assert.equal(await w!.wait({ timeout: 1000 }), true);
    assert.equal(codeOf(w!), 'EIO');
    // A watcher whose slot was reused meanwhile counts it as signalled.
    const late = watchSharedFences(buffer, bytes, (tag) => tag === 2)[0]!;
    read.signal();
    await Promise.resolve();
    for (let i = 0; i < 4; i++) exportFence(mockFence(), { region: second, importers: 0 });
    assert.equal(await late.wait({ timeout: 1000 }), true);
  });

  it('a sync file crosses with its name', async () => {
    const fence = mockFence();
    using file = new SyncFile(fence, 'frame-42');
    using imported = importSyncFile(exportSyncFile(file));
    assert.equal(imported.name, 'frame-42');
    fence.signal();
    assert.equal(await imported.wait({ timeout: 1000 }), true);
  });
});

describe('shared fences across real worker threads', () => {
  it(`main -> worker: ${STRESS} fences, seeded batches and errors`, async () => {
    const seed = testSeed();
    await using peer = WorkerPeer.start(PEER);
    const context = fenceContextAlloc(16);
    const fences = Array.from({ length: STRESS }, (_, i) => mockFence(context + (i % 16), 1 + (i >> 4)));
    const descriptors = fences.map((f) => exportFence(f));
    assert.equal(await peer.request('import', { descriptors }), STRESS);
    const expected = await signalInBatches(fences, seed);
    assertOutcomes(await peer.request<FenceOutcome[]>('collect'), expected, seed);
  });

  it(`worker -> main: ${STRESS} fences, seeded batches and errors`, async () => {
    const seed = testSeed();
    await using peer = WorkerPeer.start(PEER);
    const descriptors = await peer.request<SharedFenceDescriptor[]>('export', { count: STRESS, contexts: 8 });
    const imported = descriptors.map((d) => importFence(d));
    const calls = new Array<number>(STRESS).fill(0);
    for (const [i, f] of imported.entries()) f.addCallback(() => calls[i]!++);
    const expected = await peer.request<FenceOutcome[]>('signal', { seed });
    await Promise.all(imported.map((f) => f.wait()));
    assert.ok(
      calls.every((n) => n === 1),
      `seed ${seed}: every callback ran once`,
    );
    assertOutcomes(
      imported.map((f) => [codeOf(f) as FenceOutcome[0], f.timestamp! + performance.timeOrigin]),
      expected,
      seed,
    );
    assert.deepEqual(
      imported.map((f) => codeOf(f)),
      expectedErrors(STRESS, seed),
    );
  });

  it(`worker -> worker: ${STRESS} fences; the main thread only relays descriptors`, async () => {
    const seed = testSeed();
    await using producer = WorkerPeer.start(PEER);
    await using consumer = WorkerPeer.start(PEER);
    const descriptors = await producer.request<SharedFenceDescriptor[]>('export', { count: STRESS, contexts: 3 });
    assert.equal(await consumer.request('import', { descriptors }), STRESS);
    const expected = await producer.request<FenceOutcome[]>('signal', { seed });
    assertOutcomes(await consumer.request<FenceOutcome[]>('collect'), expected, seed);
  });

  it('a dead exporter: abandoning its region settles every pending import with ENODEV', async () => {
    await using peer = WorkerPeer.start(PEER);
    const descriptors = await peer.request<SharedFenceDescriptor[]>('export', { count: 100, contexts: 1 });
    const imported = descriptors.map((d) => importFence(d));
    const waits = Promise.all(imported.map((f) => f.wait()));
    await peer.request('exit', { code: 3 }).catch(() => {});
    await peer.nextEvent((e): e is never => false).catch(() => {});
    assert.match(String(peer.exitReason), /code 3/);
    abandonSharedFenceRegion(descriptors[0]!.region, 'ENODEV');
    await waits;
    assert.ok(
      imported.every((f) => codeOf(f) === 'ENODEV'),
      'every pending fence failed with ENODEV',
    );
  });
});
