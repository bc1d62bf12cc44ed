/**
 * Scenario `long-running`: a long-running compute job (seed 001) beside ordinary clients, with
 * the lock validator on; the report shows the rule it enforces.
 *
 * The question (seed 001): a compute job that may run for ever (user-controlled, "long-running")
 * cannot be a dma-fence that others wait for in the signalling path: only the kernel knows the
 * memory-management dependencies of fences, only userspace knows those of long-running work, so
 * mixing the two can deadlock ("Indefinite DMA Fences", kernel-fences.md §9.4). The library
 * models such work as a `DmaFence` created `longRunning`: its own validator map
 * (`dma_fence_lr_map`), primed so that long-running work may wait for ordinary fences but never
 * the other way round; `DmaResv` refuses it (no implicit sync); a plain `addCallback` on it is a
 * validator report (`lrAddCallback` acknowledges it may never signal).
 *
 * The workload: `clients` ordinary clients (`frame-clients.ts`) submit small frames on the `gfx`
 * ring of a soft device. The seeded workload runs twice, each on a fresh device, for half the
 * duration each: once alone (the baseline), once beside a long-running job on the `compute`
 * ring: batches of a larger `matmul` (two in flight, the ring always busy) until 85 % of the run,
 * each batch a point on the job's progress timeline (a timeline `Syncobj`, the user fences a
 * long-running queue hands out instead of a dma-fence), its completion a long-running `DmaFence`
 * signalled after the last batch, observed with `lrAddCallback`. The validator is on for the
 * whole variant (`record` mode when this scenario turned it on) and put back as it was
 * afterwards. Once, while the job runs, the scenario tries the forbidden things on purpose and
 * catches what stops them: (1) waiting for the long-running fence inside an ordinary fence
 * signalling section (the validator: a circular dependency `dma_fence_map -> dma_fence_lr_map`
 * against the primed `dma_fence_lr_map -> fs_reclaim -> dma_fence_map`); (2) a plain callback on
 * it (the validator: `long-running-callback`); (3) publishing it in a reservation object (refused
 * by `DmaResv` itself, validator or not). It also does the allowed direction (an ordinary fence
 * waited for in a long-running signalling section), which must stay silent.
 *
 * Knob `chain-gc` (seed 000): the progress timeline's chain nodes are collected by the walk of
 * every `addPoint` (`walk`, the kernel) or also by the seed's global queue (`queue`). Measured:
 * chain nodes reachable over time (and how many of them signaled: garbage), the time of each
 * `addPoint` (where both policies collect), and how much the global queue grew.
 *
 * Thrown (the semantics): an ordinary client got an error; a forbidden thing was not stopped
 * (no report, or the reservation object took the fence); the allowed direction was reported;
 * the validator reported anything else during the run; the validator could not be turned on.
 *
 * @example
 * ```ts
 * // dmabuf run long-running --duration 3s --compare chain-gc=walk,queue
 * import { longRunning } from './long-running.js';
 * console.log(longRunning.knobs); // ['chain-gc']
 * ```
 */

import { BugError } from '../../base/errors.js';
import { seededRandom } from '../../base/random.js';
import type { SoftDevice } from '../../device/soft/soft-device.js';
import { DmaFence } from '../../fence/dma-fence.js';
import { DmaFenceChain } from '../../fence/dma-fence-chain.js';
import { Syncobj } from '../../fence/syncobj.js';
import {
  type LockdepReport,
  disableLockdep,
  enableLockdep,
  lockdepEnabled,
  lockdepReports,
  lrSignallingSection,
  signallingSection,
} from '../../locking/lockdep.js';
import { DmaResv, DmaResvUsage } from '../../resv/dma-resv.js';
import { formatValue } from '../format.js';
import type { Recorder } from '../recorder.js';
import type { Scenario, ScenarioContext } from '../scenario.js';
import { Samples } from '../stats.js';
import { type FrameClient, bootSoftDevice, runFrameClients, sleep } from './frame-clients.js';

