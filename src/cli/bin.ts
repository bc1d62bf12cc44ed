#!/usr/bin/env node
/**
 * The `dmabuf` command (the package's `bin`, compiled to `dist/cli/bin.js`).
 *
 * Overview: runs {@link main} on the process's arguments, with the Ctrl-C handling on, and exits
 * with its code (see `program.ts` for the codes). It imports `dmabuf/node` first, so the lock
 * validator follows async contexts and `DMABUF_LOCKDEP=1` turns it on for the whole run.
 *
 * @example
 * ```ts
 * // npx dmabuf run churn --duration 2s
 * ```
 */
import '../node.js';
import { main } from './program.js';

process.exitCode = await main(process.argv.slice(2), { handleSignals: true });
