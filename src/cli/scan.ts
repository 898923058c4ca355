/**
 * cli/scan — `orport scan`: the link handshake with many relays at once, each one's
 * CERTS chain verified and its identity compared with the fingerprint expected, one
 * JSON line per relay on stdout and counts at the end (ok / mismatch / unreachable /
 * broken chain) on stderr, with a progress bar there when it is a terminal.
 *
 * Targets come from a file (`host:port [fingerprint] [ed25519]` a line, '#' comments;
 * '-' is standard input) or from the consensus fetched through a relay (`--from`: a
 * one-hop BEGIN_DIR; the consensus's signatures are not checked, so a lying --from relay
 * can only make relays look unreachable or mismatched, not vouch for an impostor).
 *
 * Each target is `Relay.connect` with verification on and the identity pinned: connect,
 * VERSIONS, CERTS verified, NETINFO, then close. The scan engine (`scanTargets`) is
 * exported for bench/handshake.
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { Relay } from '../client/relay.js';
import { DEFAULT_LINK_PROTOCOLS } from '../codec/cell.js';
import { BadArgumentError, CertificateError, IdentityMismatchError } from '../errors.js';
import { parseHttpResponse } from '../dir/http.js';
import { parseConsensus } from '../dir/documents.js';
import type { RelayIdentity } from '../crypto/certs.js';
import { UsageError, type Command } from './command.js';
import { ED25519_IDENTITY, RSA_FINGERPRINT, parseHostPort, parseLinkList, parsePositive, splitHostPort, targetName, usageErrors } from './args.js';
import { errorInfo, type ErrorInfo } from './probe.js';

export interface ScanTarget {
  host: string;
  port: number;
  /** Expected RSA fingerprint (40 hex), if known. */
  rsa?: string;
  /** Expected Ed25519 identity (base64), if known. */
  ed25519?: string;
  /** From the consensus, when it came from one. */
  nickname?: string;
}

export type ScanStatus = 'ok' | 'mismatch' | 'unreachable' | 'broken-chain';

export interface ScanResult {
  target: string;
  nickname?: string;
  expected?: { rsa?: string; ed25519?: string };
  status: ScanStatus;
  identity?: RelayIdentity;
  linkProtocol?: number;
  /** Connect to NETINFO, CERTS verified. */
  handshakeMs?: number;
  clockSkewMs?: number;
  /** When the relay's chain stops being valid (its first certificate to expire). */
  chainExpires?: string;
  error?: ErrorInfo;
}

export interface ScanSummary {
  total: number;
  ok: number;
  mismatch: number;
  unreachable: number;
  brokenChain: number;
  elapsedMs: number;
  /** Completed handshakes (ok) per second of wall time. */
  handshakesPerSecond: number;
}

export interface ScanOptions {
  concurrency?: number;
  /** Per target (default 10000 ms). */
  timeoutMs?: number;
  linkProtocols?: readonly number[];
  /** Default true; off only to measure what verification costs. */
  verifyCertificates?: boolean;
  signal?: AbortSignal;
}

/** Parses a target list: `host:port [fingerprint] [ed25519]` per line; '#' starts a comment. */
export function parseTargets(text: string, source = 'targets'): ScanTarget[] {
  const out: ScanTarget[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/#.*/, '').trim();
    if (!line) return;
    const [where, ...ids] = line.split(/\s+/);
    const bad = (why: string): never => {
      throw new BadArgumentError(`${source} line ${i + 1}: ${why} ('${raw.trim()}')`);
    };
    const hostPort = splitHostPort(where!);
    if (!hostPort) bad(`'${where}' is not HOST:PORT`);
    const { host, port } = hostPort!;
    if (!(port >= 1 && port <= 65535)) bad(`port ${port} is not 1-65535`);
    const target: ScanTarget = { host, port };
    for (const id of ids) {
      if (RSA_FINGERPRINT.test(id) && target.rsa === undefined) target.rsa = id.replace(/^\$/, '').toUpperCase();
      else if (ED25519_IDENTITY.test(id) && target.ed25519 === undefined) target.ed25519 = id.replace(/=$/, '');
      else bad(`'${id}' is neither a 40-hex-digit RSA fingerprint nor a base64 Ed25519 identity`);
    }
    out.push(target);
  });
  return out;
}

