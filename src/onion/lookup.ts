/**
 * onion/lookup — fetching an onion service's descriptor as tor 0.4.9's client does
 * (rend-spec-v3 §2.2; hs_client.c `fetch_v3_desc`, `pick_hsdir_v3`; DIGEST-onion §2–§5):
 * from the live consensus, the time period (on a TestingTorNetwork 24 × the voting
 * interval, the voting interval being fresh-until − valid-after), the SRV a fetch uses,
 * the blinded key and subcredential, the responsible HSDirs (both replicas); then, in
 * random order as tor picks them, `GET /tor/hs/3/<base64 blinded key>` over BEGIN_DIR on a
 * THREE-hop circuit ending at the HSDir (relays refuse a one-hop request: 503), until one
 * answers 200 with a descriptor that verifies and decrypts (onion/descriptor). A bad
 * descriptor is tor's BAD_DESC: the next HSDir is asked. The result is cached per client
 * for its lifetime within the time period.
 *
 * Layer: thin I/O over the pure onion/ pieces and a TorClient (its consensus and
 * buildCircuit; path/select for a path ending at the HSDir). Every wait is bounded
 * (`timeoutMs` for the whole lookup, `hsdirTimeoutMs` per HSDir) and honours `signal`.
 * Failures are OnionServiceErrors (E_ONION_DESC_NOT_FOUND when every HSDir said 404 …)
 * with what each HSDir did; a malformed address is the parser's OnionAddressError. Not
 * here: introduction, rendezvous, client authorization keys (a `descriptorCookie` can be
 * passed), the 15-minute (5 s testing) re-query exclusion across calls.
 */
import { randomBytes } from 'node:crypto';
import { AbortError, BadArgumentError, CertificateError, OnionServiceError, OrportError, TimeoutError, type OnionHsDirAttempt } from '../errors.js';
import { latin1Text } from '../dir/netdoc.js';
import { parseHttpResponse } from '../dir/http.js';
import { chooseWeighted, positionWeight, selectRelays } from '../path/select.js';
import { startDeadline } from '../client/wait.js';
import type { CircuitSource, RelayInfo } from '../client/view.js';
import { parseOnionAddress } from './address.js';
import { decodeHsDescriptor, HS_DESC_MAX_SIZE_DEFAULT, type HsDescriptor } from './descriptor.js';
import { blindPublicKey, descriptorPath, fetchSrv, responsibleHsDirs, subcredential, timePeriod, type FetchSrv, type TimePeriod, type TimePeriodParams } from './keys.js';

/** What the lookup needs of a client (a TorClient; tests may pass less): its consensus, network and buildCircuit. */
export type OnionLookupClient = CircuitSource;

/**
 * The relays of an `hops`-hop path ending at `lastHop` (an HSDir, a rendezvous point, the
 * hop before an introduction point), the others drawn as path/select draws a guard and
 * middles, out of its family (tor's internal circuits to a chosen relay).
 */
export function pathEndingAt(client: Pick<CircuitSource, 'consensus' | 'network'>, lastHop: RelayInfo, hops: number, random: () => number, exclude?: ReadonlySet<string>): RelayInfo[] {
  const view = client.consensus;
  return selectRelays(view.relays, hops, {
    weights: view.bandwidthWeights,
    scale: view.params.bwweightscale,
    enforceDistinctSubnets: client.network.rules.enforceDistinctSubnets,
    useFamilyLists: view.params['use-family-lists'] !== 0,
    useFamilyIds: view.params['use-family-ids'] !== 0,
    random,
    exclude,
    lastHop,
  });
}

/**
 * A relay drawn as tor draws a middle (bandwidth-weighted for the middle position) among
 * the running, valid, fast relays with an ntor key that `accept` allows and `exclude` does
 * not name: a rendezvous point (tor's pick_rendezvous_point: HSRend=2), or the hop before
 * an introduction point. Undefined when none is left.
 */
export function chooseMiddleRelay(client: Pick<CircuitSource, 'consensus'>, accept: (relay: RelayInfo) => boolean, random: () => number, exclude?: ReadonlySet<string>): RelayInfo | undefined {
  const view = client.consensus;
  const pool = view.relays.filter((r) => ['Running', 'Valid', 'Fast'].every((f) => r.flags.includes(f)) && !!r.ntorOnionKey && !exclude?.has(r.rsa) && accept(r));
  return chooseWeighted(pool, (r) => positionWeight(r, 'middle', view.bandwidthWeights, view.params.bwweightscale), random);
}

export const DEFAULT_ONION_LOOKUP_TIMEOUT_MS = 120_000;
export const DEFAULT_HSDIR_TIMEOUT_MS = 30_000;
/** Hops of the circuit to an HSDir (C tor uses 4 for C_HSDIR_GET; ≥ 2 is what the HSDir checks). */
export const HSDIR_CIRCUIT_HOPS = 3;
/** Room for the HTTP header around the largest descriptor. */
const HTTP_HEADER_ROOM = 4096;

