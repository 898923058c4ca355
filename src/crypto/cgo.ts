/**
 * crypto/cgo — Counter Galois Onion (CGO) relay crypto, as tor 0.4.9 runs it
 * (relay_crypto_cgo.c; proposal 359, whose text is not stored: DIGEST-streams §4).
 * AES-128 throughout. A relay cell body is T[16] ‖ C[493]; UIV+ is a wide-block cipher
 * over the 509 bytes, tweaked by (T′, the cell command), and every cell a hop originates
 * or recognizes re-keys that hop's direction (UPDATE: forward secrecy per cell).
 *
 * - ET (LRW2 tweakable block cipher): mask = POLYVAL_KU(H ‖ cmd ‖ X_R, zero-padded: 32
 *   blocks); ENC(X) = AES_KB(X ⊕ mask) ⊕ mask, DEC with AES⁻¹.
 * - PRF: iv = POLYVAL_B(X) with iv[15] &= 0xC0; the AES-128-CTR keystream of K from iv
 *   (a 128-bit big-endian counter); t = 0 is its first 493 bytes (XORed into X_R), t = 1
 *   starts at block 31.
 * - UIV+: ENC (Y_L = ET.ENC(X_L), Y_R = X_R ⊕ PRF0(Y_L)), DEC the inverse; UPDATE(N):
 *   80 bytes of PRF1(N) become KB|KU|K|B and the next N.
 * - Per direction a seed of 80 bytes KB|KU|K|B|N; T′ starts at zero. Relays only
 *   encrypt with UIV+, clients only decrypt (UIV+ is non-malleable for encryption).
 * - CgoCrypt: one direction at one end, with tor's six operations (client originate /
 *   forward / backward, relay forward / backward / originate) and their SENDME tags.
 *
 * AES is Node's (OpenSSL): one ECB object per key, kept until UPDATE re-keys; the CTR
 * keystream is ECB over counter blocks (the IV changes every cell, a Node CTR object
 * cannot be re-IVed). The four places tor re-keys all take PRF1 of the input PRF0 just
 * had, so PRF0 there asks for 36 blocks and UPDATE uses the last 5 (same bytes as tor).
 * Per cell and layer: two AES calls, plus two new AES objects where it re-keys. Shared
 * scratch buffers (no per-cell allocation of ours; Node's update returns fresh buffers).
 * Recognition compares 16 bytes in constant time; POLYVAL's constant-time story is in
 * crypto/polyval.
 *
 * Layer: crypto core, over Uint8Array. No I/O. Not here: which cells go to which hop
 * (crypto/relaycrypto), the V1 message format (codec), negotiation (handshakes).
 */
import { createCipheriv, createDecipheriv, type Cipher, type Decipher } from 'node:crypto';
import { BadArgumentError } from '../errors.js';
import { LITTLE_ENDIAN, Polyval, PolyvalKey } from './polyval.js';

/** The relay cell body CGO works on (tor-spec's 509-byte payload). */
export const CGO_BODY_LEN = 509;
/** T, T′, N and SENDME tags (SENDME_TAG_LEN_CGO). */
export const CGO_TAG_LEN = 16;
/** X_R: the body after T. */
export const CGO_XR_LEN = CGO_BODY_LEN - CGO_TAG_LEN;
/** KB|KU|K|B: the UIV+ keys (ET 16 + 16, PRF 16 + 16). */
export const CGO_UIV_KEYS_LEN = 64;
/** One direction's seed: UIV+ keys then N (cgo_key_material_len(128)). */
export const CGO_SEED_LEN = CGO_UIV_KEYS_LEN + CGO_TAG_LEN;
/** Both directions, forward then backward (what ntor v3 gives before KH). */
export const CGO_KEY_MATERIAL_LEN = 2 * CGO_SEED_LEN;
/** PRF t = 1 starts at keystream block 31 (T1_OFFSET). */
const T1_BLOCK = 31;
/** Keystream blocks for PRF0 (493 bytes) and for PRF0 plus UPDATE's 80 bytes of PRF1. */
const T0_BLOCKS = 31;
const T0T1_BLOCKS = T1_BLOCK + 5;

