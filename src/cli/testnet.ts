/**
 * cli/testnet — `orport testnet`: a private Tor network for a command, or until Ctrl-C.
 *
 * Parses the options, makes sure it runs in an isolated network namespace
 * (as root it re-executes itself under `unshare --net`), boots the network
 * with src/testnet, prints the description (JSON on stdout, a summary on
 * stderr), runs the command with ORPORT_TESTNET_* variables (or waits for
 * SIGINT/SIGTERM), then stops every process it started (`--latency` / `--rate`
 * turn on the launcher's delay forwarders). Ctrl-C during boot
 * stops everything cleanly. It holds no network logic of its own.
 */
import { spawn } from 'node:child_process';
import { AbortError, OrportError } from '../errors.js';
import {
  DEFAULT_EXITS,
  DEFAULT_FILE_BYTES,
  DEFAULT_ONION_TIMEOUT_MS,
  DEFAULT_RELAYS,
  DEFAULT_TIMEOUT_MS,
  ensureIsolated,
  formatFindings,
  resolveConsensusParams,
  signalExitCode,
  startTestnet,
  type LogLevel,
  type Testnet,
  type TestnetDescription,
} from '../testnet/index.js';
import { UsageError, type Command } from './command.js';

export interface TestnetCliOptions {
  relays: number;
  exits: number;
  client: boolean;
  onion: boolean;
  keep: boolean;
  fileBytes: number;
  json: boolean;
  quiet: boolean;
  basePort: number | undefined;
  timeoutMs: number;
  baseDir: string | undefined;
  freshKeys: boolean;
  logLevel: LogLevel;
  latencyMs: number;
  rateBytesPerSec: number | undefined;
  consensusParams: string | undefined;
  command: string[];
}

const USAGE = `usage: orport testnet [options] [-- command [args...]]

Boots a private Tor network on 127.0.0.1 (3 directory authorities, relays,
exits, optionally a client, and an HTTP server with a random file) inside a
network namespace that has only loopback, runs the command there (or waits
for Ctrl-C), then stops every process it started. As root outside such a
namespace it re-executes itself under \`unshare --net\`.

options:
  --relays N          non-exit relays besides the authorities (default ${DEFAULT_RELAYS})
  --exits M           exit relays, policy accepting 127.0.0.0/8 (default ${DEFAULT_EXITS})
  --client            also start a tor client with a SocksPort
  --onion             the client (started anyway) also runs a v3 onion service
                      whose port 80 leads to the HTTP file server; the boot ends
                      once its descriptor is uploaded (default timeout 180 s)
  --file-size BYTES   size of the served random file; K, M, G = KiB, MiB, GiB
                      (default ${DEFAULT_FILE_BYTES / 1024 / 1024}M)
  --base-port P       first port of the layout (default: the first free block
                      from 15000); a taken port is then an error
  --timeout SEC       give up booting after SEC seconds (default ${DEFAULT_TIMEOUT_MS / 1000}, ${DEFAULT_ONION_TIMEOUT_MS / 1000} with --onion)
  --base-dir DIR      where the network's directory is made (default: $TMPDIR or /tmp)
  --keep              keep the directory (keys, torrcs, logs) afterwards;
                      it is always kept when the boot fails
  --fresh-keys        generate keys instead of using /tmp/orport-testnet-keys
  --log-level L       extra per-node log: notice, info or debug (default info)
  --latency MS        one-way delay on every link to a relay's ORPort (client to
                      relay and relay to relay; a round trip costs 2 x MS), by a
                      forwarder in this process that each relay advertises
                      (tor listens behind it, on base port + 400 + i); DirPorts
                      are not delayed (default 0: no forwarders)
  --rate BYTES        also limit each direction of each such link to BYTES per
                      second; K, M, G = KiB, MiB, GiB (default: no limit)
  --consensus-params P  the authorities' ConsensusParams: public (default: the
                      public network's data-path values, KIST every 3 ms and its
                      congestion-control tuning), tor-defaults (none), or
                      "k=v k=v"
  --json              print the JSON description on stdout even with a command
  --quiet             no progress lines on stderr

The command runs inside the namespace with these variables:
  ORPORT_TESTNET_JSON         path of the JSON description (nodes, ports, keys)
  ORPORT_TESTNET_DIR          the network's directory
  ORPORT_TESTNET_HTTP_URL     URL of the random file; ORPORT_TESTNET_FILE_SHA256
  ORPORT_TESTNET_DIRAUTH_FILE torrc-style file with the DirAuthority lines
  ORPORT_TESTNET_SOCKS_PORT   the client's SocksPort (with --client)
  ORPORT_TESTNET_ONION        the onion service, ADDRESS.onion:PORT (with --onion)
  ORPORT_TESTNET_LATENCY_MS   the one-way link delay (with --latency)
  ORPORT_TESTNET_RATE         the links' rate limit, bytes/s (with --rate)

Exit status: the command's; 130 when interrupted during boot; 1 when the
boot fails (the error names the node and its log).`;

