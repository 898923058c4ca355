/**
 * proto/channel — a client channel's protocol state machine: the in-protocol link
 * handshake (tor-spec 4: VERSIONS, then the relay's CERTS, AUTH_CHALLENGE and NETINFO,
 * then our NETINFO), and afterwards the one reader that demultiplexes cells to circuits
 * by circuit id.
 *
 * Layer: protocol core. No I/O, no clock, no timers. Bytes in: `handleBytes(chunk)`.
 * Bytes out: `ChannelOutput.send`. What happens: `ChannelEvents`. It never throws on
 * peer input: a violation closes the channel through `events.closed(error)`. RELAY cells
 * that come in a row for one circuit go to it as one run (`handleRelayCells`: one AES
 * update per layer), in their order and at their place among the other cells.
 */
import { randomInt } from 'node:crypto';
import { BadArgumentError, ChannelClosedError, DecodeError, HandshakeError, InternalError, LimitError, OrportError, ProtocolError } from '../errors.js';
import {
  AuthChallengeCell,
  CertsCell,
  NetinfoCell,
  VersionsCell,
  type Cell,
} from '../codec/cell.js';
import { decodeFrame } from '../codec/cellbase.js';
import { Address, LinkProtocol } from '../codec/datatype.js';
import { CellDecoder, type CellFrame } from '../codec/framing.js';
import { FIXED_PAYLOAD_LEN } from '../codec/datatype.js';
import { CircuitMachine, type CircuitEvents, type CircuitOptions } from './circuit.js';

/** Cell commands the channel handles itself (tor-spec 3). */
const CMD = {
  PADDING: 0,
  CREATE: 1,
  CREATED: 2,
  RELAY: 3,
  DESTROY: 4,
  CREATE_FAST: 5,
  CREATED_FAST: 6,
  VERSIONS: 7,
  NETINFO: 8,
  RELAY_EARLY: 9,
  CREATE2: 10,
  CREATED2: 11,
  PADDING_NEGOTIATE: 12,
  VPADDING: 128,
  CERTS: 129,
  AUTH_CHALLENGE: 130,
  AUTHENTICATE: 131,
  AUTHORIZE: 132,
} as const;

const COMMAND_NAMES: Readonly<Record<number, string>> = Object.fromEntries(Object.entries(CMD).map(([name, value]) => [value, name]));

/** Lowest link protocol with the in-protocol handshake; tor 0.4.9 speaks 3-5. */
export const MIN_LINK_PROTOCOL = 3;

export interface ChannelOutput {
  /** Writes bytes (whole cells) to the peer. */
  send(bytes: Uint8Array): void;
}

/** What the relay told us during the handshake. */
export interface HandshakeResult {
  linkProtocol: LinkProtocol;
  /** The relay's VERSIONS list. */
  relayVersions: readonly number[];
  certs: CertsCell;
  authChallenge: AuthChallengeCell | undefined;
  netinfo: NetinfoCell;
}

export interface ChannelEvents {
  /**
   * The relay's CERTS cell arrived (before its NETINFO). Throw an OrportError to reject
   * it (identity checks); the channel then closes with that error.
   */
  certs?(certs: CertsCell, linkProtocol: LinkProtocol): void;
  /** The handshake finished and our NETINFO was sent. */
  handshakeComplete(result: HandshakeResult): void;
  /** The channel is unusable (protocol violation, or `close`). Called once. */
  closed(error: OrportError): void;
}

export interface ChannelOptions {
  /** The relay's address for our NETINFO, unless `start` is given one. */
  peerAddress?: Address;
  /** Random integer source for circuit ids (tests inject one). */
  randomInt?: (min: number, max: number) => number;
  /** Options every circuit is created with. */
  circuit?: CircuitOptions;
  /**
   * Most bytes of cells the relay may send before its NETINFO (default
   * DEFAULT_MAX_HANDSHAKE_BYTES); past it the channel fails with a LimitError.
   */
  maxHandshakeBytes?: number;
}

/**
 * A relay's whole handshake (VERSIONS, CERTS, AUTH_CHALLENGE, NETINFO) takes 2-5 KB;
 * even three maximal variable-length cells fit in 256 KiB. A relay that sends more
 * before its NETINFO (VPADDING, say) is wasting our time: we stop reading at this cap.
 */
