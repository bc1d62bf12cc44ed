/**
 * dma-buf-export: sharing a buffer with other threads, memory and implicit fences together.
 *
 * Overview: dma-buf exists so that independent parties share a buffer and know when each
 * other's work on it is done. Here the parties are threads. {@link DmaBufShare} (the exporter's
 * side, made by {@link shareDmaBuf}) gives out a {@link DmaBufDescriptor}: the memory (a
 * `SharedArrayBuffer` and where the buffer sits in it) and a control block in shared memory.
 * {@link importDmaBuf} turns the descriptor into an {@link ImportedDmaBuf} in another thread.
 * Each descriptor also carries a `MessagePort` (the import's line to the exporter, for moves):
 * post it with the port in the transfer list, `postMessage(descriptor, [descriptor.port])`.
 *
 * Implicit fences cross through the control block: each party (the exporter and up to seven
 * imports) owns a table of fence slots there and publishes its fences into it with their usage
 * (write, read, kernel). A party waits for the others' published fences as for its own. CPU
 * access brackets (`beginCpuAccess` / `endCpuAccess`, on the exporter's {@link DmaBuf} and on
 * the import) do this by themselves: they wait for the fences the access must not overtake (a
 * read: writes; a write: reads and writes) in every thread, then publish the access itself as a
 * fence until it ends, so the consumer's reads wait for the producer's write, and the
 * producer's next write waits for the consumer's read. Work that is asynchronous (a device job)
 * publishes its fence with `importSyncFile`, or by adding it to the party's reservation object
 * and calling `publish()`; `pull()` brings the other parties' fences into the local reservation
 * object, for local work that takes its dependencies from there.
 *
 * Attachments ({@link ImportedDmaBuf.attach}): a static importer pins the buffer where it is
 * (`share.pinned`; an exporter that moves buffers must skip pinned ones), a dynamic importer
 * lets it move: when the exporter moves the memory it calls {@link DmaBufShare.moved} under its
 * reservation lock, every dynamic attachment gets `moveNotify` under the importer's reservation
 * lock, and maps again (`map()`) before its next access.
 *
 * Models `dma_buf_export()` / `dma_buf_get()` with the buffer's shared `dma_resv` (the implicit
 * fences), `dma_buf_attach()` / `dma_buf_dynamic_attach()` with `move_notify`,
 * `dma_buf_pin()`, `dma_buf_map_attachment()`, and the sync-file ioctls. Where threads differ from
 * devices:
 * - The kernel has one reservation object; here each thread has its own and they meet in the
 *   control block. A fence added to a reservation object directly is seen by the others after
 *   `publish()`; fences published by other threads are seen locally after `pull()` (CPU access
 *   brackets need neither).
 * - CPU access from a thread is published as a fence (a kernel CPU mapping is not fenced):
 *   threads are the "devices" here. Two threads starting conflicting accesses at the same time
 *   both publish and look again; the later-joined party withdraws and retries (wait-die by
 *   party index), so neither deadlocks nor overtakes.
 * - New memory after a move reaches an importer as a message on the `MessagePort` its descriptor
 *   carried (memory cannot be written into shared memory, and browsers do not carry a
 *   `SharedArrayBuffer` over a `BroadcastChannel`); the control block's generation says which
 *   mapping is current, and an importer that finds its mapping stale asks on the port.
 *
 * Contract:
 * - The exporter's buffer lives (its reference is held) until the share is closed and every
 *   import is closed; importing after {@link DmaBufShare.close} fails with `EBADF`, and with
 *   the share's `revoke` code after {@link DmaBufShare.revoke} (e.g. `ENODEV`: the device that
 *   exported it was destroyed), as does every access of the imports.
 * - At most seven imports per share (import once per thread and keep it); each party keeps at
 *   most 64 unsignaled published fences (`ENOSPC` beyond). A descriptor is imported once (its
 *   port goes with it): call `descriptor()` once per receiving thread.
 * - Every wait is bounded by its `timeout` (`FenceTimeoutError`) and abortable; nothing is left
 *   published when it fails.
 *
 * @example
 * ```ts
 * import { DmaHeap, importDmaBuf, shareDmaBuf } from 'dmabuf';
 * await using heap = new DmaHeap({ shared: true });
 * using buf = heap.allocate(4096);
 * using share = shareDmaBuf(buf);
 * const descriptor = share.descriptor(); // worker.postMessage(descriptor, [descriptor.port]); there:
 * using view = importDmaBuf(descriptor);
 * await buf.beginCpuAccess({ write: true });
 * buf.bytes().fill(7);
 * buf.endCpuAccess();
 * await view.beginCpuAccess({ write: false }); // waits for the write above, in any thread
 * console.log(view.bytes()[0]); // 7
 * view.endCpuAccess();
 * ```
 */

