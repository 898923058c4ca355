/**
 * testing/relayside — the relays' half of a circuit, for fake relays and tests: answers
 * CREATE_FAST and CREATE2 (ntor, tor-spec 5.1.4; ntor v3, prop 332), decrypts and checks
 * cells from the client, originates and encrypts cells to the client, and keeps tor's
 * SENDME v1 bookkeeping for what it sends.
 *
 * A circuit of several relays is a chain of RelaySideCircuits, one per hop (`attach`
 * adds the next, `truncateAfter` drops them): a cell from the client is decrypted by each
 * hop in turn until one recognizes it (tor-spec 5.5.2.2), and a cell a hop originates is
 * encrypted by that hop and then by each earlier one, as relays add their layer on the
 * way back (5.5.3.1), framed with the first hop's circuit id. A hop can run CGO instead
 * of tor1 (`acceptCgo`; prop 359: crypto/cgo's relay side, V1 messages, 16-byte tags),
 * and `answerCreate2` turns it on where the client's ntor v3 message asks for Relay=6
 * and the relay's answer turns congestion control on, as tor's relays do.
 *
 * Layer: protocol core (test support). No I/O; randomness is injectable. Misbehaviour is
 * the caller's to script: every method takes raw values, nothing here refuses to send a
 * bad cell. Which relay a hop is, and the wiring between them, is testing/fakerelay's.
 */
import { randomBytes } from 'node:crypto';
import { HandshakeError, ProtocolError } from '../errors.js';
import { Created2Cell, CreatedFastCell, RELAY_DATA_MAX, RELAY_HEADER_LEN } from '../codec/cell.js';
import { writeCellHeader } from '../codec/framing.js';
import { writeRelayHeader } from '../codec/relaycell.js';
import { KDF, LinkProtocol } from '../codec/datatype.js';
import { fastServer } from '../crypto/handshake/fast.js';
import { NTOR_HTYPE, ntorServer, type X25519KeyPair } from '../crypto/handshake/ntor.js';
import { NTOR_V3_HTYPE, decodeNtorV3Request, decodeNtorV3Response, encodeNtorV3Response, ntorV3Server } from '../crypto/handshake/ntorv3.js';
import { Tor1Layer, randomPadding, type Tor1Keys } from '../crypto/relaycrypto.js';
import { CgoLayer, CGO_KEY_MATERIAL_LEN } from '../crypto/cgo.js';
import { readV1, writeV1 } from '../codec/relayv1.js';

/** A relay message as the relay sees it after decryption. */
export interface RelayMessageIn {
  command: number;
  streamId: number;
  body: Uint8Array;
  /** The full running digest after this cell, or its CGO tag (what a v1 SENDME for it must carry). */
  digest: Uint8Array;
  /** RELAY (3) or RELAY_EARLY (9). */
  cellCommand: number;
  /** 0-based: which hop of the chain recognized it. */
  hop: number;
}

/** What a relay answers CREATE2 with: its identities and ntor onion keys. */
export interface RelayOnionKeys {
  /** SHA-1 of the RSA identity key (20 bytes): ntor's NODEID. */
  readonly rsaId: Uint8Array;
  /** The Ed25519 identity (32 bytes): ntor v3's NODEID. */
  readonly ed25519Id: Uint8Array;
  readonly onionKeys: readonly X25519KeyPair[];
}

/** Faults and choices for a CREATE2 answer. */
export interface ServerHandshakeOptions {
  /** ntor v3: the relay's message SM, or how to make it from the client's CM (default `00`, no extensions). */
  serverMessage?: Uint8Array | ((clientMessage: Uint8Array) => Uint8Array);
  /** Flip a bit of AUTH (the client must refuse the reply). */
  tamperAuth?: boolean;
  /** Send Y = 0…0, a low-order X25519 point (tor-spec 5.1.4: the client must refuse it). */
  zeroY?: boolean;
  /** Accept the client's CGO request but keep tor1 (a fault: the client runs CGO, this hop does not). */
  ignoreCgo?: boolean;
}

export interface ServerHandshakeResult {
  /** CREATED2 / EXTENDED2 HDATA. */
  reply: Uint8Array;
  keys: KDF;
  /** ntor v3: the client's decrypted message CM. */
  clientMessage?: Uint8Array;
  /** ntor v3 with CGO negotiated (the client asked for Relay=6, the answer has congestion control): forward 80 | backward 80. */
  cgoKeys?: Uint8Array;
}

