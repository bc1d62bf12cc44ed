/**
 * The hook-free build for the lockdep benchmark: copies of `src/` whose hooked modules lose the
 * validator's hooks, loaded beside `src/`, so "hooks off" can be compared with "no hooks at all"
 * in one process. Split from `lockdep.bench.ts`, which measures; this file only prepares builds.
 *
 * Overview: {@link stripLockdepHooks} works on the TypeScript syntax tree, not on lines, so a
 * reformatted hook strips the same way. It does what a compiler would do if the validator's
 * binding were the constant `null`:
 * 1. every read of the `lockdep` binding imported from `base/lockdep-hooks` becomes `null`, and
 *    the import goes;
 * 2. expressions are folded where that is safe (`null !== null`, `false && x`, `c ? a : b`,
 *    `null?.f(x)`, `undefined instanceof C`, `!x`), and so are `const`s whose initializer folds
 *    to such a constant because of the hooks (their uses get the constant);
 * 3. dead code goes: `if` statements whose test folded (the live branch stays), statements that
 *    do nothing (`null?.acquired(token)`), helpers left empty and the calls to them, and private
 *    methods, module functions, `const`s and imports that only removed code referred to; each
 *    with the comments directly above it.
 * Only expressions without side effects are dropped: a test with side effects stays (the branch
 * it can no longer take becomes `{}`). Folding assumes what dmabuf's code respects: `instanceof` on a class without a
 * custom `Symbol.hasInstance`, and property reads of `this.#private` fields have no side effects.
 *
 * Contract: {@link stripLockdepHooks} throws when nothing was stripped, when the result does not
 * parse, or when a hook is left (a hook used without a `null` check cannot be stripped: that is
 * a bug in the source, which would crash with the validator off). The stripped copies type-check
 * with the project's options ({@link typeCheckCopy}; the tests run it).
 *
 * @example
 * ```ts
 * import { stripLockdepHooks } from './lockdep-strip.js';
 * const out = stripLockdepHooks(
 *   "import { lockdep } from '../base/lockdep-hooks.js';\n" +
 *     'export function f(): void {\n  lockdep?.mightReclaim();\n}\n',
 *   'probe.ts',
 * );
 * console.log(out.source); // export function f(): void {\n}
 * ```
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';
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

/** The `src/` directory this benchmark belongs to. */
export const SRC_DIR = fileURLToPath(new URL('../src/', import.meta.url));

// ---------------------------------------------------------------------------------------------
// Reading a file

/** The module that declares the hooks, as an import specifier names it. */
const HOOKS_MODULE = /(^|\/)lockdep-hooks(\.js)?$/;

