/**
 * Onion-service connection fault rows (issue 14): a TorClient bootstrapped on fake relays
 * (src/testing/fakeonion: every relay can be a rendezvous point or an introduction point,
 * three are also the authorities) and an in-process onion service whose intro points are
 * three of them; the descriptor object is handed to the connection directly (no HSDir).
 * Each row scripts one misbehaviour (an intro point that NACKs or stays silent, a
 * rendezvous point that never completes, a RENDEZVOUS2 with a wrong AUTH or from the hop
 * before the RP) and checks:
 *
 *   - the outcome: the typed error (class, code) — or the retry tor makes (the next intro
 *     point, same rendezvous circuit) and the bytes that then flow;
 *   - that it came within the configured timeouts (no wall-clock assertion beyond them);
 *   - that every circuit the attempt made is closed (the fake relays see no circuit open),
 *     and nothing leaked (handles, file descriptors, abort listeners);
 *   - that the client broke no rule the fake relays enforce (violations) and no hook threw.
 *
 * The first rows drive the fake roles with the client's circuit primitives by hand
 * (ESTABLISH_RENDEZVOUS, INTRODUCE1 with hs-ntor, RENDEZVOUS2, the virtual hop), so the
 * fake itself is checked against the protocol as the spec's client runs it.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { getEventListeners } from 'node:events';
import { TorClient } from '../../src/client/torclient.js';
import type { TorCircuit } from '../../src/client/torcircuit.js';
import type { TorStream } from '../../src/client/stream.js';
import { concatBytes } from '../../src/codec/bytes.js';
import { AbortError, HandshakeError, OnionServiceError, OrportError, ProtocolError, StreamClosedError, TimeoutError } from '../../src/errors.js';
import { IntroduceAckMsg, RelayCommandHs } from '../../src/onion/cells.js';
import { openOnionCircuit } from '../../src/onion/rendezvous.js';
import { decodeHsDescriptor, type HsIntroductionPoint } from '../../src/onion/descriptor.js';
import { encodeIntroduce1Header, encodeIntroducePlaintext, hsNtorClientFinish, hsNtorClientIntroduce } from '../../src/onion/hsntor.js';
import { buildCertChain, type GeneratedChain } from '../../src/testing/certchain.js';
import { linkSpecifiersOf, startFakeOnionNetwork, type FakeOnionNetwork, type FakeOnionService } from '../../src/testing/fakeonion.js';
import type { FakeRelay } from '../../src/testing/fakerelay.js';
import { noLeaks } from '../support/leaks.js';
import { failure, type Failure } from '../support/failure.js';

const RELAYS = 8;
const TIMEOUT = 3000;
const signal = new AbortController().signal;
const random = (n: number) => new Uint8Array(randomBytes(n));

let chains: GeneratedChain[];
before(() => {
  chains = Array.from({ length: RELAYS }, () => buildCertChain());
});

interface World {
  net: FakeOnionNetwork;
  client: TorClient;
  service: FakeOnionService;
  /** The service's intro points (relays 5, 6, 7). */
  ips: FakeRelay[];
  echoPort: number;
}

/** The fake network, an echo server behind the service's port 80, a bootstrapped client; all inside a leak check. */
async function withWorld(fn: (w: World) => Promise<void>, serviceOptions: { rendezvousDelayMs?: number; ignoreIntroduce2?: boolean } = {}): Promise<void> {
  await noLeaks(async () => {
    const sockets = new Set<Socket>();
    const echo: Server = createServer((s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => undefined);
      s.pipe(s);
    });
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
    const echoPort = (echo.address() as { port: number }).port;
    const net = await startFakeOnionNetwork({ relays: RELAYS, chains });
    let client: TorClient | undefined;
    try {
      const ips = net.relays.slice(5, 8);
      const service = await net.world.startService({ introPoints: ips, ports: { 80: echoPort }, chain: chains[0]!, ...serviceOptions });
      client = await TorClient.create({ network: net.network, refresh: false, timeoutMs: 10_000, signal });
      await fn({ net, client, service, ips, echoPort });
    } finally {
      await client?.close();
      await net.close();
      for (const s of sockets) s.destroy();
      await new Promise((r) => echo.close(r));
    }
    assert.equal(getEventListeners(signal, 'abort').length, 0, 'every wait removed its abort listener');
    for (const r of [...net.relays, ...net.world.services.map((s) => s.relay)]) {
      assert.deepEqual(r.errors, [], `${r.nickname}'s hooks ran without exceptions`);
      assert.deepEqual(r.violations, [], `the client broke no rule ${r.nickname} checks`);
    }
  });
}

