/**
 * bench/circuit — issue 11's benchmark: how long a three-hop circuit takes to build, for
 * orport (`client.buildCircuit({ path })`, ntor and ntor v3 separately) and for C tor's
 * client (the private network's own client node, through its ControlPort:
 * `EXTENDCIRCUIT 0 $a,$b,$c`, timed until the `650 CIRC <id> BUILT` event), on the same
 * network, through the same three relays, in one run; and the client's CPU per hop for
 * each handshake (start + finish, with the relay's reply made beforehand).
 *
 *   npm run bench -- circuit [--rounds 40] [--gap 250] [--json] [--verbose]
 *
 * Method: both clients hold a connection to the guard already (one untimed warm-up
 * build each), so a build is CREATE2 + two EXTEND2 round trips. Rounds alternate
 * between the clients. Each build waits `--gap` ms of idle first: C tor sets no
 * TCP_NODELAY, and back to back its next CREATE2 can wait out a delayed ACK; the
 * back-to-back figures (gap 0) are printed as a second table. C tor picks its own
 * handshakes (0.4.9: ntor v3 to relays that offer CGO or congestion control, else ntor).
 * Each circuit is closed after it is built. Nothing here asserts time; exit status 1 when
 * a build fails. The machine is shared: the load average is printed.
 *
 * Layer: a benchmark (uses src/client, src/testnet; nothing uses it).
 */
import { randomBytes } from 'node:crypto';
import { loadavg, cpus } from 'node:os';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { Network } from '../src/dir/network.js';
import { TorClient, type RelayInfo } from '../src/client/torclient.js';
import { handshakeFor, type HandshakeKind } from '../src/client/handshakes.js';
import { ntorServer, x25519KeyPair } from '../src/crypto/handshake/ntor.js';
import { ntorV3Server, encodeNtorV3Response } from '../src/crypto/handshake/ntorv3.js';
import { ControlSession } from '../src/testnet/control.js';
import type { TestnetDescription } from '../src/testnet/index.js';
import { quantile, runOnTestnet } from './testnet-run.js';

interface Options {
  rounds: number;
  gapMs: number;
  json: boolean;
  verbose: boolean;
}

const usage = `usage: npm run bench -- circuit [--rounds N] [--gap MS] [--json] [--verbose]
  --rounds N   timed builds per client and handshake, per table (default 40)
  --gap MS     idle time before each build in the first table (default 250)`;

function parseOptions(argv: readonly string[]): Options {
  const opts: Options = { rounds: 40, gapMs: 250, json: false, verbose: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const num = () => {
      const v = Number(argv[++i]);
      if (!Number.isInteger(v) || v < 0) throw new Error(`${arg} takes a whole number\n${usage}`);
      return v;
    };
    if (arg === '--rounds') opts.rounds = Math.max(1, num());
    else if (arg === '--gap') opts.gapMs = num();
    else if (arg === '--json') opts.json = true;
    else if (arg === '--verbose') opts.verbose = true;
    else throw new Error(`unknown option ${arg}\n${usage}`);
  }
  return opts;
}

type Who = 'orport ntor' | 'orport ntor v3' | 'C tor';
const WHO: readonly Who[] = ['orport ntor', 'orport ntor v3', 'C tor'];

/** C tor's client: EXTENDCIRCUIT and the CIRC events of its ControlPort. */
class CtorClient {
  private readonly waiting = new Map<string, (status: string) => void>();

  private constructor(private readonly control: ControlSession) {
    control.onEvent = (line) => {
      const m = /^CIRC (\d+) (BUILT|FAILED|CLOSED)\b/.exec(line);
      if (m) this.waiting.get(m[1]!)?.(m[2]!);
    };
  }

  static async open(port: number): Promise<CtorClient> {
    const control = await ControlSession.open(port, { timeoutMs: 5000 });
    await control.command('SETEVENTS CIRC', 5000);
    return new CtorClient(control);
  }

  /** ms from sending EXTENDCIRCUIT to the BUILT event. */
  async build(path: readonly RelayInfo[]): Promise<number> {
    const t0 = performance.now();
    let id = '';
    let status: Promise<string> | undefined;
    const reply = await this.control.command(`EXTENDCIRCUIT 0 ${path.map((r) => `$${r.rsa}`).join(',')}`, 30_000);
    id = /^250 EXTENDED (\d+)/.exec(reply[reply.length - 1]!)?.[1] ?? '';
    if (!id) throw new Error(`C tor answered ${reply.join(' | ')}`);
    status = new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`C tor's circuit ${id} was not built in 30 s`)), 30_000);
      this.waiting.set(id, (s) => {
        clearTimeout(timer);
        resolve(s);
      });
    });
    // The BUILT event may have come with (or before) the reply: it is only waited for here.
    const s = await status.finally(() => this.waiting.delete(id));
    const ms = performance.now() - t0;
    if (s !== 'BUILT') throw new Error(`C tor's circuit ${id} ${s}`);
    await this.control.command(`CLOSECIRCUIT ${id}`, 5000).catch(() => undefined);
    return ms;
  }

  close(): void {
    this.control.close();
  }
}

