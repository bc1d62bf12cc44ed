import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import fc from 'fast-check';
import { DmaFence } from '../../src/fence/dma-fence.js';
import { DmaFenceChain, type ChainGcPolicy, type ChainLookup } from '../../src/fence/dma-fence-chain.js';
import { BugError, InvalidArgumentError } from '../../src/base/errors.js';
import { mockFence, seededRandom, shuffle, testSeed } from '../helpers/mock-fence.js';

/** The kernel's CHAIN_SZ. */
const CHAIN_SZ = 4 << 10;

interface FenceChains {
  readonly fences: DmaFence[];
  readonly chains: DmaFenceChain[];
  readonly tail: DmaFenceChain;
}

/** `fence_chains_init`: one mock payload per point, every node with signaling enabled. */
function fenceChainsInit(count: number, seqnoFn: (i: number) => number, gc: ChainGcPolicy = 'walk'): FenceChains {
  const fences: DmaFence[] = [];
  const chains: DmaFenceChain[] = [];
  let tail: DmaFenceChain | null = null;
  for (let i = 0; i < count; i++) {
    const fence = mockFence(0, 0);
    tail = new DmaFenceChain(tail, fence, seqnoFn(i), { gc });
    fences.push(fence);
    chains.push(tail);
    tail.enableSwSignaling();
  }
  return { fences, chains, tail: tail! };
}

/** `fence_chains_fini`: signal everything. */
function fenceChainsFini(fc: FenceChains): void {
  for (const fence of fc.fences) fence.signal();
}

const seqnoInc = (i: number): number => i + 1;
const seqnoInc2 = (i: number): number => 2 * i + 2;

function foundFence(result: ChainLookup, message: string): DmaFence {
  assert.equal(result.kind, 'fence', message);
  return (result as { fence: DmaFence }).fence;
}

