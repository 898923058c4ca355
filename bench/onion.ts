/**
 * bench/onion — issue 14's benchmark: time to first byte from the private network's v3
 * onion service (the client node's, in front of the HTTP file server), for orport
 * (`client.connect('<56>.onion', port)`, then an HTTP GET) and for C tor's client (the same
 * node's SocksPort: SOCKS5 CONNECT to the .onion name, then the same GET), rounds
 * alternating, in one run. The clock runs from the connect call (orport) / the TCP connect
 * to the SocksPort (C tor) to the response's first byte.
 *
 *   npm run bench -- onion [--rounds 5] [--latency MS] [--json] [--verbose] [--only orport|ctor]
 *
 * Modes, each measured for both clients (what "cold" and "warm" can honestly mean when C
 * tor's client is one long-running process that also runs the service):
 *
 *   cold   no descriptor cached, a new rendezvous: C tor gets SIGNAL NEWNYM (tor 0.4.9's
 *          signewnym_impl: hs_client_purge_state drops the descriptor cache and the
 *          intro-point state, every used circuit is marked unusable; tor rate-limits
 *          NEWNYM to one per 10 s, so cold rounds are ≥ 10 s apart) and its rendezvous
 *          circuits are closed; orport's client drops its descriptor cache
 *          (clearOnionDescriptorCache) and connects with a new isolation key (so its pool
 *          opens a new rendezvous circuit). Both keep their connections to guards and the
 *          circuits they built ahead (C tor keeps preemptive internal circuits that it
 *          cannibalizes for HSDir, intro and rendezvous circuits: its normal behaviour).
 *   warm   descriptor cached, a new rendezvous: C tor's client rendezvous circuits
 *          (PURPOSE=HS_CLIENT_REND, from CIRC / CIRC_MINOR events) are closed with
 *          CLOSECIRCUIT first; orport connects with a new isolation key.
 *   reuse  the rendezvous circuit of the warm fetch is still open: a new stream on it
 *          (both clients reuse it, as tor does within MaxCircuitDirtiness).
 *   fresh  orport only: a new TorClient per round (bootstrap untimed; its first guard
 *          connections are in the time). C tor has no counterpart here: the launcher
 *          runs one client process and tor may only be started through it.
 *
 * C tor's client is the process that runs the service too (the launcher's client node):
 * its client and service work share one event loop, while orport's client runs in this
 * process, apart from the service. `--latency MS` boots the network with that one-way
 * delay on every ORPort link (testnet/delay), where round trips count.
 *
 * Each stream reads the whole response (the file's size is checked) before the next
 * round. Medians; ratios orport / C tor; target ≤ 1.0× C tor. The machine is shared (2
 * cores; the relays, the service and C tor's client run on it too): the load average is
 * printed. Nothing here asserts time; exit status 1 when a fetch fails.
 *
 * Layer: a benchmark (uses src/client, src/onion, src/testnet; nothing uses it).
 */
import { connect as netConnect, type Socket } from 'node:net';
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { Network } from '../src/dir/network.js';
import { TorClient } from '../src/client/torclient.js';
import { clearOnionDescriptorCache } from '../src/onion/lookup.js';
import { ControlSession } from '../src/testnet/control.js';
import type { TestnetDescription } from '../src/testnet/index.js';
import { quantile, runOnTestnet } from './testnet-run.js';

interface Options {
  rounds: number;
  json: boolean;
  verbose: boolean;
  only: 'orport' | 'ctor' | undefined;
  /** One-way delay on every ORPort link (runOnTestnet's latencyMs). */
  latencyMs: number;
}

const usage = 'usage: npm run bench -- onion [--rounds N] [--latency MS] [--json] [--verbose] [--only orport|ctor]';

function parseOptions(argv: readonly string[]): Options {
  const opts: Options = { rounds: 5, json: false, verbose: false, only: undefined, latencyMs: 0 };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--rounds') {
      const v = Number(argv[++i]);
      if (!Number.isInteger(v) || v < 1) throw new Error(`--rounds takes a whole number ≥ 1\n${usage}`);
      opts.rounds = v;
    } else if (arg === '--latency') {
      const v = Number(argv[++i]);
      if (!Number.isInteger(v) || v < 0) throw new Error(`--latency takes a whole number of ms\n${usage}`);
      opts.latencyMs = v;
    } else if (arg === '--json') opts.json = true;
    else if (arg === '--verbose') opts.verbose = true;
    else if (arg === '--only') {
      const v = argv[++i];
      if (v !== 'orport' && v !== 'ctor') throw new Error(`--only takes orport or ctor\n${usage}`);
      opts.only = v;
    } else throw new Error(`unknown option ${arg}\n${usage}`);
  }
  return opts;
}