/** µs of CPU per hop for the client's side of a handshake (start + finish). */
function handshakeCpu(kind: HandshakeKind, n: number): number {
  const onion = x25519KeyPair(randomBytes(32));
  const rsaId = new Uint8Array(randomBytes(20));
  const ed25519Id = new Uint8Array(randomBytes(32));
  const target = {
    rsa: Buffer.from(rsaId).toString('hex').toUpperCase(),
    ed25519: Buffer.from(ed25519Id).toString('base64').replace(/=+$/, ''),
    ntorOnionKey: Buffer.from(onion.public).toString('base64'),
    address: '127.0.0.1',
    orPort: 1,
  };
  const random = (k: number) => new Uint8Array(randomBytes(k));
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    const c0 = process.cpuUsage();
    const pending = handshakeFor(kind, target, 'bench');
    const c1 = process.cpuUsage(c0);
    const reply =
      kind === 'ntor'
        ? ntorServer({ rsaId, onionKeys: [onion] }, pending.message, random, 'bench').reply
        : ntorV3Server({ ed25519Id, onionKeys: [onion] }, pending.message, () => encodeNtorV3Response(), random, 'bench').reply;
    const c2 = process.cpuUsage();
    pending.finish(reply);
    const c3 = process.cpuUsage(c2);
    samples.push(c1.user + c1.system + c3.user + c3.system);
  }
  return quantile(samples, 0.5);
}

interface Table {
  gapMs: number;
  rows: Record<Who, number[]>;
}

async function bench(description: TestnetDescription, opts: Options, signal: AbortSignal, say: (m: string) => void): Promise<number> {
  const clientNode = description.nodes.find((n) => n.role === 'client');
  if (!clientNode) throw new Error('the network has no C tor client node');
  const network = Network.fromTorrc(readFileSync(description.networkFile, 'utf8'));
  const client = await TorClient.create({ network, refresh: false, signal, timeoutMs: 60_000 });
  const ctor = await CtorClient.open(clientNode.controlPort);
  const failures: string[] = [];
  try {
    // Relays by the role the network gave them: two plain relays, then an exit.
    const byRole = (role: string) => description.nodes.filter((n) => n.role === role).map((n) => client.consensus.relays.find((r) => r.nickname === n.nick && r.ntorOnionKey && r.ed25519));
    const [guard, middle] = byRole('relay');
    const [exit] = byRole('exit');
    if (!guard || !middle || !exit) throw new Error(`the consensus lacks two relays and an exit with microdescriptors: ${client.consensus.relays.map((r) => `${r.nickname}${r.ntorOnionKey ? '' : ' (no microdescriptor)'}`).join(', ')}`);
    const path = [guard, middle, exit];
    say(`path ${path.map((r) => r.nickname).join(' → ')}; tor ${description.torVersion}; ${opts.rounds} builds per client per table`);
    const once = async (who: Who): Promise<number> => {
      if (who === 'C tor') return ctor.build(path);
      const t0 = performance.now();
      const circuit = await client.buildCircuit({ path, handshake: who === 'orport ntor' ? 'ntor' : 'ntor-v3', signal, timeoutMs: 30_000 });
      const ms = performance.now() - t0;
      await circuit.close();
      return ms;
    };
    for (const who of WHO) await once(who); // warm-up: each client's guard connection is open
    const tables: Table[] = [];
    for (const gapMs of [opts.gapMs, 0]) {
      const table: Table = { gapMs, rows: { 'orport ntor': [], 'orport ntor v3': [], 'C tor': [] } };
      for (let round = 0; round < opts.rounds; round++) {
        const order = round & 1 ? [...WHO].reverse() : WHO;
        for (const who of order) {
          if (signal.aborted) throw signal.reason;
          if (gapMs) await sleep(gapMs, undefined, { signal });
          try {
            table.rows[who].push(await once(who));
          } catch (err) {
            failures.push(`${who} (gap ${gapMs} ms, round ${round}): ${err instanceof Error ? err.message : String(err)}`);
          }
        }
      }
      tables.push(table);
    }
    const cpu = { ntor: handshakeCpu('ntor', 2000), 'ntor-v3': handshakeCpu('ntor-v3', 2000) };
    const load = loadavg().map((x) => x.toFixed(2)).join(' ');
    if (opts.json) {
      process.stdout.write(JSON.stringify({ torVersion: description.torVersion, path: path.map((r) => r.nickname), tables, cpuUsPerHop: cpu, load, failures }, null, 1) + '\n');
    } else {
      const f = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '-');
      const out = [`bench/circuit: three-hop builds through ${path.map((r) => r.nickname).join(', ')} (tor ${description.torVersion}); ${cpus().length} CPUs, load ${load}`];
      for (const t of tables) {
        const ctorMedian = quantile(t.rows['C tor'], 0.5);
        out.push('', `${t.gapMs ? `${t.gapMs} ms idle before each build` : 'back to back'} (ms; ${opts.rounds} builds each)`, '| client | median | p95 | median / C tor |', '|---|---|---|---|');
        for (const who of WHO) {
          const m = quantile(t.rows[who], 0.5);
          out.push(`| ${who} | ${f(m)} | ${f(quantile(t.rows[who], 0.95))} | ${who === 'C tor' ? '1' : (m / ctorMedian).toFixed(2)} |`);
        }
      }
      out.push('', `client CPU per hop (start + finish, median of 2000): ntor ${cpu.ntor} µs, ntor v3 ${cpu['ntor-v3']} µs`, 'target: orport median ≤ 1.0× C tor\'s (with the idle gap)');
      if (failures.length) out.push('', `failures (${failures.length}):`, ...failures.map((x) => `  ${x}`));
      process.stdout.write(out.join('\n') + '\n');
    }
    return failures.length ? 1 : 0;
  } finally {
    ctor.close();
    await client.close();
  }
}

const opts = parseOptions(process.argv.slice(2));
const say = (m: string) => {
  if (!opts.json) process.stderr.write(`bench/circuit: ${m}\n`);
};
runOnTestnet({ name: 'circuit', say, verbose: opts.verbose, client: true }, (description, signal) => bench(description, opts, signal, say)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(`bench/circuit: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  },
);
