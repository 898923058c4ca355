/**
 * HTTP adapters (src/adapters/http.ts) against a fake connector that opens plain TCP to a
 * loopback server (127.0.0.1 only): undici fetch through the dispatcher (a 20 MiB body
 * streamed, a 5 MiB POST echoed, https with and without the right CA), http.get and
 * https.get through the agents, keep-alive on one stream, isolation keys, typed connector
 * errors as the cause, timeouts and aborts, nothing leaked; the fetch command's argument
 * errors and its streaming writer.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Duplex, Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { AbortError, NetworkError, OrportError, StreamClosedError, TimeoutError } from '../../src/errors.js';
import type { ConnectedStream, StreamConnectOptions, StreamConnector } from '../../src/adapters/connector.js';
import { createDispatcher, createHttpAgent, createHttpsAgent, torFetch } from '../../src/adapters/http.js';
import { fetchCommand, fetchTo, parseFetchUrl, progressLine, summaryLine } from '../../src/cli/fetch.js';
import { UsageError } from '../../src/cli/command.js';
import { main } from '../../src/cli/main.js';
import { noLeaks } from '../support/leaks.js';

const MiB = 1024 * 1024;

/** A deterministic body of `size` bytes, produced in 64 KiB chunks. */
function* bodyChunks(size: number): Generator<Buffer> {
  const chunk = Buffer.alloc(64 * 1024);
  for (let sent = 0, n = 0; sent < size; n++) {
    for (let i = 0; i < chunk.length; i += 4) chunk.writeUInt32BE((n * 16384 + i / 4) >>> 0, i);
    const part = chunk.subarray(0, Math.min(chunk.length, size - sent));
    sent += part.length;
    yield Buffer.from(part);
  }
}

function sha256Of(size: number): string {
  const hash = createHash('sha256');
  for (const c of bodyChunks(size)) hash.update(c);
  return hash.digest('hex');
}

/** The servers' routes: /big (20 MiB), /echo (POST body back), /hello, /slow (trickles), /missing (404). */
function handler(req: http.IncomingMessage, res: http.ServerResponse): void {
  const path = req.url ?? '/';
  if (path === '/big') {
    res.writeHead(200, { 'content-length': String(20 * MiB) });
    const chunks = bodyChunks(20 * MiB);
    const pump = () => {
      for (let next = chunks.next(); !next.done; next = chunks.next()) if (!res.write(next.value)) return void res.once('drain', pump);
      res.end();
    };
    pump();
  } else if (path === '/echo') {
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    req.pipe(res);
  } else if (path === '/slow') {
    res.writeHead(200);
    res.write('x');
    const timer = setInterval(() => res.write('x'), 20);
    res.once('close', () => clearInterval(timer));
  } else if (path === '/missing') {
    res.writeHead(404).end('no');
  } else {
    res.writeHead(200, { 'content-type': 'text/plain' }).end(`hello ${req.socket.localPort}`);
  }
}

interface FakeConnector extends StreamConnector {
  calls: { host: string; port: number; isolation: string | undefined; signal: AbortSignal | undefined }[];
}

/**
 * Opens plain TCP to 127.0.0.1 whatever loopback name it is given ('localhost', names
 * under .test); anything else is refused, so no test reaches past loopback. `plain: true`
 * hands out a generic Duplex over the socket (as a Tor stream is), not the net.Socket.
 */
function fakeConnector(options: { plain?: boolean; hang?: boolean; fail?: () => Error } = {}): FakeConnector {
  const calls: FakeConnector['calls'] = [];
  return {
    calls,
    connect(host: string, port: number, o: StreamConnectOptions = {}): Promise<ConnectedStream> {
      calls.push({ host, port, isolation: o.isolation, signal: o.signal });
      if (host !== '127.0.0.1' && host !== 'localhost' && !host.endsWith('.test')) return Promise.reject(new Error(`test connector refuses ${host}`));
      if (options.fail) return Promise.reject(options.fail());
      return new Promise((resolve, reject) => {
        if (options.hang) {
          o.signal?.addEventListener('abort', () => reject(new AbortError('the fake stream', o.signal?.reason)), { once: true });
          return;
        }
        const socket = net.connect(port, '127.0.0.1');
        socket.once('error', reject);
        socket.once('connect', () => {
          socket.off('error', reject);
          resolve(options.plain ? plainDuplex(socket) : socket);
        });
      });
    },
  };
}

