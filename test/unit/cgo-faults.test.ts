/**
 * CGO (prop 359) in the circuit machine, against a scripted relay side (testing/relayside,
 * which speaks CGO and V1 where the handshake negotiates it): the ntor v3 request to the
 * exit carries exactly tor 0.4.9's CM `02 01 00 03 02 02 06`, both ends derive the same
 * CGO keys, downloads get circuit SENDMEs every sendme_inc cells carrying the exit's
 * 16-byte tags, uploads are acknowledged by the exit's SENDMEs with ours; and the fault
 * rows — one flipped bit in a cell from the exit, a replayed cell, a SENDME whose tag does
 * not match (or is tor1's 20 bytes), an exit that accepts CGO and then sends tor1 cells, a
 * V1 message with an unknown command or a length that does not fit, an answer without
 * congestion control — each a typed error that destroys the circuit, its streams ended.
 * The V1 codec round-trips (fast-check) and keeps tor's stream-id rules.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { type OrportError } from '../../src/index.js';
import { BadArgumentError, DecodeError, HandshakeError, ProtocolError } from '../../src/errors.js';
import { readFrame } from '../../src/codec/framing.js';
import { Extend2Msg, Extended2Msg, SendmeMsg } from '../../src/codec/relaymsg.js';
import { readV1, v1DataMax, v1HasStreamId, writeV1 } from '../../src/codec/relayv1.js';
import { RelaySideCircuit } from '../../src/testing/relayside.js';
import { LP, openChannel, relayReader } from '../support/channel.js';
import { handshakeFor, linkSpecifiersFor, offersCgo, type CircuitTarget } from '../../src/client/handshakes.js';
import { encodeNtorV3Response } from '../../src/crypto/handshake/ntorv3.js';
import { x25519KeyPair } from '../../src/crypto/handshake/ntor.js';
import { RUNS } from '../support/fuzz.js';

const SENDME_INC = 31;

const onion = x25519KeyPair(randomBytes(32));
const exitKeys = { rsaId: randomBytes(20), ed25519Id: randomBytes(32), onionKeys: [onion] };
const exitTarget: CircuitTarget = {
  nickname: 'exit',
  rsa: Buffer.from(exitKeys.rsaId).toString('hex').toUpperCase(),
  ed25519: Buffer.from(exitKeys.ed25519Id).toString('base64').replace(/=+$/, ''),
  ntorOnionKey: Buffer.from(onion.public).toString('base64'),
  address: '127.0.0.1',
  orPort: 9001,
  protocols: { FlowCtrl: '1-2', Relay: '2-6' },
};

/**
 * A channel, a CREATE_FAST hop #1 (tor1) and an EXTEND2 with ntor v3 asking the exit for
 * congestion control and CGO; the relays' chain answers (`answer` scripts the exit's SM).
 */
function cgoCircuit(options: { serverMessage?: Uint8Array; ignoreCgo?: boolean } = {}) {
  const sent: Uint8Array[] = [];
  const channel = openChannel(sent);
  const events = { destroyed: undefined as OrportError | undefined, extended: 0, extendFailed: undefined as OrportError | undefined };
  let clock = 1_000_000;
  const circuit = channel.newCircuit({ opened: () => undefined, destroyed: (e) => (events.destroyed = e), extended: () => events.extended++, extendFailed: (e) => (events.extendFailed = e) });
  (circuit as unknown as { nowUsec: () => number }).nowUsec = () => (clock += 1000);
  circuit.startCreateFast('guard');
  const create = readFrame(Buffer.concat(sent.splice(0)), 0, LP);
  assert.ok(typeof create !== 'number');
  const guard = new RelaySideCircuit(circuit.circId, LP);
  channel.handleBytes(guard.createdFast(create.payload.subarray(0, 20)));
  /** What we sent since the last call, as the relays read it. */
  const received = relayReader(sent, guard);
  circuit.extend(linkSpecifiersFor(exitTarget), handshakeFor('ntor-v3', exitTarget, 'hop #2 (exit)', undefined, { congestionControl: { sendmeInc: SENDME_INC }, cgo: true }), 'exit');
  const [extend2] = received();
  assert.equal(extend2!.command, 14);
  const exit = new RelaySideCircuit(circuit.circId, LP);
  const answer = exit.answerCreate2(3, Extend2Msg.decode(extend2!.body).handshakeData, exitKeys, 'exit', {
    serverMessage: options.serverMessage ?? encodeNtorV3Response({ sendmeInc: SENDME_INC }),
    ignoreCgo: options.ignoreCgo ?? false,
  });
  guard.attach(exit);
  channel.handleBytes(guard.send(15, 0, new Extended2Msg(answer.reply).encode()));
  const fromExit = (command: number, streamId: number, body: Uint8Array, o: Parameters<RelaySideCircuit['send']>[3] = {}) => {
    const cell = exit.send(command, streamId, body, o);
    channel.handleBytes(cell);
    return cell;
  };
  return { channel, circuit, events, received, exit, answer, fromExit };
}

