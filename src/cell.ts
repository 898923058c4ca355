/**
 * cell — the `orport/cell` entry: Stem's `stem.client.cell` module (every channel cell,
 * `Cell.pop` / `Cell.unpack`, `cellByName` / `cellByValue`, the RELAY cell and its
 * constants). The code is in codec/cell, codec/cellbase and codec/relaycell; framing
 * helpers stay internal.
 */
export * from './codec/cell.js';
