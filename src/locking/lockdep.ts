/**
 * lockdep: a lock-dependency validator for async TypeScript.
 *
 * Overview: a deadlock in async code shows up as a request that never finishes. Like the
 * kernel's lockdep, this validator records, for every lock taken, which lock classes were
 * already held, building a graph "A was held while B was taken". A new edge that closes a cycle
 * is a potential deadlock, and it is reported the first time the inverted order is seen, even
 * when the interleaving that would hang did not happen in this run. Fences take part through
 * pseudo-locks: code on the way to `signal()` holds {@link dmaFenceMap}, every fence wait
 * acquires it, and start-up priming records the order reservation lock -> memory reclaim ->
 * fence wait, so that taking a reservation lock or allocating with reclaim inside a signalling
 * section closes a cycle. Long-running fences (seed 001) have their own map, primed so that
 * long-running work may wait for ordinary fences but never the other way round.
 *
 * Held locks are tracked per async context. That needs a platform facility (Node's
 * `AsyncLocalStorage`, installed by `dmabuf/node`); without one {@link enableLockdep} reports
 * that it cannot track and leaves the validator off. Signalling sections opened by
 * `DmaFence.signal()` are synchronous and tracked on a stack of their own.
 *
 * Models `kernel/locking/lockdep.c` (the dependency graph and its reports, greatly reduced) and
 * the annotations of `drivers/dma-buf/dma-fence.c` (`dma_fence_begin_signalling()`,
 * `__dma_fence_might_wait()`, `dma_resv_lockdep()`).
 *
 * Contract:
 * - Off by default; `enableLockdep()` or `DMABUF_LOCKDEP=1` (read by `dmabuf/node`) turns it on.
 *   While off, every hook in dmabuf is one `null` check.
 * - A report names the two classes of the new edge and the acquisition sites of both ends, plus
 *   the recorded chain it closes, with stacks captured only while enabled.
 * - Mode `'throw'` (the default) raises each report as a {@link BugError} at the offending call;
 *   mode `'record'` keeps it in {@link lockdepReports} and lets the program go on.
 * - Each ordering problem is reported once per pair of classes.
 * - Nesting two locks of one ww class is legal only under one acquire context.
 * - Held-lock tracking follows `await`: a lock taken in a function is held in its continuations.
 *   A lock taken inside a callee that returns while holding it is visible to the callee's
 *   continuations, not to the caller's (the caller's context was fixed when it awaited).
 * - Something taken synchronously (`tryLock`, `beginSignalling`) in a function that then
 *   returns without awaiting is handed to the next awaiting code, which may be a sibling's; keep
 *   such sections inside the function that awaits, or use the scoped {@link signallingSection}.
 *
 * @example
 * ```ts
 * import { Mutex, enableLockdep, lockdepReports, disableLockdep } from 'dmabuf';
 * import 'dmabuf/node'; // installs async-context tracking
 * enableLockdep({ mode: 'record' });
 * const a = new Mutex('a');
 * const b = new Mutex('b');
 * await a.lock(); await b.lock(); b.unlock(); a.unlock(); // records a -> b
 * await b.lock(); await a.lock(); a.unlock(); b.unlock(); // b -> a closes the cycle
 * console.log(lockdepReports()[0]?.kind); // 'circular-dependency'
 * disableLockdep();
 * ```
 */

import { BugError } from '../base/errors.js';
import { defineOptions, invalidArgument, oneOf, optional, optionalBoolean, requiredFunction } from '../base/options.js';
import {
  type LockClass,
  dmaFenceLrMap,
  dmaFenceMap,
  fsReclaim,
  installLockdepHooks,
  type LockdepHooks,
  type SignallingCookie,
} from '../base/lockdep-hooks.js';

/** One lock as the validator sees it. */
export interface HeldLock {
  readonly cls: LockClass;
  readonly instance: object;
  readonly ctx: object | null;
  readonly site: string;
  readonly read: boolean;
}

/** Per-async-context storage of held locks, provided by the platform (`dmabuf/node`). */
export interface HeldLockTracker {
  /** The locks recorded for the current async context. */
  get(): readonly HeldLock[];
  /** Replaces them for the current context and the continuations created from here on. */
  set(held: readonly HeldLock[]): void;
  /** Runs `fn` in a new context that starts with `held`; the caller's context is untouched. */
  run<T>(held: readonly HeldLock[], fn: () => T): T;
  /** The validator was turned off: release whatever the tracking costs (hooks); it restarts on use. */
  stop?(): void;
}

