/** cli/args — small helpers shared by the subcommands' option parsing. */
import { UsageError } from './command.js';

/** Runs an option parser (node:util parseArgs), turning its errors into UsageErrors. */
export function usageErrors<T>(parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** Parses HOST:PORT (IPv6 as [addr]:port). */
export function parseHostPort(text: string | undefined): { host: string; port: number } {
  if (!text) throw new UsageError('missing HOST:PORT');
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:]+):(\d+)$/.exec(text);
  if (!m) throw new UsageError(`'${text}' is not HOST:PORT`);
  return { host: m[1]!, port: Number(m[2]) };
}

/** Parses a comma-separated list of link protocol versions ("3,4,5"). */
export function parseLinkList(text: string | undefined): number[] | undefined {
  if (text === undefined) return undefined;
  const versions = text.split(',').map((v) => Number(v.trim()));
  if (versions.length === 0 || versions.some((v) => !Number.isInteger(v) || v < 1)) throw new UsageError(`--link takes versions like 3,4,5, not '${text}'`);
  return versions;
}

/** Parses a positive integer option. */
export function parsePositive(text: string | undefined, name: string, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!(n > 0) || !Number.isFinite(n)) throw new UsageError(`--${name} takes a positive number, not '${text}'`);
  return n;
}
