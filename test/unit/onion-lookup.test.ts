/**
 * Unit: onion/lookup's I/O logic against a fake client (no network): the path asked of
 * buildCircuit is three hops ending at a responsible HSDir, the GET is for the blinded key's
 * path, every responsible HSDir is tried once in some order, and each ending is typed —
 * all 404 → E_ONION_DESC_NOT_FOUND, 503 / circuit failures → E_ONION_DESC_FETCH, a 200 that
 * does not verify → E_ONION_DESC_INVALID (cause: the decoder's error), the lookup's
 * timeout → TimeoutError, the caller's signal → AbortError; circuits are always closed;
 * the time period follows the test-network rule (24 × the voting interval); a descriptor found
 * just after the period's wall-clock end is cached until the consensus enters the next period
 * (tor's hs_cache.c measures that end in consensus time).
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { test } from 'node:test';
import { ed25519RawPublicKey } from '../../src/crypto/ed25519cert.js';
import { AbortError, DecodeError, OnionServiceError, TimeoutError } from '../../src/errors.js';
import { encodeOnionAddress, parseOnionAddress } from '../../src/onion/address.js';
import { blindPublicKey, descriptorPath, subcredential } from '../../src/onion/keys.js';
import { fetchOnionDescriptor, onionRingView, type OnionLookupClient } from '../../src/onion/lookup.js';
import { blindedSigner, encodeHsDescriptor } from '../../src/testing/hsdesc.js';

function key32(): Uint8Array {
  const der = generateKeyPairSync('ed25519').publicKey.export({ format: 'der', type: 'spki' });
  return new Uint8Array(der.subarray(der.length - 32));
}

const VA = new Date('2026-12-03T07:00:00Z');
const relays = Array.from({ length: 8 }, (_, i) => ({
  nickname: `r${i}`,
  rsa: (i + 1).toString(16).toUpperCase().padStart(40, '0'),
  ed25519: Buffer.from(key32()).toString('base64').replace(/=+$/, ''),
  address: '127.0.0.1',
  orPort: 15000 + i,
  dirPort: 15100 + i,
  ipv6: undefined,
  flags: ['Fast', 'Guard', 'HSDir', 'Running', 'Stable', 'V2Dir', 'Valid'],
  bandwidth: 1000,
  protocols: { HSDir: '2', Relay: '1-4' },
  ntorOnionKey: 'K'.repeat(43),
  exitPolicy: { ipv4: 'reject 1-65535', ipv6: undefined },
  family: [],
  familyIds: [],
  microdescDigest: 'x',
}));

type Answer = (hsdir: string, request: string, signal: AbortSignal | undefined) => Promise<string> | string;

function fakeClient(answer: Answer, log: { paths: string[][]; requests: string[]; closed: number }): OnionLookupClient {
  const consensus = {
    validAfter: VA,
    freshUntil: new Date(VA.getTime() + 10_000),
    validUntil: new Date(VA.getTime() + 30_000),
    signedBy: [],
    params: {},
    bandwidthWeights: {},
    relays,
    document: { sharedRandPrevious: undefined, sharedRandCurrent: undefined },
  };
  return {
    consensus,
    network: { testing: true, rules: { enforceDistinctSubnets: false } },
    buildCircuit: async (options: { path?: readonly { nickname: string }[] }) => {
      const path = (options.path ?? []).map((r) => r.nickname);
      log.paths.push(path);
      if (path[2] === 'r7') throw new OnionServiceError('E_ONION_DESC_FETCH', '', 'r7 does not build');
      return {
        directory: async (request: string, _id: number, opts: { signal?: AbortSignal }) => {
          log.requests.push(request);
          return Buffer.from(await answer(path[2]!, request, opts.signal), 'latin1');
        },
        close: async () => {
          log.closed++;
        },
      };
    },
  } as unknown as OnionLookupClient;
}

const address = encodeOnionAddress(key32());

test('the time period and SRV come from the consensus with the test-network rule', () => {
  const view = onionRingView(fakeClient(() => '', { paths: [], requests: [], closed: 0 }));
  assert.equal(view.period.lengthMinutes, 4, '24 × 10 s');
  assert.equal(view.srv.disaster, true, 'no SRV lines: the disaster SRV');
  assert.equal(view.maxDescriptorSize, 50000);
});

test('every responsible HSDir answers 404: E_ONION_DESC_NOT_FOUND; three-hop paths ending at each; circuits closed', async () => {
  const log = { paths: [] as string[][], requests: [] as string[], closed: 0 };
  const client = fakeClient((hsdir) => (hsdir === 'r7' ? '' : 'HTTP/1.0 404 Not found\r\n\r\n'), log);
  const err = await fetchOnionDescriptor(client, address).catch((e: unknown) => e);
  assert.ok(err instanceof OnionServiceError, String(err));
  const hsdirs = log.paths.map((p) => p[2]);
  assert.equal(new Set(hsdirs).size, hsdirs.length, 'each HSDir once');
  assert.ok(log.paths.every((p) => p.length === 3 && new Set(p).size === 3), JSON.stringify(log.paths));
  const path = descriptorPath(blindPublicKey(parseOnionAddress(address).publicKey, onionRingView(client).period));
  assert.ok(log.requests.every((r) => r === `GET ${path} HTTP/1.0\r\n\r\n`));
  assert.equal(log.closed, log.requests.length);
  if (hsdirs.includes('r7')) {
    assert.equal(err.code, 'E_ONION_DESC_NOT_FOUND', 'one HSDir failed, the others said 404');
    assert.ok(err.attempts.some((a) => a.outcome === 'failed'));
  } else {
    assert.equal(err.code, 'E_ONION_DESC_NOT_FOUND');
    assert.ok(err.attempts.every((a) => a.outcome === 'not-found'));
  }
  assert.equal(err.attempts.length, 6, 'two replicas × three');
});

test('503 everywhere: E_ONION_DESC_FETCH; garbage with 200: E_ONION_DESC_INVALID with the decoder error as cause', async () => {
  const log = { paths: [] as string[][], requests: [] as string[], closed: 0 };
  const refused = await fetchOnionDescriptor(fakeClient(() => 'HTTP/1.0 503 Rejecting single hop HS v3 descriptor request\r\n\r\n', log), address).catch((e: unknown) => e);
  assert.ok(refused instanceof OnionServiceError && refused.code === 'E_ONION_DESC_FETCH', String(refused));
  assert.match(refused.message, /503/);
  const bad = await fetchOnionDescriptor(fakeClient(() => 'HTTP/1.0 200 OK\r\n\r\nhs-descriptor 3\nnonsense\n', log), address).catch((e: unknown) => e);
  assert.ok(bad instanceof OnionServiceError && bad.code === 'E_ONION_DESC_INVALID', String(bad));
  assert.ok(bad.cause instanceof DecodeError, String(bad.cause));
});

test('bounded: a silent HSDir costs hsdirTimeoutMs, the lookup stops at timeoutMs (TimeoutError) or at the signal (AbortError)', async () => {
  const log = { paths: [] as string[][], requests: [] as string[], closed: 0 };
  // Silent, but honouring the signal as TorCircuit.directory does.
  const silent = fakeClient((_h, _r, signal) => new Promise<string>((_resolve, reject) => signal?.addEventListener('abort', () => reject(new AbortError('the answer', signal.reason)), { once: true })), log);
  const started = performance.now();
  const timedOut = await fetchOnionDescriptor(silent, address, { timeoutMs: 300, hsdirTimeoutMs: 100 }).catch((e: unknown) => e);
  const ms = performance.now() - started;
  assert.ok(timedOut instanceof TimeoutError, String(timedOut));
  assert.ok(ms >= 280 && ms < 1500, `${ms} ms`);
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 50);
  const aborted = await fetchOnionDescriptor(silent, address, { signal: controller.signal, hsdirTimeoutMs: 10_000 }).catch((e: unknown) => e);
  assert.ok(aborted instanceof AbortError, String(aborted));
  await assert.rejects(fetchOnionDescriptor(silent, 'not-an-onion.onion'), (e: unknown) => e instanceof Error && (e as { code?: string }).code === 'E_BAD_ARGUMENT');
});

test('a descriptor found after the period ends by the clock, before the consensus moves on, is cached; the next period asks again', async () => {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const seed = new Uint8Array(Buffer.from(privateKey.export({ format: 'jwk' }).d!, 'base64url'));
  const identity = ed25519RawPublicKey(publicKey);
  const onion = encodeOnionAddress(identity);
  const log = { paths: [] as string[][], requests: [] as string[], closed: 0 };
  let text = '';
  const client = fakeClient(() => `HTTP/1.0 200 OK\r\n\r\n${text}`, log);
  const { period } = onionRingView(client);
  const blinded = blindedSigner(seed, identity, period);
  const signing = generateKeyPairSync('ed25519');
  const late = new Date(period.end.getTime() + 20_000);
  text = encodeHsDescriptor({
    blinded,
    signingKey: signing.privateKey,
    signingPublicKey: ed25519RawPublicKey(signing.publicKey),
    subcredential: subcredential(identity, blinded.publicKey),
    introPoints: [{ linkSpecifiers: [{ type: 0, data: new Uint8Array([127, 0, 0, 1, 0x3a, 0x98]) }, { type: 2, data: new Uint8Array(20).fill(7) }], onionKey: key32(), authKey: key32(), encKey: key32() }],
    now: late,
    random: (n) => new Uint8Array(n).fill(9),
  });
  const found = await fetchOnionDescriptor(client, onion, { now: () => late });
  assert.equal(found.fromCache, false);
  assert.ok(found.expiresAt > late, `expires ${found.expiresAt.toISOString()}, after the fetch at ${late.toISOString()} (the period ended ${period.end.toISOString()})`);
  const again = await fetchOnionDescriptor(client, onion, { now: () => late });
  assert.equal(again.fromCache, true, 'the consensus is still in the period: the cached descriptor');
  assert.equal(log.requests.length, 1);
  // The next consensus is in the next period: another blinded key, another path, asked again.
  const va = period.end.getTime() + 10_000;
  Object.assign(client.consensus, { validAfter: new Date(va), freshUntil: new Date(va + 10_000), validUntil: new Date(va + 30_000) });
  assert.equal(onionRingView(client).period.number, period.number + 1);
  const next = await fetchOnionDescriptor(client, onion, { now: () => late }).catch((e: unknown) => e);
  assert.ok(log.requests.length > 1, 'the HSDirs are asked again');
  assert.notEqual(log.requests[1], log.requests[0]);
  assert.ok(next instanceof OnionServiceError && next.code === 'E_ONION_DESC_INVALID', `the old period's descriptor does not verify for the new blinded key: ${String(next)}`);
});
