/**
 * orport — speak Tor's relay protocol directly to a relay's ORPort.
 *
 * The public entry: the datatype and cell layers (Stem's `stem.client.datatype` and
 * `stem.client.cell`, also their own entries `orport/datatype` and `orport/cell`), relay
 * message bodies, the client (`Relay`, `RelayCircuit`), directory documents, and the
 * error hierarchy.
 */
export * from './errors.js';
export * from './datatype.js';
export * from './cell.js';
export * from './codec/relaymsg.js';
export { CellDecoder, MAX_CELL_LEN } from './codec/framing.js';
export { Reader, Writer, toHex, fromHex, bytesEqual, concatBytes } from './codec/bytes.js';
export { Relay, type ConnectOptions, DEFAULT_CONNECT_TIMEOUT_MS } from './client/relay.js';
export {
  RelayCircuit,
  type CreateCircuitOptions,
  type DirectoryOptions,
  type DirectoryStreamOptions,
  DEFAULT_CREATE_TIMEOUT_MS,
  DEFAULT_DIRECTORY_TIMEOUT_MS,
  DEFAULT_MAX_RESPONSE_BYTES,
} from './client/circuit.js';
export type { WaitOptions } from './client/wait.js';
export {
  verifyCertsCell,
  identityMismatch,
  listCertificates,
  rsaFingerprint,
  CERT_NAMES,
  VERIFY_BY_DEFAULT,
  type RelayIdentity,
  type VerifiedChain,
  type ChainEntry,
  type CertCheck,
  type CertSummary,
  type VerifyOptions,
} from './crypto/certs.js';
export { Ed25519Cert, RsaCrossCert, type Ed25519CertFields, type Ed25519CertExtension } from './crypto/ed25519cert.js';
export { parseHttpResponse, type HttpResponse } from './dir/http.js';
export { parseConsensus, parseServerDescriptors, type Consensus, type RouterStatus, type ServerDescriptor } from './dir/documents.js';
export {
  parseConsensusDocument,
  parseProtocols,
  type Consensus as ConsensusDocument,
  type MicrodescConsensus,
  type RouterEntry,
  type DirSourceEntry,
  type ConsensusSignature,
  type ParseConsensusOptions,
} from './dir/consensus.js';
export { parseAuthorityCerts, verifyAuthorityCert, verifyAuthorityCerts, type AuthorityCert } from './dir/authcert.js';
export { parseMicrodescs, type Microdesc } from './dir/microdesc.js';
export { verifyConsensus, verifyMicrodescs, type AuthorityList, type VerifyOptions as ConsensusVerifyOptions, type VerifiedConsensus, type SignatureCheck } from './dir/verify.js';
export { Network, TorrcError, type DirAuthority, type FallbackDir, type NetworkRules, type DirectorySource } from './dir/network.js';
export {
  TorClient,
  refreshTimeFor,
  DEFAULT_BOOTSTRAP_TIMEOUT_MS,
  DEFAULT_CLOCK_TOLERANCE_MS,
  type TorClientOptions,
  type TorClientStats,
  type ConsensusView,
  type RelayInfo,
  type BootstrapProgress,
  type BootstrapStep,
} from './client/torclient.js';
export { DirectoryClient, type DirSource, type DirFetchResult, type DirClientOptions, type FetchAnyOptions, type DirStats } from './client/dirclient.js';
export { DirCache, CACHE_FILES } from './client/dircache.js';
export { defaultHandshake, linkSpecifiersFor, type CircuitTarget, type HandshakeKind } from './client/handshakes.js';
export type { ExtendOptions } from './client/circuit.js';
export { selectPath, selectRelays, policyAllows, sameFamily, positionWeight, LONG_LIVED_PORTS, type Path, type PathRelay, type PathRules, type PathOptions, type Position } from './path/select.js';
export type { BuildCircuitOptions, BuildConfluxOptions } from './client/torclient.js';
export { TorCircuit, type CircuitHop } from './client/torcircuit.js';
export { ConfluxCircuit, DEFAULT_LINK_TIMEOUT_MS, type ConfluxLinkOptions } from './client/conflux.js';
export { GuardSet, guardParams, type GuardState, type GuardRecord } from './path/guards.js';
export { ChannelManager } from './client/channels.js';
export { TorStream, type TorStreamOptions } from './client/stream.js';
export type { OpenStreamOptions } from './client/circuit.js';
export { MAX_CIRCUIT_DIRTINESS_MS, DEFAULT_TOR_CONNECT_TIMEOUT_MS, type TorConnectOptions } from './client/exitpool.js';
export type { StreamConnector, StreamConnectOptions, ConnectedStream } from './adapters/connector.js';
export { listenSocks, type SocksServer, type SocksServerOptions, type SocksStreamInfo } from './adapters/socksserver.js';
export { parseOnionAddress, encodeOnionAddress, isOnionHostname, type OnionAddress } from './onion/address.js';
export { fetchOnionDescriptor, clearOnionDescriptorCache, type OnionDescriptorResult, type FetchOnionDescriptorOptions } from './onion/lookup.js';
export { decodeHsDescriptor, type HsDescriptor, type HsIntroductionPoint } from './onion/descriptor.js';
export {
  openOnionCircuit,
  DEFAULT_ONION_CONNECT_TIMEOUT_MS,
  DEFAULT_INTRO_TIMEOUT_MS,
  DEFAULT_REND_TIMEOUT_MS,
  type OnionConnectClient,
  type OnionConnectTarget,
  type OnionConnectOptions,
} from './onion/rendezvous.js';
