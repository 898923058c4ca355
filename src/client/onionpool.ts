/**
 * client/onionpool — the rendezvous circuits `client.connect('….onion', port)` opens
 * streams on: the descriptor (onion/lookup, cached per client), then the rend circuit
 * (onion/rendezvous) whose last hop is the service, then BEGIN to the service's port. A
 * rend circuit is reused for later streams to the same service with the same isolation
 * key while it is open and younger than MaxCircuitDirtiness (10 min, as tor: then it takes
 * no new streams, and closes once its last stream has). Concurrent connects to one service
 * share the circuit being opened. A cached descriptor whose introduction points all fail
 * is fetched again once (tor refetches: the service may have moved them). A `.onion` name
 * never reaches an exit: a malformed one is an OnionAddressError here.
 *
 * Layer: client glue over onion/lookup and onion/rendezvous. Every wait is bounded by
 * `timeoutMs` (default 120 s, tor's SocksTimeout) and honours `signal`; `close` closes
 * every rend circuit.
 */
import { BadArgumentError, OnionServiceError, OrportError, StreamClosedError } from '../errors.js';
import { parseOnionAddress } from '../onion/address.js';
import { fetchOnionDescriptor, type OnionDescriptorResult } from '../onion/lookup.js';
import { openOnionCircuit } from '../onion/rendezvous.js';
import { boundedWait, type WaitOptions } from './wait.js';
import { DEFAULT_TOR_CONNECT_TIMEOUT_MS, MAX_CIRCUIT_DIRTINESS_MS, type TorConnectOptions } from './exitpool.js';
import type { TorCircuit } from './torcircuit.js';
import type { TorStream } from './stream.js';
import type { CircuitSource } from './view.js';

/** How long the service gets to answer CONNECTED (tor's stream timeout on rend circuits is its 10 s, 15 s from the third try). */
export const DEFAULT_ONION_STREAM_TIMEOUT_MS = 15_000;

interface Entry {
  readonly key: string;
  readonly opening: Promise<TorCircuit>;
  circuit: TorCircuit | undefined;
  firstUsedAt: number | undefined;
}

export interface OnionPoolOptions {
  maxDirtinessMs?: number;
  now?: () => number;
}

export class OnionPool {
  private readonly entries = new Map<string, Entry>();
  /** Circuits no longer given new streams but still carrying some: closed with the pool. */
  private readonly retired = new Set<TorCircuit>();
  private readonly lifetime = new AbortController();
  private closed = false;
  readonly counters = { streams: 0, circuits: 0, reused: 0, descriptorRefetches: 0 };

  constructor(
    private readonly client: CircuitSource,
    private readonly options: OnionPoolOptions = {},
  ) {}

  /** Rend circuits held (open or opening). */
  get size(): number {
    return this.entries.size;
  }

  /**
   * A stream to port `port` of the onion service `host` (`<56>.onion`, or a subdomain of
   * it). Rejects with an OnionAddressError (not a v3 address), an OnionServiceError
   * (descriptor not found or invalid, client authorization, introduction or rendezvous
   * failed), a StreamClosedError (the service refused the port: END), a TimeoutError or an
   * AbortError.
   */
  async connect(host: string, port: number, options: TorConnectOptions = {}): Promise<TorStream> {
    if (this.closed) throw new BadArgumentError('the client is closed');
    const onion = parseOnionAddress(host);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new BadArgumentError(`port must be 1-65535, not ${port}`);
    const timeoutMs = options.timeoutMs ?? DEFAULT_TOR_CONNECT_TIMEOUT_MS;
    const started = this.now();
    const left = () => Math.max(1, timeoutMs - (this.now() - started));
    // One retry on a new circuit when the reused one died under us (the service or the RP closed it).
    for (let attempt = 0; ; attempt++) {
      const { circuit, reused } = await this.circuitFor(onion.hostname, options.isolation, { signal: options.signal, timeoutMs: left() });
      try {
        const stream = await circuit.openStream(onion.hostname, port, { signal: options.signal, timeoutMs: Math.min(left(), options.streamTimeoutMs ?? DEFAULT_ONION_STREAM_TIMEOUT_MS), optimistic: options.optimistic });
        this.counters.streams++;
        return stream;
      } catch (err) {
        if (!reused || attempt > 0 || circuit.isOpen || err instanceof StreamClosedError) throw err;
        this.forget(onion.hostname, options.isolation, circuit);
      }
    }
  }

