/**
 * codec/cell — Stem's `stem.client.cell` in TypeScript: every channel cell of tor-spec 3,
 * with `pack(linkProtocol)`, `Cell.pop` / `Cell.unpack`, `cellByName` / `cellByValue`.
 * The base classes and registry are codec/cellbase, RELAY / RELAY_EARLY codec/relaycell;
 * this module registers them all and is what the `orport/cell` entry re-exports.
 *
 * Layer: codec core. No I/O, no clock. Constructors that Stem fills with random bytes
 * (PADDING, CREATE_FAST key material, AUTH_CHALLENGE) still do so by default; pass the
 * bytes to stay deterministic. Differences from Stem 1.8 (each a fix):
 *  - Every cell type is implemented, including CREATE, CREATED, RELAY_EARLY, CREATE2,
 *    CREATED2, PADDING_NEGOTIATE, AUTHENTICATE and AUTHORIZE; CREATED2 is a circuit cell.
 *  - An unknown command decodes to an `UnknownCell` instead of failing the whole read.
 *  - A partial cell throws `IncompleteError` (with how many bytes are missing); malformed
 *    bytes throw `DecodeError`; an odd-length VERSIONS payload is an error (tor-spec 4.1).
 *  - NETINFO's timestamp defaults to 0, as tor-spec 4.5 asks of clients, not to "now".
 * Other deliberate differences: RELAY data given as a string is UTF-8 (Stem: Latin-1,
 * with '?' for other characters); close reason 8 is CHANNEL_CLOSED (tor-spec's name and
 * Stem 2's; Stem 1.8 says OR_CONN_CLOSED).
 *
 * Decoding is zero-copy: the byte fields of a decoded cell (data, payload, unused, key
 * material…) are views into the bytes given to `Cell.pop` / `decodeFrame`. Copy what you
 * keep if you reuse that buffer (the channel reader does, for the cells it keeps).
 */
import { randomBytes as nodeRandomBytes } from 'node:crypto';
import { BadArgumentError, DecodeError } from '../errors.js';
import { EMPTY, Reader, Writer } from './bytes.js';
import { Address, Certificate, CloseReason, FIXED_PAYLOAD_LEN, HASH_LEN, LinkProtocol, Size } from './datatype.js';
import { Cell, CircuitCell, registerCells, type CellClass } from './cellbase.js';
import { RelayCell, RelayEarlyCell } from './relaycell.js';

export { FIXED_PAYLOAD_LEN };
export { Cell, CircuitCell, UnknownCell, cellByName, cellByValue, type CellClass, type PopResult } from './cellbase.js';
export {
  RelayCell,
  RelayEarlyCell,
  RELAY_DATA_MAX,
  RELAY_DIGEST_SIZE,
  RELAY_HEADER_LEN,
  STREAM_ID_DISALLOWED,
  STREAM_ID_REQUIRED,
  type DigestSource,
} from './relaycell.js';

/** Fresh random bytes as a plain Uint8Array (what Stem's constructors default to). */
function randomBytes(n: number): Uint8Array {
  return new Uint8Array(nodeRandomBytes(n));
}
export const AUTH_CHALLENGE_SIZE = 32;
export const CELL_TYPE_SIZE = Size.CHAR;
export const PAYLOAD_LEN_SIZE = Size.SHORT;
/** Link protocols we offer by default (tor 0.4.9 speaks 3-5). */
export const DEFAULT_LINK_PROTOCOLS: readonly number[] = Object.freeze([3, 4, 5]);
/** TAP handshake lengths (tor-spec 5.1.3): onion skin and reply. TAP is obsolete. */
export const TAP_C_HANDSHAKE_LEN = 186;
export const TAP_S_HANDSHAKE_LEN = 148;

function expectLength(value: Uint8Array, length: number, what: string): Uint8Array {
  if (value.length !== length) throw new BadArgumentError(`${what} should be ${length} bytes, but was ${value.length}`);
  return value;
}

// ---------------------------------------------------------------------------------
// The cells, in command order

/** PADDING (0): 509 random bytes, ignored by the receiver (tor-spec 7.2). */
export class PaddingCell extends Cell {
  static override readonly NAME = 'PADDING';
  static override readonly VALUE = 0;
  static override readonly IS_FIXED_SIZE = true;
  readonly payload: Uint8Array;

