/**
 * crypto/relaycrypto — relay cell crypto of tor-spec 5.5 / 6.1 ("tor1"): one layer per
 * hop, AES-128-CTR with a zero IV in each direction (one keystream per hop and
 * direction, running across cells), and running SHA-1 digests seeded with Df / Db.
 * The same with AES-256-CTR and SHA3-256 ('hsv3') is an onion service's virtual hop
 * (rend-spec-v3 4.2.1; tor's relay_crypto_tor1.c with is_hs_v3): 32-byte keys and seeds,
 * the 4-byte digest field and the 20-byte SENDME tag cut from the SHA3 digest.
 *
 * A circuit can mix tor1 and CGO hops (crypto/cgo's CgoLayer, tor 0.4.9's relay_crypto.c
 * calls each hop's own kind): CircuitCrypto takes either per hop.
 *
 * Layer: crypto core, over Uint8Array. No I/O. Cell by cell (`decrypt`): one AES update
 * per layer (Node returns a fresh buffer) and two SHA-1 state copies where 'recognized'
 * is zero. A run of cells (`decryptCells`): one AES update per layer for all the cells
 * that reach it, and one SHA-1 copy per candidate cell; same results, same state.
 * Not here: what a relay message means (proto/circuit).
 */
import { createCipheriv, createDecipheriv, createHash, randomFillSync, type Cipher, type Decipher, type Hash } from 'node:crypto';
import { BadArgumentError, ProtocolError } from '../errors.js';
import { FIXED_PAYLOAD_LEN, HASH_LEN, KEY_LEN } from '../codec/datatype.js';
import { CgoLayer } from './cgo.js';

const ZERO_IV = new Uint8Array(16);
/** Offsets inside a relay payload (tor-spec 6.1). */
const RECOGNIZED_AT = 1;
const DIGEST_AT = 5;
/** RELAY_TRUNCATED (tor-spec 5.4): handling it drops the layers after its hop. */
const TRUNCATED = 9;

/** Value of each base64 character (Node's digest('base64') is the cheapest digest output). */
const B64 = new Uint8Array(128);
for (let i = 0; i < 64; i++) B64['ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'.charCodeAt(i)] = i;

/** The first 4 bytes of a base64-encoded digest, as an unsigned 32-bit big-endian number. */
function first4(b64: string): number {
  return (
    ((B64[b64.charCodeAt(0)]! << 26) |
      (B64[b64.charCodeAt(1)]! << 20) |
      (B64[b64.charCodeAt(2)]! << 14) |
      (B64[b64.charCodeAt(3)]! << 8) |
      (B64[b64.charCodeAt(4)]! << 2) |
      (B64[b64.charCodeAt(5)]! >> 4)) >>>
    0
  );
}

/** CSPRNG output for relay-cell padding, refilled in place when spent: one randomFillSync per 16 KiB, not per cell. */
const padPool = new Uint8Array(16 * 1024);
let padAt = padPool.length;

/**
 * Fills `buf[offset…offset+size]` with random padding (tor-spec 6.1: after four zero bytes,
 * random), cut from the pool; every pooled byte is used once.
 */
export function randomPadding(buf: Uint8Array, offset: number, size: number): void {
  if (size > padPool.length) {
    randomFillSync(buf, offset, size);
    return;
  }
  if (padAt + size > padPool.length) {
    randomFillSync(padPool);
    padAt = 0;
  }
  buf.set(padPool.subarray(padAt, padAt + size), offset);
  padAt += size;
}

/** The per-hop keys of tor1 relay crypto (tor-spec 5.2; 'hsv3': rend-spec-v3 4.2.1, 32 bytes each). */
export interface Tor1Keys {
  /** Df: seeds the forward digest. */
  forwardDigest: Uint8Array;
  /** Db: seeds the backward digest. */
  backwardDigest: Uint8Array;
  /** Kf: AES-128 key (AES-256 for 'hsv3') for cells towards the relay. */
  forwardKey: Uint8Array;
  /** Kb: AES-128 key (AES-256 for 'hsv3') for cells from the relay. */
  backwardKey: Uint8Array;
}

/**
 * Which tor1: 'tor1' (SHA-1, AES-128-CTR; every relay hop) or 'hsv3' (SHA3-256,
 * AES-256-CTR; the virtual hop to an onion service, rend-spec-v3 4.2.1).
 */
export type Tor1Variant = 'tor1' | 'hsv3';

