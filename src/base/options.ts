/**
 * Argument and option checks: the gate every public entry point passes its inputs through.
 *
 * Overview: dmabuf is called from plain JavaScript too, so types promise nothing at run time.
 * Every public constructor and method checks its arguments and options here before it changes
 * anything (the kernel's `-EINVAL` at the ioctl boundary). A {@link Check} checks one value;
 * {@link defineOptions} compiles a table of checks into one function's options parser, which
 * also refuses unknown option names (a misspelt `timout` is not silently ignored).
 *
 * Contract:
 * - A parser reads each option once (a getter cannot pass the check and then change) and
 *   returns a record of every option (absent ones `undefined`); `undefined` options cost nothing.
 * - Options are plain objects; class instances (an `AbortController` passed by mistake), arrays,
 *   functions and primitives are refused.
 * - {@link isAbortSignal} is a brand check (`AbortSignal.prototype`'s own `aborted` getter):
 *   look-alikes are refused, signals from another realm accepted.
 * - Numbers: `NaN` never, `±Infinity` only where it means something (an endless timeout); counts
 *   and sizes are safe integers.
 * - Messages read `<function>: <argument> must be <expected>, got <value>`; the error's
 *   `argument` names the argument (`'options.timeout'`).
 *
 * @example
 * ```ts
 * import { InvalidArgumentError } from 'dmabuf';
 * import { defineOptions, optionalSignal, optionalTimeout } from './options.js';
 * const parseWait = defineOptions('Job.wait', { timeout: optionalTimeout, signal: optionalSignal });
 * const { timeout } = parseWait({ timeout: 50 });
 * console.log(timeout); // 50
 * try {
 *   parseWait({ timout: 50 });
 * } catch (err) {
 *   if (err instanceof InvalidArgumentError) console.log(err.argument); // 'options.timout'
 * }
 * ```
 */

import { ERRNO, type ErrnoCode, InvalidArgumentError, describeValue } from './errors.js';

/** @internal Checks one input: returns the value to use (maybe normalised) or throws. */
export type Check<T> = (value: unknown, fn: string, name: string) => T;

/** @internal Builds the error every check throws: `<fn>: <name> must be <expected>, got <value>[; hint]`. */
export function invalidArgument(
  fn: string,
  name: string,
  value: unknown,
  expected: string,
  hint?: string,
): InvalidArgumentError {
  const got = describeValue(value);
  const advice = hint ?? signalHint(value);
  return new InvalidArgumentError(`${fn}: ${name} must be ${expected}, got ${got}${advice ? `; ${advice}` : ''}`, {
    argument: name,
  });
}

// The slip the signal check exists for: passing the controller.
function signalHint(value: unknown): string | undefined {
  if (typeof AbortController === 'function' && value instanceof AbortController) {
    return 'pass controller.signal, not the AbortController itself';
  }
  return undefined;
}

const abortedGetter: ((this: unknown) => boolean) | undefined =
  typeof AbortSignal === 'function'
    ? Object.getOwnPropertyDescriptor(AbortSignal.prototype, 'aborted')?.get
    : undefined;

/** @internal Whether `value` is a real `AbortSignal` (of any realm; `instanceof` is fooled both ways). */
export function isAbortSignal(value: unknown): value is AbortSignal {
  if (typeof value !== 'object' || value === null || abortedGetter === undefined) return false;
  try {
    abortedGetter.call(value);
    return true;
  } catch {
    return false;
  }
}

/** @internal Whether `value` is a plain object (a literal or `Object.create(null)`, of any realm). */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === null || proto === Object.prototype || Object.getPrototypeOf(proto) === null;
}

// ---------------------------------------------------------------------------------------------
// Checks for one value. `optional*` accept `undefined` (and return it); the others do not.

/** @internal `undefined`, or a real `AbortSignal` (see {@link isAbortSignal}). */
export const optionalSignal: Check<AbortSignal | undefined> = (value, fn, name) => {
  if (value === undefined || isAbortSignal(value)) return value;
  throw invalidArgument(fn, name, value, 'an AbortSignal (or omitted)');
};

/** @internal Milliseconds >= 0 (0 polls once); `undefined` or `Infinity` mean no limit (returned as `undefined`). */
export const optionalTimeout: Check<number | undefined> = (value, fn, name) => {
  if (value === undefined || value === Infinity) return undefined;
  if (typeof value === 'number' && value >= 0 && value < Infinity) return value;
  throw invalidArgument(
    fn,
    name,
    value,
    'a number of milliseconds >= 0 (0 polls once; Infinity or omitted waits for ever)',
  );
};

/** @internal `undefined` or a boolean. */
export const optionalBoolean: Check<boolean | undefined> = (value, fn, name) => {
  if (value === undefined || typeof value === 'boolean') return value;
  throw invalidArgument(fn, name, value, 'a boolean (or omitted)');
};

