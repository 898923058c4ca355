/**
 * client/exitpool with scripted circuits (no network): tor's retry rules (a refusal tor
 * retries elsewhere goes to another exit, one it doesn't fails at once; the relay's
 * reason once the retries are spent, with the exit named), isolation keys, the exit
 * policy, MaxCircuitDirtiness, retiring circuits, the overall timeout and abort.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ExitPool, type ExitPoolDeps } from '../../src/client/exitpool.js';
import type { TorCircuit } from '../../src/client/torcircuit.js';
import type { TorStream } from '../../src/client/stream.js';
import type { PathRelay } from '../../src/path/select.js';
import { AbortError, StreamClosedError, TimeoutError } from '../../src/errors.js';

function exit(n: number, policy = 'accept 1-65535'): PathRelay {
  return {
    nickname: `exit${n}`,
    rsa: n.toString(16).toUpperCase().padStart(40, '0'),
    ed25519: undefined,
    address: `10.0.0.${n}`,
    ipv6: undefined,
    flags: ['Exit', 'Fast', 'Running', 'Valid'],
    bandwidth: 1000,
    protocols: { Relay: '1-4' },
    ntorOnionKey: 'K'.repeat(43),
    exitPolicy: { ipv4: policy, ipv6: undefined },
    family: [],
    familyIds: [],
  };
}

type Behaviour = (host: string, port: number) => 'ok' | StreamClosedError | 'hang';

/** A pool whose circuits exit through exit1, exit2, … in turn; `behave` scripts each exit. */
function pool(behave: (exitIndex: number) => Behaviour, options: { policy?: string; now?: () => number } = {}) {
  const exits = new Map<string, PathRelay>();
  const circuits: { exit: PathRelay; closed: boolean; streams: number; excludeSeen: readonly string[] }[] = [];
  let n = 0;
  const deps: ExitPoolDeps = {
    async build(_port, exclude) {
      n++;
      const e = exit(n, options.policy);
      exits.set(e.rsa, e);
      const behaviour = behave(n);
      const record = { exit: e, closed: false, streams: 0, excludeSeen: [...exclude] };
      circuits.push(record);
      const circuit = {
        hops: [{ rsa: 'G'.repeat(40) }, { rsa: 'M'.repeat(40) }, { rsa: e.rsa }],
        get isOpen() {
          return !record.closed;
        },
        get streamCount() {
          return record.streams;
        },
        async openStream(host: string, port: number, o: { signal?: AbortSignal; timeoutMs?: number }) {
          const what = behaviour(host, port);
          if (what === 'ok') {
            record.streams++;
            return { host, port, exit: e.nickname } as unknown as TorStream;
          }
          if (what === 'hang') {
            // As RelayCircuit.openStream: its own timeout, and the caller's signal.
            return new Promise((_, reject) => {
              const timer = setTimeout(() => reject(new TimeoutError(`CONNECTED for ${host}:${port}`, o.timeoutMs!)), o.timeoutMs);
              o.signal?.addEventListener('abort', () => (clearTimeout(timer), reject(o.signal!.reason)), { once: true });
            });
          }
          throw what;
        },
        async close() {
          record.closed = true;
        },
      };
      return circuit as unknown as TorCircuit;
    },
    relay: (rsa) => exits.get(rsa),
    now: options.now,
  };
  return { pool: new ExitPool(deps), circuits };
}

const refuse = (reason: string, int: number) => new StreamClosedError('relay', reason, int);

test('a refusal tor retries (RESOLVEFAILED, EXITPOLICY, MISC) goes to another exit; the third exit answers', async () => {
  const { pool: p, circuits } = pool((i) => () => (i === 1 ? refuse('RESOLVEFAILED', 2) : i === 2 ? refuse('EXITPOLICY', 4) : 'ok'));
  const stream = (await p.connect('example.com', 80)) as unknown as { exit: string };
  assert.equal(stream.exit, 'exit3');
  assert.equal(circuits.length, 3);
  assert.deepEqual(circuits[2]!.excludeSeen, [circuits[0]!.exit.rsa, circuits[1]!.exit.rsa], 'the failed exits are avoided');
  assert.equal(p.counters.retries, 2);
  await p.close();
});

