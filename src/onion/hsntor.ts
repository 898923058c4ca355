/**
 * onion/hsntor — the hs-ntor handshake (rend-spec-v3 §3.3–3.4, §4.2; tor's hs_ntor.c,
 * hs_cell.c) as pure functions: the client encrypts its INTRODUCE1 plaintext to the
 * service's intro encryption key B (bound to the intro point's auth key and the
 * subcredential), then completes the handshake with RENDEZVOUS2's Y | AUTH into the keys of
 * the virtual hop to the service. Also the cell pieces the handshake covers: the INTRODUCE1
 * header (LEGACY_KEY_ID | AUTH_KEY | extensions) and the plaintext (rendezvous cookie,
 * extensions, the rendezvous point's onion key and link specifiers, padding). The service's
 * side is here too, for tests and a fake service.
 *
 *   intro_secret_hs_input = EXP(B,x) | AUTH_KEY | X | B | PROTOID
 *   ENC_KEY | MAC_KEY     = SHAKE-256(intro_secret_hs_input | t_hsenc | m_hsexpand | N_hs_subcred, 64)
 *   INTRODUCE1            = H | X | AES-256-CTR(ENC_KEY, iv 0)(P) | MAC(MAC_KEY, H | X | C)
 *   rend_secret_hs_input  = EXP(Y,x) | EXP(B,x) | AUTH_KEY | B | X | Y | PROTOID
 *   NTOR_KEY_SEED = MAC(rend_secret_hs_input, t_hsenc); verify = MAC(…, t_hsverify)
 *   AUTH = MAC(verify | AUTH_KEY | B | Y | X | PROTOID | "Server", t_hsmac)
 *   Df | Db | Kf | Kb     = SHAKE-256(NTOR_KEY_SEED | m_hsexpand, 128)
 *   with MAC(k, m) = SHA3-256(INT_8(len(k)) | k | m).
 *
 * Layer: onion-service client core. No I/O, no clock; randomness is injected. Node's
 * crypto does SHA3-256, SHAKE-256, AES-256-CTR and X25519 (crypto/handshake/ntor.ts's
 * helpers: an all-zero DH result is a HandshakeError); AUTH and the MAC are compared in
 * constant time. Relay-cell framing and the virtual hop's relay crypto (SHA3-256 digests,
 * AES-256-CTR) are the proto and crypto layers' work; this only hands out their keys.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { BadArgumentError, DecodeError, HandshakeError, IncompleteError, hexExcerpt } from '../errors.js';
import { concatBytes, latin1 } from '../codec/bytes.js';
import { CURVE25519_KEY_LEN, drawRandom, expectLength, sameBytes, x25519Secret, x25519SharedSecret, type X25519KeyPair } from '../crypto/handshake/ntor.js';
import { encodeNtorV3Extensions, type NtorV3Extension } from '../crypto/handshake/ntorv3.js';

const PROTOID_TEXT = 'tor-hs-ntor-curve25519-sha3-256-1';
const PROTOID = latin1.encode(PROTOID_TEXT);
const [T_HSENC, T_HSVERIFY, T_HSMAC, M_HSEXPAND] = ['hs_key_extract', 'hs_verify', 'hs_mac', 'hs_key_expand'].map((t) => latin1.encode(`${PROTOID_TEXT}:${t}`)) as [Uint8Array, Uint8Array, Uint8Array, Uint8Array];
const SERVER = latin1.encode('Server');
const ZERO_IV = new Uint8Array(16);

/** MAC_LEN, and the length of AUTH in RENDEZVOUS2. */
export const HS_NTOR_MAC_LEN = 32;
/** RENDEZVOUS2's HANDSHAKE_INFO: Y | AUTH. */
export const HS_NTOR_REPLY_LEN = CURVE25519_KEY_LEN + HS_NTOR_MAC_LEN;
/** RENDEZVOUS_COOKIE. */
export const REND_COOKIE_LEN = 20;
/** AUTH_KEY_TYPE of an Ed25519 intro auth key (rend-spec 3.2.1). */
export const INTRO_AUTH_KEY_ED25519 = 2;
/** ONION_KEY_TYPE ntor (rend-spec 3.3). */
export const ONION_KEY_NTOR = 1;
/** C tor pads INTRODUCE1 so that header + plaintext ≥ 246 bytes (HS_CELL_INTRODUCE1_MIN_SIZE). */
export const INTRODUCE1_MIN_SIZE = 246;
/** An INTRODUCE1 body fits a relay message: 498 bytes. */
export const INTRODUCE1_MAX_SIZE = 498;

