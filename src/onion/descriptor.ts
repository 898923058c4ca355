/**
 * onion/descriptor — the v3 onion service descriptor as a client reads it (rend-spec-v3
 * §2.4–2.5; tor 0.4.9's hs_descriptor.c and hs_client.c): the outer document
 * (hs-descriptor 3, descriptor-lifetime, descriptor-signing-key-cert, revision-counter,
 * superencrypted, signature), its checks (the cert is type 08, signed by the blinded key we
 * computed and unexpired; the signature over "Tor onion service descriptor sig v3" | body
 * holds), the two encrypted layers (SHAKE-256 over SECRET_DATA | N_hs_subcred |
 * INT_8(revision-counter) | SALT | constant → key, IV, MAC key; the MAC checked in constant
 * time before AES-256-CTR; NUL padding cut), the middle layer (desc-auth-type,
 * desc-auth-ephemeral-key, auth-client lines, encrypted) and the inner layer
 * (create2-formats, intro-auth-required, single-onion-service, flow-control, pow-params,
 * and the introduction points: link specifiers verbatim, onion-key ntor, auth-key cert 09,
 * enc-key ntor, enc-key-cert 0B, both certs signed by the descriptor signing key; legacy keys
 * ignored).
 *
 * Layer: onion-service client core. No I/O, and no clock: `now` is passed. Documents are
 * latin1 strings (dir/netdoc's tokenizer; its DecodeErrors name the line). Malformed text
 * is a DecodeError with the line; a signature, certificate or MAC that does not hold is a
 * CertificateError whose `check` names the rule (`encrypted-mac` is tor's "needs client
 * authorization", SOCKS F4). As in tor, a malformed introduction point is skipped (listed in
 * `skipped`), not fatal. Client authorization (decrypting the descriptor cookie) is not
 * done: the auth-client lines are parsed, and a `descriptorCookie` may be passed in.
 */
import { createCipheriv, createHash, timingSafeEqual } from 'node:crypto';
import { BadArgumentError, CertificateError, DecodeError, OrportError } from '../errors.js';
import { Ed25519Cert, Ed25519CertType, ed25519Verify } from '../crypto/ed25519cert.js';
import { argsOf, docError, latin1Bytes, latin1Text, parseBase64, tokenize, type Item } from '../dir/netdoc.js';
import type { LinkSpecifierBytes } from './hsntor.js';

/** The largest descriptor a client takes (consensus param HSV3MaxDescriptorSize, tor's default). */
export const HS_DESC_MAX_SIZE_DEFAULT = 50000;
/** tor refuses a descriptor-lifetime over 12 hours. */
export const HS_DESC_MAX_LIFETIME_MIN = 720;
/** tor refuses more than 20 introduction points. */
export const HS_DESC_MAX_INTRO_POINTS = 20;
const SIG_PREFIX = latin1Bytes('Tor onion service descriptor sig v3');
const SUPERENCRYPTED_CONSTANT = latin1Bytes('hsdir-superencrypted-data');
const ENCRYPTED_CONSTANT = latin1Bytes('hsdir-encrypted-data');
const SALT_LEN = 16;
const MAC_LEN = 32;
const OUTER = 'onion service descriptor';
const MIDDLE = 'onion service descriptor (superencrypted layer)';
const INNER = 'onion service descriptor (encrypted layer)';

/** The outer document, parsed (nothing verified yet). */
export interface HsDescriptorOuter {
  readonly lifetimeMinutes: number;
  readonly signingKeyCert: Ed25519Cert;
  /** KP_hs_desc_sign: the cert's certified key. */
  readonly signingKey: Uint8Array;
  readonly revisionCounter: bigint;
  /** SALT | ENCRYPTED | MAC of the first layer. */
  readonly superencrypted: Uint8Array;
  readonly signature: Uint8Array;
  /** The signed bytes: from the start through the newline before `signature`. */
  readonly signedBody: Uint8Array;
}

