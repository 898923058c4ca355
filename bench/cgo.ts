/**
 * bench/cgo — per-cell cost of relay crypto, tor1 (crypto/relaycrypto Tor1Layer) against
 * CGO (crypto/cgo CgoCrypt), one layer, in ns per 509-byte cell; and POLYVAL (crypto/
 * polyval) in ns per 16-byte block. Next to C tor's published figures: tor1 ≈ 60 ns per
 * cell, CGO at a relay ≈ 170–180 ns (about 2–3× tor1).
 *
 *   npm run bench -- cgo [--cells 20000] [--rounds 7] [--json]
 *
 * Rows (each a single hop's layer, the cells made beforehand by the other end, untimed):
 *   originate       the client makes a cell for the hop: tor1 digest + AES-CTR; CGO
 *                   T = N, UIV+ DEC, UPDATE (two new AES objects)
 *   inbound         the client takes a cell the hop made and recognizes it: tor1 AES-CTR
 *                   + digest check; CGO UIV+ DEC, N check, UPDATE
 *   pass-through    a layer that is not the cell's hop: tor1 AES-CTR; CGO UIV+ DEC (no
 *                   re-key)
 *   relay forward   CGO at the relay, a cell for it (tor's "CGO at a relay" figure)
 * POLYVAL: a wide key's 32 blocks (an ET mask) per block, a wide key's set-up, a narrow
 * key's set-up + 1 block (the PRF's). Wall-clock ns (process.hrtime), medians over the
 * rounds, with the load average before and after: the machine is shared. Nothing asserts
 * time; this only reports.
 *
 * Layer: a benchmark (uses src/crypto; nothing uses it).
 */
import { randomBytes } from 'node:crypto';
import { cpus, loadavg } from 'node:os';
import { Tor1Layer, type Tor1Keys } from '../src/crypto/relaycrypto.js';
import { CgoCrypt, CGO_BODY_LEN, CGO_SEED_LEN } from '../src/crypto/cgo.js';
import { Polyval, PolyvalKey } from '../src/crypto/polyval.js';

interface Options {
  cells: number;
  rounds: number;
  json: boolean;
}

function parseArgs(argv: readonly string[]): Options {
  const opts: Options = { cells: 20_000, rounds: 7, json: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = () => {
      const v = Number(argv[++i]);
      if (!Number.isFinite(v) || v <= 0) throw new Error(`${arg} needs a positive number`);
      return Math.round(v);
    };
    if (arg === '--cells') opts.cells = value();
    else if (arg === '--rounds') opts.rounds = value();
    else if (arg === '--json') opts.json = true;
    else if (arg === '--help' || arg === '-h') {
      console.log('usage: npm run bench -- cgo [--cells N] [--rounds N] [--json]');
      process.exit(0);
    } else throw new Error(`unknown argument ${arg}`);
  }
  return opts;
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

const RELAY = 3;
let sink = 0;

function tor1Keys(): Tor1Keys {
  return { forwardDigest: randomBytes(20), backwardDigest: randomBytes(20), forwardKey: randomBytes(16), backwardKey: randomBytes(16) };
}

/** Fresh cells (509-byte bodies), a relay message each: RELAY_DATA header + data, as a V0/V1 body would hold. */
function bodies(n: number): Uint8Array[] {
  return Array.from({ length: n }, () => {
    const b = new Uint8Array(CGO_BODY_LEN);
    b.set(randomBytes(CGO_BODY_LEN - 16), 16);
    b[0] = 2; // RELAY_DATA, for tor1; CGO overwrites T
    b[1] = b[2] = 0; // 'recognized'
    return b;
  });
}

/** ns per cell of `step` over `cells` prepared by `prepare` (untimed). */
function time(cells: number, prepare: (n: number) => Uint8Array[], step: (b: Uint8Array) => void): number {
  const work = prepare(cells);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < cells; i++) step(work[i]!);
  return Number(process.hrtime.bigint() - t0) / cells;
}

interface Row {
  name: string;
  tor1?: number;
  cgo: number;
}

