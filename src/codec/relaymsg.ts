/**
 * relaymsg — the bodies of relay messages (the `data` of a RELAY cell): BEGIN,
 * BEGIN_DIR, CONNECTED, DATA, END, SENDME (v0 and v1), EXTEND2, EXTENDED2, TRUNCATE,
 * TRUNCATED, DROP, RESOLVE, RESOLVED; and which commands need a stream id.
 *
 * Layer: codec core. No I/O. Bodies never include the relay header or padding (the
 * RELAY cell owns those). `encode()` → bytes; `X.decode(body)` → X or DecodeError.
 */
import { isIPv6 } from 'node:net';
import { BadArgumentError, DecodeError } from '../errors.js';
import { EMPTY, Reader, Writer, latin1 } from './bytes.js';
import { Address, AddrType, CloseReason, EndReason, LinkSpecifier } from './datatype.js';
import { RELAY_DATA_MAX } from './relaycell.js';

/** Does a relay command need a stream id, forbid one, or allow both (tor-spec 6.1, 7)? */
export type StreamIdRule = 'required' | 'disallowed' | 'either';

/** Commands about one stream (tor-spec 6.1; XON/XOFF prop324). */
const STREAM_COMMANDS = new Set([1, 2, 3, 4, 11, 12, 13, 43, 44]);
/** Commands about the whole circuit: extend/truncate, DROP, conflux, onion services, padding. */
const CIRCUIT_COMMANDS = new Set([6, 7, 8, 9, 10, 14, 15, 19, 20, 21, 22, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42]);

/**
 * Whether a relay command needs a stream id, forbids one, or allows either: SENDME is
 * stream- or circuit-level; an unknown command is not ours to judge (it is dropped,
 * tor-spec 6.1), so it allows either.
 */
export function streamIdRule(command: number): StreamIdRule {
  if (STREAM_COMMANDS.has(command)) return 'required';
  if (CIRCUIT_COMMANDS.has(command)) return 'disallowed';
  return 'either';
}

/** A relay message body with its command. */
export interface RelayMessage {
  readonly command: number;
  encode(): Uint8Array;
}

function u32(value: number, what: string): number {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) throw new BadArgumentError(`${what} must be a 32-bit unsigned integer, not ${value}`);
  return value;
}

function readCString(r: Reader, field: string): string {
  const start = r.pos;
  const end = r.buf.indexOf(0, start);
  if (end < 0 || end >= r.end) r.fail(`${field} is not NUL-terminated`, start);
  const text = latin1.decode(r.buf.subarray(start, end));
  r.pos = end + 1;
  return text;
}

// ---------------------------------------------------------------------------------

/** BEGIN flags (tor-spec 6.2). */
export const BeginFlags = {
  IPV6_OK: 1 << 0,
  IPV4_NOT_OK: 1 << 1,
  IPV6_PREFERRED: 1 << 2,
} as const;

/** A hostname, an IPv4 address, or an IPv6 address in brackets (tor-spec 6.2). */
function isBeginAddress(address: string): boolean {
  if (address.startsWith('[') && address.endsWith(']')) return isIPv6(address.slice(1, -1));
  return address.length > 0 && address.length <= 255 && !/[\0:\s]/.test(address);
}

/** RELAY_BEGIN: `ADDRESS:PORT\0 | FLAGS u32` (tor-spec 6.2). IPv6 addresses go in brackets. */
export class BeginMsg implements RelayMessage {
  readonly command = 1;

  constructor(
    readonly address: string,
    readonly port: number,
    readonly flags = 0,
    /** Leave FLAGS out when they are 0, as tor 0.4.9 clients do (Stem always writes them). */
    readonly omitZeroFlags = false,
  ) {
    if (!isBeginAddress(address)) {
      throw new BadArgumentError(`'${address}' is not a hostname, IPv4 address or bracketed IPv6 address`);
    }
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new BadArgumentError(`port must be 1-65535, not ${port}`);
    u32(flags, 'BEGIN flags');
  }

  encode(): Uint8Array {
    const w = new Writer(this.address.length + 12).bytes(latin1.encode(`${this.address.toLowerCase()}:${this.port}`)).u8(0);
    return (this.flags === 0 && this.omitZeroFlags ? w : w.u32(this.flags)).finish();
  }

