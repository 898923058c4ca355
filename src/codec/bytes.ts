/**
 * codec/bytes — bounds-checked big-endian cursor (Reader) and growable Writer.
 *
 * Layer: codec core. No I/O, no clock, no RNG. Every read past the end throws an
 * `IncompleteError` naming what was being parsed; nothing here ever throws a
 * RangeError or TypeError on malformed input.
 */
import { DecodeError, IncompleteError } from '../errors.js';

export const EMPTY: Uint8Array = new Uint8Array(0);

/**
 * Pooled allocation for small byte arrays (cells): Node allocates every Uint8Array over
 * 64 bytes outside the JS heap, which is slow; this hands out zeroed views of a 64 KiB
 * slab instead (a slab is never reused, so the bytes start zeroed). The views share an
 * ArrayBuffer, as Node's own Buffer pool does.
 */
const POOL_SIZE = 64 * 1024;
let pool = new Uint8Array(POOL_SIZE);
let poolOffset = 0;

export function allocPooled(n: number): Uint8Array {
  if (n > 4096) return new Uint8Array(n);
  if (poolOffset + n > POOL_SIZE) {
    pool = new Uint8Array(POOL_SIZE);
    poolOffset = 0;
  }
  const out = pool.subarray(poolOffset, poolOffset + n);
  poolOffset = (poolOffset + n + 7) & ~7;
  return out;
}

export class Reader {
  /** Position of the next byte to read, relative to the start of `buf`. */
  pos: number;
  readonly end: number;

  constructor(
    readonly buf: Uint8Array,
    /** What is being parsed, for error messages ("NETINFO cell"). */
    public what = 'input',
    start = 0,
    end = buf.length,
  ) {
    this.pos = start;
    this.end = end;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  /** Throws IncompleteError unless `n` more bytes are available. */
  need(n: number, field: string): void {
    if (this.end - this.pos < n) {
      throw new IncompleteError(
        this.what,
        this.pos,
        n - (this.end - this.pos),
        `${field} needs ${n} byte${n === 1 ? '' : 's'}, but only ${this.end - this.pos} remain`,
      );
    }
  }

  u8(field = 'byte'): number {
    this.need(1, field);
    return this.buf[this.pos++]!;
  }

  u16(field = 'u16'): number {
    this.need(2, field);
    const b = this.buf;
    const p = this.pos;
    this.pos = p + 2;
    return (b[p]! << 8) | b[p + 1]!;
  }

  u32(field = 'u32'): number {
    this.need(4, field);
    const b = this.buf;
    const p = this.pos;
    this.pos = p + 4;
    return ((b[p]! << 24) >>> 0) + ((b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!);
  }

  u64(field = 'u64'): bigint {
    const hi = this.u32(field);
    const lo = this.u32(field);
    return (BigInt(hi) << 32n) | BigInt(lo);
  }

  /** A view (no copy) of the next `n` bytes. */
  bytes(n: number, field = 'bytes'): Uint8Array {
    this.need(n, field);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  /** A view (no copy) of everything left. */
  rest(): Uint8Array {
    const out = this.buf.subarray(this.pos, this.end);
    this.pos = this.end;
    return out;
  }

  /** Throws a DecodeError describing a bad value at the current position. */
  fail(message: string, at = this.pos): never {
    throw new DecodeError(this.what, at, message);
  }
}

/** A growable byte buffer for building messages. */
export class Writer {
  private buf: Uint8Array;
  length = 0;

  constructor(initialSize = 64) {
    this.buf = new Uint8Array(initialSize);
  }

  private ensure(n: number): void {
    const need = this.length + n;
    if (need <= this.buf.length) return;
    let size = this.buf.length * 2 || 64;
    while (size < need) size *= 2;
    const grown = new Uint8Array(size);
    grown.set(this.buf.subarray(0, this.length));
    this.buf = grown;
  }

  u8(v: number): this {
    this.ensure(1);
    this.buf[this.length++] = v;
    return this;
  }

  u16(v: number): this {
    this.ensure(2);
    this.buf[this.length++] = v >>> 8;
    this.buf[this.length++] = v;
    return this;
  }

  u32(v: number): this {
    this.ensure(4);
    const b = this.buf;
    b[this.length++] = v >>> 24;
    b[this.length++] = v >>> 16;
    b[this.length++] = v >>> 8;
    b[this.length++] = v;
    return this;
  }

  bytes(v: Uint8Array): this {
    this.ensure(v.length);
    this.buf.set(v, this.length);
    this.length += v.length;
    return this;
  }

  /** Appends `n` zero bytes. */
  zeros(n: number): this {
    this.ensure(n);
    this.buf.fill(0, this.length, this.length + n);
    this.length += n;
    return this;
  }

  /** Overwrites a u16 at an earlier position (length prefixes). */
  setU16(at: number, v: number): void {
    this.buf[at] = v >>> 8;
    this.buf[at + 1] = v;
  }

  /** The bytes written so far (a copy of exactly `length` bytes). */
  finish(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

export function fromHex(hex: string): Uint8Array {
  const clean = hex.replace(/\s+/g, '');
  if (clean.length % 2 !== 0 || /[^0-9a-fA-F]/.test(clean)) {
    throw new DecodeError('hex string', -1, `is not an even-length hex string: ${JSON.stringify(hex.slice(0, 40))}`);
  }
  return new Uint8Array(Buffer.from(clean, 'hex'));
}

/** Is every byte zero? */
export function isAllZero(bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) if (bytes[i] !== 0) return false;
  return true;
}

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder('utf-8', { fatal: false });
export const utf8 = {
  encode: (s: string): Uint8Array => textEncoder.encode(s),
  decode: (b: Uint8Array): string => textDecoder.decode(b),
};

/** Latin-1: one byte per char; used where Stem treats bytes as text. */
export const latin1 = {
  encode(s: string): Uint8Array {
    const out = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
    return out;
  },
  decode(b: Uint8Array): string {
    return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');
  },
};
