/**
 * bench/leaks — connect/close cycles and idle-circuit memory, against the fake relay
 * (src/testing/fakerelay) running in a child process, so that everything measured here
 * is the client's:
 *
 *   npm run bench -- leaks [--cycles 10000] [--concurrency 8] [--circuits 1000] [--warmup 2000]
 *   node --expose-gc --import tsx bench/leaks.ts …          (the same, run directly)
 *
 * 1. Warm-up (`--warmup` cycles, not counted), then the baseline: active handles (process.getActiveResourcesInfo()), open file descriptors
 *    (/proc/self/fd) and heap (process.memoryUsage() after global.gc()).
 * 2. `--cycles` connect/close cycles (link handshake with CERTS verification, then
 *    close), `--concurrency` at a time; every 1000 the same three numbers are printed.
 * 3. Memory per idle circuit: one connection, `--circuits` circuits created (CREATE_FAST)
 *    and left idle; heap + external memory after GC, before and after, divided by N.
 * 4. Everything closed: handles, FDs and heap back to baseline (the run fails otherwise).
 */
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { Relay } from '../src/index.js';
import { startFakeRelay } from '../src/testing/fakerelay.js';

const args = process.argv.slice(2);
const opt = (name: string, fallback: number): number => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};

function gcFunction(): () => void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g) return g;
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

interface Snapshot {
  handles: Record<string, number>;
  fds: number;
  heapUsed: number;
  external: number;
  rss: number;
}

async function snapshot(gc: () => void): Promise<Snapshot> {
  for (let i = 0; i < 3; i++) await new Promise((r) => setTimeout(r, 20));
  gc();
  gc();
  const handles: Record<string, number> = {};
  for (const r of process.getActiveResourcesInfo()) handles[r] = (handles[r] ?? 0) + 1;
  const m = process.memoryUsage();
  return { handles, fds: readdirSync('/proc/self/fd').length, heapUsed: m.heapUsed, external: m.external, rss: m.rss }; // external includes arrayBuffers
}

const mb = (n: number): string => `${(n / 1048576).toFixed(1)} MB`;
const show = (s: Snapshot): string =>
  `handles ${Object.entries(s.handles).map(([k, v]) => `${k}=${v}`).join(' ') || 'none'}; fds ${s.fds}; heap ${mb(s.heapUsed)}; external ${mb(s.external)}; rss ${mb(s.rss)}`;

/** Waits until the handles and FDs are back to `base` (closing sockets take a moment). */
async function backTo(base: Snapshot, gc: () => void): Promise<Snapshot> {
  let s = await snapshot(gc);
  for (let i = 0; i < 100 && (s.fds > base.fds || Object.entries(s.handles).some(([k, v]) => v > (base.handles[k] ?? 0))); i++) {
    await new Promise((r) => setTimeout(r, 50));
    s = await snapshot(gc);
  }
  return s;
}

