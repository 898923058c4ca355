/**
 * dir/microdesc — microdescriptors (dir-spec §3.3) as tor 0.4.9 splits and digests them
 * (microdesc_parse.c): each begins at a line starting `onion-key`, its body runs to the
 * next such line (or an `@` annotation) and includes its last newline, and its digest
 * is SHA-256 of that body, base64 without padding — the consensus' `m` value.
 *
 * Layer: codec core. No I/O. Whether a microdescriptor belongs to the consensus is the
 * caller's check (its digest against the `m` lines); unknown keywords are ignored.
 */
import { createHash, hash } from 'node:crypto';
import { BASE64_CHAR, docError, isKeyword, scanItems } from './netdoc.js';

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
function sha256Base64(bytes: Buffer, from: number, to: number): string {
  const part = bytes.subarray(from, to);
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
 * `onion-key` (an object's body never does), `@` annotation lines skipped. One pass with
 * the allocation-free scanner; a malformed one is a DecodeError naming its line.
 */
export function parseMicrodescs(text: string): { microdescs: Microdesc[] } {
  const microdescs: Microdesc[] = [];
  const bytes = Buffer.from(text, 'latin1');
  let pos = 0;
  let line = 1;
  while (pos < text.length) {
    // Annotations (tor's cache files) belong to no microdescriptor.
    if (text.charCodeAt(pos) === 0x40) {
      const nl = text.indexOf('\n', pos);
      pos = nl < 0 ? text.length : nl + 1;
      line++;
      continue;
    }
    if (!startsMicrodesc(text, pos)) {
      throw docError(WHAT, line, pos, `expected onion-key, got ${JSON.stringify(text.slice(pos, Math.min(text.length, pos + 40)).split('\n')[0])}`);
    }
    const start = pos;
    const startLine = line;
    // The body runs to the next line starting onion-key or @ (dir-spec §3.3), or the end.
    let end = text.length;
    for (let at = text.indexOf('\n', start); at >= 0 && at + 1 < text.length; at = text.indexOf('\n', at + 1)) {
      if (text.charCodeAt(at + 1) === 0x40 || startsMicrodesc(text, at + 1)) {
        end = at + 1;
        break;
      }
    }
    let ntorOnionKey: string | undefined;
    let ed25519: string | undefined;
    let family: string[] = [];
    let familyIds: string[] = [];
    let policy: string | undefined;
    let policy6: string | undefined;
    let ipv6: Microdesc['ipv6'];
    line = scanItems(text, WHAT, start, end, startLine, (it) => {
      switch (text.charCodeAt(it.kwStart)) {
        case 0x6e: // n
          if (isKeyword(text, it, 'ntor-onion-key')) {
            if (ntorOnionKey !== undefined) throw docError(WHAT, it.line, it.kwStart, 'ntor-onion-key appears twice');
            const sp = text.indexOf(' ', it.argsStart);
            ntorOnionKey = base64Key(text, it.argsStart, sp < 0 || sp > it.argsEnd ? it.argsEnd : sp, it.line, 'ntor-onion-key');
          }
          return;
        case 0x69: // i
          if (isKeyword(text, it, 'id') && text.startsWith('ed25519 ', it.argsStart)) {
            if (ed25519 !== undefined) throw docError(WHAT, it.line, it.kwStart, 'more than one id ed25519');
            const from = it.argsStart + 8;
            const sp = text.indexOf(' ', from);
            ed25519 = base64Key(text, from, sp < 0 || sp > it.argsEnd ? it.argsEnd : sp, it.line, 'id ed25519');
          }
          return;
        case 0x66: // f
          if (isKeyword(text, it, 'family')) family = splitArgs(text.slice(it.argsStart, it.argsEnd));
          else if (isKeyword(text, it, 'family-ids')) familyIds = splitArgs(text.slice(it.argsStart, it.argsEnd));
          return;
        case 0x70: // p
          if (isKeyword(text, it, 'p')) policy ??= text.slice(it.argsStart, it.argsEnd);
          else if (isKeyword(text, it, 'p6')) policy6 ??= text.slice(it.argsStart, it.argsEnd);
          return;
        case 0x61: // a
          if (isKeyword(text, it, 'a') && !ipv6) {
            const m = /^\[([0-9A-Fa-f:.]+)\]:(\d{1,5})$/.exec(text.slice(it.argsStart, it.argsEnd));
            if (m) ipv6 = { address: m[1]!, port: Number(m[2]) };
          }
          return;
        default:
          return;
      }
    });
    if (ntorOnionKey === undefined) throw docError(WHAT, startLine, start, 'no ntor-onion-key');
    microdescs.push({ digest: sha256Base64(bytes, start, end), ntorOnionKey, ed25519, family, familyIds, policy, policy6, ipv6, text: text.slice(start, end), line: startLine });
    pos = end;
  }
  return { microdescs };
}

function splitArgs(args: string): string[] {
  return args === '' ? [] : args.split(' ').filter((a) => a !== '');
}
