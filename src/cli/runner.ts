/**
 * The runner: runs the chosen scenarios one after another, each once per compared value, and
 * collects a {@link RunResult}.
 *
 * Overview: for every scenario of the {@link RunPlan}, the runner makes the variants (one per
 * value of the `--compare` knob when the scenario honours it, else one with the defaults), gives
 * each a fresh {@link Recorder} and a {@link ScenarioContext}, reports it to the progress view and
 * awaits it. Then it records what the variant measured, also when it failed or was interrupted.
 *
 * Contract:
 * - A scenario that throws is reported (`failed`, with the message) and the next one runs.
 * - When `plan.signal` aborts (Ctrl-C), the running variant is told through its context's signal
 *   and, once it returns, is marked `interrupted` with what it measured; the scenarios after it
 *   are `skipped`. The result is complete either way, so every output can still be written.
 * - A variant that has not settled `graceMs` after its duration is aborted and marked failed; the
 *   runner waits for it a further `graceMs` before it moves on (a hung scenario does not hang the
 *   run, though whatever it left running may still use the machine).
 * - Every variant of a scenario gets the same seed, so a comparison sees the same workload, and
 *   each variant first runs briefly unmeasured (`warmup`), so none pays alone for the JIT.
 *
 * @example
 * ```ts
 * import { runScenarios } from './runner.js';
 * import { churn } from './scenarios/churn.js';
 * const result = await runScenarios({
 *   scenarios: [churn],
 *   options: { seed: 1, budgetBytes: 16 << 20, durationMs: 200, device: 'soft' },
 *   compare: null,
 *   trace: false,
 * });
 * console.log(result.scenarios[0]?.status); // 'ok'
 * ```
 */

import os from 'node:os';
import { seededRandom } from '../base/random.js';
import { createProgressView, type ProgressView } from './progress.js';
import { Recorder } from './recorder.js';
import type { MachineInfo, RunOptions, RunResult, ScenarioResult, Status, VariantResult } from './run-result.js';
import { KNOBS, type KnobName, type Scenario } from './scenario.js';

/** What to run, and how. */
export interface RunPlan {
  readonly scenarios: readonly Scenario[];
  readonly options: RunOptions;
  readonly compare: { readonly knob: string; readonly values: readonly string[] } | null;
  /** Keep trace events for `trace.json`. */
  readonly trace: boolean;
  readonly signal?: AbortSignal;
  readonly view?: ProgressView;
  /** The command line for the report (default `dmabuf run`). */
  readonly command?: string;
  /** Time a variant gets past its duration before it is aborted (default 10 s). */
  readonly graceMs?: number;
  /**
   * Before the variants of a compared scenario, run each briefly unmeasured (default true):
   * see {@link warmUp}.
   */
  readonly warmup?: boolean;
}

/** Longest warm-up per variant; a quarter of the duration when that is shorter. */
const WARMUP_MS = 500;
const SILENT = createProgressView(process.stderr, false);

/** The facts of the machine line. */
export function machineInfo(): MachineInfo {
  return {
    cpu: os.cpus()[0]?.model.trim() ?? 'unknown CPU',
    cores: os.availableParallelism(),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
  };
}

