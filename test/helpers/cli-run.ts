/**
 * Test helpers for `dmabuf run`: the program in-process with captured output, and the program as
 * a child process (for exit codes and signals).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { main } from '../../src/cli/program.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const BIN = fileURLToPath(new URL('../../src/cli/bin.ts', import.meta.url));

/** A writable that keeps what it was given; `isTTY`/`columns` make it look like a terminal. */
export class CaptureStream extends Writable {
  text = '';
  isTTY?: boolean;
  columns?: number;

  constructor(tty?: { columns: number }) {
    super();
    if (tty !== undefined) {
      this.isTTY = true;
      this.columns = tty.columns;
    }
  }

  override _write(chunk: Buffer | string, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    this.text += chunk.toString();
    done();
  }
}

export interface CliOutcome {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** The directory `--out` was resolved against. */
  readonly cwd: string;
}

/** A fresh temporary directory. */
export function tempDir(prefix = 'dmabuf-run-'): string {
  return mkdtempSync(path.join(tmpdir(), prefix));
}

/** Runs `main(args)` in this process, in a fresh temporary cwd. */
export async function runMain(args: readonly string[], options: { signal?: AbortSignal } = {}): Promise<CliOutcome> {
  const stdout = new CaptureStream();
  const stderr = new CaptureStream();
  const cwd = tempDir();
  const code = await main(args, { stdout, stderr, cwd, ...(options.signal ? { signal: options.signal } : {}) });
  return { code, stdout: stdout.text, stderr: stderr.text, cwd };
}

/**
 * Runs `src/cli/bin.ts` as a child process (through tsx) in a fresh temporary cwd (where the
 * default `--out` lands). `onStderr`
 * sees stderr as it arrives and may signal the child.
 */
export function runBin(
  args: readonly string[],
  options: { onStderr?: (text: string, child: ReturnType<typeof spawn>) => void; timeoutMs?: number } = {},
): Promise<CliOutcome & { readonly signal: NodeJS.Signals | null }> {
  const cwd = tempDir();
  return new Promise((resolve, reject) => {
    // tsx by absolute URL: the child runs in the temporary directory, where `tsx` alone resolves to nothing.
    const child = spawn(
      process.execPath,
      ['--conditions=@dmabuf/source', '--import', import.meta.resolve('tsx'), BIN, ...args],
      {
        cwd,
        env: { ...process.env, FORCE_COLOR: '0' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      options.onStderr?.(stderr, child);
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, cwd });
    });
  });
}
