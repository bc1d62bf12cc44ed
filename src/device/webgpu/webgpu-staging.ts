/// <reference types="@webgpu/types" />
/**
 * webgpu-staging: moving bytes between `GPUBuffer`s and system memory.
 *
 * Overview: WebGPU never lets the CPU touch a storage buffer. Bytes come out through a mappable
 * staging buffer: `copyBufferToBuffer` into it on the ring (so the copy is ordered after every
 * submission before it), `mapAsync` for reading, a copy out of the mapped range, `unmap`
 * ({@link WebGpuStaging.download}). Bytes go in with `queue.writeBuffer`, which takes a
 * snapshot of them at the call and lands before any later submission
 * ({@link WebGpuStaging.upload}). Mappable buffers are kept in a small pool keyed by size, so
 * evicting and restoring buffers of the same sizes over and over creates none.
 *
 * Models the CPU-access half of `drivers/gpu/drm/amd/amdgpu/amdgpu_ttm.c`
 * (`amdgpu_ttm_access_memory()` through a GTT bounce buffer); the pool is the part of
 * `ttm_pool.c` that keeps pages of a kind for reuse.
 *
 * Contract:
 * - Offsets and sizes are multiples of 4 bytes (WebGPU's copy alignment).
 * - A download resolves only once both the copy's fence and the mapping are done, and rejects
 *   with the fence's error (a rejected copy, a lost device) instead of returning stale bytes.
 * - An upload from a view over a `SharedArrayBuffer` is copied into a plain `ArrayBuffer`
 *   first: Dawn's Node bindings crash the process on a shared source (measured with webgpu
 *   0.6.2).
 * - Pooled bytes never exceed `maxPooledBytes`; {@link WebGpuStaging.trim} destroys them all.
 *
 * @example
 * ```ts
 * import { WebGpuRing, WebGpuStaging, requestWebGpuDevice } from 'dmabuf/webgpu';
 * process.env.VK_ICD_FILENAMES ??= '/usr/lib/chromium/vk_swiftshader_icd.json';
 * const { device, release } = await requestWebGpuDevice();
 * const staging = new WebGpuStaging(new WebGpuRing(device));
 * const buffer = device.createBuffer({ size: 16, usage: 0x80 | 0x4 | 0x8 });
 * staging.upload(buffer, 0, new Uint8Array(16).fill(5));
 * const out = new Uint8Array(16);
 * await staging.download(buffer, 0, out);
 * console.log(out[15]); // 5
 * device.destroy();
 * release();
 * ```
 */

import { DmaBufError, InvalidArgumentError, describeValue } from '../../base/errors.js';
import type { WebGpuRing } from './webgpu-ring.js';
import { GpuBufferUsage, GpuMapMode } from './webgpu-vram-mgr.js';

/** Options of a {@link WebGpuStaging}. */
export interface WebGpuStagingOptions {
  /** Bytes of idle mappable buffers kept for reuse (default 32 MiB). */
  readonly maxPooledBytes?: number;
}

/** Counters of a {@link WebGpuStaging}. */
export interface WebGpuStagingStats {
  readonly downloads: number;
  readonly uploads: number;
  readonly bytesDown: number;
  readonly bytesUp: number;
  /** Staging buffers created (pool misses) and reused (hits). */
  readonly created: number;
  readonly reused: number;
  readonly pooledBytes: number;
}

function checkAligned(what: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0 || value % 4 !== 0)
    throw new InvalidArgumentError(
      `WebGpuStaging: ${what} must be a non-negative multiple of 4, got ${describeValue(value)}`,
    );
}

/** Staging transfers on one ring. @see amdgpu_ttm_access_memory() */
export class WebGpuStaging {
  readonly ring: WebGpuRing;
  readonly maxPooledBytes: number;
  readonly #pool = new Map<number, GPUBuffer[]>();
  #pooledBytes = 0;
  #downloads = 0;
  #uploads = 0;
  #bytesDown = 0;
  #bytesUp = 0;
  #created = 0;
  #reused = 0;

