/**
 * adapters/socksserver against fake connectors on loopback (net.connect to servers this
 * test starts on 127.0.0.1; connectors that reject with the relay's END reasons): a raw
 * SOCKS5 client written here, and curl --socks5-hostname when curl is installed. 5 MiB
 * both ways intact (sha256), isolation keys from credentials, the reply code of every END
 * reason, malformed requests answered and closed, random bytes after a greeting, RESOLVE,
 * bounded waits (handshake, connect), a client leaving mid-connect aborts it, close()
 * with open connections leaves nothing behind. Only 127.0.0.1 is ever connected to.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { execFile, execFileSync } from 'node:child_process';
import { createServer as createHttpServer } from 'node:http';
import { connect, createServer, isIP, type AddressInfo, type Server, type Socket } from 'node:net';
import fc from 'fast-check';
import { listenSocks, type SocksServer, type SocksServerOptions, type SocksStreamInfo } from '../../src/adapters/socksserver.js';
import type { ConnectedStream, StreamConnectOptions, StreamConnector } from '../../src/adapters/connector.js';
import { decodeReply, encodeGreeting, encodeReply, encodeRequest, encodeUserPass, Socks5Handshake, type SocksRequest } from '../../src/adapters/socks5.js';
import { AbortError, IncompleteError, StreamClosedError, TimeoutError } from '../../src/errors.js';
import { noLeaks } from '../support/leaks.js';
import { RUNS } from '../support/fuzz.js';

const LOOPBACK = '127.0.0.1';
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** A port on loopback with nothing listening (bound, then closed). */
async function deadPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, LOOPBACK, r));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, LOOPBACK, r));
  return (server.address() as AddressInfo).port;
}

async function stop(server: Server): Promise<void> {
  await new Promise<void>((r) => server.close(() => r()));
}

interface Call {
  host: string;
  port: number;
  isolation: string | undefined;
  signal: AbortSignal | undefined;
}

/** A connector that reaches only 127.0.0.1 (names ending .test mean it too), with tor-like errors. */
function loopbackConnector(calls: Call[] = []): StreamConnector & { calls: Call[] } {
  return {
    calls,
    connect(host: string, port: number, options: StreamConnectOptions = {}): Promise<ConnectedStream> {
      calls.push({ host, port, isolation: options.isolation, signal: options.signal });
      if (host !== LOOPBACK && !host.endsWith('.test')) return Promise.reject(new StreamClosedError('relay', 'EXITPOLICY', 4));
      return new Promise((resolve, reject) => {
        const s = connect({ host: LOOPBACK, port, allowHalfOpen: true });
        const onAbort = () => {
          s.destroy();
          reject(new AbortError('connect', options.signal?.reason));
        };
        options.signal?.addEventListener('abort', onAbort, { once: true });
        s.once('connect', () => {
          options.signal?.removeEventListener('abort', onAbort);
          s.removeAllListeners('error');
          resolve(s);
        });
        s.once('error', (err: NodeJS.ErrnoException) => {
          options.signal?.removeEventListener('abort', onAbort);
          // What an exit would say (tor's errno_to_stream_end_reason).
          reject(err.code === 'ECONNREFUSED' ? new StreamClosedError('relay', 'CONNECTREFUSED', 3) : new StreamClosedError('relay', 'MISC', 1));
        });
      });
    },
    async resolve(host: string, options: StreamConnectOptions = {}): Promise<string[]> {
      calls.push({ host, port: 0, isolation: options.isolation, signal: options.signal });
      if (host === 'v4.test') return [LOOPBACK, '::1'];
      if (host === 'v6.test') return ['::1'];
      if (host === 'none.test') return [];
      throw new StreamClosedError('relay', 'RESOLVEFAILED', 2);
    },
  };
}

/** Reads a socket's bytes as they come: wait for n bytes, for a SOCKS5 reply, or for the close. */
class Peer {
  private data = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  closed = false;
  readonly socket: Socket;

  constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (c: Buffer) => {
      this.data = Buffer.concat([this.data, c]);
      this.wake();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  private async until(what: string, ok: () => boolean, ms = 5000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!ok()) {
      if (this.closed) throw new Error(`closed while waiting for ${what} (have ${hex(this.data)})`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what} (have ${hex(this.data)})`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => (clearTimeout(t), r()));
      });
    }
  }

  async take(n: number): Promise<Buffer> {
    await this.until(`${n} bytes`, () => this.data.length >= n);
    const out = this.data.subarray(0, n);
    this.data = this.data.subarray(n);
    return out;
  }

  async reply(): Promise<{ replyCode: number; host: string; port: number; raw: string }> {
    let r: ReturnType<typeof decodeReply> | undefined;
    await this.until('a SOCKS5 reply', () => {
      try {
        r = decodeReply(this.data);
        return true;
      } catch (err) {
        if (err instanceof IncompleteError) return false;
        throw err;
      }
    });
    const raw = hex(this.data.subarray(0, r!.length));
    this.data = this.data.subarray(r!.length);
    return { replyCode: r!.replyCode, host: r!.host, port: r!.port, raw };
  }

  /** Everything until the server closes. */
  async rest(ms = 5000): Promise<Buffer> {
    await this.until('the close', () => this.closed, ms).catch((err) => {
      if (!this.closed) throw err;
    });
    const out = this.data;
    this.data = Buffer.alloc(0);
    return out;
  }
}

async function open(server: SocksServer): Promise<Peer> {
  const socket = connect({ host: LOOPBACK, port: server.address().port });
  await new Promise<void>((r, j) => socket.once('connect', r).once('error', j));
  return new Peer(socket);
}

/** The handshake up to the reply of the request: no auth or username/password, sent in one write. */
async function request(server: SocksServer, req: { command?: 'connect' | 'resolve' | 'resolve-ptr'; host: string; port: number }, auth?: [string, string]): Promise<{ peer: Peer; reply: Awaited<ReturnType<Peer['reply']>> }> {
  const peer = await open(server);
  peer.socket.write(Buffer.concat([encodeGreeting(auth ? [2] : [0]), auth ? encodeUserPass(auth[0], auth[1]) : Buffer.alloc(0), encodeRequest({ command: req.command ?? 'connect', ...req })]));
  assert.equal(hex(await peer.take(2)), auth ? '0502' : '0500');
  if (auth) assert.equal(hex(await peer.take(2)), '0100');
  return { peer, reply: await peer.reply() };
}

async function withServer<T>(connector: StreamConnector, options: SocksServerOptions, fn: (server: SocksServer, streams: SocksStreamInfo[]) => Promise<T>): Promise<T> {
  const streams: SocksStreamInfo[] = [];
  const server = await listenSocks(connector, { ...options, onStream: (i) => streams.push(i) });
  try {
    return await fn(server, streams);
  } finally {
    await server.close();
  }
}

const SUCCESS = '05000001000000000000';

test('CONNECT through the server: 5 MiB each way intact (sha256), half-closes carried, BND 0.0.0.0:0, the stream reported', async () => {
  await noLeaks(async () => {
    const mine = randomBytes(5 * 1024 * 1024);
    const theirs = randomBytes(5 * 1024 * 1024);
    let received: Promise<string> | undefined;
    const target = createServer({ allowHalfOpen: true }, (s) => {
      const h = createHash('sha256');
      received = new Promise((done) => {
        s.on('data', (c) => h.update(c));
        s.on('end', () => done(h.digest('hex')));
      });
      s.end(theirs);
    });
    const port = await listen(target);
    try {
      await withServer(loopbackConnector(), {}, async (server, streams) => {
        const { peer, reply } = await request(server, { host: LOOPBACK, port });
        assert.equal(reply.raw, SUCCESS);
        peer.socket.end(mine);
        const got = await peer.rest(20_000);
        assert.equal(sha(got), sha(theirs));
        assert.equal(await received, sha(mine));
        await waitFor(() => streams.length === 1);
        assert.deepEqual({ ...streams[0], ms: 0 }, { command: 'connect', host: LOOPBACK, port, isolation: undefined, replyCode: 0, bytesUp: mine.length, bytesDown: theirs.length, ms: 0, error: undefined });
        assert.equal(server.connections, 0);
      });
    } finally {
      await stop(target);
    }
  });
});

async function waitFor(ok: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function echoServer(): Promise<{ server: Server; port: number }> {
  const server = createServer((s) => s.pipe(s));
  return { server, port: await listen(server) };
}

test('username/password: distinct credentials get distinct isolation keys, equal ones the same, no auth none; data sent with the request goes through', async () => {
  await noLeaks(async () => {
    const echo = await echoServer();
    const connector = loopbackConnector();
    try {
      await withServer(connector, {}, async (server) => {
        for (const auth of [['alice', 'pw1'], ['alice', 'pw1'], ['bob', 'pw1'], ['alice', 'pw2'], undefined, ['', '']] as ([string, string] | undefined)[]) {
          // the request and the first data in one write (optimistic data)
          const peer = await open(server);
          peer.socket.write(Buffer.concat([encodeGreeting(auth ? [0, 2] : [0]), auth ? encodeUserPass(...auth) : Buffer.alloc(0), encodeRequest({ command: 'connect', host: 'echo.test', port: echo.port }), Buffer.from('ping')]));
          assert.equal(hex(await peer.take(auth ? 4 : 2)), auth ? '05020100' : '0500');
          assert.equal((await peer.reply()).raw, SUCCESS);
          assert.equal((await peer.take(4)).toString(), 'ping');
          peer.socket.destroy();
        }
        const keys = connector.calls.map((c) => c.isolation);
        assert.equal(keys[0], keys[1]);
        assert.ok(keys[0] !== undefined && keys[2] !== undefined && keys[3] !== undefined);
        assert.equal(new Set([keys[0], keys[2], keys[3]]).size, 3);
        assert.equal(keys[4], undefined);
        assert.equal(keys[5], undefined, 'empty credentials are no credentials (as tor)');
      });
    } finally {
      await stop(echo.server);
    }
  });
});

test('every END reason gets the reply code tor sends, then the socket closes; TimeoutError 0x06, other errors 0x01; a refused loopback port 0x05', async () => {
  const reasons: [string, number, number][] = [
    ['MISC', 1, 1], ['RESOLVEFAILED', 2, 4], ['CONNECTREFUSED', 3, 5], ['EXITPOLICY', 4, 2], ['DESTROY', 5, 1], ['DONE', 6, 5], ['TIMEOUT', 7, 6],
    ['NOROUTE', 8, 4], ['HIBERNATING', 9, 1], ['INTERNAL', 10, 1], ['RESOURCELIMIT', 11, 1], ['CONNRESET', 12, 5], ['TORPROTOCOL', 13, 1], ['NOTDIRECTORY', 14, 1],
  ];
  const failing: StreamConnector = {
    async connect(_host, port) {
      if (port === 1000) throw new TimeoutError('the CONNECTED cell', 10);
      if (port === 1001) throw new Error('not an OrportError');
      const [reason, n] = reasons[port - 1]!;
      throw new StreamClosedError('relay', reason, n);
    },
  };
  await noLeaks(async () => {
    await withServer(failing, {}, async (server, streams) => {
      for (const [i, [reason, , code]] of reasons.entries()) {
        const { peer, reply } = await request(server, { host: 'x.test', port: i + 1 });
        assert.equal(reply.replyCode, code, reason);
        assert.equal(reply.raw, `05${code.toString(16).padStart(2, '0')}0001000000000000`);
        assert.equal((await peer.rest()).length, 0);
      }
      assert.equal((await request(server, { host: 'x.test', port: 1000 })).reply.replyCode, 6);
      assert.equal((await request(server, { host: 'x.test', port: 1001 })).reply.replyCode, 1);
      await waitFor(() => streams.length === reasons.length + 2);
      assert.equal(streams[2]!.error?.code, 'E_STREAM_CLOSED');
      assert.equal(streams[2]!.replyCode, 5);
      assert.equal(streams[reasons.length + 1]!.error?.code, 'E_NETWORK');
    });
    const dead = await deadPort();
    await withServer(loopbackConnector(), {}, async (server) => {
      const { peer, reply } = await request(server, { host: LOOPBACK, port: dead });
      assert.equal(reply.replyCode, 5);
      await peer.rest();
    });
  });
});

test('malformed requests get their reply and a closed socket: BIND, UDP ASSOCIATE, address type, bad name, no method, SOCKS4, HTTP, auth version', async () => {
  const rows: [string, Buffer, string | RegExp][] = [
    ['BIND', Buffer.from('050100050200017f0000010050', 'hex'), '0500' + '05070001000000000000'],
    ['UDP ASSOCIATE', Buffer.from('050100050300017f0000010050', 'hex'), '0500' + '05070001000000000000'],
    ['address type 9', Buffer.from('0501000501000900', 'hex'), '0500' + '05080001000000000000'],
    ['bad hostname', Buffer.concat([Buffer.from('05010005010003056124622e63', 'hex'), Buffer.from('0050', 'hex')]), '0500' + '05010001000000000000'],
    ['RESOLVE_PTR of a name', Buffer.concat([encodeGreeting([0]), encodeRequest({ command: 'resolve-ptr', host: 'example.test', port: 0 })]), '0500' + '05080001000000000000'],
    ['no acceptable method', Buffer.from('050101', 'hex'), '05ff'],
    ['SOCKS4', Buffer.from('040100507f00000100', 'hex'), '005b000000000000'],
    ['auth version 2', Buffer.from('0501020205616c6963650170', 'hex'), '05020101'],
    ['HTTP', Buffer.from('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'), /^485454502f312e3020353031/],
  ];
  const connector = loopbackConnector();
  await noLeaks(async () => {
    await withServer(connector, {}, async (server) => {
      for (const [name, input, expected] of rows) {
        const peer = await open(server);
        peer.socket.write(input);
        const got = hex(await peer.rest());
        if (typeof expected === 'string') assert.equal(got, expected, name);
        else assert.match(got, expected, name);
      }
      await waitFor(() => server.connections === 0);
    });
  });
  assert.equal(connector.calls.length, 0);
});

test('fuzz: random bytes after a valid greeting: the server answers what the codec says and always closes (handshake timeout bounds the rest)', async () => {
  const cases = fc.sample(fc.uint8Array({ minLength: 1, maxLength: 40 }), Math.max(20, Math.round(RUNS / 5)));
  const refusing: StreamConnector = {
    connect: async () => Promise.reject(new StreamClosedError('relay', 'MISC', 1)),
    resolve: async () => Promise.reject(new StreamClosedError('relay', 'MISC', 1)),
  };
  /** The final reply for a request the codec accepted, as the server must answer it with `refusing`. */
  const finalReply = (r: SocksRequest) =>
    r.command === 'resolve-ptr' ? encodeReply(7) : r.command === 'resolve' && isIP(r.host) ? encodeReply(0, { host: r.host, port: 0 }) : encodeReply(1);
  await noLeaks(async () => {
    await withServer(refusing, { handshakeTimeoutMs: 300 }, async (server) => {
      await Promise.all(
        cases.map(async (garbage) => {
          const input = Buffer.concat([Buffer.from('050100', 'hex'), garbage]);
          const step = new Socks5Handshake().push(input);
          const peer = await open(server);
          peer.socket.write(input);
          const started = Date.now();
          const got = hex(await peer.rest(3000));
          if (step.kind === 'reject') assert.equal(got, hex(step.reply));
          else if (step.kind === 'more') {
            assert.equal(got, hex(step.reply));
            assert.ok(Date.now() - started >= 250, 'held until the handshake timeout');
          } else assert.equal(got, hex(step.reply) + hex(finalReply(step.request)));
        }),
      );
      await waitFor(() => server.connections === 0);
    });
  });
});

test('RESOLVE answers the first address (IPv4, IPv6), an address at once, failures 0x04; RESOLVE_PTR and a connector without resolve 0x07', async () => {
  await noLeaks(async () => {
    const connector = loopbackConnector();
    await withServer(connector, {}, async (server) => {
      const ask = async (command: 'resolve' | 'resolve-ptr', host: string) => {
        const { peer, reply } = await request(server, { command, host, port: 0 });
        await peer.rest();
        return reply.raw;
      };
      assert.equal(await ask('resolve', 'v4.test'), '050000017f0000010000');
      assert.equal(await ask('resolve', 'v6.test'), '05000004' + '00'.repeat(15) + '01' + '0000');
      assert.equal(await ask('resolve', 'none.test'), '05040001000000000000');
      assert.equal(await ask('resolve', 'nowhere.test'), '05040001000000000000');
      const before = connector.calls.length;
      assert.equal(await ask('resolve', '10.1.2.3'), '050000010a0102030000');
      assert.equal(connector.calls.length, before, 'an address is answered without the connector');
      assert.equal(await ask('resolve-ptr', '127.0.0.1'), '05070001000000000000');
    });
    await withServer({ connect: loopbackConnector().connect }, {}, async (server) => {
      const { peer, reply } = await request(server, { command: 'resolve', host: 'v4.test', port: 0 });
      assert.equal(reply.replyCode, 7);
      await peer.rest();
    });
  });
});

test('bounded waits: a silent or slow client is closed after handshakeTimeoutMs; a connect past connectTimeoutMs gets 0x06 and its signal aborted; a client leaving mid-connect aborts it', async () => {
  const signals: AbortSignal[] = [];
  const hanging: StreamConnector = {
    connect: (_h, _p, o) =>
      new Promise((_resolve, reject) => {
        signals.push(o!.signal!);
        o!.signal!.addEventListener('abort', () => reject(new AbortError('connect', o!.signal!.reason)), { once: true });
      }),
  };
  await noLeaks(async () => {
    await withServer(hanging, { handshakeTimeoutMs: 200, connectTimeoutMs: 300 }, async (server, streams) => {
      const silent = await open(server);
      const slow = await open(server);
      slow.socket.write(Buffer.from('0501', 'hex'));
      const t0 = Date.now();
      assert.equal((await silent.rest()).length, 0);
      assert.equal((await slow.rest()).length, 0);
      assert.ok(Date.now() - t0 >= 150 && Date.now() - t0 < 2000);

      const t1 = Date.now();
      const { peer, reply } = await request(server, { host: 'slow.test', port: 80 });
      assert.equal(reply.replyCode, 6);
      assert.ok(Date.now() - t1 >= 250);
      await peer.rest();
      assert.equal(signals[0]!.aborted, true);
      assert.ok(signals[0]!.reason instanceof TimeoutError);

      const leaving = await open(server);
      leaving.socket.write(Buffer.concat([encodeGreeting([0]), encodeRequest({ command: 'connect', host: 'slow.test', port: 81 })]));
      await leaving.take(2);
      await waitFor(() => signals.length === 2);
      leaving.socket.destroy();
      await waitFor(() => signals[1]!.aborted);
      assert.ok(signals[1]!.reason instanceof AbortError);
      await waitFor(() => streams.length === 2);
      assert.equal(streams[1]!.replyCode, undefined);
      assert.equal(streams[1]!.error?.code, 'E_ABORTED');
    });
  });
});

test('close() with connections open (piping, handshaking, connecting) closes them all and leaks nothing; so does the signal', async () => {
  await noLeaks(async () => {
    const echo = await echoServer();
    const late: StreamConnector = {
      connect: (h, p, o) => (p === echo.port ? loopbackConnector().connect(h, p, o) : new Promise((_r, reject) => o!.signal!.addEventListener('abort', () => reject(new AbortError('connect')), { once: true }))),
    };
    try {
      const server = await listenSocks(late, {});
      const piping = await request(server, { host: 'echo.test', port: echo.port });
      piping.peer.socket.write('hello');
      assert.equal((await piping.peer.take(5)).toString(), 'hello');
      const handshaking = await open(server);
      handshaking.socket.write(Buffer.from('05', 'hex'));
      const connecting = await open(server);
      connecting.socket.write(Buffer.concat([encodeGreeting([0]), encodeRequest({ command: 'connect', host: 'never.test', port: 9 })]));
      await connecting.take(2);
      await waitFor(() => server.connections === 3);
      await server.close();
      assert.equal(server.connections, 0);
      for (const p of [piping.peer, handshaking, connecting]) await p.rest();
      await server.close(); // twice is fine

      const controller = new AbortController();
      const second = await listenSocks(late, { signal: controller.signal });
      const open2 = await open(second);
      controller.abort();
      await open2.rest();
      await waitFor(() => second.connections === 0);
      await assert.rejects(listenSocks(late, { signal: controller.signal }), { code: 'E_ABORTED' });
    } finally {
      await stop(echo.server);
    }
  });
});

test('listenSocks binds 127.0.0.1 by default; bad options are BadArgumentErrors; a busy port a NetworkError', async () => {
  await noLeaks(async () => {
    const server = await listenSocks(loopbackConnector());
    try {
      assert.equal(server.address().address, LOOPBACK);
      assert.ok(server.address().port > 0);
      await assert.rejects(listenSocks(loopbackConnector(), { port: server.address().port }), { code: 'E_NETWORK' });
    } finally {
      await server.close();
    }
    await assert.rejects(listenSocks(loopbackConnector(), { port: 70000 }), { code: 'E_BAD_ARGUMENT' });
    await assert.rejects(listenSocks(loopbackConnector(), { handshakeTimeoutMs: 0 }), { code: 'E_BAD_ARGUMENT' });
  });
});

let curl: string | undefined;
try {
  curl = execFileSync('curl', ['--version'], { encoding: 'utf8' }).split(' ')[1];
} catch {
  curl = undefined;
}

function runCurl(args: string[]): Promise<{ status: number; stdout: Buffer; stderr: string }> {
  return new Promise((done) => {
    execFile('curl', args, { encoding: 'buffer', timeout: 30_000, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      done({ status: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr: stderr.toString() });
    });
  });
}

test('curl --socks5-hostname through the server: an HTTP body intact, credentials become isolation, a refused port is curl error 97', { skip: curl ? false : 'curl is not installed' }, async () => {
  const body = randomBytes(3 * 1024 * 1024);
  const http = createHttpServer((req, res) => {
    if (req.method === 'POST') {
      const h = createHash('sha256');
      req.on('data', (c) => h.update(c));
      req.on('end', () => res.end(h.digest('hex')));
      return;
    }
    res.writeHead(200, { 'content-length': body.length }).end(body);
  });
  await new Promise<void>((r) => http.listen(0, LOOPBACK, r));
  const httpPort = (http.address() as AddressInfo).port;
  const connector = loopbackConnector();
  try {
    await noLeaks(() =>
      withServer(connector, {}, async (server, streams) => {
        const proxy = `${LOOPBACK}:${server.address().port}`;
        const get = await runCurl(['-sS', '--socks5-hostname', proxy, `http://${LOOPBACK}:${httpPort}/`]);
        assert.equal(get.status, 0, get.stderr);
        assert.equal(sha(get.stdout), sha(body));
        assert.equal(connector.calls[0]!.host, LOOPBACK);
        assert.equal(connector.calls[0]!.isolation, undefined);

        const upload = randomBytes(2 * 1024 * 1024);
        const post = await new Promise<{ status: number; stdout: Buffer; stderr: string }>((done) => {
          const child = execFile('curl', ['-sS', '--socks5-hostname', proxy, '-U', 'alice:secret', '--data-binary', '@-', `http://${LOOPBACK}:${httpPort}/`], { encoding: 'buffer', timeout: 30_000, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } }, (err, stdout, stderr) =>
            done({ status: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr: stderr.toString() }),
          );
          child.stdin!.end(upload);
        });
        assert.equal(post.status, 0, post.stderr);
        assert.equal(post.stdout.toString(), sha(upload));
        assert.ok(connector.calls[1]!.isolation !== undefined);
        const again = await runCurl(['-sS', '-o', '/dev/null', '--socks5-hostname', proxy, '-U', 'alice:secret', `http://${LOOPBACK}:${httpPort}/`]);
        assert.equal(again.status, 0, again.stderr);
        const other = await runCurl(['-sS', '-o', '/dev/null', '--socks5-hostname', proxy, '-U', 'bob:secret', `http://${LOOPBACK}:${httpPort}/`]);
        assert.equal(other.status, 0, other.stderr);
        assert.equal(connector.calls[2]!.isolation, connector.calls[1]!.isolation);
        assert.notEqual(connector.calls[3]!.isolation, connector.calls[1]!.isolation);

        const refused = await runCurl(['-sS', '--socks5-hostname', proxy, `http://${LOOPBACK}:${await deadPort()}/`]);
        assert.equal(refused.status, 97, refused.stderr); // CURLE_PROXY: the SOCKS server refused
        assert.match(refused.stderr, /refused|connection/i);
        await waitFor(() => streams.length === 5);
      }),
    );
  } finally {
    http.closeAllConnections();
    await new Promise<void>((r) => http.close(() => r()));
  }
});
