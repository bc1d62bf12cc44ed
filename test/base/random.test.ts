import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { seededRandom, shuffle } from '../../src/base/random.js';

describe('seededRandom', () => {
  it('replays the same sequence for the same seed and differs for another', () => {
    const a = seededRandom(7);
    const b = seededRandom(7);
    const c = seededRandom(8);
    const sa = Array.from({ length: 5 }, a);
    assert.deepEqual(sa, Array.from({ length: 5 }, b));
    assert.notDeepEqual(sa, Array.from({ length: 5 }, c));
  });

  it('stays in [0, 1)', () => {
    const random = seededRandom(0xffffffff);
    for (let i = 0; i < 10_000; i++) {
      const x = random();
      assert.ok(x >= 0 && x < 1, `draw ${i} = ${x}`);
    }
  });
});

describe('shuffle', () => {
  it('permutes in place, deterministically per seed', () => {
    const items = Array.from({ length: 50 }, (_, i) => i);
    const once = shuffle(items.slice(), seededRandom(3));
    assert.deepEqual(
      once.slice().sort((x, y) => x - y),
      items,
      'a permutation',
    );
    assert.notDeepEqual(once, items, 'actually moved something');
    assert.deepEqual(shuffle(items.slice(), seededRandom(3)), once);
  });
});
