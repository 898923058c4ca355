/**
 * client/torclient — `TorClient`: an in-process Tor client. It bootstraps a verified view
 * of the network (dir-spec §5): the microdesc consensus, the authorities' key
 * certificates and the microdescriptors, from the disk cache when they are still good,
 * else from the authorities or fallbacks over one-hop BEGIN_DIR circuits; keeps it fresh
 * in the background on dir-spec §5.1's schedule, from the primary guards. On it:
 * circuits (`buildCircuit`: path selection, guards, one connection per relay), exit
 * streams (`connect`, `resolve`: an exit-circuit pool with isolation and tor's retry
 * rules), and the ecosystem adapters bound to this client (`fetch`, `dispatcher`,
 * `httpAgent`, `httpsAgent`, `listenSocks`).
 *
 * Layer: thin I/O over client/*, adapters/* and the pure dir/ and path/ modules.
 * `close()` stops every timer, request, server and connection.
 */
import { EventEmitter } from 'node:events';
import { randomInt } from 'node:crypto';
import { AbortError, BadArgumentError, CircuitBuildError, DirectoryError, InternalError, OrportError, ProtocolError, TimeoutError } from '../errors.js';
import { Network } from '../dir/network.js';
import { parseAuthorityCerts, verifyAuthorityCerts, type AuthorityCert } from '../dir/authcert.js';
import { verifyConsensus } from '../dir/verify.js';
import { latin1Text } from '../dir/netdoc.js';
import { parseMicrodescs, type Microdesc } from '../dir/microdesc.js';
import type { MicrodescConsensus, RouterEntry } from '../dir/consensus.js';
import type { BuildCircuitOptions, ConsensusView, RelayInfo } from './view.js';
import { DirCache } from './dircache.js';
import { DirectoryClient, type DirClientOptions, type DirSource, type DirStats } from './dirclient.js';
import { startDeadline, type WaitOptions } from './wait.js';
import { ChannelManager, type ChannelManagerOptions } from './channels.js';
import { TorCircuit } from './torcircuit.js';
import { createDispatcher, createHttpAgent, createHttpsAgent, torFetch, type TorHttpAgent, type TorHttpsAgent } from '../adapters/http.js';
import { listenSocks, type SocksServer, type SocksServerOptions } from '../adapters/socksserver.js';
import type { Agent } from 'undici';
import { ExitPool, DEFAULT_TOR_CONNECT_TIMEOUT_MS, type TorConnectOptions } from './exitpool.js';
import { OnionPool } from './onionpool.js';
import { isOnionHostname } from '../onion/address.js';
import type { TorStream } from './stream.js';
import { defaultHandshake, offersCgo, type HandshakeKind } from './handshakes.js';
import { chooseWeighted, policyAllows, positionWeight, selectRelays, type Path, type PathOptions } from '../path/select.js';
import { ConfluxCircuit } from './conflux.js';
import { GuardSet, guardParams } from '../path/guards.js';
import { congestionControlEnabled, congestionParams } from '../proto/ccparams.js';
import { supportsVersion } from '../dir/consensus.js';

export type { RelayInfo, ConsensusView, BuildCircuitOptions, CircuitSource } from './view.js';

export type BootstrapStep = 'cache' | 'consensus' | 'certificates' | 'microdescriptors' | 'done';

export interface BootstrapProgress {
  readonly step: BootstrapStep;
  /** Items done and expected in this step (documents, or microdescriptors). */
  readonly done: number;
  readonly total: number;
  readonly message: string;
}

export interface TorClientOptions extends WaitOptions {
  /** Who the directory authorities and fallbacks are (default: the public network). */
  network?: Network;
  /** Where to keep the consensus, certificates and microdescriptors between runs. */
  cacheDir?: string;
  onProgress?: (progress: BootstrapProgress) => void;
  /** How far our clock may be from the documents' validity times (default 5 min; 1 h is tor's). */
  clockToleranceMs?: number;
  /** Keep the consensus fresh in the background (default true). */
  refresh?: boolean;
  /** The clock (tests set it); default `() => new Date()`. */
  now?: () => Date;
  /** Directory-request options: per-request timeout, size caps. */
  directory?: DirClientOptions;
  /** Close a relay connection after this long without circuits (default 180-270 s, as tor). */
  channelIdleTimeoutMs?: number;
  /** How relay connections are made (tests and instrumentation; default `Relay.connect`, pinned). */
  connectRelay?: ChannelManagerOptions['connect'];
  /** Keep this many three-hop circuits (0 or 1) built ahead for port 80 (default 0). */
  preemptiveCircuits?: number;
  /** No new streams on an exit circuit first used longer ago than this (default 10 min, tor's MaxCircuitDirtiness). */
  maxCircuitDirtinessMs?: number;
  /**
   * Whether `connect` (and fetch, the agents, SOCKS) opens streams on conflux sets (prop
   * 329: two circuits to one exit, `buildConflux`), as tor 0.4.9's client does. 'auto' (the
   * default): where the consensus allows it (`cc_alg` ≠ 0, `cfx_enabled` ≠ 0) and an exit
   * for the port lists Conflux=1, falling back to one circuit when the set cannot be built;
   * true: sets only; false: single circuits.
   */
  conflux?: boolean | 'auto';
}

export interface BuildConfluxOptions extends WaitOptions {
  /** The port the exit must accept (default 80). */
  exitPort?: number;
  /** Legs (default 2, tor's cfx_num_legs_set). */
  legs?: number;
  /** Sets tried, each through another exit (default 3). */
  attempts?: number;
  /** RSA ids to avoid. */
  exclude?: readonly string[];
}

export const DEFAULT_BUILD_TIMEOUT_MS = 60_000;
export const DEFAULT_BUILD_ATTEMPTS = 3;
/** tor's cfx_num_legs_set default. */
export const DEFAULT_CONFLUX_LEGS = 2;
/** tor-spec 5.6: at most 8 RELAY_EARLY cells, so at most 8 hops for a client. */
const MAX_HOPS = 8;
export const DEFAULT_BOOTSTRAP_TIMEOUT_MS = 120_000;
export const DEFAULT_CLOCK_TOLERANCE_MS = 5 * 60_000;
/** Microdescriptors per request over BEGIN_DIR (tor routerlist.c: 500; at least 3 requests of 32). */
const MD_MAX_PER_REQUEST = 500;
const MD_MIN_PER_REQUEST = 32;
const MD_MIN_REQUESTS = 3;
/** Directory guards asked after bootstrap (guard-spec: the primary guards, n-primary-dir-guards). */
const DIR_GUARDS = 3;

