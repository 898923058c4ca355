/**
 * bench/codec — RELAY cell pack + unpack throughput (cells/s), orport against Python
 * Stem 1.8 in the same run, printed as a ratio. Target: pack + unpack ≥ 50× Stem.
 *
 *   node --import tsx bench/codec.ts [--rounds 7] [--seconds 0.25] [--lp 5] [--json] [--no-stem]
 *   npm run bench -- codec
 *
 * Measured on RELAY_DATA cells with 498 bytes of data (a full cell) and with 16:
 *   pack+unpack  new RelayCell(circId, 'RELAY_DATA', data, digest, streamId).pack(lp), then Cell.pop(bytes, lp)
 *   pack         new RelayCell(…).pack(lp)
 *   unpack       Cell.pop(bytes, lp) on a packed cell
 * Stem does the same (RelayCell(…).pack(lp), Cell.pop(…)) in bench/stem_codec.py, run by
 * Debian's /usr/bin/python3. Each round measures orport then Stem for a fixed time, one
 * after the other, so both see the same machine load; the table shows medians over the
 * rounds. Nothing asserts wall-clock time: this only reports.
 */
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Cell, RelayCell, toHex, type RelayCell as RelayCellType } from '../src/index.js';
import { JsonLinesPeer } from './peer.js';

const STEM_SIDE = fileURLToPath(new URL('./stem_codec.py', import.meta.url));
const CIRC_ID = 0x80000001;
const STREAM_ID = 1;
const DIGEST = 0x12345678;
const TARGET = 50;

type Mode = 'pack+unpack' | 'pack' | 'unpack';
const MODES: readonly Mode[] = ['pack+unpack', 'pack', 'unpack'];
const STEM_MODE: Record<Mode, string> = { 'pack+unpack': 'roundtrip', pack: 'pack', unpack: 'unpack' };
const DATA_LENS = [498, 16] as const;

interface Options {
  rounds: number;
  seconds: number;
  lp: number;
  json: boolean;
  stem: boolean;
}

function parseArgs(argv: string[]): Options {
  const opts: Options = { rounds: 7, seconds: 0.25, lp: 5, json: false, stem: true };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = () => {
      const v = Number(argv[++i]);
      if (!Number.isFinite(v) || v <= 0) throw new Error(`${arg} needs a positive number`);
      return v;
    };
    if (arg === '--rounds') opts.rounds = Math.round(value());
    else if (arg === '--seconds') opts.seconds = value();
    else if (arg === '--lp') opts.lp = Math.round(value());
    else if (arg === '--json') opts.json = true;
    else if (arg === '--no-stem') opts.stem = false;
    else if (arg === '--help' || arg === '-h') {
      console.log('usage: node --import tsx bench/codec.ts [--rounds N] [--seconds S] [--lp N] [--json] [--no-stem]');
      process.exit(0);
    } else throw new Error(`unknown argument ${arg}`);
  }
  return opts;
}

/** The bench's data: deterministic, the same bytes as bench/stem_codec.py. */
function dataOf(length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (i * 7 + 3) & 0xff;
  return out;
}

let sink = 0;

/** Cells per second for one mode, over about `seconds`. */
function measureOrport(mode: Mode, dataLen: number, lp: number, seconds: number): number {
  const data = dataOf(dataLen);
  const packed = new RelayCell(CIRC_ID, 'RELAY_DATA', data, DIGEST, STREAM_ID).pack(lp);
  const chunk = 1000;
  const budget = seconds * 1e9;
  let count = 0;
  const start = process.hrtime.bigint();
  let elapsed = 0;
  if (mode === 'pack') {
    do {
      for (let i = 0; i < chunk; i++) sink += new RelayCell(CIRC_ID, 'RELAY_DATA', data, DIGEST, STREAM_ID).pack(lp).length;
      count += chunk;
      elapsed = Number(process.hrtime.bigint() - start);
    } while (elapsed < budget);
  } else if (mode === 'unpack') {
    do {
      for (let i = 0; i < chunk; i++) sink += (Cell.pop(packed, lp).cell as RelayCellType).data.length;
      count += chunk;
      elapsed = Number(process.hrtime.bigint() - start);
    } while (elapsed < budget);
  } else {
    do {
      for (let i = 0; i < chunk; i++) {
        const bytes = new RelayCell(CIRC_ID, 'RELAY_DATA', data, DIGEST, STREAM_ID).pack(lp);
        sink += (Cell.pop(bytes, lp).cell as RelayCellType).data.length;
      }
      count += chunk;
      elapsed = Number(process.hrtime.bigint() - start);
    } while (elapsed < budget);
  }
  return count / (elapsed / 1e9);
}

interface StemMeasure {
  ok: boolean;
  rate?: number;
  hex?: string;
  error?: string;
}