function measure(opts: Options): { rows: Row[]; polyval: Record<string, number> } {
  const { cells } = opts;
  const samples = new Map<string, number[]>();
  const add = (k: string, v: number) => samples.set(k, [...(samples.get(k) ?? []), v]);

  for (let round = 0; round < opts.rounds + 1; round++) {
    const warm = round === 0; // the first round warms up the JIT and is dropped
    const record = (k: string, v: number) => !warm && add(k, v);

    // tor1 originate: digest + AES-CTR.
    {
      const layer = new Tor1Layer(tor1Keys());
      record('tor1 originate', time(cells, bodies, (b) => { sink += layer.originate(b)[0]!; layer.encrypt(b); }));
    }
    // tor1 inbound: the relay made the cells (digest + AES), the client decrypts and recognizes.
    {
      const keys = tor1Keys();
      const relay = new Tor1Layer(keys, 'relay');
      const client = new Tor1Layer(keys);
      const made = (n: number) => bodies(n).map((b) => { relay.originate(b); relay.encrypt(b); return b; });
      record('tor1 inbound', time(cells, made, (b) => { const p = client.decrypt(b); if (!client.recognize(p)) throw new Error('tor1 cell not recognized'); }));
    }
    // tor1 pass-through: AES-CTR only.
    {
      const layer = new Tor1Layer(tor1Keys());
      record('tor1 pass-through', time(cells, bodies, (b) => layer.encrypt(b)));
    }
    // CGO originate at the client.
    {
      const c = new CgoCrypt('client-forward', randomBytes(CGO_SEED_LEN));
      record('cgo originate', time(cells, bodies, (b) => { sink += c.clientOriginate(RELAY, b)[0]!; }));
    }
    // CGO inbound at the client: the relay originated the cells.
    {
      const seed = randomBytes(CGO_SEED_LEN);
      const relay = new CgoCrypt('relay-backward', seed);
      const client = new CgoCrypt('client-backward', seed);
      const made = (n: number) => bodies(n).map((b) => { relay.relayOriginate(RELAY, b); return b; });
      record('cgo inbound', time(cells, made, (b) => { if (!client.clientBackward(RELAY, b)) throw new Error('CGO cell not recognized'); }));
    }
    // CGO pass-through (client forward at a hop that is not the target).
    {
      const c = new CgoCrypt('client-forward', randomBytes(CGO_SEED_LEN));
      record('cgo pass-through', time(cells, bodies, (b) => c.clientForward(RELAY, b)));
    }
    // CGO at a relay: relay forward of cells the client originated for it.
    {
      const seed = randomBytes(CGO_SEED_LEN);
      const client = new CgoCrypt('client-forward', seed);
      const relay = new CgoCrypt('relay-forward', seed);
      const made = (n: number) => bodies(n).map((b) => { client.clientOriginate(RELAY, b); return b; });
      record('cgo relay forward', time(cells, made, (b) => { if (!relay.relayForward(RELAY, b)) throw new Error('CGO cell not recognized at the relay'); }));
    }
    // POLYVAL.
    {
      const keyBytes = randomBytes(16);
      const data = randomBytes(512);
      const wide = new PolyvalKey(keyBytes);
      const pv = new Polyval(wide);
      const n = cells;
      let t0 = process.hrtime.bigint();
      for (let i = 0; i < n; i++) sink += pv.reset().blocks(data, 0, 32).s[0]!;
      record('polyval wide, per block (32 per key)', Number(process.hrtime.bigint() - t0) / n / 32);
      t0 = process.hrtime.bigint();
      for (let i = 0; i < n; i++) { keyBytes[0] = i; wide.setKey(keyBytes); }
      record('polyval wide key set-up', Number(process.hrtime.bigint() - t0) / n);
      const narrow = new PolyvalKey(keyBytes, 0, false);
      const pn = new Polyval(narrow);
      t0 = process.hrtime.bigint();
      for (let i = 0; i < n; i++) { keyBytes[0] = i; narrow.setKey(keyBytes); sink += pn.reset().blocks(data, 0, 1).s[0]!; }
      record('polyval narrow key set-up + 1 block', Number(process.hrtime.bigint() - t0) / n);
    }
  }
  const m = (k: string) => median(samples.get(k)!);
  const rows: Row[] = [
    { name: 'originate', tor1: m('tor1 originate'), cgo: m('cgo originate') },
    { name: 'inbound', tor1: m('tor1 inbound'), cgo: m('cgo inbound') },
    { name: 'pass-through', tor1: m('tor1 pass-through'), cgo: m('cgo pass-through') },
    { name: 'relay forward', cgo: m('cgo relay forward') },
  ];
  const polyval = Object.fromEntries([...samples.keys()].filter((k) => k.startsWith('polyval')).map((k) => [k, m(k)]));
  return { rows, polyval };
}

function main(): void {
  const opts = parseArgs(process.argv.slice(2));
  const load0 = loadavg().map((x) => x.toFixed(2)).join(' ');
  const result = measure(opts);
  const load = `${load0} → ${loadavg().map((x) => x.toFixed(2)).join(' ')}`;
  if (sink === 0.5) console.log('');
  if (opts.json) {
    console.log(JSON.stringify({ node: process.version, cells: opts.cells, rounds: opts.rounds, load, ...result }));
    return;
  }
  const cpu = cpus();
  console.log(`bench/cgo: one layer, ${opts.cells} cells per measurement, median of ${opts.rounds} rounds, ns per cell (wall clock)`);
  console.log(`  node ${process.version}; ${cpu.length} x ${cpu[0]?.model.trim() ?? 'cpu'}; load average ${load}`);
  console.log('');
  console.log('  path            tor1 ns   CGO ns   CGO/tor1   C tor: tor1 ≈ 60 ns, CGO at a relay ≈ 170–180 ns');
  for (const r of result.rows) {
    const t = r.tor1 === undefined ? '       —' : r.tor1.toFixed(0).padStart(8);
    const ratio = r.tor1 === undefined ? '       —' : `${(r.cgo / r.tor1).toFixed(2)}×`.padStart(8);
    const vsC = r.tor1 === undefined ? `CGO ${(r.cgo / 175).toFixed(0)}× C tor's` : `tor1 ${(r.tor1 / 60).toFixed(0)}× C tor's`;
    console.log(`  ${r.name.padEnd(14)} ${t} ${r.cgo.toFixed(0).padStart(8)}   ${ratio}   ${vsC}`);
  }
  console.log('');
  for (const [k, v] of Object.entries(result.polyval)) console.log(`  ${k.padEnd(40)} ${v.toFixed(1).padStart(8)} ns`);
}

main();
