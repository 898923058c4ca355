/**
 * adapters/socks5 — the SOCKS5 server's codec: a pure state machine that reads a client's
 * handshake from chunks split anywhere (greeting, RFC 1929 username/password, the request:
 * CONNECT and tor's RESOLVE / RESOLVE_PTR, IPv4 / domain / IPv6) and says what to send
 * back; the reply encoders; the client-side encoders and reply decoder (for tests and
 * clients); the map from orport's errors to reply codes as tor 0.4.9 has it; and the
 * isolation key of a pair of credentials (tor's IsolateSOCKSAuth).
 *
 * Layer: no I/O, no clock. Peer input never throws: anything malformed is an outcome
 * naming the reply to send and that the socket must close. SOCKS4/4a is recognised and
 * refused (a SOCKS4 "request rejected" reply), not served; an HTTP request gets a short
 * HTTP 501 (tor's "HTTP-resistance", socks-extensions.txt §4). BIND and UDP ASSOCIATE
 * are refused (0x07), as tor does (socks-extensions.txt §1.1).
 *
 * Not here: sockets, timers, connecting (socksserver.ts does that).
 */
import { createHash } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';
import { Address } from '../codec/datatype.js';
import { BadArgumentError, DecodeError, IncompleteError, OnionAddressError, OnionServiceError, ProtocolError, StreamClosedError, TimeoutError, type OnionServiceErrorCode } from '../errors.js';

/** RFC 1928 §3: authentication methods. */
export const SocksMethod = { NO_AUTH: 0x00, GSSAPI: 0x01, USERNAME_PASSWORD: 0x02, NO_ACCEPTABLE: 0xff } as const;

/** RFC 1928 §4 commands, and tor's RESOLVE / RESOLVE_PTR (socks-extensions.txt §2). */
export const SocksCommand = { CONNECT: 0x01, BIND: 0x02, UDP_ASSOCIATE: 0x03, RESOLVE: 0xf0, RESOLVE_PTR: 0xf1 } as const;

/** RFC 1928 §5 address types. */
export const SocksAddressType = { IPV4: 0x01, DOMAIN: 0x03, IPV6: 0x04 } as const;

/**
 * RFC 1928 §6 reply codes, and tor's extended onion-service codes (prop 304, sent by tor
 * only with the SocksPort flag ExtendedErrors; socks-extensions.txt §1.1 "Custom reply
 * error code"), reserved here for the onion-service work.
 */
export const SocksReply = {
  SUCCEEDED: 0x00,
  GENERAL_FAILURE: 0x01,
  NOT_ALLOWED: 0x02,
  NETWORK_UNREACHABLE: 0x03,
  HOST_UNREACHABLE: 0x04,
  CONNECTION_REFUSED: 0x05,
  TTL_EXPIRED: 0x06,
  COMMAND_NOT_SUPPORTED: 0x07,
  ADDRESS_TYPE_NOT_SUPPORTED: 0x08,
  /** The onion service's descriptor can't be found on the HSDirs. */
  HS_DESC_NOT_FOUND: 0xf0,
  /** The descriptor was received but is unusable (parse or signature failure). */
  HS_DESC_INVALID: 0xf1,
  /** Every introduction point failed. */
  HS_INTRO_FAILED: 0xf2,
  /** The rendezvous failed. */
  HS_REND_FAILED: 0xf3,
  /** The service needs client authorization and none was given. */
  HS_MISSING_CLIENT_AUTH: 0xf4,
  /** The client authorization given was refused. */
  HS_BAD_CLIENT_AUTH: 0xf5,
  /** The .onion address is malformed (checksum, version). */
  HS_BAD_ADDRESS: 0xf6,
  /** Every introduction point timed out. */
  HS_INTRO_TIMEDOUT: 0xf7,
} as const;

