/**
 * Runs of RELAY cells (CircuitCrypto.decryptCells, ChannelMachine's runs into
 * CircuitMachine.handleRelayCells) against cell-by-cell processing (CircuitCrypto.decrypt,
 * CircuitMachine.handleCell), on random multi-hop traffic from testing/relayside's chained
 * hops: cells from any hop, TRUNCATED and extensions in the middle of a run, wrong
 * digests, non-zero 'recognized', garbage. Same hops, plaintexts, digests, errors, events
 * and cells sent, and the same state afterwards (probe cells from every hop).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { Address, Certificate, CertsCell, KDF, LinkProtocol, NetinfoCell, OrportError, VersionsCell } from '../../src/index.js';
import { readFrame, type CellFrame } from '../../src/codec/framing.js';
import { CircuitCrypto, Tor1Layer, type Recognized } from '../../src/crypto/relaycrypto.js';
import { ChannelMachine } from '../../src/proto/channel.js';
import type { CircuitMachine } from '../../src/proto/circuit.js';
import { RelaySideCircuit } from '../../src/testing/relayside.js';
import { fuzz } from '../support/fuzz.js';

const LP = LinkProtocol.of(5);
const PAYLOAD = 509;

/** Deterministic bytes from a seed (keys, padding, CREATE_FAST's X). */
function seeded(seed: number): (n: number) => Uint8Array {
  let counter = 0;
  return (n) => {
    const out = new Uint8Array(n);
    for (let at = 0; at < n; at += 32) out.set(createHash('sha256').update(`${seed}:${counter++}`).digest().subarray(0, n - at), at);
    return out;
  };
}

const keysOf = (seed: number, hop: number) => KDF.fromValue(seeded(seed * 100 + hop)(40));

/** One step of the relays' traffic. `pick` chooses the hop among those there are then. */
type Step =
  | { kind: 'cell'; pick: number; command: number; length: number; fault: 'none' | 'digest' | 'recognized' | 'garbage' }
  | { kind: 'extend' };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 20, arbitrary: fc.record({ kind: fc.constant('cell' as const), pick: fc.nat(7), command: fc.constantFrom(2, 2, 2, 2, 5, 10, 9, 99), length: fc.integer({ min: 0, max: 498 }), fault: fc.constantFrom('none', 'none', 'none', 'none', 'none', 'none', 'none', 'digest', 'recognized', 'garbage') }) },
  { weight: 3, arbitrary: fc.constant({ kind: 'extend' as const }) },
);

interface Traffic {
  /** The wire cells (payloads only), in order. */
  payloads: Uint8Array[];
  /** Extensions: a new hop is added after this many cells (relay and client alike). */
  extendAfter: number[];
  /** The relays' chain at the end (for probes). */
  chain: RelaySideCircuit[];
}

/** The relays' side: a chain of `hops` RelaySideCircuits, sending what `steps` say. */
function relayTraffic(seed: number, hops: number, steps: readonly Step[]): Traffic {
  const chain: RelaySideCircuit[] = [];
  let added = 0;
  const addHop = () => {
    const hop = new RelaySideCircuit(1, LP, { random: seeded(seed + 7) });
    hop.accept(keysOf(seed, added++)); // the client counts its hops added the same way
    chain.at(-1)?.attach(hop);
    chain.push(hop);
  };
  for (let i = 0; i < hops; i++) addHop();
  const payloads: Uint8Array[] = [];
  const extendAfter: number[] = [];
  const garbage = seeded(seed + 13);
  for (const step of steps) {
    if (step.kind === 'extend') {
      if (chain.length < 8) {
        extendAfter.push(payloads.length);
        addHop();
      }
      continue;
    }
    const hop = step.pick % chain.length;
    if (step.fault === 'garbage') {
      payloads.push(garbage(PAYLOAD));
      continue;
    }
    const body = seeded(seed + payloads.length)(step.command === 9 ? 1 : step.length);
    const cell = chain[hop]!.send(step.command, step.command === 2 ? 1 : 0, body, {
      corruptDigest: step.fault === 'digest',
      recognized: step.fault === 'recognized' ? 1 : undefined,
    });
    payloads.push(cell.subarray(LP.circIdSize.size + 1));
    if (step.command === 9) {
      // The relay truncated after `hop` (tor-spec 5.4).
      chain[hop]!.truncateAfter();
      chain.length = hop + 1;
    }
  }
  return { payloads, extendAfter, chain };
}

