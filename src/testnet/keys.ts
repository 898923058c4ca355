/**
 * testnet/keys — identity keys of the network's relays and authorities.
 *
 * Authorities get a v3 identity and signing certificate from tor-gencert
 * (bound to their DirPort address, so the cache is keyed by ports). Every
 * relay node gets its RSA and Ed25519 identities from
 * `tor --list-fingerprint`, run with a private-network command line (checked
 * like a torrc) and `DisableNetwork 1`: it writes keys and exits without
 * opening a socket. Callers must already be in the isolated namespace.
 *
 * Keys are cached (default /tmp/orport-testnet-keys/v1-<role>-<nick>-or<port>-dir<port>)
 * and copied into the node's DataDirectory, which saves ~2 s per boot; a cache
 * entry is written to a temporary name and renamed, so concurrent networks
 * never see half an entry. Authority certificates close to expiry are
 * regenerated. Pass `cacheDir: undefined` for fresh keys every time.
 */
import { randomBytes } from 'node:crypto';
import { chmod, cp, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InternalError } from '../errors.js';
import { ToolFailedError } from './errors.js';
import type { RelayRole } from './ports.js';
import { runTool } from './process.js';
import { commandLineAsTorrc, PLACEHOLDER_DIR_AUTHORITY, torrcSafetyProblems } from './torrc.js';

export const DEFAULT_KEY_CACHE_DIR = '/tmp/orport-testnet-keys';
const CACHE_FORMAT = 'v1';
/** Regenerate authority certificates that expire sooner than this. */
const MIN_CERT_VALIDITY_MS = 30 * 24 * 3600 * 1000;
const GENCERT_PASSPHRASE = 'orport-testnet';

export interface KeyJob {
  readonly nick: string;
  readonly role: RelayRole;
  readonly dataDir: string;
  readonly orPort: number;
  readonly dirPort: number;
}

export interface NodeKeys {
  /** RSA identity fingerprint, 40 upper-case hex digits. */
  readonly fingerprint: string;
  /** Ed25519 identity, unpadded base64 as in tor's fingerprint-ed25519 file. */
  readonly ed25519: string;
  /** v3 authority identity (authorities only), 40 hex. */
  readonly v3ident: string | undefined;
  readonly fromCache: boolean;
}

export interface KeyToolOptions {
  readonly torPath: string;
  readonly gencertPath: string;
  readonly cacheDir: string | undefined;
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
}

/** Puts keys into `job.dataDir` (from the cache, or freshly generated) and returns the identities. */
export async function prepareNodeKeys(job: KeyJob, options: KeyToolOptions): Promise<NodeKeys> {
  await mkdir(join(job.dataDir, 'keys'), { recursive: true, mode: 0o700 });
  await chmod(job.dataDir, 0o700);
  const entry = options.cacheDir === undefined ? undefined : join(options.cacheDir, `${CACHE_FORMAT}-${job.role}-${job.nick}-or${job.orPort}-dir${job.dirPort}`);
  if (entry !== undefined && (await cacheEntryUsable(entry, job.role))) {
    await cp(join(entry, 'keys'), join(job.dataDir, 'keys'), { recursive: true });
    await cp(join(entry, 'fingerprint'), join(job.dataDir, 'fingerprint'));
    await cp(join(entry, 'fingerprint-ed25519'), join(job.dataDir, 'fingerprint-ed25519'));
    return { ...(await readNodeIdentities(job.dataDir, job.role)), fromCache: true };
  }
  await generateKeys(job, options);
  const identities = await readNodeIdentities(job.dataDir, job.role);
  if (entry !== undefined) await storeCacheEntry(entry, job.dataDir);
  return { ...identities, fromCache: false };
}

async function generateKeys(job: KeyJob, options: KeyToolOptions): Promise<void> {
  const keysDir = join(job.dataDir, 'keys');
  if (job.role === 'authority') {
    const logPath = join(job.dataDir, 'gencert.log');
    const result = await runTool(
      options.gencertPath,
      ['--create-identity-key', '-m', '12', '-a', `127.0.0.1:${job.dirPort}`, '--passphrase-fd', '0',
        '-i', 'authority_identity_key', '-s', 'authority_signing_key', '-c', 'authority_certificate'],
      { cwd: keysDir, input: `${GENCERT_PASSPHRASE}\n`, timeoutMs: options.timeoutMs, signal: options.signal, logPath, what: `tor-gencert for ${job.nick}` },
    );
    if (result.code !== 0) throw new ToolFailedError('tor-gencert', `creating the authority keys of ${job.nick}`, logPath, result.output);
  }
  const args = listFingerprintArgs(job);
  const problems = torrcSafetyProblems(commandLineAsTorrc(args));
  if (problems.length > 0) throw new InternalError(`unsafe key-generation command line for ${job.nick}: ${problems.join('; ')}`);
  const logPath = join(job.dataDir, 'listfp.log');
  const result = await runTool(options.torPath, args, { timeoutMs: options.timeoutMs, signal: options.signal, logPath, what: `tor --list-fingerprint for ${job.nick}` });
  if (result.code !== 0) throw new ToolFailedError('tor --list-fingerprint', `creating the identity keys of ${job.nick}`, logPath, result.output);
}

