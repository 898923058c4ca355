/**
 * proto/confluxlegs — a client's conflux set over its circuits (prop 329 §2-3; tor's
 * conflux_pool.c, conflux.c): LINK on every leg with one nonce, LINKED checked and
 * answered with LINKED_ACK, then every multiplexed message any leg's exit sends put back
 * in sequence (proto/conflux's ConfluxSet) and handed to leg 0, which holds the set's
 * streams; SWITCH applied to the leg it came on. While many cells wait out of order (or
 * a reader is behind) every leg holds its circuit SENDMEs, so the exits' congestion
 * windows bound the queue. Any leg closing closes the set.
 *
 * Layer: protocol core. No I/O, no clock: legs are CircuitMachines (their cells go out
 * through their own CircuitOutput); the nonce is passed in; `events` reports.
 * Not here: choosing the legs (same exit, otherwise disjoint: client/torclient), waiting
 * and timeouts (client/conflux). We send every cell on leg 0 and never switch (a sender
 * may keep to one leg, prop 329 §3), so our sequence numbers never need a SWITCH; we do
 * not relink a lost leg: tor would, when the closed leg held nothing undelivered.
 */
import { BadArgumentError, CircuitDestroyedError, LimitError, OrportError, ProtocolError } from '../errors.js';
import { CloseReason } from '../codec/datatype.js';
import {
  ConfluxLinkedMsg,
  ConfluxSet,
  ConfluxSwitchMsg,
  ConfluxUx,
  DEFAULT_MAX_OOO_CELLS,
  RELAY_COMMAND_CONFLUX_LINKED,
  RELAY_COMMAND_CONFLUX_SWITCH,
} from './conflux.js';
import type { CircuitMachine, ConfluxLegHooks } from './circuit.js';

export interface ConfluxLegsEvents {
  /** Every leg answered LINKED (and got its LINKED_ACK): streams may open on leg 0. */
  linked(): void;
  /** The set is gone: a leg closed, or broke the protocol (every leg is then destroyed). Called once. */
  closed(error: OrportError): void;
}

/** Out-of-order cells from which every leg holds its circuit SENDMEs (the exits' windows then stop them) until the queue drains. */
export const OOO_HOLD_CELLS = 1024;

export interface ConfluxLegsOptions {
  /** Out-of-order cells held at most (default proto/conflux's DEFAULT_MAX_OOO_CELLS). */
  maxQueued?: number;
  /** Out-of-order cells from which circuit SENDMEs are held (default OOO_HOLD_CELLS). */
  holdAt?: number;
  /** The experience LINK asks for (default HIGH_THROUGHPUT: tor's exits then pick the lowest-RTT leg with room). */
  desiredUx?: ConfluxUx;
}

/** A multiplexed message waiting for its turn. */
interface Queued {
  readonly command: number;
  readonly streamId: number;
  body: Uint8Array;
}

type Leg = Pick<CircuitMachine, 'circId' | 'state' | 'hopCount' | 'hopCongestion' | 'joinConflux' | 'deliverFromSet' | 'sendRelay' | 'destroy' | 'consumerBehind' | 'releaseHeldSendmes' | 'hopLabel'>;

export class ConfluxLegs {
  readonly set: ConfluxSet<Queued>;
  private closedWith: OrportError | undefined;
  private announced = false;
  /** Multiplexed messages that came by each leg (tests and stats: did the exit use both?). */
  readonly cellsByLeg: number[];
  private readonly holdAt: number;

  constructor(
    private readonly legs: readonly Leg[],
    nonce: Uint8Array,
    private readonly events: ConfluxLegsEvents,
    options: ConfluxLegsOptions = {},
  ) {
    this.set = new ConfluxSet<Queued>(nonce, legs.length, options.maxQueued ?? DEFAULT_MAX_OOO_CELLS, options.desiredUx ?? ConfluxUx.HIGH_THROUGHPUT);
    this.cellsByLeg = legs.map(() => 0);
    this.holdAt = options.holdAt ?? OOO_HOLD_CELLS;
  }

  get isClosed(): boolean {
    return this.closedWith !== undefined;
  }

