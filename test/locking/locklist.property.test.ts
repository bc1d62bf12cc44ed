/**
 * Property test for transaction lock lists: random add / remove / nest / backoff / unlockPutAll
 * sequences on a main list and a sub-list, against a model of which list holds each object.
 * After every step each object is locked iff listed, holds its creator's reference plus one per
 * list, is released only when neither holds it, and unlocks happen in the model's order.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { BugError } from '../../src/base/errors.js';
import { TransLockList, type BackoffOutcome } from '../../src/locking/locklist.js';
import { type Counted, names, world } from '../helpers/counted-lock.js';
import { testSeed } from '../helpers/mock-fence.js';

type Where = 'main' | 'sub' | null;
type Cmd =
  | { readonly kind: 'add'; readonly sub: boolean; readonly obj: number }
  | { readonly kind: 'remove'; readonly sub: boolean; readonly obj: number }
  | { readonly kind: 'nest' }
  | { readonly kind: 'unlockPutAll'; readonly sub: boolean }
  | {
      readonly kind: 'backoff';
      readonly sub: boolean;
      readonly obj: number;
      readonly result: 'locked' | 'relaxed' | 'abort';
      readonly relaxUnlock: boolean;
    }
  | { readonly kind: 'backoffSub'; readonly obj: number; readonly result: 'locked' | 'relaxed' }
  | { readonly kind: 'dropCreatorRef'; readonly obj: number };

const OBJECTS = 5;
const objArb = fc.integer({ min: 0, max: OBJECTS - 1 });
const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('add' as const), sub: fc.boolean(), obj: objArb }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('remove' as const), sub: fc.boolean(), obj: objArb }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('nest' as const) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('unlockPutAll' as const), sub: fc.boolean() }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('backoff' as const),
      sub: fc.boolean(),
      obj: objArb,
      result: fc.constantFrom('locked' as const, 'relaxed' as const, 'abort' as const),
      relaxUnlock: fc.boolean(),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('backoffSub' as const),
      obj: objArb,
      result: fc.constantFrom('locked' as const, 'relaxed' as const),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('dropCreatorRef' as const), obj: objArb }) },
);

/** The model: which list holds each object, in what order, and whether the sub-list is nested. */
class LockModel {
  main: (number | 'sub')[] = [];
  sub: number[] = [];
  creatorRef: boolean[] = Array.from({ length: OBJECTS }, () => true);

  where(obj: number): Where {
    if (this.main.includes(obj)) return 'main';
    if (this.sub.includes(obj)) return 'sub';
    return null;
  }

  /** Released: the creator let go and no list holds it. */
  freed(obj: number): boolean {
    return !this.creatorRef[obj] && this.where(obj) === null;
  }

  get nested(): boolean {
    return this.main.includes('sub');
  }

  /** Empties a list and returns the objects in the order they are unlocked. */
  unlockAll(sub: boolean): number[] {
    const order: number[] = [];
    if (sub) {
      order.push(...[...this.sub].reverse());
      this.sub = [];
      return order;
    }
    for (const e of [...this.main].reverse()) order.push(...(e === 'sub' ? this.unlockAll(true) : [e]));
    this.main = [];
    return order;
  }
}

