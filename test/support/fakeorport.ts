/**
 * test/support/fakeorport — a minimal fake ORPort for loopback tests: TLS with a given
 * certificate, then VERSIONS (3, 4, 5), a given CERTS cell, AUTH_CHALLENGE and NETINFO
 * in answer to the client's VERSIONS. It answers nothing else (no CREATE_FAST), and
 * records what each connection sent after its VERSIONS cell.
 */
import assert from 'node:assert/strict';
import { createServer, type TLSSocket, type Server } from 'node:tls';
import { Address, AuthChallengeCell, CertsCell, NetinfoCell, VersionsCell, type Certificate } from '../../src/index.js';

export interface FakeRelay {
  port: number;
  /** Bytes each connection sent after its VERSIONS cell. */
  afterVersions: Uint8Array[];
  close(): Promise<void>;
}

/** A fake ORPort presenting `tls` (cert and key PEM) and sending `certs` in its CERTS cell. */
export async function fakeRelay(tls: { cert: string; key: string }, certs: readonly Certificate[]): Promise<FakeRelay> {
  const afterVersions: Uint8Array[] = [];
  const sockets = new Set<TLSSocket>();
  const server: Server = createServer({ cert: tls.cert, key: tls.key }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let buffered = Buffer.alloc(0);
    let index = -1;
    socket.on('data', (chunk: Buffer) => {
      if (index >= 0) {
        afterVersions[index] = Buffer.concat([afterVersions[index]!, chunk]);
        return;
      }
      buffered = Buffer.concat([buffered, chunk]);
      if (buffered.length < 5) return;
      const length = buffered.readUInt16BE(3);
      if (buffered.length < 5 + length) return;
      const theirs: number[] = [];
      for (let i = 0; i < length; i += 2) theirs.push(buffered.readUInt16BE(5 + i));
      const lp = Math.max(...theirs.filter((v) => v >= 3 && v <= 5));
      index = afterVersions.push(buffered.subarray(5 + length)) - 1;
      socket.write(new VersionsCell([3, 4, 5]).pack(3));
      socket.write(new CertsCell(certs).pack(lp));
      socket.write(new AuthChallengeCell([3]).pack(lp));
      socket.write(new NetinfoCell(new Address('127.0.0.1'), [new Address('127.0.0.1')], new Date()).pack(lp));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  assert.ok(address && typeof address === 'object');
  return {
    port: address.port,
    afterVersions,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
