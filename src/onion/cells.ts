/**
 * onion/cells — the bodies of the onion-service relay messages a client sends and gets
 * (rend-spec-v3 §3.2, §3.3, §4; tor's hs_cell.c and trunnel/hs/*.trunnel, rendmid.c):
 * ESTABLISH_RENDEZVOUS (33), INTRODUCE1 (34), RENDEZVOUS1 (36, the service's; for fakes),
 * RENDEZVOUS2 (37), RENDEZVOUS_ESTABLISHED (39), INTRODUCE_ACK (40). All circuit-level
 * (stream id 0), handled at the circuit's last hop only.
 *
 * Layer: onion-service codec core. No I/O, no clock. `encode()` → body bytes;
 * `X.decode(body)` → X, or a DecodeError/IncompleteError naming the field. Not here: the
 * hs-ntor crypto of INTRODUCE1's encrypted part and of RENDEZVOUS2's HANDSHAKE_INFO
 * (onion/hsntor), the relay-cell framing (codec/relaycell).
 */
import { BadArgumentError, DecodeError } from '../errors.js';
import { Reader, Writer, concatBytes, latin1 } from '../codec/bytes.js';
import type { RelayMessage } from '../codec/relaymsg.js';
import { encodeNtorV3Extensions, type NtorV3Extension } from '../crypto/handshake/ntorv3.js';
import { HS_NTOR_MAC_LEN, HS_NTOR_REPLY_LEN, INTRO_AUTH_KEY_ED25519, REND_COOKIE_LEN, encodeIntroduce1Header } from './hsntor.js';

/** Relay commands of onion services (tor's or.h; rend-spec 0.5). */
export const RelayCommandHs = {
  ESTABLISH_INTRO: 32,
  ESTABLISH_RENDEZVOUS: 33,
  INTRODUCE1: 34,
  INTRODUCE2: 35,
  RENDEZVOUS1: 36,
  RENDEZVOUS2: 37,
  INTRO_ESTABLISHED: 38,
  RENDEZVOUS_ESTABLISHED: 39,
  INTRODUCE_ACK: 40,
} as const;

/** INTRODUCE_ACK statuses (rend-spec 3.2.2; tor's intro point sends 0, 1 and 2 only). */
export const IntroduceAckStatus = {
  SUCCESS: 0,
  SERVICE_NOT_RECOGNIZED: 1,
  BAD_MESSAGE_FORMAT: 2,
  CANT_RELAY: 3,
} as const;

/** LEGACY_KEY_ID: 20 bytes, all zero for v3 (rend-spec 3.2.1). */
const LEGACY_KEY_ID_LEN = 20;
const X_LEN = 32;

function checkBytes(value: Uint8Array, length: number, what: string): Uint8Array {
  if (!(value instanceof Uint8Array) || value.length !== length) {
    throw new BadArgumentError(`${what} is ${length} bytes, got ${value instanceof Uint8Array ? value.length : typeof value}`);
  }
  return value;
}

/**
 * Reads an extension block `N u8 | {TYPE u8 | LEN u8 | DATA}*` (rend-spec 3.1.1). Unknown
 * types are kept; callers take the first of a type. What follows the block is the caller's.
 */
function readExtensions(r: Reader): NtorV3Extension[] {
  const n = r.u8('N_EXTENSIONS');
  const out: NtorV3Extension[] = [];
  for (let i = 0; i < n; i++) {
    const type = r.u8(`extension ${i + 1} of ${n}: EXT_FIELD_TYPE`);
    const len = r.u8(`extension ${i + 1} of ${n}: EXT_FIELD_LEN`);
    out.push({ type, data: r.bytes(len, `extension ${i + 1} of ${n} (type ${type}): EXT_FIELD`).slice() });
  }
  return out;
}

// ---------------------------------------------------------------------------------

/** ESTABLISH_RENDEZVOUS (33): RENDEZVOUS_COOKIE, exactly 20 bytes (tor's RP closes the circuit on any other length). */
export class EstablishRendezvousMsg implements RelayMessage {
  readonly command = RelayCommandHs.ESTABLISH_RENDEZVOUS;
  readonly cookie: Uint8Array;

  constructor(cookie: Uint8Array) {
    this.cookie = checkBytes(cookie, REND_COOKIE_LEN, 'ESTABLISH_RENDEZVOUS: RENDEZVOUS_COOKIE');
  }

  encode(): Uint8Array {
    return Uint8Array.from(this.cookie);
  }

  /** As tor's rendezvous point: exactly 20 bytes. */
  static decode(body: Uint8Array): EstablishRendezvousMsg {
    if (body.length !== REND_COOKIE_LEN) throw new DecodeError('ESTABLISH_RENDEZVOUS body', 0, `RENDEZVOUS_COOKIE is exactly ${REND_COOKIE_LEN} bytes, got a body of ${body.length}`);
    return new EstablishRendezvousMsg(body.slice());
  }
}

