/**
 * crypto/handshake/ntorv3 — the ntor v3 handshake (proposal 332, CREATE2 handshake type
 * 3), both sides, as pure functions: the client's onion skin ID | B | X | ENC(CM) | MAC
 * out, the relay's Y | AUTH | ENC(SM) in, the tor1 circuit keys and the relay's message
 * out (SHA3-256, SHAKE-256, AES-256-CTR; VER = "circuit extend" as tor uses it). Also the
 * encoding of the messages' extension lists (`N u8 | N × {type u8, len u8, data}`, tor's
 * extension.trunnel): congestion-control request (1) and response (2), and subprotocol
 * request (3).
 *
 * Layer: crypto core. No I/O, no clock; randomness is injected. AUTH and the client's
 * MAC are compared in constant time; an all-zero Diffie-Hellman result (a low-order point)
 * is a HandshakeError. What the extensions *mean* — whether to ask for congestion control,
 * whether a relay's sendme_inc is acceptable, which subprotocols a relay grants — is the
 * circuit and client layers' policy, not decided here. The relay side serves the fake
 * relay and tests (unlike tor, it does not hide whether it knew the onion key asked for).
 */
import { createCipheriv, createHash } from 'node:crypto';
import { BadArgumentError, DecodeError, HandshakeError, IncompleteError, hexExcerpt } from '../../errors.js';
import type { KDF } from '../../codec/datatype.js';
import { concatBytes, latin1, utf8 } from '../../codec/bytes.js';
import {
  CURVE25519_KEY_LEN,
  TOR1_KEY_MATERIAL_LEN,
  drawRandom,
  expectLength,
  sameBytes,
  tor1Keys,
  x25519Secret,
  x25519SharedSecret,
  type X25519KeyPair,
} from './ntor.js';

/** The CREATE2 handshake type of ntor v3 (tor-spec 5.1; relays list it as Relay=4). */
export const NTOR_V3_HTYPE = 3;
/** The verification string tor uses for circuit extension (tor's onion_crypto.c). */
export const NTOR_V3_CIRCUIT_VERIFICATION = 'circuit extend';
/** The relay's Ed25519 identity (ID_LEN of prop 332 A.1). */
export const ED25519_ID_LEN = 32;
/** MAC_LEN = DIGEST_LEN = 32 (prop 332 A.1). */
export const NTOR_V3_MAC_LEN = 32;
/** The client's onion skin without its message: ID | B | X | MAC. */
export const NTOR_V3_ONIONSKIN_OVERHEAD = ED25519_ID_LEN + 2 * CURVE25519_KEY_LEN + NTOR_V3_MAC_LEN;
/** The relay's reply without its message: Y | AUTH. */
export const NTOR_V3_REPLY_OVERHEAD = CURVE25519_KEY_LEN + NTOR_V3_MAC_LEN;

const ENC_KEY_LEN = 32;
const MAC_KEY_LEN = 32;
const PROTOID = latin1.encode('ntor3-curve25519-sha3_256-1');
const tweak = (suffix: string) => latin1.encode(`ntor3-curve25519-sha3_256-1:${suffix}`);
const T_MSGKDF = tweak('kdf_phase1');
const T_MSGMAC = tweak('msg_mac');
const T_KEY_SEED = tweak('key_seed');
const T_VERIFY = tweak('verify');
const T_FINAL = tweak('kdf_final');
const T_AUTH = tweak('auth_final');
const SERVER = latin1.encode('Server');
const ZERO_IV = new Uint8Array(16);

// ---------------------------------------------------------------------------------
// Primitives (prop 332 A.1)

/** ENCAP(s) = u64be(len(s)) | s. */
function encap(s: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + s.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(s.length));
  out.set(s, 8);
  return out;
}

/** H(s, t) = SHA3-256(ENCAP(t) | s). */
function h(t: Uint8Array, ...s: Uint8Array[]): Uint8Array {
  const hash = createHash('sha3-256').update(encap(t));
  for (const part of s) hash.update(part);
  return new Uint8Array(hash.digest());
}

