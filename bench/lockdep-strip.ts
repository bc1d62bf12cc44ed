/**
 * The hook-free build for the lockdep benchmark: strips the validator's hook statements from
 * copies of `src/` and loads them, so "hooks off" can be compared with "no hooks at all" in one
 * process. Split from `lockdep.bench.ts`, which measures; this file only prepares the builds.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as hookedFence from '../src/fence/dma-fence.js';
import * as hookedWw from '../src/locking/ww-mutex.js';

type FenceModule = typeof hookedFence;
type WwModule = typeof hookedWw;

/** One build of the two hooked modules. */
export interface Build {
  readonly label: string;
  readonly fence: FenceModule;
  readonly ww: WwModule;
}

/** `src/` itself: the modules `enableLockdep()` switches. */
export const hookedBuild: Build = { label: 'hooks', fence: hookedFence, ww: hookedWw };

/** The files whose copies lose their hooks (paths under `src/`). */
export const STRIPPED_FILES = ['fence/dma-fence.ts', 'locking/ww-mutex.ts'] as const;

// ---------------------------------------------------------------------------------------------
// Stripping the hooks

/** Words that mean a validator hook in code: the binding, its helpers and the hook names. */
const HOOK_WORD =
  /\blockdep\b|\blockdepGranted\b|#lockdepRequest\b|\bmightWait\b|\bbeginSignalling\b|\bendSignalling\b|\bplainCallbackOnLongRunning\b/;
/** Declarations of helpers that do nothing but call hooks: deleted whole. */
const HELPER_DECL = /^(?:function (?:lockdepGranted|mightWait)|#lockdepRequest)\(.*\{$/;
/** The import of the live binding. */
const HOOK_IMPORT = /^import \{([^}]*)\} from '((?:\.\.?\/)+(?:base\/)?lockdep-hooks\.js)';$/;

/** What {@link stripLockdepHooks} did to one file. */
export interface StrippedFile {
  readonly source: string;
  /** Deleted lines (trimmed), comments above deleted statements included. */
  readonly removed: readonly string[];
  /** Lines replaced by a hook-free version, as `before => after`. */
  readonly rewritten: readonly string[];
}

/** `text` with comments blanked (and string contents too, unless `keepStrings`); line breaks kept. */
export function codeOnly(text: string, keepStrings = false): string {
  return text.replace(/\/\*[\s\S]*?\*\/|\/\/[^\n]*|'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*"|`(?:[^`\\]|\\.)*`/g, (m) => {
    if (m.startsWith('/')) return m.replace(/[^\n]/g, ' ');
    return keepStrings ? m : m[0]! + m.slice(1, -1).replace(/[^\n]/g, ' ') + m[0]!;
  });
}

/**
 * Lines of `source` whose code mentions a hook, as `line: text`. Strings count (a hook name in a
 * message is suspect too); comments and module specifiers (`'../base/lockdep-hooks.js'`) do not.
 */
