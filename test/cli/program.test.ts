// The dmabuf program: every option of `dmabuf run`, its exit codes and messages, in-process; then
// the real bin as a child process for the exit code and Ctrl-C.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { RunJson } from '../../src/cli/run-json.js';
import { KNOBS } from '../../src/cli/scenario.js';
import { runsOn } from '../../src/cli/program.js';
import { SCENARIOS } from '../../src/cli/scenarios/index.js';
import { traceProblems } from '../helpers/trace-check.js';
import { runBin, runMain } from '../helpers/cli-run.js';
import { schemaProblems } from '../helpers/run-json-schema.js';

const SHORT = ['--duration', '200ms', '--budget', '16M', '--clients', '2'];

describe('dmabuf run', () => {
  it('sanity: runs churn, prints the summary, writes report.html and trace.json into --out, exits 0', async () => {
    const r = await runMain(['run', 'churn', ...SHORT, '--seed', '5', '--out', 'out']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^dmabuf run: seed 5, budget 16\.0 MiB, 2 clients, 200 ms each, device soft;/);
    assert.match(r.stdout, /^churn: allocation churn/m);
    assert.match(r.stdout, /^report: out\/report\.html$/m);
    assert.match(r.stdout, /^trace: out\/trace\.json/m);
    const html = readFileSync(path.join(r.cwd, 'out/report.html'), 'utf8');
    assert.match(html, /<title>dmabuf run /);
    assert.deepEqual(traceProblems(JSON.parse(readFileSync(path.join(r.cwd, 'out/trace.json'), 'utf8'))), []);
    assert.match(r.stderr, /^churn: started \(about 200 ms\)$/m, 'plain progress lines on a pipe');
    assert.match(r.stderr, /^churn: done in /m);
  });

  it('--json prints one document that follows the schema and echoes every option', async () => {
    const r = await runMain(['run', 'churn', ...SHORT, '--seed', '9', '--device', 'soft', '--json', '--out', 'o']);
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout) as RunJson;
    assert.deepEqual(schemaProblems(doc), []);
    assert.deepEqual(doc.options, { seed: 9, budgetBytes: 16 << 20, device: 'soft', clients: 2, durationMs: 200 });
    assert.equal(
      doc.command,
      'dmabuf run churn --duration 200ms --budget 16M --clients 2 --seed 9 --device soft --json --out o',
    );
    assert.equal(doc.outputs.report, path.join(r.cwd, 'o/report.html'));
    assert.ok(existsSync(doc.outputs.trace!), 'the trace is where --json says');
  });

  it('--no-report and --no-trace write no file; --no-progress keeps stderr empty', async () => {
    const r = await runMain(['run', 'churn', ...SHORT, '--json', '--no-report', '--no-trace', '--no-progress']);
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout) as RunJson;
    assert.deepEqual(doc.outputs, { report: null, trace: null });
    assert.equal(existsSync(path.join(r.cwd, 'dmabuf-run')), false);
    assert.equal(r.stderr, '');
  });

  it('with no scenario named runs the default set, into ./dmabuf-run', async () => {
    const r = await runMain([...SHORT, '--json', '--no-progress']);
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout) as RunJson;
    assert.deepEqual(
      doc.scenarios.map((s) => s.name),
      SCENARIOS.filter((s) => s.inDefaultSet && runsOn(s, 'soft')).map((s) => s.name),
      'the default set, less what does not run on the default device',
    );
    assert.ok(existsSync(path.join(r.cwd, 'dmabuf-run/report.html')), 'the default --out');
  });

  it('--compare runs every scenario that honours the knob once per value, side by side', async () => {
    const r = await runMain(['run', ...SHORT, '--compare', 'deferred-free=on,off', '--no-report', '--no-trace']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /compare deferred-free:/);
    assert.match(r.stdout, /^ {2}metric +on +off +off\/on$/m);
  });

  it('--list describes every scenario and every knob with its values', async () => {
    const r = await runMain(['run', '--list']);
    assert.equal(r.code, 0);
    for (const s of SCENARIOS) assert.match(r.stdout, new RegExp(`\\b${s.name}\\b`));
    for (const name of Object.keys(KNOBS)) assert.ok(r.stdout.includes(`${name}=`), `knob ${name}`);
    assert.match(r.stdout, /deferred-free=on\*,off/);
  });

  it('--help prints the options and exits 0', async () => {
    const r = await runMain(['run', '--help']);
    assert.equal(r.code, 0);
    for (const option of [
      '--seed',
      '--clients',
      '--budget',
      '--duration',
      '--device',
      '--compare',
      '--json',
      '--out',
    ]) {
      assert.ok(r.stdout.includes(option), `${option} in the help`);
    }
  });
});