describe('st-dma-fence-chain', () => {
  it('test_sanitycheck', () => {
    const f = mockFence();
    const chain = new DmaFenceChain(null, f, 1);
    chain.enableSwSignaling();
    assert.equal(chain.isSignaled(), false);
    f.signal();
    assert.equal(chain.signaledFlag, true, 'the chain follows its only payload');
  });

  it('test_find_seqno', () => {
    const fc = fenceChainsInit(64, seqnoInc);
    assert.equal(foundFence(DmaFenceChain.findSeqno(fc.tail, 0), 'seqno 0 is a no-op'), fc.tail);
    for (let i = 0; i < 64; i++) {
      const chain = fc.chains[i]!;
      assert.equal(foundFence(DmaFenceChain.findSeqno(fc.tail, i + 1), `find ${i + 1} from tail`), chain);
      assert.equal(foundFence(DmaFenceChain.findSeqno(chain, i + 1), `finding self ${i + 1}`), chain);
      assert.equal(DmaFenceChain.findSeqno(chain, i + 2).kind, 'not-submitted', `future fence ${i + 2} from ${i + 1}`);
      const earlier = foundFence(DmaFenceChain.findSeqno(chain, i), `find ${i} from ${i + 1}`);
      if (i > 0) assert.equal(earlier, fc.chains[i - 1]);
    }
    fenceChainsFini(fc);
  });

  it('test_find_signaled', () => {
    const fc = fenceChainsInit(2, seqnoInc);
    fc.fences[0]!.signal();
    const result = DmaFenceChain.findSeqno(fc.tail, 1);
    assert.ok(
      result.kind === 'signaled' || (result.kind === 'fence' && result.fence === fc.chains[0]),
      `unexpected lookup result ${result.kind}`,
    );
    assert.equal(result.kind, 'signaled', 'the walk collects point 1, as in the reference implementation');
    fenceChainsFini(fc);
  });

  it('test_find_out_of_order', () => {
    const fc = fenceChainsInit(3, seqnoInc);
    fc.fences[1]!.signal();
    // Waiting for point 2 means waiting for point 1, which is still pending; node 2 is collected.
    assert.equal(foundFence(DmaFenceChain.findSeqno(fc.tail, 2), 'find 2'), fc.chains[0]);
    fenceChainsFini(fc);
  });

  it('test_find_gap', () => {
    const fc = fenceChainsInit(64, seqnoInc2);
    for (let i = 0; i < 64; i++) {
      assert.equal(foundFence(DmaFenceChain.findSeqno(fc.tail, 2 * i + 1), `gap ${2 * i + 1}`), fc.chains[i]);
      assert.equal(foundFence(DmaFenceChain.findSeqno(fc.chains[i]!, 2 * i + 2), `self ${2 * i + 2}`), fc.chains[i]);
    }
    fenceChainsFini(fc);
  });

  it('test_find_race', async () => {
    const seed = testSeed();
    const random = seededRandom(seed);
    const fc = fenceChainsInit(CHAIN_SZ, seqnoInc);
    const tasks = 4;
    const iterations = 2000;
    const errors: string[] = [];
    const worker = async (id: number): Promise<void> => {
      for (let n = 0; n < iterations; n++) {
        const seqno = 1 + Math.floor(random() * CHAIN_SZ);
        const result = DmaFenceChain.findSeqno(fc.tail, seqno);
        if (result.kind === 'not-submitted') {
          errors.push(`task ${id}: failed to find ${seqno} (seed ${seed})`);
          return;
        }
        if (result.kind === 'fence' && result.fence.seqno === seqno) {
          const again = DmaFenceChain.findSeqno(result.fence, seqno);
          if (again.kind !== 'fence' || again.fence !== result.fence) {
            errors.push(`task ${id}: ${seqno} did not find itself (seed ${seed})`);
            return;
          }
        }
        fc.fences[Math.floor(random() * (CHAIN_SZ - 1))]!.signal();
        if (n % 16 === 0) await new Promise<void>((resolve) => setImmediate(resolve));
      }
    };
    await Promise.all(Array.from({ length: tasks }, (_, id) => worker(id)));
    assert.deepEqual(errors, []);
    fenceChainsFini(fc);
  });

  it('test_signal_forward', () => {
    const fc = fenceChainsInit(64, seqnoInc);
    for (let i = 0; i < 64; i++) {
      fc.fences[i]!.signal();
      assert.equal(fc.chains[i]!.isSignaled(), true, `chain[${i}] not signaled`);
      if (i + 1 < 64) assert.equal(fc.chains[i + 1]!.isSignaled(), false, `chain[${i + 1}] signaled early`);
    }
  });

  it('test_signal_backward', () => {
    const fc = fenceChainsInit(64, seqnoInc);
    for (let i = 63; i > 0; i--) {
      fc.fences[i]!.signal();
      assert.equal(fc.chains[i]!.isSignaled(), false, `chain[${i}] signaled before its predecessors`);
    }
    fc.fences[0]!.signal();
    for (let i = 0; i < 64; i++) assert.equal(fc.chains[i]!.isSignaled(), true, `chain[${i}] not signaled`);
  });

  for (const [name, order] of [
    ['test_wait_forward', 'forward'],
    ['test_wait_backward', 'backward'],
    ['test_wait_random', 'random'],
  ] as const) {
    it(name, async () => {
      const seed = testSeed();
      const fc = fenceChainsInit(CHAIN_SZ, seqnoInc);
      let resolved = false;
      const waiter = fc.tail.wait().then((ok) => {
        resolved = ok;
        return ok;
      });
      const fences = fc.fences.slice();
      if (order === 'backward') fences.reverse();
      if (order === 'random') shuffle(fences, seededRandom(seed));
      for (let i = 0; i < fences.length; i++) {
        fences[i]!.signal();
        if (i % 512 === 0) await Promise.resolve();
        assert.equal(
          resolved || fc.tail.signaledFlag,
          i === fences.length - 1,
          `tail signaled after ${i + 1} signals (seed ${seed})`,
        );
      }
      assert.equal(await waiter, true);
    });
  }
});

