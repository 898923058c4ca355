/**
 * onion/hsntor: the hs-ntor handshake byte for byte against rend-spec-v3 Appendix G.1
 * (the same vectors as Arti's zydou/arti @cadcd0d310831ba237fff4c1a39ef51c53b506db
 * crates/tor-proto/src/crypto/handshake/hs_ntor.rs `testvec`, generated with C tor on
 * chutney) and the MAC vectors of that file's `ntor_mac` (from tor's hs_ntor_ref.py); the
 * virtual-hop keys Df/Db/Kf/Kb from G.1's NTOR_KEY_SEED as /work/shared/spec/DIGEST-onion.md
 * §8.4 computes them (no upstream vector: marked); the spec's P decoded and re-encoded
 * (C tor's padding to 246); client ↔ service round trips with random keys (fast-check);
 * each refusal typed (altered AUTH, wrong subcredential, low-order points, lengths).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { BadArgumentError, DecodeError, HandshakeError } from '../../src/errors.js';
import { x25519KeyPair } from '../../src/crypto/handshake/ntor.js';
import {
  decodeIntroducePlaintext,
  encodeIntroduce1Header,
  encodeIntroducePlaintext,
  hsNtorClientFinish,
  hsNtorClientIntroduce,
  hsNtorKeyExpansion,
  hsNtorMac,
  hsNtorService,
} from '../../src/onion/hsntor.js';

const hex = (h: string) => new Uint8Array(Buffer.from(h.replace(/\s+/g, ''), 'hex'));
const HEX = (b: Uint8Array) => Buffer.from(b).toString('hex').toUpperCase();
const fixed = (bytes: Uint8Array) => (n: number) => {
  assert.equal(n, bytes.length);
  return bytes;
};

// rend-spec-v3 Appendix G.1
const AUTH_KEY = hex('34E171E4358E501BFF21ED907E96AC6BFEF697C779D040BBAF49ACC30FC5D21F');
const B = hex('8E5127A40E83AABF6493E41F142B6EE3604B85A3961CD7E38D247239AFF71979');
const b = hex('A0ED5DBF94EEB2EDB3B514E4CF6ABFF6022051CC5F103391F1970A3FCD15296A');
const SUBCRED = hex('0085D26A9DEBA252263BF0231AEAC59B17CA11BAD8A218238AD6487CBAD68B57');
const x = hex('60B4D6BF5234DCF87A4E9D7487BDF3F4A69B6729835E825CA29089CFDDA1E341');
const y = hex('68CB5188CA0CD7924250404FAB54EE1392D3D2B9C049A2E446513875952F8F55');
const H = hex('000000000000000000000000000000000000000002002034E171E4358E501BFF 21ED907E96AC6BFEF697C779D040BBAF49ACC30FC5D21F00');
const P = hex(`6BD364C12638DD5C3BE23D76ACA05B04E6CE932C0101000100200DE6130E4FCA
  C4EDDA24E21220CC3EADAE403EF6B7D11C8273AC71908DE565450300067F0000
  0113890214F823C4F8CC085C792E0AEE0283FE00AD7520B37D0320728D5DF39B
  7B7077A0118A900FF4456C382F0041300ACF9C58E51C392795EF870000000000
  0000000000000000000000000000000000000000000000000000000000000000
  000000000000000000000000000000000000000000000000000000000000`);
const INTRODUCE1 = hex(`000000000000000000000000000000000000000002002034E171E4358E501BFF
  21ED907E96AC6BFEF697C779D040BBAF49ACC30FC5D21F00BF04348B46D09AED
  726F1D66C618FDEA1DE58E8CB8B89738D7356A0C59111D5DADBECCCB38E37830
  4DCC179D3D9E437B452AF5702CED2CCFEC085BC02C4C175FA446525C1B9D5530
  563C362FDFFB802DAB8CD9EBC7A5EE17DA62E37DEEB0EB187FBB48C63298B0E8
  3F391B7566F42ADC97C46BA7588278273A44CE96BC68FFDAE31EF5F0913B9A9C
  7E0F173DBC0BDDCD4ACB4C4600980A7DDD9EAEC6E7F3FA3FC37CD95E5B8BFB3E
  35717012B78B4930569F895CB349A07538E42309C993223AEA77EF8AEA64F25D
  DEE97DA623F1AEC0A47F150002150455845C385E5606E41A9A199E7111D54EF2
  D1A51B7554D8B3692D85AC587FB9E69DF990EFB776D8`);
const REPLY = hex('8FBE0DB4D4A9C7FF46701E3E0EE7FD05CD28BE4F302460ADDEEC9E93354EE700 4A92E8437B8424D5E5EC279245D5C72B25A0327ACF6DAF902079FCB643D8B208');
const intro = { authKey: AUTH_KEY, encKey: B, subcredential: SUBCRED };
const service = { authKey: AUTH_KEY, encKeyPair: { secret: b, public: B }, subcredential: SUBCRED };

test("hs-ntor's MAC: Arti's ntor_mac vectors (from tor's hs_ntor_ref.py)", () => {
  assert.equal(Buffer.from(hsNtorMac(Buffer.from('who'), Buffer.from('knows?'))).toString('hex'), '5e7da329630fdaa3eab7498bb1dc625bbb9ca968f10392b6af92d51d5db17473');
  assert.equal(Buffer.from(hsNtorMac(Buffer.from('gone'), Buffer.from('by'))).toString('hex'), '90071aabb06d3f7c777db41542f4790c7dd9e2e7b2b842f54c9c42bbdb37e9a0');
});

test('rend-spec G.1: the header, ENC_KEY / MAC_KEY, and the whole INTRODUCE1 body byte for byte', () => {
  assert.deepEqual(encodeIntroduce1Header(AUTH_KEY), H);
  const { state, encrypted, encKey, macKey } = hsNtorClientIntroduce(intro, H, P, fixed(x));
  assert.equal(HEX(state.X), 'BF04348B46D09AED726F1D66C618FDEA1DE58E8CB8B89738D7356A0C59111D5D');
  assert.equal(HEX(encKey), '9B8917BA3D05F3130DACCE5300C3DC27F6D012912F1C733036F822D0ED238706');
  assert.equal(HEX(macKey), 'FC4058DA59D4DF61E7B40985D122F502FD59336BC21C30CAF5E7F0D4A2C38FD5');
  assert.deepEqual(new Uint8Array([...H, ...encrypted]), INTRODUCE1);
});

test('rend-spec G.1: the service recovers P and answers Y | AUTH; the client checks AUTH and both get the same hop keys', () => {
  const enc = INTRODUCE1.subarray(H.length);
  const s = hsNtorService(service, H, enc, fixed(y));
  assert.deepEqual(s.plaintext, P);
  assert.deepEqual(s.handshakeInfo, REPLY);
  assert.equal(HEX(s.keys.ntorKeySeed), '4D0C72FE8AFF35559D95ECC18EB5A36883402B28CDFD48C8A530A5A3D7D578DB');
  const { state } = hsNtorClientIntroduce(intro, H, P, fixed(x));
  const keys = hsNtorClientFinish(state, REPLY, 'rend circuit 7');
  assert.deepEqual(keys.ntorKeySeed, s.keys.ntorKeySeed);
  // DIGEST-onion.md §8.4 (computed there from G.1's seed; no upstream vector).
  assert.equal(HEX(keys.forwardDigest), 'D02A24DFE70151BA16FC67A623BDB26B9715EC40628D3C06FA285BFC308C4A80');
  assert.equal(HEX(keys.backwardDigest), '8AF14BEBAE313947D8D3820C85C273AE2CB14E24E796251571DB7163BDD992F8');
  assert.equal(HEX(keys.forwardKey), 'F191044C02BB743CD58E1EA9AA117BCA975AFE8207B791210AE4AB82A04E556A');
  assert.equal(HEX(keys.backwardKey), '6FB0D1B019E7A548AB9EED89DC5762B8E9EE72A4787A51B3534561E0F4C1F343');
  assert.deepEqual(s.keys.forwardKey, keys.backwardKey, "the service's forward is the client's backward");
  assert.deepEqual(s.keys.backwardDigest, keys.forwardDigest);
  assert.deepEqual(hsNtorKeyExpansion(keys.ntorKeySeed), keys);
});

test("rend-spec G.1's P decodes (cookie, CC request, RP onion key, 3 link specifiers) and re-encodes with C tor's padding to 246", () => {
  const p = decodeIntroducePlaintext(P);
  assert.equal(Buffer.from(p.cookie).toString('hex'), '6bd364c12638dd5c3be23d76aca05b04e6ce932c');
  assert.deepEqual(p.extensions, [{ type: 1, data: new Uint8Array(0) }]);
  assert.equal(Buffer.from(p.onionKey).toString('hex'), '0de6130e4fcac4edda24e21220cc3eadae403ef6b7d11c8273ac71908de56545');
  assert.deepEqual(p.linkSpecifiers.map((l) => [l.type, Buffer.from(l.data).toString('hex')]), [
    [0, '7f0000011389'],
    [2, 'f823c4f8cc085c792e0aee0283fe00ad7520b37d'],
    [3, '728d5df39b7b7077a0118a900ff4456c382f0041300acf9c58e51c392795ef87'],
  ]);
  assert.deepEqual(encodeIntroducePlaintext(p, H.length), P);
  assert.equal(encodeIntroducePlaintext(p, H.length, 0).length, 123, 'unpadded');
  assert.equal(encodeIntroducePlaintext(p, H.length, 1000).length, 498 - 56 - 64, 'padded at most to the relay message');
  assert.throws(() => encodeIntroducePlaintext({ ...p, linkSpecifiers: Array(5).fill({ type: 9, data: new Uint8Array(80) }) }, H.length), BadArgumentError, 'too big for INTRODUCE1');
  assert.throws(() => encodeIntroducePlaintext({ ...p, cookie: new Uint8Array(19) }, H.length), BadArgumentError);
  assert.throws(() => decodeIntroducePlaintext(P.subarray(0, 60)), DecodeError);
});

test('refusals: an altered AUTH or Y, a wrong length, low-order points; the service refuses a wrong subcredential or altered MAC', () => {
  const { state, encrypted } = hsNtorClientIntroduce(intro, H, P, fixed(x));
  for (const at of [0, 31, 32, 63]) {
    const bad = Uint8Array.from(REPLY);
    bad[at]! ^= 1;
    assert.throws(() => hsNtorClientFinish(state, bad, 'rend circuit 7'), (e: unknown) => e instanceof HandshakeError && /rend circuit 7/.test(e.message));
  }
  assert.throws(() => hsNtorClientFinish(state, REPLY.subarray(0, 63), 'c'), HandshakeError);
  assert.throws(() => hsNtorClientFinish(state, new Uint8Array([...REPLY, 0]), 'c'), HandshakeError);
  assert.throws(() => hsNtorClientFinish(state, new Uint8Array(64), 'c'), HandshakeError, 'Y = 0 is of low order');
  assert.throws(() => hsNtorClientIntroduce({ ...intro, encKey: new Uint8Array(32) }, H, P, fixed(x)), HandshakeError, 'B = 0 is of low order');
  assert.throws(() => hsNtorClientIntroduce({ ...intro, authKey: new Uint8Array(31) }, H, P, fixed(x)), BadArgumentError);
  assert.throws(() => hsNtorService({ ...service, subcredential: new Uint8Array(32) }, H, encrypted, fixed(y)), HandshakeError);
  const altered = Uint8Array.from(encrypted);
  altered[40]! ^= 0x80;
  assert.throws(() => hsNtorService(service, H, altered, fixed(y)), HandshakeError);
  const otherHeader = Uint8Array.from(H);
  otherHeader[0] = 1;
  assert.throws(() => hsNtorService(service, otherHeader, encrypted, fixed(y)), HandshakeError, 'the MAC covers the header from byte 0 (LEGACY_KEY_ID)');
  assert.throws(() => hsNtorService(service, H, encrypted.subarray(0, 63), fixed(y)), HandshakeError);
});

test('property: client ↔ service round trips with random keys, and arbitrary replies give only HandshakeErrors', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ maxLength: 300 }), (authKey, plaintext) => {
      const pair = x25519KeyPair(randomBytes(32));
      const subcredential = randomBytes(32);
      const header = encodeIntroduce1Header(authKey);
      const c = hsNtorClientIntroduce({ authKey, encKey: pair.public, subcredential }, header, plaintext, randomBytes);
      const s = hsNtorService({ authKey, encKeyPair: pair, subcredential }, header, c.encrypted, randomBytes);
      assert.deepEqual(s.plaintext, plaintext);
      const k = hsNtorClientFinish(c.state, s.handshakeInfo, 'c');
      assert.deepEqual(k.forwardKey, s.keys.backwardKey);
      assert.deepEqual(k.backwardDigest, s.keys.forwardDigest);
    }),
    { numRuns: 30 },
  );
  const { state } = hsNtorClientIntroduce(intro, H, P, fixed(x));
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 80 }), (reply) => {
      assert.throws(() => hsNtorClientFinish(state, reply, 'c'), HandshakeError);
    }),
  );
});
