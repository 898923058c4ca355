/**
 * onion/keys — what an onion-service client derives from a service's identity key and the
 * consensus (rend-spec-v3 §2.1–2.2, A.2, as tor 0.4.9's hs_common.c computes it): time
 * periods (with the test-network rule), the shared random value a fetch uses (and the
 * disaster SRV), the blinded key of a period, the credential and subcredential, the HSDir
 * ring's indices (`node-idx`, `store-at-idx`) and the HSDirs responsible for a descriptor.
 *
 *   time period   tp = floor((floor(now/60) − floor(12·I/60)) / len), I = the voting
 *                 interval, len = hsdir_interval (1440 min) — on a TestingTorNetwork
 *                 floor(24·I/60), whatever hsdir_interval says
 *   blinding      h = H("Derive temporary signing key\0" | A | s | B | "key-blind" |
 *                 INT_8(tp) | INT_8(len)), clamped; A' = [h mod ℓ]·A
 *   subcredential H("subcredential" | H("credential" | A) | A')
 *   ring          node-idx = H("node-idx" | ed25519 id | SRV | INT_8(tp) | INT_8(len));
 *                 store-at-idx = H("store-at-idx" | A' | INT_8(replica) | INT_8(len) | INT_8(tp))
 *
 * Layer: onion-service client core. Pure: no I/O, and no clock — `now` is always passed
 * (tor uses the live consensus' valid-after). Hashes are Node's SHA3-256; the one point
 * multiplication is onion/point's. Which HSDir of the responsible set to ask, and the
 * 15-minute re-query rule, are the client's choice, not made here. No service-side key
 * derivation (secret keys, the store indices' second descriptor) either.
 */
import { createHash } from 'node:crypto';
import { BadArgumentError } from '../errors.js';
import { multiplyPublicKey } from './point.js';

/** tor's defaults and clamps (hs_common.h, hs_common.c). */
export const HSDIR_INTERVAL_DEFAULT_MIN = 1440;
export const HSDIR_INTERVAL_MIN_MIN = 5;
export const HSDIR_INTERVAL_MAX_MIN = 14400;
export const HSDIR_N_REPLICAS_DEFAULT = 2;
export const HSDIR_SPREAD_FETCH_DEFAULT = 3;
/** The voting interval tor assumes without a consensus (shared_random_client.c). */
export const DEFAULT_VOTING_INTERVAL_SEC = 3600;
export const TESTING_DEFAULT_VOTING_INTERVAL_SEC = 300;
/** SHARED_RANDOM_N_ROUNDS: a phase of the SRV protocol is 12 votes, a run 24. */
const SR_ROUNDS_PER_PHASE = 12;
const SR_ROUNDS_PER_RUN = 24;

const BLIND_STRING = Buffer.from('Derive temporary signing key\0', 'latin1');
/** The base point, as tor writes it (rend-spec A.2; hs_common.c `str_ed25519_basepoint`). */
const BASEPOINT_STRING = Buffer.from(
  '(15112221349535400772501151409588531511454012693041857206046113283949847762202, 46316835694926478169428394003475163141307993866256225615783033603165251855960)',
  'latin1',
);

/** What the time period depends on: the consensus' voting interval and hsdir_interval, and whether this is a test network. */
export interface TimePeriodParams {
  /** `TestingTorNetwork 1`: the period is one SRV protocol run (24 × the voting interval); hsdir_interval is ignored. */
  readonly testingNetwork?: boolean;
  /** The consensus' fresh-until − valid-after, in seconds (default 3600; 300 on a test network, tor's fallbacks). */
  readonly votingIntervalSec?: number;
  /** The consensus param `hsdir_interval`, minutes (default 1440; clamped to 5..14400 as tor does). */
  readonly hsdirIntervalMin?: number;
}

/** A time period: its number and length (both go into the hashes) and when it runs. */
export interface TimePeriod {
  readonly number: number;
  readonly lengthMinutes: number;
  /** Its first second (unix ms), and the first of the next period. */
  readonly start: Date;
  readonly end: Date;
}

function positiveInt(value: number, what: string): number {
  if (!Number.isSafeInteger(value) || value <= 0) throw new BadArgumentError(`${what} must be a positive integer, got ${value}`);
  return value;
}

function votingInterval(params: TimePeriodParams): number {
  const fallback = params.testingNetwork ? TESTING_DEFAULT_VOTING_INTERVAL_SEC : DEFAULT_VOTING_INTERVAL_SEC;
  return positiveInt(params.votingIntervalSec ?? fallback, 'the voting interval (seconds)');
}

