// The hook-free build: stripping on the syntax tree, unit cases of each folding rule, the real
// hooked files (as written and reformatted by biome), and the copies it makes (type-checked, and
// behaving like src/ on a scripted run).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  HOOK_METHODS,
  SRC_DIR,
  STRIPPED_FILES,
  hookReferences,
  hookedBuild,
  loadBuild,
  stripLockdepHooks,
  typeCheckCopy,
  writeCopies,
  type Build,
  type CopySet,
} from '../../bench/lockdep-strip.js';
import { asOtherTask } from '../helpers/other-task.js';

const read = (rel: string): string => fs.readFileSync(path.join(SRC_DIR, rel), 'utf8');
const IMPORT = "import { lockdep } from '../base/lockdep-hooks.js';\n";
/** Strips a probe file that starts with the hook import (the result without leading line breaks). */
const strip = (body: string): string => stripLockdepHooks(IMPORT + body, 'probe.ts').source.trimStart();

/**
 * A short scripted run through both modules (callbacks, waits, late cases, a queued lock, a
 * wait-die back-off and its slow lock), as text: builds that behave alike print the same lines.
 */
async function transcript(build: Build): Promise<string[]> {
  const { DmaFence, fenceContextAlloc } = build.fence;
  const { WwAcquireCtx, WwClass, WwMutex } = build.ww;
  const log: string[] = [];
  const ops = { getDriverName: () => 'transcript', getTimelineName: () => 'transcript' };
  const context = fenceContextAlloc();
  const f = new DmaFence(ops, context, 1);
  log.push(`addCallback ${f.addCallback(() => log.push('callback ran'))}`);
  const waiting = f.wait();
  log.push(`signal ${f.signal(5)}, again ${f.signal(6)}, status ${f.status}, timestamp ${f.timestamp}`);
  log.push(
    `wait ${await waiting}, late wait ${await f.wait()}, late ` +
      `addCallback ${f.addCallback(() => log.push('late callback ran'))}`,
  );
  const g = new DmaFence(ops, context, 2);
  log.push(`waitAny ${await DmaFence.waitAny([g, f])}, zero-timeout wait ${await g.wait({ timeout: 0 })}`);
  g.setError('EIO');
  log.push(`error signal ${g.signal(7)}, status ${g.status}`);

  const cls = new WwClass('lockdep_bench_transcript', 'wait-die');
  const a = new WwMutex(cls, 'a');
  const b = new WwMutex(cls, 'b');
  await a.lock();
  log.push(`tryLock on a held mutex ${a.tryLock()}`);
  const queued = asOtherTask(async () => {
    await a.lock();
    log.push(`queued lock granted, waiters ${a.waiters}`);
    a.unlock();
  });
  log.push(`waiters ${a.waiters}`);
  a.unlock();
  await queued;
  const older = new WwAcquireCtx(cls);
  const younger = new WwAcquireCtx(cls);
  await asOtherTask(() => b.lock(older));
  const youngerRun = asOtherTask(async () => {
    await a.lock(younger);
    try {
      await b.lock(younger);
      log.push('younger got b');
    } catch (err) {
      log.push(`younger backs off: ${(err as Error).name}, contending ${younger.contendingLock?.name}`);
    }
    a.unlock();
    await b.lockSlow(younger);
    log.push(`younger slow-locked b, holds ${younger.acquired}`);
    b.unlock();
    younger.fini();
  });
  for (let turns = 0; b.waiters === 0; turns++) {
    assert.ok(turns < 100, 'the younger context never queued on b');
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  b.unlock();
  older.fini();
  await youngerRun;
  log.push(`all free ${!a.isLocked && !b.isLocked}`);
  return log;
}

describe('stripLockdepHooks: folding rules', () => {
  it('sanity: an optional hook call goes, with the import and the comment above it', () => {
    const out = strip(
      'export function f(): void {\n  // Tell the validator.\n  lockdep?.mightReclaim();\n  work();\n}\n',
    );
    assert.equal(out, 'export function f(): void {\n  work();\n}\n');
  });

  it('an if on the binding keeps its live branch and drops the other', () => {
    const out = strip(
      'export function f(): number {\n  if (lockdep !== null) {\n    ' +
        'lockdep.mightReclaim();\n    return 1;\n  } else {\n    return 2;\n  }\n}\n',
    );
    assert.equal(out, 'export function f(): number {\n  {\n    return 2;\n  }\n}\n');
  });

  it('a const folded from the binding disappears; its uses get the constant; tests on it fold', () => {
    const out = strip(
      [
        'export function f(x: object): unknown {',
        '  const token = lockdep !== null ? lockdep.request(cls, x, null, false) : undefined;',
        '  if (token instanceof Error) throw token;',
        '  if (token !== undefined) lockdep?.enter(token);',
        '  return g(token);',
        '}',
        '',
      ].join('\n'),
    );
    assert.equal(out, 'export function f(x: object): unknown {\n  return g(undefined);\n}\n');
  });

  it('a && chain that is false whatever its pure left side is, folds; an impure left side stays', () => {
    const pure = strip(
      'export function f(n: number): void {\n  if ((n & 4) !== 0 && lockdep !== null) lockdep.mightReclaim();\n}\n',
    );
    assert.equal(pure, 'export function f(n: number): void {\n}\n');
    const impure = strip(
      'export function f(): void {\n  if (check() && lockdep !== null) lockdep.mightReclaim();\n}\n',
    );
    assert.equal(impure, 'export function f(): void {\n  if (check() && false) {}\n}\n');
  });

  it('helpers left empty go with their calls; helpers and methods only dead code used go too', () => {
    const out = strip(
      [
        "import { BugError } from '../base/errors.js';",
        'function granted(token: object): void {',
        '  lockdep?.acquired(token);',
        '}',
        'function ask(): object | Error {',
        '  try {',
        '    return lockdep!.request(cls, {}, null, false);',
        '  } catch (err) {',
        '    return new BugError(String(err));',
        '  }',
        '}',
        'export class M {',
        '  #report(): void {',
        '    lockdep?.release(this);',
        '  }',
        '  lock(t: object): void {',
        '    granted(t);',
        '    const token = lockdep !== null ? ask() : undefined;',
        '    this.#report();',
        '    use(token);',
        '  }',
        '}',
        '',
      ].join('\n'),
    );
    assert.equal(out, 'export class M {\n  lock(t: object): void {\n    use(undefined);\n  }\n}\n');
  });

  it('a removed statement where the syntax needs one becomes {}; a shorthand property keeps its name', () => {
    const out = strip(
      [
        'export function f(a: boolean): object {',
        '  if (a) work();',
        '  else if (lockdep !== null) lockdep.mightReclaim();',
        '  for (const x of [1]) lockdep?.mightWait(x > 0);',
        '  return { lockdep };',
        '}',
        '',
      ].join('\n'),
    );
    assert.equal(
      out,
      'export function f(a: boolean): object {\n  if (a) work();\n  else ' +
        '{}\n  for (const x of [1]) {}\n  return { lockdep: null };\n}\n',
    );
  });

  it('an unguarded hook cannot be stripped: it throws, naming the line', () => {
    assert.throws(
      () => strip('export function f(): void {\n  lockdep!.mightReclaim();\n}\n'),
      /hook reference\(s\) left[\s\S]*\b2: null\.mightReclaim\(\);/,
    );
  });

  it('fails loudly on a file without the hook import', () => {
    assert.throws(() => stripLockdepHooks(read('base/clock.ts'), 'base/clock.ts'), /removed nothing/);
  });

  it('hookReferences sees the binding and hook calls in code, not in comments or strings', () => {
    const body = "// lockdep?.mightWait(true) in a comment\nconst s = 'lockdep.release(x)';\nlockdep?.release(s);\n";
    const source = `${IMPORT}${body}`;
    assert.deepEqual(hookReferences(source), ['4: lockdep?.release(s);']);
    assert.ok(HOOK_METHODS.has('mightWait') && HOOK_METHODS.has('request'), [...HOOK_METHODS].join(', '));
  });
});

/** Each hooked file: as written, reformatted by biome at a narrower width, and both stripped. */
interface HookedFile {
  readonly source: string;
  readonly stripped: string;
  readonly formatted: string;
  readonly strippedFromFormatted: string;
}

const BIOME = path.join(SRC_DIR, '..', 'node_modules', '.bin', 'biome');

/**
 * `text` as biome formats it, at the project's line width or at `lineWidth` (a narrower width wraps the
 * hook calls differently: the copy that proves the strip does not depend on how a line is laid out).
 */
function format(rel: string, text: string, lineWidth?: number): string {
  const width = lineWidth === undefined ? [] : [`--line-width=${lineWidth}`];
  return execFileSync(BIOME, ['format', ...width, `--stdin-file-path=formatted/${rel}`], {
    cwd: path.join(SRC_DIR, '..'),
    input: text,
    encoding: 'utf8',
  });
}

describe('stripLockdepHooks on the hooked modules', () => {
  const files = new Map<string, HookedFile>();
  before(() => {
    for (const rel of STRIPPED_FILES) {
      const source = read(rel);
      const formatted = format(rel, source, 72);
      files.set(rel, {
        source,
        stripped: stripLockdepHooks(source, rel).source,
        formatted,
        strippedFromFormatted: stripLockdepHooks(formatted, rel).source,
      });
    }
  });

  it('sanity: both hooked files lose their hooks and keep no reference to one', () => {
    for (const [rel, f] of files) {
      assert.ok(hookReferences(f.source, rel).length > 0, `${rel} should have hooks to strip`);
      assert.deepEqual(hookReferences(f.stripped, rel), [], `${rel}: hooks left`);
      assert.doesNotMatch(f.stripped, /\blockdep\b(?!-hooks\.js')/, `${rel}: the binding is still named`);
    }
  });

  it('keeps the hot paths: signal, addCallback, lock and unlock are still there', () => {
    const fence = files.get('fence/dma-fence.ts')!.stripped;
    const ww = files.get('locking/ww-mutex.ts')!.stripped;
    for (const sig of ['signal(timestamp?: number): boolean {', 'addCallback(callback: FenceCallback): boolean {']) {
      assert.ok(fence.includes(sig), `dma-fence.ts lost ${sig}`);
    }
    for (const sig of [
      'lock(ctx?: WwAcquireCtx | null, options?: WwLockOptions): Promise<void> {',
      'unlock(): void {',
    ]) {
      assert.ok(ww.includes(sig), `ww-mutex.ts lost ${sig}`);
    }
  });

  it('strips a copy reformatted by biome to the same code: the hooks are found by meaning, not by line', () => {
    for (const [rel, f] of files) {
      assert.notEqual(f.formatted, f.source, `${rel}: the formatter changed nothing, so this proves nothing`);
      assert.deepEqual(hookReferences(f.strippedFromFormatted, rel), []);
      // Compared at the narrow width: biome keeps an object literal it once broke over lines broken.
      assert.equal(format(rel, f.strippedFromFormatted, 72), format(rel, f.stripped, 72), rel);
    }
  });

  describe('the copies of src/ they make', () => {
    let dir: string;
    let set: CopySet;
    let formattedSet: CopySet;
    let stripped: Build;
    let hookedCopy: Build;
    let strippedFormatted: Build;

    before(async () => {
      set = writeCopies({ hooked: 1, stripped: 1 });
      // A src/ whose hooked files were reformatted, stripped in turn.
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dmabuf-strip-formatted-'));
      const src = path.join(dir, 'src');
      fs.cpSync(SRC_DIR, src, { recursive: true });
      for (const [rel, f] of files) fs.writeFileSync(path.join(src, rel), f.formatted);
      formattedSet = writeCopies({ hooked: 0, stripped: 1 }, src);
      stripped = await loadBuild(set.stripped[0]!);
      hookedCopy = await loadBuild(set.hooked[0]!);
      strippedFormatted = await loadBuild(formattedSet.stripped[0]!);
    });
    after(() => {
      set?.remove();
      formattedSet?.remove();
      if (dir !== undefined) fs.rmSync(dir, { recursive: true, force: true });
    });

    it('sanity: the copies are module graphs of their own and the stripped files on disk have no hooks', () => {
      assert.notEqual(stripped.fence.DmaFence, hookedBuild.fence.DmaFence);
      assert.notEqual(stripped.ww.WwMutex, hookedCopy.ww.WwMutex);
      for (const rel of STRIPPED_FILES) {
        const onDisk = fs.readFileSync(path.join(set.stripped[0]!.srcDir, rel), 'utf8');
        assert.deepEqual(hookReferences(onDisk, rel), [], rel);
        assert.equal(fs.readFileSync(path.join(set.hooked[0]!.srcDir, rel), 'utf8'), read(rel), `${rel}: copy differs`);
      }
    });

    it('type-check with the project compiler options (stripped from src/ and from the reformatted files)', () => {
      assert.deepEqual(typeCheckCopy(set.stripped[0]!, formattedSet.stripped[0]!), []);
    });

    it('behave like src/ and like the unmodified copy on the scripted run', async () => {
      const expected = await transcript(hookedBuild);
      assert.ok(expected.includes('callback ran') && expected.includes('all free true'), expected.join('\n'));
      assert.deepEqual(await transcript(stripped), expected);
      assert.deepEqual(await transcript(strippedFormatted), expected);
      assert.deepEqual(await transcript(hookedCopy), expected);
    });
  });
});
