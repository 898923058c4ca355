/**
 * Integration: the shared test network is what its description says.
 *
 * Every relay serves a consensus signed by the network's three authorities
 * that lists every relay with the described RSA and Ed25519 identities; every
 * ORPort speaks TLS; the HTTP server serves the file with the described
 * SHA-256; and the C tor client fetches that file through the network
 * (SOCKS5, 3 hops via an exit), which shows the network carries traffic.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { checkRelayServes, consensusRouters, httpGetText } from '../../src/testnet/dirport.js';
import { parseTestnetDescription } from '../../src/testnet/index.js';
import { authorities, client, exits, loadTestnet, relays, testnetSkipReason } from './testnet.js';

const skip = testnetSkipReason();

function sha256Of(url: string): Promise<{ sha256: string; bytes: number }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false }, (res) => {
      const hash = createHash('sha256');
      let bytes = 0;
      res.on('data', (chunk: Buffer) => {
        hash.update(chunk);
        bytes += chunk.length;
      });
      res.on('end', () => resolve({ sha256: hash.digest('hex'), bytes }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** Reads exactly `n` bytes from a socket (for the SOCKS5 handshake). */
function readBytes(socket: Socket, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let have = 0;
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      have += chunk.length;
      if (have >= n) {
        socket.off('data', onData);
        socket.off('error', reject);
        const all = Buffer.concat(chunks);
        if (all.length > n) socket.unshift(all.subarray(n));
        resolve(all.subarray(0, n));
      }
    };
    socket.on('data', onData);
    socket.once('error', reject);
  });
}

/** GET `path` from 127.0.0.1:`port` through a SOCKS5 proxy; returns the body's SHA-256 and length. */
async function socksGet(socksPort: number, port: number, path: string): Promise<{ sha256: string; bytes: number; status: string }> {
  const socket = connect({ host: '127.0.0.1', port: socksPort });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  try {
    socket.write(Buffer.from([5, 1, 0]));
    assert.deepEqual([...(await readBytes(socket, 2))], [5, 0]);
    const portBytes = Buffer.alloc(2);
    portBytes.writeUInt16BE(port);
    socket.write(Buffer.concat([Buffer.from([5, 1, 0, 1, 127, 0, 0, 1]), portBytes]));
    const reply = await readBytes(socket, 10);
    assert.equal(reply[1], 0, `SOCKS CONNECT failed with reply code ${reply[1]}`);
    socket.write(`GET ${path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n`);
    const hash = createHash('sha256');
    let header = Buffer.alloc(0);
    let status = '';
    let bytes = 0;
    await new Promise<void>((resolve, reject) => {
      socket.on('data', (chunk: Buffer) => {
        if (!status) {
          header = Buffer.concat([header, chunk]);
          const end = header.indexOf('\r\n\r\n');
          if (end < 0) return;
          status = header.subarray(0, header.indexOf('\r\n')).toString();
          chunk = header.subarray(end + 4);
        }
        hash.update(chunk);
        bytes += chunk.length;
      });
      socket.once('end', resolve);
      socket.once('error', reject);
    });
    return { sha256: hash.digest('hex'), bytes, status };
  } finally {
    socket.destroy();
  }
}

