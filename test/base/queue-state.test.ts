/**
 * Executable specification of src/base/queue-state.ts: the open / draining / closed life shared
 * by the work queue and the deferred-free list, and its abortable drain waiters.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { QueueState } from '../../src/base/queue-state.js';
import { nextTurn, watch } from '../helpers/completion.js';

function queue(): { items: string[]; state: QueueState } {
  const items: string[] = [];
  return { items, state: new QueueState(() => items.length === 0) };
}

describe('QueueState', () => {
  it('sanity: open, drain resolves at once when idle', async () => {
    const { state } = queue();
    assert.equal(state.status, 'open');
    await state.drain();
    assert.equal(state.drainWaiters, 0);
  });

  it('drain waits until the owner wakes it while idle; a wake while busy wakes nobody', async () => {
    const { items, state } = queue();
    items.push('a', 'b');
    const drained = watch(state.drain());
    items.pop();
    state.wake();
    await nextTurn();
    assert.equal(drained().state, 'pending', 'still one item');
    items.pop();
    state.wake();
    await nextTurn();
    assert.equal(drained().state, 'fulfilled');
    assert.equal(state.drainWaiters, 0);
  });

  it('an aborted drain rejects with the reason and leaves no waiter; the others still wait', async () => {
    const { items, state } = queue();
    items.push('a');
    const controller = new AbortController();
    const aborted = watch(state.drain(controller.signal));
    const other = watch(state.drain());
    assert.equal(state.drainWaiters, 2);
    controller.abort(new Error('stop'));
    await nextTurn();
    assert.equal(aborted().state, 'rejected');
    assert.equal(state.drainWaiters, 1);
    items.pop();
    state.wake();
    await nextTurn();
    assert.equal(other().state, 'fulfilled');
    await assert.rejects(state.drain(AbortSignal.abort(new Error('already'))), /already/);
  });

  it('close drains, then closes; every call shares one promise; work added while draining counts', async () => {
    const { items, state } = queue();
    items.push('a');
    const first = state.close();
    assert.equal(state.close(), first);
    await nextTurn();
    assert.equal(state.status, 'closing');
    items.push('b'); // accepted while draining
    items.length = 0;
    state.wake();
    await first;
    assert.equal(state.status, 'closed');
    assert.equal(state.closed, true);
    await state.close();
  });

  it('closeNow closes at once, without draining', () => {
    const { items, state } = queue();
    items.push('a');
    state.closeNow();
    assert.equal(state.closed, true);
  });
});
