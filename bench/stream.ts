/**
 * bench/stream — issue 12's throughput benchmark: the private network's test file
 * downloaded over three hops by orport (`client.connect`, the body counted and dropped)
 * and by C tor's client (the network's client node: `curl --socks5-hostname` through its
 * SocksPort, output to /dev/null), rounds alternating, in one run. Reports MB/s and the
 * client's CPU seconds per MiB: orport's own process (process.cpuUsage: TLS, three
 * layers of relay crypto, digests, SENDMEs, delivery into a Readable; the network, its
 * forwarders and file server run in bench/testnet-host's process) against the tor
 * client process (utime + stime from /proc/PID/stat; curl's CPU is the application's,
 * not counted), and the ratios.
 *
 *   npm run bench -- stream [--rounds 5] [--latency MS[,MS…]] [--json]
 *   npm run bench -- stream --latency 0,10,25 --rounds 2   # issue 13's table and targets
 *
 * orport runs twice per round: with congestion control negotiated with the exit (prop
 * 324, the default, as C tor does) and with fixed SENDME windows (`congestionControl:
 * false`), each on one circuit kept across rounds (C tor keeps its circuit, and so its
 * congestion window, from one curl to the next), and a third time with CGO relay crypto
 * negotiated with the exit (`relayCrypto: 'cgo'`, prop 359, with congestion control): CGO
 * against tor1 in one run, and a fourth time over a conflux set (prop 329,
 * `client.buildConflux`: two linked circuits to one exit). C tor runs twice: as it comes
 * (its exit streams go over a conflux set of two linked circuits) and on one circuit
 * (EXTENDCIRCUIT + ATTACHSTREAM), like orport's single-circuit rows. `--latency MS` boots the network with that one-way delay on every ORPort link
 * (testnet/delay), where fixed windows bind. For the rows with congestion control, the
 * exits' own Vegas updates during the rounds (their circ.log) are summarized: median CWND,
 * how often the window was full, and the RTT EWMA over the minimum (Vegas grows CWND only
 * while CWND × (1 − min/EWMA), the queue it infers, is under α) — what sets the exit's
 * sending rate.
 *
 * The machine is shared and has 2 cores, which the relays use too: the load average is
 * printed; medians are reported. Nothing here asserts time; exit status 1 when a
 * download fails or comes out short.
 *
 * Layer: a benchmark (uses src/client, src/testnet; nothing uses it).
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { Network } from '../src/dir/network.js';
import { TorClient } from '../src/client/torclient.js';
import type { TorCircuit } from '../src/client/torcircuit.js';
import type { ConfluxCircuit } from '../src/client/conflux.js';
import type { TestnetDescription } from '../src/testnet/index.js';
import { join } from 'node:path';
import { ControlSession } from '../src/testnet/control.js';
import { EXIT_CIRC_LOG } from '../src/testnet/torrc.js';
import { quantile, runOnTestnet } from './testnet-run.js';

interface Options {
  rounds: number;
  json: boolean;
  latencyMs: number;
  /** Several latencies: one network each, one after the other, in this run. */
  latencies: number[];
}

function parseOptions(argv: readonly string[]): Options {
  const opts: Options = { rounds: 5, json: false, latencyMs: 0, latencies: [0] };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--rounds') opts.rounds = Math.max(1, Number(argv[++i]) || 5);
    else if (argv[i] === '--latency') {
      opts.latencies = String(argv[++i]).split(',').map((x) => Math.max(0, Number(x) || 0));
      opts.latencyMs = opts.latencies[0]!;
    }
    else if (argv[i] === '--json') opts.json = true;
    else throw new Error(`unknown option ${argv[i]}\nusage: npm run bench -- stream [--rounds N] [--latency MS[,MS…]] [--json]`);
  }
  return opts;
}

type Who = 'orport' | 'orport conflux' | 'orport fixed windows' | 'orport CGO' | 'C tor' | 'C tor one circuit';
const WHO: readonly Who[] = ['orport', 'orport conflux', 'orport fixed windows', 'orport CGO', 'C tor', 'C tor one circuit'];

