/**
 * The `render` scenario's compositor thread: the worker entry `render-compositor.ts` starts.
 *
 * Overview: {@link main} imports every client's shared target buffers from their descriptors
 * (`importDmaBuf`), then, for every frame the main thread announces, opens a CPU read of the
 * target (`beginCpuAccess({ write: false })`): that waits, through the buffer's shared implicit
 * fences, for the gfx job that drew the frame, and publishes the read as a fence of its own, so
 * the client's next write to the buffer waits for it. It checks the frame word for word
 * (`render-pattern.ts`), ends the read and reports back: when it saw the frame (wall-clock ms,
 * comparable between threads) and what was wrong, if anything. Frames are handled independently,
 * so one client's slow frame does not hold up another's. Reports go back once per refresh of
 * the display (`refreshMs`, a vblank), all of that refresh in one message: that is when a
 * compositor releases the buffers it latched, and it wakes the clients together.
 *
 * Contract (messages): in, `{ type: 'frame', ... }` ({@link CompositorFrame}) and
 * `{ type: 'stop' }`; out, `{ type: 'ready' }` once every buffer is imported,
 * `{ type: 'vblank', reports }` with one {@link CompositorReport} per frame seen since the last,
 * and `{ type: 'stopped' }` once every report is out and every import is closed.
 * A read that does not start within `timeoutMs` is reported as an error, never left hanging.
 *
 * @example
 * ```ts
 * // Started by RenderCompositor with nodeWorkerPlatform.spawn(url of this module, data).
 * import { main } from './render-compositor-worker.js';
 * console.log(typeof main); // 'function'
 * ```
 */

import { sharedNow } from '../../fence/shared-wait.js';
import type { DmaBufDescriptor } from '../../heap/dma-buf-export.js';
import { type ImportedDmaBuf, importDmaBuf } from '../../heap/dma-buf-import.js';
import type { WorkerEndpoint } from '../../device/soft/soft-worker-platform.js';
import { checkFrame } from './render-pattern.js';

/** What the compositor starts with. */
export interface CompositorData {
  readonly seed: number;
  /** Words of every texture (the frame check needs it). */
  readonly texWords: number;
  /** Every target buffer, by index. */
  readonly targets: readonly DmaBufDescriptor[];
  /** Longest wait for a frame's fences, in ms. */
  readonly timeoutMs: number;
  /** The display's refresh period (ms): reports go back in one batch per refresh. */
  readonly refreshMs: number;
}

/** A frame to composite: which target holds it and what it must hold. */
export interface CompositorFrame {
  readonly type: 'frame';
  readonly target: number;
  readonly client: number;
  readonly frame: number;
  readonly textures: readonly [number, number];
  readonly versions: readonly [number, number];
}

/** The compositor saw a frame. */
export interface CompositorReport {
  readonly type: 'seen';
  readonly client: number;
  readonly frame: number;
  readonly target: number;
  /** Wall-clock ms (`performance.timeOrigin + performance.now()`) when the frame was readable. */
  readonly seenAt: number;
  /** What was wrong with the frame, or null. */
  readonly error: string | null;
}

/** The worker's life (see the module overview). */
export async function main(endpoint: WorkerEndpoint, data: CompositorData): Promise<void> {
  const views: ImportedDmaBuf[] = data.targets.map((d) => importDmaBuf(d));
  let pending = 0;
  let stopping = false;
  const batch: CompositorReport[] = [];
  const flush = (): void => {
    if (batch.length > 0) endpoint.postMessage({ type: 'vblank', reports: batch.splice(0) });
  };
  const vblank = setInterval(flush, data.refreshMs);
  const finish = (): void => {
    clearInterval(vblank);
    flush();
    for (const view of views) view.close();
    endpoint.postMessage({ type: 'stopped' });
  };
  const composite = async (frame: CompositorFrame): Promise<void> => {
    const view = views[frame.target]!;
    let seenAt = 0;
    let error: string | null = null;
    try {
      await view.beginCpuAccess({ write: false, timeout: data.timeoutMs });
      seenAt = sharedNow();
      try {
        const bytes = view.bytes();
        const words = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
        error = checkFrame(words, { ...frame, seed: data.seed }, data.texWords);
      } finally {
        view.endCpuAccess();
      }
    } catch (err) {
      error = `client ${frame.client} frame ${frame.frame}: ${err instanceof Error ? err.message : String(err)}`;
    }
    const report: CompositorReport = {
      type: 'seen',
      client: frame.client,
      frame: frame.frame,
      target: frame.target,
      seenAt,
      error,
    };
    batch.push(report);
  };
  endpoint.onMessage((message) => {
    const m = message as CompositorFrame | { readonly type: 'stop' };
    if (m.type === 'stop') {
      stopping = true;
      if (pending === 0) finish();
      return;
    }
    pending++;
    void composite(m).finally(() => {
      if (--pending === 0 && stopping) finish();
    });
  });
  endpoint.postMessage({ type: 'ready' });
}
