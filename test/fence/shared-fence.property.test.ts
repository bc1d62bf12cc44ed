/**
 * Property tests: a small fence region and a shared timeline against plain models.
 *
 * Region: a region of 3 slots, random exports (1 or 2 import rights), imports of any descriptor
 * ever made (valid, used up, or stale after the slot was reused), signals with or without an
 * errno, polls and watchers. The model remembers, per descriptor, the exported fence and the
 * rights left. Properties: an import succeeds exactly when the model has a right left for a
 * descriptor whose slot still holds it (else `EBADF`, nothing changes); an imported fence is
 * signalled, once polled, exactly when its exported fence is, with the same errno; an export
 * fails with `ENOSPC` only when every slot is held (by an unsignalled export, or an import not
 * yet seen signalled); watchers see exactly the pending exports.
 *
 * Timeline: random signals, fails and point fences. The model is the counter and the failure.
 * Properties: `signal` returns whether the model's counter moved; every point fence ends
 * signalled iff its point is reached or the timeline failed, with the failure's errno exactly
 * when the point was not reached before the failure.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DmaBufError, type ErrnoCode } from '../../src/base/errors.js';
import type { DmaFence } from '../../src/fence/dma-fence.js';
import {
  type ImportedFence,
  SharedFenceRegion,
  type SharedFenceDescriptor,
  exportFence,
  importFence,
  watchSharedFences,
} from '../../src/fence/shared-fence.js';
import { SharedTimeline, type SharedTimelinePoint } from '../../src/fence/shared-timeline.js';
import { mockFence, testSeed } from '../helpers/mock-fence.js';

const CODES: readonly ErrnoCode[] = ['EIO', 'ENODEV', 'ETIMEDOUT'];

function codeOf(fence: DmaFence): string {
  const error = fence.error;
  return error === undefined ? '' : error instanceof DmaBufError ? error.code : 'not a DmaBufError';
}

async function check(property: fc.IAsyncPropertyWithHooks<[unknown]> | fc.IAsyncProperty<[unknown]>): Promise<void> {
  const seed = testSeed();
  try {
    await fc.assert(property, { seed, numRuns: 150 });
  } catch (err) {
    throw new Error(`seed ${seed} (rerun with TEST_SEED=${seed}): ${(err as Error).message}`, { cause: err });
  }
}

type RegionCommand =
  | { readonly kind: 'export'; readonly importers: 1 | 2 }
  | { readonly kind: 'import'; readonly pick: number }
  | { readonly kind: 'signal'; readonly pick: number; readonly code: number }
  | { readonly kind: 'poll' }
  | { readonly kind: 'watch' };

const regionCommand: fc.Arbitrary<RegionCommand> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({ kind: fc.constant('export' as const), importers: fc.constantFrom(1 as const, 2 as const) }),
  },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('import' as const), pick: fc.nat() }) },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('signal' as const),
      pick: fc.nat(),
      code: fc.integer({ min: -2, max: 2 }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('poll' as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('watch' as const) }) },
);

interface Exported {
  readonly fence: DmaFence;
  readonly descriptor: SharedFenceDescriptor;
  rights: number;
  readonly imports: ImportedFence[];
}

describe('shared fences against a model (fast-check)', () => {
  it('a 3-slot region: imports, rights, reuse, errnos and watchers follow the model', async () => {
    await check(
      fc.asyncProperty(fc.array(regionCommand, { maxLength: 60 }), async (commands) => {
        const region = new SharedFenceRegion({ slots: 3 });
        const all: Exported[] = [];
        // A slot is held while its export is unsignalled or an import of it has not seen the signal.
        const held = (e: Exported): boolean =>
          !e.fence.signaledFlag || e.rights > 0 || e.imports.some((f) => !f.signaledFlag);
        const live = (): Exported[] => {
          // The region keeps a slot while anything holds it; the newest export of a slot wins.
          const bySlot = new Map<number, Exported>();
          for (const e of all) bySlot.set(e.descriptor.slot, e);
          return [...bySlot.values()].filter(held);
        };
        for (const command of commands) {
          switch (command.kind) {
            case 'export': {
              const fence = mockFence();
              const full = live().length === 3;
              let descriptor: SharedFenceDescriptor;
              try {
                descriptor = exportFence(fence, { region, importers: command.importers });
              } catch (err) {
                assert.ok(full && err instanceof DmaBufError && err.code === 'ENOSPC', `export refused: ${err}`);
                break;
              }
              assert.ok(!full, 'an export succeeded although every slot is held');
              all.push({ fence, descriptor, rights: command.importers, imports: [] });
              break;
            }
            case 'import': {
              if (all.length === 0) break;
              const e = all[command.pick % all.length]!;
              const current = all.filter((x) => x.descriptor.slot === e.descriptor.slot).at(-1) === e;
              const ok = current && e.rights > 0;
              try {
                const imported = importFence(e.descriptor);
                assert.ok(ok, 'an import succeeded without a right');
                e.rights--;
                e.imports.push(imported);
              } catch (err) {
                assert.ok(!ok && err instanceof DmaBufError && err.code === 'EBADF', `import refused: ${err}`);
              }
              break;
            }
            case 'signal': {
              const pending = all.filter((e) => !e.fence.signaledFlag);
              if (pending.length === 0) break;
              const e = pending[command.pick % pending.length]!;
              if (command.code >= 0) e.fence.setError(CODES[command.code]!);
              e.fence.signal();
              break;
            }
            case 'poll':
              for (const e of all) {
                for (const f of e.imports) {
                  assert.equal(f.isSignaled(), e.fence.signaledFlag, `${f.describe()} polls as its exported fence`);
                  if (f.signaledFlag) assert.equal(codeOf(f), codeOf(e.fence), 'the errno crossed');
                }
              }
              break;
            case 'watch': {
              const watched = watchSharedFences(region.buffer, 0, () => true).length;
              const pending = live().filter((e) => !e.fence.signaledFlag).length;
              assert.equal(watched, pending, 'watchers see exactly the pending exports');
              break;
            }
          }
        }
      }),
    );
  });

  type TimelineCommand =
    | { readonly kind: 'signal'; readonly delta: number }
    | { readonly kind: 'fail'; readonly code: number }
    | { readonly kind: 'fence'; readonly ahead: number };

  const timelineCommand: fc.Arbitrary<TimelineCommand> = fc.oneof(
    {
      weight: 5,
      arbitrary: fc.record({ kind: fc.constant('signal' as const), delta: fc.integer({ min: -2, max: 4 }) }),
    },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('fail' as const), code: fc.integer({ min: 0, max: 2 }) }) },
    {
      weight: 5,
      arbitrary: fc.record({ kind: fc.constant('fence' as const), ahead: fc.integer({ min: -3, max: 5 }) }),
    },
  );

  it('a shared timeline: the counter, the failure and every point fence follow the model', async () => {
    await check(
      fc.asyncProperty(fc.array(timelineCommand, { maxLength: 60 }), async (commands) => {
        const timeline = new SharedTimeline();
        let counter = 0;
        let failed: { code: ErrnoCode; at: number } | undefined;
        const points: { fence: SharedTimelinePoint; point: number }[] = [];
        for (const command of commands) {
          switch (command.kind) {
            case 'signal': {
              const point = Math.max(1, counter + command.delta);
              const moves = failed === undefined && point > counter;
              assert.equal(timeline.signal(point), moves, `signal(${point}) at ${counter}`);
              if (moves) counter = point;
              break;
            }
            case 'fail': {
              const code = CODES[command.code]!;
              assert.equal(timeline.fail(code), failed === undefined);
              failed ??= { code, at: counter };
              break;
            }
            case 'fence': {
              const point = Math.max(0, counter + command.ahead);
              points.push({ fence: timeline.fence(point), point });
              break;
            }
          }
          assert.equal(timeline.value, counter);
          assert.equal(timeline.error, failed?.code);
        }
        for (const { fence, point } of points) {
          const reached = point <= counter;
          assert.equal(fence.isSignaled(), reached || failed !== undefined, `point ${point} at ${counter}`);
          const expected = reached ? '' : (failed?.code ?? '');
          if (fence.signaledFlag) assert.equal(codeOf(fence), expected, `point ${point}: errno`);
        }
      }),
    );
  });
});