/** What the client did on the network, for tests and `orport consensus --json`. */
export interface TorClientStats {
  readonly directory: DirStats;
  /** Where the current consensus came from ('cache', or the source's name). */
  readonly consensusSource: string | undefined;
  /** The directory guards chosen for fetches after bootstrap (nicknames). */
  readonly directoryGuards: readonly string[];
  /** Documents taken from the cache at the last bootstrap. */
  readonly fromCache: { consensus: boolean; certificates: number; microdescs: number };
  /** The sampled guards (guard-spec), in sample order. */
  readonly guards: readonly { nickname: string; rsa: string; primary: boolean; confirmed: boolean; reachable: boolean }[];
  /** Relay connections: open now, opened, reused, closed for being idle. */
  readonly channels: { open: number; opened: number; reused: number; idleClosed: number };
  /** Circuits built ahead and ready (`preemptiveCircuits`). */
  readonly circuitsAhead: number;
  /**
   * Exit circuits for `connect`: held now (a conflux set counts once); streams opened,
   * circuits built, reused, retries, retired; of those built, how many were conflux sets,
   * and how often a set could not be built and one circuit was used instead.
   */
  readonly exits: { circuits: number; streams: number; built: number; reused: number; retries: number; retired: number; conflux: number; confluxFallbacks: number };
  /** Rendezvous circuits for `connect` to .onion names: held now; streams opened, circuits opened, reused, descriptors fetched again. */
  readonly onions: { circuits: number; streams: number; opened: number; reused: number; descriptorRefetches: number };
}

export interface TorClientEvents {
  /** A newer consensus was verified and installed. */
  consensus: [ConsensusView];
  /** A background refresh failed (it is retried). */
  refreshError: [OrportError];
  /** Building the circuit ahead (`preemptiveCircuits`) failed; the next request builds one. */
  circuitError: [OrportError];
}

export class TorClient extends EventEmitter<TorClientEvents> {
  private view: ConsensusView | undefined;
  private certs: AuthorityCert[] = [];
  private readonly microdescs = new Map<string, Microdesc>();
  private readonly dir: DirectoryClient;
  private readonly cache: DirCache | undefined;
  private readonly lifetime = new AbortController();
  private refreshTimer: NodeJS.Timeout | undefined;
  private refreshing: Promise<void> | undefined;
  private closed = false;
  private dirGuards: DirSource[] = [];
  private consensusSource: string | undefined;
  readonly fromCache = { consensus: false, certificates: 0, microdescs: 0 };
  /** One connection per relay (by RSA id), pinned to its identities; reused by later circuits. */
  private readonly channels: ChannelManager;
  private guards = new GuardSet<RelayInfo>();
  private guardsSaving: Promise<void> | undefined;
  private prebuilt: TorCircuit | undefined;
  private readonly exits: ExitPool;
  private readonly onions: OnionPool;
  private httpDispatcher: Agent | undefined;
  private readonly agents: { http?: TorHttpAgent; https?: TorHttpsAgent } = {};
  private readonly socksServers = new Set<SocksServer>();
  private prebuilding: Promise<void> | undefined;
  private confluxBuilt = 0;
  private confluxFallbacks = 0;

  private constructor(
    readonly network: Network,
    private readonly options: TorClientOptions,
  ) {
    super();
    this.dir = new DirectoryClient(options.directory);
    this.cache = options.cacheDir ? new DirCache(options.cacheDir) : undefined;
    this.channels = new ChannelManager({ idleTimeoutMs: options.channelIdleTimeoutMs, connect: options.connectRelay });
    this.exits = new ExitPool({
      build: (port, exclude, wait) => this.buildExitCircuit(port, exclude, { signal: wait.signal, timeoutMs: Math.min(wait.timeoutMs, DEFAULT_BUILD_TIMEOUT_MS) }),
      relay: (rsa) => this.consensus.relays.find((r) => r.rsa === rsa),
      maxDirtinessMs: options.maxCircuitDirtinessMs,
    });
    this.onions = new OnionPool(this, { maxDirtinessMs: options.maxCircuitDirtinessMs });
  }

  /**
   * Bootstraps a client: resolves once it holds a verified, live consensus and the
   * microdescriptors it lists (those the caches have). Rejects with a typed error:
   * DirectoryError (verification failed everywhere, or no source answered), TimeoutError
   * (`timeoutMs`, default 120 s), AbortError.
   */
  static async create(options: TorClientOptions = {}): Promise<TorClient> {
    const network = options.network ?? Network.PUBLIC;
    if (!(network instanceof Network)) throw new BadArgumentError('options.network must be a Network (Network.fromTorrc, Network.PUBLIC)');
    const client = new TorClient(network, options);
    const timeoutMs = options.timeoutMs ?? DEFAULT_BOOTSTRAP_TIMEOUT_MS;
    const controller = new AbortController();
    let failure: OrportError | undefined;
    const deadline = startDeadline('bootstrapping the directory', { timeoutMs, signal: options.signal }, timeoutMs, (error) => {
      failure = error;
      controller.abort(error);
    });
    try {
      await client.bootstrap(controller.signal);
    } catch (err) {
      await client.close();
      throw failure && err instanceof AbortError ? failure : err;
    } finally {
      deadline.dispose();
    }
    if (options.refresh ?? true) client.scheduleRefresh();
    client.prebuild();
    return client;
  }

  /** The verified consensus. */
  get consensus(): ConsensusView {
    if (!this.view) throw new DirectoryError('E_DIR_FETCH', 'the client has no consensus (it was closed during bootstrap)');
    return this.view;
  }

  /** The verified microdescriptors with these digests (all we hold by default), as their text. */
  microdescriptorText(digests?: readonly string[]): string {
    const list = digests ? digests.map((d) => this.microdescs.get(d)).filter((m): m is Microdesc => !!m) : [...this.microdescs.values()];
    return list.map((m) => m.text).join('');
  }

