/**
 * Load against a real tor relay of the private network: 1,000 circuits at once on one
 * connection, each fetching a document; what each idle circuit costs us; and handles,
 * file descriptors and heap back to where they were once the connection is closed.
 * The numbers are printed (`# load: …` lines). tor may refuse circuits or be slow under
 * this load: every failure must still be one of our typed errors, and the test says
 * how many there were and why.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { OrportError, Relay, parseHttpResponse, type RelayCircuit } from '../../src/index.js';
import { activeResources, gcFunction, openFds } from '../support/leaks.js';
import { relays, testnetSkipReason } from './testnet.js';

const N = Number(process.env.ORPORT_LOAD_CIRCUITS ?? 1000);
const DOC = 'GET /tor/server/authority HTTP/1.0\r\n\r\n';

interface Sample {
  handles: Record<string, number>;
  fds: number;
  heap: number;
}

async function sample(gc: () => void): Promise<Sample> {
  await new Promise((r) => setTimeout(r, 50));
  gc();
  gc();
  const m = process.memoryUsage();
  return { handles: activeResources(), fds: openFds(), heap: m.heapUsed + m.external };
}

const mb = (n: number) => `${(n / 1048576).toFixed(1)} MB`;
const show = (s: Sample) => `handles ${JSON.stringify(s.handles)}, fds ${s.fds}, heap+external ${mb(s.heap)}`;

function tally(errors: unknown[]): string {
  const byKind = new Map<string, number>();
  for (const e of errors) {
    const key = e instanceof OrportError ? `${e.name} (${e.code}): ${e.message.replace(/\d+/g, 'N').slice(0, 120)}` : `UNTYPED ${String(e)}`;
    byKind.set(key, (byKind.get(key) ?? 0) + 1);
  }
  return [...byKind].map(([k, n]) => `${n}× ${k}`).join('; ') || 'none';
}

describe('load against a real relay', { skip: testnetSkipReason() }, () => {
  it(`${N} concurrent circuits on one connection, each fetching a document; memory per idle circuit; everything released`, async () => {
    const gc = gcFunction();
    const node = relays().find((r) => r.role === 'relay') ?? relays()[0]!;
    // Warm up (TLS, crypto, the JIT), so that the baseline is not the cold process.
    const warm = await Relay.connect('127.0.0.1', node.orPort);
    await Promise.all(Array.from({ length: 20 }, async () => (await warm.createCircuit()).directory(DOC)));
    await warm.close();
    const before = await sample(gc);
    console.log(`# load: before: ${show(before)}`);

    // The work runs in its own function, so that nothing it made is still referenced when
    // the memory after close is measured.
    const run = async () => {
      const relay = await Relay.connect('127.0.0.1', node.orPort, undefined, { identity: { rsa: node.fingerprint } });
      const connected = await sample(gc);

      // 1. N CREATE_FASTs at once.
      const t0 = performance.now();
      const created = await Promise.allSettled(Array.from({ length: N }, () => relay.createCircuit({ timeoutMs: 60_000 })));
      const createMs = performance.now() - t0;
      const circuits = created.filter((r): r is PromiseFulfilledResult<RelayCircuit<Relay>> => r.status === 'fulfilled').map((r) => r.value);
      const createErrors = created.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as unknown);
      const idle = await sample(gc);
      const perCircuit = (idle.heap - connected.heap) / Math.max(1, circuits.length);
      console.log(
        `# load: ${circuits.length}/${N} circuits created at once in ${createMs.toFixed(0)} ms; failures: ${tally(createErrors)}\n` +
          `# load: memory per idle circuit: ${(perCircuit / 1024).toFixed(2)} KiB (heap + external after GC, ${circuits.length} circuits)`,
      );

      // 2. Every circuit fetches a document, all at once.
      const t1 = performance.now();
      const fetched = await Promise.allSettled(circuits.map((c) => c.directory(DOC, 1, { timeoutMs: 120_000 })));
      const fetchMs = performance.now() - t1;
      const ok = fetched.filter((r) => r.status === 'fulfilled' && parseHttpResponse(r.value).statusCode === 200).length;
      const fetchErrors = fetched.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as unknown);
      const bytes = fetched.reduce((n, r) => n + (r.status === 'fulfilled' ? r.value.length : 0), 0);
      console.log(`# load: ${ok}/${circuits.length} documents fetched concurrently in ${fetchMs.toFixed(0)} ms (${mb(bytes)}); failures: ${tally(fetchErrors)}`);
      await relay.close();
      return { createErrors, fetchErrors, created: circuits.length, ok };
    };
    const { createErrors, fetchErrors, created, ok } = await run();

    // 3. Everything came back once the connection closed.
    let after = await sample(gc);
    for (let i = 0; i < 40 && (after.fds > before.fds || Object.entries(after.handles).some(([k, v]) => v > (before.handles[k] ?? 0))); i++) after = await sample(gc);
    console.log(`# load: after close: ${show(after)} (${after.heap >= before.heap ? '+' : ''}${mb(after.heap - before.heap)})`);

    for (const e of [...createErrors, ...fetchErrors]) assert.ok(e instanceof OrportError, `an untyped error: ${String(e)}`);
    assert.ok(created > 0, 'tor created no circuit at all');
    assert.equal(createErrors.length, 0, `tor refused ${createErrors.length} of ${N} circuits: ${tally(createErrors)}`);
    assert.equal(ok, created, `${created - ok} fetches failed: ${tally(fetchErrors)}`);
    for (const [type, n] of Object.entries(after.handles)) assert.ok(n <= (before.handles[type] ?? 0), `leaked ${type}: ${before.handles[type] ?? 0} → ${n}`);
    assert.ok(after.fds <= before.fds, `file descriptors ${before.fds} → ${after.fds}`);
    assert.ok(after.heap - before.heap < 8 * 1048576, `heap + external grew by ${mb(after.heap - before.heap)}`);
  });
});
