/**
 * Seeded randomness, so that a test, benchmark or workload that found a problem replays from its
 * seed: the same sequence on every platform (32-bit integer arithmetic), floats in [0, 1), not for
 * cryptography.
 * Users get both helpers from `dmabuf/testing`.
 *
 * @example
 * ```ts
 * import { seededRandom, shuffle } from 'dmabuf/testing';
 * const random = seededRandom(42);
 * console.log(shuffle([1, 2, 3, 4], random)); // the same order every run
 * ```
 */

import { invalidArgument, requiredFunction } from './options.js';

/**
 * mulberry32: a tiny, fast PRNG with a 32-bit state.
 * @throws {InvalidArgumentError} unless `seed` is an integer (it is taken modulo 2^32).
 */
export function seededRandom(seed: number): () => number {
  if (typeof seed !== 'number' || !Number.isInteger(seed)) {
    throw invalidArgument('seededRandom', 'seed', seed, 'an integer (taken modulo 2^32)');
  }
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Fisher–Yates shuffle of `items` in place, drawing from `random`; returns `items`. */
export function shuffle<T>(items: T[], random: () => number): T[] {
  if (!Array.isArray(items)) throw invalidArgument('shuffle', 'items', items, 'an array');
  requiredFunction(random, 'shuffle', 'random');
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}
