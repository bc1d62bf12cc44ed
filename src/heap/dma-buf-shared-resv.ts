/**
 * dma-buf-shared-resv: the implicit fences of a buffer shared between threads, in shared memory.
 *
 * Overview: a shared buffer's control block (a `SharedArrayBuffer` that travels in its
 * descriptor) holds a small header (mapping generation, static pins, open imports, the
 * revocation) and one fence table per party: the exporter is party 0, each import claims the
 * next index. A {@link SharedResvParty} is one party's view: it publishes this thread's fences
 * into its own table with their usage, finds the other parties' pending fences by usage, and
 * brackets CPU accesses (wait for the others' conflicting fences, publish the access as a fence,
 * look again: the later-joined party withdraws and retries, wait-die). The exporter's and the
 * importers' classes (`dma-buf-export.ts`, `dma-buf-import.ts`) are built on it; see the former
 * for the whole design and where it differs from the kernel's single `dma_resv`.
 *
 * Models the shared `dma_resv` of a `dma_buf` (`dma_resv_add_fence()` with usages,
 * `dma_resv_get_fences()`, `dma_resv_wait_timeout()`), split into one table per thread.
 *
 * Contract:
 * - A party writes only its own table; tables of parties that have not claimed theirs yet are
 *   skipped.
 * - Watchers of other parties' fences hold no import rights (see `watchSharedFences`), so a
 *   party that never looks holds nothing up.
 * - A failed access (timeout, abort) leaves nothing published.
 *
 * @example
 * ```ts
 * import { DmaHeap, shareDmaBuf, importDmaBuf, DmaResvUsage } from 'dmabuf';
 * await using heap = new DmaHeap({ shared: true });
 * using buf = heap.allocate(4096);
 * using share = shareDmaBuf(buf);
 * using view = importDmaBuf(share.descriptor());
 * await view.beginCpuAccess({ write: true }); // published in the import's table
 * console.log(share.remoteFences(DmaResvUsage.Write).length); // 1: the exporter sees it
 * view.endCpuAccess();
 * ```
 */

import { DmaBufError, FenceTimeoutError } from '../base/errors.js';
import { getClock } from '../base/clock.js';
import { DmaFence, fenceContextAlloc, type DmaFenceOps } from '../fence/dma-fence.js';
import {
  ImportedFence,
  SharedFenceRegion,
  isSharedFenceRegion,
  sharedFenceRegionBytes,
  watchSharedFences,
} from '../fence/shared-fence.js';
import { errnoCode } from '../fence/shared-wait.js';
import { DmaResv, DmaResvUsage } from '../resv/dma-resv.js';

// Control block: a header of 16 words, then one fence region per party.
export const C_WAKE = 0; // bumped when imports come and go, and at revoke
export const C_GENERATION = 1; // the current mapping's generation
export const C_PINS = 2; // static attachments
export const C_ATTACHED = 3; // imports not closed yet
export const C_PARTIES = 4; // parties claimed (the exporter is 0)
export const C_MAGIC = 5;
export const C_REVOKED = 6; // errno every import fails with; 0 while the memory lives
export const C_CLOSED = 7; // no new imports
export const C_ID = 8;
export const HEADER_BYTES = 64;
export const MAGIC = 0x64_6d_62_31; // 'dmb1'

/** Parties per share: the exporter and seven imports. */
export const MAX_DMA_BUF_PARTIES = 8;
export const PARTY_SLOTS = 64;
export const PARTY_BYTES = sharedFenceRegionBytes(PARTY_SLOTS);
export const CONTROL_BYTES = HEADER_BYTES + MAX_DMA_BUF_PARTIES * PARTY_BYTES;

export function partyOffset(index: number): number {
  return HEADER_BYTES + index * PARTY_BYTES;
}

/** A mapping on the share's channel: where generation `generation` of the buffer is. */
export interface MappingMessage {
  readonly kind: 'mapping';
  readonly generation: number;
  readonly buffer: SharedArrayBuffer;
  readonly offset: number;
}

/** An importer that joined after a move asks for the current mapping. */
export interface WantMessage {
  readonly kind: 'want';
}

/** Options of CPU access brackets. */
export interface AccessOptions {
  readonly timeout?: number | undefined;
  readonly signal?: AbortSignal | undefined;
}