const CHART_BUCKETS = 100;
/** The long-running job's batches: a `BATCH_DIM`-square matmul, a millisecond or two each. */
const BATCH_DIM = 96;
const BATCHES_IN_FLIGHT = 2;
/** The job ends this far into its run (the ordinary clients go on to the end). */
const LR_END_FRACTION = 0.85;

/** The rule, as the report states it. */
export const LONG_RUNNING_RULE =
  'long-running work may wait for ordinary fences, never the other way round: no ordinary fence may wait for a ' +
  'long-running one in its signalling path, and long-running fences stay out of reservation objects';

/** A validator report without its stack frames: the lines that say what happened. */
export function reportGist(message: string): string {
  return (
    message
      .split('\n')
      // Stack frames, and the headers that introduce them ("... was acquired at:").
      .filter((line) => !/^\s*at\s/.test(line) && !/priming at enableLockdep/.test(line) && !/\bat:$/.test(line))
      .map((line) => line.replace(/\bat:\s+at\s.*$/, 'at: (stack left out)').trim())
      .filter((line) => line.length > 0)
      .join(' | ')
  );
}

/** What one run of the ordinary clients saw. */
interface RunOutcome {
  readonly clients: FrameClient[];
  readonly latency: Samples;
  readonly errors: number;
  readonly startMs: number;
  readonly endMs: number;
}

/** What the long-running job and the deliberate violations produced. */
interface LongRunningOutcome {
  batches: number;
  ranMs: number;
  signaledAtMs: number;
  /** Reports of the forbidden wait and the plain callback (the wait's may be from earlier in the process). */
  waitReport: LockdepReport | null;
  waitReportFresh: boolean;
  callbackReport: LockdepReport | null;
  resvRefusal: string | null;
  allowedReports: number;
  readonly addPointUs: Samples;
  chainNodesPeak: number;
  chainSignaledPeak: number;
}

/** A booted device with a `gfx` ring for the clients and a `compute` ring for the long-running job. */
function bootDevice(phase: string): Promise<SoftDevice> {
  return bootSoftDevice({ name: `lr-${phase}`, engines: { gfx: 1, compute: 1 } });
}

/** Tries the forbidden things once, and the allowed one; fills the outcome's reports. */
async function violateOnPurpose(
  recorder: Recorder,
  track: number,
  lrFence: DmaFence,
  ordinary: DmaFence,
  outcome: LongRunningOutcome,
): Promise<void> {
  const before = lockdepReports().length;
  const isWaitReport = (r: LockdepReport): boolean =>
    r.kind === 'circular-dependency' && r.classes[0] === 'dma_fence_map' && r.classes[1] === 'dma_fence_lr_map';
  // (1) An ordinary fence's signalling path waits for the long-running fence. A 0 ms wait: the
  // validator judges the wait, whether or not it would block ('throw' mode rejects it).
  try {
    await signallingSection(() => lrFence.wait({ timeout: 0 }));
  } catch (err) {
    if (!(err instanceof BugError)) throw err;
  }
  const fresh = lockdepReports().slice(before);
  outcome.waitReport = fresh.find(isWaitReport) ?? null;
  outcome.waitReportFresh = outcome.waitReport !== null;
  // The validator reports a pair of classes once per process: an earlier run's report stands.
  outcome.waitReport ??= lockdepReports().find(isWaitReport) ?? null;
  recorder.instant(track, 'forbidden: wait for the long-running fence in a signalling section', recorder.now());
  // (2) A plain callback on it.
  const beforeCallback = lockdepReports().length;
  try {
    lrFence.addCallback(() => {});
  } catch (err) {
    if (!(err instanceof BugError)) throw err;
  }
  outcome.callbackReport =
    lockdepReports()
      .slice(beforeCallback)
      .find((r) => r.kind === 'long-running-callback') ?? null;
  recorder.instant(track, 'forbidden: plain callback on the long-running fence', recorder.now());
  // (3) Publishing it for implicit sync.
  const resv = new DmaResv({ name: 'shared output' });
  await resv.lock();
  try {
    resv.reserveFences(1);
    resv.addFence(lrFence, DmaResvUsage.Write);
  } catch (err) {
    if (!(err instanceof BugError)) throw err;
    outcome.resvRefusal = err.message;
  } finally {
    resv.unlock();
  }
  recorder.instant(track, 'forbidden: long-running fence into a reservation object', recorder.now());
  // The allowed direction: long-running work waits for an ordinary fence.
  const beforeAllowed = lockdepReports().length;
  try {
    await lrSignallingSection(() => ordinary.wait({ timeout: 0 }));
  } catch (err) {
    if (!(err instanceof BugError)) throw err;
  }
  outcome.allowedReports = lockdepReports().length - beforeAllowed;
  recorder.instant(track, 'allowed: long-running section waits for an ordinary fence', recorder.now());
}

