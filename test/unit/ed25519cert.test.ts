/**
 * The cert-spec codec: Ed25519 certificates (2.1) and the RSA→Ed25519 cross-cert (2.3).
 * Vectors: Stem's, and the certs captured from the relays of a private tor network
 * (test/vectors/certs-testnet.json); properties with fast-check.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants, createHash, createPublicKey, publicDecrypt, verify as nodeVerify } from 'node:crypto';
import fc from 'fast-check';
import {
  AFFECTS_VALIDATION,
  CertifiedKeyType,
  ED25519_CERT_MIN_LEN,
  Ed25519Cert,
  Ed25519CertType,
  ExtensionType,
  RSA_CROSSCERT_PREFIX,
  RsaCrossCert,
  ed25519PublicKey,
  ed25519RawPublicKey,
  hoursSinceEpoch,
  signedWithKeyExtension,
  type Ed25519CertFields,
} from '../../src/crypto/ed25519cert.js';
import { parseX509, x509RsaKey } from '../../src/crypto/x509.js';
import { generateEd25519Key, generateRsaKey } from '../../src/testing/certchain.js';
import { BadArgumentError, DecodeError, IncompleteError, OrportError } from '../../src/errors.js';
import { capturedRelays, certOfType, flipBit } from '../support/certvectors.js';
import { h, hex } from '../support/bytes.js';

const RUNS = Number(process.env.ORPORT_FUZZ_RUNS ?? 200);
const params = { numRuns: RUNS };
const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64').replace(/=+$/, '');

/** Only DecodeError (or its IncompleteError) may escape a decoder. */
function decodesOrDecodeError(fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof DecodeError)) throw new Error(`expected a DecodeError, got ${String(err)}`, { cause: err });
  }
}

// Stem 1.8's test/unit/descriptor/certificate.py, ED25519_CERT: a type-4 cert from a server descriptor.
const STEM_CERT = Buffer.from(
  'AQQABhtZAaW2GoBED1IjY3A6f6GNqBEl5A83fD2Za9upGke51JGqAQAgBABnprVRptIr43bWPo2fIzo3uOywfoMrryprpbm4HhCkZMaO064LP+1KNuLvlc8sGG8lTjx1g4k3ELuWYgHYWU5rAia7nl4gUfBZOEfHAfKES7l3d63dBEjEX98Ljhdp2w4=',
  'base64',
);

test("Stem's vector: a type-4 cert decodes field by field, verifies with the key it carries, and re-encodes to the same bytes", () => {
  const cert = Ed25519Cert.decode(new Uint8Array(STEM_CERT));
  assert.equal(cert.version, 1);
  assert.equal(cert.certType, Ed25519CertType.SIGNING);
  assert.equal(cert.expires.toISOString(), '2015-08-28T17:00:00.000Z'); // Stem: datetime(2015, 8, 28, 17, 0)
  assert.equal(cert.keyType, CertifiedKeyType.ED25519);
  assert.equal(hex(cert.certifiedKey), 'a5b61a80440f522363703a7fa18da81125e40f377c3d996bdba91a47b9d491aa');
  assert.equal(cert.extensions.length, 1);
  assert.equal(cert.extensions[0]!.type, ExtensionType.SIGNED_WITH_ED25519_KEY);
  assert.equal(cert.extensions[0]!.flags, 0);
  assert.equal(hex(cert.signingKey!), '67a6b551a6d22be376d63e8d9f233a37b8ecb07e832baf2a6ba5b9b81e10a464');
  assert.equal(hex(cert.signature), 'c68ed3ae0b3fed4a36e2ef95cf2c186f254e3c7583893710bb966201d8594e6b0226bb9e5e2051f0593847c701f2844bb97777addd0448c45fdf0b8e1769db0e');
  assert.deepEqual(cert.problems(), []);
  assert.ok(cert.verify(cert.signingKey!));
  assert.ok(cert.isExpired(new Date('2015-08-28T17:00:00.001Z')));
  assert.ok(!cert.isExpired(new Date('2015-08-28T17:00:00.000Z')));
  const rebuilt = Ed25519Cert.build(cert, cert.signature);
  assert.deepEqual(rebuilt.encoded, new Uint8Array(STEM_CERT));
});

