/**
 * Exit-stream fault rows (issue 12): three fake relays in this process, a circuit through
 * all of them (CREATE2, EXTEND2), and the last one acting as the exit
 * (src/testing/fakerelay: BEGIN connects to a target on 127.0.0.1 only). Each row scripts
 * one misbehaviour of the exit and checks:
 *
 *   - the typed error (class, code, reason) — or, where tor ignores the fault, the
 *     spec's behaviour (DIGEST-streams §1-2; each test name says which);
 *   - that it came within the short timeout;
 *   - that nothing leaked (handles, file descriptors, abort listeners);
 *   - per-stream faults: another stream on the same circuit still moves data; faults
 *     tor closes the circuit for: the circuit is closed (DESTROY sent) and another
 *     circuit on the same connection still works.
 *
 * Plus the happy paths: 5 MiB each way by sha256, optimistic data, backpressure.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { getEventListeners } from 'node:events';
import { Address, ConnectedMsg, OrportError, ProtocolError, Relay, SendmeMsg, StreamClosedError, type RelayCircuit, type TorStream } from '../../src/index.js';
import { buildCertChain, type GeneratedChain } from '../../src/testing/certchain.js';
import { startFakeRelay, type FakeCircuit, type FakeRelay, type FakeRelayHooks, type FakeStream } from '../../src/testing/fakerelay.js';
import type { CircuitTarget } from '../../src/client/handshakes.js';
import { gcFunction, noLeaks } from '../support/leaks.js';
import { failure } from '../support/failure.js';

const TIMEOUT = 1000;
const NAMES = ['relayA', 'relayB', 'relayC'] as const;
const MiB = 1024 * 1024;
const signal = new AbortController().signal;
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

let chains: GeneratedChain[];
before(() => {
  chains = NAMES.map(() => buildCertChain());
});

interface Net {
  relays: FakeRelay[];
  targets: CircuitTarget[];
  /** An echo server on 127.0.0.1. */
  echoPort: number;
  /** Starts another target server on 127.0.0.1 (closed after the test). */
  serve(onSocket: (socket: Socket) => void): Promise<number>;
  connect(): Promise<Relay>;
}

/** Three fake relays (the exit, relayC, with `exit` hooks), an echo target, all inside a leak check. */
async function withNet(exit: FakeRelayHooks, fn: (net: Net) => Promise<void>): Promise<void> {
  await noLeaks(async () => {
    const relays: FakeRelay[] = [];
    const servers: Server[] = [];
    const sockets = new Set<Socket>();
    const serve = (onSocket: (socket: Socket) => void) =>
      new Promise<number>((resolve) => {
        const server = createServer((s) => {
          sockets.add(s);
          s.on('close', () => sockets.delete(s));
          s.on('error', () => undefined);
          onSocket(s);
        });
        servers.push(server);
        server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port));
      });
    try {
      for (const [i, name] of NAMES.entries()) {
        relays.push(await startFakeRelay({ chain: chains[i]!, nickname: name, peers: relays, ...(i === 2 ? { hooks: exit } : {}) }));
      }
      const echoPort = await serve((s) => s.pipe(s));
      const a = relays[0]!;
      await fn({ relays, targets: relays.map((r) => r.target), echoPort, serve, connect: () => Relay.connect(a.host, a.port, undefined, { timeoutMs: TIMEOUT, identity: a.identity, signal }) });
    } finally {
      for (const r of relays) await r.close();
      for (const s of sockets) s.destroy();
      for (const server of servers) await new Promise((r) => server.close(r));
    }
    assert.equal(getEventListeners(signal, 'abort').length, 0, 'every wait removed its abort listener');
    for (const r of relays) {
      assert.deepEqual(r.errors, [], `${r.nickname}'s hooks ran without exceptions`);
      assert.deepEqual(r.violations, [], `the client broke no rule ${r.nickname} checks`);
    }
  });
}

async function build(relay: Relay, targets: readonly CircuitTarget[]): Promise<RelayCircuit> {
  const circuit = await relay.createCircuit({ handshake: 'ntor', target: targets[0]!, timeoutMs: TIMEOUT, signal });
  for (const t of targets.slice(1)) await circuit.extend(t, { timeoutMs: TIMEOUT, signal });
  return circuit;
}

