/**
 * `orport socks`'s arguments: defaults, --listen forms, and each usage error (exit 2
 * with the usage, before anything is bootstrapped); the --verbose stream line; and its
 * life in a child process against fake directory caches on loopback: bootstrap, the
 * `listening on` line, a RESOLVE of an address answered, a clean exit 0 on SIGTERM.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { deflateSync } from 'node:zlib';
import { startFakeRelay, type FakeRelay } from '../../src/testing/fakerelay.js';
import { dirAuthorityTorrc, makeAuthorities, makeConsensus, makeRelays } from '../../src/testing/dirdocs.js';
import { decodeReply, encodeGreeting, encodeRequest } from '../../src/adapters/socks5.js';
import { UsageError } from '../../src/cli/command.js';
import { parseSocksArgs, socksCommand, streamLine } from '../../src/cli/socks.js';
import { commands } from '../../src/cli/commands.js';
import { StreamClosedError } from '../../src/errors.js';

test('orport socks: defaults and --listen forms', () => {
  assert.deepEqual(parseSocksArgs([]), { host: '127.0.0.1', port: 9050, network: undefined, cacheDir: undefined, verbose: false, conflux: false });
  assert.deepEqual(parseSocksArgs(['--listen', '127.0.0.1:0', '--network', 'n.torrc', '--cache-dir', '/tmp/c', '--verbose', '--conflux']), { host: '127.0.0.1', port: 0, network: 'n.torrc', cacheDir: '/tmp/c', verbose: true, conflux: true });
  assert.deepEqual(parseSocksArgs(['--listen=[::1]:9150']), { host: '::1', port: 9150, network: undefined, cacheDir: undefined, verbose: false, conflux: false });
  assert.ok(commands.includes(socksCommand));
});

test('orport socks: usage errors, thrown before any bootstrap', async () => {
  for (const argv of [['--listen', 'nowhere'], ['--listen', '127.0.0.1:70000'], ['--listen'], ['--bogus'], ['extra'], ['--network', ''], ['--verbose=yes']]) {
    assert.throws(() => parseSocksArgs(argv), UsageError, argv.join(' '));
    await assert.rejects(socksCommand.run(argv), UsageError, argv.join(' '));
  }
});

test('orport socks --verbose: one line per stream (target, isolation, bytes, ms, result)', () => {
  const base = { command: 'connect' as const, host: 'example.com', port: 80, isolation: undefined, bytesUp: 10, bytesDown: 2000, ms: 12.4 };
  assert.equal(streamLine({ ...base, replyCode: 0 }), 'connect example.com:80 isolation=- up=10 down=2000 12 ms ok');
  assert.equal(
    streamLine({ ...base, host: '::1', isolation: 'socks-auth:ab', replyCode: 5, error: new StreamClosedError('relay', 'CONNECTREFUSED', 3) }),
    'connect [::1]:80 isolation=socks-auth:ab up=10 down=2000 12 ms connection refused: stream closed by the relay with reason CONNECTREFUSED (3)',
  );
  assert.match(streamLine({ ...base, replyCode: undefined }), /client left$/);
});

test('orport socks in a child process: bootstraps from the network file, prints where it listens, answers, exits 0 on SIGTERM', async () => {
  const root = resolve(dirname(new URL(import.meta.url).pathname), '../..');
  const dir = mkdtempSync(join(tmpdir(), 'orport-socks-cli-'));
  const authorities = makeAuthorities(3);
  const relays = makeRelays(10);
  const consensus = makeConsensus({ authorities, relays, validAfter: new Date(Date.now() - 30 * 60_000) });
  const fakes: FakeRelay[] = [];
  try {
    for (let i = 0; i < authorities.length; i++) {
      fakes.push(
        await startFakeRelay({
          documents: (path) => {
            if (path.startsWith('/tor/status-vote/')) return deflateSync(consensus);
            if (path.startsWith('/tor/keys/')) return deflateSync(authorities.map((a) => a.certificate).join(''));
            if (path.startsWith('/tor/micro/d/')) return deflateSync(relays.map((r) => r.microdesc).join(''));
            return undefined;
          },
        }),
      );
    }
    const file = join(dir, 'network.torrc');
    writeFileSync(file, dirAuthorityTorrc(fakes.map((f, i) => ({ authority: authorities[i]!, orPort: f.port, rsa: f.identity.rsa }))));
    const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'src/cli/main.ts'), 'socks', '--network', file, '--listen', '127.0.0.1:0', '--verbose'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
    const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    try {
      const port = await new Promise<number>((done, fail) => {
        const check = () => {
          const m = /listening on 127\.0\.0\.1:(\d+)/.exec(stdout);
          if (m) done(Number(m[1]));
        };
        child.stdout.on('data', check);
        void exited.then((code) => fail(new Error(`exited ${code} before listening: ${stderr}`)));
      });
      const socket = connect({ host: '127.0.0.1', port });
      const answer = await new Promise<Buffer>((done, fail) => {
        let got = Buffer.alloc(0);
        socket.on('data', (c) => (got = Buffer.concat([got, c])));
        socket.on('close', () => done(got));
        socket.on('error', fail);
        socket.write(Buffer.concat([encodeGreeting([0]), encodeRequest({ command: 'resolve', host: '10.0.0.1', port: 0 })]));
      });
      assert.equal(answer.subarray(0, 2).toString('hex'), '0500');
      assert.deepEqual(decodeReply(answer.subarray(2)), { replyCode: 0, host: '10.0.0.1', port: 0, length: 10 });
      child.kill('SIGTERM');
      assert.equal(await exited, 0, stderr);
      assert.match(stdout, /resolve 10\.0\.0\.1:0 isolation=- up=0 down=0 \d+ ms ok/);
    } finally {
      clearTimeout(killer);
      child.kill('SIGKILL');
    }
  } finally {
    await Promise.all(fakes.map((f) => f.close()));
    rmSync(dir, { recursive: true, force: true });
  }
});
