/**
 * onion/rendezvous — connecting to an onion service whose descriptor we hold, as tor
 * 0.4.9's client does (rend-spec-v3 §3–4; hs_client.c, hs_circuit.c; DIGEST-onion §6):
 *
 *   rend circuit  G–M–RP (RP drawn like a middle, HSRend=2, an ntor key)
 *                 ESTABLISH_RENDEZVOUS(cookie) → RENDEZVOUS_ESTABLISHED
 *   intro circuit G–M–M–IP, built at the same time (the IP by EXTEND2 with the
 *                 descriptor's link specifiers verbatim and its onion key, ntor)
 *                 INTRODUCE1 (hs-ntor, only once RENDEZVOUS_ESTABLISHED came) → INTRODUCE_ACK
 *   rend circuit  ← RENDEZVOUS2 (may come before the ACK): AUTH checked, the virtual hop
 *                 added; the circuit's streams then go to the service (BEGIN ":port").
 *
 * An INTRODUCE_ACK with a non-zero status, an intro circuit that fails or times out: the
 * next introduction point is tried on a new intro circuit (the same rend circuit, cookie
 * and X: one hs-ntor key per rend circuit). Every step has its deadline (`introTimeoutMs`
 * per introduction point, `rendTimeoutMs` for the rend circuit and for RENDEZVOUS2,
 * `timeoutMs` for all), honours `signal`, and every circuit opened is closed on failure
 * (intro circuits always: tor closes them after the ACK).
 *
 * Layer: thin I/O over the pure onion/ pieces (cells, hsntor) and a client's buildCircuit
 * (paths from onion/lookup's pathEndingAt / chooseMiddleRelay). Errors: OnionServiceError
 * E_ONION_INTRO_FAILED (every introduction point NACKed or failed; SOCKS F2),
 * E_ONION_INTRO_TIMEOUT (every one timed out; F7), E_ONION_REND_FAILED (the rend circuit
 * failed or timed out, RENDEZVOUS2 did not come or did not authenticate; F3), with what
 * each introduction point did; TimeoutError for `timeoutMs`, AbortError for `signal`; an
 * OnionAddressError for a bad address. Not here: fetching the descriptor (onion/lookup),
 * client authorization keys, proof of work, congestion control with the service (not asked
 * for: the virtual hop runs fixed windows), re-extending a NACKed intro circuit (tor does;
 * a new one is built here).
 */
import { randomBytes } from 'node:crypto';
import { AbortError, BadArgumentError, OnionServiceError, OrportError, TimeoutError, type OnionIntroAttempt } from '../errors.js';
import { concatBytes } from '../codec/bytes.js';
import { LinkSpecifier } from '../codec/datatype.js';
import { supportsVersion } from '../dir/consensus.js';
import { startDeadline, type WaitOptions } from '../client/wait.js';
import { linkSpecifiersFor, type CircuitTarget, type HandshakeKind } from '../client/handshakes.js';
import type { TorCircuit } from '../client/torcircuit.js';
import type { CircuitSource, RelayInfo } from '../client/view.js';
import { parseOnionAddress } from './address.js';
import type { HsDescriptor, HsIntroductionPoint } from './descriptor.js';
import { encodeIntroduce1Header, encodeIntroducePlaintext, hsNtorClientFinish, hsNtorClientIntroduce, REND_COOKIE_LEN, type HsNtorClientState } from './hsntor.js';
import { EstablishRendezvousMsg, IntroduceAckMsg, IntroduceAckStatus, RelayCommandHs, Rendezvous2Msg } from './cells.js';
import { chooseMiddleRelay, cryptoRandom, pathEndingAt, shuffled } from './lookup.js';

/** What connecting needs of a client (a TorClient): its consensus, network rules and buildCircuit. */
export type OnionConnectClient = CircuitSource;

