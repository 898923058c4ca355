/**
 * adapters/connector — what the ecosystem adapters (SOCKS5 server, fetch dispatcher,
 * http.Agent) need of a Tor client: open a TCP-like stream to host:port through an
 * exit, and resolve a hostname at an exit. `TorClient` is one; tests pass any object
 * with these methods (a plain `net.connect` on loopback, say).
 *
 * Layer: an interface only; no code.
 */
import type { Duplex } from 'node:stream';

export interface StreamConnectOptions {
  /** Streams with distinct keys never share a circuit (tor's IsolateSOCKSAuth and the like). */
  readonly isolation?: string;
  readonly signal?: AbortSignal;
  readonly timeoutMs?: number;
}

/** A stream as the adapters use it: a Duplex, with the address the exit connected to when known. */
export type ConnectedStream = Duplex & { readonly remoteAddress?: string | undefined; readonly remotePort?: number | undefined };

export interface StreamConnector {
  /**
   * A stream to `host` (a hostname, resolved at the exit, or an IPv4 / IPv6 literal) and
   * `port`. Rejects with an OrportError: a StreamClosedError whose `reason` is the relay's
   * END reason ('CONNECTREFUSED', 'EXITPOLICY', 'RESOLVEFAILED', 'TIMEOUT', …), a
   * TimeoutError, an AbortError, a CircuitBuildError…
   */
  connect(host: string, port: number, options?: StreamConnectOptions): Promise<ConnectedStream>;
  /** The addresses an exit resolves `host` to (RELAY_RESOLVE). */
  resolve?(host: string, options?: StreamConnectOptions): Promise<string[]>;
}
