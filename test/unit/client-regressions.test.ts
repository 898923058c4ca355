/**
 * Client-layer regressions against the fake relay: stream ids reused after a stream
 * ends, a throwing 'data' listener, and the order of a non-optimistic request.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { Relay, parseHttpResponse } from '../../src/index.js';
import { QUICK_ACK_BULK_BYTES, QUICK_ACK_INTERVAL_MS, quickAckDue } from '../../src/client/relay.js';
import { buildCertChain, type GeneratedChain } from '../../src/testing/certchain.js';
import { startFakeRelay, type FakeRelay, type FakeRelayOptions } from '../../src/testing/fakerelay.js';
import { noLeaks } from '../support/leaks.js';

const DOC = 'router x\n'.repeat(200);
let chain: GeneratedChain;
before(() => {
  chain = buildCertChain();
});

async function withFake(options: FakeRelayOptions, fn: (fake: FakeRelay, relay: Relay) => Promise<void>): Promise<void> {
  await noLeaks(async () => {
    const fake = await startFakeRelay({ chain, documents: { '/doc': DOC }, ...options });
    const relay = await Relay.connect(fake.host, fake.port, undefined, { timeoutMs: 2000, identity: fake.identity });
    try {
      await fn(fake, relay);
    } finally {
      await relay.close();
      await fake.close();
    }
    assert.deepEqual(fake.violations, []);
  });
}

const collect = async (readable: AsyncIterable<unknown>): Promise<Buffer> => {
  const chunks: Buffer[] = [];
  for await (const c of readable) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
};

test('a finished directoryStream never ends a later stream that got its stream id', async () => {
  await withFake({}, async (_fake, relay) => {
    const circuit = await relay.createCircuit();
    const first = circuit.directoryStream('GET /doc HTTP/1.0\r\n\r\n');
    const firstBody = await collect(first);
    // Stream id 1 is free again: the next stream takes it while the first readable is
    // destroyed (autoDestroy) — that must not END the new one.
    const second = circuit.directoryStream('GET /doc HTTP/1.0\r\n\r\n');
    first.destroy();
    const secondBody = await collect(second);
    assert.equal(parseHttpResponse(firstBody).statusCode, 200);
    assert.ok(secondBody.equals(firstBody));
  });
});

test("a 'data' listener that throws fails its own stream, not the connection", async () => {
  await withFake({}, async (_fake, relay) => {
    const circuit = await relay.createCircuit();
    const readable = circuit.directoryStream('GET /doc HTTP/1.0\r\n\r\n');
    const failed = new Promise<Error>((resolve) => readable.on('error', resolve));
    readable.on('data', () => {
      throw new Error('a bug in the caller');
    });
    assert.match((await failed).message, /a bug in the caller/);
    const again = parseHttpResponse(await circuit.directory('GET /doc HTTP/1.0\r\n\r\n', 9));
    assert.equal(again.statusCode, 200, 'the circuit and the connection carry on');
    assert.ok(relay.isAlive());
  });
});

test('a non-optimistic request goes out only after CONNECTED', async () => {
  const order: string[] = [];
  await withFake(
    {
      hooks: {
        beginDir: async (_conn, next) => {
          order.push('BEGIN_DIR');
          await new Promise((r) => setTimeout(r, 50)); // CONNECTED comes late
          order.push('CONNECTED');
          await next();
        },
        request: (_conn, next) => {
          order.push('request');
          return next();
        },
      },
    },
    async (_fake, relay) => {
      const circuit = await relay.createCircuit();
      const body = parseHttpResponse(await circuit.directory('GET /doc HTTP/1.0\r\n\r\n', 1, { optimistic: false }));
      assert.equal(body.statusCode, 200);
    },
  );
  assert.deepEqual(order, ['BEGIN_DIR', 'CONNECTED', 'request']);
});

test('quick ACKs: every small chunk is answered; large (bulk) chunks at most one per QUICK_ACK_INTERVAL_MS', () => {
  const small = QUICK_ACK_BULK_BYTES - 1;
  // A small chunk right after another still gets its VPADDING (a time-only limit left consensus.z waiting ~40 ms).
  assert.equal(quickAckDue(small, 1, 0), true);
  assert.equal(quickAckDue(QUICK_ACK_BULK_BYTES, 1, 0), false);
  assert.equal(quickAckDue(QUICK_ACK_BULK_BYTES, QUICK_ACK_INTERVAL_MS, 0), true);
  assert.equal(quickAckDue(16384, 0, -Infinity), true, 'the first one goes');
});

test('quick ACKs on the wire: a response in small chunks gets a VPADDING for each', async () => {
  let vpaddings = 0;
  await withFake(
    {
      hooks: {
        request: async (conn, _next, _circuit, stream) => {
          const before = conn.cellsIn.length;
          for (let i = 0; i < 5; i++) {
            stream.sendData(Buffer.from(i === 0 ? 'HTTP/1.0 200 OK\r\n\r\n' : `part ${i}\n`));
            await new Promise((r) => setTimeout(r, 20));
          }
          vpaddings = conn.cellsIn.slice(before).filter((c) => c.command === 128).length;
          stream.end();
        },
      },
    },
    async (_fake, relay) => {
      const circuit = await relay.createCircuit();
      const response = parseHttpResponse(await circuit.directory('GET /doc HTTP/1.0\r\n\r\n', 1));
      assert.equal(Buffer.from(response.body).toString(), 'part 1\npart 2\npart 3\npart 4\n');
    },
  );
  assert.ok(vpaddings >= 4, `${vpaddings} VPADDING cells for 5 chunks 20 ms apart`);
});
