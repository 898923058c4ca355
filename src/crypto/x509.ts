/**
 * crypto/x509 — the X.509 that tor's link handshake needs, without OpenSSL's X.509
 * object: read a certificate's signed part, validity dates and RSA key; check an RSA
 * signature on it; and build one (Node can't create X.509 certificates; a fake relay
 * needs its identity and TLS certificates).
 *
 * Why not `crypto.X509Certificate`: parsing one and importing its key through OpenSSL 3's
 * decoders costs ~0.3–0.6 ms on this project's machines, more than all of the chain's
 * signature checks together; reading the DER here and importing the key as JWK costs a
 * few tens of µs. The signature check is OpenSSL's (crypto.verify), as tor's X509_verify.
 *
 * Layer: crypto core. No I/O. Parsing is zero-copy (views into the given bytes).
 */
import { createHash, createPublicKey, randomBytes, sign as nodeSign, verify as nodeVerify, type KeyObject } from 'node:crypto';
import { BadArgumentError, DecodeError } from '../errors.js';
import { bytesEqual } from '../codec/bytes.js';
import { TAG, bitString, children, derNull, explicit, integer, oid, parseTime, readTlv, sequence, set, time, utf8String, type Tlv } from './der.js';

const WHAT = 'X.509 certificate';

/** DER contents of the OIDs we meet. */
const OID_RSA_ENCRYPTION = Uint8Array.from([0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01]);
/** PKCS#1 signature algorithms by the last arc of 1.2.840.113549.1.1.x. */
const RSA_SIGNATURE_HASHES: Readonly<Record<number, string>> = { 5: 'sha1', 11: 'sha256', 12: 'sha384', 13: 'sha512', 14: 'sha224' };

export interface X509 {
  /** The whole certificate. */
  der: Uint8Array;
  /** The TBSCertificate (what the signature covers), tag and length included. */
  tbs: Uint8Array;
  /** The outer signatureAlgorithm (AlgorithmIdentifier DER). */
  signatureAlgorithm: Uint8Array;
  /** The TBSCertificate's own signature field (must equal the outer one). */
  tbsSignatureAlgorithm: Uint8Array;
  /** The signature bits. */
  signature: Uint8Array;
  notBefore: Date;
  notAfter: Date;
  /** SubjectPublicKeyInfo DER. */
  spki: Uint8Array;
  /** The SPKI's algorithm OID contents, and its subjectPublicKey bits. */
  keyAlgorithm: Uint8Array;
  publicKeyBits: Uint8Array;
}

function expect(t: Tlv | undefined, tag: number, field: string): Tlv {
  if (!t) throw new DecodeError(WHAT, -1, `lacks ${field}`);
  if (t.tag !== tag) throw new DecodeError(WHAT, -1, `${field} has tag 0x${t.tag.toString(16)}, expected 0x${tag.toString(16)}`);
  return t;
}

function bits(t: Tlv, field: string): Uint8Array {
  if (t.content.length < 1 || t.content[0] !== 0) throw new DecodeError(WHAT, -1, `${field} is not a whole-byte BIT STRING`);
  return t.content.subarray(1);
}

/** Parses the parts of a DER X.509 certificate we use; throws DecodeError. */
export function parseX509(der: Uint8Array): X509 {
  const cert = expect(readTlv(der, 0, WHAT), TAG.SEQUENCE, 'Certificate');
  if (cert.end !== der.length) throw new DecodeError(WHAT, cert.end, `${der.length - cert.end} bytes after the certificate`);
  const [tbs, sigAlg, sig, extra] = children(cert, WHAT);
  if (extra) throw new DecodeError(WHAT, -1, 'Certificate has more than three parts');
  expect(tbs, TAG.SEQUENCE, 'TBSCertificate');
  expect(sigAlg, TAG.SEQUENCE, 'signatureAlgorithm');
  const fields = children(tbs!, WHAT);
  let i = fields[0]?.tag === 0xa0 ? 1 : 0; // [0] EXPLICIT version
  expect(fields[i++], TAG.INTEGER, 'serialNumber');
  const tbsSigAlg = expect(fields[i++], TAG.SEQUENCE, 'signature');
  expect(fields[i++], TAG.SEQUENCE, 'issuer');
  const validity = expect(fields[i++], TAG.SEQUENCE, 'validity');
  expect(fields[i++], TAG.SEQUENCE, 'subject');
  const spki = expect(fields[i++], TAG.SEQUENCE, 'subjectPublicKeyInfo');
  const [notBefore, notAfter] = children(validity, WHAT);
  if (!notBefore || !notAfter) throw new DecodeError(WHAT, -1, 'validity lacks notBefore or notAfter');
  const [keyAlg, keyBits] = children(spki, WHAT);
  const keyOid = expect(children(expect(keyAlg, TAG.SEQUENCE, 'SPKI algorithm'), WHAT)[0], TAG.OID, 'SPKI algorithm OID');
  return {
    der,
    tbs: tbs!.whole,
    signatureAlgorithm: sigAlg!.whole,
    tbsSignatureAlgorithm: tbsSigAlg.whole,
    signature: bits(expect(sig, TAG.BIT_STRING, 'signatureValue'), 'signatureValue'),
    notBefore: parseTime(notBefore, `${WHAT} notBefore`),
    notAfter: parseTime(notAfter, `${WHAT} notAfter`),
    spki: spki.whole,
    keyAlgorithm: keyOid.content,
    publicKeyBits: bits(expect(keyBits, TAG.BIT_STRING, 'subjectPublicKey'), 'subjectPublicKey'),
  };
}

