/**
 * proto/circuit — one circuit's protocol state machine: the first hop by CREATE_FAST or
 * CREATE2, more hops by EXTEND2 (tor-spec 5.1.2) and fewer by TRUNCATE, layered relay
 * crypto per hop, relay message dispatch to streams, SENDME flow control (circuit and
 * stream level, v1 authenticated) or, on a hop whose handshake negotiated it, congestion
 * control (prop 324: Vegas pacing, SENDMEs every sendme_inc cells, XON/XOFF; proto/hopcc),
 * stream open/data/end, DESTROY. A hop whose handshake negotiated CGO (prop 359, with
 * congestion control) runs CGO relay crypto (crypto/cgo) and the V1 message format
 * (codec/relayv1), with 16-byte SENDME tags; the others tor1 and V0. The handshakes' maths
 * is crypto/handshake's: this machine frames their messages and adds the hop they make.
 * An onion service's virtual hop (rend-spec-v3 4.2.1: keys from hs-ntor, SHA3/AES-256
 * relay crypto, no handshake cells) is added with `addVirtualHop`; the onion-service
 * messages 32–40 are accepted from the last hop only (tor's rendcommon.c) and handed up
 * undecoded (`CircuitEvents.circuitMessage`; onion/cells decodes them). A circuit made a
 * conflux leg (`joinConflux`, prop 329) hands its last hop's conflux and multiplexed
 * messages to its set (proto/confluxlegs), after its own window accounting, and takes
 * the set's ordered messages back (`deliverFromSet`).
 *
 * Layer: protocol core. No I/O; congestion control's clock is injected (`nowUsec`, default
 * performance.now), nothing else reads time: cells go out through `CircuitOutput.sendCell`
 * (already framed for the channel), and everything that happens is reported through
 * `CircuitEvents` / `StreamEvents` callbacks. Randomness (CREATE_FAST's X, padding) is
 * injectable. Waiting, timeouts and promises live in the client layer.
 */
import { randomBytes } from 'node:crypto';
import {
  BadArgumentError,
  CircuitDestroyedError,
  DecodeError,
  InternalError,
  LimitError,
  OrportError,
  ProtocolError,
  StreamClosedError,
} from '../errors.js';
import {
  Create2Cell,
  Created2Cell,
  CreateFastCell,
  CreatedFastCell,
  DestroyCell,
  FIXED_PAYLOAD_LEN,
  RELAY_DATA_MAX,
  RELAY_HEADER_LEN,
} from '../codec/cell.js';
import { writeCellHeader, type CellFrame } from '../codec/framing.js';
import { writeRelayHeader } from '../codec/relaycell.js';
import { CloseReason, EndReason, LinkProtocol, RelayCommand, type LinkSpecifier } from '../codec/datatype.js';
import { CircuitCrypto, DecryptedCells, Tor1Layer, randomPadding, sendmeTag, type Recognized, type Tor1Keys, type Tor1Variant } from '../crypto/relaycrypto.js';
import { CgoLayer, CGO_TAG_LEN } from '../crypto/cgo.js';
import { readV1, v1DataMax, writeV1 } from '../codec/relayv1.js';
import { fastClientFinish, fastClientStart, type FastClientState } from '../crypto/handshake/fast.js';
import { allocPooled } from '../codec/bytes.js';
import { HopCongestion, type StreamFlow } from './hopcc.js';
import { DEFAULT_CONGESTION_PARAMS, type CongestionParams } from './ccparams.js';
import { RELAY_COMMAND_XOFF, RELAY_COMMAND_XON, XoffMsg, XonMsg } from './xonxoff.js';
import { RELAY_COMMAND_CONFLUX_LINK, RELAY_COMMAND_CONFLUX_SWITCH, confluxShouldMultiplex } from './conflux.js';
import { CircuitPackageWindow, CIRCUIT_WINDOW, DeliverWindow, PackageWindow, STREAM_WINDOW } from './flowctl.js';
import { ConnectedMsg, EndMsg, Extend2Msg, Extended2Msg, ResolveMsg, ResolvedMsg, SendmeMsg, TruncatedMsg, streamIdRule, type RelayMessage } from '../codec/relaymsg.js';

/** Cell commands (tor-spec 3). */
const CMD = { RELAY: 3, DESTROY: 4, CREATED_FAST: 6, RELAY_EARLY: 9, CREATED2: 11 } as const;

/**
 * A circuit handshake in progress (crypto/handshake: ntor, ntor v3): its CREATE2 handshake
 * type and onion skin, and how to finish it with the relay's reply (CREATED2 / EXTENDED2
 * HDATA). `finish` throws a HandshakeError when the reply doesn't authenticate.
 */
export interface PendingHandshake {
  readonly type: number;
  readonly name: string;
  readonly message: Uint8Array;
  finish(reply: Uint8Array): Tor1Keys;
  /**
   * After `finish`: what was negotiated beyond the keys (ntor v3: congestion control's
   * sendme_inc; CGO's 160 bytes of key material when the hop runs CGO, prop 359).
   */
  negotiated?(): { readonly sendmeInc: number | undefined; readonly cgoKeys?: Uint8Array | undefined };
}
/**
 * Congestion control: circuit SENDMEs are held while a stream's consumer has more than
 * this unread (2 × tor's XOFF limit, cc_xoff_client 500 × 488 B), so the exit's cwnd bounds
 * what it sends; an exit going past this many cells without SENDMEs is closed.
 */
const CC_HOLD_BYTES = 2 * 500 * 488;
const CC_MAX_HELD_CELLS = 10_000;

/** A short DATA cell leaves 4 zero bytes and 16 random bytes of padding (relay.c connection_edge_get_inbuf_bytes_to_package). */
const SHORT_CELL_PADDING = 20;

/** tor-spec 5.6: clients send at most this many RELAY_EARLY cells per circuit. */
export const MAX_RELAY_EARLY = 8;
/** The most hops we build: relays close a circuit after 8 RELAY_EARLY cells (tor-spec 5.6), and each hop after the first costs one. */
export const MAX_HOPS = 8;

export interface CircuitOutput {
  /** Sends one framed cell on the channel. */
  sendCell(cell: Uint8Array): void;
}

export interface CircuitEvents {
  /** The create handshake finished; the circuit can carry streams. */
  opened(): void;
  /** The circuit is gone (relay DESTROY, a protocol violation, or our close). Called once. */
  destroyed(error: OrportError): void;
  /** Streams were opened (+n) or ended (-n): lets the channel count open streams cheaply. */
  streamsChanged?(delta: number): void;
  /** An EXTEND2 completed: the circuit now has `hops` hops. */
  extended?(hops: number): void;
  /** An EXTEND2 failed (TRUNCATED from the last hop, or a reply that didn't authenticate). */
  extendFailed?(error: OrportError): void;
  /** Hop `hop` (0-based) sent TRUNCATED: the hops after it are gone. */
  truncated?(hop: number, reason: string, reasonInt: number): void;
  /**
   * An onion-service message (commands 32–40, stream id 0) from the last hop, `hop`; the
   * body is a copy the receiver keeps. Without this handler such messages are dropped.
   */
  circuitMessage?(hop: number, command: number, body: Uint8Array): void;
}

/** What a conflux leg hands its set (proto/confluxlegs); see `CircuitMachine.joinConflux`. */
export interface ConfluxLegHooks {
  /** A conflux message (LINK 19 … SWITCH 22) from the last hop; the body is a view of this cell. */
  control(command: number, body: Uint8Array): void;
  /** A multiplexed message (proto/conflux `confluxShouldMultiplex`) from the last hop, its DATA already counted on this leg. */
  multiplexed(command: number, streamId: number, body: Uint8Array): void;
  /** A stream message (XON, XOFF, …) from the last hop for a stream this leg does not hold. */
  foreign(command: number, streamId: number, body: Uint8Array): void;
  /** Whether a consumer anywhere in the set is far behind (circuit SENDMEs are then held on every leg). */
  holding(): boolean;
  /** A consumer at this leg's last hop drained: the other legs may send the SENDMEs they held. */
  drained(): void;
  /** This leg is gone (after its streams ended). */
  closed(error: OrportError): void;
}