/** A row's medians over its rounds. */
interface RowSummary {
  mbps: number;
  cpuPerMiB: number;
  rounds: number;
  vegas: VegasSummary | undefined;
}

interface Sample {
  bytes: number;
  seconds: number;
  cpuSeconds: number;
  /** The exits' Vegas updates during the round (none on fixed windows). */
  vegas?: VegasUpdate[];
}

const TICKS_PER_SECOND = 100; // Linux USER_HZ

/** utime + stime of `pid`, in seconds. */
function processCpu(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

/** orport's circuits, one per mode, kept across rounds as C tor keeps its circuit (and its congestion window). */
const circuits = new Map<Who, TorCircuit | ConfluxCircuit>();
/** Multiplexed cells per leg of orport's conflux set over the measured rounds (did the exit use both?). */
let confluxLegCells: number[] = [];

async function orportRound(client: TorClient, description: TestnetDescription, who: Exclude<Who, 'C tor'>): Promise<Sample> {
  const { port, url } = description.http;
  const congestionControl = who !== 'orport fixed windows';
  let circuit = circuits.get(who);
  if (!circuit?.isOpen && who === 'orport conflux') {
    circuit = await client.buildConflux({ exitPort: port });
    circuits.set(who, circuit);
  } else if (!circuit?.isOpen) {
    circuit = await client.buildCircuit({ exitPort: port, congestionControl, relayCrypto: who === 'orport CGO' ? 'cgo' : 'tor1' });
    if (congestionControl && !circuit.hops[2]!.congestionControl) throw new Error('congestion control was not negotiated');
    if (who === 'orport CGO' && circuit.hops[2]!.relayCrypto !== 'cgo') throw new Error('CGO was not negotiated with the exit');
    circuits.set(who, circuit);
  }
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const stream = await circuit.openStream('127.0.0.1', port);
  stream.write(`GET ${new URL(url).pathname} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n`);
  let bytes = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) bytes += chunk.length;
  const c1 = process.cpuUsage(c0);
  if (who === 'orport conflux') confluxLegCells = [...(circuit as ConfluxCircuit).stats.cellsByLeg];
  return { bytes, seconds: (performance.now() - t0) / 1000, cpuSeconds: (c1.user + c1.system) / 1e6 };
}

/** One of an exit's Vegas updates (tor's "CC: TOR_VEGAS … RTT: min, ewma, max, CWND: …, INFL: …" info line). */
interface VegasUpdate {
  rttMinMs: number;
  rttEwmaMs: number;
  cwnd: number;
  inflight: number;
}

const VEGAS_LINE = /CC: TOR_VEGAS .*RTT: (\d+), (\d+), \d+, CWND: (\d+), INFL: (\d+)/;

const exitLogs = (description: TestnetDescription): string[] =>
  description.nodes.filter((x) => x.role === 'exit').map((exit) => join(exit.dataDir, EXIT_CIRC_LOG));

/** Where each exit's circ.log ends now (bytes; 0 before its first circuit with congestion control): a round's start. */
function vegasMark(description: TestnetDescription): number[] {
  return exitLogs(description).map((path) => (existsSync(path) ? statSync(path).size : 0));
}

/** The Vegas updates every exit logged after `mark` (tor logs one per congestion-window update), reading only what was appended. */
function vegasSince(description: TestnetDescription, mark: readonly number[]): VegasUpdate[] {
  const updates: VegasUpdate[] = [];
  exitLogs(description).forEach((path, i) => {
    if (!existsSync(path)) return;
    const from = mark[i] ?? 0;
    const fd = openSync(path, 'r');
    let text: string;
    try {
      const appended = Buffer.alloc(Math.max(0, fstatSync(fd).size - from));
      readSync(fd, appended, 0, appended.length, from);
      text = appended.toString('latin1');
    } finally {
      closeSync(fd);
    }
    for (const line of text.split('\n')) {
      const m = VEGAS_LINE.exec(line);
      if (m) updates.push({ rttMinMs: Number(m[1]), rttEwmaMs: Number(m[2]), cwnd: Number(m[3]), inflight: Number(m[4]) });
    }
  });
  return updates;
}

