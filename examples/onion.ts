/**
 * examples/onion — an onion service (v3) by its address: `client.fetch('http://….onion/')`
 * finds the service's descriptor at its HSDirs, meets the service at a rendezvous point
 * and sends the request to it through the circuit's virtual hop; nothing goes to an exit.
 * Prints the status, the body's size and sha256.
 *
 *   node --import tsx examples/onion.ts NETWORK_FILE http://<56 characters>.onion/PATH
 *
 * NETWORK_FILE is a torrc with DirAuthority lines (the private network writes one; with
 * `orport testnet --onion` its network.json names the service); '-' for the public network.
 */
import { createHash } from 'node:crypto';
import { Network, OnionServiceError, TorClient } from '../src/index.js';

const [networkFile = '-', url] = process.argv.slice(2);
if (!url) throw new Error('usage: examples/onion.ts NETWORK_FILE http://<address>.onion/PATH');
const client = await TorClient.create({ network: networkFile === '-' ? Network.PUBLIC : await Network.fromFile(networkFile) });
try {
  const response = await client.fetch(url);
  const body = Buffer.from(await response.arrayBuffer());
  console.log(`${response.status} ${new URL(url).hostname}: ${body.length} bytes, sha256 ${createHash('sha256').update(body).digest('hex')}`);
  const { onions } = client.stats;
  console.log(`rendezvous circuits opened: ${onions.opened}, streams: ${onions.streams}`);
} catch (err) {
  // fetch wraps transport errors (TypeError, with ours as the cause): E_ONION_DESC_NOT_FOUND, E_ONION_INTRO_FAILED… (SOCKS F0, F2)
  const cause = err instanceof TypeError && err.cause ? err.cause : err;
  if (cause instanceof OnionServiceError) console.error(`${cause.code}: ${cause.message}`);
  process.exitCode = 1;
} finally {
  await client.close();
}
