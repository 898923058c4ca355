/**
 * orport/testing — test support for users who test their own tools against hostile
 * relays: the scriptable fake relay (a TLS server on loopback with a real CERTS chain;
 * CREATE2, EXTEND2 to the other fake relays of the process, exit streams to 127.0.0.1
 * and RESOLVE), certificate chains from fresh keys, and the relays' half of a circuit
 * (one hop or a chain of them); onion-service roles (rendezvous point, introduction point,
 * an in-process service) and a whole fake network a TorClient bootstraps against.
 *
 *   import { startFakeRelay, syntheticDocument } from 'orport/testing';
 *
 * A separate entry point, so the main one stays lean.
 */
export {
  startFakeRelay,
  syntheticDocument,
  syntheticByte,
  FakeConnection,
  FakeCircuit,
  FakeStream,
  type FakeRelay,
  type FakeRelayOptions,
  type FakeRelayHooks,
  type FakeRelayStats,
  type Create2Request,
  type BeginTarget,
  FAKE_EXIT_ADDRESS,
  type Document,
  type DocumentSource,
  type Next,
} from './fakerelay.js';
export { buildCertChain, generateChainKeys, type GeneratedChain, type ChainOptions, type ChainKeys } from './certchain.js';
export {
  RelaySideCircuit,
  relayPieces,
  serverHandshake,
  type RelayMessageIn,
  type RelayOnionKeys,
  type RelaySideLayer,
  type ServerHandshakeOptions,
  type ServerHandshakeResult,
  type RandomSource,
} from './relayside.js';
export {
  makeAuthorities,
  makeRelays,
  makeConsensus,
  microdescText,
  certify,
  signDigest,
  dirTime,
  dirAuthorityTorrc,
  type SyntheticAuthority,
  type SyntheticRelay,
  type ConsensusOptions,
  type AuthorityOptions,
} from './dirdocs.js';
export {
  FakeOnionWorld,
  FakeOnionService,
  HsServiceLayer,
  startFakeOnionNetwork,
  syntheticRelayOf,
  linkSpecifiersOf,
  type FakeOnionNetwork,
  type FakeOnionNetworkOptions,
  type FakeOnionServiceOptions,
  type FakeIntroPoint,
  type IntroBehaviour,
  type RendezvousBehaviour,
  type OnionRelayRoles,
  type OnionEvent,
} from './fakeonion.js';
export { blindedSigner, encodeHsDescriptor, encryptHsDescriptorLayer, type BlindedSigner, type EncodeHsDescriptorOptions, type HsDescIntroPoint } from './hsdesc.js';
