/**
 * datatype — Stem's `stem.client.datatype` in TypeScript: the small fields that cells
 * are made of (Size, Address, Certificate, LinkProtocol, LinkSpecifier), KDF-TOR, the
 * enumerations (AddrType, RelayCommand, CertType, CloseReason, EndReason) and `split`.
 *
 * Layer: codec core. No I/O, no clock. Byte-compatible with Stem 1.8 except where a
 * Stem bug is fixed (each marked "Stem bug fixed"):
 *  - AddrType ERROR_TRANSIENT / ERROR_PERMANENT are 0xF0 / 0xF1 (tor-spec 6.4), not 16 / 17.
 *  - LinkByFingerprint.fingerprint is upper-case hex, not the raw bytes as text.
 *  - HOSTNAME addresses keep their text as `value`.
 */
import { createHash } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';
import { BadArgumentError, DecodeError, IncompleteError, hexExcerpt } from '../errors.js';
import { Reader, bytesEqual, latin1, toHex, utf8 } from './bytes.js';

export const ZERO = 0x00;
/** Length of a SHA-1 digest (tor-spec 0.3 HASH_LEN). */
export const HASH_LEN = 20;
/** Length of an AES-128 key (tor-spec 0.3 KEY_LEN). */
export const KEY_LEN = 16;

// ---------------------------------------------------------------------------------
// Integer enumerations

/**
 * An integer-backed enumeration in Stem's shape: members are names (`RelayCommand.DATA`
 * is `'RELAY_DATA'`), and `get(x)` maps a name or an integer to `[name, int]`; an
 * integer without a name maps to `['UNKNOWN', int]`.
 */
export type IntegerEnum<K extends string, V extends string> = { readonly [P in K]: V } & {
  readonly UNKNOWN: 'UNKNOWN';
  /** `[name, value]` for a name or integer; throws BadArgumentError for an unknown name. */
  get(value: number | string): [V | 'UNKNOWN', number];
  /** The integer of a name, or the integer itself. */
  toInt(value: number | string): number;
  /** The name of an integer, or 'UNKNOWN'. */
  nameOf(value: number): V | 'UNKNOWN';
  /** Every name, UNKNOWN last (Stem's iteration order). */
  names(): readonly (V | 'UNKNOWN')[];
};

function integerEnum<const E extends Record<string, readonly [string, number] | number>>(
  enumName: string,
  entries: E,
): IntegerEnum<Extract<keyof E, string>, { [P in keyof E]: E[P] extends readonly [infer S, number] ? S : P }[keyof E] & string> {
  const toInt = new Map<string, number>();
  const toName = new Map<number, string>();
  const members: Record<string, string> = {};
  const names: string[] = [];
  for (const [key, entry] of Object.entries(entries)) {
    const [name, value] = typeof entry === 'number' ? [key, entry] : entry;
    members[key] = name;
    toInt.set(name, value);
    toName.set(value, name);
    names.push(name);
  }
  names.push('UNKNOWN');
  const nameOf = (value: number) => toName.get(value) ?? 'UNKNOWN';
  const get = (value: number | string): [string, number] => {
    if (typeof value === 'number') {
      if (!Number.isInteger(value)) throw new BadArgumentError(`${enumName} value must be an integer, not ${value}`);
      return [nameOf(value), value];
    }
    const int = toInt.get(value);
    if (int === undefined) {
      throw new BadArgumentError(`Invalid enumeration '${value}', options are ${names.join(', ')}`);
    }
    return [value, int];
  };
  return Object.freeze({
    ...members,
    UNKNOWN: 'UNKNOWN',
    get,
    toInt: (value: number | string) => get(value)[1],
    nameOf,
    names: () => names,
  }) as never;
}

/** Form an address takes (tor-spec 6.4: RESOLVED types, also used by NETINFO). */
export const AddrType = integerEnum('AddrType', {
  HOSTNAME: 0,
  IPv4: 4,
  IPv6: 6,
  ERROR_TRANSIENT: 0xf0, // Stem bug fixed: Stem has 16
  ERROR_PERMANENT: 0xf1, // Stem bug fixed: Stem has 17
});