type Outcome = string; // 'error' or `${hop} ${plain hex} ${digest hex}`

const outcomeOf = (r: Recognized): Outcome => `${r.hop} ${Buffer.from(r.plain).toString('hex')} ${Buffer.from(r.digest).toString('hex')}`;

/** The client's crypto for `hops` hops, as the relay side keyed them (`added` counts the hops ever added). */
function clientCrypto(seed: number, hops: number): CircuitCrypto & { added: number } {
  const crypto = Object.assign(new CircuitCrypto(), { added: 0 });
  for (let i = 0; i < hops; i++) crypto.addHop(new Tor1Layer(keysOf(seed, crypto.added++)));
  return crypto;
}

/** After cell `index` was handled: TRUNCATED drops the later layers; an extension adds one. */
function effects(crypto: CircuitCrypto & { added: number }, r: Recognized | undefined, seed: number, extends_: Set<number>, index: number): void {
  if (r && r.plain[0] === 9) crypto.truncate(r.hop + 1);
  if (extends_.has(index + 1)) crypto.addHop(new Tor1Layer(keysOf(seed, crypto.added++)));
}

function cellByCell(seed: number, hops: number, traffic: Traffic): { outcomes: Outcome[]; crypto: CircuitCrypto } {
  const crypto = clientCrypto(seed, hops);
  const extends_ = new Set(traffic.extendAfter);
  if (extends_.has(0)) effects(crypto, undefined, seed, extends_, -1);
  const outcomes: Outcome[] = [];
  traffic.payloads.forEach((payload, i) => {
    let r: Recognized | undefined;
    try {
      r = crypto.decrypt(payload);
      outcomes.push(outcomeOf(r));
    } catch (err) {
      assert.ok(err instanceof OrportError && err.code === 'E_BAD_CELL_AUTH', String(err));
      outcomes.push('error');
    }
    effects(crypto, r, seed, extends_, i);
  });
  return { outcomes, crypto };
}

function inRuns(seed: number, hops: number, traffic: Traffic, runs: readonly number[]): { outcomes: Outcome[]; crypto: CircuitCrypto } {
  const crypto = clientCrypto(seed, hops);
  const extends_ = new Set(traffic.extendAfter);
  if (extends_.has(0)) effects(crypto, undefined, seed, extends_, -1);
  const outcomes: Outcome[] = [];
  let at = 0;
  let r = 0;
  while (at < traffic.payloads.length) {
    const count = Math.min(traffic.payloads.length - at, runs.length ? runs[r++ % runs.length]! : 1);
    // Payloads back to back, with something around them (the input's offset must not matter).
    const bytes = new Uint8Array(count * PAYLOAD + 3);
    for (let k = 0; k < count; k++) bytes.set(traffic.payloads[at + k]!, 3 + k * PAYLOAD);
    const input = bytes.subarray(3);
    const before = Buffer.from(input).toString('hex');
    const cells = crypto.decryptCells(input, count);
    assert.equal(Buffer.from(input).toString('hex'), before, 'decryptCells leaves its input alone');
    for (let k = 0; k < count; k++) {
      let rec: Recognized | undefined;
      const hop = cells.hop[k]!;
      try {
        rec = hop >= 0 && hop < crypto.hops ? { hop, plain: cells.plain(k), digest: cells.digest(k) } : crypto.continueCell(cells.plain(k), hop < 0 ? cells.depth[k]! : crypto.hops);
        outcomes.push(outcomeOf(rec));
      } catch (err) {
        assert.ok(err instanceof OrportError && err.code === 'E_BAD_CELL_AUTH', String(err));
        outcomes.push('error');
      }
      effects(crypto, rec, seed, extends_, at + k);
    }
    at += count;
  }
  return { outcomes, crypto };
}

