/**
 * Every example in the documentation is a program that compiles and runs: each `ts` block of
 * README.md and each `@example` of a module under src/. They are extracted into a scratch
 * directory inside the package (so `import ... from 'dmabuf'` resolves to src/ through the
 * `source` condition, as in examples/), type-checked together with the project's compiler
 * options, then run one after the other in a child process and must each complete. (One process
 * for all: a process each cost a minute of CPU per test pass. Between examples the runner turns
 * the validator off and forgets its graph, the one global state an example may leave on.)
 *
 * A module's example may import its own module and neighbours by relative path (internal
 * modules have no public name); those paths are resolved from the module's directory.
 * Examples that cannot run are listed in NOT_RUN with the reason, and the test prints them.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import ts from 'typescript';
import { webgpuSkip } from './helpers/webgpu.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Examples that are not run, with the reason. Keep it empty unless an example truly cannot run. */
const NOT_RUN: Readonly<Record<string, string>> = {};

/** Modules without an example of their own, with the reason. */
const NO_EXAMPLE: Readonly<Record<string, string>> = {
  'src/index.ts': 'the export list; every module it exports has its own example',
  'src/webgpu.ts': 'the dmabuf/webgpu export list; every module it exports has its own example',
};

/** Printed by the runner after each example: completed, or failed with its error. */
const MARK = '@@example-done ';
const FAILED = '@@example-failed ';
const ALIVE = '@@examples-still-alive ';

/** Runs the examples named on its command line one after the other, in this process. */
const RUNNER = `
import { disableLockdep, resetLockdep } from LOCKDEP;
for (const file of process.argv.slice(2)) {
  try {
    await import(file);
    console.log(${JSON.stringify(MARK)} + file);
  } catch (err) {
    const why = String(err instanceof Error ? err.stack : err).split('\\n').slice(0, 4).join(' | ');
    console.log(${JSON.stringify(FAILED)} + file + ' ' + why);
  }
  disableLockdep();
  resetLockdep();
}
// Every example ran. A process that still has work after a grace period names what keeps it
// alive; one that drains exits here, before the native teardown of Dawn's handles, which can
// abort a process at exit under load.
setTimeout(() => {
  console.log(${JSON.stringify(ALIVE)} + JSON.stringify(process.getActiveResourcesInfo()));
  process.exit(0);
}, 5_000).unref();
process.on('beforeExit', () => process.exit(0));
`;

interface Snippet {
  /** `README.md#3` or `src/fence/dma-fence.ts#1`. */
  readonly id: string;
  /** Where relative imports are resolved from. */
  readonly dir: string;
  readonly code: string;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return name.endsWith('.ts') ? [path] : [];
  });
}

function readmeSnippets(): Snippet[] {
  const text = readFileSync(join(ROOT, 'README.md'), 'utf8');
  return [...text.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m, i) => ({
    id: `README.md#${i + 1}`,
    dir: ROOT,
    code: m[1]!,
  }));
}

function moduleSnippets(file: string): Snippet[] {
  const text = readFileSync(file, 'utf8');
  const rel = relative(ROOT, file);
  return [...text.matchAll(/@example\n\s*\* ```ts\n([\s\S]*?)\n\s*\* ```/g)].map((m, i) => ({
    id: `${rel}#${i + 1}`,
    dir: dirname(file),
    code: m[1]!.replace(/^\s*\* ?/gm, ''),
  }));
}

/** The snippet as a module of its own, relative imports pointing back at the module's directory. */
function program(snippet: Snippet): string {
  const code = snippet.code.replace(/(from\s+|import\s+)'(\.\.?\/[^']+)'/g, (_m, lead: string, spec: string) => {
    return `${lead}${JSON.stringify(resolve(snippet.dir, spec))}`;
  });
  return `// ${snippet.id}\n${code}\nexport {};\n`;
}

const snippets: Snippet[] = [
  ...readmeSnippets(),
  ...sourceFiles(join(ROOT, 'src'))
    .sort()
    .flatMap((file) => moduleSnippets(file)),
];