/** The long-running job on `gpu`'s compute ring until `endMs`; resolves once its fence signalled. */
async function longRunningJob(
  ctx: ScenarioContext,
  gpu: SoftDevice,
  lrFence: DmaFence,
  endMs: number,
  timeline: Syncobj,
  outcome: LongRunningOutcome,
): Promise<void> {
  const { recorder, signal } = ctx;
  const track = recorder.track('compute.0 (long-running)', 'engine');
  const context = gpu.createContext({ name: 'long-running compute' });
  const random = seededRandom(ctx.seed * 31_337 + 5);
  const cells = BATCH_DIM * BATCH_DIM;
  const memory = gpu.map(new SharedArrayBuffer(3 * cells * 4));
  new Float32Array(memory.buffer, 0, 2 * cells).forEach((_, i, a) => {
    a[i] = Math.floor(random() * 4);
  });
  const args = {
    m: BATCH_DIM,
    n: BATCH_DIM,
    k: BATCH_DIM,
    row0: 0,
    row1: BATCH_DIM,
    a: memory.range(0, cells * 4),
    b: memory.range(cells * 4, cells * 4),
    c: memory.range(2 * cells * 4, cells * 4),
  };
  const startMs = recorder.now();
  let lastFinish = startMs;
  const inFlight: Promise<void>[] = [];
  let last: DmaFence | null = null;
  while (!signal.aborted && recorder.now() < endMs) {
    if (inFlight.length >= BATCHES_IN_FLIGHT) await inFlight.shift();
    const submitted = recorder.now();
    const fence = gpu.submit('compute', 'matmul', args, { context });
    const point = ++outcome.batches;
    const t0 = performance.now();
    timeline.addPoint(fence, point);
    outcome.addPointUs.add((performance.now() - t0) * 1000);
    last = fence;
    inFlight.push(
      fence.wait().then(() => {
        const end = recorder.now();
        const start = Math.max(submitted, lastFinish);
        lastFinish = end;
        recorder.slice(track, `batch ${point}`, start, end, { client: 'long-running compute', point });
      }),
    );
  }
  await Promise.all(inFlight);
  if (last !== null) await last.wait();
  outcome.ranMs = recorder.now() - startMs;
  // The job's completion: a long-running fence, signalled by the job itself once its last batch is done.
  lrFence.signal();
  recorder.instant(track, 'long-running fence signalled', recorder.now(), { batches: outcome.batches });
}

