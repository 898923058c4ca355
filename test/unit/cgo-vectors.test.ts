/**
 * CGO relay crypto (crypto/cgo) and POLYVAL (crypto/polyval), byte-exact against every
 * vector of C tor's src/test/cgo_vectors.inc (test/vectors/cgo/tor-cgo-vectors.json, with
 * its provenance: ET, PRF, UIV+, UIV+ UPDATE, relay forward/backward, relay originate,
 * client originate, each checked as tor's test_crypto_cgo.c checks it: output bytes, then
 * keys, N and T′ afterwards) and RFC 8452 Appendix A's POLYVAL example; three-hop round
 * trips client ↔ relays in both directions (tor's cgo_fwd / cgo_rev, with the SENDME tags
 * both ends see); fast-check: one flipped bit anywhere in a cell (body or command) and no
 * hop recognizes it; POLYVAL's two table layouts and its byte/word paths agree with a
 * bit-by-bit reference.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { CgoCrypt, Et, Prf, Uiv, CGO_BODY_LEN, CGO_SEED_LEN, type CgoMode } from '../../src/crypto/cgo.js';
import { LITTLE_ENDIAN, Polyval, PolyvalKey, polyval } from '../../src/crypto/polyval.js';
import { BadArgumentError } from '../../src/errors.js';
import { RUNS } from '../support/fuzz.js';

interface State {
  keys: string;
  nonce: string;
  tprime: string;
}
const V = JSON.parse(readFileSync(new URL('../vectors/cgo/tor-cgo-vectors.json', import.meta.url), 'utf8')) as {
  et: { name: string; encrypt: boolean; keys: string; tweak: string; block: string; expect: string }[];
  prf: { name: string; keys: string; t: number; input: string; expect: string }[];
  uiv: { name: string; encrypt: boolean; keys: string; tweak: string; xL: string; xR: string; yL: string; yR: string }[];
  uivUpdate: { name: string; keys: string; nonce: string; newKeys: string; newNonce: string }[];
  relay: { name: string; inbound: boolean; stateIn: State; cmd: string; tag: string; msg: string; stateOut: State; tOut: string; msgOut: string }[];
  relayOriginate: { name: string; stateIn: State; cmd: string; msg: string; stateOut: State; tOut: string; msgOut: string }[];
  clientOriginate: { name: string; stateIn: State[]; targetHop: number; cmd: string; msg: string; stateOut: State[]; tOut: string; msgOut: string }[];
};

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'hex'));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** A CgoCrypt in `mode` with a vector's state (keys ‖ N as the seed, then T′). */
function crypt(mode: CgoMode, s: State): CgoCrypt {
  const c = new CgoCrypt(mode, hex(s.keys + s.nonce));
  c.tprime.set(hex(s.tprime));
  return c;
}

function assertState(c: CgoCrypt, s: State, where: string): void {
  assert.equal(toHex(c.uiv.keys), s.keys, `${where}: keys after`);
  assert.equal(toHex(c.nonce), s.nonce, `${where}: N after`);
  assert.equal(toHex(c.tprime), s.tprime, `${where}: T′ after`);
}

test('the vector file holds every array of tor\'s cgo_vectors.inc, with the counts tor has', () => {
  assert.deepEqual(
    [V.et.length, V.prf.length, V.uiv.length, V.uivUpdate.length, V.relay.length, V.relayOriginate.length, V.clientOriginate.length],
    [4, 10, 8, 5, 7, 4, 6],
  );
});

test('POLYVAL: RFC 8452 Appendix A (H, X_1, X_2), wide and narrow tables, bytes and words', () => {
  const H = hex('25629347589242761d31f826ba4b757b');
  const X = hex('4f4f95668c83dfb6401762bb2d01a262d1a24ddd2721d006bbe45f20d3c9f362');
  const want = 'f7a3b47b846119fae5b7866cf5e5b77e';
  assert.equal(toHex(polyval(H, X)), want);
  assert.equal(toHex(new Polyval(new PolyvalKey(H, 0, false)).update(X).digest()), want);
  if (LITTLE_ENDIAN) {
    const words = new Int32Array(X.slice().buffer);
    assert.equal(toHex(new Polyval(new PolyvalKey(H)).words(words, 0, 2).digest()), want);
  }
  // A wrong H gives another value (the test can fail).
  const H2 = H.slice();
  H2[0]! ^= 1;
  assert.notEqual(toHex(polyval(H2, X)), want);
});