/** Relay commands (tor-spec 6.1). Names are Stem's ('RELAY_DATA'). */
export const RelayCommand = integerEnum('RelayCommand', {
  BEGIN: ['RELAY_BEGIN', 1],
  DATA: ['RELAY_DATA', 2],
  END: ['RELAY_END', 3],
  CONNECTED: ['RELAY_CONNECTED', 4],
  SENDME: ['RELAY_SENDME', 5],
  EXTEND: ['RELAY_EXTEND', 6],
  EXTENDED: ['RELAY_EXTENDED', 7],
  TRUNCATE: ['RELAY_TRUNCATE', 8],
  TRUNCATED: ['RELAY_TRUNCATED', 9],
  DROP: ['RELAY_DROP', 10],
  RESOLVE: ['RELAY_RESOLVE', 11],
  RESOLVED: ['RELAY_RESOLVED', 12],
  BEGIN_DIR: ['RELAY_BEGIN_DIR', 13],
  EXTEND2: ['RELAY_EXTEND2', 14],
  EXTENDED2: ['RELAY_EXTENDED2', 15],
  // 16..18 reserved for UDP (prop339); 19..22 conflux (prop329)
  CONFLUX_LINK: ['RELAY_CONFLUX_LINK', 19],
  CONFLUX_LINKED: ['RELAY_CONFLUX_LINKED', 20],
  CONFLUX_LINKED_ACK: ['RELAY_CONFLUX_LINKED_ACK', 21],
  CONFLUX_SWITCH: ['RELAY_CONFLUX_SWITCH', 22],
  // 32..40 onion services (rend-spec-v3)
  ESTABLISH_INTRO: ['RELAY_ESTABLISH_INTRO', 32],
  ESTABLISH_RENDEZVOUS: ['RELAY_ESTABLISH_RENDEZVOUS', 33],
  INTRODUCE1: ['RELAY_INTRODUCE1', 34],
  INTRODUCE2: ['RELAY_INTRODUCE2', 35],
  RENDEZVOUS1: ['RELAY_RENDEZVOUS1', 36],
  RENDEZVOUS2: ['RELAY_RENDEZVOUS2', 37],
  INTRO_ESTABLISHED: ['RELAY_INTRO_ESTABLISHED', 38],
  RENDEZVOUS_ESTABLISHED: ['RELAY_RENDEZVOUS_ESTABLISHED', 39],
  INTRODUCE_ACK: ['RELAY_INTRODUCE_ACK', 40],
  // 41..42 circuit padding (padding-spec 3)
  PADDING_NEGOTIATE: ['RELAY_PADDING_NEGOTIATE', 41],
  PADDING_NEGOTIATED: ['RELAY_PADDING_NEGOTIATED', 42],
  // 43..44 flow control (prop324 4)
  XON: ['RELAY_XON', 43],
  XOFF: ['RELAY_XOFF', 44],
});

/** Certificate types (tor-spec 4.2, cert-spec A.1). */
export const CertType = integerEnum('CertType', {
  LINK: 1,
  IDENTITY: 2,
  AUTHENTICATE: 3,
  ED25519_SIGNING: 4,
  LINK_CERT: 5,
  ED25519_AUTHENTICATE: 6,
  ED25519_IDENTITY: 7,
  HS_V3_DESC_SIGNING: 8,
  HS_V3_INTRO_AUTH: 9,
  NTOR_ONION_KEY: 10,
  HS_V3_NTOR_ENC: 11,
});

/** Reasons in DESTROY and TRUNCATED cells (tor-spec 5.4). */
export const CloseReason = integerEnum('CloseReason', {
  NONE: 0,
  PROTOCOL: 1,
  INTERNAL: 2,
  REQUESTED: 3,
  HIBERNATING: 4,
  RESOURCELIMIT: 5,
  CONNECTFAILED: 6,
  OR_IDENTITY: 7,
  CHANNEL_CLOSED: 8,
  FINISHED: 9,
  TIMEOUT: 10,
  DESTROYED: 11,
  NOSUCHSERVICE: 12,
});

/** Reasons in RELAY_END cells (tor-spec 6.3). Not in Stem. */
export const EndReason = integerEnum('EndReason', {
  MISC: 1,
  RESOLVEFAILED: 2,
  CONNECTREFUSED: 3,
  EXITPOLICY: 4,
  DESTROY: 5,
  DONE: 6,
  TIMEOUT: 7,
  NOROUTE: 8,
  HIBERNATING: 9,
  INTERNAL: 10,
  RESOURCELIMIT: 11,
  CONNRESET: 12,
  TORPROTOCOL: 13,
  NOTDIRECTORY: 14,
});

