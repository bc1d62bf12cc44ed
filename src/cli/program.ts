/**
 * The `dmabuf` program: `dmabuf run [scenario...]` and its options.
 *
 * Overview: {@link main} parses the command line with commander, resolves the scenarios (the
 * default set when none is named; under `--compare` with none named, every scenario that honours
 * the knob), runs them with live progress on stderr, writes `report.html` and `trace.json` into
 * `--out`, and prints the summary (or, with `--json`, the {@link RunJson} document) on stdout.
 * `run` is the default command: `dmabuf` alone runs the default set.
 *
 * Contract (exit codes, returned by {@link main}; `bin.ts` exits with them):
 * - 0: every scenario ran. 1: a scenario failed (it is reported; the others still ran), or an
 *   output file could not be written.
 * - 2: bad input: an unknown scenario, option, command or knob (the message lists the valid ones),
 *   a malformed or out-of-range value (the message names it and shows the expected form). Nothing
 *   runs then and stdout stays empty.
 * - 130: interrupted by Ctrl-C (SIGINT) when `handleSignals` is on: the running scenario stops,
 *   the rest are skipped, and the summary, report and trace of what ran are still written. A
 *   second Ctrl-C exits at once.
 *
 * @example
 * ```ts
 * import { main } from './program.js';
 * const code = await main(['run', 'churn', '--duration', '500ms', '--no-report', '--no-trace']);
 * console.log(code); // 0
 * ```
 */

import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { Command, CommanderError, Option } from 'commander';
import {
  LIMITS,
  UsageError,
  parseClients,
  parseCompare,
  parseDuration,
  parseSeed,
  parseSize,
  type CompareSpec,
} from './args.js';
import { createProgressView, type ProgressStream } from './progress.js';
import { renderReportHtml } from './report-html.js';
import { EXIT, exitCodeOf, toRunJson } from './run-json.js';
import type { RunOptions } from './run-result.js';
import { runScenarios } from './runner.js';
import { KNOBS, knobValues, type DeviceName, type KnobName, type Scenario } from './scenario.js';
import { SCENARIOS, defaultScenarios } from './scenarios/index.js';
import { renderSummary } from './summary.js';
import { toTraceJson } from './trace.js';

/** Where the program reads and writes; tests pass their own. */
export interface CliIo {
  readonly stdout: Writable;
  readonly stderr: ProgressStream;
  /** Resolves `--out` (default: `process.cwd()`). */
  readonly cwd: string;
  /** Install a SIGINT handler for the run (the real program does; tests use `signal`). */
  readonly handleSignals: boolean;
  /** Aborts the run as Ctrl-C would (for tests and embedding). */
  readonly signal?: AbortSignal;
}

/** Defaults of the options that have one. */
export const DEFAULTS = { seed: 1, budget: '64M', device: 'soft' as DeviceName, out: 'dmabuf-run' } as const;

interface RunFlags {
  seed?: string;
  clients?: string;
  budget?: string;
  duration?: string;
  device?: DeviceName;
  compare?: string;
  json?: boolean;
  out?: string;
  report?: boolean;
  trace?: boolean;
  progress?: boolean;
  list?: boolean;
}

/** Whether `scenario` runs on `device` (a scenario without devices runs anywhere). */
export function runsOn(scenario: Scenario, device: DeviceName): boolean {
  return scenario.devices === undefined || scenario.devices.includes(device);
}

/**
 * The scenarios `names` asks for (see the module overview); a default set leaves out the
 * scenarios that do not run on `device`.
 * @throws {UsageError} for unknown names, a knob none of them uses, or a named scenario that
 *   does not run on `device`.
 */
export function resolveScenarios(
  names: readonly string[],
  compare: CompareSpec | null,
  device: DeviceName = DEFAULTS.device,
): Scenario[] {
  const valid = SCENARIOS.map((s) => s.name).join(', ');
  const unknown = names.filter((n) => !SCENARIOS.some((s) => s.name === n));
  if (unknown.length > 0) {
    throw new UsageError(
      `unknown scenario${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')}; valid scenarios: ${valid} ` +
        '(dmabuf run --list describes them)',
    );
  }
  const honours = (s: Scenario): boolean => compare === null || s.knobs.includes(compare.knob as KnobName);
  if (names.length === 0) {
    const set = compare === null ? [...defaultScenarios()] : SCENARIOS.filter(honours);
    return set.filter((s) => runsOn(s, device));
  }
  const chosen = [...new Set(names)].map((n) => SCENARIOS.find((s) => s.name === n)!);
  const elsewhere = chosen.filter((s) => !runsOn(s, device));
  if (elsewhere.length > 0) {
    const s = elsewhere[0]!;
    throw new UsageError(
      `${s.name} does not run on --device ${device}; it runs on --device ${s.devices!.join(' or --device ')}`,
    );
  }
  if (compare !== null && !chosen.some(honours)) {
    const users = SCENARIOS.filter(honours).map((s) => s.name);
    throw new UsageError(
      `--compare ${compare.knob}: none of the named scenarios (${chosen.map((s) => s.name).join(', ')}) uses this ` +
        `knob; it applies to ${users.length > 0 ? users.join(', ') : 'no scenario in this build'}`,
    );
  }
  return chosen;
}

