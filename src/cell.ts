/**
 * cell — Stem's `stem.client.cell` in TypeScript: every channel cell of tor-spec 3,
 * with `pack(linkProtocol)`, `Cell.pop` / `Cell.unpack`, `cellByName` / `cellByValue`.
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
import { BadArgumentError, DecodeError, IncompleteError, hexExcerpt } from './errors.js';
import { EMPTY, Reader, Writer, allocPooled, bytesEqual } from './codec/bytes.js';
import {
  Address,
  Certificate,
  CloseReason,
  FIXED_PAYLOAD_LEN,
  HASH_LEN,
  LinkProtocol,
  RelayCommand,
  Size,
} from './datatype.js';

export { FIXED_PAYLOAD_LEN };

/** Fresh random bytes as a plain Uint8Array (what Stem's constructors default to). */
function randomBytes(n: number): Uint8Array {
  return new Uint8Array(nodeRandomBytes(n));
}
export const AUTH_CHALLENGE_SIZE = 32;
export const CELL_TYPE_SIZE = Size.CHAR;
export const PAYLOAD_LEN_SIZE = Size.SHORT;
export const RELAY_DIGEST_SIZE = Size.LONG;
/** Link protocols we offer by default (tor 0.4.9 speaks 3-5). */
export const DEFAULT_LINK_PROTOCOLS: readonly number[] = Object.freeze([3, 4, 5]);
/** Largest `Length` of a RELAY cell's data (tor-spec 6.1: PAYLOAD_LEN - 11). */
export const RELAY_DATA_MAX = FIXED_PAYLOAD_LEN - 11;
/** Header of a RELAY payload: command, recognized, stream id, digest, length. */
export const RELAY_HEADER_LEN = 11;
/** TAP handshake lengths (tor-spec 5.1.3): onion skin and reply. TAP is obsolete. */
export const TAP_C_HANDSHAKE_LEN = 186;
export const TAP_S_HANDSHAKE_LEN = 148;

/** Relay commands that need a stream id (Stem's list, tor-spec 6.1). */
export const STREAM_ID_REQUIRED: readonly string[] = Object.freeze([
  RelayCommand.BEGIN,
  RelayCommand.DATA,
  RelayCommand.END,
  RelayCommand.CONNECTED,
  RelayCommand.RESOLVE,
  RelayCommand.RESOLVED,
  RelayCommand.BEGIN_DIR,
]);

/** Relay commands that concern the circuit and must not carry a stream id. */
export const STREAM_ID_DISALLOWED: readonly string[] = Object.freeze([
  RelayCommand.EXTEND,
  RelayCommand.EXTENDED,
  RelayCommand.TRUNCATE,
  RelayCommand.TRUNCATED,
  RelayCommand.DROP,
  RelayCommand.EXTEND2,
  RelayCommand.EXTENDED2,
]);

const STREAM_ID_REQUIRED_INTS = new Set(STREAM_ID_REQUIRED.map((name) => RelayCommand.toInt(name)));
const STREAM_ID_DISALLOWED_INTS = new Set(STREAM_ID_DISALLOWED.map((name) => RelayCommand.toInt(name)));

/** Is a command variable-length (tor-spec 3: VERSIONS, or 128 and up)? */
export function isVariableLengthCommand(command: number): boolean {
  return command === 7 || command >= 128;
}

// ---------------------------------------------------------------------------------
// Framing

/** One undecoded cell: its circuit id, command and a view of its payload. */
export interface CellFrame {
  circId: number;
  command: number;
  /** A view into the input (fixed cells: 509 bytes; variable cells: `Len` bytes). */
  payload: Uint8Array;
  /** Bytes the whole cell occupied. */
  length: number;
}

/**
 * Reads the frame at `offset`, or returns `needed` (> 0): how many more bytes are
 * required before a frame can be read. Never throws.
 */
export function readFrame(buf: Uint8Array, offset: number, lp: LinkProtocol): CellFrame | number {
  const circIdLen = lp.circIdSize.size;
  const available = buf.length - offset;
  if (available < circIdLen + 1) return circIdLen + 1 - available;
  const circId =
    circIdLen === 4
      ? ((buf[offset]! << 24) >>> 0) + ((buf[offset + 1]! << 16) | (buf[offset + 2]! << 8) | buf[offset + 3]!)
      : (buf[offset]! << 8) | buf[offset + 1]!;
  const command = buf[offset + circIdLen]!;
  let start = offset + circIdLen + 1;
  let payloadLen = FIXED_PAYLOAD_LEN;
  if (isVariableLengthCommand(command)) {
    if (available < circIdLen + 3) return circIdLen + 3 - available;
    payloadLen = (buf[start]! << 8) | buf[start + 1]!;
    start += 2;
  }
  const end = start + payloadLen;
  if (end > buf.length) return end - buf.length;
  return { circId, command, payload: buf.subarray(start, end), length: end - offset };
}