/** One DATA cell from every hop the relays have at the end, handled cell by cell: the state must agree. */
function probes(traffic: Traffic): Uint8Array[] {
  return traffic.chain.map((hop, i) => hop.send(2, 1, Uint8Array.of(i)).subarray(LP.circIdSize.size + 1));
}

const scenario = fc.record({
  seed: fc.nat(1e6),
  hops: fc.integer({ min: 1, max: 4 }),
  steps: fc.array(stepArb, { minLength: 1, maxLength: 120 }),
  runs: fc.array(fc.integer({ min: 1, max: 70 }), { maxLength: 6 }),
});

test('decryptCells in runs = decrypt cell by cell: hops, plaintexts, digests, errors, state', () => {
  fuzz(import.meta.url, 'decryptCells vs decrypt', scenario, ({ seed, hops, steps, runs }) => {
    const traffic = relayTraffic(seed, hops, steps);
    const a = cellByCell(seed, hops, traffic);
    const b = inRuns(seed, hops, traffic, runs);
    assert.deepEqual(b.outcomes, a.outcomes);
    const probe = probes(traffic);
    const outcome = (crypto: CircuitCrypto) => probe.map((p) => {
      try {
        return outcomeOf(crypto.decrypt(p));
      } catch {
        return 'error';
      }
    });
    assert.deepEqual(outcome(b.crypto), outcome(a.crypto));
  }, 1, 50);
});

test('decryptCells: the plain case, one run of 3-hop DATA from the last hop, recognized there with the right digests', () => {
  const traffic = relayTraffic(1, 3, Array.from({ length: 40 }, () => ({ kind: 'cell' as const, pick: 2, command: 2, length: 498, fault: 'none' as const })));
  const a = cellByCell(1, 3, traffic);
  const b = inRuns(1, 3, traffic, [40]);
  assert.deepEqual(b.outcomes, a.outcomes);
  assert.ok(a.outcomes.every((o) => o.startsWith('2 ')));
});

test('Tor1Layer.recognizeAt in a run = recognize cell by cell, with cells that pass by with recognized 0 (taken back)', () => {
  // A cell for a later hop has 'recognized' 0 here once in 65,536: scripted directly on
  // plaintexts, mixed with this hop's own cells (digests from the relay's mirror layer).
  fuzz(import.meta.url, 'recognizeAt vs recognize', fc.record({ seed: fc.nat(1e6), kinds: fc.array(fc.constantFrom('own', 'own', 'passing', 'passing-zero'), { minLength: 1, maxLength: 60 }), run: fc.integer({ min: 1, max: 60 }) }), ({ seed, kinds, run }) => {
    const keys = keysOf(seed, 0);
    const relay = new Tor1Layer(keys, 'relay');
    const random = seeded(seed);
    const payloads = kinds.map((kind) => {
      const p = random(PAYLOAD);
      if (kind === 'own') {
        p[1] = p[2] = 0;
        relay.originate(p);
      } else if (kind === 'passing-zero') {
        p[1] = p[2] = 0; // and a digest that is not ours (2^-32 that it is)
      }
      return p;
    });
    const one = new Tor1Layer(keys);
    const expected = payloads.map((p) => {
      const d = one.recognize(p.slice());
      return d ? Buffer.from(d).toString('hex') : 'no';
    });
    const batched = new Tor1Layer(keys);
    const got: string[] = [];
    for (let at = 0; at < payloads.length; at += run) {
      const part = payloads.slice(at, at + run);
      const bytes = Buffer.concat(part);
      for (let k = 0; k < part.length; k++) {
        const d = batched.recognizeAt(bytes, k * PAYLOAD);
        got.push(d === undefined ? 'no' : Buffer.from(d, 'base64').toString('hex'));
      }
      batched.endRun();
      assert.deepEqual(bytes, Buffer.concat(part), 'recognizeAt restores the digest fields');
    }
    assert.deepEqual(got, expected);
    assert.ok(expected.filter((e) => e !== 'no').length === kinds.filter((k) => k === 'own').length, 'every own cell is recognized');
    // The same running digest afterwards.
    const probe = random(PAYLOAD);
    probe[1] = probe[2] = 0;
    relay.originate(probe);
    assert.deepEqual(batched.recognize(probe.slice()), one.recognize(probe.slice()));
  }, 1, 50);
});

