/**
 * bench/relay — issue 4's benchmark: orport, Python Stem 1.8 and a plain DirPort HTTP
 * GET against the same relay of the project's private Tor network, in one run, printed
 * as medians and ratios.
 *
 *   npm run bench -- relay [--rounds 15] [--batch-rounds 5] [--relay relay0] [--json]
 *   node --import tsx src/cli/main.ts testnet -- node --import tsx bench/relay.ts
 *
 * With ORPORT_TESTNET_JSON set (run inside `orport testnet -- …`) it uses that network;
 * otherwise it boots one itself (ensureIsolated() + startTestnet(): as root the process
 * re-executes itself under `unshare --net`) and stops it at the end, also on an error
 * or Ctrl-C.
 *
 * Latency rounds. Each round runs one session per peer, the peers' order rotating from
 * round to round so that drift and load affect all alike:
 *   orport    Relay.connect() resolving (TCP, TLS, VERSIONS … NETINFO, CERTS verified),
 *             relay.createCircuit() (CREATE_FAST), then circuit.directory() of
 *             /tor/server/authority, the consensus and consensus.z, each on a fresh stream
 *   Stem      the same with stem.client (bench/stem_relay.py, one long-lived
 *             /usr/bin/python3 process; it times everything itself with perf_counter):
 *             Relay.connect(host, port, [3, 4, 5]) returning, create_circuit(),
 *             circ.directory(request, n)
 *   DirPort   node:http GET of the same three paths, a fresh TCP connection for each
 *   and, as extra rows, orport with { tlsMaxVersion: 'TLSv1.3' }, { quickAck: false },
 *   directory(…, { optimistic: false }) and both of the last two: the measurements
 *   behind orport's defaults.
 * A fetch's time ends with the last byte of the raw response; parsing and inflating
 * happen after the clock stops, for every peer.
 *
 * Batch rounds: 100 fetches of /tor/server/authority on a connection (and circuit) opened
 * beforehand. Stem: one after another on its circuit (its API allows nothing else).
 * orport: all at once on its one connection, in three layouts (1 circuit x 100 streams,
 * 10 x 10, 100 circuits x 1, creating the extra circuits inside the timed region); the
 * headline uses the fastest with default options. Extra rows: 1 x 100 with requests
 * sent after CONNECTED, and orport one after another (as Stem). DirPort: 100 concurrent GETs, each
 * on its own connection.
 *
 * Correctness, checked while measuring: every fetch must answer 200 with a non-empty
 * body; per round the bodies (sha256, inflated for .z) of all peers are compared, and at
 * the end orport's and Stem's copy of each path must equal the DirPort's fetched back to
 * back (the consensus turns over every 10 s on this network, hence the retries). Stem
 * fails now and then (it reads 1024 bytes at a time and pops cells from whatever it
 * got); failures are counted and the session retried on a fresh connection. A relay
 * Stem cannot talk to at all is replaced by another unless --relay was given (see
 * chooseRelay).
 *
 * Nothing asserts wall-clock time: this only reports (exit status 1 only for wrong answers).
 */
import { createHash } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { inflateSync } from 'node:zlib';
import { Relay, parseHttpResponse, type ConnectOptions, type RelayCircuit } from '../src/index.js';
import { JsonLinesPeer } from './peer.js';
import { runOnTestnet } from './testnet-run.js';
import {
  relayNodes,
  type RelayNodeDescription,
  type TestnetDescription,
} from '../src/testnet/index.js';

const STEM_SIDE = fileURLToPath(new URL('./stem_relay.py', import.meta.url));
const HOST = '127.0.0.1';

const SMALL = '/tor/server/authority';
const CONSENSUS = '/tor/status-vote/current/consensus';
const CONSENSUS_Z = '/tor/status-vote/current/consensus.z';
const PATHS = [SMALL, CONSENSUS, CONSENSUS_Z] as const;
type Path = (typeof PATHS)[number];
const PATH_LABEL: Record<Path, string> = { [SMALL]: 'fetch /tor/server/authority', [CONSENSUS]: 'fetch consensus', [CONSENSUS_Z]: 'fetch consensus.z' };

const TARGETS = { connectCircuit: 5, fetch: 1, batch: 10 } as const;
const STEM_ATTEMPTS = 5;

// ------------------------------------------------------------------------------------
// Options

interface Options {
  rounds: number;
  batchRounds: number;
  batchSize: number;
  warmup: number;
  relay: string;
  relayGiven: boolean;
  json: boolean;
  stem: boolean;
  variants: boolean;
  verbose: boolean;
}

