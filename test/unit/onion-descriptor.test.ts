/**
 * onion/descriptor against real descriptors from Arti's test data (test/vectors/onion/,
 * PROVENANCE.md: zydou/arti @cadcd0d310831ba237fff4c1a39ef51c53b506db
 * crates/tor-netdoc/testdata/ and the keys in crates/tor-netdoc/src/doc/hsdesc.rs):
 * hsdesc1 decoded end to end (outer checks, both layers, 3 introduction points); hsdesc2
 * (client authorization) refused without its cookie and decrypted with it to exactly
 * Arti's hsdesc-inner.txt; each check's CertificateError (expired, another blinded key,
 * another subcredential, a tampered body); malformed input as DecodeErrors with line
 * numbers; a broken introduction point skipped as tor does; fuzzing: mutated descriptors
 * and garbage give only typed errors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import fc from 'fast-check';
import { CertificateError, DecodeError, OrportError } from '../../src/errors.js';
import {
  decodeHsDescriptor,
  decryptHsDescriptorLayer,
  parseHsDescriptorInner,
  parseHsDescriptorMiddle,
  parseHsDescriptorOuter,
} from '../../src/onion/descriptor.js';
import { blindPublicKey, subcredential, timePeriod } from '../../src/onion/keys.js';

const dir = join(dirname(new URL(import.meta.url).pathname), '../vectors/onion');
const read = (name: string) => readFileSync(join(dir, name), 'latin1');
const hex = (h: string) => new Uint8Array(Buffer.from(h, 'hex'));
const HSDESC1 = read('arti-hsdesc1.txt');
const HSDESC2 = read('arti-hsdesc2.txt');
const BLIND1 = hex('43cc0d62fc6252f578705ca645a46109e265290343b1137e90189744b20b3f2d');
const SUBCRED1 = hex('78210A0D2C72BB7A0CAF606BCD938B9A3696894FDDDBC3B87D424753A7E3DF37');
const NOW1 = new Date('2023-01-23T15:00:00Z');
const opts1 = { blindedKey: BLIND1, subcredential: SUBCRED1, now: NOW1 };

function refusedWith(fn: () => unknown, check: string): void {
  assert.throws(fn, (e: unknown) => e instanceof CertificateError && e.check === check, `CertificateError ${check}`);
}

test("Arti's hsdesc1: the outer document, both layers and three introduction points", () => {
  const d = decodeHsDescriptor(HSDESC1, opts1);
  assert.equal(d.outer.lifetimeMinutes, 180);
  assert.equal(d.outer.revisionCounter, 19655750n);
  assert.equal(d.outer.signingKeyCert.certType, 8);
  assert.deepEqual(d.outer.signingKeyCert.expires, new Date('2023-01-26T03:00:00Z'));
  assert.equal(d.middle.authType, 'x25519');
  assert.equal(d.middle.authClients.length, 16);
  assert.equal(d.middle.ephemeralKey.length, 32);
  assert.deepEqual(d.inner.create2Formats, [2]);
  assert.equal(d.inner.singleOnionService, false);
  assert.deepEqual(d.inner.skipped, []);
  assert.equal(d.inner.introductionPoints.length, 3);
  const ip = d.inner.introductionPoints[0]!;
  assert.equal(Buffer.from(ip.onionKey).toString('hex').toUpperCase(), '553BF9F9E1979D6F5D5D7D20BB3FE7272E32E22B6E86E35C76A7CA8A377E402F');
  assert.deepEqual(ip.linkSpecifiers.map((l) => l.type), [0, 2, 3]);
  assert.equal(Buffer.from(ip.linkSpecifiers[0]!.data).toString('hex'), '7f000001138b', '127.0.0.1:5003');
  assert.equal(ip.authKeyCert.certType, 9);
  assert.equal(ip.encKeyCert.certType, 0x0b);
  assert.deepEqual(ip.authKey, ip.authKeyCert.certifiedKey);
  assert.equal(ip.encKey.length, 32);
  assert.deepEqual(decodeHsDescriptor(Buffer.from(HSDESC1, 'latin1'), opts1).inner.introductionPoints.length, 3, 'bytes work as well as latin1 text');
});

test("Arti's hsdesc2 (client authorization): the keys from TEST_HSID_2; refused without the cookie, decrypted with it to exactly hsdesc-inner.txt", () => {
  const id = hex('781D978CE6CE9CAA8BCA306F53E82D2C993E5C91346625F1C151DCFC56D753D3');
  const now = new Date('2023-02-09T12:00:00Z');
  const period = timePeriod(now);
  const blindedKey = blindPublicKey(id, period);
  const opts = { blindedKey, subcredential: subcredential(id, blindedKey), now };
  refusedWith(() => decodeHsDescriptor(HSDESC2, opts), 'encrypted-mac');
  const cookie = hex('a93507998a28336c319393405d395dec');
  const d = decodeHsDescriptor(HSDESC2, { ...opts, descriptorCookie: cookie });
  const outer = parseHsDescriptorOuter(HSDESC2);
  const middle = parseHsDescriptorMiddle(decryptHsDescriptorLayer(outer.superencrypted, blindedKey, opts.subcredential, outer.revisionCounter, 'superencrypted')!);
  const inner = decryptHsDescriptorLayer(middle.encrypted, new Uint8Array([...blindedKey, ...cookie]), opts.subcredential, outer.revisionCounter, 'encrypted')!;
  assert.equal(Buffer.from(inner).toString('latin1'), read('arti-hsdesc-inner.txt'));
  assert.deepEqual(d.inner.flowControl, { versions: '1-2', sendmeInc: 31 });
  assert.ok(d.inner.introductionPoints.length >= 1);
  assert.deepEqual(d.inner.skipped, []);
  refusedWith(() => decodeHsDescriptor(HSDESC2, { ...opts, descriptorCookie: new Uint8Array(16) }), 'encrypted-mac');
});

test('the outer checks: expired cert, another blinded key, another subcredential, a tampered body or signature', () => {
  refusedWith(() => decodeHsDescriptor(HSDESC1, { ...opts1, now: new Date('2023-01-26T03:00:01Z') }), 'cert-expired');
  refusedWith(() => decodeHsDescriptor(HSDESC1, { ...opts1, blindedKey: new Uint8Array(32).fill(12) }), 'blinded-key');
  refusedWith(() => decodeHsDescriptor(HSDESC1, { ...opts1, subcredential: new Uint8Array(32) }), 'superencrypted-mac');
  refusedWith(() => decodeHsDescriptor(HSDESC1.replace('descriptor-lifetime 180', 'descriptor-lifetime 181'), opts1), 'descriptor-signature');
  refusedWith(() => decodeHsDescriptor(HSDESC1.replace('revision-counter 19655750', 'revision-counter 19655751'), opts1), 'descriptor-signature');
  const sigAt = HSDESC1.indexOf('signature ') + 12;
  const flipped = HSDESC1.slice(0, sigAt) + (HSDESC1[sigAt] === 'A' ? 'B' : 'A') + HSDESC1.slice(sigAt + 1);
  refusedWith(() => decodeHsDescriptor(flipped, opts1), 'descriptor-signature');
  // Unknown lines are ignored (but still signed: this one breaks the signature, not the parse).
  assert.equal(parseHsDescriptorOuter(HSDESC1.replace('revision-counter', 'x-unknown 1\nrevision-counter')).revisionCounter, 19655750n);
});

test('malformed outer documents: DecodeErrors naming the line', () => {
  const bad = (text: string, pattern: RegExp) =>
    assert.throws(() => parseHsDescriptorOuter(text), (e: unknown) => e instanceof DecodeError && pattern.test(e.message), pattern.source);
  bad(HSDESC1.replace('hs-descriptor 3', 'hs-descriptor 4'), /line 1: hs-descriptor version "4"/);
  bad(HSDESC1.replace('descriptor-lifetime 180', 'descriptor-lifetime 721'), /line 2: descriptor-lifetime 721/);
  bad(HSDESC1.replace('descriptor-lifetime 180', 'descriptor-lifetime x'), /line 2: .*not a number/);
  bad(HSDESC1.replace('revision-counter 19655750', 'revision-counter 18446744073709551616'), /line 9: revision-counter: "18446744073709551616" is not a 64-bit/);
  bad(HSDESC1.replace('revision-counter 19655750\n', ''), /no revision-counter/);
  bad(HSDESC1.replace('revision-counter 19655750\n', 'revision-counter 1\nrevision-counter 2\n'), /line 10: revision-counter appears more than once/);
  bad(HSDESC1.replace('-----END ED25519 CERT-----', '-----END ED25519 CER-----'), /line 4: object "ED25519 CERT" has no END line/);
  bad(HSDESC1.replace('\nsignature ', '\nx 1\nsignature ').replace(/signature [^\n]*\n?$/, 'signature AAAA\nextra 1\n'), /the last item must be signature/);
  bad(HSDESC1.replace(/signature [^\n]*/, 'signature AAAA'), /expected 64 bytes/);
  bad('hs-descriptor 3\n', /no signature line|the last item/);
  bad('', /does not start with hs-descriptor/);
  assert.throws(() => parseHsDescriptorOuter(HSDESC1, { maxSize: 14000 }), (e: unknown) => e instanceof DecodeError && /HSV3MaxDescriptorSize/.test(e.message));
});

