/**
 * Congestion control in the circuit machine (prop 324), against a scripted relay side:
 * a hop that negotiated it gets circuit SENDMEs every sendme_inc DATA cells and no stream
 * SENDMEs; our uploads are paced by Vegas and its SENDMEs checked; and the fault rows —
 * a SENDME before the cells it acknowledges (SENDMEs faster than cells were sent), a
 * stream SENDME, an XON/XOFF flood, XOFF for a stream that does not exist, an exit
 * sending far past its window while our consumer is behind, and a negotiation answer with
 * an out-of-range sendme_inc — each the spec's behaviour (tor's) or a typed error.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { KDF, type OrportError } from '../../src/index.js';
import { HandshakeError, ProtocolError } from '../../src/errors.js';
import { readFrame } from '../../src/codec/framing.js';
import { BeginMsg, SendmeMsg } from '../../src/codec/relaymsg.js';
import { RelaySideCircuit } from '../../src/testing/relayside.js';
import { LP, openChannel, relayReader } from '../support/channel.js';
import { RELAY_COMMAND_XOFF, RELAY_COMMAND_XON, XoffMsg, XonMsg } from '../../src/proto/xonxoff.js';
import { handshakeFor } from '../../src/client/handshakes.js';
import { encodeNtorV3Response, ntorV3Server } from '../../src/crypto/handshake/ntorv3.js';
import { x25519KeyPair } from '../../src/crypto/handshake/ntor.js';
import { TorStream } from '../../src/client/stream.js';
import { CellWriter } from '../../src/client/cellwriter.js';

const SENDME_INC = 31;

/** A channel with a CREATE_FAST hop #1 and a congestion-controlled hop #2, and the relays' chain for them. */
function ccCircuit() {
  const sent: Uint8Array[] = [];
  const channel = openChannel(sent);
  const events = { destroyed: undefined as OrportError | undefined };
  let clock = 1_000_000;
  const circuit = channel.newCircuit({ opened: () => undefined, destroyed: (e) => (events.destroyed = e) });
  circuit.startCreateFast();
  const create = readFrame(Buffer.concat(sent.splice(0)), 0, LP);
  assert.ok(typeof create !== 'number');
  const guard = new RelaySideCircuit(circuit.circId, LP);
  channel.handleBytes(guard.createdFast(create.payload.subarray(0, 20)));
  const keys = KDF.fromValue(randomBytes(40));
  const exit = new RelaySideCircuit(circuit.circId, LP);
  exit.accept(keys);
  guard.attach(exit);
  circuit.addHop(keys, 'exit', SENDME_INC);
  (circuit as unknown as { nowUsec: () => number }).nowUsec = () => (clock += 1000);
  /** What we sent since the last call, as the relays read it. */
  const received = relayReader(sent, guard);
  const fromExit = (command: number, streamId: number, body: Uint8Array) => channel.handleBytes(exit.send(command, streamId, body));
  return { channel, circuit, events, received, fromExit };
}

function openStream(c: ReturnType<typeof ccCircuit>, buffered = () => 0) {
  const got = { data: 0, ended: undefined as OrportError | null | undefined, writable: 0 };
  const handle = c.circuit.openStream(c.circuit.nextStreamId()!, { command: 1, encode: () => new TextEncoder().encode('127.0.0.1:80\0') }, {
    connected: () => undefined,
    data: (d) => ((got.data += d.length), true),
    ended: (e) => (got.ended = e),
    writable: () => got.writable++,
    buffered,
  });
  c.received();
  c.fromExit(4, handle.id, new Uint8Array([127, 0, 0, 1, 0, 0, 1, 44]));
  return { handle, got };
}

test('downloads: a circuit SENDME every sendme_inc DATA cells, v1 with the digest; no stream SENDMEs', () => {
  const c = ccCircuit();
  const s = openStream(c);
  for (let i = 0; i < 3 * SENDME_INC; i++) c.fromExit(2, s.handle.id, new Uint8Array(498));
  const out = c.received();
  assert.equal(out.filter((m) => m.command === 5 && m.streamId === 0).length, 3);
  assert.equal(out.filter((m) => m.command === 5 && m.streamId !== 0).length, 0, 'no stream SENDME on a congestion-controlled hop');
  assert.deepEqual(c.circuit.hopCongestion(1)?.sendmeInc, SENDME_INC);
  assert.equal(c.circuit.hopCongestion(0), undefined, 'hop #1 keeps fixed windows');
  assert.equal(c.events.destroyed, undefined);
});

