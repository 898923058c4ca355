/**
 * Conflux I/O in the machines (proto/confluxlegs over proto/circuit, prop 329): a set of
 * two real CircuitMachines, each on its own ChannelMachine (as legs through distinct
 * guards are), each with a CREATE_FAST hop #1 and a congestion-controlled hop #2 (the
 * exit; joinConflux needs congestion control there), and the relays' side of every hop
 * from testing/relayside, so every cell is really encrypted, digested and recognized.
 *
 * The exit's side of the set is modelled here as tor 0.4.9's exit behaves (conflux.c
 * `conflux_decide_circ_for_send`, `conflux_note_cell_sent`): every multiplexed cell
 * (`conflux_should_multiplex`) takes the next sequence number of the leg it goes on;
 * moving to another leg first sends SWITCH on the new leg with the relative sequence
 * number prev.last_seq_sent − new.last_seq_sent, and the new leg's last_seq_sent becomes
 * the previous leg's. Each leg is a FIFO; which leg's next cell reaches the client first
 * is up to the test (legs of different latency).
 *
 * Happy paths: LINK on both legs with the set's nonce; `linked` only after both LINKEDs,
 * each answered with LINKED_ACK; a stream's cells spread over both legs, in any
 * interleaving, delivered in order exactly once (fast-check); circuit SENDMEs per leg on
 * the leg the DATA came by, with that leg's digest; SENDMEs held on leg 1 while leg 0's
 * consumer is behind; XON/XOFF by leg 1 reaching leg 0's stream.
 *
 * Fault rows (each: the typed error, `closed` reported once, every leg of the set
 * destroyed with a DESTROY on the wire, the set's streams ended with the error, nothing
 * queued, and a bystander circuit on each channel still carrying data): LINKED with a
 * wrong nonce, LINKED twice, LINK or LINKED_ACK from the exit, a multiplexed cell before
 * LINKED, a sequence number already delivered and one already queued from the other leg,
 * a full out-of-order queue (LimitError), a leg DESTROYed by the relay.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { CircuitDestroyedError, DestroyCell, KDF, LimitError, ProtocolError, type OrportError } from '../../src/index.js';
import { readFrame } from '../../src/codec/framing.js';
import { SendmeMsg } from '../../src/codec/relaymsg.js';
import { CloseReason } from '../../src/codec/datatype.js';
import type { ChannelMachine } from '../../src/proto/channel.js';
import type { CircuitMachine, StreamHandle } from '../../src/proto/circuit.js';
import { ConfluxLegs, type ConfluxLegsOptions } from '../../src/proto/confluxlegs.js';
import {
  ConfluxLinkMsg,
  ConfluxLinkedMsg,
  ConfluxSwitchMsg,
  ConfluxUx,
  RELAY_COMMAND_CONFLUX_LINK,
  RELAY_COMMAND_CONFLUX_LINKED,
  RELAY_COMMAND_CONFLUX_LINKED_ACK,
  RELAY_COMMAND_CONFLUX_SWITCH,
} from '../../src/proto/conflux.js';
import { RELAY_COMMAND_XOFF, RELAY_COMMAND_XON, XoffMsg, XonMsg } from '../../src/proto/xonxoff.js';
import { RelaySideCircuit, type RelayMessageIn } from '../../src/testing/relayside.js';
import { LP, openChannel } from '../support/channel.js';

const RUNS = Math.min(Number(process.env.ORPORT_FUZZ_RUNS ?? 100), 300);
const SENDME_INC = 31;
const NONCE = new Uint8Array(32).map((_, i) => 0xa0 ^ i);
const DATA = 2;
const CONNECTED = 4;
const CONNECTED_BODY = Uint8Array.of(127, 0, 0, 1, 0, 0, 1, 44);
const BEGIN = { command: 1, encode: () => new TextEncoder().encode('127.0.0.1:80\0') };
/** tor 0.4.9 conflux.c conflux_should_multiplex: BEGIN, DATA, END, CONNECTED, RESOLVE, RESOLVED, XOFF, XON. */
const TOR_MULTIPLEXED = new Set([1, 2, 3, 4, 11, 12, RELAY_COMMAND_XOFF, RELAY_COMMAND_XON]);

// ---------------------------------------------------------------------------------------
// the harness

/** One channel (as to one guard) and what the client sent on it, by circuit. */
class Wire {
  readonly sent: Uint8Array[] = [];
  readonly channel: ChannelMachine;
  /** The relays' side of each circuit's hop #1 (hop #2 chained after it). */
  readonly guards = new Map<number, RelaySideCircuit>();
  private readonly inbox = new Map<number, RelayMessageIn[]>();
  /** DESTROY cells the client sent, by circuit: their reasons. */
  readonly destroys = new Map<number, number[]>();