/** How reports are delivered: thrown as {@link BugError}s, or recorded for inspection. */
export type LockdepMode = 'throw' | 'record';

/** Options for {@link enableLockdep}. */
export interface LockdepOptions {
  readonly mode?: LockdepMode;
  /** Capture acquisition stacks (default true): the sites in reports. */
  readonly stacks?: boolean;
}

/** A potential deadlock or rule violation found by the validator. */
export interface LockdepReport {
  readonly kind: 'circular-dependency' | 'recursive-locking' | 'long-running-callback';
  /** The classes involved: for a cycle, the new edge's from and to. */
  readonly classes: readonly string[];
  /** A kernel-splat-like text with the acquisition sites. */
  readonly message: string;
}

interface Edge {
  readonly fromSite: string;
  readonly toSite: string;
}

interface Entry extends HeldLock {
  state: 'pending' | 'held' | 'dead';
}

const EMPTY: readonly HeldLock[] = Object.freeze([]);

let tracker: HeldLockTracker | null = null;
let enabled = false;
let mode: LockdepMode = 'throw';
let captureStacks = true;
/** The dependency graph: class -> classes taken while it was held, with the first sites. */
const graph = new Map<LockClass, Map<LockClass, Edge>>();
const reports: LockdepReport[] = [];
const reportedPairs = new Set<string>();
/** For every held lock instance, the entry that holds it now: stale copies in other contexts fail this check. */
const current = new WeakMap<object, Entry>();
/** Signalling sections opened by `DmaFence.signal()`: synchronous, so a stack suffices. */
const syncSections: Entry[] = [];
const primers: (readonly LockClass[])[] = [];
const NESTED: SignallingCookie = Object.freeze({ nested: true });

const parseEnableOptions = defineOptions('enableLockdep', {
  mode: optional(oneOf(['throw', 'record'] as const)),
  stacks: optionalBoolean,
});

/** Installs the per-async-context tracker; `dmabuf/node` calls this with AsyncLocalStorage. */
export function installHeldLockTracker(t: HeldLockTracker | null): void {
  if (t !== null && !isTracker(t)) {
    throw invalidArgument('installHeldLockTracker', 'tracker', t, 'null or an object with get, set and run methods');
  }
  tracker = t;
  if (t === null && enabled) disableLockdep();
}

function isTracker(t: unknown): t is HeldLockTracker {
  if (typeof t !== 'object' || t === null) return false;
  const o = t as Record<string, unknown>;
  return (
    typeof o['get'] === 'function' &&
    typeof o['set'] === 'function' &&
    typeof o['run'] === 'function' &&
    (o['stop'] === undefined || typeof o['stop'] === 'function')
  );
}

/**
 * Turns the validator on (or changes its options when it is on).
 * @returns false, leaving it off, when no async-context tracker is installed (import
 *   `dmabuf/node` first); the reason is in the returned object's `reason`.
 */
export function enableLockdep(options?: LockdepOptions): { readonly enabled: boolean; readonly reason?: string } {
  const parsed = parseEnableOptions(options);
  mode = parsed.mode ?? mode;
  captureStacks = parsed.stacks ?? captureStacks;
  if (tracker === null) {
    return {
      enabled: false,
      reason:
        'lockdep cannot track held locks here: no async-context tracker is installed (in Node, import "dmabuf/node")',
    };
  }
  if (!enabled) {
    enabled = true;
    installLockdepHooks(hooks);
    for (const order of primers) prime(order);
  }
  return { enabled: true };
}

/** Turns the validator off; the graph and reports are kept until {@link resetLockdep}. */
export function disableLockdep(): void {
  enabled = false;
  installLockdepHooks(null);
  tracker?.stop?.();
}

/** Whether the validator is on. */
export function lockdepEnabled(): boolean {
  return enabled;
}

/** Reports so far (most useful in `'record'` mode). */
export function lockdepReports(): readonly LockdepReport[] {
  return reports.slice();
}

/** Forgets the graph and the reports, then re-applies the priming. For tests and tools. */
export function resetLockdep(): void {
  graph.clear();
  reports.length = 0;
  reportedPairs.clear();
  syncSections.length = 0;
  if (enabled) for (const order of primers) prime(order);
}

/**
 * @internal
 * Records an order of classes as if one task had taken them nested, now and after every reset
 * (the kernel primes its fence rules at boot, so one run of one device validates a driver).
 */
export function lockdepPrime(order: readonly LockClass[]): void {
  primers.push(order);
  if (enabled) prime(order);
}