/** A 32-bit mix of the run's seed and the scenario's name, so scenarios draw different numbers. */
export function scenarioSeed(seed: number, name: string): number {
  let h = (seed ^ 0x811c9dc5) >>> 0;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

interface Variant {
  readonly label: string;
  readonly knobs: Readonly<Partial<Record<KnobName, string>>>;
}

function variantsOf(scenario: Scenario, compare: RunPlan['compare']): Variant[] {
  const defaults: Partial<Record<KnobName, string>> = {};
  for (const knob of scenario.knobs) defaults[knob] = KNOBS[knob].default;
  if (compare === null || !scenario.knobs.includes(compare.knob as KnobName)) {
    return [{ label: 'default', knobs: defaults }];
  }
  return compare.values.map((value) => ({
    label: `${compare.knob}=${value}`,
    knobs: { ...defaults, [compare.knob]: value },
  }));
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Runs one variant to its end and returns what it recorded. */
async function runVariant(
  plan: RunPlan,
  scenario: Scenario,
  variant: Variant,
  runStart: number,
  view: ProgressView,
): Promise<VariantResult> {
  const durationMs = plan.options.durationMs ?? scenario.defaultDurationMs;
  const seed = scenarioSeed(plan.options.seed, scenario.name);
  const controller = new AbortController();
  const onAbort = (): void => controller.abort(plan.signal?.reason);
  plan.signal?.addEventListener('abort', onAbort, { once: true });
  if (plan.signal?.aborted === true) controller.abort(plan.signal.reason);
  const start = performance.now();
  const recorder = new Recorder({ trace: plan.trace, durationMs, origin: start, label: variant.label });
  const name = variant.label === 'default' ? scenario.name : `${scenario.name} [${variant.label}]`;
  view.started(name, durationMs);
  let status: Status = 'ok';
  let error: string | undefined;
  const graceMs = plan.graceMs ?? 10_000;
  let watchdog: ReturnType<typeof setTimeout> | undefined;
  try {
    const running = scenario.run({
      seed,
      random: seededRandom(seed),
      clients: plan.options.clients ?? scenario.defaultClients,
      budgetBytes: plan.options.budgetBytes,
      durationMs,
      device: plan.options.device,
      knobs: variant.knobs,
      signal: controller.signal,
      recorder,
      progress: (fraction, text) => view.update(fraction, text),
    });
    const hung = new Promise<'hung'>((resolve) => {
      watchdog = setTimeout(() => resolve('hung'), durationMs + graceMs);
    });
    if ((await Promise.race([running, hung])) === 'hung') {
      controller.abort(new Error('watchdog'));
      status = 'failed';
      error = `did not finish within ${(durationMs + graceMs) / 1000} s (its duration plus ${graceMs / 1000} s)`;
      await Promise.race([running.catch(() => undefined), new Promise((resolve) => setTimeout(resolve, graceMs))]);
    } else if (controller.signal.aborted) status = 'interrupted';
  } catch (err) {
    status = controller.signal.aborted ? 'interrupted' : 'failed';
    error = errorMessage(err);
  } finally {
    clearTimeout(watchdog);
    plan.signal?.removeEventListener('abort', onAbort);
  }
  const wallMs = performance.now() - start;
  view.finished(status, wallMs, error);
  const recorded = recorder.result();
  return {
    label: variant.label,
    knobs: variant.knobs,
    status,
    ...(error === undefined ? {} : { error }),
    startMs: start - runStart,
    wallMs,
    ...recorded,
  };
}

/**
 * Runs each variant of a compared scenario briefly, unrecorded, so the first one measured is not
 * the one that pays for compiling the code and growing the heap (measured: the first variant's
 * allocation p99 was 2-5x worse than the same variant run second).
 */
async function warmUp(
  plan: RunPlan,
  scenario: Scenario,
  variants: readonly Variant[],
  view: ProgressView,
): Promise<void> {
  const durationMs = Math.min(WARMUP_MS, (plan.options.durationMs ?? scenario.defaultDurationMs) / 4);
  view.log(`${scenario.name}: warming up each variant for ${durationMs} ms (not measured)`);
  const scratch: RunPlan = { ...plan, trace: false, options: { ...plan.options, durationMs } };
  for (const variant of variants) {
    if (plan.signal?.aborted === true) return;
    // A failure here shows again in the measured run; the warm-up itself reports nothing.
    await runVariant(scratch, scenario, variant, 0, SILENT).catch(() => undefined);
  }
}

function scenarioStatus(variants: readonly VariantResult[]): Status {
  if (variants.some((v) => v.status === 'failed')) return 'failed';
  if (variants.some((v) => v.status === 'interrupted')) return 'interrupted';
  return 'ok';
}

/** Runs `plan` (see the module contract). Never throws for a scenario's failure. */
export async function runScenarios(plan: RunPlan): Promise<RunResult> {
  const view = plan.view ?? createProgressView(process.stderr, false);
  const runStart = performance.now();
  const date = new Date().toISOString();
  const scenarios: ScenarioResult[] = [];
  const aborted = (): boolean => plan.signal?.aborted === true;
  try {
    for (const scenario of plan.scenarios) {
      if (aborted()) {
        scenarios.push({ name: scenario.name, title: scenario.title, status: 'skipped', variants: [] });
        view.log(`${scenario.name}: skipped (interrupted)`);
        continue;
      }
      const variants: VariantResult[] = [];
      const planned = variantsOf(scenario, plan.compare);
      if (planned.length > 1 && (plan.warmup ?? true)) await warmUp(plan, scenario, planned, view);
      for (const variant of planned) {
        if (aborted()) break;
        variants.push(await runVariant(plan, scenario, variant, runStart, view));
      }
      // Stopped before every variant ran (in the warm-up, or between variants): interrupted.
      const cut = variants.length < planned.length && aborted();
      const status = cut && scenarioStatus(variants) === 'ok' ? 'interrupted' : scenarioStatus(variants);
      scenarios.push({ name: scenario.name, title: scenario.title, status, variants });
    }
  } finally {
    view.stop();
  }
  return {
    date,
    command: plan.command ?? 'dmabuf run',
    options: plan.options,
    compare: plan.compare,
    machine: machineInfo(),
    wallMs: performance.now() - runStart,
    interrupted: aborted(),
    scenarios,
  };
}