/** The service to connect to: its address, identity key, this period's subcredential, a verified descriptor. */
export interface OnionConnectTarget {
  /** `<56 base32>.onion`. */
  address: string;
  /** The service's Ed25519 identity key (the address' public key, 32 bytes). */
  identityKey: Uint8Array;
  /** N_hs_subcred for the descriptor's time period (onion/keys `subcredential`). */
  subcredential: Uint8Array;
  descriptor: HsDescriptor;
}

export interface OnionConnectOptions {
  signal?: AbortSignal;
  /** Bound on everything (default 120 s, tor's SocksTimeout). */
  timeoutMs?: number;
  /** Bound on one introduction point: its circuit and INTRODUCE_ACK (default 30 s). */
  introTimeoutMs?: number;
  /** Bound on the rend circuit with RENDEZVOUS_ESTABLISHED, and on RENDEZVOUS2 after the ACK (default 30 s each). */
  rendTimeoutMs?: number;
  /** Random bytes (cookie, X, the paths' draws); default crypto. */
  random?: (n: number) => Uint8Array;
}

export const DEFAULT_ONION_CONNECT_TIMEOUT_MS = 120_000;
export const DEFAULT_INTRO_TIMEOUT_MS = 30_000;
export const DEFAULT_REND_TIMEOUT_MS = 30_000;
/** C tor's path lengths (circuitbuild.c route_len_for_purpose): rend G–M–RP, intro G–M–M–IP. */
export const REND_CIRCUIT_HOPS = 3;
export const INTRO_CIRCUIT_HOPS = 4;

/** A step's own deadline inside the whole one: its signal, and the TimeoutError it fired with, if it did. */
interface Step {
  readonly wait: Required<WaitOptions>;
  readonly timedOut: () => OrportError | undefined;
  dispose(): void;
}

function step(what: string, timeoutMs: number, parent: AbortSignal): Step {
  const controller = new AbortController();
  let fired: OrportError | undefined;
  const deadline = startDeadline(what, { timeoutMs, signal: parent }, timeoutMs, (error) => {
    fired = error;
    controller.abort(error);
  });
  return { wait: { signal: controller.signal, timeoutMs }, timedOut: () => (fired instanceof TimeoutError ? fired : undefined), dispose: () => deadline.dispose() };
}

/** Which introduction point, for messages: its index and the relay its link specifiers name. */
function introName(ip: HsIntroductionPoint, index: number): string {
  const rsa = ip.linkSpecifiers.find((ls) => ls.type === 2 && ls.data.length === 20);
  const v4 = ip.linkSpecifiers.find((ls) => ls.type === 0 && ls.data.length === 6);
  const addr = v4 ? `${[...v4.data.subarray(0, 4)].join('.')}:${(v4.data[4]! << 8) | v4.data[5]!}` : undefined;
  return `introduction point #${index + 1}${rsa ? ` ($${Buffer.from(rsa.data).toString('hex').toUpperCase()})` : ''}${addr ? ` at ${addr}` : ''}`;
}

/**
 * The introduction point as a hop to extend to: identities and address from its link
 * specifiers, its ntor onion key from the descriptor; ntor when an RSA id is given (tor's
 * descriptors always carry one), else ntor v3 by its Ed25519 id.
 */
function introTarget(ip: HsIntroductionPoint, name: string): { target: CircuitTarget & { nickname: string }; handshake: HandshakeKind } {
  const find = (type: number, length: number) => ip.linkSpecifiers.find((ls) => ls.type === type && ls.data.length === length)?.data;
  const rsa = find(2, 20);
  const ed = find(3, 32);
  const v4 = find(0, 6);
  if (!rsa && !ed) throw new BadArgumentError(`${name}: its link specifiers name neither an RSA nor an Ed25519 identity`);
  return {
    target: {
      nickname: name,
      rsa: rsa ? Buffer.from(rsa).toString('hex').toUpperCase() : '',
      ed25519: ed ? Buffer.from(ed).toString('base64').replace(/=+$/, '') : undefined,
      ntorOnionKey: Buffer.from(ip.onionKey).toString('base64'),
      address: v4 ? [...v4.subarray(0, 4)].join('.') : '',
      orPort: v4 ? (v4[4]! << 8) | v4[5]! : 0,
      protocols: { Relay: '4' },
    },
    handshake: rsa ? 'ntor' : 'ntor-v3',
  };
}

