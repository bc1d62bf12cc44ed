/**
 * soft-kernel-table: the host's catalogue of kernels a device can run, and job encoding.
 *
 * Overview: each device knows the built-in kernels ({@link BUILTIN_KERNELS}) and the user
 * kernels registered from modules ({@link SoftKernelTable.load}: the host imports the module to
 * read each kernel's parameters, then the engines import it to run them). A job names a kernel
 * and passes its arguments by parameter name; {@link SoftKernelTable.encode} checks them and
 * turns them into the kernel id and the float64 words of a ring slot.
 *
 * Contract:
 * - Ids: built-ins 1 .. 8 in {@link BUILTIN_KERNELS} order; registered kernels from 1000 up.
 * - A module's kernels are its exports that are kernels (see `isSoftKernel`); a name already
 *   known (a built-in, or a kernel registered before) is refused with
 *   {@link InvalidArgumentError} and nothing of that module is registered.
 * - Encoding refuses (with {@link InvalidArgumentError}, naming the kernel and the parameter) an
 *   unknown kernel, a missing or extra argument, a number that is not finite, a buffer that is
 *   not this device's, and a typed buffer whose offset or length is not a multiple of its
 *   element size.
 *
 * @example
 * ```ts
 * import { SoftKernelTable, SoftMemoryMap } from 'dmabuf/soft';
 * const memory = new SoftMemoryMap('demo', () => {});
 * const table = new SoftKernelTable('demo', memory);
 * const buf = memory.map(new SharedArrayBuffer(64));
 * console.log(table.encode('fill', { dst: buf, value: 7 })); // { id: 3, words: [1, 0, 64, 7] }
 * ```
 */

import { InvalidArgumentError, describeValue } from '../../base/errors.js';
import { PARAM_ELEMENT_BYTES, isSoftKernel, paramWords, type SoftKernel, type SoftKernelParam } from './soft-kernel.js';
import { BUILTIN_KERNELS } from './soft-kernels.js';
import type { KernelModule } from './soft-engine-worker.js';
import type { SoftBufferRange, SoftMemoryMap } from './soft-memory.js';
import { MAX_ARGS } from './soft-ring-layout.js';

/** First id of registered kernels. */
const FIRST_USER_ID = 1000;

/** A job as the ring stores it. */
export interface EncodedJob {
  readonly id: number;
  readonly words: readonly number[];
}

/**
 * Turns a buffer argument that is not a mapped range (a buffer object, say) into one; returns
 * undefined for values it does not know, which are then checked as mapped ranges.
 */
export type SoftBufferResolver = (what: string, value: unknown) => SoftBufferRange | undefined;

/** What a job planner needs to know of a kernel. */
export interface SoftKernelInfo {
  readonly id: number;
  /** Buffer parameters, each with whether the kernel writes it. */
  readonly buffers: readonly { readonly name: string; readonly write: boolean }[];
}

interface Entry extends SoftKernelInfo {
  readonly kernel: SoftKernel;
  /** `kernel.params` unpacked once. */
  readonly params: readonly (readonly [string, SoftKernelParam])[];
}

function entry(id: number, kernel: SoftKernel): Entry {
  const params = Object.entries(kernel.params);
  const writes = kernel.writes;
  const buffers = params
    .filter(([, kind]) => kind !== 'number')
    .map(([name]) => ({ name, write: writes === undefined || writes.includes(name) }));
  return { id, kernel, params, buffers };
}

/** The kernels of one device. */
export class SoftKernelTable {
  readonly #name: string;
  readonly #memory: SoftMemoryMap;
  readonly #byName = new Map<string, Entry>();
  readonly #modules: KernelModule[] = [];
  #nextId = FIRST_USER_ID;

  constructor(name: string, memory: SoftMemoryMap) {
    this.#name = name;
    this.#memory = memory;
    for (const [i, [kernelName, kernel]] of Object.entries(BUILTIN_KERNELS).entries()) {
      this.#byName.set(kernelName, entry(i + 1, kernel));
    }
  }

