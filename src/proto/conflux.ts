/**
 * proto/conflux — conflux (prop 329, "traffic splitting"): the RELAY_CONFLUX_LINK (19) /
 * LINKED (20) / LINKED_ACK (21) / SWITCH (22) bodies, which relay commands a set
 * multiplexes, and one set's sequence-number machine: the link handshake state of each
 * leg, per-leg last_seq_sent / last_seq_recv, the set's last_seq_delivered, a bounded
 * out-of-order queue, SWITCH on both sides.
 *
 * Layer: protocol core. No I/O, no clock, no randomness (the nonce is passed in).
 * Not here: building the legs (same exit, otherwise disjoint), sending cells, circuit
 * SENDMEs and congestion control (those stay per leg and count a DATA cell on the leg it
 * arrived on, before reordering), choosing when to switch legs (we may send everything
 * on one leg; `switchTo` only computes the SWITCH a move would need).
 *
 * Sources [TOR 0.4.9]: trunnel/conflux.trunnel; conflux.c (`conflux_should_multiplex`,
 * `conflux_process_cell`, `conflux_dequeue_cell`, `conflux_process_switch_command`,
 * `conflux_decide_circ_for_send` — relative seq = prev leg's last_seq_sent − new leg's);
 * proposal 329 §2-3.
 *
 * Misbehaviour, as tor: a multiplexed cell whose absolute sequence number is at or below
 * last_seq_delivered closes the set (ProtocolError); a full out-of-order queue closes it
 * (LimitError; tor: conflux_params_get_max_oooq, END_CIRC_REASON_RESOURCELIMIT). tor
 * accepts any SWITCH increment (its minimum-increment check is commented out); so do we,
 * but a leg's sequence number past 2^53 is a ProtocolError here (tor's are u64).
 */
import { BadArgumentError, LimitError, ProtocolError } from '../errors.js';
import { Reader, Writer, bytesEqual } from '../codec/bytes.js';
import type { RelayMessage } from '../codec/relaymsg.js';

/** tor's or.h: RELAY_COMMAND_CONFLUX_LINK 19 … RELAY_COMMAND_CONFLUX_SWITCH 22. */
export const RELAY_COMMAND_CONFLUX_LINK = 19;
export const RELAY_COMMAND_CONFLUX_LINKED = 20;
export const RELAY_COMMAND_CONFLUX_LINKED_ACK = 21;
export const RELAY_COMMAND_CONFLUX_SWITCH = 22;

/** conflux.trunnel: the only LINK / LINKED version. */
export const CONFLUX_LINK_VERSION = 1;
export const CONFLUX_NONCE_LEN = 32;

/** conflux.trunnel CONFLUX_UX_*: the desired user experience a LINK asks for. */
export const ConfluxUx = {
  NO_OPINION: 0,
  MIN_LATENCY: 1,
  LOW_MEM_LATENCY: 2,
  HIGH_THROUGHPUT: 3,
  LOW_MEM_THROUGHPUT: 4,
} as const;
export type ConfluxUx = (typeof ConfluxUx)[keyof typeof ConfluxUx];
const UX_MAX = 4;

/** Relay commands a set sends and delivers in one sequence (conflux_should_multiplex: XOFF and XON too, for their order against BEGIN/END). */
const MULTIPLEXED = new Set([1 /* BEGIN */, 2 /* DATA */, 3 /* END */, 4 /* CONNECTED */, 11 /* RESOLVE */, 12 /* RESOLVED */, 43 /* XOFF */, 44 /* XON */]);

/** Does this relay command carry a conflux sequence number (conflux_should_multiplex)? */
export function confluxShouldMultiplex(command: number): boolean {
  return MULTIPLEXED.has(command);
}

function checkSeq(v: number, what: string): void {
  if (!Number.isSafeInteger(v) || v < 0) throw new BadArgumentError(`${what}: expected an integer 0..2^53-1, got ${v}`);
}