/** Writes a cell's circuit id (2 or 4 bytes) and command at the start of `cell`. */
export function writeCellHeader(cell: Uint8Array, circId: number, circIdLen: number, command: number): void {
  if (circIdLen === 4) {
    cell[0] = circId >>> 24;
    cell[1] = circId >>> 16;
    cell[2] = circId >>> 8;
    cell[3] = circId;
  } else {
    cell[0] = circId >> 8;
    cell[1] = circId;
  }
  cell[circIdLen] = command;
}

/** Writes a cell header and payload (padding fixed cells with zeros) into a new buffer. */
function frameCell(
  name: string,
  command: number,
  fixedSize: boolean,
  lp: LinkProtocol,
  circId: number,
  parts: readonly Uint8Array[],
): Uint8Array {
  let payloadLen = 0;
  for (const p of parts) payloadLen += p.length;
  const circIdLen = lp.circIdSize.size;
  if (circIdLen === 2 ? circId > 0xffff : circId > 0xffffffff) {
    throw new BadArgumentError(`circuit id ${circId} does not fit the ${circIdLen}-byte field of link protocol ${lp.version}`);
  }
  let out: Uint8Array;
  let at = circIdLen + 1;
  if (fixedSize) {
    if (payloadLen > FIXED_PAYLOAD_LEN) {
      throw new BadArgumentError(
        `Cell of type ${name} is too large (${circIdLen + 1 + payloadLen} bytes), must not be more than ${lp.fixedCellLength}. Check payload size (was ${payloadLen} bytes)`,
      );
    }
    out = allocPooled(lp.fixedCellLength);
  } else {
    if (payloadLen > 0xffff) throw new BadArgumentError(`${name} payload is ${payloadLen} bytes; a variable-length cell holds at most 65535`);
    out = allocPooled(circIdLen + 3 + payloadLen);
    out[at] = payloadLen >> 8;
    out[at + 1] = payloadLen & 0xff;
    at += 2;
  }
  writeCellHeader(out, circId, circIdLen, command);
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

// ---------------------------------------------------------------------------------
// Cell base classes

/** A cell class: its static NAME, VALUE, IS_FIXED_SIZE and decoder. */
export interface CellClass {
  readonly NAME: string;
  readonly VALUE: number;
  readonly IS_FIXED_SIZE: boolean;
  readonly IS_CIRCUIT_CELL: boolean;
  /** Decodes a payload (fixed cells: all 509 bytes). */
  decodePayload(payload: Uint8Array, circId: number, lp: LinkProtocol): Cell;
}

export interface PopResult {
  cell: Cell;
  rest: Uint8Array;
}

function valueEquals(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a instanceof Uint8Array && b instanceof Uint8Array) return bytesEqual(a, b);
  if (a instanceof Date && b instanceof Date) return a.getTime() === b.getTime();
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => valueEquals(x, b[i]));
  if (a && typeof a === 'object' && 'equals' in a && typeof a.equals === 'function') return (a.equals as (o: unknown) => boolean)(b);
  return false;
}

/**
 * Base of every cell. `unused` is the padding after a fixed cell's fields (kept so that
 * decode∘encode is the identity); like Stem, it is not part of equality.
 */
export abstract class Cell {
  static readonly NAME: string = 'UNKNOWN';
  static readonly VALUE: number = -1;
  static readonly IS_FIXED_SIZE: boolean = false;
  static readonly IS_CIRCUIT_CELL: boolean = false;

  constructor(public unused: Uint8Array = EMPTY) {}

  private get cls(): CellClass {
    return this.constructor as unknown as CellClass;
  }

  /** The cell command's name ('NETINFO'). */
  get name(): string {
    return this.cls.NAME;
  }

  /** The cell command's number (8). */
  get value(): number {
    return this.cls.VALUE;
  }

  /**
   * Encodes the cell for a link protocol: the circuit id is 2 bytes for versions ≤ 3,
   * 4 bytes after (a VERSIONS cell opening a connection is packed with 2, tor-spec 4.1).
   * The bytes may share an ArrayBuffer with other packed cells (a pool, as Node's Buffer).
   */
  abstract pack(linkProtocol: number | LinkProtocol): Uint8Array;