/** One `auth-client` line (client authorization; not used without a client key). */
export interface HsAuthClient {
  readonly clientId: Uint8Array;
  readonly iv: Uint8Array;
  readonly encryptedCookie: Uint8Array;
}

/** The first layer's plaintext. */
export interface HsDescriptorMiddle {
  readonly authType: string;
  readonly ephemeralKey: Uint8Array;
  readonly authClients: readonly HsAuthClient[];
  /** SALT | ENCRYPTED | MAC of the second layer. */
  readonly encrypted: Uint8Array;
}

/** One introduction point. */
export interface HsIntroductionPoint {
  /** The link specifiers in order, each verbatim (for EXTEND2). */
  readonly linkSpecifiers: readonly LinkSpecifierBytes[];
  /** The intro point relay's ntor onion key (32 bytes). */
  readonly onionKey: Uint8Array;
  /** AUTH_KEY for INTRODUCE1: the auth-key cert's certified key. */
  readonly authKey: Uint8Array;
  readonly authKeyCert: Ed25519Cert;
  /** B for hs-ntor: the enc-key ntor (32 bytes). */
  readonly encKey: Uint8Array;
  readonly encKeyCert: Ed25519Cert;
  /** The line of its introduction-point item in the inner layer. */
  readonly line: number;
}

/** The second layer's plaintext. */
export interface HsDescriptorInner {
  readonly create2Formats: readonly number[];
  readonly introAuthRequired: readonly string[] | undefined;
  readonly singleOnionService: boolean;
  /** `flow-control <FlowCtrl versions> <sendme_inc>`: the service supports congestion control. */
  readonly flowControl: { readonly versions: string; readonly sendmeInc: number } | undefined;
  /** `pow-params` lines (prop 327): type, and for v1 the seed, suggested effort and expiration. */
  readonly powParams: readonly { readonly type: string; readonly seed?: Uint8Array; readonly suggestedEffort?: number; readonly expires?: Date }[];
  readonly introductionPoints: readonly HsIntroductionPoint[];
  /** Introduction points left out as tor leaves them out (malformed, or a certificate that does not hold). */
  readonly skipped: readonly { readonly line: number; readonly reason: string }[];
}

/** A descriptor fully checked and decrypted. */
export interface HsDescriptor {
  readonly outer: HsDescriptorOuter;
  readonly middle: HsDescriptorMiddle;
  readonly inner: HsDescriptorInner;
}

function asText(input: string | Uint8Array): string {
  if (typeof input === 'string') return input;
  if (input instanceof Uint8Array) return latin1Text(input);
  throw new BadArgumentError(`a descriptor is a latin1 string or bytes, got ${typeof input}`);
}

function once(items: readonly Item[], keyword: string, what: string, end: number): Item {
  const found = items.filter((i) => i.keyword === keyword);
  if (found.length === 0) throw new DecodeError(what, end, `no ${keyword} line`);
  if (found.length > 1) throw docError(what, found[1]!.line, found[1]!.start, `${keyword} appears more than once`);
  return found[0]!;
}

function atMostOnce(items: readonly Item[], keyword: string, what: string): Item | undefined {
  const found = items.filter((i) => i.keyword === keyword);
  if (found.length > 1) throw docError(what, found[1]!.line, found[1]!.start, `${keyword} appears more than once`);
  return found[0];
}

function objectOf(item: Item, tag: string, what: string): Uint8Array {
  if (!item.object) throw docError(what, item.line, item.start, `${item.keyword} needs a ${tag} object`);
  if (item.object.tag !== tag) throw docError(what, item.line, item.start, `${item.keyword}: a ${JSON.stringify(item.object.tag)} object, expected ${JSON.stringify(tag)}`);
  return item.object.bytes;
}

function noObject(item: Item, what: string): void {
  if (item.object) throw docError(what, item.line, item.start, `${item.keyword} takes no object`);
}

