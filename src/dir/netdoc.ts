/**
 * dir/netdoc — the one tokenizer for Tor's directory meta-format (dir-spec §1.2): items are
 * `Keyword SP args NL`, optionally followed by one object `-----BEGIN TAG-----` … base64 …
 * `-----END TAG-----`. Linear time: one pass over the text, no backtracking regexes.
 *
 * Layer: codec core. No I/O, no clock. Documents are handled as latin1 strings (one char
 * per byte), so offsets are byte offsets and signed ranges hash back to the exact bytes.
 * It knows no keyword: the consensus, certificate and microdescriptor parsers do.
 */
import { DecodeError } from '../errors.js';

/** One item: a keyword line and its object, if it has one. */
export interface Item {
  readonly keyword: string;
  /** Everything after the keyword and its space ('' when none). */
  readonly args: string;
  /** 1-based line number of the keyword line. */
  readonly line: number;
  /** Offset of the keyword's first character. */
  readonly start: number;
  /** Offset just past the keyword line's '\n'. */
  readonly lineEnd: number;
  /** Offset just past the item (its object included). */
  readonly end: number;
  readonly object: NetdocObject | undefined;
}

export interface NetdocObject {
  readonly tag: string;
  /** The base64-decoded body (decoded when first asked for: most objects are never read). */
  readonly bytes: Uint8Array;
}

/** An object whose base64 body is decoded on first use (checked for the alphabet up front). */
class LazyObject implements NetdocObject {
  private decoded: Uint8Array | undefined;
  constructor(
    readonly tag: string,
    private readonly text: string,
    private readonly from: number,
    private readonly to: number,
  ) {}

  get bytes(): Uint8Array {
    this.decoded ??= new Uint8Array(Buffer.from(this.text.slice(this.from, this.to), 'base64'));
    return this.decoded;
  }
}

/** Latin1 text of bytes (lossless: one char per byte), as the parsers want it. */
export function latin1Text(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
}

/** The bytes of latin1 text (inverse of latin1Text). */
export function latin1Bytes(text: string): Buffer {
  return Buffer.from(text, 'latin1');
}