  constructor() {
    this.channel = openChannel(this.sent);
  }

  /** What the client sent on `circId` since the last call, as the relays read it. */
  take(circId: number): RelayMessageIn[] {
    const bytes = Buffer.concat(this.sent.splice(0));
    for (let at = 0; at < bytes.length; ) {
      const f = readFrame(bytes, at, LP);
      assert.ok(typeof f !== 'number', 'a whole cell');
      at += f.length;
      if (f.command === 4) {
        this.destroys.set(f.circId, [...(this.destroys.get(f.circId) ?? []), f.payload[0]!]);
        continue;
      }
      assert.ok(f.command === 3 || f.command === 9, `a RELAY cell, not command ${f.command}`);
      const guard = this.guards.get(f.circId);
      assert.ok(guard, `a cell on circuit ${f.circId}, which the relays know`);
      const list = this.inbox.get(f.circId) ?? [];
      list.push(guard.receive(f.payload.slice(), f.command));
      this.inbox.set(f.circId, list);
    }
    const out = this.inbox.get(circId) ?? [];
    this.inbox.delete(circId);
    return out;
  }

  /** Builds a circuit: CREATE_FAST hop #1, hop #2 'exit' with congestion control (sendme_inc 31). */
  circuit(): Circ {
    const destroyed: OrportError[] = [];
    const circuit = this.channel.newCircuit({ opened: () => undefined, destroyed: (e) => destroyed.push(e) });
    circuit.startCreateFast();
    const create = readFrame(Buffer.concat(this.sent.splice(0)), 0, LP);
    assert.ok(typeof create !== 'number', 'CREATE_FAST went out whole');
    const guard = new RelaySideCircuit(circuit.circId, LP);
    this.channel.handleBytes(guard.createdFast(create.payload.subarray(0, 20)));
    const keys = KDF.fromValue(randomBytes(40));
    const exit = new RelaySideCircuit(circuit.circId, LP);
    exit.accept(keys);
    guard.attach(exit);
    circuit.addHop(keys, 'exit', SENDME_INC);
    this.guards.set(circuit.circId, guard);
    return { wire: this, circuit, exit, destroyed, take: () => this.take(circuit.circId) };
  }
}

interface Circ {
  wire: Wire;
  circuit: CircuitMachine;
  /** The exit's side of hop #2. */
  exit: RelaySideCircuit;
  destroyed: OrportError[];
  take(): RelayMessageIn[];
}

/** A stream's view: what it got, in order. */
interface Got {
  chunks: Uint8Array[];
  connected: number;
  ended: (OrportError | null)[];
  writable: number;
}

function openStream(c: Circ, buffered: () => number = () => 0): { handle: StreamHandle; got: Got } {
  const got: Got = { chunks: [], connected: 0, ended: [], writable: 0 };
  const handle = c.circuit.openStream(c.circuit.nextStreamId()!, BEGIN, {
    connected: () => got.connected++,
    data: (d) => (got.chunks.push(d.slice()), true),
    ended: (e) => got.ended.push(e),
    writable: () => got.writable++,
    buffered,
  });
  return { handle, got };
}

/**
 * The exit's half of the set, as tor 0.4.9's exit sends: per-leg last_seq_sent, SWITCH
 * (relative) on every move to another leg, cells queued per leg until `flush` hands them
 * to the client.
 */
class Exit {
  readonly lastSeqSent: number[];
  current = 0;
  readonly queues: Uint8Array[][];
  /** DATA cells the exit sent on each leg, and the digest of each sendme_inc-th (what that leg's SENDMEs must carry). */
  readonly dataByLeg: number[];
  readonly sendmeDigests: Uint8Array[][];
  /** Cells the exit sent on each leg (SWITCH and LINKED included). */
  readonly cellsByLeg: number[];

  constructor(private readonly legs: readonly Circ[]) {
    this.lastSeqSent = legs.map(() => 0);
    this.queues = legs.map(() => []);
    this.dataByLeg = legs.map(() => 0);
    this.sendmeDigests = legs.map(() => []);
    this.cellsByLeg = legs.map(() => 0);
  }

  /** Sends a relay message on `leg` as tor's exit would (SWITCH first when the set moves there). */
  send(leg: number, command: number, streamId: number, body: Uint8Array): void {
    if (TOR_MULTIPLEXED.has(command)) {
      if (leg !== this.current) {
        const rel = this.lastSeqSent[this.current]! - this.lastSeqSent[leg]!;
        this.raw(leg, RELAY_COMMAND_CONFLUX_SWITCH, 0, new ConfluxSwitchMsg(rel).encode());
        this.lastSeqSent[leg] = this.lastSeqSent[this.current]!;
        this.current = leg;
      }
      this.lastSeqSent[leg]!++;
    }
    this.raw(leg, command, streamId, body);
  }

