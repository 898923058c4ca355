/**
 * Unit: the test network's onion service (src/testnet): the client's torrc lines
 * (HiddenServiceDir/Port in front of a loopback port, the rend-domain log), the safety
 * check's onion rules, counting tor 0.4.9's upload lines (onion.ts, on lines copied from a
 * real run), the description's `onion` field. No tor, no network.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { onionPublished, onionUploadState, readOnionHostname } from '../../src/testnet/onion.js';
import { planPorts } from '../../src/testnet/ports.js';
import { buildTorrc, dirAuthorityLine, torrcSafetyProblems, type TorrcNetwork } from '../../src/testnet/torrc.js';
import { parseTestnetDescription } from '../../src/testnet/description.js';

const FP = 'ABCDEF0123456789ABCDEF0123456789ABCDEF01';
const net: TorrcNetwork = {
  dirAuthorityLines: [0, 1, 2].map((i) => dirAuthorityLine({ nick: `auth${i}`, orPort: 15000 + i, dirPort: 15100 + i, v3ident: FP, fingerprint: FP })),
  resolvConfPath: '/tmp/x/resolv.conf',
  emptyGeoipPath: '/tmp/x/geoip-empty',
  ownerPid: 1234,
  logLevel: 'notice',
  votingStartOffsetSec: 3,
  initialVotingIntervalSec: 5,
  votingIntervalSec: 10,
  exitPolicy: 'wide',
};
const ADDR = 'oqyxwnadil7nw6ecv7xgs6myfzhicoo7jm677slw5l4sby22zwklarqd';

test('torrc: the client runs the onion service in front of 127.0.0.1 and logs rend at info; the result is safe', () => {
  const ports = planPorts(15000, 6, true);
  const torrc = buildTorrc(
    { nick: 'client', role: 'client', dataDir: '/tmp/x/client', clientPorts: ports.client, onionService: { dir: '/tmp/x/client/hidden_service', virtualPort: 80, targetPort: ports.httpPort, logPath: '/tmp/x/client/rend.log' } },
    net,
  );
  assert.match(torrc, /^HiddenServiceDir \/tmp\/x\/client\/hidden_service$/m);
  assert.match(torrc, /^HiddenServiceVersion 3$/m);
  assert.match(torrc, /^HiddenServicePort 80 127\.0\.0\.1:15301$/m);
  assert.match(torrc, /^Log \[rend\]info file \/tmp\/x\/client\/rend\.log$/m);
  assert.doesNotMatch(torrc, /^HiddenService(SingleHop|NonAnonymous)Mode/m);
  assert.deepEqual(torrcSafetyProblems(torrc), []);
  const plain = buildTorrc({ nick: 'client', role: 'client', dataDir: '/tmp/x/client', clientPorts: ports.client }, net);
  assert.doesNotMatch(plain, /HiddenService/);
});

test('torrc safety check: an onion service must forward to loopback and stay anonymous', () => {
  const base = buildTorrc({ nick: 'client', role: 'client', dataDir: '/d', clientPorts: planPorts(15000, 6, true).client }, net);
  assert.equal(torrcSafetyProblems(`${base}HiddenServicePort 80 10.0.0.1:80\n`).length, 1);
  assert.equal(torrcSafetyProblems(`${base}HiddenServicePort 80 127.0.0.1:80\n`).length, 0);
  assert.equal(torrcSafetyProblems(`${base}HiddenServiceSingleHopMode 1\n`).length, 1);
  assert.equal(torrcSafetyProblems(`${base}HiddenServiceNonAnonymousMode 1\n`).length, 1);
});

// Lines as tor 0.4.9.x wrote them on the test network (trimmed of their index hex).
const LOG = [
  `Dec 03 07:02:46.178 [info] log_cant_upload_desc(): Service ${ADDR} can't upload its current descriptor: Intro circuits aren't yet all established (0/3).`,
  `Dec 03 07:02:47.174 [info] run_upload_descriptor_event(): Initiating upload for hidden service current descriptor for service ${ADDR} with 3/3 introduction points.`,
  `Dec 03 07:02:47.175 [info] upload_descriptor_to_hsdir(): Service ${ADDR} current descriptor of revision 13435848 initiated upload request to $C4703A178138E2DB3F4BAA0CFBFF29500AFA71C1~auth1 [i5medwndXlMwhhD94vhyyY1mBvx/BQ9u9wD0ujtvLiM] at 127.0.0.1 with index 00 (11)`,
  `Dec 03 07:02:47.176 [info] upload_descriptor_to_hsdir(): Service ${ADDR} current descriptor of revision 13435848 initiated upload request to $637591C88ABB91FEAAC32DC81C525644C62C98C8~relay0 [k4KUuPPmOmkBcjqM4qQhNmSdnK9rf4PsFkNTKDSdo1Y] at 127.0.0.1 with index 00 (11)`,
  `Dec 03 07:02:47.180 [info] upload_descriptor_to_hsdir(): Service ${ADDR} next descriptor of revision 5270078 initiated upload request to $637591C88ABB91FEAAC32DC81C525644C62C98C8~relay0 [k4KUuPPmOmkBcjqM4qQhNmSdnK9rf4PsFkNTKDSdo1Y] at 127.0.0.1 with index 00 (22)`,
];
const OK = [
  'Dec 03 07:02:47.321 [info] handle_response_upload_hsdesc(): Uploaded hidden service descriptor (status 200 ("HS descriptor stored successfully."))',
  'Dec 03 07:02:47.321 [info] handle_response_upload_hsdesc(): Uploading hidden service descriptor: finished with status 200 ("HS descriptor stored successfully.")',
];

test('onionUploadState: counts started, answered and accepted uploads; published once all are answered and one was accepted', () => {
  const none = onionUploadState('');
  assert.deepEqual(none, { initiated: { current: 0, next: 0 }, answered: 0, accepted: 0, lastLine: undefined });
  const started = onionUploadState(LOG.join('\n'));
  assert.deepEqual(started.initiated, { current: 2, next: 1 });
  assert.equal(started.answered, 0);
  assert.equal(onionPublished(started), false);
  const two = onionUploadState([...LOG, ...OK, ...OK].join('\n'));
  assert.equal(two.accepted, 2);
  assert.equal(onionPublished(two), false, 'one upload unanswered');
  const all = onionUploadState([...LOG, ...OK, ...OK, ...OK, ''].join('\n'));
  assert.equal(all.answered, 3);
  assert.equal(onionPublished(all), true);
  assert.match(all.lastLine ?? '', /finished with status 200/);
  const refused = onionUploadState([...LOG, 'x Uploaded hidden service descriptor (status 400 ("bad"))', 'x Uploaded hidden service descriptor (status 400 ("bad"))', 'x Uploaded hidden service descriptor (status 400 ("bad"))'].join('\n'));
  assert.equal(onionPublished(refused), false, 'nothing accepted');
  assert.equal(onionPublished(onionUploadState([LOG[4]!, ...OK].join('\n'))), false, 'only the next descriptor went out');
});

test('readOnionHostname: the address once tor wrote a valid one', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'orport-onion-unit-'));
  try {
    assert.equal(await readOnionHostname(dir), undefined);
    writeFileSync(join(dir, 'hostname'), 'not-an-address\n');
    assert.equal(await readOnionHostname(dir), undefined);
    writeFileSync(join(dir, 'hostname'), `${ADDR}.onion\n`);
    assert.equal(await readOnionHostname(dir), `${ADDR}.onion`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('description: onion is read, checked, and null when absent (older files)', () => {
  const node = { nick: 'auth0', role: 'authority', pid: 1, controlPort: 15200, orPort: 15000, dirPort: 15100, fingerprint: FP, ed25519: 'A'.repeat(43), dataDir: '/d', torrcPath: '/d/torrc', logPath: '/d/n.log', detailLogPath: null, v3ident: FP, socksPort: null };
  const base = { format: 'orport-testnet/1', dir: '/d', jsonPath: '/d/network.json', torVersion: '0.4.9', dirAuthorityFile: '/d/a', networkFile: '/d/n', nodes: [node], dirAuthorityLines: ['DirAuthority x'], http: { url: 'u', fileSha256: 'h', fileBytes: 1 }, timings: {} };
  assert.equal(parseTestnetDescription(JSON.stringify(base)).onion, null);
  const onion = { address: `${ADDR}.onion`, port: 80, nick: 'client', hiddenServiceDir: '/d/hs', logPath: '/d/rend.log', uploads: 12, publishedMs: 10573 };
  assert.deepEqual(parseTestnetDescription(JSON.stringify({ ...base, onion })).onion, onion);
  assert.throws(() => parseTestnetDescription(JSON.stringify({ ...base, onion: { ...onion, address: 'x.onion' } })), /onion\.address/);
  assert.throws(() => parseTestnetDescription(JSON.stringify({ ...base, onion: { ...onion, port: 0 } })), /onion\.port/);
});
