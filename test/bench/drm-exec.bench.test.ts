import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  OBJECTS,
  PER_TX,
  SEED,
  TASKS,
  TX_PER_TASK,
  drmExecSide,
  drmExecWatchedRun,
  MinimalMutex,
  findWaitCycle,
  makePlans,
  pickDistinct,
  sortedMinimalSide,
  sortedMutexSide,
  turnWatchdog,
  unsortedMutexRun,
  type Plan,
} from '../../bench/drm-exec.bench.js';
import { seededRandom, testSeed } from '../helpers/mock-fence.js';

/** Two tasks that take the same two objects in opposite orders: the textbook deadlock. */
const CROSSED: Plan[] = [[[0, 1]], [[1, 0]]];

describe('drm-exec bench helpers', () => {
  it('sanity: pickDistinct(16, 4) gives 4 distinct indices below 16', () => {
    const seed = testSeed();
    const picked = pickDistinct(16, 4, seededRandom(seed));
    assert.equal(picked.length, 4, `seed ${seed}`);
    assert.equal(new Set(picked).size, 4, `duplicates in ${picked} (seed ${seed})`);
    for (const i of picked) assert.ok(Number.isInteger(i) && i >= 0 && i < 16, `${i} out of range (seed ${seed})`);
  });

  it('pickDistinct replays for a seed, returns a permutation for k = n, and refuses k > n', () => {
    const seed = testSeed();
    assert.deepEqual(pickDistinct(16, 4, seededRandom(seed)), pickDistinct(16, 4, seededRandom(seed)), `seed ${seed}`);
    assert.deepEqual(
      [...pickDistinct(8, 8, seededRandom(seed))].sort((a, b) => a - b),
      [0, 1, 2, 3, 4, 5, 6, 7],
      `seed ${seed}`,
    );
    assert.throws(() => pickDistinct(3, 4, seededRandom(seed)), RangeError);
  });

  it(
    'makePlans gives every task TX_PER_TASK transactions ' + 'of PER_TX distinct objects, the same for the same seed',
    () => {
      const plans = makePlans(SEED);
      assert.equal(plans.length, TASKS);
      for (const plan of plans) {
        assert.equal(plan.length, TX_PER_TASK);
        for (const tx of plan) {
          assert.equal(new Set(tx).size, PER_TX);
          assert.ok(tx.every((i) => i >= 0 && i < OBJECTS));
        }
      }
      assert.deepEqual(makePlans(SEED), plans);
      assert.notDeepEqual(makePlans(SEED + 1), plans);
    },
  );

  it('findWaitCycle finds nothing when nobody waits, or when waits end at a free object', () => {
    assert.equal(findWaitCycle([0, 1, -1], [-1, -1]), null);
    // task 0 waits for object 1 (held by task 1), which waits for object 2 (free).
    assert.equal(findWaitCycle([0, 1, -1], [1, 2]), null);
  });

  it('findWaitCycle returns the tasks of a cycle in wait order, without the tasks merely queued behind it', () => {
    // task 0 holds 0 and waits for 1; task 1 holds 1 and waits for 0.
    assert.deepEqual(findWaitCycle([0, 1], [1, 0]), [0, 1]);
    // task 0 waits on the cycle 1 -> 2 -> 3 -> 1 without being part of it.
    const holder = [-1, 1, 2, 3];
    const waitingOn = [1, 2, 3, 1];
    assert.deepEqual(findWaitCycle(holder, waitingOn), [1, 2, 3]);
  });

  it(
    'unsortedMutexRun: async-mutex in crossed order deadlocks; ' + 'the watchdog finds the cycle and unwinds the tasks',
    async () => {
      const run = await unsortedMutexRun(CROSSED, turnWatchdog(20));
      assert.equal(run.completed, 0);
      assert.equal(run.stalled, 2, 'both transactions were waiting');
      assert.deepEqual([...(run.cycle ?? [])].sort(), [0, 1]);
    },
  );

  it('drmExecWatchedRun: DrmExec completes the same crossed workload, backing off at least once', async () => {
    const run = await drmExecWatchedRun(CROSSED, turnWatchdog(20));
    assert.equal(run.completed, 2);
    assert.equal(run.stalled, 0);
    assert.ok(run.backoffs >= 1, `${run.backoffs} back-offs: one of the two must have lost`);
  });

  it('MinimalMutex: free locks at once, hands off to waiters in FIFO order, frees after the last', async () => {
    const m = new MinimalMutex();
    const order: number[] = [];
    await m.lock();
    assert.equal(m.isLocked, true);
    const waits = [1, 2, 3].map((n) => m.lock().then(() => order.push(n)));
    m.unlock();
    await waits[0];
    assert.deepEqual(order, [1]);
    assert.equal(m.isLocked, true, 'handed over, never freed');
    m.unlock();
    m.unlock();
    await Promise.all(waits);
    assert.deepEqual(order, [1, 2, 3]);
    m.unlock();
    assert.equal(m.isLocked, false);
  });

  it('the timed sides run a small random plan to the end and check their objects', async () => {
    const seed = testSeed();
    const plans = makePlans(seed, 4, 3);
    const backoffs: number[] = [];
    await drmExecSide(plans, {}, backoffs).run(12);
    await drmExecSide(plans, { sorted: true }, backoffs).run(12);
    await sortedMutexSide(plans).run(12);
    await sortedMinimalSide(plans).run(12);
    assert.equal(backoffs.length, 2, `one back-off rate per DrmExec round (seed ${seed})`);
    assert.ok(
      backoffs.every((b) => b >= 0 && Number.isFinite(b)),
      `back-offs ${backoffs} (seed ${seed})`,
    );
    await assert.rejects(async () => {
      await drmExecSide(plans, {}, backoffs).run(13);
    }, /batch 13/);
  });
});
