/**
 * bench/cellpath — the client's inbound cell path on a three-hop circuit, with no
 * network: DATA cells from hop 3 (made by testing/relayside's chained hops, each adding
 * its layer) fed to the sans-I/O machines, timed in cells/s, next to what Node's crypto
 * (OpenSSL) allows for the same work, measured in the same run; then memory per idle
 * open stream and per idle three-hop circuit.
 *
 *   npm run bench -- cellpath [--cells 30000] [--rounds 7] [--chunk 16384] [--idle 10000] [--json]
 *
 * Rates are cells per second of the process's CPU time (user + system, GC threads
 * included): the machine is shared. Each round: fresh cells continuing the keystreams
 * (made untimed, then a full GC and 100 ms for its deferred cleanup, untimed), fed a
 * chunk per event-loop turn as a socket would (so the cleanup of the step's own native
 * objects, Hash copies and cipher outputs, runs and counts), medians. Paths:
 *   channel    ChannelMachine.handleBytes on `--chunk`-byte chunks (a TLS record is at
 *              most 16 KiB): framing, runs of RELAY cells, three layers (one AES update
 *              per layer per run), recognition, digest, DATA delivered to a stream, the
 *              circuit and stream SENDMEs sent (encrypted, discarded)
 *   per cell   CircuitMachine.handleCell on each frame: the same, one cell at a time
 * Node limits: per cell = 3 × AES-128-CTR update of 509 bytes + SHA-1 copy, update,
 * digest; batched = one AES update per layer over the cells of a chunk, with and without
 * the SHA-1 work (update + copy + digest as base64) per cell.
 * Memory: heap, external and RSS after GC, before and after creating `--idle` idle
 * three-hop circuits (CREATE_FAST then two hops with known keys) / open streams
 * (CONNECTED, nothing read; proto only and as TorStreams), divided by the count.
 * Nothing asserts time; this only reports.
 *
 * Layer: a benchmark (uses src/proto, src/crypto, src/testing, src/client/stream; nothing uses it).
 */
import { createCipheriv, createHash, randomBytes, type Decipher } from 'node:crypto';
import { cpus, loadavg } from 'node:os';
import { Address, AuthChallengeCell, Certificate, CertsCell, KDF, LinkProtocol, NetinfoCell, VersionsCell } from '../src/index.js';
import { readFrame, type CellFrame } from '../src/codec/framing.js';
import { BeginMsg, ConnectedMsg } from '../src/codec/relaymsg.js';
import { ChannelMachine } from '../src/proto/channel.js';
import type { CircuitMachine } from '../src/proto/circuit.js';
import { RelaySideCircuit } from '../src/testing/relayside.js';
import { CellWriter } from '../src/client/cellwriter.js';
import { TorStream } from '../src/client/stream.js';
import { gcFunction } from '../test/support/leaks.js';

const LP = LinkProtocol.of(5);
const PAYLOAD = 509;

interface Options {
  cells: number;
  rounds: number;
  chunk: number;
  idle: number;
  json: boolean;
}

function parseArgs(argv: readonly string[]): Options {
  const opts: Options = { cells: 30_000, rounds: 7, chunk: 16_384, idle: 10_000, json: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = () => {
      const v = Number(argv[++i]);
      if (!Number.isFinite(v) || v <= 0) throw new Error(`${arg} needs a positive number`);
      return Math.round(v);
    };
    if (arg === '--cells') opts.cells = value();
    else if (arg === '--rounds') opts.rounds = value();
    else if (arg === '--chunk') opts.chunk = value();
    else if (arg === '--idle') opts.idle = value();
    else if (arg === '--json') opts.json = true;
    else throw new Error(`unknown argument ${arg}\nusage: npm run bench -- cellpath [--cells N] [--rounds N] [--chunk BYTES] [--idle N] [--json]`);
  }
  return opts;
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};
const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

// ---------------------------------------------------------------------------------
// A handshaked channel, and three-hop circuits on it

