/**
 * Hostile input against the whole public API (issue 10's "done when"): every constructor, method
 * and function that `dmabuf` exports is called from plain JavaScript with hostile values at each
 * argument position (wrong types, NaN, ±Infinity, huge and negative numbers, things that look like
 * an AbortSignal but are not, unknown option names), the other arguments valid. Each call must
 * fail with an InvalidArgumentError that names what arrived, reject (not throw) when the call
 * returns a promise, and leave a fresh object of the class usable afterwards.
 *
 * The table below lists, per export, how to make an object, how to use it (the usability check)
 * and each method's arguments: a valid example and the predicate of what is acceptable, so a
 * hostile value that happens to be acceptable (undefined for an optional argument) is skipped.
 * A completeness check compares the table with the module's real exports and prototypes, so a
 * new method cannot escape the sweep without a stated reason. Values are drawn with fast-check
 * from a seeded generator; a failure prints the seed (TEST_SEED replays it).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as api from '../src/index.js';
import { describeValue } from '../src/base/errors.js';
import { isAbortSignal, isPlainObject } from '../src/base/options.js';
import { mockFence, testSeed } from './helpers/mock-fence.js';

const {
  DmaFence,
  DmaFenceArray,
  DmaFenceChain,
  DmaHeap,
  DmaResv,
  DrmExec,
  InvalidArgumentError,
  Kref,
  Mutex,
  Syncobj,
  TtmBufferObject,
  TtmDevice,
  TtmLruList,
  TtmMemType,
  TtmOperationCtx,
  WwAcquireCtx,
  WwClass,
  WwMutex,
  reservationWwClass,
} = api;

// ---------------------------------------------------------------------------------------------
// Hostile values

const fakeSignal = {
  aborted: false,
  reason: undefined,
  addEventListener(): void {},
  removeEventListener(): void {},
  throwIfAborted(): void {},
};

/** What a careless or hostile caller passes. */
const HOSTILE: readonly unknown[] = [
  undefined,
  null,
  Number.NaN,
  Infinity,
  -Infinity,
  -1,
  -0.5,
  0.5,
  2 ** 53,
  1e308,
  -1e308,
  0,
  1,
  '',
  'x',
  '1',
  true,
  false,
  1n,
  Symbol('hostile'),
  {},
  [],
  [null],
  () => undefined,
  new AbortController(),
  fakeSignal,
  Object.create(AbortSignal.prototype),
  new Map(),
  { bogus: 1 },
  Promise.resolve(1),
  new ArrayBuffer(8),
];

// ---------------------------------------------------------------------------------------------
// Argument descriptions

interface Arg {
  /** A valid value for this position (fresh per call where it matters). */
  readonly valid: (target: unknown) => unknown;
  /** Whether `value` is acceptable here (then it is not a hostile test case). */
  readonly accepts: (value: unknown) => boolean;
  /** For an options object: its options, fuzzed one by one as well. */
  readonly options?: Readonly<Record<string, Arg>>;
  /** For an options object: the options that must be present. */
  readonly required?: readonly string[];
}

/**
 * A valid value the table cannot make here (a resource of a buffer object): positions after it
 * are not fuzzed, because the checks run in argument order and would stop at this one.
 */
const UNAVAILABLE = Symbol('unavailable');

const isIndex = (v: unknown): boolean => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const arg = (valid: unknown, accepts: (v: unknown) => boolean): Arg => ({
  valid: () => (typeof valid === 'function' ? (valid as () => unknown)() : valid),
  accepts,
});
const make = (valid: (target: unknown) => unknown, accepts: (v: unknown) => boolean): Arg => ({ valid, accepts });
/** An argument of class `ctor` that the table cannot make valid (see UNAVAILABLE). */
const unavailable = (ctor: abstract new (...args: never[]) => unknown): Arg =>
  make(
    () => UNAVAILABLE,
    (v) => v instanceof ctor,
  );
const optional = (a: Arg): Arg => ({ ...a, valid: () => undefined, accepts: (v) => v === undefined || a.accepts(v) });

const A = {
  any: arg(undefined, () => true),
  index: (valid = 1) => arg(valid, isIndex),
  positive: (valid = 1) => arg(valid, (v) => isIndex(v) && (v as number) >= 1),
  u32: (valid = 1) => arg(valid, (v) => isIndex(v) && (v as number) <= 0xffffffff),
  finite: (valid = 1) => arg(valid, (v) => typeof v === 'number' && Number.isFinite(v)),
  timeout: arg(undefined, (v) => v === undefined || v === Infinity || (typeof v === 'number' && v >= 0)),
  signal: arg(undefined, (v) => v === undefined || isAbortSignal(v)),
  bool: (valid = true) => arg(valid, (v) => typeof v === 'boolean'),
  string: (valid = 'name') => arg(valid, (v) => typeof v === 'string'),
  name: (valid = 'name') => arg(valid, (v) => typeof v === 'string' && v !== ''),
  fn: (valid: unknown = () => undefined) =>
    arg(
      () => valid,
      (v) => typeof v === 'function',
    ),
  pagesOrAll: arg(1, (v) => v === Infinity || isIndex(v)),
  fence: make(
    () => mockFence(),
    (v) => v instanceof DmaFence,
  ),
  plainFence: make(
    () => mockFence(),
    (v) => v instanceof DmaFence && !v.isContainer,
  ),
  usage: arg('write', (v) => [0, 1, 2, 3, 'kernel', 'write', 'read', 'bookkeep'].includes(v as never)),
  instance: <T>(ctor: abstract new (...args: never[]) => T, valid: () => T) => make(valid, (v) => v instanceof ctor),
  oneOf: (values: readonly unknown[]) => arg(values[0], (v) => values.includes(v)),
  /** An options object; `required` options are present in the valid example. */
  opts(options: Readonly<Record<string, Arg>>, required: readonly string[] = []): Arg {
    const valid = (target: unknown): unknown => {
      if (required.length === 0) return undefined;
      const out: Record<string, unknown> = {};
      for (const key of required) out[key] = options[key]!.valid(target);
      return out;
    };
    const accepts = (v: unknown): boolean => {
      if (v === undefined) return required.length === 0;
      if (!isPlainObject(v)) return false;
      for (const key of Object.keys(v)) if (!(key in options)) return false;
      for (const [key, option] of Object.entries(options)) {
        const given = v[key];
        // An option set to undefined counts as left out, as the parsers treat it.
        if (given === undefined) {
          if (required.includes(key)) return false;
        } else if (!option.accepts(given)) {
          return false;
        }
      }
      return true;
    };
    return { valid, accepts, options, required };
  },
};

const signalOnly = A.opts({ signal: A.signal });

/** WorkQueue.queue's second argument: a name, or `{ name, signal }`. */
function nameOrOptions(options: Arg): Arg {
  return { ...options, accepts: (v) => typeof v === 'string' || options.accepts(v) };
}

// ---------------------------------------------------------------------------------------------
// The table

interface Method {
  readonly name: string;
  readonly args: readonly Arg[];
  /** Returns a promise: must reject, never throw. */
  readonly async?: boolean;
}

interface Spec {
  /** Makes a fresh object (for methods) or nothing (a class used only statically). */
  readonly make?: () => unknown;
  /** Uses an object after a failed call and asserts it works (and releases it). */
  readonly use?: (obj: never) => unknown;
  readonly ctor?: readonly Arg[];
  readonly methods?: readonly Method[];
  readonly statics?: readonly Method[];
  /** Methods and statics that take no argument: nothing to fuzz. */
  readonly noArgs?: readonly string[];
  /** Members not fuzzed, with the reason. */
  readonly exempt?: Readonly<Record<string, string>>;
}

const m = (name: string, ...args: Arg[]): Method => ({ name, args });
const p = (name: string, ...args: Arg[]): Method => ({ name, args, async: true });

const wd = new WwClass('fuzz-wd', 'wait-die');
const ctxArg = (cls: InstanceType<typeof WwClass> = reservationWwClass): Arg =>
  make(
    () => null,
    (v) => v === undefined || v === null || (v instanceof WwAcquireCtx && v.wwClass === cls),
  );
const ttmCtx = A.instance(TtmOperationCtx, () => new TtmOperationCtx());
const fenceArray = (min: number): Arg =>
  make(
    () => [mockFence(), mockFence()],
    (v) => Array.isArray(v) && v.length >= min && v.every((f) => f instanceof DmaFence && !f.isContainer),
  );
const execObject = (): { resv: InstanceType<typeof DmaResv>; get(): void; put(): void } => ({
  resv: new DmaResv(),
  get() {},
  put() {},
});
const isExecObject = (v: unknown): boolean =>
  typeof v === 'object' && v !== null && (v as { resv?: unknown }).resv instanceof DmaResv;
const lockItem = (): api.LockItem => api.wwMutexLockItem(new WwMutex(wd, 'item'), new WwAcquireCtx(wd));
const isLockItem = (v: unknown): boolean =>
  typeof v === 'object' &&
  v !== null &&
  typeof (v as { object?: unknown }).object === 'object' &&
  typeof (v as { ops?: { slowLock?: unknown } }).ops?.slowLock === 'function';
const placementArg = make(
  () => [{ memType: TtmMemType.System }],
  (v) => Array.isArray(v) && v.every((place) => isPlainObject(place) && isIndex(place['memType'])),
);
const placeArg = make(
  () => ({ memType: TtmMemType.System }),
  (v) => isPlainObject(v) && isIndex(v['memType']),
);

