/**
 * Executable specification of src/base/options.ts: the checks every public entry point runs on
 * its arguments and options, and the options parser with its unknown-name refusal.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { runInNewContext } from 'node:vm';
import { InvalidArgumentError } from '../../src/base/errors.js';
import {
  defineOptions,
  defineOptionsCheck,
  instanceOf,
  isAbortSignal,
  isPlainObject,
  oneOf,
  optional,
  optionalBoolean,
  optionalFinite,
  optionalIndex,
  optionalSignal,
  optionalTimeout,
  requiredFinite,
  requiredFunction,
  requiredIndex,
  requiredName,
  requiredPositiveInteger,
} from '../../src/base/options.js';

/** The InvalidArgumentError `fn` throws; fails the test otherwise. */
function invalid(fn: () => unknown): InvalidArgumentError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof InvalidArgumentError, `expected an InvalidArgumentError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected an InvalidArgumentError, nothing was thrown');
}

describe('options: single checks', () => {
  it('sanity: a good value comes back as it is', () => {
    assert.equal(requiredIndex(7, 'f', 'n'), 7);
    assert.equal(optionalTimeout(5, 'f', 'options.timeout'), 5);
    assert.equal(optionalBoolean(true, 'f', 'options.flag'), true);
  });

  it('a failure names the function, the argument, what arrived and what was expected', () => {
    const error = invalid(() => requiredIndex(-1, 'DmaFence', 'seqno'));
    assert.equal(error.message, 'DmaFence: seqno must be an integer from 0 to 2^53-1, got -1 (number)');
    assert.equal(error.argument, 'seqno');
    assert.equal(error.code, 'EINVAL');
  });

  it('indices: NaN, ±Infinity, fractions, negatives, unsafe integers and non-numbers are refused', () => {
    for (const bad of [NaN, Infinity, -Infinity, 1.5, -1, 2 ** 53, '1', null, undefined, 1n, {}]) {
      invalid(() => requiredIndex(bad, 'f', 'n'));
    }
    assert.equal(requiredIndex(0, 'f', 'n'), 0);
    assert.equal(requiredIndex(Number.MAX_SAFE_INTEGER, 'f', 'n'), Number.MAX_SAFE_INTEGER);
    assert.equal(optionalIndex(undefined, 'f', 'n'), undefined);
    invalid(() => requiredPositiveInteger(0, 'f', 'n'));
  });

  it('timeouts: >= 0 and finite, or Infinity/undefined for no limit (returned as undefined)', () => {
    assert.equal(optionalTimeout(0, 'f', 't'), 0);
    assert.equal(optionalTimeout(1e308, 'f', 't'), 1e308);
    assert.equal(optionalTimeout(Infinity, 'f', 't'), undefined);
    assert.equal(optionalTimeout(undefined, 'f', 't'), undefined);
    for (const bad of [-1, -Infinity, NaN, '10', null, true]) invalid(() => optionalTimeout(bad, 'f', 't'));
  });

  it('finite numbers refuse NaN and ±Infinity', () => {
    for (const bad of [NaN, Infinity, -Infinity, '0']) invalid(() => requiredFinite(bad, 'f', 'x'));
    assert.equal(requiredFinite(-5.5, 'f', 'x'), -5.5);
    assert.equal(optionalFinite(undefined, 'f', 'x'), undefined);
  });

  it('names, functions, oneOf, instanceOf and optional()', () => {
    invalid(() => requiredName('', 'f', 'name'));
    invalid(() => requiredFunction('fn', 'f', 'cb'));
    const policy = oneOf(['walk', 'queue'] as const);
    assert.equal(policy('walk', 'f', 'gc'), 'walk');
    assert.match(invalid(() => policy('never', 'f', 'gc')).message, /one of "walk", "queue"/);
    const mapCheck = instanceOf(Map);
    invalid(() => mapCheck({}, 'f', 'm'));
    assert.equal(optional(mapCheck)(undefined, 'f', 'm'), undefined);
  });
});

describe('options: AbortSignal brand check', () => {
  it('sanity: a real signal passes, aborted or not', () => {
    assert.equal(isAbortSignal(new AbortController().signal), true);
    assert.equal(isAbortSignal(AbortSignal.abort()), true);
    assert.equal(isAbortSignal(AbortSignal.timeout(1000)), true);
  });

  it('the controller, look-alikes and objects inheriting the prototype are refused', () => {
    const lookAlike = { aborted: false, reason: undefined, addEventListener() {}, removeEventListener() {} };
    for (const bad of [new AbortController(), lookAlike, Object.create(AbortSignal.prototype), {}, null, 'signal']) {
      assert.equal(isAbortSignal(bad), false, String(bad));
    }
  });

  it('passing the controller says what to pass instead', () => {
    const error = invalid(() => optionalSignal(new AbortController(), 'DmaFence.wait', 'options.signal'));
    assert.match(error.message, /pass controller\.signal, not the AbortController itself/);
  });
});

describe('options: parsers', () => {
  const parse = defineOptions('Thing.wait', { timeout: optionalTimeout, signal: optionalSignal });

  it('sanity: returns every option of the table, absent ones undefined', () => {
    const signal = new AbortController().signal;
    assert.deepEqual(parse({ timeout: 5, signal }), { timeout: 5, signal });
    assert.deepEqual(parse({}), { timeout: undefined, signal: undefined });
  });

  it('undefined options give a shared frozen record: nothing is allocated', () => {
    const a = parse(undefined);
    assert.equal(parse(undefined), a);
    assert.equal(Object.isFrozen(a), true);
  });

  it('unknown option names are refused with the known ones listed', () => {
    const error = invalid(() => parse({ timout: 5 }));
    assert.match(error.message, /^Thing\.wait: unknown option "timout" .*the known options are timeout, signal/);
    assert.equal(error.argument, 'options.timout');
  });

  it('options that are not plain objects are refused: null, primitives, arrays, class instances', () => {
    for (const bad of [null, 5, 'x', true, [], new AbortController(), new Map(), () => {}]) {
      assert.equal(invalid(() => parse(bad)).argument, 'options', String(bad));
    }
  });

  it('plain objects from Object.create(null) and from another realm are accepted', () => {
    const bare = Object.create(null) as Record<string, unknown>;
    bare['timeout'] = 1;
    assert.equal(parse(bare).timeout, 1);
    const foreign: unknown = runInNewContext('({ timeout: 2 })');
    assert.equal(isPlainObject(foreign), true);
    assert.equal(parse(foreign).timeout, 2);
  });

  it('each option is read once, so a getter cannot pass the check and then change', () => {
    let reads = 0;
    const tricky = {
      get timeout(): unknown {
        reads++;
        return reads === 1 ? 5 : -1;
      },
    };
    assert.equal(parse(tricky).timeout, 5);
    assert.equal(reads, 1);
  });

  it('a required option makes undefined options an error too', () => {
    const parseAccess = defineOptions('Buf.begin', {
      write: (v, fn, name) => (typeof v === 'boolean' ? v : invalidValue(fn, name)),
    });
    invalid(() => parseAccess(undefined));
    assert.deepEqual(parseAccess({ write: true }), { write: true });
  });

  it('defineOptionsCheck checks the same way without building a record', () => {
    const check = defineOptionsCheck('Fence.init', { seqno64: optionalBoolean });
    assert.equal(check({ seqno64: true }), undefined);
    invalid(() => check({ seqno64: 'yes' }));
    invalid(() => check({ bogus: 1 }));
  });
});

function invalidValue(fn: string, name: string): never {
  throw new InvalidArgumentError(`${fn}: ${name} is bad`, { argument: name });
}
