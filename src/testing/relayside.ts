/**
 * testing/relayside — the relay's half of a circuit, for fake relays and tests: answers
 * CREATE_FAST, decrypts and checks cells from the client, originates and encrypts
 * cells to the client, and keeps tor's SENDME v1 bookkeeping for what it sends.
 *
 * Layer: protocol core (test support). No I/O. Misbehaviour is the caller's to script:
 * every method takes raw values, nothing here refuses to send a bad cell.
 */
import { randomBytes } from 'node:crypto';
import { ProtocolError } from '../errors.js';
import { CreatedFastCell, RELAY_DATA_MAX, RELAY_HEADER_LEN } from '../codec/cell.js';
import { writeCellHeader } from '../codec/framing.js';
import { writeRelayHeader } from '../codec/relaycell.js';
import { KDF, LinkProtocol } from '../codec/datatype.js';
import { fastServer } from '../crypto/handshake/fast.js';
import { Tor1Layer } from '../crypto/relaycrypto.js';

/** A relay message as the relay sees it after decryption. */
export interface RelayMessageIn {
  command: number;
  streamId: number;
  body: Uint8Array;
  /** The full running digest after this cell (what a v1 SENDME for it must carry). */
  digest: Uint8Array;
  /** RELAY (3) or RELAY_EARLY (9). */
  cellCommand: number;
}

export class RelaySideCircuit {
  private layer: Tor1Layer | undefined;
  /** Digests of DATA cells after which we expect the client's v1 SENDME (FIFO). */
  readonly expectedSendmeDigests: Uint8Array[] = [];
  /** DATA cells sent / received (for flow-control scripting). */
  dataSent = 0;
  dataReceived = 0;
  /** The KDF-TOR output, once created. */
  keys: KDF | undefined;

  constructor(
    readonly circId: number,
    readonly linkProtocol: LinkProtocol,
  ) {}

  /**
   * Answers a CREATE_FAST payload (X) with CREATED_FAST (Y, KH). `tamperKeyHash` flips a
   * bit of KH (a fault to script).
   */
  createdFast(x: Uint8Array, options: { y?: Uint8Array; tamperKeyHash?: boolean } = {}): Uint8Array {
    const { y, keys, keyHash } = fastServer(x, (n) => options.y ?? new Uint8Array(randomBytes(n)));
    this.keys = keys;
    this.layer = new Tor1Layer(keys, 'relay');
    const kh = keyHash.slice();
    if (options.tamperKeyHash) kh[0]! ^= 1;
    return new CreatedFastCell(this.circId, kh, y).pack(this.linkProtocol);
  }

  /** Decrypts a RELAY/RELAY_EARLY payload from the client; throws if it isn't recognized. */
  receive(payload: Uint8Array, cellCommand = 3): RelayMessageIn {
    const layer = this.requireLayer();
    const copy = layer.decrypt(payload);
    const digest = layer.recognize(copy);
    if (!digest) throw new ProtocolError('relay side: a cell from the client was not recognized (bad digest)');
    const length = (copy[9]! << 8) | copy[10]!;
    const command = copy[0]!;
    if (command === 2) this.dataReceived++;
    return { command, streamId: (copy[3]! << 8) | copy[4]!, body: copy.slice(RELAY_HEADER_LEN, RELAY_HEADER_LEN + length), digest, cellCommand };
  }

  /**
   * Builds an encrypted RELAY cell to the client. Options script faults: a wrong digest,
   * a non-zero 'recognized', a length that lies, RELAY_EARLY instead of RELAY.
   */
  send(command: number, streamId: number, body: Uint8Array, options: { corruptDigest?: boolean; recognized?: number; claimedLength?: number; early?: boolean } = {}): Uint8Array {
    const layer = this.requireLayer();
    if (body.length > RELAY_DATA_MAX) throw new ProtocolError(`relay side: body of ${body.length} bytes`);
    const circIdLen = this.linkProtocol.circIdSize.size;
    const cell = new Uint8Array(this.linkProtocol.fixedCellLength);
    const payload = cell.subarray(circIdLen + 1);
    writeRelayHeader(payload, command, 0, streamId, 0, options.claimedLength ?? body.length);
    payload.set(body, RELAY_HEADER_LEN);
    const digest = layer.originate(payload);
    if (options.recognized !== undefined) {
      payload[1] = options.recognized >> 8;
      payload[2] = options.recognized;
    }
    if (options.corruptDigest) payload[5]! ^= 0xff;
    layer.encrypt(payload);
    if (command === 2) {
      // tor's sendme_record_cell_digest: the 100th, 200th, … DATA cell triggers a SENDME.
      this.dataSent++;
      if (this.dataSent % 100 === 0) this.expectedSendmeDigests.push(digest);
    }
    writeCellHeader(cell, this.circId, circIdLen, options.early ? 9 : 3);
    return cell;
  }

  private requireLayer(): Tor1Layer {
    if (!this.layer) throw new ProtocolError('relay side: the circuit was not created');
    return this.layer;
  }
}

/** Splits bytes into relay-cell-sized pieces (at most 498 bytes). */
export function relayPieces(bytes: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let at = 0; at < bytes.length; at += RELAY_DATA_MAX) out.push(bytes.subarray(at, at + RELAY_DATA_MAX));
  return out;
}
