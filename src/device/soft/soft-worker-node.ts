/**
 * soft-worker-node: the soft device's threads in Node, on `worker_threads`.
 *
 * Overview: {@link nodeWorkerPlatform} starts each worker on a few lines of bootstrap that
 * import the entry module and call its `main(endpoint, data)` with the worker's `parentPort`.
 * When the entry is a `.ts` file (dmabuf running from its sources under tsx), the bootstrap
 * registers tsx in the worker first: Node 20 does not apply the parent's `--import tsx` loader
 * hooks to workers, although it passes the flag on. From the compiled package the entry is a
 * `.js` file and nothing is registered.
 *
 * Node-only; exported by `dmabuf/node`, which also installs it as the default platform.
 *
 * Contract:
 * - `exit` is reported once per worker, after `error` when the worker failed (an uncaught error,
 *   `ERR_WORKER_OUT_OF_MEMORY` under `resourceLimits`). `process.exit()` in the worker is an
 *   exit with its code.
 * - Workers start unref'ed only when asked (`unref()`); a running, ref'ed worker keeps the
 *   process alive, as Node's workers do.
 *
 * @example
 * ```ts
 * import { nodeWorkerPlatform } from 'dmabuf/node';
 * console.log(nodeWorkerPlatform.name); // 'node'
 * ```
 */

import { Worker, type TransferListItem } from 'node:worker_threads';
import type { SoftWorker, SoftWorkerEvents, SoftWorkerOptions, WorkerPlatform } from './soft-worker-platform.js';

const BOOTSTRAP = `
const { parentPort, workerData } = require('node:worker_threads');
const endpoint = {
  postMessage: (message, transfer) => parentPort.postMessage(message, transfer),
  onMessage: (handler) => parentPort.on('message', handler),
};
(async () => {
  if (workerData.tsx) (await import(workerData.tsx)).register();
  const entry = await import(workerData.entry);
  await entry.main(endpoint, workerData.data);
})().catch((err) => setImmediate(() => { throw err; }));
`;

let tsxApi: string | undefined;

/** The tsx loader API to register in workers that start on TypeScript sources. */
function tsxFor(entry: URL): string | undefined {
  if (!entry.pathname.endsWith('.ts')) return undefined;
  tsxApi ??= import.meta.resolve('tsx/esm/api');
  return tsxApi;
}

/** Node's worker_threads as a {@link WorkerPlatform}. */
export const nodeWorkerPlatform: WorkerPlatform = Object.freeze({
  name: 'node',
  spawn(entry: URL, data: unknown, events: SoftWorkerEvents, options?: SoftWorkerOptions): SoftWorker {
    const worker = new Worker(BOOTSTRAP, {
      eval: true,
      workerData: { entry: entry.href, tsx: tsxFor(entry), data },
      ...(options?.name !== undefined ? { name: options.name } : {}),
      ...(options?.resourceLimits !== undefined ? { resourceLimits: { ...options.resourceLimits } } : {}),
      ...(options?.transfer !== undefined ? { transferList: [...options.transfer] as TransferListItem[] } : {}),
    });
    let exited = false;
    let exitPromise: Promise<void> | undefined;
    worker.on('message', (message: unknown) => events.message?.(message));
    worker.on('error', (error: Error) => events.error?.(error));
    worker.on('exit', (code: number) => {
      exited = true;
      events.exit?.(code);
    });
    return {
      postMessage: (message: unknown, transfer?: readonly unknown[]) => {
        if (!exited) worker.postMessage(message, transfer as TransferListItem[] | undefined);
      },
      terminate: () => {
        exitPromise ??= exited ? Promise.resolve() : worker.terminate().then(() => {});
        return exitPromise;
      },
      ref: () => worker.ref(),
      unref: () => worker.unref(),
    };
  },
});
