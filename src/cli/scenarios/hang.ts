/**
 * Scenario `hang`: one client's job hangs the engine; the watchdog resets it; the guilty client
 * gets errors and the others go on.
 *
 * The question: what does a hang cost the clients that did nothing wrong? `clients` steady
 * clients (`frame-clients.ts`: a small `matmul` frame every ~4 ms each, three in flight, each
 * through its own `SoftContext`) share the one ring of a soft device's `gfx` engine. The seeded
 * workload runs twice with the same seed, each on a fresh device, for half the duration each:
 * first without a hang (the baseline), then with one client (the guilty one, seeded) submitting,
 * a seeded 25 to 40 % into the run, a job that never ends (the `spin` kernel of
 * `spin-kernel.ts`, spinning for ever on the engine's worker thread). The scheduler's watchdog
 * (`hangTimeoutMs`, a twelfth of the duration within 250 .. 2000 ms: 250 ms for 3 s) finds the
 * ring without progress and resets the engine: the worker is terminated and replaced, the hung
 * job fails with `ETIMEDOUT`, its context turns guilty, and the jobs of the other clients that
 * were written into the ring behind it run on the fresh worker. The guilty client, like an
 * application checking its reset status, submits once more on its guilty context (refused:
 * `ECANCELED`), then makes a new context and goes on.
 *
 * Measured: resets; the guilty client's errors; the stall (from the hung job's start to the
 * watchdog's reset) and the recovery (from the reset to the first job the fresh engine
 * completes); the innocent clients' frame latency p50 and p99 with and without the hang, and
 * their ratios. The issue's criterion (the others' latency within 2x of the run without the
 * hang) is judged on the p50 of all innocent frames, a statistic a single stall cannot move:
 * it is reported as a metric (`innocent_p50_ratio`) and a pass/fail note, not thrown, because
 * it is a timing on a shared machine. The p99 is reported too: the frames queued behind the
 * hang wait for the watchdog, so their latency is about the stall, far above 2x, by design of
 * a watchdog.
 *
 * Thrown (the semantics): an innocent client got an error; the guilty client got no
 * `ETIMEDOUT` or its later submission was not refused; no reset happened in the hang run; a
 * reset happened in the baseline.
 *
 * Why the watchdog is at least 250 ms: a reset replaces the engine's worker thread, which takes
 * tens of milliseconds from the compiled package and several hundred from TypeScript sources
 * under load. The soft device's watchdog keeps running meanwhile, so a timeout shorter than that
 * can expire again while the old worker is still being terminated, or while the fresh worker
 * runs its first job, and then blames a job of an innocent client (its context turns guilty):
 * the scenario throws, rightly, since the device misattributed the hang.
 *
 * @example
 * ```ts
 * // dmabuf run hang --clients 4 --duration 3s
 * import { hang } from './hang.js';
 * console.log(hang.name, hang.inDefaultSet); // hang false
 * ```
 */

import { InvalidArgumentError } from '../../base/errors.js';
import { seededRandom } from '../../base/random.js';
import type { SoftDevice } from '../../device/soft/soft-device.js';
import type { DmaFence } from '../../fence/dma-fence.js';
import { formatValue } from '../format.js';
import type { Recorder } from '../recorder.js';
import type { Scenario, ScenarioContext } from '../scenario.js';
import { Samples } from '../stats.js';
import { type FrameClient, bootSoftDevice, errnoOf, runFrameClients } from './frame-clients.js';
import { SPIN_FOREVER, SPIN_KERNEL_URL } from './spin-kernel.js';

/** Buckets of the latency charts per run. */
const CHART_BUCKETS = 100;
const ENGINE = 'gfx';

/** The watchdog's timeout for a run of `durationMs`: short, so the run shows the recovery. */
export function hangTimeoutFor(durationMs: number): number {
  return Math.min(2000, Math.max(250, Math.round(durationMs / 12)));
}

/** What one of the two runs measured. */
interface RunOutcome {
  readonly clients: FrameClient[];
  /** Innocent clients' frame latencies (ms), all together. */
  readonly innocent: Samples;
  readonly innocentErrors: number;
  readonly resets: number;
  readonly startMs: number;
  readonly endMs: number;
}