/** Onion-service relay commands (rend-spec-v3 0.5): circuit-level, from the last hop only. */
const HS_COMMANDS_FIRST = 32;
const HS_COMMANDS_LAST = 40;

export interface StreamEvents {
  /** CONNECTED arrived. */
  connected(msg: ConnectedMsg): void;
  /**
   * DATA arrived. Return false when the consumer's buffer is full: stream SENDMEs are then
   * held back (so the relay stops sending) until `CircuitMachine.resumeStream`.
   */
  data(data: Uint8Array): boolean;
  /** The stream ended: `error` is null for END with reason DONE, else why it ended. Called once. */
  ended(error: OrportError | null, end?: EndMsg): void;
  /** The stream's package window has room again after a SENDME (or an XON). */
  writable?(): void;
  /**
   * Bytes delivered since the consumer last asked for more (`streamDrained`): how far it is
   * behind, for congestion control's XOFF and held SENDMEs. Counted from its last request,
   * not from what is still buffered: a reader may ask before it takes what is buffered
   * (Node's Readable#read does), and a hold must end when it asks.
   */
  buffered?(): number;
}

/** What a RESOLVE (tor-spec 6.4) reports: the answers, or the error that ended it. Called once. */
export interface ResolveEvents {
  resolved(msg: ResolvedMsg | null, error: OrportError | null): void;
}

/** tor's quota for a stream we ended (connection_half_edge_*): what may still arrive and be dropped quietly. */
interface HalfClosed {
  data: number;
  sendmes: number;
  connected: number;
}

interface Hop {
  /** Names the hop in errors (a nickname, a fingerprint, an address). */
  name: string | undefined;
  deliver: DeliverWindow;
  package: CircuitPackageWindow;
  /** DATA cells sent to this hop, and which one of the current 100 must be short (tor's randomness rule). */
  dataSent: number;
  shortAt: number;
  /** Congestion control, when the handshake negotiated it (prop 324): it replaces the windows. */
  cc: HopCongestion | undefined;
  /** An onion service's virtual hop (rend-spec-v3 4.2.1): no relay to extend from or truncate to. */
  virtual: boolean;
  /** CGO relay crypto and the V1 message format (prop 359), when the handshake negotiated it. */
  cgo: boolean;
}

/** An open stream, as `openStream` returns it; stream calls act only on this very stream. */
export interface StreamHandle {
  readonly id: number;
}

interface Stream extends StreamHandle {
  readonly id: number;
  readonly hop: number;
  readonly events: StreamEvents;
  connected: boolean;
  paused: boolean;
  deliver: DeliverWindow;
  package: PackageWindow;
  /** XON/XOFF on a congestion-controlled hop (no stream windows there). */
  flow: StreamFlow | undefined;
  /** An XOFF of ours is outstanding. */
  xoffSent?: boolean;
}

export type CircuitState = 'new' | 'creating' | 'open' | 'destroyed';

export interface CircuitOptions {
  /** Random bytes source (tests inject a deterministic one). */
  randomBytes?: (n: number) => Uint8Array;
  /** Fills padding of outbound RELAY cells (tor-spec 6.1: four zeros, then random). */
  randomFill?: (buf: Uint8Array, offset: number, size: number) => void;
  /** Consensus `sendme_accept_min_version` (0 unless told). */
  sendmeAcceptMinVersion?: number;
  /** Congestion-control parameters (the consensus'), for hops that negotiate it; default tor's. */
  congestion?: CongestionParams;
  /** A monotonic clock in microseconds, for congestion control's RTTs (default performance.now). */
  nowUsec?: () => number;
}

export class CircuitMachine {
  state: CircuitState = 'new';
  private readonly crypto = new CircuitCrypto();
  /** handleRelayCells' result arrays, reused from run to run. */
  private decrypted: DecryptedCells | undefined;
  private readonly hops: Hop[] = [];
  private readonly streams = new Map<number, Stream>();
  /** Ids of streams we ended, with what may still come for them (tor's half-closed edges). */
  private readonly halfClosed = new Map<number, HalfClosed>();
  private readonly resolves = new Map<number, { hop: number; events: ResolveEvents }>();
  /** connection_edge.c get_unique_stream_id_by_circ: a random start, then +1 per stream. */
  private nextId: number | undefined;
  private createFast: FastClientState | undefined;
  /** The CREATE2 or EXTEND2 handshake awaiting its reply. */
  private pending: PendingHandshake | undefined;
  /** The name of the hop `pending` will add. */
  private pendingName: string | undefined;
  private truncating: number | undefined;
  private relayEarlyLeft = MAX_RELAY_EARLY;
  private readonly random: (n: number) => Uint8Array;
  private readonly randomFill: (buf: Uint8Array, offset: number, size: number) => void;
  private readonly sendmeAcceptMinVersion: number;
  private readonly congestion: CongestionParams;
  private readonly nowUsec: () => number;
  /** Why the circuit closed, once it has: later calls fail with it. */
  private closeError: OrportError | undefined;
  /** The conflux set this circuit is a leg of (`joinConflux`). */
  private conflux: ConfluxLegHooks | undefined;
  /** Cells received and sent (for stats and tests). */
  readonly counters = { cellsIn: 0, cellsOut: 0, dataIn: 0, dataOut: 0, sendmesOut: 0, sendmesIn: 0, dropped: 0, beyondHalfClosed: 0, sendmesHeld: 0, xoffsOut: 0, xonsOut: 0, xoffsIn: 0, xonsIn: 0 };

  constructor(
    readonly circId: number,
    readonly linkProtocol: LinkProtocol,
    private readonly out: CircuitOutput,
    private readonly events: CircuitEvents,
    options: CircuitOptions = {},
  ) {
    this.random = options.randomBytes ?? ((n) => new Uint8Array(randomBytes(n)));
    this.randomFill = options.randomFill ?? randomPadding;
    this.sendmeAcceptMinVersion = options.sendmeAcceptMinVersion ?? 0;
    this.congestion = options.congestion ?? DEFAULT_CONGESTION_PARAMS;
    // tor treats 0 as "unset": start above it.
    this.nowUsec = options.nowUsec ?? (() => Math.floor(performance.now() * 1000) + 1);
  }

  get streamCount(): number {
    return this.streams.size;
  }

  hasStream(streamId: number): boolean {
    return this.streams.has(streamId);
  }

  // -------------------------------------------------------------------------------
  // Creation

  /** Hops the circuit has (0 until created). */
  get hopCount(): number {
    return this.hops.length;
  }

  /** "hop #3 (name)" for the 0-based hop `hop` (the one being added, too). */
  hopLabel(hop: number): string {
    const name = hop < this.hops.length ? this.hops[hop]!.name : hop === this.hops.length ? this.pendingName : undefined;
    return `hop #${hop + 1}${name ? ` (${name})` : ''}`;
  }

  /** Every hop's label, for faults no single hop can be blamed for. */
  private allHops(): string {
    return this.hops.map((_, i) => this.hopLabel(i)).join(', ');
  }

  /** Whether an EXTEND2 awaits its EXTENDED2. */
  get extending(): boolean {
    return this.pending !== undefined && this.state === 'open';
  }