/** trn_cell_conflux_link + trn_cell_conflux_link_payload_v1; LINKED has the same layout. */
abstract class LinkBody {
  constructor(
    readonly nonce: Uint8Array,
    readonly lastSeqnoSent: number,
    readonly lastSeqnoRecv: number,
    readonly desiredUx: ConfluxUx,
  ) {
    if (nonce.length !== CONFLUX_NONCE_LEN) throw new BadArgumentError(`conflux nonce: expected ${CONFLUX_NONCE_LEN} bytes, got ${nonce.length}`);
    checkSeq(lastSeqnoSent, 'last_seqno_sent');
    checkSeq(lastSeqnoRecv, 'last_seqno_recv');
    if (!Number.isInteger(desiredUx) || desiredUx < 0 || desiredUx > UX_MAX) throw new BadArgumentError(`desired_ux: expected 0..${UX_MAX}, got ${desiredUx}`);
  }

  encode(): Uint8Array {
    const w = new Writer(1 + CONFLUX_NONCE_LEN + 17).u8(CONFLUX_LINK_VERSION).bytes(this.nonce);
    for (const v of [this.lastSeqnoSent, this.lastSeqnoRecv]) w.u32(Math.floor(v / 2 ** 32)).u32(v % 2 ** 32);
    return w.u8(this.desiredUx).finish();
  }

  /** Trunnel's grammar: version IN [1], nonce[32], u64, u64, desired_ux IN [0..4]; trailing bytes ignored. */
  protected static fields(body: Uint8Array, what: string): [Uint8Array, number, number, ConfluxUx] {
    const r = new Reader(body, what);
    const version = r.u8('version');
    if (version !== CONFLUX_LINK_VERSION) r.fail(`unknown version ${version} (expected ${CONFLUX_LINK_VERSION})`, 0);
    const nonce = r.bytes(CONFLUX_NONCE_LEN, 'nonce').slice();
    const seqs: number[] = [];
    for (const field of ['last_seqno_sent', 'last_seqno_recv']) {
      const at = r.pos;
      const v = r.u64(field);
      if (v > BigInt(Number.MAX_SAFE_INTEGER)) r.fail(`${field} ${v} is beyond 2^53 (orport's limit)`, at);
      seqs.push(Number(v));
    }
    const at = r.pos;
    const ux = r.u8('desired_ux');
    if (ux > UX_MAX) r.fail(`desired_ux ${ux} is not one of 0..${UX_MAX}`, at);
    return [nonce, seqs[0]!, seqs[1]!, ux as ConfluxUx];
  }
}

/** RELAY_CONFLUX_LINK: the client asks the exit to add this circuit to the set named by nonce. */
export class ConfluxLinkMsg extends LinkBody implements RelayMessage {
  readonly command = RELAY_COMMAND_CONFLUX_LINK;
  static decode(body: Uint8Array): ConfluxLinkMsg {
    return new ConfluxLinkMsg(...LinkBody.fields(body, 'RELAY_CONFLUX_LINK body'));
  }
}

/** RELAY_CONFLUX_LINKED: the exit's answer, echoing the nonce. */
export class ConfluxLinkedMsg extends LinkBody implements RelayMessage {
  readonly command = RELAY_COMMAND_CONFLUX_LINKED;
  static decode(body: Uint8Array): ConfluxLinkedMsg {
    return new ConfluxLinkedMsg(...LinkBody.fields(body, 'RELAY_CONFLUX_LINKED body'));
  }
}

const EMPTY_BODY = new Uint8Array(0);

/** RELAY_CONFLUX_LINKED_ACK: empty (trunnel: `u8 payload[]`, anything accepted). */
export class ConfluxLinkedAckMsg implements RelayMessage {
  readonly command = RELAY_COMMAND_CONFLUX_LINKED_ACK;
  encode(): Uint8Array {
    return EMPTY_BODY;
  }
  static decode(_body: Uint8Array): ConfluxLinkedAckMsg {
    return new ConfluxLinkedAckMsg();
  }
}

