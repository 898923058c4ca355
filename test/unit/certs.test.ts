/**
 * CERTS chain verification (tor-spec 4.2): the chains captured from every relay of a
 * private tor network verify and prove the identities tor wrote for them; each way of
 * breaking a chain is rejected naming the certificate and the check. Tampered vectors
 * are the captured ones with one thing changed; what can't be made by editing bytes
 * (a re-signed chain with one cert expired, an unknown critical extension…) is built
 * from fresh keys by src/testing/certchain.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, createHash } from 'node:crypto';
import fc from 'fast-check';
import {
  CERT_NAMES,
  X509_FUTURE_SLOP_MS,
  X509_PAST_SLOP_MS,
  identityMismatch,
  listCertificates,
  verifyCertsCell,
  type CertCheck,
} from '../../src/crypto/certs.js';
import { Ed25519Cert, RsaCrossCert, signedWithKeyExtension, hoursSinceEpoch, AFFECTS_VALIDATION, type Ed25519CertFields } from '../../src/crypto/ed25519cert.js';
import { buildX509, fingerprintOf, parseX509, x509RsaKey } from '../../src/crypto/x509.js';
import { buildCertChain, generateEd25519Key, generateRsaKey, type ChainKeys } from '../../src/testing/certchain.js';
import { CertificateError, IdentityMismatchError } from '../../src/errors.js';
import { Certificate } from '../../src/codec/datatype.js';
import { CertsCell } from '../../src/codec/cell.js';
import { capturedRelays, certOfType, flipBit, withCert, type CapturedRelay } from '../support/certvectors.js';

const RUNS = Number(process.env.ORPORT_FUZZ_RUNS ?? 100);
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** Asserts that verification fails with CertificateError(cert of `type`, `check`). */
function rejects(fn: () => unknown, type: number, check: CertCheck, message?: RegExp): CertificateError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof CertificateError, `expected a CertificateError, got ${String(err)}`);
    assert.equal(err.cert, CERT_NAMES[type], `wrong cert named: ${err.message}`);
    assert.equal(err.check, check, `wrong check: ${err.message}`);
    assert.equal(err.code, 'E_CERTS');
    assert.equal(err.kind, 'identity');
    if (message) assert.match(err.message, message);
    return err;
  }
  assert.fail(`expected ${CERT_NAMES[type]} to fail '${check}', but the chain verified`);
}

const relays = capturedRelays();
const verify = (r: CapturedRelay, certs: readonly Certificate[] = r.certificates, tls = r.tlsCertificate, now = r.capturedAt) => verifyCertsCell(certs, tls, now);

// ---------------------------------------------------------------------------------
// Captured chains

test(`every captured relay (${relays.length}) verifies, proving the RSA fingerprint and Ed25519 id tor wrote for it`, () => {
  assert.ok(relays.length >= 5);
  for (const r of relays) {
    const chain = verify(r);
    assert.deepEqual(chain.identity, { rsa: r.fingerprint, ed25519: r.ed25519 }, r.nick);
    assert.deepEqual(chain.certificates.map((c) => c.type), [2, 4, 5, 7]);
    assert.equal(chain.expires.getTime(), Math.min(...chain.certificates.map((c) => c.expires.getTime())));
    // The CERTS cell object works as well as the list.
    assert.deepEqual(verifyCertsCell(new CertsCell(r.certificates), r.tlsCertificate, r.capturedAt).identity, chain.identity);
  }
});

test('the RSA fingerprint is SHA-1 of the DER PKCS#1 key, as OpenSSL exports it', () => {
  for (const r of relays) {
    const x = new X509Certificate(certOfType(r.certificates, 2).value);
    const fp = createHash('sha1').update(x.publicKey.export({ type: 'pkcs1', format: 'der' })).digest('hex').toUpperCase();
    assert.equal(fp, r.fingerprint);
  }
});

test('our X.509 reading agrees with OpenSSL (node X509Certificate) on every captured certificate', () => {
  for (const r of relays) {
    for (const der of [certOfType(r.certificates, 1).value, certOfType(r.certificates, 2).value, r.tlsCertificate]) {
      const ours = parseX509(der);
      const theirs = new X509Certificate(der);
      assert.equal(ours.notBefore.getTime(), Date.parse(theirs.validFrom));
      assert.equal(ours.notAfter.getTime(), Date.parse(theirs.validTo));
      const key = x509RsaKey(ours)!;
      assert.equal(key.bits, theirs.publicKey.asymmetricKeyDetails!.modulusLength);
      assert.deepEqual(key.pkcs1, new Uint8Array(theirs.publicKey.export({ type: 'pkcs1', format: 'der' })));
    }
  }
});

