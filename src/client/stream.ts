/**
 * client/stream — `TorStream`: an exit stream (tor-spec 6.2) as a Node `Duplex` that
 * behaves like a `net.Socket` where it can: bytes written go out as DATA cells as far as
 * the stream and circuit package windows allow (`write()` returns false until the exit's
 * SENDMEs open them again), bytes the exit sends come out on the readable side (stream
 * SENDMEs are held back while the reader is behind, so the exit stops), END in both
 * directions. `remoteAddress` comes from CONNECTED; `setTimeout`, `bytesRead`,
 * `bytesWritten`, `destroy(err)`, `'close'` as on a socket.
 *
 * Half-close as tor does it (DIGEST-streams §1.6): tor has none. Ending our side sends
 * END and closes both directions; the exit's END ends the readable side (DONE) or
 * destroys the stream with a StreamClosedError (any other reason).
 *
 * Layer: thin I/O over proto/circuit's stream calls. Not here: opening (client/circuit),
 * choosing circuits (client/torclient).
 */
import { Duplex } from 'node:stream';
import { isIPv6 } from 'node:net';
import { OrportError, StreamClosedError } from '../errors.js';
import { RELAY_DATA_MAX } from '../codec/cell.js';
import type { ConnectedMsg, EndMsg } from '../codec/relaymsg.js';
import type { CircuitMachine, StreamEvents, StreamHandle } from '../proto/circuit.js';
import type { CellWriter } from './cellwriter.js';
import { schedulerFor, type OutboundScheduler, type Sendable } from './scheduler.js';

export interface TorStreamOptions {
  /** Readable side's buffer in bytes before stream SENDMEs are held back (default 64 KiB). */
  readonly highWaterMark?: number;
  /** Writable side's buffer in bytes before `write()` returns false (default 64 KiB). */
  readonly writableHighWaterMark?: number;
}

/** What TorStream's opener waits for. */
export interface StreamOpening {
  connected(msg: ConnectedMsg): void;
  failed(error: OrportError, end?: EndMsg): void;
}

export class TorStream extends Duplex implements Sendable {
  /** The address the exit connected to (CONNECTED), when it said. */
  remoteAddress: string | undefined;
  remoteFamily: 'IPv4' | 'IPv6' | undefined;
  /** The port asked for. */
  readonly remotePort: number;
  /** The host asked for (a hostname is resolved at the exit). */
  readonly remoteHost: string;
  /** CONNECTED's TTL for the address, in seconds (0 when absent). */
  ttl = 0;
  bytesRead = 0;
  bytesWritten = 0;
  /** True until CONNECTED (or the stream ends). */
  connecting = true;
  private handle: StreamHandle | undefined;
  private pendingWrite: { data: Uint8Array; callback: (error?: Error | null) => void } | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private idleMs = 0;
  private ended = false;
  private opening: StreamOpening | undefined;
  private readonly scheduler: OutboundScheduler;

  /** @internal `RelayCircuit.openStream` makes these. */
  constructor(
    private readonly machine: CircuitMachine,
    private readonly writer: CellWriter,
    host: string,
    port: number,
    options: TorStreamOptions = {},
  ) {
    super({ allowHalfOpen: false, highWaterMark: options.highWaterMark ?? 64 * 1024, writableHighWaterMark: options.writableHighWaterMark ?? 64 * 1024 });
    this.remoteHost = host;
    this.remotePort = port;
    this.scheduler = schedulerFor(writer);
  }

  /** @internal The events proto/circuit reports for this stream. */
  attach(handle: StreamHandle, opening: StreamOpening): void {
    this.handle = handle;
    this.opening = opening;
  }

  /** @internal */
  get events(): StreamEvents {
    return {
      connected: (msg) => {
        this.connecting = false;
        if (msg.address?.value) {
          this.remoteAddress = msg.address.value;
          this.remoteFamily = isIPv6(msg.address.value) ? 'IPv6' : 'IPv4';
        }
        this.ttl = msg.ttl;
        this.touch();
        const opening = this.opening;
        this.opening = undefined;
        opening?.connected(msg);
        this.emit('connect');
        this.emit('ready');
        this.wantToSend();
      },
      data: (data) => {
        this.bytesRead += data.length;
        this.touch();
        // `data` is a view into the cipher's output for a whole run of cells: handed on as is
        // while the reader keeps up, copied when it will sit in the buffer (a view would pin the run).
        return this.push(this.readableLength === 0 ? Buffer.from(data.buffer, data.byteOffset, data.length) : Buffer.from(data));
      },
      ended: (error, end) => {
        this.handle = undefined;
        this.scheduler.remove(this.machine, this);
        this.ended = true;
        this.connecting = false;
        const opening = this.opening;
        this.opening = undefined;
        if (opening) {
          opening.failed(error ?? new StreamClosedError('relay', 'DONE', 6, 'the exit ended the stream before CONNECTED'), end);
          this.destroy();
          return;
        }
        const pending = this.pendingWrite;
        this.pendingWrite = undefined;
        if (error && !(error instanceof StreamClosedError && error.by === 'local')) {
          pending?.callback(error);
          this.destroy(error);
        } else {
          // END DONE (or our own END): the readable side ends; writes after it fail.
          this.push(null);
          // The unsent write fails, but only once the reader has had every byte that came
          // (a write error destroys the whole Duplex, and with it what is still buffered).
          if (pending) {
            const fail = () => pending.callback(new StreamClosedError('relay', 'DONE', 6, 'the stream ended while data was waiting to be sent'));
            if (this.readableEnded || this.readableLength === 0) fail();
            else this.once('end', fail);
          }
        }
      },
      writable: () => this.wantToSend(),
      buffered: () => this.bytesRead - this.requestedAt,
    };
  }

