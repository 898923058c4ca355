/**
 * Multi-hop fault rows: three fake relays in this process (src/testing/fakerelay), a
 * circuit through all of them by CREATE2 and EXTEND2 (tor-spec 5.1), and each
 * misbehaviour scripted at each hop in turn (1, 2, 3). Every row checks:
 *
 *   - the exact typed error (class and code), and that its message names the hop
 *     ("hop #2 (relayB)");
 *   - that it came within the configured timeout (TimeoutError rows: at it);
 *   - that nothing leaked (handles, file descriptors, abort listeners);
 *   - that another circuit on the same connection still builds three hops and fetches.
 *
 * Plus the happy paths: three hops with ntor, ntor v3 and mixed, each hop serving its
 * own documents, circuits of 1 to 8 hops, TRUNCATE then extend again.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import {
  CircuitDestroyedError,
  HandshakeError,
  LimitError,
  OrportError,
  ProtocolError,
  Relay,
  TimeoutError,
  parseHttpResponse,
  type RelayCircuit,
} from '../../src/index.js';
import { buildCertChain, type GeneratedChain } from '../../src/testing/certchain.js';
import { startFakeRelay, syntheticByte, syntheticDocument, type FakeCircuit, type FakeRelay, type FakeRelayHooks, type FakeRelayOptions } from '../../src/testing/fakerelay.js';
import { decodeNtorV3Request, encodeNtorV3Extensions } from '../../src/crypto/handshake/ntorv3.js';
import type { CircuitTarget, HandshakeKind } from '../../src/client/handshakes.js';
import { noLeaks } from '../support/leaks.js';
import { failure, type Failure } from '../support/failure.js';

const TIMEOUT = 1000;
const NAMES = ['relayA', 'relayB', 'relayC'] as const;
const HOPS = [1, 2, 3] as const;
const docOf = (name: string) => `${name} serves this\n`.repeat(300); // ≈ 6 KB: 12 DATA cells
const BIG = 498 * 1200; // past the circuit window: SENDMEs at that hop
const GET = (path = '/tor/doc') => `GET ${path} HTTP/1.0\r\n\r\n`;
const signal = new AbortController().signal;

let chains: GeneratedChain[];
before(() => {
  chains = NAMES.map(() => buildCertChain());
});

interface Net {
  relays: FakeRelay[];
  /** relays[i].target, with the nickname. */
  targets: CircuitTarget[];
  connect(): Promise<Relay>;
}

/**
 * Three fake relays that know each other (and no other), each with `hooks[i]`, inside a
 * leak check; their hooks must not throw, and the client must break no rule they check.
 */
async function withNet(hooks: readonly (FakeRelayHooks | undefined)[], fn: (net: Net) => Promise<void>, options: FakeRelayOptions = {}): Promise<void> {
  await noLeaks(async () => {
    const relays: FakeRelay[] = [];
    try {
      for (const [i, name] of NAMES.entries()) {
        relays.push(await startFakeRelay({
          chain: chains[i]!,
          nickname: name,
          peers: relays,
          documents: { '/tor/doc': docOf(name), '/tor/big': syntheticDocument(BIG, i + 1) },
          ...options,
          ...(hooks[i] ? { hooks: hooks[i] } : {}),
        }));
      }
      const a = relays[0]!;
      await fn({
        relays,
        targets: relays.map((r) => r.target),
        connect: () => Relay.connect(a.host, a.port, undefined, { timeoutMs: TIMEOUT, identity: a.identity, signal }),
      });
    } finally {
      for (const r of relays) await r.close();
    }
    assert.equal(getEventListeners(signal, 'abort').length, 0, 'every wait removed its abort listener');
    for (const r of relays) {
      assert.deepEqual(r.errors, [], `${r.nickname}'s hooks ran without exceptions`);
      assert.deepEqual(r.violations, [], `the client broke no rule ${r.nickname} checks`);
    }
  });
}

/** Builds a circuit through `targets` (CREATE2 to the first, EXTEND2 to the rest). */
async function build(relay: Relay, targets: readonly CircuitTarget[], handshakes: readonly HandshakeKind[] = ['ntor'], timeoutMs = TIMEOUT): Promise<RelayCircuit> {
  const hs = (i: number) => handshakes[i % handshakes.length]!;
  const circuit = await relay.createCircuit({ handshake: hs(0), target: targets[0]!, timeoutMs, signal });
  for (let i = 1; i < targets.length; i++) await circuit.extend(targets[i]!, { handshake: hs(i), timeoutMs, signal });
  return circuit;
}