/** The period length in minutes, as tor's `get_time_period_length`. */
export function timePeriodLength(params: TimePeriodParams = {}): number {
  if (params.testingNetwork) {
    const minutes = Math.floor((SR_ROUNDS_PER_RUN * votingInterval(params)) / 60);
    if (minutes < 1) throw new BadArgumentError(`a voting interval of ${votingInterval(params)} s makes a test network's time period shorter than a minute`);
    return minutes;
  }
  const len = params.hsdirIntervalMin ?? HSDIR_INTERVAL_DEFAULT_MIN;
  if (!Number.isInteger(len)) throw new BadArgumentError(`hsdir_interval must be an integer number of minutes, got ${len}`);
  return Math.min(HSDIR_INTERVAL_MAX_MIN, Math.max(HSDIR_INTERVAL_MIN_MIN, len));
}

/** The rotation offset in seconds: one SRV phase, 12 × the voting interval (12 h on the real network). */
export function rotationOffsetSec(params: TimePeriodParams = {}): number {
  return SR_ROUNDS_PER_PHASE * votingInterval(params);
}

function unixSeconds(now: Date | number): number {
  const ms = now instanceof Date ? now.getTime() : now;
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) throw new BadArgumentError(`now must be a Date or unix milliseconds, got ${String(now)}`);
  return Math.floor(ms / 1000);
}

/** The start (unix seconds) of period `n`: n·len·60 + the rotation offset. */
function periodStartSec(n: number, len: number, params: TimePeriodParams): number {
  return n * len * 60 + rotationOffsetSec(params);
}

/** The time period `now` (a Date or unix ms; use the live consensus' valid-after, as tor does) falls in. */
export function timePeriod(now: Date | number, params: TimePeriodParams = {}): TimePeriod {
  const len = timePeriodLength(params);
  const minutes = Math.floor(unixSeconds(now) / 60);
  const offset = Math.floor(rotationOffsetSec(params) / 60);
  if (minutes <= offset) throw new BadArgumentError(`${new Date(unixSeconds(now) * 1000).toISOString()} is before the first time period`);
  return periodByNumber(Math.floor((minutes - offset) / len), params);
}

/** Time period number `n` with these parameters. */
export function periodByNumber(n: number, params: TimePeriodParams = {}): TimePeriod {
  if (!Number.isSafeInteger(n) || n < 0) throw new BadArgumentError(`a time period number must be a non-negative integer, got ${n}`);
  const len = timePeriodLength(params);
  return { number: n, lengthMinutes: len, start: new Date(periodStartSec(n, len, params) * 1000), end: new Date(periodStartSec(n + 1, len, params) * 1000) };
}

function int8(n: number | bigint): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(n));
  return out;
}

function sha3(...parts: (Uint8Array | string)[]): Uint8Array {
  const h = createHash('sha3-256');
  for (const p of parts) h.update(typeof p === 'string' ? Buffer.from(p, 'latin1') : p);
  return new Uint8Array(h.digest());
}

function key32(key: Uint8Array, what: string): Uint8Array {
  if (!(key instanceof Uint8Array) || key.length !== 32) throw new BadArgumentError(`${what} must be 32 bytes, got ${key instanceof Uint8Array ? key.length : typeof key}`);
  return key;
}

function periodOf(period: Pick<TimePeriod, 'number' | 'lengthMinutes'>): { n: number; len: number } {
  if (!Number.isSafeInteger(period.number) || period.number < 0) throw new BadArgumentError(`a time period number must be a non-negative integer, got ${period.number}`);
  return { n: period.number, len: positiveInt(period.lengthMinutes, 'a time period length (minutes)') };
}

/** The disaster SRV of period `number` (used when the consensus lacks the SRV line): H("shared-random-disaster" | INT_8(len) | INT_8(tp)). */
export function disasterSrv(period: Pick<TimePeriod, 'number' | 'lengthMinutes'>): Uint8Array {
  const { n, len } = periodOf(period);
  return sha3('shared-random-disaster', int8(len), int8(n));
}

/** The SRV a client uses to place HSDirs on the ring for fetching, and where it came from. */
export interface FetchSrv {
  readonly value: Uint8Array;
  readonly which: 'previous' | 'current';
  /** True when the consensus lacked that line and the disaster SRV of the current period stands in. */
  readonly disaster: boolean;
}

