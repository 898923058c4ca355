/**
 * codec/framing — the cell frame (circuit id, command, payload; tor-spec 3), reading one
 * from bytes and writing a header, and incremental framing of a byte stream (the
 * channel reader).
 *
 * Layer: codec core. No I/O. Knows nothing of what a payload means (codec/cell does). Feed TCP/TLS chunks with `push(chunk)`, then call `next()`
 * until it returns undefined. Whole cells inside a chunk are returned as views into it
 * (no copy); only a cell that spans chunks is assembled in a small internal buffer
 * (at most one variable-length cell: 65,542 bytes). A returned frame is valid until the
 * next call to `next()` or `push()`; the consumer may modify its payload in place (the
 * channel decrypts RELAY payloads there).
 */
import { BadArgumentError, InternalError } from '../errors.js';
import { EMPTY, allocPooled } from './bytes.js';
import { FIXED_PAYLOAD_LEN, LinkProtocol } from './datatype.js';

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
export function frameCell(
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
// Incremental framing

/** Largest cell on the wire: 4-byte circ id, command, u16 length, 65,535 bytes. */
export const MAX_CELL_LEN = 4 + 1 + 2 + 0xffff;

export class CellDecoder {
  /** The link protocol that decides circ id width; change it between `next()` calls. */
  linkProtocol: LinkProtocol;
  private chunk: Uint8Array = EMPTY;
  private chunkPos = 0;
  private partial: Uint8Array = EMPTY;
  private partialLen = 0;

  constructor(linkProtocol: LinkProtocol) {
    this.linkProtocol = linkProtocol;
  }

  /** Bytes received but not yet returned as cells. */
  get buffered(): number {
    return this.partialLen + (this.chunk.length - this.chunkPos);
  }

  /** Adds a chunk. The previous chunk must have been drained with `next()`. */
  push(chunk: Uint8Array): void {
    if (this.chunkPos < this.chunk.length) throw new InternalError('CellDecoder.push() called before the previous chunk was drained');
    this.chunk = chunk;
    this.chunkPos = 0;
  }

  /** The next whole cell, or undefined when more bytes are needed. */
  next(): CellFrame | undefined {
    const lp = this.linkProtocol;
    if (this.partialLen > 0) {
      for (;;) {
        const frame = readFrame(this.partial.subarray(0, this.partialLen), 0, lp);
        if (typeof frame !== 'number') {
          this.partialLen = 0;
          return frame;
        }
        const take = Math.min(frame, this.chunk.length - this.chunkPos);
        if (take === 0) return undefined;
        this.append(this.chunk.subarray(this.chunkPos, this.chunkPos + take));
        this.chunkPos += take;
      }
    }
    if (this.chunkPos >= this.chunk.length) return undefined;
    const frame = readFrame(this.chunk, this.chunkPos, lp);
    if (typeof frame !== 'number') {
      this.chunkPos += frame.length;
      return frame;
    }
    this.append(this.chunk.subarray(this.chunkPos));
    this.chunkPos = this.chunk.length;
    return undefined;
  }

  /**
   * After `next()` returned a fixed-size cell: copies the payloads of the whole cells that
   * follow it in the current chunk with the same `command` and `circId`, at most `max`,
   * back to back into `out` from `offset`, and consumes them; returns how many. The same
   * as calling `next()` for each of them, without a frame object per cell.
   */
  takeRun(command: number, circId: number, out: Uint8Array, offset: number, max: number): number {
    if (this.partialLen > 0 || isVariableLengthCommand(command)) return 0;
    const lp = this.linkProtocol;
    const idLen = lp.circIdSize.size;
    const cellLen = lp.fixedCellLength;
    const chunk = this.chunk;
    let pos = this.chunkPos;
    let n = 0;
    while (n < max && pos + cellLen <= chunk.length && chunk[pos + idLen] === command) {
      const id =
        idLen === 4
          ? ((chunk[pos]! << 24) >>> 0) + ((chunk[pos + 1]! << 16) | (chunk[pos + 2]! << 8) | chunk[pos + 3]!)
          : (chunk[pos]! << 8) | chunk[pos + 1]!;
      if (id !== circId) break;
      out.set(chunk.subarray(pos + idLen + 1, pos + cellLen), offset + n * FIXED_PAYLOAD_LEN);
      pos += cellLen;
      n++;
    }
    this.chunkPos = pos;
    return n;
  }

  private append(bytes: Uint8Array): void {
    const need = this.partialLen + bytes.length;
    if (need > this.partial.length) {
      const grown = new Uint8Array(Math.min(MAX_CELL_LEN, Math.max(need, this.partial.length * 2, 1024)));
      grown.set(this.partial.subarray(0, this.partialLen));
      this.partial = grown;
    }
    this.partial.set(bytes, this.partialLen);
    this.partialLen = need;
  }
}
