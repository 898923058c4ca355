/**
 * testnet/testnet — boots and stops a private Tor network on 127.0.0.1.
 *
 * `startTestnet(options)` checks that this process is in an isolated network
 * namespace (it never re-executes anything itself: see isolation.ts), then:
 * picks ports, makes a temporary directory, prepares keys (3 authorities
 * with tor-gencert, every relay's identity), writes the network file
 * (network.torrc, for `Network.fromFile`), writes and verifies every torrc,
 * starts a local HTTP server with a random file, with `latencyMs` / `rateBytesPerSec`
 * starts a delay forwarder (delay.ts) on each relay's advertised ORPort in front of
 * tor's real one (so client-to-relay and relay-to-relay links are delayed alike;
 * DirPorts are not), starts the authorities,
 * relays and exits, moves the authorities' first vote to just after every
 * authority holds every descriptor (alignFirstVote), waits until every relay serves the
 * consensus and all descriptors (SIGHUPing relays to reset their download
 * back-off), optionally starts a client with a SocksPort — with `onion`, the client
 * also runs a v3 onion service in front of the HTTP file server, and the boot waits
 * until its descriptor upload was accepted (its rend log, see onion.ts) —, and writes the JSON
 * description. Every wait is bounded by `timeoutMs` and honours `signal`.
 *
 * On any failure during boot — a node dying, a port taken, the timeout, an
 * abort — it stops everything it started (by pid: SIGTERM, then SIGKILL; the forwarders),
 * removes the directory (unless keep/keepOnFailure), and rejects with an error
 * naming the node that died or lagged and its log. `Testnet.stop()` does the
 * same teardown after a successful boot, scans the logs for non-loopback
 * addresses, and is idempotent.
 *
 * It does not run commands, parse CLI flags, or handle process signals (the
 * CLI and the test runner do).
 */
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AbortError, BadArgumentError, EnvironmentError, InternalError, TimeoutError } from '../errors.js';
import type { BootTimings, NodeDescription, OnionServiceDescription, RelayNodeDescription, TestnetDescription } from './description.js';
import { DESCRIPTION_FORMAT } from './description.js';
import { checkRelayServes, consensusRouters, httpGetText, missingRelays, serverDescriptorNicks, type ExpectedRelay } from './dirport.js';
import { controlSetConf } from './control.js';
import { NodeDiedError, PortInUseError, ToolFailedError } from './errors.js';
import { DelayForwarder, type DelayForwarderStats } from './delay.js';
import { createRandomFile, startFileServer, type FileServer, type RandomFile } from './httpfile.js';
import { assertIsolated, findExecutable } from './isolation.js';
import { DEFAULT_KEY_CACHE_DIR, prepareNodeKeys, type NodeKeys } from './keys.js';
import { scanLogsForNonLoopback, type AddressFinding } from './logscan.js';
import { choosePortPlan, DEFAULT_BASE_PORT, findBindFailure, listenOrPort, planPorts, type NodeRole, type PortPlan, type RelayRole } from './ports.js';
import { onionPublished, onionUploadState, readOnionHostname } from './onion.js';
import { ManagedProcess, runTool, type ExitInfo } from './process.js';
import { buildTorrc, dirAuthorityLine, PUBLIC_DATA_PATH_PARAMS, networkTorrc, torrcSafetyProblems, withVotingStartOffset, type ExitPolicyKind, type LogLevel, type TorrcNetwork } from './torrc.js';
import { abortReason, sleep } from './wait.js';

export const AUTHORITY_COUNT = 3;
export const DEFAULT_RELAYS = 4;
export const DEFAULT_EXITS = 2;
export const DEFAULT_FILE_BYTES = 20 * 1024 * 1024;
export const DEFAULT_TIMEOUT_MS = 90_000;
/** The default bound on the boot with an onion service (intro circuits and the uploads come on top). */
export const DEFAULT_ONION_TIMEOUT_MS = 180_000;
/** The onion service's default virtual port. */
export const DEFAULT_ONION_PORT = 80;
/** Marks a directory as ours, so nothing else is ever removed. */
export const DIR_MARKER = '.orport-testnet';
export const DIR_PREFIX = 'orport-testnet-';

export interface StartedNode {
  readonly nick: string;
  readonly role: NodeRole;
  readonly pid: number;
  readonly dataDir: string;
}

export interface TestnetOptions {
  /** Non-exit relays besides the 3 authorities (default 4). */
  readonly relays?: number;
  /** Exit relays (default 2); their policy accepts 127.0.0.0/8. */
  readonly exits?: number;
  /** Also start a tor client with a SocksPort, once the network has settled (default false). */
  readonly client?: boolean;
  /**
   * The client (started even without `client`) also runs a v3 onion service whose port
   * `onionPort` leads to the HTTP file server; the boot ends once its descriptor is
   * uploaded, and the description's `onion` gives its address (default false).
   */
  readonly onion?: boolean;
  /** The onion service's virtual port (default 80). */
  readonly onionPort?: number;
  /** Size of the random file the HTTP server serves (default 10 MiB). */
  readonly httpFileBytes?: number;
  /** Keep the directory (keys, torrcs, logs) after stop (default false). */
  readonly keep?: boolean;
  /** Keep the directory when the boot fails (not when aborted through `signal`), for its logs (default false). */
  readonly keepOnFailure?: boolean;
  /** Where the network's temporary directory is made (default os.tmpdir()). */
  readonly baseDir?: string;
  /** First port of the fixed layout (see ports.ts); a taken port is then an error. Default: the first free block from 15000. */
  readonly basePort?: number;
  /** Bound on the whole boot (default 90 s; 180 s with `onion`). */
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
  /** Progress lines ("[testnet +1.23s] …"); default: none. */
  readonly log?: (message: string) => void;
  /** Called as each tor process starts (tests use it to kill one). */
  readonly onNodeStarted?: (node: StartedNode) => void;
  /** Default: $ORPORT_TOR, else `tor` in PATH or /usr/sbin. */
  readonly torPath?: string;
  /** Default: $ORPORT_TOR_GENCERT, else `tor-gencert` in PATH. */
  readonly gencertPath?: string;
  /** Key cache directory (default /tmp/orport-testnet-keys); null generates fresh keys every time. */
  readonly keyCacheDir?: string | null;
  /** Level of the extra per-node log besides notice.log (default 'info'). */
  readonly logLevel?: LogLevel;
  readonly exitPolicy?: ExitPolicyKind;
  /** Run `tor --verify-config` on every torrc before starting (default true). */
  readonly verifyTorrcs?: boolean;
  /** Seconds from launch to the first consensus's valid-after, at least (default 6; see alignVotingOffset). */
  readonly voteLeadSec?: number;
  /**
   * Move the first vote to just after every authority holds every relay's
   * descriptor (SETCONF TestingV3AuthVotingStartOffset on the authorities'
   * control ports): earlier on an idle machine, later on a loaded one
   * (default true; see alignFirstVote).
   */
  readonly adaptiveVote?: boolean;
  /** V3AuthVotingInterval after the first consensus (default 10, tor's minimum for a test network). */
  readonly votingIntervalSec?: number;
  /**
   * The authorities' ConsensusParams: 'public' (default) the public network's data-path
   * values (torrc.ts PUBLIC_DATA_PATH_PARAMS: KIST every 3 ms, its congestion-control
   * tuning), 'tor-defaults' none, or a "k=v k=v" string of your own.
   */
  readonly consensusParams?: 'public' | 'tor-defaults' | string;
  /** Extra torrc lines for every node (checked by the same safety rules). */
  readonly extraTorrcLines?: readonly string[];
  /** How long stop() waits after SIGTERM before SIGKILL (default 5000 ms). */
  readonly stopGraceMs?: number;
  /** Check ports before starting (default true); false lets tor find a taken port itself. */
  readonly checkPorts?: boolean;
  /**
   * One-way delay, ms, on every TCP link to a relay's ORPort — client to relay and relay
   * to relay — by a forwarder in this process that each relay advertises (tor listens
   * behind it; see ports.ts). A round trip costs 2 × latencyMs. Default 0: no forwarders.
   */
  readonly latencyMs?: number;
  /** The forwarders' rate limit per direction per connection, bytes/s (default none; also turns the forwarders on). */
  readonly rateBytesPerSec?: number;
  /** The forwarders' buffer bound per direction per connection (default 4 MiB; see delay.ts). */
  readonly linkBufferBytes?: number;
}