/** MAC(k, msg, t) = SHA3-256(ENCAP(t) | ENCAP(k) | msg). */
function mac(k: Uint8Array, t: Uint8Array, ...msg: Uint8Array[]): Uint8Array {
  return h(t, encap(k), ...msg);
}

/** KDF(s, t) = SHAKE-256(ENCAP(t) | s), its first `n` bytes. */
function kdf(t: Uint8Array, n: number, ...s: Uint8Array[]): Uint8Array {
  const hash = createHash('shake256', { outputLength: n }).update(encap(t));
  for (const part of s) hash.update(part);
  return new Uint8Array(hash.digest());
}

/** ENC(k, m) = DEC(k, m) = AES-256-CTR with a zero IV. */
function aes256ctr(k: Uint8Array, m: Uint8Array): Uint8Array {
  if (m.length === 0) return new Uint8Array(0);
  return new Uint8Array(createCipheriv('aes-256-ctr', k, ZERO_IV).update(m));
}

function verificationBytes(verification: string | Uint8Array): Uint8Array {
  if (typeof verification === 'string') return utf8.encode(verification);
  if (verification instanceof Uint8Array) return new Uint8Array(verification);
  throw new BadArgumentError(`ntor v3: the verification string must be a string or a Uint8Array, got ${typeof verification}`);
}

/** (ENC_K1, MAC_K1) = PARTITION(KDF_msgkdf(Bx | ID | X | B | PROTOID | ENCAP(VER)), 32, 32). */
function phase1Keys(bx: Uint8Array, id: Uint8Array, x: Uint8Array, b: Uint8Array, ver: Uint8Array): { encKey: Uint8Array; macKey: Uint8Array } {
  const keys = kdf(T_MSGKDF, ENC_KEY_LEN + MAC_KEY_LEN, bx, id, x, b, PROTOID, encap(ver));
  return { encKey: keys.subarray(0, ENC_KEY_LEN), macKey: keys.subarray(ENC_KEY_LEN) };
}

/** What both sides derive from secret_input: `verify` (for AUTH), ENC_KEY (for SM) and the key material after it. */
function finalKeys(
  xy: Uint8Array,
  xb: Uint8Array,
  id: Uint8Array,
  b: Uint8Array,
  x: Uint8Array,
  y: Uint8Array,
  ver: Uint8Array,
): { verify: Uint8Array; encKey: Uint8Array; keyMaterial: (length: number) => Uint8Array } {
  const secretInput = concatBytes([xy, xb, id, b, x, y, PROTOID, encap(ver)]);
  const keySeed = h(T_KEY_SEED, secretInput);
  const verify = h(T_VERIFY, secretInput);
  const keyMaterial = (length: number): Uint8Array => {
    if (!Number.isInteger(length) || length < 0 || length > 1 << 16) throw new BadArgumentError(`ntor v3 key material length must be an integer in 0..65536, got ${length}`);
    return kdf(T_FINAL, ENC_KEY_LEN + length, keySeed).slice(ENC_KEY_LEN);
  };
  const encKey = kdf(T_FINAL, ENC_KEY_LEN, keySeed);
  return { verify, encKey, keyMaterial };
}

/** AUTH = H_auth(verify | ID | B | Y | X | MAC | ENCAP(encrypted_msg) | PROTOID | "Server"). */
function authOf(verify: Uint8Array, id: Uint8Array, b: Uint8Array, y: Uint8Array, x: Uint8Array, msgMac: Uint8Array, encrypted: Uint8Array): Uint8Array {
  return h(T_AUTH, verify, id, b, y, x, msgMac, encap(encrypted), PROTOID, SERVER);
}

// ---------------------------------------------------------------------------------
// The handshake

/** What the client knows of the relay: its Ed25519 identity and its ntor onion key B. */
export interface NtorV3RelayKey {
  /** The relay's Ed25519 identity key (32 bytes). */
  readonly ed25519Id: Uint8Array;
  /** The relay's curve25519 ntor onion key B (32 bytes). */
  readonly ntorKey: Uint8Array;
}