/** `withNet`, with a connection and a three-hop circuit through the fake relays (`before` runs first: targets). */
async function withCircuit(exit: FakeRelayHooks, fn: (circuit: RelayCircuit, net: Net, relay: Relay) => Promise<void>): Promise<void> {
  await withNet(exit, async (net) => {
    const relay = await net.connect();
    try {
      await fn(await build(relay, net.targets), net, relay);
    } finally {
      await relay.close();
    }
  });
}

/** A per-stream fault: the circuit is open and another stream on it still moves data. */
async function carriesOn(circuit: RelayCircuit, net: Net): Promise<void> {
  assert.ok(circuit.isOpen, 'the circuit is open');
  await echoes(circuit, net);
}

/** Everything the stream's readable side gives until it ends (rejects on 'error'). */
function readAll(stream: TorStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.once('error', reject);
    stream.once('end', () => resolve(Buffer.concat(chunks)));
  });
}

/** The error the stream fails with (it must fail). */
function streamError(stream: TorStream): Promise<OrportError> {
  return failure(() => readAll(stream)).then((f) => f.error);
}

/** The first `n` bytes the stream's readable side gives (rejects on 'error'). */
function readBytes(stream: TorStream, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const got: Buffer[] = [];
    let size = 0;
    stream.once('error', reject);
    stream.on('data', (c: Buffer) => {
      got.push(c);
      if ((size += c.length) >= n) resolve(Buffer.concat(got));
    });
  });
}

/** A stream to the echo target on `circuit` moves 20 KB both ways (the circuit and its other streams are fine). */
async function echoes(circuit: RelayCircuit, net: Net): Promise<void> {
  const stream = await circuit.openStream('127.0.0.1', net.echoPort, { timeoutMs: TIMEOUT, signal });
  const payload = randomBytes(20_000);
  stream.write(payload);
  assert.equal(sha256(await readBytes(stream, payload.length)), sha256(payload), 'the other stream echoed 20 KB intact');
  stream.end();
  await new Promise((r) => stream.once('close', r));
}

/** For faults tor closes the circuit for: it is closed, we sent DESTROY, another circuit on the connection works. */
async function circuitClosed(relay: Relay, circuit: RelayCircuit, net: Net): Promise<void> {
  assert.equal(circuit.isOpen, false, 'the circuit is closed');
  await tick(20);
  const conn = [...net.relays[0]!.connections][0]!;
  assert.ok(conn.destroysIn.some((d) => d.circId === circuit.id), 'we sent DESTROY for it');
  assert.ok(relay.isAlive(), 'the connection is alive');
  const other = await build(relay, net.targets);
  await echoes(other, net);
  await other.close();
}

/**
 * Records the exit's streams and circuits as BEGINs arrive; `script` (if any) replaces the
 * honest answer for the first `scripted` BEGINs.
 */
function recorder(script?: (stream: FakeStream, circuit: FakeCircuit, next: () => unknown) => unknown, scripted = 1): { hooks: FakeRelayHooks; streams: FakeStream[]; circuits: FakeCircuit[] } {
  const streams: FakeStream[] = [];
  const circuits: FakeCircuit[] = [];
  return {
    streams,
    circuits,
    hooks: {
      begin: (_c, next, circuit, stream) => {
        streams.push(stream);
        circuits.push(circuit);
        if (script && streams.length <= scripted) return void script(stream, circuit, next);
        return next();
      },
    },
  };
}

async function until(what: string, cond: () => boolean, ms = TIMEOUT): Promise<void> {
  const end = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > end) assert.fail(`timed out waiting for ${what}`);
    await tick(2);
  }
}

const piece = (n = 498) => new Uint8Array(n).fill(0x61);

// -------------------------------------------------------------------------------------
// Circuit SENDMEs for our uploads (prop289, DIGEST-streams §2.3)

test('the exit’s circuit SENDME v1 for our upload carries a wrong digest: ProtocolError, the circuit is closed', async () => {
  let wrong = 0;
  const hooks: FakeRelayHooks = {
    sendme: (_c, next, circuit, streamId, digest) => {
      if (streamId !== 0 || wrong++) return next();
      const bad = digest!.slice();
      bad[0]! ^= 1;
      circuit.send(5, 0, new SendmeMsg(1, bad).encode());
    },
  };
  await withCircuit(hooks, async (circuit, net, relay) => {
    const sink = await net.serve((s) => s.resume());
    const stream = await circuit.openStream('127.0.0.1', sink, { timeoutMs: TIMEOUT, signal });
    const since = performance.now();
    const failed = streamError(stream);
    stream.write(randomBytes(498 * 150)); // past the 100th DATA cell: a SENDME is due
    const error = await failed;
    assert.ok(error instanceof ProtocolError, `${error.name}: ${error.message}`);
    assert.equal(error.code, 'E_PROTOCOL');
    assert.match(error.message, /mismatched digest/);
    assert.ok(performance.now() - since < TIMEOUT);
    assert.equal(wrong, 1);
    await circuitClosed(relay, circuit, net);
  });
});

