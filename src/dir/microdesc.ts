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
import { argsOf, docError, parseBase64, tokenize, type Item } from './netdoc.js';

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
const KEY_BASE64 = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=?$/;

/** A 32-byte key in base64 as tor writes it (43 characters, '=' optional), unpadded. */
function base64Key(value: string | undefined, item: Item): string {
  if (value !== undefined && KEY_BASE64.test(value)) return value.length === 44 ? value.slice(0, 43) : value;
  parseBase64(value, 32, item, WHAT); // throws the precise DecodeError
  return value!;
}

/** SHA-256 of latin1 text, base64 unpadded (one-shot hashing where Node has it). */
const sha256Base64: (text: string) => string =
  typeof hash === 'function'
    ? (text) => (hash('sha256', Buffer.from(text, 'latin1'), 'base64') as string).slice(0, 43)
    : (text) => createHash('sha256').update(Buffer.from(text, 'latin1')).digest('base64').slice(0, 43);

/** Offsets where microdescriptors start: each line beginning `onion-key` (and `@` annotations end one). */
function boundaries(text: string): { start: number; end: number; line: number }[] {
  const out: { start: number; end: number; line: number }[] = [];
  let line = 1;
  let pos = 0;
  let current: { start: number; line: number } | undefined;
  while (pos < text.length) {
    const nl = text.indexOf('\n', pos);
    const next = nl < 0 ? text.length : nl + 1;
    const isStart = text.startsWith('onion-key', pos) && (pos + 9 === text.length || text[pos + 9] === '\n' || text[pos + 9] === ' ');
    if (isStart || text.charCodeAt(pos) === 0x40 /* @ */) {
      if (current) out.push({ ...current, end: pos });
      current = isStart ? { start: pos, line } : undefined;
    } else if (!current && pos === 0) {
      throw docError(WHAT, line, pos, `expected onion-key, got ${JSON.stringify(text.slice(pos, Math.min(next, pos + 40)))}`);
    }
    pos = next;
    line++;
  }
  if (current) out.push({ ...current, end: text.length });
  return out;
}

/** Parses every microdescriptor in `text` (latin1). A malformed one is a DecodeError naming its line. */
export function parseMicrodescs(text: string): { microdescs: Microdesc[] } {
  const microdescs: Microdesc[] = [];
  for (const b of boundaries(text)) {
    const body = text.slice(b.start, b.end);
    const items = tokenize(text, WHAT, b.start, b.end, b.line);
    let ntorOnionKey: string | undefined;
    let ed25519: string | undefined;
    let family: string[] = [];
    let familyIds: string[] = [];
    let policy: string | undefined;
    let policy6: string | undefined;
    let ipv6: Microdesc['ipv6'];
    for (const item of items) {
      switch (item.keyword) {
        case 'ntor-onion-key': {
          if (ntorOnionKey !== undefined) throw docError(WHAT, item.line, item.start, 'ntor-onion-key appears twice');
          ntorOnionKey = base64Key(argsOf(item)[0], item);
          break;
        }
        case 'id': {
          const [type, value] = argsOf(item);
          if (type !== 'ed25519') break;
          if (ed25519 !== undefined) throw docError(WHAT, item.line, item.start, 'more than one id ed25519');
          ed25519 = base64Key(value, item);
          break;
        }
        case 'family':
          family = argsOf(item);
          break;
        case 'family-ids':
          familyIds = argsOf(item);
          break;
        case 'p':
          policy ??= item.args;
          break;
        case 'p6':
          policy6 ??= item.args;
          break;
        case 'a': {
          const m = /^\[([0-9A-Fa-f:.]+)\]:(\d{1,5})$/.exec(item.args);
          if (m && !ipv6) ipv6 = { address: m[1]!, port: Number(m[2]) };
          break;
        }
        default:
          break;
      }
    }
    if (ntorOnionKey === undefined) throw docError(WHAT, b.line, b.start, 'no ntor-onion-key');
    const digest = sha256Base64(body);
    microdescs.push({ digest, ntorOnionKey, ed25519, family, familyIds, policy, policy6, ipv6, text: body, line: b.line });
  }
  return { microdescs };
}
