/**
 * proto/confluxlegs — a client's conflux set over its circuits (prop 329 §2-3; tor's
 * conflux_pool.c, conflux.c): LINK on every leg with one nonce, LINKED checked and
 * answered with LINKED_ACK, then every multiplexed message any leg's exit sends put back
 * in sequence (proto/conflux's ConfluxSet) and handed to leg 0, which holds the set's
 * streams; SWITCH applied to the leg it came on; stream messages (XON/XOFF) that come
 * by another leg handed to leg 0 too. Any leg closing closes the set.
 *
 * Layer: protocol core. No I/O, no clock: legs are CircuitMachines (their cells go out
 * through their own CircuitOutput); the nonce is passed in; `events` reports.
 * Not here: choosing the legs (same exit, otherwise disjoint: client/torclient), waiting
 * and timeouts (client/conflux). We send every cell on leg 0 and never switch (a sender
 * may keep to one leg, prop 329 §3), so our sequence numbers never need a SWITCH; we do
 * not relink a lost leg: tor would, when the closed leg held nothing undelivered.
 */
import { OrportError, ProtocolError, CircuitDestroyedError } from '../errors.js';
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

export interface ConfluxLegsOptions {
  /** Out-of-order cells held at most (default proto/conflux's DEFAULT_MAX_OOO_CELLS). */
  maxQueued?: number;
  /** The experience LINK asks for (default HIGH_THROUGHPUT: tor's exits then pick the lowest-RTT leg with room). */
  desiredUx?: ConfluxUx;
}

/** A multiplexed message waiting for its turn. */
interface Queued {
  readonly command: number;
  readonly streamId: number;
  body: Uint8Array;
}

type Leg = Pick<CircuitMachine, 'circId' | 'state' | 'hopCount' | 'joinConflux' | 'deliverFromSet' | 'sendRelay' | 'destroy' | 'consumerBehind' | 'releaseHeldSendmes' | 'hopLabel'>;

export class ConfluxLegs {
  readonly set: ConfluxSet<Queued>;
  private closedWith: OrportError | undefined;
  private announced = false;
  /** Multiplexed messages that came by each leg (tests and stats: did the exit use both?). */
  readonly cellsByLeg: number[];

  constructor(
    private readonly legs: readonly Leg[],
    nonce: Uint8Array,
    private readonly events: ConfluxLegsEvents,
    options: ConfluxLegsOptions = {},
  ) {
    this.set = new ConfluxSet<Queued>(nonce, legs.length, options.maxQueued ?? DEFAULT_MAX_OOO_CELLS, options.desiredUx ?? ConfluxUx.HIGH_THROUGHPUT);
    this.cellsByLeg = legs.map(() => 0);
  }

  get isClosed(): boolean {
    return this.closedWith !== undefined;
  }

  /** Joins every leg and sends each its LINK (conflux_cell_send_link: the set's nonce, sequence numbers 0). */
  start(): void {
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
    return {
      control: (command, body) => {
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
          // conflux_process_cell: LINK and LINKED_ACK go client → exit only.
          throw new ProtocolError(`${where()} sent relay command ${command} (CONFLUX_LINK or LINKED_ACK), which only a client sends`);
        }
      },
      multiplexed: (command, streamId, body) => {
        this.cellsByLeg[i]!++;
        const cell: Queued = { command, streamId, body };
        const ready = this.set.receive(i, cell);
        // Held for later: copy out of the cell's buffer (a view would pin a whole run of cells).
        if (ready.length === 0) cell.body = body.slice();
        for (const c of ready) this.legs[0]!.deliverFromSet(c.command, c.streamId, c.body);
      },
      // Not sequenced (XON/XOFF): for leg 0's streams whichever leg it came by.
      foreign: (command, streamId, body) => this.legs[0]!.deliverFromSet(command, streamId, body),
      holding: () => this.legs[0]!.consumerBehind,
      drained: () => {
        for (let j = 1; j < this.legs.length; j++) this.legs[j]!.releaseHeldSendmes();
      },
      closed: (error) => {
        this.set.close(i);
        this.finish(error);
      },
    };
  }

  private finish(error: OrportError): void {
    if (this.closedWith) return;
    this.closedWith = error;
    for (const leg of this.legs) if (leg.state !== 'destroyed') leg.destroy(CloseReason.FINISHED, error);
    this.events.closed(error);
  }
}
