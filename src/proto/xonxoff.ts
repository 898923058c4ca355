/**
 * proto/xonxoff — stream flow control on congestion-controlled circuits (prop 324 §4.1):
 * the RELAY_XOFF (43) / RELAY_XON (44) bodies, the receiver's policy (when we send XOFF
 * and XON for a stream we read from), and the sender's state (what an XOFF / XON from
 * the exit does to a stream we write to), as tor 0.4.9 does them.
 *
 * Layer: protocol core. No I/O, no clock: times are integer microseconds passed in (of a
 * monotonic clock; 0 means "unset" in tor's fields, so start the clock above 0). One
 * `FlowReceiver` and one `FlowSender` per stream; no allocation per cell. Not here:
 * sending the cells, the token bucket that enforces an XON's rate (the scheduler's job),
 * which hop a stream uses, circuits without CC (tor ignores XON/XOFF there).
 *
 * Sources [TOR 0.4.9]: trunnel/flow_control_cells.trunnel; congestion_control_flow.c
 * (`flow_control_decide_xoff`, `flow_control_decide_xon`, `compute_drain_rate`,
 * `stream_drain_rate_changed`, `circuit_send_stream_xon`, `circuit_process_stream_xoff`,
 * `circuit_process_stream_xon`, `flow_control_note_sent_data`); relay.c (XON/XOFF for an
 * unknown stream are dropped).
 *
 * Misbehaviour: C tor never closes a circuit over XON/XOFF; it only marks the cell as not
 * valid protocol data (for vanguards' dropped-cell accounting). Arti closes the circuit
 * (its `SidechannelMitigation`, with half of these limits). We follow C tor: `onXoff` /
 * `onXon` return false for such a cell and count it in `FlowSender.invalid`; a caller that
 * wants Arti's strictness can close on that.
 */
import { BadArgumentError } from '../errors.js';
import { Reader } from '../codec/bytes.js';
import type { RelayMessage } from '../codec/relaymsg.js';
import type { CongestionParams } from './ccparams.js';
import { RELAY_PAYLOAD_SIZE_MIN } from './ccparams.js';
import { nCountEwma } from './vegas.js';

/** tor's or.h: RELAY_COMMAND_XOFF 43, RELAY_COMMAND_XON 44 (DIGEST-streams §3.4 has them swapped). */
export const RELAY_COMMAND_XOFF = 43;
export const RELAY_COMMAND_XON = 44;

const INT32_MAX = 0x7fffffff;
const UINT32_MAX = 0xffffffff;
/** XOFF_GRACE_PERIOD_USEC: the app gets 5 ms to drain before an XOFF goes out. */
export const XOFF_GRACE_PERIOD_USEC = 5000;
/** MAX_EXPECTED_CELL_BURST: beyond 32 cells buffered, a DATA cell also runs the XON logic. */
const MAX_EXPECTED_CELL_BURST = 32;
/** XON_COUNT_SCALE_AT / XOFF_COUNT_SCALE_AT / TOTAL_XMIT_SCALE_AT: the dropmark counters halve here. */
const COUNT_SCALE_AT = 200;
const TOTAL_XMIT_SCALE_AT = 10 * 2 ** 20;

const XOFF_BYTES = new Uint8Array([0]);

/** RELAY_XOFF: `version u8` (0). */
export class XoffMsg implements RelayMessage {
  readonly command = RELAY_COMMAND_XOFF;

  encode(): Uint8Array {
    return XOFF_BYTES;
  }

  /** Strict trunnel grammar (`version IN [0]`, trailing bytes allowed). tor itself never parses an XOFF. */
  static decode(body: Uint8Array): XoffMsg {
    const r = new Reader(body, 'RELAY_XOFF body');
    const version = r.u8('version');
    if (version !== 0) r.fail(`unknown XOFF version ${version}`, 0);
    return new XoffMsg();
  }
}

