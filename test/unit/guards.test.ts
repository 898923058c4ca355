/**
 * Entry guards (guard-spec §4, A.1, A.2; tor 0.4.9 entrynodes.c) as path/guards keeps
 * them: eligibility, the sample's size and weighting, primaries, the choice for a circuit
 * and for directory fetches, failures and tor's retry schedule, removal of unlisted and
 * old guards, the persisted state (round trip; anything malformed dropped, never thrown),
 * and the consensus parameters.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { seededRandom } from '../support/random.js';
import { DEFAULT_GUARD_PARAMS, GuardSet, guardParams, isPossibleGuard, retryDelayMs } from '../../src/path/guards.js';
import type { PathRelay } from '../../src/path/select.js';

const DAY = 86_400_000;
const NOW = new Date('2026-12-01T00:00:00Z');
const GUARD_FLAGS = ['Fast', 'Guard', 'Running', 'Stable', 'V2Dir', 'Valid'];

function relay(n: number, over: Partial<PathRelay> = {}): PathRelay {
  return {
    nickname: `r${n}`,
    rsa: n.toString(16).toUpperCase().padStart(40, '0'),
    ed25519: undefined,
    address: `10.${n >> 8}.${n & 255}.1`,
    ipv6: undefined,
    flags: GUARD_FLAGS,
    bandwidth: 1000,
    protocols: { Relay: '1-4' },
    ntorOnionKey: 'K'.repeat(43),
    exitPolicy: { ipv4: 'reject 1-65535', ipv6: undefined },
    family: [],
    familyIds: [],
    ...over,
  };
}

const rng = seededRandom;

function sampled(relays: PathRelay[], seed = 1, now = NOW): GuardSet {
  const set = new GuardSet();
  set.update({ relays, weights: {}, now, random: rng(seed) });
  return set;
}

test('eligibility is Guard, Stable, Fast, Valid, V2Dir and Running with an ntor key (entrynodes.c node_is_possible_guard)', () => {
  assert.equal(isPossibleGuard(relay(1)), true);
  for (const missing of GUARD_FLAGS) assert.equal(isPossibleGuard(relay(1, { flags: GUARD_FLAGS.filter((f) => f !== missing) })), false, missing);
  assert.equal(isPossibleGuard(relay(1, { ntorOnionKey: undefined })), false);
});

test('the sample: 20 of 100 eligible (max(20, min(60, 20%))), never an ineligible relay; a tiny network is sampled whole', () => {
  const relays = [...Array.from({ length: 100 }, (_, i) => relay(i + 1)), ...Array.from({ length: 50 }, (_, i) => relay(200 + i, { flags: ['Fast', 'Running', 'Valid'] }))];
  const set = sampled(relays);
  assert.equal(set.sampled.length, 20);
  assert.equal(new Set(set.sampled.map((g) => g.rsa)).size, 20);
  assert.ok(set.sampled.every((g) => parseInt(g.rsa, 16) <= 100));
  assert.deepEqual(set.sampled.map((g) => g.sampledIdx), Array.from({ length: 20 }, (_, i) => i));
  const tiny = sampled([relay(1), relay(2), relay(3), relay(4, { flags: ['Running'] })]);
  assert.deepEqual(tiny.sampled.map((g) => g.nickname).sort(), ['r1', 'r2', 'r3']);
  // 1000 eligible: the cap is min(60, 200) = 60, but sampling stops at 20 usable ones.
  const big = sampled(Array.from({ length: 1000 }, (_, i) => relay(i + 1)));
  assert.equal(big.sampled.length, 20);
});

test('the sample is weighted by bandwidth (rule GUARD): a relay with 20x the bandwidth is sampled first far more often', () => {
  const relays = [relay(1, { bandwidth: 20_000 }), ...Array.from({ length: 19 }, (_, i) => relay(i + 2))];
  let firstIsHeavy = 0;
  const N = 2000;
  for (let seed = 0; seed < N; seed++) if (sampled(relays, seed).sampled[0]!.rsa === relays[0]!.rsa) firstIsHeavy++;
  // Expected 20000 / (20000 + 19000) ≈ 51 %.
  assert.ok(Math.abs(firstIsHeavy / N - 20 / 39) < 0.05, `${firstIsHeavy} of ${N}`);
});

test('sampled_on is backdated by up to lifetime/10 (guard-spec A.2), in whole seconds', () => {
  const set = sampled(Array.from({ length: 30 }, (_, i) => relay(i + 1)));
  for (const g of set.sampled) {
    const t = Date.parse(g.sampledOn);
    assert.ok(t <= NOW.getTime() && t >= NOW.getTime() - 12 * DAY, g.sampledOn);
    assert.equal(t % 1000, 0);
  }
});

test('primaries: the first three in sample order; a confirmed guard goes first; one circuit guard from the first primary', () => {
  const set = sampled(Array.from({ length: 30 }, (_, i) => relay(i + 1)));
  const order = set.sampled.map((g) => g.rsa);
  assert.deepEqual(set.primaryGuards, order.slice(0, 3));
  const pick = () => set.pick({ now: NOW, random: Math.random })!.rsa;
  for (let i = 0; i < 20; i++) assert.equal(pick(), order[0], 'guard-n-primary-guards-to-use = 1');
  set.markSucceeded(order[5]!, NOW, Math.random);
  assert.deepEqual(set.primaryGuards, [order[5], order[0], order[1]]);
  assert.equal(pick(), order[5]);
  assert.equal(set.sampled.find((g) => g.rsa === order[5])!.confirmedIdx, 0);
  set.markSucceeded(order[7]!, NOW, Math.random);
  assert.deepEqual(set.primaryGuards, [order[5], order[7], order[0]], 'confirmed in confirmation order');
});

test('directory fetches spread over the first three primaries (guard-n-primary-dir-guards-to-use)', () => {
  const set = sampled(Array.from({ length: 30 }, (_, i) => relay(i + 1)));
  const seen = new Set<string>();
  const random = rng(7);
  for (let i = 0; i < 200; i++) seen.add(set.pick({ now: NOW, random, directory: true })!.rsa);
  assert.deepEqual([...seen].sort(), [...set.primaryGuards].sort());
});

test('the exit restriction: a primary the circuit may not use is skipped for the next one', () => {
  const set = sampled(Array.from({ length: 30 }, (_, i) => relay(i + 1)));
  const [p0, p1] = set.primaryGuards;
  assert.equal(set.pick({ now: NOW, random: Math.random, allowed: (r) => r.rsa !== p0 })!.rsa, p1);
  assert.equal(set.pick({ now: NOW, random: Math.random, exclude: new Set([p0!]) })!.rsa, p1);
});

test("a failed guard is skipped until tor's retry delay (10 min for a primary), then tried again", () => {
  const set = sampled(Array.from({ length: 30 }, (_, i) => relay(i + 1)));
  const [p0, p1, p2] = set.primaryGuards;
  set.markFailed(p0!, NOW);
  assert.equal(set.isReachable(p0!, NOW), false);
  assert.equal(set.pick({ now: NOW, random: Math.random })!.rsa, p1);
  const later = new Date(NOW.getTime() + 10 * 60_000);
  assert.equal(set.isReachable(p0!, later), true);
  assert.equal(set.pick({ now: later, random: Math.random })!.rsa, p0);
  // Every primary down: the first confirmed-or-sampled non-primary, in sample order.
  set.markFailed(p1!, NOW);
  set.markFailed(p2!, NOW);
  const fourth = set.sampled[3]!.rsa;
  assert.equal(set.pick({ now: NOW, random: Math.random })!.rsa, fourth);
  // A success clears the failure.
  set.markSucceeded(p0!, NOW, Math.random);
  assert.equal(set.pick({ now: NOW, random: Math.random })!.rsa, p0);
});

test('every guard down and none due: all are "maybe" again (guard-spec §4.8)', () => {
  const set = sampled([relay(1), relay(2)]);
  for (const g of set.sampled) set.markFailed(g.rsa, NOW);
  const g = set.pick({ now: NOW, random: Math.random });
  assert.equal(g?.rsa, set.primaryGuards[0]);
  assert.equal(set.isReachable(g!.rsa, NOW), true);
});

test('retry schedule (guard-spec A.1, entrynodes.c get_retry_schedule)', () => {
  const H = 3_600_000;
  const rows: [number, boolean, number][] = [
    [0, true, 10 * 60_000],
    [6 * H - 1, true, 10 * 60_000],
    [6 * H, true, 90 * 60_000],
    [4 * DAY, true, 4 * H],
    [7 * DAY, true, 9 * H],
    [0, false, 1 * H],
    [6 * H, false, 4 * H],
    [4 * DAY, false, 18 * H],
    [7 * DAY, false, 36 * H],
  ];
  for (const [failing, primary, delay] of rows) assert.equal(retryDelayMs(failing, primary), delay, `${failing} ${primary}`);
});

test('removal: unlisted for more than 20 days; sampled over 120 days ago unless confirmed within 60 days', () => {
  const relays = Array.from({ length: 5 }, (_, i) => relay(i + 1));
  const set = sampled(relays);
  const [a, b] = [set.sampled[0]!.rsa, set.sampled[1]!.rsa];
  const without = (rsa: string) => relays.filter((r) => r.rsa !== rsa);
  set.update({ relays: without(a), weights: {}, now: NOW, random: rng(2) });
  assert.equal(set.sampled.find((g) => g.rsa === a)?.listed, false);
  assert.ok(!set.primaryGuards.includes(a), 'an unlisted guard is not primary');
  set.update({ relays: without(a), weights: {}, now: new Date(NOW.getTime() + 19 * DAY), random: rng(2) });
  assert.ok(set.sampled.some((g) => g.rsa === a), 'kept at 19 days');
  set.update({ relays: without(a), weights: {}, now: new Date(NOW.getTime() + 21 * DAY), random: rng(2) });
  assert.ok(!set.sampled.some((g) => g.rsa === a), 'removed after 20 days');

  set.markSucceeded(b, new Date(NOW.getTime() + 100 * DAY), () => 0);
  set.update({ relays, weights: {}, now: new Date(NOW.getTime() + 121 * DAY), random: rng(3) });
  const kept = set.sampled.map((g) => g.rsa);
  assert.ok(kept.includes(b), 'old but confirmed 21 days ago: kept');
  assert.ok(set.sampled.every((g) => g.rsa === b || Date.parse(g.sampledOn) > NOW.getTime()), 'the other old guards went and were resampled');
});

test('state: toState → JSON → fromState keeps order, confirmation and listing; a new sample is not redrawn', () => {
  const relays = Array.from({ length: 30 }, (_, i) => relay(i + 1));
  const set = sampled(relays);
  set.markSucceeded(set.sampled[4]!.rsa, NOW, () => 0);
  assert.equal(set.dirty, true);
  const state = JSON.parse(JSON.stringify(set.toState()));
  assert.equal(set.dirty, false);
  const back = GuardSet.fromState(state);
  assert.deepEqual(back.sampled, set.sampled);
  back.update({ relays, weights: {}, now: NOW, random: rng(99) });
  assert.deepEqual(back.sampled.map((g) => g.rsa), set.sampled.map((g) => g.rsa));
  assert.deepEqual(back.primaryGuards, set.primaryGuards);
  assert.equal(back.dirty, false, 'nothing changed');
});

test('state: malformed input is dropped entry by entry, never thrown (property)', () => {
  const good = sampled(Array.from({ length: 3 }, (_, i) => relay(i + 1))).toState();
  assert.equal(GuardSet.fromState(null).sampled.length, 0);
  assert.equal(GuardSet.fromState({ version: 2, guards: good.guards }).sampled.length, 0);
  const broken = { version: 1, guards: [...good.guards, { ...good.guards[0]!, rsa: 'zz' }, { ...good.guards[1] }, { rsa: 'A'.repeat(40) }, 7, null] };
  assert.equal(GuardSet.fromState(broken).sampled.length, 3, 'the three good ones (the duplicate dropped)');
  fc.assert(
    fc.property(fc.jsonValue(), (value) => {
      GuardSet.fromState(value);
      GuardSet.fromState({ version: 1, guards: [value] });
    }),
    { numRuns: 500 },
  );
});

test('consensus parameters: guard-* read and clamped, defaults otherwise', () => {
  assert.deepEqual(guardParams({}), DEFAULT_GUARD_PARAMS);
  const p = guardParams({ 'guard-n-primary-guards-to-use': 2, 'guard-n-primary-dir-guards-to-use': 2, 'guard-max-sample-threshold-percent': 500, 'guard-lifetime-days': 0 });
  assert.equal(p.nPrimaryGuardsToUse, 2);
  assert.equal(p.nPrimaryDirGuardsToUse, 2);
  assert.equal(p.maxSampleThresholdPercent, 100);
  assert.equal(p.lifetimeDays, 1);
  const set = new GuardSet();
  set.update({ relays: Array.from({ length: 30 }, (_, i) => relay(i + 1)), weights: {}, params: p, now: NOW, random: rng(5) });
  const seen = new Set<string>();
  for (let i = 0; i < 100; i++) seen.add(set.pick({ now: NOW, random: Math.random })!.rsa);
  assert.equal(seen.size, 2, 'two primaries in use');
});
