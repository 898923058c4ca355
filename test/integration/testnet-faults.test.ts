/**
 * Integration: the launcher's failures are clear and leave nothing behind.
 *
 * Each test starts a small network of its own (3 authorities + 1 relay) under
 * a fresh directory in the run's temporary directory and provokes one fault:
 * tor not installed, a port already taken (caught before starting, and by tor
 * itself), a relay killed during boot, a boot timeout, an abort through the
 * AbortSignal, and SIGINT to an `orport testnet` CLI process during boot.
 * Each asserts the error says what happened, and that afterwards no tor
 * process of that network runs, no network directory remains, and this
 * process holds no extra child process, server, socket or timer.
 * Needs an isolated namespace (the test runner's); skipped elsewhere.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { EnvironmentError, OrportError, TimeoutError } from '../../src/errors.js';
import { NodeDiedError, PortInUseError, startTestnet, torProcessesUnder, type TestnetOptions } from '../../src/testnet/index.js';
import { isolationSkipReason, testTmpDir } from './testnet.js';

const skip = isolationSkipReason();
const root = new URL('../..', import.meta.url).pathname;
const SMALL: TestnetOptions = { relays: 1, exits: 0, httpFileBytes: 4096, logLevel: 'notice', verifyTorrcs: false };
const LEAKY_RESOURCES = ['ProcessWrap', 'TCPServerWrap', 'TCPSocketWrap', 'PipeWrap', 'Timeout'];

let workDir = '';

function freshBaseDir(name: string): string {
  return mkdtempSync(join(workDir, `${name}-`));
}

function resourceCounts(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const type of process.getActiveResourcesInfo()) if (LEAKY_RESOURCES.includes(type)) counts.set(type, (counts.get(type) ?? 0) + 1);
  return counts;
}

/** No tor of this network runs, no network directory remains, and no handle leaked. */
async function assertNothingLeft(baseDir: string, baseline: Map<string, number>): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(torProcessesUnder(baseDir), [], 'tor processes survived');
  const left = readdirSync(baseDir).filter((name) => name.startsWith('orport-testnet-'));
  assert.deepEqual(left, [], `network directories survived in ${baseDir}`);
  const now = resourceCounts();
  for (const type of LEAKY_RESOURCES) {
    assert.ok((now.get(type) ?? 0) <= (baseline.get(type) ?? 0), `leaked ${type}: ${now.get(type)} now, ${baseline.get(type) ?? 0} before`);
  }
  rmSync(baseDir, { recursive: true, force: true });
}

async function expectFailure(options: TestnetOptions): Promise<Error> {
  try {
    const testnet = await startTestnet(options);
    await testnet.stop();
  } catch (err) {
    assert.ok(err instanceof Error);
    return err;
  }
  assert.fail('the network booted although it should not have');
}

function listen(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port, exclusive: true }, () => resolve(server));
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