/** The hook methods: the members of the `LockdepHooks` interface in `base/lockdep-hooks.ts`. */
export const HOOK_METHODS: ReadonlySet<string> = (() => {
  const file = path.join(SRC_DIR, 'base', 'lockdep-hooks.ts');
  const sf = ts.createSourceFile(file, fs.readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  const names = new Set<string>();
  sf.forEachChild((node) => {
    if (ts.isInterfaceDeclaration(node) && node.name.text === 'LockdepHooks')
      for (const member of node.members) if (member.name !== undefined) names.add(member.name.getText(sf));
  });
  if (names.size === 0) throw new Error(`lockdep-strip: no LockdepHooks interface in ${file}`);
  return names;
})();

/** A parsed file with a type checker for resolving names (no lib, no imports followed). */
function parse(source: string, file: string): { sf: ts.SourceFile; checker: ts.TypeChecker } {
  const name = `/${path.basename(file)}`;
  const sf = ts.createSourceFile(name, source, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const host: ts.CompilerHost = {
    getSourceFile: (f) => (f === name ? sf : undefined),
    getDefaultLibFileName: () => '/lib.d.ts',
    writeFile: () => {},
    getCurrentDirectory: () => '/',
    getCanonicalFileName: (f) => f,
    useCaseSensitiveFileNames: () => true,
    getNewLine: () => '\n',
    fileExists: (f) => f === name,
    readFile: (f) => (f === name ? source : undefined),
  };
  const program = ts.createProgram(
    [name],
    { noLib: true, noResolve: true, types: [], target: ts.ScriptTarget.Latest },
    host,
  );
  return { sf: program.getSourceFile(name)!, checker: program.getTypeChecker() };
}

/** The symbol an identifier refers to; in `{ x }`, the variable `x`, not the property. */
function valueSymbol(checker: ts.TypeChecker, node: ts.Node): ts.Symbol | undefined {
  const parent = node.parent;
  if (parent !== undefined && ts.isShorthandPropertyAssignment(parent) && parent.name === node)
    return checker.getShorthandAssignmentValueSymbol(parent);
  return checker.getSymbolAtLocation(node);
}

/** Where `node` starts, as `line N` (1-based). */
function lineOf(sf: ts.SourceFile, node: ts.Node): number {
  return sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1;
}

/**
 * Places in `source` that still use a hook, as `line: text`: reads of the `lockdep` binding
 * imported from `base/lockdep-hooks`, calls of a {@link HOOK_METHODS} method, and property uses
 * of a `null` or `undefined` literal (what an unguarded hook strips to). Comments, strings and
 * the import's module name do not count.
 */
export function hookReferences(source: string, file = 'source.ts'): string[] {
  const { sf, checker } = parse(source, file);
  const binding = new Set<ts.Symbol>();
  for (const spec of hookImports(sf)) {
    const symbol = checker.getSymbolAtLocation(spec.name);
    if (symbol !== undefined) binding.add(symbol);
  }
  const found = new Map<number, string>();
  const lines = source.split('\n');
  const note = (node: ts.Node): void => {
    const line = lineOf(sf, node);
    found.set(line, `${line}: ${lines[line - 1]!.trim()}`);
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) return;
    if (ts.isIdentifier(node)) {
      const symbol = valueSymbol(checker, node);
      if (symbol !== undefined && binding.has(symbol)) note(node);
    } else if (ts.isCallExpression(node)) {
      const callee = skipOuter(node.expression);
      if (ts.isPropertyAccessExpression(callee) && HOOK_METHODS.has(callee.name.text)) note(node);
    } else if (ts.isPropertyAccessExpression(node) || ts.isElementAccessExpression(node)) {
      const base = skipOuter(node.expression);
      if (base.kind === ts.SyntaxKind.NullKeyword || (ts.isIdentifier(base) && base.text === 'undefined')) note(node);
    }
    node.forEachChild(visit);
  };
  visit(sf);
  return [...found.entries()].sort((a, b) => a[0] - b[0]).map(([, text]) => text);
}

/** The import specifiers of the `lockdep` binding from the hooks module. */
function hookImports(sf: ts.SourceFile): ts.ImportSpecifier[] {
  const specs: ts.ImportSpecifier[] = [];
  for (const statement of sf.statements) {
    if (!ts.isImportDeclaration(statement) || !ts.isStringLiteral(statement.moduleSpecifier)) continue;
    if (!HOOKS_MODULE.test(statement.moduleSpecifier.text)) continue;
    const bindings = statement.importClause?.namedBindings;
    if (bindings === undefined || !ts.isNamedImports(bindings)) continue;
    for (const spec of bindings.elements) if ((spec.propertyName ?? spec.name).text === 'lockdep') specs.push(spec);
  }
  return specs;
}

/** `x` without parentheses, `!`, `as` and `satisfies` around it. */
function skipOuter(node: ts.Expression): ts.Expression {
  let e = node;
  for (;;) {
    if (ts.isParenthesizedExpression(e) || ts.isNonNullExpression(e) || ts.isAsExpression(e)) e = e.expression;
    else if (ts.isSatisfiesExpression(e) || ts.isTypeAssertionExpression(e)) e = e.expression;
    else return e;
  }
}

// ---------------------------------------------------------------------------------------------
// Folding

/** A constant the folding knows: what `null`, `undefined` and the booleans fold to. */
type Constant = null | undefined | boolean;
const UNKNOWN: unique symbol = Symbol('unknown');
type Maybe<T> = T | typeof UNKNOWN;

/** What folding found out about an expression. */
interface Folded {
  readonly value: Maybe<Constant>;
  /** Its truthiness, known sometimes when the value is not (`pure && false`). */
  readonly truthy: Maybe<boolean>;
  /** Evaluating it has no side effect (and cannot throw). */
  readonly pure: boolean;
  /** It depends on the hooks: only such expressions are rewritten. */
  readonly tainted: boolean;
  /** An optional chain that stopped at a nullish base: the rest of the chain is not evaluated. */
  readonly shorted: boolean;
}

const OPAQUE_PURE: Folded = { value: UNKNOWN, truthy: UNKNOWN, pure: true, tainted: false, shorted: false };
const OPAQUE: Folded = { ...OPAQUE_PURE, pure: false };

function constant(value: Constant, pure: boolean, tainted: boolean, shorted = false): Folded {
  return { value, truthy: Boolean(value), pure, tainted, shorted };
}

function literalText(value: Constant): string {
  return value === undefined ? 'undefined' : String(value);
}

/** Folds expressions of one file, given the constants known for some symbols. */
class Folder {
  readonly #checker: ts.TypeChecker;
  readonly known = new Map<ts.Symbol, Constant>();

  constructor(checker: ts.TypeChecker) {
    this.#checker = checker;
  }

  symbolOf(node: ts.Node): ts.Symbol | undefined {
    return valueSymbol(this.#checker, node);
  }

  fold(node: ts.Expression): Folded {
    if (ts.isParenthesizedExpression(node) || ts.isAsExpression(node) || ts.isSatisfiesExpression(node))
      return this.fold(node.expression);
    if (ts.isNonNullExpression(node) || ts.isTypeAssertionExpression(node)) return this.fold(node.expression);
    switch (node.kind) {
      case ts.SyntaxKind.NullKeyword:
        return constant(null, true, false);
      case ts.SyntaxKind.TrueKeyword:
        return constant(true, true, false);
      case ts.SyntaxKind.FalseKeyword:
        return constant(false, true, false);
      case ts.SyntaxKind.ThisKeyword:
        return OPAQUE_PURE;
    }
    if (ts.isIdentifier(node)) {
      const symbol = this.symbolOf(node);
      if (symbol !== undefined && this.known.has(symbol)) return constant(this.known.get(symbol)!, true, true);
      // The global `undefined` (declared nowhere in the file), not a local of that name.
      if (node.text === 'undefined' && (symbol?.declarations ?? []).length === 0)
        return constant(undefined, true, false);
      return OPAQUE_PURE;
    }
    if (ts.isLiteralExpression(node) || ts.isNoSubstitutionTemplateLiteral(node)) return OPAQUE_PURE;
    if (ts.isVoidExpression(node)) {
      const operand = this.fold(node.expression);
      return constant(undefined, operand.pure, operand.tainted);
    }
    if (ts.isPrefixUnaryExpression(node)) return this.#unary(node);
    if (ts.isBinaryExpression(node)) return this.#binary(node);
    if (ts.isConditionalExpression(node)) {
      const test = this.fold(node.condition);
      const whenTrue = this.fold(node.whenTrue);
      const whenFalse = this.fold(node.whenFalse);
      if (test.truthy !== UNKNOWN) {
        const taken = test.truthy ? whenTrue : whenFalse;
        return { ...taken, pure: test.pure && taken.pure, tainted: test.tainted || taken.tainted, shorted: false };
      }
      return { ...OPAQUE, pure: test.pure && whenTrue.pure && whenFalse.pure };
    }
    if (ts.isPropertyAccessExpression(node) || ts.isElementAccessExpression(node) || ts.isCallExpression(node))
      return this.#access(node);
    return OPAQUE;
  }

  #unary(node: ts.PrefixUnaryExpression): Folded {
    const operand = this.fold(node.operand);
    switch (node.operator) {
      case ts.SyntaxKind.ExclamationToken:
        return operand.truthy !== UNKNOWN
          ? constant(!operand.truthy, operand.pure, operand.tainted)
          : { ...OPAQUE, pure: operand.pure, tainted: operand.tainted };
      case ts.SyntaxKind.MinusToken:
      case ts.SyntaxKind.PlusToken:
      case ts.SyntaxKind.TildeToken:
        return { ...OPAQUE, pure: operand.pure };
      default:
        return OPAQUE; // ++ and --
    }
  }

  #binary(node: ts.BinaryExpression): Folded {
    const op = node.operatorToken.kind;
    const left = this.fold(node.left);
    if (op === ts.SyntaxKind.AmpersandAmpersandToken || op === ts.SyntaxKind.BarBarToken) {
      // `&&` stops at a falsy left side, `||` at a truthy one.
      const shortCircuits = op === ts.SyntaxKind.BarBarToken;
      if (left.truthy === shortCircuits) return { ...left, shorted: false };
      const right = this.fold(node.right);
      const pure = left.pure && right.pure;
      const tainted = left.tainted || right.tainted;
      if (left.truthy !== UNKNOWN) return { ...right, pure, tainted, shorted: false };
      // `x && false` is falsy whatever x is (and `x || true` truthy); only the value is unknown.
      if (right.truthy === shortCircuits) return { ...OPAQUE, truthy: shortCircuits, pure, tainted };
      return { ...OPAQUE, pure, tainted };
    }
    const right = this.fold(node.right);
    const pure = left.pure && right.pure;
    const tainted = left.tainted || right.tainted;
    switch (op) {
      case ts.SyntaxKind.QuestionQuestionToken:
        if (left.value === null || left.value === undefined) return { ...right, pure, tainted, shorted: false };
        if (left.value !== UNKNOWN) return { ...left, shorted: false };
        return { ...OPAQUE, pure, tainted };
      case ts.SyntaxKind.EqualsEqualsEqualsToken:
      case ts.SyntaxKind.ExclamationEqualsEqualsToken:
      case ts.SyntaxKind.EqualsEqualsToken:
      case ts.SyntaxKind.ExclamationEqualsToken: {
        if (left.value === UNKNOWN || right.value === UNKNOWN) return { ...OPAQUE, pure, tainted };
        const loose = op === ts.SyntaxKind.EqualsEqualsToken || op === ts.SyntaxKind.ExclamationEqualsToken;
        // biome-ignore lint/suspicious/noDoubleEquals: folding the source's own loose comparison
        const equal = loose ? left.value == right.value : left.value === right.value;
        const negated =
          op === ts.SyntaxKind.ExclamationEqualsEqualsToken || op === ts.SyntaxKind.ExclamationEqualsToken;
        return constant(negated ? !equal : equal, pure, tainted);
      }
      case ts.SyntaxKind.InstanceOfKeyword:
        // A primitive is an instance of no ordinary class.
        if (left.value !== UNKNOWN && ts.isIdentifier(skipOuter(node.right))) return constant(false, pure, tainted);
        return { ...OPAQUE, pure, tainted };
      case ts.SyntaxKind.AmpersandToken:
      case ts.SyntaxKind.BarToken:
      case ts.SyntaxKind.CaretToken:
      case ts.SyntaxKind.LessThanLessThanToken:
      case ts.SyntaxKind.GreaterThanGreaterThanToken:
      case ts.SyntaxKind.GreaterThanGreaterThanGreaterThanToken:
      case ts.SyntaxKind.PlusToken:
      case ts.SyntaxKind.MinusToken:
      case ts.SyntaxKind.AsteriskToken:
      case ts.SyntaxKind.LessThanToken:
      case ts.SyntaxKind.LessThanEqualsToken:
      case ts.SyntaxKind.GreaterThanToken:
      case ts.SyntaxKind.GreaterThanEqualsToken:
        return { ...OPAQUE, pure, tainted };
      default:
        return OPAQUE; // assignments, `in`, commas...
    }
  }

  #access(node: ts.PropertyAccessExpression | ts.ElementAccessExpression | ts.CallExpression): Folded {
    const base = this.fold(node.expression);
    // An optional link on a nullish base, or any link after a chain that already stopped: the
    // rest of the chain (arguments included) is never evaluated.
    const optionalStop = node.questionDotToken !== undefined && (base.value === null || base.value === undefined);
    if ((optionalStop && base.pure) || (base.shorted && ts.isOptionalChain(node)))
      return constant(undefined, base.pure, base.tainted, true);
    if (ts.isPropertyAccessExpression(node) && ts.isPrivateIdentifier(node.name) && base.pure && !base.tainted)
      return node.expression.kind === ts.SyntaxKind.ThisKeyword ? OPAQUE_PURE : OPAQUE;
    return { ...OPAQUE, tainted: base.tainted };
  }
}

