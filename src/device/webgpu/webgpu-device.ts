/// <reference types="@webgpu/types" />
/**
 * webgpu-device: dmabuf's buffer management and synchronisation over a real `GPUDevice`.
 *
 * Overview: a {@link WebGpuDevice} puts a TTM device on top of a WebGPU device. Its VRAM memory
 * type is a {@link WebGpuVramManager}: a `GPUBuffer` per buffer object under a byte budget the
 * user sets (WebGPU has no budget query); System pages come from the TTM device's heap. Buffer
 * objects ({@link TtmBufferObject}) are created, validated, evicted under the budget (bytes
 * copied out through a staging buffer and back with `writeBuffer`), pinned and released exactly
 * as on any TTM device. The queue is a {@link WebGpuRing}: every submission is a hardware fence
 * with the next seqno on the ring's context, signalled when `onSubmittedWorkDone()` resolves.
 * {@link WebGpuDevice.submit} is the implicit-sync command submission: a job on the queue's
 * {@link DrmGpuScheduler} (`webgpu-sched.ts`), whose `finished` fence follows the hardware fence.
 * {@link WebGpuDevice.read} and {@link WebGpuDevice.write} move bytes between a buffer object and
 * JavaScript. A buffer object put while work still uses it is freed once its fences signalled
 * (TTM's delayed delete); {@link WebGpuDevice.free} puts it and resolves when its `GPUBuffer`
 * and pages are really gone, which JavaScript GPU runtimes cannot tell their users. Other
 * freed VRAM buffers are kept idle within the budget and reused for the next buffer object of
 * their size (`recycleBuffers`, on by default: creating a `GPUBuffer` dominates an eviction and
 * restore round trip), and destroyed when the budget needs the room, on `destroy()` or on loss.
 *
 * Device loss (`device.lost`, a `destroy()`, a driver crash): every pending fence (hardware
 * fences and the jobs' `finished` fences) signals with a `DmaBufError('ENODEV')`, later
 * submissions, reads, writes and moves reject with it, and teardown still completes. Errors
 * WebGPU raises outside dmabuf's error scopes (the user's own calls on the `GPUDevice`) are
 * collected in {@link WebGpuDevice.errors}; a command buffer that such an error made invalid
 * fails its submission, whose fence gets the error.
 *
 * Models the device half of `drivers/gpu/drm/amd/amdgpu/amdgpu_device.c` (init: TTM device,
 * VRAM manager, rings; `amdgpu_device_fini`; the unplug path that forces fence completion).
 *
 * Contract:
 * - `budgetBytes` is never exceeded by VRAM buffer objects; a buffer larger than it cannot be
 *   placed in VRAM (`DmaBufError('ENOMEM')` saying it never fits), and nothing else moves.
 * - A buffer object of another device is an {@link InvalidArgumentError} at every entry point.
 * - Every promise settles, on a lost device too. {@link WebGpuDevice.destroy} (and
 *   `await using`) waits for delayed deletes, tears TTM down, and destroys the `GPUDevice` when
 *   this object requested it (a device passed in belongs to the caller). Idempotent.
 * - `kmap()` works for buffer objects in System; VRAM bytes are reached with `read`/`write`.
 *
 * @example
 * ```ts
 * import { WebGpuDevice } from 'dmabuf/webgpu';
 * process.env.VK_ICD_FILENAMES ??= '/usr/lib/chromium/vk_swiftshader_icd.json';
 * await using gpu = await WebGpuDevice.create({ budgetBytes: 1 << 20 });
 * const x = await gpu.createBuffer({ size: 16, name: 'x' });
 * const y = await gpu.createBuffer({ size: 16, name: 'y' });
 * await gpu.write(x, new Float32Array([1, 2, 3, 4]));
 * await gpu.write(y, new Float32Array([1, 1, 1, 1]));
 * await gpu.submit([{ bo: x }, { bo: y, write: true }], (encoder, binding) =>
 *   gpu.kernels.saxpy(encoder, { a: 2, x: binding(x), y: binding(y), n: 4 }),
 * );
 * console.log(new Float32Array((await gpu.read(y)).buffer).slice(0, 4)); // 3, 5, 7, 9
 * x.put();
 * y.put();
 * ```
 */

