/**
 * shared-fence: fences and sync files handed to other threads through slots of shared memory.
 *
 * Overview: a {@link DmaFence} is a JavaScript object and cannot leave its thread. To hand one to
 * a worker (or from a worker to the page, or between workers) the exporting thread writes its
 * state into a slot of a {@link SharedFenceRegion}, a `SharedArrayBuffer` table it owns, and
 * gives out a {@link SharedFenceDescriptor}: a plain, structured-cloneable object naming the
 * region and the slot, sent with `postMessage` like a sync_file descriptor passed over a socket.
 * {@link importFence} turns a descriptor into a `DmaFence` of the importing thread that signals,
 * with the exporter's error and timestamp, when the slot does. {@link exportSyncFile} /
 * {@link importSyncFile} do the same for a {@link SyncFile} and keep its name.
 *
 * Waiting is batched: a thread keeps one {@link SharedWordWaiter} per region it imported from,
 * not one per fence. The exporter logs each signalled slot and bumps the region's wake word; one
 * wake of the importer settles every imported fence the log names since the previous wake.
 *
 * Models passing a `sync_file` descriptor between processes (`sync_file_create()`,
 * `sync_file_get_fence()`, `SCM_RIGHTS`): the descriptor is a reference to the exporter's fence
 * with an open count, and closing the last reference frees the slot.
 *
 * Contract:
 * - A descriptor carries `importers` rights (1 by default): each {@link importFence} uses one;
 *   importing more often than that, or after the slot was reused, throws a `DmaBufError`
 *   `EBADF` (a closed descriptor) and changes nothing. Export once per receiver, or pass
 *   `importers`.
 * - The exporter holds the slot until its fence signals; each import holds it until the
 *   imported fence has signalled (or, never waited on, was garbage-collected). Then the owner
 *   reuses it; a descriptor never imported keeps its slot until the region is dropped.
 * - Only the errno crosses: an error that is a `DmaBufError` keeps its code, any other becomes
 *   `EIO` (the kernel's status is an int). Timestamps cross as wall-clock time.
 * - Imported fences of one exporter context share one context on the importing thread, so
 *   ordering (`isLater`) and reservation-object replacement work as for the original fences.
 * - Signalling is enabled lazily, as in the kernel: an imported fence is watched once somebody
 *   waits on it or adds a callback; polling (`isSignaled`) reads the slot directly. A watched
 *   fence holds its thread open until it signals.
 * - The owning thread is the only writer of its regions' slots. If it dies, whoever learns of it
 *   calls {@link abandonSharedFenceRegion}: every fence of the region still pending, in every
 *   thread, signals with the given error, so no waiter is left hanging.
 * - Uses only web-standard APIs: it runs in browsers (cross-origin isolated pages, for
 *   `SharedArrayBuffer`) as in Node.
 *
 * @example
 * ```ts
 * import { DmaFence, exportFence, fenceContextAlloc, importFence } from 'dmabuf';
 * const ops = { getDriverName: () => 'example', getTimelineName: () => 'render' };
 * const fence = new DmaFence(ops, fenceContextAlloc(), 1);
 * const descriptor = exportFence(fence); // postMessage(descriptor) to a worker; there:
 * const imported = importFence(descriptor);
 * fence.setError('EIO');
 * fence.signal();
 * await imported.wait();
 * console.log(imported.error?.message); // the error crossed as EIO
 * ```
 */

import { DmaBufError, ERRNO, InvalidArgumentError, describeValue, type ErrnoCode } from '../base/errors.js';
import {
  type Check,
  defineOptions,
  defineOptionsCheck,
  instanceOf,
  invalidArgument,
  optional,
  optionalIndex,
  optionalPositiveInteger,
  optionalString,
  requiredErrno,
  requiredFunction,
  requiredIndex,
} from '../base/options.js';
import { DmaFence, fenceContextAlloc, type DmaFenceOps } from './dma-fence.js';
import { SyncFile, checkSyncFileName } from './sync-file.js';
import {
  SharedWordWaiter,
  errnoOf,
  errorFromErrno,
  localTime,
  sharedNow,
  sharedTime,
  errnoCode,
} from './shared-wait.js';