const USAGE = `usage: npm run bench -- relay [options]
       node --import tsx bench/relay.ts [options]

  --rounds N        latency rounds (default 15)
  --batch-rounds N  rounds of the 100-fetch batch (default 5)
  --batch-size N    fetches per batch (default 100)
  --warmup N        untimed rounds first (default 2)
  --relay NICK      the relay to measure (default relay0)
  --no-stem         leave Stem out
  --no-variants     leave out the orport variants (TLS 1.3, quickAck off, after CONNECTED)
  --json            machine-readable output on stdout
  --verbose         the network's boot log on stderr

Uses the network in ORPORT_TESTNET_JSON, or boots one (in its own network namespace).`;

function parseArgs(argv: readonly string[]): Options {
  const opts: Options = { rounds: 15, batchRounds: 5, batchSize: 100, warmup: 2, relay: 'relay0', relayGiven: false, json: false, stem: true, variants: true, verbose: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const count = (min: number) => {
      const v = Number(argv[++i]);
      if (!Number.isInteger(v) || v < min) throw new Error(`${arg} needs an integer >= ${min}`);
      return v;
    };
    if (arg === '--rounds') opts.rounds = count(1);
    else if (arg === '--batch-rounds') opts.batchRounds = count(0);
    else if (arg === '--batch-size') opts.batchSize = count(1);
    else if (arg === '--warmup') opts.warmup = count(0);
    else if (arg === '--relay') {
      const v = argv[++i];
      if (!v) throw new Error('--relay needs a nickname');
      opts.relay = v;
      opts.relayGiven = true;
    } else if (arg === '--json') opts.json = true;
    else if (arg === '--no-stem') opts.stem = false;
    else if (arg === '--no-variants') opts.variants = false;
    else if (arg === '--verbose') opts.verbose = true;
    else if (arg === '--help' || arg === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else throw new Error(`unknown argument ${arg}\n${USAGE}`);
  }
  if (opts.batchSize > 65535) throw new Error('--batch-size: at most 65535 (stream ids on one circuit)');
  return opts;
}

// ------------------------------------------------------------------------------------
// Results

interface Fetched {
  ms: number;
  status: number;
  bodyBytes: number;
  sha256: string;
}

interface Session {
  connectMs?: number;
  createMs?: number;
  fetches: Partial<Record<Path, Fetched>>;
  tls?: string;
}

/** Stem's failures, by stage ("connect", "create", "fetch /tor/…"), with one example message each. */
class Failures {
  readonly counts = new Map<string, { count: number; example: string }>();
  add(stage: string, error: string): void {
    const key = stage.replace(/ #\d+$/, '');
    const entry = this.counts.get(key) ?? { count: 0, example: error };
    entry.count++;
    this.counts.set(key, entry);
  }
  get total(): number {
    let n = 0;
    for (const e of this.counts.values()) n += e.count;
    return n;
  }
  toJSON(): Record<string, { count: number; example: string }> {
    return Object.fromEntries(this.counts);
  }
}

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/** Problems with answers (non-200, empty, mismatches that never resolved): any makes the exit status 1. */
const problems: string[] = [];

function checkFetched(peer: string, path: string, f: Fetched): void {
  if (f.status !== 200) problems.push(`${peer} ${path}: HTTP ${f.status}`);
  else if (f.bodyBytes === 0) problems.push(`${peer} ${path}: empty body`);
}

// ------------------------------------------------------------------------------------
// orport

const dirRequest = (path: string): string => `GET ${path} HTTP/1.0\r\n\r\n`;

function digestOrport(raw: Uint8Array, path: string, ms: number): Fetched {
  const r = parseHttpResponse(raw, { compressed: path.endsWith('.z') });
  return { ms, status: r.statusCode, bodyBytes: r.body.length, sha256: sha256(r.body) };
}

interface OrportVariant {
  connect?: ConnectOptions;
  optimistic?: boolean;
}

async function orportSession(node: RelayNodeDescription, variant: OrportVariant, signal: AbortSignal): Promise<Session> {
  const t0 = performance.now();
  const relay = await Relay.connect(HOST, node.orPort, undefined, { ...variant.connect, signal });
  try {
    const t1 = performance.now();
    const circuit = await relay.createCircuit({ signal });
    const t2 = performance.now();
    const raws: [Path, Uint8Array, number][] = [];
    let streamId = 1;
    for (const path of PATHS) {
      const s = performance.now();
      const raw = await circuit.directory(dirRequest(path), streamId++, { signal, ...(variant.optimistic === undefined ? {} : { optimistic: variant.optimistic }) });
      raws.push([path, raw, performance.now() - s]);
    }
    const session: Session = { connectMs: t1 - t0, createMs: t2 - t1, fetches: {} };
    for (const [path, raw, ms] of raws) session.fetches[path] = digestOrport(raw, path, ms);
    return session;
  } finally {
    await relay.close();
  }
}

type BatchLayout = { circuits: number; streams: number; optimistic?: boolean } | 'sequential';

const layoutName = (layout: BatchLayout): string =>
  layout === 'sequential'
    ? 'orport, one after another'
    : `orport, ${layout.circuits} circuit${layout.circuits > 1 ? 's' : ''} x ${layout.streams} stream${layout.streams > 1 ? 's' : ''}${layout.optimistic === false ? ', after CONNECTED' : ''}`;

/** `batchSize` fetches of SMALL on one connection; the first circuit exists before the clock starts. */
async function orportBatch(node: RelayNodeDescription, layout: BatchLayout, batchSize: number, signal: AbortSignal): Promise<{ totalMs: number; fetched: Fetched[] }> {
  const relay = await Relay.connect(HOST, node.orPort, undefined, { signal });
  try {
    const first = await relay.createCircuit({ signal });
    const raws: Uint8Array[] = [];
    const start = performance.now();
    if (layout === 'sequential') {
      for (let i = 0; i < batchSize; i++) raws.push(await first.directory(dirRequest(SMALL), i + 1, { signal }));
    } else {
      const { circuits, streams, optimistic } = layout;
      const onCircuit = async (circuit: RelayCircuit, from: number): Promise<Uint8Array[]> => {
        const n = Math.min(streams, batchSize - from);
        return Promise.all(Array.from({ length: n }, (_, j) => circuit.directory(dirRequest(SMALL), j + 1, { signal, ...(optimistic === undefined ? {} : { optimistic }) })));
      };
      const jobs: Promise<Uint8Array[]>[] = [];
      for (let c = 0; c < circuits && c * streams < batchSize; c++) {
        jobs.push(c === 0 ? onCircuit(first, 0) : relay.createCircuit({ signal }).then((circuit) => onCircuit(circuit, c * streams)));
      }
      for (const part of await Promise.all(jobs)) raws.push(...part);
    }
    const totalMs = performance.now() - start;
    return { totalMs, fetched: raws.map((raw) => digestOrport(raw, SMALL, Number.NaN)) };
  } finally {
    await relay.close();
  }
}

// ------------------------------------------------------------------------------------
// DirPort

/** One plain HTTP GET on a fresh connection (as a client would), timed to the response's end. */
function dirPortGet(port: number, path: string, signal: AbortSignal): Promise<Fetched> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const req = httpRequest({ host: HOST, port, path, agent: false, signal, timeout: 30_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const ms = performance.now() - start;
        let body: Uint8Array = Buffer.concat(chunks);
        const encoding = String(res.headers['content-encoding'] ?? '').toLowerCase();
        try {
          if (encoding === 'deflate' || encoding === 'x-deflate' || (path.endsWith('.z') && encoding !== 'identity')) body = inflateSync(body);
        } catch (err) {
          reject(new Error(`DirPort ${path}: cannot inflate: ${(err as Error).message}`));
          return;
        }
        resolve({ ms, status: res.statusCode ?? 0, bodyBytes: body.length, sha256: sha256(body) });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`DirPort ${port} ${path}: timeout`)));
    req.on('error', reject);
    req.end();
  });
}