function certOf(item: Item, what: string): Ed25519Cert {
  const bytes = objectOf(item, 'ED25519 CERT', what);
  try {
    return Ed25519Cert.decode(bytes);
  } catch (err) {
    throw docError(what, item.line, item.start, `${item.keyword}: ${err instanceof OrportError ? err.message : String(err)}`);
  }
}

/** Base64 with or without padding, of exactly `length` bytes (curve25519 keys come either way). */
function keyArg(value: string | undefined, length: number, item: Item, what: string): Uint8Array {
  return parseBase64(value, length, item, what);
}

/**
 * Parses the outer document (syntax only; `verifyHsDescriptorOuter` checks it). Throws a
 * DecodeError naming the line for anything malformed, a document of `maxSize` bytes or more,
 * or a version other than 3.
 */
export function parseHsDescriptorOuter(input: string | Uint8Array, options: { maxSize?: number } = {}): HsDescriptorOuter {
  const text = asText(input);
  const maxSize = options.maxSize ?? HS_DESC_MAX_SIZE_DEFAULT;
  if (text.length >= maxSize) throw new DecodeError(OUTER, maxSize, `is ${text.length} bytes, at least the ${maxSize} a client accepts (HSV3MaxDescriptorSize)`);
  const items = tokenize(text, OUTER);
  const first = items[0];
  if (!first || first.keyword !== 'hs-descriptor') throw new DecodeError(OUTER, 0, 'does not start with hs-descriptor');
  noObject(first, OUTER);
  if (first.args !== '3') throw docError(OUTER, first.line, first.start, `hs-descriptor version ${JSON.stringify(first.args)}: only version 3 is known`);
  if (items.filter((i) => i.keyword === 'hs-descriptor').length > 1) throw new DecodeError(OUTER, 0, 'hs-descriptor appears more than once');
  const last = items[items.length - 1]!;
  if (last.keyword !== 'signature') throw docError(OUTER, last.line, last.start, 'the last item must be signature');
  once(items, 'signature', OUTER, text.length);
  const lifetime = once(items, 'descriptor-lifetime', OUTER, text.length);
  noObject(lifetime, OUTER);
  if (!/^\d{1,10}$/.test(lifetime.args) || Number(lifetime.args) > 0xffffffff) throw docError(OUTER, lifetime.line, lifetime.start, `descriptor-lifetime: ${JSON.stringify(lifetime.args)} is not a number of minutes`);
  const lifetimeMinutes = Number(lifetime.args);
  if (lifetimeMinutes > HS_DESC_MAX_LIFETIME_MIN) throw docError(OUTER, lifetime.line, lifetime.start, `descriptor-lifetime ${lifetimeMinutes} min is over the ${HS_DESC_MAX_LIFETIME_MIN} tor accepts`);
  const certItem = once(items, 'descriptor-signing-key-cert', OUTER, text.length);
  if (certItem.args !== '') throw docError(OUTER, certItem.line, certItem.start, 'descriptor-signing-key-cert takes no arguments');
  const signingKeyCert = certOf(certItem, OUTER);
  const rev = once(items, 'revision-counter', OUTER, text.length);
  noObject(rev, OUTER);
  if (!/^\d{1,20}$/.test(rev.args) || BigInt(rev.args) > 0xffffffffffffffffn) throw docError(OUTER, rev.line, rev.start, `revision-counter: ${JSON.stringify(rev.args)} is not a 64-bit unsigned number`);
  const sup = once(items, 'superencrypted', OUTER, text.length);
  if (sup.args !== '') throw docError(OUTER, sup.line, sup.start, 'superencrypted takes no arguments');
  const superencrypted = objectOf(sup, 'MESSAGE', OUTER);
  if (superencrypted.length <= SALT_LEN + MAC_LEN) throw docError(OUTER, sup.line, sup.start, `superencrypted holds ${superencrypted.length} bytes: not more than its salt and MAC`);
  noObject(last, OUTER);
  const sigArgs = argsOf(last);
  if (sigArgs.length !== 1) throw docError(OUTER, last.line, last.start, 'signature takes one argument');
  const signature = parseBase64(sigArgs[0], 64, last, OUTER);
  const sigAt = text.indexOf('\nsignature ');
  return {
    lifetimeMinutes,
    signingKeyCert,
    signingKey: signingKeyCert.certifiedKey,
    revisionCounter: BigInt(rev.args),
    superencrypted,
    signature,
    signedBody: latin1Bytes(text.slice(0, sigAt + 1)),
  };
}

