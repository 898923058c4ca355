/**
 * client/view — the types of what a client knows of the network (`RelayInfo`,
 * `ConsensusView`), of what `buildCircuit` takes, and `CircuitSource`: the part of a
 * TorClient that code building its own circuits needs (onion/lookup, onion/rendezvous).
 * Kept apart from client/torclient so that such code depends on these types, not on the
 * client (which uses it).
 *
 * Layer: types only; no code.
 */
import type { MicrodescConsensus } from '../dir/consensus.js';
import type { Network } from '../dir/network.js';
import type { Path, PathRelay } from '../path/select.js';
import type { HandshakeKind } from './handshakes.js';
import type { TorCircuit } from './torcircuit.js';
import type { WaitOptions } from './wait.js';

/** One relay as the verified consensus and its microdescriptor describe it: what path selection reads, and its ports and digest. */
export interface RelayInfo extends PathRelay {
  readonly orPort: number;
  readonly dirPort: number;
  /** The microdescriptor digest (`m`, base64 SHA-256). */
  readonly microdescDigest: string;
}

/** The verified view of the network. */
export interface ConsensusView {
  readonly validAfter: Date;
  readonly freshUntil: Date;
  readonly validUntil: Date;
  /** Nicknames of the authorities whose signatures verified. */
  readonly signedBy: readonly string[];
  readonly params: Readonly<Record<string, number>>;
  readonly bandwidthWeights: Readonly<Record<string, number>>;
  /** Every relay of the consensus; those without a microdescriptor yet have no ntor key. */
  readonly relays: readonly RelayInfo[];
  /** The parsed consensus, for what the view leaves out. */
  readonly document: MicrodescConsensus;
}

export interface BuildCircuitOptions extends WaitOptions {
  /** Hops (1-8, default 3). */
  hops?: number;
  /** The port the exit must accept (default 80). */
  exitPort?: number;
  /** @deprecated the old name of `exitPort`. */
  port?: number;
  /**
   * The relays to use, first hop first, instead of a chosen path: nicknames, fingerprints
   * ('$'-prefixed or not) or RelayInfo objects; or a `{ guard, middle, exit }` path.
   */
  path?: readonly (string | RelayInfo)[] | Path<RelayInfo>;
  /** Each hop's handshake (default: ntor v3 where the relay lists Relay=4, else ntor). */
  handshake?: HandshakeKind;
  /** Paths to try before giving up (default 3; 1 with an explicit `path`). `timeoutMs` bounds each. */
  attempts?: number;
  /** Relays (RSA fingerprints) not to use in a chosen path. */
  exclude?: readonly string[];
  /**
   * Negotiate congestion control (prop 324) with the last hop when the consensus and the
   * relay allow it, as tor 0.4.9 does (default true); false builds with fixed windows.
   */
  congestionControl?: boolean;
  /**
   * The exit's relay crypto: 'cgo' asks for CGO (prop 359) where tor 0.4.9 would — with
   * congestion control, from an exit listing FlowCtrl=2, Relay=5 and Relay=6 — and falls
   * back to tor1 elsewhere; 'tor1' (the default: CGO costs more CPU per cell here, see the
   * README) never asks. `circuit.hops[i].relayCrypto` says what each hop got.
   */
  relayCrypto?: 'tor1' | 'cgo';
}

/** What circuit-building code needs of a client: the verified consensus, the network's rules, buildCircuit. `TorClient` is one. */
export interface CircuitSource {
  readonly consensus: ConsensusView;
  readonly network: Network;
  buildCircuit(options?: BuildCircuitOptions): Promise<TorCircuit>;
}