/** RELAY_XON: `version u8` (0) `| kbps_ewma u32`: the advised rate in 1000 B/s, 0 = no advice. */
export class XonMsg implements RelayMessage {
  readonly command = RELAY_COMMAND_XON;

  constructor(readonly kbpsEwma: number) {
    if (!Number.isInteger(kbpsEwma) || kbpsEwma < 0 || kbpsEwma > UINT32_MAX) {
      throw new BadArgumentError(`an XON's kbps_ewma is a u32, not ${kbpsEwma}`);
    }
  }

  encode(): Uint8Array {
    const out = new Uint8Array(5);
    new DataView(out.buffer).setUint32(1, this.kbpsEwma);
    return out;
  }

  /** trunnel `xon_cell_parse`: 5 bytes at least, version 0; trailing bytes are ignored. */
  static decode(body: Uint8Array): XonMsg {
    const r = new Reader(body, 'RELAY_XON body');
    const version = r.u8('version');
    if (version !== 0) r.fail(`unknown XON version ${version}`, 0);
    return new XonMsg(r.u32('kbps_ewma'));
  }
}

/** The kbps_ewma of an XON body, or -1 when tor could not parse it (and would ignore the cell). */
export function parseXonRate(body: Uint8Array): number {
  if (body.length < 5 || body[0] !== 0) return -1;
  return ((body[1]! << 24) | (body[2]! << 16) | (body[3]! << 8) | body[4]!) >>> 0;
}

/** What the receiver must send now on the stream. */
export type FlowSignal = 'xoff' | 'xon' | null;

/**
 * Our side of a stream we read from (downloads): decides when to send XOFF and XON
 * (tor's `edge_connection_t` fields). Call `onData` for each DATA cell before its bytes
 * join the app's buffer, and `onDrain` after each write to the app. When either returns
 * 'xon', send `new XonMsg(receiver.xonRate)`; when 'xoff', send `new XoffMsg()`.
 */
export class FlowReceiver {
  /** An XOFF went out and no XON since. */
  xoffSent = false;
  xoffGraceStartUsec = 0;
  /** Start of the current drain measurement (0: none). */
  drainStartUsec = 0;
  /** Bytes written to the app since the measurement started (u32). */
  drainedBytes = 0;
  prevDrainedBytes = 0;
  /** EWMA of the app's drain rate, kB/s (1000 B/s). */
  ewmaDrainRate = 0;
  /** The rate in the last XON we sent (what `xonRate` returns). */
  ewmaRateLastSent = 0;
  readonly counters = { xoffSent: 0, xonSent: 0 };
  /** Bytes buffered for the app above which XOFF is due (tor: cc_xoff_client × 488 for clients). */
  readonly limitBytes: number;

  constructor(
    readonly params: Pick<CongestionParams, 'xoffClientBytes' | 'xonRateBytes' | 'xonChangePct' | 'xonEwmaCnt'>,
    limitBytes: number = params.xoffClientBytes,
  ) {
    this.limitBytes = limitBytes;
  }

  /** kbps_ewma for the XON just signalled. */
  get xonRate(): number {
    return this.ewmaRateLastSent;
  }

  /**
   * flow_control_decide_xoff, on a DATA cell for the stream; `bufferedBefore` is what the
   * app has not yet taken, without this cell's data (tor checks before `connection_buf_add`).
   */
  onData(nowUsec: number, bufferedBefore: number): FlowSignal {
    let signal: FlowSignal = null;
    if (bufferedBefore > this.limitBytes) {
      if (!this.xoffSent) {
        if (this.xoffGraceStartUsec === 0) {
          this.xoffGraceStartUsec = nowUsec;
        } else if (nowUsec > this.xoffGraceStartUsec + XOFF_GRACE_PERIOD_USEC) {
          this.sentXoff();
          signal = 'xoff';
          this.ewmaDrainRate = 0; // a rate that led to XOFF is wrong
          this.xoffGraceStartUsec = 0;
        }
      }
    } else {
      this.xoffGraceStartUsec = 0;
    }
    // Writes happen only when the app's socket unblocks: a large buffer also runs the XON logic.
    if (bufferedBefore > MAX_EXPECTED_CELL_BURST * RELAY_PAYLOAD_SIZE_MIN) {
      const xon = this.onDrain(nowUsec, 0, bufferedBefore);
      if (signal === null) signal = xon;
    }
    return signal;
  }