async function dirPortSession(node: RelayNodeDescription, signal: AbortSignal): Promise<Session> {
  const session: Session = { fetches: {} };
  for (const path of PATHS) session.fetches[path] = await dirPortGet(node.dirPort, path, signal);
  return session;
}

async function dirPortBatch(node: RelayNodeDescription, batchSize: number, signal: AbortSignal): Promise<{ totalMs: number; fetched: Fetched[] }> {
  const start = performance.now();
  const fetched = await Promise.all(Array.from({ length: batchSize }, () => dirPortGet(node.dirPort, SMALL, signal)));
  return { totalMs: performance.now() - start, fetched };
}

// ------------------------------------------------------------------------------------
// Stem (bench/stem_relay.py --serve)

interface StemFetch {
  path: Path;
  ms: number;
  status: number;
  raw_bytes: number;
  body_bytes: number;
  sha256: string;
}

interface StemReply {
  ok: boolean;
  ready?: boolean;
  stem?: string;
  python?: string;
  openssl?: string;
  stage?: string;
  error?: string;
  connect_ms?: number;
  create_ms?: number;
  tls?: string | null;
  fetches?: StemFetch[];
  total_ms?: number;
  statuses?: number[];
  body_bytes?: number[];
  sha256s?: string[];
}

class StemSide extends JsonLinesPeer<StemReply> {
  /** A session, retried on a fresh connection after a failure (each counted). */
  async session(node: RelayNodeDescription, failures: Failures, signal: AbortSignal): Promise<Session | undefined> {
    for (let attempt = 0; attempt < STEM_ATTEMPTS && !signal.aborted; attempt++) {
      const r = await this.request({ op: 'session', host: HOST, port: node.orPort, paths: PATHS });
      if (!r.ok || !r.fetches) {
        failures.add(r.stage ?? '?', r.error ?? '?');
        if (r.stage === 'process') break;
        continue;
      }
      const session: Session = { connectMs: r.connect_ms, createMs: r.create_ms, fetches: {}, tls: r.tls ?? undefined };
      for (const f of r.fetches) session.fetches[f.path] = { ms: f.ms, status: f.status, bodyBytes: f.body_bytes, sha256: f.sha256 };
      return session;
    }
    return undefined;
  }