export function hookReferences(source: string): string[] {
  const lines = source.split('\n');
  const found: string[] = [];
  codeOnly(source, true)
    .split('\n')
    .forEach((code, i) => {
      if (HOOK_WORD.test(code.replace(/\bfrom\s*'[^']*'/, "from ''"))) found.push(`${i + 1}: ${lines[i]!.trim()}`);
    });
  return found;
}

/** Index of the line that closes the block opened on line `start`. */
function blockEnd(lines: readonly string[], start: number, file: string): number {
  let depth = 0;
  for (let i = start; i < lines.length; i++) {
    for (const ch of codeOnly(lines[i]!)) {
      if (ch === '{') depth++;
      else if (ch === '}') depth--;
    }
    if (depth === 0) return i;
    if (depth < 0) break;
  }
  throw new Error(`stripLockdepHooks: ${file}:${start + 1}: unbalanced block starting with "${lines[start]!.trim()}"`);
}

/**
 * Deletes the lock validator's hook statements from one source file, leaving the code a build
 * without the validator would have. Knows the shapes the hooks take in dmabuf:
 * - the import of `lockdep` (other names of that import stay);
 * - `if (lockdep !== null) { ... }` blocks, and helpers that only call hooks (`lockdepGranted`,
 *   `#lockdepRequest`, `mightWait`), deleted whole with their doc comment;
 * - one-line statements that mention a hook (`lockdep?.x()`, `if (...) lockdep.x()`,
 *   `if (token !== undefined) lockdepGranted(token)`) or a local derived from one
 *   (`const hooks = lockdep`, then `const cookie = hooks ...`, `hooks!.endSignalling(cookie)`);
 * - `const token = lockdep !== null ? ... : undefined` becomes `const token = undefined`, and
 *   `if (token instanceof Error) ...` (a report in throw mode) goes.
 * Comment lines right above a deleted statement go with it.
 * @throws {Error} when nothing was deleted, when a hook sits in a statement of another shape, or
 *   when any hook is left: the comparison would be meaningless.
 */
export function stripLockdepHooks(source: string, file: string): StrippedFile {
  const lines = source.split('\n');
  const out: string[] = [];
  const removed: string[] = [];
  const rewritten: string[] = [];
  // Locals of the current member that hold a hook or a value computed from one, and the tokens.
  let derived = new Set<string>();
  let tokens = new Set<string>();
  const remove = (from: number, to: number): void => {
    // The comment directly above: a `//` run, or a whole `/** ... */` block.
    if (out.at(-1)?.trim().endsWith('*/') === true) {
      for (let l = out.pop(); l !== undefined; l = out.pop()) {
        removed.push(l.trim());
        if (l.trim().startsWith('/*')) break;
      }
    }
    while (out.at(-1)?.trim().startsWith('//') === true) removed.push(out.pop()!.trim());
    for (let j = from; j <= to; j++) removed.push(lines[j]!.trim());
  };
  const rewrite = (code: string, indent: string, after: string): void => {
    rewritten.push(`${code} => ${after}`);
    out.push(indent + after);
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const code = line.trim();
    const indent = line.slice(0, line.length - line.trimStart().length);
    // A new top-level or class-member declaration: the previous one's locals are out of scope.
    if (code !== '' && indent.length <= 2 && !code.startsWith('*') && !code.startsWith('/')) {
      derived = new Set();
      tokens = new Set();
    }
    const imp = HOOK_IMPORT.exec(code);
    if (imp !== null) {
      const names = imp[1]!
        .split(',')
        .map((n) => n.trim())
        .filter((n) => n !== '');
      const kept = names.filter((n) => n !== 'lockdep');
      if (kept.length === names.length) out.push(line);
      else if (kept.length === 0) removed.push(code);
      else rewrite(code, indent, `import { ${kept.join(', ')} } from '${imp[2]!}';`);
      continue;
    }
    if (HELPER_DECL.test(code) || code === 'if (lockdep !== null) {') {
      const end = blockEnd(lines, i, file);
      remove(i, end);
      i = end;
      continue;
    }
    const scanned = codeOnly(code);
    if (HOOK_WORD.test(scanned) || [...derived].some((d) => new RegExp(`\\b${d}\\b`).test(scanned))) {
      if (!code.endsWith(';') || (scanned.match(/\{/g) ?? []).length !== (scanned.match(/\}/g) ?? []).length) {
        throw new Error(
          `stripLockdepHooks: ${file}:${i + 1}: a hook in a statement of a shape it does not know: "${code}"`,
        );
      }
      const decl = /^const (\w+) = (.*);$/.exec(code);
      if (decl !== null && /^lockdep !== null \? .* : undefined$/.test(decl[2]!)) {
        tokens.add(decl[1]!);
        rewrite(code, indent, `const ${decl[1]!} = undefined;`);
        continue;
      }
      if (decl !== null) derived.add(decl[1]!);
      remove(i, i);
      continue;
    }
    const guard = /^if \((\w+) instanceof Error\) (?:return .*|throw \w+);$/.exec(code);
    if (guard !== null && tokens.has(guard[1]!)) {
      remove(i, i);
      continue;
    }
    out.push(line);
  }
  const result = out.join('\n');
  if (removed.length === 0)
    throw new Error(`stripLockdepHooks: ${file}: removed nothing; has the hook code changed shape?`);
  const left = hookReferences(result);
  if (left.length > 0)
    throw new Error(`stripLockdepHooks: ${file}: ${left.length} hook reference(s) left:\n  ${left.join('\n  ')}`);
  return { source: result, removed, rewritten };
}

// ---------------------------------------------------------------------------------------------
// Copies of src/

/** The `src/` directory this benchmark belongs to. */
export const SRC_DIR = fileURLToPath(new URL('../src/', import.meta.url));

/** One copy of `src/` on disk. */
export interface SourceCopy {
  readonly label: string;
  /** Its `src/` directory. */
  readonly srcDir: string;
  readonly stripped: boolean;
}

/** Copies of `src/` in one temporary directory. */
export interface CopySet {
  readonly dir: string;
  readonly hooked: readonly SourceCopy[];
  readonly stripped: readonly SourceCopy[];
  /** Per stripped file (path under `src/`): what was done to it, the same in every stripped copy. */
  readonly files: Readonly<Record<string, StrippedFile>>;
  /** Deletes the directory (imported modules stay loaded). */
  remove(): void;
}

/**
 * Writes `hooked` unmodified and `stripped` hook-free copies of `srcDir` into a new temporary
 * directory. A `package.json` saying `"type": "module"` sits at its top, so tsx loads the copies
 * as ES modules like the originals (outside a module package it would compile them as CommonJS).
 */
export function writeCopies(counts: { readonly hooked: number; readonly stripped: number }, srcDir = SRC_DIR): CopySet {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dmabuf-lockdep-bench-'));
  try {
    fs.writeFileSync(path.join(dir, 'package.json'), '{ "type": "module", "private": true }\n');
    const files: Record<string, StrippedFile> = {};
    for (const rel of STRIPPED_FILES)
      files[rel] = stripLockdepHooks(fs.readFileSync(path.join(srcDir, rel), 'utf8'), rel);
    const make = (stripped: boolean, n: number): SourceCopy[] =>
      Array.from({ length: n }, (_, i) => {
        const copyDir = path.join(dir, `${stripped ? 'stripped' : 'hooked'}-${i}`, 'src');
        fs.cpSync(srcDir, copyDir, { recursive: true });
        if (stripped) for (const rel of STRIPPED_FILES) fs.writeFileSync(path.join(copyDir, rel), files[rel]!.source);
        return { label: `${stripped ? 'hooks stripped' : 'hooks'} #${i}`, srcDir: copyDir, stripped };
      });
    const hooked = make(false, counts.hooked);
    const stripped = make(true, counts.stripped);
    return { dir, hooked, stripped, files, remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/** Imports the two modules of `copy` (sharing nothing with `src/` or with other copies). */
export async function loadBuild(copy: SourceCopy): Promise<Build> {
  const url = (rel: string): string => pathToFileURL(path.join(copy.srcDir, rel)).href;
  const fence = (await import(url('fence/dma-fence.ts'))) as FenceModule;
  const ww = (await import(url('locking/ww-mutex.ts'))) as WwModule;
  if (fence.DmaFence === hookedFence.DmaFence || ww.WwMutex === hookedWw.WwMutex) {
    throw new Error(`loadBuild: the copy in ${copy.srcDir} resolved to the original modules`);
  }
  return { label: copy.stripped ? 'hooks stripped' : 'hooks', fence, ww };
}

/**
 * Type-checks the stripped files of `copy` (and what they import from it) with the project's
 * compiler options. @returns the diagnostics as text (empty when clean), or null when the
 * `typescript` package (a development dependency) is not installed.
 */
export async function typeCheckCopy(copy: SourceCopy): Promise<string[] | null> {
  let ts: typeof import('typescript');
  try {
    ts = (await import('typescript')).default;
  } catch {
    return null;
  }
  const projectRoot = path.dirname(SRC_DIR);
  const root = path.dirname(copy.srcDir);
  const config = ts.readConfigFile(path.join(projectRoot, 'tsconfig.json'), (p) => ts.sys.readFile(p));
  if (config.error !== undefined) return [ts.flattenDiagnosticMessageText(config.error.messageText, '\n')];
  const raw = (config.config as { compilerOptions?: object }).compilerOptions ?? {};
  const { options, errors } = ts.convertCompilerOptionsFromJson(raw, root);
  if (errors.length > 0) return errors.map((e) => ts.flattenDiagnosticMessageText(e.messageText, '\n'));
  const program = ts.createProgram(
    STRIPPED_FILES.map((rel) => path.join(copy.srcDir, rel)),
    { ...options, noEmit: true, rootDir: root, typeRoots: [path.join(projectRoot, 'node_modules', '@types')] },
  );
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const where =
      d.file !== undefined && d.start !== undefined
        ? `${path.relative(root, d.file.fileName)}:${d.file.getLineAndCharacterOfPosition(d.start).line + 1}: `
        : '';
    return where + ts.flattenDiagnosticMessageText(d.messageText, '\n');
  });
}
