/**
 * crypto/ed25519cert — Tor's Ed25519 certificate format (cert-spec 2.1) and the
 * RSA→Ed25519 cross-certificate (cert-spec 2.3, CERTS type 7): decode, encode, sign,
 * verify.
 *
 *   Ed25519 cert:  VERSION=01 | CERT_TYPE | EXPIRATION u32 (hours since the epoch) |
 *                  CERT_KEY_TYPE | CERTIFIED_KEY[32] | N_EXT | N × ext | SIGNATURE[64]
 *   extension:     ExtLength u16 | ExtType | ExtFlags | ExtData[ExtLength]
 *   cross-cert:    ED25519_KEY[32] | EXPIRATION u32 (hours) | SIGLEN | SIGNATURE[SIGLEN]
 *
 * Decoding is syntactic and strict, as tor's trunnel parser is: version 1 only, no bytes
 * left over, no truncated extension, a signed-with-ed25519-key extension (type 4) of
 * exactly 32 bytes. Semantic checks — unknown extensions flagged AFFECTS_VALIDATION, a
 * second signed-with-key extension, expiry, signatures — are `Ed25519Cert.problems()` and
 * `verify()`, so any well-formed certificate round-trips through decode and encode.
 *
 * The cross-cert's signature is what tor's `crypto_pk_private_sign` makes: PKCS#1 v1.5
 * type-1 padding around the raw 32-byte SHA-256 digest, with no DigestInfo
 * (RSA_private_encrypt). A standard RSASSA-PKCS1-v1_5 verify fails on it; we recover the
 * padded message with a raw public-key operation and compare the digest.
 *
 * Decoding is zero-copy: `certifiedKey`, extension data, `signature` and `encoded` are
 * views into the bytes given to `decode`. Copy what you keep if you reuse that buffer.
 *
 * Layer: crypto core. No I/O; signing takes keys, checking takes `now`.
 */
import {
  constants,
  createHash,
  createPublicKey,
  privateEncrypt,
  publicDecrypt,
  sign as nodeSign,
  verify as nodeVerify,
  type KeyObject,
} from 'node:crypto';
import { BadArgumentError } from '../errors.js';
import { Reader, Writer, bytesEqual } from '../codec/bytes.js';

export const ED25519_CERT_VERSION = 1;
export const ED25519_KEY_LEN = 32;
export const ED25519_SIG_LEN = 64;
/** The smallest Ed25519 cert: header (40 bytes), no extensions, signature. */
export const ED25519_CERT_MIN_LEN = 1 + 1 + 4 + 1 + 32 + 1 + ED25519_SIG_LEN;

/** CERT_TYPE values of Ed25519 certs (cert-spec A.1). */
export const Ed25519CertType = {
  /** Ed25519 signing key, signed by the identity key (CERTS type 4). */
  SIGNING: 0x04,
  /** SHA-256 of the TLS certificate, signed by the signing key (CERTS type 5). */
  LINK: 0x05,
  /** Ed25519 AUTHENTICATE key, signed by the signing key (CERTS type 6). */
  AUTH: 0x06,
  HS_DESC_SIGNING: 0x08,
  HS_INTRO_AUTH: 0x09,
  NTOR_CROSSCERT: 0x0a,
  HS_NTOR_ENC: 0x0b,
} as const;

/** CERT_KEY_TYPE values (cert-spec A.4). */
export const CertifiedKeyType = {
  ED25519: 0x01,
  SHA256_OF_RSA: 0x02,
  SHA256_OF_X509: 0x03,
} as const;

/** Extension types (cert-spec A.2). */
export const ExtensionType = {
  SIGNED_WITH_ED25519_KEY: 0x04,
} as const;

/** ExtFlags bit: reject the cert unless the extension is understood. */
export const AFFECTS_VALIDATION = 0x01;

/** The prefix hashed before the first 36 bytes of a cross-cert (cert-spec 2.3). */
export const RSA_CROSSCERT_PREFIX = 'Tor TLS RSA/Ed25519 cross-certificate';

export interface Ed25519CertExtension {
  type: number;
  flags: number;
  data: Uint8Array;
}

/** The fields of an Ed25519 cert; `signature` is the last 64 bytes. */
export interface Ed25519CertFields {
  /** Always 1 today (the only version tor parses). */
  version?: number;
  certType: number;
  /** EXPIRATION_DATE: hours since the epoch (u32). */
  expirationHours: number;
  keyType: number;
  /** The certified key (Ed25519) or digest (SHA-256 of an X.509 cert or RSA key), 32 bytes. */
  certifiedKey: Uint8Array;
  extensions?: readonly Ed25519CertExtension[];
}