/** An RSA public key read from a certificate. */
export interface RsaPublicKey {
  key: KeyObject;
  /** Modulus size in bits. */
  bits: number;
  /** The canonical DER PKCS#1 RSAPublicKey (what tor hashes for a fingerprint). */
  pkcs1: Uint8Array;
}

const b64url = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64url');

function unsignedInteger(t: Tlv | undefined, field: string): Uint8Array {
  const v = expect(t, TAG.INTEGER, field).content;
  if (v.length === 0 || (v[0]! & 0x80) !== 0) throw new DecodeError(WHAT, -1, `${field} is not a positive INTEGER`);
  let start = 0;
  while (start < v.length - 1 && v[start] === 0) start++;
  return v.subarray(start);
}

/** The certificate's RSA key, or undefined when it holds another kind of key. Throws DecodeError if malformed. */
export function x509RsaKey(cert: X509): RsaPublicKey | undefined {
  if (!bytesEqual(cert.keyAlgorithm, OID_RSA_ENCRYPTION)) return undefined;
  const seq = expect(readTlv(cert.publicKeyBits, 0, WHAT), TAG.SEQUENCE, 'RSAPublicKey');
  const [n, e, extra] = children(seq, WHAT);
  if (extra) throw new DecodeError(WHAT, -1, 'RSAPublicKey has more than two INTEGERs');
  const modulus = unsignedInteger(n, 'modulus');
  const exponent = unsignedInteger(e, 'publicExponent');
  const bitLength = (modulus.length - 1) * 8 + (32 - Math.clz32(modulus[0]!));
  let key: KeyObject;
  try {
    key = createPublicKey({ key: { kty: 'RSA', n: b64url(modulus), e: b64url(exponent) }, format: 'jwk' });
  } catch (err) {
    throw new DecodeError(WHAT, -1, `unusable RSA key: ${(err as Error).message}`);
  }
  return { key, bits: bitLength, pkcs1: sequence(integer(modulus), integer(exponent)) };
}

/** SHA-1 of the PKCS#1 key, upper-case hex: the fingerprint tor prints (tor-spec 0.3). */
export function fingerprintOf(key: RsaPublicKey): string {
  return createHash('sha1').update(key.pkcs1).digest('hex').toUpperCase();
}

/**
 * Whether `key` made the certificate's signature (PKCS#1 v1.5 with the hash its
 * signatureAlgorithm names; the algorithm inside the TBSCertificate must be the same).
 */
export function x509VerifyRsa(cert: X509, key: KeyObject): boolean {
  if (!bytesEqual(cert.signatureAlgorithm, cert.tbsSignatureAlgorithm)) return false;
  const hash = signatureHash(cert.signatureAlgorithm);
  if (!hash) return false;
  try {
    return nodeVerify(hash, cert.tbs, key, cert.signature);
  } catch {
    return false;
  }
}

/** The hash of a PKCS#1 v1.5 RSA AlgorithmIdentifier (1.2.840.113549.1.1.{5,11-14}), else undefined. */
function signatureHash(algorithmIdentifier: Uint8Array): string | undefined {
  try {
    const alg = readTlv(algorithmIdentifier, 0, WHAT);
    const o = children(alg, WHAT)[0];
    if (!o || o.tag !== TAG.OID || o.content.length !== 9) return undefined;
    if (!bytesEqual(o.content.subarray(0, 8), OID_RSA_ENCRYPTION.subarray(0, 8))) return undefined;
    return RSA_SIGNATURE_HASHES[o.content[8]!];
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------
// Building

const SHA256_WITH_RSA = '1.2.840.113549.1.1.11';
const COMMON_NAME = '2.5.4.3';

export interface X509BuildOptions {
  /** The key the certificate certifies (public or private). */
  subjectKey: KeyObject;
  /** The private RSA key that signs it (the subject's own for a self-signed cert). */
  issuerKey: KeyObject;
  subjectCN: string;
  issuerCN: string;
  notBefore: Date;
  notAfter: Date;
  /** Serial number bytes (default 8 random bytes, made positive). */
  serial?: Uint8Array;
}

const x509Name = (cn: string): Uint8Array => sequence(set(sequence(oid(COMMON_NAME), utf8String(cn))));

/**
 * A minimal v3 certificate, DER, signed with sha256WithRSAEncryption: a CN-only issuer
 * and subject, no extensions (as tor_tls_create_certificate makes them).
 */
export function buildX509(options: X509BuildOptions): Uint8Array {
  let serial = options.serial;
  if (!serial) {
    serial = new Uint8Array(randomBytes(8));
    serial[0]! &= 0x7f;
    serial[0]! |= 0x01;
  }
  if (options.issuerKey.type !== 'private') throw new BadArgumentError('the issuer key must be a private key');
  const algorithm = sequence(oid(SHA256_WITH_RSA), derNull());
  const spki = createPublicKey(options.subjectKey).export({ type: 'spki', format: 'der' });
  const tbs = sequence(
    explicit(0, integer(2)),
    integer(serial),
    algorithm,
    x509Name(options.issuerCN),
    sequence(time(options.notBefore), time(options.notAfter)),
    x509Name(options.subjectCN),
    new Uint8Array(spki),
  );
  const signature = nodeSign('sha256', tbs, options.issuerKey);
  return sequence(tbs, algorithm, bitString(new Uint8Array(signature)));
}
