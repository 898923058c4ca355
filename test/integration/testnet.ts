/**
 * test/integration/testnet — how integration tests reach the shared test network.
 *
 * `npm test` boots one private Tor network for the whole integration run and
 * passes its description in ORPORT_TESTNET_JSON (see scripts/test.ts). Test
 * files use this helper instead of reading the variable themselves:
 *
 *   import { describe, it } from 'node:test';
 *   import { testnetSkipReason, loadTestnet, relays, nodeByNick } from './testnet.js';
 *
 *   describe('my relay test', { skip: testnetSkipReason() }, () => {
 *     it('talks to relay0', async () => {
 *       const relay = nodeByNick('relay0');   // orPort, fingerprint, ed25519, …
 *     });
 *   });
 *
 * Without the variable (a file run on its own) every such test is skipped
 * with a message saying how to run it. Networks a test starts for itself
 * belong under `testTmpDir()`, which the runner checks for leftovers.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TorClient } from '../../src/client/torclient.js';
import { Network } from '../../src/dir/network.js';
import {
  checkIsolation,
  startTestnet,
  type Testnet,
  nodesWithRole,
  parseTestnetDescription,
  relayNodes,
  type ClientNodeDescription,
  type NodeDescription,
  type RelayNodeDescription,
  type TestnetDescription,
} from '../../src/testnet/index.js';

export type { ClientNodeDescription, NodeDescription, RelayNodeDescription, TestnetDescription };

export const TESTNET_JSON_ENV = 'ORPORT_TESTNET_JSON';

let cached: TestnetDescription | undefined;

/** Why integration tests must be skipped (a message for `{ skip }`), or false when the network is there. */
export function testnetSkipReason(): string | false {
  if (!process.env[TESTNET_JSON_ENV]) {
    return `no test network: ${TESTNET_JSON_ENV} is not set; run integration tests through \`npm test\` (or \`npm test -- --integration <filter>\`), which boots one`;
  }
  return false;
}

/** Why tests that start tor themselves must be skipped: not inside an isolated namespace. */
export function isolationSkipReason(): string | false {
  const status = checkIsolation();
  return status.isolated ? false : `not in an isolated network namespace (${status.problems.join('; ')}); run through \`npm test\``;
}

/** The shared network's description; throws with advice when there is none. */
export function loadTestnet(): TestnetDescription {
  if (cached) return cached;
  const path = process.env[TESTNET_JSON_ENV];
  if (!path) throw new Error(testnetSkipReason() || 'no test network');
  cached = parseTestnetDescription(readFileSync(path, 'utf8'), path);
  return cached;
}

/** Every relay node: authorities, relays and exits. */
export function relays(): RelayNodeDescription[] {
  return relayNodes(loadTestnet());
}

export function authorities(): RelayNodeDescription[] {
  return nodesWithRole(loadTestnet(), 'authority');
}

/** Non-exit, non-authority relays. */
export function middleRelays(): RelayNodeDescription[] {
  return nodesWithRole(loadTestnet(), 'relay');
}

export function exits(): RelayNodeDescription[] {
  return nodesWithRole(loadTestnet(), 'exit');
}

/** The tor client (SocksPort), when the network has one (the test runner starts it). */
export function client(): ClientNodeDescription | undefined {
  return nodesWithRole(loadTestnet(), 'client')[0];
}

export function nodeByNick(nick: string): NodeDescription {
  const node = loadTestnet().nodes.find((n) => n.nick === nick);
  if (!node) throw new Error(`no node named ${nick} in the test network (have ${loadTestnet().nodes.map((n) => n.nick).join(', ')})`);
  return node;
}

/** A relay node by nickname (throws for the client). */
export function relayByNick(nick: string): RelayNodeDescription {
  const node = nodeByNick(nick);
  if (node.role === 'client') throw new Error(`${nick} is the client, not a relay`);
  return node;
}

/** Where tests put networks or files of their own (the runner removes it and checks for leftovers). */
export function testTmpDir(): string {
  return process.env.ORPORT_TEST_TMPDIR ?? tmpdir();
}

/** A network a test file boots for itself, with an onion service, and a TorClient bootstrapped on it. */
export interface OnionTestnet {
  readonly description: TestnetDescription;
  readonly client: TorClient;
  /** Closes the client, stops the network, removes its directory; fails if a tor log named a non-loopback address. */
  stop(): Promise<void>;
}

/** 3 authorities, 2 relays, 1 exit and the client node's onion service in front of an HTTP file of `httpFileBytes`, under testTmpDir(). */
export async function startOnionTestnet(prefix: string, httpFileBytes: number): Promise<OnionTestnet> {
  const baseDir = mkdtempSync(join(testTmpDir(), prefix));
  let testnet: Testnet | undefined;
  let client: TorClient | undefined;
  const stop = async (): Promise<void> => {
    await client?.close();
    const report = await testnet?.stop();
    rmSync(baseDir, { recursive: true, force: true });
    if (report) assert.deepEqual(report.nonLoopbackAddresses, [], 'no tor log names a non-loopback address');
  };
  try {
    testnet = await startTestnet({ relays: 2, exits: 1, onion: true, httpFileBytes, logLevel: 'notice', verifyTorrcs: false, baseDir, timeoutMs: 150_000 });
    const description = testnet.describe();
    client = await TorClient.create({ network: await Network.fromFile(description.networkFile), timeoutMs: 60_000, refresh: false });
    return { description, client, stop };
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }
}
