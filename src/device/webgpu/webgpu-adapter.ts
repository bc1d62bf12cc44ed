/// <reference types="@webgpu/types" />
/**
 * webgpu-adapter: finding a WebGPU implementation and getting a `GPUDevice` from it.
 *
 * Overview: in a browser the implementation is `navigator.gpu`; in Node it is the optional peer
 * dependency `webgpu` (Dawn's Node bindings), loaded with a dynamic `import()` only when no
 * `navigator.gpu` exists, so a browser bundle never pulls it in and users who never touch this
 * device install nothing. {@link requestWebGpuDevice} returns the adapter, the device and the
 * object that must stay alive while they are used ({@link WebGpuHandle.keepAlive}): Dawn's
 * Node bindings free the whole GPU natively when the object returned by `create()` is
 * collected, and a later call on any adapter or device then crashes the process. The handle
 * keeps it, and so does a process-wide list, until {@link WebGpuHandle.release}.
 *
 * There is no kernel counterpart: this is the probe step of a driver (`amdgpu_pci_probe()`
 * finding the device it drives).
 *
 * Contract:
 * - A missing `webgpu` package rejects with `DmaBufError('EOPNOTSUPP')` saying how to install
 *   it; no adapter rejects with `DmaBufError('ENODEV')` saying how to get one (Dawn needs a
 *   Vulkan driver: `VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json` with Debian's
 *   `chromium` package; Chromium needs `--enable-unsafe-webgpu`).
 * - A `gpu` passed in is used as is and is not kept alive by this module: its owner keeps it.
 * - Nothing here imports a `node:` module.
 *
 * @example
 * ```ts
 * import { requestWebGpuDevice } from 'dmabuf/webgpu';
 * process.env.VK_ICD_FILENAMES ??= '/usr/lib/chromium/vk_swiftshader_icd.json';
 * const handle = await requestWebGpuDevice();
 * console.log(handle.adapterName, handle.device.limits.maxBufferSize > 0); // e.g. "SwiftShader driver 5.0.0" true
 * handle.device.destroy();
 * handle.release();
 * ```
 */

import { DmaBufError, InvalidArgumentError, describeValue } from '../../base/errors.js';

/** Options of {@link requestWebGpuDevice}. */
export interface WebGpuRequestOptions {
  /** A WebGPU entry point to use (`navigator.gpu`, or the result of `webgpu`'s `create()`). */
  readonly gpu?: GPU;
  /** Flags for `webgpu`'s `create()` in Node (e.g. `'enable-dawn-features=...'`). */
  readonly dawnFlags?: readonly string[];
  readonly adapterOptions?: GPURequestAdapterOptions;
  readonly deviceDescriptor?: GPUDeviceDescriptor;
}

/** What {@link requestWebGpuDevice} found. */
export interface WebGpuHandle {
  readonly gpu: GPU;
  readonly adapter: GPUAdapter;
  readonly device: GPUDevice;
  /** `description` or `device` of the adapter's info, for messages and reports. */
  readonly adapterName: string;
  /** What must stay reachable while `adapter` or `device` is used (Dawn's `create()` result). */
  readonly keepAlive: unknown;
  /** Lets the process-wide list drop `keepAlive` (call after the device is destroyed). */
  release(): void;
}

/** The shape of the `webgpu` package's module. */
interface DawnModule {
  create(flags: string[]): GPU;
  readonly globals: object;
}

/** Dawn entry points handed out and not yet released: they must never be collected while in use. */
const KEEP_ALIVE = new Set<unknown>();

/** The package name, in a variable so that bundlers leave the import alone. */
const DAWN_PACKAGE = 'webgpu';

/** `navigator.gpu` where there is one (browsers, Deno), else undefined. */
export function navigatorGpu(): GPU | undefined {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  return nav?.gpu ?? undefined;
}

