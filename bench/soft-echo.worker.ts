/**
 * The baseline worker of the soft-device benchmarks: answers each message at once (`'stamp'`
 * with its wall-clock time), the way a worker serving one `postMessage` per job would.
 */
import type { WorkerEndpoint } from '../src/device/soft/soft-worker-platform.js';

export function main(endpoint: WorkerEndpoint): void {
  endpoint.onMessage((message) => {
    endpoint.postMessage(message === 'stamp' ? performance.timeOrigin + performance.now() : message);
  });
}