async function main(): Promise<void> {
  const cycles = opt('cycles', 10_000);
  const concurrency = opt('concurrency', 8);
  const circuits = opt('circuits', 1000);
  const gc = gcFunction();

  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--serve'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`the fake relay exited (${code})`)));
  });
  const target = JSON.parse(line) as { host: string; port: number; identity: { rsa: string; ed25519: string } };
  console.log(`fake relay (child process ${child.pid}) on ${target.host}:${target.port}, identity ${target.identity.rsa}`);

  // Warm up (module loading, TLS contexts, the JIT: the heap grows by ~5 MB over the first
  // ~2,000 connections, then stays flat), then the baseline.
  const warmup = opt('warmup', 2000);
  for (let i = 0; i < warmup; i += concurrency) {
    await Promise.all(Array.from({ length: concurrency }, async () => (await Relay.connect(target.host, target.port, undefined, { identity: target.identity })).close()));
  }
  const base = await backTo(await snapshot(gc), gc);
  console.log(`baseline:            ${show(base)}`);

  // 2. connect/close cycles
  let done = 0;
  let failed = 0;
  const t0 = performance.now();
  let lastReport = t0;
  const worker = async (): Promise<void> => {
    while (done + failed < cycles) {
      const n = done + failed + 1;
      try {
        const relay = await Relay.connect(target.host, target.port, undefined, { identity: target.identity, timeoutMs: 30_000 });
        await relay.close();
        done++;
      } catch (err) {
        failed++;
        if (failed <= 5) console.log(`cycle ${n} failed: ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`);
      }
      if ((done + failed) % 1000 === 0 && performance.now() - lastReport > 10) {
        lastReport = performance.now();
        const s = await snapshot(gc);
        console.log(`after ${String(done + failed).padStart(6)} cycles: ${((lastReport - t0) / 1000).toFixed(1)} s; ${show(s)}`);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const cycleMs = performance.now() - t0;
  const afterCycles = await backTo(base, gc);
  console.log(
    `${cycles} connect/close cycles (${concurrency} at a time): ${(cycleMs / 1000).toFixed(1)} s, ${(cycleMs / cycles).toFixed(2)} ms per cycle, ` +
      `${(cycles / (cycleMs / 1000)).toFixed(0)} per second; ${failed} failed`,
  );
  console.log(`after the cycles:    ${show(afterCycles)}`);

  // 3. memory per idle circuit
  const relay = await Relay.connect(target.host, target.port, undefined, { identity: target.identity });
  const withConnection = await snapshot(gc);
  const open = [];
  const tc = performance.now();
  for (let i = 0; i < circuits; i += 100) {
    open.push(...(await Promise.all(Array.from({ length: Math.min(100, circuits - i) }, () => relay.createCircuit({ timeoutMs: 30_000 })))));
  }
  const createMs = performance.now() - tc;
  const withCircuits = await snapshot(gc);
  const perCircuit = (withCircuits.heapUsed + withCircuits.external - withConnection.heapUsed - withConnection.external) / circuits;
  console.log(`${circuits} idle circuits on one connection (created in ${createMs.toFixed(0)} ms): ${show(withCircuits)}`);
  console.log(
    `memory per idle circuit: ${(perCircuit / 1024).toFixed(2)} KiB (heap ${((withCircuits.heapUsed - withConnection.heapUsed) / circuits / 1024).toFixed(2)} KiB + external ` +
      `${((withCircuits.external - withConnection.external) / circuits / 1024).toFixed(2)} KiB, after GC); RSS grew ${((withCircuits.rss - withConnection.rss) / circuits / 1024).toFixed(2)} KiB per circuit (includes OpenSSL's cipher and hash contexts)`,
  );
  const fetched = await Promise.all(open.slice(0, 100).map((c) => c.directory('GET /tor/doc HTTP/1.0\r\n\r\n', 1)));
  if (fetched.some((r) => r.length < 2000)) throw new Error('a fetch came back short');
  await relay.close();
  open.length = 0;

  // 4. back to baseline
  const end = await backTo(base, gc);
  console.log(`at the end:          ${show(end)}`);
  const leakedHandles = Object.entries(end.handles).filter(([k, v]) => v > (base.handles[k] ?? 0));
  const heapGrowth = end.heapUsed + end.external - base.heapUsed - base.external;
  console.log(`handles ${leakedHandles.length ? `LEAKED ${leakedHandles.map(([k, v]) => `${k} ${base.handles[k] ?? 0}→${v}`).join(', ')}` : 'back to baseline'}; fds ${base.fds} → ${end.fds}; heap+external ${heapGrowth >= 0 ? '+' : ''}${mb(heapGrowth)} vs baseline`);
  child.stdin!.end();
  await new Promise((r) => child.once('exit', r));
  if (leakedHandles.length || end.fds > base.fds || heapGrowth > 8 * 1048576 || failed > 0) process.exitCode = 1;
}

if (args[0] === '--serve') {
  // The child: a fake relay that serves small documents; prints its address.
  const fake = await startFakeRelay({ documents: { '/tor/doc': 'x'.repeat(2000) } });
  process.stdout.write(`${JSON.stringify({ host: fake.host, port: fake.port, identity: fake.identity })}\n`);
  process.stdin.resume();
  process.stdin.on('end', () => void fake.close().then(() => process.exit(0)));
} else {
  await main();
}
