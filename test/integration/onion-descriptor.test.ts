/**
 * Integration: an onion service's descriptor, fetched by orport from real tor 0.4.9 HSDirs.
 *
 * Boots its own small network with an onion service (startTestnet({ onion: true }): 3
 * authorities, 2 relays, 1 exit, the service on the client node, the boot waiting for its
 * descriptor uploads), bootstraps a TorClient on it, and checks: fetchOnionDescriptor finds
 * the service's descriptor through a three-hop circuit ending at a responsible HSDir, it
 * verifies and decrypts (the blinded key we computed signed its cert) and lists ≥ 1
 * introduction point; a second lookup comes from the cache; a well-formed address of a
 * random key is E_ONION_DESC_NOT_FOUND after every responsible HSDir said 404; a descriptor
 * with one byte flipped is refused by decodeHsDescriptor with a CertificateError, and, served
 * in place of the real one, makes the lookup fail with E_ONION_DESC_INVALID. Skipped outside
 * an isolated namespace.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { TorClient } from '../../src/client/torclient.js';
import { CertificateError, OnionServiceError, OrportError } from '../../src/errors.js';
import { encodeOnionAddress } from '../../src/onion/address.js';
import { decodeHsDescriptor } from '../../src/onion/descriptor.js';
import { fetchOnionDescriptor, HSDIR_CIRCUIT_HOPS, type OnionDescriptorResult, type OnionLookupClient } from '../../src/onion/lookup.js';
import type { TestnetDescription } from '../../src/testnet/index.js';
import { isolationSkipReason, startOnionTestnet, type OnionTestnet } from './testnet.js';

/** The ring moves with each time period (4 min here) and SRV; tor's client re-asks after 5 s on a test network. */
async function fetchWithRetry(client: TorClient, address: string): Promise<OnionDescriptorResult> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fetchOnionDescriptor(client, address, { timeoutMs: 60_000 });
    } catch (err) {
      if (!(err instanceof OnionServiceError && err.code === 'E_ONION_DESC_NOT_FOUND') || attempt >= 4) throw err;
      console.log(`# attempt ${attempt}: ${err.message}; again in 5 s`);
      await new Promise((resolve) => setTimeout(resolve, 5000));
    }
  }
}

function randomOnionAddress(): string {
  const der = generateKeyPairSync('ed25519').publicKey.export({ format: 'der', type: 'spki' });
  return encodeOnionAddress(new Uint8Array(der.subarray(der.length - 32)));
}

/** `text` with the character at `at` replaced by another base64 character. */
function flipped(text: string, at: number): string {
  const c = text[at]!;
  return text.slice(0, at) + (c === 'A' ? 'B' : 'A') + text.slice(at + 1);
}