/** A channel past its (fake) link handshake; what it sends last is in `sent.last`. */
function openChannel(sent: { last: Uint8Array | undefined }): ChannelMachine {
  let handshook = false;
  const channel = new ChannelMachine([4, 5], { send: (b) => (sent.last = b) }, { handshakeComplete: () => (handshook = true), closed: (e) => { throw e; } }, { peerAddress: new Address('127.0.0.1') });
  channel.start();
  channel.handleBytes(Buffer.concat([
    new VersionsCell([4, 5]).pack(2),
    new CertsCell([new Certificate(1, new Uint8Array(10))]).pack(LP),
    new AuthChallengeCell([1, 3]).pack(LP),
    new NetinfoCell(new Address('127.0.0.1'), [], new Date(0)).pack(LP),
  ]));
  if (!handshook) throw new Error('the fake link handshake did not complete');
  return channel;
}

/** The keys of hops 2 and 3: fixed, any will do. */
const HOP_KEYS = [KDF.fromValue(new Uint8Array(40).fill(2)), KDF.fromValue(new Uint8Array(40).fill(3))];

/** A three-hop circuit on `channel`, and (with `relay`) the relays' side of it, chained. */
function threeHop(channel: ChannelMachine, sent: { last: Uint8Array | undefined }, relay = true): { circuit: CircuitMachine; exit: RelaySideCircuit | undefined } {
  const circuit = channel.newCircuit({ opened: () => undefined, destroyed: (e) => { throw e; } });
  circuit.startCreateFast();
  const create = readFrame(sent.last!, 0, LP) as CellFrame;
  const first = new RelaySideCircuit(circuit.circId, LP);
  channel.handleBytes(first.createdFast(create.payload.subarray(0, 20)));
  if (circuit.state !== 'open') throw new Error('CREATE_FAST failed');
  let last = first;
  for (const keys of HOP_KEYS) {
    circuit.addHop(keys);
    if (relay) {
      const next = new RelaySideCircuit(circuit.circId, LP);
      next.accept(keys);
      last.attach(next);
      last = next;
    }
  }
  return { circuit, exit: relay ? last : undefined };
}

// ---------------------------------------------------------------------------------
// The inbound path

interface PathRates {
  channel: number[];
  perCell: number[];
}

let sink = 0;
const gc = gcFunction();

/** One turn of the event loop, as between two socket reads (deferred cleanup of native objects runs there). */
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Before a timed step: a full GC and time for its deferred cleanup, so the step pays only for its own garbage. */
async function settle(): Promise<void> {
  gc();
  await new Promise((resolve) => setTimeout(resolve, 100));
}

/** The process's CPU time (user + system), in seconds: on a shared machine steadier than the wall clock. */
function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

async function measurePaths(opts: Options): Promise<PathRates> {
  const sent = { last: undefined as Uint8Array | undefined };
  const channel = openChannel(sent);
  const { circuit, exit } = threeHop(channel, sent);
  let bytes = 0;
  circuit.openStream(1, { command: 13, encode: () => new Uint8Array(0) }, {
    connected: () => undefined,
    data: (d) => {
      bytes += d.length;
      return true;
    },
    ended: (e) => {
      throw e ?? new Error('stream ended');
    },
  });
  channel.handleBytes(exit!.send(4, 1, new Uint8Array(0)));
  const body = randomBytes(498);
  const make = (n: number): Buffer => {
    const cells: Uint8Array[] = [];
    for (let i = 0; i < n; i++) cells.push(exit!.send(2, 1, body));
    return Buffer.concat(cells);
  };
  const viaChannel = async (wire: Buffer): Promise<number> => {
    await settle();
    const c0 = cpuSeconds();
    for (let at = 0; at < wire.length; at += opts.chunk) {
      channel.handleBytes(wire.subarray(at, at + opts.chunk));
      await turn();
    }
    return cpuSeconds() - c0;
  };
  const perCell = async (wire: Buffer): Promise<number> => {
    const frames: CellFrame[] = [];
    for (let at = 0; at < wire.length; at += LP.fixedCellLength) frames.push(readFrame(wire, at, LP) as CellFrame);
    const perChunk = Math.max(1, Math.floor(opts.chunk / LP.fixedCellLength));
    await settle();
    const c0 = cpuSeconds();
    for (let i = 0; i < frames.length; i++) {
      circuit.handleCell(frames[i]!);
      if (i % perChunk === perChunk - 1) await turn();
    }
    return cpuSeconds() - c0;
  };
  // Warm-up.
  await viaChannel(make(opts.cells));
  await perCell(make(opts.cells));
  const rates: PathRates = { channel: [], perCell: [] };
  for (let round = 0; round < opts.rounds; round++) {
    const before = bytes;
    rates.channel.push(opts.cells / (await viaChannel(make(opts.cells))));
    rates.perCell.push(opts.cells / (await perCell(make(opts.cells))));
    if (bytes - before !== 2 * opts.cells * 498 || circuit.state !== 'open') throw new Error(`round ${round}: ${bytes - before} bytes delivered, circuit ${circuit.state}`);
  }
  sink += bytes;
  return rates;
}

