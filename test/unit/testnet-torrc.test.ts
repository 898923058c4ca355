/**
 * Unit: torrc generation, the torrc safety check, the port layout, and the
 * voting alignment of the test network (src/testnet). No tor, no network.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { listFingerprintArgs } from '../../src/testnet/keys.js';
import { findBindFailure, planPorts, portUses } from '../../src/testnet/ports.js';
import { alignVotingOffset, firstAlignedSecond, resolveConsensusParams } from '../../src/testnet/testnet.js';
import { buildTorrc, PUBLIC_DATA_PATH_PARAMS, commandLineAsTorrc, dirAuthorityLine, torrcSafetyProblems, withVotingStartOffset, type TorrcNetwork } from '../../src/testnet/torrc.js';
import { BadArgumentError } from '../../src/errors.js';

const FP = 'ABCDEF0123456789ABCDEF0123456789ABCDEF01';
const dirAuthorityLines = [0, 1, 2].map((i) => dirAuthorityLine({ nick: `auth${i}`, orPort: 15000 + i, dirPort: 15100 + i, v3ident: FP, fingerprint: FP }));
const net: TorrcNetwork = {
  dirAuthorityLines,
  resolvConfPath: '/tmp/x/resolv.conf',
  emptyGeoipPath: '/tmp/x/geoip-empty',
  ownerPid: 1234,
  logLevel: 'info',
  votingStartOffsetSec: 3,
  initialVotingIntervalSec: 5,
  votingIntervalSec: 10,
  exitPolicy: 'wide',
};
const ports = planPorts(15000, 9, true);

function torrcFor(role: 'authority' | 'relay' | 'exit' | 'client', index = 0): string {
  return buildTorrc(
    {
      nick: role === 'client' ? 'client' : `${role}${index}`,
      role,
      dataDir: `/tmp/x/${role}${index}`,
      relayPorts: role === 'client' ? undefined : ports.relays[index],
      clientPorts: role === 'client' ? ports.client : undefined,
    },
    net,
  );
}

test('torrc: every role gets the private-network lines and passes the safety check', () => {
  for (const role of ['authority', 'relay', 'exit', 'client'] as const) {
    const torrc = torrcFor(role, role === 'authority' ? 0 : 4);
    assert.deepEqual(torrcSafetyProblems(torrc), [], role);
    assert.match(torrc, /^TestingTorNetwork 1$/m);
    assert.match(torrc, /^UseDefaultFallbackDirs 0$/m);
    assert.equal(torrc.match(/^DirAuthority .* 127\.0\.0\.1:151\d\d [0-9A-F]{40}$/gm)?.length, 3);
    assert.match(torrc, /^__OwningControllerProcess 1234$/m);
    assert.match(torrc, /^Log notice file \/tmp\/x\/\w+\/notice\.log$/m);
    assert.match(torrc, /^Log info file /m);
    assert.doesNotMatch(torrc, /0\.0\.0\.0/);
  }
});

test('torrc: role-specific lines', () => {
  const auth = torrcFor('authority', 1);
  assert.match(auth, /^V3AuthoritativeDirectory 1$/m);
  assert.match(auth, /^TestingV3AuthVotingStartOffset 3$/m);
  assert.match(auth, /^ORPort 127\.0\.0\.1:15001$/m);
  assert.match(auth, /^DirPort 127\.0\.0\.1:15101$/m);
  assert.match(auth, /^ExitRelay 0$/m);
  const exit = torrcFor('exit', 7);
  assert.match(exit, /^ExitRelay 1$/m);
  assert.match(exit, /^ExitPolicy accept 127\.0\.0\.0\/8:\*\nExitPolicy accept \*:\*\nExitPolicy reject \*:\*$/m);
  const loopbackExit = buildTorrc({ nick: 'exit0', role: 'exit', dataDir: '/d', relayPorts: ports.relays[7] }, { ...net, exitPolicy: 'loopback' });
  assert.doesNotMatch(loopbackExit, /accept \*:\*/);
  const client = torrcFor('client');
  assert.match(client, /^SocksPort 127\.0\.0\.1:15300$/m);
  assert.match(client, /^ClientOnly 1$/m);
  assert.doesNotMatch(client, /^ORPort/m);
  assert.match(withVotingStartOffset(auth, 4), /^TestingV3AuthVotingStartOffset 4$/m);
});

test('torrc safety check: flags everything that could leave loopback', () => {
  const base = torrcFor('relay', 3);
  const cases: [string, RegExp][] = [
    [base.replace('TestingTorNetwork 1', 'TestingTorNetwork 0'), /TestingTorNetwork 1 is missing/],
    [base.replace('UseDefaultFallbackDirs 0\n', ''), /UseDefaultFallbackDirs 0 is missing/],
    [base.replace(/^DirAuthority .*\n/gm, ''), /no DirAuthority lines/],
    [base + 'DirAuthority evil orport=9001 no-v2 10.0.0.1:80 ' + FP + '\n', /DirAuthority not on 127\.0\.0\.1/],
    [base.replace('ORPort 127.0.0.1:15003', 'ORPort 15003'), /ORPort must be 0 or 127\.0\.0\.1/],
    [base.replace('SocksPort 0', 'SocksPort 0.0.0.0:9050'), /SocksPort must be/],
    [base.replace('Address 127.0.0.1', 'Address 192.0.2.7'), /Address must be 127\.0\.0\.1/],
    [base + 'FallbackDir 10.0.0.2:80 orport=9001 id=' + FP + '\n', /forbidden option FallbackDir/],
    [base + 'UseBridges 1\n', /forbidden option UseBridges/],
    [base + 'Socks5Proxy 10.0.0.3:1080\n', /forbidden option Socks5Proxy/],
  ];
  for (const [torrc, expected] of cases) assert.match(torrcSafetyProblems(torrc).join('; '), expected);
});