export type RandomSource = (n: number) => Uint8Array;

/**
 * One hop's relay crypto as the relay side uses it: tor1 (crypto/relaycrypto's Tor1Layer,
 * side 'relay'), or another variant put in place with `acceptLayer` (the onion service's
 * virtual hop, testing/fakeonion: SHA3-256 digests, AES-256-CTR).
 */
export interface RelaySideLayer {
  /** Digest of a payload we originate (written into it); returns the full running digest. */
  originate(payload: Uint8Array): Uint8Array;
  encrypt(payload: Uint8Array): void;
  decrypt(payload: Uint8Array): Uint8Array;
  /** The full running digest if the decrypted payload is ours (state advanced), else undefined. */
  recognize(payload: Uint8Array): Uint8Array | undefined;
}
const defaultRandom: RandomSource = (n) => new Uint8Array(randomBytes(n));

/**
 * The relay's side of a CREATE2 handshake (HTYPE 2 ntor, 3 ntor v3). Throws a
 * HandshakeError for another type or an onion skin that doesn't check out (another
 * relay's NODEID, an unknown KEYID, a low-order X, a bad MAC).
 */
export function serverHandshake(
  handshakeType: number,
  handshakeData: Uint8Array,
  relay: RelayOnionKeys,
  random: RandomSource,
  where: string,
  options: ServerHandshakeOptions = {},
): ServerHandshakeResult {
  let result: ServerHandshakeResult;
  if (handshakeType === NTOR_HTYPE) {
    result = ntorServer({ rsaId: relay.rsaId, onionKeys: relay.onionKeys }, handshakeData, random, where);
  } else if (handshakeType === NTOR_V3_HTYPE) {
    const sm = options.serverMessage ?? encodeNtorV3Response();
    const respond = typeof sm === 'function' ? sm : () => sm;
    let answer: Uint8Array | undefined;
    const v3 = ntorV3Server({ ed25519Id: relay.ed25519Id, onionKeys: relay.onionKeys }, handshakeData, (cm) => (answer = respond(cm)), random, where);
    // onion_crypto.c: Relay=6 asked for, and congestion control on in the answer ⇒ CGO (success is implicit).
    const cgo =
      !options.ignoreCgo &&
      decodeNtorV3Request(v3.clientMessage).subprotocols?.some((c) => c.protocol === 2 && c.version === 6) === true &&
      answer !== undefined &&
      decodeNtorV3Response(answer).sendmeInc !== undefined;
    result = { reply: v3.reply, keys: v3.keys, clientMessage: v3.clientMessage, ...(cgo ? { cgoKeys: v3.keyMaterial(CGO_KEY_MATERIAL_LEN) } : {}) };
  } else {
    throw new HandshakeError(`${where}: CREATE2 handshake type ${handshakeType} is neither ntor (2) nor ntor v3 (3)`);
  }
  const reply = result.reply.slice();
  if (options.zeroY) reply.fill(0, 0, 32);
  if (options.tamperAuth) reply[32]! ^= 1; // AUTH follows Y in both handshakes
  return { reply, keys: result.keys, ...(result.clientMessage ? { clientMessage: result.clientMessage } : {}), ...(result.cgoKeys ? { cgoKeys: result.cgoKeys } : {}) };
}

export class RelaySideCircuit {
  private layer: RelaySideLayer | CgoLayer | undefined;
  /** Digests of DATA cells after which we expect the client's v1 SENDME (FIFO). */
  readonly expectedSendmeDigests: Uint8Array[] = [];
  /** The digest (tor1) or tag (CGO) of the last cell `send` made: what a SENDME for it carries. */
  lastDigest: Uint8Array | undefined;
  /** DATA cells sent / received (for flow-control scripting). */
  dataSent = 0;
  dataReceived = 0;
  /** The hop's keys (KDF-TOR, or ntor's), once created. */
  keys: KDF | undefined;
  /** The hops before and after this one in the chain. */
  prev: RelaySideCircuit | undefined;
  next: RelaySideCircuit | undefined;
  readonly random: RandomSource;

