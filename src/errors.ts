/**
 * errors — the one error hierarchy of orport.
 *
 * Every error the library throws or rejects with is an `OrportError`: callers can
 * `instanceof` a subclass, or switch on `err.code` (stable string) or `err.kind`
 * (a coarse category). Messages say what was expected and what came instead.
 */

/** Coarse category of an error (after Arti's `ErrorKind`). */
export type ErrorKind =
  | 'argument' // the caller passed something unusable
  | 'decode' // bytes that do not parse (from a peer, or handed to a decoder)
  | 'protocol' // the peer broke the Tor protocol
  | 'handshake' // a link or circuit handshake failed
  | 'identity' // the peer is not who we expected, or its certificates don't hold
  | 'timeout' // a wait ran out of time
  | 'aborted' // the caller's AbortSignal fired
  | 'closed' // the peer (or we) closed the channel, circuit or stream
  | 'network' // the socket failed (refused, reset, unreachable, TLS)
  | 'limit' // a configured cap was hit
  | 'environment' // the machine lacks something (tor not installed, not root)
  | 'directory' // a directory document is not trustworthy (signatures, validity), or no cache gave one
  | 'circuit' // no circuit could be built through the relays tried
  | 'onion' // an onion service's descriptor could not be had or used
  | 'internal'; // a bug in orport

export type ErrorCode =
  | 'E_BAD_ARGUMENT'
  | 'E_DECODE'
  | 'E_INCOMPLETE'
  | 'E_PROTOCOL'
  | 'E_BAD_CELL_AUTH'
  | 'E_HANDSHAKE'
  | 'E_IDENTITY_MISMATCH'
  | 'E_CERTS'
  | 'E_TIMEOUT'
  | 'E_ABORTED'
  | 'E_CHANNEL_CLOSED'
  | 'E_CIRCUIT_DESTROYED'
  | 'E_STREAM_CLOSED'
  | 'E_NETWORK'
  | 'E_LIMIT'
  | 'E_ENVIRONMENT'
  | 'E_CIRCUIT_BUILD'
  | DirectoryErrorCode
  | OnionServiceErrorCode
  | 'E_INTERNAL';

export interface OrportErrorOptions {
  cause?: unknown;
}

export class OrportError extends Error {
  readonly code: ErrorCode;
  readonly kind: ErrorKind;

  constructor(code: ErrorCode, kind: ErrorKind, message: string, options?: OrportErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.kind = kind;
  }

  override get name(): string {
    return this.constructor.name;
  }
}

/** The caller passed a value that cannot be used (Stem raises ValueError). */
export class BadArgumentError extends OrportError {
  constructor(message: string, options?: OrportErrorOptions) {
    super('E_BAD_ARGUMENT', 'argument', message, options);
  }
}

/** Bytes that do not decode. `offset` is where in `what` the problem was found. */
export class DecodeError extends OrportError {
  readonly what: string;
  readonly offset: number;

  constructor(what: string, offset: number, message: string, code: 'E_DECODE' | 'E_INCOMPLETE' = 'E_DECODE') {
    super(code, 'decode', `${what}: ${message}${offset >= 0 ? ` (at byte ${offset})` : ''}`);
    this.what = what;
    this.offset = offset;
  }
}

/** Input ended early: `needed` more bytes (at least) would be required. */
export class IncompleteError extends DecodeError {
  readonly needed: number;

  constructor(what: string, offset: number, needed: number, message?: string) {
    super(what, offset, message ?? `needs ${needed} more byte${needed === 1 ? '' : 's'}`, 'E_INCOMPLETE');
    this.needed = needed;
  }
}

/** The peer broke the protocol (an unexpected cell, a bad digest, a window overrun…). */
export class ProtocolError extends OrportError {
  constructor(message: string, options?: OrportErrorOptions & { code?: 'E_PROTOCOL' | 'E_BAD_CELL_AUTH' }) {
    super(options?.code ?? 'E_PROTOCOL', 'protocol', message, options);
  }
}

/** A link (VERSIONS/CERTS/NETINFO) or circuit (CREATE*) handshake failed. */
export class HandshakeError extends OrportError {
  constructor(message: string, options?: OrportErrorOptions) {
    super('E_HANDSHAKE', 'handshake', message, options);
  }
}

/** The relay proved an identity other than the one we pinned. */
export class IdentityMismatchError extends OrportError {
  readonly keyType: 'rsa' | 'ed25519';
  readonly expected: string;
  readonly seen: string;

  constructor(keyType: 'rsa' | 'ed25519', expected: string, seen: string) {
    super('E_IDENTITY_MISMATCH', 'identity', `relay identity mismatch: expected ${keyType} identity ${expected}, but the relay proved ${seen}`);
    this.keyType = keyType;
    this.expected = expected;
    this.seen = seen;
  }
}

/** The relay's CERTS chain does not verify. `cert` names the certificate, `check` the failed check. */
export class CertificateError extends OrportError {
  readonly cert: string;
  readonly check: string;

