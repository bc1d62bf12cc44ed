/**
 * Simulating another task inside one test.
 *
 * A test often plays two parts in one async function: "some other holder takes this lock" and
 * then "the code under test waits for it". Under the lock validator (npm run test:lockdep) locks
 * are held per async context, so a lock the test takes for the other part would count as held by
 * the code under test, and nesting two such locks looks like a real bug. {@link asOtherTask} runs
 * the part as a task of its own: it starts holding nothing and what it takes stays its own.
 */
import { lockdepTask } from '../../src/locking/lockdep.js';

export function asOtherTask<T>(fn: () => T | Promise<T>): Promise<T> {
  return lockdepTask(async () => await fn());
}
