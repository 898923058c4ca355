/**
 * testing/fakerelay — a scriptable fake relay: a TLS server on loopback that runs the
 * relay's side of the link handshake with a real, valid CERTS chain (testing/certchain:
 * RSA-1024 identity, Ed25519 identity, signing and link certs, cross-cert), answers
 * CREATE_FAST and CREATE2 (ntor and ntor v3, with its own X25519 ntor onion key), extends
 * circuits by EXTEND2 to other fake relays of this process, answers TRUNCATE, serves
 * BEGIN_DIR requests at any hop with documents of any size while honouring the client's
 * SENDMEs as tor does (circuit window 1000/100 with v1 digests checked, stream window
 * 500/50), acts as an exit (BEGIN, RESOLVE; below) — and can be told to misbehave at any
 * step.
 *
 *   const relay = await startFakeRelay({ documents: { '/tor/big': syntheticDocument(50e6) } });
 *   const client = await Relay.connect(relay.host, relay.port);
 *   const circuit = await client.createCircuit({ handshake: 'ntor', target: relay.target });
 *   await circuit.extend(other.target);               // `other`: another fake relay
 *   …
 *   await relay.close();
 *
 * Multi-hop: every fake relay registers in a process-local registry (or is given its
 * `peers`); on EXTEND2 a hop finds its target there by the RSA id link specifier and runs
 * that relay's side of the handshake in memory (no second TLS link): the new hop is a
 * FakeCircuit of that relay, its hooks and documents, chained after the extending one.
 * Cells a hop doesn't recognize go on to the next (testing/relayside), and what a later
 * hop sends is encrypted by it and then by each earlier hop, as tor-spec 5.5 says.
 *
 * Scripting: every step calls a hook, middleware style: `(conn, next, …)`. Calling
 * `next()` does what an honest relay does at that step; not calling it skips that, and
 * the hook may do anything else instead (raw bytes, silence, a trickle, a reset) with
 * the primitives of `FakeConnection`, `FakeCircuit` and `FakeStream`. Hooks may be async.
 * A hook runs on the relay whose hop it is; `conn` is always the client's connection to
 * the circuit's first relay (the only real link).
 *
 *   handshake:  connection → versions → certs → authChallenge → netinfo
 *   circuits:   createFast | create2; extend2 (→ the target's create2); truncate;
 *               cell (every cell from the client, before it is handled)
 *   streams:    beginDir → request → data (each DATA cell) … → end
 *   exit:       begin → (upload: each DATA cell from the client) … data … → end;
 *               resolve; sendme (each SENDME we owe the client for its uploads)
 *
 * Exit (tor-spec 6.2-6.4, 7.3-7.4): BEGIN's honest answer connects to the target with
 * node:net — only ever to 127.0.0.1: any other address gets END EXITPOLICY (with the
 * address and a TTL when it is an IP literal), hostnames included — answers CONNECTED
 * (127.0.0.1, TTL 300) and relays bytes both ways: what the target sends goes out within
 * the client's windows (the target is paused meanwhile), what the client sends is written
 * to the target (optimistic DATA before CONNECTED is held, as tor holds it), and the
 * client gets SENDMEs for its uploads as tor sends them (a circuit SENDME v1 echoing the
 * digest of each 100th DATA cell at this hop, a stream SENDME per 50 while the target
 * keeps up). RESOLVE is answered from `resolutions` (no real DNS). `stream.send`,
 * `circuit.send` and `circuit.resolved` send any relay message, malformed ones included.
 *
 * The server checks what the client does (its v1 SENDME digests, the windows it grants,
 * EXTEND2 in RELAY_EARLY and at most 8 of those) and lists what it found wrong in
 * `violations`; an exception in a hook lands in `errors`. Every socket and timer of a
 * connection is released when it closes, and `close()` releases everything.
 * Not modelled: links between relays (no TLS, circuit ids or queues between hops), exit
 * policies beyond "127.0.0.1 only", DNS, congestion control. Layer: test support (I/O).
 */
import { connect as netConnect, createServer, isIP, type Server, type Socket } from 'node:net';
import { TLSSocket, createSecureContext } from 'node:tls';
import { randomBytes } from 'node:crypto';
import {
  AuthChallengeCell,
  CertsCell,
  Create2Cell,
  DestroyCell,
  NetinfoCell,
  RELAY_DATA_MAX,
  VersionsCell,
  type Cell,
} from '../codec/cell.js';
import { Address, CloseReason, EndReason, LinkProtocol, type Certificate } from '../codec/datatype.js';
import { CellDecoder, type CellFrame } from '../codec/framing.js';
import { bytesEqual, utf8 } from '../codec/bytes.js';
import { BeginMsg, ConnectedMsg, EndMsg, Extend2Msg, Extended2Msg, ResolveMsg, ResolvedMsg, SendmeMsg, TruncatedMsg } from '../codec/relaymsg.js';
import { BadArgumentError, OrportError } from '../errors.js';
import { buildCertChain, type GeneratedChain } from './certchain.js';
import { CellWriter } from '../client/cellwriter.js';
import { RelaySideCircuit, type RandomSource, type RelayMessageIn, type RelayOnionKeys, type RelaySideLayer, type ServerHandshakeOptions } from './relayside.js';
import type { RelayIdentity } from '../crypto/certs.js';
import { x25519KeyPair, type X25519KeyPair } from '../crypto/handshake/ntor.js';
import type { CircuitTarget } from '../client/handshakes.js';

// ---------------------------------------------------------------------------------
// Documents

/** A document the fake relay serves: its bytes, produced on demand (any size). */
export interface DocumentSource {
  readonly size: number;
  /** `length` bytes from `offset` (the server never asks past `size`). */
  read(offset: number, length: number): Uint8Array;
}

export type Document = string | Uint8Array | DocumentSource;

const PATTERN_LEN = 65_521; // prime: the pattern never lines up with 498-byte cells

/** The byte at `index` of a synthetic document with `seed` (for checking what arrived). */
export function syntheticByte(index: number, seed = 0): number {
  const i = index % PATTERN_LEN;
  return ((Math.imul(i + 1, 2_654_435_761) >>> 24) ^ i ^ seed) & 0xff;
}

const patterns = new Map<number, Uint8Array>();
function pattern(seed: number): Uint8Array {
  let p = patterns.get(seed);
  if (!p) {
    p = new Uint8Array(PATTERN_LEN * 2);
    for (let i = 0; i < p.length; i++) p[i] = syntheticByte(i, seed);
    patterns.set(seed, p);
  }
  return p;
}

/**
 * A document of `size` bytes made on demand from a repeating pattern (no memory in
 * proportion to its size); `syntheticByte(i, seed)` says what byte `i` is.
 */
export function syntheticDocument(size: number, seed = 0): DocumentSource {
  if (!Number.isSafeInteger(size) || size < 0) throw new BadArgumentError(`a document size is a non-negative integer, not ${size}`);
  const p = pattern(seed);
  return {
    size,
    read(offset, length) {
      const at = offset % PATTERN_LEN;
      if (length <= PATTERN_LEN) return p.subarray(at, at + length);
      const out = new Uint8Array(length);
      for (let i = 0; i < length; i++) out[i] = p[(offset + i) % PATTERN_LEN]!;
      return out;
    },
  };
}

function asSource(doc: Document): DocumentSource {
  if (typeof doc !== 'string' && !(doc instanceof Uint8Array)) return doc;
  const bytes = typeof doc === 'string' ? utf8.encode(doc) : doc;
  return { size: bytes.length, read: (offset, length) => bytes.subarray(offset, offset + length) };
}

/** An HTTP/1.0 response (headers, then the document), as a DocumentSource. */
function httpResponse(status: string, body: DocumentSource): DocumentSource {
  const head = utf8.encode(`HTTP/1.0 ${status}\r\nContent-Type: text/plain\r\n\r\n`);
  return {
    size: head.length + body.size,
    read(offset, length) {
      if (offset >= head.length) return body.read(offset - head.length, length);
      const out = new Uint8Array(length);
      const fromHead = Math.min(length, head.length - offset);
      out.set(head.subarray(offset, offset + fromHead));
      if (length > fromHead) out.set(body.read(0, length - fromHead), fromHead);
      return out;
    },
  };
}

