/**
 * `orport probe` and `orport scan` without tor: target-list parsing, the reports, and
 * both engines against fake ORPorts on loopback (a good relay, one answering for another
 * identity, one with a broken chain, a closed port).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { exitStatus, formatProbe, probeRelay, EXIT } from '../../src/cli/probe.js';
import { formatSummary, parseTargets, progressLine, scanTargets, type ScanResult } from '../../src/cli/scan.js';
import { BadArgumentError } from '../../src/errors.js';
import { buildCertChain, generateEd25519Key, generateRsaKey } from '../../src/testing/certchain.js';
import { chainRelay, type ChainRelay } from '../support/chainrelay.js';
import { flipBit, withCert } from '../support/certvectors.js';

const FP = '1CB13F064E0E62F4D1B1E02A9CAF08226AAEEC40';
const ED = 'HSquSp2sZ7VEOGYl2DpwIQP3JJ56k/KlS8LPvx71FB4';

test('parseTargets: host:port with an optional fingerprint and Ed25519 id, comments, IPv6, blank lines', () => {
  const targets = parseTargets(
    [
      '# relays',
      '127.0.0.1:5000',
      '',
      `10.0.0.1:9001 $${FP.toLowerCase()}   # with a comment`,
      `[2001:db8::1]:443 ${ED}= ${FP}`,
      `relay.example.net:9001 ${ED}`,
    ].join('\n'),
  );
  assert.deepEqual(targets, [
    { host: '127.0.0.1', port: 5000 },
    { host: '10.0.0.1', port: 9001, rsa: FP },
    { host: '2001:db8::1', port: 443, rsa: FP, ed25519: ED },
    { host: 'relay.example.net', port: 9001, ed25519: ED },
  ]);
});

test('parseTargets: a bad line is an error naming the source and line', () => {
  assert.throws(() => parseTargets('127.0.0.1:5000\nnot-a-target\n', 'relays.txt'), (err: unknown) => {
    assert.ok(err instanceof BadArgumentError);
    assert.match(err.message, /^relays\.txt line 2: 'not-a-target' is not HOST:PORT/);
    return true;
  });
  assert.throws(() => parseTargets('127.0.0.1:70000'), /port 70000 is not 1-65535/);
  assert.throws(() => parseTargets('127.0.0.1:1 ABCDEF'), /neither a 40-hex-digit RSA fingerprint nor a base64 Ed25519 identity/);
});

test('progress line and summary', () => {
  assert.equal(progressLine(5, 10, { ok: 3, mismatch: 1, unreachable: 1, brokenChain: 0 }, 10), '[#####.....] 5/10  ok 3  mismatch 1  unreachable 1  broken chain 0');
  const text = formatSummary({ total: 4, ok: 1, mismatch: 1, unreachable: 1, brokenChain: 1, elapsedMs: 1500, handshakesPerSecond: 0.7 });
  assert.match(text, /scanned 4 relays in 1\.50 s/);
  assert.match(text, /ok +1\n +mismatch +1\n +unreachable +1\n +broken chain +1/);
});

test('probe exit statuses: 0 ok, 1 unreachable, 3 mismatch, 4 broken chain', () => {
  assert.deepEqual(
    (['ok', 'unreachable', 'mismatch', 'broken-chain'] as const).map(exitStatus),
    [EXIT.ok, EXIT.unreachable, EXIT.mismatch, EXIT.brokenChain],
  );
  assert.deepEqual([EXIT.ok, EXIT.unreachable, EXIT.mismatch, EXIT.brokenChain], [0, 1, 3, 4]);
});

// ---------------------------------------------------------------------------------
// Against fake relays

const keys = { rsaIdentity: generateRsaKey(1024), tls: generateRsaKey(2048), ed25519Identity: generateEd25519Key(), ed25519Signing: generateEd25519Key() };
const good = buildCertChain({ keys });
const other = buildCertChain({ keys: { ...keys, rsaIdentity: generateRsaKey(1024), ed25519Identity: generateEd25519Key() } });
const fakes: ChainRelay[] = [];
after(async () => {
  await Promise.all(fakes.map((f) => f.close()));
});
/** A fake relay presenting `chain`'s TLS certificate and sending `certs` (default the chain's). */
const serve = async (certs = good.certificates, chain = good) => {
  const f = await chainRelay(chain, certs);
  fakes.push(f);
  return f.port;
};
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

