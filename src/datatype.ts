/**
 * datatype — the `orport/datatype` entry: Stem's `stem.client.datatype` module (Size,
 * Address, Certificate, LinkProtocol, LinkSpecifier, KDF, the enumerations, `split`).
 * The code is in codec/datatype.
 */
export * from './codec/datatype.js';
