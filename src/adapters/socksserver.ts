/**
 * adapters/socksserver — a SOCKS5 server in front of a StreamConnector (a TorClient, or
 * anything with `connect`): `listenSocks(connector, options)`. Each client's handshake
 * is read by the pure codec (socks5.ts); CONNECT opens a stream through the connector
 * (credentials → an isolation key: tor's IsolateSOCKSAuth) and then pipes both ways with
 * backpressure; RESOLVE answers the first address the connector's `resolve` gives.
 *
 * Layer: thin I/O (sockets, timers). Every wait is bounded: the handshake
 * (`handshakeTimeoutMs`, 10 s), the connect or resolve (`connectTimeoutMs`, 120 s, tor's
 * SocksTimeout). Binds loopback unless told otherwise. `close()` ends the listener and
 * every connection, and leaves no socket, timer or listener behind.
 *
 * Not here: the protocol's bytes (socks5.ts), how streams are made (the connector).
 * RESOLVE_PTR is answered "command not supported" (the connector has no reverse lookup).
 */
import { createServer, isIP, type Server, type Socket } from 'node:net';
import type { ConnectedStream, StreamConnector } from './connector.js';
import { AbortError, BadArgumentError, NetworkError, OrportError, TimeoutError } from '../errors.js';
import { encodeReply, isolationKey, Socks5Handshake, SocksReply, socksReplyForError, type SocksCommandName, type SocksRequest } from './socks5.js';

export interface SocksServerOptions {
  /** The address to listen on (default 127.0.0.1: loopback only). */
  readonly host?: string;
  /** The port (default 0: any free port; see `address()`). */
  readonly port?: number;
  /** Aborting it closes the server as `close()` does. */
  readonly signal?: AbortSignal;
  /** How long a client has for its whole handshake, greeting to request (default 10,000 ms). */
  readonly handshakeTimeoutMs?: number;
  /** How long a CONNECT or RESOLVE may take (default 120,000 ms, tor's SocksTimeout); then 0x06 TTL expired. */
  readonly connectTimeoutMs?: number;
  /** Called once per request when its connection ends (for logs, stats). */
  readonly onStream?: (info: SocksStreamInfo) => void;
}

/** What became of one request. */
export interface SocksStreamInfo {
  readonly command: SocksCommandName;
  readonly host: string;
  readonly port: number;
  /** The isolation key the stream was opened with (undefined: the shared default). */
  readonly isolation: string | undefined;
  /** The reply code sent to the client (0 success), or undefined when the client left before it. */
  readonly replyCode: number | undefined;
  /** Bytes from the client to the target, and from the target to the client. */
  readonly bytesUp: number;
  readonly bytesDown: number;
  /** From the request to the end of the connection. */
  readonly ms: number;
  /** Why the connect or the stream failed, if it did. */
  readonly error?: OrportError | undefined;
}

export interface SocksServer {
  /** Where it listens. */
  address(): { address: string; port: number };
  /** Open SOCKS connections (handshaking, connecting or piping). */
  readonly connections: number;
  /** Stops listening and closes every connection; resolves when all are closed. */
  close(): Promise<void>;
}

const HANDSHAKE_TIMEOUT_MS = 10_000;
const CONNECT_TIMEOUT_MS = 120_000;
/** Bytes a client may send while its CONNECT is pending (optimistic data) before reading pauses. */
const PENDING_DATA_LIMIT = 64 * 1024;

function checkTimeout(name: string, value: number | undefined, fallback: number): number {
  const ms = value ?? fallback;
  if (!(ms > 0) || !Number.isFinite(ms)) throw new BadArgumentError(`${name} must be a positive number of milliseconds, not ${ms}`);
  return ms;
}

function asOrportError(err: unknown, what: string): OrportError {
  if (err instanceof OrportError) return err;
  const e = err as NodeJS.ErrnoException;
  return new NetworkError(`${what}: ${e?.message ?? String(err)}`, { cause: err, errno: e?.code });
}

