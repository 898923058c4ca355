/**
 * dir/microdesc — microdescriptors (dir-spec §3.3) as tor 0.4.9 splits and digests them
 * (microdesc_parse.c): each begins at a line starting `onion-key`, its body runs to the
 * next such line (or an `@` annotation) and includes its last newline, and its digest
 * is SHA-256 of that body, base64 without padding — the consensus' `m` value.
 *
 * Each is read by a one-pass fast path, or, when it is anything but plainly well formed, by
 * the checked reader (dir/netdoc's scanner), which names the line of an error.
 *
 * Layer: codec core. No I/O. Whether a microdescriptor belongs to the consensus is the
 * caller's check (its digest against the `m` lines); unknown keywords are ignored.
 */
import { createHash, hash } from 'node:crypto';
import { BASE64_CHAR, docError, isKeyword, plainKeywordEnd, scanItems } from './netdoc.js';

export interface Microdesc {
  /** SHA-256 of the body, base64 unpadded (43 chars): the consensus `m` value. */
  readonly digest: string;
  /** The curve25519 ntor onion key, base64 unpadded. */
  readonly ntorOnionKey: string;
  /** The Ed25519 identity (`id ed25519`), base64 unpadded. */
  readonly ed25519: string | undefined;
  readonly family: readonly string[];
  readonly familyIds: readonly string[];
  /** Exit policy summaries (`p`, `p6`); undefined when absent (absent `p` means reject all). */
  readonly policy: string | undefined;
  readonly policy6: string | undefined;
  readonly ipv6: { readonly address: string; readonly port: number } | undefined;
  /** The body exactly as digested (latin1). */
  readonly text: string;
  readonly line: number;
}

const WHAT = 'microdescriptor';
const LAST_KEY_CHAR = new Set([...'AEIMQUYcgkosw048'].map((c) => c.charCodeAt(0)));

/** A 32-byte key in base64 as tor writes it (43 characters, '=' optional), unpadded. */
function base64Key(text: string, from: number, to: number, line: number, keyword: string): string {
  const n = to - from;
  let ok = n === 43 || (n === 44 && text.charCodeAt(from + 43) === 0x3d);
  for (let i = from; ok && i < from + 42; i++) {
    const c = text.charCodeAt(i);
    ok = c < 128 && BASE64_CHAR[c] === 1 && c !== 0x3d;
  }
  // 43 characters carry 258 bits: the last one's low 2 bits must be zero for 32 bytes.
  if (ok) ok = LAST_KEY_CHAR.has(text.charCodeAt(from + 42));
  if (ok) return text.slice(from, from + 43);
  throw docError(WHAT, line, from, `${keyword}: ${JSON.stringify(text.slice(from, Math.min(to, from + 60)))} is not a 32-byte key in base64`);
}

/** SHA-256 of bytes[from, to), base64 unpadded (one-shot hashing where Node has it). */
function sha256Base64(bytes: Uint8Array, from: number, to: number): string {
  const part = new Uint8Array(bytes.buffer, bytes.byteOffset + from, to - from);
  return (typeof hash === 'function' ? (hash('sha256', part, 'base64') as string) : createHash('sha256').update(part).digest('base64')).slice(0, 43);
}

/** Does a microdescriptor start at `pos` (a line `onion-key`, dir-spec §3.3)? */
function startsMicrodesc(text: string, pos: number): boolean {
  if (!text.startsWith('onion-key', pos)) return false;
  const c = text.charCodeAt(pos + 9);
  return Number.isNaN(c) || c === 0x0a || c === 0x20;
}

/**
 * Parses every microdescriptor in `text` (latin1), split as tor splits them
 * (microdesc_parse.c `find_start_of_next_microdesc`): at each line that starts with
 * `onion-key` (an object's body never does), `@` annotation lines skipped. A malformed one
 * is a DecodeError naming its line.
 *
 * Each is read by a fast path that accepts only plainly well-formed input (single-space
 * separators, objects whose body is base64 lines and whose END line ends a line); whatever
 * it does not take is read again by `readMicrodescChecked` (the allocation-free scanner,
 * the reference), which reads it or throws the precise error. Both give the same result.
 */