  /** Frames `payload` (and `unused`) as this cell type. Stem's `_pack`. */
  protected frame(linkProtocol: number | LinkProtocol, payload: readonly Uint8Array[], circId?: number): Uint8Array {
    const cls = this.cls;
    if (cls.IS_CIRCUIT_CELL) {
      if (circId === undefined) throw new BadArgumentError(`${cls.NAME} cells require a circuit identifier`);
      if (!Number.isInteger(circId) || circId < 1) throw new BadArgumentError(`Circuit identifiers must a positive integer, not ${circId}`);
    } else if (circId !== undefined) {
      throw new BadArgumentError(`${cls.NAME} cells should not specify a circuit identifier`);
    }
    const parts = this.unused.length ? [...payload, this.unused] : payload;
    return frameCell(cls.NAME, cls.VALUE, cls.IS_FIXED_SIZE, LinkProtocol.of(linkProtocol), circId ?? 0, parts);
  }

  /** Field-by-field equality, ignoring `unused` (as Stem's hash does). */
  equals(other: unknown): boolean {
    if (!(other instanceof Cell) || other.constructor !== this.constructor) return false;
    for (const key of Object.keys(this)) {
      if (key === 'unused') continue;
      if (!valueEquals((this as Record<string, unknown>)[key], (other as unknown as Record<string, unknown>)[key])) return false;
    }
    return true;
  }

  /**
   * Decodes the first cell of `content`: `{ cell, rest }`. Throws `IncompleteError` if
   * `content` holds only part of a cell, `DecodeError` if the cell is malformed.
   */
  static pop(content: Uint8Array, linkProtocol: number | LinkProtocol): PopResult {
    const lp = LinkProtocol.of(linkProtocol);
    const frame = readFrame(content, 0, lp);
    if (typeof frame === 'number') {
      const what = content.length > lp.circIdSize.size ? `${cellNameOf(content[lp.circIdSize.size]!)} cell` : 'cell header';
      throw new IncompleteError(what, content.length, frame, `truncated: ${content.length} bytes, at least ${frame} more needed (${hexExcerpt(content, 16)})`);
    }
    return { cell: decodeFrame(frame, lp), rest: frame.length === content.length ? EMPTY : content.subarray(frame.length) };
  }

  /** Like `pop`, but returns undefined (instead of throwing) when the cell is incomplete. */
  static tryPop(content: Uint8Array, linkProtocol: number | LinkProtocol): PopResult | undefined {
    const lp = LinkProtocol.of(linkProtocol);
    const frame = readFrame(content, 0, lp);
    if (typeof frame === 'number') return undefined;
    return { cell: decodeFrame(frame, lp), rest: content.subarray(frame.length) };
  }

  /** Decodes every cell of `content`; it must end on a cell boundary. */
  static unpack(content: Uint8Array, linkProtocol: number | LinkProtocol): Cell[] {
    const cells: Cell[] = [];
    let rest = content;
    while (rest.length) {
      const popped = Cell.pop(rest, linkProtocol);
      cells.push(popped.cell);
      rest = popped.rest;
    }
    return cells;
  }
}

/** A cell about one circuit: it carries a non-zero `circId`. */
export abstract class CircuitCell extends Cell {
  static override readonly IS_CIRCUIT_CELL: boolean = true;

  constructor(
    public circId: number,
    unused: Uint8Array = EMPTY,
  ) {
    super(unused);
  }
}

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

/** Something with a SHA-1 state we can read without finalizing (node's crypto.Hash). */
export interface DigestSource {
  copy(): { digest(): Uint8Array };
}

function digestToInt(digest: number | Uint8Array | DigestSource): number {
  if (typeof digest === 'number') {
    if (!Number.isInteger(digest) || digest < 0 || digest > 0xffffffff) throw new BadArgumentError(`RELAY cell digest must be a 32-bit unsigned integer, not ${digest}`);
    return digest;
  }
  if (digest instanceof Uint8Array) {
    if (digest.length < 4) throw new BadArgumentError(`RELAY cell digest needs at least 4 bytes, not ${digest.length}`);
    return RELAY_DIGEST_SIZE.unpack(digest.subarray(0, 4));
  }
  if (digest && typeof digest === 'object' && typeof digest.copy === 'function') return digestToInt(digest.copy().digest());
  throw new BadArgumentError(`RELAY cell digest must be a hash, bytes, or int but was a ${Array.isArray(digest) ? 'list' : typeof digest}`);
}

/**
 * RELAY (3): end-to-end data, shown here in plaintext (tor-spec 6.1):
 * `command u8 | recognized u16 | streamId u16 | digest u32 | length u16 | data | padding`.
 * (The client layer encrypts and decrypts payloads itself; this is the codec view.)
 */