/** @internal A boolean. */
export const requiredBoolean: Check<boolean> = (value, fn, name) => {
  if (typeof value === 'boolean') return value;
  throw invalidArgument(fn, name, value, 'a boolean');
};

/** @internal `undefined` or a string. */
export const optionalString: Check<string | undefined> = (value, fn, name) => {
  if (value === undefined || typeof value === 'string') return value;
  throw invalidArgument(fn, name, value, 'a string (or omitted)');
};

/** @internal A string. */
export const requiredString: Check<string> = (value, fn, name) => {
  if (typeof value === 'string') return value;
  throw invalidArgument(fn, name, value, 'a string');
};

/** @internal A non-empty string. */
export const requiredName: Check<string> = (value, fn, name) => {
  if (typeof value === 'string' && value !== '') return value;
  throw invalidArgument(fn, name, value, 'a non-empty string');
};

/** @internal `undefined` or a function. */
export const optionalFunction: Check<((...args: never[]) => unknown) | undefined> = (value, fn, name) => {
  if (value === undefined || typeof value === 'function') return value as ((...args: never[]) => unknown) | undefined;
  throw invalidArgument(fn, name, value, 'a function (or omitted)');
};

/** @internal A function. */
export const requiredFunction: Check<(...args: never[]) => unknown> = (value, fn, name) => {
  if (typeof value === 'function') return value as (...args: never[]) => unknown;
  throw invalidArgument(fn, name, value, 'a function');
};

/** @internal A safe integer >= 0 (seqnos, counts, sizes, indices). */
export const requiredIndex: Check<number> = (value, fn, name) => {
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return value;
  throw invalidArgument(fn, name, value, 'an integer from 0 to 2^53-1');
};

/** @internal `undefined` or a safe integer >= 0. */
export const optionalIndex: Check<number | undefined> = (value, fn, name) =>
  value === undefined ? undefined : requiredIndex(value, fn, name);

/** @internal A safe integer >= 1. */
export const requiredPositiveInteger: Check<number> = (value, fn, name) => {
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 1) return value;
  throw invalidArgument(fn, name, value, 'an integer from 1 to 2^53-1');
};

/** @internal `undefined` or a safe integer >= 1. */
export const optionalPositiveInteger: Check<number | undefined> = (value, fn, name) =>
  value === undefined ? undefined : requiredPositiveInteger(value, fn, name);

/** @internal A finite number (clock times, deadlines, timestamps). */
export const requiredFinite: Check<number> = (value, fn, name) => {
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  throw invalidArgument(fn, name, value, 'a finite number');
};

/** @internal `undefined` or a finite number. */
export const optionalFinite: Check<number | undefined> = (value, fn, name) =>
  value === undefined ? undefined : requiredFinite(value, fn, name);

/** @internal Whether `value` is one of the errno names dmabuf uses (`'ENODEV'`, ...; see `ERRNO`). */
export function isErrnoName(value: unknown): value is ErrnoCode {
  return typeof value === 'string' && Object.hasOwn(ERRNO, value);
}

/** @internal What an errno check expects, for messages. */
export const ERRNO_EXPECTED = `an errno name (${Object.keys(ERRNO).join(', ')})`;

/** @internal An errno name (`'ENODEV'`, `'ECANCELED'`, ...): the one check for every call that takes a code. */
export const requiredErrno: Check<ErrnoCode> = (value, fn, name) => {
  if (isErrnoName(value)) return value;
  throw invalidArgument(fn, name, value, ERRNO_EXPECTED);
};

/** @internal `undefined` or an errno name. */
export const optionalErrno: Check<ErrnoCode | undefined> = (value, fn, name) =>
  value === undefined ? undefined : requiredErrno(value, fn, name);

/** @internal A check accepting exactly the listed primitive values (`oneOf(['walk', 'queue'])`). */
export function oneOf<const T extends readonly (string | number | boolean)[]>(values: T): Check<T[number]> {
  const expected = `one of ${values.map((v) => JSON.stringify(v)).join(', ')}`;
  return (value, fn, name) => {
    if (values.includes(value as T[number])) return value as T[number];
    throw invalidArgument(fn, name, value, expected);
  };
}

/** @internal A check accepting instances of `ctor` (same realm: these are dmabuf's own classes). */
export function instanceOf<T>(ctor: abstract new (...args: never[]) => T, expected = `a ${ctor.name}`): Check<T> {
  return (value, fn, name) => {
    if (value instanceof ctor) return value;
    throw invalidArgument(fn, name, value, expected);
  };
}

/** @internal Makes `check` accept `undefined` too (and return it). */
export function optional<T>(check: Check<T>): Check<T | undefined> {
  return (value, fn, name) => (value === undefined ? undefined : check(value, fn, name));
}

/**
 * @internal
 * The `interruptible` rule of DrmExec and of TTM's operations and reservations: a
 * signal needs interruptible waits. @returns whether the waits are interruptible.
 * @throws {InvalidArgumentError} for `interruptible: false` with a signal.
 */