// ---------------------------------------------------------------------------------
// Node's limits for the same crypto

interface LimitRates {
  perCell: number[];
  batchedAes: number[];
  batchedAesSha: number[];
}

async function measureLimits(opts: Options): Promise<LimitRates> {
  const run = Math.max(1, Math.floor(opts.chunk / LP.fixedCellLength));
  const iv = new Uint8Array(16);
  const layers: Decipher[] = [0, 1, 2].map(() => createCipheriv('aes-128-ctr', randomBytes(16), iv));
  const hash = createHash('sha1').update(randomBytes(20));
  const cells = randomBytes(run * PAYLOAD);
  const one = cells.subarray(0, PAYLOAD);
  /** Cells per CPU second, over at least 0.25 s, yielding to the event loop every `run` cells as a socket would. */
  const time = async (perCall: number, fn: () => void): Promise<number> => {
    await settle();
    const c0 = cpuSeconds();
    let calls = 0;
    let spent = 0;
    const per = Math.max(1, Math.round(run / perCall));
    do {
      for (let i = 0; i < per; i++) fn();
      calls += per;
      await turn();
      spent = cpuSeconds() - c0;
    } while (spent < 0.25);
    return (calls * perCall) / spent;
  };
  const perCell = () => {
    let p: Uint8Array = one;
    for (const layer of layers) p = layer.update(p);
    sink += hash.copy().update(p).digest()[0]!;
  };
  const batchedAes = () => {
    let p: Uint8Array = cells;
    for (const layer of layers) p = layer.update(p);
    sink += p[0]!;
  };
  const batchedAesSha = () => {
    let p: Uint8Array = cells;
    for (const layer of layers) p = layer.update(p);
    for (let i = 0; i < run; i++) {
      hash.update(p.subarray(i * PAYLOAD, (i + 1) * PAYLOAD));
      sink += hash.copy().digest('base64').length;
    }
  };
  await time(1, perCell);
  await time(run, batchedAes);
  await time(run, batchedAesSha);
  const rates: LimitRates = { perCell: [], batchedAes: [], batchedAesSha: [] };
  for (let round = 0; round < opts.rounds; round++) {
    rates.perCell.push(await time(1, perCell));
    rates.batchedAes.push(await time(run, batchedAes));
    rates.batchedAesSha.push(await time(run, batchedAesSha));
  }
  return rates;
}

// ---------------------------------------------------------------------------------
// Memory when idle

interface Memory {
  heap: number;
  external: number;
  rss: number;
}

function snapshot(): Memory {
  for (let i = 0; i < 3; i++) gc();
  const m = process.memoryUsage();
  return { heap: m.heapUsed, external: m.external, rss: m.rss };
}

function perItem(before: Memory, after: Memory, n: number): Memory {
  return { heap: (after.heap - before.heap) / n, external: (after.external - before.external) / n, rss: (after.rss - before.rss) / n };
}

function idleCircuits(n: number): Memory {
  const sent = { last: undefined as Uint8Array | undefined };
  const channel = openChannel(sent);
  const before = snapshot();
  const kept: CircuitMachine[] = [];
  for (let i = 0; i < n; i++) kept.push(threeHop(channel, sent, false).circuit);
  sent.last = undefined;
  const after = snapshot();
  sink += kept.length;
  return perItem(before, after, n);
}

