/**
 * Conflux (prop 329) against tor 0.4.9 exits on the private network: `buildConflux` links
 * two circuits to one exit (LINK / LINKED / LINKED_ACK), the exit spreads a 20 MiB download
 * over both legs and it comes out in order (sha256); a 5 MiB upload echoes back intact;
 * `client.connect` with `conflux: true` uses sets (and reuses one), as does `orport fetch
 * --conflux`; closing one leg closes the set and its streams.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import { TorClient } from '../../src/client/torclient.js';
import { Network } from '../../src/dir/network.js';
import { loadTestnet, testnetSkipReason } from './testnet.js';
import { download, echoRoundTrip, runCli, startClientAndEcho, type ClientAndEcho } from './streamhelp.js';

describe('conflux with tor 0.4.9 exits', { skip: testnetSkipReason() }, () => {
  let client: TorClient;
  let echoPort: number;
  let fixture: ClientAndEcho | undefined;
  const net = () => loadTestnet();
  const path = () => new URL(net().http.url).pathname;
  before(async () => {
    fixture = await startClientAndEcho();
    ({ client, echoPort } = fixture);
  });
  after(() => fixture?.close());

  it('links two legs to one exit through distinct guards and middles; 20 MiB down in order over both', { timeout: 90_000 }, async () => {
    const set = await client.buildConflux({ exitPort: net().http.port });
    try {
      assert.equal(set.legs.length, 2);
      const [a, b] = set.legs.map((l) => l.hops.map((h) => h.rsa));
      assert.equal(a![2], b![2], 'one exit');
      assert.notEqual(a![0], b![0], 'distinct guards');
      assert.notEqual(a![1], b![1], 'distinct middles');
      assert.ok(set.legs.every((l) => l.hops[2]!.congestionControl), 'congestion control on each leg');
      const got = await download(await set.openStream('127.0.0.1', net().http.port), path());
      assert.equal(got.sha256, net().http.fileSha256);
      const { cellsByLeg, queued } = set.stats;
      console.log(`# multiplexed cells by leg: ${cellsByLeg.join(' / ')}; DATA ${set.legs.map((l) => l.counters.dataIn).join(' / ')}`);
      assert.ok(cellsByLeg.every((n) => n > 100), `the exit sent by both legs: ${cellsByLeg.join(' / ')}`);
      assert.equal(queued, 0);
    } finally {
      await set.close();
    }
    assert.ok(set.legs.every((l) => !l.isOpen));
  });

  it('5 MiB up intact (sent by leg 0)', { timeout: 90_000 }, async () => {
    const set = await client.buildConflux({ exitPort: echoPort });
    try {
      const stream = await set.openStream('127.0.0.1', echoPort);
      assert.ok((await echoRoundTrip(stream, 5 * 1024 * 1024)).intact, '5 MiB echoed intact');
      stream.destroy();
    } finally {
      await set.close();
    }
  });

  it('a leg closing closes the set and ends its streams', { timeout: 90_000 }, async () => {
    const set = await client.buildConflux({ exitPort: echoPort });
    const stream = await set.openStream('127.0.0.1', echoPort);
    await set.legs[1]!.close();
    const error = await finished(stream, { signal: AbortSignal.timeout(10_000) }).then(() => undefined, (err: Error) => err);
    assert.ok(error && error.name !== 'AbortError', `the stream errored within 10 s of leg 1's close: ${error?.message} (set open: ${set.isOpen}; legs open: ${set.legs.map((l) => l.isOpen).join(', ')})`);
    assert.equal(set.isOpen, false);
    assert.ok(set.legs.every((l) => !l.isOpen));
  });

  it("client.connect by default ('auto') uses a set where the network offers one", { timeout: 90_000 }, async () => {
    const before = client.stats.exits;
    const stream = await client.connect('127.0.0.1', echoPort, { isolation: 'conflux-auto' });
    assert.ok((await echoRoundTrip(stream, 256 * 1024)).intact);
    stream.destroy();
    const after = client.stats.exits;
    assert.equal(after.built - before.built, 1);
    assert.equal(after.conflux - before.conflux, 1, 'the circuit built is a conflux set');
    assert.equal(after.confluxFallbacks, before.confluxFallbacks);
  });

  it('client.connect with conflux: true opens streams on one set, reused; orport fetch --conflux', { timeout: 90_000 }, async () => {
    const cfx = await TorClient.create({ network: Network.fromTorrc(readFileSync(net().networkFile, 'utf8')), refresh: false, timeoutMs: 60_000, conflux: true });
    try {
      const port = net().http.port;
      const [a, b] = await Promise.all([0, 1].map(async () => download(await cfx.connect('127.0.0.1', port), path())));
      assert.equal(a!.sha256, net().http.fileSha256);
      assert.equal(b!.sha256, net().http.fileSha256);
      const exits = cfx.stats.exits;
      assert.equal(exits.streams, 2);
      assert.ok(exits.built >= 1 && exits.built <= 2, `sets built: ${exits.built}`);
      assert.equal(exits.circuits, exits.built, 'the pool holds sets, one entry each');
      // Each set is two circuits through two guards: two connections for one set.
      assert.ok(cfx.stats.channels.opened >= 2, `connections: ${cfx.stats.channels.opened}`);
    } finally {
      await cfx.close();
    }
    const dir = mkdtempSync(join(tmpdir(), 'orport-cfx-'));
    try {
      const out = join(dir, 'file');
      const fetched = await runCli(['fetch', `http://127.0.0.1:${net().http.port}${path()}`, '-o', out, '--network', net().networkFile, '--conflux'], 120_000);
      assert.equal(fetched.code, 0, fetched.stderr);
      assert.equal(createHash('sha256').update(readFileSync(out)).digest('hex'), net().http.fileSha256);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
