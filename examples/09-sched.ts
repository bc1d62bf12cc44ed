// The GPU scheduler: one ring (an in-order "GPU" made of timers), two clients. The renderer writes a
// buffer, the compositor reads it: submitJob locks the buffer, makes the read wait for exactly
// the write, and publishes each job's finished fence on it. Then a job hangs: the watchdog fires,
// the backend resets it, the client is marked guilty, and the other client carries on.
import {
  DmaBufError,
  DmaFence,
  DmaResv,
  DrmGpuScheduler,
  DrmGpuSchedStat,
  DrmSchedEntity,
  DrmSchedJob,
  Kref,
  fenceContextAlloc,
  submitJob,
} from 'dmabuf';

class Buffer {
  readonly resv = new DmaResv({ name: 'framebuffer' });
  readonly #ref = new Kref(() => this.resv[Symbol.dispose](), 'framebuffer');
  get(): void {
    this.#ref.get();
  }
  put(): void {
    this.#ref.put();
  }
}

/** A job that takes `ms` on the ring, or never finishes (`hang`). */
class GpuJob extends DrmSchedJob {
  constructor(
    entity: DrmSchedEntity,
    readonly ms: number,
    readonly hang = false,
  ) {
    super(entity);
  }
}

const ring = fenceContextAlloc();
let seqno = 0;
let ringBusyUntil = 0; // in order: a job starts when the one before it ends
const hwOps = { getDriverName: () => 'timer-gpu', getTimelineName: () => 'gfx' };
const running = new Map<GpuJob, { fence: DmaFence; timer: ReturnType<typeof setTimeout> | undefined }>();

const sched = new DrmGpuScheduler<GpuJob>({
  name: 'gfx',
  creditLimit: 4,
  timeout: 50, // the watchdog: no progress for 50 ms means a hang
  ops: {
    runJob(job) {
      const fence = new DmaFence(hwOps, ring, ++seqno);
      const start = Math.max(performance.now(), ringBusyUntil);
      ringBusyUntil = job.hang ? Infinity : start + job.ms;
      const timer = job.hang ? undefined : setTimeout(() => fence.signal(), ringBusyUntil - performance.now());
      running.set(job, { fence, timer });
      return fence;
    },
    timedOutJob(job) {
      console.log(`watchdog: ${job} hung; resetting the ring`);
      sched.increaseKarma(job); // marks the client guilty
      const hw = running.get(job)!;
      hw.fence.setError(new DmaBufError('ETIMEDOUT', 'engine reset'));
      hw.fence.signal();
      ringBusyUntil = 0;
      return DrmGpuSchedStat.Reset;
    },
    freeJob(job) {
      running.delete(job);
      job.cleanup();
    },
  },
  observer: {
    jobDone: (job) =>
      console.log(
        `  ${job.entity.name} job ${job.finished.seqno} done ` +
          `${(job.finishedAt! - job.submittedAt!).toFixed(0)} ms after push`,
      ),
  },
});

const guilty = { value: false };
const renderer = new DrmSchedEntity({ schedulers: [sched], name: 'renderer', guilty });
const compositor = new DrmSchedEntity({ schedulers: [sched], name: 'compositor', priority: 'high' });
const frame = new Buffer();

const draw = new GpuJob(renderer, 20);
await submitJob(draw, [{ obj: frame, write: true }]);
const present = new GpuJob(compositor, 5);
await submitJob(present, [{ obj: frame, write: false }]);
console.log(`present waits for exactly the draw: ${present.hasDependency(draw.finished)}`);
await present.finished.wait();
console.log(`present finished after draw: ${present.finishedAt! >= draw.finishedAt!}`);

const stuck = new GpuJob(renderer, 0, true);
stuck.arm();
stuck.push();
await stuck.finished.wait();
console.log(`hung job: ${stuck.finished.error?.message}; renderer guilty: ${guilty.value}`);

const next = new GpuJob(compositor, 5);
next.arm();
next.push();
await next.finished.wait();
console.log(`compositor still served: error ${next.finished.error ?? 'none'}`);

await renderer.destroy();
await compositor.destroy();
console.log(`ring idle: ${sched.creditCount} credits in use, ${sched.pendingCount} pending`);
sched.fini();
frame.put();
