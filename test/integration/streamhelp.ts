/**
 * test/integration/streamhelp — what the stream tests share: an HTTP/1.0 GET over a Tor
 * stream read to its end (the body's sha256, size and status; `onChunk` may pause the
 * reader), a loopback echo server, and an upload through it (`echoRoundTrip`).
 */
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:net';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { TorClient } from '../../src/client/torclient.js';
import type { TorStream } from '../../src/client/stream.js';
import { Network } from '../../src/dir/network.js';
import { loadTestnet } from './testnet.js';

/** No body byte for this long (outside `onChunk`) fails a download with the stream's flow state. */
export const DOWNLOAD_STALL_MS = 30_000;

/**
 * GET the test file over `stream` (HTTP/1.0) and return the body's sha256 and length. A
 * stall (no byte for DOWNLOAD_STALL_MS while we wait) destroys the stream with an error
 * that says its flow-control state (TorStream#describeFlow), instead of waiting for the
 * test's own bound.
 */
export async function download(stream: Duplex, path: string, onChunk?: (n: number) => Promise<void> | void): Promise<{ sha256: string; bytes: number; status: number }> {
  stream.write(`GET ${path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n`);
  const hash = createHash('sha256');
  let head = Buffer.alloc(0);
  let inBody = false;
  let bytes = 0;
  let status = 0;
  let lastByte = Date.now();
  let inCallback = false;
  const watchdog = setInterval(() => {
    if (inCallback || Date.now() - lastByte < DOWNLOAD_STALL_MS) return;
    const flow = (stream as Partial<TorStream>).describeFlow?.() ?? 'not a TorStream';
    stream.destroy(new Error(`download of ${path} stalled: no byte for ${DOWNLOAD_STALL_MS / 1000} s after ${bytes} body bytes; ${flow}`));
  }, 1000);
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      lastByte = Date.now();
      let data = chunk;
      if (!inBody) {
        head = Buffer.concat([head, data]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) continue;
        status = Number(/^HTTP\/1\.\d (\d{3})/.exec(head.subarray(0, end).toString('latin1'))?.[1] ?? 0);
        data = head.subarray(end + 4);
        inBody = true;
      }
      hash.update(data);
      bytes += data.length;
      inCallback = true;
      await onChunk?.(bytes);
      inCallback = false;
      lastByte = Date.now();
    }
  } finally {
    clearInterval(watchdog);
  }
  return { sha256: hash.digest('hex'), bytes, status };
}

/** An echo server on 127.0.0.1 (a free port). */
export async function listenEcho(): Promise<{ server: Server; port: number }> {
  const server = createServer((socket) => socket.pipe(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as { port: number }).port };
}

/**
 * Writes `bytes` of a fixed pattern to `stream` (connected to an echo server), honouring
 * backpressure, and reads the echo back: whether it came back intact.
 */
export async function echoRoundTrip(stream: Duplex, bytes: number): Promise<{ intact: boolean }> {
  const data = Buffer.alloc(bytes);
  for (let i = 0; i + 4 <= data.length; i += 4) data.writeUInt32LE((i * 2246822519) >>> 0, i);
  const hash = createHash('sha256');
  let got = 0;
  const done = new Promise<void>((resolve, reject) => {
    stream.on('data', (c: Buffer) => {
      hash.update(c);
      got += c.length;
      if (got >= data.length) resolve();
    });
    stream.once('error', reject);
  });
  for (let i = 0; i < data.length; i += 65536) if (!stream.write(data.subarray(i, i + 65536))) await new Promise((r) => stream.once('drain', r));
  await done;
  return { intact: hash.digest('hex') === createHash('sha256').update(data).digest('hex') };
}

/** A TorClient bootstrapped from the shared network's authorities, and a loopback echo server beside it. */
export interface ClientAndEcho {
  readonly client: TorClient;
  readonly echoPort: number;
  close(): Promise<void>;
}

export async function startClientAndEcho(): Promise<ClientAndEcho> {
  const client = await TorClient.create({ network: Network.fromTorrc(readFileSync(loadTestnet().networkFile, 'utf8')), refresh: false, timeoutMs: 60_000 });
  const { server, port } = await listenEcho();
  return {
    client,
    echoPort: port,
    close: async () => {
      await client.close();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** `orport ARGS…` from the source tree (tsx): its exit code and output, killed after `timeout` ms. */
export function runCli(args: readonly string[], timeout: number): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), ...args], { timeout, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) =>
      done({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/**
 * `orport socks --listen 127.0.0.1:0 --network FILE --verbose` as a child, then
 * `curl --socks5-hostname` of `url` through it: the body's sha256, what orport printed, and
 * its exit status after SIGTERM. The listening line is awaited for at most `timeoutMs`
 * (as is curl); the child is SIGKILLed whatever happens.
 */
export async function curlThroughOrportSocks(networkFile: string, url: string, timeoutMs: number): Promise<{ sha256: string; stdout: string; exitCode: number | null }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'socks', '--listen', '127.0.0.1:0', '--network', networkFile, '--verbose'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  try {
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`orport socks printed no "listening on" line in ${timeoutMs} ms: ${out}`)), timeoutMs);
      child.stdout!.on('data', (d: Buffer) => {
        out += d;
        const m = /listening on 127\.0\.0\.1:(\d+)/.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`orport socks exited ${code}: ${out}`));
      });
    });
    const sum = await new Promise<string>((resolve, reject) =>
      execFile('sh', ['-c', `curl -sS --max-time ${Math.ceil(timeoutMs / 1000)} --socks5-hostname 127.0.0.1:${port} ${url} | sha256sum`], { timeout: timeoutMs + 10_000 }, (err, stdout) => (err ? reject(err) : resolve(stdout))),
    );
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    return { sha256: sum.split(' ')[0]!, stdout: out, exitCode: await exited };
  } finally {
    child.kill('SIGKILL');
  }
}
