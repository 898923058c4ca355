/** test/support/certvectors — the CERTS cells and TLS certificates captured from a private tor network (test/vectors/certs-testnet.json). */
import { readFileSync } from 'node:fs';
import { Certificate } from '../../src/codec/datatype.js';
import { fromHex } from '../../src/codec/bytes.js';

export interface CapturedRelay {
  nick: string;
  /** As tor wrote it (DataDirectory/fingerprint). */
  fingerprint: string;
  /** As tor wrote it (DataDirectory/fingerprint-ed25519). */
  ed25519: string;
  capturedAt: Date;
  linkProtocol: number;
  tlsCertificate: Uint8Array;
  certificates: Certificate[];
}

interface RawFile {
  torVersion: string;
  relays: { nick: string; fingerprint: string; ed25519: string; capturedAt: string; linkProtocol: number; tlsCertificate: string; certs: { type: number; value: string }[] }[];
}

const raw = JSON.parse(readFileSync(new URL('../vectors/certs-testnet.json', import.meta.url), 'utf8')) as RawFile;

export const capturedTorVersion = raw.torVersion;

/** Fresh objects on every call, so tests can tamper freely. */
export function capturedRelays(): CapturedRelay[] {
  return raw.relays.map((r) => ({
    nick: r.nick,
    fingerprint: r.fingerprint,
    ed25519: r.ed25519,
    capturedAt: new Date(r.capturedAt),
    linkProtocol: r.linkProtocol,
    tlsCertificate: fromHex(r.tlsCertificate),
    certificates: r.certs.map((c) => new Certificate(c.type, fromHex(c.value))),
  }));
}

/** The certificate of a type (the first), or throws. */
export function certOfType(certs: readonly Certificate[], type: number): Certificate {
  const c = certs.find((x) => x.typeInt === type);
  if (!c) throw new Error(`no type ${type} certificate`);
  return c;
}

/** The certificates with the one of `type` replaced by `value`. */
export function withCert(certs: readonly Certificate[], type: number, value: Uint8Array): Certificate[] {
  return certs.map((c) => (c.typeInt === type ? new Certificate(type, value) : c));
}

/** A copy of `bytes` with bit `bit` of byte `index` (negative: from the end) flipped. */
export function flipBit(bytes: Uint8Array, index: number, bit = 0): Uint8Array {
  const out = bytes.slice();
  const i = index < 0 ? out.length + index : index;
  out[i]! ^= 1 << bit;
  return out;
}