  /** tor-spec 5.1: sends CREATE2 with `handshake`'s onion skin (ntor, ntor v3); `name` names the hop in errors. */
  startCreate2(handshake: PendingHandshake, name?: string): void {
    if (this.state !== 'new') throw new InternalError(`CREATE2 on a circuit in state ${this.state}`);
    this.pending = handshake;
    this.pendingName = name;
    this.state = 'creating';
    this.send(new Create2Cell(this.circId, handshake.type, handshake.message).pack(this.linkProtocol));
  }

  private handleCreated2(frame: CellFrame): void {
    const pending = this.pending;
    if (this.state !== 'creating' || !pending) throw new ProtocolError(`unexpected CREATED2 on circuit ${this.circId} (state ${this.state})`);
    let created: Created2Cell;
    try {
      created = Created2Cell.decodePayload(frame.payload, this.circId);
    } catch (err) {
      if (err instanceof DecodeError) throw new ProtocolError(`${this.hopLabel(0)} of circuit ${this.circId} sent a malformed CREATED2: ${err.message}`, { cause: err });
      throw err;
    }
    const name = this.pendingName;
    this.pending = undefined;
    this.pendingName = undefined;
    const keys = pending.finish(created.handshakeData);
    const negotiated = pending.negotiated?.();
    this.addHop(keys, name, negotiated?.sendmeInc, 'tor1', negotiated?.cgoKeys);
    this.state = 'open';
    this.events.opened();
  }

  /**
   * tor-spec 5.1.2: asks the last hop to extend the circuit to the relay `linkSpecifiers`
   * name, with `handshake` for it (sent as RELAY_EARLY); `name` names the new hop in
   * errors. The result arrives through `extended` or `extendFailed`. A circuit of
   * MAX_HOPS hops is refused (LimitError) before anything is sent.
   */
  extend(linkSpecifiers: readonly LinkSpecifier[], handshake: PendingHandshake, name?: string): void {
    this.assertOpen();
    const label = `hop #${this.hops.length + 1}${name ? ` (${name})` : ''}`;
    if (this.pending) throw new BadArgumentError(`circuit ${this.circId} is already extending (to ${this.hopLabel(this.hops.length)}); cannot extend to ${label}`);
    if (this.truncating !== undefined) throw new BadArgumentError(`circuit ${this.circId} is truncating; cannot extend to ${label}`);
    if (this.hops[this.hops.length - 1]!.virtual) throw new BadArgumentError(`circuit ${this.circId} ends at an onion service's virtual hop (${this.hopLabel(this.hops.length - 1)}); it cannot be extended`);
    if (this.hops.length >= MAX_HOPS) {
      throw new LimitError(`circuit ${this.circId} has ${this.hops.length} hops, the most we build (relays allow ${MAX_RELAY_EARLY} RELAY_EARLY cells, tor-spec 5.6): ${label} refused`, MAX_HOPS);
    }
    if (this.relayEarlyLeft === 0) throw new LimitError(`circuit ${this.circId} has used its ${MAX_RELAY_EARLY} RELAY_EARLY cells (tor-spec 5.6): EXTEND2 for ${label} cannot be sent`, MAX_RELAY_EARLY);
    const body = new Extend2Msg(linkSpecifiers, handshake.type, handshake.message).encode();
    this.sendRelay(this.hops.length - 1, 14, 0, body);
    this.pending = handshake;
    this.pendingName = name;
  }

  /** tor-spec 5.4: asks hop `hop` (0-based) to drop the hops after it; TRUNCATED arrives through `truncated`. */
  truncate(hop: number): void {
    this.assertOpen();
    if (!Number.isInteger(hop) || hop < 0 || hop >= this.hops.length - 1) throw new BadArgumentError(`truncate to hop #${hop + 1}: the circuit has ${this.hops.length} hops`);
    if (this.hops.some((h) => h.virtual)) throw new BadArgumentError(`circuit ${this.circId} ends at an onion service's virtual hop: it is not truncated`);
    if (this.pending) throw new BadArgumentError(`circuit ${this.circId} is extending (to ${this.hopLabel(this.hops.length)}); cannot truncate to ${this.hopLabel(hop)}`);
    this.truncating = hop;
    // tor reads a reason byte from TRUNCATE's body (relay.c) and refuses an empty body: send reason NONE.
    this.sendRelay(hop, 8, 0, Uint8Array.of(0));
  }

  private handleExtended2(hop: number, body: Uint8Array): void {
    const pending = this.pending;
    if (!pending || hop !== this.hops.length - 1) {
      throw new ProtocolError(`EXTENDED2 from ${this.hopLabel(hop)} of circuit ${this.circId}, which ${pending ? `is extending at ${this.hopLabel(this.hops.length - 1)}` : 'asked for no extension'}`);
    }
    const label = this.hopLabel(this.hops.length);
    const name = this.pendingName;
    this.pending = undefined;
    this.pendingName = undefined;
    let keys: Tor1Keys;
    try {
      let reply: Uint8Array;
      try {
        reply = Extended2Msg.decode(body).handshakeData;
      } catch (err) {
        if (err instanceof DecodeError) throw new ProtocolError(`${this.hopLabel(hop)} sent a malformed EXTENDED2 for ${label} on circuit ${this.circId}: ${err.message}`, { cause: err });
        throw err;
      }
      keys = pending.finish(reply);
    } catch (err) {
      if (err instanceof OrportError) this.events.extendFailed?.(err);
      throw err;
    }
    const negotiated = pending.negotiated?.();
    this.addHop(keys, name, negotiated?.sendmeInc, 'tor1', negotiated?.cgoKeys);
    this.events.extended?.(this.hops.length);
  }

  private handleTruncated(hop: number, body: Uint8Array): void {
    const msg = TruncatedMsg.decode(body);
    const dropped = this.hops.length - (hop + 1);
    const label = this.hopLabel(hop);
    const extendingTo = this.pending ? this.hopLabel(this.hops.length) : undefined;
    this.crypto.truncate(hop + 1);
    this.hops.length = hop + 1;
    this.truncating = undefined;
    const ended: Stream[] = [];
    for (const stream of this.streams.values()) if (stream.hop > hop) ended.push(stream);
    const error = new CircuitDestroyedError('relay', msg.reason, msg.reasonInt, `${label} truncated circuit ${this.circId} after it (${dropped} hop${dropped === 1 ? '' : 's'} gone)`);
    for (const stream of ended) {
      this.forget(stream);
      stream.events.ended(error);
    }
    const pending = this.pending;
    this.pending = undefined;
    this.pendingName = undefined;
    if (pending) this.events.extendFailed?.(new CircuitDestroyedError('relay', msg.reason, msg.reasonInt, `${label} could not extend circuit ${this.circId} to ${extendingTo} (TRUNCATED)`));
    this.events.truncated?.(hop, msg.reason, msg.reasonInt);
  }

  /** tor-spec 5.1.5: sends CREATE_FAST with a fresh X; `name` names the hop in errors. */
  startCreateFast(name?: string): void {
    if (this.state !== 'new') throw new InternalError(`CREATE_FAST on a circuit in state ${this.state}`);
    this.pendingName = name;
    const { state, message } = fastClientStart(this.random);
    this.createFast = state;
    this.state = 'creating';
    this.send(new CreateFastCell(this.circId, message).pack(this.linkProtocol));
  }

  private handleCreatedFast(frame: CellFrame): void {
    const pending = this.createFast;
    if (this.state !== 'creating' || !pending) throw new ProtocolError(`unexpected CREATED_FAST on circuit ${this.circId} (state ${this.state})`);
    const created = CreatedFastCell.decodePayload(frame.payload, this.circId);
    this.createFast = undefined;
    const name = this.pendingName;
    this.pendingName = undefined;
    this.addHop(fastClientFinish(pending, created.keyMaterial, created.derivativeKey, `circuit ${this.circId} ${this.hopLabel(0)}`), name);
    this.state = 'open';
    this.events.opened();
  }

