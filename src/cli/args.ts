/**
 * Command-line values of `dmabuf run`: sizes, durations, counts, seeds and `--compare`.
 *
 * Overview: each `parseX(option, text)` turns what a user typed into a number (or a
 * {@link CompareSpec}), or throws a {@link UsageError} that names the option, quotes the value and
 * shows the expected form with an example. The program turns a `UsageError` into exit code 2.
 *
 * Contract:
 * - Sizes are bytes: a number with an optional unit `B`, `K`, `M`, `G` (powers of 1024, an
 *   optional `iB`/`B` suffix and any case: `64M`, `64MiB`, `1.5g`, `65536`); the result is a whole
 *   number of bytes, rounded down to a multiple of 4 KiB pages.
 * - Durations are milliseconds: a number with a unit `ms`, `s` or `m` (`500ms`, `10s`, `1.5m`); a
 *   bare number means seconds.
 * - Every value has a range, stated in the error message when it is left.
 *
 * @example
 * ```ts
 * import { parseSize, parseDuration } from './args.js';
 * console.log(parseSize('--budget', '64M'), parseDuration('--duration', '1.5s')); // 67108864 1500
 * ```
 */

/** Bad command-line input: the program prints the message and exits with code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

const PAGE = 4096;
const SIZE_UNITS: Readonly<Record<string, number>> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };
const DURATION_UNITS: Readonly<Record<string, number>> = { '': 1000, ms: 1, s: 1000, m: 60_000 };

/** Limits of the sized options, shared by the parsers and the help text. */
export const LIMITS = {
  budget: { min: 4 * 1024 ** 2, max: 4 * 1024 ** 3 },
  duration: { min: 100, max: 3_600_000 },
  clients: { min: 1, max: 64 },
} as const;

/**
 * Bytes from a size such as `64M`.
 * @throws {UsageError} naming `option` when `text` is not a size or is out of `[min, max]`.
 */
export function parseSize(
  option: string,
  text: string,
  min: number = LIMITS.budget.min,
  max: number = LIMITS.budget.max,
): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([bkmg]?)(?:i?b)?\s*$/i.exec(text);
  const unit = SIZE_UNITS[(match?.[2] ?? '').toLowerCase()];
  if (match === null || unit === undefined) {
    throw new UsageError(
      `${option}: cannot read "${text}" as a size; expected a number with an optional unit B, K, M or G ` +
        '(powers of 1024), for example 64M, 512K or 1.5G',
    );
  }
  const bytes = Math.floor((Number(match[1]) * unit) / PAGE) * PAGE;
  if (bytes < min || bytes > max) {
    throw new UsageError(
      `${option}: ${text} is out of range; give a size from ${formatSize(min)} to ${formatSize(max)}`,
    );
  }
  return bytes;
}

/**
 * Milliseconds from a duration such as `10s`.
 * @throws {UsageError} naming `option` when `text` is not a duration or is out of range.
 */
export function parseDuration(option: string, text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*$/i.exec(text);
  const unit = DURATION_UNITS[(match?.[2] ?? '').toLowerCase()];
  if (match === null || unit === undefined) {
    throw new UsageError(
      `${option}: cannot read "${text}" as a duration; expected a number with a unit ms, s or m ` +
        '(a bare number is seconds), for example 10s, 500ms or 2m',
    );
  }
  const ms = Math.round(Number(match[1]) * unit);
  const { min, max } = LIMITS.duration;
  if (ms < min || ms > max) {
    throw new UsageError(`${option}: ${text} is out of range; give a duration from ${min}ms to ${max / 60_000}m`);
  }
  return ms;
}

/**
 * A whole number in `[min, max]`.
 * @throws {UsageError} naming `option` otherwise.
 */
export function parseInteger(option: string, text: string, min: number, max: number): number {
  const value = /^\s*\d+\s*$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new UsageError(`${option}: expected a whole number from ${min} to ${max}, got "${text}"`);
  }
  return value;
}

/** `--seed`: any 32-bit unsigned integer. */
export function parseSeed(text: string): number {
  return parseInteger('--seed', text, 0, 0xffff_ffff);
}

/** `--clients`: how many clients a scenario drives. */
export function parseClients(text: string): number {
  return parseInteger('--clients', text, LIMITS.clients.min, LIMITS.clients.max);
}

/** What `--compare knob=a,b` asks for. */
export interface CompareSpec {
  readonly knob: string;
  readonly values: readonly string[];
}

/**
 * Splits `knob=a,b[,c]` and checks it against the known knobs and their values.
 * @param knobs every knob name with its valid values.
 * @throws {UsageError} for a malformed spec, an unknown knob or value (listing the valid ones), a
 *   repeated value or fewer than two values.
 */
export function parseCompare(text: string, knobs: ReadonlyMap<string, readonly string[]>): CompareSpec {
  const valid = [...knobs].map(([k, vs]) => `${k}=${vs.join(',')}`).join('; ');
  const match = /^\s*([a-z-]+)\s*=\s*(.+?)\s*$/i.exec(text);
  if (match === null) {
    throw new UsageError(`--compare: expected knob=value,value, got "${text}"; valid knobs and values: ${valid}`);
  }
  const knob = match[1]!.toLowerCase();
  const allowed = knobs.get(knob);
  if (allowed === undefined)
    throw new UsageError(`--compare: unknown knob "${knob}"; valid knobs and values: ${valid}`);
  const values = match[2]!.split(',').map((v) => v.trim().toLowerCase());
  const unknown = values.filter((v) => !allowed.includes(v));
  if (unknown.length > 0) {
    throw new UsageError(
      `--compare ${knob}: unknown value${unknown.length > 1 ? 's' : ''} ${unknown.map((v) => `"${v}"`).join(', ')}; ` +
        `valid values: ${allowed.join(', ')}`,
    );
  }
  if (new Set(values).size !== values.length)
    throw new UsageError(`--compare ${knob}: a value is repeated in "${text}"`);
  if (values.length < 2) {
    throw new UsageError(
      `--compare ${knob}: name at least two values to compare, for example ${knob}=${allowed.join(',')}`,
    );
  }
  return { knob, values };
}

function formatSize(bytes: number): string {
  return bytes >= 1024 ** 3 ? `${bytes / 1024 ** 3}G` : `${bytes / 1024 ** 2}M`;
}
