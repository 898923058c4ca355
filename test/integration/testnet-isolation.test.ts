/**
 * Integration: the shared test network cannot reach anything but 127.0.0.1.
 *
 * From inside the runner's namespace: it is loopback-only; connecting to a
 * non-loopback address fails at once with ENETUNREACH (no route, so no packet
 * leaves); every torrc passes the safety check; every listening TCP socket is
 * on loopback; the logs so far name no non-loopback address (the runner scans
 * them again after the network has stopped). Each network test first checks
 * the namespace and skips rather than ever connecting from outside one.
 */
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { describe, it } from 'node:test';
import { checkIsolation, scanLogsForNonLoopback, formatFindings } from '../../src/testnet/index.js';
import { torrcSafetyProblems } from '../../src/testnet/torrc.js';
import { isolationSkipReason, loadTestnet, testnetSkipReason } from './testnet.js';

const skip = testnetSkipReason() || isolationSkipReason();

/** Resolves with the error code of a TCP connect attempt and how long it took. */
function tryConnect(host: string, port: number): Promise<{ code: string; ms: number }> {
  // Guard again right before any connect: never from outside an isolated namespace.
  assert.ok(checkIsolation().isolated, 'refusing to connect outside an isolated namespace');
  const t0 = performance.now();
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ code: 'TIMEOUT', ms: performance.now() - t0 });
    }, 3000);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ code: 'CONNECTED', ms: performance.now() - t0 });
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve({ code: err.code ?? err.message, ms: performance.now() - t0 });
    });
  });
}

/** Listening TCP sockets of this namespace (local address, hex as in /proc/net/tcp). */
function listeningSockets(file: string): string[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    .filter((fields) => fields[3] === '0A')
    .map((fields) => fields[1] ?? '');
}

describe('test network isolation', { skip }, () => {
  it('runs in the same loopback-only namespace as the network', () => {
    const status = checkIsolation();
    assert.deepEqual(status.problems, []);
    assert.deepEqual(status.interfaces.map((i) => i.name), ['lo']);
    assert.deepEqual(status.defaultRoutes, []);
    assert.equal(status.netns, loadTestnet().netns);
  });

  it('fails at once with ENETUNREACH when connecting to non-loopback addresses', async () => {
    for (const [host, port] of [['10.1.2.3', 80], ['192.0.2.1', 443], ['8.8.8.8', 53], ['2001:db8::1', 80]] as const) {
      const result = await tryConnect(host, port);
      assert.equal(result.code, 'ENETUNREACH', `${host}:${port} gave ${result.code}`);
      assert.ok(result.ms < 500, `${host}:${port} took ${result.ms.toFixed(0)} ms to fail`);
    }
  });

  it('fails with ENETUNREACH when sending UDP to a non-loopback address', async () => {
    assert.ok(checkIsolation().isolated);
    const socket = createSocket('udp4');
    try {
      const code = await new Promise<string>((resolve) => {
        socket.send(Buffer.from('x'), 53, '10.1.2.3', (err) => resolve((err as NodeJS.ErrnoException | null)?.code ?? 'SENT'));
      });
      assert.equal(code, 'ENETUNREACH');
    } finally {
      socket.close();
    }
  });

  it('still reaches 127.0.0.1 (the network itself)', async () => {
    const auth = loadTestnet().nodes.find((n) => n.role === 'authority');
    assert.ok(auth?.dirPort);
    assert.equal((await tryConnect('127.0.0.1', auth.dirPort)).code, 'CONNECTED');
  });

  it('gives every node a torrc that passes the safety check', () => {
    for (const node of loadTestnet().nodes) {
      const torrc = readFileSync(node.torrcPath, 'utf8');
      assert.deepEqual(torrcSafetyProblems(torrc), [], node.torrcPath);
      assert.match(torrc, /^TestingTorNetwork 1$/m);
      assert.match(torrc, /^UseDefaultFallbackDirs 0$/m);
      assert.equal(torrc.match(/^DirAuthority /gm)?.length, 3);
    }
  });

  it('listens on loopback only', () => {
    const v4 = listeningSockets('/proc/self/net/tcp');
    assert.ok(v4.length > 0);
    for (const address of v4) assert.ok(address.startsWith('0100007F:') || /^..00007F:/.test(address), `listening on ${address}`);
    for (const address of listeningSockets('/proc/self/net/tcp6')) {
      assert.ok(address.startsWith('00000000000000000000000001000000:'), `listening on IPv6 ${address}`);
    }
  });

  it('has no tor log naming a non-loopback address so far', async () => {
    const findings = await scanLogsForNonLoopback(loadTestnet().dir);
    assert.equal(findings.length, 0, formatFindings(findings));
  });
});
