/**
 * testnet/delay — a userspace TCP forwarder on 127.0.0.1 that gives a link latency
 * and, optionally, a rate limit (the test network's `latencyMs` / `rateBytesPerSec`).
 *
 * Layer: testnet (the launcher's I/O). Two parts:
 *  - `DelayLine`, the pure core: a FIFO of chunks for one direction, each due
 *    `delayMs` after it arrived, metered out by an optional token bucket (rate in
 *    bytes/s, a burst of 20 ms worth, at least 16 KiB). It is driven by the caller's
 *    clock (`now` in ms) and has no timers or sockets, so it is tested alone.
 *    The rate is applied after the delay; for a FIFO that gives the same delivery
 *    times as a link that serialises first and then propagates.
 *  - `DelayForwarder`, the I/O: a net server on 127.0.0.1:`listenPort` that, for each
 *    connection accepted, connects to 127.0.0.1:`targetPort` and pipes both
 *    directions through a DelayLine each: every byte arrives `delayMs` after it was
 *    read (a round trip through it costs 2 × delayMs), in order, none dropped; EOF
 *    (half-close) is delayed like data. Backpressure: when a direction holds
 *    `maxBufferedBytes` (queued plus not yet flushed to the far socket), the near
 *    socket is paused, so the kernel and then the sender stop; it resumes below half.
 *    Nagle is off on both sockets. An error or reset on either socket destroys both.
 *
 * It does not emulate the TCP handshake's round trip (connect returns at once, the
 * first bytes then take `delayMs`), loss, reordering or jitter, and it never binds or
 * connects to anything but 127.0.0.1.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import { BadArgumentError, InternalError, NetworkError } from '../errors.js';
import { PortInUseError } from './errors.js';

/** The only address the forwarder ever binds or connects to. */
const LOOPBACK = '127.0.0.1';
export const DEFAULT_MAX_BUFFERED_BYTES = 4 * 1024 * 1024;
const MIN_MAX_BUFFERED_BYTES = 64 * 1024;
const MIN_BURST_BYTES = 16 * 1024;
/** The burst is this many milliseconds of the rate (timers fire late by a few ms; the bucket must cover it). */
const BURST_MS = 20;
/** Token counts are fractional; this much short of a whole byte still counts as it (float rounding). */
const TOKEN_EPSILON = 1e-6;

export interface DelayLineOptions {
  /** One-way delay of every byte, ms (≥ 0). */
  readonly delayMs: number;
  /** Token-bucket rate in bytes per second; undefined: unlimited. */
  readonly rateBytesPerSec?: number | undefined;
  /** Bucket size (default max(16 KiB, 20 ms of the rate)). */
  readonly burstBytes?: number;
}

function checkDelay(delayMs: number): void {
  if (!(Number.isFinite(delayMs) && delayMs >= 0 && delayMs <= 60_000)) throw new BadArgumentError(`delayMs must be from 0 to 60000, got ${String(delayMs)}`);
}

function checkRate(rate: number | undefined): void {
  if (rate !== undefined && !(Number.isFinite(rate) && rate >= 1)) throw new BadArgumentError(`rateBytesPerSec must be at least 1, got ${String(rate)}`);
}

/** One direction's queue of delayed chunks (see the file header). Time is the caller's, in ms. */
export class DelayLine {
  readonly delayMs: number;
  readonly rateBytesPerSec: number | undefined;
  readonly burstBytes: number;
  /** With a rate, the smallest piece released (unless the chunk is smaller): 10 ms worth, 1 KiB to the burst. */
  private readonly quantum: number;
  private chunks: (Uint8Array | undefined)[] = [];
  private dues: number[] = [];
  private head = 0;
  /** Bytes of chunks[head] already released. */
  private headOffset = 0;
  private queued = 0;
  private tokens: number;
  private refilledAt: number | undefined;
  private eofDue: number | undefined;

  constructor(options: DelayLineOptions) {
    checkDelay(options.delayMs);
    checkRate(options.rateBytesPerSec);
    this.delayMs = options.delayMs;
    this.rateBytesPerSec = options.rateBytesPerSec;
    const rate = options.rateBytesPerSec ?? 0;
    this.burstBytes = options.burstBytes ?? Math.max(MIN_BURST_BYTES, Math.ceil((rate * BURST_MS) / 1000));
    if (!(Number.isInteger(this.burstBytes) && this.burstBytes >= 1)) throw new BadArgumentError(`burstBytes must be a positive integer, got ${String(options.burstBytes)}`);
    this.quantum = Math.min(this.burstBytes, Math.max(1024, Math.ceil(rate / 100)));
    this.tokens = this.burstBytes;
  }