test('captured type-4 certs: the extension carries the Ed25519 identity tor wrote, the cert is signed by it, and certifies a signing key', () => {
  for (const relay of capturedRelays()) {
    const cert = Ed25519Cert.decode(certOfType(relay.certificates, 4).value);
    assert.equal(cert.certType, 4, relay.nick);
    assert.equal(cert.keyType, CertifiedKeyType.ED25519, relay.nick);
    assert.equal(b64(cert.signingKey!), relay.ed25519, relay.nick);
    assert.ok(cert.verify(cert.signingKey!), relay.nick);
    assert.ok(cert.expires > relay.capturedAt, relay.nick);
    assert.deepEqual(Ed25519Cert.build(cert, cert.signature).encoded, cert.encoded, relay.nick);
  }
});

test('captured type-5 certs: key type 03 (SHA-256 of X.509), certifying the TLS certificate presented, signed by the type-4 signing key', () => {
  for (const relay of capturedRelays()) {
    const signing = Ed25519Cert.decode(certOfType(relay.certificates, 4).value);
    const link = Ed25519Cert.decode(certOfType(relay.certificates, 5).value);
    assert.equal(link.certType, 5);
    assert.equal(link.keyType, CertifiedKeyType.SHA256_OF_X509);
    assert.equal(link.extensions.length, 0);
    assert.equal(hex(link.certifiedKey), createHash('sha256').update(relay.tlsCertificate).digest('hex'));
    assert.ok(link.verify(signing.certifiedKey));
    assert.ok(!link.verify(signing.signingKey!), 'not by the identity key');
  }
});

test('captured type-7 cross-certs: the RSA signature is PKCS#1 v1.5 over the raw SHA-256 digest, without DigestInfo (DIGEST.md)', () => {
  for (const relay of capturedRelays()) {
    const rsa = x509RsaKey(parseX509(certOfType(relay.certificates, 2).value))!;
    const cross = RsaCrossCert.decode(certOfType(relay.certificates, 7).value);
    assert.equal(b64(cross.ed25519Key), relay.ed25519);
    assert.equal(cross.signature.length, 128);
    const digest = createHash('sha256').update(RSA_CROSSCERT_PREFIX).update(cross.encoded.subarray(0, 36)).digest();
    // Opened with the public key and PKCS#1 type-1 padding removed: exactly the digest.
    const recovered = publicDecrypt({ key: rsa.key, padding: constants.RSA_PKCS1_PADDING }, cross.signature);
    assert.equal(recovered.length, 32);
    assert.ok(recovered.equals(digest));
    // Raw: 00 01 ff…ff 00 || digest — no DigestInfo between the padding and the digest.
    const raw = publicDecrypt({ key: rsa.key, padding: constants.RSA_NO_PADDING }, cross.signature);
    assert.equal(hex(raw.subarray(0, 2)), '0001');
    assert.ok(raw.subarray(2, 128 - 33).every((b) => b === 0xff));
    assert.equal(raw[128 - 33], 0);
    // So a standard RSASSA-PKCS1-v1_5 verification fails on it.
    assert.equal(nodeVerify('sha256', Buffer.concat([Buffer.from(RSA_CROSSCERT_PREFIX), cross.encoded.subarray(0, 36)]), rsa.key, cross.signature), false);
    assert.ok(cross.verify(rsa.key));
    assert.ok(cross.expires > relay.capturedAt);
    assert.deepEqual(RsaCrossCert.build(cross.ed25519Key, cross.expirationHours, cross.signature).encoded, cross.encoded);
  }
});

test('decode is strict as tor is: version 1 only, no trailing bytes, no truncated extension, signed-with-key extension of 32 bytes', () => {
  const good = Ed25519Cert.decode(new Uint8Array(STEM_CERT));
  const bytes = good.encoded;
  assert.throws(() => Ed25519Cert.decode(flipBit(bytes, 0, 1)), /VERSION is 3/); // 01 -> 03
  assert.throws(() => Ed25519Cert.decode(Uint8Array.of(...bytes, 0)), /1 byte after the signature/);
  assert.throws(() => Ed25519Cert.decode(bytes.subarray(0, bytes.length - 1)), IncompleteError);
  assert.throws(() => Ed25519Cert.decode(new Uint8Array(0)), IncompleteError);
  // ExtLength 0x0020 -> 0x0021: the extension runs into the signature and the signature is short.
  const longExt = bytes.slice();
  longExt[40] = 0x00;
  longExt[41] = 0x21;
  assert.throws(() => Ed25519Cert.decode(longExt), /signed-with-ed25519-key extension holds a 32-byte key, not 33 bytes/);
  // The same extension with an unknown type of 33 bytes is fine syntactically (then 1 byte short).
  longExt[42] = 0x09;
  assert.throws(() => Ed25519Cert.decode(longExt), IncompleteError);
});