// ---------------------------------------------------------------------------------
// split

/** Splits bytes at `size`: `[content[:size], content[size:]]` (views, no copies). */
export function split(content: Uint8Array, size: number): [Uint8Array, Uint8Array] {
  const at = Math.max(0, Math.min(size, content.length));
  return [content.subarray(0, at), content.subarray(at)];
}

// ---------------------------------------------------------------------------------
// Size

/** Unsigned big-endian integer fields: CHAR (1), SHORT (2), LONG (4), LONG_LONG (8 bytes). */
export class Size {
  static readonly CHAR = new Size('CHAR', 1);
  static readonly SHORT = new Size('SHORT', 2);
  static readonly LONG = new Size('LONG', 4);
  static readonly LONG_LONG = new Size('LONG_LONG', 8);

  constructor(
    readonly name: string,
    readonly size: number,
  ) {}

  /** Encodes a non-negative integer that fits in `size` bytes. */
  pack(content: number | bigint): Uint8Array {
    if (typeof content !== 'bigint' && (typeof content !== 'number' || !Number.isInteger(content))) {
      const typeName = typeof content === 'number' ? 'non-integer number' : typeof content;
      throw new BadArgumentError(`Size.pack encodes an integer, but was a ${typeName}`);
    }
    let value = BigInt(content);
    if (value < 0n) throw new BadArgumentError(`Packed values must be positive (attempted to pack ${content} as a ${this.name})`);
    if (value >> BigInt(this.size * 8) !== 0n) {
      throw new BadArgumentError(`${content} does not fit in a ${this.name} field (${this.size} byte${this.size === 1 ? '' : 's'})`);
    }
    const out = new Uint8Array(this.size);
    for (let i = this.size - 1; i >= 0; i--) {
      out[i] = Number(value & 0xffn);
      value >>= 8n;
    }
    return out;
  }

  /** Decodes exactly `size` bytes; throws DecodeError otherwise, or if above 2^53 - 1. */
  unpack(packed: Uint8Array): number {
    const big = this.unpackBig(packed);
    if (big > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new DecodeError(`${this.name} field`, 0, `value ${big} exceeds Number.MAX_SAFE_INTEGER; use unpackBig()`);
    }
    return Number(big);
  }

  /** Like unpack(), as a bigint (any LONG_LONG). */
  unpackBig(packed: Uint8Array): bigint {
    if (packed.length !== this.size) {
      throw new DecodeError(`${this.name} field`, 0, `${hexExcerpt(packed)} is the wrong size for a ${this.name} field (expected ${this.size} bytes, got ${packed.length})`);
    }
    let value = 0n;
    for (const b of packed) value = (value << 8n) | BigInt(b);
    return value;
  }

  /** Decodes the first `size` bytes: `[value, remainder]`. */
  pop(packed: Uint8Array): [number, Uint8Array] {
    if (packed.length < this.size) {
      throw new IncompleteError(`${this.name} field`, 0, this.size - packed.length, `${hexExcerpt(packed)} is the wrong size for a ${this.name} field (expected ${this.size} bytes, got ${packed.length})`);
    }
    const [head, rest] = split(packed, this.size);
    return [this.unpack(head), rest];
  }

  equals(other: unknown): boolean {
    return other instanceof Size && other.name === this.name && other.size === this.size;
  }
}

// ---------------------------------------------------------------------------------
// LinkProtocol

/**
 * Constants that vary by link protocol version (tor-spec 0.2, 5.1.1): the circuit id
 * field size, the fixed cell length, and where initiator circuit ids start.
 * `valueOf()` is the version, so `Number(lp)` and comparisons with numbers work.
 */
export class LinkProtocol {
  private static readonly cache = new Map<number, LinkProtocol>();
  readonly circIdSize: Size;
  readonly firstCircId: number;
  readonly fixedCellLength: number;

  private constructor(readonly version: number) {
    this.circIdSize = version > 3 ? Size.LONG : Size.SHORT;
    this.firstCircId = version > 3 ? 0x80000000 : 0x01;
    this.fixedCellLength = this.circIdSize.size + 1 + FIXED_PAYLOAD_LEN;
  }

