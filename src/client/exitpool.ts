/**
 * client/exitpool — the exit circuits `client.connect` opens streams on, as tor's client
 * keeps them (circuituse.c; DIGEST-streams §1.5): a circuit is reused for later streams
 * to a port its exit accepts and with the same isolation key; it takes no new stream once
 * it has been in use for MaxCircuitDirtiness (10 min), and closes when its last stream
 * has; a refusal the exit may not repeat elsewhere (MISC, RESOLVEFAILED, NOROUTE,
 * EXITPOLICY, HIBERNATING, RESOURCELIMIT, a destroyed circuit, no CONNECTED in time) is
 * retried on another circuit through another exit; CONNECTREFUSED, TIMEOUT, DONE,
 * CONNRESET and the rest are not. When the retries are spent the relay's reason is the
 * error (C tor's client would leave its caller waiting).
 *
 * Layer: client glue over TorCircuit (or ConfluxCircuit, with `TorClientOptions.conflux`);
 * the circuits come from a `build` function (TorClient.buildCircuit / buildConflux). Every wait is bounded by `timeoutMs` and `signal`.
 */
import { AbortError, CircuitDestroyedError, OrportError, StreamClosedError, TimeoutError } from '../errors.js';
import { policyAllows } from '../path/select.js';
import { startDeadline, type WaitOptions } from './wait.js';
import type { TorCircuit } from './torcircuit.js';
import type { ConfluxCircuit } from './conflux.js';

/** What the pool opens streams on: a circuit, or a conflux set (`TorClientOptions.conflux`). */
export type ExitCircuit = TorCircuit | ConfluxCircuit;
import type { TorStream } from './stream.js';
import type { PathRelay as RelayInfo } from '../path/select.js';

/** tor's MaxCircuitDirtiness default: no new streams on a circuit first used longer ago. */
export const MAX_CIRCUIT_DIRTINESS_MS = 10 * 60_000;
/** tor's SocksTimeout default: the whole connect, retries included. */
export const DEFAULT_TOR_CONNECT_TIMEOUT_MS = 120_000;
/** Circuits tried per connect (tor: MAX_RESOLVE_FAILURES = 3). */
export const DEFAULT_CONNECT_ATTEMPTS = 3;

export interface TorConnectOptions extends WaitOptions {
  /** Streams with distinct keys never share a circuit (tor's stream isolation). */
  isolation?: string;
  /** Circuits to try (default 3). */
  attempts?: number;
  /** Send written data with BEGIN, before CONNECTED (default false). */
  optimistic?: boolean;
  /** How long one circuit gets to answer CONNECTED before the next is tried (default tor's: 10 s, 15 s from the third try). */
  streamTimeoutMs?: number;
}

interface Entry {
  readonly circuit: ExitCircuit;
  readonly exit: RelayInfo;
  /** The isolation key of its first stream (circuits start unassigned). */
  isolation: string | undefined;
  assigned: boolean;
  firstUsedAt: number | undefined;
  /** No new streams: its exit refused, or a stream timed out on it. */
  unusable: boolean;
}

export interface ExitPoolDeps {
  /** Builds a circuit whose exit accepts `port`, avoiding the relays in `exclude`. */
  build(port: number, exclude: readonly string[], wait: Required<WaitOptions>): Promise<ExitCircuit>;
  /** The exit's consensus entry. */
  relay(rsa: string): RelayInfo | undefined;
  now?: () => number;
  maxDirtinessMs?: number;
}

/** END reasons after which tor tries another circuit (relay.c connection_ap_process_end_not_open). */
const RETRIABLE = new Set(['MISC', 'RESOLVEFAILED', 'NOROUTE', 'EXITPOLICY', 'HIBERNATING', 'RESOURCELIMIT', 'DESTROY', 'TORPROTOCOL']);

export class ExitPool {
  private readonly entries: Entry[] = [];
  private sweeper: NodeJS.Timeout | undefined;
  private closed = false;
  readonly counters = { streams: 0, built: 0, reused: 0, retries: 0, retired: 0 };

  constructor(private readonly deps: ExitPoolDeps) {}

  /** Circuits held (open, in use or ready). */
  get size(): number {
    return this.entries.length;
  }

