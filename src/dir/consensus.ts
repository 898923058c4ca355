/**
 * dir/consensus — parses a v3 consensus, microdesc or ns flavour (dir-spec §3.4.1, §3.9.2),
 * with tor 0.4.9's rules (ns_parse.c): the preamble's once-only items, the authority
 * section, router entries strictly ascending by identity, the footer and its signatures,
 * and the signed range every signature covers.
 *
 * Layer: codec core. No I/O, no clock. Parsing checks form only: whether the signatures
 * verify and the document is live is dir/verify's job. Unknown keywords are ignored.
 */
import { createHash } from 'node:crypto';
import { DecodeError } from '../errors.js';
import { argsOf, docError, parseBase64, parseIntArg, parseTime, tokenize, type Item } from './netdoc.js';

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
}

const WHAT = 'consensus';
const SIGNED_MARKER = '\ndirectory-signature ';

/** Base64 identity (27 chars, 20 bytes) of an `r` line to upper hex. */
function identityHex(value: string | undefined, item: Item): string {
  return Buffer.from(parseBase64(value, 20, item, WHAT)).toString('hex').toUpperCase();
}

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

/**
 * Reads the router entries starting at `items[i]` (dir-spec §3.4.1 "r" … lines). `strict`
 * applies tor 0.4.9's rules (ascending identities; s, pr and, in the microdesc flavour, m
 * in every entry); lenient reading is for tools that look at fragments.
 */
export function readRouters(items: readonly Item[], start: number, flavor: 'microdesc' | 'ns', strict: boolean): { routers: RouterEntry[]; next: number } {
  let i = start;
  const routers: RouterEntry[] = [];
  let previous = '';
  while (i < items.length && items[i]!.keyword === 'r') {
    const r = items[i++]!;
    const a = argsOf(r);
    const md = flavor === 'microdesc';
    const need = md ? 7 : 8;
    if (a.length < need) throw docError(WHAT, r.line, r.start, `r needs ${need} arguments, got ${a.length}`);
    const rsa = identityHex(a[1], r);
    if (strict && !(previous < rsa)) throw docError(WHAT, r.line, r.start, `router ${a[0]} is not in ascending order of identity (after ${previous})`);
    previous = rsa;
    const o = md ? 0 : 1;
    let ipv6: RouterEntry['ipv6'];
    let flags: string[] | undefined;
    let versionLine: string | undefined;
    let protocols: Readonly<Record<string, string>> | undefined;
    let bandwidth: number | undefined;
    let unmeasured = false;
    let microdescDigest: string | undefined;
    let policy: string | undefined;
    for (; i < items.length; i++) {
      const item = items[i]!;
      const k = item.keyword;
      if (k === 'r' || k === 'directory-footer' || k === 'directory-signature' || k === 'bandwidth-weights') break;
      if (k === 'a') {
        if (ipv6) continue;
        const m = /^\[([0-9A-Fa-f:.]+)\]:(\d{1,5})$/.exec(item.args);
        if (!m || Number(m[2]) > 65535) throw docError(WHAT, item.line, item.start, `a: ${JSON.stringify(item.args)} is not [IPv6]:port`);
        ipv6 = { address: m[1]!, port: Number(m[2]) };
      } else if (k === 's') {
        if (flags) throw docError(WHAT, item.line, item.start, 's appears twice in one router entry');
        flags = argsOf(item);
      } else if (k === 'v') {
        versionLine ??= item.args;
      } else if (k === 'pr') {
        if (protocols) throw docError(WHAT, item.line, item.start, 'pr appears twice in one router entry');
        protocols = parseProtocols(item.args, item);
      } else if (k === 'w') {
        if (bandwidth !== undefined) continue;
        for (const kv of argsOf(item)) {
          if (kv.startsWith('Bandwidth=')) bandwidth = parseIntArg(kv.slice(10), item, WHAT);
          else if (kv === 'Unmeasured=1') unmeasured = true;
        }
      } else if (k === 'm' && md) {
        microdescDigest ??= Buffer.from(parseBase64(argsOf(item)[0], 32, item, WHAT)).toString('base64').replace(/=+$/, '');
      } else if (k === 'p' && !md) {
        policy ??= item.args;
      }
    }
    if (strict) {
      if (!flags) throw docError(WHAT, r.line, r.start, `router ${a[0]} has no s line`);
      // tor 0.4.9 requires pr in every entry (ns_parse.c rtrstatus_token_table: T1).
      if (!protocols) throw docError(WHAT, r.line, r.start, `router ${a[0]} has no pr line`);
      if (md && microdescDigest === undefined) throw docError(WHAT, r.line, r.start, `router ${a[0]} has no m line`);
    }
    routers.push({
      nickname: a[0]!,
      rsa,
      address: parseIPv4(a[4 + o], r),
      orPort: parseIntArg(a[5 + o], r, WHAT, 0, 65535),
      dirPort: parseIntArg(a[6 + o], r, WHAT, 0, 65535),
      ipv6,
      flags: flags ?? [],
      version: versionLine,
      protocols: protocols ?? {},
      bandwidth,
      unmeasured,
      microdescDigest: microdescDigest ?? '',
      descriptorDigest: md ? undefined : Buffer.from(parseBase64(a[2], 20, r, WHAT)).toString('hex').toUpperCase(),
      policy,
      line: r.line,
    });
  }
  return { routers, next: i };
}

/**
 * Parses a consensus (latin1 text: see dir/netdoc). A DecodeError names the line of the
 * first thing that is wrong.
 */
export function parseConsensusDocument(text: string, options: ParseConsensusOptions = {}): Consensus {
  if (!text.startsWith('network-status-version ')) throw docError(WHAT, 1, 0, 'does not start with network-status-version');
  const items = tokenize(text, WHAT);
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

  // --- router entries
  const read = readRouters(items, i, flavor, true);
  const routers = read.routers;
  i = read.next;

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
  const marker = text.indexOf(SIGNED_MARKER);
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
  return new Uint8Array(createHash(algorithm).update(Buffer.from(text.slice(0, consensus.signedEnd), 'latin1')).digest());
}
