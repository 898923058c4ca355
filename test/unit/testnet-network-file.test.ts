/**
 * Unit: the test network's network file (network.torrc, written next to
 * network.json) reads with `Network.fromTorrc` / `Network.fromFile` into the
 * authorities its description lists, as a test network (TestingTorNetwork 1,
 * no fallbacks), and passes the launcher's own torrc safety check. Writes into
 * a temporary directory; no tor, no network.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Network, TESTING_RULES } from '../../src/dir/network.js';
import { DESCRIPTION_FORMAT, nodesWithRole, parseTestnetDescription, type TestnetDescription } from '../../src/testnet/description.js';
import { writeNetworkFiles } from '../../src/testnet/testnet.js';
import { buildTorrc, dirAuthorityLine, networkTorrc, torrcSafetyProblems } from '../../src/testnet/torrc.js';

const hex = (c: string): string => c.repeat(40);

/** A description as the launcher writes it (3 authorities, one relay), with its network files in `dir`. */
function describe(dir: string, lines: readonly string[]): TestnetDescription {
  const node = (nick: string, role: 'authority' | 'relay', i: number) => ({
    nick, role, pid: 100 + i, dataDir: join(dir, nick), torrcPath: join(dir, nick, 'torrc'), logPath: join(dir, nick, 'notice.log'), detailLogPath: null,
    controlPort: 15200 + i, orPort: 15000 + i, dirPort: 15100 + i, fingerprint: hex('ABCD'[i] ?? 'E'), ed25519: 'A'.repeat(43),
    v3ident: role === 'authority' ? hex('1234'[i] ?? '5') : null, socksPort: null,
  });
  return parseTestnetDescription(JSON.stringify({
    format: DESCRIPTION_FORMAT, dir, jsonPath: join(dir, 'network.json'), createdAt: '2026-01-01T00:00:00Z', torVersion: '0.4.9.11', netns: 'net:[1]', ownerPid: 1, basePort: 15000,
    nodes: [node('auth0', 'authority', 0), node('auth1', 'authority', 1), node('auth2', 'authority', 2), node('relay0', 'relay', 3)],
    http: { url: 'http://127.0.0.1:15301/file', port: 15301, fileBytes: 1, fileSha256: 'c'.repeat(64) },
    dirAuthorityLines: lines, dirAuthorityFile: join(dir, 'dirauthorities.torrc'), networkFile: join(dir, 'network.torrc'), socksPort: null,
    timings: { prepareMs: 1, firstConsensusMs: 2, fullConsensusMs: 3, settledMs: 4, clientBootstrappedMs: null, totalMs: 6, keysFromCache: true },
  }));
}

test('the network file written next to network.json reads into the described authorities', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'orport-netfile-'));
  try {
    // The lines as bootNetwork makes them: from each authority's ports and keys.
    const authorities = [0, 1, 2].map((i) => ({ nick: `auth${i}`, orPort: 15000 + i, dirPort: 15100 + i, fingerprint: hex('ABCD'[i] ?? 'E'), v3ident: hex('1234'[i] ?? '5') }));
    const lines = authorities.map((a) => dirAuthorityLine(a));
    const files = await writeNetworkFiles(dir, lines);
    assert.deepEqual(files, { dirAuthorityFile: join(dir, 'dirauthorities.torrc'), networkFile: join(dir, 'network.torrc') });
    const description = describe(dir, lines);
    assert.equal(description.networkFile, files.networkFile);

    const text = await readFile(description.networkFile, 'utf8');
    assert.equal(text, networkTorrc(lines, dir));
    assert.deepEqual(torrcSafetyProblems(text), []);
    const { network, warnings } = Network.parseTorrc(text, { source: description.networkFile });
    assert.deepEqual(warnings, []);
    assert.equal(network.testing, true);
    assert.equal(network.rules, TESTING_RULES);
    assert.deepEqual(network.fallbacks, []);
    assert.deepEqual(
      network.authorities.map((a) => ({ nick: a.nickname, address: a.address, orPort: a.orPort, dirPort: a.dirPort, rsa: a.rsa, v3ident: a.v3ident })),
      nodesWithRole(description, 'authority').map((n) => ({ nick: n.nick, address: '127.0.0.1', orPort: n.orPort, dirPort: n.dirPort, rsa: n.fingerprint, v3ident: n.v3ident })),
    );
    assert.equal(network.requiredSignatures, 2);
    assert.deepEqual(await Network.fromFile(description.networkFile), network);
    // The nodes' own torrcs describe the same network; so does the DirAuthority-only file with TestingTorNetwork added.
    const relayTorrc = buildTorrc(
      { nick: 'relay0', role: 'relay', dataDir: join(dir, 'relay0'), relayPorts: { orPort: 15003, dirPort: 15103, controlPort: 15203 } },
      { dirAuthorityLines: lines, resolvConfPath: '/r', emptyGeoipPath: '/g', ownerPid: 1, logLevel: 'info', votingStartOffsetSec: 0, initialVotingIntervalSec: 5, votingIntervalSec: 10, exitPolicy: 'wide' },
    );
    assert.deepEqual(Network.fromTorrc(relayTorrc), network);
    assert.deepEqual(Network.fromTorrc(`TestingTorNetwork 1\n${await readFile(files.dirAuthorityFile, 'utf8')}`), network);
    // And it round-trips.
    assert.deepEqual(Network.fromTorrc(network.toTorrc()), network);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