const KEYWORD_CHAR = new Uint8Array(128);
/** The base64 alphabet and '=' (dir-spec §1.2 objects). */
export const BASE64_CHAR = new Uint8Array(128);
for (const ch of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=') BASE64_CHAR[ch.charCodeAt(0)] = 1;
for (let c = 0; c < 128; c++) {
  const ch = String.fromCharCode(c);
  if (/[A-Za-z0-9-]/.test(ch)) KEYWORD_CHAR[c] = 1;
}

/** `what line N: message` as a DecodeError (offset is the line's start). */
export function docError(what: string, line: number, offset: number, message: string): DecodeError {
  return new DecodeError(what, offset, `line ${line}: ${message}`);
}

/**
 * Reads the items of `text[from, to)`. `what` names the document in errors. Malformed
 * input (a bad keyword, an object without its END line, bad base64) is a DecodeError
 * naming the line.
 */
export function tokenize(text: string, what: string, from = 0, to = text.length, firstLine = 1): Item[] {
  const items: Item[] = [];
  let pos = from;
  let line = firstLine;
  while (pos < to) {
    let nl = text.indexOf('\n', pos);
    if (nl < 0 || nl >= to) nl = to;
    const start = pos;
    if (nl === start) throw docError(what, line, start, 'empty line');
    // Keyword: [A-Za-z0-9-]+ (dir-spec §1.2; an 'opt ' prefix is obsolete and still legal).
    let k = start;
    while (k < nl) {
      const c = text.charCodeAt(k);
      if (c >= 128 || KEYWORD_CHAR[c] !== 1) break;
      k++;
    }
    if (k === start) throw docError(what, line, start, `expected a keyword, got ${JSON.stringify(text.slice(start, Math.min(nl, start + 40)))}`);
    const sep = k < nl ? text.charCodeAt(k) : -1;
    if (sep !== -1 && sep !== 0x20 && sep !== 0x09) {
      throw docError(what, line, start, `bad character ${JSON.stringify(text[k])} in keyword ${JSON.stringify(text.slice(start, k))}`);
    }
    let keyword = text.slice(start, k);
    let args = k < nl ? text.slice(k + 1, nl) : '';
    if (keyword === 'opt' && args) {
      const space = args.indexOf(' ');
      keyword = space < 0 ? args : args.slice(0, space);
      args = space < 0 ? '' : args.slice(space + 1);
    }
    const lineEnd = nl < to ? nl + 1 : nl;
    const itemLine = line;
    pos = lineEnd;
    line++;
    let object: NetdocObject | undefined;
    if (pos < to && text.startsWith('-----BEGIN ', pos)) {
      const beginEnd = text.indexOf('\n', pos);
      const header = text.slice(pos, beginEnd < 0 ? to : beginEnd);
      if (!header.endsWith('-----') || header.length <= 16) throw docError(what, line, pos, `bad object header ${JSON.stringify(header.slice(0, 60))}`);
      const tag = header.slice(11, -5);
      const endMarker = `\n-----END ${tag}-----`;
      const endAt = text.indexOf(endMarker, pos);
      if (endAt < 0 || endAt >= to) throw docError(what, line, pos, `object ${JSON.stringify(tag)} has no END line`);
      if (!isBase64Body(text, beginEnd + 1, endAt)) throw docError(what, line + 1, beginEnd + 1, `object ${JSON.stringify(tag)} is not base64`);
      let after = endAt + endMarker.length;
      if (after < to) {
        if (text.charCodeAt(after) !== 0x0a) throw docError(what, line, after, `junk after the END line of ${JSON.stringify(tag)}`);
        after++;
      }
      for (let i = pos; i < after; i++) if (text.charCodeAt(i) === 0x0a) line++;
      object = new LazyObject(tag, text, beginEnd + 1, endAt);
      pos = after;
    }
    items.push({ keyword, args, line: itemLine, start, lineEnd, end: pos, object });
  }
  return items;
}

/**
 * What `scanItems` reports of each item: offsets into the text (no strings are made), so
 * hot parsers pay only for the fields they read.
 */
export interface ItemSpan {
  /** The keyword is text[kwStart, kwEnd). */
  kwStart: number;
  kwEnd: number;
  /** The arguments are text[argsStart, argsEnd) (empty when argsStart === argsEnd). */
  argsStart: number;
  argsEnd: number;
  /** 1-based line number of the keyword line. */
  line: number;
  /** Whether an object followed (validated and skipped). */
  hasObject: boolean;
}

/**
 * The allocation-free twin of `tokenize`: the same rules (keywords, objects whose base64
 * body and END line are checked), calling `visit` with one reused ItemSpan per item.
 * Returns the line number after the last item. `opt` prefixes are not unwrapped here.
 */
export function scanItems(text: string, what: string, from: number, to: number, firstLine: number, visit: (item: ItemSpan) => void): number {
  const span: ItemSpan = { kwStart: 0, kwEnd: 0, argsStart: 0, argsEnd: 0, line: 0, hasObject: false };
  let pos = from;
  let line = firstLine;
  while (pos < to) {
    let nl = text.indexOf('\n', pos);
    if (nl < 0 || nl >= to) nl = to;
    if (nl === pos) throw docError(what, line, pos, 'empty line');
    let k = pos;
    while (k < nl) {
      const c = text.charCodeAt(k);
      if (c >= 128 || KEYWORD_CHAR[c] !== 1) break;
      k++;
    }
    if (k === pos) throw docError(what, line, pos, `expected a keyword, got ${JSON.stringify(text.slice(pos, Math.min(nl, pos + 40)))}`);
    if (k < nl) {
      const sep = text.charCodeAt(k);
      if (sep !== 0x20 && sep !== 0x09) throw docError(what, line, pos, `bad character ${JSON.stringify(text[k])} in keyword ${JSON.stringify(text.slice(pos, k))}`);
    }
    span.kwStart = pos;
    span.kwEnd = k;
    span.argsStart = k < nl ? k + 1 : nl;
    span.argsEnd = nl;
    span.line = line;
    span.hasObject = false;
    pos = nl < to ? nl + 1 : nl;
    line++;
    if (pos < to && text.startsWith('-----BEGIN ', pos)) {
      const beginEnd = text.indexOf('\n', pos);
      const headerEnd = beginEnd < 0 || beginEnd > to ? to : beginEnd;
      if (headerEnd - pos <= 16 || !text.startsWith('-----', headerEnd - 5)) throw docError(what, line, pos, `bad object header ${JSON.stringify(text.slice(pos, Math.min(headerEnd, pos + 60)))}`);
      const tag = text.slice(pos + 11, headerEnd - 5);
      const endMarker = `\n-----END ${tag}-----`;
      const endAt = text.indexOf(endMarker, pos);
      if (endAt < 0 || endAt >= to) throw docError(what, line, pos, `object ${JSON.stringify(tag)} has no END line`);
      const bodyLines = base64Lines(text, headerEnd + 1, endAt);
      if (bodyLines < 0) throw docError(what, line + 1, headerEnd + 1, `object ${JSON.stringify(tag)} is not base64`);
      let after = endAt + endMarker.length;
      if (after < to) {
        if (text.charCodeAt(after) !== 0x0a) throw docError(what, line, after, `junk after the END line of ${JSON.stringify(tag)}`);
        after++;
      }
      // Newlines of the object: the BEGIN line's, the body's, the one before END (the same as
      // the BEGIN line's when the body is empty), and the END line's own.
      line += (endAt > headerEnd ? 2 : 1) + bodyLines + (after > endAt + endMarker.length ? 1 : 0);
      span.hasObject = true;
      pos = after;
    }
    visit(span);
  }
  return line;
}

/**
 * The fast paths' line test: where the keyword of the line text[p, nl) ends, if it is
 * [A-Za-z0-9-]+ followed by one space or the line's end; -1 for anything else (an empty
 * line, a bad character, a tab), which the checked readers then name.
 */
export function plainKeywordEnd(text: string, p: number, nl: number): number {
  let k = p;
  while (k < nl) {
    const c = text.charCodeAt(k);
    if (c >= 128 || KEYWORD_CHAR[c] !== 1) break;
    k++;
  }
  return k === p || (k < nl && text.charCodeAt(k) !== 0x20) ? -1 : k;
}

/** Is text[start, end) exactly `keyword`? */
export function isKeyword(text: string, span: ItemSpan, keyword: string): boolean {
  return span.kwEnd - span.kwStart === keyword.length && text.startsWith(keyword, span.kwStart);
}

/** base64 lines (the alphabet, '=' padding, newlines): what Buffer.from would silently skip is refused. */
function isBase64Body(text: string, from: number, to: number): boolean {
  return base64Lines(text, from, to) >= 0;
}

/** The newlines in text[from, to) if it holds only base64 lines, else -1 (one pass). */
function base64Lines(text: string, from: number, to: number): number {
  let lines = 0;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    if (c === 10) lines++;
    else if (c >= 128 || BASE64_CHAR[c] !== 1) return -1;
  }
  return lines;
}

