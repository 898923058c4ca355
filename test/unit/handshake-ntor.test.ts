/**
 * The ntor (tor-spec 5.1.4) and ntor v3 (proposal 332) circuit handshakes of
 * crypto/handshake: byte-exact against the published vectors (prop 332 §X.2 — also C tor's
 * and Arti's —, Arti's ntor `testvec`, tor's ntor HKDF vectors) and against vectors made
 * with C tor's reference scripts ntor_ref.py / ntor_v3_ref.py (test/vectors/ntor/,
 * PROVENANCE.md); client ↔ relay round trips with random keys (fast-check); the ways a
 * handshake must fail (a flipped AUTH bit, the wrong onion key, low-order points, wrong
 * lengths), each a HandshakeError or BadArgumentError naming where; arbitrary replies and
 * onion skins give only typed errors; the ntor v3 extension lists encode, decode and
 * reject malformed input.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { BadArgumentError, DecodeError, HandshakeError, IncompleteError, OrportError } from '../../src/errors.js';
import { KDF, FIXED_PAYLOAD_LEN } from '../../src/codec/datatype.js';
import { Tor1Layer, type Tor1Keys } from '../../src/crypto/relaycrypto.js';
import {
  NTOR_AUTH_LEN,
  NTOR_HTYPE,
  NTOR_ONIONSKIN_LEN,
  NTOR_REPLY_LEN,
  TOR1_KEY_MATERIAL_LEN,
  ntorClientFinish,
  ntorClientStart,
  ntorKdf,
  ntorServer,
  tor1Keys,
  x25519KeyPair,
  x25519PublicKey,
  type NtorServerKeys,
} from '../../src/crypto/handshake/ntor.js';
import {
  NTOR_V3_CIRCUIT_VERIFICATION,
  NTOR_V3_HTYPE,
  NTOR_V3_ONIONSKIN_OVERHEAD,
  NTOR_V3_REPLY_OVERHEAD,
  NtorV3ExtType,
  ccRequestExtension,
  ccResponseExtension,
  decodeNtorV3Extensions,
  decodeNtorV3Request,
  decodeNtorV3Response,
  encodeNtorV3Extensions,
  encodeNtorV3Request,
  encodeNtorV3Response,
  ntorV3ClientFinish,
  ntorV3ClientStart,
  ntorV3Server,
  parseSubprotocolRequest,
  subprotocolRequestExtension,
  type NtorV3Extension,
  type NtorV3ServerKeys,
} from '../../src/crypto/handshake/ntorv3.js';
import { RUNS, fuzz, mutated, typedOrNothing } from '../support/fuzz.js';
import { h, hex, zeros } from '../support/bytes.js';

const vectors = (name: string): unknown => JSON.parse(readFileSync(new URL(`../vectors/ntor/${name}`, import.meta.url), 'utf8'));

/** A random source that hands out the given byte strings in order (and fails past them). */
function fixed(...values: Uint8Array[]): (n: number) => Uint8Array {
  const queue = [...values];
  return (n) => {
    const next = queue.shift();
    assert.ok(next, 'the handshake drew more random bytes than the vector fixes');
    assert.equal(next.length, n, 'the handshake drew another length than the vector fixes');
    return next;
  };
}

/** The tor1 keys in key-material order: Df | Db | Kf | Kb | KH. */
function material(keys: KDF): string {
  return hex(keys.forwardDigest) + hex(keys.backwardDigest) + hex(keys.forwardKey) + hex(keys.backwardKey) + hex(keys.keyHash);
}

/** Expects `fn` to throw `type` with a message matching each of `patterns`. */
function throwsTyped(fn: () => unknown, type: abstract new (...args: never[]) => OrportError, ...patterns: RegExp[]): OrportError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof type, `expected a ${type.name}, got ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`);
    for (const p of patterns) assert.match(err.message, p);
    return err;
  }
  assert.fail(`expected a ${type.name}, but nothing was thrown`);
}

const secretArb = fc.uint8Array({ minLength: 32, maxLength: 32 });
const LOW_ORDER = (vectors('low-order-points.json') as { name: string; u: string }[]).map((p) => ({ name: p.name, u: h(p.u) }));

// ---------------------------------------------------------------------------------
// ntor: vectors

interface ArtiNtor {
  b_sk: string;
  b_pk: string;
  x_sk: string;
  x_pk: string;
  y_sk: string;
  y_pk: string;
  id: string;
  client_handshake: string;
  server_handshake: string;
  keys: string;
}

test("ntor: Arti's test vector (onion skin, reply, the 72 bytes Df Db Kf Kb), both sides", () => {
  const v = vectors('arti-ntor.json') as ArtiNtor;
  assert.equal(hex(x25519PublicKey(h(v.b_sk))), v.b_pk);
  const relay = { rsaId: h(v.id), ntorKey: h(v.b_pk) };
  const { state, message } = ntorClientStart(relay, fixed(h(v.x_sk)));
  assert.equal(message.length, NTOR_ONIONSKIN_LEN);
  assert.equal(hex(message), v.client_handshake);
  assert.equal(hex(state.X), v.x_pk);

  const server: NtorServerKeys = { rsaId: h(v.id), onionKeys: [x25519KeyPair(h(v.b_sk))] };
  const { reply, keys: serverKeys } = ntorServer(server, message, fixed(h(v.y_sk)), 'the vector');
  assert.equal(reply.length, NTOR_REPLY_LEN);
  assert.equal(hex(reply), v.server_handshake);

  const keys = ntorClientFinish(state, reply, 'the vector');
  assert.equal(material(keys).slice(0, 144), v.keys);
  assert.equal(material(serverKeys), material(keys));
});

