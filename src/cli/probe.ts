/**
 * cli/probe — `orport probe HOST:PORT`: who a relay is and how it talks. One connection
 * for the identity and its CERTS chain (verified here, so a broken chain is still shown
 * cert by cert), NETINFO's clock and our address as the relay sees it, the handshake
 * time, whether CREATE_FAST works; then one short connection per link protocol version.
 *
 * Exit status: 0 ok, 1 unreachable (or another error), 2 usage, 3 identity mismatch,
 * 4 broken certificate chain.
 */
import { parseArgs } from 'node:util';
import { Relay } from '../client/relay.js';
import { DEFAULT_LINK_PROTOCOLS } from '../codec/cell.js';
import { CertificateError, IdentityMismatchError, OrportError } from '../errors.js';
import { identityMismatch, isoSeconds as iso, listCertificates, verifyCertsCell, type RelayIdentity, type VerifiedChain } from '../crypto/certs.js';
import { UsageError, type Command } from './command.js';
import { ED25519_IDENTITY, RSA_FINGERPRINT, parseHostPort, parseLinkList, parsePositive, targetName, usageErrors } from './args.js';

export const EXIT = { ok: 0, unreachable: 1, usage: 2, mismatch: 3, brokenChain: 4 } as const;

export type ProbeStatus = 'ok' | 'mismatch' | 'broken-chain' | 'unreachable';

/** An error as JSON: its code and message, and what names the failure. */
export interface ErrorInfo {
  code: string;
  message: string;
  /** CertificateError: the certificate and the check that failed. */
  cert?: string;
  check?: string;
  /** IdentityMismatchError: which key, and both values. */
  keyType?: 'rsa' | 'ed25519';
  expected?: string;
  seen?: string;
}

export function errorInfo(err: unknown): ErrorInfo {
  if (err instanceof CertificateError) return { code: err.code, message: err.message, cert: err.cert, check: err.check };
  if (err instanceof IdentityMismatchError) return { code: err.code, message: err.message, keyType: err.keyType, expected: err.expected, seen: err.seen };
  if (err instanceof OrportError) return { code: err.code, message: err.message };
  return { code: 'E_INTERNAL', message: err instanceof Error ? err.message : String(err) };
}

export interface ProbeCertificate {
  type: number;
  name: string;
  bytes: number;
  validFrom?: string;
  expires?: string;
  /** Whether the verified chain includes it (types 2, 4, 5, 7), or why its dates are unknown. */
  verified: boolean;
  error?: string;
}

export interface ProbeResult {
  target: string;
  status: ProbeStatus;
  error?: ErrorInfo;
  /** The identity the chain proves (absent when it doesn't verify). */
  identity?: RelayIdentity;
  pinned?: { rsa?: string; ed25519?: string };
  chain?: { verified: boolean; expires?: string; verifyMs: number; certificates: ProbeCertificate[] };
  link?: {
    /** The relay's VERSIONS list. */
    offered: number[];
    /** Negotiated on the main connection. */
    negotiated: number;
    /** One connection offering only that version. */
    tested: { version: number; accepted: boolean; ms?: number; error?: string }[];
  };
  /** TCP + TLS + VERSIONS + CERTS + AUTH_CHALLENGE + NETINFO, unverified (verification: chain.verifyMs). */
  handshakeMs?: number;
  /** The relay's clock minus ours from its NETINFO, in ms (±1 s). */
  clockSkewMs?: number;
  /** The address the relay sees us at (NETINFO other address). */
  ourAddress?: string | null;
  /** The relay's own addresses (NETINFO). */
  relayAddresses?: (string | null)[];
  createFast?: { ok: boolean; ms?: number; error?: string; skipped?: string };
}

export interface ProbeOptions {
  rsa?: string;
  ed25519?: string;
  timeoutMs?: number;
  /** Versions to test one connection each (default 3, 4, 5). */
  versions?: readonly number[];
  /** Offered on the main connection (default 3, 4, 5). */
  linkProtocols?: readonly number[];
}


