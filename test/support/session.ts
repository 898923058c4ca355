/**
 * test/support/session — a real client session with a tor 0.4.9 relay, captured byte for
 * byte after TLS (scripts/capture-session.ts → test/vectors/session-testnet.json), and a
 * replay that drives the channel and circuit machines through it exactly as the capture
 * did (same circuit id, same CREATE_FAST X, same streams), so the relay's cells decrypt.
 * Tests replay it as is, or mutated (the fuzz tests).
 */
import { readFileSync } from 'node:fs';
import { Address, OrportError, type LinkProtocol } from '../../src/index.js';
import { ChannelMachine, type HandshakeResult } from '../../src/proto/channel.js';
import { verifyCertsCell, type VerifiedChain } from '../../src/crypto/certs.js';
import type { CircuitMachine } from '../../src/proto/circuit.js';
import { BeginDirMsg } from '../../src/codec/relaymsg.js';
import { fromHex, utf8 } from '../../src/codec/bytes.js';

interface RawCapture {
  torVersion: string;
  capturedAt: string;
  tlsCertificate: string;
  linkProtocol: number;
  circId: number;
  x: string;
  requests: string[];
  chunks: string[];
}

const raw = JSON.parse(readFileSync(new URL('../vectors/session-testnet.json', import.meta.url), 'utf8')) as RawCapture;

export const session = {
  torVersion: raw.torVersion,
  capturedAt: new Date(raw.capturedAt),
  /** The TLS certificate (DER) the relay presented. */
  tlsCertificate: fromHex(raw.tlsCertificate),
  linkProtocol: raw.linkProtocol,
  circId: raw.circId,
  x: fromHex(raw.x),
  requests: raw.requests,
  /** The chunks as TLS delivered them (fresh copies on every call). */
  chunks: (): Uint8Array[] => raw.chunks.map(fromHex),
  /** All the relay's bytes in one buffer. */
  bytes: (): Uint8Array => Buffer.concat(raw.chunks.map(fromHex)),
};

export interface StreamOutcome {
  connected: number;
  data: Uint8Array[];
  /** undefined: still open; null: END (DONE); else the error. */
  ended: OrportError | null | undefined;
}

export interface ReplayOutcome {
  handshake: HandshakeResult | undefined;
  /** The verified chain, when the replay verified the CERTS cell (as Relay.connect does). */
  chain: VerifiedChain | undefined;
  channelError: OrportError | undefined;
  circuitOpened: boolean;
  circuitError: OrportError | undefined;
  streams: StreamOutcome[];
  /** Bytes we sent back (our VERSIONS, NETINFO, CREATE_FAST, BEGIN_DIRs, requests, SENDMEs, DESTROY…). */
  sentBytes: number;
  channel: ChannelMachine;
  circuit: CircuitMachine | undefined;
}

/**
 * Replays `chunks` (default: the capture) into a fresh channel machine set up as the
 * capture was: when the handshake completes it creates the circuit, when the circuit
 * opens it opens the streams and sends the requests. `consume(streamId)` says whether a
 * stream's reader keeps up (false: it holds stream SENDMEs back). `verify` checks the
 * CERTS cell against the captured TLS certificate at the capture's time, as
 * Relay.connect does (a failure closes the channel with a CertificateError).
 */
export function replaySession(chunks: readonly Uint8Array[] = session.chunks(), options: { consume?: (streamId: number) => boolean; verify?: boolean } = {}): ReplayOutcome {
  let sentBytes = 0;
  const outcome: ReplayOutcome = {
    handshake: undefined,
    chain: undefined,
    channelError: undefined,
    circuitOpened: false,
    circuitError: undefined,
    streams: session.requests.map(() => ({ connected: 0, data: [], ended: undefined })),
    sentBytes: 0,
    channel: undefined as unknown as ChannelMachine,
    circuit: undefined,
  };
  const channel: ChannelMachine = new ChannelMachine(
    [3, 4, 5],
    { send: (bytes) => void (sentBytes += bytes.length) },
    {
      certs: options.verify
        ? (certs) => {
            outcome.chain = verifyCertsCell(certs, session.tlsCertificate, session.capturedAt);
          }
        : undefined,
      handshakeComplete: (result) => {
        outcome.handshake = result;
        const circuit = channel.newCircuit({
          opened: () => {
            outcome.circuitOpened = true;
            session.requests.forEach((request, i) => {
              const id = i + 1;
              const s = outcome.streams[i]!;
              circuit.openStream(id, new BeginDirMsg(), {
                connected: () => void s.connected++,
                data: (d) => {
                  s.data.push(d);
                  return options.consume?.(id) ?? true;
                },
                ended: (e) => void (s.ended = e),
              });
              circuit.sendData(id, utf8.encode(request));
            });
          },
          destroyed: (e) => void (outcome.circuitError = e),
        });
        outcome.circuit = circuit;
        circuit.startCreateFast();
      },
      closed: (e) => void (outcome.channelError = e),
    },
    {
      peerAddress: new Address('127.0.0.1'),
      randomInt: (min: number) => min + (session.circId - 0x80000000),
      circuit: { randomBytes: (n: number) => session.x.subarray(0, n), randomFill: () => undefined },
    },
  );
  outcome.channel = channel;
  channel.start();
  for (const chunk of chunks) channel.handleBytes(chunk);
  outcome.sentBytes = sentBytes;
  return outcome;
}

/** The negotiated link protocol of a replay, for framing cells to add. */
export function replayLinkProtocol(outcome: ReplayOutcome): LinkProtocol | undefined {
  return outcome.channel.negotiated;
}
