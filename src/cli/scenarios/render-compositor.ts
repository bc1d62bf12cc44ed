/**
 * The `render` scenario's compositor, seen from the main thread: a real `worker_threads` worker
 * that consumes the clients' frames through shared buffers and their shared implicit fences.
 *
 * Overview: {@link RenderCompositor.start} shares nothing itself; it gets the target buffers'
 * shares ({@link DmaBufShare}), sends one descriptor of each to a new worker running
 * `render-compositor-worker.ts` (the `.ts` file from sources under tsx, the `.js` file from the
 * compiled package: the same rule the soft device uses for its engine workers), and resolves once
 * the worker has imported them all. {@link RenderCompositor.present} announces a frame; the
 * worker waits for its fences, checks it and reports ({@link CompositorReport}) to `onReport`.
 *
 * Contract:
 * - {@link RenderCompositor.stop} lets the frames announced so far be reported, closes the
 *   worker's imports and terminates it; it is idempotent and always ends the worker (after
 *   `timeoutMs` it terminates it anyway). A worker that fails is reported through `onFailure`,
 *   and `start` rejects when the worker fails before it is ready.
 * - The worker is unref'ed: it never keeps the process alive by itself.
 *
 * @example
 * ```ts
 * import { RenderCompositor } from './render-compositor.js';
 * console.log(typeof RenderCompositor.start); // 'function'
 * ```
 */

import type { DmaBufShare } from '../../heap/dma-buf-export.js';
import { nodeWorkerPlatform } from '../../device/soft/soft-worker-node.js';
import type { SoftWorker } from '../../device/soft/soft-worker-platform.js';
import type { CompositorData, CompositorFrame, CompositorReport } from './render-compositor-worker.js';

export type { CompositorFrame, CompositorReport } from './render-compositor-worker.js';

/** Options of {@link RenderCompositor.start}. */
export interface RenderCompositorOptions {
  readonly seed: number;
  readonly texWords: number;
  /** The target buffers, by index (a frame names its target by index). */
  readonly targets: readonly DmaBufShare[];
  /** Longest wait for the worker to start, or to stop (ms). */
  readonly timeoutMs: number;
  /** Longest wait for a frame's fences (ms); the frame is reported as failed then. */
  readonly fenceTimeoutMs: number;
  /** The display's refresh period (ms): reports arrive in one batch per refresh. */
  readonly refreshMs: number;
  onReport(report: CompositorReport): void;
  onFailure(error: Error): void;
}

/** The worker entry, next to this module (`.ts` from sources, `.js` from the package). */
function workerEntry(): URL {
  return new URL(`./render-compositor-worker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url);
}

/** The compositor worker (see the module overview). */
export class RenderCompositor {
  readonly #worker: SoftWorker;
  readonly #timeoutMs: number;
  #stopped: (() => void) | null = null;
  #stopping: Promise<void> | null = null;

  private constructor(worker: SoftWorker, timeoutMs: number) {
    this.#worker = worker;
    this.#timeoutMs = timeoutMs;
  }

  /** Starts the worker; resolves once it has imported every target. */
  static start(options: RenderCompositorOptions): Promise<RenderCompositor> {
    const targets = options.targets.map((share) => share.descriptor());
    const data: CompositorData = {
      seed: options.seed,
      texWords: options.texWords,
      targets,
      timeoutMs: options.fenceTimeoutMs,
      refreshMs: options.refreshMs,
    };
    return new Promise<RenderCompositor>((resolve, reject) => {
      let compositor: RenderCompositor | null = null;
      let ready = false;
      const timer = setTimeout(() => {
        void worker.terminate();
        reject(new Error(`the compositor worker did not start within ${options.timeoutMs} ms`));
      }, options.timeoutMs);
      const worker = nodeWorkerPlatform.spawn(
        workerEntry(),
        data,
        {
          message: (message) => {
            const type = (message as { type?: string } | null)?.type;
            if (type === 'ready') {
              ready = true;
              clearTimeout(timer);
              resolve(compositor!);
            } else if (type === 'vblank') {
              for (const report of (message as { reports: CompositorReport[] }).reports) options.onReport(report);
            } else if (type === 'stopped') compositor?.stoppedByWorker();
          },
          error: (error) => {
            clearTimeout(timer);
            if (ready) options.onFailure(error);
            else reject(error);
          },
          exit: () => {
            clearTimeout(timer);
            compositor?.stoppedByWorker();
            if (!ready) reject(new Error('the compositor worker exited before it was ready'));
          },
        },
        { name: 'render compositor', transfer: targets.map((d) => d.port) },
      );
      worker.unref();
      compositor = new RenderCompositor(worker, options.timeoutMs);
    });
  }

  /** @internal the worker said it stopped, or exited. */
  stoppedByWorker(): void {
    this.#stopped?.();
  }

  /** Announces a frame: the worker waits for it, checks it and reports. */
  present(frame: Omit<CompositorFrame, 'type'>): void {
    const message: CompositorFrame = { type: 'frame', ...frame };
    this.#worker.postMessage(message);
  }

  /** Lets the announced frames be reported, then ends the worker. Idempotent. */
  stop(): Promise<void> {
    this.#stopping ??= new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, this.#timeoutMs);
      this.#stopped = () => {
        clearTimeout(timer);
        resolve();
      };
      this.#worker.postMessage({ type: 'stop' });
    }).then(() => this.#worker.terminate());
    return this.#stopping;
  }
}
