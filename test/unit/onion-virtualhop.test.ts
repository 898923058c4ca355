/**
 * The onion service's virtual hop (rend-spec-v3 4.2.1; DIGEST-onion §6.6): Tor1Layer's
 * 'hsv3' variant (SHA3-256 running digests seeded with Df / Db, AES-256-CTR with a zero
 * IV, 32-byte keys) against an independent computation with Node's crypto; the client's
 * and the service's layers round-trip both ways; a flipped bit is not recognized and
 * leaves the state alone; the batched path (CircuitCrypto.decryptCells) gives what cell by
 * cell does on a circuit of three tor1 hops and the virtual hop. Then CircuitMachine's
 * virtual hop: streams to it send BEGIN ":port\0" (no flags), onion-service messages are
 * taken from the last hop only.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv, createHash } from 'node:crypto';
import fc from 'fast-check';
import { BadArgumentError, KDF, LinkProtocol, type OrportError } from '../../src/index.js';
import { CircuitCrypto, SENDME_TAG_LEN, Tor1Layer, type Tor1Keys } from '../../src/crypto/relaycrypto.js';
import { hsNtorKeyExpansion } from '../../src/onion/hsntor.js';
import { CircuitMachine } from '../../src/proto/circuit.js';
import { readFrame, type CellFrame } from '../../src/codec/framing.js';
import { OnionBeginMsg } from '../../src/onion/cells.js';

const PAYLOAD = 509;
const hsKeys = (seed: Uint8Array): Tor1Keys => hsNtorKeyExpansion(seed);

/** A relay payload: command, recognized 0, stream, digest 0, length, body, zero padding. */
function relayPayload(command: number, streamId: number, body: Uint8Array): Uint8Array {
  const p = new Uint8Array(PAYLOAD);
  p[0] = command;
  p[3] = streamId >> 8;
  p[4] = streamId & 0xff;
  p[9] = body.length >> 8;
  p[10] = body.length & 0xff;
  p.set(body, 11);
  return p;
}

test("hsv3: the digest field, the tag and the cipher are SHA3-256 over Df | payloads and AES-256-CTR(Kf, IV 0), computed independently", () => {
  const keys = hsKeys(new Uint8Array(32).fill(7));
  const client = new Tor1Layer(keys, 'client', { variant: 'hsv3' });
  const p1 = relayPayload(2, 5, Uint8Array.of(1, 2, 3));
  const p2 = relayPayload(2, 5, new Uint8Array(498).fill(9));
  const plain1 = p1.slice();
  const plain2 = p2.slice();
  const tag1 = client.originate(p1);
  const wire1 = p1.slice();
  client.encrypt(wire1);
  const tag2 = client.originate(p2);
  const wire2 = p2.slice();
  client.encrypt(wire2);
  const d1 = createHash('sha3-256').update(keys.forwardDigest).update(plain1).digest();
  const d2 = createHash('sha3-256').update(keys.forwardDigest).update(plain1).update(plain2).digest();
  assert.deepEqual(Buffer.from(tag1), d1.subarray(0, 20));
  assert.deepEqual(Buffer.from(tag2), d2.subarray(0, 20));
  assert.equal(tag1.length, SENDME_TAG_LEN);
  assert.deepEqual(Buffer.from(p1.subarray(5, 9)), d1.subarray(0, 4));
  const stream = createCipheriv('aes-256-ctr', keys.forwardKey, new Uint8Array(16));
  const expected1 = stream.update(p1);
  const expected2 = stream.update(p2);
  assert.deepEqual(Buffer.from(wire1), expected1);
  assert.deepEqual(Buffer.from(wire2), expected2, 'one keystream across cells');
});

test('hsv3: the client and the service layers round-trip both ways; the tags agree (fast-check)', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.array(fc.tuple(fc.boolean(), fc.uint8Array({ maxLength: 498 })), { minLength: 1, maxLength: 12 }), (seed, cells) => {
      const keys = hsKeys(seed);
      const client = new Tor1Layer(keys, 'client', { variant: 'hsv3' });
      const service = new Tor1Layer(keys, 'relay', { variant: 'hsv3' });
      for (const [forward, body] of cells) {
        const [from, to] = forward ? [client, service] : [service, client];
        const p = relayPayload(2, 1, body);
        const plain = p.slice();
        const tag = from.originate(p);
        from.encrypt(p);
        const got = to.decrypt(p);
        const seen = to.recognize(got);
        assert.ok(seen, 'recognized');
        got.fill(0, 5, 9);
        assert.deepEqual(Buffer.from(got), Buffer.from(plain));
        assert.deepEqual(Buffer.from(seen), Buffer.from(tag));
      }
    }),
  );
});

