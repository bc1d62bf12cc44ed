/// <reference types="@webgpu/types" />
/**
 * webgpu-vram-mgr: VRAM as `GPUBuffer`s under a byte budget.
 *
 * Overview: WebGPU has no memory budget and no way to ask how much memory is left, so the
 * budget is the user's: {@link WebGpuVramManager} is the TTM resource manager of the VRAM
 * memory type, sized in bytes, and every resource it hands out is one `GPUBuffer` of exactly
 * the buffer object's size ({@link WebGpuVramResource.buffer}). When the budget is used up the
 * manager answers `'ENOSPC'`, and TTM evicts least recently used buffers until the new one fits.
 * Freeing a resource destroys its `GPUBuffer`; WebGPU keeps the memory until submitted work
 * that uses it is done, and TTM frees a resource only once its buffer is idle (or its contents
 * were copied out by a submission queued before anything that could reuse the budget).
 *
 * Why one `GPUBuffer` per resource and not ranges of a few large ones (the kernel's range
 * manager over one VRAM aperture): measured in `bench/webgpu-alloc.bench.ts` (`bench/RESULTS.md`),
 * a new buffer object costs the same either way (0.9-1.0x: a reused range must be cleared by a
 * GPU submission, a fresh `GPUBuffer` is zeroed lazily by WebGPU) and a restored one is faster
 * per object (1.1-1.4x). Large buffers would also commit the whole budget up front, cap a buffer
 * object at one of them (`maxStorageBufferBindingSize`, 128 MiB on SwiftShader), fragment, and
 * need every binding offset aligned to `minStorageBufferOffsetAlignment`. With a buffer per
 * object, memory really returns to the implementation when its buffer is destroyed, which is
 * what "really freed" means here.
 *
 * Recycling (option `recycle`, off by default; a `WebGpuDevice` turns it on): creating a
 * `GPUBuffer` is the expensive part of a move on SwiftShader (a new 4 MiB buffer written once and
 * destroyed: about 8 ms; the same write into a kept buffer: about 0.5 ms), and eviction followed
 * by restore frees and creates buffers of the same sizes over and over. With `recycle`, a freed
 * resource's buffer is kept, idle, and handed to the next resource of exactly its size
 * ({@link WebGpuVramResource.recycled}; its old bytes are still there: the mover overwrites or
 * clears it). Idle buffers count against the budget with the live ones: an allocation that
 * would push live + idle bytes over the budget destroys idle buffers first, so the `GPUBuffer`
 * memory this manager holds never exceeds the budget. A resource marked
 * {@link WebGpuVramResource.destroyOnFree} is destroyed, never kept; {@link WebGpuVramManager.trim}
 * destroys every idle buffer.
 *
 * Models `drivers/gpu/drm/amd/amdgpu/amdgpu_vram_mgr.c` (`amdgpu_vram_mgr_new()`,
 * `amdgpu_vram_mgr_del()`, its usage counters), with the memory itself allocated by the API.
 *
 * Contract:
 * - `usage` never exceeds `size` (the budget); a buffer object larger than the budget or than
 *   the device's `maxBufferSize` never fits ('ENOSPC' at every attempt).
 * - Each live resource owns one `GPUBuffer` of the owner's size with usage
 *   `STORAGE | COPY_SRC | COPY_DST`; {@link WebGpuVramManager.free} destroys it, or with
 *   `recycle` keeps it idle for the next resource of its size. Live plus idle bytes never exceed
 *   the budget.
 * - A `createBuffer` that WebGPU rejects later (out of memory) is reported to `onError` with the
 *   resource; submissions using that buffer then fail with an error on their fences.
 *
 * @example
 * ```ts
 * import { DmaResv, TtmLruList, TtmMemType } from 'dmabuf';
 * import { WebGpuVramManager, requestWebGpuDevice } from 'dmabuf/webgpu';
 * process.env.VK_ICD_FILENAMES ??= '/usr/lib/chromium/vk_swiftshader_icd.json';
 * const { device, release } = await requestWebGpuDevice();
 * const vram = new WebGpuVramManager({ unevictable: new TtmLruList() }, device, { size: 1 << 20 });
 * const bo = { size: 65536, priority: 0, pinCount: 0, bulkMove: null, resource: null, resv: new DmaResv() };
 * const res = vram.alloc(bo, { memType: TtmMemType.VRAM });
 * if (typeof res !== 'string') {
 *   console.log(res.buffer.size, vram.usage); // 65536 65536
 *   vram.free(res);
 * }
 * device.destroy();
 * release();
 * ```
 */