// Shared scratch (single-threaded, used synchronously within one call).
/** Mask input: M[16] = cmd, M[17…510) = X_R, M[510…512) = 0, so blocks 1…31 of the tweak are M[16…512) (aligned). */
const M = new Uint8Array(512);
const M32 = new Int32Array(M.buffer);
/** Counter blocks for the PRF keystream. */
const CTR = new Uint8Array(16 * T0T1_BLOCKS);
const CTR_VIEW = new DataView(CTR.buffer);
const CTR_T0 = CTR.subarray(0, 16 * T0_BLOCKS);
const CTR_T0T1 = CTR.subarray(0, 16 * T0T1_BLOCKS);
const CTR_T1 = CTR.subarray(16 * T1_BLOCK, 16 * T0T1_BLOCKS);
const BLOCK = new Uint8Array(16);
const MASK = new Uint8Array(16);

function ecb(encrypt: boolean, key: Uint8Array): Cipher | Decipher {
  const c = encrypt ? createCipheriv('aes-128-ecb', key, null) : createDecipheriv('aes-128-ecb', key, null);
  c.setAutoPadding(false);
  return c;
}

function need(what: string, buf: Uint8Array, off: number, len: number): void {
  if (off < 0 || buf.length < off + len) throw new BadArgumentError(`CGO ${what}: needs ${len} bytes at offset ${off}, got ${buf.length - off}`);
}

/** Constant-time equality of a[ao…ao+16) and b[bo…bo+16). */
function equal16(a: Uint8Array, ao: number, b: Uint8Array, bo: number): boolean {
  let diff = 0;
  for (let i = 0; i < 16; i++) diff |= a[ao + i]! ^ b[bo + i]!;
  return diff === 0;
}

/** ET, the tweakable block cipher (cgo_et_t): keys KB|KU, for encryption or decryption. */
export class Et {
  readonly encrypting: boolean;
  private aes: Cipher | Decipher;
  private readonly ku = new PolyvalKey();
  private readonly pv = new Polyval(this.ku);

  constructor(encrypt: boolean, keys: Uint8Array, offset = 0) {
    need('ET keys', keys, offset, 32);
    this.encrypting = encrypt;
    this.aes = ecb(encrypt, keys.subarray(offset, offset + 16));
    this.ku.setKey(keys, offset + 16);
  }

  /** Re-keys with KB|KU at keys[offset…offset+32). */
  setKey(keys: Uint8Array, offset = 0): void {
    this.aes = ecb(this.encrypting, keys.subarray(offset, offset + 16));
    this.ku.setKey(keys, offset + 16);
  }

  /**
   * Encrypts (or decrypts) the block at block[blockOff…+16) in place with the tweak
   * (H = h[hOff…+16), cmd, X_R = xR[xROff…+493)).
   */
  crypt(h: Uint8Array, hOff: number, cmd: number, xR: Uint8Array, xROff: number, block: Uint8Array, blockOff: number): void {
    need('ET tweak H', h, hOff, 16);
    need('ET tweak X_R', xR, xROff, CGO_XR_LEN);
    need('ET block', block, blockOff, 16);
    loadTweak(cmd, xR, xROff);
    this.cryptLoaded(h, hOff, block, blockOff);
  }

  /** `crypt` with the tweak's cmd ‖ X_R already in M (loadTweak). */
  cryptLoaded(h: Uint8Array, hOff: number, block: Uint8Array, blockOff: number): void {
    const pv = this.pv.reset().blocks(h, hOff, 1);
    if (LITTLE_ENDIAN) pv.words(M32, 4, 31);
    else pv.blocks(M, 16, 31);
    pv.digest(MASK);
    for (let i = 0; i < 16; i++) BLOCK[i] = block[blockOff + i]! ^ MASK[i]!;
    const out = this.aes.update(BLOCK);
    for (let i = 0; i < 16; i++) block[blockOff + i] = out[i]! ^ MASK[i]!;
  }
}

/** Puts the tweak's cmd ‖ X_R into M. */
function loadTweak(cmd: number, xR: Uint8Array, xROff: number): void {
  M[16] = cmd;
  M.set(xR.subarray(xROff, xROff + CGO_XR_LEN), 17);
}

/** The PRF (cgo_prf_t): keys K|B. */
export class Prf {
  private aes: Cipher;
  private readonly b = new PolyvalKey(undefined, 0, false);
  private readonly pv = new Polyval(this.b);
  /** PRF1 of `t1Input`, kept by xorT0(…, true) until the next re-key. */
  private readonly t1 = new Uint8Array(80);
  private readonly t1Input = new Uint8Array(16);
  private t1Valid = false;

