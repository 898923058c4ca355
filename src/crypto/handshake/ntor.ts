/**
 * crypto/handshake/ntor — the ntor handshake (tor-spec 5.1.4, CREATE2 handshake type 2),
 * both sides, as pure functions: the client's onion skin ID | B | X out, the relay's
 * Y | AUTH in, and the tor1 circuit keys out (KDF-RFC5869, tor-spec 5.2.2). Also the
 * X25519 helpers that ntor v3 (ntorv3.ts) shares: raw 32-byte keys through Node's crypto
 * (imported as JWK, ten times faster than DER on Node 20; DER when a self-check says so).
 *
 * Layer: crypto core. No I/O, no clock; randomness is injected (a function returning
 * bytes, so test vectors can fix x and y). AUTH is compared in constant time; a
 * Diffie-Hellman result that is all zero (a low-order point) is a HandshakeError.
 * Framing CREATE2 / EXTEND2 is proto/circuit's job, and choosing the relay and its keys
 * is the client layer's; the relay side here serves the fake relay and tests (it does
 * not hide, as tor does, whether it knew the onion key asked for).
 */
import { createHmac, createPrivateKey, createPublicKey, diffieHellman, hkdfSync, timingSafeEqual, type KeyObject } from 'node:crypto';
import { BadArgumentError, HandshakeError, hexExcerpt } from '../../errors.js';
import { HASH_LEN, KDF, KEY_LEN } from '../../codec/datatype.js';
import { concatBytes, isAllZero, latin1 } from '../../codec/bytes.js';

/** The CREATE2 handshake type of ntor (tor-spec 5.1). */
export const NTOR_HTYPE = 2;
/** Curve25519 public and secret keys, and shared secrets, are 32 bytes. */
export const CURVE25519_KEY_LEN = 32;
/** The relay's legacy identity: the SHA-1 digest of its RSA identity key. */
export const RSA_ID_LEN = HASH_LEN;
/** The client's onion skin: NODEID | KEYID | CLIENT_KP. */
export const NTOR_ONIONSKIN_LEN = RSA_ID_LEN + 2 * CURVE25519_KEY_LEN;
/** The relay's reply: SERVER_KP | AUTH. */
export const NTOR_REPLY_LEN = 2 * CURVE25519_KEY_LEN;
/** AUTH = H(auth_input, t_mac), an HMAC-SHA256. */
export const NTOR_AUTH_LEN = 32;
/** Key material for one tor1 hop: Df | Db | Kf | Kb | KH (tor-spec 5.2.2). */
export const TOR1_KEY_MATERIAL_LEN = 3 * HASH_LEN + 2 * KEY_LEN;

const PROTOID = latin1.encode('ntor-curve25519-sha256-1');
const T_MAC = latin1.encode('ntor-curve25519-sha256-1:mac');
const T_KEY = latin1.encode('ntor-curve25519-sha256-1:key_extract');
const T_VERIFY = latin1.encode('ntor-curve25519-sha256-1:verify');
const M_EXPAND = latin1.encode('ntor-curve25519-sha256-1:key_expand');
const SERVER = latin1.encode('Server');

// ---------------------------------------------------------------------------------
// X25519 with raw keys (shared with ntorv3.ts)

/** DER prefixes that wrap a raw X25519 key as SPKI (public) and PKCS#8 (secret) (RFC 8410). */
const SPKI_PREFIX = Uint8Array.from([0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x03, 0x21, 0x00]);
const PKCS8_PREFIX = Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20]);

/** An X25519 key pair as raw bytes: what a relay holds for its ntor onion key. */
export interface X25519KeyPair {
  readonly secret: Uint8Array;
  readonly public: Uint8Array;
}

const b64url = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64url');
/** Node wants `x` in a private JWK but builds the key from `d` alone (JWK_IMPORT checks that). */
const PLACEHOLDER_X = b64url(new Uint8Array(CURVE25519_KEY_LEN));

function secretFromDer(secret: Uint8Array): KeyObject {
  return createPrivateKey({ key: Buffer.from(concatBytes([PKCS8_PREFIX, secret])), format: 'der', type: 'pkcs8' });
}

function secretFromJwk(secret: Uint8Array): KeyObject {
  return createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d: b64url(secret), x: PLACEHOLDER_X }, format: 'jwk' });
}

