/**
 * Run queues and the three entity-selection policies: the order they pick entities in, strict
 * priority under FIFO and RR, weighted shares under FAIR, and the heap against a sorted model.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { VirtualClock } from '../../src/base/clock.js';
import { DrmSchedEntity } from '../../src/sched/sched-entity.js';
import {
  DrmSchedPriority,
  DrmSchedRq,
  DrmSchedRqNode,
  fifoPolicy,
  schedPriorityName,
} from '../../src/sched/sched-rq.js';
import { seededRandom, testSeed } from '../helpers/mock-fence.js';
import { TestRing, pushJob, withVirtualClock } from '../helpers/sched-ring.js';

/** Runs every queued job one at a time (credit limit 1), each taking `ms` of virtual time: the run order by entity. */
function runAll(ring: TestRing, clock: VirtualClock, ms = 1): string[] {
  const order: string[] = [];
  ring.drain();
  for (;;) {
    const running = ring.sched.pendingJobs[0];
    if (running === undefined) break;
    order.push(running.entity.name);
    clock.advance(ms);
    ring.complete(running);
  }
  return order;
}

let clock: VirtualClock;
withVirtualClock((c) => {
  clock = c;
});

describe('DrmSchedRq policies', () => {
  it('sanity: each policy runs every job exactly once', () => {
    for (const policy of ['fair', 'fifo', 'rr'] as const) {
      const ring = new TestRing({ policy, creditLimit: 1, clock });
      const entities = ['a', 'b', 'c'].map((name) => new DrmSchedEntity({ schedulers: [ring.sched], name }));
      for (let i = 0; i < 4; i++) for (const e of entities) pushJob(e);
      const order = runAll(ring, clock);
      assert.equal(order.length, 12, policy);
      for (const e of entities) assert.equal(order.filter((n) => n === e.name).length, 4, `${policy} ${e.name}`);
      for (const e of entities) e.fini();
      ring.sched.fini();
    }
  });

  it('FIFO: the entity whose head job was submitted first goes next', () => {
    const ring = new TestRing({ policy: 'fifo', creditLimit: 1, clock });
    const a = new DrmSchedEntity({ schedulers: [ring.sched], name: 'a' });
    const b = new DrmSchedEntity({ schedulers: [ring.sched], name: 'b' });
    pushJob(a);
    pushJob(a);
    pushJob(b);
    pushJob(a);
    assert.deepEqual(runAll(ring, clock), ['a', 'a', 'b', 'a']);
    a.fini();
    b.fini();
    ring.sched.fini();
  });

  it('RR: entities take turns in the order they joined, resuming after the last one picked', () => {
    const ring = new TestRing({ policy: 'rr', creditLimit: 1, clock });
    const [a, b, c] = ['a', 'b', 'c'].map((name) => new DrmSchedEntity({ schedulers: [ring.sched], name }));
    for (let i = 0; i < 3; i++) pushJob(a!);
    for (let i = 0; i < 2; i++) pushJob(b!);
    pushJob(c!);
    assert.deepEqual(runAll(ring, clock), ['a', 'b', 'c', 'a', 'b', 'a']);
    for (const e of [a!, b!, c!]) e.fini();
    ring.sched.fini();
  });

  for (const policy of ['fifo', 'rr'] as const) {
    it(`${policy.toUpperCase()}: strict priority — a higher run queue with work always wins`, () => {
      const ring = new TestRing({ policy, creditLimit: 1, clock });
      const low = new DrmSchedEntity({ schedulers: [ring.sched], name: 'low', priority: 'low' });
      const kernel = new DrmSchedEntity({ schedulers: [ring.sched], name: 'kernel', priority: 'kernel' });
      for (let i = 0; i < 3; i++) pushJob(low);
      for (let i = 0; i < 3; i++) pushJob(kernel);
      assert.deepEqual(runAll(ring, clock), ['kernel', 'kernel', 'kernel', 'low', 'low', 'low']);
      low.fini();
      kernel.fini();
      ring.sched.fini();
    });
  }

  it('FAIR: equal priorities share the ring evenly; GPU time is weighted by priority', () => {
    const ring = new TestRing({ policy: 'fair', creditLimit: 1, clock });
    const n1 = new DrmSchedEntity({ schedulers: [ring.sched], name: 'n1' });
    const n2 = new DrmSchedEntity({ schedulers: [ring.sched], name: 'n2' });
    const low = new DrmSchedEntity({ schedulers: [ring.sched], name: 'low', priority: 'low' });
    for (let i = 0; i < 90; i++) {
      pushJob(n1);
      pushJob(n2);
      pushJob(low);
    }
    const order = runAll(ring, clock).slice(0, 170); // while all three still have work
    const count = (name: string): number => order.filter((n) => n === name).length;
    assert.ok(Math.abs(count('n1') - count('n2')) <= 2, `n1 ${count('n1')} vs n2 ${count('n2')}`);
    // Weights 2^-4 : 2^-4 : 2^-7, so low gets 1/17 of the ring.
    const lowShare = count('low') / order.length;
    assert.ok(lowShare > 0.02 && lowShare < 0.1, `low share ${lowShare.toFixed(3)}, expected about 0.059`);
    for (const e of [n1, n2, low]) e.fini();
    ring.sched.fini();
  });

  it('FAIR: a returning idle entity is placed near the front and does not starve or monopolise', () => {
    const ring = new TestRing({ policy: 'fair', creditLimit: 1, clock });
    const busy = new DrmSchedEntity({ schedulers: [ring.sched], name: 'busy' });
    const bursty = new DrmSchedEntity({ schedulers: [ring.sched], name: 'bursty' });
    for (let i = 0; i < 50; i++) pushJob(busy);
    const first = runAll(ring, clock).length;
    assert.equal(first, 50);
    for (let i = 0; i < 5; i++) pushJob(busy);
    for (let i = 0; i < 5; i++) pushJob(bursty);
    const order = runAll(ring, clock);
    // bursty comes back with no history: it runs within the first two picks and then alternates.
    assert.ok(order.slice(0, 2).includes('bursty'), order.join(' '));
    assert.ok(order.slice(0, 6).filter((n) => n === 'bursty').length >= 2, order.join(' '));
    busy.fini();
    bursty.fini();
    ring.sched.fini();
  });

  it('the run-queue heap agrees with a sorted model under random add, block, unblock, pop and remove', () => {
    const seed = testSeed();
    const random = seededRandom(seed);
    const rq = new DrmSchedRq(fifoPolicy, { avgJobTime: 0 });
    const nodes = Array.from({ length: 40 }, (_, i) => new DrmSchedRqNode(i, DrmSchedPriority.Normal));
    let seq = 0;
    for (let step = 0; step < 3000; step++) {
      const node = nodes[Math.floor(random() * nodes.length)]!;
      const r = random();
      if (r < 0.3) rq.add(node, Math.floor(random() * 50), ++seq);
      else if (r < 0.45) rq.block(node);
      else if (r < 0.6) rq.unblock(node);
      else if (r < 0.8 && node.runnable) {
        const more = random() < 0.6;
        rq.popped(node, more, Math.floor(random() * 50), ++seq);
      } else if (r >= 0.8) rq.remove(node);
      const runnable = nodes.filter((n) => n.runnable).sort((x, y) => x.key1 - y.key1 || x.key2 - y.key2);
      assert.equal(rq.peek(), runnable[0] ?? null, `seed ${seed} step ${step} (TEST_SEED=${seed} replays)`);
      assert.equal(rq.queued, nodes.filter((n) => n.queued).length, `seed ${seed} step ${step}`);
    }
  });

  it('priority names', () => {
    assert.deepEqual(
      [0, 1, 2, 3].map((p) => schedPriorityName(p as DrmSchedPriority)),
      ['kernel', 'high', 'normal', 'low'],
    );
  });
});