export interface FetchOnionDescriptorOptions {
  /** Bound on the whole lookup (default 120 s). */
  readonly timeoutMs?: number;
  /** Bound on one HSDir: circuit and request (default 30 s). */
  readonly hsdirTimeoutMs?: number;
  readonly signal?: AbortSignal;
  /** When to judge certificates and the cache (default: the clock). */
  readonly now?: () => Date;
  /** Skip the cache (the fetched descriptor is still cached). */
  readonly refresh?: boolean;
  /** For a service with client authorization: the 16-byte descriptor cookie. */
  readonly descriptorCookie?: Uint8Array;
  /** Randomness for the HSDir order and the path (default: crypto). */
  readonly random?: () => number;
}

/** Everything a client derived for the lookup, and the verified descriptor. */
export interface OnionDescriptorResult {
  /** The canonical address (`<56 chars>.onion`). */
  readonly address: string;
  readonly identityKey: Uint8Array;
  readonly period: TimePeriod;
  readonly srv: FetchSrv;
  readonly blindedKey: Uint8Array;
  readonly subcredential: Uint8Array;
  /** The descriptor path asked for: /tor/hs/3/<base64 blinded key>. */
  readonly path: string;
  /** The responsible HSDirs in ring order (replica 1's, then replica 2's). */
  readonly responsible: readonly RelayInfo[];
  /** The HSDir that gave the descriptor. */
  readonly hsdir: RelayInfo;
  readonly descriptor: HsDescriptor;
  /** The descriptor as the HSDir sent it (latin1). */
  readonly text: string;
  readonly fetchedAt: Date;
  /**
   * When the cache drops it by the clock: fetch time + descriptor-lifetime or the signing
   * cert's expiry, whichever comes first. It is dropped sooner when the client's consensus
   * enters another time period (consensus time, as tor: the blinded key and `path` change),
   * so a lookup that ends just after the period's wall-clock end still caches.
   */
  readonly expiresAt: Date;
  /** What each HSDir asked did. */
  readonly attempts: readonly OnionHsDirAttempt[];
  readonly fromCache: boolean;
}

/** What the live consensus says about the ring, for an address (pure; exported for tests and tools). */
export interface OnionRingView {
  readonly period: TimePeriod;
  readonly srv: FetchSrv;
  readonly params: TimePeriodParams;
  readonly nReplicas: number | undefined;
  readonly spreadFetch: number | undefined;
  readonly maxDescriptorSize: number;
}

/** The time-period parameters and ring params of a client's consensus, as tor reads them. */
export function onionRingView(client: Pick<OnionLookupClient, 'consensus' | 'network'>): OnionRingView {
  const view = client.consensus;
  const votingIntervalSec = Math.round((view.freshUntil.getTime() - view.validAfter.getTime()) / 1000);
  const params: TimePeriodParams = { testingNetwork: client.network.testing, votingIntervalSec, hsdirIntervalMin: view.params.hsdir_interval };
  const period = timePeriod(view.validAfter, params);
  const doc = view.document;
  const srv = fetchSrv(view.validAfter, { previous: doc.sharedRandPrevious?.value, current: doc.sharedRandCurrent?.value }, params);
  return {
    period,
    srv,
    params,
    nReplicas: view.params.hsdir_n_replicas,
    spreadFetch: view.params.hsdir_spread_fetch,
    maxDescriptorSize: view.params.HSV3MaxDescriptorSize ?? HS_DESC_MAX_SIZE_DEFAULT,
  };
}

interface CacheEntry {
  readonly result: OnionDescriptorResult;
}

/** Per client: canonical address → the last good descriptor. */
const caches = new WeakMap<object, Map<string, CacheEntry>>();

/** Drops the cached descriptors of `client` (all, or one address's). */
export function clearOnionDescriptorCache(client: object, address?: string): void {
  const cache = caches.get(client);
  if (!cache) return;
  if (address === undefined) cache.clear();
  else cache.delete(parseOnionAddress(address).hostname);
}

function describe(relay: RelayInfo): string {
  return `${relay.nickname} ($${relay.rsa})`;
}

