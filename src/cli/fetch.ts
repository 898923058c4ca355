/**
 * cli/fetch — `orport fetch URL`: bootstraps a TorClient, fetches URL through a Tor exit
 * (the adapters' undici dispatcher: TLS over the stream for https:, certificates checked)
 * and streams the body to FILE or stdout with backpressure (never held whole). On a
 * terminal, stderr shows a progress bar (bytes, rate, ETA when Content-Length is given);
 * otherwise one summary line (status, bytes, seconds, MB/s, sha256). Exits 1 with the
 * typed error's message on failure, and with the status on a non-2xx answer (its body is
 * not written). It follows no redirects and sends no cookies.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { Readable, Transform, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { EnvironmentError, NetworkError, OrportError, TimeoutError } from '../errors.js';
import { Network } from '../dir/network.js';
import { TorClient } from '../client/torclient.js';
import type { StreamConnector } from '../adapters/connector.js';
import { createDispatcher, torFetch, type TorTlsOptions } from '../adapters/http.js';
import type { Command } from './command.js';
import { UsageError } from './command.js';
import { commandArgs, parsePositive } from './args.js';

const usage = `usage: orport fetch URL [-o FILE] [--network FILE] [--cache-dir DIR] [--conflux] [--timeout MS]

Bootstraps (verified consensus), fetches URL (http: or https:) through a Tor exit
and writes the body to FILE or stdout. Redirects are not followed.

options:
  -o, --output FILE  write the body to FILE (default: stdout)
  --network FILE     the network: a torrc with DirAuthority / FallbackDir lines
                     (default: the public Tor network)
  --cache-dir DIR    keep the directory and the guards in DIR
  --conflux          only over a conflux set (two linked circuits to one exit);
                     by default one is used where the network allows, as tor does
  --timeout MS       give up after MS milliseconds per step: bootstrap, connect,
                     headers, and each wait for body bytes (default 60000)
exit status: 0 on a 2xx answer written whole, 1 on any error or another status.`;

/** What one fetch did (the summary line's numbers). */
export interface FetchResult {
  status: number;
  statusText: string;
  bytes: number;
  seconds: number;
  sha256: string;
}

export interface FetchToOptions {
  /** Opens where a 2xx body goes (written with backpressure); not called for another status. */
  output: () => Writable;
  /** Ends `out` when the body is written (false for stdout). */
  end?: boolean;
  timeoutMs: number;
  /** Called as bytes arrive (at most ~10 times a second) and once at the end with `done`. */
  onProgress?: (p: { bytes: number; total: number | undefined; seconds: number; done: boolean }) => void;
  signal?: AbortSignal;
  /** For https: test servers (`ca`); certificates are checked as always. */
  tls?: TorTlsOptions;
}

/**
 * Fetches `url` through `connector` and streams a 2xx body into `out`. A non-2xx answer
 * resolves with its status and writes nothing; transport failures reject (typed errors,
 * as the cause of undici's TypeError).
 */
export async function fetchTo(connector: StreamConnector, url: URL, options: FetchToOptions): Promise<FetchResult> {
  const { timeoutMs } = options;
  const dispatcher = createDispatcher(connector, { connectTimeoutMs: timeoutMs, headersTimeout: timeoutMs, bodyTimeout: timeoutMs, tls: options.tls, signal: options.signal });
  const started = performance.now();
  const seconds = () => (performance.now() - started) / 1000;
  try {
    const response = await torFetch(dispatcher, url, { redirect: 'manual', signal: options.signal });
    const result = { status: response.status, statusText: response.statusText, bytes: 0, seconds: 0, sha256: '' };
    const hash = createHash('sha256');
    if (response.status < 200 || response.status > 299 || !response.body) {
      await response.body?.cancel();
      return { ...result, seconds: seconds(), sha256: hash.digest('hex') };
    }
    const length = Number(response.headers.get('content-length') ?? NaN);
    const total = Number.isSafeInteger(length) && length >= 0 ? length : undefined;
    let lastReport = 0;
    const count = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        result.bytes += chunk.length;
        hash.update(chunk);
        const now = performance.now();
        if (options.onProgress && now - lastReport >= 100) {
          lastReport = now;
          options.onProgress({ bytes: result.bytes, total, seconds: seconds(), done: false });
        }
        callback(null, chunk);
      },
    });
    await pipeline(Readable.fromWeb(response.body as import('node:stream/web').ReadableStream<Uint8Array>), count, options.output(), { end: options.end ?? true });
    result.seconds = seconds();
    result.sha256 = hash.digest('hex');
    options.onProgress?.({ bytes: result.bytes, total, seconds: result.seconds, done: true });
    return result;
  } finally {
    await dispatcher.close();
  }
}

