/**
 * dmabuf: the Linux kernel's GPU buffer-sharing and synchronisation stack for JavaScript.
 *
 * This entry point is browser-safe: nothing below it imports `node:` modules, and it bundles
 * into any format (no `import.meta`). Node-only additions live in `dmabuf/node`; the soft device,
 * whose engines are workers started from files next to its modules, in `dmabuf/soft`; helpers for
 * users' own tests (a virtual clock, a seeded PRNG, mock fences) in `dmabuf/testing`.
 *
 * The export list is explicit: it is the public API, what users need to use the library and to
 * write drivers for it (ops tables, resource managers, moves). Internal plumbing stays out:
 * argument checks, the validator's hook binding and installers, TTM's LRU walking and gutting
 * helpers, the shared-memory word waiter. `test/index.test.ts` checks the list against the
 * modules and the published types.
 */

// The global Disposable types that the declarations below use (types only, see the module).
export type {} from './base/disposable.js';

// Errors and the outcome rules (base/errors).
export {
  AlreadyLockedError,
  BugError,
  DmaBufError,
  ERRNO,
  type ErrnoCode,
  FenceTimeoutError,
  InvalidArgumentError,
  type InvalidArgumentErrorOptions,
  NotSubmittedError,
  WwDeadlockError,
} from './base/errors.js';
export { type Clock, getClock, realClock, type TimerHandle, type TimerOptions, useClock } from './base/clock.js';
export { DisposableStore, Kref, LockGuard, toDisposable } from './base/lifecycle.js';
export { LockClass, type LockClassKind, type SignallingCookie } from './base/lockdep-hooks.js';
export {
  type WorkFailure,
  type WorkFn,
  type WorkItemOptions,
  WorkQueue,
  type WorkQueueOptions,
} from './base/workqueue.js';

// Fences.
export {
  DmaFence,
  type DmaFenceInit,
  type DmaFenceNamedInit,
  type DmaFenceOps,
  type FenceCallback,
  type FenceStatus,
  type FenceWaitOptions,
  fenceContextAlloc,
} from './fence/dma-fence.js';
export { DmaFenceArray, type DmaFenceArrayInit } from './fence/dma-fence-array.js';
export {
  type ChainGcPolicy,
  type ChainLookup,
  type ChainReachableStats,
  DmaFenceChain,
  type DmaFenceChainInit,
} from './fence/dma-fence-chain.js';
export { dedupFences, unwrap, unwrapMerge } from './fence/dma-fence-unwrap.js';
export { SW_SYNC_DEFAULT_NAME, SwSyncTimeline, SyncPt } from './fence/sw-sync.js';
export { SYNC_FILE_NAME_MAX, type SyncFenceInfo, SyncFile, type SyncFileInfo } from './fence/sync-file.js';
export {
  SYNCOBJ_WAIT_FOR_SUBMIT_TIMEOUT,
  Syncobj,
  type SyncobjAddPointResult,
  type SyncobjFindOptions,
  type SyncobjInit,
  type SyncobjQueryOptions,
  type SyncobjWaitEntry,
  type SyncobjWaitOptions,
} from './fence/syncobj.js';

// Fences and timelines shared with other threads (shared memory).
export {
  abandonSharedFenceRegion,
  exportFence,
  exportSyncFile,
  ImportedFence,
  importFence,
  importSyncFile,
  isSharedFenceRegion,
  type SharedFenceDescriptor,
  type SharedFenceExportOptions,
  SharedFenceRegion,
  type SharedFenceRegionOptions,
  sharedFenceRegionBytes,
  sharedFenceRegionLost,
  watchSharedFences,
} from './fence/shared-fence.js';
export {
  type SharedTimelineDescriptor,
  type SharedTimelineInit,
  SharedTimeline,
  SharedTimelinePoint,
} from './fence/shared-timeline.js';

// Locks and the validator.
export {
  beginSignalling,
  disableLockdep,
  enableLockdep,
  endSignalling,
  type HeldLock,
  type HeldLockTracker,
  // Where there is no AsyncLocalStorage (browsers), a program gives the validator its own tracker.
  installHeldLockTracker,
  type LockdepMode,
  type LockdepOptions,
  type LockdepReport,
  lockdepEnabled,
  lockdepReports,
  lockdepTask,
  lrBeginSignalling,
  lrEndSignalling,
  lrSignallingSection,
  mightReclaim,
  resetLockdep,
  signallingSection,
} from './locking/lockdep.js';
export { Mutex, type MutexLockOptions } from './locking/mutex.js';
export {
  WwAcquireCtx,
  type WwAcquireCtxOptions,
  type WwAlgorithm,
  WwClass,
  type WwLockOptions,
  WwMutex,
} from './locking/ww-mutex.js';
export {
  type BackoffOutcome,
  type LockItem,
  type LockItemOps,
  type SlowLockResult,
  TransLockList,
  type TransLockListInit,
  type WwMutexLockItemInit,
  wwMutexLockItem,
} from './locking/locklist.js';

// Reservations and multi-object locking.
export {
  DmaResv,
  type DmaResvFenceEntry,
  type DmaResvInit,
  type DmaResvUnlockedEntry,
  DmaResvUsage,
  type DmaResvUsageLike,
  type DmaResvUsageName,
  type DmaResvWaitOptions,
  reservationWwClass,
} from './resv/dma-resv.js';
export { DrmExec, type DrmExecObject, type DrmExecOptions } from './exec/drm-exec.js';