/** Probes one relay; never throws for what the relay does (the result says it). */
export async function probeRelay(host: string, port: number, options: ProbeOptions = {}): Promise<ProbeResult> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const pinned = options.rsa !== undefined || options.ed25519 !== undefined ? { rsa: options.rsa, ed25519: options.ed25519 } : undefined;
  const result: ProbeResult = { target: targetName(host, port), status: 'unreachable' };
  if (pinned) result.pinned = JSON.parse(JSON.stringify(pinned)) as ProbeResult['pinned'];
  // One short connection per version first: they also warm up TLS and the JIT, so the
  // main connection's handshake time is what a running client would see.
  const unreachable: unknown[] = [];
  const tested = await Promise.all(
    (options.versions ?? DEFAULT_LINK_PROTOCOLS).map(async (version) => {
      const t = performance.now();
      try {
        const r = await Relay.connect(host, port, [version], { timeoutMs, verifyCertificates: false });
        const ms = round(performance.now() - t);
        const accepted = r.linkProtocol === version;
        await r.close();
        return { version, accepted, ms };
      } catch (err) {
        unreachable.push(err);
        return { version, accepted: false, error: errorInfo(err).message };
      }
    }),
  );
  // Nothing answered at all (refused, timed out, not TLS): don't wait a second time.
  const noAnswer = (err: unknown) => err instanceof OrportError && (err.kind === 'network' || err.kind === 'timeout' || err.kind === 'aborted');
  if (tested.length > 0 && unreachable.length === tested.length && unreachable.every(noAnswer)) {
    result.error = errorInfo(unreachable[0]);
    return result;
  }
  let relay: Relay;
  try {
    relay = await Relay.connect(host, port, options.linkProtocols ?? DEFAULT_LINK_PROTOCOLS, { timeoutMs, verifyCertificates: false });
  } catch (err) {
    result.error = errorInfo(err);
    return result;
  }
  try {
    result.handshakeMs = round(relay.handshakeMs);
    result.clockSkewMs = relay.clockSkewMs;
    result.ourAddress = relay.ourAddress.value;
    result.relayAddresses = relay.netinfo.senderAddresses.map((a) => a.value);
    const t0 = performance.now();
    let chain: VerifiedChain | undefined;
    let chainError: unknown;
    try {
      chain = verifyCertsCell(relay.certs, relay.peerCertificate, new Date());
    } catch (err) {
      chainError = err;
    }
    const verifyMs = round(performance.now() - t0);
    const inChain = new Set(chain ? chain.certificates.map((c) => c.type) : []);
    result.chain = {
      verified: chain !== undefined,
      expires: iso(chain?.expires),
      verifyMs,
      certificates: listCertificates(relay.certs).map((c) => ({
        type: c.type,
        name: c.name,
        bytes: c.length,
        validFrom: iso(c.validFrom),
        expires: iso(c.expires),
        verified: inChain.has(c.type),
        error: c.error,
      })),
    };
    if (chain) {
      result.identity = chain.identity;
      const mismatch = identityMismatch(pinned, chain.identity);
      if (mismatch) {
        result.status = 'mismatch';
        result.error = errorInfo(mismatch);
      } else {
        result.status = 'ok';
      }
    } else {
      result.status = 'broken-chain';
      result.error = errorInfo(chainError);
    }
    result.link = { offered: [...relay.relayVersions], negotiated: relay.linkProtocol, tested };
    if (result.status === 'ok') {
      const c0 = performance.now();
      try {
        const circuit = await relay.createCircuit({ timeoutMs });
        result.createFast = { ok: true, ms: round(performance.now() - c0) };
        await circuit.close().catch(() => undefined);
      } catch (err) {
        result.createFast = { ok: false, error: errorInfo(err).message };
      }
    } else {
      result.createFast = { ok: false, skipped: `not tried: ${result.status === 'mismatch' ? 'the relay is not the one pinned' : 'its certificate chain does not verify'}` };
    }
  } finally {
    await relay.close();
  }
  return result;
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}

export function exitStatus(status: ProbeStatus): number {
  return status === 'ok' ? EXIT.ok : status === 'mismatch' ? EXIT.mismatch : status === 'broken-chain' ? EXIT.brokenChain : EXIT.unreachable;
}

function describeSkew(ms: number): string {
  const s = Math.abs(ms) / 1000;
  if (s < 1) return 'in step with ours (within NETINFO’s 1 s)';
  return `${s.toFixed(1)} s ${ms > 0 ? 'ahead of' : 'behind'} ours (±1 s)`;
}

