/**
 * onion/keys against published vectors:
 * - tor (syphyr/tor @817b7105f2a0ac6d70f0005889aecf7f4d6536ea): src/test/test_hs_common.c
 *   `test_time_period`, `test_start_time_of_next_time_period` (the test-network rule),
 *   `test_time_between_tp_and_srv`, `test_disaster_srv`, `test_blinding_basics`,
 *   `test_hs_indexes`; src/test/ed25519_vectors.inc (ED25519_PUBLIC_KEYS,
 *   ED25519_BLINDING_PARAMS, ED25519_BLINDED_PUBLIC_KEYS, all 10, used by test_crypto.c);
 * - Arti (zydou/arti @cadcd0d310831ba237fff4c1a39ef51c53b506db):
 *   crates/tor-hscrypto/src/time.rs `check_testvec`, pk.rs `key_blinding_testvec`,
 *   crates/tor-netdoc/src/doc/hsdesc.rs `get_test2_encrypted` (TEST_HSID_2 at tp 19397);
 * - rend-spec-v3 §2.2.1's example (2016-04-13 11:15:01 → 16903);
 * - /work/shared/spec/DIGEST-onion.md §4's "(computed)" store-at-idx values and URL for
 *   TEST_HSID_2 (no upstream vector; marked so below).
 * The HSDir ring walk is checked against a plain reference walk on random rings (fast-check).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { BadArgumentError } from '../../src/errors.js';
import {
  blindPublicKey,
  blindWithFactor,
  blindingFactor,
  credential,
  descriptorPath,
  disasterSrv,
  fetchSrv,
  hsDirIndex,
  hsServiceIndex,
  periodByNumber,
  protocolIncludes,
  responsibleHsDirs,
  rotationOffsetSec,
  subcredential,
  timePeriod,
  timePeriodLength,
  type HsDirCandidate,
} from '../../src/onion/keys.js';

const hex = (h: string) => new Uint8Array(Buffer.from(h.replace(/\s+/g, ''), 'hex'));
const toHex = (b: Uint8Array) => Buffer.from(b).toString('hex').toUpperCase();
const at = (iso: string) => new Date(iso);

test("time periods: rend-spec §2.2.1's example, tor's test_time_period, test_blinding_basics, Arti's 19397", () => {
  assert.equal(timePeriod(1460546101 * 1000).number, 16903);
  assert.equal(timePeriod(at('2016-04-13T11:00:00Z')).number, 16903);
  assert.equal(timePeriod(at('2016-04-13T11:59:59Z')).number, 16903);
  assert.deepEqual(timePeriod(at('2016-04-13T11:59:59Z')).end, at('2016-04-13T12:00:00Z'));
  const p = timePeriod(at('2016-04-13T12:00:00Z'));
  assert.equal(p.number, 16904);
  assert.equal(p.lengthMinutes, 1440);
  assert.deepEqual(p.start, at('2016-04-13T12:00:00Z'));
  assert.deepEqual(p.end, at('2016-04-14T12:00:00Z'));
  assert.equal(timePeriod(p.end).number, 16905);
  assert.equal(timePeriod(at('1973-05-20T01:50:33Z')).number, 1234);
  assert.equal(timePeriod(at('2023-02-09T12:00:00Z')).number, 19397);
  assert.deepEqual(periodByNumber(16904), p);
});

test("the test-network rule (tor's test_start_time_of_next_time_period): 24 × the voting interval, hsdir_interval ignored, offset 12 × the interval", () => {
  const chutney = { testingNetwork: true, votingIntervalSec: 10, hsdirIntervalMin: 1440 };
  assert.equal(timePeriodLength(chutney), 4);
  assert.equal(rotationOffsetSec(chutney), 120);
  assert.deepEqual(timePeriod(at('2016-04-13T00:00:00Z'), chutney).end, at('2016-04-13T00:02:00Z'));
  assert.deepEqual(timePeriod(at('2016-04-13T00:02:00Z'), chutney).end, at('2016-04-13T00:06:00Z'));
  assert.equal(timePeriod(at('2016-04-13T00:02:00Z'), chutney).lengthMinutes, 4);
  assert.equal(timePeriodLength({ testingNetwork: true }), 120, "tor's testing default voting interval, 300 s");
  assert.equal(timePeriodLength({ testingNetwork: true, votingIntervalSec: 300, hsdirIntervalMin: 60 }), 120);
  // A normal network reads hsdir_interval (clamped as tor does) and offsets by 12 × I.
  assert.equal(timePeriodLength({ hsdirIntervalMin: 60 }), 60);
  assert.equal(timePeriodLength({ hsdirIntervalMin: 1 }), 5);
  assert.equal(timePeriodLength({ hsdirIntervalMin: 100000 }), 14400);
  assert.equal(rotationOffsetSec({}), 43200);
  assert.throws(() => timePeriod(at('2016-04-13T00:00:00Z'), { votingIntervalSec: 0 }), BadArgumentError);
  assert.throws(() => timePeriod(new Date(NaN)), BadArgumentError);
  assert.throws(() => timePeriod(0), BadArgumentError, 'before the first time period');
});

test("the SRV a fetch uses (tor's test_time_between_tp_and_srv, node_set_hsdir_index) and the disaster SRV (test_disaster_srv)", () => {
  const previous = new Uint8Array(32).fill(0xaa);
  const current = new Uint8Array(32).fill(0xbb);
  const srvs = { previous, current };
  for (const [iso, which] of [
    ['1985-10-26T00:00:00Z', 'previous'],
    ['1985-10-26T11:00:00Z', 'previous'],
    ['1985-10-26T12:00:00Z', 'current'],
    ['1985-10-26T23:00:00Z', 'current'],
    ['1985-10-27T00:00:00Z', 'previous'],
  ] as const) {
    const got = fetchSrv(at(iso), srvs, { votingIntervalSec: 3600 });
    assert.equal(got.which, which, iso);
    assert.deepEqual(got.value, which === 'previous' ? previous : current);
    assert.equal(got.disaster, false);
  }
  const chutney = { testingNetwork: true, votingIntervalSec: 10 };
  assert.equal(fetchSrv(at('2016-04-13T00:00:00Z'), srvs, chutney).which, 'previous');
  assert.equal(fetchSrv(at('2016-04-13T00:01:50Z'), srvs, chutney).which, 'previous');
  assert.equal(fetchSrv(at('2016-04-13T00:02:00Z'), srvs, chutney).which, 'current');
  assert.equal(fetchSrv(at('2016-04-13T00:03:50Z'), srvs, chutney).which, 'current');

  assert.equal(toHex(disasterSrv({ number: 1, lengthMinutes: 1440 })), 'F8A4948707653837FA44ABB5BBC75A12F6F101E7F8FAF699B9715F4965D3507D');
  const missing = fetchSrv(at('1985-10-26T12:00:00Z'), { previous, current: undefined });
  assert.equal(missing.disaster, true);
  assert.deepEqual(missing.value, disasterSrv(timePeriod(at('1985-10-26T12:00:00Z'))), 'the current period number, whichever SRV is missing');
});

test("blinding and subcredential: tor's test_blinding_basics = Arti's key_blinding_testvec; Arti's TEST_HSID_2 at tp 19397", () => {
  const A = hex('833990B085C1A688C1D4C8B1F6B56AFAF5A2ECA674449E1D704F83765CCB7BC6');
  const period = timePeriod(at('1973-05-20T01:50:33Z'));
  assert.equal(toHex(blindingFactor(A, period)), '379E50DB31FEE6775ABD0AF6FB7C371E060308F4F847DB09FE4CFE13AF602287');
  const blinded = blindPublicKey(A, period);
  assert.equal(toHex(blinded), '3A50BF210E8F9EE955AE0014F7A6917FB65EBF098A86305ABB508D1A7291B6D5');
  assert.equal(toHex(subcredential(A, blinded)), '635D55907816E8D76398A675A50B1C2F3E36B42A5CA77BA3A0441285161AE07D');
  assert.equal(credential(A).length, 32);

  const id2 = hex('781D978CE6CE9CAA8BCA306F53E82D2C993E5C91346625F1C151DCFC56D753D3');
  const p2 = timePeriod(at('2023-02-09T12:00:00Z'));
  const b2 = blindPublicKey(id2, p2);
  assert.equal(toHex(b2), '706628758208395D461AA0F460A5E76E7B828C66B5E794768592B451302E961D');
  assert.equal(toHex(subcredential(id2, b2)), '24A133E905102BDA9A6AFE57F901366A1B8281865A91F1FE0853E4B50CC8B070');
  // DIGEST-onion.md §4 (computed there, no upstream vector): the request path and store-at-idx.
  assert.equal(descriptorPath(b2), '/tor/hs/3/cGYodYIIOV1GGqD0YKXnbnuCjGa155R2hZK0UTAulh0');
  assert.equal(toHex(hsServiceIndex(b2, 1, p2)), '24ECF4F0A2B7D776464649C06FDAE9ED3DEBD436A73D02F8463F17397FA263D8');
  assert.equal(toHex(hsServiceIndex(b2, 2, p2)), '0FFE94F5ABD397FBEC79D5E64D7F85AE01E4F54517967B828BDA63FD0AF98775');

  assert.throws(() => blindPublicKey(new Uint8Array(32), period), BadArgumentError, 'all-zero key');
  assert.throws(() => blindPublicKey(new Uint8Array(31), period), BadArgumentError);
});

test("the point maths alone: all 10 of tor's ed25519_vectors.inc blinding vectors (raw factors, clamped as ed25519_public_blind does)", () => {
  const keys = [
    'c2247870536a192d142d056abefca68d6193158e7c1a59c1654c954eccaff894',
    '1519a3b15816a1aafab0b213892026ebf5c0dc232c58b21088d88cb90e9b940d',
    '081faa81992e360ea22c06af1aba096e7a73f1c665bc8b3e4e531c46455fd1dd',
    '73cfa1189a723aad7966137cbffa35140bb40d7e16eae4c40b79b5f0360dd65a',
    '66c1a77104d86461b6f98f73acf3cd229c80624495d2d74d6fda1e940080a96b',
    'd21c294db0e64cb2d8976625786ede1d9754186ae8197a64d72f68c792eecc19',
    'c4d58b4cf85a348ff3d410dd936fa460c4f18da962c01b1963792b9dcc8a6ea6',
    '95126f14d86494020665face03f2d42ee2b312a85bc729903eb17522954a1c4a',
    '95126f14d86494020665face03f2d42ee2b312a85bc729903eb17522954a1c4a',
    '95126f14d86494020665face03f2d42ee2b312a85bc729903eb17522954a1c4a',
  ];
  const params = [
    '54a513898b471d1d448a2f3c55c1de2c0ef718c447b04497eeb999ed32027823',
    '831e9b5325b5d31b7ae6197e9c7a7baf2ec361e08248bce055908971047a2347',
    'ac78a1d46faf3bfbbdc5af5f053dc6dc9023ed78236bec1760dadfd0b2603760',
    'f9c84dc0ac31571507993df94da1b3d28684a12ad14e67d0a068aba5c53019fc',
    'b1fe79d1dec9bc108df69f6612c72812755751f21ecc5af99663b30be8b9081f',
    '81f1512b63ab5fb5c1711a4ec83d379c420574aedffa8c3368e1c3989a3a0084',
    '97f45142597c473a4b0e9a12d64561133ad9e1155fe5a9807fe6af8a93557818',
    '3f44f6a5a92cde816635dfc12ade70539871078d2ff097278be2a555c9859cd0',
    '0000000000000000000000000000000000000000000000000000000000000000',
    '1111111111111111111111111111111111111111111111111111111111111111',
  ];
  const blinded = [
    '1fc1fa4465bd9d4956fdbdc9d3acb3c7019bb8d5606b951c2e1dfe0b42eaeb41',
    '1cbbd4a88ce8f165447f159d9f628ada18674158c4f7c5ead44ce8eb0fa6eb7e',
    'c5419ad133ffde7e0ac882055d942f582054132b092de377d587435722deb028',
    '3e08d0dc291066272e313014bfac4d39ad84aa93c038478a58011f431648105f',
    '59381f06acb6bf1389ba305f70874eed3e0f2ab57cdb7bc69ed59a9b8899ff4d',
    '2b946a484344eb1c17c89dd8b04196a84f3b7222c876a07a4cece85f676f87d9',
    'c6b585129b135f8769df2eba987e76e089e80ba3a2a6729134d3b28008ac098e',
    '0eefdc795b59cabbc194c6174e34ba9451e8355108520554ec285acabebb34ac',
    '312404d06a0a9de489904b18d5233e83a50b225977fa8734f2c897a73c067952',
    '952a908a4a9e0e5176a2549f8f328955aca6817a9fdc59e3acec5dec50838108',
  ];
  for (let i = 0; i < 10; i++) assert.equal(Buffer.from(blindWithFactor(hex(keys[i]!), hex(params[i]!))).toString('hex'), blinded[i], `vector ${i}`);
});

test("the ring's indices: tor's test_hs_indexes (32 × 0x42, SRV 32 × 0x43, tp 42, len 1440)", () => {
  const period = { number: 42, lengthMinutes: 1440 };
  const k = new Uint8Array(32).fill(0x42);
  assert.equal(Buffer.from(hsServiceIndex(k, 1, period)).toString('hex'), '37e5cbbd56a22823714f18f1623ece5983a0d64c78495a8cfab854245e5f9a8a');
  assert.equal(Buffer.from(hsDirIndex(k, new Uint8Array(32).fill(0x43), period)).toString('hex'), 'db475361014a09965e7e5e4d4a25b8f8d4b8f16cb1d8a7e95eed50249cc1a2d5');
});

interface Relay extends HsDirCandidate {
  readonly name: string;
}

/** A plain reference walk: for each replica, the relays in ring order starting at the first index ≥ store-at-idx. */
function referenceWalk(ring: readonly Relay[], blinded: Uint8Array, period: { number: number; lengthMinutes: number }, srv: Uint8Array, replicas = 2, spread = 3): string[] {
  const usable = ring
    .filter((r) => r.flags.includes('HSDir') && r.ed25519 instanceof Uint8Array && (r.protocols?.['HSDir'] ?? '2').includes('2'))
    .map((r) => ({ name: r.name, idx: Buffer.from(hsDirIndex(r.ed25519 as Uint8Array, srv, period)).toString('hex') }))
    .sort((a, b) => (a.idx < b.idx ? -1 : a.idx > b.idx ? 1 : 0));
  const out: string[] = [];
  for (let rep = 1; rep <= replicas; rep++) {
    const target = Buffer.from(hsServiceIndex(blinded, rep, period)).toString('hex');
    const first = usable.findIndex((u) => u.idx >= target);
    const order = first < 0 ? usable : [...usable.slice(first), ...usable.slice(0, first)];
    out.push(...order.map((u) => u.name).filter((n) => !out.includes(n)).slice(0, spread));
  }
  return out;
}

