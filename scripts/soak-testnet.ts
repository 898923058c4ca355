/**
 * scripts/soak-testnet — boots the private test network many times in a row.
 *
 *   node --import tsx scripts/soak-testnet.ts [--count N] [--relays N] [--exits M]
 *        [--client] [--fresh-keys] [--verbose]
 *
 * Each boot must succeed, and after each stop no tor process of that network
 * and no temporary directory may remain, and no tor log may name a
 * non-loopback address. Prints every boot's timings and a summary; exits 1 if
 * any boot failed. As root outside a network namespace it re-executes itself
 * under `unshare --net` (via ensureIsolated); it never starts tor elsewhere.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureIsolated, formatFindings, startTestnet, torProcessesUnder, type BootTimings } from '../src/testnet/index.js';

interface Args {
  count: number;
  relays: number;
  exits: number;
  client: boolean;
  freshKeys: boolean;
  verbose: boolean;
}

function parseArgs(argv: readonly string[]): Args {
  const args: Args = { count: 10, relays: 4, exits: 2, client: false, freshKeys: false, verbose: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const number = (): number => {
      const value = Number(argv[++i]);
      if (!Number.isInteger(value) || value < 0) throw new Error(`${arg} needs a non-negative integer`);
      return value;
    };
    if (arg === '--count') args.count = number();
    else if (arg === '--relays') args.relays = number();
    else if (arg === '--exits') args.exits = number();
    else if (arg === '--client') args.client = true;
    else if (arg === '--fresh-keys') args.freshKeys = true;
    else if (arg === '--verbose') args.verbose = true;
    else throw new Error(`unknown option ${arg}`);
  }
  return args;
}

function stats(values: readonly number[]): string {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
  const mean = sorted.reduce((a, b) => a + b, 0) / sorted.length;
  const s = (ms: number): string => (ms / 1000).toFixed(2);
  return `min ${s(sorted[0] ?? NaN)}  median ${s(at(0.5))}  mean ${s(mean)}  max ${s(sorted[sorted.length - 1] ?? NaN)} s`;
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const outcome = await ensureIsolated({ log: (m) => process.stderr.write(`[soak] ${m}\n`) });
  if (outcome.kind === 'reexecuted') return outcome.exitCode;

  const abort = new AbortController();
  const onSignal = (): void => abort.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const baseDir = mkdtempSync(join(tmpdir(), 'orport-soak-'));
  const results: { ok: boolean; timings?: BootTimings; error?: string }[] = [];
  console.log(`soak: ${args.count} boots of 3 authorities + ${args.relays} relays + ${args.exits} exits${args.client ? ' + client' : ''}${args.freshKeys ? ', fresh keys each time' : ''}`);
  console.log('boot  prepare  1st-cons  full-cons  settled  client   total   (seconds; consensus/settled/client since launch)');
  for (let i = 1; i <= args.count && !abort.signal.aborted; i++) {
    let dir = '';
    try {
      const testnet = await startTestnet({
        relays: args.relays,
        exits: args.exits,
        client: args.client,
        httpFileBytes: 1024 * 1024,
        baseDir,
        keyCacheDir: args.freshKeys ? null : undefined,
        signal: abort.signal,
        log: args.verbose ? (m) => process.stderr.write(`${m}\n`) : undefined,
      });
      dir = testnet.dir;
      const t = testnet.describe().timings;
      const report = await testnet.stop();
      const leftovers = torProcessesUnder(dir);
      const problems: string[] = [];
      if (leftovers.length > 0) problems.push(`tor still running: ${leftovers.map((p) => p.pid).join(', ')}`);
      if (existsSync(dir)) problems.push(`directory ${dir} still exists`);
      if (report.nonLoopbackAddresses.length > 0) problems.push(`non-loopback addresses in logs:\n${formatFindings(report.nonLoopbackAddresses)}`);
      const s = (ms: number | null): string => (ms === null ? '   -  ' : (ms / 1000).toFixed(2).padStart(6));
      console.log(`${String(i).padStart(4)}  ${s(t.prepareMs)}   ${s(t.firstConsensusMs)}    ${s(t.fullConsensusMs)}    ${s(t.settledMs)}  ${s(t.clientBootstrappedMs)}  ${s(t.totalMs)}${problems.length ? `  FAIL: ${problems.join('; ')}` : ''}`);
      results.push({ ok: problems.length === 0, timings: t, error: problems.join('; ') || undefined });
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      console.log(`${String(i).padStart(4)}  FAILED: ${message}`);
      results.push({ ok: false, error: message });
    }
  }
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);

  const ok = results.filter((r) => r.ok);
  const timings = ok.map((r) => r.timings).filter((t): t is BootTimings => t !== undefined);
  console.log(`\nsoak: ${ok.length}/${results.length} boots succeeded`);
  if (timings.length > 0) {
    console.log(`  settled after launch: ${stats(timings.map((t) => t.settledMs))}`);
    console.log(`  total boot:           ${stats(timings.map((t) => t.totalMs))}`);
    console.log(`  first consensus:      ${stats(timings.map((t) => t.firstConsensusMs))}`);
  }
  const strays = torProcessesUnder(baseDir);
  const leftovers = readdirSync(baseDir);
  if (strays.length > 0 || leftovers.length > 0) console.log(`  FAIL: left behind: tor pids [${strays.map((p) => p.pid).join(', ')}], entries [${leftovers.join(', ')}] in ${baseDir}`);
  else console.log(`  nothing left behind (no tor process, no directory under ${baseDir})`);
  rmSync(baseDir, { recursive: true, force: true });
  return ok.length === results.length && results.length === args.count && strays.length === 0 && leftovers.length === 0 ? 0 : 1;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`soak: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