/** RENDEZVOUS_ESTABLISHED (39): empty; extra bytes are ignored (rend-spec 4.1). */
export class RendezvousEstablishedMsg implements RelayMessage {
  readonly command = RelayCommandHs.RENDEZVOUS_ESTABLISHED;

  encode(): Uint8Array {
    return new Uint8Array(0);
  }

  static decode(_body?: Uint8Array): RendezvousEstablishedMsg {
    return new RendezvousEstablishedMsg();
  }
}

/**
 * INTRODUCE1 (34), and INTRODUCE2 (35), the same bytes the intro point passes on
 * (rend-spec 3.2.1): header = LEGACY_KEY_ID (zero) | AUTH_KEY_TYPE 02 | AUTH_KEY_LEN |
 * AUTH_KEY | N_EXTENSIONS | extensions, then ENCRYPTED = X | C | MAC (onion/hsntor's
 * `hsNtorClientIntroduce`), whose MAC covers the header from byte 0.
 */
export class Introduce1Msg implements RelayMessage {
  readonly command: 34 | 35;
  readonly authKey: Uint8Array;
  readonly extensions: readonly NtorV3Extension[];
  /** X | C | MAC. */
  readonly encrypted: Uint8Array;

  constructor(authKey: Uint8Array, encrypted: Uint8Array, extensions: readonly NtorV3Extension[] = [], command: 34 | 35 = RelayCommandHs.INTRODUCE1) {
    this.authKey = checkBytes(authKey, 32, 'INTRODUCE1: AUTH_KEY (Ed25519)');
    if (!(encrypted instanceof Uint8Array) || encrypted.length < X_LEN + HS_NTOR_MAC_LEN) {
      throw new BadArgumentError(`INTRODUCE1: ENCRYPTED is X | C | MAC, at least ${X_LEN + HS_NTOR_MAC_LEN} bytes, got ${encrypted instanceof Uint8Array ? encrypted.length : typeof encrypted}`);
    }
    this.encrypted = encrypted;
    this.extensions = extensions;
    this.command = command;
  }

  /** The header the MAC covers (onion/hsntor's `encodeIntroduce1Header` makes the same bytes). */
  header(): Uint8Array {
    return encodeIntroduce1Header(this.authKey, this.extensions);
  }

  /** X, the client's public key (the first 32 bytes of ENCRYPTED). */
  get clientKey(): Uint8Array {
    return this.encrypted.subarray(0, X_LEN);
  }

  encode(): Uint8Array {
    return concatBytes([this.header(), this.encrypted]);
  }

  /**
   * Decodes as tor's intro point does: a non-zero LEGACY_KEY_ID, an auth key that is not
   * Ed25519 of 32 bytes, or an ENCRYPTED shorter than X | MAC is a DecodeError.
   */
  static decode(body: Uint8Array, command: 34 | 35 = RelayCommandHs.INTRODUCE1): Introduce1Msg {
    const what = command === 34 ? 'INTRODUCE1 body' : 'INTRODUCE2 body';
    const r = new Reader(body, what);
    const legacy = r.bytes(LEGACY_KEY_ID_LEN, 'LEGACY_KEY_ID');
    if (legacy.some((b) => b !== 0)) r.fail('LEGACY_KEY_ID is not all zero (a v2 INTRODUCE1?)', 0);
    const typeAt = r.pos;
    const type = r.u8('AUTH_KEY_TYPE');
    if (type !== INTRO_AUTH_KEY_ED25519) r.fail(`AUTH_KEY_TYPE is ${type}, expected ${INTRO_AUTH_KEY_ED25519} (Ed25519)`, typeAt);
    const lenAt = r.pos;
    const len = r.u16('AUTH_KEY_LEN');
    if (len !== 32) r.fail(`AUTH_KEY_LEN is ${len}, expected 32`, lenAt);
    const authKey = r.bytes(32, 'AUTH_KEY').slice();
    const extensions = readExtensions(r);
    const encAt = r.pos;
    const encrypted = r.rest().slice();
    if (encrypted.length < X_LEN + HS_NTOR_MAC_LEN) r.fail(`ENCRYPTED is X | C | MAC, at least ${X_LEN + HS_NTOR_MAC_LEN} bytes, got ${encrypted.length}`, encAt);
    return new Introduce1Msg(authKey, encrypted, extensions, command);
  }
}

/** INTRODUCE_ACK (40): STATUS u16 | N_EXTENSIONS | extensions (rend-spec 3.2.2); bytes after the block are ignored (trunnel). */
export class IntroduceAckMsg implements RelayMessage {
  readonly command = RelayCommandHs.INTRODUCE_ACK;

  constructor(
    readonly status: number,
    readonly extensions: readonly NtorV3Extension[] = [],
  ) {
    if (!Number.isInteger(status) || status < 0 || status > 0xffff) throw new BadArgumentError(`INTRODUCE_ACK: STATUS is a u16, not ${status}`);
  }