export const DEFAULT_MAX_HANDSHAKE_BYTES = 256 * 1024;

/** Most RELAY cells in one run (64 KiB of payloads): their plaintexts share buffers, held while any is. */
const MAX_RUN = 128;

type HandshakeState = 'idle' | 'versions' | 'certs' | 'auth_challenge' | 'netinfo' | 'open' | 'closed';

export class ChannelMachine {
  state: HandshakeState = 'idle';
  private readonly decoder = new CellDecoder(LinkProtocol.of(2));
  private readonly circuits = new Map<number, CircuitMachine>();
  private readonly randomInt: (min: number, max: number) => number;
  private linkProtocol: LinkProtocol | undefined;
  private relayVersions: readonly number[] = [];
  private certs: CertsCell | undefined;
  private authChallenge: AuthChallengeCell | undefined;
  private closeError: OrportError | undefined;
  private handshakeBytes = 0;
  private readonly maxHandshakeBytes: number;
  private peerAddress: Address | undefined;
  /** Streams open on all circuits (kept by the circuits' streamsChanged events). */
  private openStreams = 0;
  /** Counters for tests and diagnostics. */
  readonly counters = { cellsIn: 0, paddingIn: 0, droppedIn: 0 };
  /** The run of RELAY cells being gathered: for `runCircuit`, payloads back to back in `runBytes`. */
  private runCircuit: CircuitMachine | undefined;
  private runCircId = 0;
  private runCount = 0;
  private runBytes = new Uint8Array(0);

  constructor(
    readonly ourVersions: readonly number[],
    private readonly out: ChannelOutput,
    private readonly events: ChannelEvents,
    private readonly options: ChannelOptions,
  ) {
    if (ourVersions.length === 0) throw new BadArgumentError("a connection can't be established without a link protocol: the list is empty");
    for (const v of ourVersions) {
      if (!Number.isInteger(v) || v < 1 || v > 0xffff) throw new BadArgumentError(`link protocols are integers 1-65535, not ${JSON.stringify(v)}`);
    }
    if (!ourVersions.some((v) => v >= MIN_LINK_PROTOCOL)) {
      throw new BadArgumentError(`link protocols [${ourVersions.join(', ')}] include none that relays still speak (3 or later; tor 0.4.9 speaks 3-5)`);
    }
    this.randomInt = options.randomInt ?? randomInt;
    this.maxHandshakeBytes = options.maxHandshakeBytes ?? DEFAULT_MAX_HANDSHAKE_BYTES;
    if (!(this.maxHandshakeBytes > 0)) throw new BadArgumentError(`maxHandshakeBytes must be positive, not ${this.maxHandshakeBytes}`);
  }

  /** The negotiated link protocol (after VERSIONS). */
  get negotiated(): LinkProtocol | undefined {
    return this.linkProtocol;
  }

  get isOpen(): boolean {
    return this.state === 'open';
  }

  /** True if some circuit has a stream that still expects data from the relay. */
  get awaitingData(): boolean {
    return this.openStreams > 0;
  }

  /**
   * Sends our VERSIONS (always with a 2-byte circuit id, tor-spec 4.1). `peerAddress` is
   * the relay's address, sent as "other address" in our NETINFO (tor-spec 4.5).
   */
  start(peerAddress: Address | undefined = this.options.peerAddress): void {
    if (this.state !== 'idle') throw new InternalError(`channel started twice (state ${this.state})`);
    if (!peerAddress) throw new InternalError('the channel needs the relay\'s address for its NETINFO');
    this.peerAddress = peerAddress;
    this.state = 'versions';
    // tor-spec 4.1: in-protocol initiators must not list versions below 3.
    this.out.send(new VersionsCell(this.ourVersions.filter((v) => v >= MIN_LINK_PROTOCOL)).pack(2));
  }

