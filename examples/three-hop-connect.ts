/**
 * examples/three-hop-connect — a TCP-like stream through a three-hop circuit: bootstrap a
 * verified view of the network, build a circuit (printed hop by hop), open a stream to
 * host:port through its exit, speak HTTP/1.0 on it, and print the body's size and sha256.
 *
 *   node --import tsx examples/three-hop-connect.ts NETWORK_FILE HOST PORT [PATH]
 *
 * NETWORK_FILE is a torrc with DirAuthority lines (the private network writes one:
 * `network.torrc`); without it, the public Tor network.
 */
import { createHash } from 'node:crypto';
import { Network, TorClient } from '../src/index.js';

const [networkFile, host = '127.0.0.1', port = '80', path = '/'] = process.argv.slice(2);
const client = await TorClient.create({ network: networkFile ? await Network.fromFile(networkFile) : Network.PUBLIC });
try {
  const circuit = await client.buildCircuit({ exitPort: Number(port) });
  for (const hop of circuit.hops) console.log(`hop ${hop.index + 1}: ${hop.nickname} ${hop.rsa} (${hop.handshake}, ${hop.ms.toFixed(1)} ms)`);
  const stream = await circuit.openStream(host, Number(port)); // BEGIN → CONNECTED
  console.log(`connected to ${stream.remoteAddress}:${stream.remotePort} through ${circuit.hops[2]!.nickname}`);
  // Don't end() our side to mark the request's end: tor has no half-close, END closes both ways.
  stream.write(`GET ${path} HTTP/1.0\r\nHost: ${host}\r\n\r\n`);
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  const response = Buffer.concat(chunks);
  const body = response.subarray(response.indexOf('\r\n\r\n') + 4);
  console.log(`${response.subarray(0, response.indexOf('\r\n')).toString()}: ${body.length} bytes, sha256 ${createHash('sha256').update(body).digest('hex')}`);
  await circuit.close();
} finally {
  await client.close();
}