/** bench/stem_codec.py --serve: one measurement per request. */
class StemSide extends JsonLinesPeer<StemMeasure> {
  async measure(mode: Mode, dataLen: number, lp: number, seconds: number): Promise<number> {
    const r = await this.request({ op: 'measure', mode: STEM_MODE[mode], data_len: dataLen, lp, seconds });
    if (!r.ok || r.rate === undefined) throw new Error(`Stem measurement failed: ${r.error}`);
    return r.rate;
  }
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};
const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  const load = loadavg().map((x) => x.toFixed(2)).join(' ');
  const cpu = cpus();
  const { peer: stem, note: stemNote } = opts.stem ? await StemSide.startOrSay(STEM_SIDE) : { peer: undefined, note: 'Stem not measured (--no-stem)' };

  // Both sides must do the same work: the packed cells must be identical.
  if (stem) {
    for (const len of DATA_LENS) {
      const ours = toHex(new RelayCell(CIRC_ID, 'RELAY_DATA', dataOf(len), DIGEST, STREAM_ID).pack(opts.lp));
      const theirs = await stem.request({ op: 'sample', data_len: len, lp: opts.lp });
      if (!theirs.ok || theirs.hex !== ours) throw new Error(`orport and Stem pack the bench cell (${len} bytes of data) differently: ${theirs.error ?? theirs.hex?.slice(0, 64)}`);
    }
  }

  if (!opts.json) {
    console.log(`bench/codec: RELAY_DATA cells, link protocol ${opts.lp}, ${opts.rounds} rounds x ${opts.seconds} s per measurement, median cells/s`);
    console.log(`  node ${process.version}; ${stemNote}; ${cpu.length} x ${cpu[0]?.model.trim() ?? 'cpu'}; load average ${load}`);
  }

  // Warm up orport's JIT (Stem warms up in its first round; its rate barely moves).
  for (const len of DATA_LENS) for (const mode of MODES) measureOrport(mode, len, opts.lp, Math.min(0.3, opts.seconds));
  if (stem) for (const len of DATA_LENS) for (const mode of MODES) await stem.measure(mode, len, opts.lp, Math.min(0.1, opts.seconds));

  const rates = new Map<string, { orport: number[]; stem: number[] }>();
  for (let round = 0; round < opts.rounds; round++) {
    for (const len of DATA_LENS) {
      for (const mode of MODES) {
        const key = `${mode}/${len}`;
        const entry = rates.get(key) ?? { orport: [], stem: [] };
        rates.set(key, entry);
        entry.orport.push(measureOrport(mode, len, opts.lp, opts.seconds));
        if (stem) entry.stem.push(await stem.measure(mode, len, opts.lp, opts.seconds));
      }
    }
  }
  stem?.close();

  const rows = [...rates].map(([key, r]) => {
    const [mode, len] = key.split('/') as [Mode, string];
    const orport = median(r.orport);
    const stemRate = r.stem.length ? median(r.stem) : undefined;
    return { mode, dataLen: Number(len), orport, orportMin: Math.min(...r.orport), orportMax: Math.max(...r.orport), stem: stemRate, stemMin: Math.min(...r.stem), stemMax: Math.max(...r.stem), ratio: stemRate ? orport / stemRate : undefined, rounds: r };
  });

  if (opts.json) {
    console.log(JSON.stringify({ lp: opts.lp, rounds: opts.rounds, seconds: opts.seconds, node: process.version, stem: stemNote, load, rows, sink }, null, 2));
    return;
  }

  const header = ['data', 'operation', 'orport cells/s', '(min - max)', 'Stem cells/s', '(min - max)', 'orport/Stem'];
  const table = rows.map((r) => [
    `${r.dataLen} B`,
    r.mode,
    fmt(r.orport),
    `(${fmt(r.orportMin)} - ${fmt(r.orportMax)})`,
    r.stem === undefined ? '-' : fmt(r.stem),
    r.stem === undefined ? '' : `(${fmt(r.stemMin)} - ${fmt(r.stemMax)})`,
    r.ratio === undefined ? '-' : `${r.ratio.toFixed(1)}x`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i]!.length)));
  const line = (cells: string[]) => '  ' + cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  console.log(line(header));
  console.log(line(widths.map((w) => '-'.repeat(w))));
  for (const row of table) console.log(line(row));
  const full = rows.find((r) => r.mode === 'pack+unpack' && r.dataLen === 498);
  if (full?.ratio !== undefined) {
    console.log(`  target: pack+unpack of full RELAY cells >= ${TARGET}x Stem: ${full.ratio.toFixed(1)}x ${full.ratio >= TARGET ? 'met' : 'NOT met'}`);
  }
  if (sink === 42) console.log(''); // keeps the measured work observable
}

main().catch((err: unknown) => {
  console.error(`bench/codec: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