async function ttmBo(): Promise<{ device: InstanceType<typeof TtmDevice>; bo: InstanceType<typeof TtmBufferObject> }> {
  const device = new TtmDevice({ vramBytes: 1 << 16, quiet: true });
  const bo = await TtmBufferObject.initReserved(device, { size: 4096, placement: [{ memType: TtmMemType.System }] });
  return { device, bo };
}

async function useBo(made: { device: InstanceType<typeof TtmDevice>; bo: InstanceType<typeof TtmBufferObject> }) {
  const { device, bo } = made;
  if (!bo.resv.isLocked) await bo.reserve();
  bo.kmap().fill(1);
  bo.unreserve();
  bo.put();
  await device.fini();
}

/** Members only the library calls (marked `@internal`), with the values it checked already. */
const INTERNAL = '@internal: called by the scheduler, entity or run queue with values they checked';
/** Constructors users never call: the library makes these objects. */
const MADE_BY = (maker: string): string => `@internal constructor: made by ${maker}`;

/** Scheduler ops for fuzzed schedulers: jobs complete at once. */
const schedOps = { runJob: () => null, timedOutJob: () => 'reset' as const, freeJob: () => {} };
/** A scheduler and entity for the fuzzed jobs (never torn down: no timer, microtask work only). */
const fuzzSched = new api.DrmGpuScheduler({ name: 'fuzz-ring', ops: schedOps });
const fuzzEntity = new api.DrmSchedEntity({ schedulers: [fuzzSched], name: 'fuzz-client' });
const freshJob = (): InstanceType<typeof api.DrmSchedJob> => new api.DrmSchedJob(fuzzEntity);
const isFreshJob = (v: unknown): boolean => v instanceof api.DrmSchedJob && v.state === 'initialized';
const isScheduler = (v: unknown): boolean => v instanceof api.DrmGpuScheduler;
const priorityArg = arg(2, (v) => [0, 1, 2, 3, 'kernel', 'high', 'normal', 'low'].includes(v as never));
const errnoArg = arg('ENODEV', (v) => typeof v === 'string' && Object.hasOwn(api.ERRNO, v));
const count30 = (valid = 1) => arg(valid, (v) => isIndex(v) && (v as number) <= 0x3fff_ffff);
/** A locked reservation object: a job's resv dependencies are read under the lock. */
const lockedResv = (): InstanceType<typeof DmaResv> => {
  const resv = new DmaResv();
  resv.tryLock();
  return resv;
};
const syncTarget = { name: 'fuzz-target', resv: new DmaResv() };
const isSyncTarget = (v: unknown): boolean => (v as { resv?: unknown } | null)?.resv instanceof DmaResv;
const regionBuffer = (): SharedArrayBuffer => new api.SharedFenceRegion({ slots: 1 }).buffer;

/** A shared buffer and its share; `self` is the object the methods are called on. */
function sharedBuffer(): {
  heap: InstanceType<typeof DmaHeap>;
  buffer: InstanceType<typeof api.DmaBuf>;
  share: InstanceType<typeof api.DmaBufShare>;
  self: unknown;
} {
  const heap = new DmaHeap({ shared: true });
  const buffer = heap.allocate(4096);
  const share = api.shareDmaBuf(buffer);
  return { heap, buffer, share, self: share };
}

async function closeShared(made: ReturnType<typeof sharedBuffer>, view?: InstanceType<typeof api.ImportedDmaBuf>) {
  view?.close();
  made.share.close();
  assert.equal(made.share.released, true, 'no import holds the buffer');
  made.buffer.put();
  await made.heap[Symbol.asyncDispose]();
}

/** Error classes take any message, like Error itself. */
const ERROR_CLASS = 'an Error subclass: takes any message and options, as Error does';