describe('onion service descriptors on a test network', { skip: isolationSkipReason() }, () => {
  let net: OnionTestnet | undefined;
  let description: TestnetDescription;
  let client: TorClient | undefined;
  let found: OnionDescriptorResult | undefined;

  before(async () => {
    net = await startOnionTestnet('onion-', 64 * 1024);
    ({ description, client } = net);
  });

  after(() => net?.stop());

  it('the network description names the published service', () => {
    assert.ok(description.onion, 'onion in network.json');
    assert.match(description.onion.address, /^[a-z2-7]{56}\.onion$/);
    assert.equal(description.onion.port, 80);
    assert.ok(description.onion.uploads >= 1);
    console.log(`# ${description.onion.address} published ${description.onion.publishedMs} ms after launch, ${description.onion.uploads} uploads accepted`);
  });

  it('fetches, verifies and decrypts the descriptor through a three-hop circuit to a responsible HSDir', async () => {
    assert.ok(client && description.onion);
    const started = performance.now();
    found = await fetchWithRetry(client, description.onion.address);
    const ms = performance.now() - started;
    const { descriptor } = found;
    assert.equal(found.address, description.onion.address);
    assert.equal(found.fromCache, false);
    assert.ok(found.responsible.length >= 1 && found.responsible.length <= 6, `${found.responsible.length} responsible HSDirs`);
    assert.ok(found.responsible.includes(found.hsdir), 'the descriptor came from a responsible HSDir');
    assert.equal(found.attempts[found.attempts.length - 1]!.outcome, 'found');
    assert.ok(descriptor.inner.introductionPoints.length >= 1, 'at least one introduction point');
    assert.deepEqual(descriptor.inner.create2Formats.includes(2), true);
    assert.equal(descriptor.middle.authType, 'x25519');
    assert.ok(found.expiresAt > found.fetchedAt);
    for (const ip of descriptor.inner.introductionPoints) {
      assert.equal(ip.onionKey.length, 32);
      assert.equal(ip.encKey.length, 32);
      assert.ok(ip.linkSpecifiers.length >= 2, `an intro point names its relay by address and identity: ${JSON.stringify(ip.linkSpecifiers.map((l) => l.type))}`);
    }
    // The same bytes verify again with the keys we derived; the signing key is certified by our blinded key.
    assert.deepEqual(Buffer.from(descriptor.outer.signingKeyCert.signingKey ?? []), Buffer.from(found.blindedKey));
    console.log(
      `# period ${found.period.number} (${found.period.lengthMinutes} min), SRV ${found.srv.which}${found.srv.disaster ? ' (disaster)' : ''}, ` +
        `${found.responsible.length} HSDirs, from ${found.hsdir.nickname} after ${found.attempts.length} attempt(s), ${found.text.length} bytes, ` +
        `${descriptor.inner.introductionPoints.length} intro points, revision ${descriptor.outer.revisionCounter}, ${ms.toFixed(0)} ms, ${HSDIR_CIRCUIT_HOPS} hops`,
    );
  });

  it('a second lookup is answered from the cache', async () => {
    assert.ok(client && found);
    const again = await fetchOnionDescriptor(client, found.address);
    assert.equal(again.fromCache, true);
    assert.strictEqual(again.descriptor, found.descriptor);
  });

  it('a well-formed address nobody published is E_ONION_DESC_NOT_FOUND after every responsible HSDir said 404', async () => {
    assert.ok(client);
    const address = randomOnionAddress();
    const started = performance.now();
    const err = await fetchOnionDescriptor(client, address, { timeoutMs: 60_000 }).then(
      () => assert.fail('found a descriptor for a random key'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof OnionServiceError, String(err));
    assert.equal(err.code, 'E_ONION_DESC_NOT_FOUND', err.message);
    assert.equal(err.kind, 'onion');
    assert.equal(err.address, address);
    assert.ok(err.attempts.length >= 1);
    assert.ok(err.attempts.every((a) => a.outcome === 'not-found'), err.message);
    console.log(`# not found after ${err.attempts.length} HSDirs in ${(performance.now() - started).toFixed(0)} ms`);
  });

  it('a descriptor with one byte flipped is refused: by decodeHsDescriptor, and by the lookup when an HSDir serves it', async () => {
    assert.ok(client && found);
    const { text, blindedKey, subcredential } = found;
    const inBody = text.indexOf('-----BEGIN MESSAGE-----') + 200;
    const inSignature = text.lastIndexOf('\nsignature ') + 20;
    for (const at of [inBody, inSignature]) {
      assert.throws(
        () => decodeHsDescriptor(flipped(text, at), { blindedKey, subcredential, now: new Date() }),
        (e: unknown) => e instanceof CertificateError && e.check === 'descriptor-signature',
        `byte ${at} flipped`,
      );
    }
    assert.doesNotThrow(() => decodeHsDescriptor(text, { blindedKey, subcredential, now: new Date() }));

    // A client whose HSDirs serve the tampered text (over real circuits to them).
    const real = client;
    const tampering: OnionLookupClient = {
      get consensus() {
        return real.consensus;
      },
      network: real.network,
      buildCircuit: async (options) => {
        const circuit = await real.buildCircuit(options);
        return new Proxy(circuit, {
          get(target, key, receiver) {
            if (key !== 'directory') return Reflect.get(target, key, receiver) as unknown;
            return async (...args: Parameters<typeof circuit.directory>) => {
              const raw = Buffer.from(await target.directory(...args)).toString('latin1');
              const split = raw.indexOf('\r\n\r\n') + 4;
              if (!raw.startsWith('HTTP/1.0 200')) return Buffer.from(raw, 'latin1');
              return Buffer.from(raw.slice(0, split) + flipped(raw.slice(split), inBody), 'latin1');
            };
          },
        });
      },
    };
    const err = await fetchOnionDescriptor(tampering, found.address, { timeoutMs: 60_000, refresh: true }).then(
      () => assert.fail('took a tampered descriptor'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof OnionServiceError, String(err));
    assert.equal(err.code, 'E_ONION_DESC_INVALID', err.message);
    assert.ok(err.cause instanceof CertificateError && err.cause.check === 'descriptor-signature', String(err.cause));
    assert.ok(err.attempts.some((a) => a.outcome === 'invalid'));
    assert.ok(err.attempts.every((a) => a.outcome !== 'found'));
    assert.ok(err instanceof OrportError);
  });
});