/** MAC(k, m) = SHA3-256(INT_8(len(k)) | k | m) (rend-spec 0.3). */
export function hsNtorMac(key: Uint8Array, ...msg: Uint8Array[]): Uint8Array {
  const len = new Uint8Array(8);
  new DataView(len.buffer).setBigUint64(0, BigInt(key.length));
  const h = createHash('sha3-256').update(len).update(key);
  for (const m of msg) h.update(m);
  return new Uint8Array(h.digest());
}

function shake(n: number, ...parts: Uint8Array[]): Uint8Array {
  const h = createHash('shake256', { outputLength: n });
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

function aes256ctr(key: Uint8Array, data: Uint8Array): Uint8Array {
  if (data.length === 0) return new Uint8Array(0);
  return new Uint8Array(createCipheriv('aes-256-ctr', key, ZERO_IV).update(data));
}

/** What the client knows of the introduction point, from the descriptor. */
export interface HsNtorIntroKeys {
  /** AUTH_KEY: the certified key of the intro point's auth-key cert (KP_hs_ipt_sid, Ed25519, 32 bytes). */
  readonly authKey: Uint8Array;
  /** B: the intro point's `enc-key ntor` (KP_hss_ntor, X25519, 32 bytes). */
  readonly encKey: Uint8Array;
  /** N_hs_subcred of the service for this time period. */
  readonly subcredential: Uint8Array;
}

/** What the client keeps for RENDEZVOUS2 (x is secret). One per rendezvous circuit: a re-sent INTRODUCE1 reuses it. */
export interface HsNtorClientState {
  readonly authKey: Uint8Array;
  readonly encKey: Uint8Array;
  readonly x: Uint8Array;
  readonly X: Uint8Array;
  /** EXP(B, x). */
  readonly bx: Uint8Array;
}

/** The virtual hop's keys (tor1 with SHA3-256 digests and AES-256-CTR, rend-spec 4.2.1): the client's forward is toward the service. */
export interface HsVirtualHopKeys {
  /** Seeds of the running SHA3-256 digests. */
  readonly forwardDigest: Uint8Array;
  readonly backwardDigest: Uint8Array;
  /** AES-256-CTR keys (IV zero). */
  readonly forwardKey: Uint8Array;
  readonly backwardKey: Uint8Array;
  readonly ntorKeySeed: Uint8Array;
}

function introKeys(bx: Uint8Array, authKey: Uint8Array, X: Uint8Array, B: Uint8Array, subcredential: Uint8Array): { encKey: Uint8Array; macKey: Uint8Array } {
  const keys = shake(64, bx, authKey, X, B, PROTOID, T_HSENC, M_HSEXPAND, subcredential);
  return { encKey: keys.subarray(0, 32), macKey: keys.subarray(32) };
}

function checkIntro(intro: HsNtorIntroKeys, what: string): void {
  expectLength(intro.authKey, 32, `${what}: the intro point's auth key`);
  expectLength(intro.encKey, CURVE25519_KEY_LEN, `${what}: the service's enc-key B`);
  expectLength(intro.subcredential, 32, `${what}: the subcredential`);
}

/**
 * Starts the handshake: x from `random`, and the ENCRYPTED part of INTRODUCE1 for
 * `header` (the cell's bytes before it, `encodeIntroduce1Header`) and `plaintext`
 * (`encodeIntroducePlaintext`): X | C | MAC, the MAC over header | X | C. The whole body
 * is header | encrypted. Throws BadArgumentError for keys of the wrong length, a
 * HandshakeError for a low-order B.
 */
export function hsNtorClientIntroduce(
  intro: HsNtorIntroKeys,
  header: Uint8Array,
  plaintext: Uint8Array,
  random: (n: number) => Uint8Array,
): { state: HsNtorClientState; encrypted: Uint8Array; encKey: Uint8Array; macKey: Uint8Array } {
  checkIntro(intro, 'hs-ntor');
  const x = drawRandom(random, CURVE25519_KEY_LEN, 'hs-ntor: the secret x');
  const { key, public: X } = x25519Secret(x);
  const B = Uint8Array.from(intro.encKey);
  const bx = x25519SharedSecret(key, B, "EXP(B,x) with the service's enc-key B", 'hs-ntor INTRODUCE1');
  const { encKey, macKey } = introKeys(bx, intro.authKey, X, B, intro.subcredential);
  const c = aes256ctr(encKey, plaintext);
  const m = hsNtorMac(macKey, header, X, c);
  return { state: { authKey: Uint8Array.from(intro.authKey), encKey: B, x, X, bx }, encrypted: concatBytes([X, c, m]), encKey, macKey };
}

function rendKeys(yx: Uint8Array, bx: Uint8Array, authKey: Uint8Array, B: Uint8Array, X: Uint8Array, Y: Uint8Array): { seed: Uint8Array; auth: Uint8Array } {
  const secret = concatBytes([yx, bx, authKey, B, X, Y, PROTOID]);
  const seed = hsNtorMac(secret, T_HSENC);
  const verify = hsNtorMac(secret, T_HSVERIFY);
  const auth = hsNtorMac(concatBytes([verify, authKey, B, Y, X, PROTOID, SERVER]), T_HSMAC);
  return { seed, auth };
}

/** Df | Db | Kf | Kb = SHAKE-256(NTOR_KEY_SEED | m_hsexpand, 128). */
export function hsNtorKeyExpansion(ntorKeySeed: Uint8Array): HsVirtualHopKeys {
  expectLength(ntorKeySeed, 32, 'hs-ntor: NTOR_KEY_SEED');
  const k = shake(128, ntorKeySeed, M_HSEXPAND);
  return { forwardDigest: k.slice(0, 32), backwardDigest: k.slice(32, 64), forwardKey: k.slice(64, 96), backwardKey: k.slice(96, 128), ntorKeySeed: Uint8Array.from(ntorKeySeed) };
}

/**
 * Completes the handshake with RENDEZVOUS2's HANDSHAKE_INFO (Y | AUTH, 64 bytes; more is
 * refused as trunnel does): AUTH checked in constant time, then the virtual hop's keys.
 * `where` names the circuit for the error. Throws a HandshakeError for a wrong length, a
 * low-order Y or a wrong AUTH (the service did not use our X and its B, or the cell was altered).
 */
export function hsNtorClientFinish(state: HsNtorClientState, handshakeInfo: Uint8Array, where: string): HsVirtualHopKeys {
  if (!(handshakeInfo instanceof Uint8Array) || handshakeInfo.length !== HS_NTOR_REPLY_LEN) {
    throw new HandshakeError(`RENDEZVOUS2 on ${where}: HANDSHAKE_INFO is Y | AUTH, ${HS_NTOR_REPLY_LEN} bytes, got ${handshakeInfo instanceof Uint8Array ? handshakeInfo.length : typeof handshakeInfo}`);
  }
  const Y = handshakeInfo.subarray(0, CURVE25519_KEY_LEN);
  const auth = handshakeInfo.subarray(CURVE25519_KEY_LEN);
  const yx = x25519SharedSecret(state.x, Y, "EXP(Y,x) with the service's Y", `RENDEZVOUS2 on ${where}`);
  const { seed, auth: expected } = rendKeys(yx, state.bx, state.authKey, state.encKey, state.X, Y);
  if (!sameBytes(expected, auth)) {
    throw new HandshakeError(`RENDEZVOUS2 on ${where}: AUTH does not match (hs-ntor, rend-spec 4.2.1): the service answered another INTRODUCE1 or enc-key than ${hexExcerpt(state.encKey, 8)}, or the cell was altered`);
  }
  return hsNtorKeyExpansion(seed);
}

/** What the service holds for one introduction point. */
export interface HsNtorServiceKeys {
  readonly authKey: Uint8Array;
  /** b, B: the intro point's X25519 encryption key pair. */
  readonly encKeyPair: X25519KeyPair;
  readonly subcredential: Uint8Array;
}

/**
 * The service's side (tests, a fake service): checks INTRODUCE2's MAC over `header` | X | C,
 * decrypts P, draws y and returns RENDEZVOUS1's HANDSHAKE_INFO (Y | AUTH) and the hop keys
 * (the service's forward is the client's backward). Throws HandshakeError for a body too
 * short, a low-order X or a MAC that does not verify.
 */
export function hsNtorService(
  keys: HsNtorServiceKeys,
  header: Uint8Array,
  encrypted: Uint8Array,
  random: (n: number) => Uint8Array,
): { plaintext: Uint8Array; handshakeInfo: Uint8Array; keys: HsVirtualHopKeys } {
  checkIntro({ authKey: keys.authKey, encKey: keys.encKeyPair.public, subcredential: keys.subcredential }, 'hs-ntor service');
  if (encrypted.length < CURVE25519_KEY_LEN + HS_NTOR_MAC_LEN) {
    throw new HandshakeError(`INTRODUCE2: the encrypted part is X | C | MAC, at least ${CURVE25519_KEY_LEN + HS_NTOR_MAC_LEN} bytes, got ${encrypted.length}`);
  }
  const X = encrypted.subarray(0, CURVE25519_KEY_LEN);
  const c = encrypted.subarray(CURVE25519_KEY_LEN, encrypted.length - HS_NTOR_MAC_LEN);
  const m = encrypted.subarray(encrypted.length - HS_NTOR_MAC_LEN);
  const B = keys.encKeyPair.public;
  const xb = x25519SharedSecret(keys.encKeyPair.secret, X, "EXP(X,b) with the client's X", 'INTRODUCE2');
  const { encKey, macKey } = introKeys(xb, keys.authKey, X, B, keys.subcredential);
  if (!sameBytes(hsNtorMac(macKey, header, X, c), m)) throw new HandshakeError('INTRODUCE2: the MAC does not verify (another subcredential, auth key or enc-key, or an altered cell)');
  const plaintext = aes256ctr(encKey, c);
  const y = drawRandom(random, CURVE25519_KEY_LEN, 'hs-ntor service: the secret y');
  const { key: yKey, public: Y } = x25519Secret(y);
  const xy = x25519SharedSecret(yKey, X, "EXP(X,y) with the client's X", 'INTRODUCE2');
  const { seed, auth } = rendKeys(xy, xb, keys.authKey, B, X, Y);
  const k = hsNtorKeyExpansion(seed);
  return {
    plaintext,
    handshakeInfo: concatBytes([Y, auth]),
    keys: { forwardDigest: k.backwardDigest, backwardDigest: k.forwardDigest, forwardKey: k.backwardKey, backwardKey: k.forwardKey, ntorKeySeed: k.ntorKeySeed },
  };
}

// ---------------------------------------------------------------------------------
// The INTRODUCE1 pieces the handshake covers (rend-spec 3.2.1, 3.3; tor's cell_introduce1.trunnel)

/** H = LEGACY_KEY_ID (20 zero bytes) | AUTH_KEY_TYPE 02 | AUTH_KEY_LEN 0020 | AUTH_KEY | N_EXTENSIONS | extensions. */
export function encodeIntroduce1Header(authKey: Uint8Array, extensions: readonly NtorV3Extension[] = []): Uint8Array {
  expectLength(authKey, 32, 'INTRODUCE1: the intro point auth key');
  return concatBytes([new Uint8Array(20), Uint8Array.of(INTRO_AUTH_KEY_ED25519, 0, 32), authKey, encodeNtorV3Extensions(extensions)]);
}

/** A link specifier as EXTEND2 and INTRODUCE1 carry it: type and body, kept verbatim. */
export interface LinkSpecifierBytes {
  readonly type: number;
  readonly data: Uint8Array;
}

/** What the service needs to reach our rendezvous point. */
export interface IntroducePlaintext {
  /** RENDEZVOUS_COOKIE, as sent in ESTABLISH_RENDEZVOUS (20 bytes). */
  readonly cookie: Uint8Array;
  /** Extensions (type 1: congestion-control request, empty; 2: a PoW solution). */
  readonly extensions?: readonly NtorV3Extension[];
  /** The rendezvous point's ntor onion key (32 bytes). */
  readonly onionKey: Uint8Array;
  /** The rendezvous point's link specifiers, in C tor's order (IPv4, RSA id, Ed25519 id, IPv6). */
  readonly linkSpecifiers: readonly LinkSpecifierBytes[];
}

/**
 * Encodes the plaintext P: cookie | extensions | ONION_KEY_TYPE 01 | ONION_KEY_LEN | key |
 * NSPEC | specifiers | zero padding, padded as C tor does so that `headerLength` + P ≥ 246
 * bytes (`padTo`: another minimum for header + P). Throws BadArgumentError for bad lengths or
 * a body that would not fit INTRODUCE1 (498 bytes with the header, X and MAC).
 */
export function encodeIntroducePlaintext(p: IntroducePlaintext, headerLength: number, padTo = INTRODUCE1_MIN_SIZE): Uint8Array {
  expectLength(p.cookie, REND_COOKIE_LEN, 'INTRODUCE1: the rendezvous cookie');
  expectLength(p.onionKey, CURVE25519_KEY_LEN, "INTRODUCE1: the rendezvous point's onion key");
  if (p.linkSpecifiers.length > 255) throw new BadArgumentError(`INTRODUCE1: at most 255 link specifiers, got ${p.linkSpecifiers.length}`);
  const specs: Uint8Array[] = [Uint8Array.of(p.linkSpecifiers.length)];
  for (const ls of p.linkSpecifiers) {
    if (!Number.isInteger(ls.type) || ls.type < 0 || ls.type > 255 || !(ls.data instanceof Uint8Array) || ls.data.length > 255) {
      throw new BadArgumentError(`INTRODUCE1: a link specifier is a type 0..255 and at most 255 bytes, got type ${ls.type}`);
    }
    specs.push(Uint8Array.of(ls.type, ls.data.length), ls.data);
  }
  const body = concatBytes([p.cookie, encodeNtorV3Extensions(p.extensions ?? []), Uint8Array.of(ONION_KEY_NTOR, 0, 32), p.onionKey, ...specs]);
  const total = headerLength + CURVE25519_KEY_LEN + body.length + HS_NTOR_MAC_LEN;
  if (total > INTRODUCE1_MAX_SIZE) throw new BadArgumentError(`INTRODUCE1 would be ${total} bytes, more than the ${INTRODUCE1_MAX_SIZE} a relay message holds`);
  const padded = Math.max(body.length, Math.min(padTo - headerLength, INTRODUCE1_MAX_SIZE - headerLength - CURVE25519_KEY_LEN - HS_NTOR_MAC_LEN));
  const out = new Uint8Array(padded);
  out.set(body);
  return out;
}

/** The plaintext P decoded (the service's view; tests). Padding after the link specifiers is ignored. */
export function decodeIntroducePlaintext(bytes: Uint8Array): IntroducePlaintext & { extensions: NtorV3Extension[]; linkSpecifiers: LinkSpecifierBytes[] } {
  const what = 'INTRODUCE2 plaintext';
  let at = 0;
  const take = (n: number, field: string): Uint8Array => {
    if (at + n > bytes.length) throw new IncompleteError(what, at, at + n - bytes.length, `${field} needs ${n} bytes, ${bytes.length - at} remain`);
    return bytes.slice(at, (at += n));
  };
  const cookie = take(REND_COOKIE_LEN, 'RENDEZVOUS_COOKIE');
  const n = take(1, 'N_EXTENSIONS')[0]!;
  const extensions: NtorV3Extension[] = [];
  for (let i = 0; i < n; i++) {
    const [type, len] = take(2, 'an extension header');
    extensions.push({ type: type!, data: take(len!, `extension ${type}`) });
  }
  const [keyType] = take(1, 'ONION_KEY_TYPE');
  const keyLen = new DataView(take(2, 'ONION_KEY_LEN').buffer).getUint16(0);
  if (keyType !== ONION_KEY_NTOR || keyLen !== 32) throw new DecodeError(what, at - 3, `onion key type ${keyType} of ${keyLen} bytes: only ntor (1, 32 bytes) is known`);
  const onionKey = take(32, 'ONION_KEY');
  const nspec = take(1, 'NSPEC')[0]!;
  const linkSpecifiers: LinkSpecifierBytes[] = [];
  for (let i = 0; i < nspec; i++) {
    const [type, len] = take(2, 'a link specifier header');
    linkSpecifiers.push({ type: type!, data: take(len!, `link specifier ${type}`) });
  }
  return { cookie, extensions, onionKey, linkSpecifiers };
}
