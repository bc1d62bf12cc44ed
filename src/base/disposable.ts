/**
 * The explicit-resource-management types that dmabuf's declarations use, for consumers whose
 * TypeScript `lib` does not have them.
 *
 * Overview: owners in dmabuf implement `[Symbol.dispose]` / `[Symbol.asyncDispose]` so that
 * `using` works. TypeScript declares those names in its `ESNext.Disposable` library (from 5.2),
 * which a project targeting ES2022 with the default `lib` does not load; its compilation would
 * then fail inside dmabuf's `.d.ts` files. These global declarations have exactly the shape of
 * TypeScript's own (and of `@types/node`'s), so they merge with either when both are present.
 * `index.ts` refers to this module with a type-only export: nothing of it exists at run time.
 *
 * Contract: types only. The run time must provide `Symbol.dispose` and `Symbol.asyncDispose`
 * (Node.js 20, current browsers); where it does not, define both before importing dmabuf.
 *
 * @example
 * ```ts
 * import { Mutex } from 'dmabuf';
 * const holder: Disposable = { [Symbol.dispose]: () => console.log('released') };
 * holder[Symbol.dispose]();
 * console.log(new Mutex('m').isLocked);
 * ```
 */

declare global {
  interface SymbolConstructor {
    /** The method that `using` calls at the end of the block. */
    readonly dispose: unique symbol;
    /** The method that `await using` calls (and awaits) at the end of the block. */
    readonly asyncDispose: unique symbol;
  }

  /** An object that `using` can release. */
  interface Disposable {
    [Symbol.dispose](): void;
  }

  /** An object that `await using` can release. */
  interface AsyncDisposable {
    [Symbol.asyncDispose](): PromiseLike<void>;
  }
}

export {};
