/**
 * dmabuf: the Linux kernel's GPU buffer-sharing and synchronisation stack for JavaScript.
 *
 * This entry point is browser-safe: nothing below it imports `node:` modules, and it bundles
 * into any format (no `import.meta`). Node-only additions live in `dmabuf/node`; the soft device,
 * whose engines are workers started from files next to its modules, in `dmabuf/soft`.
 */
// The global Disposable types that the declarations below use (types only, see the module).
export type {} from './base/disposable.js';
export * from './base/errors.js';
export * from './base/clock.js';
export * from './base/lifecycle.js';
export * from './base/random.js';
export * from './base/workqueue.js';
export * from './base/lockdep-hooks.js';
export * from './fence/dma-fence.js';
export * from './fence/dma-fence-chain.js';
export * from './fence/sw-sync.js';
export * from './fence/dma-fence-array.js';
export * from './fence/dma-fence-unwrap.js';
export * from './fence/sync-file.js';
export * from './fence/syncobj.js';
export * from './fence/shared-wait.js';
export * from './fence/shared-fence.js';
export * from './fence/shared-timeline.js';
export * from './locking/lockdep.js';
export * from './locking/mutex.js';
export * from './locking/ww-mutex.js';
export * from './locking/locklist.js';
export * from './resv/dma-resv.js';
export * from './exec/drm-exec.js';
export * from './heap/shrinker.js';
export * from './heap/page-pool.js';
export * from './heap/deferred-free.js';
export * from './heap/dma-buf.js';
export * from './heap/dma-heap.js';
export * from './heap/dma-buf-sync-file.js';
export * from './heap/dma-buf-export.js';
export * from './heap/dma-buf-import.js';
export * from './ttm/ttm-placement.js';
export { TTM_MAX_BO_PRIORITY, TtmLruBulkMove, TtmLruItem, TtmLruList } from './ttm/ttm-lru.js';
export * from './ttm/ttm-resource.js';
export * from './ttm/ttm-range-manager.js';
export * from './ttm/ttm-tt.js';
export * from './ttm/ttm-copy-engine.js';
export * from './ttm/ttm-bo.js';
export * from './ttm/ttm-bo-util.js';
export * from './ttm/ttm-bo-delayed-delete.js';
export * from './ttm/ttm-device-funcs.js';
export * from './ttm/ttm-device.js';
export * from './sched/sched-fence.js';
export * from './sched/sched-rq.js';
export * from './sched/sched-executor.js';
export * from './sched/sched-job.js';
export * from './sched/sched-entity.js';
export * from './sched/sched-main.js';
export * from './sched/sched-submit.js';
