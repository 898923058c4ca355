/**
 * proto/vegas — the sender side of prop 324 congestion control on one hop: TOR_VEGAS as
 * tor 0.4.9 runs it (cwnd, inflight, RTT and BDP estimates, slow start, steady state).
 *
 * Layer: protocol core. No I/O and no clock: every event takes the time as an argument,
 * in integer microseconds of a monotonic clock (fractions are truncated, like
 * `monotime_absolute_usec`). One `Vegas` per hop that negotiated CC (a client: its exit
 * hops); nothing is allocated per cell (the timestamp FIFO is a growable ring).
 * Not here: SENDME tags and their FIFO, the SENDME codec, negotiation, XON/XOFF, timers.
 *
 * Sources [TOR 0.4.9]: congestion_control_common.c (`congestion_control_note_cell_sent`,
 * `circuit_sent_cell_for_sendme`, `congestion_control_get_package_window`,
 * `congestion_control_update_circuit_rtt` / `_bdp`, `time_delta_stalled_or_jumped`,
 * `n_ewma_count`, `congestion_control_dispatch_cc_alg`,
 * `congestion_control_validate_sendme_increment`); congestion_control_vegas.c
 * (`congestion_control_vegas_process_sendme`, `rfc3742_ss_inc`, `cwnd_became_full`,
 * `cwnd_became_nonfull`, `cwnd_full_reset`); congestion_control_st.h (`CWND_UPDATE_RATE`,
 * `SENDME_PER_CWND`, the C field widths); congestion_control_common.h (`n_count_ewma`,
 * `percent_max_mix`).
 *
 * Integer maths: tor computes in uint64_t. Here every value is an integer Number; the one
 * product that can pass 2^52 (cwnd·min_rtt for the BDP) falls back to BigInt, the others
 * stay exact for RTTs below ~2^45 µs (a year). The u16 event counters wrap as in C.
 * One deliberate difference: where tor's u64 subtraction would wrap (a steady-state
 * decrease below 0, only reachable when cc_cwnd_inc exceeds cwnd or bdp + δ < cc_cwnd_inc),
 * tor would end at cwnd_max; we saturate at 0 (so cwnd_min applies). A clock that goes
 * backwards between a cell and its SENDME counts as a stall (tor's u64 would wrap).
 */
import { BadArgumentError, ProtocolError } from '../errors.js';
import type { CongestionParams } from './ccparams.js';

const INT32_MAX = 0x7fffffff;
/** time_delta_stalled_or_jumped: an RTT more than 5000× away from the EWMA is a clock jump. */
const DELTA_DISCREPANCY_RATIO_MAX = 5000;

/** floor(a·b/c) for non-negative integers, exact (BigInt only when a·b passes 2^52). */
function mulDiv(a: number, b: number, c: number): number {
  const p = a * b;
  if (p > 2 ** 52) return Number((BigInt(a) * BigInt(b)) / BigInt(c));
  let q = Math.floor(p / c);
  if (q * c > p) q--;
  else if ((q + 1) * c <= p) q++;
  return q;
}

/** n_count_ewma: EWMA = (2·curr + (N−1)·prev)/(N+1), or curr when there is no prev. */
export function nCountEwma(curr: number, prev: number, n: number): number {
  return prev === 0 ? curr : Math.floor((2 * curr + (n - 1) * prev) / (n + 1));
}

/** percent_max_mix: pct % of max(a, b) plus (100 − pct) % of min(a, b), each rounded down. */
export function percentMaxMix(a: number, b: number, pctMax: number): number {
  const max = a > b ? a : b;
  const min = a > b ? b : a;
  return Math.floor((pctMax * max) / 100) + Math.floor(((100 - pctMax) * min) / 100);
}

function usec(t: number): number {
  if (!(t >= 0) || !Number.isFinite(t)) throw new BadArgumentError(`a time in microseconds must be a finite number ≥ 0, not ${t}`);
  return Math.floor(t);
}

/**
 * Checks the sendme_inc an exit answered in its ntor v3 server message against ours
 * (tor `congestion_control_validate_sendme_increment`: 0, or more than ±1 away from our
 * `cc_sendme_inc`, fails the hop; prop 324 §10.5's "factor of 2" is not what 0.4.9 does).
 * Returns it, or throws ProtocolError (the caller closes the circuit).
 */