// -------------------------------------------------------------------------------------
// The machines: ChannelMachine's runs vs CircuitMachine.handleCell

interface Side {
  channel: ChannelMachine;
  circuit: CircuitMachine;
  log: string[];
}

/** A channel and a `hops`-hop circuit with deterministic randomness, logging every event and every cell sent. */
function clientSide(seed: number, hops: number, streams: readonly { id: number; hop: number; consume: boolean }[], createdFast: (x: Uint8Array) => Uint8Array): Side {
  let extensions = 0;
  const log: string[] = [];
  const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
  const random = seeded(seed + 1);
  const fill = seeded(seed + 2);
  let lastSent: Uint8Array | undefined;
  const channel = new ChannelMachine([4, 5], { send: (b) => log.push(`sent ${hex((lastSent = b))}`) }, {
    handshakeComplete: () => undefined,
    closed: (e) => log.push(`channel closed ${e.code} ${e.message}`),
  }, {
    peerAddress: new Address('127.0.0.1'),
    randomInt: () => 0x80000001,
    circuit: { randomBytes: random, randomFill: (buf, offset, size) => buf.set(fill(size), offset) },
  });
  channel.start();
  channel.handleBytes(Buffer.concat([new VersionsCell([4, 5]).pack(2), new CertsCell([new Certificate(1, new Uint8Array(10))]).pack(LP), new NetinfoCell(new Address('127.0.0.1'), [], new Date(0)).pack(LP)]));
  const circuit = channel.newCircuit({
    opened: () => log.push('opened'),
    destroyed: (e) => log.push(`destroyed ${e.code} ${e.message}`),
    truncated: (hop, reason) => {
      log.push(`truncated ${hop} ${reason}`);
      // A hop added at once (as an EXTEND2's answer would): cells after the TRUNCATED in the same run meet it.
      circuit.addHop(keysOf(seed, 1000 + extensions++));
    },
  });
  circuit.startCreateFast();
  channel.handleBytes(createdFast((readFrame(lastSent!, 0, LP) as CellFrame).payload.slice(0, 20)));
  for (let i = 1; i < hops; i++) circuit.addHop(keysOf(seed, i + 100 * (i + 1)));
  for (const s of streams) {
    circuit.openStream(s.id, { command: 13, encode: () => new Uint8Array(0) }, {
      connected: () => log.push(`connected ${s.id}`),
      data: (d) => {
        log.push(`data ${s.id} ${hex(d)}`);
        return s.consume;
      },
      ended: (e) => log.push(`ended ${s.id} ${e ? `${e.code} ${e.message}` : 'DONE'}`),
    }, s.hop);
  }
  log.length = 0;
  return { channel, circuit, log };
}

const machineScenario = fc.record({
  seed: fc.nat(1e6),
  hops: fc.integer({ min: 1, max: 4 }),
  steps: fc.array(
    fc.record({
      pick: fc.nat(7),
      command: fc.constantFrom(2, 2, 2, 2, 2, 2, 4, 3, 10, 9, 99, 15),
      stream: fc.constantFrom(0, 1, 2, 3, 9),
      length: fc.integer({ min: 0, max: 498 }),
      fault: fc.constantFrom('none', 'none', 'none', 'none', 'none', 'none', 'none', 'none', 'none', 'none', 'none', 'digest', 'early', 'padding', 'length'),
    }),
    { minLength: 1, maxLength: 150 },
  ),
  chunks: fc.array(fc.integer({ min: 1, max: 20_000 }), { minLength: 1, maxLength: 8 }),
  consume: fc.boolean(),
});

