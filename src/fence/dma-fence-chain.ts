/**
 * dma-fence-chain: timeline points as a linked list of fences.
 *
 * Overview: a {@link DmaFenceChain} node is one point on a timeline. It wraps a payload fence
 * (the work submitted for that point) and links to the previous point. The node signals once
 * its payload and every earlier point have signaled, so waiting for point N waits for all work
 * up to N. Timeline syncobjs are built from these nodes.
 *
 * A chain of signaled nodes is still reachable from the head and keeps its memory alive, so
 * signaled links must be cut out: garbage collection. Two policies exist:
 * - `'walk'` (the kernel's, the default): every walk ({@link DmaFenceChain.walk}, iteration,
 *   lookups, enabling signaling, polling) splices signaled predecessors out as it passes.
 * - `'queue'` (proposed in seed 000, never merged): in addition, every node joins one global
 *   FIFO, and each node creation does one step of collection on the oldest queued node: splice
 *   one signaled link and requeue it, or drop it when the node itself is gone. The FIFO holds
 *   nodes weakly (`WeakRef`), the JavaScript analogue of the seed's "refcount is zero" test;
 *   a strong queue would keep every node alive for ever.
 * `bench/fence-chain.bench.ts` measures what each costs and how many signaled nodes stay reachable.
 *
 * Models `drivers/dma-buf/dma-fence-chain.c` and `include/linux/dma-fence-chain.h`.
 *
 * Contract:
 * - A node takes its predecessor's context when its seqno is later than the predecessor's;
 *   otherwise it starts a new context, and its seqno is raised to the predecessor's if lower.
 *   Chain seqnos are 64-bit (compared as plain integers).
 * - A payload is never itself a chain (flatten with `unwrapMerge` first): {@link BugError}.
 * - Iteration yields the head, always, then only predecessors whose payload is unsignaled.
 * - Walking may change `prev` of any node it passes; `prevSeqno` keeps the original value.
 * - The chain's own error is not derived from payload errors (as in the kernel).
 * - Nothing recurses per node: every walk is a loop, and a cascade of nodes signalling one
 *   another runs as a queue drained by the frame that started it, so a chain of any length
 *   builds, signals in any order and is collected in constant stack. A cascade completes before
 *   the `signal()` that started it returns (the kernel defers it to irq_work instead), and a
 *   node's timestamp is that of the signal that completed it.
 * - An armed node waits on its nearest armed pending predecessor node, or on a payload, so a
 *   timeline whose every point has a waiter signals in O(1) per node in any order.
 *
 * @example
 * ```ts
 * import { DmaFence, DmaFenceChain, fenceContextAlloc } from 'dmabuf';
 * const ops = { getDriverName: () => 'example', getTimelineName: () => 'jobs' };
 * const jobs = fenceContextAlloc();
 * const job1 = new DmaFence(ops, jobs, 1);
 * const job2 = new DmaFence(ops, jobs, 2);
 * const point1 = new DmaFenceChain(null, job1, 1);
 * const point2 = new DmaFenceChain(point1, job2, 2);
 * job2.signal();
 * console.log(point2.isSignaled()); // false: point 1 is still pending
 * job1.signal();
 * console.log(point2.isSignaled()); // true
 * const found = DmaFenceChain.findSeqno(point2, 1);
 * console.log(found.kind); // 'signaled': point 1 is done and was collected
 * ```
 */

import { BugError } from '../base/errors.js';
import { defineOptions, invalidArgument, oneOf, optional, requiredIndex } from '../base/options.js';
import { DmaFence, fenceContextAlloc, seqnoIsLater, type DmaFenceOps } from './dma-fence.js';

const parseInit = defineOptions('DmaFenceChain', { gc: optional(oneOf(['walk', 'queue'] as const)) });

function checkFence(fn: string, name: string, value: unknown): asserts value is DmaFence {
  if (!(value instanceof DmaFence)) throw invalidArgument(fn, name, value, 'a DmaFence');
}

/** How signaled links are collected: `'walk'` (kernel) or `'walk'` plus the seed's global `'queue'`. */
export type ChainGcPolicy = 'walk' | 'queue';

/** Options for a chain node. */
export interface DmaFenceChainInit {
  /** Garbage-collection policy; `'walk'` by default. */
  readonly gc?: ChainGcPolicy;
}