/** The document hop `hop` (0-based) of `circuit` served; checks it is `name`'s. */
async function fetchesFrom(circuit: RelayCircuit, hop: number, name: string, streamId = 1): Promise<void> {
  const response = parseHttpResponse(await circuit.directory(GET(), streamId, { hop, timeoutMs: TIMEOUT * 3, signal }));
  assert.equal(response.statusCode, 200);
  assert.equal(Buffer.from(response.body).toString(), docOf(name), `hop #${hop + 1} answered with ${name}'s document`);
}

/** Another circuit on the same connection builds three hops and fetches from the last. */
async function othersUnaffected(relay: Relay, net: Net): Promise<void> {
  assert.ok(relay.isAlive(), 'the connection is alive');
  const other = await build(relay, net.targets);
  await fetchesFrom(other, 2, 'relayC');
  await other.close();
}

/** The error is of `cls` with `code`, names hop `hop` (1-based) and its relay, and came in time. */
function expectHopError<E extends OrportError>(f: Failure, cls: abstract new (...args: never[]) => E, code: string, hop: number, name: string, timeoutMs = TIMEOUT): E {
  assert.ok(f.error instanceof cls, `expected ${cls.name}, got ${f.error.name} (${f.error.code}): ${f.error.message}`);
  assert.equal(f.error.code, code);
  assert.ok(f.error.message.includes(`hop #${hop} (${name})`), `the message names hop #${hop} (${name}): ${f.error.message}`);
  if (cls === (TimeoutError as unknown)) assert.ok(f.ms >= timeoutMs - 5 && f.ms < timeoutMs + 750, `timed out after ${f.ms.toFixed(0)} ms (configured ${timeoutMs} ms)`);
  else assert.ok(f.ms < timeoutMs, `failed after ${f.ms.toFixed(0)} ms, not within the ${timeoutMs} ms timeout`);
  return f.error;
}

/** Hooks with `hooks` on the relay of hop `hop` (1-based) only. */
function at(hop: number, hooks: FakeRelayHooks): (FakeRelayHooks | undefined)[] {
  return NAMES.map((_, i) => (i === hop - 1 ? hooks : undefined));
}

/** A hook that misbehaves the first time only (then does the honest thing: the other circuit). */
function once<A extends unknown[]>(fault: (...args: A) => unknown): (c: unknown, next: () => void | Promise<void>, ...args: A) => void | Promise<void> {
  let armed = true;
  return (_c, next, ...args) => {
    if (!armed) return next();
    armed = false;
    void fault(...args);
  };
}

/** Builds to hop `hop` - 1 and then adds hop `hop`, expecting it to fail; returns the failure. */
async function failAt(relay: Relay, net: Net, hop: number, options: { timeoutMs?: number; target?: CircuitTarget; handshake?: HandshakeKind } = {}): Promise<Failure> {
  const timeoutMs = options.timeoutMs ?? TIMEOUT;
  const target = options.target ?? net.targets[hop - 1]!;
  const handshake = options.handshake ?? 'ntor';
  if (hop === 1) return failure(() => relay.createCircuit({ handshake, target, timeoutMs, signal }));
  const circuit = await build(relay, net.targets.slice(0, hop - 1));
  return failure(() => circuit.extend(target, { handshake, timeoutMs, signal }));
}

// -------------------------------------------------------------------------------------
// Happy paths

for (const handshakes of [['ntor'], ['ntor-v3'], ['ntor', 'ntor-v3', 'ntor'], ['ntor-v3', 'ntor', 'ntor-v3']] as const) {
  test(`three hops (${handshakes.join(', ')}): each hop serves its own documents; a response past the circuit window through hop #3`, async () => {
    await withNet([], async (net) => {
      const relay = await net.connect();
      const circuit = await build(relay, net.targets, handshakes);
      assert.equal(circuit.hopCount, 3);
      await Promise.all(NAMES.map((name, hop) => fetchesFrom(circuit, hop, name, hop + 1)));
      const big = parseHttpResponse(await circuit.directory(GET('/tor/big'), 9, { timeoutMs: 5000, signal }));
      assert.equal(big.body.length, BIG);
      for (let i = 0; i < BIG; i += 997) assert.equal(big.body[i], syntheticByte(i, 3), `byte ${i} is relayC's`);
      await circuit.close();
      await relay.close();
    });
  });
}

