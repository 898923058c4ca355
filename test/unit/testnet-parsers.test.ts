/**
 * Unit: the small parsers of src/testnet — namespace inspection output,
 * tor's key files, directory documents, the log scan, the JSON description.
 * Pure functions on sample text; no tor, no network.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BadArgumentError } from '../../src/errors.js';
import { DESCRIPTION_FORMAT, nodesWithRole, parseTestnetDescription, relayNodes } from '../../src/testnet/description.js';
import { consensusRouters, countMicrodescs, microdescDigests, missingRelays, serverDescriptorNicks } from '../../src/testnet/dirport.js';
import { parseIpLink, parseProcNetDev, parseProcNetRouteDefaults } from '../../src/testnet/isolation.js';
import { parseCertificateExpiry, parseCertificateFingerprint, parseEd25519FingerprintFile, parseFingerprintFile } from '../../src/testnet/keys.js';
import { findNonLoopbackAddresses, formatFindings } from '../../src/testnet/logscan.js';

test('isolation: parses ip -o link, /proc/net/dev and /proc/net/route', () => {
  const host = [
    '1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN mode DEFAULT group default qlen 1000\\    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00',
    '2: ifb0: <BROADCAST,NOARP> mtu 1500 qdisc noop state DOWN mode DEFAULT group default qlen 32\\    link/ether e2:52:9f:4d:ad:18 brd ff:ff:ff:ff:ff:ff',
    '4: eth0@if7: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1400 qdisc pfifo_fast state UP mode DEFAULT',
  ].join('\n');
  assert.deepEqual(parseIpLink(host), [
    { name: 'lo', up: true },
    { name: 'ifb0', up: false },
    { name: 'eth0', up: true },
  ]);
  assert.deepEqual(parseIpLink('1: lo: <LOOPBACK> mtu 65536 qdisc noop state DOWN mode DEFAULT'), [{ name: 'lo', up: false }]);
  const dev = 'Inter-|   Receive\n face |bytes    packets\n    lo:       0       0    0    0\n  eth0: 1234 5 0 0\n';
  assert.deepEqual(parseProcNetDev(dev), ['lo', 'eth0']);
  const route = 'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\neth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\neth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n';
  assert.deepEqual(parseProcNetRouteDefaults(route), ['ipv4 default via 192.0.2.1 dev eth0']);
  assert.deepEqual(parseProcNetRouteDefaults('Iface\tDestination\tGateway\n'), []);
});

test('keys: reads tor\'s fingerprint files and authority certificates', () => {
  assert.equal(parseFingerprintFile('relay0 6AA797EF72376B4688AD0F054A54F71718E0D21A\n'), '6AA797EF72376B4688AD0F054A54F71718E0D21A');
  assert.equal(parseFingerprintFile('relay0 6AA7 97EF 7237 6B46 88AD 0F05 4A54 F717 18E0 D21A\n'), '6AA797EF72376B4688AD0F054A54F71718E0D21A');
  assert.throws(() => parseFingerprintFile('relay0 XYZ'));
  assert.equal(parseEd25519FingerprintFile('relay0 BTC3V6JVqxG4GJX1G2mYY/YsukW4MKmJNF9eIAQouCQ\n'), 'BTC3V6JVqxG4GJX1G2mYY/YsukW4MKmJNF9eIAQouCQ');
  assert.throws(() => parseEd25519FingerprintFile('relay0 short'));
  const cert = 'dir-key-certificate-version 3\ndir-address 127.0.0.1:15100\nfingerprint AC3F835921902311F4F62660533A68FA44B82A8A\ndir-key-published 2026-11-26 02:56:38\ndir-key-expires 2027-11-26 02:56:38\n';
  assert.equal(parseCertificateFingerprint(cert), 'AC3F835921902311F4F62660533A68FA44B82A8A');
  assert.equal(parseCertificateExpiry(cert), Date.UTC(2027, 10, 26, 2, 56, 38));
});

const CONSENSUS = `network-status-version 3 microdesc
r auth0 rdvWwRD1sNYAQviDNa4gpErzOyI 2026-11-26 03:02:29 127.0.0.1 15000 15100
m 7tyA8m8Rz0t/7Obl3SDLJ27jXzVAgsxGRyNjLmwsrCI
s Authority Exit Fast Guard HSDir Running Stable V2Dir Valid
r relay0 zULjN3Gdg7WotZXtIl3CDkTD4k4 2026-11-26 03:02:29 127.0.0.1 15003 15103
m 0Ajoi5jtXwfU6OeuJ2r8BJOH8jX1M5bWpRsbV6yMMxA
`;

test('dirport: reads r, m, router and ntor-onion-key lines', () => {
  const routers = consensusRouters(CONSENSUS);
  assert.equal(routers.get('auth0'), 'ADDBD6C110F5B0D60042F88335AE20A44AF33B22');
  assert.equal(routers.get('relay0'), 'CD42E337719D83B5A8B595ED225DC20E44C3E24E');
  assert.deepEqual(microdescDigests(CONSENSUS), ['7tyA8m8Rz0t/7Obl3SDLJ27jXzVAgsxGRyNjLmwsrCI', '0Ajoi5jtXwfU6OeuJ2r8BJOH8jX1M5bWpRsbV6yMMxA']);
  assert.equal(countMicrodescs('onion-key\nntor-onion-key abc=\nfamily x\nntor-onion-key def=\n'), 2);
  assert.deepEqual(serverDescriptorNicks('router auth0 127.0.0.1 15000 0 15100\nplatform Tor\nrouter exit1 127.0.0.1 15008 0 15108\n'), new Set(['auth0', 'exit1']));
  const expected = [
    { nick: 'auth0', fingerprint: routers.get('auth0') ?? '' },
    { nick: 'relay0', fingerprint: 'F'.repeat(40) },
    { nick: 'exit0', fingerprint: 'E'.repeat(40) },
  ];
  assert.deepEqual(missingRelays(routers, expected), ['relay0', 'exit0']);
});

test('logscan: flags non-loopback addresses, not tor\'s version or loopback', () => {
  const log = [
    'Nov 26 02:53:18.944 [notice] Tor 0.4.9.11 running on Linux with Libevent 2.1.12-stable, OpenSSL 3.0.19',
    'Nov 26 02:53:19.207 [notice] Opened OR listener connection (ready) on 127.0.0.1:15003',
    'Nov 26 02:53:19.300 [info] Bound to 0.0.0.0 for DNS',
    'Nov 26 02:53:20.000 [info] connection_connect(): Connecting to 10.1.2.3:80',
    'Nov 26 02:53:21.000 [warn] Unable to connect to [2001:db8::1]:443 (nor to [::1]:9050)',
    'Nov 26 02:53:22.000 [info] version 300.1.2.3 is not an address, 1.2.3.4.5 neither',
  ].join('\n');
  const found = findNonLoopbackAddresses(log);
  assert.deepEqual(found.map((f) => [f.line, f.address]), [
    [4, '10.1.2.3'],
    [5, '[2001:db8::1]'],
  ]);
  assert.match(formatFindings(found.map((f) => ({ file: 'relay0/info.log', ...f }))), /relay0\/info\.log:4: 10\.1\.2\.3 in: /);
});

function sampleDescription(): Record<string, unknown> {
  const relay = (nick: string, role: string, i: number) => ({
    nick, role, pid: 100 + i, dataDir: `/t/${nick}`, torrcPath: `/t/${nick}/torrc`, logPath: `/t/${nick}/notice.log`, detailLogPath: null,
    controlPort: 15200 + i, orPort: 15000 + i, dirPort: 15100 + i, fingerprint: String(i).repeat(40), ed25519: 'A'.repeat(43), v3ident: role === 'authority' ? 'B'.repeat(40) : null, socksPort: null,
  });
  return {
    format: DESCRIPTION_FORMAT, dir: '/t', jsonPath: '/t/network.json', createdAt: '2026-11-26T00:00:00Z', torVersion: '0.4.9.11', netns: 'net:[1]', ownerPid: 1, basePort: 15000,
    nodes: [relay('auth0', 'authority', 0), relay('relay0', 'relay', 1), relay('exit0', 'exit', 2),
      { nick: 'client', role: 'client', pid: 200, dataDir: '/t/client', torrcPath: '/t/client/torrc', logPath: '/t/client/notice.log', detailLogPath: null, controlPort: 15299, socksPort: 15300, orPort: null, dirPort: null, fingerprint: null, ed25519: null, v3ident: null }],
    http: { url: 'http://127.0.0.1:15301/file', port: 15301, fileBytes: 10, fileSha256: 'c'.repeat(64) },
    dirAuthorityLines: ['DirAuthority auth0 orport=15000 no-v2 v3ident=BBBB 127.0.0.1:15100 0000'], dirAuthorityFile: '/t/dirauthorities.torrc', networkFile: '/t/network.torrc', socksPort: 15300,
    timings: { prepareMs: 1, firstConsensusMs: 2, fullConsensusMs: 3, settledMs: 4, clientBootstrappedMs: 5, totalMs: 6, keysFromCache: true },
  };
}

test('description: parses a valid one and names the first bad field', () => {
  const description = parseTestnetDescription(JSON.stringify(sampleDescription()));
  assert.deepEqual(relayNodes(description).map((n) => n.nick), ['auth0', 'relay0', 'exit0']);
  assert.deepEqual(nodesWithRole(description, 'client').map((n) => n.socksPort), [15300]);
  assert.deepEqual(nodesWithRole(description, 'exit').map((n) => n.orPort), [15002]);
  const broken = (mutate: (d: Record<string, unknown> & { nodes: Record<string, unknown>[] }) => void): string => {
    const d = sampleDescription() as Record<string, unknown> & { nodes: Record<string, unknown>[] };
    mutate(d);
    try {
      parseTestnetDescription(JSON.stringify(d), 'x.json');
    } catch (err) {
      assert.ok(err instanceof BadArgumentError);
      return err.message;
    }
    return 'no error';
  };
  assert.match(broken((d) => { d.format = 'other'; }), /^x\.json: format is "other"/);
  assert.match(broken((d) => { d.nodes[1]!.orPort = 0; }), /nodes\[1\]\.orPort is not a port/);
  assert.match(broken((d) => { d.nodes[0]!.fingerprint = 'abc'; }), /nodes\[0\]\.fingerprint/);
  assert.match(broken((d) => { d.nodes[2]!.role = 'bridge'; }), /nodes\[2\]\.role is "bridge"/);
  assert.match(broken((d) => { d.nodes[3]!.socksPort = null; }), /nodes\[3\]\.socksPort/);
  assert.match(broken((d) => { d.dirAuthorityLines = ['FallbackDir x']; }), /dirAuthorityLines/);
  assert.throws(() => parseTestnetDescription('{'), /is not JSON/);
});