/** What one relay's delay forwarder has carried (Testnet.linkStats). */
export interface LinkStats extends DelayForwarderStats {
  readonly nick: string;
  readonly port: number;
  readonly realOrPort: number;
}

export interface StopReport {
  readonly dir: string;
  readonly dirRemoved: boolean;
  /** Nodes that needed SIGKILL after the grace period. */
  readonly killed: readonly string[];
  /** Nodes that had exited before stop() (crashed after boot). */
  readonly exitedEarly: readonly string[];
  /** Non-loopback addresses found in the logs: should always be empty. */
  readonly nonLoopbackAddresses: readonly AddressFinding[];
}

interface NodePlan {
  readonly nick: string;
  readonly role: NodeRole;
  readonly dataDir: string;
  readonly torrcPath: string;
  readonly logPath: string;
  readonly detailLogPath: string | null;
  readonly outputPath: string;
  readonly relayIndex: number | undefined;
}

interface Resolved {
  readonly relays: number;
  readonly exits: number;
  readonly client: boolean;
  readonly onion: boolean;
  readonly onionPort: number;
  readonly httpFileBytes: number;
  readonly keep: boolean;
  readonly keepOnFailure: boolean;
  readonly baseDir: string;
  readonly basePort: number | undefined;
  readonly timeoutMs: number;
  readonly keyCacheDir: string | undefined;
  readonly logLevel: LogLevel;
  readonly exitPolicy: ExitPolicyKind;
  readonly verifyTorrcs: boolean;
  readonly voteLeadSec: number;
  readonly adaptiveVote: boolean;
  readonly votingIntervalSec: number;
  readonly consensusParams: string;
  readonly extraTorrcLines: readonly string[];
  readonly stopGraceMs: number;
  readonly checkPorts: boolean;
  readonly latencyMs: number;
  readonly rateBytesPerSec: number | null;
  readonly linkBufferBytes: number | undefined;
  /** latencyMs > 0 or a rate: forwarders in front of every ORPort. */
  readonly delayedLinks: boolean;
}

const INITIAL_VOTING_INTERVAL_SEC = 5;
const POLL_MS = 200;
const HTTP_TIMEOUT_MS = 2000;
const TOOL_TIMEOUT_MS = 30_000;
/** A relay still lagging this long after its last SIGHUP gets another one. */
const REHUP_AFTER_MS = 2500;
/** How often the boot log says who it is still waiting for. */
const LAG_REPORT_MS = 2000;

function resolveOptions(options: TestnetOptions): Resolved {
  const int = (name: string, value: number | undefined, fallback: number, min: number, max: number): number => {
    const v = value ?? fallback;
    if (!Number.isInteger(v) || v < min || v > max) throw new BadArgumentError(`${name} must be an integer from ${min} to ${max}, got ${String(value)}`);
    return v;
  };
  const relays = int('relays', options.relays, DEFAULT_RELAYS, 0, 90);
  const exits = int('exits', options.exits, DEFAULT_EXITS, 0, 90);
  if (AUTHORITY_COUNT + relays + exits > 99) throw new BadArgumentError(`at most ${99 - AUTHORITY_COUNT} relays and exits together, got ${relays + exits}`);
  const latencyMs = options.latencyMs ?? 0;
  if (!(Number.isFinite(latencyMs) && latencyMs >= 0 && latencyMs <= 10_000)) throw new BadArgumentError(`latencyMs must be from 0 to 10000, got ${String(options.latencyMs)}`);
  const rate = options.rateBytesPerSec;
  if (rate !== undefined && !(Number.isInteger(rate) && rate >= 1024)) throw new BadArgumentError(`rateBytesPerSec must be an integer of at least 1024, got ${String(rate)}`);
  const voteLeadSec = options.voteLeadSec ?? 6;
  if (!(voteLeadSec >= 0 && voteLeadSec <= 60)) throw new BadArgumentError(`voteLeadSec must be from 0 to 60, got ${voteLeadSec}`);
  return {
    relays,
    exits,
    client: (options.client ?? false) || (options.onion ?? false),
    onion: options.onion ?? false,
    onionPort: int('onionPort', options.onionPort, DEFAULT_ONION_PORT, 1, 65535),
    httpFileBytes: int('httpFileBytes', options.httpFileBytes, DEFAULT_FILE_BYTES, 0, 16 * 1024 * 1024 * 1024),
    keep: options.keep ?? false,
    keepOnFailure: options.keepOnFailure ?? false,
    baseDir: options.baseDir ?? tmpdir(),
    basePort: options.basePort,
    timeoutMs: int('timeoutMs', options.timeoutMs, options.onion ? DEFAULT_ONION_TIMEOUT_MS : DEFAULT_TIMEOUT_MS, 1, 3_600_000),
    keyCacheDir: options.keyCacheDir === null ? undefined : (options.keyCacheDir ?? DEFAULT_KEY_CACHE_DIR),
    logLevel: options.logLevel ?? 'info',
    exitPolicy: options.exitPolicy ?? 'wide',
    verifyTorrcs: options.verifyTorrcs ?? true,
    voteLeadSec,
    adaptiveVote: options.adaptiveVote ?? true,
    votingIntervalSec: int('votingIntervalSec', options.votingIntervalSec, 10, 10, 3600),
    consensusParams: resolveConsensusParams(options.consensusParams),
    extraTorrcLines: options.extraTorrcLines ?? [],
    stopGraceMs: int('stopGraceMs', options.stopGraceMs, 5000, 0, 600_000),
    checkPorts: options.checkPorts ?? true,
    latencyMs,
    rateBytesPerSec: rate ?? null,
    linkBufferBytes: options.linkBufferBytes,
    delayedLinks: latencyMs > 0 || rate !== undefined,
  };
}