// ---------------------------------------------------------------------------------
// Hooks

type Awaitable<T> = T | Promise<T>;
/** Does what an honest relay does at this step. */
export type Next = () => Awaitable<void>;

export interface FakeRelayHooks {
  /** TLS is up; `next()` starts reading the client's VERSIONS. */
  connection?(conn: FakeConnection, next: Next): Awaitable<void>;
  /** The client's VERSIONS arrived (`conn.linkProtocol` is already chosen); `next()` sends ours, then runs `certs`. */
  versions?(conn: FakeConnection, next: Next, clientVersions: readonly number[]): Awaitable<void>;
  /** `next()` sends the CERTS cell, then runs `authChallenge`. */
  certs?(conn: FakeConnection, next: Next): Awaitable<void>;
  /** `next()` sends AUTH_CHALLENGE, then runs `netinfo`. */
  authChallenge?(conn: FakeConnection, next: Next): Awaitable<void>;
  /** `next()` sends NETINFO: the handshake is done on our side. */
  netinfo?(conn: FakeConnection, next: Next): Awaitable<void>;
  /** Every cell from the client after its VERSIONS; `next()` handles it. */
  cell?(conn: FakeConnection, next: Next, frame: CellFrame): Awaitable<void>;
  /**
   * Every relay message a hop of this relay recognized, decrypted (`msg.command`,
   * `msg.streamId`, `msg.body`); `next()` handles it as below (commands the fake relay does
   * not know are dropped). The onion-service roles (testing/fakeonion) answer here.
   */
  message?(conn: FakeConnection, next: Next, circuit: FakeCircuit, msg: RelayMessageIn): Awaitable<void>;
  /** A CREATE_FAST arrived; `next()` answers CREATED_FAST. */
  createFast?(conn: FakeConnection, next: Next, circuit: FakeCircuit): Awaitable<void>;
  /**
   * A CREATE2 for this relay: on the connection (`circuit.hop` 0), or an EXTEND2's onion
   * skin handed over by the hop before (`circuit.prev`). `next()` runs the handshake and
   * answers CREATED2, or (later hops) has the hop before answer EXTENDED2; a handshake
   * that fails is answered with DESTROY (PROTOCOL).
   */
  create2?(conn: FakeConnection, next: Next, circuit: FakeCircuit, request: Create2Request): Awaitable<void>;
  /** An EXTEND2 arrived at `circuit` (the extending hop); `next()` finds the target and runs its `create2`. */
  extend2?(conn: FakeConnection, next: Next, circuit: FakeCircuit, extend: Extend2Msg): Awaitable<void>;
  /** A TRUNCATE arrived at `circuit`; `next()` drops the hops after it and answers TRUNCATED (REQUESTED). */
  truncate?(conn: FakeConnection, next: Next, circuit: FakeCircuit): Awaitable<void>;
  /** A BEGIN_DIR arrived; `next()` answers CONNECTED. */
  beginDir?(conn: FakeConnection, next: Next, circuit: FakeCircuit, stream: FakeStream): Awaitable<void>;
  /** A whole HTTP request arrived on a stream; `next()` starts serving the response. */
  request?(conn: FakeConnection, next: Next, circuit: FakeCircuit, stream: FakeStream, request: string): Awaitable<void>;
  /** A DATA cell of the response is due (`index` counts from 0); `next()` sends it. */
  data?(conn: FakeConnection, next: Next, circuit: FakeCircuit, stream: FakeStream, body: Uint8Array, index: number): Awaitable<void>;
  /** The whole response was sent (exit: the target closed and all it sent went out); `next()` sends END (DONE). */
  end?(conn: FakeConnection, next: Next, circuit: FakeCircuit, stream: FakeStream): Awaitable<void>;
  /**
   * A BEGIN arrived at this hop (`stream.target`); `next()` is `stream.connect()`: the
   * target on 127.0.0.1 (any other address: END EXITPOLICY), CONNECTED, bytes both ways.
   */
  begin?(conn: FakeConnection, next: Next, circuit: FakeCircuit, stream: FakeStream, target: BeginTarget): Awaitable<void>;
  /** A DATA cell from the client on an exit stream; `next()` writes it to the target (held until connected). */
  upload?(conn: FakeConnection, next: Next, circuit: FakeCircuit, stream: FakeStream, body: Uint8Array): Awaitable<void>;
  /** A RESOLVE arrived (tor-spec 6.4); `next()` answers RESOLVED from `resolutions`. */
  resolve?(conn: FakeConnection, next: Next, circuit: FakeCircuit, streamId: number, hostname: string): Awaitable<void>;
  /**
   * We owe the client a SENDME for its uploads: `streamId` 0 is a circuit SENDME v1 that
   * must echo `digest` (tor-spec 7.3, prop289), else a stream SENDME; `next()` sends it.
   */
  sendme?(conn: FakeConnection, next: Next, circuit: FakeCircuit, streamId: number, digest: Uint8Array | undefined): Awaitable<void>;
}

/** What a BEGIN asked for (tor-spec 6.2): `host` without IPv6 brackets. */
export interface BeginTarget {
  readonly host: string;
  readonly port: number;
  readonly flags: number;
}

/** The only address the fake exit ever connects to. */
export const FAKE_EXIT_ADDRESS = '127.0.0.1';
/** The TTL the fake exit puts in CONNECTED, END EXITPOLICY and RESOLVED. */
const EXIT_TTL = 300;

/** What a CREATE2 (or an EXTEND2 for this relay) asked for. */
export interface Create2Request {
  readonly handshakeType: number;
  readonly handshakeData: Uint8Array;
}

export interface FakeRelayOptions {
  /** Listen address (default 127.0.0.1) and port (default: any free one). */
  host?: string;
  port?: number;
  /** The relay's keys and certificates (default: a fresh chain; making one takes ~0.1-0.5 s). */
  chain?: GeneratedChain;
  /** What the CERTS cell carries (default `chain.certificates`): serve another relay's chain, a broken one… */
  certificates?: readonly Certificate[];
  /** Our VERSIONS list (default 3, 4, 5). */
  versions?: readonly number[];
  /** Our NETINFO clock minus the real one, in ms (default 0). */
  clockSkewMs?: number;
  /** Documents by path ('/tor/server/authority'); others get a 404. Or a function. */
  documents?: Readonly<Record<string, Document>> | ((path: string) => Document | undefined);
  /** Send DATA regardless of the client's windows (a relay that overruns them). Default false. */
  ignoreWindows?: boolean;
  /** The nickname in `target` (default "fake" and the first 8 digits of the RSA id). */
  nickname?: string;
  /** The ntor onion key (default: a fresh X25519 key pair). */
  ntorOnionKey?: X25519KeyPair;
  /** ntor v3: the relay's message SM, or how to make it from the client's CM (default `00`). */
  ntorV3Response?: ServerHandshakeOptions['serverMessage'];
  /** RESOLVE answers by hostname (default `localhost` → 127.0.0.1, ::1; IP literals answer themselves; others a permanent error). */
  resolutions?: Readonly<Record<string, readonly string[]>>;
  /** The relays EXTEND2 can reach (default: every fake relay running in this process). */
  peers?: readonly FakeRelay[];
  /** Randomness for handshakes (CREATE_FAST's Y, ntor's y). */
  random?: RandomSource;
  hooks?: FakeRelayHooks;
}

export interface FakeRelayStats {
  connections: number;
  handshakes: number;
  circuits: number;
  streams: number;
  cellsIn: number;
  dataCellsOut: number;
  bytesOut: number;
  /** Exit: BEGINs, RESOLVEs, DATA cells from the client, SENDMEs we sent for them. */
  begins: number;
  resolves: number;
  dataCellsIn: number;
  sendmesOut: number;
}