  constructor(
    readonly circId: number,
    readonly linkProtocol: LinkProtocol,
    options: { random?: RandomSource } = {},
  ) {
    this.random = options.random ?? defaultRandom;
  }

  /** 0 for the hop the client talks to, 1 for the next, … */
  get hop(): number {
    return this.prev ? this.prev.hop + 1 : 0;
  }

  /** The chain's first hop (whose circuit id frames every cell to the client). */
  get first(): RelaySideCircuit {
    return this.prev ? this.prev.first : this;
  }

  /** Whether the hop's keys are in place. */
  get isCreated(): boolean {
    return this.layer !== undefined;
  }

  /** Installs the keys a handshake agreed on. */
  accept(keys: KDF): void {
    this.keys = keys;
    this.layer = new Tor1Layer(keys as Tor1Keys, 'relay');
  }

  /** Installs another hop crypto (no KDF keys: `keys` stays undefined). */
  acceptLayer(layer: RelaySideLayer): void {
    this.layer = layer;
  }

  /** Installs CGO for this hop (prop 359) from its key material (forward 80 | backward 80); `keys` stay tor1's, for faults. */
  acceptCgo(keyMaterial: Uint8Array, keys?: KDF): void {
    if (keys) this.keys = keys;
    this.layer = new CgoLayer(keyMaterial, 'relay');
  }

  /** Whether this hop runs CGO. */
  get cgo(): boolean {
    return this.layer instanceof CgoLayer;
  }

  /**
   * Answers a CREATE_FAST payload (X) with CREATED_FAST (Y, KH). `tamperKeyHash` flips a
   * bit of KH (a fault to script).
   */
  createdFast(x: Uint8Array, options: { y?: Uint8Array; tamperKeyHash?: boolean } = {}): Uint8Array {
    const { y, keys, keyHash } = fastServer(x, (n) => options.y ?? this.random(n));
    this.accept(keys);
    const kh = keyHash.slice();
    if (options.tamperKeyHash) kh[0]! ^= 1;
    return new CreatedFastCell(this.circId, kh, y).pack(this.linkProtocol);
  }

  /** Runs the CREATE2 handshake for this hop and installs its keys; returns the reply HDATA. */
  answerCreate2(handshakeType: number, handshakeData: Uint8Array, relay: RelayOnionKeys, where: string, options: ServerHandshakeOptions = {}): ServerHandshakeResult {
    const result = serverHandshake(handshakeType, handshakeData, relay, this.random, where, options);
    if (result.cgoKeys) this.acceptCgo(result.cgoKeys, result.keys);
    else this.accept(result.keys);
    return result;
  }

  /**
   * A CREATED2 cell with `hdata` (tor-spec 5.1); `claimedLength` makes HLEN lie (a
   * garbled cell). For the first hop only: later hops answer through EXTENDED2.
   */
  created2Cell(hdata: Uint8Array, claimedLength?: number): Uint8Array {
    const cell = new Created2Cell(this.circId, hdata).pack(this.linkProtocol);
    if (claimedLength !== undefined) {
      const at = this.linkProtocol.circIdSize.size + 1;
      cell[at] = claimedLength >> 8;
      cell[at + 1] = claimedLength;
    }
    return cell;
  }

  /** tor-spec 5.1.2: puts `next` (its keys in place) after this hop: cells this hop doesn't recognize go on to it. */
  attach(next: RelaySideCircuit): void {
    next.prev = this;
    this.next = next;
  }

  /** tor-spec 5.4: drops the hops after this one. */
  truncateAfter(): void {
    if (this.next) this.next.prev = undefined;
    this.next = undefined;
  }

