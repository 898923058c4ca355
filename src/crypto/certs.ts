/**
 * crypto/certs — verification of a relay's CERTS chain (tor-spec 4.2, cert-spec):
 * the RSA-1024 identity cert (type 2), the Ed25519 signing-key cert (type 4), the link
 * cert (type 5) that certifies the TLS certificate presented on this connection, and the
 * RSA→Ed25519 cross-cert (type 7). Yields the relay's identity as tor prints it.
 *
 * The checks are tor-spec 4.2's list for an initiator authenticating a responder's
 * Ed25519 + RSA identity, made in this order, each failure a CertificateError whose
 * `cert` names the certificate and `check` the failed check (a `CertCheck`):
 *
 *   1. exactly one each of types 2, 4, 5, 7 (`missing`, `duplicate`); no type 1–7 twice.
 *   2. type 2: X.509 that parses (`decode`), an RSA (`key-type`) 1024-bit (`key-size`)
 *      key, self-signed (`signature`), within its validity dates (`expired`,
 *      `not-yet-valid`) with tor's clock slop (X.509 only: 2 days past, 30 days ahead).
 *   3. type 4: an Ed25519 cert (`decode`) of CERT_TYPE 4 (`cert-type`) certifying an
 *      Ed25519 key (`key-type`), no unknown AFFECTS_VALIDATION extension (`extension`),
 *      carrying the identity key in its signed-with-key extension (`signing-key`),
 *      unexpired (`expired`), signed by that identity key (`signature`).
 *   4. type 5: CERT_TYPE 5, key type SHA-256-of-X.509 (or 01, cert-spec A.4), certifying
 *      SHA-256 of the TLS certificate actually presented (`tls-certificate`), unexpired,
 *      signed by the signing key type 4 certifies.
 *   5. type 7: certifies the Ed25519 identity of type 4 (`identity`), unexpired, signed by
 *      type 2's RSA key (PKCS#1 v1.5 over the raw SHA-256 digest, no DigestInfo).
 *
 * What tor does differently: it ignores an undecodable certificate (then reports it
 * missing) and doesn't check the CERT_TYPE inside Ed25519 certs; we name both.
 * Type 1 (the RSA link cert) is not checked, as tor doesn't on the Ed25519 path.
 *
 * Layer: crypto core. No I/O; the caller passes `now`.
 */
import { createHash, type KeyObject } from 'node:crypto';
import { CertificateError, IdentityMismatchError, OrportError } from '../errors.js';
import type { CertsCell } from '../codec/cell.js';
import type { Certificate } from '../codec/datatype.js';
import { bytesEqual, toHex } from '../codec/bytes.js';
import { fingerprintOf, parseX509, x509RsaKey, x509VerifyRsa, type RsaPublicKey, type X509 } from './x509.js';
import { CertifiedKeyType, Ed25519Cert, RsaCrossCert, ed25519PublicKey } from './ed25519cert.js';

/** Whether `Relay.connect` verifies the CERTS chain unless told otherwise. */
export const VERIFY_BY_DEFAULT = true;

/** tor's TOR_X509_PAST_SLOP: an X.509 cert is accepted this long after it expired. */
export const X509_PAST_SLOP_MS = 2 * 24 * 3600 * 1000;
/** tor's TOR_X509_FUTURE_SLOP: an X.509 cert is accepted this long before it starts. */
export const X509_FUTURE_SLOP_MS = 30 * 24 * 3600 * 1000;

/** A relay's identity, as tor prints it. */
export interface RelayIdentity {
  /** SHA-1 of the DER (PKCS#1) RSA identity key, 40 upper-case hex digits. */
  rsa: string;
  /** The Ed25519 identity key, base64 without padding. */
  ed25519: string;
}

/** One certificate of a verified chain. */
export interface ChainEntry {
  type: number;
  name: string;
  /** When it expires. */
  expires: Date;
  /** When it starts to be valid (X.509 only). */
  validFrom?: Date;
  /** What it certifies, as printed (an identity, a key, a digest). */
  certifies: string;
  /** Which key signed it. */
  signedBy: string;
}