  /** Feeds bytes from the peer. Never throws for anything the peer sends. */
  handleBytes(chunk: Uint8Array): void {
    if (this.state === 'closed') return;
    if (this.state === 'versions' && this.decoder.buffered === 0 && chunk.length >= 3 && chunk[2] !== CMD.VERSIONS) {
      // Fail fast on a peer that isn't speaking the link protocol at all.
      this.fail(new HandshakeError(`expected the relay's VERSIONS cell first, but got command ${chunk[2]} (bytes ${hexStart(chunk)}); is this a Tor ORPort?`));
      return;
    }
    this.decoder.push(chunk);
    try {
      for (let frame = this.decoder.next(); frame; frame = this.decoder.next()) {
        this.counters.cellsIn++;
        if (frame.command === CMD.RELAY && this.state === 'open') {
          if (this.runCount > 0 && frame.circId === this.runCircId && this.runCount < MAX_RUN) {
            this.addToRun(frame.payload);
            continue;
          }
          this.flushRun();
          if ((this.state as HandshakeState) === 'closed') return;
          const circuit = this.circuits.get(frame.circId);
          if (circuit?.state === 'open') {
            this.runCircuit = circuit;
            this.runCircId = frame.circId;
            this.addToRun(frame.payload);
            this.takeRun();
            continue;
          }
        } else if (this.runCount > 0) {
          this.flushRun();
          if ((this.state as HandshakeState) === 'closed') return;
        }
        this.handleFrame(frame);
        if ((this.state as HandshakeState) === 'closed') return;
      }
      this.flushRun();
    } catch (err) {
      this.runCount = 0;
      this.runCircuit = undefined;
      if (err instanceof OrportError) {
        this.fail(err);
        return;
      }
      // Not the peer's doing: a callback of ours (or the user's) threw. The decoder holds
      // an undrained chunk, so the channel cannot go on; close it, then let it surface.
      this.fail(new InternalError(`the channel stopped: a callback threw while handling a cell: ${String(err)}`, { cause: err }));
      throw err;
    }
  }

  private handleFrame(frame: CellFrame): void {
    const command = frame.command;
    if (this.state !== 'open') {
      this.handshakeBytes += frame.length;
      if (this.handshakeBytes > this.maxHandshakeBytes) {
        throw new LimitError(
          `the relay sent more than ${this.maxHandshakeBytes} bytes of cells during the link handshake (${this.counters.paddingIn} of them padding) without finishing it`,
          this.maxHandshakeBytes,
        );
      }
    }
    if (command === CMD.VPADDING || (command === CMD.PADDING && this.linkProtocol)) {
      this.counters.paddingIn++;
      return; // tor-spec 7.2: padding is ignored anywhere
    }
    switch (this.state) {
      case 'versions':
        if (command !== CMD.VERSIONS) throw new HandshakeError(`expected the relay's VERSIONS cell, but got ${this.describe(frame)}`);
        this.handleVersions(frame);
        return;
      case 'certs':
        if (command === CMD.VERSIONS) return; // tor-spec 4.1: later VERSIONS cells are ignored
        if (command !== CMD.CERTS) throw new HandshakeError(`expected the relay's CERTS cell after VERSIONS, but got ${this.describe(frame)}`);
        this.certs = this.decode(frame) as CertsCell;
        this.state = 'auth_challenge';
        this.events.certs?.(this.certs, this.linkProtocol!);
        return;
      case 'auth_challenge':
        if (command === CMD.AUTH_CHALLENGE) {
          this.authChallenge = this.decode(frame) as AuthChallengeCell;
          this.state = 'netinfo';
          return;
        }
        // AUTH_CHALLENGE is optional for a client that doesn't authenticate (tor-spec 4.3).
        this.handleNetinfo(frame, 'AUTH_CHALLENGE or NETINFO');
        return;
      case 'netinfo':
        this.handleNetinfo(frame, 'NETINFO');
        return;
      case 'open':
        this.dispatch(frame);
        return;
      default:
        throw new InternalError(`cell in channel state ${this.state}`);
    }
  }

  private handleVersions(frame: CellFrame): void {
    const versions = (this.decode(frame) as VersionsCell).versions;
    const common = this.ourVersions.filter((v) => v >= MIN_LINK_PROTOCOL && versions.includes(v));
    if (common.length === 0) {
      throw new HandshakeError(`no common link protocol: we support ${this.ourVersions.join(', ')}, but the relay supports ${versions.join(', ') || 'none'}`);
    }
    this.relayVersions = versions;
    this.linkProtocol = LinkProtocol.of(Math.max(...common));
    this.decoder.linkProtocol = this.linkProtocol;
    this.state = 'certs';
  }