test('responsibleHsDirs: HSDir flag, HSDir=2 and an Ed25519 id required; 2 × 3 distinct relays in ring order, fewer on a small ring', () => {
  const period = { number: 19397, lengthMinutes: 1440 };
  const srv = new Uint8Array(32).fill(7);
  const blinded = hex('706628758208395D461AA0F460A5E76E7B828C66B5E794768592B451302E961D');
  const ring: Relay[] = Array.from({ length: 12 }, (_, i) => ({ name: `r${i}`, ed25519: new Uint8Array(32).fill(i + 1), flags: ['Fast', 'HSDir', 'Running'], protocols: { HSDir: '1-2' } }));
  const chosen = responsibleHsDirs(ring, blinded, period, { srv }).map((r) => r.name);
  assert.equal(chosen.length, 6);
  assert.equal(new Set(chosen).size, 6);
  assert.deepEqual(chosen, referenceWalk(ring, blinded, period, srv));
  // base64 ids (as the microdescriptor gives them) are the same relays.
  const b64 = ring.map((r) => ({ ...r, ed25519: Buffer.from(r.ed25519 as Uint8Array).toString('base64').replace(/=$/, '') }));
  assert.deepEqual(responsibleHsDirs(b64, blinded, period, { srv }).map((r) => r.name), chosen);
  // Relays that don't qualify never appear.
  const mixed: Relay[] = [
    ...ring.slice(0, 3),
    { name: 'noflag', ed25519: new Uint8Array(32).fill(100), flags: ['Fast'], protocols: { HSDir: '2' } },
    { name: 'v1only', ed25519: new Uint8Array(32).fill(101), flags: ['HSDir'], protocols: { HSDir: '1' } },
    { name: 'nomd', ed25519: undefined, flags: ['HSDir'], protocols: { HSDir: '2' } },
    { name: 'badid', ed25519: 'not base64!', flags: ['HSDir'], protocols: { HSDir: '2' } },
  ];
  const small = responsibleHsDirs(mixed, blinded, period, { srv }).map((r) => r.name);
  assert.deepEqual([...small].sort(), ['r0', 'r1', 'r2'], 'a ring of 3: each once');
  assert.deepEqual(responsibleHsDirs([], blinded, period, { srv }), []);
  assert.equal(responsibleHsDirs(ring, blinded, period, { srv, nReplicas: 1, spreadFetch: 4 }).length, 4);
  assert.equal(responsibleHsDirs(ring, blinded, period, { srv, nReplicas: 100, spreadFetch: 1 }).length, 12, 'n_replicas clamped to 16, ring of 12');
  assert.ok(protocolIncludes('1-2', 2) && protocolIncludes('1,2-4', 3) && !protocolIncludes('1', 2) && !protocolIncludes(undefined, 2));
});

test('property: responsibleHsDirs agrees with the reference walk on random rings', () => {
  fc.assert(
    fc.property(
      fc.uniqueArray(fc.uint8Array({ minLength: 32, maxLength: 32 }), { maxLength: 30, selector: (a) => Buffer.from(a).toString('hex') }),
      fc.uint8Array({ minLength: 32, maxLength: 32 }),
      fc.uint8Array({ minLength: 32, maxLength: 32 }),
      fc.integer({ min: 1, max: 4 }),
      fc.integer({ min: 1, max: 5 }),
      (ids, blinded, srv, replicas, spread) => {
        const ring: Relay[] = ids.map((id, i) => ({ name: `r${i}`, ed25519: id, flags: i % 5 === 4 ? ['Fast'] : ['HSDir'] }));
        const period = { number: 20000, lengthMinutes: 1440 };
        const got = responsibleHsDirs(ring, blinded, period, { srv, nReplicas: replicas, spreadFetch: spread }).map((r) => r.name);
        assert.deepEqual(got, referenceWalk(ring, blinded, period, srv, replicas, spread));
      },
    ),
    { numRuns: 60 },
  );
});