  /** Queues a cell on `leg` with no sequence bookkeeping (LINKED, faults). */
  raw(leg: number, command: number, streamId: number, body: Uint8Array): void {
    const side = this.legs[leg]!.exit;
    this.queues[leg]!.push(side.send(command, streamId, body));
    this.cellsByLeg[leg]!++;
    if (command === DATA && ++this.dataByLeg[leg]! % SENDME_INC === 0) this.sendmeDigests[leg]!.push(side.lastDigest!.slice());
  }

  /** Hands the client up to `n` queued cells of `leg` (default all), in that leg's order. */
  flush(leg: number, n = Infinity): void {
    const q = this.queues[leg]!;
    for (let i = 0; i < n && q.length > 0; i++) this.legs[leg]!.wire.channel.handleBytes(q.shift()!);
  }

  flushAll(): void {
    this.legs.forEach((_, i) => this.flush(i));
  }

  /** Every leg answers LINKED with `nonce` (default the set's). */
  linked(nonce = NONCE): void {
    this.legs.forEach((_, i) => this.raw(i, RELAY_COMMAND_CONFLUX_LINKED, 0, new ConfluxLinkedMsg(nonce, 0, 0, ConfluxUx.NO_OPINION).encode()));
  }
}

interface SetHarness {
  wires: Wire[];
  legs: Circ[];
  /** A circuit on each wire that is not in the set. */
  bystanders: Circ[];
  set: ConfluxLegs;
  exit: Exit;
  events: { linked: number; closed: OrportError[] };
}

/** Two legs on two channels, a bystander circuit on each, the set started (LINK sent, read off the wire). */
function setup(options: ConfluxLegsOptions = {}): SetHarness {
  const wires = [new Wire(), new Wire()];
  const legs = wires.map((w) => w.circuit());
  const bystanders = wires.map((w) => w.circuit());
  const events = { linked: 0, closed: [] as OrportError[] };
  const set = new ConfluxLegs(legs.map((l) => l.circuit), NONCE, { linked: () => events.linked++, closed: (e) => events.closed.push(e) }, options);
  set.start();
  return { wires, legs, bystanders, set, exit: new Exit(legs), events };
}

/** Set up and linked (LINK and LINKED_ACK read off the wire), with a stream on leg 0 that got CONNECTED (by leg 0). */
function linkedWithStream(options: ConfluxLegsOptions = {}, buffered?: () => number) {
  const h = setup(options);
  h.exit.linked();
  h.exit.flushAll();
  assert.equal(h.events.linked, 1);
  const s = openStream(h.legs[0]!, buffered);
  h.exit.send(0, CONNECTED, s.handle.id, CONNECTED_BODY);
  h.exit.flush(0);
  assert.equal(s.got.connected, 1);
  for (const l of h.legs) l.take();
  return { ...h, stream: s };
}

/** A distinct body for the i-th DATA cell (its index, then a pattern; lengths vary). */
function body(i: number): Uint8Array {
  const b = new Uint8Array(1 + (i * 37) % 497);
  b[0] = i & 0xff;
  for (let j = 1; j < b.length; j++) b[j] = (i * 31 + j) & 0xff;
  return b;
}

const concat = (chunks: readonly Uint8Array[]) => Buffer.concat(chunks);

/** The bystander circuits still open, and one carries a stream's CONNECTED and DATA. */
function bystandersUnaffected(h: SetHarness): void {
  for (const [i, b] of h.bystanders.entries()) {
    assert.equal(h.wires[i]!.channel.state, 'open', `channel ${i} is open`);
    assert.equal(b.circuit.state, 'open', `the bystander on channel ${i} is open`);
    assert.deepEqual(b.destroyed, []);
    const s = openStream(b);
    b.wire.channel.handleBytes(b.exit.send(CONNECTED, s.handle.id, CONNECTED_BODY));
    b.wire.channel.handleBytes(b.exit.send(DATA, s.handle.id, body(7)));
    assert.deepEqual(concat(s.got.chunks), Buffer.from(body(7)), `the bystander on channel ${i} carries data`);
    assert.ok(b.take().some((m) => m.command === 1), 'its BEGIN went out');
  }
}

