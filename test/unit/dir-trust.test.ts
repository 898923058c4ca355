/**
 * Verification of directory documents (dir-spec §3.1, §3.4.1; tor networkstatus.c): a
 * consensus signed by throw-away authorities (src/testing/dirdocs) verifies, and each way
 * of not deserving trust gets its DirectoryError code — one byte changed in a router
 * entry, signers the network does not list, a minority of valid signatures, expired, not
 * yet valid, a bad key certificate; messages name who verified and who did not. Plus the
 * microdescriptor digest vector from DIGEST-directory.md (moria1, the public network) and
 * malformed documents reported with their line.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { DecodeError, DirectoryError } from '../../src/errors.js';
import { Network } from '../../src/dir/network.js';
import { verifyConsensus, verifyMicrodescs } from '../../src/dir/verify.js';
import { parseAuthorityCerts, verifyAuthorityCert } from '../../src/dir/authcert.js';
import { parseConsensusDocument } from '../../src/dir/consensus.js';
import { parseMicrodescs } from '../../src/dir/microdesc.js';
import { certify, dirAuthorityTorrc, makeAuthorities, makeConsensus, makeRelays, microdescText } from '../../src/testing/dirdocs.js';

const authorities = makeAuthorities(5);
const relays = makeRelays(40);
const validAfter = new Date('2026-11-30T12:00:00Z');
const inside = new Date('2026-11-30T13:30:00Z');
const text = makeConsensus({ authorities, relays, validAfter });
const certs = authorities.map((a) => a.certificate).join('');
const network = Network.fromTorrc(dirAuthorityTorrc(authorities.map((authority, i) => ({ authority, orPort: 5000 + i, rsa: 'AB'.repeat(20) }))));

function dirError(fn: () => unknown): DirectoryError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof DirectoryError, `a DirectoryError, not ${String(err)}`);
    return err;
  }
  assert.fail('expected a DirectoryError');
}

test('a consensus signed by every configured authority verifies; signedBy names them', () => {
  const v = verifyConsensus(text, certs, network, { now: inside });
  assert.deepEqual([...v.signedBy].sort(), authorities.map((a) => a.nickname).sort());
  assert.equal(v.consensus.routers.length, relays.length);
  assert.equal(v.consensus.flavor, 'microdesc');
  assert.ok(v.checks.every((c) => c.outcome === 'good'));
  const kept = verifyMicrodescs(v.consensus, microdescText(relays));
  assert.equal(kept.kept.length, relays.length);
  assert.deepEqual(kept.dropped, []);
});

test('one byte changed in a router entry: E_DIR_SIGNATURES, naming every authority as not verified', () => {
  const at = text.indexOf('\nw Bandwidth=') + 13;
  const tampered = text.slice(0, at) + (text[at] === '1' ? '2' : '1') + text.slice(at + 1);
  const err = dirError(() => verifyConsensus(tampered, certs, network, { now: inside }));
  assert.equal(err.code, 'E_DIR_SIGNATURES');
  assert.match(err.message, /0 of the 5 configured authorities signed validly, 3 needed/);
  for (const a of authorities) assert.match(err.message, new RegExp(`${a.nickname} \\(bad-signature`));
});

test('signatures by authorities the network does not list: E_DIR_SIGNATURES', () => {
  const strangers = makeAuthorities(5);
  const signed = makeConsensus({ authorities: strangers, relays, validAfter });
  const err = dirError(() => verifyConsensus(signed, strangers.map((a) => a.certificate).join(''), network, { now: inside }));
  assert.equal(err.code, 'E_DIR_SIGNATURES');
  assert.match(err.message, /not-configured/);
});

test('only a minority of valid signatures (2 of 5; 3 needed): E_DIR_SIGNATURES; 3 of 5 verifies', () => {
  const two = makeConsensus({ authorities, relays, validAfter, signers: authorities.slice(0, 2) });
  const err = dirError(() => verifyConsensus(two, certs, network, { now: inside }));
  assert.equal(err.code, 'E_DIR_SIGNATURES');
  assert.match(err.message, /2 of the 5 configured authorities signed validly, 3 needed\. Verified: auth[0-4], auth[0-4]/);
  const three = makeConsensus({ authorities, relays, validAfter, signers: authorities.slice(0, 3) });
  assert.equal(verifyConsensus(three, certs, network, { now: inside }).signedBy.length, 3);
});

test('a missing certificate counts as not verified (no-certificate)', () => {
  const err = dirError(() => verifyConsensus(text, authorities.slice(0, 2).map((a) => a.certificate).join(''), network, { now: inside }));
  assert.equal(err.code, 'E_DIR_SIGNATURES');
  assert.match(err.message, /no-certificate/);
});

test('expired and not yet valid: E_DIR_EXPIRED, E_DIR_NOT_YET_VALID; the clock tolerance is honoured', () => {
  const validUntil = new Date(validAfter.getTime() + 3 * 3600_000);
  const late = new Date(validUntil.getTime() + 60_000);
  assert.equal(dirError(() => verifyConsensus(text, certs, network, { now: late })).code, 'E_DIR_EXPIRED');
  assert.equal(verifyConsensus(text, certs, network, { now: late, toleranceMs: 120_000 }).signedBy.length, 5);
  const early = new Date(validAfter.getTime() - 60_000);
  const err = dirError(() => verifyConsensus(text, certs, network, { now: early }));
  assert.equal(err.code, 'E_DIR_NOT_YET_VALID');
  assert.match(err.message, /signed by/);
  assert.equal(verifyConsensus(text, certs, network, { now: early, toleranceMs: 120_000 }).signedBy.length, 5);
});

test('a bad key certificate: E_DIR_CERT (certification, cross-certificate, expiry, fingerprint)', () => {
  const parsed = parseAuthorityCerts(certs);
  const flip = (bytes: Uint8Array) => {
    const copy = bytes.slice();
    copy[copy.length - 1]! ^= 1;
    return copy;
  };
  const bad = [
    { ...parsed[0]!, certification: flip(parsed[0]!.certification) },
    { ...parsed[0]!, crossCert: flip(parsed[0]!.crossCert) },
    { ...parsed[0]!, expires: new Date(inside.getTime() - 1000) },
    { ...parsed[0]!, fingerprint: parsed[1]!.fingerprint },
  ];
  const checks = [/dir-key-certification/, /cross-certificate/, /expired/, /digest/];
  bad.forEach((cert, i) => {
    const err = dirError(() => verifyAuthorityCert(cert, inside));
    assert.equal(err.code, 'E_DIR_CERT');
    assert.match(err.message, checks[i]!);
  });
  // With three of the five certificates bad, the consensus fails because of them: E_DIR_CERT.
  const withBad = [...bad.slice(0, 3).map((c, i) => ({ ...c, fingerprint: parsed[i]!.fingerprint, signingKeyDigest: parsed[i]!.signingKeyDigest })), parsed[3]!, parsed[4]!];
  const err = dirError(() => verifyConsensus(text, withBad, network, { now: inside }));
  assert.equal(err.code, 'E_DIR_CERT');
  assert.match(err.message, /bad-certificate/);
});

test('an RSA PUBLIC KEY object holding a private key is refused (tor does; Node would derive the public half)', () => {
  const [cert] = parseAuthorityCerts(certs);
  const privateDer = new Uint8Array(authorities[0]!.identityKey.export({ type: 'pkcs1', format: 'der' }));
  const err = dirError(() => verifyAuthorityCert({ ...cert!, identityKey: privateDer, fingerprint: createHash('sha1').update(privateDer).digest('hex').toUpperCase() }, inside));
  assert.equal(err.code, 'E_DIR_CERT');
  assert.match(err.message, /not a PKCS#1 RSAPublicKey/);
});

test('a certificate made for another key is caught by its digests', () => {
  const a = authorities[0]!;
  const b = authorities[1]!;
  const mixed = certify('x', a.identityKey, b.signingKey, new Date('2026-01-01T00:00:00Z'), new Date('2027-01-01T00:00:00Z'));
  const [cert] = parseAuthorityCerts(mixed.certificate);
  verifyAuthorityCert(cert!, inside); // a valid certificate of a's identity for b's signing key …
  assert.equal(cert!.signingKeyDigest, b.signingKeyDigest);
  // … does not let b's signing key sign for a: the consensus names (a, a's signing key).
  const v = verifyConsensus(text, [cert!, ...parseAuthorityCerts(certs).slice(1)], network, { now: inside });
  assert.ok(!v.signedBy.includes(a.nickname));
});

test("microdescriptor digest vector (DIGEST-directory.md §4.2, moria1 on the public network)", () => {
  const md = [
    'onion-key',
    '-----BEGIN RSA PUBLIC KEY-----',
    'MIGJAoGBAKgljmwDI3bR9iXoCA9PIAoMosGM3Ym6r7rsItRBvT2W8Z/GQmSkZeeG',
    '9nVduSJjQXaCsmUF6bArnUAiY0mf9qpntk56d68LvolKCOsx4gMx8kLTyCK5pDy4',
    'GUR90kfXDBg8Ay73oRmRHcDHyOjWOryNsILw9zvautp53FWYconNAgMBAAE=',
    '-----END RSA PUBLIC KEY-----',
    'ntor-onion-key MHNK0H4nufvk7IBh8R63OSY0KyFvI+z0m4JCE6qMbg4',
    'id ed25519 qpL/LxLYVEXghU76iG3LsSI/UW7MBpIROZK0AB18560',
    '',
  ].join('\n');
  assert.equal(md.length, 375);
  const [parsed] = parseMicrodescs(md).microdescs;
  assert.equal(parsed!.digest, '3/USjOwgkJJ8l49JlpCnSiXLByanULxEoeUwRj5+P0s');
  assert.equal(parsed!.ed25519, 'qpL/LxLYVEXghU76iG3LsSI/UW7MBpIROZK0AB18560');
  assert.equal(parsed!.ntorOnionKey, 'MHNK0H4nufvk7IBh8R63OSY0KyFvI+z0m4JCE6qMbg4');
  // Two in a row split where the second onion-key starts; each digest covers its own body.
  const both = parseMicrodescs(md + md.replace('MHNK0H4', 'AHNK0H4')).microdescs;
  assert.equal(both.length, 2);
  assert.equal(both[0]!.digest, parsed!.digest);
  assert.equal(both[1]!.digest, createHash('sha256').update(md.replace('MHNK0H4', 'AHNK0H4')).digest('base64').replace(/=+$/, ''));
});

test('malformed documents: a DecodeError naming the line', () => {
  const lines = text.split('\n');
  const rLine = lines.findIndex((l) => l.startsWith('r '));
  const cases: [string, string, RegExp][] = [
    ['no pr', lines.filter((l, i) => !(i > rLine && i < rLine + 7 && l.startsWith('pr '))).join('\n'), /line \d+: router relay\d+ has no pr line/],
    ['bad time', text.replace(/^valid-after .*$/m, 'valid-after 2026-13-45 00:00:00'), /line 4: valid-after: bad time/],
    ['routers out of order', (() => {
      const entries = text.slice(text.indexOf('\nr ') + 1, text.indexOf('\ndirectory-footer') + 1).split(/(?=^r )/m);
      [entries[0], entries[1]] = [entries[1]!, entries[0]!];
      return text.slice(0, text.indexOf('\nr ') + 1) + entries.join('') + text.slice(text.indexOf('\ndirectory-footer') + 1);
    })(), /not in ascending order of identity/],
    ['known-flags unsorted', text.replace('known-flags Authority BadExit', 'known-flags BadExit Authority'), /line 10: known-flags are not strictly ascending/],
    ['an item after the signatures', `${text}r late AAAAAAAAAAAAAAAAAAAAAAAAAAA 2038-01-01 00:00:00 127.0.0.1 1 0\n`, /after a directory-signature/],
    ['unterminated object', text.slice(0, text.lastIndexOf('-----END SIGNATURE-----')), /has no END line/],
  ];
  for (const [name, doc, pattern] of cases) {
    assert.throws(() => parseConsensusDocument(doc), (err: unknown) => {
      assert.ok(err instanceof DecodeError, `${name}: ${String(err)}`);
      assert.match(err.message, pattern, name);
      return true;
    });
  }
});

test('malformed microdescriptors: a DecodeError naming the line, counted across objects', () => {
  const text = microdescText(relays.slice(0, 3));
  const lines = text.split('\n');
  const third = lines.map((l, i) => [l, i] as const).filter(([l]) => l.startsWith('ntor-onion-key '))[2]![1];
  lines[third] = 'ntor-onion-key not-a-key';
  assert.throws(() => parseMicrodescs(lines.join('\n')), (err: unknown) => err instanceof DecodeError && new RegExp(`line ${third + 1}: ntor-onion-key`).test(err.message));
  assert.throws(() => parseMicrodescs('family x\n'), (err: unknown) => err instanceof DecodeError && /line 1: expected onion-key/.test(err.message));
  assert.throws(() => parseMicrodescs(text.replace('-----END RSA PUBLIC KEY-----', '-----END RSA PUBLIC KEY----')), (err: unknown) => err instanceof DecodeError && /has no END line/.test(err.message));
  // tor's cache annotations belong to no microdescriptor.
  assert.equal(parseMicrodescs(`@last-listed 2026-11-30 12:00:00\n${text}`).microdescs.length, 3);
});

test('unknown keywords are ignored wherever they stand', () => {
  const extra = text.replace('\nvote-status consensus\n', '\nvote-status consensus\nx-future-item 1 2 3\n').replace(/\nw Bandwidth=/, '\nx-new-router-line yes\nw Bandwidth=');
  const parsed = parseConsensusDocument(extra);
  assert.equal(parsed.routers.length, relays.length);
});
