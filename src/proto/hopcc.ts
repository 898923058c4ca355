/**
 * proto/hopcc — congestion control on one hop of a circuit once the handshake negotiated
 * it (prop 324; DIGEST-streams §3.2): what replaces the fixed windows there. Outbound:
 * the package window is Vegas' cwnd − inflight, the forward tag of every sendme_inc-th
 * DATA cell is kept (with its send time) and the hop's circuit SENDMEs must echo them;
 * inbound: a circuit SENDME every sendme_inc DATA cells (deliver window 1000, increment
 * sendme_inc); no stream SENDMEs either way — streams use XON/XOFF (proto/xonxoff).
 *
 * Layer: protocol core. No I/O; the clock is a function the circuit machine passes in
 * (monotonic microseconds). The circuit machine calls: `noteSent` per DATA cell sent,
 * `onSendme` per circuit SENDME, `streamFlow()` per stream opened on this hop.
 */
import { ProtocolError } from '../errors.js';
import { bytesEqual } from '../codec/bytes.js';
import { CIRCUIT_WINDOW, DeliverWindow } from './flowctl.js';
import { Vegas } from './vegas.js';
import { FlowReceiver, FlowSender } from './xonxoff.js';
import type { CongestionParams } from './ccparams.js';

/** XON/XOFF state of one stream on a congestion-controlled hop. */
export interface StreamFlow {
  readonly sender: FlowSender;
  readonly receiver: FlowReceiver;
}

export class HopCongestion {
  readonly vegas: Vegas;
  /** Inbound: tor's deliver window still starts at 1000; SENDMEs every sendme_inc cells. */
  readonly deliver: DeliverWindow;
  /** Circuit SENDMEs due but held (their cells' digests, in order) while a consumer is far behind. */
  readonly owed: (Uint8Array | string)[] = [];
  private readonly tags: Uint8Array[] = [];

  constructor(
    readonly params: CongestionParams,
    readonly sendmeInc: number,
    private readonly what: string,
  ) {
    this.vegas = new Vegas(params, sendmeInc);
    this.deliver = new DeliverWindow({ start: CIRCUIT_WINDOW.start, increment: sendmeInc }, what);
  }

  /** DATA cells the hop may still be sent now (cwnd − inflight, never negative). */
  get packageWindow(): number {
    return this.vegas.packageWindow;
  }

  /** A DATA cell went to the hop with forward digest `digest` (congestion_control_note_cell_sent). */
  noteSent(digest: Uint8Array, nowUsec: number): void {
    if (this.vegas.noteCellSent(nowUsec)) this.tags.push(digest);
  }

  /** A circuit SENDME from the hop: its tag checked (prop 289), then Vegas (its RTT, cwnd). */
  onSendme(version: number, digest: Uint8Array | undefined, nowUsec: number): void {
    const expected = this.tags.shift();
    if (!expected) throw new ProtocolError(`${this.what}: a circuit SENDME, but no DATA cell awaits one (congestion control: the exit acknowledged cells we never sent)`);
    if (version < 1 || !digest || !bytesEqual(expected.subarray(0, digest.length), digest)) {
      throw new ProtocolError(`${this.what}: mismatched digest on an authenticated circuit SENDME (prop 289): the relay did not see the cells we sent`);
    }
    this.vegas.processSendme(nowUsec);
  }

  /** XON/XOFF state for a new stream on this hop. */
  streamFlow(): StreamFlow {
    return { sender: new FlowSender(this.params), receiver: new FlowReceiver(this.params) };
  }
}
