/**
 * dir/authcert — directory authority key certificates (dir-spec §3.1): parses a
 * concatenation of them and verifies each as tor does (authcert_parse.c): the identity
 * key's digest is the fingerprint (the v3ident), the identity key signs the certificate,
 * the signing key signs the identity digest (the cross-certificate), and it has not
 * expired.
 *
 * Layer: codec core and crypto (Node's RSA). No I/O; the time is passed in.
 */
import { createHash, createPublicKey, publicDecrypt, constants, timingSafeEqual, type KeyObject } from 'node:crypto';
import { DirectoryError } from '../errors.js';
import { argsOf, docError, parseTime, tokenize, type Item } from './netdoc.js';

export interface AuthorityCert {
  /** The v3 identity: SHA-1 of the identity key's DER, 40 upper-case hex. */
  readonly fingerprint: string;
  /** SHA-1 of the signing key's DER, 40 upper-case hex (what directory-signature lines name). */
  readonly signingKeyDigest: string;
  readonly published: Date;
  readonly expires: Date;
  /** `dir-address`, if given. */
  readonly dirAddress: string | undefined;
  readonly identityKey: Uint8Array;
  readonly signingKey: Uint8Array;
  readonly crossCert: Uint8Array;
  readonly certification: Uint8Array;
  /** SHA-1 of the certified bytes (from the first keyword through the dir-key-certification line). */
  readonly signedDigest: Uint8Array;
  /** The certificate's own text (latin1), for caching. */
  readonly text: string;
  readonly line: number;
}

const WHAT = 'key certificate';
const START = 'dir-key-certificate-version';
/** tor authcert_parse.c: a certificate over 128 KB is refused. */
const MAX_CERT_BYTES = 128 * 1024;

function keyOf(item: Item | undefined, keyword: string, first: Item): Uint8Array {
  if (!item) throw docError(WHAT, first.line, first.start, `no ${keyword}`);
  if (!item.object || item.object.tag !== 'RSA PUBLIC KEY') throw docError(WHAT, item.line, item.start, `${keyword} has no RSA PUBLIC KEY object`);
  return item.object.bytes;
}

/** Parses every certificate in `text` (latin1). A DecodeError names the line. */
export function parseAuthorityCerts(text: string): AuthorityCert[] {
  const certs: AuthorityCert[] = [];
  const items = tokenize(text, WHAT);
  let i = 0;
  while (i < items.length) {
    const first = items[i]!;
    if (first.keyword !== START) throw docError(WHAT, first.line, first.start, `expected ${START}, got ${first.keyword}`);
    if (first.args !== '3') throw docError(WHAT, first.line, first.start, `${START} ${first.args}: only version 3 is known`);
    const byKeyword = new Map<string, Item>();
    let end: Item | undefined;
    for (i++; i < items.length; i++) {
      const item = items[i]!;
      if (item.keyword === START) throw docError(WHAT, item.line, item.start, 'a certificate starts before the last one ended (no dir-key-certification)');
      if (byKeyword.has(item.keyword) && item.keyword !== 'dir-key-certification') throw docError(WHAT, item.line, item.start, `${item.keyword} appears twice`);
      byKeyword.set(item.keyword, item);
      if (item.keyword === 'dir-key-certification') {
        end = item;
        i++;
        break;
      }
    }
    if (!end) throw docError(WHAT, first.line, first.start, 'the certificate has no dir-key-certification');
    if (end.end - first.start > MAX_CERT_BYTES) throw docError(WHAT, first.line, first.start, `a certificate of ${end.end - first.start} bytes (at most ${MAX_CERT_BYTES})`);
    const fp = byKeyword.get('fingerprint');
    const fingerprint = fp ? argsOf(fp)[0] ?? '' : '';
    if (!/^[0-9A-Fa-f]{40}$/.test(fingerprint)) throw docError(WHAT, fp?.line ?? first.line, fp?.start ?? first.start, `fingerprint ${JSON.stringify(fingerprint)} is not 40 hex digits`);
    const time = (k: string) => {
      const item = byKeyword.get(k);
      if (!item) throw docError(WHAT, first.line, first.start, `no ${k}`);
      const [d, t] = argsOf(item);
      return parseTime(d, t, item, WHAT);
    };
    const identityKey = keyOf(byKeyword.get('dir-identity-key'), 'dir-identity-key', first);
    const signingKey = keyOf(byKeyword.get('dir-signing-key'), 'dir-signing-key', first);
    const cross = byKeyword.get('dir-key-crosscert');
    if (!cross?.object) throw docError(WHAT, cross?.line ?? first.line, cross?.start ?? first.start, 'no dir-key-crosscert object');
    if (!end.object || end.object.tag !== 'SIGNATURE') throw docError(WHAT, end.line, end.start, 'dir-key-certification has no SIGNATURE object');
    const certText = text.slice(first.start, end.end);
    certs.push({
      fingerprint: fingerprint.toUpperCase(),
      signingKeyDigest: sha1Hex(signingKey),
      published: time('dir-key-published'),
      expires: time('dir-key-expires'),
      dirAddress: byKeyword.get('dir-address')?.args,
      identityKey,
      signingKey,
      crossCert: cross.object.bytes,
      certification: end.object.bytes,
      // dir-spec §3.1: from the start through the newline of the dir-key-certification line.
      signedDigest: new Uint8Array(createHash('sha1').update(Buffer.from(text.slice(first.start, end.lineEnd), 'latin1')).digest()),
      text: certText.endsWith('\n') ? certText : `${certText}\n`,
      line: first.line,
    });
  }
  return certs;
}

