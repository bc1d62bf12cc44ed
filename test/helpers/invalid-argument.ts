// Trust-boundary tests: what a careless caller passes, and the check that a call refused it.
import assert from 'node:assert/strict';
import { InvalidArgumentError } from '../../src/base/errors.js';

/** What a careless caller passes as `signal`: the controller, not its signal. */
export const notASignal = new AbortController() as unknown as AbortSignal;

/** Calls `fn`, which must fail (throw or reject) with an InvalidArgumentError naming `argument`. */
export async function invalid(fn: () => unknown, argument: string): Promise<void> {
  let error: unknown;
  try {
    await fn();
  } catch (err) {
    error = err;
  }
  assert.ok(error instanceof InvalidArgumentError, `expected an InvalidArgumentError, got ${String(error)}`);
  assert.equal(error.argument, argument);
}
