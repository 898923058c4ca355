/** test/support/bytes — small helpers for writing byte vectors in tests. */
import { concatBytes, fromHex, toHex } from '../../src/codec/bytes.js';

/** Hex (spaces allowed) to bytes. */
export const h = (hex: string): Uint8Array => fromHex(hex);
/** `n` zero bytes. */
export const zeros = (n: number): Uint8Array => new Uint8Array(n);
/** Concatenates byte arrays and ASCII strings. */
export const cat = (...parts: (Uint8Array | string)[]): Uint8Array =>
  concatBytes(parts.map((p) => (typeof p === 'string' ? Uint8Array.from(Buffer.from(p, 'latin1')) : p)));
/** Bytes as hex, for assert messages. */
export const hex = (b: Uint8Array): string => toHex(b);
