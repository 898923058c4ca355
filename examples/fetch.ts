/**
 * examples/fetch — WHATWG fetch over Tor: `client.fetch(url)` returns a Response whose
 * body streams through a three-hop circuit (HTTPS is TLS over the stream, with normal
 * certificate checks). Prints the status, the size and the sha256 of the body.
 *
 *   node --import tsx examples/fetch.ts NETWORK_FILE URL
 */
import { createHash } from 'node:crypto';
import { Network, TorClient } from '../src/index.js';

const [networkFile, url = 'https://check.torproject.org/'] = process.argv.slice(2);
const client = await TorClient.create({ network: networkFile ? await Network.fromFile(networkFile) : Network.PUBLIC });
try {
  const response = await client.fetch(url);
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of response.body!) {
    hash.update(chunk);
    bytes += chunk.length;
  }
  console.log(`HTTP ${response.status}: ${bytes} bytes, sha256 ${hash.digest('hex')}`);
} finally {
  await client.close();
}