  constructor(keys: Uint8Array, offset = 0) {
    need('PRF keys', keys, offset, 32);
    this.aes = ecb(true, keys.subarray(offset, offset + 16)) as Cipher;
    this.b.setKey(keys, offset + 16);
  }

  setKey(keys: Uint8Array, offset = 0): void {
    this.aes = ecb(true, keys.subarray(offset, offset + 16)) as Cipher;
    this.b.setKey(keys, offset + 16);
    this.t1.fill(0);
    this.t1Valid = false;
  }

  /** Counter blocks first…first+count of iv(input) into CTR at block `first`. */
  private counters(input: Uint8Array, inOff: number, first: number, count: number): void {
    const s = this.pv.reset().blocks(input, inOff, 1).s;
    const w3 = s[3]! & 0xc0ffffff; // iv[15] &= 0xC0
    for (let i = first; i < first + count; i++) {
      const o = i << 4;
      CTR_VIEW.setInt32(o, s[0]!, true);
      CTR_VIEW.setInt32(o + 4, s[1]!, true);
      CTR_VIEW.setInt32(o + 8, s[2]!, true);
      CTR_VIEW.setInt32(o + 12, w3 | (i << 24), true); // iv[15] + i, no carry (i < 64)
    }
  }

  /**
   * t = 0: XORs the first 493 keystream bytes for input[inOff…+16) into
   * data[dataOff…+493). With `keepT1`, also keeps PRF1 of the same input for genT1.
   */
  xorT0(input: Uint8Array, inOff: number, data: Uint8Array, dataOff: number, keepT1 = false): void {
    need('PRF input', input, inOff, 16);
    need('PRF data', data, dataOff, CGO_XR_LEN);
    const blocks = keepT1 ? T0T1_BLOCKS : T0_BLOCKS;
    this.counters(input, inOff, 0, blocks);
    const ks = this.aes.update(keepT1 ? CTR_T0T1 : CTR_T0);
    for (let i = 0; i < CGO_XR_LEN; i++) data[dataOff + i] = data[dataOff + i]! ^ ks[i]!;
    if (keepT1) {
      this.t1.set(ks.subarray(16 * T1_BLOCK, 16 * T0T1_BLOCKS));
      this.t1Input.set(input.subarray(inOff, inOff + 16));
      this.t1Valid = true;
    }
    ks.fill(0);
  }

  /** t = 1: writes the first n (≤ 80) keystream bytes from block 31 for input into out[outOff…]. */
  genT1(input: Uint8Array, inOff: number, out: Uint8Array, outOff: number, n: number): void {
    need('PRF input', input, inOff, 16);
    if (n < 0 || n > 80) throw new BadArgumentError(`CGO PRF t=1 gives at most 80 bytes here, not ${n}`);
    need('PRF output', out, outOff, n);
    if (this.t1Valid && equal16(this.t1Input, 0, input, inOff)) {
      out.set(this.t1.subarray(0, n), outOff);
      return;
    }
    this.counters(input, inOff, T1_BLOCK, 5);
    const ks = this.aes.update(CTR_T1);
    out.set(ks.subarray(0, n), outOff);
    ks.fill(0);
  }
}

/** UIV+ (cgo_uiv_t): ET with KB|KU and the PRF with K|B; `keys` is the current 64 bytes. */
export class Uiv {
  readonly et: Et;
  readonly prf: Prf;
  readonly keys = new Uint8Array(CGO_UIV_KEYS_LEN);
  private readonly fresh = new Uint8Array(CGO_SEED_LEN);

  constructor(encrypt: boolean, keys: Uint8Array, offset = 0) {
    need('UIV+ keys', keys, offset, CGO_UIV_KEYS_LEN);
    this.keys.set(keys.subarray(offset, offset + CGO_UIV_KEYS_LEN));
    this.et = new Et(encrypt, this.keys, 0);
    this.prf = new Prf(this.keys, 32);
  }

  /** ENC in place: body[off…off+509) = X_L ‖ X_R becomes Y_L ‖ Y_R. */
  encrypt(h: Uint8Array, hOff: number, cmd: number, body: Uint8Array, off = 0, keepT1 = false): void {
    need('UIV+ tweak H', h, hOff, 16);
    need('UIV+ body', body, off, CGO_BODY_LEN);
    loadTweak(cmd, body, off + 16);
    this.et.cryptLoaded(h, hOff, body, off);
    this.prf.xorT0(body, off, body, off + 16, keepT1);
  }