  get stats(): TorClientStats {
    return {
      directory: this.dir.stats,
      fromCache: this.fromCache,
      consensusSource: this.consensusSource,
      directoryGuards: this.dirGuards.map((g) => g.name),
      guards: this.guards.sampled.map((g) => ({
        nickname: g.nickname,
        rsa: g.rsa,
        primary: this.guards.primaryGuards.includes(g.rsa),
        confirmed: g.confirmedOn !== undefined,
        reachable: this.guards.isReachable(g.rsa, this.now()),
      })),
      channels: { open: this.channels.size, ...this.channels.counters },
      circuitsAhead: this.prebuilt?.isOpen ? 1 : 0,
      exits: { circuits: this.exits.size, ...this.exits.counters, conflux: this.confluxBuilt, confluxFallbacks: this.confluxFallbacks },
      onions: { circuits: this.onions.size, streams: this.onions.counters.streams, opened: this.onions.counters.circuits, reused: this.onions.counters.reused, descriptorRefetches: this.onions.counters.descriptorRefetches },
    };
  }

  /** Stops refreshing and closes every connection. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    this.refreshTimer = undefined;
    this.lifetime.abort(new AbortError('the client', 'closed'));
    await this.refreshing?.catch(() => undefined);
    await this.dir.close();
    await Promise.all([...this.socksServers].map((s) => s.close()));
    this.agents.http?.destroy();
    this.agents.https?.destroy();
    await this.httpDispatcher?.destroy().catch(() => undefined);
    await this.exits.close();
    await this.onions.close();
    await this.prebuilding;
    await this.prebuilt?.close();
    this.prebuilt = undefined;
    await this.channels.close();
    await this.guardsSaving;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  // -------------------------------------------------------------------------------
  // Circuits

  /**
   * Builds a circuit (path-spec §2.2): by default three hops, the exit chosen for
   * `exitPort`, the guard from the guard set (guard-spec: the first primary guard that is
   * up, persisted in `cacheDir`), the middle from the rest of the verified consensus; CREATE2
   * to the guard over its shared, identity-pinned connection, then EXTEND2 hop by hop.
   * A failed attempt is retried through other relays (`attempts`, default 3; a guard that
   * failed is marked and another one taken); an explicit `path` is tried once. `timeoutMs`
   * (default 60 s) bounds each attempt, `signal` all of them. Rejects with the typed error
   * of the hop that failed (its index and nickname in the message), or a CircuitBuildError
   * listing every attempt.
   */
  async buildCircuit(options: BuildCircuitOptions = {}): Promise<TorCircuit> {
    if (this.closed) throw new BadArgumentError('the client is closed');
    const exitPort = options.exitPort ?? options.port ?? 80;
    if (options.path === undefined && (options.hops ?? 3) === 3 && options.handshake === undefined && !options.exclude?.length && options.congestionControl !== false && options.relayCrypto !== 'cgo') {
      const ready = this.takePrebuilt(exitPort);
      if (ready) return ready;
    }
    return this.build(options);
  }

  private async build(options: BuildCircuitOptions): Promise<TorCircuit> {
    const explicit = options.path === undefined ? undefined : this.resolvePath(options.path);
    const hops = explicit?.length ?? options.hops ?? 3;
    const exitPort = options.exitPort ?? options.port ?? 80;
    if (!Number.isInteger(hops) || hops < 1 || hops > MAX_HOPS) throw new BadArgumentError(`a circuit has 1 to ${MAX_HOPS} hops, not ${hops}`);
    const attempts = explicit ? 1 : (options.attempts ?? DEFAULT_BUILD_ATTEMPTS);
    const avoid = new Set<string>(options.exclude ?? []);
    const failures: { path: readonly string[]; error: OrportError }[] = [];
    for (let attempt = 0; attempt < attempts; attempt++) {
      if (options.signal?.aborted) throw new AbortError('building a circuit', options.signal.reason);
      const relays = explicit ?? this.choosePath(hops, exitPort, avoid);
      try {
        return await this.buildThrough(relays, options);
      } catch (err) {
        const failedHop = err instanceof AttemptFailed ? err.hop : 0;
        const cause = err instanceof AttemptFailed ? err.error : err;
        const error = cause instanceof OrportError ? cause : new InternalError(String(cause), { cause });
        if (error instanceof AbortError || this.closed) throw error;
        if (failedHop === 0) this.guards.markFailed(relays[0]!.rsa, this.now());
        avoid.add(relays[failedHop]!.rsa);
        failures.push({ path: relays.map((r) => r.nickname), error });
        if (attempts === 1) throw error;
      }
    }
    throw new CircuitBuildError(failures);
  }

  /** Relays named by the caller: nicknames, fingerprints or RelayInfo objects, or a `{ guard, middle, exit }` path. */
  private resolvePath(path: readonly (string | RelayInfo)[] | Path<RelayInfo>): RelayInfo[] {
    const list = Array.isArray(path) ? path : [(path as Path<RelayInfo>).guard, (path as Path<RelayInfo>).middle, (path as Path<RelayInfo>).exit];
    if (list.length < 1 || list.length > MAX_HOPS) throw new BadArgumentError(`a path has 1 to ${MAX_HOPS} relays, not ${list.length}`);
    const relays = this.consensus.relays;
    return list.map((entry, i) => {
      if (typeof entry !== 'string') return entry;
      const key = entry.replace(/^\$/, '');
      const byRsa = /^[0-9a-fA-F]{40}$/.test(key) ? relays.find((r) => r.rsa === key.toUpperCase()) : undefined;
      const byNick = byRsa ? [] : relays.filter((r) => r.nickname === entry);
      if (byNick.length > 1) throw new BadArgumentError(`path[${i}]: ${byNick.length} relays are named ${entry}; give a fingerprint`);
      const found = byRsa ?? byNick[0];
      if (!found) throw new BadArgumentError(`path[${i}]: no relay ${JSON.stringify(entry)} in the consensus of ${this.consensus.validAfter.toISOString()}`);
      return found;
    });
  }

  private choosePath(hops: number, exitPort: number, avoid: ReadonlySet<string>): RelayInfo[] {
    return selectRelays(this.consensus.relays, hops, this.pathOptions(exitPort, avoid));
  }

  /** Path selection as the consensus and the network's rules say, the guard from the guard set, avoiding `avoid`. */
  private pathOptions(port: number, avoid: ReadonlySet<string>): PathOptions<RelayInfo> {
    const view = this.consensus;
    const now = this.now();
    return {
      port,
      weights: view.bandwidthWeights,
      scale: view.params.bwweightscale,
      enforceDistinctSubnets: this.network.rules.enforceDistinctSubnets,
      useFamilyLists: view.params['use-family-lists'] !== 0,
      useFamilyIds: view.params['use-family-ids'] !== 0,
      random: Math.random,
      exclude: avoid,
      pickGuard: (allowed) => this.guards.pick({ now, random: Math.random, allowed, exclude: avoid }),
    };
  }

