/**
 * dmabuf/node: Node-only additions on top of the browser-safe core.
 *
 * Today it re-exports the core; the validator's async-context tracking (AsyncLocalStorage) and
 * the worker-backed soft device will live here.
 */
export * from './index.js';
