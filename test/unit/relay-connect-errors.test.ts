/**
 * Relay.connect against things that are not relays, on loopback: each fails fast with
 * the right typed error, and leaves no socket, timer or server handle behind.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createTcpServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import {
  AbortError,
  BadArgumentError,
  HandshakeError,
  NetworkError,
  OrportError,
  Relay,
  TimeoutError,
  VersionsCell,
} from '../../src/index.js';
import { selfSignedCertificate } from '../support/tls.js';

/** Counts of active handles by type (sockets, timers…), as Node reports them. */
function activeResources(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of process.getActiveResourcesInfo()) counts[r] = (counts[r] ?? 0) + 1;
  return counts;
}

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
}

/** Runs `fn` and checks that afterwards no more handles are open than before. */
async function noLeaks(fn: () => Promise<void>): Promise<void> {
  await settle();
  const before = activeResources();
  await fn();
  await settle();
  await new Promise((r) => setTimeout(r, 20));
  const after = activeResources();
  for (const [type, n] of Object.entries(after)) {
    if (type === 'TTYWrap' || type === 'PipeWrap') continue;
    assert.ok(n <= (before[type] ?? 0), `leaked ${type}: ${before[type] ?? 0} before, ${n} after`);
  }
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  assert.ok(address && typeof address === 'object');
  return address.port;
}

async function close(server: Server, sockets: Set<Socket>): Promise<void> {
  for (const s of sockets) s.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

function tracked(server: Server): Set<Socket> {
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('secureConnection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  return sockets;
}

async function rejectsWith(promise: Promise<unknown>, cls: new (...args: never[]) => OrportError, pattern?: RegExp): Promise<OrportError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof cls, `expected ${cls.name}, got ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`);
    if (pattern) assert.match(err.message, pattern);
    return err;
  }
  assert.fail(`expected ${cls.name}, but it resolved`);
}

test('bad arguments: host, port, link protocols', async () => {
  await noLeaks(async () => {
    await rejectsWith(Relay.connect('not a host!', 443), BadArgumentError, /isn't an IPv4 address, IPv6 address or hostname/);
    await rejectsWith(Relay.connect('127.0.0.1', 0), BadArgumentError, /isn't a valid port/);
    await rejectsWith(Relay.connect('127.0.0.1', 70000), BadArgumentError, /isn't a valid port/);
    await rejectsWith(Relay.connect('127.0.0.1', 9, []), BadArgumentError, /list is empty/);
    await rejectsWith(Relay.connect('127.0.0.1', 9, [1, 2]), BadArgumentError, /none that relays still speak/);
    await rejectsWith(Relay.connect('127.0.0.1', 9, [3], { timeoutMs: -1 }), BadArgumentError, /timeoutMs/);
  });
});

test('a closed port: NetworkError (ECONNREFUSED), fast', async () => {
  const server = createTcpServer();
  const port = await listen(server);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await noLeaks(async () => {
    const t0 = performance.now();
    const err = await rejectsWith(Relay.connect('127.0.0.1', port), NetworkError, /refused/);
    assert.equal((err as NetworkError).errno, 'ECONNREFUSED');
    assert.ok(performance.now() - t0 < 1000);
  });
});

test('a plain TCP server that never answers: TimeoutError at the configured timeout', async () => {
  const server = createTcpServer(() => undefined);
  const sockets = tracked(server);
  const port = await listen(server);
  await noLeaks(async () => {
    const t0 = performance.now();
    await rejectsWith(Relay.connect('127.0.0.1', port, undefined, { timeoutMs: 300 }), TimeoutError, /300 ms waiting for the link handshake/);
    const took = performance.now() - t0;
    assert.ok(took >= 290 && took < 2000, `took ${took} ms`);
    await close(server, sockets);
  });
});

test('an AbortSignal cancels connect', async () => {
  const server = createTcpServer(() => undefined);
  const sockets = tracked(server);
  const port = await listen(server);
  await noLeaks(async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    await rejectsWith(Relay.connect('127.0.0.1', port, undefined, { signal: controller.signal }), AbortError);
    await rejectsWith(Relay.connect('127.0.0.1', port, undefined, { signal: AbortSignal.abort() }), AbortError);
    await close(server, sockets);
  });
});

test('a plain TCP server that speaks something else: the TLS handshake fails', async () => {
  const server = createTcpServer((s) => s.end('HTTP/1.0 400 Bad Request\r\n\r\n'));
  const sockets = tracked(server);
  const port = await listen(server);
  await noLeaks(async () => {
    await rejectsWith(Relay.connect('127.0.0.1', port, undefined, { timeoutMs: 2000 }), NetworkError, /TLS handshake|reset|Maybe it isn't an ORPort/);
    await close(server, sockets);
  });
});

test("a TLS server that isn't tor: HandshakeError as soon as it answers with something other than VERSIONS", async () => {
  const { key, cert } = selfSignedCertificate();
  const server = createTlsServer({ key, cert }, (s) => s.write('HTTP/1.1 400 Bad Request\r\n\r\n'));
  const sockets = tracked(server);
  const port = await listen(server);
  await noLeaks(async () => {
    await rejectsWith(Relay.connect('127.0.0.1', port, undefined, { timeoutMs: 2000 }), HandshakeError, /expected the relay's VERSIONS cell first/);
    await close(server, sockets);
  });
});

test('a TLS server with no common link protocol: HandshakeError naming both lists', async () => {
  const { key, cert } = selfSignedCertificate();
  const server = createTlsServer({ key, cert }, (s) => s.write(new VersionsCell([1, 2]).pack(2)));
  const sockets = tracked(server);
  const port = await listen(server);
  await noLeaks(async () => {
    await rejectsWith(Relay.connect('127.0.0.1', port, [3, 4, 5], { timeoutMs: 2000 }), HandshakeError, /we support 3, 4, 5, but the relay supports 1, 2/);
    await close(server, sockets);
  });
});

test('a TLS server that closes after VERSIONS: HandshakeError, not a hang', async () => {
  const { key, cert } = selfSignedCertificate();
  const server = createTlsServer({ key, cert }, (s) => s.end(new VersionsCell([4, 5]).pack(2)));
  const sockets = tracked(server);
  const port = await listen(server);
  await noLeaks(async () => {
    await rejectsWith(Relay.connect('127.0.0.1', port, undefined, { timeoutMs: 2000 }), HandshakeError, /closed the connection during the link handshake/);
    await close(server, sockets);
  });
});