test('hsv3: a flipped bit is not recognized, and the digest state stays where it was', () => {
  fc.assert(
    fc.property(fc.integer({ min: 8, max: PAYLOAD * 8 - 1 }), (bit) => {
      // bit ≥ 8: a flip in the command byte is hashed too, but start after it to cover the rest
      const keys = hsKeys(new Uint8Array(32).fill(3));
      const client = new Tor1Layer(keys, 'client', { variant: 'hsv3' });
      const service = new Tor1Layer(keys, 'relay', { variant: 'hsv3' });
      const keystreamOnly = new Tor1Layer(keys, 'relay', { variant: 'hsv3' });
      const p = relayPayload(2, 1, Uint8Array.of(4, 5, 6));
      keystreamOnly.encrypt(p.slice());
      service.originate(p);
      service.encrypt(p);
      p[bit >> 3]! ^= 1 << (bit & 7);
      assert.equal(client.recognize(client.decrypt(p)), undefined, `bit ${bit}`);
      // The next cell, from a sender whose digest never took the first one (its keystream did): recognized,
      // so the bad cell left the client's digest state alone.
      const q = relayPayload(2, 1, Uint8Array.of(7));
      const tag = keystreamOnly.originate(q);
      keystreamOnly.encrypt(q);
      assert.deepEqual(client.recognize(client.decrypt(q)), tag);
    }),
    { numRuns: 300 },
  );
});

test('hsv3 refuses keys of tor1 lengths, and tor1 those of hsv3', () => {
  const hs = hsKeys(new Uint8Array(32));
  assert.throws(() => new Tor1Layer(hs), BadArgumentError);
  const tor1 = KDF.fromValue(new Uint8Array(20));
  assert.throws(() => new Tor1Layer(tor1, 'client', { variant: 'hsv3' }), BadArgumentError);
  assert.throws(() => new Tor1Layer(hs, 'client', { variant: 'nope' as 'hsv3' }), BadArgumentError);
});

test('decryptCells = decrypt cell by cell on guard, middle, RP (tor1) and the virtual hop (hsv3): hops, plaintexts, tags', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 3 }), fc.uint8Array({ maxLength: 498 }), fc.constantFrom('none', 'none', 'none', 'flip')), { minLength: 1, maxLength: 20 }), fc.uint8Array({ minLength: 32, maxLength: 32 }), (cells, seed) => {
      const tor1 = [0, 1, 2].map((i) => KDF.fromValue(Uint8Array.from({ length: 20 }, (_, j) => seed[j]! ^ (i + 1))));
      const hs = hsKeys(seed);
      const relays = [...tor1.map((k) => new Tor1Layer(k, 'relay')), new Tor1Layer(hs, 'relay', { variant: 'hsv3' })];
      const make = () => {
        const c = new CircuitCrypto();
        for (const k of tor1) c.addHop(new Tor1Layer(k));
        c.addHop(new Tor1Layer(hs, 'client', { variant: 'hsv3' }));
        return c;
      };
      const one = make();
      const batched = make();
      const wire = new Uint8Array(cells.length * PAYLOAD);
      const tags: (Uint8Array | undefined)[] = [];
      cells.forEach(([from, body, fault], i) => {
        const p = relayPayload(2, 1, body);
        const tag = relays[from]!.originate(p);
        for (let h = from; h >= 0; h--) relays[h]!.encrypt(p);
        // A flipped bit in the 'length' field's high byte of the plaintext: not recognized anywhere.
        if (fault === 'flip') p[PAYLOAD - 1]! ^= 0x80;
        tags.push(fault === 'flip' ? undefined : tag);
        wire.set(p, i * PAYLOAD);
      });
      const out = batched.decryptCells(wire, cells.length);
      // Until the first altered cell, each is recognized at the hop that sent it; after it, the hop it came
      // from and those behind are out of step (as on a real circuit): the two paths must still agree.
      const firstFault = cells.findIndex(([, , fault]) => fault === 'flip');
      cells.forEach(([from], i) => {
        let single: { hop: number; digest: Uint8Array } | undefined;
        try {
          single = one.decrypt(wire.slice(i * PAYLOAD, (i + 1) * PAYLOAD));
        } catch {
          single = undefined;
        }
        assert.equal(out.hop[i], single ? single.hop : -1, `cell ${i}`);
        if (single) assert.deepEqual(out.digest(i), Buffer.from(single.digest));
        if (firstFault >= 0 && i >= firstFault) return;
        assert.equal(out.hop[i], from);
        assert.deepEqual(out.digest(i), Buffer.from(tags[i]!));
        assert.equal(out.digest(i).length, SENDME_TAG_LEN);
      });
    }),
    { numRuns: 150 },
  );
});

// ---------------------------------------------------------------------------------
// CircuitMachine with a virtual hop

const LP = LinkProtocol.of(5);

