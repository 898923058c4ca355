/**
 * testing/certchain — builds a relay's whole certificate chain from fresh keys, as tor
 * 0.4.9 does, for fake relays and tests: an RSA-1024 identity with its self-signed X.509
 * cert (CERTS type 2), an RSA TLS link key with an X.509 cert signed by the identity
 * (the certificate the TLS server presents, also CERTS type 1), an Ed25519 identity,
 * the signing-key cert (type 4), the TLS link cert (type 5) and the RSA→Ed25519
 * cross-cert (type 7), in tor's CERTS order 1, 2, 4, 5, 7.
 *
 * Node can't create X.509 certificates, so they are built here as DER by hand: v3, a
 * random 64-bit serial, sha256WithRSAEncryption, a CN-only issuer and subject (tor's
 * random "www.<x>.com" style), no extensions — what tor_tls_create_certificate makes.
 *
 * Every part can be overridden (keys, dates) so tests can build chains that are wrong in
 * exactly one way. Layer: test support. No I/O.
 */
import { createHash, createPublicKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { Certificate } from '../codec/datatype.js';
import { CertsCell } from '../codec/cell.js';
import { buildX509 } from '../crypto/x509.js';
import {
  CertifiedKeyType,
  Ed25519Cert,
  Ed25519CertType,
  RsaCrossCert,
  ed25519RawPublicKey,
  hoursSinceEpoch,
  signedWithKeyExtension,
} from '../crypto/ed25519cert.js';
import { rsaFingerprint, type RelayIdentity } from '../crypto/certs.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

export function generateRsaKey(bits = 1024): KeyObject {
  return generateKeyPairSync('rsa', { modulusLength: bits, publicExponent: 65537 }).privateKey;
}

export function generateEd25519Key(): KeyObject {
  return generateKeyPairSync('ed25519').privateKey;
}

/** A random host name in tor's style ("www.<8-20 letters and digits>.<tld>"). */
export function randomHostname(tld = 'com'): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';
  const n = 8 + (randomBytes(1)[0]! % 13);
  let label = '';
  for (const b of randomBytes(n)) label += alphabet[b & 31];
  return `www.${label}.${tld}`;
}

/** PEM text of DER bytes. */
export function pem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

export interface ChainKeys {
  /** RSA-1024 identity (private). */
  rsaIdentity: KeyObject;
  /** RSA TLS link key (private). */
  tls: KeyObject;
  /** Ed25519 identity (private). */
  ed25519Identity: KeyObject;
  /** Ed25519 signing key (private). */
  ed25519Signing: KeyObject;
}

/** Generates fresh keys (the TLS key is RSA-2048, as tor's). */
export function generateChainKeys(options: { tlsBits?: number } = {}): ChainKeys {
  return {
    rsaIdentity: generateRsaKey(1024),
    tls: generateRsaKey(options.tlsBits ?? 2048),
    ed25519Identity: generateEd25519Key(),
    ed25519Signing: generateEd25519Key(),
  };
}

export interface ChainOptions {
  /** Keys to use (default: fresh ones; generating them takes most of the time). */
  keys?: Partial<ChainKeys>;
  /** The time the chain is made (default now). */
  now?: Date;
  /** Validity of the identity X.509 cert (type 2); default from a day before `now` for a year. */
  identityValidity?: { notBefore: Date; notAfter: Date };
  /** Validity of the TLS X.509 cert (type 1); default as the identity's. */
  tlsValidity?: { notBefore: Date; notAfter: Date };
  /** Expiry of the signing-key cert (type 4); default 30 days after `now` (tor's default). */
  signingExpires?: Date;
  /** Expiry of the link cert (type 5); default 2 days after `now` (tor's default). */
  linkExpires?: Date;
  /** Expiry of the cross-cert (type 7); default 6 months after `now`. */
  crossExpires?: Date;
  /** Host names for the X.509 certs (default random, tor-style). */
  identityCN?: string;
  tlsCN?: string;
}