/** The latest time a JS Date holds (year 275760); a u32 of hours reaches further. */
const MAX_DATE_MS = 8.64e15;

/** A date from hours since the epoch, clamped to the last JS date. */
export function hoursToDate(hours: number): Date {
  return new Date(Math.min(hours * 3_600_000, MAX_DATE_MS));
}

/** Hours since the epoch for a date, rounded up as tor does (CEIL_DIV(t, 3600)). */
export function hoursSinceEpoch(date: Date): number {
  return Math.ceil(date.getTime() / 3_600_000);
}

function u32Check(value: number, what: string): void {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) throw new BadArgumentError(`${what} must be a u32, not ${value}`);
}

function u8Check(value: number, what: string): void {
  if (!Number.isInteger(value) || value < 0 || value > 0xff) throw new BadArgumentError(`${what} must be 0-255, not ${value}`);
}

/** An Ed25519 certificate (cert-spec 2.1). */
export class Ed25519Cert {
  readonly version: number;
  readonly certType: number;
  readonly expirationHours: number;
  readonly keyType: number;
  readonly certifiedKey: Uint8Array;
  readonly extensions: readonly Ed25519CertExtension[];
  readonly signature: Uint8Array;
  /** The whole encoded certificate. */
  readonly encoded: Uint8Array;

  private constructor(fields: Required<Ed25519CertFields>, signature: Uint8Array, encoded: Uint8Array) {
    this.version = fields.version;
    this.certType = fields.certType;
    this.expirationHours = fields.expirationHours;
    this.keyType = fields.keyType;
    this.certifiedKey = fields.certifiedKey;
    this.extensions = fields.extensions;
    this.signature = signature;
    this.encoded = encoded;
  }

  /** When the certificate expires (EXPIRATION_DATE × 3600 s; past year 275760, JS's last date). */
  get expires(): Date {
    return hoursToDate(this.expirationHours);
  }

  /** The bytes the signature covers: all but the last 64. */
  get signedBytes(): Uint8Array {
    return this.encoded.subarray(0, this.encoded.length - ED25519_SIG_LEN);
  }

  /** The key of the (first) signed-with-ed25519-key extension, if any. */
  get signingKey(): Uint8Array | undefined {
    return this.extensions.find((e) => e.type === ExtensionType.SIGNED_WITH_ED25519_KEY)?.data;
  }

  /** True when `now` is past the expiration (tor: valid_until < now). */
  isExpired(now: Date): boolean {
    return now.getTime() > this.expirationHours * 3_600_000;
  }

  /**
   * What makes this certificate unacceptable whatever signs it (tor's tor_cert_parse):
   * an unknown extension flagged AFFECTS_VALIDATION, or a second signed-with-key one.
   */
  problems(): string[] {
    const out: string[] = [];
    let signedWith = 0;
    for (const ext of this.extensions) {
      if (ext.type === ExtensionType.SIGNED_WITH_ED25519_KEY) {
        if (++signedWith === 2) out.push('it has more than one signed-with-ed25519-key extension');
      } else if (ext.flags & AFFECTS_VALIDATION) {
        out.push(`it has an unknown extension (type ${ext.type}) flagged AFFECTS_VALIDATION`);
      }
    }
    return out;
  }

  /** Whether `signature` is a valid Ed25519 signature of `signedBytes` by `key` (32 bytes or a KeyObject). */
  verify(key: Uint8Array | KeyObject): boolean {
    return ed25519Verify(key, this.signedBytes, this.signature);
  }

  /** The encoded bytes (as decoded, or as built). */
  encode(): Uint8Array {
    return this.encoded;
  }

  /** Decodes a certificate; throws DecodeError on anything malformed or left over. */
  static decode(bytes: Uint8Array): Ed25519Cert {
    const what = 'Ed25519 certificate';
    const r = new Reader(bytes, what);
    const version = r.u8('VERSION');
    if (version !== ED25519_CERT_VERSION) r.fail(`VERSION is ${version}; only version 1 exists`, 0);
    const certType = r.u8('CERT_TYPE');
    const expirationHours = r.u32('EXPIRATION_DATE');
    const keyType = r.u8('CERT_KEY_TYPE');
    const certifiedKey = r.bytes(32, 'CERTIFIED_KEY');
    const count = r.u8('N_EXTENSIONS');
    const extensions: Ed25519CertExtension[] = [];
    for (let i = 0; i < count; i++) {
      const length = r.u16('ExtLength');
      const type = r.u8('ExtType');
      const flags = r.u8('ExtFlags');
      const at = r.pos;
      const data = r.bytes(length, `ExtData of extension ${i} (${length} bytes)`);
      if (type === ExtensionType.SIGNED_WITH_ED25519_KEY && length !== ED25519_KEY_LEN) {
        r.fail(`a signed-with-ed25519-key extension holds a 32-byte key, not ${length} bytes`, at);
      }
      extensions.push({ type, flags, data });
    }
    const signature = r.bytes(ED25519_SIG_LEN, 'SIGNATURE');
    if (r.remaining) r.fail(`${r.remaining} byte${r.remaining === 1 ? '' : 's'} after the signature`);
    return new Ed25519Cert({ version, certType, expirationHours, keyType, certifiedKey, extensions }, signature, bytes);
  }