  /** One attempt: the guard's connection, CREATE2, then EXTEND2 per hop; errors carry the failed hop's index. */
  private async buildThrough(relays: readonly RelayInfo[], options: BuildCircuitOptions): Promise<TorCircuit> {
    const timeoutMs = options.timeoutMs ?? DEFAULT_BUILD_TIMEOUT_MS;
    const controller = new AbortController();
    let failure: OrportError | undefined;
    const names = relays.map((r) => r.nickname).join(', ');
    const deadline = startDeadline(`building a circuit through ${names}`, { timeoutMs, signal: options.signal }, timeoutMs, (error) => {
      failure = error;
      controller.abort(error);
    });
    const wait = { signal: controller.signal, timeoutMs };
    let circuit: TorCircuit | undefined;
    let hop = 0;
    try {
      const guard = relays[0]!;
      const relay = await this.channels.get(guard, wait);
      const handshake = options.handshake ?? defaultHandshake(guard);
      const started = performance.now();
      const params = this.consensus.params;
      circuit = new TorCircuit(
        await relay.createCircuit({ ...wait, handshake, target: guard, name: guard.nickname, params: { congestion: congestionParams(params), sendmeAcceptMinVersion: params.sendme_accept_min_version ?? 0 } }),
      );
      circuit.addHop(guard, handshake, performance.now() - started);
      for (hop = 1; hop < relays.length; hop++) {
        const target = relays[hop]!;
        // tor 0.4.9: congestion control with the exit, when the consensus and the exit allow it (ntor v3 carries the request).
        const cc = hop === relays.length - 1 && options.congestionControl !== false && options.handshake !== 'ntor' && this.offersCongestionControl(target);
        const cgo = cc && options.relayCrypto === 'cgo' && offersCgo(target);
        await circuit.extend(target, cc ? { ...wait, handshake: 'ntor-v3', congestionControl: { sendmeInc: congestionParams(this.consensus.params).sendmeInc }, cgo } : { ...wait, handshake: options.handshake });
      }
      this.guards.markSucceeded(guard.rsa, this.now(), Math.random);
      this.saveGuards();
      return circuit;
    } catch (err) {
      await circuit?.close();
      const at = relays[Math.min(hop, relays.length - 1)]!;
      const step = hop === 0 ? `the connection to and CREATE2 at hop #1 (${at.nickname})` : `EXTEND2 to hop #${hop + 1} (${at.nickname})`;
      // Our deadline: say which step it cut short.
      const error =
        failure instanceof TimeoutError && (err instanceof AbortError || err === failure)
          ? new TimeoutError(`${step}, building a circuit through ${names}`, timeoutMs)
          : failure && err instanceof AbortError
            ? failure
            : err;
      throw new AttemptFailed(error, hop);
    } finally {
      deadline.dispose();
    }
  }

  /**
   * Builds a conflux set (prop 329; tor's conflux_pool.c launch_new_set): `legs` (default 2)
   * three-hop circuits to one exit that lists Conflux=1 and congestion control (each leg
   * negotiates it), with guards and middles no two legs share, linked with one nonce
   * (`ConfluxCircuit.link`). Each attempt (default 3) bounds legs and link by `timeoutMs`
   * (default 60 s); a failed attempt closes its legs and the next avoids its exit. Rejects
   * with the failure's typed error, or a CircuitBuildError listing every attempt.
   */
  async buildConflux(options: BuildConfluxOptions = {}): Promise<ConfluxCircuit> {
    if (this.closed) throw new BadArgumentError('the client is closed');
    const port = options.exitPort ?? 80;
    const legCount = options.legs ?? DEFAULT_CONFLUX_LEGS;
    if (!Number.isInteger(legCount) || legCount < 2 || legCount > 8) throw new BadArgumentError(`a conflux set has 2 to 8 legs, not ${legCount}`);
    const avoid = new Set<string>(options.exclude ?? []);
    const failures: { path: readonly string[]; error: OrportError }[] = [];
    const attempts = options.attempts ?? DEFAULT_BUILD_ATTEMPTS;
    for (let attempt = 0; attempt < attempts; attempt++) {
      if (options.signal?.aborted) throw new AbortError('building a conflux set', options.signal.reason);
      const paths = this.chooseConfluxPaths(legCount, port, avoid);
      const exit = paths[0]!.at(-1)!;
      const timeoutMs = options.timeoutMs ?? DEFAULT_BUILD_TIMEOUT_MS;
      const controller = new AbortController();
      let failure: OrportError | undefined;
      const deadline = startDeadline(`building a conflux set to ${exit.nickname}`, options, timeoutMs, (error) => {
        failure = error;
        controller.abort(error);
      });
      const wait = { signal: controller.signal, timeoutMs };
      const built = await Promise.allSettled(paths.map((path) => this.build({ path, exitPort: port, ...wait })));
      const legs = built.flatMap((b) => (b.status === 'fulfilled' ? [b.value] : []));
      try {
        const failed = built.find((b): b is PromiseRejectedResult => b.status === 'rejected');
        if (failed) throw failed.reason;
        legs.forEach((leg, i) => {
          if (!leg.hops.at(-1)!.congestionControl) throw new ProtocolError(`conflux leg ${i} (circuit ${leg.id}): ${exit.nickname} did not negotiate congestion control, which conflux needs`);
        });
        return await ConfluxCircuit.link(legs, wait);
      } catch (err) {
        await Promise.all(legs.map((l) => l.close()));
        const error = failure ?? (err instanceof OrportError ? err : new InternalError(String(err), { cause: err }));
        if (error instanceof AbortError || this.closed) throw error;
        avoid.add(exit.rsa);
        failures.push({ path: paths.map((p) => p.map((r) => r.nickname).join(' → ')), error });
        if (attempts === 1) throw error;
      } finally {
        deadline.dispose();
      }
    }
    throw new CircuitBuildError(failures);
  }