const REPLY_NAMES: Record<number, string> = {
  0x00: 'succeeded',
  0x01: 'general failure',
  0x02: 'not allowed by ruleset',
  0x03: 'network unreachable',
  0x04: 'host unreachable',
  0x05: 'connection refused',
  0x06: 'TTL expired',
  0x07: 'command not supported',
  0x08: 'address type not supported',
  0xf0: 'onion service descriptor not found',
  0xf1: 'onion service descriptor invalid',
  0xf2: 'onion service introduction failed',
  0xf3: 'onion service rendezvous failed',
  0xf4: 'onion service client authorization missing',
  0xf5: 'onion service client authorization refused',
  0xf6: 'onion address invalid',
  0xf7: 'onion service introduction timed out',
};

/** A reply code in words ("connection refused"), or "reply 0xNN". */
export function socksReplyName(code: number): string {
  return REPLY_NAMES[code] ?? `reply 0x${code.toString(16).padStart(2, '0')}`;
}

export type SocksCommandName = 'connect' | 'resolve' | 'resolve-ptr';
export type SocksAddressKind = 'ipv4' | 'domain' | 'ipv6';

/** RFC 1929 credentials, as the client sent them (octets; either may be empty, as tor allows). */
export interface SocksCredentials {
  readonly username: Uint8Array;
  readonly password: Uint8Array;
}

/** A parsed request (RFC 1928 §4). `host` is dotted IPv4, expanded IPv6 (no brackets), or the hostname. */
export interface SocksRequest {
  readonly command: SocksCommandName;
  readonly addressType: SocksAddressKind;
  readonly host: string;
  readonly port: number;
  /** Present when the client sent an RFC 1929 message. */
  readonly auth?: SocksCredentials | undefined;
}

/** Which protocol a refused client spoke. */
export type SocksDialect = 'socks5' | 'socks4' | 'http' | 'unknown';

/** What one `push` leads to. `reply` holds the bytes to send now (possibly none). */
export type SocksStep =
  /** The handshake goes on: send `reply`, wait for more bytes. */
  | { readonly kind: 'more'; readonly reply: Uint8Array }
  /** The request is complete: send `reply`, act on `request`, then send its reply; `rest` is data the client sent after it (optimistic data). */
  | { readonly kind: 'request'; readonly reply: Uint8Array; readonly request: SocksRequest; readonly rest: Uint8Array }
  /** Refused: send `reply` (which ends with the refusal, `replyCode`), then close the socket. */
  | {
      readonly kind: 'reject';
      readonly reply: Uint8Array;
      readonly replyCode: number;
      readonly dialect: SocksDialect;
      readonly error: ProtocolError;
      readonly close: true;
    };

const EMPTY = new Uint8Array(0);

type Phase = 'greeting' | 'auth' | 'auth-optional' | 'request' | 'done' | 'failed';

/** A parse of the buffered bytes: not enough yet, a message of `length` bytes, or a refusal. */
type Parsed<T> = { readonly need: true } | { readonly length: number; readonly value: T } | { readonly refuse: Refusal };
interface Refusal {
  readonly reply: Uint8Array;
  readonly replyCode: number;
  readonly dialect: SocksDialect;
  readonly message: string;
}

const NEED = { need: true } as const;

/** Tor's prop 351 marker: a username starting so is an extended-parameter request. */
const TOR_SOCKS_EXT = Buffer.from('<torS0X>', 'latin1');
const TOR_SOCKS_EXT_V0 = Buffer.from('<torS0X>0', 'latin1');

/**
 * The server's side of one SOCKS5 handshake. Feed it the client's bytes with `push`, in
 * chunks split anywhere; each call says what to send and whether to wait, act or close.
 * After a 'request' or 'reject', `push` returns that outcome again with no reply (a
 * 'request' then carries the new bytes as `rest`).
 */
export class Socks5Handshake {
  private phase: Phase = 'greeting';
  private buffered: Uint8Array = EMPTY;
  private auth: SocksCredentials | undefined;
  private final: SocksStep | undefined;

  /** Where the handshake is: 'greeting', 'auth', 'request', 'done' or 'failed'. */
  get state(): 'greeting' | 'auth' | 'request' | 'done' | 'failed' {
    return this.phase === 'auth-optional' ? 'request' : this.phase;
  }

