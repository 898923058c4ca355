/**
 * testing/hsdesc — v3 onion service descriptors as a service writes them (rend-spec-v3
 * §2.4–2.5; tor 0.4.9's hs_descriptor.c desc_encode_v3), for fake services and tests: the
 * blinded signing key of a period (rend-spec A.2: the identity's secret scalar times the
 * clamped blinding factor, mod ℓ; a signature made with that scalar verifies under
 * onion/keys' `blindPublicKey`), the outer document (descriptor-signing-key-cert type 08
 * signed by the blinded key, revision-counter, superencrypted, the signature over "Tor onion
 * service descriptor sig v3" | body), the two encrypted layers (SHAKE-256 keys over
 * SECRET_DATA | N_hs_subcred | INT_8(revision_counter) | SALT | constant, AES-256-CTR,
 * SHA3-256 MAC; the middle layer NUL-padded to a multiple of 10,000 bytes as tor pads it),
 * sixteen fake auth-client lines, and the introduction points (link specifiers, onion-key
 * ntor, auth-key cert 09, enc-key ntor, enc-key-cert 0B, both signed by the descriptor
 * signing key).
 *
 * Layer: test support (no I/O; randomness injectable). Point arithmetic through
 * @noble/curves (as onion/point). Not written: client authorization (real auth-client
 * entries), legacy keys, flow-control and pow-params lines unless given. The enc-key-cert
 * certifies the X25519 key's bytes as they are (tor converts the key to its Ed25519 form;
 * a client does not check that).
 */
import { createCipheriv, createHash, sign as nodeSign, type KeyObject } from 'node:crypto';
import { ed25519 } from '@noble/curves/ed25519';
import { Ed25519Cert } from '../crypto/ed25519cert.js';
import { ED25519_L, bigintFromLE } from '../onion/point.js';
import { blindingFactor, blindPublicKey, type TimePeriod } from '../onion/keys.js';
import { hsDescriptorLayerKeys, hsDescriptorLayerMac } from '../onion/descriptor.js';
import type { LinkSpecifierBytes } from '../onion/hsntor.js';
import type { RandomSource } from './relayside.js';

const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');
const unpadded = (b: Uint8Array) => b64(b).replace(/=+$/, '');

/** An object block: base64 in 64-character lines (dir-spec §1.2). */
function object(tag: string, bytes: Uint8Array): string {
  return `-----BEGIN ${tag}-----\n${b64(bytes).replace(/.{64}/g, '$&\n').replace(/\n$/, '')}\n-----END ${tag}-----\n`;
}

function sha512(...parts: Uint8Array[]): Uint8Array {
  const h = createHash('sha512');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

function leBytes(n: bigint): Uint8Array {
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++, n >>= 8n) out[i] = Number(n & 0xffn);
  return out;
}

function clamp(bytes: Uint8Array): Uint8Array {
  const c = Uint8Array.from(bytes.subarray(0, 32));
  c[0]! &= 248;
  c[31]! &= 63;
  c[31]! |= 64;
  return c;
}

/** A key that signs as KP_hs_blind_id of one period. */
export interface BlindedSigner {
  /** KP_hs_blind_id (equal to onion/keys' blindPublicKey for the identity and period). */
  readonly publicKey: Uint8Array;
  /** An Ed25519 signature of `message` under `publicKey`. */
  sign(message: Uint8Array): Uint8Array;
}

/**
 * The blinded key of `period` for the identity whose 32-byte Ed25519 seed is `seed`
 * (rend-spec A.2): a' = h·a mod ℓ with h the clamped blinding factor, the nonce prefix from
 * SHA-512("Derive temporary signing key hash input" | the identity's prefix), as tor's
 * ed25519_secret_key_blind.
 */
export function blindedSigner(seed: Uint8Array, identityKey: Uint8Array, period: Pick<TimePeriod, 'number' | 'lengthMinutes'>): BlindedSigner {
  const expanded = sha512(seed);
  const a = bigintFromLE(clamp(expanded));
  const h = bigintFromLE(clamp(blindingFactor(identityKey, period))) % ED25519_L;
  const s = (h * a) % ED25519_L;
  const prefix = sha512(Buffer.from('Derive temporary signing key hash input'), expanded.subarray(32)).subarray(0, 32);
  const publicKey = ed25519.Point.BASE.multiply(s).toBytes();
  const expected = blindPublicKey(identityKey, period);
  if (Buffer.compare(Buffer.from(publicKey), Buffer.from(expected)) !== 0) throw new Error('blindedSigner: the blinded secret does not match blindPublicKey (a seed of another identity key?)');
  return {
    publicKey,
    sign(message) {
      const r = bigintFromLE(sha512(prefix, message)) % ED25519_L;
      const R = ed25519.Point.BASE.multiply(r === 0n ? 1n : r).toBytes();
      const k = bigintFromLE(sha512(R, publicKey, message)) % ED25519_L;
      const S = ((r === 0n ? 1n : r) + k * s) % ED25519_L;
      const sig = new Uint8Array(64);
      sig.set(R);
      sig.set(leBytes(S), 32);
      return sig;
    },
  };
}