/** What the client keeps between CREATE2 and CREATED2 (secret: x and EXP(B,x)). */
export interface NtorV3ClientState {
  readonly ed25519Id: Uint8Array;
  readonly ntorKey: Uint8Array;
  readonly x: Uint8Array;
  readonly X: Uint8Array;
  readonly bx: Uint8Array;
  /** The MAC that closed our onion skin: AUTH covers it. */
  readonly msgMac: Uint8Array;
  readonly verification: Uint8Array;
}

/** What the handshake gives either side. */
export interface NtorV3Result {
  /** The tor1 keys: Df, Db, Kf, Kb and KH (the first 92 bytes of key material). */
  readonly keys: KDF;
  /**
   * KDF_final's output after ENC_KEY, the first `length` bytes: tor1 takes 92 (`keys`),
   * CGO would take 180 (forward 80 | backward 80 | KH 20). Holds the key seed.
   */
  readonly keyMaterial: (length: number) => Uint8Array;
}

/** What the relay holds: its Ed25519 identity and its ntor onion keys (current and previous). */
export interface NtorV3ServerKeys {
  readonly ed25519Id: Uint8Array;
  readonly onionKeys: readonly X25519KeyPair[];
}

/**
 * Starts the handshake: x from `random` (32 bytes); `clientMessage` (CM: an encoded
 * extension list for circuit extension, see `encodeNtorV3Request`) is encrypted and MACed
 * to the relay's onion key. Returns the onion skin ID | B | X | ENC(CM) | MAC (128 + len(CM)
 * bytes). Throws a BadArgumentError for keys of the wrong length, a HandshakeError if B is
 * a low-order point.
 */
export function ntorV3ClientStart(
  relay: NtorV3RelayKey,
  clientMessage: Uint8Array,
  random: (n: number) => Uint8Array,
  verification: string | Uint8Array = NTOR_V3_CIRCUIT_VERIFICATION,
): { state: NtorV3ClientState; message: Uint8Array } {
  expectLength(relay.ed25519Id, ED25519_ID_LEN, "ntor v3: the relay's Ed25519 identity");
  expectLength(relay.ntorKey, CURVE25519_KEY_LEN, "ntor v3: the relay's ntor onion key B");
  if (!(clientMessage instanceof Uint8Array)) throw new BadArgumentError(`ntor v3: the client message must be a Uint8Array, got ${typeof clientMessage}`);
  const ver = verificationBytes(verification);
  const id = new Uint8Array(relay.ed25519Id);
  const b = new Uint8Array(relay.ntorKey);
  const x = drawRandom(random, CURVE25519_KEY_LEN, 'ntor v3: the secret x');
  const { key, public: X } = x25519Secret(x);
  const bx = x25519SharedSecret(key, b, 'EXP(B,x) with the ntor onion key B', `ntor v3 handshake with relay ${hexExcerpt(id)}`);
  const { encKey, macKey } = phase1Keys(bx, id, X, b, ver);
  const encrypted = aes256ctr(encKey, clientMessage);
  const msgMac = mac(macKey, T_MSGMAC, id, b, X, encrypted);
  return { state: { ed25519Id: id, ntorKey: b, x, X, bx, msgMac, verification: ver }, message: concatBytes([id, b, X, encrypted, msgMac]) };
}

/**
 * Completes the handshake with the relay's reply Y | AUTH | ENC(SM) (CREATED2 / EXTENDED2
 * HDATA, at least 64 bytes): AUTH is checked in constant time; the tor1 keys and the
 * relay's decrypted message SM come out (decode it with `decodeNtorV3Response`). `where`
 * names the circuit and hop for the error message. Throws a HandshakeError for a reply
 * too short, a low-order Y, or an AUTH that does not match (the relay does not hold the
 * onion key B we used, uses another verification string, or the reply was altered).
 */