  constructor(payload?: Uint8Array) {
    super();
    this.payload = payload && payload.length ? expectLength(payload, FIXED_PAYLOAD_LEN, 'Padding payload') : randomBytes(FIXED_PAYLOAD_LEN);
  }

  pack(lp: number | LinkProtocol): Uint8Array {
    return this.frame(lp, [this.payload]);
  }

  static decodePayload(payload: Uint8Array): PaddingCell {
    return new PaddingCell(payload);
  }
}

/** CREATE (1): a TAP onion skin (tor-spec 5.1). Obsolete: tor 0.4.9 rejects TAP. */
export class CreateCell extends CircuitCell {
  static override readonly NAME = 'CREATE';
  static override readonly VALUE = 1;
  static override readonly IS_FIXED_SIZE = true;

  constructor(
    circId: number,
    readonly handshake: Uint8Array = new Uint8Array(TAP_C_HANDSHAKE_LEN),
    unused: Uint8Array = EMPTY,
  ) {
    super(circId, unused);
    expectLength(handshake, TAP_C_HANDSHAKE_LEN, 'TAP onion skin');
  }

  pack(lp: number | LinkProtocol): Uint8Array {
    return this.frame(lp, [this.handshake], this.circId);
  }

  static decodePayload(payload: Uint8Array, circId: number): CreateCell {
    const r = new Reader(payload, 'CREATE cell');
    return new CreateCell(circId, r.bytes(TAP_C_HANDSHAKE_LEN, 'onion skin'), r.rest());
  }
}

/** CREATED (2): a TAP reply (tor-spec 5.1). */
export class CreatedCell extends CircuitCell {
  static override readonly NAME = 'CREATED';
  static override readonly VALUE = 2;
  static override readonly IS_FIXED_SIZE = true;

  constructor(
    circId: number,
    readonly handshake: Uint8Array = new Uint8Array(TAP_S_HANDSHAKE_LEN),
    unused: Uint8Array = EMPTY,
  ) {
    super(circId, unused);
    expectLength(handshake, TAP_S_HANDSHAKE_LEN, 'TAP reply');
  }

  pack(lp: number | LinkProtocol): Uint8Array {
    return this.frame(lp, [this.handshake], this.circId);
  }

  static decodePayload(payload: Uint8Array, circId: number): CreatedCell {
    const r = new Reader(payload, 'CREATED cell');
    return new CreatedCell(circId, r.bytes(TAP_S_HANDSHAKE_LEN, 'TAP reply'), r.rest());
  }
}

/** DESTROY (4): closes a circuit, with a CloseReason (tor-spec 5.4). */
export class DestroyCell extends CircuitCell {
  static override readonly NAME = 'DESTROY';
  static override readonly VALUE = 4;
  static override readonly IS_FIXED_SIZE = true;
  readonly reason: string;
  readonly reasonInt: number;

  constructor(circId: number, reason: number | string = CloseReason.NONE, unused: Uint8Array = EMPTY) {
    super(circId, unused);
    [this.reason, this.reasonInt] = CloseReason.get(reason);
    if (this.reasonInt < 0 || this.reasonInt > 255) throw new BadArgumentError(`DESTROY reason must be 0-255, not ${this.reasonInt}`);
  }

  pack(lp: number | LinkProtocol): Uint8Array {
    return this.frame(lp, [Uint8Array.of(this.reasonInt)], this.circId);
  }

  static decodePayload(payload: Uint8Array, circId: number): DestroyCell {
    const r = new Reader(payload, 'DESTROY cell');
    return new DestroyCell(circId, r.u8('reason'), r.rest());
  }
}

/** CREATE_FAST (5): X, 20 random bytes (tor-spec 5.1.5). */
export class CreateFastCell extends CircuitCell {
  static override readonly NAME = 'CREATE_FAST';
  static override readonly VALUE = 5;
  static override readonly IS_FIXED_SIZE = true;
  readonly keyMaterial: Uint8Array;

  constructor(circId: number, keyMaterial?: Uint8Array, unused: Uint8Array = EMPTY) {
    super(circId, unused);
    this.keyMaterial = keyMaterial && keyMaterial.length ? expectLength(keyMaterial, HASH_LEN, 'Key material') : randomBytes(HASH_LEN);
  }

  pack(lp: number | LinkProtocol): Uint8Array {
    return this.frame(lp, [this.keyMaterial], this.circId);
  }

