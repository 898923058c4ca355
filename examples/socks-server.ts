/**
 * examples/socks-server — a SOCKS5 proxy into Tor for programs that speak SOCKS (curl
 * --socks5-hostname, browsers, ssh -o ProxyCommand…): hostnames are resolved at the
 * exit; distinct username/password pairs get distinct circuits. Runs until Ctrl-C.
 *
 *   node --import tsx examples/socks-server.ts NETWORK_FILE [PORT]
 *   curl --socks5-hostname 127.0.0.1:PORT http://…
 */
import { Network, TorClient } from '../src/index.js';

const [networkFile, port = '0'] = process.argv.slice(2);
const client = await TorClient.create({ network: networkFile ? await Network.fromFile(networkFile) : Network.PUBLIC });
const server = await client.listenSocks({ port: Number(port) }); // 127.0.0.1 unless told otherwise
const { address, port: bound } = server.address();
console.log(`listening on ${address}:${bound}`);
const stop = async () => {
  await client.close(); // closes the SOCKS server too
  process.exit(0);
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
