/**
 * The benchmark runner: `npm run bench -- [names...]`.
 *
 * Overview: runs the benchmarks registered in `bench/index.ts` (each compares a dmabuf object
 * with the JavaScript baseline it replaces, in one process) and prints one comparison table:
 * case, dmabuf rate or size, baseline rate or size, median ratio with its inter-quartile range,
 * target, pass/miss; then notes, the machine (CPU model, cores, Node version) and the wall time.
 * Progress goes to stderr, results to stdout; `--json` prints a single JSON document instead of
 * the table. It lives in the repository, not in the package: `npm run bench` (full) and
 * `npm start` (`--quick`) run it from the TypeScript sources through tsx, with node's
 * `--expose-gc` so memory can be measured.
 *
 * Contract:
 * - Exit code 0 when every requested benchmark ran, even if a target was missed: a benchmark is
 *   a measurement, and the output says how many targets were missed.
 * - Exit code 2 for an unknown benchmark name (the message lists the valid ones), 1 when a
 *   benchmark threw (the others still run and are reported).
 * - `--json` output on stdout is exactly one JSON document ({@link BenchRunJson}).
 *
 * @example
 * ```ts
 * import { buildProgram } from './cli.js';
 * import { BENCHMARKS } from './index.js';
 * await buildProgram(BENCHMARKS).parseAsync(['node', 'bench/cli.ts', 'fence-signal', '--quick']);
 * ```
 */

import { realpathSync } from 'node:fs';
import os from 'node:os';
import { pathToFileURL } from 'node:url';
import { Command, CommanderError } from 'commander';
import { BENCHMARKS } from './index.js';
import { NO_GC_NOTE, budget, exposedGc, formatMeasured, formatRatio, type BenchEntry, type Row } from './report.js';

/** The machine line's facts. */
export interface MachineInfo {
  readonly cpu: string;
  readonly cores: number;
  readonly node: string;
  readonly v8: string;
  readonly platform: string;
}

/** One benchmark's outcome in a run. */
export interface BenchOutcome {
  readonly name: string;
  readonly question: string;
  readonly baseline: string;
  readonly target: string;
  readonly rows: readonly Row[];
  readonly notes: readonly string[];
  readonly wallMs: number;
  /** Set when the benchmark threw; its rows are then empty. */
  readonly error?: string;
}

/** What `dmabuf bench --json` prints. */
export interface BenchRunJson {
  readonly tool: 'dmabuf bench';
  readonly date: string;
  readonly quick: boolean;
  readonly gcExposed: boolean;
  readonly machine: MachineInfo;
  readonly wallMs: number;
  readonly targets: { readonly met: number; readonly missed: number };
  readonly benchmarks: readonly BenchOutcome[];
}

export function machineInfo(): MachineInfo {
  return {
    cpu: os.cpus()[0]?.model.trim() ?? 'unknown CPU',
    cores: os.availableParallelism(),
    node: process.version,
    v8: process.versions.v8,
    platform: `${process.platform} ${process.arch}`,
  };
}

function countTargets(outcomes: readonly BenchOutcome[]): { met: number; missed: number } {
  let met = 0;
  let missed = 0;
  for (const o of outcomes) {
    for (const row of o.rows) {
      if (row.target === null) continue;
      if (row.target.pass) met++;
      else missed++;
    }
  }
  return { met, missed };
}

/** Pads cells into aligned columns separated by two spaces. */
export function renderColumns(header: readonly string[], lines: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? '').length)));
  const fmt = (cells: readonly string[]): string =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [fmt(header), fmt(widths.map((w) => '-'.repeat(w))), ...lines.map(fmt)].join('\n');
}

/** The human-readable report: table, notes, targets summary, machine line, wall time. */
export function renderReport(run: BenchRunJson): string {
  const out: string[] = [];
  out.push(`dmabuf bench, ${run.date}${run.quick ? ' (--quick: fewer rounds, wider error bars)' : ''}`);
  out.push('');
  const lines: string[][] = [];
  for (const o of run.benchmarks) {
    if (o.error !== undefined) {
      lines.push([o.name, 'FAILED (see below)', '-', '-', '-', '-', '-', '']);
      continue;
    }
    for (const row of o.rows) {
      const sides =
        row.baseline !== null ? `${row.dmabuf?.label ?? '?'} vs ${row.baseline.label}` : (row.dmabuf?.label ?? '');
      const result = row.target === null ? '-' : row.target.pass ? 'pass' : 'MISS';
      lines.push([
        o.name,
        row.name,
        formatMeasured(row.dmabuf),
        formatMeasured(row.baseline),
        formatRatio(row.ratio),
        row.target?.text ?? '-',
        result,
        sides,
      ]);
    }
  }
  out.push(
    renderColumns(['benchmark', 'case', 'dmabuf', 'baseline', 'ratio [IQR]', 'target', 'result', 'sides'], lines),
  );
  out.push('');
  out.push(
    'ratio = dmabuf / baseline, median of per-round ratios (IQR = middle ' +
      'half of the rounds); rates: higher is better, bytes: lower is better.',
  );
  const notes: string[] = [];
  for (const o of run.benchmarks) {
    for (const row of o.rows) if (row.note !== undefined) notes.push(`${o.name} / ${row.name}: ${row.note}`);
    for (const n of o.notes) notes.push(`${o.name}: ${n}`);
    if (o.error !== undefined) notes.push(`${o.name}: FAILED: ${o.error}`);
  }
  if (notes.length > 0) {
    out.push('');
    out.push('notes:');
    for (const n of notes) out.push(`  - ${n}`);
  }
  out.push('');
  const { met, missed } = run.targets;
  out.push(
    missed === 0
      ? `targets: ${met} met, none missed.`
      : `targets: ${met} met, ${missed} MISSED (a missed target ` +
          `is a measurement, not a failure: the exit code stays 0).`,
  );
  if (!run.gcExposed) out.push(`warning: ${NO_GC_NOTE}.`);
  const m = run.machine;
  out.push(`machine: ${m.cpu}, ${m.cores} cores, Node ${m.node} (V8 ${m.v8}), ${m.platform}`);
  out.push(`wall time: ${(run.wallMs / 1000).toFixed(1)} s`);
  return out.join('\n');
}

