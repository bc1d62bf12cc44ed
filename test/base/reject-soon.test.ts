/**
 * Executable specification of src/base/reject-soon.ts: a promise that rejects with the given
 * reason one microtask after the call, so a caller awaiting it at once is listening by then.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rejectSoon } from '../../src/base/reject-soon.js';

describe('rejectSoon', () => {
  it('sanity: rejects with the very reason given, and never fulfils', async () => {
    const reason = new Error('back off');
    await assert.rejects(rejectSoon(reason), (err) => err === reason);
    const notAnError = { code: 'EDEADLK' };
    await assert.rejects(rejectSoon(notAnError), (err) => err === notAnError);
  });

  it('is still pending when the call returns: the rejection lands one microtask later', async () => {
    const order: string[] = [];
    rejectSoon(new Error('soon')).catch(() => order.push('rejectSoon handler'));
    Promise.reject(new Error('now')).catch(() => order.push('Promise.reject handler'));
    queueMicrotask(() => order.push('microtask queued after both'));
    await new Promise((resolve) => setImmediate(resolve));
    // Promise.reject's handler is queued when it is attached; rejectSoon's only after its own
    // microtask rejected it, so it runs after a microtask queued after both calls.
    assert.deepEqual(order, ['Promise.reject handler', 'microtask queued after both', 'rejectSoon handler']);
  });

  it('calls in a row keep their own reasons', async () => {
    const reasons = [new Error('a'), new Error('b'), new Error('c')];
    const promises = reasons.map((r) => rejectSoon(r));
    const settled = await Promise.allSettled(promises);
    assert.deepEqual(
      settled.map((s) => (s.status === 'rejected' ? s.reason : s.status)),
      reasons,
    );
  });
});
