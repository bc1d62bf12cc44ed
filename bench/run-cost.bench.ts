/**
 * Benchmark: what does `dmabuf run` cost the scenario it shows?
 *
 * Question (issue 12): the main job records trace events, draws live progress and writes a
 * report and a trace. Does a scenario keep at least 0.9x of its throughput with all of that on,
 * compared with all of it off?
 *
 * Sides, in interleaved rounds in one process, each round one run of the `churn` scenario
 * (4 clients, 64 MiB budget, 400 ms, the same seed every round):
 * - `runner on` (candidate): trace events recorded, live progress drawn as terminal bars
 *   (cli-progress, redrawn ten times a second, into a stream that claims to be a 100-column
 *   terminal and drops what it is given), then `report.html` rendered and `trace.json`
 *   serialised and both written to a temporary directory;
 * - `runner off` (baseline): `--no-trace --no-progress --no-report`: no trace events, no view,
 *   nothing written.
 *
 * Measured: allocations of the run divided by the round's wall time, which includes rendering
 * and writing the files, so the candidate pays for everything the runner adds. The row's ratio
 * is the median of the per-round ratios (candidate / baseline).
 *
 * Target: >= 0.9x.
 *
 * @example
 * ```ts
 * // npm run bench -- run-cost
 * import { definition } from './run-cost.bench.js';
 * import { budget } from './harness.js';
 * const report = await definition.run({ budget: budget(true), progress: console.error });
 * ```
 */

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { createProgressView } from '../src/cli/progress.js';
import { renderReportHtml } from '../src/cli/report-html.js';
import { runScenarios } from '../src/cli/runner.js';
import { churn } from '../src/cli/scenarios/churn.js';
import { toTraceJson } from '../src/cli/trace.js';
import { ratioStats, throughputRow, type BenchContext, type BenchDefinition, type BenchReport } from './harness.js';

const DURATION_MS = 400;

/** A 100-column terminal that forgets everything written to it. */
class NullTerminal extends Writable {
  readonly isTTY = true;
  readonly columns = 100;
  override _write(_chunk: unknown, _encoding: BufferEncoding, done: () => void): void {
    done();
  }
}

/** One run of churn; returns allocations per second of wall time (outputs included). */
export async function churnRound(runnerOn: boolean, outDir: string, durationMs = DURATION_MS): Promise<number> {
  const t0 = performance.now();
  const run = await runScenarios({
    scenarios: [churn],
    options: { seed: 1, clients: 4, budgetBytes: 64 << 20, durationMs, device: 'soft' },
    compare: null,
    trace: runnerOn,
    view: createProgressView(new NullTerminal(), runnerOn),
  });
  if (runnerOn) {
    writeFileSync(path.join(outDir, 'report.html'), renderReportHtml(run));
    writeFileSync(path.join(outDir, 'trace.json'), JSON.stringify(toTraceJson(run)));
  }
  const ms = performance.now() - t0;
  const variant = run.scenarios[0]?.variants[0];
  if (variant?.status !== 'ok')
    throw new Error(`run-cost: churn ${variant?.status ?? 'did not run'}: ${variant?.error}`);
  const allocations = variant.metrics.find((m) => m.key === 'allocations')?.value ?? 0;
  return allocations / (ms / 1000);
}

export const definition: BenchDefinition = {
  name: 'run-cost',
  question: "Does a scenario keep >= 0.9x of its throughput with the runner's trace, progress and report on?",
  baseline: 'the same churn run with --no-trace --no-progress --no-report',
  target: '>= 0.9x allocations per second of wall time (outputs written inside the round)',
  async run(ctx: BenchContext): Promise<BenchReport> {
    const { rounds, warmup } = ctx.budget;
    const dir = mkdtempSync(path.join(tmpdir(), 'dmabuf-run-cost-'));
    const on: number[] = [];
    const off: number[] = [];
    try {
      for (let r = 0; r < warmup + rounds; r++) {
        ctx.progress(`run-cost: round ${r + 1}/${warmup + rounds}${r < warmup ? ' (warm-up)' : ''}`);
        const pair =
          r % 2 === 0
            ? [await churnRound(true, dir), await churnRound(false, dir)]
            : [await churnRound(false, dir), await churnRound(true, dir)].reverse();
        if (r < warmup) continue;
        on.push(pair[0]!);
        off.push(pair[1]!);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const row = throughputRow({
      name: `churn, ${DURATION_MS} ms, 4 clients`,
      candidate: { label: 'runner on', rates: on },
      baseline: { label: 'runner off', rates: off },
      ratio: ratioStats(on, off),
      samples: rounds,
      batch: 1,
      target: { op: '>=', value: 0.9 },
      note: 'rate = allocations / wall time of the round, rendering and writing report.html and trace.json included',
    });
    return { rows: [row], notes: [] };
  },
};