export function ntorV3ClientFinish(state: NtorV3ClientState, reply: Uint8Array, where: string): NtorV3Result & { serverMessage: Uint8Array } {
  if (reply.length < NTOR_V3_REPLY_OVERHEAD) {
    throw new HandshakeError(`ntor v3 reply on ${where}: expected at least ${NTOR_V3_REPLY_OVERHEAD} bytes (Y | AUTH | MSG, prop 332), got ${reply.length}`);
  }
  const y = reply.subarray(0, CURVE25519_KEY_LEN);
  const auth = reply.subarray(CURVE25519_KEY_LEN, NTOR_V3_REPLY_OVERHEAD);
  const encrypted = reply.subarray(NTOR_V3_REPLY_OVERHEAD);
  const yx = x25519SharedSecret(state.x, y, "EXP(Y,x) with the relay's Y", `ntor v3 reply on ${where}`);
  const f = finalKeys(yx, state.bx, state.ed25519Id, state.ntorKey, state.X, y, state.verification);
  const expected = authOf(f.verify, state.ed25519Id, state.ntorKey, y, state.X, state.msgMac, encrypted);
  if (!sameBytes(expected, auth)) {
    throw new HandshakeError(
      `ntor v3 reply on ${where}: AUTH does not match H_auth(auth_input) (prop 332): the relay does not hold the ntor onion key ${hexExcerpt(state.ntorKey)} we used, or the reply was altered`,
    );
  }
  return { keys: tor1Keys(f.keyMaterial(TOR1_KEY_MATERIAL_LEN)), keyMaterial: f.keyMaterial, serverMessage: aes256ctr(f.encKey, encrypted) };
}

/**
 * The relay's side: checks the onion skin (NODEID is ours, KEYID one of our onion keys,
 * the MAC over the encrypted client message), hands the decrypted CM to `respond` for the
 * relay's message SM, y from `random`, and returns the reply Y | AUTH | ENC(SM), the keys
 * and CM. Throws a HandshakeError for an onion skin too short, another relay's NODEID, an
 * unknown KEYID, a low-order X or a MAC that does not verify; what `respond` throws
 * propagates.
 */
export function ntorV3Server(
  relay: NtorV3ServerKeys,
  message: Uint8Array,
  respond: (clientMessage: Uint8Array) => Uint8Array,
  random: (n: number) => Uint8Array,
  where: string,
  verification: string | Uint8Array = NTOR_V3_CIRCUIT_VERIFICATION,
): NtorV3Result & { reply: Uint8Array; clientMessage: Uint8Array } {
  expectLength(relay.ed25519Id, ED25519_ID_LEN, "ntor v3 server: the relay's Ed25519 identity");
  const ver = verificationBytes(verification);
  if (message.length < NTOR_V3_ONIONSKIN_OVERHEAD) {
    throw new HandshakeError(`ntor v3 onion skin on ${where}: expected at least ${NTOR_V3_ONIONSKIN_OVERHEAD} bytes (ID | B | X | MSG | MAC, prop 332), got ${message.length}`);
  }
  let at = 0;
  const take = (n: number) => message.subarray(at, (at += n));
  const id = take(ED25519_ID_LEN);
  const keyId = take(CURVE25519_KEY_LEN);
  const x = take(CURVE25519_KEY_LEN);
  const encrypted = take(message.length - NTOR_V3_ONIONSKIN_OVERHEAD);
  const msgMac = take(NTOR_V3_MAC_LEN);
  if (!sameBytes(id, relay.ed25519Id)) {
    throw new HandshakeError(`ntor v3 onion skin on ${where}: NODEID ${hexExcerpt(id)} is not this relay's Ed25519 identity ${hexExcerpt(relay.ed25519Id)}`);
  }
  const pair = relay.onionKeys.find((k) => sameBytes(k.public, keyId));
  if (!pair) throw new HandshakeError(`ntor v3 onion skin on ${where}: KEYID ${hexExcerpt(keyId)} is none of this relay's ${relay.onionKeys.length} ntor onion key(s)`);
  const xb = x25519SharedSecret(pair.secret, x, "EXP(X,b) with the client's X", `ntor v3 onion skin on ${where}`);
  const { encKey, macKey } = phase1Keys(xb, id, x, pair.public, ver);
  if (!sameBytes(mac(macKey, T_MSGMAC, id, pair.public, x, encrypted), msgMac)) {
    throw new HandshakeError(`ntor v3 onion skin on ${where}: the MAC over the client's message does not verify (prop 332): the client used another onion key or verification string, or the onion skin was altered`);
  }
  const clientMessage = aes256ctr(encKey, encrypted);
  const serverMessage = respond(clientMessage);
  if (!(serverMessage instanceof Uint8Array)) throw new BadArgumentError(`ntor v3 server on ${where}: respond() must return a Uint8Array, got ${typeof serverMessage}`);
  const ySecret = drawRandom(random, CURVE25519_KEY_LEN, 'ntor v3 server: the secret y');
  const { key: yKey, public: y } = x25519Secret(ySecret);
  const xy = x25519SharedSecret(yKey, x, "EXP(X,y) with the client's X", `ntor v3 onion skin on ${where}`);
  const f = finalKeys(xy, xb, id, pair.public, x, y, ver);
  const encryptedReply = aes256ctr(f.encKey, serverMessage);
  const auth = authOf(f.verify, id, pair.public, y, x, msgMac, encryptedReply);
  return {
    reply: concatBytes([y, auth, encryptedReply]),
    keys: tor1Keys(f.keyMaterial(TOR1_KEY_MATERIAL_LEN)),
    keyMaterial: f.keyMaterial,
    clientMessage,
  };
}

