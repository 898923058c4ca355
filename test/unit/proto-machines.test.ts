/**
 * The sans-I/O channel and circuit machines against a scripted relay side, cell by
 * cell: handshake, CREATE_FAST, BEGIN_DIR, DATA, SENDMEs (circuit v1 digests checked
 * the way tor checks them), and the faults that must tear a circuit down.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Address,
  AuthChallengeCell,
  CertsCell,
  Certificate,
  CircuitDestroyedError,
  DestroyCell,
  HandshakeError,
  LinkProtocol,
  NetinfoCell,
  OrportError,
  PaddingNegotiateCell,
  ProtocolError,
  StreamClosedError,
  VersionsCell,
  VPaddingCell,
} from '../../src/index.js';
import { readFrame, type CellFrame } from '../../src/codec/framing.js';
import { ChannelMachine } from '../../src/proto/channel.js';
import type { CircuitMachine } from '../../src/proto/circuit.js';
import { RelaySideCircuit } from '../../src/testing/relayside.js';
import { EndMsg, SendmeMsg } from '../../src/codec/relaymsg.js';

const LP = LinkProtocol.of(5);

/** A channel machine wired to an in-memory "wire" we can read cells from. */
function harness(versions: number[] = [3, 4, 5]) {
  const sent: Uint8Array[] = [];
  const events = { complete: 0, closed: undefined as OrportError | undefined };
  const channel = new ChannelMachine(versions, { send: (b) => sent.push(b) }, {
    handshakeComplete: () => events.complete++,
    closed: (e) => (events.closed = e),
  }, { peerAddress: new Address('127.0.0.1') });
  /** Cells we sent since the last call, framed with `lp`. */
  const drain = (lp: LinkProtocol): CellFrame[] => {
    const bytes = Buffer.concat(sent.splice(0));
    const frames: CellFrame[] = [];
    for (let at = 0; at < bytes.length; ) {
      // A VERSIONS cell first has a 2-byte circuit id 0 (a circuit cell's 4-byte id has its MSB set).
      const versionsFirst = at === 0 && bytes[0] === 0 && bytes[1] === 0 && bytes[2] === 7;
      const f = readFrame(bytes, at, versionsFirst ? LinkProtocol.of(2) : lp);
      assert.ok(typeof f !== 'number', 'we sent a partial cell');
      frames.push({ ...f, payload: f.payload.slice() });
      at += f.length;
    }
    return frames;
  };
  return { channel, sent, events, drain };
}

function handshake(h: ReturnType<typeof harness>): void {
  h.channel.start();
  const [versions] = h.drain(LinkProtocol.of(2));
  assert.equal(versions!.command, 7);
  h.channel.handleBytes(Buffer.concat([
    new VersionsCell([3, 4, 5]).pack(2),
    new VPaddingCell(3).pack(LP),
    new CertsCell([new Certificate(1, new Uint8Array(10))]).pack(LP),
    new AuthChallengeCell([1, 3]).pack(LP),
    new NetinfoCell(new Address('127.0.0.1'), [new Address('127.0.0.2')], new Date(1_700_000_000_000)).pack(LP),
  ]));
  assert.equal(h.events.complete, 1);
  const [netinfo] = h.drain(LP);
  assert.equal(netinfo!.command, 8);
}

function openCircuit(h: ReturnType<typeof harness>) {
  const events = { opened: 0, destroyed: undefined as OrportError | undefined };
  const circuit = h.channel.newCircuit({ opened: () => events.opened++, destroyed: (e) => (events.destroyed = e) });
  assert.ok(circuit.circId >= 0x80000000, 'v4+ initiator circuit ids have the MSB set');
  circuit.startCreateFast();
  const [create] = h.drain(LP);
  assert.equal(create!.command, 5);
  const relay = new RelaySideCircuit(circuit.circId, LP);
  return { circuit, events, relay, create: create! };
}

function created(h: ReturnType<typeof harness>, c: ReturnType<typeof openCircuit>, tamper = false): void {
  h.channel.handleBytes(c.relay.createdFast(c.create.payload.subarray(0, 20), { tamperKeyHash: tamper }));
}

/** Opens a BEGIN_DIR stream and collects what it delivers. */
function dirStream(circuit: CircuitMachine, streamId = 1, consume = true) {
  const got = { connected: 0, data: [] as Uint8Array[], ended: undefined as OrportError | null | undefined };
  circuit.openStream(streamId, { command: 13, encode: () => new Uint8Array(0) }, {
    connected: () => got.connected++,
    data: (d) => {
      got.data.push(d);
      return consume;
    },
    ended: (e) => (got.ended = e),
  });
  return got;
}

