/**
 * Property test: a timeline Syncobj against a model that keeps every added point in a plain
 * list and never collects anything.
 *
 * The model follows the kernel's rules on the *uncollected* list: each add gets the previous
 * head's context when its point is later, else a fresh context with the head's seqno and
 * prevSeqno 0. A lookup of point p walks back from the head to the first node on another
 * context or with prevSeqno < p; the point is signaled iff every payload up to that node is.
 * The real object splices signaled links out as it goes, which changes which node it returns
 * but, if collection is correct, never whether that node is signaled; that is the property.
 * For timelines that never went out of order the test also checks the plain rule from the brief:
 * p resolves to the first submitted point >= p and query() is the longest fully signaled prefix.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { FenceTimeoutError, NotSubmittedError } from '../../src/base/errors.js';
import { VirtualClock, useClock } from '../../src/base/clock.js';
import { DmaFence } from '../../src/fence/dma-fence.js';
import { DmaFenceChain, type ChainGcPolicy } from '../../src/fence/dma-fence-chain.js';
import { Syncobj } from '../../src/fence/syncobj.js';
import { mockFence, testSeed } from '../helpers/mock-fence.js';

interface ModelNode {
  readonly point: number;
  readonly payload: DmaFence;
  readonly node: DmaFence;
  readonly context: number;
  readonly seqno: number;
  readonly prevSeqno: number;
}

type Command =
  | { readonly kind: 'add'; readonly delta: number; readonly stub: boolean }
  | { readonly kind: 'addOutOfOrder'; readonly back: number }
  | { readonly kind: 'signal'; readonly pick: number }
  | { readonly kind: 'find'; readonly pick: number }
  | { readonly kind: 'query' }
  | { readonly kind: 'poll'; readonly pick: number; readonly available: boolean }
  | { readonly kind: 'timedWait'; readonly pick: number; readonly signalPick: number }
  | { readonly kind: 'timedFind'; readonly pick: number; readonly delta: number };

const commandArb: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('add' as const),
      delta: fc.integer({ min: 1, max: 3 }),
      stub: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('addOutOfOrder' as const), back: fc.integer({ min: 0, max: 4 }) }),
  },
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('signal' as const), pick: fc.nat() }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('find' as const), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('query' as const) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('poll' as const), pick: fc.nat(), available: fc.boolean() }) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('timedWait' as const), pick: fc.nat(), signalPick: fc.nat() }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('timedFind' as const),
      pick: fc.nat(),
      delta: fc.integer({ min: 0, max: 3 }),
    }),
  },
);

class TimelineModel {
  readonly nodes: ModelNode[] = [];
  outOfOrder = false;
  #contexts = 0;

  get head(): ModelNode | undefined {
    return this.nodes[this.nodes.length - 1];
  }

  get lastSubmitted(): number {
    return this.head?.seqno ?? 0;
  }

  add(point: number, payload: DmaFence, node: DmaFence): boolean {
    const prev = this.head;
    const inOrder = prev !== undefined && point > prev.seqno;
    const outOfOrder = prev !== undefined && !inOrder;
    this.nodes.push({
      point,
      payload,
      node,
      context: inOrder ? prev.context : ++this.#contexts,
      seqno: prev === undefined ? point : Math.max(point, prev.seqno),
      prevSeqno: inOrder ? prev.seqno : 0,
    });
    if (outOfOrder) this.outOfOrder = true;
    return outOfOrder;
  }

  /** Every payload up to and including node `index` has signaled. */
  signaledUpTo(index: number): boolean {
    for (let i = 0; i <= index; i++) if (!this.nodes[i]!.payload.signaledFlag) return false;
    return true;
  }

  /** Index of the node the uncollected chain resolves `point` (> 0) to, or undefined if not submitted. */
  resolve(point: number): number | undefined {
    const head = this.head;
    if (head === undefined) return undefined;
    if (point === 0) return this.nodes.length - 1;
    if (head.seqno < point) return undefined;
    for (let i = this.nodes.length - 1; i >= 0; i--) {
      const node = this.nodes[i]!;
      if (node.context !== head.context || node.prevSeqno < point) return i;
    }
    throw new Error('model: the first node always has prevSeqno 0, so resolve() cannot fall off the end');
  }

  /** What a collecting walk returns instead: the head, or the newest pending node at or before `index`. */
  expectedFence(point: number, index: number): DmaFence {
    if (point === 0 || index === this.nodes.length - 1) return this.nodes[index]!.node;
    for (let i = index; i >= 0; i--) if (!this.nodes[i]!.payload.signaledFlag) return this.nodes[i]!.node;
    return DmaFence.getStub();
  }

  /** The kernel's query on the uncollected list: the oldest pending node of the head's run decides. */
  query(): number {
    const head = this.head;
    if (head === undefined) return 0;
    let last = this.nodes.length - 1;
    for (let i = last - 1; i >= 0 && this.nodes[i]!.context === head.context; i--) {
      if (!this.nodes[i]!.payload.signaledFlag) last = i;
    }
    const node = this.nodes[last]!;
    return this.signaledUpTo(last) ? node.seqno : node.prevSeqno;
  }

  /** The brief's rule for in-order timelines: the longest fully signaled prefix of points. */
  signaledPrefix(): number {
    let point = 0;
    for (const node of this.nodes) {
      if (!node.payload.signaledFlag) break;
      point = node.point;
    }
    return point;
  }
}

