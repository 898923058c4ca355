/** cli/args — small helpers shared by the subcommands' option parsing. */
import { isIP } from 'node:net';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from './command.js';

/** Runs an option parser (node:util parseArgs), turning its errors into UsageErrors. */
export function usageErrors<T>(parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

type OptionsConfig = NonNullable<ParseArgsConfig['options']>;

/** Parses a subcommand's arguments (positionals allowed) with node:util parseArgs, its errors as UsageErrors. */
export function commandArgs<O extends OptionsConfig>(argv: readonly string[], options: O): ReturnType<typeof parseArgs<{ args: string[]; allowPositionals: true; strict: true; options: O }>> {
  return usageErrors(() => parseArgs({ args: [...argv], allowPositionals: true, options, strict: true }));
}

/** Parses HOST:PORT (IPv6 as [addr]:port). */
export function parseHostPort(text: string | undefined): { host: string; port: number } {
  if (!text) throw new UsageError('missing HOST:PORT');
  const target = splitHostPort(text);
  if (!target) throw new UsageError(`'${text}' is not HOST:PORT`);
  return target;
}

/** HOST:PORT or [IPv6]:PORT split in two, or undefined (the port is not range-checked). */
export function splitHostPort(text: string): { host: string; port: number } | undefined {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:]+):(\d+)$/.exec(text);
  return m ? { host: m[1]!, port: Number(m[2]) } : undefined;
}

/** host:port as a target is written ([IPv6]:port). */
export function targetName(host: string, port: number): string {
  return `${isIP(host) === 6 ? `[${host}]` : host}:${port}`;
}

/** An RSA identity fingerprint as people write it (40 hex digits, '$' allowed). */
export const RSA_FINGERPRINT = /^\$?[0-9A-Fa-f]{40}$/;
/** An Ed25519 identity in tor's base64 (43 characters, '=' allowed). */
export const ED25519_IDENTITY = /^[A-Za-z0-9+/]{43}=?$/;

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