  /** The LinkProtocol for a version number (or the same LinkProtocol). */
  static of(version: number | LinkProtocol): LinkProtocol {
    if (typeof version === 'number') {
      const known = LinkProtocol.cache.get(version);
      if (known) return known;
    } else if (version instanceof LinkProtocol) {
      return version;
    }
    if (typeof version !== 'number' || !Number.isInteger(version) || version < 0 || version > 0xffff) {
      throw new BadArgumentError(`link protocol must be an integer 0-65535, not ${JSON.stringify(version)}`);
    }
    let lp = LinkProtocol.cache.get(version);
    if (!lp) {
      lp = new LinkProtocol(version);
      LinkProtocol.cache.set(version, lp);
    }
    return lp;
  }

  valueOf(): number {
    return this.version;
  }

  toString(): string {
    return String(this.version);
  }

  equals(other: unknown): boolean {
    return (other instanceof LinkProtocol && other.version === this.version) || other === this.version;
  }
}

/** Payload length of a fixed-size cell (tor-spec 0.2 PAYLOAD_LEN). */
export const FIXED_PAYLOAD_LEN = 509;

// ---------------------------------------------------------------------------------
// Address

function ipv4ToBytes(address: string): Uint8Array {
  return Uint8Array.from(address.split('.').map((part) => Number(part)));
}

function ipv4FromBytes(value: Uint8Array): string {
  return `${value[0]}.${value[1]}.${value[2]}.${value[3]}`;
}

/** Parses any textual IPv6 form (compressed, mixed case, embedded IPv4) into 16 bytes. */
function ipv6ToBytes(address: string): Uint8Array {
  let text = address;
  const groups: number[] = [];
  const dotted = text.lastIndexOf(':');
  if (text.includes('.')) {
    const v4 = ipv4ToBytes(text.slice(dotted + 1));
    text = `${text.slice(0, dotted + 1)}${((v4[0]! << 8) | v4[1]!).toString(16)}:${((v4[2]! << 8) | v4[3]!).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? (text.split('::') as [string, string]) : [text, undefined];
  const parse = (part: string) => (part === '' ? [] : part.split(':').map((g) => parseInt(g, 16)));
  const headGroups = parse(head);
  if (tail === undefined) {
    groups.push(...headGroups);
  } else {
    const tailGroups = parse(tail);
    groups.push(...headGroups, ...new Array<number>(8 - headGroups.length - tailGroups.length).fill(0), ...tailGroups);
  }
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    out[i * 2] = g >> 8;
    out[i * 2 + 1] = g & 0xff;
  });
  return out;
}

/** Stem's expanded lower-case form: eight 4-digit groups. */
function ipv6FromBytes(value: Uint8Array): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((value[i]! << 8) | value[i + 1]!).toString(16).padStart(4, '0'));
  return groups.join(':');
}

/**
 * A relay address (tor-spec 6.4 / NETINFO): `type` (AddrType name), `typeInt`,
 * `value` (text, or null for error types) and `valueBin` (encoded bytes).
 * IPv6 text is Stem's expanded lower-case form.
 */
export class Address {
  readonly type: string;
  readonly typeInt: number;
  readonly value: string | null;
  readonly valueBin: Uint8Array;

  constructor(value: string | Uint8Array, addrType?: number | string) {
    if (addrType === undefined) {
      if (typeof value === 'string' && isIPv4(value)) addrType = AddrType.IPv4;
      else if (typeof value === 'string' && isIPv6(value)) addrType = AddrType.IPv6;
      else throw new BadArgumentError(`'${typeof value === 'string' ? value : hexExcerpt(value)}' isn't an IPv4 or IPv6 address`);
    }
    [this.type, this.typeInt] = AddrType.get(addrType);
    if (this.typeInt < 0 || this.typeInt > 255) throw new BadArgumentError(`address type must be 0-255, not ${this.typeInt}`);
    if (this.type === AddrType.IPv4) {
      if (typeof value === 'string' && isIPv4(value)) {
        this.valueBin = ipv4ToBytes(value);
        this.value = ipv4FromBytes(this.valueBin);
      } else {
        const bin = typeof value === 'string' ? latin1.encode(value) : value;
        if (bin.length !== 4) throw new BadArgumentError(`Packed IPv4 addresses should be four bytes, but was: ${JSON.stringify(typeof value === 'string' ? value : hexExcerpt(value))}`);
        this.valueBin = bin;
        this.value = ipv4FromBytes(bin);
      }
    } else if (this.type === AddrType.IPv6) {
      if (typeof value === 'string' && isIPv6(value)) {
        this.valueBin = ipv6ToBytes(value);
        this.value = ipv6FromBytes(this.valueBin);
      } else {
        const bin = typeof value === 'string' ? latin1.encode(value) : value;
        if (bin.length !== 16) throw new BadArgumentError(`Packed IPv6 addresses should be sixteen bytes, but was: ${JSON.stringify(typeof value === 'string' ? value : hexExcerpt(value))}`);
        this.valueBin = bin;
        this.value = ipv6FromBytes(bin);
      }
    } else if (this.type === AddrType.HOSTNAME) {
      // Stem bug fixed: Stem leaves a hostname's value unset.
      this.valueBin = typeof value === 'string' ? utf8.encode(value) : value;
      this.value = typeof value === 'string' ? value : utf8.decode(value);
    } else {
      // Errors (0xF0/0xF1) and unknown types: the spec gives no text form.
      this.valueBin = typeof value === 'string' ? utf8.encode(value) : value;
      this.value = null;
    }
    if (this.valueBin.length > 255) throw new BadArgumentError(`address values are at most 255 bytes, not ${this.valueBin.length}`);
  }

  /** `type u8 | len u8 | value`. */
  pack(): Uint8Array {
    const out = new Uint8Array(2 + this.valueBin.length);
    out[0] = this.typeInt;
    out[1] = this.valueBin.length;
    out.set(this.valueBin, 2);
    return out;
  }

  static decode(r: Reader): Address {
    const type = r.u8('address type');
    const length = r.u8('address length');
    if (r.remaining < length) {
      throw new IncompleteError(r.what, r.pos, length - r.remaining, `Address specified a payload of ${length} bytes, but only had ${r.remaining}`);
    }
    const at = r.pos;
    const value = r.bytes(length, 'address value').slice();
    if ((type === 4 && length !== 4) || (type === 6 && length !== 16)) {
      throw new DecodeError(r.what, at, `an ${type === 4 ? 'IPv4' : 'IPv6'} address must be ${type === 4 ? 4 : 16} bytes, not ${length}`);
    }
    return new Address(value, type);
  }

  static pop(content: Uint8Array): [Address, Uint8Array] {
    const r = new Reader(content, 'address');
    const addr = Address.decode(r);
    return [addr, r.rest()];
  }

  static unpack(content: Uint8Array): Address {
    const [addr, rest] = Address.pop(content);
    if (rest.length) throw new DecodeError('address', content.length - rest.length, `${hexExcerpt(content)} is the wrong size for an Address field`);
    return addr;
  }

  equals(other: unknown): boolean {
    return other instanceof Address && other.typeInt === this.typeInt && bytesEqual(other.valueBin, this.valueBin);
  }

  toString(): string {
    return this.value ?? `${this.type}(${toHex(this.valueBin)})`;
  }
}