  /** Bytes pushed and not yet taken. */
  get queuedBytes(): number {
    return this.queued;
  }

  /** True once `end` was called. */
  get ending(): boolean {
    return this.eofDue !== undefined;
  }

  /** A chunk read at `now`; it is due at now + delayMs. The line keeps the reference (do not reuse the buffer). */
  push(chunk: Uint8Array, now: number): void {
    if (this.eofDue !== undefined) throw new InternalError('DelayLine: data pushed after end');
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.dues.push(now + this.delayMs);
    this.queued += chunk.length;
  }

  /** The sender's EOF at `now`: due at now + delayMs, after every byte before it. */
  end(now: number): void {
    this.eofDue ??= now + this.delayMs;
  }

  /** True when the EOF is due at `now` and every byte has been taken. */
  endDue(now: number): boolean {
    return this.eofDue !== undefined && this.queued === 0 && this.eofDue <= now;
  }

  /** Takes every piece due at `now` that the bucket allows, in order (pieces may be parts of chunks). */
  take(now: number): Uint8Array[] {
    const out: Uint8Array[] = [];
    const rate = this.rateBytesPerSec;
    if (rate !== undefined) this.refill(now, rate);
    while (this.head < this.chunks.length) {
      const chunk = this.chunks[this.head];
      const due = this.dues[this.head];
      if (chunk === undefined || due === undefined) throw new InternalError('DelayLine: queue out of step');
      if (due > now) break;
      const left = chunk.length - this.headOffset;
      let n = left;
      if (rate !== undefined) {
        if (this.tokens + TOKEN_EPSILON < Math.min(left, this.quantum)) break;
        n = Math.min(left, Math.floor(this.tokens + TOKEN_EPSILON));
        this.tokens = Math.max(0, this.tokens - n);
      }
      out.push(n === chunk.length ? chunk : chunk.subarray(this.headOffset, this.headOffset + n));
      this.queued -= n;
      if (n === left) {
        this.chunks[this.head] = undefined;
        this.head++;
        this.headOffset = 0;
      } else {
        this.headOffset += n;
      }
    }
    this.compact();
    return out;
  }

  /**
   * When something can next be taken (a piece, or the EOF): a time ≤ now means now;
   * undefined means nothing is queued and no EOF is pending.
   */
  nextAt(now: number): number | undefined {
    if (this.head < this.chunks.length) {
      const due = this.dues[this.head] ?? now;
      if (due > now) return due;
      const rate = this.rateBytesPerSec;
      if (rate === undefined) return now;
      this.refill(now, rate);
      const need = Math.min((this.chunks[this.head]?.length ?? 0) - this.headOffset, this.quantum);
      return this.tokens + TOKEN_EPSILON >= need ? now : now + ((need - this.tokens) * 1000) / rate;
    }
    return this.eofDue;
  }

  private refill(now: number, rate: number): void {
    if (this.refilledAt !== undefined && now > this.refilledAt) this.tokens = Math.min(this.burstBytes, this.tokens + ((now - this.refilledAt) * rate) / 1000);
    if (this.refilledAt === undefined || now > this.refilledAt) this.refilledAt = now;
  }

  private compact(): void {
    if (this.head === this.chunks.length) {
      this.chunks = [];
      this.dues = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.chunks.length) {
      this.chunks = this.chunks.slice(this.head);
      this.dues = this.dues.slice(this.head);
      this.head = 0;
    }
  }
}

export interface DelayForwarderOptions {
  /** Port to listen on, on 127.0.0.1 (0: any free port). */
  readonly listenPort: number;
  /** Port on 127.0.0.1 each accepted connection is forwarded to. */
  readonly targetPort: number;
  /** One-way delay, ms, in each direction. */
  readonly delayMs: number;
  /** Rate limit per direction per connection, bytes/s (default: none). */
  readonly rateBytesPerSec?: number | undefined;
  /** Per direction per connection: queued + unflushed bytes before the sender is paused (default 4 MiB, at least 64 KiB). */
  readonly maxBufferedBytes?: number;
  /** For messages, e.g. "relay0". */
  readonly name?: string;
}

export interface DelayForwarderStats {
  /** Connections accepted since start. */
  readonly connections: number;
  /** Connections not yet closed on both sides. */
  readonly open: number;
  /** Bytes delivered towards the target / towards the connecting side. */
  readonly bytesToTarget: number;
  readonly bytesFromTarget: number;
  /** Bytes held now, all connections and directions (queued + unflushed). */
  readonly bufferedBytes: number;
  /** The most one direction of one connection ever held. */
  readonly peakBufferedBytes: number;
  /** Connections whose target connect failed (e.g. nothing listens there yet). */
  readonly connectFailures: number;
}