  /**
   * Adds a hop whose keys have been agreed (by CREATE_FAST, ntor, or EXTEND2); `name` names
   * it in errors; `sendmeInc` when its handshake turned congestion control on (prop 324);
   * `cgoKeys` (forward 80 | backward 80) when it negotiated CGO, which needs congestion
   * control (tor refuses V1 cells without it: no stream SENDMEs to encode).
   */
  addHop(keys: Tor1Keys, name?: string, sendmeInc?: number, variant: Tor1Variant = 'tor1', cgoKeys?: Uint8Array): void {
    const label = `circuit ${this.circId} hop #${this.hops.length + 1}${name ? ` (${name})` : ''}`;
    if (cgoKeys && sendmeInc === undefined) throw new BadArgumentError(`${label}: CGO relay crypto needs congestion control on the hop (prop 359)`);
    const cc = sendmeInc === undefined ? undefined : new HopCongestion(this.congestion, sendmeInc, label);
    this.crypto.addHop(cgoKeys ? new CgoLayer(cgoKeys) : new Tor1Layer(keys, 'client', { variant }));
    this.hops.push({ name, deliver: cc?.deliver ?? new DeliverWindow(CIRCUIT_WINDOW, label), package: new CircuitPackageWindow(label), dataSent: 0, shortAt: 0, cc, virtual: variant === 'hsv3', cgo: !!cgoKeys });
  }

  /**
   * rend-spec-v3 4.2.1: appends an onion service's virtual hop with the keys hs-ntor gave
   * (onion/hsntor's `hsNtorClientFinish`: Df, Db, Kf, Kb of 32 bytes; SHA3-256 digests,
   * AES-256-CTR). No cell is sent. The hop gets the default circuit windows, as tor gives
   * it (no congestion control: we do not ask the service for it). Streams to it send BEGIN
   * with an empty address (`openStream` with an OnionBegin-like message).
   */
  addVirtualHop(keys: Tor1Keys, name?: string): void {
    this.assertOpen();
    if (this.pending) throw new BadArgumentError(`circuit ${this.circId} is extending (to ${this.hopLabel(this.hops.length)}); cannot add a virtual hop`);
    if (this.hops.length >= MAX_HOPS + 1) throw new LimitError(`circuit ${this.circId} has ${this.hops.length} hops; no virtual hop is added past ${MAX_HOPS}`, MAX_HOPS);
    if (this.hops[this.hops.length - 1]!.virtual) throw new BadArgumentError(`circuit ${this.circId} already ends at a virtual hop (${this.hopLabel(this.hops.length - 1)})`);
    this.addHop(keys, name, undefined, 'hsv3');
  }

  /** Whether hop `hop` (0-based) is an onion service's virtual hop. */
  isVirtualHop(hop: number): boolean {
    return this.hops[hop]?.virtual ?? false;
  }

  /** Which relay crypto hop `hop` runs (undefined: no such hop). */
  hopRelayCrypto(hop: number): 'tor1' | 'cgo' | undefined {
    const h = this.hops[hop];
    return h && (h.cgo ? 'cgo' : 'tor1');
  }

  /** What congestion control hop `hop` runs (undefined: fixed windows). */
  hopCongestion(hop: number): { readonly sendmeInc: number; readonly cwnd: number; readonly inflight: number; readonly inSlowStart: boolean } | undefined {
    const cc = this.hops[hop]?.cc;
    return cc && { sendmeInc: cc.sendmeInc, cwnd: cc.vegas.cwnd, inflight: cc.vegas.inflight, inSlowStart: cc.vegas.inSlowStart };
  }

  // -------------------------------------------------------------------------------
  // Inbound

  /**
   * Handles one cell addressed to this circuit. A protocol violation destroys the
   * circuit (DESTROY with reason PROTOCOL) and reports it through `destroyed`.
   */
  handleCell(frame: CellFrame): void {
    if (this.state === 'destroyed') {
      this.counters.dropped++;
      return;
    }
    this.counters.cellsIn++;
    try {
      switch (frame.command) {
        case CMD.RELAY:
          this.handleRelay(frame.payload);
          return;
        case CMD.CREATED_FAST:
          this.handleCreatedFast(frame);
          return;
        case CMD.CREATED2:
          this.handleCreated2(frame);
          return;
        case CMD.DESTROY: {
          const destroy = DestroyCell.decodePayload(frame.payload, this.circId);
          this.finish(new CircuitDestroyedError('relay', destroy.reason, destroy.reasonInt, this.destroyDetail()));
          return;
        }
        case CMD.RELAY_EARLY:
          throw new ProtocolError(`${this.originOf(frame.payload)} sent a RELAY_EARLY cell on circuit ${this.circId}; clients must close such circuits (tor-spec 5.6)`);
        default:
          throw new ProtocolError(`unexpected cell command ${frame.command} on circuit ${this.circId}`);
      }
    } catch (err) {
      this.cellFailed(err);
    }
  }

  /**
   * Handles `count` RELAY cells that came in a row (their payloads back to back in
   * `payloads`, 509 bytes each) as `count` handleCell calls would, each layer decrypting
   * its share in one go (CircuitCrypto.decryptCells). Returns how many cells it took: it
   * stops once the circuit is destroyed (or is not open to begin with: 0); the caller
   * hands the rest to handleCell, or drops them, as for single cells.
   */
  handleRelayCells(payloads: Uint8Array, count: number): number {
    if (this.state !== 'open') return 0;
    const cells = this.crypto.decryptCells(payloads, count, this.decrypted ?? new DecryptedCells());
    this.decrypted = undefined; // a callback may feed this circuit more cells meanwhile
    for (let i = 0; i < count; i++) {
      if ((this.state as CircuitState) === 'destroyed') return i;
      this.counters.cellsIn++;
      try {
        const hop = cells.hop[i]!;
        if (hop < 0 || hop >= this.hops.length) {
          const { hop: at, plain, digest } = this.recognize(cells.plain(i), hop < 0 ? cells.depth[i]! : this.hops.length);
          this.handleRelayMessage(at, plain, 0, digest);
        } else {
          this.handleRelayMessage(hop, cells.bytes[i]!, cells.offset[i]!, cells.digests[i]!);
        }
      } catch (err) {
        this.cellFailed(err);
      }
    }
    this.decrypted = cells;
    return count;
  }

  /** A cell's handling failed: a protocol violation destroys the circuit; anything else is a bug and goes on up. */
  private cellFailed(err: unknown): void {
    if (!(err instanceof OrportError)) throw err;
    // A cell from the relay that doesn't decode is the relay breaking the protocol.
    this.destroyFor(err instanceof DecodeError ? new ProtocolError(`circuit ${this.circId}: the relay sent a malformed cell: ${err.message}`, { cause: err }) : err);
  }

  /** What a DESTROY interrupted, naming the hops (it arrives from hop #1, maybe on behalf of a later one: tor-spec 5.4). */
  private destroyDetail(): string {
    if (this.state === 'creating') return `while creating ${this.hopLabel(0)} of circuit ${this.circId}`;
    const through = `DESTROY came through hop #1 of ${this.hops.length} (${this.allHops()})`;
    return this.pending ? `while extending circuit ${this.circId} to ${this.hopLabel(this.hops.length)}; ${through}` : `circuit ${this.circId}: ${through}`;
  }

  /**
   * Which hop a cell we refuse anyway came from, for the message: decrypting spends the
   * circuit's crypto state, which is fine only because the circuit is closed next.
   */
  private originOf(payload: Uint8Array): string {
    if (this.state !== 'open') return this.hopLabel(0);
    try {
      return this.hopLabel(this.crypto.decrypt(payload, CMD.RELAY_EARLY).hop);
    } catch {
      return `hop #1 of ${this.hops.length} (${this.allHops()}; recognized by none)`;
    }
  }