function openStream(c: ReturnType<typeof cgoCircuit>) {
  const got = { data: 0, ended: undefined as OrportError | null | undefined, writable: 0 };
  const handle = c.circuit.openStream(c.circuit.nextStreamId()!, { command: 1, encode: () => new TextEncoder().encode('127.0.0.1:80\0') }, {
    connected: () => undefined,
    data: (d) => ((got.data += d.length), true),
    ended: (e) => (got.ended = e),
    writable: () => got.writable++,
    buffered: () => 0,
  });
  const [begin] = c.received();
  assert.equal(begin!.command, 1, 'BEGIN reaches the exit, V1 with its stream id');
  assert.equal(begin!.streamId, handle.id);
  c.fromExit(4, handle.id, new Uint8Array([127, 0, 0, 1, 0, 0, 1, 44]));
  return { handle, got };
}

test("negotiation: the CM is tor 0.4.9's 02 01 00 03 02 02 06; the exit runs CGO with congestion control, hop #1 tor1", () => {
  const c = cgoCircuit();
  assert.equal(Buffer.from(c.answer.clientMessage!).toString('hex'), '02010003020206');
  assert.ok(c.answer.cgoKeys && c.exit.cgo);
  assert.equal(c.events.extended, 1);
  assert.equal(c.circuit.hopRelayCrypto(0), 'tor1');
  assert.equal(c.circuit.hopRelayCrypto(1), 'cgo');
  assert.equal(c.circuit.hopCongestion(1)?.sendmeInc, SENDME_INC);
  assert.ok(offersCgo(exitTarget));
  assert.ok(!offersCgo({ ...exitTarget, protocols: { FlowCtrl: '1-2', Relay: '2-5' } }), 'Relay=6 missing');
  assert.ok(!offersCgo({ ...exitTarget, protocols: { FlowCtrl: '1', Relay: '2-6' } }), 'FlowCtrl=2 missing');
});

test('CGO is asked for only with congestion control, and only by ntor v3 (BadArgumentError)', () => {
  assert.throws(() => handshakeFor('ntor-v3', exitTarget, 'hop #2', undefined, { cgo: true }), BadArgumentError);
  assert.throws(() => handshakeFor('ntor', exitTarget, 'hop #2', undefined, { cgo: true }), BadArgumentError);
});

test('an answer without congestion control to a CGO request fails the extension with a HandshakeError', () => {
  const c = cgoCircuit({ serverMessage: encodeNtorV3Response() });
  assert.ok(c.events.extendFailed instanceof HandshakeError, String(c.events.extendFailed));
  assert.match(c.events.extendFailed.message, /without congestion control/);
});

