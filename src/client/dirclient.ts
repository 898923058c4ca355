/**
 * client/dirclient — fetches directory documents over one-hop BEGIN_DIR circuits (dir-spec
 * §5, tor-spec 6.2): one pinned connection and one CREATE_FAST circuit per source, many
 * requests on it at once; `fetchAny` asks several sources at once and takes the first
 * answer that passes the caller's check, moving on to another source on each failure.
 *
 * Layer: thin I/O over client/relay. Parses only HTTP (dir/http); what a body means and
 * whether it is trusted is the caller's business (dir/ parsers and verification). Every
 * wait is bounded (per request, and overall) and takes an AbortSignal.
 */
import { AbortError, DirectoryError, OrportError } from '../errors.js';
import { parseHttpResponse, type HttpResponse } from '../dir/http.js';
import { Relay, type ConnectOptions } from './relay.js';
import type { RelayCircuit } from './circuit.js';
import { startDeadline, type WaitOptions } from './wait.js';

/** A directory cache to ask: an authority, a fallback, or a directory guard. */
export interface DirSource {
  /** For messages and stats: a nickname, or address:port. */
  readonly name: string;
  readonly address: string;
  readonly orPort: number;
  /** The identity it must prove in the link handshake (IdentityMismatchError otherwise). */
  readonly identity?: { readonly rsa?: string; readonly ed25519?: string };
}

export interface DirFetchResult {
  readonly source: DirSource;
  readonly path: string;
  readonly response: HttpResponse;
  /** The body, inflated. */
  readonly body: Uint8Array;
  /** Bytes of the raw response (headers and body as sent). */
  readonly wireBytes: number;
  readonly ms: number;
}

export interface DirClientOptions {
  /** Bound on one request: connect, circuit and the whole response (default 30 s). */
  requestTimeoutMs?: number;
  /** Cap on a raw response (default 32 MiB): a relay sending more gets a LimitError. */
  maxResponseBytes?: number;
  /** Cap on an inflated body (default 64 MiB): a deflate bomb is a LimitError. */
  maxBodyBytes?: number;
  /** Options for each connection (identity pins come from the source). */
  connect?: Omit<ConnectOptions, 'identity' | 'timeoutMs' | 'signal'>;
}

export interface FetchAnyOptions extends WaitOptions {
  /** Sources asked at once (default 1; tor asks 3 at once for its first consensus). */
  parallel?: number;
  /** Told of each source that failed (the client marks a failing directory guard). */
  onFailure?: (source: DirSource, error: unknown) => void;
}

/** What every request and response amounted to, by kind of document (for tests and progress). */
export interface DirStats {
  requests: number;
  failures: number;
  wireBytes: number;
  /** Requests by the path's kind: 'consensus', 'keys', 'micro', 'other'. */
  byKind: Record<string, number>;
}

export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
export const DEFAULT_MAX_DIR_RESPONSE_BYTES = 32 * 1024 * 1024;

interface Connection {
  relay: Relay;
  circuit: RelayCircuit<Relay>;
  nextStreamId: number;
}

/**
 * The error when every source failed: the document's own DirectoryError when all of them
 * sent one that failed the same check (a consensus that doesn't verify anywhere), else
 * E_DIR_FETCH with what each source did.
 */
function exhausted(what: string, errors: readonly unknown[], failures: readonly string[]): OrportError {
  const first = errors[0];
  if (first instanceof DirectoryError && first.code !== 'E_DIR_HTTP' && errors.every((e) => e instanceof DirectoryError && e.code === first.code)) return first;
  return new DirectoryError('E_DIR_FETCH', `no directory source gave ${what} (${failures.length} tried): ${failures.join('; ')}`, { cause: first });
}

/** The kind of document a directory path asks for (dir-spec App. B). */
export function pathKind(path: string): string {
  if (path.startsWith('/tor/status-vote/')) return 'consensus';
  if (path.startsWith('/tor/keys/')) return 'keys';
  if (path.startsWith('/tor/micro/')) return 'micro';
  return 'other';
}

export class DirectoryClient {
  readonly stats: DirStats = { requests: 0, failures: 0, wireBytes: 0, byKind: {} };
  private readonly connections = new Map<string, Promise<Connection>>();
  private readonly requestTimeoutMs: number;
  private readonly maxResponseBytes: number;
  private readonly maxBodyBytes: number | undefined;

  constructor(private readonly options: DirClientOptions = {}) {
    this.requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.maxResponseBytes = options.maxResponseBytes ?? DEFAULT_MAX_DIR_RESPONSE_BYTES;
    this.maxBodyBytes = options.maxBodyBytes;
  }