  private handleRelay(payload: Uint8Array): void {
    if (this.state !== 'open') throw new ProtocolError(`RELAY cell on circuit ${this.circId} before ${this.hopLabel(0)} was created`);
    const { hop, plain, digest } = this.recognize(payload, 0);
    this.handleRelayMessage(hop, plain, 0, digest);
  }

  /** Decrypts a payload from layer `depth` on (CircuitCrypto.continueCell), naming every hop when none recognizes it. */
  private recognize(payload: Uint8Array, depth: number): Recognized {
    try {
      return this.crypto.continueCell(payload, depth);
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      throw new ProtocolError(`circuit ${this.circId}: a RELAY cell was not recognized by any of its ${this.hops.length} hop(s) (${this.allHops()}): its 'recognized' field or digest does not match`, { code: 'E_BAD_CELL_AUTH', cause: err });
    }
  }

  /**
   * A relay message hop `hop` sent: the plaintext payload at `plain[at…]` (a cipher's fresh
   * output: views into it are ours to hand out), its digest (bytes, or base64 from a run).
   */
  private handleRelayMessage(hop: number, plain: Uint8Array, at: number, digest: Uint8Array | string): void {
    const hopState = this.hops[hop]!;
    let command: number;
    let streamId: number;
    let body: Uint8Array;
    if (hopState.cgo) {
      // V1 (codec/relayv1): a stream id only where the command takes one; an unknown command is undecodable.
      const v1 = readV1(plain, at);
      command = v1.command;
      streamId = v1.streamId;
      body = plain.subarray(v1.dataAt, v1.dataAt + v1.length);
    } else {
      command = plain[at]!;
      streamId = (plain[at + 3]! << 8) | plain[at + 4]!;
      const length = (plain[at + 9]! << 8) | plain[at + 10]!;
      if (length > RELAY_DATA_MAX) throw new ProtocolError(`RELAY cell from ${this.hopLabel(hop)} claims ${length} bytes of data; at most ${RELAY_DATA_MAX} fit`);
      body = plain.subarray(at + RELAY_HEADER_LEN, at + RELAY_HEADER_LEN + length);
    }
    const rule = streamIdRule(command);
    if ((rule === 'required' && streamId === 0) || (rule === 'disallowed' && streamId !== 0)) {
      throw new ProtocolError(`${RelayCommand.nameOf(command)} from ${this.hopLabel(hop)} ${streamId ? `has stream id ${streamId}, but it concerns the circuit` : 'needs a stream id, but has 0'}`);
    }
    const leg = this.conflux;
    if (leg && hop === this.hops.length - 1) {
      // A conflux leg (prop 329): the set orders multiplexed messages across legs and hands them to
      // the leg that holds the streams; circuit-level accounting stays on the leg a cell came by.
      if (command >= RELAY_COMMAND_CONFLUX_LINK && command <= RELAY_COMMAND_CONFLUX_SWITCH) return leg.control(command, body);
      if (confluxShouldMultiplex(command)) {
        if (command === 2) {
          this.counters.dataIn++;
          hopState.deliver.take();
          this.maybeSendCircuitSendme(hop, digest);
        }
        return leg.multiplexed(command, streamId, body);
      }
      if (streamId !== 0 && !this.streams.has(streamId)) return leg.foreign(command, streamId, body);
    }
    this.dispatch(hop, command, streamId, body, digest);
  }

  /**
   * A message from hop `hop`, decoded. `digest` is undefined for one a conflux set hands
   * over (`deliverFromSet`): its leg already counted it against its windows.
   */
  private dispatch(hop: number, command: number, streamId: number, body: Uint8Array, digest: Uint8Array | string | undefined): void {
    const hopState = this.hops[hop]!;
    switch (command) {
      case 2: // DATA
        if (digest !== undefined) {
          this.counters.dataIn++;
          hopState.deliver.take();
          this.maybeSendCircuitSendme(hop, digest);
        }
        this.deliverData(streamId, hop, body);
        return;
      case 5: // SENDME
        this.handleSendme(hop, streamId, body);
        return;
      case 4: {
        const stream = this.streamFor(streamId, hop, 'CONNECTED');
        if (!stream) return;
        if (stream.connected) throw new ProtocolError(`a second CONNECTED on stream ${streamId}`);
        stream.connected = true;
        stream.events.connected(ConnectedMsg.decode(body));
        return;
      }
      case 3: {
        const stream = this.streamFor(streamId, hop, 'END');
        if (!stream) return;
        const end = EndMsg.decode(body);
        this.forget(stream);
        // tor-spec 6.3: EXITPOLICY may name the address the exit refused (and its TTL).
        const refused = end.address?.value ? `the exit's policy rejects ${end.address.value} (TTL ${end.ttl})` : undefined;
        stream.events.ended(end.reasonInt === EndReason.toInt(EndReason.DONE) ? null : new StreamClosedError('relay', end.reason, end.reasonInt, refused), end);
        return;
      }
      case 12: // RESOLVED
        this.handleResolved(streamId, hop, body);
        return;
      case RELAY_COMMAND_XOFF:
      case RELAY_COMMAND_XON:
        this.handleFlowControl(command, streamId, hop, body);
        return;
      case 10: // DROP: a long-range dummy
        return;
      case 15: // EXTENDED2
        this.handleExtended2(hop, body);
        return;
      case 9: // TRUNCATED
        this.handleTruncated(hop, body);
        return;
      default:
        if (command >= HS_COMMANDS_FIRST && command <= HS_COMMANDS_LAST) {
          this.handleCircuitMessage(hop, command, body);
          return;
        }
        // tor-spec 6.1: a recognized cell with a command we don't understand is dropped.
        this.counters.dropped++;
        return;
    }
  }

  /**
   * An onion-service message: from the last hop only (tor's rendcommon.c
   * rend_process_relay_cell: from any other hop it is a protocol violation), handed up.
   */
  private handleCircuitMessage(hop: number, command: number, body: Uint8Array): void {
    const last = this.hops.length - 1;
    if (hop !== last) {
      throw new ProtocolError(`${RelayCommand.nameOf(command)} (${command}) from ${this.hopLabel(hop)} of circuit ${this.circId}, not its last hop (${this.hopLabel(last)}): onion-service messages come from the last hop only`);
    }
    if (!this.events.circuitMessage) {
      this.counters.dropped++;
      return;
    }
    this.events.circuitMessage(hop, command, body.slice());
  }

  /** Looks up a stream for an inbound message; cells for unknown (or closed) streams are dropped. */
  private streamFor(streamId: number, hop: number, what: string): Stream | undefined {
    const stream = this.streams.get(streamId);
    if (!stream) {
      this.dropForUnknown(streamId, what);
      return undefined;
    }
    if (stream.hop !== hop) throw new ProtocolError(`${what} for stream ${streamId} came from ${this.hopLabel(hop)}, but the stream is attached to ${this.hopLabel(stream.hop)}`);
    return stream;
  }

  /**
   * A cell for a stream that isn't open: dropped, as tor does. For one we ended, what tor's
   * half-closed edge allows is counted off (DIGEST-streams §1.6); END and RESOLVED forget it.
   */
  private dropForUnknown(streamId: number, what: string): void {
    this.counters.dropped++;
    const half = this.halfClosed.get(streamId);
    if (!half) return;
    if (what === 'END' || what === 'RESOLVED') this.halfClosed.delete(streamId);
    else if (what === 'DATA' && half.data > 0) half.data--;
    else if (what === 'SENDME' && half.sendmes > 0) half.sendmes--;
    else if (what === 'CONNECTED' && half.connected > 0) half.connected--;
    else this.counters.beyondHalfClosed++;
  }