/** RELAY_CONFLUX_SWITCH: `seqnum u32`, the sender's relative sequence number jump on this leg. */
export class ConfluxSwitchMsg implements RelayMessage {
  readonly command = RELAY_COMMAND_CONFLUX_SWITCH;
  constructor(readonly seqnum: number) {
    if (!Number.isInteger(seqnum) || seqnum < 0 || seqnum > 0xffffffff) throw new BadArgumentError(`SWITCH seqnum: expected a u32, got ${seqnum}`);
  }
  encode(): Uint8Array {
    return new Writer(4).u32(this.seqnum).finish();
  }
  static decode(body: Uint8Array): ConfluxSwitchMsg {
    return new ConfluxSwitchMsg(new Reader(body, 'RELAY_CONFLUX_SWITCH body').u32('seqnum'));
  }
}

/** Link handshake state of one leg (client side): LINK sent → LINKED came (we then send LINKED_ACK). */
export type LegState = 'new' | 'linkSent' | 'linked' | 'closed';

interface Leg {
  state: LegState;
  lastSeqSent: number;
  lastSeqRecv: number;
}

/**
 * tor's conflux_params_get_max_oooq counts bytes of conflux_cell_t and defaults to
 * INT32_MAX; we count cells. A leg that runs ahead of another fills the queue by up to its
 * congestion window (legitimately: measured here, 2,138 cells ahead on loopback with the
 * CPU shared); proto/confluxlegs holds circuit SENDMEs while many wait, so only an exit
 * ignoring its window comes near this.
 */
export const DEFAULT_MAX_OOO_CELLS = 16_384;

/**
 * One conflux set's sequence numbers (client side). Cells are opaque (`T`); the caller
 * passes each multiplexed cell that arrived on a leg to `receive`, and delivers what it
 * returns, in order.
 */
export class ConfluxSet<T> {
  private readonly legs: Leg[];
  private lastSeqDelivered = 0;
  private readonly queue = new Map<number, T>();
  private current = 0;

  constructor(
    readonly nonce: Uint8Array,
    legCount: number,
    readonly maxQueued = DEFAULT_MAX_OOO_CELLS,
    readonly desiredUx: ConfluxUx = ConfluxUx.HIGH_THROUGHPUT,
  ) {
    if (nonce.length !== CONFLUX_NONCE_LEN) throw new BadArgumentError(`conflux nonce: expected ${CONFLUX_NONCE_LEN} bytes, got ${nonce.length}`);
    if (!Number.isInteger(legCount) || legCount < 1) throw new BadArgumentError(`conflux legs: expected an integer ≥ 1, got ${legCount}`);
    this.legs = Array.from({ length: legCount }, () => ({ state: 'new' as LegState, lastSeqSent: 0, lastSeqRecv: 0 }));
  }

  get delivered(): number {
    return this.lastSeqDelivered;
  }
  get queued(): number {
    return this.queue.size;
  }
  get sendLeg(): number {
    return this.current;
  }
  state(leg: number): LegState {
    return this.leg(leg).state;
  }
  seqs(leg: number): { lastSeqSent: number; lastSeqRecv: number } {
    const l = this.leg(leg);
    return { lastSeqSent: l.lastSeqSent, lastSeqRecv: l.lastSeqRecv };
  }
  get linked(): boolean {
    return this.legs.every((l) => l.state === 'linked');
  }

  /** The LINK to send on a new leg (conflux_cell_send_link: the leg's current seqs). */
  link(leg: number): ConfluxLinkMsg {
    const l = this.leg(leg);
    if (l.state !== 'new') throw new ProtocolError(`conflux leg ${leg}: LINK already sent (state ${l.state})`);
    l.state = 'linkSent';
    return new ConfluxLinkMsg(this.nonce, l.lastSeqSent, l.lastSeqRecv, this.desiredUx);
  }