  /** What `connect` opens streams on: a conflux set or one circuit, as `options.conflux` says. */
  private async buildExitCircuit(port: number, exclude: readonly string[], wait: WaitOptions): Promise<TorCircuit | ConfluxCircuit> {
    const mode = this.options.conflux ?? 'auto';
    if (mode === false || (mode === 'auto' && !this.confluxAllowed(port, exclude))) return this.buildCircuit({ exitPort: port, exclude, ...wait });
    try {
      const set = await this.buildConflux({ exitPort: port, exclude, ...(mode === 'auto' ? { attempts: 1 } : {}), ...wait });
      this.confluxBuilt++;
      return set;
    } catch (err) {
      if (mode === true) throw err;
      if (err instanceof AbortError || this.closed) throw err;
      // tor too uses an ordinary circuit when no linked set is to be had.
      this.confluxFallbacks++;
      return this.buildCircuit({ exitPort: port, exclude, ...wait });
    }
  }

  /** The consensus allows conflux (congestion control on, cfx_enabled ≠ 0: conflux_is_enabled) and some exit for `port` offers it. */
  private confluxAllowed(port: number, exclude: readonly string[]): boolean {
    const params = this.consensus.params;
    return (params.cfx_enabled ?? 1) !== 0 && congestionControlEnabled(params) && this.confluxExits(port, new Set(exclude)).length > 0;
  }

  /** Exits a conflux set to `port` may use: Conflux=1 and congestion control, the port accepted. */
  private confluxExits(port: number, avoid: ReadonlySet<string>): RelayInfo[] {
    return this.consensus.relays.filter(
      (r) => !avoid.has(r.rsa) && r.flags.includes('Exit') && !r.flags.includes('BadExit') && r.flags.includes('Running') && r.flags.includes('Valid') && r.flags.includes('Fast') && supportsVersion(r.protocols.Conflux, 1) && this.offersCongestionControl(r) && policyAllows(r.exitPolicy.ipv4, port),
    );
  }

  /** The legs' paths: one exit for all (Conflux=1, congestion control, the port), no guard or middle shared (conflux_add_*_to_exclude_list). */
  private chooseConfluxPaths(legs: number, port: number, avoid: ReadonlySet<string>): RelayInfo[][] {
    const view = this.consensus;
    const exits = this.confluxExits(port, avoid);
    const exit = chooseWeighted(exits, (r) => positionWeight(r, 'exit', view.bandwidthWeights, view.params.bwweightscale), Math.random);
    if (!exit) throw new BadArgumentError(`no exit for a conflux set accepts port ${port} (Conflux=1 and congestion control needed; ${exits.length} of ${view.relays.length} relays qualify)`);
    const used = new Set(avoid);
    const paths: RelayInfo[][] = [];
    for (let i = 0; i < legs; i++) {
      const path = selectRelays(view.relays, 3, { ...this.pathOptions(port, used), lastHop: exit });
      for (const r of path.slice(0, -1)) used.add(r.rsa);
      paths.push(path);
    }
    return paths;
  }

  /** The circuit built ahead (`preemptiveCircuits`), if it is open and its exit accepts `port`. */
  private takePrebuilt(port: number): TorCircuit | undefined {
    const ready = this.prebuilt;
    this.prebuilt = undefined;
    this.prebuild();
    const exit = ready && this.consensus.relays.find((r) => r.rsa === ready.hops[ready.hops.length - 1]!.rsa);
    if (ready?.isOpen && exit && policyAllows(exit.exitPolicy.ipv4, port)) return ready;
    void ready?.close();
    return undefined;
  }

  /** Builds one circuit ahead for port 80 (tor's predicted port at startup), when asked to. */
  private prebuild(): void {
    if (!this.options.preemptiveCircuits || this.closed || this.prebuilding) return;
    this.prebuilding = this.build({ signal: this.lifetime.signal, exitPort: 80 })
      .then(
        (circuit) => {
          if (this.closed) void circuit.close();
          else this.prebuilt = circuit;
        },
        (err: unknown) => {
          if (!this.closed) this.emit('circuitError', err instanceof OrportError ? err : new InternalError(String(err)));
        },
      )
      .finally(() => {
        this.prebuilding = undefined;
      });
  }

  /** DIGEST-streams §3.1: cc_alg ≠ 0 in the consensus, and the relay lists FlowCtrl=2 and Relay=4 (and has an Ed25519 id). */
  private offersCongestionControl(relay: RelayInfo): boolean {
    return congestionControlEnabled(this.consensus.params) && !!relay.ed25519 && supportsVersion(relay.protocols.FlowCtrl, 2) && supportsVersion(relay.protocols.Relay, 4);
  }

  /** Writes the guard state to the cache when it changed (never throws; awaited by close). */
  private saveGuards(): void {
    if (!this.cache || !this.guards.dirty) return;
    const text = JSON.stringify(this.guards.toState(), null, 1);
    const previous = this.guardsSaving ?? Promise.resolve();
    this.guardsSaving = previous.then(() => this.cache!.write('guards', text)).then(() => undefined);
  }

  // -------------------------------------------------------------------------------
  // Streams

  /**
   * A TCP-like stream to `host`:`port` through a three-hop circuit whose exit accepts the
   * port (a hostname is resolved at the exit): a circuit with the same `isolation` key is
   * reused, a fresh one built when none fits (tor's MaxCircuitDirtiness retires them for
   * new streams after 10 min). A refusal another exit may not repeat is retried elsewhere
   * (`attempts`, default 3); then the relay's reason is the error: StreamClosedError with
   * `reason` CONNECTREFUSED, EXITPOLICY, RESOLVEFAILED, … `timeoutMs` (default 120 s, tor's
   * SocksTimeout) and `signal` bound everything. A `.onion` host is an onion service
   * (rend-spec-v3): its descriptor is fetched (cached), a rendezvous circuit opened to it
   * (reused for later streams with the same `isolation`) and BEGIN sent to the service;
   * failures are OnionServiceErrors (E_ONION_DESC_NOT_FOUND, E_ONION_INTRO_FAILED, …) or
   * an OnionAddressError. A .onion name is never sent to an exit.
   */
  connect(host: string, port: number, options: TorConnectOptions = {}): Promise<TorStream> {
    if (this.closed) return Promise.reject(new BadArgumentError('the client is closed'));
    // A .onion name never goes to an exit: it is an onion service (client/onionpool), or an OnionAddressError.
    if (isOnionHostname(host)) return this.onions.connect(host, port, options);
    return this.exits.connect(host, port, options);
  }

  /**
   * The undici dispatcher whose connections are streams through this client (HTTPS by
   * TLS over them, with normal certificate checks): `fetch(url, { dispatcher })` from
   * undici, or anything that takes a dispatcher. Closed with the client.
   */
  get dispatcher(): Agent {
    this.httpDispatcher ??= createDispatcher(this);
    return this.httpDispatcher;
  }

