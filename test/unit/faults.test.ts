/**
 * The fault matrix: orport against a hostile relay (src/testing/fakerelay, in-process on
 * loopback, with a real CERTS chain). Each row scripts one misbehaviour and checks:
 *
 *   - the exact typed error (class and code) — or, where the spec says to ignore the
 *     fault, that nothing fails;
 *   - that it came within the configured timeout (TimeoutError rows: at it);
 *   - that every socket, server, timer and file descriptor was given back (noLeaks), and
 *     that no wait still watches the AbortSignal every call was given;
 *   - that other circuits on the same connection still work, where the spec allows.
 *
 * The README's "Security" section lists these rows and their errors.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  CertificateError,
  CircuitDestroyedError,
  HandshakeError,
  IdentityMismatchError,
  LimitError,
  NetworkError,
  OrportError,
  ProtocolError,
  Relay,
  StreamClosedError,
  TimeoutError,
  DestroyCell,
  VPaddingCell,
  parseHttpResponse,
  type RelayCircuit,
} from '../../src/index.js';
import { buildCertChain, type GeneratedChain } from '../../src/testing/certchain.js';
import { startFakeRelay, syntheticByte, syntheticDocument, type FakeRelay, type FakeRelayOptions } from '../../src/testing/fakerelay.js';
import { gcFunction, noLeaks } from '../support/leaks.js';
import { failure, type Failure } from '../support/failure.js';
import { getEventListeners } from 'node:events';

/** The timeout every wait in this file is configured with. */
const TIMEOUT = 1000;
const DOC = 'network-status-version 3\n'.repeat(400); // 10 KB: ~21 DATA cells
const DOCS = { '/tor/doc': DOC, '/tor/big': syntheticDocument(50 * 1024 * 1024), '/tor/1k-cells': syntheticDocument(498 * 1000) };
const GET = (path = '/tor/doc') => `GET ${path} HTTP/1.0\r\n\r\n`;

let chain: GeneratedChain;
let otherChain: GeneratedChain;
before(() => {
  chain = buildCertChain();
  otherChain = buildCertChain();
});

/**
 * One AbortSignal given to every connect, createCircuit, directory and directoryStream
 * here: after each row, no wait may still be watching it (its listeners are released).
 */
const signal = new AbortController().signal;

/** Runs `fn` against a fresh fake relay, inside a leak check; checks the relay's hooks didn't throw. */
async function withFake(options: FakeRelayOptions, fn: (fake: FakeRelay) => Promise<void>, expectViolations = false): Promise<void> {
  await noLeaks(async () => {
    const fake = await startFakeRelay({ chain, documents: DOCS, ...options });
    try {
      await fn(fake);
    } finally {
      await fake.close();
    }
    assert.equal(getEventListeners(signal, 'abort').length, 0, 'every wait removed its abort listener');
    assert.deepEqual(fake.errors, [], 'the fake relay’s hooks ran without exceptions');
    if (!expectViolations) assert.deepEqual(fake.violations, [], 'the client broke no rule the relay checks');
  });
}

function connect(fake: FakeRelay, options: Parameters<typeof Relay.connect>[3] = {}): Promise<Relay> {
  return Relay.connect(fake.host, fake.port, undefined, { timeoutMs: TIMEOUT, identity: fake.identity, signal, ...options });
}

/** The error is of `cls` with `code`, and came before the timeout (or, for TimeoutError, at it). */
function expectError<E extends OrportError>(f: Failure, cls: abstract new (...args: never[]) => E, code: string, timeoutMs = TIMEOUT): E {
  assert.ok(f.error instanceof cls, `expected ${cls.name}, got ${f.error.name} (${f.error.code}): ${f.error.message}`);
  assert.equal(f.error.code, code);
  if (cls === (TimeoutError as unknown)) {
    assert.ok(f.ms >= timeoutMs - 5 && f.ms < timeoutMs + 750, `timed out after ${f.ms.toFixed(0)} ms (configured ${timeoutMs} ms)`);
  } else {
    assert.ok(f.ms < timeoutMs, `failed after ${f.ms.toFixed(0)} ms, not within the ${timeoutMs} ms timeout`);
  }
  return f.error;
}