/** Every relay of the consensus that `host:port` serves (fetched over its ORPort with BEGIN_DIR). */
export async function targetsFromConsensus(host: string, port: number, options: { timeoutMs?: number; linkProtocols?: readonly number[] } = {}): Promise<ScanTarget[]> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const relay = await Relay.connect(host, port, options.linkProtocols ?? DEFAULT_LINK_PROTOCOLS, { timeoutMs });
  try {
    const circuit = await relay.createCircuit({ timeoutMs });
    const raw = await circuit.directory('GET /tor/status-vote/current/consensus HTTP/1.0\r\n\r\n', 1, { timeoutMs });
    const response = parseHttpResponse(raw, { compressed: false });
    if (response.statusCode !== 200) throw new BadArgumentError(`${targetName(host, port)} answered ${response.statusCode} ${response.statusMessage} for the consensus`);
    const consensus = parseConsensus(Buffer.from(response.body).toString('latin1'));
    return consensus.routers.map((r) => ({ host: r.address, port: r.orPort, rsa: r.fingerprint, nickname: r.nickname }));
  } finally {
    await relay.close();
  }
}

/** Connects to one target, verified and pinned; never throws for what the relay does. */
export async function scanOne(target: ScanTarget, options: ScanOptions = {}): Promise<ScanResult> {
  const result: ScanResult = { target: targetName(target.host, target.port), status: 'unreachable' };
  if (target.nickname) result.nickname = target.nickname;
  if (target.rsa !== undefined || target.ed25519 !== undefined) {
    result.expected = {};
    if (target.rsa !== undefined) result.expected.rsa = target.rsa;
    if (target.ed25519 !== undefined) result.expected.ed25519 = target.ed25519;
  }
  try {
    const relay = await Relay.connect(target.host, target.port, options.linkProtocols ?? DEFAULT_LINK_PROTOCOLS, {
      timeoutMs: options.timeoutMs ?? 10_000,
      signal: options.signal,
      verifyCertificates: options.verifyCertificates ?? true,
      identity: (options.verifyCertificates ?? true) ? result.expected : undefined,
    });
    result.status = 'ok';
    if (relay.identity) result.identity = relay.identity;
    result.linkProtocol = relay.linkProtocol;
    result.handshakeMs = Math.round(relay.handshakeMs * 100) / 100;
    result.clockSkewMs = relay.clockSkewMs;
    if (relay.chain) result.chainExpires = relay.chain.expires.toISOString().replace('.000Z', 'Z');
    await relay.close();
  } catch (err) {
    result.status = err instanceof IdentityMismatchError ? 'mismatch' : err instanceof CertificateError ? 'broken-chain' : 'unreachable';
    result.error = errorInfo(err);
  }
  return result;
}

