/**
 * client/torcircuit — `TorCircuit`: a circuit `TorClient.buildCircuit` made, with the
 * relays it goes through (`hops`: nickname, identities, handshake, build time per hop).
 * It forwards to the underlying `RelayCircuit` (on the guard's shared connection) and
 * keeps `hops` in step with `extend` and `truncate`.
 *
 * Layer: thin client wrapper; no protocol logic (proto/circuit has it).
 */
import type { Readable } from 'node:stream';
import type { CircuitMessage, CircuitMessageWaitOptions, DirectoryOptions, DirectoryStreamOptions, ExtendOptions, OpenStreamOptions, RelayCircuit } from './circuit.js';
import type { Tor1Keys } from '../crypto/relaycrypto.js';
import type { TorStream } from './stream.js';
import type { CircuitTarget, HandshakeKind } from './handshakes.js';
import { defaultHandshake } from './handshakes.js';
import type { Relay } from './relay.js';
import type { WaitOptions } from './wait.js';

/** A relay a circuit can go through, with a name (`RelayInfo` is one). */
export interface NamedTarget extends CircuitTarget {
  readonly nickname: string;
}

/** One hop of a circuit, first hop first. */
export interface CircuitHop {
  /** 0-based. */
  readonly index: number;
  readonly nickname: string;
  readonly rsa: string;
  readonly ed25519: string | undefined;
  /** 'hs-ntor': an onion service's virtual hop (no relay: `rsa` is '', `nickname` the address). */
  readonly handshake: HandshakeKind | 'fast' | 'hs-ntor';
  /** Milliseconds the hop took to add (connection excluded for the first hop). */
  readonly ms: number;
  /** Congestion control negotiated with this hop (prop 324), or undefined (fixed windows). */
  readonly congestionControl: { readonly sendmeInc: number } | undefined;
  /** The hop's relay crypto: 'cgo' where the handshake negotiated it (prop 359), else 'tor1'. */
  readonly relayCrypto: 'tor1' | 'cgo';
}

export class TorCircuit {
  private readonly hopList: CircuitHop[] = [];

  /** @internal `TorClient.buildCircuit` makes these. */
  constructor(readonly circuit: RelayCircuit<Relay>) {}

  /** @internal Records a hop that was added. */
  addHop(target: NamedTarget, handshake: HandshakeKind | 'fast', ms: number): void {
    const index = this.hopList.length;
    const cc = this.circuit.congestion(index);
    this.hopList.push({ index, nickname: target.nickname, rsa: target.rsa, ed25519: target.ed25519, handshake, ms, congestionControl: cc && { sendmeInc: cc.sendmeInc }, relayCrypto: this.circuit.relayCrypto(index) ?? 'tor1' });
  }

  /**
   * Appends an onion service's virtual hop (rend-spec-v3 4.2.1; see RelayCircuit.addVirtualHop),
   * listed in `hops` with handshake 'hs-ntor' and `name` (the .onion address) as its nickname.
   */
  addVirtualHop(keys: Tor1Keys, name: string, ms = 0): void {
    this.circuit.addVirtualHop(keys, name);
    this.hopList.push({ index: this.hopList.length, nickname: name, rsa: '', ed25519: undefined, handshake: 'hs-ntor', ms, congestionControl: undefined, relayCrypto: 'tor1' });
  }

  /** Sends a circuit-level message to the last hop (see RelayCircuit.sendCircuitMessage). */
  sendCircuitMessage(command: number, body: Uint8Array): void {
    this.circuit.sendCircuitMessage(command, body);
  }

  /** The next circuit-level message from the last hop among `commands` (see RelayCircuit.nextCircuitMessage). */
  nextCircuitMessage(commands: readonly number[], options?: CircuitMessageWaitOptions): Promise<CircuitMessage> {
    return this.circuit.nextCircuitMessage(commands, options);
  }

  /** The hops, first hop first. */
  get hops(): readonly CircuitHop[] {
    return this.hopList;
  }

  get id(): number {
    return this.circuit.id;
  }

  get isOpen(): boolean {
    return this.circuit.isOpen;
  }

  /** The connection to the first hop (shared with the client's other circuits through it). */
  get relay(): Relay {
    return this.circuit.relay;
  }

  get counters(): RelayCircuit<Relay>['counters'] {
    return this.circuit.counters;
  }

  /** Adds a hop (EXTEND2; see `RelayCircuit.extend`). */
  async extend(target: NamedTarget, options: ExtendOptions = {}): Promise<void> {
    const handshake = options.handshake ?? defaultHandshake(target);
    const started = performance.now();
    await this.circuit.extend(target, { name: target.nickname, ...options, handshake });
    this.addHop(target, handshake, performance.now() - started);
  }

  /** Drops the hops after hop `hop` (0-based; see `RelayCircuit.truncate`). */
  async truncate(hop: number, options: WaitOptions = {}): Promise<void> {
    await this.circuit.truncate(hop, options);
    this.hopList.length = hop + 1;
  }

  /** A directory request to a hop's cache (default the last hop; see `RelayCircuit.directory`). */
  directory(request: string | Uint8Array, streamId?: number, options?: DirectoryOptions): Promise<Uint8Array> {
    return this.circuit.directory(request, streamId, options);
  }

  directoryStream(request: string | Uint8Array, options?: DirectoryStreamOptions): Readable {
    return this.circuit.directoryStream(request, options);
  }

  /** An exit stream from the last hop (see `RelayCircuit.openStream`). */
  openStream(host: string, port: number, options?: OpenStreamOptions): Promise<TorStream> {
    return this.circuit.openStream(host, port, options);
  }

  /** Resolves `host` at the last hop (see `RelayCircuit.resolve`). */
  resolve(host: string, options?: WaitOptions): Promise<string[]> {
    return this.circuit.resolve(host, options);
  }

  /** Open streams on this circuit. */
  get streamCount(): number {
    return this.circuit.streamCount;
  }

  /** DESTROY; the guard's connection stays for the client's other circuits. */
  close(): Promise<void> {
    return this.circuit.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