  private deliverData(streamId: number, hop: number, body: Uint8Array): void {
    const stream = this.streamFor(streamId, hop, 'DATA');
    if (!stream) return; // tor-spec 6.2: DATA for unrecognized streams is dropped (it still counted for the circuit)
    if (!stream.connected) {
      // DIGEST-streams §1.4/§1.8: tor drops DATA on a stream not yet open (the circuit window counted it).
      this.counters.dropped++;
      return;
    }
    if (stream.flow) {
      // prop 324 §4: no stream window; XOFF when the consumer's buffer runs over (tor's policy).
      const signal = stream.flow.receiver.onData(this.nowUsec(), stream.events.buffered?.() ?? 0);
      stream.events.data(body);
      this.sendFlowSignal(stream, signal);
      return;
    }
    stream.deliver.take();
    const wantMore = stream.events.data(body);
    if (!wantMore) stream.paused = true;
    if (!stream.paused) this.sendStreamSendmes(stream);
  }

  /**
   * XOFF as tor's policy decides; XON only to end an XOFF, with rate 0 (unlimited), as Arti
   * does: an in-process consumer's drain rate is no guide for the exit, which would
   * rate-limit the stream to it (no advisory XONs either).
   */
  private sendFlowSignal(stream: Stream, signal: 'xon' | 'xoff' | null): void {
    if (!signal || this.state !== 'open') return;
    if (signal === 'xon' && !stream.xoffSent) return;
    stream.xoffSent = signal === 'xoff';
    const msg = signal === 'xoff' ? new XoffMsg() : new XonMsg(0);
    this.counters[signal === 'xoff' ? 'xoffsOut' : 'xonsOut']++;
    this.sendRelay(stream.hop, msg.command, stream.id, msg.encode());
  }

  /** XON / XOFF from the exit (prop 324 §4.1): ignored off congestion control, dropped for unknown streams. */
  private handleFlowControl(command: number, streamId: number, hop: number, body: Uint8Array): void {
    if (!this.hops[hop]!.cc) {
      this.counters.dropped++;
      return;
    }
    const stream = this.streamFor(streamId, hop, command === RELAY_COMMAND_XOFF ? 'XOFF' : 'XON');
    if (!stream?.flow) return;
    this.counters[command === RELAY_COMMAND_XOFF ? 'xoffsIn' : 'xonsIn']++;
    if (command === RELAY_COMMAND_XOFF) stream.flow.sender.onXoff();
    else {
      stream.flow.sender.onXon(body);
      stream.events.writable?.();
    }
  }

  /** The consumer of a stream on a congestion-controlled hop read `written` bytes; `bufferedAfter` remain (XON policy). */
  streamDrained(streamRef: number | StreamHandle, written: number, bufferedAfter: number): void {
    const stream = this.lookup(streamRef);
    if (!stream?.flow || this.state !== 'open') return;
    this.sendFlowSignal(stream, stream.flow.receiver.onDrain(this.nowUsec(), written, bufferedAfter));
    this.releaseSendmes(stream.hop);
  }

  /** tor-spec 7.3 / prop289: a circuit SENDME carrying the digest of the cell that triggered it. */
  private maybeSendCircuitSendme(hop: number, digest: Uint8Array | string): void {
    const h = this.hops[hop]!;
    if (!h.deliver.sendmeDue) return;
    h.deliver.sentSendme();
    const cc = h.cc;
    if (cc && (cc.owed.length > 0 || this.holdsSendmes(hop))) {
      // A consumer is far behind: the exit's cwnd fills and it stops (tor's exits keep packaging what they
      // read before an XOFF). One that sends on past its cwnd is not congestion-controlling: close.
      cc.owed.push(digest);
      this.counters.sendmesHeld++;
      if (cc.owed.length * cc.sendmeInc > CC_MAX_HELD_CELLS) {
        throw new ProtocolError(`${this.hopLabel(hop)} sent ${cc.owed.length * cc.sendmeInc} DATA cells without our circuit SENDMEs (a congestion window is at most ${CC_MAX_HELD_CELLS} here)`);
      }
      return;
    }
    this.sendCircuitSendme(hop, digest);
  }

  private sendCircuitSendme(hop: number, digest: Uint8Array | string): void {
    this.counters.sendmesOut++;
    this.sendRelay(hop, 5, 0, new SendmeMsg(1, typeof digest === 'string' ? sendmeTag(digest) : digest).encode());
  }

  /** Is a consumer on congestion-controlled hop `hop` so far behind that we hold its circuit SENDMEs? */
  private holding(hop: number): boolean {
    for (const s of this.streams.values()) if (s.hop === hop && s.flow && (s.events.buffered?.() ?? 0) > CC_HOLD_BYTES) return true;
    return false;
  }

  /** Whether hop `hop`'s circuit SENDMEs wait: a consumer here, or (last hop of a conflux leg) one of the set, is far behind. */
  private holdsSendmes(hop: number): boolean {
    return this.holding(hop) || (hop === this.hops.length - 1 && this.conflux?.holding() === true);
  }

  /** Sends the circuit SENDMEs held for hop `hop`, in order, unless they still wait. */
  private flushOwedSendmes(hop: number): void {
    const cc = this.hops[hop]?.cc;
    if (!cc || cc.owed.length === 0 || this.state !== 'open' || this.holdsSendmes(hop)) return;
    for (const digest of cc.owed.splice(0)) this.sendCircuitSendme(hop, digest);
  }

  /** A consumer on hop `hop` drained: its conflux set hears it, and the held SENDMEs go if nothing else waits. */
  private releaseSendmes(hop: number): void {
    if (this.conflux && hop === this.hops.length - 1) this.conflux.drained();
    this.flushOwedSendmes(hop);
  }

  // -------------------------------------------------------------------------------
  // Conflux (prop 329): this circuit as one leg of a set (proto/confluxlegs drives it)

  /**
   * Makes this circuit a conflux leg: from now on its last hop's conflux messages (19–22),
   * its multiplexed messages (after this leg's window and SENDME accounting) and stream
   * messages for streams it does not hold go to `hooks`; `hooks.closed` hears its end.
   */
  joinConflux(hooks: ConfluxLegHooks): void {
    this.assertOpen();
    if (this.conflux) throw new BadArgumentError(`circuit ${this.circId} is already a conflux leg`);
    if (!this.hops[this.hops.length - 1]!.cc) throw new BadArgumentError(`circuit ${this.circId}: a conflux leg needs congestion control with its last hop, ${this.hopLabel(this.hops.length - 1)} (tor: conflux_is_enabled)`);
    this.conflux = hooks;
  }

  /**
   * A message of this circuit's last hop that its conflux set delivers here (in sequence,
   * from whichever leg it came by): handled as if it came now, windows already counted.
   * A violation destroys this circuit, as one on its own cells would.
   */
  deliverFromSet(command: number, streamId: number, body: Uint8Array): void {
    if (this.state !== 'open') {
      this.counters.dropped++;
      return;
    }
    try {
      this.dispatch(this.hops.length - 1, command, streamId, body, undefined);
    } catch (err) {
      this.cellFailed(err);
    }
  }

  /** Whether a consumer of a stream at the last hop is so far behind that circuit SENDMEs are held (congestion control). */
  get consumerBehind(): boolean {
    return this.holding(this.hops.length - 1);
  }

  /** Sends the circuit SENDMEs held for the last hop, unless a consumer is still behind. */
  releaseHeldSendmes(): void {
    this.flushOwedSendmes(this.hops.length - 1);
  }

