/**
 * codec/relayv1 — the V1 relay message format (prop 359, tor 0.4.9 relay_msg.c), used on
 * hops whose relay crypto is CGO: the 509-byte body is T[16] ‖ C[493], and C is
 * `cmd u8 | len u16 | [stream_id u16] | data | 00 00 00 00 | random`. No 'recognized'
 * and no digest (CGO's tag recognizes a cell), no stream-level SENDMEs. A stream id is
 * there only for BEGIN, BEGIN_DIR, CONNECTED, DATA, END, RESOLVE, RESOLVED, XOFF and XON
 * (relay_cmd_expects_streamid_in_v1); at most 488 bytes of data with one, 490 without.
 * A command tor does not know makes the cell undecodable (is_known_relay_command).
 *
 * Layer: codec core. No I/O, no crypto (crypto/cgo fills T). Bodies of messages are
 * codec/relaymsg; the V0 header is codec/relaycell.
 */
import { BadArgumentError, DecodeError } from '../errors.js';
import { FIXED_PAYLOAD_LEN } from './datatype.js';

/** Where C starts in the body (after the CGO tag T). */
export const V1_CMD_OFFSET = 16;
const V1_LEN_OFFSET = 17;
const V1_STREAM_ID_OFFSET = 19;
const V1_DATA_NO_STREAM_ID = 19;
const V1_DATA_WITH_STREAM_ID = 21;
/** Most data in a V1 message with a stream id (DATA), and without. */
export const V1_DATA_MAX_WITH_STREAM_ID = FIXED_PAYLOAD_LEN - V1_DATA_WITH_STREAM_ID;
export const V1_DATA_MAX_NO_STREAM_ID = FIXED_PAYLOAD_LEN - V1_DATA_NO_STREAM_ID;

/** relay_cmd_expects_streamid_in_v1. */
const WITH_STREAM_ID = new Set([1, 13, 4, 2, 3, 11, 12, 43, 44]);
/** is_known_relay_command (tor 0.4.9 or.h). */
const KNOWN = new Set([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 19, 20, 21, 22, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44]);

/** Whether a V1 message with this relay command carries a stream id. */
export function v1HasStreamId(command: number): boolean {
  return WITH_STREAM_ID.has(command);
}

/** The most data a V1 message with this command holds. */
export function v1DataMax(command: number): number {
  return WITH_STREAM_ID.has(command) ? V1_DATA_MAX_WITH_STREAM_ID : V1_DATA_MAX_NO_STREAM_ID;
}

/**
 * Writes a V1 message into body[0…509) (T untouched) and returns where padding starts,
 * after the 4 zero bytes that follow the data (FIXED_PAYLOAD_LEN if none fits). The
 * caller fills the padding. Throws a BadArgumentError for data too long or a stream id
 * where the command takes none (or none where it needs one).
 */
export function writeV1(body: Uint8Array, command: number, streamId: number, data: Uint8Array): number {
  if (body.length < FIXED_PAYLOAD_LEN) throw new BadArgumentError(`a V1 relay body is ${FIXED_PAYLOAD_LEN} bytes, not ${body.length}`);
  const withId = WITH_STREAM_ID.has(command);
  if (withId ? streamId < 1 || streamId > 0xffff : streamId !== 0) {
    throw new BadArgumentError(`V1 relay command ${command} ${withId ? 'needs a stream id (1-65535)' : 'carries no stream id'}, got ${streamId}`);
  }
  const at = withId ? V1_DATA_WITH_STREAM_ID : V1_DATA_NO_STREAM_ID;
  if (data.length > FIXED_PAYLOAD_LEN - at) throw new BadArgumentError(`a V1 relay message with command ${command} holds at most ${FIXED_PAYLOAD_LEN - at} bytes of data, not ${data.length}`);
  body[V1_CMD_OFFSET] = command;
  body[V1_LEN_OFFSET] = data.length >> 8;
  body[V1_LEN_OFFSET + 1] = data.length;
  if (withId) {
    body[V1_STREAM_ID_OFFSET] = streamId >> 8;
    body[V1_STREAM_ID_OFFSET + 1] = streamId;
  }
  body.set(data, at);
  const zeros = Math.min(FIXED_PAYLOAD_LEN, at + data.length + 4);
  body.fill(0, at + data.length, zeros);
  return zeros;
}

/** A decoded V1 message: its data is body[dataAt…dataAt+length). */
export interface V1Header {
  readonly command: number;
  /** 0 where the command carries none. */
  readonly streamId: number;
  readonly dataAt: number;
  readonly length: number;
}

/** Reads the V1 message in body[off…off+509) (decode_v1_cell). Throws DecodeError for an unknown command or a length that does not fit. */
export function readV1(body: Uint8Array, off = 0): V1Header {
  if (off < 0 || body.length < off + FIXED_PAYLOAD_LEN) throw new DecodeError('V1 relay message', body.length - off, `needs ${FIXED_PAYLOAD_LEN} bytes`);
  const command = body[off + V1_CMD_OFFSET]!;
  if (!KNOWN.has(command)) throw new DecodeError('V1 relay message', V1_CMD_OFFSET, `unknown relay command ${command} (tor refuses to decode it)`);
  const length = (body[off + V1_LEN_OFFSET]! << 8) | body[off + V1_LEN_OFFSET + 1]!;
  const withId = WITH_STREAM_ID.has(command);
  const at = withId ? V1_DATA_WITH_STREAM_ID : V1_DATA_NO_STREAM_ID;
  if (length > FIXED_PAYLOAD_LEN - at) throw new DecodeError('V1 relay message', V1_LEN_OFFSET, `command ${command} claims ${length} bytes of data; at most ${FIXED_PAYLOAD_LEN - at} fit`);
  const streamId = withId ? (body[off + V1_STREAM_ID_OFFSET]! << 8) | body[off + V1_STREAM_ID_OFFSET + 1]! : 0;
  return { command, streamId, dataAt: off + at, length };
}
