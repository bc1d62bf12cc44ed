/**
 * soft-worker-platform: the threads the soft device runs on, behind one small interface.
 *
 * Overview: the soft device's engines are threads: `worker_threads` in Node, Web Workers in a
 * browser. Everything the device needs from them is a {@link WorkerPlatform}: start a worker on a
 * module that exports `main(endpoint, data)`, post messages both ways, learn that it failed or
 * exited, terminate it, and (in Node) say whether it may keep the process alive. This file holds
 * the interface and the browser implementation ({@link webWorkerPlatform}); the Node one is in
 * `soft-worker-node.ts` and is exported by `dmabuf/node`, which also installs it as the default.
 *
 * Contract:
 * - A worker entry is an ES module exporting `main(endpoint: WorkerEndpoint, data: unknown)`;
 *   `data` arrives structured-cloned (so `SharedArrayBuffer`s are shared, not copied).
 * - `events.exit` is called once, after the worker stopped for any reason (including
 *   `terminate()`); `events.error` before it when the worker failed. A browser cannot observe a
 *   worker that closes itself, so there only failures and `terminate()` produce `exit`.
 * - {@link defaultWorkerPlatform} is the installed platform, else Web Workers where the global
 *   `Worker` exists; elsewhere it throws and says to import `dmabuf/node`.
 * - Browser-safe: no `node:` imports.
 *
 * @example
 * ```ts
 * import { defaultWorkerPlatform } from 'dmabuf/node';
 * const platform = defaultWorkerPlatform(); // dmabuf/node installed worker_threads; a page gets Web Workers
 * console.log(platform.name); // 'node'
 * ```
 */

import { DmaBufError } from '../../base/errors.js';

/** The worker's side of the channel to its parent. */
export interface WorkerEndpoint {
  /** Posts `message`; `transfer` lists the `MessagePort`s (and buffers) it moves along. */
  postMessage(message: unknown, transfer?: readonly unknown[]): void;
  /** Installs the one handler for the parent's messages. */
  onMessage(handler: (message: unknown) => void): void;
}

/** What a worker reports to its parent. */
export interface SoftWorkerEvents {
  message?(message: unknown): void;
  /** The worker failed (an uncaught error, out of memory); `exit` follows. */
  error?(error: Error): void;
  /** The worker is gone; `code` is its exit code (1 after `terminate()` in Node). */
  exit?(code: number): void;
}

/** Options of {@link WorkerPlatform.spawn}. */
export interface SoftWorkerOptions {
  /** Thread name for debuggers. */
  readonly name?: string;
  /** Heap limits of the worker (Node only), e.g. to observe a worker running out of memory. */
  readonly resourceLimits?: { readonly maxOldGenerationSizeMb?: number; readonly maxYoungGenerationSizeMb?: number };
  /** What `data` moves to the worker (the `MessagePort`s of shared-buffer descriptors). */
  readonly transfer?: readonly unknown[];
}

/** A running worker, seen from its parent. */
export interface SoftWorker {
  /** Posts `message`; `transfer` lists the `MessagePort`s (and buffers) it moves along. */
  postMessage(message: unknown, transfer?: readonly unknown[]): void;
  /** Stops the worker; resolves once it is gone. Idempotent. */
  terminate(): Promise<void>;
  /** Let the worker keep the process alive (Node; no-op in browsers). */
  ref(): void;
  /** Let the process exit while the worker runs (Node; no-op in browsers). */
  unref(): void;
}

/** A way to start workers. */
export interface WorkerPlatform {
  readonly name: string;
  /**
   * Starts a worker running `entry`'s `main(endpoint, data)`.
   * @param entry an ES module URL (a `.ts` one too in Node, when running from sources under tsx).
   */
  spawn(entry: URL, data: unknown, events: SoftWorkerEvents, options?: SoftWorkerOptions): SoftWorker;
}

/** The parts of the browser's `Worker` this file uses (the DOM library is not compiled in). */
interface WebWorker {
  postMessage(message: unknown, transfer?: unknown[]): void;
  terminate(): void;
  addEventListener(type: 'message', listener: (event: { data: unknown }) => void): void;
  addEventListener(type: 'error', listener: (event: { message?: string; error?: unknown }) => void): void;
  addEventListener(type: 'messageerror', listener: () => void): void;
}
type WebWorkerConstructor = new (url: URL | string, options: { type: 'module'; name?: string }) => WebWorker;

/** The boot message a Web Worker waits for before it imports its entry. */
interface WebBoot {
  readonly type: 'dmabuf-boot';
  readonly entry: string;
  readonly data: unknown;
}

/**
 * Web Workers: each worker starts on `soft-worker-web-boot.js` (next to this module), which
 * imports the entry named in its first message and calls `main`.
 */
export const webWorkerPlatform: WorkerPlatform = Object.freeze({
  name: 'web',
  spawn(entry: URL, data: unknown, events: SoftWorkerEvents, options?: SoftWorkerOptions): SoftWorker {
    const WorkerCtor = (globalThis as { Worker?: WebWorkerConstructor }).Worker;
    if (WorkerCtor === undefined) {
      throw new DmaBufError('EOPNOTSUPP', 'webWorkerPlatform: this environment has no Worker; in Node use dmabuf/node');
    }
    const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
    const boot = new URL(`./soft-worker-web-boot${ext}`, import.meta.url);
    const worker = new WorkerCtor(boot, {
      type: 'module',
      ...(options?.name !== undefined ? { name: options.name } : {}),
    });
    let gone = false;
    const exit = (code: number): void => {
      if (gone) return;
      gone = true;
      worker.terminate();
      events.exit?.(code);
    };
    worker.addEventListener('message', (event) => {
      if (!gone) events.message?.(event.data);
    });
    worker.addEventListener('error', (event) => {
      if (gone) return;
      const cause = event.error;
      events.error?.(cause instanceof Error ? cause : new Error(event.message ?? 'worker failed'));
      exit(1);
    });
    const message: WebBoot = { type: 'dmabuf-boot', entry: entry.href, data };
    worker.postMessage(message, [...(options?.transfer ?? [])]);
    return {
      postMessage: (m: unknown, transfer?: readonly unknown[]) => {
        if (!gone) worker.postMessage(m, [...(transfer ?? [])]);
      },
      terminate: async () => exit(1),
      ref: () => {},
      unref: () => {},
    };
  },
});

let installed: WorkerPlatform | undefined;

/** Makes `platform` the default of {@link defaultWorkerPlatform} (`dmabuf/node` installs Node's). */
export function installWorkerPlatform(platform: WorkerPlatform): void {
  installed = platform;
}

/**
 * The platform devices use when none is given.
 * @throws {DmaBufError} `EOPNOTSUPP` where there is neither an installed platform nor `Worker`.
 */
export function defaultWorkerPlatform(): WorkerPlatform {
  if (installed !== undefined) return installed;
  if (typeof (globalThis as { Worker?: unknown }).Worker === 'function') return webWorkerPlatform;
  throw new DmaBufError(
    'EOPNOTSUPP',
    'No worker platform: import from dmabuf/node in Node (it installs worker_threads), or pass one explicitly',
  );
}