/**
 * The outcome of {@link DmaFenceChain.findSeqno}:
 * - `fence`: wait on this fence to wait for the point (a chain node, or a plain predecessor);
 * - `signaled`: the point has signaled and its nodes were collected (the kernel's NULL);
 * - `not-submitted`: no one has added the point yet, or the head is not a chain (`-EINVAL`).
 */
export type ChainLookup =
  | { readonly kind: 'fence'; readonly fence: DmaFence }
  | { readonly kind: 'signaled' }
  | { readonly kind: 'not-submitted' };

const SIGNALED: ChainLookup = Object.freeze({ kind: 'signaled' });
const NOT_SUBMITTED: ChainLookup = Object.freeze({ kind: 'not-submitted' });

/** What {@link DmaFenceChain.reachableStats} counts. */
export interface ChainReachableStats {
  /** Chain nodes reachable from the head through `prev`, the head included. */
  readonly nodes: number;
  /** Of those, nodes whose payload has signaled: garbage still holding memory. */
  readonly signaledNodes: number;
}

/**
 * The seed's global FIFO, as a queue with a moving head over an array (amortised O(1)).
 * Entries are weak so that the queue never keeps a node alive.
 */
class WeakFifo<T extends object> {
  #items: (WeakRef<T> | undefined)[] = [];
  #head = 0;

  get length(): number {
    return this.#items.length - this.#head;
  }

  push(ref: WeakRef<T>): void {
    this.#items.push(ref);
  }

  shift(): WeakRef<T> | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const ref = this.#items[this.#head];
    this.#items[this.#head++] = undefined;
    // Compact once the dead prefix dominates, so memory stays proportional to the length.
    if (this.#head >= 1024 && this.#head * 2 >= this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return ref;
  }
}

const gcQueue = new WeakFifo<DmaFenceChain>();

/**
 * Nodes woken during a running signal cascade, each followed by the time of the signal that woke
 * it, drained by the cascade's outermost frame (see `#wake`). Flat pairs: no object per wake-up.
 */
let cascade: (DmaFenceChain | number | undefined)[] | null = null;

/**
 * One timeline point: a payload fence linked to the previous point (`struct dma_fence_chain`).
 * @see dma_fence_chain_init()
 */
export class DmaFenceChain extends DmaFence {
  /** The payload: the work submitted for this point. Constant after construction. */
  readonly fence: DmaFence;
  /** The predecessor's seqno at construction (0 on a new context); garbage collection keeps it. */
  readonly prevSeqno: number;
  #prev: DmaFence | null;
  // Created on first enableSignaling only: most nodes are never armed, and a closure costs memory.
  #onWake: ((signaled: DmaFence) => void) | undefined = undefined;

