/**
 * testing/fakeonion — onion-service roles for the scriptable fake relays (testing/
 * fakerelay), for client tests without a tor: a rendezvous point (ESTABLISH_RENDEZVOUS →
 * RENDEZVOUS_ESTABLISHED; the service's RENDEZVOUS1 with that cookie → RENDEZVOUS2 to the
 * client and the two circuits spliced, as tor's rendmid.c), an introduction point
 * (INTRODUCE1 → INTRODUCE2 to the service, INTRODUCE_ACK to the client, as
 * hs_intropoint.c), and an in-process onion service (identity key, per intro point an
 * Ed25519 auth key and an X25519 enc key pair) that answers INTRODUCE2 with hs-ntor
 * (onion/hsntor's `hsNtorService`) and then is the virtual hop: tor1 relay crypto with
 * SHA3-256 digests and AES-256-CTR (rend-spec 4.2.1), BEGIN ":port" answered with an empty
 * CONNECTED and bytes relayed to a port on 127.0.0.1 (HiddenServicePort), an unknown port
 * with END DONE.
 *
 *   const onion = new FakeOnionWorld();
 *   const relay = await startFakeRelay({ hooks: onion.hooks() });   // every relay: any role
 *   const service = await onion.startService({ introPoints: [ipA, ipB], ports: { 80: echoPort } });
 *   await openOnionCircuit(client, service.target());                // descriptor built here, no HSDir
 *   onion.roles.set(ipA, { intro: { nack: 1 } });                    // scripted faults
 *
 * `startFakeOnionNetwork` puts it together for a TorClient: fake relays that are also the
 * network's authorities, serving a consensus (testing/dirdocs) that lists them all, and
 * the HSDirs: `service.publish()` has each serve the service's descriptor (testing/hsdesc:
 * encrypted and signed by the blinded key for the network's time period), so
 * `client.connect('<56>.onion', port)` runs end to end.
 *
 * Faults (per relay, `roles`; per service, its options): an intro point that NACKs
 * (status 1, 2, any), stays silent or closes the circuit; a rendezvous point that never
 * answers ESTABLISH_RENDEZVOUS, never sends RENDEZVOUS2, sends it with a flipped AUTH byte
 * or from the hop before it; a service that ignores INTRODUCE2 or answers it late. What a
 * client does against the rules these relays enforce (an HS cell on a one-hop circuit, a
 * cookie that is not 20 bytes or is reused, a second INTRODUCE1 on a circuit, HS cells a
 * client never sends) lands in the relay's `violations`, with what happened in `events`.
 *
 * Not modelled: the service's own circuits (it reaches the rendezvous point in memory —
 * RENDEZVOUS1 is a method call, the splice appends its hop to the client's circuit after
 * the RP, so the RP's layer is the last real one), ESTABLISH_INTRO, HSDir responsibility
 * (every fake relay serves every published descriptor), descriptor uploads, client
 * authorization, PoW, congestion control on the virtual hop. Layer: test support (I/O
 * through fakerelay).
 */
import { createCipheriv, createDecipheriv, createHash, generateKeyPairSync, randomBytes, type Cipher, type Decipher, type Hash, type KeyObject } from 'node:crypto';
import { deflateSync } from 'node:zlib';
import { bytesEqual } from '../codec/bytes.js';
import { CloseReason, EndReason } from '../codec/datatype.js';
import { EndMsg } from '../codec/relaymsg.js';
import { x25519KeyPair, type X25519KeyPair } from '../crypto/handshake/ntor.js';
import { Ed25519Cert, ed25519RawPublicKey } from '../crypto/ed25519cert.js';
import { Network } from '../dir/network.js';
import { encodeOnionAddress } from '../onion/address.js';
import { IntroduceAckMsg, IntroduceAckStatus, Introduce1Msg, RelayCommandHs } from '../onion/cells.js';
import type { HsDescriptor, HsIntroductionPoint } from '../onion/descriptor.js';
import { decodeIntroducePlaintext, hsNtorService, type HsVirtualHopKeys, type LinkSpecifierBytes } from '../onion/hsntor.js';
import { descriptorPath, subcredential, timePeriod, type TimePeriod, type TimePeriodParams } from '../onion/keys.js';
import { blindedSigner, encodeHsDescriptor, type BlindedSigner } from './hsdesc.js';
import { startFakeRelay, FakeStream, type FakeCircuit, type FakeRelay, type FakeRelayHooks, type Document } from './fakerelay.js';
import { buildCertChain, type GeneratedChain } from './certchain.js';
import { dirAuthorityTorrc, makeAuthorities, makeConsensus, type SyntheticRelay } from './dirdocs.js';
import type { RandomSource, RelayMessageIn, RelaySideLayer } from './relayside.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const EMPTY = new Uint8Array(0);
const ZERO_IV = new Uint8Array(16);
const DIGEST_AT = 5;