export interface FakeRelay {
  readonly host: string;
  readonly port: number;
  /** The identity the chain proves (what a client may pin). */
  readonly identity: RelayIdentity;
  readonly chain: GeneratedChain;
  readonly nickname: string;
  /** The ntor onion key pair, and its public key as base64 (as a microdescriptor lists it). */
  readonly onionKey: X25519KeyPair;
  readonly ntorOnionKey: string;
  /** This relay as a circuit target: `createCircuit({ handshake, target })`, `circuit.extend(target)`. */
  readonly target: CircuitTarget;
  /** Open connections. */
  readonly connections: ReadonlySet<FakeConnection>;
  readonly stats: FakeRelayStats;
  /** What the clients did wrong (bad SENDME digests, windows, cells a client never sends). */
  readonly violations: string[];
  /** Exceptions thrown by hooks (their connection was destroyed). */
  readonly errors: unknown[];
  /** Resolves when `n` connections have closed since start. */
  closedConnections(n: number): Promise<void>;
  /** Destroys every connection and stops listening. Idempotent. */
  close(): Promise<void>;
}

/** Starts a fake relay on loopback. */
export async function startFakeRelay(options: FakeRelayOptions = {}): Promise<FakeRelay> {
  const server = new FakeRelayServer(options);
  await server.listen();
  return server;
}

/** Thrown into a hook's pending sleep when its connection closes; swallowed by the runner. */
class ConnectionGone extends Error {
  constructor() {
    super('the connection closed');
  }
}

/** The fake relays running in this process, which EXTEND2 can reach (unless a relay has `peers`). */
const registry = new Set<FakeRelayServer>();

class FakeRelayServer implements FakeRelay {
  readonly host: string;
  port = 0;
  readonly chain: GeneratedChain;
  readonly nickname: string;
  readonly onionKey: X25519KeyPair;
  readonly random: RandomSource;
  readonly connections = new Set<FakeConnection>();
  readonly stats: FakeRelayStats = { connections: 0, handshakes: 0, circuits: 0, streams: 0, cellsIn: 0, dataCellsOut: 0, bytesOut: 0, begins: 0, resolves: 0, dataCellsIn: 0, sendmesOut: 0 };
  readonly violations: string[] = [];
  readonly errors: unknown[] = [];
  private readonly server: Server;
  private closing: Promise<void> | undefined;
  private closedCount = 0;
  private readonly closeWaiters: { n: number; resolve: () => void }[] = [];
  readonly secureContext;

  constructor(readonly options: FakeRelayOptions) {
    this.host = options.host ?? '127.0.0.1';
    this.chain = options.chain ?? buildCertChain();
    this.random = options.random ?? ((n) => new Uint8Array(randomBytes(n)));
    this.onionKey = options.ntorOnionKey ?? x25519KeyPair(this.random(32));
    this.nickname = options.nickname ?? `fake${this.chain.identity.rsa.slice(0, 8)}`;
    this.secureContext = createSecureContext({ cert: this.chain.tlsCertificatePem, key: this.chain.tlsKeyPem, minVersion: 'TLSv1.2' });
    this.server = createServer((raw) => this.accept(raw));
  }

  get identity(): RelayIdentity {
    return this.chain.identity;
  }

  get ntorOnionKey(): string {
    return Buffer.from(this.onionKey.public).toString('base64').replace(/=+$/, '');
  }

  get target(): CircuitTarget {
    const { rsa, ed25519 } = this.identity;
    return { nickname: this.nickname, rsa, ed25519, ntorOnionKey: this.ntorOnionKey, address: this.host, orPort: this.port, protocols: { Relay: '1-4' } };
  }

  /** What CREATE2 handshakes are answered with. */
  get onionKeys(): RelayOnionKeys {
    return { rsaId: new Uint8Array(Buffer.from(this.identity.rsa, 'hex')), ed25519Id: this.chain.ed25519Identity, onionKeys: [this.onionKey] };
  }

  /**
   * The relay an EXTEND2's link specifiers name (tor-spec 5.1.2): the RSA id (type 2)
   * must match, and the Ed25519 id (type 3) too when given. Undefined if none does.
   */
  findPeer(specs: readonly { type: number; value: Uint8Array }[]): FakeRelayServer | undefined {
    const rsa = specs.find((s) => s.type === 2)?.value;
    const ed = specs.find((s) => s.type === 3)?.value;
    if (!rsa) return undefined;
    const candidates = (this.options.peers as readonly FakeRelayServer[] | undefined) ?? registry;
    for (const peer of candidates) {
      if (peer.closing || !(peer instanceof FakeRelayServer)) continue;
      if (!bytesEqual(peer.onionKeys.rsaId, rsa)) continue;
      if (ed && !bytesEqual(peer.chain.ed25519Identity, ed)) continue;
      return peer;
    }
    return undefined;
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.options.port ?? 0, this.host, () => {
        this.server.off('error', reject);
        const address = this.server.address();
        this.port = address && typeof address === 'object' ? address.port : 0;
        registry.add(this);
        resolve();
      });
    });
  }

  private accept(raw: Socket): void {
    if (this.closing) {
      raw.destroy();
      return;
    }
    this.stats.connections++;
    const conn = new FakeConnection(this, raw);
    this.connections.add(conn);
    conn.closed.then(() => {
      this.connections.delete(conn);
      this.closedCount++;
      for (const w of this.closeWaiters.filter((x) => x.n <= this.closedCount)) {
        this.closeWaiters.splice(this.closeWaiters.indexOf(w), 1);
        w.resolve();
      }
    });
  }

  closedConnections(n: number): Promise<void> {
    if (this.closedCount >= n) return Promise.resolve();
    return new Promise((resolve) => this.closeWaiters.push({ n, resolve }));
  }

  documentFor(path: string): Document | undefined {
    const docs = this.options.documents;
    if (!docs) return undefined;
    if (typeof docs === 'function') return docs(path);
    return Object.prototype.hasOwnProperty.call(docs, path) ? docs[path] : undefined;
  }

  /** RESOLVE's honest answers for `hostname` (no DNS: `resolutions`, IP literals, else a permanent error). */
  answersFor(hostname: string): Address[] {
    if (isIP(hostname)) return [new Address(hostname)];
    const table = this.options.resolutions ?? { localhost: [FAKE_EXIT_ADDRESS, '::1'] };
    const found = Object.prototype.hasOwnProperty.call(table, hostname) ? table[hostname] : undefined;
    if (found?.length) return found.map((a) => new Address(a));
    return [new Address('Error resolving hostname', 0xf1)];
  }

  close(): Promise<void> {
    registry.delete(this);
    this.closing ??= new Promise<void>((resolve) => {
      const conns = [...this.connections];
      for (const c of conns) c.destroy();
      Promise.all(conns.map((c) => c.closed)).then(() => this.server.close(() => resolve()));
    });
    return this.closing;
  }
}

// ---------------------------------------------------------------------------------
// Connections

/** One client connection, and the primitives hooks script it with. */
export class FakeConnection {
  /** The negotiated link protocol (after the client's VERSIONS). */
  linkProtocol: LinkProtocol = LinkProtocol.of(3);
  /** The client's VERSIONS list. */
  clientVersions: readonly number[] = [];
  /** Circuits by id, and in creation order. */
  readonly circuits = new Map<number, FakeCircuit>();
  private circuitCount = 0;
  /** Commands of the cells the client sent (after VERSIONS), in order, with their circuit ids. */
  readonly cellsIn: { command: number; circId: number }[] = [];
  /** DESTROY cells the client sent. */
  readonly destroysIn: { circId: number; reason: number }[] = [];
  readonly closed: Promise<void>;
  private closedFlag = false;
  private readonly decoder = new CellDecoder(LinkProtocol.of(2));
  private sawVersions = false;
  /** Everything queued in one event-loop turn goes out in one write; 64 KiB at once. */
  private readonly writer = new CellWriter({ flushAtBytes: 64 * 1024 });
  private bytesIn = 0;
  private versionsLength = 0;
  private readonly timers = new Set<NodeJS.Timeout>();
  private draining: Promise<void> | undefined;
  private readonly sleepers = new Set<(error: Error) => void>();
  readonly tls: TLSSocket;