/**
 * What the exits' Vegas did during a row's rounds (the congestion-controlled rows): median
 * CWND, the share of updates with the window full (in flight ≥ 90% of CWND: the exit was
 * waiting for our SENDMEs, not for data), and the median RTT EWMA over the RTT minimum
 * (how much queue Vegas sees).
 */
interface VegasSummary {
  updates: number;
  cwnd: number;
  windowBound: number;
  rttEwmaOverMin: number;
}

function summarizeVegas(updates: readonly VegasUpdate[]): VegasSummary | undefined {
  if (updates.length === 0) return undefined;
  return {
    updates: updates.length,
    cwnd: quantile(updates.map((u) => u.cwnd), 0.5),
    windowBound: updates.filter((u) => u.inflight >= 0.9 * u.cwnd).length / updates.length,
    rttEwmaOverMin: quantile(updates.map((u) => u.rttEwmaMs / Math.max(1, u.rttMinMs)), 0.5),
  };
}

const formatVegas = (v: VegasSummary | undefined): string =>
  v ? `${v.cwnd.toFixed(0)}, ${(100 * v.windowBound).toFixed(0)}%, ${v.rttEwmaOverMin.toFixed(2)}` : '—';

/**
 * C tor's client on one circuit. As it comes, C tor 0.4.9 sends exit streams over a
 * conflux set (prop 329: two linked circuits to one exit, the data split between them).
 * Toggling ConfluxEnabled at run time breaks tor 0.4.9.11's
 * streams ("Conflux sequence number check failed"), so this row instead has the
 * controller build one ordinary circuit (EXTENDCIRCUIT 0: tor picks the path) and attach
 * curl's stream to it (__LeaveStreamsUnattached 1 while the round lasts, ATTACHSTREAM).
 */
class OneCircuitCtor {
  private circuitId: string | undefined;
  private circuitBuilt: { resolve: () => void; reject: (err: Error) => void } | undefined;
  private attaching: Promise<unknown>[] | undefined; // ATTACHSTREAM replies: undefined, or the error

  private constructor(private readonly control: ControlSession) {
    control.onEvent = (line) => this.onEvent(line);
  }

  static async open(controlPort: number): Promise<OneCircuitCtor> {
    const session = new OneCircuitCtor(await ControlSession.open(controlPort, { timeoutMs: 10_000 }));
    await session.control.command('SETEVENTS CIRC STREAM', 10_000);
    return session;
  }

  private onEvent(line: string): void {
    const circ = /^CIRC (\d+) (BUILT|FAILED|CLOSED)/.exec(line);
    if (circ && circ[1] === this.circuitId) {
      if (circ[2] === 'BUILT') this.circuitBuilt?.resolve();
      else {
        this.circuitId = undefined;
        this.circuitBuilt?.reject(new Error(`C tor's EXTENDCIRCUIT circuit: ${line}`));
      }
    }
    // curl's stream only (tor's own directory streams are not the controller's to attach)
    const stream = /^STREAM (\d+) NEW 0 \S+ .*PURPOSE=USER/.exec(line);
    if (stream && this.attaching && this.circuitId) {
      this.attaching.push(this.control.command(`ATTACHSTREAM ${stream[1]} ${this.circuitId}`, 10_000).then(() => undefined, (err: unknown) => err));
    }
  }