/** The arguments of an item split on single spaces (dir-spec §1.2; tor also accepts tabs). */
export function argsOf(item: Item): string[] {
  const a = item.args;
  if (a === '') return [];
  // The common case (single spaces, dir-spec §1.2) without a regex; tabs and runs of spaces too.
  return a.indexOf('\t') < 0 && a.indexOf('  ') < 0 && a.charCodeAt(0) !== 0x20 && a.charCodeAt(a.length - 1) !== 0x20 ? a.split(' ') : a.split(/[ \t]+/).filter((x) => x !== '');
}

/** `YYYY-MM-DD HH:MM:SS` (UTC) as a Date, or a DecodeError naming the item's line. */
export function parseTime(date: string | undefined, time: string | undefined, item: Item, what: string): Date {
  const text = `${date ?? ''} ${time ?? ''}`;
  const m = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})$/.exec(text);
  const t = m ? Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!) : NaN;
  if (!m || Number.isNaN(t) || new Date(t).getUTCDate() !== +m[3]!) throw docError(what, item.line, item.start, `${item.keyword}: bad time ${JSON.stringify(text)}`);
  return new Date(t);
}

/** An integer argument within [min, max], or a DecodeError. */
export function parseIntArg(value: string | undefined, item: Item, what: string, min = 0, max = 0xffffffff): number {
  if (value === undefined || !/^-?\d{1,10}$/.test(value)) throw docError(what, item.line, item.start, `${item.keyword}: expected an integer, got ${JSON.stringify(value ?? '')}`);
  const n = Number(value);
  if (n < min || n > max) throw docError(what, item.line, item.start, `${item.keyword}: ${n} is outside ${min}..${max}`);
  return n;
}

/** Unpadded base64 (as in identities and digests) to bytes of `length`, or a DecodeError. */
export function parseBase64(value: string | undefined, length: number, item: Item, what: string): Uint8Array {
  const v = value ?? '';
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(v)) throw docError(what, item.line, item.start, `${item.keyword}: ${JSON.stringify(v.slice(0, 60))} is not base64`);
  const bytes = Buffer.from(v, 'base64');
  if (bytes.length !== length) throw docError(what, item.line, item.start, `${item.keyword}: expected ${length} bytes of base64, got ${bytes.length}`);
  return new Uint8Array(bytes);
}
