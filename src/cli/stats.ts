/**
 * Samples: latencies (or any values) kept exactly, for quantiles and a log-scale histogram.
 *
 * Overview: a scenario adds one number per event (an allocation's latency, a frame's) into a
 * {@link Samples}; at the end it asks for p50/p99 and a {@link Histogram} for the report. Adding
 * is an array store (no bucketing, no sorting) so measuring costs the measured code as little as
 * possible; the sort happens once, on the first quantile asked after the last add.
 *
 * Contract:
 * - `quantile(q)` is the nearest-rank quantile: the smallest sample with at least `q` of the
 *   samples at or below it; `NaN` when there are none.
 * - `histogram()` puts every sample in exactly one bucket; buckets are contiguous, each `2^(1/4)`
 *   times wider than the one before (four per doubling), from the smallest to the largest sample.
 *
 * @example
 * ```ts
 * import { Samples } from './stats.js';
 * const s = new Samples();
 * for (const v of [5, 1, 4, 2, 3]) s.add(v);
 * console.log(s.quantile(0.5), s.max, s.histogram().counts.reduce((a, b) => a + b)); // 3 5 5
 * ```
 */

/** Buckets per doubling of the histogram: fine enough to see a p99 tail move. */
const BUCKETS_PER_DOUBLING = 4;

/** Counts of samples in contiguous buckets `[edges[i], edges[i + 1])`. */
export interface Histogram {
  /** `counts.length + 1` bucket edges, increasing. */
  readonly edges: readonly number[];
  readonly counts: readonly number[];
}

/** A growing list of numbers with order statistics. */
export class Samples {
  #values = new Float64Array(1024);
  #count = 0;
  #sum = 0;
  #sorted = true;

  add(value: number): void {
    if (this.#count === this.#values.length) {
      const grown = new Float64Array(this.#values.length * 2);
      grown.set(this.#values);
      this.#values = grown;
    }
    this.#values[this.#count++] = value;
    this.#sum += value;
    this.#sorted = false;
  }

  get count(): number {
    return this.#count;
  }

  get mean(): number {
    return this.#count === 0 ? Number.NaN : this.#sum / this.#count;
  }

  get max(): number {
    return this.#count === 0 ? Number.NaN : this.#view()[this.#count - 1]!;
  }

  get min(): number {
    return this.#count === 0 ? Number.NaN : this.#view()[0]!;
  }

  /** Nearest-rank quantile, `q` in [0, 1]. */
  quantile(q: number): number {
    if (this.#count === 0) return Number.NaN;
    const rank = Math.min(this.#count, Math.max(1, Math.ceil(q * this.#count)));
    return this.#view()[rank - 1]!;
  }

  /** The samples in log-scale buckets (see the module contract); empty without samples. */
  histogram(): Histogram {
    if (this.#count === 0) return { edges: [], counts: [] };
    const sorted = this.#view();
    const step = 2 ** (1 / BUCKETS_PER_DOUBLING);
    // Edges sit on the grid 2^(k/4), so two runs' histograms of the same unit line up.
    const floor = Math.max(sorted[0]!, 1e-3);
    let edge = 2 ** (Math.floor(Math.log2(floor) * BUCKETS_PER_DOUBLING) / BUCKETS_PER_DOUBLING);
    const edges = [edge];
    const counts: number[] = [];
    let i = 0;
    while (i < this.#count) {
      const next = edge * step;
      let n = 0;
      while (i < this.#count && sorted[i]! < next) {
        n++;
        i++;
      }
      counts.push(n);
      edges.push(next);
      edge = next;
    }
    return { edges, counts };
  }

  #view(): Float64Array {
    const view = this.#values.subarray(0, this.#count);
    if (!this.#sorted) {
      view.sort();
      this.#sorted = true;
    }
    return view;
  }
}