  static decodePayload(payload: Uint8Array, circId: number): CreateFastCell {
    const r = new Reader(payload, 'CREATE_FAST cell');
    return new CreateFastCell(circId, r.bytes(HASH_LEN, 'key material'), r.rest());
  }
}

/** CREATED_FAST (6): Y (`keyMaterial`) and KH (`derivativeKey`) (tor-spec 5.1.5). */
export class CreatedFastCell extends CircuitCell {
  static override readonly NAME = 'CREATED_FAST';
  static override readonly VALUE = 6;
  static override readonly IS_FIXED_SIZE = true;
  readonly keyMaterial: Uint8Array;
  readonly derivativeKey: Uint8Array;

  constructor(circId: number, derivativeKey: Uint8Array, keyMaterial?: Uint8Array, unused: Uint8Array = EMPTY) {
    super(circId, unused);
    this.keyMaterial = keyMaterial && keyMaterial.length ? expectLength(keyMaterial, HASH_LEN, 'Key material') : randomBytes(HASH_LEN);
    this.derivativeKey = expectLength(derivativeKey, HASH_LEN, 'Derivative key');
  }

  pack(lp: number | LinkProtocol): Uint8Array {
    return this.frame(lp, [this.keyMaterial, this.derivativeKey], this.circId);
  }

  static decodePayload(payload: Uint8Array, circId: number): CreatedFastCell {
    const r = new Reader(payload, 'CREATED_FAST cell');
    const keyMaterial = r.bytes(HASH_LEN, 'key material');
    const derivativeKey = r.bytes(HASH_LEN, 'derivative key');
    return new CreatedFastCell(circId, derivativeKey, keyMaterial, r.rest());
  }
}

/** VERSIONS (7): the link protocols we speak, u16 each (tor-spec 4.1). */
export class VersionsCell extends Cell {
  static override readonly NAME = 'VERSIONS';
  static override readonly VALUE = 7;
  static override readonly IS_FIXED_SIZE = false;
  readonly versions: readonly number[];

  constructor(versions: readonly number[]) {
    super();
    for (const v of versions) {
      if (!Number.isInteger(v) || v < 0 || v > 0xffff) throw new BadArgumentError(`link protocol versions are 0-65535, not ${v}`);
    }
    this.versions = [...versions];
  }

  pack(lp: number | LinkProtocol): Uint8Array {
    const payload = new Uint8Array(this.versions.length * 2);
    this.versions.forEach((v, i) => {
      payload[i * 2] = v >> 8;
      payload[i * 2 + 1] = v & 0xff;
    });
    return this.frame(lp, [payload]);
  }

  static decodePayload(payload: Uint8Array): VersionsCell {
    if (payload.length % 2) throw new DecodeError('VERSIONS cell', payload.length - 1, `payload has an odd length (${payload.length} bytes); it must be a list of u16 versions`);
    const r = new Reader(payload, 'VERSIONS cell');
    const versions: number[] = [];
    while (r.remaining) versions.push(r.u16('version'));
    return new VersionsCell(versions);
  }
}

/** NETINFO (8): time, the address we see the peer at, and our own addresses (tor-spec 4.5). */
export class NetinfoCell extends Cell {
  static override readonly NAME = 'NETINFO';
  static override readonly VALUE = 8;
  static override readonly IS_FIXED_SIZE = true;
  readonly timestamp: Date;
  readonly senderAddresses: readonly Address[];

  constructor(
    readonly receiverAddress: Address,
    senderAddresses: readonly Address[],
    timestamp: Date = new Date(0),
    unused: Uint8Array = EMPTY,
  ) {
    super(unused);
    if (senderAddresses.length > 255) throw new BadArgumentError(`NETINFO lists at most 255 addresses, not ${senderAddresses.length}`);
    const seconds = Math.floor(timestamp.getTime() / 1000);
    if (!(seconds >= 0 && seconds <= 0xffffffff)) throw new BadArgumentError(`NETINFO time must be between 1970 and 2106, not ${timestamp.toISOString?.() ?? timestamp}`);
    this.timestamp = new Date(seconds * 1000);
    this.senderAddresses = [...senderAddresses];
  }

  pack(lp: number | LinkProtocol): Uint8Array {
    const w = new Writer(64);
    w.u32(this.timestamp.getTime() / 1000);
    w.bytes(this.receiverAddress.pack());
    w.u8(this.senderAddresses.length);
    for (const addr of this.senderAddresses) w.bytes(addr.pack());
    return this.frame(lp, [w.finish()]);
  }