test('ntor v3: the relay reads the client’s extensions (none asked for: `00`) and its server message may carry extensions we ignore', async () => {
  const seen: FakeCircuit[] = [];
  const record: FakeRelayHooks = { create2: (_c, next, circuit) => (seen.push(circuit), next()) };
  await withNet([record, record, record], async (net) => {
    const relay = await net.connect();
    const circuit = await build(relay, net.targets, ['ntor-v3']);
    assert.equal(seen.length, 3);
    for (const hop of seen) {
      assert.deepEqual([...hop.clientMessage!], [0], 'CM is an empty extension list');
      assert.equal(decodeNtorV3Request(hop.clientMessage!).congestionControl, false);
    }
    await fetchesFrom(circuit, 2, 'relayC');
    await relay.close();
  }, { ntorV3Response: encodeNtorV3Extensions([{ type: 200, data: Uint8Array.of(1, 2, 3) }]) });
});

test('circuits of 1 to 8 hops: the last hop answers', async () => {
  await withNet([], async (net) => {
    const relay = await net.connect();
    for (let n = 1; n <= 8; n++) {
      const path = Array.from({ length: n }, (_, i) => net.targets[i % 3]!);
      const circuit = await build(relay, path, ['ntor', 'ntor-v3']);
      assert.equal(circuit.hopCount, n);
      await fetchesFrom(circuit, n - 1, NAMES[(n - 1) % 3]!);
      await circuit.close();
    }
    await relay.close();
  });
});

test('TRUNCATE to hop #1, then EXTEND2 again: the new hop #2 answers', async () => {
  await withNet([], async (net) => {
    const relay = await net.connect();
    const circuit = await build(relay, net.targets);
    await circuit.truncate(0, { timeoutMs: TIMEOUT, signal });
    assert.equal(circuit.hopCount, 1);
    await circuit.extend(net.targets[2]!, { timeoutMs: TIMEOUT, signal });
    await fetchesFrom(circuit, 1, 'relayC');
    await relay.close();
  });
});

test('a ninth hop is refused with a LimitError naming it, before anything is sent', async () => {
  let cells = 0;
  await withNet([{ cell: (_c, next) => (cells++, next()) }], async (net) => {
    const relay = await net.connect();
    const circuit = await build(relay, Array.from({ length: 8 }, (_, i) => net.targets[i % 3]!));
    assert.equal(circuit.hopCount, 8);
    await new Promise((r) => setTimeout(r, 20));
    const before = cells;
    expectHopError(await failure(() => circuit.extend(net.targets[2]!, { timeoutMs: TIMEOUT, signal })), LimitError, 'E_LIMIT', 9, 'relayC');
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(cells, before, 'no cell was sent for the ninth hop');
    assert.ok(circuit.isOpen, 'the eight hops carry on');
    await fetchesFrom(circuit, 7, 'relayB');
    await othersUnaffected(relay, net);
    await relay.close();
  });
});

// -------------------------------------------------------------------------------------
// Fault rows, at each hop