test('probeRelay: a good relay — identity, chain with every cert and its dates, link versions, clock, our address', async () => {
  const port = await serve();
  const r = await probeRelay('127.0.0.1', port, { rsa: good.identity.rsa, ed25519: good.identity.ed25519, timeoutMs: 1000 });
  assert.equal(r.status, 'ok');
  assert.deepEqual(r.identity, good.identity);
  assert.equal(r.chain!.verified, true);
  assert.deepEqual(r.chain!.certificates.map((c) => [c.type, c.verified]), [[1, false], [2, true], [4, true], [5, true], [7, true]]);
  assert.ok(r.chain!.certificates.every((c) => c.expires !== undefined));
  assert.deepEqual(r.link!.tested.map((t) => [t.version, t.accepted]), [[3, true], [4, true], [5, true]]);
  assert.equal(r.link!.negotiated, 5);
  assert.equal(r.ourAddress, '127.0.0.1');
  assert.ok(Math.abs(r.clockSkewMs!) <= 1000);
  // The fake answers no CREATE_FAST: reported, not thrown.
  assert.equal(r.createFast!.ok, false);
  const text = formatProbe(r);
  assert.match(text, /: OK\n/);
  assert.match(text, new RegExp(`rsa id +${good.identity.rsa} += pinned`));
  assert.match(text, /type 5 \(Ed25519 TLS link cert\) +\d+ bytes +expires /);
});

test('probeRelay: a relay proving another identity than pinned — mismatch, no CREATE_FAST tried', async () => {
  const port = await serve(other.certificates, other);
  const r = await probeRelay('127.0.0.1', port, { rsa: good.identity.rsa, timeoutMs: 1000 });
  assert.equal(r.status, 'mismatch');
  assert.equal(r.error!.keyType, 'rsa');
  assert.equal(r.error!.expected, good.identity.rsa);
  assert.equal(r.error!.seen, other.identity.rsa);
  assert.match(r.createFast!.skipped!, /not the one pinned/);
  assert.match(formatProbe(r), /IDENTITY MISMATCH[\s\S]*≠ pinned/);
});

test('probeRelay: a broken chain is shown cert by cert, with the failed check', async () => {
  const port = await serve(withCert(good.certificates, 7, flipBit(good.crossCert.encoded, -1)));
  const r = await probeRelay('127.0.0.1', port, { timeoutMs: 1000 });
  assert.equal(r.status, 'broken-chain');
  assert.equal(r.error!.cert, 'type 7 (RSA->Ed25519 cross-cert)');
  assert.equal(r.error!.check, 'signature');
  assert.equal(r.identity, undefined);
  assert.equal(r.chain!.certificates.length, 5);
  assert.match(formatProbe(r), /BROKEN CERTIFICATE CHAIN[\s\S]*DOES NOT VERIFY: type 7/);
});

test('probeRelay: nothing listening — unreachable, quickly', async () => {
  const t0 = performance.now();
  const r = await probeRelay('127.0.0.1', await closedPort(), { timeoutMs: 5000 });
  assert.equal(r.status, 'unreachable');
  assert.equal(r.error!.code, 'E_NETWORK');
  assert.ok(performance.now() - t0 < 3000);
});

test('scanTargets: each outcome counted — ok, mismatch, broken chain, unreachable — with bounded concurrency', async () => {
  const ok = await serve();
  const broken = await serve(good.certificates.filter((c) => c.typeInt !== 4));
  const closed = await closedPort();
  const targets = [
    { host: '127.0.0.1', port: ok, rsa: good.identity.rsa, ed25519: good.identity.ed25519 },
    { host: '127.0.0.1', port: ok },
    { host: '127.0.0.1', port: ok, rsa: other.identity.rsa },
    { host: '127.0.0.1', port: ok, rsa: good.identity.rsa, ed25519: other.identity.ed25519 },
    { host: '127.0.0.1', port: broken },
    { host: '127.0.0.1', port: closed },
  ];
  const results: ScanResult[] = [];
  const summary = await scanTargets(targets, { concurrency: 2, timeoutMs: 2000 }, (r) => results.push(r));
  assert.deepEqual(
    { total: summary.total, ok: summary.ok, mismatch: summary.mismatch, brokenChain: summary.brokenChain, unreachable: summary.unreachable },
    { total: 6, ok: 2, mismatch: 2, brokenChain: 1, unreachable: 1 },
  );
  assert.equal(results.length, 6);
  const brokenResult = results.find((r) => r.status === 'broken-chain')!;
  assert.equal(brokenResult.error!.check, 'missing');
  assert.equal(brokenResult.error!.cert, 'type 4 (Ed25519 signing-key cert)');
  for (const r of results.filter((x) => x.status === 'ok')) {
    assert.deepEqual(r.identity, good.identity);
    assert.equal(r.linkProtocol, 5);
    assert.ok(r.chainExpires);
  }
});
