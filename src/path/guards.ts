/**
 * path/guards — entry guards as tor 0.4.9 keeps them (guard-spec §4, A.1; entrynodes.c),
 * the essentials: a persisted, ordered SAMPLED set drawn by rule GUARD weights from the
 * eligible relays (Guard, Stable, Fast, Valid, V2Dir); CONFIRMED guards (first used for
 * a circuit) in confirmation order; PRIMARY guards (first confirmed, then sampled); a
 * guard for each circuit from the first reachable primaries, then the others; failures
 * marked and retried on tor's schedule; guards removed when unlisted too long or too old.
 *
 * Layer: pure (no I/O): the clock (`now`) and randomness are arguments, the state is
 * plain JSON (`toState` / `fromState`) that client/torclient persists. Not here: bridges,
 * path bias, restricted or EntryNodes selections, the "internet likely down" rule.
 */
import { chooseWeighted, positionWeight, type PathRelay } from './select.js';

const DAY = 86_400_000;
const HOUR = 3_600_000;
const MINUTE = 60_000;

/** Consensus parameters (param-spec §11, guard-spec A.5) with tor's defaults. */
export interface GuardParams {
  minFilteredSampleSize: number;
  maxSampleSize: number;
  maxSampleThresholdPercent: number;
  nPrimaryGuards: number;
  nPrimaryGuardsToUse: number;
  nPrimaryDirGuardsToUse: number;
  lifetimeDays: number;
  confirmedMinLifetimeDays: number;
  removeUnlistedAfterDays: number;
}

export const DEFAULT_GUARD_PARAMS: Readonly<GuardParams> = {
  minFilteredSampleSize: 20,
  maxSampleSize: 60,
  maxSampleThresholdPercent: 20,
  nPrimaryGuards: 3,
  nPrimaryGuardsToUse: 1,
  nPrimaryDirGuardsToUse: 3,
  lifetimeDays: 120,
  confirmedMinLifetimeDays: 60,
  removeUnlistedAfterDays: 20,
};

/** The guard parameters a consensus' `params` line sets (`guard-…`), tor's defaults for the rest. */
export function guardParams(params: Readonly<Record<string, number>>): GuardParams {
  const p = (name: string, fallback: number, min: number, max: number) => {
    const v = params[name];
    return v === undefined || !Number.isInteger(v) ? fallback : Math.min(max, Math.max(min, v));
  };
  const d = DEFAULT_GUARD_PARAMS;
  return {
    minFilteredSampleSize: p('guard-min-filtered-sample-size', d.minFilteredSampleSize, 1, 2 ** 31 - 1),
    maxSampleSize: p('guard-max-sample-size', d.maxSampleSize, 1, 2 ** 31 - 1),
    maxSampleThresholdPercent: p('guard-max-sample-threshold-percent', d.maxSampleThresholdPercent, 1, 100),
    nPrimaryGuards: p('guard-n-primary-guards', d.nPrimaryGuards, 1, 2 ** 31 - 1),
    nPrimaryGuardsToUse: p('guard-n-primary-guards-to-use', d.nPrimaryGuardsToUse, 1, 2 ** 31 - 1),
    nPrimaryDirGuardsToUse: p('guard-n-primary-dir-guards-to-use', d.nPrimaryDirGuardsToUse, 1, 2 ** 31 - 1),
    lifetimeDays: p('guard-lifetime-days', d.lifetimeDays, 1, 3650),
    confirmedMinLifetimeDays: p('guard-confirmed-min-lifetime-days', d.confirmedMinLifetimeDays, 1, 3650),
    removeUnlistedAfterDays: p('guard-remove-unlisted-guards-after-days', d.removeUnlistedAfterDays, 1, 365),
  };
}

/** One sampled guard, as persisted (tor's state file `Guard` line, as JSON). */
export interface GuardRecord {
  rsa: string;
  nickname: string;
  /** ISO times; `sampledOn` and `confirmedOn` are backdated as guard-spec A.2 says. */
  sampledOn: string;
  sampledIdx: number;
  listed: boolean;
  unlistedSince?: string;
  confirmedOn?: string;
  confirmedIdx?: number;
}

export interface GuardState {
  version: 1;
  guards: GuardRecord[];
}

/** Reachability is not persisted (tor doesn't either): every guard starts as "maybe". */
interface Reachability {
  failingSince: number;
  lastTried: number;
}

/** guard-spec A.1 (entrynodes.c `get_retry_schedule`): delay by how long it has been failing. */
export function retryDelayMs(failingForMs: number, primary: boolean): number {
  if (failingForMs < 6 * HOUR) return primary ? 10 * MINUTE : 1 * HOUR;
  if (failingForMs < 4 * DAY) return primary ? 90 * MINUTE : 4 * HOUR;
  if (failingForMs < 7 * DAY) return primary ? 4 * HOUR : 18 * HOUR;
  return primary ? 9 * HOUR : 36 * HOUR;
}