export interface VerifiedChain {
  identity: RelayIdentity;
  /** Types 2, 4, 5 and 7, in that order. */
  certificates: ChainEntry[];
  /** The Ed25519 signing key (type 4 certifies it), base64 without padding. */
  signingKey: string;
  /** When the first certificate of the chain expires (the chain is good until then). */
  expires: Date;
}

/** The checks verifyCertsCell makes; CertificateError.check is one of these. */
export type CertCheck =
  | 'missing'
  | 'duplicate'
  | 'decode'
  | 'key-type'
  | 'key-size'
  | 'cert-type'
  | 'extension'
  | 'signing-key'
  | 'signature'
  | 'expired'
  | 'not-yet-valid'
  | 'tls-certificate'
  | 'identity';

/** How CERTS cell certificate types are named in errors and listings. */
export const CERT_NAMES: Readonly<Record<number, string>> = {
  1: 'type 1 (RSA link cert)',
  2: 'type 2 (RSA identity cert)',
  3: 'type 3 (RSA authenticate cert)',
  4: 'type 4 (Ed25519 signing-key cert)',
  5: 'type 5 (Ed25519 TLS link cert)',
  6: 'type 6 (Ed25519 authenticate cert)',
  7: 'type 7 (RSA->Ed25519 cross-cert)',
};

export function certName(type: number): string {
  return CERT_NAMES[type] ?? `type ${type} (unknown)`;
}

export interface VerifyOptions {
  /** Accept an X.509 cert this long after it expired (default tor's 2 days). */
  x509PastSlopMs?: number;
  /** Accept an X.509 cert this long before it starts (default tor's 30 days). */
  x509FutureSlopMs?: number;
}

const b64 = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64').replace(/=+$/, '');
/** A date as ISO 8601 without milliseconds when they are zero ('2026-11-26T03:04:05Z'). */
export function isoSeconds(d: Date): string;
export function isoSeconds(d: Date | undefined): string | undefined;
export function isoSeconds(d: Date | undefined): string | undefined {
  return d?.toISOString().replace('.000Z', 'Z');
}
const iso = isoSeconds;

function fail(type: number, check: CertCheck, message: string, cause?: unknown): never {
  throw new CertificateError(certName(type), check, message, cause === undefined ? undefined : { cause });
}

/** The RSA identity fingerprint of a public key: SHA-1 of its DER PKCS#1 form, upper-case hex. */
export function rsaFingerprint(key: KeyObject): string {
  return createHash('sha1').update(key.export({ type: 'pkcs1', format: 'der' })).digest('hex').toUpperCase();
}

/** Certificates of one type from a CERTS cell or a list. */
function byType(certs: readonly Certificate[]): Map<number, Certificate[]> {
  const out = new Map<number, Certificate[]>();
  for (const c of certs) {
    const list = out.get(c.typeInt);
    if (list) list.push(c);
    else out.set(c.typeInt, [c]);
  }
  return out;
}

function decodeEd(type: number, bytes: Uint8Array): Ed25519Cert {
  try {
    return Ed25519Cert.decode(bytes);
  } catch (err) {
    if (err instanceof OrportError) fail(type, 'decode', `is not a valid Ed25519 certificate: ${err.message}`, err);
    throw err;
  }
}

/** Type-independent checks of an Ed25519 cert: CERT_TYPE, key type, extensions, expiry. */
function checkEd(type: number, cert: Ed25519Cert, keyTypes: readonly number[], now: Date): void {
  if (cert.certType !== type) fail(type, 'cert-type', `has CERT_TYPE ${cert.certType} inside, expected ${type}`);
  if (!keyTypes.includes(cert.keyType)) fail(type, 'key-type', `certifies a key of type ${cert.keyType}, expected ${keyTypes.join(' or ')}`);
  const problems = cert.problems();
  if (problems.length) fail(type, 'extension', `is invalid: ${problems.join('; ')}`);
  if (cert.isExpired(now)) fail(type, 'expired', `expired at ${iso(cert.expires)} (now ${iso(now)})`);
}

/**
 * Verifies a CERTS cell as an initiator that authenticates the responder (tor-spec 4.2,
 * Ed25519 + RSA), against the DER of the TLS certificate the relay presented.
 * Throws CertificateError naming the certificate and the check that failed.
 */
