/**
 * client/torclient — `TorClient`: an in-process Tor client. Today it bootstraps a verified
 * view of the network (dir-spec §5): the microdesc consensus, the authorities' key
 * certificates and the microdescriptors, from the disk cache when they are still good,
 * else from the authorities or fallbacks over one-hop BEGIN_DIR circuits; then it keeps
 * the consensus fresh in the background on dir-spec §5.1's schedule, from directory
 * guards. Circuits, streams and onion services build on this view (later issues).
 *
 * Layer: thin I/O over client/dirclient and client/dircache; every document is parsed and
 * verified by the pure dir/ modules. `close()` stops every timer, request and connection.
 */
import { EventEmitter } from 'node:events';
import { randomInt } from 'node:crypto';
import { AbortError, BadArgumentError, DirectoryError, OrportError } from '../errors.js';
import { Network } from '../dir/network.js';
import { parseAuthorityCerts, verifyAuthorityCerts, type AuthorityCert } from '../dir/authcert.js';
import { verifyConsensus } from '../dir/verify.js';
import { latin1Text } from '../dir/netdoc.js';
import { parseMicrodescs, type Microdesc } from '../dir/microdesc.js';
import type { MicrodescConsensus, RouterEntry } from '../dir/consensus.js';
import { DirCache } from './dircache.js';
import { DirectoryClient, type DirClientOptions, type DirSource, type DirStats } from './dirclient.js';
import { startDeadline, type WaitOptions } from './wait.js';
import { Relay } from './relay.js';
import type { RelayCircuit } from './circuit.js';
import { defaultHandshake, type HandshakeKind } from './handshakes.js';
import { selectPath, type Path } from '../path/select.js';

/** One relay as the verified consensus and its microdescriptor describe it. */
export interface RelayInfo {
  readonly nickname: string;
  /** RSA identity fingerprint, 40 upper-case hex digits (as tor prints it). */
  readonly rsa: string;
  /** Ed25519 identity, unpadded base64 (from the microdescriptor; undefined without one). */
  readonly ed25519: string | undefined;
  readonly address: string;
  readonly orPort: number;
  readonly dirPort: number;
  /** The relay's IPv6 ORPort, if it has one (`a` line). */
  readonly ipv6: { readonly address: string; readonly port: number } | undefined;
  readonly flags: readonly string[];
  /** Consensus weight (`w Bandwidth=`), in the consensus' unit (kilobytes/s). */
  readonly bandwidth: number;
  /** Supported subprotocols (`pr`): name → version ranges as written ('1-5'). */
  readonly protocols: Readonly<Record<string, string>>;
  /** The curve25519 ntor onion key, base64 as in the microdescriptor. */
  readonly ntorOnionKey: string | undefined;
  /** Exit policy summaries (`p`, `p6`), e.g. 'accept 80,443' ('reject 1-65535' when absent). */
  readonly exitPolicy: { readonly ipv4: string; readonly ipv6: string | undefined };
  /** `family` entries (fingerprints with '$', or nicknames) and `family-ids`. */
  readonly family: readonly string[];
  readonly familyIds: readonly string[];
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
}

export interface BuildCircuitOptions extends WaitOptions {
  /** The port the exit must accept (default 80). */
  port?: number;
  /** The relays to use instead of a chosen path (guard, middle, exit). */
  path?: Path<RelayInfo>;
  /** Each hop's handshake (default: ntor v3 where the relay lists Relay=4, else ntor). */
  handshake?: HandshakeKind;
}

/** A circuit `buildCircuit` made, with the relays it goes through. */
export interface BuiltCircuit {
  readonly circuit: RelayCircuit<Relay>;
  readonly path: Path<RelayInfo>;
}

export const DEFAULT_BUILD_TIMEOUT_MS = 60_000;
export const DEFAULT_BOOTSTRAP_TIMEOUT_MS = 120_000;
export const DEFAULT_CLOCK_TOLERANCE_MS = 5 * 60_000;
/** Microdescriptors per request over BEGIN_DIR (tor routerlist.c: 500; at least 3 requests of 32). */
const MD_MAX_PER_REQUEST = 500;
const MD_MIN_PER_REQUEST = 32;
const MD_MIN_REQUESTS = 3;
/** Directory guards sampled for fetches after bootstrap (guard-spec: n-primary-dir-guards). */
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
}

export interface TorClientEvents {
  /** A newer consensus was verified and installed. */
  consensus: [ConsensusView];
  /** A background refresh failed (it is retried). */
  refreshError: [OrportError];
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
  private readonly channels = new Map<string, Promise<Relay>>();

