/**
 * crypto/polyval — POLYVAL (RFC 8452 §3): the universal hash of AES-GCM-SIV, used by CGO
 * relay crypto (crypto/cgo) as the hash inside its tweakable block cipher (ET) and PRF.
 * POLYVAL(H, X_1 … X_s): S_0 = 0, S_j = dot(S_{j-1} ⊕ X_j, H), dot(a, b) = a·b·x⁻¹²⁸ in
 * GF(2¹²⁸) mod x¹²⁸ + x¹²⁷ + x¹²⁶ + x¹²¹ + 1, blocks read little-endian (byte 0 bit 0 is
 * the coefficient of x⁰). CGO uses the key as given and the raw accumulator as the tag.
 *
 * How (Node has no POLYVAL or carry-less multiply): an element is four 32-bit words.
 * - Wide keys (`new PolyvalKey(key)`, for many blocks per key): 8 tables of 16 entries,
 *   u·H·x^(4p) for the nibble u at position p of a 32-bit word (2 KiB, built with 32
 *   shifts and 480 word XORs). A block costs 32 lookups of 4 words, XORed without
 *   reduction, and one reduction per word: R·x⁻³² = (R ≫ 32) ⊕ R₀·(x⁹⁶ + x⁹⁵ + x⁹⁴ + x⁸⁹),
 *   a shift-and-XOR fold. This beat Shoup's 8-bit tables (256 entries to build, a shift and
 *   reduction per byte) and a 32-bit carry-less multiply (18 partial products of 16
 *   Math.imul each) here, for CGO's pattern of a fresh key every cell and 32 blocks per
 *   key (bench/cgo prints ns per block).
 * - Narrow keys (`new PolyvalKey(key, 0, false)`, for one block per key, as CGO's PRF):
 *   Shoup's 4-bit method, one table of u·H (16 entries) and a reduction per nibble
 *   (R·x⁻⁴ only touches the top word: x⁻⁴ = x¹²⁴ + x¹²³ + x¹²² + x¹¹⁷).
 * Constant time: NOT against a local cache-timing attacker. The table indices are
 *   secret (key- and data-dependent) nibbles; the tables are small and stay in L1, there
 *   are no secret-dependent branches, and no JavaScript engine promises more. The
 *   comparisons that decide what a cell is (crypto/cgo) are constant-time XOR/OR folds.
 *
 * Layer: crypto core, over Uint8Array. No I/O, no allocation per block. Not here: AES,
 * CGO's use of the hash (crypto/cgo), GHASH.
 */
import { BadArgumentError } from '../errors.js';

export const POLYVAL_BLOCK_LEN = 16;
export const POLYVAL_KEY_LEN = 16;

/** Whether an Int32Array over bytes reads them little-endian (then `words` may be used). */
export const LITTLE_ENDIAN = new Uint8Array(Uint32Array.of(1).buffer)[0] === 1;

/** x⁻⁴·u for a nibble u: only the top word (bits 117…127): clmul(u, 0xE1) ≪ 21. */
const Q4 = new Int32Array(16);
for (let u = 0; u < 16; u++) {
  let c = 0;
  for (let i = 0; i < 8; i++) if ((0xe1 >> i) & 1) c ^= u << i;
  Q4[u] = c << 21;
}

function readWord(b: Uint8Array, o: number): number {
  return b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24);
}

function writeWord(b: Uint8Array, o: number, v: number): void {
  b[o] = v;
  b[o + 1] = v >>> 8;
  b[o + 2] = v >>> 16;
  b[o + 3] = v >>> 24;
}

/** A POLYVAL key H with its multiplication tables. */
export class PolyvalKey {
  /** 4 words per entry: entry 16p + u is u·H·x^(4p) (wide: p < 8; narrow: p = 0). */
  readonly table: Int32Array;
  readonly wide: boolean;

  constructor(key?: Uint8Array, offset = 0, wide = true) {
    this.wide = wide;
    this.table = new Int32Array(wide ? 512 : 64);
    if (key) this.setKey(key, offset);
  }