/**
 * Opens a fence signalling section: from where a fence becomes visible to others until its
 * `signal()`. Sections nest; pass the cookie to {@link endSignalling}.
 * @see dma_fence_begin_signalling()
 */
export function beginSignalling(): SignallingCookie {
  return openSection(dmaFenceMap, beginSignalling);
}

/** Closes a section opened by {@link beginSignalling}. @see dma_fence_end_signalling() */
export function endSignalling(cookie: SignallingCookie): void {
  checkCookie('endSignalling', cookie);
  closeSection(cookie);
}

/**
 * Runs `fn` inside a fence signalling section, scoped: everything `fn` does, across every
 * `await`, runs in the section, and nothing after it does. Prefer it to the begin/end pair for
 * async signalling paths: the section is exactly `fn`, however it is called and awaited.
 */
export function signallingSection<T>(fn: () => T): T {
  requiredFunction(fn, 'signallingSection', 'fn');
  return scopedSection(dmaFenceMap, fn, signallingSection);
}

/** {@link signallingSection} for long-running fences. */
export function lrSignallingSection<T>(fn: () => T): T {
  requiredFunction(fn, 'lrSignallingSection', 'fn');
  return scopedSection(dmaFenceLrMap, fn, lrSignallingSection);
}

/** {@link beginSignalling} for long-running fences (seed 001): their own pseudo-lock. */
export function lrBeginSignalling(): SignallingCookie {
  return openSection(dmaFenceLrMap, lrBeginSignalling);
}

/** Closes a section opened by {@link lrBeginSignalling}. */
export function lrEndSignalling(cookie: SignallingCookie): void {
  checkCookie('lrEndSignalling', cookie);
  closeSection(cookie);
}

/**
 * Runs `fn` as a task of its own for the validator: it starts holding nothing, and what it takes
 * is not held by the caller. Use it for work that is started from a locked region but runs
 * independently (a queued work item, a background flush), and in tests that play two tasks.
 */
export function lockdepTask<T>(fn: () => T): T {
  requiredFunction(fn, 'lockdepTask', 'fn');
  // A fresh list each time: a store identical to the current one would not open a new scope.
  return tracker !== null ? tracker.run([], fn) : fn();
}

/** Declares that the caller may allocate memory with reclaim here (the kernel's `fs_reclaim` annotation). */
export function mightReclaim(): void {
  if (enabled) recordReclaim(mightReclaim);
}

// Prime the kernel's fence rules: reclaim may wait for fences; long-running work may take
// reservation locks, allocate and wait for ordinary fences, so an ordinary section that waits on
// a long-running fence closes a cycle. dma-resv adds the reservation class to the first order.
lockdepPrime([fsReclaim, dmaFenceMap]);
lockdepPrime([dmaFenceLrMap, fsReclaim]);

const hooks: LockdepHooks = {
  request(cls, instance, ctx, trylock) {
    const entry: Entry = { cls, instance, ctx, site: site(hooks.request), read: false, state: 'pending' };
    // A trylock cannot wait, so it can neither deadlock nor recurse: nothing to check or record
    // (the lock still counts as held once taken, for what is taken under it).
    if (trylock) return entry;
    for (const h of heldNow()) {
      if (h.instance === instance) continue;
      if (h.cls === cls) {
        if (cls.kind === 'ww' && ctx !== null && h.ctx === ctx) continue;
        recursive(h, entry);
        continue;
      }
      addEdge(h, entry);
    }
    return entry;
  },
  enter(token) {
    push(token as Entry);
  },
  abandon(token) {
    (token as Entry).state = 'dead';
  },
  acquired(token) {
    const entry = token as Entry;
    entry.state = 'held';
    current.set(entry.instance, entry);
  },
  release(instance) {
    const entry = current.get(instance);
    if (entry === undefined) return;
    entry.state = 'dead';
    current.delete(instance);
  },
  mightWait(longRunning) {
    const target = longRunning ? dmaFenceLrMap : dmaFenceMap;
    const where = site(hooks.mightWait);
    const wait: Entry = { cls: target, instance: target, ctx: null, site: where, read: false, state: 'dead' };
    for (const h of heldNow()) if (h.cls !== target) addEdge(h, wait);
  },
  mightReclaim() {
    recordReclaim(hooks.mightReclaim);
  },
  beginSignalling(longRunning) {
    return openSection(longRunning ? dmaFenceLrMap : dmaFenceMap, null);
  },
  endSignalling(cookie) {
    closeSection(cookie);
  },
  task(fn) {
    return lockdepTask(fn);
  },
  plainCallbackOnLongRunning(what) {
    report(
      'long-running-callback',
      [dmaFenceLrMap.name],
      `WARNING: plain callback on a long-running fence\n  fence: ` +
        `${what}\n  added at: ${site(hooks.plainCallbackOnLongRunning)}\n` +
        '  A long-running fence may never complete; acknowledge that with lrAddCallback().',
      `lr-callback:${what}`,
    );
  },
};

