#!/usr/bin/env node
/**
 * The `dmabuf` command: a small launcher for `src/cli/main.ts`.
 *
 * Why a child process rather than registering tsx in this process (`register` from
 * `tsx/esm/api`): the benchmarks measure memory with `gc()`, which exists only when V8 starts
 * with `--expose-gc`, and V8 flags cannot be given to a process that is already running
 * (`v8.setFlagsFromString` after start-up is documented as unsafe). So this file starts one node
 * with `--expose-gc --import <tsx>` and the program, passes the arguments through, shares the
 * terminal (stdio inherited) and ends as the child did: same exit code, or the same signal.
 *
 * tsx is resolved from this file's location, not from the working directory, so the command
 * works from any directory (`node --import tsx` alone resolves tsx against the cwd).
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const program = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
const tsx = import.meta.resolve('tsx');

const child = spawn(process.execPath, ['--expose-gc', '--import', tsx, program, ...process.argv.slice(2)], {
  stdio: 'inherit',
});

// Ctrl-C reaches the child through the terminal's process group; a signal sent to this process
// alone (kill, a supervisor) is passed on. Either way the child decides how to stop.
const forwarded = ['SIGINT', 'SIGTERM', 'SIGHUP'];
const forward = (signal) => {
  if (child.exitCode === null && child.signalCode === null) child.kill(signal);
};
for (const signal of forwarded) process.on(signal, forward);

child.on('error', (err) => {
  process.stderr.write(`dmabuf: could not start node for ${program}: ${err.message}\n`);
  process.exitCode = 1;
});

child.on('exit', (code, signal) => {
  for (const s of forwarded) process.off(s, forward);
  if (signal !== null) {
    process.kill(process.pid, signal);
    return;
  }
  process.exitCode = code ?? 1;
});