export interface Tor1LayerOptions {
  variant?: Tor1Variant;
}

/** A v1 SENDME's tag: the first 20 bytes of the running digest (tor's DIGEST_LEN, for SHA3 too). */
export const SENDME_TAG_LEN = 20;

/** The SENDME tag of a recognized cell from its base64 digest (`recognizeAt`): SHA3-256's cut to 20 bytes; SHA-1's and CGO's 16-byte tags as they are. */
export function sendmeTag(digest: string): Uint8Array {
  return Buffer.from(digest, 'base64').subarray(0, SENDME_TAG_LEN);
}

const VARIANTS = {
  tor1: { cipher: 'aes-128-ctr', hash: 'sha1', keyLen: KEY_LEN, seedLen: HASH_LEN },
  hsv3: { cipher: 'aes-256-ctr', hash: 'sha3-256', keyLen: 32, seedLen: 32 },
} as const;

/**
 * One hop's crypto state, from one end's point of view. The client's layer sends with
 * (Kf, Df) and receives with (Kb, Db); the relay's mirror image (for fake relays and
 * tests) sends with (Kb, Db) and receives with (Kf, Df). `originate` + `encrypt` handle
 * cells we send; `decrypt` + `recognize` handle cells we receive.
 */
export class Tor1Layer {
  private readonly outCipher: Cipher;
  private readonly inCipher: Decipher;
  private outDigest: Hash;
  private inDigest: Hash;
  readonly variant: Tor1Variant;
  /** SHA-1's digest is the SENDME tag as it is; SHA3-256's is cut to its first 20 bytes. */
  private readonly cutTag: boolean;

  /** The client's layer for a hop (the default); `options.variant` 'hsv3' for an onion service's virtual hop. */
  constructor(keys: Tor1Keys, side: 'client' | 'relay' = 'client', options: Tor1LayerOptions = {}) {
    this.variant = options.variant ?? 'tor1';
    const v = VARIANTS[this.variant];
    if (!v) throw new BadArgumentError(`relay crypto variant '${String(this.variant)}' is not 'tor1' or 'hsv3'`);
    if (keys.forwardKey.length !== v.keyLen || keys.backwardKey.length !== v.keyLen) throw new BadArgumentError(`${this.variant} keys Kf and Kb are ${v.keyLen} bytes`);
    if (keys.forwardDigest.length !== v.seedLen || keys.backwardDigest.length !== v.seedLen) throw new BadArgumentError(`${this.variant} digests Df and Db are ${v.seedLen} bytes`);
    this.cutTag = this.variant === 'hsv3';
    const client = side === 'client';
    this.outCipher = createCipheriv(v.cipher, client ? keys.forwardKey : keys.backwardKey, ZERO_IV);
    this.inCipher = createDecipheriv(v.cipher, client ? keys.backwardKey : keys.forwardKey, ZERO_IV);
    this.outDigest = createHash(v.hash).update(client ? keys.forwardDigest : keys.backwardDigest);
    this.inDigest = createHash(v.hash).update(client ? keys.backwardDigest : keys.forwardDigest);
  }

  /**
   * tor-spec 6.1: for a plaintext payload we originate at this layer, folds it (digest
   * field zeroed) into the sending digest and writes the first 4 digest bytes. Returns
   * the 20-byte SENDME tag after this cell (what a v1 SENDME will echo).
   */
  originate(payload: Uint8Array): Uint8Array {
    payload.fill(0, DIGEST_AT, DIGEST_AT + 4);
    this.outDigest.update(payload);
    const digest = this.outDigest.copy().digest();
    payload.set(digest.subarray(0, 4), DIGEST_AT);
    return this.cutTag ? digest.subarray(0, SENDME_TAG_LEN) : digest;
  }

  /** Encrypts one payload in place (Kf for the client, tor-spec 5.5.2.1). */
  encrypt(payload: Uint8Array): void {
    payload.set(this.outCipher.update(payload));
  }

  /** Decrypts one payload (Kb for the client, tor-spec 5.5.3) into a fresh buffer. */
  decrypt(payload: Uint8Array): Uint8Array {
    return this.inCipher.update(payload);
  }

