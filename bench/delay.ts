/**
 * bench/delay — how fast the test network's delay forwarder (src/testnet/delay.ts) is.
 *
 *   npm run bench -- delay [--mib N] [--latency 0,50] [--connections 1,4] [--buffer BYTES]
 *
 * A bulk transfer on loopback: this process writes N MiB (default 256) per connection
 * as fast as backpressure allows into a forwarder that runs in a child process, which
 * forwards to a sink in this process; per latency and connection count it prints the
 * rate (MB/s from the first write to the sink's last byte), the forwarder's CPU time
 * per MB (the child's process.cpuUsage, user + system) and its peak buffered bytes,
 * next to the same transfer straight to the sink. Loopback only; no tor.
 *
 * Layer: bench. It measures; it asserts nothing.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Server } from 'node:net';
import { fileURLToPath } from 'node:url';
import { DelayForwarder } from '../src/testnet/delay.js';

const MB = 1e6;
const MiB = 1024 * 1024;

interface ChildRequest {
  readonly kind: 'start' | 'usage' | 'stop';
  readonly targetPort?: number;
  readonly delayMs?: number;
  readonly maxBufferedBytes?: number;
}

async function child(): Promise<void> {
  let forwarder: DelayForwarder | undefined;
  process.on('message', (m: ChildRequest) => {
    void (async () => {
      if (m.kind === 'start') {
        forwarder = await DelayForwarder.start({ listenPort: 0, targetPort: m.targetPort ?? 0, delayMs: m.delayMs ?? 0, maxBufferedBytes: m.maxBufferedBytes });
        process.send?.({ port: forwarder.port });
      } else if (m.kind === 'usage') {
        process.send?.({ cpu: process.cpuUsage(), stats: forwarder?.stats() });
      } else {
        await forwarder?.close();
        process.send?.({ stopped: true });
        process.disconnect();
      }
    })();
  });
}

function ask<T>(proc: ChildProcess, request: ChildRequest): Promise<T> {
  const answer = once(proc, 'message') as Promise<[T]>;
  proc.send(request);
  return answer.then(([m]) => m);
}

/** A sink that counts bytes; resolves `done` when `expected` bytes arrived. */
async function sink(expected: number): Promise<{ server: Server; port: number; done: Promise<number> }> {
  let received = 0;
  let finish: (t: number) => void = () => undefined;
  const done = new Promise<number>((resolve) => (finish = resolve));
  const server = createServer((socket) => {
    socket.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received >= expected) finish(performance.now());
    });
    socket.on('error', () => undefined);
  });
  server.listen({ host: '127.0.0.1', port: 0 });
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port, done };
}

/** Writes `bytes` into 127.0.0.1:port with backpressure. */
async function send(port: number, bytes: number): Promise<void> {
  const socket = connect({ host: '127.0.0.1', port });
  socket.setNoDelay(true);
  await once(socket, 'connect');
  const block = Buffer.alloc(64 * 1024, 0x5a);
  for (let sent = 0; sent < bytes; sent += block.length) {
    if (!socket.write(block)) await once(socket, 'drain');
  }
  socket.end();
}

interface Row {
  readonly rateMBs: number;
  readonly cpuMsPerMB: number;
  readonly peakBuffered: number;
}

async function run(bytesPerConnection: number, connections: number, delayMs: number | undefined, maxBufferedBytes: number | undefined): Promise<Row> {
  const total = bytesPerConnection * connections;
  const target = await sink(total);
  let port = target.port;
  let proc: ChildProcess | undefined;
  let cpu0: NodeJS.CpuUsage | undefined;
  try {
    if (delayMs !== undefined) {
      proc = fork(fileURLToPath(import.meta.url), ['--child'], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      port = (await ask<{ port: number }>(proc, { kind: 'start', targetPort: target.port, delayMs, maxBufferedBytes })).port;
      cpu0 = (await ask<{ cpu: NodeJS.CpuUsage }>(proc, { kind: 'usage' })).cpu;
    }
    const t0 = performance.now();
    await Promise.all(Array.from({ length: connections }, () => send(port, bytesPerConnection)));
    const t1 = await target.done;
    let cpuMsPerMB = NaN;
    let peakBuffered = 0;
    if (proc && cpu0) {
      const usage = await ask<{ cpu: NodeJS.CpuUsage; stats: { peakBufferedBytes: number } }>(proc, { kind: 'usage' });
      cpuMsPerMB = (usage.cpu.user - cpu0.user + usage.cpu.system - cpu0.system) / 1000 / (total / MB);
      peakBuffered = usage.stats.peakBufferedBytes;
      await ask(proc, { kind: 'stop' });
    }
    return { rateMBs: total / MB / ((t1 - t0) / 1000), cpuMsPerMB, peakBuffered };
  } finally {
    proc?.kill();
    target.server.close();
  }
}

function list(text: string | undefined, fallback: number[]): number[] {
  return text === undefined ? fallback : text.split(',').map(Number);
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const opt = (name: string): string | undefined => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const mib = Number(opt('--mib') ?? 256);
  const latencies = list(opt('--latency'), [0, 50]);
  const connectionCounts = list(opt('--connections'), [1, 4]);
  const buffer = opt('--buffer') === undefined ? undefined : Number(opt('--buffer'));
  console.log(`delay forwarder, loopback bulk transfer, ${mib} MiB per connection; node ${process.version}`);
  console.log('connections  latency   rate MB/s   forwarder CPU ms/MB   peak buffered/direction   direct MB/s');
  for (const connections of connectionCounts) {
    const direct = await run(mib * MiB, connections, undefined, undefined);
    for (const latency of latencies) {
      const row = await run(mib * MiB, connections, latency, buffer);
      console.log(
        `${String(connections).padStart(11)}  ${`${latency} ms`.padStart(7)}   ${row.rateMBs.toFixed(0).padStart(9)}   ${row.cpuMsPerMB.toFixed(3).padStart(19)}   ${`${(row.peakBuffered / MiB).toFixed(2)} MiB`.padStart(23)}   ${direct.rateMBs.toFixed(0).padStart(11)}`,
      );
    }
  }
}

if (process.argv.includes('--child')) void child();
else
  main().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