import { InvalidArgumentError, describeValue } from '../../base/errors.js';
import { PAGE_SIZE } from '../../heap/page-pool.js';
import {
  TtmResource,
  TtmResourceManager,
  ttmResourceFini,
  ttmResourceInit,
  type TtmLruHost,
  type TtmResourceOwner,
} from '../../ttm/ttm-resource.js';
import type { TtmPlace } from '../../ttm/ttm-placement.js';

/** `GPUBufferUsage` bits (the spec's values; the globals may be missing in Node). */
export const GpuBufferUsage = {
  MAP_READ: 0x1,
  MAP_WRITE: 0x2,
  COPY_SRC: 0x4,
  COPY_DST: 0x8,
  UNIFORM: 0x40,
  STORAGE: 0x80,
} as const;

/** `GPUMapMode` bits. */
export const GpuMapMode = { READ: 0x1, WRITE: 0x2 } as const;

/** What VRAM buffers are created with. */
export const VRAM_USAGE = GpuBufferUsage.STORAGE | GpuBufferUsage.COPY_SRC | GpuBufferUsage.COPY_DST;

/** A VRAM resource: one `GPUBuffer` holding the buffer object's bytes. */
export class WebGpuVramResource extends TtmResource {
  /** The storage; destroyed when the resource is freed. */
  readonly buffer: GPUBuffer;
  /** The buffer held another resource's bytes before (recycled): it is not zeroed. */
  readonly recycled: boolean;
  /** Set when WebGPU reported that creating the buffer failed (its contents are gone). */
  error: Error | null = null;
  /** Destroy the buffer when the resource is freed even when recycling (a "really freed" wait). */
  destroyOnFree = false;

  constructor(manager: WebGpuVramManager, buffer: GPUBuffer, recycled = false) {
    super(manager);
    this.buffer = buffer;
    this.recycled = recycled;
  }

  /** The whole buffer as a bind-group entry resource. */
  binding(): GPUBufferBinding {
    return { buffer: this.buffer, offset: 0, size: this.size };
  }
}

/** Options of a {@link WebGpuVramManager}. */
export interface WebGpuVramManagerOptions {
  /** The budget in bytes (a positive multiple of 4096). */
  readonly size: number;
  readonly name?: string;
  /** Called when WebGPU reports that creating a resource's buffer failed. */
  readonly onError?: (res: WebGpuVramResource, error: Error) => void;
  /** Keep freed buffers idle for the next resource of their size (default false; see above). */
  readonly recycle?: boolean;
}

/** Counters of a {@link WebGpuVramManager}. */
export interface WebGpuVramStats {
  /** `GPUBuffer`s created and destroyed so far. */
  readonly created: number;
  readonly destroyed: number;
  /** Bytes in live buffers (equals `usage`). */
  readonly liveBytes: number;
  /** The most bytes live at once. */
  readonly peakBytes: number;
  /** Resources given a recycled buffer, and bytes in idle buffers now. */
  readonly recycled: number;
  readonly idleBytes: number;
}

/**
 * The VRAM manager: a `GPUBuffer` per resource under a byte budget.
 * @see amdgpu_vram_mgr_new()
 */
export class WebGpuVramManager extends TtmResourceManager {
  readonly device: GPUDevice;
  readonly #onError: ((res: WebGpuVramResource, error: Error) => void) | undefined;
  readonly recycle: boolean;
  /** Idle buffers by size, oldest first in each list; Map order is the order sizes came in. */
  readonly #idle = new Map<number, GPUBuffer[]>();
  #idleBytes = 0;
  #recycled = 0;
  #created = 0;
  #destroyed = 0;
  #peak = 0;

