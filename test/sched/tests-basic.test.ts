/**
 * Port of the kernel's `drivers/gpu/drm/scheduler/tests/tests_basic.c`, every case, with its
 * sizes and assertions, on the mock GPU of `test/helpers/sched-mock.ts` and a virtual clock
 * (one jiffy = one millisecond, HZ = 1000). Where the kernel only checks that a case terminates,
 * the port adds checks of its own, marked "port:".
 */
import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { VirtualClock } from '../../src/base/clock.js';
import type { DmaBufError } from '../../src/base/errors.js';
import type { DrmSchedEntity } from '../../src/sched/sched-entity.js';
import { DRM_SCHED_PRIORITY_COUNT, DrmSchedPriority } from '../../src/sched/sched-rq.js';
import { seededRandom, testSeed } from '../helpers/mock-fence.js';
import {
  DRM_MOCK_SCHED_JOB_DONT_RESET,
  DRM_MOCK_SCHED_JOB_RESET_SKIPPED,
  DRM_MOCK_SCHED_JOB_TIMEDOUT,
  DrmMockScheduler,
  type DrmMockJob,
  HZ,
  MAX_SCHEDULE_TIMEOUT,
  isFinished,
  mockEntity,
  mockJob,
  submit,
  waitFinished,
  waitScheduled,
  waitUntil,
} from '../helpers/sched-mock.js';
import { withVirtualClock } from '../helpers/sched-ring.js';

/** The timeout suite's watchdog: HZ / 5. */
const MOCK_TIMEOUT = HZ / 5;

interface Fixture {
  clock: VirtualClock;
  sched: DrmMockScheduler;
}

/** The suites' init/exit: a mock scheduler with `timeout` on a fresh virtual clock, finished after each case. */
function withMockScheduler(timeout: number): () => Fixture {
  let fixture: Fixture | undefined;
  withVirtualClock((clock) => {
    fixture = { clock, sched: new DrmMockScheduler(clock, timeout) };
  });
  afterEach(() => {
    const f = fixture!;
    f.sched.fini();
    assert.deepEqual(f.sched.base.failures, [], 'port: no backend op or observer threw');
    fixture = undefined;
  });
  return () => fixture!;
}

/** drm_mock_sched_entity_free(): destroy, letting virtual time run while it flushes. */
async function freeEntity(clock: VirtualClock, entity: DrmSchedEntity): Promise<void> {
  let done = false;
  const destroyed = entity.destroy().then(() => {
    done = true;
  });
  assert.ok(await waitUntil(clock, () => done, 2 * HZ), `${entity} destroy() finished`);
  await destroyed;
}

describe('drm_sched_basic_tests', () => {
  const fx = withMockScheduler(MAX_SCHEDULE_TIMEOUT);

  it('drm_sched_basic_submit', async () => {
    const { sched, clock } = fx();
    const entity = mockEntity(sched, DrmSchedPriority.Normal);
    const job = mockJob(entity);
    submit(job);
    assert.ok(await waitScheduled(sched, job, HZ), 'job scheduled within HZ');
    assert.equal(await waitFinished(sched, job, HZ / 2), false, 'a manual job does not finish on its own');
    assert.equal(sched.advance(1), 1);
    assert.ok(await waitFinished(sched, job, HZ), 'job finished within HZ after advance');
    await freeEntity(clock, entity);
  });

  const params = [
    {
      description: 'A queue of jobs in a single entity',
      queueDepth: 100,
      jobUs: 1000,
      numEntities: 1,
      depChain: false,
    },
    {
      description: 'A chain of dependent jobs across multiple entities',
      queueDepth: 100,
      jobUs: 1000,
      numEntities: 1,
      depChain: true,
    },
    { description: 'Multiple independent job queues', queueDepth: 100, jobUs: 1000, numEntities: 4, depChain: false },
    {
      description: 'Multiple inter-dependent job queues',
      queueDepth: 100,
      jobUs: 1000,
      numEntities: 4,
      depChain: true,
    },
  ];
  for (const p of params) {
    it(`drm_sched_basic_test: ${p.description}`, async () => {
      const { sched, clock } = fx();
      const entities = Array.from({ length: p.numEntities }, () => mockEntity(sched, DrmSchedPriority.Normal));
      const jobs: DrmMockJob[] = [];
      for (let i = 0; i < p.queueDepth; i++) {
        const job = mockJob(entities[i % p.numEntities]!, p.jobUs);
        const prev = jobs[jobs.length - 1];
        if (p.depChain && prev !== undefined) job.addDependency(prev.finished);
        submit(job);
        jobs.push(job);
      }
      const last = jobs[jobs.length - 1]!;
      assert.ok(await waitFinished(sched, last, HZ), 'last job finished within HZ');
      // port: every job completes, and each entity's jobs ran in push order.
      assert.ok(await waitUntil(clock, () => jobs.every(isFinished), HZ), 'every job completed on the mock GPU');
      for (const entity of entities) {
        const order = jobs.filter((j) => j.entity === entity).map((j) => j.hwFence!.seqno);
        assert.deepEqual(
          order,
          [...order].sort((a, b) => a - b),
          `${entity} ran its jobs in push order`,
        );
      }
      for (const e of entities) await freeEntity(clock, e);
    });
  }

  it('drm_sched_basic_entity_cleanup', async () => {
    const { sched, clock } = fx();
    const entities = Array.from({ length: 4 }, () => mockEntity(sched, DrmSchedPriority.Normal));
    const jobs: DrmMockJob[] = [];
    let mid: DrmMockJob | undefined;
    for (let i = 0; i < 100; i++) {
      const job = mockJob(entities[i % 4]!, 1000);
      const prev = jobs[jobs.length - 1];
      if (prev !== undefined) job.addDependency(prev.finished);
      submit(job);
      jobs.push(job);
      if (i === 50) mid = job;
    }
    assert.ok(await waitFinished(sched, mid!, HZ), 'job 50 finished within HZ');
    // Half the queue is still on the GPU: destroying the entities must not hang.
    for (const e of entities) await freeEntity(clock, e);
    // The suite's exit finishes the scheduler with jobs pending: the cancel path.
    sched.fini();
    // port: every job's fence settled, with a result or ECANCELED.
    for (const job of jobs) {
      assert.ok(job.finished.signaledFlag, `${job} finished fence signalled`);
      const error = job.finished.error;
      assert.ok(error === undefined || (error as DmaBufError).code === 'ECANCELED', `${job}: ${error?.message}`);
    }
    assert.ok(
      jobs.some((j) => j.finished.error !== undefined),
      'port: some jobs were cancelled at fini',
    );
  });
});

