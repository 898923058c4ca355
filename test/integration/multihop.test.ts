/**
 * Multi-hop circuits against the private network's tor 0.4.9 relays, with the keys the
 * verified consensus gives (TorClient): CREATE2 with ntor and ntor v3 for the first hop,
 * EXTEND2 to a second and third hop with either handshake, a directory request answered
 * by the hop it was sent to (each relay serves its own descriptor at
 * /tor/server/authority), TRUNCATE and a new extension, and the failures tor reports:
 * an onion key the target doesn't have (the circuit is destroyed or truncated).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { Network } from '../../src/dir/network.js';
import { TorClient, type RelayInfo } from '../../src/client/torclient.js';
import { Relay } from '../../src/client/relay.js';
import { parseHttpResponse } from '../../src/dir/http.js';
import { CircuitDestroyedError, HandshakeError, OrportError } from '../../src/errors.js';
import { loadTestnet, testnetSkipReason } from './testnet.js';

const AUTHORITY = 'GET /tor/server/authority HTTP/1.0\r\n\r\n';

/** The fingerprint line of the descriptor a relay served as its own. */
function servedBy(raw: Uint8Array): string {
  const body = Buffer.from(parseHttpResponse(raw).body).toString('latin1');
  const m = /^fingerprint (.+)$/m.exec(body);
  assert.ok(m, 'a descriptor with a fingerprint line');
  return m[1]!.replace(/ /g, '');
}

describe('multi-hop circuits on the private network', { skip: testnetSkipReason() }, () => {
  let client: TorClient;
  let relays: RelayInfo[];
  before(async () => {
    client = await TorClient.create({ network: Network.fromTorrc(readFileSync(loadTestnet().networkFile, 'utf8')), refresh: false, timeoutMs: 60_000 });
    relays = client.consensus.relays.filter((r) => r.ntorOnionKey && r.ed25519);
    assert.ok(relays.length >= 4, 'enough relays with microdescriptors');
  });
  after(async () => {
    await client?.close();
  });

  for (const [first, second, third] of [
    ['ntor', 'ntor', 'ntor'],
    ['ntor-v3', 'ntor-v3', 'ntor-v3'],
    ['ntor', 'ntor-v3', 'ntor'],
  ] as const) {
    it(`three hops: CREATE2 ${first}, EXTEND2 ${second}, EXTEND2 ${third}; each hop answers its own directory requests`, async () => {
      const [guard, middle, exit] = relays;
      const relay = await Relay.connect(guard!.address, guard!.orPort, undefined, { identity: { rsa: guard!.rsa, ed25519: guard!.ed25519 } });
      try {
        const circuit = await relay.createCircuit({ handshake: first, target: guard! });
        assert.equal(circuit.hopCount, 1);
        await circuit.extend(middle!, { handshake: second });
        await circuit.extend(exit!, { handshake: third });
        assert.equal(circuit.hopCount, 3);
        assert.equal(servedBy(await circuit.directory(AUTHORITY, 1)), exit!.rsa, 'the last hop answered');
        assert.equal(servedBy(await circuit.directory(AUTHORITY, 2, { hop: 1 })), middle!.rsa, 'hop #2 answered');
        assert.equal(servedBy(await circuit.directory(AUTHORITY, 3, { hop: 0 })), guard!.rsa, 'hop #1 answered');
        await circuit.close();
      } finally {
        await relay.close();
      }
    });
  }

  it('client.buildCircuit(): exit, guard and middle chosen from the consensus; three hops; the guard connection reused and closed with the client', async () => {
    const own = await TorClient.create({ network: Network.fromTorrc(readFileSync(loadTestnet().networkFile, 'utf8')), refresh: false, timeoutMs: 60_000 });
    try {
      const first = await own.buildCircuit({ exitPort: 80 });
      const [guard, middle, exit] = first.hops.map((h) => own.consensus.relays.find((r) => r.rsa === h.rsa)!);
      assert.equal(new Set([guard!.rsa, middle!.rsa, exit!.rsa]).size, 3, 'three distinct relays');
      assert.equal(first.circuit.hopCount, 3);
      assert.equal(servedBy(await first.directory(AUTHORITY, 1)), exit!.rsa, 'the exit answers');
      assert.deepEqual(first.relay.identity, { rsa: guard!.rsa, ed25519: guard!.ed25519 }, 'the guard connection proved the consensus identities');
      assert.equal(own.stats.guards.find((g) => g.rsa === guard!.rsa)?.primary, true, 'the first hop is a primary guard');
      const second = await own.buildCircuit({ path: first.hops.map((h) => h.nickname) });
      assert.strictEqual(second.relay, first.relay, 'one connection per relay');
      await second.close();
      assert.ok(first.circuit.isOpen, 'closing one circuit leaves the other');
    } finally {
      await own.close();
    }
  });

  it('TRUNCATE back to hop #1 (TRUNCATED), then extend elsewhere', async () => {
    const [guard, middle, exit, other] = relays;
    const relay = await Relay.connect(guard!.address, guard!.orPort);
    try {
      const circuit = await relay.createCircuit();
      await circuit.extend(middle!);
      await circuit.extend(exit!);
      await circuit.truncate(0);
      assert.equal(circuit.hopCount, 1);
      await circuit.extend(other!);
      assert.equal(circuit.hopCount, 2);
      assert.equal(servedBy(await circuit.directory(AUTHORITY, 1)), other!.rsa);
    } finally {
      await relay.close();
    }
  });

  it('extending to a relay with an onion key it does not have: the circuit is truncated or destroyed, a typed error', async () => {
    const [guard, middle] = relays;
    const relay = await Relay.connect(guard!.address, guard!.orPort);
    try {
      const circuit = await relay.createCircuit();
      const wrong = { ...middle!, ntorOnionKey: randomBytes(32).toString('base64') };
      await assert.rejects(circuit.extend(wrong, { handshake: 'ntor', timeoutMs: 20_000 }), (err: unknown) => {
        assert.ok(err instanceof CircuitDestroyedError || err instanceof HandshakeError || (err instanceof OrportError && err.code === 'E_TIMEOUT'), String(err));
        return true;
      });
    } finally {
      await relay.close();
    }
  });

  it('CREATE2 with a wrong onion key: the relay refuses (DESTROY), a typed error', async () => {
    const [guard] = relays;
    const relay = await Relay.connect(guard!.address, guard!.orPort);
    try {
      const wrong = { ...guard!, ntorOnionKey: randomBytes(32).toString('base64') };
      await assert.rejects(relay.createCircuit({ handshake: 'ntor', target: wrong, timeoutMs: 10_000 }), (err: unknown) => {
        assert.ok(err instanceof OrportError, String(err));
        return true;
      });
      assert.ok(relay.isAlive(), 'the connection survives');
    } finally {
      await relay.close();
    }
  });
});
