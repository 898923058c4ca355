/**
 * codec/cellbase — what every cell shares (tor-spec 3): the `Cell` and `CircuitCell`
 * base classes with Stem's `pop` / `unpack`, `UnknownCell`, and the registry of cell
 * classes by command that decoding reads.
 *
 * Layer: codec core. No I/O. Holds no cell type of its own but `UnknownCell`: codec/cell
 * (channel cells) and codec/relaycell (RELAY, RELAY_EARLY) define them and codec/cell
 * registers them all, so decoding works once codec/cell is loaded (every entry loads it).
 */
import { BadArgumentError, DecodeError, IncompleteError, InternalError, hexExcerpt } from '../errors.js';
import { EMPTY, bytesEqual } from './bytes.js';
import { LinkProtocol } from './datatype.js';
import { frameCell, isVariableLengthCommand, readFrame, type CellFrame } from './framing.js';

/** A cell class: its static NAME, VALUE, IS_FIXED_SIZE and decoder. */
export interface CellClass {
  readonly NAME: string;
  readonly VALUE: number;
  readonly IS_FIXED_SIZE: boolean;
  readonly IS_CIRCUIT_CELL: boolean;
  /** Decodes a payload (fixed cells: all 509 bytes). */
  decodePayload(payload: Uint8Array, circId: number, lp: LinkProtocol): Cell;
}

export interface PopResult {
  cell: Cell;
  rest: Uint8Array;
}

function valueEquals(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a instanceof Uint8Array && b instanceof Uint8Array) return bytesEqual(a, b);
  if (a instanceof Date && b instanceof Date) return a.getTime() === b.getTime();
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => valueEquals(x, b[i]));
  if (a && typeof a === 'object' && 'equals' in a && typeof a.equals === 'function') return (a.equals as (o: unknown) => boolean)(b);
  return false;
}

/**
 * Base of every cell. `unused` is the padding after a fixed cell's fields (kept so that
 * decode∘encode is the identity); like Stem, it is not part of equality.
 */
export abstract class Cell {
  static readonly NAME: string = 'UNKNOWN';
  static readonly VALUE: number = -1;
  static readonly IS_FIXED_SIZE: boolean = false;
  static readonly IS_CIRCUIT_CELL: boolean = false;

  constructor(public unused: Uint8Array = EMPTY) {}

  private get cls(): CellClass {
    return this.constructor as unknown as CellClass;
  }

  /** The cell command's name ('NETINFO'). */
  get name(): string {
    return this.cls.NAME;
  }

  /** The cell command's number (8). */
  get value(): number {
    return this.cls.VALUE;
  }

  /**
   * Encodes the cell for a link protocol: the circuit id is 2 bytes for versions ≤ 3,
   * 4 bytes after (a VERSIONS cell opening a connection is packed with 2, tor-spec 4.1).
   * The bytes may share an ArrayBuffer with other packed cells (a pool, as Node's Buffer).
   */
  abstract pack(linkProtocol: number | LinkProtocol): Uint8Array;

  /** Frames `payload` (and `unused`) as this cell type. Stem's `_pack`. */
  protected frame(linkProtocol: number | LinkProtocol, payload: readonly Uint8Array[], circId?: number): Uint8Array {
    const cls = this.cls;
    if (cls.IS_CIRCUIT_CELL) {
      if (circId === undefined) throw new BadArgumentError(`${cls.NAME} cells require a circuit identifier`);
      if (!Number.isInteger(circId) || circId < 1) throw new BadArgumentError(`Circuit identifiers must a positive integer, not ${circId}`);
    } else if (circId !== undefined) {
      throw new BadArgumentError(`${cls.NAME} cells should not specify a circuit identifier`);
    }
    const parts = this.unused.length ? [...payload, this.unused] : payload;
    return frameCell(cls.NAME, cls.VALUE, cls.IS_FIXED_SIZE, LinkProtocol.of(linkProtocol), circId ?? 0, parts);
  }

  /** Field-by-field equality, ignoring `unused` (as Stem's hash does). */
  equals(other: unknown): boolean {
    if (!(other instanceof Cell) || other.constructor !== this.constructor) return false;
    for (const key of Object.keys(this)) {
      if (key === 'unused') continue;
      if (!valueEquals((this as Record<string, unknown>)[key], (other as unknown as Record<string, unknown>)[key])) return false;
    }
    return true;
  }