async function runOnce(
  ctx: ScenarioContext,
  gpu: SoftDevice,
  phase: 'baseline' | 'long-running',
  phaseMs: number,
  outcome: LongRunningOutcome | null,
): Promise<RunOutcome> {
  const { recorder } = ctx;
  const startMs = recorder.now();
  const endMs = startMs + phaseMs;
  const engine = { track: recorder.track(`gfx.0 (${phase})`, 'engine'), lastFinishMs: startMs };
  const onJob = (client: FrameClient, name: string, start: number, end: number, error: string | null): void => {
    recorder.slice(
      engine.track,
      name,
      start,
      end,
      error === null ? { client: client.name } : { client: client.name, error },
    );
  };
  let clients: FrameClient[] = [];
  const progress = setInterval(() => {
    const frames = clients.reduce((n, c) => n + c.tally.frames, 0);
    const batches = outcome === null ? '' : `, ${formatValue(outcome.batches, 'count')} long-running batches`;
    ctx.progress(
      Math.min(1, (phase === 'baseline' ? 0 : 0.5) + (recorder.now() - startMs) / ctx.durationMs),
      `${phase}${frames > 0 ? `: ${formatValue(frames, 'count')} frames` : ''}${batches}`,
    );
  }, 50);
  /** The long-running job beside the clients, and the deliberate violations while it runs. */
  const beside = async (lr: LongRunningOutcome): Promise<void> => {
    const gc = ctx.knobs['chain-gc'] === 'queue' ? 'queue' : 'walk';
    const timeline = new Syncobj({ gc });
    const lrFence = new DmaFence('long-running compute', { longRunning: true });
    const system = recorder.track('validator', 'system');
    // Observing the job's end is legal with the acknowledging API.
    lrFence.lrAddCallback(() => {
      lr.signaledAtMs = recorder.now();
    });
    const chart = recorder.series(
      {
        kind: 'lines',
        id: 'chain-links',
        title: `progress timeline: chain nodes reachable (chain-gc=${gc})`,
        unit: 'count',
      },
      ['nodes', 'signaled nodes (garbage)'],
    );
    const sampleChain = (): void => {
      const head = timeline.fence;
      const stats = head === null ? { nodes: 0, signaledNodes: 0 } : DmaFenceChain.reachableStats(head);
      lr.chainNodesPeak = Math.max(lr.chainNodesPeak, stats.nodes);
      lr.chainSignaledPeak = Math.max(lr.chainSignaledPeak, stats.signaledNodes);
      chart.sample(recorder.now(), [stats.nodes, stats.signaledNodes]);
    };
    const sampler = setInterval(sampleChain, Math.max(5, phaseMs / CHART_BUCKETS));
    const job = longRunningJob(ctx, gpu, lrFence, startMs + phaseMs * LR_END_FRACTION, timeline, lr);
    try {
      // Once the job is under way (a quarter in), with an ordinary job's fence at hand.
      await sleep(phaseMs * 0.25, ctx.signal);
      const frame = gpu.submit('gfx', 'noop', {});
      if (!ctx.signal.aborted && !lrFence.signaledFlag) await violateOnPurpose(recorder, system, lrFence, frame, lr);
      await frame.wait();
      await job;
    } finally {
      clearInterval(sampler);
      sampleChain();
      await job.catch(() => {});
      timeline[Symbol.dispose]();
    }
  };
  try {
    const [ordinary, job] = await Promise.allSettled([
      runFrameClients({
        gpu,
        engineName: 'gfx',
        recorder,
        engine,
        clients: ctx.clients,
        seed: ctx.seed,
        endMs,
        signal: ctx.signal,
        onJob,
      }),
      outcome === null ? Promise.resolve() : beside(outcome),
    ]);
    if (ordinary.status === 'rejected') throw ordinary.reason;
    if (job.status === 'rejected') throw job.reason;
    clients = ordinary.value;
  } finally {
    clearInterval(progress);
    await gpu.destroy({ cancel: ctx.signal.aborted });
  }
  const latency = new Samples();
  let errors = 0;
  for (const c of clients) {
    for (const [, ms] of c.tally.timeline) latency.add(ms);
    for (const n of c.tally.errors.values()) errors += n;
  }
  return { clients, latency, errors, startMs, endMs: recorder.now() };
}

/** The worst latency per bucket of the run, over all its clients, at times relative to its start. */
function worstOverTime(run: RunOutcome, phaseMs: number): number[] {
  const bucketMs = phaseMs / CHART_BUCKETS;
  const worst = new Array<number>(CHART_BUCKETS).fill(Number.NaN);
  for (const c of run.clients) {
    for (const [at, ms] of c.tally.timeline) {
      const b = Math.min(CHART_BUCKETS - 1, Math.floor((at - run.startMs) / bucketMs));
      if (!(ms <= worst[b]!)) worst[b] = ms;
    }
  }
  return worst;
}