/**
 * Raw keys go in as JWK, which Node 20 imports ~10× faster than DER (measured: a PKCS#8
 * secret 317 µs, SPKI public 67 µs; JWK 29 µs and 6 µs), unless this check — RFC 7748
 * §6.1's key pair, imported with a wrong `x` — shows the runtime deriving keys otherwise;
 * then the PKCS#8 / SPKI DER forms are used.
 */
const JWK_IMPORT = ((): boolean => {
  try {
    const alice = Uint8Array.from(Buffer.from('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a', 'hex'));
    const x = secretFromJwk(alice).export({ format: 'jwk' }).x;
    return x === b64url(Uint8Array.from(Buffer.from('8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a', 'hex')));
  } catch {
    return false;
  }
})();

/** A KeyObject for a 32-byte secret. */
function secretKeyObject(secret: Uint8Array): KeyObject {
  return JWK_IMPORT ? secretFromJwk(secret) : secretFromDer(secret);
}

function publicKeyObject(pub: Uint8Array): KeyObject {
  if (JWK_IMPORT) return createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: b64url(pub) }, format: 'jwk' });
  return createPublicKey({ key: Buffer.from(concatBytes([SPKI_PREFIX, pub])), format: 'der', type: 'spki' });
}

/** Throws a BadArgumentError unless `bytes` is `length` bytes long (arguments from our caller). */
export function expectLength(bytes: Uint8Array, length: number, what: string): void {
  if (!(bytes instanceof Uint8Array)) throw new BadArgumentError(`${what} must be a Uint8Array of ${length} bytes, got ${typeof bytes}`);
  if (bytes.length !== length) throw new BadArgumentError(`${what} must be ${length} bytes, got ${bytes.length}`);
}

/** A 32-byte secret as a KeyObject, and its public key (one import for both). */
export function x25519Secret(secret: Uint8Array): { key: KeyObject; public: Uint8Array } {
  expectLength(secret, CURVE25519_KEY_LEN, 'an X25519 secret key');
  const key = secretKeyObject(secret);
  const pub = JWK_IMPORT
    ? Uint8Array.from(Buffer.from(key.export({ format: 'jwk' }).x ?? '', 'base64url'))
    : new Uint8Array(createPublicKey(key).export({ format: 'der', type: 'spki' }).subarray(SPKI_PREFIX.length));
  return { key, public: pub };
}

/** X25519's public key for a 32-byte secret (the secret is clamped as RFC 7748 says). */
export function x25519PublicKey(secret: Uint8Array): Uint8Array {
  return x25519Secret(secret).public;
}

/** The key pair of a 32-byte secret: a relay's ntor onion key, a test's fixed key. */
export function x25519KeyPair(secret: Uint8Array): X25519KeyPair {
  return { secret: new Uint8Array(secret), public: x25519PublicKey(secret) };
}

/**
 * EXP(pub, secret): the X25519 shared secret (`secret` raw, or as `x25519Secret` made it).
 * An all-zero result (`pub` is a low-order point; OpenSSL refuses to derive it) is a
 * HandshakeError saying `what` and `where`.
 */
export function x25519SharedSecret(secret: Uint8Array | KeyObject, pub: Uint8Array, what: string, where: string): Uint8Array {
  const refuse = (cause?: unknown) =>
    new HandshakeError(`${where}: ${what} is all zero (the point ${hexExcerpt(pub)} is of low order; tor-spec 5.1.4): refusing the handshake`, { cause });
  let publicKey: KeyObject;
  try {
    publicKey = publicKeyObject(pub);
  } catch (err) {
    throw new HandshakeError(`${where}: ${what}: ${hexExcerpt(pub)} is not an X25519 public key`, { cause: err });
  }
  const privateKey = secret instanceof Uint8Array ? secretKeyObject(secret) : secret;
  let shared: Uint8Array;
  try {
    shared = new Uint8Array(diffieHellman({ privateKey, publicKey }));
  } catch (err) {
    // OpenSSL refuses to derive an all-zero X25519 secret ("failed during derivation").
    throw refuse(err);
  }
  if (isAllZero(shared)) throw refuse();
  return shared;
}

/** Draws `n` bytes from the injected random source, checking that it gave `n`. */
export function drawRandom(random: (n: number) => Uint8Array, n: number, what: string): Uint8Array {
  const bytes = random(n);
  expectLength(bytes, n, `${what} from the random source`);
  return new Uint8Array(bytes);
}

