/**
 * examples/http-agent — Node's http.get over Tor with `client.httpAgent` (the same agent
 * works for axios, got and anything that takes an http.Agent; `client.httpsAgent` for
 * https). Prints the status, the size and the sha256 of the body.
 *
 *   node --import tsx examples/http-agent.ts NETWORK_FILE URL
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import { Network, TorClient } from '../src/index.js';

const [networkFile, url = 'http://example.com/'] = process.argv.slice(2);
const client = await TorClient.create({ network: networkFile ? await Network.fromFile(networkFile) : Network.PUBLIC });
try {
  const { status, bytes, sha256 } = await new Promise<{ status: number; bytes: number; sha256: string }>((resolve, reject) => {
    http
      .get(url, { agent: client.httpAgent }, (res) => {
        const hash = createHash('sha256');
        let bytes = 0;
        res.on('data', (chunk: Buffer) => {
          hash.update(chunk);
          bytes += chunk.length;
        });
        res.once('end', () => resolve({ status: res.statusCode ?? 0, bytes, sha256: hash.digest('hex') }));
        res.once('error', reject);
      })
      .once('error', reject);
  });
  console.log(`HTTP ${status}: ${bytes} bytes, sha256 ${sha256}`);
} finally {
  await client.close();
}