const SPECS: Readonly<Record<string, Spec>> = {
  AlreadyLockedError: { exempt: { constructor: ERROR_CLASS } },
  BugError: { exempt: { constructor: ERROR_CLASS } },
  DmaBufError: { exempt: { constructor: ERROR_CLASS } },
  FenceTimeoutError: { exempt: { constructor: ERROR_CLASS } },
  InvalidArgumentError: { exempt: { constructor: ERROR_CLASS } },
  NotSubmittedError: { exempt: { constructor: ERROR_CLASS } },
  WwDeadlockError: { exempt: { constructor: ERROR_CLASS } },

  DeferredFreeList: {
    make: () => new api.DeferredFreeList(),
    use: (list: InstanceType<typeof api.DeferredFreeList>) => {
      list.deferredFree({}, () => undefined, 1);
      assert.equal(list.pendingPages, 1);
      list[Symbol.dispose]();
      assert.equal(list.pendingPages, 0);
    },
    ctor: [A.opts({ name: A.string(), schedule: A.fn(), onError: A.fn(), sliceMs: A.timeout })],
    methods: [m('deferredFree', A.any, A.fn(), A.index()), p('drain', signalOnly)],
    noArgs: ['toString'],
  },
  DisposableStore: {
    make: () => new api.DisposableStore(),
    use: (store: InstanceType<typeof api.DisposableStore>) => {
      let ran = false;
      store.add(api.toDisposable(() => (ran = true)));
      store[Symbol.dispose]();
      assert.equal(ran, true);
    },
    methods: [
      m(
        'add',
        make(
          () => api.toDisposable(() => undefined),
          (v) => typeof (v as { [Symbol.dispose]?: unknown } | null)?.[Symbol.dispose] === 'function',
        ),
      ),
    ],
  },
  DmaBuf: {
    make: () => {
      const heap = new DmaHeap();
      return { heap, buf: heap.allocate(4096) };
    },
    use: async ({ heap, buf }: { heap: InstanceType<typeof DmaHeap>; buf: InstanceType<typeof api.DmaBuf> }) => {
      await buf.beginCpuAccess({ write: true });
      buf.bytes().fill(3);
      buf.endCpuAccess();
      buf.put();
      await heap[Symbol.asyncDispose]();
    },
    ctor: [
      make(
        () => ({ heap: new DmaHeap(), buffer: new ArrayBuffer(4096), requestedSize: 4096, release: () => undefined }),
        () => false,
      ),
    ],
    methods: [
      p('beginCpuAccess', A.opts({ write: A.bool(), timeout: A.timeout, signal: A.signal }, ['write'])),
      m(
        'setAccessHook',
        make(
          () => null,
          (v) =>
            v === null ||
            (typeof (v as { begin?: unknown } | null)?.begin === 'function' &&
              typeof (v as { end?: unknown }).end === 'function'),
        ),
      ),
    ],
    noArgs: ['bytes', 'get', 'put', 'endCpuAccess', 'toString'],
    exempt: {
      release: 'protected Kref hook (runs at the last put)',
      refName: 'protected Kref hook (names it)',
    },
  },
  DmaFence: {
    make: () => mockFence(),
    use: (fence: InstanceType<typeof DmaFence>) => {
      assert.equal(fence.pendingCallbacks, 0, 'no callback may stay behind');
      assert.equal(fence.signal(), true);
    },
    ctor: [
      make(
        () => ({ getDriverName: () => 'd', getTimelineName: () => 't' }),
        (v) => typeof (v as { getDriverName?: unknown } | null)?.getDriverName === 'function',
      ),
      A.index(),
      A.index(),
      A.opts({ seqno64: A.bool(), longRunning: A.bool() }),
    ],
    methods: [
      m('signal', optional(A.finite())),
      m(
        'setError',
        make(
          () => new Error('failed'),
          (v) => v instanceof Error || (typeof v === 'string' && v in api.ERRNO),
        ),
      ),
      m('addCallback', A.fn()),
      m('lrAddCallback', A.fn()),
      m('removeCallback', A.fn()),
      p('wait', A.opts({ timeout: A.timeout, signal: A.signal })),
      m('setDeadline', A.finite()),
    ],
    statics: [
      p('waitAny', fenceArray(1), A.opts({ timeout: A.timeout, signal: A.signal })),
      m('isLater', A.fence, A.fence),
      m('isLaterOrSame', A.fence, A.fence),
      m('later', A.fence, A.fence),
      m('allocatePrivateStub', optional(A.finite())),
    ],
    noArgs: ['isSignaled', 'enableSwSignaling', 'describe', 'toString', 'getStub'],
  },
  DmaFenceArray: {
    make: () => new DmaFenceArray([mockFence(), mockFence()], api.fenceContextAlloc(), 1),
    use: (array: InstanceType<typeof DmaFenceArray>) => {
      array.enableSwSignaling();
      for (const f of array.fences) f.signal();
      assert.equal(array.signaledFlag, true);
    },
    ctor: [fenceArray(1), A.index(), A.index(), A.opts({ signalOnAny: A.bool() })],
    statics: [m('matchContext', A.fence, A.index()), m('members', A.fence)],
    exempt: { toArray: 'takes any value: null for anything but an array, the kernel’s to_dma_fence_array()' },
  },
  DmaFenceChain: {
    make: () => new DmaFenceChain(null, mockFence(), 1),
    use: (chain: InstanceType<typeof DmaFenceChain>) => {
      chain.fence.signal();
      assert.equal(chain.isSignaled(), true);
    },
    ctor: [
      make(
        () => null,
        (v) => v === null || v instanceof DmaFence,
      ),
      A.plainFence,
      A.index(),
      A.opts({ gc: A.oneOf(['walk', 'queue']) }),
    ],
    statics: [
      m('contained', A.fence),
      m('walk', A.fence),
      m('iterate', A.fence),
      m('findSeqno', A.fence, A.index()),
      m('reachableStats', A.fence),
      m('collectQueued', optional(A.index())),
    ],
    exempt: { toChain: 'takes any value: null for anything but a chain node, the kernel’s to_dma_fence_chain()' },
  },
  DmaHeap: {
    make: () => new DmaHeap(),
    use: async (heap: InstanceType<typeof DmaHeap>) => {
      heap.allocate(4096).put();
      await heap.drain();
      await heap[Symbol.asyncDispose]();
    },
    ctor: [
      A.opts({
        name: A.name(),
        budgetBytes: A.index(),
        maxPooledBytes: arg(undefined, (v) => v === Infinity || isIndex(v)),
        shared: A.bool(),
        trackLeaks: A.bool(),
        allocator: A.fn(),
      }),
    ],
    methods: [
      m('allocate', A.positive(4096), A.opts({ shared: A.bool() })),
      m('shrinkAll', A.pagesOrAll),
      p('drain', signalOnly),
    ],
    noArgs: ['stats', 'leaks', 'toString'],
  },
  DmaResv: {
    make: () => new DmaResv(),
    use: async (resv: InstanceType<typeof DmaResv>) => {
      assert.equal(resv.isLocked, false, 'the lock is free');
      assert.equal(resv.mutex.waiters, 0, 'nobody waits');
      const fence = mockFence();
      await resv.lock();
      resv.reserveFences(1);
      resv.addFence(fence, 'write');
      resv.unlock();
      assert.equal(resv.testSignaled('read'), false);
    },
    ctor: [A.opts({ wwClass: A.instance(WwClass, () => reservationWwClass), name: A.string() })],
    methods: [
      p('lock', ctxArg(), signalOnly),
      p('acquire', ctxArg(), signalOnly),
      p(
        'lockSlow',
        make(
          () => new WwAcquireCtx(reservationWwClass),
          (v) => v instanceof WwAcquireCtx,
        ),
        signalOnly,
      ),
      m('tryLock', ctxArg()),
      m('reserveFences', A.index()),
      m('addFence', A.plainFence, A.usage),
      m('replaceFences', A.index(), A.plainFence, A.usage),
      m(
        'copyFences',
        A.instance(DmaResv, () => new DmaResv()),
      ),
      m('fences', A.usage),
      m('fencesUnlocked', A.usage),
      m('getFences', A.usage),
      m('getSingleton', A.usage),
      m('testSignaled', A.usage),
      p('wait', A.opts({ usage: A.usage, timeout: A.timeout, signal: A.signal })),
      m('setDeadline', A.usage, A.finite()),
    ],
    statics: [m('usageRw', A.bool())],
    noArgs: ['unlock', 'describe', 'toString'],
  },
  DrmExec: {
    make: () => new DrmExec(),
    use: async (exec: InstanceType<typeof DrmExec>) => {
      const obj = execObject();
      await exec.untilAllLocked(async (e) => e.lockObj(obj));
      assert.equal(obj.resv.isLocked, true);
      exec.fini();
      assert.equal(obj.resv.isLocked, false);
    },
    ctor: [
      A.opts({
        ignoreDuplicates: A.bool(),
        interruptible: A.bool(),
        signal: A.signal,
        wwClass: A.instance(WwClass, () => reservationWwClass),
      }),
    ],
    methods: [
      p(
        'untilAllLocked',
        A.fn(async () => undefined),
      ),
      p('lockObj', make(execObject, isExecObject)),
      p('prepareObj', make(execObject, isExecObject), A.index()),
      p(
        'prepareArray',
        make(
          () => [execObject()],
          (v) => Array.isArray(v),
        ),
        A.index(),
      ),
      m('unlockObj', make(execObject, isExecObject)),
    ],
    noArgs: ['fini', 'toString'],
  },
  Kref: {
    make: () => new Kref(() => undefined, 'fuzzed'),
    use: (ref: InstanceType<typeof Kref>) => {
      ref.get();
      ref.put();
      assert.equal(ref.put(), true);
    },
    ctor: [optional(A.fn()), optional(A.string())],
    noArgs: ['get', 'getUnlessZero', 'put', 'init'],
    exempt: { release: 'protected hook for subclasses', refName: 'protected hook for subclasses' },
  },
  LockClass: {
    ctor: [A.name(), A.oneOf(['mutex', 'ww', 'pseudo'])],
    statics: [m('forName', A.name())],
    noArgs: ['toString'],
  },
  LockGuard: {
    make: () => new api.LockGuard(() => undefined, 'guard'),
    use: (guard: InstanceType<typeof api.LockGuard>) => {
      guard.unlock();
      assert.equal(guard.held, false);
    },
    ctor: [A.fn(), A.string()],
    noArgs: ['unlock'],
  },
  Mutex: {
    make: () => new Mutex('fuzz'),
    use: async (mutex: InstanceType<typeof Mutex>) => {
      assert.equal(mutex.isLocked, false);
      assert.equal(mutex.waiters, 0);
      await mutex.lock();
      mutex.unlock();
    },
    ctor: [optional(A.name())],
    methods: [p('lock', signalOnly), p('acquire', signalOnly), p('runExclusive', A.fn(), signalOnly)],
    noArgs: ['tryLock', 'unlock', 'toString'],
  },
  PagePool: {
    make: () => new api.PagePool(),
    use: (pool: InstanceType<typeof api.PagePool>) => {
      assert.equal(pool.give(new ArrayBuffer(4096)), true);
      assert.ok(pool.take(4096) !== undefined);
    },
    ctor: [
      A.opts({
        shared: A.bool(),
        maxPooledBytes: arg(undefined, (v) => v === Infinity || isIndex(v)),
        orders: make(
          () => [0],
          (v) => Array.isArray(v) && v.length > 0 && v.every((o) => Number.isInteger(o) && o >= 0 && o <= 20),
        ),
        verifyZero: A.bool(),
        name: A.string(),
      }),
    ],
    methods: [
      m('classFor', A.index()),
      m(
        'take',
        arg(
          4096,
          (v) =>
            typeof v === 'number' && [4096, 8192, 16384, 32768, 65536, 131072, 262144, 524288, 1048576].includes(v),
        ),
      ),
      m(
        'give',
        make(
          () => new ArrayBuffer(4096),
          (v) => v instanceof ArrayBuffer || v instanceof SharedArrayBuffer,
        ),
      ),
      m('shrink', A.pagesOrAll),
    ],
    noArgs: ['stats', 'toString'],
    exempt: Object.fromEntries(
      ['classIndexOf', 'classBytesAt', 'takeAt'].map((name) => [
        name,
        "@internal: DmaHeap.allocate's pool-hit path, with a size it checked and an index from classIndexOf",
      ]),
    ),
  },
  Shrinker: {
    make: () => new api.Shrinker('fuzz', { count: () => 1, scan: () => 1 }),
    use: (shrinker: InstanceType<typeof api.Shrinker>) => assert.equal(shrinker.scan(1), 1),
    ctor: [
      A.string(),
      make(
        () => ({ count: () => 0, scan: () => 0 }),
        (v) =>
          typeof (v as { count?: unknown } | null)?.count === 'function' &&
          typeof (v as { scan?: unknown }).scan === 'function',
      ),
      A.opts({ seeks: A.positive(), batch: A.positive() }),
    ],
    methods: [m('scan', A.index())],
    noArgs: ['count', 'toString'],
  },
  ShrinkerRegistry: {
    make: () => new api.ShrinkerRegistry(),
    use: (registry: InstanceType<typeof api.ShrinkerRegistry>) => {
      using _registration = registry.register(new api.Shrinker('s', { count: () => 2, scan: (n) => n }));
      assert.equal(registry.shrink(2), 2);
    },
    methods: [
      m(
        'register',
        A.instance(api.Shrinker, () => new api.Shrinker('s', { count: () => 0, scan: () => 0 })),
      ),
      m('shrink', A.pagesOrAll),
    ],
    noArgs: ['count', 'shrinkPass'],
  },
  SwSyncTimeline: {
    make: () => new api.SwSyncTimeline('fuzz'),
    use: (timeline: InstanceType<typeof api.SwSyncTimeline>) => {
      const pt = timeline.createFence(1);
      timeline.inc();
      assert.equal(pt.signaledFlag, true);
      timeline.destroy();
    },
    ctor: [
      arg(undefined, (v) => v === undefined || (typeof v === 'string' && new TextEncoder().encode(v).length <= 31)),
    ],
    methods: [
      m('createFence', A.u32()),
      m('inc', optional(A.u32())),
      m(
        'getDeadline',
        make(
          (timeline) => (timeline as InstanceType<typeof api.SwSyncTimeline>).createFence(5),
          () => false,
        ),
      ),
    ],
    noArgs: ['destroy', 'describe', 'toString'],
  },
  SyncFile: {
    make: () => new api.SyncFile(mockFence()),
    use: async (file: InstanceType<typeof api.SyncFile>) => {
      file.fence.signal();
      assert.equal(await file.wait({ timeout: 0 }), true);
      file[Symbol.dispose]();
    },
    ctor: [
      A.fence,
      arg(undefined, (v) => v === undefined || (typeof v === 'string' && v.length <= 31 && !v.includes('\0'))),
    ],
    methods: [m('setDeadline', A.finite()), p('wait', A.opts({ timeout: A.timeout, signal: A.signal }))],
    statics: [
      m(
        'merge',
        arg('m', (v) => typeof v === 'string' && v.length <= 31),
        A.instance(api.SyncFile, () => new api.SyncFile(mockFence())),
        A.instance(api.SyncFile, () => new api.SyncFile(mockFence())),
      ),
    ],
    noArgs: ['info', 'poll', 'toString'],
  },
  SyncPt: {
    exempt: { constructor: 'made only by SwSyncTimeline.createFence (any direct call is a BugError)' },
    methods: [m('signal', optional(A.finite()))],
    make: () => new api.SwSyncTimeline('pt').createFence(1),
    use: (pt: InstanceType<typeof api.SyncPt>) => assert.equal(pt.signal(), true),
    noArgs: ['toString'],
  },
  Syncobj: {
    make: () => new Syncobj(),
    use: (syncobj: InstanceType<typeof Syncobj>) => {
      assert.equal(syncobj.pendingSubmitWaiters, 0);
      syncobj.addPoint(mockFence(), 1);
      assert.equal(syncobj.query({ lastSubmitted: true }), 1);
    },
    ctor: [A.opts({ fence: A.fence, gc: A.oneOf(['walk', 'queue']), signaled: A.bool() })],
    methods: [
      m(
        'replaceFence',
        make(
          () => mockFence(),
          (v) => v === null || v instanceof DmaFence,
        ),
      ),
      m('addPoint', A.plainFence, A.positive()),
      m('signal', optional(A.index())),
      m('findFenceNow', A.index()),
      p('findFence', A.index(0), A.opts({ waitForSubmit: A.bool(), timeout: A.timeout, signal: A.signal })),
      m('query', A.opts({ lastSubmitted: A.bool() })),
    ],
    statics: [
      m(
        'transfer',
        A.instance(Syncobj, () => new Syncobj()),
        A.index(),
        A.instance(Syncobj, () => new Syncobj({ signaled: true })),
        A.index(0),
      ),
      p(
        'wait',
        make(
          () => [{ syncobj: new Syncobj({ signaled: true }) }],
          (v) => Array.isArray(v) && v.every((e) => isPlainObject(e) && e['syncobj'] instanceof Syncobj),
        ),
        A.opts({
          all: A.bool(),
          waitForSubmit: A.bool(),
          available: A.bool(),
          timeout: A.timeout,
          signal: A.signal,
          deadline: A.finite(),
        }),
      ),
    ],
    noArgs: ['reset', 'describe', 'toString'],
  },
  TransLockList: {
    make: () => new api.TransLockList(),
    use: async (list: InstanceType<typeof api.TransLockList>) => {
      const mutex = new WwMutex(wd, 'listed');
      const ctx = new WwAcquireCtx(wd);
      await mutex.lock(ctx);
      list.add(api.wwMutexLockItem(mutex, ctx));
      list.unlockPutAll();
      assert.equal(mutex.isLocked, false);
      ctx.fini();
    },
    ctor: [A.opts({ name: A.string(), relaxUnlock: A.bool() })],
    methods: [
      m('add', make(lockItem, isLockItem)),
      m('remove', make(lockItem, isLockItem)),
      p('backoff', make(lockItem, isLockItem), signalOnly),
      m(
        'setContending',
        make(lockItem, (v) => v === null || isLockItem(v)),
      ),
    ],
    noArgs: ['unlockPutAll', 'describe'],
    exempt: { has: 'takes any value: a membership test, false for anything not listed' },
  },
  TtmBufferObject: {
    make: ttmBo,
    use: useBo,
    ctor: [
      make(
        () => new TtmDevice({ quiet: true }),
        (v) => v instanceof TtmDevice,
      ),
      A.opts(
        {
          size: A.positive(4096),
          type: A.oneOf(['device', 'kernel', 'sg']),
          resv: A.instance(DmaResv, () => new DmaResv()),
          priority: arg(0, (v) => isIndex(v) && (v as number) < 4),
          name: A.string(),
          bulkMove: A.instance(api.TtmLruBulkMove, () => new api.TtmLruBulkMove()),
        },
        ['size'],
      ),
      make(
        () => null,
        (v) => v === null || v === undefined,
      ),
    ],
    methods: [
      p('reserve', A.opts({ interruptible: A.bool(), noWait: A.bool(), ticket: ctxArg(), signal: A.signal })),
      p(
        'reserveSlowpath',
        make(
          () => new WwAcquireCtx(reservationWwClass),
          (v) => v instanceof WwAcquireCtx,
        ),
        signalOnly,
      ),
      p('validate', placementArg, optional(ttmCtx)),
      p('allocResource', placementArg, ttmCtx, A.bool(false)),
      p('memSpace', placementArg, ttmCtx),
      p('evict', optional(ttmCtx)),
      p('moveTo', unavailable(api.TtmResource), A.bool(false), ttmCtx),
      m(
        'setBulkMove',
        make(
          () => null,
          (v) => v === null || v instanceof api.TtmLruBulkMove,
        ),
      ),
      p('waitIdle', optional(ttmCtx)),
    ],
    statics: ['initReserved', 'initValidate'].map((name) =>
      p(
        name,
        make(
          () => new TtmDevice({ quiet: true }),
          (v) => v instanceof TtmDevice,
        ),
        make(
          () => ({ size: 4096, placement: [{ memType: TtmMemType.System }] }),
          () => false,
        ),
        optional(ttmCtx),
      ),
    ),
    noArgs: [
      'get',
      'getUnlessZero',
      'put',
      'unreserve',
      'moveToLruTail',
      'pin',
      'unpin',
      'kmap',
      'destroyTt',
      'cleanupMemtypeUse',
      'delayedDelete',
      'tryDelayedDelete',
      'describe',
      'toString',
    ],
  },
  TtmCopyEngine: {
    make: () => new api.TtmCopyEngine(),
    use: async (engine: InstanceType<typeof api.TtmCopyEngine>) => {
      const dst = new Uint8Array(8);
      await engine
        .copy(
          () => new Uint8Array(8).fill(4),
          () => dst,
        )
        .wait();
      assert.equal(dst[0], 4);
      await engine[Symbol.asyncDispose]();
    },
    ctor: [
      A.opts({
        name: A.string(),
        bytesPerMs: arg(undefined, (v) => v === undefined || (typeof v === 'number' && v > 0)),
      }),
    ],
    methods: [
      m(
        'copy',
        make(
          () => null,
          (v) => v === null || typeof v === 'function',
        ),
        A.fn(() => new Uint8Array(8)),
        make(
          () => undefined,
          (v) =>
            v === undefined ||
            v === null ||
            (typeof (v as { [Symbol.iterator]?: unknown } | null)?.[Symbol.iterator] === 'function' &&
              typeof v !== 'string' &&
              [...(v as Iterable<unknown>)].every((f) => f instanceof DmaFence)),
        ),
      ),
      p('idle', signalOnly),
    ],
    noArgs: ['toString'],
  },
  TtmDevice: {
    make: () => new TtmDevice({ vramBytes: 1 << 16, quiet: true }),
    use: async (device: InstanceType<typeof TtmDevice>) => {
      const bo = await TtmBufferObject.initValidate(device, { size: 4096, placement: [{ memType: TtmMemType.VRAM }] });
      bo.put();
      await device.fini();
      assert.equal(device.boCount, 0);
    },
    ctor: [
      A.opts({
        name: A.string(),
        funcs: make(
          () => ({}),
          (v) => typeof v === 'object' && v !== null,
        ),
        systemBytes: arg(
          undefined,
          (v) => v === Infinity || (isIndex(v) && (v as number) > 0 && (v as number) % 4096 === 0),
        ),
        ttBytes: arg(undefined, (v) => isIndex(v) && (v as number) > 0 && (v as number) % 4096 === 0),
        vramBytes: arg(undefined, (v) => isIndex(v) && (v as number) > 0 && (v as number) % 4096 === 0),
        heap: A.instance(DmaHeap, () => new DmaHeap()),
        copyEngine: arg(false, (v) => typeof v === 'boolean' || v instanceof api.TtmCopyEngine),
        maxActive: A.positive(),
        delayedDelete: A.oneOf(['per-object', 'per-object-idle', 'periodic-scan']),
        scanIntervalMs: arg(10, (v) => typeof v === 'number' && v > 0 && Number.isFinite(v)),
        propagateEnospc: A.bool(),
        quiet: A.bool(),
      }),
    ],
    methods: [
      m(
        'manager',
        arg(0, (v) => isIndex(v) && (v as number) < 9),
      ),
      m(
        'setManager',
        arg(3, (v) => isIndex(v) && (v as number) < 9),
        make(
          () => null,
          (v) => v === null || v instanceof api.TtmResourceManager,
        ),
      ),
      m('resourceBytes', unavailable(TtmBufferObject), unavailable(api.TtmResource)),
      m('onReclaim', A.fn()),
      p(
        'evictAll',
        arg(TtmMemType.VRAM, (v) => isIndex(v) && (v as number) < 9),
        optional(ttmCtx),
      ),
      p('fini', A.opts({ signal: A.signal, timeout: A.timeout })),
    ],
    noArgs: ['stats', 'describeTeardown', 'devices'],
    exempt: Object.fromEntries(
      [
        'nextBoId',
        'boCreated',
        'boDestroyed',
        'queueDelayedDelete',
        'reclaimed',
        'countMove',
        'countEviction',
        'reportFailure',
        'warn',
      ].map((name) => [name, '@internal: the TtmBoDevice interface its buffer objects report to']),
    ),
  },
  TtmLruBulkMove: {
    make: () => new api.TtmLruBulkMove(),
    use: (bulk: InstanceType<typeof api.TtmLruBulkMove>) => {
      bulk.tail();
      assert.deepEqual(bulk.range(TtmMemType.VRAM, 0), { first: null, last: null });
      bulk.fini();
    },
    methods: [
      m('add', unavailable(api.TtmResource)),
      m('del', unavailable(api.TtmResource)),
      m('has', unavailable(api.TtmResource)),
      m(
        'range',
        arg(0, (v) => isIndex(v) && (v as number) < 9),
        arg(0, (v) => isIndex(v) && (v as number) < 4),
      ),
    ],
    noArgs: ['tail', 'fini'],
  },
  TtmLruItem: {
    ctor: [A.oneOf(['resource', 'hitch', 'head'])],
  },
  TtmLruList: {
    make: () => new TtmLruList('fuzz'),
    use: (list: InstanceType<typeof TtmLruList>) => {
      assert.equal(list.isEmpty, true);
      assert.equal(list.isSingular(), false);
      assert.deepEqual([...list], []);
    },
    ctor: [optional(A.string())],
    noArgs: ['isSingular'],
  },
  TtmResourceCursor: {
    ctor: [
      A.instance(
        api.TtmResourceManager,
        () => new api.TtmSysManager({ unevictable: new TtmLruList() }, { size: 4096 }),
      ),
    ],
    noArgs: ['next', 'fini'],
  },
  TtmOperationCtx: {
    ctor: [
      A.opts({
        interruptible: A.bool(),
        noWaitGpu: A.bool(),
        allowResEvict: A.bool(),
        resv: make(
          () => null,
          (v) => v === null || v instanceof DmaResv,
        ),
        signal: A.signal,
      }),
    ],
  },
  TtmRangeManager: {
    ctor: [
      make(
        () => ({ unevictable: new TtmLruList() }),
        (v) => (v as { unevictable?: unknown } | null)?.unevictable instanceof TtmLruList,
      ),
      A.opts({ size: arg(65536, (v) => isIndex(v) && (v as number) % 4096 === 0), name: A.string(), useTt: A.bool() }, [
        'size',
      ]),
    ],
    exempt: Object.fromEntries(
      ['alloc', 'free', 'compatible', 'intersects'].map((name) => [
        name,
        'the resource-manager callback interface (ttm_resource_manager_func): TTM calls it with checked values',
      ]),
    ),
    noArgs: ['debug', 'checkInvariants'],
  },
  TtmResource: {
    exempt: {
      constructor: 'made by a resource manager’s alloc (ttm_resource_init), never by users',
    },
    noArgs: ['toString'],
  },
  TtmResourceManager: {
    exempt: {
      constructor: 'abstract: see TtmRangeManager and TtmSysManager',
      intersects: 'the resource-manager callback interface, called by TTM with checked values',
      compatible: 'the resource-manager callback interface, called by TTM with checked values',
    },
    make: () => new api.TtmSysManager({ unevictable: new TtmLruList() }, { size: 65536 }),
    use: (man: InstanceType<typeof api.TtmResourceManager>) => {
      man.setUsed(false);
      man.setUsed(true);
      assert.equal(man.useType, true);
    },
    methods: [m('setUsed', A.bool()), m('addEvictionFence', A.fence)],
    noArgs: ['debug', 'waitEvictionFences', 'cursor'],
  },
  TtmSysManager: {
    ctor: [
      make(
        () => ({ unevictable: new TtmLruList() }),
        (v) => (v as { unevictable?: unknown } | null)?.unevictable instanceof TtmLruList,
      ),
      A.opts({ size: arg(65536, (v) => isIndex(v) || v === Infinity), name: A.string(), useTt: A.bool() }, ['size']),
    ],
    exempt: Object.fromEntries(
      ['alloc', 'free'].map((name) => [
        name,
        'the resource-manager callback interface (ttm_resource_manager_func): TTM calls it with checked values',
      ]),
    ),
  },
  TtmTt: {
    make: () => new api.TtmTt(4096),
    use: (tt: InstanceType<typeof api.TtmTt>) => {
      const heap = new DmaHeap();
      tt.populate(heap);
      assert.equal(tt.bytes().length, 4096);
      tt.destroy();
    },
    ctor: [
      arg(4096, (v) => isIndex(v) && (v as number) > 0 && (v as number) % 4096 === 0),
      optional(arg(0, (v) => v === 0 || v === 1 || v === 2 || v === 4 || v === 3 || v === 5 || v === 6 || v === 7)),
    ],
    methods: [
      m(
        'populate',
        A.instance(DmaHeap, () => new DmaHeap()),
      ),
    ],
    noArgs: ['unpopulate', 'bytes', 'destroy'],
  },
  WorkQueue: {
    make: () => new api.WorkQueue('fuzz'),
    use: async (wq: InstanceType<typeof api.WorkQueue>) => {
      let ran = false;
      wq.queue(() => void (ran = true));
      await wq.drain();
      assert.equal(ran, true);
    },
    ctor: [A.string(), A.opts({ maxActive: A.positive(), onError: A.fn() })],
    methods: [
      m('queue', A.fn(), nameOrOptions(A.opts({ name: A.string(), signal: A.signal }))),
      p('flush', signalOnly),
      p('drain', signalOnly),
    ],
    noArgs: ['resetPeak', 'toString'],
  },
  WwAcquireCtx: {
    make: () => new WwAcquireCtx(wd),
    use: async (ctx: InstanceType<typeof WwAcquireCtx>) => {
      const mutex = new WwMutex(wd, 'used');
      await mutex.lock(ctx);
      mutex.unlock();
      ctx.fini();
    },
    ctor: [A.instance(WwClass, () => wd), A.opts({ deadlockInjection: A.bool() })],
    noArgs: ['done', 'fini', 'toString'],
    exempt: { cancelWait: 'takes any value: the reason the pending wait rejects with' },
  },
  WwClass: {
    ctor: [A.name(), A.oneOf(['wait-die', 'wound-wait'])],
    statics: [
      m(
        'nextStamp',
        A.instance(WwClass, () => wd),
      ),
    ],
  },
  WwMutex: {
    make: () => new WwMutex(wd, 'fuzz'),
    use: async (mutex: InstanceType<typeof WwMutex>) => {
      assert.equal(mutex.isLocked, false);
      assert.equal(mutex.waiters, 0);
      const ctx = new WwAcquireCtx(wd);
      await mutex.lock(ctx);
      mutex.unlock();
      ctx.fini();
    },
    ctor: [A.instance(WwClass, () => wd), optional(A.string())],
    methods: [
      p('lock', ctxArg(wd), signalOnly),
      p('acquire', ctxArg(wd), signalOnly),
      p(
        'lockSlow',
        make(
          () => new WwAcquireCtx(wd),
          (v) => v instanceof WwAcquireCtx,
        ),
        signalOnly,
      ),
      m('tryLock', ctxArg(wd)),
    ],
    noArgs: ['unlock', 'toString'],
  },
  // The GPU scheduler (issue 14), swept in issue 10's follow-up.
  DrmGpuScheduler: {
    make: () => new api.DrmGpuScheduler({ name: 'fuzz', ops: schedOps }),
    use: async (sched: InstanceType<typeof api.DrmGpuScheduler>) => {
      assert.equal(sched.stopped, false, 'a refused call did not stop the scheduler');
      const entity = new api.DrmSchedEntity({ schedulers: [sched] });
      const job = new api.DrmSchedJob(entity);
      job.arm();
      job.push();
      await job.finished.wait();
      assert.equal(job.finished.error, undefined);
      entity.fini();
      sched.fini();
    },
    ctor: [
      A.opts(
        {
          name: A.name(),
          ops: make(
            () => schedOps,
            (v) =>
              typeof v === 'object' &&
              v !== null &&
              ['runJob', 'timedOutJob', 'freeJob'].every(
                (k) => typeof (v as Record<string, unknown>)[k] === 'function',
              ),
          ),
          creditLimit: arg(undefined, (v) => v === Infinity || (isIndex(v) && (v as number) >= 1)),
          timeout: arg(undefined, (v) => typeof v === 'number' && v >= 0),
          hangLimit: A.index(),
          policy: A.oneOf(['fair', 'fifo', 'rr']),
          clock: make(
            () => api.realClock,
            (v) =>
              ['now', 'setTimer', 'clearTimer'].every(
                (k) => typeof (v as Record<string, unknown> | null)?.[k] === 'function',
              ),
          ),
          executor: arg('microtask', (v) => v === 'microtask' || v === 'macrotask'),
          observer: make(
            () => ({}),
            (v) => isPlainObject(v) && Object.values(v).every((f) => typeof f === 'function'),
          ),
          onError: A.fn(),
        },
        ['name', 'ops'],
      ),
    ],
    methods: [
      m(
        'increaseKarma',
        make(freshJob, (v) => v instanceof api.DrmSchedJob),
      ),
      m(
        'resumeTimeout',
        arg(100, (v) => typeof v === 'number' && v >= 0),
      ),
      m(
        'stop',
        make(
          () => undefined,
          (v) => v === undefined || v === null || v instanceof api.DrmSchedJob,
        ),
      ),
      m('start', optional(errnoArg)),
    ],
    noArgs: ['wakeup', 'fault', 'tdrQueueImm', 'suspendTimeout', 'fini', 'toString'],
    exempt: { rqFor: INTERNAL, jobPushed: INTERNAL, prepareJob: INTERNAL, discardJob: INTERNAL },
  },
  DrmSchedEntity: {
    make: () => new api.DrmSchedEntity({ schedulers: [new api.DrmGpuScheduler({ name: 'e', ops: schedOps })] }),
    use: async (entity: InstanceType<typeof api.DrmSchedEntity>) => {
      const sched = entity.sched as InstanceType<typeof api.DrmGpuScheduler>;
      const job = new api.DrmSchedJob(entity);
      job.arm();
      job.push();
      assert.equal(await entity.flush({ timeout: 1000 }), true);
      await job.finished.wait();
      entity.fini();
      sched.fini();
    },
    ctor: [
      A.opts(
        {
          schedulers: make(
            () => [fuzzSched],
            (v) => Array.isArray(v) && v.every(isScheduler),
          ),
          priority: priorityArg,
          guilty: make(
            () => ({ value: false }),
            (v) => typeof (v as { value?: unknown } | null)?.value === 'boolean',
          ),
          name: A.string(),
        },
        ['schedulers'],
      ),
    ],
    methods: [
      m('setPriority', priorityArg),
      m(
        'modifySched',
        make(
          () => [fuzzSched],
          (v) => Array.isArray(v) && v.length > 0 && v.every(isScheduler),
        ),
      ),
      p('flush', A.opts({ timeout: A.timeout, signal: A.signal, kill: A.bool() })),
    ],
    noArgs: ['peekJob', 'kill', 'fini', 'destroy', 'toString'],
    exempt: { armJob: INTERNAL, pushJob: INTERNAL, popJob: INTERNAL },
  },
  DrmSchedEntityKilledError: { exempt: { constructor: ERROR_CLASS } },
  DrmSchedFence: {
    make: () => new api.DrmSchedFence(fuzzSched, 'fuzz', api.fenceContextAlloc(2), 1),
    use: (pair: InstanceType<typeof api.DrmSchedFence>) => {
      assert.equal(pair.deadline, undefined, 'a refused deadline was not kept');
      pair.setDeadline(5);
      assert.equal(pair.deadline, 5);
    },
    ctor: [
      make(
        () => ({}),
        (v) => typeof v === 'object' && v !== null,
      ),
      A.string('ring'),
      arg(1, (v) => isIndex(v) && (v as number) < Number.MAX_SAFE_INTEGER),
      A.index(),
    ],
    methods: [m('setDeadline', A.finite())],
    noArgs: ['setDontPipeline'],
    exempt: { markScheduled: INTERNAL, detachParent: INTERNAL, markFinished: INTERNAL },
  },
  DrmSchedJob: {
    make: freshJob,
    use: async (job: InstanceType<typeof api.DrmSchedJob>) => {
      assert.equal(job.state, 'initialized', 'a refused call left the job as it was');
      job.arm();
      job.push();
      await job.finished.wait();
    },
    ctor: [
      make(
        () => fuzzEntity,
        (v) => v instanceof api.DrmSchedEntity,
      ),
      A.opts({
        credits: A.positive(),
        owner: A.any,
        clientId: arg(undefined, (v) => typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v))),
      }),
    ],
    methods: [
      m(
        'addDependency',
        make(
          () => null,
          (v) => v === null || v === undefined || v instanceof DmaFence,
        ),
      ),
      m('addResvDependencies', A.instance(DmaResv, lockedResv), A.usage),
      m('addImplicitDependencies', A.instance(DmaResv, lockedResv), A.bool()),
      m(
        'addSyncobjDependency',
        A.instance(Syncobj, () => new Syncobj({ signaled: true })),
        A.index(0),
      ),
    ],
    noArgs: ['arm', 'push', 'cleanup', 'toString'],
    exempt: {
      hasDependency: 'takes any value: a membership test, false for anything not stored',
      ...Object.fromEntries(
        [
          'takeDependency',
          'advance',
          'markSubmittedAt',
          'markScheduledAt',
          'startNoEarlierThan',
          'setHwCallback',
          'truncateCredits',
          'addKarma',
        ].map((name) => [name, INTERNAL]),
      ),
    },
  },
  DrmSchedRq: {
    ctor: [
      A.instance(Object, () => api.fairPolicy),
      make(
        () => ({ avgJobTime: 0 }),
        (v) => typeof (v as { avgJobTime?: unknown } | null)?.avgJobTime === 'number',
      ),
    ],
    noArgs: ['peek', 'head', 'nextArrival'],
    exempt: Object.fromEntries(
      ['add', 'remove', 'popped', 'block', 'unblock', 'select', 'placeAfterCursor', 'moveCursor'].map((name) => [
        name,
        'the run-queue interface: the scheduler and the policies call it with the nodes it holds',
      ]),
    ),
  },
  DrmSchedRqNode: {
    make: () => new api.DrmSchedRqNode({}, 2),
    use: (node: InstanceType<typeof api.DrmSchedRqNode>) => {
      node.accountJob(1);
      assert.equal(node.runtime, 1, 'nothing was charged by the refused call');
    },
    ctor: [A.any, priorityArg],
    methods: [
      m(
        'accountJob',
        arg(1, (v) => typeof v === 'number' && v >= 0 && v < Infinity),
      ),
    ],
  },
  ManualExecutor: {
    make: () => new api.ManualExecutor(),
    use: (executor: InstanceType<typeof api.ManualExecutor>) => {
      assert.equal(executor.pending, 0, 'nothing was queued by the refused call');
      let ran = false;
      executor.schedule(() => (ran = true));
      assert.equal(executor.drain(), 1);
      assert.equal(ran, true);
    },
    ctor: [],
    methods: [m('schedule', A.fn()), m('drain', optional(A.index()))],
  },

  // Sharing between threads (issue 16), swept in issue 10's follow-up.
  DmaBufAttachment: {
    exempt: { constructor: MADE_BY('ImportedDmaBuf.attach'), notifyMove: INTERNAL },
    noArgs: ['map', 'unmap', 'detach'],
  },
  DmaBufShare: {
    make: sharedBuffer,
    use: async (made: ReturnType<typeof sharedBuffer>) => {
      await made.share.beginCpuAccess({ write: true });
      made.share.endCpuAccess();
      assert.equal(made.share.remoteFences(api.DmaResvUsage.Bookkeep).length, 0);
      await closeShared(made);
    },
    ctor: [
      make(
        () => ({
          name: 'x',
          size: 8,
          resv: new DmaResv(),
          memory: () => ({ buffer: new SharedArrayBuffer(8), offset: 0 }),
        }),
        () => false,
      ),
      make(
        () => undefined,
        (v) => v === undefined || v instanceof api.DmaBuf,
      ),
    ],
    methods: [
      p('beginCpuAccess', A.opts({ write: A.bool(), timeout: A.timeout, signal: A.signal }, ['write'])),
      m('publishFence', A.plainFence, A.usage),
      m('remoteFences', A.usage),
      p('pull', signalOnly),
      m('revoke', errnoArg),
    ],
    noArgs: ['descriptor', 'endCpuAccess', 'publish', 'pullLocked', 'moved', 'close', 'toString'],
  },
  ImportedDmaBuf: {
    make: () => {
      const made = sharedBuffer();
      return { ...made, self: api.importDmaBuf(made.share.descriptor()) };
    },
    use: async (made: ReturnType<typeof sharedBuffer> & { self: InstanceType<typeof api.ImportedDmaBuf> }) => {
      const view = made.self;
      assert.equal(made.share.pinned, false, 'no attachment was made by the refused call');
      await view.beginCpuAccess({ write: true });
      view.bytes()[0] = 1;
      view.endCpuAccess();
      await closeShared(made, view);
    },
    methods: [
      p('beginCpuAccess', A.opts({ write: A.bool(), timeout: A.timeout, signal: A.signal }, ['write'])),
      p(
        'importSyncFile',
        A.instance(api.SyncFile, () => new api.SyncFile(mockFence())),
        A.opts({ write: A.bool(), signal: A.signal }, ['write']),
      ),
      p('exportSyncFile', A.opts({ write: A.bool(), signal: A.signal }, ['write'])),
      p('pull', signalOnly),
      m('attach', {
        // moveNotify alone is refused (it needs dynamic: true), so no value of it is acceptable on its own.
        ...A.opts({
          dynamic: A.bool(),
          moveNotify: make(
            () => undefined,
            () => false,
          ),
        }),
        accepts: (v) =>
          v === undefined ||
          (isPlainObject(v) &&
            Object.keys(v).every((k) => k === 'dynamic' || k === 'moveNotify') &&
            (v['dynamic'] === undefined || typeof v['dynamic'] === 'boolean') &&
            (v['moveNotify'] === undefined || (typeof v['moveNotify'] === 'function' && v['dynamic'] === true))),
      }),
    ],
    noArgs: ['bytes', 'currentView', 'endCpuAccess', 'publish', 'close', 'toString'],
    exempt: { constructor: MADE_BY('importDmaBuf'), forget: INTERNAL },
  },
  ImportedFence: {
    exempt: { constructor: MADE_BY('importFence and watchSharedFences') },
    noArgs: ['isSignaled'],
  },
  SharedFenceRegion: {
    make: () => new api.SharedFenceRegion({ slots: 2 }),
    use: (region: InstanceType<typeof api.SharedFenceRegion>) => {
      assert.equal(region.pendingExports, 0, 'the refused export took no slot');
      assert.ok(region.tryExport(mockFence(), 0) !== undefined);
      assert.ok(region.tryExport(mockFence(), 0) !== undefined, 'both slots were still free');
    },
    ctor: [
      A.opts({
        slots: arg(undefined, (v) => isIndex(v) && (v as number) >= 1 && (v as number) <= 1 << 20),
        buffer: make(
          () => undefined,
          (v) => v instanceof SharedArrayBuffer,
        ),
        byteOffset: arg(undefined, (v) => v === 0),
      }),
    ],
    methods: [m('tryExport', A.fence, count30(), optional(A.string()), optional(count30(0)))],
    noArgs: ['toString'],
  },
  SharedTimeline: {
    make: () => new api.SharedTimeline(),
    use: (timeline: InstanceType<typeof api.SharedTimeline>) => {
      assert.equal(timeline.error, undefined, 'the refused call did not fail the timeline');
      assert.equal(timeline.signal(1), true);
      assert.equal(timeline.value, 1);
    },
    ctor: [A.opts({ name: A.string() })],
    methods: [
      m('signal', A.positive()),
      m('fail', errnoArg),
      m('fence', A.index()),
      p('wait', A.index(), A.opts({ timeout: A.timeout, signal: A.signal })),
    ],
    statics: [
      m(
        'fromDescriptor',
        make(
          () => new api.SharedTimeline().descriptor,
          () => false,
        ),
      ),
    ],
    noArgs: ['toString'],
  },
  SharedTimelinePoint: { exempt: { constructor: MADE_BY('SharedTimeline.fence') } },
};

