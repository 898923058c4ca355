/**
 * Unit: the test network's delay forwarder (src/testnet/delay.ts), on loopback sockets only.
 *
 * DelayLine alone (due times, the token bucket, EOF after the data, order); then the
 * forwarder: the one-way delay and the round trip measured with a timestamped echo
 * (±15 ms), a 20 MiB transfer through an echo intact by sha256 both ways, backpressure
 * (a target that does not read: the forwarder holds at most its bound and the sender
 * is stopped, then everything arrives), the rate limit within 20 %, half-close delayed
 * like data, a target that refuses, a taken port, and close() with bytes in flight
 * leaving no handle or descriptor behind. And the launcher's side of delayed links: the
 * port plan, the torrc's two ORPort lines, the description's fields, `orport testnet
 * --latency / --rate`.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import { parseTestnetArgs, summarize, testnetEnvironment } from '../../src/cli/testnet.js';
import { BadArgumentError } from '../../src/errors.js';
import { DESCRIPTION_FORMAT, parseTestnetDescription } from '../../src/testnet/description.js';
import { listenOrPort, planPorts, portUses } from '../../src/testnet/ports.js';
import { buildTorrc, torrcSafetyProblems, type TorrcNetwork } from '../../src/testnet/torrc.js';
import { PortInUseError } from '../../src/testnet/errors.js';
import { DelayForwarder, DelayLine } from '../../src/testnet/delay.js';
import { noLeaks } from '../support/leaks.js';

const MiB = 1024 * 1024;

async function listen(onConnection: (socket: Socket) => void): Promise<{ server: Server; port: number }> {
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    socket.on('error', () => undefined);
    onConnection(socket);
    // A peer that half-closes gets our end too (after the test's own 'end' handlers), so no socket stays half-open.
    socket.on('end', () => {
      if (!socket.writableEnded) socket.end();
    });
  });
  server.listen({ host: '127.0.0.1', port: 0 });
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port };
}

async function closeServer(server: Server): Promise<void> {
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

async function dial(port: number): Promise<Socket> {
  const socket = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
  socket.setNoDelay(true);
  await once(socket, 'connect');
  return socket;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
}

describe('DelayLine', () => {
  it('releases each chunk delayMs after it arrived, in order, and the EOF after the last byte', () => {
    const line = new DelayLine({ delayMs: 50 });
    line.push(Buffer.from('ab'), 0);
    line.push(Buffer.from('cd'), 10);
    line.end(20);
    assert.equal(line.queuedBytes, 4);
    assert.equal(line.nextAt(0), 50);
    assert.deepEqual(line.take(49), []);
    assert.deepEqual(line.take(50).map((b) => Buffer.from(b).toString()), ['ab']);
    assert.equal(line.nextAt(50), 60);
    assert.equal(line.endDue(65), false);
    assert.deepEqual(line.take(65).map((b) => Buffer.from(b).toString()), ['cd']);
    assert.equal(line.nextAt(65), 70);
    assert.equal(line.endDue(69), false);
    assert.equal(line.endDue(70), true);
    assert.throws(() => line.push(Buffer.from('x'), 71), /after end/);
  });

  it('with no delay and no rate, a chunk is due at once', () => {
    const line = new DelayLine({ delayMs: 0 });
    line.push(Buffer.from('x'), 5);
    assert.equal(line.nextAt(5), 5);
    assert.equal(line.take(5).length, 1);
    assert.equal(line.nextAt(5), undefined);
  });

  it('meters bytes by the token bucket: the burst at once, then the rate, splitting chunks', () => {
    const line = new DelayLine({ delayMs: 0, rateBytesPerSec: 100_000, burstBytes: 2000 });
    line.push(Buffer.alloc(10_000, 1), 0);
    const first = line.take(0);
    assert.equal(first.reduce((n, b) => n + b.length, 0), 2000);
    const next = line.nextAt(0);
    assert.ok(next !== undefined && next > 0 && next <= 11, `next piece after the quantum refills (${String(next)})`);
    let taken = 2000;
    let t = 0;
    while (line.queuedBytes > 0) {
      t = line.nextAt(t) ?? t;
      taken += line.take(t).reduce((n, b) => n + b.length, 0);
    }
    assert.equal(taken, 10_000);
    // 8,000 bytes after the burst at 100 kB/s: 80 ms.
    assert.ok(t >= 79 && t <= 81, `the last byte at ${t} ms`);
  });

  it('keeps bytes in order across partial takes', () => {
    const line = new DelayLine({ delayMs: 3, rateBytesPerSec: 50_000, burstBytes: 1500 });
    const sent = randomBytes(20_000);
    for (let i = 0, t = 0; i < sent.length; i += 777, t += 1) line.push(sent.subarray(i, i + 777), t);
    line.end(30);
    const got: Uint8Array[] = [];
    let t = 0;
    while (!line.endDue(t)) {
      t = Math.max(t, line.nextAt(t) ?? t);
      got.push(...line.take(t));
    }
    assert.ok(Buffer.concat(got).equals(sent));
  });

  it('refuses a bad delay or rate', () => {
    assert.throws(() => new DelayLine({ delayMs: -1 }), BadArgumentError);
    assert.throws(() => new DelayLine({ delayMs: Number.NaN }), BadArgumentError);
    assert.throws(() => new DelayLine({ delayMs: 0, rateBytesPerSec: 0 }), BadArgumentError);
  });
});

describe('DelayForwarder', () => {
  it('delays each direction by delayMs (timestamped echo: one way and round trip within ±15 ms)', async () => {
    await noLeaks(async () => {
      const arrivals = new Map<number, number>();
      const echo = await listen((socket) => {
        socket.on('data', (chunk: Buffer) => {
          const now = performance.now();
          for (let i = 0; i + 4 <= chunk.length; i += 4) arrivals.set(chunk.readUInt32BE(i), now);
          socket.write(chunk);
        });
        socket.on('end', () => socket.end());
      });
      const forwarder = await DelayForwarder.start({ listenPort: 0, targetPort: echo.port, delayMs: 50 });
      const socket = await dial(forwarder.port);
      const sentAt = new Map<number, number>();
      const oneWay: number[] = [];
      const roundTrip: number[] = [];
      let pending = Buffer.alloc(0);
      socket.on('data', (chunk: Buffer) => {
        const now = performance.now();
        pending = Buffer.concat([pending, chunk]);
        while (pending.length >= 4) {
          const seq = pending.readUInt32BE(0);
          pending = pending.subarray(4);
          const sent = sentAt.get(seq) ?? NaN;
          roundTrip.push(now - sent);
          oneWay.push((arrivals.get(seq) ?? NaN) - sent);
        }
      });
      for (let seq = 0; seq < 20; seq++) {
        const message = Buffer.alloc(4);
        message.writeUInt32BE(seq);
        sentAt.set(seq, performance.now());
        socket.write(message);
        await new Promise((r) => setTimeout(r, 25));
      }
      while (roundTrip.length < 20) await new Promise((r) => setTimeout(r, 10));
      socket.end();
      await once(socket, 'close');
      await forwarder.close();
      await closeServer(echo.server);
      assert.ok(Math.abs(median(oneWay) - 50) <= 15, `one-way median ${median(oneWay).toFixed(1)} ms (samples ${oneWay.map((v) => v.toFixed(0)).join(' ')})`);
      assert.ok(Math.abs(median(roundTrip) - 100) <= 15, `round-trip median ${median(roundTrip).toFixed(1)} ms (samples ${roundTrip.map((v) => v.toFixed(0)).join(' ')})`);
      assert.ok(Math.min(...oneWay) >= 50 - 15, `no byte early: min one-way ${Math.min(...oneWay).toFixed(1)} ms`);
      assert.ok(Math.min(...roundTrip) >= 100 - 15, `min round trip ${Math.min(...roundTrip).toFixed(1)} ms`);
    });
  });

  it('carries 20 MiB through an echo with bytes and order intact (sha256 both ways)', async () => {
    await noLeaks(async () => {
      const echo = await listen((socket) => {
        socket.pipe(socket);
      });
      const forwarder = await DelayForwarder.start({ listenPort: 0, targetPort: echo.port, delayMs: 10 });
      const socket = await dial(forwarder.port);
      const data = randomBytes(20 * MiB);
      const sentHash = createHash('sha256').update(data).digest('hex');
      const gotHash = createHash('sha256');
      let got = 0;
      socket.on('data', (chunk: Buffer) => {
        gotHash.update(chunk);
        got += chunk.length;
      });
      const ended = once(socket, 'end');
      // Writes of random sizes, so chunk boundaries fall anywhere.
      for (let i = 0; i < data.length; ) {
        const n = 1 + Math.floor(Math.random() * 200_000);
        if (!socket.write(data.subarray(i, i + n))) await once(socket, 'drain');
        i += n;
      }
      socket.end();
      await ended;
      await once(socket, 'close');
      assert.equal(got, data.length);
      assert.equal(gotHash.digest('hex'), sentHash);
      const stats = forwarder.stats();
      assert.equal(stats.bytesToTarget, data.length);
      assert.equal(stats.bytesFromTarget, data.length);
      await forwarder.close();
      await closeServer(echo.server);
    });
  });

  it('backpressure: a target that does not read stops the sender, the forwarder holds at most its bound, then everything arrives', async () => {
    await noLeaks(async () => {
      const bound = 256 * 1024;
      let target: Socket | undefined;
      const gotHash = createHash('sha256');
      let got = 0;
      const sink = await listen((socket) => {
        target = socket;
        socket.pause();
        socket.on('data', (chunk: Buffer) => {
          gotHash.update(chunk);
          got += chunk.length;
        });
      });
      const forwarder = await DelayForwarder.start({ listenPort: 0, targetPort: sink.port, delayMs: 5, maxBufferedBytes: bound });
      const socket = await dial(forwarder.port);
      const data = randomBytes(64 * MiB);
      let written = 0;
      let blocked = false;
      const writer = (async () => {
        for (let i = 0; i < data.length; i += 64 * 1024) {
          written = i;
          if (!socket.write(data.subarray(i, i + 64 * 1024))) {
            blocked = true;
            await once(socket, 'drain');
          }
        }
        written = data.length;
        socket.end();
      })();
      await new Promise((r) => setTimeout(r, 1500));
      const held = forwarder.stats();
      assert.ok(blocked, 'the sender saw write() return false');
      assert.ok(written < data.length, `the sender is stopped (${written} of ${data.length} bytes written)`);
      assert.ok(held.peakBufferedBytes <= bound + 128 * 1024, `peak buffered ${held.peakBufferedBytes} within ${bound} + one read`);
      assert.ok(held.bufferedBytes <= bound + 128 * 1024, `buffered ${held.bufferedBytes}`);
      target?.resume();
      await writer;
      while (got < data.length) await new Promise((r) => setTimeout(r, 20));
      assert.equal(gotHash.digest('hex'), createHash('sha256').update(data).digest('hex'));
      assert.ok(forwarder.stats().peakBufferedBytes <= bound + 128 * 1024);
      socket.destroy();
      await forwarder.close();
      await closeServer(sink.server);
    });
  });

  it('limits the rate per direction within 20 %', async () => {
    await noLeaks(async () => {
      const rate = 2 * MiB;
      const total = 4 * MiB;
      let first = NaN;
      let last = NaN;
      let got = 0;
      const sink = await listen((socket) => {
        socket.on('data', (chunk: Buffer) => {
          const now = performance.now();
          if (Number.isNaN(first)) first = now;
          got += chunk.length;
          if (got >= total) last = now;
        });
      });
      const forwarder = await DelayForwarder.start({ listenPort: 0, targetPort: sink.port, delayMs: 0, rateBytesPerSec: rate });
      const socket = await dial(forwarder.port);
      const t0 = performance.now();
      const block = Buffer.alloc(64 * 1024, 7);
      for (let i = 0; i < total; i += block.length) if (!socket.write(block)) await once(socket, 'drain');
      while (got < total) await new Promise((r) => setTimeout(r, 20));
      const seconds = (last - t0) / 1000;
      const measured = total / seconds;
      assert.ok(Math.abs(measured - rate) <= 0.2 * rate, `${(measured / MiB).toFixed(2)} MiB/s for a limit of ${rate / MiB} MiB/s (${seconds.toFixed(2)} s, first byte after ${(first - t0).toFixed(0)} ms)`);
      socket.destroy();
      await forwarder.close();
      await closeServer(sink.server);
    });
  });

  it('delays a half-close like data, and closes both sides when both are done', async () => {
    await noLeaks(async () => {
      let endAt = NaN;
      const server = await listen((socket) => {
        socket.resume();
        socket.on('end', () => {
          endAt = performance.now();
          socket.end('bye');
        });
      });
      const forwarder = await DelayForwarder.start({ listenPort: 0, targetPort: server.port, delayMs: 40 });
      const socket = await dial(forwarder.port);
      let reply = '';
      socket.on('data', (chunk: Buffer) => (reply += chunk.toString()));
      const t0 = performance.now();
      socket.end();
      await once(socket, 'end');
      const back = performance.now() - t0;
      await once(socket, 'close');
      assert.equal(reply, 'bye');
      assert.ok(endAt - t0 >= 40 - 15 && endAt - t0 <= 40 + 40, `EOF reached the target after ${(endAt - t0).toFixed(1)} ms`);
      assert.ok(back >= 80 - 15, `the answer and its EOF came back after ${back.toFixed(1)} ms`);
      while (forwarder.stats().open > 0) await new Promise((r) => setTimeout(r, 10));
      await forwarder.close();
      await closeServer(server.server);
    });
  });

  it('closes the accepted socket when the target refuses, and refuses a taken port with PortInUseError', async () => {
    await noLeaks(async () => {
      const free = await listen(() => undefined);
      await closeServer(free.server); // nothing listens on free.port now
      const forwarder = await DelayForwarder.start({ listenPort: 0, targetPort: free.port, delayMs: 10 });
      const socket = connect({ host: '127.0.0.1', port: forwarder.port });
      socket.on('error', () => undefined);
      await once(socket, 'close');
      while (forwarder.stats().open > 0) await new Promise((r) => setTimeout(r, 10));
      assert.equal(forwarder.stats().connectFailures, 1);
      await assert.rejects(DelayForwarder.start({ listenPort: forwarder.port, targetPort: free.port, delayMs: 0 }), PortInUseError);
      await forwarder.close();
    });
  });

  it('close() with bytes in flight and timers pending leaves no socket, server, timer or descriptor', async () => {
    await noLeaks(async () => {
      const echo = await listen((socket) => socket.pipe(socket));
      const forwarder = await DelayForwarder.start({ listenPort: 0, targetPort: echo.port, delayMs: 300, rateBytesPerSec: 100_000 });
      // Not half-open: a client ends its side when the forwarder's close reaches it.
      const sockets = await Promise.all(
        [1, 2, 3].map(async () => {
          const s = connect({ host: '127.0.0.1', port: forwarder.port });
          await once(s, 'connect');
          return s;
        }),
      );
      const closed = sockets.map((s) => {
        s.on('error', () => undefined);
        s.write(randomBytes(512 * 1024));
        return once(s, 'close');
      });
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(forwarder.stats().open, 3);
      assert.ok(forwarder.stats().bufferedBytes > 0, 'bytes are held');
      await forwarder.close();
      assert.equal(forwarder.stats().open, 0);
      await Promise.all(closed);
      await forwarder.close(); // idempotent
      await closeServer(echo.server);
    });
  });
});

describe('delayed links in the launcher', () => {
  it('ports: tor listens at base+400+i behind the advertised ORPort; every port is unique', () => {
    const plan = planPorts(20000, 9, true, true);
    assert.deepEqual(plan.relays[0], { orPort: 20000, realOrPort: 20400, dirPort: 20100, controlPort: 20200 });
    assert.equal(listenOrPort(plan.relays[8]!), 20408);
    assert.equal(listenOrPort(planPorts(20000, 9, true).relays[8]!), 20008);
    const uses = portUses(plan, ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i']);
    assert.equal(new Set(uses.map((u) => u.port)).size, uses.length);
    assert.ok(uses.some((u) => u.port === 20400 && /behind the forwarder/.test(u.purpose)));
    assert.throws(() => planPorts(65100, 9, false, true), BadArgumentError);
  });

  it('torrc: the advertised ORPort NoListen, the real one NoAdvertise, and still safe', () => {
    const net: TorrcNetwork = {
      dirAuthorityLines: ['DirAuthority auth0 orport=20000 no-v2 v3ident=' + 'A'.repeat(40) + ' 127.0.0.1:20100 ' + 'B'.repeat(40)],
      resolvConfPath: '/r', emptyGeoipPath: '/g', ownerPid: 1, logLevel: 'notice', votingStartOffsetSec: 0, initialVotingIntervalSec: 5, votingIntervalSec: 10, exitPolicy: 'wide',
    };
    const torrc = buildTorrc({ nick: 'relay0', role: 'relay', dataDir: '/d', relayPorts: planPorts(20000, 4, false, true).relays[3] }, net);
    const orPorts = torrc.split('\n').filter((l) => l.startsWith('ORPort'));
    assert.deepEqual(orPorts, ['ORPort 127.0.0.1:20003 NoListen', 'ORPort 127.0.0.1:20403 NoAdvertise']);
    assert.deepEqual(torrcSafetyProblems(torrc), []);
    const plain = buildTorrc({ nick: 'relay0', role: 'relay', dataDir: '/d', relayPorts: planPorts(20000, 4, false).relays[3] }, net);
    assert.deepEqual(plain.split('\n').filter((l) => l.startsWith('ORPort')), ['ORPort 127.0.0.1:20003']);
  });

  it('description: latency, rate and both ports are read; an older description reads as no delay', () => {
    const relay = { nick: 'relay0', role: 'relay', pid: 1, dataDir: '/d', torrcPath: '/d/t', logPath: '/d/n', detailLogPath: null, controlPort: 20200, orPort: 20000, dirPort: 20100, fingerprint: 'C'.repeat(40), ed25519: 'A'.repeat(43), v3ident: null, socksPort: null };
    const base = {
      format: DESCRIPTION_FORMAT, dir: '/t', jsonPath: '/t/network.json', createdAt: 'x', torVersion: '0.4.9', netns: 'net:[1]', ownerPid: 1, basePort: 20000,
      nodes: [relay], http: { url: 'http://127.0.0.1:1/file', port: 1, fileBytes: 1, fileSha256: 'c'.repeat(64) },
      dirAuthorityLines: [], dirAuthorityFile: '/t/d', networkFile: '/t/n', socksPort: null, timings: {},
    };
    const old = parseTestnetDescription(JSON.stringify(base));
    assert.equal(old.latencyMs, 0);
    assert.equal(old.rateBytesPerSec, null);
    assert.equal(old.nodes[0]?.realOrPort, 20000);
    const delayed = parseTestnetDescription(JSON.stringify({ ...base, latencyMs: 50, rateBytesPerSec: 1_000_000, nodes: [{ ...relay, realOrPort: 20400 }] }));
    assert.equal(delayed.latencyMs, 50);
    assert.equal(delayed.rateBytesPerSec, 1_000_000);
    assert.equal(delayed.nodes[0]?.realOrPort, 20400);
    assert.throws(() => parseTestnetDescription(JSON.stringify({ ...base, latencyMs: -1 })), /latencyMs/);
    assert.throws(() => parseTestnetDescription(JSON.stringify({ ...base, nodes: [{ ...relay, realOrPort: 0 }] })), /realOrPort/);
    const summary = summarize({ ...delayed, timings: { prepareMs: 1, firstConsensusMs: 1, fullConsensusMs: 1, settledMs: 1, clientBootstrappedMs: null, totalMs: 1, keysFromCache: true } });
    assert.match(summary, /50 ms one way \(100 ms round trip\), rate 1000000 bytes\/s/);
    assert.match(summary, /relay0 +relay +20000 +20400 +20100/);
    assert.equal(testnetEnvironment(delayed).ORPORT_TESTNET_LATENCY_MS, '50');
    assert.equal(testnetEnvironment(delayed).ORPORT_TESTNET_RATE, '1000000');
    assert.equal(testnetEnvironment(old).ORPORT_TESTNET_LATENCY_MS, undefined);
  });

  it('orport testnet --latency MS --rate BYTES', () => {
    const o = parseTestnetArgs(['--latency', '50', '--rate', '2M']);
    assert.equal(o.latencyMs, 50);
    assert.equal(o.rateBytesPerSec, 2 * MiB);
    assert.equal(parseTestnetArgs([]).latencyMs, 0);
    assert.equal(parseTestnetArgs([]).rateBytesPerSec, undefined);
    assert.throws(() => parseTestnetArgs(['--latency', '-5']), /--latency must be an integer/);
    assert.throws(() => parseTestnetArgs(['--rate', 'fast']), /--rate: cannot read/);
    assert.throws(() => parseTestnetArgs(['--rate', '10']), /at least 1024/);
    assert.equal(parseTestnetArgs(['--consensus-params', 'tor-defaults']).consensusParams, 'tor-defaults');
    assert.throws(() => parseTestnetArgs(['--consensus-params', 'KIST']), /expected k=INTEGER pairs/);
  });
});