test('CircuitMachine.addVirtualHop: BEGIN ":port\\0" with no flags to the virtual hop; onion-service messages from the last hop only', () => {
  // The client's layers and the relays' layers, made from the same keys directly.
  const keys = [0, 1, 2].map((i) => KDF.fromValue(new Uint8Array(20).fill(i + 1)));
  const hs = hsKeys(new Uint8Array(32).fill(9));
  const relays = keys.map((k) => new Tor1Layer(k, 'relay'));
  const service = new Tor1Layer(hs, 'relay', { variant: 'hsv3' });
  const sent: { hop: number; command: number; streamId: number; body: Uint8Array }[] = [];
  const messages: { hop: number; command: number; body: Uint8Array }[] = [];
  const destroyed: OrportError[] = [];
  const machine = new CircuitMachine(
    7,
    LP,
    {
      sendCell: (cell) => {
        const frame = (readFrame(cell, 0, LP) as CellFrame);
        if (frame.command !== 3 && frame.command !== 9) return;
        let p: Uint8Array = frame.payload.slice();
        for (let h = 0; h < 4; h++) {
          const layer = h < 3 ? relays[h]! : service;
          p = layer.decrypt(p);
          if (layer.recognize(p)) {
            sent.push({ hop: h, command: p[0]!, streamId: (p[3]! << 8) | p[4]!, body: Uint8Array.from(p.subarray(11, 11 + ((p[9]! << 8) | p[10]!))) });
            return;
          }
        }
        assert.fail('a cell no hop recognizes');
      },
    },
    { opened: () => undefined, destroyed: (e) => destroyed.push(e), circuitMessage: (hop, command, body) => messages.push({ hop, command, body }) },
  );
  // Opened without a handshake: the hops' keys are put in place as the handshakes would.
  (machine as unknown as { state: string }).state = 'open';
  keys.forEach((k, i) => machine.addHop(k, `relay${i}`));
  const toClient = (from: number, command: number, streamId: number, body: Uint8Array) => {
    const layers = [...relays, service];
    const p = relayPayload(command, streamId, body);
    layers[from]!.originate(p);
    for (let h = from; h >= 0; h--) layers[h]!.encrypt(p);
    const cell = new Uint8Array(514);
    cell.set([0, 0, 0, 7, 3]);
    cell.set(p, 5);
    machine.handleCell((readFrame(cell, 0, LP) as CellFrame));
  };
  // RENDEZVOUS_ESTABLISHED from the RP, the last hop so far: handed up.
  toClient(2, 39, 0, new Uint8Array(0));
  assert.deepEqual(messages.map((m) => [m.hop, m.command]), [[2, 39]]);
  machine.addVirtualHop(hs, 'service.onion');
  assert.equal(machine.hopCount, 4);
  assert.equal(machine.isVirtualHop(3), true);
  assert.equal(machine.isVirtualHop(2), false);
  assert.equal(machine.hopLabel(3), 'hop #4 (service.onion)');
  assert.throws(() => machine.addVirtualHop(hs), BadArgumentError);
  assert.throws(() => machine.truncate(1), BadArgumentError);
  // A stream to the service: BEGIN ":80\0", no flags.
  const ends: (OrportError | null)[] = [];
  let connected = 0;
  const data: Uint8Array[] = [];
  const handle = machine.openStream(
    42,
    new OnionBeginMsg(80),
    { connected: () => connected++, data: (d) => (data.push(Uint8Array.from(d)), true), ended: (e) => ends.push(e) },
  );
  assert.deepEqual(sent.at(-1), { hop: 3, command: 1, streamId: 42, body: Uint8Array.from([0x3a, 0x38, 0x30, 0]) });
  toClient(3, 4, 42, new Uint8Array(0));
  assert.equal(connected, 1);
  toClient(3, 2, 42, Uint8Array.of(1, 2, 3));
  assert.deepEqual(data, [Uint8Array.of(1, 2, 3)]);
  assert.equal(machine.sendData(handle, Uint8Array.of(9, 9)), 2);
  assert.deepEqual(sent.at(-1), { hop: 3, command: 2, streamId: 42, body: Uint8Array.of(9, 9) });
  // The service's messages pass as the stream's; a RENDEZVOUS2 from the RP (no longer the last hop) closes the circuit.
  toClient(2, 37, 0, new Uint8Array(64));
  assert.equal(messages.length, 1);
  assert.equal(destroyed.length, 1);
  assert.match(destroyed[0]!.message, /RENDEZVOUS2 \(37\) from hop #3 \(relay2\) of circuit 7, not its last hop \(hop #4 \(service\.onion\)\)/);
  assert.equal(ends.length, 1);
});

test('OnionBeginMsg: ":port" NUL, and nothing else; ports outside 1..65535 refused', () => {
  assert.deepEqual(new OnionBeginMsg(65535).encode(), Uint8Array.from([...Buffer.from(':65535'), 0]));
  assert.equal(new OnionBeginMsg(1).command, 1);
  assert.throws(() => new OnionBeginMsg(0), BadArgumentError);
  assert.throws(() => new OnionBeginMsg(70000), BadArgumentError);
});
