// The README's examples are real programs: each must type-check (npm test runs tsc over
// examples/) and run to completion without an error.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { promisify } from 'node:util';

const run = promisify(execFile);
const examples = readdirSync(new URL('../examples/', import.meta.url))
  .filter((f) => f.endsWith('.ts'))
  .sort();

describe('examples', () => {
  it('there are examples to run', () => assert.ok(examples.length >= 2));
  for (const file of examples) {
    it(`examples/${file} runs`, async () => {
      const { stdout } = await run(
        process.execPath,
        ['--conditions=@dmabuf/source', '--import', 'tsx', `examples/${file}`],
        {
          timeout: 30_000,
        },
      );
      assert.ok(stdout.length > 0, 'an example prints what it shows');
    });
  }
});
