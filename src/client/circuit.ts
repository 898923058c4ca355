/**
 * client/circuit — `RelayCircuit`: a circuit on a Relay connection (Stem's
 * `stem.client.Circuit`), with directory requests over BEGIN_DIR streams.
 *
 * Thin I/O layer over proto/circuit's CircuitMachine: promises, timeouts, AbortSignals,
 * Node streams. `directory()` returns the whole raw HTTP response (as Stem does), with a
 * size cap; `directoryStream()` returns a Readable with backpressure (stream SENDMEs are
 * held back while the reader is behind, so the relay stops sending). For onion services:
 * circuit-level messages to the last hop and awaited from it (`sendCircuitMessage`,
 * `nextCircuitMessage`; onion/rendezvous drives them), and the virtual hop
 * (`addVirtualHop`), to which `openStream` sends BEGIN ":port".
 */
import { Readable } from 'node:stream';
import { BadArgumentError, LimitError, OrportError, ProtocolError, StreamClosedError } from '../errors.js';
import { utf8 } from '../codec/bytes.js';
import { BeginDirMsg, BeginMsg, type RelayMessage } from '../codec/relaymsg.js';
import type { Tor1Keys } from '../crypto/relaycrypto.js';
import { OnionBeginMsg } from '../onion/cells.js';
import { AddrType, EndReason, type LinkSpecifier } from '../codec/datatype.js';
import { isIPv6 } from 'node:net';
import { TorStream, type StreamOpening, type TorStreamOptions } from './stream.js';
import type { CircuitMachine, CircuitOptions, PendingHandshake, StreamHandle } from '../proto/circuit.js';
import type { ChannelMachine } from '../proto/channel.js';
import { boundedWait, startDeadline, type Deadline, type WaitOptions } from './wait.js';
import type { CellWriter } from './cellwriter.js';
import { defaultHandshake, handshakeFor, linkSpecifiersFor, targetName, type CircuitTarget, type HandshakeKind, type HandshakeOptions } from './handshakes.js';

export const DEFAULT_CREATE_TIMEOUT_MS = 10_000;
export const DEFAULT_DIRECTORY_TIMEOUT_MS = 60_000;
/** Default cap on a `directory()` response: far above any consensus or descriptor set. */
export const DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024;

export interface CreateCircuitOptions extends WaitOptions {
  /**
   * The first hop's handshake: 'fast' (CREATE_FAST, the default, as in Stem) or a CREATE2
   * handshake (`ntor`, `ntor-v3`), which needs `target` (the relay's keys from the consensus).
   */
  handshake?: 'fast' | HandshakeKind;
  target?: CircuitTarget;
  /** Names the hop in errors ("hop #1 (name)"; default: the target's nickname or fingerprint, else the relay's address:port). */
  name?: string | undefined;
  /** The consensus' parameters for this circuit (congestion control's cc_*, sendme_accept_min_version). */
  params?: Pick<CircuitOptions, 'congestion' | 'sendmeAcceptMinVersion'>;
}

export interface ExtendOptions extends WaitOptions {
  /** The new hop's handshake (default: ntor v3 when the target lists Relay=4, else ntor). */
  handshake?: HandshakeKind;
  /** Names the new hop in errors ("hop #2 (name)"; default: the target's nickname, else its fingerprint). */
  name?: string | undefined;
  /** Ask the new hop for congestion control (ntor v3 only; prop 324), with the consensus' cc_sendme_inc. */
  congestionControl?: HandshakeOptions['congestionControl'];
  /** The link specifiers EXTEND2 sends instead of the target's (an introduction point's, verbatim from the descriptor). */
  linkSpecifiers?: readonly LinkSpecifier[];
  /** Ask the new hop for CGO relay crypto (prop 359; ntor v3, together with `congestionControl` only). */
  cgo?: boolean;
}

export const DEFAULT_EXTEND_TIMEOUT_MS = 30_000;
/** tor waits 10 s for CONNECTED before it tries another circuit (connection_ap_expire_beginning). */
export const DEFAULT_STREAM_TIMEOUT_MS = 10_000;

export interface OpenStreamOptions extends WaitOptions, TorStreamOptions {
  /** Resolve at once and send written data with BEGIN (tor-spec 6.2); default false. */
  optimistic?: boolean;
  /** BEGIN flags (tor-spec 6.2: 1 IPv6 okay, 2 IPv4 not okay, 4 IPv6 preferred); default 0. */
  flags?: number;
  /** The hop (0-based) to exit from (default: the last). */
  hop?: number;
}