/**
 * The set was torn down with an error of `cls`: reported once, every leg destroyed with a
 * DESTROY on the wire (the leg at fault: RESOURCELIMIT for a LimitError, as tor's conflux.c
 * for a full out-of-order queue, else PROTOCOL; the others: FINISHED, as the set closes
 * them), `streams` ended with that error, nothing queued, the bystanders untouched.
 */
function tornDown<E extends OrportError>(h: SetHarness, cls: abstract new (...args: never[]) => E, message: RegExp, fault: { leg: number; by: 'client' | 'relay' }, streams: Got[] = []): E {
  assert.equal(h.events.closed.length, 1, 'closed reported once');
  const error = h.events.closed[0]!;
  assert.ok(error instanceof cls, `expected ${cls.name}, got ${error.name}: ${error.message}`);
  assert.match(error.message, message);
  assert.ok(h.set.isClosed, 'the set is closed');
  assert.equal(h.set.set.queued, 0, 'nothing held in the out-of-order queue');
  for (const [i, leg] of h.legs.entries()) {
    assert.equal(leg.circuit.state, 'destroyed', `leg ${i} is destroyed`);
    assert.equal(leg.destroyed.length, 1, `leg ${i}: destroyed once`);
    assert.equal(leg.circuit.streamCount, 0, `leg ${i} holds no stream`);
    assert.ok(![...leg.wire.channel.openCircuits()].includes(leg.circuit), `leg ${i} left its channel`);
    leg.take();
    const destroys = leg.wire.destroys.get(leg.circuit.circId) ?? [];
    if (i !== fault.leg) assert.deepEqual(destroys, [CloseReason.toInt('FINISHED')], `leg ${i}: closed by the set (DESTROY, FINISHED)`);
    else if (fault.by === 'relay') assert.deepEqual(destroys, [], `leg ${i}: no DESTROY back for the relay's own`);
    else {
      const expected: string = error instanceof LimitError ? 'RESOURCELIMIT' : 'PROTOCOL';
      assert.deepEqual(destroys, [CloseReason.toInt(expected)], `leg ${i}: DESTROY (${expected}) for its violation`);
    }
  }
  for (const got of streams) {
    assert.equal(got.ended.length, 1, 'the stream ended once');
    assert.equal(got.ended[0], error, 'with the set’s error');
  }
  bystandersUnaffected(h);
  return error as E;
}

// ---------------------------------------------------------------------------------------
// linking

test('LINK goes out on both legs, to the exit, with the one nonce and sequence numbers 0', () => {
  const h = setup();
  const links = h.legs.map((l) => l.take());
  for (const [i, msgs] of links.entries()) {
    assert.deepEqual(msgs.map((m) => m.command), [RELAY_COMMAND_CONFLUX_LINK], `leg ${i}: one LINK`);
    const m = msgs[0]!;
    assert.equal(m.hop, 1, 'recognized by hop #2, the exit');
    assert.equal(m.streamId, 0);
    const link = ConfluxLinkMsg.decode(m.body);
    assert.deepEqual([...link.nonce], [...NONCE], `leg ${i}: the set's nonce`);
    assert.deepEqual([link.lastSeqnoSent, link.lastSeqnoRecv, link.desiredUx], [0, 0, ConfluxUx.HIGH_THROUGHPUT]);
  }
  assert.equal(h.events.linked, 0);
  assert.deepEqual([h.set.set.state(0), h.set.set.state(1)], ['linkSent', 'linkSent']);
});

test('linked fires only once every leg answered LINKED, and each LINKED is answered with LINKED_ACK on its leg', () => {
  const h = setup({ desiredUx: ConfluxUx.LOW_MEM_LATENCY });
  assert.equal(ConfluxLinkMsg.decode(h.legs[1]!.take()[0]!.body).desiredUx, ConfluxUx.LOW_MEM_LATENCY, 'the option reaches LINK');
  h.legs[0]!.take();
  h.exit.linked();
  h.exit.flush(1);
  assert.equal(h.events.linked, 0, 'one leg of two: not yet');
  assert.deepEqual(h.legs[1]!.take().map((m) => [m.command, m.hop, m.body.length]), [[RELAY_COMMAND_CONFLUX_LINKED_ACK, 1, 0]], 'LINKED_ACK on leg 1');
  assert.deepEqual(h.legs[0]!.take(), [], 'nothing on leg 0 yet');
  h.exit.flush(0);
  assert.equal(h.events.linked, 1, 'both: linked');
  assert.deepEqual(h.legs[0]!.take().map((m) => [m.command, m.hop]), [[RELAY_COMMAND_CONFLUX_LINKED_ACK, 1]], 'LINKED_ACK on leg 0');
  assert.ok(h.set.set.linked, 'the set is linked');
  assert.equal(h.events.closed.length, 0);
  h.set.close();
  assert.equal(h.events.closed.length, 1);
  assert.ok(h.events.closed[0] instanceof CircuitDestroyedError, 'closed by us: CircuitDestroyedError');
  assert.ok(h.legs.every((l) => l.circuit.state === 'destroyed'), 'every leg destroyed');
  h.set.close();
  assert.equal(h.events.closed.length, 1, 'close is idempotent');
});

