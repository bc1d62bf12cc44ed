/**
 * Executable specification of src/base/errors.ts: the error classes with their errno codes, and
 * the argument checkers every module uses.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  BugError,
  DmaBufError,
  ERRNO,
  FenceTimeoutError,
  InvalidArgumentError,
  NotSubmittedError,
  describeValue,
  reportCallbackError,
  type ErrnoCode,
} from '../../src/base/errors.js';

describe('errors', () => {
  it('sanity: a DmaBufError carries its code, errno, message and cause', () => {
    const cause = new Error('underlying');
    const err = new DmaBufError('EIO', 'fence 1:1 failed', { cause });
    assert.ok(err instanceof Error);
    assert.equal(err.name, 'DmaBufError');
    assert.equal(err.code, 'EIO');
    assert.equal(err.errno, -5);
    assert.equal(err.message, 'fence 1:1 failed');
    assert.equal(err.cause, cause);
  });

  it('errno is the negative kernel number of every code', () => {
    const expected: Record<ErrnoCode, number> = {
      EPERM: 1,
      ENOENT: 2,
      ESRCH: 3,
      EINTR: 4,
      EIO: 5,
      EBADF: 9,
      ENOMEM: 12,
      EBUSY: 16,
      ENODEV: 19,
      EINVAL: 22,
      ENOSPC: 28,
      EDEADLK: 35,
      ENODATA: 61,
      ETIME: 62,
      EOPNOTSUPP: 95,
      ETIMEDOUT: 110,
      EALREADY: 114,
      ECANCELED: 125,
    };
    assert.deepEqual({ ...ERRNO }, expected);
    for (const code of Object.keys(expected) as ErrnoCode[]) {
      assert.equal(new DmaBufError(code, code).errno, -expected[code], code);
    }
  });

  it('the ERRNO table is frozen', () => {
    assert.ok(Object.isFrozen(ERRNO));
    assert.throws(() => {
      (ERRNO as Record<string, number>)['EIO'] = 0;
    }, TypeError);
    assert.equal(ERRNO.EIO, 5);
  });

  const subclasses = [
    { Ctor: BugError, name: 'BugError', code: 'EINVAL', errno: -22 },
    { Ctor: InvalidArgumentError, name: 'InvalidArgumentError', code: 'EINVAL', errno: -22 },
    { Ctor: FenceTimeoutError, name: 'FenceTimeoutError', code: 'ETIME', errno: -62 },
    { Ctor: NotSubmittedError, name: 'NotSubmittedError', code: 'EINVAL', errno: -22 },
  ] as const;

  for (const { Ctor, name, code, errno } of subclasses) {
    it(`${name} has code ${code}, errno ${errno}, and is a DmaBufError`, () => {
      const err = new Ctor('message', { cause: 'why' });
      assert.ok(err instanceof Ctor);
      assert.ok(err instanceof DmaBufError);
      assert.ok(err instanceof Error);
      assert.equal(err.name, name);
      assert.equal(err.code, code);
      assert.equal(err.errno, errno);
      assert.equal(err.message, 'message');
      assert.equal(err.cause, 'why');
      assert.match(String(err), new RegExp(`^${name}: message$`));
    });
  }

  it('the subclasses are distinct: a BugError is not an InvalidArgumentError and vice versa', () => {
    assert.ok(!(new BugError('x') instanceof InvalidArgumentError));
    assert.ok(!(new InvalidArgumentError('x') instanceof BugError));
    assert.ok(!(new NotSubmittedError('x') instanceof InvalidArgumentError));
    assert.ok(!(new FenceTimeoutError('x') instanceof BugError));
  });

  it('describeValue renders the type and a short form of a value', () => {
    assert.equal(describeValue('abc'), '"abc"');
    assert.equal(describeValue(12n), '12n');
    assert.equal(
      describeValue(function named() {}),
      'function named',
    );
    assert.equal(
      describeValue(() => {}),
      'function (anonymous)',
    );
    assert.equal(describeValue(-1), '-1 (number)');
    assert.equal(describeValue(NaN), 'NaN (number)');
    assert.equal(describeValue(undefined), 'undefined (undefined)');
    assert.equal(describeValue(null), 'null (object)');
    assert.equal(describeValue(true), 'true (boolean)');
    assert.equal(describeValue([1]), 'an array of 1');
    assert.equal(describeValue(new AbortController()), 'an AbortController');
    assert.equal(describeValue(new Map()), 'a Map');
    assert.equal(describeValue(Object.create(null)), 'an object');
  });
});

describe('reportCallbackError', () => {
  it('re-raises the same error on a microtask, not synchronously', () => {
    const queued: (() => void)[] = [];
    const original = globalThis.queueMicrotask;
    globalThis.queueMicrotask = (fn: () => void): void => {
      queued.push(fn);
    };
    const boom = new Error('boom');
    try {
      reportCallbackError(boom);
    } finally {
      globalThis.queueMicrotask = original;
    }
    assert.equal(queued.length, 1);
    assert.throws(
      () => queued[0]!(),
      (err: unknown) => err === boom,
    );
  });
});
