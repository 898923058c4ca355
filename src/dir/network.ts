/**
 * dir/network — who a Tor network's directory authorities and fallback
 * directories are, and the rules that differ on a test network.
 *
 * Layer: configuration data (pure; no I/O except the `Network.fromFile` helper,
 * no clock). `Network.fromTorrc(text)` reads the torrc options that define a
 * network — `DirAuthority` (alias `DirServer`), `FallbackDir`,
 * `UseDefaultFallbackDirs`, `TestingTorNetwork` — with tor's own torrc syntax
 * (src/lib/encoding/confline.c `parse_config_line_from_str_verbose`: `#`
 * comments, `\`-newline continuations, C-escaped "quoted" values, `+Key` /
 * `/Key`, case-insensitive keys) and tor's rules for each line (src/app/config/
 * config.c `parse_dir_authority_line`, `parse_dir_fallback_line`,
 * `consider_adding_dir_servers`). Other options are ignored. `Network.PUBLIC` is
 * the public network as tor 0.4.9 embeds it (dir/public-network.ts);
 * `network.toTorrc()` writes a torrc that reads back to the same network.
 *
 * Stricter than tor, on purpose (tor only warns, and then silently runs with a
 * different network than the one written): a malformed `orport=`, `v3ident=` or
 * `weight=` value, an abbreviated option name, the same v3ident twice, and
 * `%include` / `AlternateDirAuthority` / `AlternateBridgeAuthority` (not
 * supported) are errors. What tor only warns about otherwise (unknown or obsolete
 * flags, a second `ipv6=`, an empty value) comes back in `parseTorrc().warnings`.
 * Every error is a `TorrcError` (a `BadArgumentError`) naming the line.
 *
 * Not here: fetching or verifying anything (dir/verify.ts and the directory
 * client use this), path selection.
 */
import { readFile } from 'node:fs/promises';
import { BadArgumentError } from '../errors.js';
import { PUBLIC_AUTHORITY_LINES, PUBLIC_FALLBACK_LINES } from './public-network.js';

// ---------------------------------------------------------------- types

/** An IPv6 ORPort (`ipv6=[addr]:port`). `address` is written without brackets. */
export interface IPv6OrPort {
  readonly address: string;
  readonly port: number;
}

/** An extra DirPort of an authority (`upload=` / `download=` / `vote=http://addr:port/`); clients never use it. */
export interface ExtraDirPort {
  readonly usage: 'upload' | 'download' | 'vote';
  /** IPv4 or IPv6 (without brackets). */
  readonly address: string;
  readonly port: number;
}

/** One `DirAuthority` line. */
export interface DirAuthority {
  /** null when the line has none (tor allows that). */
  readonly nickname: string | null;
  /** IPv4 literal (tor requires one). */
  readonly address: string;
  readonly dirPort: number;
  /** null without `orport=`: such an authority can't be reached over BEGIN_DIR (clients' only way). */
  readonly orPort: number | null;
  readonly ipv6: IPv6OrPort | null;
  /** The relay RSA identity fingerprint (checked in the link handshake), 40 upper-case hex. */
  readonly rsa: string;
  /** The v3 authority identity (signs key certificates), 40 upper-case hex; null: not a v3 authority. */
  readonly v3ident: string | null;
  /** A bridge authority (`bridge`). */
  readonly bridge: boolean;
  /** `weight=` (default 1). */
  readonly weight: number;
  readonly extraDirPorts: readonly ExtraDirPort[];
}

/** One `FallbackDir` line: a directory cache to bootstrap from (untrusted: what it serves is verified). */
export interface FallbackDir {
  /** IPv4 (tor also accepts IPv6 here), without brackets. */
  readonly address: string;
  /** 0 when not given (the built-in list gives none). */
  readonly dirPort: number;
  readonly orPort: number;
  readonly rsa: string;
  readonly ipv6: IPv6OrPort | null;
  /** `weight=` (default 1). */
  readonly weight: number;
}

/**
 * The client-side rules a network implies. On a test network (`TestingTorNetwork
 * 1`) tor changes these defaults (src/app/config/testnet.inc) and constants
 * (ns_parse.c, mainloop.c); everything else — formats, the signature rule — is
 * the same.
 */