  /** DEC in place: body[off…off+509) = Y_L ‖ Y_R becomes X_L ‖ X_R. */
  decrypt(h: Uint8Array, hOff: number, cmd: number, body: Uint8Array, off = 0, keepT1 = false): void {
    need('UIV+ tweak H', h, hOff, 16);
    need('UIV+ body', body, off, CGO_BODY_LEN);
    this.prf.xorT0(body, off, body, off + 16, keepT1);
    loadTweak(cmd, body, off + 16);
    this.et.cryptLoaded(h, hOff, body, off);
  }

  /** UPDATE: re-keys from PRF1(nonce) and replaces the 16-byte nonce in place. */
  update(nonce: Uint8Array): void {
    need('UPDATE nonce', nonce, 0, 16);
    const fresh = this.fresh;
    this.prf.genT1(nonce, 0, fresh, 0, CGO_SEED_LEN);
    this.keys.set(fresh.subarray(0, CGO_UIV_KEYS_LEN));
    this.et.setKey(fresh, 0);
    this.prf.setKey(fresh, 32);
    nonce.set(fresh.subarray(CGO_UIV_KEYS_LEN));
    fresh.fill(0);
  }

  wipe(): void {
    this.keys.fill(0);
    this.fresh.fill(0);
  }
}

/** cgo_mode_t: which end and which direction. */
export type CgoMode = 'client-forward' | 'client-backward' | 'relay-forward' | 'relay-backward';

/**
 * One direction of CGO at one end (cgo_crypt_t): UIV+, the nonce N and T′. Tags are
 * returned as fresh 16-byte copies (a SENDME on this hop echoes or expects them).
 */
export class CgoCrypt {
  readonly mode: CgoMode;
  readonly uiv: Uiv;
  readonly nonce = new Uint8Array(CGO_TAG_LEN);
  readonly tprime = new Uint8Array(CGO_TAG_LEN);
  private readonly relay: boolean;
  private readonly t = new Uint8Array(CGO_TAG_LEN);

  /** From a seed KB|KU|K|B|N (80 bytes at seed[offset…]); T′ = 0. */
  constructor(mode: CgoMode, seed: Uint8Array, offset = 0) {
    need('seed', seed, offset, CGO_SEED_LEN);
    this.mode = mode;
    this.relay = mode === 'relay-forward' || mode === 'relay-backward';
    // Relays encrypt; clients decrypt.
    this.uiv = new Uiv(this.relay, seed, offset);
    this.nonce.set(seed.subarray(offset + CGO_UIV_KEYS_LEN, offset + CGO_SEED_LEN));
  }

  private expect(mode: CgoMode, op: string): void {
    if (this.mode !== mode) throw new BadArgumentError(`CGO ${op} is a ${mode} operation; this state is ${this.mode}`);
  }

  /** Relay, cell from the client: ENC; recognized (T = N) ⇒ UPDATE and the tag (the incoming T). */
  relayForward(cmd: number, body: Uint8Array, off = 0): Uint8Array | undefined {
    this.expect('relay-forward', 'relayForward');
    need('body', body, off, CGO_BODY_LEN);
    this.t.set(body.subarray(off, off + CGO_TAG_LEN));
    this.uiv.encrypt(this.tprime, 0, cmd, body, off, true);
    this.tprime.set(body.subarray(off, off + CGO_TAG_LEN));
    if (!equal16(body, off, this.nonce, 0)) return undefined;
    this.uiv.update(this.nonce);
    return this.t.slice();
  }

  /** Relay, cell towards the client from further hops: ENC. */
  relayBackward(cmd: number, body: Uint8Array, off = 0): void {
    this.expect('relay-backward', 'relayBackward');
    this.uiv.encrypt(this.tprime, 0, cmd, body, off);
    this.tprime.set(body.subarray(off, off + CGO_TAG_LEN));
  }

  /** Relay, a cell it originates for the client (body[off+16…] is C): T = N, ENC, N = T′ = T, UPDATE; the tag is T′. */
  relayOriginate(cmd: number, body: Uint8Array, off = 0): Uint8Array {
    this.expect('relay-backward', 'relayOriginate');
    need('body', body, off, CGO_BODY_LEN);
    body.set(this.nonce, off);
    this.uiv.encrypt(this.tprime, 0, cmd, body, off, true);
    this.tprime.set(body.subarray(off, off + CGO_TAG_LEN));
    this.nonce.set(this.tprime);
    const tag = this.tprime.slice();
    this.uiv.update(this.nonce);
    return tag;
  }

