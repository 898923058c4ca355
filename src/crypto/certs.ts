/**
 * crypto/certs — verification of a relay's CERTS chain (tor-spec 4.2, cert-spec):
 * the RSA-1024 identity cert (type 2), the Ed25519 signing-key cert (type 4), the link
 * cert (type 5) that certifies the TLS certificate presented on this connection, and the
 * RSA→Ed25519 cross-cert (type 7). Yields the relay's identity as tor prints it.
 *
 * Layer: crypto core. No I/O; the caller passes `now`.
 */
import { CertificateError } from '../errors.js';
import type { CertsCell } from '../cell.js';

/** Whether `Relay.connect` verifies the CERTS chain unless told otherwise. */
export const VERIFY_BY_DEFAULT = false;

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
}

export interface VerifiedChain {
  identity: RelayIdentity;
  certificates: ChainEntry[];
}

/**
 * Verifies a CERTS cell as an initiator that authenticates the responder (tor-spec 4.2,
 * Ed25519 + RSA), against the DER of the TLS certificate the relay presented.
 * Throws CertificateError naming the certificate and the check that failed.
 */
export function verifyCertsCell(certs: CertsCell, tlsCertificate: Uint8Array, now: Date): VerifiedChain {
  void certs;
  void tlsCertificate;
  void now;
  throw new CertificateError('CERTS', 'unimplemented', 'certificate verification is not implemented yet');
}