/** BEGIN's ADDRPORT host: IPv6 literals in brackets, hostnames lower-cased by BeginMsg. */
function beginAddress(host: string): string {
  return isIPv6(host) ? `[${host}]` : host;
}

export interface DirectoryOptions extends WaitOptions {
  /** Fail with a LimitError (and close the stream) past this many response bytes. */
  maxResponseBytes?: number;
  /**
   * Send the HTTP request together with BEGIN_DIR (optimistic data, tor-spec 6.2) instead
   * of after CONNECTED. Default true: it saves a relay turnaround (measured: consensus
   * 4.6 ms instead of 8.3 ms; README "Latency"). Without quick ACKs it would cost ~40 ms.
   */
  optimistic?: boolean;
  /** The hop (0-based) whose directory cache to ask (default: the last hop). */
  hop?: number;
}

export interface DirectoryStreamOptions extends Omit<DirectoryOptions, 'maxResponseBytes'> {
  /** Stream id; default: the lowest free one. */
  streamId?: number;
  /** Readable's highWaterMark in bytes (default 64 KiB). */
  highWaterMark?: number;
}

/** A circuit-level message from the last hop (an onion-service message, 32–40): its command and body. */
export interface CircuitMessage {
  readonly command: number;
  readonly body: Uint8Array;
}

export interface CircuitMessageWaitOptions extends WaitOptions {
  /** Names what is awaited in a TimeoutError ("RENDEZVOUS2 from the rendezvous point"). */
  what?: string;
}

/** Circuit-level messages kept for a later `nextCircuitMessage` (RENDEZVOUS2 may come before it is awaited). */
const MAX_INBOX = 8;
export const DEFAULT_CIRCUIT_MESSAGE_TIMEOUT_MS = 30_000;

/** What a BEGIN_DIR stream reports to its consumer. */
interface DirSink {
  /** Response bytes; false when the consumer is full. */
  data(data: Uint8Array): boolean;
  ended(error: OrportError | null): void;
}

/**
 * What a circuit needs of the connection it rides on: where it goes (for messages).
 * client/relay's `Relay` is one; `relay.createCircuit()` returns a `RelayCircuit<Relay>`.
 */
export interface CircuitConnection {
  readonly address: string;
  readonly port: number;
}

/** The client wrapper of each circuit machine (one each; found from the channel's list). */
const wrappers = new WeakMap<CircuitMachine, RelayCircuit<CircuitConnection>>();

/** A circuit through a relay. */
export class RelayCircuit<R extends CircuitConnection = CircuitConnection> {
  private constructor(
    readonly relay: R,
    private readonly machine: CircuitMachine,
    private readonly writer: CellWriter,
  ) {}

  /** The circuit id. */
  get id(): number {
    return this.machine.circId;
  }

  /** True until the circuit is closed or destroyed. */
  get isOpen(): boolean {
    return this.machine.state === 'open';
  }

  /** @internal The protocol machine (client/conflux makes it a conflux leg). */
  get protocolMachine(): CircuitMachine {
    return this.machine;
  }

  /** Cell counters (in, out, DATA, SENDMEs, dropped). */
  get counters(): Readonly<CircuitMachine['counters']> {
    return this.machine.counters;
  }

  /** @internal The open circuits of `channel` (the channel machine keeps the one list). */
  static openOn<R extends CircuitConnection>(channel: ChannelMachine): RelayCircuit<R>[] {
    const out: RelayCircuit<R>[] = [];
    for (const machine of channel.openCircuits()) {
      const circuit = wrappers.get(machine);
      if (circuit) out.push(circuit as unknown as RelayCircuit<R>);
    }
    return out;
  }

