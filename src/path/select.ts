/**
 * path/select — choosing the relays of a circuit (three hops by default) from a verified consensus, as
 * tor 0.4.9 does (path-spec §2.2; circuitbuild.c, node_select.c, nodelist.c): the exit
 * first (its policy summary must accept the port; not BadExit), then the guard, then the
 * middle; each position weighted by bandwidth × the consensus' bandwidth-weights for its
 * class; no relay twice, no two in one family (declared families, family-ids, /16 and
 * IPv6 /32 unless the network relaxes it); only relays with an ntor key and Relay=2.
 *
 * Layer: pure (no I/O, no clock); randomness is injected. Guard sampling and its
 * persistence are path/guards'; here the guard comes from `pickGuard` or a weighted draw.
 */
import { BadArgumentError } from '../errors.js';
import { supportsVersion } from '../dir/consensus.js';

/** What selection reads of a relay (`TorClient`'s RelayInfo has it all). */
export interface PathRelay {
  readonly nickname: string;
  /** RSA identity fingerprint, 40 upper-case hex digits (as tor prints it). */
  readonly rsa: string;
  /** Ed25519 identity, unpadded base64 (from the microdescriptor; undefined without one). */
  readonly ed25519: string | undefined;
  readonly address: string;
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
}

export interface PathRules {
  /** Two relays in one IPv4 /16 or IPv6 /32 are one family (off on a TestingTorNetwork). */
  readonly enforceDistinctSubnets: boolean;
  /** Consensus params use-family-lists / use-family-ids (default 1). */
  readonly useFamilyLists?: boolean;
  readonly useFamilyIds?: boolean;
}

export type Position = 'guard' | 'middle' | 'exit';

/** tor's LongLivedPorts: circuits for these need Stable relays (config.c). */
export const LONG_LIVED_PORTS: ReadonlySet<number> = new Set([21, 22, 706, 1863, 5050, 5190, 5222, 5223, 6523, 6667, 6697, 8300]);

/** Does an exit policy summary (`accept 80,443` / `reject 1-1024`, dir-spec §3.8.2) allow `port`? */
export function policyAllows(summary: string | undefined, port: number): boolean {
  if (!summary) return false;
  const space = summary.indexOf(' ');
  const verb = summary.slice(0, space);
  if (verb !== 'accept' && verb !== 'reject') return false;
  let listed = false;
  for (const item of summary.slice(space + 1).split(',')) {
    const dash = item.indexOf('-');
    const lo = Number(dash < 0 ? item : item.slice(0, dash));
    const hi = dash < 0 ? lo : Number(item.slice(dash + 1));
    if (port >= lo && port <= hi) {
      listed = true;
      break;
    }
  }
  return verb === 'accept' ? listed : !listed;
}

/** Same /16 (IPv4) or /32 (IPv6 ORPorts) — tor's subnet rule (nodelist.c). */
function sameSubnet(a: PathRelay, b: PathRelay): boolean {
  const a4 = a.address.split('.');
  const b4 = b.address.split('.');
  if (a4[0] === b4[0] && a4[1] === b4[1]) return true;
  if (a.ipv6 && b.ipv6) {
    const head = (ip: string) => ip.toLowerCase().split(':').slice(0, 2).map((g) => g.padStart(4, '0')).join(':');
    if (head(a.ipv6.address) === head(b.ipv6.address)) return true;
  }
  return false;
}

function lists(relay: PathRelay, other: PathRelay): boolean {
  return relay.family.some((f) => (f.startsWith('$') ? f.slice(1, 41).toUpperCase() === other.rsa : f.toLowerCase() === other.nickname.toLowerCase()));
}

/** tor's `nodes_in_same_family`: the same relay, one subnet, mutual `family` lines, or a shared family-id. */
export function sameFamily(a: PathRelay, b: PathRelay, rules: PathRules): boolean {
  if (a.rsa === b.rsa) return true;
  if (rules.enforceDistinctSubnets && sameSubnet(a, b)) return true;
  if ((rules.useFamilyLists ?? true) && lists(a, b) && lists(b, a)) return true;
  if ((rules.useFamilyIds ?? true) && a.familyIds.some((id) => b.familyIds.includes(id))) return true;
  return false;
}

const RULE_WEIGHTS: Record<Position, Record<'g' | 'm' | 'e' | 'd', string>> = {
  guard: { g: 'Wgg', m: 'Wgm', e: '', d: 'Wgd' },
  middle: { g: 'Wmg', m: 'Wmm', e: 'Wme', d: 'Wmd' },
  exit: { g: 'Weg', m: 'Wem', e: 'Wee', d: 'Wed' },
};
const DIR_FACTOR: Record<'g' | 'm' | 'e' | 'd', string> = { g: 'Wgb', m: 'Wmb', e: 'Web', d: 'Wdb' };

/**
 * A relay's weight for a position (node_select.c `compute_weighted_bandwidths`): its
 * bandwidth (w Bandwidth × 1000; 30000 without one) × W[class] / scale, × W?b / scale when
 * it is a directory cache. With any needed weight missing, plain bandwidth.
 */
export function positionWeight(relay: PathRelay, position: Position, weights: Readonly<Record<string, number>>, scale = 10_000): number {
  const g = relay.flags.includes('Guard');
  const e = relay.flags.includes('Exit') && !relay.flags.includes('BadExit');
  const cls = g && e ? 'd' : g ? 'g' : e ? 'e' : 'm';
  const bw = Math.min(2 ** 31 - 1, relay.bandwidth * 1000);
  const key = RULE_WEIGHTS[position][cls];
  const needed = [...Object.values(RULE_WEIGHTS[position]).filter(Boolean), ...Object.values(DIR_FACTOR)];
  if (needed.some((k) => !(k in weights) || weights[k]! < 0)) return bw;
  const w = key === '' ? 0 : Math.min(scale, weights[key]!) / scale;
  const dir = relay.flags.includes('V2Dir') ? Math.min(scale, weights[DIR_FACTOR[cls]]!) / scale : 1;
  return w * dir * bw;
}