// Region layout, in 32-bit words. Header:
const H_WAKE = 0; // bumped after every signal and at abandon; importers wait on it
const H_LOGGED = 1; // signals logged so far (the owner's write cursor into the log)
const H_LOST = 2; // errno the region was abandoned with; 0 while its owner lives
const H_SLOTS = 3; // capacity
const H_MAGIC = 4;
const H_ID = 8; // 4 random words: the region's identity, the same in every thread
const HEADER_WORDS = 16;
// Slot (8 words, so the timestamp's float64 is aligned):
const S_GEN = 0; // bumped at each allocation; a descriptor names one generation
const S_STATE = 1;
const S_ERRNO = 2;
const S_REFS = 3; // holders: the exporter until it signals, plus every import right
const S_TS = 4; // float64 wall-clock timestamp (words 4-5)
const S_RIGHTS = 6; // imports still allowed
const S_TAG = 7; // the exporter's tag (a reservation usage, for buffers' implicit fences)
const SLOT_WORDS = 8;
// Slot states.
const FREE = 0;
const PENDING = 1;
const SIGNALED = 2;

const MAGIC = 0x64_6d_66_31; // 'dmf1'
const DEFAULT_SLOTS = 1024;
const MAX_SLOTS = 1 << 20;

/** The transferable form of an exported fence: send it with `postMessage`. */
export interface SharedFenceDescriptor {
  readonly type: 'dmabuf-shared-fence';
  /** The memory of the exporting thread's region, and where in it the region starts. */
  readonly region: SharedArrayBuffer;
  readonly regionOffset: number;
  readonly slot: number;
  readonly generation: number;
  /** The fence's context and seqno on the exporting thread. */
  readonly context: number;
  readonly seqno: number;
  readonly seqno64: boolean;
  readonly driverName: string;
  readonly timelineName: string;
  /** The sync file's own name, when exported with {@link exportSyncFile} and named. */
  readonly name?: string;
}

/** Options of {@link SharedFenceRegion}. */
export interface SharedFenceRegionOptions {
  /** Slots in the table (default 1024): fences exported and not yet released at once. */
  readonly slots?: number;
  /**
   * Lay the region into this zero-filled memory (at `byteOffset`, a multiple of 8) instead of
   * a new buffer: several regions can then travel as one buffer. See {@link sharedFenceRegionBytes}.
   */
  readonly buffer?: SharedArrayBuffer;
  readonly byteOffset?: number;
}

/** Options of {@link exportFence}. */
export interface SharedFenceExportOptions {
  /**
   * How many times the descriptor may be imported (default 1). 0 only publishes the fence in
   * its region, for threads that watch the region ({@link watchSharedFences}).
   */
  readonly importers?: number;
  /** A number (0 .. 2^31-1) stored with the slot for watchers to filter on. */
  readonly tag?: number;
  /** The region to export through; this thread's default regions when omitted. */
  readonly region?: SharedFenceRegion;
}

/** Bytes a region of `slots` slots takes (a multiple of 8). */
export function sharedFenceRegionBytes(slots: number): number {
  if (!Number.isSafeInteger(slots) || slots < 1 || slots > MAX_SLOTS) {
    throw invalidArgument('sharedFenceRegionBytes', 'slots', slots, `an integer in 1 .. ${MAX_SLOTS}`);
  }
  return (HEADER_WORDS + slots * SLOT_WORDS + slots + (slots & 1)) * 4;
}

function regionId(i32: Int32Array): string {
  let id = '';
  for (let i = 0; i < 4; i++) id += (i32[H_ID + i]! >>> 0).toString(16).padStart(8, '0');
  return id;
}

/**
 * A table of fence slots in shared memory, owned (written) by the thread that created it.
 * @see sync_file_create()
 */
export class SharedFenceRegion {
  /** The memory; other threads reach the region through descriptors that carry it. */
  readonly buffer: SharedArrayBuffer;
  /** Where the region starts in {@link buffer}. */
  readonly byteOffset: number;
  /** Number of slots. */
  readonly slots: number;
  /** Identity of the region, the same in every thread. */
  readonly id: string;
  readonly #i32: Int32Array;
  readonly #f64: Float64Array;
  readonly #log: Int32Array;
  readonly #free: number[] = [];
  #unused = 0;
  #exported = 0;
  #notifyQueued = false;