  /** @internal Creates the circuit on `channel` (use `relay.createCircuit()`). */
  static create<R extends CircuitConnection>(relay: R, channel: ChannelMachine, writer: CellWriter, options: CreateCircuitOptions): Promise<RelayCircuit<R>> {
    const kind = options.handshake ?? 'fast';
    const name = options.name ?? (options.target ? targetName(options.target) : `${relay.address}:${relay.port}`);
    let pending: PendingHandshake | undefined;
    try {
      if (kind !== 'fast') {
        if (!options.target) throw new BadArgumentError(`a ${kind} handshake needs the relay's keys: pass options.target (rsa, ed25519, ntorOnionKey)`);
        pending = handshakeFor(kind, options.target, `hop #1 (${name})`);
      }
    } catch (err) {
      return Promise.reject(err);
    }
    const what = `${pending ? `CREATED2 (${pending.name})` : 'CREATED_FAST'} for hop #1 (${name}) from ${relay.address}:${relay.port}`;
    return boundedWait<RelayCircuit<R>>(what, options, DEFAULT_CREATE_TIMEOUT_MS, ({ resolve, reject }) => {
      const machine = channel.newCircuit(
        {
          opened: () => {
            const circuit = new RelayCircuit(relay, machine, writer);
            wrappers.set(machine, circuit);
            resolve(circuit);
          },
          destroyed: (error) => {
            wrappers.get(machine)?.settleExtend(error);
            wrappers.get(machine)?.settleTruncate(error);
            wrappers.get(machine)?.failMessageWaiters(error);
            reject(error);
          },
          circuitMessage: (_hop, command, body) => wrappers.get(machine)?.receiveCircuitMessage(command, body),
          extended: () => wrappers.get(machine)?.settleExtend(null),
          extendFailed: (error) => wrappers.get(machine)?.settleExtend(error),
          truncated: () => wrappers.get(machine)?.settleTruncate(null),
        },
        options.params,
      );
      if (pending) machine.startCreate2(pending, name);
      else machine.startCreateFast(name);
      return () => machine.destroy();
    });
  }

  private extendWaiter: ((error: OrportError | null) => void) | undefined;
  private truncateWaiter: ((error: OrportError | null) => void) | undefined;

  /** @internal The machine reported TRUNCATED (null), or the circuit is gone. */
  settleTruncate(error: OrportError | null): void {
    const waiter = this.truncateWaiter;
    this.truncateWaiter = undefined;
    waiter?.(error);
  }

  /**
   * Drops the hops after hop `hop` (0-based; tor-spec 5.4: TRUNCATE to that hop, which
   * answers TRUNCATED). Streams on the dropped hops end. The circuit can then be extended again.
   */
  truncate(hop: number, options: WaitOptions = {}): Promise<void> {
    return boundedWait<void>(`TRUNCATED from ${this.machine.hopLabel(hop)} of circuit ${this.id}`, options, DEFAULT_EXTEND_TIMEOUT_MS, ({ resolve, reject }) => {
      this.truncateWaiter = (error) => (error ? reject(error) : resolve());
      this.machine.truncate(hop);
      return (error) => {
        this.truncateWaiter = undefined;
        this.machine.destroy(undefined, error);
      };
    });
  }

  /** @internal The machine reported the end of an EXTEND2. */
  settleExtend(error: OrportError | null): void {
    const waiter = this.extendWaiter;
    this.extendWaiter = undefined;
    waiter?.(error);
  }

  /** Hops the circuit has. */
  get hopCount(): number {
    return this.machine.hopCount;
  }

  // -------------------------------------------------------------------------------
  // Circuit-level messages (onion services) and the virtual hop

  private readonly inbox: CircuitMessage[] = [];
  private readonly messageWaiters = new Set<{ commands: ReadonlySet<number>; deliver(msg: CircuitMessage): void; fail(error: OrportError): void }>();
  private closedWith: OrportError | undefined;
  /** Circuit-level messages dropped because nothing awaited them and the inbox was full. */
  droppedCircuitMessages = 0;

  /** @internal An onion-service message came from the last hop. */
  receiveCircuitMessage(command: number, body: Uint8Array): void {
    const msg = { command, body };
    for (const waiter of this.messageWaiters) {
      if (!waiter.commands.has(command)) continue;
      this.messageWaiters.delete(waiter);
      waiter.deliver(msg);
      return;
    }
    if (this.inbox.length >= MAX_INBOX) {
      this.inbox.shift();
      this.droppedCircuitMessages++;
    }
    this.inbox.push(msg);
  }

  /** @internal The circuit is gone: every wait for a message fails with why. */
  failMessageWaiters(error: OrportError): void {
    this.closedWith = error;
    const waiters = [...this.messageWaiters];
    this.messageWaiters.clear();
    for (const w of waiters) w.fail(error);
  }

  /**
   * Sends a circuit-level relay message (stream id 0) to the last hop: ESTABLISH_RENDEZVOUS
   * (33) or INTRODUCE1 (34) — onion/cells encodes the body.
   */
  sendCircuitMessage(command: number, body: Uint8Array): void {
    if (this.machine.isVirtualHop(this.machine.hopCount - 1)) throw new BadArgumentError(`circuit ${this.id} ends at an onion service's virtual hop: circuit-level onion-service messages go to a relay`);
    this.machine.sendRelay(this.machine.hopCount - 1, command, 0, body);
    this.writer.flush();
  }