export function verifyCertsCell(
  certs: CertsCell | readonly Certificate[],
  tlsCertificate: Uint8Array,
  now: Date,
  options: VerifyOptions = {},
): VerifiedChain {
  const list = Array.isArray(certs) ? (certs as readonly Certificate[]) : (certs as CertsCell).certificates;
  const types = byType(list);
  for (const type of [1, 2, 3, 4, 5, 6, 7]) {
    const n = types.get(type)?.length ?? 0;
    if (n > 1) fail(type, 'duplicate', `appears ${n} times; a CERTS cell holds at most one of each type (tor-spec 4.2)`);
  }
  for (const type of [2, 4, 5, 7]) {
    if (!types.has(type)) fail(type, 'missing', `is missing; a relay proving an Ed25519 + RSA identity sends exactly one (tor-spec 4.2)`);
  }
  const one = (type: number): Uint8Array => types.get(type)![0]!.value;

  // Type 2: the RSA-1024 identity, self-signed X.509.
  let idCert: X509;
  let rsaKey: RsaPublicKey | undefined;
  try {
    idCert = parseX509(one(2));
    rsaKey = x509RsaKey(idCert);
  } catch (err) {
    fail(2, 'decode', `is not a valid X.509 certificate: ${(err as Error).message}`, err);
  }
  if (!rsaKey) fail(2, 'key-type', 'holds a key that is not RSA');
  if (rsaKey.bits !== 1024) fail(2, 'key-size', `holds a ${rsaKey.bits}-bit RSA key, expected 1024 bits`);
  const pastSlop = options.x509PastSlopMs ?? X509_PAST_SLOP_MS;
  const futureSlop = options.x509FutureSlopMs ?? X509_FUTURE_SLOP_MS;
  if (now.getTime() > idCert.notAfter.getTime() + pastSlop) fail(2, 'expired', `expired at ${iso(idCert.notAfter)} (now ${iso(now)})`);
  if (now.getTime() < idCert.notBefore.getTime() - futureSlop) fail(2, 'not-yet-valid', `is not valid before ${iso(idCert.notBefore)} (now ${iso(now)})`);
  if (!x509VerifyRsa(idCert, rsaKey.key)) fail(2, 'signature', 'is not correctly self-signed');
  const rsa = fingerprintOf(rsaKey);

  // Type 4: identity key -> signing key.
  const signing = decodeEd(4, one(4));
  checkEd(4, signing, [CertifiedKeyType.ED25519], now);
  const identityKey = signing.signingKey;
  if (!identityKey) fail(4, 'signing-key', 'lacks the signed-with-ed25519-key extension that names the Ed25519 identity');
  if (!signing.verify(identityKey)) fail(4, 'signature', `is not signed by the identity key it names (${b64(identityKey)})`);

  // Type 5: signing key -> SHA-256 of the TLS certificate.
  const link = decodeEd(5, one(5));
  checkEd(5, link, [CertifiedKeyType.SHA256_OF_X509, CertifiedKeyType.ED25519], now);
  if (tlsCertificate.length === 0) fail(5, 'tls-certificate', 'cannot be checked: the relay presented no TLS certificate');
  const tlsDigest = new Uint8Array(createHash('sha256').update(tlsCertificate).digest());
  if (!bytesEqual(link.certifiedKey, tlsDigest)) {
    fail(5, 'tls-certificate', `certifies TLS certificate ${toHex(link.certifiedKey)}, but the relay presented ${toHex(tlsDigest)}`);
  }
  let signingKeyObject: KeyObject | undefined;
  try {
    signingKeyObject = ed25519PublicKey(signing.certifiedKey);
  } catch {
    signingKeyObject = undefined;
  }
  if (!signingKeyObject || !link.verify(signingKeyObject)) fail(5, 'signature', `is not signed by the signing key of type 4 (${b64(signing.certifiedKey)})`);

  // Type 7: RSA identity -> Ed25519 identity.
  let cross: RsaCrossCert;
  try {
    cross = RsaCrossCert.decode(one(7));
  } catch (err) {
    if (err instanceof OrportError) fail(7, 'decode', `is not a valid cross-certificate: ${err.message}`, err);
    throw err;
  }
  if (!bytesEqual(cross.ed25519Key, identityKey)) fail(7, 'identity', `certifies Ed25519 identity ${b64(cross.ed25519Key)}, but type 4 names ${b64(identityKey)}`);
  if (cross.isExpired(now)) fail(7, 'expired', `expired at ${iso(cross.expires)} (now ${iso(now)})`);
  if (!cross.verify(rsaKey.key)) fail(7, 'signature', `is not signed by the RSA identity key of type 2 (${rsa})`);

  const ed25519 = b64(identityKey);
  const certificates: ChainEntry[] = [
    { type: 2, name: certName(2), validFrom: idCert.notBefore, expires: idCert.notAfter, certifies: `RSA-1024 identity ${rsa}`, signedBy: 'itself' },
    { type: 4, name: certName(4), expires: signing.expires, certifies: `Ed25519 signing key ${b64(signing.certifiedKey)}`, signedBy: `Ed25519 identity ${ed25519}` },
    { type: 5, name: certName(5), expires: link.expires, certifies: `TLS certificate SHA-256 ${toHex(link.certifiedKey)}`, signedBy: 'the signing key' },
    { type: 7, name: certName(7), expires: cross.expires, certifies: `Ed25519 identity ${ed25519}`, signedBy: `RSA identity ${rsa}` },
  ];
  const expires = new Date(Math.min(...certificates.map((c) => c.expires.getTime())));
  return { identity: { rsa, ed25519 }, certificates, signingKey: b64(signing.certifiedKey), expires };
}

