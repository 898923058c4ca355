/**
 * scripts/test — the test command (`npm test`).
 *
 *   node --import tsx scripts/test.ts [--unit | --integration] [--keep] [--fuzz] [filter…]
 *
 * 1. Unit tests (test/unit/**\/*.test.ts) with Node's test runner; they need
 *    no network and no root.
 * 2. Integration tests (test/integration/**\/*.test.ts): the runner makes sure
 *    it is in an isolated network namespace (as root it re-executes itself
 *    under `unshare --net`, before the unit tests, so they run once), boots ONE
 *    private Tor network (src/testnet) with a client, exports its description
 *    in ORPORT_TESTNET_JSON, runs every integration file against it, stops it,
 *    and fails the run if any tor log names a non-loopback address or a tor
 *    process of the run survives. Tests that start networks of their own put
 *    them under ORPORT_TEST_TMPDIR (a directory of this run, checked and
 *    removed at the end).
 *
 * 3. The files of DELAYED_FILES once more, against a second shared network whose every
 *    ORPort link is delayed DELAYED_LATENCY_MS one way (startTestnet's latencyMs), where
 *    congestion control is what it is for (issue 13: "loopback and with latency").
 *
 * ORPORT_TESTNET_LATENCY_MS / ORPORT_TESTNET_RATE (bytes/s), when set, boot the
 * shared network with delayed links (startTestnet's latencyMs / rateBytesPerSec) and
 * skip step 3;
 * ORPORT_TESTNET_ONION=1 with an onion service on its client (startTestnet's onion; the
 * description's `onion`).
 *
 * Options: --unit / --integration run one part only; --keep keeps the
 * network's directory (keys, torrcs, logs); --fuzz runs the unit tests with
 * ORPORT_FUZZ_RUNS=20000 (unless set) and prints the fuzz tests' total case count;
 * other arguments filter test files by substring. Exit status 0 only when
 * everything passed.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { ensureIsolated, formatFindings, startTestnet, torProcessesUnder, type Testnet } from '../src/testnet/index.js';

const root = new URL('..', import.meta.url).pathname;
// The set-up before `npm test` installs Python Stem: its differential tests must run, not skip.
process.env.ORPORT_REQUIRE_STEM ??= '1';
const say = (message: string): void => {
  process.stderr.write(`[test] ${message}\n`);
};

function listTests(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const full = join(dir, name);
    if (statSync(full).isDirectory()) out.push(...listTests(full));
    else if (name.endsWith('.test.ts')) out.push(full);
  }
  return out;
}

/** Runs `node --test` on `files` (asynchronously: the HTTP file server lives in this process). */
function runNodeTests(files: readonly string[], env: NodeJS.ProcessEnv, stop: AbortSignal): Promise<number> {
  if (files.length === 0) return Promise.resolve(0);
  return new Promise<number>((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', ...files], { stdio: 'inherit', env, cwd: root });
    const onStop = (): void => {
      // A terminal's Ctrl-C reaches the child as well; SIGTERM covers a signal sent to us alone.
      setTimeout(() => child.exitCode === null && child.signalCode === null && child.kill('SIGTERM'), 2000).unref();
    };
    stop.addEventListener('abort', onStop, { once: true });
    child.once('error', (err) => {
      say(`cannot run node --test: ${err.message}`);
      resolve(1);
    });
    child.once('exit', (code, signal) => {
      stop.removeEventListener('abort', onStop);
      resolve(code ?? (signal ? 1 : 0));
    });
  });
}

/** Integration files run a second time on a network with delayed links (step 3), and the delay. */
const DELAYED_FILES = ['test/integration/congestion.test.ts'];
const DELAYED_LATENCY_MS = 25;