  /**
   * tor-spec 6.1: is this decrypted payload for us? If 'recognized' is zero and the digest
   * matches our receiving running digest, the digest state advances and the 20-byte
   * SENDME tag is returned; otherwise the state is unchanged and undefined is returned.
   */
  recognize(payload: Uint8Array): Uint8Array | undefined {
    if (payload[RECOGNIZED_AT] !== 0 || payload[RECOGNIZED_AT + 1] !== 0) return undefined;
    const d0 = payload[DIGEST_AT]!;
    const d1 = payload[DIGEST_AT + 1]!;
    const d2 = payload[DIGEST_AT + 2]!;
    const d3 = payload[DIGEST_AT + 3]!;
    payload.fill(0, DIGEST_AT, DIGEST_AT + 4);
    const candidate = this.inDigest.copy().update(payload);
    const digest = candidate.copy().digest();
    payload[DIGEST_AT] = d0;
    payload[DIGEST_AT + 1] = d1;
    payload[DIGEST_AT + 2] = d2;
    payload[DIGEST_AT + 3] = d3;
    // Constant-time comparison of the 4 digest bytes.
    const diff = (digest[0]! ^ d0) | (digest[1]! ^ d1) | (digest[2]! ^ d2) | (digest[3]! ^ d3);
    if (diff !== 0) return undefined;
    this.inDigest = candidate;
    return this.cutTag ? digest.subarray(0, SENDME_TAG_LEN) : digest;
  }

  // Runs of cells (CircuitCrypto.decryptCells). The running digest is advanced in place,
  // cell by cell; `mark` is the state before the run's first advance, kept until the run
  // ends, so that a cell whose digest does not match can be taken back (the state goes
  // back to `mark` and the cells accepted since are hashed again: rare, as a passing cell
  // has 'recognized' zero once in 65,536).
  private mark: Hash | undefined;
  private readonly markedBufs: Uint8Array[] = [];
  private readonly markedOffs: number[] = [];

  /**
   * `recognize` for the payload at `buf[off…off+509]` of a run: same answer, same state
   * afterwards, but one Hash copy instead of two, and the digest comes as base64 (decode
   * with `sendmeTag` where the bytes are needed: an hsv3 digest is cut there, not per cell). Call `endRun` after the run.
   */
  recognizeAt(buf: Uint8Array, off: number): string | undefined {
    if (buf[off + RECOGNIZED_AT] !== 0 || buf[off + RECOGNIZED_AT + 1] !== 0) return undefined;
    const at = off + DIGEST_AT;
    const claimed = ((buf[at]! << 24) | (buf[at + 1]! << 16) | (buf[at + 2]! << 8) | buf[at + 3]!) >>> 0;
    this.mark ??= this.inDigest.copy();
    this.hashZeroed(buf, off);
    const digest = this.inDigest.copy().digest('base64');
    if ((first4(digest) ^ claimed) === 0) {
      this.markedBufs.push(buf);
      this.markedOffs.push(off);
      return digest;
    }
    // Not ours: back to the state before this cell.
    this.inDigest = this.mark;
    this.mark = undefined;
    for (let i = 0; i < this.markedBufs.length; i++) this.hashZeroed(this.markedBufs[i]!, this.markedOffs[i]!);
    this.markedBufs.length = 0;
    this.markedOffs.length = 0;
    return undefined;
  }

  /** The run is over: nothing to take back any more. */
  endRun(): void {
    this.mark = undefined;
    this.markedBufs.length = 0;
    this.markedOffs.length = 0;
  }

  /** Folds the payload at `off` into the receiving digest with its digest field zeroed (restored after). */
  private hashZeroed(buf: Uint8Array, off: number): void {
    const at = off + DIGEST_AT;
    const d0 = buf[at]!;
    const d1 = buf[at + 1]!;
    const d2 = buf[at + 2]!;
    const d3 = buf[at + 3]!;
    buf[at] = buf[at + 1] = buf[at + 2] = buf[at + 3] = 0;
    this.inDigest.update(new Uint8Array(buf.buffer, buf.byteOffset + off, FIXED_PAYLOAD_LEN));
    buf[at] = d0;
    buf[at + 1] = d1;
    buf[at + 2] = d2;
    buf[at + 3] = d3;
  }
}

/** Where a received cell was recognized, its plaintext, and its full running digest. */
export interface Recognized {
  /** 0-based hop index (hop #1 is 0). */
  hop: number;
  /** The decrypted payload (a fresh buffer the caller owns). */
  plain: Uint8Array;
  digest: Uint8Array;
}