  push(chunk: Uint8Array): SocksStep {
    if (this.final) {
      return this.final.kind === 'request' ? { ...this.final, reply: EMPTY, rest: chunk } : { ...this.final, reply: EMPTY };
    }
    const data = this.buffered.length === 0 ? chunk : concat([this.buffered, chunk]);
    const replies: Uint8Array[] = [];
    let at = 0;
    for (;;) {
      const view = data.subarray(at);
      if (this.phase === 'greeting') {
        const p = parseGreeting(view);
        if ('need' in p) break;
        if ('refuse' in p) return this.refuse(replies, p.refuse);
        at += p.length;
        replies.push(Uint8Array.of(5, p.value));
        this.phase = p.value === SocksMethod.USERNAME_PASSWORD ? 'auth' : 'auth-optional';
      } else if (this.phase === 'auth' || (this.phase === 'auth-optional' && view.length > 0 && view[0] === 0x01)) {
        // RFC 1929 §2; tor also takes the message after NO_AUTH was selected (socks-extensions.txt §1.1).
        const p = parseUserPass(view);
        if ('need' in p) break;
        if ('refuse' in p) return this.refuse(replies, p.refuse);
        at += p.length;
        replies.push(encodeAuthReply(true));
        this.auth = p.value;
        this.phase = 'request';
      } else {
        const p = parseRequest(view, this.auth);
        if ('need' in p) break;
        if ('refuse' in p) return this.refuse(replies, p.refuse);
        at += p.length;
        this.phase = 'done';
        this.buffered = EMPTY;
        this.final = { kind: 'request', reply: concat(replies), request: p.value, rest: data.subarray(at) };
        return this.final;
      }
    }
    this.buffered = data.slice(at);
    return { kind: 'more', reply: concat(replies) };
  }

  private refuse(replies: Uint8Array[], refusal: Refusal): SocksStep {
    this.phase = 'failed';
    this.buffered = EMPTY;
    replies.push(refusal.reply);
    this.final = {
      kind: 'reject',
      reply: concat(replies),
      replyCode: refusal.replyCode,
      dialect: refusal.dialect,
      error: new ProtocolError(`SOCKS: ${refusal.message}`),
      close: true,
    };
    return this.final;
  }
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  return parts.length === 0 ? EMPTY : Buffer.concat(parts);
}

function socks5Refusal(replyCode: number, message: string): { refuse: Refusal } {
  return { refuse: { reply: encodeReply(replyCode), replyCode, dialect: 'socks5', message } };
}

const HTTP_501 = Buffer.from(
  'HTTP/1.0 501 This is a SOCKS proxy, not an HTTP proxy\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n' +
    'This port speaks SOCKS5 (orport), not HTTP: configure your client to use it as a SOCKS5 proxy.\n',
  'latin1',
);

/** RFC 1928 §3: VER NMETHODS METHODS; the value is the method chosen. */
function parseGreeting(b: Uint8Array): Parsed<number> {
  if (b.length < 1) return NEED;
  const version = b[0]!;
  if (version === 0x04) {
    // SOCKS4/4a: refused with its own reply (VN 0, CD 91 "request rejected or failed").
    return { refuse: { reply: encodeSocks4Reply(false), replyCode: 0x5b, dialect: 'socks4', message: 'SOCKS4/4a is not supported (use SOCKS5)' } };
  }
  if (version === 0x47 || version === 0x48 || version === 0x50 || version === 0x43) {
    // 'G', 'H', 'P', 'C': an HTTP request (socks-extensions.txt §4).
    return { refuse: { reply: HTTP_501, replyCode: 501, dialect: 'http', message: 'an HTTP request on the SOCKS port' } };
  }
  if (version !== 0x05) {
    return { refuse: { reply: encodeMethodSelection(SocksMethod.NO_ACCEPTABLE), replyCode: SocksMethod.NO_ACCEPTABLE, dialect: 'unknown', message: `version ${version} is not SOCKS5` } };
  }
  if (b.length < 2) return NEED;
  const n = b[1]!;
  if (n === 0) return { refuse: { reply: encodeMethodSelection(SocksMethod.NO_ACCEPTABLE), replyCode: SocksMethod.NO_ACCEPTABLE, dialect: 'socks5', message: 'the greeting offers no methods' } };
  if (b.length < 2 + n) return NEED;
  const methods = b.subarray(2, 2 + n);
  // Like tor: username/password when offered (it carries the isolation), else no auth.
  if (methods.includes(SocksMethod.USERNAME_PASSWORD)) return { length: 2 + n, value: SocksMethod.USERNAME_PASSWORD };
  if (methods.includes(SocksMethod.NO_AUTH)) return { length: 2 + n, value: SocksMethod.NO_AUTH };
  const offered = [...methods].map((m) => `0x${m.toString(16).padStart(2, '0')}`).join(', ');
  return { refuse: { reply: encodeMethodSelection(SocksMethod.NO_ACCEPTABLE), replyCode: SocksMethod.NO_ACCEPTABLE, dialect: 'socks5', message: `no acceptable method among ${offered}` } };
}