function idleStreams(n: number, asTorStreams: boolean): Memory {
  const sent = { last: undefined as Uint8Array | undefined };
  const channel = openChannel(sent);
  const { circuit, exit } = threeHop(channel, sent);
  const writer = new CellWriter({ coalesce: false });
  const begin = new BeginMsg('127.0.0.1', 80, 0, true);
  const connected = new ConnectedMsg(new Address('127.0.0.1'), 300).encode();
  // The relay's CONNECTED cells, made before the baseline.
  const replies: Uint8Array[] = [];
  for (let id = 1; id <= n; id++) replies.push(exit!.send(4, id, connected));
  const before = snapshot();
  const kept: unknown[] = [];
  for (let id = 1; id <= n; id++) {
    if (asTorStreams) {
      const stream = new TorStream(circuit, writer, '127.0.0.1', 80);
      stream.attach(circuit.openStream(id, begin, stream.events), { connected: () => undefined, failed: () => undefined });
      kept.push(stream);
    } else {
      kept.push(circuit.openStream(id, begin, { connected: () => undefined, data: () => true, ended: () => undefined }));
    }
    channel.handleBytes(replies[id - 1]!);
  }
  replies.length = 0;
  sent.last = undefined;
  const after = snapshot();
  if (circuit.streamCount !== n) throw new Error(`${circuit.streamCount} streams open, not ${n}`);
  sink += kept.length;
  return perItem(before, after, n);
}

// ---------------------------------------------------------------------------------

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  const load0 = loadavg().map((x) => x.toFixed(2)).join(' ');
  const paths = await measurePaths(opts);
  const limits = await measureLimits(opts);
  const memory = {
    circuit: idleCircuits(opts.idle),
    stream: idleStreams(Math.min(opts.idle, 0xffff), false),
    torStream: idleStreams(Math.min(opts.idle, 0xffff), true),
  };
  const load = `${load0} → ${loadavg().map((x) => x.toFixed(2)).join(' ')}`;
  const run = Math.floor(opts.chunk / LP.fixedCellLength);
  if (opts.json) {
    console.log(JSON.stringify({ node: process.version, load, opts, paths, limits, memory, sink: sink > 0 }, null, 1));
    return;
  }
  const rows: [string, number[]][] = [
    [`orport: channel.handleBytes, ${opts.chunk}-byte chunks (runs of ≤ ${run + 1} cells)`, paths.channel],
    ['orport: circuit.handleCell, cell by cell', paths.perCell],
    ['Node limit: per cell, 3 × AES update (509 B) + SHA-1 copy/update/digest', limits.perCell],
    [`Node limit: batched, 3 × AES update (${run} × 509 B)`, limits.batchedAes],
    [`Node limit: batched AES + SHA-1 update/copy/digest(base64) per cell`, limits.batchedAesSha],
  ];
  const cpu = cpus();
  console.log(`bench/cellpath: ${fmt(opts.cells)} DATA cells from hop 3 of 3 per round, ${opts.rounds} rounds, medians; node ${process.version}; ${cpu.length} × ${cpu[0]?.model.trim() ?? 'cpu'}; load ${load}`);
  console.log('| inbound path | cells per CPU second | (min - max) | CPU µs/cell |');
  console.log('|---|---|---|---|');
  for (const [name, xs] of rows) console.log(`| ${name} | ${fmt(median(xs))} | (${fmt(Math.min(...xs))} - ${fmt(Math.max(...xs))}) | ${(1e6 / median(xs)).toFixed(2)} |`);
  const kib = (b: number) => `${(b / 1024).toFixed(2)} KiB`;
  console.log(`\n| idle, per item (${fmt(opts.idle)} of each, after GC) | heap | external | RSS |`);
  console.log('|---|---|---|---|');
  console.log(`| three-hop circuit (CircuitMachine: 3 layers, windows) | ${kib(memory.circuit.heap)} | ${kib(memory.circuit.external)} | ${kib(memory.circuit.rss)} |`);
  console.log(`| open stream (CircuitMachine's stream, plain events) | ${kib(memory.stream.heap)} | ${kib(memory.stream.external)} | ${kib(memory.stream.rss)} |`);
  console.log(`| open stream as a TorStream (Duplex) | ${kib(memory.torStream.heap)} | ${kib(memory.torStream.external)} | ${kib(memory.torStream.rss)} |`);
}

main().catch((err: unknown) => {
  console.error(`bench/cellpath: ${err instanceof Error ? err.stack : String(err)}`);
  process.exitCode = 1;
});