/** "1048576", "512K", "10M", "1G", "20MiB" → bytes; `flag` names the option in errors. */
export function parseByteSize(text: string, flag = '--file-size'): number {
  const match = /^(\d+(?:\.\d+)?)\s*([kmg]?)(?:i?b)?$/i.exec(text.trim());
  if (!match) throw new UsageError(`${flag}: cannot read ${JSON.stringify(text)} as a size (e.g. 1048576, 512K, 20M)`);
  const unit = (match[2] ?? '').toLowerCase();
  const factor = unit === 'k' ? 1024 : unit === 'm' ? 1024 ** 2 : unit === 'g' ? 1024 ** 3 : 1;
  const bytes = Math.round(Number(match[1]) * factor);
  if (!Number.isSafeInteger(bytes)) throw new UsageError(`${flag}: ${text} is too large`);
  return bytes;
}

export function parseTestnetArgs(argv: readonly string[]): TestnetCliOptions {
  const options: TestnetCliOptions = {
    relays: DEFAULT_RELAYS,
    exits: DEFAULT_EXITS,
    client: false,
    onion: false,
    keep: false,
    fileBytes: DEFAULT_FILE_BYTES,
    json: false,
    quiet: false,
    basePort: undefined,
    timeoutMs: NaN,
    baseDir: undefined,
    freshKeys: false,
    logLevel: 'info',
    latencyMs: 0,
    rateBytesPerSec: undefined,
    consensusParams: undefined,
    command: [],
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--') {
      options.command = argv.slice(i + 1);
      break;
    }
    const [flag, inline] = arg.startsWith('--') && arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new UsageError(`${flag} needs a value`);
      return v;
    };
    const integer = (min: number, max: number): number => {
      const raw = value();
      const n = Number(raw);
      if (!/^\d+$/.test(raw) || n < min || n > max) throw new UsageError(`${flag} must be an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`);
      return n;
    };
    switch (flag) {
      case '--relays':
        options.relays = integer(0, 90);
        break;
      case '--exits':
        options.exits = integer(0, 90);
        break;
      case '--client':
        options.client = true;
        break;
      case '--onion':
        options.onion = true;
        break;
      case '--keep':
        options.keep = true;
        break;
      case '--file-size':
        options.fileBytes = parseByteSize(value());
        break;
      case '--json':
        options.json = true;
        break;
      case '--quiet':
        options.quiet = true;
        break;
      case '--base-port':
        options.basePort = integer(1024, 65234);
        break;
      case '--timeout':
        options.timeoutMs = integer(1, 3600) * 1000;
        break;
      case '--base-dir':
        options.baseDir = value();
        break;
      case '--fresh-keys':
        options.freshKeys = true;
        break;
      case '--latency':
        options.latencyMs = integer(0, 10_000);
        break;
      case '--rate': {
        const rate = parseByteSize(value(), '--rate');
        if (rate < 1024) throw new UsageError(`--rate must be at least 1024 bytes per second, got ${rate}`);
        options.rateBytesPerSec = rate;
        break;
      }
      case '--consensus-params':
        options.consensusParams = value();
        resolveConsensusParams(options.consensusParams); // checked here, before any tor starts
        break;
      case '--log-level': {
        const level = value();
        if (level !== 'notice' && level !== 'info' && level !== 'debug') throw new UsageError(`--log-level must be notice, info or debug, got ${JSON.stringify(level)}`);
        options.logLevel = level;
        break;
      }
      default:
        if (!arg.startsWith('-')) throw new UsageError(`unexpected argument ${JSON.stringify(arg)}; put the command after --`);
        throw new UsageError(`unknown option ${arg}`);
    }
  }
  if (Number.isNaN(options.timeoutMs)) options.timeoutMs = options.onion ? DEFAULT_ONION_TIMEOUT_MS : DEFAULT_TIMEOUT_MS;
  if (options.relays + options.exits > 96) throw new UsageError('--relays and --exits together must be at most 96');
  return options;
}

