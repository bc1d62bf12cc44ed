/**
 * The seeded plan of the cross-thread fence stress tests, shared by the test and its workers:
 * which fences fail with which errno, and the order and batches they are signalled in.
 */
import type { ErrnoCode } from '../../src/base/errors.js';
import { seededRandom, shuffle } from '../../src/base/random.js';
import type { DmaFence } from '../../src/fence/dma-fence.js';

/** What an importer saw: the errno name ('' for none) and the wall-clock timestamp. */
export type FenceOutcome = readonly [ErrnoCode | '', number];

const CODES: readonly ErrnoCode[] = ['EIO', 'ECANCELED', 'ETIMEDOUT', 'ENODEV'];

/** The errno each of `count` fences fails with ('' for success): about one in eight fails. */
export function expectedErrors(count: number, seed: number): (ErrnoCode | '')[] {
  const random = seededRandom(seed ^ 0x5eed);
  return Array.from({ length: count }, () => (random() < 0.125 ? CODES[Math.floor(random() * CODES.length)]! : ''));
}

/**
 * Signals `fences` in a seeded order, in seeded batches of 1..512 with a macrotask between
 * batches (so importers see many wakes, some covering one fence, some hundreds), with the
 * errors of {@link expectedErrors}. Resolves with what every importer must see.
 */
export async function signalInBatches(fences: readonly DmaFence[], seed: number): Promise<FenceOutcome[]> {
  const errors = expectedErrors(fences.length, seed);
  const random = seededRandom(seed);
  const order = shuffle(
    fences.map((_, i) => i),
    random,
  );
  let at = 0;
  while (at < order.length) {
    const batch = 1 + Math.floor(random() * random() * 512);
    for (const i of order.slice(at, at + batch)) {
      const code = errors[i]!;
      if (code !== '') fences[i]!.setError(code);
      fences[i]!.signal();
    }
    at += batch;
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
  return fences.map((f, i) => [errors[i]!, f.timestamp! + performance.timeOrigin]);
}