function authRefusal(message: string): { refuse: Refusal } {
  return { refuse: { reply: encodeAuthReply(false), replyCode: 0x01, dialect: 'socks5', message } };
}

/** RFC 1929 §2: VER(1) ULEN UNAME PLEN PASSWD. Empty fields are allowed (tor does). */
function parseUserPass(b: Uint8Array): Parsed<SocksCredentials> {
  if (b.length < 1) return NEED;
  if (b[0] !== 0x01) return authRefusal(`username/password subnegotiation version ${b[0]} (expected 1)`);
  if (b.length < 2) return NEED;
  const ulen = b[1]!;
  if (b.length < 3 + ulen) return NEED;
  const plen = b[2 + ulen]!;
  if (b.length < 3 + ulen + plen) return NEED;
  const username = b.slice(2, 2 + ulen);
  const password = b.slice(3 + ulen, 3 + ulen + plen);
  // Prop 351 (as tor 0.4.9): '<torS0X>' opens an extended-parameter request; only version '0' is known.
  if (startsWith(username, TOR_SOCKS_EXT) && !Buffer.from(username).equals(TOR_SOCKS_EXT_V0)) {
    return authRefusal('an unrecognized <torS0X> extended-parameter username');
  }
  return { length: 3 + ulen + plen, value: { username, password } };
}

function startsWith(b: Uint8Array, prefix: Uint8Array): boolean {
  return b.length >= prefix.length && Buffer.from(b.buffer, b.byteOffset, prefix.length).equals(prefix);
}

/** A hostname as tor accepts one (labels of letters, digits, '-' and '_'; a final dot allowed), or an IP literal. */
const HOSTNAME = /^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*\.?$/;

function commandName(cmd: number): SocksCommandName | undefined {
  return cmd === SocksCommand.CONNECT ? 'connect' : cmd === SocksCommand.RESOLVE ? 'resolve' : cmd === SocksCommand.RESOLVE_PTR ? 'resolve-ptr' : undefined;
}

const COMMAND_WORDS: Record<number, string> = { 0x02: 'BIND', 0x03: 'UDP ASSOCIATE' };