// ---------------------------------------------------------------------------------
// Extension lists (prop 332 A.2; tor's trunnel/extension.trunnel, with the count byte)

/** Extension field types in ntor v3 messages for circuit extension. */
export const NtorV3ExtType = {
  /** Client → relay: please enable congestion control (empty). */
  CC_REQUEST: 1,
  /** Relay → client: congestion control on, with the relay's `sendme_inc` (one byte). */
  CC_RESPONSE: 2,
  /** Client → relay: enable these subprotocol capabilities (sorted {protocol u8, version u8} pairs). */
  SUBPROTOCOL_REQUEST: 3,
} as const;

/** One extension field: its type and its body (up to 255 bytes). */
export interface NtorV3Extension {
  readonly type: number;
  readonly data: Uint8Array;
}

/** A subprotocol capability: a protocol number (Link 0, LinkAuth 1, Relay 2, … FlowCtrl 11, Conflux 12) and a version. */
export interface SubprotocolCap {
  readonly protocol: number;
  readonly version: number;
}

function checkByte(value: number, what: string): void {
  if (!Number.isInteger(value) || value < 0 || value > 255) throw new BadArgumentError(`${what} must be an integer in 0..255, got ${value}`);
}

/**
 * Encodes an extension list: N u8, then each {type u8, len u8, data}, sent in ascending
 * order of type (stable for equal types), as prop 332 says they SHOULD be. Throws a
 * BadArgumentError for more than 255 extensions, a type outside 0..255, or a body over 255 bytes.
 */
export function encodeNtorV3Extensions(extensions: readonly NtorV3Extension[]): Uint8Array {
  if (extensions.length > 255) throw new BadArgumentError(`an ntor v3 extension list holds at most 255 extensions, got ${extensions.length}`);
  const sorted = extensions.map((e, i) => ({ e, i })).sort((a, b) => a.e.type - b.e.type || a.i - b.i);
  const parts: Uint8Array[] = [Uint8Array.of(extensions.length)];
  for (const { e } of sorted) {
    checkByte(e.type, 'an ntor v3 extension type');
    if (!(e.data instanceof Uint8Array) || e.data.length > 255) {
      throw new BadArgumentError(`ntor v3 extension type ${e.type}: the body must be a Uint8Array of at most 255 bytes, got ${e.data instanceof Uint8Array ? `${e.data.length} bytes` : typeof e.data}`);
    }
    parts.push(Uint8Array.of(e.type, e.data.length), e.data);
  }
  return concatBytes(parts);
}