// ---------------------------------------------------------------------------------
// The virtual hop's crypto, the service's end

/**
 * tor1 relay crypto as the onion service runs it on the rendezvous circuit (rend-spec
 * 4.2.1; tor's relay_crypto_tor1.c with is_hs_v3, the service's side swapped): running
 * SHA3-256 digests (4 bytes in the cell, 20 in a SENDME v1), AES-256-CTR with a zero IV,
 * one keystream per direction. `keys` are the service's (hsNtorService: its forward is the
 * client's backward): it sends with forward, receives with backward.
 */
export class HsServiceLayer implements RelaySideLayer {
  private readonly outCipher: Cipher;
  private readonly inCipher: Decipher;
  private readonly outDigest: Hash;
  private inDigest: Hash;

  constructor(keys: Pick<HsVirtualHopKeys, 'forwardDigest' | 'backwardDigest' | 'forwardKey' | 'backwardKey'>) {
    this.outCipher = createCipheriv('aes-256-ctr', keys.forwardKey, ZERO_IV);
    this.inCipher = createDecipheriv('aes-256-ctr', keys.backwardKey, ZERO_IV);
    this.outDigest = createHash('sha3-256').update(keys.forwardDigest);
    this.inDigest = createHash('sha3-256').update(keys.backwardDigest);
  }

  originate(payload: Uint8Array): Uint8Array {
    payload.fill(0, DIGEST_AT, DIGEST_AT + 4);
    const digest = new Uint8Array(this.outDigest.update(payload).copy().digest());
    payload.set(digest.subarray(0, 4), DIGEST_AT);
    return digest;
  }

  encrypt(payload: Uint8Array): void {
    payload.set(this.outCipher.update(payload));
  }

  decrypt(payload: Uint8Array): Uint8Array {
    return new Uint8Array(this.inCipher.update(payload));
  }

  recognize(payload: Uint8Array): Uint8Array | undefined {
    if (payload[1] !== 0 || payload[2] !== 0) return undefined;
    const claimed = payload.slice(DIGEST_AT, DIGEST_AT + 4);
    payload.fill(0, DIGEST_AT, DIGEST_AT + 4);
    const candidate = this.inDigest.copy().update(payload);
    payload.set(claimed, DIGEST_AT);
    const digest = new Uint8Array(candidate.copy().digest());
    if (!bytesEqual(digest.subarray(0, 4), claimed)) return undefined;
    this.inDigest = candidate;
    return digest;
  }
}

// ---------------------------------------------------------------------------------
// Roles and faults

/**
 * An introduction point's behaviour on INTRODUCE1 (default 'honest'): 'silent' never
 * answers, 'close' destroys the circuit, `{ nack }` answers INTRODUCE_ACK with that status,
 * `{ ackDelayMs }` is honest but sends the ACK that much later (RENDEZVOUS2 comes first).
 */
export type IntroBehaviour = 'honest' | 'silent' | 'close' | { readonly nack: number } | { readonly ackDelayMs: number };

/**
 * A rendezvous point's behaviour (default 'honest'): 'no-established' never answers
 * ESTABLISH_RENDEZVOUS; 'no-rendezvous2' drops the service's RENDEZVOUS1; 'bad-auth' flips
 * a byte of AUTH in RENDEZVOUS2; 'from-middle' has the hop before the RP send RENDEZVOUS2.
 */
export type RendezvousBehaviour = 'honest' | 'no-established' | 'no-rendezvous2' | 'bad-auth' | 'from-middle';

export interface OnionRelayRoles {
  intro?: IntroBehaviour;
  rendezvous?: RendezvousBehaviour;
}

/** Something an onion role did, in order (for tests to check who was asked what). */
export interface OnionEvent {
  readonly relay: string;
  readonly event: 'ESTABLISH_RENDEZVOUS' | 'RENDEZVOUS_ESTABLISHED' | 'INTRODUCE1' | 'INTRODUCE_ACK' | 'INTRODUCE2' | 'RENDEZVOUS1' | 'RENDEZVOUS2' | 'BEGIN' | 'END';
  /** The circuit id on the client's connection to the circuit's first relay. */
  readonly circuit: number;
  /** The hop that did it (1-based). */
  readonly hop: number;
  readonly detail?: string;
}