/** hsdesc1's decrypted middle and inner layers, for the layer parsers. */
function layers1(): { middle: string; inner: string; signingKey: Uint8Array } {
  const outer = parseHsDescriptorOuter(HSDESC1);
  const middle = decryptHsDescriptorLayer(outer.superencrypted, BLIND1, SUBCRED1, outer.revisionCounter, 'superencrypted')!;
  const m = parseHsDescriptorMiddle(middle);
  const inner = decryptHsDescriptorLayer(m.encrypted, BLIND1, SUBCRED1, outer.revisionCounter, 'encrypted')!;
  return { middle: Buffer.from(middle).toString('latin1'), inner: Buffer.from(inner).toString('latin1'), signingKey: outer.signingKey };
}

test('the middle layer: desc-auth-type x25519 first, the ephemeral key, auth-client sizes, encrypted; errors with lines', () => {
  const { middle } = layers1();
  assert.match(middle, /^desc-auth-type x25519\n/);
  const bad = (text: string, pattern: RegExp) => assert.throws(() => parseHsDescriptorMiddle(text), (e: unknown) => e instanceof DecodeError && pattern.test(e.message), pattern.source);
  bad(middle.replace('desc-auth-type x25519', 'desc-auth-type ed25519'), /line 1: desc-auth-type "ed25519"/);
  bad(middle.replace(/desc-auth-ephemeral-key \S+/, 'desc-auth-ephemeral-key AAAA'), /line 2: .*expected 32 bytes/);
  bad(middle.replace(/\nauth-client (\S+) /, '\nauth-client AAAA '), /line 3: auth-client: expected 8 bytes/);
  bad(middle.replace(/auth-client [^\n]*\n/g, ''), /no auth-client line/);
  bad(middle.replace('encrypted\n', 'encrypted-not\n'), /no encrypted line/);
});