  /** Closes every rend circuit; later connects are refused. */
  async close(): Promise<void> {
    this.closed = true;
    this.lifetime.abort(new BadArgumentError('the client is closed'));
    const entries = [...this.entries.values()];
    this.entries.clear();
    const retired = [...this.retired];
    this.retired.clear();
    await Promise.all([...entries.map((e) => e.opening.then((c) => c.close(), () => undefined)), ...retired.map((c) => c.close())]);
  }

  private now(): number {
    return this.options.now?.() ?? performance.now();
  }

  private keyOf(hostname: string, isolation: string | undefined): string {
    return `${hostname}\0${isolation ?? ''}`;
  }

  private forget(hostname: string, isolation: string | undefined, circuit: TorCircuit): void {
    const key = this.keyOf(hostname, isolation);
    const entry = this.entries.get(key);
    if (entry?.circuit === circuit) this.entries.delete(key);
    this.retire(circuit);
  }

  /** A circuit that takes no new streams: closed now if it carries none, else when the pool closes (or the service ends it). */
  private retire(circuit: TorCircuit): void {
    this.sweep();
    if (circuit.streamCount === 0 || !circuit.isOpen) void circuit.close();
    else this.retired.add(circuit);
  }

  /** Closes the retired circuits whose streams have all ended. */
  private sweep(): void {
    for (const c of this.retired) {
      if (c.streamCount > 0 && c.isOpen) continue;
      this.retired.delete(c);
      void c.close();
    }
  }

  /** The live rend circuit for (service, isolation), or a new one; the caller's wait bounds only its own waiting. */
  private async circuitFor(hostname: string, isolation: string | undefined, wait: WaitOptions & { timeoutMs: number }): Promise<{ circuit: TorCircuit; reused: boolean }> {
    const key = this.keyOf(hostname, isolation);
    let entry = this.entries.get(key);
    const dirtiness = this.options.maxDirtinessMs ?? MAX_CIRCUIT_DIRTINESS_MS;
    if (entry?.circuit && (!entry.circuit.isOpen || (entry.firstUsedAt !== undefined && this.now() - entry.firstUsedAt > dirtiness))) {
      const old = entry.circuit;
      this.entries.delete(key);
      this.retire(old);
      entry = undefined;
    }
    const reused = entry !== undefined;
    if (!entry) {
      const created: Entry = { key, opening: this.open(hostname, wait.timeoutMs), circuit: undefined, firstUsedAt: undefined };
      entry = created;
      this.entries.set(key, created);
      created.opening.then(
        (circuit) => {
          if (this.closed) void circuit.close();
          created.circuit = circuit;
        },
        () => {
          if (this.entries.get(key) === created) this.entries.delete(key);
        },
      );
    }
    const opening = entry.opening;
    const circuit = await boundedWait<TorCircuit>(`a rendezvous circuit to ${hostname}`, wait, wait.timeoutMs, ({ resolve, reject }) => {
      opening.then(resolve, reject);
    });
    entry.firstUsedAt ??= this.now();
    if (reused) this.counters.reused++;
    return { circuit, reused };
  }

  /** Descriptor, then the rend circuit; bounded by the pool's lifetime and `timeoutMs` (not by one caller's signal: others may wait on it). */
  private async open(hostname: string, timeoutMs: number): Promise<TorCircuit> {
    const signal = this.lifetime.signal;
    const started = this.now();
    const left = () => Math.max(1, timeoutMs - (this.now() - started));
    let described: OnionDescriptorResult = await fetchOnionDescriptor(this.client, hostname, { signal, timeoutMs });
    for (let attempt = 0; ; attempt++) {
      try {
        const circuit = await openOnionCircuit(
          this.client,
          { address: described.address, identityKey: described.identityKey, subcredential: described.subcredential, descriptor: described.descriptor },
          { signal, timeoutMs: left() },
        );
        this.counters.circuits++;
        return circuit;
      } catch (err) {
        const introFailed = err instanceof OnionServiceError && (err.code === 'E_ONION_INTRO_FAILED' || err.code === 'E_ONION_INTRO_TIMEOUT');
        if (!introFailed || !described.fromCache || attempt > 0) throw err instanceof OrportError ? err : new BadArgumentError(String(err));
        this.counters.descriptorRefetches++;
        described = await fetchOnionDescriptor(this.client, hostname, { signal, timeoutMs: left(), refresh: true });
      }
    }
  }
}