/** A shuffled copy (Fisher–Yates with `random`). */
export function shuffled<T>(items: readonly T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** A uniform number in [0, 1) from 48 random bits. */
export const cryptoRandom = (): number => randomBytes(6).readUIntBE(0, 6) / 2 ** 48;

/**
 * Fetches, verifies and decrypts the descriptor of `address` (see the file header).
 * Resolves with the descriptor and what was derived; rejects with an OnionAddressError
 * (not a v3 address), an OnionServiceError (E_ONION_DESC_NOT_FOUND: every responsible
 * HSDir answered 404; E_ONION_DESC_INVALID: descriptors came and none held, the last
 * check's error as `cause`; E_ONION_CLIENT_AUTH; E_ONION_NO_HSDIRS; E_ONION_DESC_FETCH:
 * no HSDir could be asked), a TimeoutError (`timeoutMs`) or an AbortError (`signal`).
 */
export async function fetchOnionDescriptor(client: OnionLookupClient, address: string, options: FetchOnionDescriptorOptions = {}): Promise<OnionDescriptorResult> {
  const onion = parseOnionAddress(address);
  const now = options.now ?? (() => new Date());
  const random = options.random ?? cryptoRandom;
  const hsdirTimeoutMs = options.hsdirTimeoutMs ?? DEFAULT_HSDIR_TIMEOUT_MS;
  if (!(hsdirTimeoutMs > 0 && Number.isFinite(hsdirTimeoutMs))) throw new BadArgumentError(`hsdirTimeoutMs must be a positive number of milliseconds, not ${hsdirTimeoutMs}`);
  if (options.signal?.aborted) throw new AbortError(`fetching the descriptor of ${onion.hostname}`, options.signal.reason);

  const ring = onionRingView(client);
  const blindedKey = blindPublicKey(onion.publicKey, ring.period);
  const subcred = subcredential(onion.publicKey, blindedKey);
  const path = descriptorPath(blindedKey);
  const cacheKey = onion.hostname;
  let cache = caches.get(client);
  if (!cache) caches.set(client, (cache = new Map()));
  const cached = cache.get(cacheKey)?.result;
  if (cached && !options.refresh && cached.path === path && cached.expiresAt.getTime() > now().getTime()) return { ...cached, fromCache: true };
  if (cached && cached.expiresAt.getTime() <= now().getTime()) cache.delete(cacheKey);

  const responsible = responsibleHsDirs(client.consensus.relays, blindedKey, ring.period, { srv: ring.srv.value, nReplicas: ring.nReplicas, spreadFetch: ring.spreadFetch });
  if (responsible.length === 0) {
    throw new OnionServiceError('E_ONION_NO_HSDIRS', onion.hostname, `no relay of the consensus of ${client.consensus.validAfter.toISOString()} can be an HSDir (HSDir flag, HSDir=2, an Ed25519 id) for ${onion.hostname}`);
  }

  // The whole lookup's deadline; each HSDir gets its own, inside it.
  const controller = new AbortController();
  let failure: OrportError | undefined;
  const what = `fetching the descriptor of ${onion.hostname}`;
  const deadline = startDeadline(what, { timeoutMs: options.timeoutMs, signal: options.signal }, DEFAULT_ONION_LOOKUP_TIMEOUT_MS, (error) => {
    failure = error;
    controller.abort(error);
  });
  const attempts: OnionHsDirAttempt[] = [];
  try {
    for (const hsdir of shuffled(responsible, random)) {
      if (controller.signal.aborted) break;
      const outcome = await askHsDir(client, hsdir, path, {
        signal: controller.signal,
        timeoutMs: hsdirTimeoutMs,
        random,
        maxDescriptorSize: ring.maxDescriptorSize,
        decode: (text) => decodeHsDescriptor(text, { blindedKey, subcredential: subcred, now: now(), maxSize: ring.maxDescriptorSize, descriptorCookie: options.descriptorCookie }),
      });
      attempts.push(outcome.attempt);
      if (outcome.found) {
        const fetchedAt = now();
        const { descriptor, text } = outcome.found;
        // Wall-clock expiry: lifetime and signing cert. The period's end is consensus time, as
        // tor's cached_client_descriptor_has_expired (hs_cache.c) compares it with the live
        // consensus' valid-after: a new period changes the blinded key and so `path`.
        const expiry = Math.min(fetchedAt.getTime() + descriptor.outer.lifetimeMinutes * 60_000, descriptor.outer.signingKeyCert.expires.getTime());
        const result: OnionDescriptorResult = {
          address: onion.hostname,
          identityKey: onion.publicKey,
          period: ring.period,
          srv: ring.srv,
          blindedKey,
          subcredential: subcred,
          path,
          responsible,
          hsdir,
          descriptor,
          text,
          fetchedAt,
          expiresAt: new Date(expiry),
          attempts,
          fromCache: false,
        };
        cache.set(cacheKey, { result });
        return result;
      }
    }
  } catch (err) {
    if (!failure) throw err;
  } finally {
    deadline.dispose();
  }
  if (failure) {
    throw failure instanceof TimeoutError
      ? new TimeoutError(`${what} (${attempts.length} of ${responsible.length} HSDirs asked: ${summary(attempts)})`, failure.timeoutMs)
      : failure;
  }
  throw lookupError(onion.hostname, path, responsible.length, attempts);
}

function summary(attempts: readonly OnionHsDirAttempt[]): string {
  return attempts.map((a) => `${a.hsdir} ${a.outcome}${a.error ? ` (${a.error.message})` : ''}`).join('; ') || 'none';
}

/** The error once every responsible HSDir was asked: tor's order of reasons. */
function lookupError(address: string, path: string, total: number, attempts: readonly OnionHsDirAttempt[]): OnionServiceError {
  const lastError = [...attempts].reverse().find((a) => a.error)?.error;
  const details = `${attempts.length} of ${total} responsible HSDirs asked for ${path}: ${summary(attempts)}`;
  const invalid = attempts.filter((a) => a.outcome === 'invalid');
  if (invalid.some((a) => a.error instanceof CertificateError && a.error.check === 'encrypted-mac')) {
    return new OnionServiceError('E_ONION_CLIENT_AUTH', address, `the descriptor of ${address} needs client authorization (${details})`, attempts, { cause: lastError });
  }
  if (invalid.length > 0) return new OnionServiceError('E_ONION_DESC_INVALID', address, `no valid descriptor for ${address}: ${details}`, attempts, { cause: invalid[invalid.length - 1]!.error });
  if (attempts.length > 0 && attempts.every((a) => a.outcome === 'not-found')) return new OnionServiceError('E_ONION_DESC_NOT_FOUND', address, `no descriptor for ${address}: ${details}`, attempts);
  if (attempts.some((a) => a.outcome === 'not-found')) {
    return new OnionServiceError('E_ONION_DESC_NOT_FOUND', address, `no descriptor for ${address} at the HSDirs that answered: ${details}`, attempts, { cause: lastError });
  }
  return new OnionServiceError('E_ONION_DESC_FETCH', address, `no HSDir answered for ${address}: ${details}`, attempts, { cause: lastError });
}

interface AskOptions {
  readonly signal: AbortSignal;
  readonly timeoutMs: number;
  readonly random: () => number;
  readonly maxDescriptorSize: number;
  readonly decode: (text: string) => HsDescriptor;
}

/** One HSDir: a three-hop circuit ending at it, BEGIN_DIR, the GET; the circuit is closed whatever happens. */
async function askHsDir(
  client: OnionLookupClient,
  hsdir: RelayInfo,
  path: string,
  options: AskOptions,
): Promise<{ attempt: OnionHsDirAttempt; found?: { descriptor: HsDescriptor; text: string } }> {
  const name = describe(hsdir);
  const controller = new AbortController();
  let failure: OrportError | undefined;
  const deadline = startDeadline(`asking HSDir ${name} for ${path}`, { timeoutMs: options.timeoutMs, signal: options.signal }, options.timeoutMs, (error) => {
    failure = error;
    controller.abort(error);
  });
  const wait = { signal: controller.signal, timeoutMs: options.timeoutMs };
  let circuit: Awaited<ReturnType<OnionLookupClient['buildCircuit']>> | undefined;
  try {
    circuit = await client.buildCircuit({ ...wait, path: pathEndingAt(client, hsdir, HSDIR_CIRCUIT_HOPS, options.random) });
    const raw = await circuit.directory(`GET ${path} HTTP/1.0\r\n\r\n`, 1, { ...wait, maxResponseBytes: options.maxDescriptorSize + HTTP_HEADER_ROOM });
    const response = parseHttpResponse(raw, { maxBodyBytes: options.maxDescriptorSize + HTTP_HEADER_ROOM });
    if (response.statusCode === 404) return { attempt: { hsdir: name, outcome: 'not-found' } };
    if (response.statusCode !== 200) {
      return { attempt: { hsdir: name, outcome: 'failed', error: new OnionServiceError('E_ONION_DESC_FETCH', '', `HSDir ${name} answered ${response.statusCode} ${response.statusMessage}`.trim()) } };
    }
    const text = latin1Text(response.body);
    try {
      return { attempt: { hsdir: name, outcome: 'found' }, found: { descriptor: options.decode(text), text } };
    } catch (err) {
      return { attempt: { hsdir: name, outcome: 'invalid', error: err instanceof OrportError ? err : new BadArgumentError(String(err)) } };
    }
  } catch (err) {
    // The lookup's own deadline or the caller's abort ends the lookup; this HSDir's deadline only this attempt.
    if (options.signal.aborted) throw options.signal.reason instanceof OrportError ? options.signal.reason : err;
    const error = failure && err instanceof AbortError ? failure : err instanceof OrportError ? err : new BadArgumentError(String(err));
    return { attempt: { hsdir: name, outcome: 'failed', error } };
  } finally {
    deadline.dispose();
    await circuit?.close().catch(() => undefined);
  }
}