export class RelayCell extends CircuitCell {
  static override readonly NAME: string = 'RELAY';
  static override readonly VALUE: number = 3;
  static override readonly IS_FIXED_SIZE = true;
  readonly command: string;
  readonly commandInt: number;
  readonly recognized: number;
  readonly streamId: number;
  readonly digest: number;
  readonly data: Uint8Array;

  constructor(
    circId: number,
    command: number | string,
    data: Uint8Array | string = EMPTY,
    digest: number | Uint8Array | DigestSource = 0,
    streamId = 0,
    recognized = 0,
    unused: Uint8Array = EMPTY,
  ) {
    super(circId, unused);
    if (typeof command === 'number' && command >= 0 && command <= 255 && Number.isInteger(command)) {
      this.commandInt = command;
      this.command = RelayCommand.nameOf(command);
    } else {
      [this.command, this.commandInt] = RelayCommand.get(command);
    }
    if (this.commandInt < 0 || this.commandInt > 255) throw new BadArgumentError(`relay command must be 0-255, not ${this.commandInt}`);
    if (!Number.isInteger(streamId) || streamId < 0 || streamId > 0xffff) throw new BadArgumentError(`stream id must be 0-65535, not ${streamId}`);
    if (!Number.isInteger(recognized) || recognized < 0 || recognized > 0xffff) throw new BadArgumentError(`'recognized' must be 0-65535, not ${recognized}`);
    this.recognized = recognized;
    this.streamId = streamId;
    this.digest = digestToInt(digest);
    this.data = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    if (this.data.length > RELAY_DATA_MAX) throw new BadArgumentError(`RELAY cell data is at most ${RELAY_DATA_MAX} bytes, not ${this.data.length}`);
    if (this.digest === 0) {
      if (!streamId && STREAM_ID_REQUIRED_INTS.has(this.commandInt)) throw new BadArgumentError(`${this.command} relay cells require a stream id`);
      if (streamId && STREAM_ID_DISALLOWED_INTS.has(this.commandInt)) {
        throw new BadArgumentError(`${this.command} relay cells concern the circuit itself and cannot have a stream id`);
      }
    }
  }

  /** The 509-byte payload: relay header, data, then `unused` (zero-filled to 509). */
  packPayload(): Uint8Array {
    const out = new Uint8Array(FIXED_PAYLOAD_LEN);
    this.writePayload(out);
    return out;
  }

  /** Writes the payload at `out[at…]` (509 bytes; the rest of `out` must be zero). */
  private writePayload(out: Uint8Array, at = 0): void {
    const room = FIXED_PAYLOAD_LEN - RELAY_HEADER_LEN - this.data.length;
    if (this.unused.length > room) throw new BadArgumentError(`RELAY cell padding is ${this.unused.length} bytes, but only ${room} fit`);
    writeRelayHeader(out, this.commandInt, this.recognized, this.streamId, this.digest, this.data.length, at);
    out.set(this.data, at + RELAY_HEADER_LEN);
    if (this.unused.length) out.set(this.unused, at + RELAY_HEADER_LEN + this.data.length);
  }

  pack(linkProtocol: number | LinkProtocol): Uint8Array {
    const lp = LinkProtocol.of(linkProtocol);
    const circIdLen = lp.circIdSize.size;
    const circId = this.circId;
    if (!Number.isInteger(circId) || circId < 1 || circId > (circIdLen === 4 ? 0xffffffff : 0xffff)) {
      throw new BadArgumentError(circId >= 1 ? `circuit id ${circId} does not fit the ${circIdLen}-byte field of link protocol ${lp.version}` : `Circuit identifiers must a positive integer, not ${circId}`);
    }
    const out = allocPooled(lp.fixedCellLength);
    writeCellHeader(out, circId, circIdLen, (this.constructor as unknown as CellClass).VALUE);
    this.writePayload(out, circIdLen + 1);
    return out;
  }

  static decodePayload(payload: Uint8Array, circId: number): RelayCell {
    return decodeRelayPayload(RelayCell, payload, circId);
  }
}

/** RELAY_EARLY (9): a RELAY cell that counts against the 8-cell limit (tor-spec 5.6). */
export class RelayEarlyCell extends RelayCell {
  static override readonly NAME: string = 'RELAY_EARLY';
  static override readonly VALUE: number = 9;

  static override decodePayload(payload: Uint8Array, circId: number): RelayEarlyCell {
    return decodeRelayPayload(RelayEarlyCell, payload, circId);
  }
}