  /** Re-keys in place with the 16 bytes at `key[offset…]` (no allocation). */
  setKey(key: Uint8Array, offset = 0): void {
    if (offset < 0 || key.length < offset + POLYVAL_KEY_LEN) throw new BadArgumentError(`a POLYVAL key is ${POLYVAL_KEY_LEN} bytes (got ${key.length - offset} at offset ${offset})`);
    const T = this.table;
    let h0 = readWord(key, offset);
    let h1 = readWord(key, offset + 4);
    let h2 = readWord(key, offset + 8);
    let h3 = readWord(key, offset + 12);
    const positions = this.wide ? 8 : 1;
    for (let p = 0; p < positions; p++) {
      const base = p << 6;
      // Entries 1, 2, 4, 8 are H·x^(4p+k); the others XORs of those already made.
      for (let k = 1; k < 16; k <<= 1) {
        const e = base + (k << 2);
        T[e] = h0;
        T[e + 1] = h1;
        T[e + 2] = h2;
        T[e + 3] = h3;
        for (let j = 1; j < k; j++) {
          const a = base + ((k + j) << 2);
          const b = base + (j << 2);
          T[a] = h0 ^ T[b]!;
          T[a + 1] = h1 ^ T[b + 1]!;
          T[a + 2] = h2 ^ T[b + 2]!;
          T[a + 3] = h3 ^ T[b + 3]!;
        }
        // H·x: shift left one bit; x¹²⁸ = x¹²⁷ + x¹²⁶ + x¹²¹ + 1.
        const carry = h3 >> 31;
        h3 = (h3 << 1) | (h2 >>> 31);
        h2 = (h2 << 1) | (h1 >>> 31);
        h1 = (h1 << 1) | (h0 >>> 31);
        h0 = (h0 << 1) ^ (carry & 1);
        h3 ^= carry & 0xc2000000;
      }
    }
  }

  /** Zeroes the tables. */
  wipe(): void {
    this.table.fill(0);
  }
}

/**
 * s ← the POLYVAL steps for n blocks at W[at…]. Wide key: per word of a block, 8 table
 * lookups and a fold (32 lookups, 4 folds a block). Narrow key: Shoup, lowest nibble
 * first, a lookup and a reduction per nibble.
 */
function absorb(T: Int32Array, wide: boolean, s: Int32Array, W: Int32Array, at: number, n: number): void {
  let r0 = s[0]!;
  let r1 = s[1]!;
  let r2 = s[2]!;
  let r3 = s[3]!;
  for (let b = 0; b < n; b++, at += 4) {
    const a0 = r0 ^ W[at]!;
    const a1 = r1 ^ W[at + 1]!;
    const a2 = r2 ^ W[at + 2]!;
    const a3 = r3 ^ W[at + 3]!;
    r0 = r1 = r2 = r3 = 0;
    for (let w = 0; w < 4; w++) {
      let a = w === 0 ? a0 : w === 1 ? a1 : w === 2 ? a2 : a3;
      if (wide) {
        let i = (a & 15) << 2;
        r0 ^= T[i]!; r1 ^= T[i + 1]!; r2 ^= T[i + 2]!; r3 ^= T[i + 3]!;
        i = 64 | ((a >>> 2) & 60);
        r0 ^= T[i]!; r1 ^= T[i + 1]!; r2 ^= T[i + 2]!; r3 ^= T[i + 3]!;
        i = 128 | ((a >>> 6) & 60);
        r0 ^= T[i]!; r1 ^= T[i + 1]!; r2 ^= T[i + 2]!; r3 ^= T[i + 3]!;
        i = 192 | ((a >>> 10) & 60);
        r0 ^= T[i]!; r1 ^= T[i + 1]!; r2 ^= T[i + 2]!; r3 ^= T[i + 3]!;
        i = 256 | ((a >>> 14) & 60);
        r0 ^= T[i]!; r1 ^= T[i + 1]!; r2 ^= T[i + 2]!; r3 ^= T[i + 3]!;
        i = 320 | ((a >>> 18) & 60);
        r0 ^= T[i]!; r1 ^= T[i + 1]!; r2 ^= T[i + 2]!; r3 ^= T[i + 3]!;
        i = 384 | ((a >>> 22) & 60);
        r0 ^= T[i]!; r1 ^= T[i + 1]!; r2 ^= T[i + 2]!; r3 ^= T[i + 3]!;
        i = 448 | ((a >>> 26) & 60);
        r0 ^= T[i]!; r1 ^= T[i + 1]!; r2 ^= T[i + 2]!; r3 ^= T[i + 3]!;
        // R·x⁻³²: drop the low word f and add f·x⁸⁹·(x⁷ + x⁶ + x⁵ + 1), a 39-bit value at bit 89.
        const f = r0;
        const lo = f ^ (f << 5) ^ (f << 6) ^ (f << 7);
        const hi = (f >>> 27) ^ (f >>> 26) ^ (f >>> 25);
        r0 = r1;
        r1 = r2;
        r2 = r3 ^ (lo << 25);
        r3 = (lo >>> 7) ^ (hi << 25);
      } else {
        for (let k = 0; k < 8; k++, a >>>= 4) {
          const i = (a & 15) << 2;
          r0 ^= T[i]!; r1 ^= T[i + 1]!; r2 ^= T[i + 2]!; r3 ^= T[i + 3]!;
          // R·x⁻⁴.
          const low = r0 & 15;
          r0 = (r0 >>> 4) | (r1 << 28);
          r1 = (r1 >>> 4) | (r2 << 28);
          r2 = (r2 >>> 4) | (r3 << 28);
          r3 = (r3 >>> 4) ^ Q4[low]!;
        }
      }
    }
  }
  s[0] = r0;
  s[1] = r1;
  s[2] = r2;
  s[3] = r3;
}