export interface NetworkRules {
  /** No two relays of a path in the same IPv4 /16 or IPv6 /32 (`EnforceDistinctSubnets`; 0 on a test network). */
  readonly enforceDistinctSubnets: boolean;
  /** Refuse exits to private addresses (`ClientRejectInternalAddresses`; 0 on a test network). */
  readonly clientRejectInternalAddresses: boolean;
  /** A consensus needs fresh-until ≥ valid-after + this and valid-until ≥ valid-after + 2× this (ns_parse.c: MIN_VOTE_INTERVAL 300, MIN_VOTE_INTERVAL_TESTING 10). */
  readonly minVoteIntervalSec: number;
  /** How often tor checks whether to fetch a consensus (mainloop.c `fetch_networkstatus_callback`: 60 s, 1 s on a test network). */
  readonly consensusCheckIntervalSec: number;
  /** Fetch missing microdescriptors at least this often even when fewer than 16 are missing (`TestingClientMaxIntervalWithoutRequest`: 10 min, 5 s). */
  readonly maxIntervalWithoutRequestSec: number;
  /** A directory connection that makes no progress this long is closed (`TestingDirConnectionMaxStall`: 5 min, 30 s). */
  readonly dirConnectionMaxStallSec: number;
  /** First consensus attempt at an authority while fallbacks exist (`ClientBootstrapConsensusAuthorityDownloadInitialDelay`: 6 s, 0). */
  readonly bootstrapAuthorityInitialDelaySec: number;
  /** First consensus attempt at a fallback (`ClientBootstrapConsensusFallbackDownloadInitialDelay`: 0). */
  readonly bootstrapFallbackInitialDelaySec: number;
  /** First consensus attempt when there are only authorities (`ClientBootstrapConsensusAuthorityOnlyDownloadInitialDelay`: 0). */
  readonly bootstrapAuthorityOnlyInitialDelaySec: number;
  /** Base delay of other client downloads (`TestingClientDownloadInitialDelay`, `TestingClientConsensusDownloadInitialDelay`: 0). */
  readonly clientDownloadInitialDelaySec: number;
  /** Parallel consensus fetches at bootstrap (`ClientBootstrapConsensusMaxInProgressTries`: 3). */
  readonly bootstrapMaxInProgressTries: number;
  /** Authorities' weight factor among the fallbacks (`DirAuthorityFallbackRate`: 0.1; node_select.c). */
  readonly dirAuthorityFallbackRate: number;
  /** tor still builds circuits with a consensus up to this long past valid-until, or before valid-after (networkstatus.c REASONABLY_LIVE_TIME: 24 h). */
  readonly reasonablyLiveSec: number;
}

/** tor 0.4.9's defaults (config.c option table, networkstatus.c, ns_parse.c, mainloop.c). */
export const PUBLIC_RULES: NetworkRules = Object.freeze({
  enforceDistinctSubnets: true,
  clientRejectInternalAddresses: true,
  minVoteIntervalSec: 300,
  consensusCheckIntervalSec: 60,
  maxIntervalWithoutRequestSec: 600,
  dirConnectionMaxStallSec: 300,
  bootstrapAuthorityInitialDelaySec: 6,
  bootstrapFallbackInitialDelaySec: 0,
  bootstrapAuthorityOnlyInitialDelaySec: 0,
  clientDownloadInitialDelaySec: 0,
  bootstrapMaxInProgressTries: 3,
  dirAuthorityFallbackRate: 0.1,
  reasonablyLiveSec: 24 * 60 * 60,
});

/** What `TestingTorNetwork 1` changes (src/app/config/testnet.inc; ns_parse.c; mainloop.c). */
export const TESTING_RULES: NetworkRules = Object.freeze({
  ...PUBLIC_RULES,
  enforceDistinctSubnets: false,
  clientRejectInternalAddresses: false,
  minVoteIntervalSec: 10,
  consensusCheckIntervalSec: 1,
  maxIntervalWithoutRequestSec: 5,
  dirConnectionMaxStallSec: 30,
  bootstrapAuthorityInitialDelaySec: 0,
});

/** A directory to fetch from over BEGIN_DIR, with tor's pick weight (`directorySources()`). */
export interface DirectorySource {
  readonly kind: 'authority' | 'fallback';
  readonly nickname: string | null;
  readonly rsa: string;
  readonly address: string;
  readonly orPort: number;
  readonly ipv6: IPv6OrPort | null;
  readonly weight: number;
}

/** A torrc line that could not be used. `line` is 1-based (where its option name starts); 0 when not from a file. */
export class TorrcError extends BadArgumentError {
  readonly source: string;
  readonly line: number;

  constructor(source: string, line: number, message: string) {
    super(line > 0 ? `${source} line ${line}: ${message}` : `${source}: ${message}`);
    this.source = source;
    this.line = line;
  }
}

/** Something tor would only warn about. */
export interface TorrcWarning {
  readonly line: number;
  readonly message: string;
}

/** One option line as tor's parser reads it. */
export interface TorrcEntry {
  /** As written, without a `+` / `/` prefix. */
  readonly key: string;
  /** Continuations joined, quotes and escapes decoded, trimmed. */
  readonly value: string;
  /** `/Key`: reset the option (its value is then ""). */
  readonly clear: boolean;
  /** 1-based line where the key starts. */
  readonly line: number;
}

export interface TorrcOptions {
  /** Names the text in errors (a file name); default "torrc". */
  readonly source?: string;
}

// ---------------------------------------------------------------- torrc lines

const isSpace = (c: string | undefined): boolean => c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\v' || c === '\f';

/**
 * Splits torrc text into option lines exactly as tor does
 * (confline.c `parse_config_line_from_str_verbose`, `config_get_lines_aux` with
 * `extended`): blank and `#` lines are skipped; a key runs to whitespace or `#`;
 * a value starting with `"` is a C string (`\n \r \t \" \\ \' \xHH \ooo`) and
 * nothing but a comment may follow it; otherwise the value runs to the end of
 * the line or a `#`, trailing whitespace trimmed. A `\` right before a newline
 * continues the value on the next line; once continued, a `#` comment eats the
 * rest of its line *and* the newline, so the value goes on after it (tor's
 * quirk). An option with no value keeps "" (tor then skips or resets it).
 */