interface RefNtor {
  name: string;
  b: string;
  B: string;
  x: string;
  X: string;
  y: string;
  Y: string;
  id: string;
  client_handshake: string;
  server_handshake: string;
  keys: string;
}

for (const v of vectors('tor-ref-ntor.json') as RefNtor[]) {
  test(`ntor: tor's ntor_ref.py vector "${v.name}": all 92 bytes, KH included, both sides`, () => {
    const { state, message } = ntorClientStart({ rsaId: h(v.id), ntorKey: h(v.B) }, fixed(h(v.x)));
    assert.equal(hex(message), v.client_handshake);
    const { reply, keys: serverKeys } = ntorServer({ rsaId: h(v.id), onionKeys: [x25519KeyPair(h(v.b))] }, message, fixed(h(v.y)), 'the vector');
    assert.equal(hex(reply), v.server_handshake);
    const keys = ntorClientFinish(state, reply, 'the vector');
    assert.equal(material(keys), v.keys);
    assert.equal(material(serverKeys), v.keys);
  });
}

test("ntor: tor's KDF-RFC5869 vectors (test_crypto.c, from ntor_ref.py): 100 bytes each", () => {
  const vs = vectors('tor-hkdf-ntor.json') as { input: string; output: string }[];
  assert.equal(vs.length, 2);
  for (const v of vs) assert.equal(hex(ntorKdf(Buffer.from(v.input, 'latin1'), 100)), v.output, v.input);
  assert.equal(ntorKdf(new Uint8Array(0), 0).length, 0);
  throwsTyped(() => ntorKdf(new Uint8Array(1), 255 * 32 + 1), BadArgumentError, /0\.\.8160/);
});

test("ntor: the keys are Tor1Layer's Tor1Keys (a KDF, as CREATE_FAST's), and the two ends' layers talk", () => {
  const b = x25519KeyPair(new Uint8Array(32).fill(7));
  const rsaId = new Uint8Array(20).fill(9);
  const { state, message } = ntorClientStart({ rsaId, ntorKey: b.public }, fixed(new Uint8Array(32).fill(1)));
  const server = ntorServer({ rsaId, onionKeys: [b] }, message, fixed(new Uint8Array(32).fill(2)), 'test');
  const keys = ntorClientFinish(state, server.reply, 'test');
  assert.ok(keys instanceof KDF);
  const asTor1: Tor1Keys = keys;
  assert.equal(asTor1.forwardDigest.length, 20);
  assert.equal(asTor1.backwardDigest.length, 20);
  assert.equal(asTor1.forwardKey.length, 16);
  assert.equal(asTor1.backwardKey.length, 16);
  assert.equal(keys.keyHash.length, 20);
  const client = new Tor1Layer(keys);
  const relay = new Tor1Layer(server.keys, 'relay');
  const payload = new Uint8Array(FIXED_PAYLOAD_LEN).fill(0x5a);
  payload[1] = payload[2] = 0;
  const sent = payload.slice();
  client.originate(sent);
  client.encrypt(sent);
  const got = relay.decrypt(sent);
  assert.ok(relay.recognize(got), 'the relay recognizes the client cell');
  assert.equal(NTOR_HTYPE, 2);
});

test('tor1Keys splits Df | Db | Kf | Kb | KH and refuses short material', () => {
  const m = Uint8Array.from({ length: TOR1_KEY_MATERIAL_LEN }, (_, i) => i);
  const k = tor1Keys(m);
  assert.deepEqual([...k.forwardDigest], [...m.subarray(0, 20)]);
  assert.deepEqual([...k.backwardDigest], [...m.subarray(20, 40)]);
  assert.deepEqual([...k.forwardKey], [...m.subarray(40, 56)]);
  assert.deepEqual([...k.backwardKey], [...m.subarray(56, 72)]);
  assert.deepEqual([...k.keyHash], [...m.subarray(72, 92)]);
  throwsTyped(() => tor1Keys(m.subarray(0, 91)), BadArgumentError, /at least 92 bytes, got 91/);
});

// ---------------------------------------------------------------------------------
// ntor: round trips and failures

const ntorSetupArb = fc.record({ b: secretArb, x: secretArb, y: secretArb, id: fc.uint8Array({ minLength: 20, maxLength: 20 }) });

function ntorSetup(s: { b: Uint8Array; x: Uint8Array; y: Uint8Array; id: Uint8Array }) {
  const pair = x25519KeyPair(s.b);
  const { state, message } = ntorClientStart({ rsaId: s.id, ntorKey: pair.public }, fixed(s.x));
  const server = ntorServer({ rsaId: s.id, onionKeys: [x25519KeyPair(new Uint8Array(32).fill(0xaa)), pair] }, message, fixed(s.y), 'test');
  return { pair, state, message, server };
}

