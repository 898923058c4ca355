/**
 * testnet/process — starting, watching and stopping the network's child processes.
 *
 * `ManagedProcess` wraps one long-running child (a tor node): spawned directly
 * (no shell), in its own process group so a terminal's Ctrl-C reaches only us,
 * with stdout/stderr going to a file (no pipes to drain). Its `exited` promise
 * always resolves, and `stop()` sends SIGTERM, then SIGKILL after a bound, and
 * waits for the exit. `runTool()` runs a short helper (tor-gencert,
 * `tor --verify-config`) with a timeout and an AbortSignal, killing it if
 * either fires. Neither knows what tor is.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, writeFileSync } from 'node:fs';
import { EnvironmentError, TimeoutError } from '../errors.js';
import { abortReason } from './wait.js';

export interface ExitInfo {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface SpawnOptions {
  /** Where the child's stdout and stderr go (created or truncated). */
  readonly outputPath: string;
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
}

export class ManagedProcess {
  readonly name: string;
  readonly pid: number;
  readonly exited: Promise<ExitInfo>;
  private exitInfo: ExitInfo | undefined;
  private readonly child: ChildProcess;

  private constructor(name: string, child: ChildProcess, pid: number, exited: Promise<ExitInfo>) {
    this.name = name;
    this.child = child;
    this.pid = pid;
    this.exited = exited;
    void exited.then((info) => {
      this.exitInfo = info;
    });
  }

  /** Spawns `file args…`; rejects with an EnvironmentError when it cannot be started at all. */
  static async start(name: string, file: string, args: readonly string[], options: SpawnOptions): Promise<ManagedProcess> {
    const outputFd = openSync(options.outputPath, 'w');
    let child: ChildProcess;
    try {
      child = spawn(file, args, {
        cwd: options.cwd,
        env: options.env ?? process.env,
        stdio: ['ignore', outputFd, outputFd],
        detached: true,
      });
    } finally {
      closeSync(outputFd);
    }
    const exited = new Promise<ExitInfo>((resolve) => {
      child.once('exit', (code, signal) => resolve({ code, signal }));
      child.once('error', () => resolve({ code: null, signal: null }));
    });
    if (child.pid === undefined) {
      // spawn reports ENOENT/EACCES through an 'error' event on the next tick.
      const spawnError = await new Promise<Error>((resolve) => child.once('error', resolve));
      throw new EnvironmentError(`cannot start ${name} (${file}): ${spawnError.message}`, { cause: spawnError });
    }
    return new ManagedProcess(name, child, child.pid, exited);
  }

  get running(): boolean {
    return this.exitInfo === undefined;
  }

  get exit(): ExitInfo | undefined {
    return this.exitInfo;
  }

  /** Sends `signal` if the process still runs; returns whether it was sent. */
  signal(signal: NodeJS.Signals): boolean {
    if (!this.running) return false;
    try {
      return this.child.kill(signal);
    } catch {
      return false;
    }
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process has exited. */
  async stop(graceMs: number): Promise<{ readonly exit: ExitInfo; readonly killed: boolean }> {
    if (!this.running) return { exit: await this.exited, killed: false };
    this.signal('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), graceMs);
    });
    const first = await Promise.race([this.exited, graceOver]);
    clearTimeout(timer);
    if (first !== 'timeout') return { exit: first, killed: false };
    this.signal('SIGKILL');
    return { exit: await this.exited, killed: true };
  }
}

export interface ToolOptions {
  readonly cwd?: string;
  /** Written to the tool's stdin, which is then closed. */
  readonly input?: string;
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
  /** The combined output is also written here. */
  readonly logPath?: string;
  /** Says what the tool is doing, for timeout messages. */
  readonly what: string;
}

export interface ToolResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly output: string;
}

const MAX_TOOL_OUTPUT = 256 * 1024;

/** Runs a short-lived helper; kills it (SIGKILL) and waits for its exit on timeout or abort. */
export function runTool(file: string, args: readonly string[], options: ToolOptions): Promise<ToolResult> {
  if (options.signal?.aborted) return Promise.reject(abortReason(options.signal, options.what));
  return new Promise<ToolResult>((resolve, reject) => {
    // Its own process group, like the nodes: a terminal's Ctrl-C reaches only us, and we kill it.
    const child = spawn(file, args, { cwd: options.cwd, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    let output = '';
    const collect = (chunk: Buffer): void => {
      if (output.length < MAX_TOOL_OUTPUT) output += chunk.toString('utf8');
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(options.input ?? '');

    let failure: Error | undefined;
    const kill = (error: Error): void => {
      failure ??= error;
      child.kill('SIGKILL');
    };
    const timer = setTimeout(() => kill(new TimeoutError(options.what, options.timeoutMs)), options.timeoutMs);
    const onAbort = (): void => kill(abortReason(options.signal as AbortSignal, options.what));
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const finish = (): void => {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
    };
    child.once('error', (err) => {
      finish();
      reject(new EnvironmentError(`cannot run ${file}: ${err.message}`, { cause: err }));
    });
    child.once('close', (code, signal) => {
      finish();
      if (options.logPath) writeFileSync(options.logPath, output);
      if (failure) reject(failure);
      else resolve({ code, signal, output });
    });
  });
}