/**
 * Exports not in this sweep, with the reason. Empty: the scheduler and the sharing API were swept
 * in their follow-up; a layer that lands unswept lists its exports here until it is.
 */
const NOT_SWEPT: Readonly<Record<string, string>> = {};

/** Exported functions: arguments, and whether they return a promise. */
const FUNCTIONS: Readonly<Record<string, Method | string>> = {
  beginSignalling: 'takes no argument',
  disableLockdep: 'takes no argument',
  getClock: 'takes no argument',
  lockdepEnabled: 'takes no argument',
  lockdepReports: 'takes no argument',
  lrBeginSignalling: 'takes no argument',
  mightReclaim: 'takes no argument',
  resetLockdep: 'takes no argument',
  dedupFences: m('dedupFences', fenceArray(0)),
  enableLockdep: m('enableLockdep', A.opts({ mode: A.oneOf(['throw', 'record']), stacks: A.bool() })),
  endSignalling: m(
    'endSignalling',
    make(api.beginSignalling, (v) => typeof v === 'object' && v !== null),
  ),
  lrEndSignalling: m(
    'lrEndSignalling',
    make(api.lrBeginSignalling, (v) => typeof v === 'object' && v !== null),
  ),
  fenceContextAlloc: m('fenceContextAlloc', optional(A.positive())),
  installHeldLockTracker: m(
    'installHeldLockTracker',
    make(
      () => UNAVAILABLE,
      (v) =>
        v === null ||
        (typeof v === 'object' &&
          ['get', 'set', 'run'].every((k) => typeof (v as Record<string, unknown>)[k] === 'function')),
    ),
  ),
  lockdepTask: m('lockdepTask', A.fn()),
  lrSignallingSection: m('lrSignallingSection', A.fn()),
  signallingSection: m('signallingSection', A.fn()),
  toDisposable: m('toDisposable', A.fn()),
  unwrap: m('unwrap', A.fence),
  unwrapMerge: m('unwrapMerge', A.fence, A.fence),
  useClock: m(
    'useClock',
    make(
      () => api.realClock,
      (v) =>
        typeof (v as { now?: unknown } | null)?.now === 'function' &&
        typeof (v as { setTimer?: unknown }).setTimer === 'function' &&
        typeof (v as { clearTimer?: unknown }).clearTimer === 'function',
    ),
  ),
  wwMutexLockItem: m(
    'wwMutexLockItem',
    A.instance(WwMutex, () => new WwMutex(wd)),
    A.instance(WwAcquireCtx, () => new WwAcquireCtx(wd)),
    A.opts({ relaxUnlock: A.bool() }),
  ),
  schedPriorityName: m('schedPriorityName', priorityArg),
  submitJob: p(
    'submitJob',
    make(freshJob, isFreshJob),
    make(
      () => [],
      (v) =>
        Array.isArray(v) &&
        v.every((b) => isPlainObject(b) && typeof b['write'] === 'boolean' && isExecObject(b['obj'])),
    ),
    signalOnly,
  ),
  toDrmSchedFence: 'takes any value: null for anything but a scheduler fence, the kernel’s to_drm_sched_fence()',
  abandonSharedFenceRegion: m(
    'abandonSharedFenceRegion',
    make(regionBuffer, () => false),
    optional(errnoArg),
    arg(0, (v) => v === 0 || v === undefined),
  ),
  dmaBufExportSyncFile: m(
    'dmaBufExportSyncFile',
    make(() => syncTarget, isSyncTarget),
    A.opts({ write: A.bool(), signal: A.signal }, ['write']),
  ),
  dmaBufImportSyncFile: p(
    'dmaBufImportSyncFile',
    make(() => syncTarget, isSyncTarget),
    A.instance(api.SyncFile, () => new api.SyncFile(mockFence())),
    A.opts({ write: A.bool(), signal: A.signal }, ['write']),
  ),
  exportFence: m(
    'exportFence',
    A.fence,
    A.opts({
      importers: count30(),
      tag: count30(),
      region: A.instance(api.SharedFenceRegion, () => new api.SharedFenceRegion({ slots: 1 })),
    }),
  ),
  exportSyncFile: m(
    'exportSyncFile',
    A.instance(api.SyncFile, () => new api.SyncFile(mockFence())),
    A.opts({
      importers: count30(),
      tag: count30(),
      region: A.instance(api.SharedFenceRegion, () => new api.SharedFenceRegion({ slots: 1 })),
    }),
  ),
  importDmaBuf: m(
    'importDmaBuf',
    make(
      () => UNAVAILABLE,
      () => false,
    ),
  ),
  importFence: m(
    'importFence',
    make(
      () => api.exportFence(mockFence()),
      () => false,
    ),
  ),
  importSyncFile: m(
    'importSyncFile',
    make(
      () => api.exportFence(mockFence()),
      () => false,
    ),
  ),
  isSharedFenceRegion: m(
    'isSharedFenceRegion',
    make(regionBuffer, (v) => v instanceof SharedArrayBuffer),
    optional(A.index(0)),
  ),
  shareDmaBuf: m(
    'shareDmaBuf',
    make(
      () => UNAVAILABLE,
      () => false,
    ),
  ),
  sharedFenceRegionBytes: m(
    'sharedFenceRegionBytes',
    arg(1, (v) => isIndex(v) && (v as number) >= 1 && (v as number) <= 1 << 20),
  ),
  sharedFenceRegionLost: m(
    'sharedFenceRegionLost',
    make(regionBuffer, () => false),
    arg(0, (v) => v === 0 || v === undefined),
  ),
  watchSharedFences: m(
    'watchSharedFences',
    make(regionBuffer, () => false),
    arg(0, (v) => v === 0),
    A.fn(() => true),
  ),
  ttmBoEvictFirst: p(
    'ttmBoEvictFirst',
    A.instance(api.TtmResourceManager, () => new api.TtmSysManager({ unevictable: new TtmLruList() }, { size: 4096 })),
    optional(ttmCtx),
  ),
  ttmBoEvictFlags: m('ttmBoEvictFlags', unavailable(TtmBufferObject)),
  ttmBoEvictionValuable: m('ttmBoEvictionValuable', unavailable(TtmBufferObject), placeArg),
  ttmBoMoveNull: m('ttmBoMoveNull', ...moveArgs()),
  ttmBoMoveSyncCleanup: m('ttmBoMoveSyncCleanup', ...moveArgs()),
  ttmBoMoveMemcpy: p('ttmBoMoveMemcpy', moveArgs()[0]!, ttmCtx, moveArgs()[1]!),
  ttmBoMoveDefault: p('ttmBoMoveDefault', moveArgs()[0]!, A.bool(false), ttmCtx, moveArgs()[1]!),
  ttmBoMoveAccelCleanup: p(
    'ttmBoMoveAccelCleanup',
    moveArgs()[0]!,
    A.fence,
    A.bool(false),
    A.bool(false),
    moveArgs()[1]!,
  ),
};