type Mode = 'cold' | 'warm' | 'reuse' | 'fresh';
const MODES: readonly Mode[] = ['cold', 'warm', 'reuse', 'fresh'];
type Who = 'orport' | 'C tor';
const FETCH_TIMEOUT_MS = 60_000;
/** tor's MAX_SIGNEWNYM_RATE (seconds), and a margin. */
const NEWNYM_GAP_MS = 10_500;

interface Sample {
  ttfbMs: number;
  bytes: number;
}

/** Reads an HTTP/1.0 response from `socket` after `start`: the first byte's time, then every byte until it closes. */
function readResponse(socket: { on(e: 'data', f: (c: Buffer) => void): unknown; once(e: 'end' | 'close', f: () => void): unknown; once(e: 'error', f: (err: Error) => void): unknown }, t0: number, skip = 0): Promise<Sample> {
  return new Promise((resolve, reject) => {
    let first = -1;
    let bytes = 0;
    let toSkip = skip;
    socket.on('data', (chunk: Buffer) => {
      if (toSkip) {
        const n = Math.min(toSkip, chunk.length);
        toSkip -= n;
        chunk = chunk.subarray(n);
        if (!chunk.length) return;
      }
      if (first < 0) first = performance.now() - t0;
      bytes += chunk.length;
    });
    socket.once('error', reject);
    const done = () => (first < 0 ? reject(new Error(`the response ended after ${bytes} bytes, before any came`)) : resolve({ ttfbMs: first, bytes }));
    socket.once('end', done);
    socket.once('close', done);
  });
}

/** Bytes of the HTTP body in a response of `total` bytes whose head ends with CRLFCRLF (checked against the file size). */
function bodyBytes(head: Buffer | undefined, total: number): number {
  if (!head) return total;
  const end = head.indexOf('\r\n\r\n');
  return end < 0 ? total : total - (end + 4);
}

/** C tor's client: SOCKS5 (RFC 1928, hostname form) to the .onion name, then the GET. */
async function ctorFetch(socksPort: number, host: string, port: number, request: string): Promise<Sample & { head: Buffer }> {
  const t0 = performance.now();
  const socket: Socket = netConnect({ host: '127.0.0.1', port: socksPort });
  socket.setNoDelay(true);
  const timer = setTimeout(() => socket.destroy(new Error(`C tor: no answer in ${FETCH_TIMEOUT_MS} ms`)), FETCH_TIMEOUT_MS);
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    let buffered = Buffer.alloc(0);
    const need = (n: number) =>
      new Promise<Buffer>((resolve, reject) => {
        const check = () => {
          if (buffered.length < n) return;
          socket.off('data', onData);
          socket.off('error', reject);
          socket.off('close', onClose);
          const out = buffered.subarray(0, n);
          buffered = buffered.subarray(n);
          resolve(out);
        };
        const onData = (c: Buffer) => {
          buffered = Buffer.concat([buffered, c]);
          check();
        };
        const onClose = () => reject(new Error(`C tor closed the SOCKS connection (${buffered.length} of ${n} bytes)`));
        socket.on('data', onData);
        socket.once('error', reject);
        socket.once('close', onClose);
        check();
      });
    socket.write(Buffer.from([5, 1, 0]));
    const method = await need(2);
    if (method[0] !== 5 || method[1] !== 0) throw new Error(`C tor's SOCKS method answer ${method.toString('hex')}`);
    const name = Buffer.from(host, 'latin1');
    socket.write(Buffer.concat([Buffer.from([5, 1, 0, 3, name.length]), name, Buffer.from([port >> 8, port & 0xff])]));
    const reply = await need(4);
    if (reply[1] !== 0) throw new Error(`C tor's SOCKS reply ${reply[1]!.toString(16).padStart(2, '0')} (prop304: F0-F7 are onion-service errors)`);
    const rest = reply[3] === 1 ? 6 : reply[3] === 4 ? 18 : (await need(1))[0]! + 2;
    await need(rest);
    socket.pause();
    let head: Buffer | undefined;
    socket.on('data', (c: Buffer) => (head ??= c));
    const response = readResponse(socket, t0);
    if (buffered.length) socket.unshift(buffered);
    socket.resume();
    socket.write(request);
    const sample = await response;
    return { ...sample, head: head ?? Buffer.alloc(0) };
  } finally {
    clearTimeout(timer);
    socket.destroy();
  }
}

