/**
 * The package's smoke program: what a user's first program does with fences, locks and the heap,
 * plus the validator with a tracker of its own. The package tests run this same code from the
 * installed tarball in plain Node (ESM and `require()`), type-check it as a strict consumer, and
 * bundle it with esbuild (ESM and IIFE) for Chromium; each run must print exactly
 * {@link SMOKE_EXPECTED}.
 *
 * It receives the library as a parameter instead of importing it, so one text serves `import`
 * and `require()`; the only import is type-only. Plain syntax only (no `using`), so Node 20 runs
 * it after type stripping without any lowering.
 *
 * @example
 * ```ts
 * import * as dmabuf from 'dmabuf';
 * import { smoke } from './smoke-program.js';
 * await smoke(dmabuf, console.log);
 * ```
 */
import type * as Dmabuf from 'dmabuf';

export type Print = (line: string) => void;

/** What {@link smoke} prints, line by line, wherever it runs. */
export const SMOKE_EXPECTED: readonly string[] = Object.freeze([
  'fence: callback ran 1 time, signal true then false, wait true, late addCallback false',
  'fence: merged 2 timelines into an array of 2, signaled after both',
  'lock: 2 transactions over 2 objects in opposite orders committed, both objects unlocked',
  'heap: 100000 bytes in a 131072-byte buffer, first byte 7, pooled 131072 bytes after the drain',
  'lockdep: off without a tracker (it says so); with one, circular-dependency, both sites start at a lock() call',
  'library: TtmDevice, TtmBufferObject, DrmExec, Syncobj loaded',
  'smoke: done',
]);

const ops = { getDriverName: () => 'smoke', getTimelineName: () => 'smoke-ring' };

async function fences(m: typeof Dmabuf, print: Print): Promise<void> {
  const fence = new m.DmaFence(ops, m.fenceContextAlloc(), 1);
  let ran = 0;
  fence.addCallback(() => ran++);
  const waiting = fence.wait({ timeout: 1000 });
  const first = fence.signal();
  const second = fence.signal();
  const waited = await waiting;
  const late = fence.addCallback(() => ran++);
  print(`fence: callback ran ${ran} time, signal ${first} then ${second}, wait ${waited}, late addCallback ${late}`);

  const a = new m.DmaFence(ops, m.fenceContextAlloc(), 1);
  const b = new m.DmaFence(ops, m.fenceContextAlloc(), 1);
  const merged = m.unwrapMerge(a, b);
  const count = merged instanceof m.DmaFenceArray ? merged.fences.length : 1;
  a.signal();
  const afterOne = merged.isSignaled();
  b.signal();
  const done = await merged.wait({ timeout: 1000 });
  print(`fence: merged 2 timelines into an array of ${count}, signaled after ${!afterOne && done ? 'both' : '?'}`);
}

async function locks(m: typeof Dmabuf, print: Print): Promise<void> {
  // A locked object is kept alive by DrmExec: get() and put() are its reference count.
  const object = (name: string): Dmabuf.DrmExecObject => ({ resv: new m.DmaResv({ name }), get() {}, put() {} });
  const objects = [object('first'), object('second')];
  const pause = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 1));
  const transaction = async (order: readonly Dmabuf.DrmExecObject[]): Promise<boolean> => {
    const exec = new m.DrmExec({ signal: AbortSignal.timeout(5000) });
    try {
      await exec.untilAllLocked(async (e) => {
        for (const obj of order) {
          await e.prepareObj(obj, 1);
          await pause(); // the other transaction runs meanwhile: the orders collide
        }
      });
      return exec.objects.length === 2;
    } finally {
      await exec[Symbol.asyncDispose]();
    }
  };
  const [x, y] = objects as [Dmabuf.DrmExecObject, Dmabuf.DrmExecObject];
  const results = await Promise.all([transaction([x, y]), transaction([y, x])]);
  const committed = results.filter(Boolean).length;
  const unlocked = objects.every((o) => !o.resv.isLocked);
  print(
    `lock: ${committed} transactions over 2 objects in opposite orders committed, ` +
      `${unlocked ? 'both objects unlocked' : 'LOCKED'}`,
  );
}

async function heap(m: typeof Dmabuf, print: Print): Promise<void> {
  const dmaHeap = new m.DmaHeap({ budgetBytes: 1 << 20 });
  const buf = dmaHeap.allocate(100_000);
  await buf.beginCpuAccess({ write: true });
  buf.bytes().set([7, 8, 9]);
  buf.endCpuAccess();
  const size = buf.buffer.byteLength;
  const first = buf.bytes()[0];
  buf.put();
  await dmaHeap.drain();
  const pooled = dmaHeap.stats().pooledBytes;
  await dmaHeap[Symbol.asyncDispose]();
  print(`heap: 100000 bytes in a ${size}-byte buffer, first byte ${first}, pooled ${pooled} bytes after the drain`);
}

/**
 * The validator needs a held-lock tracker: `dmabuf/node` installs one on AsyncLocalStorage. Here
 * a plain variable serves, which is right for code that takes its locks one task at a time.
 */
async function lockdep(m: typeof Dmabuf, print: Print): Promise<void> {
  const without = m.enableLockdep({ mode: 'record' });
  const saysWhy = !without.enabled && (without.reason ?? '').includes('tracker');
  let held: readonly Dmabuf.HeldLock[] = [];
  m.installHeldLockTracker({
    get: () => held,
    set: (next) => {
      held = next;
    },
    run: (next, fn) => {
      const saved = held;
      held = next;
      try {
        return fn();
      } finally {
        held = saved;
      }
    },
  });
  try {
    const enabled = m.enableLockdep({ mode: 'record' }).enabled;
    const a = new m.Mutex('smoke.a');
    const b = new m.Mutex('smoke.b');
    const takeInOrder = async (first: Dmabuf.Mutex, second: Dmabuf.Mutex): Promise<void> => {
      await first.lock();
      await second.lock();
      second.unlock();
      first.unlock();
    };
    await takeInOrder(a, b);
    await takeInOrder(b, a);
    const report = m.lockdepReports().find((r) => r.classes.includes('smoke.a'));
    const message = report?.message ?? '';
    // The first frame of each site, right after its "... acquired at:" line.
    const firstFrames = message
      .split('\n')
      .flatMap((line, i, lines) => (/acquired at:$/.test(line) ? [lines[i + 1] ?? ''] : []));
    const atLock = firstFrames.length >= 2 && firstFrames.every((frame) => /\block\b/.test(frame));
    print(
      `lockdep: ${saysWhy ? 'off without a tracker (it says so)' : 'ON WITHOUT A TRACKER'}; ` +
        `with one, ${enabled ? report?.kind : 'NOT ENABLED'}, ` +
        `${atLock ? 'both sites start at a lock() call' : `sites: ${firstFrames.join(' | ')}`}`,
    );
  } finally {
    m.disableLockdep();
    m.resetLockdep();
    m.installHeldLockTracker(null);
  }
}

/** Runs every part in order, printing one line each (see {@link SMOKE_EXPECTED}). */
export async function smoke(m: typeof Dmabuf, print: Print): Promise<void> {
  await fences(m, print);
  await locks(m, print);
  await heap(m, print);
  await lockdep(m, print);
  const names = ['TtmDevice', 'TtmBufferObject', 'DrmExec', 'Syncobj'] as const;
  const loaded = names.filter((n) => typeof m[n] === 'function');
  print(`library: ${loaded.join(', ')} loaded`);
  print('smoke: done');
}