  /**
   * Creates a region owned by this thread.
   * @throws {InvalidArgumentError} for a slot count that is not an integer in 1 .. 2^20, or
   *   memory that is too small, misaligned or already holds a region.
   */
  constructor(options?: SharedFenceRegionOptions) {
    parseRegionOptions(options);
    const slots = options?.slots ?? DEFAULT_SLOTS;
    if (slots > MAX_SLOTS) throw invalidArgument('SharedFenceRegion', 'options.slots', slots, `at most ${MAX_SLOTS}`);
    const bytes = sharedFenceRegionBytes(slots);
    const byteOffset = options?.byteOffset ?? 0;
    const buffer = options?.buffer ?? new SharedArrayBuffer(bytes);
    if (byteOffset % 8 !== 0 || byteOffset + bytes > buffer.byteLength) {
      throw invalidArgument(
        'SharedFenceRegion',
        'options.byteOffset',
        byteOffset,
        `a multiple of 8 with ${slots} slots (${bytes} bytes) after it in the buffer of ${buffer.byteLength} bytes`,
      );
    }
    this.slots = slots;
    this.buffer = buffer;
    this.byteOffset = byteOffset;
    this.#i32 = new Int32Array(buffer, byteOffset, bytes / 4);
    this.#f64 = new Float64Array(buffer, byteOffset, bytes / 8);
    this.#log = new Int32Array(buffer, byteOffset + (HEADER_WORDS + slots * SLOT_WORDS) * 4, slots);
    if (Atomics.compareExchange(this.#i32, H_MAGIC, 0, MAGIC) !== 0) {
      throw new InvalidArgumentError(`SharedFenceRegion: the memory at ${byteOffset} already holds a region`);
    }
    this.#i32[H_SLOTS] = slots;
    const random = new Uint32Array(4);
    crypto.getRandomValues(random);
    this.#i32.set(new Int32Array(random.buffer), H_ID);
    this.id = regionId(this.#i32);
  }

  /** Fences exported through this region that have not signalled yet. */
  get pendingExports(): number {
    return this.#exported;
  }

  /** Whether the region was abandoned ({@link abandonSharedFenceRegion}). */
  get abandoned(): boolean {
    return Atomics.load(this.#i32, H_LOST) !== 0;
  }

  /**
   * Writes `fence` into a free slot and returns its descriptor; the slot signals when the fence
   * does. `undefined` when every slot is taken.
   * @throws {InvalidArgumentError} for a bad argument, before a slot is taken.
   * @throws {DmaBufError} `ENODEV` when the region was abandoned.
   */
  tryExport(fence: DmaFence, importers: number, name?: string, tag = 0): SharedFenceDescriptor | undefined {
    // Every argument before the slot is taken: a slot allocated for a bad call was never given back.
    if (!(fence instanceof DmaFence))
      throw invalidArgument('SharedFenceRegion.tryExport', 'fence', fence, 'a DmaFence');
    checkCount('SharedFenceRegion.tryExport', 'importers', importers);
    optionalString(name, 'SharedFenceRegion.tryExport', 'name');
    checkCount('SharedFenceRegion.tryExport', 'tag', tag);
    if (this.abandoned) {
      throw new DmaBufError(
        'ENODEV',
        `SharedFenceRegion ${this.id}: abandoned; export through a live region (the default regions of this thread)`,
      );
    }
    const slot = this.#allocate();
    if (slot < 0) return undefined;
    const i32 = this.#i32;
    const base = HEADER_WORDS + slot * SLOT_WORDS;
    const generation = (i32[base + S_GEN]! + 1) | 0;
    Atomics.store(i32, base + S_GEN, generation);
    Atomics.store(i32, base + S_ERRNO, 0);
    Atomics.store(i32, base + S_REFS, 1 + importers);
    Atomics.store(i32, base + S_RIGHTS, importers);
    Atomics.store(i32, base + S_TAG, tag);
    Atomics.store(i32, base + S_STATE, PENDING);
    const descriptor: SharedFenceDescriptor = {
      type: 'dmabuf-shared-fence',
      region: this.buffer,
      regionOffset: this.byteOffset,
      slot,
      generation,
      context: fence.context,
      seqno: fence.seqno,
      seqno64: fence.isSeqno64,
      driverName: fence.driverName,
      timelineName: fence.timelineName,
      ...(name !== undefined && name !== '' ? { name } : {}),
    };
    this.#exported++;
    // Synchronous when already signaled (addCallback returns false then).
    if (!fence.addCallback(() => this.#publish(slot, fence))) this.#publish(slot, fence);
    return descriptor;
  }

  #allocate(): number {
    if (this.#free.length === 0) {
      if (this.#unused < this.slots) return this.#unused++;
      this.#reclaim();
    }
    return this.#free.pop() ?? -1;
  }

  /** Frees every signalled slot nobody holds any more (the last close of a descriptor). */
  #reclaim(): void {
    const i32 = this.#i32;
    for (let slot = 0; slot < this.#unused; slot++) {
      const base = HEADER_WORDS + slot * SLOT_WORDS;
      if (Atomics.load(i32, base + S_STATE) === SIGNALED && Atomics.load(i32, base + S_REFS) <= 0) {
        Atomics.store(i32, base + S_STATE, FREE);
        this.#free.push(slot);
      }
    }
  }

  #publish(slot: number, fence: DmaFence): void {
    const i32 = this.#i32;
    const base = HEADER_WORDS + slot * SLOT_WORDS;
    const error = fence.error;
    const timestamp = fence.timestamp;
    this.#f64[(base + S_TS) >> 1] = timestamp === undefined ? sharedNow() : sharedTime(timestamp);
    Atomics.store(i32, base + S_ERRNO, error === undefined ? 0 : errnoOf(error));
    Atomics.store(i32, base + S_STATE, SIGNALED);
    const logged = i32[H_LOGGED]!;
    Atomics.store(this.#log, logged % this.slots, slot);
    Atomics.store(i32, H_LOGGED, (logged + 1) | 0);
    Atomics.sub(i32, base + S_REFS, 1);
    this.#exported--;
    // One wake for every fence signalled in this synchronous stretch.
    if (!this.#notifyQueued) {
      this.#notifyQueued = true;
      queueMicrotask(this.#notify);
    }
  }

  readonly #notify = (): void => {
    this.#notifyQueued = false;
    Atomics.add(this.#i32, H_WAKE, 1);
    Atomics.notify(this.#i32, H_WAKE);
  };

  toString(): string {
    return `SharedFenceRegion(${this.id}, ${this.slots} slots, ${this.#exported} pending)`;
  }
}

/**
 * Marks the region whose memory is `region` as abandoned by its dead owner: every fence of it
 * still pending signals with `code` in every thread that imported it. Callable from any thread.
 * @returns `false` when the region had already been abandoned (the first code stays).
 * @throws {InvalidArgumentError} when `region` is not a fence region or `code` is not an errno name.
 */
export function abandonSharedFenceRegion(
  region: SharedArrayBuffer,
  code: ErrnoCode = 'ENODEV',
  byteOffset = 0,
): boolean {
  const i32 = checkRegion('abandonSharedFenceRegion', region, byteOffset);
  requiredErrno(code, 'abandonSharedFenceRegion', 'code');
  if (Atomics.compareExchange(i32, H_LOST, 0, ERRNO[code]) !== 0) return false;
  Atomics.add(i32, H_WAKE, 1);
  Atomics.notify(i32, H_WAKE);
  return true;
}

/** Whether a region has been laid out at `byteOffset` of `buffer` (its owner created it). */
export function isSharedFenceRegion(buffer: SharedArrayBuffer, byteOffset = 0): boolean {
  if (!(typeof SharedArrayBuffer !== 'undefined' && buffer instanceof SharedArrayBuffer)) {
    throw invalidArgument('isSharedFenceRegion', 'buffer', buffer, 'a SharedArrayBuffer');
  }
  requiredIndex(byteOffset, 'isSharedFenceRegion', 'byteOffset');
  if (byteOffset < 0 || byteOffset % 8 !== 0 || byteOffset + HEADER_WORDS * 4 > buffer.byteLength) return false;
  return Atomics.load(new Int32Array(buffer, byteOffset, HEADER_WORDS), H_MAGIC) === MAGIC;
}

function checkRegion(what: string, region: unknown, byteOffset: unknown): Int32Array {
  if (
    !(typeof SharedArrayBuffer !== 'undefined' && region instanceof SharedArrayBuffer) ||
    typeof byteOffset !== 'number' ||
    !Number.isSafeInteger(byteOffset) ||
    byteOffset < 0 ||
    byteOffset % 8 !== 0 ||
    region.byteLength < byteOffset + HEADER_WORDS * 4
  ) {
    throw new InvalidArgumentError(
      `${what}: region must be a SharedFenceRegion's buffer and offset, ` +
        `got ${describeValue(region)} at ${describeValue(byteOffset)}`,
    );
  }
  const header = new Int32Array(region, byteOffset, HEADER_WORDS);
  const slots = header[H_SLOTS]!;
  if (header[H_MAGIC] !== MAGIC || byteOffset + sharedFenceRegionBytes(slots) > region.byteLength) {
    throw new InvalidArgumentError(`${what}: the SharedArrayBuffer is not a SharedFenceRegion (no region header)`);
  }
  return new Int32Array(region, byteOffset, sharedFenceRegionBytes(slots) / 4);
}

// This thread's default regions: new ones are added when all are full.
const ownRegions: SharedFenceRegion[] = [];

function exportThroughDefault(
  fence: DmaFence,
  importers: number,
  name: string | undefined,
  tag: number,
): SharedFenceDescriptor {
  const last = ownRegions[ownRegions.length - 1];
  const first = last?.tryExport(fence, importers, name, tag);
  if (first !== undefined) return first;
  for (const region of ownRegions) {
    if (region === last) continue;
    const descriptor = region.tryExport(fence, importers, name, tag);
    if (descriptor !== undefined) {
      // Keep exporting where there was room.
      ownRegions.splice(ownRegions.indexOf(region), 1);
      ownRegions.push(region);
      return descriptor;
    }
  }
  const region = new SharedFenceRegion();
  ownRegions.push(region);
  return region.tryExport(fence, importers, name, tag)!;
}

function checkCount(what: string, name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0 || value > 0x3fff_ffff) {
    throw invalidArgument(what, name, value, 'an integer in 0 .. 2^30-1');
  }
  return value;
}

const countOption: Check<number | undefined> = (value, fn, name) =>
  value === undefined ? undefined : checkCount(fn, name, value);

/**
 * A `SharedArrayBuffer`, looked up when called: a page that is not cross-origin isolated has no such
 * global, and naming it while this module loads would break every import of dmabuf there.
 */
const sharedArrayBuffer: Check<SharedArrayBuffer> = (value, fn, name) => {
  if (typeof SharedArrayBuffer !== 'undefined' && value instanceof SharedArrayBuffer) return value;
  throw invalidArgument(fn, name, value, 'a SharedArrayBuffer');
};

const parseRegionOptions = defineOptionsCheck('SharedFenceRegion', {
  slots: optionalPositiveInteger,
  buffer: optional(sharedArrayBuffer),
  byteOffset: optionalIndex,
});

const exportSchema = { importers: countOption, tag: countOption, region: optional(instanceOf(SharedFenceRegion)) };
const parseExportFence = defineOptions('exportFence', exportSchema);
const parseExportSyncFile = defineOptions('exportSyncFile', exportSchema);

/**
 * Exports `fence` to other threads: a descriptor to send with `postMessage` and import there
 * with {@link importFence}. The slot signals when the fence does.
 * @throws {InvalidArgumentError} for something that is not a fence or bad options.
 * @throws {DmaBufError} `ENOSPC` when an explicit `region` is full.
 * @see sync_file_create()
 */
export function exportFence(fence: DmaFence, options?: SharedFenceExportOptions): SharedFenceDescriptor {
  if (!(fence instanceof DmaFence)) {
    throw new InvalidArgumentError(`exportFence: fence must be a DmaFence, got ${describeValue(fence)}`);
  }
  return exportWithName('exportFence', fence, parseExportFence(options), undefined);
}

function exportWithName(
  what: string,
  fence: DmaFence,
  options: ReturnType<typeof parseExportFence>,
  name: string | undefined,
): SharedFenceDescriptor {
  const importers = options.importers ?? 1;
  const tag = options.tag ?? 0;
  const region = options.region;
  if (region === undefined) return exportThroughDefault(fence, importers, name, tag);
  const descriptor = region.tryExport(fence, importers, name, tag);
  if (descriptor === undefined) {
    throw new DmaBufError(
      'ENOSPC',
      `${what}: ${region} has no free slot; import (and signal) exported fences first, or use a bigger region`,
    );
  }
  return descriptor;
}

/**
 * Exports a sync file's fence with the file's name (see {@link exportFence}).
 * @throws {BugError} when the file was disposed.
 */
export function exportSyncFile(file: SyncFile, options?: SharedFenceExportOptions): SharedFenceDescriptor {
  if (!(file instanceof SyncFile)) {
    throw new InvalidArgumentError(`exportSyncFile: file must be a SyncFile, got ${describeValue(file)}`);
  }
  const parsed = parseExportSyncFile(options);
  const fence = file.fence; // throws for a disposed file
  return exportWithName('exportSyncFile', fence, parsed, file.name);
}

/** Per-thread state of one region this thread imports from. */
class ImportRegion {
  readonly i32: Int32Array;
  readonly f64: Float64Array;
  readonly log: Int32Array;
  readonly slots: number;
  readonly id: string;
  /** Watched imported fences by slot (several when one descriptor was imported here more than once). */
  readonly watched = new Map<number, ImportedFence[]>();
  /** Local contexts of the exporter's contexts. */
  readonly contexts = new Map<number, number>();
  readonly waiter: SharedWordWaiter;
  /** Log entries handled so far. */
  cursor: number;

  constructor(i32: Int32Array, id: string) {
    this.i32 = i32;
    this.slots = i32[H_SLOTS]!;
    this.f64 = new Float64Array(i32.buffer, i32.byteOffset, sharedFenceRegionBytes(this.slots) / 8);
    this.log = new Int32Array(i32.buffer, i32.byteOffset + (HEADER_WORDS + this.slots * SLOT_WORDS) * 4, this.slots);
    this.id = id;
    this.cursor = Atomics.load(i32, H_LOGGED);
    this.waiter = new SharedWordWaiter(i32, H_WAKE, () => this.#wake());
  }

  localContext(context: number): number {
    let local = this.contexts.get(context);
    if (local === undefined) {
      local = fenceContextAlloc();
      this.contexts.set(context, local);
    }
    return local;
  }

  /**
   * Signals `fence` from its slot (or from the region's loss) when that has happened. A
   * watcher (no import right) also counts a reused slot as signalled: slots are reused only
   * after their fence signalled.
   */
  complete(fence: ImportedFence): boolean {
    if (fence.signaledFlag) return true;
    const base = HEADER_WORDS + fence.slot * SLOT_WORDS;
    let errno: number;
    let timestamp: number;
    const reused = Atomics.load(this.i32, base + S_GEN) !== fence.generation;
    if (reused && fence.watcher) {
      errno = 0;
      timestamp = localTime(sharedNow());
    } else if (Atomics.load(this.i32, base + S_STATE) === SIGNALED) {
      errno = Atomics.load(this.i32, base + S_ERRNO);
      timestamp = localTime(this.f64[(base + S_TS) >> 1]!);
      // Read again: a watcher's slot may have been reused while we read it.
      if (fence.watcher && Atomics.load(this.i32, base + S_GEN) !== fence.generation) errno = 0;
    } else {
      errno = Atomics.load(this.i32, H_LOST);
      if (errno === 0) return false;
      timestamp = localTime(sharedNow());
    }
    this.#forget(fence);
    if (errno !== 0) fence.setError(errorFromErrno(errno, fence.describe()));
    fence.signal(timestamp);
    return true;
  }

  watch(fence: ImportedFence): boolean {
    if (this.complete(fence)) return false;
    const list = this.watched.get(fence.slot);
    if (list === undefined) this.watched.set(fence.slot, [fence]);
    else list.push(fence);
    this.waiter.start();
    // Signalled between the check and the start: the log cursor may already be past it.
    return !this.complete(fence);
  }

  #forget(fence: ImportedFence): void {
    const list = this.watched.get(fence.slot);
    const i = list === undefined ? -1 : list.indexOf(fence);
    if (i >= 0) {
      list!.splice(i, 1);
      if (list!.length === 0) this.watched.delete(fence.slot);
      if (this.watched.size === 0) this.waiter.stop();
    }
    if (fence.watcher) return;
    releaseRegistry.unregister(fence);
    Atomics.sub(this.i32, HEADER_WORDS + fence.slot * SLOT_WORDS + S_REFS, 1);
  }

  #completeAll(list: readonly ImportedFence[]): void {
    for (const fence of [...list]) this.complete(fence);
  }

  #wake(): void {
    const logged = Atomics.load(this.i32, H_LOGGED);
    const behind = (logged - this.cursor) | 0;
    if (Atomics.load(this.i32, H_LOST) !== 0 || behind > this.slots || behind < 0) {
      for (const list of [...this.watched.values()]) this.#completeAll(list);
    } else {
      for (let i = this.cursor; i !== logged; i = (i + 1) | 0) {
        const list = this.watched.get(Atomics.load(this.log, (i >>> 0) % this.slots));
        if (list !== undefined) this.#completeAll(list);
      }
    }
    this.cursor = logged;
  }
}

// Imports of this thread by region id; a region is forgotten when nothing is watched there.
const importRegions = new Map<string, ImportRegion>();

// An imported fence nobody waited on still holds its slot; release it when it is collected.
const releaseRegistry = new FinalizationRegistry<{ i32: Int32Array; slot: number }>(({ i32, slot }) => {
  Atomics.sub(i32, HEADER_WORDS + slot * SLOT_WORDS + S_REFS, 1);
});

/** A fence of another thread, as seen in this one. Made by {@link importFence}. */
export class ImportedFence extends DmaFence {
  /** The exporter's names for the fence. */
  readonly exportedDriverName: string;
  readonly exportedTimelineName: string;
  /** The exporter's context and seqno (this fence's own context is local). */
  readonly exportedContext: number;
  readonly slot: number;
  readonly generation: number;
  /** Made by {@link watchSharedFences}: holds no import right. */
  readonly watcher: boolean;
  /** The slot's tag (see {@link SharedFenceExportOptions.tag}), read when the fence was made. */
  readonly tag: number;
  readonly #region: ImportRegion;

  static readonly #ops: DmaFenceOps<ImportedFence> = Object.freeze({
    getDriverName: (f: ImportedFence) => f.exportedDriverName,
    getTimelineName: (f: ImportedFence) => f.exportedTimelineName,
    enableSignaling: (f: ImportedFence) => f.#region.watch(f),
    // Completing signals the fence with the exporter's error and timestamp before the core looks.
    signaled: (f: ImportedFence) => f.#region.complete(f),
  });

  /** @internal use {@link importFence} or {@link watchSharedFences}. */
  constructor(region: ImportRegion, descriptor: SharedFenceDescriptor, watcher = false, tag = 0) {
    // A watcher does not know the exporter's context: each gets a context of its own, so that a
    // reservation object never takes one for a later fence of another.
    const context = watcher ? fenceContextAlloc() : region.localContext(descriptor.context);
    super(ImportedFence.#ops, context, descriptor.seqno, { seqno64: descriptor.seqno64 });
    this.#region = region;
    this.watcher = watcher;
    this.tag = tag;
    this.generation = descriptor.generation;
    this.slot = descriptor.slot;
    this.exportedContext = descriptor.context;
    this.exportedDriverName = descriptor.driverName;
    this.exportedTimelineName = descriptor.timelineName;
  }

  override isSignaled(): boolean {
    // Settle from the slot (error and timestamp included) rather than let the core signal bare.
    return this.signaledFlag || this.#region.complete(this);
  }
}

function checkDescriptor(what: string, descriptor: unknown): SharedFenceDescriptor {
  const d = descriptor as Partial<SharedFenceDescriptor> | null;
  if (
    typeof d !== 'object' ||
    d === null ||
    d.type !== 'dmabuf-shared-fence' ||
    !Number.isSafeInteger(d.slot) ||
    !Number.isSafeInteger(d.regionOffset) ||
    !Number.isSafeInteger(d.generation) ||
    !Number.isSafeInteger(d.context) ||
    !Number.isSafeInteger(d.seqno) ||
    typeof d.driverName !== 'string' ||
    typeof d.timelineName !== 'string' ||
    (d.name !== undefined && typeof d.name !== 'string')
  ) {
    throw new InvalidArgumentError(
      `${what}: expected a descriptor from exportFence() or exportSyncFile(), got ${describeValue(descriptor)}`,
    );
  }
  return d as SharedFenceDescriptor;
}

/**
 * Turns a descriptor from {@link exportFence} into a fence of this thread: it signals, with the
 * exporter's error (as an errno) and timestamp, when the exported fence does.
 * @throws {InvalidArgumentError} for something that is not a descriptor.
 * @throws {DmaBufError} `EBADF` when the descriptor has no import right left or is stale.
 * @see sync_file_get_fence()
 */
export function importFence(descriptor: SharedFenceDescriptor): ImportedFence {
  const d = checkDescriptor('importFence', descriptor);
  const region = importRegion('importFence', d.region, d.regionOffset);
  if (d.slot < 0 || d.slot >= region.slots) {
    throw new InvalidArgumentError(`importFence: slot ${d.slot} is outside the region's ${region.slots} slots`);
  }
  claimRight(region, d);
  const fence = new ImportedFence(region, d);
  if (!region.complete(fence)) releaseRegistry.register(fence, { i32: region.i32, slot: d.slot }, fence);
  return fence;
}

function importRegion(what: string, buffer: SharedArrayBuffer, byteOffset: number): ImportRegion {
  const i32 = checkRegion(what, buffer, byteOffset);
  const id = regionId(i32);
  let region = importRegions.get(id);
  if (region === undefined) {
    region = new ImportRegion(i32, id);
    importRegions.set(id, region);
  }
  return region;
}

/**
 * Fences of this thread for every fence still pending in a region whose tag `accept`s, without
 * using import rights: for threads that share a table of fences (a shared buffer's implicit
 * fences, see `dma-buf-export.ts`). Each signals when its slot does, or when the slot is seen
 * reused (which only happens after it signalled). They carry the exporter's error, but their
 * names are generic and each has a context of its own.
 * @throws {InvalidArgumentError} when the memory holds no region there.
 */
export function watchSharedFences(
  buffer: SharedArrayBuffer,
  byteOffset: number,
  accept: (tag: number) => boolean,
): ImportedFence[] {
  requiredFunction(accept, 'watchSharedFences', 'accept');
  const region = importRegion('watchSharedFences', buffer, byteOffset);
  const i32 = region.i32;
  const fences: ImportedFence[] = [];
  for (let slot = 0; slot < region.slots; slot++) {
    const base = HEADER_WORDS + slot * SLOT_WORDS;
    if (Atomics.load(i32, base + S_STATE) !== PENDING) continue;
    const generation = Atomics.load(i32, base + S_GEN);
    const tag = Atomics.load(i32, base + S_TAG);
    if (!accept(tag)) continue;
    const descriptor: SharedFenceDescriptor = {
      type: 'dmabuf-shared-fence',
      region: buffer,
      regionOffset: byteOffset,
      slot,
      generation,
      context: 0,
      seqno: 1,
      seqno64: false,
      driverName: 'shared',
      timelineName: `region-${region.id.slice(0, 8)}`,
    };
    const fence = new ImportedFence(region, descriptor, true, tag);
    if (!region.complete(fence)) fences.push(fence);
  }
  return fences;
}

function claimRight(region: ImportRegion, d: SharedFenceDescriptor): void {
  const i32 = region.i32;
  const base = HEADER_WORDS + d.slot * SLOT_WORDS;
  const stale = (): DmaBufError =>
    new DmaBufError(
      'EBADF',
      `importFence: the descriptor of ${d.timelineName} ${d.context}:${d.seqno} was already imported as often ` +
        'as it was exported for, and its slot may be reused; export once per importer (or pass importers: n)',
    );
  for (;;) {
    if (Atomics.load(i32, base + S_GEN) !== d.generation) throw stale();
    const rights = Atomics.load(i32, base + S_RIGHTS);
    if (rights <= 0) throw stale();
    if (Atomics.compareExchange(i32, base + S_RIGHTS, rights, rights - 1) !== rights) continue;
    if (Atomics.load(i32, base + S_GEN) === d.generation) return;
    // The slot was reused under us (only possible when the descriptor was used up): give it back.
    Atomics.add(i32, base + S_RIGHTS, 1);
    throw stale();
  }
}

/**
 * Turns a descriptor from {@link exportSyncFile} (or {@link exportFence}) into a sync file of
 * this thread, keeping the exporter's name for the file.
 * @throws {InvalidArgumentError} for something that is not a descriptor, or a name a sync file
 *   cannot have; checked before the import uses up one of the descriptor's rights.
 */
export function importSyncFile(descriptor: SharedFenceDescriptor): SyncFile {
  // The name is checked before the import uses up one of the descriptor's rights.
  const d = checkDescriptor('importSyncFile', descriptor);
  if (d.name !== undefined) checkSyncFileName('importSyncFile', d.name);
  return new SyncFile(importFence(d), d.name);
}

/** The errno name a fence region was abandoned with, or `undefined` while it lives. */
export function sharedFenceRegionLost(region: SharedArrayBuffer, byteOffset = 0): ErrnoCode | undefined {
  const errno = Atomics.load(checkRegion('sharedFenceRegionLost', region, byteOffset), H_LOST);
  return errno === 0 ? undefined : (errnoCode(errno) ?? 'EIO');
}