/** Can this relay be a guard at all (entrynodes.c `node_is_possible_guard`)? */
export function isPossibleGuard(r: PathRelay): boolean {
  return ['Guard', 'Stable', 'Fast', 'Valid', 'V2Dir', 'Running'].every((f) => r.flags.includes(f)) && !!r.ntorOnionKey;
}

export interface GuardUpdate<R extends PathRelay> {
  readonly relays: readonly R[];
  readonly weights: Readonly<Record<string, number>>;
  readonly scale?: number;
  readonly params?: GuardParams;
  readonly now: Date;
  /** A uniform random number in [0, 1). */
  readonly random: () => number;
}

export class GuardSet<R extends PathRelay = PathRelay> {
  private records: GuardRecord[] = [];
  private readonly reach = new Map<string, Reachability>();
  private listed = new Map<string, R>();
  private params: GuardParams = { ...DEFAULT_GUARD_PARAMS };
  private primary: string[] = [];
  /** Set when the persisted state changed since `toState()` was last asked. */
  dirty = false;

  /** Reads persisted state; anything malformed is dropped (a fresh sample replaces it). */
  static fromState<R extends PathRelay>(state: unknown): GuardSet<R> {
    const set = new GuardSet<R>();
    if (!state || typeof state !== 'object' || (state as GuardState).version !== 1 || !Array.isArray((state as GuardState).guards)) return set;
    const seen = new Set<string>();
    for (const g of (state as GuardState).guards) {
      if (!g || typeof g !== 'object' || typeof g.rsa !== 'string' || !/^[0-9A-F]{40}$/.test(g.rsa) || seen.has(g.rsa)) continue;
      if (typeof g.nickname !== 'string' || !isIsoTime(g.sampledOn) || !Number.isInteger(g.sampledIdx) || typeof g.listed !== 'boolean') continue;
      if (g.unlistedSince !== undefined && !isIsoTime(g.unlistedSince)) continue;
      const confirmed = g.confirmedOn !== undefined && isIsoTime(g.confirmedOn) && Number.isInteger(g.confirmedIdx);
      seen.add(g.rsa);
      set.records.push({
        rsa: g.rsa,
        nickname: g.nickname,
        sampledOn: g.sampledOn,
        sampledIdx: g.sampledIdx,
        listed: g.listed,
        ...(g.unlistedSince ? { unlistedSince: g.unlistedSince } : {}),
        ...(confirmed ? { confirmedOn: g.confirmedOn, confirmedIdx: g.confirmedIdx } : {}),
      });
    }
    set.records.sort((a, b) => a.sampledIdx - b.sampledIdx);
    return set;
  }

  toState(): GuardState {
    this.dirty = false;
    return { version: 1, guards: this.records.map((r) => ({ ...r })) };
  }

  /** The sampled guards, in sample order. */
  get sampled(): readonly Readonly<GuardRecord>[] {
    return this.records;
  }

  /** The primary guards (RSA ids), best first. */
  get primaryGuards(): readonly string[] {
    return this.primary;
  }

  /**
   * A new consensus (or the first): marks guards listed or not, removes those unlisted or
   * sampled too long ago (guard-spec §4.3), samples more while fewer than
   * `minFilteredSampleSize` are usable, up to the cap (§4.2), and recomputes the primaries (§4.6).
   */
  update(u: GuardUpdate<R>): void {
    const now = u.now.getTime();
    this.params = u.params ?? this.params;
    const p = this.params;
    const eligible = u.relays.filter(isPossibleGuard);
    this.listed = new Map(eligible.map((r) => [r.rsa, r]));
    for (const g of this.records) {
      const listed = this.listed.has(g.rsa);
      if (listed !== g.listed) {
        g.listed = listed;
        if (listed) delete g.unlistedSince;
        else g.unlistedSince = u.now.toISOString();
        this.dirty = true;
      }
    }
    const before = this.records.length;
    this.records = this.records.filter((g) => {
      if (!g.listed && g.unlistedSince && now - Date.parse(g.unlistedSince) > p.removeUnlistedAfterDays * DAY) return false;
      const old = now - Date.parse(g.sampledOn) > p.lifetimeDays * DAY;
      const confirmedLongAgo = !g.confirmedOn || now - Date.parse(g.confirmedOn) > p.confirmedMinLifetimeDays * DAY;
      return !(old && confirmedLongAgo);
    });
    if (this.records.length !== before) this.dirty = true;
    for (const rsa of this.reach.keys()) if (!this.records.some((g) => g.rsa === rsa)) this.reach.delete(rsa);

    const cap = Math.max(p.minFilteredSampleSize, Math.min(p.maxSampleSize, Math.floor((eligible.length * p.maxSampleThresholdPercent) / 100)));
    const inSample = new Set(this.records.map((g) => g.rsa));
    let candidates = eligible.filter((r) => !inSample.has(r.rsa));
    let nextIdx = this.records.reduce((m, g) => Math.max(m, g.sampledIdx + 1), 0);
    while (this.records.length < cap && this.usableFilteredCount(now) < p.minFilteredSampleSize && candidates.length) {
      const pick = chooseWeighted(candidates, (r) => positionWeight(r, 'guard', u.weights, u.scale), u.random)!;
      candidates = candidates.filter((r) => r !== pick);
      this.records.push({
        rsa: pick.rsa,
        nickname: pick.nickname,
        sampledOn: backdate(now, (p.lifetimeDays * DAY) / 10, u.random),
        sampledIdx: nextIdx++,
        listed: true,
      });
      this.dirty = true;
    }
    this.computePrimary();
  }