export function sha1Hex(bytes: Uint8Array): string {
  return createHash('sha1').update(bytes).digest('hex').toUpperCase();
}

/**
 * An RSA public key from PKCS#1 DER `RSAPublicKey` (dir-spec §1.2). Node would also take a
 * private key's DER here and derive its public half; tor refuses that, and so do we.
 */
export function rsaKey(der: Uint8Array): KeyObject {
  const key = createPublicKey({ key: Buffer.from(der), format: 'der', type: 'pkcs1' });
  const canonical = key.export({ format: 'der', type: 'pkcs1' });
  if (!canonical.equals(Buffer.from(der))) throw new DirectoryError('E_DIR_CERT', `an RSA PUBLIC KEY object holds ${der.length} bytes that are not a PKCS#1 RSAPublicKey (a private key, or trailing bytes)`);
  return key;
}

/**
 * Does `signature` by `key` carry `digest` under PKCS#1 v1.5 type-1 padding with no
 * DigestInfo (dir-spec §1.3)? Constant-time comparison; any RSA failure is a no.
 */
export function rsaSignsDigest(key: KeyObject, signature: Uint8Array, digest: Uint8Array): boolean {
  let recovered: Buffer;
  try {
    recovered = publicDecrypt({ key, padding: constants.RSA_PKCS1_PADDING }, signature);
  } catch {
    return false;
  }
  return recovered.length === digest.length && timingSafeEqual(recovered, digest);
}

/**
 * Verifies a certificate at `now` (dir-spec §3.1): fingerprint, certification by the
 * identity key, cross-certificate by the signing key, not expired. Throws a
 * DirectoryError (E_DIR_CERT) saying which check failed.
 */
export function verifyAuthorityCert(cert: AuthorityCert, now: Date): void {
  const where = `the key certificate of ${cert.fingerprint} (signing key ${cert.signingKeyDigest})`;
  const identityDigest = createHash('sha1').update(cert.identityKey).digest();
  if (identityDigest.toString('hex').toUpperCase() !== cert.fingerprint) {
    throw new DirectoryError('E_DIR_CERT', `${where}: its identity key's digest is ${identityDigest.toString('hex').toUpperCase()}, not its fingerprint`);
  }
  let identity: KeyObject;
  let signing: KeyObject;
  try {
    identity = rsaKey(cert.identityKey);
    signing = rsaKey(cert.signingKey);
  } catch (err) {
    throw new DirectoryError('E_DIR_CERT', `${where}: a key is not an RSA public key (${(err as Error).message})`);
  }
  if (!rsaSignsDigest(identity, cert.certification, cert.signedDigest)) throw new DirectoryError('E_DIR_CERT', `${where}: the identity key's signature (dir-key-certification) does not verify`);
  if (!rsaSignsDigest(signing, cert.crossCert, identityDigest)) throw new DirectoryError('E_DIR_CERT', `${where}: the cross-certificate (dir-key-crosscert) does not verify`);
  if (now.getTime() > cert.expires.getTime()) throw new DirectoryError('E_DIR_CERT', `${where} expired at ${cert.expires.toISOString()} (now ${now.toISOString()})`);
}

/** Splits certificates into those that verify at `now` and the errors of the others. */
export function verifyAuthorityCerts(certs: readonly AuthorityCert[], now: Date): { valid: AuthorityCert[]; rejected: DirectoryError[] } {
  const valid: AuthorityCert[] = [];
  const rejected: DirectoryError[] = [];
  for (const cert of certs) {
    try {
      verifyAuthorityCert(cert, now);
      valid.push(cert);
    } catch (err) {
      rejected.push(err as DirectoryError);
    }
  }
  return { valid, rejected };
}
