/**
 * Client-layer regressions against the fake relay: stream ids reused after a stream
 * ends, a throwing 'data' listener, and the order of a non-optimistic request.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { Relay, parseHttpResponse } from '../../src/index.js';
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
