/**
 * How `dmabuf run` writes numbers: one formatter for the summary table, the progress lines and
 * the HTML report, so the same value reads the same everywhere.
 *
 * Contract:
 * - {@link formatValue} is short (at most 12 characters for any finite value of a unit below) and
 *   keeps three significant digits; `NaN` reads `-`.
 * - Byte sizes use powers of 1024 (KiB, MiB, GiB); times pick µs, ms or s.
 *
 * @example
 * ```ts
 * import { formatValue } from './format.js';
 * console.log(formatValue(53_687_091, 'bytes'), formatValue(1234.5, 'us')); // 51.2 MiB 1.23 ms
 * ```
 */

/** Units of metrics and chart axes. `us` and `ms` are durations, `per_s` a rate. */
export type Unit = 'bytes' | 'count' | 'us' | 'ms' | 'per_s' | 'percent' | 'ratio';

/** Every unit, for the `--json` schema's documentation and its test. */
export const UNITS: readonly Unit[] = ['bytes', 'count', 'us', 'ms', 'per_s', 'percent', 'ratio'];

/** Three significant digits (`1.23`, `12.3`, `123`, `12345`); from 100,000 on with k, M, G, T. */
function digits3(value: number): string {
  const abs = Math.abs(value);
  if (abs >= 1e5) {
    const [scale, suffix] = abs >= 1e12 ? [1e12, 'T'] : abs >= 1e9 ? [1e9, 'G'] : abs >= 1e6 ? [1e6, 'M'] : [1e3, 'k'];
    return `${digits3(value / scale)}${suffix}`;
  }
  if (abs >= 100) return value.toFixed(0);
  if (abs >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

/** `bytes` with a binary unit: `512 B`, `4.00 KiB`, `51.2 MiB`. */
export function formatBytes(bytes: number): string {
  const abs = Math.abs(bytes);
  if (abs < 1024) return `${bytes.toFixed(0)} B`;
  if (abs < 1024 ** 2) return `${digits3(bytes / 1024)} KiB`;
  if (abs < 1024 ** 3) return `${digits3(bytes / 1024 ** 2)} MiB`;
  return `${digits3(bytes / 1024 ** 3)} GiB`;
}

/** A duration in microseconds, in the unit that keeps it short: `850 ns`, `12.3 µs`, `4.56 ms`, `2.00 s`. */
export function formatMicros(us: number): string {
  const abs = Math.abs(us);
  if (abs < 1) return `${(us * 1000).toFixed(0)} ns`;
  if (abs < 1000) return `${digits3(us)} µs`;
  if (abs < 1_000_000) return `${digits3(us / 1000)} ms`;
  return `${digits3(us / 1_000_000)} s`;
}

/** A count: exact below 100,000 (`12,345`), then `123k`, `1.23M`. */
export function formatCount(n: number): string {
  const abs = Math.abs(n);
  return abs < 100_000 ? Math.round(n).toLocaleString('en-US') : digits3(n);
}

/** `value` in `unit`, short and human (see the module contract). */
export function formatValue(value: number, unit: Unit): string {
  if (Number.isNaN(value)) return '-';
  if (!Number.isFinite(value)) return value > 0 ? 'inf' : '-inf';
  switch (unit) {
    case 'bytes':
      return formatBytes(value);
    case 'count':
      return formatCount(value);
    case 'us':
      return formatMicros(value);
    case 'ms':
      return formatMicros(value * 1000);
    case 'per_s':
      return `${formatCount(value)}/s`;
    case 'percent':
      return `${digits3(value)} %`;
    case 'ratio':
      return `${digits3(value)}x`;
  }
}

/** Cuts `text` to `width` columns, ending with `…` when it was longer. */
export function clip(text: string, width: number): string {
  return text.length <= width ? text : `${text.slice(0, Math.max(0, width - 1))}…`;
}

/**
 * `text` broken at spaces into lines of at most `width` columns: the first after `first`, the
 * others after as many spaces (a hanging indent for `- ` bullets).
 */
export function wrap(text: string, width: number, first = ''): string[] {
  const room = Math.max(10, width - first.length);
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter((w) => w !== '')) {
    if (line === '') line = word;
    else if (line.length + 1 + word.length <= room) line += ` ${word}`;
    else {
      lines.push(line);
      line = word;
    }
  }
  if (line !== '') lines.push(line);
  const hang = ' '.repeat(first.length);
  return lines.map((l, i) => (i === 0 ? first : hang) + clip(l, room));
}