describe('DmaFenceChain', () => {
  it('continues the predecessor timeline only when moving forward', () => {
    const a = new DmaFenceChain(null, mockFence(), 5);
    assert.equal(a.prevSeqno, 0);
    assert.equal(a.isSeqno64, true);
    assert.ok(a.context > 0);
    const b = new DmaFenceChain(a, mockFence(), 6);
    assert.equal(b.context, a.context);
    assert.equal(b.prevSeqno, 5);
    assert.equal(b.seqno, 6);
    const backwards = new DmaFenceChain(b, mockFence(), 3);
    assert.notEqual(backwards.context, b.context, 'an older point starts a new context');
    assert.equal(backwards.seqno, 6, 'and is raised to the predecessor seqno');
    assert.equal(backwards.prevSeqno, 0);
    const same = new DmaFenceChain(b, mockFence(), 6);
    assert.notEqual(same.context, b.context, 'an equal seqno is not later');
    const plain = mockFence();
    const onPlain = new DmaFenceChain(plain, mockFence(), 1);
    assert.notEqual(onPlain.context, plain.context, 'a plain predecessor never lends its context');
    assert.equal(onPlain.prev, plain);
  });

  it('is a container with the kernel names', () => {
    const chain = new DmaFenceChain(null, mockFence(), 1);
    assert.equal(chain.isContainer, true);
    assert.equal(chain.driverName, 'dma_fence_chain');
    assert.equal(chain.timelineName, 'unbound');
    assert.equal(DmaFenceChain.toChain(chain), chain);
    assert.equal(DmaFenceChain.toChain(mockFence()), null);
    assert.equal(DmaFenceChain.toChain(null), null);
    assert.equal(DmaFenceChain.contained(chain), chain.fence);
    const plain = mockFence();
    assert.equal(DmaFenceChain.contained(plain), plain);
  });

  it('iterates the head always, then only pending predecessors, splicing signaled ones out', () => {
    const payloads = [mockFence(), mockFence(), mockFence(), mockFence()];
    let tail: DmaFenceChain | null = null;
    const chains: DmaFenceChain[] = [];
    for (const [i, payload] of payloads.entries()) chains.push((tail = new DmaFenceChain(tail, payload, i + 1)));
    payloads[1]!.signal();
    payloads[3]!.signal();
    assert.deepEqual(DmaFenceChain.reachableStats(tail!), { nodes: 4, signaledNodes: 2 });
    assert.deepEqual([...DmaFenceChain.iterate(tail!)], [chains[3], chains[2], chains[0]]);
    assert.equal(chains[2]!.prev, chains[0], 'node 2 lost its signaled predecessor');
    assert.equal(chains[2]!.prevSeqno, 2, 'prevSeqno keeps the original link');
    assert.deepEqual(DmaFenceChain.reachableStats(tail!), { nodes: 3, signaledNodes: 1 });
  });

  it('walk stops at a pending plain predecessor and drops a signaled one', () => {
    const plain = mockFence();
    const chain = new DmaFenceChain(plain, mockFence(), 1);
    assert.equal(DmaFenceChain.walk(chain), plain);
    plain.signal();
    assert.equal(DmaFenceChain.walk(chain), null);
    assert.equal(chain.prev, null);
    assert.equal(DmaFenceChain.walk(plain), null, 'walking from a plain fence ends at once');
  });

  it('signals only after its payload and every earlier point', async () => {
    const p1 = mockFence();
    const p2 = mockFence();
    const c1 = new DmaFenceChain(null, p1, 1);
    const c2 = new DmaFenceChain(c1, p2, 2);
    const seen: string[] = [];
    c2.addCallback(() => seen.push('c2'));
    c1.addCallback(() => seen.push('c1'));
    p2.signal();
    assert.deepEqual(seen, []);
    assert.equal(c2.isSignaled(), false);
    p1.signal();
    assert.deepEqual(seen.sort(), ['c1', 'c2']);
    assert.equal(await c2.wait({ timeout: 0 }), true);
  });

  it('enableSignaling on a fully signaled chain signals it at once', () => {
    const p = mockFence();
    p.signal();
    const chain = new DmaFenceChain(null, p, 1);
    assert.equal(
      chain.addCallback(() => assert.fail('never called')),
      false,
    );
    assert.equal(chain.signaledFlag, true);
  });

  it('late: a signaled chain keeps answering lookups and polls without changing', () => {
    const p = mockFence();
    const chain = new DmaFenceChain(null, p, 1);
    p.signal();
    assert.equal(chain.isSignaled(), true);
    assert.equal(chain.signal(), false);
    assert.equal(DmaFenceChain.findSeqno(chain, 1).kind, 'fence', 'the head is always visited');
    assert.equal(DmaFenceChain.findSeqno(chain, 2).kind, 'not-submitted');
  });

  it('forwards deadlines to every pending payload along the walk', () => {
    const seen: number[] = [];
    const ops = {
      getDriverName: () => 'd',
      getTimelineName: () => 't',
      setDeadline: (f: DmaFence, d: number) => void seen.push(f.seqno * 1000 + d),
    };
    const a = new DmaFence(ops, 7, 1);
    const b = new DmaFence(ops, 7, 2);
    const c = new DmaFence(ops, 7, 3);
    const chain = new DmaFenceChain(new DmaFenceChain(new DmaFenceChain(null, a, 1), b, 2), c, 3);
    b.signal();
    chain.setDeadline(5);
    assert.deepEqual(seen, [3005, 1005]);
  });

  it('findSeqno on a non-chain is not-submitted, except for the seqno 0 no-op', () => {
    const plain = mockFence();
    assert.equal(DmaFenceChain.findSeqno(plain, 1).kind, 'not-submitted');
    assert.equal(foundFence(DmaFenceChain.findSeqno(plain, 0), 'no-op'), plain);
  });

  it('rejects bad input with typed errors', () => {
    const chain = new DmaFenceChain(null, mockFence(), 1);
    assert.throws(() => new DmaFenceChain(null, chain, 2), BugError, 'a chain as payload');
    assert.throws(() => new DmaFenceChain(null, {} as DmaFence, 2), InvalidArgumentError);
    assert.throws(() => new DmaFenceChain({} as DmaFence, mockFence(), 2), InvalidArgumentError);
    assert.throws(() => new DmaFenceChain(null, mockFence(), -1), InvalidArgumentError);
    assert.throws(() => new DmaFenceChain(null, mockFence(), 1.5), InvalidArgumentError);
    assert.throws(
      () => new DmaFenceChain(null, mockFence(), 1, { gc: 'never' as ChainGcPolicy }),
      InvalidArgumentError,
    );
    assert.throws(() => DmaFenceChain.findSeqno(chain, -3), InvalidArgumentError);
    assert.equal(foundFence(DmaFenceChain.findSeqno(chain, 1), 'still usable'), chain);
  });

  it('a 1,000,000-node chain builds, signals in random order, is waited on and freed in constant stack', async () => {
    const N = 1_000_000;
    const seed = testSeed();
    const fences: DmaFence[] = new Array(N);
    let tail: DmaFenceChain | null = null;
    for (let i = 0; i < N; i++) tail = new DmaFenceChain(tail, (fences[i] = mockFence(0, 0)), i + 1);
    const head = tail!;
    const waiter = head.wait();
    shuffle(fences, seededRandom(seed));
    for (let i = 0; i < N - 1; i++) fences[i]!.signal();
    assert.equal(head.signaledFlag, false, `signaled before the last payload (seed ${seed})`);
    fences[N - 1]!.signal();
    assert.equal(await waiter, true);
    for (const _ of DmaFenceChain.iterate(head));
    assert.deepEqual(
      DmaFenceChain.reachableStats(head),
      { nodes: 1, signaledNodes: 1 },
      'every predecessor was collected',
    );
  });
  it('a 200,000-node timeline with every point armed signals backward in linear time and constant stack', () => {
    const N = 200_000;
    const fc = fenceChainsInit(N, seqnoInc);
    const signaledOrder: number[] = [];
    fc.chains[N - 1]!.addCallback((f) => signaledOrder.push(f.seqno));
    fc.chains[0]!.addCallback((f) => signaledOrder.push(f.seqno));
    const started = performance.now();
    for (let i = N - 1; i > 0; i--) fc.fences[i]!.signal();
    assert.equal(fc.chains[N - 1]!.signaledFlag, false);
    fc.fences[0]!.signal(); // one cascade through 200,000 nodes, inside this call
    assert.deepEqual(signaledOrder, [1, N], 'the cascade finished before signal() returned, oldest first');
    assert.ok(fc.chains.every((c) => c.signaledFlag));
    const elapsed = performance.now() - started;
    assert.ok(elapsed < 5000, `took ${elapsed.toFixed(0)} ms: quadratic re-arming is back`);
  });
});