  /**
   * Decrypts a RELAY/RELAY_EARLY payload from the client at this hop, and passes it on to
   * the next hops until one recognizes it (tor-spec 5.5.2.2); throws if none does.
   */
  receive(payload: Uint8Array, cellCommand = 3): RelayMessageIn {
    const layer = this.requireLayer();
    if (layer instanceof CgoLayer) {
      const copy = new Uint8Array(payload);
      const tag = layer.receive(cellCommand, copy);
      if (!tag) {
        if (this.next) return this.next.receive(copy, cellCommand);
        throw new ProtocolError(`relay side: a cell from the client was not recognized at hop #${this.hop + 1}, the last (CGO: T is not N)`);
      }
      const m = readV1(copy);
      if (m.command === 2) this.dataReceived++;
      return { command: m.command, streamId: m.streamId, body: copy.slice(m.dataAt, m.dataAt + m.length), digest: tag, cellCommand, hop: this.hop };
    }
    const copy = layer.decrypt(payload);
    const digest = layer.recognize(copy);
    if (!digest) {
      if (this.next) return this.next.receive(copy, cellCommand);
      throw new ProtocolError(`relay side: a cell from the client was not recognized at hop #${this.hop + 1}, the last (bad digest)`);
    }
    const length = (copy[9]! << 8) | copy[10]!;
    const command = copy[0]!;
    if (command === 2) this.dataReceived++;
    return { command, streamId: (copy[3]! << 8) | copy[4]!, body: copy.slice(RELAY_HEADER_LEN, RELAY_HEADER_LEN + length), digest, cellCommand, hop: this.hop };
  }

  /**
   * Builds a RELAY cell this hop originates to the client: digest and encryption at this
   * hop, then each earlier hop's encryption (5.5.3.1). Options script faults: a wrong
   * digest, a non-zero 'recognized', a length that lies, RELAY_EARLY instead of RELAY.
   */
  send(
    command: number,
    streamId: number,
    body: Uint8Array,
    options: { corruptDigest?: boolean; recognized?: number; claimedLength?: number; early?: boolean; tor1?: boolean; flipBit?: number } = {},
  ): Uint8Array {
    let layer = this.requireLayer();
    // A CGO hop sending as tor1 (a fault): tor1 keys from the same handshake, V0 format.
    if (options.tor1 && layer instanceof CgoLayer) layer = this.tor1Fault ??= new Tor1Layer(this.keys as Tor1Keys, 'relay');
    const first = this.first;
    const circIdLen = first.linkProtocol.circIdSize.size;
    const cell = new Uint8Array(first.linkProtocol.fixedCellLength);
    const payload = cell.subarray(circIdLen + 1);
    const cellCommand = options.early ? 9 : 3;
    let digest: Uint8Array;
    if (layer instanceof CgoLayer) {
      const pad = writeV1(payload, command, streamId, body);
      if (pad < payload.length) randomPadding(payload, pad, payload.length - pad);
      if (options.claimedLength !== undefined) {
        payload[17] = options.claimedLength >> 8;
        payload[18] = options.claimedLength;
      }
      digest = layer.originate(cellCommand, payload);
    } else {
      if (body.length > RELAY_DATA_MAX) throw new ProtocolError(`relay side: body of ${body.length} bytes`);
      writeRelayHeader(payload, command, 0, streamId, 0, options.claimedLength ?? body.length);
      payload.set(body, RELAY_HEADER_LEN);
      digest = layer.originate(payload);
      if (options.recognized !== undefined) {
        payload[1] = options.recognized >> 8;
        payload[2] = options.recognized;
      }
      if (options.corruptDigest) payload[5]! ^= 0xff;
      layer.encrypt(payload);
    }
    if (options.flipBit !== undefined) payload[options.flipBit >> 3]! ^= 1 << (options.flipBit & 7);
    for (let hop = this.prev; hop; hop = hop.prev) {
      const l = hop.requireLayer();
      if (l instanceof CgoLayer) l.forward(cellCommand, payload);
      else l.encrypt(payload);
    }
    this.lastDigest = digest;
    if (command === 2) {
      // tor's sendme_record_cell_digest: the 100th, 200th, … DATA cell triggers a SENDME.
      this.dataSent++;
      if (this.dataSent % 100 === 0) this.expectedSendmeDigests.push(digest);
    }
    writeCellHeader(cell, first.circId, circIdLen, options.early ? 9 : 3);
    return cell;
  }

  private tor1Fault: Tor1Layer | undefined;

  private requireLayer(): RelaySideLayer | CgoLayer {
    if (!this.layer) throw new ProtocolError('relay side: the circuit was not created');
    return this.layer;
  }
}

/** Splits bytes into relay-cell-sized pieces (at most 498 bytes). */
export function relayPieces(bytes: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let at = 0; at < bytes.length; at += RELAY_DATA_MAX) out.push(bytes.subarray(at, at + RELAY_DATA_MAX));
  return out;
}