/**
 * Which shared random value a fetch uses (tor's `node_set_hsdir_index`,
 * `hs_in_period_between_tp_and_srv`): between the start of the current SRV protocol run and
 * the start of the time period that follows it, the previous SRV; else the current one.
 * `validAfter` is the live consensus' valid-after; `previous` / `current` its
 * shared-rand-previous-value / shared-rand-current-value (undefined when absent).
 */
export function fetchSrv(
  validAfter: Date | number,
  srvs: { readonly previous: Uint8Array | undefined; readonly current: Uint8Array | undefined },
  params: TimePeriodParams = {},
): FetchSrv {
  const va = unixSeconds(validAfter);
  const interval = votingInterval(params);
  const runStart = va - (Math.floor(va / interval) % SR_ROUNDS_PER_RUN) * interval;
  const nextPeriodStart = timePeriod(runStart * 1000, params).end.getTime() / 1000;
  const which = va >= runStart && va < nextPeriodStart ? 'previous' : 'current';
  const value = which === 'previous' ? srvs.previous : srvs.current;
  if (value) return { value: key32(value, `the ${which} shared random value`), which, disaster: false };
  return { value: disasterSrv(timePeriod(va * 1000, params)), which, disaster: true };
}

/** The blinding factor h (clamped is the caller's: blindPublicKey does it): H(BLIND_STRING | A | B | N), N = "key-blind" | INT_8(tp) | INT_8(len). */
export function blindingFactor(identityKey: Uint8Array, period: Pick<TimePeriod, 'number' | 'lengthMinutes'>): Uint8Array {
  const { n, len } = periodOf(period);
  return sha3(BLIND_STRING, key32(identityKey, "the service's identity key"), BASEPOINT_STRING, 'key-blind', int8(n), int8(len));
}

/**
 * KP_hs_blind_id for a period: [clamp(h) mod ℓ]·A (rend-spec A.2). Throws a
 * BadArgumentError for an all-zero key (tor asserts) or one that is not a point.
 */
export function blindPublicKey(identityKey: Uint8Array, period: Pick<TimePeriod, 'number' | 'lengthMinutes'>): Uint8Array {
  return blindWithFactor(identityKey, blindingFactor(identityKey, period));
}

/** [clamp(factor) mod ℓ]·A for a 32-byte blinding factor (tor's ed25519_public_blind; its test vectors give raw factors). */
export function blindWithFactor(identityKey: Uint8Array, factor: Uint8Array): Uint8Array {
  key32(identityKey, "the service's identity key");
  if (identityKey.every((b) => b === 0)) throw new BadArgumentError("the service's identity key is all zero");
  const h = Uint8Array.from(key32(factor, 'the blinding factor'));
  h[0]! &= 248;
  h[31]! &= 63;
  h[31]! |= 64;
  return multiplyPublicKey(identityKey, h);
}

/** N_hs_cred = H("credential" | A). */
export function credential(identityKey: Uint8Array): Uint8Array {
  return sha3('credential', key32(identityKey, "the service's identity key"));
}

/** N_hs_subcred = H("subcredential" | N_hs_cred | A'): keys the descriptor layers and INTRODUCE1. */
export function subcredential(identityKey: Uint8Array, blindedKey: Uint8Array): Uint8Array {
  return sha3('subcredential', credential(identityKey), key32(blindedKey, 'the blinded key'));
}

/** An HSDir's place on the ring: H("node-idx" | ed25519 id | SRV | INT_8(tp) | INT_8(len)). */
export function hsDirIndex(ed25519Id: Uint8Array, srv: Uint8Array, period: Pick<TimePeriod, 'number' | 'lengthMinutes'>): Uint8Array {
  const { n, len } = periodOf(period);
  return sha3('node-idx', key32(ed25519Id, "an HSDir's Ed25519 identity"), key32(srv, 'the shared random value'), int8(n), int8(len));
}

/** A descriptor replica's place on the ring (hs_service_index): H("store-at-idx" | A' | INT_8(replica) | INT_8(len) | INT_8(tp)). */
export function hsServiceIndex(blindedKey: Uint8Array, replica: number, period: Pick<TimePeriod, 'number' | 'lengthMinutes'>): Uint8Array {
  const { n, len } = periodOf(period);
  positiveInt(replica, 'the replica number');
  return sha3('store-at-idx', key32(blindedKey, 'the blinded key'), int8(replica), int8(len), int8(n));
}

/** The HSDir request path for a blinded key: /tor/hs/3/<base64 without padding>. */
export function descriptorPath(blindedKey: Uint8Array): string {
  return `/tor/hs/3/${Buffer.from(key32(blindedKey, 'the blinded key')).toString('base64').replace(/=+$/, '')}`;
}