  constructor(
    readonly relay: FakeRelayServer,
    /** The TCP socket under TLS (for resets). */
    readonly raw: Socket,
  ) {
    let resolveClosed!: () => void;
    this.closed = new Promise((r) => (resolveClosed = r));
    raw.on('error', () => undefined);
    this.tls = new TLSSocket(raw, { isServer: true, secureContext: relay.secureContext });
    this.writer.socket = this.tls;
    this.tls.on('error', () => undefined);
    this.tls.once('secure', () => this.run(relay.options.hooks?.connection, () => this.startReading()));
    raw.once('close', () => {
      this.tls.destroy();
      this.closedFlag = true;
      for (const t of this.timers) clearTimeout(t);
      this.timers.clear();
      for (const wake of [...this.sleepers]) wake(new ConnectionGone());
      for (const circuit of [...this.circuits.values()]) circuit.gone(); // exit streams' sockets go too
      this.writer.clear();
      resolveClosed();
    });
  }

  get isClosed(): boolean {
    return this.closedFlag || this.tls.destroyed;
  }

  // --- primitives -----------------------------------------------------------------

  /** Queues bytes; everything queued in one event-loop turn goes out in one write. */
  write(bytes: Uint8Array): void {
    if (this.isClosed) return;
    this.relay.stats.bytesOut += bytes.length;
    this.writer.send(bytes);
  }

  /** Packs and queues a cell with the negotiated link protocol. */
  writeCell(cell: Cell): void {
    this.write(cell.pack(this.linkProtocol));
  }

  /** Writes what is queued now; resolves once the socket took it. */
  flush(): Promise<void> {
    return new Promise((resolve) => {
      if (this.isClosed) return resolve();
      this.writer.flush(resolve);
    });
  }

  /** Bytes the client sent after its VERSIONS cell (partial cells included). */
  get bytesAfterVersions(): number {
    return this.bytesIn - this.versionsLength;
  }

  /** Resolves when the socket's buffer has drained (at once if it is not over its mark). */
  drained(): Promise<void> {
    if (!this.tls.writableNeedDrain || this.isClosed) return Promise.resolve();
    // One wait shared by every stream of the connection (no listener per stream).
    this.draining ??= new Promise<void>((resolve) => {
      const done = () => {
        this.tls.off('drain', done);
        this.tls.off('close', done);
        this.draining = undefined;
        resolve();
      };
      this.tls.once('drain', done);
      this.tls.once('close', done);
    });
    return this.draining;
  }

  /** Waits `ms`; if the connection closes first, the hook waiting here is stopped quietly. */
  sleep(ms: number): Promise<void> {
    if (this.isClosed) return Promise.reject(new ConnectionGone());
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        this.sleepers.delete(reject);
        resolve();
      }, ms);
      this.timers.add(timer);
      this.sleepers.add(reject);
    });
  }

  /** Sends `bytes` a few at a time (default one byte every second): a slowloris. */
  async trickle(bytes: Uint8Array, options: { chunk?: number; intervalMs?: number } = {}): Promise<void> {
    const chunk = options.chunk ?? 1;
    for (let at = 0; at < bytes.length; at += chunk) {
      this.write(bytes.subarray(at, at + chunk));
      await this.flush();
      await this.sleep(options.intervalMs ?? 1000);
    }
  }

  /** Closes TLS in an orderly way (close_notify, FIN). */
  end(): void {
    if (!this.isClosed) this.writer.flush();
    this.tls.end();
  }

  /** Drops the connection without a TLS close. */
  destroy(): void {
    this.tls.destroy();
    this.raw.destroy();
  }

  /**
   * Flushes what is queued, lets it reach the peer, then resets the TCP connection (RST):
   * the peer sees ECONNRESET. (A reset right after a write can go out as a plain FIN
   * while the write is still pending in libuv; 10 ms is plenty on loopback.)
   */
  async reset(): Promise<void> {
    await this.flush();
    await this.sleep(10);
    if (!this.raw.destroyed) this.raw.resetAndDestroy();
    this.tls.destroy();
  }

  // --- the honest relay's cells -----------------------------------------------------

  versionsCell(versions: readonly number[] = this.relay.options.versions ?? [3, 4, 5]): Uint8Array {
    return new VersionsCell(versions).pack(2);
  }

  certsCell(certificates: readonly Certificate[] = this.relay.options.certificates ?? this.relay.chain.certificates): Uint8Array {
    return new CertsCell(certificates).pack(this.linkProtocol);
  }

  authChallengeCell(): Uint8Array {
    return new AuthChallengeCell([1, 3]).pack(this.linkProtocol);
  }

  netinfoCell(time = new Date(Date.now() + (this.relay.options.clockSkewMs ?? 0))): Uint8Array {
    const peer = this.raw.remoteAddress?.replace(/^::ffff:/, '') ?? '127.0.0.1';
    const ours = this.raw.localAddress?.replace(/^::ffff:/, '') ?? '127.0.0.1';
    return new NetinfoCell(new Address(peer), [new Address(ours)], time).pack(this.linkProtocol);
  }

  /** The honest handshake after VERSIONS: CERTS, AUTH_CHALLENGE, NETINFO. */
  handshakeCells(): Uint8Array {
    return Buffer.concat([this.certsCell(), this.authChallengeCell(), this.netinfoCell()]);
  }

  // --- inbound --------------------------------------------------------------------

  private startReading(): void {
    this.tls.on('data', (chunk: Buffer) => this.onBytes(chunk));
    this.tls.on('end', () => this.tls.end());
  }

  private onBytes(chunk: Uint8Array): void {
    if (this.isClosed) return;
    this.bytesIn += chunk.length;
    this.decoder.push(chunk);
    for (let frame = this.decoder.next(); frame; frame = this.decoder.next()) {
      if (this.isClosed) return;
      if (!this.sawVersions) {
        this.onVersions(frame);
        continue;
      }
      this.relay.stats.cellsIn++;
      this.cellsIn.push({ command: frame.command, circId: frame.circId });
      // The frame is a view that the next call reuses: hooks get their own copy.
      const copy: CellFrame = { ...frame, payload: frame.payload.slice() };
      this.run(this.relay.options.hooks?.cell, () => this.handleCell(copy), copy);
    }
  }

  private onVersions(frame: CellFrame): void {
    this.sawVersions = true;
    this.versionsLength = frame.length;
    if (frame.command !== 7 || frame.payload.length % 2) {
      this.violation(`the client's first cell is command ${frame.command}, not a well-formed VERSIONS`);
      this.destroy();
      return;
    }
    const theirs: number[] = [];
    for (let i = 0; i + 1 < frame.payload.length; i += 2) theirs.push((frame.payload[i]! << 8) | frame.payload[i + 1]!);
    this.clientVersions = theirs;
    const ours = this.relay.options.versions ?? [3, 4, 5];
    const common = theirs.filter((v) => ours.includes(v) && v >= 3 && v <= 5);
    this.linkProtocol = LinkProtocol.of(common.length ? Math.max(...common) : 3);
    this.decoder.linkProtocol = this.linkProtocol;
    const hooks = this.relay.options.hooks ?? {};
    const netinfo = () => this.run(hooks.netinfo, () => {
      this.write(this.netinfoCell());
      this.relay.stats.handshakes++;
    });
    const authChallenge = () => this.run(hooks.authChallenge, () => {
      this.write(this.authChallengeCell());
      return netinfo();
    });
    const certs = () => this.run(hooks.certs, () => {
      this.write(this.certsCell());
      return authChallenge();
    });
    this.run(hooks.versions, () => {
      this.write(this.versionsCell());
      return certs();
    }, theirs);
  }

  private handleCell(frame: CellFrame): void {
    const hooks = this.relay.options.hooks ?? {};
    switch (frame.command) {
      case 0: // PADDING
      case 128: // VPADDING
      case 8: // NETINFO
        return;
      case 5: {
        // CREATE_FAST
        if (this.circuits.has(frame.circId) || frame.circId === 0) {
          this.violation(`CREATE_FAST for circuit id ${frame.circId}, which is ${frame.circId ? 'in use' : 'reserved'}`);
          return;
        }
        const circuit = new FakeCircuit(this, frame.circId, this.circuitCount++, frame.payload.slice(0, 20));
        this.circuits.set(frame.circId, circuit);
        this.relay.stats.circuits++;
        this.run(hooks.createFast, () => circuit.createdFast(), circuit);
        return;
      }
      case 10: {
        // CREATE2 (tor-spec 5.1)
        if (this.circuits.has(frame.circId) || frame.circId === 0) {
          this.violation(`CREATE2 for circuit id ${frame.circId}, which is ${frame.circId ? 'in use' : 'reserved'}`);
          return;
        }
        let create: Create2Cell;
        try {
          create = Create2Cell.decodePayload(frame.payload, frame.circId);
        } catch {
          this.violation(`CREATE2 on circuit id ${frame.circId} does not decode`);
          this.writeCell(new DestroyCell(frame.circId, CloseReason.PROTOCOL));
          return;
        }
        const request: Create2Request = { handshakeType: create.handshakeType, handshakeData: create.handshakeData };
        const circuit = new FakeCircuit(this, frame.circId, this.circuitCount++, new Uint8Array(0), { request });
        this.circuits.set(frame.circId, circuit);
        this.relay.stats.circuits++;
        this.run(hooks.create2, () => circuit.created2(), circuit, request);
        return;
      }
      case 4: {
        // DESTROY
        this.destroysIn.push({ circId: frame.circId, reason: frame.payload[0] ?? 0 });
        const circuit = this.circuits.get(frame.circId);
        if (circuit) circuit.gone();
        return;
      }
      case 3:
      case 9: {
        const circuit = this.circuits.get(frame.circId);
        if (!circuit || !circuit.isOpen) return; // tor drops cells for circuits it doesn't know
        circuit.handleRelay(frame);
        return;
      }
      default:
        this.violation(`the client sent cell command ${frame.command}, which an OP never sends to a relay here`);
    }
  }

  // --- plumbing -------------------------------------------------------------------

  /** Runs a hook (or the default), reporting exceptions and swallowing ConnectionGone. */
  run<A extends unknown[]>(hook: ((conn: FakeConnection, next: Next, ...args: A) => Awaitable<void>) | undefined, dflt: Next, ...args: A): Awaitable<void> {
    return this.runAt(this.relay, hook, dflt, ...args);
  }

  /** @internal `run` for a hook of `relay` (a later hop's): its exceptions land in that relay's `errors`. */
  runAt<A extends unknown[]>(relay: FakeRelayServer, hook: ((conn: FakeConnection, next: Next, ...args: A) => Awaitable<void>) | undefined, dflt: Next, ...args: A): Awaitable<void> {
    const failed = (err: unknown) => {
      if (err instanceof ConnectionGone) return;
      relay.errors.push(err);
      this.destroy();
    };
    try {
      const result = hook ? hook(this, dflt, ...args) : dflt();
      if (result && typeof (result as Promise<void>).then === 'function') return (result as Promise<void>).catch(failed);
      return result;
    } catch (err) {
      failed(err);
      return undefined;
    }
  }

  violation(what: string): void {
    this.relay.violations.push(what);
  }
}