  /** `fetch` over Tor (WHATWG Response), on `client.dispatcher`. */
  fetch(url: string | URL, init: Omit<RequestInit, 'dispatcher'> = {}): Promise<Response> {
    if (this.closed) return Promise.reject(new BadArgumentError('the client is closed'));
    return torFetch(this.dispatcher, url, init);
  }

  /** A Node `http.Agent` over Tor streams (http.get, axios, got…). */
  get httpAgent(): TorHttpAgent {
    this.agents.http ??= createHttpAgent(this, { keepAlive: true });
    return this.agents.http;
  }

  /** A Node `https.Agent` over Tor streams (TLS with normal certificate checks). */
  get httpsAgent(): TorHttpsAgent {
    this.agents.https ??= createHttpsAgent(this, { keepAlive: true });
    return this.agents.https;
  }

  /** A SOCKS5 server (loopback unless `host` says otherwise) whose streams go through this client; closed with it. */
  async listenSocks(options: SocksServerOptions = {}): Promise<SocksServer> {
    if (this.closed) throw new BadArgumentError('the client is closed');
    const server = await listenSocks(this, options);
    this.socksServers.add(server);
    return server;
  }

  /** The addresses an exit resolves `host` to (tor-spec 6.4), IPv4 first. */
  async resolve(host: string, options: WaitOptions & { isolation?: string } = {}): Promise<string[]> {
    if (this.closed) throw new BadArgumentError('the client is closed');
    // tor refuses to RESOLVE a .onion name (it would leak it to an exit): an onion service has no address.
    if (isOnionHostname(host)) throw new BadArgumentError(`${host} is an onion service name: it is not resolved (connect to it instead)`);
    const timeoutMs = options.timeoutMs ?? DEFAULT_TOR_CONNECT_TIMEOUT_MS;
    const circuit = await this.exits.circuitFor(80, options.isolation, { signal: options.signal ?? this.lifetime.signal, timeoutMs });
    return circuit.resolve(host, { signal: options.signal, timeoutMs: Math.min(timeoutMs, 10_000) });
  }

  // -------------------------------------------------------------------------------
  // Bootstrap

  private now(): Date {
    return this.options.now?.() ?? new Date();
  }

  private get tolerance(): number {
    return this.options.clockToleranceMs ?? DEFAULT_CLOCK_TOLERANCE_MS;
  }

  private progress(step: BootstrapStep, done: number, total: number, message: string): void {
    this.options.onProgress?.({ step, done, total, message });
  }

  private async bootstrap(signal: AbortSignal): Promise<void> {
    this.progress('cache', 0, 1, this.cache ? `reading the cache in ${this.cache.dir}` : 'no cache');
    if (this.cache) await this.loadCache();
    this.progress('cache', 1, 1, this.view ? 'a live consensus is cached' : 'no live consensus cached');
    const sources = this.bootstrapSources();
    if (!this.view) {
      this.progress('consensus', 0, 1, `fetching the consensus (${sources.length} sources)`);
      await this.fetchConsensus(sources, signal, 3);
      this.progress('consensus', 1, 1, `consensus of ${this.view!.validAfter.toISOString()} verified (${this.view!.signedBy.join(', ')})`);
    }
    await this.fetchMissingMicrodescs(sources, signal);
    await this.dir.close();
    this.updateGuards();
    this.progress('done', 1, 1, `${this.view!.relays.length} relays, ${this.microdescs.size} microdescriptors`);
  }

  /**
   * Authorities and fallbacks in a random order drawn by tor's weights (fallbacks 1,
   * authorities `DirAuthorityFallbackRate` when there are fallbacks; dir-spec §5.1), each
   * pinned to the RSA identity the network lists.
   */
  private bootstrapSources(): DirSource[] {
    const sources = this.network.directorySources().map((d) => ({
      weight: d.weight,
      source: { name: d.nickname ?? `fallback ${d.address}:${d.orPort}`, address: d.address, orPort: d.orPort, identity: { rsa: d.rsa } } satisfies DirSource,
    }));
    return weightedOrder(sources, (s) => s.weight).map((s) => s.source);
  }

  /** Cached documents, each verified as if downloaded; anything that fails is ignored. */
  private async loadCache(): Promise<void> {
    const cache = this.cache!;
    const now = this.now();
    const guardText = await cache.read('guards');
    if (guardText) {
      try {
        this.guards = GuardSet.fromState<RelayInfo>(JSON.parse(guardText));
      } catch (err) {
        cache.problems.push(`ignored the guard state: ${(err as Error).message}`);
      }
    }
    const certsText = await cache.read('certs');
    if (certsText) {
      this.certs = usableCerts(certsText, now, cache.problems);
      this.fromCache.certificates = this.certs.length;
    }
    const consensusText = await cache.read('consensus');
    if (consensusText) {
      try {
        this.install(consensusText, now);
        this.fromCache.consensus = true;
        this.consensusSource = 'cache';
      } catch (err) {
        cache.problems.push(`ignored the cached consensus: ${(err as Error).message}`);
      }
    }
    const mdText = await cache.read('microdescs');
    if (mdText && this.view) {
      const wanted = new Set(this.view.document.routers.map((r) => r.microdescDigest));
      try {
        for (const md of parseMicrodescs(mdText).microdescs) if (wanted.has(md.digest)) this.microdescs.set(md.digest, md);
      } catch (err) {
        cache.problems.push(`ignored the cached microdescriptors: ${(err as Error).message}`);
      }
      this.fromCache.microdescs = this.microdescs.size;
      this.rebuildView();
    }
  }

  /** Verifies `text` against our certificates and installs it as the current consensus. */
  private install(text: string, now: Date): void {
    const verified = verifyConsensus(text, this.certs, this.network, { now, toleranceMs: this.tolerance });
    if (this.view && verified.consensus.validAfter.getTime() <= this.view.validAfter.getTime()) {
      throw new DirectoryError('E_DIR_STALE', `the consensus of ${verified.consensus.validAfter.toISOString()} is not newer than ours (${this.view.validAfter.toISOString()})`);
    }
    this.view = buildView(verified.consensus, verified.signedBy, this.microdescs);
  }

  private rebuildView(): void {
    if (!this.view) return;
    this.view = buildView(this.view.document, this.view.signedBy, this.microdescs);
  }