// ---------------------------------------------------------------------------------------------
// Stripping

/** What {@link stripLockdepHooks} did to one file. */
export interface StrippedFile {
  readonly source: string;
  /** Removed statements, members and declarations, as `line N: first line of the code`. */
  readonly removed: readonly string[];
  /** Expressions replaced by what they folded to, as `line N: before => after`. */
  readonly replaced: readonly string[];
}

type Edit =
  | { readonly kind: 'remove'; readonly node: ts.Node }
  | { readonly kind: 'text'; readonly node: ts.Node; readonly text: string }
  | { readonly kind: 'child'; readonly node: ts.Node; readonly child: ts.Node };

/** One file's stripping: decisions on its syntax tree, then its text with them applied. */
class Stripper {
  readonly #sf: ts.SourceFile;
  readonly #folder: Folder;
  readonly #edits = new Map<ts.Node, Edit>();
  /** Symbol -> the identifiers that refer to it (declarations excluded). */
  readonly #references = new Map<ts.Symbol, ts.Node[]>();
  /** Helpers (functions, methods) whose whole body was stripped away. */
  readonly #emptied = new Set<ts.Symbol>();
  /** Imported names to drop (their import lists are rewritten last). */
  readonly #droppedImports = new Set<ts.ImportSpecifier>();