/** The parts of a `MessagePort` used here (Node's ports can also be (un)ref'ed). */
export interface MessagePortLike {
  postMessage(message: unknown): void;
  close(): void;
  onmessage: ((event: { readonly data: unknown }) => void) | null;
  ref?(): void;
  unref?(): void;
}

/** The importer is done: the exporter forgets its port. */
export interface ByeMessage {
  readonly kind: 'bye';
}

/** A new `MessageChannel`; its ports do not keep a Node process alive by themselves. */
export function messageChannel(): { port1: MessagePortLike; port2: MessagePortLike } {
  const Ctor = (
    globalThis as unknown as { MessageChannel?: new () => { port1: MessagePortLike; port2: MessagePortLike } }
  ).MessageChannel;
  if (Ctor === undefined) {
    throw new DmaBufError('EOPNOTSUPP', 'dma-buf sharing needs MessageChannel (browsers, Node 15 and later)');
  }
  return new Ctor();
}

export const accessOps: DmaFenceOps = Object.freeze({
  getDriverName: () => 'dma-buf',
  getTimelineName: () => 'cpu-access',
});

/**
 * One party's view of the shared implicit fences: its own table to publish into, the others'
 * tables to wait on, and its local reservation object. Used by both sides.
 */
export class SharedResvParty {
  readonly control: Int32Array;
  readonly buffer: SharedArrayBuffer;
  readonly index: number;
  readonly name: string;
  readonly resv: DmaResv;
  readonly #region: SharedFenceRegion;
  readonly #published = new WeakSet<DmaFence>();
  readonly #accessContext = fenceContextAlloc();
  #accessSeqno = 0;
  readonly #accesses: DmaFence[] = [];

  constructor(buffer: SharedArrayBuffer, index: number, name: string, resv: DmaResv) {
    this.buffer = buffer;
    this.control = new Int32Array(buffer, 0, HEADER_BYTES / 4);
    this.index = index;
    this.name = name;
    this.resv = resv;
    this.#region = new SharedFenceRegion({ slots: PARTY_SLOTS, buffer, byteOffset: partyOffset(index) });
  }

  /** The error the share was revoked with, or undefined. */
  revoked(): DmaBufError | undefined {
    const errno = Atomics.load(this.control, C_REVOKED);
    if (errno === 0) return undefined;
    const code = errnoCode(errno) ?? 'EIO';
    return new DmaBufError(code, `${this.name}: the exporter revoked the share (${code}); the memory may be gone`);
  }

