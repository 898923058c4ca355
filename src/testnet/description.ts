/**
 * testnet/description — the JSON that describes a running test network.
 *
 * Written by the launcher to `<dir>/network.json` once the network has
 * settled, and read back by tests, benchmarks and commands run under
 * `orport testnet` (path in ORPORT_TESTNET_JSON). `parseTestnetDescription()`
 * checks the shape so a reader fails with a clear message instead of using an
 * undefined port. Descriptions written before delayed links existed read as
 * latency 0, no rate, and `realOrPort` = `orPort`; before onion services, as `onion: null`. Only types and pure functions here.
 */
import { BadArgumentError } from '../errors.js';
import type { NodeRole, RelayRole } from './ports.js';

export const DESCRIPTION_FORMAT = 'orport-testnet/1';

interface NodeCommon {
  readonly nick: string;
  readonly pid: number;
  readonly dataDir: string;
  readonly torrcPath: string;
  /** The notice-level log. */
  readonly logPath: string;
  /** The info- or debug-level log when one is kept. */
  readonly detailLogPath: string | null;
  readonly controlPort: number;
}

export interface RelayNodeDescription extends NodeCommon {
  readonly role: RelayRole;
  /** The ORPort in the relay's descriptor and the consensus: what clients and relays connect to (with latency: the delay forwarder). */
  readonly orPort: number;
  /** Where tor itself listens (`ORPort … NoAdvertise`); equal to orPort without delayed links. */
  readonly realOrPort: number;
  readonly dirPort: number;
  /** RSA identity fingerprint, 40 upper-case hex digits. */
  readonly fingerprint: string;
  /** Ed25519 identity, unpadded base64 (as in tor's fingerprint-ed25519 file). */
  readonly ed25519: string;
  /** v3 authority identity (authorities only). */
  readonly v3ident: string | null;
  readonly socksPort: null;
}

export interface ClientNodeDescription extends NodeCommon {
  readonly role: 'client';
  readonly orPort: null;
  readonly realOrPort: null;
  readonly dirPort: null;
  readonly fingerprint: null;
  readonly ed25519: null;
  readonly v3ident: null;
  readonly socksPort: number;
}

export type NodeDescription = RelayNodeDescription | ClientNodeDescription;

export interface BootTimings {
  /** Keys, torrcs, their verification and the test file, before any tor started. */
  readonly prepareMs: number;
  /** From launching tor to the first consensus at auth0 / the one listing every relay. */
  readonly firstConsensusMs: number;
  readonly fullConsensusMs: number;
  /** From launch until every relay serves the consensus and all descriptors. */
  readonly settledMs: number;
  /** From launch until the client reported "Bootstrapped 100%" (null without a client). */
  readonly clientBootstrappedMs: number | null;
  /** From the start of startTestnet() to the network being ready. */
  readonly totalMs: number;
  readonly keysFromCache: boolean;
}

export interface TestnetDescription {
  readonly format: typeof DESCRIPTION_FORMAT;
  readonly dir: string;
  readonly jsonPath: string;
  readonly createdAt: string;
  readonly torVersion: string;
  /** The network namespace the network lives in (e.g. `net:[4026532176]`). */
  readonly netns: string;
  /** The process that owns the network (it serves the HTTP file and stops the nodes). */
  readonly ownerPid: number;
  readonly basePort: number;
  /**
   * One-way delay on every TCP link to a relay's ORPort (client to relay and relay to
   * relay), by the launcher's forwarders; 0: no forwarders. DirPorts are not delayed.
   */
  readonly latencyMs: number;
  /** The forwarders' rate limit per direction per connection, bytes/s; null: none. */
  readonly rateBytesPerSec: number | null;
  readonly nodes: readonly NodeDescription[];
  readonly http: {
    readonly url: string;
    readonly port: number;
    readonly fileBytes: number;
    readonly fileSha256: string;
  };
  /** The network's `DirAuthority …` torrc lines (verify consensus signatures against these). */
  readonly dirAuthorityLines: readonly string[];
  /** A torrc-style file holding exactly those lines. */
  readonly dirAuthorityFile: string;
  /** The network file (`network.torrc`: TestingTorNetwork 1, UseDefaultFallbackDirs 0, the DirAuthority lines) for `Network.fromFile` / `--network`. */
  readonly networkFile: string;
  readonly socksPort: number | null;
  /** The onion service (`onion: true`), once it has uploaded its descriptor; null without one. */
  readonly onion: OnionServiceDescription | null;
  readonly timings: BootTimings;
}

/** The network's v3 onion service, run by the client node in front of the HTTP file server. */
export interface OnionServiceDescription {
  /** `<56 base32 chars>.onion`, from tor's `hostname` file. */
  readonly address: string;
  /** The virtual port (HiddenServicePort); streams go to the HTTP file server. */
  readonly port: number;
  /** The node that runs it. */
  readonly nick: string;
  readonly hiddenServiceDir: string;
  /** The rend-domain info log with the upload lines. */
  readonly logPath: string;
  /** Descriptor uploads answered 200 when the launcher stopped waiting. */
  readonly uploads: number;
  /** From launch to the first accepted descriptor upload. */
  readonly publishedMs: number;
}