test('ntor: client and relay with random keys agree on every key (property)', () => {
  fuzz(import.meta.url, 'ntor round trip', ntorSetupArb, (s) => {
    const { state, server } = ntorSetup(s);
    const keys = ntorClientFinish(state, server.reply, 'test');
    assert.equal(material(keys), material(server.keys));
  }, 0.5);
});

test('ntor: a flipped bit in AUTH, or in Y, is a HandshakeError naming where', () => {
  fuzz(import.meta.url, 'ntor flipped reply bit', fc.record({ s: ntorSetupArb, bit: fc.nat({ max: NTOR_REPLY_LEN * 8 - 1 }) }), ({ s, bit }) => {
    const { state, server } = ntorSetup(s);
    const reply = server.reply.slice();
    reply[bit >> 3]! ^= 1 << (bit & 7);
    const err = throwsTyped(() => ntorClientFinish(state, reply, 'circuit 7 hop #2'), HandshakeError, /circuit 7 hop #2/);
    assert.equal(err.code, 'E_HANDSHAKE');
    // The high bit of Y is ignored by X25519: then only AUTH can tell (and does, since Y is in the transcript).
    if (bit >= 32 * 8) assert.match(err.message, /AUTH does not match/);
  }, 0.5);
});

test("ntor: the wrong onion key — the relay refuses a KEYID it doesn't hold; a reply made with another key fails AUTH", () => {
  const real = x25519KeyPair(new Uint8Array(32).fill(3));
  const wrong = x25519KeyPair(new Uint8Array(32).fill(4));
  const rsaId = new Uint8Array(20).fill(1);
  const { state, message } = ntorClientStart({ rsaId, ntorKey: wrong.public }, fixed(new Uint8Array(32).fill(5)));
  throwsTyped(() => ntorServer({ rsaId, onionKeys: [real] }, message, fixed(new Uint8Array(32).fill(6)), 'relay R'), HandshakeError, /KEYID .* is none of this relay's 1 ntor onion key/, /relay R/);
  // A relay that answers with its real secret under the KEYID we named (what a client sees when its key is stale).
  const { reply } = ntorServer({ rsaId, onionKeys: [{ secret: real.secret, public: wrong.public }] }, message, fixed(new Uint8Array(32).fill(6)), 'relay R');
  throwsTyped(() => ntorClientFinish(state, reply, 'circuit 1 hop #3'), HandshakeError, /AUTH does not match/, /circuit 1 hop #3/, /onion key/);
  // Another relay's identity.
  throwsTyped(() => ntorServer({ rsaId: new Uint8Array(20).fill(2), onionKeys: [wrong] }, message, fixed(new Uint8Array(32).fill(6)), 'relay R'), HandshakeError, /NODEID .* is not this relay's RSA identity/);
});

test('ntor: low-order points (Y all zero and the others) are HandshakeErrors: as Y, as B, as X', () => {
  const pair = x25519KeyPair(new Uint8Array(32).fill(3));
  const rsaId = new Uint8Array(20).fill(1);
  const { state } = ntorClientStart({ rsaId, ntorKey: pair.public }, fixed(new Uint8Array(32).fill(5)));
  assert.equal(LOW_ORDER.length, 14);
  for (const { name, u } of LOW_ORDER) {
    const reply = new Uint8Array(NTOR_REPLY_LEN);
    reply.set(u);
    reply.fill(0x11, 32);
    throwsTyped(() => ntorClientFinish(state, reply, 'circuit 9'), HandshakeError, /EXP\(Y,x\).* is all zero/, /circuit 9/);
    throwsTyped(() => ntorClientStart({ rsaId, ntorKey: u }, fixed(new Uint8Array(32).fill(5))), HandshakeError, /EXP\(B,x\).* is all zero/);
    const skin = new Uint8Array(NTOR_ONIONSKIN_LEN);
    skin.set(rsaId);
    skin.set(pair.public, 20);
    skin.set(u, 52);
    throwsTyped(() => ntorServer({ rsaId, onionKeys: [pair] }, skin, fixed(new Uint8Array(32).fill(6)), 'relay R'), HandshakeError, /all zero/, new RegExp(`relay R`));
    void name;
  }
  // The all-zero Y of the issue's fault row, with a zero AUTH too.
  throwsTyped(() => ntorClientFinish(state, zeros(64), 'hop #1'), HandshakeError, /all zero/);
});

test('ntor: wrong lengths say expected vs got and where (HandshakeError from the peer, BadArgumentError from the caller)', () => {
  const pair = x25519KeyPair(new Uint8Array(32).fill(3));
  const rsaId = new Uint8Array(20).fill(1);
  const { state, message } = ntorClientStart({ rsaId, ntorKey: pair.public }, fixed(new Uint8Array(32).fill(5)));
  for (const n of [0, 32, 63, 65, 100]) throwsTyped(() => ntorClientFinish(state, new Uint8Array(n), 'circuit 3 hop #2'), HandshakeError, new RegExp(`expected 64 bytes .* got ${n}$`), /circuit 3 hop #2/);
  for (const n of [0, 83, 85]) throwsTyped(() => ntorServer({ rsaId, onionKeys: [pair] }, new Uint8Array(n), fixed(), 'relay R'), HandshakeError, new RegExp(`expected 84 bytes .* got ${n}$`), /relay R/);
  assert.equal(message.length, 84);
  throwsTyped(() => ntorClientStart({ rsaId: new Uint8Array(19), ntorKey: pair.public }, fixed()), BadArgumentError, /RSA identity digest must be 20 bytes, got 19/);
  throwsTyped(() => ntorClientStart({ rsaId, ntorKey: new Uint8Array(31) }, fixed()), BadArgumentError, /onion key B must be 32 bytes, got 31/);
  throwsTyped(() => ntorClientStart({ rsaId, ntorKey: pair.public }, () => new Uint8Array(31)), BadArgumentError, /secret x from the random source must be 32 bytes, got 31/);
  throwsTyped(() => x25519PublicKey(new Uint8Array(33)), BadArgumentError, /32 bytes, got 33/);
});

test('ntor: arbitrary and mutated replies and onion skins give keys or our typed errors, never anything else', () => {
  const pair = x25519KeyPair(new Uint8Array(32).fill(3));
  const rsaId = new Uint8Array(20).fill(1);
  const { state, message } = ntorClientStart({ rsaId, ntorKey: pair.public }, fixed(new Uint8Array(32).fill(5)));
  const { reply } = ntorServer({ rsaId, onionKeys: [pair] }, message, fixed(new Uint8Array(32).fill(6)), 'relay');
  const replies = fc.oneof(fc.uint8Array({ maxLength: 100 }), fc.uint8Array({ minLength: 64, maxLength: 64 }), mutated(reply));
  fuzz(import.meta.url, 'ntor client: arbitrary replies', replies, (r) => {
    const out = typedOrNothing(() => ntorClientFinish(state, r, 'fuzz'));
    if (!(out instanceof OrportError)) assert.equal(hex(r), hex(reply), 'only the genuine reply authenticates');
  });
  const skins = fc.oneof(fc.uint8Array({ maxLength: 120 }), mutated(message));
  fuzz(import.meta.url, 'ntor server: arbitrary onion skins', skins, (m) => {
    typedOrNothing(() => ntorServer({ rsaId, onionKeys: [pair] }, m, fixed(new Uint8Array(32).fill(6)), 'fuzz'));
  });
});

// ---------------------------------------------------------------------------------
// ntor v3: vectors

interface Prop332 {
  b: string;
  B: string;
  ID: string;
  x: string;
  X: string;
  CM: string;
  VER: string;
  y: string;
  Y: string;
  SM: string;
  msg_mac: string;
  AUTH: string;
  client_handshake: string;
  server_handshake: string;
  KEYSTREAM: string;
}

test('ntor v3: proposal 332 §X.2 (also tor\'s and Arti\'s): onion skin, reply, messages, 256 bytes of keystream, both sides', () => {
  const v = vectors('prop332-x2.json') as Prop332;
  assert.equal(hex(x25519PublicKey(h(v.b))), v.B);
  assert.equal(hex(x25519PublicKey(h(v.y))), v.Y);
  const { state, message } = ntorV3ClientStart({ ed25519Id: h(v.ID), ntorKey: h(v.B) }, h(v.CM), fixed(h(v.x)), h(v.VER));
  assert.equal(hex(state.X), v.X);
  // ENC_K1 and MAC_K1 are covered by ENC(CM) and msg_mac inside the onion skin.
  assert.equal(hex(state.msgMac), v.msg_mac);
  assert.equal(hex(message), v.client_handshake);
  assert.equal(message.length, NTOR_V3_ONIONSKIN_OVERHEAD + h(v.CM).length);

  let seen: Uint8Array | undefined;
  const server = ntorV3Server(
    { ed25519Id: h(v.ID), onionKeys: [x25519KeyPair(h(v.b))] },
    message,
    (cm) => {
      seen = cm;
      return h(v.SM);
    },
    fixed(h(v.y)),
    'the vector',
    h(v.VER),
  );
  assert.equal(hex(seen!), v.CM);
  assert.equal(hex(server.clientMessage), v.CM);
  // key_seed and verify are covered by AUTH; ENC_KEY by ENC(SM).
  assert.equal(hex(server.reply.subarray(32, 64)), v.AUTH);
  assert.equal(hex(server.reply), v.server_handshake);

  const done = ntorV3ClientFinish(state, server.reply, 'the vector');
  assert.equal(hex(done.serverMessage), v.SM);
  assert.equal(hex(done.keyMaterial(256)), v.KEYSTREAM);
  assert.equal(hex(server.keyMaterial(256)), v.KEYSTREAM);
  assert.equal(material(done.keys), v.KEYSTREAM.slice(0, 2 * TOR1_KEY_MATERIAL_LEN));
  assert.equal(material(server.keys), material(done.keys));
  assert.equal(hex(done.keyMaterial(180)), v.KEYSTREAM.slice(0, 360), "CGO's 180 bytes are a prefix too");
  assert.equal(done.keyMaterial(0).length, 0);
  throwsTyped(() => done.keyMaterial(-1), BadArgumentError, /got -1/);
});

interface RefNtorV3 {
  name: string;
  b: string;
  B: string;
  x: string;
  X: string;
  y: string;
  Y: string;
  id: string;
  client_message: string;
  server_message: string;
  verification: string;
  client_handshake: string;
  server_handshake: string;
  keystream: string;
}

for (const v of vectors('tor-ref-ntorv3.json') as RefNtorV3[]) {
  test(`ntor v3: tor's ntor_v3_ref.py vector "${v.name}": both sides byte-exact`, () => {
    const ver = Buffer.from(v.verification, 'hex').toString('latin1');
    const circuitExtend = ver === NTOR_V3_CIRCUIT_VERIFICATION;
    // The default verification is tor's "circuit extend".
    const { state, message } = circuitExtend
      ? ntorV3ClientStart({ ed25519Id: h(v.id), ntorKey: h(v.B) }, h(v.client_message), fixed(h(v.x)))
      : ntorV3ClientStart({ ed25519Id: h(v.id), ntorKey: h(v.B) }, h(v.client_message), fixed(h(v.x)), ver);
    assert.equal(hex(message), v.client_handshake);
    const keys: NtorV3ServerKeys = { ed25519Id: h(v.id), onionKeys: [x25519KeyPair(h(v.b))] };
    const respond = () => h(v.server_message);
    const server = circuitExtend ? ntorV3Server(keys, message, respond, fixed(h(v.y)), 'vec') : ntorV3Server(keys, message, respond, fixed(h(v.y)), 'vec', ver);
    assert.equal(hex(server.clientMessage), v.client_message);
    assert.equal(hex(server.reply), v.server_handshake);
    const done = ntorV3ClientFinish(state, server.reply, 'vec');
    assert.equal(hex(done.serverMessage), v.server_message);
    assert.equal(hex(done.keyMaterial(256)), v.keystream);
    assert.equal(material(done.keys), v.keystream.slice(0, 184));
    if (circuitExtend) {
      // Circuit-extension messages are extension lists; these are what our encoders make.
      const request = decodeNtorV3Request(server.clientMessage);
      const response = decodeNtorV3Response(done.serverMessage);
      assert.equal(hex(encodeNtorV3Request({ congestionControl: request.congestionControl, subprotocols: request.subprotocols ?? [] })), v.client_message);
      assert.equal(hex(encodeNtorV3Response(response.sendmeInc === undefined ? {} : { sendmeInc: response.sendmeInc })), v.server_message);
    }
  });
}

// ---------------------------------------------------------------------------------
// ntor v3: round trips and failures

const v3SetupArb = fc.record({
  b: secretArb,
  x: secretArb,
  y: secretArb,
  id: secretArb,
  cm: fc.uint8Array({ maxLength: 200 }),
  sm: fc.uint8Array({ maxLength: 200 }),
  ver: fc.oneof(fc.constant<string | Uint8Array>(NTOR_V3_CIRCUIT_VERIFICATION), fc.uint8Array({ maxLength: 40 }), fc.string({ maxLength: 20 })),
});

type V3Setup = { b: Uint8Array; x: Uint8Array; y: Uint8Array; id: Uint8Array; cm: Uint8Array; sm: Uint8Array; ver: string | Uint8Array };

function v3Setup(s: V3Setup) {
  const pair = x25519KeyPair(s.b);
  const { state, message } = ntorV3ClientStart({ ed25519Id: s.id, ntorKey: pair.public }, s.cm, fixed(s.x), s.ver);
  const relay: NtorV3ServerKeys = { ed25519Id: s.id, onionKeys: [pair, x25519KeyPair(new Uint8Array(32).fill(0xaa))] };
  const server = ntorV3Server(relay, message, () => s.sm, fixed(s.y), 'test', s.ver);
  return { pair, relay, state, message, server };
}

test('ntor v3: client and relay with random keys, messages and verification strings agree (property)', () => {
  fuzz(import.meta.url, 'ntor v3 round trip', v3SetupArb, (s) => {
    const { state, server } = v3Setup(s);
    assert.equal(hex(server.clientMessage), hex(s.cm));
    const done = ntorV3ClientFinish(state, server.reply, 'test');
    assert.equal(hex(done.serverMessage), hex(s.sm));
    assert.equal(material(done.keys), material(server.keys));
    assert.equal(hex(done.keyMaterial(180)), hex(server.keyMaterial(180)));
    assert.equal(server.reply.length, NTOR_V3_REPLY_OVERHEAD + s.sm.length);
  }, 0.5);
});

test('ntor v3: a flipped bit anywhere in Y, AUTH or ENC(SM) is a HandshakeError naming where', () => {
  const arb = fc.record({ s: v3SetupArb, at: fc.nat(), bit: fc.nat({ max: 7 }) });
  fuzz(import.meta.url, 'ntor v3 flipped reply bit', arb, ({ s, at, bit }) => {
    const { state, server } = v3Setup(s);
    const reply = server.reply.slice();
    reply[at % reply.length]! ^= 1 << bit;
    const err = throwsTyped(() => ntorV3ClientFinish(state, reply, 'circuit 5 hop #3'), HandshakeError, /circuit 5 hop #3/);
    if (at % reply.length >= 32) assert.match(err.message, /AUTH does not match/);
  }, 0.5);
});

test('ntor v3: a flipped bit in the onion skin, another verification string, another onion key: the relay refuses', () => {
  fuzz(import.meta.url, 'ntor v3 flipped onion-skin bit', fc.record({ s: v3SetupArb, at: fc.nat(), bit: fc.nat({ max: 7 }) }), ({ s, at, bit }) => {
    const { relay, message } = v3Setup(s);
    const skin = message.slice();
    skin[at % skin.length]! ^= 1 << bit;
    throwsTyped(() => ntorV3Server(relay, skin, () => s.sm, fixed(s.y), 'relay R', s.ver), HandshakeError, /relay R/);
  }, 0.25);
  const s: V3Setup = { b: new Uint8Array(32).fill(1), x: new Uint8Array(32).fill(2), y: new Uint8Array(32).fill(3), id: new Uint8Array(32).fill(4), cm: encodeNtorV3Request(), sm: encodeNtorV3Response(), ver: NTOR_V3_CIRCUIT_VERIFICATION };
  const { relay, message, pair } = v3Setup(s);
  throwsTyped(() => ntorV3Server(relay, message, () => s.sm, fixed(s.y), 'relay R', 'xyzzy'), HandshakeError, /MAC over the client's message does not verify/);
  throwsTyped(() => ntorV3Server({ ...relay, onionKeys: [x25519KeyPair(new Uint8Array(32).fill(9))] }, message, () => s.sm, fixed(s.y), 'relay R'), HandshakeError, /KEYID .* is none of this relay's/);
  throwsTyped(() => ntorV3Server({ ...relay, ed25519Id: new Uint8Array(32) }, message, () => s.sm, fixed(s.y), 'relay R'), HandshakeError, /NODEID .* is not this relay's Ed25519 identity/);
  // The client's view of a wrong onion key: the relay computed with its b, the client with
  // another B (same x, same transcript otherwise): AUTH does not match.
  const wrong = x25519KeyPair(new Uint8Array(32).fill(8));
  const good = v3Setup(s);
  const { state: wrongState } = ntorV3ClientStart({ ed25519Id: s.id, ntorKey: wrong.public }, s.cm, fixed(s.x));
  throwsTyped(() => ntorV3ClientFinish({ ...good.state, bx: wrongState.bx }, good.server.reply, 'circuit 1 hop #2'), HandshakeError, /AUTH does not match/, /circuit 1 hop #2/);
  void pair;
});

test('ntor v3: low-order points (an all-zero Y and the others) are HandshakeErrors: as Y, as B, as X', () => {
  const pair = x25519KeyPair(new Uint8Array(32).fill(3));
  const id = new Uint8Array(32).fill(1);
  const { state } = ntorV3ClientStart({ ed25519Id: id, ntorKey: pair.public }, encodeNtorV3Request(), fixed(new Uint8Array(32).fill(5)));
  for (const { u } of LOW_ORDER) {
    const reply = new Uint8Array(NTOR_V3_REPLY_OVERHEAD + 1);
    reply.set(u);
    throwsTyped(() => ntorV3ClientFinish(state, reply, 'circuit 9'), HandshakeError, /EXP\(Y,x\).* is all zero/, /circuit 9/);
    throwsTyped(() => ntorV3ClientStart({ ed25519Id: id, ntorKey: u }, new Uint8Array(1), fixed(new Uint8Array(32).fill(5))), HandshakeError, /EXP\(B,x\).* is all zero/);
    const skin = new Uint8Array(NTOR_V3_ONIONSKIN_OVERHEAD + 1);
    skin.set(id);
    skin.set(pair.public, 32);
    skin.set(u, 64);
    throwsTyped(() => ntorV3Server({ ed25519Id: id, onionKeys: [pair] }, skin, () => new Uint8Array(1), fixed(new Uint8Array(32).fill(6)), 'relay R'), HandshakeError, /EXP\(X,b\).* is all zero/, /relay R/);
  }
});

test('ntor v3: wrong lengths say expected vs got and where', () => {
  const pair = x25519KeyPair(new Uint8Array(32).fill(3));
  const id = new Uint8Array(32).fill(1);
  const { state } = ntorV3ClientStart({ ed25519Id: id, ntorKey: pair.public }, encodeNtorV3Request(), fixed(new Uint8Array(32).fill(5)));
  for (const n of [0, 32, 63]) throwsTyped(() => ntorV3ClientFinish(state, new Uint8Array(n), 'circuit 3 hop #2'), HandshakeError, new RegExp(`expected at least 64 bytes .* got ${n}$`), /circuit 3 hop #2/);
  for (const n of [0, 127]) throwsTyped(() => ntorV3Server({ ed25519Id: id, onionKeys: [pair] }, new Uint8Array(n), () => new Uint8Array(0), fixed(), 'relay R'), HandshakeError, new RegExp(`expected at least 128 bytes .* got ${n}$`), /relay R/);
  throwsTyped(() => ntorV3ClientStart({ ed25519Id: new Uint8Array(20), ntorKey: pair.public }, new Uint8Array(0), fixed()), BadArgumentError, /Ed25519 identity must be 32 bytes, got 20/);
  throwsTyped(() => ntorV3ClientStart({ ed25519Id: id, ntorKey: new Uint8Array(33) }, new Uint8Array(0), fixed()), BadArgumentError, /onion key B must be 32 bytes, got 33/);
  throwsTyped(() => ntorV3ClientStart({ ed25519Id: id, ntorKey: pair.public }, new Uint8Array(0), () => new Uint8Array(0)), BadArgumentError, /32 bytes, got 0/);
  assert.equal(NTOR_V3_HTYPE, 3);
});

test('ntor v3: arbitrary and mutated replies and onion skins give results or our typed errors, never anything else', () => {
  const s: V3Setup = { b: new Uint8Array(32).fill(1), x: new Uint8Array(32).fill(2), y: new Uint8Array(32).fill(3), id: new Uint8Array(32).fill(4), cm: encodeNtorV3Request({ congestionControl: true }), sm: encodeNtorV3Response({ sendmeInc: 31 }), ver: NTOR_V3_CIRCUIT_VERIFICATION };
  const { relay, state, message, server } = v3Setup(s);
  fuzz(import.meta.url, 'ntor v3 client: arbitrary replies', fc.oneof(fc.uint8Array({ maxLength: 120 }), mutated(server.reply)), (r) => {
    const out = typedOrNothing(() => ntorV3ClientFinish(state, r, 'fuzz'));
    if (!(out instanceof OrportError)) {
      assert.equal(hex(r), hex(server.reply), 'only the genuine reply authenticates');
      typedOrNothing(() => decodeNtorV3Response(out.serverMessage));
    }
  });
  fuzz(import.meta.url, 'ntor v3 server: arbitrary onion skins', fc.oneof(fc.uint8Array({ maxLength: 200 }), mutated(message)), (m) => {
    typedOrNothing(() => ntorV3Server(relay, m, (cm) => (decodeNtorV3Request(cm), s.sm), fixed(s.y), 'fuzz'));
  });
});

// ---------------------------------------------------------------------------------
// ntor v3 extension lists

const extArb: fc.Arbitrary<NtorV3Extension> = fc.record({ type: fc.nat({ max: 255 }), data: fc.uint8Array({ maxLength: 255 }) });

test('extension lists: decode(encode(list)) is the list in ascending (stable) order of type (property)', () => {
  fuzz(import.meta.url, 'extension list round trip', fc.array(extArb, { maxLength: 12 }), (list) => {
    const bytes = encodeNtorV3Extensions(list);
    assert.equal(bytes[0], list.length);
    const sorted = list.map((e, i) => ({ e, i })).sort((a, b) => a.e.type - b.e.type || a.i - b.i).map(({ e }) => e);
    assert.deepEqual(decodeNtorV3Extensions(bytes).map((e) => [e.type, hex(e.data)]), sorted.map((e) => [e.type, hex(e.data)]));
  });
});

test('extension lists: the wire format is N | {type, len, data}… (tor\'s extension.trunnel)', () => {
  assert.equal(hex(encodeNtorV3Extensions([])), '00');
  assert.equal(hex(encodeNtorV3Request()), '00');
  assert.equal(hex(encodeNtorV3Response()), '00');
  assert.equal(hex(encodeNtorV3Request({ congestionControl: true })), '010100');
  assert.equal(hex(encodeNtorV3Response({ sendmeInc: 31 })), '0102011f');
  // tor 0.4.9's CGO request (with congestion control): Relay (2) = 6.
  assert.equal(hex(encodeNtorV3Request({ congestionControl: true, subprotocols: [{ protocol: 2, version: 6 }] })), '02010003020206');
  assert.equal(hex(encodeNtorV3Extensions([{ type: 9, data: h('aabb') }, ccRequestExtension()])), '020100' + '0902aabb');
  assert.deepEqual(ccResponseExtension(2), { type: NtorV3ExtType.CC_RESPONSE, data: Uint8Array.of(2) });
});

test('extension lists: malformed lists are IncompleteError / DecodeError, never anything else', () => {
  throwsTyped(() => decodeNtorV3Extensions(new Uint8Array(0)), IncompleteError, /empty/);
  throwsTyped(() => decodeNtorV3Extensions(h('01')), IncompleteError, /extension 1 of 1/);
  throwsTyped(() => decodeNtorV3Extensions(h('0101')), IncompleteError, /type and length/);
  throwsTyped(() => decodeNtorV3Extensions(h('010203aabb')), IncompleteError, /says 3 byte\(s\) of body, but only 2 remain/);
  throwsTyped(() => decodeNtorV3Extensions(h('0201000202')), IncompleteError, /extension 2 of 2/);
  const trailing = throwsTyped(() => decodeNtorV3Extensions(h('00ff'), 'EXTENDED2 message'), DecodeError, /EXTENDED2 message: 1 byte\(s\) after the 0 extension/);
  assert.equal((trailing as DecodeError).offset, 1);
  fuzz(import.meta.url, 'extension list: arbitrary bytes', fc.oneof(fc.uint8Array({ maxLength: 64 }), mutated(h('030100020120030400020206'))), (bytes) => {
    const out = typedOrNothing(() => decodeNtorV3Extensions(bytes));
    if (!(out instanceof OrportError)) {
      // A well-formed list whose types ascend re-encodes to the same bytes.
      if (out.every((e, i) => i === 0 || out[i - 1]!.type <= e.type)) assert.equal(hex(encodeNtorV3Extensions(out)), hex(bytes));
    }
    typedOrNothing(() => decodeNtorV3Request(bytes));
    typedOrNothing(() => decodeNtorV3Response(bytes));
  });
});

test('extension lists: encoding refuses what cannot be encoded (BadArgumentError)', () => {
  throwsTyped(() => encodeNtorV3Extensions(Array.from({ length: 256 }, () => ccRequestExtension())), BadArgumentError, /at most 255 extensions, got 256/);
  throwsTyped(() => encodeNtorV3Extensions([{ type: 256, data: new Uint8Array(0) }]), BadArgumentError, /type must be an integer in 0\.\.255, got 256/);
  throwsTyped(() => encodeNtorV3Extensions([{ type: -1, data: new Uint8Array(0) }]), BadArgumentError, /got -1/);
  throwsTyped(() => encodeNtorV3Extensions([{ type: 1, data: new Uint8Array(256) }]), BadArgumentError, /at most 255 bytes, got 256 bytes/);
  throwsTyped(() => ccResponseExtension(256), BadArgumentError, /sendme_inc/);
  throwsTyped(() => subprotocolRequestExtension([{ protocol: 2, version: 1.5 }]), BadArgumentError, /version/);
});

test('subprotocol requests: sorted and deduplicated on encoding; odd, unsorted or repeated pairs rejected on decoding', () => {
  const ext = subprotocolRequestExtension([{ protocol: 2, version: 6 }, { protocol: 0, version: 4 }, { protocol: 2, version: 6 }, { protocol: 2, version: 4 }]);
  assert.equal(ext.type, NtorV3ExtType.SUBPROTOCOL_REQUEST);
  assert.equal(hex(ext.data), '000402040206');
  assert.deepEqual(parseSubprotocolRequest(ext.data), [{ protocol: 0, version: 4 }, { protocol: 2, version: 4 }, { protocol: 2, version: 6 }]);
  assert.deepEqual(parseSubprotocolRequest(new Uint8Array(0)), []);
  throwsTyped(() => parseSubprotocolRequest(h('000402')), IncompleteError, /not a whole number/);
  throwsTyped(() => parseSubprotocolRequest(h('00040004')), DecodeError, /sorted and without duplicates/);
  throwsTyped(() => parseSubprotocolRequest(h('02040004')), DecodeError, /0=4 after 2=4/);
  fuzz(import.meta.url, 'subprotocol request round trip', fc.array(fc.record({ protocol: fc.nat({ max: 255 }), version: fc.nat({ max: 255 }) }), { maxLength: 20 }), (caps) => {
    const parsed = parseSubprotocolRequest(subprotocolRequestExtension(caps).data);
    const want = [...new Set(caps.map((c) => c.protocol * 256 + c.version))].sort((a, b) => a - b);
    assert.deepEqual(parsed.map((c) => c.protocol * 256 + c.version), want);
  });
});

test('CM / SM for circuit extension: the first occurrence of a type counts, unknown types are ignored, a CC response is one byte', () => {
  const cm = decodeNtorV3Request(encodeNtorV3Extensions([ccRequestExtension(), { type: 7, data: h('00') }, subprotocolRequestExtension([{ protocol: 2, version: 6 }]), { type: 3, data: h('01') }]));
  assert.equal(cm.congestionControl, true);
  assert.deepEqual(cm.subprotocols, [{ protocol: 2, version: 6 }]);
  assert.deepEqual(cm.ignored.map((e) => e.type), [3, 7]);
  assert.deepEqual(decodeNtorV3Request(h('00')), { congestionControl: false, subprotocols: undefined, ignored: [] });
  throwsTyped(() => decodeNtorV3Request(h('010303020400')), DecodeError, /subprotocol request: is 3 bytes/);
  const sm = decodeNtorV3Response(h('03' + '010102' + '02011f' + '020105'));
  assert.equal(sm.sendmeInc, 31);
  assert.deepEqual(sm.ignored.map((e) => [e.type, hex(e.data)]), [[1, '02'], [2, '05']]);
  assert.equal(decodeNtorV3Response(h('00')).sendmeInc, undefined);
  throwsTyped(() => decodeNtorV3Response(h('0102021f1f')), DecodeError, /must be 1 byte \(sendme_inc\), got 2/);
  throwsTyped(() => decodeNtorV3Response(h('010200')), DecodeError, /got 0/);
  throwsTyped(() => decodeNtorV3Response(new Uint8Array(0), 'EXTENDED2 from hop #2'), IncompleteError, /EXTENDED2 from hop #2/);
  assert.ok(RUNS > 0);
  assert.equal(NTOR_AUTH_LEN, 32);
});
