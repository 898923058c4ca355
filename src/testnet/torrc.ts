/**
 * testnet/torrc — the torrc text of each node, and a safety check of any torrc.
 *
 * `buildTorrc()` is a pure function of the node and the network: every torrc
 * gets `TestingTorNetwork 1`, the network's own `DirAuthority` lines,
 * `UseDefaultFallbackDirs 0`, and listeners on 127.0.0.1 only (with delayed
 * links a relay advertises the forwarder's ORPort, `NoListen`, and listens on its
 * real one, `NoAdvertise`); authorities get
 * the fast voting schedule (5 s initial rounds, aligned by
 * `TestingV3AuthVotingStartOffset`), exits a policy accepting 127.0.0.0/8, the client
 * optionally a v3 onion service in front of a loopback port (with a rend-domain info log).
 * `networkTorrc()` is the network's own file (authorities only) for clients.
 * `torrcSafetyProblems()` re-reads a torrc (or a tor command line turned into
 * torrc lines) and lists anything that could let tor leave loopback; the
 * launcher refuses to start tor when it finds one. No I/O here.
 */
import { InternalError } from '../errors.js';
import type { NodeRole, RelayPorts } from './ports.js';

/** The exit's info log of the circ domain, in its data directory. */
export const EXIT_CIRC_LOG = 'circ.log';

export type LogLevel = 'notice' | 'info' | 'debug';
/** 'wide': accept 127.0.0.0/8 and then *:* (needed for microdesc clients to pick the exit); 'loopback': 127.0.0.0/8 only. */
export type ExitPolicyKind = 'wide' | 'loopback';

/** The loopback port every exit's policy rejects (END EXITPOLICY in tests). */
export const EXIT_REJECTED_PORT = 1;

export interface TorrcNode {
  readonly nick: string;
  readonly role: NodeRole;
  readonly dataDir: string;
  /** Relay listeners (authorities, relays, exits). */
  readonly relayPorts?: RelayPorts;
  /** Client listeners. */
  readonly clientPorts?: { readonly socksPort: number; readonly controlPort: number };
  /** Client only: also run a v3 onion service (HiddenServiceDir/HiddenServicePort) in front of a loopback port. */
  readonly onionService?: OnionServiceConfig;
}

/** The test network's onion service, run by its client node. */
export interface OnionServiceConfig {
  /** HiddenServiceDir (tor creates it, mode 0700, and writes `hostname` there). */
  readonly dir: string;
  /** The onion service's virtual port (what a client asks for in BEGIN). */
  readonly virtualPort: number;
  /** Where tor forwards its streams: 127.0.0.1:targetPort (the HTTP file server). */
  readonly targetPort: number;
  /** Log file for the rend domain at info level (the descriptor upload lines; see testnet.ts). */
  readonly logPath: string;
}

/**
 * The public network's data-path consensus parameters, so relays here schedule and
 * run congestion control as the public network's do (tor's defaults differ: KIST runs
 * every 10 ms, not 3). Taken from the public consensus of 2026-01-17 13:00 UTC
 * ("params" line). Left out: the DoS*, dos_* and overload_* defences (every client
 * here is 127.0.0.1, so they would throttle the tests), the guard, HS and conflux
 * knobs, and bwauth/sbws ones.
 */
export const PUBLIC_DATA_PATH_PARAMS = [
  'CircuitPriorityHalflifeMsec=30000',
  'KISTSchedRunInterval=3',
  'UseOptimisticData=1',
  'cc_alg=2',
  'cc_cwnd_full_gap=4',
  'cc_cwnd_full_minpct=25',
  'cc_cwnd_inc=1',
  'cc_cwnd_inc_rate=31',
  'cc_cwnd_min=124',
  'cc_sscap_exit=600',
  'cc_sscap_onion=475',
  'cc_vegas_alpha_exit=186',
  'cc_vegas_beta_onion=372',
  'cc_vegas_delta_exit=310',
  'cc_vegas_delta_onion=434',
  'cc_vegas_gamma_onion=248',
  'circ_max_cell_queue_size=1250',
  'circ_max_cell_queue_size_out=1000',
  'sendme_accept_min_version=1',
].join(' ');

