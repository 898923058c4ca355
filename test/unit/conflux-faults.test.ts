/**
 * Conflux fault rows over real connections (client/conflux `ConfluxCircuit.link`, prop 329):
 * three fake relays in this process (src/testing/fakerelay), two guards and one exit; two
 * legs (CREATE_FAST to a guard, EXTEND2 with ntor v3 and congestion control to the exit),
 * each on its own TLS connection, as legs through distinct guards are. The exit's
 * conflux side is scripted in its `message` hook (the fake relay drops what it does not
 * know, so an exit that never answers LINK is the default). Every row checks:
 *
 *   - the typed error (class, code), or the spec's behaviour;
 *   - that the set is closed and both legs with it, each DESTROY seen by its relay;
 *   - that nothing leaked (handles, file descriptors, abort listeners);
 *   - that another circuit on each connection still builds and fetches.
 *
 * Rows: linked (LINKED_ACK on each, a stream through the set, data by both legs in
 * order, close); no LINKED (TimeoutError at timeoutMs); an abort while waiting
 * (AbortError); LINKED with a wrong nonce (ProtocolError); a full out-of-order queue
 * (LimitError on the stream); a leg DESTROYed by the relay with a stream open (the
 * stream errors, the other leg is closed); a signal aborted before LINK, and a leg
 * without congestion control (the legs closed either way).
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import {
  AbortError,
  BadArgumentError,
  CircuitDestroyedError,
  LimitError,
  ProtocolError,
  Relay,
  TimeoutError,
  TorCircuit,
  parseHttpResponse,
  type TorStream,
} from '../../src/index.js';
import { CloseReason } from '../../src/codec/datatype.js';
import { ConfluxCircuit, type ConfluxLinkOptions } from '../../src/client/conflux.js';
import { ConfluxLinkMsg, ConfluxLinkedMsg, ConfluxSwitchMsg, ConfluxUx } from '../../src/proto/conflux.js';
import { encodeNtorV3Response } from '../../src/crypto/handshake/ntorv3.js';
import { buildCertChain, type GeneratedChain } from '../../src/testing/certchain.js';
import { startFakeRelay, type FakeCircuit, type FakeConnection, type FakeRelay } from '../../src/testing/fakerelay.js';
import { noLeaks } from '../support/leaks.js';
import { failure } from '../support/failure.js';

const TIMEOUT = 1000;
const SENDME_INC = 31;
const NAMES = ['guardA', 'guardB', 'exitX'] as const;
const DOC = 'a guard serves this\n'.repeat(100);
const CONNECTED_BODY = Uint8Array.of(127, 0, 0, 1, 0, 0, 1, 44);
const signal = new AbortController().signal;
const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

let chains: GeneratedChain[];
before(() => {
  chains = NAMES.map(() => buildCertChain());
});

/** A LINK the exit got: on which connection (the leg's guard's), at which of its hops. */
interface LinkIn {
  conn: FakeConnection;
  circuit: FakeCircuit;
  link: ConfluxLinkMsg;
}

interface Net {
  guards: FakeRelay[];
  exit: FakeRelay;
  /** One connection per guard. */
  relays: Relay[];
  links: LinkIn[];
  /** LINKED_ACKs the exit got, by the circuit id they came on. */
  acks: number[];
  /** Stream ids of the BEGINs the exit got (it answers none: the rows script CONNECTED). */
  begins: number[];
  /** Two legs, leg i through guard i, both to the exit with congestion control. */
  legs(): Promise<TorCircuit[]>;
}

/** What the exit does with a LINK (default: nothing; the fake relay would drop it). */
type OnLink = (l: LinkIn, net: Net) => void;

/** Links are answered honestly: LINKED with the LINK's nonce. */
const answerLinked: OnLink = (l) => l.circuit.send(20, 0, new ConfluxLinkedMsg(l.link.nonce, 0, 0, ConfluxUx.NO_OPINION).encode());

