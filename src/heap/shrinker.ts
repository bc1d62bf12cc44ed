/**
 * Shrinkers: caches that give memory back when asked.
 *
 * Overview: a cache that holds memory it could free (a page pool, a list of buffers waiting to
 * be freed) registers a {@link Shrinker} with a {@link ShrinkerRegistry}. The shrinker answers
 * two questions, both in 4 KiB pages: `count()`, how much could be
 * freed now, and `scan(n)`, free up to about `n` and say how much was freed. When an allocation
 * runs short, its owner calls {@link ShrinkerRegistry.shrink} with the number of pages it needs.
 *
 * Models `mm/shrinker.c` (`shrinker_alloc()`/`shrinker_register()`, `shrink_slab()` and
 * `do_shrink_slab()`), reduced to one node and no memory cgroups, with no priority ladder:
 * - {@link ShrinkerRegistry.shrink} visits shrinkers in registration order; each one is scanned
 *   in batches of at most `batch` pages (the last batch smaller: it never asks for more than the
 *   rest of the target or more than the shrinker's count) for as long as it still reports
 *   something to free, the last scan freed something, and the target is not met. `Infinity` as
 *   the target empties every shrinker.
 * - `seeks` (how costly an object is to recreate; the kernel's `DEFAULT_SEEKS` is 2) only matters
 *   for a general reduction, {@link ShrinkerRegistry.shrinkPass}: each shrinker is asked for
 *   `ceil(count / seeks)` pages, as `do_shrink_slab()` divides the work it asks of a shrinker
 *   by its seeks. So `seeks: 1` gives up everything in one pass, `seeks: 2` half of it.
 *
 * Contract:
 * - Reclaim may wait for fences: `shrink` and `shrinkPass` report `mightReclaim()` to the
 *   validator before anything else, so reclaiming inside a fence signalling section is a report.
 * - Reclaim does not recurse: a `shrink` or `shrinkPass` called from inside a `scan` (an
 *   allocation made while freeing) frees nothing and returns 0, as the kernel's `PF_MEMALLOC`
 *   keeps reclaim from re-entering itself.
 * - `count()` and `scan()` must return non-negative finite numbers; anything else is a
 *   {@link BugError} naming the shrinker. `scan` may free more than it was asked for (a cache of
 *   large objects frees whole objects); the registry adds up what was really freed.
 * - A shrinker is registered at most once per registry; disposing the returned handle
 *   unregisters it (idempotent), also while a shrink is running: it is not scanned again.
 *
 * @example
 * ```ts
 * import { Shrinker, ShrinkerRegistry } from 'dmabuf';
 * let cached = 300;
 * const registry = new ShrinkerRegistry();
 * using _registration = registry.register(
 *   new Shrinker('example-cache', {
 *     count: () => cached,
 *     scan: (n) => { const freed = Math.min(n, cached); cached -= freed; return freed; },
 *   }),
 * );
 * console.log(registry.shrink(200), cached); // 200 100 (batches of 128 and 72)
 * ```
 */

import { BugError, describeValue } from '../base/errors.js';
import {
  defineOptions,
  invalidArgument,
  optionalPositiveInteger,
  requiredIndex,
  requiredString,
} from '../base/options.js';
import { mightReclaim } from '../locking/lockdep.js';

/** What a cache tells the registry. @see struct shrinker (count_objects, scan_objects) */
export interface ShrinkerOps {
  /** Pages that could be freed now (0 = nothing). */
  count(): number;
  /** Frees up to about `nrToScan` pages; returns the pages really freed. */
  scan(nrToScan: number): number;
}

/** Options for a {@link Shrinker}. */
export interface ShrinkerOptions {
  /** Cost of recreating an object, see the module doc (default 2, the kernel's `DEFAULT_SEEKS`). */
  readonly seeks?: number;
  /** Most pages asked of one `scan` call (default 128, the kernel's `SHRINK_BATCH`). */
  readonly batch?: number;
}

const parseOptions = defineOptions('Shrinker', { seeks: optionalPositiveInteger, batch: optionalPositiveInteger });

/** The kernel's `DEFAULT_SEEKS`. */
export const DEFAULT_SEEKS = 2;
/** The kernel's `SHRINK_BATCH`. */
export const SHRINK_BATCH = 128;

/**
 * One cache's count/scan pair, with its name for messages and its scan parameters.
 * @see shrinker_alloc()
 */
export class Shrinker {
  readonly name: string;
  readonly seeks: number;
  readonly batch: number;
  readonly #ops: ShrinkerOps;