// ---------------------------------------------------------------------------------
// Circuits and streams

/**
 * One hop of a circuit the client made: the first hop on a connection (CREATE_FAST or
 * CREATE2), or a later one (EXTEND2), which runs on another fake relay and is chained
 * after `prev`.
 */
export class FakeCircuit {
  /** The relay's crypto half (keys, digests), chained to the other hops' (testing/relayside). */
  readonly side: RelaySideCircuit;
  /** The relay's circuit package window (cells it may still send; +100 per valid SENDME). */
  window = 1000;
  /** Its deliver window for the client's DATA at this hop (tor-spec 7.3: a SENDME v1 at ≤ 900). */
  deliver = 1000;
  /** Circuit SENDMEs the client sent this hop (valid ones). */
  sendmesIn = 0;
  readonly streams = new Map<number, FakeStream>();
  /** The hop before this one (undefined for the first) and after it (once extended). */
  readonly prev: FakeCircuit | undefined;
  next: FakeCircuit | undefined;
  /** The relay this hop runs on (for the first hop, `conn.relay`). */
  readonly relay: FakeRelayServer;
  /** The CREATE2 (or EXTEND2 onion skin) that made this hop; undefined for CREATE_FAST. */
  readonly request: Create2Request | undefined;
  /** ntor v3: the client's decrypted message CM, once the handshake ran. */
  clientMessage: Uint8Array | undefined;
  /** Why our side of the handshake failed, if it did (a wrong onion key, another relay's id…). */
  handshakeError: OrportError | undefined;
  /** RELAY_EARLY cells received (the first hop counts them: at most 8, tor-spec 5.6). */
  earlyIn = 0;
  private state: 'creating' | 'open' | 'gone' = 'creating';

  constructor(
    readonly conn: FakeConnection,
    /** The circuit id on the client's connection (every hop's cells travel under it). */
    readonly id: number,
    /** 0 for the connection's first circuit, 1 for the second, … (later hops: the first hop's). */
    readonly index: number,
    /** The client's CREATE_FAST key material X (empty otherwise). */
    readonly x: Uint8Array,
    options: { relay?: FakeRelayServer; prev?: FakeCircuit; request?: Create2Request } = {},
  ) {
    this.relay = options.relay ?? conn.relay;
    this.prev = options.prev;
    this.request = options.request;
    this.side = new RelaySideCircuit(id, conn.linkProtocol, { random: this.relay.random });
  }

  /** 0-based position in the circuit. */
  get hop(): number {
    return this.prev ? this.prev.hop + 1 : 0;
  }

  /** The hop on the client's connection. */
  get first(): FakeCircuit {
    return this.prev ? this.prev.first : this;
  }

  /** The last hop of the circuit so far. */
  get last(): FakeCircuit {
    return this.next ? this.next.last : this;
  }

  get isOpen(): boolean {
    return this.state === 'open' && (!this.prev || this.prev.isOpen);
  }

  /** Sends CREATED_FAST (`tamperKeyHash`: with a wrong KH). */
  createdFast(options: { tamperKeyHash?: boolean } = {}): void {
    const cell = this.side.createdFast(this.x, options);
    this.state = 'open';
    this.conn.write(cell);
  }

  /**
   * Runs this relay's side of the CREATE2 handshake (ntor, ntor v3) and answers: CREATED2
   * at the first hop, EXTENDED2 from the hop before otherwise (tor-spec 5.1.2). Options
   * script faults (a wrong AUTH, an all-zero Y) and ntor v3's server message. A handshake
   * that fails (a wrong onion key, another relay's id, a low-order X) is answered with
   * DESTROY (PROTOCOL), as tor does.
   */
  created2(options: ServerHandshakeOptions = {}): void {
    const request = this.request;
    if (!request) throw new BadArgumentError('created2(): this hop was made by CREATE_FAST');
    let reply: Uint8Array;
    try {
      const serverMessage = options.serverMessage ?? this.relay.options.ntorV3Response;
      const result = this.side.answerCreate2(request.handshakeType, request.handshakeData, this.relay.onionKeys, `${this.relay.nickname} (hop #${this.hop + 1})`, {
        ...options,
        ...(serverMessage ? { serverMessage } : {}),
      });
      reply = result.reply;
      this.clientMessage = result.clientMessage;
    } catch (err) {
      if (!(err instanceof OrportError)) throw err;
      this.handshakeError = err;
      this.destroy(CloseReason.PROTOCOL);
      return;
    }
    this.reply(reply);
  }

  /**
   * Answers the handshake with `hdata` as it is (CREATED2 at the first hop, EXTENDED2 from
   * the hop before otherwise); `claimedLength` makes HLEN lie (a garbled answer).
   */
  reply(hdata: Uint8Array, options: { claimedLength?: number } = {}): void {
    if (this.state === 'gone') return;
    this.state = 'open';
    const prev = this.prev;
    if (!prev) {
      this.conn.write(this.side.created2Cell(hdata, options.claimedLength));
      return;
    }
    if (this.side.isCreated) prev.side.attach(this.side);
    const body = new Extended2Msg(hdata).encode();
    if (options.claimedLength !== undefined) {
      body[0] = options.claimedLength >> 8;
      body[1] = options.claimedLength;
    }
    prev.send(15, 0, body);
  }

  /** An encrypted RELAY cell from this hop to the client (not sent); options script faults (see RelaySideCircuit.send). */
  relayCell(command: number, streamId: number, body: Uint8Array, options?: Parameters<RelaySideCircuit['send']>[3]): Uint8Array {
    return this.side.send(command, streamId, body, options);
  }