/** One of `candidates`, with probability ∝ weight; uniform when every weight is 0. */
export function chooseWeighted<T>(candidates: readonly T[], weight: (c: T) => number, random: () => number): T | undefined {
  if (candidates.length === 0) return undefined;
  const ws = candidates.map(weight);
  const total = ws.reduce((s, w) => s + w, 0);
  if (!(total > 0)) return candidates[Math.floor(random() * candidates.length)];
  let x = random() * total;
  for (let i = 0; i < candidates.length; i++) {
    x -= ws[i]!;
    if (x < 0) return candidates[i];
  }
  return candidates[candidates.length - 1];
}

/** Can this relay be a hop at all (routerlist.c `router_can_choose_node`)? */
function usable(r: PathRelay, needStable: boolean): boolean {
  return (
    !!r.ntorOnionKey &&
    supportsVersion(r.protocols.Relay, 2) &&
    r.flags.includes('Running') &&
    r.flags.includes('Valid') &&
    r.flags.includes('Fast') &&
    (!needStable || r.flags.includes('Stable'))
  );
}

export interface PathOptions<R extends PathRelay = PathRelay> extends PathRules {
  /** The port the exit must accept (default 80, tor's predicted port at startup). */
  readonly port?: number;
  readonly weights: Readonly<Record<string, number>>;
  /** Consensus `bwweightscale` (default 10000). */
  readonly scale?: number;
  /** A uniform random number in [0, 1). */
  readonly random: () => number;
  /**
   * The guard, from the guard set (path/guards), given the exit's restriction (no relay of
   * the exit's family); default: a weighted draw from every possible guard.
   */
  readonly pickGuard?: (allowed: (r: R) => boolean) => R | undefined;
  /** RSA ids not to use (relays that just failed). */
  readonly exclude?: ReadonlySet<string>;
  /**
   * The last hop, chosen by the caller instead of drawn as an exit (tor's internal
   * circuits to a chosen relay: an HSDir, an introduction point); no exit policy applies,
   * and the other hops keep out of its family. Needs at least two hops.
   */
  readonly lastHop?: R;
}

export interface Path<R extends PathRelay> {
  readonly guard: R;
  readonly middle: R;
  readonly exit: R;
}

/** Chooses exit, guard, middle (in that order) from `relays`; BadArgumentError when no path exists. */
export function selectPath<R extends PathRelay>(relays: readonly R[], options: PathOptions<R>): Path<R> {
  const [guard, middle, exit] = selectRelays(relays, 3, options) as [R, R, R];
  return { guard, middle, exit };
}

/**
 * Chooses the relays of an `hops`-hop circuit (1-8), first hop first: the exit (last hop)
 * first, then the guard, then each middle, no two the same or in one family
 * (circuitbuild.c `onion_extend_cpath`). One hop is a guard alone, with no exit rule.
 * With `lastHop` that relay ends the path instead of a drawn exit.
 */
export function selectRelays<R extends PathRelay>(relays: readonly R[], hops: number, options: PathOptions<R>): R[] {
  const port = options.port ?? 80;
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new BadArgumentError(`a port is 1-65535, not ${port}`);
  if (!Number.isInteger(hops) || hops < 1 || hops > 8) throw new BadArgumentError(`a circuit has 1 to 8 hops, not ${hops}`);
  const needStable = LONG_LIVED_PORTS.has(port);
  const weigh = (position: Position) => (r: R) => positionWeight(r, position, options.weights, options.scale);
  const pool = relays.filter((r) => usable(r, needStable) && !options.exclude?.has(r.rsa));
  const chosen: R[] = [];
  const apart = (r: R) => chosen.every((c) => c !== r && !sameFamily(r, c, options));
  let exit: R | undefined;
  if (options.lastHop) {
    if (hops < 2) throw new BadArgumentError('a circuit to a chosen last hop needs at least two hops');
    exit = options.lastHop;
    chosen.push(exit);
  } else if (hops > 1) {
    const exits = pool.filter((r) => !r.flags.includes('BadExit') && policyAllows(r.exitPolicy.ipv4, port));
    exit = chooseWeighted(exits, weigh('exit'), options.random);
    if (!exit) throw new BadArgumentError(`no usable exit accepts port ${port} (of ${relays.length} relays, ${pool.length} usable)`);
    chosen.push(exit);
  }
  const guardOk = (r: R) => ['Guard', 'Stable', 'V2Dir'].every((f) => r.flags.includes(f)) && apart(r);
  const guard = options.pickGuard ? options.pickGuard(guardOk) : chooseWeighted(pool.filter(guardOk), weigh('guard'), options.random);
  if (!guard) throw new BadArgumentError(exit ? `no usable guard outside the exit's family (exit ${exit.nickname})` : 'no usable guard');
  chosen.push(guard);
  const middles: R[] = [];
  for (let i = 0; i < hops - 2; i++) {
    const middle = chooseWeighted(pool.filter(apart), weigh('middle'), options.random);
    if (!middle) throw new BadArgumentError(`no usable middle outside the families of ${chosen.map((c) => c.nickname).join(', ')}`);
    chosen.push(middle);
    middles.push(middle);
  }
  return exit ? [guard, ...middles, exit] : [guard];
}
