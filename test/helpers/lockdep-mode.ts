/**
 * Helpers for the validator's own tests (lockdep, lockdep-context, long-running fences, the
 * mutex's validator cases): record mode per case, reports as strings, and small probes.
 *
 * {@link recordMode} lets a file pass both plainly and under `DMABUF_LOCKDEP=1` (throw mode): each
 * case of the enclosing describe starts in record mode with stacks and an empty graph, and the
 * state the suite runs in is put back after it. Orders are checked with {@link probe}: a task of
 * its own taking locks in the reverse order reports exactly when the order under test was recorded.
 */
import { afterEach, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import {
  disableLockdep,
  enableLockdep,
  lockdepEnabled,
  lockdepReports,
  lockdepTask,
  resetLockdep,
  type DmaFence,
  type LockdepMode,
  type Mutex,
} from '../../src/node.js';
import { nextTurn } from './completion.js';

/** The mode the suite runs in (test:lockdep sets throw mode through the environment). */
const envMode: LockdepMode = process.env['DMABUF_LOCKDEP_MODE'] === 'record' ? 'record' : 'throw';

/** Record mode with stacks for every case of the enclosing describe, then the previous state back. */
export function recordMode(): void {
  let wasEnabled = false;
  beforeEach(() => {
    wasEnabled = lockdepEnabled();
    assert.equal(enableLockdep({ mode: 'record', stacks: true }).enabled, true);
    resetLockdep();
  });
  afterEach(() => {
    enableLockdep({ mode: envMode, stacks: true });
    if (!wasEnabled) disableLockdep();
    resetLockdep();
  });
}

/** Reports so far as `kind classes` strings, the easiest thing to compare. */
export function seen(): string[] {
  return lockdepReports().map((r) => `${r.kind} ${r.classes.join(' -> ')}`);
}

/** One task taking `locks` nested in order, with an event-loop turn between them, then releasing all. */
export async function nest(...locks: Mutex[]): Promise<void> {
  for (const m of locks) {
    await m.lock();
    await nextTurn();
  }
  for (const m of locks.reverse()) m.unlock();
}

/** Plays `locks` nested in a task of its own, so the probe inherits nothing. */
export function probe(...locks: Mutex[]): Promise<void> {
  return lockdepTask(() => nest(...locks));
}

/**
 * In a task of its own: takes `lock`, polls `fence` (timeout 0, so nothing hangs) while holding
 * it, releases it. Records `lock` -> the fence's map; resolves to what the wait returned.
 */
export function waitUnder(lock: { lock(): Promise<void>; unlock(): void }, fence: DmaFence): Promise<boolean> {
  return lockdepTask(async () => {
    await lock.lock();
    const signaled = await fence.wait({ timeout: 0 });
    lock.unlock();
    return signaled;
  });
}
