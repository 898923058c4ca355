/**
 * onion/address — v3 onion addresses (rend-spec §6): `base32(PUBKEY | CHECKSUM | VERSION)`
 * + ".onion", with CHECKSUM = SHA3-256(".onion checksum" | PUBKEY | VERSION)[:2] and
 * VERSION = 3. Parsing follows tor 0.4.9 (connection_edge.c `parse_extended_hostname`,
 * hs_common.c `hs_address_is_valid`): the name is lower-cased, left-hand labels are
 * dropped (`www.X.onion` → X) unless the one before X is empty (`.X.onion`), then the
 * length (56; a 16-character v2 name gets its own message), the base32, the checksum, the
 * version (3 only, as Arti: tor never checks it) and the key (a torsion-free point that is
 * not the identity, tor's `ed25519_validate_pubkey`) are checked. Encoding takes a key.
 *
 * Layer: onion-service client core. No I/O, no clock. Every refusal is an
 * `OnionAddressError` whose `problem` says which rule failed. What to do with an address
 * (fetching the descriptor, SOCKS's extended error F6) is for the layers above.
 */
import { createHash } from 'node:crypto';
import { BadArgumentError, OnionAddressError } from '../errors.js';
import { ed25519KeyProblem } from './point.js';

/** The only onion address version in use. */
export const ONION_V3_VERSION = 3;
/** A v3 address without ".onion": 35 bytes in base32. */
export const ONION_V3_ADDRESS_LEN = 56;
/** A v2 address without ".onion" (refused). */
export const ONION_V2_ADDRESS_LEN = 16;
const CHECKSUM_PREFIX = Buffer.from('.onion checksum', 'latin1');
const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';
const VALUE = new Int8Array(128).fill(-1);
for (let i = 0; i < 32; i++) VALUE[ALPHABET.charCodeAt(i)] = i;

/** A parsed v3 onion address. */
export interface OnionAddress {
  /** The service's Ed25519 identity key KP_hs_id (32 bytes). */
  readonly publicKey: Uint8Array;
  readonly version: 3;
  /** The 56 base32 characters, lower case, without ".onion". */
  readonly id: string;
  /** `${id}.onion` (subdomains dropped). */
  readonly hostname: string;
}

/** RFC 4648 base32, lower case, no padding. */
export function base32Encode(bytes: Uint8Array): string {
  let out = '';
  let acc = 0;
  let bits = 0;
  for (const b of bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(acc >>> (bits - 5)) & 31];
      bits -= 5;
    }
    acc &= (1 << bits) - 1;
  }
  if (bits > 0) out += ALPHABET[(acc << (5 - bits)) & 31];
  return out;
}

/** RFC 4648 base32 (either case, no padding) to bytes, or undefined for a character outside the alphabet. Trailing bits are dropped. */
export function base32Decode(text: string): Uint8Array | undefined {
  const out = new Uint8Array(Math.floor((text.length * 5) / 8));
  let acc = 0;
  let bits = 0;
  let at = 0;
  for (let i = 0; i < text.length; i++) {
    let c = text.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) c += 0x20;
    const v = c < 128 ? VALUE[c]! : -1;
    if (v < 0) return undefined;
    acc = ((acc << 5) | v) & 0xfff;
    bits += 5;
    if (bits >= 8) {
      out[at++] = (acc >>> (bits - 8)) & 0xff;
      bits -= 8;
    }
  }
  return out;
}

/** CHECKSUM = SHA3-256(".onion checksum" | PUBKEY | VERSION)[:2]. */
export function onionChecksum(publicKey: Uint8Array, version = ONION_V3_VERSION): Uint8Array {
  const digest = createHash('sha3-256').update(CHECKSUM_PREFIX).update(publicKey).update(Uint8Array.of(version)).digest();
  return new Uint8Array(digest.subarray(0, 2));
}

/** The onion hostname (`<56 base32>.onion`) of a 32-byte Ed25519 identity key. The key itself is not checked (tor's hs_build_address). */
export function encodeOnionAddress(publicKey: Uint8Array): string {
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== 32) {
    throw new BadArgumentError(`an onion service identity key is 32 bytes, got ${publicKey instanceof Uint8Array ? publicKey.length : typeof publicKey}`);
  }
  const raw = new Uint8Array(35);
  raw.set(publicKey);
  raw.set(onionChecksum(publicKey), 32);
  raw[34] = ONION_V3_VERSION;
  return `${base32Encode(raw)}.onion`;
}

/** Does the host name end in ".onion" (any case)? Such names must never go to an exit. */
export function isOnionHostname(host: string): boolean {
  return typeof host === 'string' && host.length >= 6 && host.slice(-6).toLowerCase() === '.onion';
}

export interface ParseOnionOptions {
  /** Check that the key is a usable Ed25519 point, as tor does (default true; a property test turns it off for random bytes). */
  readonly validateKey?: boolean;
}

/**
 * Parses `X.onion`, `sub.X.onion` or a bare 56-character X into its key. Throws an
 * OnionAddressError for anything tor would refuse (and for a version other than 3).
 */
export function parseOnionAddress(host: string, options: ParseOnionOptions = {}): OnionAddress {
  if (typeof host !== 'string') throw new OnionAddressError('not-onion', `an onion address must be a string, got ${typeof host}`);
  const shown = JSON.stringify(host.length > 80 ? `${host.slice(0, 80)}…` : host);
  const name = host.toLowerCase();
  let id: string;
  if (name.endsWith('.onion')) {
    const rest = name.slice(0, -6);
    const dot = rest.lastIndexOf('.');
    if (dot === 0) throw new OnionAddressError('empty-label', `${shown}: an empty label before the onion address (as DNS, tor refuses it)`);
    id = dot < 0 ? rest : rest.slice(dot + 1);
  } else if (!name.includes('.')) {
    id = name;
  } else {
    throw new OnionAddressError('not-onion', `${shown} is not an onion address: it does not end in ".onion"`);
  }
  if (id.length === ONION_V2_ADDRESS_LEN && base32Decode(id)) {
    throw new OnionAddressError('v2', `${shown} is a v2 onion address (16 characters): v2 onion services are gone (tor 0.4.6 dropped them); only v3 addresses (56 characters) work`);
  }
  if (id.length !== ONION_V3_ADDRESS_LEN) {
    throw new OnionAddressError('length', `${shown}: a v3 onion address has ${ONION_V3_ADDRESS_LEN} base32 characters before ".onion", this one has ${id.length}`);
  }
  const raw = base32Decode(id);
  if (!raw || raw.length !== 35) throw new OnionAddressError('base32', `${shown}: not base32 (the letters a-z and the digits 2-7 only)`);
  const publicKey = raw.slice(0, 32);
  const version = raw[34]!;
  const checksum = onionChecksum(publicKey, version);
  if (checksum[0] !== raw[32] || checksum[1] !== raw[33]) {
    throw new OnionAddressError('checksum', `${shown}: the checksum does not match (a mistyped address?)`);
  }
  if (version !== ONION_V3_VERSION) throw new OnionAddressError('version', `${shown}: onion address version ${version} is not supported (only version 3)`);
  if (options.validateKey !== false) {
    const problem = ed25519KeyProblem(publicKey);
    if (problem) throw new OnionAddressError('key', `${shown}: the service's key is unusable: ${problem}`);
  }
  return { publicKey, version: ONION_V3_VERSION, id, hostname: `${id}.onion` };
}