  /** A LINKED came on a leg: it must answer our LINK with our nonce. Returns the LINKED_ACK to send. */
  onLinked(leg: number, msg: ConfluxLinkedMsg): ConfluxLinkedAckMsg {
    const l = this.leg(leg);
    if (l.state !== 'linkSent') throw new ProtocolError(`conflux leg ${leg}: expected no LINKED in state ${l.state}, got one`);
    if (!bytesEqual(msg.nonce, this.nonce)) throw new ProtocolError(`conflux leg ${leg}: LINKED nonce does not match the LINK's`);
    l.state = 'linked';
    return new ConfluxLinkedAckMsg();
  }

  /** The leg closed: the set cannot deliver in order any more (tor closes the set's streams). */
  close(leg: number): void {
    this.leg(leg).state = 'closed';
    this.queue.clear();
  }

  /**
   * A multiplexed cell came on `leg` (conflux_process_cell + conflux_dequeue_cell):
   * returns the cells now deliverable, in sequence order (empty if it was queued).
   */
  receive(leg: number, cell: T): T[] {
    const l = this.linkedLeg(leg, 'multiplexed cell');
    const seq = ++l.lastSeqRecv;
    if (seq <= this.lastSeqDelivered) {
      throw new ProtocolError(`conflux leg ${leg}: cell with sequence number ${seq}, expected above ${this.lastSeqDelivered} (already delivered)`);
    }
    if (seq !== this.lastSeqDelivered + 1) {
      if (this.queue.has(seq)) throw new ProtocolError(`conflux leg ${leg}: sequence number ${seq} already queued from another leg`);
      if (this.queue.size >= this.maxQueued) {
        throw new LimitError(`conflux leg ${leg}: out-of-order queue full (${this.queue.size} cells waiting for ${this.lastSeqDelivered + 1}, got ${seq})`, this.maxQueued);
      }
      this.queue.set(seq, cell);
      return [];
    }
    this.lastSeqDelivered = seq;
    const out = [cell];
    for (let next = this.queue.get(seq + 1); next !== undefined; next = this.queue.get(this.lastSeqDelivered + 1)) {
      this.queue.delete(++this.lastSeqDelivered);
      out.push(next);
    }
    return out;
  }

  /** A SWITCH came on `leg` (conflux_process_switch_command): not counted itself; jumps the leg's seq. */
  onSwitch(leg: number, msg: ConfluxSwitchMsg): void {
    const l = this.linkedLeg(leg, 'SWITCH');
    const next = l.lastSeqRecv + msg.seqnum;
    if (!Number.isSafeInteger(next)) throw new ProtocolError(`conflux leg ${leg}: SWITCH by ${msg.seqnum} takes the sequence number past 2^53`);
    l.lastSeqRecv = next;
  }

  /** We send a multiplexed cell: on the current send leg; returns that leg. */
  noteSent(): number {
    const l = this.linkedLeg(this.current, 'send');
    l.lastSeqSent++;
    return this.current;
  }

  /**
   * Move our sending to `leg` (conflux_decide_circ_for_send): the SWITCH to send on it
   * first, or null when nothing was sent since (tor sends none then either).
   */
  switchTo(leg: number): ConfluxSwitchMsg | null {
    const to = this.linkedLeg(leg, 'switch');
    const from = this.legs[this.current]!;
    this.current = leg;
    const rel = from.lastSeqSent - to.lastSeqSent;
    if (rel <= 0) return null;
    to.lastSeqSent += rel;
    return new ConfluxSwitchMsg(rel);
  }

  private leg(leg: number): Leg {
    const l = this.legs[leg];
    if (l === undefined) throw new BadArgumentError(`conflux leg ${leg}: the set has legs 0..${this.legs.length - 1}`);
    return l;
  }

  private linkedLeg(leg: number, what: string): Leg {
    const l = this.leg(leg);
    if (l.state !== 'linked') throw new ProtocolError(`conflux leg ${leg}: ${what} on a leg that is ${l.state}, expected linked`);
    return l;
  }
}