  /** @throws {InvalidArgumentError} for a bad budget or device. */
  constructor(host: TtmLruHost, device: GPUDevice, options: WebGpuVramManagerOptions) {
    const size = options?.size;
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size <= 0 || size % PAGE_SIZE !== 0) {
      throw new InvalidArgumentError(
        `WebGpuVramManager: size (the VRAM budget) must be a positive multiple of ${PAGE_SIZE} bytes, ` +
          `got ${describeValue(size)}`,
      );
    }
    super(host, { size, useTt: false, name: options.name ?? 'webgpu-vram' });
    if (device === null || typeof device !== 'object' || typeof device.createBuffer !== 'function')
      throw new InvalidArgumentError(`WebGpuVramManager: device must be a GPUDevice, got ${describeValue(device)}`);
    this.device = device;
    this.#onError = options.onError;
    this.recycle = options.recycle ?? false;
  }

  /** The largest buffer WebGPU lets this device create. */
  get maxBufferSize(): number {
    return this.device.limits.maxBufferSize;
  }

  /** @see amdgpu_vram_mgr_new() */
  override alloc(bo: TtmResourceOwner, place: TtmPlace): WebGpuVramResource | 'ENOSPC' {
    const size = bo.size;
    if (this.usage + size > this.size || size > this.maxBufferSize) return 'ENOSPC';
    const idle = this.#idle.get(size)?.pop();
    if (idle !== undefined) {
      this.#idleBytes -= size;
      const res = new WebGpuVramResource(this, idle, true);
      ttmResourceInit(bo, place, res);
      this.#recycled++;
      if (this.usage > this.#peak) this.#peak = this.usage;
      return res;
    }
    // Live plus idle bytes stay within the budget: make room among the idle ones first.
    this.#shrinkIdle(this.size - this.usage - size);
    const label = (bo as { name?: unknown }).name;
    const device = this.device;
    device.pushErrorScope('out-of-memory');
    const buffer = device.createBuffer({
      size,
      usage: VRAM_USAGE,
      ...(typeof label === 'string' ? { label } : {}),
    });
    const res = new WebGpuVramResource(this, buffer);
    device.popErrorScope().then(
      (error) => {
        if (error !== null)
          this.#failed(res, new Error(`${this.name}: creating ${size} bytes failed: ${error.message}`));
      },
      () => {}, // popped on a lost device: the loss is reported on its own
    );
    ttmResourceInit(bo, place, res);
    this.#created++;
    if (this.usage > this.#peak) this.#peak = this.usage;
    return res;
  }

  /** Destroys the resource's buffer, or keeps it idle when recycling. @see amdgpu_vram_mgr_del() */
  override free(res: TtmResource): void {
    ttmResourceFini(this, res);
    if (!(res instanceof WebGpuVramResource)) return;
    const buffer = res.buffer;
    if (this.recycle && !res.destroyOnFree && res.error === null && buffer.size === res.size) {
      let list = this.#idle.get(buffer.size);
      if (list === undefined) this.#idle.set(buffer.size, (list = []));
      list.push(buffer);
      this.#idleBytes += buffer.size;
      return;
    }
    buffer.destroy();
    this.#destroyed++;
  }

  /** Destroys every idle buffer (their memory goes back to WebGPU). */
  trim(): void {
    this.#shrinkIdle(0);
  }

  stats(): WebGpuVramStats {
    return {
      created: this.#created,
      destroyed: this.#destroyed,
      liveBytes: this.usage,
      peakBytes: this.#peak,
      recycled: this.#recycled,
      idleBytes: this.#idleBytes,
    };
  }

  override debug(): string {
    return (
      `${super.debug()}, buffers ${this.#created - this.#destroyed} held ` +
      `(${this.#idleBytes} bytes idle), peak ${this.#peak}`
    );
  }

  /** Destroys idle buffers, oldest sizes first, until at most `maxIdle` bytes stay idle. */
  #shrinkIdle(maxIdle: number): void {
    for (const [size, list] of this.#idle) {
      while (this.#idleBytes > maxIdle && list.length > 0) {
        list.shift()!.destroy();
        this.#idleBytes -= size;
        this.#destroyed++;
      }
      if (list.length === 0) this.#idle.delete(size);
      if (this.#idleBytes <= maxIdle) return;
    }
  }

  #failed(res: WebGpuVramResource, error: Error): void {
    res.error = error;
    this.#onError?.(res, error);
  }
}