  constructor(cert: string, check: string, message: string, options?: OrportErrorOptions) {
    super('E_CERTS', 'identity', `${cert}: ${message}`, options);
    this.cert = cert;
    this.check = check;
  }
}

/** A wait ran out of time. */
export class TimeoutError extends OrportError {
  readonly timeoutMs: number;

  constructor(waitingFor: string, timeoutMs: number) {
    super('E_TIMEOUT', 'timeout', `timed out after ${timeoutMs} ms waiting for ${waitingFor}`);
    this.timeoutMs = timeoutMs;
  }
}

/** The caller's AbortSignal fired. */
export class AbortError extends OrportError {
  constructor(waitingFor: string, reason?: unknown) {
    super('E_ABORTED', 'aborted', `aborted while waiting for ${waitingFor}`, reason === undefined ? undefined : { cause: reason });
  }
}

/** Who closed: the relay (with the reason it sent), or our side. */
export type ClosedBy = 'relay' | 'local';

/** The channel (TLS connection) is closed. */
export class ChannelClosedError extends OrportError {
  readonly by: ClosedBy;

  constructor(by: ClosedBy, message: string, options?: OrportErrorOptions) {
    super('E_CHANNEL_CLOSED', 'closed', message, options);
    this.by = by;
  }
}

/** The circuit was destroyed; `reason` is the DESTROY reason (tor-spec 5.4). */
export class CircuitDestroyedError extends OrportError {
  readonly by: ClosedBy;
  readonly reason: string;
  readonly reasonInt: number;

  constructor(by: ClosedBy, reason: string, reasonInt: number, detail?: string) {
    super(
      'E_CIRCUIT_DESTROYED',
      'closed',
      `circuit destroyed by ${by === 'relay' ? 'the relay' : 'us'} with reason ${reason} (${reasonInt})${detail ? `: ${detail}` : ''}`,
    );
    this.by = by;
    this.reason = reason;
    this.reasonInt = reasonInt;
  }
}

/** The stream was closed; `reason` is the END reason (tor-spec 6.3). */
export class StreamClosedError extends OrportError {
  readonly by: ClosedBy;
  readonly reason: string;
  readonly reasonInt: number;

  constructor(by: ClosedBy, reason: string, reasonInt: number, detail?: string) {
    super(
      'E_STREAM_CLOSED',
      'closed',
      `stream closed by ${by === 'relay' ? 'the relay' : 'us'} with reason ${reason} (${reasonInt})${detail ? `: ${detail}` : ''}`,
    );
    this.by = by;
    this.reason = reason;
    this.reasonInt = reasonInt;
  }
}

/** The socket failed: refused, reset, unreachable, a TLS failure. `errno` is Node's code. */
export class NetworkError extends OrportError {
  readonly errno: string | undefined;

  constructor(message: string, options?: OrportErrorOptions & { errno?: string }) {
    super('E_NETWORK', 'network', message, options);
    this.errno = options?.errno;
  }
}

/** A configured cap was hit (response size, buffered bytes, …). */
export class LimitError extends OrportError {
  readonly limit: number;

  constructor(message: string, limit: number) {
    super('E_LIMIT', 'limit', message);
    this.limit = limit;
  }
}

/** The machine lacks something orport needs (tor not installed, no namespace rights…). */
export class EnvironmentError extends OrportError {
  constructor(message: string, options?: OrportErrorOptions) {
    super('E_ENVIRONMENT', 'environment', message, options);
  }
}

/** What a directory document or fetch failed (dir-spec §3, §5). */
export type DirectoryErrorCode =
  | 'E_DIR_SIGNATURES' // too few configured authorities signed validly
  | 'E_DIR_EXPIRED' // now is past valid-until (beyond the clock tolerance)
  | 'E_DIR_NOT_YET_VALID' // now is before valid-after (beyond the clock tolerance)
  | 'E_DIR_CERT' // an authority key certificate does not verify (or has expired)
  | 'E_DIR_DIGEST' // microdescriptors that don't match the digests asked for
  | 'E_DIR_STALE' // a consensus no newer than the one held
  | 'E_DIR_HTTP' // a cache answered another HTTP status than 200
  | 'E_DIR_FETCH'; // no source gave a usable document

/**
 * A directory document is not to be trusted, or could not be had: `code` says which rule
 * failed; the message names the authorities whose signatures did and did not verify, or
 * what each source did.
 */
export class DirectoryError extends OrportError {
  override readonly code: DirectoryErrorCode;

  constructor(code: DirectoryErrorCode, message: string, options?: OrportErrorOptions) {
    super(code, 'directory', message, options);
    this.code = code;
  }
}

/** Every path tried for a circuit failed; `attempts` has each path (nicknames) and its error. */
export class CircuitBuildError extends OrportError {
  readonly attempts: readonly { readonly path: readonly string[]; readonly error: OrportError }[];