async function withNet(onLink: OnLink | undefined, fn: (net: Net) => Promise<void>): Promise<void> {
  await noLeaks(async () => {
    const all: FakeRelay[] = [];
    const relays: Relay[] = [];
    const links: LinkIn[] = [];
    const acks: number[] = [];
    const begins: number[] = [];
    let net!: Net;
    try {
      const exit = await startFakeRelay({
        chain: chains[2]!,
        nickname: NAMES[2],
        peers: all,
        ntorV3Response: encodeNtorV3Response({ sendmeInc: SENDME_INC }),
        hooks: {
          begin: (_c, _next, _circuit, stream) => void begins.push(stream.id),
          message: (conn, next, circuit, msg) => {
            if (msg.command === 19) {
              const l = { conn, circuit, link: ConfluxLinkMsg.decode(msg.body) };
              links.push(l);
              onLink?.(l, net);
            } else if (msg.command === 21) acks.push(circuit.id);
            else return next();
          },
        },
      });
      all.push(exit);
      for (const i of [0, 1]) all.push(await startFakeRelay({ chain: chains[i]!, nickname: NAMES[i], peers: all, documents: { '/tor/doc': DOC } }));
      const guards = all.slice(1);
      for (const g of guards) relays.push(await Relay.connect(g.host, g.port, undefined, { timeoutMs: TIMEOUT, identity: g.identity, signal }));
      net = {
        guards,
        exit,
        relays,
        links,
        acks,
        begins,
        legs: () =>
          Promise.all(
            relays.map(async (relay, i) => {
              const leg = new TorCircuit(await relay.createCircuit({ timeoutMs: TIMEOUT, signal }));
              leg.addHop({ ...guards[i]!.target, nickname: guards[i]!.nickname }, 'fast', 0);
              await leg.extend({ ...exit.target, nickname: exit.nickname }, { handshake: 'ntor-v3', congestionControl: { sendmeInc: SENDME_INC }, timeoutMs: TIMEOUT, signal });
              assert.equal(leg.hops[1]!.congestionControl?.sendmeInc, SENDME_INC, 'congestion control with the exit');
              return leg;
            }),
          ),
      };
      await fn(net);
      for (const r of relays) await r.close();
    } finally {
      for (const r of relays) await r.close();
      for (const r of all) await r.close();
    }
    assert.equal(getEventListeners(signal, 'abort').length, 0, 'every wait removed its abort listener');
    for (const r of all) {
      assert.deepEqual(r.errors, [], `${r.nickname}'s hooks ran without exceptions`);
      assert.deepEqual(r.violations, [], `the client broke no rule ${r.nickname} checks`);
    }
  });
}

/** `promise`, or a failure after `ms` (so that a row that breaks fails instead of hanging). */
async function within<T>(promise: Promise<T>, what: string, ms = 3000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** Waits (bounded: ~2 s) until `cond` holds. */
async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200 && !cond(); i++) await tick(10);
  assert.ok(cond(), `timed out waiting until ${what}`);
}

/** Both LINKs came, on two connections, with one nonce, and sequence numbers 0. */
function linksCame(net: Net, legs: readonly TorCircuit[]): void {
  assert.equal(net.links.length, 2, 'a LINK on each leg');
  assert.deepEqual(net.links.map((l) => l.circuit.id).sort(), legs.map((l) => l.id).sort());
  assert.notEqual(net.links[0]!.conn, net.links[1]!.conn, 'over two connections');
  assert.deepEqual([...net.links[0]!.link.nonce], [...net.links[1]!.link.nonce], 'one nonce');
  assert.ok(net.links.every((l) => l.circuit.hop === 1 && l.link.lastSeqnoSent === 0 && l.link.lastSeqnoRecv === 0), 'at the exit (hop #2), sequence numbers 0');
}

/** Every leg is closed and its relay saw our DESTROY for it (with `reasons[i]` when given). */
async function legsClosed(net: Net, legs: readonly TorCircuit[], reasons?: readonly string[]): Promise<void> {
  assert.ok(legs.every((l) => !l.isOpen), 'every leg is closed');
  const destroysOf = (i: number) => {
    const conn = [...net.guards[i]!.connections][0];
    return conn ? conn.destroysIn.filter((d) => d.circId === legs[i]!.id) : [];
  };
  await until(() => legs.every((_, i) => destroysOf(i).length === 1), 'each relay saw one DESTROY for its leg');
  if (reasons) legs.forEach((_, i) => assert.equal(destroysOf(i)[0]!.reason, CloseReason.toInt(reasons[i]!), `leg ${i}: DESTROY ${reasons[i]}`));
}