/**
 * What `CircuitCrypto.decryptCells` made of a run of cells, by cell index. Cell i's
 * plaintext is `bytes[i]` from `offset[i]` (509 bytes: a view of a cipher's fresh output,
 * which the caller may keep); `hop[i]` is the hop that recognized it, with its digest in
 * `digest(i)`, or -1 when the first `depth[i]` layers did not (`continueCell` goes on).
 */
export class DecryptedCells {
  count = 0;
  hop = new Int8Array(0);
  depth = new Uint8Array(0);
  offset = new Int32Array(0);
  readonly bytes: Uint8Array[] = [];
  /** Base64 digests of recognized cells (decoded on demand). */
  readonly digests: string[] = [];

  /** The 20-byte SENDME tag after recognized cell i (what a v1 SENDME echoes). */
  digest(i: number): Uint8Array {
    return sendmeTag(this.digests[i]!);
  }

  /** Cell i's plaintext so far, as a view. */
  plain(i: number): Uint8Array {
    return this.bytes[i]!.subarray(this.offset[i]!, this.offset[i]! + FIXED_PAYLOAD_LEN);
  }

  reset(count: number): void {
    if (this.hop.length < count) {
      const size = Math.max(count, 2 * this.hop.length);
      this.hop = new Int8Array(size);
      this.depth = new Uint8Array(size);
      this.offset = new Int32Array(size);
    }
    this.count = count;
    this.bytes.length = count;
    this.digests.length = count;
  }
}

/** A hop's relay crypto: tor1 (tor-spec 5.5) or CGO (crypto/cgo). */
export type HopLayer = Tor1Layer | CgoLayer;

/** Cell commands: the tweak of CGO's UIV+ includes the one a cell travels in. */
const CELL_RELAY = 3;

/**
 * The crypto of a whole circuit: one layer per hop (tor1 or CGO), hop 0 nearest to us.
 * Sending to hop N: originate at N, then encrypt with N … 0 (tor-spec 5.5.2.1; a CGO hop
 * originates with its own layer included). Receiving: decrypt with 0, 1, … until a layer
 * recognizes the cell (tor-spec 5.5.3). Digests of recognized cells are tor1's 20-byte
 * running digest or CGO's 16-byte tag: what a v1 SENDME echoes either way.
 */
export class CircuitCrypto {
  private readonly layers: HopLayer[] = [];

  get hops(): number {
    return this.layers.length;
  }

  addHop(layer: HopLayer): void {
    this.layers.push(layer);
  }

  /** Which relay crypto hop `hop` runs. */
  kindOf(hop: number): 'tor1' | 'cgo' {
    return this.layers[hop] instanceof CgoLayer ? 'cgo' : 'tor1';
  }

  /** Drops the layers of the hops after `hops` (a TRUNCATED from hop `hops`). */
  truncate(hops: number): void {
    this.layers.length = Math.min(this.layers.length, hops);
  }

  /**
   * Originates `payload` (plaintext, 509 bytes) for `hop` and encrypts it in place, for a
   * cell with command `cellCommand` (RELAY or RELAY_EARLY: CGO's tweak). Returns the
   * forward digest (tor1) or tag (CGO) a SENDME for it would echo.
   */
  encrypt(hop: number, payload: Uint8Array, cellCommand = CELL_RELAY): Uint8Array {
    if (payload.length !== FIXED_PAYLOAD_LEN) throw new BadArgumentError(`relay payloads are ${FIXED_PAYLOAD_LEN} bytes, not ${payload.length}`);
    const target = this.layers[hop];
    if (!target) throw new BadArgumentError(`no hop #${hop + 1} on this circuit (it has ${this.layers.length})`);
    let digest: Uint8Array;
    if (target instanceof CgoLayer) digest = target.originate(cellCommand, payload);
    else {
      digest = target.originate(payload);
      target.encrypt(payload);
    }
    for (let i = hop - 1; i >= 0; i--) {
      const layer = this.layers[i]!;
      if (layer instanceof CgoLayer) layer.forward(cellCommand, payload);
      else layer.encrypt(payload);
    }
    return digest;
  }

  /** Decrypts `payload` layer by layer; throws a ProtocolError (E_BAD_CELL_AUTH) if no hop recognizes it. */
  decrypt(payload: Uint8Array, cellCommand = CELL_RELAY): Recognized {
    return this.continueCell(payload, 0, cellCommand);
  }