describe('DmaFenceChain garbage-collection policies', () => {
  it("'queue' nodes join the global queue; 'walk' nodes do not", () => {
    const before = DmaFenceChain.gcQueueLength;
    new DmaFenceChain(null, mockFence(), 1);
    assert.equal(DmaFenceChain.gcQueueLength, before);
    new DmaFenceChain(null, mockFence(), 1, { gc: 'queue' });
    assert.ok(DmaFenceChain.gcQueueLength >= 1);
  });

  it("'queue' collects signaled links with no walk at all", () => {
    const payloads = Array.from({ length: 10 }, () => mockFence());
    let tail: DmaFenceChain | null = null;
    for (const [i, p] of payloads.entries()) tail = new DmaFenceChain(tail, p, i + 1, { gc: 'queue' });
    for (const p of payloads.slice(0, 9)) p.signal();
    assert.deepEqual(DmaFenceChain.reachableStats(tail!), { nodes: 10, signaledNodes: 9 });
    DmaFenceChain.collectQueued(DmaFenceChain.gcQueueLength * 12);
    assert.deepEqual(DmaFenceChain.reachableStats(tail!), { nodes: 1, signaledNodes: 0 });
    assert.equal(tail!.prevSeqno, 9);
  });

  it("'walk' keeps signaled links until something walks", () => {
    const payloads = Array.from({ length: 10 }, () => mockFence());
    let tail: DmaFenceChain | null = null;
    for (const [i, p] of payloads.entries()) tail = new DmaFenceChain(tail, p, i + 1);
    for (const p of payloads.slice(0, 9)) p.signal();
    DmaFenceChain.collectQueued(DmaFenceChain.gcQueueLength * 2);
    assert.deepEqual(DmaFenceChain.reachableStats(tail!), { nodes: 10, signaledNodes: 9 }, 'nothing walked yet');
    DmaFenceChain.walk(tail!);
    assert.deepEqual(DmaFenceChain.reachableStats(tail!), { nodes: 1, signaledNodes: 0 });
  });

  it("'queue' drops nodes the garbage collector reclaimed", async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const build = (): void => {
      let tail: DmaFenceChain | null = null;
      for (let i = 0; i < 1000; i++) tail = new DmaFenceChain(tail, mockFence(), i + 1, { gc: 'queue' });
    };
    build();
    const queued = DmaFenceChain.gcQueueLength;
    // WeakRef targets survive the current job, so let it end before collecting.
    await new Promise<void>((resolve) => setImmediate(resolve));
    gc();
    await new Promise<void>((resolve) => setImmediate(resolve));
    DmaFenceChain.collectQueued(queued);
    assert.ok(
      DmaFenceChain.gcQueueLength < queued - 900,
      `queue shrank from ${queued} to ${DmaFenceChain.gcQueueLength}`,
    );
  });
});