// ---------------------------------------------------------------------------------------
// ordering

test('DATA spread over both legs by the exit (SWITCH relative on the new leg) and arriving interleaved is delivered in order, once', () => {
  const h = linkedWithStream();
  const id = h.stream.handle.id;
  // The exit: seq 2-4 by leg 1 (SWITCH 1 first: CONNECTED was seq 1, by leg 0), 5-6 by leg 0 (SWITCH 3), 7-9 by leg 1 (SWITCH 2).
  const plan = [1, 1, 1, 0, 0, 1, 1, 1];
  plan.forEach((leg, i) => h.exit.send(leg, DATA, id, body(i)));
  assert.deepEqual(h.exit.cellsByLeg, [3 + 2 /* LINKED, CONNECTED, SWITCH, 2 DATA */, 1 + 2 + 6 /* LINKED, 2 SWITCH, 6 DATA */]);
  h.exit.flush(0); // leg 0 is faster: 4-5 come first and wait
  assert.equal(h.stream.got.chunks.length, 0, 'seq 5 and 6 wait for 2-4');
  assert.equal(h.set.set.queued, 2);
  h.exit.flush(1, 2); // SWITCH, DATA 1 → delivered
  assert.equal(h.stream.got.chunks.length, 1);
  h.exit.flush(1);
  assert.deepEqual(concat(h.stream.got.chunks), concat(plan.map((_, i) => body(i))), 'every byte in order');
  assert.equal(h.stream.got.chunks.length, plan.length, 'each cell once');
  assert.equal(h.set.set.queued, 0);
  assert.equal(h.set.set.delivered, 1 + plan.length);
  assert.deepEqual(h.set.cellsByLeg, [1 + 2, 6], 'multiplexed cells by the leg they came by');
  assert.deepEqual([h.legs[0]!.circuit.counters.dataIn, h.legs[1]!.circuit.counters.dataIn], [2, 6], 'DATA counted on the leg it came by');
  assert.ok(h.legs.every((l) => l.circuit.state === 'open'), 'both legs open');
  assert.deepEqual(h.events.closed, []);
});

test('property: any split of a stream over the legs, any arrival interleaving: in order, exactly once, nothing left queued', () => {
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 0, max: 1 }), { minLength: 1, maxLength: 120 }),
      fc.array(fc.integer({ min: 0, max: 1 }), { minLength: 0, maxLength: 400 }),
      fc.integer({ min: 0, max: 1 }),
      (plan, arrivals, connectedLeg) => {
        const h = setup();
        h.exit.linked();
        h.exit.flushAll();
        const s = openStream(h.legs[0]!);
        h.exit.send(connectedLeg, CONNECTED, s.handle.id, CONNECTED_BODY);
        plan.forEach((leg, i) => h.exit.send(leg, DATA, s.handle.id, body(i)));
        for (const leg of arrivals) h.exit.flush(h.exit.queues[leg]!.length > 0 ? leg : 1 - leg, 1);
        h.exit.flushAll();
        assert.equal(s.got.connected, 1);
        assert.deepEqual(concat(s.got.chunks), concat(plan.map((_, i) => body(i))));
        assert.equal(s.got.chunks.length, plan.length);
        assert.equal(h.set.set.queued, 0);
        assert.equal(h.set.set.delivered, plan.length + 1);
        assert.deepEqual(h.events.closed, []);
        assert.deepEqual(s.got.ended, []);
      },
    ),
    { numRuns: RUNS },
  );
});

test('END by leg 1 after DATA by leg 0 is delivered after that DATA (the stream ends once, with all its bytes)', () => {
  const h = linkedWithStream();
  const id = h.stream.handle.id;
  h.exit.send(0, DATA, id, body(1));
  h.exit.send(1, 3, id, Uint8Array.of(6)); // END DONE, by leg 1 (SWITCH 2)
  h.exit.flush(1);
  assert.deepEqual(h.stream.got.ended, [], 'END waits for the DATA before it');
  h.exit.flush(0);
  assert.deepEqual(concat(h.stream.got.chunks), Buffer.from(body(1)));
  assert.deepEqual(h.stream.got.ended, [null], 'then END (DONE)');
  assert.equal(h.legs[0]!.circuit.streamCount, 0);
});