function mib(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MiB`;
}

/** The progress bar drawn on a terminal. */
export function progressLine(p: { bytes: number; total: number | undefined; seconds: number }, columns = 100): string {
  const rate = p.seconds > 0 ? p.bytes / p.seconds : 0;
  const parts = [`${mib(p.bytes)}${p.total !== undefined ? ` / ${mib(p.total)}` : ''}`, `${mib(rate)}/s`];
  let bar = '';
  if (p.total !== undefined && p.total > 0) {
    const fraction = Math.min(1, p.bytes / p.total);
    const width = 30;
    const filled = Math.round(fraction * width);
    bar = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(fraction * 100).toFixed(0).padStart(3)}% `;
    if (rate > 0) parts.push(`ETA ${Math.ceil((p.total - p.bytes) / rate)} s`);
  }
  return (bar + parts.join('  ')).slice(0, columns - 1);
}

/** The one-line summary: status, bytes, seconds, MB/s, sha256. */
export function summaryLine(r: FetchResult): string {
  const rate = r.seconds > 0 ? r.bytes / r.seconds / 1e6 : 0;
  return `${r.status} ${r.statusText}  ${r.bytes} bytes  ${r.seconds.toFixed(2)} s  ${rate.toFixed(2)} MB/s  sha256 ${r.sha256}`;
}

/**
 * The typed error behind a failed fetch: undici's fetch rejects with TypeError('fetch
 * failed') whose cause is the connector's OrportError (or one of undici's own errors);
 * undici's timeouts become TimeoutErrors, a failed write of the body an EnvironmentError,
 * anything else a NetworkError.
 */
export function fetchError(err: unknown, timeoutMs: number): OrportError {
  let e = err;
  while (!(e instanceof OrportError) && e instanceof Error && e.cause instanceof Error) e = e.cause;
  if (e instanceof OrportError) return e;
  const error: Error & { code?: string; syscall?: string } = e instanceof Error ? e : new Error(String(e));
  if (error.code === 'UND_ERR_HEADERS_TIMEOUT') return new TimeoutError('the response headers', timeoutMs);
  if (error.code === 'UND_ERR_BODY_TIMEOUT') return new TimeoutError('more of the response body', timeoutMs);
  if (error.syscall !== undefined && error.syscall !== 'connect' && error.syscall !== 'read') return new EnvironmentError(`cannot write the body: ${error.message}`, { cause: error });
  return new NetworkError(`fetch failed: ${error.message}`, { cause: error, errno: error.code });
}

/** The URL argument: http: or https: only. */
export function parseFetchUrl(text: string | undefined): URL {
  if (!text) throw new UsageError('missing URL');
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`'${text}' is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`only http: and https: URLs can be fetched, not ${url.protocol}`);
  return url;
}

export const fetchCommand: Command = {
  name: 'fetch',
  summary: 'fetch a URL through a Tor exit',
  usage,
  async run(argv) {
    const { values, positionals } = commandArgs(argv, {
      output: { type: 'string', short: 'o' },
      network: { type: 'string' },
      'cache-dir': { type: 'string' },
      timeout: { type: 'string' },
      conflux: { type: 'boolean' },
    });
    if (positionals.length > 1) throw new UsageError(`unexpected argument '${positionals[1]}'`);
    const url = parseFetchUrl(positionals[0]);
    const timeoutMs = parsePositive(values.timeout, 'timeout', 60_000);
    const network = values.network ? await Network.fromFile(values.network) : Network.PUBLIC;
    const client = await TorClient.create({ network, cacheDir: values['cache-dir'], timeoutMs, refresh: false, conflux: values.conflux ? true : undefined });
    const file = values.output;
    const stderr = process.stderr;
    try {
      const tty = stderr.isTTY === true;
      let result: FetchResult;
      try {
        result = await fetchTo(client, url, {
          output: () => (file ? createWriteStream(file) : process.stdout),
          end: file !== undefined,
          timeoutMs,
          onProgress: tty ? (p) => stderr.write(`\r\x1b[K${progressLine(p, stderr.columns)}`) : undefined,
        });
      } catch (err) {
        if (tty) stderr.write('\n');
        if (file) await unlink(file).catch(() => undefined);
        throw fetchError(err, timeoutMs);
      }
      if (tty) stderr.write('\r\x1b[K');
      if (result.status < 200 || result.status > 299) {
        stderr.write(`orport fetch: ${url.href} answered ${result.status} ${result.statusText}\n`);
        return 1;
      }
      stderr.write(summaryLine(result) + '\n');
      return 0;
    } finally {
      await client.close();
    }
  },
};