describe('dmabuf run: bad input exits 2 with a message and runs nothing', () => {
  const bad = async (args: string[], ...patterns: RegExp[]): Promise<void> => {
    const r = await runMain(args);
    assert.equal(r.code, 2, `exit code for ${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stdout, '', 'nothing on stdout');
    for (const p of patterns) assert.match(r.stderr, p);
    assert.equal(existsSync(path.join(r.cwd, 'dmabuf-run')), false, 'no output written');
  };

  it('sanity: an unknown scenario is named, with the valid ones', async () => {
    await bad(['run', 'churn', 'frobnicate'], /^dmabuf run: unknown scenario: frobnicate; valid scenarios: churn/m);
  });

  it('an unknown option is named, with the valid options', async () => {
    await bad(['run', '--turbo'], /unknown option '--turbo'/, /valid options: --seed, --clients, --budget, --duration/);
  });

  it('a word that is neither a command nor a scenario is reported as an unknown scenario', async () => {
    await bad(['walk'], /unknown scenario: walk/);
  });

  it('a bad size names the value and the expected form', async () => {
    await bad(['run', '--budget', '64Q'], /--budget: cannot read "64Q" as a size/, /for example 64M/);
    await bad(['run', '--budget', '1K'], /--budget: 1K is out of range; give a size from 4M to 4G/);
  });

  it('bad durations, client counts and seeds name the value and the expected form', async () => {
    await bad(['run', '--duration', 'soon'], /--duration: cannot read "soon" as a duration/, /for example 10s/);
    await bad(['run', '--clients', '0'], /--clients: expected a whole number from 1 to 64, got "0"/);
    await bad(['run', '--seed', 'x'], /--seed: expected a whole number from 0 to 4294967295/);
  });

  it('a missing value, an unknown device and a bad --compare are refused with the valid choices', async () => {
    await bad(['run', '--seed'], /option '--seed <n>' argument missing/);
    await bad(['run', '--device', 'gpu'], /Allowed choices are soft, webgpu/);
    await bad(['run', '--compare', 'gc=on,off'], /unknown knob "gc"; valid knobs and values: chain-gc=walk,queue/);
    await bad(['run', '--compare', 'deferred-free=on,maybe'], /unknown value "maybe"; valid values: on, off/);
  });

  it('a scenario named for a device it does not run on says which devices it runs on', async () => {
    await bad(
      ['run', 'release-storm', '--device', 'webgpu'],
      /release-storm does not run on --device webgpu; it runs on --device soft$/m,
    );
    await bad(['run', 'churn', 'release-storm', '--device', 'webgpu'], /release-storm does not run on --device webgpu/);
  });

  it('--compare of a knob none of the named scenarios uses says which scenarios use it', async () => {
    await bad(
      ['run', 'churn', '--compare', 'chain-gc=walk,queue'],
      /none of the named scenarios \(churn\) uses this knob/,
    );
  });
});

describe('dmabuf run: failures and interruption', () => {
  it('an output that cannot be written is reported, the summary still printed, and the exit code is 1', async () => {
    const first = await runMain(['run', 'churn', ...SHORT, '--no-progress', '--no-report', '--no-trace']);
    const blocker = path.join(first.cwd, 'a-file');
    writeFileSync(blocker, 'not a directory');
    const r = await runMain(['run', 'churn', ...SHORT, '--no-progress', '--no-trace', '--out', blocker]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /could not write .*report\.html/);
    assert.match(r.stdout, /^churn: /m);
  });

  it('an abort (as Ctrl-C) stops the run, writes the partial report and trace, and exits 130', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 300);
    const r = await runMain(['run', 'churn', '--duration', '20s', '--budget', '16M', '--json', '--out', 'o'], {
      signal: controller.signal,
    });
    assert.equal(r.code, 130);
    const doc = JSON.parse(r.stdout) as RunJson;
    assert.equal(doc.interrupted, true);
    assert.equal(doc.exitCode, 130);
    assert.equal(doc.scenarios[0]!.status, 'interrupted');
    assert.ok(doc.wallMs < 10_000, `stopped early (${doc.wallMs} ms)`);
    assert.match(readFileSync(doc.outputs.report!, 'utf8'), /Interrupted \(Ctrl-C\): the results are partial/);
    assert.deepEqual(traceProblems(JSON.parse(readFileSync(doc.outputs.trace!, 'utf8'))), []);
  });
});

describe('the dmabuf bin', () => {
  it('sanity: exits 2 as a process for bad input', async () => {
    const r = await runBin(['run', 'nope']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown scenario: nope/);
  });

  it('Ctrl-C (SIGINT) stops the run cleanly: exit 130, a partial summary, report and trace written', async () => {
    let sent = false;
    const r = await runBin(['run', 'churn', '--duration', '30s', '--budget', '16M'], {
      onStderr: (text, child) => {
        if (!sent && /churn: started/.test(text)) {
          sent = true;
          setTimeout(() => child.kill('SIGINT'), 300);
        }
      },
    });
    assert.ok(sent, `the run started: ${r.stderr}`);
    assert.equal(r.code, 130, r.stderr);
    assert.match(r.stderr, /stopping \(Ctrl-C again to quit at once\)/);
    assert.match(r.stdout, /^INTERRUPTED \(Ctrl-C\)/m);
    assert.match(r.stdout, /^churn \[INTERRUPTED\]/m);
    assert.match(readFileSync(path.join(r.cwd, 'dmabuf-run/report.html'), 'utf8'), /Interrupted/);
    assert.ok(existsSync(path.join(r.cwd, 'dmabuf-run/trace.json')), 'trace written');
  });
});
