/**
 * Fuzzing the state machines: the channel and circuit machines (sans-I/O) driven through
 *
 *   - the real session captured from a tor 0.4.9 relay (test/vectors/session-testnet.json),
 *     mutated at the byte level (in the handshake, anywhere) and at the cell level (cells
 *     dropped, duplicated, swapped, retargeted, re-commanded, inserted), delivered in
 *     random chunks, with readers that keep up or not;
 *   - the captured handshake and CREATED_FAST, followed by random relay traffic that is
 *     correctly encrypted with the circuit's real keys (so it gets past the digest check
 *     into the message handling: any command, stream id, body, lying lengths, window
 *     overruns, RELAY_EARLY…), interleaved with random calls of the client API;
 *   - random cell sequences during the link handshake.
 *
 * The oracle: `handleBytes` never throws; the client API throws only our typed errors;
 * every error reported through the machines' events (channel closed, circuit destroyed,
 * stream ended) is an OrportError. The unmutated capture must complete.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  Address,
  AuthChallengeCell,
  CertsCell,
  Certificate,
  ChannelClosedError,
  LinkProtocol,
  NetinfoCell,
  OrportError,
  VersionsCell,
  VPaddingCell,
} from '../../src/index.js';
import { readFrame } from '../../src/codec/framing.js';
import { ChannelMachine } from '../../src/proto/channel.js';
import { BeginDirMsg, ConnectedMsg, EndMsg, SendmeMsg } from '../../src/codec/relaymsg.js';
import { RelaySideCircuit } from '../../src/testing/relayside.js';
import { replaySession, session, type ReplayOutcome } from '../support/session.js';
import { assertTyped, chunked, fuzz, mutated, typedOrNothing } from '../support/fuzz.js';

const FILE = import.meta.url;
const LP5 = LinkProtocol.of(5);

/** The capture split into cells (VERSIONS framed with a 2-byte circuit id, the rest with 4). */
function captureCells(): Uint8Array[] {
  const bytes = session.bytes();
  const out: Uint8Array[] = [];
  for (let at = 0, lp = LinkProtocol.of(2); at < bytes.length; lp = LP5) {
    const f = readFrame(bytes, at, lp);
    assert.ok(typeof f !== 'number', 'the capture holds whole cells');
    out.push(new Uint8Array(bytes.subarray(at, at + f.length))); // a copy: Buffer#slice would be a view
    at += f.length;
  }
  return out;
}
const cells = captureCells();
/** VERSIONS, CERTS, AUTH_CHALLENGE, NETINFO, CREATED_FAST. */
const PREFIX_CELLS = 5;
const handshakeBytes = Buffer.concat(cells.slice(0, 4));

/** The oracle over a replay's outcome. */
function checkOutcome(o: ReplayOutcome): void {
  assertTyped(o.channelError, 'the channel');
  assertTyped(o.circuitError, 'the circuit');
  for (const [i, s] of o.streams.entries()) assertTyped(s.ended, `stream ${i + 1}`);
  if (o.channelError) assert.equal(o.channel.state, 'closed');
  if (o.circuit && o.circuit.state === 'destroyed') assert.ok(o.circuitError, 'a destroyed circuit reported why');
  if (o.circuitError) for (const s of o.streams) if (s.ended === undefined && o.circuitOpened) assert.fail('a stream outlived its circuit');
}

function replay(chunks: Uint8Array[], paused: readonly boolean[] = [], verify = true): ReplayOutcome {
  // handleBytes must never throw: no typedOrNothing here.
  const o = replaySession(chunks, { consume: (id) => !paused[id - 1], verify });
  checkOutcome(o);
  return o;
}

test('the unmutated capture replays to three complete responses, in any chunking', () => {
  const o = replay(session.chunks());
  assert.equal(o.channelError, undefined);
  assert.ok(o.chain, 'the captured CERTS verify against the captured TLS certificate');
  assert.deepEqual(o.streams.map((s) => s.ended), [null, null, null]);
  assert.equal(o.handshake?.linkProtocol.version, 5);
  fuzz(FILE, 'session: unmutated, random chunks', fc.array(fc.nat(), { maxLength: 30 }), (cuts) => {
    const r = replay(chunked(session.bytes(), cuts));
    assert.deepEqual(r.streams.map((s) => s.ended), [null, null, null]);
  }, 0.2);
});

test('fuzz: session — byte mutations in the handshake', () => {
  const rest = Buffer.concat(cells.slice(4));
  fuzz(FILE, 'session: mutated handshake', fc.tuple(mutated(handshakeBytes, 4), fc.array(fc.nat(), { maxLength: 8 })), ([hs, cuts]) => {
    replay(chunked(Buffer.concat([hs, rest]), cuts));
  }, 3);
});

