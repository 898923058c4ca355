/**
 * codec/framing — incremental cell framing for a byte stream (the channel reader).
 *
 * Layer: codec core. No I/O. Feed TCP/TLS chunks with `push(chunk)`, then call `next()`
 * until it returns undefined. Whole cells inside a chunk are returned as views into it
 * (no copy); only a cell that spans chunks is assembled in a small internal buffer
 * (at most one variable-length cell: 65,542 bytes). A returned frame is valid until the
 * next call to `next()` or `push()`; the consumer may modify its payload in place (the
 * channel decrypts RELAY payloads there).
 */
import { InternalError } from '../errors.js';
import { EMPTY } from './bytes.js';
import { readFrame, type CellFrame } from '../cell.js';
import type { LinkProtocol } from '../datatype.js';

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