// Buffers: heap, pool, deferred free, shrinkers.
export {
  DEFAULT_SEEKS,
  SHRINK_BATCH,
  Shrinker,
  type ShrinkerOps,
  type ShrinkerOptions,
  ShrinkerRegistry,
} from './heap/shrinker.js';
export {
  PAGE_SIZE,
  PagePool,
  type PoolBuffer,
  type PagePoolClassStats,
  type PagePoolOptions,
  type PagePoolStats,
} from './heap/page-pool.js';
export { DeferredFreeList, type DeferredFreeListOptions, DeferredFreeReason } from './heap/deferred-free.js';
export { type CpuAccessOptions, DmaBuf, type DmaBufAccessHook, type DmaBufExportInfo } from './heap/dma-buf.js';
export {
  type DmaBufLeak,
  DmaHeap,
  type DmaHeapAllocateOptions,
  type DmaHeapAllocator,
  type DmaHeapOptions,
  type DmaHeapStats,
} from './heap/dma-heap.js';

// Buffers shared with other threads: memory plus implicit fences, and the sync-file ioctls.
export {
  type DmaBufSyncFileOptions,
  type DmaBufSyncTarget,
  dmaBufExportSyncFile,
  dmaBufImportSyncFile,
} from './heap/dma-buf-sync-file.js';
export { type DmaBufDescriptor, type DmaBufExporter, DmaBufShare, shareDmaBuf } from './heap/dma-buf-export.js';
export type { MessagePortLike } from './heap/dma-buf-shared-resv.js';
export { type DmaBufAttachOptions, DmaBufAttachment, ImportedDmaBuf, importDmaBuf } from './heap/dma-buf-import.js';

// TTM: buffer objects in budgeted memory types, and what a driver plugs into it.
export {
  TTM_NUM_MEM_TYPES,
  TtmMemType,
  TtmOperationCtx,
  type TtmPlace,
  TtmPlaceFlags,
  type TtmPlacement,
} from './ttm/ttm-placement.js';
export { TTM_MAX_BO_PRIORITY, TtmLruBulkMove, TtmLruItem, TtmLruList } from './ttm/ttm-lru.js';
export {
  type TtmLruHost,
  TtmResource,
  type TtmResourceOwner,
  TtmResourceCursor,
  TtmResourceManager,
  type TtmResourceManagerOptions,
} from './ttm/ttm-resource.js';
export {
  TtmRangeManager,
  type TtmRangeManagerOptions,
  TtmSysManager,
  type TtmSysManagerOptions,
} from './ttm/ttm-range-manager.js';
export { TtmTt, TtmTtFlags } from './ttm/ttm-tt.js';
export { TtmCopyEngine, type TtmCopyEngineOptions } from './ttm/ttm-copy-engine.js';
export {
  TTM_BO_WAIT_TIMEOUT_MS,
  type TtmBoDevice,
  type TtmBoInit,
  type TtmBoInitPlaced,
  TtmBoType,
  TtmBufferObject,
  type TtmDeviceFuncs,
  type TtmMoveResult,
  type TtmReserveOptions,
  ttmBoEvictFirst,
} from './ttm/ttm-bo.js';
export { ttmBoMoveAccelCleanup, ttmBoMoveMemcpy, ttmBoMoveNull, ttmBoMoveSyncCleanup } from './ttm/ttm-bo-util.js';
export type {
  TtmDelayedDeleteHost,
  TtmDelayedDeleteMode,
  TtmDelayedDeleteStrategy,
} from './ttm/ttm-bo-delayed-delete.js';
export { ttmBoEvictFlags, ttmBoEvictionValuable, ttmBoMoveDefault } from './ttm/ttm-device-funcs.js';
export { TtmDevice, type TtmDeviceOptions, type TtmDeviceStats, type TtmFailure } from './ttm/ttm-device.js';

// The GPU scheduler: entities queue jobs, the scheduler runs them when their dependencies signaled.
export {
  DRM_SCHED_DRIVER_NAME,
  DrmSchedFence,
  type DrmSchedFenceMember,
  toDrmSchedFence,
} from './sched/sched-fence.js';
export {
  DRM_SCHED_POLICIES,
  DRM_SCHED_PRIORITY_COUNT,
  type DrmSchedPolicy,
  DrmSchedPriority,
  type DrmSchedQueueStats,
  DrmSchedRq,
  DrmSchedRqNode,
  fairPolicy,
  fifoPolicy,
  rrPolicy,
  schedPriorityName,
} from './sched/sched-rq.js';
export {
  type DrmSchedExecutor,
  ManualExecutor,
  macrotaskExecutor,
  microtaskExecutor,
} from './sched/sched-executor.js';
export {
  type DrmSchedArming,
  DrmSchedEntityKilledError,
  DrmSchedJob,
  type DrmSchedJobEntity,
  type DrmSchedJobInit,
  type DrmSchedJobScheduler,
  type DrmSchedJobState,
} from './sched/sched-job.js';
export {
  DRM_SCHED_ENTITY_DESTROY_WAIT,
  DrmSchedEntity,
  type DrmSchedEntityInit,
  type DrmSchedEntityScheduler,
  type DrmSchedEntityStats,
  type DrmSchedFlushOptions,
  type DrmSchedGuiltyFlag,
} from './sched/sched-entity.js';
export {
  type DrmGpuSchedulerInit,
  DrmGpuScheduler,
  DrmGpuSchedStat,
  type DrmSchedBackendOps,
  type DrmSchedFailure,
  type DrmSchedObserver,
} from './sched/sched-main.js';
export { type DrmSchedBufferAccess, type SubmitJobOptions, submitJob } from './sched/sched-submit.js';
