/**
 * dmabuf/node: Node-only additions on top of the browser-safe core.
 *
 * Overview: importing this entry installs the lock validator's per-async-context tracking, built
 * on `AsyncLocalStorage`, and turns the validator on when the environment says
 * `DMABUF_LOCKDEP=1` (`DMABUF_LOCKDEP_MODE=record` records reports instead of throwing them).
 * It also installs `worker_threads` as the soft device's default worker platform
 * ({@link nodeWorkerPlatform}), so `new SoftDevice()` works in Node.
 *
 * How held locks follow `await`: a lock taken in a function must count as held in that
 * function's continuations and in work it starts later, but not in code that runs next to it in
 * the same synchronous stretch (`Promise.all([taskA(), taskB()])` runs both starts in one
 * stretch). Async-context propagation is decided when an `await` happens, so the tracker records
 * the new list for the current context and, as soon as the next promise is created (the awaiting
 * function's own `await`), hands that list to it and restores the caller's list.
 *
 * Contract:
 * - Importing is idempotent; the tracker is installed once.
 * - Importing costs nothing at run time: the async hooks start when the validator first records
 *   a held lock and stop when it is turned off (they slow every promise while on).
 *
 * @example
 * ```ts
 * import { enableLockdep, disableLockdep } from 'dmabuf/node';
 * console.log(enableLockdep({ mode: 'record' }).enabled); // true
 * disableLockdep();
 * ```
 */
import { AsyncLocalStorage, createHook, executionAsyncId } from 'node:async_hooks';
import { installHeldLockTracker, enableLockdep, type HeldLock, type LockdepMode } from './locking/lockdep.js';
import { installWorkerPlatform } from './device/soft/soft-worker-platform.js';
import { nodeWorkerPlatform } from './device/soft/soft-worker-node.js';

export * from './index.js';
export * from './soft.js';
export { nodeWorkerPlatform } from './device/soft/soft-worker-node.js';

installWorkerPlatform(nodeWorkerPlatform);

const EMPTY: readonly HeldLock[] = Object.freeze([]);
// Both hooks slow every promise in the process, so they start with the validator's first use
// (the storage's own hook first: it must copy the list into a new promise before ours restores
// the caller's) and stop when the validator is turned off.
const storage = new AsyncLocalStorage<readonly HeldLock[]>();

let restore: { readonly previous: readonly HeldLock[] } | null = null;
const handOff = createHook({
  init(_asyncId, type, triggerAsyncId) {
    if (restore === null || type !== 'PROMISE') return;
    // A promise made from nothing (new Promise, an async call) belongs to a callee; the caller's
    // await chains on a promise, so it has another trigger.
    if (triggerAsyncId === executionAsyncId()) return;
    const { previous } = restore;
    restore = null;
    storage.enterWith(previous);
  },
});

installHeldLockTracker({
  get: () => storage.getStore() ?? EMPTY,
  set(held) {
    const previous = storage.getStore() ?? EMPTY;
    storage.enterWith(held);
    restore ??= { previous };
    handOff.enable();
  },
  run(held, fn) {
    const saved = restore;
    restore = null;
    try {
      return storage.run(held, fn);
    } finally {
      restore = saved;
    }
  },
  stop() {
    restore = null;
    handOff.disable();
    storage.disable();
  },
});

const fromEnv = typeof process !== 'undefined' ? process.env['DMABUF_LOCKDEP'] : undefined;
if (fromEnv === '1' || fromEnv === 'true') {
  const mode: LockdepMode = process.env['DMABUF_LOCKDEP_MODE'] === 'record' ? 'record' : 'throw';
  const result = enableLockdep({ mode });
  if (!result.enabled) process.emitWarning(result.reason ?? 'lockdep could not be enabled', 'DmaBufWarning');
}