const HEX40 = /^[0-9A-F]{40}$/;
const ED25519_B64 = /^[A-Za-z0-9+/]{43}$/;

/** Parses and checks a description; throws BadArgumentError naming the first bad field. */
export function parseTestnetDescription(json: string, source = 'testnet description'): TestnetDescription {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (err) {
    throw new BadArgumentError(`${source} is not JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  const bad = (field: string, why: string): never => {
    throw new BadArgumentError(`${source}: ${field} ${why}`);
  };
  if (!isRecord(value)) return bad('(top level)', 'is not an object');
  if (value.format !== DESCRIPTION_FORMAT) bad('format', `is ${JSON.stringify(value.format)}, expected ${DESCRIPTION_FORMAT}`);
  for (const field of ['dir', 'jsonPath', 'torVersion', 'dirAuthorityFile', 'networkFile'] as const) {
    if (typeof value[field] !== 'string') bad(field, 'is not a string');
  }
  if (!Array.isArray(value.nodes) || value.nodes.length === 0) return bad('nodes', 'is not a non-empty array');
  value.nodes.forEach((node: unknown, i: number) => {
    const at = `nodes[${i}]`;
    if (!isRecord(node)) return bad(at, 'is not an object');
    if (typeof node.nick !== 'string') bad(`${at}.nick`, 'is not a string');
    if (!isPort(node.controlPort)) bad(`${at}.controlPort`, 'is not a port');
    if (!Number.isInteger(node.pid)) bad(`${at}.pid`, 'is not an integer');
    if (node.role === 'client') {
      if (!isPort(node.socksPort)) bad(`${at}.socksPort`, 'is not a port');
      return undefined;
    }
    if (node.role !== 'authority' && node.role !== 'relay' && node.role !== 'exit') return bad(`${at}.role`, `is ${JSON.stringify(node.role)}`);
    if (!isPort(node.orPort)) bad(`${at}.orPort`, 'is not a port');
    if (node.realOrPort !== undefined && !isPort(node.realOrPort)) bad(`${at}.realOrPort`, 'is not a port');
    if (!isPort(node.dirPort)) bad(`${at}.dirPort`, 'is not a port');
    if (typeof node.fingerprint !== 'string' || !HEX40.test(node.fingerprint)) bad(`${at}.fingerprint`, 'is not 40 upper-case hex digits');
    if (typeof node.ed25519 !== 'string' || !ED25519_B64.test(node.ed25519)) bad(`${at}.ed25519`, 'is not 43 characters of base64');
    return undefined;
  });
  if (!Array.isArray(value.dirAuthorityLines) || !value.dirAuthorityLines.every((l: unknown) => typeof l === 'string' && l.startsWith('DirAuthority '))) {
    bad('dirAuthorityLines', 'is not a list of DirAuthority lines');
  }
  const http = value.http;
  if (!isRecord(http) || typeof http.url !== 'string' || typeof http.fileSha256 !== 'string' || !Number.isInteger(http.fileBytes)) bad('http', 'lacks url, fileSha256 or fileBytes');
  if (!isRecord(value.timings)) bad('timings', 'is not an object');
  if (value.latencyMs !== undefined && !(typeof value.latencyMs === 'number' && value.latencyMs >= 0)) bad('latencyMs', 'is not a number ≥ 0');
  if (value.rateBytesPerSec !== undefined && value.rateBytesPerSec !== null && !(typeof value.rateBytesPerSec === 'number' && value.rateBytesPerSec > 0)) {
    bad('rateBytesPerSec', 'is neither null nor a positive number');
  }
  const onion = value.onion;
  if (onion !== undefined && onion !== null) {
    if (!isRecord(onion) || typeof onion.address !== 'string' || !/^[a-z2-7]{56}\.onion$/.test(onion.address)) bad('onion.address', 'is not a v3 .onion address');
    if (!isPort((onion as Record<string, unknown>).port)) bad('onion.port', 'is not a port');
  }
  const nodes = (value.nodes as Record<string, unknown>[]).map((node) => ({ ...node, realOrPort: node.realOrPort ?? (node.role === 'client' ? null : node.orPort) }));
  return { ...value, latencyMs: value.latencyMs ?? 0, rateBytesPerSec: value.rateBytesPerSec ?? null, onion: value.onion ?? null, nodes } as unknown as TestnetDescription;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isPort(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value > 0 && value < 65536;
}

/** Relay nodes (authorities, relays, exits) of a description. */
export function relayNodes(description: TestnetDescription): RelayNodeDescription[] {
  return description.nodes.filter((n): n is RelayNodeDescription => n.role !== 'client');
}

/** Nodes of one role. */
export function nodesWithRole(description: TestnetDescription, role: 'client'): ClientNodeDescription[];
export function nodesWithRole(description: TestnetDescription, role: RelayRole): RelayNodeDescription[];
export function nodesWithRole(description: TestnetDescription, role: NodeRole): NodeDescription[] {
  return description.nodes.filter((n) => n.role === role);
}