  static decodePayload(payload: Uint8Array): NetinfoCell {
    const r = new Reader(payload, 'NETINFO cell');
    const timestamp = r.u32('time');
    const receiver = Address.decode(r);
    const count = r.u8('address count');
    const senders: Address[] = [];
    for (let i = 0; i < count; i++) senders.push(Address.decode(r));
    return new NetinfoCell(receiver, senders, new Date(timestamp * 1000), r.rest());
  }
}

/** CREATE2 (10): `HTYPE u16 | HLEN u16 | HDATA` (tor-spec 5.1). */
export class Create2Cell extends CircuitCell {
  static override readonly NAME = 'CREATE2';
  static override readonly VALUE = 10;
  static override readonly IS_FIXED_SIZE = true;

  constructor(
    circId: number,
    readonly handshakeType: number,
    readonly handshakeData: Uint8Array,
    unused: Uint8Array = EMPTY,
  ) {
    super(circId, unused);
    if (!Number.isInteger(handshakeType) || handshakeType < 0 || handshakeType > 0xffff) throw new BadArgumentError(`HTYPE must be 0-65535, not ${handshakeType}`);
    if (handshakeData.length > FIXED_PAYLOAD_LEN - 4) throw new BadArgumentError(`CREATE2 handshake data is at most ${FIXED_PAYLOAD_LEN - 4} bytes, not ${handshakeData.length}`);
  }

  pack(lp: number | LinkProtocol): Uint8Array {
    const head = new Uint8Array(4);
    head[0] = this.handshakeType >> 8;
    head[1] = this.handshakeType;
    head[2] = this.handshakeData.length >> 8;
    head[3] = this.handshakeData.length;
    return this.frame(lp, [head, this.handshakeData], this.circId);
  }

  static decodePayload(payload: Uint8Array, circId: number): Create2Cell {
    const r = new Reader(payload, 'CREATE2 cell');
    const htype = r.u16('HTYPE');
    const hlen = r.u16('HLEN');
    if (hlen > r.remaining) r.fail(`HLEN is ${hlen}, but only ${r.remaining} bytes follow`, 2);
    return new Create2Cell(circId, htype, r.bytes(hlen), r.rest());
  }
}

/** CREATED2 (11): `HLEN u16 | HDATA` (tor-spec 5.1). Stem bug fixed: a circuit cell. */
export class Created2Cell extends CircuitCell {
  static override readonly NAME = 'CREATED2';
  static override readonly VALUE = 11;
  static override readonly IS_FIXED_SIZE = true;

  constructor(
    circId: number,
    readonly handshakeData: Uint8Array,
    unused: Uint8Array = EMPTY,
  ) {
    super(circId, unused);
    if (handshakeData.length > FIXED_PAYLOAD_LEN - 2) throw new BadArgumentError(`CREATED2 handshake data is at most ${FIXED_PAYLOAD_LEN - 2} bytes, not ${handshakeData.length}`);
  }

  pack(lp: number | LinkProtocol): Uint8Array {
    const head = Uint8Array.of(this.handshakeData.length >> 8, this.handshakeData.length & 0xff);
    return this.frame(lp, [head, this.handshakeData], this.circId);
  }

  static decodePayload(payload: Uint8Array, circId: number): Created2Cell {
    const r = new Reader(payload, 'CREATED2 cell');
    const hlen = r.u16('HLEN');
    if (hlen > r.remaining) r.fail(`HLEN is ${hlen}, but only ${r.remaining} bytes follow`, 0);
    return new Created2Cell(circId, r.bytes(hlen), r.rest());
  }
}

/** PADDING_NEGOTIATE (12): `version=0 | command (1 stop, 2 start) | ito_low_ms u16 | ito_high_ms u16` (padding-spec 2.2). */
export class PaddingNegotiateCell extends Cell {
  static override readonly NAME = 'PADDING_NEGOTIATE';
  static override readonly VALUE = 12;
  static override readonly IS_FIXED_SIZE = true;
  static readonly STOP = 1;
  static readonly START = 2;