test('fuzz: session — byte mutations anywhere, slow readers', () => {
  const whole = session.bytes();
  fuzz(FILE, 'session: mutated bytes', fc.tuple(mutated(whole, 6), fc.array(fc.nat(), { maxLength: 8 }), fc.array(fc.boolean(), { minLength: 3, maxLength: 3 })), ([bytes, cuts, paused]) => {
    replay(chunked(bytes, cuts), paused, false);
  }, 3);
});

type CellOp =
  | { op: 'drop'; i: number }
  | { op: 'dup'; i: number }
  | { op: 'swap'; i: number; j: number }
  | { op: 'circ'; i: number; circId: number }
  | { op: 'command'; i: number; command: number }
  | { op: 'insert'; i: number; command: number; circ: boolean; payload: Uint8Array }
  | { op: 'cut'; i: number };

const cellOp: fc.Arbitrary<CellOp> = fc.oneof(
  fc.record({ op: fc.constant('drop' as const), i: fc.nat() }),
  fc.record({ op: fc.constant('dup' as const), i: fc.nat() }),
  fc.record({ op: fc.constant('swap' as const), i: fc.nat(), j: fc.nat() }),
  fc.record({ op: fc.constant('circ' as const), i: fc.nat(), circId: fc.oneof(fc.constant(0), fc.nat({ max: 0xffffffff })) }),
  fc.record({ op: fc.constant('command' as const), i: fc.nat(), command: fc.oneof(fc.constantFrom(0, 3, 4, 6, 7, 8, 9, 128, 129, 130), fc.nat({ max: 255 })) }),
  fc.record({ op: fc.constant('insert' as const), i: fc.nat(), command: fc.oneof(fc.constantFrom(3, 4, 6, 9, 2, 11, 12, 128), fc.nat({ max: 255 })), circ: fc.boolean(), payload: fc.uint8Array({ maxLength: 509 }) }),
  fc.record({ op: fc.constant('cut' as const), i: fc.nat() }),
);

/** Frames a cell with link protocol 5 (variable-length commands get a length field). */
function frame(circId: number, command: number, payload: Uint8Array): Uint8Array {
  const variable = command === 7 || command >= 128;
  const body = variable ? payload : Buffer.concat([payload.subarray(0, 509), Buffer.alloc(Math.max(0, 509 - payload.length))]);
  const head = Buffer.alloc(variable ? 7 : 5);
  head.writeUInt32BE(circId >>> 0, 0);
  head[4] = command;
  if (variable) head.writeUInt16BE(body.length, 5);
  return Buffer.concat([head, body]);
}

function applyCellOps(ops: readonly CellOp[]): Uint8Array[] {
  const list: Uint8Array[] = cells.map((c) => new Uint8Array(c));
  for (const o of ops) {
    if (list.length <= 1) break;
    // Keep VERSIONS first in most cases: the interesting part is after it.
    const i = 1 + (o.i % (list.length - 1));
    switch (o.op) {
      case 'drop':
        list.splice(i, 1);
        break;
      case 'dup':
        list.splice(i, 0, new Uint8Array(list[i]!));
        break;
      case 'swap': {
        const j = 1 + (o.j % (list.length - 1));
        [list[i], list[j]] = [list[j]!, list[i]!];
        break;
      }
      case 'circ':
        new DataView(list[i]!.buffer, list[i]!.byteOffset).setUint32(0, o.circId >>> 0);
        break;
      case 'command': {
        const c = list[i]!;
        const payload = c[4]! === 7 || c[4]! >= 128 ? c.subarray(7) : c.subarray(5);
        list[i] = frame(Buffer.from(c).readUInt32BE(0), o.command, payload);
        break;
      }
      case 'insert':
        list.splice(i, 0, frame(o.circ ? session.circId : 0x80000000 + (o.payload[0] ?? 0), o.command, o.payload));
        break;
      case 'cut':
        list.length = i;
        break;
    }
  }
  return list;
}

test('fuzz: session — cell-level mutations (drop, duplicate, swap, retarget, re-command, insert, cut)', () => {
  fuzz(FILE, 'session: mutated cells', fc.tuple(fc.array(cellOp, { minLength: 1, maxLength: 6 }), fc.array(fc.nat(), { maxLength: 6 }), fc.array(fc.boolean(), { minLength: 3, maxLength: 3 })), ([ops, cuts, paused]) => {
    replay(chunked(Buffer.concat(applyCellOps(ops)), cuts), paused);
  }, 3);
});