export function checkSendmeInc(sendmeInc: number, params: Pick<CongestionParams, 'sendmeInc'>): number {
  if (!Number.isInteger(sendmeInc) || sendmeInc < 1 || sendmeInc > 255) {
    throw new ProtocolError(`the exit negotiated sendme_inc ${sendmeInc}, not 1-255`);
  }
  if (sendmeInc > params.sendmeInc + 1 || sendmeInc < params.sendmeInc - 1) {
    throw new ProtocolError(`the exit negotiated sendme_inc ${sendmeInc}, more than 1 away from the consensus cc_sendme_inc ${params.sendmeInc}`);
  }
  return sendmeInc;
}

/**
 * Whether a circuit is blocked on its channel, with tor's hysteresis (relay.c: blocked
 * once its queue toward the channel holds `cellq_high` cells, unblocked when it is down
 * to `cellq_low`). The circuit machine keeps the flag and passes it to `processSendme`.
 */
export function channelBlocked(wasBlocked: boolean, queuedCells: number, params: Pick<CongestionParams, 'cellqHigh' | 'cellqLow'>): boolean {
  if (wasBlocked) return queuedCells > params.cellqLow;
  return queuedCells >= params.cellqHigh;
}

/** Counters of events tor only logs or exports on its MetricsPort. */
export interface VegasStats {
  /** RTT samples skipped: a zero RTT (stalled clock) or a jump (`num_clock_stalls`). */
  clockStalls: number;
  /** min_rtt raised because cwnd sat at cwnd_min (`num_rtt_reset`). */
  rttResets: number;
  /** SENDMEs that updated no estimate and so ran no algorithm. */
  skippedUpdates: number;
}

/** TOR_VEGAS state of one hop (tor `congestion_control_t`; field names in camelCase). */
export class Vegas {
  /** Congestion window, in cells. */
  cwnd: number;
  /** DATA cells sent to the hop and not yet acknowledged by a SENDME. */
  inflight = 0;
  inSlowStart = true;
  /** SENDMEs until the next steady-state update (u16 in tor). */
  nextCcEvent: number;
  /** SENDMEs until a whole cwnd has been acknowledged (u16 in tor). */
  nextCwndEvent = 0;
  /** Has the cwnd been (nearly) filled since the last reset? Only a full cwnd grows. */
  cwndFull = false;
  /** Was the channel blocked at the last SENDME? */
  blockedChan = false;
  ewmaRttUsec = 0;
  minRttUsec = 0;
  maxRttUsec = 0;
  /** Bandwidth-delay product estimate, cells: cwnd·min_rtt/ewma_rtt. */
  bdp = 0;
  /**
   * tor's `is_monotime_clock_broken`, set by a zero RTT and cleared by a sane one. tor
   * shares it among all circuits; here it belongs to the hop.
   */
  clockBroken = false;
  readonly stats: VegasStats = { clockStalls: 0, rttResets: 0, skippedUpdates: 0 };

  private ring = new Float64Array(16);
  private head = 0;
  private count = 0;

  /**
   * `sendmeInc` is the value the exit answered (checked with `checkSendmeInc`); the other
   * parameters come from the consensus snapshot. cwnd starts at cc_cwnd_init.
   */
  constructor(
    readonly params: CongestionParams,
    readonly sendmeInc: number = params.sendmeInc,
  ) {
    checkSendmeInc(sendmeInc, params);
    this.cwnd = params.cwndInit;
    this.nextCcEvent = this.cwndUpdateRate; // 1: in slow start
  }

  /** congestion_control_get_package_window: cells we may still send (cwnd − inflight, never below 0). */
  get packageWindow(): number {
    if (this.inflight > this.cwnd) return 0;
    const w = this.cwnd - this.inflight;
    return w > INT32_MAX ? INT32_MAX : w;
  }

  /** Timestamps waiting for their SENDME (one per SENDME the hop owes us). */
  get pendingSendmes(): number {
    return this.count;
  }

  /** CWND_UPDATE_RATE: SENDMEs between two steady-state updates (1 in slow start; 0 = every one). */
  get cwndUpdateRate(): number {
    if (this.inSlowStart) return 1;
    const step = this.params.cwndIncRate * this.sendmeInc;
    return Math.floor((this.cwnd + Math.floor(step / 2)) / step);
  }

  /** SENDME_PER_CWND: SENDMEs in a cwnd, rounded. */
  get sendmePerCwnd(): number {
    return Math.floor((this.cwnd + Math.floor(this.sendmeInc / 2)) / this.sendmeInc);
  }

