/**
 * The directory parsers' fast paths against their checked readers: parseConsensusDocument
 * (one-pass router entries) against { reference: true } (routerSection + readRouters with
 * the scanner), and parseMicrodescs against parseMicrodescsChecked. On valid documents
 * and on documents mutated byte by byte and line by line, both must give the same result
 * or throw the same error (class, code and message, with its line number).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import fc from 'fast-check';
import { latin1Text, latin1Bytes } from '../../src/dir/netdoc.js';
import { parseConsensusDocument } from '../../src/dir/consensus.js';
import { parseMicrodescs, parseMicrodescsChecked } from '../../src/dir/microdesc.js';
import { makeAuthorities, makeConsensus, makeRelays, microdescText } from '../../src/testing/dirdocs.js';
import { fuzz, mutated } from '../support/fuzz.js';

const FILE = import.meta.url;
const authorities = makeAuthorities(3);
const relays = makeRelays(12, { exits: 4 });
const validAfter = new Date('2026-11-30T12:00:00Z');
const consensus = makeConsensus({ authorities, relays, validAfter });
const mds = microdescText(relays);
const PUBLIC = new URL('../vectors/public/cached-microdesc-consensus.gz', import.meta.url);

/** The outcome of `fn` as a comparable value: its result, or the error's class, code and message. */
function outcome(fn: () => unknown): unknown {
  try {
    return { ok: fn() };
  } catch (err) {
    const e = err as Error & { code?: string };
    return { error: `${e.constructor.name} ${e.code ?? ''} ${e.message}` };
  }
}

function sameConsensus(text: string): void {
  for (const testing of [false, true]) {
    assert.deepStrictEqual(
      outcome(() => parseConsensusDocument(text, { testing })),
      outcome(() => parseConsensusDocument(text, { testing, reference: true })),
    );
  }
}

function sameMicrodescs(text: string): void {
  assert.deepStrictEqual(
    outcome(() => parseMicrodescs(text)),
    outcome(() => parseMicrodescsChecked(text)),
  );
}

/** Line edits that reach the fast paths' refusals: tabs, spaces, empty lines, objects, repeats, padding, CRs. */
const EDITS = ['\t', ' ', '  ', '\n', '\r', '=', '==', 'x', '-----BEGIN SIGNATURE-----\nAAAA\n-----END SIGNATURE-----\n', '-----BEGIN RSA PUBLIC KEY-----\nAA$A\n-----END RSA PUBLIC KEY-----\n', '@annotation\n', 'onion-key\n', 'r ', 's Fast\n', 'pr Link=1-5\n', 'm AAAA\n', 'w Bandwidth=\n', 'w Unmeasured=1 Bandwidth=7\n', 'a [::1]:99999\n', 'v Tor 0.4.9.11\n', 'family $AB\n', 'id ed25519 AAAA\n', 'ntor-onion-key AAAA\n', 'directory-footer\n', 'opt x\n'];
function lineEdited(text: string): fc.Arbitrary<string> {
  const lines = text.split('\n');
  const edit = fc.record({ line: fc.nat({ max: lines.length - 1 }), kind: fc.constantFrom('insert-before', 'replace', 'delete', 'duplicate', 'append', 'prepend', 'swap'), edit: fc.constantFrom(...EDITS), column: fc.nat({ max: 80 }) });
  return fc.array(edit, { minLength: 1, maxLength: 3 }).map((edits) => {
    const out = [...lines];
    for (const e of edits) {
      const i = e.line % out.length;
      const l = out[i]!;
      if (e.kind === 'insert-before') out.splice(i, 0, e.edit.replace(/\n$/, ''));
      else if (e.kind === 'replace') out[i] = l.slice(0, e.column % (l.length + 1)) + e.edit + l.slice((e.column % (l.length + 1)) + 1);
      else if (e.kind === 'delete') out.splice(i, 1);
      else if (e.kind === 'duplicate') out.splice(i, 0, l);
      else if (e.kind === 'append') out[i] = l + e.edit;
      else if (e.kind === 'prepend') out[i] = e.edit + l;
      else if (i + 1 < out.length) [out[i], out[i + 1]] = [out[i + 1]!, l];
    }
    return out.join('\n');
  });
}

test('valid documents: the fast paths read what the checked readers read', () => {
  sameConsensus(consensus);
  sameMicrodescs(mds);
  sameMicrodescs(`@last-listed 2026-11-30 12:00:00\n${mds}`);
  const parsed = parseConsensusDocument(consensus);
  assert.equal(parsed.routers.length, relays.length);
  if (existsSync(PUBLIC)) sameConsensus(latin1Text(gunzipSync(readFileSync(PUBLIC))));
});

test('mutated consensus: the same result or the same error', () => {
  fuzz(FILE, 'dir fast path: consensus, bytes mutated', mutated(latin1Bytes(consensus), 3), (b) => sameConsensus(latin1Text(b)), 2);
  fuzz(FILE, 'dir fast path: consensus, lines edited', lineEdited(consensus), sameConsensus, 4);
});

test('mutated microdescriptors: the same result or the same error', () => {
  fuzz(FILE, 'dir fast path: microdescriptors, bytes mutated', mutated(latin1Bytes(mds), 3), (b) => sameMicrodescs(latin1Text(b)), 2);
  fuzz(FILE, 'dir fast path: microdescriptors, lines edited', lineEdited(mds), sameMicrodescs, 4);
});
