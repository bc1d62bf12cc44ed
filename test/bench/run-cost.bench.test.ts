import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { churnRound } from '../../bench/run-cost.bench.js';
import { tempDir } from '../helpers/cli-run.js';

describe('run-cost bench', () => {
  it('sanity: a round with the runner on writes both outputs, measures a positive rate; off writes none', async () => {
    const on = tempDir();
    const off = tempDir();
    const rateOn = await churnRound(true, on, 150);
    const rateOff = await churnRound(false, off, 150);
    assert.ok(rateOn > 0 && Number.isFinite(rateOn), `on: ${rateOn}`);
    assert.ok(rateOff > 0 && Number.isFinite(rateOff), `off: ${rateOff}`);
    assert.ok(existsSync(`${on}/report.html`) && existsSync(`${on}/trace.json`), 'report and trace written');
    assert.deepEqual(readdirSync(off), [], 'nothing written with the runner off');
  });
});
