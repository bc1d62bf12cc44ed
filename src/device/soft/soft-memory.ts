/**
 * soft-memory: the device's view of memory: shared buffers mapped into every engine.
 *
 * Overview: an engine worker can only touch memory it was given. {@link SoftMemoryMap.map}
 * gives a `SharedArrayBuffer` (or a shared {@link DmaBuf}'s) an id and posts it to every engine
 * once; jobs then name memory by id, offset and length in their ring slots (a buffer argument is
 * three words). {@link SoftMemory} is the host's handle of one mapping, {@link SoftBufferRange}
 * a part of one. A new engine (after a reset) starts with every mapping alive at that time.
 *
 * Models the GPU's address space as drivers set it up: GART / VM mappings (`amdgpu_gart_bind`,
 * `amdgpu_vm_bo_map`), made once per buffer rather than per job.
 *
 * Contract:
 * - One buffer is mapped once: mapping it again returns the same live {@link SoftMemory}.
 * - Ranges are checked against the mapping when made; a range of an unmapped memory, or of
 *   another device's, is refused where a job is submitted ({@link SoftMemoryMap.check}).
 * - Unmapping does not wait for jobs that use the memory; keep the mapping until their fences
 *   signal (the engines keep reading it until then only if they still have it).
 *
 * @example
 * ```ts
 * import { SoftMemoryMap } from 'dmabuf/soft';
 * const map = new SoftMemoryMap('demo', () => {});
 * const memory = map.map(new SharedArrayBuffer(4096));
 * console.log(memory.range(1024, 512).length, map.map(memory.buffer) === memory); // 512 true
 * ```
 */

import { DmaBufError, InvalidArgumentError, describeValue } from '../../base/errors.js';
import { DmaBuf } from '../../heap/dma-buf.js';
import type { EngineMessage } from './soft-engine-worker.js';

/** A part of a mapped memory, as a kernel's buffer argument. */
export interface SoftBufferRange {
  readonly memory: SoftMemory;
  readonly offset: number;
  readonly length: number;
}

/** One buffer mapped into the device. */
export class SoftMemory {
  /** Id the engines know the memory by. */
  readonly id: number;
  readonly buffer: SharedArrayBuffer;
  /** The map (device) this mapping belongs to. */
  readonly owner: SoftMemoryMap;
  #mapped = true;

  /** @internal made by {@link SoftMemoryMap.map}. */
  constructor(owner: SoftMemoryMap, id: number, buffer: SharedArrayBuffer) {
    this.owner = owner;
    this.id = id;
    this.buffer = buffer;
  }

  get size(): number {
    return this.buffer.byteLength;
  }

  /** Whether the mapping is still alive. */
  get mapped(): boolean {
    return this.#mapped;
  }

  /**
   * `length` bytes at `offset` (the rest of the memory by default).
   * @throws {InvalidArgumentError} when the range does not fit the memory.
   */
  range(offset = 0, length = this.size - offset): SoftBufferRange {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
      throw new InvalidArgumentError(
        `SoftMemory ${this.id}: offset and length must be non-negative integers, ` +
          `got ${describeValue(offset)}, ${describeValue(length)}`,
      );
    }
    if (offset + length > this.size) {
      throw new InvalidArgumentError(
        `SoftMemory ${this.id}: range ${offset} + ${length} bytes runs past its ${this.size} bytes`,
      );
    }
    return { memory: this, offset, length };
  }

  /** Takes the memory out of the engines' view. Idempotent. */
  unmap(): void {
    if (!this.#mapped) return;
    this.#mapped = false;
    this.owner.forget(this);
  }

  toString(): string {
    return `SoftMemory(${this.id}, ${this.size} bytes${this.#mapped ? '' : ', unmapped'})`;
  }
}

/** The mappings of one device. */
export class SoftMemoryMap {
  readonly name: string;
  readonly #broadcast: (message: EngineMessage) => void;
  readonly #byBuffer = new Map<SharedArrayBuffer, SoftMemory>();
  #nextId = 1;

  /** @param broadcast posts a message to every engine of the device. */
  constructor(name: string, broadcast: (message: EngineMessage) => void) {
    this.name = name;
    this.#broadcast = broadcast;
  }

  /**
   * Maps `memory` into every engine (once per buffer).
   * @throws {InvalidArgumentError} for memory that is not shared (an `ArrayBuffer`, a `DmaBuf`
   *   allocated without `shared: true`), or not memory at all.
   */
  map(memory: SharedArrayBuffer | DmaBuf): SoftMemory {
    const buffer = memory instanceof DmaBuf ? memory.buffer : memory;
    if (!(typeof SharedArrayBuffer !== 'undefined' && buffer instanceof SharedArrayBuffer)) {
      throw new InvalidArgumentError(
        `${this.name}: map() takes a SharedArrayBuffer or a DmaBuf allocated with shared: true, ` +
          `got ${describeValue(buffer)}`,
      );
    }
    let mapping = this.#byBuffer.get(buffer);
    if (mapping === undefined) {
      mapping = new SoftMemory(this, this.#nextId++, buffer);
      this.#byBuffer.set(buffer, mapping);
      this.#broadcast({ type: 'map', id: mapping.id, buffer });
    }
    return mapping;
  }

  /** @internal called by {@link SoftMemory.unmap}. */
  forget(memory: SoftMemory): void {
    if (this.#byBuffer.get(memory.buffer) !== memory) return;
    this.#byBuffer.delete(memory.buffer);
    this.#broadcast({ type: 'unmap', id: memory.id });
  }

  /** Every live mapping, for a new engine. */
  snapshot(): [number, SharedArrayBuffer][] {
    return [...this.#byBuffer.values()].map((m) => [m.id, m.buffer]);
  }

  /** Live mappings. */
  get size(): number {
    return this.#byBuffer.size;
  }

  /**
   * `range` as a job argument: a range (or a whole memory) of this map that is still mapped.
   * @throws {InvalidArgumentError} for anything else; {@link DmaBufError} `ENOENT` when unmapped.
   */
  check(what: string, range: unknown): SoftBufferRange {
    const r = range instanceof SoftMemory ? range.range() : (range as Partial<SoftBufferRange> | null);
    if (typeof r !== 'object' || r === null || !(r.memory instanceof SoftMemory)) {
      throw new InvalidArgumentError(
        `${what}: expected a SoftMemory or one of its ranges, got ${describeValue(range)}`,
      );
    }
    if (r.memory.owner !== this) {
      throw new InvalidArgumentError(
        `${what}: ${r.memory} belongs to ${r.memory.owner.name}, not ${this.name}; map the buffer into this device`,
      );
    }
    if (!r.memory.mapped) {
      throw new DmaBufError('ENOENT', `${what}: ${r.memory} was unmapped; map the buffer again`);
    }
    const { offset, length } = r as SoftBufferRange;
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
      throw new InvalidArgumentError(`${what}: range offset and length must be non-negative integers`);
    }
    if (offset + length > r.memory.size) {
      throw new InvalidArgumentError(`${what}: range ${offset} + ${length} runs past ${r.memory}`);
    }
    return r as SoftBufferRange;
  }
}