/**
 * Decodes an extension list, strictly: exactly N fields and nothing after them (prop 332:
 * parties MUST reject messages that are not well-formed). Unknown types are kept (callers
 * ignore them). Throws IncompleteError (truncated) or DecodeError (trailing bytes) naming `what`.
 */
export function decodeNtorV3Extensions(bytes: Uint8Array, what = 'ntor v3 extension list'): NtorV3Extension[] {
  if (bytes.length < 1) throw new IncompleteError(what, 0, 1, 'is empty: it needs at least the count byte N');
  const n = bytes[0]!;
  const out: NtorV3Extension[] = [];
  let at = 1;
  for (let i = 0; i < n; i++) {
    if (at + 2 > bytes.length) throw new IncompleteError(what, at, at + 2 - bytes.length, `extension ${i + 1} of ${n}: needs ${at + 2 - bytes.length} more byte(s) for its type and length`);
    const type = bytes[at]!;
    const len = bytes[at + 1]!;
    if (at + 2 + len > bytes.length) {
      throw new IncompleteError(what, at + 2, at + 2 + len - bytes.length, `extension ${i + 1} of ${n} (type ${type}) says ${len} byte(s) of body, but only ${bytes.length - at - 2} remain`);
    }
    out.push({ type, data: bytes.slice(at + 2, at + 2 + len) });
    at += 2 + len;
  }
  if (at !== bytes.length) throw new DecodeError(what, at, `${bytes.length - at} byte(s) after the ${n} extension(s) it counts`);
  return out;
}

/** CC request (type 1): an empty body. */
export function ccRequestExtension(): NtorV3Extension {
  return { type: NtorV3ExtType.CC_REQUEST, data: new Uint8Array(0) };
}

/** CC response (type 2): the relay's `sendme_inc`, one byte. */
export function ccResponseExtension(sendmeInc: number): NtorV3Extension {
  checkByte(sendmeInc, 'sendme_inc');
  return { type: NtorV3ExtType.CC_RESPONSE, data: Uint8Array.of(sendmeInc) };
}

function capOrder(a: SubprotocolCap, b: SubprotocolCap): number {
  return a.protocol - b.protocol || a.version - b.version;
}

/** Subprotocol request (type 3): the capabilities, sorted and deduplicated (as tor and Arti require). */
export function subprotocolRequestExtension(caps: readonly SubprotocolCap[]): NtorV3Extension {
  for (const c of caps) {
    checkByte(c.protocol, 'a subprotocol number');
    checkByte(c.version, 'a subprotocol version');
  }
  const sorted = [...caps].sort(capOrder).filter((c, i, all) => i === 0 || capOrder(all[i - 1]!, c) !== 0);
  if (sorted.length > 127) throw new BadArgumentError(`a subprotocol request holds at most 127 capabilities, got ${sorted.length}`);
  return { type: NtorV3ExtType.SUBPROTOCOL_REQUEST, data: Uint8Array.from(sorted.flatMap((c) => [c.protocol, c.version])) };
}

/** Decodes a subprotocol request body: pairs, strictly ascending (duplicates or disorder rejected). */
export function parseSubprotocolRequest(data: Uint8Array, what = 'ntor v3 subprotocol request'): SubprotocolCap[] {
  if (data.length % 2 !== 0) throw new IncompleteError(what, data.length, 1, `is ${data.length} bytes: not a whole number of {protocol, version} pairs`);
  const caps: SubprotocolCap[] = [];
  for (let i = 0; i < data.length; i += 2) {
    const cap = { protocol: data[i]!, version: data[i + 1]! };
    const last = caps[caps.length - 1];
    if (last && capOrder(last, cap) >= 0) {
      throw new DecodeError(what, i, `${cap.protocol}=${cap.version} after ${last.protocol}=${last.version}: capabilities must be sorted and without duplicates`);
    }
    caps.push(cap);
  }
  return caps;
}