export interface TorrcNetwork {
  readonly dirAuthorityLines: readonly string[];
  readonly resolvConfPath: string;
  /** An empty file: parsing tor's real GeoIP files costs ~0.3 s of CPU per node. */
  readonly emptyGeoipPath: string;
  /** tor exits by itself when this process goes away (`__OwningControllerProcess`). */
  readonly ownerPid: number;
  readonly logLevel: LogLevel;
  /** TestingV3AuthVotingStartOffset, 0..initialVotingIntervalSec-1. */
  readonly votingStartOffsetSec: number;
  readonly initialVotingIntervalSec: number;
  /** V3AuthVotingInterval once the first consensus exists (tor's minimum in a test network is 10). */
  readonly votingIntervalSec: number;
  readonly exitPolicy: ExitPolicyKind;
  /** The authorities' ConsensusParams ("k=v k=v"); absent or empty: none (every relay uses tor's defaults). */
  readonly consensusParams?: string;
  /** Appended to every torrc (checked like the rest). */
  readonly extraLines?: readonly string[];
}

export interface DirAuthorityEntry {
  readonly nick: string;
  readonly orPort: number;
  readonly dirPort: number;
  /** v3 authority identity (from tor-gencert's certificate), 40 hex. */
  readonly v3ident: string;
  /** RSA identity fingerprint, 40 hex. */
  readonly fingerprint: string;
}

export function dirAuthorityLine(entry: DirAuthorityEntry): string {
  return `DirAuthority ${entry.nick} orport=${entry.orPort} no-v2 v3ident=${entry.v3ident} 127.0.0.1:${entry.dirPort} ${entry.fingerprint}`;
}

/**
 * The network file of a test network (`network.torrc`): `TestingTorNetwork 1`,
 * `UseDefaultFallbackDirs 0` and its DirAuthority lines — what
 * `Network.fromTorrc` (src/dir/network.ts) and `--network FILE` read. It passes
 * `torrcSafetyProblems` too.
 */
export function networkTorrc(dirAuthorityLines: readonly string[], dir: string): string {
  return [`# The orport test network in ${dir} (torrc syntax: orport's --network FILE, or a tor torrc)`, 'TestingTorNetwork 1', 'UseDefaultFallbackDirs 0', ...dirAuthorityLines].join('\n') + '\n';
}

/** Stands in for the real DirAuthority lines while keys are generated (no tor connects to it). */
export const PLACEHOLDER_DIR_AUTHORITY = 'keygen orport=1 no-v2 127.0.0.1:1 0000000000000000000000000000000000000000';