  static decode(body: Uint8Array): BeginMsg {
    const r = new Reader(body, 'RELAY_BEGIN body');
    const addrport = readCString(r, 'ADDRPORT');
    const colon = addrport.lastIndexOf(':');
    const port = Number(addrport.slice(colon + 1));
    if (colon < 1 || !/^\d{1,5}$/.test(addrport.slice(colon + 1))) r.fail(`ADDRPORT ${JSON.stringify(addrport)} has no :PORT`, 0);
    // Flags are optional for old clients (tor-spec 6.2: servers treat a missing FLAGS as 0).
    const flags = r.remaining >= 4 ? r.u32('FLAGS') : 0;
    try {
      return new BeginMsg(addrport.slice(0, colon), port, flags);
    } catch (err) {
      if (err instanceof BadArgumentError) throw new DecodeError('RELAY_BEGIN body', 0, err.message);
      throw err;
    }
  }
}

/** RELAY_BEGIN_DIR: an all-zero (empty) body (tor-spec 6.2.1). */
export class BeginDirMsg implements RelayMessage {
  readonly command = 13;

  encode(): Uint8Array {
    return EMPTY;
  }

  static decode(): BeginDirMsg {
    return new BeginDirMsg(); // relays MUST ignore the payload
  }
}

/**
 * RELAY_CONNECTED: empty (BEGIN_DIR), or `IPv4 | TTL`, or `0000 | 06 | IPv6 | TTL`
 * (tor-spec 6.2). `address` is undefined for an empty body.
 */
export class ConnectedMsg implements RelayMessage {
  readonly command = 4;

  constructor(
    readonly address?: Address,
    readonly ttl = 0,
  ) {
    if (address && address.type !== AddrType.IPv4 && address.type !== AddrType.IPv6) throw new BadArgumentError(`CONNECTED carries an IPv4 or IPv6 address, not ${address.type}`);
    u32(ttl, 'TTL');
  }

  encode(): Uint8Array {
    if (!this.address) return EMPTY;
    const w = new Writer(25);
    if (this.address.type === AddrType.IPv6) w.u32(0).u8(6);
    return w.bytes(this.address.valueBin).u32(this.ttl).finish();
  }

  static decode(body: Uint8Array): ConnectedMsg {
    if (body.length === 0) return new ConnectedMsg();
    const r = new Reader(body, 'RELAY_CONNECTED body');
    const v4 = r.bytes(4, 'IPv4 address');
    if (v4[0] || v4[1] || v4[2] || v4[3]) return new ConnectedMsg(new Address(v4.slice(), 4), r.remaining >= 4 ? r.u32('TTL') : 0);
    if (r.remaining === 0) return new ConnectedMsg(new Address(v4.slice(), 4)); // all-zero BEGIN_DIR reply
    const type = r.u8('address type');
    if (type !== 6) r.fail(`expected address type 6 (IPv6) after four zero bytes, got ${type}`, 4);
    const v6 = r.bytes(16, 'IPv6 address');
    return new ConnectedMsg(new Address(v6.slice(), 6), r.u32('TTL'));
  }
}

/** RELAY_DATA: up to 498 bytes of stream data. */
export class DataMsg implements RelayMessage {
  readonly command = 2;

  constructor(readonly data: Uint8Array) {
    if (data.length > RELAY_DATA_MAX) throw new BadArgumentError(`RELAY_DATA holds at most ${RELAY_DATA_MAX} bytes, not ${data.length}`);
  }

  encode(): Uint8Array {
    return this.data;
  }

  static decode(body: Uint8Array): DataMsg {
    return new DataMsg(body);
  }
}

/**
 * RELAY_END: `reason u8`, plus `address | TTL` for EXITPOLICY (tor-spec 6.3). An empty
 * body means MISC; unknown reasons are kept.
 */
export class EndMsg implements RelayMessage {
  readonly command = 3;
  readonly reason: string;
  readonly reasonInt: number;

  constructor(
    reason: number | string = EndReason.MISC,
    readonly address?: Address,
    readonly ttl?: number,
  ) {
    [this.reason, this.reasonInt] = EndReason.get(reason);
    if (this.reasonInt < 0 || this.reasonInt > 255) throw new BadArgumentError(`END reason must be 0-255, not ${this.reasonInt}`);
    if (address && address.type !== AddrType.IPv4 && address.type !== AddrType.IPv6) throw new BadArgumentError(`END carries an IPv4 or IPv6 address, not ${address.type}`);
    if (ttl !== undefined) u32(ttl, 'TTL');
  }

  encode(): Uint8Array {
    const w = new Writer(21).u8(this.reasonInt);
    if (this.address) {
      w.bytes(this.address.valueBin);
      if (this.ttl !== undefined) w.u32(this.ttl);
    }
    return w.finish();
  }