/** A Duplex that is not a net.Socket, over one. */
function plainDuplex(socket: net.Socket): Duplex {
  const d = new Duplex({
    read() {
      socket.resume();
    },
    write(chunk: Buffer, _encoding, callback) {
      socket.write(chunk, callback);
    },
    final(callback) {
      socket.end(callback);
    },
    destroy(err, callback) {
      socket.destroy();
      callback(err);
    },
  });
  socket.on('data', (chunk: Buffer) => {
    if (!d.push(chunk)) socket.pause();
  });
  socket.once('end', () => d.push(null));
  socket.once('error', (err) => d.destroy(err));
  socket.once('close', () => d.destroy());
  return d;
}

/** The first OrportError down an error's cause chain. */
function typedCause(err: unknown): OrportError | undefined {
  for (let e = err; e instanceof Error; e = e.cause) if (e instanceof OrportError) return e;
  return undefined;
}

function get(url: string, options: https.RequestOptions): Promise<{ status: number; body: string; socket: unknown }> {
  const mod = url.startsWith('https:') ? https : http;
  return new Promise((resolve, reject) => {
    mod
      .get(url, options, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.once('end', () => resolve({ status: res.statusCode ?? 0, body, socket: res.socket }));
        res.once('error', reject);
      })
      .once('error', reject);
  });
}

let server: http.Server;
let secureServer: https.Server;
let port = 0;
let securePort = 0;
let ca = '';
let certDir = '';
const hasOpenssl = (() => {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

function listen(s: net.Server): Promise<number> {
  return new Promise((resolve) => s.listen(0, '127.0.0.1', () => resolve((s.address() as AddressInfo).port)));
}

before(async () => {
  server = http.createServer(handler);
  port = await listen(server);
  if (!hasOpenssl) return;
  certDir = mkdtempSync(join(tmpdir(), 'orport-http-'));
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', join(certDir, 'key.pem'), '-out', join(certDir, 'cert.pem'),
  ], { stdio: 'ignore' });
  ca = readFileSync(join(certDir, 'cert.pem'), 'utf8');
  secureServer = https.createServer({ key: readFileSync(join(certDir, 'key.pem')), cert: ca }, handler);
  securePort = await listen(secureServer);
});

after(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  if (secureServer) {
    secureServer.closeAllConnections();
    await new Promise((r) => secureServer.close(r));
  }
  if (certDir) rmSync(certDir, { recursive: true, force: true });
});