  /** The circuit, built (again, once it closed) by EXTENDCIRCUIT 0. */
  private async circuit(): Promise<void> {
    if (this.circuitId) return;
    const built = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('C tor did not build the EXTENDCIRCUIT circuit in 30 s')), 30_000);
      this.circuitBuilt = {
        resolve: () => (clearTimeout(timer), resolve()),
        reject: (err) => (clearTimeout(timer), reject(err)),
      };
    });
    try {
      const [reply] = await this.control.command('EXTENDCIRCUIT 0', 10_000);
      this.circuitId = /^250 EXTENDED (\d+)/.exec(reply ?? '')?.[1];
      if (!this.circuitId) throw new Error(`EXTENDCIRCUIT 0: ${reply}`);
    } catch (err) {
      this.circuitBuilt?.reject(err as Error); // clears the timer
      built.catch(() => undefined);
      throw err;
    }
    await built;
  }

  async round(description: TestnetDescription, node: { readonly pid: number; readonly socksPort: number }): Promise<Sample> {
    await this.circuit();
    const attaching: Promise<unknown>[] = [];
    await this.control.command('SETCONF __LeaveStreamsUnattached=1', 10_000);
    this.attaching = attaching;
    try {
      const sample = await curlRound(description, node);
      const failed = (await Promise.all(attaching)).find((e) => e !== undefined);
      if (failed) throw failed;
      if (attaching.length !== 1) throw new Error(`${attaching.length} streams attached to the one circuit, expected 1`);
      return sample;
    } finally {
      this.attaching = undefined;
      await this.control.command('SETCONF __LeaveStreamsUnattached=0', 10_000);
    }
  }

  close(): void {
    this.control.close();
  }
}

async function curlRound(description: TestnetDescription, node: { readonly pid: number; readonly socksPort: number }): Promise<Sample> {
  const cpu0 = processCpu(node.pid);
  const t0 = performance.now();
  const out = await new Promise<string>((resolve, reject) => {
    const curl = spawn('curl', ['-sS', '--max-time', '120', '--socks5-hostname', `127.0.0.1:${node.socksPort}`, '-o', '/dev/null', '-w', '%{size_download}', description.http.url.replace('localhost', '127.0.0.1')]);
    let stdout = '';
    let stderr = '';
    curl.stdout.on('data', (d: Buffer) => (stdout += d));
    curl.stderr.on('data', (d: Buffer) => (stderr += d));
    curl.once('error', reject);
    curl.once('close', (code) => (code === 0 ? resolve(stdout) : reject(new Error(`curl exited ${code}: ${stderr.trim()}`))));
  });
  const seconds = (performance.now() - t0) / 1000;
  return { bytes: Number(out), seconds, cpuSeconds: processCpu(node.pid) - cpu0 };
}

