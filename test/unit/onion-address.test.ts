/**
 * onion/address: v3 onion addresses against tor's vectors (syphyr/tor @817b7105,
 * src/test/test_hs_common.c `test_build_address`, `test_validate_address`,
 * `test_parse_extended_hostname`), Arti's (zydou/arti @cadcd0d3,
 * crates/tor-netdoc/src/doc/hsdesc.rs `TEST_HSID_2`) and rend-spec-v3 §6's examples; each
 * refusal's `problem`; fast-check: encode → parse round trips, and garbage gives only
 * OnionAddressErrors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import fc from 'fast-check';
import { BadArgumentError, OnionAddressError, type OnionAddressProblem } from '../../src/errors.js';
import { base32Decode, base32Encode, encodeOnionAddress, isOnionHostname, onionChecksum, parseOnionAddress } from '../../src/onion/address.js';
import { ed25519RawPublicKey } from '../../src/crypto/ed25519cert.js';

const hex = (h: string) => new Uint8Array(Buffer.from(h, 'hex'));
const TOR_ADDR = '25njqamcweflpvkl73j4szahhihoc4xt3ktcgjnpaingr5yhkenl5sid';

function refused(host: string, problem: OnionAddressProblem, pattern?: RegExp): void {
  assert.throws(
    () => parseOnionAddress(host),
    (err: unknown) => err instanceof OnionAddressError && err instanceof BadArgumentError && err.problem === problem && (!pattern || pattern.test(err.message)),
    `${host} is refused for ${problem}`,
  );
}

test("tor's test_build_address: the key d75a98… encodes to 25njqamc…sid.onion, and parses back", () => {
  const key = hex('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a');
  assert.equal(encodeOnionAddress(key), `${TOR_ADDR}.onion`);
  const parsed = parseOnionAddress(`${TOR_ADDR}.onion`);
  assert.deepEqual(parsed.publicKey, key);
  assert.equal(parsed.version, 3);
  assert.equal(parsed.id, TOR_ADDR);
  assert.equal(parsed.hostname, `${TOR_ADDR}.onion`);
});

test("Arti's TEST_HSID_2 and rend-spec §6's three example addresses", () => {
  assert.equal(encodeOnionAddress(hex('781d978ce6ce9caa8bca306f53e82d2c993e5c91346625f1c151dcfc56d753d3')), 'paozpdhgz2okvc6kgbxvh2bnfsmt4xergrtcl4obkhopyvwxkpjzvoad.onion');
  for (const a of [
    'pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd.onion',
    'sp3k262uwy4r2k3ycr5awluarykdpag6a7y33jxop4cs2lu5uz5sseqd.onion',
    'xa4r2iadxm55fbnqgwwi5mymqdcofiu3w6rpbtqn7b2dyn7mgwj64jyd.onion',
  ]) {
    assert.equal(encodeOnionAddress(parseOnionAddress(a).publicKey), a);
  }
});

test("tor's test_parse_extended_hostname: subdomains dropped, an empty label refused, upper case accepted", () => {
  assert.equal(parseOnionAddress(`www.${TOR_ADDR}.onion`).hostname, `${TOR_ADDR}.onion`);
  assert.equal(parseOnionAddress(`a.b.${TOR_ADDR}.onion`).id, TOR_ADDR);
  assert.equal(parseOnionAddress(`WWW.${TOR_ADDR.toUpperCase()}.ONION`).id, TOR_ADDR);
  assert.equal(parseOnionAddress(TOR_ADDR).id, TOR_ADDR, 'bare 56 characters');
  refused(`.${TOR_ADDR}.onion`, 'empty-label');
  refused('www.15njqamcweflpvkl73j4szahhihoc4xt3ktcgjnpaingr5yhkenl5sid.onion', 'base32');
  refused('15njqamcweflpvkl73j4szahhihoc4xt3ktcgjnpaingr5yhkenl5sid7jdl.onion', 'length');
  refused('fooaddress.onion', 'length');
  refused('www.torproject.org', 'not-onion');
  refused('.onion', 'length');
});

test("tor's test_validate_address: lengths, checksums (prop224's own example fails it), base32; v2 gets its own message", () => {
  refused('blah', 'length');
  refused('p3xnclpu4mu22dwaurjtsybyqk4xfjmcfz6z62yl24uwmhjatiwnlnadb', 'length');
  refused('l5satjgud6gucryazcyvyvhuxhr74u6ygigiuyixe3a6ysis67ororad', 'checksum');
  refused('btojiu7nu5y5iwut64eufevogqdw4wmqzugnoluw232r4t3ecsfv37ad', 'checksum');
  refused('?'.repeat(56), 'base32');
  refused('foo.abcdefghijklmnop.onion', 'v2', /v2 onion address \(16 characters\).*only v3/);
  refused('yyhws9optuwiwsns.onion', 'length');
});

test('a checksummed version other than 3, and keys tor refuses (identity point, torsion, not on the curve)', () => {
  const key = hex('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a');
  const raw = new Uint8Array(35);
  raw.set(key);
  raw.set(onionChecksum(key, 4), 32);
  raw[34] = 4;
  refused(`${base32Encode(raw)}.onion`, 'version', /version 4/);
  const identity = new Uint8Array(32);
  identity[0] = 1;
  refused(encodeOnionAddress(identity), 'key', /identity/);
  // A point of order 8 (RFC 8032 small-order list): on the curve, not torsion-free.
  refused(encodeOnionAddress(hex('c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a')), 'key', /torsion/);
  // y = 2 has no x on Ed25519.
  const notOnCurve = new Uint8Array(32);
  notOnCurve[0] = 2;
  refused(encodeOnionAddress(notOnCurve), 'key', /not a point/);
  assert.doesNotThrow(() => parseOnionAddress(encodeOnionAddress(identity), { validateKey: false }));
});

test('isOnionHostname; encodeOnionAddress refuses a key of the wrong length', () => {
  assert.ok(isOnionHostname(`x.${TOR_ADDR}.ONION`));
  assert.ok(!isOnionHostname('example.com'));
  assert.ok(!isOnionHostname('onion'));
  assert.throws(() => encodeOnionAddress(new Uint8Array(31)), BadArgumentError);
});

test('property: base32 round trips', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 80 }), (bytes) => {
    const text = base32Encode(bytes);
    assert.deepEqual(base32Decode(text), bytes);
    assert.deepEqual(base32Decode(text.toUpperCase()), bytes);
  }));
});

test('property: encode → parse round trips (any 32 bytes without the key check; real Ed25519 keys with it)', () => {
  fc.assert(fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.constantFrom('', 'www.', 'a.b.'), (key, sub) => {
    const host = encodeOnionAddress(key);
    assert.match(host, /^[a-z2-7]{55}d\.onion$/);
    const parsed = parseOnionAddress(sub + host, { validateKey: false });
    assert.deepEqual(parsed.publicKey, key);
    assert.equal(parsed.hostname, host);
  }));
  for (let i = 0; i < 20; i++) {
    const key = ed25519RawPublicKey(generateKeyPairSync('ed25519').publicKey);
    assert.deepEqual(parseOnionAddress(encodeOnionAddress(key)).publicKey, key);
  }
});

test('property: any string, and any one-character change of a valid address, gives an OnionAddressError or a result — nothing else', () => {
  const check = (host: string) => {
    try {
      parseOnionAddress(host);
    } catch (err) {
      assert.ok(err instanceof OnionAddressError, `untyped error for ${JSON.stringify(host)}: ${String(err)}`);
    }
  };
  fc.assert(fc.property(fc.string({ maxLength: 100 }), check));
  fc.assert(fc.property(fc.string({ maxLength: 70 }).map((s) => `${s}.onion`), check));
  // Every one-character change of tor's address (all 1,760): none passes the checksum.
  for (let at = 0; at < 56; at++) {
    for (const ch of 'abcdefghijklmnopqrstuvwxyz234567') {
      const mutated = TOR_ADDR.slice(0, at) + ch + TOR_ADDR.slice(at + 1);
      if (mutated !== TOR_ADDR) assert.throws(() => parseOnionAddress(`${mutated}.onion`), OnionAddressError);
    }
  }
});