  /** Client, a layer the cell passes through: T′ ← T, DEC. */
  clientForward(cmd: number, body: Uint8Array, off = 0): void {
    this.expect('client-forward', 'clientForward');
    this.forward(cmd, body, off, false);
  }

  private forward(cmd: number, body: Uint8Array, off: number, keepT1: boolean): void {
    need('body', body, off, CGO_BODY_LEN);
    this.t.set(body.subarray(off, off + CGO_TAG_LEN));
    this.uiv.decrypt(this.tprime, 0, cmd, body, off, keepT1);
    this.tprime.set(this.t);
  }

  /** Client, a cell for this hop (body[off+16…] is C): T = N, then as forward, then UPDATE; the tag is the new T. */
  clientOriginate(cmd: number, body: Uint8Array, off = 0): Uint8Array {
    this.expect('client-forward', 'clientOriginate');
    need('body', body, off, CGO_BODY_LEN);
    body.set(this.nonce, off);
    this.forward(cmd, body, off, true);
    this.uiv.update(this.nonce);
    // A copy (Buffer's slice would be a view).
    const tag = new Uint8Array(CGO_TAG_LEN);
    tag.set(body.subarray(off, off + CGO_TAG_LEN));
    return tag;
  }

  /** Client, a cell from the relays: DEC, T′ ← T; recognized (plain T = N) ⇒ N = T, UPDATE, the tag is T. */
  clientBackward(cmd: number, body: Uint8Array, off = 0): Uint8Array | undefined {
    this.expect('client-backward', 'clientBackward');
    this.forward(cmd, body, off, true);
    if (!equal16(body, off, this.nonce, 0)) return undefined;
    this.nonce.set(this.t);
    this.uiv.update(this.nonce);
    return this.t.slice();
  }

  wipe(): void {
    this.uiv.wipe();
    this.nonce.fill(0);
    this.tprime.fill(0);
    this.t.fill(0);
  }
}

/**
 * One hop's CGO crypto from one end, both directions, over the 160 bytes of key material
 * ntor v3 gives (forward seed then backward seed; cgo_pair_init). The client's layer
 * sends with the forward seed (client-forward) and receives with the backward one
 * (client-backward); the relay's mirror image (fake relays, tests) receives with the
 * forward seed and sends with the backward one. Tags are SENDME tags (16 bytes).
 */
export class CgoLayer {
  readonly side: 'client' | 'relay';
  private readonly out: CgoCrypt;
  private readonly in: CgoCrypt;

  constructor(keyMaterial: Uint8Array, side: 'client' | 'relay' = 'client') {
    if (keyMaterial.length < CGO_KEY_MATERIAL_LEN) throw new BadArgumentError(`CGO key material is ${CGO_KEY_MATERIAL_LEN} bytes (forward 80, backward 80), got ${keyMaterial.length}`);
    this.side = side;
    if (side === 'client') {
      this.out = new CgoCrypt('client-forward', keyMaterial, 0);
      this.in = new CgoCrypt('client-backward', keyMaterial, CGO_SEED_LEN);
    } else {
      this.out = new CgoCrypt('relay-backward', keyMaterial, CGO_SEED_LEN);
      this.in = new CgoCrypt('relay-forward', keyMaterial, 0);
    }
  }

  /** A cell this end makes for the other (C at body[off+16…]): returns its SENDME tag. */
  originate(cmd: number, body: Uint8Array, off = 0): Uint8Array {
    return this.side === 'client' ? this.out.clientOriginate(cmd, body, off) : this.out.relayOriginate(cmd, body, off);
  }

  /** A cell passing this layer on its way out (client: towards a later hop; relay: towards the client). */
  forward(cmd: number, body: Uint8Array, off = 0): void {
    if (this.side === 'client') this.out.clientForward(cmd, body, off);
    else this.out.relayBackward(cmd, body, off);
  }

  /** A cell coming in, decrypted in place: its tag when it is this hop's (recognized), else undefined. */
  receive(cmd: number, body: Uint8Array, off = 0): Uint8Array | undefined {
    return this.side === 'client' ? this.in.clientBackward(cmd, body, off) : this.in.relayForward(cmd, body, off);
  }

  wipe(): void {
    this.out.wipe();
    this.in.wipe();
  }
}