// -------------------------------------------------------------------------------------
// Random, correctly encrypted relay traffic on the captured circuit, with client calls.

type Action =
  | { a: 'relay'; command: number; streamId: number; body: Uint8Array; claimedLength?: number; early: boolean; corruptDigest: boolean; recognized?: number }
  | { a: 'burst'; streamId: number; n: number }
  | { a: 'raw'; command: number; circ: 'ours' | 'other' | 'zero'; payload: Uint8Array }
  | { a: 'open'; streamId: number }
  | { a: 'send'; streamId: number; n: number }
  | { a: 'end'; streamId: number }
  | { a: 'resume'; streamId: number }
  | { a: 'destroy' }
  | { a: 'newCircuit' }
  | { a: 'closeChannel' };

const streamIdArb = fc.oneof(fc.constantFrom(0, 1, 2, 3, 4), fc.nat({ max: 0xffff }));
const bodyArb = fc.oneof(
  fc.uint8Array({ maxLength: 498 }),
  fc.constantFrom(
    new ConnectedMsg().encode(),
    new ConnectedMsg(new Address('10.0.0.1'), 60).encode(),
    new EndMsg('DONE').encode(),
    new EndMsg('MISC').encode(),
    new EndMsg('EXITPOLICY', new Address('1.2.3.4'), 5).encode(),
    new SendmeMsg(0).encode(),
    new SendmeMsg(1, new Uint8Array(20)).encode(),
    Uint8Array.of(1, 0, 20),
    Uint8Array.of(2),
  ),
);
const actionArb: fc.Arbitrary<Action> = fc.oneof(
  {
    weight: 10,
    arbitrary: fc.record(
      {
        a: fc.constant('relay' as const),
        command: fc.oneof({ weight: 5, arbitrary: fc.constantFrom(2, 3, 4, 5, 10) }, { weight: 2, arbitrary: fc.nat({ max: 20 }) }, { weight: 1, arbitrary: fc.nat({ max: 255 }) }),
        streamId: streamIdArb,
        body: bodyArb,
        claimedLength: fc.option(fc.oneof(fc.nat({ max: 498 }), fc.nat({ max: 0xffff })), { nil: undefined, freq: 8 }),
        early: fc.nat({ max: 9 }).map((n) => n === 0),
        corruptDigest: fc.nat({ max: 9 }).map((n) => n === 0),
        recognized: fc.option(fc.nat({ max: 0xffff }), { nil: undefined, freq: 10 }),
      },
      { requiredKeys: ['a', 'command', 'streamId', 'body', 'early', 'corruptDigest'] },
    ),
  },
  { weight: 1, arbitrary: fc.record({ a: fc.constant('burst' as const), streamId: fc.constantFrom(1, 2, 3, 4), n: fc.integer({ min: 1, max: 620 }) }) },
  { weight: 2, arbitrary: fc.record({ a: fc.constant('raw' as const), command: fc.oneof(fc.constantFrom(0, 3, 4, 6, 7, 8, 9, 12, 128, 129), fc.nat({ max: 255 })), circ: fc.constantFrom('ours' as const, 'other' as const, 'zero' as const), payload: fc.uint8Array({ maxLength: 509 }) }) },
  { weight: 2, arbitrary: fc.record({ a: fc.constant('open' as const), streamId: streamIdArb }) },
  { weight: 2, arbitrary: fc.record({ a: fc.constant('send' as const), streamId: streamIdArb, n: fc.nat({ max: 3000 }) }) },
  { weight: 1, arbitrary: fc.record({ a: fc.constant('end' as const), streamId: streamIdArb }) },
  { weight: 1, arbitrary: fc.record({ a: fc.constant('resume' as const), streamId: streamIdArb }) },
  { weight: 1, arbitrary: fc.constant({ a: 'destroy' as const }) },
  { weight: 1, arbitrary: fc.constant({ a: 'newCircuit' as const }) },
  { weight: 1, arbitrary: fc.constant({ a: 'closeChannel' as const }) },
);

/** The captured CREATED_FAST's Y: with the capture's X it gives the circuit's real keys. */
const capturedY = cells[4]!.subarray(5, 25);