/** Another circuit on each connection builds and fetches from its guard. */
async function othersUnaffected(net: Net): Promise<void> {
  for (const [i, relay] of net.relays.entries()) {
    assert.ok(relay.isAlive(), `connection ${i} is alive`);
    const other = await relay.createCircuit({ timeoutMs: TIMEOUT, signal });
    const response = parseHttpResponse(await other.directory('GET /tor/doc HTTP/1.0\r\n\r\n', 1, { timeoutMs: TIMEOUT, signal }));
    assert.equal(Buffer.from(response.body).toString(), DOC, `a new circuit on connection ${i} fetches`);
    await other.close();
  }
}

/** Reads `n` bytes from `stream`. */
function readBytes(stream: TorStream, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let got = 0;
    const onData = (c: Buffer) => {
      chunks.push(c);
      got += c.length;
      if (got >= n) {
        stream.off('data', onData);
        stream.off('error', reject);
        stream.pause();
        resolve(Buffer.concat(chunks));
      }
    };
    stream.on('data', onData);
    stream.once('error', reject);
  });
}

/** The exit's hop of leg `leg`'s circuit (known once its LINK came). */
function exitOf(net: Net, legs: readonly TorCircuit[], leg: number): FakeCircuit {
  return net.links.find((l) => l.circuit.id === legs[leg]!.id)!.circuit;
}

/**
 * Links two legs (`options` go to link) and opens a stream on the set, CONNECTED by leg 0;
 * `closed` resolves with the stream's error once it closes.
 */
async function linkedStream(net: Net, options: Partial<ConfluxLinkOptions> = {}) {
  const legs = await net.legs();
  const set = await ConfluxCircuit.link(legs, { timeoutMs: TIMEOUT, signal, ...options });
  const opening = set.openStream('127.0.0.1', 80, { timeoutMs: TIMEOUT, signal });
  await until(() => net.begins.length === 1, 'BEGIN came');
  const id = net.begins[0]!;
  exitOf(net, legs, 0).send(4, id, CONNECTED_BODY);
  const stream = await within(opening, 'the stream to open');
  stream.on('error', () => undefined);
  const closed = new Promise<Error | null>((resolve) => stream.once('close', () => resolve(stream.errored)));
  return { legs, set, id, closed };
}

// -------------------------------------------------------------------------------------

test('link: resolves once both legs are LINKED, LINKED_ACK on each; a stream through the set gets data by both legs in order; close DESTROYs both', async () => {
  await withNet(answerLinked, async (net) => {
    const legs = await net.legs();
    const set = await ConfluxCircuit.link(legs, { timeoutMs: TIMEOUT, signal });
    linksCame(net, legs);
    await until(() => net.acks.length === 2, 'both LINKED_ACKs came');
    assert.deepEqual([...net.acks].sort(), legs.map((l) => l.id).sort(), 'a LINKED_ACK on each leg');
    assert.ok(set.isOpen, 'the set is open');
    assert.equal(set.id, legs[0]!.id);
    const exit = (leg: number) => exitOf(net, legs, leg);
    const opening = set.openStream('127.0.0.1', 80, { timeoutMs: TIMEOUT, signal });
    await until(() => net.begins.length === 1, 'BEGIN came');
    const id = net.begins[0]!;
    assert.ok(exit(0).streams.has(id), 'BEGIN came by leg 0');
    // The exit, as tor's sends: CONNECTED (seq 1) and "a" (2) by leg 1; "b" (3) by leg 0 (SWITCH 2 first); "c" (4) by leg 1 (SWITCH 1).
    exit(1).send(4, id, CONNECTED_BODY);
    const stream = await within(opening, 'the stream to open');
    const reading = readBytes(stream, 3);
    exit(0).send(22, 0, new ConfluxSwitchMsg(2).encode());
    exit(0).send(2, id, Buffer.from('b'));
    await until(() => set.stats.queued === 1, '"b" came by leg 0 (and waits for "a")');
    exit(1).send(2, id, Buffer.from('a'));
    exit(1).send(22, 0, new ConfluxSwitchMsg(1).encode());
    exit(1).send(2, id, Buffer.from('c'));
    assert.equal((await within(reading, 'the bytes by both legs')).toString(), 'abc', 'in order');
    assert.deepEqual(set.stats, { cellsByLeg: [1, 3], queued: 0, delivered: 4 });
    stream.destroy();
    await set.close();
    assert.equal(set.isOpen, false);
    await legsClosed(net, legs);
    await othersUnaffected(net);
  });
});