/** Records that the caller of `entry` may allocate with reclaim. */
function recordReclaim(entry: ValidatorEntry): void {
  const alloc: Entry = {
    cls: fsReclaim,
    instance: fsReclaim,
    ctx: null,
    site: site(entry),
    read: false,
    state: 'dead',
  };
  for (const h of heldNow()) if (h.cls !== fsReclaim) addEdge(h, alloc);
}

/** Held locks of the current async context plus the synchronous signalling sections, still valid. */
function heldNow(): HeldLock[] {
  const held: HeldLock[] = [];
  const list = tracker?.get() ?? EMPTY;
  for (const h of list) if (isHeld(h as Entry)) held.push(h);
  for (const h of syncSections) if (isHeld(h)) held.push(h);
  return held;
}

function isHeld(entry: Entry): boolean {
  return entry.state === 'held' && current.get(entry.instance) === entry;
}

/** Adds `entry` to the current async context, dropping what no longer counts. */
function push(entry: Entry): void {
  if (tracker === null) return;
  const next: HeldLock[] = [];
  for (const h of tracker.get()) {
    const e = h as Entry;
    if (e.state === 'held' ? current.get(e.instance) === e : e.state === 'pending') next.push(e);
  }
  next.push(entry);
  tracker.set(next);
}

/**
 * Opens a signalling section for the caller of `entry`; with `entry` null, the synchronous
 * section of `DmaFence.signal()`.
 */
function openSection(map: LockClass, entry: ValidatorEntry | null): SignallingCookie {
  if (!enabled) return NESTED;
  for (const h of heldNow()) if (h.cls === map) return NESTED;
  const cookie = {};
  // signal() opens a section for every fence with callbacks: no stack for those (it would cost
  // more than the signal), the lock taken inside still shows where it was taken.
  const where =
    entry !== null
      ? site(entry)
      : `inside ${map === dmaFenceMap ? 'DmaFence' : 'long-running DmaFence'}.signal(), in a fence callback`;
  const section: Entry = { cls: map, instance: cookie, ctx: null, site: where, read: true, state: 'held' };
  current.set(cookie, section);
  if (entry !== null) push(section);
  else syncSections.push(section);
  return cookie;
}

function scopedSection<T>(map: LockClass, fn: () => T, caller: ValidatorEntry): T {
  if (!enabled || tracker === null) return fn();
  const held = heldNow();
  if (held.some((h) => h.cls === map)) return fn();
  const cookie = {};
  const entry: Entry = { cls: map, instance: cookie, ctx: null, site: site(caller), read: true, state: 'held' };
  current.set(cookie, entry);
  const close = (): void => {
    entry.state = 'dead';
    current.delete(cookie);
  };
  let result: T;
  try {
    result = tracker.run([...(tracker.get() as Entry[]).filter(isHeld), entry], fn);
  } catch (err) {
    close();
    throw err;
  }
  if (result instanceof Promise) return result.finally(close) as T;
  close();
  return result;
}

function checkCookie(fn: string, cookie: unknown): void {
  if (typeof cookie !== 'object' || cookie === null) {
    throw invalidArgument(fn, 'cookie', cookie, 'the cookie its begin call returned');
  }
}

function closeSection(cookie: SignallingCookie): void {
  if (cookie === NESTED) return;
  const entry = current.get(cookie);
  if (entry === undefined) {
    if (enabled) throw new BugError('endSignalling: this cookie is not an open signalling section (ended twice?)');
    return;
  }
  entry.state = 'dead';
  current.delete(cookie);
  const i = syncSections.lastIndexOf(entry);
  if (i >= 0) syncSections.splice(i, 1);
}

function prime(order: readonly LockClass[]): void {
  const held: Entry[] = [];
  for (const cls of order) {
    const entry: Entry = {
      cls,
      instance: cls,
      ctx: null,
      site: 'priming at enableLockdep()',
      read: false,
      state: 'held',
    };
    for (const h of held) addEdge(h, entry);
    held.push(entry);
  }
}

/** A function through which code outside the validator called in: a hook or an exported function. */
// biome-ignore lint/suspicious/noExplicitAny: any function object can mark a stack boundary
type ValidatorEntry = (...args: any[]) => unknown;