describe('drm_sched_basic_cancel_tests', () => {
  let clock: VirtualClock;
  withVirtualClock((c) => {
    clock = c;
  });

  it('drm_sched_basic_cancel', async () => {
    const sched = new DrmMockScheduler(clock, MAX_SCHEDULE_TIMEOUT);
    const entity = mockEntity(sched, DrmSchedPriority.Normal);
    const job = mockJob(entity);
    submit(job);
    assert.ok(await waitScheduled(sched, job, HZ), 'job scheduled within HZ');
    await freeEntity(clock, entity);
    sched.fini();
    assert.equal((job.hwFence!.error as DmaBufError | undefined)?.code, 'ECANCELED');
    assert.equal((job.finished.error as DmaBufError | undefined)?.code, 'ECANCELED', 'port: finished carries it');
  });
});

describe('drm_sched_basic_timeout_tests', () => {
  const fx = withMockScheduler(MOCK_TIMEOUT);

  it('drm_sched_basic_timeout', async () => {
    const { sched, clock } = fx();
    const entity = mockEntity(sched, DrmSchedPriority.Normal);
    const job = mockJob(entity);
    submit(job);
    assert.ok(await waitScheduled(sched, job, HZ), 'job scheduled within HZ');
    assert.equal(await waitFinished(sched, job, HZ / 10), false, 'not finished within 100 ms');
    assert.equal(job.flags & DRM_MOCK_SCHED_JOB_TIMEDOUT, 0, 'no timeout before MOCK_TIMEOUT');
    assert.equal(await waitFinished(sched, job, (2 * HZ) / 10), false, 'the timeout path never completes it');
    assert.equal(job.flags & DRM_MOCK_SCHED_JOB_TIMEDOUT, DRM_MOCK_SCHED_JOB_TIMEDOUT, 'timed out');
    assert.equal(
      (job.finished.error as DmaBufError | undefined)?.code,
      'ETIMEDOUT',
      'port: finished carries ETIMEDOUT',
    );
    await freeEntity(clock, entity);
  });

  it('drm_sched_skip_reset', async () => {
    const { sched, clock } = fx();
    const entity = mockEntity(sched, DrmSchedPriority.Normal);
    const job = mockJob(entity);
    job.flags |= DRM_MOCK_SCHED_JOB_DONT_RESET;
    submit(job);
    assert.ok(await waitScheduled(sched, job, HZ), 'job scheduled within HZ');
    assert.equal(await waitFinished(sched, job, 2 * MOCK_TIMEOUT), false, 'not finished within 400 ms');
    assert.equal(job.flags & DRM_MOCK_SCHED_JOB_RESET_SKIPPED, DRM_MOCK_SCHED_JOB_RESET_SKIPPED, 'reset skipped');
    // NO_HANG put the job back: it is still on the mock GPU and completes normally.
    assert.equal(sched.advance(1), 1);
    assert.ok(await waitFinished(sched, job, HZ), 'job finished within HZ');
    assert.ok(
      await waitUntil(clock, () => job.state === 'freed', HZ),
      'port: the re-inserted job is freed, not leaked',
    );
    await freeEntity(clock, entity);
  });
});