/** Thrown for an unknown benchmark name; the CLI turns it into exit code 2. */
export class UnknownBenchmarkError extends Error {
  override name = 'UnknownBenchmarkError';
}

/** Checks `names` against `registry`. @throws {UnknownBenchmarkError} naming the valid ones. */
export function resolveNames(names: readonly string[], registry: readonly BenchEntry[]): string[] {
  if (names.length === 0) return registry.map((b) => b.name);
  const unknown = names.filter((n) => !registry.some((b) => b.name === n));
  if (unknown.length > 0) {
    const valid = registry.map((b) => b.name).join(', ');
    throw new UnknownBenchmarkError(
      `unknown benchmark${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')}. ` +
        `Valid names: ${valid} (see npm run bench -- --list)`,
    );
  }
  return [...new Set(names)];
}

/** Runs the named benchmarks of `registry` in order, reporting progress through `progress`. */
export async function runBenchmarks(
  registry: readonly BenchEntry[],
  names: readonly string[],
  quick: boolean,
  progress: (line: string) => void,
): Promise<BenchRunJson> {
  const start = performance.now();
  const outcomes: BenchOutcome[] = [];
  const b = budget(quick);
  for (const [i, name] of names.entries()) {
    const entry = registry.find((e) => e.name === name)!;
    progress(`[${i + 1}/${names.length}] ${name}: ${entry.summary}`);
    const t0 = performance.now();
    try {
      const def = await entry.load();
      const report = await def.run({ budget: b, progress: (line) => progress(`  ${line}`) });
      outcomes.push({
        name,
        question: def.question,
        baseline: def.baseline,
        target: def.target,
        rows: report.rows,
        notes: report.notes,
        wallMs: performance.now() - t0,
      });
      progress(`  done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    } catch (err) {
      const message = err instanceof Error ? (err.stack ?? err.message) : String(err);
      progress(`  ${name} FAILED: ${message}`);
      outcomes.push({
        name,
        question: entry.summary,
        baseline: '',
        target: '',
        rows: [],
        notes: [],
        wallMs: performance.now() - t0,
        error: message,
      });
    }
  }
  const run: BenchRunJson = {
    tool: 'dmabuf bench',
    date: new Date().toISOString(),
    quick,
    gcExposed: exposedGc() !== undefined,
    machine: machineInfo(),
    wallMs: performance.now() - start,
    targets: countTargets(outcomes),
    benchmarks: outcomes,
  };
  return run;
}

interface BenchOptions {
  quick?: boolean;
  json?: boolean;
  list?: boolean;
}

/** The runner's program. Exit codes are set on `process.exitCode`, never by exiting early. */
export function buildProgram(registry: readonly BenchEntry[]): Command {
  const program = new Command();
  program
    .name('npm run bench --')
    .description('run the dmabuf benchmarks side by side with their JavaScript baselines and print a comparison table')
    .showHelpAfterError()
    .argument('[names...]', `benchmarks to run (default: all): ${registry.map((b) => b.name).join(', ')}`)
    .option('--quick', 'fewer rounds: the whole suite in about 25-35 s on 2 cores, with wider error bars')
    .option('--json', 'print one machine-readable JSON document on stdout instead of the table')
    .option('--list', 'list the benchmarks and exit')
    .action(async (names: string[], opts: BenchOptions) => {
      if (opts.list === true) {
        if (opts.json === true) {
          process.stdout.write(
            `${JSON.stringify(
              registry.map((b) => ({ name: b.name, summary: b.summary })),
              null,
              2,
            )}\n`,
          );
        } else {
          process.stdout.write(
            `${renderColumns(
              ['name', 'question'],
              registry.map((b) => [b.name, b.summary]),
            )}\n`,
          );
        }
        return;
      }
      let selected: string[];
      try {
        selected = resolveNames(names, registry);
      } catch (err) {
        if (err instanceof UnknownBenchmarkError) {
          process.stderr.write(`dmabuf bench: ${err.message}\n`);
          process.exitCode = 2;
          return;
        }
        throw err;
      }
      if (exposedGc() === undefined) process.stderr.write(`dmabuf bench: warning: ${NO_GC_NOTE}\n`);
      const run = await runBenchmarks(registry, selected, opts.quick === true, (line) =>
        process.stderr.write(`${line}\n`),
      );
      process.stdout.write(opts.json === true ? `${JSON.stringify(run, null, 2)}\n` : `${renderReport(run)}\n`);
      if (run.benchmarks.some((o) => o.error !== undefined)) process.exitCode = 1;
    });
  return program;
}

/** Runs the program on `argv` (as in `process.argv`) over `registry` (default: every benchmark). */
export async function main(argv: readonly string[], registry: readonly BenchEntry[] = BENCHMARKS): Promise<void> {
  try {
    await buildProgram(registry).parseAsync([...argv]);
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode;
      return;
    }
    throw err;
  }
}

function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(script)).href;
  } catch {
    return false;
  }
}

if (isEntryPoint()) await main(process.argv);