/** TestnetOptions.consensusParams as the authorities' ConsensusParams value ('' for none). */
export function resolveConsensusParams(given: TestnetOptions['consensusParams']): string {
  if (given === undefined || given === 'public') return PUBLIC_DATA_PATH_PARAMS;
  if (given === 'tor-defaults') return '';
  const params = given.trim().split(/\s+/);
  for (const p of params) if (!/^[A-Za-z0-9_-]+=-?\d+$/.test(p)) throw new BadArgumentError(`consensusParams: expected k=INTEGER pairs separated by spaces, got ${JSON.stringify(p)}`);
  return params.join(' ');
}

interface Tools {
  readonly tor: string;
  readonly gencert: string;
}

function findTools(options: TestnetOptions): Tools {
  const install = 'install it with: apt-get install -y tor (Debian/Ubuntu; `npm test` does this as root), which also provides tor-gencert';
  const wantedTor = options.torPath ?? process.env.ORPORT_TOR ?? 'tor';
  const tor = findExecutable(wantedTor);
  if (!tor) throw new EnvironmentError(`tor is not installed (no executable ${wantedTor}${wantedTor.includes('/') ? '' : ' in PATH or /usr/sbin'}); ${install}`);
  const wantedGencert = options.gencertPath ?? process.env.ORPORT_TOR_GENCERT ?? 'tor-gencert';
  const gencert = findExecutable(wantedGencert);
  if (!gencert) throw new EnvironmentError(`tor-gencert is not installed (no executable ${wantedGencert}); ${install}`);
  return { tor, gencert };
}

/**
 * Picks TestingV3AuthVotingStartOffset so that the first valid-after falls at
 * least `leadSec` after `launchEpochSec` (rounded up to a whole second).
 * Measured with tor 0.4.9 here: with a 5 s initial interval tor shrinks the
 * vote and dist delays to 1 s each, so authorities vote at valid-after − 2 s
 * (plus up to 1 s of timer phase) and publish at valid-after; relays upload
 * their descriptors 2–3 s after launch. A 6 s lead puts every vote ≥ 1 s
 * after the last upload, so the first consensus lists every relay (tor's next
 * round would come only V3AuthVotingInterval = 10 s later). An authority that
 * schedules voting before valid-after − 5 s votes alone in an earlier round,
 * which fails harmlessly; it rejoins the aligned round.
 */
export function alignVotingOffset(launchEpochSec: number, leadSec: number, intervalSec = INITIAL_VOTING_INTERVAL_SEC): number {
  const validAfter = Math.ceil(launchEpochSec + leadSec);
  return ((validAfter % intervalSec) + intervalSec) % intervalSec;
}

/** The first whole second at or after `epochSec` that is ≡ `offset` (mod the initial interval). */
export function firstAlignedSecond(epochSec: number, offset: number, intervalSec = INITIAL_VOTING_INTERVAL_SEC): number {
  let second = Math.ceil(epochSec);
  while (((second % intervalSec) + intervalSec) % intervalSec !== offset) second++;
  return second;
}

/**
 * Writes the network's two authority files into `dir`: `dirauthorities.torrc`
 * (the DirAuthority lines only) and `network.torrc` (the network file:
 * TestingTorNetwork 1, UseDefaultFallbackDirs 0, the DirAuthority lines; see
 * torrc.ts `networkTorrc`). Returns their paths.
 */
export async function writeNetworkFiles(dir: string, dirAuthorityLines: readonly string[]): Promise<{ dirAuthorityFile: string; networkFile: string }> {
  const dirAuthorityFile = join(dir, 'dirauthorities.torrc');
  const networkFile = join(dir, 'network.torrc');
  await writeFile(dirAuthorityFile, `# DirAuthority lines of the orport test network in ${dir}\n${dirAuthorityLines.join('\n')}\n`);
  await writeFile(networkFile, networkTorrc(dirAuthorityLines, dir));
  return { dirAuthorityFile, networkFile };
}

/** After the last descriptor upload, the first valid-after is set at least this far ahead (the vote comes 2 s before it). */
const LEAD_AFTER_UPLOADS_SEC = 2.5;
/** If descriptors are still missing this long before the vote, the vote is postponed. */
const VOTE_MARGIN_SEC = 0.8;
const MAX_POSTPONEMENTS = 4;
const DESCRIPTOR_POLL_MS = 100;

interface AuthorityControl {
  readonly nick: string;
  readonly dirPort: number;
  readonly controlPort: number;
  readonly torrcPath: string;
  readonly torrc: string;
}

/**
 * Moves the authorities' first vote so that it comes right after every
 * authority holds every relay's descriptor. The launch already aims the first
 * valid-after ~6 s ahead (alignVotingOffset), which fits an idle machine; this
 * polls each authority's /tor/server/all and, once every descriptor is there,
 * sets the valid-after to 2.5–3.5 s from now if that is earlier — or, when uploads
 * are late (a loaded machine) and the vote is near, postpones it, so the first
 * consensus still lists every relay instead of the next one 10 s later. The
 * change is made with SETCONF TestingV3AuthVotingStartOffset (tor then
 * recomputes its voting schedule) and written to the torrcs too, so a later
 * SIGHUP keeps it. When SETCONF fails, every authority is set back to the old
 * offset and tor's own schedule stands.
 */