/** Listens for SOCKS5 clients on `host:port` and serves them through `connector`. */
export async function listenSocks(connector: StreamConnector, options: SocksServerOptions = {}): Promise<SocksServer> {
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 0xffff) throw new BadArgumentError(`port must be 0-65535, not ${port}`);
  const handshakeTimeoutMs = checkTimeout('handshakeTimeoutMs', options.handshakeTimeoutMs, HANDSHAKE_TIMEOUT_MS);
  const connectTimeoutMs = checkTimeout('connectTimeoutMs', options.connectTimeoutMs, CONNECT_TIMEOUT_MS);
  if (options.signal?.aborted) throw new AbortError('the SOCKS server to listen', options.signal.reason);

  const sockets = new Set<Socket>();
  // allowHalfOpen: a client that half-closes still gets the rest of the answer.
  const server: Server = createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    serveClient(socket, connector, { handshakeTimeoutMs, connectTimeoutMs, onStream: options.onStream });
  });

  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      reject(new NetworkError(`cannot listen on ${host}:${port}: ${err.message}`, { cause: err, errno: err.code }));
    };
    server.once('error', onError);
    server.listen({ host, port, exclusive: true }, () => {
      server.off('error', onError);
      resolve();
    });
  });
  // Errors after listening (EMFILE on accept…) must not crash the process.
  server.on('error', () => {});

  let closing: Promise<void> | undefined;
  const onAbort = () => void close();
  options.signal?.addEventListener('abort', onAbort, { once: true });

  function close(): Promise<void> {
    closing ??= (async () => {
      options.signal?.removeEventListener('abort', onAbort);
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      const ends = [...sockets].map((s) => new Promise<void>((resolve) => (s.once('close', () => resolve()), s.destroy())));
      await Promise.all([closed, ...ends]);
    })();
    return closing;
  }

  const bound = server.address();
  const where = typeof bound === 'object' && bound ? { address: bound.address, port: bound.port } : { address: host, port };
  return {
    address: () => ({ ...where }),
    get connections() {
      return sockets.size;
    },
    close,
  };
}

/** Writes `last`, ends the socket and destroys it once written, or after `lingerMs` if the client doesn't read. */
function endThenDestroy(socket: Socket, last: Uint8Array, lingerMs: number): void {
  if (socket.destroyed) return;
  socket.pause();
  const timer = setTimeout(() => socket.destroy(), lingerMs);
  socket.once('close', () => clearTimeout(timer));
  socket.end(last, () => socket.destroy());
}

interface ClientOptions {
  readonly handshakeTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly onStream: ((info: SocksStreamInfo) => void) | undefined;
}

/** One client: handshake, then CONNECT or RESOLVE, then the pipe. Destroying `socket` ends everything. */
function serveClient(socket: Socket, connector: StreamConnector, options: ClientOptions): void {
  socket.setNoDelay(true);
  socket.on('error', () => socket.destroy());
  const handshake = new Socks5Handshake();
  const handshakeTimer = setTimeout(() => socket.destroy(), options.handshakeTimeoutMs);
  socket.once('close', () => clearTimeout(handshakeTimer));
  // A client that ends its side before its request is answered is gone (tor closes too).
  const onEarlyEnd = () => socket.destroy();
  socket.on('end', onEarlyEnd);

  const onData = (chunk: Buffer) => {
    const step = handshake.push(chunk);
    if (step.kind === 'reject') {
      socket.off('data', onData);
      return void endThenDestroy(socket, step.reply, options.handshakeTimeoutMs);
    }
    if (step.reply.length) socket.write(step.reply);
    if (step.kind === 'more') return;
    socket.off('data', onData);
    clearTimeout(handshakeTimer);
    handleRequest(socket, connector, step.request, step.rest, options, onEarlyEnd);
  };
  socket.on('data', onData);
}