  static decode(body: Uint8Array): EndMsg {
    if (body.length === 0) return new EndMsg(EndReason.MISC);
    const reason = body[0]!;
    if (reason !== 4) return new EndMsg(reason);
    // EXITPOLICY: "If the address is absent or is the wrong length, the RELAY_END message
    // should be processed anyway"; an absent TTL means 0xffffffff.
    const rest = body.subarray(1);
    if (rest.length === 4 || rest.length === 8) return new EndMsg(reason, new Address(rest.slice(0, 4), 4), rest.length === 8 ? Buffer.from(rest).readUInt32BE(4) : 0xffffffff);
    if (rest.length === 16 || rest.length === 20) return new EndMsg(reason, new Address(rest.slice(0, 16), 6), rest.length === 20 ? Buffer.from(rest).readUInt32BE(16) : 0xffffffff);
    return new EndMsg(reason);
  }
}

/**
 * RELAY_SENDME (tor-spec 7.3.1, prop289): version 0 has an empty body (or `00`);
 * version 1 is `01 | DATA_LEN u16 = 20 | DIGEST[20]`.
 */
export class SendmeMsg implements RelayMessage {
  readonly command = 5;

  constructor(
    readonly version: 0 | 1 = 0,
    readonly digest?: Uint8Array,
  ) {
    if (version === 1 && (!digest || (digest.length !== 20 && digest.length !== 16))) {
      throw new BadArgumentError(`a v1 SENDME carries a 20-byte digest (tor1) or a 16-byte tag (CGO), not ${digest?.length ?? 'none'}`);
    }
    if (version === 0 && digest) throw new BadArgumentError('a v0 SENDME carries no digest');
  }

  encode(): Uint8Array {
    if (this.version === 0) return EMPTY;
    return new Writer(3 + this.digest!.length).u8(1).u16(this.digest!.length).bytes(this.digest!).finish();
  }

  static decode(body: Uint8Array): SendmeMsg {
    if (body.length === 0) return new SendmeMsg(0);
    const r = new Reader(body, 'RELAY_SENDME body');
    const version = r.u8('version');
    if (version === 0) return new SendmeMsg(0);
    if (version !== 1) r.fail(`unknown SENDME version ${version}`, 0);
    const len = r.u16('DATA_LEN');
    // sendme.c tag_len_ok: 20 (tor1's digest) or 16 (CGO's tag); which one the hop expects is the circuit's check.
    if (len !== 20 && len !== 16) r.fail(`a v1 SENDME's DATA_LEN must be 20 (tor1) or 16 (CGO), not ${len}`, 1);
    return new SendmeMsg(1, r.bytes(len, 'digest').slice());
  }
}

/** RELAY_EXTEND2: `NSPEC u8 | specs | HTYPE u16 | HLEN u16 | HDATA` (tor-spec 5.1.2). */
export class Extend2Msg implements RelayMessage {
  readonly command = 14;

  constructor(
    readonly linkSpecifiers: readonly LinkSpecifier[],
    readonly handshakeType: number,
    readonly handshakeData: Uint8Array,
  ) {
    if (linkSpecifiers.length > 255) throw new BadArgumentError('EXTEND2 lists at most 255 link specifiers');
    if (!Number.isInteger(handshakeType) || handshakeType < 0 || handshakeType > 0xffff) throw new BadArgumentError(`HTYPE must be 0-65535, not ${handshakeType}`);
    if (handshakeData.length > 0xffff) throw new BadArgumentError('HDATA is too long');
  }

  encode(): Uint8Array {
    const w = new Writer(256).u8(this.linkSpecifiers.length);
    for (const spec of this.linkSpecifiers) w.bytes(spec.pack());
    return w.u16(this.handshakeType).u16(this.handshakeData.length).bytes(this.handshakeData).finish();
  }

  static decode(body: Uint8Array): Extend2Msg {
    const r = new Reader(body, 'RELAY_EXTEND2 body');
    const count = r.u8('NSPEC');
    const specs: LinkSpecifier[] = [];
    for (let i = 0; i < count; i++) specs.push(LinkSpecifier.decode(r));
    const htype = r.u16('HTYPE');
    const hlen = r.u16('HLEN');
    return new Extend2Msg(specs, htype, r.bytes(hlen, 'HDATA').slice());
  }
}

/** RELAY_EXTENDED2: the CREATED2 body, `HLEN u16 | HDATA`. */
export class Extended2Msg implements RelayMessage {
  readonly command = 15;

  constructor(readonly handshakeData: Uint8Array) {
    if (handshakeData.length > 0xffff) throw new BadArgumentError('HDATA is too long');
  }

  encode(): Uint8Array {
    return new Writer(2 + this.handshakeData.length).u16(this.handshakeData.length).bytes(this.handshakeData).finish();
  }