async function run(commands: readonly Command[], gc: ChainGcPolicy): Promise<void> {
  const clock = new VirtualClock();
  using _c = useClock(clock);
  using syncobj = new Syncobj({ gc });
  const model = new TimelineModel();
  const pointFor = (pick: number): number => pick % (model.lastSubmitted + 3);

  const add = (payload: DmaFence, point: number, viaSignal: boolean): void => {
    const result = viaSignal ? (syncobj.signal(point), undefined) : syncobj.addPoint(payload, point);
    const outOfOrder = model.add(point, payload, syncobj.fence!);
    if (result !== undefined) assert.equal(result.outOfOrder, outOfOrder, `addPoint(${point}).outOfOrder`);
    // The walk after the add leaves at most the new head and the previous head holding signaled payloads.
    assert.ok(
      DmaFenceChain.reachableStats(syncobj.fence!).signaledNodes <= 2,
      `signaled links survived the walk after adding ${point}`,
    );
  };

  for (const command of commands) {
    switch (command.kind) {
      case 'add': {
        const point = model.lastSubmitted + command.delta;
        if (command.stub) add(DmaFence.getStub(), point, true);
        else add(mockFence(), point, false);
        break;
      }
      case 'addOutOfOrder':
        add(mockFence(), Math.max(1, model.lastSubmitted - command.back), false);
        break;
      case 'signal':
        if (model.nodes.length > 0) model.nodes[command.pick % model.nodes.length]!.payload.signal();
        break;
      case 'find': {
        const point = pointFor(command.pick);
        const index = model.resolve(point);
        const found = syncobj.findFenceNow(point);
        if (index === undefined) {
          assert.equal(found, undefined, `point ${point} is beyond ${model.lastSubmitted}`);
          break;
        }
        assert.ok(found !== undefined, `point ${point} was submitted (last ${model.lastSubmitted})`);
        const expected = model.expectedFence(point, index);
        assert.equal(found, expected, `point ${point}: the fence a collecting walk returns`);
        assert.equal(found.isSignaled(), model.signaledUpTo(index), `point ${point}: signaled state`);
        if (!model.outOfOrder && point > 0) {
          const first = model.nodes.findIndex((node) => node.point >= point);
          assert.equal(index, first, `in order, point ${point} resolves to the first submitted point >= it`);
        }
        break;
      }
      case 'query': {
        assert.equal(syncobj.query({ lastSubmitted: true }), model.lastSubmitted);
        const last = syncobj.query();
        assert.equal(last, model.query(), 'last signaled point');
        if (!model.outOfOrder) assert.equal(last, model.signaledPrefix(), 'in order: the longest signaled prefix');
        break;
      }
      case 'poll': {
        const point = pointFor(command.pick);
        const index = model.resolve(point);
        const ready = index !== undefined && (command.available || model.signaledUpTo(index));
        const outcome = Syncobj.wait([{ syncobj, point }], { timeout: 0, available: command.available });
        if (ready) assert.equal(await outcome, 0, `poll point ${point}`);
        else if (index === undefined && !command.available) await assert.rejects(outcome, NotSubmittedError);
        else await assert.rejects(outcome, FenceTimeoutError);
        break;
      }
      case 'timedWait': {
        const point = pointFor(command.pick);
        const outcome = Syncobj.wait([{ syncobj, point }], { waitForSubmit: true, timeout: 5 }).then(
          (index) => index,
          (err: unknown) => err,
        );
        if (model.nodes.length > 0) model.nodes[command.signalPick % model.nodes.length]!.payload.signal();
        await clock.tick(5);
        const index = model.resolve(point);
        const result = await outcome;
        if (index !== undefined && model.signaledUpTo(index)) assert.equal(result, 0, `timed wait for point ${point}`);
        else
          assert.ok(
            result instanceof FenceTimeoutError,
            `timed wait for point ${point}: expected a timeout, got ${String(result)}`,
          );
        break;
      }
      case 'timedFind': {
        // Waits up to 5 ms for a point, meanwhile adds the next point `delta` later (0: adds nothing).
        const point = pointFor(command.pick);
        const outcome = syncobj.findFence(point, { waitForSubmit: true, timeout: 5 }).then(
          (fence) => fence,
          (err: unknown) => err,
        );
        let index = model.resolve(point);
        let expected = index === undefined ? undefined : model.expectedFence(point, index);
        if (command.delta > 0) {
          add(mockFence(), model.lastSubmitted + command.delta, false);
          if (index === undefined) {
            index = model.resolve(point);
            // The add wakes the waiter before it walks, so a woken wait sees the chain as added.
            expected = index === undefined ? undefined : model.expectedFence(point, index);
          }
        }
        await clock.tick(5);
        const result = await outcome;
        if (expected !== undefined) assert.equal(result, expected, `findFence(${point}) with waitForSubmit`);
        else
          assert.ok(
            result instanceof FenceTimeoutError,
            `findFence(${point}): expected a timeout, got ${String(result)}`,
          );
        break;
      }
    }
  }
  assert.equal(syncobj.pendingSubmitWaiters, 0, 'submit-waiters left behind');
  assert.equal(clock.pendingTimers, 0, 'timers left behind');
}

describe('Syncobj', () => {
  it('property: a timeline matches the uncollected-list model (lookups, query, waits)', async () => {
    const seed = testSeed();
    const property = fc.asyncProperty(
      fc.array(commandArb, { minLength: 1, maxLength: 40 }),
      fc.constantFrom<ChainGcPolicy>('walk', 'queue'),
      run,
    );
    try {
      await fc.assert(property, { seed, numRuns: 200 });
    } catch (err) {
      throw new Error(`seed ${seed} (rerun with TEST_SEED=${seed}): ${(err as Error).message}`, { cause: err });
    }
  });
});