  /**
   * Joins every leg and sends each its LINK (conflux_cell_send_link: the set's nonce,
   * sequence numbers 0). Every leg must be open with congestion control at its last hop
   * (BadArgumentError before any is touched).
   */
  start(): void {
    this.legs.forEach((leg, i) => {
      if (leg.state !== 'open' || !leg.hopCongestion(leg.hopCount - 1)) {
        throw new BadArgumentError(`conflux leg ${i} (circuit ${leg.circId}) ${leg.state !== 'open' ? `is ${leg.state}` : `has no congestion control with ${leg.hopLabel(leg.hopCount - 1)}`}: a leg must be open with congestion control at its last hop (tor: conflux_is_enabled)`);
      }
    });
    this.legs.forEach((leg, i) => leg.joinConflux(this.hooks(i)));
    this.legs.forEach((leg, i) => {
      const link = this.set.link(i);
      leg.sendRelay(leg.hopCount - 1, link.command, 0, link.encode());
    });
  }

  /** Closes every leg (DESTROY, reason FINISHED). */
  close(error?: OrportError): void {
    this.finish(error ?? new CircuitDestroyedError('local', 'FINISHED', 9, 'the conflux set was closed'));
  }

  private hooks(i: number): ConfluxLegHooks {
    const leg = this.legs[i]!;
    const where = () => `conflux leg ${i} (circuit ${leg.circId}, ${leg.hopLabel(leg.hopCount - 1)})`;
    /** The set's errors say "conflux leg N": name the circuit and the exit too. */
    const named = (err: unknown): unknown => {
      const message = err instanceof Error ? `${where()}: ${err.message.replace(/^conflux leg \d+: /, '')}` : '';
      if (err instanceof LimitError) return new LimitError(message, err.limit);
      if (err instanceof ProtocolError) return new ProtocolError(message, { cause: err });
      return err;
    };
    return {
      control: (command, body) => {
        try {
          this.control(i, command, body);
        } catch (err) {
          throw named(err);
        }
      },
      multiplexed: (command, streamId, body) => {
        this.cellsByLeg[i]!++;
        const cell: Queued = { command, streamId, body };
        let ready: Queued[];
        try {
          ready = this.set.receive(i, cell);
        } catch (err) {
          throw named(err);
        }
        // Held for later: copy out of the cell's buffer (a view would pin a whole run of cells).
        if (ready.length === 0) cell.body = body.slice();
        for (const c of ready) this.legs[0]!.deliverFromSet(c.command, c.streamId, c.body);
        if (ready.length > 1 && this.set.queued < this.holdAt) this.releaseAll();
      },
      // Not sequenced (a stream SENDME, say): for leg 0's streams whichever leg it came by.
      foreign: (command, streamId, body) => this.legs[0]!.deliverFromSet(command, streamId, body),
      holding: () => this.set.queued >= this.holdAt || this.legs[0]!.consumerBehind,
      drained: () => this.releaseAll(0),
      closed: (error) => {
        this.set.close(i);
        this.finish(error);
      },
    };
  }

  /** Every leg (but `except`) sends the circuit SENDMEs it held, where nothing holds them any more. */
  private releaseAll(except?: number): void {
    this.legs.forEach((leg, j) => {
      if (j !== except) leg.releaseHeldSendmes();
    });
  }

  /** A conflux message on leg `i`: LINKED (answered with LINKED_ACK) or SWITCH; LINK and LINKED_ACK go client → exit only (conflux_process_cell). */
  private control(i: number, command: number, body: Uint8Array): void {
    const leg = this.legs[i]!;
    if (command === RELAY_COMMAND_CONFLUX_LINKED) {
      const ack = this.set.onLinked(i, ConfluxLinkedMsg.decode(body));
      leg.sendRelay(leg.hopCount - 1, ack.command, 0, ack.encode());
      if (this.set.linked && !this.announced) {
        this.announced = true;
        this.events.linked();
      }
    } else if (command === RELAY_COMMAND_CONFLUX_SWITCH) {
      this.set.onSwitch(i, ConfluxSwitchMsg.decode(body));
    } else {
      throw new ProtocolError(`sent relay command ${command} (CONFLUX_LINK or LINKED_ACK), which only a client sends`);
    }
  }


  private finish(error: OrportError): void {
    if (this.closedWith) return;
    this.closedWith = error;
    for (const leg of this.legs) if (leg.state !== 'destroyed') leg.destroy(CloseReason.FINISHED, error);
    this.events.closed(error);
  }
}