test('handshake: VERSIONS, CERTS, AUTH_CHALLENGE, NETINFO (with VPADDING between), then our NETINFO', () => {
  const h = harness();
  handshake(h);
  assert.equal(h.channel.negotiated?.version, 5);
  assert.equal(h.events.closed, undefined);
});

test('handshake: no common version, a non-VERSIONS first cell, CERTS missing — HandshakeErrors', () => {
  const a = harness([3, 4, 5]);
  a.channel.start();
  a.channel.handleBytes(new VersionsCell([1, 2]).pack(2));
  assert.ok(a.events.closed instanceof HandshakeError);
  assert.match(a.events.closed.message, /no common link protocol: we support 3, 4, 5, but the relay supports 1, 2/);

  const b = harness();
  b.channel.start();
  b.channel.handleBytes(new NetinfoCell(new Address('127.0.0.1'), []).pack(2));
  assert.ok(b.events.closed instanceof HandshakeError);
  assert.match(b.events.closed.message, /expected the relay's VERSIONS cell first/);

  const c = harness();
  c.channel.start();
  c.channel.handleBytes(Buffer.concat([new VersionsCell([4]).pack(2), new NetinfoCell(new Address('127.0.0.1'), []).pack(4)]));
  assert.ok(c.events.closed instanceof HandshakeError);
  assert.match(c.events.closed.message, /expected the relay's CERTS cell after VERSIONS, but got NETINFO/);
});

test('handshake bytes may arrive one at a time', () => {
  const h = harness();
  h.channel.start();
  h.drain(LinkProtocol.of(2));
  const all = Buffer.concat([
    new VersionsCell([3, 4, 5]).pack(2),
    new CertsCell([new Certificate(1, new Uint8Array(700))]).pack(LP),
    new AuthChallengeCell([1, 3]).pack(LP),
    new NetinfoCell(new Address('127.0.0.1'), []).pack(LP),
  ]);
  for (let i = 0; i < all.length; i++) h.channel.handleBytes(all.subarray(i, i + 1));
  assert.equal(h.events.complete, 1);
  assert.equal(h.events.closed, undefined);
});

test('CREATE_FAST → CREATED_FAST opens the circuit; a wrong KH is a HandshakeError and a DESTROY', () => {
  const h = harness();
  handshake(h);
  const good = openCircuit(h);
  created(h, good);
  assert.equal(good.events.opened, 1);
  assert.equal(good.circuit.state, 'open');

  const bad = openCircuit(h);
  created(h, bad, true);
  assert.equal(bad.events.opened, 0);
  assert.ok(bad.events.destroyed instanceof HandshakeError);
  const [destroy] = h.drain(LP);
  assert.equal(destroy!.command, 4);
  assert.equal(destroy!.payload[0], 1, 'reason PROTOCOL');
  assert.equal(good.circuit.state, 'open', 'the other circuit is unaffected');
});

test('BEGIN_DIR, CONNECTED, request, DATA, END DONE; every cell decrypts on the relay side', () => {
  const h = harness();
  handshake(h);
  const c = openCircuit(h);
  created(h, c);
  const got = dirStream(c.circuit, 7);
  const [beginDir] = h.drain(LP);
  const begin = c.relay.receive(beginDir!.payload);
  assert.equal(begin.command, 13);
  assert.equal(begin.streamId, 7);
  h.channel.handleBytes(c.relay.send(4, 7, new Uint8Array(0)));
  assert.equal(got.connected, 1);
  assert.equal(c.circuit.sendData(7, Buffer.from('GET / HTTP/1.0\r\n\r\n')), 18);
  const request = c.relay.receive(h.drain(LP)[0]!.payload);
  assert.equal(Buffer.from(request.body).toString(), 'GET / HTTP/1.0\r\n\r\n');
  h.channel.handleBytes(Buffer.concat([c.relay.send(2, 7, Buffer.from('HTTP/1.0 200 OK\r\n\r\nhello')), c.relay.send(3, 7, new EndMsg(6).encode())]));
  assert.equal(Buffer.concat(got.data).toString(), 'HTTP/1.0 200 OK\r\n\r\nhello');
  assert.equal(got.ended, null);
});

test('flow control: 1,000+ DATA cells, circuit SENDMEs are v1 with the digest tor expects, stream SENDMEs every 50', () => {
  const h = harness();
  handshake(h);
  const c = openCircuit(h);
  created(h, c);
  const got = dirStream(c.circuit, 1);
  c.relay.receive(h.drain(LP)[0]!.payload);
  h.channel.handleBytes(c.relay.send(4, 1, new Uint8Array(0)));
  let circuitSendmes = 0;
  let streamSendmes = 0;
  let streamWindow = 500;
  let circuitWindow = 1000;
  for (let i = 0; i < 2500; i++) {
    assert.ok(streamWindow > 0 && circuitWindow > 0, 'the relay never exceeds its windows in this script');
    h.channel.handleBytes(c.relay.send(2, 1, new Uint8Array(498).fill(i & 0xff)));
    streamWindow--;
    circuitWindow--;
    for (const frame of h.drain(LP)) {
      const msg = c.relay.receive(frame.payload);
      assert.equal(msg.command, 5);
      if (msg.streamId === 0) {
        const sendme = SendmeMsg.decode(msg.body);
        assert.equal(sendme.version, 1);
        const expected = c.relay.expectedSendmeDigests.shift();
        assert.ok(expected, 'a circuit SENDME the relay expected');
        assert.deepEqual(Buffer.from(sendme.digest!), Buffer.from(expected));
        circuitWindow += 100;
        circuitSendmes++;
      } else {
        streamWindow += 50;
        streamSendmes++;
      }
    }
  }
  assert.equal(got.data.length, 2500);
  assert.equal(circuitSendmes, 25);
  assert.equal(streamSendmes, 50);
  assert.equal(c.circuit.state, 'open');
});

test('flow control: a paused consumer holds stream SENDMEs back; resume sends them', () => {
  const h = harness();
  handshake(h);
  const c = openCircuit(h);
  created(h, c);
  dirStream(c.circuit, 1, false);
  c.relay.receive(h.drain(LP)[0]!.payload);
  h.channel.handleBytes(c.relay.send(4, 1, new Uint8Array(0)));
  for (let i = 0; i < 60; i++) h.channel.handleBytes(c.relay.send(2, 1, new Uint8Array(100)));
  assert.equal(h.drain(LP).length, 0, 'no SENDME while the consumer is full');
  c.circuit.resumeStream(1);
  assert.equal(h.drain(LP).length, 1, 'one stream SENDME once it catches up');
});

test('faults: DATA beyond the stream window, a bad digest, inbound RELAY_EARLY, DESTROY, END mid-stream', () => {
  const setup = () => {
    const h = harness();
    handshake(h);
    const c = openCircuit(h);
    created(h, c);
    const got = dirStream(c.circuit, 1, false);
    c.relay.receive(h.drain(LP)[0]!.payload);
    h.channel.handleBytes(c.relay.send(4, 1, new Uint8Array(0)));
    return { h, c, got };
  };

  const overrun = setup();
  for (let i = 0; i < 501; i++) overrun.h.channel.handleBytes(overrun.c.relay.send(2, 1, new Uint8Array(1)));
  assert.ok(overrun.c.events.destroyed instanceof ProtocolError);
  assert.match(overrun.c.events.destroyed.message, /more DATA cells than its deliver window allows/);
  assert.ok(overrun.got.ended instanceof ProtocolError, 'the stream fails with the same error');

  const digest = setup();
  digest.h.channel.handleBytes(digest.c.relay.send(2, 1, new Uint8Array(5), { corruptDigest: true }));
  assert.equal(digest.c.events.destroyed?.code, 'E_BAD_CELL_AUTH');
  const destroyCell = digest.h.drain(LP).find((f) => f.command === 4);
  assert.equal(destroyCell?.payload[0], 1, 'DESTROY with reason PROTOCOL');

  const early = setup();
  early.h.channel.handleBytes(early.c.relay.send(2, 1, new Uint8Array(5), { early: true }));
  assert.match(early.c.events.destroyed!.message, /RELAY_EARLY/);

  const destroyed = setup();
  destroyed.h.channel.handleBytes(new DestroyCell(destroyed.c.circuit.circId, 5).pack(LP));
  assert.ok(destroyed.c.events.destroyed instanceof CircuitDestroyedError);
  assert.equal((destroyed.c.events.destroyed as CircuitDestroyedError).reason, 'RESOURCELIMIT');
  assert.equal((destroyed.c.events.destroyed as CircuitDestroyedError).by, 'relay');

  const ended = setup();
  ended.h.channel.handleBytes(ended.c.relay.send(3, 1, new EndMsg(12).encode()));
  assert.ok(ended.got.ended instanceof StreamClosedError);
  assert.equal((ended.got.ended as StreamClosedError).reason, 'CONNRESET');
  assert.equal(ended.c.circuit.state, 'open', 'END closes the stream, not the circuit');
});

test('channel: cells for unknown circuits and streams are dropped; PADDING_NEGOTIATE from a relay closes the channel', () => {
  const h = harness();
  handshake(h);
  const c = openCircuit(h);
  created(h, c);
  h.channel.handleBytes(new DestroyCell(0x80001234, 1).pack(LP));
  h.channel.handleBytes(c.relay.send(2, 99, new Uint8Array(3)));
  assert.equal(c.circuit.state, 'open');
  assert.equal(h.events.closed?.message, undefined, 'the channel stays open');
  h.channel.handleBytes(new PaddingNegotiateCell(2).pack(LP));
  assert.ok(h.events.closed instanceof ProtocolError);
  assert.ok(c.events.destroyed instanceof ProtocolError, 'its circuits fail with the channel');
});

test('regressions: unknown relay commands are dropped whatever their stream id; later VERSIONS are ignored', () => {
  const h = harness();
  handshake(h);
  const c = openCircuit(h);
  created(h, c);
  h.channel.handleBytes(c.relay.send(200, 5, new Uint8Array(3)));
  assert.equal(c.circuit.state, 'open', 'tor-spec 6.1: an unknown recognized command is dropped');
  assert.equal(c.circuit.counters.dropped, 1);
  h.channel.handleBytes(new VersionsCell([4, 5]).pack(2));
  assert.equal(h.events.closed?.message, undefined, 'tor-spec 4.1: later VERSIONS cells are ignored');
  assert.equal(c.circuit.state, 'open');
});

test('regressions: after a DESTROY, later calls fail with the relay\'s reason', () => {
  const h = harness();
  handshake(h);
  const c = openCircuit(h);
  created(h, c);
  h.channel.handleBytes(new DestroyCell(c.circuit.circId, 5).pack(LP));
  assert.throws(() => dirStream(c.circuit, 1), (err: unknown) => err instanceof CircuitDestroyedError && err.reason === 'RESOURCELIMIT' && err.by === 'relay');
});

test('regressions: a refused EXTEND2 leaves the crypto in step', () => {
  const h = harness();
  handshake(h);
  const c = openCircuit(h);
  created(h, c);
  // Use up the 8 RELAY_EARLY cells with EXTEND2s (the fake relay side just decrypts them).
  for (let i = 0; i < 8; i++) {
    c.circuit.sendRelay(0, 14, 0, new Uint8Array(10));
    assert.equal(c.relay.receive(h.drain(LP)[0]!.payload).command, 14);
  }
  assert.throws(() => c.circuit.sendRelay(0, 14, 0, new Uint8Array(10)), ProtocolError);
  assert.equal(h.drain(LP).length, 0, 'nothing was sent');
  c.circuit.sendRelay(0, 10, 0, new Uint8Array(0)); // a DROP after the refusal still decrypts
  assert.equal(c.relay.receive(h.drain(LP)[0]!.payload).command, 10);
});

test('regressions: a stream handle acts on its own stream only, not a later one with the same id', () => {
  const h = harness();
  handshake(h);
  const c = openCircuit(h);
  created(h, c);
  const ended: (OrportError | null)[] = [];
  const events = { connected: () => undefined, data: () => true, ended: (e: OrportError | null) => ended.push(e) };
  const first = c.circuit.openStream(1, { command: 13, encode: () => new Uint8Array(0) }, events);
  c.relay.receive(h.drain(LP)[0]!.payload);
  h.channel.handleBytes(c.relay.send(3, 1, new EndMsg(6).encode()));
  const second = c.circuit.openStream(1, { command: 13, encode: () => new Uint8Array(0) }, events);
  c.relay.receive(h.drain(LP)[0]!.payload);
  c.circuit.endStream(first); // the old handle: a no-op
  assert.ok(c.circuit.hasStream(1), 'the new stream 1 is still open');
  assert.equal(h.drain(LP).length, 0, 'no END was sent');
  c.circuit.endStream(second);
  assert.equal(c.circuit.hasStream(1), false);
  assert.equal(ended.length, 2);
});