test('type 1 (the RSA link cert) is neither required nor checked, as on tor’s Ed25519 path', () => {
  const r = relays[0]!;
  assert.equal(verify(r, r.certificates.filter((c) => c.typeInt !== 1)).identity.rsa, r.fingerprint);
  assert.equal(verify(r, withCert(r.certificates, 1, Uint8Array.of(1, 2, 3))).identity.rsa, r.fingerprint);
  // Unknown types are ignored, even twice.
  assert.ok(verify(r, [...r.certificates, new Certificate(42, new Uint8Array(3)), new Certificate(42, new Uint8Array(1))]));
});

test('one flipped bit in each certificate’s signature: rejected as a bad signature of that certificate', () => {
  for (const r of relays) {
    for (const type of [2, 4, 5, 7]) {
      const value = certOfType(r.certificates, type).value;
      for (const bit of [0, 7]) {
        // Every one of these certs ends with its signature.
        rejects(() => verify(r, withCert(r.certificates, type, flipBit(value, -1, bit))), type, 'signature');
        rejects(() => verify(r, withCert(r.certificates, type, flipBit(value, -40, bit))), type, 'signature');
      }
    }
  }
});

test('property: any single flipped bit in types 2, 4, 5 or 7 is rejected (never verifies)', () => {
  const r = relays[0]!;
  fc.assert(
    fc.property(fc.constantFrom(2, 4, 5, 7), fc.nat(), fc.integer({ min: 0, max: 7 }), (type, pos, bit) => {
      const value = certOfType(r.certificates, type).value;
      const at = pos % value.length;
      assert.throws(() => verify(r, withCert(r.certificates, type, flipBit(value, at, bit))), (err: unknown) => {
        assert.ok(err instanceof CertificateError, String(err));
        return true;
      });
    }),
    { numRuns: RUNS * 4 },
  );
});

test('each required certificate type missing: rejected as missing', () => {
  for (const type of [2, 4, 5, 7]) {
    const r = relays[1]!;
    rejects(() => verify(r, r.certificates.filter((c) => c.typeInt !== type)), type, 'missing', /is missing/);
  }
  rejects(() => verifyCertsCell([], new Uint8Array(1), new Date()), 2, 'missing');
});

test('each certificate type duplicated: rejected as a duplicate (even an identical copy)', () => {
  const r = relays[2]!;
  for (const type of [1, 2, 4, 5, 7]) {
    const c = certOfType(r.certificates, type);
    rejects(() => verify(r, [...r.certificates, c]), type, 'duplicate', /appears 2 times/);
    // A second, different cert of the type from another relay.
    rejects(() => verify(r, [certOfType(relays[3]!.certificates, type), ...r.certificates]), type, 'duplicate');
  }
  for (const type of [3, 6]) rejects(() => verify(r, [...r.certificates, new Certificate(type, Uint8Array.of(1)), new Certificate(type, Uint8Array.of(2))]), type, 'duplicate');
});

test('expired certificates (captured, checked later): the link cert first, then the signing-key cert, then the identity after tor’s 2-day X.509 slop', () => {
  for (const r of relays) {
    const link = Ed25519Cert.decode(certOfType(r.certificates, 5).value);
    const signing = Ed25519Cert.decode(certOfType(r.certificates, 4).value);
    assert.ok(verify(r, undefined, undefined, link.expires), 'valid up to and including the expiry instant');
    rejects(() => verify(r, undefined, undefined, new Date(link.expires.getTime() + 1)), 5, 'expired', /expired at/);
    const id = parseX509(certOfType(r.certificates, 2).value);
    // (Where the identity cert runs out first, it is the one named: type 2 is checked first.)
    const idFirst = id.notAfter.getTime() + X509_PAST_SLOP_MS < signing.expires.getTime() + 1;
    rejects(() => verify(r, undefined, undefined, new Date(signing.expires.getTime() + 1)), idFirst ? 2 : 4, 'expired');
    rejects(() => verify(r, undefined, undefined, new Date(id.notAfter.getTime() + X509_PAST_SLOP_MS + 1)), 2, 'expired');
  }
});

test('a link cert that certifies another TLS certificate (a relay presenting a different TLS cert): rejected, naming both digests', () => {
  for (let i = 0; i < relays.length; i++) {
    const r = relays[i]!;
    const other = relays[(i + 1) % relays.length]!;
    const err = rejects(() => verify(r, r.certificates, other.tlsCertificate), 5, 'tls-certificate');
    assert.match(err.message, new RegExp(createHash('sha256').update(other.tlsCertificate).digest('hex')));
    rejects(() => verify(r, r.certificates, new Uint8Array(0)), 5, 'tls-certificate', /no TLS certificate/);
    rejects(() => verify(r, r.certificates, flipBit(r.tlsCertificate, 100)), 5, 'tls-certificate');
  }
});

