/**
 * client/handshakes — what a circuit needs to add a hop to a relay: the relay's identity
 * and keys (`CircuitTarget`, as the verified consensus lists them), the CREATE2/EXTEND2
 * handshake for it (ntor, ntor v3: crypto/handshake) wrapped as proto/circuit's
 * `PendingHandshake`, and the EXTEND2 link specifiers in the order tor sends them.
 *
 * Layer: client glue, no I/O. The handshakes' maths is crypto/handshake's.
 */
import { randomBytes } from 'node:crypto';
import { BadArgumentError, HandshakeError, OrportError } from '../errors.js';
import { LinkByEd25519, LinkByFingerprint, LinkByIPv4, LinkByIPv6, type LinkSpecifier } from '../codec/datatype.js';
import type { PendingHandshake } from '../proto/circuit.js';
import { supportsVersion } from '../dir/consensus.js';
import { ntorClientFinish, ntorClientStart } from '../crypto/handshake/ntor.js';
import { decodeNtorV3Response, encodeNtorV3Request, ntorV3ClientFinish, ntorV3ClientStart } from '../crypto/handshake/ntorv3.js';
import { CGO_KEY_MATERIAL_LEN } from '../crypto/cgo.js';

/** Relay=6 (CRYPT_CGO), the capability the ntor v3 subprotocol request asks for (tor's build_cgo_subproto_request). */
export const CGO_SUBPROTOCOL = { protocol: 2, version: 6 } as const;

/** A relay to build a hop to: `TorClient`'s `RelayInfo` is one. */
export interface CircuitTarget {
  /** The relay's nickname, if known: names the hop in errors. */
  readonly nickname?: string | undefined;
  /** RSA identity fingerprint, 40 hex digits. */
  readonly rsa: string;
  /** Ed25519 identity, base64 (unpadded); needed for ntor v3, sent in EXTEND2 when known. */
  readonly ed25519?: string | undefined;
  /** The curve25519 ntor onion key, base64 (from the microdescriptor). */
  readonly ntorOnionKey?: string | undefined;
  readonly address: string;
  readonly orPort: number;
  readonly ipv6?: { readonly address: string; readonly port: number } | undefined;
  /** Subprotocols (`pr`): ntor v3 needs Relay=4. */
  readonly protocols?: Readonly<Record<string, string>>;
}

export type HandshakeKind = 'ntor' | 'ntor-v3';

/** CREATE2 handshake types (tor-spec 5.1). */
export const HTYPE = { ntor: 2, 'ntor-v3': 3 } as const;

function bytesOf(base64: string | undefined, length: number, what: string, target: CircuitTarget): Uint8Array {
  const bytes = base64 === undefined ? undefined : new Uint8Array(Buffer.from(base64, 'base64'));
  if (!bytes || bytes.length !== length) throw new BadArgumentError(`relay ${target.rsa}: ${what} must be ${length} bytes of base64, got ${JSON.stringify(base64 ?? null)}`);
  return bytes;
}

/** What names a hop in errors: the nickname, else the RSA fingerprint. */
export function targetName(target: CircuitTarget): string {
  return target.nickname || target.rsa || `${target.address}:${target.orPort}`;
}

/** ntor v3 where the relay lists Relay=4 and has an Ed25519 id (tor's circuit_pick_extend_handshake), else ntor. */
export function defaultHandshake(target: CircuitTarget): HandshakeKind {
  return target.ed25519 && supportsVersion(target.protocols?.Relay, 4) ? 'ntor-v3' : 'ntor';
}

/** What to negotiate in the handshake (ntor v3 only). */
export interface HandshakeOptions {
  /**
   * Ask for congestion control (prop 324, the ntor v3 extension); `sendmeInc` is the
   * consensus' cc_sendme_inc, against which the relay's answer is checked (tor accepts
   * ±1: congestion_control_validate_sendme_increment).
   */
  readonly congestionControl?: { readonly sendmeInc: number };
  /**
   * Ask for CGO relay crypto (prop 359): the subprotocol request Relay=6 next to the
   * congestion-control request, as tor 0.4.9 sends it (only together with it).
   */
  readonly cgo?: boolean;
}

/** What the handshake agreed beyond the keys. */
export interface Negotiated {
  /** Congestion control is on for the hop, with this sendme_inc (undefined: fixed windows). */
  readonly sendmeInc: number | undefined;
  /** The hop runs CGO: its key material (forward 80 | backward 80), else undefined (tor1). */
  readonly cgoKeys?: Uint8Array | undefined;
}

/**
 * DIGEST-streams §4.1 (tor's versions.c supports_cgo): the relay lists FlowCtrl=2,
 * Relay=5 (NEGOTIATE_SUBPROTO) and Relay=6 (CRYPT_CGO).
 */
export function offersCgo(target: CircuitTarget): boolean {
  const p = target.protocols;
  return !!target.ed25519 && supportsVersion(p?.FlowCtrl, 2) && supportsVersion(p?.Relay, 5) && supportsVersion(p?.Relay, 6);
}