// ---------------------------------------------------------------------------------
// Certificate

/** One certificate of a CERTS cell (tor-spec 4.2): `type u8 | len u16 | body`. */
export class Certificate {
  readonly type: string;
  readonly typeInt: number;

  constructor(
    certType: number | string,
    readonly value: Uint8Array,
  ) {
    [this.type, this.typeInt] = CertType.get(certType);
    if (this.typeInt < 0 || this.typeInt > 255) throw new BadArgumentError(`certificate type must be 0-255, not ${this.typeInt}`);
    if (value.length > 0xffff) throw new BadArgumentError(`a certificate is at most 65535 bytes, not ${value.length}`);
  }

  pack(): Uint8Array {
    const out = new Uint8Array(3 + this.value.length);
    out[0] = this.typeInt;
    out[1] = this.value.length >> 8;
    out[2] = this.value.length & 0xff;
    out.set(this.value, 3);
    return out;
  }

  static decode(r: Reader): Certificate {
    const type = r.u8('certificate type');
    const size = r.u16('certificate length');
    if (size > r.remaining) {
      throw new IncompleteError(r.what, r.pos, size - r.remaining, `CERTS cell should have a certificate with ${size} bytes, but only had ${r.remaining} remaining`);
    }
    return new Certificate(type, r.bytes(size).slice());
  }

  static pop(content: Uint8Array): [Certificate, Uint8Array] {
    const r = new Reader(content, 'certificate');
    const cert = Certificate.decode(r);
    return [cert, r.rest()];
  }

  static unpack(content: Uint8Array): Certificate {
    const [cert, rest] = Certificate.pop(content);
    if (rest.length) throw new DecodeError('certificate', content.length - rest.length, `${hexExcerpt(content)} is the wrong size for a Certificate field`);
    return cert;
  }

