/**
 * soft-ctx: a client of the soft device: its scheduler entities and its guilt.
 *
 * Overview: a {@link SoftContext} is what one client (an application, a stream of frames) owns
 * on a {@link SoftDevice}: one scheduler entity per engine, made on first use, spread over the
 * engine's rings by the scheduler (an entity stays on one ring while it has jobs queued), plus
 * one entity per ring a client pins work to. All of a context's entities share one guilty flag:
 * when the watchdog blames one of its jobs for a hang, the whole context is guilty and its later
 * jobs finish with `ECANCELED` without running, while other contexts keep being served.
 *
 * Models `drivers/gpu/drm/amd/amdgpu/amdgpu_ctx.c` (a context's entities per ring type, its
 * priority, the shared `guilty` flag, `amdgpu_ctx_mgr_entity_fini()` at teardown).
 *
 * Contract:
 * - Jobs of one context on one engine start in submission order; across engines, or across
 *   contexts, only dependencies order them.
 * - {@link SoftContext.destroy} waits until every queued job was handed to a ring (the kernel's
 *   flush), then kills the entities; {@link SoftContext.kill} discards queued jobs at once (their
 *   fences signal with `ESRCH`). Both are idempotent; afterwards submitting through the context
 *   fails.
 *
 * @example
 * ```ts
 * import { SoftDevice } from 'dmabuf/node';
 * await using device = new SoftDevice({ engines: { compute: 2 } });
 * const game = device.createContext({ name: 'game', priority: 'high' });
 * await device.submit('compute', 'noop', {}, { context: game }).wait();
 * console.log(game.guilty); // false
 * await game.destroy();
 * ```
 */

import { BugError, InvalidArgumentError, describeValue } from '../../base/errors.js';
import { DrmSchedEntity, type DrmSchedGuiltyFlag } from '../../sched/sched-entity.js';
import type { DrmSchedPriority } from '../../sched/sched-rq.js';
import type { DrmGpuScheduler } from '../../sched/sched-main.js';
import type { SoftJob } from './soft-job.js';

/** Options of a context. */
export interface SoftContextInit {
  readonly name?: string;
  /** Scheduling priority of every entity of the context (default normal). */
  readonly priority?: DrmSchedPriority | 'kernel' | 'high' | 'normal' | 'low';
}

/** How a context finds the schedulers of an engine. */
export interface SoftContextHost {
  /** The schedulers of engine `kind`, one per ring; undefined for an unknown engine. */
  schedulers(kind: string): readonly DrmGpuScheduler<SoftJob>[] | undefined;
}

/** One client of a soft device. @see struct amdgpu_ctx */
export class SoftContext {
  readonly name: string;
  readonly #host: SoftContextHost;
  readonly #priority: SoftContextInit['priority'];
  readonly #guilty: DrmSchedGuiltyFlag = { value: false };
  readonly #entities = new Map<string, DrmSchedEntity>();
  #ended: Promise<void> | null = null;

  constructor(host: SoftContextHost, init: SoftContextInit = {}) {
    const name = init.name ?? 'context';
    if (typeof name !== 'string')
      throw new InvalidArgumentError(`SoftContext: name must be a string, got ${describeValue(name)}`);
    this.name = name;
    this.#host = host;
    this.#priority = init.priority;
  }

  /** Whether a hang was blamed on one of the context's jobs. @see amdgpu_ctx_query2() */
  get guilty(): boolean {
    return this.#guilty.value;
  }

  /** Whether the context was destroyed or killed. */
  get ended(): boolean {
    return this.#ended !== null;
  }

  /**
   * The entity for engine `kind` (all its rings), or for one ring of it.
   * @throws {InvalidArgumentError} for an unknown engine or ring; {@link BugError} once ended.
   */
  entity(kind: string, ring?: number): DrmSchedEntity {
    if (this.#ended !== null) {
      throw new BugError(`SoftContext ${this.name}: used after destroy() or kill(); create a new context`);
    }
    const key = ring === undefined ? kind : `${kind}#${ring}`;
    let entity = this.#entities.get(key);
    if (entity !== undefined) return entity;
    const all = this.#host.schedulers(kind);
    if (all === undefined) throw new InvalidArgumentError(`SoftContext ${this.name}: no engine ${describeValue(kind)}`);
    if (ring !== undefined && (!Number.isSafeInteger(ring) || ring < 0 || ring >= all.length)) {
      throw new InvalidArgumentError(`${kind} has rings 0 .. ${all.length - 1}, got ring ${describeValue(ring)}`);
    }
    entity = new DrmSchedEntity({
      schedulers: ring === undefined ? all : [all[ring]!],
      name: `${this.name}.${key}`,
      guilty: this.#guilty,
      ...(this.#priority === undefined ? {} : { priority: this.#priority }),
    });
    this.#entities.set(key, entity);
    return entity;
  }

  /** Hands every queued job to the rings, then retires the entities. Idempotent. @see amdgpu_ctx_mgr_entity_fini() */
  destroy(): Promise<void> {
    this.#ended ??= Promise.all([...this.#entities.values()].map((e) => e.destroy())).then(() => {});
    return this.#ended;
  }

  /** Discards every queued job (`ESRCH`) and retires the entities. Idempotent. */
  kill(): Promise<void> {
    if (this.#ended === null) {
      for (const entity of this.#entities.values()) entity.fini();
      this.#ended = Promise.resolve();
    }
    return this.#ended;
  }

  toString(): string {
    return `SoftContext(${this.name}${this.guilty ? ', guilty' : ''}${this.ended ? ', ended' : ''})`;
  }
}
