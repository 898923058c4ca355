/**
 * Relay.connect checks who answered, end to end over TLS on loopback: the fake relay
 * (VERSIONS, CERTS, AUTH_CHALLENGE, NETINFO; no CREATE_FAST) serves a chain built from fresh keys
 * (src/testing/certchain). Verification is on by default; a pinned identity that differs
 * fails with IdentityMismatchError, a broken chain with CertificateError — both before
 * our NETINFO, so before any circuit can exist; verification can be turned off.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Certificate } from '../../src/index.js';
import { Relay } from '../../src/client/relay.js';
import { VERIFY_BY_DEFAULT } from '../../src/crypto/certs.js';
import { buildCertChain, generateEd25519Key, generateRsaKey, type GeneratedChain } from '../../src/testing/certchain.js';
import { BadArgumentError, CertificateError, IdentityMismatchError } from '../../src/errors.js';
import { flipBit, withCert } from '../support/certvectors.js';
import { chainRelay, type ChainRelay } from '../support/chainrelay.js';

const keys = { rsaIdentity: generateRsaKey(1024), tls: generateRsaKey(2048), ed25519Identity: generateEd25519Key(), ed25519Signing: generateEd25519Key() };
const chainA: GeneratedChain = buildCertChain({ keys });
const chainB: GeneratedChain = buildCertChain({ keys: { ...keys, tls: generateRsaKey(2048) } });

const relays: ChainRelay[] = [];
after(async () => {
  await Promise.all(relays.map((r) => r.close()));
});
/** A fake relay presenting `chain`'s TLS certificate and sending `certs` in its CERTS cell. */
async function serve(chain: GeneratedChain, certs: readonly Certificate[]): Promise<ChainRelay> {
  const r = await chainRelay(chain, certs);
  relays.push(r);
  return r;
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  assert.fail('expected connect to fail');
}

/** Waits for the fake relay to see the client go (its socket closed). */
const settle = () => new Promise((r) => setTimeout(r, 50));

test('verification is on by default: a good chain connects and relay.identity is what the keys prove', async () => {
  assert.equal(VERIFY_BY_DEFAULT, true);
  const fake = await serve(chainA, chainA.certificates);
  const relay = await Relay.connect('127.0.0.1', fake.port);
  try {
    assert.deepEqual(relay.identity, chainA.identity);
    assert.deepEqual(relay.chain!.certificates.map((c) => c.type), [2, 4, 5, 7]);
    assert.deepEqual(relay.peerCertificate, chainA.tlsCertificate);
  } finally {
    await relay.close();
  }
});

test('a pinned identity that matches connects', async () => {
  const fake = await serve(chainA, chainA.certificates);
  const relay = await Relay.connect('127.0.0.1', fake.port, undefined, { identity: { rsa: chainA.identity.rsa, ed25519: chainA.identity.ed25519 } });
  await relay.close();
  const relay2 = await Relay.connect('127.0.0.1', fake.port, undefined, { identity: { rsa: `$${chainA.identity.rsa.toLowerCase()}` } });
  await relay2.close();
});

test('a wrong pinned RSA or Ed25519 identity: IdentityMismatchError (expected vs seen), before our NETINFO', async () => {
  const fake = await serve(chainA, chainA.certificates);
  const other = buildCertChain({ keys: { ...keys, rsaIdentity: generateRsaKey(1024), ed25519Identity: generateEd25519Key() } });

  const rsaErr = await rejection(Relay.connect('127.0.0.1', fake.port, undefined, { identity: { rsa: other.identity.rsa } }));
  assert.ok(rsaErr instanceof IdentityMismatchError, String(rsaErr));
  assert.equal(rsaErr.keyType, 'rsa');
  assert.equal(rsaErr.expected, other.identity.rsa);
  assert.equal(rsaErr.seen, chainA.identity.rsa);

  const edErr = await rejection(Relay.connect('127.0.0.1', fake.port, undefined, { identity: { rsa: chainA.identity.rsa, ed25519: other.identity.ed25519 } }));
  assert.ok(edErr instanceof IdentityMismatchError, String(edErr));
  assert.equal(edErr.keyType, 'ed25519');
  assert.equal(edErr.expected, other.identity.ed25519);
  assert.equal(edErr.seen, chainA.identity.ed25519);

  await settle();
  // The client sent nothing after VERSIONS: no NETINFO, so no CREATE could follow.
  assert.deepEqual(fake.afterVersions(), [0, 0]);
});

test('a relay presenting a different TLS certificate than the one its link cert certifies: CertificateError (type 5, tls-certificate)', async () => {
  const fake = await serve(chainB, chainA.certificates);
  const err = await rejection(Relay.connect('127.0.0.1', fake.port));
  assert.ok(err instanceof CertificateError, String(err));
  assert.equal(err.cert, 'type 5 (Ed25519 TLS link cert)');
  assert.equal(err.check, 'tls-certificate');
  await settle();
  assert.deepEqual(fake.afterVersions(), [0]);
});

test('a tampered chain on the wire: CertificateError naming the cert and the check', async () => {
  const tampered = withCert(chainA.certificates, 4, flipBit(chainA.signingCert.encoded, -1));
  const fake = await serve(chainA, tampered);
  const err = await rejection(Relay.connect('127.0.0.1', fake.port));
  assert.ok(err instanceof CertificateError, String(err));
  assert.equal(err.cert, 'type 4 (Ed25519 signing-key cert)');
  assert.equal(err.check, 'signature');
  assert.match(err.message, /^type 4 \(Ed25519 signing-key cert\): is not signed by the identity key it names/);
});

test('verifyCertificates: false connects to a broken relay (for research); relay.chain and relay.identity are undefined', async () => {
  const fake = await serve(chainB, chainA.certificates.filter((c) => c.typeInt !== 7));
  const relay = await Relay.connect('127.0.0.1', fake.port, undefined, { verifyCertificates: false });
  try {
    assert.equal(relay.chain, undefined);
    assert.equal(relay.identity, undefined);
    assert.equal(relay.certs.certificates.length, 4);
  } finally {
    await relay.close();
  }
});

test('a pinned identity with verification turned off is refused up front (nothing would prove it)', async () => {
  const err = await rejection(Relay.connect('127.0.0.1', 9, undefined, { verifyCertificates: false, identity: { rsa: chainA.identity.rsa } }));
  assert.ok(err instanceof BadArgumentError, String(err));
  assert.match(err.message, /pinned identity needs verifyCertificates/);
});