test('problems(): an unknown AFFECTS_VALIDATION extension, or two signed-with-key extensions; an unflagged unknown extension is fine', () => {
  const key = generateEd25519Key();
  const base: Ed25519CertFields = { certType: 4, expirationHours: 500_000, keyType: 1, certifiedKey: new Uint8Array(32).fill(7) };
  const signingKey = ed25519RawPublicKey(key);
  const withExt = (extensions: Ed25519CertFields['extensions']) => Ed25519Cert.sign({ ...base, extensions }, key);
  assert.deepEqual(withExt([signedWithKeyExtension(signingKey), { type: 9, flags: 0, data: h('abcd') }]).problems(), []);
  assert.match(withExt([{ type: 9, flags: AFFECTS_VALIDATION, data: h('abcd') }]).problems().join(), /unknown extension \(type 9\) flagged AFFECTS_VALIDATION/);
  assert.match(withExt([{ type: 9, flags: 0xff, data: new Uint8Array(0) }]).problems().join(), /AFFECTS_VALIDATION/);
  assert.deepEqual(withExt([{ type: 9, flags: 0xfe, data: new Uint8Array(0) }]).problems(), [], 'other flag bits mean nothing yet');
  assert.match(withExt([signedWithKeyExtension(signingKey), signedWithKeyExtension(signingKey)]).problems().join(), /more than one signed-with-ed25519-key/);
});

test('encode refuses what it cannot represent: BadArgumentError', () => {
  const base: Ed25519CertFields = { certType: 4, expirationHours: 1, keyType: 1, certifiedKey: new Uint8Array(32) };
  const sig = new Uint8Array(64);
  assert.throws(() => Ed25519Cert.build({ ...base, certifiedKey: new Uint8Array(31) }, sig), BadArgumentError);
  assert.throws(() => Ed25519Cert.build({ ...base, expirationHours: 2 ** 32 }, sig), BadArgumentError);
  assert.throws(() => Ed25519Cert.build({ ...base, certType: 256 }, sig), BadArgumentError);
  assert.throws(() => Ed25519Cert.build(base, new Uint8Array(63)), BadArgumentError);
  assert.throws(() => Ed25519Cert.build({ ...base, extensions: [{ type: 4, flags: 0, data: new Uint8Array(31) }] }, sig), BadArgumentError);
  assert.throws(() => RsaCrossCert.build(new Uint8Array(32), 1, new Uint8Array(256)), BadArgumentError);
  assert.throws(() => ed25519PublicKey(new Uint8Array(31)), BadArgumentError);
});

test('hoursSinceEpoch rounds up, as tor (CEIL_DIV)', () => {
  assert.equal(hoursSinceEpoch(new Date(0)), 0);
  assert.equal(hoursSinceEpoch(new Date(1)), 1);
  assert.equal(hoursSinceEpoch(new Date(3_600_000)), 1);
  assert.equal(hoursSinceEpoch(new Date(3_600_001)), 2);
});

// ---------------------------------------------------------------------------------
// Properties

const bytes = (min: number, max: number) => fc.uint8Array({ minLength: min, maxLength: max });
const extension = fc.oneof(
  bytes(32, 32).map((data) => ({ type: ExtensionType.SIGNED_WITH_ED25519_KEY as number, flags: 0, data })),
  fc.record({ type: fc.integer({ min: 0, max: 255 }).filter((t) => t !== 4), flags: fc.integer({ min: 0, max: 255 }), data: bytes(0, 80) }),
);
const fields: fc.Arbitrary<Ed25519CertFields> = fc.record({
  certType: fc.integer({ min: 0, max: 255 }),
  expirationHours: fc.integer({ min: 0, max: 0xffffffff }),
  keyType: fc.integer({ min: 0, max: 255 }),
  certifiedKey: bytes(32, 32),
  extensions: fc.array(extension, { maxLength: 5 }),
});

