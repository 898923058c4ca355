/**
 * Unit: the launcher's runtime helpers without tor — abortable waits, child
 * process handling (with `sleep` as the child), the HTTP file server on
 * 127.0.0.1, and `orport testnet` option parsing. Checks that nothing is
 * left running. Listens on 127.0.0.1 only; connects nowhere else.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseByteSize, parseTestnetArgs, testnetEnvironment } from '../../src/cli/testnet.js';
import { UsageError } from '../../src/cli/command.js';
import { AbortError, TimeoutError } from '../../src/errors.js';
import type { TestnetDescription } from '../../src/testnet/description.js';
import { PortInUseError } from '../../src/testnet/errors.js';
import { controlSetConf } from '../../src/testnet/control.js';
import { createRandomFile, startFileServer } from '../../src/testnet/httpfile.js';
import { isPortFree } from '../../src/testnet/ports.js';
import { ManagedProcess, runTool } from '../../src/testnet/process.js';
import { sleep } from '../../src/testnet/wait.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('sleep: resolves, or rejects at once when aborted, leaving no timer', async () => {
  await sleep(5);
  const abort = new AbortController();
  const pending = sleep(60_000, abort.signal, 'something');
  abort.abort();
  await assert.rejects(pending, (err: unknown) => err instanceof AbortError && /something/.test(err.message));
  const reason = new TimeoutError('x', 1);
  const abort2 = new AbortController();
  abort2.abort(reason);
  await assert.rejects(sleep(10, abort2.signal), (err: unknown) => err === reason);
  assert.ok(!process.getActiveResourcesInfo().includes('Timeout'));
});

test('runTool: output, exit code, timeout and abort kill the child', async () => {
  const ok = await runTool('/bin/sh', ['-c', 'read x; echo "got $x"; exit 3'], { input: 'hi\n', timeoutMs: 5000, what: 'sh' });
  assert.equal(ok.code, 3);
  assert.equal(ok.output, 'got hi\n');
  const t0 = performance.now();
  await assert.rejects(runTool('sleep', ['30'], { timeoutMs: 200, what: 'a sleeping tool' }), (err: unknown) => err instanceof TimeoutError && /a sleeping tool/.test(err.message));
  const abort = new AbortController();
  setTimeout(() => abort.abort(), 100);
  await assert.rejects(runTool('sleep', ['30'], { timeoutMs: 10_000, signal: abort.signal, what: 'another' }), AbortError);
  assert.ok(performance.now() - t0 < 5000);
  await assert.rejects(runTool('/nonexistent/tool', [], { timeoutMs: 1000, what: 'x' }), /cannot run \/nonexistent\/tool/);
});

test('ManagedProcess: SIGTERM stops it; SIGKILL after the grace period when ignored', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'orport-unit-'));
  try {
    const polite = await ManagedProcess.start('polite', 'sleep', ['60'], { outputPath: join(dir, 'a.log') });
    assert.ok(alive(polite.pid));
    const r1 = await polite.stop(2000);
    assert.deepEqual(r1, { exit: { code: null, signal: 'SIGTERM' }, killed: false });
    assert.ok(!alive(polite.pid));
    const stubborn = await ManagedProcess.start('stubborn', '/bin/sh', ['-c', 'trap "" TERM; echo ready; while :; do sleep 0.1; done'], { outputPath: join(dir, 'b.log') });
    for (let i = 0; i < 50 && !readFileSync(join(dir, 'b.log'), 'utf8').includes('ready'); i++) await sleep(20);
    const r2 = await stubborn.stop(300);
    assert.equal(r2.killed, true);
    assert.equal(r2.exit.signal, 'SIGKILL');
    assert.equal(await stubborn.stop(300).then((r) => r.killed), false, 'stop is idempotent');
    await assert.rejects(ManagedProcess.start('missing', '/nonexistent/tor', [], { outputPath: join(dir, 'c.log') }), /cannot start missing/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('file server: serves the random file and its digest on 127.0.0.1, then closes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'orport-unit-'));
  try {
    const file = await createRandomFile(join(dir, 'file'), 3 * 1024 * 1024 + 7);
    assert.equal(file.sha256, createHash('sha256').update(readFileSync(file.path)).digest('hex'));
    let port = 0;
    for (let candidate = 41000 + (process.pid % 1000); !port; candidate++) if (await isPortFree(candidate)) port = candidate;
    const server = await startFileServer(file, port);
    const get = (path: string, method = 'GET') =>
      new Promise<{ status: number; body: Buffer; length: string | undefined }>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port, path, method, agent: false }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), length: res.headers['content-length'] }));
        });
        req.on('error', reject);
        req.end();
      });
    const whole = await get('/file');
    assert.equal(whole.status, 200);
    assert.equal(whole.body.length, file.bytes);
    assert.equal(createHash('sha256').update(whole.body).digest('hex'), file.sha256);
    const head = await get('/file', 'HEAD');
    assert.equal(head.length, String(file.bytes));
    assert.equal((await get('/file.sha256')).body.toString(), `${file.sha256}  file\n`);
    assert.equal((await get('/other')).status, 404);
    await server.close();
    assert.ok(await isPortFree(port));
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen({ host: '127.0.0.1', port }, resolve));
    await assert.rejects(startFileServer(file, port), (err: unknown) => err instanceof PortInUseError && err.port === port);
    await new Promise<void>((resolve) => blocker.close(() => resolve()));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('orport testnet: option parsing', () => {
  const defaults = parseTestnetArgs([]);
  assert.equal(defaults.relays, 4);
  assert.equal(defaults.exits, 2);
  assert.equal(defaults.client, false);
  assert.deepEqual(defaults.command, []);
  const o = parseTestnetArgs(['--relays', '2', '--exits=1', '--client', '--keep', '--file-size', '20M', '--json', '--base-port', '20000', '--timeout', '30', '--', 'curl', '--socks5', 'x']);
  assert.equal(o.relays, 2);
  assert.equal(o.exits, 1);
  assert.equal(o.client, true);
  assert.equal(o.keep, true);
  assert.equal(o.fileBytes, 20 * 1024 * 1024);
  assert.equal(o.basePort, 20000);
  assert.equal(o.timeoutMs, 30_000);
  assert.deepEqual(o.command, ['curl', '--socks5', 'x']);
  assert.throws(() => parseTestnetArgs(['--relays', '-1']), UsageError);
  assert.throws(() => parseTestnetArgs(['--relays']), /--relays needs a value/);
  assert.throws(() => parseTestnetArgs(['--bogus']), /unknown option --bogus/);
  assert.throws(() => parseTestnetArgs(['curl']), /put the command after --/);
  assert.throws(() => parseTestnetArgs(['--log-level', 'loud']), UsageError);
  assert.equal(parseByteSize('1048576'), 1048576);
  assert.equal(parseByteSize('512K'), 512 * 1024);
  assert.equal(parseByteSize('1.5MiB'), 1.5 * 1024 * 1024);
  assert.equal(parseByteSize('1g'), 1024 ** 3);
  assert.throws(() => parseByteSize('lots'), UsageError);
});

test('orport testnet: the command\'s environment', () => {
  const env = testnetEnvironment({
    jsonPath: '/t/network.json', dir: '/t', http: { url: 'http://127.0.0.1:1/file', port: 1, fileBytes: 1, fileSha256: 'ab' }, dirAuthorityFile: '/t/d', socksPort: 15300,
  } as unknown as TestnetDescription);
  assert.deepEqual(env, {
    ORPORT_TESTNET_JSON: '/t/network.json',
    ORPORT_TESTNET_DIR: '/t',
    ORPORT_TESTNET_HTTP_URL: 'http://127.0.0.1:1/file',
    ORPORT_TESTNET_FILE_SHA256: 'ab',
    ORPORT_TESTNET_DIRAUTH_FILE: '/t/d',
    ORPORT_TESTNET_SOCKS_PORT: '15300',
  });
});

test('controlSetConf: sends AUTHENTICATE, SETCONF, QUIT and checks every reply', async () => {
  const seen: string[] = [];
  const server = createServer((socket) => {
    let buffer = '';
    socket.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      if (!buffer.includes('QUIT\r\n')) return;
      seen.push(buffer);
      const refuse = buffer.includes('Bogus');
      socket.end(refuse ? '250 OK\r\n552 Unrecognized option: Unknown option \'Bogus\'\r\n250 closing connection\r\n' : '250 OK\r\n250 OK\r\n250 closing connection\r\n');
    });
  });
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, resolve));
  const address = server.address();
  assert.ok(address && typeof address === 'object');
  try {
    await controlSetConf(address.port, { TestingV3AuthVotingStartOffset: 3 }, { timeoutMs: 2000 });
    assert.equal(seen[0], 'AUTHENTICATE\r\nSETCONF TestingV3AuthVotingStartOffset=3\r\nQUIT\r\n');
    await assert.rejects(controlSetConf(address.port, { Bogus: 1 }, { timeoutMs: 2000 }), /tor answered 552 Unrecognized option/);
    assert.throws(() => controlSetConf(address.port, { 'Bad key': 'x' }, { timeoutMs: 2000 }), /cannot send SETCONF/);
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});