/** Blocks read from bytes go through here as words (32 blocks at a time). */
const SCRATCH = new Int32Array(128);

/** A running POLYVAL under one key; the accumulator is `s` (four words, little-endian). */
export class Polyval {
  readonly s = new Int32Array(4);
  key: PolyvalKey;

  constructor(key: PolyvalKey) {
    this.key = key;
  }

  reset(): this {
    this.s.fill(0);
    return this;
  }

  /** Absorbs `n` whole blocks from `bytes[off…off+16n]`. */
  blocks(bytes: Uint8Array, off: number, n: number): this {
    if (off < 0 || off + 16 * n > bytes.length) throw new BadArgumentError(`POLYVAL: ${n} blocks at offset ${off} do not fit in ${bytes.length} bytes`);
    while (n > 0) {
      const m = Math.min(n, 32);
      for (let i = 0; i < 4 * m; i++, off += 4) SCRATCH[i] = readWord(bytes, off);
      absorb(this.key.table, this.key.wide, this.s, SCRATCH, 0, m);
      n -= m;
    }
    return this;
  }

  /**
   * Absorbs `n` whole blocks from `words[at…at+4n]`, an Int32Array over the blocks' bytes:
   * only where LITTLE_ENDIAN (crypto/cgo's aligned fast path); otherwise use `blocks`.
   */
  words(words: Int32Array, at: number, n: number): this {
    if (!LITTLE_ENDIAN) throw new BadArgumentError('POLYVAL.words reads Int32Array words as little-endian; this platform is big-endian (use blocks)');
    if (at < 0 || at + 4 * n > words.length) throw new BadArgumentError(`POLYVAL: ${n} blocks at word ${at} do not fit in ${words.length} words`);
    absorb(this.key.table, this.key.wide, this.s, words, at, n);
    return this;
  }

  /** Absorbs `data`, its last partial block zero-padded (RFC 8452 pads the same way). */
  update(data: Uint8Array): this {
    const whole = data.length >>> 4;
    this.blocks(data, 0, whole);
    const rest = data.length & 15;
    if (rest > 0) {
      const last = new Uint8Array(16);
      last.set(data.subarray(whole * 16));
      this.blocks(last, 0, 1);
    }
    return this;
  }

  /** Writes the accumulator (the tag) as 16 bytes at `out[off…]`. */
  digest(out: Uint8Array = new Uint8Array(16), off = 0): Uint8Array {
    const s = this.s;
    writeWord(out, off, s[0]!);
    writeWord(out, off + 4, s[1]!);
    writeWord(out, off + 8, s[2]!);
    writeWord(out, off + 12, s[3]!);
    return out;
  }
}

/** POLYVAL(H, data) with `data` zero-padded to whole blocks (RFC 8452 §3). */
export function polyval(key: Uint8Array, data: Uint8Array): Uint8Array {
  return new Polyval(new PolyvalKey(key)).update(data).digest();
}
