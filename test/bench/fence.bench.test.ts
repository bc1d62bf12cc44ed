/**
 * The ceiling sides of the fence benchmarks (bench/fence-signal.bench.ts, bench/fence-wait.bench.ts):
 * they do only the clock read a timestamp needs (and the callback, or the bare promise), and they
 * refuse to count a clock that did not move from zero.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { VirtualClock, useClock } from '../../src/base/clock.js';
import { clockOnlySide } from '../../bench/fence-signal.bench.js';
import { clockedPromiseSide } from '../../bench/fence-wait.bench.js';

describe('fence benchmark ceilings', () => {
  it('sanity: both ceiling sides run a batch on the real clock', async () => {
    await clockOnlySide().run(1000);
    await clockedPromiseSide().run(1000);
  });

  it('a side made on a clock stuck at zero reports it instead of timing nothing', async () => {
    using _clock = useClock(new VirtualClock(0));
    await assert.rejects(async () => clockOnlySide().run(10), /the clock read 0/);
    await assert.rejects(async () => clockedPromiseSide().run(10), /the clock read 0/);
  });
});