/** The listing of `dmabuf run --list`. */
export function renderList(): string {
  const lines = ['scenarios (* = run when none is named):'];
  for (const s of SCENARIOS) {
    lines.push(`  ${s.inDefaultSet ? '*' : ' '} ${s.name.padEnd(14)} ${s.title}`);
    if (s.devices !== undefined) lines.push(`    ${''.padEnd(14)} devices: ${s.devices.join(', ')}`);
    if (s.knobs.length > 0) lines.push(`    ${''.padEnd(14)} knobs: ${s.knobs.join(', ')}`);
  }
  lines.push('', 'knobs for --compare (default first is marked *):');
  for (const [name, knob] of Object.entries(KNOBS)) {
    const values = knob.values.map((v) => (v === knob.default ? `${v}*` : v)).join(',');
    lines.push(`  ${name}=${values}`, `      ${knob.question}`);
  }
  return lines.join('\n');
}

/** `dmabuf run a b --seed 3` for the report's "run it again" line. */
function commandLine(argv: readonly string[]): string {
  const words = argv[0] === 'run' ? argv.slice(1) : argv;
  return ['dmabuf run', ...words.map((w) => (/^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`))].join(
    ' ',
  );
}

/** A path as the user best reads it: relative to `cwd` when inside it. */
function shown(file: string, cwd: string): string {
  const rel = path.relative(cwd, file);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : file;
}

function runOptions(flags: RunFlags): RunOptions {
  const options: { -readonly [K in keyof RunOptions]: RunOptions[K] } = {
    seed: flags.seed === undefined ? DEFAULTS.seed : parseSeed(flags.seed),
    budgetBytes: parseSize('--budget', flags.budget ?? DEFAULTS.budget),
    device: flags.device ?? DEFAULTS.device,
  };
  if (flags.clients !== undefined) options.clients = parseClients(flags.clients);
  if (flags.duration !== undefined) options.durationMs = parseDuration('--duration', flags.duration);
  return options;
}

async function runCommand(names: string[], flags: RunFlags, argv: readonly string[], io: CliIo): Promise<number> {
  if (flags.list === true) {
    io.stdout.write(`${renderList()}\n`);
    return EXIT.ok;
  }
  const compare = flags.compare === undefined ? null : parseCompare(flags.compare, knobValues());
  const options = runOptions(flags);
  const scenarios = resolveScenarios(names, compare, options.device);
  const controller = new AbortController();
  const view = createProgressView(io.stderr, flags.progress !== false);
  const onSignal = (): void => {
    if (controller.signal.aborted) {
      view.stop(); // gives the terminal its cursor back
      process.exit(EXIT.interrupted);
    }
    const notice = 'dmabuf run: stopping (Ctrl-C again to quit at once); writing what ran so far';
    if (flags.progress === false) io.stderr.write(`${notice}\n`);
    else view.log(notice);
    controller.abort(new Error('interrupted by Ctrl-C'));
  };
  const onOuterAbort = (): void => controller.abort(io.signal?.reason);
  io.signal?.addEventListener('abort', onOuterAbort, { once: true });
  if (io.handleSignals) process.on('SIGINT', onSignal);
  let run: Awaited<ReturnType<typeof runScenarios>>;
  try {
    run = await runScenarios({
      scenarios,
      options,
      compare,
      trace: flags.trace !== false,
      signal: controller.signal,
      view,
      command: commandLine(argv),
    });
  } finally {
    if (io.handleSignals) process.off('SIGINT', onSignal);
    io.signal?.removeEventListener('abort', onOuterAbort);
  }
  const outDir = path.resolve(io.cwd, flags.out ?? DEFAULTS.out);
  const outputs: { report: string | null; trace: string | null } = { report: null, trace: null };
  let writeFailed = false;
  const write = (name: string, content: () => string): string | null => {
    const file = path.join(outDir, name);
    try {
      mkdirSync(outDir, { recursive: true });
      writeFileSync(file, content());
      return file;
    } catch (err) {
      writeFailed = true;
      io.stderr.write(`dmabuf run: could not write ${file}: ${err instanceof Error ? err.message : String(err)}\n`);
      return null;
    }
  };
  if (flags.report !== false) outputs.report = write('report.html', () => renderReportHtml(run));
  if (flags.trace !== false) outputs.trace = write('trace.json', () => JSON.stringify(toTraceJson(run)));
  const code = writeFailed && exitCodeOf(run) === EXIT.ok ? EXIT.failed : exitCodeOf(run);
  if (flags.json === true) {
    io.stdout.write(`${JSON.stringify({ ...toRunJson(run, outputs), exitCode: code }, null, 2)}\n`);
  } else {
    const display = {
      report: outputs.report === null ? null : shown(outputs.report, io.cwd),
      trace: outputs.trace === null ? null : shown(outputs.trace, io.cwd),
    };
    io.stdout.write(`${renderSummary(run, display)}\n`);
  }
  return code;
}

/** The commander program; `onRun` receives the parsed `run` command. */
function buildProgram(io: CliIo, onRun: (names: string[], flags: RunFlags) => void): Command {
  const program = new Command('dmabuf')
    .description("the Linux kernel's GPU buffer-sharing and synchronisation stack, run and measured")
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
      outputError: () => {},
    });
  const names = SCENARIOS.map((s) => s.name).join(', ');
  const knobs = Object.entries(KNOBS)
    .map(([k, v]) => `${k}=${v.values.join(',')}`)
    .join('; ');
  program
    .command('run', { isDefault: true })
    .description('run seeded scenarios through the whole stack; live progress, a summary, report.html and trace.json')
    .argument('[scenario...]', `scenarios to run (default: the default set): ${names}`)
    .option('--seed <n>', `seed of every random choice, 0 to 2^32-1 (default ${DEFAULTS.seed})`)
    .option(
      '--clients <n>',
      `clients per scenario, ${LIMITS.clients.min} to ${LIMITS.clients.max} (default: per scenario)`,
    )
    .option('--budget <size>', `memory budget (heap, VRAM), e.g. 64M or 1G (default ${DEFAULTS.budget})`)
    .option('--duration <time>', 'length of each scenario run, e.g. 10s or 500ms (default: per scenario)')
    .addOption(
      new Option('--device <name>', `the device jobs run on (default ${DEFAULTS.device})`).choices(['soft', 'webgpu']),
    )
    .option('--compare <knob=a,b>', `run each scenario that uses the knob once per value: ${knobs}`)
    .option('--json', 'print the machine-readable summary (schema dmabuf-run/1) on stdout instead of the table')
    .option('--out <dir>', `directory for report.html and trace.json (default ./${DEFAULTS.out})`)
    .option('--no-report', 'do not write report.html')
    .option('--no-trace', 'do not write trace.json (and do not record trace events)')
    .option('--no-progress', 'no live progress on stderr')
    .option('--list', 'describe the scenarios and knobs, and exit')
    .action((scenarioNames: string[], flags: RunFlags) => onRun(scenarioNames, flags));
  return program;
}

/** The valid options of `dmabuf run`, for error messages. */
function validOptions(program: Command): string {
  const run = program.commands.find((c) => c.name() === 'run');
  return (run?.options ?? []).map((o) => o.long ?? o.short ?? '').join(', ');
}

/** Runs the program on `argv` (the user's words, without `node` and the script) and returns the exit code. */
export async function main(argv: readonly string[], partialIo: Partial<CliIo> = {}): Promise<number> {
  const io: CliIo = {
    stdout: partialIo.stdout ?? process.stdout,
    stderr: partialIo.stderr ?? process.stderr,
    cwd: partialIo.cwd ?? process.cwd(),
    handleSignals: partialIo.handleSignals ?? false,
    ...(partialIo.signal === undefined ? {} : { signal: partialIo.signal }),
  };
  let request: { names: string[]; flags: RunFlags } | null = null;
  const program = buildProgram(io, (names, flags) => {
    request = { names, flags };
  });
  const fail = (message: string): number => {
    io.stderr.write(`dmabuf run: ${message}\n`);
    return EXIT.usage;
  };
  try {
    await program.parseAsync([...argv], { from: 'user' });
  } catch (err) {
    if (!(err instanceof CommanderError)) throw err;
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return EXIT.ok;
    const message = err.message.replace(/^error: /, '');
    if (err.code === 'commander.unknownOption') return fail(`${message}; valid options: ${validOptions(program)}`);
    if (err.code === 'commander.unknownCommand') return fail(`${message}; the command is: run (dmabuf run --help)`);
    return fail(`${message} (dmabuf run --help shows every option)`);
  }
  const parsed = request as { names: string[]; flags: RunFlags } | null;
  if (parsed === null) return EXIT.ok;
  try {
    return await runCommand(parsed.names, parsed.flags, argv, io);
  } catch (err) {
    if (err instanceof UsageError) return fail(err.message);
    throw err;
  }
}
