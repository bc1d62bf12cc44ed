/**
 * The KUnit suite `ttm_pool_test.c`, ported to where TTM pages come from in this design: a
 * buffer object's System/TT pages are one {@link DmaBuf} from `device.heap`, a {@link DmaHeap}
 * whose {@link PagePool} keeps zeroed buffers by order (0..8, 4 KiB .. 1 MiB).
 *
 * Mapping: the kernel allocates a tt of `1 << order` pages with `ttm_pool_alloc()`; here a
 * buffer of that size is validated into TT (which populates its tt) and `tt.buf` is checked.
 * `ttm_pool_free()` is the buffer's release (the heap frees late: `heap.drain()` waits for the
 * zeroing and pooling). The pool's "order lists" are read through heap statistics
 * (`pooledBytes`, hits, misses): with buffers of known sizes, a pooled byte count says which
 * classes are non-empty. Caching types (cached / uncached) map to the pool's two kinds of
 * memory (plain ArrayBuffer / SharedArrayBuffer), which the page-pool docs name as their
 * stand-in. Dropped: the DMA-alloc parameters and ttm_pool_alloc_basic_dma_addr (no DMA API or
 * DMA addresses), and the page `private` order tags (a buffer is one block here).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { DmaHeap } from '../../src/heap/dma-heap.js';
import { PAGE_SIZE } from '../../src/heap/page-pool.js';
import { TtmBufferObject } from '../../src/ttm/ttm-bo.js';
import { TtmDevice } from '../../src/ttm/ttm-device.js';
import { TtmMemType } from '../../src/ttm/ttm-placement.js';
import { fillRandom, placement } from '../helpers/ttm-kunit.js';

const MAX_PAGE_ORDER = 8; // the heap's largest size class: 1 MiB
const TT = placement(TtmMemType.TT);

/** A device whose TT pages come from `heap` (its own heap when omitted). */
function poolDevice(heap?: DmaHeap): TtmDevice {
  return new TtmDevice({ name: 'ttm-pool', ttBytes: 16 << 20, ...(heap ? { heap } : {}) });
}

/** `ttm_pool_alloc()` of `1 << order` pages: a TT buffer of that size, populated. */
async function allocOrder(device: TtmDevice, order: number): Promise<TtmBufferObject> {
  const bo = await TtmBufferObject.initValidate(device, { size: PAGE_SIZE << order, placement: TT });
  assert.ok(bo.tt?.populated, 'validated into TT: pages attached');
  return bo;
}

/** `ttm_pool_free()`: release the buffer, then let the heap zero and pool the pages. */
async function free(bo: TtmBufferObject): Promise<void> {
  const heap = bo.device.heap;
  bo.put();
  await heap.drain();
}

