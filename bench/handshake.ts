/**
 * bench/handshake — issue 5's benchmark: how many relays `orport scan` checks per second
 * against the project's private Tor network (each: TCP, TLS, VERSIONS, CERTS verified,
 * NETINFO, close), and what CERTS verification costs compared with an unverified connect.
 *
 *   npm run bench -- handshake [--rounds 7] [--per-round 90] [--concurrency 1,8,32] [--json]
 *   node --import tsx src/cli/main.ts testnet -- node --import tsx bench/handshake.ts
 *
 * Network: ORPORT_TESTNET_JSON (inside `orport testnet -- …` or `npm test`), or
 * TESTNET_JSON (a description with nodes[].or_port), else it boots one itself
 * (ensureIsolated() + startTestnet(): as root it re-executes itself under
 * `unshare --net`) and stops it at the end.
 *
 * Three measurements, all against the network's relays (cycled; verified ones pinned to
 * the fingerprint tor wrote):
 *  1. Throughput of the scan engine (`scanTargets`): each round scans `per-round` targets
 *     at each concurrency, verified and unverified (`verifyCertificates: false`, no pin),
 *     the order alternating between rounds; medians over rounds of handshakes/s, and the
 *     client's CPU time per handshake (process.cpuUsage) in each mode.
 *  2. Time per handshake one at a time, in pairs to the same relay (verified, unverified,
 *     the order alternating): the median paired difference is what verification adds to
 *     a connect, robust to load drifting on a shared machine.
 *  3. verifyCertsCell alone on the captured chains (test/vectors/certs-testnet.json): µs
 *     of CPU and wall time per chain.
 * On a 2-core machine the tor relays share the CPUs with us, so at high concurrency the
 * throughput is bounded by CPU, and its ratio follows the client CPU ratio.
 * Nothing here asserts time; exit status 1 only when a handshake fails.
 */
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { scanOne, scanTargets, type ScanResult, type ScanTarget } from '../src/cli/scan.js';
import { verifyCertsCell } from '../src/crypto/certs.js';
import { Certificate } from '../src/codec/datatype.js';
import { fromHex } from '../src/codec/bytes.js';
import { ensureIsolated, parseTestnetDescription, relayNodes, startTestnet, type Testnet } from '../src/testnet/index.js';

interface Options {
  rounds: number;
  perRound: number;
  concurrency: number[];
  json: boolean;
}

function parseOptions(argv: string[]): Options {
  const opts: Options = { rounds: 7, perRound: 90, concurrency: [1, 8, 32], json: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--rounds') opts.rounds = Number(next());
    else if (a === '--per-round') opts.perRound = Number(next());
    else if (a === '--concurrency') opts.concurrency = next().split(',').map(Number);
    else if (a === '--json') opts.json = true;
    else throw new Error(`unknown option ${a} (--rounds N, --per-round N, --concurrency 1,8,32, --json)`);
  }
  if (!(opts.rounds >= 1) || !(opts.perRound >= 1) || opts.concurrency.some((c) => !(c >= 1))) throw new Error('rounds, per-round and concurrency must be positive');
  return opts;
}

