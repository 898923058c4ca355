/** The README's examples run against the private network and print what they promise. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { spawn } from 'node:child_process';
import { loadTestnet, relays, testnetSkipReason } from './testnet.js';
import { runDemo, runThreeHop } from '../../src/cli/demo.js';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));

describe('examples', { skip: testnetSkipReason() }, () => {
  it('examples/one-hop-directory.ts lists every relay of the network', async () => {
    const node = relays()[0]!;
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'examples/one-hop-directory.ts', '127.0.0.1', String(node.orPort)], { cwd: root, timeout: 30_000 });
    assert.match(stdout, /^link protocol 5/m);
    assert.match(stdout, new RegExp(`HTTP 200: ${relays().length} relays`));
    for (const r of relays()) assert.ok(stdout.includes(r.fingerprint), `${r.nick} listed`);
  });

  for (const example of ['three-hop-connect', 'fetch', 'http-agent'] as const) {
    it(`examples/${example}.ts fetches the network's test file over three hops, sha256 equal`, async () => {
      const net = loadTestnet();
      const url = new URL(net.http.url);
      const args = example === 'three-hop-connect' ? [net.networkFile, '127.0.0.1', url.port, url.pathname] : [net.networkFile, `http://127.0.0.1:${url.port}${url.pathname}`];
      const { stdout } = await run(process.execPath, ['--import', 'tsx', `examples/${example}.ts`, ...args], { cwd: root, timeout: 120_000 });
      assert.match(stdout, new RegExp(`200.*: ${net.http.fileBytes} bytes, sha256 ${net.http.fileSha256}`));
      if (example === 'three-hop-connect') assert.equal(stdout.match(/^hop \d: /gm)?.length, 3);
    });
  }

  it('examples/socks-server.ts serves curl --socks5-hostname; Ctrl-C stops it', async () => {
    const net = loadTestnet();
    const child = spawn(process.execPath, ['--import', 'tsx', 'examples/socks-server.ts', net.networkFile, '0'], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const port = await new Promise<number>((resolve, reject) => {
        let out = '';
        child.stdout!.on('data', (d: Buffer) => {
          out += d;
          const m = /listening on 127\.0\.0\.1:(\d+)/.exec(out);
          if (m) resolve(Number(m[1]));
        });
        child.once('exit', (code) => reject(new Error(`the example exited ${code}: ${out}`)));
      });
      const url = new URL(net.http.url);
      const { stdout } = await run('sh', ['-c', `curl -sS --socks5-hostname 127.0.0.1:${port} http://127.0.0.1:${url.port}${url.pathname} | sha256sum`], { timeout: 120_000 });
      assert.equal(stdout.split(' ')[0], net.http.fileSha256);
      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
      child.kill('SIGINT');
      assert.equal(await exited, 0);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it("orport demo's main job: a verified bootstrap, three hops shown, the test file through the exit with its sha256", async () => {
    const net = loadTestnet();
    const lines: string[] = [];
    const report = await runThreeHop(net, { onProgress: (line) => lines.push(line) });
    assert.equal(report.hops.length, 3);
    assert.ok(report.signedBy.length >= 2);
    assert.equal(report.download.status, 200);
    assert.equal(report.download.bytes, net.http.fileBytes);
    assert.equal(report.download.sha256, net.http.fileSha256);
    assert.ok(lines.length >= 1 && /MiB/.test(lines[lines.length - 1]!), 'progress reported');
  });

  it("orport demo's job: every relay in the table, the asked relay's identity proven", async () => {
    const node = relays()[0]!;
    const report = await runDemo(node);
    assert.deepEqual(report.identity, { rsa: node.fingerprint, ed25519: node.ed25519 });
    assert.equal(report.consensus.length, relays().length);
    assert.equal(report.descriptors.length, relays().length);
    for (const r of relays()) assert.match(report.table, new RegExp(`^${r.nick}\\s+${r.fingerprint}\\s+127\\.0\\.0\\.1:${r.orPort}`, 'm'));
  });
});