/** A buffer object and a resource: never valid here, so each position is checked on its own. */
function moveArgs(): Arg[] {
  return [unavailable(TtmBufferObject), unavailable(api.TtmResource)];
}

// ---------------------------------------------------------------------------------------------
// Driving the table

function isClass(value: unknown): value is new (...args: unknown[]) => unknown {
  return typeof value === 'function' && /^class\b/.test(Function.prototype.toString.call(value));
}

/** Own methods of a prototype or class, excluding accessors and the well-known symbols. */
function methodsOf(holder: object, skip: readonly string[]): string[] {
  return Object.getOwnPropertyNames(holder).filter((key) => {
    if (skip.includes(key)) return false;
    const d = Object.getOwnPropertyDescriptor(holder, key)!;
    return typeof d.value === 'function';
  });
}

/** A hostile case for argument `pos`: a hostile value, or an options object with one bad option. */
function hostileCases(a: Arg): fc.Arbitrary<unknown> {
  const direct = fc.constantFrom(...HOSTILE);
  if (a.options === undefined) return direct;
  const perOption = Object.keys(a.options).map((key) =>
    fc.constantFrom(...HOSTILE).map((value) => ({ [key]: value }) as unknown),
  );
  return fc.oneof(direct, ...perOption, fc.constant({ definitelyNotAnOption: 1 }));
}