describe('test network faults', { skip }, () => {
  before(() => {
    workDir = mkdtempSync(join(testTmpDir(), 'faults-'));
  });
  after(() => {
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  it('tor not installed: says how to install it', async () => {
    const baseDir = freshBaseDir('notor');
    const baseline = resourceCounts();
    const err = await expectFailure({ ...SMALL, baseDir, torPath: '/nonexistent/tor' });
    assert.ok(err instanceof EnvironmentError, String(err));
    assert.match(err.message, /tor is not installed/);
    assert.match(err.message, /apt-get install -y tor/);
    await assertNothingLeft(baseDir, baseline);
  });

  it('a port already taken (explicit base port): names the port, starts nothing', async () => {
    const baseDir = freshBaseDir('port');
    const port = 24003;
    const blocker = await listen(port); // relay0's ORPort in the layout from 24000
    try {
      const baseline = resourceCounts();
      const err = await expectFailure({ ...SMALL, baseDir, basePort: 24000 });
      assert.ok(err instanceof PortInUseError, String(err));
      assert.equal(err.port, port);
      assert.match(err.message, /port 24003 on 127\.0\.0\.1 \(ORPort of relay0\) is already in use/);
      await assertNothingLeft(baseDir, baseline);
    } finally {
      await closeServer(blocker);
    }
  });

  it('a port already taken (default ports): avoided', async () => {
    // Take one port of every default block that a network could use next; the
    // launcher must skip the taken blocks and boot elsewhere. Only the port
    // choice is exercised: abort as soon as the first tor starts.
    const baseDir = freshBaseDir('avoid');
    const blockers: Server[] = [];
    for (let base = 15000; base <= 16500; base += 500) {
      try {
        blockers.push(await listen(base + 101)); // auth1's DirPort
      } catch {
        // already in use (e.g. by the shared network): just as good
      }
    }
    const abort = new AbortController();
    let chosenPort = 0;
    try {
      const baseline = resourceCounts();
      const err = await expectFailure({
        ...SMALL,
        baseDir,
        signal: abort.signal,
        onNodeStarted: () => abort.abort(),
        log: (m) => {
          const match = /ports from (\d+)/.exec(m);
          if (match) chosenPort = Number(match[1]);
        },
      });
      assert.ok(err instanceof OrportError && err.code === 'E_ABORTED', String(err));
      assert.ok(chosenPort >= 17000, `chose the taken block ${chosenPort}`);
      await assertNothingLeft(baseDir, baseline);
    } finally {
      await Promise.all(blockers.map(closeServer));
    }
  });

  it('a port taken behind the launcher\'s back: tor\'s bind failure names the port', async () => {
    const baseDir = freshBaseDir('race');
    const blocker = await listen(24103); // relay0's DirPort
    try {
      const baseline = resourceCounts();
      const err = await expectFailure({ ...SMALL, baseDir, basePort: 24000, checkPorts: false });
      assert.ok(err instanceof PortInUseError, String(err));
      assert.equal(err.port, 24103);
      assert.match(err.message, /relay0 could not bind it/);
      await assertNothingLeft(baseDir, baseline);
    } finally {
      await closeServer(blocker);
    }
  });

  it('a relay that dies during boot: names it and shows its log', async () => {
    const baseDir = freshBaseDir('dies');
    const baseline = resourceCounts();
    let killedPid = 0;
    const err = await expectFailure({
      ...SMALL,
      baseDir,
      onNodeStarted: (node) => {
        if (node.nick === 'relay0') {
          killedPid = node.pid;
          setTimeout(() => process.kill(node.pid, 'SIGKILL'), 300);
        }
      },
    });
    assert.ok(err instanceof NodeDiedError, String(err));
    assert.equal(err.nick, 'relay0');
    assert.equal(err.signal, 'SIGKILL');
    assert.match(err.message, /^relay0 died during boot \(killed by SIGKILL\); last lines of \S+\/relay0\/(notice|stdout)\.log:\n/);
    assert.ok(killedPid > 0);
    await assertNothingLeft(baseDir, baseline);
  });

  it('a bootstrap timeout: says what it waited for', async () => {
    const baseDir = freshBaseDir('timeout');
    const baseline = resourceCounts();
    const err = await expectFailure({ ...SMALL, baseDir, timeoutMs: 2500 });
    assert.ok(err instanceof TimeoutError, String(err));
    assert.match(err.message, /^timed out after 2500 ms waiting for the test network to boot: /);
    assert.match(err.message, /consensus|auth0/);
    await assertNothingLeft(baseDir, baseline);
  });

  it('an abort (AbortSignal) during boot: stops everything', async () => {
    const baseDir = freshBaseDir('abort');
    const baseline = resourceCounts();
    const abort = new AbortController();
    const started: number[] = [];
    const err = await expectFailure({
      ...SMALL,
      baseDir,
      signal: abort.signal,
      onNodeStarted: (node) => {
        started.push(node.pid);
        if (started.length === 4) setTimeout(() => abort.abort(), 500);
      },
    });
    assert.ok(err instanceof OrportError && err.code === 'E_ABORTED', String(err));
    assert.equal(started.length, 4);
    for (const pid of started) assert.throws(() => process.kill(pid, 0), /ESRCH/);
    await assertNothingLeft(baseDir, baseline);
  });

  it('keepOnFailure keeps the logs it names', async () => {
    const baseDir = freshBaseDir('keep');
    const err = await expectFailure({ ...SMALL, baseDir, timeoutMs: 1500, keepOnFailure: true });
    assert.ok(err instanceof TimeoutError, String(err));
    const kept = readdirSync(baseDir).filter((name) => name.startsWith('orport-testnet-'));
    assert.equal(kept.length, 1);
    assert.ok(existsSync(join(baseDir, kept[0] ?? '', 'auth0', 'notice.log')));
    assert.deepEqual(torProcessesUnder(baseDir), []);
    rmSync(baseDir, { recursive: true, force: true });
  });

  it('SIGINT to `orport testnet` during boot: exit 130, nothing left', async () => {
    const baseDir = freshBaseDir('cli');
    const cli = spawn(process.execPath, ['--import', 'tsx', join(root, 'src/cli/main.ts'), 'testnet', '--relays', '1', '--exits', '0', '--file-size', '4K', '--base-dir', baseDir, '--', 'true'], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => cli.once('exit', (code, signal) => resolve({ code, signal })));
    cli.stdout.resume();
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the CLI did not start tor in time; stderr:\n${stderr}`)), 30_000);
      cli.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
        if (/started \d+ tor relays/.test(stderr)) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    cli.kill('SIGINT');
    const { code } = await exited;
    assert.equal(code, 130, stderr);
    assert.match(stderr, /SIGINT; stopping/);
    assert.match(stderr, /interrupted during boot; everything stopped/);
    assert.deepEqual(torProcessesUnder(baseDir), []);
    assert.deepEqual(readdirSync(baseDir).filter((name) => name.startsWith('orport-testnet-')), []);
    rmSync(baseDir, { recursive: true, force: true });
  });
});