describe('test network', { skip }, () => {
  it('has a valid description with 3 authorities and unique identities', () => {
    const description = loadTestnet();
    assert.deepEqual(parseTestnetDescription(readFileSync(description.jsonPath, 'utf8')), description);
    assert.equal(authorities().length, 3);
    assert.ok(exits().length >= 1);
    const fingerprints = relays().map((r) => r.fingerprint);
    assert.equal(new Set(fingerprints).size, fingerprints.length);
    const ed = relays().map((r) => r.ed25519);
    assert.equal(new Set(ed).size, ed.length);
    assert.equal(description.dirAuthorityLines.length, 3);
    const file = readFileSync(description.dirAuthorityFile, 'utf8');
    for (const line of description.dirAuthorityLines) assert.ok(file.includes(line));
    for (const auth of authorities()) {
      assert.ok(description.dirAuthorityLines.some((l) => l.includes(`v3ident=${auth.v3ident}`) && l.endsWith(auth.fingerprint) && l.includes(`127.0.0.1:${auth.dirPort}`)));
    }
    for (const node of description.nodes) process.kill(node.pid, 0); // every process is alive
  });

  it('every relay serves the consensus and all descriptors', async () => {
    const expected = relays().map((r) => ({ nick: r.nick, fingerprint: r.fingerprint }));
    for (const relay of relays()) {
      const serves = await checkRelayServes(relay.dirPort, expected, { timeoutMs: 5000 });
      assert.deepEqual(serves, { ok: true }, `${relay.nick}: ${serves.ok ? '' : serves.lag}`);
    }
  });

  it('the consensus is signed by the three authorities and lists the described identities', async () => {
    const auth0 = authorities()[0];
    assert.ok(auth0);
    const ns = await httpGetText(auth0.dirPort, '/tor/status-vote/current/consensus', { timeoutMs: 5000 });
    assert.equal(ns.status, 200);
    const signers = [...ns.body.matchAll(/^directory-signature (?:\S+ )?([0-9A-F]{40}) [0-9A-F]{40}$/gm)].map((m) => m[1]);
    assert.deepEqual(new Set(signers), new Set(authorities().map((a) => a.v3ident)));
    const listed = consensusRouters(ns.body);
    for (const relay of relays()) assert.equal(listed.get(relay.nick), relay.fingerprint, relay.nick);
    // Ed25519 identities: each microdescriptor's "id ed25519" line.
    const md = await httpGetText(auth0.dirPort, '/tor/status-vote/current/consensus-microdesc', { timeoutMs: 5000 });
    const digests = [...md.body.matchAll(/^m (\S+)$/gm)].map((m) => m[1]);
    const micro = await httpGetText(auth0.dirPort, `/tor/micro/d/${digests.join('-')}`, { timeoutMs: 5000 });
    const edIds = new Set([...micro.body.matchAll(/^id ed25519 (\S+)$/gm)].map((m) => m[1]));
    for (const relay of relays()) assert.ok(edIds.has(relay.ed25519), `${relay.nick}'s ed25519 identity ${relay.ed25519} is not in any microdescriptor`);
  });

  it('exits are flagged Exit and accept 127.0.0.0/8', async () => {
    const auth0 = authorities()[0];
    assert.ok(auth0);
    const ns = await httpGetText(auth0.dirPort, '/tor/status-vote/current/consensus', { timeoutMs: 5000 });
    for (const exit of exits()) {
      const entry = ns.body.split(/^r /m).find((block) => block.startsWith(`${exit.nick} `));
      assert.ok(entry, exit.nick);
      assert.match(entry, /^s .*\bExit\b/m);
    }
    const server = await httpGetText(exits()[0]?.dirPort ?? 0, '/tor/server/authority', { timeoutMs: 5000 });
    // tor folds "accept 127.0.0.0/8:*" into the following "accept *:*" (the wide policy).
    assert.match(server.body, /^accept (127\.0\.0\.0\/8|\*):\*$/m);
  });

  it('every ORPort completes a TLS handshake', async () => {
    for (const relay of relays()) {
      await new Promise<void>((resolve, reject) => {
        const socket = tlsConnect({ host: '127.0.0.1', port: relay.orPort, rejectUnauthorized: false }, () => {
          socket.destroy();
          resolve();
        });
        socket.setTimeout(5000, () => socket.destroy(new Error(`${relay.nick}: TLS handshake timed out`)));
        socket.once('error', reject);
      });
    }
  });

  it('the HTTP server serves the described file', async () => {
    const { http } = loadTestnet();
    const got = await sha256Of(http.url);
    assert.equal(got.bytes, http.fileBytes);
    assert.equal(got.sha256, http.fileSha256);
  });

  it('the tor client fetches the file through the network (SOCKS5, 3 hops)', { skip: client() ? false : 'the network has no client' }, async () => {
    const { http } = loadTestnet();
    const socksPort = client()?.socksPort ?? 0;
    const t0 = performance.now();
    const got = await socksGet(socksPort, http.port, '/file');
    const ms = performance.now() - t0;
    assert.match(got.status, /^HTTP\/1\.[01] 200/);
    assert.equal(got.bytes, http.fileBytes);
    assert.equal(got.sha256, http.fileSha256);
    process.stderr.write(`# fetched ${got.bytes} bytes through tor in ${ms.toFixed(0)} ms\n`);
  });
});
