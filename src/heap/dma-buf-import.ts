/**
 * dma-buf-import: a buffer another thread shared, as this thread sees it.
 *
 * Overview: {@link importDmaBuf} turns a descriptor from `DmaBufShare.descriptor()` (sent with
 * its port transferred) into an {@link ImportedDmaBuf}: the memory, a reservation object of this
 * thread, CPU access brackets that wait for every thread's conflicting fences and publish the
 * access, the sync-file calls, and attachments ({@link DmaBufAttachment}): a static one pins the
 * buffer, a dynamic one is told of moves (`moveNotify`, under this thread's reservation lock)
 * and maps again. The design, and where it differs from the kernel, is in `dma-buf-export.ts`.
 *
 * Models the importer side of `drivers/dma-buf/dma-buf.c`: `dma_buf_get()`, `dma_buf_attach()`,
 * `dma_buf_dynamic_attach()` with `dma_buf_attach_ops.move_notify`, `dma_buf_pin()` /
 * `dma_buf_unpin()`, `dma_buf_map_attachment()`, `dma_buf_begin_cpu_access()`.
 *
 * Contract:
 * - An import holds the exporter's buffer until {@link ImportedDmaBuf.close}; its accesses fail
 *   with the revoke code once the exporter revoked the share.
 * - `bytes()` is valid for the mapping last made: after a move it throws until an access or an
 *   attachment's `map()` maps the buffer again.
 * - A dynamic attachment maps with the import's reservation lock held; a static one pins the
 *   buffer from attach to detach.
 *
 * @example
 * ```ts
 * import { DmaHeap, importDmaBuf, shareDmaBuf } from 'dmabuf';
 * await using heap = new DmaHeap({ shared: true });
 * using buf = heap.allocate(4096);
 * using share = shareDmaBuf(buf);
 * using view = importDmaBuf(share.descriptor()); // in another thread, after postMessage
 * const pin = view.attach(); // static: the exporter must not move it
 * console.log(share.pinned); // true
 * pin.detach();
 * ```
 */

import { BugError, DmaBufError, InvalidArgumentError, describeValue } from '../base/errors.js';
import {
  defineOptions,
  defineSignalOnly,
  invalidArgument,
  optionalBoolean,
  optionalFunction,
  optionalSignal,
  optionalTimeout,
  requiredBoolean,
} from '../base/options.js';
import { errnoCode } from '../fence/shared-wait.js';
import type { SyncFile } from '../fence/sync-file.js';
import { DmaResv, DmaResvUsage } from '../resv/dma-resv.js';
import { dmaBufExportSyncFile, dmaBufImportSyncFile, type DmaBufSyncFileOptions } from './dma-buf-sync-file.js';
import type { DmaBufDescriptor } from './dma-buf-export.js';
import {
  CONTROL_BYTES,
  C_CLOSED,
  C_GENERATION,
  C_MAGIC,
  C_PARTIES,
  C_PINS,
  C_REVOKED,
  HEADER_BYTES,
  MAGIC,
  MAX_DMA_BUF_PARTIES,
  SharedResvParty,
  leave,
  C_ATTACHED,
  type ByeMessage,
  type MappingMessage,
  type MessagePortLike,
  type WantMessage,
} from './dma-buf-shared-resv.js';

const parseAccessOptions = defineOptions('ImportedDmaBuf.beginCpuAccess', {
  write: requiredBoolean,
  timeout: optionalTimeout,
  signal: optionalSignal,
});
const parsePull = defineSignalOnly('ImportedDmaBuf.pull');
const parseExportSyncFile = defineOptions('ImportedDmaBuf.exportSyncFile', {
  write: requiredBoolean,
  signal: optionalSignal,
});
const parseAttachOptions = defineOptions('ImportedDmaBuf.attach', {
  dynamic: optionalBoolean,
  moveNotify: optionalFunction,
});

/** Options of {@link ImportedDmaBuf.attach}. */
export interface DmaBufAttachOptions {
  /**
   * A dynamic importer lets the buffer move and is told by `moveNotify`; a static one (the
   * default) pins it. @see dma_buf_dynamic_attach()
   */
  readonly dynamic?: boolean;
  /**
   * Called (dynamic only) under the importer's reservation lock when the buffer moved; map again before the
   * next access.
   */
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
        `ImportedDmaBuf ${this.name}: the exporter moved the buffer; ` +
          `beginCpuAccess() (or an attachment's map()) maps it again`,
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
    const parsed = parseAccessOptions(options);
    await this.#party.beginAccess(parsed.write, parsed);
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

  /** A sync file of what an access must wait for, in every thread (pulls first; `signal` aborts the pull). */
  async exportSyncFile(options: DmaBufSyncFileOptions): Promise<SyncFile> {
    const { write, signal } = parseExportSyncFile(options);
    this.#checkLive('exportSyncFile()');
    await this.#party.pull(signal === undefined ? undefined : { signal });
    return dmaBufExportSyncFile(this, { write });
  }

  /** Publishes this thread's unsignaled implicit fences (added to {@link resv} directly). */
  publish(): number {
    this.#checkLive('publish()');
    return this.#party.publishResv();
  }

  /** Brings the other threads' pending fences into {@link resv}. */
  pull(options?: { readonly signal?: AbortSignal }): Promise<number> {
    this.#checkLive('pull()');
    return parsePull(options, (signal) => this.#party.pull(signal === undefined ? undefined : { signal }));
  }

  /**
   * Attaches an importer (see {@link DmaBufAttachOptions}); a static one pins the buffer.
   * @throws {InvalidArgumentError} for bad or unknown options (`moveNotify` needs `dynamic: true`).
   * @throws {BugError} when closed; the revoke code when revoked.
   * @see dma_buf_attach() @see dma_buf_dynamic_attach()
   */
  attach(options: DmaBufAttachOptions = {}): DmaBufAttachment {
    const { dynamic, moveNotify } = parseAttachOptions(options);
    this.#checkLive('attach()');
    if (moveNotify !== undefined && dynamic !== true) {
      throw invalidArgument(
        `ImportedDmaBuf.attach on ${this.name}`,
        'options.moveNotify',
        moveNotify,
        'omitted unless dynamic is true (a static importer pins the buffer: it never moves)',
      );
    }
    const attachment = new DmaBufAttachment(this, {
      dynamic: dynamic === true,
      ...(moveNotify === undefined ? {} : { moveNotify: moveNotify as (attachment: DmaBufAttachment) => void }),
    });
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
 *   `EBUSY` when it already has `MAX_DMA_BUF_PARTIES` (8) parties.
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
      `importDmaBuf: ${d.name} was already imported ` +
        `${MAX_DMA_BUF_PARTIES - 1} times; import once per thread and keep it`,
    );
  }
  return new ImportedDmaBuf(d as DmaBufDescriptor, control, index);
}