  /**
   * The next circuit-level message from the last hop whose command is one of `commands`
   * (kept from when it came, if it came before this call: RENDEZVOUS2 may arrive before
   * INTRODUCE_ACK). Rejects with the circuit's error if it is destroyed, a TimeoutError
   * (default 30 s) or an AbortError; the circuit is left as it is then.
   */
  nextCircuitMessage(commands: readonly number[], options: CircuitMessageWaitOptions = {}): Promise<CircuitMessage> {
    const wanted = new Set(commands);
    const what = `${options.what ?? commands.map((c) => `relay command ${c}`).join(' or ')} on circuit ${this.id}`;
    return boundedWait<CircuitMessage>(what, options, DEFAULT_CIRCUIT_MESSAGE_TIMEOUT_MS, ({ resolve, reject }) => {
      const at = this.inbox.findIndex((m) => wanted.has(m.command));
      if (at >= 0) {
        resolve(this.inbox.splice(at, 1)[0]!);
        return;
      }
      if (this.machine.state === 'destroyed') {
        reject(this.closedWith ?? new ProtocolError(`circuit ${this.id} is closed: no ${what} will come`));
        return;
      }
      const waiter = { commands: wanted, deliver: resolve, fail: reject };
      this.messageWaiters.add(waiter);
      return () => {
        this.messageWaiters.delete(waiter);
      };
    });
  }

  /**
   * rend-spec-v3 4.2.1: appends an onion service's virtual hop with hs-ntor's keys (see
   * CircuitMachine.addVirtualHop); the circuit's streams then go to the service.
   */
  addVirtualHop(keys: Tor1Keys, name?: string): void {
    this.machine.addVirtualHop(keys, name);
  }

  /** Whether hop `hop` (0-based; default the last) is an onion service's virtual hop. */
  isVirtualHop(hop = this.machine.hopCount - 1): boolean {
    return this.machine.isVirtualHop(hop);
  }

  /**
   * Extends the circuit by one hop to `target` (tor-spec 5.1.2: EXTEND2 in RELAY_EARLY, link
   * specifiers IPv4, RSA id, Ed25519 id, IPv6; at most 8 per circuit). Resolves when the new
   * hop's keys are in place; rejects with a HandshakeError (the reply didn't authenticate),
   * a CircuitDestroyedError (the last hop TRUNCATED: it couldn't reach the target), a
   * TimeoutError or AbortError (the circuit is then destroyed: an extension half done is of
   * no use).
   */
  extend(target: CircuitTarget, options: ExtendOptions = {}): Promise<void> {
    let pending: PendingHandshake;
    let specs: ReturnType<typeof linkSpecifiersFor>;
    const name = options.name ?? targetName(target);
    const label = `hop #${this.hopCount + 1} (${name})`;
    try {
      pending = handshakeFor(options.handshake ?? defaultHandshake(target), target, label, undefined, { congestionControl: options.congestionControl, cgo: options.cgo });
      specs = options.linkSpecifiers ? [...options.linkSpecifiers] : linkSpecifiersFor(target);
    } catch (err) {
      return Promise.reject(err);
    }
    return boundedWait<void>(`EXTENDED2 (${pending.name}) for ${label} on circuit ${this.id}`, options, DEFAULT_EXTEND_TIMEOUT_MS, ({ resolve, reject }) => {
      this.machine.extend(specs, pending, name);
      this.extendWaiter = (error) => (error ? reject(error) : resolve());
      return (error) => {
        this.extendWaiter = undefined;
        this.machine.destroy(undefined, error);
      };
    });
  }

