/**
 * onion/point — the only Ed25519 point arithmetic orport needs, through @noble/curves
 * (Node's crypto has none): decompress and validate a 32-byte public key as tor's
 * `ed25519_validate_pubkey` does (a point on the curve, not the identity, torsion-free),
 * and multiply a public point by a public scalar (key blinding, rend-spec A.2).
 *
 * Layer: onion-service client core. No I/O, no clock, no secrets: inputs are public, so the
 * variable-time multiplication is fine. Signature checks are not here: Node's Ed25519
 * verify does them (crypto/ed25519cert.ts). Decompression is RFC 8032's, strict: a
 * non-canonical y (≥ p) is refused where tor's donna code might not look.
 */
import { ed25519 } from '@noble/curves/ed25519';
import { BadArgumentError } from '../errors.js';

/** ℓ, the order of the prime subgroup (RFC 8032). */
export const ED25519_L = 2n ** 252n + 27742317777372353535851937790883648493n;

type Point = ReturnType<typeof ed25519.Point.fromBytes>;

/** The point of a 32-byte key, or undefined when it does not decode (not on the curve, y ≥ p, x = 0 with the sign bit). */
function decompress(key: Uint8Array): Point | undefined {
  if (!(key instanceof Uint8Array) || key.length !== 32) return undefined;
  try {
    return ed25519.Point.fromBytes(Uint8Array.from(key), false);
  } catch {
    return undefined;
  }
}

/** Why a 32-byte Ed25519 public key is unusable as an onion service identity, or undefined when it is usable. */
export function ed25519KeyProblem(key: Uint8Array): string | undefined {
  const point = decompress(key);
  if (!point) return 'it is not a point on Ed25519';
  if (point.is0()) return 'it is the identity point';
  if (!point.isTorsionFree()) return 'it has a torsion component ([ℓ]A is not the identity)';
  return undefined;
}

/** Little-endian bytes as a bigint. */
export function bigintFromLE(bytes: Uint8Array): bigint {
  let n = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(bytes[i]!);
  return n;
}

/**
 * [scalar mod ℓ]·A, compressed: `key` is a 32-byte Ed25519 public key, `scalar` the
 * little-endian 32-byte scalar (already clamped by the caller if it must be). Throws a
 * BadArgumentError when `key` is not a point.
 */
export function multiplyPublicKey(key: Uint8Array, scalar: Uint8Array): Uint8Array {
  const point = decompress(key);
  if (!point) throw new BadArgumentError(`Ed25519 point multiplication: the public key is not a point on Ed25519`);
  const s = bigintFromLE(scalar) % ED25519_L;
  return point.multiplyUnsafe(s).toBytes();
}