/**
 * The values the error message may describe: each bad option given, undefined for a required
 * option left out, or the argument itself. A call reports one of them (the first it checks).
 */
function offending(a: Arg, value: unknown): unknown[] {
  if (a.options === undefined) {
    // The message may describe the value, an element of it, or a field of it (missing: undefined).
    if (Array.isArray(value)) return [value, ...value];
    if (isPlainObject(value)) return [value, ...Object.values(value), undefined];
    return [value];
  }
  if (!isPlainObject(value)) return [value];
  const bad: unknown[] = [];
  for (const [key, v] of Object.entries(value)) {
    const option = a.options[key];
    if (option === undefined || (v !== undefined && !option.accepts(v))) bad.push(v, ...(Array.isArray(v) ? v : []));
  }
  for (const key of a.required ?? []) if (value[key] === undefined) bad.push(undefined);
  return bad.length > 0 ? bad : [value];
}

/** Calls, and reports how the call ended. */
async function call(
  fn: (...args: unknown[]) => unknown,
  self: unknown,
  args: unknown[],
  construct: boolean,
): Promise<{ kind: 'ok' | 'thrown' | 'rejected'; error?: unknown }> {
  let result: unknown;
  try {
    result = construct ? Reflect.construct(fn, args) : Reflect.apply(fn, self, args);
  } catch (error) {
    return { kind: 'thrown', error };
  }
  if (typeof (result as { then?: unknown } | null)?.then === 'function') {
    try {
      await result;
    } catch (error) {
      return { kind: 'rejected', error };
    }
  }
  return { kind: 'ok' };
}

