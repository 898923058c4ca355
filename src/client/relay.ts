/**
 * client/relay — `Relay`: a TLS connection to a relay's ORPort (Stem's
 * `stem.client.Relay`), driving the sans-I/O ChannelMachine.
 *
 * This is the thin I/O layer: the socket, timers and promises live here; the protocol
 * lives in proto/. One reader per connection: every chunk from TLS goes to the channel
 * machine, which demultiplexes cells to circuits. Writes produced in one turn of the
 * event loop are coalesced into one socket write (see `ConnectOptions.coalesceWrites`).
 */
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { isIP } from 'node:net';
import {
  BadArgumentError,
  ChannelClosedError,
  HandshakeError,
  NetworkError,
  OrportError,
} from '../errors.js';
import { DEFAULT_LINK_PROTOCOLS, VPaddingCell, type AuthChallengeCell, type CertsCell, type NetinfoCell } from '../codec/cell.js';
import { Address, type LinkProtocol } from '../codec/datatype.js';
import { ChannelMachine, type HandshakeResult } from '../proto/channel.js';
import { VERIFY_BY_DEFAULT, identityMismatch, verifyCertsCell, type RelayIdentity, type VerifiedChain } from '../crypto/certs.js';
import type { CircuitOptions } from '../proto/circuit.js';
import { boundedWait, type WaitOptions } from './wait.js';
import { RelayCircuit, type CreateCircuitOptions } from './circuit.js';
import { CellWriter } from './cellwriter.js';

export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

export interface ConnectOptions extends WaitOptions {
  /**
   * Highest TLS version to offer. Default 'TLSv1.2': tor relays answer the link handshake
   * ~40 ms later over TLS 1.3 (measured; see README "Latency"), and TLS carries no part
   * of the link's authentication that 1.3 would improve.
   */
  tlsMaxVersion?: 'TLSv1.2' | 'TLSv1.3';
  /**
   * Coalesce all cells produced in one event-loop turn into one socket write (default
   * true): a CREATE_FAST issued right after `connect()` resolves rides with our NETINFO.
   */
  coalesceWrites?: boolean;
  /**
   * Answer a chunk that arrives while a stream awaits data with a 7-byte VPADDING cell
   * when we have nothing else to send (default true): for every small chunk, and for large
   * ones (a bulk transfer's) at most one per QUICK_ACK_INTERVAL_MS. tor doesn't set
   * TCP_NODELAY, so after a small segment (a CONNECTED, HTTP headers) it holds the rest of
   * a response until that segment is acknowledged, and our kernel delays that ACK by
   * ~40 ms; any data we send carries the ACK at once. Measured: a consensus fetch drops
   * from ~47 ms to a few ms (README "Latency"). One per large chunk cost a TLS record and
   * a write for every chunk of a bulk download (~20% of the CPU per MiB); one per small
   * chunk is needed (limited by time too, consensus.z took 47 ms instead of 3).
   */
  quickAck?: boolean;
  /** Options for every circuit on this connection. */
  circuit?: CircuitOptions;
  /**
   * Verify the relay's CERTS chain (tor-spec 4.2) against the TLS certificate it presented.
   * Turn off only for research on broken relays.
   */
  verifyCertificates?: boolean;
  /**
   * Most bytes of cells the relay may send before its NETINFO (default 256 KiB; a real
   * handshake takes 2-5 KB): past it connect fails with a LimitError instead of reading a
   * flood of padding until the timeout.
   */
  maxHandshakeBytes?: number;
  /** Pinned identity: connect fails with IdentityMismatchError if the relay proves another. */
  identity?: { rsa?: string; ed25519?: string };
}

/** Chunks from this size on are a bulk transfer's: at most one quick-ACK cell per QUICK_ACK_INTERVAL_MS for them. */
export const QUICK_ACK_BULK_BYTES = 4096;
export const QUICK_ACK_INTERVAL_MS = 5;

/** Whether a chunk of `chunkBytes` arriving at `nowMs` gets a quick-ACK cell, the last having gone at `lastMs` (see `quickAck`). */
export function quickAckDue(chunkBytes: number, nowMs: number, lastMs: number): boolean {
  return chunkBytes < QUICK_ACK_BULK_BYTES || nowMs - lastMs >= QUICK_ACK_INTERVAL_MS;
}