export function readTorrcEntries(text: string, options?: TorrcOptions): TorrcEntry[] {
  const source = options?.source ?? 'torrc';
  const nul = text.indexOf('\0');
  if (nul >= 0) throw new TorrcError(source, lineOf(text, nul), 'contains a NUL byte');
  const entries: TorrcEntry[] = [];
  const n = text.length;
  let pos = 0;
  let lineNo = 1;
  let counted = 0; // text[0..counted) has been scanned for newlines into lineNo
  const lineAt = (at: number): number => {
    for (; counted < at; counted++) if (text.charCodeAt(counted) === 10) lineNo++;
    return lineNo;
  };
  for (;;) {
    // Skip whitespace and comment lines up to the next key.
    for (;;) {
      while (pos < n && isSpace(text[pos])) pos++;
      if (text[pos] === '#') {
        while (pos < n && text[pos] !== '\n') pos++;
      } else break;
    }
    if (pos >= n) break;
    const keyStart = pos;
    const line = lineAt(keyStart);
    while (pos < n && !isSpace(text[pos]) && text[pos] !== '#' && !(text[pos] === '\\' && text[pos + 1] === '\n')) pos++;
    let key = text.slice(keyStart, pos);
    while (text[pos] === ' ' || text[pos] === '\t') pos++;
    const valueStart = pos;
    let value: string;
    if (text[pos] === '"') {
      const quoted = unescapeCString(text, pos);
      if (!quoted) throw new TorrcError(source, line, 'invalid escape sequence in quoted string');
      value = quoted.value;
      pos = quoted.end;
      while (text[pos] === ' ' || text[pos] === '\t') pos++;
      if (text[pos] === '\r') {
        pos++;
        if (text[pos] === '\n') pos++;
      }
      if (pos < n && text[pos] !== '#' && text[pos] !== '\n') throw new TorrcError(source, line, 'excess data after quoted string');
    } else {
      let continued = false;
      while (pos < n && text[pos] !== '\n' && (text[pos] !== '#' || continued)) {
        if (text[pos] === '\\' && text[pos + 1] === '\n') {
          continued = true;
          pos += 2;
        } else if (text[pos] === '#') {
          while (pos < n && text[pos] !== '\n') pos++;
          if (text[pos] === '\n') pos++;
        } else pos++;
      }
      let end = pos;
      if (text[pos] === '\n') pos++;
      while (end > valueStart && isSpace(text[end - 1])) end--;
      value = text.slice(valueStart, end);
      if (continued) value = value.replace(/#[^\n]*(?:\n|$)|\\\n/g, '');
    }
    if (text[pos] === '#') while (pos < n && text[pos] !== '\n') pos++;
    while (pos < n && isSpace(text[pos])) pos++;

    let clear = false;
    if (key.startsWith('+')) key = key.slice(1);
    else if (key.startsWith('/')) {
      key = key.slice(1);
      value = '';
      clear = true;
    }
    entries.push({ key, value, clear, line });
  }
  return entries;
}

function lineOf(text: string, at: number): number {
  let line = 1;
  for (let i = 0; i < at; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

const isOctal = (c: string | undefined): boolean => c !== undefined && c >= '0' && c <= '7';
const isHex = (c: string | undefined): boolean => c !== undefined && /^[0-9A-Fa-f]$/.test(c);

/** tor's cstring.c `unescape_string`: the C string literal at `start`, or null if malformed. */
function unescapeCString(text: string, start: number): { value: string; end: number } | null {
  let out = '';
  let i = start + 1;
  for (;;) {
    const c = text[i];
    if (c === undefined || c === '\n') return null;
    if (c === '"') return { value: out, end: i + 1 };
    if (c !== '\\') {
      out += c;
      i++;
      continue;
    }
    const e = text[i + 1];
    if (e === 'x' || e === 'X') {
      if (!isHex(text[i + 2]) || !isHex(text[i + 3])) return null;
      out += String.fromCharCode(parseInt(text.slice(i + 2, i + 4), 16));
      i += 4;
    } else if (isOctal(e)) {
      let j = i + 2;
      if (isOctal(text[j])) j++;
      if (isOctal(text[j])) j++;
      const code = parseInt(text.slice(i + 1, j), 8);
      if (code > 255) return null;
      out += String.fromCharCode(code);
      i = j;
    } else if (e === 'n' || e === 'r' || e === 't') {
      out += e === 'n' ? '\n' : e === 'r' ? '\r' : '\t';
      i += 2;
    } else if (e === '"' || e === '\\' || e === "'") {
      out += e;
      i += 2;
    } else return null;
  }
}

// ---------------------------------------------------------------- addresses, numbers

const HEX40 = /^[0-9A-Fa-f]{40}$/;
const NICKNAME = /^[A-Za-z0-9]{1,19}$/; // nickname.c is_legal_nickname

/** Dotted quad, no leading zeros, each ≤ 255 (inaddr.c `tor_inet_aton`). */
export function isIPv4(s: string): boolean {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return false;
  return m.slice(1).every((o) => (o.length === 1 || o[0] !== '0') && Number(o) <= 255);
}

/** RFC 4291 text form: 8 groups of 1–4 hex, at most one `::`, optionally an IPv4 tail; no zone. */
export function isIPv6(s: string): boolean {
  if (s.length < 2 || s.length > 45 || !/^[0-9A-Fa-f:.]+$/.test(s)) return false;
  let groups = 0;
  let rest = s;
  const lastColon = s.lastIndexOf(':');
  if (s.includes('.')) {
    if (lastColon < 0 || !isIPv4(s.slice(lastColon + 1))) return false;
    groups += 2;
    rest = s.slice(0, lastColon + 1);
    // Keep a "::" before the IPv4 tail ("::ffff:1.2.3.4" → "::ffff"; "a::1.2.3.4" → "a::").
    if (!rest.endsWith('::')) rest = rest.slice(0, -1);
  }
  const halves = rest.split('::');
  if (halves.length > 2) return false;
  const count = (part: string): number => {
    if (part === '') return 0;
    const gs = part.split(':');
    return gs.every((g) => /^[0-9A-Fa-f]{1,4}$/.test(g)) ? gs.length : -1;
  };
  const a = count(halves[0] ?? '');
  const b = halves.length === 2 ? count(halves[1] ?? '') : 0;
  if (a < 0 || b < 0) return false;
  groups += a + b;
  return halves.length === 2 ? groups <= 7 : groups === 8;
}

/** A port 1..65535 written in decimal (tor: strtol, 1..65535). */
function parsePort(s: string): number | null {
  if (!/^\d{1,5}$/.test(s)) return null;
  const p = Number(s);
  return p >= 1 && p <= 65535 ? p : null;
}

/** A decimal weight in [0, 2^64] (tor: strtod within 0..UINT64_MAX). */
function parseWeight(s: string): number | null {
  if (!/^[+]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/.test(s)) return null;
  const w = Number(s);
  return Number.isFinite(w) && w >= 0 && w <= 2 ** 64 ? w : null;
}

/**
 * tor's address.c `tor_addr_port_split` + `tor_addr_parse`: `addr[:port]`,
 * where addr is IPv4, `[IPv6]`, or a bare IPv6 (then without a port).
 * Returns port 0 when none is given; null when malformed.
 */
function splitAddrPort(s: string): { address: string; family: 4 | 6; port: number } | null {
  if (isIPv6(s)) return { address: s, family: 6, port: 0 };
  if (s.startsWith('[') && s.endsWith(']') && isIPv6(s.slice(1, -1))) return { address: s.slice(1, -1), family: 6, port: 0 };
  const colon = s.lastIndexOf(':');
  let host = s;
  let port = 0;
  if (colon >= 0) {
    const p = parsePort(s.slice(colon + 1));
    if (p === null) return null;
    host = s.slice(0, colon);
    port = p;
  }
  if (isIPv4(host)) return { address: host, family: 4, port };
  if (host.startsWith('[') && host.endsWith(']') && isIPv6(host.slice(1, -1))) return { address: host.slice(1, -1), family: 6, port };
  return null;
}

/** `[addr]:port` with an IPv6 address and a port (tor: `tor_addr_port_parse(…, -1)` and AF_INET6). */
function parseIPv6OrPort(s: string): IPv6OrPort | null {
  const ap = splitAddrPort(s);
  return ap && ap.family === 6 && ap.port > 0 ? { address: ap.address, port: ap.port } : null;
}

const bracket = (address: string): string => (address.includes(':') ? `[${address}]` : address);

// ---------------------------------------------------------------- DirAuthority / FallbackDir lines

type Fail = (message: string) => never;
type Warn = (message: string) => void;

const failWith =
  (source: string, line: number): Fail =>
  (message: string): never => {
    throw new TorrcError(source, line, message);
  };

/**
 * Parses the value of a `DirAuthority` line (config.c `parse_dir_authority_line`):
 * `[nickname] [flags…] IPv4:dirport FINGERPRINT` (the fingerprint may be split
 * into groups: the remaining tokens are joined).
 */
export function parseDirAuthorityLine(value: string, options?: TorrcOptions & { line?: number; onWarning?: Warn }): DirAuthority {
  const fail: Fail = failWith(options?.source ?? 'DirAuthority', options?.line ?? 0);
  const warn = options?.onWarning ?? ((): void => undefined);
  const items = value.split(/[ \t\n\r\v\f]+/).filter((t) => t !== '');
  if (items.length === 0) fail('no arguments on DirAuthority line');
  let nickname: string | null = null;
  if (NICKNAME.test(items[0] ?? '')) nickname = items.shift() ?? null;
  let orPort: number | null = null;
  let v3ident: string | null = null;
  let ipv6: IPv6OrPort | null = null;
  let bridge = false;
  let weight = 1;
  const extraDirPorts: ExtraDirPort[] = [];
  // Flags run until a token that starts with a digit (the address).
  while (items.length > 0 && !/^[0-9]/.test(items[0] ?? '')) {
    const flag = items.shift() ?? '';
    const lower = flag.toLowerCase();
    const after = flag.slice(flag.indexOf('=') + 1);
    if (lower === 'hs' || lower === 'no-hs') warn(`the DirAuthority options 'hs' and 'no-hs' are obsolete (ignored)`);
    else if (lower === 'bridge') bridge = true;
    else if (lower === 'no-v2') {
      // obsolete, still written by tools (chutney, our test network): ignored, as by tor
    } else if (lower.startsWith('orport=')) {
      orPort = parsePort(after) ?? fail(`invalid orport '${after}' (a port 1-65535)`);
    } else if (flag.startsWith('weight=')) {
      weight = parseWeight(after) ?? fail(`invalid weight '${after}' (a number ≥ 0)`);
    } else if (lower.startsWith('v3ident=')) {
      if (!HEX40.test(after)) fail(`bad v3 identity digest '${after}' (40 hex digits)`);
      v3ident = after.toUpperCase();
    } else if (lower.startsWith('ipv6=')) {
      const parsed = parseIPv6OrPort(after) ?? fail(`bad ipv6 addr/port '${after}' (expected [IPv6]:port)`);
      if (ipv6) warn(`redundant ipv6 addr/port '${after}' (the first one is kept)`);
      else ipv6 = parsed;
    } else if (lower.startsWith('upload=') || lower.startsWith('download=') || lower.startsWith('vote=')) {
      extraDirPorts.push(parseExtraDirPort(flag, fail));
    } else warn(`unrecognized flag '${flag}' on DirAuthority line (ignored)`);
  }
  if (items.length < 2) fail('too few arguments to DirAuthority line (expected IPv4:dirport and the RSA fingerprint after the flags)');
  const addrport = items.shift() ?? '';
  const ap = splitAddrPort(addrport);
  if (!ap || ap.family !== 4) fail(`the DirAuthority address '${addrport}' is not IPv4:dirport`);
  if (ap.port === 0) fail(`missing port in DirAuthority address '${addrport}'`);
  const fingerprint = items.join('');
  if (fingerprint.length !== 40) fail(`key digest '${fingerprint}' for DirAuthority is wrong length ${fingerprint.length} (40 hex digits)`);
  if (!HEX40.test(fingerprint)) fail(`key digest '${fingerprint}' for DirAuthority is not hex`);
  return { nickname, address: ap.address, dirPort: ap.port, orPort, ipv6, rsa: fingerprint.toUpperCase(), v3ident, bridge, weight, extraDirPorts };
}

/** config.c `parse_dirauth_dirport`: `usage=http://addr:port[/]`. */
function parseExtraDirPort(flag: string, fail: Fail): ExtraDirPort {
  const eq = flag.indexOf('=');
  const usage = flag.slice(0, eq).toLowerCase() as ExtraDirPort['usage'];
  const target = flag.slice(eq + 1);
  if (!target.startsWith('http://')) fail(`unsupported URL scheme in authority flag '${flag}' (http:// only)`);
  let addr = target.slice('http://'.length);
  const slash = addr.indexOf('/');
  if (slash >= 0) {
    if (addr.slice(slash) !== '/') fail(`unsupported URL prefix in authority flag '${flag}'`);
    addr = addr.slice(0, slash);
  }
  const ap = splitAddrPort(addr);
  if (!ap || ap.port === 0) fail(`unable to parse address in authority flag '${flag}' (addr:port)`);
  return { usage, address: ap.address, port: ap.port };
}

/**
 * Parses the value of a `FallbackDir` line (config.c `parse_dir_fallback_line`):
 * one positional `addr[:dirport]`, `orport=` and `id=` required, `ipv6=`,
 * `weight=` optional; other `key=value` items are ignored (as by tor: with a warning).
 */
export function parseFallbackDirLine(value: string, options?: TorrcOptions & { line?: number; onWarning?: Warn }): FallbackDir {
  const fail: Fail = failWith(options?.source ?? 'FallbackDir', options?.line ?? 0);
  const warn = options?.onWarning ?? ((): void => undefined);
  const positional: string[] = [];
  let orPort: number | null = null;
  let id: string | null = null;
  let ipv6: IPv6OrPort | null = null;
  let weight = 1;
  for (const item of value.split(/[ \t\n\r\v\f]+/).filter((t) => t !== '')) {
    const eq = item.indexOf('=');
    if (eq < 0) {
      positional.push(item);
      continue;
    }
    const after = item.slice(eq + 1);
    if (item.startsWith('orport=')) orPort = parsePort(after) ?? fail(`bad FallbackDir option '${item}' (a port 1-65535)`);
    else if (item.startsWith('id=')) {
      if (!HEX40.test(after)) fail(`bad FallbackDir option '${item}' (40 hex digits)`);
      id = after.toUpperCase();
    } else if (item.toLowerCase().startsWith('ipv6=')) {
      const parsed = parseIPv6OrPort(after) ?? fail(`bad ipv6 addr/port '${after}' on FallbackDir line (expected [IPv6]:port)`);
      if (ipv6) warn(`redundant ipv6 addr/port '${after}' on FallbackDir line (the first one is kept)`);
      else ipv6 = parsed;
    } else if (item.startsWith('weight=')) weight = parseWeight(after) ?? fail(`invalid weight '${after}' on FallbackDir line (a number ≥ 0)`);
    else warn(`unknown FallbackDir option '${item}' (ignored)`);
  }
  if (positional.length !== 1) fail(`a FallbackDir line needs exactly one address, got ${positional.length}${positional.length > 1 ? ` (${positional.join(' ')})` : ''}`);
  if (id === null || /^0{40}$/.test(id)) fail('missing identity (id=<40 hex>) on FallbackDir line');
  if (orPort === null) fail('missing orport on FallbackDir line');
  const addr = positional[0] ?? '';
  const ap = splitAddrPort(addr) ?? fail(`couldn't parse address:port '${addr}' on FallbackDir line`);
  return { address: ap.address, dirPort: ap.port, orPort, rsa: id, ipv6, weight };
}

/** Writes a `DirAuthority` value that `parseDirAuthorityLine` reads back to `a`. */
export function formatDirAuthorityLine(a: DirAuthority): string {
  const flags: string[] = [];
  if (a.orPort !== null) flags.push(`orport=${a.orPort}`);
  if (a.v3ident !== null) flags.push(`v3ident=${a.v3ident}`);
  if (a.ipv6) flags.push(`ipv6=[${a.ipv6.address}]:${a.ipv6.port}`);
  if (a.weight !== 1) flags.push(`weight=${a.weight}`);
  for (const d of a.extraDirPorts) flags.push(`${d.usage}=http://${bracket(d.address)}:${d.port}/`);
  if (a.bridge) flags.push('bridge');
  // Without a nickname the first token must not look like one ("bridge" would): lead with an ignored flag.
  if (a.nickname === null && flags[0] === 'bridge') flags.unshift('no-v2');
  return [...(a.nickname === null ? [] : [a.nickname]), ...flags, `${a.address}:${a.dirPort}`, a.rsa].join(' ');
}

/** Writes a `FallbackDir` value that `parseFallbackDirLine` reads back to `f`. */
export function formatFallbackDirLine(f: FallbackDir): string {
  const address = f.dirPort === 0 ? f.address : `${bracket(f.address)}:${f.dirPort}`;
  const parts = [address, `orport=${f.orPort}`, `id=${f.rsa}`];
  if (f.ipv6) parts.push(`ipv6=[${f.ipv6.address}]:${f.ipv6.port}`);
  if (f.weight !== 1) parts.push(`weight=${f.weight}`);
  return parts.join(' ');
}

// ---------------------------------------------------------------- Network

/** Option names we read, and the ones we refuse (lower case → canonical). */
const OPTIONS = new Map<string, string>([
  ['dirauthority', 'DirAuthority'],
  ['dirserver', 'DirAuthority'], // config.c option_abbrevs_: an alias
  ['fallbackdir', 'FallbackDir'],
  ['usedefaultfallbackdirs', 'UseDefaultFallbackDirs'],
  ['testingtornetwork', 'TestingTorNetwork'],
  ['alternatedirauthority', 'AlternateDirAuthority'],
  ['alternatebridgeauthority', 'AlternateBridgeAuthority'],
]);
const ABBREVIABLE = ['DirAuthority', 'FallbackDir', 'UseDefaultFallbackDirs', 'TestingTorNetwork', 'AlternateDirAuthority', 'AlternateBridgeAuthority'];

export interface NetworkInit {
  readonly authorities: readonly DirAuthority[];
  readonly fallbacks?: readonly FallbackDir[];
  /** TestingTorNetwork (default false). */
  readonly testing?: boolean;
}

let publicNetwork: Network | undefined;

/** A Tor network: its directory authorities, fallback directories and rules. Immutable. */
export class Network {
  readonly authorities: readonly DirAuthority[];
  readonly fallbacks: readonly FallbackDir[];
  /** `TestingTorNetwork 1`. */
  readonly testing: boolean;
  /** The client rules this network implies (TESTING_RULES or PUBLIC_RULES). */
  readonly rules: NetworkRules;

  constructor(init: NetworkInit) {
    if (init.authorities.length === 0) throw new BadArgumentError('a network needs at least one directory authority');
    const seen = new Map<string, string>();
    for (const a of init.authorities) {
      const check = parseDirAuthorityLine(formatDirAuthorityLine(a), { source: `authority ${a.nickname ?? a.rsa}` });
      if (!sameAuthority(check, a)) throw new BadArgumentError(`authority ${a.nickname ?? a.rsa} has an invalid field`);
      if (a.v3ident !== null) {
        const other = seen.get(a.v3ident);
        if (other !== undefined) throw new BadArgumentError(`v3ident ${a.v3ident} is given twice (${other} and ${a.nickname ?? a.rsa})`);
        seen.set(a.v3ident, a.nickname ?? a.rsa);
      }
    }
    for (const f of init.fallbacks ?? []) {
      const check = parseFallbackDirLine(formatFallbackDirLine(f), { source: `fallback ${f.rsa}` });
      if (JSON.stringify(check) !== JSON.stringify(normalFallback(f))) throw new BadArgumentError(`fallback ${f.rsa} has an invalid field`);
    }
    this.authorities = Object.freeze(init.authorities.map((a) => Object.freeze({ ...normalAuthority(a) })));
    this.fallbacks = Object.freeze((init.fallbacks ?? []).map((f) => Object.freeze(normalFallback(f))));
    this.testing = init.testing ?? false;
    this.rules = this.testing ? TESTING_RULES : PUBLIC_RULES;
  }

  /** The public Tor network as tor 0.4.9 embeds it: 10 authorities (9 v3 and the bridge authority Serge), 200 fallbacks. */
  static get PUBLIC(): Network {
    publicNetwork ??= new Network({
      authorities: PUBLIC_AUTHORITY_LINES.map((l) => parseDirAuthorityLine(l, { source: 'auth_dirs.inc' })),
      fallbacks: PUBLIC_FALLBACK_LINES.map((l) => parseFallbackDirLine(l, { source: 'fallback_dirs.inc' })),
    });
    return publicNetwork;
  }

  /** The network a torrc describes (see `parseTorrc`). */
  static fromTorrc(text: string, options?: TorrcOptions): Network {
    return Network.parseTorrc(text, options).network;
  }

  /**
   * Reads the network options of a torrc, as tor would
   * (config.c `consider_adding_dir_servers`): with `DirAuthority` lines, only
   * those authorities and only the `FallbackDir` lines given; without, the
   * public authorities, and the given `FallbackDir` lines or else (unless
   * `UseDefaultFallbackDirs 0`) the public fallbacks. `TestingTorNetwork 1`
   * requires `DirAuthority` lines (config.c `options_validate`).
   */
  static parseTorrc(text: string, options?: TorrcOptions): { network: Network; warnings: readonly TorrcWarning[] } {
    const source = options?.source ?? 'torrc';
    const warnings: TorrcWarning[] = [];
    let authorities: { value: DirAuthority; line: number }[] = [];
    let fallbacks: FallbackDir[] = [];
    const scalars = new Map<string, { value: boolean; line: number }>();
    for (const entry of readTorrcEntries(text, { source })) {
      const fail: Fail = failWith(source, entry.line);
      const warn = (message: string): void => void warnings.push({ line: entry.line, message });
      const lower = entry.key.toLowerCase();
      if (lower.startsWith('%include')) fail('%include is not supported here (give the included file itself)');
      const name = OPTIONS.get(lower);
      if (name === undefined) {
        const abbreviated = lower.length > 0 ? ABBREVIABLE.find((o) => o.toLowerCase().startsWith(lower)) : undefined;
        if (abbreviated) fail(`'${entry.key}' abbreviates ${abbreviated} (tor reads abbreviations with a deprecation warning); write ${abbreviated}`);
        continue; // not a network option
      }
      if (name === 'AlternateDirAuthority' || name === 'AlternateBridgeAuthority') fail(`${name} is not supported; list every authority with DirAuthority`);
      if (name === 'DirAuthority' || name === 'FallbackDir') {
        if (entry.value === '') {
          if (entry.clear) {
            if (name === 'DirAuthority') authorities = [];
            else fallbacks = [];
          } else warn(`${name} has no value (skipped)`);
          continue;
        }
        const lineOptions = { source, line: entry.line, onWarning: warn };
        if (name === 'DirAuthority') {
          const a = parseDirAuthorityLine(entry.value, lineOptions);
          if (a.v3ident === null && !a.bridge) warn(`DirAuthority ${a.nickname ?? a.rsa} has no v3ident: it signs no consensus`);
          const twin = a.v3ident === null ? undefined : authorities.find((b) => b.value.v3ident === a.v3ident);
          if (twin) fail(`v3ident ${a.v3ident ?? ''} was already given on line ${twin.line}`);
          authorities.push({ value: a, line: entry.line });
        } else fallbacks.push(parseFallbackDirLine(entry.value, lineOptions));
        continue;
      }
      // TestingTorNetwork, UseDefaultFallbackDirs: booleans, "" resets to the default, the last one wins.
      if (scalars.has(name)) warn(`option '${name}' used more than once; all but the last value are ignored`);
      if (entry.value === '') scalars.delete(name);
      else if (entry.value === '0' || entry.value === '1') scalars.set(name, { value: entry.value === '1', line: entry.line });
      else fail(`${name} must be 0 or 1, got '${entry.value}'`);
    }
    const testing = scalars.get('TestingTorNetwork');
    const useDefaultFallbacks = scalars.get('UseDefaultFallbackDirs')?.value ?? true;
    let network: Network;
    if (authorities.length > 0) {
      network = new Network({ authorities: authorities.map((a) => a.value), fallbacks, testing: testing?.value ?? false });
    } else {
      if (testing?.value) {
        throw new TorrcError(source, testing.line, 'TestingTorNetwork may only be configured with a non-default set of DirAuthority lines');
      }
      const pub = Network.PUBLIC;
      network = new Network({ authorities: pub.authorities, fallbacks: fallbacks.length > 0 ? fallbacks : useDefaultFallbacks ? pub.fallbacks : [] });
    }
    if (network.v3Authorities.length === 0) warnings.push({ line: 0, message: 'no v3 authority: no consensus can verify against this network' });
    return { network, warnings };
  }

  /** Reads a torrc-style network file (`fromTorrc` on its text; errors name the file). */
  static async fromFile(path: string): Promise<Network> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      throw new BadArgumentError(`cannot read the network file ${path}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    return Network.fromTorrc(text, { source: path });
  }

  /** A torrc that `fromTorrc` reads back to this network (and tor accepts). */
  toTorrc(): string {
    const lines = ['# Tor network: its directory authorities and fallback directories (torrc syntax)'];
    if (this.testing) lines.push('TestingTorNetwork 1');
    lines.push('UseDefaultFallbackDirs 0');
    for (const a of this.authorities) lines.push(`DirAuthority ${formatDirAuthorityLine(a)}`);
    for (const f of this.fallbacks) lines.push(`FallbackDir ${formatFallbackDirLine(f)}`);
    return lines.join('\n') + '\n';
  }

  /** The authorities whose signatures count (those with a v3ident), in order. */
  get v3Authorities(): readonly DirAuthority[] {
    return this.authorities.filter((a) => a.v3ident !== null);
  }

  /** Good signatures a consensus needs: more than half of the v3 authorities (networkstatus.c: n/2 + 1). */
  get requiredSignatures(): number {
    return Math.floor(this.v3Authorities.length / 2) + 1;
  }

  /** The v3 authority with this identity (40 hex, any case), if configured. */
  authorityByV3ident(v3ident: string): DirAuthority | undefined {
    const id = v3ident.toUpperCase();
    return this.authorities.find((a) => a.v3ident === id);
  }

  /**
   * The microdesc (or ns) consensus path tor asks for (dirclient.c
   * `directory_get_consensus_url`): the first 3 bytes (6 hex) of each v3ident,
   * sorted, joined by `+`; a cache answers 404 unless more than half of them signed.
   */
  consensusPath(flavor: 'microdesc' | 'ns' = 'microdesc', compressed = true): string {
    const ids = this.v3Authorities.map((a) => (a.v3ident ?? '').slice(0, 6)).sort();
    return `/tor/status-vote/current/${flavor === 'microdesc' ? 'consensus-microdesc' : 'consensus'}/${ids.join('+')}${compressed ? '.z' : ''}`;
  }

  /**
   * Where a client can fetch directory documents over BEGIN_DIR at bootstrap,
   * with tor's pick weights (dirlist.c `dir_server_add`: every authority is also
   * in the fallback list; node_select.c `dirserver_choose_by_weight`: authorities
   * count `DirAuthorityFallbackRate` × their weight there when fallbacks exist).
   * Authorities without an ORPort or without a v3ident (which serve no consensus) are left out.
   */
  directorySources(): DirectorySource[] {
    const rate = this.fallbacks.length > 0 ? this.rules.dirAuthorityFallbackRate : 1;
    const sources: DirectorySource[] = [];
    for (const f of this.fallbacks) sources.push({ kind: 'fallback', nickname: null, rsa: f.rsa, address: f.address, orPort: f.orPort, ipv6: f.ipv6, weight: f.weight });
    for (const a of this.authorities) {
      if (a.orPort === null || a.v3ident === null) continue;
      sources.push({ kind: 'authority', nickname: a.nickname, rsa: a.rsa, address: a.address, orPort: a.orPort, ipv6: a.ipv6, weight: a.weight * rate });
    }
    return sources;
  }
}

function normalAuthority(a: DirAuthority): DirAuthority {
  return {
    nickname: a.nickname,
    address: a.address,
    dirPort: a.dirPort,
    orPort: a.orPort,
    ipv6: a.ipv6 ? Object.freeze({ address: a.ipv6.address, port: a.ipv6.port }) : null,
    rsa: a.rsa.toUpperCase(),
    v3ident: a.v3ident === null ? null : a.v3ident.toUpperCase(),
    bridge: a.bridge,
    weight: a.weight,
    extraDirPorts: Object.freeze(a.extraDirPorts.map((d) => Object.freeze({ usage: d.usage, address: d.address, port: d.port }))),
  };
}

function normalFallback(f: FallbackDir): FallbackDir {
  return {
    address: f.address,
    dirPort: f.dirPort,
    orPort: f.orPort,
    rsa: f.rsa.toUpperCase(),
    ipv6: f.ipv6 ? Object.freeze({ address: f.ipv6.address, port: f.ipv6.port }) : null,
    weight: f.weight,
  };
}

function sameAuthority(parsed: DirAuthority, given: DirAuthority): boolean {
  return JSON.stringify(parsed) === JSON.stringify(normalAuthority(given));
}
