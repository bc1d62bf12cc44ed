/**
 * The global `Disposable` types that dmabuf's declarations use, for TypeScript consumers whose
 * `lib` lacks `ESNext.Disposable` (the default for ES2022). Same shape as TypeScript's and
 * `@types/node`'s declarations, so they merge with either; types only (`index.ts` refers to this
 * module with `export type {}`). The run time must have `Symbol.dispose` and `Symbol.asyncDispose`.
 *
 * @example
 * ```ts
 * const holder: Disposable = { [Symbol.dispose]: () => console.log('released') };
 * holder[Symbol.dispose]();
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