  /** Fetches, (fetches certificates for,) verifies and installs a consensus. */
  private async fetchConsensus(sources: readonly DirSource[], signal: AbortSignal, parallel: number): Promise<void> {
    const path = this.network.consensusPath();
    await this.dir.fetchAny(
      sources,
      path,
      async (result) => {
        const text = latin1Text(result.body);
        await this.fetchCerts(text, result.source, signal);
        this.install(text, this.now());
        this.consensusSource = result.source.name;
        if (this.cache) {
          await this.cache.write('consensus', text);
          await this.cache.write('certs', this.certs.map((c) => c.text).join(''));
        }
      },
      { parallel, signal },
    );
  }

  private certsInFlight: Promise<void> | undefined;

  /**
   * Fetches the certificates `text`'s signers need that we lack, from `source` (where the
   * consensus came from). Concurrent consensus answers share one fetch.
   */
  private async fetchCerts(text: string, source: DirSource, signal: AbortSignal): Promise<void> {
    while (this.certsInFlight) await this.certsInFlight.catch(() => undefined);
    const missing = this.missingCertIdents(text);
    if (missing.length === 0) return;
    this.certsInFlight = (async () => {
      this.progress('certificates', 0, missing.length, `fetching ${missing.length} key certificates from ${source.name}`);
      const certs = await this.dir.fetch(source, `/tor/keys/fp/${missing.join('+')}.z`, { signal });
      const fresh = usableCerts(latin1Text(certs.body), this.now(), []);
      this.certs = mergeCerts(this.certs, fresh);
      this.progress('certificates', fresh.length, missing.length, `${fresh.length} key certificates verified`);
    })();
    try {
      await this.certsInFlight;
    } finally {
      this.certsInFlight = undefined;
    }
  }

  /** v3idents of configured authorities that signed `text` and whose certificate we lack. */
  private missingCertIdents(text: string): string[] {
    const have = new Set(this.certs.map((c) => `${c.fingerprint}:${c.signingKeyDigest}`));
    const configured = new Set(this.network.v3Authorities.map((a) => a.v3ident!));
    const missing = new Set<string>();
    for (const sig of signaturesOf(text)) {
      if (configured.has(sig.identity) && !have.has(`${sig.identity}:${sig.signingKeyDigest}`)) missing.add(sig.identity);
    }
    return [...missing].sort();
  }

  /** Fetches the microdescriptors the consensus lists and we lack, in batches, in parallel. */
  private async fetchMissingMicrodescs(sources: readonly DirSource[], signal: AbortSignal): Promise<void> {
    const view = this.view!;
    const missing = view.document.routers.map((r) => r.microdescDigest).filter((d) => !this.microdescs.has(d));
    const total = view.document.routers.length;
    this.progress('microdescriptors', total - missing.length, total, `${missing.length} microdescriptors to fetch`);
    if (missing.length === 0) return;
    let pending = [...new Set(missing)].sort();
    // A few rounds: what one cache lacks or sends wrong, another may have.
    for (let round = 0; round < 3 && pending.length > 0; round++) {
      const batches = splitBatches(pending);
      const order = shuffle([...sources]);
      await Promise.all(
        batches.map(async (batch, i) => {
          const rotated = [...order.slice(i % order.length), ...order.slice(0, i % order.length)];
          try {
            await this.dir.fetchAny(rotated, `/tor/micro/d/${batch.join('-')}.z`, (result) => this.acceptMicrodescs(result.body, new Set(batch)), { signal, onFailure: (source) => this.sourceFailed(source) });
          } catch (err) {
            if (signal.aborted) throw err;
          }
          this.progress('microdescriptors', total - this.countMissing(), total, `${this.microdescs.size} microdescriptors`);
        }),
      );
      pending = pending.filter((d) => !this.microdescs.has(d));
    }
    this.rebuildView();
    if (this.cache) await this.cache.write('microdescs', [...this.microdescs.values()].map((m) => m.text).join(''));
  }

  private countMissing(): number {
    return this.view!.document.routers.filter((r) => !this.microdescs.has(r.microdescDigest)).length;
  }

  /** Keeps the microdescriptors we asked for whose digest matches; the rest is dropped (dir-spec §5.2). */
  private acceptMicrodescs(body: Uint8Array, asked: ReadonlySet<string>): number {
    const parsed = parseMicrodescs(latin1Text(body));
    let kept = 0;
    for (const md of parsed.microdescs) {
      if (!asked.has(md.digest)) continue;
      this.microdescs.set(md.digest, md);
      kept++;
    }
    if (kept === 0) throw new DirectoryError('E_DIR_DIGEST', `none of the ${parsed.microdescs.length} microdescriptors sent has a digest we asked for`);
    return kept;
  }

  // -------------------------------------------------------------------------------
  // Refresh (dir-spec §5.1)

  /** When to fetch the next consensus: tor's formula for a client holding a live one. */
  refreshTime(): Date {
    const { validAfter, freshUntil, validUntil } = this.consensus;
    return refreshTimeFor(validAfter, freshUntil, validUntil, this.now(), (n) => randomInt(0, Math.max(1, n)));
  }

