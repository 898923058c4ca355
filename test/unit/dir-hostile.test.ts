/**
 * Hostile directory caches: fake relays (orport/testing) act as the network's authorities
 * and serve synthetic documents signed with throw-away authority keys. Each row: one
 * cache misbehaves (a truncated consensus, 100 MB of it, a deflate bomb, microdescriptors
 * that don't match their digests, nothing at all) and TorClient.create falls back to an
 * honest one, or — when every cache misbehaves — rejects with a typed error; always
 * within its time bounds, with memory bounded, and with no handle left.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { deflateSync } from 'node:zlib';
import { DirectoryError, OrportError } from '../../src/errors.js';
import { Network } from '../../src/dir/network.js';
import { TorClient } from '../../src/client/torclient.js';
import { startFakeRelay, syntheticDocument, type Document, type FakeRelay, type FakeRelayHooks } from '../../src/testing/fakerelay.js';
import { buildCertChain, type GeneratedChain } from '../../src/testing/certchain.js';
import { makeAuthorities, makeConsensus, makeRelays, dirAuthorityTorrc, type SyntheticAuthority, type SyntheticRelay } from '../../src/testing/dirdocs.js';
import { noLeaks } from '../support/leaks.js';

const AUTHORITIES = 3;
let authorities: SyntheticAuthority[];
let relays: SyntheticRelay[];
let consensus: string;
let certs: string;
let chains: GeneratedChain[];

before(() => {
  authorities = makeAuthorities(AUTHORITIES);
  relays = makeRelays(120);
  consensus = makeConsensus({ authorities, relays, validAfter: new Date(Date.now() - 10 * 60_000) });
  certs = authorities.map((a) => a.certificate).join('');
  chains = Array.from({ length: AUTHORITIES }, () => buildCertChain());
});

type Behaviour = 'honest' | 'truncated' | 'huge' | 'bomb' | 'wrong-microdescs' | 'silent';

/** What a cache with `behaviour` serves for `path`. */
function documents(behaviour: Behaviour): (path: string) => Document | undefined {
  return (path) => {
    if (path.startsWith('/tor/status-vote/current/consensus-microdesc')) {
      if (behaviour === 'truncated') return deflateSync(consensus.slice(0, Math.floor(consensus.length * 0.6)));
      if (behaviour === 'huge') return syntheticDocument(100 * 1024 * 1024);
      if (behaviour === 'bomb') return bomb();
      return deflateSync(consensus);
    }
    if (path.startsWith('/tor/keys/')) return deflateSync(certs);
    if (path.startsWith('/tor/micro/d/')) {
      const wanted = new Set(path.slice('/tor/micro/d/'.length).replace(/\.z$/, '').split('-'));
      const mds = relays.filter((r) => wanted.has(r.microdescDigest)).map((r) => r.microdesc);
      // Microdescriptors whose digests differ from what was asked (a line added to each).
      const sent = behaviour === 'wrong-microdescs' ? mds.map((m) => `${m}x-tampered 1\n`) : mds;
      return deflateSync(sent.join(''));
    }
    return undefined;
  };
}

let bombBytes: Uint8Array | undefined;
/** 200 MiB of zeros, deflated (≈ 200 KB on the wire). */
function bomb(): Uint8Array {
  bombBytes ??= deflateSync(Buffer.alloc(200 * 1024 * 1024));
  return bombBytes;
}


/** A network of fake authorities behaving as given, in order. */
async function network(behaviours: readonly Behaviour[]): Promise<{ network: Network; relays: FakeRelay[] }> {
  const started: FakeRelay[] = [];
  for (let i = 0; i < behaviours.length; i++) {
    const hooks: FakeRelayHooks = behaviours[i] === 'silent' ? { request: () => undefined } : {};
    const fake = await startFakeRelay({ chain: chains[i]!, documents: documents(behaviours[i]!), hooks });
    started.push(fake);
  }
  const torrc = dirAuthorityTorrc(started.map((f, i) => ({ authority: authorities[i]!, orPort: f.port, rsa: f.identity.rsa })));
  return { network: Network.fromTorrc(torrc), relays: started };
}

const options = { refresh: false, timeoutMs: 30_000, directory: { requestTimeoutMs: 2_000 } } as const;

interface Outcome {
  client?: TorClient;
  error?: unknown;
  ms: number;
  heapMb: number;
}

/**
 * Starts the fake caches, then bootstraps against them inside a leak check: `check` sees
 * the outcome (and closes the client); no socket, timer or descriptor may remain after.
 */
async function bootstrap(behaviours: readonly Behaviour[], check: (outcome: Outcome) => Promise<void> | void): Promise<void> {
  const { network: net, relays: caches } = await network(behaviours);
  try {
    await noLeaks(async () => {
      const heapBefore = process.memoryUsage().heapUsed;
      const t0 = performance.now();
      let outcome: Outcome;
      try {
        const client = await TorClient.create({ ...options, network: net });
        outcome = { client, ms: performance.now() - t0, heapMb: 0 };
      } catch (error) {
        outcome = { error, ms: performance.now() - t0, heapMb: 0 };
      }
      outcome.heapMb = (process.memoryUsage().heapUsed - heapBefore) / 2 ** 20;
      try {
        await check(outcome);
      } finally {
        await outcome.client?.close();
      }
    });
  } finally {
    await Promise.all(caches.map((c) => c.close()));
  }
}