/** A relay's full certificate chain and everything needed to serve it. */
export interface GeneratedChain {
  keys: ChainKeys;
  identity: RelayIdentity;
  /** Raw Ed25519 identity and signing public keys. */
  ed25519Identity: Uint8Array;
  ed25519Signing: Uint8Array;
  /** The self-signed RSA identity cert (type 2), DER. */
  identityCertificate: Uint8Array;
  /** The TLS certificate (also CERTS type 1), DER, and it and its key as PEM for node:tls. */
  tlsCertificate: Uint8Array;
  tlsCertificatePem: string;
  tlsKeyPem: string;
  signingCert: Ed25519Cert;
  linkCert: Ed25519Cert;
  crossCert: RsaCrossCert;
  /** The CERTS cell's certificates, in tor's order: 1, 2, 4, 5, 7. */
  certificates: Certificate[];
  certsCell: CertsCell;
}

/** Builds a valid chain (valid at `options.now`), from fresh keys unless given. */
export function buildCertChain(options: ChainOptions = {}): GeneratedChain {
  const now = options.now ?? new Date();
  const given = options.keys ?? {};
  const keys: ChainKeys = {
    rsaIdentity: given.rsaIdentity ?? generateRsaKey(1024),
    tls: given.tls ?? generateRsaKey(2048),
    ed25519Identity: given.ed25519Identity ?? generateEd25519Key(),
    ed25519Signing: given.ed25519Signing ?? generateEd25519Key(),
  };
  const dayStart = Math.floor(now.getTime() / DAY) * DAY;
  const defaultValidity = { notBefore: new Date(dayStart - DAY), notAfter: new Date(dayStart - DAY + 365 * DAY) };
  const identityCN = options.identityCN ?? randomHostname('com');
  const identityValidity = options.identityValidity ?? defaultValidity;
  const identityCertificate = buildX509({
    subjectKey: keys.rsaIdentity,
    issuerKey: keys.rsaIdentity,
    subjectCN: identityCN,
    issuerCN: identityCN,
    ...identityValidity,
  });
  const tlsValidity = options.tlsValidity ?? defaultValidity;
  const tlsCertificate = buildX509({
    subjectKey: keys.tls,
    issuerKey: keys.rsaIdentity,
    subjectCN: options.tlsCN ?? randomHostname('net'),
    issuerCN: identityCN,
    ...tlsValidity,
  });
  const ed25519Identity = ed25519RawPublicKey(keys.ed25519Identity);
  const ed25519Signing = ed25519RawPublicKey(keys.ed25519Signing);
  const signingCert = Ed25519Cert.sign(
    {
      certType: Ed25519CertType.SIGNING,
      expirationHours: hoursSinceEpoch(options.signingExpires ?? new Date(now.getTime() + 30 * DAY)),
      keyType: CertifiedKeyType.ED25519,
      certifiedKey: ed25519Signing,
      extensions: [signedWithKeyExtension(ed25519Identity)],
    },
    keys.ed25519Identity,
  );
  const linkCert = Ed25519Cert.sign(
    {
      certType: Ed25519CertType.LINK,
      expirationHours: hoursSinceEpoch(options.linkExpires ?? new Date(now.getTime() + 2 * DAY)),
      keyType: CertifiedKeyType.SHA256_OF_X509,
      certifiedKey: new Uint8Array(createHash('sha256').update(tlsCertificate).digest()),
    },
    keys.ed25519Signing,
  );
  const crossCert = RsaCrossCert.sign(ed25519Identity, hoursSinceEpoch(options.crossExpires ?? new Date(now.getTime() + 182 * DAY)), keys.rsaIdentity);
  const certificates = [
    new Certificate(1, tlsCertificate),
    new Certificate(2, identityCertificate),
    new Certificate(4, signingCert.encoded),
    new Certificate(5, linkCert.encoded),
    new Certificate(7, crossCert.encoded),
  ];
  return {
    keys,
    identity: {
      rsa: rsaFingerprint(createPublicKey(keys.rsaIdentity)),
      ed25519: Buffer.from(ed25519Identity).toString('base64').replace(/=+$/, ''),
    },
    ed25519Identity,
    ed25519Signing,
    identityCertificate,
    tlsCertificate,
    tlsCertificatePem: pem('CERTIFICATE', tlsCertificate),
    tlsKeyPem: keys.tls.export({ type: 'pkcs8', format: 'pem' }).toString(),
    signingCert,
    linkCert,
    crossCert,
    certificates,
    certsCell: new CertsCell(certificates),
  };
}