/**
 * A WebGPU entry point: `navigator.gpu`, or Dawn's from the `webgpu` package.
 * @returns the entry point and what must stay alive with it (null for `navigator.gpu`).
 * @throws {DmaBufError} EOPNOTSUPP when neither exists.
 */
export async function findGpu(dawnFlags: readonly string[] = []): Promise<{ gpu: GPU; keepAlive: unknown }> {
  const fromNavigator = navigatorGpu();
  if (fromNavigator !== undefined) return { gpu: fromNavigator, keepAlive: null };
  let dawn: DawnModule;
  try {
    dawn = (await import(/* @vite-ignore */ DAWN_PACKAGE)) as DawnModule;
  } catch (error) {
    throw new DmaBufError(
      'EOPNOTSUPP',
      'WebGPU is not available: there is no navigator.gpu and the optional peer dependency "webgpu" ' +
        '(Dawn for Node) could not be loaded; run `npm install webgpu`, or pass a GPUDevice yourself',
      { cause: error },
    );
  }
  const gpu = dawn.create([...dawnFlags]);
  return { gpu, keepAlive: gpu };
}

/** How to get an adapter on this platform, for the ENODEV message. */
function adapterHint(): string {
  if (navigatorGpu() !== undefined)
    return 'in Chromium, launch with --enable-unsafe-webgpu (headless: also --use-angle=swiftshader)';
  return (
    'Dawn needs a Vulkan driver and the Vulkan loader (libvulkan.so.1): without a GPU, install ' +
    "Debian's chromium package and run with VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json"
  );
}

/** Names an adapter from its info. */
export function describeAdapter(adapter: GPUAdapter): string {
  const info = adapter.info as Partial<GPUAdapterInfo> | undefined;
  const name = info?.description || info?.device || info?.vendor || '';
  return name === '' ? 'unnamed adapter' : name;
}

/**
 * Requests an adapter and a device. Every promise settles: a failed request rejects with a
 * `DmaBufError` (ENODEV when there is no adapter), with the implementation's error as `cause`.
 * @see amdgpu_pci_probe()
 */
export async function requestWebGpuDevice(options: WebGpuRequestOptions = {}): Promise<WebGpuHandle> {
  if (options === null || typeof options !== 'object')
    throw new InvalidArgumentError(`requestWebGpuDevice: options must be an object, got ${describeValue(options)}`);
  if (options.dawnFlags !== undefined && !Array.isArray(options.dawnFlags))
    throw new InvalidArgumentError(
      `requestWebGpuDevice: dawnFlags must be an array of strings, got ${describeValue(options.dawnFlags)}`,
    );
  const found = options.gpu !== undefined ? { gpu: options.gpu, keepAlive: null } : await findGpu(options.dawnFlags);
  const { gpu, keepAlive } = found;
  if (keepAlive !== null) KEEP_ALIVE.add(keepAlive);
  const release = (): void => {
    if (keepAlive !== null) KEEP_ALIVE.delete(keepAlive);
  };
  try {
    let adapter: GPUAdapter | null;
    try {
      adapter = await gpu.requestAdapter(options.adapterOptions);
    } catch (error) {
      throw new DmaBufError('ENODEV', `WebGPU requestAdapter() failed; ${adapterHint()}`, { cause: error });
    }
    if (adapter === null) throw new DmaBufError('ENODEV', `no WebGPU adapter; ${adapterHint()}`);
    let device: GPUDevice;
    try {
      device = await adapter.requestDevice(options.deviceDescriptor);
    } catch (error) {
      throw new DmaBufError(
        'ENODEV',
        `WebGPU requestDevice() failed on ${describeAdapter(adapter)}: ` +
          `${error instanceof Error ? error.message : String(error)}; ask for fewer features or lower limits`,
        { cause: error },
      );
    }
    return { gpu, adapter, device, adapterName: describeAdapter(adapter), keepAlive, release };
  } catch (error) {
    release();
    throw error;
  }
}