/** The network's relays as pinned scan targets, from either description format. */
function relaysOf(jsonPath: string): (ScanTarget & { nick: string })[] {
  const text = readFileSync(jsonPath, 'utf8');
  const raw = JSON.parse(text) as { format?: string; nodes: Record<string, unknown>[] };
  if (raw.format) {
    return relayNodes(parseTestnetDescription(text, jsonPath)).map((n) => ({ nick: n.nick, host: '127.0.0.1', port: n.orPort, rsa: n.fingerprint, ed25519: n.ed25519 }));
  }
  return raw.nodes
    .filter((n) => typeof n.or_port === 'number')
    .map((n) => ({ nick: String(n.nick), host: '127.0.0.1', port: Number(n.or_port), rsa: String(n.fingerprint), ed25519: String(n.ed25519) }));
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

const quantile = (xs: number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
};

const failures: ScanResult[] = [];

/** verifyCertsCell on the captured chains: µs per chain, wall clock and this process's CPU time (median of batches). */
function verifyMicros(): { wall: number; cpu: number } {
  const file = JSON.parse(readFileSync(new URL('../test/vectors/certs-testnet.json', import.meta.url), 'utf8')) as {
    relays: { capturedAt: string; tlsCertificate: string; certs: { type: number; value: string }[] }[];
  };
  const chains = file.relays.map((r) => ({ certs: r.certs.map((c) => new Certificate(c.type, fromHex(c.value))), tls: fromHex(r.tlsCertificate), now: new Date(r.capturedAt) }));
  const batch = () => {
    const c = process.cpuUsage();
    const t = performance.now();
    for (let i = 0; i < 5; i++) for (const x of chains) verifyCertsCell(x.certs, x.tls, x.now);
    const cpu = process.cpuUsage(c);
    const n = 5 * chains.length;
    return { wall: ((performance.now() - t) * 1000) / n, cpu: (cpu.user + cpu.system) / n };
  };
  for (let i = 0; i < 10; i++) batch();
  const runs = Array.from({ length: 31 }, batch);
  return { wall: median(runs.map((r) => r.wall)), cpu: median(runs.map((r) => r.cpu)) };
}

async function bench(jsonPath: string, opts: Options): Promise<void> {
  const relays = relaysOf(jsonPath);
  const say = (m: string) => {
    if (!opts.json) process.stderr.write(`bench/handshake: ${m}\n`);
  };
  say(`${relays.length} relays; ${opts.rounds} rounds of ${opts.perRound} handshakes per mode and concurrency ${opts.concurrency.join(', ')}; ${cpus().length} CPUs, load ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  const verifiedTargets = Array.from({ length: opts.perRound }, (_, i) => relays[i % relays.length]!);
  const unverifiedTargets = verifiedTargets.map(({ host, port }) => ({ host, port }));
  // Warm up: TLS, the JIT, key import.
  for (const t of relays) {
    await scanOne(t);
    await scanOne(t, { verifyCertificates: false });
  }

  type Mode = 'verified' | 'unverified';
  const rate: Record<Mode, Record<number, number[]>> = { verified: {}, unverified: {} };
  const cpuPerHandshake: Record<Mode, number[]> = { verified: [], unverified: [] };
  for (let round = 0; round < opts.rounds; round++) {
    const order: Mode[] = round % 2 === 0 ? ['verified', 'unverified'] : ['unverified', 'verified'];
    for (const concurrency of opts.concurrency) {
      for (const mode of order) {
        const targets = mode === 'verified' ? verifiedTargets : unverifiedTargets;
        const cpu0 = process.cpuUsage();
        const summary = await scanTargets(targets, { concurrency, verifyCertificates: mode === 'verified', timeoutMs: 20_000 }, (r) => {
          if (r.status !== 'ok') failures.push(r);
          if (mode === 'verified' && r.status === 'ok' && r.identity?.rsa !== verifiedTargets.find((t) => `${t.host}:${t.port}` === r.target)?.rsa) failures.push(r);
        });
        (rate[mode][concurrency] ??= []).push((summary.ok / summary.elapsedMs) * 1000);
        const cpu = process.cpuUsage(cpu0);
        cpuPerHandshake[mode].push((cpu.user + cpu.system) / summary.total);
      }
    }
    say(`round ${round + 1}/${opts.rounds}: ${opts.concurrency.map((c) => `c=${c} ${median(rate.verified[c]!).toFixed(0)} vs ${median(rate.unverified[c]!).toFixed(0)}/s`).join(', ')}`);
  }

  // Time per handshake, one at a time, in pairs to the same relay (verified and not, the
  // order alternating): the paired difference is what verification adds, robust to the
  // load drifting on this shared machine.
  const latency: Record<Mode, number[]> = { verified: [], unverified: [] };
  const diffs: number[] = [];
  for (let i = 0; i < opts.rounds * opts.perRound; i++) {
    const t = verifiedTargets[i % verifiedTargets.length]!;
    const pair: Partial<Record<Mode, number>> = {};
    for (const mode of (i % 2 ? ['verified', 'unverified'] : ['unverified', 'verified']) as Mode[]) {
      const r = await scanOne(mode === 'verified' ? t : { host: t.host, port: t.port }, { verifyCertificates: mode === 'verified', timeoutMs: 20_000 });
      if (r.status !== 'ok') failures.push(r);
      else pair[mode] = r.handshakeMs!;
    }
    if (pair.verified !== undefined && pair.unverified !== undefined) {
      latency.verified.push(pair.verified);
      latency.unverified.push(pair.unverified);
      diffs.push(pair.verified - pair.unverified);
    }
  }
  say(`paired handshakes: ${diffs.length}`);
  const verify = verifyMicros();

  const rows = opts.concurrency.map((c) => {
    const v = median(rate.verified[c]!);
    const u = median(rate.unverified[c]!);
    return { concurrency: c, verifiedPerSecond: round1(v), unverifiedPerSecond: round1(u), costRatio: round3(u / v) };
  });
  const stat = (q: number) => ({
    verifiedMs: round3(quantile(latency.verified, q)),
    unverifiedMs: round3(quantile(latency.unverified, q)),
    ratio: round3(quantile(latency.verified, q) / quantile(latency.unverified, q)),
  });
  const pairedDiffMs = median(diffs);
  const lat = {
    samples: diffs.length,
    median: stat(0.5),
    p25: stat(0.25),
    min: stat(0),
    pairedDifferenceMs: round3(pairedDiffMs),
    pairedRatio: round3((median(latency.unverified) + pairedDiffMs) / median(latency.unverified)),
  };
  const cpuV = median(cpuPerHandshake.verified);
  const cpuU = median(cpuPerHandshake.unverified);
  const report = {
    relays: relays.length,
    rounds: opts.rounds,
    perRound: opts.perRound,
    cpus: cpus().length,
    loadavg: loadavg().map(round1),
    throughput: rows,
    latencyOneAtATime: lat,
    clientCpuMicrosPerHandshake: { verified: round1(cpuV), unverified: round1(cpuU), ratio: round3(cpuV / cpuU) },
    verifyCertsCellMicros: { wall: round1(verify.wall), cpu: round1(verify.cpu) },
    verifyShareOfUnverifiedConnect: round3(verify.cpu / 1000 / lat.median.unverifiedMs),
    failures: failures.length,
  };
  if (opts.json) {
    process.stdout.write(JSON.stringify(report) + '\n');
    return;
  }
  const out: string[] = [];
  out.push(`handshakes per second, scan engine (median of ${opts.rounds} rounds x ${opts.perRound}; connect, VERSIONS, CERTS, NETINFO, close)`);
  out.push(`  concurrency   verified    unverified   unverified/verified`);
  for (const r of rows) out.push(`  ${String(r.concurrency).padStart(11)}   ${r.verifiedPerSecond.toFixed(1).padStart(8)}    ${r.unverifiedPerSecond.toFixed(1).padStart(10)}   ${r.costRatio.toFixed(3).padStart(6)}`);
  out.push(`time per handshake one at a time, ${lat.samples} pairs (same relay, order alternating)   verified   unverified   ratio`);
  for (const [name, q] of [['median', lat.median], ['p25', lat.p25], ['min', lat.min]] as const) {
    out.push(`  ${name.padEnd(77)}${q.verifiedMs.toFixed(2).padStart(6)} ms ${q.unverifiedMs.toFixed(2).padStart(8)} ms   ${q.ratio.toFixed(3)}`);
  }
  out.push(`  median paired difference: +${lat.pairedDifferenceMs.toFixed(3)} ms per handshake -> verified/unverified ${lat.pairedRatio.toFixed(3)}`);
  out.push(`client CPU per handshake (this process, median of rounds): verified ${report.clientCpuMicrosPerHandshake.verified} µs, unverified ${report.clientCpuMicrosPerHandshake.unverified} µs, ratio ${report.clientCpuMicrosPerHandshake.ratio.toFixed(3)}`);
  out.push(`verifyCertsCell alone (captured chains): ${report.verifyCertsCellMicros.cpu} µs CPU (${report.verifyCertsCellMicros.wall} µs wall) per chain = ${(report.verifyShareOfUnverifiedConnect * 100).toFixed(1)}% of a median unverified connect`);
  out.push(`load average ${report.loadavg.join(' ')} on ${report.cpus} CPUs (tor relays share them)`);
  if (failures.length) out.push(`FAILURES: ${failures.length}, first: ${JSON.stringify(failures[0])}`);
  process.stdout.write(out.join('\n') + '\n');
}

const round1 = (x: number) => Math.round(x * 10) / 10;
const round3 = (x: number) => Math.round(x * 1000) / 1000;

async function main(): Promise<number> {
  const opts = parseOptions(process.argv.slice(2));
  const jsonPath = process.env.ORPORT_TESTNET_JSON ?? process.env.TESTNET_JSON;
  if (jsonPath) {
    await bench(jsonPath, opts);
    return failures.length ? 1 : 0;
  }
  const say = (m: string) => process.stderr.write(`bench/handshake: ${m}\n`);
  const outcome = await ensureIsolated({ log: say });
  if (outcome.kind === 'reexecuted') return outcome.exitCode;
  let testnet: Testnet | undefined;
  try {
    say('booting a private Tor network on 127.0.0.1…');
    testnet = await startTestnet({ httpFileBytes: 1024 });
    await bench(testnet.describe().jsonPath, opts);
    return failures.length ? 1 : 0;
  } finally {
    if (testnet) await testnet.stop();
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(`bench/handshake: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  },
);