/** dot(a, b) = a·b·x⁻¹²⁸, bit by bit over BigInt (the reference the tables must equal). */
function dotReference(a: bigint, b: bigint): bigint {
  const P = (1n << 128n) | (1n << 127n) | (1n << 126n) | (1n << 121n) | 1n;
  let r = 0n;
  for (let i = 0n; i < 128n; i++) if ((a >> i) & 1n) r ^= b << i;
  for (let i = 255n; i >= 128n; i--) if ((r >> i) & 1n) r ^= P << (i - 128n);
  // × x⁻¹²⁸: 128 times, add P if odd, then halve.
  for (let i = 0; i < 128; i++) r = (r & 1n ? r ^ P : r) >> 1n;
  return r;
}
const le = (b: Uint8Array): bigint => BigInt('0x' + (toHex(Uint8Array.from(b).reverse()) || '0'));
const fromLe = (v: bigint): string => toHex(Uint8Array.from(Buffer.from(v.toString(16).padStart(32, '0'), 'hex')).reverse());

test('POLYVAL: both table layouts and both input paths equal a bit-by-bit reference (fast-check)', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.uint8Array({ maxLength: 80 }), (h, data) => {
      const padded = new Uint8Array(Math.ceil(data.length / 16) * 16);
      padded.set(data);
      let s = 0n;
      for (let o = 0; o < padded.length; o += 16) s = dotReference(s ^ le(padded.subarray(o, o + 16)), le(h));
      const want = fromLe(s);
      assert.equal(toHex(new Polyval(new PolyvalKey(h)).update(data).digest()), want);
      assert.equal(toHex(new Polyval(new PolyvalKey(h, 0, false)).update(data).digest()), want);
      if (LITTLE_ENDIAN) assert.equal(toHex(new Polyval(new PolyvalKey(h)).words(new Int32Array(padded.slice().buffer), 0, padded.length / 16).digest()), want);
    }),
    { numRuns: RUNS },
  );
});

test('POLYVAL refuses short keys and out-of-range blocks with a BadArgumentError', () => {
  assert.throws(() => new PolyvalKey(new Uint8Array(15)), BadArgumentError);
  assert.throws(() => new Polyval(new PolyvalKey(new Uint8Array(16))).blocks(new Uint8Array(31), 0, 2), BadArgumentError);
  assert.throws(() => new Polyval(new PolyvalKey(new Uint8Array(16))).words(new Int32Array(7), 0, 2), BadArgumentError);
});

test('ET: every ET_TESTVECS vector (encrypt and decrypt)', () => {
  for (const v of V.et) {
    const tweak = hex(v.tweak);
    const block = hex(v.block);
    new Et(v.encrypt, hex(v.keys)).crypt(tweak, 0, tweak[16]!, tweak, 17, block, 0);
    assert.equal(toHex(block), v.expect, v.name);
  }
});

test('PRF: every PRF_TESTVECS vector (t = 0 XORed into zeros, t = 1 as 80 bytes)', () => {
  for (const v of V.prf) {
    const prf = new Prf(hex(v.keys));
    if (v.t === 0) {
      const out = new Uint8Array(493);
      prf.xorT0(hex(v.input), 0, out, 0);
      assert.equal(toHex(out), v.expect, v.name);
    } else {
      const out = new Uint8Array(80);
      prf.genT1(hex(v.input), 0, out, 0, 80);
      assert.equal(toHex(out), v.expect, v.name);
      // The same bytes when PRF1 comes from the keystream PRF0 asked for (the re-key path).
      const again = new Prf(hex(v.keys));
      again.xorT0(hex(v.input), 0, new Uint8Array(493), 0, true);
      const cached = new Uint8Array(80);
      again.genT1(hex(v.input), 0, cached, 0, 80);
      assert.equal(toHex(cached), v.expect, `${v.name} (kept from t = 0)`);
    }
  }
});

test('UIV+: every UIV_TESTVECS vector', () => {
  for (const v of V.uiv) {
    const tweak = hex(v.tweak);
    const body = hex(v.xL + v.xR);
    const uiv = new Uiv(v.encrypt, hex(v.keys));
    if (v.encrypt) uiv.encrypt(tweak, 0, tweak[16]!, body, 0);
    else uiv.decrypt(tweak, 0, tweak[16]!, body, 0);
    assert.equal(toHex(body.subarray(0, 16)), v.yL, `${v.name}: Y_L`);
    assert.equal(toHex(body.subarray(16)), v.yR, `${v.name}: Y_R`);
  }
});