describe('createDispatcher + torFetch', () => {
  for (const plain of [false, true]) {
    test(`GET of a 20 MiB body, streamed, sha256 equal (${plain ? 'a generic Duplex' : 'a net.Socket'})`, async () => {
      await noLeaks(async () => {
        const connector = fakeConnector({ plain });
        const dispatcher = createDispatcher(connector);
        const res = await torFetch(dispatcher, `http://localhost:${port}/big`);
        assert.equal(res.status, 200);
        const hash = createHash('sha256');
        let bytes = 0;
        let chunks = 0;
        for await (const chunk of res.body!) {
          hash.update(chunk);
          bytes += chunk.length;
          chunks++;
        }
        assert.equal(bytes, 20 * MiB);
        assert.ok(chunks > 20, 'the body came in pieces');
        assert.equal(hash.digest('hex'), sha256Of(20 * MiB));
        assert.deepEqual(connector.calls.map((c) => [c.host, c.port]), [['localhost', port]]);
        await dispatcher.close();
      });
    });
  }

  test('POST of 5 MiB, echoed back', async () => {
    await noLeaks(async () => {
      const dispatcher = createDispatcher(fakeConnector());
      const body = Buffer.concat([...bodyChunks(5 * MiB)]);
      const res = await torFetch(dispatcher, `http://localhost:${port}/echo`, { method: 'POST', body });
      const echoed = Buffer.from(await res.arrayBuffer());
      assert.equal(echoed.length, body.length);
      assert.ok(echoed.equals(body));
      await dispatcher.close();
    });
  });

  test('keep-alive: sequential requests share one stream; isolation keys passed through', async () => {
    await noLeaks(async () => {
      const connector = fakeConnector();
      const dispatcher = createDispatcher(connector, { isolation: 'user-1' });
      for (let i = 0; i < 5; i++) {
        const res = await torFetch(dispatcher, `http://localhost:${port}/hello`);
        assert.equal(await res.text(), `hello ${port}`);
        // undici frees the connection a tick after the body's end; a request sent in the
        // same tick would open a second one
        await new Promise((r) => setImmediate(r));
      }
      assert.equal(connector.calls.length, 1);
      assert.equal(connector.calls[0]!.isolation, 'user-1');
      await dispatcher.close();
    });
  });

  test('a non-2xx status is a Response, not an error', async () => {
    await noLeaks(async () => {
      const dispatcher = createDispatcher(fakeConnector());
      const res = await torFetch(dispatcher, `http://localhost:${port}/missing`);
      assert.equal(res.status, 404);
      assert.equal(await res.text(), 'no');
      await dispatcher.close();
    });
  });

  test("the connector's typed error is the cause, unchanged", async () => {
    await noLeaks(async () => {
      const refused = new StreamClosedError('relay', 'CONNECTREFUSED', 3);
      const dispatcher = createDispatcher(fakeConnector({ fail: () => refused }));
      const err = await torFetch(dispatcher, `http://localhost:${port}/hello`).then(
        () => assert.fail('fetch resolved'),
        (e: unknown) => e as TypeError,
      );
      assert.ok(err instanceof TypeError);
      assert.equal(err.cause, refused);
      await dispatcher.close();
    });
  });

  test('a connect that hangs: TimeoutError after connectTimeoutMs, the connector told to stop', async () => {
    await noLeaks(async () => {
      const connector = fakeConnector({ hang: true });
      const dispatcher = createDispatcher(connector, { connectTimeoutMs: 100 });
      const started = Date.now();
      const err = (await torFetch(dispatcher, `http://localhost:${port}/hello`).catch((e: unknown) => e)) as TypeError;
      assert.ok(err.cause instanceof TimeoutError, String(err.cause));
      assert.ok(Date.now() - started < 2000);
      assert.equal(connector.calls[0]!.signal?.aborted, true);
      await dispatcher.close();
    });
  });

  test("the dispatcher's signal aborts connects: AbortError", async () => {
    await noLeaks(async () => {
      const controller = new AbortController();
      const connector = fakeConnector({ hang: true });
      const dispatcher = createDispatcher(connector, { signal: controller.signal });
      const pending = torFetch(dispatcher, `http://localhost:${port}/hello`).catch((e: unknown) => e);
      setTimeout(() => controller.abort(), 50);
      const err = (await pending) as TypeError;
      // fetch wraps an error named AbortError once more: TypeError → DOMException → ours
      assert.ok(typedCause(err) instanceof AbortError, String(err.cause));
      assert.equal(connector.calls[0]!.signal?.aborted, true);
      await dispatcher.close();
    });
  });

  test("destroy() aborts the connects under way", async () => {
    await noLeaks(async () => {
      const connector = fakeConnector({ hang: true });
      const dispatcher = createDispatcher(connector);
      const pending = torFetch(dispatcher, `http://localhost:${port}/hello`).catch((e: unknown) => e);
      await new Promise((r) => setTimeout(r, 30));
      await dispatcher.destroy();
      assert.ok((await pending) instanceof Error);
      assert.equal(connector.calls[0]!.signal?.aborted, true);
    });
  });

  test("a request's AbortSignal ends it mid-body", async () => {
    await noLeaks(async () => {
      const dispatcher = createDispatcher(fakeConnector({ plain: true }));
      const controller = new AbortController();
      const res = await torFetch(dispatcher, `http://localhost:${port}/slow`, { signal: controller.signal });
      const reader = res.body!.getReader();
      await reader.read();
      controller.abort();
      await assert.rejects(async () => {
        for (;;) if ((await reader.read()).done) break;
      }, (e: Error) => e.name === 'AbortError');
      await dispatcher.close();
    });
  });

  test('https: with the right ca it works; without it the certificate fails verification', { skip: !hasOpenssl && 'no openssl' }, async () => {
    await noLeaks(async () => {
      const connector = fakeConnector({ plain: true });
      const good = createDispatcher(connector, { tls: { ca } });
      const res = await torFetch(good, `https://localhost:${securePort}/hello`);
      assert.equal(await res.text(), `hello ${securePort}`);
      const big = await torFetch(good, `https://localhost:${securePort}/big`);
      const hash = createHash('sha256');
      for await (const chunk of big.body!) hash.update(chunk);
      assert.equal(hash.digest('hex'), sha256Of(20 * MiB));
      await good.close();

      const bad = createDispatcher(fakeConnector());
      const err = (await torFetch(bad, `https://localhost:${securePort}/hello`).catch((e: unknown) => e)) as TypeError;
      assert.ok(err.cause instanceof NetworkError, String(err.cause));
      assert.match(String(err.cause.errno), /SELF_SIGNED|UNABLE_TO_VERIFY/);
      await bad.close();

      const wrongName = createDispatcher(fakeConnector(), { tls: { ca } });
      const err2 = (await torFetch(wrongName, `https://other.test:${securePort}/hello`).catch((e: unknown) => e)) as TypeError;
      assert.ok(err2.cause instanceof NetworkError);
      assert.equal(err2.cause.errno, 'ERR_TLS_CERT_ALTNAME_INVALID');
      await wrongName.close();
    });
  });
});