describe('documentation examples', () => {
  it('sanity: README and module examples were found', () => {
    assert.ok(snippets.filter((s) => s.id.startsWith('README')).length >= 5, 'README has examples');
    assert.ok(snippets.length >= 40, `${snippets.length} examples`);
  });

  it('every module has an @example, except the listed ones', () => {
    const missing = sourceFiles(join(ROOT, 'src'))
      .map((file) => relative(ROOT, file))
      .filter((rel) => !(rel in NO_EXAMPLE) && !snippets.some((s) => s.id.startsWith(`${rel}#`)));
    assert.deepEqual(missing, [], 'modules without an example');
  });

  it('every example type-checks and runs to completion', async (t) => {
    for (const [id, why] of Object.entries(NOT_RUN)) {
      assert.ok(
        snippets.some((s) => s.id === id),
        `NOT_RUN lists ${id}, which does not exist`,
      );
      t.diagnostic(`not run: ${id}: ${why}`);
    }
    // Inside the package (scratch/ is ignored by git and the linter), so 'dmabuf' resolves.
    const dir = join(ROOT, 'scratch', `doc-examples-${process.pid}`);
    mkdirSync(dir, { recursive: true });
    try {
      const files = new Map<string, Snippet>();
      snippets.forEach((snippet, i) => {
        const file = join(dir, `example-${String(i).padStart(3, '0')}.ts`);
        writeFileSync(file, program(snippet));
        files.set(file, snippet);
      });
      const config = ts.getParsedCommandLineOfConfigFile(
        join(ROOT, 'tsconfig.json'),
        {},
        {
          ...ts.sys,
          onUnRecoverableConfigFileDiagnostic: (d) => assert.fail(ts.flattenDiagnosticMessageText(d.messageText, '\n')),
        },
      );
      assert.ok(config !== undefined);
      const check = ts.createProgram([...files.keys()], { ...config.options, noEmit: true, rootDir: ROOT });
      const typeErrors = ts.getPreEmitDiagnostics(check).map((d) => {
        const snippet = d.file === undefined ? undefined : files.get(resolve(d.file.fileName));
        const line =
          d.file !== undefined && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start).line : 0;
        const where = snippet?.id ?? d.file?.fileName ?? '?';
        return `${where} line ${line}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
      });
      assert.deepEqual(typeErrors, [], 'examples that do not type-check');

      // WebGPU examples need an adapter: helpers/webgpu points Dawn at SwiftShader when it is
      // installed (the environment is inherited); without one they are skipped, as the device tests are.
      const gpuSkip = await webgpuSkip();
      const env: NodeJS.ProcessEnv = { ...process.env };
      delete env['NODE_TEST_CONTEXT'];
      const needsGpu = (snippet: Snippet) => snippet.code.includes("'dmabuf/webgpu'");
      if (gpuSkip !== undefined) {
        for (const snippet of files.values()) if (needsGpu(snippet)) t.diagnostic(`not run: ${snippet.id}: ${gpuSkip}`);
      }
      const toRun = [...files].filter(
        ([, snippet]) => !(snippet.id in NOT_RUN) && (gpuSkip === undefined || !needsGpu(snippet)),
      );
      const runner = join(dir, 'run-examples.ts');
      writeFileSync(runner, RUNNER.replace('LOCKDEP', JSON.stringify(join(ROOT, 'src/locking/lockdep.ts'))));
      let stdout = '';
      let failure = '';
      try {
        ({ stdout } = await run(
          process.execPath,
          ['--conditions=@dmabuf/source', '--import', 'tsx', runner, ...toRun.map(([file]) => file)],
          { cwd: ROOT, env, timeout: 120_000, maxBuffer: 16 << 20 },
        ));
      } catch (err) {
        const { stdout: out, stderr, message } = err as { stdout?: string; stderr?: string; message: string };
        stdout = out ?? '';
        failure = (stderr ?? message).trim().split('\n').slice(0, 8).join('\n');
      }
      const lines = stdout.split('\n');
      const done = new Set(lines.filter((line) => line.startsWith(MARK)).map((line) => line.slice(MARK.length)));
      const why = new Map(
        lines
          .filter((line) => line.startsWith(FAILED))
          .map((line) => {
            const rest = line.slice(FAILED.length);
            const space = rest.indexOf(' ');
            return [rest.slice(0, space), rest.slice(space + 1)] as const;
          }),
      );
      const alive = lines.find((line) => line.startsWith(ALIVE));
      const failures = toRun
        .filter(([file]) => !done.has(file))
        .map(([file, snippet]) => `${snippet.id}: ${why.get(file) ?? failure ?? 'did not run'}`);
      assert.deepEqual(failures, [], 'examples that did not run to completion');
      assert.equal(failure, '', 'the process running the examples failed');
      // Each ran, yet the process did not end: an example left a timer, a waiter or a worker alive.
      assert.equal(alive, undefined, 'the examples ran, but left work that keeps a process alive');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
