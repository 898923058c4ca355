/**
 * The relay client's edges against a real relay: response size cap, timeouts and
 * aborts on a live circuit, DESTROY and close semantics, no handles left behind, and
 * the `orport dir` command.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { AbortError, CircuitDestroyedError, ChannelClosedError, LimitError, Relay, TimeoutError, parseHttpResponse } from '../../src/index.js';
import { relays, testnetSkipReason } from './testnet.js';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));
const AUTHORITY = 'GET /tor/server/authority HTTP/1.0\r\n\r\n';

function handles(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of process.getActiveResourcesInfo()) counts[r] = (counts[r] ?? 0) + 1;
  return counts;
}

describe('relay client lifecycle', { skip: testnetSkipReason() }, () => {
  it('caps a directory() response with a LimitError; the circuit stays usable', async () => {
    const relay = await Relay.connect('127.0.0.1', relays()[0]!.orPort);
    try {
      const circuit = await relay.createCircuit();
      await assert.rejects(circuit.directory('GET /tor/server/all HTTP/1.0\r\n\r\n', 1, { maxResponseBytes: 1000 }), LimitError);
      const ok = parseHttpResponse(await circuit.directory(AUTHORITY, 2));
      assert.equal(ok.statusCode, 200);
    } finally {
      await relay.close();
    }
  });

  it('times out and aborts a directory() call; other streams carry on', async () => {
    const relay = await Relay.connect('127.0.0.1', relays()[1]!.orPort);
    try {
      const circuit = await relay.createCircuit();
      // A loopback answer can come within 1 ms: hold the event loop past the deadline, so the
      // timer (timers run before I/O in a loop turn) fires before any answer can be read.
      const timedOut = circuit.directory(AUTHORITY, 1, { timeoutMs: 1 });
      for (const until = performance.now() + 5; performance.now() < until; );
      await assert.rejects(timedOut, TimeoutError);
      const controller = new AbortController();
      const pending = circuit.directory(AUTHORITY, 2, { signal: controller.signal });
      controller.abort();
      await assert.rejects(pending, AbortError);
      await assert.rejects(circuit.directory(AUTHORITY, 3, { signal: AbortSignal.abort() }), AbortError);
      assert.equal(parseHttpResponse(await circuit.directory(AUTHORITY, 4)).statusCode, 200);
      assert.ok(circuit.isOpen);
    } finally {
      await relay.close();
    }
  });

  it('circuit.close() sends DESTROY: later calls fail; close is idempotent', async () => {
    const relay = await Relay.connect('127.0.0.1', relays()[2]!.orPort);
    try {
      const circuit = await relay.createCircuit();
      const other = await relay.createCircuit();
      await circuit.close();
      await circuit.close();
      assert.equal(circuit.isOpen, false);
      await assert.rejects(circuit.directory(AUTHORITY, 1), CircuitDestroyedError);
      assert.equal(parseHttpResponse(await other.directory(AUTHORITY, 1)).statusCode, 200, 'the other circuit is unaffected');
    } finally {
      await relay.close();
    }
  });

  it('relay.close() ends everything, is idempotent, and leaves no handle open', async () => {
    const node = relays()[3]!;
    const before = handles();
    for (let i = 0; i < 20; i++) {
      const relay = await Relay.connect('127.0.0.1', node.orPort);
      const circuit = await relay.createCircuit();
      const outcome = circuit.directory(AUTHORITY, 1).then(
        () => undefined,
        (err: unknown) => err,
      );
      await Promise.all([relay.close(), relay.close()]);
      const err = await outcome;
      assert.ok(err instanceof ChannelClosedError, `the pending fetch fails with the close: ${String(err)}`);
      assert.equal(relay.isAlive(), false);
      assert.ok(relay.connectionTime > 0);
      await assert.rejects(relay.createCircuit(), ChannelClosedError);
    }
    await new Promise((r) => setTimeout(r, 50));
    const after = handles();
    for (const [type, n] of Object.entries(after)) assert.ok(n <= (before[type] ?? 0), `leaked ${type}: ${before[type] ?? 0} → ${n}`);
  });

  it('orport dir prints a document and exits 0; a missing document exits 1', async () => {
    const node = relays()[0]!;
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'dir', `127.0.0.1:${node.orPort}`, '/tor/status-vote/current/consensus.z', '--link', '4'], { cwd: root, timeout: 30_000 });
    assert.match(stdout, /^network-status-version 3/);
    assert.ok(stdout.includes(node.fingerprint.slice(0, 4)) || stdout.includes('relay0') || stdout.length > 1000);
    await assert.rejects(run(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'dir', `127.0.0.1:${node.orPort}`, '/tor/nothing-here'], { cwd: root, timeout: 30_000 }), (err: { code?: number; stderr?: string }) => {
      assert.equal(err.code, 1);
      assert.match(err.stderr ?? '', /answered 404/);
      return true;
    });
  });
});