/** cert_is_valid: the type, the signed-with-key extension, its signature under that key, unexpired at `now`. */
function certProblem(cert: Ed25519Cert, type: number, now: Date): { check: string; message: string } | undefined {
  if (cert.certType !== type) return { check: 'cert-type', message: `the certificate is of type ${cert.certType}, not ${type}` };
  const problems = cert.problems();
  if (problems.length) return { check: 'cert-extensions', message: `the certificate is unacceptable: ${problems.join('; ')}` };
  const signer = cert.signingKey;
  if (!signer) return { check: 'cert-signing-key', message: 'the certificate does not include its signing key (extension 04)' };
  if (!cert.verify(signer)) return { check: 'cert-signature', message: 'the certificate is not signed by the key it names' };
  if (cert.isExpired(now)) return { check: 'cert-expired', message: `the certificate expired at ${cert.expires.toISOString()}` };
  return undefined;
}

/**
 * The outer checks (tor's desc_decode_plaintext_v3 and hs_client_decode_descriptor): the
 * signing-key cert is a valid type-08 cert at `now` whose signer is `blindedKey` (the one the
 * client computed for this period), and the descriptor signature verifies under the signing
 * key. Throws a CertificateError naming the rule.
 */
export function verifyHsDescriptorOuter(outer: HsDescriptorOuter, blindedKey: Uint8Array, now: Date): void {
  if (!(now instanceof Date) || Number.isNaN(now.getTime())) throw new BadArgumentError('now must be a valid Date');
  const problem = certProblem(outer.signingKeyCert, Ed25519CertType.HS_DESC_SIGNING, now);
  if (problem) throw new CertificateError(`${OUTER} signing-key cert`, problem.check, problem.message);
  const signer = outer.signingKeyCert.signingKey!;
  if (!(blindedKey instanceof Uint8Array) || blindedKey.length !== 32 || !timingSafeEqual(signer, blindedKey)) {
    throw new CertificateError(`${OUTER} signing-key cert`, 'blinded-key', "the certificate is signed by another key than this service's blinded key for the period (another service or period)");
  }
  const message = new Uint8Array(SIG_PREFIX.length + outer.signedBody.length);
  message.set(SIG_PREFIX);
  message.set(outer.signedBody, SIG_PREFIX.length);
  if (!ed25519Verify(outer.signingKey, message, outer.signature)) throw new CertificateError(OUTER, 'descriptor-signature', 'the descriptor signature does not verify under its signing key');
}

/** A layer's keys (rend-spec 2.5.3): SHAKE-256(SECRET_DATA | N_hs_subcred | INT_8(revision-counter) | SALT | constant, 80) → SECRET_KEY, SECRET_IV, MAC_KEY. */
export function hsDescriptorLayerKeys(secretData: Uint8Array, subcredential: Uint8Array, revisionCounter: bigint, salt: Uint8Array, layer: 'superencrypted' | 'encrypted'): { key: Uint8Array; iv: Uint8Array; macKey: Uint8Array } {
  const rev = new Uint8Array(8);
  new DataView(rev.buffer).setBigUint64(0, revisionCounter);
  const keys = createHash('shake256', { outputLength: 80 })
    .update(secretData)
    .update(subcredential)
    .update(rev)
    .update(salt)
    .update(layer === 'superencrypted' ? SUPERENCRYPTED_CONSTANT : ENCRYPTED_CONSTANT)
    .digest();
  return { key: keys.subarray(0, 32), iv: keys.subarray(32, 48), macKey: keys.subarray(48, 80) };
}

