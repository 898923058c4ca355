/**
 * crypto/der — the little DER (X.690) tor's certificates need: a reader that walks
 * TLVs (to find an X.509 certificate's validity dates) and a writer that builds them (to
 * make the self-signed X.509 certificates of a test relay: Node can't create X.509).
 *
 * Layer: crypto core. No I/O. The reader accepts definite lengths only (DER has no
 * other) and throws DecodeError on anything truncated or malformed; it is zero-copy:
 * `content` and `whole` are views into the bytes given.
 */
import { BadArgumentError, DecodeError } from '../errors.js';

export const TAG = {
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** One tag-length-value. */
export interface Tlv {
  tag: number;
  /** The value bytes (a view). */
  content: Uint8Array;
  /** Tag, length and value (a view). */
  whole: Uint8Array;
  /** Offset just past this TLV in the buffer it was read from. */
  end: number;
}

/** Reads the TLV at `offset` of `buf` (single-byte tags only, as X.509 uses). */
export function readTlv(buf: Uint8Array, offset = 0, what = 'DER'): Tlv {
  if (offset + 2 > buf.length) throw new DecodeError(what, offset, 'truncated DER header');
  const tag = buf[offset]!;
  if ((tag & 0x1f) === 0x1f) throw new DecodeError(what, offset, `multi-byte DER tags are not supported (tag 0x${tag.toString(16)})`);
  let length = buf[offset + 1]!;
  let p = offset + 2;
  if (length & 0x80) {
    const n = length & 0x7f;
    if (n === 0 || n > 4) throw new DecodeError(what, offset + 1, n === 0 ? 'indefinite DER length' : `DER length of ${n} bytes`);
    if (p + n > buf.length) throw new DecodeError(what, p, 'truncated DER length');
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + buf[p + i]!;
    if (buf[p] === 0 || length < 0x80) throw new DecodeError(what, offset + 1, 'non-minimal DER length');
    p += n;
  }
  const end = p + length;
  if (end > buf.length) throw new DecodeError(what, p, `DER value of ${length} bytes overruns its container (${buf.length - p} left)`);
  return { tag, content: buf.subarray(p, end), whole: buf.subarray(offset, end), end };
}

/** The TLVs inside a constructed TLV (a SEQUENCE, SET or explicit tag). */
export function children(tlv: Tlv, what = 'DER'): Tlv[] {
  const out: Tlv[] = [];
  for (let p = 0; p < tlv.content.length; ) {
    const child = readTlv(tlv.content, p, what);
    out.push(child);
    p = child.end;
  }
  return out;
}

/** Parses a UTCTime (YYMMDDHHMMSSZ; years 50–99 are 19xx) or GeneralizedTime (YYYYMMDDHHMMSSZ). */
export function parseTime(tlv: Tlv, what = 'DER time'): Date {
  const text = String.fromCharCode(...tlv.content);
  let m: RegExpExecArray | null;
  let year: number;
  if (tlv.tag === TAG.UTC_TIME && (m = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text))) {
    const yy = Number(m[1]);
    year = yy >= 50 ? 1900 + yy : 2000 + yy;
  } else if (tlv.tag === TAG.GENERALIZED_TIME && (m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text))) {
    year = Number(m[1]);
  } else {
    throw new DecodeError(what, -1, `'${text}' (tag 0x${tlv.tag.toString(16)}) is not a DER UTCTime or GeneralizedTime`);
  }
  const [month, day, hour, minute, second] = [m[2], m[3], m[4], m[5], m[6]].map(Number) as [number, number, number, number, number];
  const date = new Date(Date.UTC(year, month - 1, day, hour, minute, second));
  if (date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day || hour > 23 || minute > 59 || second > 59) {
    throw new DecodeError(what, -1, `'${text}' is not a valid date`);
  }
  return date;
}

// ---------------------------------------------------------------------------------
// Writer

