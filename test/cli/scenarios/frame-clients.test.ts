// The steady frame clients of the hang and long-running scenarios, on a real soft device: every
// frame counted once, the hooks called, the engine's timeline in order, and seeded sizes.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import '../../../src/node.js';
import { Recorder } from '../../../src/cli/recorder.js';
import { IN_FLIGHT, runFrameClients, sleep } from '../../../src/cli/scenarios/frame-clients.js';
import { SoftDevice } from '../../../src/device/soft/soft-device.js';

describe('frame clients', () => {
  it('sanity: each client completes frames, each counted once with its latency', async () => {
    const gpu = new SoftDevice({ engines: { gfx: 1 } });
    try {
      await gpu.ready();
      const recorder = new Recorder({ trace: true, durationMs: 200 });
      const engine = { track: recorder.track('gfx.0', 'engine'), lastFinishMs: 0 };
      const jobs: [string, number, number][] = [];
      const clients = await runFrameClients({
        gpu,
        engineName: 'gfx',
        recorder,
        engine,
        clients: 2,
        seed: 3,
        endMs: 150,
        signal: new AbortController().signal,
        onJob: (client, name, start, end, error) => {
          assert.equal(error, null, `${name} failed`);
          assert.ok(name.startsWith(client.name));
          jobs.push([name, start, end]);
        },
      });
      assert.equal(clients.length, 2);
      for (const c of clients) {
        assert.ok(c.tally.frames > 0, `${c.name} completed frames`);
        assert.equal(c.tally.errors.size, 0);
        assert.equal(c.tally.latencyMs.count, c.tally.frames);
        assert.equal(c.tally.timeline.length, c.tally.frames);
        assert.ok(c.tally.latencyMs.min >= 0);
      }
      assert.equal(jobs.length, clients[0]!.tally.frames + clients[1]!.tally.frames, 'one job per frame');
      // The ring runs its jobs one after the other: no job starts before the previous one ended.
      for (let i = 1; i < jobs.length; i++) assert.ok(jobs[i]![1] >= jobs[i - 1]![2] - 1e-9, `job ${i} overlaps`);
      assert.equal(new Set(jobs.map((j) => j[0])).size, jobs.length, 'frame names are unique');
    } finally {
      await gpu.destroy();
    }
  });

  it('a replaced frame is the scenario job: reported to onJob, not counted as a frame', async () => {
    const gpu = new SoftDevice({ engines: { gfx: 1 } });
    try {
      await gpu.ready();
      const recorder = new Recorder({ trace: false, durationMs: 100 });
      const engine = { track: recorder.track('gfx.0', 'engine'), lastFinishMs: 0 };
      const seen: string[] = [];
      let replaced = false;
      const clients = await runFrameClients({
        gpu,
        engineName: 'gfx',
        recorder,
        engine,
        clients: 1,
        seed: 4,
        endMs: 60,
        signal: new AbortController().signal,
        replaceFrame: (client) => {
          if (replaced) return null;
          replaced = true;
          // The scenario's own job in place of the first frame (the hang scenario's spin; a noop here).
          return { name: `${client.name} special`, fence: gpu.submit('gfx', 'noop', {}, { context: client.context }) };
        },
        onJob: (_client, name) => seen.push(name),
      });
      assert.equal(seen[0], 'client 1 special');
      assert.equal(seen.length, clients[0]!.tally.frames + 1, 'the special job is not a frame');
    } finally {
      await gpu.destroy();
    }
  });

  it('stops at once on abort, leaving nothing in flight; sleep ends early on abort', async () => {
    const controller = new AbortController();
    controller.abort();
    const t0 = performance.now();
    await sleep(10_000, controller.signal);
    assert.ok(performance.now() - t0 < 1000);
    const gpu = new SoftDevice({ engines: { gfx: 1 } });
    try {
      await gpu.ready();
      const recorder = new Recorder({ trace: false, durationMs: 100 });
      const engine = { track: recorder.track('gfx.0', 'engine'), lastFinishMs: 0 };
      const clients = await runFrameClients({
        gpu,
        engineName: 'gfx',
        recorder,
        engine,
        clients: 2,
        seed: 5,
        endMs: 60_000,
        signal: controller.signal,
      });
      assert.deepEqual(
        clients.map((c) => c.tally.frames),
        [0, 0],
      );
    } finally {
      await gpu.destroy();
    }
    assert.equal(IN_FLIGHT, 3);
  });
});