  constructor(attempts: readonly { readonly path: readonly string[]; readonly error: OrportError }[]) {
    const tried = attempts.map((a, i) => `attempt ${i + 1} through ${a.path.join(', ')}: ${a.error.message}`).join('; ');
    super('E_CIRCUIT_BUILD', 'circuit', `no circuit could be built (${attempts.length} attempt${attempts.length === 1 ? '' : 's'}): ${tried}`, { cause: attempts[attempts.length - 1]?.error });
    this.attempts = attempts;
  }
}

/** A bug in orport: an invariant did not hold. */
export class InternalError extends OrportError {
  constructor(message: string, options?: OrportErrorOptions) {
    super('E_INTERNAL', 'internal', message, options);
  }
}

/** Formats bytes as a short hex excerpt for error messages. */
export function hexExcerpt(bytes: Uint8Array, max = 32): string {
  const shown = bytes.subarray(0, max);
  let hex = '';
  for (const b of shown) hex += b.toString(16).padStart(2, '0');
  return bytes.length > max ? `${hex}… (${bytes.length} bytes)` : hex || '(empty)';
}

/** Why a host name is not a usable v3 .onion address (rend-spec §6; tor's hs_address_is_valid). */
export type OnionAddressProblem = 'not-onion' | 'empty-label' | 'v2' | 'length' | 'base32' | 'checksum' | 'version' | 'key';

/** A host name that is not a valid v3 onion address; `problem` says which rule failed. */
export class OnionAddressError extends BadArgumentError {
  readonly problem: OnionAddressProblem;

  constructor(problem: OnionAddressProblem, message: string) {
    super(message);
    this.problem = problem;
  }
}

/** Why an onion service could not be reached (tor's SOCKS extended errors F0–F7 where one applies). */
export type OnionServiceErrorCode =
  | 'E_ONION_DESC_NOT_FOUND' // every responsible HSDir answered 404 (F0 HS_NOT_FOUND)
  | 'E_ONION_DESC_INVALID' // descriptors came, none verified and decrypted (tor's BAD_DESC; F1)
  | 'E_ONION_CLIENT_AUTH' // the descriptor's second layer needs client authorization (F4)
  | 'E_ONION_NO_HSDIRS' // the consensus lists no usable HSDir
  | 'E_ONION_DESC_FETCH' // no responsible HSDir could be asked or gave an answer
  | 'E_ONION_INTRO_FAILED' // every introduction point NACKed or failed, or the descriptor lists none (F2 HS_INTRO_FAILED)
  | 'E_ONION_INTRO_TIMEOUT' // every introduction point timed out (F7 HS_INTRO_TIMEDOUT)
  | 'E_ONION_REND_FAILED'; // the rendezvous circuit failed, timed out, or RENDEZVOUS2 did not authenticate (F3 HS_REND_FAILED)

/** One HSDir asked for a descriptor, and what came of it. */
export interface OnionHsDirAttempt {
  /** Nickname and RSA fingerprint, as the consensus lists them. */
  readonly hsdir: string;
  /** 'found', 'not-found' (404), 'invalid' (a descriptor that failed a check), 'failed' (circuit, stream, other status). */
  readonly outcome: 'found' | 'not-found' | 'invalid' | 'failed';
  readonly error?: OrportError;
}

/** One introduction point tried, and what came of it. */
export interface OnionIntroAttempt {
  /** Which one: its index in the descriptor and its relay (RSA fingerprint, address). */
  readonly introPoint: string;
  /** 'nack': INTRODUCE_ACK with a non-zero status; 'timeout': no circuit or no ACK in time; 'failed': the circuit failed. */
  readonly outcome: 'nack' | 'timeout' | 'failed';
  /** The INTRODUCE_ACK status (rend-spec 3.2.2: 1 service not recognized, 2 bad message, 3 can't relay). */
  readonly status?: number;
  readonly error?: OrportError;
}

export interface OnionServiceErrorOptions extends OrportErrorOptions {
  /** What each introduction point did (E_ONION_INTRO_*, E_ONION_REND_FAILED). */
  introAttempts?: readonly OnionIntroAttempt[];
}

/**
 * An onion service could not be reached: `code` says why, `address` is the service,
 * `attempts` what each responsible HSDir did (the last failure is the `cause`),
 * `introAttempts` what each introduction point did.
 */
export class OnionServiceError extends OrportError {
  override readonly code: OnionServiceErrorCode;
  readonly address: string;
  readonly attempts: readonly OnionHsDirAttempt[];
  readonly introAttempts: readonly OnionIntroAttempt[];

  constructor(code: OnionServiceErrorCode, address: string, message: string, attempts: readonly OnionHsDirAttempt[] = [], options?: OnionServiceErrorOptions) {
    super(code, 'onion', message, options);
    this.code = code;
    this.address = address;
    this.attempts = attempts;
    this.introAttempts = options?.introAttempts ?? [];
  }
}
