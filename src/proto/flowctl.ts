/**
 * proto/flowctl — SENDME flow control windows (tor-spec 7.3, 7.4; prop289).
 *
 * Layer: protocol core. No I/O, no clock. Small objects: a deliver window (cells we
 * accept) and a package window (cells we may send), for circuits (1000 / 100) and
 * streams (500 / 50); the circuit package window keeps the digests that v1 SENDMEs
 * must echo.
 */
import { ProtocolError } from '../errors.js';
import { bytesEqual } from '../codec/bytes.js';

export interface WindowParams {
  start: number;
  increment: number;
}

export const CIRCUIT_WINDOW: WindowParams = Object.freeze({ start: 1000, increment: 100 });
export const STREAM_WINDOW: WindowParams = Object.freeze({ start: 500, increment: 50 });

/** Cells we are willing to receive. */
export class DeliverWindow {
  window: number;

  constructor(
    readonly params: WindowParams,
    private readonly what: string,
  ) {
    this.window = params.start;
  }

  /** Counts one received DATA cell; a window below zero is a protocol violation. */
  take(): void {
    if (--this.window < 0) {
      throw new ProtocolError(`${this.what} received more DATA cells than its deliver window allows (window start ${this.params.start}, increment ${this.params.increment})`);
    }
  }

  /** tor-spec 7.3/7.4: a SENDME is due once the window is a whole increment below its start. */
  get sendmeDue(): boolean {
    return this.window <= this.params.start - this.params.increment;
  }

  /** Records that we sent a SENDME. */
  sentSendme(): void {
    this.window += this.params.increment;
  }
}

/** Cells we may send. */
export class PackageWindow {
  window: number;

  constructor(
    readonly params: WindowParams,
    private readonly what: string,
  ) {
    this.window = params.start;
  }

  get canSend(): boolean {
    return this.window > 0;
  }

  /** Counts one sent DATA cell. */
  take(): void {
    this.window--;
  }

  /** A SENDME arrived: the window grows by one increment (never past its start). */
  handleSendme(): void {
    if (this.window + this.params.increment > this.params.start) {
      throw new ProtocolError(`${this.what} received a SENDME that would open its package window past ${this.params.start} (window is ${this.window})`);
    }
    this.window += this.params.increment;
  }
}

/**
 * The circuit-level package window with prop289's bookkeeping: before sending a DATA
 * cell, `recordNext` says whether its digest must be remembered (the cell after which
 * the relay will send a SENDME); a v1 SENDME must echo the oldest remembered digest.
 */
export class CircuitPackageWindow extends PackageWindow {
  private readonly expected: Uint8Array[] = [];

  constructor(what: string) {
    super(CIRCUIT_WINDOW, what);
  }

  /** tor's sendme_record_cell_digest: true if the next DATA cell's digest must be kept. */
  get recordNext(): boolean {
    return (this.window - 1) % this.params.increment === 0; // never at the start (1000): 999 % 100 ≠ 0
  }

  /** Remember the digest of a DATA cell sent when `recordNext` was true. */
  remember(digest: Uint8Array): void {
    this.expected.push(digest);
  }

  /** Validates and applies a circuit SENDME (v0: no digest; v1: 20-byte digest). */
  handleCircuitSendme(version: number, digest: Uint8Array | undefined, acceptMinVersion = 0): void {
    if (version < acceptMinVersion) throw new ProtocolError(`received a v${version} circuit SENDME, but v${acceptMinVersion} or later is required`);
    const expected = this.expected.shift();
    if (version >= 1) {
      if (!expected) throw new ProtocolError('received an authenticated circuit SENDME, but no DATA cell is awaiting one');
      if (!digest || !bytesEqual(expected.subarray(0, digest.length), digest)) {
        throw new ProtocolError('mismatched digest on an authenticated circuit SENDME (prop289): the relay did not see the cells we sent');
      }
    }
    this.handleSendme();
  }
}