  constructor(
    readonly command: number,
    readonly itoLowMs = 0,
    readonly itoHighMs = 0,
    readonly version = 0,
    unused: Uint8Array = EMPTY,
  ) {
    super(unused);
    for (const [name, v, max] of [['command', command, 0xff], ['version', version, 0xff], ['ito_low_ms', itoLowMs, 0xffff], ['ito_high_ms', itoHighMs, 0xffff]] as const) {
      if (!Number.isInteger(v) || v < 0 || v > max) throw new BadArgumentError(`PADDING_NEGOTIATE ${name} must be 0-${max}, not ${v}`);
    }
  }

  pack(lp: number | LinkProtocol): Uint8Array {
    return this.frame(lp, [Uint8Array.of(this.version, this.command, this.itoLowMs >> 8, this.itoLowMs & 0xff, this.itoHighMs >> 8, this.itoHighMs & 0xff)]);
  }

  static decodePayload(payload: Uint8Array): PaddingNegotiateCell {
    const r = new Reader(payload, 'PADDING_NEGOTIATE cell');
    const version = r.u8('version');
    const command = r.u8('command');
    const low = r.u16('ito_low_ms');
    const high = r.u16('ito_high_ms');
    return new PaddingNegotiateCell(command, low, high, version, r.rest());
  }
}

/** VPADDING (128): variable-length padding, ignored by the receiver. */
export class VPaddingCell extends Cell {
  static override readonly NAME = 'VPADDING';
  static override readonly VALUE = 128;
  static override readonly IS_FIXED_SIZE = false;
  readonly payload: Uint8Array;

  /** Give `size` (random payload) or `payload`, or both if they agree. */
  constructor(size?: number, payload?: Uint8Array) {
    super();
    if (size === undefined && payload === undefined) throw new BadArgumentError('VPaddingCell constructor must specify payload or size');
    if (size !== undefined && (!Number.isInteger(size) || size < 0)) throw new BadArgumentError(`VPaddingCell size (${size}) cannot be negative`);
    if (size !== undefined && payload !== undefined && size !== payload.length) {
      throw new BadArgumentError(`VPaddingCell constructor specified both a size of ${size} bytes and payload of ${payload.length} bytes`);
    }
    this.payload = payload ?? randomBytes(size!);
  }

  pack(lp: number | LinkProtocol): Uint8Array {
    return this.frame(lp, [this.payload]);
  }

  static decodePayload(payload: Uint8Array): VPaddingCell {
    return new VPaddingCell(undefined, payload);
  }
}

/** CERTS (129): `N u8 | N × (type u8 | len u16 | body)` (tor-spec 4.2). */
export class CertsCell extends Cell {
  static override readonly NAME = 'CERTS';
  static override readonly VALUE = 129;
  static override readonly IS_FIXED_SIZE = false;
  readonly certificates: readonly Certificate[];

  constructor(certificates: readonly Certificate[], unused: Uint8Array = EMPTY) {
    super(unused);
    if (certificates.length > 255) throw new BadArgumentError(`a CERTS cell holds at most 255 certificates, not ${certificates.length}`);
    this.certificates = [...certificates];
  }

  pack(lp: number | LinkProtocol): Uint8Array {
    return this.frame(lp, [Uint8Array.of(this.certificates.length), ...this.certificates.map((c) => c.pack())]);
  }

  static decodePayload(payload: Uint8Array): CertsCell {
    const r = new Reader(payload, 'CERTS cell');
    const count = r.u8('certificate count');
    const certs: Certificate[] = [];
    for (let i = 0; i < count; i++) {
      if (!r.remaining) r.fail(`CERTS cell indicates it should have ${count} certificates, but only contained ${certs.length}`);
      certs.push(Certificate.decode(r));
    }
    return new CertsCell(certs, r.rest());
  }
}

/** AUTH_CHALLENGE (130): `challenge[32] | N u16 | N × method u16` (tor-spec 4.3). */
export class AuthChallengeCell extends Cell {
  static override readonly NAME = 'AUTH_CHALLENGE';
  static override readonly VALUE = 130;
  static override readonly IS_FIXED_SIZE = false;
  readonly challenge: Uint8Array;
  readonly methods: readonly number[];