/** The `tor --list-fingerprint` command line: a private-network config that never touches the network. */
export function listFingerprintArgs(job: KeyJob): string[] {
  return [
    '--ignore-missing-torrc', '-f', '/dev/null', '--list-fingerprint',
    '--TestingTorNetwork', '1',
    '--UseDefaultFallbackDirs', '0',
    '--DirAuthority', PLACEHOLDER_DIR_AUTHORITY,
    '--DisableNetwork', '1',
    '--DataDirectory', job.dataDir,
    '--ORPort', `127.0.0.1:${job.orPort}`,
    '--Nickname', job.nick,
    '--Log', 'notice stdout',
  ];
}

async function readNodeIdentities(dataDir: string, role: RelayRole): Promise<Omit<NodeKeys, 'fromCache'>> {
  const fingerprint = parseFingerprintFile(await readFile(join(dataDir, 'fingerprint'), 'utf8'));
  const ed25519 = parseEd25519FingerprintFile(await readFile(join(dataDir, 'fingerprint-ed25519'), 'utf8'));
  const v3ident = role === 'authority' ? parseCertificateFingerprint(await readFile(join(dataDir, 'keys', 'authority_certificate'), 'utf8')) : undefined;
  return { fingerprint, ed25519, v3ident };
}

/** `relay0 6AA797EF…` (or with spaces every 4 digits) → `6AA797EF…`. */
export function parseFingerprintFile(text: string): string {
  const [, ...rest] = text.trim().split(/\s+/);
  const hex = rest.join('').toUpperCase();
  if (!/^[0-9A-F]{40}$/.test(hex)) throw new InternalError(`unexpected fingerprint file content: ${JSON.stringify(text.slice(0, 100))}`);
  return hex;
}

/** `relay0 BTC3V6JV…` → `BTC3V6JV…` (43 characters of unpadded base64). */
export function parseEd25519FingerprintFile(text: string): string {
  const id = text.trim().split(/\s+/)[1] ?? '';
  if (!/^[A-Za-z0-9+/]{43}$/.test(id)) throw new InternalError(`unexpected fingerprint-ed25519 file content: ${JSON.stringify(text.slice(0, 100))}`);
  return id;
}

/** The `fingerprint` line of an authority key certificate (the v3 identity). */
export function parseCertificateFingerprint(certificate: string): string {
  const match = /^fingerprint ([0-9A-Fa-f]{40})$/m.exec(certificate);
  if (!match?.[1]) throw new InternalError('authority certificate has no fingerprint line');
  return match[1].toUpperCase();
}

/** The `dir-key-expires` time of an authority key certificate, in ms since the epoch. */
export function parseCertificateExpiry(certificate: string): number | undefined {
  const match = /^dir-key-expires (\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)$/m.exec(certificate);
  return match ? Date.parse(`${match[1]}T${match[2]}Z`) : undefined;
}

async function cacheEntryUsable(entry: string, role: RelayRole): Promise<boolean> {
  try {
    await stat(join(entry, 'done'));
    if (role === 'authority') {
      const expires = parseCertificateExpiry(await readFile(join(entry, 'keys', 'authority_certificate'), 'utf8'));
      if (expires === undefined || expires - Date.now() < MIN_CERT_VALIDITY_MS) return false;
    }
    return true;
  } catch {
    return false;
  }
}

async function storeCacheEntry(entry: string, dataDir: string): Promise<void> {
  const temporary = `${entry}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await mkdir(join(entry, '..'), { recursive: true, mode: 0o700 });
    await mkdir(temporary, { mode: 0o700 });
    await cp(join(dataDir, 'keys'), join(temporary, 'keys'), { recursive: true });
    await cp(join(dataDir, 'fingerprint'), join(temporary, 'fingerprint'));
    await cp(join(dataDir, 'fingerprint-ed25519'), join(temporary, 'fingerprint-ed25519'));
    await writeFile(join(temporary, 'done'), `${new Date().toISOString()}\n`);
    await rm(entry, { recursive: true, force: true });
    await rename(temporary, entry);
  } catch {
    // A concurrent network stored the same entry first, or the cache is not
    // writable (another user's, read-only /tmp): the cache is only a speed-up.
  } finally {
    await rm(temporary, { recursive: true, force: true }).catch(() => undefined);
  }
}