/** The consensus entry of a fake relay. */
function info(client: TorClient, relay: FakeRelay) {
  const found = client.consensus.relays.find((r) => r.rsa.toUpperCase() === relay.identity.rsa.toUpperCase());
  assert.ok(found, `${relay.nickname} is in the consensus`);
  return found;
}

/** 20 KB through the stream and back (the echo server behind the service). */
async function echoes(stream: TorStream): Promise<void> {
  const sent = random(20_000);
  const got: Buffer[] = [];
  let size = 0;
  const done = new Promise<void>((resolve, reject) => {
    stream.on('data', (c: Buffer) => {
      got.push(c);
      if ((size += c.length) >= sent.length) resolve();
    });
    stream.once('error', reject);
  });
  stream.write(sent);
  await done;
  assert.deepEqual(new Uint8Array(Buffer.concat(got)), sent, 'the bytes came back through the virtual hop');
}

/** No circuit is open at any fake relay (the client closed every one it made). */
async function allClosed(net: FakeOnionNetwork): Promise<void> {
  for (let i = 0; i < 50; i++) {
    const open = net.relays.flatMap((r) => [...r.connections].flatMap((c) => [...c.circuits.values()].map((x) => `${r.nickname} circuit ${x.id}`)));
    if (open.length === 0) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  const open = net.relays.flatMap((r) => [...r.connections].flatMap((c) => [...c.circuits.values()].map((x) => `${r.nickname} circuit ${x.id}`)));
  assert.deepEqual(open, [], 'every circuit is closed');
}

// ---------------------------------------------------------------------------------
// The fake roles, driven by hand

/** The client's half of a rendezvous by hand: rend circuit to `rp`, intro circuit to `ip`, hs-ntor, the virtual hop. */
async function rendezvousByHand(w: World, rp: FakeRelay, ip: FakeRelay): Promise<{ rend: TorCircuit; ack: number }> {
  const [g, m1, m2] = w.net.relays.filter((r) => r !== rp && r !== ip).slice(0, 3) as [FakeRelay, FakeRelay, FakeRelay];
  const rend = await w.client.buildCircuit({ path: [info(w.client, g), info(w.client, m1), info(w.client, rp)], timeoutMs: TIMEOUT, signal });
  const cookie = random(20);
  rend.sendCircuitMessage(RelayCommandHs.ESTABLISH_RENDEZVOUS, cookie);
  await rend.nextCircuitMessage([RelayCommandHs.RENDEZVOUS_ESTABLISHED], { timeoutMs: TIMEOUT, signal });
  const intro = await w.client.buildCircuit({ path: [info(w.client, g), info(w.client, m1), info(w.client, m2), info(w.client, ip)], timeoutMs: TIMEOUT, signal });
  const point = w.service.descriptor().inner.introductionPoints.find((p) => Buffer.from(p.linkSpecifiers[1]!.data).toString('hex').toUpperCase() === ip.identity.rsa.toUpperCase())!;
  const header = encodeIntroduce1Header(point.authKey);
  const plaintext = encodeIntroducePlaintext({ cookie, onionKey: rp.onionKey.public, linkSpecifiers: linkSpecifiersOf(rp) }, header.length);
  const { state, encrypted } = hsNtorClientIntroduce({ authKey: point.authKey, encKey: point.encKey, subcredential: w.service.subcredential }, header, plaintext, random);
  intro.sendCircuitMessage(RelayCommandHs.INTRODUCE1, concatBytes([header, encrypted]));
  const ack = IntroduceAckMsg.decode((await intro.nextCircuitMessage([RelayCommandHs.INTRODUCE_ACK], { timeoutMs: TIMEOUT, signal })).body).status;
  await intro.close();
  if (ack !== 0) return { rend, ack };
  const r2 = await rend.nextCircuitMessage([RelayCommandHs.RENDEZVOUS2], { timeoutMs: TIMEOUT, signal });
  rend.addVirtualHop(hsNtorClientFinish(state, r2.body.subarray(0, 64), `circuit ${rend.id}`), w.service.address);
  return { rend, ack };
}

test('fake onion roles, by hand: ESTABLISH_RENDEZVOUS, INTRODUCE1 → ACK 0, RENDEZVOUS2, then BEGIN/DATA both ways through the virtual hop', async () => {
  await withWorld(async (w) => {
    const rp = w.net.relays[4]!;
    const { rend, ack } = await rendezvousByHand(w, rp, w.ips[0]!);
    assert.equal(ack, 0);
    const stream = await rend.openStream('', 80, { timeoutMs: TIMEOUT, signal });
    await echoes(stream);
    stream.destroy();
    await rend.close();
    await allClosed(w.net);
    const events = w.net.world.events.map((e) => `${e.relay}:${e.event}`);
    assert.deepEqual(events, [
      `${rp.nickname}:ESTABLISH_RENDEZVOUS`,
      `${rp.nickname}:RENDEZVOUS_ESTABLISHED`,
      `${w.ips[0]!.nickname}:INTRODUCE1`,
      `${w.ips[0]!.nickname}:INTRODUCE2`,
      `${w.ips[0]!.nickname}:INTRODUCE_ACK`,
      `${rp.nickname}:RENDEZVOUS1`,
      `${rp.nickname}:RENDEZVOUS2`,
      'onionsvc:BEGIN',
    ]);
    assert.equal(w.service.rendezvousCount, 1);
    assert.deepEqual(w.service.errors, []);
  });
});

test('fake onion roles, by hand: a NACKing intro point answers INTRODUCE_ACK with its status and the service hears nothing', async () => {
  await withWorld(async (w) => {
    w.net.world.roles.set(w.ips[0]!, { intro: { nack: 2 } });
    const { rend, ack } = await rendezvousByHand(w, w.net.relays[4]!, w.ips[0]!);
    assert.equal(ack, 2);
    assert.equal(w.service.rendezvousCount, 0);
    assert.equal(w.net.world.pendingRendezvous, 1, 'the rendezvous circuit still waits at the RP');
    await rend.close();
    await allClosed(w.net);
  });
});

test('fake onion roles, by hand: an INTRODUCE1 under an auth key the intro point does not know gets status 1', async () => {
  await withWorld(async (w) => {
    // ips[0]'s descriptor entry, sent to ips[1]: not its auth key.
    const rp = w.net.relays[4]!;
    const [g, m1, m2] = w.net.relays.slice(0, 3) as [FakeRelay, FakeRelay, FakeRelay];
    const intro = await w.client.buildCircuit({ path: [info(w.client, g), info(w.client, m1), info(w.client, m2), info(w.client, w.ips[1]!)], timeoutMs: TIMEOUT, signal });
    const point = w.service.descriptor([w.ips[0]!]).inner.introductionPoints[0]!;
    const header = encodeIntroduce1Header(point.authKey);
    const plaintext = encodeIntroducePlaintext({ cookie: random(20), onionKey: rp.onionKey.public, linkSpecifiers: linkSpecifiersOf(rp) }, header.length);
    const { encrypted } = hsNtorClientIntroduce({ authKey: point.authKey, encKey: point.encKey, subcredential: w.service.subcredential }, header, plaintext, random);
    intro.sendCircuitMessage(RelayCommandHs.INTRODUCE1, concatBytes([header, encrypted]));
    const ack = IntroduceAckMsg.decode((await intro.nextCircuitMessage([RelayCommandHs.INTRODUCE_ACK], { timeoutMs: TIMEOUT, signal })).body);
    assert.equal(ack.status, 1);
    await intro.close();
    await allClosed(w.net);
  });
});

test('fake onion roles enforce tor\'s rules: ESTABLISH_RENDEZVOUS on a one-hop circuit is dropped, a 19-byte cookie closes the circuit', async () => {
  await withWorld(async (w) => {
    const rp = w.net.relays[4]!;
    const one = await w.client.buildCircuit({ path: [info(w.client, rp)], timeoutMs: TIMEOUT, signal });
    one.sendCircuitMessage(RelayCommandHs.ESTABLISH_RENDEZVOUS, random(20));
    const silent = await failure(() => one.nextCircuitMessage([RelayCommandHs.RENDEZVOUS_ESTABLISHED], { timeoutMs: 300, signal }));
    assert.equal(silent.error.code, 'E_TIMEOUT', 'no answer on a one-hop circuit');
    assert.match(rp.violations.join('\n'), /one-hop circuit/);
    rp.violations.length = 0;
    await one.close();
    const three = await w.client.buildCircuit({ path: [info(w.client, w.net.relays[0]!), info(w.client, w.net.relays[1]!), info(w.client, rp)], timeoutMs: TIMEOUT, signal });
    three.sendCircuitMessage(RelayCommandHs.ESTABLISH_RENDEZVOUS, random(19));
    const closed = await failure(() => three.nextCircuitMessage([RelayCommandHs.RENDEZVOUS_ESTABLISHED], { timeoutMs: TIMEOUT, signal }));
    assert.notEqual(closed.error.code, 'E_TIMEOUT', `the circuit was closed: ${closed.error.message}`);
    assert.match(rp.violations.join('\n'), /19 bytes/);
    rp.violations.length = 0;
    await three.close();
    await allClosed(w.net);
  });
});

// ---------------------------------------------------------------------------------
// openOnionCircuit (onion/rendezvous) against scripted faults

const INTRO_TIMEOUT = 800;
const REND_TIMEOUT = 1200;
const options = { timeoutMs: 8000, introTimeoutMs: INTRO_TIMEOUT, rendTimeoutMs: REND_TIMEOUT, signal } as const;

/** Circuits open at the fake relays' first hops (one per circuit the client holds). */
function openCircuitCount(net: FakeOnionNetwork): number {
  return net.relays.reduce((n, r) => n + [...r.connections].reduce((m, c) => m + c.circuits.size, 0), 0);
}

/** Waits until exactly `n` circuits are open at the fake relays (DESTROY cells travel). */
async function circuitsOpen(net: FakeOnionNetwork, n: number): Promise<void> {
  for (let i = 0; i < 50 && openCircuitCount(net) !== n; i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(openCircuitCount(net), n, `${n} circuit(s) open at the fake relays`);
}

function introEvents(w: World): string[] {
  return w.net.world.events.filter((e) => e.event === 'INTRODUCE1' || e.event === 'INTRODUCE_ACK').map((e) => `${e.relay}:${e.event}${e.detail ? ` ${e.detail}` : ''}`);
}

/** An OnionServiceError with `code` for the service, within `bound` ms. */
function expectOnionError(f: Failure, code: string, w: World, bound: number): OnionServiceError {
  assert.ok(f.error instanceof OnionServiceError, `expected OnionServiceError ${code}, got ${f.error.name} (${f.error.code}): ${f.error.message}`);
  assert.equal(f.error.code, code, f.error.message);
  assert.equal(f.error.kind, 'onion');
  assert.equal(f.error.address.replace(/\.onion$/, ''), w.service.address.replace(/\.onion$/, ''));
  assert.ok(f.ms < bound, `failed after ${f.ms.toFixed(0)} ms, not within ${bound} ms`);
  return f.error;
}

test('openOnionCircuit: the happy path — a rendezvous circuit ending at the service, BEGIN/DATA both ways, the intro circuit closed', async () => {
  await withWorld(async (w) => {
    const circuit = await openOnionCircuit(w.client, w.service.target(), options);
    try {
      await circuitsOpen(w.net, 1); // the intro circuit is gone once acknowledged (tor closes it)
      assert.equal(circuit.hops.length, 4, 'G–M–RP + the virtual hop');
      assert.equal(circuit.hops[3]!.handshake, 'hs-ntor');
      const stream = await circuit.openStream('', 80, { timeoutMs: TIMEOUT, signal });
      await echoes(stream);
      const second = await circuit.openStream('', 80, { timeoutMs: TIMEOUT, signal });
      await echoes(second);
      stream.destroy();
      second.destroy();
    } finally {
      await circuit.close();
    }
    await allClosed(w.net);
    const rp = w.net.world.events.find((e) => e.event === 'ESTABLISH_RENDEZVOUS')!;
    assert.equal(rp.hop, 3, 'the rendezvous point is the third hop');
    const intro = w.net.world.events.find((e) => e.event === 'INTRODUCE1')!;
    assert.equal(intro.hop, 4, 'the intro point is the fourth hop');
    assert.equal(w.net.world.events.filter((e) => e.event === 'INTRODUCE1').length, 1);
    assert.equal(w.service.rendezvousCount, 1);
    assert.deepEqual(w.service.errors, []);
  });
});

test('openOnionCircuit: a port the service does not have — END DONE, the circuit stays usable', async () => {
  await withWorld(async (w) => {
    const circuit = await openOnionCircuit(w.client, w.service.target(), options);
    try {
      const f = await failure(() => circuit.openStream('', 81, { timeoutMs: TIMEOUT, signal }));
      assert.ok(f.error instanceof StreamClosedError, `${f.error.name}: ${f.error.message}`);
      assert.equal((f.error as StreamClosedError).reason, 'DONE');
      await echoes(await circuit.openStream('', 80, { timeoutMs: TIMEOUT, signal }));
    } finally {
      await circuit.close();
    }
    await allClosed(w.net);
  });
});

/**
 * openOnionCircuit succeeds after the first introduction failed: two INTRODUCE1s at two
 * intro points, one rendezvous circuit, the service reached and bytes both ways; every
 * circuit closed at the end. Resolves with how long openOnionCircuit took.
 */
async function retriedAndWorks(w: World): Promise<number> {
  const t0 = performance.now();
  const circuit = await openOnionCircuit(w.client, w.service.target(), options);
  const ms = performance.now() - t0;
  try {
    await echoes(await circuit.openStream('', 80, { timeoutMs: TIMEOUT, signal }));
  } finally {
    await circuit.close();
  }
  await allClosed(w.net);
  const intro = w.net.world.events.filter((e) => e.event === 'INTRODUCE1');
  assert.equal(intro.length, 2, 'two introductions');
  assert.notEqual(intro[0]!.relay, intro[1]!.relay, 'the second at another intro point');
  assert.equal(w.net.world.events.filter((e) => e.event === 'ESTABLISH_RENDEZVOUS').length, 1, 'one rendezvous circuit');
  assert.equal(w.service.rendezvousCount, 1);
  return ms;
}

for (const status of [1, 2]) {
  test(`openOnionCircuit: the first intro point NACKs (status ${status}) — INTRODUCE1 again at another intro point, same rendezvous, and it works`, async () => {
    await withWorld(async (w) => {
      w.net.world.nextIntroductions.push({ nack: status });
      await retriedAndWorks(w);
    });
  });
}

test('openOnionCircuit: RENDEZVOUS2 comes before INTRODUCE_ACK (the ACK 300 ms late) — kept, and the circuit works', async () => {
  await withWorld(async (w) => {
    w.net.world.nextIntroductions.push({ ackDelayMs: 300 });
    const circuit = await openOnionCircuit(w.client, w.service.target(), options);
    try {
      await echoes(await circuit.openStream('', 80, { timeoutMs: TIMEOUT, signal }));
    } finally {
      await circuit.close();
    }
    await allClosed(w.net);
    const order = w.net.world.events.map((e) => e.event).filter((e) => e === 'RENDEZVOUS2' || e === 'INTRODUCE_ACK');
    assert.deepEqual(order, ['RENDEZVOUS2', 'INTRODUCE_ACK'], 'the fake sent RENDEZVOUS2 first');
  });
});

test('openOnionCircuit: intro points no relay answers for (link specifiers of unknown relays) — failed attempts, then the reachable one; only those: E_ONION_INTRO_FAILED', async () => {
  await withWorld(async (w) => {
    const target = w.service.target();
    const unknown = (ip: HsIntroductionPoint): HsIntroductionPoint => ({ ...ip, linkSpecifiers: ip.linkSpecifiers.map((l) => (l.type === 2 ? { type: 2, data: random(20) } : l.type === 3 ? { type: 3, data: random(32) } : l)) });
    const [a, b, good] = target.descriptor.inner.introductionPoints as [HsIntroductionPoint, HsIntroductionPoint, HsIntroductionPoint];
    const withPoints = (points: HsIntroductionPoint[]) => ({ ...target, descriptor: { ...target.descriptor, inner: { ...target.descriptor.inner, introductionPoints: points } } });
    const f = await failure(() => openOnionCircuit(w.client, withPoints([unknown(a), unknown(b)]), options));
    const error = expectOnionError(f, 'E_ONION_INTRO_FAILED', w, options.timeoutMs);
    assert.deepEqual(error.introAttempts.map((x) => x.outcome), ['failed', 'failed'], 'both failed (their circuits could not be extended)');
    await allClosed(w.net);
    const circuit = await openOnionCircuit(w.client, withPoints([unknown(a), unknown(b), good]), options);
    try {
      await echoes(await circuit.openStream('', 80, { timeoutMs: TIMEOUT, signal }));
    } finally {
      await circuit.close();
    }
    await allClosed(w.net);
    assert.equal(w.service.rendezvousCount, 1);
  });
});

test('openOnionCircuit: every intro point NACKs — E_ONION_INTRO_FAILED naming each, every circuit closed', async () => {
  await withWorld(async (w) => {
    for (const [i, ip] of w.ips.entries()) w.net.world.roles.set(ip, { intro: { nack: 1 + (i % 2) } });
    const f = await failure(() => openOnionCircuit(w.client, w.service.target(), options));
    const error = expectOnionError(f, 'E_ONION_INTRO_FAILED', w, options.timeoutMs);
    assert.equal(error.introAttempts.length, w.ips.length, 'every intro point was tried');
    assert.ok(error.introAttempts.every((a) => a.outcome === 'nack'), JSON.stringify(error.introAttempts.map((a) => a.outcome)));
    assert.deepEqual(error.introAttempts.map((a) => a.status).sort(), w.ips.map((_, i) => 1 + (i % 2)).sort());
    assert.equal(new Set(w.net.world.events.filter((e) => e.event === 'INTRODUCE1').map((e) => e.relay)).size, w.ips.length, 'each intro point once');
    await allClosed(w.net);
    assert.equal(w.service.rendezvousCount, 0);
  });
});

test('openOnionCircuit: one intro point stays silent — after introTimeoutMs the next one, and it works', async () => {
  await withWorld(async (w) => {
    w.net.world.nextIntroductions.push('silent');
    const ms = await retriedAndWorks(w);
    assert.ok(ms >= INTRO_TIMEOUT - 5, `the silent intro point was waited for (${ms.toFixed(0)} ms)`);
  });
});

test('openOnionCircuit: every intro point silent — E_ONION_INTRO_TIMEOUT, every circuit closed', async () => {
  await withWorld(async (w) => {
    for (const ip of w.ips) w.net.world.roles.set(ip, { intro: 'silent' });
    const f = await failure(() => openOnionCircuit(w.client, w.service.target(), options));
    const error = expectOnionError(f, 'E_ONION_INTRO_TIMEOUT', w, options.timeoutMs + 500);
    assert.ok(error.introAttempts.every((a) => a.outcome === 'timeout'), JSON.stringify(error.introAttempts.map((a) => a.outcome)));
    await allClosed(w.net);
  });
});

test('openOnionCircuit: an intro point that closes the circuit on INTRODUCE1 — the next one, and it works', async () => {
  await withWorld(async (w) => {
    w.net.world.nextIntroductions.push('close');
    await retriedAndWorks(w);
  });
});

/** Rendezvous faults: how the service is set up, and how many RENDEZVOUS1s it then sent. */
const rendFaults: { name: string; setup: (w: World) => void; service?: { ignoreIntroduce2: boolean }; rendezvous1: number; introduced: boolean }[] = [
  { name: 'the service never answers INTRODUCE2 (no RENDEZVOUS2 comes)', setup: () => undefined, service: { ignoreIntroduce2: true }, rendezvous1: 0, introduced: true },
  { name: "the rendezvous point drops the service's RENDEZVOUS1", setup: (w) => w.net.relays.forEach((r) => w.net.world.roles.set(r, { rendezvous: 'no-rendezvous2' })), rendezvous1: 1, introduced: true },
  { name: 'the rendezvous point never sends RENDEZVOUS_ESTABLISHED', setup: (w) => w.net.relays.forEach((r) => w.net.world.roles.set(r, { rendezvous: 'no-established' })), rendezvous1: 0, introduced: false },
];

for (const row of rendFaults) {
  test(`openOnionCircuit: ${row.name} — E_ONION_REND_FAILED after rendTimeoutMs, every circuit closed`, async () => {
    await withWorld(async (w) => {
      row.setup(w);
      const f = await failure(() => openOnionCircuit(w.client, w.service.target(), options));
      const error = expectOnionError(f, 'E_ONION_REND_FAILED', w, 2 * REND_TIMEOUT + 750);
      assert.ok(f.ms >= REND_TIMEOUT - 5, `it waited rendTimeoutMs (${f.ms.toFixed(0)} ms)`);
      assert.ok(error.cause instanceof TimeoutError, `the cause is the rendezvous step's timeout: ${String(error.cause)}`);
      await allClosed(w.net);
      assert.equal(w.service.rendezvousCount, row.rendezvous1, "the service's RENDEZVOUS1s");
      const introduced = w.net.world.events.some((e) => e.event === 'INTRODUCE1');
      assert.equal(introduced, row.introduced, row.introduced ? 'the client introduced itself' : 'no INTRODUCE1 before RENDEZVOUS_ESTABLISHED');
    }, row.service ?? {});
  });
}

for (const fault of ['bad-auth', 'from-middle'] as const) {
  test(`openOnionCircuit: RENDEZVOUS2 ${fault === 'bad-auth' ? 'with a flipped AUTH byte' : 'from the hop before the rendezvous point'} — a typed error, the rendezvous circuit closed`, async () => {
    await withWorld(async (w) => {
      for (const r of w.net.relays) w.net.world.roles.set(r, { rendezvous: fault });
      const f = await failure(() => openOnionCircuit(w.client, w.service.target(), options));
      expectOnionError(f, 'E_ONION_REND_FAILED', w, options.timeoutMs);
      const cause = f.error.cause as OrportError | undefined;
      assert.ok(cause instanceof OrportError, `the cause says what failed: ${String(cause)}`);
      if (fault === 'bad-auth') assert.ok(cause instanceof HandshakeError && /AUTH/.test(cause.message), cause.message);
      else assert.ok(cause instanceof ProtocolError, `${cause.name}: ${cause.message}`);
      await allClosed(w.net);
    });
  });
}

test('openOnionCircuit: the caller aborts while the service is slow — AbortError, every circuit closed', async () => {
  await withWorld(async (w) => {
    const controller = new AbortController();
    const pending = openOnionCircuit(w.client, w.service.target(), { ...options, signal: controller.signal });
    for (let i = 0; i < 400 && !w.net.world.events.some((e) => e.event === 'INTRODUCE_ACK'); i++) await new Promise((r) => setTimeout(r, 5));
    assert.ok(w.net.world.events.some((e) => e.event === 'INTRODUCE_ACK'), 'the introduction was acknowledged before the abort');
    controller.abort();
    const f = await failure(() => pending);
    assert.ok(f.error instanceof AbortError, `${f.error.name}: ${f.error.message}`);
    await allClosed(w.net);
    assert.equal(getEventListeners(controller.signal, 'abort').length, 0, 'no abort listener left');
  }, { rendezvousDelayMs: 2000 });
});

// ---------------------------------------------------------------------------------
// client.connect('<56>.onion', port): the descriptor from the fake HSDirs (testing/hsdesc), then the rendezvous

test('testing/hsdesc: the fake service\'s descriptor text decodes with the client\'s decoder to the same intro points', () => {
  // Offline: the encoder against onion/descriptor's decodeHsDescriptor (blinded-key cert, signature, both MACs).
  return withWorld(async (w) => {
    const text = w.service.descriptorText();
    const decoded = decodeHsDescriptor(text, { blindedKey: w.service.blindedKey, subcredential: w.service.subcredential, now: new Date() });
    assert.deepEqual(decoded.inner.skipped, []);
    assert.deepEqual(decoded.inner.introductionPoints.map((p) => Buffer.from(p.authKey).toString('hex')), w.service.introPoints.map((p) => Buffer.from(p.authKey).toString('hex')));
    assert.deepEqual(decoded.inner.introductionPoints.map((p) => Buffer.from(p.encKey).toString('hex')), w.service.introPoints.map((p) => Buffer.from(p.encKeyPair.public).toString('hex')));
    assert.equal(decoded.outer.revisionCounter, 1n);
    const flipped = text.replace(/revision-counter 1\n/, 'revision-counter 2\n');
    assert.throws(() => decodeHsDescriptor(flipped, { blindedKey: w.service.blindedKey, subcredential: w.service.subcredential, now: new Date() }), /signature/);
  });
});

test('client.connect to the .onion: the descriptor from a fake HSDir, the rendezvous, 20 KB echoed; a second connect reuses the circuit', async () => {
  await withWorld(async (w) => {
    w.service.publish();
    const stream = await w.client.connect(w.service.address, 80, { timeoutMs: 8000, signal });
    await echoes(stream);
    const again = await w.client.connect(w.service.address, 80, { timeoutMs: 8000, signal });
    await echoes(again);
    stream.destroy();
    again.destroy();
    assert.equal(w.client.stats.onions.opened, 1, 'one rendezvous circuit');
    assert.equal(w.client.stats.onions.reused, 1, 'the second stream reused it');
    assert.equal(w.net.world.events.filter((e) => e.event === 'INTRODUCE1').length, 1);
  });
});

test('client.connect to the .onion: no HSDir has the descriptor — E_ONION_DESC_NOT_FOUND, every circuit closed', async () => {
  await withWorld(async (w) => {
    const f = await failure(() => w.client.connect(w.service.address, 80, { timeoutMs: 8000, signal }));
    assert.ok(f.error instanceof OnionServiceError && f.error.code === 'E_ONION_DESC_NOT_FOUND', `${f.error.name} ${f.error.code}: ${f.error.message}`);
    await allClosed(w.net);
    assert.equal(w.net.world.events.length, 0, 'no rendezvous was tried');
  });
});

test('client.connect to the .onion: every intro point NACKs — E_ONION_INTRO_FAILED; again with the descriptor cached: one refetch (tor refetches), then the same', async () => {
  await withWorld(async (w) => {
    w.service.publish();
    for (const ip of w.ips) w.net.world.roles.set(ip, { intro: { nack: 1 } });
    const first = await failure(() => w.client.connect(w.service.address, 80, { timeoutMs: 8000, signal }));
    assert.ok(first.error instanceof OnionServiceError && first.error.code === 'E_ONION_INTRO_FAILED', `${first.error.name} ${first.error.code}: ${first.error.message}`);
    assert.equal(w.net.world.descriptorFetches, 1);
    assert.equal(w.client.stats.onions.descriptorRefetches, 0, 'a descriptor just fetched is not fetched again');
    const second = await failure(() => w.client.connect(w.service.address, 80, { timeoutMs: 8000, signal }));
    assert.equal(second.error.code, 'E_ONION_INTRO_FAILED');
    assert.equal(w.client.stats.onions.descriptorRefetches, 1, 'the cached descriptor was fetched again once');
    assert.equal(w.net.world.descriptorFetches, 2);
    await allClosed(w.net);
  });
});

test('client.connect to the .onion: the service moved its intro points — the refetched descriptor lists the new ones, and it works', async () => {
  await withWorld(async (w) => {
    // The first descriptor lists ips[0] only, whose intro point then NACKs; the HSDirs then serve one listing ips[1], ips[2].
    w.service.publish(w.service.descriptorText([w.ips[0]!]));
    w.net.world.roles.set(w.ips[0]!, { intro: { nack: 1 } });
    const first = await failure(() => w.client.connect(w.service.address, 80, { timeoutMs: 8000, signal, isolation: 'a' }));
    assert.equal(first.error.code, 'E_ONION_INTRO_FAILED');
    w.service.publish(w.service.descriptorText([w.ips[1]!, w.ips[2]!]));
    const stream = await w.client.connect(w.service.address, 80, { timeoutMs: 8000, signal, isolation: 'b' });
    await echoes(stream);
    stream.destroy();
    assert.equal(w.client.stats.onions.descriptorRefetches, 1, 'the cached descriptor failed, and was fetched again');
    assert.equal(w.net.world.descriptorFetches, 2);
    const introduced = w.net.world.events.filter((e) => e.event === 'INTRODUCE1').map((e) => e.relay);
    assert.deepEqual(introduced.slice(0, 2), [w.ips[0]!.nickname, w.ips[0]!.nickname], 'ips[0] NACKed twice (fresh, then cached)');
    assert.ok([w.ips[1]!.nickname, w.ips[2]!.nickname].includes(introduced[2]!), 'then one of the new intro points');
  });
});
