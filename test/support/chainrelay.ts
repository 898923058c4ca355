/**
 * test/support/chainrelay — the fake relay of orport/testing set up for certificate
 * tests: it presents `chain`'s TLS certificate, sends `certificates` in its CERTS cell
 * (a broken or foreign chain), answers no CREATE_FAST, and reports how many bytes each
 * connection sent after its VERSIONS cell.
 */
import type { Certificate } from '../../src/index.js';
import type { GeneratedChain } from '../../src/testing/certchain.js';
import { startFakeRelay, type FakeConnection, type FakeRelay } from '../../src/testing/fakerelay.js';

export interface ChainRelay {
  readonly port: number;
  readonly fake: FakeRelay;
  /** Bytes each connection so far sent after its VERSIONS cell, in connection order. */
  afterVersions(): number[];
  close(): Promise<void>;
}

export async function chainRelay(chain: GeneratedChain, certificates: readonly Certificate[] = chain.certificates): Promise<ChainRelay> {
  const connections: FakeConnection[] = [];
  const fake = await startFakeRelay({
    chain,
    certificates,
    hooks: {
      connection: (conn, next) => {
        connections.push(conn);
        return next();
      },
      createFast: () => undefined,
    },
  });
  return {
    port: fake.port,
    fake,
    afterVersions: () => connections.map((c) => c.bytesAfterVersions),
    close: () => fake.close(),
  };
}