  /** Builds and sends a RELAY cell. */
  send(command: number, streamId: number, body: Uint8Array, options?: Parameters<RelaySideCircuit['send']>[3]): void {
    this.conn.write(this.relayCell(command, streamId, body, options));
  }

  /** Sends RESOLVED for `streamId` (tor-spec 6.4): addresses as text or Address (an error type too), each with `ttl`. */
  resolved(streamId: number, answers: readonly (string | Address)[], ttl = EXIT_TTL): void {
    const msg = new ResolvedMsg(answers.map((a) => ({ address: typeof a === 'string' ? new Address(a) : a, ttl })));
    this.send(12, streamId, msg.encode());
  }

  /** @internal Sends a SENDME we owe for the client's uploads (through the `sendme` hook). */
  owesSendme(streamId: number, digest?: Uint8Array): void {
    this.run(this.hookOf('sendme'), () => {
      this.relay.stats.sendmesOut++;
      this.send(5, streamId, digest ? new SendmeMsg(1, digest).encode() : new Uint8Array(0));
    }, this, streamId, digest);
  }

  /**
   * tor-spec 7.3 (as relay.c): a DATA cell from the client at this hop, whatever its stream,
   * counts against our circuit deliver window; at ≤ 900 a SENDME v1 echoes its digest.
   * False if the client overran the window (the circuit is closed, as tor does).
   */
  private takeData(msg: RelayMessageIn): boolean {
    this.relay.stats.dataCellsIn++;
    if (--this.deliver < 0) {
      this.violation('the client sent more DATA cells than the circuit deliver window allows');
      this.destroy(CloseReason.PROTOCOL);
      return false;
    }
    if (this.deliver <= 900) {
      this.deliver += 100;
      this.owesSendme(0, msg.digest.slice(0, 20));
    }
    return true;
  }

  /**
   * This hop closes the circuit (default reason RESOURCELIMIT): the hops after it go, and
   * DESTROY travels back to the client — with `reason` from the first hop, else with
   * DESTROYED, as relays propagate it (tor-spec 5.4: reasons are not passed on).
   */
  destroy(reason: number | string = CloseReason.RESOURCELIMIT): void {
    const first = this.first;
    if (first.state !== 'gone') this.conn.writeCell(new DestroyCell(this.id, this.prev ? CloseReason.DESTROYED : reason));
    first.gone();
  }

  /** This hop drops the hops after it and sends TRUNCATED (tor-spec 5.4; default reason REQUESTED). */
  truncated(reason: number | string = CloseReason.REQUESTED): void {
    this.next?.gone();
    this.next = undefined;
    this.side.truncateAfter();
    this.send(9, 0, new TruncatedMsg(reason).encode());
  }

  /** @internal The circuit is gone at this hop and after it (DESTROY either way). */
  gone(): void {
    this.state = 'gone';
    if (!this.prev) this.conn.circuits.delete(this.id);
    for (const s of this.streams.values()) s.release();
    this.streams.clear();
    this.next?.gone();
  }

  /** Records something the client did wrong, on this hop's relay. */
  violation(what: string): void {
    this.relay.violations.push(`${this.relay.nickname} circuit ${this.id} hop #${this.hop + 1}: ${what}`);
  }

  private hookOf<K extends keyof FakeRelayHooks>(name: K): FakeRelayHooks[K] {
    return this.relay.options.hooks?.[name];
  }

  /** @internal Runs a hook of this hop's relay. */
  run<A extends unknown[]>(hook: ((conn: FakeConnection, next: Next, ...args: A) => Awaitable<void>) | undefined, dflt: Next, ...args: A): Awaitable<void> {
    return this.conn.runAt(this.relay, hook, dflt, ...args);
  }

  /** @internal A RELAY or RELAY_EARLY cell from the client (at the first hop). */
  handleRelay(frame: CellFrame): void {
    if (frame.command === 9 && ++this.earlyIn > 8) {
      // tor-spec 5.6: more than 8 RELAY_EARLY cells on a circuit: close it.
      this.violation(`the client sent a RELAY_EARLY cell past the 8 allowed`);
      this.destroy(CloseReason.PROTOCOL);
      return;
    }
    let msg: RelayMessageIn;
    try {
      msg = this.side.receive(frame.payload, frame.command);
    } catch {
      // tor-spec 5.5.2.2: an unrecognized cell at the last hop closes the circuit.
      const last = this.last;
      last.violation('a cell from the client was not recognized by any hop');
      last.destroy(CloseReason.PROTOCOL);
      return;
    }
    let at: FakeCircuit = this;
    for (let i = 0; i < msg.hop && at.next; i++) at = at.next;
    const hop = at;
    hop.run(hop.hookOf('message'), () => hop.handleMessage(msg), hop, msg);
  }

  /**
   * Puts a hop of `relay` after this one (the last) with `layer` as its crypto, open at
   * once, with no handshake on the wire: the onion service's virtual hop after the
   * rendezvous point (testing/fakeonion). Returns it.
   */
  appendHop(relay: FakeRelay, layer: RelaySideLayer): FakeCircuit {
    if (this.next) throw new BadArgumentError('appendHop(): this hop has been extended already');
    if (!(relay instanceof FakeRelayServer)) throw new BadArgumentError('appendHop(): a relay from startFakeRelay');
    const hop = new FakeCircuit(this.conn, this.id, this.index, new Uint8Array(0), { relay, prev: this });
    hop.side.acceptLayer(layer);
    hop.state = 'open';
    this.side.attach(hop.side);
    this.next = hop;
    relay.stats.circuits++;
    return hop;
  }

  /** @internal A relay message from the client that this hop recognized. */
  handleMessage(msg: RelayMessageIn): void {
    switch (msg.command) {
      case 13: {
        // BEGIN_DIR
        if (this.streams.has(msg.streamId)) {
          this.violation(`BEGIN_DIR for stream ${msg.streamId}, which is open`);
          return;
        }
        const stream = new FakeStream(this, msg.streamId);
        this.streams.set(msg.streamId, stream);
        this.relay.stats.streams++;
        this.run(this.hookOf('beginDir'), () => stream.connected(), this, stream);
        return;
      }
      case 2: {
        // DATA: the request, or an upload on an exit stream
        if (!this.takeData(msg)) return;
        const stream = this.streams.get(msg.streamId);
        if (!stream) return;
        if (stream.target) stream.takeUpload(msg.body);
        else stream.takeRequest(msg.body);
        return;
      }
      case 1: {
        // BEGIN (tor-spec 6.2)
        if (this.streams.has(msg.streamId)) {
          this.violation(`BEGIN for stream ${msg.streamId}, which is open`);
          return;
        }
        let begin: BeginMsg;
        try {
          begin = BeginMsg.decode(msg.body);
        } catch {
          // connection_edge.c begin_cell_parse: END TORPROTOCOL.
          this.violation(`BEGIN on stream ${msg.streamId} does not decode`);
          this.send(3, msg.streamId, new EndMsg(EndReason.TORPROTOCOL).encode());
          return;
        }
        const host = begin.address.startsWith('[') ? begin.address.slice(1, -1) : begin.address;
        const stream = new FakeStream(this, msg.streamId, { host, port: begin.port, flags: begin.flags });
        this.streams.set(msg.streamId, stream);
        this.relay.stats.streams++;
        this.relay.stats.begins++;
        this.run(this.hookOf('begin'), () => stream.connect(), this, stream, stream.target!);
        return;
      }
      case 11: {
        // RESOLVE (tor-spec 6.4)
        let hostname: string;
        try {
          hostname = ResolveMsg.decode(msg.body).hostname;
        } catch {
          this.violation(`RESOLVE on stream ${msg.streamId} does not decode`);
          return;
        }
        this.relay.stats.resolves++;
        this.run(this.hookOf('resolve'), () => this.resolved(msg.streamId, this.relay.answersFor(hostname)), this, msg.streamId, hostname);
        return;
      }
      case 5:
        this.handleSendme(msg);
        return;
      case 3: {
        // END: tor flushes what it holds for the target, then closes it; no END back (DIGEST-streams §1.6).
        const stream = this.streams.get(msg.streamId);
        if (stream) {
          stream.endedByClient = true;
          stream.release(true);
          this.streams.delete(msg.streamId);
        }
        return;
      }
      case 14:
        this.handleExtend2(msg);
        return;
      case 8:
        // TRUNCATE (tor-spec 5.4)
        this.run(this.hookOf('truncate'), () => this.truncated(), this);
        return;
      default:
        return;
    }
  }

