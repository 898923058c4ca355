/**
 * client/conflux — `ConfluxCircuit`: two (or more) circuits to one exit linked into a
 * conflux set (prop 329), as tor 0.4.9's client does for exit streams. The exit then
 * spreads what it sends over the legs (to the lowest-RTT leg with room in its congestion
 * window, for the HIGH_THROUGHPUT experience we ask for), so a download gets the
 * congestion windows of both. Streams open on leg 0, which sends everything (we never
 * switch legs); what comes back by any leg is put back in order first (proto/confluxlegs).
 *
 * Layer: thin client wrapper: the LINK/LINKED wait (timeout, AbortSignal) and the
 * TorCircuit-like surface `client.connect`'s exit pool uses. The legs come from
 * `TorClient.buildConflux` (same exit, otherwise disjoint, congestion control on each).
 */
import { randomBytes } from 'node:crypto';
import { BadArgumentError, type OrportError } from '../errors.js';
import { CONFLUX_NONCE_LEN } from '../proto/conflux.js';
import { ConfluxLegs, type ConfluxLegsOptions } from '../proto/confluxlegs.js';
import { boundedWait, type WaitOptions } from './wait.js';
import type { OpenStreamOptions } from './circuit.js';
import type { CircuitHop, TorCircuit } from './torcircuit.js';
import type { TorStream } from './stream.js';

/** How long the exit gets to answer every LINK with LINKED (tor: circuit build timeout territory). */
export const DEFAULT_LINK_TIMEOUT_MS = 30_000;

export interface ConfluxLinkOptions extends WaitOptions, ConfluxLegsOptions {
  /** The set's nonce source (tests inject one). */
  randomBytes?: (n: number) => Uint8Array;
}

export class ConfluxCircuit {
  private constructor(
    /** The legs, leg 0 first (it carries the streams and everything we send). */
    readonly legs: readonly TorCircuit[],
    private readonly core: ConfluxLegs,
  ) {}

  /**
   * Links `legs` (open circuits ending at the same exit, with congestion control there)
   * into one set: LINK on each, resolved once every leg's LINKED came and was acknowledged.
   * Rejects with the leg's error (a ProtocolError for a wrong nonce, say), a TimeoutError
   * (default 30 s) or an AbortError; every leg is closed then.
   */
  static link(legs: readonly TorCircuit[], options: ConfluxLinkOptions = {}): Promise<ConfluxCircuit> {
    if (legs.length < 2) return Promise.reject(new BadArgumentError(`a conflux set needs at least 2 legs, not ${legs.length}`));
    const exits = new Set(legs.map((l) => l.hops[l.hops.length - 1]?.rsa));
    if (exits.size !== 1) return Promise.reject(new BadArgumentError(`conflux legs must end at one exit, not ${[...exits].join(', ')}`));
    const nonce = (options.randomBytes ?? ((n) => new Uint8Array(randomBytes(n))))(CONFLUX_NONCE_LEN);
    const ids = legs.map((l) => l.id).join(', ');
    let onLinked = () => {};
    let onClosed = (_error: OrportError) => {};
    const core = new ConfluxLegs(
      legs.map((l) => l.circuit.protocolMachine),
      nonce,
      { linked: () => onLinked(), closed: (error) => onClosed(error) },
      options,
    );
    const linked = boundedWait<ConfluxCircuit>(`CONFLUX_LINKED on every leg (circuits ${ids})`, options, DEFAULT_LINK_TIMEOUT_MS, ({ resolve, reject }) => {
      onLinked = () => {
        onClosed = () => {};
        resolve(new ConfluxCircuit(legs, core));
      };
      onClosed = reject;
      core.start();
      return (error) => core.close(error);
    });
    // However it failed (a signal aborted before LINK went out, a leg unfit to join): no leg stays open.
    return linked.catch(async (err: unknown) => {
      await Promise.all(legs.map((l) => l.close()));
      throw err;
    });
  }

  /** The hops of leg 0 (the exit is every leg's last hop). */
  get hops(): readonly CircuitHop[] {
    return this.legs[0]!.hops;
  }

  get id(): number {
    return this.legs[0]!.id;
  }

  /** True while every leg is open. */
  get isOpen(): boolean {
    return !this.core.isClosed && this.legs.every((l) => l.isOpen);
  }

  /** Open streams (all on leg 0). */
  get streamCount(): number {
    return this.legs[0]!.streamCount;
  }

  /** Multiplexed cells that came by each leg, and those waiting for an earlier one now. */
  get stats(): { readonly cellsByLeg: readonly number[]; readonly queued: number; readonly delivered: number } {
    return { cellsByLeg: [...this.core.cellsByLeg], queued: this.core.set.queued, delivered: this.core.set.delivered };
  }

  /** An exit stream (see `RelayCircuit.openStream`): BEGIN goes by leg 0, the reply by any leg. */
  openStream(host: string, port: number, options?: OpenStreamOptions): Promise<TorStream> {
    return this.legs[0]!.openStream(host, port, options);
  }

  /** Resolves `host` at the exit (RESOLVE by leg 0). */
  resolve(host: string, options?: WaitOptions): Promise<string[]> {
    return this.legs[0]!.resolve(host, options);
  }

  /** Closes every leg (DESTROY). Idempotent. */
  async close(): Promise<void> {
    this.core.close();
    await Promise.all(this.legs.map((l) => l.close()));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
