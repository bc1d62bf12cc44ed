import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  LIMITS,
  UsageError,
  parseClients,
  parseCompare,
  parseDuration,
  parseSeed,
  parseSize,
} from '../../src/cli/args.js';

const SEED = Number(process.env['TEST_SEED'] ?? 0x5eed_0012);
const MiB = 1024 * 1024;
const knobs = new Map([
  ['deferred-free', ['on', 'off']],
  ['sched-policy', ['fair', 'fifo', 'rr']],
]);

/** Asserts `fn` throws a UsageError whose message matches every pattern. */
function usage(fn: () => unknown, ...patterns: RegExp[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof UsageError, `expected a UsageError, got ${String(err)}`);
    for (const p of patterns) assert.match(err.message, p);
    return true;
  });
}

describe('parseSize', () => {
  it('sanity: 64M is 64 MiB', () => {
    assert.equal(parseSize('--budget', '64M'), 64 * MiB);
  });

  it('reads units in any case, with or without iB, and plain bytes', () => {
    assert.equal(parseSize('--budget', '64mib'), 64 * MiB);
    assert.equal(parseSize('--budget', '1.5G'), 1.5 * 1024 * MiB);
    assert.equal(parseSize('--budget', '8192K'), 8 * MiB);
    assert.equal(parseSize('--budget', String(16 * MiB)), 16 * MiB);
  });

  it('rounds down to whole 4 KiB pages', () => {
    assert.equal(parseSize('--budget', `${16 * MiB + 4095}`), 16 * MiB);
  });

  it('names the option, quotes the value and shows the expected form for garbage', () => {
    usage(() => parseSize('--budget', '64Q'), /--budget/, /"64Q"/, /for example 64M/);
    usage(() => parseSize('--budget', ''), /--budget/);
    usage(() => parseSize('--budget', '-5M'), /"-5M"/);
  });

  it('states the range when the size is out of it', () => {
    usage(() => parseSize('--budget', '1K'), /out of range/, /4M to 4G/);
    usage(() => parseSize('--budget', '5G'), /out of range/);
  });

  it('accepts every in-range page multiple written in K (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: LIMITS.budget.min / 4096, max: LIMITS.budget.max / 4096 }), (pages) => {
        assert.equal(parseSize('--budget', `${pages * 4}K`), pages * 4096);
      }),
      { seed: SEED, numRuns: 200 },
    );
  });
});

describe('parseDuration', () => {
  it('sanity: 10s is 10,000 ms', () => {
    assert.equal(parseDuration('--duration', '10s'), 10_000);
  });

  it('reads ms, s, m and bare seconds', () => {
    assert.equal(parseDuration('--duration', '500ms'), 500);
    assert.equal(parseDuration('--duration', '1.5m'), 90_000);
    assert.equal(parseDuration('--duration', '2'), 2000);
  });

  it('rejects garbage and out-of-range values with the expected form', () => {
    usage(() => parseDuration('--duration', '10 parsecs'), /--duration/, /"10 parsecs"/, /for example 10s/);
    usage(() => parseDuration('--duration', '5ms'), /out of range/, /100ms/);
    usage(() => parseDuration('--duration', '2h'), /"2h"/);
  });
});

describe('parseSeed and parseClients', () => {
  it('sanity: whole numbers in range pass', () => {
    assert.equal(parseSeed('0'), 0);
    assert.equal(parseSeed('4294967295'), 0xffff_ffff);
    assert.equal(parseClients('4'), 4);
  });

  it('reject fractions, signs, words and values out of range, naming the option', () => {
    usage(() => parseSeed('1.5'), /--seed/, /0 to 4294967295/);
    usage(() => parseSeed('4294967296'), /--seed/);
    usage(() => parseClients('0'), /--clients/, /1 to 64/);
    usage(() => parseClients('-3'), /--clients/);
    usage(() => parseClients('many'), /"many"/);
  });
});

describe('parseCompare', () => {
  it('sanity: knob=a,b splits into the knob and its values', () => {
    assert.deepEqual(parseCompare('deferred-free=on,off', knobs), { knob: 'deferred-free', values: ['on', 'off'] });
  });

  it('keeps the order given and accepts three values', () => {
    assert.deepEqual(parseCompare('sched-policy=rr, fifo ,fair', knobs).values, ['rr', 'fifo', 'fair']);
  });

  it('lists the valid knobs for an unknown knob or a malformed spec', () => {
    usage(
      () => parseCompare('gc=a,b', knobs),
      /unknown knob "gc"/,
      /deferred-free=on,off/,
      /sched-policy=fair,fifo,rr/,
    );
    usage(() => parseCompare('deferred-free', knobs), /expected knob=value,value/, /deferred-free=on,off/);
  });

  it('lists the valid values for an unknown value', () => {
    usage(() => parseCompare('sched-policy=fair,lottery', knobs), /unknown value "lottery"/, /fair, fifo, rr/);
  });

  it('wants at least two distinct values', () => {
    usage(() => parseCompare('deferred-free=on', knobs), /at least two values/);
    usage(() => parseCompare('deferred-free=on,on', knobs), /repeated/);
  });
});