  /**
   * @throws {InvalidArgumentError} for a non-string name, ops without count/scan, or a non-positive `seeks`
   * or `batch`.
   */
  constructor(name: string, ops: ShrinkerOps, options?: ShrinkerOptions) {
    this.name = requiredString(name, 'Shrinker', 'name');
    if (typeof ops?.count !== 'function' || typeof ops.scan !== 'function') {
      throw invalidArgument('Shrinker', 'ops', ops, 'an object with count() and scan() functions');
    }
    const { seeks, batch } = parseOptions(options);
    this.#ops = ops;
    this.seeks = seeks ?? DEFAULT_SEEKS;
    this.batch = batch ?? SHRINK_BATCH;
  }

  /** Calls `count()`, checking what it returns. */
  count(): number {
    return this.#checked('count()', this.#ops.count());
  }

  /** Calls `scan(nrToScan)`, checking what it returns. */
  scan(nrToScan: number): number {
    requiredIndex(nrToScan, 'Shrinker.scan', 'nrToScan');
    return this.#checked(`scan(${nrToScan})`, this.#ops.scan(nrToScan));
  }

  toString(): string {
    return `shrinker "${this.name}"`;
  }

  #checked(what: string, value: unknown): number {
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
      throw new BugError(
        `${this} returned ${describeValue(value)} from ${what}; it must return a non-negative page count`,
      );
    }
    return value;
  }
}

/**
 * The shrinkers of one memory domain (a heap, a device), scanned in registration order.
 * @see shrink_slab()
 */
export class ShrinkerRegistry {
  #shrinkers: Shrinker[] = [];
  #reclaiming = false;

  /**
   * Adds `shrinker` after the ones already registered.
   * @returns a handle whose disposal unregisters it. @see shrinker_register()
   * @throws {BugError} when it is already registered here.
   */
  register(shrinker: Shrinker): Disposable {
    if (!(shrinker instanceof Shrinker))
      throw invalidArgument('ShrinkerRegistry.register', 'shrinker', shrinker, 'a Shrinker');
    if (this.#shrinkers.includes(shrinker)) {
      throw new BugError(`${shrinker} is already registered; dispose its registration before registering it again`);
    }
    this.#shrinkers = [...this.#shrinkers, shrinker];
    let registered = true;
    return {
      [Symbol.dispose]: (): void => {
        if (!registered) return;
        registered = false;
        // A new array, so a shrink in progress keeps iterating its own snapshot.
        this.#shrinkers = this.#shrinkers.filter((s) => s !== shrinker);
      },
    };
  }

  /** The registered shrinkers, in registration (and scan) order. */
  get shrinkers(): readonly Shrinker[] {
    return this.#shrinkers;
  }

  /** Pages all shrinkers could free now. */
  count(): number {
    let total = 0;
    for (const s of this.#shrinkers) total += s.count();
    return total;
  }

  /**
   * Frees at least `pages` pages if the shrinkers can, visiting them in registration order and
   * scanning each in batches (see the module doc). `Infinity` empties every shrinker.
   * @returns pages freed: may exceed `pages` (whole objects), or fall short when nothing is left.
   * @throws {InvalidArgumentError} when `pages` is not a non-negative integer or Infinity.
   */
  shrink(pages: number): number {
    const target = pages === Infinity ? Infinity : requiredIndex(pages, 'ShrinkerRegistry.shrink', 'pages');
    mightReclaim();
    return this.#reclaim(() => {
      let freed = 0;
      for (const s of this.#shrinkers) {
        if (freed >= target) break;
        freed += this.#scanUpTo(s, target - freed);
      }
      return freed;
    });
  }

  /**
   * A general reduction: each shrinker, in registration order, is asked for `ceil(count / seeks)`
   * of its pages, in batches. Call it on a memory-pressure signal that names no amount.
   * @returns pages freed.
   */
  shrinkPass(): number {
    mightReclaim();
    return this.#reclaim(() => {
      let freed = 0;
      for (const s of this.#shrinkers) {
        if (!this.#shrinkers.includes(s)) continue;
        const share = Math.ceil(s.count() / s.seeks);
        if (share > 0) freed += this.#scanUpTo(s, share);
      }
      return freed;
    });
  }

  #reclaim(fn: () => number): number {
    if (this.#reclaiming) return 0;
    this.#reclaiming = true;
    try {
      return fn();
    } finally {
      this.#reclaiming = false;
    }
  }

  /** Scans `s` in batches until `target` pages are freed, it has nothing left, or it makes no progress. */
  #scanUpTo(s: Shrinker, target: number): number {
    let freed = 0;
    // Unregistered meanwhile (by a scan, say): leave it alone.
    while (freed < target && this.#shrinkers.includes(s)) {
      const available = s.count();
      if (available <= 0) break;
      const nr = Math.min(s.batch, target - freed, available);
      const got = s.scan(nr);
      if (got <= 0) break;
      freed += got;
    }
    return freed;
  }
}
