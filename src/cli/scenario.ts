/**
 * The scenario framework: what a `dmabuf run` scenario is, what it gets, and the design lab's
 * knobs.
 *
 * Overview: a {@link Scenario} is a seeded workload through the stack. The runner calls
 * {@link Scenario.run} once per variant with a {@link ScenarioContext}: its own seeded random
 * source, the sizes the user chose (clients, budget, duration), the knob values of this variant,
 * an `AbortSignal` (Ctrl-C), a {@link Recorder} for metrics, charts and trace events, and a
 * progress callback. The knobs ({@link KNOBS}) are the policies the seeds debate; `--compare
 * knob=a,b` runs a scenario that honours the knob once per value with the same seed.
 *
 * Contract for a scenario's `run`:
 * - Draw every random choice from `ctx.random` (or generators seeded from `ctx.seed`), so that
 *   the same seed replays the same workload and every compared variant sees the same one.
 * - Stop within about `durationMs`, and promptly when `ctx.signal` aborts: then return normally
 *   with what was measured so far (the runner marks the variant interrupted), never throw the
 *   abort reason.
 * - Leave nothing running: every worker, timer and heap it made is disposed when `run` settles,
 *   also when it throws.
 * - Throw when the stack misbehaved (memory handed out not zero, accounting off): the runner
 *   reports the scenario as failed and goes on with the next one.
 *
 * @example
 * ```ts
 * import type { Scenario } from './scenario.js';
 * export const idle: Scenario = {
 *   name: 'idle',
 *   title: 'does nothing for a while',
 *   knobs: [],
 *   defaultDurationMs: 100,
 *   defaultClients: 1,
 *   inDefaultSet: false,
 *   async run(ctx) {
 *     ctx.recorder.metric('clients', 'clients', ctx.clients, 'count');
 *   },
 * };
 * ```
 */

import type { Recorder } from './recorder.js';

/** The design lab: every policy `--compare` can vary, its values, default, and the question. */
export const KNOBS = {
  'chain-gc': {
    values: ['walk', 'queue'],
    default: 'walk',
    question: 'seed 000: what does the global GC queue for signaled chain links buy, and what does it cost?',
  },
  'delayed-delete': {
    values: ['per-object', 'per-object-idle', 'periodic-scan'],
    default: 'per-object',
    question: 'seed 004: a work item per released busy buffer object, or the periodic scan of a shared list?',
  },
  ww: {
    values: ['wait-die', 'wound-wait'],
    default: 'wait-die',
    question: 'seed 003: who backs off when two clients contend for buffers: the younger requester or holder?',
  },
  'sched-policy': {
    values: ['fair', 'fifo', 'rr'],
    default: 'fair',
    question: 'drm_sched: how do frame latency and fairness differ between the FAIR, FIFO and round-robin policies?',
  },
  'deferred-free': {
    values: ['on', 'off'],
    default: 'on',
    question: 'seed 002: what does moving the zeroing of freed buffers to a background worker buy allocation latency?',
  },
} as const satisfies Record<string, { values: readonly string[]; default: string; question: string }>;

export type KnobName = keyof typeof KNOBS;

/** The knobs as the `--compare` parser wants them. */
export function knobValues(): ReadonlyMap<string, readonly string[]> {
  return new Map(Object.entries(KNOBS).map(([name, k]) => [name, k.values]));
}

/** The devices a scenario can run on (`--device`). */
export type DeviceName = 'soft' | 'webgpu';

/** What a scenario's `run` gets. */
export interface ScenarioContext {
  readonly seed: number;
  /** Seeded with `seed`: the first draw is the same in every variant. */
  readonly random: () => number;
  readonly clients: number;
  /** Memory budget in bytes (a heap's budget, a device's VRAM). */
  readonly budgetBytes: number;
  readonly durationMs: number;
  readonly device: DeviceName;
  /** Every knob the scenario honours, with this variant's value. */
  readonly knobs: Readonly<Partial<Record<KnobName, string>>>;
  /** Aborted on Ctrl-C: stop soon and return what was measured. */
  readonly signal: AbortSignal;
  readonly recorder: Recorder;
  /**
   * Reports how far the variant is (`fraction` in [0, 1]) with a short status (`12k allocs, held
   * 48 MiB`); cheap enough to call every few milliseconds, the view throttles.
   */
  progress(fraction: number, status: string): void;
}

/** A seeded workload through the stack. */
export interface Scenario {
  /** The command-line name (`churn`). */
  readonly name: string;
  /** One line: what it does and what it shows. */
  readonly title: string;
  /** The knobs it honours; `--compare` of any other knob does not apply to it. */
  readonly knobs: readonly KnobName[];
  /** The devices it runs on (`--device`); absent when it needs none. */
  readonly devices?: readonly DeviceName[];
  readonly defaultDurationMs: number;
  readonly defaultClients: number;
  /** Run when no scenario is named. */
  readonly inDefaultSet: boolean;
  run(ctx: ScenarioContext): Promise<void>;
}
