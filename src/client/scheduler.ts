/**
 * client/scheduler — fair outbound scheduling of stream data on one connection: circuits
 * take turns (round-robin), and within a circuit its streams take turns, each turn a few
 * DATA cells, so a bulk upload on one stream doesn't starve an interactive one on the
 * same circuit or on another circuit of the connection. The scheduler also stops while
 * the socket's own buffer is above a high-water mark and resumes on 'drain', so memory
 * stays bounded whatever the number of writers.
 *
 * Layer: thin I/O (setImmediate, the socket's 'drain'). What a turn sends is the
 * stream's business (`Sendable.pump`, which runs proto/circuit's sendData); control
 * cells (SENDMEs, BEGIN, END) don't queue here.
 */
import type { CellWriter } from './cellwriter.js';

/** A stream with data to send. */
export interface Sendable {
  /** Sends at most `maxCells` DATA cells; returns how many it sent (0: its windows are shut). */
  pump(maxCells: number): number;
  /** True while it has data waiting. */
  readonly hasPending: boolean;
}

/** What the scheduler reads of the connection's socket. */
export interface DrainableSocket {
  readonly writableLength: number;
  once(event: 'drain', listener: () => void): unknown;
}

export interface SchedulerOptions {
  /** DATA cells per stream per turn (default 4). */
  quantumCells?: number;
  /** Stop while the socket buffers more than this (default 256 KiB). */
  highWaterBytes?: number;
}

export class OutboundScheduler {
  /** Circuits with ready streams, in turn order; each circuit's ready streams, in turn order. */
  private readonly circuits = new Map<object, Sendable[]>();
  private scheduled = false;
  private waitingForDrain = false;
  private readonly quantum: number;
  private readonly highWater: number;
  /** Cells sent per turn (for tests). */
  readonly counters = { turns: 0, cells: 0, drains: 0 };

  constructor(
    private readonly writer: CellWriter,
    private readonly socket: () => DrainableSocket | undefined,
    options: SchedulerOptions = {},
  ) {
    this.quantum = options.quantumCells ?? 4;
    this.highWater = options.highWaterBytes ?? 256 * 1024;
  }

  /** `stream` of `circuit` has data (again): it joins its circuit's turn order. */
  ready(circuit: object, stream: Sendable): void {
    let list = this.circuits.get(circuit);
    if (!list) this.circuits.set(circuit, (list = []));
    if (!list.includes(stream)) list.push(stream);
    this.schedule();
  }

  /** Forgets a stream (ended) or a whole circuit (closed). */
  remove(circuit: object, stream?: Sendable): void {
    const list = this.circuits.get(circuit);
    if (!list) return;
    if (stream) {
      const i = list.indexOf(stream);
      if (i >= 0) list.splice(i, 1);
    }
    if (!stream || list.length === 0) this.circuits.delete(circuit);
  }

  /** Runs turns now (tests; normally the next event-loop turn does). */
  runNow(): void {
    this.scheduled = false;
    this.run();
  }

  private schedule(): void {
    if (this.scheduled || this.waitingForDrain) return;
    this.scheduled = true;
    setImmediate(() => this.runNow());
  }

  private run(): void {
    const socket = this.socket();
    while (this.circuits.size > 0) {
      if (socket && socket.writableLength > this.highWater) {
        this.waitingForDrain = true;
        this.counters.drains++;
        socket.once('drain', () => {
          this.waitingForDrain = false;
          this.schedule();
        });
        break;
      }
      this.counters.turns++;
      // One round: each circuit, in order, gives its first ready stream one quantum.
      for (const [circuit, list] of [...this.circuits]) {
        const stream = list.shift();
        if (!stream) {
          this.circuits.delete(circuit);
          continue;
        }
        const sent = stream.pump(this.quantum);
        this.counters.cells += sent;
        if (sent > 0 && stream.hasPending) list.push(stream); // a shut window: it comes back through ready()
        this.circuits.delete(circuit);
        if (list.length) this.circuits.set(circuit, list); // to the back of the circuit order
      }
      this.writer.flush();
    }
  }
}

const schedulers = new WeakMap<CellWriter, OutboundScheduler>();

/** The scheduler of the connection `writer` writes to (one per connection). */
export function schedulerFor(writer: CellWriter): OutboundScheduler {
  let s = schedulers.get(writer);
  if (!s) {
    s = new OutboundScheduler(writer, () => writer.socket as DrainableSocket | undefined);
    schedulers.set(writer, s);
  }
  return s;
}