test('a circuit SENDME v1 when no DATA cell of ours awaits one: ProtocolError, the circuit is closed', async () => {
  const { hooks } = recorder((_stream, circuit) => circuit.send(5, 0, new SendmeMsg(1, new Uint8Array(20).fill(7)).encode()));
  await withCircuit(hooks, async (circuit, net, relay) => {
    const f = await failure(() => circuit.openStream('127.0.0.1', net.echoPort, { timeoutMs: TIMEOUT, signal }));
    assert.ok(f.error instanceof ProtocolError, `${f.error.name}: ${f.error.message}`);
    assert.match(f.error.message, /no DATA cell is awaiting one/);
    assert.ok(f.ms < TIMEOUT);
    await circuitClosed(relay, circuit, net);
  });
});

// -------------------------------------------------------------------------------------
// Our deliver windows (tor-spec 7.3-7.4, DIGEST-streams §2.4)

test('the exit overruns our stream deliver window (501 DATA cells, no stream SENDME from us): ProtocolError, the circuit is closed', async () => {
  const { hooks } = recorder(async (stream) => {
    stream.connected('127.0.0.1');
    await stream.conn.sleep(30);
    for (let i = 0; i < 501; i++) stream.sendData(piece()); // counted, not checked: the exit ignores its window
  });
  await withCircuit(hooks, async (circuit, net, relay) => {
    // A reader that never reads, with a 1-byte buffer: the first cell fills it, so we hold every stream SENDME.
    const stream = await circuit.openStream('127.0.0.1', 9, { timeoutMs: TIMEOUT, signal, highWaterMark: 1 });
    const since = performance.now();
    const error = await new Promise<Error>((resolve) => stream.once('error', resolve));
    assert.ok(error instanceof ProtocolError, `${error.name}: ${error.message}`);
    assert.match(error.message, /deliver window/);
    assert.ok(performance.now() - since < TIMEOUT);
    await circuitClosed(relay, circuit, net);
  });
});

test('the exit sends 1,200 DATA cells without waiting for our circuit SENDMEs (spec: accepted — a SENDME v1 goes out at each 100th cell, so our circuit deliver window never goes below 0)', async () => {
  const rec = recorder(() => undefined, 3);
  await withCircuit(rec.hooks, async (circuit, net) => {
    // Three scripted streams of 400 cells each: within the stream windows, past the circuit window.
    const reads: Promise<Buffer>[] = [];
    for (let i = 0; i < 3; i++) reads.push(readAll(await circuit.openStream('127.0.0.1', 9, { optimistic: true, signal })));
    await until('three BEGINs', () => rec.streams.length === 3);
    for (const fs of rec.streams) fs.connected('127.0.0.1');
    for (let i = 0; i < 400; i++) for (const fs of rec.streams) fs.sendData(piece()); // no wait for our SENDMEs
    for (const fs of rec.streams) fs.end();
    const bodies = await Promise.all(reads);
    for (const b of bodies) assert.equal(b.length, 400 * 498);
    assert.ok(circuit.counters.sendmesOut >= 12, `${circuit.counters.sendmesOut} SENDMEs sent`);
    await carriesOn(circuit, net);
  });
});

// -------------------------------------------------------------------------------------
// Cells for streams that are not open (DIGEST-streams §1.6, §1.8)

test('DATA after our END (spec: dropped within tor’s half-closed quota, counted beyond it; the circuit carries on)', async () => {
  const rec = recorder();
  await withCircuit(rec.hooks, async (circuit, net) => {
    const stream = await circuit.openStream('127.0.0.1', net.echoPort, { timeoutMs: TIMEOUT, signal });
    stream.end();
    await until('our END at the exit', () => rec.streams[0]!.endedByClient);
    const dropped = circuit.counters.dropped;
    // Our deliver window was 500 when we sent END: 500 DATA cells are tor's quota, the rest are beyond it.
    for (let i = 0; i < 510; i++) rec.streams[0]!.sendData(piece());
    await until('the DATA cells to arrive', () => circuit.counters.dropped >= dropped + 510);
    assert.equal(circuit.counters.dropped - dropped, 510);
    assert.equal(circuit.counters.beyondHalfClosed, 10);
    await carriesOn(circuit, net);
  });
});