/** A layer's MAC (rend-spec 2.5.3): SHA3-256(INT_8(len(MAC_KEY)) | MAC_KEY | INT_8(len(SALT)) | SALT | ENCRYPTED). */
export function hsDescriptorLayerMac(macKey: Uint8Array, salt: Uint8Array, encrypted: Uint8Array): Uint8Array {
  const lens = new Uint8Array(16);
  new DataView(lens.buffer).setBigUint64(0, BigInt(macKey.length));
  new DataView(lens.buffer).setBigUint64(8, BigInt(salt.length));
  return createHash('sha3-256').update(lens.subarray(0, 8)).update(macKey).update(lens.subarray(8)).update(salt).update(encrypted).digest();
}

/**
 * Decrypts one layer (rend-spec 2.5.3): blob = SALT | ENCRYPTED | MAC, keys =
 * SHAKE-256(SECRET_DATA | N_hs_subcred | INT_8(revision_counter) | SALT | constant, 80); the
 * MAC SHA3-256(INT_8(32) | MAC_KEY | INT_8(16) | SALT | ENCRYPTED) compared in constant time;
 * the plaintext cut at its first NUL. Returns undefined when the MAC does not verify.
 */
export function decryptHsDescriptorLayer(blob: Uint8Array, secretData: Uint8Array, subcredential: Uint8Array, revisionCounter: bigint, layer: 'superencrypted' | 'encrypted'): Uint8Array | undefined {
  if (blob.length <= SALT_LEN + MAC_LEN) return undefined;
  const salt = blob.subarray(0, SALT_LEN);
  const encrypted = blob.subarray(SALT_LEN, blob.length - MAC_LEN);
  const mac = blob.subarray(blob.length - MAC_LEN);
  const keys = hsDescriptorLayerKeys(secretData, subcredential, revisionCounter, salt, layer);
  const expected = hsDescriptorLayerMac(keys.macKey, salt, encrypted);
  if (!timingSafeEqual(expected, mac)) return undefined;
  const plain = new Uint8Array(createCipheriv('aes-256-ctr', keys.key, keys.iv).update(encrypted));
  const nul = plain.indexOf(0);
  return nul < 0 ? plain : plain.subarray(0, nul);
}

/** Parses the first layer's plaintext (tor's desc_decode_superencrypted_v3). */
export function parseHsDescriptorMiddle(input: string | Uint8Array): HsDescriptorMiddle {
  const text = asText(input);
  const items = tokenize(text, MIDDLE);
  const first = items[0];
  if (!first || first.keyword !== 'desc-auth-type') throw new DecodeError(MIDDLE, 0, 'does not start with desc-auth-type');
  const authType = once(items, 'desc-auth-type', MIDDLE, text.length);
  const type = argsOf(authType)[0];
  if (type !== 'x25519') throw docError(MIDDLE, authType.line, authType.start, `desc-auth-type ${JSON.stringify(type ?? '')}: only x25519 is known`);
  const eph = once(items, 'desc-auth-ephemeral-key', MIDDLE, text.length);
  const ephemeralKey = keyArg(argsOf(eph)[0], 32, eph, MIDDLE);
  const clients = items.filter((i) => i.keyword === 'auth-client');
  if (clients.length === 0) throw new DecodeError(MIDDLE, text.length, 'no auth-client line (tor requires at least one, fake ones when client authorization is off)');
  const authClients = clients.map((item) => {
    const a = argsOf(item);
    if (a.length < 3) throw docError(MIDDLE, item.line, item.start, 'auth-client takes client-id, iv and encrypted-cookie');
    return { clientId: keyArg(a[0], 8, item, MIDDLE), iv: keyArg(a[1], 16, item, MIDDLE), encryptedCookie: keyArg(a[2], 16, item, MIDDLE) };
  });
  const enc = once(items, 'encrypted', MIDDLE, text.length);
  const encrypted = objectOf(enc, 'MESSAGE', MIDDLE);
  if (encrypted.length <= SALT_LEN + MAC_LEN) throw docError(MIDDLE, enc.line, enc.start, `encrypted holds ${encrypted.length} bytes: not more than its salt and MAC`);
  return { authType: type, ephemeralKey, authClients, encrypted };
}