/** Scans targets with bounded concurrency; `onResult` sees each result as it completes. */
export async function scanTargets(targets: readonly ScanTarget[], options: ScanOptions, onResult: (result: ScanResult, done: number) => void): Promise<ScanSummary> {
  const concurrency = Math.max(1, Math.min(options.concurrency ?? 32, targets.length || 1));
  const summary: ScanSummary = { total: targets.length, ok: 0, mismatch: 0, unreachable: 0, brokenChain: 0, elapsedMs: 0, handshakesPerSecond: 0 };
  const t0 = performance.now();
  let next = 0;
  let done = 0;
  const worker = async (): Promise<void> => {
    while (next < targets.length && !options.signal?.aborted) {
      const target = targets[next++]!;
      const result = await scanOne(target, options);
      if (result.status === 'ok') summary.ok++;
      else if (result.status === 'mismatch') summary.mismatch++;
      else if (result.status === 'broken-chain') summary.brokenChain++;
      else summary.unreachable++;
      onResult(result, ++done);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  summary.elapsedMs = Math.round(performance.now() - t0);
  summary.handshakesPerSecond = summary.elapsedMs > 0 ? Math.round((summary.ok / summary.elapsedMs) * 1000 * 10) / 10 : 0;
  return summary;
}

/** The progress line: a bar, done/total and the counts so far. */
export function progressLine(done: number, total: number, s: Pick<ScanSummary, 'ok' | 'mismatch' | 'unreachable' | 'brokenChain'>, width = 30): string {
  const filled = total ? Math.round((done / total) * width) : width;
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total}  ok ${s.ok}  mismatch ${s.mismatch}  unreachable ${s.unreachable}  broken chain ${s.brokenChain}`;
}

export function formatSummary(s: ScanSummary): string {
  return [
    `scanned ${s.total} relay${s.total === 1 ? '' : 's'} in ${(s.elapsedMs / 1000).toFixed(2)} s (${s.handshakesPerSecond} verified handshakes/s)`,
    `  ok            ${s.ok}`,
    `  mismatch      ${s.mismatch}`,
    `  unreachable   ${s.unreachable}`,
    `  broken chain  ${s.brokenChain}`,
  ].join('\n');
}

const usage = `usage: orport scan [FILE | --from HOST:PORT] [--concurrency N] [--timeout MS] [--link 3,4,5] [--progress | --no-progress]

Checks many relays at once: for each, TLS, VERSIONS, the CERTS chain verified and
the identity compared with the one expected, NETINFO. One JSON line per relay on
standard output, as each completes; counts at the end on standard error, e.g.

  orport scan relays.txt --concurrency 64
  orport scan --from 127.0.0.1:5000

targets:
  FILE                one 'host:port [fingerprint] [ed25519-id]' a line ('#' comments;
                      '-' reads standard input)
  --from HOST:PORT    every relay in the consensus fetched through this relay
options:
  --concurrency N     connections at once (default 32)
  --timeout MS        per relay (default 10000)
  --link LIST         link protocols to offer (default 3,4,5)
  --progress          a progress bar on standard error (default: when it is a terminal)
  --no-progress       none
exit status: 0 when every relay is ok; 1 when any is not (or on an error); 2 bad usage.`;

export const scanCommand: Command = {
  name: 'scan',
  summary: 'check many relays at once: identities and certificate chains, JSON Lines',
  usage,
  async run(argv) {
    const { values, positionals } = usageErrors(() =>
      parseArgs({
        args: [...argv],
        allowPositionals: true,
        options: {
          from: { type: 'string' },
          concurrency: { type: 'string' },
          timeout: { type: 'string' },
          link: { type: 'string' },
          progress: { type: 'boolean' },
          'no-progress': { type: 'boolean' },
        },
      }),
    );
    if (positionals.length > 1) throw new UsageError(`unexpected argument '${positionals[1]}'`);
    const file = positionals[0];
    if ((file === undefined) === (values.from === undefined)) throw new UsageError('give either a FILE of targets or --from HOST:PORT');
    const concurrency = Math.floor(parsePositive(values.concurrency, 'concurrency', 32));
    const timeoutMs = parsePositive(values.timeout, 'timeout', 10_000);
    const linkProtocols = parseLinkList(values.link);
    let targets: ScanTarget[];
    if (file !== undefined) {
      let text: string;
      try {
        text = file === '-' ? await readStdin() : await readFile(file, 'utf8');
      } catch (err) {
        throw new UsageError(`cannot read ${file}: ${(err as Error).message}`);
      }
      targets = parseTargets(text, file === '-' ? 'standard input' : file);
    } else {
      const { host, port } = parseHostPort(values.from);
      targets = await targetsFromConsensus(host, port, { timeoutMs: Math.max(timeoutMs, 30_000), linkProtocols });
      process.stderr.write(`orport scan: ${targets.length} relays in the consensus from ${targetName(host, port)}\n`);
    }
    const showProgress = values['no-progress'] ? false : (values.progress ?? Boolean(process.stderr.isTTY));
    const counts = { ok: 0, mismatch: 0, unreachable: 0, brokenChain: 0 };
    let lastDraw = 0;
    const draw = (done: number, force = false) => {
      if (!showProgress) return;
      const now = performance.now();
      if (!force && now - lastDraw < 100) return;
      lastDraw = now;
      process.stderr.write(`\r${progressLine(done, targets.length, counts)}\x1b[K`);
    };
    const interrupt = new AbortController();
    const onSignal = () => interrupt.abort();
    process.once('SIGINT', onSignal);
    draw(0, true);
    let summary: ScanSummary;
    try {
      summary = await scanTargets(targets, { concurrency, timeoutMs, linkProtocols, signal: interrupt.signal }, (result, done) => {
        if (result.status === 'ok') counts.ok++;
        else if (result.status === 'mismatch') counts.mismatch++;
        else if (result.status === 'broken-chain') counts.brokenChain++;
        else counts.unreachable++;
        process.stdout.write(JSON.stringify(result) + '\n');
        draw(done);
      });
    } finally {
      process.off('SIGINT', onSignal);
    }
    if (showProgress) process.stderr.write(`\r${progressLine(summary.ok + summary.mismatch + summary.unreachable + summary.brokenChain, targets.length, counts)}\x1b[K\n`);
    process.stderr.write(formatSummary(summary) + '\n');
    return summary.ok === summary.total ? 0 : 1;
  },
};

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