test('UIV+ UPDATE: every UIV_UPDATE_TESTVECS vector, and the re-keyed UIV+ acts as one made from the new keys', () => {
  for (const v of V.uivUpdate) {
    const uiv = new Uiv(true, hex(v.keys));
    const nonce = hex(v.nonce);
    uiv.update(nonce);
    assert.equal(toHex(uiv.keys), v.newKeys, `${v.name}: keys`);
    assert.equal(toHex(nonce), v.newNonce, `${v.name}: N`);
    const cell = randomBytes(CGO_BODY_LEN);
    const cell2 = Uint8Array.from(cell);
    const tw = new Uint8Array(16).fill(42);
    uiv.encrypt(tw, 0, 42, cell, 0);
    new Uiv(true, hex(v.newKeys)).encrypt(tw, 0, 42, cell2, 0);
    assert.deepEqual(Uint8Array.from(cell), cell2, v.name);
  }
});

test('relay forward / backward: every CGO_RELAY_TESTVECS vector (none is recognized)', () => {
  for (const v of V.relay) {
    const c = crypt(v.inbound ? 'relay-backward' : 'relay-forward', v.stateIn);
    const body = hex(v.tag + v.msg);
    if (v.inbound) c.relayBackward(hex(v.cmd)[0]!, body);
    else assert.equal(c.relayForward(hex(v.cmd)[0]!, body), undefined, `${v.name}: not recognized`);
    assert.equal(toHex(body), v.tOut + v.msgOut, v.name);
    assertState(c, v.stateOut, v.name);
  }
});

test('relay originate: every CGO_RELAY_ORIGINATE_TESTVECS vector', () => {
  for (const v of V.relayOriginate) {
    const c = crypt('relay-backward', v.stateIn);
    const body = hex('00'.repeat(16) + v.msg);
    const tag = c.relayOriginate(hex(v.cmd)[0]!, body);
    assert.equal(toHex(body), v.tOut + v.msgOut, v.name);
    assert.equal(toHex(tag), v.tOut, `${v.name}: the tag is T′ = T`);
    assertState(c, v.stateOut, v.name);
  }
});

test('client originate: every CGO_CLIENT_ORIGINATE_TESTVECS vector (target hop, then the hops before it)', () => {
  for (const v of V.clientOriginate) {
    const hops = v.stateIn.map((s) => crypt('client-forward', s));
    const cmd = hex(v.cmd)[0]!;
    const body = hex('00'.repeat(16) + v.msg);
    const d = v.targetHop - 1;
    hops[d]!.clientOriginate(cmd, body);
    for (let i = d - 1; i >= 0; i--) hops[i]!.clientForward(cmd, body);
    assert.equal(toHex(body), v.tOut + v.msgOut, v.name);
    hops.forEach((h, i) => assertState(h, v.stateOut[i]!, `${v.name}, hop ${i + 1}`));
  }
});

/** Three hops of fresh random seeds: the client's and the relays' states for one direction. */
function threeHops(dir: 'forward' | 'backward'): { client: CgoCrypt[]; relays: CgoCrypt[] } {
  const seeds = [0, 1, 2].map(() => randomBytes(CGO_SEED_LEN));
  return {
    client: seeds.map((s) => new CgoCrypt(`client-${dir}`, s)),
    relays: seeds.map((s) => new CgoCrypt(`relay-${dir}`, s)),
  };
}

/** The client sends to hop `target` (0-based); returns the tag it remembered. */
function clientSends(client: CgoCrypt[], target: number, cmd: number, body: Uint8Array): Uint8Array {
  const tag = client[target]!.clientOriginate(cmd, body);
  for (let i = target - 1; i >= 0; i--) client[i]!.clientForward(cmd, body);
  return tag;
}

/** The relays take a cell from the client in order; returns [the hop that recognized it, its tag] or [-1]. */
function relaysReceive(relays: CgoCrypt[], cmd: number, body: Uint8Array): [number, Uint8Array?] {
  for (let i = 0; i < relays.length; i++) {
    const tag = relays[i]!.relayForward(cmd, body);
    if (tag) return [i, tag];
  }
  return [-1];
}

function relaySends(relays: CgoCrypt[], origin: number, cmd: number, body: Uint8Array): Uint8Array {
  const tag = relays[origin]!.relayOriginate(cmd, body);
  for (let i = origin - 1; i >= 0; i--) relays[i]!.relayBackward(cmd, body);
  return tag;
}

function clientReceives(client: CgoCrypt[], cmd: number, body: Uint8Array): [number, Uint8Array?] {
  for (let i = 0; i < client.length; i++) {
    const tag = client[i]!.clientBackward(cmd, body);
    if (tag) return [i, tag];
  }
  return [-1];
}