// ---------------------------------------------------------------------------------------
// circuit-level accounting stays per leg

test('circuit SENDMEs go out on the leg the DATA came by, every sendme_inc cells of that leg, with that leg’s digest', () => {
  const h = linkedWithStream();
  const id = h.stream.handle.id;
  // 62 DATA by leg 1 and 31 by leg 0, alternating in runs of 31 (the stream gets 93).
  for (const leg of [1, 0, 1]) for (let i = 0; i < SENDME_INC; i++) h.exit.send(leg, DATA, id, body(i));
  h.exit.flush(1);
  h.exit.flush(0);
  assert.equal(h.stream.got.chunks.length, 3 * SENDME_INC);
  const sendmes = h.legs.map((l) => l.take().filter((m) => m.command === 5));
  assert.deepEqual(sendmes.map((s) => s.length), [1, 2], 'leg 0: one SENDME for its 31; leg 1: two for its 62');
  for (const [leg, list] of sendmes.entries()) {
    for (const [k, m] of list.entries()) {
      assert.equal(m.streamId, 0, 'a circuit SENDME');
      assert.equal(m.hop, 1, 'to the exit');
      const sendme = SendmeMsg.decode(m.body);
      assert.equal(sendme.version, 1);
      assert.deepEqual([...sendme.digest!], [...h.exit.sendmeDigests[leg]![k]!], `leg ${leg} SENDME ${k + 1} carries that leg's digest`);
    }
  }
  assert.deepEqual(h.events.closed, []);
});

test('SENDMEs of leg 1 are held while leg 0’s consumer is far behind, and sent once it drains', () => {
  let buffered = 0;
  const h = linkedWithStream({}, () => buffered);
  const id = h.stream.handle.id;
  buffered = 4_000_000;
  for (let i = 0; i < SENDME_INC; i++) h.exit.send(1, DATA, id, body(i));
  h.exit.flush(1);
  assert.equal(h.legs[1]!.take().filter((m) => m.command === 5).length, 0, 'held on leg 1');
  assert.equal(h.legs[1]!.circuit.counters.sendmesHeld, 1);
  buffered = 0;
  h.legs[0]!.circuit.streamDrained(h.stream.handle, 4_000_000, 0);
  const out = h.legs[1]!.take().filter((m) => m.command === 5);
  assert.equal(out.length, 1, 'released on leg 1');
  assert.deepEqual([...SendmeMsg.decode(out[0]!.body).digest!], [...h.exit.sendmeDigests[1]![0]!]);
  assert.deepEqual(h.events.closed, []);
});

test('SENDMEs are held on every leg while holdAt cells wait out of order, and sent once the gap fills', () => {
  const h = linkedWithStream({ holdAt: 4 });
  const id = h.stream.handle.id;
  h.exit.send(0, DATA, id, body(0)); // stays on the wire of leg 0: the cells after it wait
  for (let i = 1; i <= SENDME_INC; i++) h.exit.send(1, DATA, id, body(i));
  h.exit.flush(1);
  assert.equal(h.set.set.queued, SENDME_INC);
  assert.equal(h.legs[1]!.take().filter((m) => m.command === 5).length, 0, 'leg 1 holds its SENDME while the queue is long');
  assert.equal(h.legs[1]!.circuit.counters.sendmesHeld, 1);
  h.exit.flush(0);
  assert.equal(h.set.set.queued, 0);
  assert.deepEqual(concat(h.stream.got.chunks), concat([...Array(SENDME_INC + 1).keys()].map(body)), 'in order once the gap filled');
  const out = h.legs[1]!.take().filter((m) => m.command === 5);
  assert.equal(out.length, 1, 'released on leg 1');
  assert.deepEqual([...SendmeMsg.decode(out[0]!.body).digest!], [...h.exit.sendmeDigests[1]![0]!]);
  assert.deepEqual(h.events.closed, []);
});