/** `NSPEC | {LSTYPE LSLEN LSPEC}*`, all of it (tor refuses trailing bytes); undefined when malformed. */
function linkSpecifiersOf(bytes: Uint8Array): LinkSpecifierBytes[] | undefined {
  if (bytes.length < 1) return undefined;
  const out: LinkSpecifierBytes[] = [];
  let at = 1;
  for (let i = 0; i < bytes[0]!; i++) {
    if (at + 2 > bytes.length) return undefined;
    const type = bytes[at]!;
    const len = bytes[at + 1]!;
    if (at + 2 + len > bytes.length) return undefined;
    // Fixed sizes of the known types (trunnel's link_specifier): IPv4 6, IPv6 18, RSA id 20, Ed25519 id 32.
    const fixed = [6, 18, 20, 32][type];
    if (fixed !== undefined && len !== fixed) return undefined;
    out.push({ type, data: bytes.slice(at + 2, at + 2 + len) });
    at += 2 + len;
  }
  return at === bytes.length ? out : undefined;
}

class SkipIntroPoint extends Error {}

function introPointOf(items: readonly Item[], signingKey: Uint8Array, now: Date, what: string): HsIntroductionPoint {
  const skip = (item: Item | undefined, message: string): never => {
    throw new SkipIntroPoint(item ? `line ${item.line}: ${message}` : message);
  };
  const head = items[0]!;
  const headArgs = argsOf(head);
  if (headArgs.length !== 1) skip(head, 'introduction-point takes one argument');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(headArgs[0]!)) skip(head, 'the link specifiers are not base64');
  const linkSpecifiers = linkSpecifiersOf(new Uint8Array(Buffer.from(headArgs[0]!, 'base64')));
  if (!linkSpecifiers) skip(head, 'the link specifiers do not parse');
  const onionKeys = items.filter((i) => i.keyword === 'onion-key');
  if (onionKeys.length === 0) skip(head, 'no onion-key line');
  const ntor = onionKeys.find((i) => argsOf(i)[0] === 'ntor');
  if (!ntor) skip(onionKeys[0], 'no onion-key ntor');
  const keyOr = (item: Item, value: string | undefined, name: string): Uint8Array => {
    try {
      return keyArg(value, 32, item, what);
    } catch {
      return skip(item, `${name} is not a 32-byte base64 key`);
    }
  };
  const onionKey = keyOr(ntor!, argsOf(ntor!)[1], 'onion-key ntor');
  const single = (keyword: string): Item => {
    const found = items.filter((i) => i.keyword === keyword);
    if (found.length !== 1) skip(found[1] ?? head, `${keyword} must appear exactly once`);
    return found[0]!;
  };
  const certOr = (item: Item, type: number, name: string): Ed25519Cert => {
    let cert: Ed25519Cert;
    try {
      cert = certOf(item, what);
    } catch (err) {
      return skip(item, (err as Error).message);
    }
    const problem = certProblem(cert, type, now);
    if (problem) skip(item, `${name}: ${problem.message}`);
    if (!timingSafeEqual(cert.signingKey!, signingKey)) skip(item, `${name} is not signed by the descriptor signing key`);
    return cert;
  };
  const authItem = single('auth-key');
  const authKeyCert = certOr(authItem, Ed25519CertType.HS_INTRO_AUTH, 'the auth-key cert');
  const encItem = single('enc-key');
  const encArgs = argsOf(encItem);
  if (encArgs[0] !== 'ntor' || encArgs.length < 2) skip(encItem, `enc-key ${JSON.stringify(encArgs[0] ?? '')}: only ntor is known`);
  const encKey = keyOr(encItem, encArgs[1], 'enc-key ntor');
  const encKeyCert = certOr(single('enc-key-cert'), Ed25519CertType.HS_NTOR_ENC, 'the enc-key cert');
  return { linkSpecifiers: linkSpecifiers!, onionKey, authKey: authKeyCert.certifiedKey, authKeyCert, encKey, encKeyCert, line: head.line };
}