export interface FakeOnionServiceOptions {
  /** The relays that are its introduction points (their auth and enc keys are made here). */
  introPoints: readonly FakeRelay[];
  /** HiddenServicePort: virtual port → a port on 127.0.0.1. */
  ports: Readonly<Record<number, number>>;
  /** Wait this long after INTRODUCE2 before RENDEZVOUS1 (the service building its circuit; default 0). */
  rendezvousDelayMs?: number;
  /** Never answer INTRODUCE2 (the client's rendezvous never completes). */
  ignoreIntroduce2?: boolean;
  random?: RandomSource;
  /** Its chain of keys for the virtual hop's relay handle (default: a fresh one). */
  chain?: GeneratedChain;
}

/** One introduction point of a fake service: the relay, and the keys the descriptor lists for it. */
export interface FakeIntroPoint {
  readonly relay: FakeRelay;
  /** KP_hs_ipt_sid (AUTH_KEY). */
  readonly authKey: Uint8Array;
  readonly authKeyPrivate: KeyObject;
  /** KP_hss_ntor, and its secret (B, b). */
  readonly encKeyPair: X25519KeyPair;
}

/** The state of one rendezvous circuit at its RP. */
interface Rendezvous {
  readonly circuit: FakeCircuit;
  readonly cookie: Uint8Array;
}

function ed25519Pair(): { pub: Uint8Array; priv: KeyObject; seed: Uint8Array } {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const seed = new Uint8Array(Buffer.from(privateKey.export({ format: 'jwk' }).d!, 'base64url'));
  return { pub: ed25519RawPublicKey(publicKey), priv: privateKey, seed };
}

/** C tor's link specifiers for a relay (node_get_link_specifier_smartlist): IPv4+ORPort, RSA id, Ed25519 id. */
export function linkSpecifiersOf(relay: FakeRelay): LinkSpecifierBytes[] {
  const ipv4 = new Uint8Array(6);
  relay.host.split('.').forEach((o, i) => (ipv4[i] = Number(o)));
  ipv4[4] = relay.port >> 8;
  ipv4[5] = relay.port & 0xff;
  return [
    { type: 0, data: ipv4 },
    { type: 2, data: new Uint8Array(Buffer.from(relay.identity.rsa, 'hex')) },
    { type: 3, data: Uint8Array.from(relay.chain.ed25519Identity) },
  ];
}

/**
 * The onion roles of every fake relay given `hooks()`: the rendezvous cookies, the services
 * and their intro points, the faults per relay (`roles`, changeable at any time).
 */
export class FakeOnionWorld {
  /** Scripted behaviour per relay (absent: honest). */
  readonly roles = new Map<FakeRelay, OnionRelayRoles>();
  /**
   * Behaviours for the next INTRODUCE1s at any relay, in order (taken one per INTRODUCE1,
   * before `roles`): `[{ nack: 1 }]` NACKs the first introduction whichever intro point
   * the client tries first, so a retry is certain.
   */
  readonly nextIntroductions: IntroBehaviour[] = [];
  readonly services: FakeOnionService[] = [];
  readonly events: OnionEvent[] = [];
  /**
   * The time period services blind their keys for: as a client of the network computes it
   * (onion/lookup: at the consensus' valid-after, with its voting interval and test-network
   * rule). startFakeOnionNetwork sets it; default: now, the public network's rule.
   */
  period: { at: Date; params: TimePeriodParams } = { at: new Date(), params: {} };
  /** Descriptors the fake HSDirs serve, by path (/tor/hs/3/<base64 blinded key>; others get a 404): `FakeOnionService.publish`. */
  readonly published = new Map<string, string>();
  /** Descriptor requests the fake HSDirs answered (found or not). */
  descriptorFetches = 0;
  private readonly cookies = new Map<string, Rendezvous>();
  private readonly introduced = new WeakSet<FakeCircuit>();

  /** Hooks that give a relay every onion role; `base` hooks run too (its `message` hook first, with ours as its `next`). */
  hooks(base: FakeRelayHooks = {}): FakeRelayHooks {
    return {
      ...base,
      message: (conn, next, circuit, msg) => {
        const ours = () => this.onMessage(circuit, msg, next);
        return base.message ? base.message(conn, ours, circuit, msg) : ours();
      },
    };
  }

  /** Starts a service whose intro points are `options.introPoints` (relays with `hooks()`). */
  async startService(options: FakeOnionServiceOptions): Promise<FakeOnionService> {
    const service = new FakeOnionService(this, options);
    await service.start();
    this.services.push(service);
    return service;
  }