test('fault: no LINKED: ConfluxCircuit.link rejects with a TimeoutError at its timeoutMs; both legs are closed (DESTROY)', async () => {
  await withNet(undefined, async (net) => {
    const legs = await net.legs();
    const f = await failure(() => ConfluxCircuit.link(legs, { timeoutMs: 300, signal }));
    assert.ok(f.error instanceof TimeoutError, `${f.error.name}: ${f.error.message}`);
    assert.equal(f.error.code, 'E_TIMEOUT');
    assert.equal(f.error.timeoutMs, 300);
    assert.match(f.error.message, new RegExp(`CONFLUX_LINKED on every leg \\(circuits ${legs[0]!.id}, ${legs[1]!.id}\\)`));
    assert.ok(f.ms >= 295, `not before the timeout (${f.ms.toFixed(0)} ms)`);
    linksCame(net, legs);
    await legsClosed(net, legs, ['FINISHED', 'FINISHED']);
    await othersUnaffected(net);
  });
});

test('fault: the AbortSignal aborts while LINKED is awaited: AbortError; both legs are closed (DESTROY); the listener is removed', async () => {
  const controller = new AbortController();
  await withNet((_l, net) => {
    if (net.links.length === 2) controller.abort(new Error('enough'));
  }, async (net) => {
    const legs = await net.legs();
    const f = await failure(() => ConfluxCircuit.link(legs, { timeoutMs: 30_000, signal: controller.signal }));
    assert.ok(f.error instanceof AbortError, `${f.error.name}: ${f.error.message}`);
    assert.equal(f.error.code, 'E_ABORTED');
    assert.match(f.error.message, /CONFLUX_LINKED on every leg/);
    linksCame(net, legs);
    await legsClosed(net, legs, ['FINISHED', 'FINISHED']);
    assert.equal(getEventListeners(controller.signal, 'abort').length, 0);
    await othersUnaffected(net);
  });
});

test('fault: LINKED with a wrong nonce: link rejects with a ProtocolError; that leg is DESTROYed (PROTOCOL), the other closed with it', async () => {
  let wrongOn: number | undefined;
  await withNet((l) => {
    const nonce = l.link.nonce.slice();
    if (wrongOn === undefined) {
      wrongOn = l.circuit.id;
      nonce[0]! ^= 0x80;
    }
    l.circuit.send(20, 0, new ConfluxLinkedMsg(nonce, 0, 0, ConfluxUx.NO_OPINION).encode());
  }, async (net) => {
    const legs = await net.legs();
    const f = await failure(() => ConfluxCircuit.link(legs, { timeoutMs: TIMEOUT, signal }));
    assert.ok(f.error instanceof ProtocolError, `${f.error.name}: ${f.error.message}`);
    assert.equal(f.error.code, 'E_PROTOCOL');
    const bad = legs.findIndex((l) => l.id === wrongOn);
    assert.ok(bad >= 0, 'the wrong nonce went on one of the legs');
    assert.match(f.error.message, new RegExp(`conflux leg ${bad} \\(circuit \\d+, hop #2 \\(exitX\\)\\): LINKED nonce does not match`));
    assert.ok(f.ms < TIMEOUT, `failed at once, not by the timeout (${f.ms.toFixed(0)} ms)`);
    await legsClosed(net, legs, legs.map((_, i) => (i === bad ? 'PROTOCOL' : 'FINISHED')));
    await othersUnaffected(net);
  });
});