/** A CERTS cell certificate as listed (not verified): its type, size, and dates when it has them. */
export interface CertSummary {
  type: number;
  name: string;
  length: number;
  validFrom?: Date;
  expires?: Date;
  /** Why its dates could not be read. */
  error?: string;
}

/** Lists a CERTS cell's certificates with their expiry dates, without verifying anything. */
export function listCertificates(certs: CertsCell | readonly Certificate[]): CertSummary[] {
  const list = Array.isArray(certs) ? (certs as readonly Certificate[]) : (certs as CertsCell).certificates;
  return list.map((c) => {
    const summary: CertSummary = { type: c.typeInt, name: certName(c.typeInt), length: c.value.length };
    try {
      if (c.typeInt >= 1 && c.typeInt <= 3) {
        const v = parseX509(c.value);
        summary.validFrom = v.notBefore;
        summary.expires = v.notAfter;
      } else if (c.typeInt >= 4 && c.typeInt <= 6) {
        summary.expires = Ed25519Cert.decode(c.value).expires;
      } else if (c.typeInt === 7) {
        summary.expires = RsaCrossCert.decode(c.value).expires;
      }
    } catch (err) {
      summary.error = (err as Error).message;
    }
    return summary;
  });
}

/** Normalizes a pinned RSA fingerprint: '$' prefix and spaces dropped, upper case. */
export function normalizeRsaFingerprint(text: string): string {
  return text.replace(/^\$/, '').replace(/\s+/g, '').toUpperCase();
}

/** Normalizes a pinned Ed25519 identity: base64 padding dropped. */
export function normalizeEd25519Identity(text: string): string {
  return text.replace(/=+$/, '');
}

/**
 * The mismatch between a pinned identity and the one proven, if any (the same
 * comparison `Relay.connect({ identity })` makes): RSA first, then Ed25519.
 */
export function identityMismatch(pinned: { rsa?: string; ed25519?: string } | undefined, seen: RelayIdentity): IdentityMismatchError | undefined {
  if (pinned?.rsa !== undefined) {
    const expected = normalizeRsaFingerprint(pinned.rsa);
    if (expected !== seen.rsa) return new IdentityMismatchError('rsa', expected, seen.rsa);
  }
  if (pinned?.ed25519 !== undefined) {
    const expected = normalizeEd25519Identity(pinned.ed25519);
    if (expected !== seen.ed25519) return new IdentityMismatchError('ed25519', expected, seen.ed25519);
  }
  return undefined;
}
