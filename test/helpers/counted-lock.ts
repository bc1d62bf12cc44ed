/**
 * Test helper for the lock-list specs: a counted lock, a reference-counted object whose release
 * records a violation if it is still locked, so every test also checks the lifetime rule.
 */
import { BugError } from '../../src/base/errors.js';
import { Kref } from '../../src/base/lifecycle.js';
import { TransLockList, type LockItem, type LockItemOps, type SlowLockResult } from '../../src/locking/locklist.js';

export class Counted {
  locked = false;
  released = false;
  /** What the next slow lock does; 'never' waits until its signal aborts. */
  slowResult: SlowLockResult | 'never' | 'garbage' = 'locked';
  failUnlock = false;
  failPut = false;
  readonly kref: Kref;

  constructor(
    readonly name: string,
    readonly log: string[],
    readonly violations: string[],
  ) {
    this.kref = new Kref(() => {
      if (this.locked) violations.push(`${name} released while locked`);
      this.released = true;
      log.push(`release ${name}`);
    }, name);
  }

  get refs(): number {
    return this.kref.count;
  }

  lock(): void {
    if (this.locked) throw new Error(`test bug: ${this.name} locked twice`);
    this.locked = true;
  }
}

export const countedOps: LockItemOps<Counted> = {
  async slowLock(o: Counted, signal?: AbortSignal): Promise<SlowLockResult> {
    o.log.push(`slowLock ${o.name}`);
    if (o.slowResult === 'never') {
      await new Promise<never>((_resolve, reject) =>
        signal!.addEventListener('abort', () => reject(signal!.reason), { once: true }),
      );
    }
    if (o.slowResult === 'garbage') {
      o.lock();
      return 'maybe' as SlowLockResult;
    }
    if (o.slowResult === 'relaxed') return 'relaxed';
    o.lock();
    return 'locked';
  },
  unlock(o: Counted): void {
    o.log.push(`unlock ${o.name}`);
    if (!o.locked) throw new BugError(`${o.name}: unlock of an unlocked counted lock`);
    if (o.failUnlock) throw new Error(`${o.name}: unlock failed`);
    o.locked = false;
  },
  get(o: Counted): void {
    o.kref.get();
  },
  put(o: Counted): void {
    o.log.push(`put ${o.name}`);
    if (o.failPut) throw new Error(`${o.name}: put failed`);
    o.kref.put();
  },
};

/** A set of counted locks named by the letters of `names`, sharing one log. */
export function world(names: string) {
  const log: string[] = [];
  const violations: string[] = [];
  const objs = [...names].map((n) => new Counted(n, log, violations));
  const item = (o: Counted, relaxUnlock = false): LockItem<Counted> => ({ ops: countedOps, object: o, relaxUnlock });
  /** Locks `o` and lists it, as a caller would. */
  const lockAdd = (list: TransLockList, o: Counted): void => {
    o.lock();
    list.add(item(o));
  };
  /** The unlock/put/slowLock lines of the log (reference taking is not logged). */
  const events = (): string[] => log.filter((l) => !l.startsWith('release'));
  return { log, violations, objs, item, lockAdd, events };
}

/** The names of a list's items, sub-lists in brackets. */
export function names(list: TransLockList): string[] {
  return list.items.map((i) =>
    i.object instanceof TransLockList ? `[${i.object.name}]` : (i.object as { name: string }).name,
  );
}