/** What the hang run measured about the hang. */
interface HangOutcome {
  guilty: number;
  hungFence: DmaFence | null;
  hangStartMs: number;
  resetMs: number;
  recoveredMs: number;
  /** The hung job's error code. */
  hungCode: string | null;
  /** Errors of the guilty client's frames (after the hang), by code. */
  readonly guiltyErrors: Map<string, number>;
  /** Frames the guilty client completed on its new context. */
  framesAfterNewContext: number;
  contextsReplaced: number;
}

function latencyChart(
  recorder: Recorder,
  run: RunOutcome,
  id: string,
  title: string,
  reset: { atMs: number } | null,
): void {
  const labels = run.clients.map((c) => c.name);
  const chart = recorder.series(
    { kind: 'lines', id, title, unit: 'ms' },
    reset === null ? labels : [...labels, 'engine reset'],
  );
  const span = Math.max(1, run.endMs - run.startMs);
  const bucketMs = span / CHART_BUCKETS;
  const peak = Math.max(...run.clients.map((c) => c.tally.latencyMs.max).filter(Number.isFinite), 1);
  const resetBucket = reset === null ? -1 : Math.floor((reset.atMs - run.startMs) / bucketMs);
  for (let b = 0; b < CHART_BUCKETS; b++) {
    const from = run.startMs + b * bucketMs;
    const values = run.clients.map((c) => {
      let worst = Number.NaN;
      for (const [at, ms] of c.tally.timeline) if (at >= from && at < from + bucketMs && !(ms <= worst)) worst = ms;
      return worst;
    });
    // The reset as a spike to the worst latency of the run, at its bucket.
    if (reset !== null) values.push(b === resetBucket ? peak : 0);
    chart.sample(from + bucketMs, values);
  }
}

/** A device of one run, booted, with the `spin` kernel (both runs register it: set up alike). */
function bootDevice(phase: 'baseline' | 'hang', hangTimeoutMs: number): Promise<SoftDevice> {
  const options = { name: `hang-${phase}`, engines: { [ENGINE]: 1 }, hangTimeoutMs, maxResets: 8 };
  return bootSoftDevice(options, SPIN_KERNEL_URL);
}

