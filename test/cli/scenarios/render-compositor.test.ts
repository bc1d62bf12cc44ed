// The render scenario's compositor worker on its own: it waits for a frame's implicit fences
// through the shared buffer, checks the frame, and reports once per refresh.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { type DmaBufShare, shareDmaBuf } from '../../../src/heap/dma-buf-export.js';
import { DmaResv, DmaResvUsage } from '../../../src/resv/dma-resv.js';
import { type CompositorReport, RenderCompositor } from '../../../src/cli/scenarios/render-compositor.js';
import { drawFrame, fillTexture, frameKey } from '../../../src/cli/scenarios/render-pattern.js';
import { mockFence } from '../../helpers/mock-fence.js';

const SEED = 5;
const TEX_WORDS = 64;

interface Target {
  readonly resv: DmaResv;
  readonly words: Uint32Array;
  readonly share: DmaBufShare;
}

function target(name: string): Target {
  const memory = new SharedArrayBuffer(1024);
  const resv = new DmaResv({ name });
  const share = shareDmaBuf({ name, size: memory.byteLength, resv, memory: () => ({ buffer: memory, offset: 0 }) });
  return { resv, words: new Uint32Array(memory), share };
}

/** Draws frame `frame` of client 0 into `t`, from textures 0 and 1 at version 0. */
function draw(t: Target, frame: number): void {
  const [tex0, tex1] = [new Uint32Array(TEX_WORDS), new Uint32Array(TEX_WORDS)];
  fillTexture(tex0, SEED, 0, 0);
  fillTexture(tex1, SEED, 1, 0);
  drawFrame(t.words, tex0, tex1, frameKey(SEED, 0, frame));
}

const frameOf = (targetIndex: number, frame: number) =>
  ({ target: targetIndex, client: 0, frame, textures: [0, 1], versions: [0, 0] }) as const;

describe('RenderCompositor', () => {
  const targets = [target('t0'), target('t1'), target('t2')];
  const reports: CompositorReport[] = [];
  const failures: Error[] = [];
  let compositor: RenderCompositor;
  before(async () => {
    compositor = await RenderCompositor.start({
      seed: SEED,
      texWords: TEX_WORDS,
      targets: targets.map((t) => t.share),
      timeoutMs: 30_000,
      fenceTimeoutMs: 300,
      refreshMs: 4,
      onReport: (r) => reports.push(r),
      onFailure: (e) => failures.push(e),
    });
  });
  after(async () => {
    await compositor.stop();
    for (const t of targets) t.share.close();
    assert.deepEqual(failures, []);
  });

  async function reportOf(frame: number, ms = 5000): Promise<CompositorReport> {
    const end = performance.now() + ms;
    for (;;) {
      const r = reports.find((x) => x.frame === frame);
      if (r !== undefined) return r;
      if (performance.now() > end) assert.fail(`no report of frame ${frame} within ${ms} ms`);
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  }

  it('sanity: a correct frame is seen and reported without an error', async () => {
    draw(targets[0]!, 1);
    const before = performance.timeOrigin + performance.now();
    compositor.present(frameOf(0, 1));
    const r = await reportOf(1);
    assert.equal(r.error, null);
    assert.equal(r.target, 0);
    assert.ok(r.seenAt >= before, 'seen after it was presented (wall-clock ms across threads)');
  });

  it("waits for the frame's write fence, published through the share, before it reads", async () => {
    const write = mockFence();
    targets[1]!.share.publishFence(write, DmaResvUsage.Write);
    compositor.present(frameOf(1, 2));
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(
      reports.find((x) => x.frame === 2),
      undefined,
      'not seen while the fence is pending',
    );
    draw(targets[1]!, 2); // the "GPU" writes the frame, then signals
    const signalled = performance.timeOrigin + performance.now();
    write.signal();
    const r = await reportOf(2);
    assert.equal(r.error, null);
    assert.ok(r.seenAt >= signalled, 'seen after the fence signalled');
  });

  it('reports a frame with the wrong contents, and a fence that never signals', async () => {
    draw(targets[2]!, 3);
    compositor.present(frameOf(2, 4)); // frame 3 is in the buffer, frame 4 expected
    assert.match((await reportOf(4)).error ?? '', /client 0 frame 4: holds another frame/);
    targets[2]!.share.publishFence(mockFence(), DmaResvUsage.Write);
    compositor.present(frameOf(2, 5));
    assert.match((await reportOf(5)).error ?? '', /client 0 frame 5: .*(time|Timeout)/i);
  });
});

describe('RenderCompositor start', () => {
  it('rejects when the worker is not ready in time, and leaves no worker behind', async () => {
    const t = target('late');
    await assert.rejects(
      RenderCompositor.start({
        seed: 1,
        texWords: TEX_WORDS,
        targets: [t.share],
        timeoutMs: 1,
        fenceTimeoutMs: 1000,
        refreshMs: 4,
        onReport: () => {},
        onFailure: () => {},
      }),
      /the compositor worker did not start within 1 ms/,
    );
    t.share.close();
  });
});
