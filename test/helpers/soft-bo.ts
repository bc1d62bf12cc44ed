/** Test helper: a buffer object's bytes, with the lock held, once its moves and jobs are done. */
import type { TtmBufferObject } from '../../src/ttm/ttm-bo.js';

export async function withBytes<T>(bo: TtmBufferObject, fn: (bytes: Uint8Array) => T): Promise<T> {
  await bo.reserve();
  try {
    await bo.waitIdle();
    return fn(bo.kmap());
  } finally {
    bo.unreserve();
  }
}