/** C tor's control port: NEWNYM, and the client's rendezvous circuits (from CIRC / CIRC_MINOR events) to close. */
class CtorControl {
  private readonly purposes = new Map<string, string>();
  private lastNewnym = 0;

  private constructor(private readonly control: ControlSession) {
    control.onEvent = (line) => {
      const m = /^CIRC(?:_MINOR)? (\d+) (\S+)/.exec(line);
      if (!m) return;
      const [, id, status] = m;
      if (status === 'CLOSED' || status === 'FAILED') {
        this.purposes.delete(id!);
        return;
      }
      const purpose = / PURPOSE=(\S+)/.exec(line)?.[1];
      if (purpose) this.purposes.set(id!, purpose);
    };
  }

  static async open(port: number): Promise<CtorControl> {
    const control = await ControlSession.open(port, { timeoutMs: 5000 });
    await control.command('SETEVENTS CIRC CIRC_MINOR', 5000);
    return new CtorControl(control);
  }

  /** SIGNAL NEWNYM, sent once tor's rate limit allows it to act at once. */
  async newnym(signal: AbortSignal): Promise<void> {
    const wait = this.lastNewnym + NEWNYM_GAP_MS - performance.now();
    if (wait > 0) await sleep(wait, undefined, { signal });
    await this.control.command('SIGNAL NEWNYM', 5000);
    this.lastNewnym = performance.now();
  }

  /** Closes the client's open rendezvous circuits; how many. */
  async closeRendezvous(): Promise<number> {
    const ids = [...this.purposes].filter(([, p]) => p === 'HS_CLIENT_REND').map(([id]) => id);
    for (const id of ids) await this.control.command(`CLOSECIRCUIT ${id}`, 5000).catch(() => undefined);
    for (const id of ids) this.purposes.delete(id);
    return ids.length;
  }

  close(): void {
    this.control.close();
  }
}

interface OrportHandle {
  client: TorClient;
  /** The isolation key of the current rendezvous circuit (a new one: a new rendezvous). */
  isolation: number;
}

/** orport: connect, GET, first byte, the rest. */
async function orportFetch(client: TorClient, host: string, port: number, request: string, isolation: string, signal: AbortSignal): Promise<Sample & { head: Buffer }> {
  const t0 = performance.now();
  const stream = await client.connect(host, port, { timeoutMs: FETCH_TIMEOUT_MS, signal, isolation });
  try {
    let head: Buffer | undefined;
    stream.on('data', (c: Buffer) => (head ??= c));
    const response = readResponse(stream, t0);
    stream.write(request);
    const sample = await response;
    return { ...sample, head: head ?? Buffer.alloc(0) };
  } finally {
    stream.destroy();
  }
}

