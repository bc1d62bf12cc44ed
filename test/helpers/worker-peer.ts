/**
 * Test helper: a real worker thread answering requests, on the soft device's Node platform.
 *
 * `WorkerPeer.start(entry)` spawns `entry` (a module exporting `main(endpoint, data)`, usually
 * built with `serveRequests`) through `nodeWorkerPlatform`, so TypeScript entries work under tsx.
 * `peer.request(op, payload)` posts `{ id, op, ...payload }` and resolves with the worker's
 * result, or rejects with its error message; every pending request rejects if the worker exits.
 * `MessagePort`s anywhere in a payload or a result (those of shared-buffer descriptors) are
 * transferred with it.
 * Always `await peer.terminate()` (or `await using`) so no worker outlives its test.
 */
import { nodeWorkerPlatform } from '../../src/device/soft/soft-worker-node.js';
import type { SoftWorker, WorkerEndpoint } from '../../src/device/soft/soft-worker-platform.js';

interface Reply {
  readonly id: number;
  readonly ok: boolean;
  readonly result?: unknown;
  readonly error?: string;
}

/** A running worker answering `request()`s. */
export class WorkerPeer implements AsyncDisposable {
  readonly #worker: SoftWorker;
  readonly #pending = new Map<number, { resolve(value: unknown): void; reject(err: Error): void }>();
  #nextId = 1;
  #exit: Error | undefined;
  /** Messages the worker sent on its own (not replies), in order. */
  readonly events: unknown[] = [];
  #eventWaiters: (() => void)[] = [];

  private constructor(entry: URL, data: unknown) {
    this.#worker = nodeWorkerPlatform.spawn(entry, data, {
      message: (message) => this.#onMessage(message),
      error: (error) => {
        this.#exit ??= error;
      },
      exit: (code) => {
        this.#exit ??= new Error(`worker exited with code ${code}`);
        for (const { reject } of this.#pending.values()) reject(this.#exit);
        this.#pending.clear();
        for (const wake of this.#eventWaiters.splice(0)) wake();
      },
    });
  }

  static start(entry: URL, data: unknown = null): WorkerPeer {
    return new WorkerPeer(entry, data);
  }

  /** Why the worker is gone, or undefined while it runs. */
  get exitReason(): Error | undefined {
    return this.#exit;
  }

  request<T = unknown>(op: string, payload: Record<string, unknown> = {}): Promise<T> {
    if (this.#exit !== undefined) return Promise.reject(this.#exit);
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.#worker.postMessage({ id, op, ...payload }, portsIn(payload));
    });
  }

  /** Resolves with the next unsolicited message matching `test` (or rejects when the worker exits). */
  async nextEvent<T>(test: (event: unknown) => event is T): Promise<T> {
    for (;;) {
      const i = this.events.findIndex(test);
      if (i >= 0) return this.events.splice(i, 1)[0] as T;
      if (this.#exit !== undefined) throw this.#exit;
      await new Promise<void>((resolve) => this.#eventWaiters.push(resolve));
    }
  }

  #onMessage(message: unknown): void {
    const reply = message as Partial<Reply>;
    if (typeof reply === 'object' && reply !== null && typeof reply.id === 'number' && this.#pending.has(reply.id)) {
      const pending = this.#pending.get(reply.id)!;
      this.#pending.delete(reply.id);
      if (reply.ok) pending.resolve(reply.result);
      else pending.reject(new Error(reply.error ?? 'worker request failed'));
      return;
    }
    this.events.push(message);
    for (const wake of this.#eventWaiters.splice(0)) wake();
  }

  terminate(): Promise<void> {
    return this.#worker.terminate();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.terminate();
  }
}

/** Worker side: answers `{ id, op, ...payload }` requests with `handlers[op](payload, endpoint)`. */
export function serveRequests(
  endpoint: WorkerEndpoint,
  handlers: Record<string, (payload: Record<string, unknown>, endpoint: WorkerEndpoint) => unknown>,
): void {
  endpoint.onMessage((message) => {
    const { id, op, ...payload } = message as { id: number; op: string } & Record<string, unknown>;
    const handler = handlers[op];
    Promise.resolve()
      .then(() => {
        if (handler === undefined) throw new Error(`unknown op ${op}`);
        return handler(payload, endpoint);
      })
      .then(
        (result) => endpoint.postMessage({ id, ok: true, result }, portsIn(result)),
        (err: unknown) =>
          endpoint.postMessage({
            id,
            ok: false,
            error: err instanceof Error ? `${err.name}: ${err.message}` : String(err),
          }),
      );
  });
}

/** Every `MessagePort` inside `value` (arrays and plain objects), to transfer along with it. */
export function portsIn(value: unknown, out: unknown[] = []): unknown[] {
  if (value instanceof MessagePort) out.push(value);
  else if (Array.isArray(value)) for (const v of value) portsIn(v, out);
  else if (typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) portsIn(v, out);
  }
  return out;
}
