/**
 * bench/soak — keeps a TorClient busy on the private network for `--minutes` (default 10):
 * a few workers open streams through `client.connect` at random (an echo of a random
 * size, or a part of the test file, some dropped midway, some with an isolation key),
 * check what came back, and close them; circuits are retired after `--dirtiness` seconds
 * (default 60: many retirements and rebuilds in the run). Every minute it prints the
 * heap, active handles and open file descriptors, streams done and failed, circuits
 * built and retired. A failed stream is counted and shown; exit status 1 if any failed.
 *
 *   npm run bench -- soak [--minutes 10] [--workers 4] [--dirtiness 60]
 *
 * Layer: a benchmark (uses src/client, src/testnet; nothing uses it).
 */
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Network } from '../src/dir/network.js';
import { TorClient } from '../src/client/torclient.js';
import type { TestnetDescription } from '../src/testnet/index.js';
import { runOnTestnet } from './testnet-run.js';

const args = process.argv.slice(2);
const opt = (name: string, fallback: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const minutes = opt('minutes', 10);
const workers = opt('workers', 4);
const dirtinessS = opt('dirtiness', 60);

const say = (m: string) => process.stderr.write(`bench/soak: ${m}\n`);

function gauges(): { heapMiB: number; handles: number; fds: number } {
  return {
    heapMiB: process.memoryUsage().heapUsed / 1048576,
    handles: process.getActiveResourcesInfo().filter((r) => r !== 'TTYWrap').length,
    fds: readdirSync('/proc/self/fd').length,
  };
}

async function soak(description: TestnetDescription, signal: AbortSignal): Promise<number> {
  const echo = createServer((s) => s.pipe(s));
  await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
  const echoPort = (echo.address() as { port: number }).port;
  const client = await TorClient.create({ network: Network.fromTorrc(readFileSync(description.networkFile, 'utf8')), refresh: false, signal, maxCircuitDirtinessMs: dirtinessS * 1000 });
  const counts = { done: 0, failed: 0, bytes: 0 };
  const failures: string[] = [];
  const deadline = Date.now() + minutes * 60_000;

  const echoOnce = async (isolation: string | undefined) => {
    const size = randomInt(1, 512 * 1024);
    const data = randomBytes(size);
    const stream = await client.connect('127.0.0.1', echoPort, { isolation, timeoutMs: 30_000 });
    const hash = createHash('sha256');
    let got = 0;
    const done = new Promise<void>((resolve, reject) => {
      stream.on('data', (c: Buffer) => {
        hash.update(c);
        got += c.length;
        if (got >= size) resolve();
      });
      stream.once('error', reject);
      stream.once('close', () => (got >= size ? resolve() : reject(new Error(`closed after ${got} of ${size} bytes`))));
    });
    stream.write(data);
    await done;
    stream.destroy();
    if (hash.digest('hex') !== createHash('sha256').update(data).digest('hex')) throw new Error('echo differs');
    counts.bytes += size * 2;
  };
  const fileOnce = async (isolation: string | undefined) => {
    const stream = await client.connect('127.0.0.1', description.http.port, { isolation, timeoutMs: 30_000 });
    const stopAt = Math.random() < 0.5 ? randomInt(1, 4 * 1024 * 1024) : Infinity;
    stream.write(`GET ${new URL(description.http.url).pathname} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n`);
    let got = 0;
    for await (const c of stream as AsyncIterable<Buffer>) {
      got += c.length;
      if (got >= stopAt) break; // drops the stream midway (END from our side)
    }
    stream.destroy();
    if (stopAt === Infinity && got < description.http.fileBytes) throw new Error(`file: ${got} bytes`);
    counts.bytes += got;
  };

  const worker = async (w: number) => {
    while (Date.now() < deadline && !signal.aborted) {
      const isolation = Math.random() < 0.3 ? `w${w}-${randomInt(3)}` : undefined;
      try {
        await (Math.random() < 0.6 ? echoOnce(isolation) : fileOnce(isolation));
        counts.done++;
      } catch (err) {
        counts.failed++;
        if (failures.length < 20) failures.push(err instanceof Error ? `${err.name}: ${err.message}` : String(err));
      }
      await sleep(randomInt(0, 200));
    }
  };

  const start = Date.now();
  const report = () => {
    const g = gauges();
    const e = client.stats.exits;
    say(
      `${((Date.now() - start) / 60_000).toFixed(1)} min: heap ${g.heapMiB.toFixed(1)} MiB, handles ${g.handles}, fds ${g.fds}; streams ${counts.done} ok, ${counts.failed} failed, ${(counts.bytes / 1e6).toFixed(0)} MB; circuits built ${e.built}, retired ${e.retired}, held ${e.circuits}; connections ${client.stats.channels.open}`,
    );
  };
  const timer = setInterval(report, 60_000);
  try {
    await Promise.all(Array.from({ length: workers }, (_, w) => worker(w)));
  } finally {
    clearInterval(timer);
    report();
    await client.close();
    await new Promise((resolve) => echo.close(resolve));
  }
  if (failures.length) say(`failures: ${failures.join(' | ')}`);
  return counts.failed ? 1 : 0;
}

runOnTestnet({ name: 'soak', say, httpFileBytes: 20 * 1024 * 1024 }, soak).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(`bench/soak: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  },
);