  /**
   * Decodes the first cell of `content`: `{ cell, rest }`. Throws `IncompleteError` if
   * `content` holds only part of a cell, `DecodeError` if the cell is malformed.
   */
  static pop(content: Uint8Array, linkProtocol: number | LinkProtocol): PopResult {
    const lp = LinkProtocol.of(linkProtocol);
    const frame = readFrame(content, 0, lp);
    if (typeof frame === 'number') {
      const what = content.length > lp.circIdSize.size ? `${cellNameOf(content[lp.circIdSize.size]!)} cell` : 'cell header';
      throw new IncompleteError(what, content.length, frame, `truncated: ${content.length} bytes, at least ${frame} more needed (${hexExcerpt(content, 16)})`);
    }
    return { cell: decodeFrame(frame, lp), rest: frame.length === content.length ? EMPTY : content.subarray(frame.length) };
  }

  /** Like `pop`, but returns undefined (instead of throwing) when the cell is incomplete. */
  static tryPop(content: Uint8Array, linkProtocol: number | LinkProtocol): PopResult | undefined {
    const lp = LinkProtocol.of(linkProtocol);
    const frame = readFrame(content, 0, lp);
    if (typeof frame === 'number') return undefined;
    return { cell: decodeFrame(frame, lp), rest: content.subarray(frame.length) };
  }

  /** Decodes every cell of `content`; it must end on a cell boundary. */
  static unpack(content: Uint8Array, linkProtocol: number | LinkProtocol): Cell[] {
    const cells: Cell[] = [];
    let rest = content;
    while (rest.length) {
      const popped = Cell.pop(rest, linkProtocol);
      cells.push(popped.cell);
      rest = popped.rest;
    }
    return cells;
  }
}

/** A cell about one circuit: it carries a non-zero `circId`. */
export abstract class CircuitCell extends Cell {
  static override readonly IS_CIRCUIT_CELL: boolean = true;

  constructor(
    public circId: number,
    unused: Uint8Array = EMPTY,
  ) {
    super(unused);
  }
}

/** A cell whose command we don't know; kept so it can be logged, skipped or re-encoded. */
export class UnknownCell extends Cell {
  static override readonly NAME = 'UNKNOWN';

  constructor(
    readonly command: number,
    readonly circId: number,
    readonly payload: Uint8Array,
  ) {
    super();
  }

  override get name(): string {
    return `UNKNOWN(${this.command})`;
  }

  override get value(): number {
    return this.command;
  }

  pack(lp: number | LinkProtocol): Uint8Array {
    const fixed = !isVariableLengthCommand(this.command);
    return frameCell(this.name, this.command, fixed, LinkProtocol.of(lp), this.circId, [this.payload]);
  }
}

// ---------------------------------------------------------------------------------
// Registry

const BY_VALUE = new Map<number, CellClass>();
const BY_NAME = new Map<string, CellClass>();

/** Adds cell classes to the registry that `Cell.pop` and `cellBy*` read (codec/cell does, once). */
export function registerCells(classes: readonly CellClass[]): void {
  for (const c of classes) {
    BY_VALUE.set(c.VALUE, c);
    BY_NAME.set(c.NAME, c);
  }
}

/** The cell class with this name ('NETINFO'); BadArgumentError if there is none. */
export function cellByName(name: string): CellClass {
  const cls = typeof name === 'string' ? BY_NAME.get(name) : undefined;
  if (!cls) throw new BadArgumentError(`'${String(name)}' isn't a valid cell type`);
  return cls;
}

/** The cell class with this command number (8); BadArgumentError if there is none. */
export function cellByValue(value: number): CellClass {
  const cls = typeof value === 'number' ? BY_VALUE.get(value) : undefined;
  if (!cls) throw new BadArgumentError(`'${String(value)}' isn't a valid cell value`);
  return cls;
}

function cellNameOf(command: number): string {
  return BY_VALUE.get(command)?.NAME ?? `UNKNOWN(${command})`;
}

/** Decodes a frame into its cell class (UnknownCell for an unknown command). */
export function decodeFrame(frame: CellFrame, lp: LinkProtocol): Cell {
  if (BY_VALUE.size === 0) throw new InternalError('no cell class is registered: import codec/cell before decoding');
  const cls = BY_VALUE.get(frame.command);
  if (!cls) return new UnknownCell(frame.command, frame.circId, frame.payload);
  if (cls.IS_CIRCUIT_CELL && frame.circId === 0) {
    throw new DecodeError(`${cls.NAME} cell`, 0, `circuit id 0 is reserved; ${cls.NAME} cells need a circuit (tor-spec 5.1.1)`);
  }
  return cls.decodePayload(frame.payload, frame.circId, lp);
}