import {
  BugError,
  DmaBufError,
  ERRNO,
  FenceTimeoutError,
  InvalidArgumentError,
  checkTimeout,
  describeValue,
  type ErrnoCode,
} from '../base/errors.js';
import { getClock } from '../base/clock.js';
import { DmaFence, fenceContextAlloc, type DmaFenceOps } from '../fence/dma-fence.js';
import {
  ImportedFence,
  SharedFenceRegion,
  isSharedFenceRegion,
  sharedFenceRegionBytes,
  watchSharedFences,
} from '../fence/shared-fence.js';
import { SharedWordWaiter, errnoCode } from '../fence/shared-wait.js';
import type { SyncFile } from '../fence/sync-file.js';
import { DmaResv, DmaResvUsage } from '../resv/dma-resv.js';
import { DmaBuf } from './dma-buf.js';
import { dmaBufExportSyncFile, dmaBufImportSyncFile, type DmaBufSyncFileOptions } from './dma-buf-sync-file.js';

// Control block: a header of 16 words, then one fence region per party.
const C_WAKE = 0; // bumped when imports come and go, and at revoke
const C_GENERATION = 1; // the current mapping's generation
const C_PINS = 2; // static attachments
const C_ATTACHED = 3; // imports not closed yet
const C_PARTIES = 4; // parties claimed (the exporter is 0)
const C_MAGIC = 5;
const C_REVOKED = 6; // errno every import fails with; 0 while the memory lives
const C_CLOSED = 7; // no new imports
const C_ID = 8;
const HEADER_BYTES = 64;
const MAGIC = 0x64_6d_62_31; // 'dmb1'

/** Parties per share: the exporter and seven imports. */
export const MAX_DMA_BUF_PARTIES = 8;
const PARTY_SLOTS = 64;
const PARTY_BYTES = sharedFenceRegionBytes(PARTY_SLOTS);
const CONTROL_BYTES = HEADER_BYTES + MAX_DMA_BUF_PARTIES * PARTY_BYTES;

function partyOffset(index: number): number {
  return HEADER_BYTES + index * PARTY_BYTES;
}

/** The transferable form of a shared buffer: send it with `postMessage`. */
export interface DmaBufDescriptor {
  readonly type: 'dmabuf-buffer';
  readonly name: string;
  /** Bytes the buffer has. */
  readonly size: number;
  /** The control block (implicit fences, pins, generation). */
  readonly control: SharedArrayBuffer;
  /** The memory now, and the buffer's offset in it. */
  readonly memory: SharedArrayBuffer;
  readonly offset: number;
  readonly generation: number;
  /** The import's line to the exporter (new mappings after moves): transfer it with the descriptor. */
  readonly port: MessagePortLike;
}

/** What a share exports: a DmaBuf, or a buffer object whose memory may move (a TTM object). */
export interface DmaBufExporter {
  readonly name: string;
  /** Bytes visible to importers. */
  readonly size: number;
  /** The exporter's reservation object. */
  readonly resv: DmaResv;
  /** Where the bytes are now. */
  memory(): { readonly buffer: SharedArrayBuffer; readonly offset: number };
  /** Takes a reference, held until the share is released (optional). */
  get?(): void;
  /** Drops the reference {@link get} took. */
  put?(): void;
}

/** A mapping on the share's channel: where generation `generation` of the buffer is. */
interface MappingMessage {
  readonly kind: 'mapping';
  readonly generation: number;
  readonly buffer: SharedArrayBuffer;
  readonly offset: number;
}

/** An importer that joined after a move asks for the current mapping. */
interface WantMessage {
  readonly kind: 'want';
}

/** Options of CPU access brackets. */
interface AccessOptions {
  readonly timeout?: number;
  readonly signal?: AbortSignal;
}

/** The parts of a `MessagePort` used here (Node's ports can also be (un)ref'ed). */
export interface MessagePortLike {
  postMessage(message: unknown): void;
  close(): void;
  onmessage: ((event: { readonly data: unknown }) => void) | null;
  ref?(): void;
  unref?(): void;
}

/** The importer is done: the exporter forgets its port. */
interface ByeMessage {
  readonly kind: 'bye';
}

/** A new `MessageChannel`; its ports do not keep a Node process alive by themselves. */
function messageChannel(): { port1: MessagePortLike; port2: MessagePortLike } {
  const Ctor = (
    globalThis as unknown as { MessageChannel?: new () => { port1: MessagePortLike; port2: MessagePortLike } }
  ).MessageChannel;
  if (Ctor === undefined) {
    throw new DmaBufError('EOPNOTSUPP', 'dma-buf sharing needs MessageChannel (browsers, Node 15 and later)');
  }
  return new Ctor();
}

const accessOps: DmaFenceOps = Object.freeze({
  getDriverName: () => 'dma-buf',
  getTimelineName: () => 'cpu-access',
});

/**
 * One party's view of the shared implicit fences: its own table to publish into, the others'
 * tables to wait on, and its local reservation object. Used by both sides.
 */
class SharedResvParty {
  readonly control: Int32Array;
  readonly buffer: SharedArrayBuffer;
  readonly index: number;
  readonly name: string;
  readonly resv: DmaResv;
  readonly #region: SharedFenceRegion;
  readonly #published = new WeakSet<DmaFence>();
  readonly #accessContext = fenceContextAlloc();
  #accessSeqno = 0;
  readonly #accesses: DmaFence[] = [];