  /** Rendezvous circuits open and waiting for their service (cookies not used yet). */
  get pendingRendezvous(): number {
    return [...this.cookies.values()].filter((r) => r.circuit.isOpen).length;
  }

  /** Closes every service's relay handle (the relays are the caller's). */
  async close(): Promise<void> {
    for (const s of this.services) await s.close();
  }

  /** @internal */
  record(circuit: FakeCircuit, event: OnionEvent['event'], detail?: string): void {
    this.events.push({ relay: circuit.relay.nickname, event, circuit: circuit.id, hop: circuit.hop + 1, ...(detail ? { detail } : {}) });
  }

  private onMessage(circuit: FakeCircuit, msg: RelayMessageIn, next: () => void | Promise<void>): void | Promise<void> {
    if (msg.streamId !== 0) return next();
    switch (msg.command) {
      case RelayCommandHs.ESTABLISH_RENDEZVOUS:
        return this.establishRendezvous(circuit, msg.body);
      case RelayCommandHs.INTRODUCE1:
        return this.introduce1(circuit, msg.body);
      case RelayCommandHs.ESTABLISH_INTRO:
      case RelayCommandHs.INTRODUCE2:
      case RelayCommandHs.RENDEZVOUS1:
      case RelayCommandHs.RENDEZVOUS2:
      case RelayCommandHs.INTRO_ESTABLISHED:
      case RelayCommandHs.RENDEZVOUS_ESTABLISHED:
      case RelayCommandHs.INTRODUCE_ACK:
        circuit.violation(`the client sent relay command ${msg.command}, which a client never sends`);
        return;
      default:
        return next();
    }
  }

  /** rendmid.c rend_mid_establish_rendezvous. */
  private establishRendezvous(circuit: FakeCircuit, body: Uint8Array): void {
    this.record(circuit, 'ESTABLISH_RENDEZVOUS');
    if (circuit.hop === 0) {
      // DoSRefuseSingleHopClientRendezvous: dropped without a word.
      circuit.violation('ESTABLISH_RENDEZVOUS on a one-hop circuit (tor drops it)');
      return;
    }
    if (body.length !== 20) {
      circuit.violation(`ESTABLISH_RENDEZVOUS of ${body.length} bytes (tor's RP wants exactly 20 and closes the circuit)`);
      circuit.destroy(CloseReason.PROTOCOL);
      return;
    }
    const key = hex(body);
    if (this.cookies.has(key) || [...this.cookies.values()].some((r) => r.circuit === circuit)) {
      circuit.violation('ESTABLISH_RENDEZVOUS with a cookie in use, or twice on a circuit (tor closes it)');
      circuit.destroy(CloseReason.PROTOCOL);
      return;
    }
    this.cookies.set(key, { circuit, cookie: body.slice() });
    if (this.roleOf(circuit).rendezvous === 'no-established') return;
    circuit.send(RelayCommandHs.RENDEZVOUS_ESTABLISHED, 0, EMPTY);
    this.record(circuit, 'RENDEZVOUS_ESTABLISHED');
  }

  /** hs_intropoint.c handle_introduce1: checks, then INTRODUCE2 to the service and INTRODUCE_ACK to the client. */
  private introduce1(circuit: FakeCircuit, body: Uint8Array): void {
    this.record(circuit, 'INTRODUCE1');
    if (circuit.hop === 0) {
      circuit.violation('INTRODUCE1 on a one-hop circuit (tor closes it)');
      circuit.destroy(CloseReason.PROTOCOL);
      return;
    }
    if (this.introduced.has(circuit)) {
      circuit.violation('a second INTRODUCE1 on one circuit (tor allows one and closes it)');
      circuit.destroy(CloseReason.PROTOCOL);
      return;
    }
    this.introduced.add(circuit);
    const behaviour = this.nextIntroductions.shift() ?? this.roleOf(circuit).intro ?? 'honest';
    if (behaviour === 'silent') return;
    if (behaviour === 'close') {
      circuit.destroy(CloseReason.FINISHED);
      return;
    }
    const ack = (status: number) => {
      circuit.send(RelayCommandHs.INTRODUCE_ACK, 0, new IntroduceAckMsg(status).encode());
      this.record(circuit, 'INTRODUCE_ACK', `status ${status}`);
    };
    if (behaviour !== 'honest' && 'nack' in behaviour) return ack(behaviour.nack);
    let intro: Introduce1Msg;
    try {
      intro = Introduce1Msg.decode(body);
    } catch {
      circuit.violation('INTRODUCE1 does not decode');
      return ack(IntroduceAckStatus.BAD_MESSAGE_FORMAT);
    }
    const found = this.findIntroPoint(circuit.relay, intro.authKey);
    if (!found) return ack(IntroduceAckStatus.SERVICE_NOT_RECOGNIZED);
    this.record(circuit, 'INTRODUCE2', found.service.address);
    if (behaviour !== 'honest') {
      void found.service.introduce2(circuit, found.point, intro);
      void circuit.conn.sleep(behaviour.ackDelayMs).then(() => circuit.isOpen && ack(IntroduceAckStatus.SUCCESS), () => undefined);
      return;
    }
    ack(IntroduceAckStatus.SUCCESS);
    // The service answers on its own time (after the ACK, as the service's circuit to the RP takes a while).
    void found.service.introduce2(circuit, found.point, intro);
  }