/** What the ring needs of a relay: its Ed25519 identity (raw or unpadded base64), flags and `pr` protocols. */
export interface HsDirCandidate {
  /** Raw 32 bytes or base64 (the microdescriptor's `id ed25519`); undefined without a microdescriptor. */
  readonly ed25519: Uint8Array | string | undefined;
  readonly flags: readonly string[];
  /** `pr` protocols: name → version ranges ('1-2'); undefined counts as supporting HSDir=2 (older consensuses). */
  readonly protocols?: Readonly<Record<string, string>>;
}

export interface ResponsibleHsDirParams {
  /** The SRV from `fetchSrv`. */
  readonly srv: Uint8Array;
  /** `hsdir_n_replicas` (default 2, clamped to 1..16). */
  readonly nReplicas?: number;
  /** `hsdir_spread_fetch` (default 3, clamped to 1..128). */
  readonly spreadFetch?: number;
}

/** Does a `pr` range list ('1-2', '2', '1,3-4') include `version`? */
export function protocolIncludes(ranges: string | undefined, version: number): boolean {
  if (ranges === undefined) return false;
  for (const part of ranges.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (m && +m[1]! <= version && version <= +(m[2] ?? m[1]!)) return true;
  }
  return false;
}

function ed25519Bytes(id: Uint8Array | string | undefined): Uint8Array | undefined {
  if (id instanceof Uint8Array) return id.length === 32 ? id : undefined;
  if (typeof id !== 'string' || !/^[A-Za-z0-9+/]{43}=?$/.test(id)) return undefined;
  const bytes = Buffer.from(id, 'base64');
  return bytes.length === 32 ? new Uint8Array(bytes) : undefined;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
}

const clamp = (v: number | undefined, dflt: number, min: number, max: number, what: string): number => {
  const x = v ?? dflt;
  if (!Number.isInteger(x)) throw new BadArgumentError(`${what} must be an integer, got ${x}`);
  return Math.min(max, Math.max(min, x));
};

/**
 * The HSDirs that hold the descriptor of `blindedKey` in `period`, as tor's client picks
 * them (hs_get_responsible_hsdirs, for fetching): the relays with the HSDir flag, HSDir=2
 * and a known Ed25519 identity, sorted by node-idx; for each replica 1..n_replicas, the
 * first `spread_fetch` from the first one at or after store-at-idx, wrapping round, skipping
 * those already taken. In that order (up to 6 by default; fewer on a small ring). The
 * client then asks one of them at random.
 */
export function responsibleHsDirs<T extends HsDirCandidate>(
  ring: readonly T[],
  blindedKey: Uint8Array,
  period: Pick<TimePeriod, 'number' | 'lengthMinutes'>,
  params: ResponsibleHsDirParams,
): T[] {
  const nReplicas = clamp(params.nReplicas, HSDIR_N_REPLICAS_DEFAULT, 1, 16, 'hsdir_n_replicas');
  const spread = clamp(params.spreadFetch, HSDIR_SPREAD_FETCH_DEFAULT, 1, 128, 'hsdir_spread_fetch');
  const nodes: { relay: T; index: Uint8Array }[] = [];
  for (const relay of ring) {
    if (!relay.flags.includes('HSDir')) continue;
    if (relay.protocols !== undefined && !protocolIncludes(relay.protocols['HSDir'], 2)) continue;
    const id = ed25519Bytes(relay.ed25519);
    if (!id) continue;
    nodes.push({ relay, index: hsDirIndex(id, params.srv, period) });
  }
  nodes.sort((a, b) => compareBytes(a.index, b.index));
  const chosen: T[] = [];
  if (nodes.length === 0) return chosen;
  const taken = new Set<number>();
  for (let replica = 1; replica <= nReplicas; replica++) {
    const target = hsServiceIndex(blindedKey, replica, period);
    // The first node whose index is ≥ target (binary search), or the first one.
    let lo = 0;
    let hi = nodes.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareBytes(nodes[mid]!.index, target) < 0) lo = mid + 1;
      else hi = mid;
    }
    const start = lo === nodes.length ? 0 : lo;
    let at = start;
    let added = 0;
    while (added < spread) {
      if (!taken.has(at)) {
        taken.add(at);
        chosen.push(nodes[at]!.relay);
        added++;
      }
      at = (at + 1) % nodes.length;
      if (at === start) break;
    }
  }
  return chosen;
}