  private constructor(
    readonly network: Network,
    private readonly options: TorClientOptions,
  ) {
    super();
    this.dir = new DirectoryClient(options.directory);
    this.cache = options.cacheDir ? new DirCache(options.cacheDir) : undefined;
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
    return { directory: this.dir.stats, fromCache: this.fromCache, consensusSource: this.consensusSource, directoryGuards: this.dirGuards.map((g) => g.name) };
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
    const channels = [...this.channels.values()];
    this.channels.clear();
    await Promise.all(channels.map((c) => c.then((r) => r.close(), () => undefined)));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  // -------------------------------------------------------------------------------
  // Circuits

  /**
   * Builds a three-hop circuit (path-spec §2.2): exit, guard and middle chosen from the
   * verified consensus (`path/select`), the guard's connection pinned to its RSA and
   * Ed25519 identities (reused for later circuits), CREATE2 to the guard, EXTEND2 to the
   * middle and the exit. Rejects with a typed error naming the hop that failed;
   * `timeoutMs` (default 60 s) and `signal` bound the whole build.
   */
  async buildCircuit(options: BuildCircuitOptions = {}): Promise<BuiltCircuit> {
    if (this.closed) throw new BadArgumentError('the client is closed');
    const view = this.consensus;
    const path =
      options.path ??
      selectPath(view.relays, {
        port: options.port,
        weights: view.bandwidthWeights,
        scale: view.params.bwweightscale,
        enforceDistinctSubnets: this.network.rules.enforceDistinctSubnets,
        useFamilyLists: view.params['use-family-lists'] !== 0,
        useFamilyIds: view.params['use-family-ids'] !== 0,
        random: Math.random,
      });
    const timeoutMs = options.timeoutMs ?? DEFAULT_BUILD_TIMEOUT_MS;
    const controller = new AbortController();
    let failure: OrportError | undefined;
    const deadline = startDeadline(`building a circuit through ${path.guard.nickname}, ${path.middle.nickname}, ${path.exit.nickname}`, { timeoutMs, signal: options.signal }, timeoutMs, (error) => {
      failure = error;
      controller.abort(error);
    });
    const wait = { signal: controller.signal, timeoutMs };
    let circuit: RelayCircuit<Relay> | undefined;
    try {
      const relay = await this.channelTo(path.guard, wait);
      circuit = await relay.createCircuit({ ...wait, handshake: options.handshake ?? defaultHandshake(path.guard), target: path.guard });
      await circuit.extend(path.middle, { ...wait, handshake: options.handshake });
      await circuit.extend(path.exit, { ...wait, handshake: options.handshake });
      return { circuit, path };
    } catch (err) {
      await circuit?.close();
      throw failure && err instanceof AbortError ? failure : err;
    } finally {
      deadline.dispose();
    }
  }

  /** The connection to `relay`, opened (pinned to its identities) or reused. */
  private channelTo(relay: RelayInfo, wait: Required<WaitOptions>): Promise<Relay> {
    const existing = this.channels.get(relay.rsa);
    if (existing) {
      return existing.then(
        (r) => (r.isAlive() ? r : this.openChannel(relay, wait)),
        () => this.openChannel(relay, wait),
      );
    }
    return this.openChannel(relay, wait);
  }

  private openChannel(relay: RelayInfo, wait: Required<WaitOptions>): Promise<Relay> {
    const opening = Relay.connect(relay.address, relay.orPort, undefined, { ...wait, identity: { rsa: relay.rsa, ed25519: relay.ed25519 } });
    this.channels.set(relay.rsa, opening);
    opening.catch(() => {
      if (this.channels.get(relay.rsa) === opening) this.channels.delete(relay.rsa);
    });
    return opening;
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
            await this.dir.fetchAny(rotated, `/tor/micro/d/${batch.join('-')}.z`, (result) => this.acceptMicrodescs(result.body, new Set(batch)), { signal });
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
   * Directory guards (guard-spec: Guard, Stable, Fast, Valid and V2Dir, bandwidth-weighted),
   * pinned to the identities the consensus lists; the authorities when there are none.
   */
  private directorySources(): DirSource[] {
    const view = this.consensus;
    const listed = new Set(view.relays.map((r) => r.rsa));
    this.dirGuards = this.dirGuards.filter((g) => listed.has(g.identity!.rsa!));
    if (this.dirGuards.length < DIR_GUARDS) {
      const taken = new Set(this.dirGuards.map((g) => g.identity!.rsa));
      const eligible = view.relays.filter(
        (r) => r.ed25519 && !taken.has(r.rsa) && ['Guard', 'Stable', 'Fast', 'Valid', 'V2Dir', 'Running'].every((f) => r.flags.includes(f)),
      );
      for (const r of weightedOrder(eligible, (x) => Math.max(1, x.bandwidth)).slice(0, DIR_GUARDS - this.dirGuards.length)) {
        this.dirGuards.push({ name: r.nickname, address: r.address, orPort: r.orPort, identity: { rsa: r.rsa, ed25519: r.ed25519 } });
      }
    }
    return this.dirGuards.length ? [...this.dirGuards, ...this.bootstrapSources()] : this.bootstrapSources();
  }
}

// ---------------------------------------------------------------------------------
// Pure helpers

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
