/**
 * Integration: a test network with real latency (startTestnet's `latencyMs`).
 *
 * Boots its own small network (3 authorities, 1 relay, 1 exit, a 1 MiB file) with
 * 50 ms one-way links, inside the test runner's namespace, and checks: the description
 * records the latency and both ports of each relay; the consensus lists the advertised
 * (forwarder) ports and never tor's own; tor's connections to one another went through
 * the forwarders; a three-hop circuit built by orport's TorClient takes at least three
 * round trips of 2 × 50 ms, and its second and third hops show the relay-to-relay links
 * are delayed too (an EXTEND2 costs the client's round trip plus the relay's); a download
 * through the exit arrives intact (sha256). Times are reported as diagnostics; there is
 * no upper bound. Skipped outside an isolated namespace.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TorClient } from '../../src/client/torclient.js';
import type { TorStream } from '../../src/client/stream.js';
import { Network } from '../../src/dir/network.js';
import { consensusRouters, httpGetText } from '../../src/testnet/dirport.js';
import { relayNodes, startTestnet, type Testnet, type TestnetDescription } from '../../src/testnet/index.js';
import { isolationSkipReason, testTmpDir } from './testnet.js';

const LATENCY_MS = 50;
const RTT_MS = 2 * LATENCY_MS;
/** Timer granularity and scheduling: how much earlier than the physics a measurement may come out. */
const SLACK_MS = 15;

/** GET the test file over `stream` (HTTP/1.0): status line, body length and sha256. */
async function download(stream: TorStream, path: string): Promise<{ status: string; bytes: number; sha256: string }> {
  stream.write(`GET ${path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n`);
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  const raw = Buffer.concat(chunks);
  const split = raw.indexOf('\r\n\r\n');
  assert.ok(split > 0, 'an HTTP response with headers');
  const body = raw.subarray(split + 4);
  return { status: raw.subarray(0, raw.indexOf('\r\n')).toString(), bytes: body.length, sha256: createHash('sha256').update(body).digest('hex') };
}

describe('a test network with 50 ms links', { skip: isolationSkipReason() }, () => {
  let baseDir = '';
  let testnet: Testnet | undefined;
  let description: TestnetDescription;
  let client: TorClient | undefined;

  before(async () => {
    baseDir = mkdtempSync(join(testTmpDir(), 'latency-'));
    testnet = await startTestnet({ relays: 1, exits: 1, latencyMs: LATENCY_MS, httpFileBytes: 1024 * 1024, logLevel: 'notice', verifyTorrcs: false, baseDir, timeoutMs: 60_000 });
    description = testnet.describe();
  });

  after(async () => {
    await client?.close();
    const report = await testnet?.stop();
    rmSync(baseDir, { recursive: true, force: true });
    if (report) assert.deepEqual(report.nonLoopbackAddresses, [], 'no tor log names a non-loopback address');
  });

  it('records the latency and both ports; the consensus lists the advertised ports; tor connects through the forwarders', async () => {
    assert.equal(description.latencyMs, LATENCY_MS);
    assert.equal(description.rateBytesPerSec, null);
    const relays = relayNodes(description);
    for (const relay of relays) assert.notEqual(relay.realOrPort, relay.orPort, `${relay.nick} listens behind its forwarder`);
    const auth = relays.find((r) => r.role === 'authority');
    assert.ok(auth);
    const r = await httpGetText(auth.dirPort, '/tor/status-vote/current/consensus', { timeoutMs: 5000 });
    assert.equal(r.status, 200);
    const ports = new Map([...r.body.matchAll(/^r (\S+) \S+ \S+ \S+ \S+ (\S+) (\d+) \d+$/gm)].map((m) => [m[1] ?? '', { address: m[2], orPort: Number(m[3]) }]));
    assert.equal(consensusRouters(r.body).size, relays.length);
    for (const relay of relays) assert.deepEqual(ports.get(relay.nick), { address: '127.0.0.1', orPort: relay.orPort }, `${relay.nick} in the consensus`);
    const links = testnet?.linkStats() ?? [];
    assert.equal(links.length, relays.length);
    // Nobody but tor has connected yet: every accepted connection is one relay reaching another.
    const accepted = links.reduce((n, l) => n + l.connections, 0);
    assert.ok(accepted >= relays.length - 1, `tor made ${accepted} connections through the forwarders (${links.map((l) => `${l.nick} ${l.connections}`).join(', ')})`);
    assert.ok(links.every((l) => l.connectFailures === 0));
  });

  it('a three-hop circuit takes at least 3 round trips; EXTEND2s pay for the relay-to-relay links too; the download is intact', async (t) => {
    const t0 = performance.now();
    client = await TorClient.create({ network: await Network.fromFile(description.networkFile), refresh: false, timeoutMs: 30_000 });
    const bootstrapMs = performance.now() - t0;
    const t1 = performance.now();
    const circuit = await client.buildCircuit({ exitPort: description.http.port, timeoutMs: 30_000 });
    const buildMs = performance.now() - t1;
    const hops = circuit.hops;
    t.diagnostic(`bootstrap ${bootstrapMs.toFixed(0)} ms; buildCircuit ${buildMs.toFixed(0)} ms; hops ${hops.map((h) => `${h.nickname} ${h.handshake} ${h.ms.toFixed(0)} ms`).join(', ')}`);
    await circuit.close();
    assert.equal(hops.length, 3);
    assert.ok(buildMs >= 3 * RTT_MS - SLACK_MS, `the build took ${buildMs.toFixed(0)} ms, at least 3 round trips of ${RTT_MS} ms expected`);
    // EXTEND2 to hop 2: the client↔guard round trip and the guard↔middle one (CREATE2/CREATED2).
    assert.ok((hops[1]?.ms ?? 0) >= 2 * RTT_MS - SLACK_MS, `hop 2 took ${hops[1]?.ms} ms`);
    // EXTEND2 to hop 3: client↔guard, guard↔middle and middle↔exit.
    assert.ok((hops[2]?.ms ?? 0) >= 3 * RTT_MS - SLACK_MS, `hop 3 took ${hops[2]?.ms} ms`);

    const t2 = performance.now();
    const stream = await client.connect('127.0.0.1', description.http.port, { timeoutMs: 30_000 });
    const got = await download(stream, new URL(description.http.url).pathname);
    const downloadMs = performance.now() - t2;
    t.diagnostic(`download of ${got.bytes} bytes in ${downloadMs.toFixed(0)} ms (${(got.bytes / 1e6 / (downloadMs / 1000)).toFixed(2)} MB/s), connect included`);
    assert.match(got.status, /^HTTP\/1\.[01] 200/);
    assert.equal(got.bytes, description.http.fileBytes);
    assert.equal(got.sha256, description.http.fileSha256);
  });
});