describe('createHttpAgent / createHttpsAgent', () => {
  for (const plain of [false, true]) {
    test(`http.get with the agent; keep-alive reuses one stream (${plain ? 'a generic Duplex' : 'a net.Socket'})`, async () => {
      await noLeaks(async () => {
        const connector = fakeConnector({ plain });
        const agent = createHttpAgent(connector, { keepAlive: true, isolation: 'tab-7' });
        for (let i = 0; i < 4; i++) {
          const { status, body } = await get(`http://localhost:${port}/hello`, { agent });
          assert.equal(status, 200);
          assert.equal(body, `hello ${port}`);
          await new Promise((r) => setImmediate(r));
        }
        assert.equal(connector.calls.length, 1);
        assert.equal(connector.calls[0]!.isolation, 'tab-7');
        agent.destroy();
      });
    });
  }

  test('without keep-alive each request opens its own stream', async () => {
    await noLeaks(async () => {
      const connector = fakeConnector();
      const agent = createHttpAgent(connector);
      for (let i = 0; i < 3; i++) assert.equal((await get(`http://localhost:${port}/hello`, { agent })).status, 200);
      assert.equal(connector.calls.length, 3);
      agent.destroy();
    });
  });

  test("the connector's typed error is the request's 'error'", async () => {
    await noLeaks(async () => {
      const refused = new StreamClosedError('relay', 'CONNECTREFUSED', 3);
      const agent = createHttpAgent(fakeConnector({ fail: () => refused }));
      await assert.rejects(get(`http://localhost:${port}/hello`, { agent }), (e) => e === refused);
      agent.destroy();
    });
  });

  test('destroy() aborts a connect under way', async () => {
    await noLeaks(async () => {
      const connector = fakeConnector({ hang: true });
      const agent = createHttpAgent(connector);
      const pending = get(`http://localhost:${port}/hello`, { agent }).catch((e: unknown) => e);
      await new Promise((r) => setTimeout(r, 30));
      agent.destroy();
      assert.ok((await pending) instanceof AbortError);
      assert.equal(connector.calls[0]!.signal?.aborted, true);
    });
  });

  test('https.get with the agent: ca from the agent or the request; none: verification fails', { skip: !hasOpenssl && 'no openssl' }, async () => {
    await noLeaks(async () => {
      const connector = fakeConnector({ plain: true });
      const agent = createHttpsAgent(connector, { keepAlive: true, ca });
      for (let i = 0; i < 3; i++) {
        const r = await get(`https://localhost:${securePort}/hello`, { agent });
        assert.equal(r.body, `hello ${securePort}`);
        await new Promise((r) => setImmediate(r));
      }
      assert.equal(connector.calls.length, 1);
      agent.destroy();

      const perRequest = createHttpsAgent(fakeConnector());
      assert.equal((await get(`https://localhost:${securePort}/hello`, { agent: perRequest, ca })).status, 200);
      await assert.rejects(get(`https://localhost:${securePort}/hello`, { agent: perRequest }), (e) => e instanceof NetworkError && /SELF_SIGNED|UNABLE_TO_VERIFY/.test(String(e.errno)));
      perRequest.destroy();
    });
  });
});