test('DATA for a stream we never opened (spec: dropped; it still counts for the circuit window and our SENDME v1 is right)', async () => {
  const rec = recorder();
  await withCircuit(rec.hooks, async (circuit, net) => {
    const stream = await circuit.openStream('127.0.0.1', net.echoPort, { timeoutMs: TIMEOUT, signal });
    const exit = rec.circuits[0]!;
    const stranger = (rec.streams[0]!.id + 1000) & 0xffff || 1;
    const dropped = circuit.counters.dropped;
    for (let i = 0; i < 150; i++) {
      exit.window--; // a DATA cell, for the exit's circuit window (our SENDME v1 comes back for it)
      exit.send(2, stranger, piece());
    }
    await until('150 dropped cells', () => circuit.counters.dropped >= dropped + 150);
    await until('our circuit SENDME at the exit', () => exit.sendmesIn >= 1);
    stream.destroy();
    await carriesOn(circuit, net);
  });
});

test('CONNECTED for a stream we never opened (spec: dropped; the circuit carries on)', async () => {
  const rec = recorder();
  await withCircuit(rec.hooks, async (circuit, net) => {
    const stream = await circuit.openStream('127.0.0.1', net.echoPort, { timeoutMs: TIMEOUT, signal });
    const dropped = circuit.counters.dropped;
    rec.circuits[0]!.send(4, (rec.streams[0]!.id + 77) & 0xffff || 1, new ConnectedMsg(new Address('127.0.0.1'), 300).encode());
    await until('the CONNECTED to be dropped', () => circuit.counters.dropped === dropped + 1);
    stream.destroy();
    await carriesOn(circuit, net);
  });
});

test('a second CONNECTED on an open stream (spec: tor closes the circuit): ProtocolError', async () => {
  const { hooks } = recorder(async (stream) => {
    stream.connected('127.0.0.1');
    await stream.conn.sleep(30);
    stream.connected('127.0.0.1');
  });
  await withCircuit(hooks, async (circuit, net, relay) => {
    const stream = await circuit.openStream('127.0.0.1', 9, { timeoutMs: TIMEOUT, signal });
    const since = performance.now();
    const error = await streamError(stream);
    assert.ok(error instanceof ProtocolError, `${error.name}: ${error.message}`);
    assert.match(error.message, /second CONNECTED/);
    assert.ok(performance.now() - since < TIMEOUT);
    await circuitClosed(relay, circuit, net);
  });
});

test('DATA before CONNECTED (spec: tor drops it, the circuit window counts it; the stream then works)', async () => {
  const { hooks } = recorder(async (stream) => {
    stream.send(2, new TextEncoder().encode('too early'));
    await stream.conn.sleep(20);
    stream.connected('127.0.0.1');
    stream.sendData(new TextEncoder().encode('hello'));
    stream.end();
  });
  await withCircuit(hooks, async (circuit, net) => {
    const stream = await circuit.openStream('127.0.0.1', 9, { timeoutMs: TIMEOUT, signal });
    assert.equal((await readAll(stream)).toString(), 'hello');
    assert.ok(circuit.counters.dropped >= 1, 'the early DATA was dropped');
    await carriesOn(circuit, net);
  });
});

// -------------------------------------------------------------------------------------
// END (tor-spec 6.3, DIGEST-streams §1.5)

test('END with an unknown reason (200) before CONNECTED: StreamClosedError with reasonInt 200; the circuit carries on', async () => {
  const { hooks } = recorder((stream) => stream.end(200));
  await withCircuit(hooks, async (circuit, net, relay) => {
    const f = await failure(() => circuit.openStream('127.0.0.1', 9, { timeoutMs: TIMEOUT, signal }));
    assert.ok(f.error instanceof StreamClosedError, `${f.error.name}: ${f.error.message}`);
    assert.equal(f.error.code, 'E_STREAM_CLOSED');
    assert.equal(f.error.by, 'relay');
    assert.equal(f.error.reasonInt, 200);
    assert.ok(f.ms < TIMEOUT);
    await carriesOn(circuit, net);
  });
});

