import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Side } from '../../bench/harness.js';
import {
  pQueueChainSide,
  pQueueNoopSide,
  schedChainSide,
  schedNoopSide,
  schedScaleSide,
} from '../../bench/sched.bench.js';
import { simulateTwoClients, TWO_CLIENT_CASES, withinFairShare } from '../../bench/sched-fairness.bench.js';

async function runOnce(side: Side, batch: number): Promise<void> {
  await side.setup?.(batch);
  await side.run(batch);
}

describe('sched bench sides', () => {
  it('sanity: every side runs a small batch and checks that every job ran and was freed', async () => {
    for (const side of [schedNoopSide(), pQueueNoopSide(), schedChainSide(), pQueueChainSide()]) {
      await assert.doesNotReject(runOnce(side, 500), side.label);
      await assert.doesNotReject(runOnce(side, 500), `${side.label}, second round`);
    }
    await assert.doesNotReject(runOnce(schedScaleSide('many', 'fair', 100, 1000), 2000));
    await assert.doesNotReject(runOnce(schedScaleSide('few', 'rr', 10, 100), 2000));
  });
});

describe('sched-fairness simulation (virtual time: exact)', () => {
  const [normalNormal, normalLow, , highLow] = TWO_CLIENT_CASES;

  it('FAIR shares the ring evenly between equal priorities, within 10%', async () => {
    const result = await simulateTwoClients('fair', 1, normalNormal!);
    assert.equal(withinFairShare(result), true, JSON.stringify(result.clients));
  });

  it('FAIR gives a low-priority hog about its weighted share; FIFO and RR starve it behind normal work', async () => {
    const fair = await simulateTwoClients('fair', 1, normalLow!);
    assert.equal(withinFairShare(fair), true, JSON.stringify(fair.clients));
    for (const policy of ['fifo', 'rr'] as const) {
      const strict = await simulateTwoClients(policy, 1, normalLow!);
      assert.ok(strict.clients[1]!.share < 0.01, `${policy}: low got ${strict.clients[1]!.share}`);
    }
  });

  it('FAIR high vs low: the low client is not starved (its share is one job from the intended 3%)', async () => {
    const result = await simulateTwoClients('fair', 2, highLow!);
    const low = result.clients[1]!;
    assert.ok(low.share > 0.02 && low.share < 0.05, `low share ${low.share}`);
  });
});