  equals(other: unknown): boolean {
    return other instanceof Certificate && other.typeInt === this.typeInt && bytesEqual(other.value, this.value);
  }
}

// ---------------------------------------------------------------------------------
// LinkSpecifier (tor-spec 5.1.2)

/** A way to reach a relay, as EXTEND2 lists them: `LSTYPE u8 | LSLEN u8 | LSPEC`. */
export class LinkSpecifier {
  constructor(
    readonly type: number,
    readonly value: Uint8Array,
  ) {
    if (!Number.isInteger(type) || type < 0 || type > 255) throw new BadArgumentError(`link specifier type must be 0-255, not ${type}`);
    if (value.length > 255) throw new BadArgumentError(`a link specifier is at most 255 bytes, not ${value.length}`);
  }

  pack(): Uint8Array {
    const out = new Uint8Array(2 + this.value.length);
    out[0] = this.type;
    out[1] = this.value.length;
    out.set(this.value, 2);
    return out;
  }

  static decode(r: Reader): LinkSpecifier {
    const type = r.u8('link specifier type');
    const size = r.u8('link specifier length');
    if (size > r.remaining) {
      throw new IncompleteError(r.what, r.pos, size - r.remaining, `Link specifier should have ${size} bytes, but only had ${r.remaining} remaining`);
    }
    const at = r.pos;
    const value = r.bytes(size).slice();
    try {
      switch (type) {
        case 0:
          return LinkByIPv4.unpackValue(value);
        case 1:
          return LinkByIPv6.unpackValue(value);
        case 2:
          return new LinkByFingerprint(value);
        case 3:
          return new LinkByEd25519(value);
        default:
          return new LinkSpecifier(type, value); // unrecognized type, kept as is
      }
    } catch (err) {
      if (err instanceof BadArgumentError) throw new DecodeError(r.what, at, err.message);
      throw err;
    }
  }

  static pop(packed: Uint8Array): [LinkSpecifier, Uint8Array] {
    const r = new Reader(packed, 'link specifier');
    const spec = LinkSpecifier.decode(r);
    return [spec, r.rest()];
  }

  static unpack(packed: Uint8Array): LinkSpecifier {
    const [spec, rest] = LinkSpecifier.pop(packed);
    if (rest.length) throw new DecodeError('link specifier', packed.length - rest.length, `${hexExcerpt(packed)} is the wrong size for a LinkSpecifier field`);
    return spec;
  }

  equals(other: unknown): boolean {
    return other instanceof LinkSpecifier && other.type === this.type && bytesEqual(other.value, this.value);
  }
}

function checkPort(port: number): void {
  if (!Number.isInteger(port) || port < 0 || port > 0xffff) throw new BadArgumentError(`port must be an integer 0-65535, not ${port}`);
}

/** Type 0: TLS-over-TCP, IPv4 address and port. */
export class LinkByIPv4 extends LinkSpecifier {
  constructor(
    readonly address: string,
    readonly port: number,
  ) {
    if (!isIPv4(address)) throw new BadArgumentError(`'${address}' isn't an IPv4 address`);
    checkPort(port);
    const value = new Uint8Array(6);
    value.set(ipv4ToBytes(address));
    value[4] = port >> 8;
    value[5] = port & 0xff;
    super(0, value);
  }

  static unpackValue(value: Uint8Array): LinkByIPv4 {
    if (value.length !== 6) throw new BadArgumentError(`IPv4 link specifiers should be six bytes, but was ${value.length} instead: ${hexExcerpt(value)}`);
    return new LinkByIPv4(ipv4FromBytes(value), (value[4]! << 8) | value[5]!);
  }
}

/** Type 1: TLS-over-TCP, IPv6 address and port. `address` in Stem's expanded form. */
export class LinkByIPv6 extends LinkSpecifier {
  readonly address: string;

  constructor(
    address: string,
    readonly port: number,
  ) {
    if (!isIPv6(address)) throw new BadArgumentError(`'${address}' isn't an IPv6 address`);
    checkPort(port);
    const value = new Uint8Array(18);
    value.set(ipv6ToBytes(address));
    value[16] = port >> 8;
    value[17] = port & 0xff;
    super(1, value);
    this.address = ipv6FromBytes(value.subarray(0, 16));
  }