/**
 * Parses the second layer's plaintext (tor's desc_decode_encrypted_v3). The introduction
 * points' certs must be signed by `signingKey` (KP_hs_desc_sign) and unexpired at `now`; an
 * introduction point that fails anything is skipped. Throws a DecodeError for a malformed
 * header part, create2-formats without 2, or more than 20 introduction points.
 */
export function parseHsDescriptorInner(input: string | Uint8Array, signingKey: Uint8Array, now: Date): HsDescriptorInner {
  const text = asText(input);
  // Split as tor does, at each "\nintroduction-point ": a malformed section is skipped alone.
  const starts: number[] = [];
  for (let at = text.indexOf('\nintroduction-point '); at >= 0; at = text.indexOf('\nintroduction-point ', at + 1)) starts.push(at + 1);
  const headerEnd = starts[0] ?? text.length;
  const lineOf = (offset: number) => {
    let n = 1;
    for (let i = text.indexOf('\n'); i >= 0 && i < offset; i = text.indexOf('\n', i + 1)) n++;
    return n;
  };
  const header = tokenize(text, INNER, 0, headerEnd);
  const first = header[0];
  if (!first || first.keyword !== 'create2-formats') throw new DecodeError(INNER, 0, 'does not start with create2-formats');
  once(header, 'create2-formats', INNER, headerEnd);
  const create2Formats = argsOf(first).map((a) => (/^\d{1,5}$/.test(a) ? Number(a) : NaN));
  if (create2Formats.some(Number.isNaN)) throw docError(INNER, first.line, first.start, `create2-formats: ${JSON.stringify(first.args)} is not a list of numbers`);
  if (!create2Formats.includes(2)) throw docError(INNER, first.line, first.start, 'create2-formats does not include 2 (ntor)');
  const authReq = atMostOnce(header, 'intro-auth-required', INNER);
  const flow = atMostOnce(header, 'flow-control', INNER);
  let flowControl: HsDescriptorInner['flowControl'];
  if (flow) {
    const [versions, inc] = argsOf(flow);
    if (!versions || !/^\d+(-\d+)?$/.test(versions) || !inc || !/^\d{1,3}$/.test(inc) || Number(inc) > 255) throw docError(INNER, flow.line, flow.start, `flow-control: ${JSON.stringify(flow.args)} is not <versions> <sendme_inc>`);
    flowControl = { versions, sendmeInc: Number(inc) };
  }
  const powParams = header
    .filter((i) => i.keyword === 'pow-params')
    .map((item) => {
      const a = argsOf(item);
      if (a.length < 1) throw docError(INNER, item.line, item.start, 'pow-params takes a type');
      if (a[0] !== 'v1') return { type: a[0]! };
      if (a.length < 4 || !/^\d{1,10}$/.test(a[2]!) || Number(a[2]) > 0xffffffff) throw docError(INNER, item.line, item.start, 'pow-params v1 takes seed, suggested-effort and expiration');
      const expires = new Date(`${a[3]}Z`);
      if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/.test(a[3]!) || Number.isNaN(expires.getTime())) throw docError(INNER, item.line, item.start, `pow-params: bad expiration ${JSON.stringify(a[3])}`);
      return { type: 'v1', seed: keyArg(a[1], 32, item, INNER), suggestedEffort: Number(a[2]), expires };
    });
  if (starts.length > HS_DESC_MAX_INTRO_POINTS) throw new DecodeError(INNER, starts[HS_DESC_MAX_INTRO_POINTS]!, `${starts.length} introduction points, more than the ${HS_DESC_MAX_INTRO_POINTS} tor accepts`);
  const introductionPoints: HsIntroductionPoint[] = [];
  const skipped: { line: number; reason: string }[] = [];
  starts.forEach((start, i) => {
    const end = starts[i + 1] ?? text.length;
    const line = lineOf(start);
    try {
      const items = tokenize(text, INNER, start, end, line);
      introductionPoints.push(introPointOf(items, signingKey, now, INNER));
    } catch (err) {
      if (err instanceof SkipIntroPoint || err instanceof DecodeError) skipped.push({ line, reason: err.message });
      else throw err;
    }
  });
  return {
    create2Formats,
    introAuthRequired: authReq ? argsOf(authReq) : undefined,
    singleOnionService: header.some((i) => i.keyword === 'single-onion-service'),
    flowControl,
    powParams,
    introductionPoints,
    skipped,
  };
}

