/**
 * client/channels against fake relays: one connection per relay identity, shared by
 * concurrent callers and reused; pinned (a relay proving another identity is refused and
 * not kept); a dead connection replaced; an idle one (no circuits) closed after the idle
 * timeout but not while a circuit is open; close() closes all and leaks nothing.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { ChannelManager, type ChannelTarget } from '../../src/client/channels.js';
import { IdentityMismatchError } from '../../src/errors.js';
import { buildCertChain, type GeneratedChain } from '../../src/testing/certchain.js';
import { startFakeRelay, type FakeRelay } from '../../src/testing/fakerelay.js';
import { noLeaks } from '../support/leaks.js';

let chains: GeneratedChain[];
before(() => {
  chains = [buildCertChain(), buildCertChain()];
});

const WAIT = { timeoutMs: 5000, signal: new AbortController().signal };
const targetOf = (fake: FakeRelay): ChannelTarget => ({ rsa: fake.identity.rsa, ed25519: fake.identity.ed25519, address: fake.host, orPort: fake.port });

async function withFakes(fn: (fakes: FakeRelay[]) => Promise<void>): Promise<void> {
  await noLeaks(async () => {
    const fakes = await Promise.all(chains.map((chain) => startFakeRelay({ chain })));
    try {
      await fn(fakes);
    } finally {
      await Promise.all(fakes.map((f) => f.close()));
    }
  });
}

test('one connection per relay: concurrent callers share one connect, later ones reuse it; another relay gets its own', async () => {
  await withFakes(async ([a, b]) => {
    const channels = new ChannelManager({ idleTimeoutMs: 60_000 });
    try {
      const [r1, r2] = await Promise.all([channels.get(targetOf(a!), WAIT), channels.get(targetOf(a!), WAIT)]);
      assert.strictEqual(r1, r2);
      assert.strictEqual(await channels.get(targetOf(a!), WAIT), r1);
      const other = await channels.get(targetOf(b!), WAIT);
      assert.notStrictEqual(other, r1);
      assert.equal(a!.stats.connections, 1);
      assert.equal(channels.size, 2);
      assert.deepEqual(channels.counters, { opened: 2, reused: 2, idleClosed: 0 });
    } finally {
      await channels.close();
    }
    assert.equal(channels.size, 0);
  });
});

test('pinned: a relay that proves another identity is refused, and nothing is kept for it', async () => {
  await withFakes(async ([a, b]) => {
    const channels = new ChannelManager();
    try {
      const lying = { ...targetOf(a!), rsa: b!.identity.rsa, ed25519: b!.identity.ed25519 };
      await assert.rejects(channels.get(lying, WAIT), IdentityMismatchError);
      assert.equal(channels.size, 0);
    } finally {
      await channels.close();
    }
  });
});

test('a connection that died is replaced by a new one', async () => {
  await withFakes(async ([a]) => {
    const channels = new ChannelManager({ idleTimeoutMs: 60_000 });
    try {
      const first = await channels.get(targetOf(a!), WAIT);
      for (const conn of a!.connections) conn.destroy();
      await a!.closedConnections(1);
      for (let i = 0; i < 50 && first.isAlive(); i++) await sleep(10);
      assert.equal(first.isAlive(), false);
      const second = await channels.get(targetOf(a!), WAIT);
      assert.notStrictEqual(second, first);
      assert.equal(second.isAlive(), true);
    } finally {
      await channels.close();
    }
  });
});

test('idle: closed once it has carried no circuit for the idle timeout, not while a circuit is open', async () => {
  await withFakes(async ([a]) => {
    const channels = new ChannelManager({ idleTimeoutMs: 150 });
    try {
      const relay = await channels.get(targetOf(a!), WAIT);
      const circuit = await relay.createCircuit();
      await sleep(500);
      assert.equal(relay.isAlive(), true, 'a circuit keeps it open');
      await circuit.close();
      for (let i = 0; i < 100 && relay.isAlive(); i++) await sleep(10);
      assert.equal(relay.isAlive(), false, 'closed after the idle timeout');
      assert.equal(channels.counters.idleClosed, 1);
      assert.equal(channels.size, 0);
      const again = await channels.get(targetOf(a!), WAIT);
      assert.notStrictEqual(again, relay, 'a new connection after the idle close');
    } finally {
      await channels.close();
    }
  });
});
