/**
 * codec/relaycell — the RELAY and RELAY_EARLY cells (tor-spec 6.1) in plaintext, their
 * 11-byte header (command, recognized, stream id, digest, length) and which relay
 * commands need or forbid a stream id.
 *
 * Layer: codec core. No I/O, no crypto: the circuit layer encrypts and decrypts payloads
 * and computes digests; this is the codec's view of one payload. Message bodies are
 * codec/relaymsg.
 */
import { BadArgumentError, DecodeError } from '../errors.js';
import { EMPTY, allocPooled } from './bytes.js';
import { FIXED_PAYLOAD_LEN, LinkProtocol, RelayCommand, Size } from './datatype.js';
import { writeCellHeader } from './framing.js';
import { CircuitCell, type CellClass } from './cellbase.js';

/** Largest `Length` of a RELAY cell's data (tor-spec 6.1: PAYLOAD_LEN - 11). */
export const RELAY_DATA_MAX = FIXED_PAYLOAD_LEN - 11;
/** Header of a RELAY payload: command, recognized, stream id, digest, length. */
export const RELAY_HEADER_LEN = 11;
export const RELAY_DIGEST_SIZE = Size.LONG;

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