  private findIntroPoint(relay: FakeRelay, authKey: Uint8Array): { service: FakeOnionService; point: FakeIntroPoint } | undefined {
    for (const service of this.services) {
      const point = service.introPoints.find((p) => p.relay === relay && bytesEqual(p.authKey, authKey));
      if (point) return { service, point };
    }
    return undefined;
  }

  /** @internal The relay that holds `cookie`'s rendezvous circuit, if any (the cookie is not used up). */
  rendezvousFor(cookie: Uint8Array): Rendezvous | undefined {
    return this.cookies.get(hex(cookie));
  }

  /**
   * @internal rendmid.c rend_mid_rendezvous: the service's RENDEZVOUS1 at the RP holding
   * `cookie`: RENDEZVOUS2 (HANDSHAKE_INFO) to the client, the circuits spliced (`layer`
   * becomes the hop after the RP), the cookie used up. False if no circuit holds it.
   */
  rendezvous1(cookie: Uint8Array, handshakeInfo: Uint8Array, service: FakeOnionService, layer: RelaySideLayer): boolean {
    const rv = this.cookies.get(hex(cookie));
    if (!rv || !rv.circuit.isOpen) return false;
    const rp = rv.circuit;
    this.record(rp, 'RENDEZVOUS1', service.address);
    const behaviour = this.roleOf(rp).rendezvous ?? 'honest';
    if (behaviour === 'no-rendezvous2') return true;
    this.cookies.delete(hex(cookie));
    const info = handshakeInfo.slice();
    if (behaviour === 'bad-auth') info[32 + 7]! ^= 0x40;
    const from = behaviour === 'from-middle' && rp.prev ? rp.prev : rp;
    rp.appendHop(service.relay, layer);
    from.send(RelayCommandHs.RENDEZVOUS2, 0, info);
    this.record(from, 'RENDEZVOUS2', behaviour === 'honest' ? undefined : behaviour);
    return true;
  }

  private roleOf(circuit: FakeCircuit): OnionRelayRoles {
    return this.roles.get(circuit.relay) ?? {};
  }
}

/**
 * A v3 onion service in this process: an Ed25519 identity (its address), per intro point
 * an auth key and an enc key pair, and a relay handle for the virtual hop (a fake relay
 * the client never connects to: its hooks serve the service's streams).
 */
export class FakeOnionService {
  readonly identity = ed25519Pair();
  readonly address: string;
  readonly introPoints: FakeIntroPoint[];
  /** N_hs_subcred for the world's time period (what the client derives from the address). */
  readonly subcredential: Uint8Array;
  readonly blindedKey: Uint8Array;
  readonly period: TimePeriod;
  private readonly descSign = ed25519Pair();
  private readonly blinded: BlindedSigner;
  private revision = 0n;
  private readonly random: RandomSource;
  /** INTRODUCE2s that did not check out (MAC, plaintext, rendezvous point), as messages. */
  readonly errors: string[] = [];
  /** Rendezvous completed (RENDEZVOUS1 sent). */
  rendezvousCount = 0;
  private relayHandle: FakeRelay | undefined;

  constructor(
    private readonly world: FakeOnionWorld,
    readonly options: FakeOnionServiceOptions,
  ) {
    this.random = options.random ?? ((n) => new Uint8Array(randomBytes(n)));
    this.address = encodeOnionAddress(this.identity.pub);
    this.introPoints = options.introPoints.map((relay) => {
      const auth = ed25519Pair();
      return { relay, authKey: auth.pub, authKeyPrivate: auth.priv, encKeyPair: x25519KeyPair(this.random(32)) };
    });
    this.period = timePeriod(world.period.at, world.period.params);
    this.blinded = blindedSigner(this.identity.seed, this.identity.pub, this.period);
    this.blindedKey = this.blinded.publicKey;
    this.subcredential = subcredential(this.identity.pub, this.blindedKey);
  }