/** Writes the 11-byte relay header at the start of `payload`. */
export function writeRelayHeader(payload: Uint8Array, command: number, recognized: number, streamId: number, digest: number, length: number, at = 0): void {
  payload[at] = command;
  payload[at + 1] = recognized >> 8;
  payload[at + 2] = recognized;
  payload[at + 3] = streamId >> 8;
  payload[at + 4] = streamId;
  payload[at + 5] = digest >>> 24;
  payload[at + 6] = digest >>> 16;
  payload[at + 7] = digest >>> 8;
  payload[at + 8] = digest;
  payload[at + 9] = length >> 8;
  payload[at + 10] = length;
}

function decodeRelayPayload<T extends RelayCell>(
  ctor: new (circId: number, command: number, data: Uint8Array, digest: number, streamId: number, recognized: number, unused: Uint8Array) => T,
  payload: Uint8Array,
  circId: number,
): T {
  // The payload of a fixed cell is always 509 bytes, so the 11-byte header is there.
  const command = payload[0]!;
  const recognized = (payload[1]! << 8) | payload[2]!;
  const streamId = (payload[3]! << 8) | payload[4]!;
  const digest = ((payload[5]! << 24) >>> 0) + ((payload[6]! << 16) | (payload[7]! << 8) | payload[8]!);
  const length = (payload[9]! << 8) | payload[10]!;
  const room = payload.length - RELAY_HEADER_LEN;
  if (length > room) {
    const name = (ctor as unknown as CellClass).NAME;
    throw new DecodeError(`${name} cell`, 9, `${name} cell said it had ${length} bytes of data, but only had ${room}`);
  }
  const end = RELAY_HEADER_LEN + length;
  const data = payload.subarray(RELAY_HEADER_LEN, end);
  const unused = end === payload.length ? EMPTY : payload.subarray(end);
  // Decoding is lenient about stream-id rules (digest ≠ 0 skips them, as in Stem);
  // a decoded cell with digest 0 that breaks them is reported as a DecodeError.
  try {
    return new ctor(circId, command, data, digest, streamId, recognized, unused);
  } catch (err) {
    if (err instanceof BadArgumentError) throw new DecodeError(`${(ctor as unknown as CellClass).NAME} cell`, 0, err.message);
    throw err;
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

/** A cell whose command we don't know; kept so it can be logged, skipped or re-encoded. */
export class UnknownCell extends Cell {
  static override readonly NAME = 'UNKNOWN';

  constructor(
    readonly command: number,
    readonly circId: number,
    readonly payload: Uint8Array,
  ) {
    super();
  }

  override get name(): string {
    return `UNKNOWN(${this.command})`;
  }

  override get value(): number {
    return this.command;
  }

  pack(lp: number | LinkProtocol): Uint8Array {
    const fixed = !isVariableLengthCommand(this.command);
    return frameCell(this.name, this.command, fixed, LinkProtocol.of(lp), this.circId, [this.payload]);
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
const BY_VALUE = new Map<number, CellClass>(CELL_CLASSES.map((c) => [c.VALUE, c]));
const BY_NAME = new Map<string, CellClass>(CELL_CLASSES.map((c) => [c.NAME, c]));

/** Every cell class, in command order. */
export const CELL_TYPES: readonly CellClass[] = CELL_CLASSES;

/** The cell class with this name ('NETINFO'); BadArgumentError if there is none. */
export function cellByName(name: string): CellClass {
  const cls = typeof name === 'string' ? BY_NAME.get(name) : undefined;
  if (!cls) throw new BadArgumentError(`'${String(name)}' isn't a valid cell type`);
  return cls;
}

/** The cell class with this command number (8); BadArgumentError if there is none. */
export function cellByValue(value: number): CellClass {
  const cls = typeof value === 'number' ? BY_VALUE.get(value) : undefined;
  if (!cls) throw new BadArgumentError(`'${String(value)}' isn't a valid cell value`);
  return cls;
}

function cellNameOf(command: number): string {
  return BY_VALUE.get(command)?.NAME ?? `UNKNOWN(${command})`;
}

/** Decodes a frame into its cell class (UnknownCell for an unknown command). */
export function decodeFrame(frame: CellFrame, lp: LinkProtocol): Cell {
  const cls = BY_VALUE.get(frame.command);
  if (!cls) return new UnknownCell(frame.command, frame.circId, frame.payload);
  if (cls.IS_CIRCUIT_CELL && frame.circId === 0) {
    throw new DecodeError(`${cls.NAME} cell`, 0, `circuit id 0 is reserved; ${cls.NAME} cells need a circuit (tor-spec 5.1.1)`);
  }
  return cls.decodePayload(frame.payload, frame.circId, lp);
}
