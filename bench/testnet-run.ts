/**
 * bench/testnet-run — how a bench gets the private network: the one in
 * ORPORT_TESTNET_JSON (inside `orport testnet -- …` or `npm test`), or one it boots
 * itself (ensureIsolated(): as root it re-executes under `unshare --net`, so every tor
 * runs in a namespace with only loopback; then startTestnet() in a child process,
 * bench/testnet-host, so that the launcher's forwarders and file server use neither the
 * measured client's event loop nor its CPU clock) and stops at the end.
 * SIGINT / SIGTERM abort the run's signal; an interrupted run exits 130. `latencyMs` /
 * `rateBytesPerSec` boot it with delayed links (a network from ORPORT_TESTNET_JSON keeps
 * its own; a mismatch is said); `onion` with the client node's onion service.
 *
 * Layer: bench support (uses src/testnet). Measures nothing itself.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once, setMaxListeners } from 'node:events';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { AbortError } from '../src/errors.js';
import { ensureIsolated, parseTestnetDescription, type TestnetDescription, type TestnetOptions } from '../src/testnet/index.js';

/** A network booted by bench/testnet-host in a child process. */
interface HostedTestnet {
  readonly description: TestnetDescription;
  stop(): Promise<void>;
}

/** Starts bench/testnet-host with `options`; resolves once it says the network is up (its jsonPath). */
async function startHostedTestnet(options: TestnetOptions, verbose: boolean, signal: AbortSignal): Promise<HostedTestnet> {
  const script = fileURLToPath(new URL(`./testnet-host${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url));
  const child: ChildProcess = spawn(process.execPath, [...process.execArgv, script, JSON.stringify({ options, verbose })], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = once(child, 'exit');
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.stdin?.end();
      const timer = setTimeout(() => child.kill('SIGTERM'), 30_000);
      await exited;
      clearTimeout(timer);
    }
  };
  const onAbort = () => child.kill('SIGTERM');
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    const lines = createInterface({ input: child.stdout! });
    const first = await Promise.race([once(lines, 'line').then(([line]) => String(line)), exited.then(() => undefined)]);
    lines.close();
    if (first === undefined) throw new Error(`bench/testnet-host exited (${child.exitCode ?? child.signalCode}) before the network was up`);
    const said = JSON.parse(first) as { jsonPath?: string; error?: string };
    if (!said.jsonPath) throw new Error(`bench/testnet-host: ${said.error ?? first}`);
    return { description: parseTestnetDescription(readFileSync(said.jsonPath, 'utf8'), said.jsonPath), stop };
  } catch (err) {
    await stop();
    throw err;
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

export interface TestnetRunOptions {
  /** The bench's name, for messages. */
  readonly name: string;
  readonly say: (message: string) => void;
  readonly verbose?: boolean;
  /** Also start C tor's client (when booting a network). */
  readonly client?: boolean;
  /** The size of the network's HTTP test file (default 1 KiB). */
  readonly httpFileBytes?: number;
  /** One-way delay on every link to an ORPort, ms (startTestnet's latencyMs; default 0). */
  readonly latencyMs?: number;
  /** Rate limit per direction per link, bytes/s (default none). */
  readonly rateBytesPerSec?: number;
  /** Boot it with the client node's v3 onion service (startTestnet's `onion`; a network from ORPORT_TESTNET_JSON must have one). */
  readonly onion?: boolean;
}

/** Runs `bench` on a private network and resolves to its exit status (130 when interrupted). */
export async function runOnTestnet(options: TestnetRunOptions, bench: (description: TestnetDescription, signal: AbortSignal) => Promise<number>): Promise<number> {
  const { say } = options;
  const interrupt = new AbortController();
  setMaxListeners(0, interrupt.signal);
  const onSignal = (sig: NodeJS.Signals) => interrupt.abort(new AbortError(`bench/${options.name} (${sig})`));
  const run = async (description: TestnetDescription): Promise<number> => {
    try {
      return await bench(description, interrupt.signal);
    } catch (err) {
      if (!interrupt.signal.aborted) throw err;
      say(`interrupted (${err instanceof Error ? err.message : String(err)})`);
      return 130;
    }
  };
  const jsonPath = process.env.ORPORT_TESTNET_JSON;
  if (!jsonPath) {
    const outcome = await ensureIsolated({ log: say });
    if (outcome.kind === 'reexecuted') return outcome.exitCode;
  }
  for (const s of ['SIGINT', 'SIGTERM'] as const) process.on(s, onSignal);
  let testnet: HostedTestnet | undefined;
  try {
    if (jsonPath) {
      const given = parseTestnetDescription(readFileSync(jsonPath, 'utf8'), jsonPath);
      if (options.onion && !given.onion) throw new Error(`bench/${options.name} needs the onion service, and the network in ${jsonPath} has none (ORPORT_TESTNET_ONION=1)`);
      if ((options.latencyMs ?? 0) !== given.latencyMs || (options.rateBytesPerSec ?? null) !== given.rateBytesPerSec) {
        say(`note: the network in ${jsonPath} has latency ${given.latencyMs} ms, rate ${given.rateBytesPerSec ?? 'unlimited'}; the options asked for ${options.latencyMs ?? 0} ms, ${options.rateBytesPerSec ?? 'unlimited'}`);
      }
      return await run(given);
    }
    const links = options.latencyMs || options.rateBytesPerSec ? ` (links: ${options.latencyMs ?? 0} ms one way, rate ${options.rateBytesPerSec ?? 'unlimited'})` : '';
    say(`booting a private Tor network on 127.0.0.1${links}…`);
    testnet = await startHostedTestnet(
      { httpFileBytes: options.httpFileBytes ?? 1024, client: options.client, latencyMs: options.latencyMs, rateBytesPerSec: options.rateBytesPerSec, onion: options.onion },
      options.verbose ?? false,
      interrupt.signal,
    );
    const { description } = testnet;
    say(`network up in ${(description.timings.totalMs / 1000).toFixed(1)} s`);
    return await run(description);
  } catch (err) {
    if (!interrupt.signal.aborted) throw err;
    say('interrupted while booting the network');
    return 130;
  } finally {
    if (testnet) {
      say('stopping the network');
      await testnet.stop();
    }
    for (const s of ['SIGINT', 'SIGTERM'] as const) process.off(s, onSignal);
  }
}

/** The q-quantile (0..1) of `values` (nearest rank); NaN when empty. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}
