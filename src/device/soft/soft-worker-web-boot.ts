/**
 * soft-worker-web-boot: the first module of every soft-device Web Worker.
 *
 * Overview: a Web Worker starts on a script URL and nothing else, so every worker of
 * {@link webWorkerPlatform} starts here: the first message names the real entry module and
 * carries its data; this module imports the entry and calls its `main(endpoint, data)`. Messages
 * that arrive before `main` installs its handler are kept and delivered in order.
 *
 * Contract: a failure to load or run the entry is rethrown as an uncaught error of the worker,
 * so the parent sees the worker's `error` event (a rejected promise alone would stay silent).
 *
 * @example
 * ```ts
 * // Not imported by applications: webWorkerPlatform points new Workers at this module.
 * import { webWorkerPlatform } from 'dmabuf/soft';
 * console.log(webWorkerPlatform.name); // 'web'
 * ```
 */

import type { WorkerEndpoint } from './soft-worker-platform.js';

interface WorkerScope {
  postMessage(message: unknown, transfer?: unknown[]): void;
  addEventListener(type: 'message', listener: (event: { data: unknown }) => void): void;
}

const scope = globalThis as unknown as WorkerScope;
let handler: ((message: unknown) => void) | undefined;
let booted = false;
const early: unknown[] = [];

const endpoint: WorkerEndpoint = {
  postMessage: (message, transfer) => scope.postMessage(message, [...(transfer ?? [])]),
  onMessage(next) {
    handler = next;
    for (const message of early.splice(0)) next(message);
  },
};

scope.addEventListener('message', (event) => {
  if (booted) {
    if (handler === undefined) early.push(event.data);
    else handler(event.data);
    return;
  }
  booted = true;
  const boot = event.data as { entry: string; data: unknown };
  import(boot.entry)
    .then((module: { main(endpoint: WorkerEndpoint, data: unknown): unknown }) => module.main(endpoint, boot.data))
    .catch((err: unknown) => {
      setTimeout(() => {
        throw err;
      }, 0);
    });
});
