/**
 * dma-buf-sync-file: a buffer's implicit fences as a sync file, and a sync file into them.
 *
 * Overview: implicit synchronisation keeps a buffer's fences in its reservation object;
 * explicit synchronisation passes sync files around. These two functions bridge them, as the
 * kernel's two dma-buf ioctls do for Vulkan and Wayland compositors:
 * {@link dmaBufExportSyncFile} gives a sync file of exactly the work an access must wait for
 * (a read: the writes; a write: the reads and writes), and {@link dmaBufImportSyncFile} adds a
 * sync file's fences to the buffer as a read or as a write, so later implicit users wait for it.
 *
 * Models `dma_buf_export_sync_file()` and `dma_buf_import_sync_file()` of
 * `drivers/dma-buf/dma-buf.c` (`DMA_BUF_IOCTL_EXPORT_SYNC_FILE`, `DMA_BUF_IOCTL_IMPORT_SYNC_FILE`).
 *
 * Contract:
 * - Export: the unsignaled fences of usage `DmaResv.usageRw(write)` or stronger, merged into one
 *   fence (`unwrapMerge`); with none, the file holds a signaled stub fence, as in the kernel.
 * - Import: every plain fence of the file (containers are unwrapped) is added under the
 *   reservation lock with usage Write (`write: true`) or Read, after reserving one slot each.
 *   Waiting for the lock is abortable; nothing is added when it is aborted.
 * - The target is anything with a reservation object: a `DmaBuf`, a buffer imported from another
 *   thread (which also publishes the fences to the other threads, see `dma-buf-export.ts`).
 *
 * @example
 * ```ts
 * import { DmaFence, DmaHeap, SyncFile, dmaBufExportSyncFile, dmaBufImportSyncFile, fenceContextAlloc } from 'dmabuf';
 * await using heap = new DmaHeap();
 * using buf = heap.allocate(4096);
 * const render = new DmaFence({ getDriverName: () => 'vk', getTimelineName: () => 'q' }, fenceContextAlloc(), 1);
 * await dmaBufImportSyncFile(buf, new SyncFile(render), { write: true });
 * using before = dmaBufExportSyncFile(buf, { write: false }); // what a reader waits for
 * console.log(before.fence === render); // true
 * ```
 */

import { InvalidArgumentError, describeValue } from '../base/errors.js';
import { defineOptions, optionalSignal, requiredBoolean } from '../base/options.js';
import { DmaFence } from '../fence/dma-fence.js';
import { unwrap, unwrapMerge } from '../fence/dma-fence-unwrap.js';
import { SyncFile } from '../fence/sync-file.js';
import { DmaResv, DmaResvUsage } from '../resv/dma-resv.js';

/** Something with implicit fences. */
export interface DmaBufSyncTarget {
  readonly name: string;
  readonly resv: DmaResv;
}

/** Options of the two sync-file calls: `DMA_BUF_SYNC_WRITE` (true) or `DMA_BUF_SYNC_READ`. */
export interface DmaBufSyncFileOptions {
  readonly write: boolean;
  /**
   * Aborts waiting for the reservation lock (import) or for the other threads' fences
   * (`ImportedDmaBuf.exportSyncFile`); `dmaBufExportSyncFile` never waits and only checks it.
   */
  readonly signal?: AbortSignal;
}

// `signal` is accepted (the options type is shared with import) but export never waits.
const parseExportOptions = defineOptions('dmaBufExportSyncFile', { write: requiredBoolean, signal: optionalSignal });
const parseImportOptions = defineOptions('dmaBufImportSyncFile', { write: requiredBoolean, signal: optionalSignal });

function checkTarget(what: string, target: unknown): void {
  const t = target as Partial<DmaBufSyncTarget> | null;
  if (typeof t !== 'object' || t === null || !(t.resv instanceof DmaResv)) {
    throw new InvalidArgumentError(
      `${what}: target must be a DmaBuf or an imported buffer, got ${describeValue(target)}`,
    );
  }
}

/**
 * A sync file of the work an access must wait for: a read waits for writes, a write for reads
 * and writes. @see dma_buf_export_sync_file()
 * @throws {InvalidArgumentError} for a target without a reservation object or bad options.
 */
export function dmaBufExportSyncFile(target: DmaBufSyncTarget, options: DmaBufSyncFileOptions): SyncFile {
  checkTarget('dmaBufExportSyncFile', target);
  const { write } = parseExportOptions(options);
  const fences = target.resv.getFences(DmaResv.usageRw(write));
  return new SyncFile(fences.length === 0 ? DmaFence.getStub() : unwrapMerge(...fences));
}

/**
 * Adds the fences of `file` to `target` as a write or a read. @see dma_buf_import_sync_file()
 * @returns the plain fences added.
 * @throws rejects with {@link InvalidArgumentError} for bad arguments, `signal.reason` when aborted.
 */
export async function dmaBufImportSyncFile(
  target: DmaBufSyncTarget,
  file: SyncFile,
  options: DmaBufSyncFileOptions,
): Promise<DmaFence[]> {
  checkTarget('dmaBufImportSyncFile', target);
  const { write, signal } = parseImportOptions(options);
  if (!(file instanceof SyncFile)) {
    throw new InvalidArgumentError(
      `dmaBufImportSyncFile on ${target.name}: file must be a SyncFile, got ${describeValue(file)}`,
    );
  }
  const fences = [...unwrap(file.fence)].filter((f) => !f.isSignaled());
  if (fences.length === 0) return fences;
  const usage = write ? DmaResvUsage.Write : DmaResvUsage.Read;
  const resv = target.resv;
  await resv.lock(null, signal === undefined ? undefined : { signal });
  try {
    resv.reserveFences(fences.length);
    for (const fence of fences) resv.addFence(fence, usage);
  } finally {
    resv.unlock();
  }
  return fences;
}