  /**
   * Fetches a directory document through a BEGIN_DIR stream: sends `request` (an HTTP
   * request, e.g. 'GET /tor/server/authority HTTP/1.0\r\n\r\n'), and resolves to the whole
   * raw response once the relay ends the stream (as Stem's `Circuit.directory`).
   * Concurrent calls on one circuit need distinct stream ids. `timeoutMs` bounds the whole
   * response (default 60 s).
   */
  directory(request: string | Uint8Array, streamId = 1, options: DirectoryOptions = {}): Promise<Uint8Array> {
    const max = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
    if (!(max > 0)) return Promise.reject(new BadArgumentError(`maxResponseBytes must be positive, not ${max}`));
    const chunks: Uint8Array[] = [];
    let size = 0;
    return boundedWait<Uint8Array>(`the directory response on stream ${streamId} of circuit ${this.id}`, options, DEFAULT_DIRECTORY_TIMEOUT_MS, ({ resolve, reject }) => {
      const stream = this.openDirStream(request, streamId, options, {
        data: (data) => {
          size += data.length;
          if (size > max) {
            this.machine.endStream(stream, new LimitError(`the directory response exceeds maxResponseBytes (${max} bytes)`, max));
            return false;
          }
          chunks.push(data);
          return true;
        },
        ended: (error) => {
          if (error) reject(error);
          else resolve(Buffer.concat(chunks));
        },
      });
      return (error) => this.machine.endStream(stream, error);
    });
  }

  /**
   * Like `directory()`, but streams the raw response: a Readable that ends when the relay
   * ends the stream, or errors with a typed error. Memory stays bounded while the reader
   * is slow: stream SENDMEs are held back, so the relay sends at most one stream window
   * (500 cells) ahead. `timeoutMs` (default 60 s) bounds each silence of the relay while
   * the reader wants data, not the time the reader takes.
   */
  directoryStream(request: string | Uint8Array, options: DirectoryStreamOptions = {}): Readable {
    const streamId = options.streamId ?? this.machine.nextStreamId();
    const what = `the directory stream ${streamId} of circuit ${this.id}`;
    let stream: StreamHandle | undefined;
    let deadline: Deadline | undefined;
    const readable = new Readable({
      highWaterMark: options.highWaterMark ?? 64 * 1024,
      read: () => {
        if (!stream) return;
        deadline?.restart();
        this.machine.resumeStream(stream);
        this.writer.flush();
      },
      destroy: (error, callback) => {
        deadline?.dispose();
        if (stream) this.machine.endStream(stream, error instanceof OrportError ? error : null);
        callback(error);
      },
    });
    try {
      deadline = startDeadline(what, options, DEFAULT_DIRECTORY_TIMEOUT_MS, (error) => readable.destroy(error));
      if (streamId === undefined) throw new BadArgumentError(`circuit ${this.id} has no free stream id`);
      stream = this.openDirStream(request, streamId, options, {
        data: (data) => {
          let more: boolean;
          try {
            // Copied when it will sit in the buffer: a view would pin the cipher's output for a whole run of cells.
            more = readable.push(readable.readableLength === 0 ? data : Buffer.from(data));
          } catch (err) {
            // A 'data' listener of the caller threw: it fails this stream, not the channel.
            readable.destroy(err as Error);
            return false;
          }
          if (more) deadline?.restart();
          else deadline?.pause(); // the reader is behind: its pace is not the relay's silence
          return more;
        },
        ended: (error) => {
          deadline?.dispose();
          if (error) readable.destroy(error);
          else readable.push(null);
        },
      });
    } catch (err) {
      deadline?.dispose();
      process.nextTick(() => readable.destroy(err as Error));
    }
    return readable;
  }

  /** Opens a BEGIN_DIR stream and sends `request` (with it, or after CONNECTED when not optimistic). */
  private openDirStream(request: string | Uint8Array, streamId: number, options: DirectoryOptions, sink: DirSink): StreamHandle {
    const bytes = typeof request === 'string' ? utf8.encode(request) : request;
    if (bytes.length === 0) throw new BadArgumentError('the directory request is empty');
    const optimistic = options.optimistic ?? true;
    let connected = false;
    let pending = bytes;
    let stream: StreamHandle | undefined;
    const writeRequest = () => {
      // `writable` also fires on circuit SENDMEs: without optimism, wait for CONNECTED.
      if (!stream || pending.length === 0 || (!optimistic && !connected)) return;
      pending = pending.subarray(this.machine.sendData(stream, pending));
    };
    stream = this.machine.openStream(streamId, new BeginDirMsg(), {
      connected: () => {
        connected = true;
        writeRequest();
      },
      data: (data) => sink.data(data),
      ended: (error) => sink.ended(error),
      writable: writeRequest,
    }, options.hop ?? this.machine.hopCount - 1);
    writeRequest();
    return stream;
  }