const SEED = testSeed();
const RUNS = 40;

function checkOutcome(
  where: string,
  outcome: { kind: string; error?: unknown },
  culprits: readonly unknown[],
  async: boolean,
): void {
  const shown = culprits.map((v) => describeValue(v));
  assert.notEqual(outcome.kind, 'ok', `${where} accepted ${shown.join(' / ')} (seed ${SEED})`);
  assert.ok(
    outcome.error instanceof InvalidArgumentError,
    `${where} with ${shown.join(' / ')} must fail with an ` +
      `InvalidArgumentError, got ${String(outcome.error)} (seed ${SEED})`,
  );
  assert.ok(
    shown.some((text) => outcome.error instanceof Error && outcome.error.message.includes(text)),
    `${where}: the message must say what arrived (${shown.join(' or ')}): ${outcome.error.message}`,
  );
  if (async) assert.equal(outcome.kind, 'rejected', `${where} returns a promise: it must reject, not throw`);
}

async function fuzzCallable(
  where: string,
  args: readonly Arg[],
  target: () => Promise<{ fn: (...a: unknown[]) => unknown; self: unknown; construct: boolean; obj?: unknown }>,
  spec: Spec | undefined,
  async: boolean,
): Promise<void> {
  for (let pos = 0; pos < args.length; pos++) {
    const position = args[pos]!;
    await fc
      .assert(
        fc.asyncProperty(hostileCases(position), async (value) => {
          if (position.accepts(value)) return; // acceptable here: not a hostile case
          const { fn, self, construct, obj } = await target();
          const values = args.map((a) => a.valid(obj));
          if (values.slice(0, pos).includes(UNAVAILABLE)) return; // see UNAVAILABLE
          for (let i = 0; i < values.length; i++) if (values[i] === UNAVAILABLE) values[i] = undefined;
          values[pos] = value;
          const outcome = await call(fn, self, values, construct);
          checkOutcome(`${where} argument ${pos}`, outcome, offending(position, value), async);
          if (obj !== undefined && spec?.use !== undefined) await (spec.use as (o: unknown) => unknown)(obj);
        }),
        { seed: SEED, numRuns: RUNS },
      )
      .catch((err: unknown) => {
        // fast-check keeps the failed assertion as the cause; the test report should show it.
        const cause = (err as { cause?: unknown }).cause;
        const reason = cause instanceof Error ? cause.message : String(cause);
        throw new Error(`${where}, argument ${pos}: ${reason}\n${(err as Error).message}`);
      });
  }
}