  /**
   * A DATA cell to this hop is being packaged (call it before encrypting the next one).
   * Returns true when the hop will answer this cell with a SENDME: the caller remembers
   * the cell's tag (its SENDME tag FIFO), and we remember the time. These are cells
   * #sendme_inc, #2·sendme_inc, … (`circuit_sent_cell_for_sendme`, tested before inflight++;
   * tor takes the time when the cell is queued, not when it is written).
   */
  noteCellSent(nowUsec: number): boolean {
    const now = usec(nowUsec);
    const expectsSendme = this.inflight !== 0 && (this.inflight + 1) % this.sendmeInc === 0;
    this.inflight++;
    if (expectsSendme) this.push(now);
    return expectsSendme;
  }

  /**
   * A circuit SENDME from this hop passed the tag check (`congestion_control_dispatch_cc_alg`
   * → `congestion_control_vegas_process_sendme`). `blocked`: our queue toward the channel
   * is blocked (see `channelBlocked`); `queuedCells`: that queue's length (used only while
   * no RTT has ever been measured). A SENDME with no cell awaiting one is a ProtocolError,
   * thrown before any state changes (tor closes the circuit: `sendme_is_valid` finds no
   * digest to pop; the timestamp FIFO moves in step with the digests).
   */
  processSendme(nowUsec: number, blocked = false, queuedCells = 0): void {
    if (this.count === 0) {
      throw new ProtocolError(`circuit SENDME with no DATA cell awaiting one (${this.inflight} cells in flight, sendme_inc ${this.sendmeInc})`);
    }
    const now = usec(nowUsec);
    const p = this.params;
    if (this.nextCcEvent) this.nextCcEvent--;
    if (this.nextCwndEvent) this.nextCwndEvent--;

    if (!this.updateBdp(this.updateRtt(now), blocked, queuedCells)) {
      this.stats.skippedUpdates++;
      this.ackInflight();
      this.clampMax();
      return;
    }

    const queueUse = this.bdp > this.cwnd ? 0 : this.cwnd - this.bdp;

    // cwnd_became_full / cwnd_became_nonfull
    if (this.inflight + p.cwndFullGap * this.sendmeInc >= this.cwnd) this.cwndFull = true;
    else if (100 * this.inflight < p.cwndFullMinPct * this.cwnd) this.cwndFull = false;

    if (this.inSlowStart) {
      if (queueUse < p.gamma && !this.blockedChan) {
        if (this.cwndFull) {
          const inc = this.slowStartInc();
          this.cwnd += inc;
          // Growth below steady state's rate ends slow start (never with the defaults).
          if (inc * this.sendmePerCwnd <= p.cwndInc * p.cwndIncRate) this.inSlowStart = false;
        }
      } else {
        // Congestion signal (queue ≥ γ, or the channel blocked): cwnd to the γ threshold.
        this.cwnd = this.bdp + p.gamma;
        this.inSlowStart = false;
      }
      if (this.cwnd >= p.ssMax) {
        this.cwnd = p.ssMax;
        this.inSlowStart = false;
      }
    } else if (this.nextCcEvent === 0) {
      if (queueUse > p.delta) this.cwnd = Math.max(0, this.bdp + p.delta - p.cwndInc);
      else if (queueUse > p.beta || this.blockedChan) this.cwnd = Math.max(0, this.cwnd - p.cwndInc);
      else if (this.cwndFull && queueUse < p.alpha) this.cwnd += p.cwndInc;
      if (this.cwnd < p.cwndMin) this.cwnd = p.cwndMin;
    }

    if (this.nextCwndEvent === 0) this.nextCwndEvent = this.sendmePerCwnd % 0x10000;
    if (this.nextCcEvent === 0) this.nextCcEvent = this.cwndUpdateRate % 0x10000;
    // cwnd_full_reset
    if (p.cwndFullPerCwnd ? this.nextCwndEvent === this.sendmePerCwnd : this.nextCcEvent === this.cwndUpdateRate) this.cwndFull = false;

    this.ackInflight();
    this.clampMax();
  }

  /**
   * time_delta_stalled_or_jumped: is this RTT sample unusable? A zero delta is a stall
   * (and marks the clock broken); once out of slow start with an EWMA, a delta 5000×
   * above the previous one is a jump, and one 5000× below is suspicious only while the
   * clock is marked broken; any other sample marks the clock sane.
   */
  stalledOrJumped(oldDelta: number, newDelta: number): boolean {
    if (newDelta === 0) {
      this.clockBroken = true;
      return true;
    }
    if (this.inSlowStart || this.ewmaRttUsec === 0) return false;
    if (oldDelta > newDelta * DELTA_DISCREPANCY_RATIO_MAX) return this.clockBroken;
    if (newDelta > oldDelta * DELTA_DISCREPANCY_RATIO_MAX) return true;
    this.clockBroken = false;
    return false;
  }