/** Waits until `condition` holds (for what the fake relay sees of our cells, which arrive a moment later). */
async function until(condition: () => boolean, what: string, ms = TIMEOUT): Promise<void> {
  const deadline = performance.now() + ms;
  while (!condition()) {
    assert.ok(performance.now() < deadline, `not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A circuit fetches the test document completely. */
async function fetchesDocument(circuit: RelayCircuit, streamId = 1): Promise<void> {
  const response = parseHttpResponse(await circuit.directory(GET(), streamId, { timeoutMs: TIMEOUT * 3, signal }));
  assert.equal(response.statusCode, 200);
  assert.equal(Buffer.from(response.body).toString(), DOC);
}

/** Connects, creates circuits A (index 0, the one scripted to fail) and B; returns them. */
async function twoCircuits(fake: FakeRelay): Promise<{ relay: Relay; a: RelayCircuit; b: RelayCircuit }> {
  const relay = await connect(fake);
  const a = await relay.createCircuit({ timeoutMs: TIMEOUT, signal });
  const b = await relay.createCircuit({ timeoutMs: TIMEOUT, signal });
  return { relay, a, b };
}

// -------------------------------------------------------------------------------------
// The link handshake

test('row: no common link version → HandshakeError', async () => {
  await withFake({ versions: [1, 2] }, async (fake) => {
    const err = expectError(await failure(() => connect(fake)), HandshakeError, 'E_HANDSHAKE');
    assert.match(err.message, /no common link protocol: we support 3, 4, 5, but the relay supports 1, 2/);
  });
});

test('row: a first cell other than VERSIONS → HandshakeError', async () => {
  await withFake({ hooks: { versions: (c) => c.write(c.certsCell()) } }, async (fake) => {
    const err = expectError(await failure(() => connect(fake)), HandshakeError, 'E_HANDSHAKE');
    assert.match(err.message, /expected the relay's VERSIONS cell first/);
  });
});

test('row: an odd-length VERSIONS → HandshakeError (caused by the DecodeError)', async () => {
  await withFake({ hooks: { versions: (c) => c.write(Uint8Array.of(0, 0, 7, 0, 3, 0, 4, 5)) } }, async (fake) => {
    const err = expectError(await failure(() => connect(fake)), HandshakeError, 'E_HANDSHAKE');
    assert.match(err.message, /VERSIONS/);
    assert.equal((err.cause as OrportError | undefined)?.code, 'E_DECODE');
  });
});

test('row: a truncated cell, then silence → TimeoutError at the configured timeout', async () => {
  await withFake({ hooks: { certs: (c) => c.write(c.certsCell().subarray(0, 100)) } }, async (fake) => {
    expectError(await failure(() => connect(fake)), TimeoutError, 'E_TIMEOUT');
  });
});

test('row: a variable-length cell claiming 65,535 bytes, then a trickle → TimeoutError at the configured timeout', async () => {
  const header = Uint8Array.of(0, 0, 0, 0, 129, 0xff, 0xff); // CERTS, 4-byte circuit id, Len 65535
  await withFake({ hooks: { certs: (c) => c.trickle(Buffer.concat([header, Buffer.alloc(0xffff, 1)]), { chunk: 16, intervalMs: 20 }) } }, async (fake) => {
    expectError(await failure(() => connect(fake)), TimeoutError, 'E_TIMEOUT');
  });
});

test('row: a flood of VPADDING during the handshake → LimitError long before the timeout', async () => {
  const padding = Buffer.concat(Array.from({ length: 16 }, () => new VPaddingCell(4096).pack(5)));
  let sent = 0;
  const flood = async (c: Parameters<NonNullable<NonNullable<FakeRelayOptions['hooks']>['certs']>>[0]) => {
    while (!c.isClosed) {
      c.write(padding);
      sent += padding.length;
      await c.flush();
      await c.drained();
    }
  };
  await withFake({ hooks: { certs: flood } }, async (fake) => {
    const err = expectError(await failure(() => connect(fake)), LimitError, 'E_LIMIT');
    assert.match(err.message, /during the link handshake/);
    assert.ok(sent < 8 * 1024 * 1024, `the relay got to send ${sent} bytes before we hung up`);
  });
});

test('a flood of VPADDING after the handshake is ignored (padding is legal): circuits carry on', async () => {
  const padding = new VPaddingCell(2000).pack(5);
  await withFake({ hooks: { data: (c, next) => { c.write(padding); c.write(padding); return next(); } } }, async (fake) => {
    const { relay, a, b } = await twoCircuits(fake);
    await Promise.all([fetchesDocument(a), fetchesDocument(b)]);
    await relay.close();
  });
});

test('row: a 1-byte-per-second slowloris during the handshake → TimeoutError at the configured timeout', async () => {
  await withFake({ hooks: { versions: (c) => c.trickle(Buffer.concat([c.versionsCell(), c.handshakeCells()]), { chunk: 1, intervalMs: 1000 }) } }, async (fake) => {
    expectError(await failure(() => connect(fake, { timeoutMs: 1500 })), TimeoutError, 'E_TIMEOUT', 1500);
  });
});

test('row: garbage after the TLS handshake → HandshakeError', async () => {
  await withFake({ hooks: { connection: (c) => c.write(Buffer.from('\x16\x03\x01garbage, not a cell: GET / HTTP/1.1\r\n\r\n', 'latin1')) } }, async (fake) => {
    expectError(await failure(() => connect(fake)), HandshakeError, 'E_HANDSHAKE');
  });
});

test('garbage of any kind, after TLS or after the link handshake: only typed errors, nothing leaks', async () => {
  const garbage = fc.uint8Array({ minLength: 1, maxLength: 3000 });
  // Right after TLS: the handshake fails (HandshakeError), or waits for the rest of a plausible cell (TimeoutError).
  const early = fc.sample(garbage, { numRuns: 8, seed: 6 });
  // After the link handshake, while a directory request waits.
  const late = fc.sample(garbage, { numRuns: 8, seed: 7 });
  let i = 0;
  await withFake({
    hooks: {
      connection: (c, next) => (i < early.length ? c.write(early[i]!) : next()),
      request: (c, next, _circuit, stream) => (stream.id === 1 ? c.write(late[i - early.length]!) : next()),
    },
  }, async (fake) => {
    for (; i < early.length; i++) {
      const f = await failure(() => connect(fake, { timeoutMs: 300, signal }));
      assert.ok(['E_HANDSHAKE', 'E_TIMEOUT', 'E_LIMIT'].includes(f.error.code), `${f.error.code}: ${f.error.message}`);
      assert.ok(f.ms < 1000);
    }
    for (; i < early.length + late.length; i++) {
      const relay = await connect(fake);
      const circuit = await relay.createCircuit({ signal });
      const t0 = performance.now();
      const outcome = await circuit.directory(GET(), 1, { timeoutMs: 300, signal }).then(
        () => undefined,
        (err: unknown) => err,
      );
      if (outcome !== undefined) assert.ok(outcome instanceof OrportError, String(outcome));
      assert.ok(performance.now() - t0 < 1000);
      await relay.close();
    }
  });
});

test('row: TCP reset in the middle of the CERTS cell → NetworkError (ECONNRESET)', async () => {
  await withFake({ hooks: { certs: (c) => { c.write(c.certsCell().subarray(0, 300)); return c.reset(); } } }, async (fake) => {
    const err = expectError(await failure(() => connect(fake)), NetworkError, 'E_NETWORK');
    assert.equal(err.errno, 'ECONNRESET');
  });
});

test('row: a CERTS chain for another identity → IdentityMismatchError (pinned) / CertificateError (not bound to the TLS key)', async () => {
  // A consistent chain of another relay: it verifies, but isn't the relay we pinned.
  await withFake({ chain: otherChain }, async (fake) => {
    const err = expectError(await failure(() => connect(fake, { identity: chain.identity })), IdentityMismatchError, 'E_IDENTITY_MISMATCH');
    assert.equal(err.seen, otherChain.identity.rsa);
  });
  // Another relay's CERTS behind our TLS key: the link cert doesn't certify this TLS certificate.
  await withFake({ certificates: otherChain.certificates }, async (fake) => {
    const err = expectError(await failure(() => connect(fake, { identity: undefined })), CertificateError, 'E_CERTS');
    assert.equal(err.check, 'tls-certificate');
  });
});

test('row: clock skew of days in NETINFO → no error; relay.clockSkewMs reports it', async () => {
  const DAY = 86_400_000;
  for (const skew of [-3 * DAY, 3 * DAY]) {
    await withFake({ clockSkewMs: skew }, async (fake) => {
      const relay = await connect(fake);
      assert.ok(Math.abs(relay.clockSkewMs - skew) < 2000, `clockSkewMs ${relay.clockSkewMs}, skew ${skew}`);
      await fetchesDocument(await relay.createCircuit({ signal }));
      await relay.close();
    });
  }
});

// -------------------------------------------------------------------------------------
// Circuits and streams

test('row: a wrong KH in CREATED_FAST → HandshakeError and DESTROY (PROTOCOL); other circuits unaffected', async () => {
  await withFake({ hooks: { createFast: (_c, next, circuit) => (circuit.index === 0 ? circuit.createdFast({ tamperKeyHash: true }) : next()) } }, async (fake) => {
    const relay = await connect(fake);
    const err = expectError(await failure(() => relay.createCircuit({ timeoutMs: TIMEOUT, signal })), HandshakeError, 'E_HANDSHAKE');
    assert.match(err.message, /key hash KH does not match/);
    await fetchesDocument(await relay.createCircuit({ signal }));
    const [conn] = fake.connections;
    await until(() => conn!.destroysIn.length > 0, 'the relay saw our DESTROY');
    assert.deepEqual(conn!.destroysIn.map((d) => d.reason), [1], 'we sent DESTROY with reason PROTOCOL');
    await relay.close();
  });
});

test('row: an inbound relay digest mismatch → ProtocolError E_BAD_CELL_AUTH; other circuits unaffected', async () => {
  const hooks: FakeRelayOptions['hooks'] = {
    data: (_c, next, circuit, stream, body, index) => (circuit.index === 0 && index === 3 ? circuit.send(2, stream.id, body, { corruptDigest: true }) : next()),
  };
  await withFake({ hooks }, async (fake) => {
    const { relay, a, b } = await twoCircuits(fake);
    const err = expectError(await failure(() => a.directory(GET(), 1, { timeoutMs: TIMEOUT, signal })), ProtocolError, 'E_BAD_CELL_AUTH');
    assert.match(err.message, /not recognized/);
    assert.equal(a.isOpen, false);
    await fetchesDocument(b);
    assert.ok(relay.isAlive());
    await relay.close();
  });
});

test('row: an inbound RELAY_EARLY → ProtocolError; other circuits unaffected', async () => {
  const hooks: FakeRelayOptions['hooks'] = {
    data: (_c, next, circuit, stream, body, index) => (circuit.index === 0 && index === 1 ? circuit.send(2, stream.id, body, { early: true }) : next()),
  };
  await withFake({ hooks }, async (fake) => {
    const { relay, a, b } = await twoCircuits(fake);
    const err = expectError(await failure(() => a.directory(GET(), 1, { timeoutMs: TIMEOUT, signal })), ProtocolError, 'E_PROTOCOL');
    assert.match(err.message, /RELAY_EARLY/);
    await fetchesDocument(b);
    await relay.close();
  });
});

test('row: cells for a stream id we never opened are dropped (tor-spec 6.2); the stream we opened completes', async () => {
  const hooks: FakeRelayOptions['hooks'] = {
    data: (_c, next, circuit, stream, body, index) => {
      if (index === 0) {
        circuit.send(2, 999, body);
        circuit.send(4, 998, new Uint8Array(0));
        circuit.send(3, 997, Uint8Array.of(6));
      }
      return next();
    },
  };
  await withFake({ hooks }, async (fake) => {
    const relay = await connect(fake);
    const circuit = await relay.createCircuit({ signal });
    await fetchesDocument(circuit);
    assert.equal(circuit.counters.dropped, 3);
    assert.ok(circuit.isOpen);
    await relay.close();
  });
});

test('row: DESTROY in the middle of a response → CircuitDestroyedError with the relay’s reason; other circuits unaffected', async () => {
  const hooks: FakeRelayOptions['hooks'] = {
    data: (_c, next, circuit, _stream, _body, index) => (circuit.index === 0 && index === 5 ? circuit.destroy('RESOURCELIMIT') : next()),
  };
  await withFake({ hooks }, async (fake) => {
    const { relay, a, b } = await twoCircuits(fake);
    const err = expectError(await failure(() => a.directory(GET(), 1, { timeoutMs: TIMEOUT, signal })), CircuitDestroyedError, 'E_CIRCUIT_DESTROYED');
    assert.equal(err.by, 'relay');
    assert.equal(err.reason, 'RESOURCELIMIT');
    assert.equal(a.isOpen, false);
    await fetchesDocument(b);
    await relay.close();
  });
});

test('row: END in the middle of a response → StreamClosedError with the relay’s reason; the circuit carries on', async () => {
  const hooks: FakeRelayOptions['hooks'] = {
    data: (_c, next, circuit, stream, _body, index) => (circuit.index === 0 && stream.id === 1 && index === 5 ? stream.end('CONNRESET') : next()),
  };
  await withFake({ hooks }, async (fake) => {
    const { relay, a, b } = await twoCircuits(fake);
    const err = expectError(await failure(() => a.directory(GET(), 1, { timeoutMs: TIMEOUT, signal })), StreamClosedError, 'E_STREAM_CLOSED');
    assert.equal(err.by, 'relay');
    assert.equal(err.reason, 'CONNRESET');
    assert.ok(a.isOpen, 'END closes the stream, not the circuit');
    await fetchesDocument(a, 2);
    await fetchesDocument(b);
    await relay.close();
  });
});

test('row: more DATA than the deliver window allows → ProtocolError; the circuit is destroyed, others unaffected', async () => {
  await withFake({ hooks: { beginDir: (_c, next, circuit, stream) => { stream.ignoreWindows = circuit.index === 0; return next(); } } }, async (fake) => {
    const { relay, a, b } = await twoCircuits(fake);
    const t0 = performance.now();
    const readable = a.directoryStream(GET('/tor/1k-cells'), { timeoutMs: TIMEOUT, highWaterMark: 16 * 1024, signal });
    const error = await new Promise<unknown>((resolve) => readable.once('error', resolve)); // never read: a slow consumer
    const err = expectError({ error: error as OrportError, ms: performance.now() - t0 }, ProtocolError, 'E_PROTOCOL');
    assert.match(err.message, /more DATA cells than its deliver window allows/);
    assert.equal(a.isOpen, false);
    const [conn] = fake.connections;
    await until(() => conn!.destroysIn.some((d) => d.reason === 1), 'we sent DESTROY with reason PROTOCOL');
    await fetchesDocument(b);
    await relay.close();
  });
});

test('row: a 50 MB directory response — directoryStream keeps memory bounded for a slow reader; directory() stops at maxResponseBytes with a LimitError', async () => {
  const gc = gcFunction();
  await withFake({}, async (fake) => {
    const relay = await connect(fake);
    const circuit = await relay.createCircuit({ signal });
    // The size cap: a LimitError as soon as the response passes it; the circuit stays usable.
    const capped = expectError(await failure(() => circuit.directory(GET('/tor/big'), 1, { timeoutMs: 5000, maxResponseBytes: 1024 * 1024, signal })), LimitError, 'E_LIMIT', 5000);
    assert.equal(capped.limit, 1024 * 1024);
    await fetchesDocument(circuit, 2);

    // Streaming, read slowly (a pause every 512 KiB): the relay may only run one stream window ahead.
    gc();
    const base = process.memoryUsage();
    let peak = 0;
    const samples: number[] = [];
    let maxBuffered = 0;
    let received = 0;
    let checked = 0;
    let nextPause = 512 * 1024;
    const t0 = performance.now();
    const readable = circuit.directoryStream(GET('/tor/big'), { streamId: 3, timeoutMs: 120_000, signal });
    let headerLeft = -1;
    for await (const chunk of readable as AsyncIterable<Buffer>) {
      let body = chunk;
      if (headerLeft < 0) {
        const end = chunk.indexOf('\r\n\r\n');
        assert.ok(end > 0);
        body = chunk.subarray(end + 4);
        headerLeft = 0;
      }
      for (let i = 0; i < body.length; i += 4099) assert.equal(body[i], syntheticByte(received + i), `byte ${received + i}`);
      checked++;
      received += body.length;
      if (received >= nextPause) {
        nextPause += 512 * 1024;
        await new Promise((r) => setTimeout(r, 2));
        maxBuffered = Math.max(maxBuffered, readable.readableLength);
        if (nextPause % (8 * 1024 * 1024) < 512 * 1024) {
          // Twice, a turn apart: buffers outside the heap are freed by the first one's cleanup.
          gc();
          await new Promise((r) => setImmediate(r));
          gc();
          const m = process.memoryUsage();
          const grown = m.heapUsed + m.arrayBuffers - base.heapUsed - base.arrayBuffers;
          samples.push(grown);
          peak = Math.max(peak, grown);
        }
      }
    }
    const seconds = (performance.now() - t0) / 1000;
    assert.equal(received, 50 * 1024 * 1024);
    assert.ok(maxBuffered <= 64 * 1024 + 500 * 498, `the Readable buffered ${maxBuffered} bytes`);
    // No growth with the bytes streamed (first sample 8 MB in, last 48 MB in), and a ceiling.
    assert.ok(samples.length >= 5, `${samples.length} samples`);
    const trend = samples[samples.length - 1]! - samples[0]!;
    assert.ok(trend < 4 * 1024 * 1024, `heap + buffers grew by ${(trend / 1048576).toFixed(1)} MB from 8 MB to 48 MB streamed (samples ${samples.map((x) => (x / 1048576).toFixed(1)).join(', ')} MB)`);
    assert.ok(peak < 16 * 1024 * 1024, `heap + buffers grew by ${(peak / 1048576).toFixed(1)} MB while streaming 50 MB`);
    console.log(`# 50 MB streamed in ${seconds.toFixed(1)} s (${(50 / seconds).toFixed(1)} MB/s); Readable buffered ≤ ${(maxBuffered / 1024).toFixed(0)} KiB; heap + buffers ≤ +${(peak / 1048576).toFixed(1)} MB after GC`);
    await relay.close();
  });
});