  constructor(buffer: SharedArrayBuffer, index: number, name: string, resv: DmaResv) {
    this.buffer = buffer;
    this.control = new Int32Array(buffer, 0, HEADER_BYTES / 4);
    this.index = index;
    this.name = name;
    this.resv = resv;
    this.#region = new SharedFenceRegion({ slots: PARTY_SLOTS, buffer, byteOffset: partyOffset(index) });
  }

  /** The error the share was revoked with, or undefined. */
  revoked(): DmaBufError | undefined {
    const errno = Atomics.load(this.control, C_REVOKED);
    if (errno === 0) return undefined;
    const code = errnoCode(errno) ?? 'EIO';
    return new DmaBufError(code, `${this.name}: the exporter revoked the share (${code}); the memory may be gone`);
  }

  /** Publishes `fence` for the other parties with `usage`. @returns false when it was already published or done. */
  publish(fence: DmaFence, usage: DmaResvUsage): boolean {
    if (this.#published.has(fence) || fence.isSignaled() || (fence instanceof ImportedFence && fence.watcher))
      return false;
    if (this.#region.tryExport(fence, 0, undefined, usage + 1) === undefined) {
      throw new DmaBufError(
        'ENOSPC',
        `${this.name}: ${PARTY_SLOTS} published fences of this thread are still pending; wait for some before publishing more`,
      );
    }
    this.#published.add(fence);
    return true;
  }

  /** Publishes every unsignaled fence of the local reservation object (bookkeeping ones aside). */
  publishResv(): number {
    let count = 0;
    for (const { fence, usage } of this.resv.fencesUnlocked(DmaResvUsage.Read)) {
      if (this.publish(fence, usage)) count++;
    }
    return count;
  }

  /** The other parties' pending fences with usage <= `usage`, with the party each came from. */
  remote(usage: DmaResvUsage): { fence: ImportedFence; party: number }[] {
    const parties = Math.min(Atomics.load(this.control, C_PARTIES), MAX_DMA_BUF_PARTIES);
    const out: { fence: ImportedFence; party: number }[] = [];
    for (let party = 0; party < parties; party++) {
      if (party === this.index || !isSharedFenceRegion(this.buffer, partyOffset(party))) continue;
      for (const fence of watchSharedFences(this.buffer, partyOffset(party), (tag) => tag > 0 && tag - 1 <= usage)) {
        out.push({ fence, party });
      }
    }
    return out;
  }

  /** Brings the other parties' pending fences into the local reservation object. */
  async pull(options?: AccessOptions): Promise<number> {
    if (this.remote(DmaResvUsage.Read).length === 0) return 0;
    await this.resv.lock(null, options?.signal === undefined ? undefined : { signal: options.signal });
    try {
      return this.pullLocked();
    } finally {
      this.resv.unlock();
    }
  }

  /** {@link pull} for a caller holding the reservation lock. */
  pullLocked(): number {
    const entries = this.remote(DmaResvUsage.Read);
    if (entries.length === 0) return 0;
    this.resv.reserveFences(entries.length);
    for (const { fence } of entries) this.resv.addFence(fence, (fence.tag - 1) as DmaResvUsage);
    return entries.length;
  }

  /**
   * Waits until the access may start, in every thread, then publishes it as a fence (see the
   * module overview for the retry). @throws rejects with FenceTimeoutError or `signal.reason`.
   */
  async beginAccess(write: boolean, options: AccessOptions): Promise<void> {
    const usage = DmaResv.usageRw(write);
    const limit = checkTimeout(options.timeout);
    const clock = getClock();
    const deadline = limit === undefined ? undefined : clock.now() + limit;
    const waited = new Set<string>();
    for (;;) {
      const revoked = this.revoked();
      if (revoked !== undefined) throw revoked;
      const before = this.remote(usage);
      for (const r of before) waited.add(`${r.party}:${r.fence.slot}:${r.fence.generation}`);
      await this.#waitAll(
        before.map((r) => r.fence),
        usage,
        deadline,
        options.signal,
        write,
        true,
      );
      const access = new DmaFence(accessOps, this.#accessContext, ++this.#accessSeqno);
      this.publish(access, write ? DmaResvUsage.Write : DmaResvUsage.Read);
      // Conflicting work published meanwhile: a party that joined earlier goes first (we withdraw
      // and start over); one that joined later sees ours and withdraws or waits, so we wait.
      const raced = this.remote(usage).filter((r) => !waited.has(`${r.party}:${r.fence.slot}:${r.fence.generation}`));
      if (raced.some((r) => r.party < this.index)) {
        access.signal();
        continue;
      }
      try {
        await this.#waitAll(
          raced.map((r) => r.fence),
          usage,
          deadline,
          options.signal,
          write,
          false,
        );
      } catch (err) {
        access.signal();
        throw err;
      }
      this.#accesses.push(access);
      return;
    }
  }

