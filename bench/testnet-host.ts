/**
 * bench/testnet-host — the private network of a bench, in a process of its own: the
 * launcher's own work (the latency forwarders that carry every ORPort link, the HTTP test
 * file's server, log scans) then runs on another event loop and another process's CPU
 * clock than the client being measured.
 *
 *   node --import tsx bench/testnet-host.ts '{"options": <startTestnet options>, "verbose": false}'
 *
 * Started by bench/testnet-run inside the bench's namespace (it never isolates itself).
 * Boots with startTestnet, writes one line to stdout — {"jsonPath": …} when up, or
 * {"error": …} — and stops the network (every tor, every forwarder) when its stdin ends
 * (the bench finished or died) or on SIGINT / SIGTERM, then exits.
 *
 * Layer: bench support (uses src/testnet). Measures nothing itself.
 */
import { startTestnet, type Testnet, type TestnetOptions } from '../src/testnet/index.js';

const { options, verbose } = JSON.parse(process.argv[2] ?? '{}') as { options: TestnetOptions; verbose?: boolean };
const stopping = new AbortController();
let testnet: Testnet | undefined;
let stopped: Promise<void> | undefined;

function stop(): Promise<void> {
  stopping.abort();
  stopped ??= (async () => {
    await testnet?.stop();
  })();
  return stopped;
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => void stop().finally(() => process.exit(0)));
process.stdin.on('end', () => void stop().finally(() => process.exit(0)));
process.stdin.resume();

try {
  testnet = await startTestnet({ ...options, signal: stopping.signal, log: verbose ? (m) => process.stderr.write(`  ${m}\n`) : undefined });
  if (stopping.signal.aborted) await stop();
  else process.stdout.write(`${JSON.stringify({ jsonPath: testnet.jsonPath })}\n`);
} catch (err) {
  process.stdout.write(`${JSON.stringify({ error: err instanceof Error ? err.message : String(err) })}\n`);
  await stop();
  process.exit(1);
}