/** RFC 1928 §4: VER CMD RSV ATYP DST.ADDR DST.PORT; each field checked as soon as it is in. */
function parseRequest(b: Uint8Array, auth: SocksCredentials | undefined): Parsed<SocksRequest> {
  if (b.length < 1) return NEED;
  if (b[0] !== 0x05) return socks5Refusal(SocksReply.GENERAL_FAILURE, `request version ${b[0]} (expected 5)`);
  if (b.length < 2) return NEED;
  const cmd = b[1]!;
  const command = commandName(cmd);
  if (!command) return socks5Refusal(SocksReply.COMMAND_NOT_SUPPORTED, `command 0x${cmd.toString(16).padStart(2, '0')}${COMMAND_WORDS[cmd] ? ` (${COMMAND_WORDS[cmd]})` : ''} not supported`);
  if (b.length < 3) return NEED;
  if (b[2] !== 0x00) return socks5Refusal(SocksReply.GENERAL_FAILURE, `reserved byte 0x${b[2]!.toString(16).padStart(2, '0')} (must be 0)`);
  if (b.length < 4) return NEED;
  const atyp = b[3]!;
  let addressType: SocksAddressKind;
  let host: string;
  let at: number;
  if (atyp === SocksAddressType.IPV4) {
    if (b.length < 8) return NEED;
    host = `${b[4]}.${b[5]}.${b[6]}.${b[7]}`;
    addressType = 'ipv4';
    at = 8;
  } else if (atyp === SocksAddressType.IPV6) {
    if (b.length < 20) return NEED;
    host = new Address(b.slice(4, 20), 6).value!;
    addressType = 'ipv6';
    at = 20;
  } else if (atyp === SocksAddressType.DOMAIN) {
    if (b.length < 5) return NEED;
    const len = b[4]!;
    if (len === 0) return socks5Refusal(SocksReply.GENERAL_FAILURE, 'an empty hostname');
    if (b.length < 5 + len) return NEED;
    host = Buffer.from(b.buffer, b.byteOffset + 5, len).toString('latin1');
    const literal = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
    if (isIPv6(literal)) host = literal;
    else if (!HOSTNAME.test(host)) return socks5Refusal(SocksReply.GENERAL_FAILURE, `a malformed hostname ${JSON.stringify(host)}`);
    addressType = 'domain';
    at = 5 + len;
  } else {
    return socks5Refusal(SocksReply.ADDRESS_TYPE_NOT_SUPPORTED, `address type 0x${atyp.toString(16).padStart(2, '0')} not supported`);
  }
  if (b.length < at + 2) return NEED;
  const port = (b[at]! << 8) | b[at + 1]!;
  // tor refuses CONNECT to port 0 (END reason TORPROTOCOL → general failure).
  if (command === 'connect' && port === 0) return socks5Refusal(SocksReply.GENERAL_FAILURE, `CONNECT to ${host} port 0`);
  // socks-extensions.txt §2: RESOLVE_PTR takes an address (tor: address type not supported otherwise).
  if (command === 'resolve-ptr' && !isIPv4(host) && !isIPv6(host)) return socks5Refusal(SocksReply.ADDRESS_TYPE_NOT_SUPPORTED, `RESOLVE_PTR of ${JSON.stringify(host)}, not an IP address`);
  return { length: at + 2, value: { command, addressType, host, port, auth } };
}

// ---------------------------------------------------------------------------------
// Encoders (server side)

/** RFC 1928 §3: the method selection message. */
export function encodeMethodSelection(method: number): Uint8Array {
  return Uint8Array.of(0x05, method);
}

/** RFC 1929 §2: the subnegotiation status (0 success; on failure the server closes). */
export function encodeAuthReply(ok: boolean): Uint8Array {
  return Uint8Array.of(0x01, ok ? 0x00 : 0x01);
}

/** An address as SOCKS5 writes it: ATYP then the address (RFC 1928 §5). */
function encodeAddress(host: string): Uint8Array {
  if (isIPv4(host) || isIPv6(host)) {
    const bin = new Address(host).valueBin;
    return concat([Uint8Array.of(bin.length === 4 ? SocksAddressType.IPV4 : SocksAddressType.IPV6), bin]);
  }
  const name = Buffer.from(host, 'latin1');
  if (name.length < 1 || name.length > 255) throw new BadArgumentError(`a SOCKS5 hostname is 1 to 255 bytes, not ${name.length}`);
  return concat([Uint8Array.of(SocksAddressType.DOMAIN, name.length), name]);
}

/**
 * RFC 1928 §6: VER REP RSV ATYP BND.ADDR BND.PORT. The bound address defaults to
 * 0.0.0.0:0 (what tor sends for CONNECT and for errors); RESOLVE answers carry the
 * address found, RESOLVE_PTR the hostname (socks-extensions.txt §2).
 */
export function encodeReply(code: number, bound: { host: string; port: number } = { host: '0.0.0.0', port: 0 }): Uint8Array {
  const addr = encodeAddress(bound.host);
  const out = new Uint8Array(3 + addr.length + 2);
  out[0] = 0x05;
  out[1] = code;
  out.set(addr, 3);
  out[3 + addr.length] = bound.port >> 8;
  out[4 + addr.length] = bound.port & 0xff;
  return out;
}

