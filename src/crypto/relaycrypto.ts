/**
 * crypto/relaycrypto — relay cell crypto of tor-spec 5.5 / 6.1 ("tor1"): one layer per
 * hop, AES-128-CTR with a zero IV in each direction (one keystream per hop and
 * direction, running across cells), and running SHA-1 digests seeded with Df / Db.
 *
 * Layer: crypto core, over Uint8Array. No I/O. Per cell and layer: one AES update (Node
 * returns a fresh buffer) and one or two SHA-1 state copies.
 */
import { createCipheriv, createDecipheriv, createHash, type Cipher, type Decipher, type Hash } from 'node:crypto';
import { BadArgumentError, ProtocolError } from '../errors.js';
import { FIXED_PAYLOAD_LEN, HASH_LEN, KEY_LEN } from '../codec/datatype.js';

const ZERO_IV = new Uint8Array(16);
/** Offsets inside a relay payload (tor-spec 6.1). */
const RECOGNIZED_AT = 1;
const DIGEST_AT = 5;

/** The per-hop keys of tor1 relay crypto (tor-spec 5.2). */
export interface Tor1Keys {
  /** Df: seeds the forward digest. */
  forwardDigest: Uint8Array;
  /** Db: seeds the backward digest. */
  backwardDigest: Uint8Array;
  /** Kf: AES-128 key for cells towards the relay. */
  forwardKey: Uint8Array;
  /** Kb: AES-128 key for cells from the relay. */
  backwardKey: Uint8Array;
}

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

  /** The client's layer for a hop (the default). */
  constructor(keys: Tor1Keys, side: 'client' | 'relay' = 'client') {
    if (keys.forwardKey.length !== KEY_LEN || keys.backwardKey.length !== KEY_LEN) throw new BadArgumentError(`tor1 keys Kf and Kb are ${KEY_LEN} bytes`);
    if (keys.forwardDigest.length !== HASH_LEN || keys.backwardDigest.length !== HASH_LEN) throw new BadArgumentError(`tor1 digests Df and Db are ${HASH_LEN} bytes`);
    const client = side === 'client';
    this.outCipher = createCipheriv('aes-128-ctr', client ? keys.forwardKey : keys.backwardKey, ZERO_IV);
    this.inCipher = createDecipheriv('aes-128-ctr', client ? keys.backwardKey : keys.forwardKey, ZERO_IV);
    this.outDigest = createHash('sha1').update(client ? keys.forwardDigest : keys.backwardDigest);
    this.inDigest = createHash('sha1').update(client ? keys.backwardDigest : keys.forwardDigest);
  }

  /**
   * tor-spec 6.1: for a plaintext payload we originate at this layer, folds it (digest
   * field zeroed) into the sending digest and writes the first 4 digest bytes. Returns
   * the full 20-byte running digest after this cell (what a v1 SENDME will echo).
   */
  originate(payload: Uint8Array): Uint8Array {
    payload.fill(0, DIGEST_AT, DIGEST_AT + 4);
    this.outDigest.update(payload);
    const digest = this.outDigest.copy().digest();
    payload.set(digest.subarray(0, 4), DIGEST_AT);
    return digest;
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
   * matches our receiving running digest, the digest state advances and the full 20-byte
   * digest is returned; otherwise the state is unchanged and undefined is returned.
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
    return digest;
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
 * The crypto of a whole circuit: one Tor1Layer per hop, hop 0 nearest to us.
 * Sending to hop N: originate at N, then encrypt with N … 0 (tor-spec 5.5.2.1).
 * Receiving: decrypt with 0, 1, … until a layer recognizes the cell (tor-spec 5.5.3).
 */
export class CircuitCrypto {
  private readonly layers: Tor1Layer[] = [];

  get hops(): number {
    return this.layers.length;
  }

  addHop(layer: Tor1Layer): void {
    this.layers.push(layer);
  }

  /** Drops the layers of the hops after `hops` (a TRUNCATED from hop `hops`). */
  truncate(hops: number): void {
    this.layers.length = Math.min(this.layers.length, hops);
  }

  /** Originates `payload` (plaintext, 509 bytes) for `hop` and encrypts it in place. Returns the full forward digest. */
  encrypt(hop: number, payload: Uint8Array): Uint8Array {
    if (payload.length !== FIXED_PAYLOAD_LEN) throw new BadArgumentError(`relay payloads are ${FIXED_PAYLOAD_LEN} bytes, not ${payload.length}`);
    const target = this.layers[hop];
    if (!target) throw new BadArgumentError(`no hop #${hop + 1} on this circuit (it has ${this.layers.length})`);
    const digest = target.originate(payload);
    for (let i = hop; i >= 0; i--) this.layers[i]!.encrypt(payload);
    return digest;
  }

  /** Decrypts `payload` layer by layer; throws a ProtocolError (E_BAD_CELL_AUTH) if no hop recognizes it. */
  decrypt(payload: Uint8Array): Recognized {
    let plain = payload;
    for (let hop = 0; hop < this.layers.length; hop++) {
      const layer = this.layers[hop]!;
      plain = layer.decrypt(plain);
      const digest = layer.recognize(plain);
      if (digest) return { hop, plain, digest };
    }
    throw new ProtocolError(`a RELAY cell was not recognized by any of the circuit's ${this.layers.length} hop(s): its 'recognized' field or digest does not match`, {
      code: 'E_BAD_CELL_AUTH',
    });
  }
}
