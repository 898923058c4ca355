/**
 * Integration: orport reaches a real tor 0.4.9 onion service on a private network.
 *
 * Boots its own small network with an onion service in front of the HTTP test file
 * (startTestnet({ onion: true }): 3 authorities, 2 relays, 1 exit; the service on the
 * client node), bootstraps a TorClient on it, and checks: the test file fetched from the
 * service by `client.connect('<56>.onion', 80)` (descriptor from the HSDirs, rendezvous,
 * the virtual hop) and by `client.fetch('http://….onion/file')`, sha256 equal to the
 * file's, the second stream on the same rendezvous circuit; `orport fetch` and `orport
 * socks` + `curl --socks5-hostname` to the .onion, sha256 equal; examples/onion.ts; a
 * well-formed address with no descriptor rejects with E_ONION_DESC_NOT_FOUND and gets
 * SOCKS reply 0xF0 (a raw SOCKS5 exchange), a bad .onion name OnionAddressError / 0xF6,
 * and neither reaches an exit (no exit circuit is built). Skipped outside an isolated
 * namespace.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { TorClient } from '../../src/client/torclient.js';
import { OnionAddressError, OnionServiceError } from '../../src/errors.js';
import { encodeOnionAddress } from '../../src/onion/address.js';
import type { TestnetDescription } from '../../src/testnet/index.js';
import { isolationSkipReason, startOnionTestnet, testTmpDir, type OnionTestnet } from './testnet.js';
import { curlThroughOrportSocks, download, runCli } from './streamhelp.js';
import type { TorStream } from '../../src/client/stream.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const cli = (args: string[], timeout = 180_000) => runCli(args, timeout);

function randomOnionAddress(): string {
  const der = generateKeyPairSync('ed25519').publicKey.export({ format: 'der', type: 'spki' });
  return encodeOnionAddress(new Uint8Array(der.subarray(der.length - 32)));
}

/** The HSDir ring moves with each time period (4 min here); tor's own client re-asks after 5 s on a test network. */
async function connectWithRetry(client: TorClient, address: string, port: number): Promise<TorStream> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await client.connect(address, port, { timeoutMs: 90_000 });
    } catch (err) {
      if (!(err instanceof OnionServiceError && err.code === 'E_ONION_DESC_NOT_FOUND') || attempt >= 4) throw err;
      console.log(`# attempt ${attempt}: ${err.message}; again in 5 s`);
      await new Promise((resolve) => setTimeout(resolve, 5000));
    }
  }
}

/** A raw SOCKS5 CONNECT (no auth) to `host`:`port`: the reply code the server sends. */
async function socksReply(socksPort: number, host: string, port: number): Promise<number> {
  const socket = netConnect(socksPort, '127.0.0.1');
  try {
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    const read = (n: number) =>
      new Promise<Buffer>((resolve, reject) => {
        let got = Buffer.alloc(0);
        const onData = (d: Buffer) => {
          got = Buffer.concat([got, d]);
          if (got.length >= n) {
            socket.off('data', onData);
            resolve(got);
          }
        };
        socket.on('data', onData).once('error', reject).once('close', () => reject(new Error(`the SOCKS server closed after ${got.length} bytes`)));
      });
    const greeting = read(2);
    socket.write(Uint8Array.of(5, 1, 0));
    assert.deepEqual([...(await greeting)], [5, 0], 'no authentication');
    const reply = read(2);
    const name = Buffer.from(host, 'latin1');
    socket.write(Buffer.concat([Buffer.from([5, 1, 0, 3, name.length]), name, Buffer.from([port >> 8, port & 0xff])]));
    const answer = await reply;
    assert.equal(answer[0], 5);
    return answer[1]!;
  } finally {
    socket.destroy();
  }
}