function assertComplete(client: TorClient | undefined, row: string): void {
  assert.ok(client, `${row}: bootstrapped`);
  assert.equal(client.consensus.relays.length, relays.length, `${row}: every relay`);
  assert.ok(client.consensus.relays.every((r) => r.ntorOnionKey), `${row}: every microdescriptor`);
  assert.equal(client.consensus.signedBy.length, AUTHORITIES);
}

test('an honest network bootstraps', async () => {
  await bootstrap(['honest', 'honest', 'honest'], ({ client, error }) => {
    assert.equal(error, undefined, String(error));
    assertComplete(client, 'honest');
  });
});

for (const bad of ['truncated', 'huge', 'bomb', 'silent', 'wrong-microdescs'] as const) {
  test(`one cache sends ${bad === 'huge' ? '100 MB of consensus' : bad === 'bomb' ? 'a deflate bomb' : bad === 'silent' ? 'nothing at all' : bad === 'truncated' ? 'a truncated consensus' : 'microdescriptors that do not match their digests'}: the client uses the others`, async () => {
    await bootstrap([bad, bad, 'honest'], ({ client, error, ms }) => {
      assert.equal(error, undefined, String(error));
      assertComplete(client, bad);
      assert.ok(ms < 30_000, `within the bootstrap timeout (${ms.toFixed(0)} ms)`);
    });
  });
}

for (const bad of ['truncated', 'huge', 'bomb', 'silent'] as const) {
  test(`every cache sends ${bad} consensus: a typed error, bounded in time and memory`, async () => {
    await bootstrap([bad, bad, bad], ({ error, ms, heapMb }) => {
      assert.ok(error instanceof OrportError, `a typed error, not ${String(error)}`);
      assert.ok(error instanceof DirectoryError, String(error));
      assert.equal(error.code, 'E_DIR_FETCH');
      for (const name of ['auth0', 'auth1', 'auth2']) assert.match(error.message, new RegExp(name), 'names every cache it tried');
      assert.ok(ms < 30_000, `${ms.toFixed(0)} ms`);
      assert.ok(heapMb < 200, `heap grew ${heapMb.toFixed(0)} MB`);
    });
  });
}

test('every cache sends microdescriptors that do not match: the consensus is kept, no wrong microdescriptor is', async () => {
  await bootstrap(['wrong-microdescs', 'wrong-microdescs', 'wrong-microdescs'], ({ client, error }) => {
    assert.equal(error, undefined, String(error));
    assert.equal(client!.consensus.relays.length, relays.length);
    assert.ok(client!.consensus.relays.every((r) => r.ntorOnionKey === undefined), 'none kept');
    assert.equal(client!.microdescriptorText(), '');
  });
});

test('a consensus signed by authorities the network does not list, or by a minority: E_DIR_SIGNATURES from every cache', async () => {
  const others = makeAuthorities(AUTHORITIES);
  for (const [row, text] of [
    ['strangers', makeConsensus({ authorities: others, relays, validAfter: new Date(Date.now() - 60_000) })],
    ['minority', makeConsensus({ authorities, relays, validAfter: new Date(Date.now() - 60_000), signers: authorities.slice(0, 1) })],
  ] as const) {
    const { network: net, relays: caches } = await network(['honest', 'honest', 'honest']);
    const saved = consensus;
    consensus = text;
    const certsSaved = certs;
    if (row === 'strangers') certs = others.map((a) => a.certificate).join('');
    try {
      await assert.rejects(TorClient.create({ ...options, network: net }), (err: unknown) => {
        assert.ok(err instanceof DirectoryError, String(err));
        assert.equal(err.code, 'E_DIR_SIGNATURES', `${row}: ${err.message}`);
        return true;
      });
    } finally {
      consensus = saved;
      certs = certsSaved;
      await Promise.all(caches.map((c) => c.close()));
    }
  }
});

test('an AbortSignal or the bootstrap timeout ends a bootstrap against silent caches at once: AbortError / TimeoutError', async () => {
  const { network: net, relays: caches } = await network(['silent', 'silent', 'silent']);
  try {
    await noLeaks(async () => {
      const controller = new AbortController();
      const t0 = performance.now();
      setTimeout(() => controller.abort(new Error('the user gave up')), 300);
      await assert.rejects(TorClient.create({ ...options, network: net, signal: controller.signal }), (err: unknown) => {
        assert.ok(err instanceof OrportError && err.code === 'E_ABORTED', String(err));
        return true;
      });
      // Before any request could have timed out on its own: the abort ended it.
      assert.ok(performance.now() - t0 < options.directory.requestTimeoutMs, 'aborted before the requests timed out');
      const t1 = performance.now();
      await assert.rejects(TorClient.create({ ...options, network: net, timeoutMs: 500 }), (err: unknown) => {
        assert.ok(err instanceof OrportError && err.code === 'E_TIMEOUT', String(err));
        return true;
      });
      assert.ok(performance.now() - t1 < options.directory.requestTimeoutMs, 'the bootstrap timeout, not a request timeout, ended it');
    });
  } finally {
    await Promise.all(caches.map((c) => c.close()));
  }
});