test('downloads: DATA (488 bytes, V1) delivered; a circuit SENDME every sendme_inc cells carrying the exit\'s 16-byte tag of that cell', () => {
  const c = cgoCircuit();
  const s = openStream(c);
  const tags: Uint8Array[] = [];
  for (let i = 0; i < 2 * SENDME_INC; i++) {
    c.fromExit(2, s.handle.id, new Uint8Array(v1DataMax(2)));
    tags.push(c.exit.lastDigest!);
  }
  assert.equal(s.got.data, 2 * SENDME_INC * 488);
  const sendmes = c.received().filter((m) => m.command === 5);
  assert.equal(sendmes.length, 2);
  for (const m of sendmes) {
    const msg = SendmeMsg.decode(m.body);
    assert.equal(msg.version, 1);
    assert.equal(msg.digest!.length, 16);
  }
  assert.deepEqual(sendmes.map((m) => Buffer.from(SendmeMsg.decode(m.body).digest!).toString('hex')), [tags[SENDME_INC - 1]!, tags[2 * SENDME_INC - 1]!].map((t) => Buffer.from(t).toString('hex')));
  assert.equal(c.events.destroyed, undefined);
});

test('uploads: our DATA reaches the exit in V1; its SENDME with our tag of cell #31 is accepted, a wrong tag closes the circuit', () => {
  const c = cgoCircuit();
  const s = openStream(c);
  c.circuit.sendData(s.handle, new Uint8Array(100 * 488));
  const cells = c.received().filter((m) => m.command === 2);
  assert.equal(cells.length, 101, '100 × 488 bytes: one cell in 100 is short (468), so 101');
  assert.ok(cells.slice(0, -1).every((m) => m.body.length === 488 || m.body.length === 468), 'V1 DATA cells hold 488 bytes');
  c.fromExit(5, 0, new SendmeMsg(1, cells[SENDME_INC - 1]!.digest).encode());
  assert.equal(c.events.destroyed, undefined);
  assert.equal(c.circuit.hopCongestion(1)!.inflight, 101 - SENDME_INC);
  const wrong = Uint8Array.from(cells[2 * SENDME_INC - 1]!.digest);
  wrong[15]! ^= 1;
  c.fromExit(5, 0, new SendmeMsg(1, wrong).encode());
  const destroyed = c.events.destroyed as OrportError | undefined;
  assert.ok(destroyed instanceof ProtocolError, String(destroyed));
  assert.match(destroyed.message, /mismatched digest/);
  assert.ok(s.got.ended, 'the stream ended with the circuit');
});

test("fault: a SENDME with tor1's 20-byte digest on a CGO hop closes the circuit", () => {
  const c = cgoCircuit();
  const s = openStream(c);
  c.circuit.sendData(s.handle, new Uint8Array(40 * 488));
  c.received();
  c.fromExit(5, 0, new SendmeMsg(1, new Uint8Array(20)).encode());
  assert.ok(c.events.destroyed instanceof ProtocolError, String(c.events.destroyed));
  assert.match(c.events.destroyed.message, /20-byte tag; its CGO crypto makes 16-byte ones/);
});

test('fault: one flipped bit anywhere in a cell from the exit: not recognized, the circuit closes (E_BAD_CELL_AUTH), its stream ended (fast-check)', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 509 * 8 - 1 }), (bit) => {
      const c = cgoCircuit();
      const s = openStream(c);
      c.fromExit(2, s.handle.id, new Uint8Array(100), { flipBit: bit });
      assert.ok(c.events.destroyed instanceof ProtocolError, `bit ${bit}: ${String(c.events.destroyed)}`);
      assert.equal(c.events.destroyed.code, 'E_BAD_CELL_AUTH');
      assert.ok(s.got.ended);
      assert.equal(c.circuit.streamCount, 0);
    }),
    { numRuns: Math.max(20, RUNS / 5) },
  );
});

test('fault: a replayed cell (the same bytes again) is not recognized: the circuit closes', () => {
  const c = cgoCircuit();
  const s = openStream(c);
  const cell = c.fromExit(2, s.handle.id, new Uint8Array(100));
  assert.equal(c.events.destroyed, undefined);
  assert.equal(s.got.data, 100);
  c.channel.handleBytes(cell);
  const destroyed = c.events.destroyed as OrportError | undefined;
  assert.ok(destroyed instanceof ProtocolError, String(destroyed));
  assert.equal(destroyed.code, 'E_BAD_CELL_AUTH');
  assert.equal(s.got.data, 100, 'the replay delivered nothing');
});