describe('onion services: connect, fetch, SOCKS and the CLI on a test network', { skip: isolationSkipReason() }, () => {
  let net: OnionTestnet | undefined;
  let description: TestnetDescription;
  let client: TorClient | undefined;
  let onion = '';

  before(async () => {
    net = await startOnionTestnet('onion-connect-', 1024 * 1024);
    ({ description, client } = net);
    assert.ok(description.onion, 'the network runs an onion service');
    onion = description.onion.address;
  });

  after(() => net?.stop());

  it("client.connect('<56>.onion', 80): the test file from the service, sha256 equal; a second stream rides the same rendezvous circuit", async () => {
    const started = performance.now();
    const stream = await connectWithRetry(client!, onion, 80);
    const connectedMs = performance.now() - started;
    const got = await download(stream, '/file');
    assert.equal(got.status, 200);
    assert.equal(got.bytes, description.http.fileBytes);
    assert.equal(got.sha256, description.http.fileSha256);
    const stats = client!.stats;
    assert.equal(stats.onions.opened, 1, 'one rendezvous circuit');
    assert.equal(stats.exits.built, 0, 'no exit circuit: the .onion never went to an exit');
    console.log(`# connected to ${onion} in ${connectedMs.toFixed(0)} ms (descriptor, rendezvous, BEGIN), ${got.bytes} bytes`);
    const again = await client!.connect(onion, 80, { timeoutMs: 30_000 });
    const second = await download(again, '/file');
    assert.equal(second.sha256, description.http.fileSha256);
    assert.equal(client!.stats.onions.opened, 1, 'the same rendezvous circuit');
    assert.equal(client!.stats.onions.reused, 1);
  });

  it("client.fetch('http://….onion/file'): 200, sha256 equal", async () => {
    const response = await client!.fetch(`http://${onion}/file`);
    assert.equal(response.status, 200);
    const body = Buffer.from(await response.arrayBuffer());
    assert.equal(createHash('sha256').update(body).digest('hex'), description.http.fileSha256);
  });

  it('a well-formed address with no descriptor: E_ONION_DESC_NOT_FOUND; a bad .onion name: OnionAddressError; neither goes to an exit', async () => {
    const missing = randomOnionAddress();
    await assert.rejects(client!.connect(missing, 80, { timeoutMs: 60_000 }), (err: unknown) => err instanceof OnionServiceError && err.code === 'E_ONION_DESC_NOT_FOUND' && err.attempts.length > 0 && err.attempts.every((a) => a.outcome === 'not-found'));
    await assert.rejects(client!.connect('aaaa.onion', 80), (err: unknown) => err instanceof OnionAddressError && err.problem === 'length');
    await assert.rejects(client!.connect(`${onion.slice(0, 10)}${onion[10] === 'a' ? 'b' : 'a'}${onion.slice(11)}`, 80), (err: unknown) => err instanceof OnionAddressError && err.problem === 'checksum');
    await assert.rejects(client!.resolve(onion), /not resolved/);
    assert.equal(client!.stats.exits.built, 0, 'no exit circuit was built for a .onion name');
  });

  it('SOCKS5: a raw exchange gets 0xF0 for an address with no descriptor, 0xF6 for a bad .onion name, 0x00 for the service', async () => {
    const server = await client!.listenSocks({ port: 0 });
    try {
      const port = server.address().port;
      assert.equal(await socksReply(port, randomOnionAddress(), 80), 0xf0);
      assert.equal(await socksReply(port, 'aaaa.onion', 80), 0xf6);
      assert.equal(await socksReply(port, `${'a'.repeat(56)}.onion`, 80), 0xf6);
      assert.equal(await socksReply(port, onion, 80), 0x00);
      assert.equal(client!.stats.exits.built, 0);
    } finally {
      await server.close();
    }
  });

  it('orport fetch http://….onion/file -o FILE, and orport socks with curl --socks5-hostname to the .onion: sha256 equal', async () => {
    const dir = mkdtempSync(join(testTmpDir(), 'onion-fetch-'));
    try {
      const out = join(dir, 'file');
      const fetched = await cli(['fetch', `http://${onion}/file`, '-o', out, '--network', description.networkFile, '--timeout', '120000']);
      assert.equal(fetched.code, 0, fetched.stderr);
      assert.equal(createHash('sha256').update(readFileSync(out)).digest('hex'), description.http.fileSha256);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const socks = await curlThroughOrportSocks(description.networkFile, `http://${onion}/file`, 150_000);
    assert.equal(socks.sha256, description.http.fileSha256);
    assert.equal(socks.exitCode, 0);
  });

  it('examples/onion.ts fetches the test file from the service, sha256 equal', async () => {
    const { stdout } = await new Promise<{ stdout: string }>((resolve, reject) =>
      execFile(process.execPath, ['--import', 'tsx', 'examples/onion.ts', description.networkFile, `http://${onion}/file`], { cwd: root, timeout: 180_000 }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve({ stdout }))),
    );
    assert.match(stdout, new RegExp(`^200 ${onion.replace('.', '\\.')}: ${description.http.fileBytes} bytes, sha256 ${description.http.fileSha256}$`, 'm'));
  });
});
