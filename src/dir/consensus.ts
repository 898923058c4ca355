/**
 * dir/consensus — parses a v3 consensus, microdesc or ns flavour (dir-spec §3.4.1, §3.9.2),
 * with tor 0.4.9's rules (ns_parse.c): the preamble's once-only items, the authority
 * section, router entries strictly ascending by identity, the footer and its signatures,
 * and the signed range every signature covers. Router entries as tor writes them are read
 * in one pass (readRoutersFast); anything else by routerSection + readRouters with the
 * scanner, which accept the same documents and name the line of an error.
 *
 * Layer: codec core. No I/O, no clock. Parsing checks form only: whether the signatures
 * verify and the document is live is dir/verify's job. Unknown keywords are ignored.
 */
import { createHash, hash } from 'node:crypto';
import { DecodeError } from '../errors.js';
import { argsOf, docError, parseBase64, parseIntArg, parseTime, plainKeywordEnd, scanItems, tokenize, type Item, type ItemSpan } from './netdoc.js';

export interface RouterEntry {
  readonly nickname: string;
  /** RSA identity fingerprint, 40 upper-case hex digits. */
  readonly rsa: string;
  readonly address: string;
  readonly orPort: number;
  readonly dirPort: number;
  /** The first `a` line: an IPv6 ORPort. */
  readonly ipv6: { readonly address: string; readonly port: number } | undefined;
  readonly flags: readonly string[];
  /** `v`, e.g. 'Tor 0.4.9.11'. */
  readonly version: string | undefined;
  /** `pr`: subprotocol name → version ranges as written ('1-5'). */
  readonly protocols: Readonly<Record<string, string>>;
  /** `w Bandwidth=`; undefined without a `w` line. */
  readonly bandwidth: number | undefined;
  readonly unmeasured: boolean;
  /** Microdesc flavour: the `m` digest (base64 SHA-256, unpadded). */
  readonly microdescDigest: string;
  /** ns flavour: the descriptor digest (hex) and the `p` exit policy summary. */
  readonly descriptorDigest: string | undefined;
  readonly policy: string | undefined;
  readonly line: number;
}

export interface DirSourceEntry {
  readonly nickname: string;
  /** v3 authority identity, 40 upper-case hex. */
  readonly v3ident: string;
  readonly address: string;
  readonly dirPort: number;
  readonly orPort: number;
  readonly contact: string | undefined;
  readonly voteDigest: string | undefined;
}

export interface ConsensusSignature {
  /** 'sha1' (no algorithm given) or 'sha256'; other algorithms are kept but never verify. */
  readonly algorithm: string;
  /** The signer's v3 identity, 40 upper-case hex. */
  readonly identity: string;
  /** SHA-1 of the signing key's DER, 40 upper-case hex. */
  readonly signingKeyDigest: string;
  readonly signature: Uint8Array;
  readonly line: number;
}

export interface Consensus {
  readonly flavor: 'microdesc' | 'ns';
  readonly consensusMethod: number;
  readonly validAfter: Date;
  readonly freshUntil: Date;
  readonly validUntil: Date;
  readonly votingDelay: { readonly voteSeconds: number; readonly distSeconds: number };
  readonly clientVersions: readonly string[];
  readonly serverVersions: readonly string[];
  readonly knownFlags: readonly string[];
  readonly recommendedClientProtocols: string;
  readonly requiredClientProtocols: string;
  readonly params: Readonly<Record<string, number>>;
  readonly sharedRandPrevious: { readonly reveals: number; readonly value: Uint8Array } | undefined;
  readonly sharedRandCurrent: { readonly reveals: number; readonly value: Uint8Array } | undefined;
  readonly authorities: readonly DirSourceEntry[];
  readonly routers: readonly RouterEntry[];
  readonly bandwidthWeights: Readonly<Record<string, number>>;
  readonly signatures: readonly ConsensusSignature[];
  /** Offset just past the signed range: through '\ndirectory-signature ' (dir-spec §3.4.1). */
  readonly signedEnd: number;
}

/** The microdesc flavour (what clients use). */
export type MicrodescConsensus = Consensus;

export interface ParseConsensusOptions {
  /** TestingTorNetwork: the shortest vote interval is 10 s instead of 300 s (tor ns_parse.c). */
  testing?: boolean;
  /** Read the router entries with the checked reader only, not the one-pass fast path (tests compare the two). */
  reference?: boolean;
}

const WHAT = 'consensus';
const SIGNED_MARKER = '\ndirectory-signature ';

function parseIPv4(value: string | undefined, item: Item): string {
  const v = value ?? '';
  const parts = v.split('.');
  if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) throw docError(WHAT, item.line, item.start, `${item.keyword}: ${JSON.stringify(v)} is not an IPv4 address`);
  return v;
}