  /**
   * flow_control_decide_xon, after `written` bytes went to the app; `bufferedAfter` is
   * what it still has to take. 'xon' when an XOFF is outstanding and the buffer is empty,
   * or (no XOFF outstanding) when the drain rate moved more than cc_xon_change_pct from
   * the last rate sent (an advisory XON).
   */
  onDrain(nowUsec: number, written: number, bufferedAfter: number): FlowSignal {
    const xonRate = this.params.xonRateBytes;
    if (this.drainedBytes >= UINT32_MAX - written) {
      // Halve the count, and move the start halfway to now.
      this.drainedBytes = Math.floor(this.drainedBytes / 2);
      if (this.drainStartUsec) this.drainStartUsec = nowUsec - Math.floor((nowUsec - this.drainStartUsec) / 2);
    }
    this.drainedBytes = (this.drainedBytes + written) >>> 0;

    // (tor first checks is_monotime_clock_reliable(); the caller's clock is monotonic.)
    if (!this.drainStartUsec && bufferedAfter > 0) {
      this.drainStartUsec = nowUsec;
      this.drainedBytes = 0;
    }

    if (this.drainStartUsec && this.drainedBytes > xonRate) {
      // The first measurement uses itself as the previous one, so a rate exists at once.
      if (this.prevDrainedBytes === 0) this.prevDrainedBytes = this.drainedBytes;
      const rate = this.drainRate(nowUsec);
      this.prevDrainedBytes = this.drainedBytes;
      if (rate) {
        this.ewmaDrainRate = nCountEwma(rate, this.ewmaDrainRate, this.params.xonEwmaCnt) >>> 0;
        this.drainedBytes = 0;
        this.drainStartUsec = 0;
      }
    }

    let signal: FlowSignal = null;
    if (!this.xoffSent) {
      if (this.rateChanged()) {
        this.sentXon();
        signal = 'xon';
      }
    } else if (bufferedAfter === 0) {
      this.sentXon();
      signal = 'xon';
    }

    if (bufferedAfter === 0) {
      this.drainStartUsec = 0;
      // Drained a whole xon_rate with the buffer empty: the app is faster than advertised.
      if (this.drainedBytes >= xonRate && this.ewmaRateLastSent) {
        this.ewmaDrainRate = Math.min(INT32_MAX, 2 * this.ewmaDrainRate);
        this.prevDrainedBytes = this.drainedBytes;
        this.drainedBytes = 0;
      }
    }
    return signal;
  }

  /** compute_drain_rate: kB/s over the measurement, from the previous byte count (as tor). */
  private drainRate(nowUsec: number): number {
    const delta = nowUsec - this.drainStartUsec;
    if (delta <= 0) return 0;
    const bytes = this.prevDrainedBytes;
    if (bytes > Math.floor(INT32_MAX / 1000) || Math.floor(bytes / delta) > Math.floor(INT32_MAX / 1000)) return INT32_MAX;
    return Math.max(1, Math.floor((bytes * 1000) / delta));
  }

  /** stream_drain_rate_changed */
  private rateChanged(): boolean {
    const last = this.ewmaRateLastSent;
    if (!last) return false;
    const pct = this.params.xonChangePct;
    return this.ewmaDrainRate > Math.floor(((100 + pct) * last) / 100) || this.ewmaDrainRate < Math.floor(((100 - pct) * last) / 100);
  }

  private sentXoff(): void {
    this.xoffSent = true;
    this.counters.xoffSent++;
  }

  /** circuit_send_stream_xon: remember the rate sent; the XOFF is over. */
  private sentXon(): void {
    this.ewmaRateLastSent = this.ewmaDrainRate;
    this.xoffSent = false;
    this.counters.xonSent++;
  }
}