test('row: TCP reset in the middle of a cell → NetworkError (ECONNRESET) for everything on the connection', async () => {
  const hooks: FakeRelayOptions['hooks'] = {
    data: (c, next, circuit, stream, body, index) => {
      if (index !== 3) return next();
      c.write(circuit.relayCell(2, stream.id, body).subarray(0, 200));
      return c.reset();
    },
  };
  await withFake({ hooks }, async (fake) => {
    const relay = await connect(fake);
    const circuit = await relay.createCircuit({ signal });
    const err = expectError(await failure(() => circuit.directory(GET(), 1, { timeoutMs: TIMEOUT, signal })), NetworkError, 'E_NETWORK');
    assert.equal(err.errno, 'ECONNRESET');
    assert.equal(relay.isAlive(), false);
    assert.equal(relay.closeReason, err);
    await relay.close();
  });
});

test('row: a truncated cell mid-response, then silence → TimeoutError at the configured timeout', async () => {
  const hooks: FakeRelayOptions['hooks'] = {
    data: (c, next, circuit, stream, body, index) => {
      if (index !== 2) return next();
      c.write(circuit.relayCell(2, stream.id, body).subarray(0, 300));
      return c.sleep(60_000);
    },
  };
  await withFake({ hooks }, async (fake) => {
    const relay = await connect(fake);
    const circuit = await relay.createCircuit({ signal });
    expectError(await failure(() => circuit.directory(GET(), 1, { timeoutMs: TIMEOUT, signal })), TimeoutError, 'E_TIMEOUT');
    await relay.close();
  });
});

test('row: a DESTROY for a circuit id we never used is ignored; the connection and its circuits carry on', async () => {
  const hooks: FakeRelayOptions['hooks'] = {
    createFast: (c, next, circuit) => {
      c.writeCell(new DestroyCell((circuit.id ^ 0x1234) >>> 0, 'PROTOCOL'));
      c.writeCell(new DestroyCell(0x80000001 === circuit.id ? 0x80000002 : 0x80000001, 'OR_IDENTITY'));
      return next();
    },
  };
  await withFake({ hooks }, async (fake) => {
    const { relay, a, b } = await twoCircuits(fake);
    await Promise.all([fetchesDocument(a), fetchesDocument(b)]);
    assert.ok(relay.isAlive());
    await relay.close();
  });
});