  /** Encodes fields with the given signature (64 bytes). */
  static build(fields: Ed25519CertFields, signature: Uint8Array): Ed25519Cert {
    if (signature.length !== ED25519_SIG_LEN) throw new BadArgumentError(`an Ed25519 signature is 64 bytes, not ${signature.length}`);
    const body = encodeUnsigned(fields);
    const encoded = new Uint8Array(body.length + ED25519_SIG_LEN);
    encoded.set(body);
    encoded.set(signature, body.length);
    return Ed25519Cert.decode(encoded);
  }

  /** Encodes fields and signs them with an Ed25519 private key. */
  static sign(fields: Ed25519CertFields, signingKey: KeyObject): Ed25519Cert {
    const body = encodeUnsigned(fields);
    const signature = new Uint8Array(nodeSign(null, body, signingKey));
    return Ed25519Cert.build(fields, signature);
  }
}

/** The signed part of an Ed25519 cert (everything but the signature). */
function encodeUnsigned(fields: Ed25519CertFields): Uint8Array {
  const version = fields.version ?? ED25519_CERT_VERSION;
  u8Check(version, 'VERSION');
  u8Check(fields.certType, 'CERT_TYPE');
  u32Check(fields.expirationHours, 'EXPIRATION_DATE');
  u8Check(fields.keyType, 'CERT_KEY_TYPE');
  if (fields.certifiedKey.length !== 32) throw new BadArgumentError(`CERTIFIED_KEY is 32 bytes, not ${fields.certifiedKey.length}`);
  const extensions = fields.extensions ?? [];
  if (extensions.length > 255) throw new BadArgumentError(`at most 255 extensions, not ${extensions.length}`);
  const w = new Writer(40 + extensions.reduce((n, e) => n + 4 + e.data.length, 0));
  w.u8(version).u8(fields.certType).u32(fields.expirationHours).u8(fields.keyType).bytes(fields.certifiedKey).u8(extensions.length);
  for (const ext of extensions) {
    u8Check(ext.type, 'ExtType');
    u8Check(ext.flags, 'ExtFlags');
    if (ext.data.length > 0xffff) throw new BadArgumentError(`ExtData is at most 65535 bytes, not ${ext.data.length}`);
    if (ext.type === ExtensionType.SIGNED_WITH_ED25519_KEY && ext.data.length !== ED25519_KEY_LEN) {
      throw new BadArgumentError(`a signed-with-ed25519-key extension holds a 32-byte key, not ${ext.data.length} bytes`);
    }
    w.u16(ext.data.length).u8(ext.type).u8(ext.flags).bytes(ext.data);
  }
  return w.finish();
}

/** The signed-with-ed25519-key extension carrying `key` (raw 32 bytes). */
export function signedWithKeyExtension(key: Uint8Array): Ed25519CertExtension {
  return { type: ExtensionType.SIGNED_WITH_ED25519_KEY, flags: 0, data: key };
}

// ---------------------------------------------------------------------------------
// Ed25519 keys

/**
 * A KeyObject for a raw 32-byte Ed25519 public key (throws BadArgumentError if unusable).
 * Imported as JWK: OpenSSL 3's DER decoders take ~10x longer for the same key.
 */
export function ed25519PublicKey(raw: Uint8Array): KeyObject {
  if (raw.length !== ED25519_KEY_LEN) throw new BadArgumentError(`an Ed25519 public key is 32 bytes, not ${raw.length}`);
  try {
    return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64url') }, format: 'jwk' });
  } catch (err) {
    throw new BadArgumentError(`not an Ed25519 public key: ${(err as Error).message}`, { cause: err });
  }
}

/** The raw 32 bytes of an Ed25519 public (or private) KeyObject. */
export function ed25519RawPublicKey(key: KeyObject): Uint8Array {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  if (pub.asymmetricKeyType !== 'ed25519') throw new BadArgumentError(`not an Ed25519 key (${pub.asymmetricKeyType})`);
  const der = pub.export({ format: 'der', type: 'spki' });
  return new Uint8Array(der.subarray(der.length - 32));
}

