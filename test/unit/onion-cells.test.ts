/**
 * onion/cells: the onion-service relay message bodies. Round trips (fast-check) of every
 * codec; the byte layout of each against rend-spec-v3 §3.2.1, §3.2.2, §4.1, §4.2 (written
 * out by hand from the spec's field lists); INTRODUCE1's header equal to hsntor's (the MAC
 * covers it); tor's strictness kept (ESTABLISH_RENDEZVOUS exactly 20 bytes, a v3
 * INTRODUCE1's zero LEGACY_KEY_ID) and its leniency (RENDEZVOUS_ESTABLISHED's and
 * RENDEZVOUS2's extra bytes ignored); each refusal a DecodeError naming the field.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { BadArgumentError, DecodeError, IncompleteError } from '../../src/errors.js';
import {
  EstablishRendezvousMsg,
  Introduce1Msg,
  IntroduceAckMsg,
  IntroduceAckStatus,
  RelayCommandHs,
  Rendezvous1Msg,
  Rendezvous2Msg,
  RendezvousEstablishedMsg,
  decodeHsRelayMessage,
} from '../../src/onion/cells.js';
import { encodeIntroduce1Header } from '../../src/onion/hsntor.js';

const bytes = (n: number) => fc.uint8Array({ minLength: n, maxLength: n });
const extension = fc.record({ type: fc.integer({ min: 0, max: 255 }), data: fc.uint8Array({ maxLength: 40 }) });
const extensions = fc.array(extension, { maxLength: 4 });
const sortByType = <T extends { type: number }>(list: readonly T[]) => [...list].sort((a, b) => a.type - b.type);
const plain = (list: readonly { type: number; data: Uint8Array }[]) => list.map((e) => ({ type: e.type, data: Array.from(e.data) }));

test('every codec: decode(encode(m)) is m (fast-check)', () => {
  fc.assert(
    fc.property(bytes(20), (cookie) => {
      const m = EstablishRendezvousMsg.decode(new EstablishRendezvousMsg(cookie).encode());
      assert.deepEqual(m.cookie, cookie);
      assert.equal(m.command, 33);
    }),
  );
  fc.assert(
    fc.property(bytes(32), fc.uint8Array({ minLength: 64, maxLength: 300 }), extensions, fc.constantFrom<34 | 35>(34, 35), (authKey, encrypted, exts, command) => {
      const body = new Introduce1Msg(authKey, encrypted, exts, command).encode();
      const m = Introduce1Msg.decode(body, command);
      assert.deepEqual(m.authKey, authKey);
      assert.deepEqual(m.encrypted, encrypted);
      assert.deepEqual(plain(m.extensions), plain(sortByType(exts)));
      assert.equal(m.command, command);
      assert.deepEqual(m.encode(), body);
      assert.deepEqual(m.clientKey, encrypted.subarray(0, 32));
      assert.deepEqual(decodeHsRelayMessage(command, body), m);
    }),
  );
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 0xffff }), extensions, (status, exts) => {
      const m = IntroduceAckMsg.decode(new IntroduceAckMsg(status, exts).encode());
      assert.equal(m.status, status);
      assert.deepEqual(plain(m.extensions), plain(sortByType(exts)));
    }),
  );
  fc.assert(
    fc.property(bytes(20), bytes(64), (cookie, info) => {
      const m = Rendezvous1Msg.decode(new Rendezvous1Msg(cookie, info).encode());
      assert.deepEqual([m.cookie, m.handshakeInfo], [cookie, info]);
      const r2 = Rendezvous2Msg.decode(new Rendezvous2Msg(info).encode());
      assert.deepEqual(r2.handshakeInfo, info);
    }),
  );
});

test('the byte layouts of rend-spec-v3 §3.2.1, §3.2.2, §4.1, §4.2', () => {
  const cookie = Uint8Array.from({ length: 20 }, (_, i) => i + 1);
  assert.deepEqual(new EstablishRendezvousMsg(cookie).encode(), cookie);
  assert.equal(new RendezvousEstablishedMsg().encode().length, 0);
  const authKey = new Uint8Array(32).fill(0xaa);
  const enc = new Uint8Array(64).fill(0xbb);
  const intro = new Introduce1Msg(authKey, enc).encode();
  // LEGACY_KEY_ID[20] = 0 | AUTH_KEY_TYPE 02 | AUTH_KEY_LEN 00 20 | AUTH_KEY | N_EXTENSIONS 00 | ENCRYPTED
  assert.equal(Buffer.from(intro).toString('hex'), '00'.repeat(20) + '020020' + 'aa'.repeat(32) + '00' + 'bb'.repeat(64));
  assert.deepEqual(new Introduce1Msg(authKey, enc, [{ type: 7, data: Uint8Array.of(1) }]).header(), encodeIntroduce1Header(authKey, [{ type: 7, data: Uint8Array.of(1) }]));
  // STATUS 0001 | N_EXTENSIONS 01 | type 05, len 02, 'hi'
  assert.equal(Buffer.from(new IntroduceAckMsg(1, [{ type: 5, data: Uint8Array.of(0x68, 0x69) }]).encode()).toString('hex'), '0001010502' + '6869');
  const info = new Uint8Array(64).fill(0xcc);
  assert.deepEqual(new Rendezvous1Msg(cookie, info).encode(), Uint8Array.from([...cookie, ...info]));
  assert.deepEqual(new Rendezvous2Msg(info).encode(), info);
  assert.deepEqual(
    [RelayCommandHs.ESTABLISH_RENDEZVOUS, RelayCommandHs.INTRODUCE1, RelayCommandHs.RENDEZVOUS1, RelayCommandHs.RENDEZVOUS2, RelayCommandHs.RENDEZVOUS_ESTABLISHED, RelayCommandHs.INTRODUCE_ACK],
    [33, 34, 36, 37, 39, 40],
  );
  assert.deepEqual(Object.values(IntroduceAckStatus), [0, 1, 2, 3]);
});

test("tor's leniency: RENDEZVOUS_ESTABLISHED's, RENDEZVOUS2's and INTRODUCE_ACK's extra bytes are ignored", () => {
  assert.ok(decodeHsRelayMessage(39, Uint8Array.of(1, 2, 3)) instanceof RendezvousEstablishedMsg);
  const info = Uint8Array.from({ length: 64 }, (_, i) => i);
  assert.deepEqual(Rendezvous2Msg.decode(Uint8Array.from([...info, 9, 9])).handshakeInfo, info);
  const ack = IntroduceAckMsg.decode(Uint8Array.of(0, 2, 0, 0xff));
  assert.equal(ack.status, IntroduceAckStatus.BAD_MESSAGE_FORMAT);
  assert.equal(decodeHsRelayMessage(32, new Uint8Array(10)), undefined);
});

test('each refusal is a DecodeError naming the field', () => {
  const refuse = (fn: () => unknown, field: RegExp, type: abstract new (...args: never[]) => DecodeError = DecodeError) =>
    assert.throws(fn, (err: unknown) => err instanceof type && field.test((err as Error).message), String(field));
  refuse(() => EstablishRendezvousMsg.decode(new Uint8Array(21)), /RENDEZVOUS_COOKIE is exactly 20/);
  refuse(() => EstablishRendezvousMsg.decode(new Uint8Array(19)), /RENDEZVOUS_COOKIE/);
  refuse(() => Rendezvous2Msg.decode(new Uint8Array(63)), /HANDSHAKE_INFO/, IncompleteError);
  refuse(() => Rendezvous1Msg.decode(new Uint8Array(10)), /RENDEZVOUS_COOKIE/, IncompleteError);
  refuse(() => Rendezvous1Msg.decode(new Uint8Array(50)), /HANDSHAKE_INFO/, IncompleteError);
  refuse(() => IntroduceAckMsg.decode(Uint8Array.of(0)), /STATUS/, IncompleteError);
  refuse(() => IntroduceAckMsg.decode(Uint8Array.of(0, 0)), /N_EXTENSIONS/, IncompleteError);
  refuse(() => IntroduceAckMsg.decode(Uint8Array.of(0, 0, 1, 5, 3, 1)), /EXT_FIELD/, IncompleteError);
  const good = new Introduce1Msg(new Uint8Array(32), new Uint8Array(64)).encode();
  const legacy = good.slice();
  legacy[3] = 1;
  refuse(() => Introduce1Msg.decode(legacy), /LEGACY_KEY_ID/);
  const type = good.slice();
  type[20] = 1;
  refuse(() => Introduce1Msg.decode(type), /AUTH_KEY_TYPE is 1/);
  const len = good.slice();
  len[22] = 33;
  refuse(() => Introduce1Msg.decode(len), /AUTH_KEY_LEN is 33/);
  refuse(() => Introduce1Msg.decode(good.subarray(0, 40)), /AUTH_KEY/, IncompleteError);
  refuse(() => Introduce1Msg.decode(good.subarray(0, good.length - 1)), /ENCRYPTED/);
  // Every truncation of a valid body is refused, never mis-read (fast-check).
  fc.assert(
    fc.property(fc.integer({ min: 0, max: good.length - 1 }), (n) => {
      assert.throws(() => Introduce1Msg.decode(good.subarray(0, n)), DecodeError);
    }),
  );
  assert.throws(() => new EstablishRendezvousMsg(new Uint8Array(16)), BadArgumentError);
  assert.throws(() => new Rendezvous2Msg(new Uint8Array(65)), BadArgumentError);
  assert.throws(() => new IntroduceAckMsg(70000), BadArgumentError);
  assert.throws(() => new Introduce1Msg(new Uint8Array(32), new Uint8Array(63)), BadArgumentError);
});
