/**
 * ttm-bo-delayed-delete: the strategies that free released-but-busy buffer objects (zombies).
 *
 * Overview: a buffer released while its fences are pending becomes a zombie holding its memory
 * (`ttm-bo.ts`); its device hands it to one {@link TtmDelayedDeleteStrategy}, which frees it
 * once the fences signaled. {@link TtmPerObjectDelete} is seed 004's design and the kernel's
 * since Linux 6.3: one work item per zombie on the device's bounded {@link WorkQueue}, sleeping
 * until its buffer is idle. {@link TtmPeriodicScanDelete} is the design it replaced: one
 * list of zombies, walked every `scanIntervalMs` by a timer that frees the idle, unlocked ones.
 * {@link TtmPerObjectIdleDelete} answers the seed reviewer's worry about the first: the work
 * item is queued only once its buffer is idle, so sleeping items never hold the queue's slots
 * (with the kernel's design, a release storm in random fence order waits behind the first 16
 * sleepers). The device keeps all three so they can be measured side by side.
 *
 * Models `ttm_bo_delayed_delete()` queued by `ttm_bo_release()` on `bdev->wq` (kernel-locking-mm
 * §3.6, §6.2) and the pre-6.3 `ttm_bo_delayed_delete(bdev, remove_all)` scanner over
 * `bdev->ddestroy`, run from a delayed work every HZ/100.
 *
 * Contract:
 * - {@link TtmDelayedDeleteStrategy.queue} takes over a zombie and its one reference; the
 *   strategy frees it exactly once (through `delayedDelete()` or `tryDelayedDelete()` of the
 *   buffer), counts it done even when that fails, and reports the failure to its host.
 * - {@link TtmDelayedDeleteStrategy.drain} resolves once every zombie handed over, including
 *   those handed over while draining, is freed; a `signal` stops the waiting (rejecting with its
 *   reason) but not the freeing. For the scanner it is the device's teardown: its timer stops
 *   while it drains and the zombies left are freed by waiting for their fences; zombies handed
 *   over after it (a fini that found buffers still referenced) are scanned again.
 * - The scanner's timer is a background timer: a zombie that never becomes idle does not keep
 *   the process alive.
 *
 * @example
 * ```ts
 * import { DmaFence, DmaResvUsage, TtmBufferObject, TtmDevice, TtmMemType, fenceContextAlloc } from 'dmabuf';
 * await using device = new TtmDevice({ vramBytes: 1 << 20, delayedDelete: 'per-object-idle' });
 * const bo = await TtmBufferObject.initReserved(device, { size: 4096, placement: [{ memType: TtmMemType.VRAM }] });
 * const job = new DmaFence({ getDriverName: () => 'gpu', getTimelineName: () => 'gfx' }, fenceContextAlloc(), 1);
 * bo.resv.reserveFences(1);
 * bo.resv.addFence(job, DmaResvUsage.Write);
 * bo.unreserve();
 * bo.put(); // a zombie: no work item until the job ends
 * console.log(device.delayedDelete.mode, device.delayedDelete.pending, device.wq.pending); // per-object-idle 1 0
 * job.signal();
 * await device.delayedDelete.drain();
 * console.log(device.delayedDelete.done); // 1
 * ```
 */

import { getClock, type TimerHandle } from '../base/clock.js';
import { untilAborted } from '../base/waiter.js';
import type { WorkQueue } from '../base/workqueue.js';
import { lockdepTask } from '../locking/lockdep.js';
import type { TtmBufferObject } from './ttm-bo.js';

/** The delayed-delete designs a device can use. */
export type TtmDelayedDeleteMode = 'per-object' | 'per-object-idle' | 'periodic-scan';

/** What a strategy needs from its device (`TtmDevice` implements it). */
export interface TtmDelayedDeleteHost {
  /** The device's bounded queue for work items. @see ttm_device.wq */
  readonly wq: WorkQueue;
  /** @internal Records a failed delete or wait; never throws (internal on the device too). */
  reportFailure(what: string, error: unknown): void;
}

/** One way of freeing zombies. */
export interface TtmDelayedDeleteStrategy {
  readonly mode: TtmDelayedDeleteMode;
  /** Zombies handed over so far. */
  readonly queued: number;
  /** Zombies freed (or whose delete failed and was reported) so far. */
  readonly done: number;
  /** Zombies handed over and not freed yet. */
  readonly pending: number;
  /** Takes over `zombie` and its one reference, and frees it once its fences signaled. */
  queue(zombie: TtmBufferObject): void;
  /**
   * Resolves once every zombie handed over (before or while draining) is freed; rejects with
   * `signal.reason` when aborted (the zombies are still freed later).
   */
  drain(signal?: AbortSignal): Promise<void>;
}

/** The counting every strategy shares. */
abstract class CountingStrategy implements TtmDelayedDeleteStrategy {
  abstract readonly mode: TtmDelayedDeleteMode;
  #queued = 0;
  #done = 0;

  constructor(protected readonly host: TtmDelayedDeleteHost) {}

  get queued(): number {
    return this.#queued;
  }

  get done(): number {
    return this.#done;
  }