async function alignFirstVote(
  network: Network,
  plan: { authorities: readonly AuthorityControl[]; expected: readonly ExpectedRelay[]; validAfter: number; offset: number },
): Promise<void> {
  const signal = network.signal;
  let validAfter = plan.validAfter;
  let offset = plan.offset;
  let postponements = 0;
  const relative = (epochSec: number): string => `+${(epochSec - (Date.now() / 1000 - network.elapsedSinceLaunch() / 1000)).toFixed(1)}s`;

  const reschedule = async (target: number, why: string): Promise<void> => {
    const newOffset = ((target % INITIAL_VOTING_INTERVAL_SEC) + INITIAL_VOTING_INTERVAL_SEC) % INITIAL_VOTING_INTERVAL_SEC;
    const setAll = (value: number) =>
      Promise.allSettled(plan.authorities.map((a) => controlSetConf(a.controlPort, { TestingV3AuthVotingStartOffset: value }, { timeoutMs: HTTP_TIMEOUT_MS, signal })));
    await Promise.all(plan.authorities.map((a) => writeFile(a.torrcPath, withVotingStartOffset(a.torrc, newOffset))));
    const results = await setAll(newOffset);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      if (signal.aborted) throw abortReason(signal, network.progress);
      await setAll(offset);
      await Promise.all(plan.authorities.map((a) => writeFile(a.torrcPath, withVotingStartOffset(a.torrc, offset))));
      network.log(`WARNING: could not move the first vote (${failed.reason instanceof Error ? failed.reason.message : String(failed.reason)}); keeping tor's schedule`);
      return;
    }
    network.log(`first vote moved ${why}: valid-after ${relative(validAfter)} → ${relative(target)} (offset ${newOffset})`);
    validAfter = target;
    offset = newOffset;
  };

  for (;;) {
    const lacking = await Promise.all(
      plan.authorities.map(async (a) => {
        try {
          const r = await httpGetText(a.dirPort, '/tor/server/all', { timeoutMs: HTTP_TIMEOUT_MS, signal });
          const have = r.status === 200 ? serverDescriptorNicks(r.body) : new Set<string>();
          const missing = plan.expected.filter((e) => !have.has(e.nick)).map((e) => e.nick);
          return missing.length === 0 ? undefined : `${a.nick} lacks ${missing.join(', ')}`;
        } catch (err) {
          if (signal.aborted) throw abortReason(signal, network.progress);
          return `${a.nick} does not answer`;
        }
      }),
    );
    const lag = lacking.filter((l): l is string => l !== undefined);
    const now = Date.now() / 1000;
    if (lag.length === 0) {
      network.log(`every authority holds every descriptor after ${(network.elapsedSinceLaunch() / 1000).toFixed(2)}s`);
      const target = Math.ceil(now + LEAD_AFTER_UPLOADS_SEC);
      if (target < validAfter) await reschedule(target, 'earlier');
      return;
    }
    if (now > validAfter - 2) return; // the vote is under way: leave it to tor's later rounds
    if (now > validAfter - 2 - VOTE_MARGIN_SEC && postponements < MAX_POSTPONEMENTS) {
      postponements++;
      await reschedule(Math.ceil(now + LEAD_AFTER_UPLOADS_SEC + 1), `later (descriptors missing: ${lag.join('; ')})`);
    }
    network.progress = `every authority to hold every relay's descriptor: ${lag.join('; ')}`;
    await sleep(DESCRIPTOR_POLL_MS, signal, network.progress);
  }
}

const NO_LOG = '(no log yet)';