test('the inner layer: create2-formats must include 2; pow-params v1; a broken introduction point is skipped, not fatal', () => {
  const { inner, signingKey } = layers1();
  const now = NOW1;
  assert.equal(parseHsDescriptorInner(inner, signingKey, now).introductionPoints.length, 3);
  assert.throws(() => parseHsDescriptorInner(inner.replace('create2-formats 2', 'create2-formats 3'), signingKey, now), (e: unknown) => e instanceof DecodeError && /line 1: create2-formats does not include 2/.test(e.message));
  assert.throws(() => parseHsDescriptorInner(`single-onion-service\n${inner}`, signingKey, now), DecodeError);
  // The second intro point: its enc-key-cert swapped for its auth-key cert (type 09) → skipped.
  const sections = inner.split('\nintroduction-point ');
  const certs = [...sections[2]!.matchAll(/-----BEGIN ED25519 CERT-----\n[^-]+-----END ED25519 CERT-----/g)].map((m) => m[0]);
  const broken = [...sections.slice(0, 2), sections[2]!.replace(certs[1]!, certs[0]!), ...sections.slice(3)].join('\nintroduction-point ');
  const parsed = parseHsDescriptorInner(broken, signingKey, now);
  assert.equal(parsed.introductionPoints.length, 2);
  assert.equal(parsed.skipped.length, 1);
  assert.match(parsed.skipped[0]!.reason, /enc-key cert: the certificate is of type 9, not 11/);
  // Another signing key: every intro point's certs fail, all skipped.
  assert.equal(parseHsDescriptorInner(inner, new Uint8Array(32).fill(1), now).skipped.length, 3);
  // Expired at a later now.
  assert.equal(parseHsDescriptorInner(inner, signingKey, new Date('2030-01-01T00:00:00Z')).introductionPoints.length, 0);
  // A bad line inside one intro point skips it alone.
  const garbled = inner.replace(/\nonion-key ntor /, '\n onion-key ntor ');
  assert.equal(parseHsDescriptorInner(garbled, signingKey, now).introductionPoints.length, 2);
  // pow-params v1 (Arti's hsdesc-inner-pow-v1.txt).
  const pow = parseHsDescriptorInner(read('arti-hsdesc-inner-pow-v1.txt'), signingKey, now);
  assert.equal(pow.powParams.length, 1);
  assert.equal(pow.powParams[0]!.type, 'v1');
  assert.equal(pow.powParams[0]!.suggestedEffort, 614);
  assert.deepEqual(pow.powParams[0]!.expires, new Date('2024-04-11T05:15:37Z'));
  assert.deepEqual(pow.flowControl, { versions: '1-2', sendmeInc: 31 });
});

