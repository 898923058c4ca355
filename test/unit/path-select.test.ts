/**
 * Path selection (path-spec §2.2, tor 0.4.9's circuitbuild.c / node_select.c): exit
 * policy summaries, families (declared, family-ids, subnets), bandwidth weights by
 * position and class, and properties of selectPath: three distinct relays, none in
 * another's family, an exit that accepts the port, only usable relays.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { BadArgumentError } from '../../src/errors.js';
import { chooseWeighted, policyAllows, positionWeight, sameFamily, selectPath, type PathRelay } from '../../src/path/select.js';

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