test('uploads: paced by the congestion window (cc_cwnd_init 124 cells), resumed by a SENDME with the right digest', () => {
  const c = ccCircuit();
  const s = openStream(c);
  const sent = c.circuit.sendData(s.handle, new Uint8Array(200 * 498));
  const cells = c.received().filter((m) => m.command === 2);
  assert.equal(cells.length, 124, 'cwnd − inflight');
  assert.equal(sent, cells.reduce((n, m) => n + m.body.length, 0));
  // The exit acknowledges cell #31 with its digest (its deliver window mirrors ours).
  c.fromExit(5, 0, new SendmeMsg(1, cells[SENDME_INC - 1]!.digest).encode());
  assert.equal(c.events.destroyed, undefined);
  assert.ok(s.got.writable >= 1, 'the stream may write again');
  assert.ok(c.circuit.hopCongestion(1)!.inflight === 124 - SENDME_INC);
});

test('fault: a SENDME before the cells it acknowledges (SENDMEs faster than cells were sent) closes the circuit', () => {
  const c = ccCircuit();
  const s = openStream(c);
  c.circuit.sendData(s.handle, new Uint8Array(10 * 498));
  c.fromExit(5, 0, new SendmeMsg(1, new Uint8Array(20)).encode());
  assert.ok(c.events.destroyed instanceof ProtocolError, String(c.events.destroyed));
  assert.match(c.events.destroyed.message, /no DATA cell awaits one/);
});

test('fault: a SENDME with a wrong digest closes the circuit', () => {
  const c = ccCircuit();
  const s = openStream(c);
  c.circuit.sendData(s.handle, new Uint8Array(40 * 498));
  c.received();
  c.fromExit(5, 0, new SendmeMsg(1, new Uint8Array(20).fill(7)).encode());
  assert.ok(c.events.destroyed instanceof ProtocolError);
  assert.match(c.events.destroyed.message, /mismatched digest/);
});

test('fault: a stream SENDME on a congestion-controlled hop closes the circuit (DIGEST-streams §2.4)', () => {
  const c = ccCircuit();
  const s = openStream(c);
  c.fromExit(5, s.handle.id, new Uint8Array(0));
  assert.ok(c.events.destroyed instanceof ProtocolError);
  assert.match(c.events.destroyed.message, /no stream SENDMEs/);
});

test('fault: XOFF for a stream that does not exist is dropped; the circuit carries on', () => {
  const c = ccCircuit();
  const s = openStream(c);
  const dropped = c.circuit.counters.dropped;
  c.fromExit(RELAY_COMMAND_XOFF, 999, new XoffMsg().encode());
  assert.equal(c.circuit.counters.dropped, dropped + 1);
  assert.equal(c.events.destroyed, undefined);
  assert.ok(c.circuit.sendData(s.handle, new Uint8Array(498)) === 498);
});

test('fault: an XON/XOFF flood is obeyed and counted, as C tor does; XOFF stops our packaging, XON resumes it', () => {
  const c = ccCircuit();
  const s = openStream(c);
  for (let i = 0; i < 1000; i++) {
    c.fromExit(RELAY_COMMAND_XOFF, s.handle.id, new XoffMsg().encode());
    c.fromExit(RELAY_COMMAND_XON, s.handle.id, new XonMsg(0).encode());
  }
  assert.equal(c.events.destroyed, undefined);
  assert.equal(c.circuit.counters.xoffsIn, 1000);
  c.fromExit(RELAY_COMMAND_XOFF, s.handle.id, new XoffMsg().encode());
  assert.equal(c.circuit.sendData(s.handle, new Uint8Array(498)), 0, 'XOFF: nothing is packaged');
  c.fromExit(RELAY_COMMAND_XON, s.handle.id, new XonMsg(0).encode());
  assert.equal(c.circuit.sendData(s.handle, new Uint8Array(498)), 498, 'XON: packaging again');
});

test('a consumer far behind: XOFF goes out, circuit SENDMEs are held and sent in order once it drains (XON then)', () => {
  const c = ccCircuit();
  let buffered = 0;
  const s = openStream(c, () => buffered);
  buffered = 2_000_000;
  for (let i = 0; i < 2 * SENDME_INC; i++) c.fromExit(2, s.handle.id, new Uint8Array(498));
  let out = c.received();
  assert.equal(out.filter((m) => m.command === 5).length, 0, 'SENDMEs held');
  assert.equal(out.filter((m) => m.command === RELAY_COMMAND_XOFF).length, 1, 'one XOFF');
  buffered = 0;
  c.circuit.streamDrained(s.handle, 2_000_000, 0);
  out = c.received();
  assert.equal(out.filter((m) => m.command === 5 && m.streamId === 0).length, 2, 'the held SENDMEs');
  assert.equal(out.filter((m) => m.command === RELAY_COMMAND_XON).length, 1, 'XON');
  assert.equal(c.events.destroyed, undefined, 'the exit took the held SENDMEs’ digests in order (checked relay side)');
});