/** Frames kept per acquisition site. */
const SITE_FRAMES = 8;

/**
 * Where the validator was called from: the stack of the caller of `entry`, which must be the
 * validator function that the caller called (a hook or an exported function).
 *
 * Why not filter frames by this module's file name: in a single-file bundle every frame has the
 * bundle's name, so the filter would drop the whole stack or nothing; and reading
 * `import.meta.url` crashes CJS and IIFE bundles. `Error.captureStackTrace(target, fn)` (V8, so
 * Node and Chromium; JavaScriptCore since 2023) leaves out `fn` and every frame above it,
 * wherever the code lives. Where it is missing, the validator's own frames stay in the site.
 */
function site(entry: ValidatorEntry): string {
  if (!captureStacks) return '(stacks off)';
  const limit = Error.stackTraceLimit;
  const target: { stack?: string } = {};
  try {
    if (typeof Error.captureStackTrace === 'function') {
      Error.stackTraceLimit = SITE_FRAMES;
      Error.captureStackTrace(target, entry);
    } else {
      target.stack = new Error().stack ?? '';
    }
  } finally {
    Error.stackTraceLimit = limit;
  }
  // The first line is the message line of the capture, not a frame.
  return (target.stack ?? '')
    .split('\n')
    .slice(1, SITE_FRAMES + 1)
    .join('\n');
}

function addEdge(from: HeldLock, to: HeldLock): void {
  let out = graph.get(from.cls);
  if (out?.has(to.cls) === true) return;
  const path = findPath(to.cls, from.cls);
  if (path !== null) {
    circular(from, to, path);
    return;
  }
  if (out === undefined) graph.set(from.cls, (out = new Map()));
  out.set(to.cls, { fromSite: from.site, toSite: to.site });
}

/** A path of classes from `start` to `goal` in the graph (breadth first), or null. */
function findPath(start: LockClass, goal: LockClass): LockClass[] | null {
  const previous = new Map<LockClass, LockClass | null>([[start, null]]);
  const queue = [start];
  for (let i = 0; i < queue.length; i++) {
    const cls = queue[i]!;
    if (cls === goal) {
      const path: LockClass[] = [];
      for (let c: LockClass | null = cls; c !== null; c = previous.get(c) ?? null) path.unshift(c);
      return path;
    }
    for (const next of graph.get(cls)?.keys() ?? []) {
      if (!previous.has(next)) {
        previous.set(next, cls);
        queue.push(next);
      }
    }
  }
  return null;
}

function circular(from: HeldLock, to: HeldLock, path: readonly LockClass[]): void {
  const chain = path.map((c) => c.name).join(' -> ');
  const lines = [
    'WARNING: possible circular locking dependency detected',
    `  new dependency: ${from.cls.name} -> ${to.cls.name}`,
    `  ${from.cls.name} was acquired at:`,
    indent(from.site),
    `  ${to.cls.name} is being acquired at:`,
    indent(to.site),
    `  but the reverse chain is already recorded: ${chain}`,
  ];
  for (let i = 0; i + 1 < path.length; i++) {
    const edge = graph.get(path[i]!)!.get(path[i + 1]!)!;
    lines.push(`  ${path[i]!.name} -> ${path[i + 1]!.name}: ${path[i]!.name} held at:`, indent(edge.fromSite));
    lines.push(`    while ${path[i + 1]!.name} was acquired at:`, indent(edge.toSite));
  }
  lines.push('  Two tasks taking these in the two orders can wait for each other for ever.');
  report(
    'circular-dependency',
    [from.cls.name, to.cls.name],
    lines.join('\n'),
    `cycle:${from.cls.name}>${to.cls.name}`,
  );
}

function recursive(held: HeldLock, entry: HeldLock): void {
  const why =
    entry.cls.kind === 'ww'
      ? 'two locks of one ww class nest only under one acquire context'
      : 'a second lock of the same class while one is held';
  const message = [
    'WARNING: possible recursive locking detected',
    `  class ${entry.cls.name}: ${why}`,
    '  already held at:',
    indent(held.site),
    '  now acquiring at:',
    indent(entry.site),
  ].join('\n');
  report('recursive-locking', [entry.cls.name], message, `recursive:${entry.cls.name}`);
}

function report(kind: LockdepReport['kind'], classes: readonly string[], message: string, key: string): void {
  if (reportedPairs.has(key)) return;
  reportedPairs.add(key);
  reports.push({ kind, classes, message });
  if (mode === 'throw') throw new BugError(message);
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((line) => `      ${line.trim()}`)
    .join('\n');
}
