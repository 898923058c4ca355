/**
 * client/cellwriter — queues encoded cells and writes them to a socket, coalescing the
 * cells of one event-loop turn into one write (one TLS record, one TCP segment when
 * small). Used by the client's connections and by the fake relay (orport/testing).
 *
 * Layer: thin I/O. Knows nothing of cells' contents: it moves bytes.
 */

/** The part of a socket the writer needs (a TLSSocket, a net.Socket). */
export interface WritableSocket {
  readonly destroyed: boolean;
  readonly writable: boolean;
  write(bytes: Uint8Array, callback?: (error?: Error | null) => void): boolean;
}

export interface CellWriterOptions {
  /** Coalesce the cells of one event-loop turn into one write (default true). */
  coalesce?: boolean;
  /** Write at once when this many bytes are queued (default: only at the end of the turn). */
  flushAtBytes?: number;
}

export class CellWriter {
  socket: WritableSocket | undefined;
  private queue: Uint8Array[] = [];
  private queued = 0;
  private scheduled = false;
  private readonly coalesce: boolean;
  private readonly flushAtBytes: number;
  private readonly flushSoon = () => {
    this.scheduled = false;
    this.flush();
  };

  constructor(options: CellWriterOptions = {}) {
    this.coalesce = options.coalesce ?? true;
    this.flushAtBytes = options.flushAtBytes ?? Infinity;
  }

  /** Queues `bytes` for this turn's write (or writes them now when not coalescing). */
  send(bytes: Uint8Array): void {
    if (!this.coalesce) {
      this.write(bytes);
      return;
    }
    this.queue.push(bytes);
    this.queued += bytes.length;
    if (this.queued >= this.flushAtBytes) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flushSoon);
    }
  }

  /** Writes everything queued now; `done` runs once the socket took it (at once if nothing was written). */
  flush(done?: () => void): void {
    if (this.queue.length === 0) {
      done?.();
      return;
    }
    const bytes = this.queue.length === 1 ? this.queue[0]! : Buffer.concat(this.queue);
    this.queue = [];
    this.queued = 0;
    this.write(bytes, done);
  }

  /** Drops what is queued (the connection is gone). */
  clear(): void {
    this.queue = [];
    this.queued = 0;
  }

  /** Nothing queued for the next write. */
  get idle(): boolean {
    return this.queue.length === 0;
  }

  private write(bytes: Uint8Array, done?: () => void): void {
    const socket = this.socket;
    if (socket && !socket.destroyed && socket.writable) socket.write(bytes, done && (() => done()));
    else done?.();
  }
}