test('certificates mixed from two relays: each mix is caught where the chain breaks', () => {
  const [a, b] = [relays[3]!, relays[4]!];
  // B's identity cert: A's cross-cert is not signed by B's RSA key.
  rejects(() => verify(a, withCert(a.certificates, 2, certOfType(b.certificates, 2).value)), 7, 'signature');
  // B's signing-key cert: A's link cert is not signed by B's signing key.
  rejects(() => verify(a, withCert(a.certificates, 4, certOfType(b.certificates, 4).value)), 5, 'signature');
  // B's link cert: certifies B's TLS certificate.
  rejects(() => verify(a, withCert(a.certificates, 5, certOfType(b.certificates, 5).value)), 5, 'tls-certificate');
  rejects(() => verify(a, withCert(a.certificates, 5, certOfType(b.certificates, 5).value), b.tlsCertificate), 5, 'signature');
  // B's cross-cert: certifies B's Ed25519 identity.
  rejects(() => verify(a, withCert(a.certificates, 7, certOfType(b.certificates, 7).value)), 7, 'identity', /certifies Ed25519 identity/);
  // B's whole chain and B's TLS cert is just B.
  assert.equal(verify(a, b.certificates, b.tlsCertificate).identity.rsa, b.fingerprint);
});

test('malformed certificates: rejected as undecodable, naming the certificate', () => {
  const r = relays[0]!;
  for (const type of [2, 4, 5, 7]) {
    const value = certOfType(r.certificates, type).value;
    rejects(() => verify(r, withCert(r.certificates, type, value.subarray(0, value.length - 1))), type, 'decode');
    rejects(() => verify(r, withCert(r.certificates, type, new Uint8Array(0))), type, 'decode');
    rejects(() => verify(r, withCert(r.certificates, type, Uint8Array.of(...value, 0))), type, 'decode');
  }
});

test('the CERT_TYPE inside an Ed25519 cert must match its CERTS type: type 4 and 5 swapped is rejected', () => {
  const r = relays[0]!;
  const swapped = r.certificates.map((c) => (c.typeInt === 4 ? new Certificate(5, c.value) : c.typeInt === 5 ? new Certificate(4, c.value) : c));
  rejects(() => verify(r, swapped), 4, 'cert-type', /has CERT_TYPE 5 inside, expected 4/);
});

test('listCertificates lists every certificate with its dates, unverified', () => {
  const r = relays[0]!;
  const list = listCertificates(r.certificates);
  assert.deepEqual(list.map((c) => c.type), r.certificates.map((c) => c.typeInt));
  for (const c of list) {
    assert.ok(c.expires instanceof Date, `${c.name} has an expiry`);
    assert.equal(c.error, undefined);
  }
  assert.ok(list.find((c) => c.type === 2)!.validFrom instanceof Date);
  assert.match(listCertificates([new Certificate(4, Uint8Array.of(1))])[0]!.error!, /Ed25519 certificate/);
});

// ---------------------------------------------------------------------------------
// Chains built from fresh keys

const keys: ChainKeys = { rsaIdentity: generateRsaKey(1024), tls: generateRsaKey(1024), ed25519Identity: generateEd25519Key(), ed25519Signing: generateEd25519Key() };
const NOW = new Date('2026-06-01T12:00:00Z');
const chain = (options: Parameters<typeof buildCertChain>[0] = {}) => buildCertChain({ keys, now: NOW, ...options });
const verifyChain = (c: ReturnType<typeof buildCertChain>, certs: readonly Certificate[] = c.certificates, now = NOW) => verifyCertsCell(certs, c.tlsCertificate, now);

/** A type-4 or type-5 cert re-signed with changed fields. */
function resign(c: ReturnType<typeof buildCertChain>, type: 4 | 5, change: (f: Ed25519CertFields) => Ed25519CertFields): Certificate[] {
  const cert = type === 4 ? c.signingCert : c.linkCert;
  const key = type === 4 ? keys.ed25519Identity : keys.ed25519Signing;
  return withCert(c.certificates, type, Ed25519Cert.sign(change(cert), key).encoded);
}