  /**
   * GETs `path` from `source`: the body of a 200 response, inflated. Anything else is a
   * typed error: DirectoryError (E_DIR_HTTP) for another status, and the client's own
   * errors (NetworkError, IdentityMismatchError, TimeoutError, LimitError, …).
   */
  async fetch(source: DirSource, path: string, options: WaitOptions = {}): Promise<DirFetchResult> {
    const started = performance.now();
    const kind = pathKind(path);
    this.stats.requests++;
    this.stats.byKind[kind] = (this.stats.byKind[kind] ?? 0) + 1;
    const timeoutMs = options.timeoutMs ?? this.requestTimeoutMs;
    // One deadline for the whole request; its AbortController reaches every wait inside.
    const controller = new AbortController();
    let failure: OrportError | undefined;
    const deadline = startDeadline(`GET ${path} from ${source.name}`, { timeoutMs, signal: options.signal }, timeoutMs, (error) => {
      failure = error;
      controller.abort(error);
    });
    const wait = { signal: controller.signal, timeoutMs };
    try {
      const conn = await this.connection(source, wait);
      const streamId = conn.nextStreamId;
      conn.nextStreamId = streamId >= 0xffff ? 1 : streamId + 1;
      const request = `GET ${path} HTTP/1.0\r\nHost: ${source.address}\r\nAccept-Encoding: deflate, identity\r\n\r\n`;
      const raw = await conn.circuit.directory(request, streamId, { ...wait, maxResponseBytes: this.maxResponseBytes });
      this.stats.wireBytes += raw.length;
      const response = parseHttpResponse(raw, { compressed: path.endsWith('.z'), maxBodyBytes: this.maxBodyBytes });
      if (response.statusCode !== 200) {
        throw new DirectoryError('E_DIR_HTTP', `GET ${path} from ${source.name}: the cache answered ${response.statusCode} ${response.statusMessage}, not 200`);
      }
      return { source, path, response, body: response.body, wireBytes: raw.length, ms: performance.now() - started };
    } catch (err) {
      this.stats.failures++;
      // A wait that ended because our deadline fired reports the deadline's error.
      const error = failure && err instanceof AbortError ? failure : err;
      if (!(error instanceof DirectoryError)) this.drop(source);
      throw error;
    } finally {
      deadline.dispose();
    }
  }

  /**
   * Asks `sources` in order, `parallel` at a time, until one answer passes `accept` (which
   * may throw to reject it: a body that doesn't parse or verify). The first accepted
   * answer wins and the other requests are abandoned. When every source failed, a
   * DirectoryError (E_DIR_FETCH) lists what each one did.
   */
  async fetchAny<T>(
    sources: readonly DirSource[],
    path: string | ((source: DirSource) => string),
    accept: (result: DirFetchResult) => T | Promise<T>,
    options: FetchAnyOptions = {},
  ): Promise<{ value: T; result: DirFetchResult }> {
    const what = typeof path === 'string' ? path : 'documents';
    if (sources.length === 0) throw new DirectoryError('E_DIR_FETCH', `no directory source to ask for ${what}`);
    const parallel = Math.max(1, Math.min(options.parallel ?? 1, sources.length));
    const failures: string[] = [];
    const errors: unknown[] = [];
    const losers = new AbortController();
    const signal = options.signal ? AbortSignal.any([options.signal, losers.signal]) : losers.signal;
    let next = 0;
    return new Promise((resolve, reject) => {
      let running = 0;
      let done = false;
      const overall = options.timeoutMs === undefined
        ? undefined
        : startDeadline(`fetching ${what}`, options, options.timeoutMs, (error) => finish(() => reject(error)));
      if (options.signal?.aborted) return finish(() => reject(new AbortError(`fetching ${what}`, options.signal!.reason)));
      function finish(settle: () => void): void {
        if (done) return;
        done = true;
        overall?.dispose();
        losers.abort(new AbortError(`fetching ${what}`, 'another source answered first'));
        settle();
      }
      const launch = (): void => {
        while (!done && running < parallel && next < sources.length) {
          const source = sources[next++]!;
          const p = typeof path === 'string' ? path : path(source);
          running++;
          this.fetch(source, p, { signal })
            .then(async (result) => {
              const value = await accept(result);
              finish(() => resolve({ value, result }));
            })
            .catch((err: unknown) => {
              if (done) return;
              if (options.signal?.aborted) return finish(() => reject(new AbortError(`fetching ${what}`, options.signal!.reason)));
              errors.push(err);
              options.onFailure?.(source, err);
              failures.push(`${source.name}: ${err instanceof Error ? err.message : String(err)}`);
            })
            .finally(() => {
              running--;
              if (done) return;
              if (running === 0 && next >= sources.length) {
                finish(() => reject(exhausted(what, errors, failures)));
              } else launch();
            });
        }
      };
      launch();
    });
  }

  /** Closes every connection. The client can be used again afterwards. */
  async close(): Promise<void> {
    const all = [...this.connections.values()];
    this.connections.clear();
    await Promise.all(all.map((p) => p.then((c) => c.relay.close(), () => undefined)));
  }

  /** Open connections (for tests and diagnostics). */
  get connectionCount(): number {
    return this.connections.size;
  }

  private connection(source: DirSource, wait: Required<WaitOptions>): Promise<Connection> {
    const key = `${source.address}:${source.orPort}`;
    const existing = this.connections.get(key);
    if (existing) {
      return existing.then((c) => {
        if (c.relay.isAlive() && c.circuit.isOpen) return c;
        this.connections.delete(key);
        return this.connection(source, wait);
      });
    }
    const opening = (async (): Promise<Connection> => {
      const relay = await Relay.connect(source.address, source.orPort, undefined, { ...this.options.connect, ...wait, identity: source.identity });
      try {
        const circuit = await relay.createCircuit(wait);
        return { relay, circuit, nextStreamId: 1 };
      } catch (err) {
        await relay.close();
        throw err;
      }
    })();
    this.connections.set(key, opening);
    opening.catch(() => {
      if (this.connections.get(key) === opening) this.connections.delete(key);
    });
    return opening;
  }

  private drop(source: DirSource): void {
    const key = `${source.address}:${source.orPort}`;
    const conn = this.connections.get(key);
    if (!conn) return;
    this.connections.delete(key);
    conn.then((c) => c.relay.close(), () => undefined);
  }
}