const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)}s`;

/** Sums the case counts the fuzz tests wrote (file, property, count per line) and removes the file. */
function fuzzTotals(file: string): string {
  const lines = existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
  rmSync(join(file, '..'), { recursive: true, force: true });
  const byFile = new Map<string, number>();
  for (const line of lines) {
    const [name, , n] = line.split('\t');
    byFile.set(name!, (byFile.get(name!) ?? 0) + Number(n));
  }
  const total = [...byFile.values()].reduce((a, b) => a + b, 0);
  return `fuzz: ${total.toLocaleString('en')} cases in total (${[...byFile].map(([f, n]) => `${f} ${n.toLocaleString('en')}`).join(', ') || 'no fuzz test ran'})`;
}

async function main(): Promise<number> {
  const started = performance.now();
  const args = process.argv.slice(2);
  const flags = new Set(args.filter((a) => a.startsWith('--')));
  const filters = args.filter((a) => !a.startsWith('--'));
  for (const flag of flags) {
    if (!['--unit', '--integration', '--keep', '--fuzz'].includes(flag)) {
      say(`unknown option ${flag} (known: --unit, --integration, --keep, --fuzz, and file-name filters)`);
      return 2;
    }
  }
  const pick = (files: string[]): string[] => (filters.length ? files.filter((f) => filters.some((x) => f.includes(x))) : files);
  const wantUnit = !flags.has('--integration');
  const wantIntegration = !flags.has('--unit') && !flags.has('--fuzz');
  const unit = wantUnit ? pick(listTests(join(root, 'test/unit'))) : [];
  const integration = wantIntegration ? pick(listTests(join(root, 'test/integration'))) : [];

  // Enter the namespace first, so the unit tests do not run twice.
  if (integration.length > 0) {
    const outcome = await ensureIsolated({ log: say });
    if (outcome.kind === 'reexecuted') return outcome.exitCode;
    say(`in network namespace ${outcome.status.netns} (only lo, no default route)`);
  }

  const stop = new AbortController();
  let received: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (received) return;
    received = signal;
    say(`${signal}: stopping`);
    stop.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  let failed = false;
  try {
    if (unit.length > 0) {
      say(`unit tests: ${unit.map((f) => relative(root, f)).join(', ')}`);
      const countsFile = flags.has('--fuzz') ? join(mkdtempSync(join(tmpdir(), 'orport-fuzz-')), 'counts.tsv') : undefined;
      const env = countsFile ? { ...process.env, ORPORT_FUZZ_RUNS: process.env.ORPORT_FUZZ_RUNS ?? '20000', ORPORT_FUZZ_COUNTS: countsFile } : process.env;
      const t0 = performance.now();
      const code = await runNodeTests(unit, env, stop.signal);
      say(`unit tests ${code === 0 ? 'passed' : 'FAILED'} in ${seconds(performance.now() - t0)}`);
      if (countsFile) say(fuzzTotals(countsFile));
      failed ||= code !== 0;
    }
    const links = linkOptionsFromEnv();
    if (integration.length > 0 && !stop.signal.aborted) {
      if (typeof links === 'string') {
        say(links);
        failed = true;
      } else {
        failed = (await runIntegration(integration, links, flags.has('--keep'), stop.signal)) || failed;
        const delayed = integration.filter((f) => DELAYED_FILES.includes(relative(root, f)));
        if (delayed.length > 0 && !isDelayed(links) && !stop.signal.aborted) {
          say(`again with ${DELAYED_LATENCY_MS} ms one-way links:`);
          failed = (await runIntegration(delayed, { latencyMs: DELAYED_LATENCY_MS }, flags.has('--keep'), stop.signal)) || failed;
        }
      }
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  say(`${failed || received ? 'FAILED' : 'all passed'} in ${seconds(performance.now() - started)}`);
  return received ? 130 : failed ? 1 : 0;
}

/** The shared network's link options from ORPORT_TESTNET_LATENCY_MS / ORPORT_TESTNET_RATE; a string says what is wrong. */
interface LinkOptions {
  latencyMs?: number;
  rateBytesPerSec?: number;
}

const isDelayed = (links: LinkOptions): boolean => links.latencyMs !== undefined || links.rateBytesPerSec !== undefined;

function linkOptionsFromEnv(): LinkOptions | string {
  const read = (name: string): number | undefined | string => {
    const raw = process.env[name];
    if (raw === undefined || raw === '') return undefined;
    return /^\d+$/.test(raw) ? Number(raw) : `${name} must be a whole number, got ${JSON.stringify(raw)}`;
  };
  const latencyMs = read('ORPORT_TESTNET_LATENCY_MS');
  const rateBytesPerSec = read('ORPORT_TESTNET_RATE');
  if (typeof latencyMs === 'string') return latencyMs;
  if (typeof rateBytesPerSec === 'string') return rateBytesPerSec;
  return { ...(latencyMs === undefined ? {} : { latencyMs }), ...(rateBytesPerSec === undefined ? {} : { rateBytesPerSec }) };
}

/** Boots the shared network with `links`, runs the integration files, stops it and checks for leaks. Returns true on failure. */
async function runIntegration(files: readonly string[], links: LinkOptions, keep: boolean, stop: AbortSignal): Promise<boolean> {
  say(`integration tests: ${files.map((f) => relative(root, f)).join(', ')}`);
  const runDir = mkdtempSync(join(tmpdir(), 'orport-test-run-'));
  let failed = false;
  let testnet: Testnet | undefined;
  try {
    if (isDelayed(links)) {
      say(`delayed links: ${links.latencyMs ?? 0} ms one way, rate ${links.rateBytesPerSec ?? 'unlimited'}`);
    }
    try {
      const onion = process.env.ORPORT_TESTNET_ONION === '1';
      if (onion) say('with an onion service on the client (ORPORT_TESTNET_ONION=1)');
      testnet = await startTestnet({ client: true, onion, keep, keepOnFailure: true, signal: stop, log: (m) => say(m), ...links });
    } catch (err) {
      say(`the test network did not boot: ${err instanceof Error ? err.message : String(err)}`);
      return true;
    }
    const t = testnet.describe().timings;
    say(
      `test network booted in ${seconds(t.totalMs)} (prepare ${seconds(t.prepareMs)}; since launch: first consensus ${seconds(t.firstConsensusMs)}, ` +
        `full ${seconds(t.fullConsensusMs)}, settled ${seconds(t.settledMs)}, client ${t.clientBootstrappedMs === null ? '-' : seconds(t.clientBootstrappedMs)})`,
    );
    const env = { ...process.env, ORPORT_TESTNET_JSON: testnet.jsonPath, ORPORT_TEST_TMPDIR: runDir };
    const t0 = performance.now();
    const code = await runNodeTests(files, env, stop);
    say(`integration tests ${code === 0 ? 'passed' : 'FAILED'} in ${seconds(performance.now() - t0)}`);
    failed ||= code !== 0;
  } finally {
    if (testnet) {
      const dir = testnet.dir;
      const report = await testnet.stop();
      if (report.exitedEarly.length > 0) {
        say(`FAILED: tor nodes exited during the tests: ${report.exitedEarly.join(', ')} (see ${dir}/<node>/notice.log${report.dirRemoved ? '; rerun with --keep to keep the logs' : ''})`);
        failed = true;
      }
      if (report.nonLoopbackAddresses.length > 0) {
        say(`FAILED: tor logs name non-loopback addresses:\n${formatFindings(report.nonLoopbackAddresses)}`);
        failed = true;
      } else {
        say(`isolation: no tor log of the shared network names a non-loopback address${report.dirRemoved ? '' : `; kept ${dir}`}`);
      }
      const survivors = torProcessesUnder(dir);
      if (survivors.length > 0) {
        say(`FAILED: tor processes survived the network's stop: ${survivors.map((p) => p.pid).join(', ')}`);
        failed = true;
      }
    }
    const strays = torProcessesUnder(runDir);
    const leftovers = existsSync(runDir) ? readdirSync(runDir) : [];
    if (strays.length > 0 || leftovers.length > 0) {
      say(`FAILED: networks started by tests left ${strays.length} tor processes (${strays.map((p) => p.pid).join(', ')}) and ${leftovers.length} entries in ${runDir}: ${leftovers.join(', ')}`);
      for (const stray of strays) process.kill(stray.pid, 'SIGKILL');
      failed = true;
    }
    rmSync(runDir, { recursive: true, force: true });
  }
  return failed;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    say(err instanceof Error ? err.message : String(err));
    process.exitCode = 1;
  },
);