  constructor(source: string, file: string) {
    const { sf, checker } = parse(source, file);
    this.#sf = sf;
    this.#folder = new Folder(checker);
  }

  run(): StrippedFile {
    const imports = hookImports(this.#sf);
    for (const spec of imports) {
      const symbol = this.#folder.symbolOf(spec.name);
      if (symbol !== undefined) this.#folder.known.set(symbol, null);
    }
    this.#indexReferences(this.#sf);
    this.#propagateConstants();
    // Each round may kill references that make more declarations dead, or helpers empty.
    for (let round = 0; ; round++) {
      if (round > 50) throw new Error('lockdep-strip: no fixed point after 50 rounds');
      const before = this.#edits.size + this.#emptied.size;
      this.#visitStatements(this.#sf.statements);
      this.#removeUnused();
      if (this.#edits.size + this.#emptied.size === before) break;
    }
    for (const spec of imports) this.#droppedImports.add(spec);
    this.#rewriteImports();
    return this.#result();
  }

  #indexReferences(root: ts.Node): void {
    const visit = (node: ts.Node): void => {
      if (ts.isIdentifier(node) || ts.isPrivateIdentifier(node)) {
        const parent = node.parent;
        const isDeclarationName =
          (ts.isVariableDeclaration(parent) ||
            ts.isFunctionDeclaration(parent) ||
            ts.isMethodDeclaration(parent) ||
            ts.isImportSpecifier(parent) ||
            ts.isParameter(parent) ||
            ts.isPropertyDeclaration(parent)) &&
          parent.name === node;
        const symbol = this.#folder.symbolOf(node);
        if (!isDeclarationName && symbol !== undefined) {
          const list = this.#references.get(symbol) ?? [];
          list.push(node);
          this.#references.set(symbol, list);
        }
      }
      node.forEachChild(visit);
    };
    visit(root);
  }

  /** `const x = <folds to a constant because of the hooks>` makes x that constant. */
  #propagateConstants(): void {
    for (let changed = true; changed; ) {
      changed = false;
      const visit = (node: ts.Node): void => {
        if (
          ts.isVariableDeclaration(node) &&
          ts.isIdentifier(node.name) &&
          node.initializer !== undefined &&
          ts.isVariableDeclarationList(node.parent) &&
          (node.parent.flags & ts.NodeFlags.Const) !== 0
        ) {
          const symbol = this.#folder.symbolOf(node.name);
          const folded = this.#folder.fold(node.initializer);
          if (symbol !== undefined && !this.#folder.known.has(symbol) && folded.tainted && folded.pure) {
            if (folded.value !== UNKNOWN) {
              this.#folder.known.set(symbol, folded.value);
              changed = true;
            }
          }
        }
        node.forEachChild(visit);
      };
      visit(this.#sf);
    }
  }

  /** Whether `node` survives the edits decided so far. */
  #live(node: ts.Node): boolean {
    for (let n: ts.Node = node; n.parent !== undefined; n = n.parent) {
      const edit = this.#edits.get(n.parent);
      if (edit === undefined) continue;
      if (edit.kind !== 'child' || edit.child !== n) return false;
    }
    return !this.#edits.has(node) || this.#edits.get(node)!.kind === 'child';
  }