test('three hops, client → relays (tor\'s cgo_fwd): 200 cells to random hops, RELAY and RELAY_EARLY, recognized at the target with the tag the client remembered, message intact', () => {
  const { client, relays } = threeHops('forward');
  for (let trial = 0; trial < 200; trial++) {
    const target = trial % 3 === 0 ? 2 : randomBytes(1)[0]! % 3;
    const cmd = trial & 1 ? 9 : 3;
    const body = randomBytes(CGO_BODY_LEN);
    const message = Uint8Array.from(body.subarray(16));
    const tag = clientSends(client, target, cmd, body);
    assert.notDeepEqual(Uint8Array.from(body.subarray(16)), message, 'the cell is encrypted');
    const [hop, relayTag] = relaysReceive(relays, cmd, body);
    assert.equal(hop, target, `trial ${trial}`);
    assert.deepEqual(relayTag, Uint8Array.from(tag), 'the relay\'s tag (its incoming T) is the one the client remembered');
    assert.deepEqual(Uint8Array.from(body.subarray(16)), message);
  }
});

test('three hops, relays → client (tor\'s cgo_rev): 200 cells from random hops, recognized at the origin with the relay\'s tag, message intact', () => {
  const { client, relays } = threeHops('backward');
  for (let trial = 0; trial < 200; trial++) {
    const origin = randomBytes(1)[0]! % 3;
    const body = randomBytes(CGO_BODY_LEN);
    const message = Uint8Array.from(body.subarray(16));
    const tag = relaySends(relays, origin, 3, body);
    const [hop, clientTag] = clientReceives(client, 3, body);
    assert.equal(hop, origin, `trial ${trial}`);
    assert.deepEqual(clientTag, Uint8Array.from(tag), 'the client echoes the tag the relay expects');
    assert.deepEqual(Uint8Array.from(body.subarray(16)), message);
  }
});

test('one flipped bit anywhere in a cell (its 509 bytes or its command): no hop recognizes it, either direction (fast-check)', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: CGO_BODY_LEN * 8 + 7 }), fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 5 }), (bit, hop, warmup) => {
      // Forward: the client sends to `hop` after `warmup` good cells; one bit flips on the way.
      const f = threeHops('forward');
      for (let i = 0; i < warmup; i++) {
        const ok = randomBytes(CGO_BODY_LEN);
        clientSends(f.client, hop, 3, ok);
        assert.equal(relaysReceive(f.relays, 3, ok)[0], hop);
      }
      const body = randomBytes(CGO_BODY_LEN);
      clientSends(f.client, hop, 3, body);
      let cmd = 3;
      if (bit < CGO_BODY_LEN * 8) body[bit >> 3]! ^= 1 << (bit & 7);
      else cmd ^= 1 << (bit & 7);
      assert.equal(relaysReceive(f.relays, cmd, body)[0], -1, `forward, bit ${bit}, hop ${hop + 1}`);

      // Backward: `hop` sends to the client.
      const b = threeHops('backward');
      for (let i = 0; i < warmup; i++) {
        const ok = randomBytes(CGO_BODY_LEN);
        relaySends(b.relays, hop, 3, ok);
        assert.equal(clientReceives(b.client, 3, ok)[0], hop);
      }
      const back = randomBytes(CGO_BODY_LEN);
      relaySends(b.relays, hop, 3, back);
      let bcmd = 3;
      if (bit < CGO_BODY_LEN * 8) back[bit >> 3]! ^= 1 << (bit & 7);
      else bcmd ^= 1 << (bit & 7);
      assert.equal(clientReceives(b.client, bcmd, back)[0], -1, `backward, bit ${bit}, hop ${hop + 1}`);
    }),
    { numRuns: RUNS },
  );
});

test('a replayed cell is not recognized: the hop has re-keyed and moved N on', () => {
  const { client, relays } = threeHops('backward');
  const body = randomBytes(CGO_BODY_LEN);
  relaySends(relays, 2, 3, body);
  const copy = Uint8Array.from(body);
  assert.equal(clientReceives(client, 3, body)[0], 2);
  assert.equal(clientReceives(client, 3, copy)[0], -1);
});

test('CgoCrypt refuses the other end\'s operations and short bodies with a BadArgumentError', () => {
  const seed = randomBytes(CGO_SEED_LEN);
  assert.throws(() => new CgoCrypt('client-forward', seed).relayForward(3, new Uint8Array(CGO_BODY_LEN)), BadArgumentError);
  assert.throws(() => new CgoCrypt('relay-backward', seed).clientBackward(3, new Uint8Array(CGO_BODY_LEN)), BadArgumentError);
  assert.throws(() => new CgoCrypt('client-forward', seed).clientOriginate(3, new Uint8Array(CGO_BODY_LEN - 1)), BadArgumentError);
  assert.throws(() => new CgoCrypt('client-forward', seed.subarray(1)), BadArgumentError);
});