/** One run of the workload on `gpu`, from now for `phaseMs`; with `outcome`, the hang run. */
async function runOnce(
  ctx: ScenarioContext,
  gpu: SoftDevice,
  phase: 'baseline' | 'hang',
  phaseMs: number,
  hangTimeoutMs: number,
  outcome: HangOutcome | null,
): Promise<RunOutcome> {
  const { recorder } = ctx;
  const startMs = recorder.now();
  const endMs = startMs + phaseMs;
  const engineTrack = recorder.track(`${ENGINE}.0 (${phase})`, 'engine');
  const engine = { track: engineTrack, lastFinishMs: startMs };
  let clients: FrameClient[] = [];
  try {
    const random = seededRandom(ctx.seed * 104_729 + 17);
    const hangAtMs = startMs + (endMs - startMs) * (0.25 + 0.15 * random());
    let hangSubmitted = false;
    let refusedOnGuiltyContext = false;
    const progress = setInterval(() => {
      const frames = clients.reduce((n, c) => n + c.tally.frames, 0);
      ctx.progress(
        Math.min(1, (phase === 'hang' ? 0.5 : 0) + (recorder.now() - startMs) / ctx.durationMs),
        `${phase}: ${gpu.resets.length} resets${frames > 0 ? `, ${formatValue(frames, 'count')} frames` : ''}`,
      );
    }, 50);
    try {
      clients = await runFrameClients({
        gpu,
        engineName: ENGINE,
        recorder,
        engine,
        clients: ctx.clients,
        seed: ctx.seed,
        endMs,
        signal: ctx.signal,
        replaceFrame: (client, atMs) => {
          if (outcome === null || hangSubmitted || client.index !== outcome.guilty || atMs < hangAtMs) return null;
          hangSubmitted = true;
          const fence = gpu.submit(ENGINE, 'spin', { ms: SPIN_FOREVER }, { context: client.context });
          outcome.hungFence = fence;
          recorder.instant(engineTrack, 'hanging job submitted', atMs, { client: client.name });
          return { name: `${client.name} hung job (spin for ever)`, fence };
        },
        onError: (client, code) => {
          if (outcome === null || client.index !== outcome.guilty) return;
          outcome.guiltyErrors.set(code, (outcome.guiltyErrors.get(code) ?? 0) + 1);
          if (code === 'ECANCELED' && client.context.guilty && !refusedOnGuiltyContext) {
            // Its guilty context refused the work: like a robust application, start a new one.
            refusedOnGuiltyContext = true;
            client.context = gpu.createContext({ name: `${client.name} (after reset)` });
            outcome.contextsReplaced++;
          }
        },
        onJob: (client, name, jobStart, jobEnd, error) => {
          if (outcome !== null && outcome.hungFence !== null && name.includes('hung job')) {
            outcome.hangStartMs = jobStart;
            outcome.resetMs = jobEnd;
            outcome.hungCode = error;
            recorder.slice(engineTrack, name, jobStart, jobEnd, { client: client.name, error: error ?? 'none' });
            recorder.instant(engineTrack, 'engine reset (watchdog)', jobEnd, {
              timeoutMs: hangTimeoutMs,
              guilty: client.name,
            });
            return;
          }
          if (outcome !== null && outcome.resetMs > 0 && outcome.recoveredMs === 0 && error === null) {
            outcome.recoveredMs = jobEnd;
          }
          if (outcome !== null && client.index === outcome.guilty && outcome.contextsReplaced > 0 && error === null) {
            outcome.framesAfterNewContext++;
          }
          if (error === 'ECANCELED') {
            recorder.instant(engineTrack, `${name} refused (ECANCELED)`, jobEnd, { client: client.name });
            return;
          }
          const args = error === null ? { client: client.name } : { client: client.name, error };
          recorder.slice(engineTrack, name, jobStart, jobEnd, args);
        },
      });
      // A guilty client that had no frame to be refused after the reset (a very short run)
      // still owes the check: one more submission on its guilty context.
      if (outcome !== null && outcome.hungFence !== null && !refusedOnGuiltyContext && !ctx.signal.aborted) {
        await outcome.hungFence.wait().catch(() => {});
        const guilty = clients[outcome.guilty]!;
        const probe = gpu.submit(ENGINE, 'noop', {}, { context: guilty.context });
        await probe.wait().catch(() => {});
        const code = probe.error === undefined ? null : errnoOf(probe.error);
        if (code !== null) outcome.guiltyErrors.set(code, (outcome.guiltyErrors.get(code) ?? 0) + 1);
      }
      if (outcome !== null && outcome.hungFence !== null) await outcome.hungFence.wait().catch(() => {});
    } finally {
      clearInterval(progress);
    }
  } finally {
    // The hang's queued work has ended by now (the watchdog); the workers go with the device.
    await gpu.destroy({ cancel: ctx.signal.aborted });
  }
  const innocent = new Samples();
  let innocentErrors = 0;
  for (const c of clients) {
    if (outcome !== null && c.index === outcome.guilty) continue;
    for (const [, ms] of c.tally.timeline) innocent.add(ms);
    for (const n of c.tally.errors.values()) innocentErrors += n;
  }
  return { clients, innocent, innocentErrors, resets: gpu.resets.length, startMs, endMs: recorder.now() };
}

/** Options of {@link hangScenario}. */
export interface HangScenarioOptions {
  /**
   * The watchdog's timeout; {@link hangTimeoutFor} the duration by default. Tests pass one longer
   * than a fresh engine worker takes to start under load (see the note in the module overview).
   */
  readonly hangTimeoutMs?: number;
}