  #set(edit: Edit): void {
    if (!this.#edits.has(edit.node)) this.#edits.set(edit.node, edit);
  }

  /** Removes a statement; where the syntax needs one (`else`, a loop body), leaves `{}`. */
  #removeStatement(node: ts.Statement): void {
    const parent = node.parent;
    const inList =
      ts.isBlock(parent) ||
      ts.isSourceFile(parent) ||
      ts.isModuleBlock(parent) ||
      ts.isCaseClause(parent) ||
      ts.isDefaultClause(parent);
    this.#set(inList ? { kind: 'remove', node } : { kind: 'text', node, text: '{}' });
  }

  #visitStatements(statements: readonly ts.Node[]): void {
    for (const s of statements) if (!this.#edits.has(s)) this.#visit(s);
  }

  /** Decides about `node` and, where it stays, about what is inside it. */
  #visit(node: ts.Node): void {
    if (this.#edits.has(node)) {
      const edit = this.#edits.get(node)!;
      if (edit.kind === 'child') this.#visit(edit.child);
      return;
    }
    if (ts.isIfStatement(node)) {
      const test = this.#folder.fold(node.expression);
      if (test.tainted && test.pure && test.truthy !== UNKNOWN) {
        const taken = test.truthy ? node.thenStatement : node.elseStatement;
        if (taken === undefined || this.#dead(taken)) this.#removeStatement(node);
        else {
          this.#set({ kind: 'child', node, child: taken });
          this.#visit(taken);
        }
        return;
      }
      if (test.tainted && test.truthy !== UNKNOWN) {
        // The test has side effects, so it stays; the branch it never takes becomes empty.
        const untaken = test.truthy ? node.elseStatement : node.thenStatement;
        if (untaken !== undefined) this.#set({ kind: 'text', node: untaken, text: '{}' });
      }
      this.#visitExpression(node.expression);
      this.#visit(node.thenStatement);
      if (node.elseStatement !== undefined) this.#visit(node.elseStatement);
      const thenDead = this.#dead(node.thenStatement);
      const elseDead = node.elseStatement === undefined || this.#dead(node.elseStatement);
      if (thenDead && elseDead && test.pure && this.#touched(node)) this.#removeStatement(node);
      else if (thenDead && this.#touched(node.thenStatement) && !ts.isBlock(node.thenStatement))
        this.#set({ kind: 'text', node: node.thenStatement, text: '{}' });
      return;
    }
    if (ts.isExpressionStatement(node)) {
      if (this.#deadExpression(node.expression)) this.#removeStatement(node);
      else this.#visitExpression(node.expression);
      return;
    }
    if (ts.isVariableStatement(node)) {
      const decls = node.declarationList.declarations;
      const constants = decls.filter((d) => this.#isFoldedConstant(d));
      if (constants.length === decls.length) this.#removeStatement(node);
      else for (const d of decls) if (d.initializer !== undefined) this.#visitExpression(d.initializer);
      return;
    }
    if (
      ts.isBlock(node) ||
      ts.isSourceFile(node) ||
      ts.isModuleBlock(node) ||
      ts.isCaseClause(node) ||
      ts.isDefaultClause(node)
    ) {
      this.#visitStatements(node.statements);
      return;
    }
    if (ts.isClassDeclaration(node) || ts.isClassExpression(node)) {
      for (const member of node.members) this.#visit(member);
      return;
    }
    if (ts.isFunctionLike(node) && 'body' in node && node.body !== undefined) {
      const body = node.body as ts.ConciseBody;
      if (ts.isBlock(body)) {
        this.#visitStatements(body.statements);
        this.#noteEmptied(node, body);
      } else this.#visitExpression(body);
      return;
    }
    if (ts.isReturnStatement(node) || ts.isThrowStatement(node)) {
      if (node.expression !== undefined) this.#visitExpression(node.expression);
      return;
    }
    if (ts.isImportDeclaration(node) || ts.isInterfaceDeclaration(node) || ts.isTypeAliasDeclaration(node)) return;
    node.forEachChild((child) => {
      if (ts.isExpression(child)) this.#visitExpression(child);
      else this.#visit(child);
    });
  }

  /** Folds what can be folded inside a live expression, and visits functions written in it. */
  #visitExpression(expr: ts.Node): void {
    if (this.#edits.has(expr)) {
      const edit = this.#edits.get(expr)!;
      if (edit.kind === 'child') this.#visitExpression(edit.child);
      return;
    }
    if (ts.isFunctionLike(expr) || ts.isClassExpression(expr)) {
      this.#visit(expr);
      return;
    }
    if (ts.isExpression(expr) && !this.#isAssignmentTarget(expr)) {
      const folded = this.#folder.fold(expr);
      if (folded.tainted && folded.pure) {
        if (folded.value !== UNKNOWN) {
          const literal = literalText(folded.value);
          const shorthand = ts.isShorthandPropertyAssignment(expr.parent) && expr.parent.name === expr;
          this.#set({ kind: 'text', node: expr, text: shorthand ? `${expr.getText(this.#sf)}: ${literal}` : literal });
          return;
        }
        if (ts.isConditionalExpression(expr)) {
          const test = this.#folder.fold(expr.condition);
          if (test.truthy !== UNKNOWN) {
            const taken = test.truthy ? expr.whenTrue : expr.whenFalse;
            this.#set({ kind: 'child', node: expr, child: taken });
            this.#visitExpression(taken);
            return;
          }
        }
      }
    }
    expr.forEachChild((child) => this.#visitExpression(child));
  }

  #isAssignmentTarget(expr: ts.Node): boolean {
    const parent = expr.parent;
    return (
      parent !== undefined &&
      ts.isBinaryExpression(parent) &&
      parent.left === expr &&
      parent.operatorToken.kind >= ts.SyntaxKind.FirstAssignment &&
      parent.operatorToken.kind <= ts.SyntaxKind.LastAssignment
    );
  }

  /** A `const` that folded to a constant because of the hooks (its uses get the constant). */
  #isFoldedConstant(decl: ts.VariableDeclaration): boolean {
    if (!ts.isIdentifier(decl.name)) return false;
    const symbol = this.#folder.symbolOf(decl.name);
    return symbol !== undefined && this.#folder.known.has(symbol) && decl.initializer !== undefined;
  }

  /** Whether an expression, as a statement, does nothing once stripped. */
  #deadExpression(expr: ts.Expression): boolean {
    const folded = this.#folder.fold(expr);
    if (folded.pure && (folded.tainted || folded.shorted) && (folded.value !== UNKNOWN || folded.shorted)) return true;
    // A call of a helper that the stripping emptied, with arguments that do nothing.
    const e = skipOuter(expr);
    if (!ts.isCallExpression(e)) return false;
    const callee = skipOuter(e.expression);
    const name = ts.isPropertyAccessExpression(callee) ? callee.name : ts.isIdentifier(callee) ? callee : undefined;
    if (name === undefined) return false;
    if (ts.isPropertyAccessExpression(callee) && callee.expression.kind !== ts.SyntaxKind.ThisKeyword) return false;
    const symbol = this.#folder.symbolOf(name);
    return symbol !== undefined && this.#emptied.has(symbol) && e.arguments.every((a) => this.#folder.fold(a).pure);
  }

  /** Whether a statement does nothing once stripped. */
  #dead(statement: ts.Statement): boolean {
    const edit = this.#edits.get(statement);
    if (edit !== undefined) return edit.kind === 'remove' || (edit.kind === 'text' && edit.text === '{}');
    if (ts.isBlock(statement)) return statement.statements.every((s) => this.#dead(s));
    if (ts.isEmptyStatement(statement)) return true;
    return false;
  }

  /** Whether the stripping changed something inside `node`. */
  #touched(node: ts.Node): boolean {
    let found = false;
    const visit = (n: ts.Node): void => {
      if (found) return;
      if (this.#edits.has(n)) found = true;
      else n.forEachChild(visit);
    };
    visit(node);
    return found;
  }

  /** A helper whose every statement was stripped: calls to it do nothing. */
  #noteEmptied(fn: ts.SignatureDeclaration, body: ts.Block): void {
    if (body.statements.length === 0 || !body.statements.every((s) => this.#dead(s))) return;
    const name = fn.name;
    if (name === undefined || !(ts.isIdentifier(name) || ts.isPrivateIdentifier(name))) return;
    const symbol = this.#folder.symbolOf(name);
    if (symbol !== undefined) this.#emptied.add(symbol);
  }

  /**
   * Removes what only removed code referred to: module functions that are not exported, private
   * methods, `const`s with pure initializers, and imported names. Only names that had references
   * before the stripping count: what was unused before stays.
   */
  #removeUnused(): void {
    const unused = (name: ts.Node): boolean => {
      const symbol = this.#folder.symbolOf(name);
      const refs = symbol !== undefined ? this.#references.get(symbol) : undefined;
      return refs !== undefined && refs.length > 0 && refs.every((r) => !this.#live(r));
    };
    const visit = (node: ts.Node): void => {
      if (!this.#live(node)) return;
      if (ts.isFunctionDeclaration(node) && node.name !== undefined && !this.#exported(node) && unused(node.name))
        this.#set({ kind: 'remove', node });
      else if (ts.isMethodDeclaration(node) && ts.isPrivateIdentifier(node.name) && unused(node.name))
        this.#set({ kind: 'remove', node });
      else if (
        ts.isVariableStatement(node) &&
        !this.#exported(node) &&
        node.declarationList.declarations.length === 1 &&
        ts.isIdentifier(node.declarationList.declarations[0]!.name) &&
        this.#pureInitializer(node.declarationList.declarations[0]!) &&
        unused(node.declarationList.declarations[0]!.name)
      )
        this.#set({ kind: 'remove', node });
      else if (ts.isImportSpecifier(node) && unused(node.name)) this.#droppedImports.add(node);
      node.forEachChild(visit);
    };
    visit(this.#sf);
  }

  #pureInitializer(decl: ts.VariableDeclaration): boolean {
    const init = decl.initializer;
    return init === undefined || ts.isFunctionLike(init) || this.#folder.fold(init).pure;
  }

  #exported(node: ts.Node): boolean {
    return (
      ts.canHaveModifiers(node) && (ts.getModifiers(node) ?? []).some((m) => m.kind === ts.SyntaxKind.ExportKeyword)
    );
  }

  /** Rewrites each import list that lost names; drops an import that lost them all. */
  #rewriteImports(): void {
    const lists = new Set([...this.#droppedImports].map((spec) => spec.parent));
    for (const list of lists) {
      const kept = list.elements.filter((e) => !this.#droppedImports.has(e));
      const declaration = list.parent.parent;
      if (kept.length === 0 && list.parent.name === undefined) this.#set({ kind: 'remove', node: declaration });
      else this.#set({ kind: 'text', node: list, text: `{ ${kept.map((e) => e.getText(this.#sf)).join(', ')} }` });
    }
  }

  // -------------------------------------------------------------------------------------------
  // Writing the result

  #result(): StrippedFile {
    const sf = this.#sf;
    const text = sf.text;
    const removed: string[] = [];
    const replaced: string[] = [];
    const firstLine = (node: ts.Node): string => node.getText(sf).split('\n')[0]!.trim();
    const oneLine = (code: string): string => code.replace(/\s+/g, ' ').trim();
    /** `node` as it ends up: its edit applied, or its text with the edits inside it applied. */
    const renderNode = (node: ts.Node): string => {
      const edit = this.#edits.get(node);
      if (edit === undefined) return renderInside(node);
      if (edit.kind === 'remove') return '';
      if (edit.kind === 'text') return edit.text;
      return renderNode(edit.child);
    };
    const renderInside = (inside: ts.Node): string => {
      const [start, end] = ts.isSourceFile(inside) ? [0, text.length] : [inside.getStart(sf), inside.end];
      const edits = [...this.#edits.values()]
        .filter((e) => this.#outermostBelow(e.node, inside))
        .map((e) => ({ edit: e, range: this.#range(e) }))
        .sort((a, b) => a.range[0] - b.range[0]);
      let out = '';
      let pos = start;
      for (const { edit, range } of edits) {
        out += text.slice(pos, range[0]);
        const after = renderNode(edit.node);
        if (edit.kind === 'remove') removed.push(`line ${lineOf(sf, edit.node)}: ${firstLine(edit.node)}`);
        else replaced.push(`line ${lineOf(sf, edit.node)}: ${oneLine(edit.node.getText(sf))} => ${oneLine(after)}`);
        out += after;
        pos = range[1];
      }
      return out + text.slice(pos, end);
    };
    return { source: renderInside(sf), removed, replaced };
  }

  /** Whether `node` lies strictly inside `inside` with no edited node between them. */
  #outermostBelow(node: ts.Node, inside: ts.Node): boolean {
    if (node === inside) return false;
    for (let n = node.parent; n !== undefined; n = n.parent) {
      if (n === inside) return true;
      if (this.#edits.has(n)) return false;
    }
    return false;
  }

  /**
   * The text an edit covers. A removed statement or member takes the comments directly above it
   * (not those after a blank line), the line break before them and a comment on its own line's
   * end; a removed import name takes its comma.
   */
  #range(edit: Edit): [number, number] {
    const sf = this.#sf;
    const text = sf.text;
    const node = edit.node;
    if (edit.kind !== 'remove') return [node.getStart(sf), node.end];
    let end = node.end;
    for (const c of ts.getTrailingCommentRanges(text, end) ?? [])
      if (!text.slice(end, c.pos).includes('\n')) end = c.end;
    // The trivia before the node: the rest of the previous code's line, maybe comment lines and
    // blank lines, then the node's indentation. Cut at the line break that ends the last blank
    // line (the comments after it belong to the node), else at the one ending the previous code.
    const fullStart = node.getFullStart();
    const trivia = text.slice(fullStart, node.getStart(sf));
    // An import keeps the comments above it: they may be the module's overview.
    const breaks = [...trivia.matchAll(/\n/g)].map((m) => m.index);
    if (breaks.length === 0) return [fullStart, text[end] === '\n' ? end + 1 : end];
    let cut = ts.isImportDeclaration(node) ? breaks.at(-1)! : breaks[0]!;
    if (!ts.isImportDeclaration(node))
      for (let i = 1; i < breaks.length; i++)
        if (trivia.slice(breaks[i - 1]! + 1, breaks[i]).trim() === '') cut = breaks[i]!;
    return [fullStart + cut, end];
  }
}

/**
 * `source` without the lock validator's hooks, as a build in which `lockdep` is always `null`
 * would have it (see the module overview).
 * @throws {Error} when nothing was stripped, the result does not parse, or a hook is left.
 */
export function stripLockdepHooks(source: string, file: string): StrippedFile {
  if (hookImports(ts.createSourceFile(file, source, ts.ScriptTarget.Latest, true)).length === 0)
    throw new Error(`stripLockdepHooks: ${file}: removed nothing (no lockdep import from base/lockdep-hooks)`);
  const result = new Stripper(source, file).run();
  if (result.removed.length === 0 && result.replaced.length === 0)
    throw new Error(`stripLockdepHooks: ${file}: removed nothing; does it use its lockdep import?`);
  const syntax = ts.transpileModule(result.source, { reportDiagnostics: true, fileName: file }).diagnostics ?? [];
  if (syntax.length > 0) {
    const messages = syntax.map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    throw new Error(`stripLockdepHooks: ${file}: the result does not parse:\n  ${messages.join('\n  ')}`);
  }
  const left = hookReferences(result.source, file);
  if (left.length > 0) {
    throw new Error(
      `stripLockdepHooks: ${file}: ${left.length} hook reference(s) left (lines of ` +
        `the result; a hook used without a null check?):\n  ${left.join('\n  ')}`,
    );
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// Copies of src/

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
 * Type-checks the stripped files of `copies` (and what they import from each copy) with the
 * project's compiler options, in one program (the library files are read once).
 * @returns the diagnostics as text (empty when clean).
 */
export function typeCheckCopy(...copies: readonly SourceCopy[]): string[] {
  const projectRoot = path.dirname(SRC_DIR);
  const config = ts.readConfigFile(path.join(projectRoot, 'tsconfig.json'), (p) => ts.sys.readFile(p));
  if (config.error !== undefined) return [ts.flattenDiagnosticMessageText(config.error.messageText, '\n')];
  const raw = (config.config as { compilerOptions?: object }).compilerOptions ?? {};
  const { options, errors } = ts.convertCompilerOptionsFromJson(raw, projectRoot);
  if (errors.length > 0) return errors.map((e) => ts.flattenDiagnosticMessageText(e.messageText, '\n'));
  const { rootDir: _rootDir, ...rest } = options;
  const program = ts.createProgram(
    copies.flatMap((copy) => STRIPPED_FILES.map((rel) => path.join(copy.srcDir, rel))),
    { ...rest, noEmit: true, typeRoots: [path.join(projectRoot, 'node_modules', '@types')] },
  );
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const where =
      d.file !== undefined && d.start !== undefined
        ? `${d.file.fileName}:${d.file.getLineAndCharacterOfPosition(d.start).line + 1}: `
        : '';
    return where + ts.flattenDiagnosticMessageText(d.messageText, '\n');
  });
}
