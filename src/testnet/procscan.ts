/**
 * testnet/procscan — finds tor processes that belong to a directory, via /proc.
 *
 * Tests, the soak script and the test runner use it to prove that a network
 * left nothing running: a tor process belongs to a network when its command
 * line names a path under that network's directory (every tor we start is
 * given `-f <dir>/<node>/torrc`). Linux only; read-only.
 */
import { readdirSync, readFileSync } from 'node:fs';

export interface TorProcessInfo {
  readonly pid: number;
  readonly commandLine: string;
}

/** tor processes (by executable name) whose command line mentions `pathPrefix`; all tor processes when omitted. */
export function torProcessesUnder(pathPrefix?: string): TorProcessInfo[] {
  const found: TorProcessInfo[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').filter(Boolean);
    } catch {
      continue; // exited meanwhile
    }
    const executable = argv[0] ?? '';
    if (executable !== 'tor' && !executable.endsWith('/tor')) continue;
    const commandLine = argv.join(' ');
    if (pathPrefix !== undefined && !commandLine.includes(pathPrefix)) continue;
    found.push({ pid: Number(entry), commandLine });
  }
  return found;
}