/** Constant-time equality of two byte strings of the same length. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * Splits tor1 key material Df | Db | Kf | Kb | KH (tor-spec 5.2.2; prop 332 A.2) into the
 * container CREATE_FAST's keys use: `KDF` has Tor1Keys' fields (what Tor1Layer takes)
 * plus `keyHash` = KH (the onion-service nonce).
 */
export function tor1Keys(material: Uint8Array): KDF {
  if (material.length < TOR1_KEY_MATERIAL_LEN) throw new BadArgumentError(`tor1 key material must be at least ${TOR1_KEY_MATERIAL_LEN} bytes, got ${material.length}`);
  let at = 0;
  const take = (n: number) => material.slice(at, (at += n));
  const forwardDigest = take(HASH_LEN);
  const backwardDigest = take(HASH_LEN);
  const forwardKey = take(KEY_LEN);
  const backwardKey = take(KEY_LEN);
  const keyHash = take(HASH_LEN);
  return new KDF(keyHash, forwardDigest, backwardDigest, forwardKey, backwardKey);
}

// ---------------------------------------------------------------------------------
// ntor

/** What the client knows of the relay: its RSA identity digest and its ntor onion key B. */
export interface NtorRelayKey {
  /** SHA-1 of the relay's RSA identity key (20 bytes). */
  readonly rsaId: Uint8Array;
  /** The relay's curve25519 ntor onion key B (32 bytes). */
  readonly ntorKey: Uint8Array;
}

/** What the client keeps between CREATE2 and CREATED2 (secret: x and EXP(B,x)). */
export interface NtorClientState {
  readonly rsaId: Uint8Array;
  readonly ntorKey: Uint8Array;
  readonly x: Uint8Array;
  readonly X: Uint8Array;
  /** EXP(B, x), computed (and checked) when the handshake starts. */
  readonly bx: Uint8Array;
}

/** What the relay holds: its RSA identity digest and its ntor onion keys (current and previous). */
export interface NtorServerKeys {
  readonly rsaId: Uint8Array;
  readonly onionKeys: readonly X25519KeyPair[];
}

function hmac(key: Uint8Array, message: Uint8Array): Uint8Array {
  return new Uint8Array(createHmac('sha256', key).update(message).digest());
}

/**
 * KDF-RFC5869 as ntor uses it (tor-spec 5.2.2): HKDF-SHA256 with salt t_key and info
 * m_expand over `secretInput`, `length` bytes (at most 255 × 32).
 */
export function ntorKdf(secretInput: Uint8Array, length: number): Uint8Array {
  if (!Number.isInteger(length) || length < 0 || length > 255 * 32) throw new BadArgumentError(`ntor key material length must be an integer in 0..${255 * 32}, got ${length}`);
  if (length === 0) return new Uint8Array(0);
  return new Uint8Array(hkdfSync('sha256', secretInput, T_KEY, M_EXPAND, length));
}

/** secret_input, then AUTH = H(auth_input, t_mac) and the keys, from both sides' view. */
function complete(xy: Uint8Array, xb: Uint8Array, id: Uint8Array, b: Uint8Array, x: Uint8Array, y: Uint8Array): { auth: Uint8Array; keys: KDF } {
  const secretInput = concatBytes([xy, xb, id, b, x, y, PROTOID]);
  const verify = hmac(T_VERIFY, secretInput);
  const auth = hmac(T_MAC, concatBytes([verify, id, b, y, x, PROTOID, SERVER]));
  return { auth, keys: tor1Keys(ntorKdf(secretInput, TOR1_KEY_MATERIAL_LEN)) };
}

/**
 * Starts the handshake: x from `random` (32 bytes), the onion skin ID | B | X (84 bytes,
 * CREATE2 / EXTEND2 HDATA). Throws a BadArgumentError for keys of the wrong length, and a
 * HandshakeError if B is a low-order point (EXP(B,x) all zero).
 */