export interface DecodeHsDescriptorOptions {
  /** KP_hs_blind_id for the period (onion/keys `blindPublicKey`). */
  readonly blindedKey: Uint8Array;
  /** N_hs_subcred for the period (onion/keys `subcredential`). */
  readonly subcredential: Uint8Array;
  /** When to judge the certificates (the live consensus' valid-after, or the clock). */
  readonly now: Date;
  /** HSV3MaxDescriptorSize (default 50000). */
  readonly maxSize?: number;
  /** The descriptor cookie, for a service with client authorization (else none: SECRET_DATA is the blinded key alone). */
  readonly descriptorCookie?: Uint8Array;
}

/**
 * The client's whole decode, in tor's order: the size, the outer document, its cert (signed
 * by `blindedKey`, unexpired) and signature, the first layer (MAC, decrypt, parse), the
 * second (MAC — failing it means the service wants client authorization —, decrypt,
 * parse). Throws a DecodeError (malformed; with the line) or a CertificateError (`check`:
 * cert-*, blinded-key, descriptor-signature, superencrypted-mac, encrypted-mac).
 */
export function decodeHsDescriptor(input: string | Uint8Array, options: DecodeHsDescriptorOptions): HsDescriptor {
  const { blindedKey, subcredential, now } = options;
  if (!(subcredential instanceof Uint8Array) || subcredential.length !== 32) throw new BadArgumentError('the subcredential must be 32 bytes');
  const outer = parseHsDescriptorOuter(input, { maxSize: options.maxSize });
  verifyHsDescriptorOuter(outer, blindedKey, now);
  const first = decryptHsDescriptorLayer(outer.superencrypted, blindedKey, subcredential, outer.revisionCounter, 'superencrypted');
  if (!first) throw new CertificateError(OUTER, 'superencrypted-mac', "the superencrypted layer's MAC does not verify (a corrupt descriptor, or another subcredential)");
  if (first.length === 0) throw new DecodeError(MIDDLE, 0, 'is empty');
  const middle = parseHsDescriptorMiddle(first);
  const secret = options.descriptorCookie ? new Uint8Array([...blindedKey, ...options.descriptorCookie]) : blindedKey;
  const second = decryptHsDescriptorLayer(middle.encrypted, secret, subcredential, outer.revisionCounter, 'encrypted');
  if (!second) {
    throw new CertificateError(
      OUTER,
      'encrypted-mac',
      options.descriptorCookie
        ? "the encrypted layer's MAC does not verify with the descriptor cookie given (the client key is not authorized)"
        : "the encrypted layer's MAC does not verify: the service requires client authorization",
    );
  }
  if (second.length === 0) throw new DecodeError(INNER, 0, 'is empty');
  return { outer, middle, inner: parseHsDescriptorInner(second, outer.signingKey, now) };
}