/** A SOCKS4 reply (VN 0, CD 90 granted / 91 rejected, port and address zero). */
export function encodeSocks4Reply(granted: boolean): Uint8Array {
  return Uint8Array.of(0x00, granted ? 0x5a : 0x5b, 0, 0, 0, 0, 0, 0);
}

// ---------------------------------------------------------------------------------
// Encoders and decoder (client side)

/** RFC 1928 §3: VER NMETHODS METHODS. */
export function encodeGreeting(methods: readonly number[]): Uint8Array {
  return Uint8Array.from([0x05, methods.length, ...methods]);
}

/** RFC 1929 §2: the username/password request (strings are taken as UTF-8). */
export function encodeUserPass(username: Uint8Array | string, password: Uint8Array | string): Uint8Array {
  const u = typeof username === 'string' ? Buffer.from(username, 'utf8') : username;
  const p = typeof password === 'string' ? Buffer.from(password, 'utf8') : password;
  if (u.length > 255 || p.length > 255) throw new BadArgumentError('a SOCKS5 username or password is at most 255 bytes');
  return concat([Uint8Array.of(0x01, u.length), u, Uint8Array.of(p.length), p]);
}

/** RFC 1928 §4: a request; `host` is an IP literal (sent as such) or a hostname (ATYP 3). */
export function encodeRequest(request: { command: SocksCommandName | number; host: string; port: number }): Uint8Array {
  const cmd = typeof request.command === 'number' ? request.command : request.command === 'connect' ? SocksCommand.CONNECT : request.command === 'resolve' ? SocksCommand.RESOLVE : SocksCommand.RESOLVE_PTR;
  const addr = encodeAddress(request.host);
  return concat([Uint8Array.of(0x05, cmd, 0x00), addr, Uint8Array.of(request.port >> 8, request.port & 0xff)]);
}

/** A decoded server reply (RFC 1928 §6) and its length in bytes. */
export interface SocksReplyMessage {
  readonly replyCode: number;
  readonly host: string;
  readonly port: number;
  readonly length: number;
}

/** Decodes a server reply; IncompleteError when more bytes are needed, DecodeError when malformed. */
export function decodeReply(b: Uint8Array): SocksReplyMessage {
  const what = 'SOCKS5 reply';
  if (b.length < 4) throw new IncompleteError(what, b.length, 4 - b.length);
  if (b[0] !== 0x05) throw new DecodeError(what, 0, `version ${b[0]} (expected 5)`);
  const atyp = b[3]!;
  let host: string;
  let at: number;
  if (atyp === SocksAddressType.IPV4 || atyp === SocksAddressType.IPV6) {
    const n = atyp === SocksAddressType.IPV4 ? 4 : 16;
    if (b.length < 4 + n) throw new IncompleteError(what, b.length, 4 + n - b.length);
    host = new Address(b.slice(4, 4 + n), n === 4 ? 4 : 6).value!;
    at = 4 + n;
  } else if (atyp === SocksAddressType.DOMAIN) {
    if (b.length < 5) throw new IncompleteError(what, b.length, 1);
    const len = b[4]!;
    if (b.length < 5 + len) throw new IncompleteError(what, b.length, 5 + len - b.length);
    host = Buffer.from(b.buffer, b.byteOffset + 5, len).toString('latin1');
    at = 5 + len;
  } else {
    throw new DecodeError(what, 3, `address type ${atyp}`);
  }
  if (b.length < at + 2) throw new IncompleteError(what, b.length, at + 2 - b.length);
  return { replyCode: b[1]!, host, port: (b[at]! << 8) | b[at + 1]!, length: at + 2 };
}

// ---------------------------------------------------------------------------------
// Errors → reply codes, credentials → isolation