  private scheduleRefresh(delayMs?: number): void {
    if (this.closed) return;
    const ms = delayMs ?? Math.max(0, this.refreshTime().getTime() - this.now().getTime());
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = undefined;
      this.refreshing = this.refresh().finally(() => {
        this.refreshing = undefined;
      });
    }, Math.min(ms, 2 ** 31 - 1));
    this.refreshTimer.unref();
  }

  private backoffMs = 0;

  /** Fetches a newer consensus (and what it needs) from directory guards; retries with backoff. */
  private async refresh(): Promise<void> {
    const signal = this.lifetime.signal;
    try {
      const sources = this.directorySources();
      await this.fetchConsensus(sources, signal, 1);
      await this.fetchMissingMicrodescs(sources, signal);
      await this.dir.close();
      this.updateGuards();
      this.backoffMs = 0;
      this.emit('consensus', this.consensus);
      this.scheduleRefresh();
    } catch (err) {
      await this.dir.close();
      if (this.closed) return;
      const error = err instanceof OrportError ? err : new DirectoryError('E_DIR_FETCH', String(err));
      this.emit('refreshError', error);
      // Decorrelated jitter (dir-spec §5.5), from 1 s up to the consensus' interval.
      const cap = Math.max(1000, this.consensus.freshUntil.getTime() - this.consensus.validAfter.getTime());
      this.backoffMs = Math.min(cap, randomInt(1000, Math.max(1001, this.backoffMs * 3 + 1)));
      this.scheduleRefresh(this.backoffMs);
    }
  }

  /**
   * The primary guards (guard-spec §4.6: the same sample, V2Dir required), those up first,
   * in a random order, pinned to the identities the consensus lists; then the bootstrap
   * sources, in case none answers.
   */
  private directorySources(): DirSource[] {
    const now = this.now();
    const picked = new Set<string>();
    this.dirGuards = [];
    for (let i = 0; i < DIR_GUARDS; i++) {
      const g = this.guards.pick({ now, random: Math.random, directory: true, exclude: picked });
      if (!g) break;
      picked.add(g.rsa);
      this.dirGuards.push({ name: g.nickname, address: g.address, orPort: g.orPort, identity: { rsa: g.rsa, ed25519: g.ed25519 } });
    }
    return [...this.dirGuards, ...this.bootstrapSources()];
  }

  /** A directory guard failed a fetch: mark it (guard-spec §4.8), so the next fetch asks another. */
  private sourceFailed(source: DirSource): void {
    if (this.dirGuards.includes(source)) this.guards.markFailed(source.identity!.rsa!, this.now());
  }

  /** A new consensus (and its microdescriptors): the guard set follows it (guard-spec §4.3-4.6). */
  private updateGuards(): void {
    const view = this.consensus;
    this.guards.update({ relays: view.relays, weights: view.bandwidthWeights, scale: view.params.bwweightscale, params: guardParams(view.params), now: this.now(), random: Math.random });
    this.saveGuards();
  }
}

// ---------------------------------------------------------------------------------
// Pure helpers

/** buildThrough's failure: the error, and the index of the hop being added when it came (never leaves build()). */
class AttemptFailed {
  constructor(
    readonly error: unknown,
    readonly hop: number,
  ) {}
}

/** dir-spec §5.1 as tor computes it (networkstatus.c): a random time in the last part of the consensus' life. */
export function refreshTimeFor(validAfter: Date, freshUntil: Date, validUntil: Date, now: Date, randomBelow: (n: number) => number): Date {
  const va = validAfter.getTime();
  const fu = freshUntil.getTime();
  const vu = validUntil.getTime();
  if (now.getTime() > vu) return now;
  const interval = fu - va;
  let start = fu + (interval * 3) / 4;
  const dl = Math.max(1000, ((vu - start) * 7) / 8);
  if (start + dl >= vu) start = vu - dl - 1000;
  return new Date(Math.max(now.getTime(), start + randomBelow(Math.floor(dl))));
}

/** Splits digests into requests as tor does: ≤ 500 each, at least 3 requests of ≥ 32 when there are enough. */
export function splitBatches<T>(items: readonly T[]): T[][] {
  if (items.length === 0) return [];
  const byMax = Math.ceil(items.length / MD_MAX_PER_REQUEST);
  const byMin = Math.min(MD_MIN_REQUESTS, Math.max(1, Math.floor(items.length / MD_MIN_PER_REQUEST)));
  const n = Math.max(byMax, byMin);
  const size = Math.ceil(items.length / n);
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

function shuffle<T>(items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = randomInt(0, i + 1);
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

/** All of `items` in a random order where each next pick is weighted by `weight` (≥ a tiny floor). */
function weightedOrder<T>(items: readonly T[], weight: (item: T) => number): T[] {
  const pool = [...items];
  const out: T[] = [];
  while (pool.length) {
    const total = pool.reduce((s, x) => s + Math.max(1e-6, weight(x)), 0);
    let x = Math.random() * total;
    let i = 0;
    for (; i < pool.length - 1; i++) {
      x -= Math.max(1e-6, weight(pool[i]!));
      if (x < 0) break;
    }
    out.push(pool.splice(i, 1)[0]!);
  }
  return out;
}

/** Certificates that parse and verify at `now`; problems are noted, never thrown. */
function usableCerts(text: string, now: Date, problems: string[]): AuthorityCert[] {
  let certs: AuthorityCert[];
  try {
    certs = parseAuthorityCerts(text);
  } catch (err) {
    problems.push(`ignored key certificates: ${(err as Error).message}`);
    return [];
  }
  const { valid, rejected } = verifyAuthorityCerts(certs, now);
  for (const r of rejected) problems.push(`ignored a key certificate: ${r.message}`);
  return valid;
}

/** Our certificates plus new ones, one per (identity, signing key). */
function mergeCerts(old: readonly AuthorityCert[], fresh: readonly AuthorityCert[]): AuthorityCert[] {
  const byKey = new Map<string, AuthorityCert>();
  for (const c of [...old, ...fresh]) byKey.set(`${c.fingerprint}:${c.signingKeyDigest}`, c);
  return [...byKey.values()];
}

/** The identity and signing-key digest of each `directory-signature` line (cheap: no parse). */
function signaturesOf(text: string): { identity: string; signingKeyDigest: string }[] {
  const out: { identity: string; signingKeyDigest: string }[] = [];
  for (const m of text.matchAll(/^directory-signature (?:\S+ )?([0-9A-Fa-f]{40}) ([0-9A-Fa-f]{40})$/gm)) {
    out.push({ identity: m[1]!.toUpperCase(), signingKeyDigest: m[2]!.toUpperCase() });
  }
  return out;
}

function buildView(document: MicrodescConsensus, signedBy: readonly string[], microdescs: ReadonlyMap<string, Microdesc>): ConsensusView {
  const relays = document.routers.map((r) => relayInfo(r, microdescs.get(r.microdescDigest)));
  return {
    validAfter: document.validAfter,
    freshUntil: document.freshUntil,
    validUntil: document.validUntil,
    signedBy,
    params: document.params,
    bandwidthWeights: document.bandwidthWeights,
    relays,
    document,
  };
}

function relayInfo(r: RouterEntry, md: Microdesc | undefined): RelayInfo {
  return {
    nickname: r.nickname,
    rsa: r.rsa,
    ed25519: md?.ed25519,
    address: r.address,
    orPort: r.orPort,
    dirPort: r.dirPort,
    ipv6: r.ipv6,
    flags: r.flags,
    bandwidth: r.bandwidth ?? 0,
    protocols: r.protocols,
    ntorOnionKey: md?.ntorOnionKey,
    exitPolicy: { ipv4: md?.policy ?? 'reject 1-65535', ipv6: md?.policy6 },
    family: md?.family ?? [],
    familyIds: md?.familyIds ?? [],
    microdescDigest: r.microdescDigest,
  };
}