  private handleExtend2(msg: RelayMessageIn): void {
    // tor-spec 5.6: relays reject EXTEND2 that did not come in RELAY_EARLY.
    if (msg.cellCommand !== 9) {
      this.violation('EXTEND2 in a RELAY cell, not RELAY_EARLY');
      this.destroy(CloseReason.PROTOCOL);
      return;
    }
    let extend: Extend2Msg;
    try {
      extend = Extend2Msg.decode(msg.body);
    } catch {
      this.violation('EXTEND2 does not decode');
      this.destroy(CloseReason.PROTOCOL);
      return;
    }
    if (this.next) {
      this.violation('EXTEND2 at a hop that has already extended the circuit');
      this.destroy(CloseReason.PROTOCOL);
      return;
    }
    this.run(this.hookOf('extend2'), () => this.extendTo(extend), this, extend);
  }

  /**
   * The honest EXTEND2 (tor-spec 5.1.2): finds the relay the link specifiers name and
   * runs its `create2`; a relay it can't find closes the circuit (CONNECTFAILED).
   */
  extendTo(extend: Extend2Msg): Awaitable<void> {
    const peer = this.relay.findPeer(extend.linkSpecifiers);
    if (!peer) {
      this.destroy(CloseReason.CONNECTFAILED);
      return;
    }
    const request: Create2Request = { handshakeType: extend.handshakeType, handshakeData: extend.handshakeData };
    const hop = new FakeCircuit(this.conn, this.id, this.index, new Uint8Array(0), { relay: peer, prev: this, request });
    this.next = hop;
    peer.stats.circuits++;
    return hop.run(peer.options.hooks?.create2, () => hop.created2(), hop, request);
  }

  private handleSendme(msg: RelayMessageIn): void {
    if (msg.streamId === 0) {
      const expected = this.side.expectedSendmeDigests.shift();
      let version = 0;
      let digest: Uint8Array | undefined;
      try {
        const sendme = SendmeMsg.decode(msg.body);
        version = sendme.version;
        digest = sendme.digest;
      } catch {
        version = -1;
      }
      // tor 0.4.9 (sendme_accept_min_version 1): a circuit SENDME must be v1 and echo the digest.
      if (!expected || version !== 1 || !digest || !bytesEqual(digest, expected.subarray(0, 20))) {
        this.violation(`the client's circuit SENDME ${!expected ? 'was not due' : version !== 1 ? `is v${version}` : 'has the wrong digest'}`);
        this.destroy(CloseReason.PROTOCOL);
        return;
      }
      if (this.window + 100 > 1000) {
        this.violation('a circuit SENDME would open the window past 1000');
        this.destroy(CloseReason.PROTOCOL);
        return;
      }
      this.window += 100;
      this.sendmesIn++;
      for (const s of this.streams.values()) void s.pump();
      return;
    }
    const stream = this.streams.get(msg.streamId);
    if (!stream) return;
    stream.sendmesIn++;
    if (stream.window + 50 > 500) {
      this.violation(`stream ${stream.id}: a stream SENDME would open the window past 500`);
      this.destroy(CloseReason.PROTOCOL);
      return;
    }
    stream.window += 50;
    void stream.pump();
  }
}

/** tor's errno_to_stream_end_reason (DIGEST-streams §1.5), for the target's socket errors. */
function endReasonFor(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'ECONNREFUSED':
      return EndReason.CONNECTREFUSED;
    case 'ETIMEDOUT':
      return EndReason.TIMEOUT;
    case 'ECONNRESET':
      return EndReason.CONNRESET;
    case 'ENETUNREACH':
    case 'EHOSTUNREACH':
    case 'EACCES':
    case 'EPERM':
      return EndReason.NOROUTE;
    case 'EPIPE':
      return EndReason.DONE;
    default:
      return EndReason.MISC;
  }
}

/** How much of the target's output the exit holds before pausing it (it waits for the client's SENDMEs). */
const TARGET_BUFFER = 64 * 1024;
/** tor's connection_outbuf_too_full (10 cells' data): stream SENDMEs wait while the target is further behind. */
const TARGET_BEHIND = 10 * 509;

/**
 * A stream on a fake circuit: BEGIN_DIR (an HTTP request, a document served), or an exit
 * stream (BEGIN: `target` set; bytes relayed to and from a socket on 127.0.0.1).
 */
export class FakeStream {
  /** The relay's stream package window (500; +50 per SENDME). */
  window = 500;
  /** Exit: its deliver window for the client's uploads (tor-spec 7.4: a SENDME per 50 at ≤ 450). */
  deliver = 500;
  /** Stream SENDMEs the client sent (for our downloads). */
  sendmesIn = 0;
  /** The request's bytes so far. */
  request = new Uint8Array(0);
  /** The path of the request line, once it arrived. */
  path: string | undefined;
  /** The response being served, and how far. */
  response: DocumentSource | undefined;
  offset = 0;
  /** DATA cells of the response handed to the `data` hook so far. */
  cellsOffered = 0;
  /** Overrun the client's windows (default: the relay's `ignoreWindows`). */
  ignoreWindows: boolean;
  closed = false;
  /** The client sent END. */
  endedByClient = false;
  /** Exit: DATA cells and bytes the client sent on it, and how many came before CONNECTED (optimistic). */
  cellsIn = 0;
  bytesIn = 0;
  optimisticCells = 0;
  /** Exit: the socket to the target (once `connect()` ran). */
  socket: Socket | undefined;
  private pumping = false;
  /** Exit: the target's bytes not yet sent, and whether it closed (with the END reason to send then). */
  private readonly outQueue: Uint8Array[] = [];
  private outQueued = 0;
  private targetEnd: string | undefined;
  /** Exit: the client's bytes held until the target is connected. */
  private readonly held: Uint8Array[] = [];

  constructor(
    readonly circuit: FakeCircuit,
    readonly id: number,
    /** What a BEGIN asked for (undefined for BEGIN_DIR). */
    readonly target?: BeginTarget,
  ) {
    this.ignoreWindows = circuit.relay.options.ignoreWindows ?? false;
  }

  get conn(): FakeConnection {
    return this.circuit.conn;
  }

  /** CONNECTED was sent (a request that came before it waits, as tor holds it). */
  isConnected = false;

  /**
   * Sends CONNECTED: empty (BEGIN_DIR), or with `address` (IPv4 or IPv6) and `ttl`
   * (tor-spec 6.2). Exit: the client's held DATA goes to the target now.
   */
  connected(address?: string, ttl = EXIT_TTL): void {
    this.circuit.send(4, this.id, address === undefined ? new Uint8Array(0) : new ConnectedMsg(new Address(address), ttl).encode());
    this.isConnected = true;
    if (!this.target) {
      this.takeRequest(new Uint8Array(0));
      return;
    }
    for (const body of this.held.splice(0)) this.writeToTarget(body);
    this.considerSendme();
  }

  /** Sends one DATA cell now (counts against the windows). */
  sendData(body: Uint8Array): void {
    this.window--;
    this.circuit.window--;
    this.circuit.relay.stats.dataCellsOut++;
    this.circuit.send(2, this.id, body);
  }

  /** Sends any relay message on this stream (raw: nothing checked, no window counted). */
  send(command: number, body: Uint8Array = new Uint8Array(0), options?: Parameters<RelaySideCircuit['send']>[3]): void {
    this.circuit.send(command, this.id, body, options);
  }

  /**
   * Sends END with `reason` (default DONE) and forgets the stream; `address` (and `ttl`)
   * for EXITPOLICY (tor-spec 6.3). The target's socket, if any, is closed.
   */
  end(reason: number | string = EndReason.DONE, options: { address?: string; ttl?: number } = {}): void {
    const address = options.address === undefined ? undefined : new Address(options.address);
    this.circuit.send(3, this.id, new EndMsg(reason, address, address ? (options.ttl ?? EXIT_TTL) : undefined).encode());
    this.release();
    this.circuit.streams.delete(this.id);
  }