  /** Publishes `fence` for the other parties with `usage`. @returns false when it was already published or done. */
  publish(fence: DmaFence, usage: DmaResvUsage): boolean {
    if (this.#published.has(fence) || fence.isSignaled() || (fence instanceof ImportedFence && fence.watcher))
      return false;
    if (this.#region.tryExport(fence, 0, undefined, usage + 1) === undefined) {
      throw new DmaBufError(
        'ENOSPC',
        `${this.name}: ${PARTY_SLOTS} published fences of this thread ` +
          `are still pending; wait for some before publishing more`,
      );
    }
    this.#published.add(fence);
    return true;
  }

  /** Publishes every unsignaled fence of the local reservation object (bookkeeping ones aside). */
  publishResv(): number {
    let count = 0;
    for (const { fence, usage } of this.resv.fencesUnlocked(DmaResvUsage.Read)) {
      if (this.publish(fence, usage)) count++;
    }
    return count;
  }

  /** The other parties' pending fences with usage <= `usage`, with the party each came from. */
  remote(usage: DmaResvUsage): { fence: ImportedFence; party: number }[] {
    const parties = Math.min(Atomics.load(this.control, C_PARTIES), MAX_DMA_BUF_PARTIES);
    const out: { fence: ImportedFence; party: number }[] = [];
    for (let party = 0; party < parties; party++) {
      if (party === this.index || !isSharedFenceRegion(this.buffer, partyOffset(party))) continue;
      for (const fence of watchSharedFences(this.buffer, partyOffset(party), (tag) => tag > 0 && tag - 1 <= usage)) {
        out.push({ fence, party });
      }
    }
    return out;
  }

  /** Brings the other parties' pending fences into the local reservation object. */
  async pull(options?: AccessOptions): Promise<number> {
    if (this.remote(DmaResvUsage.Read).length === 0) return 0;
    await this.resv.lock(null, options?.signal === undefined ? undefined : { signal: options.signal });
    try {
      return this.pullLocked();
    } finally {
      this.resv.unlock();
    }
  }

  /** {@link pull} for a caller holding the reservation lock. */
  pullLocked(): number {
    const entries = this.remote(DmaResvUsage.Read);
    if (entries.length === 0) return 0;
    this.resv.reserveFences(entries.length);
    for (const { fence } of entries) this.resv.addFence(fence, (fence.tag - 1) as DmaResvUsage);
    return entries.length;
  }

  /**
   * Waits until the access may start, in every thread, then publishes it as a fence (see the
   * module overview for the retry). @throws rejects with FenceTimeoutError or `signal.reason`.
   */
  async beginAccess(write: boolean, options: AccessOptions): Promise<void> {
    const usage = DmaResv.usageRw(write);
    // Callers parsed the options (the public brackets); Infinity means no limit there too.
    const limit = options.timeout === Infinity ? undefined : options.timeout;
    const clock = getClock();
    const deadline = limit === undefined ? undefined : clock.now() + limit;
    const waited = new Set<string>();
    for (;;) {
      const revoked = this.revoked();
      if (revoked !== undefined) throw revoked;
      const before = this.remote(usage);
      for (const r of before) waited.add(`${r.party}:${r.fence.slot}:${r.fence.generation}`);
      await this.#waitAll(
        before.map((r) => r.fence),
        usage,
        deadline,
        options.signal,
        write,
        true,
      );
      const access = new DmaFence(accessOps, this.#accessContext, ++this.#accessSeqno);
      this.publish(access, write ? DmaResvUsage.Write : DmaResvUsage.Read);
      // Conflicting work published meanwhile: a party that joined earlier goes first (we withdraw
      // and start over); one that joined later sees ours and withdraws or waits, so we wait.
      const raced = this.remote(usage).filter((r) => !waited.has(`${r.party}:${r.fence.slot}:${r.fence.generation}`));
      if (raced.some((r) => r.party < this.index)) {
        access.signal();
        continue;
      }
      try {
        await this.#waitAll(
          raced.map((r) => r.fence),
          usage,
          deadline,
          options.signal,
          write,
          false,
        );
      } catch (err) {
        access.signal();
        throw err;
      }
      this.#accesses.push(access);
      return;
    }
  }

  endAccess(): void {
    this.#accesses.pop()?.signal();
  }

  /** CPU accesses begun and not ended, of this party. */
  get openAccesses(): number {
    return this.#accesses.length;
  }

  async #waitAll(
    remote: readonly DmaFence[],
    usage: DmaResvUsage,
    deadline: number | undefined,
    signal: AbortSignal | undefined,
    write: boolean,
    local: boolean,
  ): Promise<void> {
    const clock = getClock();
    const left = (): number | undefined => (deadline === undefined ? undefined : Math.max(0, deadline - clock.now()));
    const options = (): { timeout?: number; signal?: AbortSignal } => {
      const o: { timeout?: number; signal?: AbortSignal } = {};
      const t = left();
      if (t !== undefined) o.timeout = t;
      if (signal !== undefined) o.signal = signal;
      return o;
    };
    const timedOut = (pending: number): FenceTimeoutError =>
      new FenceTimeoutError(
        `${this.name}: the fences a CPU ${write ? 'write' : 'read'} must wait for did not signal in time ` +
          `(${pending} pending, in this or other threads); retry later or raise the timeout`,
      );
    if (local && !(await this.resv.wait({ usage, ...options() }))) throw timedOut(this.resv.getFences(usage).length);
    for (const fence of remote) {
      if (!(await fence.wait(options()))) throw timedOut(remote.filter((f) => !f.signaledFlag).length);
    }
  }
}

/** An import goes away: the exporter may drop the buffer when it was the last. */
export function leave(control: Int32Array): void {
  Atomics.sub(control, C_ATTACHED, 1);
  Atomics.add(control, C_WAKE, 1);
  Atomics.notify(control, C_WAKE);
}