/** One introduction point as the inner layer lists it. */
export interface HsDescIntroPoint {
  readonly linkSpecifiers: readonly LinkSpecifierBytes[];
  /** The intro point relay's ntor onion key. */
  readonly onionKey: Uint8Array;
  /** KP_hs_ipt_sid. */
  readonly authKey: Uint8Array;
  /** KP_hss_ntor. */
  readonly encKey: Uint8Array;
}

export interface EncodeHsDescriptorOptions {
  readonly blinded: BlindedSigner;
  /** KP_hs_desc_sign, and its public key. */
  readonly signingKey: KeyObject;
  readonly signingPublicKey: Uint8Array;
  readonly subcredential: Uint8Array;
  readonly introPoints: readonly HsDescIntroPoint[];
  readonly revisionCounter?: bigint;
  readonly lifetimeMinutes?: number;
  /** Certificates expire this many hours from `now` (default 3). */
  readonly certHours?: number;
  readonly now?: Date;
  /** Extra lines for the inner layer's header (e.g. 'flow-control 1-2 31'). */
  readonly innerLines?: readonly string[];
  readonly random: RandomSource;
}

/** SALT | AES-256-CTR(plaintext) | MAC (rend-spec 2.5.3), with onion/descriptor's key schedule and MAC. */
export function encryptHsDescriptorLayer(plaintext: Uint8Array, secretData: Uint8Array, subcredential: Uint8Array, revisionCounter: bigint, layer: 'superencrypted' | 'encrypted', salt: Uint8Array): Uint8Array {
  const keys = hsDescriptorLayerKeys(secretData, subcredential, revisionCounter, salt, layer);
  const encrypted = createCipheriv('aes-256-ctr', keys.key, keys.iv).update(plaintext);
  return new Uint8Array(Buffer.concat([salt, encrypted, hsDescriptorLayerMac(keys.macKey, salt, encrypted)]));
}

/** The whole descriptor text (latin1), signed and encrypted for the blinded key and subcredential. */
export function encodeHsDescriptor(o: EncodeHsDescriptorOptions): string {
  const now = o.now ?? new Date();
  const rev = o.revisionCounter ?? 1n;
  const expirationHours = Math.floor(now.getTime() / 3_600_000) + (o.certHours ?? 3);
  const descCert = (certType: number, certifiedKey: Uint8Array) =>
    Ed25519Cert.sign({ certType, expirationHours, keyType: 1, certifiedKey, extensions: [{ type: 4, flags: 0, data: o.signingPublicKey }] }, o.signingKey);
  const inner =
    'create2-formats 2\n' +
    (o.innerLines ?? []).map((l) => `${l}\n`).join('') +
    o.introPoints
      .map((ip) => {
        const specs = Buffer.concat([Buffer.from([ip.linkSpecifiers.length]), ...ip.linkSpecifiers.map((l) => Buffer.concat([Buffer.from([l.type, l.data.length]), l.data]))]);
        return (
          `introduction-point ${b64(specs)}\n` +
          `onion-key ntor ${unpadded(ip.onionKey)}\n` +
          `auth-key\n${object('ED25519 CERT', descCert(0x09, ip.authKey).encode())}` +
          `enc-key ntor ${unpadded(ip.encKey)}\n` +
          `enc-key-cert\n${object('ED25519 CERT', descCert(0x0b, ip.encKey).encode())}`
        );
      })
      .join('');
  const secret = o.blinded.publicKey;
  const encrypted = encryptHsDescriptorLayer(Buffer.from(inner, 'latin1'), secret, o.subcredential, rev, 'encrypted', o.random(16));
  let middle =
    'desc-auth-type x25519\n' +
    `desc-auth-ephemeral-key ${b64(o.random(32))}\n` +
    Array.from({ length: 16 }, () => `auth-client ${unpadded(o.random(8))} ${unpadded(o.random(16))} ${unpadded(o.random(16))}\n`).join('') +
    `encrypted\n${object('MESSAGE', encrypted)}`;
  middle += '\0'.repeat((10_000 - (middle.length % 10_000)) % 10_000);
  const superencrypted = encryptHsDescriptorLayer(Buffer.from(middle, 'latin1'), secret, o.subcredential, rev, 'superencrypted', o.random(16));
  // The signing-key cert is signed by the blinded key: over its unsigned part (all but the last 64 bytes).
  const certFields = { certType: 0x08, expirationHours, keyType: 1, certifiedKey: o.signingPublicKey, extensions: [{ type: 4, flags: 0, data: o.blinded.publicKey }] };
  const cert = Ed25519Cert.build(certFields, o.blinded.sign(Ed25519Cert.build(certFields, new Uint8Array(64)).signedBytes));
  const body =
    'hs-descriptor 3\n' +
    `descriptor-lifetime ${o.lifetimeMinutes ?? 180}\n` +
    `descriptor-signing-key-cert\n${object('ED25519 CERT', cert.encode())}` +
    `revision-counter ${rev}\n` +
    `superencrypted\n${object('MESSAGE', superencrypted)}`;
  const sigInput = Buffer.concat([Buffer.from('Tor onion service descriptor sig v3'), Buffer.from(body, 'latin1')]);
  return `${body}signature ${unpadded(new Uint8Array(nodeSign(null, sigInput, o.signingKey)))}\n`;
}
