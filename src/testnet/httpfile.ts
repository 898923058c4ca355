/**
 * testnet/httpfile — the network's web server: one random file and its digest.
 *
 * `createRandomFile()` writes `bytes` random bytes (generated in 1 MiB chunks,
 * hashed on the way) and returns the SHA-256. `startFileServer()` serves it on
 * 127.0.0.1 from this process: `GET|HEAD /file` (with Content-Length) and
 * `GET /file.sha256`; everything else is 404. `close()` drops open connections
 * and resolves once the server has closed, so nothing is left listening.
 */
import { EnvironmentError } from '../errors.js';
import { createHash, randomFill } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { PortInUseError } from './errors.js';

function randomChunk(size: number): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    randomFill(Buffer.allocUnsafe(size), (err, buf) => (err ? reject(err) : resolve(buf)));
  });
}
const CHUNK = 1024 * 1024;

export interface RandomFile {
  readonly path: string;
  readonly bytes: number;
  readonly sha256: string;
}

/** Writes `bytes` random bytes to `path`, without holding the whole file in memory. */
export async function createRandomFile(path: string, bytes: number): Promise<RandomFile> {
  const hash = createHash('sha256');
  const out = createWriteStream(path, { mode: 0o644 });
  const closed = new Promise<void>((resolve, reject) => {
    out.once('close', resolve);
    out.once('error', reject);
  });
  try {
    for (let written = 0; written < bytes; ) {
      const size = Math.min(CHUNK, bytes - written);
      const chunk = await randomChunk(size);
      hash.update(chunk);
      if (!out.write(chunk)) await new Promise<void>((resolve) => out.once('drain', resolve));
      written += size;
    }
  } finally {
    out.end();
  }
  await closed;
  return { path, bytes, sha256: hash.digest('hex') };
}

export interface FileServer {
  readonly port: number;
  readonly url: string;
  close(): Promise<void>;
}

/** Serves `file` on 127.0.0.1:`port`. */
export async function startFileServer(file: RandomFile, port: number): Promise<FileServer> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/file' && (req.method === 'GET' || req.method === 'HEAD')) {
      res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': String(file.bytes), 'X-Sha256': file.sha256 });
      if (req.method === 'HEAD') {
        res.end();
        return;
      }
      const stream = createReadStream(file.path);
      stream.on('error', () => res.destroy());
      res.on('close', () => stream.destroy());
      stream.pipe(res);
      return;
    }
    if (path === '/file.sha256' && req.method === 'GET') {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.end(`${file.sha256}  file\n`);
      return;
    }
    res.writeHead(404, { 'Content-Type': 'text/plain' });
    res.end('not found\n');
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      reject(err.code === 'EADDRINUSE' ? new PortInUseError(port, 'HTTP file server') : new EnvironmentError(`the HTTP file server cannot listen on 127.0.0.1:${port}: ${err.message}`, { cause: err }));
    };
    server.once('error', onError);
    server.listen({ host: '127.0.0.1', port, exclusive: true }, () => {
      server.off('error', onError);
      resolve();
    });
  });
  let closing: Promise<void> | undefined;
  return {
    port,
    url: `http://127.0.0.1:${port}/file`,
    close(): Promise<void> {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      });
      return closing;
    },
  };
}