export function buildTorrc(node: TorrcNode, net: TorrcNetwork): string {
  const d = node.dataDir;
  const lines: string[] = [
    `# ${node.nick} (${node.role}) — written by orport's testnet launcher`,
    '# ---- private network: never leaves 127.0.0.1 ----',
    'TestingTorNetwork 1',
    'UseDefaultFallbackDirs 0',
    ...net.dirAuthorityLines,
    `DataDirectory ${d}`,
    `Nickname ${node.nick}`,
    'RunAsDaemon 0',
    `PidFile ${d}/pid`,
    'ShutdownWaitLength 0',
    'CookieAuthentication 0',
    `__OwningControllerProcess ${net.ownerPid}`,
    `Log notice file ${d}/notice.log`,
  ];
  if (net.logLevel !== 'notice') lines.push(`Log ${net.logLevel} file ${d}/${net.logLevel}.log`);
  lines.push(
    'SafeLogging 0',
    'LogTimeGranularity 1',
    'ProtocolWarnings 1',
    'Sandbox 0',
    'ClientUseIPv6 0',
    `GeoIPFile ${net.emptyGeoipPath}`,
    `GeoIPv6File ${net.emptyGeoipPath}`,
    '# ---- fast bootstrap (as in chutney) ----',
    'PathsNeededToBuildCircuits 0.67',
    'TestingDirAuthVoteExit *',
    'TestingDirAuthVoteGuard *',
    'TestingDirAuthVoteHSDir *',
    'TestingMinExitFlagThreshold 0',
    'V3AuthNIntervalsValid 2',
    'AssumeReachable 1',
  );
  if (node.role !== 'client') {
    const p = node.relayPorts;
    if (!p) throw new InternalError(`relay node ${node.nick} has no ports`);
    lines.push(
      '# ---- relay ----',
      ...(p.realOrPort === undefined
        ? [`ORPort 127.0.0.1:${p.orPort}`]
        : [`ORPort 127.0.0.1:${p.orPort} NoListen`, `ORPort 127.0.0.1:${p.realOrPort} NoAdvertise`]),
      `DirPort 127.0.0.1:${p.dirPort}`,
      `ControlPort 127.0.0.1:${p.controlPort}`,
      'SocksPort 0',
      'Address 127.0.0.1',
      'AddressDisableIPv6 1',
      `ContactInfo ${node.nick}@testnet.invalid`,
      `ServerDNSResolvConfFile ${net.resolvConfPath}`,
      'ServerDNSDetectHijacking 0',
      'ServerDNSAllowBrokenConfig 1',
    );
  }
  switch (node.role) {
    case 'authority':
      lines.push(
        '# ---- directory authority ----',
        'AuthoritativeDirectory 1',
        'V3AuthoritativeDirectory 1',
        'ExitRelay 0',
        `TestingV3AuthInitialVotingInterval ${net.initialVotingIntervalSec}`,
        `TestingV3AuthVotingStartOffset ${net.votingStartOffsetSec}`,
        'TestingV3AuthInitialVoteDelay 2',
        'TestingV3AuthInitialDistDelay 2',
        `V3AuthVotingInterval ${net.votingIntervalSec}`,
        'V3AuthVoteDelay 2',
        'V3AuthDistDelay 2',
        ...(net.consensusParams ? [`ConsensusParams "${net.consensusParams}"`] : []),
      );
      break;
    case 'relay':
      lines.push('ExitRelay 0');
      break;
    case 'exit':
      lines.push(
        '# ---- exit ----',
        'ExitRelay 1',
        'IPv6Exit 0',
        'ExitPolicyRejectPrivate 0',
        'ExitPolicyRejectLocalInterfaces 0',
        // One loopback port refused by policy, so tests see END EXITPOLICY without leaving loopback.
        `ExitPolicy reject 127.0.0.0/8:${EXIT_REJECTED_PORT}`,
        // Congestion control's Vegas updates ("CC: TOR_VEGAS RTT: …, CWND: …") are info, domain
        // circ: the exit's own record that a circuit negotiated it (tests read it).
        `Log [circ]info file ${d}/${EXIT_CIRC_LOG}`,
        'ExitPolicy accept 127.0.0.0/8:*',
      );
      // Without "accept *:*" the microdescriptor policy summary is "reject 1-65535"
      // and microdescriptor clients never choose this exit. Nothing but lo exists here.
      if (net.exitPolicy === 'wide') lines.push('ExitPolicy accept *:*');
      lines.push('ExitPolicy reject *:*');
      break;
    case 'client': {
      const p = node.clientPorts;
      if (!p) throw new InternalError('the client has no ports');
      lines.push('# ---- client ----', 'ClientOnly 1', `SocksPort 127.0.0.1:${p.socksPort}`, `ControlPort 127.0.0.1:${p.controlPort}`);
      const hs = node.onionService;
      if (hs) {
        lines.push(
          '# ---- onion service (v3, three-hop circuits: HiddenServiceSingleHopMode stays 0) ----',
          `HiddenServiceDir ${hs.dir}`,
          'HiddenServiceVersion 3',
          `HiddenServicePort ${hs.virtualPort} 127.0.0.1:${hs.targetPort}`,
          // tor logs "Uploading hidden service descriptor: finished with status 200" at info, domain rend.
          `Log [rend]info file ${hs.logPath}`,
        );
      }
      break;
    }
    default:
      return node.role satisfies never;
  }
  if (net.extraLines && net.extraLines.length > 0) lines.push('# ---- extra ----', ...net.extraLines);
  return lines.join('\n') + '\n';
}

