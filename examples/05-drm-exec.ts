// drm_exec: two jobs lock the same two buffers in opposite orders, pausing between the locks.
// With ordinary mutexes both would wait for ever; here the younger job backs off, the older
// finishes, and the younger retries with the contended buffer locked first. Then each job adds
// its fence to every buffer it locked.
import { DmaFence, DmaResv, DmaResvUsage, DrmExec, Kref, WwDeadlockError, fenceContextAlloc } from 'dmabuf';

class Buffer {
  readonly resv: DmaResv;
  readonly #ref: Kref;
  constructor(readonly name: string) {
    this.resv = new DmaResv({ name });
    this.#ref = new Kref(() => {
      this.resv[Symbol.dispose]();
      console.log(`${name}: last reference dropped, freed`);
    }, name);
  }
  get(): void {
    this.#ref.get();
  }
  put(): void {
    this.#ref.put();
  }
}

const ops = { getDriverName: () => 'example', getTimelineName: () => 'gpu' };
const vertices = new Buffer('vertices');
const texture = new Buffer('texture');
const pause = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 2));

async function submit(job: string, first: Buffer, second: Buffer): Promise<DmaFence> {
  await using exec = new DrmExec({ signal: AbortSignal.timeout(5000) });
  let attempt = 0;
  await exec.untilAllLocked(async (exec) => {
    attempt++;
    console.log(
      `${job}: attempt ${attempt}, locking ${first.name}${attempt > 1 ? ' (after the buffer it backed off from)' : ''}`,
    );
    await exec.prepareObj(first, 1);
    await pause(); // validating the buffer, say: the other job runs meanwhile
    console.log(`${job}: locking ${second.name}`);
    try {
      await exec.prepareObj(second, 1);
    } catch (err) {
      if (err instanceof WwDeadlockError)
        console.log(`${job}: must back off from ${second.name}; unlocking everything and retrying`);
      throw err; // let it leave the body: untilAllLocked retries
    }
  });
  const fence = new DmaFence(ops, fenceContextAlloc(), 1);
  for (const obj of exec.objects) obj.resv.addFence(fence, DmaResvUsage.Write);
  console.log(
    `${job}: holds ${exec.objects.map((o) => o.resv.mutex.name).join(' + ')} ` +
      `after ${attempt} attempt(s); fence added to each`,
  );
  await pause(); // queue the work while still holding the locks
  return fence;
} // `await using` unlocks both buffers here

const [fenceA, fenceB] = await Promise.all([submit('job A', vertices, texture), submit('job B', texture, vertices)]);
for (const buffer of [vertices, texture]) {
  console.log(`${buffer.name}: ${buffer.resv.numFences} write fences, locked: ${buffer.resv.isLocked}`);
}
fenceA.signal();
fenceB.signal();
console.log(
  'both jobs done:',
  vertices.resv.testSignaled(DmaResvUsage.Write) && texture.resv.testSignaled(DmaResvUsage.Write),
);
vertices.put();
texture.put();
