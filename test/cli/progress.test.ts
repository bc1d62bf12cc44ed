import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { createProgressView } from '../../src/cli/progress.js';
import { CaptureStream } from '../helpers/cli-run.js';

// Escape sequences cli-progress writes: hide / show the cursor, move to a column.
const ESC = String.fromCharCode(27);
const HIDE_CURSOR = `${ESC}[?25l`;
const SHOW_CURSOR = `${ESC}[?25h`;
const MOVE_TO_COLUMN = new RegExp(`${ESC}\\[\\d*G`, 'g');
const ANY_SEQUENCE = new RegExp(`${ESC}\\[[0-9;?]*[A-Za-z]`, 'g');
/** The screen's lines: a move to column 1 starts a redraw of the line, other sequences go. */
const strip = (text: string): string => text.replace(MOVE_TO_COLUMN, '\n').replace(ANY_SEQUENCE, '');

describe('createProgressView', () => {
  it('sanity: a pipe gets plain lines: start, progress, end', () => {
    const stream = new CaptureStream();
    const view = createProgressView(stream, true);
    view.started('churn [deferred-free=on]', 2000);
    view.update(0.5, '12 allocs');
    view.finished('ok', 2050);
    view.stop();
    assert.equal(
      stream.text,
      'churn [deferred-free=on]: started (about 2.00 s)\nchurn [deferred-free=on]: done in 2.05 s\n',
      'no escape codes; the progress line waits a second',
    );
  });

  it('plain lines: progress at most once a second, failures with their message, lines within 100 columns', async () => {
    const stream = new CaptureStream();
    const view = createProgressView(stream, true);
    view.started('render', 500);
    await sleep(1010);
    view.update(0.25, 'frames 12');
    view.update(0.3, 'frames 13 (throttled)');
    view.finished('failed', 1200, `worker died: ${'x'.repeat(200)}`);
    view.log('render: skipped');
    const lines = stream.text.trimEnd().split('\n');
    assert.deepEqual(lines.slice(0, 2), ['render: started (about 500 ms)', 'render: 25% frames 12']);
    assert.match(lines[2]!, /^render: FAILED after 1\.20 s: worker died: x+…$/);
    assert.equal(lines[3], 'render: skipped');
    assert.ok(
      lines.every((l) => l.length <= 100),
      'within 100 columns',
    );
  });

  it('a terminal gets live bars from cli-progress: cursor hidden, a bar per variant, cursor back at stop', async () => {
    const stream = new CaptureStream({ columns: 90 });
    const view = createProgressView(stream, true);
    view.started('churn [deferred-free=on]', 1000);
    view.update(0.5, '1,234 allocs');
    await sleep(150);
    view.finished('ok', 1000);
    view.started('churn [deferred-free=off]', 1000);
    view.finished('interrupted', 400);
    view.stop();
    view.stop();
    assert.ok(stream.text.startsWith(HIDE_CURSOR), 'the cursor is hidden while bars run');
    assert.ok(stream.text.includes(SHOW_CURSOR), 'and shown again at stop');
    const text = strip(stream.text);
    assert.match(text, /churn \[deferred-free=on\] +█{10}░{10} +50% {2}1,234 allocs/);
    assert.match(text, /churn \[deferred-free=on\] +█{20} 100% {2}done in 1\.00 s/);
    assert.match(text, /churn \[deferred-free=off\] .*interrupted after 400 ms/);
    for (const line of text.split(/\r?\n/)) assert.ok(line.length < 90, `fits the terminal: ${line}`);
  });

  it('--no-progress writes nothing at all', () => {
    const stream = new CaptureStream({ columns: 80 });
    const view = createProgressView(stream, false);
    view.started('churn', 100);
    view.update(1, 'x');
    view.finished('ok', 100);
    view.log('x');
    view.stop();
    assert.equal(stream.text, '');
  });
});