/** The variables a command run under `orport testnet` gets. */
export function testnetEnvironment(description: TestnetDescription): Record<string, string> {
  const env: Record<string, string> = {
    ORPORT_TESTNET_JSON: description.jsonPath,
    ORPORT_TESTNET_DIR: description.dir,
    ORPORT_TESTNET_HTTP_URL: description.http.url,
    ORPORT_TESTNET_FILE_SHA256: description.http.fileSha256,
    ORPORT_TESTNET_DIRAUTH_FILE: description.dirAuthorityFile,
  };
  if (description.latencyMs > 0) env.ORPORT_TESTNET_LATENCY_MS = String(description.latencyMs);
  if (typeof description.rateBytesPerSec === 'number') env.ORPORT_TESTNET_RATE = String(description.rateBytesPerSec);
  if (description.socksPort !== null) env.ORPORT_TESTNET_SOCKS_PORT = String(description.socksPort);
  if (description.onion) env.ORPORT_TESTNET_ONION = `${description.onion.address}:${description.onion.port}`;
  return env;
}

/** A short human summary of the network, for stderr. */
export function summarize(description: TestnetDescription): string {
  const t = description.timings;
  const s = (ms: number | null): string => (ms === null ? '-' : `${(ms / 1000).toFixed(2)}s`);
  const lines = [
    `test network up in ${s(t.totalMs)} (prepare ${s(t.prepareMs)}; since launch: first consensus ${s(t.firstConsensusMs)}, full ${s(t.fullConsensusMs)}, settled ${s(t.settledMs)}${t.clientBootstrappedMs === null ? '' : `, client bootstrapped ${s(t.clientBootstrappedMs)}`})`,
    `  directory ${description.dir}   tor ${description.torVersion}   namespace ${description.netns}`,
  ];
  const delayed = description.latencyMs > 0 || description.rateBytesPerSec !== null;
  if (delayed) {
    const rate = description.rateBytesPerSec === null ? 'no rate limit' : `rate ${description.rateBytesPerSec} bytes/s per direction per connection`;
    lines.push(`  links to ORPorts: ${description.latencyMs} ms one way (${2 * description.latencyMs} ms round trip), ${rate}; ORPort = the forwarder (advertised), real = tor's listener`);
  }
  lines.push(`  nick      role       ORPort  ${delayed ? 'real   ' : ''}DirPort  pid      RSA fingerprint`);
  for (const n of description.nodes) {
    const port = (p: number | null): string => (p === null ? '-' : String(p));
    const real = delayed ? `${port(n.realOrPort).padEnd(6)} ` : '';
    lines.push(`  ${n.nick.padEnd(9)} ${n.role.padEnd(10)} ${port(n.orPort).padEnd(7)} ${real}${port(n.dirPort).padEnd(8)} ${String(n.pid).padEnd(8)} ${n.fingerprint ?? `SocksPort ${n.socksPort}`}`);
  }
  if (description.onion) lines.push(`  onion service ${description.onion.address}:${description.onion.port} → the file server (run by ${description.onion.nick}; ${description.onion.uploads} descriptor uploads accepted)`);
  lines.push(`  file ${description.http.url} (${description.http.fileBytes} bytes, sha256 ${description.http.fileSha256})`);
  lines.push(`  description ${description.jsonPath}; DirAuthority lines in ${description.dirAuthorityFile}`);
  return lines.join('\n');
}

