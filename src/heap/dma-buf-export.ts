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

import { BugError, DmaBufError, ERRNO, InvalidArgumentError, type ErrnoCode } from '../base/errors.js';
import { DmaFence } from '../fence/dma-fence.js';
import { SharedWordWaiter } from '../fence/shared-wait.js';
import { DmaResv, type DmaResvUsageLike, checkUsage } from '../resv/dma-resv.js';
import {
  defineOptions,
  defineSignalOnly,
  invalidArgument,
  optionalSignal,
  optionalTimeout,
  requiredBoolean,
  requiredErrno,
} from '../base/options.js';
import { DmaBuf } from './dma-buf.js';
import {
  CONTROL_BYTES,
  C_ATTACHED,
  C_CLOSED,
  C_GENERATION,
  C_ID,
  C_MAGIC,
  C_PARTIES,
  C_PINS,
  C_REVOKED,
  C_WAKE,
  HEADER_BYTES,
  MAGIC,
  SharedResvParty,
  messageChannel,
  type ByeMessage,
  type MappingMessage,
  type MessagePortLike,
  type WantMessage,
} from './dma-buf-shared-resv.js';

const parseAccessOptions = defineOptions('DmaBufShare.beginCpuAccess', {
  write: requiredBoolean,
  timeout: optionalTimeout,
  signal: optionalSignal,
});
const parsePull = defineSignalOnly('DmaBufShare.pull');

export { MAX_DMA_BUF_PARTIES, type MessagePortLike } from './dma-buf-shared-resv.js';

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
    checkExporter('DmaBufShare', exporter);
    if (buf !== undefined && !(buf instanceof DmaBuf)) throw invalidArgument('DmaBufShare', 'buf', buf, 'a DmaBuf');
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
    let parsed: ReturnType<typeof parseAccessOptions>;
    try {
      parsed = parseAccessOptions(options);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#party.beginAccess(parsed.write, parsed);
  }

  /** Ends the access {@link beginCpuAccess} opened. @throws {BugError} without one. */
  endCpuAccess(): void {
    if (this.#party.openAccesses === 0) {
      throw new BugError(`DmaBufShare.endCpuAccess on ${this.name}: no CPU access is open`);
    }
    this.#party.endAccess();
  }

  /** Publishes the exporter's unsignaled implicit fences (those added since the last publish). */
  publish(): number {
    return this.#party.publishResv();
  }

  /**
   * Publishes `fence` with `usage` (a {@link DmaResvUsage} or its name) for the importers (it stays
   * in the exporter's hands). @throws {InvalidArgumentError} for a non-fence or an unknown usage.
   */
  publishFence(fence: DmaFence, usage: DmaResvUsageLike): boolean {
    if (!(fence instanceof DmaFence)) throw invalidArgument('DmaBufShare.publishFence', 'fence', fence, 'a DmaFence');
    return this.#party.publish(fence, checkUsage('DmaBufShare.publishFence', usage));
  }

  /**
   * The importers' pending fences with usage <= `usage` (as fences of this thread).
   * @throws {InvalidArgumentError} for an unknown usage.
   */
  remoteFences(usage: DmaResvUsageLike): DmaFence[] {
    return this.#party.remote(checkUsage('DmaBufShare.remoteFences', usage)).map((r) => r.fence);
  }

  /** Brings the importers' pending fences into the exporter's reservation object. */
  pull(options?: { readonly signal?: AbortSignal }): Promise<number> {
    return parsePull(options, (signal) => this.#party.pull(signal === undefined ? undefined : { signal }));
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
   * @throws {InvalidArgumentError} for a code that is not an errno name; nothing is revoked then.
   */
  revoke(code: ErrnoCode): void {
    requiredErrno(code, `DmaBufShare.revoke on ${this.name}`, 'code');
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
    const flags = `${this.pinned ? ', pinned' : ''}${this.#closed ? ', closed' : ''}`;
    return `DmaBufShare(${this.name}, ${this.attached} imports${flags})`;
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
        `shareDmaBuf: ${buffer.name} is not in shared memory; ` +
          `allocate it with { shared: true } to share it with threads`,
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
  checkExporter('shareDmaBuf', buffer);
  return new DmaBufShare(buffer);
}

function checkExporter(fn: string, value: unknown): void {
  const e = value as Partial<DmaBufExporter> | null;
  if (
    typeof e !== 'object' ||
    e === null ||
    typeof e.memory !== 'function' ||
    !(e.resv instanceof DmaResv) ||
    typeof e.name !== 'string' ||
    !Number.isSafeInteger(e.size) ||
    (e.size as number) < 0
  ) {
    throw invalidArgument(fn, 'buffer', value, 'a DmaBuf or an exporter { name, size, resv, memory() }');
  }
}