  async connect(host: string, port: number, options: TorConnectOptions = {}): Promise<TorStream> {
    if (this.closed) throw new AbortError(`a stream to ${host}:${port}`, 'the client is closed');
    const timeoutMs = options.timeoutMs ?? DEFAULT_TOR_CONNECT_TIMEOUT_MS;
    const controller = new AbortController();
    let failure: OrportError | undefined;
    const deadline = startDeadline(`a stream to ${host}:${port}`, { timeoutMs, signal: options.signal }, timeoutMs, (error) => {
      failure = error;
      controller.abort(error);
    });
    const wait = { signal: controller.signal, timeoutMs };
    const avoid: string[] = [];
    const attempts = Math.max(1, options.attempts ?? DEFAULT_CONNECT_ATTEMPTS);
    let last: OrportError | undefined;
    try {
      for (let attempt = 0; attempt < attempts; attempt++) {
        let entry = this.pick(port, options.isolation, avoid);
        try {
          entry ??= await this.add(port, avoid, wait);
        } catch (err) {
          // No other exit to try: the refusal we had is the answer.
          if (last && !failure && !(err instanceof AbortError)) throw last;
          throw err;
        }
        this.claim(entry, options.isolation);
        const exit = entry.exit;
        try {
          const stream = await entry.circuit.openStream(host, port, {
            signal: controller.signal,
            // tor: 10 s for the first two tries, 15 s after (connection_edge.c compute_retry_timeout).
            timeoutMs: Math.min(timeoutMs, options.streamTimeoutMs ?? (attempt < 2 ? 10_000 : 15_000)),
            optimistic: options.optimistic,
            flags: policyAllows(exit.exitPolicy.ipv6, port) ? 1 : 0,
          });
          this.counters.streams++;
          return stream;
        } catch (err) {
          if (failure) throw failure;
          const error = err instanceof OrportError ? err : new StreamClosedError('local', 'MISC', 1, String(err));
          const retriable =
            error instanceof TimeoutError ||
            error instanceof CircuitDestroyedError ||
            (error instanceof StreamClosedError && error.by === 'relay' && RETRIABLE.has(error.reason));
          last = error instanceof StreamClosedError && error.by === 'relay' ? new StreamClosedError('relay', error.reason, error.reasonInt, `exit ${exit.nickname} (${exit.rsa}) for ${host}:${port}`) : error;
          entry.unusable = true;
          avoid.push(exit.rsa);
          this.retireIdle();
          if (!retriable) throw last;
          this.counters.retries++;
        }
      }
      throw last!;
    } catch (err) {
      throw failure && err instanceof AbortError ? failure : err;
    } finally {
      deadline.dispose();
    }
  }

  /** A circuit for `port` (and `isolation`), reused or built: for RESOLVE and the like. */
  async circuitFor(port: number, isolation: string | undefined, wait: Required<WaitOptions>): Promise<ExitCircuit> {
    const entry = this.pick(port, isolation, []) ?? (await this.add(port, [], wait));
    this.claim(entry, isolation);
    return entry.circuit;
  }

  /** Closes every circuit. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = undefined;
    const all = this.entries.splice(0);
    await Promise.all(all.map((e) => e.circuit.close()));
  }

  private now(): number {
    return this.deps.now?.() ?? Date.now();
  }

  private dirty(entry: Entry): boolean {
    return entry.firstUsedAt !== undefined && this.now() - entry.firstUsedAt >= (this.deps.maxDirtinessMs ?? MAX_CIRCUIT_DIRTINESS_MS);
  }

  private pick(port: number, isolation: string | undefined, avoid: readonly string[]): Entry | undefined {
    this.retireIdle();
    return this.entries.find(
      (e) =>
        e.circuit.isOpen &&
        !e.unusable &&
        !this.dirty(e) &&
        (!e.assigned || e.isolation === isolation) &&
        !avoid.includes(e.exit.rsa) &&
        policyAllows(e.exit.exitPolicy.ipv4, port),
    );
  }

  private async add(port: number, avoid: readonly string[], wait: Required<WaitOptions>): Promise<Entry> {
    const circuit = await this.deps.build(port, avoid, wait);
    const exitRsa = circuit.hops[circuit.hops.length - 1]!.rsa;
    const exit = this.deps.relay(exitRsa);
    if (!exit || this.closed) {
      await circuit.close();
      throw new AbortError(`a circuit for port ${port}`, this.closed ? 'the client is closed' : `exit ${exitRsa} left the consensus`);
    }
    const entry: Entry = { circuit, exit, isolation: undefined, assigned: false, firstUsedAt: undefined, unusable: false };
    this.entries.push(entry);
    this.counters.built++;
    this.startSweeper();
    return entry;
  }

  private claim(entry: Entry, isolation: string | undefined): void {
    if (entry.firstUsedAt !== undefined) this.counters.reused++;
    entry.firstUsedAt ??= this.now();
    entry.isolation = isolation;
    entry.assigned = true;
  }

  /** Closes circuits that take no new streams and carry none; forgets closed ones. */
  private retireIdle(): void {
    for (let i = this.entries.length - 1; i >= 0; i--) {
      const e = this.entries[i]!;
      const retire = (e.unusable || this.dirty(e)) && e.circuit.streamCount === 0;
      if (e.circuit.isOpen && !retire) continue;
      this.entries.splice(i, 1);
      if (e.circuit.isOpen) {
        this.counters.retired++;
        void e.circuit.close();
      }
    }
    if (this.entries.length === 0 && this.sweeper) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }

  private startSweeper(): void {
    if (this.sweeper) return;
    this.sweeper = setInterval(() => this.retireIdle(), 30_000);
    this.sweeper.unref();
  }
}
