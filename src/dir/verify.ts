/**
 * dir/verify — is a consensus to be trusted (dir-spec §3.4.1, tor networkstatus.c
 * `networkstatus_check_consensus_signature`)? Each `directory-signature` is checked over
 * the signed range with the certificate of a configured authority; more than half of the
 * configured v3 authorities must sign validly; and `now` must lie within valid-after …
 * valid-until, give or take a clock tolerance. Also: which microdescriptors belong to a
 * consensus (their digest is an `m` line).
 *
 * Layer: codec core and crypto (Node's RSA). No I/O; the time is passed in.
 */
import { DecodeError, DirectoryError } from '../errors.js';
import { parseAuthorityCerts, rsaKey, rsaSignsDigest, verifyAuthorityCert, type AuthorityCert } from './authcert.js';
import { parseConsensusDocument, signedDigest, type Consensus } from './consensus.js';
import { parseMicrodescs, type Microdesc } from './microdesc.js';

/** The authorities a consensus must be signed by: `Network` is one. */
export interface AuthorityList {
  readonly authorities: readonly { readonly nickname: string | null; readonly v3ident: string | null }[];
  /** TestingTorNetwork: shorter vote intervals are allowed. */
  readonly testing?: boolean;
}

export interface VerifyOptions {
  /** The time to check validity at (default: now). */
  now?: Date;
  /** How far `now` may be outside valid-after … valid-until (default 0). */
  toleranceMs?: number;
}

/** What happened to each signature. */
export interface SignatureCheck {
  readonly identity: string;
  readonly nickname: string | undefined;
  readonly outcome: 'good' | 'bad-signature' | 'no-certificate' | 'bad-certificate' | 'not-configured' | 'unknown-algorithm' | 'duplicate';
  readonly detail: string;
}

export interface VerifiedConsensus {
  readonly consensus: Consensus;
  /** Nicknames (v3idents where unnamed) of the configured authorities whose signatures verified. */
  readonly signedBy: readonly string[];
  readonly checks: readonly SignatureCheck[];
}

/**
 * Parses and verifies `text` (latin1: see dir/netdoc). `certificates` are parsed
 * certificates or their text; a certificate that does not verify is not used (and named
 * in the error if it was needed). Throws DecodeError for a malformed document and
 * DirectoryError (E_DIR_SIGNATURES, E_DIR_CERT, E_DIR_EXPIRED, E_DIR_NOT_YET_VALID).
 */
