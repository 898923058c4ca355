/**
 * Path selection (path-spec §2.2, tor 0.4.9's circuitbuild.c / node_select.c): exit
 * policy summaries, families (declared, family-ids, subnets), bandwidth weights by
 * position and class, and properties of selectPath: three distinct relays, none in
 * another's family, an exit that accepts the port, only usable relays.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { seededRandom } from '../support/random.js';
import { BadArgumentError } from '../../src/errors.js';
import { chooseWeighted, policyAllows, positionWeight, sameFamily, selectPath, selectRelays, type PathRelay } from '../../src/path/select.js';

const PR = { Relay: '1-4' };
function relay(n: number, over: Partial<PathRelay> = {}): PathRelay {
  return {
    nickname: `r${n}`,
    rsa: n.toString(16).toUpperCase().padStart(40, '0'),
    ed25519: undefined,
    address: `10.${n}.0.1`,
    ipv6: undefined,
    flags: ['Fast', 'Guard', 'Running', 'Stable', 'V2Dir', 'Valid'],
    bandwidth: 1000,
    protocols: PR,
    ntorOnionKey: 'K'.repeat(43),
    exitPolicy: { ipv4: 'reject 1-65535', ipv6: undefined },
    family: [],
    familyIds: [],
    ...over,
  };
}
const RULES = { enforceDistinctSubnets: true };
const WEIGHTS = { Wbd: 0, Wbe: 0, Wbg: 4143, Wbm: 10000, Wdb: 10000, Web: 10000, Wed: 10000, Wee: 10000, Weg: 10000, Wem: 10000, Wgb: 10000, Wgd: 0, Wgg: 5857, Wgm: 5857, Wmb: 10000, Wmd: 0, Wme: 0, Wmg: 4143, Wmm: 10000 };

test('exit policy summaries (dir-spec §3.8.2): accept and reject lists, ranges, missing means reject', () => {
  assert.equal(policyAllows('accept 80,443', 80), true);
  assert.equal(policyAllows('accept 80,443', 22), false);
  assert.equal(policyAllows('accept 20-23,43,53,79-81', 81), true);
  assert.equal(policyAllows('reject 25,119,135-139,445', 80), true);
  assert.equal(policyAllows('reject 25,119,135-139,445', 137), false);
  assert.equal(policyAllows('reject 1-65535', 80), false);
  assert.equal(policyAllows(undefined, 80), false);
  assert.equal(policyAllows('nonsense', 80), false);
});

test('families: the same relay, one /16, mutual family lines, a shared family-id; the subnet rule can be off', () => {
  const a = relay(1, { address: '10.1.2.3' });
  assert.ok(sameFamily(a, a, RULES));
  assert.ok(sameFamily(a, relay(2, { address: '10.1.9.9' }), RULES));
  assert.ok(!sameFamily(a, relay(2, { address: '10.1.9.9' }), { enforceDistinctSubnets: false }));
  const b = relay(2, { family: [`$${a.rsa}`] });
  assert.ok(!sameFamily(a, b, RULES), 'one-sided family lines do not count');
  assert.ok(sameFamily({ ...a, family: ['R2'] }, b, RULES), 'mutual: a names b by nickname, b names a by fingerprint');
  assert.ok(sameFamily({ ...a, familyIds: ['ed25519:x'] }, relay(3, { familyIds: ['ed25519:x'] }), RULES));
  assert.ok(!sameFamily({ ...a, familyIds: ['ed25519:x'] }, relay(3, { familyIds: ['ed25519:x'] }), { ...RULES, useFamilyIds: false }));
  assert.ok(sameFamily(relay(4, { ipv6: { address: '2001:db8:1::1', port: 1 } }), relay(5, { ipv6: { address: '2001:db8:ffff::2', port: 1 } }), RULES), 'IPv6 /32');
});

test('weights by position and class (node_select.c): guards get Wgg, exits Wee, a guard+exit at the guard position Wgd', () => {
  const guard = relay(1);
  const exit = relay(2, { flags: ['Exit', 'Fast', 'Running', 'Valid'] });
  const both = relay(3, { flags: ['Exit', 'Fast', 'Guard', 'Running', 'Valid'] });
  assert.equal(positionWeight(guard, 'guard', WEIGHTS), (5857 / 10000) * 1 * 1000 * 1000);
  assert.equal(positionWeight(exit, 'exit', WEIGHTS), 1 * 1000 * 1000);
  assert.equal(positionWeight(exit, 'guard', WEIGHTS), 0);
  assert.equal(positionWeight(both, 'guard', WEIGHTS), 0, 'Wgd = 0');
  assert.equal(positionWeight(guard, 'middle', WEIGHTS), (4143 / 10000) * 1000 * 1000, 'V2Dir: × Wgb (1)');
  assert.equal(positionWeight(guard, 'guard', {}), 1000 * 1000, 'no weights: plain bandwidth');
  assert.equal(chooseWeighted([1, 2, 3], () => 0, () => 0.99), 3, 'all zero: uniform');
  assert.equal(chooseWeighted([1, 2, 3], (x) => (x === 2 ? 1 : 0), () => 0.5), 2);
});

test('selectPath: three distinct relays from three families, an exit accepting the port, only usable relays', () => {
  const arb = fc.array(
    fc.record({
      exit: fc.boolean(),
      guard: fc.boolean(),
      stable: fc.boolean(),
      ntor: fc.boolean(),
      subnet: fc.integer({ min: 0, max: 5 }),
      bw: fc.integer({ min: 0, max: 5000 }),
      policy: fc.constantFrom('accept 80,443', 'accept 22', 'reject 1-65535', 'reject 25'),
    }),
    { minLength: 3, maxLength: 25 },
  );
  fc.assert(
    fc.property(arb, fc.constantFrom(80, 22, 443), fc.double({ min: 0, max: 0.999, noNaN: true }), (specs, port, r) => {
      const relays = specs.map((s, i) =>
        relay(i + 1, {
          address: `10.${s.subnet}.0.${i + 1}`,
          flags: [...(s.exit ? ['Exit'] : []), 'Fast', ...(s.guard ? ['Guard'] : []), 'Running', ...(s.stable ? ['Stable'] : []), 'V2Dir', 'Valid'],
          ntorOnionKey: s.ntor ? 'K'.repeat(43) : undefined,
          bandwidth: s.bw,
          exitPolicy: { ipv4: s.policy, ipv6: undefined },
        }),
      );
      let path;
      try {
        path = selectPath(relays, { port, weights: WEIGHTS, enforceDistinctSubnets: true, random: () => r });
      } catch (err) {
        assert.ok(err instanceof BadArgumentError, String(err));
        return;
      }
      const { guard, middle, exit } = path;
      assert.ok(policyAllows(exit.exitPolicy.ipv4, port));
      assert.ok(guard.flags.includes('Guard'));
      for (const hop of [guard, middle, exit]) assert.ok(hop.ntorOnionKey, `${hop.nickname} has an ntor key`);
      assert.ok(!sameFamily(guard, exit, RULES) && !sameFamily(middle, exit, RULES) && !sameFamily(middle, guard, RULES));
      if (port === 22) for (const hop of [guard, middle, exit]) assert.ok(hop.flags.includes('Stable'), 'port 22 is long-lived: Stable relays');
    }),
    { numRuns: 400 },
  );
});

const seeded = seededRandom;

test('10,000 selections: each position follows its bandwidth weight (exact expectation by enumeration; total variation ≤ 5 %, every relay within 2 points)', () => {
  const flagsOf = { G: ['Fast', 'Guard', 'Running', 'Stable', 'V2Dir', 'Valid'], E: ['Exit', 'Fast', 'Running', 'Stable', 'V2Dir', 'Valid'], D: ['Exit', 'Fast', 'Guard', 'Running', 'Stable', 'V2Dir', 'Valid'], M: ['Fast', 'Running', 'Stable', 'V2Dir', 'Valid'] };
  const kinds = 'GGGGEEEDDMMM';
  const relays = [...kinds].map((k, i) => relay(i + 1, { flags: flagsOf[k as keyof typeof flagsOf], bandwidth: 500 * (1 + ((i * 7) % 5)), exitPolicy: { ipv4: k === 'E' || k === 'D' ? 'accept 80,443' : 'reject 1-65535', ipv6: undefined } }));
  const w = (r: PathRelay, p: 'guard' | 'middle' | 'exit') => positionWeight(r, p, WEIGHTS);
  const distinct = (a: PathRelay, b: PathRelay) => a !== b && !sameFamily(a, b, RULES);
  // Exact: P(exit) ∝ w_exit; P(guard | exit) ∝ w_guard over guards apart from the exit; P(middle | exit, guard) likewise.
  const expected = { guard: new Map<PathRelay, number>(), middle: new Map<PathRelay, number>(), exit: new Map<PathRelay, number>() };
  const add = (m: Map<PathRelay, number>, r: PathRelay, p: number) => m.set(r, (m.get(r) ?? 0) + p);
  const exits = relays.filter((r) => policyAllows(r.exitPolicy.ipv4, 80));
  const exitTotal = exits.reduce((s, r) => s + w(r, 'exit'), 0);
  for (const e of exits) {
    const pe = w(e, 'exit') / exitTotal;
    add(expected.exit, e, pe);
    const guards = relays.filter((r) => r.flags.includes('Guard') && distinct(r, e));
    const gTotal = guards.reduce((s, r) => s + w(r, 'guard'), 0);
    for (const g of guards) {
      const pg = pe * (w(g, 'guard') / gTotal);
      add(expected.guard, g, pg);
      const middles = relays.filter((r) => distinct(r, e) && distinct(r, g));
      const mTotal = middles.reduce((s, r) => s + w(r, 'middle'), 0);
      for (const m of middles) add(expected.middle, m, pg * (w(m, 'middle') / mTotal));
    }
  }
  const N = 10_000;
  const seen = { guard: new Map<PathRelay, number>(), middle: new Map<PathRelay, number>(), exit: new Map<PathRelay, number>() };
  const random = seeded(2026);
  for (let i = 0; i < N; i++) {
    const path = selectPath(relays, { port: 80, weights: WEIGHTS, enforceDistinctSubnets: true, random });
    for (const position of ['guard', 'middle', 'exit'] as const) add(seen[position], path[position], 1 / N);
  }
  for (const position of ['guard', 'middle', 'exit'] as const) {
    let tv = 0;
    for (const r of relays) {
      const exp = expected[position].get(r) ?? 0;
      const obs = seen[position].get(r) ?? 0;
      tv += Math.abs(exp - obs) / 2;
      assert.ok(Math.abs(exp - obs) <= 0.02, `${position} ${r.nickname}: expected ${exp.toFixed(4)}, seen ${obs.toFixed(4)}`);
      if (exp === 0) assert.equal(obs, 0, `${position} ${r.nickname} is never eligible`);
    }
    assert.ok(tv <= 0.05, `${position}: total variation ${tv.toFixed(4)}`);
  }
});

test('selectRelays: 1-8 hops, no relay twice, no two in one family, the exit accepts the port, the guard from pickGuard', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 8, max: 30 }), fc.integer({ min: 0, max: 2 ** 31 }), (hops, n, seed) => {
      const relays = Array.from({ length: n }, (_, i) =>
        relay(i + 1, {
          address: `10.${i % 7}.0.${i + 1}`,
          flags: [...(i % 3 === 0 ? ['Exit'] : []), 'Fast', 'Guard', 'Running', 'Stable', 'V2Dir', 'Valid'],
          exitPolicy: { ipv4: i % 3 === 0 ? 'accept 443' : 'reject 1-65535', ipv6: undefined },
          family: i % 5 === 0 ? [`$${(i + 1 + 1).toString(16).toUpperCase().padStart(40, '0')}`] : [],
        }),
      );
      const asked: PathRelay[] = [];
      let list: PathRelay[];
      try {
        list = selectRelays(relays, hops, {
          port: 443,
          weights: WEIGHTS,
          enforceDistinctSubnets: true,
          random: seeded(seed),
          pickGuard: (allowed) => {
            const g = relays.find(allowed);
            if (g) asked.push(g);
            return g;
          },
        });
      } catch (err) {
        assert.ok(err instanceof BadArgumentError, String(err));
        return;
      }
      assert.equal(list.length, hops);
      assert.strictEqual(list[0], asked[0], 'the first hop is the guard pickGuard gave');
      if (hops > 1) assert.ok(policyAllows(list[hops - 1]!.exitPolicy.ipv4, 443));
      for (let i = 0; i < hops; i++) for (let j = i + 1; j < hops; j++) assert.ok(list[i] !== list[j] && !sameFamily(list[i]!, list[j]!, RULES), `hops ${i + 1} and ${j + 1}`);
    }),
    { numRuns: 300 },
  );
  assert.throws(() => selectRelays([relay(1)], 9, { weights: WEIGHTS, enforceDistinctSubnets: true, random: Math.random }), BadArgumentError);
});

test('selectRelays with lastHop: the chosen relay ends the path (no exit policy), the others keep out of its family', () => {
  const relays = Array.from({ length: 12 }, (_, i) => relay(i + 1, { address: `10.${i % 4}.0.${i + 1}` }));
  const target = relays[5]!; // a non-exit: policy 'reject 1-65535'
  for (let seed = 0; seed < 200; seed++) {
    const list = selectRelays(relays, 3, { weights: WEIGHTS, enforceDistinctSubnets: true, random: seeded(seed), lastHop: target });
    assert.equal(list.length, 3);
    assert.strictEqual(list[2], target);
    for (const hop of list.slice(0, 2)) assert.ok(!sameFamily(hop, target, RULES), `${hop.nickname} is apart from ${target.nickname}`);
    assert.ok(!sameFamily(list[0]!, list[1]!, RULES));
  }
  assert.throws(() => selectRelays(relays, 1, { weights: WEIGHTS, enforceDistinctSubnets: true, random: Math.random, lastHop: target }), BadArgumentError);
});