  /** The fake relay that carries the service's end of its rendezvous circuits. */
  get relay(): FakeRelay {
    if (!this.relayHandle) throw new Error('the service has not started');
    return this.relayHandle;
  }

  /** @internal */
  async start(): Promise<void> {
    this.relayHandle = await startFakeRelay({
      chain: this.options.chain ?? buildCertChain(),
      nickname: 'onionsvc',
      peers: [],
      hooks: { message: (_conn, next, circuit, msg) => this.onStreamMessage(circuit, msg, next) },
    });
  }

  async close(): Promise<void> {
    await this.relayHandle?.close();
  }

  /** What openOnionCircuit needs: address, identity key, subcredential and the descriptor. */
  target(introPoints: readonly FakeRelay[] = this.options.introPoints): { address: string; identityKey: Uint8Array; subcredential: Uint8Array; descriptor: HsDescriptor } {
    return { address: this.address, identityKey: this.identity.pub, subcredential: this.subcredential, descriptor: this.descriptor(introPoints) };
  }

  /**
   * The HsDescriptor a lookup would return, listing `introPoints` (default all) in that
   * order: link specifiers as C tor writes them, the relay's ntor onion key, the auth key
   * (cert 09) and enc key (cert 0B) signed by a fresh descriptor signing key. The outer and
   * middle layers hold no bytes (nothing here is decrypted again); `descriptorText` is the
   * same descriptor encoded, encrypted and signed, as an HSDir serves it.
   */
  descriptor(introPoints: readonly FakeRelay[] = this.options.introPoints): HsDescriptor {
    const expirationHours = Math.floor(Date.now() / 3_600_000) + 3;
    const cert = (certType: number, certifiedKey: Uint8Array, by: KeyObject, signer: Uint8Array) =>
      Ed25519Cert.sign({ certType, expirationHours, keyType: 1, certifiedKey, extensions: [{ type: 4, flags: 0, data: signer }] }, by);
    const certFields = { certType: 0x08, expirationHours, keyType: 1, certifiedKey: this.descSign.pub, extensions: [{ type: 4, flags: 0, data: this.blindedKey }] };
    const signingKeyCert = Ed25519Cert.build(certFields, this.blinded.sign(Ed25519Cert.build(certFields, new Uint8Array(64)).signedBytes));
    const points: HsIntroductionPoint[] = introPoints.map((relay, i) => {
      const p = this.introPoints.find((x) => x.relay === relay);
      if (!p) throw new Error(`${relay.nickname} is not an intro point of this service`);
      return {
        linkSpecifiers: linkSpecifiersOf(relay),
        onionKey: Uint8Array.from(relay.onionKey.public),
        authKey: p.authKey,
        authKeyCert: cert(0x09, p.authKey, this.descSign.priv, this.descSign.pub),
        encKey: p.encKeyPair.public,
        encKeyCert: cert(0x0b, p.encKeyPair.public, this.descSign.priv, this.descSign.pub),
        line: 3 + i * 6,
      };
    });
    return {
      outer: {
        lifetimeMinutes: 180,
        signingKeyCert: signingKeyCert,
        signingKey: this.descSign.pub,
        revisionCounter: 1n,
        superencrypted: EMPTY,
        signature: new Uint8Array(64),
        signedBody: EMPTY,
      },
      middle: { authType: 'x25519', ephemeralKey: this.random(32), authClients: [], encrypted: EMPTY },
      inner: {
        create2Formats: [2],
        introAuthRequired: ['ed25519'],
        singleOnionService: false,
        flowControl: undefined,
        powParams: [],
        introductionPoints: points,
        skipped: [],
      },
    };
  }

  /** The descriptor path the fake HSDirs serve it at (/tor/hs/3/<base64 blinded key>). */
  get descriptorPath(): string {
    return descriptorPath(this.blindedKey);
  }

  /**
   * The descriptor as tor writes it (testing/hsdesc: signed by the blinded key, both layers
   * encrypted), listing `introPoints` (default all), with a new revision counter each time.
   */
  descriptorText(introPoints: readonly FakeRelay[] = this.options.introPoints, options: { innerLines?: readonly string[] } = {}): string {
    return encodeHsDescriptor({
      blinded: this.blinded,
      signingKey: this.descSign.priv,
      signingPublicKey: this.descSign.pub,
      subcredential: this.subcredential,
      revisionCounter: ++this.revision,
      introPoints: this.descriptor(introPoints).inner.introductionPoints,
      random: this.random,
      ...(options.innerLines ? { innerLines: options.innerLines } : {}),
    });
  }

