/**
 * Network: the public network as tor 0.4.9 ships it (auth_dirs.inc, fallback_dirs.inc;
 * values from DIGEST-directory.md §7.2), torrc DirAuthority / FallbackDir lines as tor
 * parses them (config.c), TestingTorNetwork, errors with line numbers, and round trips.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { BadArgumentError } from '../../src/errors.js';
import { Network } from '../../src/dir/network.js';
import { typedOrNothing } from '../support/fuzz.js';

test('Network.PUBLIC: 10 authorities (9 v3 and the bridge authority), 200 fallbacks, tor 0.4.9\'s values', () => {
  const net = Network.PUBLIC;
  assert.equal(net.authorities.length, 10);
  assert.equal(net.v3Authorities.length, 9);
  assert.equal(net.requiredSignatures, 5);
  assert.equal(net.fallbacks.length, 200);
  assert.equal(net.testing, false);
  const moria1 = net.authorities.find((a) => a.nickname === 'moria1')!;
  assert.deepEqual([moria1.address, moria1.orPort, moria1.dirPort, moria1.v3ident, moria1.rsa], ['128.31.0.39', 9201, 9231, 'F533C81CEF0BC0267857C99B2F471ADF249FA232', '1A25C6358DB91342AA51720A5038B72742732498']);
  const maatuska = net.authorities.find((a) => a.nickname === 'maatuska')!;
  assert.deepEqual([maatuska.orPort, maatuska.dirPort, maatuska.ipv6], [80, 443, { address: '2001:67c:289c::9', port: 80 }]);
  const serge = net.authorities.find((a) => a.nickname === 'Serge')!;
  assert.equal(serge.bridge, true);
  assert.equal(serge.v3ident, null);
  assert.equal(net.consensusPath(), '/tor/status-vote/current/consensus-microdesc/0232AF+23D15D+27102B+2F3DF9+49015F+70849B+E8A9C4+ED03BB+F533C8.z');
  assert.ok(net.fallbacks.every((f) => /^[0-9A-F]{40}$/.test(f.rsa) && f.orPort > 0));
  assert.equal(net.fallbacks.filter((f) => f.ipv6).length, 95);
});

test('fromTorrc: DirAuthority lines (chutney style, fingerprint in groups), FallbackDir, TestingTorNetwork', () => {
  const net = Network.fromTorrc([
    '# a private network',
    'TestingTorNetwork 1',
    'DirAuthority test000a orport=5000 no-v2 v3ident=5A23BA701776C9C1AB1C06E734E92AB3D5350D64 127.0.0.1:7000 DEE406C7F87C1D997A11938C6A0E8329B4706CA6',
    'DirAuthority test001a orport=5001 v3ident=6B23BA701776C9C1AB1C06E734E92AB3D5350D64 127.0.0.1:7001 DEE4 06C7 F87C 1D99 7A11 938C 6A0E 8329 B470 6CA7',
    'FallbackDir 127.0.0.2 orport=5002 id=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA weight=2',
    'SocksPort 0',
    '',
  ].join('\n'));
  assert.equal(net.testing, true);
  assert.equal(net.rules.enforceDistinctSubnets, false);
  assert.deepEqual(net.authorities.map((a) => [a.nickname, a.orPort, a.dirPort, a.v3ident, a.rsa]), [
    ['test000a', 5000, 7000, '5A23BA701776C9C1AB1C06E734E92AB3D5350D64', 'DEE406C7F87C1D997A11938C6A0E8329B4706CA6'],
    ['test001a', 5001, 7001, '6B23BA701776C9C1AB1C06E734E92AB3D5350D64', 'DEE406C7F87C1D997A11938C6A0E8329B4706CA7'],
  ]);
  assert.deepEqual(net.fallbacks.map((f) => [f.address, f.orPort, f.rsa, f.weight]), [['127.0.0.2', 5002, 'A'.repeat(40), 2]]);
  assert.equal(net.requiredSignatures, 2);
  const again = Network.fromTorrc(net.toTorrc());
  assert.deepEqual(again.authorities, net.authorities);
  assert.deepEqual(again.fallbacks, net.fallbacks);
  assert.equal(again.testing, true);
  assert.equal(Network.PUBLIC.rules.enforceDistinctSubnets, true);
});

test('fromTorrc: without DirAuthority lines it is the public network; UseDefaultFallbackDirs 0 drops the fallbacks', () => {
  assert.equal(Network.fromTorrc('SocksPort 9050\n').authorities.length, 10);
  assert.equal(Network.fromTorrc('UseDefaultFallbackDirs 0\n').fallbacks.length, 0);
});

test('fromTorrc: malformed lines are BadArgumentErrors naming the line', () => {
  const cases: [string, RegExp][] = [
    ['SocksPort 0\nDirAuthority x orport=1 v3ident=ZZ 127.0.0.1:1 DEE406C7F87C1D997A11938C6A0E8329B4706CA6\n', /line 2/],
    ['DirAuthority x orport=1 127.0.0.1:0 DEE406C7F87C1D997A11938C6A0E8329B4706CA6\n', /line 1/],
    ['DirAuthority x orport=1 not-an-ip:7000 DEE406C7F87C1D997A11938C6A0E8329B4706CA6\n', /line 1/],
    ['\n\nTestingTorNetwork 1\n', /line 3.*DirAuthority/],
    ['FallbackDir 127.0.0.2 orport=5002\n', /line 1/],
  ];
  for (const [text, pattern] of cases) {
    assert.throws(() => Network.fromTorrc(text), (err: unknown) => {
      assert.ok(err instanceof BadArgumentError, String(err));
      assert.match(err.message, pattern);
      return true;
    });
  }
});

test('fromTorrc on arbitrary text and on DirAuthority-shaped lines: a network or a typed error', () => {
  fc.assert(fc.property(fc.string({ maxLength: 200 }), (text) => void typedOrNothing(() => Network.fromTorrc(text))), { numRuns: 300 });
  const token = fc.constantFrom('x', 'orport=5000', 'v3ident=5A23BA701776C9C1AB1C06E734E92AB3D5350D64', 'no-v2', 'bridge', 'ipv6=[::1]:5000', '127.0.0.1:7000', 'DEE406C7F87C1D997A11938C6A0E8329B4706CA6', 'weight=0.5', 'id=AAAA', '\\');
  fc.assert(
    fc.property(fc.constantFrom('DirAuthority', 'FallbackDir'), fc.array(token, { maxLength: 8 }), (key, tokens) => void typedOrNothing(() => Network.fromTorrc(`${key} ${tokens.join(' ')}\n`))),
    { numRuns: 500 },
  );
});