test('a generated chain verifies and proves the identity of its keys; it is laid out as tor’s (types 1, 2, 4, 5, 7)', () => {
  const c = chain();
  assert.deepEqual(c.certificates.map((x) => x.typeInt), [1, 2, 4, 5, 7]);
  assert.deepEqual(verifyChain(c).identity, c.identity);
  assert.equal(c.identity.rsa, fingerprintOf(x509RsaKey(parseX509(c.identityCertificate))!));
  // node's X509Certificate reads what we built: self-signed identity, TLS cert issued by it.
  const id = new X509Certificate(c.identityCertificate);
  const tls = new X509Certificate(c.tlsCertificate);
  assert.ok(id.verify(id.publicKey));
  assert.ok(tls.verify(id.publicKey));
  assert.ok(tls.checkIssued(id));
  assert.equal(id.publicKey.asymmetricKeyDetails!.modulusLength, 1024);
});

test('each certificate expired on its own (the others valid): rejected naming it', () => {
  const past = new Date(NOW.getTime() - HOUR);
  rejects(() => verifyChain(chain({ signingExpires: past })), 4, 'expired');
  rejects(() => verifyChain(chain({ linkExpires: past })), 5, 'expired');
  rejects(() => verifyChain(chain({ crossExpires: past })), 7, 'expired');
  rejects(() => verifyChain(chain({ identityValidity: { notBefore: new Date(NOW.getTime() - 400 * DAY), notAfter: new Date(NOW.getTime() - 3 * DAY) } })), 2, 'expired');
  // tor's X.509 slop: expired a day ago is still accepted, starting in 29 days too.
  assert.ok(verifyChain(chain({ identityValidity: { notBefore: new Date(NOW.getTime() - 400 * DAY), notAfter: new Date(NOW.getTime() - DAY) } })));
  assert.ok(verifyChain(chain({ identityValidity: { notBefore: new Date(NOW.getTime() + 29 * DAY), notAfter: new Date(NOW.getTime() + 400 * DAY) } })));
  rejects(() => verifyChain(chain({ identityValidity: { notBefore: new Date(NOW.getTime() + X509_FUTURE_SLOP_MS + DAY), notAfter: new Date(NOW.getTime() + 400 * DAY) } })), 2, 'not-yet-valid');
  // Slop can be set: none at all.
  const c = chain({ identityValidity: { notBefore: new Date(NOW.getTime() - 400 * DAY), notAfter: new Date(NOW.getTime() - DAY) } });
  rejects(() => verifyCertsCell(c.certificates, c.tlsCertificate, NOW, { x509PastSlopMs: 0 }), 2, 'expired');
});

test('an identity key that is not RSA-1024: rejected (key size)', () => {
  // (A whole chain can't have one: a 2048-bit signature doesn't fit the cross-cert's SIGLEN byte.)
  const c = chain();
  const big = generateRsaKey(2048);
  const bigCert = buildX509({ subjectKey: big, issuerKey: big, subjectCN: 'www.a.com', issuerCN: 'www.a.com', notBefore: new Date(NOW.getTime() - DAY), notAfter: new Date(NOW.getTime() + 300 * DAY) });
  rejects(() => verifyChain(c, withCert(c.certificates, 2, bigCert)), 2, 'key-size', /2048-bit/);
});

test('an identity cert that is not self-signed (signed by another RSA key): rejected (signature)', () => {
  const c = chain();
  const other = generateRsaKey(1024);
  const notSelfSigned = buildX509({ subjectKey: keys.rsaIdentity, issuerKey: other, subjectCN: 'www.a.com', issuerCN: 'www.a.com', notBefore: new Date(NOW.getTime() - DAY), notAfter: new Date(NOW.getTime() + 300 * DAY) });
  rejects(() => verifyChain(c, withCert(c.certificates, 2, notSelfSigned)), 2, 'signature', /self-signed/);
});

test('an identity cert holding a non-RSA key: rejected (key type)', () => {
  const c = chain();
  const edKeyCert = buildX509({ subjectKey: keys.ed25519Identity, issuerKey: keys.rsaIdentity, subjectCN: 'x', issuerCN: 'x', notBefore: new Date(NOW.getTime() - DAY), notAfter: new Date(NOW.getTime() + 300 * DAY) });
  rejects(() => verifyChain(c, withCert(c.certificates, 2, edKeyCert)), 2, 'key-type');
});