  /**
   * `decrypt` for a payload the first `depth` layers have already decrypted and not
   * recognized (a cell of `decryptCells` with hop -1), with the layers there are now.
   * `payload` is not modified (a CGO layer decrypts a copy in place).
   */
  continueCell(payload: Uint8Array, depth: number, cellCommand = CELL_RELAY): Recognized {
    let plain = payload;
    for (let hop = depth; hop < this.layers.length; hop++) {
      const layer = this.layers[hop]!;
      if (layer instanceof CgoLayer) {
        if (plain === payload) plain = new Uint8Array(payload);
        const tag = layer.receive(cellCommand, plain);
        if (tag) return { hop, plain, digest: tag };
        continue;
      }
      plain = layer.decrypt(plain);
      const digest = layer.recognize(plain);
      if (digest) return { hop, plain, digest };
    }
    throw new ProtocolError(`a RELAY cell was not recognized by any of the circuit's ${this.layers.length} hop(s): its 'recognized' field or digest does not match`, {
      code: 'E_BAD_CELL_AUTH',
    });
  }

  private gather = new Uint8Array(0);
  private routed = new Int32Array(0);

  /**
   * Decrypts `count` payloads lying back to back in `payloads` (509 bytes each; not
   * modified) as `count` calls of `decrypt` would, in order (tor-spec 5.5.3): each layer
   * decrypts, with one AES update, exactly the cells no earlier layer recognized (its
   * keystream runs over those cells, in order), then checks them in order; a CGO layer
   * takes them one by one, in place in a fresh copy. A cell after a TRUNCATED from hop h
   * goes no deeper than h (handling the TRUNCATED drops the layers after h: `continueCell`
   * takes it on with the layers there are then). Never throws for what the payloads hold:
   * an unrecognized cell has hop -1, depth = the layers applied.
   */
  decryptCells(payloads: Uint8Array, count: number, out: DecryptedCells = new DecryptedCells()): DecryptedCells {
    out.reset(count);
    const L = FIXED_PAYLOAD_LEN;
    if (this.routed.length < count) this.routed = new Int32Array(Math.max(count, 2 * this.routed.length));
    const routed = this.routed;
    for (let i = 0; i < count; i++) {
      routed[i] = i;
      out.hop[i] = -1;
      out.depth[i] = 0;
      out.bytes[i] = payloads;
      out.offset[i] = i * L;
    }
    let n = count;
    let input = payloads.subarray(0, count * L);
    for (let hop = 0; hop < this.layers.length && n > 0; hop++) {
      const layer = this.layers[hop]!;
      const cgo = layer instanceof CgoLayer ? layer : undefined;
      const tor1 = cgo ? undefined : (layer as Tor1Layer);
      // Ours to decrypt in place and hand out (views of it reach streams): a fresh buffer.
      const plain = cgo ? new Uint8Array(input) : tor1!.decrypt(input);
      let next = 0;
      let cut = count; // cells after a TRUNCATED recognized here stop at this layer
      for (let r = 0; r < n; r++) {
        const i = routed[r]!;
        const off = r * L;
        out.bytes[i] = plain;
        out.offset[i] = off;
        out.depth[i] = hop + 1;
        let digest: string | undefined;
        if (cgo) {
          const tag = cgo.receive(CELL_RELAY, plain, off);
          digest = tag && Buffer.from(tag.buffer, tag.byteOffset, tag.length).toString('base64');
        } else digest = tor1!.recognizeAt(plain, off);
        if (digest !== undefined) {
          out.hop[i] = hop;
          out.digests[i] = digest;
          if (truncatedAt(plain, off, cgo !== undefined) && i < cut) cut = i;
        } else if (i < cut) {
          routed[next++] = i;
        }
      }
      tor1?.endRun();
      if (next === n) {
        input = plain;
      } else if (next > 0) {
        // Some cells stay here: the rest go on, back to back.
        if (this.gather.length < next * L) this.gather = new Uint8Array(Math.max(next * L, 2 * this.gather.length));
        for (let r = 0; r < next; r++) {
          const i = routed[r]!;
          this.gather.set(plain.subarray(out.offset[i]!, out.offset[i]! + L), r * L);
        }
        input = this.gather.subarray(0, next * L);
      }
      n = next;
    }
    return out;
  }
}

/** Is the recognized plaintext at plain[off…] a TRUNCATED (V0: command at 0; V1, on CGO hops: at 16)? */
function truncatedAt(plain: Uint8Array, off: number, v1: boolean): boolean {
  return plain[off + (v1 ? 16 : 0)] === TRUNCATED;
}