function handleRequest(socket: Socket, connector: StreamConnector, request: SocksRequest, rest: Uint8Array, options: ClientOptions, onEarlyEnd: () => void): void {
  const started = performance.now();
  const isolation = isolationKey(request.auth);
  let replyCode: number | undefined;
  let error: OrportError | undefined;
  let bytesUp = rest.length;
  let bytesDown = 0;
  // Reported once the connection is closed and the connector's answer is in (or given up on).
  let waiting = true;
  let reported = false;
  const report = () => {
    if (reported || waiting || !socket.destroyed) return;
    reported = true;
    options.onStream?.({ command: request.command, host: request.host, port: request.port, isolation, replyCode, bytesUp, bytesDown, ms: performance.now() - started, error });
  };
  socket.once('close', report);

  /** Sends the final reply and closes (after it is written). */
  const finish = (code: number, bound?: { host: string; port: number }) => {
    if (socket.destroyed) return;
    replyCode = code;
    endThenDestroy(socket, encodeReply(code, bound), options.handshakeTimeoutMs);
  };

  // The wait for the connector: bounded, and cut short when the client goes away.
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new TimeoutError(`${request.command} ${request.host}:${request.port}`, options.connectTimeoutMs)), options.connectTimeoutMs);
  const onGone = () => controller.abort(new AbortError(`${request.command} ${request.host}:${request.port}: the SOCKS client left`));
  socket.once('close', onGone);
  const settled = () => {
    clearTimeout(timer);
    socket.off('close', onGone);
    waiting = false;
    queueMicrotask(report);
  };
  /** Resolves with the connector's answer, or rejects with the timeout / abort, whichever is first. */
  const bounded = <T>(work: Promise<T>, cleanup: (value: T) => void): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const onAbort = () => reject(controller.signal.reason as OrportError);
      if (controller.signal.aborted) return onAbort();
      controller.signal.addEventListener('abort', onAbort, { once: true });
      work.then(
        (value) => {
          controller.signal.removeEventListener('abort', onAbort);
          if (controller.signal.aborted) cleanup(value);
          else resolve(value);
        },
        (err: unknown) => {
          controller.signal.removeEventListener('abort', onAbort);
          reject(err);
        },
      );
    });
  const fail = (err: unknown) => {
    settled();
    error = asOrportError(err, `${request.command} ${request.host}:${request.port}`);
    finish(socksReplyForError(error));
  };
  const opts = { isolation, signal: controller.signal, timeoutMs: options.connectTimeoutMs };

  if (request.command === 'resolve') {
    // An address needs no lookup: tor answers it at once.
    const lookup = isIP(request.host) ? Promise.resolve([request.host]) : connector.resolve ? connector.resolve(request.host, opts) : undefined;
    if (!lookup) return void (settled(), finish(SocksReply.COMMAND_NOT_SUPPORTED));
    bounded(Promise.resolve(lookup), () => {}).then((addresses) => {
      settled();
      const first = addresses.find((a) => isIP(a) !== 0);
      if (first === undefined) finish(SocksReply.HOST_UNREACHABLE);
      else finish(SocksReply.SUCCEEDED, { host: first, port: 0 });
    }, fail);
    return;
  }
  if (request.command === 'resolve-ptr') return void (settled(), finish(SocksReply.COMMAND_NOT_SUPPORTED));

  // CONNECT: keep reading while connecting (bounded), so a client that leaves is noticed.
  const pending: Buffer[] = rest.length ? [Buffer.from(rest.buffer, rest.byteOffset, rest.length)] : [];
  let pendingBytes = rest.length;
  const onPending = (chunk: Buffer) => {
    pending.push(chunk);
    pendingBytes += chunk.length;
    bytesUp += chunk.length;
    if (pendingBytes > PENDING_DATA_LIMIT) socket.pause();
  };
  socket.on('data', onPending);
  socket.resume();

  let connecting: Promise<ConnectedStream>;
  try {
    connecting = connector.connect(request.host, request.port, opts);
  } catch (err) {
    connecting = Promise.reject(err);
  }
  bounded(connecting, (late) => late.destroy()).then((stream) => {
    settled();
    socket.off('data', onPending);
    socket.off('end', onEarlyEnd);
    if (socket.destroyed) return void stream.destroy();
    replyCode = SocksReply.SUCCEEDED;
    socket.write(encodeReply(SocksReply.SUCCEEDED));
    pipeBoth(socket, stream, pending, {
      up: (n) => (bytesUp += n),
      down: (n) => (bytesDown += n),
      error: (err) => (error ??= asOrportError(err, `stream to ${request.host}:${request.port}`)),
    });
  }, (err: unknown) => {
    socket.off('data', onPending);
    fail(err);
  });
}

/**
 * Pipes client ⇄ stream with backpressure (`pipe` pauses the faster side). Half-closes
 * travel; when the stream is done the client is ended once its data is written; an
 * error on either side destroys both.
 */
function pipeBoth(socket: Socket, stream: ConnectedStream, pending: readonly Buffer[], count: { up(n: number): void; down(n: number): void; error(err: unknown): void }): void {
  for (const chunk of pending) stream.write(chunk);
  socket.on('data', (chunk: Buffer) => count.up(chunk.length));
  stream.on('data', (chunk: Buffer) => count.down(chunk.length));
  stream.on('error', (err) => {
    count.error(err);
    socket.destroy();
  });
  socket.on('error', (err) => {
    count.error(err);
    stream.destroy();
  });
  stream.once('close', () => {
    socket.unpipe(stream);
    if (socket.destroyed) return;
    if (socket.writableEnded) {
      if (socket.writableFinished) socket.destroy();
      else socket.once('finish', () => socket.destroy());
    } else {
      socket.end(() => socket.destroy());
    }
  });
  socket.once('close', () => stream.destroy());
  // A client's half-close ends the stream's writing side (pipe does), and vice versa.
  socket.pipe(stream);
  stream.pipe(socket);
  socket.resume();
}