  get pending(): number {
    return this.#queued - this.#done;
  }

  queue(zombie: TtmBufferObject): void {
    this.#queued++;
    this.schedule(zombie);
  }

  abstract drain(signal?: AbortSignal): Promise<void>;

  /** Arranges for `zombie` to be freed; calls {@link finished} once it is. */
  protected abstract schedule(zombie: TtmBufferObject): void;

  protected finished(): void {
    this.#done++;
  }

  /** The work item of one zombie: sleeps until it is idle, then frees it. */
  protected workItem(zombie: TtmBufferObject): () => Promise<void> {
    return async () => {
      try {
        await zombie.delayedDelete();
      } finally {
        this.finished();
      }
    };
  }
}

/**
 * A work item per zombie on the device's queue, each sleeping until its buffer is idle (seed
 * 004, Linux 6.3+). @see ttm_bo_delayed_delete()
 */
export class TtmPerObjectDelete extends CountingStrategy {
  readonly mode = 'per-object';

  protected schedule(zombie: TtmBufferObject): void {
    this.host.wq.queue(this.workItem(zombie), zombie.name);
  }

  drain(signal?: AbortSignal): Promise<void> {
    return this.host.wq.drain({ signal });
  }
}

/** A work item per zombie, queued only once the buffer is idle, so no item sleeps in a slot. */
export class TtmPerObjectIdleDelete extends CountingStrategy {
  readonly mode = 'per-object-idle';
  /** Zombies whose fences are still pending (their work is not queued yet). */
  readonly #idleWaits = new Set<Promise<void>>();

  protected schedule(zombie: TtmBufferObject): void {
    const work = this.workItem(zombie);
    // The wait belongs to no task of the releaser's: it runs as one of its own.
    const idle = lockdepTask(() => zombie.ownResv.wait()).then(
      () => this.host.wq.queue(work, zombie.name),
      (error: unknown) => {
        this.host.reportFailure(`waiting for ${zombie.name} to idle`, error);
        this.host.wq.queue(work, zombie.name);
      },
    );
    this.#idleWaits.add(idle);
    void idle.finally(() => this.#idleWaits.delete(idle));
  }

  async drain(signal?: AbortSignal): Promise<void> {
    do {
      while (this.#idleWaits.size > 0) await untilAborted(Promise.all(this.#idleWaits), signal);
      await this.host.wq.drain({ signal });
    } while (this.#idleWaits.size > 0);
  }
}

/**
 * The pre-6.3 design: zombies on one list, walked every `intervalMs` by a timer that frees the
 * idle, unlocked ones. @see ttm_bo_delayed_delete(bdev, remove_all)
 */
export class TtmPeriodicScanDelete extends CountingStrategy {
  readonly mode = 'periodic-scan';
  /** The scanner's period (the kernel's HZ/100 by default). */
  readonly intervalMs: number;
  #list: TtmBufferObject[] = [];
  #timer: TimerHandle | null = null;
  /** The running drain (the scanner's timer stays off while it runs), or null. */
  #draining: Promise<void> | null = null;

  constructor(host: TtmDelayedDeleteHost, intervalMs: number) {
    super(host);
    this.intervalMs = intervalMs;
  }

  protected schedule(zombie: TtmBufferObject): void {
    this.#list.push(zombie);
    this.#arm();
  }

  #arm(): void {
    if (this.#timer !== null || this.#draining !== null) return;
    // Background: a zombie whose fences never signal must not keep the process alive.
    this.#timer = getClock().setTimer(
      this.intervalMs,
      () => {
        this.#timer = null;
        this.#scan();
      },
      { background: true },
    );
  }

  /** One run of the periodic worker: frees every idle, unlocked zombie on the list. */
  #scan(): void {
    const keep: TtmBufferObject[] = [];
    for (const bo of this.#list) {
      let freed = false;
      try {
        freed = bo.tryDelayedDelete();
      } catch (error) {
        this.host.reportFailure(`delayed delete of ${bo.name}`, error);
        freed = true;
      }
      if (freed) this.finished();
      else keep.push(bo);
    }
    // Zombies added while scanning were appended to the old list too; keep is the new list.
    this.#list = keep;
    if (keep.length > 0) this.#arm();
  }

  /**
   * Stops the timer and frees every zombie left, waiting for each one's fences (`remove_all`).
   * Callers share one run; a `signal` only stops the caller's waiting.
   */
  drain(signal?: AbortSignal): Promise<void> {
    this.#draining ??= this.#removeAll().finally(() => {
      this.#draining = null;
      if (this.#list.length > 0) this.#arm();
    });
    return untilAborted(this.#draining, signal);
  }

  async #removeAll(): Promise<void> {
    if (this.#timer !== null) getClock().clearTimer(this.#timer);
    this.#timer = null;
    while (this.#list.length > 0) {
      const list = this.#list;
      this.#list = [];
      for (const bo of list) {
        try {
          await bo.delayedDelete();
        } catch (error) {
          this.host.reportFailure(`delayed delete of ${bo.name}`, error);
        }
        this.finished();
      }
    }
  }
}