test('fuzz: mutated descriptors, mutated layers and garbage give only typed errors', () => {
  const { middle, inner, signingKey } = layers1();
  const typedOnly = (fn: () => unknown) => {
    try {
      fn();
    } catch (err) {
      assert.ok(err instanceof OrportError, `untyped: ${String(err)}`);
    }
  };
  const mutate = (text: string) =>
    fc.tuple(fc.nat(text.length - 1), fc.integer({ min: 0, max: 255 }), fc.nat(40)).map(([at, byte, cut]) => {
      const s = text.slice(0, at) + String.fromCharCode(byte) + text.slice(at + 1);
      return cut === 0 ? s.slice(0, at) : s;
    });
  fc.assert(fc.property(mutate(HSDESC1), (t) => typedOnly(() => decodeHsDescriptor(t, opts1))), { numRuns: 150 });
  fc.assert(fc.property(mutate(middle), (t) => typedOnly(() => parseHsDescriptorMiddle(t))), { numRuns: 150 });
  fc.assert(fc.property(mutate(inner), (t) => typedOnly(() => parseHsDescriptorInner(t, signingKey, NOW1))), { numRuns: 150 });
  fc.assert(
    fc.property(fc.string({ maxLength: 300 }), (t) => {
      typedOnly(() => parseHsDescriptorOuter(t));
      typedOnly(() => parseHsDescriptorMiddle(t));
      typedOnly(() => parseHsDescriptorInner(t, signingKey, NOW1));
    }),
  );
  fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (blob) => assert.equal(decryptHsDescriptorLayer(blob, BLIND1, SUBCRED1, 1n, 'encrypted'), undefined)));
});