test('the fake exit connects to 127.0.0.1 only: END EXITPOLICY carrying the address (IP literal) or none (hostname): StreamClosedError EXITPOLICY', async () => {
  await withCircuit({}, async (circuit, net) => {
    for (const [host, address] of [['10.11.12.13', '10.11.12.13'], ['2001:db8::1', '2001:db8::1'], ['example.com', undefined]] as const) {
      const f = await failure(() => circuit.openStream(host, 80, { timeoutMs: TIMEOUT, signal }));
      assert.ok(f.error instanceof StreamClosedError, `${f.error.name}: ${f.error.message}`);
      assert.equal(f.error.reason, 'EXITPOLICY');
      assert.equal(f.error.reasonInt, 4);
      if (address) assert.ok(f.error.message.includes(new Address(address).value!), `the message names the address the exit refused: ${f.error.message}`);
      assert.ok(f.ms < TIMEOUT);
    }
    assert.equal(net.relays[2]!.stats.begins, 3);
    await carriesOn(circuit, net);
  });
});

test('the target refuses the connection: END CONNECTREFUSED → StreamClosedError CONNECTREFUSED', async () => {
  await withCircuit({}, async (circuit, net) => {
    const port = await net.serve(() => undefined);
    // A port nobody listens on: take one, then free it.
    const closed = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    assert.notEqual(closed, port);
    const f = await failure(() => circuit.openStream('127.0.0.1', closed, { timeoutMs: TIMEOUT, signal }));
    assert.ok(f.error instanceof StreamClosedError, `${f.error.name}: ${f.error.message}`);
    assert.equal(f.error.reason, 'CONNECTREFUSED');
    assert.ok(f.ms < TIMEOUT);
    await echoes(circuit, net);
  });
});

test('END DONE mid-transfer (the target closes after 300 KB): the readable side ends cleanly with every byte', async () => {
  await withCircuit({}, async (circuit, net) => {
    const body = randomBytes(300_000);
    const port = await net.serve((s) => s.end(body));
    const stream = await circuit.openStream('127.0.0.1', port, { timeoutMs: TIMEOUT, signal });
    const got = await readAll(stream);
    assert.equal(sha256(got), sha256(body));
    await new Promise((r) => (stream.destroyed ? r(undefined) : stream.once('close', r)));
    assert.equal(stream.errored, null);
    await carriesOn(circuit, net);
  });
});

// -------------------------------------------------------------------------------------
// RESOLVE / RESOLVED (tor-spec 6.4, DIGEST-streams §1.7)

test('RESOLVED garbage (a truncated answer): StreamClosedError TORPROTOCOL; RESOLVED with only an error answer: RESOLVEFAILED; IPv4 + IPv6: both', async () => {
  const hooks: FakeRelayHooks = {
    resolve: (_c, next, circuit, streamId, hostname) => {
      if (hostname === 'garbage.test') return circuit.send(12, streamId, Uint8Array.of(4, 4, 127, 0));
      return next();
    },
  };
  await withCircuit(hooks, async (circuit, net) => {
    const bad = await failure(() => circuit.resolve('garbage.test', { timeoutMs: TIMEOUT, signal }));
    assert.ok(bad.error instanceof StreamClosedError, `${bad.error.name}: ${bad.error.message}`);
    assert.equal(bad.error.reason, 'TORPROTOCOL');
    assert.equal(bad.error.reasonInt, 13);
    assert.ok(bad.ms < TIMEOUT);
    const missing = await failure(() => circuit.resolve('no-such-host.test', { timeoutMs: TIMEOUT, signal }));
    assert.ok(missing.error instanceof StreamClosedError, `${missing.error.name}: ${missing.error.message}`);
    assert.equal(missing.error.reason, 'RESOLVEFAILED');
    assert.match(missing.error.message, /permanent/);
    // Addresses as orport's Address spells them (IPv6 in full, as Stem does).
    assert.deepEqual(await circuit.resolve('localhost', { timeoutMs: TIMEOUT, signal }), ['127.0.0.1', '0000:0000:0000:0000:0000:0000:0000:0001']);
    assert.equal(net.relays[2]!.stats.resolves, 3);
    await carriesOn(circuit, net);
  });
});

// -------------------------------------------------------------------------------------
// DROP flood