for (const hop of HOPS) {
  const name = NAMES[hop - 1]!;
  const answer = hop === 1 ? 'CREATED2' : 'EXTENDED2';

  for (const handshake of ['ntor', 'ntor-v3'] as const) {
    test(`row: a wrong AUTH in ${answer} for hop #${hop} (${handshake}) → HandshakeError naming it; other circuits unaffected`, async () => {
      await withNet(at(hop, { create2: once((circuit: FakeCircuit) => circuit.created2({ tamperAuth: true })) }), async (net) => {
        const relay = await net.connect();
        const err = expectHopError(await failAt(relay, net, hop, { handshake }), HandshakeError, 'E_HANDSHAKE', hop, name);
        assert.match(err.message, /AUTH does not match/);
        await othersUnaffected(relay, net);
        await relay.close();
      });
    });
  }

  for (const [what, sm, pattern] of [
    ['a malformed ntor v3 server message (an extension list cut short)', Uint8Array.of(2, 200, 5, 1), /message is malformed/],
    ['an ntor v3 server message turning on congestion control, not asked for', Uint8Array.of(1, 2, 1, 31), /congestion control/],
  ] as const) {
    test(`row: ${what} in ${answer} for hop #${hop} → HandshakeError naming it`, async () => {
      await withNet(at(hop, { create2: once((circuit: FakeCircuit) => circuit.created2({ serverMessage: sm })) }), async (net) => {
        const relay = await net.connect();
        const err = expectHopError(await failAt(relay, net, hop, { handshake: 'ntor-v3' }), HandshakeError, 'E_HANDSHAKE', hop, name);
        assert.match(err.message, pattern);
        await othersUnaffected(relay, net);
        await relay.close();
      });
    });
  }

  test(`row: an all-zero X25519 point (Y) in ${answer} for hop #${hop} → HandshakeError naming it`, async () => {
    await withNet(at(hop, { create2: once((circuit: FakeCircuit) => circuit.created2({ zeroY: true })) }), async (net) => {
      const relay = await net.connect();
      const err = expectHopError(await failAt(relay, net, hop), HandshakeError, 'E_HANDSHAKE', hop, name);
      assert.match(err.message, /all zero/);
      await othersUnaffected(relay, net);
      await relay.close();
    });
  });

  test(`row: a garbled ${answer} (HLEN past the cell) for hop #${hop} → ProtocolError naming it`, async () => {
    await withNet(at(hop, { create2: once((circuit: FakeCircuit) => circuit.reply(new Uint8Array(64), { claimedLength: 0xffff })) }), async (net) => {
      const relay = await net.connect();
      const err = expectHopError(await failAt(relay, net, hop), ProtocolError, 'E_PROTOCOL', hop, name);
      assert.match(err.message, new RegExp(`malformed ${answer}`));
      await othersUnaffected(relay, net);
      await relay.close();
    });
  });

  test(`row: DESTROY instead of ${answer} for hop #${hop} → CircuitDestroyedError naming it`, async () => {
    await withNet(at(hop, { create2: once((circuit: FakeCircuit) => circuit.destroy('RESOURCELIMIT')) }), async (net) => {
      const relay = await net.connect();
      const err = expectHopError(await failAt(relay, net, hop), CircuitDestroyedError, 'E_CIRCUIT_DESTROYED', hop, name);
      assert.equal(err.by, 'relay');
      // tor-spec 5.4: relays pass a DESTROY on with reason DESTROYED, not the original reason.
      assert.equal(err.reason, hop === 1 ? 'RESOURCELIMIT' : 'DESTROYED');
      await othersUnaffected(relay, net);
      await relay.close();
    });
  });

  test(`row: silence instead of ${answer} for hop #${hop} → TimeoutError at the timeout, naming it; the circuit is destroyed`, async () => {
    let silent: FakeCircuit | undefined;
    await withNet(at(hop, { create2: once((circuit: FakeCircuit) => void (silent = circuit)) }), async (net) => {
      const relay = await net.connect();
      expectHopError(await failAt(relay, net, hop, { timeoutMs: 300 }), TimeoutError, 'E_TIMEOUT', hop, name, 300);
      const [conn] = net.relays[0]!.connections;
      const deadline = performance.now() + TIMEOUT;
      while (conn!.destroysIn.length === 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      assert.equal(conn!.destroysIn.length, 1, 'we sent DESTROY for the half-built circuit');
      assert.equal(silent?.isOpen, false);
      await othersUnaffected(relay, net);
      await relay.close();
    });
  });

  test(`row: a wrong ntor onion key for hop #${hop} → the relay refuses the onion skin; CircuitDestroyedError naming the hop`, async () => {
    const seen: FakeCircuit[] = [];
    await withNet(at(hop, { create2: (_c, next, circuit) => (seen.push(circuit), next()) }), async (net) => {
      const relay = await net.connect();
      const wrong = { ...net.targets[hop - 1]!, ntorOnionKey: net.relays[(hop % 3)]!.ntorOnionKey };
      const err = expectHopError(await failAt(relay, net, hop, { target: wrong }), CircuitDestroyedError, 'E_CIRCUIT_DESTROYED', hop, name);
      assert.equal(err.reason, hop === 1 ? 'PROTOCOL' : 'DESTROYED');
      assert.match(seen[0]!.handshakeError?.message ?? '', /KEYID .* is none of this relay's/);
      await othersUnaffected(relay, net);
      await relay.close();
    });
  });

  test(`row: TRUNCATED from hop #${hop} instead of EXTENDED2 → CircuitDestroyedError naming it and the hop it could not reach; the circuit carries on`, async () => {
    await withNet(at(hop, { extend2: once((circuit: FakeCircuit) => circuit.truncated('CONNECTFAILED')) }), async (net) => {
      const relay = await net.connect();
      const circuit = await build(relay, net.targets.slice(0, hop));
      const next = net.targets[hop % 3]!;
      const err = expectHopError(await failure(() => circuit.extend(next, { timeoutMs: TIMEOUT, signal })), CircuitDestroyedError, 'E_CIRCUIT_DESTROYED', hop, name);
      assert.equal(err.reason, 'CONNECTFAILED');
      assert.ok(err.message.includes(`hop #${hop + 1} (${next.nickname})`), err.message);
      assert.equal(circuit.hopCount, hop);
      await fetchesFrom(circuit, hop - 1, name);
      await othersUnaffected(relay, net);
      await relay.close();
    });
  });

  if (hop < 3) {
    test(`row: TRUNCATED from hop #${hop} while hop #3 answers → the stream fails with CircuitDestroyedError naming hop #${hop}; ${hop} hop(s) carry on`, async () => {
      const hooks: FakeRelayHooks = {
        data: once((circuit: FakeCircuit) => {
          let truncating = circuit.first;
          while (truncating.hop < hop - 1) truncating = truncating.next!;
          truncating.truncated('RESOURCELIMIT');
        }),
      };
      await withNet(at(3, hooks), async (net) => {
        const relay = await net.connect();
        const circuit = await build(relay, net.targets);
        const err = expectHopError(await failure(() => circuit.directory(GET(), 1, { timeoutMs: TIMEOUT, signal })), CircuitDestroyedError, 'E_CIRCUIT_DESTROYED', hop, name);
        assert.equal(err.reason, 'RESOURCELIMIT');
        assert.match(err.message, /truncated circuit \d+ after it/);
        assert.equal(circuit.hopCount, hop);
        await fetchesFrom(circuit, hop - 1, name, 2);
        await othersUnaffected(relay, net);
        await relay.close();
      });
    });
  }

  test(`row: a cell from hop #${hop} that no hop recognizes → ProtocolError E_BAD_CELL_AUTH naming the hops`, async () => {
    const hooks: FakeRelayHooks = { data: once((circuit: FakeCircuit, stream: { id: number }, body: Uint8Array) => circuit.send(2, stream.id, body, { corruptDigest: true })) };
    await withNet(at(hop, hooks), async (net) => {
      const relay = await net.connect();
      const circuit = await build(relay, net.targets);
      const err = expectHopError(await failure(() => circuit.directory(GET(), 1, { hop: hop - 1, timeoutMs: TIMEOUT, signal })), ProtocolError, 'E_BAD_CELL_AUTH', hop, name);
      assert.match(err.message, /not recognized by any of its 3 hop/);
      assert.equal(circuit.isOpen, false);
      await othersUnaffected(relay, net);
      await relay.close();
    });
  });

  test(`row: an inbound RELAY_EARLY from hop #${hop} → ProtocolError naming it (tor-spec 5.6)`, async () => {
    const hooks: FakeRelayHooks = { data: once((circuit: FakeCircuit, stream: { id: number }, body: Uint8Array) => circuit.send(2, stream.id, body, { early: true })) };
    await withNet(at(hop, hooks), async (net) => {
      const relay = await net.connect();
      const circuit = await build(relay, net.targets);
      const err = expectHopError(await failure(() => circuit.directory(GET(), 1, { hop: hop - 1, timeoutMs: TIMEOUT, signal })), ProtocolError, 'E_PROTOCOL', hop, name);
      assert.match(err.message, /RELAY_EARLY/);
      await othersUnaffected(relay, net);
      await relay.close();
    });
  });

  test(`row: DESTROY from hop #${hop} in the middle of a response → CircuitDestroyedError naming the hops`, async () => {
    const hooks: FakeRelayHooks = { data: once((circuit: FakeCircuit) => circuit.destroy('RESOURCELIMIT')) };
    await withNet(at(hop, hooks), async (net) => {
      const relay = await net.connect();
      const circuit = await build(relay, net.targets);
      const err = expectHopError(await failure(() => circuit.directory(GET(), 1, { hop: hop - 1, timeoutMs: TIMEOUT, signal })), CircuitDestroyedError, 'E_CIRCUIT_DESTROYED', hop, name);
      assert.equal(err.reason, hop === 1 ? 'RESOURCELIMIT' : 'DESTROYED');
      await othersUnaffected(relay, net);
      await relay.close();
    });
  });
}