/** The hang scenario, with the watchdog timeout of `options` (tests) or the default. */
export function hangScenario(options: HangScenarioOptions = {}): Scenario {
  return {
    name: 'hang',
    title: "one client's job hangs: watchdog, engine reset, errors for the guilty, latency of the others",
    knobs: [],
    devices: ['soft'],
    defaultDurationMs: 3000,
    defaultClients: 4,
    inDefaultSet: false,
    async run(ctx) {
      const { recorder } = ctx;
      if (ctx.clients < 2) {
        throw new InvalidArgumentError(
          `hang: --clients must be at least 2 (one guilty, one innocent), got ${ctx.clients}`,
        );
      }
      const hangTimeoutMs = options.hangTimeoutMs ?? hangTimeoutFor(ctx.durationMs);
      const half = ctx.durationMs / 2;
      const outcome: HangOutcome = {
        guilty: Math.floor(seededRandom(ctx.seed * 65_537 + 3)() * ctx.clients),
        hungFence: null,
        hangStartMs: 0,
        resetMs: 0,
        recoveredMs: 0,
        hungCode: null,
        guiltyErrors: new Map(),
        framesAfterNewContext: 0,
        contextsReplaced: 0,
      };
      // Both devices boot before either run (in parallel: one boot's time), so that neither
      // run's clock includes a worker's start-up.
      const booting = [bootDevice('baseline', hangTimeoutMs), bootDevice('hang', hangTimeoutMs)];
      const booted = await Promise.allSettled(booting);
      const devices = booted.flatMap((b) => (b.status === 'fulfilled' ? [b.value] : []));
      let baseline: RunOutcome;
      let hung: RunOutcome;
      try {
        for (const b of booted) if (b.status === 'rejected') throw b.reason;
        const bootMs = recorder.now();
        recorder.metric('boot_ms', 'devices booted in', bootMs, 'ms');
        baseline = await runOnce(ctx, devices[0]!, 'baseline', half, hangTimeoutMs, null);
        await devices[0]!.destroy({ cancel: ctx.signal.aborted });
        if (ctx.signal.aborted) return;
        hung = await runOnce(ctx, devices[1]!, 'hang', half, hangTimeoutMs, outcome);
        if (ctx.signal.aborted) return;
      } finally {
        await Promise.all(devices.map((d) => d.destroy({ cancel: ctx.signal.aborted })));
      }

      const guiltyName = hung.clients[outcome.guilty]?.name ?? `client ${outcome.guilty + 1}`;
      const timeouts = (outcome.hungCode === 'ETIMEDOUT' ? 1 : 0) + (outcome.guiltyErrors.get('ETIMEDOUT') ?? 0);
      const refused = outcome.guiltyErrors.get('ECANCELED') ?? 0;
      const guiltyErrors =
        (outcome.hungCode === null ? 0 : 1) + [...outcome.guiltyErrors.values()].reduce((a, b) => a + b, 0);
      const stallMs = outcome.resetMs - outcome.hangStartMs;
      const recoveryMs = outcome.recoveredMs > 0 ? outcome.recoveredMs - outcome.resetMs : Number.NaN;
      const p50Ratio = hung.innocent.quantile(0.5) / baseline.innocent.quantile(0.5);
      const p99Ratio = hung.innocent.quantile(0.99) / baseline.innocent.quantile(0.99);
      const innocentFrames = (run: RunOutcome): number =>
        run.clients.filter((c) => c.index !== outcome.guilty).reduce((n, c) => n + c.tally.frames, 0);

      recorder.metric('resets', 'engine resets (hang run)', hung.resets, 'count');
      recorder.metric('guilty_errors', `guilty client's errors`, guiltyErrors, 'count');
      recorder.metric('guilty_timeouts', 'guilty: ETIMEDOUT', timeouts, 'count');
      recorder.metric('guilty_refused', 'guilty: refused (ECANCELED)', refused, 'count');
      recorder.metric(
        'innocent_errors',
        "innocent clients' errors",
        hung.innocentErrors + baseline.innocentErrors,
        'count',
        'lower',
      );
      recorder.metric('hang_timeout', 'watchdog timeout', hangTimeoutMs, 'ms');
      recorder.metric('stall_ms', 'hang start to reset', stallMs, 'ms', 'lower');
      recorder.metric('recovery_ms', 'reset to next job done', recoveryMs, 'ms', 'lower');
      recorder.metric('innocent_frames_base', 'innocent frames, no hang', innocentFrames(baseline), 'count');
      recorder.metric('innocent_frames_hang', 'innocent frames, hang', innocentFrames(hung), 'count');
      recorder.metric('innocent_p50_base', 'innocent p50, no hang', baseline.innocent.quantile(0.5), 'ms', 'lower');
      recorder.metric('innocent_p50_hang', 'innocent p50, hang', hung.innocent.quantile(0.5), 'ms', 'lower');
      recorder.metric('innocent_p99_base', 'innocent p99, no hang', baseline.innocent.quantile(0.99), 'ms', 'lower');
      recorder.metric('innocent_p99_hang', 'innocent p99, hang', hung.innocent.quantile(0.99), 'ms', 'lower');
      recorder.metric('innocent_p50_ratio', 'innocent p50, hang / no hang', p50Ratio, 'ratio', 'lower');
      recorder.metric('innocent_p99_ratio', 'innocent p99, hang / no hang', p99Ratio, 'ratio', 'lower');
      latencyChart(
        recorder,
        baseline,
        'latency-baseline',
        'frame latency per client, no hang (worst per sample)',
        null,
      );
      latencyChart(recorder, hung, 'latency-hang', 'frame latency per client, with the hang (worst per sample)', {
        atMs: outcome.resetMs,
      });
      recorder.histogram('innocent-latency-base', "innocent clients' frame latency, no hang", 'ms', baseline.innocent);
      recorder.histogram(
        'innocent-latency-hang',
        "innocent clients' frame latency, with the hang",
        'ms',
        hung.innocent,
      );

      recorder.note(
        `${guiltyName} is guilty: its spinning job hung ${ENGINE}.0 for ${stallMs.toFixed(0)} ms until the watchdog ` +
          `(${hangTimeoutMs} ms) reset the engine; the fresh engine completed its first job ` +
          `${recoveryMs.toFixed(0)} ms later`,
      );
      recorder.note(
        `${guiltyName} got ${guiltyErrors} errors ` +
          `(${timeouts} ETIMEDOUT, ${refused} ECANCELED on its guilty context), ` +
          (outcome.contextsReplaced > 0
            ? `then made a new context and completed ${outcome.framesAfterNewContext} frames on it`
            : 'the refusal to one more submission after the run (the reset came after its last frame)'),
      );
      const verdict = p50Ratio <= 2 ? 'PASS' : 'FAIL';
      recorder.note(
        `criterion (issue 12), the others' latency within 2x of the run without the hang: ${verdict} on the innocent ` +
          `clients' p50 (${p50Ratio.toFixed(2)}x: ${hung.innocent.quantile(0.5).toFixed(2)} ms against ` +
          `${baseline.innocent.quantile(0.5).toFixed(2)} ms); a timing on a shared machine, reported, not thrown. ` +
          `Their p99 is ${p99Ratio.toFixed(1)}x: the frames queued behind the hang wait for the watchdog`,
      );

      if (hung.innocentErrors + baseline.innocentErrors > 0) {
        const who = (run: RunOutcome, label: string): string[] =>
          run.clients
            .filter((c) => c.tally.errors.size > 0 && !(run === hung && c.index === outcome.guilty))
            .map((c) => `${c.name} ${label}: ${[...c.tally.errors].map(([code, n]) => `${n} ${code}`).join(', ')}`);
        const resets = `resets: ${baseline.resets} without the hang, ${hung.resets} with it`;
        const errors = [...who(baseline, 'without the hang'), ...who(hung, 'with it')].join('; ');
        throw new Error(`innocent clients got errors (${errors}; ${resets})`);
      }
      if (baseline.resets > 0) throw new Error(`the run without a hang reset the engine ${baseline.resets} times`);
      if (hung.resets === 0) throw new Error('the hanging job caused no engine reset');
      if (timeouts === 0)
        throw new Error(`the guilty client's hung job ended with ${outcome.hungCode ?? 'no error'}, not ETIMEDOUT`);
      if (refused === 0) throw new Error('the guilty context was not refused after the reset (no ECANCELED)');
    },
  };
}

export const hang: Scenario = hangScenario();