  encode(): Uint8Array {
    return new Writer(3).u16(this.status).bytes(encodeNtorV3Extensions(this.extensions)).finish();
  }

  static decode(body: Uint8Array): IntroduceAckMsg {
    const r = new Reader(body, 'INTRODUCE_ACK body');
    const status = r.u16('STATUS');
    return new IntroduceAckMsg(status, readExtensions(r));
  }
}

/** RENDEZVOUS1 (36, service → RP): RENDEZVOUS_COOKIE | HANDSHAKE_INFO (Y | AUTH). For fake services and tests. */
export class Rendezvous1Msg implements RelayMessage {
  readonly command = RelayCommandHs.RENDEZVOUS1;
  readonly cookie: Uint8Array;
  readonly handshakeInfo: Uint8Array;

  constructor(cookie: Uint8Array, handshakeInfo: Uint8Array) {
    this.cookie = checkBytes(cookie, REND_COOKIE_LEN, 'RENDEZVOUS1: RENDEZVOUS_COOKIE');
    this.handshakeInfo = checkBytes(handshakeInfo, HS_NTOR_REPLY_LEN, 'RENDEZVOUS1: HANDSHAKE_INFO');
  }

  encode(): Uint8Array {
    return concatBytes([this.cookie, this.handshakeInfo]);
  }

  /** The RP passes on whatever follows the cookie; here HANDSHAKE_INFO is its first 64 bytes, the rest ignored. */
  static decode(body: Uint8Array): Rendezvous1Msg {
    const r = new Reader(body, 'RENDEZVOUS1 body');
    const cookie = r.bytes(REND_COOKIE_LEN, 'RENDEZVOUS_COOKIE').slice();
    return new Rendezvous1Msg(cookie, r.bytes(HS_NTOR_REPLY_LEN, 'HANDSHAKE_INFO').slice());
  }
}

/** RENDEZVOUS2 (37): HANDSHAKE_INFO = Y | AUTH, 64 bytes (trunnel: a fixed array; bytes after it are ignored). */
export class Rendezvous2Msg implements RelayMessage {
  readonly command = RelayCommandHs.RENDEZVOUS2;
  readonly handshakeInfo: Uint8Array;

  constructor(handshakeInfo: Uint8Array) {
    this.handshakeInfo = checkBytes(handshakeInfo, HS_NTOR_REPLY_LEN, 'RENDEZVOUS2: HANDSHAKE_INFO');
  }

  encode(): Uint8Array {
    return Uint8Array.from(this.handshakeInfo);
  }

  static decode(body: Uint8Array): Rendezvous2Msg {
    const r = new Reader(body, 'RENDEZVOUS2 body');
    return new Rendezvous2Msg(r.bytes(HS_NTOR_REPLY_LEN, 'HANDSHAKE_INFO').slice());
  }
}

/** Any of the messages above, by command (32 and 38 are the service's and not decoded here: undefined). */
export type HsRelayMessage = EstablishRendezvousMsg | RendezvousEstablishedMsg | Introduce1Msg | IntroduceAckMsg | Rendezvous1Msg | Rendezvous2Msg;

/** Decodes an onion-service relay message body by command; undefined for a command this file does not know. */
export function decodeHsRelayMessage(command: number, body: Uint8Array): HsRelayMessage | undefined {
  switch (command) {
    case RelayCommandHs.ESTABLISH_RENDEZVOUS:
      return EstablishRendezvousMsg.decode(body);
    case RelayCommandHs.INTRODUCE1:
    case RelayCommandHs.INTRODUCE2:
      return Introduce1Msg.decode(body, command);
    case RelayCommandHs.RENDEZVOUS1:
      return Rendezvous1Msg.decode(body);
    case RelayCommandHs.RENDEZVOUS2:
      return Rendezvous2Msg.decode(body);
    case RelayCommandHs.RENDEZVOUS_ESTABLISHED:
      return RendezvousEstablishedMsg.decode(body);
    case RelayCommandHs.INTRODUCE_ACK:
      return IntroduceAckMsg.decode(body);
    default:
      return undefined;
  }
}

/**
 * BEGIN (1) to an onion service's virtual hop (tor's connection_ap_handshake_send_begin on
 * a rendezvous circuit; DIGEST-onion §6.7): ADDRPORT = ":" PORT NUL — the address is empty —
 * and no FLAGS (tor adds them only on general circuits). The service answers CONNECTED
 * with an empty body.
 */
export class OnionBeginMsg implements RelayMessage {
  readonly command = 1;

  constructor(readonly port: number) {
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new BadArgumentError(`an onion service's port is 1-65535, not ${port}`);
  }

  encode(): Uint8Array {
    return new Writer(8).bytes(latin1.encode(`:${this.port}`)).u8(0).finish();
  }
}