  private handleNetinfo(frame: CellFrame, expected: string): void {
    if (frame.command !== CMD.NETINFO) throw new HandshakeError(`expected the relay's ${expected} cell, but got ${this.describe(frame)}`);
    const netinfo = this.decode(frame) as NetinfoCell;
    const lp = this.linkProtocol!;
    // tor-spec 4.5: a client sends time 0, the relay's address, and no addresses of its own.
    this.out.send(new NetinfoCell(this.peerAddress!, [], new Date(0)).pack(lp));
    this.state = 'open';
    this.events.handshakeComplete({ linkProtocol: lp, relayVersions: this.relayVersions, certs: this.certs!, authChallenge: this.authChallenge, netinfo });
  }

  private addToRun(payload: Uint8Array): void {
    const at = this.runCount * FIXED_PAYLOAD_LEN;
    if (this.runBytes.length < at + FIXED_PAYLOAD_LEN) this.growRun();
    this.runBytes.set(payload, at);
    this.runCount++;
  }

  /** The run's next cells straight from the decoder's chunk (no frame objects); they count as read. */
  private takeRun(): void {
    if (this.runBytes.length < MAX_RUN * FIXED_PAYLOAD_LEN) this.growRun(MAX_RUN * FIXED_PAYLOAD_LEN);
    const n = this.decoder.takeRun(CMD.RELAY, this.runCircId, this.runBytes, this.runCount * FIXED_PAYLOAD_LEN, MAX_RUN - this.runCount);
    this.runCount += n;
    this.counters.cellsIn += n;
  }

  private growRun(size = Math.max(16 * FIXED_PAYLOAD_LEN, 2 * this.runBytes.length)): void {
    const grown = new Uint8Array(size);
    grown.set(this.runBytes.subarray(0, this.runCount * FIXED_PAYLOAD_LEN));
    this.runBytes = grown;
  }

  /**
   * Hands the gathered run to its circuit. Cells it did not take (it was destroyed on the
   * way) go on one by one as any cell would: looked up again, dropped if gone.
   */
  private flushRun(): void {
    const count = this.runCount;
    if (count === 0) return;
    const circuit = this.runCircuit!;
    const circId = this.runCircId;
    const bytes = this.runBytes;
    // A callback may feed the channel more bytes meanwhile: that run gets its own buffer.
    this.runBytes = new Uint8Array(0);
    this.runCount = 0;
    this.runCircuit = undefined;
    const taken = circuit.handleRelayCells(bytes, count);
    for (let i = taken; i < count && this.state === 'open'; i++) {
      const payload = bytes.subarray(i * FIXED_PAYLOAD_LEN, (i + 1) * FIXED_PAYLOAD_LEN);
      this.dispatch({ circId, command: CMD.RELAY, payload, length: this.linkProtocol!.fixedCellLength });
    }
    if (this.runBytes.length === 0) this.runBytes = bytes;
  }

  /** After the handshake: cells go to their circuit; the rest is checked here. */
  private dispatch(frame: CellFrame): void {
    switch (frame.command) {
      case CMD.RELAY:
      case CMD.RELAY_EARLY:
      case CMD.DESTROY:
      case CMD.CREATED_FAST:
      case CMD.CREATED2:
      case CMD.CREATED: {
        const circuit = this.circuits.get(frame.circId);
        if (!circuit) {
          // A cell for a circuit we don't have (never used, or already closed by us):
          // dropped, as Arti and tor do; a DESTROY for it needs no answer.
          this.counters.droppedIn++;
          return;
        }
        circuit.handleCell(frame);
        return;
      }
      case CMD.PADDING_NEGOTIATE:
        throw new ProtocolError('the relay sent PADDING_NEGOTIATE; only clients may send it, and clients must close the channel (padding-spec 2.2)');
      case CMD.VERSIONS:
        // tor-spec 4.1: "after the first VERSIONS cell, later VERSIONS cells MUST be ignored".
        this.counters.droppedIn++;
        return;
      case CMD.CERTS:
      case CMD.AUTH_CHALLENGE:
      case CMD.NETINFO:
        throw new ProtocolError(`the relay sent a second ${this.describe(frame)} after the handshake`);
      case CMD.CREATE:
      case CMD.CREATE_FAST:
      case CMD.CREATE2:
      case CMD.AUTHENTICATE:
      case CMD.AUTHORIZE:
        throw new ProtocolError(`the relay sent ${this.describe(frame)}, which a relay never sends to a client`);
      default:
        // Unknown commands are ignored (tor-spec 3: future cell types).
        this.counters.droppedIn++;
        return;
    }
  }