  constructor(ring: WebGpuRing, options: WebGpuStagingOptions = {}) {
    const max = options.maxPooledBytes ?? 32 << 20;
    if (!Number.isSafeInteger(max) || max < 0)
      throw new InvalidArgumentError(
        `WebGpuStaging: maxPooledBytes must be a non-negative integer, got ${describeValue(max)}`,
      );
    this.ring = ring;
    this.maxPooledBytes = max;
  }

  /**
   * Copies `dst.byteLength` bytes of `src` from `srcOffset` into `dst`, after every submission
   * queued on the ring so far. Rejects with the copy fence's error, or ENODEV when the mapping
   * was aborted by a device loss.
   */
  async download(src: GPUBuffer, srcOffset: number, dst: Uint8Array): Promise<void> {
    const size = dst.byteLength;
    checkAligned('srcOffset', srcOffset);
    checkAligned('size', size);
    if (size === 0) return;
    const device = this.ring.device;
    const staging = this.#acquire(size);
    let pooled = false;
    try {
      const encoder = device.createCommandEncoder();
      encoder.copyBufferToBuffer(src, srcOffset, staging, 0, size);
      const fence = this.ring.submit([encoder.finish()]);
      const mapped = staging.mapAsync(GpuMapMode.READ, 0, size);
      const [mapError] = await Promise.all([
        mapped.then(
          () => null,
          (error: unknown) => error,
        ),
        fence.wait(),
      ]);
      if (fence.error !== undefined) throw fence.error;
      if (mapError !== null) {
        throw (
          this.ring.deadError ??
          new DmaBufError('EIO', `${this.ring.name}: mapping a staging buffer failed`, { cause: mapError })
        );
      }
      dst.set(new Uint8Array(staging.getMappedRange(0, size)));
      staging.unmap();
      pooled = this.#release(staging);
      this.#downloads++;
      this.#bytesDown += size;
    } finally {
      if (!pooled) staging.destroy();
    }
  }

  /**
   * Writes `src` into `dst` at `dstOffset`; lands before any later submission on the queue.
   * @throws the ring's loss error after a device loss.
   */
  upload(dst: GPUBuffer, dstOffset: number, src: Uint8Array): void {
    checkAligned('dstOffset', dstOffset);
    checkAligned('size', src.byteLength);
    if (this.ring.deadError !== null) throw this.ring.deadError;
    // Dawn (webgpu 0.6.2) segfaults on a view over a SharedArrayBuffer: bounce those.
    const data = src.buffer instanceof ArrayBuffer ? src : new Uint8Array(src);
    this.ring.device.queue.writeBuffer(dst, dstOffset, data.buffer, data.byteOffset, data.byteLength);
    this.#uploads++;
    this.#bytesUp += src.byteLength;
  }

  /** Destroys every pooled staging buffer. */
  trim(): void {
    for (const list of this.#pool.values()) for (const buffer of list) buffer.destroy();
    this.#pool.clear();
    this.#pooledBytes = 0;
  }

  stats(): WebGpuStagingStats {
    return {
      downloads: this.#downloads,
      uploads: this.#uploads,
      bytesDown: this.#bytesDown,
      bytesUp: this.#bytesUp,
      created: this.#created,
      reused: this.#reused,
      pooledBytes: this.#pooledBytes,
    };
  }

  #acquire(size: number): GPUBuffer {
    const list = this.#pool.get(size);
    const pooled = list?.pop();
    if (pooled !== undefined) {
      this.#pooledBytes -= size;
      this.#reused++;
      return pooled;
    }
    this.#created++;
    return this.ring.device.createBuffer({
      size,
      usage: GpuBufferUsage.MAP_READ | GpuBufferUsage.COPY_DST,
      label: `${this.ring.name} staging`,
    });
  }

  /** @returns whether the buffer went back to the pool (else the caller destroys it). */
  #release(buffer: GPUBuffer): boolean {
    const size = buffer.size;
    if (this.#pooledBytes + size > this.maxPooledBytes || this.ring.deadError !== null) return false;
    let list = this.#pool.get(size);
    if (list === undefined) this.#pool.set(size, (list = []));
    list.push(buffer);
    this.#pooledBytes += size;
    return true;
  }
}