  static readonly #ops: DmaFenceOps<DmaFenceChain> = Object.freeze({
    getDriverName: () => 'dma_fence_chain',
    getTimelineName: () => 'unbound',
    enableSignaling: (chain: DmaFenceChain) => chain.#arm(),
    signaled(chain: DmaFenceChain): boolean {
      for (let node: DmaFence | null = chain; node !== null; node = DmaFenceChain.walk(node)) {
        if (!DmaFenceChain.contained(node).isSignaled()) return false;
      }
      return true;
    },
    setDeadline(chain: DmaFenceChain, deadline: number): void {
      for (let node: DmaFence | null = chain; node !== null; node = DmaFenceChain.walk(node)) {
        DmaFenceChain.contained(node).setDeadline(deadline);
      }
    },
  });

  /**
   * @param prev the previous point (a chain node or a plain fence), or null for the first point.
   * @param fence the payload; must not be a chain.
   * @param seqno the point's number, a non-negative safe integer.
   * @throws {BugError} when `fence` is a chain.
   * @throws {InvalidArgumentError} when `fence` is not a fence, `prev` neither a fence nor null,
   *   or for a bad seqno or option.
   */
  constructor(prev: DmaFence | null, fence: DmaFence, seqno: number, init?: DmaFenceChainInit) {
    if (prev !== null && !(prev instanceof DmaFence))
      throw invalidArgument('DmaFenceChain', 'prev', prev, 'a DmaFence or null');
    checkFence('DmaFenceChain', 'fence', fence);
    requiredIndex(seqno, 'DmaFenceChain', 'seqno');
    const gc = init === undefined ? 'walk' : (parseInit(init).gc ?? 'walk');
    if (fence instanceof DmaFenceChain) {
      throw new BugError(
        `DmaFenceChain: the payload ${fence.describe()} is itself a chain; ` +
          `chains link only through prev. Flatten it with unwrapMerge() first`,
      );
    }
    // The kernel's placement rule: continue the predecessor's timeline only when moving forward.
    let context: number;
    let prevSeqno: number;
    if (prev instanceof DmaFenceChain && seqnoIsLater(seqno, prev.seqno, true)) {
      context = prev.context;
      prevSeqno = prev.seqno;
    } else {
      context = fenceContextAlloc(1);
      prevSeqno = 0;
      if (prev instanceof DmaFenceChain && prev.seqno > seqno) seqno = prev.seqno;
    }
    if (gc === 'queue') DmaFenceChain.#collectStep();
    // A point waits for its payload and every earlier point: long-running if any of them is.
    const longRunning = fence.isLongRunning || (prev?.isLongRunning ?? false);
    super(DmaFenceChain.#ops as DmaFenceOps, context, seqno, { seqno64: true, longRunning });
    this.fence = fence;
    this.prevSeqno = prevSeqno;
    this.#prev = prev;
    if (gc === 'queue') gcQueue.push(new WeakRef(this));
  }

  override get isContainer(): boolean {
    return true;
  }

  /** The current predecessor: what garbage collection has left of the original link. */
  get prev(): DmaFence | null {
    return this.#prev;
  }

  /**
   * Puts this node's wake-up callback on the newest pending point before it: on that point
   * itself when it is a chain node that is already armed (so that each node waits on its
   * neighbour and signalling in any order costs O(1) per node), else on its payload, as the
   * kernel does. This node's own payload comes first.
   * @returns false when every point up to this one has signaled.
   */
  #arm(): boolean {
    const onWake = (this.#onWake ??= (signaled) => DmaFenceChain.#wake(this, signaled.timestamp));
    for (let node: DmaFence | null = this; node !== null; node = DmaFenceChain.walk(node)) {
      const target =
        node !== this && node instanceof DmaFenceChain && node.signalingEnabled && !node.signaledFlag
          ? node
          : DmaFenceChain.contained(node);
      if (target.lrAddCallback(onWake)) return true;
    }
    return false;
  }

  /**
   * Re-arms or signals a woken node. Signalling a node wakes the nodes armed on it, which may
   * signal in turn: rather than recursing once per node (a stack overflow on a long chain),
   * wake-ups that happen inside a cascade are queued and run by its outermost frame, all before
   * the `signal()` that started the cascade returns.
   */
  static #wake(node: DmaFenceChain, timestamp: number | undefined): void {
    if (cascade !== null) {
      cascade.push(node, timestamp);
      return;
    }
    cascade = [node, timestamp];
    try {
      for (let i = 0; i < cascade.length; i += 2) {
        const next = cascade[i] as DmaFenceChain;
        // A node completes the moment its last dependency does: reuse that signal's time.
        if (!next.#arm()) next.signal(cascade[i + 1] as number | undefined);
      }
    } finally {
      cascade = null;
    }
  }

  /** `f` as a chain node, or null when it is not one. @see to_dma_fence_chain() */
  static toChain(f: unknown): DmaFenceChain | null {
    return f instanceof DmaFenceChain ? f : null;
  }

  /** The payload when `f` is a chain node, else `f` itself. @see dma_fence_chain_contained() */
  static contained(f: DmaFence): DmaFence {
    if (!(f instanceof DmaFence)) checkFence('DmaFenceChain.contained', 'f', f);
    return f instanceof DmaFenceChain ? f.fence : f;
  }

  /**
   * The next older point still worth visiting from `f`: predecessors whose payload has signaled
   * are spliced out of the list on the way (this is the garbage collection).
   * @returns null at the end of the chain, or when `f` is not a chain node.
   * @see dma_fence_chain_walk()
   */
  static walk(f: DmaFence): DmaFence | null {
    if (!(f instanceof DmaFenceChain)) {
      checkFence('DmaFenceChain.walk', 'f', f);
      return null;
    }
    while (DmaFenceChain.#spliceOnce(f));
    return f.#prev;
  }

  /**
   * Visits `head` (always), then each older point with an unsignaled payload, collecting
   * signaled links as it goes. Hot paths inside dmabuf spell this as a `walk` loop instead,
   * which costs a third of a generator step per node. @see dma_fence_chain_for_each()
   */
  static iterate(head: DmaFence): Generator<DmaFence, void, undefined> {
    checkFence('DmaFenceChain.iterate', 'head', head);
    return DmaFenceChain.#iterate(head);
  }

  static *#iterate(head: DmaFence): Generator<DmaFence, void, undefined> {
    let f: DmaFence | null = head;
    while (f !== null) {
      yield f;
      f = DmaFenceChain.walk(f);
    }
  }

  /**
   * Finds the fence to wait on for timeline point `seqno`, starting at `head`.
   * - seqno 0: a no-op, `{ kind: 'fence', fence: head }`.
   * - `head` is not a chain, or `seqno` is beyond it: `{ kind: 'not-submitted' }`.
   * - the point and everything before it signaled and were collected: `{ kind: 'signaled' }`.
   * - otherwise the oldest node that still covers the point (it may cover later points too,
   *   since waiting for a point means waiting for everything before it).
   * @see dma_fence_chain_find_seqno()
   */
  static findSeqno(head: DmaFence, seqno: number): ChainLookup {
    checkFence('DmaFenceChain.findSeqno', 'head', head);
    requiredIndex(seqno, 'DmaFenceChain.findSeqno', 'seqno');
    if (seqno === 0) return { kind: 'fence', fence: head };
    if (!(head instanceof DmaFenceChain) || head.seqno < seqno) return NOT_SUBMITTED;
    for (let node: DmaFence | null = head; node !== null; node = DmaFenceChain.walk(node)) {
      if (node.context !== head.context || !(node instanceof DmaFenceChain) || node.prevSeqno < seqno) {
        return { kind: 'fence', fence: node };
      }
    }
    return SIGNALED;
  }

  /**
   * Counts the chain nodes reachable from `head` through `prev`, and how many of them hold a
   * signaled payload, without collecting anything. For benchmarks and leak checks: O(length).
   */
  static reachableStats(head: DmaFence): ChainReachableStats {
    checkFence('DmaFenceChain.reachableStats', 'head', head);
    let nodes = 0;
    let signaledNodes = 0;
    for (let f: DmaFence | null = head; f instanceof DmaFenceChain; f = f.#prev) {
      nodes++;
      if (f.fence.signaledFlag) signaledNodes++;
    }
    return { nodes, signaledNodes };
  }

  /** Number of nodes in the global collection queue of the `'queue'` policy (live or not yet reclaimed). */
  static get gcQueueLength(): number {
    return gcQueue.length;
  }

  /**
   * Runs `steps` steps of the `'queue'` policy's collection now (each creation of a `'queue'`
   * node runs one). @returns the number of links spliced out.
   */
  static collectQueued(steps = 1): number {
    requiredIndex(steps, 'DmaFenceChain.collectQueued', 'steps');
    let spliced = 0;
    for (let i = 0; i < steps && gcQueue.length > 0; i++) spliced += DmaFenceChain.#collectStep();
    return spliced;
  }

  /** One step of the seed's collector: drop a reclaimed node, or splice one link and requeue it. */
  static #collectStep(): number {
    const ref = gcQueue.shift();
    if (ref === undefined) return 0;
    const chain = ref.deref();
    if (chain === undefined) return 0;
    gcQueue.push(ref);
    return DmaFenceChain.#spliceOnce(chain) ? 1 : 0;
  }

  /** Cuts out the predecessor when its payload (or it, if plain) has signaled. @returns true if it did. */
  static #spliceOnce(chain: DmaFenceChain): boolean {
    const prev = chain.#prev;
    if (prev === null) return false;
    if (prev instanceof DmaFenceChain) {
      if (!prev.fence.isSignaled()) return false;
      chain.#prev = prev.#prev;
    } else {
      if (!prev.isSignaled()) return false;
      chain.#prev = null;
    }
    return true;
  }
}