  endAccess(): void {
    this.#accesses.pop()?.signal();
  }

  async #waitAll(
    remote: readonly DmaFence[],
    usage: DmaResvUsage,
    deadline: number | undefined,
    signal: AbortSignal | undefined,
    write: boolean,
    local: boolean,
  ): Promise<void> {
    const clock = getClock();
    const left = (): number | undefined => (deadline === undefined ? undefined : Math.max(0, deadline - clock.now()));
    const options = (): { timeout?: number; signal?: AbortSignal } => {
      const o: { timeout?: number; signal?: AbortSignal } = {};
      const t = left();
      if (t !== undefined) o.timeout = t;
      if (signal !== undefined) o.signal = signal;
      return o;
    };
    const timedOut = (pending: number): FenceTimeoutError =>
      new FenceTimeoutError(
        `${this.name}: the fences a CPU ${write ? 'write' : 'read'} must wait for did not signal in time ` +
          `(${pending} pending, in this or other threads); retry later or raise the timeout`,
      );
    if (local && !(await this.resv.wait({ usage, ...options() }))) throw timedOut(this.resv.getFences(usage).length);
    for (const fence of remote) {
      if (!(await fence.wait(options()))) throw timedOut(remote.filter((f) => !f.signaledFlag).length);
    }
  }
}

/**
 * The exporter's side of a shared buffer (see the module overview). Made by {@link shareDmaBuf}.
 * @see dma_buf_export()
 */
export class DmaBufShare implements Disposable {
  readonly name: string;
  readonly size: number;
  /** Identity of the share, the same in every thread. */
  readonly id: string;
  readonly #exporter: DmaBufExporter;
  readonly #control: Int32Array;
  readonly #party: SharedResvParty;
  readonly #buf: DmaBuf | undefined;
  /** The exporter's ends of every descriptor's port. */
  readonly #ports = new Set<MessagePortLike>();
  #closed = false;
  #released = false;
  #releaseWaiter: SharedWordWaiter | undefined;

  /** @internal use {@link shareDmaBuf}. */
  constructor(exporter: DmaBufExporter, buf?: DmaBuf) {
    this.#exporter = exporter;
    this.#buf = buf;
    this.name = exporter.name;
    this.size = exporter.size;
    const buffer = new SharedArrayBuffer(CONTROL_BYTES);
    this.#control = new Int32Array(buffer, 0, HEADER_BYTES / 4);
    const random = new Uint32Array(4);
    crypto.getRandomValues(random);
    this.#control.set(new Int32Array(random.buffer), C_ID);
    this.id = [...random].map((w) => w.toString(16).padStart(8, '0')).join('');
    this.#control[C_GENERATION] = 1;
    this.#control[C_PARTIES] = 1;
    this.#control[C_MAGIC] = MAGIC;
    this.#party = new SharedResvParty(buffer, 0, exporter.name, exporter.resv);
    exporter.get?.();
    if (buf !== undefined) {
      buf.get();
      const party = this.#party;
      buf.setAccessHook({
        begin: (write, options) => party.beginAccess(write, options),
        end: () => party.endAccess(),
      });
    }
  }