/** The human report. */
export function formatProbe(r: ProbeResult): string {
  const out: string[] = [];
  const row = (label: string, text: string) => out.push(`  ${label.padEnd(12)}${text}`);
  const verdict = { ok: 'OK', mismatch: 'IDENTITY MISMATCH', 'broken-chain': 'BROKEN CERTIFICATE CHAIN', unreachable: 'UNREACHABLE' }[r.status];
  out.push(`${r.target}: ${verdict}`);
  if (r.status === 'unreachable') {
    row('error', r.error?.message ?? 'unknown');
    return out.join('\n');
  }
  if (r.identity) {
    const pinNote = (kind: 'rsa' | 'ed25519') => (r.pinned?.[kind] === undefined ? '' : r.error?.keyType === kind ? `  ≠ pinned ${r.error.expected}` : r.status === 'mismatch' && r.error?.keyType === 'rsa' ? '  (not compared)' : '  = pinned');
    row('rsa id', `${r.identity.rsa}${pinNote('rsa')}`);
    row('ed25519 id', `${r.identity.ed25519}${pinNote('ed25519')}`);
  }
  if (r.chain) {
    row('chain', r.chain.verified ? `verified (types 2, 4, 5, 7) in ${r.chain.verifyMs} ms; good until ${r.chain.expires}` : `DOES NOT VERIFY: ${r.error?.message ?? ''}`);
    for (const c of r.chain.certificates) {
      const dates = c.error ? `unreadable: ${c.error}` : `${c.validFrom ? `${c.validFrom} → ` : 'expires '}${c.expires ?? '?'}`;
      out.push(`    ${c.name.padEnd(34)} ${String(c.bytes).padStart(4)} bytes  ${dates}${c.verified ? '' : r.chain.verified ? '  (not part of the chain)' : ''}`);
    }
  }
  if (r.link) {
    row('link', `relay offers ${r.link.offered.join(', ')}; negotiated ${r.link.negotiated}`);
    row('', r.link.tested.map((t) => `v${t.version} ${t.accepted ? `accepted (${t.ms} ms)` : `refused${t.error ? ` (${t.error})` : ''}`}`).join('; '));
  }
  if (r.handshakeMs !== undefined) row('handshake', `${r.handshakeMs} ms (TCP, TLS, VERSIONS, CERTS, AUTH_CHALLENGE, NETINFO)`);
  if (r.clockSkewMs !== undefined) row('clock', `relay is ${describeSkew(r.clockSkewMs)}`);
  if (r.ourAddress !== undefined) row('our address', `${r.ourAddress ?? '(none)'} (as the relay sees us)`);
  if (r.relayAddresses) row('relay addrs', r.relayAddresses.map((a) => a ?? '?').join(', ') || '(none)');
  if (r.createFast) row('CREATE_FAST', r.createFast.ok ? `works (${r.createFast.ms} ms)` : r.createFast.skipped ?? `fails: ${r.createFast.error}`);
  if (r.status === 'mismatch' && r.error) row('mismatch', r.error.message);
  return out.join('\n');
}

const usage = `usage: orport probe HOST:PORT [--rsa FP] [--ed25519 ID] [--json] [--timeout MS] [--link 3,4,5]

Probes one relay's ORPort: its identity (RSA fingerprint and Ed25519 id, as tor
prints them) proven by its CERTS chain, each certificate with its dates, which
link protocol versions it accepts (one short connection per version), its clock
(NETINFO) against ours, the address it sees us at, the handshake time, and
whether CREATE_FAST works. e.g.

  orport probe 127.0.0.1:5000
  orport probe 127.0.0.1:5000 --rsa 1CB13F064E0E62F4D1B1E02A9CAF08226AAEEC40 --json

options:
  --rsa FP          the RSA fingerprint to expect (40 hex digits, '$' allowed)
  --ed25519 ID      the Ed25519 identity to expect (base64, as tor prints it)
  --json            one JSON object on standard output instead of the report
  --timeout MS      per connection (default 10000)
  --link LIST       versions to test, one connection each (default 3,4,5)
exit status: 0 ok; 1 unreachable or another error; 2 bad usage;
             3 the identity differs from --rsa/--ed25519; 4 the chain does not verify.`;

export const probeCommand: Command = {
  name: 'probe',
  summary: 'check one relay: identity, certificate chain, link versions, clock, CREATE_FAST',
  usage,
  async run(argv) {
    const { values, positionals } = usageErrors(() =>
      parseArgs({
        args: [...argv],
        allowPositionals: true,
        options: {
          rsa: { type: 'string' },
          ed25519: { type: 'string' },
          json: { type: 'boolean' },
          timeout: { type: 'string' },
          link: { type: 'string' },
        },
      }),
    );
    const { host, port } = parseHostPort(positionals[0]);
    if (positionals.length > 1) throw new UsageError(`unexpected argument '${positionals[1]}'`);
    if (values.rsa !== undefined && !RSA_FINGERPRINT.test(values.rsa.replace(/\s+/g, ''))) throw new UsageError(`--rsa takes 40 hex digits, not '${values.rsa}'`);
    if (values.ed25519 !== undefined && !ED25519_IDENTITY.test(values.ed25519)) throw new UsageError(`--ed25519 takes 43 characters of base64, not '${values.ed25519}'`);
    const result = await probeRelay(host, port, {
      rsa: values.rsa,
      ed25519: values.ed25519,
      timeoutMs: parsePositive(values.timeout, 'timeout', 10_000),
      versions: parseLinkList(values.link),
    });
    process.stdout.write((values.json ? JSON.stringify(result) : formatProbe(result)) + '\n');
    return exitStatus(result.status);
  },
};
