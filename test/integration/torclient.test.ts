/**
 * TorClient.create against the private network: the microdesc consensus verified (more
 * than half of the network's authorities signed), and every relay's RSA fingerprint,
 * Ed25519 identity and ntor onion key in `client.consensus.relays` equal to tor's own
 * files in its data directory; the microdescriptors equal the authorities' DirPort
 * copies; a second client with the same cacheDir fetches no consensus and no
 * microdescriptor; a corrupt cache file of each kind is survived.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Network } from '../../src/dir/network.js';
import { TorClient, type BootstrapProgress, type ConsensusView } from '../../src/client/torclient.js';
import { CACHE_FILES } from '../../src/client/dircache.js';
import { httpGetText } from '../../src/testnet/dirport.js';
import { noLeaks } from '../support/leaks.js';
import { authorities, loadTestnet, relays, testnetSkipReason } from './testnet.js';

/**
 * The curve25519 public key in tor's `keys/secret_onion_key_ntor`: a 32-byte header, the
 * 32-byte secret, the 32-byte public key (tor's curve25519_keypair_write_to_file). The
 * public key is also derived from the secret, so the file's layout is checked too.
 */
function ntorPublicKey(dataDir: string): string {
  const file = readFileSync(join(dataDir, 'keys', 'secret_onion_key_ntor'));
  assert.equal(file.length, 96, 'header, secret and public key');
  const secret = file.subarray(32, 64);
  const stored = file.subarray(64, 96);
  // PKCS#8 for X25519: a fixed prefix, then the 32-byte private key.
  const pkcs8 = Buffer.concat([Buffer.from('302e020100300506032b656e04220420', 'hex'), secret]);
  const spki = createPublicKey(createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' })).export({ format: 'der', type: 'spki' });
  assert.deepEqual(spki.subarray(spki.length - 32), stored, 'the stored public key is the secret key\'s');
  return stored.toString('base64').replace(/=+$/, '');
}

const scratch: string[] = [];
after(() => {
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});
function cacheDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'orport-cache-'));
  scratch.push(dir);
  return dir;
}