  /**
   * Has every fake HSDir of the world serve `text` (default: a fresh `descriptorText()`) at
   * this service's descriptor path; `null` withdraws it (404s).
   */
  publish(text: string | null = this.descriptorText()): void {
    if (text === null) this.world.published.delete(this.descriptorPath);
    else this.world.published.set(this.descriptorPath, text);
  }

  /** @internal INTRODUCE2 from `ip`'s circuit (hs_circuit.c hs_circ_handle_introduce2, then launching the rendezvous). */
  async introduce2(ipCircuit: FakeCircuit, point: FakeIntroPoint, intro: Introduce1Msg): Promise<void> {
    if (this.options.ignoreIntroduce2) return;
    let answer: ReturnType<typeof hsNtorService>;
    let plain: ReturnType<typeof decodeIntroducePlaintext>;
    try {
      answer = hsNtorService({ authKey: point.authKey, encKeyPair: point.encKeyPair, subcredential: this.subcredential }, intro.header(), intro.encrypted, this.random);
      plain = decodeIntroducePlaintext(answer.plaintext);
    } catch (err) {
      this.errors.push(`INTRODUCE2 via ${point.relay.nickname}: ${(err as Error).message}`);
      return;
    }
    const rv = this.world.rendezvousFor(plain.cookie);
    // The service reaches the RP by the client's link specifiers and onion key (an ntor handshake with a wrong key fails).
    const rsa = plain.linkSpecifiers.find((l) => l.type === 2)?.data;
    if (rv) {
      const rp = rv.circuit.relay;
      if (!rsa || hex(rsa).toUpperCase() !== rp.identity.rsa.toUpperCase() || !bytesEqual(plain.onionKey, rp.onionKey.public)) {
        this.errors.push(`INTRODUCE2 via ${point.relay.nickname}: the rendezvous point's link specifiers or onion key are not those of ${rp.nickname}, which holds the cookie`);
        return;
      }
    }
    if (this.options.rendezvousDelayMs) {
      try {
        await ipCircuit.conn.sleep(this.options.rendezvousDelayMs);
      } catch {
        return; // the client's connection went meanwhile
      }
    }
    if (!this.world.rendezvous1(plain.cookie, answer.handshakeInfo, this, new HsServiceLayer(answer.keys))) {
      this.errors.push(`INTRODUCE2 via ${point.relay.nickname}: no rendezvous circuit holds the cookie ${hex(plain.cookie)}`);
      return;
    }
    this.rendezvousCount++;
  }

  /** The virtual hop: BEGIN ":port" (any address, no flags) → 127.0.0.1:ports[port] with an empty CONNECTED; END DONE for a port not configured. */
  private onStreamMessage(circuit: FakeCircuit, msg: RelayMessageIn, next: () => void | Promise<void>): void | Promise<void> {
    if (msg.command !== 1) return next();
    const text = Buffer.from(msg.body).toString('latin1');
    const nul = text.indexOf('\0');
    const addrport = nul < 0 ? text : text.slice(0, nul);
    const colon = addrport.lastIndexOf(':');
    const port = Number(addrport.slice(colon + 1));
    this.world.record(circuit, 'BEGIN', JSON.stringify(addrport));
    if (colon < 0 || !Number.isInteger(port) || circuit.streams.has(msg.streamId)) {
      circuit.violation(`BEGIN ${JSON.stringify(addrport)} on stream ${msg.streamId} to the service does not parse or reuses a stream`);
      circuit.send(3, msg.streamId, new EndMsg(EndReason.TORPROTOCOL).encode());
      return;
    }
    const local = Object.prototype.hasOwnProperty.call(this.options.ports, port) ? this.options.ports[port] : undefined;
    if (local === undefined) {
      this.world.record(circuit, 'END', `port ${port} not configured`);
      circuit.send(3, msg.streamId, new EndMsg(EndReason.DONE).encode());
      return;
    }
    const stream = new FakeStream(circuit, msg.streamId, { host: addrport.slice(0, colon), port, flags: 0 });
    circuit.streams.set(msg.streamId, stream);
    circuit.relay.stats.streams++;
    circuit.relay.stats.begins++;
    stream.connect({ port: local });
  }
}

// ---------------------------------------------------------------------------------
// A whole fake network for a TorClient