  /** Names of every kernel, built-ins first. */
  get names(): string[] {
    return [...this.#byName.keys()];
  }

  /** Modules registered so far (for engines that start later). */
  get modules(): readonly KernelModule[] {
    return this.#modules;
  }

  /**
   * Imports `url` on this thread and registers its kernels; the engines must then load it too.
   * @returns the module as engines receive it (`ids` by kernel name).
   * @throws {InvalidArgumentError} for a module without kernels or a name already known.
   */
  async load(url: URL | string): Promise<KernelModule> {
    const href = url instanceof URL ? url.href : new URL(url).href;
    const exports = (await import(href)) as Record<string, unknown>;
    const found = Object.entries(exports).filter((entry): entry is [string, SoftKernel] => isSoftKernel(entry[1]));
    if (found.length === 0) {
      throw new InvalidArgumentError(
        `${this.#name}: ${href} exports no kernel; export objects made with defineKernel({ params, run })`,
      );
    }
    for (const [name, kernel] of found) {
      if (this.#byName.has(name)) {
        throw new InvalidArgumentError(
          `${this.#name}: kernel ${JSON.stringify(name)} from ${href} is already known; rename the export`,
        );
      }
      if (paramWords(kernel.params) > MAX_ARGS) {
        throw new InvalidArgumentError(
          `${this.#name}: kernel ${JSON.stringify(name)} takes ${paramWords(kernel.params)} argument words, ` +
            `more than the ${MAX_ARGS} of a ring slot`,
        );
      }
    }
    const ids: Record<string, number> = {};
    for (const [name, kernel] of found) {
      const id = this.#nextId++;
      ids[name] = id;
      this.#byName.set(name, entry(id, kernel));
    }
    const module: KernelModule = { url: href, ids };
    this.#modules.push(module);
    return module;
  }

  /** @throws {InvalidArgumentError} for an unknown kernel. */
  info(kernelName: string): SoftKernelInfo {
    return this.#entry(kernelName);
  }

  #entry(kernelName: string): Entry {
    const found = typeof kernelName === 'string' ? this.#byName.get(kernelName) : undefined;
    if (found === undefined) {
      throw new InvalidArgumentError(
        `${this.#name}: unknown kernel ${describeValue(kernelName)}; known: ${this.names.join(', ')} ` +
          '(register your own with registerKernels(moduleUrl))',
      );
    }
    return found;
  }

  /**
   * Checks a job's arguments and encodes them for the ring; `resolve` may turn buffer arguments
   * of its own kind (buffer objects) into ranges.
   * @throws {InvalidArgumentError} see the module contract.
   */
  encode(kernelName: string, args: Readonly<Record<string, unknown>> = {}, resolve?: SoftBufferResolver): EncodedJob {
    const found = this.#entry(kernelName);
    if (typeof args !== 'object' || args === null) {
      throw new InvalidArgumentError(
        `${this.#name}: ${kernelName} arguments must be an object, got ${describeValue(args)}`,
      );
    }
    const params = found.kernel.params;
    for (const name in args) {
      if (!Object.hasOwn(params, name)) {
        throw new InvalidArgumentError(
          `${this.#name}: ${kernelName} has no parameter ${JSON.stringify(name)}; ` +
            `it takes ${Object.keys(params).join(', ') || 'none'}`,
        );
      }
    }
    const words: number[] = [];
    for (const [name, kind] of found.params) {
      const what = `${this.#name}: ${kernelName}(${name})`;
      const value = args[name];
      if (value === undefined) throw new InvalidArgumentError(`${what} is missing`);
      if (kind === 'number') {
        if (typeof value !== 'number' || !Number.isFinite(value)) {
          throw new InvalidArgumentError(`${what} must be a finite number, got ${describeValue(value)}`);
        }
        words.push(value);
        continue;
      }
      const range = resolve?.(what, value) ?? this.#memory.check(what, value);
      const element = PARAM_ELEMENT_BYTES[kind];
      if (range.offset % element !== 0 || range.length % element !== 0) {
        throw new InvalidArgumentError(
          `${what} is ${kind}: offset ${range.offset} and length ${range.length} must be multiples of ${element}`,
        );
      }
      words.push(range.memory.id, range.offset, range.length);
    }
    return { id: found.id, words };
  }
}