  async batch(node: RelayNodeDescription, batchSize: number, failures: Failures, signal: AbortSignal): Promise<{ totalMs: number; fetched: Fetched[] } | undefined> {
    for (let attempt = 0; attempt < STEM_ATTEMPTS && !signal.aborted; attempt++) {
      const r = await this.request({ op: 'batch', host: HOST, port: node.orPort, path: SMALL, count: batchSize });
      if (!r.ok || r.total_ms === undefined || !r.statuses || !r.sha256s) {
        failures.add(`batch ${r.stage ?? '?'}`, r.error ?? '?');
        if (r.stage === 'process') break;
        continue;
      }
      const { sha256s, body_bytes: sizes } = r;
      return { totalMs: r.total_ms, fetched: r.statuses.map((status, i) => ({ ms: Number.NaN, status, bodyBytes: sizes?.[i] ?? 0, sha256: sha256s[i]! })) };
    }
    return undefined;
  }

}

// ------------------------------------------------------------------------------------
// Statistics and output

interface Stat {
  median: number;
  min: number;
  max: number;
  n: number;
  values: number[];
}

function stat(values: readonly number[]): Stat | undefined {
  const xs = values.filter((v) => Number.isFinite(v));
  if (xs.length === 0) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { median, min: s[0]!, max: s[s.length - 1]!, n: s.length, values: [...xs] };
}