  /**
   * The guard for a new circuit (guard-spec §4.9): uniformly among the first
   * `nPrimaryGuardsToUse` (`nPrimaryDirGuardsToUse` for directory fetches) primaries that are
   * not known unreachable and that `allowed` accepts (the exit's restriction); else the
   * first usable confirmed guard, then sampled one. When every guard is unreachable and
   * none is due for a retry, all are marked "maybe" (§4.8) and the choice is made again.
   */
  pick(options: { now: Date; random: () => number; allowed?: (r: R) => boolean; directory?: boolean; exclude?: ReadonlySet<string> }): R | undefined {
    const now = options.now.getTime();
    const ok = (rsa: string) => {
      const r = this.listed.get(rsa);
      return !!r && !options.exclude?.has(rsa) && (options.allowed?.(r) ?? true) ? r : undefined;
    };
    for (let round = 0; round < 2; round++) {
      const n = options.directory ? this.params.nPrimaryDirGuardsToUse : this.params.nPrimaryGuardsToUse;
      const primaries = this.primary.map((rsa) => (this.reachable(rsa, true, now) ? ok(rsa) : undefined)).filter((r): r is R => !!r);
      const first = primaries.slice(0, n);
      if (first.length) return first[Math.floor(options.random() * first.length)];
      const others = [...this.confirmed(), ...this.records.filter((g) => g.confirmedOn === undefined)];
      for (const g of others) {
        if (this.primary.includes(g.rsa) || !this.reachable(g.rsa, false, now)) continue;
        const r = ok(g.rsa);
        if (r) return r;
      }
      // §4.8: nothing usable: every guard is "maybe" again.
      if (this.reach.size === 0) break;
      this.reach.clear();
    }
    return undefined;
  }

  /** A connection or circuit through `rsa` failed at the first hop (§4.8). */
  markFailed(rsa: string, now: Date): void {
    if (!this.records.some((g) => g.rsa === rsa)) return;
    const t = now.getTime();
    const r = this.reach.get(rsa);
    this.reach.set(rsa, { failingSince: r?.failingSince ?? t, lastTried: t });
  }

  /** A circuit through `rsa` was built: it is reachable, and confirmed if it wasn't (§4.3). */
  markSucceeded(rsa: string, now: Date, random: () => number): void {
    const g = this.records.find((x) => x.rsa === rsa);
    if (!g) return;
    this.reach.delete(rsa);
    if (g.confirmedOn === undefined) {
      g.confirmedOn = backdate(now.getTime(), (this.params.lifetimeDays * DAY) / 10, random);
      g.confirmedIdx = this.records.reduce((m, x) => Math.max(m, (x.confirmedIdx ?? -1) + 1), 0);
      this.dirty = true;
      this.computePrimary();
    }
  }

  /** Is `rsa` believed reachable (never failed, or due for a retry)? */
  isReachable(rsa: string, now: Date): boolean {
    return this.reachable(rsa, this.primary.includes(rsa), now.getTime());
  }

  private reachable(rsa: string, primary: boolean, now: number): boolean {
    const r = this.reach.get(rsa);
    return !r || now - r.lastTried >= retryDelayMs(now - r.failingSince, primary);
  }

  private confirmed(): GuardRecord[] {
    return this.records.filter((g) => g.confirmedOn !== undefined).sort((a, b) => a.confirmedIdx! - b.confirmedIdx!);
  }

  private usableFilteredCount(now: number): number {
    return this.records.filter((g) => this.listed.has(g.rsa) && this.reachable(g.rsa, false, now)).length;
  }

  /** §4.6: the first confirmed, then sampled, guards that are listed; an old primary keeps its place unless displaced. */
  private computePrimary(): void {
    const filtered = (g: GuardRecord) => this.listed.has(g.rsa);
    const order = [...this.confirmed().filter(filtered), ...this.records.filter((g) => g.confirmedOn === undefined && filtered(g))];
    this.primary = order.slice(0, this.params.nPrimaryGuards).map((g) => g.rsa);
  }
}

function isIsoTime(value: unknown): value is string {
  return typeof value === 'string' && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/.test(value) && Number.isFinite(Date.parse(value));
}

/** guard-spec A.2: a time up to `maxMs` before `now`, uniformly (whole seconds). */
function backdate(now: number, maxMs: number, random: () => number): string {
  const t = now - Math.floor(random() * maxMs);
  return new Date(t - (t % 1000)).toISOString();
}
