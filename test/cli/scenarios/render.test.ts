// The render scenario on the soft device: clients' frames through DrmExec, the scheduler and
// implicit sync, checked by a compositor worker; each knob value, the checks' teeth, and Ctrl-C.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { runScenarios } from '../../../src/cli/runner.js';
import type { ProgressView } from '../../../src/cli/progress.js';
import type { VariantResult } from '../../../src/cli/run-result.js';
import { KNOBS } from '../../../src/cli/scenario.js';
import {
  checkFrame,
  drawFrame,
  fillTexture,
  frameKey,
  FRAME_MAGIC,
} from '../../../src/cli/scenarios/render-pattern.js';
import {
  createRender,
  jainIndex,
  maxMinShares,
  render,
  RENDER_CLIENT_KINDS,
} from '../../../src/cli/scenarios/render.js';
import { toTraceJson } from '../../../src/cli/trace.js';
import { traceProblems } from '../../helpers/trace-check.js';

const MiB = 1024 * 1024;
const SHORT = { seed: 3, budgetBytes: 16 * MiB, durationMs: 400, device: 'soft' as const, clients: 4 };

function metricOf(v: VariantResult): (key: string) => number {
  return (key) => {
    const m = v.metrics.find((x) => x.key === key);
    assert.ok(m !== undefined, `metric ${key} of ${v.label}`);
    return m.value;
  };
}