async function bench(description: TestnetDescription, opts: Options, signal: AbortSignal, say: (m: string) => void): Promise<number> {
  const network = Network.fromTorrc(readFileSync(description.networkFile, 'utf8'));
  const client = await TorClient.create({ network, refresh: false, signal, timeoutMs: 60_000 });
  const rows = Object.fromEntries(WHO.map((who) => [who, [] as Sample[]])) as Record<Who, Sample[]>;
  const failures: string[] = [];
  const ctorNode = description.nodes.find((n) => n.role === 'client');
  if (!ctorNode || ctorNode.role !== 'client') throw new Error('the network has no C tor client');
  let oneCircuit: OneCircuitCtor | undefined;
  try {
    const expected = description.http.fileBytes;
    say(`${opts.rounds} rounds of ${(expected / 1048576).toFixed(0)} MiB each, after one warm-up each`);
    for (let round = -1; round < opts.rounds; round++) {
      for (const who of round & 1 ? [...WHO].reverse() : WHO) {
        if (signal.aborted) throw signal.reason;
        try {
          const mark = vegasMark(description);
          const s =
            who === 'C tor' ? await curlRound(description, ctorNode)
            : who === 'C tor one circuit' ? await (oneCircuit ??= await OneCircuitCtor.open(ctorNode.controlPort)).round(description, ctorNode)
            : await orportRound(client, description, who);
          // orport counts the HTTP head too; curl only the body.
          if (s.bytes < expected) throw new Error(`${s.bytes} of ${expected} bytes`);
          if (who !== 'orport fixed windows') s.vegas = vegasSince(description, mark);
          // Like the orport rows, with congestion control: the exit ran Vegas during the round.
          if (who === 'C tor one circuit' && s.vegas?.length === 0) throw new Error("no exit logged a Vegas update: C tor's one circuit has no congestion control");
          if (round >= 0) rows[who].push(s);
        } catch (err) {
          failures.push(`${who} round ${round}: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
    }
  } finally {
    oneCircuit?.close();
    await client.close();
  }
  const mbps = (s: Sample) => s.bytes / 1e6 / s.seconds;
  const cpuPerMiB = (s: Sample) => s.cpuSeconds / (s.bytes / 1048576);
  const summary = Object.fromEntries(
    WHO.map((who) => [
      who,
      { mbps: quantile(rows[who].map(mbps), 0.5), cpuPerMiB: quantile(rows[who].map(cpuPerMiB), 0.5), rounds: rows[who].length, vegas: summarizeVegas(rows[who].flatMap((r) => r.vegas ?? [])) },
    ]),
  ) as Record<Who, RowSummary>;
  const load = loadavg().map((x) => x.toFixed(2)).join(' ');
  if (opts.json) {
    const perRound = Object.fromEntries(WHO.map((who) => [who, rows[who].map(({ vegas, ...r }) => ({ ...r, vegas: vegas && summarizeVegas(vegas) }))]));
    process.stdout.write(JSON.stringify({ torVersion: description.torVersion, summary, rows: perRound, load, failures, confluxLegCells }, null, 1) + '\n');
  } else {
    const o = summary.orport;
    const c = summary['C tor'];
    process.stdout.write(
      [
        `bench/stream: ${(description.http.fileBytes / 1048576).toFixed(0)} MiB over three hops (tor ${description.torVersion}), links ${opts.latencyMs} ms one way; ${cpus().length} CPUs, load ${load}; medians of ${opts.rounds} rounds`,
        "| client | MB/s | client CPU s per MiB | the exits' Vegas: median CWND, window full, RTT EWMA / min |",
        '|---|---|---|---|',
        `| orport (congestion control) | ${o.mbps.toFixed(1)} | ${o.cpuPerMiB.toFixed(4)} | ${formatVegas(o.vegas)} |`,
        `| orport (conflux: two legs, congestion control) | ${summary['orport conflux'].mbps.toFixed(1)} | ${summary['orport conflux'].cpuPerMiB.toFixed(4)} | ${formatVegas(summary['orport conflux'].vegas)} |`,
        `| orport (fixed windows) | ${summary['orport fixed windows'].mbps.toFixed(1)} | ${summary['orport fixed windows'].cpuPerMiB.toFixed(4)} | ${formatVegas(summary['orport fixed windows'].vegas)} |`,
        `| orport (CGO at the exit, congestion control) | ${summary['orport CGO'].mbps.toFixed(1)} | ${summary['orport CGO'].cpuPerMiB.toFixed(4)} | ${formatVegas(summary['orport CGO'].vegas)} |`,
        `| C tor (curl via SocksPort; tor's CPU; conflux) | ${c.mbps.toFixed(1)} | ${c.cpuPerMiB.toFixed(4)} | ${formatVegas(c.vegas)} |`,
        `| C tor, one circuit (EXTENDCIRCUIT + ATTACHSTREAM) | ${summary['C tor one circuit'].mbps.toFixed(1)} | ${summary['C tor one circuit'].cpuPerMiB.toFixed(4)} | ${formatVegas(summary['C tor one circuit'].vegas)} |`,
        `CGO / tor1 (both with congestion control): throughput ${(summary['orport CGO'].mbps / o.mbps).toFixed(2)}×, CPU per MiB ${(summary['orport CGO'].cpuPerMiB / o.cpuPerMiB).toFixed(2)}×`,
        `throughput orport / C tor: ${(o.mbps / c.mbps).toFixed(2)}× (target ≥ 1.0); CPU per MiB orport / C tor: ${(o.cpuPerMiB / c.cpuPerMiB).toFixed(2)}× (target ≤ 1.0)`,
        `conflux each: throughput orport / C tor ${(summary['orport conflux'].mbps / c.mbps).toFixed(2)}× (target ≥ 1.0), CPU per MiB ${(summary['orport conflux'].cpuPerMiB / c.cpuPerMiB).toFixed(2)}×; orport's cells by leg ${confluxLegCells.join(' / ')}`,
        `one circuit each: throughput orport / C tor ${(o.mbps / summary['C tor one circuit'].mbps).toFixed(2)}×, fixed windows / C tor ${(summary['orport fixed windows'].mbps / summary['C tor one circuit'].mbps).toFixed(2)}×`,
        ...(failures.length ? [`failures (${failures.length}):`, ...failures.map((f) => `  ${f}`)] : []),
      ].join('\n') + '\n',
    );
  }
  return failures.length ? 1 : 0;
}

/** Several latencies: this bench once per latency (a network each), then one table with issue 13's targets. */
async function perLatency(opts: Options): Promise<number> {
  const table: { latencyMs: number; summary: Record<Who, RowSummary>; load: string }[] = [];
  let code = 0;
  for (const latencyMs of opts.latencies) {
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--rounds', String(opts.rounds), '--latency', String(latencyMs), '--json'], { stdio: ['ignore', 'pipe', 'inherit'] });
      let stdout = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d));
      child.once('error', reject);
      child.once('close', (c) => {
        if (c !== 0) code = 1;
        resolve(stdout);
      });
    });
    const r = JSON.parse(out.slice(out.indexOf('{')));
    table.push({ latencyMs, summary: r.summary, load: r.load });
  }
  if (opts.json) process.stdout.write(JSON.stringify(table, null, 1) + '\n');
  else {
    const lines = ['bench/stream: MB/s over three hops, one network per latency, one after the other; medians of ' + opts.rounds + ' rounds', '| one-way per link | orport CC | orport conflux | orport fixed | C tor (conflux) | C tor one circuit | conflux / C tor | CC / C tor one circuit | CC / fixed | conflux / fixed | CPU s/MiB: orport conflux, C tor (ratio) | Vegas at the exits (CWND, window full, RTT EWMA / min): orport CC; C tor one circuit | load |', '|---|---|---|---|---|---|---|---|---|---|---|---|---|'];
    const cpu = (ours: number, theirs: number) => `${ours.toFixed(4)}, ${theirs.toFixed(4)} (${(ours / theirs).toFixed(2)}×)`;
    for (const t of table) {
      const cc = t.summary.orport.mbps;
      const fixed = t.summary['orport fixed windows'].mbps;
      const ctor = t.summary['C tor'].mbps;
      const one = t.summary['C tor one circuit'].mbps;
      const cfx = t.summary['orport conflux'].mbps;
      lines.push(`| ${t.latencyMs} ms | ${cc.toFixed(2)} | ${cfx.toFixed(2)} | ${fixed.toFixed(2)} | ${ctor.toFixed(2)} | ${one.toFixed(2)} | ${(cfx / ctor).toFixed(2)}× | ${(cc / one).toFixed(2)}× | ${(cc / fixed).toFixed(2)}× | ${(cfx / fixed).toFixed(2)}× | ${cpu(t.summary['orport conflux'].cpuPerMiB, t.summary['C tor'].cpuPerMiB)} | ${formatVegas(t.summary.orport.vegas)}; ${formatVegas(t.summary['C tor one circuit'].vegas)} | ${t.load} |`);
    }
    lines.push('targets (issue 13): at 25 ms CC ≥ 1.0× C tor and ≥ 2× fixed windows; at 0 ms CC no slower than fixed windows (C tor uses conflux: compare like with like, conflux / C tor and CC / C tor one circuit)');
    process.stdout.write(lines.join('\n') + '\n');
  }
  return code;
}

const opts = parseOptions(process.argv.slice(2));
const say = (m: string) => {
  if (!opts.json) process.stderr.write(`bench/stream: ${m}\n`);
};
(opts.latencies.length > 1
  ? perLatency(opts)
  : runOnTestnet({ name: 'stream', say, client: true, httpFileBytes: 20 * 1024 * 1024, latencyMs: opts.latencyMs }, (description, signal) => bench(description, opts, signal, say))
).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(`bench/stream: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  },
);