/** Why `FlowSender` found an XON/XOFF not valid. */
export interface FlowSenderInvalid {
  /** An XOFF while one is in force (tor: "Got multiple XOFF"); ignored. */
  duplicateXoff: number;
  /** An XON tor's trunnel parser rejects; ignored. */
  malformedXon: number;
  /** More XOFFs / XONs than the bytes we sent could cause (a dropmark); still obeyed. */
  excess: number;
}

/**
 * Our side of a stream we write to (uploads): an XOFF stops packaging, an XON resumes it
 * with an optional rate (tor's `xoff_received`, token bucket, and dropmark counters).
 * Call `noteSentData` for each DATA cell packaged on the stream.
 */
export class FlowSender {
  /** An XOFF is in force: package nothing from this stream. */
  xoffReceived = false;
  /** The rate the last XON asked for, bytes/s; undefined = unlimited. */
  rateLimit: number | undefined = undefined;
  /** DATA bytes packaged (u32, halved with the counts below at 10 MiB). */
  totalBytesXmit = 0;
  numXoffRecv = 0;
  numXonRecv = 0;
  readonly invalid: FlowSenderInvalid = { duplicateXoff: 0, malformedXon: 0, excess: 0 };
  private readonly xoffLimit: number;
  private readonly xonLimit: number;

  /**
   * `onion`: the stream goes to an onion service (tor then expects the client XOFF
   * limit of the other side; toward an exit, cc_xoff_exit's).
   */
  constructor(params: Pick<CongestionParams, 'xoffClientBytes' | 'xoffExitBytes' | 'xonRateBytes'>, options: { onion?: boolean } = {}) {
    this.xoffLimit = options.onion ? params.xoffClientBytes : params.xoffExitBytes;
    this.xonLimit = Math.min(this.xoffLimit, params.xonRateBytes);
  }

  get canPackage(): boolean {
    return !this.xoffReceived;
  }

  /** flow_control_note_sent_data */
  noteSentData(len: number): void {
    if (this.totalBytesXmit >= TOTAL_XMIT_SCALE_AT - len) this.scaleDown();
    this.totalBytesXmit += len;
  }

  /** circuit_process_stream_xoff (the body is not parsed, as in tor). False: not valid protocol data. */
  onXoff(): boolean {
    if (this.xoffReceived) {
      this.invalid.duplicateXoff++;
      return false;
    }
    if (this.numXoffRecv === COUNT_SCALE_AT) this.scaleDown();
    this.numXoffRecv++;
    this.xoffReceived = true;
    return this.plausible(this.xoffLimit * this.numXoffRecv);
  }

  /** circuit_process_stream_xon. False: not valid protocol data (an unparsable XON changes nothing). */
  onXon(body: Uint8Array): boolean {
    const kbps = parseXonRate(body);
    if (kbps < 0) {
      this.invalid.malformedXon++;
      return false;
    }
    if (this.numXonRecv === COUNT_SCALE_AT) this.scaleDown();
    this.numXonRecv++;
    // token_bucket_rw_adjust(rate, rate); 0 (no advice) or more than INT32_MAX: unlimited.
    const rate = kbps * 1000;
    this.rateLimit = rate === 0 || rate > INT32_MAX ? undefined : rate;
    this.xoffReceived = false;
    return this.plausible(this.xonLimit * this.numXonRecv);
  }

  /** The dropmark check: have we sent the bytes these many XOFFs / XONs need? (The cell is obeyed anyway.) */
  private plausible(bytesNeeded: number): boolean {
    if (this.totalBytesXmit >= bytesNeeded) return true;
    this.invalid.excess++;
    return false;
  }

  private scaleDown(): void {
    this.totalBytesXmit = Math.floor(this.totalBytesXmit / 2);
    this.numXoffRecv = Math.floor(this.numXoffRecv / 2);
    this.numXonRecv = Math.floor(this.numXonRecv / 2);
  }
}