test("a refusal tor doesn't retry (CONNECTREFUSED, TIMEOUT, DONE, INTERNAL) fails at once with the exit's reason and name", async () => {
  for (const [reason, int] of [['CONNECTREFUSED', 3], ['TIMEOUT', 7], ['DONE', 6], ['INTERNAL', 10]] as const) {
    const { pool: p, circuits } = pool(() => () => refuse(reason, int));
    await assert.rejects(p.connect('127.0.0.1', 9), (err: unknown) => {
      assert.ok(err instanceof StreamClosedError);
      assert.equal(err.reason, reason);
      assert.match(err.message, /exit exit1 \(0+1\) for 127\.0\.0\.1:9/);
      return true;
    });
    assert.equal(circuits.length, 1, `${reason}: one try`);
    await p.close();
  }
});

test("retries spent: the last exit's reason; with no exit left to build, the refusal we had", async () => {
  const { pool: p, circuits } = pool(() => () => refuse('MISC', 1));
  await assert.rejects(p.connect('example.com', 80), (err: unknown) => err instanceof StreamClosedError && err.reason === 'MISC' && /exit3/.test(err.message));
  assert.equal(circuits.length, 3);
  await p.close();
});

test('no CONNECTED in time on one circuit: retried on another; the overall budget bounds it all', async () => {
  const { pool: p, circuits } = pool((i) => () => (i === 1 ? 'hang' : 'ok'));
  const stream = (await p.connect('example.com', 80, { streamTimeoutMs: 100 })) as unknown as { exit: string };
  assert.equal(stream.exit, 'exit2');
  assert.equal(circuits[0]!.closed, true, 'the silent circuit takes no new streams and is retired');
  await p.close();
  const { pool: slow } = pool(() => () => 'hang');
  const t0 = Date.now();
  await assert.rejects(slow.connect('example.com', 80, { timeoutMs: 300 }), TimeoutError);
  assert.ok(Date.now() - t0 < 2000);
  await slow.close();
});

test('isolation: a circuit is reused only for its own key; the same key shares', async () => {
  const { pool: p, circuits } = pool(() => () => 'ok');
  await p.connect('a', 80, { isolation: 'alice' });
  await p.connect('b', 80, { isolation: 'bob' });
  await p.connect('c', 80, { isolation: 'alice' });
  await p.connect('d', 80);
  assert.equal(circuits.length, 3, 'alice, bob, and the default key');
  assert.equal(p.counters.reused, 1);
  await p.close();
});

test("the exit's policy summary decides reuse: a port it rejects gets a new circuit", async () => {
  const { pool: p, circuits } = pool(() => () => 'ok', { policy: 'accept 80,443' });
  await p.connect('a', 80);
  await p.connect('a', 443);
  await p.connect('a', 22);
  assert.equal(circuits.length, 2);
  await p.close();
});

test('MaxCircuitDirtiness: no new streams on a circuit first used 10 min ago; it closes once idle', async () => {
  let now = 0;
  const { pool: p, circuits } = pool(() => () => 'ok', { now: () => now });
  await p.connect('a', 80);
  now = 9 * 60_000;
  await p.connect('a', 80);
  assert.equal(circuits.length, 1);
  now = 10 * 60_000;
  circuits[0]!.streams = 0; // its streams ended
  await p.connect('a', 80);
  assert.equal(circuits.length, 2, 'a fresh circuit');
  assert.equal(circuits[0]!.closed, true, 'the dirty, idle one was retired');
  assert.equal(p.counters.retired, 1);
  await p.close();
  assert.ok(circuits.every((c) => c.closed));
});

test('abort: the caller’s signal ends the connect with an AbortError', async () => {
  const { pool: p } = pool(() => () => 'hang');
  const controller = new AbortController();
  const pending = p.connect('a', 80, { signal: controller.signal });
  setTimeout(() => controller.abort(), 20);
  await assert.rejects(pending, AbortError);
  await p.close();
  await assert.rejects(p.connect('a', 80), AbortError, 'closed');
});