test('10,000 RELAY_DROP cells from the exit during a 2 MiB download: the transfer is intact, memory bounded', async () => {
  const rec = recorder();
  await withCircuit(rec.hooks, async (circuit, net) => {
    const body = randomBytes(2 * MiB);
    const port = await net.serve((s) => s.end(body));
    const gc = gcFunction();
    gc();
    const heapBefore = process.memoryUsage().heapUsed;
    const stream = await circuit.openStream('127.0.0.1', port, { timeoutMs: TIMEOUT, signal });
    const exit = rec.circuits[0]!;
    const flood = (async () => {
      for (let i = 0; i < 100; i++) {
        for (let j = 0; j < 100; j++) exit.send(10, 0, new Uint8Array(0));
        await exit.conn.sleep(1);
      }
    })();
    const got = await readAll(stream);
    await flood;
    await until('the DROP cells to arrive', () => circuit.counters.cellsIn >= 10_000 + 4000);
    gc();
    const grew = process.memoryUsage().heapUsed - heapBefore;
    assert.equal(sha256(got), sha256(body));
    assert.ok(grew < 16 * MiB, `heap grew by ${(grew / MiB).toFixed(1)} MiB`);
    await carriesOn(circuit, net);
  });
});

// -------------------------------------------------------------------------------------
// Happy paths

test('5 MiB download and 5 MiB upload through three fake hops: sha256 equal both ways; the exit’s SENDMEs for our upload check out', async () => {
  await withCircuit({}, async (circuit, net) => {
    const down = randomBytes(5 * MiB);
    const up = randomBytes(5 * MiB);
    const source = await net.serve((s) => s.end(down));
    const sink = await net.serve((s) => {
      const h = createHash('sha256');
      let n = 0;
      s.on('data', (c: Buffer) => {
        h.update(c);
        n += c.length;
        if (n === up.length) s.end(h.digest('hex'));
      });
    });
    const [a, b] = await Promise.all([
      circuit.openStream('127.0.0.1', source, { timeoutMs: TIMEOUT, signal }),
      circuit.openStream('127.0.0.1', sink, { timeoutMs: TIMEOUT, signal }),
    ]);
    const reply = readAll(b);
    b.write(up);
    const [got, digest] = await Promise.all([readAll(a), reply]);
    assert.equal(sha256(got), sha256(down), 'download intact');
    assert.equal(digest.toString(), sha256(up), 'upload intact (the target’s sha256)');
    const exit = net.relays[2]!.stats;
    assert.ok(exit.dataCellsIn >= Math.ceil(up.length / 498));
    assert.ok(exit.sendmesOut >= 100 + 200, `the exit sent ${exit.sendmesOut} SENDMEs for our upload`);
    assert.ok(circuit.counters.sendmesIn >= exit.sendmesOut);
    assert.ok(circuit.isOpen);
    await circuit.close();
  });
});

test('optimistic data: written before CONNECTED, held at the exit until the target is connected, echoed', async () => {
  const rec = recorder();
  await withCircuit(rec.hooks, async (circuit, net) => {
    const stream = await circuit.openStream('127.0.0.1', net.echoPort, { optimistic: true, signal });
    assert.equal(stream.connecting, true);
    const payload = randomBytes(2000);
    stream.write(payload);
    assert.equal(sha256(await readBytes(stream, payload.length)), sha256(payload));
    assert.ok(rec.streams[0]!.optimisticCells >= 1, 'DATA reached the exit before CONNECTED');
    assert.equal(stream.remoteAddress, '127.0.0.1');
    stream.end();
    await new Promise((r) => stream.once('close', r));
  });
});

test('backpressure: a paused reader holds our stream SENDMEs back (counted at the exit) and the exit stops at its window; resuming gets every byte', async () => {
  const rec = recorder();
  await withCircuit(rec.hooks, async (circuit, net) => {
    const body = randomBytes(4 * MiB);
    const port = await net.serve((s) => s.end(body));
    const stream = await circuit.openStream('127.0.0.1', port, { timeoutMs: TIMEOUT, signal, highWaterMark: 16 * 1024 });
    const fs = rec.streams[0]!;
    await until('the exit to reach its stream window', () => fs.window === 0);
    const sendmes = fs.sendmesIn;
    const sent = fs.cellsOffered;
    await tick(200);
    assert.equal(fs.sendmesIn, sendmes, 'no stream SENDME while the reader is paused');
    assert.equal(fs.cellsOffered, sent, 'the exit sent nothing more');
    assert.equal(sent, 500 + 50 * sendmes, 'exactly the window the SENDMEs opened');
    assert.ok(sent * 498 < 1 * MiB);
    const got = await readAll(stream);
    assert.equal(sha256(got), sha256(body));
    assert.ok(fs.sendmesIn > sendmes);
  });
});