  /** tor-spec 7.4: stream SENDMEs while the window is ≤ 450 and the consumer keeps up. */
  private sendStreamSendmes(stream: Stream): void {
    while (stream.deliver.sendmeDue && this.state === 'open') {
      stream.deliver.sentSendme();
      this.counters.sendmesOut++;
      this.sendRelay(stream.hop, 5, stream.id, new Uint8Array(0));
    }
  }

  private handleSendme(hop: number, streamId: number, body: Uint8Array): void {
    this.counters.sendmesIn++;
    const cc = this.hops[hop]!.cc;
    if (streamId === 0) {
      const msg = SendmeMsg.decode(body);
      // sendme.c cell_v1_is_valid: the tag is as long as the hop's crypto makes them.
      const tagLen = this.hops[hop]!.cgo ? CGO_TAG_LEN : 20;
      if (msg.version === 1 && msg.digest!.length !== tagLen) {
        throw new ProtocolError(`a circuit SENDME from ${this.hopLabel(hop)} carries a ${msg.digest!.length}-byte tag; its ${this.hops[hop]!.cgo ? 'CGO' : 'tor1'} crypto makes ${tagLen}-byte ones`);
      }
      if (cc) cc.onSendme(msg.version, msg.digest, this.nowUsec());
      else this.hops[hop]!.package.handleCircuitSendme(msg.version, msg.digest, this.sendmeAcceptMinVersion);
      for (const stream of this.streams.values()) if (stream.hop === hop) stream.events.writable?.();
      return;
    }
    // DIGEST-streams §2.4: a stream SENDME on a congestion-controlled circuit closes it.
    if (cc) throw new ProtocolError(`a stream SENDME (stream ${streamId}) from ${this.hopLabel(hop)}, which runs congestion control (prop 324: no stream SENDMEs)`);
    const stream = this.streamFor(streamId, hop, 'SENDME');
    if (!stream) return;
    stream.package.handleSendme();
    stream.events.writable?.();
  }

  // -------------------------------------------------------------------------------
  // Streams

  /**
   * Opens a stream at `hop` (default: the last hop) by sending `begin` (BEGIN or
   * BEGIN_DIR). Events arrive through `events`.
   */
  openStream(streamId: number, begin: RelayMessage, events: StreamEvents, hop = this.hops.length - 1): StreamHandle {
    this.assertOpen();
    if (!Number.isInteger(streamId) || streamId < 1 || streamId > 0xffff) throw new BadArgumentError(`stream ids are 1-65535, not ${streamId}`);
    if (this.streams.has(streamId)) throw new BadArgumentError(`stream ${streamId} is already open on circuit ${this.circId}`);
    if (begin.command !== 1 && begin.command !== 13) throw new BadArgumentError(`streams open with BEGIN or BEGIN_DIR, not ${RelayCommand.nameOf(begin.command)}`);
    if (!Number.isInteger(hop) || hop < 0 || hop >= this.hops.length) throw new BadArgumentError(`no hop #${hop + 1} on circuit ${this.circId} (it has ${this.hops.length}: ${this.allHops()})`);
    const stream: Stream = {
      id: streamId,
      hop,
      events,
      connected: false,
      paused: false,
      deliver: new DeliverWindow(STREAM_WINDOW, `stream ${streamId}`),
      package: new PackageWindow(STREAM_WINDOW, `stream ${streamId}`),
      flow: this.hops[hop]!.cc?.streamFlow(),
    };
    this.streams.set(streamId, stream);
    this.events.streamsChanged?.(1);
    this.sendRelay(hop, begin.command, streamId, begin.encode());
    return stream;
  }

  /** A stream's flow-control state in words (what a stalled transfer's error reports). */
  describeStream(ref: number | StreamHandle): string {
    const stream = this.lookup(ref);
    if (!stream) return `no open stream ${typeof ref === 'number' ? ref : ref.id} on circuit ${this.circId}`;
    const cc = this.hops[stream.hop]!.cc;
    const flow = cc
      ? `congestion control: ${cc.owed.length} circuit SENDMEs held${this.holdsSendmes(stream.hop) ? ' (still holding)' : ''}, XOFF ${stream.xoffSent ? 'outstanding' : 'not outstanding'}`
      : `stream deliver window ${stream.deliver.window}${stream.paused ? ' (paused: reader behind)' : ''}, package window ${stream.package.window}`;
    return `stream ${stream.id} to ${this.hopLabel(stream.hop)} on circuit ${this.circId} (${this.state}): ${flow}; counters ${JSON.stringify(this.counters)}`;
  }

  /** The open stream a handle or id names; a handle of a stream that has ended names none. */
  private lookup(stream: number | StreamHandle): Stream | undefined {
    const found = this.streams.get(typeof stream === 'number' ? stream : stream.id);
    return typeof stream === 'number' || found === stream ? found : undefined;
  }

  private forget(stream: Stream): void {
    this.streams.delete(stream.id);
    this.events.streamsChanged?.(-1);
    if (stream.flow) this.releaseSendmes(stream.hop);
  }

  /**
   * A free stream id as tor picks it (connection_edge.c get_unique_stream_id_by_circ): from
   * a random start, the next one not open, not half-closed and not resolving; undefined if
   * none is left.
   */
  nextStreamId(): number | undefined {
    if (this.nextId === undefined) {
      const r = this.random(2);
      this.nextId = (r[0]! << 8) | r[1]!;
    }
    for (let tries = 0; tries < 0x10000; tries++) {
      const id = this.nextId;
      this.nextId = (this.nextId + 1) & 0xffff;
      if (id !== 0 && !this.streams.has(id) && !this.halfClosed.has(id) && !this.resolves.has(id)) return id;
    }
    return undefined;
  }

  /** Whether `streamId` is taken (open, half-closed or resolving). */
  idTaken(streamId: number): boolean {
    return this.streams.has(streamId) || this.halfClosed.has(streamId) || this.resolves.has(streamId);
  }

  /** tor-spec 6.4: asks the last hop (or `hop`) to resolve `hostname`; RESOLVED arrives through `events`. Returns the id used. */
  resolve(hostname: string, events: ResolveEvents, hop = this.hops.length - 1): number {
    this.assertOpen();
    const msg = new ResolveMsg(hostname);
    if (!Number.isInteger(hop) || hop < 0 || hop >= this.hops.length) throw new BadArgumentError(`no hop #${hop + 1} on circuit ${this.circId} (it has ${this.hops.length}: ${this.allHops()})`);
    const id = this.nextStreamId();
    if (id === undefined) throw new LimitError(`circuit ${this.circId} has no free stream id`, 0xffff);
    this.resolves.set(id, { hop, events });
    this.sendRelay(hop, 11, id, msg.encode());
    return id;
  }

  /** Gives up on a RESOLVE: its id stays reserved until RESOLVED comes (or the circuit ends). */
  cancelResolve(id: number, error: OrportError): void {
    const pending = this.resolves.get(id);
    if (!pending) return;
    this.resolves.delete(id);
    this.halfClosed.set(id, { data: 0, sendmes: 0, connected: 0 });
    pending.events.resolved(null, error);
  }

  private handleResolved(streamId: number, hop: number, body: Uint8Array): void {
    const pending = this.resolves.get(streamId);
    if (!pending) {
      if (this.streams.has(streamId)) throw new ProtocolError(`RESOLVED from ${this.hopLabel(hop)} on open stream ${streamId} (tor closes the circuit)`);
      this.dropForUnknown(streamId, 'RESOLVED');
      return;
    }
    if (pending.hop !== hop) throw new ProtocolError(`RESOLVED for ${streamId} came from ${this.hopLabel(hop)}, but it was asked of ${this.hopLabel(pending.hop)}`);
    this.resolves.delete(streamId);
    let msg: ResolvedMsg;
    try {
      msg = ResolvedMsg.decode(body);
    } catch (err) {
      // DIGEST-streams §1.7: a truncated answer makes the whole cell malformed (TORPROTOCOL).
      pending.events.resolved(null, new StreamClosedError('relay', EndReason.TORPROTOCOL, 13, `malformed RESOLVED from ${this.hopLabel(hop)}: ${(err as Error).message}`));
      return;
    }
    pending.events.resolved(msg, null);
  }

