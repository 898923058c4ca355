/**
 * testnet/dirport — asks a relay's DirPort (plain HTTP on 127.0.0.1) what it serves.
 *
 * `httpGetText()` is a bounded GET (timeout, AbortSignal, size cap, no
 * keep-alive agent, so no socket outlives the call). `checkRelayServes()`
 * answers "does this relay serve the current ns and microdesc consensus
 * listing every relay, all their microdescriptors, and all server
 * descriptors?", and when not, says what is missing. The parsers read only the
 * lines they need (`r`, `m`, `router`, `ntor-onion-key`); they are not
 * directory-document parsers for general use.
 */
import { request } from 'node:http';
import { LimitError, NetworkError, TimeoutError } from '../errors.js';
import { abortReason } from './wait.js';

export interface HttpTextResponse {
  readonly status: number;
  readonly body: string;
}

export interface HttpGetOptions {
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
  readonly maxBytes?: number;
}

/** GET http://127.0.0.1:`port``path`; network errors reject (callers polling treat them as "not yet"). */
export function httpGetText(port: number, path: string, options: HttpGetOptions): Promise<HttpTextResponse> {
  const what = `GET http://127.0.0.1:${port}${path}`;
  if (options.signal?.aborted) return Promise.reject(abortReason(options.signal, what));
  const maxBytes = options.maxBytes ?? 16 * 1024 * 1024;
  return new Promise<HttpTextResponse>((resolve, reject) => {
    let settled = false;
    const finish = (error: Error | undefined, response?: HttpTextResponse): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      if (error) {
        req.destroy();
        reject(error);
      } else if (response) {
        resolve(response);
      }
    };
    const req = request({ host: '127.0.0.1', port, path, method: 'GET', agent: false, headers: { Connection: 'close' } }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxBytes) finish(new LimitError(`${what}: response larger than ${maxBytes} bytes`, maxBytes));
        else chunks.push(chunk);
      });
      res.on('end', () => finish(undefined, { status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', (err) => finish(new NetworkError(`${what}: ${err.message}`, { cause: err, errno: (err as NodeJS.ErrnoException).code })));
    });
    const timer = setTimeout(() => finish(new TimeoutError(what, options.timeoutMs)), options.timeoutMs);
    const onAbort = (): void => finish(abortReason(options.signal as AbortSignal, what));
    options.signal?.addEventListener('abort', onAbort, { once: true });
    req.on('error', (err) => finish(new NetworkError(`${what}: ${err.message}`, { cause: err, errno: (err as NodeJS.ErrnoException).code })));
    req.end();
  });
}

/** `r` lines of a consensus (either flavour): nickname → RSA fingerprint (hex). */
export function consensusRouters(consensus: string): Map<string, string> {
  const routers = new Map<string, string>();
  for (const match of consensus.matchAll(/^r (\S+) (\S+) /gm)) {
    const nick = match[1] ?? '';
    const identity = match[2] ?? '';
    routers.set(nick, Buffer.from(identity, 'base64').toString('hex').toUpperCase());
  }
  return routers;
}

/** `m` lines of a microdesc consensus: the microdescriptor digests (unpadded base64). */
export function microdescDigests(consensus: string): string[] {
  return [...consensus.matchAll(/^m (\S+)$/gm)].map((m) => m[1] ?? '');
}

/** Number of microdescriptors in a /tor/micro/d/ response. */
export function countMicrodescs(body: string): number {
  return body.match(/^ntor-onion-key /gm)?.length ?? 0;
}

/** Nicknames in a /tor/server/… response (`router <nick> <address> …`). */
export function serverDescriptorNicks(body: string): Set<string> {
  return new Set([...body.matchAll(/^router (\S+) /gm)].map((m) => m[1] ?? ''));
}

export interface ExpectedRelay {
  readonly nick: string;
  readonly fingerprint: string;
}

/** The relays of `expected` that `listed` (nick → fingerprint) lacks, by nickname. */
export function missingRelays(listed: ReadonlyMap<string, string>, expected: readonly ExpectedRelay[]): string[] {
  return expected.filter((relay) => listed.get(relay.nick) !== relay.fingerprint).map((relay) => relay.nick);
}

export type RelayServes =
  | { readonly ok: true }
  /** `lag` says what the relay does not serve yet, e.g. "microdesc consensus lacks exit1, relay3". */
  | { readonly ok: false; readonly lag: string };

/**
 * Checks what the relay at `dirPort` serves: the microdesc consensus listing
 * every expected relay, all their microdescriptors, the ns consensus listing
 * every relay, and a server descriptor for each.
 */
export async function checkRelayServes(dirPort: number, expected: readonly ExpectedRelay[], options: HttpGetOptions): Promise<RelayServes> {
  const get = async (path: string): Promise<HttpTextResponse | string> => {
    try {
      return await httpGetText(dirPort, path, options);
    } catch (err) {
      if (options.signal?.aborted) throw err;
      return `GET ${path} failed: ${err instanceof Error ? err.message : String(err)}`;
    }
  };
  const listing = (what: string, response: HttpTextResponse | string): string | undefined => {
    if (typeof response === 'string') return response;
    if (response.status !== 200) return `no ${what} yet (HTTP ${response.status})`;
    const missing = missingRelays(consensusRouters(response.body), expected);
    return missing.length > 0 ? `${what} lacks ${missing.join(', ')}` : undefined;
  };

  const md = await get('/tor/status-vote/current/consensus-microdesc');
  const mdLag = listing('microdesc consensus', md);
  if (mdLag !== undefined || typeof md === 'string') return { ok: false, lag: mdLag ?? 'no microdesc consensus' };
  const digests = microdescDigests(md.body);
  const micro = await get(`/tor/micro/d/${digests.join('-')}`);
  if (typeof micro === 'string') return { ok: false, lag: micro };
  const microCount = micro.status === 200 ? countMicrodescs(micro.body) : 0;
  if (microCount < expected.length) return { ok: false, lag: `serves ${microCount}/${expected.length} microdescriptors` };
  const ns = await get('/tor/status-vote/current/consensus');
  const nsLag = listing('ns consensus', ns);
  if (nsLag !== undefined) return { ok: false, lag: nsLag };
  const servers = await get('/tor/server/all');
  if (typeof servers === 'string') return { ok: false, lag: servers };
  const serverNicks = servers.status === 200 ? serverDescriptorNicks(servers.body) : new Set<string>();
  const missingServers = expected.filter((relay) => !serverNicks.has(relay.nick)).map((relay) => relay.nick);
  if (missingServers.length > 0) return { ok: false, lag: `server descriptors lack ${missingServers.join(', ')}` };
  return { ok: true };
}