/** A VPADDING cell with an empty payload, framed for a link protocol (tor-spec 3, 7.2). */
function emptyVPadding(lp: LinkProtocol): Uint8Array {
  return new VPaddingCell(0).pack(lp);
}

const HOSTNAME = /^(?=.{1,253}$)(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)*[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.?$/;

function checkTarget(address: string, port: number): void {
  if (typeof address !== 'string' || !(isIP(address) || HOSTNAME.test(address))) {
    throw new BadArgumentError(`'${String(address)}' isn't an IPv4 address, IPv6 address or hostname`);
  }
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new BadArgumentError(`'${String(port)}' isn't a valid port (1-65535)`);
}

/** The relay's IP address as the socket reports it (IPv4-mapped IPv6 unwrapped). */
function peerIpAddress(remote: string | undefined, given: string): Address {
  const ip = remote?.startsWith('::ffff:') && isIP(remote.slice(7)) === 4 ? remote.slice(7) : remote;
  if (ip && isIP(ip)) return new Address(ip);
  return isIP(given) ? new Address(given) : new Address(given, 0);
}

/** Maps a socket error to a NetworkError that says what it means for an ORPort. */
function networkError(err: NodeJS.ErrnoException, address: string, port: number): OrportError {
  if (err instanceof OrportError) return err;
  const where = `${address}:${port}`;
  const code = err.code ?? '';
  if (code === 'ECONNREFUSED') return new NetworkError(`connection to ${where} refused: nothing listens there. Maybe it isn't an ORPort?`, { cause: err, errno: code });
  if (code.startsWith('ERR_SSL') || /ssl|tls|wrong version number|unknown protocol|packet length/i.test(err.message)) {
    return new NetworkError(`TLS handshake with ${where} failed (${err.message.trim()}). Maybe it isn't an ORPort?`, { cause: err, errno: code });
  }
  if (code === 'ECONNRESET' || code === 'EPIPE') return new NetworkError(`connection to ${where} was reset by the peer`, { cause: err, errno: code });
  if (code === 'ENETUNREACH' || code === 'EHOSTUNREACH') return new NetworkError(`${where} is unreachable from here (${code})`, { cause: err, errno: code });
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return new NetworkError(`cannot resolve ${address} (${code})`, { cause: err, errno: code });
  return new NetworkError(`connection to ${where} failed: ${err.message}`, { cause: err, errno: code || undefined });
}

/**
 * A connection with a Tor relay's ORPort, after the link handshake.
 * `Relay.connect(address, port)` → `relay.createCircuit()` → `circuit.directory(…)`.
 */
export class Relay {
  /** The negotiated link protocol version. */
  readonly linkProtocol: number;
  /** The relay's VERSIONS list. */
  readonly relayVersions: readonly number[];
  /** The relay's CERTS cell. */
  readonly certs: CertsCell;
  /** The relay's AUTH_CHALLENGE cell (kept; a client that doesn't authenticate ignores it). */
  readonly authChallenge: AuthChallengeCell | undefined;
  /** The relay's NETINFO cell: its clock, the address it sees us at, its own addresses. */
  readonly netinfo: NetinfoCell;
  /** The relay's clock minus ours, in ms, when its NETINFO arrived (±1 s: NETINFO has whole seconds). */
  readonly clockSkewMs: number;
  /** The DER bytes of the TLS certificate the relay presented on this connection. */
  readonly peerCertificate: Uint8Array;
  /** The verified CERTS chain (undefined when verification was turned off). */
  readonly chain: VerifiedChain | undefined;
  /** Milliseconds from starting TCP to the end of the link handshake. */
  readonly handshakeMs: number;
  readonly address: string;
  readonly port: number;
  private connectedAt: number;
  private closedAt = 0;
  private closeError: OrportError | undefined;
  private destroyTimer: NodeJS.Timeout | undefined;
  private closing: Promise<void> | undefined;
  private readonly quickAckCell: Uint8Array | undefined;

  private constructor(
    private readonly socket: TLSSocket,
    private readonly channel: ChannelMachine,
    private readonly writer: CellWriter,
    result: HandshakeResult,
    info: { address: string; port: number; peerCertificate: Uint8Array; chain: VerifiedChain | undefined; handshakeMs: number; clockSkewMs: number; quickAck: boolean },
  ) {
    this.linkProtocol = result.linkProtocol.version;
    this.relayVersions = result.relayVersions;
    this.certs = result.certs;
    this.authChallenge = result.authChallenge;
    this.netinfo = result.netinfo;
    this.address = info.address;
    this.port = info.port;
    this.peerCertificate = info.peerCertificate;
    this.handshakeMs = info.handshakeMs;
    this.clockSkewMs = info.clockSkewMs;
    this.chain = info.chain;
    this.connectedAt = Date.now();
    this.quickAckCell = info.quickAck ? emptyVPadding(result.linkProtocol) : undefined;
  }

  /**
   * Connects to an ORPort: TLS (relays present self-signed certificates: no CA check),
   * VERSIONS (highest common of `linkProtocols`), the relay's CERTS, AUTH_CHALLENGE and
   * NETINFO, then our NETINFO. Rejects with a typed error: BadArgumentError, NetworkError,
   * HandshakeError, CertificateError, IdentityMismatchError, LimitError (maxHandshakeBytes),
   * TimeoutError (default 10 s) or AbortError.
   */
  static connect(address: string, port: number, linkProtocols: readonly number[] = DEFAULT_LINK_PROTOCOLS, options: ConnectOptions = {}): Promise<Relay> {
    try {
      checkTarget(address, port);
      if (!Array.isArray(linkProtocols)) throw new BadArgumentError(`linkProtocols must be an array of versions, not ${JSON.stringify(linkProtocols)}`);
      if (options.identity && !(options.verifyCertificates ?? VERIFY_BY_DEFAULT)) throw new BadArgumentError('a pinned identity needs verifyCertificates: without a verified CERTS chain nothing proves who answered');
    } catch (err) {
      return Promise.reject(err);
    }
    const started = performance.now();
    let socket: TLSSocket | undefined;
    let channel: ChannelMachine | undefined;
    return boundedWait<Relay>(`the link handshake with ${address}:${port}`, options, DEFAULT_CONNECT_TIMEOUT_MS, ({ resolve, reject }) => {
      const writer = new CellWriter({ coalesce: options.coalesceWrites ?? true });
      let peerCertificate: Uint8Array = new Uint8Array(0);
      let relay: Relay | undefined;
      let chain: VerifiedChain | undefined;
      channel = new ChannelMachine(linkProtocols, writer, {
        certs: (certs) => {
          if (!(options.verifyCertificates ?? VERIFY_BY_DEFAULT)) return;
          chain = verifyCertsCell(certs, peerCertificate, new Date());
          const mismatch = identityMismatch(options.identity, chain.identity);
          if (mismatch) throw mismatch;
        },
        handshakeComplete: (result) => {
          const clockSkewMs = result.netinfo.timestamp.getTime() - Date.now();
          relay = new Relay(socket!, channel!, writer, result, { address, port, peerCertificate, chain, handshakeMs: performance.now() - started, clockSkewMs, quickAck: options.quickAck ?? true });
          relay.attach();
          resolve(relay);
        },
        closed: (error) => {
          if (relay) {
            relay.channelClosed(error);
          } else {
            reject(error);
            socket?.destroy();
          }
        },
      }, { circuit: options.circuit, maxHandshakeBytes: options.maxHandshakeBytes });
      socket = tlsConnect({
        host: address,
        port,
        rejectUnauthorized: false, // relays' TLS certificates are self-signed; CERTS authenticates them
        minVersion: 'TLSv1.2',
        maxVersion: options.tlsMaxVersion ?? 'TLSv1.2',
        servername: isIP(address) ? undefined : address,
      });
      socket.setNoDelay(true);
      writer.socket = socket;
      socket.once('secureConnect', () => {
        const cert = socket!.getPeerX509Certificate();
        peerCertificate = cert ? new Uint8Array(cert.raw) : new Uint8Array(0);
        // tor-spec 4.5: NETINFO names the address we reached the relay at (an IP, also
        // when we were given a hostname).
        channel!.start(peerIpAddress(socket!.remoteAddress, address));
      });
      socket.on('data', (chunk: Buffer) => channel!.handleBytes(chunk));
      // One handler each for the socket's whole life (Node's own TLS listeners stay in place).
      socket.on('error', (err) => channel!.fail(networkError(err, address, port)));
      socket.on('close', () => {
        if (relay) relay.socketClosed();
        else channel!.fail(new HandshakeError(`${address}:${port} closed the connection during the link handshake (after ${(performance.now() - started).toFixed(0)} ms)`));
      });
      return () => {
        channel!.close(new ChannelClosedError('local', 'connect() gave up'));
        socket!.destroy();
      };
    }).catch((err: unknown) => {
      socket?.destroy();
      throw err;
    });
  }

  /**
   * After the handshake: quick ACKs for data while a stream awaits more; and what reading
   * the chunk made us send (SENDMEs above all) goes out at once, before the consumers run
   * on the data: a SENDME that waits for the next turn makes the exit's congestion control
   * see a longer RTT (measured on loopback with congestion control: 6.5 → 8.5 MB/s).
   */
  private attach(): void {
    const { socket, channel, writer, quickAckCell } = this;
    let lastQuickAck = -Infinity;
    socket.on('data', (chunk: Uint8Array) => {
      if (quickAckCell && writer.idle && channel.awaitingData) {
        const now = performance.now();
        if (quickAckDue(chunk.length, now, lastQuickAck)) {
          lastQuickAck = now;
          writer.send(quickAckCell);
        }
      }
      writer.flush();
    });
  }

  /** The socket closed (by the relay, or at the end of our close). */
  private socketClosed(): void {
    this.closedAt ||= Date.now();
    if (this.destroyTimer) clearTimeout(this.destroyTimer);
    this.channel.fail(new ChannelClosedError('relay', `${this.address}:${this.port} closed the connection`));
  }

  /** The channel closed (our close, a violation, or the socket): flush and end TLS. */
  private channelClosed(error: OrportError): void {
    this.closeError = error;
    this.closedAt ||= Date.now();
    this.writer.flush();
    this.socket.end();
    // If the peer never finishes the TLS close, don't keep the socket forever.
    if (!this.socket.destroyed) this.destroyTimer = setTimeout(() => this.socket.destroy(), 2000).unref();
  }

  /** Why the connection closed, once it has. */
  get closeReason(): OrportError | undefined {
    return this.closeError;
  }

  /** True while the connection is open. */
  isAlive(): boolean {
    return this.channel.isOpen && !this.socket.destroyed;
  }

  /** When we connected (while alive) or disconnected (after), in ms since the epoch, as Stem's `connection_time()`. */
  get connectionTime(): number {
    return this.closedAt || this.connectedAt;
  }

  /** The identity the relay proved in its CERTS chain (undefined when not verified). */
  get identity(): RelayIdentity | undefined {
    return this.chain?.identity;
  }

  /** The address the relay sees us at (its NETINFO "other address"). */
  get ourAddress(): Address {
    return this.netinfo.receiverAddress;
  }

  /** Open circuits on this connection. */
  get openCircuits(): readonly RelayCircuit<Relay>[] {
    return RelayCircuit.openOn<Relay>(this.channel);
  }

  /**
   * Creates a circuit with CREATE_FAST (tor-spec 5.1.5): a random circuit id, KDF-TOR
   * keys, the key hash checked in constant time. Many may be created at once.
   */
  createCircuit(options: CreateCircuitOptions = {}): Promise<RelayCircuit<Relay>> {
    return RelayCircuit.create(this, this.channel, this.writer, options);
  }

  /**
   * Closes the connection: DESTROY for every open circuit, then TLS close. Idempotent;
   * resolves when the socket is closed.
   */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      if (this.socket.destroyed) {
        this.channel.close(new ChannelClosedError('local', 'the connection was closed'), false);
        resolve();
        return;
      }
      this.socket.once('close', () => resolve());
      this.channel.close(new ChannelClosedError('local', 'the connection was closed'), true);
    });
    return this.closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