describe('TorClient.create on the private network', { skip: testnetSkipReason() }, () => {
  const network = () => Network.fromTorrc(readFileSync(loadTestnet().networkFile, 'utf8'));

  it('verifies the consensus; fingerprints, Ed25519 ids and ntor keys equal tor\'s own files', async () => {
    const steps: BootstrapProgress[] = [];
    const client = await TorClient.create({ network: network(), refresh: false, timeoutMs: 60_000, onProgress: (p) => steps.push(p) });
    try {
      const view = client.consensus;
      const net = network();
      assert.ok(view.signedBy.length >= net.requiredSignatures, `signed by ${view.signedBy.join(', ')}`);
      for (const nick of view.signedBy) assert.ok(authorities().some((a) => a.nick === nick), `${nick} is one of the network's authorities`);
      assert.ok(view.validAfter < view.validUntil);
      for (const node of relays()) {
        const relay = view.relays.find((r) => r.nickname === node.nick);
        assert.ok(relay, `${node.nick} is in the consensus`);
        assert.equal(relay.rsa, readFileSync(join(node.dataDir, 'fingerprint'), 'utf8').trim().split(/\s+/)[1]);
        assert.equal(relay.rsa, node.fingerprint);
        assert.equal(relay.ed25519, readFileSync(join(node.dataDir, 'fingerprint-ed25519'), 'utf8').trim().split(/\s+/)[1]);
        assert.equal(relay.ntorOnionKey?.replace(/=+$/, ''), ntorPublicKey(node.dataDir), `${node.nick}'s ntor key`);
        assert.equal(relay.orPort, node.orPort);
        assert.ok(relay.flags.includes('Running') && relay.flags.includes('Valid'), `${node.nick}: ${relay.flags.join(' ')}`);
        assert.ok(relay.protocols.Link, `${node.nick} lists its link protocols`);
      }
      assert.deepEqual([...new Set(steps.map((s) => s.step))], ['cache', 'consensus', 'certificates', 'microdescriptors', 'done']);
      // tor asks up to 3 caches at once for its first consensus (ClientBootstrapConsensusMaxInProgressTries).
      assert.ok(client.stats.directory.byKind.consensus! >= 1 && client.stats.directory.byKind.consensus! <= 3);
      assert.equal(client.stats.directory.byKind.keys, 1, 'one certificate fetch, shared by the consensus answers');
    } finally {
      await client.close();
    }
  });

  it('the microdescriptors it keeps equal the authorities\' DirPort copies', async () => {
    const client = await TorClient.create({ network: network(), refresh: false, timeoutMs: 60_000 });
    try {
      const digests = client.consensus.relays.map((r) => r.microdescDigest).sort();
      const auth = authorities()[0]!;
      const theirs = await httpGetText(auth.dirPort, `/tor/micro/d/${digests.join('-')}`, { timeoutMs: 10_000 });
      assert.equal(theirs.status, 200);
      const ours = client.microdescriptorText(digests);
      // The same set of documents (the DirPort orders them its own way).
      const split = (t: string) => t.split(/^(?=onion-key\n)/m).filter(Boolean).sort();
      assert.deepEqual(split(ours), split(theirs.body));
    } finally {
      await client.close();
    }
  });

  it('a second client with the same cacheDir fetches no consensus and no microdescriptor; corrupt files are survived', async () => {
    const dir = cacheDir();
    const first = await TorClient.create({ network: network(), cacheDir: dir, refresh: false, timeoutMs: 60_000 });
    const validAfter = first.consensus.validAfter;
    await first.close();
    for (const f of Object.values(CACHE_FILES)) assert.ok(existsSync(join(dir, f)), `${f} written`);

    const second = await TorClient.create({ network: network(), cacheDir: dir, refresh: false, timeoutMs: 60_000 });
    try {
      assert.equal(second.consensus.validAfter.getTime(), validAfter.getTime(), 'the cached consensus');
      assert.equal(second.stats.directory.requests, 0, `requests: ${JSON.stringify(second.stats.directory.byKind)}`);
      assert.equal(second.stats.fromCache.consensus, true);
      assert.equal(second.stats.fromCache.microdescs, second.consensus.relays.length);
    } finally {
      await second.close();
    }

    // Each kind of damage: the client refetches and carries on.
    const damages: [string, (text: string) => string][] = [
      ['truncated', (t) => t.slice(0, Math.floor(t.length / 2))],
      ['renamed', (t) => t.replace(/^r (\S+)/m, 'r Xampered')],
      ['flipped', (t) => { const mid = Math.floor(t.length / 2); return t.slice(0, mid) + (t[mid] === 'A' ? 'B' : 'A') + t.slice(mid + 1); }],
      ['garbage', () => '\u0000\u0001not a document at all\n'],
      ['empty', () => ''],
    ];
    for (const [name, damage] of damages) {
      for (const file of Object.values(CACHE_FILES)) {
        const path = join(dir, file);
        writeFileSync(path, damage(readFileSync(path, 'utf8')));
        const client = await TorClient.create({ network: network(), cacheDir: dir, refresh: false, timeoutMs: 60_000 });
        try {
          assert.ok(client.consensus.relays.length >= relays().length, `${name} ${file}: a full consensus`);
          assert.ok(client.consensus.relays.every((r) => r.ntorOnionKey), `${name} ${file}: every microdescriptor`);
          assert.ok(!client.consensus.relays.some((r) => r.nickname === 'Xampered'), `${name} ${file}: the tampered entry is not trusted`);
          if (file === CACHE_FILES.consensus) assert.equal(client.stats.fromCache.consensus, false, `${name} ${file}: not taken from the cache`);
        } finally {
          await client.close();
        }
      }
    }
  });

  it('refreshes in the background on dir-spec 5.1\'s schedule, from directory guards, and installs the newer consensus', async () => {
    const client = await TorClient.create({ network: network(), timeoutMs: 60_000 });
    try {
      const first = client.consensus;
      const due = client.refreshTime();
      assert.ok(due.getTime() >= first.freshUntil.getTime(), `the refresh is due after fresh-until (${due.toISOString()})`);
      assert.ok(due.getTime() <= first.validUntil.getTime(), `and before valid-until (${due.toISOString()})`);
      const next = await new Promise<ConsensusView>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no refresh within 60 s')), 60_000);
        client.once('consensus', (view) => {
          clearTimeout(timer);
          resolve(view);
        });
        client.once('refreshError', (err) => {
          clearTimeout(timer);
          reject(err);
        });
      });
      assert.ok(next.validAfter > first.validAfter, `${next.validAfter.toISOString()} after ${first.validAfter.toISOString()}`);
      assert.ok(next.signedBy.length >= network().requiredSignatures);
      assert.strictEqual(client.consensus, next);
      const guards = new Set(first.relays.filter((r) => ['Guard', 'Stable', 'Fast', 'Valid', 'V2Dir'].every((f) => r.flags.includes(f))).map((r) => r.nickname));
      assert.equal(client.stats.directoryGuards.length, Math.min(3, guards.size));
      for (const g of client.stats.directoryGuards) assert.ok(guards.has(g), `${g} is eligible as a directory guard`);
      assert.ok(client.stats.directoryGuards.includes(client.stats.consensusSource!), `fetched from a directory guard (${client.stats.consensusSource})`);
    } finally {
      await client.close();
    }
  });

  it('close() leaves no handle, timer or file descriptor behind (refresh on)', async () => {
    await noLeaks(async () => {
      const client = await TorClient.create({ network: network(), timeoutMs: 60_000 });
      await client.close();
    });
  });
});