/** `k=v` pairs with int32 values, strictly sorted by key (tor rejects anything else in `params`). */
function parseParams(item: Item, sorted: boolean): Record<string, number> {
  const out: Record<string, number> = {};
  let last: string | undefined;
  for (const pair of argsOf(item)) {
    const eq = pair.indexOf('=');
    const key = pair.slice(0, eq);
    const value = pair.slice(eq + 1);
    if (eq <= 0 || !/^-?\d{1,10}$/.test(value)) throw docError(WHAT, item.line, item.start, `${item.keyword}: ${JSON.stringify(pair)} is not key=integer`);
    const n = Number(value);
    if (n < -2147483648 || n > 2147483647) throw docError(WHAT, item.line, item.start, `${item.keyword}: ${key}=${value} is outside int32`);
    if (sorted && last !== undefined && !(last < key)) throw docError(WHAT, item.line, item.start, `${item.keyword}: ${key} is not in strictly ascending order after ${last}`);
    last = key;
    out[key] = n;
  }
  return out;
}

/** Does a protover range list ('1-5' or '2,4-6', tor-spec §9) include `version`? */
export function supportsVersion(ranges: string | undefined, version: number): boolean {
  if (!ranges) return false;
  return ranges.split(',').some((r) => {
    const [lo, hi] = r.split('-').map(Number);
    return hi === undefined ? lo === version : lo! <= version && version <= hi;
  });
}

/** Parsed protover lists by text: router entries repeat a few dozen distinct `pr` lines. */
const protocolCache = new Map<string, Readonly<Record<string, string>>>();

/** A protover list ('Link=1-5 Relay=2'), checked for form, as name → ranges (frozen; shared between equal lines). */
export function parseProtocols(text: string, item: Item): Readonly<Record<string, string>> {
  const cached = protocolCache.get(text);
  if (cached) return cached;
  const out: Record<string, string> = {};
  for (const entry of text === '' ? [] : text.split(' ')) {
    const eq = entry.indexOf('=');
    const name = entry.slice(0, eq);
    const ranges = entry.slice(eq + 1);
    if (eq <= 0 || !/^[A-Za-z0-9-]+$/.test(name) || !/^(\d{1,2}(-\d{1,2})?)?(,\d{1,2}(-\d{1,2})?)*$/.test(ranges)) {
      throw docError(WHAT, item.line, item.start, `${item.keyword}: bad protocol entry ${JSON.stringify(entry)}`);
    }
    out[name] = ranges;
  }
  if (protocolCache.size > 4096) protocolCache.clear();
  protocolCache.set(text, Object.freeze(out));
  return out;
}

function once(items: Map<string, Item[]>, keyword: string, firstLine: number): Item {
  const found = items.get(keyword);
  if (!found || found.length === 0) throw docError(WHAT, firstLine, 0, `the preamble has no ${keyword} line`);
  if (found.length > 1) throw docError(WHAT, found[1]!.line, found[1]!.start, `${keyword} appears more than once`);
  return found[0]!;
}

function atMostOnce(items: Map<string, Item[]>, keyword: string): Item | undefined {
  const found = items.get(keyword);
  if (found && found.length > 1) throw docError(WHAT, found[1]!.line, found[1]!.start, `${keyword} appears more than once`);
  return found?.[0];
}

/** The flavor named on the first line (checked properly by the preamble's parser). */
function flavor0(text: string): 'microdesc' | 'ns' {
  const nl = text.indexOf('\n');
  return text.slice(0, nl < 0 ? text.length : nl).split(' ')[2] === 'microdesc' ? 'microdesc' : 'ns';
}

/** Where a router section starts and ends in a consensus' text, and the line it starts on. */
export function routerSection(text: string): { from: number; to: number; line: number } | undefined {
  const at = text.startsWith('r ') ? 0 : text.indexOf('\nr ') + 1;
  if (at <= 0 && !text.startsWith('r ')) return undefined;
  let to = text.length;
  for (const marker of ['\ndirectory-footer\n', '\nbandwidth-weights ', '\ndirectory-signature ']) {
    const m = text.indexOf(marker, at);
    if (m >= 0 && m + 1 < to) to = m + 1;
  }
  if (text.endsWith('\ndirectory-footer') && text.length - 16 < to) to = text.length - 16;
  let line = 1;
  for (let i = text.indexOf('\n'); i >= 0 && i < at; i = text.indexOf('\n', i + 1)) line++;
  return { from: at, to, line };
}

const B64 = new Int8Array(128).fill(-1);
for (let i = 0; i < 64; i++) B64['ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'.charCodeAt(i)] = i;

const HEX_CHAR = new Uint8Array(16);
for (let i = 0; i < 16; i++) HEX_CHAR[i] = '0123456789ABCDEF'.charCodeAt(i);
/** Where strings are written before they become one flat string: base64Hex's hex (up to 32 bytes), `m` digests. */
const hexScratch = Buffer.alloc(64);

