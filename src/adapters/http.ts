/**
 * adapters/http — HTTP over Tor streams for the ecosystem: an undici dispatcher (for
 * undici's `fetch`, and Node's own fetch through `dispatcher`), `torFetch`, and Node
 * `http.Agent` / `https.Agent` subclasses (for `http.get`, axios, got…). Each opens its
 * connections with a `StreamConnector` (a TorClient) and, for https:, runs TLS over the
 * stream with the certificate checks Node does for any HTTPS request (servername, CA
 * chain, host name); `tls` options such as `ca` pass through.
 *
 * Layer: adapters, above the client. It does not speak HTTP itself (undici and Node's
 * http module do), does not resolve names (the exit does), and adds no retries: a failed
 * connect is the connector's typed error, handed on unchanged; a failed TLS handshake is a
 * NetworkError whose `errno` is OpenSSL's / Node's code.
 */
import http from 'node:http';
import https from 'node:https';
import { isIP, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { Agent, fetch, type Dispatcher, type RequestInit, type Response } from 'undici';
import { NetworkError } from '../errors.js';
import { boundedWait } from '../client/wait.js';
import type { StreamConnector } from './connector.js';

/** What every adapter of this module takes besides its library's own options. */
export interface TorHttpOptions {
  /** Passed to `connector.connect`: connections with distinct keys never share a circuit. */
  isolation?: string;
  /** Bounds each connection: the stream through the exit and the TLS handshake (default 60 s). */
  connectTimeoutMs?: number;
  /** Aborts every connection being opened (an AbortError) when it fires. */
  signal?: AbortSignal;
}

/** TLS options that may be given for https: (`ca`, client certificates, versions…); the socket, servername and ALPN are ours. */
export type TorTlsOptions = Omit<tls.ConnectionOptions, 'socket' | 'host' | 'port' | 'path' | 'servername' | 'ALPNProtocols' | 'timeout'>;

export interface DispatcherOptions extends TorHttpOptions, Omit<Agent.Options, 'connect' | 'tls'> {
  /** For https: origins; the certificate is checked as always, against `ca` when given. */
  tls?: TorTlsOptions;
}

export interface TorAgentOptions extends TorHttpOptions, http.AgentOptions {}
export interface TorHttpsAgentOptions extends TorHttpOptions, https.AgentOptions {}

const DEFAULT_CONNECT_TIMEOUT_MS = 60_000;

interface OpenRequest extends TorHttpOptions {
  host: string;
  port: number;
  /** TLS over the stream when present. */
  tls?: TorTlsOptions & { servername?: string | undefined };
}

function hostPort(host: string, port: number): string {
  return `${isIP(host) === 6 ? `[${host}]` : host}:${port}`;
}

/**
 * Opens a stream through the connector and, when asked, TLS over it; all of it bounded by
 * one timeout and the signal. A stream or TLS socket opened when the wait has already ended
 * is destroyed.
 */
export function openStream(connector: StreamConnector, request: OpenRequest): Promise<Duplex> {
  const { host, port } = request;
  const timeoutMs = request.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const what = `a connection to ${hostPort(host, port)}`;
  return boundedWait<Duplex>(what, { timeoutMs, signal: request.signal }, timeoutMs, ({ resolve, reject }) => {
    const controller = new AbortController();
    let ended = false;
    let open: Duplex | undefined;
    (async () => {
      const stream = await connector.connect(host, port, { isolation: request.isolation, signal: controller.signal, timeoutMs });
      open = stream;
      if (ended) return void stream.destroy();
      if (!request.tls) return resolve(socketLike(stream));
      const secure = startTls(stream, host, port, request.tls);
      open = secure.socket;
      resolve(await secure.ready);
    })().catch(reject);
    return (error) => {
      ended = true;
      controller.abort(error);
      open?.destroy();
    };
  });
}

/** TLS over `stream` with Node's checks; `ready` rejects with a NetworkError naming the target. */
function startTls(stream: Duplex, host: string, port: number, options: TorTlsOptions & { servername?: string | undefined }): { socket: tls.TLSSocket; ready: Promise<tls.TLSSocket> } {
  const servername = options.servername || (isIP(host) ? undefined : host);
  const socket = tls.connect({ ...options, socket: stream, host, servername, ALPNProtocols: ['http/1.1'] });
  socket.once('close', () => stream.destroy());
  const ready = new Promise<tls.TLSSocket>((resolve, reject) => {
    const onError = (err: Error & { code?: string }) => {
      socket.destroy();
      reject(new NetworkError(`TLS with ${hostPort(host, port)} failed: ${err.message}`, { cause: err, errno: err.code }));
    };
    socket.once('error', onError);
    socket.once('secureConnect', () => {
      socket.off('error', onError);
      resolve(socket);
    });
  });
  return { socket, ready };
}

type SocketMethods = Pick<Socket, 'setKeepAlive' | 'setNoDelay' | 'ref' | 'unref' | 'setTimeout'> & { timeout?: number };

/**
 * A stream that is not a net.Socket gets the socket methods HTTP clients call on it:
 * keep-alive, no-delay, ref and unref do nothing (the stream's circuit is not a handle of
 * its own), and setTimeout is an idle timer that reads and writes restart.
 */
function socketLike(stream: Duplex): Duplex {
  if (stream instanceof Socket) return stream;
  const s = stream as Duplex & Partial<SocketMethods>;
  s.setKeepAlive ??= () => s as unknown as Socket;
  s.setNoDelay ??= () => s as unknown as Socket;
  s.ref ??= () => s as unknown as Socket;
  s.unref ??= () => s as unknown as Socket;
  if (!s.setTimeout) {
    let timer: NodeJS.Timeout | undefined;
    let watching = false;
    const watchActivity = () => {
      watching = true;
      const { push, write } = s;
      s.push = (...args: Parameters<Duplex['push']>) => (timer?.refresh(), push.apply(s, args));
      s.write = ((...args: Parameters<Duplex['write']>) => (timer?.refresh(), (write as (...a: unknown[]) => boolean).apply(s, args))) as Duplex['write'];
      s.once('close', () => clearTimeout(timer));
    };
    s.setTimeout = ((ms: number, callback?: () => void) => {
      if (callback) s.once('timeout', callback);
      clearTimeout(timer);
      timer = undefined;
      s.timeout = ms;
      if (ms > 0 && !s.destroyed) {
        if (!watching) watchActivity();
        timer = setTimeout(() => s.emit('timeout'), ms).unref();
      }
      return s;
    }) as Socket['setTimeout'];
  }
  return s;
}

/** An undici Agent whose `destroy()` also aborts the connections it is opening. */
class TorDispatcher extends Agent {
  readonly #opening: AbortController;

  constructor(options: Agent.Options, opening: AbortController) {
    super(options);
    this.#opening = opening;
  }

  override destroy(): Promise<void>;
  override destroy(err: Error | null): Promise<void>;
  override destroy(callback: () => void): void;
  override destroy(err: Error | null, callback: () => void): void;
  override destroy(...args: unknown[]): Promise<void> | void {
    this.#opening.abort();
    return (super.destroy as (...a: unknown[]) => Promise<void> | void)(...args);
  }
}

/** The signal of `own`, and `outer`'s too when given. */
function joinSignals(own: AbortSignal, outer: AbortSignal | undefined): AbortSignal {
  return outer ? AbortSignal.any([own, outer]) : own;
}

/**
 * An undici dispatcher whose connections are streams through `connector` (TLS over them
 * for https:). Use it with `torFetch`, undici's `fetch` / `request`, or Node's fetch
 * (`{ dispatcher }`). `close()` lets requests finish; `destroy()` also aborts connects.
 */
export function createDispatcher(connector: StreamConnector, options: DispatcherOptions = {}): Agent {
  const { isolation, connectTimeoutMs, signal, tls: tlsOptions, ...agentOptions } = options;
  const opening = new AbortController();
  const connectSignal = joinSignals(opening.signal, signal);
  return new TorDispatcher(
    {
      ...agentOptions,
      connect(target, callback) {
        const https = target.protocol === 'https:';
        const port = target.port ? Number(target.port) : https ? 443 : 80;
        const host = target.hostname.startsWith('[') ? target.hostname.slice(1, -1) : target.hostname;
        openStream(connector, { host, port, isolation, connectTimeoutMs, signal: connectSignal, tls: https ? { ...tlsOptions, servername: target.servername } : undefined }).then(
          (stream) => callback(null, stream as Socket),
          (err: Error) => callback(err, null),
        );
      },
    },
    opening,
  );
}

/** undici's `fetch` through `dispatcher` (from `createDispatcher`): a WHATWG Response, its body streamed. */
export function torFetch(dispatcher: Dispatcher, url: string | URL, init: Omit<RequestInit, 'dispatcher'> = {}): Promise<Response> {
  return fetch(url, { ...init, dispatcher });
}

/** The options of a request that tls.connect understands (Node's https agent merges them in). */
const TLS_KEYS = [
  'ca', 'cert', 'key', 'pfx', 'passphrase', 'crl', 'ciphers', 'ecdhCurve', 'sigalgs', 'minVersion', 'maxVersion', 'secureProtocol',
  'secureOptions', 'secureContext', 'honorCipherOrder', 'rejectUnauthorized', 'checkServerIdentity', 'session', 'servername', 'privateKeyEngine', 'privateKeyIdentifier', 'clientCertEngine', 'dhparam',
] as const;

function pickTls(options: Record<string, unknown>): TorTlsOptions & { servername?: string } {
  const picked: Record<string, unknown> = {};
  for (const key of TLS_KEYS) if (options[key] !== undefined) picked[key] = options[key];
  return picked as TorTlsOptions & { servername?: string };
}

/** The connection an Agent asked for, opened through the connector and handed to Node's callback. */
function agentConnection(
  connector: StreamConnector,
  own: TorHttpOptions,
  options: http.ClientRequestArgs,
  secure: boolean,
  callback: ((err: Error | null, stream: Duplex) => void) | undefined,
): undefined {
  const host = (options.hostname ?? options.host ?? 'localhost').replace(/^\[(.*)\]$/, '$1');
  const port = Number(options.port ?? (secure ? 443 : 80));
  const tlsOptions = secure ? pickTls(options as Record<string, unknown>) : undefined;
  openStream(connector, { host, port, isolation: own.isolation, connectTimeoutMs: own.connectTimeoutMs, signal: own.signal, tls: tlsOptions }).then(
    (stream) => callback?.(null, stream),
    (err: Error) => callback?.(err, undefined as unknown as Duplex),
  );
  return undefined;
}

/**
 * `Base` (http.Agent or https.Agent) with connections opened through a connector:
 * `createConnection` answers through its callback once the stream (and TLS) is up, and
 * `destroy()` also aborts the connections being opened.
 */
function overTor<A extends new (...args: any[]) => http.Agent>(Base: A, secure: boolean): new (connector: StreamConnector, options?: TorHttpOptions & ConstructorParameters<A>[0]) => InstanceType<A> {
  const Over = class extends Base {
    readonly #connector: StreamConnector;
    readonly #own: TorHttpOptions;
    readonly #opening = new AbortController();

    constructor(...args: any[]) {
      const [connector, options = {}] = args as [StreamConnector, TorHttpOptions | undefined];
      super(options);
      this.#connector = connector;
      this.#own = { isolation: options.isolation, connectTimeoutMs: options.connectTimeoutMs, signal: joinSignals(this.#opening.signal, options.signal) };
    }

    override createConnection(options: http.ClientRequestArgs, callback?: (err: Error | null, stream: Duplex) => void): undefined {
      return agentConnection(this.#connector, this.#own, options, secure, callback);
    }

    override destroy(): void {
      this.#opening.abort();
      super.destroy();
    }
  };
  return Over as unknown as new (connector: StreamConnector, options?: TorHttpOptions & ConstructorParameters<A>[0]) => InstanceType<A>;
}

/** A Node http.Agent whose sockets are streams through the connector. */
export class TorHttpAgent extends overTor(http.Agent, false) {
  constructor(connector: StreamConnector, options: TorAgentOptions = {}) {
    super(connector, options);
  }
}

/** A Node https.Agent whose sockets are TLS over streams through the connector (Node's checks; `ca` etc. from the agent or the request). */
export class TorHttpsAgent extends overTor(https.Agent, true) {
  constructor(connector: StreamConnector, options: TorHttpsAgentOptions = {}) {
    super(connector, options);
  }
}

/** An http.Agent over Tor streams: `http.get(url, { agent })`, axios's `httpAgent`, got's `agent.http`. */
export function createHttpAgent(connector: StreamConnector, options?: TorAgentOptions): TorHttpAgent {
  return new TorHttpAgent(connector, options);
}

/** An https.Agent over Tor streams: `https.get(url, { agent })`, axios's `httpsAgent`, got's `agent.https`. */
export function createHttpsAgent(connector: StreamConnector, options?: TorHttpsAgentOptions): TorHttpsAgent {
  return new TorHttpsAgent(connector, options);
}
