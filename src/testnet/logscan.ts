/**
 * testnet/logscan — proof after the fact that no tor tried to leave loopback.
 *
 * Scans every `*.log` file under a network's directory (one level of node
 * directories) for IPv4 literals outside 127.0.0.0/8 and bracketed IPv6
 * literals other than [::1]/[::]. tor's own version ("Tor 0.4.9.11") looks
 * like an IPv4 address and is skipped, as is 0.0.0.0. Logs are complete only
 * after every tor has exited, so the launcher scans in `stop()`.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';

export interface AddressFinding {
  /** Path relative to the scanned directory, e.g. `relay0/info.log`. */
  readonly file: string;
  readonly line: number;
  readonly address: string;
  readonly text: string;
}

const IPV4 = /(?<![\d.])(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?![\d.])/g;
const BRACKETED_IPV6 = /\[([0-9a-fA-F:.]*:[0-9a-fA-F:.]*)\]/g;

/** Non-loopback addresses named in one log text. */
export function findNonLoopbackAddresses(text: string): { line: number; address: string; text: string }[] {
  const found: { line: number; address: string; text: string }[] = [];
  const lines = text.split('\n');
  lines.forEach((lineText, index) => {
    for (const match of lineText.matchAll(IPV4)) {
      const octets = match.slice(1, 5).map(Number);
      if (octets.some((o) => o > 255)) continue;
      const address = octets.join('.');
      if (octets[0] === 127 || address === '0.0.0.0') continue;
      const before = lineText.slice(Math.max(0, (match.index ?? 0) - 4), match.index ?? 0);
      if (before === 'Tor ') continue; // tor's version string
      found.push({ line: index + 1, address, text: lineText.slice(0, 240) });
    }
    for (const match of lineText.matchAll(BRACKETED_IPV6)) {
      const address = (match[1] ?? '').toLowerCase();
      if (address === '::1' || address === '::' || address === '::ffff:127.0.0.1') continue;
      found.push({ line: index + 1, address: `[${address}]`, text: lineText.slice(0, 240) });
    }
  });
  return found;
}

/** Scans `dir/*.log` and `dir/<node>/*.log`. */
export async function scanLogsForNonLoopback(dir: string): Promise<AddressFinding[]> {
  const findings: AddressFinding[] = [];
  const files: string[] = [];
  const top = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const entry of top) {
    if (entry.isFile() && entry.name.endsWith('.log')) files.push(join(dir, entry.name));
    if (entry.isDirectory()) {
      const inner = await readdir(join(dir, entry.name), { withFileTypes: true }).catch(() => []);
      for (const file of inner) if (file.isFile() && file.name.endsWith('.log')) files.push(join(dir, entry.name, file.name));
    }
  }
  for (const file of files.sort()) {
    const text = await readFile(file, 'utf8').catch(() => '');
    for (const finding of findNonLoopbackAddresses(text)) findings.push({ file: relative(dir, file), ...finding });
  }
  return findings;
}

/** One line per finding, for error messages and the test runner's report. */
export function formatFindings(findings: readonly AddressFinding[], max = 20): string {
  const shown = findings.slice(0, max).map((f) => `  ${f.file}:${f.line}: ${f.address} in: ${f.text}`);
  if (findings.length > max) shown.push(`  … and ${findings.length - max} more`);
  return shown.join('\n');
}