for (const reader of [
  { what: 'takes its whole buffer in one read()', highWaterMark: undefined, chunk: undefined },
  { what: 'with a 2 MiB highWaterMark reads 16 KiB at a time', highWaterMark: 2 * 1024 * 1024, chunk: 16384 },
]) {
  test(`TorStream: a reader that ${reader.what} gets the held SENDMEs out once it asks for more (Readable#read calls _read before it takes the bytes)`, async () => {
    // The stall seen in streams.test: ~550 KB buffered (SENDMEs held past 488 KB), read() takes it all,
    // and _read, called before the bytes left, saw the buffer still full and never ran again.
    const c = ccCircuit();
    const stream = new TorStream(c.circuit, new CellWriter(), '127.0.0.1', 80, { highWaterMark: reader.highWaterMark });
    const handle = c.circuit.openStream(c.circuit.nextStreamId()!, new BeginMsg('127.0.0.1', 80, 0, true), stream.events, 1);
    stream.attach(handle, { connected: () => undefined, failed: () => undefined });
    c.fromExit(4, handle.id, new Uint8Array([127, 0, 0, 1, 0, 0, 1, 44]));
    c.received();
    const cells = 36 * SENDME_INC;
    for (let i = 0; i < cells; i++) c.fromExit(2, handle.id, new Uint8Array(498));
    const sendmes = () => c.received().filter((m) => m.command === 5 && m.streamId === 0).length;
    const before = sendmes();
    assert.ok(before < 36, `some SENDMEs held while ${stream.readableLength} bytes wait (${before} of 36 sent)`);
    assert.match(stream.describeFlow(), new RegExp(`congestion control: ${36 - before} circuit SENDMEs held \\(still holding\\).*; ${cells * 498} bytes read, ${cells * 498} buffered`));
    let got = 0;
    // A piece, then a turn of the event loop (a reader with work to do), until it has everything.
    while (got < cells * 498) {
      const chunk = (stream.read(reader.chunk) ?? stream.read()) as Buffer | null; // read(n) leaves a tail shorter than n
      if (chunk === null) break;
      got += chunk.length;
      await new Promise((resolve) => setImmediate(resolve));
    }
    assert.equal(got, cells * 498, 'the reader has every byte');
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(before + sendmes(), 36, 'every circuit SENDME out once the reader asked for more');
    assert.match(stream.describeFlow(), /congestion control: 0 circuit SENDMEs held, XOFF not outstanding/);
    assert.equal(c.events.destroyed, undefined);
    stream.destroy();
  });
}

test('fault: an exit sending 10,000 cells past our held SENDMEs is closed (it ignores its congestion window)', () => {
  const c = ccCircuit();
  const s = openStream(c, () => 2_000_000);
  for (let i = 0; i < 10_100 && !c.events.destroyed; i++) c.fromExit(2, s.handle.id, new Uint8Array(10));
  assert.ok(c.events.destroyed instanceof ProtocolError);
  assert.match(c.events.destroyed.message, /without our circuit SENDMEs/);
});

test('negotiation: a sendme_inc out of range (0, or beyond ±1 of the consensus) is a HandshakeError; ±1 is accepted', () => {
  const onion = x25519KeyPair(randomBytes(32));
  const ed25519Id = new Uint8Array(randomBytes(32));
  const target = { rsa: 'A'.repeat(40), ed25519: Buffer.from(ed25519Id).toString('base64').replace(/=+$/, ''), ntorOnionKey: Buffer.from(onion.public).toString('base64'), address: '127.0.0.1', orPort: 1 };
  const answer = (sendmeInc: number | undefined, ask = true) => {
    const pending = handshakeFor('ntor-v3', target, 'hop #3 (exit)', undefined, ask ? { congestionControl: { sendmeInc: 31 } } : {});
    const { reply } = ntorV3Server({ ed25519Id, onionKeys: [onion] }, pending.message, () => encodeNtorV3Response(sendmeInc === undefined ? {} : { sendmeInc }), (n) => new Uint8Array(randomBytes(n)), 'test');
    pending.finish(reply);
    return pending.negotiated().sendmeInc;
  };
  assert.equal(answer(31), 31);
  assert.equal(answer(32), 32);
  assert.equal(answer(30), 30);
  assert.equal(answer(undefined), undefined, 'the exit declined: fixed windows');
  for (const bad of [0, 29, 33, 255]) assert.throws(() => answer(bad), HandshakeError, String(bad));
  assert.throws(() => answer(31, false), /did not ask for/);
});