/**
 * Opens the rendezvous circuit to the service (see the file header): resolves with it once
 * RENDEZVOUS2 authenticated and the virtual hop is its last hop (`hops` lists it with
 * handshake 'hs-ntor'); `circuit.openStream(address, port)` then reaches the service's port.
 */
export async function openOnionCircuit(client: OnionConnectClient, target: OnionConnectTarget, options: OnionConnectOptions = {}): Promise<TorCircuit> {
  const onion = parseOnionAddress(target.address);
  const host = onion.hostname;
  if (!(target.identityKey instanceof Uint8Array) || Buffer.compare(Buffer.from(target.identityKey), Buffer.from(onion.publicKey)) !== 0) {
    throw new BadArgumentError(`the identity key given for ${host} is not the one its address encodes`);
  }
  if (!(target.subcredential instanceof Uint8Array) || target.subcredential.length !== 32) throw new BadArgumentError(`the subcredential for ${host} is 32 bytes`);
  const introPoints = target.descriptor.inner.introductionPoints;
  if (introPoints.length === 0) {
    throw new OnionServiceError('E_ONION_INTRO_FAILED', host, `the descriptor of ${host} lists no usable introduction point (${target.descriptor.inner.skipped.length} left out)`);
  }
  const randomBytesOf = options.random ?? ((n: number) => new Uint8Array(randomBytes(n)));
  const uniform = options.random ? () => Buffer.from(randomBytesOf(6)).readUIntBE(0, 6) / 2 ** 48 : cryptoRandom;
  const introTimeoutMs = options.introTimeoutMs ?? DEFAULT_INTRO_TIMEOUT_MS;
  const rendTimeoutMs = options.rendTimeoutMs ?? DEFAULT_REND_TIMEOUT_MS;

  const controller = new AbortController();
  let failure: OrportError | undefined;
  const what = `connecting to ${host}`;
  const deadline = startDeadline(what, { timeoutMs: options.timeoutMs, signal: options.signal }, DEFAULT_ONION_CONNECT_TIMEOUT_MS, (error) => {
    failure = error;
    controller.abort(error);
  });
  // Every circuit built, so that none outlives a failure; one built after the end is closed at once.
  const opened = new Set<TorCircuit>();
  let finished = false;
  const track = async (building: Promise<TorCircuit>): Promise<TorCircuit> => {
    const circuit = await building;
    if (finished) {
      void circuit.close();
      throw new AbortError(what, 'finished');
    }
    opened.add(circuit);
    return circuit;
  };
  const closeCircuit = (circuit: TorCircuit | undefined) => {
    if (!circuit) return;
    opened.delete(circuit);
    void circuit.close().catch(() => undefined);
  };
  const attempts: OnionIntroAttempt[] = [];
  try {
    // (a) The rend circuit, in the background while the first intro circuit is built.
    const cookie = randomBytesOf(REND_COOKIE_LEN);
    if (!(cookie instanceof Uint8Array) || cookie.length !== REND_COOKIE_LEN) throw new BadArgumentError(`the random source gave ${cookie?.length} bytes for the ${REND_COOKIE_LEN}-byte rendezvous cookie`);
    const rendReady = (async (): Promise<{ circuit: TorCircuit; rp: RelayInfo }> => {
      const s = step(`the rendezvous circuit for ${host} and its RENDEZVOUS_ESTABLISHED`, rendTimeoutMs, controller.signal);
      try {
        const rp = chooseMiddleRelay(client, (r) => supportsVersion(r.protocols.HSRend, 2), uniform);
        if (!rp) throw new OnionServiceError('E_ONION_REND_FAILED', host, `no relay of the consensus can be a rendezvous point (HSRend=2, an ntor key, Running, Valid, Fast)`);
        const circuit = await track(client.buildCircuit({ ...s.wait, path: pathEndingAt(client, rp, REND_CIRCUIT_HOPS, uniform), congestionControl: false }));
        circuit.sendCircuitMessage(RelayCommandHs.ESTABLISH_RENDEZVOUS, new EstablishRendezvousMsg(cookie).encode());
        await circuit.nextCircuitMessage([RelayCommandHs.RENDEZVOUS_ESTABLISHED], { ...s.wait, what: `RENDEZVOUS_ESTABLISHED from the rendezvous point ${rp.nickname}` });
        return { circuit, rp };
      } catch (err) {
        throw rendError(host, err, s.timedOut(), controller.signal);
      } finally {
        s.dispose();
      }
    })();
    rendReady.catch(() => undefined); // awaited below; a failure before then must not go unhandled

    // (b) Introduction points in random order (tor picks one at random each time), until one ACKs.
    const x = randomBytesOf(32); // one hs-ntor key for the rend circuit: a re-sent INTRODUCE1 reuses it
    const states: HsNtorClientState[] = [];
    let introduced = false;
    const order = shuffled(introPoints.map((ip, index) => ({ ip, index })), uniform);
    for (const { ip, index } of order) {
      const name = introName(ip, index);
      const s = step(`introducing ourselves to ${host} through ${name}`, introTimeoutMs, controller.signal);
      let introCircuit: TorCircuit | undefined;
      try {
        const { target: hop, handshake } = introTarget(ip, name);
        // The hops before the IP: out of its family when the consensus lists it, else ending at a relay drawn like a middle.
        const listed = hop.rsa ? client.consensus.relays.find((r) => r.rsa === hop.rsa) : undefined;
        const before = listed ? pathEndingAt(client, listed, INTRO_CIRCUIT_HOPS, uniform).slice(0, -1) : introPath(client, uniform);
        introCircuit = await track(client.buildCircuit({ ...s.wait, path: before, congestionControl: false }));
        await introCircuit.extend(hop, { ...s.wait, handshake, linkSpecifiers: ip.linkSpecifiers.map((ls) => new LinkSpecifier(ls.type, ls.data)) });
        // INTRODUCE1 only once the rend point is ready (DIGEST-onion §6.1).
        const { rp } = await rendReady;
        const header = encodeIntroduce1Header(ip.authKey);
        const plaintext = encodeIntroducePlaintext(
          { cookie, onionKey: new Uint8Array(Buffer.from(rp.ntorOnionKey!, 'base64')), linkSpecifiers: linkSpecifiersFor(rp).map((ls) => ({ type: ls.type, data: ls.value })) },
          header.length,
        );
        const { state, encrypted } = hsNtorClientIntroduce({ authKey: ip.authKey, encKey: ip.encKey, subcredential: target.subcredential }, header, plaintext, () => x);
        states.unshift(state);
        introCircuit.sendCircuitMessage(RelayCommandHs.INTRODUCE1, concatBytes([header, encrypted]));
        const reply = await introCircuit.nextCircuitMessage([RelayCommandHs.INTRODUCE_ACK], { ...s.wait, what: `INTRODUCE_ACK from ${name}` });
        const ack = IntroduceAckMsg.decode(reply.body);
        if (ack.status === IntroduceAckStatus.SUCCESS) {
          introduced = true;
          break;
        }
        attempts.push({ introPoint: name, outcome: 'nack', status: ack.status, error: new OnionServiceError('E_ONION_INTRO_FAILED', host, `${name} answered INTRODUCE_ACK status ${ack.status} (${ackStatusName(ack.status)})`) });
      } catch (err) {
        if (err instanceof OnionServiceError && err.code === 'E_ONION_REND_FAILED') throw err;
        if (controller.signal.aborted) throw failure ?? err;
        const timedOut = s.timedOut();
        const error = timedOut && (err instanceof AbortError || err === timedOut) ? timedOut : err instanceof OrportError ? err : new BadArgumentError(String(err));
        attempts.push({ introPoint: name, outcome: timedOut ? 'timeout' : 'failed', error });
      } finally {
        s.dispose();
        // tor closes the intro circuit once it has its ACK; a failed one is of no further use.
        closeCircuit(introCircuit);
      }
    }
    if (!introduced) {
      const allTimedOut = attempts.every((a) => a.outcome === 'timeout');
      const list = attempts.map((a) => `${a.introPoint}: ${a.outcome === 'nack' ? `NACK status ${a.status}` : a.error?.message}`).join('; ');
      throw new OnionServiceError(
        allTimedOut ? 'E_ONION_INTRO_TIMEOUT' : 'E_ONION_INTRO_FAILED',
        host,
        `${allTimedOut ? 'every introduction point timed out' : 'no introduction point relayed our INTRODUCE1'} for ${host} (${attempts.length} of ${introPoints.length} tried): ${list}`,
        [],
        { introAttempts: attempts, cause: attempts[attempts.length - 1]?.error },
      );
    }

    // (c) RENDEZVOUS2 on the rend circuit (it may have come already): AUTH, then the virtual hop.
    const { circuit: rend } = await rendReady;
    const s = step(`RENDEZVOUS2 from ${host} at the rendezvous point`, rendTimeoutMs, controller.signal);
    const started = performance.now();
    try {
      const reply = await rend.nextCircuitMessage([RelayCommandHs.RENDEZVOUS2], { ...s.wait, what: `RENDEZVOUS2 from ${host}` });
      const info = Rendezvous2Msg.decode(reply.body).handshakeInfo;
      let keys: ReturnType<typeof hsNtorClientFinish> | undefined;
      let refusal: unknown;
      // The newest INTRODUCE1's keys first (tor keeps only those); an older one the service answered late holds as well.
      for (const state of states) {
        try {
          keys = hsNtorClientFinish(state, info, `the rendezvous circuit ${rend.id} for ${host}`);
          break;
        } catch (err) {
          refusal ??= err;
        }
      }
      if (!keys) throw refusal;
      rend.addVirtualHop(keys, host, performance.now() - started);
      opened.delete(rend); // the caller's now
      return rend;
    } catch (err) {
      throw rendError(host, err, s.timedOut(), controller.signal, attempts);
    } finally {
      s.dispose();
    }
  } catch (err) {
    if (failure && (err instanceof AbortError || err === failure || controller.signal.aborted)) {
      throw failure instanceof TimeoutError ? new TimeoutError(`${what} (${attempts.length} introduction point(s) tried)`, failure.timeoutMs) : failure;
    }
    throw err;
  } finally {
    finished = true;
    deadline.dispose();
    for (const circuit of [...opened]) closeCircuit(circuit);
  }
}

/** The three hops before an introduction point the consensus does not list: ending at a relay drawn like a middle. */
function introPath(client: OnionConnectClient, random: () => number): RelayInfo[] {
  const third = chooseMiddleRelay(client, () => true, random);
  if (!third) throw new BadArgumentError('no relay of the consensus can be a middle hop');
  return pathEndingAt(client, third, INTRO_CIRCUIT_HOPS - 1, random);
}

function ackStatusName(status: number): string {
  return ['success', 'service ID not recognized', 'bad message format', "can't relay"][status] ?? 'unknown';
}

/** A rend-circuit failure as E_ONION_REND_FAILED (the caller's abort and the whole deadline pass as they are). */
function rendError(host: string, err: unknown, timedOut: OrportError | undefined, whole: AbortSignal, introAttempts: readonly OnionIntroAttempt[] = []): unknown {
  if (err instanceof OnionServiceError) return err;
  if (whole.aborted && !timedOut) return err;
  const cause = timedOut && (err instanceof AbortError || err === timedOut) ? timedOut : err;
  const why = cause instanceof OrportError ? cause.message : String(cause);
  return new OnionServiceError('E_ONION_REND_FAILED', host, `the rendezvous with ${host} failed: ${why}`, [], { cause, introAttempts });
}
