/**
 * testnet — a private Tor network on 127.0.0.1 for tests, benchmarks and demos.
 *
 * The public surface of src/testnet: `startTestnet()` and the `Testnet` it
 * resolves to, the isolation helpers every caller needs before starting tor
 * (`ensureIsolated`, `checkIsolation`), the JSON description types and their
 * parser, the log scan, and the typed errors. See testnet.ts for the boot
 * sequence and isolation.ts for the namespace rules.
 */
export {
  startTestnet,
  Testnet,
  alignVotingOffset,
  AUTHORITY_COUNT,
  DEFAULT_EXITS,
  DEFAULT_FILE_BYTES,
  DEFAULT_RELAYS,
  DEFAULT_ONION_PORT,
  DEFAULT_ONION_TIMEOUT_MS,
  DEFAULT_TIMEOUT_MS,
  DIR_MARKER,
  DIR_PREFIX,
  resolveConsensusParams,
  type LinkStats,
  type StartedNode,
  type StopReport,
  type TestnetOptions,
} from './testnet.js';
export {
  assertIsolated,
  bringLoopbackUp,
  checkIsolation,
  ensureIsolated,
  findExecutable,
  reexecInNamespace,
  signalExitCode,
  type EnsureIsolatedOptions,
  type EnsureIsolatedOutcome,
  type IsolationStatus,
} from './isolation.js';
export {
  DESCRIPTION_FORMAT,
  nodesWithRole,
  parseTestnetDescription,
  relayNodes,
  type BootTimings,
  type ClientNodeDescription,
  type NodeDescription,
  type OnionServiceDescription,
  type RelayNodeDescription,
  type TestnetDescription,
} from './description.js';
export { findNonLoopbackAddresses, formatFindings, scanLogsForNonLoopback, type AddressFinding } from './logscan.js';
export { DEFAULT_KEY_CACHE_DIR } from './keys.js';
export { DEFAULT_BASE_PORT, type NodeRole, type RelayRole } from './ports.js';
export type { ExitPolicyKind, LogLevel } from './torrc.js';
export { EXIT_REJECTED_PORT, PUBLIC_DATA_PATH_PARAMS } from './torrc.js';
export { IsolationError, NodeDiedError, PortInUseError, ToolFailedError } from './errors.js';
export { torProcessesUnder } from './procscan.js';
export { DelayForwarder, DelayLine, DEFAULT_MAX_BUFFERED_BYTES, type DelayForwarderOptions, type DelayForwarderStats, type DelayLineOptions } from './delay.js';
export { onionPublished, onionUploadState, readOnionHostname, type OnionUploadState } from './onion.js';