describe('drm_sched_basic_priority_tests', () => {
  const fx = withMockScheduler(MAX_SCHEDULE_TIMEOUT);

  it('drm_sched_priorities', async () => {
    const { sched, clock } = fx();
    const priorities = [DrmSchedPriority.Kernel, DrmSchedPriority.High, DrmSchedPriority.Normal, DrmSchedPriority.Low];
    const entities = priorities.map((p) => mockEntity(sched, p));
    let last: DrmMockJob | undefined;
    for (let i = 0; i < 100; i++) {
      last = mockJob(entities[i % entities.length]!, 1000);
      submit(last);
    }
    assert.ok(await waitFinished(sched, last!, HZ), 'last job finished within HZ');
    for (const e of entities) await freeEntity(clock, e);
  });

  it('drm_sched_change_priority', async () => {
    const seed = testSeed();
    const random = seededRandom(seed);
    const { sched, clock } = fx();
    const priorities = [DrmSchedPriority.Kernel, DrmSchedPriority.High, DrmSchedPriority.Normal, DrmSchedPriority.Low];
    const entities = priorities.map((p) => mockEntity(sched, p));
    const jobs: DrmMockJob[] = [];
    for (let i = 0; i < 1000; i++) {
      const job = mockJob(entities[i % entities.length]!, 1000);
      submit(job);
      jobs.push(job);
    }
    const last = jobs[jobs.length - 1]!;
    let cur = 0;
    for (let loops = 0; !isFinished(last); loops++) {
      const entity = entities[cur++ % entities.length]!;
      entity.setPriority(((entity.priority + 1) % DRM_SCHED_PRIORITY_COUNT) as DrmSchedPriority);
      await clock.tick((200 + random() * 300) / 1000);
      assert.ok(loops < 20_000, `seed ${seed}: the last job never finished (TEST_SEED=${seed} replays)`);
    }
    // port: every job completed, and the one ring ran them in order.
    assert.ok(jobs.every(isFinished), `seed ${seed}: every job completed`);
    for (const e of entities) await freeEntity(clock, e);
  });
});

describe('drm_sched_basic_modify_sched_tests', () => {
  let clock: VirtualClock;
  withVirtualClock((c) => {
    clock = c;
  });

  it('drm_sched_test_modify_sched', async () => {
    const seed = testSeed();
    const random = seededRandom(seed);
    const scheds = Array.from({ length: 3 }, () => new DrmMockScheduler(clock, MAX_SCHEDULE_TIMEOUT));
    const entities = Array.from({ length: 13 }, (_, i) => mockEntity(scheds[i % 3]!, DrmSchedPriority.Normal));
    const jobs: DrmMockJob[] = [];
    for (let i = 0; i < 1000; i++) {
      const job = mockJob(entities[i % entities.length]!, 1000);
      submit(job);
      jobs.push(job);
    }
    const last = jobs[jobs.length - 1]!;
    let cur = 0;
    for (let loops = 0; !isFinished(last); loops++) {
      await clock.tick((200 + random() * 300) / 1000);
      cur++;
      entities[cur % entities.length]!.modifySched([scheds[cur % scheds.length]!.base]);
      assert.ok(loops < 20_000, `seed ${seed}: the last job never finished (TEST_SEED=${seed} replays)`);
    }
    // port: all jobs were armed before the loop, so none moved: each ran on its entity's first ring.
    assert.ok(await waitUntil(clock, () => jobs.every(isFinished), HZ), `seed ${seed}: every job completed`);
    for (const job of jobs) {
      const entityIndex = entities.indexOf(job.entity as DrmSchedEntity);
      assert.equal(job.sched, scheds[entityIndex % 3]!.base, `${job} ran where its entity started`);
    }
    for (const e of entities) await freeEntity(clock, e);
    for (const s of scheds) s.fini();
  });
});

describe('drm_sched_basic_credits_tests', () => {
  let clock: VirtualClock;
  withVirtualClock((c) => {
    clock = c;
  });

  it('drm_sched_test_credits', async () => {
    const sched = new DrmMockScheduler(clock, MAX_SCHEDULE_TIMEOUT, undefined, 1);
    const entity = mockEntity(sched, DrmSchedPriority.Normal);
    const job0 = mockJob(entity);
    const job1 = mockJob(entity);
    submit(job0);
    submit(job1);
    assert.ok(await waitScheduled(sched, job0, HZ), 'job0 scheduled within HZ');
    assert.equal(await waitScheduled(sched, job1, HZ), false, 'job1 waits for the one credit');
    assert.equal(sched.advance(1), 1);
    assert.ok(await waitScheduled(sched, job1, HZ), 'job1 scheduled once job0 completed');
    assert.equal(sched.advance(1), 1);
    assert.ok(await waitFinished(sched, job1, HZ), 'job1 finished within HZ');
    await freeEntity(clock, entity);
    sched.fini();
  });
});
