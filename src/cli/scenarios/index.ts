/**
 * Every scenario `dmabuf run` knows, in the order of a default run.
 *
 * Contract: names are unique and lower-case; the scenarios with `inDefaultSet` are what
 * `dmabuf run` (and `npm start`) runs when no scenario is named.
 *
 * @example
 * ```ts
 * import { SCENARIOS, defaultScenarios } from './index.js';
 * console.log(SCENARIOS.map((s) => s.name), defaultScenarios().length);
 * ```
 */

import type { Scenario } from '../scenario.js';
import { churn } from './churn.js';
import { hang } from './hang.js';
import { inference } from './inference.js';
import { longRunning } from './long-running.js';
import { releaseStorm } from './release-storm.js';
import { render } from './render.js';

export const SCENARIOS: readonly Scenario[] = [churn, render, inference, releaseStorm, hang, longRunning];

/** The scenarios of a run that names none. */
export function defaultScenarios(): readonly Scenario[] {
  return SCENARIOS.filter((s) => s.inDefaultSet);
}
