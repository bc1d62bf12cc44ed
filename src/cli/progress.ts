/**
 * Live progress of `dmabuf run` on stderr.
 *
 * Overview: the runner reports to a {@link ProgressView}: a variant started, how far it is with a
 * short status, how it ended. {@link createProgressView} picks the view for the stream:
 * - a terminal gets live bars drawn by cli-progress (one per scenario variant, redrawn ten times a
 *   second, the cursor hidden while they run);
 * - anything else (a pipe, a CI log) gets plain lines: one when a variant starts, one per second
 *   of progress, one when it ends;
 * - `--no-progress` gets nothing.
 *
 * Contract: progress never goes to stdout (which carries the summary or `--json`); every line fits
 * the terminal's width (100 columns when unknown); `stop()` leaves the terminal as it found it
 * (cursor shown, bars finished) and is idempotent.
 *
 * @example
 * ```ts
 * import { createProgressView } from './progress.js';
 * const view = createProgressView(process.stderr, true);
 * view.started('churn', 1000);
 * view.update(0.5, '12k allocs');
 * view.finished('ok', 1000);
 * view.stop();
 * ```
 */

import type { Writable } from 'node:stream';
import cliProgress from 'cli-progress';
import { clip, formatValue } from './format.js';
import type { Status } from './run-result.js';

/** What the runner tells the user while it runs. */
export interface ProgressView {
  /** A variant (`churn [deferred-free=off]`) starts; it should take about `durationMs`. */
  started(label: string, durationMs: number): void;
  /** The running variant is `fraction` done; `status` says what it did so far. */
  update(fraction: number, status: string): void;
  /** The running variant ended. */
  finished(status: Status, wallMs: number, error?: string): void;
  /** A line outside any variant (a skipped scenario, the output files). */
  log(line: string): void;
  stop(): void;
}

/** A stream as the views need it: `isTTY` and `columns` exist on terminals. */
export type ProgressStream = Writable & { readonly isTTY?: boolean; readonly columns?: number };

const DEFAULT_WIDTH = 100;
const PLAIN_INTERVAL_MS = 1000;

function outcome(status: Status, wallMs: number, error?: string): string {
  const time = formatValue(wallMs, 'ms');
  if (status === 'ok') return `done in ${time}`;
  if (status === 'interrupted') return `interrupted after ${time}`;
  return `FAILED after ${time}: ${error ?? 'unknown error'}`;
}

/** Plain lines, for pipes and logs. */
class LineView implements ProgressView {
  readonly #stream: ProgressStream;
  #label = '';
  #lastLine = 0;

  constructor(stream: ProgressStream) {
    this.#stream = stream;
  }

  started(label: string, durationMs: number): void {
    this.#label = label;
    this.#lastLine = performance.now();
    this.log(`${label}: started (about ${formatValue(durationMs, 'ms')})`);
  }

  update(fraction: number, status: string): void {
    const now = performance.now();
    if (now - this.#lastLine < PLAIN_INTERVAL_MS) return;
    this.#lastLine = now;
    this.log(`${this.#label}: ${Math.round(fraction * 100)}% ${status}`);
  }

  finished(status: Status, wallMs: number, error?: string): void {
    this.log(`${this.#label}: ${outcome(status, wallMs, error)}`);
  }

  log(line: string): void {
    this.#stream.write(`${clip(line, DEFAULT_WIDTH)}\n`);
  }

  stop(): void {}
}

/** Live bars, for terminals. */
class BarView implements ProgressView {
  readonly #bars: cliProgress.MultiBar;
  #bar: cliProgress.SingleBar | null = null;
  #stopped = false;

  constructor(stream: ProgressStream) {
    const width = Math.min(stream.columns ?? DEFAULT_WIDTH, DEFAULT_WIDTH);
    this.#bars = new cliProgress.MultiBar({
      stream,
      hideCursor: true,
      fps: 10,
      barsize: 20,
      barCompleteChar: '\u2588',
      barIncompleteChar: '\u2591',
      forceRedraw: true,
      autopadding: true,
      format: (options, params, payload: { label: string; status: string }) => {
        const bar = options.barCompleteString!.slice(0, Math.round(params.progress * options.barsize!));
        const rest = options.barIncompleteString!.slice(0, options.barsize! - bar.length);
        const pct = `${Math.round(params.progress * 100)}%`.padStart(4);
        return clip(`${payload.label.padEnd(28)} ${bar}${rest} ${pct}  ${payload.status}`, width - 1);
      },
    });
  }

  started(label: string, _durationMs: number): void {
    this.#bar = this.#bars.create(1, 0, { label: clip(label, 28), status: 'starting' });
  }

  update(fraction: number, status: string): void {
    this.#bar?.update(Math.min(1, Math.max(0, fraction)), { status });
  }

  finished(status: Status, wallMs: number, error?: string): void {
    const bar = this.#bar;
    if (bar === null) return;
    // The bar stays in the list (a finished bar shows how its variant ended) until stop().
    bar.update(status === 'ok' ? 1 : bar.getProgress(), { status: outcome(status, wallMs, error) });
    this.#bar = null;
  }

  log(line: string): void {
    this.#bars.log(`${line}\n`);
  }

  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#bars.stop();
  }
}

class SilentView implements ProgressView {
  started(): void {}
  update(): void {}
  finished(): void {}
  log(): void {}
  stop(): void {}
}

/** Bars on a terminal, plain lines elsewhere, nothing when `enabled` is false. */
export function createProgressView(stream: ProgressStream, enabled: boolean): ProgressView {
  if (!enabled) return new SilentView();
  return stream.isTTY === true ? new BarView(stream) : new LineView(stream);
}