/** Ed25519 verification that never throws: false for a bad signature or an unusable key. */
export function ed25519Verify(key: Uint8Array | KeyObject, message: Uint8Array, signature: Uint8Array): boolean {
  if (signature.length !== ED25519_SIG_LEN) return false;
  try {
    const k = key instanceof Uint8Array ? ed25519PublicKey(key) : key;
    return nodeVerify(null, message, k, signature);
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------
// RSA→Ed25519 cross-certificate (CERTS type 7)

/** The RSA→Ed25519 cross-certificate (cert-spec 2.3). */
export class RsaCrossCert {
  private constructor(
    /** The Ed25519 identity it certifies. */
    readonly ed25519Key: Uint8Array,
    /** EXPIRATION_DATE: hours since the epoch. */
    readonly expirationHours: number,
    readonly signature: Uint8Array,
    readonly encoded: Uint8Array,
  ) {}

  get expires(): Date {
    return hoursToDate(this.expirationHours);
  }

  /** True when `now` is past the expiration (tor: expiration_time < now). */
  isExpired(now: Date): boolean {
    return now.getTime() > this.expirationHours * 3_600_000;
  }

  /** The first 36 bytes: ED25519_KEY | EXPIRATION_DATE. */
  get signedBytes(): Uint8Array {
    return this.encoded.subarray(0, 36);
  }

  /** SHA-256(prefix | first 36 bytes): what the RSA key signs. */
  digest(): Uint8Array {
    return new Uint8Array(createHash('sha256').update(RSA_CROSSCERT_PREFIX, 'latin1').update(this.signedBytes).digest());
  }

  /**
   * Whether the RSA public key signed it: the signature, opened with the public key and
   * PKCS#1 v1.5 type-1 padding removed, is exactly the 32-byte digest.
   */
  verify(rsaPublicKey: KeyObject): boolean {
    return bytesEqual(rsaRecover(rsaPublicKey, this.signature) ?? new Uint8Array(0), this.digest());
  }

  encode(): Uint8Array {
    return this.encoded;
  }

  static decode(bytes: Uint8Array): RsaCrossCert {
    const r = new Reader(bytes, 'RSA->Ed25519 cross-certificate');
    const key = r.bytes(32, 'ED25519_KEY');
    const expirationHours = r.u32('EXPIRATION_DATE');
    const sigLen = r.u8('SIGLEN');
    const signature = r.bytes(sigLen, `SIGNATURE (${sigLen} bytes)`);
    if (r.remaining) r.fail(`${r.remaining} byte${r.remaining === 1 ? '' : 's'} after the signature`);
    return new RsaCrossCert(key, expirationHours, signature, bytes);
  }

  /** Encodes with a given signature (at most 255 bytes). */
  static build(ed25519Key: Uint8Array, expirationHours: number, signature: Uint8Array): RsaCrossCert {
    if (ed25519Key.length !== 32) throw new BadArgumentError(`ED25519_KEY is 32 bytes, not ${ed25519Key.length}`);
    u32Check(expirationHours, 'EXPIRATION_DATE');
    if (signature.length > 255) throw new BadArgumentError(`a cross-cert signature is at most 255 bytes, not ${signature.length}`);
    const w = new Writer(37 + signature.length);
    w.bytes(ed25519Key).u32(expirationHours).u8(signature.length).bytes(signature);
    return RsaCrossCert.decode(w.finish());
  }

  /** Signs as tor does: RSA_private_encrypt(PKCS#1 padding) of the raw digest. */
  static sign(ed25519Key: Uint8Array, expirationHours: number, rsaPrivateKey: KeyObject): RsaCrossCert {
    const unsigned = RsaCrossCert.build(ed25519Key, expirationHours, new Uint8Array(0));
    const signature = new Uint8Array(privateEncrypt({ key: rsaPrivateKey, padding: constants.RSA_PKCS1_PADDING }, unsigned.digest()));
    return RsaCrossCert.build(ed25519Key, expirationHours, signature);
  }
}

/** Opens a PKCS#1 v1.5 type-1 "signature" with a public key; undefined when it doesn't open. */
export function rsaRecover(rsaPublicKey: KeyObject, signature: Uint8Array): Uint8Array | undefined {
  try {
    return new Uint8Array(publicDecrypt({ key: rsaPublicKey, padding: constants.RSA_PKCS1_PADDING }, signature));
  } catch {
    return undefined;
  }
}