  static decode(body: Uint8Array): Extended2Msg {
    const r = new Reader(body, 'RELAY_EXTENDED2 body');
    const hlen = r.u16('HLEN');
    return new Extended2Msg(r.bytes(hlen, 'HDATA').slice());
  }
}

/** RELAY_TRUNCATE: empty body. */
export class TruncateMsg implements RelayMessage {
  readonly command = 8;
  encode(): Uint8Array {
    return EMPTY;
  }
  static decode(): TruncateMsg {
    return new TruncateMsg();
  }
}

/** RELAY_TRUNCATED: `reason u8`, a CloseReason. */
export class TruncatedMsg implements RelayMessage {
  readonly command = 9;
  readonly reason: string;
  readonly reasonInt: number;

  constructor(reason: number | string = CloseReason.NONE) {
    [this.reason, this.reasonInt] = CloseReason.get(reason);
    if (this.reasonInt < 0 || this.reasonInt > 255) throw new BadArgumentError(`TRUNCATED reason must be 0-255, not ${this.reasonInt}`);
  }

  encode(): Uint8Array {
    return Uint8Array.of(this.reasonInt);
  }

  static decode(body: Uint8Array): TruncatedMsg {
    return new TruncatedMsg(new Reader(body, 'RELAY_TRUNCATED body').u8('reason'));
  }
}

/** RELAY_DROP: a long-range dummy; its body is ignored. */
export class DropMsg implements RelayMessage {
  readonly command = 10;
  constructor(readonly body: Uint8Array = EMPTY) {}
  encode(): Uint8Array {
    return this.body;
  }
  static decode(body: Uint8Array): DropMsg {
    return new DropMsg(body);
  }
}

/** RELAY_RESOLVE: `hostname\0` (or in-addr.arpa name) (tor-spec 6.4). */
export class ResolveMsg implements RelayMessage {
  readonly command = 11;
  constructor(readonly hostname: string) {
    if (!hostname || hostname.includes('\0')) throw new BadArgumentError(`'${hostname}' is not a hostname`);
  }
  encode(): Uint8Array {
    return new Writer(this.hostname.length + 1).bytes(latin1.encode(this.hostname)).u8(0).finish();
  }
  static decode(body: Uint8Array): ResolveMsg {
    return new ResolveMsg(readCString(new Reader(body, 'RELAY_RESOLVE body'), 'hostname'));
  }
}

/** One answer of a RESOLVED message. */
export interface ResolvedAnswer {
  address: Address;
  ttl: number;
}

/** RELAY_RESOLVED: `N × (type u8 | len u8 | value | TTL u32)` (tor-spec 6.4). */
export class ResolvedMsg implements RelayMessage {
  readonly command = 12;
  constructor(readonly answers: readonly ResolvedAnswer[]) {
    for (const a of answers) u32(a.ttl, 'TTL');
  }
  encode(): Uint8Array {
    const w = new Writer(64);
    for (const { address, ttl } of this.answers) w.bytes(address.pack()).u32(ttl);
    return w.finish();
  }
  static decode(body: Uint8Array): ResolvedMsg {
    const r = new Reader(body, 'RELAY_RESOLVED body');
    const answers: ResolvedAnswer[] = [];
    while (r.remaining) {
      const address = Address.decode(r);
      answers.push({ address, ttl: r.u32('TTL') });
    }
    return new ResolvedMsg(answers);
  }
}

/** A relay message we have no body codec for (or an unknown command). */
export class UnknownRelayMsg implements RelayMessage {
  constructor(
    readonly command: number,
    readonly body: Uint8Array,
  ) {}
  encode(): Uint8Array {
    return this.body;
  }
}

const DECODERS: ReadonlyMap<number, (body: Uint8Array) => RelayMessage> = new Map<number, (body: Uint8Array) => RelayMessage>([
  [1, BeginMsg.decode],
  [2, DataMsg.decode],
  [3, EndMsg.decode],
  [4, ConnectedMsg.decode],
  [5, SendmeMsg.decode],
  [8, TruncateMsg.decode],
  [9, TruncatedMsg.decode],
  [10, DropMsg.decode],
  [11, ResolveMsg.decode],
  [12, ResolvedMsg.decode],
  [13, BeginDirMsg.decode],
  [14, Extend2Msg.decode],
  [15, Extended2Msg.decode],
]);

/** Decodes a relay message body by command; unknown commands give UnknownRelayMsg. */
export function decodeRelayMessage(command: number, body: Uint8Array): RelayMessage {
  const decode = DECODERS.get(command);
  return decode ? decode(body) : new UnknownRelayMsg(command, body);
}