async function bench(description: TestnetDescription, opts: Options, signal: AbortSignal, say: (m: string) => void): Promise<number> {
  const onion = description.onion;
  if (!onion) throw new Error('the network has no onion service');
  const clientNode = description.nodes.find((n) => n.role === 'client');
  if (!clientNode || !clientNode.socksPort) throw new Error('the network has no C tor client node with a SocksPort');
  const network = Network.fromTorrc(readFileSync(description.networkFile, 'utf8'));
  const path = new URL(description.http.url).pathname;
  const request = `GET ${path} HTTP/1.0\r\nHost: ${onion.address}\r\n\r\n`;
  const expected = description.http.fileBytes;
  const ctor = await CtorControl.open(clientNode.controlPort);
  const handle: OrportHandle = { client: await TorClient.create({ network, refresh: false, signal, timeoutMs: 60_000 }), isolation: 0 };
  const rows = Object.fromEntries((['orport', 'C tor'] as const).flatMap((who) => MODES.map((m) => [`${who} ${m}`, [] as Sample[]]))) as Record<`${Who} ${Mode}`, Sample[]>;
  const failures: string[] = [];
  const runs = (who: Who) => opts.only === undefined || (opts.only === 'ctor') === (who === 'C tor');
  say(`onion service ${onion.address}:${onion.port} (run by ${onion.nick}); tor ${description.torVersion}; ${opts.rounds} rounds`);

  const once = async (who: Who, mode: Mode): Promise<void> => {
    if (signal.aborted) throw signal.reason;
    try {
      let r: Sample & { head: Buffer };
      if (who === 'C tor') {
        if (mode === 'cold') await ctor.newnym(signal);
        if (mode !== 'reuse') {
          const closed = await ctor.closeRendezvous();
          if (opts.verbose) say(`C tor ${mode}: ${closed} rendezvous circuit(s) closed first`);
        }
        await sleep(250, undefined, { signal }); // let the closes settle; both clients get the same idle gap
        r = await ctorFetch(clientNode.socksPort!, onion.address, onion.port, request);
      } else {
        if (mode === 'fresh') {
          await handle.client.close();
          handle.client = await TorClient.create({ network, refresh: false, signal, timeoutMs: 60_000 });
        }
        if (mode === 'cold') clearOnionDescriptorCache(handle.client);
        if (mode !== 'reuse') handle.isolation++;
        await sleep(250, undefined, { signal });
        r = await orportFetch(handle.client, onion.address, onion.port, request, `bench-onion-${handle.isolation}`, signal);
      }
      const body = bodyBytes(r.head, r.bytes);
      if (body !== expected) throw new Error(`got ${body} body bytes of ${expected}`);
      rows[`${who} ${mode}`].push(r);
      if (opts.verbose) say(`${who} ${mode}: ${r.ttfbMs.toFixed(1)} ms`);
    } catch (err) {
      failures.push(`${who} ${mode}: ${err instanceof Error ? err.message : String(err)}`);
      if (opts.verbose) say(`${who} ${mode} failed: ${failures[failures.length - 1]}`);
    }
  };

  try {
    // Warm-up (untimed): each client has fetched once, so both hold guard connections.
    for (const who of ['orport', 'C tor'] as const) if (runs(who)) await once(who, 'warm');
    for (const k of Object.keys(rows) as (keyof typeof rows)[]) rows[k].length = 0;
    failures.length = 0;
    for (let round = 0; round < opts.rounds; round++) {
      const order: Who[] = (round & 1 ? ['C tor', 'orport'] : ['orport', 'C tor']).filter((w) => runs(w as Who)) as Who[];
      // cold, then warm (the cold fetch leaves the descriptor cached), then reuse (warm's circuit)
      for (const mode of ['cold', 'warm', 'reuse'] as const) for (const who of order) await once(who, mode);
      if (runs('orport')) await once('orport', 'fresh');
    }
  } finally {
    ctor.close();
    await handle.client.close();
  }

  const load = loadavg().map((x) => x.toFixed(2)).join(' ');
  const med = (k: keyof typeof rows) => quantile(rows[k].map((s) => s.ttfbMs), 0.5);
  if (opts.json) {
    process.stdout.write(JSON.stringify({ torVersion: description.torVersion, onion: onion.address, latencyMs: description.latencyMs, rounds: opts.rounds, rows, load, failures }, null, 1) + '\n');
  } else {
    const f = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '-');
    const out = [
      `bench/onion: time to first byte from ${onion.address.slice(0, 12)}….onion:${onion.port} (tor ${description.torVersion}, ${expected}-byte file, links ${description.latencyMs} ms one way); ${opts.rounds} rounds; ${cpus().length} CPUs, load ${load}`,
      '',
      `| mode | orport median (ms) | orport p95 | C tor median (ms) | C tor p95 | orport / C tor |`,
      '|---|---|---|---|---|---|',
    ];
    for (const mode of MODES) {
      const o = med(`orport ${mode}`);
      const c = med(`C tor ${mode}`);
      out.push(`| ${mode} | ${f(o)} | ${f(quantile(rows[`orport ${mode}`].map((s) => s.ttfbMs), 0.95))} | ${f(c)} | ${f(quantile(rows[`C tor ${mode}`].map((s) => s.ttfbMs), 0.95))} | ${Number.isFinite(o / c) ? (o / c).toFixed(2) : '-'} |`);
    }
    out.push(
      '',
      'cold: no descriptor, new rendezvous (C tor: SIGNAL NEWNYM); warm: descriptor cached, new rendezvous (C tor: its HS_CLIENT_REND circuits closed; orport: a new isolation key); reuse: a new stream on the open rendezvous circuit; fresh: a new TorClient (C tor: none)',
      "target: orport's median ≤ 1.0× C tor's",
    );
    if (failures.length) out.push('', `failures (${failures.length}):`, ...failures.map((x) => `  ${x}`));
    process.stdout.write(out.join('\n') + '\n');
  }
  return failures.length ? 1 : 0;
}

const opts = parseOptions(process.argv.slice(2));
const say = (m: string) => {
  if (!opts.json) process.stderr.write(`bench/onion: ${m}\n`);
};
runOnTestnet({ name: 'onion', say, verbose: opts.verbose, client: true, onion: true, latencyMs: opts.latencyMs }, (description, signal) => bench(description, opts, signal, say)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(`bench/onion: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  },
);