/** What a client asks for in CM (circuit extension). */
export interface NtorV3Request {
  /** Ask for congestion control (prop 324). */
  readonly congestionControl?: boolean;
  /** Ask for subprotocol capabilities (e.g. Relay=6 for CGO, with congestion control). */
  readonly subprotocols?: readonly SubprotocolCap[];
}

/** What a relay answers in SM (circuit extension). */
export interface NtorV3Response {
  /** Congestion control on, with this `sendme_inc` (absent: congestion control off). */
  readonly sendmeInc?: number;
}

/** A decoded CM: the first occurrence of each known type counts (prop 332 A.2); the rest is in `unknown`. */
export interface NtorV3RequestRead {
  readonly congestionControl: boolean;
  readonly subprotocols: SubprotocolCap[] | undefined;
  /** Extensions of types we don't know (ignored, as the spec says), and repeats of known ones. */
  readonly ignored: NtorV3Extension[];
}

/** A decoded SM: see NtorV3RequestRead. */
export interface NtorV3ResponseRead {
  readonly sendmeInc: number | undefined;
  readonly ignored: NtorV3Extension[];
}

/**
 * CM for circuit extension: the extension list for `request` — `00` when nothing is asked
 * for (tor's relays parse CM as an extension list and refuse an empty CM).
 */
export function encodeNtorV3Request(request: NtorV3Request = {}): Uint8Array {
  const list: NtorV3Extension[] = [];
  if (request.congestionControl) list.push(ccRequestExtension());
  if (request.subprotocols && request.subprotocols.length > 0) list.push(subprotocolRequestExtension(request.subprotocols));
  return encodeNtorV3Extensions(list);
}

/** SM for circuit extension: `00`, or the CC response with `sendme_inc`. */
export function encodeNtorV3Response(response: NtorV3Response = {}): Uint8Array {
  return encodeNtorV3Extensions(response.sendmeInc === undefined ? [] : [ccResponseExtension(response.sendmeInc)]);
}

/** Decodes CM (the relay's side). Throws DecodeError / IncompleteError for malformed lists. */
export function decodeNtorV3Request(bytes: Uint8Array, what = 'ntor v3 client message'): NtorV3RequestRead {
  let congestionControl = false;
  let subprotocols: SubprotocolCap[] | undefined;
  const ignored: NtorV3Extension[] = [];
  const seen = new Set<number>();
  for (const e of decodeNtorV3Extensions(bytes, what)) {
    const first = !seen.has(e.type);
    seen.add(e.type);
    if (first && e.type === NtorV3ExtType.CC_REQUEST) congestionControl = true;
    else if (first && e.type === NtorV3ExtType.SUBPROTOCOL_REQUEST) subprotocols = parseSubprotocolRequest(e.data, `${what}: subprotocol request`);
    else ignored.push(e);
  }
  return { congestionControl, subprotocols, ignored };
}

/**
 * Decodes SM (the client's side). A CC response must be exactly one byte. Whether its
 * `sendme_inc` is acceptable (tor: non-zero, within ±1 of the consensus' cc_sendme_inc)
 * is the caller's check.
 */
export function decodeNtorV3Response(bytes: Uint8Array, what = 'ntor v3 relay message'): NtorV3ResponseRead {
  let sendmeInc: number | undefined;
  const ignored: NtorV3Extension[] = [];
  const seen = new Set<number>();
  for (const e of decodeNtorV3Extensions(bytes, what)) {
    const first = !seen.has(e.type);
    seen.add(e.type);
    if (first && e.type === NtorV3ExtType.CC_RESPONSE) {
      if (e.data.length !== 1) throw new DecodeError(what, -1, `the congestion-control response must be 1 byte (sendme_inc), got ${e.data.length}`);
      sendmeInc = e.data[0]!;
    } else ignored.push(e);
  }
  return { sendmeInc, ignored };
}
