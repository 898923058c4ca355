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
import { IntroduceAckMsg, RelayCommandHs } from '../../src/onion/cells.js';
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