export function ntorClientStart(relay: NtorRelayKey, random: (n: number) => Uint8Array): { state: NtorClientState; message: Uint8Array } {
  expectLength(relay.rsaId, RSA_ID_LEN, "ntor: the relay's RSA identity digest");
  expectLength(relay.ntorKey, CURVE25519_KEY_LEN, "ntor: the relay's ntor onion key B");
  const rsaId = new Uint8Array(relay.rsaId);
  const ntorKey = new Uint8Array(relay.ntorKey);
  const x = drawRandom(random, CURVE25519_KEY_LEN, 'ntor: the secret x');
  const { key, public: X } = x25519Secret(x);
  const bx = x25519SharedSecret(key, ntorKey, 'EXP(B,x) with the ntor onion key B', `ntor handshake with relay ${hexExcerpt(rsaId)}`);
  return { state: { rsaId, ntorKey, x, X, bx }, message: concatBytes([rsaId, ntorKey, X]) };
}

/**
 * Completes the handshake with the relay's reply Y | AUTH (CREATED2 / EXTENDED2 HDATA, 64
 * bytes): AUTH is checked in constant time; the tor1 keys (Df, Db, Kf, Kb, KH) come out.
 * `where` names the circuit and hop for the error message. Throws a HandshakeError for a
 * reply of the wrong length, a low-order Y, or an AUTH that does not match (the relay
 * does not hold the onion key B we used, or the reply was altered).
 */
export function ntorClientFinish(state: NtorClientState, reply: Uint8Array, where: string): KDF {
  if (reply.length !== NTOR_REPLY_LEN) {
    throw new HandshakeError(`ntor reply on ${where}: expected ${NTOR_REPLY_LEN} bytes (Y | AUTH, tor-spec 5.1.4), got ${reply.length}`);
  }
  const y = reply.subarray(0, CURVE25519_KEY_LEN);
  const auth = reply.subarray(CURVE25519_KEY_LEN);
  const yx = x25519SharedSecret(state.x, y, "EXP(Y,x) with the relay's Y", `ntor reply on ${where}`);
  const done = complete(yx, state.bx, state.rsaId, state.ntorKey, state.X, y);
  if (!sameBytes(done.auth, auth)) {
    throw new HandshakeError(
      `ntor reply on ${where}: AUTH does not match H(auth_input, t_mac) (tor-spec 5.1.4): the relay does not hold the ntor onion key ${hexExcerpt(state.ntorKey)} we used, or the reply was altered`,
    );
  }
  return done.keys;
}

/**
 * The relay's side: checks the onion skin (NODEID is ours, KEYID one of our onion keys),
 * y from `random`, and returns the reply Y | AUTH and the keys. Throws a HandshakeError
 * for an onion skin of the wrong length, another relay's NODEID, an unknown KEYID, or a
 * low-order X.
 */
export function ntorServer(relay: NtorServerKeys, message: Uint8Array, random: (n: number) => Uint8Array, where: string): { reply: Uint8Array; keys: KDF } {
  expectLength(relay.rsaId, RSA_ID_LEN, "ntor server: the relay's RSA identity digest");
  if (message.length !== NTOR_ONIONSKIN_LEN) {
    throw new HandshakeError(`ntor onion skin on ${where}: expected ${NTOR_ONIONSKIN_LEN} bytes (ID | B | X, tor-spec 5.1.4), got ${message.length}`);
  }
  const id = message.subarray(0, RSA_ID_LEN);
  const keyId = message.subarray(RSA_ID_LEN, RSA_ID_LEN + CURVE25519_KEY_LEN);
  const x = message.subarray(RSA_ID_LEN + CURVE25519_KEY_LEN);
  if (!sameBytes(id, relay.rsaId)) {
    throw new HandshakeError(`ntor onion skin on ${where}: NODEID ${hexExcerpt(id)} is not this relay's RSA identity ${hexExcerpt(relay.rsaId)}`);
  }
  const pair = relay.onionKeys.find((k) => sameBytes(k.public, keyId));
  if (!pair) throw new HandshakeError(`ntor onion skin on ${where}: KEYID ${hexExcerpt(keyId)} is none of this relay's ${relay.onionKeys.length} ntor onion key(s)`);
  const ySecret = drawRandom(random, CURVE25519_KEY_LEN, 'ntor server: the secret y');
  const { key: yKey, public: y } = x25519Secret(ySecret);
  const xy = x25519SharedSecret(yKey, x, "EXP(X,y) with the client's X", `ntor onion skin on ${where}`);
  const xb = x25519SharedSecret(pair.secret, x, "EXP(X,b) with the client's X", `ntor onion skin on ${where}`);
  const done = complete(xy, xb, id, pair.public, x, y);
  return { reply: concatBytes([y, done.auth]), keys: done.keys };
}
