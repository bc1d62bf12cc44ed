/**
 * Buffer objects for the DrmExec specs: reservations that log their lock calls (and can be told
 * to fail reservations), reference-counted Bos, the "everything released" check, an older exec
 * holding objects, and a macrotask turn.
 */
import assert from 'node:assert/strict';

import { DmaBufError } from '../../src/base/errors.js';
import type { WwAcquireCtx, WwClass } from '../../src/locking/ww-mutex.js';
import { DmaResv } from '../../src/resv/dma-resv.js';
import { DrmExec, type DrmExecObject } from '../../src/exec/drm-exec.js';

/** One reservation operation, recorded with the context that did it. */
export interface Op {
  readonly op: 'lock' | 'lockSlow' | 'unlock' | 'run' | 'deadlock';
  readonly name: string;
  readonly ctx: WwAcquireCtx | null;
}

/** A reservation object that records its lock calls, and can be told to fail reservations. */
export class SpyResv extends DmaResv {
  failReserve = false;
  /**
   * lock() hands back a promise of its own instead of the mutex's: DrmExec then cannot tell a
   * lock taken at once (or a back-off) from a wait, and takes its general path for every lock.
   */
  wrapLocks = false;
  readonly #log: Op[];

  constructor(name: string, log: Op[], wwClass?: WwClass) {
    super(wwClass === undefined ? { name } : { name, wwClass });
    this.#log = log;
  }

  override lock(ctx?: WwAcquireCtx | null, options?: { signal?: AbortSignal }): Promise<void> {
    this.#log.push({ op: 'lock', name: this.mutex.name, ctx: ctx ?? null });
    const locked = super.lock(ctx, options);
    return this.wrapLocks ? locked.then(() => undefined) : locked;
  }

  override lockSlow(ctx: WwAcquireCtx, options?: { signal?: AbortSignal }): Promise<void> {
    this.#log.push({ op: 'lockSlow', name: this.mutex.name, ctx });
    return super.lockSlow(ctx, options);
  }

  override unlock(): void {
    this.#log.push({ op: 'unlock', name: this.mutex.name, ctx: this.lockingCtx });
    super.unlock();
  }

  override reserveFences(n: number): void {
    if (this.failReserve) throw new DmaBufError('ENOMEM', `${this.mutex.name}: no memory for ${n} slots (injected)`);
    super.reserveFences(n);
  }
}

/** A buffer object for the exec: a reservation and counted references (a GEM object's kref). */
export class Bo implements DrmExecObject {
  readonly resv: SpyResv;
  gets = 0;
  puts = 0;
  constructor(
    readonly name: string,
    log: Op[] = [],
    wwClass?: WwClass,
  ) {
    this.resv = new SpyResv(name, log, wwClass);
  }
  get(): void {
    this.gets++;
  }
  put(): void {
    this.puts++;
    assert.ok(this.puts <= this.gets, `${this.name}: put() without a matching get()`);
  }
  get refs(): number {
    return this.gets - this.puts;
  }
}

export function bos(count: number, log: Op[] = [], wwClass?: WwClass): Bo[] {
  return Array.from({ length: count }, (_, i) => new Bo(`bo${i}`, log, wwClass));
}

/** Everything released: no lock held, no waiter queued, every reference dropped. */
export function assertQuiet(objs: readonly Bo[], message = ''): void {
  for (const bo of objs) {
    assert.equal(bo.resv.isLocked, false, `${bo.name} still locked ${message}`);
    assert.equal(bo.resv.mutex.waiters, 0, `${bo.name} still has waiters ${message}`);
    assert.equal(bo.refs, 0, `${bo.name} references unbalanced: ${bo.gets} gets, ${bo.puts} puts ${message}`);
  }
}

/** A macrotask turn: lets other tasks run without sleeping on real time. */
export const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** An exec of an older ticket that holds `objs`. */
export async function olderHolding(...objs: Bo[]): Promise<DrmExec> {
  const exec = new DrmExec();
  await exec.untilAllLocked(async (exec) => exec.prepareArray(objs, 1));
  return exec;
}