function readOrEmpty(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** Last `count` lines of a file, or NO_LOG when it cannot be read. */
function lastLines(path: string, count: number): string {
  try {
    const lines = readFileSync(path, 'utf8').trimEnd().split('\n');
    return lines.slice(-count).join('\n');
  } catch {
    return NO_LOG;
  }
}

/** Resources of one network, owned until teardown. */
class Network {
  readonly opts: Resolved;
  readonly tools: Tools;
  readonly startedAt = performance.now();
  readonly boot = new AbortController();
  readonly processes = new Map<string, ManagedProcess>();
  /** Delay forwarders by relay nick (delayed links only). */
  readonly forwarders = new Map<string, DelayForwarder>();
  readonly log: (message: string) => void;
  dir: string | undefined;
  fileServer: FileServer | undefined;
  stopping = false;
  booted = false;
  launchedAt: number | undefined;
  /** What the boot is waiting for, for the timeout message. */
  progress = 'preparing';
  private readonly userSignal: AbortSignal | undefined;
  private readonly onUserAbort: () => void;
  private readonly deadlineTimer: NodeJS.Timeout;
  private readonly onNodeStarted: ((node: StartedNode) => void) | undefined;
  private teardownPromise: Promise<StopReport> | undefined;

  constructor(opts: Resolved, tools: Tools, options: TestnetOptions) {
    this.opts = opts;
    this.tools = tools;
    this.userSignal = options.signal;
    this.onNodeStarted = options.onNodeStarted;
    const sink = options.log;
    this.log = (message) => sink?.(`[testnet +${((performance.now() - this.startedAt) / 1000).toFixed(2)}s] ${message}`);
    this.onUserAbort = () => this.fail(new AbortError(`the test network to boot (${this.progress})`, this.userSignal?.reason));
    this.userSignal?.addEventListener('abort', this.onUserAbort, { once: true });
    this.deadlineTimer = setTimeout(() => this.fail(new TimeoutError(`the test network to boot: ${this.progress}`, opts.timeoutMs)), opts.timeoutMs);
  }

  get signal(): AbortSignal {
    return this.boot.signal;
  }

  /** Ends the boot with `error` (the first failure wins). */
  fail(error: Error): void {
    if (!this.boot.signal.aborted) this.boot.abort(error);
  }

  /** The boot is over (ready or failed): drop the boot-only timer and listener. */
  endBoot(): void {
    clearTimeout(this.deadlineTimer);
    this.userSignal?.removeEventListener('abort', this.onUserAbort);
  }

  elapsedSinceLaunch(): number {
    return this.launchedAt === undefined ? 0 : performance.now() - this.launchedAt;
  }

  async startTor(node: NodePlan): Promise<ManagedProcess> {
    const args = ['--defaults-torrc', '/dev/null', '-f', node.torrcPath];
    const proc = await ManagedProcess.start(node.nick, this.tools.tor, args, { outputPath: node.outputPath, cwd: node.dataDir });
    this.processes.set(node.nick, proc);
    void proc.exited.then((info) => this.onExit(node, info));
    this.onNodeStarted?.({ nick: node.nick, role: node.role, pid: proc.pid, dataDir: node.dataDir });
    return proc;
  }

  private onExit(node: NodePlan, info: ExitInfo): void {
    if (this.stopping) return;
    // tor reports torrc errors on stdout before its log files exist.
    const notice = lastLines(node.logPath, 12);
    const useOutput = notice === NO_LOG || notice.trim() === '';
    const logPath = useOutput ? node.outputPath : node.logPath;
    const died = new NodeDiedError(node.nick, info.code, info.signal, logPath, useOutput ? lastLines(node.outputPath, 12) : notice);
    if (!this.booted) {
      const bind = findBindFailure(readOrEmpty(node.logPath)) ?? findBindFailure(readOrEmpty(node.outputPath));
      this.fail(bind ? new PortInUseError(bind.port, `wanted by ${node.nick}`, `${node.nick} could not bind it and exited; see ${logPath}`) : died);
    } else {
      this.log(`WARNING: ${died.message}`);
    }
  }

  /** Stops every process, closes the HTTP server, scans logs, removes the directory. Idempotent. */
  teardown(removeDir: boolean): Promise<StopReport> {
    this.teardownPromise ??= this.doTeardown(removeDir);
    return this.teardownPromise;
  }

  private async doTeardown(removeDir: boolean): Promise<StopReport> {
    this.stopping = true;
    const stopStarted = performance.now();
    this.endBoot();
    if (!this.boot.signal.aborted) this.boot.abort(new AbortError('the test network (stopping)'));
    const exitedEarly = [...this.processes.values()].filter((p) => !p.running).map((p) => p.name);
    const results = await Promise.all([...this.processes.values()].map(async (p) => ({ name: p.name, ...(await p.stop(this.opts.stopGraceMs)) })));
    const killed = results.filter((r) => r.killed).map((r) => r.name);
    if (killed.length > 0) this.log(`needed SIGKILL: ${killed.join(', ')}`);
    await this.fileServer?.close();
    await Promise.all([...this.forwarders.values()].map((f) => f.close()));
    let nonLoopbackAddresses: AddressFinding[] = [];
    let dirRemoved = false;
    if (this.dir !== undefined) {
      nonLoopbackAddresses = await scanLogsForNonLoopback(this.dir);
      if (removeDir) {
        await rm(this.dir, { recursive: true, force: true });
        dirRemoved = true;
      }
    }
    this.log(`stopped ${this.processes.size} tor processes in ${Math.round(performance.now() - stopStarted)} ms${dirRemoved ? '' : `; kept ${this.dir ?? '(no directory)'}`}`);
    return { dir: this.dir ?? '', dirRemoved, killed, exitedEarly, nonLoopbackAddresses };
  }
}

/**
 * Waits for all `tasks`; the first failure aborts the boot (so the others stop
 * soon, e.g. killed key generators), and once every task has settled the
 * boot's failure is thrown. Nothing keeps running after this returns.
 */
async function allOrFail<T extends readonly unknown[]>(network: Network, tasks: { readonly [K in keyof T]: Promise<T[K]> }): Promise<T> {
  const list = tasks as readonly Promise<unknown>[];
  const settled = await Promise.allSettled(
    list.map((task) =>
      task.catch((err: unknown) => {
        network.fail(err instanceof Error ? err : new InternalError(String(err)));
        throw err;
      }),
    ),
  );
  if (network.signal.aborted) throw abortReason(network.signal, network.progress);
  return settled.map((s) => (s.status === 'fulfilled' ? s.value : undefined)) as unknown as T;
}

/** A running test network. */
export class Testnet {
  readonly dir: string;
  readonly jsonPath: string;
  private readonly network: Network;
  private readonly description: TestnetDescription;

  /** @internal use startTestnet() */
  constructor(network: Network, description: TestnetDescription) {
    this.network = network;
    this.description = description;
    this.dir = description.dir;
    this.jsonPath = description.jsonPath;
  }

  /** The JSON-ready description (also in `jsonPath`). */
  describe(): TestnetDescription {
    return this.description;
  }

  get nodes(): readonly NodeDescription[] {
    return this.description.nodes;
  }

  node(nick: string): NodeDescription {
    const found = this.description.nodes.find((n) => n.nick === nick);
    if (!found) throw new BadArgumentError(`no node named ${nick} (have ${this.description.nodes.map((n) => n.nick).join(', ')})`);
    return found;
  }

  /** Per relay, what its delay forwarder carried (empty without delayed links). */
  linkStats(): LinkStats[] {
    return [...this.network.forwarders].map(([nick, f]) => ({ nick, port: f.port, realOrPort: f.targetPort, ...f.stats() }));
  }

  /** Nicknames of nodes whose tor has exited although stop() was not called. */
  get exitedNodes(): string[] {
    return [...this.network.processes.values()].filter((p) => !p.running).map((p) => p.name);
  }

  /**
   * Stops every process (SIGTERM, SIGKILL after the grace period), closes the
   * HTTP server, scans the logs, removes the directory unless `keep`.
   * Idempotent: later calls return the same report.
   */
  stop(): Promise<StopReport> {
    return this.network.teardown(!this.network.opts.keep);
  }
}

/** Boots a network (see the file header). The caller must be in an isolated namespace. */
export async function startTestnet(options: TestnetOptions = {}): Promise<Testnet> {
  const opts = resolveOptions(options);
  if (options.signal?.aborted) throw new AbortError('the test network to boot', options.signal.reason);
  const isolation = assertIsolated();
  const tools = findTools(options);
  const network = new Network(opts, tools, options);
  try {
    const description = await bootNetwork(network, isolation.netns);
    network.booted = true;
    network.endBoot();
    return new Testnet(network, description);
  } catch (caught) {
    const error = network.signal.aborted ? abortReason(network.signal, network.progress) : caught;
    network.fail(error instanceof Error ? error : new InternalError(String(error)));
    // An abort is the caller's wish to stop, not a failure worth keeping logs for.
    const keepDir = opts.keep || (opts.keepOnFailure && !(error instanceof AbortError));
    const report = await network.teardown(!keepDir);
    const hint = error instanceof AbortError ? '' : '; pass keepOnFailure (CLI: it is the default) or keep to keep the logs';
    const where = report.dir === '' ? '' : report.dirRemoved ? ` (directory ${report.dir} removed${hint})` : ` (logs kept in ${report.dir})`;
    network.log(`boot failed: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}${where}`);
    throw error;
  }
}

async function bootNetwork(network: Network, netns: string): Promise<TestnetDescription> {
  const { opts, tools } = network;
  const signal = network.signal;

  // ---- plan nodes and ports
  const plans: NodePlan[] = [];
  const relayNicks: string[] = [];
  const addNode = (nick: string, role: NodeRole): void => {
    plans.push({ nick, role, dataDir: '', torrcPath: '', logPath: '', detailLogPath: null, outputPath: '', relayIndex: role === 'client' ? undefined : relayNicks.length });
    if (role !== 'client') relayNicks.push(nick);
  };
  for (let i = 0; i < AUTHORITY_COUNT; i++) addNode(`auth${i}`, 'authority');
  for (let i = 0; i < opts.relays; i++) addNode(`relay${i}`, 'relay');
  for (let i = 0; i < opts.exits; i++) addNode(`exit${i}`, 'exit');
  if (opts.client) addNode('client', 'client');

  network.progress = 'choosing ports';
  const ports: PortPlan = opts.checkPorts
    ? await choosePortPlan(opts.basePort, relayNicks, opts.client, opts.delayedLinks)
    : planPorts(opts.basePort ?? DEFAULT_BASE_PORT, relayNicks.length, opts.client, opts.delayedLinks);
  if (signal.aborted) throw abortReason(signal, network.progress);

  // ---- directory
  await mkdir(opts.baseDir, { recursive: true });
  const dir = await mkdtemp(join(opts.baseDir, DIR_PREFIX));
  network.dir = dir;
  await writeFile(join(dir, DIR_MARKER), `orport test network, owner pid ${process.pid}\n`);
  const resolvConfPath = join(dir, 'resolv.conf');
  const emptyGeoipPath = join(dir, 'geoip-empty');
  await writeFile(resolvConfPath, 'nameserver 127.0.0.1\n');
  await writeFile(emptyGeoipPath, '');
  await mkdir(join(dir, 'www'));
  const nodes: NodePlan[] = plans.map((p) => {
    const dataDir = join(dir, p.nick);
    return {
      ...p,
      dataDir,
      torrcPath: join(dataDir, 'torrc'),
      logPath: join(dataDir, 'notice.log'),
      detailLogPath: opts.logLevel === 'notice' ? null : join(dataDir, `${opts.logLevel}.log`),
      outputPath: join(dataDir, 'stdout.log'),
    };
  });
  await Promise.all(nodes.map((n) => mkdir(n.dataDir, { recursive: true, mode: 0o700 })));
  network.log(`directory ${dir}, ports from ${ports.basePort}: ${nodes.length} nodes (${AUTHORITY_COUNT} authorities, ${opts.relays} relays, ${opts.exits} exits${opts.client ? ', 1 client' : ''})`);

  // ---- keys, test file, tor version (in parallel)
  network.progress = 'generating keys';
  const relayPlans = nodes.filter((n) => n.role !== 'client');
  const portsOf = (n: NodePlan) => {
    const p = ports.relays[n.relayIndex ?? -1];
    if (!p) throw new InternalError(`no ports for ${n.nick}`);
    return p;
  };
  const keyTasks = relayPlans.map((n) =>
    prepareNodeKeys(
      { nick: n.nick, role: n.role as RelayRole, dataDir: n.dataDir, orPort: portsOf(n).orPort, dirPort: portsOf(n).dirPort },
      { torPath: tools.tor, gencertPath: tools.gencert, cacheDir: opts.keyCacheDir, timeoutMs: TOOL_TIMEOUT_MS, signal },
    ),
  );
  const fileTask = createRandomFile(join(dir, 'www', 'file'), opts.httpFileBytes);
  const versionTask = runTool(tools.tor, ['--version'], { timeoutMs: TOOL_TIMEOUT_MS, signal, what: 'tor --version' }).then(
    (r) => /Tor version (\d+(?:\.\d+)+(?:-[\w.]*[\w])?)/.exec(r.output)?.[1] ?? r.output.trim(),
  );
  const [keyResults, file, torVersion] = await allOrFail<[NodeKeys[], RandomFile, string]>(network, [Promise.all(keyTasks), fileTask, versionTask]);
  const keys = new Map<string, NodeKeys>();
  relayPlans.forEach((n, i) => {
    const k = keyResults[i];
    if (k) keys.set(n.nick, k);
  });
  const keysFromCache = keyResults.every((k) => k.fromCache);
  network.log(`keys ready (${keysFromCache ? 'from cache' : 'generated'}); tor ${torVersion}`);

  // ---- torrcs
  network.progress = 'writing and verifying torrcs';
  const dirAuthorityLines = relayPlans
    .filter((n) => n.role === 'authority')
    .map((n) => {
      const k = keys.get(n.nick);
      if (!k?.v3ident) throw new InternalError(`authority ${n.nick} has no v3 identity`);
      return dirAuthorityLine({ nick: n.nick, orPort: portsOf(n).orPort, dirPort: portsOf(n).dirPort, v3ident: k.v3ident, fingerprint: k.fingerprint });
    });
  const { dirAuthorityFile, networkFile } = await writeNetworkFiles(dir, dirAuthorityLines);
  const torrcNetwork = (offset: number): TorrcNetwork => ({
    dirAuthorityLines,
    resolvConfPath,
    emptyGeoipPath,
    ownerPid: process.pid,
    logLevel: opts.logLevel,
    votingStartOffsetSec: offset,
    initialVotingIntervalSec: INITIAL_VOTING_INTERVAL_SEC,
    votingIntervalSec: opts.votingIntervalSec,
    exitPolicy: opts.exitPolicy,
    consensusParams: opts.consensusParams,
    extraLines: opts.extraTorrcLines,
  });
  const onionDir = opts.onion ? join(dir, 'client', 'hidden_service') : undefined;
  const onionLogPath = join(dir, 'client', 'rend.log');
  const torrcs = new Map<string, string>();
  for (const n of nodes) {
    const torrc = buildTorrc(
      {
        nick: n.nick,
        role: n.role,
        dataDir: n.dataDir,
        relayPorts: n.role === 'client' ? undefined : portsOf(n),
        clientPorts: n.role === 'client' ? ports.client : undefined,
        onionService: n.role === 'client' && onionDir ? { dir: onionDir, virtualPort: opts.onionPort, targetPort: ports.httpPort, logPath: onionLogPath } : undefined,
      },
      torrcNetwork(0),
    );
    const problems = torrcSafetyProblems(torrc);
    if (problems.length > 0) throw new BadArgumentError(`the torrc of ${n.nick} is unsafe, refusing to start: ${problems.join('; ')}`);
    torrcs.set(n.nick, torrc);
    await writeFile(n.torrcPath, torrc);
  }
  if (opts.verifyTorrcs) {
    await allOrFail(
      network,
      nodes.map(async (n) => {
        const logPath = join(n.dataDir, 'verify.log');
        const r = await runTool(tools.tor, ['--defaults-torrc', '/dev/null', '--verify-config', '-f', n.torrcPath], { timeoutMs: TOOL_TIMEOUT_MS, signal, logPath, what: `tor --verify-config for ${n.nick}` });
        if (r.code !== 0) throw new ToolFailedError('tor --verify-config', `checking the torrc of ${n.nick}`, logPath, r.output);
      }),
    );
  }
  const prepareMs = performance.now() - network.startedAt;
  network.log(`torrcs written${opts.verifyTorrcs ? ' and verified' : ''}; prepared in ${(prepareMs / 1000).toFixed(2)}s`);

  // ---- HTTP server
  network.progress = 'starting the HTTP file server';
  network.fileServer = await startFileServer(file, ports.httpPort);

  // ---- delay forwarders: each relay's advertised ORPort → tor's real one
  if (opts.delayedLinks) {
    network.progress = 'starting the delay forwarders';
    for (const n of relayPlans) {
      const p = portsOf(n);
      const forwarder = await DelayForwarder.start({
        listenPort: p.orPort,
        targetPort: listenOrPort(p),
        delayMs: opts.latencyMs,
        rateBytesPerSec: opts.rateBytesPerSec ?? undefined,
        maxBufferedBytes: opts.linkBufferBytes,
        name: n.nick,
      });
      network.forwarders.set(n.nick, forwarder);
    }
    const rateText = opts.rateBytesPerSec === null ? 'no rate limit' : `${opts.rateBytesPerSec} bytes/s per direction per connection`;
    network.log(`delayed links: ${network.forwarders.size} forwarders, ${opts.latencyMs} ms one way, ${rateText}`);
  }

  // ---- launch authorities, relays, exits with the first vote aligned
  const launchEpoch = Date.now() / 1000;
  const offset = alignVotingOffset(launchEpoch, opts.voteLeadSec);
  const plannedValidAfter = firstAlignedSecond(launchEpoch + opts.voteLeadSec, offset);
  for (const n of relayPlans) {
    if (n.role === 'authority') await writeFile(n.torrcPath, withVotingStartOffset(torrcs.get(n.nick) ?? '', offset));
  }
  if (signal.aborted) throw abortReason(signal, network.progress);
  network.progress = 'starting tor processes';
  network.launchedAt = performance.now();
  for (const n of relayPlans) {
    if (signal.aborted) throw abortReason(signal, network.progress);
    await network.startTor(n);
  }
  network.log(`started ${relayPlans.length} tor relays (voting offset ${offset})`);

  const expected: ExpectedRelay[] = relayPlans.map((n) => ({ nick: n.nick, fingerprint: keys.get(n.nick)?.fingerprint ?? '' }));
  const authorities = relayPlans.filter((n) => n.role === 'authority');
  const nonAuthorities = relayPlans.filter((n) => n.role !== 'authority');
  const sinceLaunch = (): number => network.elapsedSinceLaunch();
  const seconds = (ms: number): string => `${(ms / 1000).toFixed(2)}s`;

  // ---- every authority holds every descriptor before it votes
  if (opts.adaptiveVote) {
    await alignFirstVote(network, {
      authorities: authorities.map((a) => ({ nick: a.nick, dirPort: portsOf(a).dirPort, controlPort: portsOf(a).controlPort, torrcPath: a.torrcPath, torrc: torrcs.get(a.nick) ?? '' })),
      expected,
      validAfter: plannedValidAfter,
      offset,
    });
  }

  // ---- first consensus, then the one listing every relay, at every authority
  let firstConsensusMs: number | undefined;
  let fullConsensusMs: number | undefined;
  const authorityLag = new Map<string, string>();
  network.progress = 'the first consensus (auth0 serves none yet)';
  while (fullConsensusMs === undefined) {
    await Promise.all(
      authorities.map(async (a) => {
        let lag: string | undefined;
        try {
          const r = await httpGetText(portsOf(a).dirPort, '/tor/status-vote/current/consensus-microdesc', { timeoutMs: HTTP_TIMEOUT_MS, signal });
          if (r.status !== 200) lag = `${a.nick} serves no consensus yet (HTTP ${r.status})`;
          else {
            firstConsensusMs ??= sinceLaunch();
            const missing = missingRelays(consensusRouters(r.body), expected);
            if (missing.length > 0) lag = `${a.nick}'s consensus lacks ${missing.join(', ')}`;
          }
        } catch (err) {
          if (signal.aborted) throw abortReason(signal, network.progress);
          lag = `${a.nick}'s DirPort does not answer (${err instanceof Error ? err.message : String(err)})`;
        }
        if (lag === undefined) authorityLag.delete(a.nick);
        else authorityLag.set(a.nick, lag);
      }),
    );
    if (authorityLag.size === 0) fullConsensusMs = sinceLaunch();
    else {
      network.progress = `a consensus listing every relay at every authority: ${[...authorityLag.values()].join('; ')}; logs in ${dir}/<node>/notice.log`;
      await sleep(POLL_MS, signal, network.progress);
    }
  }
  firstConsensusMs ??= fullConsensusMs;
  network.log(`first consensus after ${seconds(firstConsensusMs)}, consensus listing all ${expected.length} relays at every authority after ${seconds(fullConsensusMs)}`);

  // ---- every relay serves the consensus and all descriptors
  // Relays got 404s while no consensus existed and back off exponentially;
  // SIGHUP resets their download schedules so they fetch right away.
  const lastHup = new Map<string, number>();
  const hup = (n: NodePlan): void => {
    if (network.processes.get(n.nick)?.signal('SIGHUP')) lastHup.set(n.nick, performance.now());
  };
  for (const n of nonAuthorities) hup(n);
  const pending = new Map<string, string>(relayPlans.map((n) => [n.nick, 'not checked yet']));
  let lastLagReport = performance.now();
  network.progress = 'every relay to serve the consensus and descriptors';
  while (pending.size > 0) {
    await Promise.all(
      relayPlans
        .filter((n) => pending.has(n.nick))
        .map(async (n) => {
          const serves = await checkRelayServes(portsOf(n).dirPort, expected, { timeoutMs: HTTP_TIMEOUT_MS, signal });
          if (serves.ok) pending.delete(n.nick);
          else pending.set(n.nick, serves.lag);
        }),
    );
    if (pending.size === 0) break;
    network.progress = `every relay to serve the consensus and descriptors; lagging: ${[...pending].map(([nick, lag]) => `${nick} (${lag}; see ${join(dir, nick, 'notice.log')})`).join(', ')}`;
    const now = performance.now();
    if (now - lastLagReport > LAG_REPORT_MS) {
      lastLagReport = now;
      network.log(`waiting for ${[...pending].map(([nick, lag]) => `${nick} (${lag})`).join(', ')}`);
    }
    for (const n of nonAuthorities) {
      if (pending.has(n.nick) && now - (lastHup.get(n.nick) ?? 0) > REHUP_AFTER_MS) {
        hup(n);
        network.log(`SIGHUP to ${n.nick} again (still lagging: ${pending.get(n.nick) ?? ''})`);
      }
    }
    await sleep(POLL_MS, signal, network.progress);
  }
  const settledMs = sinceLaunch();
  network.log(`network settled after ${seconds(settledMs)}: every relay serves the consensus and all descriptors`);

  // ---- client
  let clientBootstrappedMs: number | null = null;
  const clientPlan = nodes.find((n) => n.role === 'client');
  if (clientPlan) {
    network.progress = 'starting the client';
    await network.startTor(clientPlan);
    network.progress = 'the client to bootstrap';
    for (;;) {
      let notice = '';
      try {
        notice = await readFile(clientPlan.logPath, 'utf8');
      } catch {
        // not created yet
      }
      if (/Bootstrapped 100%/.test(notice)) break;
      const lastBootstrap = [...notice.matchAll(/Bootstrapped \d+%[^\n]*/g)].pop()?.[0];
      network.progress = `the client to bootstrap (last: ${lastBootstrap ?? 'nothing yet'}; see ${clientPlan.logPath})`;
      await sleep(100, signal, network.progress);
    }
    clientBootstrappedMs = sinceLaunch();
    network.log(`client bootstrapped after ${seconds(clientBootstrappedMs)}`);
  }

  // ---- the onion service's descriptor is out
  let onion: OnionServiceDescription | null = null;
  if (onionDir && clientPlan) {
    network.progress = `the onion service to upload its descriptor (nothing in ${onionLogPath} yet)`;
    for (;;) {
      const state = onionUploadState(readOrEmpty(onionLogPath));
      const address = await readOnionHostname(onionDir);
      if (address && onionPublished(state)) {
        const publishedMs = sinceLaunch();
        onion = { address, port: opts.onionPort, nick: clientPlan.nick, hiddenServiceDir: onionDir, logPath: onionLogPath, uploads: state.accepted, publishedMs: Math.round(publishedMs) };
        network.log(`onion service ${address}:${opts.onionPort} published after ${seconds(publishedMs)} (${state.accepted} uploads accepted; current ${state.initiated.current}, next ${state.initiated.next})`);
        break;
      }
      const counts = `${state.initiated.current} current and ${state.initiated.next} next uploads started, ${state.answered} answered, ${state.accepted} accepted`;
      network.progress = `the onion service to upload its descriptor (${address ? address : 'no hostname yet'}; ${counts}; last: ${state.lastLine ?? 'nothing yet'}; see ${onionLogPath})`;
      await sleep(POLL_MS, signal, network.progress);
    }
  }

  // ---- describe
  const totalMs = performance.now() - network.startedAt;
  const timings: BootTimings = {
    prepareMs: Math.round(prepareMs),
    firstConsensusMs: Math.round(firstConsensusMs),
    fullConsensusMs: Math.round(fullConsensusMs),
    settledMs: Math.round(settledMs),
    clientBootstrappedMs: clientBootstrappedMs === null ? null : Math.round(clientBootstrappedMs),
    totalMs: Math.round(totalMs),
    keysFromCache,
  };
  const describedNodes: NodeDescription[] = nodes.map((n) => {
    const proc = network.processes.get(n.nick);
    if (!proc) throw new InternalError(`${n.nick} was not started`);
    const common = { nick: n.nick, pid: proc.pid, dataDir: n.dataDir, torrcPath: n.torrcPath, logPath: n.logPath, detailLogPath: n.detailLogPath };
    if (n.role === 'client') {
      if (!ports.client) throw new InternalError('client without ports');
      return { ...common, role: 'client', controlPort: ports.client.controlPort, socksPort: ports.client.socksPort, orPort: null, realOrPort: null, dirPort: null, fingerprint: null, ed25519: null, v3ident: null };
    }
    const k = keys.get(n.nick);
    if (!k) throw new InternalError(`${n.nick} has no keys`);
    const p = portsOf(n);
    const relay: RelayNodeDescription = { ...common, role: n.role, controlPort: p.controlPort, orPort: p.orPort, realOrPort: listenOrPort(p), dirPort: p.dirPort, fingerprint: k.fingerprint, ed25519: k.ed25519, v3ident: k.v3ident ?? null, socksPort: null };
    return relay;
  });
  const jsonPath = join(dir, 'network.json');
  const description: TestnetDescription = {
    format: DESCRIPTION_FORMAT,
    dir,
    jsonPath,
    createdAt: new Date().toISOString(),
    torVersion,
    netns,
    ownerPid: process.pid,
    basePort: ports.basePort,
    latencyMs: opts.latencyMs,
    rateBytesPerSec: opts.rateBytesPerSec,
    nodes: describedNodes,
    http: { url: `http://127.0.0.1:${ports.httpPort}/file`, port: ports.httpPort, fileBytes: file.bytes, fileSha256: file.sha256 },
    dirAuthorityLines,
    dirAuthorityFile,
    networkFile,
    socksPort: ports.client?.socksPort ?? null,
    onion,
    timings,
  };
  await writeFile(jsonPath, JSON.stringify(description, null, 2) + '\n');
  network.log(`ready in ${seconds(totalMs)} (prepare ${seconds(prepareMs)}, settled ${seconds(settledMs)} after launch); description in ${jsonPath}`);
  return description;
}