/** A started handshake to `target`. `where` names the hop in errors. */
export function handshakeFor(
  kind: HandshakeKind,
  target: CircuitTarget,
  where: string,
  random: (n: number) => Uint8Array = (n) => new Uint8Array(randomBytes(n)),
  options: HandshakeOptions = {},
): PendingHandshake & { negotiated(): Negotiated } {
  const ntorKey = bytesOf(target.ntorOnionKey, 32, 'the ntor onion key', target);
  if (kind === 'ntor') {
    if (options.congestionControl || options.cgo) throw new BadArgumentError(`congestion control and CGO are negotiated with ntor v3 only (prop 324, 359), not ${kind}`);
    const rsaId = new Uint8Array(Buffer.from(target.rsa.replace(/^\$/, ''), 'hex'));
    if (rsaId.length !== 20) throw new BadArgumentError(`relay ${target.rsa}: the RSA identity must be 40 hex digits`);
    const { state, message } = ntorClientStart({ rsaId, ntorKey }, random);
    return { type: HTYPE.ntor, name: 'ntor', message, finish: (reply) => ntorClientFinish(state, reply, where), negotiated: () => ({ sendmeInc: undefined }) };
  }
  if (kind === 'ntor-v3') {
    const ed25519Id = bytesOf(target.ed25519, 32, 'the Ed25519 identity', target);
    // CM is an extension list; tor refuses an empty CM, so nothing asked for is `00`.
    const cc = options.congestionControl;
    // tor 0.4.9 (client_circ_negotiation_message): CGO only together with congestion control: CM `02 01 00 03 02 02 06`.
    if (options.cgo && !cc) throw new BadArgumentError(`CGO is asked for only together with congestion control (tor's client_circ_negotiation_message), for ${where}`);
    const request = encodeNtorV3Request({ congestionControl: !!cc, subprotocols: options.cgo ? [CGO_SUBPROTOCOL] : [] });
    const { state, message } = ntorV3ClientStart({ ed25519Id, ntorKey }, request, random);
    let sendmeInc: number | undefined;
    let cgoKeys: Uint8Array | undefined;
    return {
      type: HTYPE['ntor-v3'],
      name: 'ntor v3',
      message,
      finish: (reply) => {
        const { keys, keyMaterial, serverMessage } = ntorV3ClientFinish(state, reply, where);
        sendmeInc = checkServerMessage(serverMessage, where, cc?.sendmeInc);
        if (options.cgo) {
          // The relay's SM says nothing of CGO (success is implicit); tor's relays refuse CGO without congestion control.
          if (sendmeInc === undefined) throw new HandshakeError(`ntor v3 reply on ${where}: we asked for CGO with congestion control, and the relay answered without congestion control (tor's relays refuse the handshake instead)`);
          cgoKeys = keyMaterial(CGO_KEY_MATERIAL_LEN);
        }
        return keys;
      },
      negotiated: () => ({ sendmeInc, cgoKeys }),
    };
  }
  throw new BadArgumentError(`unknown circuit handshake ${JSON.stringify(kind)} (known: ntor, ntor-v3)`);
}

/**
 * The relay's ntor v3 message SM must be a well-formed extension list (prop 332: parties
 * MUST reject messages that are not); unknown extensions are ignored. A congestion-control
 * answer we did not ask for is refused; one we asked for must carry a sendme_inc within ±1
 * of the consensus' (tor's congestion_control_validate_sendme_increment). Returns it.
 */
function checkServerMessage(serverMessage: Uint8Array, where: string, askedSendmeInc: number | undefined): number | undefined {
  let sendmeInc: number | undefined;
  try {
    sendmeInc = decodeNtorV3Response(serverMessage, `the ntor v3 server message`).sendmeInc;
  } catch (err) {
    if (!(err instanceof OrportError)) throw err;
    throw new HandshakeError(`ntor v3 reply on ${where}: the relay's message is malformed (prop 332): ${err.message}`, { cause: err });
  }
  if (sendmeInc === undefined) return undefined;
  if (askedSendmeInc === undefined) throw new HandshakeError(`ntor v3 reply on ${where}: the relay turned on congestion control (sendme_inc ${sendmeInc}), which we did not ask for (prop 324)`);
  if (sendmeInc === 0 || Math.abs(sendmeInc - askedSendmeInc) > 1) {
    throw new HandshakeError(`ntor v3 reply on ${where}: the relay's sendme_inc ${sendmeInc} is out of range (the consensus says ${askedSendmeInc}; tor accepts ±1, never 0)`);
  }
  return sendmeInc;
}

/** EXTEND2 link specifiers (tor-spec 5.1.2), in tor's order: IPv4, RSA id, Ed25519 id, IPv6. */
export function linkSpecifiersFor(target: CircuitTarget): LinkSpecifier[] {
  const specs: LinkSpecifier[] = [new LinkByIPv4(target.address, target.orPort), new LinkByFingerprint(target.rsa)];
  if (target.ed25519) specs.push(new LinkByEd25519(target.ed25519));
  if (target.ipv6) specs.push(new LinkByIPv6(target.ipv6.address, target.ipv6.port));
  return specs;
}