export function verifyConsensus(text: string, certificates: readonly AuthorityCert[] | string, network: AuthorityList, options: VerifyOptions = {}): VerifiedConsensus {
  const now = options.now ?? new Date();
  const tolerance = options.toleranceMs ?? 0;
  const consensus = parseConsensusDocument(text, { testing: network.testing });
  const certs = typeof certificates === 'string' ? parseAuthorityCerts(certificates) : certificates;
  const configured = new Map<string, string | undefined>();
  for (const a of network.authorities) if (a.v3ident) configured.set(a.v3ident.toUpperCase(), a.nickname ?? undefined);
  const required = Math.floor(configured.size / 2) + 1;
  const sources = new Set(consensus.authorities.map((a) => a.v3ident));
  const digests = new Map<string, Uint8Array>();
  const checks: SignatureCheck[] = [];
  const good = new Set<string>();
  const seen = new Set<string>();
  for (const sig of consensus.signatures) {
    const nickname = configured.get(sig.identity);
    const check = (outcome: SignatureCheck['outcome'], detail: string) => checks.push({ identity: sig.identity, nickname, outcome, detail });
    // tor: a signature by an identity without a dir-source rejects the whole document.
    if (!sources.has(sig.identity)) throw new DecodeError('consensus', 0, `line ${sig.line}: a directory-signature by ${sig.identity}, which has no dir-source in the document`);
    if (sig.algorithm !== 'sha1' && sig.algorithm !== 'sha256') {
      check('unknown-algorithm', `algorithm ${sig.algorithm}`);
      continue;
    }
    const key = `${sig.identity}/${sig.algorithm}`;
    if (seen.has(key)) {
      check('duplicate', 'only the first signature per authority and algorithm counts');
      continue;
    }
    seen.add(key);
    if (!configured.has(sig.identity)) {
      check('not-configured', 'not an authority of this network');
      continue;
    }
    const cert = certs.find((c) => c.fingerprint === sig.identity && c.signingKeyDigest === sig.signingKeyDigest);
    if (!cert) {
      check('no-certificate', `no certificate for signing key ${sig.signingKeyDigest}`);
      continue;
    }
    try {
      verifyAuthorityCert(cert, now);
    } catch (err) {
      check('bad-certificate', (err as Error).message);
      continue;
    }
    let digest = digests.get(sig.algorithm);
    if (!digest) digests.set(sig.algorithm, (digest = signedDigest(text, consensus, sig.algorithm)));
    if (!rsaSignsDigest(rsaKey(cert.signingKey), sig.signature, digest)) {
      check('bad-signature', 'the signature does not verify over the signed part of the document');
      continue;
    }
    check('good', 'verified');
    good.add(sig.identity);
  }
  const name = (c: SignatureCheck) => c.nickname ?? c.identity;
  const signedBy = [...good].map((id) => configured.get(id) ?? id);
  if (good.size < required) {
    const failed = checks.filter((c) => c.outcome !== 'good');
    const summary =
      `${good.size} of the ${configured.size} configured authorities signed validly, ${required} needed. ` +
      `Verified: ${signedBy.join(', ') || 'none'}. Not verified: ${failed.map((c) => `${name(c)} (${c.outcome}: ${c.detail})`).join('; ') || 'none'}`;
    const certProblem = failed.some((c) => c.outcome === 'bad-certificate');
    throw new DirectoryError(certProblem ? 'E_DIR_CERT' : 'E_DIR_SIGNATURES', `the consensus of ${consensus.validAfter.toISOString()} is not trusted: ${summary}`);
  }
  if (now.getTime() + tolerance < consensus.validAfter.getTime()) {
    throw new DirectoryError('E_DIR_NOT_YET_VALID', `the consensus is not valid until ${consensus.validAfter.toISOString()} (now ${now.toISOString()}, tolerance ${tolerance / 1000} s); signed by ${signedBy.join(', ')}`);
  }
  if (now.getTime() - tolerance > consensus.validUntil.getTime()) {
    throw new DirectoryError('E_DIR_EXPIRED', `the consensus expired at ${consensus.validUntil.toISOString()} (now ${now.toISOString()}, tolerance ${tolerance / 1000} s); signed by ${signedBy.join(', ')}`);
  }
  return { consensus, signedBy, checks };
}

/**
 * The microdescriptors of `text` that the consensus lists (by digest), and the digests of
 * those it does not (dropped, dir-spec §5.2).
 */
export function verifyMicrodescs(consensus: Consensus, text: string): { kept: Microdesc[]; dropped: string[] } {
  const microdescs = parseMicrodescs(text).microdescs;
  // Built after parsing, so that the table and the digests it points to are in the cache for the lookups.
  const listed = digestTable(consensus.routers);
  const kept: Microdesc[] = [];
  const dropped: string[] = [];
  for (const md of microdescs) {
    if (listed.has(md.digest)) kept.push(md);
    else dropped.push(md.digest);
  }
  return { kept, dropped };
}

const B64_VALUE = new Int8Array(128).fill(-1);
for (let i = 0; i < 64; i++) B64_VALUE['ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'.charCodeAt(i)] = i;

/** A hash of a digest's first four characters (its first 24 bits when it is base64), spread over 32 bits. */
function digestHash(d: string): number {
  const bits = (B64_VALUE[d.charCodeAt(0) & 127]! << 18) | (B64_VALUE[d.charCodeAt(1) & 127]! << 12) | (B64_VALUE[d.charCodeAt(2) & 127]! << 6) | B64_VALUE[d.charCodeAt(3) & 127]!;
  return Math.imul(bits, 0x9e3779b1) >>> 8;
}

/**
 * The routers' `m` digests as an open-addressing table of their indices, keyed by
 * digestHash and then compared whole: a Set of 8,000 strings spends its time hashing
 * and chasing them.
 */
function digestTable(routers: readonly { readonly microdescDigest: string }[]): { has(digest: string): boolean } {
  let size = 16;
  while (size < routers.length * 2) size <<= 1;
  const mask = size - 1;
  const slots = new Int32Array(size).fill(-1);
  const digests = routers.map((r) => r.microdescDigest);
  for (let i = 0; i < digests.length; i++) {
    let h = digestHash(digests[i]!) & mask;
    while (slots[h] !== -1) h = (h + 1) & mask;
    slots[h] = i;
  }
  return {
    has(digest: string): boolean {
      for (let h = digestHash(digest) & mask; slots[h] !== -1; h = (h + 1) & mask) if (digests[slots[h]!] === digest) return true;
      return false;
    },
  };
}