export function parseMicrodescs(text: string): { microdescs: Microdesc[] } {
  return readAll(text, true);
}

/** parseMicrodescs with the reference reader only (for tests comparing the two). */
export function parseMicrodescsChecked(text: string): { microdescs: Microdesc[] } {
  return readAll(text, false);
}

function readAll(text: string, fast: boolean): { microdescs: Microdesc[] } {
  const microdescs: Microdesc[] = [];
  const bytes = Buffer.from(text, 'latin1');
  const n = text.length;
  let pos = 0;
  let line = 1;
  let known = false;
  while (pos < n) {
    // Annotations (tor's cache files) belong to no microdescriptor.
    if (text.charCodeAt(pos) === 0x40) {
      const nl = text.indexOf('\n', pos);
      pos = nl < 0 ? n : nl + 1;
      line++;
      known = false;
      continue;
    }
    // (After a microdescriptor the fast path read, the next one's start is already checked.)
    if (!known && !startsMicrodesc(text, pos)) {
      throw docError(WHAT, line, pos, `expected onion-key, got ${JSON.stringify(text.slice(pos, Math.min(n, pos + 40)).split('\n')[0])}`);
    }
    let md = fast ? readMicrodescFast(text, bytes, pos, line) : undefined;
    known = md !== undefined;
    md ??= readMicrodescChecked(text, bytes, pos, line);
    microdescs.push(md);
    pos = next.pos;
    line = next.line;
  }
  return { microdescs };
}

type Draft = { -readonly [K in keyof Microdesc]: Microdesc[K] };

/** No family (shared: most microdescriptors have none). */
const NO_NAMES: readonly string[] = Object.freeze([]);

/** A microdescriptor starting at `line`, its fields still empty (both readers fill one in). */
function draft(line: number): Draft {
  return { digest: '', ntorOnionKey: '', ed25519: undefined, family: NO_NAMES, familyIds: NO_NAMES, policy: undefined, policy6: undefined, ipv6: undefined, text: '', line };
}

/** Where the last microdescriptor read ended: the offset and line after it. */
const next = { pos: 0, line: 0 };

/** The fast path's helper as this module's own binding: under a CommonJS transform (tsx) an imported one is a getter call on every use. */
const keywordEnd = plainKeywordEnd;
/** A run of base64 lines (the alphabet, '=', newlines), matched from lastIndex. */
const BASE64_RUN = /[A-Za-z0-9+/=\n]*/y;
const RSA_BEGIN = '-----BEGIN RSA PUBLIC KEY-----\n';
const RSA_END = '\n-----END RSA PUBLIC KEY-----';

