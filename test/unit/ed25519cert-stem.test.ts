/**
 * Differential test of the Ed25519 certificate codec against Python Stem 1.8
 * (stem.descriptor.certificate, Debian's python3-stem): the captured certs and random
 * well-formed ones decode to the same fields in both and Stem packs them back to the
 * same bytes; malformed ones are refused by both.
 *
 * Stem refuses CERT_TYPEs 1-3, 7 and above 11 (reserved for CERTS cells or unknown),
 * and expirations past year 9999 (Python datetime); the random certs stay inside that.
 * One deliberate difference: Stem reads CERT_KEY_TYPE 0 as 1 (`key_type if key_type
 * else 1`) and packs it back as 1; orport keeps the 0 it read (checked below).
 * Skips (with the reason) when /usr/bin/python3 cannot import stem.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fc from 'fast-check';
import { Ed25519Cert, ExtensionType, type Ed25519CertFields } from '../../src/crypto/ed25519cert.js';
import { DecodeError } from '../../src/errors.js';
import { capturedRelays, certOfType } from '../support/certvectors.js';
import { PYTHON, stemSkipReason } from '../support/stem.js';

const RUNS = Number(process.env.ORPORT_FUZZ_RUNS ?? 300);

const PEER = String.raw`
import sys, json, base64, calendar
from stem.descriptor.certificate import Ed25519Certificate
out = []
for b64 in json.load(sys.stdin):
    raw = base64.b64decode(b64)
    try:
        c = Ed25519Certificate.unpack(raw)
        out.append({
            'version': c.version, 'certType': c.type_int,
            'expirationHours': calendar.timegm(c.expiration.utctimetuple()) // 3600,
            'keyType': c.key_type, 'certifiedKey': c.key.hex(),
            'extensions': [[e.type, e.flag_int, e.data.hex()] for e in c.extensions],
            'signature': c.signature.hex(), 'packed': base64.b64encode(c.pack()).decode()})
    except Exception as e:
        out.append({'error': type(e).__name__ + ': ' + str(e)})
json.dump(out, sys.stdout)
`;

type StemView = { error: string } | { version: number; certType: number; expirationHours: number; keyType: number; certifiedKey: string; extensions: [number, number, string][]; signature: string; packed: string };

function stem(certs: Uint8Array[]): StemView[] {
  const r = spawnSync(PYTHON, ['-I', '-c', PEER], { input: JSON.stringify(certs.map((c) => Buffer.from(c).toString('base64'))), encoding: 'utf8', timeout: 60_000, maxBuffer: 64 << 20 });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as StemView[];
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

function ours(bytes: Uint8Array): StemView {
  try {
    const c = Ed25519Cert.decode(bytes);
    return {
      version: c.version,
      certType: c.certType,
      expirationHours: c.expirationHours,
      keyType: c.keyType,
      certifiedKey: hex(c.certifiedKey),
      extensions: c.extensions.map((e) => [e.type, e.flags, hex(e.data)]),
      signature: hex(c.signature),
      packed: Buffer.from(c.encoded).toString('base64'),
    };
  } catch (err) {
    assert.ok(err instanceof DecodeError, String(err));
    return { error: err.message };
  }
}

const skip = stemSkipReason('stem.descriptor.certificate');

test('captured type-4 and type-5 certs: Stem and orport decode the same fields; Stem packs the same bytes', { skip }, () => {
  const certs = capturedRelays().flatMap((r) => [certOfType(r.certificates, 4).value, certOfType(r.certificates, 5).value]);
  const theirs = stem(certs);
  certs.forEach((c, i) => assert.deepEqual(ours(c), theirs[i]));
});

test(`random well-formed certs (${RUNS}): the same fields in both, byte-identical packing`, { skip }, () => {
  const bytes = (min: number, max: number) => fc.uint8Array({ minLength: min, maxLength: max });
  const fields: fc.Arbitrary<Ed25519CertFields> = fc.record({
    certType: fc.constantFrom(4, 5, 6, 8, 9, 10, 11),
    expirationHours: fc.integer({ min: 0, max: 70_000_000 }),
    keyType: fc.integer({ min: 1, max: 255 }),
    certifiedKey: bytes(32, 32),
    extensions: fc.array(
      fc.oneof(
        bytes(32, 32).map((data) => ({ type: ExtensionType.SIGNED_WITH_ED25519_KEY as number, flags: 0, data })),
        fc.record({ type: fc.integer({ min: 0, max: 255 }).filter((t) => t !== 4), flags: fc.integer({ min: 0, max: 255 }), data: bytes(0, 40) }),
      ),
      { maxLength: 4 },
    ),
  });
  const certs = fc.sample(fc.tuple(fields, bytes(64, 64)), { numRuns: RUNS }).map(([f, sig]) => Ed25519Cert.build(f, sig).encoded);
  const theirs = stem(certs);
  certs.forEach((c, i) => assert.deepEqual(ours(c), theirs[i], `cert ${i}: ${hex(c)}`));
});

test('malformed certs are refused by both: truncated, trailing bytes, bad version, short signed-with-key extension', { skip }, () => {
  const good = Ed25519Cert.decode(certOfType(capturedRelays()[0]!.certificates, 4).value).encoded;
  const shortExt = good.slice();
  shortExt[41] = 31; // ExtLength 32 -> 31 for the signed-with-key extension
  const cases = [good.subarray(0, good.length - 1), Uint8Array.of(...good, 0), Uint8Array.of(2, ...good.subarray(1)), shortExt, good.subarray(0, 50)];
  const theirs = stem(cases);
  cases.forEach((c, i) => {
    assert.ok('error' in ours(c), `orport accepted case ${i}`);
    assert.ok('error' in theirs[i]!, `Stem accepted case ${i}`);
  });
});

test('deliberate difference: CERT_KEY_TYPE 0 stays 0 in orport; Stem reads and packs it as 1', { skip }, () => {
  const cert = Ed25519Cert.build({ certType: 4, expirationHours: 1000, keyType: 0, certifiedKey: new Uint8Array(32) }, new Uint8Array(64)).encoded;
  const [theirs] = stem([cert]);
  assert.equal((ours(cert) as { keyType: number }).keyType, 0);
  assert.equal((theirs as { keyType: number }).keyType, 1);
  assert.equal(Buffer.from((theirs as { packed: string }).packed, 'base64')[6], 1);
});