test('fault: the out-of-order queue overflows (maxQueued passed to link): the stream errors with a LimitError; leg 1 DESTROYed (RESOURCELIMIT, as conflux.c in tor), leg 0 with it', async () => {
  await withNet(answerLinked, async (net) => {
    const { legs, set, id, closed } = await linkedStream(net, { maxQueued: 2 });
    // Seq 2 never comes: leg 1 jumps to 5 and sends 6, 7, 8; the third waiting cell is one too many.
    exitOf(net, legs, 1).send(22, 0, new ConfluxSwitchMsg(5).encode());
    for (const b of ['x', 'y', 'z']) exitOf(net, legs, 1).send(2, id, Buffer.from(b));
    const error = await within(closed, 'the stream to close');
    assert.ok(error instanceof LimitError, `the stream errored with a LimitError: ${String(error)}`);
    assert.equal(error.limit, 2);
    assert.match(error.message, /conflux leg 1 \(circuit \d+, hop #2 \([a-zA-Z]+\)\): out-of-order queue full \(2 cells waiting for 2, got 8\)/);
    assert.equal(set.isOpen, false);
    await legsClosed(net, legs, ['FINISHED', 'RESOURCELIMIT']);
    await othersUnaffected(net);
  });
});

for (const gone of [1, 0]) {
  test(`fault: leg ${gone} DESTROYed by the relay with a stream open: the stream errors, the set closes, the other leg is DESTROYed`, async () => {
    await withNet(answerLinked, async (net) => {
      const { legs, set, closed } = await linkedStream(net);
      exitOf(net, legs, gone).first.destroy(CloseReason.toInt('CONNECTFAILED'));
      const error = await within(closed, 'the stream to close');
      assert.ok(error instanceof CircuitDestroyedError, `the stream errored with the leg's DESTROY: ${String(error)}`);
      assert.equal(error.by, 'relay');
      assert.equal(error.reason, 'CONNECTFAILED');
      assert.equal(set.isOpen, false);
      assert.ok(legs.every((l) => !l.isOpen), 'both legs closed');
      const other = 1 - gone;
      const conn = [...net.guards[other]!.connections][0]!;
      await until(() => conn.destroysIn.some((d) => d.circId === legs[other]!.id), `leg ${other}'s relay saw its DESTROY`);
      assert.deepEqual(conn.destroysIn.filter((d) => d.circId === legs[other]!.id).map((d) => d.reason), [CloseReason.toInt('FINISHED')]);
      const goneConn = [...net.guards[gone]!.connections][0]!;
      await tick(20);
      assert.deepEqual(goneConn.destroysIn.filter((d) => d.circId === legs[gone]!.id), [], 'no DESTROY back for the relay’s own');
      await othersUnaffected(net);
    });
  });
}

// Found while writing these rows (then fixed in src/client/conflux.ts and proto/confluxlegs.ts): failures before LINK goes out close the legs too.

test('an AbortSignal aborted before link: AbortError, and (as link documents) every leg closed', async () => {
  await withNet(undefined, async (net) => {
    const legs = await net.legs();
    const controller = new AbortController();
    controller.abort();
    const f = await failure(() => ConfluxCircuit.link(legs, { timeoutMs: TIMEOUT, signal: controller.signal }));
    assert.ok(f.error instanceof AbortError, `${f.error.name}: ${f.error.message}`);
    assert.equal(net.links.length, 0, 'no LINK sent');
    assert.ok(legs.every((l) => !l.isOpen), 'every leg closed');
  });
});

test('a leg without congestion control: BadArgumentError, and (as link documents) every leg closed', async () => {
  await withNet(undefined, async (net) => {
    const [leg] = await net.legs();
    const plain = new TorCircuit(await net.relays[1]!.createCircuit({ timeoutMs: TIMEOUT, signal }));
    plain.addHop({ ...net.guards[1]!.target, nickname: net.guards[1]!.nickname }, 'fast', 0);
    await plain.extend({ ...net.exit.target, nickname: net.exit.nickname }, { handshake: 'ntor', timeoutMs: TIMEOUT, signal });
    const f = await failure(() => ConfluxCircuit.link([leg!, plain], { timeoutMs: TIMEOUT, signal }));
    assert.ok(f.error instanceof BadArgumentError, `${f.error.name}: ${f.error.message}`);
    assert.match(f.error.message, /has no congestion control with hop #2 \(exitX\)/);
    assert.equal(net.links.length, 0, 'no LINK sent');
    assert.ok([leg!, plain].every((l) => !l.isOpen), 'every leg closed');
  });
});