test('XOFF and XON by leg 1 reach leg 0’s stream: its packaging stops, then resumes (sent by leg 0)', () => {
  const h = linkedWithStream();
  const id = h.stream.handle.id;
  const leg0 = h.legs[0]!.circuit;
  h.exit.send(0, DATA, id, body(0));
  h.exit.send(1, RELAY_COMMAND_XOFF, id, new XoffMsg().encode());
  h.exit.flushAll();
  assert.equal(leg0.counters.xoffsIn, 1, 'XOFF handled by leg 0');
  assert.equal(h.legs[1]!.circuit.counters.xoffsIn, 0);
  assert.equal(leg0.sendData(h.stream.handle, new Uint8Array(498)), 0, 'XOFF: nothing packaged');
  const writable = h.stream.got.writable;
  h.exit.send(1, RELAY_COMMAND_XON, id, new XonMsg(0).encode());
  h.exit.flush(1);
  assert.equal(leg0.counters.xonsIn, 1);
  assert.ok(h.stream.got.writable > writable, 'writable again');
  assert.equal(leg0.sendData(h.stream.handle, new Uint8Array(498)), 498, 'XON: packaging again');
  assert.deepEqual(h.legs[0]!.take().filter((m) => m.command === DATA).length, 1, 'our DATA goes by leg 0');
  assert.deepEqual(h.legs[1]!.take(), []);
  assert.ok(h.legs.every((l) => l.circuit.state === 'open'), 'both legs open');
});

test('tor’s exit sequences its XON/XOFF (conflux_should_multiplex): DATA after an XOFF/XON and a SWITCH still arrives', () => {
  const h = linkedWithStream();
  const id = h.stream.handle.id;
  h.exit.send(0, DATA, id, body(0));
  h.exit.send(0, RELAY_COMMAND_XOFF, id, new XoffMsg().encode());
  h.exit.send(0, RELAY_COMMAND_XON, id, new XonMsg(0).encode());
  h.exit.send(1, DATA, id, body(1));
  h.exit.flushAll();
  assert.deepEqual(concat(h.stream.got.chunks), concat([body(0), body(1)]));
  assert.equal(h.set.set.queued, 0);
});

// ---------------------------------------------------------------------------------------
// fault rows