async function runCommands(cmds: readonly Cmd[]): Promise<void> {
  const { objs, item, log, violations } = world('01234');
  const main = new TransLockList({ name: 'main' });
  const sub = new TransLockList({ name: 'sub' });
  const model = new LockModel();
  const listOf = (isSub: boolean): TransLockList => (isSub ? sub : main);
  const unlocked = (from: number): string[] =>
    log
      .slice(from)
      .filter((l) => l.startsWith('unlock'))
      .map((l) => l.slice(7));

  for (const cmd of cmds) {
    const mark = log.length;
    let expectedUnlocks: number[] = [];
    switch (cmd.kind) {
      case 'add': {
        const o = objs[cmd.obj]!;
        if (model.where(cmd.obj) !== null || model.freed(cmd.obj)) {
          // Listed already, or freed (the get is the use-after-free check): nothing changes.
          assert.throws(() => listOf(cmd.sub).add(item(o)), BugError);
          break;
        }
        o.lock();
        listOf(cmd.sub).add(item(o));
        (cmd.sub ? model.sub : model.main).push(cmd.obj);
        break;
      }
      case 'remove': {
        const o = objs[cmd.obj]!;
        if (model.where(cmd.obj) !== (cmd.sub ? 'sub' : 'main')) {
          assert.throws(() => listOf(cmd.sub).remove(item(o)), BugError);
          break;
        }
        listOf(cmd.sub).remove(item(o));
        if (cmd.sub) model.sub = model.sub.filter((x) => x !== cmd.obj);
        else model.main = model.main.filter((x) => x !== cmd.obj);
        expectedUnlocks = [cmd.obj];
        break;
      }
      case 'nest':
        if (model.nested) {
          assert.throws(() => main.add(sub), BugError);
        } else {
          main.add(sub);
          model.main.push('sub');
        }
        break;
      case 'unlockPutAll':
        listOf(cmd.sub).unlockPutAll();
        expectedUnlocks = model.unlockAll(cmd.sub);
        break;
      case 'backoff': {
        const o = objs[cmd.obj]!;
        const list = listOf(cmd.sub);
        if (model.freed(cmd.obj)) {
          // The first thing backoff does is take its reference, so nothing is unlocked either.
          await assert.rejects(list.backoff(item(o)), BugError);
          break;
        }
        expectedUnlocks = model.unlockAll(cmd.sub);
        // Still listed means on the other list: held by this transaction when the sub-list is
        // nested in main (a bug), else it stands for another transaction's lock (a wait).
        const stillListed = model.where(cmd.obj) !== null;
        const sameTree = stillListed && model.nested;
        const abort = cmd.result === 'abort' || stillListed;
        o.slowResult = abort ? 'never' : cmd.result;
        const ac = new AbortController();
        const pending = list.backoff(item(o, cmd.relaxUnlock), { signal: ac.signal });
        if (abort) ac.abort(new Error('abort'));
        if (sameTree) {
          await assert.rejects(pending, BugError);
        } else if (abort) {
          await assert.rejects(pending, /abort/);
        } else {
          const outcome = await pending;
          const expected: BackoffOutcome =
            cmd.result === 'relaxed' ? 'relaxed' : cmd.relaxUnlock ? 'unlocked' : 'locked';
          assert.equal(outcome, expected);
          if (expected === 'locked') (cmd.sub ? model.sub : model.main).push(cmd.obj);
          if (expected === 'unlocked') expectedUnlocks.push(cmd.obj);
        }
        break;
      }
      case 'backoffSub': {
        const o = objs[cmd.obj]!;
        // The sub-list recorded a contention on o; the outer transaction backs off for the sub-list.
        if (model.where(cmd.obj) !== null) break; // only locks nobody here holds contend
        if (model.freed(cmd.obj)) {
          assert.throws(() => sub.setContending(item(o)), BugError);
          break;
        }
        sub.setContending(item(o));
        o.slowResult = cmd.result;
        expectedUnlocks = model.unlockAll(false);
        expectedUnlocks.push(...model.unlockAll(true));
        const outcome = await main.backoff(sub);
        assert.equal(outcome, cmd.result);
        if (cmd.result === 'locked') {
          model.sub.push(cmd.obj);
          model.main.push('sub');
        }
        break;
      }
      case 'dropCreatorRef':
        if (model.creatorRef[cmd.obj]) {
          objs[cmd.obj]!.kref.put();
          model.creatorRef[cmd.obj] = false;
        }
        break;
    }
    assert.deepEqual(unlocked(mark), expectedUnlocks.map(String), `unlock order after ${JSON.stringify(cmd)}`);
    checkState(objs, model, main, sub, cmd);
    assert.deepEqual(violations, []);
  }

  main[Symbol.dispose]();
  sub[Symbol.dispose]();
  for (const [i, o] of objs.entries()) {
    assert.equal(o.locked, false);
    assert.equal(o.refs, model.creatorRef[i] ? 1 : 0, `object ${i} is back to its creator's reference`);
    if (model.creatorRef[i]) o.kref.put();
    assert.equal(o.released, true);
  }
  assert.deepEqual(violations, []);
}

function checkState(
  objs: readonly Counted[],
  model: LockModel,
  main: TransLockList,
  sub: TransLockList,
  cmd: Cmd,
): void {
  const at = `after ${JSON.stringify(cmd)}`;
  for (const [i, o] of objs.entries()) {
    const where = model.where(i);
    const listed = where !== null;
    assert.equal(o.locked, listed, `object ${i} locked iff listed ${at}`);
    assert.equal(o.refs, (model.creatorRef[i] ? 1 : 0) + (listed ? 1 : 0), `object ${i} references ${at}`);
    assert.equal(o.released, !model.creatorRef[i] && !listed, `object ${i} released ${at}`);
    assert.equal(main.has(o), where === 'main');
    assert.equal(sub.has(o), where === 'sub');
  }
  assert.deepEqual(
    names(main),
    model.main.map((e) => (e === 'sub' ? '[sub]' : String(e))),
    `main ${at}`,
  );
  assert.deepEqual(names(sub), model.sub.map(String), `sub ${at}`);
  assert.equal(sub.parent, model.nested ? main : null);
  assert.equal(sub.contending, null);
}

describe('TransLockList lifetime property', () => {
  it(
    'random add/remove/nest/backoff/unlockPutAll: ' +
      'references return to their start, nothing is released while locked',
    async () => {
      const seed = testSeed();
      try {
        await fc.assert(fc.asyncProperty(fc.array(cmdArb, { maxLength: 40 }), runCommands), { seed, numRuns: 200 });
      } catch (err) {
        throw new Error(`seed ${seed} (rerun with TEST_SEED=${seed}): ${(err as Error).message}`, { cause: err });
      }
    },
  );
});