/** Unpadded base64 of `bytes` (≤ 32) bytes at text[from, to) as upper hex, or undefined if it isn't that. */
function base64Hex(text: string, from: number, to: number, bytes: number): string | undefined {
  const chars = Math.ceil((bytes * 4) / 3);
  let end = to;
  while (end > from && text.charCodeAt(end - 1) === 0x3d) end--;
  if (end - from !== chars || to - end > 2) return undefined;
  let acc = 0;
  let bits = 0;
  let out = 0;
  for (let i = from; i < end; i++) {
    const c = text.charCodeAt(i);
    const v = c < 128 ? B64[c]! : -1;
    if (v < 0) return undefined;
    acc = ((acc << 6) | v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      if (out < bytes) {
        const b = (acc >> bits) & 0xff;
        hexScratch[2 * out] = HEX_CHAR[b >> 4]!;
        hexScratch[2 * out + 1] = HEX_CHAR[b & 15]!;
      }
      out++;
    }
  }
  return out >= bytes ? hexScratch.toString('latin1', 0, 2 * bytes) : undefined;
}

/** A decimal integer in text[from, to) within [0, max], or -1. */
function decimal(text: string, from: number, to: number, max: number): number {
  if (to <= from || to - from > 10) return -1;
  let n = 0;
  for (let i = from; i < to; i++) {
    const d = text.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n <= max ? n : -1;
}

function isIPv4(value: string): boolean {
  let parts = 0;
  let from = 0;
  for (let i = 0; i <= value.length; i++) {
    if (i === value.length || value.charCodeAt(i) === 0x2e) {
      if (decimal(value, from, i, 255) < 0 || i - from > 3) return false;
      parts++;
      from = i + 1;
    }
  }
  return parts === 4;
}

/** A DecodeError at an item the scanner reported. */
function spanError(it: ItemSpan, message: string): DecodeError {
  return docError(WHAT, it.line, it.kwStart, message);
}

interface RouterDraft {
  nickname: string;
  rsa: string;
  address: string;
  orPort: number;
  dirPort: number;
  descriptorDigest: string | undefined;
  line: number;
  start: number;
  ipv6: RouterEntry['ipv6'];
  flags: string[] | undefined;
  version: string | undefined;
  protocols: Readonly<Record<string, string>> | undefined;
  bandwidth: number | undefined;
  unmeasured: boolean;
  microdescDigest: string | undefined;
  policy: string | undefined;
}

/**
 * Reads the router entries of text[from, to) (dir-spec §3.4.1 "r" … lines; `routerSection`
 * finds them) with the allocation-free scanner. `strict` applies tor 0.4.9's rules
 * (ascending identities; s, pr and, in the microdesc flavour, m in every entry); lenient
 * reading is for tools that look at fragments.
 */
export function readRouters(text: string, from: number, to: number, firstLine: number, flavor: 'microdesc' | 'ns', strict: boolean): { routers: RouterEntry[]; endLine: number } {
  const routers: RouterEntry[] = [];
  const md = flavor === 'microdesc';
  let previous = '';
  let r: RouterDraft | undefined;
  const finish = () => {
    if (!r) return;
    if (strict) {
      if (!r.flags) throw docError(WHAT, r.line, r.start, `router ${r.nickname} has no s line`);
      // tor 0.4.9 requires pr in every entry (ns_parse.c rtrstatus_token_table: T1).
      if (!r.protocols) throw docError(WHAT, r.line, r.start, `router ${r.nickname} has no pr line`);
      if (md && r.microdescDigest === undefined) throw docError(WHAT, r.line, r.start, `router ${r.nickname} has no m line`);
    }
    routers.push({
      nickname: r.nickname,
      rsa: r.rsa,
      address: r.address,
      orPort: r.orPort,
      dirPort: r.dirPort,
      ipv6: r.ipv6,
      flags: r.flags ?? [],
      version: r.version,
      protocols: r.protocols ?? {},
      bandwidth: r.bandwidth,
      unmeasured: r.unmeasured,
      microdescDigest: r.microdescDigest ?? '',
      descriptorDigest: r.descriptorDigest,
      policy: r.policy,
      line: r.line,
    });
  };
  const endLine = scanItems(text, WHAT, from, to, firstLine, (it) => {
    const klen = it.kwEnd - it.kwStart;
    const k0 = text.charCodeAt(it.kwStart);
    if (klen === 1 && k0 === 0x72 /* r */) {
      finish();
      const a = text.slice(it.argsStart, it.argsEnd).split(' ');
      const need = md ? 7 : 8;
      if (a.length < need) throw spanError(it, `r needs ${need} arguments, got ${a.length}`);
      const id = a[1]!;
      const rsa = base64Hex(id, 0, id.length, 20);
      if (!rsa) throw spanError(it, `r: ${JSON.stringify(id.slice(0, 60))} is not a 20-byte identity in base64`);
      if (strict && !(previous < rsa)) throw spanError(it, `router ${a[0]} is not in ascending order of identity (after ${previous})`);
      previous = rsa;
      const o = md ? 0 : 1;
      const address = a[4 + o]!;
      if (!isIPv4(address)) throw spanError(it, `r: ${JSON.stringify(address)} is not an IPv4 address`);
      const orPort = decimal(a[5 + o]!, 0, a[5 + o]!.length, 65535);
      const dirPort = decimal(a[6 + o]!, 0, a[6 + o]!.length, 65535);
      if (orPort < 0 || dirPort < 0) throw spanError(it, `r: ports ${JSON.stringify(a[5 + o])} ${JSON.stringify(a[6 + o])} are not 0-65535`);
      let descriptorDigest: string | undefined;
      if (!md) {
        descriptorDigest = base64Hex(a[2]!, 0, a[2]!.length, 20);
        if (!descriptorDigest) throw spanError(it, `r: ${JSON.stringify(a[2]!.slice(0, 60))} is not a 20-byte digest in base64`);
      }
      r = { nickname: a[0]!, rsa, address, orPort, dirPort, descriptorDigest, line: it.line, start: it.kwStart, ipv6: undefined, flags: undefined, version: undefined, protocols: undefined, bandwidth: undefined, unmeasured: false, microdescDigest: undefined, policy: undefined };
      return;
    }
    if (!r) throw spanError(it, `${text.slice(it.kwStart, it.kwEnd)} before the first router entry`);
    if (klen === 1) {
      switch (k0) {
        case 0x73: // s
          if (r.flags) throw spanError(it, 's appears twice in one router entry');
          r.flags = it.argsEnd > it.argsStart ? text.slice(it.argsStart, it.argsEnd).split(' ') : [];
          return;
        case 0x6d: // m
          if (md && r.microdescDigest === undefined) {
            const sp = text.indexOf(' ', it.argsStart);
            const end = sp < 0 || sp > it.argsEnd ? it.argsEnd : sp;
            if (!base64Hex(text, it.argsStart, end, 32)) throw spanError(it, `m: ${JSON.stringify(text.slice(it.argsStart, Math.min(end, it.argsStart + 60)))} is not a 32-byte digest in base64`);
            let e = end;
            while (text.charCodeAt(e - 1) === 0x3d) e--;
            r.microdescDigest = text.slice(it.argsStart, e);
          }
          return;
        case 0x77: // w
          if (r.bandwidth !== undefined) return;
          for (const kv of text.slice(it.argsStart, it.argsEnd).split(' ')) {
            if (kv.startsWith('Bandwidth=')) {
              const n = decimal(kv, 10, kv.length, 0xffffffff);
              if (n < 0) throw spanError(it, `w: ${JSON.stringify(kv)} is not Bandwidth=<integer>`);
              r.bandwidth = n;
            } else if (kv === 'Unmeasured=1') r.unmeasured = true;
          }
          return;
        case 0x76: // v
          r.version ??= text.slice(it.argsStart, it.argsEnd);
          return;
        case 0x61: {
          // a
          if (r.ipv6) return;
          const args = text.slice(it.argsStart, it.argsEnd);
          const m = /^\[([0-9A-Fa-f:.]+)\]:(\d{1,5})$/.exec(args);
          if (!m || Number(m[2]) > 65535) throw spanError(it, `a: ${JSON.stringify(args)} is not [IPv6]:port`);
          r.ipv6 = { address: m[1]!, port: Number(m[2]) };
          return;
        }
        case 0x70: // p (ns flavour)
          if (!md) r.policy ??= text.slice(it.argsStart, it.argsEnd);
          return;
        default:
          return;
      }
    }
    if (klen === 2 && k0 === 0x70 && text.charCodeAt(it.kwStart + 1) === 0x72) {
      // pr
      if (r.protocols) throw spanError(it, 'pr appears twice in one router entry');
      r.protocols = parseProtocols(text.slice(it.argsStart, it.argsEnd), { keyword: 'pr', args: '', line: it.line, start: it.kwStart, lineEnd: 0, end: 0, object: undefined });
    }
  });
  finish();
  return { routers, endLine };
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** This module's own binding (under a CommonJS transform, tsx, an imported one is a getter call on each use). */
const keywordEnd = plainKeywordEnd;
/** Placeholders for a router entry's s and pr before their lines are read. */
const NO_FLAGS: readonly string[] = Object.freeze([]);
const NO_PROTOCOLS: Readonly<Record<string, string>> = Object.freeze({});
/** Field bounds of an `r` line (at most 8 fields are read). */
const fieldStart = new Int32Array(8);
const fieldEnd = new Int32Array(8);

/** isIPv4 of text[from, to) without making the string. */
function isIPv4At(text: string, from: number, to: number): boolean {
  let parts = 0;
  let start = from;
  for (let i = from; i <= to; i++) {
    if (i === to || text.charCodeAt(i) === 0x2e) {
      if (i - start > 3 || decimal(text, start, i, 255) < 0) return false;
      parts++;
      start = i + 1;
    }
  }
  return parts === 4;
}

/** Splits on single spaces as String.split(' ') does; frozen, shared between equal lines of one document. */
function cachedSplit(cache: Map<string, readonly string[]>, key: string): readonly string[] {
  let list = cache.get(key);
  if (list === undefined) {
    list = Object.freeze(key === '' ? [] : key.split(' '));
    cache.set(key, list);
  }
  return list;
}

/**
 * The router section of a whole consensus read in one pass, for documents as tor writes
 * them: what readRouters(…, strict) would return, the section's bounds found on the way
 * (routerSection's). Undefined for anything else (an object, a tab, an empty line, a
 * malformed or missing field, …): the caller then reads it with routerSection and
 * readRouters, which accept the same documents and name the line of any error.
 * Equal `s`, `v` and `pr` lines share their (frozen) values.
 */
function readRoutersFast(text: string, flavor: 'microdesc' | 'ns'): { from: number; to: number; routers: RouterEntry[]; endLine: number } | undefined {
  const n = text.length;
  const from = text.indexOf('\nr ') + 1;
  if (from <= 0) return undefined;
  let line = 1;
  for (let i = text.indexOf('\n'); i >= 0 && i < from; i = text.indexOf('\n', i + 1)) line++;
  const md = flavor === 'microdesc';
  const need = md ? 7 : 8;
  const o = md ? 0 : 1;
  const flagLists = new Map<string, readonly string[]>();
  const versions = new Map<string, string>();
  // The last s, v and pr lines and their values: consecutive entries often repeat them.
  let lastFlagsLine: string | undefined;
  let lastFlags: readonly string[] = NO_FLAGS;
  let lastVersion = '';
  let lastProtocolsLine: string | undefined;
  let lastProtocols: Readonly<Record<string, string>> | undefined;
  const routers: RouterEntry[] = [];
  let previous = '';
  let r: Mutable<RouterEntry> | undefined;
  let p = from;
  while (p < n) {
    const c0 = text.charCodeAt(p);
    // The section ends at the footer (routerSection's markers).
    if (c0 === 0x64 /* d */) {
      if (text.startsWith('directory-footer\n', p) || text.startsWith('directory-signature ', p) || (p === n - 16 && text.startsWith('directory-footer', p))) break;
    } else if (c0 === 0x62 /* b */ && text.startsWith('bandwidth-weights ', p)) break;
    let nl = text.indexOf('\n', p);
    if (nl < 0) nl = n;
    const k = keywordEnd(text, p, nl);
    if (k < 0) return undefined;
    const argsStart = k < nl ? k + 1 : nl;
    const klen = k - p;
    if (klen === 1) {
      switch (c0) {
        case 0x72: {
          // r
          if (r) {
            if (r.flags === NO_FLAGS || r.protocols === NO_PROTOCOLS || (md && r.microdescDigest === '')) return undefined;
            routers.push(r);
          }
          let q = argsStart;
          for (let f = 0; f < need; f++) {
            let e = text.indexOf(' ', q);
            if (e < 0 || e > nl) e = nl;
            if (e === nl && f < need - 1) return undefined;
            fieldStart[f] = q;
            fieldEnd[f] = e;
            q = e + 1;
          }
          const rsa = base64Hex(text, fieldStart[1]!, fieldEnd[1]!, 20);
          if (rsa === undefined || !(previous < rsa)) return undefined;
          previous = rsa;
          let descriptorDigest: string | undefined;
          if (!md) {
            descriptorDigest = base64Hex(text, fieldStart[2]!, fieldEnd[2]!, 20);
            if (descriptorDigest === undefined) return undefined;
          }
          if (!isIPv4At(text, fieldStart[4 + o]!, fieldEnd[4 + o]!)) return undefined;
          const orPort = decimal(text, fieldStart[5 + o]!, fieldEnd[5 + o]!, 65535);
          const dirPort = decimal(text, fieldStart[6 + o]!, fieldEnd[6 + o]!, 65535);
          if (orPort < 0 || dirPort < 0) return undefined;
          r = {
            nickname: text.slice(fieldStart[0]!, fieldEnd[0]!),
            rsa,
            address: text.slice(fieldStart[4 + o]!, fieldEnd[4 + o]!),
            orPort,
            dirPort,
            ipv6: undefined,
            flags: NO_FLAGS,
            version: undefined,
            protocols: NO_PROTOCOLS,
            bandwidth: undefined,
            unmeasured: false,
            microdescDigest: '',
            descriptorDigest,
            policy: undefined,
            line,
          };
          break;
        }
        case 0x73: // s
          if (!r || r.flags !== NO_FLAGS) return undefined;
          {
            // Comparing with the last line (a memcmp) before a Map lookup (which hashes the line).
            const line = text.slice(argsStart, nl);
            if (line !== lastFlagsLine) {
              lastFlags = cachedSplit(flagLists, line);
              lastFlagsLine = line;
            }
            r.flags = lastFlags;
          }
          break;
        case 0x6d: // m
          if (!r) return undefined;
          if (md && r.microdescDigest === '') {
            let end = text.indexOf(' ', argsStart);
            if (end < 0 || end > nl) end = nl;
            let e = end;
            while (e > argsStart && text.charCodeAt(e - 1) === 0x3d) e--;
            if (e - argsStart !== 43 || end - e > 2) return undefined;
            for (let i = argsStart; i < e; i++) {
              const c = text.charCodeAt(i);
              if (c >= 128 || B64[c]! < 0) return undefined;
              hexScratch[i - argsStart] = c;
            }
            // A flat copy, not a slice of the document: cheaper to compare (verifyMicrodescs).
            r.microdescDigest = hexScratch.toString('latin1', 0, 43);
          }
          break;
        case 0x77: // w
          if (!r) return undefined;
          if (r.bandwidth !== undefined) break;
          for (let q = argsStart; q <= nl; ) {
            let e = text.indexOf(' ', q);
            if (e < 0 || e > nl) e = nl;
            if (text.startsWith('Bandwidth=', q) && q + 10 <= e) {
              const bw = decimal(text, q + 10, e, 0xffffffff);
              if (bw < 0) return undefined;
              r.bandwidth = bw;
            } else if (e - q === 12 && text.startsWith('Unmeasured=1', q)) r.unmeasured = true;
            q = e + 1;
          }
          break;
        case 0x76: {
          // v
          if (!r) return undefined;
          if (r.version !== undefined) break;
          const v = text.slice(argsStart, nl);
          if (v !== lastVersion) {
            let shared = versions.get(v);
            if (shared === undefined) versions.set(v, (shared = v));
            lastVersion = shared;
          }
          r.version = lastVersion;
          break;
        }
        case 0x61: {
          // a
          if (!r) return undefined;
          if (r.ipv6) break;
          const m = /^\[([0-9A-Fa-f:.]+)\]:(\d{1,5})$/.exec(text.slice(argsStart, nl));
          if (!m || Number(m[2]) > 65535) return undefined;
          r.ipv6 = { address: m[1]!, port: Number(m[2]) };
          break;
        }
        case 0x70: // p (ns flavour)
          if (!r) return undefined;
          if (!md) r.policy ??= text.slice(argsStart, nl);
          break;
        default:
          if (!r) return undefined;
      }
    } else if (!r) return undefined;
    else if (klen === 2 && c0 === 0x70 && text.charCodeAt(p + 1) === 0x72) {
      // pr
      if (r.protocols !== NO_PROTOCOLS) return undefined;
      const key = text.slice(argsStart, nl);
      let protocols = key === lastProtocolsLine ? lastProtocols : protocolCache.get(key);
      if (protocols === undefined) {
        try {
          protocols = parseProtocols(key, { keyword: 'pr', args: '', line, start: p, lineEnd: 0, end: 0, object: undefined });
        } catch {
          return undefined;
        }
      }
      r.protocols = protocols;
      lastProtocols = protocols;
      lastProtocolsLine = key;
    }
    p = nl < n ? nl + 1 : n;
    line++;
    // An object in the router section: left to the tokenizer's rules.
    if (p < n && text.charCodeAt(p) === 0x2d && text.startsWith('-----BEGIN ', p)) return undefined;
  }
  if (r) {
    if (r.flags === NO_FLAGS || r.protocols === NO_PROTOCOLS || (md && r.microdescDigest === '')) return undefined;
    routers.push(r);
  }
  return { from, to: p, routers, endLine: line };
}

/**
 * Parses a consensus (latin1 text: see dir/netdoc). A DecodeError names the line of the
 * first thing that is wrong.
 */
export function parseConsensusDocument(text: string, options: ParseConsensusOptions = {}): Consensus {
  if (!text.startsWith('network-status-version ')) throw docError(WHAT, 1, 0, 'does not start with network-status-version');
  // The router entries (the bulk) are scanned apart; the tokenizer reads what surrounds them.
  // Documents as tor writes them in one pass; anything else with the checks that name its line.
  const fast = options.reference ? undefined : readRoutersFast(text, flavor0(text));
  const slow = fast ? undefined : routerSection(text);
  const section = fast ?? slow;
  const read = fast ?? (slow ? readRouters(text, slow.from, slow.to, slow.line, flavor0(text), true) : undefined);
  const items = section ? [...tokenize(text, WHAT, 0, section.from), ...tokenize(text, WHAT, section.to, text.length, read!.endLine)] : tokenize(text, WHAT);
  let i = 0;
  // --- preamble: everything before the first dir-source
  const preamble = new Map<string, Item[]>();
  for (; i < items.length && items[i]!.keyword !== 'dir-source' && items[i]!.keyword !== 'r' && items[i]!.keyword !== 'directory-footer'; i++) {
    const item = items[i]!;
    const list = preamble.get(item.keyword);
    if (list) list.push(item);
    else preamble.set(item.keyword, [item]);
  }
  const version = argsOf(once(preamble, 'network-status-version', 1));
  if (version[0] !== '3') throw docError(WHAT, 1, 0, `network-status-version ${version.join(' ')}: only version 3 is known`);
  const flavor = version[1] === 'microdesc' ? 'microdesc' : version[1] === undefined || version[1] === 'ns' ? 'ns' : undefined;
  if (!flavor) throw docError(WHAT, 1, 0, `unknown flavor ${JSON.stringify(version[1])}`);
  const status = once(preamble, 'vote-status', 1);
  if (status.args !== 'consensus') throw docError(WHAT, status.line, status.start, `vote-status is ${JSON.stringify(status.args)}, not consensus`);
  const methodItem = atMostOnce(preamble, 'consensus-method');
  const consensusMethod = methodItem ? parseIntArg(argsOf(methodItem)[0], methodItem, WHAT, 1) : 1;
  const times = ['valid-after', 'fresh-until', 'valid-until'].map((k) => {
    const item = once(preamble, k, 1);
    const [d, t] = argsOf(item);
    return { item, date: parseTime(d, t, item, WHAT) };
  });
  const [va, fu, vu] = times.map((t) => t.date) as [Date, Date, Date];
  const delayItem = once(preamble, 'voting-delay', 1);
  const [voteS, distS] = argsOf(delayItem);
  const votingDelay = { voteSeconds: parseIntArg(voteS, delayItem, WHAT), distSeconds: parseIntArg(distS, delayItem, WHAT) };
  // tor ns_parse.c: intervals at least MIN_VOTE_INTERVAL (10 s on a test network), delays at least 2 s.
  const minInterval = (options.testing ? 10 : 300) * 1000;
  if (va.getTime() + minInterval > fu.getTime()) throw docError(WHAT, times[1]!.item.line, times[1]!.item.start, `fresh-until ${fu.toISOString()} is less than ${minInterval / 1000} s after valid-after`);
  if (va.getTime() + 2 * minInterval > vu.getTime()) throw docError(WHAT, times[2]!.item.line, times[2]!.item.start, `valid-until ${vu.toISOString()} is less than ${(2 * minInterval) / 1000} s after valid-after`);
  if (votingDelay.voteSeconds < 2 || votingDelay.distSeconds < 2) throw docError(WHAT, delayItem.line, delayItem.start, 'voting-delay seconds must be at least 2');
  const listOf = (k: string) => {
    const item = atMostOnce(preamble, k);
    return item && item.args !== '' ? item.args.split(',') : [];
  };
  const flagsItem = atMostOnce(preamble, 'known-flags');
  const knownFlags = flagsItem ? argsOf(flagsItem) : [];
  for (let f = 1; f < knownFlags.length; f++) {
    if (!(knownFlags[f - 1]! < knownFlags[f]!)) throw docError(WHAT, flagsItem!.line, flagsItem!.start, `known-flags are not strictly ascending (${knownFlags[f - 1]} before ${knownFlags[f]})`);
  }
  const protoLine = (k: string) => {
    const item = atMostOnce(preamble, k);
    if (item) parseProtocols(item.args, item);
    return item?.args ?? '';
  };
  const recommendedClientProtocols = protoLine('recommended-client-protocols');
  const requiredClientProtocols = protoLine('required-client-protocols');
  protoLine('recommended-relay-protocols');
  protoLine('required-relay-protocols');
  const paramsItem = atMostOnce(preamble, 'params');
  const params = paramsItem ? parseParams(paramsItem, true) : {};
  const sharedRand = (k: string) => {
    const item = atMostOnce(preamble, k);
    if (!item) return undefined;
    const [n, v] = argsOf(item);
    return { reveals: parseIntArg(n, item, WHAT), value: parseBase64(v, 32, item, WHAT) };
  };

  // --- authority section
  const authorities: DirSourceEntry[] = [];
  while (i < items.length && items[i]!.keyword !== 'r' && items[i]!.keyword !== 'directory-footer' && items[i]!.keyword !== 'directory-signature') {
    const item = items[i++]!;
    if (item.keyword !== 'dir-source') {
      const last = authorities[authorities.length - 1];
      if (!last) continue;
      if (item.keyword === 'contact') authorities[authorities.length - 1] = { ...last, contact: item.args };
      else if (item.keyword === 'vote-digest') authorities[authorities.length - 1] = { ...last, voteDigest: item.args.toUpperCase() };
      continue;
    }
    const a = argsOf(item);
    if (a.length < 6) throw docError(WHAT, item.line, item.start, `dir-source needs 6 arguments, got ${a.length}`);
    if (!/^[0-9A-Fa-f]{40}$/.test(a[1]!)) throw docError(WHAT, item.line, item.start, `dir-source identity ${JSON.stringify(a[1])} is not 40 hex digits`);
    authorities.push({
      nickname: a[0]!,
      v3ident: a[1]!.toUpperCase(),
      address: parseIPv4(a[3], item),
      dirPort: parseIntArg(a[4], item, WHAT, 0, 65535),
      orPort: parseIntArg(a[5], item, WHAT, 0, 65535),
      contact: undefined,
      voteDigest: undefined,
    });
  }

  // --- router entries (read above)
  const routers = read?.routers ?? [];

  // --- footer
  let bandwidthWeights: Record<string, number> = {};
  const signatures: ConsensusSignature[] = [];
  if (i < items.length && items[i]!.keyword === 'directory-footer') i++;
  for (; i < items.length; i++) {
    const item = items[i]!;
    if (item.keyword === 'bandwidth-weights' && signatures.length === 0) {
      bandwidthWeights = parseParams(item, false);
    } else if (item.keyword === 'directory-signature') {
      const a = argsOf(item);
      const [algorithm, identity, sk] = a.length >= 3 ? [a[0]!, a[1], a[2]] : ['sha1', a[0], a[1]];
      if (!identity || !/^[0-9A-Fa-f]{40}$/.test(identity) || !sk || !/^[0-9A-Fa-f]{40}$/.test(sk)) {
        throw docError(WHAT, item.line, item.start, `directory-signature: expected [algorithm] identity signing-key-digest (40 hex each), got ${JSON.stringify(item.args)}`);
      }
      if (!item.object || item.object.tag !== 'SIGNATURE') throw docError(WHAT, item.line, item.start, 'directory-signature has no SIGNATURE object');
      const len = item.object.bytes.length;
      if (len < 128 || len > 512) throw docError(WHAT, item.line, item.start, `a signature of ${len} bytes (a 1024-4096-bit key makes 128-512)`);
      signatures.push({ algorithm, identity: identity.toUpperCase(), signingKeyDigest: sk.toUpperCase(), signature: item.object.bytes, line: item.line });
    } else if (signatures.length > 0) {
      throw docError(WHAT, item.line, item.start, `${item.keyword} after a directory-signature (only signatures may follow)`);
    } else if (item.keyword === 'r' || item.keyword === 'dir-source') {
      throw docError(WHAT, item.line, item.start, `${item.keyword} in the footer`);
    }
  }
  if (signatures.length === 0) throw docError(WHAT, items.length ? items[items.length - 1]!.line : 1, text.length, 'no directory-signature');
  // The first "\ndirectory-signature ": none starts inside the router section (it ends at the first).
  const marker = !section || text.lastIndexOf(SIGNED_MARKER, section.from - 1) >= 0 ? text.indexOf(SIGNED_MARKER) : text.indexOf(SIGNED_MARKER, section.to - 1);
  if (marker < 0) throw new DecodeError(WHAT, text.length, 'no "\\ndirectory-signature " to end the signed part');
  return {
    flavor,
    consensusMethod,
    validAfter: va,
    freshUntil: fu,
    validUntil: vu,
    votingDelay,
    clientVersions: listOf('client-versions'),
    serverVersions: listOf('server-versions'),
    knownFlags,
    recommendedClientProtocols,
    requiredClientProtocols,
    params,
    sharedRandPrevious: sharedRand('shared-rand-previous-value'),
    sharedRandCurrent: sharedRand('shared-rand-current-value'),
    authorities,
    routers,
    bandwidthWeights,
    signatures,
    signedEnd: marker + SIGNED_MARKER.length,
  };
}

/** The digest a signature of `algorithm` covers: the signed range of `text` (dir-spec §3.4.1). */
export function signedDigest(text: string, consensus: Consensus, algorithm: 'sha1' | 'sha256' | 'sha3-256'): Uint8Array {
  const signed = Buffer.from(text.slice(0, consensus.signedEnd), 'latin1');
  // One-shot hashing where Node has it (a little faster over the 2-3 MB of a full consensus).
  return new Uint8Array(typeof hash === 'function' ? (hash(algorithm, signed, 'buffer') as unknown as Buffer) : createHash(algorithm).update(signed).digest());
}