describe('DmaFenceChain model properties', () => {
  it('signaled state and findSeqno agree with a model of the timeline', () => {
    // Model: points 1..n in order; point p has signaled iff payloads 1..p have. findSeqno(head, p)
    // visits the head, then pending points newest first, and stops at the first node at or
    // before p: the head when p is the head, else the newest pending point <= p, else 'signaled'.
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }),
        fc.array(
          fc.oneof(
            fc.record({ op: fc.constant('signal' as const), at: fc.nat() }),
            fc.record({ op: fc.constant('find' as const), at: fc.nat() }),
            fc.record({ op: fc.constant('poll' as const), at: fc.nat() }),
          ),
          { maxLength: 80 },
        ),
        fc.constantFrom<ChainGcPolicy>('walk', 'queue'),
        (n, steps, gc) => {
          const payloads = Array.from({ length: n }, () => mockFence());
          const chains: DmaFenceChain[] = [];
          let tail: DmaFenceChain | null = null;
          for (const [i, p] of payloads.entries()) chains.push((tail = new DmaFenceChain(tail, p, i + 1, { gc })));
          const head = tail!;
          const signaled = new Array<boolean>(n + 1).fill(false);
          for (const step of steps) {
            const p = (step.at % n) + 1;
            if (step.op === 'signal') {
              payloads[p - 1]!.signal();
              signaled[p] = true;
            } else if (step.op === 'poll') {
              const expected = signaled.slice(1, p + 1).every(Boolean);
              assert.equal(chains[p - 1]!.isSignaled(), expected, `point ${p} signaled`);
            } else {
              const result = DmaFenceChain.findSeqno(head, p);
              let expected: DmaFenceChain | 'signaled' = 'signaled';
              if (p === n) expected = head;
              else
                for (let q = p; q >= 1; q--)
                  if (!signaled[q]) {
                    expected = chains[q - 1]!;
                    break;
                  }
              if (expected === 'signaled') assert.equal(result.kind, 'signaled', `find ${p}`);
              else assert.equal(foundFence(result, `find ${p}`), expected);
            }
          }
        },
      ),
      { seed: 0x5eed, numRuns: 300 },
    );
  });
});

describe('DmaFenceChain timestamps', () => {
  it('an armed node signals with the timestamp of the payload that completed it', () => {
    const p1 = mockFence();
    const p2 = mockFence();
    const c2 = new DmaFenceChain(new DmaFenceChain(null, p1, 1), p2, 2);
    c2.enableSwSignaling();
    p2.signal(100);
    p1.signal(250);
    assert.equal(c2.timestamp, 250);
  });
});