  /** Like net.Socket#setTimeout: 'timeout' after `ms` without reads or writes (0 turns it off). */
  setTimeout(ms: number, callback?: () => void): this {
    this.idleMs = ms;
    if (callback) this.once('timeout', callback);
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    if (ms > 0) {
      this.idleTimer = setTimeout(() => this.emit('timeout'), ms);
      this.idleTimer.unref();
    }
    return this;
  }

  // net.Socket methods HTTP clients call: nothing to do on a Tor stream.
  setNoDelay(): this {
    return this;
  }
  setKeepAlive(): this {
    return this;
  }
  ref(): this {
    return this;
  }
  unref(): this {
    return this;
  }

  get readyState(): string {
    if (this.destroyed) return 'closed';
    if (this.connecting) return 'opening';
    return this.writableEnded ? 'readOnly' : this.readableEnded ? 'writeOnly' : 'open';
  }

  /** Bytes the consumer had taken at the last _read (congestion control's drain accounting). */
  private consumed = 0;
  /** bytesRead at the last _read: what came since is how far the consumer is behind (`events.buffered`). */
  private requestedAt = 0;

  override _read(): void {
    if (!this.handle) return;
    this.machine.resumeStream(this.handle);
    // On a congestion-controlled hop: what was read since decides XON (prop 324 §4) and held circuit
    // SENDMEs. _read means the consumer wants more, as a writable socket does for tor: our buffer
    // counts as drained, though Readable#read calls _read before it takes what it returns (and not
    // again until the next push, which would never come if the SENDMEs stayed held).
    this.requestedAt = this.bytesRead;
    const consumed = this.bytesRead - this.readableLength;
    this.machine.streamDrained(this.handle, consumed - this.consumed, 0);
    this.consumed = consumed;
    this.writer.flush();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.ended || !this.handle) {
      callback(new StreamClosedError('local', 'DONE', 6, 'write after the stream ended'));
      return;
    }
    this.pendingWrite = { data: chunk, callback };
    this.wantToSend();
  }

  /** @internal Set by the opener: DATA may go before CONNECTED (tor-spec 6.2, optimistic data). */
  optimistic = false;

  override _final(callback: (error?: Error | null) => void): void {
    if (this.handle) {
      this.machine.endStream(this.handle, null);
      this.writer.flush();
    }
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    const handle = this.handle;
    this.handle = undefined;
    this.scheduler.remove(this.machine, this);
    if (handle) {
      this.machine.endStream(handle, error instanceof OrportError ? error : null);
      this.writer.flush();
    }
    const pending = this.pendingWrite;
    this.pendingWrite = undefined;
    pending?.callback(error ?? new StreamClosedError('local', 'MISC', 1, 'the stream was destroyed'));
    callback(error);
  }

  /** @internal Flow-control state in words, for a stalled transfer's error. */
  describeFlow(): string {
    const state = this.handle ? this.machine.describeStream(this.handle) : `stream ended (${this.destroyed ? 'destroyed' : 'not destroyed'})`;
    return `${state}; ${this.bytesRead} bytes read, ${this.readableLength} buffered for the reader`;
  }

  /** Queues this stream's turn with the connection's scheduler (before CONNECTED only when optimistic). */
  private wantToSend(): void {
    if (this.pendingWrite && this.handle && (!this.connecting || this.optimistic)) this.scheduler.ready(this.machine, this);
  }

  /** @internal */
  get hasPending(): boolean {
    return this.pendingWrite !== undefined && this.handle !== undefined;
  }

  /** @internal The scheduler's turn: up to `maxCells` DATA cells of the pending chunk, as the windows allow. */
  pump(maxCells: number): number {
    const pending = this.pendingWrite;
    if (!pending || !this.handle || this.machine.state !== 'open') return 0;
    const before = this.machine.counters.dataOut;
    const sent = this.machine.sendData(this.handle, pending.data.subarray(0, maxCells * RELAY_DATA_MAX));
    this.bytesWritten += sent;
    if (sent > 0) this.touch();
    if (sent === pending.data.length) {
      this.pendingWrite = undefined;
      pending.callback();
    } else {
      pending.data = pending.data.subarray(sent);
    }
    return this.machine.counters.dataOut - before;
  }

  private touch(): void {
    if (this.idleTimer && this.idleMs > 0) this.idleTimer.refresh();
  }
}
