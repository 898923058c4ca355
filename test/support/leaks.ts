/**
 * test/support/leaks — checks that a piece of work gives back every handle (sockets,
 * servers, timers, as Node reports them) and every file descriptor it took.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';

/** Counts of active handles by type, as `process.getActiveResourcesInfo()` reports them. */
export function activeResources(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of process.getActiveResourcesInfo()) counts[r] = (counts[r] ?? 0) + 1;
  return counts;
}

/** Open file descriptors of this process (Linux: /proc/self/fd). */
export function openFds(): number {
  try {
    return readdirSync('/proc/self/fd').length;
  } catch {
    return -1;
  }
}

/** `global.gc`, exposing it if the process was not started with --expose-gc. */
export function gcFunction(): () => void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g) return g;
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

async function settle(ms: number): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  await new Promise((r) => setTimeout(r, ms));
}

const IGNORED = new Set(['TTYWrap', 'PipeWrap', 'FSReqCallback']);

/**
 * Runs `fn` and checks that afterwards no more handles of any type and no more file
 * descriptors are open than before (closing handles get up to ~1 s to finish closing).
 */
export async function noLeaks<T>(fn: () => Promise<T>): Promise<T> {
  await settle(10);
  const before = activeResources();
  const fdsBefore = openFds();
  const result = await fn();
  let leaked: string[] = [];
  for (let attempt = 0; attempt < 50; attempt++) {
    await settle(20);
    const after = activeResources();
    leaked = Object.entries(after)
      .filter(([type, n]) => !IGNORED.has(type) && n > (before[type] ?? 0))
      .map(([type, n]) => `${type}: ${before[type] ?? 0} before, ${n} after`);
    const fds = openFds();
    if (fds > fdsBefore) leaked.push(`file descriptors: ${fdsBefore} before, ${fds} after`);
    if (leaked.length === 0) return result;
  }
  assert.fail(`leaked ${leaked.join('; ')}`);
}