const ms = (v: number | undefined): string => (v === undefined ? '-' : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
const cell = (s: Stat | undefined): string => (s ? ms(s.median) : '-');
const range = (s: Stat | undefined): string => (s ? `(${ms(s.min)}-${ms(s.max)})` : '');
const ratio = (num: Stat | undefined, den: Stat | undefined): number | undefined => (num && den && den.median > 0 ? num.median / den.median : undefined);
const x = (r: number | undefined): string => (r === undefined ? '-' : `${r >= 10 ? r.toFixed(0) : r.toFixed(1)}x`);

function table(header: readonly string[], rows: readonly (readonly string[])[], leftColumns = 1): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => '  ' + cells.map((c, i) => (i < leftColumns ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

// ------------------------------------------------------------------------------------
// The run

type LatencyPeer = 'orport' | 'Stem' | 'DirPort' | 'orport TLS 1.3' | 'orport quickAck off' | 'orport after CONNECTED' | 'orport after CONNECTED, quickAck off';
const VARIANTS: Record<string, OrportVariant> = {
  orport: {},
  'orport TLS 1.3': { connect: { tlsMaxVersion: 'TLSv1.3' } },
  'orport quickAck off': { connect: { quickAck: false } },
  'orport after CONNECTED': { optimistic: false },
  'orport after CONNECTED, quickAck off': { optimistic: false, connect: { quickAck: false } },
};

type Metric = 'connect' | 'create' | 'connect+create' | Path;
const METRICS: readonly Metric[] = ['connect', 'create', 'connect+create', ...PATHS];
const METRIC_LABEL: Record<Metric, string> = { connect: 'connect (TLS + link handshake)', create: 'CREATE_FAST', 'connect+create': 'connect + CREATE_FAST', ...PATH_LABEL };

function metricValue(s: Session, m: Metric): number | undefined {
  if (m === 'connect') return s.connectMs;
  if (m === 'create') return s.createMs;
  if (m === 'connect+create') return s.connectMs !== undefined && s.createMs !== undefined ? s.connectMs + s.createMs : undefined;
  return s.fetches[m]?.ms;
}

const rotate = <T>(xs: readonly T[], by: number): T[] => xs.map((_, i) => xs[(i + by) % xs.length]!);

/** Back to back: `fetch` equal to the DirPort's copy fetched just before or just after (5 tries). */
async function matchesDirPort(node: RelayNodeDescription, path: Path, fetch: () => Promise<string | undefined>, signal: AbortSignal): Promise<boolean> {
  for (let attempt = 0; attempt < 5 && !signal.aborted; attempt++) {
    const before = await dirPortGet(node.dirPort, path, signal);
    const ours = await fetch();
    const after = await dirPortGet(node.dirPort, path, signal);
    if (ours !== undefined && (ours === before.sha256 || ours === after.sha256)) return true;
  }
  return false;
}

/**
 * The relay to measure. Stem 1.8's client cannot talk to some relay instances at all:
 * its socket reads at most 1024 bytes per recv(); Relay.connect() reads once and
 * create_circuit() discards one more read before sending CREATE_FAST, so when a relay's
 * VERSIONS + CERTS + AUTH_CHALLENGE + NETINFO exceed 2048 bytes (certificate sizes vary
 * by a few bytes from boot to boot; about one relay in ten of this network), the reply
 * to CREATE_FAST is parsed from the middle of a cell, every time. Unless --relay was
 * given, such a relay is swapped for the next one Stem can use, for every peer alike.
 */
async function chooseRelay(description: TestnetDescription, opts: Options, stem: StemSide | undefined, signal: AbortSignal): Promise<{ node: RelayNodeDescription; note: string }> {
  const all = relayNodes(description);
  const wanted = all.find((n) => n.nick === opts.relay);
  if (!wanted) throw new Error(`no relay named ${opts.relay} (relays: ${all.map((n) => n.nick).join(', ')})`);
  if (!stem) return { node: wanted, note: '' };
  const order = [wanted, ...(opts.relayGiven ? [] : [...all.filter((n) => n.role === 'relay'), ...all.filter((n) => n.role === 'exit'), ...all.filter((n) => n.role === 'authority')].filter((n) => n !== wanted))];
  const refused: string[] = [];
  for (const node of order) {
    const failures = new Failures();
    if (await stem.session(node, failures, signal)) {
      return { node, note: refused.length ? `Stem failed every session with ${refused.join('; ')}, so ${node.nick} is measured instead` : '' };
    }
    const [stage, e] = [...failures.counts][0] ?? ['?', { count: 0, example: '?' }];
    refused.push(`${node.nick} (${e.count} times at ${stage}: ${e.example})`);
  }
  return { node: wanted, note: `Stem failed every session with ${refused.join('; ')}` };
}

async function bench(description: TestnetDescription, opts: Options, signal: AbortSignal): Promise<void> {
  const log = (m: string) => {
    if (!opts.json) process.stderr.write(`bench/relay: ${m}\n`);
  };

  const { peer: stem, note: stemNote } = opts.stem ? await StemSide.startOrSay(STEM_SIDE) : { peer: undefined, note: 'Stem not measured (--no-stem)' };
  const stemFailures = new Failures();
  const stemTls = new Set<string>();
  try {
    const { node, note: relayNote } = await chooseRelay(description, opts, stem, signal);
    if (relayNote) log(relayNote);
    const peers: LatencyPeer[] = ['orport', ...(stem ? (['Stem'] as const) : []), 'DirPort', ...(opts.variants ? (['orport TLS 1.3', 'orport quickAck off', 'orport after CONNECTED', 'orport after CONNECTED, quickAck off'] as const) : [])];
    const sessions = new Map<LatencyPeer, Session[]>(peers.map((p) => [p, []]));
    const agreement = new Map<Path, { same: number; rounds: number }>(PATHS.map((p) => [p, { same: 0, rounds: 0 }]));

    const runSession = async (peer: LatencyPeer): Promise<Session | undefined> => {
      if (peer === 'Stem') {
        const s = await stem!.session(node, stemFailures, signal);
        if (s?.tls) stemTls.add(s.tls);
        return s;
      }
      if (peer === 'DirPort') return dirPortSession(node, signal);
      return orportSession(node, VARIANTS[peer]!, signal);
    };

    log(`${node.nick} (ORPort ${HOST}:${node.orPort}, DirPort ${node.dirPort}); ${opts.warmup} warm-up + ${opts.rounds} latency rounds of ${peers.length} peers`);
    for (let round = -opts.warmup; round < opts.rounds; round++) {
      if (signal.aborted) throw signal.reason;
      const results = new Map<LatencyPeer, Session>();
      for (const peer of rotate(peers, ((round % peers.length) + peers.length) % peers.length)) {
        const s = await runSession(peer);
        if (s) results.set(peer, s);
      }
      if (round < 0) continue;
      for (const [peer, s] of results) {
        sessions.get(peer)!.push(s);
        for (const path of PATHS) {
          const f = s.fetches[path];
          if (f) checkFetched(peer, path, f);
          else problems.push(`${peer} ${path}: no answer`);
        }
      }
      for (const path of PATHS) {
        const hashes = new Set([...results.values()].map((s) => s.fetches[path]?.sha256));
        const a = agreement.get(path)!;
        a.rounds++;
        if (hashes.size === 1) a.same++;
      }
    }

    // Batch rounds.
    const layouts: BatchLayout[] = [
      { circuits: 1, streams: opts.batchSize },
      { circuits: 10, streams: Math.ceil(opts.batchSize / 10) },
      { circuits: opts.batchSize, streams: 1 },
      ...(opts.variants ? [{ circuits: 1, streams: opts.batchSize, optimistic: false }] : []),
      'sequential',
    ];
    type BatchPeer = string;
    const batchPeers: BatchPeer[] = [...layouts.map(layoutName), ...(stem ? ['Stem'] : []), 'DirPort'];
    const batchTimes = new Map<BatchPeer, number[]>(batchPeers.map((p) => [p, []]));
    let batchAgree = 0;
    if (opts.batchRounds > 0) log(`${opts.batchRounds} rounds of ${opts.batchSize} fetches of ${SMALL} per peer`);
    for (let round = -Math.min(1, opts.warmup); round < opts.batchRounds; round++) {
      if (signal.aborted) throw signal.reason;
      const hashes = new Set<string>();
      for (const peer of rotate(batchPeers, ((round % batchPeers.length) + batchPeers.length) % batchPeers.length)) {
        const layout = layouts.find((l) => layoutName(l) === peer);
        const r = layout
          ? await orportBatch(node, layout, opts.batchSize, signal)
          : peer === 'Stem'
            ? await stem!.batch(node, opts.batchSize, stemFailures, signal)
            : await dirPortBatch(node, opts.batchSize, signal);
        if (!r) continue;
        if (round < 0) continue;
        batchTimes.get(peer)!.push(r.totalMs);
        if (r.fetched.length !== opts.batchSize) problems.push(`${peer} batch: ${r.fetched.length} answers for ${opts.batchSize} requests`);
        for (const f of r.fetched) {
          checkFetched(`${peer} batch`, SMALL, f);
          hashes.add(f.sha256);
        }
      }
      if (round >= 0 && hashes.size === 1) batchAgree++;
    }

    // Back-to-back checks against the DirPort's copy.
    log('checking orport and Stem against the DirPort, back to back');
    const checks: Record<string, boolean> = {};
    for (const path of PATHS) {
      checks[`orport ${path}`] = await matchesDirPort(node, path, async () => (await orportSession(node, {}, signal)).fetches[path]?.sha256, signal);
      if (!checks[`orport ${path}`]) problems.push(`orport ${path}: never equal to the DirPort's copy fetched back to back`);
      if (stem) {
        checks[`Stem ${path}`] = await matchesDirPort(node, path, async () => (await stem!.session(node, stemFailures, signal))?.fetches[path]?.sha256, signal);
        if (!checks[`Stem ${path}`]) problems.push(`Stem ${path}: never equal to the DirPort's copy fetched back to back`);
      }
    }

    report({ description, node, relayNote, opts, stemNote, stemTls: [...stemTls], peers, sessions, agreement, batchPeers, batchTimes, batchAgree, layouts, checks, stemFailures });
  } finally {
    stem?.close();
  }
}

interface ReportInput {
  description: TestnetDescription;
  node: RelayNodeDescription;
  opts: Options;
  stemNote: string;
  relayNote: string;
  stemTls: string[];
  peers: LatencyPeer[];
  sessions: Map<LatencyPeer, Session[]>;
  agreement: Map<Path, { same: number; rounds: number }>;
  batchPeers: string[];
  batchTimes: Map<string, number[]>;
  batchAgree: number;
  layouts: BatchLayout[];
  checks: Record<string, boolean>;
  stemFailures: Failures;
}

function report(r: ReportInput): void {
  const { opts, node } = r;
  const stats = new Map<LatencyPeer, Map<Metric, Stat | undefined>>();
  for (const peer of r.peers) {
    const list = r.sessions.get(peer)!;
    stats.set(peer, new Map(METRICS.map((m) => [m, stat(list.map((s) => metricValue(s, m) ?? Number.NaN))])));
  }
  const get = (peer: LatencyPeer, m: Metric) => stats.get(peer)?.get(m);
  const batch = new Map(r.batchPeers.map((p) => [p, stat(r.batchTimes.get(p)!)]));
  // The headline: the fastest concurrent layout with orport's default options.
  const concurrent = r.layouts.filter((l) => l !== 'sequential' && l.optimistic === undefined).map(layoutName);
  const best = concurrent.reduce<string | undefined>((b, p) => (b === undefined || (batch.get(p)?.median ?? Infinity) < (batch.get(b)?.median ?? Infinity) ? p : b), undefined)!;
  const hasStem = r.peers.includes('Stem');

  // Targets.
  const targets: { name: string; value: number | undefined; target: number; met: boolean | undefined; detail: string }[] = [];
  if (hasStem) {
    const cc = ratio(get('Stem', 'connect+create'), get('orport', 'connect+create'));
    targets.push({ name: 'connect + CREATE_FAST', value: cc, target: TARGETS.connectCircuit, met: cc === undefined ? undefined : cc >= TARGETS.connectCircuit, detail: `Stem ${ms(get('Stem', 'connect+create')?.median)} ms / orport ${ms(get('orport', 'connect+create')?.median)} ms` });
    for (const path of PATHS) {
      const v = ratio(get('Stem', path), get('orport', path));
      const opt = get('orport after CONNECTED', path);
      const withOptimistic = opt ? `; with { optimistic: false } ${ms(opt.median)} ms, ${x(ratio(get('Stem', path), opt))}` : '';
      targets.push({ name: `${PATH_LABEL[path]} not slower`, value: v, target: TARGETS.fetch, met: v === undefined ? undefined : v >= TARGETS.fetch, detail: `Stem ${ms(get('Stem', path)?.median)} ms / orport ${ms(get('orport', path)?.median)} ms${withOptimistic}` });
    }
    const b = ratio(batch.get('Stem'), batch.get(best));
    targets.push({ name: `${opts.batchSize} small fetches`, value: b, target: TARGETS.batch, met: b === undefined ? undefined : b >= TARGETS.batch, detail: `Stem ${ms(batch.get('Stem')?.median)} ms / ${best} ${ms(batch.get(best)?.median)} ms` });
  }

  if (opts.json) {
    const json = {
      relay: { nick: node.nick, orPort: node.orPort, dirPort: node.dirPort, note: r.relayNote || null },
      torVersion: r.description.torVersion,
      node: process.version,
      stem: r.stemNote,
      stemTls: r.stemTls,
      load: loadavg(),
      rounds: opts.rounds,
      batchRounds: opts.batchRounds,
      batchSize: opts.batchSize,
      latency: Object.fromEntries(r.peers.map((p) => [p, Object.fromEntries(METRICS.map((m) => [m, get(p, m) ?? null]))])),
      batch: Object.fromEntries(r.batchPeers.map((p) => [p, batch.get(p) ?? null])),
      batchBest: best,
      targets,
      agreement: Object.fromEntries(r.agreement),
      batchAgreement: { same: r.batchAgree, rounds: opts.batchRounds },
      checks: r.checks,
      stemFailures: r.stemFailures.toJSON(),
      problems,
    };
    console.log(JSON.stringify(json, null, 2));
    return;
  }

  const cpu = cpus();
  const out: string[] = [];
  out.push(`bench/relay: ${node.nick} (ORPort ${HOST}:${node.orPort}, DirPort ${node.dirPort}) of a private network, tor ${r.description.torVersion}`);
  out.push(`  node ${process.version}; ${r.stemNote}${r.stemTls.length ? `, Stem negotiated ${r.stemTls.join('/')}` : ''}; ${cpu.length} x ${cpu[0]?.model.trim() ?? 'cpu'}; load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  if (r.relayNote) out.push(`  NOTE: ${r.relayNote}`);
  out.push(`  ${opts.rounds} latency rounds, ${opts.batchRounds} batch rounds (after warm-up), peers interleaved and rotated per round; milliseconds, median (min-max)`);
  out.push('  ratio = the peer\'s median / orport\'s: how many times faster orport is (below 1x: orport is slower)');
  out.push('');

  const header = ['metric', 'orport', '', ...(hasStem ? ['Stem', '', 'Stem/orport'] : []), 'DirPort', '', 'DirPort/orport'];
  const rows = METRICS.map((m) => {
    const o = get('orport', m);
    const d = get('DirPort', m);
    const s = get('Stem', m);
    return [METRIC_LABEL[m], cell(o), range(o), ...(hasStem ? [cell(s), range(s), x(ratio(s, o))] : []), cell(d), range(d), x(ratio(d, o))];
  });
  const bo = batch.get(best);
  const bs = batch.get('Stem');
  const bd = batch.get('DirPort');
  rows.push([`${opts.batchSize} x ${SMALL}, total`, cell(bo), range(bo), ...(hasStem ? [cell(bs), range(bs), x(ratio(bs, bo))] : []), cell(bd), range(bd), x(ratio(bd, bo))]);
  out.push(table(header, rows));
  out.push(`  (the ${opts.batchSize} fetches: orport all at once on one connection as "${best.replace('orport, ', '')}", the fastest layout; Stem one after another on one circuit; DirPort ${opts.batchSize} concurrent GETs)`);

  if (r.peers.some((p) => p.startsWith('orport '))) {
    out.push('');
    out.push("orport's defaults against the alternatives (each its own session in every round; ratio = alternative / default, > 1 means the default is faster):");
    const variants = r.peers.filter((p) => p.startsWith('orport ')) as LatencyPeer[];
    const vh = ['metric', 'default', ...variants.flatMap((v) => [v.replace('orport ', ''), 'ratio'])];
    const vr = METRICS.map((m) => {
      const o = get('orport', m);
      return [METRIC_LABEL[m], cell(o), ...variants.flatMap((v) => [cell(get(v, m)), x(ratio(get(v, m), o))])];
    });
    out.push(table(vh, vr));
  }

  out.push('');
  out.push(`${opts.batchSize} fetches of ${SMALL} on one connection (total ms, median (min-max)):`);
  const bh = ['layout', 'total', '', `vs ${best.replace('orport, ', '')}`];
  out.push(table(bh, r.batchPeers.map((p) => [p, cell(batch.get(p)), range(batch.get(p)), x(ratio(batch.get(p), bo))])));

  out.push('');
  if (hasStem) {
    out.push('targets (issue 4):');
    for (const t of targets) {
      out.push(`  ${t.name.padEnd(38)} >= ${String(t.target).padStart(2)}x Stem: ${x(t.value).padStart(6)}  ${t.met === undefined ? 'not measured' : t.met ? 'met' : 'NOT met'}  (${t.detail})`);
    }
  }
  out.push('correctness:');
  for (const path of PATHS) {
    const a = r.agreement.get(path)!;
    out.push(`  ${path}: all peers' bodies identical in ${a.same}/${a.rounds} rounds; orport = DirPort back to back: ${r.checks[`orport ${path}`] ? 'yes' : 'NO'}${hasStem ? `; Stem = DirPort: ${r.checks[`Stem ${path}`] ? 'yes' : 'NO'}` : ''}`);
  }
  out.push(`  batch: every peer's ${opts.batchSize} bodies identical (and 200) in ${r.batchAgree}/${opts.batchRounds} rounds`);
  if (hasStem) {
    const f = r.stemFailures;
    out.push(`  Stem failures (each retried on a fresh connection): ${f.total === 0 ? 'none' : [...f.counts].map(([stage, e]) => `${e.count} at ${stage} (${e.example})`).join('; ')}`);
  }
  out.push(problems.length === 0 ? '  no wrong answers' : `  WRONG ANSWERS: ${problems.slice(0, 10).join('; ')}${problems.length > 10 ? ` … (${problems.length})` : ''}`);
  console.log(out.join('\n'));
}

// ------------------------------------------------------------------------------------
// Network: the one we run in, or our own

async function main(): Promise<number> {
  const opts = parseArgs(process.argv.slice(2));
  const say = (m: string) => {
    if (!opts.json) process.stderr.write(`bench/relay: ${m}\n`);
  };
  return runOnTestnet({ name: 'relay', say, verbose: opts.verbose }, async (description, signal) => {
    await bench(description, opts, signal);
    return problems.length ? 1 : 0;
  });
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(`bench/relay: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  },
);