test('fault: an exit that accepts CGO and then sends tor1 cells: not recognized, the circuit closes', () => {
  const c = cgoCircuit();
  const s = openStream(c);
  c.fromExit(2, s.handle.id, new Uint8Array(100), { tor1: true });
  assert.ok(c.events.destroyed instanceof ProtocolError, String(c.events.destroyed));
  assert.equal(c.events.destroyed.code, 'E_BAD_CELL_AUTH');
  assert.ok(s.got.ended);
});

test('fault: an exit that ignored the CGO request (tor1 at its end, CGO at ours): its first cell closes the circuit', () => {
  const c = cgoCircuit({ ignoreCgo: true });
  assert.equal(c.circuit.hopRelayCrypto(1), 'cgo');
  assert.ok(!c.exit.cgo);
  c.circuit.openStream(c.circuit.nextStreamId()!, { command: 1, encode: () => new TextEncoder().encode('127.0.0.1:80\0') }, { connected: () => undefined, data: () => true, ended: () => undefined });
  assert.throws(() => c.received(), ProtocolError, 'the exit cannot read our CGO cell either');
  c.fromExit(4, 1, new Uint8Array(8));
  assert.ok(c.events.destroyed instanceof ProtocolError);
  assert.equal(c.events.destroyed.code, 'E_BAD_CELL_AUTH');
});

test('fault: a V1 message with an unknown command, or a length that does not fit, closes the circuit (tor cannot decode it)', () => {
  const c = cgoCircuit();
  c.fromExit(200, 0, new Uint8Array(4));
  assert.ok(c.events.destroyed instanceof ProtocolError, String(c.events.destroyed));
  assert.match(c.events.destroyed.message, /unknown relay command 200/);
  const d = cgoCircuit();
  const s = openStream(d);
  d.fromExit(2, s.handle.id, new Uint8Array(10), { claimedLength: 489 });
  assert.ok(d.events.destroyed instanceof ProtocolError, String(d.events.destroyed));
  assert.match(d.events.destroyed.message, /claims 489 bytes/);
});

test('V1 codec: write then read gives the message back (fast-check); tor\'s stream-id commands and limits', () => {
  const commands = [1, 2, 3, 4, 5, 8, 9, 10, 11, 12, 13, 14, 15, 43, 44];
  fc.assert(
    fc.property(fc.constantFrom(...commands), fc.integer({ min: 1, max: 0xffff }), fc.uint8Array({ maxLength: 490 }), (command, id, data) => {
      const withId = v1HasStreamId(command);
      const body = data.subarray(0, v1DataMax(command));
      const cell = new Uint8Array(509).fill(0xee);
      const pad = writeV1(cell, command, withId ? id : 0, body);
      assert.ok(cell.subarray(pad - 4, pad).every((b) => b === 0) || pad === 509);
      const m = readV1(cell);
      assert.equal(m.command, command);
      assert.equal(m.streamId, withId ? id : 0);
      assert.deepEqual(cell.subarray(m.dataAt, m.dataAt + m.length), body);
      assert.ok(cell.subarray(0, 16).every((b) => b === 0xee), 'T is left alone');
    }),
    { numRuns: RUNS },
  );
  assert.deepEqual([1, 2, 3, 4, 11, 12, 13, 43, 44].map(v1HasStreamId), Array(9).fill(true));
  assert.deepEqual([5, 6, 7, 8, 9, 10, 14, 15].map(v1HasStreamId), Array(8).fill(false));
  assert.equal(v1DataMax(2), 488);
  assert.equal(v1DataMax(5), 490);
  assert.throws(() => writeV1(new Uint8Array(509), 2, 0, new Uint8Array(1)), BadArgumentError);
  assert.throws(() => writeV1(new Uint8Array(509), 5, 7, new Uint8Array(1)), BadArgumentError);
  assert.throws(() => writeV1(new Uint8Array(509), 2, 1, new Uint8Array(489)), BadArgumentError);
  const bad = new Uint8Array(509);
  bad[16] = 16; // RELAY_COMMAND 16 is not one tor knows
  assert.throws(() => readV1(bad), DecodeError);
});
