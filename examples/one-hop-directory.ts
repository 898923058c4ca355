/**
 * examples/one-hop-directory — the README's example: connect to a relay's ORPort,
 * create a circuit, fetch the consensus through it, and list the relays.
 *
 *   node --import tsx examples/one-hop-directory.ts 127.0.0.1 15003
 *
 * (Inside the private network: `npx orport testnet -- node --import tsx examples/one-hop-directory.ts 127.0.0.1 15003`.)
 */
import { Relay, parseConsensus, parseHttpResponse } from '../src/index.js';

const [host = '127.0.0.1', port = '15003'] = process.argv.slice(2);

const relay = await Relay.connect(host, Number(port)); // TLS, VERSIONS, CERTS, NETINFO
try {
  console.log(`link protocol ${relay.linkProtocol}, relay clock skew ${relay.clockSkewMs} ms, it sees us at ${relay.ourAddress}`);
  const circuit = await relay.createCircuit(); // CREATE_FAST
  const raw = await circuit.directory('GET /tor/status-vote/current/consensus HTTP/1.0\r\n\r\n', 1, { timeoutMs: 10_000 });
  const { statusCode, body } = parseHttpResponse(raw);
  const consensus = parseConsensus(Buffer.from(body).toString('utf8'));
  console.log(`HTTP ${statusCode}: ${consensus.routers.length} relays`);
  for (const r of consensus.routers) console.log(`  ${r.nickname.padEnd(10)} ${r.fingerprint} ${r.flags.join(' ')}`);
  await circuit.close(); // DESTROY
} finally {
  await relay.close(); // DESTROY the rest, close TLS
}