test('unknown extensions: AFFECTS_VALIDATION rejects the cert, an unflagged one is ignored', () => {
  const c = chain();
  const unknown = { type: 0x42, flags: AFFECTS_VALIDATION, data: Uint8Array.of(1, 2, 3) };
  rejects(() => verifyChain(c, resign(c, 4, (f) => ({ ...f, extensions: [...(f.extensions ?? []), unknown] }))), 4, 'extension', /type 66\) flagged AFFECTS_VALIDATION/);
  rejects(() => verifyChain(c, resign(c, 5, (f) => ({ ...f, extensions: [unknown] }))), 5, 'extension');
  assert.ok(verifyChain(c, resign(c, 4, (f) => ({ ...f, extensions: [...(f.extensions ?? []), { ...unknown, flags: 0 }] }))));
  assert.ok(verifyChain(c, resign(c, 5, (f) => ({ ...f, extensions: [{ ...unknown, flags: 0 }] }))));
  // Two signed-with-key extensions (tor_cert_parse refuses it).
  rejects(() => verifyChain(c, resign(c, 4, (f) => ({ ...f, extensions: [...f.extensions!, ...f.extensions!] }))), 4, 'extension');
});

test('type 4 without the signed-with-key extension: rejected (no identity to check against)', () => {
  const c = chain();
  rejects(() => verifyChain(c, resign(c, 4, (f) => ({ ...f, extensions: [] }))), 4, 'signing-key');
});

test('type 4 naming an identity that did not sign it: rejected (signature)', () => {
  const c = chain();
  const impostor = generateEd25519Key();
  // Signed by the real identity, but naming another: the signature check uses the named key.
  const named = Ed25519Cert.sign({ ...c.signingCert, extensions: [signedWithKeyExtension(buildCertChain({ keys: { ...keys, ed25519Identity: impostor }, now: NOW }).ed25519Identity)] }, keys.ed25519Identity);
  rejects(() => verifyChain(c, withCert(c.certificates, 4, named.encoded)), 4, 'signature');
});

test('certified key types: type 5 with the old 01 is accepted (cert-spec A.4); other key types are rejected', () => {
  const c = chain();
  assert.ok(verifyChain(c, resign(c, 5, (f) => ({ ...f, keyType: 1 }))));
  rejects(() => verifyChain(c, resign(c, 5, (f) => ({ ...f, keyType: 2 }))), 5, 'key-type');
  rejects(() => verifyChain(c, resign(c, 4, (f) => ({ ...f, keyType: 3 }))), 4, 'key-type');
});

test('a cross-cert signed with the standard RSASSA-PKCS1-v1_5 (DigestInfo) instead of tor’s raw digest: rejected', async () => {
  const { sign } = await import('node:crypto');
  const c = chain();
  const body = c.crossCert.encoded.subarray(0, 36);
  const standard = new Uint8Array(sign('sha256', Buffer.concat([Buffer.from('Tor TLS RSA/Ed25519 cross-certificate'), body]), keys.rsaIdentity));
  const cc = RsaCrossCert.build(c.ed25519Identity, c.crossCert.expirationHours, standard);
  rejects(() => verifyChain(c, withCert(c.certificates, 7, cc.encoded)), 7, 'signature');
  // And one re-signed tor's way, with a later expiry, is fine.
  const later = RsaCrossCert.sign(c.ed25519Identity, hoursSinceEpoch(new Date(NOW.getTime() + 900 * DAY)), keys.rsaIdentity);
  assert.ok(verifyChain(c, withCert(c.certificates, 7, later.encoded)));
});

// ---------------------------------------------------------------------------------
// Pinned identities

test('identityMismatch: RSA first, then Ed25519; pins are normalized as tor users write them', () => {
  const r = relays[0]!;
  const seen = { rsa: r.fingerprint, ed25519: r.ed25519 };
  assert.equal(identityMismatch(undefined, seen), undefined);
  assert.equal(identityMismatch({}, seen), undefined);
  assert.equal(identityMismatch({ rsa: `$${r.fingerprint.toLowerCase()}`, ed25519: `${r.ed25519}=` }, seen), undefined);
  assert.equal(identityMismatch({ rsa: r.fingerprint.replace(/(.{4})/g, '$1 ') }, seen), undefined);
  const other = relays[1]!;
  const rsaErr = identityMismatch({ rsa: other.fingerprint, ed25519: other.ed25519 }, seen)!;
  assert.ok(rsaErr instanceof IdentityMismatchError);
  assert.equal(rsaErr.keyType, 'rsa');
  assert.equal(rsaErr.expected, other.fingerprint);
  assert.equal(rsaErr.seen, r.fingerprint);
  const edErr = identityMismatch({ rsa: r.fingerprint, ed25519: other.ed25519 }, seen)!;
  assert.equal(edErr.keyType, 'ed25519');
  assert.equal(edErr.expected, other.ed25519);
  assert.equal(edErr.seen, r.ed25519);
  assert.equal(edErr.code, 'E_IDENTITY_MISMATCH');
});
