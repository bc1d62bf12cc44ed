/**
 * Spies for fence tests: ops that count their calls, a microtask catcher, and leak counters.
 */
import { getEventListeners } from 'node:events';
import { DmaFence, fenceContextAlloc, type DmaFenceOps } from '../../src/fence/dma-fence.js';

/** A fence on ops that count their calls; `done` drives `ops.signaled`, `enableResult` `ops.enableSignaling`. */
export function spyFence(init: { enableResult?: boolean; withSignaled?: boolean } = {}) {
  const spy = {
    enableCalls: 0,
    signaledCalls: 0,
    deadlines: [] as number[],
    done: false,
    enableResult: init.enableResult ?? true,
  };
  const ops: DmaFenceOps = {
    getDriverName: () => 'spy-driver',
    getTimelineName: () => 'spy-timeline',
    enableSignaling: () => (spy.enableCalls++, spy.enableResult),
    setDeadline: (_fence, deadline) => void spy.deadlines.push(deadline),
  };
  if (init.withSignaled !== false) ops.signaled = () => (spy.signaledCalls++, spy.done);
  const make = (seqno = 1): DmaFence => new DmaFence(ops, fenceContextAlloc(), seqno);
  return { spy, ops, f: make(), make };
}

/** Runs `fn` with `queueMicrotask` captured, so errors re-raised from callbacks can be inspected. */
export function captureMicrotasks<T>(fn: () => T): { result: T; queued: (() => void)[] } {
  const queued: (() => void)[] = [];
  const original = globalThis.queueMicrotask;
  globalThis.queueMicrotask = (task: () => void): void => void queued.push(task);
  try {
    return { result: fn(), queued };
  } finally {
    globalThis.queueMicrotask = original;
  }
}

// The first context this process allocates (nothing allocates at import time).
export const firstContext = fenceContextAlloc();

export const abortListeners = (signal: AbortSignal): number => getEventListeners(signal, 'abort').length;
export const pending = (fences: readonly DmaFence[]): number[] => fences.map((f) => f.pendingCallbacks);