describe('orport fetch', () => {
  test('argument errors are UsageErrors', async () => {
    await assert.rejects(fetchCommand.run([]), (e) => e instanceof UsageError && /missing URL/.test(e.message));
    await assert.rejects(fetchCommand.run(['not a url']), UsageError);
    await assert.rejects(fetchCommand.run(['ftp://127.0.0.1/x']), /only http: and https:/);
    await assert.rejects(fetchCommand.run(['http://127.0.0.1/', 'extra']), /unexpected argument/);
    await assert.rejects(fetchCommand.run(['http://127.0.0.1/', '--timeout', 'soon']), /--timeout takes a positive number/);
    await assert.rejects(fetchCommand.run(['http://127.0.0.1/', '--bogus']), UsageError);
    assert.equal(parseFetchUrl('https://example.test/a').hostname, 'example.test');
  });

  test('orport fetch without a URL: usage on stderr, exit status 2', async () => {
    const write = process.stderr.write;
    let said = '';
    process.stderr.write = ((chunk: string) => ((said += chunk), true)) as typeof process.stderr.write;
    try {
      assert.equal(await main(['fetch']), 2);
      assert.equal(await main(['fetch', 'http://127.0.0.1/', '--timeout', '0']), 2);
    } finally {
      process.stderr.write = write;
    }
    assert.match(said, /orport fetch: missing URL/);
    assert.match(said, /--timeout takes a positive number, not '0'/);
    assert.match(said, /usage: orport fetch URL/);
  });

  test('fetchTo streams the body with backpressure, counts and hashes it', async () => {
    await noLeaks(async () => {
      let written = 0;
      let maxBuffered = 0;
      const slow = new Writable({
        highWaterMark: 64 * 1024,
        write(chunk: Buffer, _encoding, callback) {
          written += chunk.length;
          maxBuffered = Math.max(maxBuffered, slow.writableLength);
          setImmediate(callback);
        },
      });
      const progress: number[] = [];
      const result = await fetchTo(fakeConnector({ plain: true }), new URL(`http://localhost:${port}/big`), {
        output: () => slow,
        timeoutMs: 10_000,
        onProgress: (p) => progress.push(p.bytes),
      });
      assert.equal(result.status, 200);
      assert.equal(result.bytes, 20 * MiB);
      assert.equal(written, 20 * MiB);
      assert.equal(result.sha256, sha256Of(20 * MiB));
      assert.ok(maxBuffered < 4 * MiB, `at most ${maxBuffered} bytes waited in the writer`);
      assert.equal(progress.at(-1), 20 * MiB);
      assert.match(progressLine({ bytes: 10 * MiB, total: 20 * MiB, seconds: 2 }), /\[#{15}\.{15}\]  50% 10\.0 MiB \/ 20\.0 MiB  5\.0 MiB\/s  ETA 2 s/);
      assert.equal(progressLine({ bytes: MiB, total: undefined, seconds: 1 }), '1.0 MiB  1.0 MiB/s');
      assert.equal(summaryLine({ ...result, seconds: 2 }), `200 OK  ${20 * MiB} bytes  2.00 s  10.49 MB/s  sha256 ${result.sha256}`);
    });
  });

  test('fetchTo: a non-2xx status opens no output', async () => {
    await noLeaks(async () => {
      const result = await fetchTo(fakeConnector(), new URL(`http://localhost:${port}/missing`), { output: () => assert.fail('opened'), timeoutMs: 10_000 });
      assert.equal(result.status, 404);
    });
  });
});