function lengthBytes(n: number): number[] {
  if (n < 0x80) return [n];
  const out: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) out.unshift(v & 0xff);
  return [0x80 | out.length, ...out];
}

/** A TLV with the given tag around the concatenated contents. */
export function tlv(tag: number, ...contents: Uint8Array[]): Uint8Array {
  const length = contents.reduce((n, c) => n + c.length, 0);
  const head = [tag, ...lengthBytes(length)];
  const out = new Uint8Array(head.length + length);
  out.set(head, 0);
  let p = head.length;
  for (const c of contents) {
    out.set(c, p);
    p += c.length;
  }
  return out;
}

export const sequence = (...contents: Uint8Array[]): Uint8Array => tlv(TAG.SEQUENCE, ...contents);
export const set = (...contents: Uint8Array[]): Uint8Array => tlv(TAG.SET, ...contents);
/** `[n] EXPLICIT` (context-specific, constructed). */
export const explicit = (n: number, ...contents: Uint8Array[]): Uint8Array => tlv(0xa0 | n, ...contents);
export const derNull = (): Uint8Array => Uint8Array.of(TAG.NULL, 0);

/** A non-negative INTEGER from a bigint or big-endian unsigned bytes. */
export function integer(value: bigint | number | Uint8Array): Uint8Array {
  let bytes: Uint8Array;
  if (value instanceof Uint8Array) {
    bytes = value;
  } else {
    let v = BigInt(value);
    if (v < 0n) throw new BadArgumentError('DER integers here are non-negative');
    const out: number[] = [];
    do {
      out.unshift(Number(v & 0xffn));
      v >>= 8n;
    } while (v > 0n);
    bytes = Uint8Array.from(out);
  }
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  bytes = bytes.subarray(start);
  if (bytes.length === 0) bytes = Uint8Array.of(0);
  return (bytes[0]! & 0x80) !== 0 ? tlv(TAG.INTEGER, Uint8Array.of(0), bytes) : tlv(TAG.INTEGER, bytes);
}

/** An OBJECT IDENTIFIER from dotted text ("1.2.840.113549.1.1.11"). */
export function oid(dotted: string): Uint8Array {
  const arcs = dotted.split('.').map((a) => BigInt(a));
  if (arcs.length < 2) throw new BadArgumentError(`'${dotted}' is not an OID`);
  const out: number[] = [Number(arcs[0]! * 40n + arcs[1]!)];
  for (const arc of arcs.slice(2)) {
    const groups: number[] = [];
    let v = arc;
    do {
      groups.unshift(Number(v & 0x7fn));
      v >>= 7n;
    } while (v > 0n);
    for (let i = 0; i < groups.length - 1; i++) groups[i]! |= 0x80;
    out.push(...groups);
  }
  return tlv(TAG.OID, Uint8Array.from(out));
}

/** A BIT STRING with no unused bits. */
export const bitString = (bytes: Uint8Array): Uint8Array => tlv(TAG.BIT_STRING, Uint8Array.of(0), bytes);

export const utf8String = (text: string): Uint8Array => tlv(TAG.UTF8_STRING, new Uint8Array(Buffer.from(text, 'utf8')));

/** UTCTime for 1950–2049, GeneralizedTime otherwise (RFC 5280 4.1.2.5); whole seconds. */
export function time(date: Date): Uint8Array {
  const iso = date.toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ
  const year = date.getUTCFullYear();
  const digits = iso.slice(0, 19).replace(/[-T:]/g, '');
  if (year >= 1950 && year < 2050) return tlv(TAG.UTC_TIME, new Uint8Array(Buffer.from(digits.slice(2) + 'Z', 'latin1')));
  if (year < 0 || year > 9999) throw new BadArgumentError(`${iso} can't be a DER time`);
  return tlv(TAG.GENERALIZED_TIME, new Uint8Array(Buffer.from(digits + 'Z', 'latin1')));
}