describe('hostile input against the public API', () => {
  it('sanity: a hostile option fails with a typed error and the object stays usable', async () => {
    const fence = mockFence();
    await assert.rejects(fence.wait({ signal: new AbortController() as never }), InvalidArgumentError);
    assert.equal(fence.signal(), true);
  });

  it('the table covers every export, constructor and method, or says why not', (t) => {
    const missing: string[] = [];
    for (const [name, why] of Object.entries(NOT_SWEPT)) {
      assert.ok(name in api, `NOT_SWEPT lists ${name}, which dmabuf does not export`);
      assert.ok(!(name in SPECS) && !(name in FUNCTIONS), `${name} is both swept and NOT_SWEPT`);
      t.diagnostic(`not swept: ${name}: ${why}`);
    }
    for (const [name, value] of Object.entries(api)) {
      if (typeof value !== 'function' || name in NOT_SWEPT) continue;
      if (!isClass(value)) {
        if (!(name in FUNCTIONS)) missing.push(`function ${name}`);
        continue;
      }
      const spec = SPECS[name];
      if (spec === undefined) {
        missing.push(`class ${name}`);
        continue;
      }
      const covered = new Set([
        ...(spec.methods ?? []).map((x) => x.name),
        ...(spec.statics ?? []).map((x) => x.name),
        ...(spec.noArgs ?? []),
        ...Object.keys(spec.exempt ?? {}),
      ]);
      if (
        spec.ctor === undefined &&
        !('constructor' in (spec.exempt ?? {})) &&
        Object.getPrototypeOf(value) !== Error
      ) {
        // A constructor without arguments needs no fuzzing; say so by an empty ctor list.
        if (value.length > 0) missing.push(`${name} constructor`);
      }
      for (const method of methodsOf(value.prototype as object, ['constructor'])) {
        if (!covered.has(method)) missing.push(`${name}.prototype.${method}`);
      }
      for (const method of methodsOf(value, ['length', 'name', 'prototype'])) {
        if (!covered.has(method)) missing.push(`${name}.${method}`);
      }
    }
    assert.deepEqual(missing, [], 'exports the fuzz table does not cover');
  });

  for (const [name, spec] of Object.entries(SPECS)) {
    const Ctor = (api as Record<string, unknown>)[name] as (new (
      ...args: unknown[]
    ) => unknown) &
      Record<string, (...args: unknown[]) => unknown>;
    describe(name, () => {
      if (spec.ctor !== undefined && spec.ctor.length > 0) {
        it('constructor', () =>
          fuzzCallable(
            `new ${name}`,
            spec.ctor!,
            async () => ({ fn: Ctor as never, self: undefined, construct: true }),
            undefined,
            false,
          ));
      }
      for (const method of spec.methods ?? []) {
        it(`${method.name}()`, () =>
          fuzzCallable(
            `${name}.prototype.${method.name}`,
            method.args,
            async () => {
              const made = await spec.make!();
              const obj = made as Record<string, unknown>;
              // Some factories return a bundle: the object is its single class-typed member.
              const self =
                (obj as { self?: unknown }).self ??
                (obj as { buf?: unknown }).buf ??
                (obj as { bo?: unknown }).bo ??
                (made as unknown);
              return {
                fn: (self as Record<string, (...a: unknown[]) => unknown>)[method.name]!,
                self,
                construct: false,
                obj: made,
              };
            },
            spec,
            method.async === true,
          ));
      }
      for (const method of spec.statics ?? []) {
        it(`static ${method.name}()`, () =>
          fuzzCallable(
            `${name}.${method.name}`,
            method.args,
            async () => ({ fn: Ctor[method.name]!, self: Ctor, construct: false }),
            undefined,
            method.async === true,
          ));
      }
    });
  }

  describe('functions', () => {
    for (const [name, method] of Object.entries(FUNCTIONS)) {
      if (typeof method === 'string') continue;
      it(`${name}()`, () =>
        fuzzCallable(
          name,
          method.args,
          async () => ({ fn: (api as Record<string, unknown>)[name] as never, self: undefined, construct: false }),
          undefined,
          method.async === true,
        ));
    }
  });
});