  /** The transferable descriptor of the buffer as it is now. @throws {DmaBufError} `EBADF` once closed. */
  descriptor(): DmaBufDescriptor {
    if (this.#closed) throw new DmaBufError('EBADF', `DmaBufShare ${this.name}: closed; share the buffer again`);
    const { buffer, offset } = this.#exporter.memory();
    const { port1, port2 } = messageChannel();
    port1.onmessage = (event) => {
      const kind = (event.data as Partial<WantMessage | ByeMessage> | null)?.kind;
      if (kind === 'want') this.#announce(port1);
      else if (kind === 'bye') {
        this.#ports.delete(port1);
        port1.close();
      }
    };
    port1.unref?.();
    this.#ports.add(port1);
    return Object.freeze({
      type: 'dmabuf-buffer',
      name: this.name,
      size: this.size,
      control: this.#party.buffer,
      memory: buffer,
      offset,
      generation: Atomics.load(this.#control, C_GENERATION),
      port: port2,
    });
  }

  /** Imports not closed yet. */
  get attached(): number {
    return Atomics.load(this.#control, C_ATTACHED);
  }

  /** Whether a static importer pins the buffer: it must not move. @see dma_buf_pin() */
  get pinned(): boolean {
    return Atomics.load(this.#control, C_PINS) > 0;
  }

  /** The generation of the current mapping (1 until the first move). */
  get generation(): number {
    return Atomics.load(this.#control, C_GENERATION);
  }

  /**
   * A CPU access bracket for exporters that are not a {@link DmaBuf} (a DmaBuf's own
   * `beginCpuAccess` does this): waits for this thread's and the importers' fences, then
   * publishes the access until {@link endCpuAccess}.
   * @throws rejects with `FenceTimeoutError` or `signal.reason`.
   */
  beginCpuAccess(options: {
    readonly write: boolean;
    readonly timeout?: number;
    readonly signal?: AbortSignal;
  }): Promise<void> {
    if (typeof options?.write !== 'boolean') {
      return Promise.reject(
        new InvalidArgumentError(`DmaBufShare.beginCpuAccess on ${this.name}: options.write must be a boolean`),
      );
    }
    return this.#party.beginAccess(options.write, options);
  }

  /** Ends the access {@link beginCpuAccess} opened. */
  endCpuAccess(): void {
    this.#party.endAccess();
  }

  /** Publishes the exporter's unsignaled implicit fences (those added since the last publish). */
  publish(): number {
    return this.#party.publishResv();
  }

  /** Publishes `fence` with `usage` for the importers (it stays in the exporter's hands). */
  publishFence(fence: DmaFence, usage: DmaResvUsage): boolean {
    return this.#party.publish(fence, usage);
  }

  /** The importers' pending fences with usage <= `usage` (as fences of this thread). */
  remoteFences(usage: DmaResvUsage): DmaFence[] {
    return this.#party.remote(usage).map((r) => r.fence);
  }

  /** Brings the importers' pending fences into the exporter's reservation object. */
  pull(options?: { readonly signal?: AbortSignal }): Promise<number> {
    return this.#party.pull(options);
  }

  /**
   * {@link pull} for an exporter holding its reservation lock (a move does this before it waits).
   * @throws {BugError} without the lock.
   */
  pullLocked(): number {
    if (!this.#exporter.resv.isLocked) {
      throw new BugError(`DmaBufShare.pullLocked on ${this.name}: hold the exporter's reservation lock`);
    }
    return this.#party.pullLocked();
  }

  /**
   * The exporter moved the buffer (its `memory()` now says where): importers are told, and
   * dynamic attachments map again. Call it with the reservation lock held, after the move's
   * fence was published and the importers' fences were waited for.
   * @throws {BugError} without the lock, or while a static importer pins the buffer.
   * @see dma_buf_move_notify()
   */
  moved(): void {
    if (!this.#exporter.resv.isLocked) {
      throw new BugError(
        `DmaBufShare.moved on ${this.name}: call it with the reservation lock held, as move_notify is`,
      );
    }
    if (this.pinned) {
      throw new BugError(`DmaBufShare.moved on ${this.name}: a static importer pins the buffer; do not move it`);
    }
    const generation = (Atomics.load(this.#control, C_GENERATION) + 1) | 0;
    for (const port of this.#ports) this.#announce(port, generation);
    Atomics.store(this.#control, C_GENERATION, generation);
    Atomics.add(this.#control, C_WAKE, 1);
    Atomics.notify(this.#control, C_WAKE);
  }

  /** Tells an importer where the buffer is (for a move, before the generation changes). */
  #announce(port: MessagePortLike, generation = Atomics.load(this.#control, C_GENERATION)): void {
    const { buffer, offset } = this.#exporter.memory();
    const message: MappingMessage = { kind: 'mapping', generation, buffer, offset };
    port.postMessage(message);
  }

  /**
   * Ends the share for good: imports made before fail from now on with `code` (the memory is
   * going away, e.g. `ENODEV` when the exporting device is destroyed), then closes it.
   */
  revoke(code: ErrnoCode): void {
    Atomics.compareExchange(this.#control, C_REVOKED, 0, ERRNO[code]);
    Atomics.add(this.#control, C_WAKE, 1);
    Atomics.notify(this.#control, C_WAKE);
    this.close();
  }

  /**
   * No more imports; the exporter's buffer reference is dropped once every import is closed.
   * Idempotent. @see dma_buf_put()
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    Atomics.store(this.#control, C_CLOSED, 1);
    if (this.attached === 0) {
      this.#release();
      return;
    }
    this.#releaseWaiter = new SharedWordWaiter(this.#control, C_WAKE, () => {
      if (this.attached === 0) this.#release();
    });
    this.#releaseWaiter.start();
  }

  /** Whether the exporter's reference was dropped (closed, and no import left). */
  get released(): boolean {
    return this.#released;
  }

  #release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#releaseWaiter?.stop();
    for (const port of this.#ports) port.close();
    this.#ports.clear();
    if (this.#buf !== undefined) {
      this.#buf.setAccessHook(null);
      this.#buf.put();
    }
    this.#exporter.put?.();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  toString(): string {
    return `DmaBufShare(${this.name}, ${this.attached} imports${this.pinned ? ', pinned' : ''}${this.#closed ? ', closed' : ''})`;
  }
}

/**
 * Shares `buffer` with other threads. A {@link DmaBuf} must have shared memory (allocate it
 * with `shared: true`); its CPU access brackets then synchronise with every thread.
 * @throws {InvalidArgumentError} for memory that is not shared or something that is no buffer.
 */
export function shareDmaBuf(buffer: DmaBuf | DmaBufExporter): DmaBufShare {
  if (buffer instanceof DmaBuf) {
    if (!buffer.shared) {
      throw new InvalidArgumentError(
        `shareDmaBuf: ${buffer.name} is not in shared memory; allocate it with { shared: true } to share it with threads`,
      );
    }
    const buf = buffer;
    return new DmaBufShare(
      {
        name: buf.name,
        size: buf.requestedSize,
        resv: buf.resv,
        memory: () => ({ buffer: buf.buffer as SharedArrayBuffer, offset: 0 }),
      },
      buf,
    );
  }
  const e = buffer as Partial<DmaBufExporter> | null;
  if (
    typeof e !== 'object' ||
    e === null ||
    typeof e.memory !== 'function' ||
    !(e.resv instanceof DmaResv) ||
    !Number.isSafeInteger(e.size)
  ) {
    throw new InvalidArgumentError(
      `shareDmaBuf: expected a DmaBuf or an exporter { name, size, resv, memory() }, got ${describeValue(buffer)}`,
    );
  }
  return new DmaBufShare(buffer);
}

/** Options of {@link ImportedDmaBuf.attach}. */
export interface DmaBufAttachOptions {
  /**
   * A dynamic importer lets the buffer move and is told by `moveNotify`; a static one (the
   * default) pins it. @see dma_buf_dynamic_attach()
   */
  readonly dynamic?: boolean;
  /** Called (dynamic only) under the importer's reservation lock when the buffer moved; map again before the next access. */
  readonly moveNotify?: (attachment: DmaBufAttachment) => void;
}

/** An importer's attachment to a shared buffer. @see struct dma_buf_attachment */
export class DmaBufAttachment {
  readonly buffer: ImportedDmaBuf;
  readonly dynamic: boolean;
  readonly #moveNotify: ((attachment: DmaBufAttachment) => void) | undefined;
  #mapped: number | undefined = undefined;
  #detached = false;

  /** @internal use {@link ImportedDmaBuf.attach}. */
  constructor(buffer: ImportedDmaBuf, options: DmaBufAttachOptions) {
    this.buffer = buffer;
    this.dynamic = options.dynamic === true;
    this.#moveNotify = options.moveNotify;
  }

  /** Whether a mapping is held (dynamic attachments lose it at each move). */
  get mapped(): boolean {
    return this.#mapped !== undefined;
  }

  /** Whether the attachment was detached. */
  get detached(): boolean {
    return this.#detached;
  }

  /**
   * The buffer's bytes where they are now. A dynamic attachment needs the importer's
   * reservation lock held, as `dma_buf_map_attachment()` does for dynamic importers.
   * @throws rejects with {@link BugError} when detached or (dynamic) without the lock.
   * @see dma_buf_map_attachment()
   */
  async map(): Promise<Uint8Array> {
    if (this.#detached) throw new BugError(`DmaBufAttachment of ${this.buffer.name}: map() after detach()`);
    if (this.dynamic && !this.buffer.resv.isLocked) {
      throw new BugError(
        `DmaBufAttachment of ${this.buffer.name}: a dynamic importer maps with its reservation lock held`,
      );
    }
    const view = await this.buffer.currentView();
    this.#mapped = this.buffer.mappedGeneration;
    return view;
  }

  /** Drops the mapping. @see dma_buf_unmap_attachment() */
  unmap(): void {
    this.#mapped = undefined;
  }

  /** @internal the exporter moved the buffer. */
  notifyMove(): void {
    if (!this.dynamic || this.#detached) return;
    this.#mapped = undefined;
    try {
      this.#moveNotify?.(this);
    } catch (err) {
      queueMicrotask(() => {
        throw err;
      });
    }
  }

  /** Detaches (a static attachment unpins). Idempotent. @see dma_buf_detach() */
  detach(): void {
    if (this.#detached) return;
    this.#detached = true;
    this.#mapped = undefined;
    this.buffer.forget(this);
  }
}

/**
 * A buffer shared by another thread, as this thread sees it. Made by {@link importDmaBuf}.
 * @see dma_buf_get()
 */
export class ImportedDmaBuf implements Disposable {
  readonly name: string;
  readonly size: number;
  /** This thread's reservation object for the buffer (see the module overview). */
  readonly resv: DmaResv;
  readonly #control: Int32Array;
  readonly #party: SharedResvParty;
  readonly #port: MessagePortLike;
  #mapping: MappingMessage;
  /** Mappings announced on the port, newest kept. */
  #latest: MappingMessage;
  #waitingForMapping: (() => void)[] = [];
  readonly #attachments = new Set<DmaBufAttachment>();
  #cpuAccess = 0;
  #closed = false;

  /** @internal use {@link importDmaBuf}. */
  constructor(descriptor: DmaBufDescriptor, control: Int32Array, index: number) {
    this.name = descriptor.name;
    this.size = descriptor.size;
    this.#control = control;
    this.resv = new DmaResv({ name: `${descriptor.name} (imported)` });
    this.#party = new SharedResvParty(descriptor.control, index, this.resv.mutex.name, this.resv);
    this.#mapping = {
      kind: 'mapping',
      generation: descriptor.generation,
      buffer: descriptor.memory,
      offset: descriptor.offset,
    };
    this.#latest = this.#mapping;
    this.#port = descriptor.port;
    this.#port.onmessage = (event) => {
      const message = event.data as Partial<MappingMessage> | null;
      if (message?.kind === 'mapping') this.#announced(message as MappingMessage);
    };
    this.#port.unref?.();
  }

  /** The generation of the mapping this import holds. */
  get mappedGeneration(): number {
    return this.#mapping.generation;
  }

  /** Whether the exporter moved the buffer since this import last mapped it. */
  get stale(): boolean {
    return Atomics.load(this.#control, C_GENERATION) !== this.#mapping.generation;
  }

  /** Open CPU accesses. */
  get cpuAccessDepth(): number {
    return this.#cpuAccess;
  }

  /**
   * The bytes, where they were last mapped.
   * @throws {BugError} when closed or when the buffer has moved since (begin an access first).
   * @throws {DmaBufError} with the revoke code when the exporter revoked the share.
   */
  bytes(): Uint8Array {
    this.#checkLive('bytes()');
    if (this.stale) {
      throw new BugError(
        `ImportedDmaBuf ${this.name}: the exporter moved the buffer; beginCpuAccess() (or an attachment's map()) maps it again`,
      );
    }
    return new Uint8Array(this.#mapping.buffer, this.#mapping.offset, this.size);
  }

  /** @internal the current bytes, waiting for the mapping message of a move if needed. */
  async currentView(): Promise<Uint8Array> {
    this.#checkLive('map');
    for (;;) {
      const generation = Atomics.load(this.#control, C_GENERATION);
      if (this.#latest.generation === generation) break;
      // A move's mapping is posted before the generation moves, but a descriptor sent before
      // the move may carry an older one: ask the exporter.
      const want: WantMessage = { kind: 'want' };
      this.#port.postMessage(want);
      this.#port.ref?.();
      try {
        await new Promise<void>((resolve) => this.#waitingForMapping.push(resolve));
      } finally {
        this.#port.unref?.();
      }
      this.#checkLive('map');
    }
    this.#mapping = this.#latest;
    return new Uint8Array(this.#mapping.buffer, this.#mapping.offset, this.size);
  }

  #announced(message: MappingMessage): void {
    if (((message.generation - this.#latest.generation) | 0) <= 0) return;
    this.#latest = message;
    for (const wake of this.#waitingForMapping.splice(0)) wake();
    const dynamic = [...this.#attachments].filter((a) => a.dynamic);
    if (dynamic.length === 0) return;
    // move_notify runs with the reservation lock held.
    void this.resv.lock().then(() => {
      try {
        for (const attachment of dynamic) attachment.notifyMove();
      } finally {
        this.resv.unlock();
      }
    });
  }

  /**
   * Waits until a CPU access may start (in every thread), maps the buffer where it is now, and
   * publishes the access until {@link endCpuAccess}.
   * @throws rejects with `FenceTimeoutError`, `signal.reason`, the revoke code, or
   *   {@link BugError} when closed.
   */
  async beginCpuAccess(options: {
    readonly write: boolean;
    readonly timeout?: number;
    readonly signal?: AbortSignal;
  }): Promise<void> {
    this.#checkLive('beginCpuAccess()');
    if (typeof options?.write !== 'boolean') {
      throw new InvalidArgumentError(
        `ImportedDmaBuf.beginCpuAccess on ${this.name}: options.write must be a boolean, got ${describeValue(options?.write)}`,
      );
    }
    await this.#party.beginAccess(options.write, options);
    try {
      await this.currentView();
    } catch (err) {
      this.#party.endAccess();
      throw err;
    }
    this.#cpuAccess++;
  }

  /** Ends the access {@link beginCpuAccess} opened. @throws {BugError} without one. */
  endCpuAccess(): void {
    if (this.#cpuAccess === 0) {
      throw new BugError(`ImportedDmaBuf.endCpuAccess on ${this.name}: no CPU access is open`);
    }
    this.#cpuAccess--;
    this.#party.endAccess();
  }

  /** Adds `file`'s fences to this import as a read or a write, and publishes them. */
  async importSyncFile(file: SyncFile, options: DmaBufSyncFileOptions): Promise<void> {
    this.#checkLive('importSyncFile()');
    const fences = await dmaBufImportSyncFile(this, file, options);
    for (const fence of fences) this.#party.publish(fence, options.write ? DmaResvUsage.Write : DmaResvUsage.Read);
  }

  /** A sync file of what an access must wait for, in every thread (pulls first). */
  async exportSyncFile(options: DmaBufSyncFileOptions): Promise<SyncFile> {
    this.#checkLive('exportSyncFile()');
    await this.#party.pull(options.signal === undefined ? undefined : { signal: options.signal });
    return dmaBufExportSyncFile(this, options);
  }

  /** Publishes this thread's unsignaled implicit fences (added to {@link resv} directly). */
  publish(): number {
    this.#checkLive('publish()');
    return this.#party.publishResv();
  }

  /** Brings the other threads' pending fences into {@link resv}. */
  pull(options?: { readonly signal?: AbortSignal }): Promise<number> {
    this.#checkLive('pull()');
    return this.#party.pull(options);
  }

  /**
   * Attaches an importer (see {@link DmaBufAttachOptions}); a static one pins the buffer.
   * @throws {BugError} when closed; the revoke code when revoked.
   * @see dma_buf_attach() @see dma_buf_dynamic_attach()
   */
  attach(options: DmaBufAttachOptions = {}): DmaBufAttachment {
    this.#checkLive('attach()');
    if (options.moveNotify !== undefined && options.dynamic !== true) {
      throw new InvalidArgumentError(`ImportedDmaBuf.attach on ${this.name}: moveNotify needs dynamic: true`);
    }
    const attachment = new DmaBufAttachment(this, options);
    if (!attachment.dynamic) Atomics.add(this.#control, C_PINS, 1);
    this.#attachments.add(attachment);
    return attachment;
  }

  /** @internal an attachment detached. */
  forget(attachment: DmaBufAttachment): void {
    if (!this.#attachments.delete(attachment)) return;
    if (!attachment.dynamic) Atomics.sub(this.#control, C_PINS, 1);
  }

  /** Closes the import: detaches everything and lets the exporter drop the buffer. Idempotent. */
  close(): void {
    if (this.#closed) return;
    for (const attachment of [...this.#attachments]) attachment.detach();
    while (this.#cpuAccess > 0) this.endCpuAccess();
    this.#closed = true;
    const bye: ByeMessage = { kind: 'bye' };
    this.#port.postMessage(bye);
    this.#port.close();
    for (const wake of this.#waitingForMapping.splice(0)) wake();
    leave(this.#control);
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #checkLive(what: string): void {
    if (this.#closed) throw new BugError(`ImportedDmaBuf.${what} on ${this.name}: the import was closed`);
    const revoked = this.#party.revoked();
    if (revoked !== undefined) throw revoked;
  }

  toString(): string {
    return `ImportedDmaBuf(${this.name}, ${this.size} bytes, generation ${this.#mapping.generation})`;
  }
}

/**
 * Imports a buffer another thread shared ({@link DmaBufShare.descriptor}).
 * @throws {InvalidArgumentError} for something that is not a descriptor.
 * @throws {DmaBufError} `EBADF` when the share was closed, the revoke code when revoked,
 *   `EBUSY` when it already has {@link MAX_DMA_BUF_PARTIES} parties.
 */
export function importDmaBuf(descriptor: DmaBufDescriptor): ImportedDmaBuf {
  const d = descriptor as Partial<DmaBufDescriptor> | null;
  if (
    typeof d !== 'object' ||
    d === null ||
    d.type !== 'dmabuf-buffer' ||
    !(typeof SharedArrayBuffer !== 'undefined' && d.control instanceof SharedArrayBuffer) ||
    d.control.byteLength !== CONTROL_BYTES ||
    !(d.memory instanceof SharedArrayBuffer) ||
    !Number.isSafeInteger(d.offset) ||
    !Number.isSafeInteger(d.size) ||
    d.offset! + d.size! > d.memory.byteLength ||
    typeof d.port !== 'object' ||
    d.port === null ||
    typeof d.port.postMessage !== 'function'
  ) {
    throw new InvalidArgumentError(
      `importDmaBuf: expected a descriptor from DmaBufShare.descriptor(), got ${describeValue(descriptor)}`,
    );
  }
  const control = new Int32Array(d.control, 0, HEADER_BYTES / 4);
  if (control[C_MAGIC] !== MAGIC)
    throw new InvalidArgumentError('importDmaBuf: the control block is not a shared buffer');
  // Count ourselves in before looking at the closed flag; the exporter sets the flag before
  // counting imports, so either it waits for us or we see the flag.
  Atomics.add(control, C_ATTACHED, 1);
  const revoked = Atomics.load(control, C_REVOKED);
  const closed = Atomics.load(control, C_CLOSED) !== 0;
  if (revoked !== 0 || closed) {
    leave(control);
    const code = revoked === 0 ? 'EBADF' : (errnoCode(revoked) ?? 'EIO');
    throw new DmaBufError(
      code,
      `importDmaBuf: ${d.name} is no longer shared (${code}); ask the exporter for a new descriptor`,
    );
  }
  const index = Atomics.add(control, C_PARTIES, 1);
  if (index >= MAX_DMA_BUF_PARTIES) {
    leave(control);
    throw new DmaBufError(
      'EBUSY',
      `importDmaBuf: ${d.name} was already imported ${MAX_DMA_BUF_PARTIES - 1} times; import once per thread and keep it`,
    );
  }
  return new ImportedDmaBuf(d as DmaBufDescriptor, control, index);
}

/** An import goes away: the exporter may drop the buffer when it was the last. */
function leave(control: Int32Array): void {
  Atomics.sub(control, C_ATTACHED, 1);
  Atomics.add(control, C_WAKE, 1);
  Atomics.notify(control, C_WAKE);
}