/** A consensus entry (testing/dirdocs) for a running fake relay. */
export function syntheticRelayOf(relay: FakeRelay, flags: readonly string[] = ['Exit', 'Fast', 'Guard', 'HSDir', 'Running', 'Stable', 'V2Dir', 'Valid']): SyntheticRelay {
  const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64').replace(/=+$/, '');
  const ed25519 = b64(relay.chain.ed25519Identity);
  const rsaKey = Buffer.from(randomBytes(140)).toString('base64').replace(/.{64}/g, '$&\n').replace(/\n$/, '');
  const microdesc =
    `onion-key\n-----BEGIN RSA PUBLIC KEY-----\n${rsaKey}\n-----END RSA PUBLIC KEY-----\n` +
    `ntor-onion-key ${relay.ntorOnionKey}\n` +
    (flags.includes('Exit') ? 'p accept 1-65535\n' : '') +
    `id ed25519 ${ed25519}\n`;
  return {
    nickname: relay.nickname,
    rsa: relay.identity.rsa.toUpperCase(),
    ed25519,
    ntorOnionKey: relay.ntorOnionKey,
    address: relay.host,
    orPort: relay.port,
    flags: [...flags].sort(),
    bandwidth: 1000,
    microdesc,
    microdescDigest: b64(createHash('sha256').update(microdesc, 'latin1').digest()),
  };
}

export interface FakeOnionNetworkOptions {
  /** How many relays (default 8; at least 5: the intro circuit has four distinct hops). The first three are the authorities. */
  relays?: number;
  /** Their key chains (building one takes 0.1-0.5 s: reuse them across tests). */
  chains?: readonly GeneratedChain[];
  /** Hooks of relay `i` besides the onion roles. */
  hooks?: (i: number) => FakeRelayHooks | undefined;
}

export interface FakeOnionNetwork {
  readonly relays: readonly FakeRelay[];
  readonly world: FakeOnionWorld;
  /** `Network.fromTorrc` for the fake authorities (TestingTorNetwork 1). */
  readonly network: Network;
  readonly consensus: string;
  /** Stops the services and the relays. */
  close(): Promise<void>;
}

/**
 * Fake relays with every onion role, three of them also the network's authorities,
 * serving a signed microdesc consensus (valid now) that lists all of them with their real
 * keys and loopback ports, and their microdescriptors: `TorClient.create({ network })`
 * bootstraps against it and builds circuits through them.
 */
export async function startFakeOnionNetwork(options: FakeOnionNetworkOptions = {}): Promise<FakeOnionNetwork> {
  const n = options.relays ?? 8;
  if (n < 5) throw new Error('a fake onion network needs at least 5 relays');
  const world = new FakeOnionWorld();
  const relays: FakeRelay[] = [];
  let entries: SyntheticRelay[] = [];
  let consensus = '';
  let certs = '';
  const documents = (path: string): Document | undefined => {
    if (path.startsWith('/tor/status-vote/current/consensus-microdesc')) return deflateSync(consensus);
    if (path.startsWith('/tor/keys/')) return deflateSync(certs);
    if (path.startsWith('/tor/hs/3/')) {
      world.descriptorFetches++;
      return world.published.get(path);
    }
    if (path.startsWith('/tor/micro/d/')) {
      const wanted = new Set(path.slice('/tor/micro/d/'.length).replace(/\.z$/, '').split('-'));
      return deflateSync(entries.filter((r) => wanted.has(r.microdescDigest)).map((r) => r.microdesc).join(''));
    }
    return undefined;
  };
  try {
    for (let i = 0; i < n; i++) {
      relays.push(await startFakeRelay({
        chain: options.chains?.[i] ?? buildCertChain(),
        nickname: `onion${i}`,
        peers: relays,
        documents,
        hooks: world.hooks(options.hooks?.(i)),
      }));
    }
  } catch (err) {
    for (const r of relays) await r.close();
    throw err;
  }
  const authorities = makeAuthorities(3);
  entries = relays.map((r) => syntheticRelayOf(r));
  const validAfter = new Date(Math.floor((Date.now() - 10 * 60_000) / 1000) * 1000);
  consensus = makeConsensus({ authorities, relays: entries, validAfter });
  // makeConsensus: fresh 1 h after valid-after, so a voting interval of 3600 s (and TestingTorNetwork 1).
  world.period = { at: validAfter, params: { testingNetwork: true, votingIntervalSec: 3600 } };
  certs = authorities.map((a) => a.certificate).join('');
  const torrc = dirAuthorityTorrc(authorities.map((authority, i) => ({ authority, orPort: relays[i]!.port, rsa: relays[i]!.identity.rsa })), true);
  return {
    relays,
    world,
    network: Network.fromTorrc(torrc),
    consensus,
    async close() {
      await world.close();
      for (const r of relays) await r.close();
    },
  };
}