test('the key-generation command line is a safe private-network config', () => {
  const args = listFingerprintArgs({ nick: 'relay0', role: 'relay', dataDir: '/tmp/x/relay0', orPort: 15003, dirPort: 15103 });
  assert.deepEqual(torrcSafetyProblems(commandLineAsTorrc(args)), []);
  assert.ok(args.includes('--list-fingerprint'));
  assert.deepEqual(args.slice(args.indexOf('--DisableNetwork'), args.indexOf('--DisableNetwork') + 2), ['--DisableNetwork', '1']);
});

test('ports: the fixed layout, its uses, and bad base ports', () => {
  const plan = planPorts(20000, 9, true);
  assert.deepEqual(plan.relays[0], { orPort: 20000, dirPort: 20100, controlPort: 20200 });
  assert.deepEqual(plan.relays[8], { orPort: 20008, dirPort: 20108, controlPort: 20208 });
  assert.deepEqual(plan.client, { socksPort: 20300, controlPort: 20299 });
  assert.equal(plan.httpPort, 20301);
  const uses = portUses(plan, ['auth0', 'auth1', 'auth2', 'relay0', 'relay1', 'relay2', 'relay3', 'exit0', 'exit1']);
  assert.equal(new Set(uses.map((u) => u.port)).size, uses.length, 'ports are unique');
  assert.ok(uses.some((u) => u.port === 20003 && u.purpose === 'ORPort of relay0'));
  assert.equal(planPorts(20000, 3, false).client, undefined);
  assert.throws(() => planPorts(80, 9, false), BadArgumentError);
  assert.throws(() => planPorts(65300, 9, false), BadArgumentError);
  assert.throws(() => planPorts(20000, 100, false), BadArgumentError);
});

test('ports: recognises tor\'s bind failure', () => {
  const log = 'Nov 26 03:02:27.350 [warn] Could not bind to 127.0.0.1:15103: Address already in use. Is Tor already running?';
  assert.deepEqual(findBindFailure(log), { address: '127.0.0.1', port: 15103 });
  assert.equal(findBindFailure('[notice] Opened OR listener'), undefined);
});

test('alignVotingOffset: the first valid-after is at least the lead after launch', () => {
  for (const launch of [1000.0, 1000.2, 1003.99, 1234.5, 1764126147.35]) {
    for (const lead of [4.5, 6, 6.6]) {
      const offset = alignVotingOffset(launch, lead);
      assert.ok(offset >= 0 && offset < 5);
      // the first aligned second (≡ offset mod 5) at or after launch + lead must be < launch + lead + 1
      let va = Math.ceil(launch + lead);
      while (va % 5 !== offset) va++;
      assert.ok(va - launch >= lead && va - launch < lead + 1, `launch ${launch} lead ${lead}: valid-after ${va}`);
    }
  }
});

test('firstAlignedSecond: the first whole second at or after a time with a given remainder', () => {
  assert.equal(firstAlignedSecond(1000, 0), 1000);
  assert.equal(firstAlignedSecond(1000.1, 0), 1005);
  assert.equal(firstAlignedSecond(1000.1, 3), 1003);
  assert.equal(firstAlignedSecond(1003.0, 3), 1003);
  const launch = 1764126147.35;
  assert.equal(firstAlignedSecond(launch + 6, alignVotingOffset(launch, 6)), Math.ceil(launch + 6));
});

test('torrc: the authorities vote the public network\'s data-path ConsensusParams; nobody else sets them', () => {
  const withParams = { ...net, consensusParams: resolveConsensusParams(undefined) };
  const node = (role: 'authority' | 'relay' | 'exit' | 'client', index: number) =>
    buildTorrc({ nick: `${role}${index}`, role, dataDir: `/tmp/x/${role}`, relayPorts: role === 'client' ? undefined : ports.relays[index], clientPorts: role === 'client' ? ports.client : undefined }, withParams);
  const auth = node('authority', 0);
  const line = auth.match(/^ConsensusParams "(.*)"$/m)?.[1];
  assert.equal(line, PUBLIC_DATA_PATH_PARAMS);
  // The values that differ from tor's defaults and matter to the data path (public consensus of 2026-01-17).
  for (const kv of ['KISTSchedRunInterval=3', 'cc_cwnd_inc=1', 'cc_cwnd_inc_rate=31', 'cc_sscap_exit=600', 'cc_vegas_alpha_exit=186', 'cc_vegas_delta_exit=310', 'circ_max_cell_queue_size=1250']) {
    assert.ok(line.split(' ').includes(kv), kv);
  }
  assert.ok(!/DoS|dos_/.test(line), 'no DoS defences: every client here is 127.0.0.1');
  assert.deepEqual(torrcSafetyProblems(auth), []);
  for (const role of ['relay', 'exit', 'client'] as const) assert.doesNotMatch(node(role, 4), /ConsensusParams/, role);
  assert.doesNotMatch(torrcFor('authority', 0), /ConsensusParams/, 'absent: none');
});

test('testnet: consensusParams option', () => {
  assert.equal(resolveConsensusParams('public'), PUBLIC_DATA_PATH_PARAMS);
  assert.equal(resolveConsensusParams('tor-defaults'), '');
  assert.equal(resolveConsensusParams('  cc_alg=0   KISTSchedRunInterval=10 '), 'cc_alg=0 KISTSchedRunInterval=10');
  assert.throws(() => resolveConsensusParams('cc_alg=0 "x'), BadArgumentError);
  assert.throws(() => resolveConsensusParams('cc_alg'), BadArgumentError);
});