import { DmaBufError, InvalidArgumentError, describeValue } from '../../base/errors.js';
import type { DmaFence } from '../../fence/dma-fence.js';
import { DmaResvUsage } from '../../resv/dma-resv.js';
import { TtmBufferObject } from '../../ttm/ttm-bo.js';
import { TtmOperationCtx } from '../../ttm/ttm-placement.js';
import type { TtmDelayedDeleteMode } from '../../ttm/ttm-bo-delayed-delete.js';
import { TtmDevice } from '../../ttm/ttm-device.js';
import { TtmMemType, type TtmPlacement } from '../../ttm/ttm-placement.js';
import { DrmSchedEntity } from '../../sched/sched-entity.js';
import type { DrmGpuScheduler } from '../../sched/sched-main.js';
import { requestWebGpuDevice, type WebGpuHandle, type WebGpuRequestOptions } from './webgpu-adapter.js';
import { WebGpuKernels } from './webgpu-compute.js';
import { webGpuCs, type WebGpuCsBuffer, type WebGpuCsOptions, type WebGpuEncode } from './webgpu-cs.js';
import { WebGpuRing } from './webgpu-ring.js';
import { createWebGpuScheduler, type WebGpuJob } from './webgpu-sched.js';
import { WebGpuStaging } from './webgpu-staging.js';
import { webGpuTtmFuncs } from './webgpu-ttm.js';
import { WebGpuVramManager, WebGpuVramResource } from './webgpu-vram-mgr.js';

/** Options of {@link WebGpuDevice.create}. */
export interface WebGpuDeviceOptions {
  /** The VRAM budget in bytes (a positive multiple of 4096). */
  readonly budgetBytes: number;
  /** Use this `GPUDevice` (its owner keeps it and its GPU alive) instead of requesting one. */
  readonly device?: GPUDevice;
  /** How to request a device when none is given. */
  readonly request?: WebGpuRequestOptions;
  readonly name?: string;
  /** Budget of System memory (evicted buffers) in bytes; unlimited by default. */
  readonly systemBytes?: number;
  /** Bytes of idle staging buffers kept for reuse (default 32 MiB). */
  readonly stagingBytes?: number;
  /** How busy released buffers are freed (TTM's delayed delete; default 'per-object'). */
  readonly delayedDelete?: TtmDelayedDeleteMode;
  /** Keep TTM warnings without printing them. */
  readonly quiet?: boolean;
  /** Per-submission error scopes (default true; see `WebGpuRingOptions.errorScopes`). */
  readonly errorScopes?: boolean;
  /**
   * Keep freed VRAM `GPUBuffer`s idle (within the budget) for the next buffer object of their
   * size (default true; see `WebGpuVramManagerOptions.recycle`). {@link WebGpuDevice.free}
   * always destroys its buffer.
   */
  readonly recycleBuffers?: boolean;
}

/** What {@link WebGpuDevice.createBuffer} takes. */
export interface WebGpuBufferInit {
  /** Bytes (rounded up to 4096). */
  readonly size: number;
  readonly name?: string;
  /** 0..3; lower priorities are evicted first. */
  readonly priority?: number;
  /** Where to place it first (default: VRAM). */
  readonly placement?: TtmPlacement;
}

/** Why and when the device was lost. */
export interface WebGpuLoss {
  /** WebGPU's reason: `'destroyed'` or `'unknown'`. */
  readonly reason: string;
  readonly message: string;
  /** The error pending fences were signalled with. */
  readonly error: DmaBufError;
}

const OPTION_KEYS = new Set([
  'budgetBytes',
  'device',
  'request',
  'name',
  'systemBytes',
  'stagingBytes',
  'delayedDelete',
  'quiet',
  'errorScopes',
  'recycleBuffers',
]);

let nextId = 1;

/**
 * A TTM device over a `GPUDevice`.
 * @see amdgpu_device_init()
 */
export class WebGpuDevice implements AsyncDisposable {
  readonly name: string;
  /** The WebGPU device underneath. */
  readonly gpu: GPUDevice;
  /** What the adapter calls itself (or `'external device'` for a device passed in). */
  readonly adapterName: string;
  readonly ttm: TtmDevice;
  readonly vram: WebGpuVramManager;
  readonly ring: WebGpuRing;
  /** The scheduler in front of the queue. */
  readonly sched: DrmGpuScheduler<WebGpuJob>;
  /** The entity `submit()` queues its jobs on. */
  readonly entity: DrmSchedEntity;
  readonly staging: WebGpuStaging;
  readonly kernels: WebGpuKernels;
  /** Resolves when the device is lost (or destroyed). */
  readonly lost: Promise<WebGpuLoss>;
  /** Errors WebGPU reported outside dmabuf's scopes, and failed buffer creations, oldest first. */
  readonly errors: Error[] = [];
  /** Keeps Dawn's entry point alive while the device is used (see `webgpu-adapter.ts`). */
  readonly #handle: WebGpuHandle | null;
  #loss: WebGpuLoss | null = null;
  /** Buffers someone awaits the freeing of (see {@link WebGpuDevice.free}). */
  readonly #freeWaiters = new Map<TtmBufferObject, () => void>();
  #teardown: Promise<void> | null = null;