interface Counters {
  toTarget: number;
  fromTarget: number;
  peakBuffered: number;
}

/** One direction of one connection: src's bytes through a DelayLine into dest. */
class Pipe {
  private timer: NodeJS.Timeout | undefined;
  private timerAt = 0;
  private paused = false;
  private finished = false;

  constructor(
    private readonly src: Socket,
    private readonly dest: Socket,
    private readonly line: DelayLine,
    private readonly maxBuffered: number,
    private readonly counters: Counters,
    private readonly toTarget: boolean,
  ) {
    src.on('data', this.onData);
    src.on('end', this.onEnd);
    dest.on('drain', this.onDrain);
  }

  get buffered(): number {
    return this.line.queuedBytes + (this.dest.destroyed ? 0 : this.dest.writableLength);
  }

  stop(): void {
    this.finished = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private readonly onData = (chunk: Buffer): void => {
    if (this.finished) return;
    this.line.push(chunk, performance.now());
    this.pressure();
    this.schedule();
  };

  private readonly onEnd = (): void => {
    if (this.finished) return;
    this.line.end(performance.now());
    this.schedule();
  };

  private readonly onDrain = (): void => {
    if (!this.finished) this.pressure();
  };

  private readonly onTimer = (): void => {
    this.timer = undefined;
    this.schedule();
  };

  private schedule(): void {
    if (this.finished) return;
    const now = performance.now();
    const at = this.line.nextAt(now);
    if (at === undefined) return;
    if (at <= now) this.pump(now);
    else this.arm(at, now);
  }

  private arm(at: number, now: number): void {
    if (this.timer !== undefined && this.timerAt <= at) return;
    clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(this.onTimer, Math.max(1, Math.ceil(at - now)));
  }

  private pump(now: number): void {
    const pieces = this.line.take(now);
    if (pieces.length > 0 && !this.dest.destroyed) {
      const batch = pieces.length > 1;
      if (batch) this.dest.cork();
      let bytes = 0;
      for (const piece of pieces) {
        bytes += piece.length;
        this.dest.write(piece);
      }
      if (batch) this.dest.uncork();
      if (this.toTarget) this.counters.toTarget += bytes;
      else this.counters.fromTarget += bytes;
    }
    if (this.line.endDue(now)) {
      this.stop();
      if (!this.dest.destroyed) this.dest.end();
      return;
    }
    this.pressure();
    const at = this.line.nextAt(now);
    if (at !== undefined) this.arm(at, now);
  }

  private pressure(): void {
    const buffered = this.buffered;
    if (buffered > this.counters.peakBuffered) this.counters.peakBuffered = buffered;
    if (!this.paused && buffered >= this.maxBuffered) {
      this.paused = true;
      this.src.pause();
    } else if (this.paused && buffered <= this.maxBuffered / 2) {
      this.paused = false;
      this.src.resume();
    }
  }
}

/** One accepted connection and its connection to the target. */
class Link {
  readonly up: Pipe;
  readonly down: Pipe;
  private closedSockets = 0;
  private connectFailed = false;
  private gone = false;

  constructor(
    readonly near: Socket,
    readonly far: Socket,
    options: { delayMs: number; rateBytesPerSec: number | undefined; maxBuffered: number },
    counters: Counters,
    private readonly onGone: (link: Link, connectFailed: boolean) => void,
  ) {
    const line = (): DelayLine => new DelayLine({ delayMs: options.delayMs, rateBytesPerSec: options.rateBytesPerSec });
    this.up = new Pipe(near, far, line(), options.maxBuffered, counters, true);
    this.down = new Pipe(far, near, line(), options.maxBuffered, counters, false);
    let farConnected = false;
    far.once('connect', () => {
      farConnected = true;
    });
    for (const socket of [near, far]) {
      socket.setNoDelay(true);
      socket.on('error', () => {
        if (socket === far && !farConnected) this.connectFailed = true;
        this.destroy();
      });
      socket.on('close', (hadError) => {
        if (hadError) this.destroy();
        if (++this.closedSockets === 2) this.finish();
      });
    }
  }

  get buffered(): number {
    return this.up.buffered + this.down.buffered;
  }

  /** Drops both sockets at once (an error, a reset, or the forwarder closing); 'close' follows. */
  destroy(): void {
    this.up.stop();
    this.down.stop();
    this.near.destroy();
    this.far.destroy();
  }

