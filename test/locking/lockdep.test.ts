/**
 * lockdep: the lock-dependency validator. Each documented deadlock pattern is reported while the
 * interleaving that would hang is never executed (the two orders run one after the other); each
 * legal pattern reports nothing; reports, modes, reset, priming and enabling behave as
 * documented. How held locks follow `await`, and ww classes, are in lockdep-lr.test.ts.
 *
 * Every case runs in 'record' mode (set in beforeEach, the previous mode restored in afterEach),
 * so the file passes both plainly and under `DMABUF_LOCKDEP=1` (throw mode); the throw-mode
 * cases switch to it themselves. The long-running fence rules (seed 001) are in
 * test/fence/long-running.test.ts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FenceTimeoutError } from '../../src/base/errors.js';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import {
  BugError,
  DmaFence,
  DmaResv,
  InvalidArgumentError,
  LockClass,
  Mutex,
  WwAcquireCtx,
  beginSignalling,
  disableLockdep,
  enableLockdep,
  endSignalling,
  lockdepEnabled,
  lockdepReports,
  lockdepTask,
  mightReclaim,
  reservationWwClass,
  resetLockdep,
} from '../../src/node.js';
import { dmaFenceMap, fsReclaim, lockdep } from '../../src/base/lockdep-hooks.js';
import { installHeldLockTracker, lockdepPrime } from '../../src/locking/lockdep.js';
import { nextTurn } from '../helpers/completion.js';
import { nest, probe, recordMode, seen, waitUnder } from '../helpers/lockdep-mode.js';
import { mockFence } from '../helpers/mock-fence.js';
import { asOtherTask } from '../helpers/other-task.js';

const RESV = reservationWwClass.lockClass.name;
const MAP = dmaFenceMap.name;
const RECLAIM = fsReclaim.name;

const THIS_FILE = 'lockdep.test.ts';

describe('lockdep: enabling', () => {
  recordMode();

  it('sanity: enabled in record mode, an ABBA on two mutexes is reported once as a circular dependency', async () => {
    assert.equal(lockdepEnabled(), true);
    assert.notEqual(lockdep, null, 'the hooks are installed');
    const a = new Mutex('sanity.a');
    const b = new Mutex('sanity.b');
    await probe(a, b);
    assert.deepEqual(seen(), []);
    await probe(b, a);
    assert.deepEqual(seen(), ['circular-dependency sanity.b -> sanity.a']);
  });

  it('disableLockdep makes every hook a no-op: an inverted order is neither reported nor recorded', async () => {
    const a = new Mutex('off.a');
    const b = new Mutex('off.b');
    const c = new Mutex('off.c');
    await probe(a, b);
    disableLockdep();
    assert.equal(lockdepEnabled(), false);
    assert.equal(lockdep, null);
    await probe(b, a); // would report if the hooks ran
    await probe(c, a); // would record c -> a if the hooks ran
    const c1 = beginSignalling();
    mightReclaim(); // would report inside a section
    endSignalling(c1);
    assert.deepEqual(seen(), []);
    enableLockdep({ mode: 'record' });
    // The graph was kept while off: a -> b is still known, c -> a was never recorded.
    await probe(a, c);
    assert.deepEqual(seen(), []);
    await probe(b, a);
    assert.deepEqual(seen(), ['circular-dependency off.b -> off.a']);
  });

  it(
    'enableLockdep without a tracker returns { enabled: false, reason } and stays off; ' +
      'dropping the tracker turns it off',
    () => {
      // A fresh process that never imports src/node.ts: the core has no tracker of its own.
      const root = fileURLToPath(new URL('../../', import.meta.url));
      const code = `
      const m = {
        ...(await import(${JSON.stringify(new URL('../../src/locking/lockdep.ts', import.meta.url).href)})),
        get lockdep() { return hooks.lockdep; },
      };
      const hooks = await import(${JSON.stringify(new URL('../../src/base/lockdep-hooks.ts', import.meta.url).href)});
      const { AsyncLocalStorage } = await import('node:async_hooks');
      const first = m.enableLockdep({ mode: 'record' });
      const afterFirst = m.lockdepEnabled();
      const hooksAfterFirst = m.lockdep !== null;
      const als = new AsyncLocalStorage();
      m.installHeldLockTracker({
        get: () => als.getStore() ?? [],
        set: (h) => als.enterWith(h),
        run: (h, fn) => als.run(h, fn),
      });
      const second = m.enableLockdep({ mode: 'record' });
      const afterSecond = m.lockdepEnabled();
      m.installHeldLockTracker(null);
      console.log(JSON.stringify({
        first, afterFirst, hooksAfterFirst, second, afterSecond,
        afterDrop: m.lockdepEnabled(), hooksAfterDrop: m.lockdep !== null,
      }));
    `;
      const env = { ...process.env };
      delete env['DMABUF_LOCKDEP'];
      delete env['NODE_TEST_CONTEXT'];
      delete env['NODE_OPTIONS'];
      const out = execFileSync(
        process.execPath,
        ['--conditions=@dmabuf/source', '--import', 'tsx', '--input-type=module', '-e', code],
        {
          cwd: root,
          env,
          encoding: 'utf8',
        },
      );
      const r = JSON.parse(out.trim().split('\n').pop()!) as {
        first: { enabled: boolean; reason?: string };
        afterFirst: boolean;
        hooksAfterFirst: boolean;
        second: { enabled: boolean; reason?: string };
        afterSecond: boolean;
        afterDrop: boolean;
        hooksAfterDrop: boolean;
      };
      assert.equal(r.first.enabled, false);
      assert.match(r.first.reason ?? '', /tracker/);
      assert.match(r.first.reason ?? '', /dmabuf\/node/);
      assert.equal(r.afterFirst, false);
      assert.equal(r.hooksAfterFirst, false);
      assert.deepEqual(r.second, { enabled: true });
      assert.equal(r.afterSecond, true);
      assert.equal(r.afterDrop, false);
      assert.equal(r.hooksAfterDrop, false);
    },
  );

  it('installHeldLockTracker refuses anything but null or a tracker, and keeps the one installed', async () => {
    for (const bad of [undefined, {}, { get() {}, set() {} }, 'als']) {
      assert.throws(() => installHeldLockTracker(bad as never), InvalidArgumentError);
    }
    assert.equal(lockdepEnabled(), true);
    const a = new Mutex('tracker.a');
    const b = new Mutex('tracker.b');
    await probe(a, b);
    await probe(b, a);
    assert.deepEqual(seen(), ['circular-dependency tracker.b -> tracker.a']);
  });

  it('resetLockdep forgets the graph and the reports, and re-applies the priming', async () => {
    const a = new Mutex('reset.a');
    const b = new Mutex('reset.b');
    await probe(a, b);
    await probe(b, a);
    assert.equal(lockdepReports().length, 1);
    resetLockdep();
    assert.deepEqual(lockdepReports(), []);
    await probe(b, a); // a -> b was forgotten: the first order again, no cycle
    assert.deepEqual(seen(), []);
    // The primed order fs_reclaim -> dma_fence_map is back: reclaim inside a section closes it.
    const cookie = beginSignalling();
    mightReclaim();
    endSignalling(cookie);
    assert.deepEqual(seen(), [`circular-dependency ${MAP} -> ${RECLAIM}`]);
  });

  it('lockdepPrime records an order now and after every reset', async () => {
    const outer = LockClass.forName('prime.outer');
    const inner = LockClass.forName('prime.inner');
    lockdepPrime([outer, inner]);
    const o = new Mutex('prime.outer');
    const i = new Mutex('prime.inner');
    await probe(i, o);
    assert.deepEqual(seen(), ['circular-dependency prime.inner -> prime.outer']);
    resetLockdep();
    await probe(i, o);
    assert.deepEqual(seen(), ['circular-dependency prime.inner -> prime.outer'], 'primed again after the reset');
  });
});

describe('lockdep: documented deadlock patterns are reported, the hang never runs', () => {
  recordMode();

  it("lock A then wait on fence F, while F's signaller takes A", async () => {
    const a = new Mutex('pattern.A');
    const f = mockFence();
    // The waiter: holds A and would wait for F. Polling (timeout 0) judges the wait without blocking.
    assert.equal(await waitUnder(a, f), false);
    assert.deepEqual(seen(), []);
    // The signaller: needs A on its way to signal(F). Run after the waiter let go, so nothing hangs.
    await lockdepTask(async () => {
      const cookie = beginSignalling();
      await a.lock();
      a.unlock();
      assert.equal(f.signal(), true);
      endSignalling(cookie);
    });
    assert.deepEqual(seen(), [`circular-dependency ${MAP} -> pattern.A`]);
    const [report] = lockdepReports();
    assert.match(report!.message, /pattern\.A -> dma_fence_map/, 'names the recorded reverse chain');
  });

  it('the same, with the signaller in a fence callback: signal() runs callbacks inside a section', async () => {
    const a = new Mutex('pattern.cbA');
    const f = mockFence();
    const trigger = mockFence();
    assert.equal(await waitUnder(a, f), false);
    let locked: Promise<void> | undefined;
    trigger.addCallback(() => {
      locked = a.lock();
    });
    trigger.signal();
    await locked;
    a.unlock();
    assert.deepEqual(seen(), [`circular-dependency ${MAP} -> pattern.cbA`]);
    assert.match(lockdepReports()[0]!.message, /inside DmaFence\.signal\(\), in a fence callback/);
  });

  it('a reservation lock inside a signalling section', async () => {
    const resv = new DmaResv({ name: 'pattern.bo' });
    const cookie = beginSignalling();
    await resv.lock();
    resv.unlock();
    endSignalling(cookie);
    assert.deepEqual(seen(), [`circular-dependency ${MAP} -> ${RESV}`]);
    assert.match(lockdepReports()[0]!.message, /reverse chain is already recorded: reservation_ww_class -> /);
  });

  it('an allocation with reclaim inside a signalling section', () => {
    const cookie = beginSignalling();
    mightReclaim();
    endSignalling(cookie);
    assert.deepEqual(seen(), [`circular-dependency ${MAP} -> ${RECLAIM}`]);
  });

  it('ABBA between two async tasks on two plain mutexes', async () => {
    const a = new Mutex('abba.a');
    const b = new Mutex('abba.b');
    const done: string[] = [];
    await asOtherTask(async () => {
      await nest(a, b);
      done.push('task 1');
    });
    await asOtherTask(async () => {
      await nest(b, a);
      done.push('task 2');
    });
    assert.deepEqual(done, ['task 1', 'task 2'], 'both tasks finished: the hanging interleaving never ran');
    assert.deepEqual(seen(), ['circular-dependency abba.b -> abba.a']);
  });

  it('ABBA between two reservation objects locked without an acquire context', async () => {
    const x = new DmaResv({ name: 'abba.x' });
    const y = new DmaResv({ name: 'abba.y' });
    const task = async (first: DmaResv, second: DmaResv): Promise<void> => {
      await first.lock();
      await nextTurn();
      await second.lock();
      second.unlock();
      first.unlock();
    };
    await asOtherTask(() => task(x, y));
    await asOtherTask(() => task(y, x));
    // One class, two instances, no ticket: the kernel's "possible recursive locking".
    assert.deepEqual(seen(), [`recursive-locking ${RESV}`]);
    assert.match(lockdepReports()[0]!.message, /only under one acquire context/);
  });

  it('a fence wait under a plain mutex that a fence callback also takes (callback first)', async () => {
    const m = new Mutex('pattern.cbfirst');
    const trigger = mockFence();
    let locked: Promise<void> | undefined;
    trigger.addCallback(() => {
      locked = m.lock();
    });
    trigger.signal();
    await locked;
    m.unlock();
    assert.deepEqual(seen(), []);
    await waitUnder(m, mockFence());
    assert.deepEqual(seen(), [`circular-dependency pattern.cbfirst -> ${MAP}`]);
  });
});

describe('lockdep: legal patterns report nothing', () => {
  recordMode();

  it('nested signalling sections, with locks, waits and signals inside', async () => {
    const m = new Mutex('legal.nested');
    const outer = beginSignalling();
    const inner = beginSignalling();
    await m.lock();
    m.unlock();
    const f = mockFence();
    let ran = false;
    f.addCallback(() => {
      ran = true;
    });
    f.signal(); // opens its own section: nested, free
    endSignalling(inner);
    endSignalling(outer);
    assert.equal(ran, true);
    assert.deepEqual(seen(), []);
    // The control: m really was taken inside the section, so a wait under m now closes a cycle.
    await waitUnder(m, mockFence());
    assert.deepEqual(seen(), [`circular-dependency legal.nested -> ${MAP}`]);
  });

  it('many reservations locked under one acquire context, then fence waits and allocations under them', async () => {
    const objs = Array.from({ length: 8 }, (_, i) => new DmaResv({ name: `legal.bo${i}` }));
    const ctx = new WwAcquireCtx(reservationWwClass);
    for (const o of objs) await o.lock(ctx);
    ctx.done();
    mightReclaim();
    assert.equal(await mockFence().wait({ timeout: 0 }), false);
    for (const o of objs) o.unlock();
    ctx.fini();
    assert.deepEqual(seen(), []);
    // The control: two of them without the context are a report.
    await lockdepTask(async () => {
      await objs[0]!.lock();
      await objs[1]!.lock();
      objs[1]!.unlock();
      objs[0]!.unlock();
    });
    assert.deepEqual(seen(), [`recursive-locking ${RESV}`]);
  });

  it('waits outside signalling sections, with and without plain locks held', async () => {
    const m = new Mutex('legal.wait');
    const f = mockFence();
    assert.equal(await f.wait({ timeout: 0 }), false);
    await m.lock();
    assert.equal(await f.wait({ timeout: 0 }), false);
    await assert.rejects(DmaFence.waitAny([f, mockFence()], { timeout: 0 }), FenceTimeoutError);
    m.unlock();
    queueMicrotask(() => f.signal());
    assert.equal(await f.wait(), true);
    assert.deepEqual(seen(), []);
  });

  it('fences that depend on fences: callbacks signalling fences, waits inside a section', async () => {
    const fences = Array.from({ length: 4 }, () => mockFence());
    for (let i = 0; i + 1 < fences.length; i++) {
      const next = fences[i + 1]!;
      fences[i]!.addCallback(() => next.signal());
    }
    let last = false;
    fences.at(-1)!.addCallback(() => {
      last = true;
    });
    const cookie = beginSignalling();
    assert.equal(await mockFence().wait({ timeout: 0 }), false); // a section may wait for other fences
    fences[0]!.signal();
    endSignalling(cookie);
    assert.equal(last, true);
    assert.deepEqual(seen(), []);
  });
});

describe('lockdep: reports and modes', () => {
  recordMode();

  it("a report names both classes and both acquisition sites, in the caller's file", async () => {
    const a = new Mutex('site.a');
    const b = new Mutex('site.b');
    await probe(a, b);
    await probe(b, a);
    const [report] = lockdepReports();
    assert.ok(report !== undefined);
    assert.deepEqual(report.classes, ['site.b', 'site.a']);
    const msg = report.message;
    assert.match(msg, /possible circular locking dependency/);
    assert.match(msg, /new dependency: site\.b -> site\.a/);
    const held = msg.slice(msg.indexOf('site.b was acquired at:'), msg.indexOf('site.a is being acquired at:'));
    const acquiring = msg.slice(msg.indexOf('site.a is being acquired at:'), msg.indexOf('but the reverse chain'));
    assert.match(held, /at .*mutex\.ts/, held);
    assert.match(acquiring, /at .*mutex\.ts/, acquiring);
    assert.ok(held.includes(THIS_FILE), held);
    assert.ok(acquiring.includes(THIS_FILE), acquiring);
    // The validator's own frames (capturing the site, the hook) are left out: each site starts at
    // the lock call. Frames below the caller (lockdepTask, which started the probe) may appear.
    for (const section of [held, acquiring]) {
      assert.match(section.split('\n')[1] ?? '', /at .*Mutex\.lock .*mutex\.ts/, section);
    }
  });

  it('with stacks off the sites say so', async () => {
    enableLockdep({ stacks: false });
    const a = new Mutex('nostack.a');
    const b = new Mutex('nostack.b');
    await probe(a, b);
    await probe(b, a);
    const msg = lockdepReports()[0]?.message ?? '';
    assert.ok(!msg.includes('mutex.ts'), msg);
    assert.ok(msg.includes('(stacks off)'), msg);
  });

  it('each pair is reported once, however often the inverted order is seen; another pair is reported too', async () => {
    const a = new Mutex('once.a');
    const b = new Mutex('once.b');
    const c = new Mutex('once.c');
    await probe(a, b);
    await probe(b, c);
    for (let i = 0; i < 3; i++) await probe(b, a);
    assert.deepEqual(seen(), ['circular-dependency once.b -> once.a']);
    await probe(c, a); // c -> a closes a -> b -> c
    assert.deepEqual(seen(), ['circular-dependency once.b -> once.a', 'circular-dependency once.c -> once.a']);
    assert.match(lockdepReports()[1]!.message, /once\.a -> once\.b -> once\.c/);
  });

  it('record mode lets the offending call go on: the lock is granted, the wait runs', async () => {
    const resv = new DmaResv({ name: 'record.bo' });
    const cookie = beginSignalling();
    await resv.lock();
    assert.equal(resv.isLocked, true);
    resv.unlock();
    endSignalling(cookie);
    assert.equal(seen().length, 1);
  });

  it('throw mode: the lock promise rejects with the report, the mutex stays free and usable', async () => {
    enableLockdep({ mode: 'throw' });
    const a = new Mutex('throw.a');
    const b = new Mutex('throw.b');
    await probe(a, b);
    await lockdepTask(async () => {
      await b.lock();
      await assert.rejects(
        a.lock(),
        (err: unknown) => err instanceof BugError && /throw\.b -> throw\.a/.test(err.message),
      );
      assert.equal(a.isLocked, false);
      assert.equal(a.waiters, 0);
      b.unlock();
    });
    await a.lock();
    a.unlock();
    assert.equal(seen().length, 1, 'thrown reports are recorded too');
  });

  it('throw mode: a reservation lock in a section rejects, the object stays usable', async () => {
    enableLockdep({ mode: 'throw' });
    const resv = new DmaResv({ name: 'throw.bo' });
    const cookie = beginSignalling();
    await assert.rejects(resv.lock(), BugError);
    assert.equal(resv.isLocked, false);
    endSignalling(cookie);
    await resv.lock();
    resv.reserveFences(1);
    resv.unlock();
  });

  it('throw mode: the wait rejects, the fence is untouched and can still be waited on and signalled', async () => {
    enableLockdep({ mode: 'throw' });
    const m = new Mutex('throw.wait');
    const f = mockFence();
    await lockdepTask(async () => {
      const cookie = beginSignalling();
      await m.lock();
      m.unlock();
      endSignalling(cookie);
    });
    await lockdepTask(async () => {
      await m.lock();
      await assert.rejects(f.wait(), (err: unknown) => err instanceof BugError && err.message.includes(MAP));
      m.unlock();
    });
    assert.equal(f.pendingCallbacks, 0);
    assert.equal(f.signalingEnabled, false, 'the rejected wait did not enable signaling');
    const later = f.wait();
    f.signal();
    assert.equal(await later, true);
  });

  it('throw mode: waitAny rejects when one of its fences may not be waited for here', async () => {
    enableLockdep({ mode: 'throw' });
    const resv = new DmaResv({ name: 'throw.any' });
    const f = mockFence();
    const cookie = beginSignalling();
    await assert.rejects(resv.lock(), BugError); // records nothing, but a section is open
    await assert.rejects(DmaFence.waitAny([f], { timeout: 0 }), FenceTimeoutError);
    endSignalling(cookie);
    const other = new Mutex('throw.any.m');
    await lockdepTask(async () => {
      const c2 = beginSignalling();
      await other.lock();
      other.unlock();
      endSignalling(c2);
    });
    await other.lock();
    await assert.rejects(DmaFence.waitAny([mockFence(), f]), BugError);
    other.unlock();
  });

  it('throw mode: mightReclaim throws in a section, and the section still closes', () => {
    enableLockdep({ mode: 'throw' });
    const cookie = beginSignalling();
    assert.throws(() => mightReclaim(), BugError);
    endSignalling(cookie);
    mightReclaim(); // outside the section: fine
  });

  it('ending a section twice is a BugError; a nested cookie ends freely', () => {
    const outer = beginSignalling();
    const inner = beginSignalling();
    endSignalling(inner);
    endSignalling(inner);
    // The inner end did not close the outer section.
    mightReclaim();
    assert.deepEqual(seen(), [`circular-dependency ${MAP} -> ${RECLAIM}`]);
    endSignalling(outer);
    assert.throws(
      () => endSignalling(outer),
      (err: unknown) => err instanceof BugError && /ended twice/.test(err.message),
    );
  });
});