  static unpackValue(value: Uint8Array): LinkByIPv6 {
    if (value.length !== 18) throw new BadArgumentError(`IPv6 link specifiers should be eighteen bytes, but was ${value.length} instead: ${hexExcerpt(value)}`);
    return new LinkByIPv6(ipv6FromBytes(value.subarray(0, 16)), (value[16]! << 8) | value[17]!);
  }
}

function fixedKey(value: Uint8Array | string, length: number, what: string, parseText: (s: string) => Uint8Array | undefined): Uint8Array {
  const bytes = typeof value === 'string' ? parseText(value) : value;
  if (!bytes || bytes.length !== length) {
    const got = typeof value === 'string' ? JSON.stringify(value) : `${value.length} bytes: ${hexExcerpt(value)}`;
    throw new BadArgumentError(`${what} link specifiers should be ${length} bytes, but was ${got}`);
  }
  return bytes;
}

/** Type 2: the legacy RSA identity, SHA-1 of the DER public key. `fingerprint` is upper-case hex. */
export class LinkByFingerprint extends LinkSpecifier {
  readonly fingerprint: string;

  /** From 20 bytes, or 40 hex digits (an optional '$' prefix is allowed). */
  constructor(value: Uint8Array | string) {
    const bytes = fixedKey(value, HASH_LEN, 'Fingerprint', (s) => {
      const hex = s.replace(/^\$/, '');
      return /^[0-9a-fA-F]{40}$/.test(hex) ? Uint8Array.from(Buffer.from(hex, 'hex')) : undefined;
    });
    super(2, bytes);
    this.fingerprint = toHex(bytes).toUpperCase(); // Stem bug fixed: Stem decodes the raw bytes as text
  }
}

/** Type 3: the Ed25519 identity. `fingerprint` is base64 without padding, as tor prints it. */
export class LinkByEd25519 extends LinkSpecifier {
  readonly fingerprint: string;

  /** From 32 bytes, or tor's unpadded base64 (43 characters). */
  constructor(value: Uint8Array | string) {
    const bytes = fixedKey(value, 32, 'Ed25519', (s) => (/^[A-Za-z0-9+/]{43}=?$/.test(s) ? Uint8Array.from(Buffer.from(s, 'base64')) : undefined));
    super(3, bytes);
    this.fingerprint = Buffer.from(bytes).toString('base64').replace(/=+$/, '');
  }
}

// ---------------------------------------------------------------------------------
// KDF-TOR (tor-spec 5.2.1)

/** The keys KDF-TOR derives for CREATE_FAST: KH, Df, Db, Kf, Kb. */
export class KDF {
  constructor(
    /** KH: proves the relay knows the shared key. */
    readonly keyHash: Uint8Array,
    /** Df: seeds the forward running digest. */
    readonly forwardDigest: Uint8Array,
    /** Db: seeds the backward running digest. */
    readonly backwardDigest: Uint8Array,
    /** Kf: the forward AES-128 key. */
    readonly forwardKey: Uint8Array,
    /** Kb: the backward AES-128 key. */
    readonly backwardKey: Uint8Array,
  ) {}

  /** K = H(K0 | [00]) | H(K0 | [01]) | …, split as KH | Df | Db | Kf | Kb. */
  static fromValue(keyMaterial: Uint8Array): KDF {
    const need = HASH_LEN * 3 + KEY_LEN * 2;
    const derived = new Uint8Array(Math.ceil(need / HASH_LEN) * HASH_LEN);
    const counter = new Uint8Array(1);
    for (let i = 0; i * HASH_LEN < need; i++) {
      counter[0] = i;
      derived.set(createHash('sha1').update(keyMaterial).update(counter).digest(), i * HASH_LEN);
    }
    let at = 0;
    const take = (n: number) => derived.slice(at, (at += n));
    return new KDF(take(HASH_LEN), take(HASH_LEN), take(HASH_LEN), take(KEY_LEN), take(KEY_LEN));
  }

  /** tor-spec 5.1.5: the keys of a CREATE_FAST handshake, from K0 = X | Y. */
  static fromCreateFast(x: Uint8Array, y: Uint8Array): KDF {
    const k0 = new Uint8Array(HASH_LEN * 2);
    k0.set(x.subarray(0, HASH_LEN));
    k0.set(y.subarray(0, HASH_LEN), HASH_LEN);
    return KDF.fromValue(k0);
  }
}