test('ChannelMachine runs into handleRelayCells = handleCell cell by cell: events, errors, cells sent, counters', () => {
  fuzz(import.meta.url, 'channel runs vs handleCell', machineScenario, ({ seed, hops, steps, chunks, consume }) => {
    // The relays' side: hop 0 answers CREATE_FAST; later hops have the known keys.
    const first = new RelaySideCircuit(0x80000001, LP, { random: seeded(seed + 3) });
    const chain = [first];
    let createdFast: Uint8Array | undefined;
    const answer = (x: Uint8Array) => (createdFast ??= first.createdFast(x));
    for (let i = 1; i < hops; i++) {
      const hop = new RelaySideCircuit(0x80000001, LP);
      hop.accept(keysOf(seed, i + 100 * (i + 1)));
      chain.at(-1)!.attach(hop);
      chain.push(hop);
    }
    const streams = [
      { id: 1, hop: hops - 1, consume },
      { id: 2, hop: hops - 1, consume: true },
      { id: 3, hop: 0, consume: true },
    ];
    const a = clientSide(seed, hops, streams, answer);
    const b = clientSide(seed, hops, streams, answer);
    // CONNECTED for each stream first, then the random traffic.
    const wire: Uint8Array[] = streams.map((s) => chain[s.hop]!.send(4, s.id, new Uint8Array(0)));
    let extensions = 0;
    for (const step of steps) {
      if (step.fault === 'padding') {
        wire.push(new Uint8Array(LP.fixedCellLength)); // PADDING (command 0) between RELAY cells
        continue;
      }
      const hop = step.pick % chain.length;
      const streamId = step.command === 9 || step.command === 15 || step.command === 10 ? 0 : step.stream;
      const body = seeded(seed + wire.length)(step.command === 9 ? 1 : step.command === 3 ? 1 : step.command === 4 ? 0 : step.length);
      wire.push(chain[hop]!.send(step.command, streamId, body, { corruptDigest: step.fault === 'digest', early: step.fault === 'early', claimedLength: step.fault === 'length' ? 499 : undefined }));
      if (step.command === 9 && step.fault === 'none') {
        chain.length = hop + 1;
        chain[hop]!.truncateAfter();
        const next = new RelaySideCircuit(0x80000001, LP);
        next.accept(keysOf(seed, 1000 + extensions++));
        chain[hop]!.attach(next);
        chain.push(next);
      }
    }
    const bytes = Buffer.concat(wire);
    // a: cell by cell, straight into the circuit (the path before runs).
    for (let at = 0; at < bytes.length; at += LP.fixedCellLength) {
      const frame = readFrame(bytes, at, LP) as CellFrame;
      if (frame.command === 0) continue;
      a.circuit.handleCell({ ...frame, payload: frame.payload.slice() });
    }
    // b: through the channel, in chunks split anywhere.
    let at = 0;
    for (let i = 0; at < bytes.length; i++) {
      const n = chunks[i % chunks.length]!;
      b.channel.handleBytes(bytes.subarray(at, at + n));
      at += n;
    }
    assert.deepEqual(b.log, a.log);
    const { dropped: droppedA, ...countersA } = a.circuit.counters;
    const { dropped: droppedB, ...countersB } = b.circuit.counters;
    assert.deepEqual(countersB, countersA);
    assert.equal(b.circuit.state, a.circuit.state);
    // After a destroy the channel drops what is left (a's circuit counts it itself).
    if (a.circuit.state === 'open') assert.equal(droppedB, droppedA);
    else assert.equal(droppedB + b.channel.counters.droppedIn, droppedA);
  }, 1, 50);
});