  constructor(methods: readonly number[], challenge?: Uint8Array, unused: Uint8Array = EMPTY) {
    super(unused);
    this.challenge = challenge && challenge.length ? expectLength(challenge, AUTH_CHALLENGE_SIZE, 'AUTH_CHALLENGE') : randomBytes(AUTH_CHALLENGE_SIZE);
    for (const m of methods) if (!Number.isInteger(m) || m < 0 || m > 0xffff) throw new BadArgumentError(`AUTH_CHALLENGE methods are 0-65535, not ${m}`);
    this.methods = [...methods];
  }

  pack(lp: number | LinkProtocol): Uint8Array {
    const w = new Writer(AUTH_CHALLENGE_SIZE + 2 + this.methods.length * 2);
    w.bytes(this.challenge).u16(this.methods.length);
    for (const m of this.methods) w.u16(m);
    return this.frame(lp, [w.finish()]);
  }

  static decodePayload(payload: Uint8Array): AuthChallengeCell {
    const minSize = AUTH_CHALLENGE_SIZE + 2;
    if (payload.length < minSize) throw new DecodeError('AUTH_CHALLENGE cell', 0, `AUTH_CHALLENGE payload should be at least ${minSize} bytes, but was ${payload.length}`);
    const r = new Reader(payload, 'AUTH_CHALLENGE cell');
    const challenge = r.bytes(AUTH_CHALLENGE_SIZE);
    const count = r.u16('method count');
    if (r.remaining < count * 2) r.fail(`AUTH_CHALLENGE should have ${count} methods, but only had ${r.remaining} bytes for it`);
    const methods: number[] = [];
    for (let i = 0; i < count; i++) methods.push(r.u16('method'));
    return new AuthChallengeCell(methods, challenge, r.rest());
  }
}

/** AUTHENTICATE (131): `AuthType u16 | AuthLen u16 | Authentication` (tor-spec 4.4). Clients that don't authenticate never send it. */
export class AuthenticateCell extends Cell {
  static override readonly NAME = 'AUTHENTICATE';
  static override readonly VALUE = 131;
  static override readonly IS_FIXED_SIZE = false;

  constructor(
    readonly authType: number,
    readonly authentication: Uint8Array,
    unused: Uint8Array = EMPTY,
  ) {
    super(unused);
    if (!Number.isInteger(authType) || authType < 0 || authType > 0xffff) throw new BadArgumentError(`AuthType must be 0-65535, not ${authType}`);
    if (authentication.length > 0xffff - 4) throw new BadArgumentError(`authentication is at most ${0xffff - 4} bytes`);
  }

  pack(lp: number | LinkProtocol): Uint8Array {
    const head = Uint8Array.of(this.authType >> 8, this.authType & 0xff, this.authentication.length >> 8, this.authentication.length & 0xff);
    return this.frame(lp, [head, this.authentication]);
  }

  static decodePayload(payload: Uint8Array): AuthenticateCell {
    const r = new Reader(payload, 'AUTHENTICATE cell');
    const type = r.u16('AuthType');
    const len = r.u16('AuthLen');
    if (len > r.remaining) r.fail(`AuthLen is ${len}, but only ${r.remaining} bytes follow`, 2);
    return new AuthenticateCell(type, r.bytes(len), r.rest());
  }
}

/** AUTHORIZE (132): reserved by tor-spec 3 ("not yet used"); its payload is kept whole. */
export class AuthorizeCell extends Cell {
  static override readonly NAME = 'AUTHORIZE';
  static override readonly VALUE = 132;
  static override readonly IS_FIXED_SIZE = false;

  constructor(readonly payload: Uint8Array = EMPTY) {
    super();
  }

  pack(lp: number | LinkProtocol): Uint8Array {
    return this.frame(lp, [this.payload]);
  }

  static decodePayload(payload: Uint8Array): AuthorizeCell {
    return new AuthorizeCell(payload);
  }
}

// ---------------------------------------------------------------------------------
// Registry

const CELL_CLASSES: readonly CellClass[] = [
  PaddingCell,
  CreateCell,
  CreatedCell,
  RelayCell,
  DestroyCell,
  CreateFastCell,
  CreatedFastCell,
  VersionsCell,
  NetinfoCell,
  RelayEarlyCell,
  Create2Cell,
  Created2Cell,
  PaddingNegotiateCell,
  VPaddingCell,
  CertsCell,
  AuthChallengeCell,
  AuthenticateCell,
  AuthorizeCell,
];
registerCells(CELL_CLASSES);

/** Every cell class, in command order. */
export const CELL_TYPES: readonly CellClass[] = CELL_CLASSES;