  /**
   * Requests a device (or takes `options.device`) and builds the stack on it.
   * @throws {InvalidArgumentError} for bad options. @throws {DmaBufError} EOPNOTSUPP / ENODEV
   *   when no WebGPU device can be had (see `requestWebGpuDevice`).
   */
  static async create(options: WebGpuDeviceOptions): Promise<WebGpuDevice> {
    checkOptions(options);
    if (options.device !== undefined) return new WebGpuDevice(options, options.device, null);
    const handle = await requestWebGpuDevice(options.request ?? {});
    try {
      return new WebGpuDevice(options, handle.device, handle);
    } catch (error) {
      handle.device.destroy();
      handle.release();
      throw error;
    }
  }

  private constructor(options: WebGpuDeviceOptions, gpu: GPUDevice, handle: WebGpuHandle | null) {
    this.name = options.name ?? `webgpu${nextId++}`;
    this.gpu = gpu;
    this.#handle = handle;
    this.adapterName = handle !== null ? handle.adapterName : 'external device';
    this.ring = new WebGpuRing(gpu, {
      name: `${this.name}-queue`,
      ...(options.errorScopes === undefined ? {} : { errorScopes: options.errorScopes }),
    });
    this.staging = new WebGpuStaging(
      this.ring,
      options.stagingBytes === undefined ? {} : { maxPooledBytes: options.stagingBytes },
    );
    this.sched = createWebGpuScheduler(this.ring);
    this.entity = new DrmSchedEntity({ schedulers: [this.sched], name: `${this.name}-submit` });
    this.ttm = new TtmDevice({
      name: this.name,
      funcs: {
        ...webGpuTtmFuncs(this.staging),
        deleteMemNotify: (bo) => {
          // Called just before TTM frees the memory synchronously; the waiter runs after that.
          const waiter = this.#freeWaiters.get(bo);
          if (waiter === undefined) return;
          if (bo.resource instanceof WebGpuVramResource) bo.resource.destroyOnFree = true;
          waiter();
          this.#freeWaiters.delete(bo);
        },
      },
      ...(options.systemBytes === undefined ? {} : { systemBytes: options.systemBytes }),
      ...(options.delayedDelete === undefined ? {} : { delayedDelete: options.delayedDelete }),
      ...(options.quiet === undefined ? {} : { quiet: options.quiet }),
    });
    this.vram = new WebGpuVramManager(this.ttm, gpu, {
      size: options.budgetBytes,
      name: `${this.name}-vram`,
      onError: (_res, error) => this.errors.push(error),
      recycle: options.recycleBuffers ?? true,
    });
    this.ttm.setManager(TtmMemType.VRAM, this.vram);
    this.kernels = new WebGpuKernels(gpu);
    gpu.addEventListener('uncapturederror', (event) => {
      const error = (event as GPUUncapturedErrorEvent).error;
      const wrapped = new DmaBufError('EIO', `${this.name}: uncaptured WebGPU error: ${error.message}`, {
        cause: error,
      });
      this.errors.push(wrapped);
      this.ring.uncapturedError(wrapped);
    });
    this.lost = gpu.lost.then((info) => this.#lose(info.reason, info.message));
  }

  /** Whether the device was lost (or destroyed). */
  get isLost(): boolean {
    return this.#loss !== null;
  }

  /** The VRAM budget in bytes. */
  get budgetBytes(): number {
    return this.vram.size;
  }

  /**
   * Creates a buffer object and places it (VRAM by default, evicting others under the budget).
   * It is returned unlocked with one reference: `put()` it when done.
   * @throws {DmaBufError} ENOMEM when it does not fit even after eviction (larger than the budget),
   *   ENODEV on a lost device. @see amdgpu_bo_create()
   */
  async createBuffer(init: WebGpuBufferInit): Promise<TtmBufferObject> {
    if (init === null || typeof init !== 'object')
      throw new InvalidArgumentError(`${this.name}.createBuffer: init must be an object, got ${describeValue(init)}`);
    this.#checkLive('createBuffer');
    const { placement = [{ memType: TtmMemType.VRAM }], ...rest } = init;
    const size = typeof init.size === 'number' ? Math.ceil(init.size / 4096) * 4096 : init.size;
    if (placement.every((place) => place.memType === TtmMemType.VRAM) && size > this.vram.size)
      throw new DmaBufError(
        'ENOMEM',
        `${this.name}.createBuffer: ${size} bytes never fit the VRAM budget of ${this.vram.size} bytes; ` +
          'create it in System or raise budgetBytes',
      );
    return TtmBufferObject.initValidate(this.ttm, { ...rest, placement });
  }

  /**
   * Locks the objects, places them in VRAM, waits for their implicit dependencies from other
   * timelines, records `encode`, submits, fences every object. See `webgpu-cs.ts`.
   * @returns the hardware fence of the submission. @see amdgpu_cs_ioctl()
   */
  async submit(buffers: readonly WebGpuCsBuffer[], encode: WebGpuEncode, options?: WebGpuCsOptions): Promise<DmaFence> {
    this.#checkLive('submit');
    return webGpuCs(this, buffers, encode, options);
  }

  /**
   * Drops the caller's reference to `bo` and resolves once its memory (the `GPUBuffer`, or the
   * system pages) is really freed: at once when it was idle and this was the last reference,
   * after its fences when work still uses it (TTM's delayed delete), after the last other
   * holder's `put()` otherwise. Resolves on a lost device too (failed fences still signal).
   * @throws {InvalidArgumentError} for a buffer object of another device.
   * @see ttm_bo_put(), ttm_bo_delayed_delete()
   */
  free(bo: TtmBufferObject): Promise<void> {
    if (!this.owns(bo))
      throw new InvalidArgumentError(
        `${this.name}.free: expected a buffer object of this device, ` +
          `got ${bo instanceof TtmBufferObject ? `${bo.name} of another device` : describeValue(bo)}`,
      );
    if (this.#freeWaiters.has(bo))
      throw new InvalidArgumentError(`${this.name}.free: ${bo.name} is being freed already; await the first free()`);
    const freed = new Promise<void>((resolve) => this.#freeWaiters.set(bo, resolve));
    try {
      bo.put();
    } catch (error) {
      this.#freeWaiters.delete(bo);
      throw error;
    }
    return freed;
  }

  /**
   * Writes `data` into `bo` at `offset` (multiples of 4), after the object's pending work from
   * other timelines; ordered after earlier submissions on the queue.
   */
  async write(bo: TtmBufferObject, data: ArrayBufferView, offset = 0): Promise<void> {
    const bytes = this.#checkRange('write', bo, offset, data?.byteLength);
    const view = new Uint8Array(data.buffer, data.byteOffset, bytes);
    await bo.reserve();
    try {
      const res = bo.resource;
      if (res instanceof WebGpuVramResource) {
        await this.#waitForeign(bo, DmaResvUsage.Read);
        this.staging.upload(res.buffer, offset, view);
      } else {
        await bo.waitIdle();
        bo.kmap().set(view, offset);
      }
    } finally {
      bo.unreserve();
    }
  }

  /**
   * Reads `length` bytes of `bo` from `offset` (multiples of 4; the rest of the buffer by
   * default), after every write to it (this queue's and other timelines').
   */
  async read(bo: TtmBufferObject, offset = 0, length?: number): Promise<Uint8Array> {
    const size = this.#checkRange('read', bo, offset, length ?? bo.size - offset);
    const out = new Uint8Array(size);
    await bo.reserve();
    try {
      const res = bo.resource;
      if (res instanceof WebGpuVramResource) {
        await this.#waitForeign(bo, DmaResvUsage.Write);
        await this.staging.download(res.buffer, offset, out);
      } else if (res !== null) {
        if (!(await bo.resv.wait({ usage: DmaResvUsage.Write })))
          throw new DmaBufError('EBUSY', `${bo.name}: waiting for its writers failed`);
        out.set(bo.kmap().subarray(offset, offset + size));
      }
    } finally {
      bo.unreserve();
    }
    return out;
  }

  /** Evicts every unpinned buffer object from VRAM. @see amdgpu_evict_vram() */
  async evictAll(): Promise<void> {
    this.#checkLive('evictAll');
    await this.ttm.evictAll(TtmMemType.VRAM, new TtmOperationCtx());
  }

  /** Whether `bo` belongs to this device. */
  owns(bo: TtmBufferObject): boolean {
    return bo instanceof TtmBufferObject && bo.device === this.ttm;
  }

  /**
   * Waits for delayed deletes, finishes TTM, drops the staging pool and, when this object
   * requested the `GPUDevice`, destroys it. Idempotent. @see amdgpu_device_fini_hw()
   */
  destroy(): Promise<void> {
    return (this.#teardown ??= this.#finish());
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.destroy();
  }

  toString(): string {
    return (
      `WebGpuDevice ${this.name} on ${this.adapterName} ` +
      `(${this.#loss === null ? 'live' : `lost: ${this.#loss.reason}`}, ` +
      `VRAM ${this.vram.usage}/${this.vram.size} bytes)`
    );
  }

  async #finish(): Promise<void> {
    try {
      await this.entity.destroy();
      await this.ring.idle();
      await this.ttm.fini();
      this.sched.fini();
    } finally {
      this.staging.trim();
      this.vram.trim();
      if (this.#handle !== null) {
        this.gpu.destroy();
        await this.lost;
        this.#handle.release();
      }
    }
  }

  /** Device lost: every pending fence fails, later work is refused. @see amdgpu_device_unplug() */
  #lose(reason: string, message: string): WebGpuLoss {
    const error = new DmaBufError(
      'ENODEV',
      `${this.name}: the WebGPU device was lost (${reason}${message === '' ? '' : `: ${message}`}); ` +
        'its VRAM contents are gone: create a new device',
    );
    this.#loss = { reason, message, error };
    this.ring.forceCompletion(error);
    this.staging.trim();
    this.vram.trim();
    return this.#loss;
  }

  #checkLive(op: string): void {
    if (this.#loss !== null) throw this.#loss.error;
    if (this.#teardown !== null) throw new DmaBufError('ENODEV', `${this.name}.${op}: the device was destroyed`);
  }

  #checkRange(op: string, bo: TtmBufferObject, offset: number, length: unknown): number {
    if (!this.owns(bo))
      throw new InvalidArgumentError(
        `${this.name}.${op}: ` +
          (bo instanceof TtmBufferObject
            ? `${bo.name} belongs to another device`
            : `expected a TtmBufferObject, got ${describeValue(bo)}`) +
          '; use a buffer object created by this device',
      );
    this.#checkLive(op);
    if (!Number.isSafeInteger(offset) || offset < 0 || offset % 4 !== 0)
      throw new InvalidArgumentError(
        `${this.name}.${op}: offset must be a non-negative multiple of 4, got ${describeValue(offset)}`,
      );
    if (
      typeof length !== 'number' ||
      !Number.isSafeInteger(length) ||
      length < 0 ||
      length % 4 !== 0 ||
      offset + length > bo.size
    )
      throw new InvalidArgumentError(
        `${this.name}.${op}: ${describeValue(length)} bytes at offset ${offset} do not fit ` +
          `${bo.name} (${bo.size} bytes) or are not a multiple of 4`,
      );
    return length;
  }

  /** Waits for `bo`'s fences of other timelines up to `usage` (the ring orders its own). */
  async #waitForeign(bo: TtmBufferObject, usage: DmaResvUsage): Promise<void> {
    for (const fence of bo.resv.getFences(usage)) {
      if (fence.context !== this.ring.context) await fence.wait();
    }
  }
}

function checkOptions(options: WebGpuDeviceOptions): void {
  if (options === null || typeof options !== 'object')
    throw new InvalidArgumentError(`WebGpuDevice: options must be an object, got ${describeValue(options)}`);
  for (const key of Object.keys(options)) {
    if (!OPTION_KEYS.has(key))
      throw new InvalidArgumentError(`WebGpuDevice: unknown option '${key}' (known: ${[...OPTION_KEYS].join(', ')})`);
  }
  const budget = options.budgetBytes;
  if (typeof budget !== 'number' || !Number.isSafeInteger(budget) || budget <= 0 || budget % 4096 !== 0)
    throw new InvalidArgumentError(
      `WebGpuDevice: budgetBytes (the VRAM budget) must be a positive multiple of 4096, got ${describeValue(budget)}`,
    );
  const device = options.device;
  if (
    device !== undefined &&
    (device === null || typeof device !== 'object' || typeof device.createBuffer !== 'function')
  )
    throw new InvalidArgumentError(`WebGpuDevice: device must be a GPUDevice, got ${describeValue(device)}`);
}