  /**
   * Opens an exit stream to `host`:`port` (tor-spec 6.2: BEGIN with the flags a tor 0.4.9
   * client sends) at the last hop (or `hop`) and resolves once CONNECTED arrives, or at
   * once with `optimistic` (data written goes with BEGIN; a refusal then destroys the
   * stream). Rejects with a StreamClosedError carrying the exit's END reason
   * (CONNECTREFUSED, EXITPOLICY, RESOLVEFAILED, …), a TimeoutError (`timeoutMs`, default
   * 10 s as tor's stream timeout) or an AbortError; a stream given up on is ended.
   */
  openStream(host: string, port: number, options: OpenStreamOptions = {}): Promise<TorStream> {
    let stream: TorStream;
    let begin: RelayMessage;
    try {
      // To an onion service's virtual hop: ":port" (the address is empty, no flags; DIGEST-onion §6.7).
      begin = this.machine.isVirtualHop(options.hop ?? this.machine.hopCount - 1) ? new OnionBeginMsg(port) : new BeginMsg(beginAddress(host), port, options.flags ?? 0, true);
      stream = new TorStream(this.machine, this.writer, host, port, options);
    } catch (err) {
      return Promise.reject(err);
    }
    if (options.optimistic) {
      try {
        this.startStream(stream, begin, options.hop, { connected: () => undefined, failed: (error) => stream.destroy(error) });
      } catch (err) {
        return Promise.reject(err);
      }
      stream.optimistic = true;
      return Promise.resolve(stream);
    }
    return boundedWait<TorStream>(`CONNECTED for ${host}:${port} on circuit ${this.id}`, options, DEFAULT_STREAM_TIMEOUT_MS, ({ resolve, reject }) => {
      this.startStream(stream, begin, options.hop, { connected: () => resolve(stream), failed: (error) => reject(error) });
      return (error) => stream.destroy(error);
    });
  }

  private startStream(stream: TorStream, begin: RelayMessage, hop: number | undefined, opening: StreamOpening): void {
    const streamId = this.machine.nextStreamId();
    if (streamId === undefined) throw new LimitError(`circuit ${this.id} has no free stream id`, 0xffff);
    const handle = this.machine.openStream(streamId, begin, stream.events, hop ?? this.machine.hopCount - 1);
    stream.attach(handle, opening);
    this.writer.flush();
  }

  /**
   * Resolves `host` at the last hop (tor-spec 6.4: RESOLVE / RESOLVED): the addresses it
   * answered (IPv4 first). Rejects with a StreamClosedError RESOLVEFAILED when the exit
   * could not resolve it (TORPROTOCOL when its answer was malformed), a TimeoutError or
   * an AbortError.
   */
  resolve(host: string, options: WaitOptions = {}): Promise<string[]> {
    return boundedWait<string[]>(`RESOLVED for ${host} on circuit ${this.id}`, options, DEFAULT_STREAM_TIMEOUT_MS, ({ resolve, reject }) => {
      const id = this.machine.resolve(host, {
        resolved: (msg, error) => {
          if (error) return reject(error);
          const addresses = msg!.answers.filter((a) => a.address.type === AddrType.IPv4 || a.address.type === AddrType.IPv6).map((a) => a.address.value ?? '').filter(Boolean);
          if (addresses.length) return resolve(addresses);
          const permanent = msg!.answers.some((a) => a.address.typeInt === 0xf1);
          reject(new StreamClosedError('relay', EndReason.RESOLVEFAILED, 2, `the exit could not resolve ${host}${permanent ? ' (permanent error)' : msg!.answers.length ? ' (transient error)' : ' (no answer)'}`));
        },
      });
      this.writer.flush();
      return (error) => this.machine.cancelResolve(id, error ?? new StreamClosedError('local', EndReason.MISC, 1));
    });
  }

  /** Congestion control on hop `hop` (0-based), as its handshake negotiated it; undefined: fixed windows. */
  congestion(hop: number): ReturnType<CircuitMachine['hopCongestion']> {
    return this.machine.hopCongestion(hop);
  }

  /** Which relay crypto hop `hop` (0-based) runs: 'tor1', or 'cgo' where it was negotiated (prop 359). */
  relayCrypto(hop: number): 'tor1' | 'cgo' | undefined {
    return this.machine.hopRelayCrypto(hop);
  }

  /** Open streams (exit and directory) on this circuit. */
  get streamCount(): number {
    return this.machine.streamCount;
  }

  /** Closes the circuit with DESTROY (reason NONE). Idempotent. */
  async close(): Promise<void> {
    if (this.machine.state === 'destroyed') return;
    this.machine.destroy();
    this.writer.flush();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