/** Replaces the voting start offset in an authority's torrc (set just before launch). */
export function withVotingStartOffset(torrc: string, offsetSec: number): string {
  return torrc.replace(/^TestingV3AuthVotingStartOffset \d+$/m, `TestingV3AuthVotingStartOffset ${offsetSec}`);
}

/** Turns a tor command line (`--Key value …`) into torrc lines, for the safety check. */
export function commandLineAsTorrc(args: readonly string[]): string {
  const lines: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? '';
    if (!arg.startsWith('--')) continue;
    const next = args[i + 1];
    if (next !== undefined && !next.startsWith('--')) {
      lines.push(`${arg.slice(2)} ${next}`);
      i++;
    } else {
      lines.push(arg.slice(2));
    }
  }
  return lines.join('\n');
}

const PORT_OPTIONS = /^(ORPort|DirPort|ControlPort|SocksPort|TransPort|NATDPort|DNSPort|HTTPTunnelPort|MetricsPort|ExtORPort)$/i;
const FORBIDDEN_OPTIONS = /^(FallbackDir|AlternateDirAuthority|AlternateBridgeAuthority|Bridge|UseBridges|ClientTransportPlugin|ServerTransportPlugin|Socks4Proxy|Socks5Proxy|HTTPSProxy|HTTPProxy|TCPProxy)$/i;

/**
 * Lists what in a torrc could let tor reach beyond 127.0.0.1: a missing
 * `TestingTorNetwork 1` or `UseDefaultFallbackDirs 0`, no or non-loopback
 * DirAuthority lines, fallback/bridge/proxy options, listeners or addresses
 * off 127.0.0.1. An empty list means safe.
 */
export function torrcSafetyProblems(torrc: string): string[] {
  const problems: string[] = [];
  let testingNetwork = false;
  let noFallbackDirs = false;
  let dirAuthorities = 0;
  for (const raw of torrc.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const space = line.search(/\s/);
    const key = space < 0 ? line : line.slice(0, space);
    const value = space < 0 ? '' : line.slice(space).trim();
    if (/^TestingTorNetwork$/i.test(key)) testingNetwork = value === '1';
    else if (/^UseDefaultFallbackDirs$/i.test(key)) noFallbackDirs = value === '0';
    else if (/^DirAuthority$/i.test(key)) {
      dirAuthorities++;
      const addresses = value.split(/\s+/).filter((word) => /^\d+\.\d+\.\d+\.\d+:\d+$/.test(word) || word.startsWith('['));
      if (addresses.length !== 1 || !addresses[0]?.startsWith('127.0.0.1:')) problems.push(`DirAuthority not on 127.0.0.1: ${line}`);
      if (/\bipv6=/.test(value)) problems.push(`DirAuthority with an IPv6 address: ${line}`);
    } else if (FORBIDDEN_OPTIONS.test(key)) {
      problems.push(`forbidden option ${key}: ${line}`);
    } else if (PORT_OPTIONS.test(key)) {
      const target = value.split(/\s+/)[0] ?? '';
      if (target !== '0' && !/^127\.0\.0\.1:\d+$/.test(target)) problems.push(`${key} must be 0 or 127.0.0.1:<port>: ${line}`);
    } else if (/^HiddenServicePort$/i.test(key)) {
      const target = value.split(/\s+/)[1];
      if (target !== undefined && !/^127\.0\.0\.1:\d+$/.test(target)) problems.push(`HiddenServicePort must target 127.0.0.1:<port>: ${line}`);
    } else if (/^(HiddenServiceSingleHopMode|HiddenServiceNonAnonymousMode)$/i.test(key)) {
      if (value !== '0') problems.push(`${key} must stay 0 (relays refuse one-hop onion circuits): ${line}`);
    } else if (/^(Address|OutboundBindAddress|OutboundBindAddressOR|OutboundBindAddressExit)$/i.test(key)) {
      if (value !== '127.0.0.1') problems.push(`${key} must be 127.0.0.1: ${line}`);
    }
  }
  if (!testingNetwork) problems.push('TestingTorNetwork 1 is missing');
  if (!noFallbackDirs) problems.push('UseDefaultFallbackDirs 0 is missing');
  if (dirAuthorities === 0) problems.push('no DirAuthority lines (tor would use the public authorities)');
  return problems;
}