/** tor 0.4.9 relay.c / reasons.c `stream_end_reason_to_socks5_response`, by END reason name. */
const END_REASON_REPLY: Record<string, number> = {
  MISC: SocksReply.GENERAL_FAILURE,
  RESOLVEFAILED: SocksReply.HOST_UNREACHABLE,
  CONNECTREFUSED: SocksReply.CONNECTION_REFUSED,
  EXITPOLICY: SocksReply.NOT_ALLOWED,
  DESTROY: SocksReply.GENERAL_FAILURE,
  // DONE before CONNECTED: the exit's side closed before saying it was connected.
  DONE: SocksReply.CONNECTION_REFUSED,
  TIMEOUT: SocksReply.TTL_EXPIRED,
  NOROUTE: SocksReply.HOST_UNREACHABLE,
  HIBERNATING: SocksReply.GENERAL_FAILURE,
  INTERNAL: SocksReply.GENERAL_FAILURE,
  RESOURCELIMIT: SocksReply.GENERAL_FAILURE,
  CONNRESET: SocksReply.CONNECTION_REFUSED,
  TORPROTOCOL: SocksReply.GENERAL_FAILURE,
  // NOTDIRECTORY is not in tor's switch: its default, general failure.
  NOTDIRECTORY: SocksReply.GENERAL_FAILURE,
};

/**
 * Onion-service failures → prop 304's extended codes, as tor 0.4.9 sets them
 * (DIGEST-onion §7): 404 from every HSDir F0, introduction F2 (F7 when every intro point
 * timed out), rendezvous F3, client authorization F4. F1 (a descriptor that does not
 * verify) is defined but never set by tor 0.4.9; we send it. No HSDir, or none answering,
 * is a general failure as in tor.
 */
const ONION_REPLY: Partial<Record<OnionServiceErrorCode, number>> = {
  E_ONION_DESC_NOT_FOUND: SocksReply.HS_DESC_NOT_FOUND,
  E_ONION_DESC_INVALID: SocksReply.HS_DESC_INVALID,
  E_ONION_INTRO_FAILED: SocksReply.HS_INTRO_FAILED,
  E_ONION_INTRO_TIMEOUT: SocksReply.HS_INTRO_TIMEDOUT,
  E_ONION_REND_FAILED: SocksReply.HS_REND_FAILED,
  E_ONION_CLIENT_AUTH: SocksReply.HS_MISSING_CLIENT_AUTH,
};

/**
 * The reply code for a failed CONNECT or RESOLVE, as tor maps it: a StreamClosedError by
 * its END reason (tor-spec 6.3), a TimeoutError 0x06 (TTL expired), an onion address
 * tor refuses F6 (parse_extended_hostname's BAD_HOSTNAME: any .onion name not a valid v3
 * address), an OnionServiceError its extended code (ONION_REPLY), anything else 0x01.
 */
export function socksReplyForError(error: unknown): number {
  if (error instanceof StreamClosedError) return END_REASON_REPLY[error.reason] ?? SocksReply.GENERAL_FAILURE;
  // prop 304 extended codes for onion services (tor sends them with SocksPort ExtendedErrors).
  if (error instanceof OnionAddressError) return SocksReply.HS_BAD_ADDRESS;
  if (error instanceof OnionServiceError) return ONION_REPLY[error.code] ?? SocksReply.GENERAL_FAILURE;
  if (error instanceof TimeoutError) return SocksReply.TTL_EXPIRED;
  return SocksReply.GENERAL_FAILURE;
}

/**
 * The isolation key of a request's credentials (tor's IsolateSOCKSAuth: streams with
 * other credentials never share a circuit): undefined without credentials or with both
 * empty (tor keeps no username then), else a digest of both, length-prefixed, so equal
 * credentials give equal keys and distinct ones distinct keys, without showing them.
 */
export function isolationKey(auth: SocksCredentials | undefined): string | undefined {
  if (!auth || (auth.username.length === 0 && auth.password.length === 0)) return undefined;
  const h = createHash('sha256');
  h.update(Uint8Array.of(auth.username.length));
  h.update(auth.username);
  h.update(Uint8Array.of(auth.password.length));
  h.update(auth.password);
  return `socks-auth:${h.digest('hex').slice(0, 32)}`;
}