/** Runs the command with inherited stdio; resolves to its exit status (127 if it cannot start). */
function runCommand(command: readonly string[], env: NodeJS.ProcessEnv, interrupted: AbortSignal, log: (m: string) => void): Promise<number> {
  const [file, ...args] = command;
  if (file === undefined) return Promise.resolve(0);
  return new Promise<number>((resolve) => {
    const child = spawn(file, args, { stdio: 'inherit', env });
    let killTimer: NodeJS.Timeout | undefined;
    const onInterrupt = (): void => {
      // A terminal's Ctrl-C reaches the command too; give it a moment, then SIGTERM, then SIGKILL.
      killTimer = setTimeout(() => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
        killTimer = setTimeout(() => {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        }, 5000);
      }, 2000);
    };
    interrupted.addEventListener('abort', onInterrupt, { once: true });
    const done = (code: number): void => {
      clearTimeout(killTimer);
      interrupted.removeEventListener('abort', onInterrupt);
      resolve(code);
    };
    child.once('error', (err) => {
      log(`cannot run ${file}: ${err.message}`);
      done(127);
    });
    child.once('exit', (code, signal) => done(code ?? signalExitCode(signal)));
  });
}

export async function runTestnet(argv: readonly string[]): Promise<number> {
  const options = parseTestnetArgs(argv);
  const log = (message: string): void => {
    if (!options.quiet) process.stderr.write(`${message}\n`);
  };
  const outcome = await ensureIsolated({ log: (m) => log(`orport testnet: ${m}`) });
  if (outcome.kind === 'reexecuted') return outcome.exitCode;

  const interrupt = new AbortController();
  let received: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (received !== undefined) {
      log(`orport testnet: ${signal} again; already stopping`);
      return;
    }
    received = signal;
    log(`orport testnet: ${signal}; stopping`);
    interrupt.abort(new AbortError(`the test network (${signal})`));
  };
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const signal of signals) process.on(signal, onSignal);

  let testnet: Testnet | undefined;
  try {
    try {
      testnet = await startTestnet({
        relays: options.relays,
        exits: options.exits,
        client: options.client,
        onion: options.onion,
        httpFileBytes: options.fileBytes,
        keep: options.keep,
        keepOnFailure: true,
        baseDir: options.baseDir,
        basePort: options.basePort,
        timeoutMs: options.timeoutMs,
        keyCacheDir: options.freshKeys ? null : undefined,
        logLevel: options.logLevel,
        latencyMs: options.latencyMs,
        rateBytesPerSec: options.rateBytesPerSec,
        consensusParams: options.consensusParams,
        signal: interrupt.signal,
        log,
      });
    } catch (err) {
      if (received !== undefined && err instanceof OrportError && err.code === 'E_ABORTED') {
        log('orport testnet: interrupted during boot; everything stopped');
        return signalExitCode(received);
      }
      throw err;
    }
    const description = testnet.describe();
    log(summarize(description));
    if (options.json || options.command.length === 0) process.stdout.write(JSON.stringify(description, null, 2) + '\n');

    let exitCode = 0;
    if (options.command.length > 0) {
      log(`orport testnet: running ${options.command.join(' ')}`);
      exitCode = await runCommand(options.command, { ...process.env, ...testnetEnvironment(description) }, interrupt.signal, log);
      log(`orport testnet: command exited with ${exitCode}`);
    } else if (received === undefined) {
      log('orport testnet: network up; Ctrl-C to stop');
      await new Promise<void>((resolve) => interrupt.signal.addEventListener('abort', () => resolve(), { once: true }));
    }
    const report = await testnet.stop();
    if (report.nonLoopbackAddresses.length > 0) {
      log(`orport testnet: WARNING: tor logs name non-loopback addresses:\n${formatFindings(report.nonLoopbackAddresses)}`);
      if (exitCode === 0) exitCode = 1;
    }
    if (!report.dirRemoved) log(`orport testnet: kept ${report.dir}`);
    return exitCode;
  } finally {
    await testnet?.stop();
    for (const signal of signals) process.off(signal, onSignal);
  }
}

export const testnetCommand: Command = {
  name: 'testnet',
  summary: 'boot a private Tor network on 127.0.0.1 and run a command in it',
  usage: USAGE,
  run: runTestnet,
};