test('fault: LINKED with a wrong nonce is a ProtocolError (tor closes the circuit); the set is never linked, every leg destroyed', () => {
  const h = setup();
  h.exit.raw(0, RELAY_COMMAND_CONFLUX_LINKED, 0, new ConfluxLinkedMsg(NONCE, 0, 0, ConfluxUx.NO_OPINION).encode());
  const wrong = NONCE.slice();
  wrong[31]! ^= 1;
  h.exit.raw(1, RELAY_COMMAND_CONFLUX_LINKED, 0, new ConfluxLinkedMsg(wrong, 0, 0, ConfluxUx.NO_OPINION).encode());
  h.exit.flushAll();
  assert.equal(h.events.linked, 0);
  const error = tornDown(h, ProtocolError, /conflux leg 1 \(circuit \d+, hop #2 \([a-zA-Z]+\)\): LINKED nonce does not match/, { leg: 1, by: 'client' });
  assert.equal(h.legs[1]!.destroyed[0], error, 'the leg at fault reports the violation');
  assert.equal(h.legs[0]!.destroyed[0], error, 'the other leg the same error');
});

test('fault: a second LINKED on a leg is a ProtocolError (tor: "already linked. Closing circuit")', () => {
  const h = linkedWithStream();
  h.exit.raw(0, RELAY_COMMAND_CONFLUX_LINKED, 0, new ConfluxLinkedMsg(NONCE, 0, 0, ConfluxUx.NO_OPINION).encode());
  h.exit.flush(0);
  tornDown(h, ProtocolError, /conflux leg 0 \(circuit \d+, hop #2 \([a-zA-Z]+\)\): expected no LINKED in state linked/, { leg: 0, by: 'client' }, [h.stream.got]);
});

test('fault: LINKED twice on one leg before the other answered', () => {
  const h = setup();
  h.exit.raw(1, RELAY_COMMAND_CONFLUX_LINKED, 0, new ConfluxLinkedMsg(NONCE, 0, 0, ConfluxUx.NO_OPINION).encode());
  h.exit.raw(1, RELAY_COMMAND_CONFLUX_LINKED, 0, new ConfluxLinkedMsg(NONCE, 0, 0, ConfluxUx.NO_OPINION).encode());
  h.exit.flush(1);
  assert.equal(h.events.linked, 0);
  tornDown(h, ProtocolError, /conflux leg 1 \(circuit \d+, hop #2 \([a-zA-Z]+\)\): expected no LINKED in state linked/, { leg: 1, by: 'client' });
});

for (const [command, name] of [[RELAY_COMMAND_CONFLUX_LINK, 'LINK'], [RELAY_COMMAND_CONFLUX_LINKED_ACK, 'LINKED_ACK']] as const) {
  test(`fault: ${name} from the exit is a ProtocolError (tor: only a client sends it; "on an origin circuit. Closing")`, () => {
    const h = linkedWithStream();
    const b = command === RELAY_COMMAND_CONFLUX_LINK ? new ConfluxLinkMsg(NONCE, 0, 0, ConfluxUx.NO_OPINION).encode() : new Uint8Array(0);
    h.exit.raw(1, command, 0, b);
    h.exit.flush(1);
    tornDown(h, ProtocolError, new RegExp(`conflux leg 1 \\(circuit ${h.legs[1]!.circuit.circId}, hop #2 \\(exit\\)\\): sent relay command ${command}`), { leg: 1, by: 'client' }, [h.stream.got]);
  });
}

test('fault: a multiplexed DATA before LINKED is a ProtocolError', () => {
  const h = setup();
  h.exit.raw(0, RELAY_COMMAND_CONFLUX_LINKED, 0, new ConfluxLinkedMsg(NONCE, 0, 0, ConfluxUx.NO_OPINION).encode());
  h.exit.flush(0);
  h.exit.raw(1, DATA, 1, body(0));
  h.exit.flush(1);
  assert.equal(h.events.linked, 0);
  tornDown(h, ProtocolError, /conflux leg 1 \(circuit \d+, hop #2 \([a-zA-Z]+\)\): multiplexed cell on a leg that is linkSent, expected linked/, { leg: 1, by: 'client' });
});

test('fault: a sequence number already delivered (leg 1 sends seq 1 again, no SWITCH) is a ProtocolError; the stream ends with it', () => {
  const h = linkedWithStream(); // CONNECTED was seq 1, by leg 0
  h.exit.raw(1, DATA, h.stream.handle.id, body(0));
  h.exit.flush(1);
  assert.deepEqual(h.stream.got.chunks, [], 'not delivered');
  tornDown(h, ProtocolError, /conflux leg 1 \(circuit \d+, hop #2 \([a-zA-Z]+\)\): cell with sequence number 1, expected above 1 \(already delivered\)/, { leg: 1, by: 'client' }, [h.stream.got]);
});

test('fault: both legs carrying the same waiting sequence number is a ProtocolError', () => {
  const h = linkedWithStream();
  const id = h.stream.handle.id;
  // seq 2 is missing; both legs claim seq 3.
  for (const leg of [0, 1]) {
    h.exit.raw(leg, RELAY_COMMAND_CONFLUX_SWITCH, 0, new ConfluxSwitchMsg(leg === 0 ? 1 : 2).encode());
    h.exit.raw(leg, DATA, id, body(leg));
  }
  h.exit.flush(0);
  assert.equal(h.set.set.queued, 1, 'seq 3 waits');
  h.exit.flush(1);
  assert.deepEqual(h.stream.got.chunks, []);
  tornDown(h, ProtocolError, /conflux leg 1 \(circuit \d+, hop #2 \([a-zA-Z]+\)\): sequence number 3 already queued from another leg/, { leg: 1, by: 'client' }, [h.stream.got]);
});

test('fault: a full out-of-order queue (maxQueued) is a LimitError; the set closes, the stream ends with it', () => {
  const h = linkedWithStream({ maxQueued: 4 });
  const id = h.stream.handle.id;
  h.exit.raw(1, RELAY_COMMAND_CONFLUX_SWITCH, 0, new ConfluxSwitchMsg(2).encode()); // seq 2 never comes: 3, 4, … wait
  for (let i = 0; i < 5; i++) h.exit.raw(1, DATA, id, body(i));
  h.exit.flush(1, 5);
  assert.equal(h.set.set.queued, 4, 'four wait');
  assert.deepEqual(h.events.closed, []);
  h.exit.flush(1);
  const error = tornDown(h, LimitError, /conflux leg 1 \(circuit \d+, hop #2 \(exit\)\): out-of-order queue full \(4 cells waiting for 2, got 7\)/, { leg: 1, by: 'client' }, [h.stream.got]);
  assert.equal(error.limit, 4);
  assert.deepEqual(h.stream.got.chunks, []);
});

for (const leg of [1, 0]) {
  test(`fault: leg ${leg} DESTROYed by the relay ends the set’s stream with that error; the other leg is destroyed (DESTROY sent)`, () => {
    const h = linkedWithStream();
    h.exit.send(1, DATA, h.stream.handle.id, body(3));
    h.exit.flush(1);
    assert.equal(h.stream.got.chunks.length, 1);
    const gone = h.legs[leg]!;
    gone.wire.channel.handleBytes(new DestroyCell(gone.circuit.circId, CloseReason.toInt('CHANNEL_CLOSED')).pack(LP));
    const error = tornDown(h, CircuitDestroyedError, /CHANNEL_CLOSED/, { leg, by: 'relay' }, [h.stream.got]);
    assert.equal(error.by, 'relay');
    assert.equal(error.reason, 'CHANNEL_CLOSED');
  });
}
