/**
 * What the soft-device benchmarks share: devices on worker threads, the echo worker that is
 * their `postMessage` baseline, and a kernel that stamps the time.
 *
 * Overview: the `bench/soft-*.bench.ts` files measure the soft device (`src/device/soft/`)
 * against what a user would otherwise write: a worker that answers `postMessage`s, or the main
 * thread doing the work itself. Every worker here, device engines and echo workers alike, is
 * started the same way ({@link nodeWorkerPlatform}), so start-up differences do not enter the
 * numbers; the numbers are taken after every worker reported ready.
 *
 * Contract: {@link echoWorker} answers each message with the same message, except `'stamp'`,
 * answered with the worker's wall-clock time (`performance.timeOrigin + performance.now()`).
 *
 * @example
 * ```ts
 * import { echoWorker, softDevice } from './soft-common.js';
 * await using device = await softDevice({ copy: 1 });
 * await using echo = await echoWorker();
 * console.log(await echo.roundTrip('ping')); // 'ping'
 * ```
 */

import { SoftDevice, type SoftDeviceOptions } from '../src/device/soft/soft-device.js';
import { nodeWorkerPlatform } from '../src/device/soft/soft-worker-node.js';
import type { SoftWorker } from '../src/device/soft/soft-worker-platform.js';

/** A started device (every worker ready), with the bench kernels registered. */
export async function softDevice(
  engines: Readonly<Record<string, number>>,
  options: Omit<SoftDeviceOptions, 'engines' | 'platform'> = {},
): Promise<SoftDevice> {
  const device = new SoftDevice({ name: 'bench', ...options, engines, platform: nodeWorkerPlatform });
  await device.registerKernels(new URL('./soft-bench-kernels.ts', import.meta.url));
  await device.ready();
  return device;
}

/** A worker that answers every message (see the module contract). */
export interface EchoWorker extends AsyncDisposable {
  /** Posts `message` and resolves with the answer. */
  roundTrip(message: unknown): Promise<unknown>;
  /**
   * Posts `'stamp'`; resolves with the worker's time when it answered and this thread's time when
   * the answer's message event ran (both wall-clock milliseconds).
   */
  stamp(): Promise<{ readonly sent: number; readonly answered: number; readonly received: number }>;
  /** Posts `count` messages at once and resolves when every answer arrived. */
  pipeline(count: number): Promise<void>;
}

/** Starts an {@link EchoWorker} and waits until it answers. */
export async function echoWorker(): Promise<EchoWorker> {
  let onAnswer: ((message: unknown) => void) | undefined;
  const worker: SoftWorker = nodeWorkerPlatform.spawn(new URL('./soft-echo.worker.ts', import.meta.url), null, {
    message: (message) => onAnswer?.(message),
  });
  const echo: EchoWorker = {
    roundTrip(message) {
      return new Promise((resolve) => {
        onAnswer = resolve;
        worker.postMessage(message);
      });
    },
    stamp() {
      return new Promise((resolve) => {
        const sent = sharedClock();
        onAnswer = (answered) => resolve({ sent, answered: answered as number, received: sharedClock() });
        worker.postMessage('stamp');
      });
    },
    pipeline(count) {
      return new Promise((resolve) => {
        let left = count;
        onAnswer = () => {
          if (--left === 0) resolve();
        };
        for (let i = 0; i < count; i++) worker.postMessage(i);
      });
    },
    [Symbol.asyncDispose]: () => worker.terminate(),
  };
  await echo.roundTrip('ready?');
  return echo;
}

/** Wall-clock milliseconds comparable between threads. */
export function sharedClock(): number {
  return performance.timeOrigin + performance.now();
}
