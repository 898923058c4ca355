/**
 * Fuzzing the directory parsers and verification: the netdoc tokenizer, the consensus,
 * key certificates, microdescriptors and verifyConsensus, on arbitrary text, on
 * netdoc-shaped lines, and on real-shaped documents (signed synthetic ones, and the
 * moria1 microdescriptor) mutated byte by byte. Only our typed errors may come out; a
 * mutated consensus that still verifies must be the original's signed bytes.
 * Property: a consensus that parses reports only what its text says (round trip of the
 * router identities through the synthetic generator).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Network } from '../../src/dir/network.js';
import { tokenize, latin1Text, latin1Bytes } from '../../src/dir/netdoc.js';
import { parseConsensusDocument } from '../../src/dir/consensus.js';
import { parseAuthorityCerts, verifyAuthorityCerts } from '../../src/dir/authcert.js';
import { parseMicrodescs } from '../../src/dir/microdesc.js';
import { verifyConsensus } from '../../src/dir/verify.js';
import { dirAuthorityTorrc, makeAuthorities, makeConsensus, makeRelays, microdescText } from '../../src/testing/dirdocs.js';
import { fuzz, mutated, typedOrNothing } from '../support/fuzz.js';

const FILE = import.meta.url;
const authorities = makeAuthorities(3);
const relays = makeRelays(4);
const validAfter = new Date('2026-11-30T12:00:00Z');
const now = new Date('2026-11-30T12:30:00Z');
const consensus = makeConsensus({ authorities, relays, validAfter });
const certs = authorities.map((a) => a.certificate).join('');
const mds = microdescText(relays);
const network = Network.fromTorrc(dirAuthorityTorrc(authorities.map((authority, i) => ({ authority, orPort: 5000 + i, rsa: 'CD'.repeat(20) }))));
const parsedCerts = parseAuthorityCerts(certs);
const signedPart = consensus.slice(0, consensus.indexOf('\ndirectory-signature ') + 21);

const keywords = ['r', 's', 'm', 'w', 'pr', 'a', 'v', 'p', 'id', 'family', 'onion-key', 'ntor-onion-key', 'network-status-version', 'vote-status', 'valid-after', 'fresh-until', 'valid-until', 'voting-delay', 'known-flags', 'params', 'dir-source', 'directory-footer', 'bandwidth-weights', 'directory-signature', 'dir-key-certificate-version', 'fingerprint', 'dir-key-published', 'dir-key-expires', 'dir-identity-key', 'dir-signing-key', 'dir-key-crosscert', 'dir-key-certification'];
/** Lines that look like netdoc: a known keyword, arguments from a small alphabet, objects now and then. */
const netdocLines = fc
  .array(
    fc.tuple(
      fc.constantFrom(...keywords),
      fc.array(fc.constantFrom('3', 'microdesc', 'consensus', '2026-11-30', '12:00:00', 'AAAAAAAAAAAAAAAAAAAAAAAAAAA', '127.0.0.1', '9001', '0', 'Running', 'Link=1-5', 'k=1', 'sha256', 'F'.repeat(40), ''), { maxLength: 6 }),
      fc.boolean(),
    ),
    { maxLength: 30 },
  )
  .map((lines) => lines.map(([k, args, obj]) => `${k}${args.length ? ' ' + args.join(' ') : ''}\n${obj ? '-----BEGIN SIGNATURE-----\nAAAA\n-----END SIGNATURE-----\n' : ''}`).join(''));

const everyParser = (text: string) => {
  typedOrNothing(() => tokenize(text, 'fuzz'));
  typedOrNothing(() => parseConsensusDocument(text));
  typedOrNothing(() => parseConsensusDocument(text, { testing: true }));
  typedOrNothing(() => verifyAuthorityCerts(parseAuthorityCerts(text), now));
  typedOrNothing(() => parseMicrodescs(text));
};

test('arbitrary text: only typed errors from every directory parser', () => {
  fuzz(FILE, 'dir: arbitrary text', fc.string({ maxLength: 400 }), everyParser, 2);
  fuzz(FILE, 'dir: arbitrary bytes as latin1', fc.uint8Array({ maxLength: 400 }), (b) => everyParser(latin1Text(b)), 2);
});

test('netdoc-shaped lines: only typed errors', () => {
  fuzz(FILE, 'dir: netdoc-shaped lines', netdocLines, everyParser, 2);
});

test('a signed consensus mutated byte by byte: typed errors, and whatever still verifies signed the same bytes', () => {
  const base = latin1Bytes(consensus);
  fuzz(FILE, 'dir: mutated consensus, verified', mutated(base, 3), (bytes) => {
    const text = latin1Text(bytes);
    const result = typedOrNothing(() => verifyConsensus(text, parsedCerts, network, { now }));
    if (!(result instanceof Error)) assert.equal(text.slice(0, text.indexOf('\ndirectory-signature ') + 21), signedPart, 'a changed signed part verified');
  }, 0.5);
});

test('key certificates and microdescriptors mutated byte by byte: only typed errors', () => {
  fuzz(FILE, 'dir: mutated certificates', mutated(latin1Bytes(certs), 3), (b) => {
    typedOrNothing(() => verifyAuthorityCerts(parseAuthorityCerts(latin1Text(b)), now));
  }, 0.5);
  fuzz(FILE, 'dir: mutated microdescriptors', mutated(latin1Bytes(mds), 4), (b) => {
    typedOrNothing(() => parseMicrodescs(latin1Text(b)));
  });
});

test('property: a parsed consensus lists exactly the generated relays, in identity order', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 12 }), (n) => {
      const rs = makeRelays(n);
      const doc = makeConsensus({ authorities, relays: rs, validAfter, signers: [] });
      const parsed = typedOrNothing(() => parseConsensusDocument(doc));
      // Without signatures it is not a consensus (tor: at least one directory-signature).
      assert.ok(parsed instanceof Error);
      const signed = makeConsensus({ authorities, relays: rs, validAfter, signers: authorities.slice(0, 1) });
      const p = parseConsensusDocument(signed);
      assert.deepEqual(p.routers.map((r) => r.rsa), rs.map((r) => r.rsa).sort());
      assert.deepEqual(p.routers.map((r) => r.microdescDigest).sort(), rs.map((r) => r.microdescDigest).sort());
    }),
    { numRuns: 20 },
  );
});
