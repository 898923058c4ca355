/**
 * A real consensus of the public Tor network (test/vectors/public, see its PROVENANCE.md)
 * with its authorities' key certificates verifies against Network.PUBLIC — the
 * authorities tor 0.4.9 ships — and every one of its 9 signatures is good; its
 * microdescriptors match their `m` lines; one byte changed, or a clock outside its
 * validity, and it does not verify.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { DirectoryError } from '../../src/errors.js';
import { Network } from '../../src/dir/network.js';
import { verifyConsensus, verifyMicrodescs } from '../../src/dir/verify.js';
import { parseAuthorityCerts, verifyAuthorityCerts } from '../../src/dir/authcert.js';

const dir = new URL('../vectors/public/', import.meta.url);
const consensus = gunzipSync(readFileSync(new URL('cached-microdesc-consensus.gz', dir))).toString('latin1');
const certsText = readFileSync(new URL('cached-certs', dir), 'latin1');
const mdText = readFileSync(new URL('cached-microdescs', dir), 'latin1');
const inside = new Date('2026-06-27T05:00:00Z');

test('the public consensus of 2026-06-27 04:00 verifies against Network.PUBLIC: all 9 authorities signed', () => {
  const certs = parseAuthorityCerts(certsText);
  const { valid, rejected } = verifyAuthorityCerts(certs, inside);
  assert.equal(valid.length, 9);
  assert.deepEqual(rejected, []);
  assert.deepEqual(valid.map((c) => c.fingerprint).sort(), Network.PUBLIC.v3Authorities.map((a) => a.v3ident).sort());
  const v = verifyConsensus(consensus, certs, Network.PUBLIC, { now: inside });
  assert.deepEqual([...v.signedBy].sort(), ['bastet', 'dannenberg', 'dizum', 'faravahar', 'gabelmoo', 'longclaw', 'maatuska', 'moria1', 'tor26']);
  assert.equal(v.consensus.flavor, 'microdesc');
  assert.equal(v.consensus.consensusMethod, 35);
  assert.equal(v.consensus.routers.length, 9609);
  assert.equal(v.consensus.validAfter.toISOString(), '2026-06-27T04:00:00.000Z');
  // The authority section names the same authorities tor ships.
  assert.deepEqual(
    v.consensus.authorities.map((a) => a.v3ident).filter((id) => Network.PUBLIC.authorityByV3ident(id)).sort(),
    Network.PUBLIC.v3Authorities.map((a) => a.v3ident).sort(),
  );
  const mds = verifyMicrodescs(v.consensus, mdText);
  assert.equal(mds.kept.length, 51);
  assert.deepEqual(mds.dropped, []);
});

test('the public consensus with one byte changed, or outside its validity, does not verify', () => {
  const at = consensus.indexOf('\nr ') + 3;
  const tampered = consensus.slice(0, at) + (consensus[at] === 'a' ? 'b' : 'a') + consensus.slice(at + 1);
  assert.throws(() => verifyConsensus(tampered, certsText, Network.PUBLIC, { now: inside }), (err: unknown) => err instanceof DirectoryError && err.code === 'E_DIR_SIGNATURES');
  assert.throws(() => verifyConsensus(consensus, certsText, Network.PUBLIC, { now: new Date('2026-06-27T08:00:00Z') }), (err: unknown) => err instanceof DirectoryError && err.code === 'E_DIR_EXPIRED');
  assert.throws(() => verifyConsensus(consensus, certsText, Network.PUBLIC, { now: new Date('2026-06-27T03:00:00Z') }), (err: unknown) => err instanceof DirectoryError && err.code === 'E_DIR_NOT_YET_VALID');
});