test('property: build then decode gives the same fields and the same bytes', () => {
  fc.assert(
    fc.property(fields, bytes(64, 64), (f, sig) => {
      const cert = Ed25519Cert.build(f, sig);
      assert.equal(cert.encoded.length, ED25519_CERT_MIN_LEN + f.extensions!.reduce((n, e) => n + 4 + e.data.length, 0));
      const back = Ed25519Cert.decode(cert.encoded.slice());
      assert.equal(back.version, 1);
      assert.equal(back.certType, f.certType);
      assert.equal(back.expirationHours, f.expirationHours);
      assert.equal(back.expires.getTime(), Math.min(f.expirationHours * 3_600_000, 8.64e15));
      assert.equal(back.keyType, f.keyType);
      assert.deepEqual(back.certifiedKey, f.certifiedKey);
      assert.deepEqual(back.extensions.map((e) => [e.type, e.flags, hex(e.data)]), f.extensions!.map((e) => [e.type, e.flags, hex(e.data)]));
      assert.deepEqual(back.signature, sig);
      assert.deepEqual(Ed25519Cert.build(back, back.signature).encoded, cert.encoded);
    }),
    params,
  );
});

test('property: any bytes decode to a certificate or a DecodeError, never anything else', () => {
  fc.assert(fc.property(bytes(0, 300), (b) => decodesOrDecodeError(() => Ed25519Cert.decode(b))), params);
  // Starting from a valid header makes the extension parser do real work.
  fc.assert(
    fc.property(fields, bytes(0, 120), (f, tail) => {
      const valid = Ed25519Cert.build(f, new Uint8Array(64)).encoded;
      decodesOrDecodeError(() => Ed25519Cert.decode(Uint8Array.of(...valid.subarray(0, 40), ...tail)));
    }),
    params,
  );
  fc.assert(fc.property(bytes(0, 300), (b) => decodesOrDecodeError(() => RsaCrossCert.decode(b))), params);
});

test('property: every truncation of a valid certificate is an IncompleteError', () => {
  fc.assert(
    fc.property(fields, bytes(64, 64), fc.nat(), (f, sig, cut) => {
      const encoded = Ed25519Cert.build(f, sig).encoded;
      const at = cut % encoded.length;
      assert.throws(() => Ed25519Cert.decode(encoded.subarray(0, at)), IncompleteError);
    }),
    params,
  );
});

const edKeys = [generateEd25519Key(), generateEd25519Key()];

test('property: a signed certificate verifies with its key, not another; one flipped bit anywhere breaks it', () => {
  fc.assert(
    fc.property(fields, fc.nat(), fc.integer({ min: 0, max: 7 }), (f, pos, bit) => {
      const cert = Ed25519Cert.sign(f, edKeys[0]!);
      assert.ok(cert.verify(ed25519RawPublicKey(edKeys[0]!)));
      assert.ok(cert.verify(edKeys[0]!));
      assert.ok(!cert.verify(ed25519RawPublicKey(edKeys[1]!)));
      const tampered = flipBit(cert.encoded, pos % cert.encoded.length, bit);
      let still: Ed25519Cert;
      try {
        still = Ed25519Cert.decode(tampered);
      } catch (err) {
        assert.ok(err instanceof DecodeError);
        return;
      }
      assert.ok(!still.verify(ed25519RawPublicKey(edKeys[0]!)), `bit ${bit} of byte ${pos % cert.encoded.length} flipped and it still verifies`);
    }),
    params,
  );
});

const rsaKey = generateRsaKey(1024);
const rsaPublic = createPublicKey(rsaKey);

test('property: cross-certs round-trip, verify with their RSA key, and break with one flipped bit', () => {
  fc.assert(
    fc.property(bytes(32, 32), fc.integer({ min: 0, max: 0xffffffff }), fc.nat(), fc.integer({ min: 0, max: 7 }), (key, hours, pos, bit) => {
      const cross = RsaCrossCert.sign(key, hours, rsaKey);
      const back = RsaCrossCert.decode(cross.encoded.slice());
      assert.deepEqual(back.ed25519Key, key);
      assert.equal(back.expirationHours, hours);
      assert.equal(back.signature.length, 128);
      assert.ok(back.verify(rsaPublic));
      const tampered = flipBit(cross.encoded, pos % cross.encoded.length, bit);
      let still: RsaCrossCert;
      try {
        still = RsaCrossCert.decode(tampered);
      } catch (err) {
        assert.ok(err instanceof OrportError);
        return;
      }
      assert.ok(!still.verify(rsaPublic));
    }),
    { numRuns: Math.min(RUNS, 100) },
  );
});