export function checkInterruptible(
  fn: string,
  interruptible: boolean | undefined,
  signal: AbortSignal | undefined,
): boolean {
  if (interruptible === false && signal !== undefined) {
    throw invalidArgument(
      fn,
      'options.interruptible',
      interruptible,
      'true or omitted when a signal is given',
      'uninterruptible waits ignore signals; drop one of the two',
    );
  }
  return interruptible !== false;
}

// ---------------------------------------------------------------------------------------------
// Options objects

/** @internal A table of checks, one per option name. */
export type OptionsSchema = Readonly<Record<string, Check<unknown>>>;

/** @internal What a parser returns: every option of the table, checked (absent ones `undefined`). */
export type ParsedOptions<S extends OptionsSchema> = { readonly [K in keyof S]: ReturnType<S[K]> };

/** @internal Checks one function's options object; see {@link defineOptions}. */
export type OptionsParser<S extends OptionsSchema> = (options: unknown) => ParsedOptions<S>;

/**
 * @internal
 * Compiles `schema` into function `fn`'s options parser (`fn` as messages name it: `'DmaFence.wait'`).
 * @throws {InvalidArgumentError} from the parser, for anything but `undefined` or a plain object
 *   of known options that pass their checks.
 */
export function defineOptions<S extends OptionsSchema>(fn: string, schema: S): OptionsParser<S> {
  const compiled = compile(fn, schema);
  const { keys, checks, names } = compiled;
  const empty: Record<string, unknown> = {};
  for (const key of keys) empty[key] = undefined;
  Object.freeze(empty);
  return (options) => {
    if (options === undefined && compiled.allOptional) return empty as ParsedOptions<S>;
    const source = checkShape(compiled, options);
    const out: Record<string, unknown> = {};
    for (let i = 0; i < keys.length; i++) out[keys[i]!] = checks[i]!(source[keys[i]!], fn, names[i]!);
    return out as ParsedOptions<S>;
  };
}

/** @internal {@link defineOptions} without the record: for hot paths that read booleans with `=== true` after. */
export function defineOptionsCheck(fn: string, schema: OptionsSchema): (options: unknown) => void {
  const compiled = compile(fn, schema);
  const { keys, checks, names } = compiled;
  return (options) => {
    if (options === undefined && compiled.allOptional) return;
    const source = checkShape(compiled, options);
    for (let i = 0; i < keys.length; i++) checks[i]!(source[keys[i]!], fn, names[i]!);
  };
}

interface CompiledSchema {
  readonly fn: string;
  readonly keys: readonly string[];
  readonly checks: readonly Check<unknown>[];
  readonly names: readonly string[];
  readonly known: ReadonlySet<string>;
  readonly expected: string;
  /** Every check accepts `undefined`, so absent options need no check. */
  readonly allOptional: boolean;
}

function compile(fn: string, schema: OptionsSchema): CompiledSchema {
  const keys = Object.keys(schema);
  const checks = keys.map((key) => schema[key]!);
  const names = keys.map((key) => `options.${key}`);
  let allOptional = true;
  for (let i = 0; i < keys.length; i++) {
    try {
      if (checks[i]!(undefined, fn, names[i]!) !== undefined) allOptional = false;
    } catch {
      allOptional = false;
    }
  }
  const expected = keys.length === 0 ? 'omitted (it takes no options)' : `an options object { ${keys.join(', ')} }`;
  return { fn, keys, checks, names, known: new Set(keys), expected, allOptional };
}

/** Checks that `options` is a plain object (or, when every option is optional, undefined) with known keys only. */
function checkShape(compiled: CompiledSchema, options: unknown): Record<string, unknown> {
  if (options === undefined) return {};
  if (!isPlainObject(options)) throw invalidArgument(compiled.fn, 'options', options, compiled.expected);
  for (const key in options) {
    if (!compiled.known.has(key)) {
      const known = compiled.keys;
      const which = known.length === 0 ? 'it takes no options' : `the known options are ${known.join(', ')}`;
      throw new InvalidArgumentError(
        `${compiled.fn}: unknown option ${JSON.stringify(key)} (got ` +
          `${describeValue(options[key])}); ${which}; check the spelling`,
        { argument: `options.${key}` },
      );
    }
  }
  return options;
}

/**
 * @internal
 * The options of a promise-returning call that takes only `{ signal? }` (drains, flushes, idles):
 * `const parseDrain = defineSignalOnly('Thing.drain')`, then `return parseDrain(options, (signal)
 * => ...)`. Bad options reject the returned promise (rule 3) instead of throwing.
 */
export function defineSignalOnly(
  fn: string,
): <T>(options: unknown, body: (signal: AbortSignal | undefined) => Promise<T>) => Promise<T> {
  const parse = defineOptions(fn, { signal: optionalSignal });
  return (options, body) => {
    let signal: AbortSignal | undefined;
    try {
      signal = parse(options).signal;
    } catch (err) {
      return Promise.reject(err);
    }
    return body(signal);
  };
}