/** Everything a successful variant must show. */
function assertSane(v: VariantResult, clients: number): void {
  assert.equal(v.status, 'ok', v.error);
  const metric = metricOf(v);
  let frames = 0;
  let share = 0;
  for (let c = 0; c < clients; c++) {
    const n = metric(`frames_c${c}`);
    assert.ok(n > 0, `client ${c} had frames composited in ${v.label}`);
    frames += n;
    const [p50, p99] = [metric(`latency_p50_c${c}`), metric(`latency_p99_c${c}`)];
    assert.ok(p50 > 0 && Number.isFinite(p99) && p99 >= p50, `client ${c} latency p50 ${p50} p99 ${p99}`);
    share += metric(`gpu_share_c${c}`);
  }
  assert.equal(metric('frames'), frames, 'the total is the sum of the clients');
  assert.ok(Math.abs(share - 100) < 0.5, `gfx shares add up to 100 %, got ${share}`);
  for (const engine of ['gfx', 'copy']) {
    const busy = metric(`occupancy_${engine}`) / 100;
    assert.ok(busy > 0 && busy <= 1, `${engine} occupancy ${busy} in (0, 1]`);
  }
  const fairness = metric('fairness');
  assert.ok(fairness > 1 / clients - 1e-9 && fairness <= 1 + 1e-9, `Jain's index ${fairness} in [1/n, 1]`);
  const backoffs = metric('ww_backoffs');
  assert.ok(Number.isInteger(backoffs) && backoffs >= 0, `ww back-offs ${backoffs}`);
  assert.ok(metric('uploads') >= 0);
  assert.ok(metric('latency_p99') >= metric('latency_p50'));
  assert.match(v.notes.join('\n'), /every frame composited was checked word for word/);
  assert.deepEqual(
    v.tracks.filter((t) => t.kind === 'engine').map((t) => t.name),
    ['engine gfx.0', 'engine copy.0'],
    'one track per engine',
  );
  assert.equal(v.charts[0]?.id, 'engine-occupancy');
  assert.ok(v.charts.some((c) => c.id === 'frame-latency' && c.kind === 'histogram'));
  const gfx = v.tracks.find((t) => t.name === 'engine gfx.0')!.id;
  const slices = v.events.filter((e) => e.type === 'slice' && e.track === gfx);
  assert.ok(slices.length > 0);
  assert.ok(
    slices.every(
      (e) => e.type === 'slice' && typeof e.args?.['client'] === 'string' && e.name.startsWith(e.args['client']),
    ),
    'job slices name their client',
  );
  assert.ok(
    v.events.some((e) => e.type === 'instant' && /^fence gfx\.0#\d+ signaled$/.test(e.name)),
    'fence signals',
  );
}

describe('render frame contents', () => {
  it('sanity: a drawn frame passes the check, with its textures at the versions it read', () => {
    const [t0, t1] = [new Uint32Array(256), new Uint32Array(256)];
    fillTexture(t0, 9, 2, 5);
    fillTexture(t1, 9, 0, 1);
    const frame = new Uint32Array(512);
    drawFrame(frame, t0, t1, frameKey(9, 1, 42));
    assert.equal(frame[0], FRAME_MAGIC);
    assert.equal(checkFrame(frame, { seed: 9, client: 1, frame: 42, textures: [2, 0], versions: [5, 1] }, 256), null);
  });

  it('catches another frame, a stale texture version, and any one word changed', () => {
    fc.assert(
      fc.property(fc.integer({ min: 4, max: 511 }), fc.integer({ min: 1, max: 0xffffffff }), (word, flip) => {
        const [t0, t1] = [new Uint32Array(64), new Uint32Array(64)];
        fillTexture(t0, 1, 0, 3);
        fillTexture(t1, 1, 1, 0);
        const frame = new Uint32Array(512);
        drawFrame(frame, t0, t1, frameKey(1, 0, 7));
        const want = { seed: 1, client: 0, frame: 7, textures: [0, 1], versions: [3, 0] } as const;
        assert.match(checkFrame(frame, { ...want, frame: 8 }, 64) ?? '', /holds another frame/);
        assert.match(checkFrame(frame, { ...want, versions: [2, 0] }, 64) ?? '', /read version 3 of texture 0, want 2/);
        frame[word] = (frame[word]! ^ flip) >>> 0;
        assert.match(checkFrame(frame, want, 64) ?? '', new RegExp(`word ${word} is`));
      }),
      { seed: 12, numRuns: 50 },
    );
  });
});

describe('render fairness arithmetic', () => {
  it("Jain's index: 1 when equal, 1/n when one client has everything", () => {
    assert.equal(jainIndex([3, 3, 3, 3]), 1);
    assert.equal(jainIndex([5, 0, 0, 0]), 0.25);
    assert.ok(Math.abs(jainIndex([1, 2]) - 0.9) < 1e-12);
  });

  it('max-min shares meet the small demands in full and split the rest', () => {
    assert.deepEqual(maxMinShares([0.1, Infinity, Infinity], 0.9), [0.1, 0.4, 0.4]);
    assert.deepEqual(maxMinShares([0.5, 0.6], 0.8), [0.4, 0.4]);
    assert.deepEqual(maxMinShares([0.1, 0.2], 1), [0.1, 0.2]);
  });
});

describe('render scenario', () => {
  it('sanity: is in the default set, 3 s and 4 clients by default, and honours sched-policy and ww', () => {
    assert.equal(render.inDefaultSet, true);
    assert.equal(render.defaultDurationMs, 3000);
    assert.equal(render.defaultClients, 4);
    assert.deepEqual([...render.knobs].sort(), ['sched-policy', 'ww']);
    assert.equal(RENDER_CLIENT_KINDS.filter((k) => k.fps === null).length, 2, 'two clients that load the engine fully');
  });

  it('every scheduler policy: frames checked by the compositor, every metric present and sane', async () => {
    const run = await runScenarios({
      scenarios: [render],
      options: SHORT,
      compare: { knob: 'sched-policy', values: KNOBS['sched-policy'].values },
      trace: true,
    });
    const variants = run.scenarios[0]!.variants;
    assert.deepEqual(
      variants.map((v) => v.label),
      ['sched-policy=fair', 'sched-policy=fifo', 'sched-policy=rr'],
    );
    for (const v of variants) {
      assertSane(v, 4);
      assert.match(v.notes.join('\n'), new RegExp(`scheduler policy ${v.knobs['sched-policy']}`));
    }
    assert.deepEqual(traceProblems(JSON.parse(JSON.stringify(toTraceJson(run)))), []);
  });

  it('both ww classes, with two clients', async () => {
    const run = await runScenarios({
      scenarios: [render],
      options: { ...SHORT, clients: 2 },
      compare: { knob: 'ww', values: KNOBS.ww.values },
      trace: true,
    });
    const variants = run.scenarios[0]!.variants;
    assert.deepEqual(
      variants.map((v) => v.label),
      ['ww=wait-die', 'ww=wound-wait'],
    );
    for (const v of variants) assertSane(v, 2);
  });

  it('fails when frames may race with texture uploads: the compositor sees the wrong contents', async () => {
    const run = await runScenarios({
      scenarios: [createRender({ textureSync: false })],
      options: { ...SHORT, durationMs: 1500 },
      compare: null,
      trace: false,
      warmup: false,
    });
    const v = run.scenarios[0]!.variants[0]!;
    assert.equal(v.status, 'failed', 'without implicit sync on the textures a frame must come out wrong');
    assert.match(v.error ?? '', /frame\(s\) failed; the first: client \d+ frame \d+: (read version|word \d+ is)/);
  });

  it('stops promptly when aborted, with what it measured', async () => {
    const controller = new AbortController();
    let abortedAt = 0;
    // Ctrl-C once frames are flowing (the first progress report with frames in it).
    const view: ProgressView = {
      started() {},
      update(_fraction, status) {
        if (abortedAt === 0 && /^[1-9]\d* frames/.test(status)) {
          abortedAt = performance.now();
          controller.abort();
        }
      },
      finished() {},
      log() {},
      stop() {},
    };
    const run = await runScenarios({
      scenarios: [render],
      options: { ...SHORT, durationMs: 60_000 },
      compare: null,
      trace: false,
      warmup: false,
      signal: controller.signal,
      view,
    });
    const v = run.scenarios[0]!.variants[0]!;
    assert.equal(v.status, 'interrupted', v.error);
    assert.ok(abortedAt > 0, 'frames were reported');
    const stopMs = performance.now() - abortedAt;
    assert.ok(stopMs < 5000, `stopped ${stopMs} ms after the abort, well before its 60 s`);
    assert.ok(metricOf(v)('frames') > 0, 'what it measured before the abort');
  });
});