  /** Decodes a handshake cell into its own bytes (the decoder reuses its buffer). */
  private decode(frame: CellFrame): Cell {
    try {
      return decodeFrame({ ...frame, payload: frame.payload.slice() }, this.linkProtocol ?? LinkProtocol.of(2));
    } catch (err) {
      // Only handshake cells are decoded here: a malformed one is a failed handshake.
      if (err instanceof DecodeError) throw new HandshakeError(`the relay's ${this.describe(frame)} does not decode: ${err.message}`, { cause: err });
      throw err;
    }
  }

  private describe(frame: CellFrame): string {
    return `${COMMAND_NAMES[frame.command] ?? `an unknown cell (command ${frame.command})`}${frame.circId ? ` on circuit ${frame.circId}` : ''}`;
  }

  // -------------------------------------------------------------------------------
  // Circuits

  /** A fresh random circuit id: non-zero, unused, MSB set for v4+ (tor-spec 5.1.1). */
  allocateCircId(): number {
    const lp = this.linkProtocol;
    if (!lp) throw new InternalError('circuit id requested before VERSIONS');
    // Initiators take the upper half with 4-byte ids (firstCircId = 0x80000000), any id with 2.
    const min = lp.firstCircId;
    const max = lp.circIdSize.size === 4 ? 0x100000000 : 0x10000;
    for (let i = 0; i < 1000; i++) {
      const id = this.randomInt(min, max);
      if (!this.circuits.has(id)) return id;
    }
    throw new ProtocolError(`could not find a free circuit id after 1000 tries (${this.circuits.size} circuits open)`);
  }

  /** The circuits that are open (created, not destroyed). */
  *openCircuits(): IterableIterator<CircuitMachine> {
    for (const circuit of this.circuits.values()) if (circuit.state === 'open') yield circuit;
  }

  /** Registers a new circuit (not yet created: call its `startCreateFast`). */
  newCircuit(events: CircuitEvents, options?: CircuitOptions): CircuitMachine {
    if (this.state !== 'open') throw this.closeError ?? new ChannelClosedError('local', `the channel is not open (state ${this.state})`);
    const circId = this.allocateCircId();
    const circuit = new CircuitMachine(
      circId,
      this.linkProtocol!,
      { sendCell: (cell) => this.out.send(cell) },
      {
        ...events,
        opened: () => events.opened(),
        destroyed: (error) => {
          this.circuits.delete(circId);
          events.destroyed(error);
        },
        streamsChanged: (delta) => {
          this.openStreams += delta;
        },
      },
      options ? { ...this.options.circuit, ...options } : this.options.circuit,
    );
    this.circuits.set(circId, circuit);
    return circuit;
  }

  // -------------------------------------------------------------------------------
  // Teardown

  /**
   * Closes the channel and fails every circuit with `error`. With `destroyCircuits`
   * (an orderly close by us), each open circuit first sends its DESTROY.
   */
  close(error: OrportError, destroyCircuits = false): void {
    if (this.state === 'closed') return;
    const orderly = destroyCircuits && this.state === 'open';
    const circuits = [...this.circuits.values()];
    this.circuits.clear();
    for (const circuit of circuits) {
      if (orderly) circuit.destroy(undefined, error);
      else circuit.channelClosed(error);
    }
    this.state = 'closed';
    this.closeError = error;
    this.events.closed(error);
  }

  /** A violation by the peer: the channel closes, every circuit fails with it. */
  fail(error: OrportError): void {
    this.close(error, false);
  }
}

function hexStart(bytes: Uint8Array): string {
  return Buffer.from(bytes.subarray(0, 8)).toString('hex');
}