/** The base64 alphabet without '=' (1), and the characters a 32-byte key may end with (2). */
const KEY_CHAR = new Uint8Array(256);
for (const ch of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/') KEY_CHAR[ch.charCodeAt(0)] = 1;
for (const c of LAST_KEY_CHAR) KEY_CHAR[c] = 3;

/** base64Key's test without the error, on the bytes: a 32-byte key's 43 characters ('=' optional) at [from, to)? */
function isKey(bytes: Uint8Array, from: number, to: number): boolean {
  const n = to - from;
  if (n !== 43 && (n !== 44 || bytes[from + 43] !== 0x3d)) return false;
  for (let i = from; i < from + 42; i++) if ((KEY_CHAR[bytes[i]!]! & 1) === 0) return false;
  return (KEY_CHAR[bytes[from + 42]!]! & 2) !== 0;
}

/**
 * Where a key starting at `from` ends: at the first space before `nl`, else at `nl`. A
 * line holding just a key (43 or 44 characters, which isKey checks hold no space) needs
 * no search.
 */
function keyEnd(text: string, from: number, nl: number): number {
  if (nl - from === 43 || nl - from === 44) return nl;
  const sp = text.indexOf(' ', from);
  return sp < 0 || sp > nl ? nl : sp;
}

/**
 * The microdescriptor at `start` (a line `onion-key`), or undefined for anything the
 * reference reader must look at: a line that is empty, has a bad keyword or a tab after
 * it, an object that is not base64 lines ended by its END line and a newline, a repeated
 * or malformed key. Sets `next`.
 */
function readMicrodescFast(text: string, bytes: Buffer, start: number, startLine: number): Microdesc | undefined {
  const n = text.length;
  const md = draft(startLine);
  let p = start;
  let line = startLine;
  for (;;) {
    let nl = text.indexOf('\n', p);
    if (nl < 0) nl = n;
    const k = keywordEnd(text, p, nl);
    if (k < 0) return undefined;
    const argsStart = k < nl ? k + 1 : nl;
    const klen = k - p;
    switch (text.charCodeAt(p)) {
      case 0x6e: // n
        if (klen === 14 && text.startsWith('ntor-onion-key', p)) {
          if (md.ntorOnionKey !== '') return undefined;
          if (!isKey(bytes, argsStart, keyEnd(text, argsStart, nl))) return undefined;
          md.ntorOnionKey = text.slice(argsStart, argsStart + 43);
        }
        break;
      case 0x69: // i
        if (klen === 2 && text.charCodeAt(p + 1) === 0x64 && text.startsWith('ed25519 ', argsStart)) {
          if (md.ed25519 !== undefined) return undefined;
          const from = argsStart + 8;
          if (!isKey(bytes, from, keyEnd(text, from, nl))) return undefined;
          md.ed25519 = text.slice(from, from + 43);
        }
        break;
      case 0x66: // f
        if (klen === 6 && text.startsWith('family', p)) md.family = splitArgs(text.slice(argsStart, nl));
        else if (klen === 10 && text.startsWith('family-ids', p)) md.familyIds = splitArgs(text.slice(argsStart, nl));
        break;
      case 0x70: // p
        if (klen === 1) md.policy ??= text.slice(argsStart, nl);
        else if (klen === 2 && text.charCodeAt(p + 1) === 0x36) md.policy6 ??= text.slice(argsStart, nl);
        break;
      case 0x61: // a
        if (klen === 1 && !md.ipv6) md.ipv6 = ipv6Of(text.slice(argsStart, nl));
        break;
      default:
        break;
    }
    p = nl < n ? nl + 1 : n;
    line++;
    const rsaKey = p < n && text.charCodeAt(p) === 0x2d && text.startsWith(RSA_BEGIN, p);
    if (rsaKey || (p < n && text.charCodeAt(p) === 0x2d && text.startsWith('-----BEGIN ', p))) {
      // An object: the onion-key's RSA key (the usual one), or any other well-formed one.
      let headerEnd: number;
      let endAt: number;
      let markerLength: number;
      if (rsaKey) {
        headerEnd = p + RSA_BEGIN.length - 1;
        endAt = text.indexOf(RSA_END, p);
        markerLength = RSA_END.length;
      } else {
        headerEnd = text.indexOf('\n', p);
        if (headerEnd < 0 || headerEnd - p <= 16 || !text.startsWith('-----', headerEnd - 5)) return undefined;
        const endMarker = `\n-----END ${text.slice(p + 11, headerEnd - 5)}-----`;
        endAt = text.indexOf(endMarker, p);
        markerLength = endMarker.length;
      }
      if (endAt < 0) return undefined;
      // Only base64 lines up to the END line: then no line in between starts a microdescriptor.
      BASE64_RUN.lastIndex = headerEnd + 1;
      BASE64_RUN.test(text);
      if (BASE64_RUN.lastIndex !== endAt + 1) return undefined;
      let after = endAt + markerLength;
      if (after < n) {
        if (text.charCodeAt(after) !== 0x0a) return undefined;
        after++;
      }
      let bodyLines = 0;
      for (let at = text.indexOf('\n', headerEnd + 1); at >= 0 && at < endAt; at = text.indexOf('\n', at + 1)) bodyLines++;
      line += (endAt > headerEnd ? 2 : 1) + bodyLines + (after > endAt + markerLength ? 1 : 0);
      p = after;
    }
    // The body runs to the next line starting onion-key or @ (dir-spec §3.3), or the end.
    if (p >= n) break;
    const c0 = text.charCodeAt(p);
    if (c0 === 0x40 || (c0 === 0x6f && startsMicrodesc(text, p))) break;
    if (c0 === 0x0a) return undefined; // an empty line
  }
  if (md.ntorOnionKey === '') return undefined;
  return done(md, text, bytes, start, p, line);
}

/**
 * The microdescriptor at `start` read with the allocation-free scanner (dir/netdoc), which
 * checks every rule and names the line of what is wrong. Sets `next`.
 */
function readMicrodescChecked(text: string, bytes: Buffer, start: number, startLine: number): Microdesc {
  // The body runs to the next line starting onion-key or @ (dir-spec §3.3), or the end.
  let end = text.length;
  for (let at = text.indexOf('\n', start); at >= 0 && at + 1 < text.length; at = text.indexOf('\n', at + 1)) {
    if (text.charCodeAt(at + 1) === 0x40 || startsMicrodesc(text, at + 1)) {
      end = at + 1;
      break;
    }
  }
  const md = draft(startLine);
  const line = scanItems(text, WHAT, start, end, startLine, (it) => {
    switch (text.charCodeAt(it.kwStart)) {
      case 0x6e: // n
        if (isKeyword(text, it, 'ntor-onion-key')) {
          if (md.ntorOnionKey !== '') throw docError(WHAT, it.line, it.kwStart, 'ntor-onion-key appears twice');
          const sp = text.indexOf(' ', it.argsStart);
          md.ntorOnionKey = base64Key(text, it.argsStart, sp < 0 || sp > it.argsEnd ? it.argsEnd : sp, it.line, 'ntor-onion-key');
        }
        return;
      case 0x69: // i
        if (isKeyword(text, it, 'id') && text.startsWith('ed25519 ', it.argsStart)) {
          if (md.ed25519 !== undefined) throw docError(WHAT, it.line, it.kwStart, 'more than one id ed25519');
          const from = it.argsStart + 8;
          const sp = text.indexOf(' ', from);
          md.ed25519 = base64Key(text, from, sp < 0 || sp > it.argsEnd ? it.argsEnd : sp, it.line, 'id ed25519');
        }
        return;
      case 0x66: // f
        if (isKeyword(text, it, 'family')) md.family = splitArgs(text.slice(it.argsStart, it.argsEnd));
        else if (isKeyword(text, it, 'family-ids')) md.familyIds = splitArgs(text.slice(it.argsStart, it.argsEnd));
        return;
      case 0x70: // p
        if (isKeyword(text, it, 'p')) md.policy ??= text.slice(it.argsStart, it.argsEnd);
        else if (isKeyword(text, it, 'p6')) md.policy6 ??= text.slice(it.argsStart, it.argsEnd);
        return;
      case 0x61: // a
        if (isKeyword(text, it, 'a') && !md.ipv6) md.ipv6 = ipv6Of(text.slice(it.argsStart, it.argsEnd));
        return;
      default:
        return;
    }
  });
  if (md.ntorOnionKey === '') throw docError(WHAT, startLine, start, 'no ntor-onion-key');
  return done(md, text, bytes, start, end, line);
}

/** Completes a read microdescriptor text[start, end) (its digest and text) and sets `next`. */
function done(md: Draft, text: string, bytes: Buffer, start: number, end: number, line: number): Microdesc {
  md.digest = sha256Base64(bytes, start, end);
  md.text = text.slice(start, end);
  next.pos = end;
  next.line = line;
  return md;
}

/** An `a` line's [IPv6]:port, or undefined. */
function ipv6Of(args: string): Microdesc['ipv6'] {
  const m = /^\[([0-9A-Fa-f:.]+)\]:(\d{1,5})$/.exec(args);
  return m ? { address: m[1]!, port: Number(m[2]) } : undefined;
}

function splitArgs(args: string): string[] {
  if (args === '') return [];
  const parts = args.split(' ');
  return parts.includes('') ? parts.filter(nonEmpty) : parts;
}

function nonEmpty(a: string): boolean {
  return a !== '';
}