  /** @internal The stream is over here: the target's socket closes (after what we owe it, if `flush`). */
  release(flush = false): void {
    this.closed = true;
    this.outQueue.length = 0;
    this.outQueued = 0;
    const socket = this.socket;
    if (!socket || socket.destroyed) return;
    if (flush) socket.end(() => socket.destroy());
    else socket.destroy();
  }

  /** Starts serving `doc` (an HTTP response is made of it unless `raw`). */
  serve(doc: Document, options: { status?: string; raw?: boolean } = {}): void {
    const source = asSource(doc);
    this.response = options.raw ? source : httpResponse(options.status ?? '200 OK', source);
    this.offset = 0;
    void this.pump();
  }

  /**
   * The honest exit (tor-spec 6.2): connects to the target — on 127.0.0.1 only: any other
   * address (a hostname too) gets END EXITPOLICY, with the address and a TTL when it is an
   * IP literal — and answers CONNECTED (127.0.0.1, TTL 300), or END with the reason tor
   * maps the socket's error to (ECONNREFUSED → CONNECTREFUSED, …). `port`: connect to
   * 127.0.0.1:port whatever the BEGIN named, and answer an empty CONNECTED (an onion
   * service's HiddenServicePort, tor's rendezvous streams).
   */
  connect(options: { port?: number } = {}): void {
    const target = this.target;
    if (!target) throw new BadArgumentError('connect(): a BEGIN_DIR stream has no target');
    if (this.closed || this.socket) return;
    const mapped = options.port !== undefined;
    if (!mapped && target.host !== FAKE_EXIT_ADDRESS) {
      this.end(EndReason.EXITPOLICY, isIP(target.host) ? { address: target.host } : {});
      return;
    }
    const socket = netConnect({ host: FAKE_EXIT_ADDRESS, port: options.port ?? target.port });
    this.socket = socket;
    socket.setNoDelay(true);
    socket.once('connect', () => {
      if (!this.closed) this.connected(mapped ? undefined : FAKE_EXIT_ADDRESS);
    });
    socket.on('data', (chunk: Buffer) => this.fromTarget(chunk));
    socket.on('drain', () => this.considerSendme());
    socket.once('end', () => this.targetClosed(EndReason.DONE));
    socket.once('close', () => this.targetClosed(EndReason.DONE));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (this.closed) return;
      if (!this.isConnected) return this.end(endReasonFor(err));
      this.targetClosed(endReasonFor(err));
    });
  }

  /** @internal A DATA cell from the client on an exit stream (through the `upload` hook). */
  takeUpload(body: Uint8Array): void {
    this.cellsIn++;
    this.bytesIn += body.length;
    if (!this.isConnected) this.optimisticCells++;
    // tor-spec 7.4 (relay.c): our stream deliver window below 0 closes the circuit.
    if (--this.deliver < 0) {
      this.circuit.violation(`stream ${this.id}: the client sent more DATA cells than the stream deliver window allows`);
      this.circuit.destroy(CloseReason.PROTOCOL);
      return;
    }
    this.circuit.run(this.circuit.relay.options.hooks?.upload, () => {
      if (this.isConnected) this.writeToTarget(body);
      else this.held.push(body.slice()); // optimistic data, held until connected (DIGEST-streams §1.4)
    }, this.circuit, this, body);
    this.considerSendme();
  }

  private writeToTarget(body: Uint8Array): void {
    if (this.socket && !this.socket.destroyed) this.socket.write(body);
  }

  /** tor's sendme_connection_edge_consider_sending: open, window ≤ 450, the target keeps up → a stream SENDME. */
  private considerSendme(): void {
    while (!this.closed && this.isConnected && this.circuit.isOpen && this.deliver <= 450 && (this.socket?.writableLength ?? 0) <= TARGET_BEHIND) {
      this.deliver += 50;
      this.circuit.owesSendme(this.id);
    }
  }

  private fromTarget(chunk: Uint8Array): void {
    if (this.closed) return;
    this.outQueue.push(chunk);
    this.outQueued += chunk.length;
    if (this.outQueued >= TARGET_BUFFER) this.socket?.pause();
    void this.pump();
  }

  private targetClosed(reason: string): void {
    if (this.closed || this.targetEnd !== undefined || !this.isConnected) return;
    this.targetEnd = reason;
    void this.pump();
  }

  /** At most `n` bytes of what the target sent. */
  private takeOut(n: number): Uint8Array {
    const first = this.outQueue[0]!;
    if (first.length <= n) {
      this.outQueue.shift();
      this.outQueued -= first.length;
      if (first.length === n || this.outQueue.length === 0) return first;
      const parts = [first];
      let size = first.length;
      while (this.outQueue.length && size < n) {
        const piece = this.takeOut(n - size);
        parts.push(piece);
        size += piece.length;
      }
      return Buffer.concat(parts);
    }
    this.outQueue[0] = first.subarray(n);
    this.outQueued -= n;
    return first.subarray(0, n);
  }

  /** @internal */
  takeRequest(body: Uint8Array): void {
    if (this.path !== undefined) return;
    if (body.length) this.request = Buffer.concat([this.request, body]);
    if (!this.isConnected) return;
    const text = Buffer.from(this.request).toString('latin1');
    const end = text.indexOf('\r\n\r\n');
    if (end < 0) return;
    this.path = /^[A-Z]+ (\S+)/.exec(text)?.[1] ?? '';
    const hooks = this.circuit.relay.options.hooks ?? {};
    this.circuit.run(hooks.request, () => {
      const doc = this.circuit.relay.documentFor(this.path!);
      if (doc === undefined) this.serve('Not found\n', { status: '404 Not found' });
      else this.serve(doc);
    }, this.circuit, this, text.slice(0, end + 4));
  }

  /** Sends as much of the response (or of what the target sent) as the windows (and the socket) allow. */
  async pump(): Promise<void> {
    if (!this.response) return this.pumpTarget();
    if (this.pumping) return;
    this.pumping = true;
    const hooks = this.circuit.relay.options.hooks ?? {};
    try {
      const response = this.response;
      while (!this.closed && this.circuit.isOpen && !this.conn.isClosed) {
        if (this.offset >= response.size) {
          this.response = undefined;
          this.closed = true;
          await this.circuit.run(hooks.end, () => this.end(), this.circuit, this);
          return;
        }
        if (!this.ignoreWindows && (this.window <= 0 || this.circuit.window <= 0)) return;
        if (this.conn.tls.writableNeedDrain) {
          await this.conn.drained();
          continue;
        }
        const length = Math.min(RELAY_DATA_MAX, response.size - this.offset);
        const body = response.read(this.offset, length);
        this.offset += length;
        const index = this.cellsOffered++;
        const result = hooks.data ? this.circuit.run(hooks.data, () => this.sendData(body), this.circuit, this, body, index) : this.sendData(body);
        if (result) await result;
        // Let the socket and other streams breathe between windows' worth of cells.
        if (this.ignoreWindows && index % 100 === 99) await new Promise((r) => setImmediate(r));
      }
    } finally {
      this.pumping = false;
    }
  }

  /** Exit: sends what the target sent, within the windows; END once it closed and all went out. */
  private async pumpTarget(): Promise<void> {
    if (this.pumping || !this.target) return;
    this.pumping = true;
    const hooks = this.circuit.relay.options.hooks ?? {};
    try {
      while (!this.closed && this.circuit.isOpen && !this.conn.isClosed) {
        if (this.outQueued === 0) {
          const reason = this.targetEnd;
          if (reason === undefined) return;
          this.closed = true;
          await this.circuit.run(hooks.end, () => this.end(reason), this.circuit, this);
          return;
        }
        if (!this.ignoreWindows && (this.window <= 0 || this.circuit.window <= 0)) return;
        if (this.conn.tls.writableNeedDrain) {
          await this.conn.drained();
          continue;
        }
        const body = this.takeOut(RELAY_DATA_MAX);
        if (this.outQueued < TARGET_BUFFER / 2 && this.socket?.isPaused()) this.socket.resume();
        const index = this.cellsOffered++;
        const result = hooks.data ? this.circuit.run(hooks.data, () => this.sendData(body), this.circuit, this, body, index) : this.sendData(body);
        if (result) await result;
      }
    } finally {
      this.pumping = false;
    }
  }
}