  private finish(): void {
    if (this.gone) return;
    this.gone = true;
    this.up.stop();
    this.down.stop();
    this.onGone(this, this.connectFailed);
  }
}

/** A running forwarder (see the file header); `DelayForwarder.start` makes one. */
export class DelayForwarder {
  readonly port: number;
  readonly targetPort: number;
  readonly delayMs: number;
  readonly rateBytesPerSec: number | undefined;
  private readonly links = new Set<Link>();
  private readonly counters: Counters = { toTarget: 0, fromTarget: 0, peakBuffered: 0 };
  private accepted = 0;
  private connectFailures = 0;
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly server: Server,
    port: number,
    private readonly options: DelayForwarderOptions,
    private readonly maxBuffered: number,
  ) {
    this.port = port;
    this.targetPort = options.targetPort;
    this.delayMs = options.delayMs;
    this.rateBytesPerSec = options.rateBytesPerSec;
    server.on('connection', (near) => this.accept(near));
  }

  /** Listens on 127.0.0.1:listenPort; rejects with PortInUseError when it is taken. */
  static start(options: DelayForwarderOptions): Promise<DelayForwarder> {
    checkDelay(options.delayMs);
    checkRate(options.rateBytesPerSec);
    const isPort = (p: number, zero: boolean) => Number.isInteger(p) && p >= (zero ? 0 : 1) && p <= 65535;
    if (!isPort(options.listenPort, true)) throw new BadArgumentError(`listenPort must be 0 to 65535, got ${String(options.listenPort)}`);
    if (!isPort(options.targetPort, false)) throw new BadArgumentError(`targetPort must be 1 to 65535, got ${String(options.targetPort)}`);
    const maxBuffered = options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES;
    if (!(Number.isInteger(maxBuffered) && maxBuffered >= MIN_MAX_BUFFERED_BYTES)) {
      throw new BadArgumentError(`maxBufferedBytes must be an integer of at least ${MIN_MAX_BUFFERED_BYTES}, got ${String(options.maxBufferedBytes)}`);
    }
    const what = `delay forwarder${options.name ? ` for ${options.name}` : ''} (to 127.0.0.1:${options.targetPort})`;
    return new Promise<DelayForwarder>((resolve, reject) => {
      const server = createServer({ allowHalfOpen: true, pauseOnConnect: false });
      const onError = (err: NodeJS.ErrnoException): void => {
        server.close();
        if (err.code === 'EADDRINUSE') reject(new PortInUseError(options.listenPort, what));
        else reject(new NetworkError(`${what} cannot listen on 127.0.0.1:${options.listenPort}: ${err.message}`, { errno: err.code, cause: err }));
      };
      server.once('error', onError);
      server.listen({ host: LOOPBACK, port: options.listenPort, exclusive: true }, () => {
        server.off('error', onError);
        const address = server.address();
        if (address === null || typeof address === 'string') {
          server.close();
          reject(new InternalError(`${what}: the server has no TCP address`));
          return;
        }
        resolve(new DelayForwarder(server, address.port, options, maxBuffered));
      });
    });
  }

  stats(): DelayForwarderStats {
    let buffered = 0;
    for (const link of this.links) buffered += link.buffered;
    return {
      connections: this.accepted,
      open: this.links.size,
      bytesToTarget: this.counters.toTarget,
      bytesFromTarget: this.counters.fromTarget,
      bufferedBytes: buffered,
      peakBufferedBytes: this.counters.peakBuffered,
      connectFailures: this.connectFailures,
    };
  }

  /** Stops listening and drops every connection (queued bytes are discarded). Idempotent. */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      for (const link of [...this.links]) link.destroy();
    }).then(async () => {
      // Sockets emit 'close' on a later tick; wait for the set to empty so nothing outlives close().
      while (this.links.size > 0) await new Promise((r) => setImmediate(r));
    });
    return this.closing;
  }

  private accept(near: Socket): void {
    if (this.closing) {
      near.destroy();
      return;
    }
    this.accepted++;
    const far = connect({ host: LOOPBACK, port: this.targetPort, allowHalfOpen: true });
    const link = new Link(
      near,
      far,
      { delayMs: this.options.delayMs, rateBytesPerSec: this.options.rateBytesPerSec, maxBuffered: this.maxBuffered },
      this.counters,
      (gone, connectFailed) => {
        if (connectFailed) this.connectFailures++;
        this.links.delete(gone);
      },
    );
    this.links.add(link);
  }
}