  /** n_ewma_count: N of the RTT EWMA (cc_ewma_ss in slow start, then a share of the updates per cwnd, capped). */
  private get ewmaCount(): number {
    const p = this.params;
    let n: number;
    if (this.inSlowStart) n = p.ewmaSs;
    else {
      n = Math.floor((this.cwndUpdateRate * p.ewmaCwndPct) / 100);
      if (n > p.ewmaMax) n = p.ewmaMax;
    }
    return n < 2 ? 2 : n;
  }

  /** congestion_control_update_circuit_rtt: the RTT of this SENDME, or 0 if it is unusable. */
  private updateRtt(now: number): number {
    const sent = this.pop();
    const rtt = now > sent ? now - sent : 0;
    if (this.stalledOrJumped(this.ewmaRttUsec, rtt)) {
      this.stats.clockStalls++;
      return 0;
    }
    this.ewmaRttUsec = nCountEwma(rtt, this.ewmaRttUsec, this.ewmaCount);
    if (rtt > this.maxRttUsec) this.maxRttUsec = rtt;
    if (this.minRttUsec === 0) {
      this.minRttUsec = this.ewmaRttUsec;
    } else if (this.cwnd === this.params.cwndMin && !this.inSlowStart) {
      // Out of a wedge: cwnd at its floor because min_rtt was abnormally low.
      this.minRttUsec = percentMaxMix(this.ewmaRttUsec, this.minRttUsec, this.params.rttResetPct);
      this.stats.rttResets++;
    } else if (this.ewmaRttUsec < this.minRttUsec) {
      this.minRttUsec = this.ewmaRttUsec;
    }
    return rtt;
  }

  /** congestion_control_update_circuit_bdp: false when the algorithm must not run. */
  private updateBdp(rtt: number, blocked: boolean, queuedCells: number): boolean {
    if (this.ewmaRttUsec === 0) {
      // The clock never gave an RTT: the BDP is the cwnd (less our queue if blocked).
      let cwnd = this.cwnd;
      if (blocked) {
        cwnd = queuedCells >= cwnd ? this.params.cwndMin : Math.max(cwnd - queuedCells, this.params.cwndMin);
        this.blockedChan = true;
      } else {
        this.blockedChan = false;
      }
      this.bdp = cwnd;
      return blocked;
    }
    this.bdp = mulDiv(this.cwnd, this.minRttUsec, this.ewmaRttUsec);
    // A change of the blocked state is an immediate congestion event.
    if (blocked) {
      if (!this.blockedChan) {
        this.nextCcEvent = 0;
        this.blockedChan = true;
      }
    } else if (this.blockedChan) {
      this.blockedChan = false;
      this.nextCcEvent = 0;
    }
    return blocked || rtt !== 0;
  }

  /** rfc3742_ss_inc: RFC 3742 limited slow start. */
  private slowStartInc(): number {
    const p = this.params;
    if (this.cwnd <= p.sscap) return Math.floor((p.cwndIncPctSs * this.sendmeInc + 50) / 100);
    const inc = Math.floor((this.sendmeInc * p.sscap + this.cwnd) / (2 * this.cwnd));
    return inc > 1 ? inc : 1;
  }

  private ackInflight(): void {
    // A timestamp was popped, so inflight ≥ sendme_inc unless a caller rewrote it.
    this.inflight = this.inflight > this.sendmeInc ? this.inflight - this.sendmeInc : 0;
  }

  private clampMax(): void {
    if (this.cwnd > this.params.cwndMax) this.cwnd = this.params.cwndMax;
  }

  private push(t: number): void {
    if (this.count === this.ring.length) {
      const bigger = new Float64Array(this.ring.length * 2);
      for (let i = 0; i < this.count; i++) bigger[i] = this.ring[(this.head + i) % this.ring.length]!;
      this.ring = bigger;
      this.head = 0;
    }
    this.ring[(this.head + this.count) % this.ring.length] = t;
    this.count++;
  }

  private pop(): number {
    const t = this.ring[this.head]!;
    this.head = (this.head + 1) % this.ring.length;
    this.count--;
    return t;
  }

  /**
   * Queues a send timestamp directly, as tor's unit tests do (`enqueue_timestamp`); the
   * circuit machine uses `noteCellSent` instead.
   */
  pushTimestamp(nowUsec: number): void {
    this.push(usec(nowUsec));
  }
}