  /**
   * Sends stream data as DATA cells of at most 498 bytes, as far as the stream and
   * circuit package windows allow. Returns how many bytes were sent; the rest must wait
   * for `StreamEvents.writable`.
   */
  sendData(streamRef: number | StreamHandle, data: Uint8Array): number {
    this.assertOpen();
    const stream = this.lookup(streamRef);
    if (!stream) throw new BadArgumentError(`stream ${typeof streamRef === 'number' ? streamRef : streamRef.id} is not open on circuit ${this.circId}`);
    const streamId = stream.id;
    const hop = this.hops[stream.hop]!;
    const cc = hop.cc;
    const max = hop.cgo ? v1DataMax(2) : RELAY_DATA_MAX;
    let sent = 0;
    while (sent < data.length && (cc ? cc.packageWindow > 0 && stream.flow!.sender.canPackage : stream.package.canSend && hop.package.canSend)) {
      // DIGEST-streams §2.3: one cell in each 100, at a random place from 50 on, leaves ≥ 20 bytes of padding.
      const inWindow = hop.dataSent % CIRCUIT_WINDOW.increment;
      if (inWindow === 0) hop.shortAt = 50 + (this.random(1)[0]! % 50);
      hop.dataSent++;
      const piece = data.subarray(sent, sent + (inWindow === hop.shortAt ? max - SHORT_CELL_PADDING : max));
      if (cc) {
        cc.noteSent(this.sendRelay(stream.hop, 2, streamId, piece), this.nowUsec());
        stream.flow!.sender.noteSentData(piece.length);
      } else {
        const record = hop.package.recordNext;
        const digest = this.sendRelay(stream.hop, 2, streamId, piece);
        if (record) hop.package.remember(digest);
        hop.package.take();
        stream.package.take();
      }
      this.counters.dataOut++;
      sent += piece.length;
    }
    return sent;
  }

  /** The consumer caught up: send the stream SENDMEs it held back. */
  resumeStream(streamRef: number | StreamHandle): void {
    const stream = this.lookup(streamRef);
    if (!stream || !stream.paused) return;
    stream.paused = false;
    if (this.state === 'open') this.sendStreamSendmes(stream);
  }

  /** Closes a stream from our side with END (reason MISC, as tor-spec 6.3 asks of OPs). */
  endStream(streamRef: number | StreamHandle, error: OrportError | null = null): void {
    const stream = this.lookup(streamRef);
    if (!stream) return;
    this.forget(stream);
    this.halfClosed.set(stream.id, {
      data: stream.connected ? stream.deliver.window : 0,
      sendmes: Math.floor((STREAM_WINDOW.start - stream.package.window) / STREAM_WINDOW.increment),
      connected: stream.connected ? 0 : 1,
    });
    if (this.state === 'open') this.sendRelay(stream.hop, 3, stream.id, new EndMsg(EndReason.MISC).encode());
    stream.events.ended(error ?? new StreamClosedError('local', EndReason.MISC, 1));
  }

  // -------------------------------------------------------------------------------
  // Outbound relay cells

  /**
   * Builds, originates (digest) and encrypts a relay cell for `hop`, and sends it.
   * Returns the full forward digest after it. Padding: four zero bytes, then random
   * (tor-spec 6.1). EXTEND2 and early cells beyond hop #1 go as RELAY_EARLY (5.6).
   */
  sendRelay(hop: number, command: number, streamId: number, body: Uint8Array): Uint8Array {
    const v1 = this.hops[hop]?.cgo === true;
    if (body.length > (v1 ? v1DataMax(command) : RELAY_DATA_MAX)) throw new InternalError(`relay body of ${body.length} bytes`);
    // Refuse before touching the crypto state (digest, keystream), which must stay in step.
    if (command === 14 && this.relayEarlyLeft === 0) {
      throw new ProtocolError(`circuit ${this.circId} has used its ${MAX_RELAY_EARLY} RELAY_EARLY cells (tor-spec 5.6); EXTEND2 to ${this.hopLabel(this.hops.length)} cannot be sent`);
    }
    const circIdLen = this.linkProtocol.circIdSize.size;
    const cell = allocPooled(this.linkProtocol.fixedCellLength); // zeroed: the 4 bytes after the body stay 0
    const payload = cell.subarray(circIdLen + 1);
    let padStart: number;
    if (v1) padStart = writeV1(payload, command, streamId, body);
    else {
      writeRelayHeader(payload, command, 0, streamId, 0, body.length);
      payload.set(body, RELAY_HEADER_LEN);
      padStart = RELAY_HEADER_LEN + body.length + 4;
    }
    if (padStart < FIXED_PAYLOAD_LEN) this.randomFill(payload, padStart, FIXED_PAYLOAD_LEN - padStart);
    // RELAY or RELAY_EARLY is decided before encrypting: CGO's tweak includes the cell command.
    const early = this.relayEarlyLeft > 0 && (command === 14 || hop > 0);
    if (early) this.relayEarlyLeft--;
    const digest = this.crypto.encrypt(hop, payload, early ? CMD.RELAY_EARLY : CMD.RELAY);
    writeCellHeader(cell, this.circId, circIdLen, early ? CMD.RELAY_EARLY : CMD.RELAY);
    this.send(cell);
    return digest;
  }

  private send(cell: Uint8Array): void {
    this.counters.cellsOut++;
    this.out.sendCell(cell);
  }

  private assertOpen(): void {
    if (this.state === 'destroyed') throw this.closeError ?? new CircuitDestroyedError('local', CloseReason.FINISHED, 9, `circuit ${this.circId} is closed`);
    if (this.state !== 'open') throw new BadArgumentError(`circuit ${this.circId} is not open yet (state ${this.state})`);
  }

  // -------------------------------------------------------------------------------
  // Teardown

  /** Closes the circuit from our side: DESTROY (reason NONE, tor-spec 5.4), then `destroyed`. */
  destroy(reason: number | string = CloseReason.NONE, error?: OrportError): void {
    if (this.state === 'destroyed') return;
    const [name, value] = CloseReason.get(reason);
    if (this.state !== 'new') this.send(new DestroyCell(this.circId, value).pack(this.linkProtocol));
    this.finish(error ?? new CircuitDestroyedError('local', name, value));
  }

  /** DESTROY for a violation: RESOURCELIMIT when a bound ran over (tor's conflux.c for a full out-of-order queue), else PROTOCOL. */
  private destroyFor(error: OrportError): void {
    this.destroy(error instanceof LimitError ? CloseReason.RESOURCELIMIT : CloseReason.PROTOCOL, error);
  }

  /** The channel under this circuit closed: no DESTROY can be sent. */
  channelClosed(error: OrportError): void {
    if (this.state === 'destroyed') return;
    this.finish(error);
  }

  private finish(error: OrportError): void {
    this.state = 'destroyed';
    this.closeError = error;
    const pending = this.pending;
    this.pending = undefined;
    this.pendingName = undefined;
    if (pending && this.hops.length > 0) this.events.extendFailed?.(error);
    const resolves = [...this.resolves.values()];
    this.resolves.clear();
    for (const r of resolves) r.events.resolved(null, error);
    const streams = [...this.streams.values()];
    this.streams.clear();
    if (streams.length) this.events.streamsChanged?.(-streams.length);
    for (const stream of streams) stream.events.ended(error);
    this.events.destroyed(error);
    this.conflux?.closed(error);
  }
}