function drive(actions: readonly Action[], paused: readonly boolean[]): void {
  const o = replaySession(cells.slice(0, PREFIX_CELLS), { consume: (id) => !paused[id % paused.length] });
  checkOutcome(o);
  assert.ok(o.circuitOpened && o.circuit, 'the captured prefix opens the circuit');
  const { channel, circuit } = o;
  const relay = new RelaySideCircuit(circuit.circId, LP5);
  relay.createdFast(session.x, { y: capturedY }); // the relay's half of the same keys
  const errors: unknown[] = [];
  const streamEvents = (id: number) => ({
    connected: () => undefined,
    data: () => !paused[id % paused.length],
    ended: (e: OrportError | null) => void errors.push(e),
  });
  for (const act of actions) {
    switch (act.a) {
      case 'relay':
        channel.handleBytes(relay.send(act.command, act.streamId, act.body, { claimedLength: act.claimedLength, early: act.early, corruptDigest: act.corruptDigest, recognized: act.recognized }));
        break;
      case 'burst':
        for (let i = 0; i < act.n && circuit.state === 'open'; i++) channel.handleBytes(relay.send(2, act.streamId, new Uint8Array(498)));
        break;
      case 'raw': {
        const circId = act.circ === 'ours' ? circuit.circId : act.circ === 'zero' ? 0 : 0x80000000 + (act.payload[0] ?? 1);
        channel.handleBytes(frame(circId, act.command, act.payload));
        break;
      }
      case 'open':
        typedOrNothing(() => circuit.openStream(act.streamId, new BeginDirMsg(), streamEvents(act.streamId)));
        break;
      case 'send':
        typedOrNothing(() => circuit.sendData(act.streamId, new Uint8Array(act.n)));
        break;
      case 'end':
        typedOrNothing(() => circuit.endStream(act.streamId));
        break;
      case 'resume':
        typedOrNothing(() => circuit.resumeStream(act.streamId));
        break;
      case 'destroy':
        typedOrNothing(() => circuit.destroy());
        break;
      case 'newCircuit':
        typedOrNothing(() => channel.newCircuit({ opened: () => undefined, destroyed: (e) => void errors.push(e) }).startCreateFast());
        break;
      case 'closeChannel':
        typedOrNothing(() => channel.close(new ChannelClosedError('local', 'closed by the test')));
        break;
    }
    checkOutcome(o);
    for (const e of errors) assertTyped(e, 'a stream or circuit');
  }
}

test('fuzz: circuit — random encrypted relay traffic with random client calls', () => {
  fuzz(FILE, 'circuit: random traffic and calls', fc.tuple(fc.array(actionArb, { minLength: 1, maxLength: 30 }), fc.array(fc.boolean(), { minLength: 1, maxLength: 4 })), ([actions, paused]) => drive(actions, paused), 5);
});

// -------------------------------------------------------------------------------------
// Random cells during the link handshake.

const handshakeCell = fc.oneof(
  fc.constant(new VersionsCell([3, 4, 5]).pack(2)),
  fc.array(fc.nat({ max: 0xffff }), { maxLength: 6 }).map((v) => new VersionsCell(v).pack(2)),
  fc.constant(new CertsCell([]).pack(5)),
  fc.array(fc.tuple(fc.nat({ max: 8 }), fc.uint8Array({ maxLength: 200 })), { maxLength: 6 }).map((cs) => new CertsCell(cs.map(([t, v]) => new Certificate(t, v))).pack(5)),
  fc.constant(cells[1]!),
  fc.constant(new AuthChallengeCell([1, 3]).pack(5)),
  fc.constant(new NetinfoCell(new Address('127.0.0.1'), [new Address('127.0.0.1')], new Date()).pack(5)),
  fc.nat({ max: 3000 }).map((n) => new VPaddingCell(n).pack(5)),
  fc.tuple(fc.nat({ max: 255 }), fc.nat({ max: 0xffffffff }), fc.uint8Array({ maxLength: 600 })).map(([cmd, circ, p]) => frame(circ, cmd, p)),
);

test('fuzz: channel — random cell sequences during the link handshake', () => {
  fuzz(FILE, 'channel: random handshakes', fc.tuple(fc.array(handshakeCell, { maxLength: 8 }), fc.array(fc.nat(), { maxLength: 6 }), fc.boolean()), ([list, cuts, verify]) => {
    let closed: unknown;
    let completed = 0;
    const channel = new ChannelMachine([3, 4, 5], { send: () => undefined }, {
      certs: verify ? () => typedOrNothing(() => undefined) : undefined,
      handshakeComplete: () => void completed++,
      closed: (e) => void (closed = e),
    }, { peerAddress: new Address('127.0.0.1') });
    channel.start();
    for (const chunk of chunked(Buffer.concat(list), cuts)) channel.handleBytes(chunk);
    assertTyped(closed, 'the channel');
    assert.ok(completed <= 1);
    if (completed) assert.ok(channel.state === 'open' || channel.state === 'closed');
  }, 3);
});