describe('ttm_pool', () => {
  for (const params of [
    { description: 'One page', order: 0 },
    { description: 'More than one page', order: 2 },
    { description: 'Above the allocation limit', order: MAX_PAGE_ORDER + 1 },
  ]) {
    it(`ttm_pool_alloc_basic (${params.description})`, async () => {
      await using device = poolDevice();
      const before = device.heap.stats();
      const bo = await allocOrder(device, params.order);
      const buf = bo.tt!.buf!;
      assert.equal(buf.size, PAGE_SIZE << params.order, 'num_pages == 1 << order');
      assert.equal(buf.heap, device.heap, 'from the device heap');
      const after = device.heap.stats();
      assert.equal(after.allocations - before.allocations, 1, 'one block');
      assert.equal(after.liveBytes - before.liveBytes, PAGE_SIZE << params.order);
      await free(bo);
      const pooled = device.heap.stats().pooledBytes;
      if (params.order <= MAX_PAGE_ORDER) assert.equal(pooled, PAGE_SIZE << params.order, 'freed pages are pooled');
      else assert.equal(pooled, 0, 'above the largest order nothing is pooled');
    });
  }

  it('ttm_pool_alloc_order_caching_match', async () => {
    await using device = poolDevice();
    await free(await allocOrder(device, 0)); // pre-populate the order-0 pool
    assert.equal(device.heap.stats().pooledBytes, PAGE_SIZE);
    const hits = device.heap.stats().hits;
    const bo = await allocOrder(device, 0);
    assert.equal(device.heap.stats().hits, hits + 1, 'taken from the pool');
    assert.equal(device.heap.stats().pooledBytes, 0, 'the pool is empty after an equal allocation');
    bo.put();
  });

  it('ttm_pool_alloc_caching_mismatch', async () => {
    await using heap = new DmaHeap({ name: 'shared-default', shared: true });
    heap.allocate(PAGE_SIZE, { shared: false }).put(); // "cached" pages in the pool
    await heap.drain();
    assert.equal(heap.stats().pooledBytes, PAGE_SIZE);
    const device = poolDevice(heap);
    const misses = heap.stats().misses;
    const bo = await allocOrder(device, 0);
    assert.equal(heap.stats().misses, misses + 1, 'the other kind is not used: allocated fresh');
    assert.equal(heap.stats().pooledBytes, PAGE_SIZE, 'the other pool is untouched');
    await free(bo);
    assert.equal(heap.stats().pooledBytes, 2 * PAGE_SIZE, 'both pool types are non-empty');
    await device.fini();
  });

  it('ttm_pool_alloc_order_mismatch', async () => {
    await using device = poolDevice();
    await free(await allocOrder(device, 2)); // order-2 pages in the pool
    const misses = device.heap.stats().misses;
    const bo = await allocOrder(device, 0);
    assert.equal(device.heap.stats().misses, misses + 1, 'order 0 does not take an order-2 block');
    assert.equal(device.heap.stats().pooledBytes, 4 * PAGE_SIZE);
    await free(bo);
    assert.equal(device.heap.stats().pooledBytes, 5 * PAGE_SIZE, 'both order pools are non-empty');
  });

  it('ttm_pool_free_dma_alloc', async () => {
    await using device = poolDevice();
    const bo = await allocOrder(device, 2);
    assert.equal(device.heap.stats().pooledBytes, 0, 'the order-2 pool is empty after the allocation');
    await free(bo);
    assert.equal(device.heap.stats().pooledBytes, 4 * PAGE_SIZE, 'and holds the block after the free');
  });

  it('ttm_pool_free_no_dma_alloc', async () => {
    await using device = poolDevice();
    await free(await allocOrder(device, 2));
    assert.equal(device.heap.stats().pooledBytes, 4 * PAGE_SIZE, 'one order-2 block pooled');
    const bo = await allocOrder(device, 2);
    await free(bo);
    assert.equal(device.heap.stats().pooledBytes, 4 * PAGE_SIZE, 'still exactly one block after alloc + free');
    assert.equal(device.heap.stats().misses, 1, 'the second allocation reused it');
  });

  it('ttm_pool_fini_basic', async () => {
    const device = poolDevice();
    const heap = device.heap;
    await free(await allocOrder(device, 0));
    assert.ok(heap.stats().pooledBytes > 0, 'pre-populated');
    await device.fini();
    assert.equal(heap.stats().pooledBytes, 0, 'the pool is empty after fini');
  });

  it('pooled pages are cleared before reuse: a recycled block reads as zeros', async () => {
    await using device = poolDevice();
    const first = await allocOrder(device, 1);
    await first.reserve();
    fillRandom(first.kmap(), 1234);
    first.unreserve();
    const memory = first.tt!.buf!.buffer;
    await free(first);
    const second = await allocOrder(device, 1);
    // The same block came back, in a new ArrayBuffer object: the old one was detached (issue 10).
    assert.equal(memory.byteLength, 0, "the first owner's ArrayBuffer no longer reaches the block");
    assert.equal(device.heap.stats().hits > 0, true, 'the block came back from the pool');
    await second.reserve();
    assert.ok(
      second.kmap().every((b) => b === 0),
      'with no trace of the previous owner',
    );
    second.unreserve();
    second.put();
  });

  it('a System buffer gets its pages from the heap only when first mapped', async () => {
    await using device = poolDevice();
    const bo = await TtmBufferObject.initValidate(device, {
      size: 3 * PAGE_SIZE,
      placement: placement(TtmMemType.System),
    });
    assert.equal(bo.tt?.populated, false);
    assert.equal(device.heap.liveBuffers, 0);
    await bo.reserve();
    assert.equal(bo.kmap().byteLength, 3 * PAGE_SIZE);
    bo.unreserve();
    assert.equal(device.heap.liveBuffers, 1);
    await free(bo);
    assert.equal(device.heap.liveBuffers, 0);
  });
});
