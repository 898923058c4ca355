/**
 * crypto/handshake/fast — the CREATE_FAST handshake (tor-spec 5.1.5), both sides, as pure
 * functions: the client's X out, the relay's Y and KH in, KDF-TOR keys out.
 *
 * Layer: crypto core. No I/O, no clock; randomness is injected. Framing the cells is
 * proto/circuit's job (client) and testing/relayside's (relay). The other circuit
 * handshakes (ntor, ntor v3, hs-ntor) join this folder with the same shape.
 */
import { timingSafeEqual } from 'node:crypto';
import { HandshakeError } from '../../errors.js';
import { HASH_LEN, KDF } from '../../codec/datatype.js';

/** What the client keeps between CREATE_FAST and CREATED_FAST. */
export interface FastClientState {
  readonly x: Uint8Array;
}

/** Starts the handshake: X (HASH_LEN random bytes) is both the state and the onion skin. */
export function fastClientStart(random: (n: number) => Uint8Array): { state: FastClientState; message: Uint8Array } {
  const x = random(HASH_LEN);
  return { state: { x }, message: x };
}

/**
 * Completes the handshake with the relay's Y and KH: KDF-TOR(X | Y), with KH compared in
 * constant time. `where` names the circuit for the error message.
 */
export function fastClientFinish(state: FastClientState, y: Uint8Array, keyHash: Uint8Array, where: string): KDF {
  const kdf = KDF.fromCreateFast(state.x, y);
  if (keyHash.length !== kdf.keyHash.length || !timingSafeEqual(kdf.keyHash, keyHash)) {
    throw new HandshakeError(`CREATED_FAST on ${where}: the key hash KH does not match KDF-TOR(X|Y) (tor-spec 5.1.5); the relay does not know our shared key`);
  }
  return kdf;
}

/** The relay's side: Y (random), the keys, and KH to send back. */
export function fastServer(x: Uint8Array, random: (n: number) => Uint8Array): { y: Uint8Array; keys: KDF; keyHash: Uint8Array } {
  const y = random(HASH_LEN);
  const keys = KDF.fromCreateFast(x, y);
  return { y, keys, keyHash: keys.keyHash };
}