export const longRunning: Scenario = {
  name: 'long-running',
  title: 'a long-running compute job (seed 001) beside ordinary clients, validator on: the rule it enforces',
  knobs: ['chain-gc'],
  devices: ['soft'],
  defaultDurationMs: 3000,
  defaultClients: 4,
  inDefaultSet: false,
  async run(ctx) {
    const { recorder } = ctx;
    const wasEnabled = lockdepEnabled();
    if (!wasEnabled) {
      const on = enableLockdep({ mode: 'record' });
      if (!on.enabled) throw new Error(`long-running needs the lock validator: ${on.reason}`);
    }
    const reportsBefore = lockdepReports().length;
    // The seed's queue is global: earlier runs in this process (a warm-up, the other variant) leave entries.
    const gcQueueBefore = DmaFenceChain.gcQueueLength;
    const half = ctx.durationMs / 2;
    const outcome: LongRunningOutcome = {
      batches: 0,
      ranMs: 0,
      signaledAtMs: 0,
      waitReport: null,
      waitReportFresh: false,
      callbackReport: null,
      resvRefusal: null,
      allowedReports: 0,
      addPointUs: new Samples(),
      chainNodesPeak: 0,
      chainSignaledPeak: 0,
    };
    let baseline: RunOutcome;
    let beside: RunOutcome;
    let unexpected: LockdepReport[];
    try {
      const booted = await Promise.allSettled([bootDevice('baseline'), bootDevice('long-running')]);
      const devices = booted.flatMap((b) => (b.status === 'fulfilled' ? [b.value] : []));
      try {
        for (const b of booted) if (b.status === 'rejected') throw b.reason;
        recorder.metric('boot_ms', 'devices booted in', recorder.now(), 'ms');
        baseline = await runOnce(ctx, devices[0]!, 'baseline', half, null);
        if (ctx.signal.aborted) return;
        beside = await runOnce(ctx, devices[1]!, 'long-running', half, outcome);
        if (ctx.signal.aborted) return;
      } finally {
        await Promise.all(devices.map((d) => d.destroy({ cancel: ctx.signal.aborted })));
      }
      const deliberate = new Set([outcome.waitReport, outcome.callbackReport]);
      unexpected = lockdepReports()
        .slice(reportsBefore)
        .filter((r) => !deliberate.has(r));
    } finally {
      if (!wasEnabled) {
        // Back as it was: off, and in the default mode for whoever turns it on next.
        enableLockdep({ mode: 'throw' });
        disableLockdep();
      }
    }

    const ruleReports = (outcome.waitReportFresh ? 1 : 0) + (outcome.callbackReport !== null ? 1 : 0);
    const p50Ratio = beside.latency.quantile(0.5) / baseline.latency.quantile(0.5);
    const p99Ratio = beside.latency.quantile(0.99) / baseline.latency.quantile(0.99);
    const frames = (run: RunOutcome): number => run.clients.reduce((n, c) => n + c.tally.frames, 0);
    recorder.metric('lr_batches', 'long-running batches', outcome.batches, 'count');
    recorder.metric('lr_ms', 'long-running job ran', outcome.ranMs, 'ms');
    recorder.metric('ordinary_errors', "ordinary clients' errors", baseline.errors + beside.errors, 'count', 'lower');
    recorder.metric('frames_base', 'ordinary frames, alone', frames(baseline), 'count');
    recorder.metric('frames_lr', 'ordinary frames, beside it', frames(beside), 'count');
    recorder.metric('p50_base', 'ordinary p50, alone', baseline.latency.quantile(0.5), 'ms', 'lower');
    recorder.metric('p50_lr', 'ordinary p50, beside it', beside.latency.quantile(0.5), 'ms', 'lower');
    recorder.metric('p99_base', 'ordinary p99, alone', baseline.latency.quantile(0.99), 'ms', 'lower');
    recorder.metric('p99_lr', 'ordinary p99, beside it', beside.latency.quantile(0.99), 'ms', 'lower');
    recorder.metric('p50_ratio', 'ordinary p50, beside / alone', p50Ratio, 'ratio', 'lower');
    recorder.metric('p99_ratio', 'ordinary p99, beside / alone', p99Ratio, 'ratio', 'lower');
    recorder.metric('rule_reports', 'validator reports, on purpose', ruleReports, 'count');
    recorder.metric(
      'other_reports',
      'validator reports, otherwise',
      unexpected.length + outcome.allowedReports,
      'count',
    );
    recorder.metric('resv_refused', 'reservation refusals', outcome.resvRefusal === null ? 0 : 1, 'count');
    recorder.metric('chain_nodes_peak', 'chain nodes reachable, peak', outcome.chainNodesPeak, 'count', 'lower');
    recorder.metric(
      'chain_garbage_peak',
      'signaled nodes reachable, peak',
      outcome.chainSignaledPeak,
      'count',
      'lower',
    );
    recorder.metric('add_point_p50', 'addPoint p50', outcome.addPointUs.quantile(0.5), 'us', 'lower');
    recorder.metric('add_point_p99', 'addPoint p99', outcome.addPointUs.quantile(0.99), 'us', 'lower');
    recorder.metric(
      'add_point_total',
      'addPoint, all calls',
      (outcome.addPointUs.mean * outcome.addPointUs.count) / 1000,
      'ms',
      'lower',
    );
    recorder.metric('gc_queue_growth', 'global GC queue growth', DmaFenceChain.gcQueueLength - gcQueueBefore, 'count');

    const latency = recorder.series(
      {
        kind: 'lines',
        id: 'ordinary-latency',
        title: 'ordinary frame latency, worst per sample (s into each run)',
        unit: 'ms',
      },
      ['alone', 'beside the long-running job'],
    );
    const alone = worstOverTime(baseline, half);
    const besideWorst = worstOverTime(beside, half);
    for (let b = 0; b < CHART_BUCKETS; b++)
      latency.sample(((b + 1) * half) / CHART_BUCKETS, [alone[b]!, besideWorst[b]!]);
    recorder.histogram('ordinary-latency-base', 'ordinary frame latency, alone', 'ms', baseline.latency);
    recorder.histogram(
      'ordinary-latency-lr',
      'ordinary frame latency, beside the long-running job',
      'ms',
      beside.latency,
    );

    recorder.note(`rule (seed 001, the kernel's "Indefinite DMA Fences"): ${LONG_RUNNING_RULE}`);
    if (outcome.waitReport !== null) {
      const when = outcome.waitReportFresh ? 'reported now' : 'reported earlier in this process (once per pair)';
      recorder.note(`forbidden wait, ${when}: ${reportGist(outcome.waitReport.message)}`);
    }
    if (outcome.callbackReport !== null)
      recorder.note(`forbidden callback: ${reportGist(outcome.callbackReport.message)}`);
    if (outcome.resvRefusal !== null) recorder.note(`refused by DmaResv (validator or not): ${outcome.resvRefusal}`);
    recorder.note(
      `the long-running job ran ${outcome.batches} batches in ${outcome.ranMs.toFixed(0)} ms on compute.0, its fence ` +
        `signalled at ${outcome.signaledAtMs.toFixed(0)} ms (seen through lrAddCallback, no report); the ordinary ` +
        `clients got ${baseline.errors + beside.errors} errors`,
    );

    recorder.note(
      `the ordinary clients beside the long-running job: p50 within 2x of alone: ${p50Ratio <= 2 ? 'PASS' : 'FAIL'} ` +
        `(${p50Ratio.toFixed(2)}x); a timing, reported, not thrown: the soft device's engines are threads on the ` +
        "machine's cores, so a job that keeps compute.0 busy takes CPU time from gfx.0, as a GPU's separate rings " +
        'would not',
    );

    if (baseline.errors + beside.errors > 0) {
      throw new Error(`ordinary clients got ${baseline.errors + beside.errors} errors beside the long-running job`);
    }
    if (outcome.waitReport === null) {
      throw new Error('the validator did not report an ordinary signalling section waiting for a long-running fence');
    }
    if (outcome.callbackReport === null)
      throw new Error('the validator did not report a plain callback on a long-running fence');
    if (outcome.resvRefusal === null) throw new Error('a reservation object accepted a long-running fence');
    if (outcome.allowedReports > 0)
      throw new Error('the validator reported a long-running section waiting for an ordinary fence');
    if (unexpected.length > 0) {
      throw new Error(
        `the validator reported the stack itself: ${unexpected.map((r) => reportGist(r.message)).join('; ')}`,
      );
    }
  },
};
