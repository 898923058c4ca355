/**
 * scripts/capture-session — records a whole client session with a real tor relay, byte
 * for byte as it came out of TLS, so that tests can replay it into the channel and
 * circuit machines (and mutate it: the fuzz tests' "real captures").
 *
 *   node --import tsx src/cli/main.ts testnet -- node --import tsx scripts/capture-session.ts test/vectors/session-testnet.json
 *
 * The session: link handshake, one CREATE_FAST circuit, and directory requests on
 * streams 1, 2, 3 (sent with their BEGIN_DIR), and the TLS certificate the relay
 * presented. Everything random on our side is fixed (circuit id, CREATE_FAST's X), so a
 * replay with `replaySession()` of test/support/session.ts recreates the same keys and
 * decrypts the same cells.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { connect } from 'node:tls';
import { createHash } from 'node:crypto';
import { Address, OrportError } from '../src/index.js';
import { ChannelMachine } from '../src/proto/channel.js';
import { BeginDirMsg } from '../src/codec/relaymsg.js';
import { toHex, utf8 } from '../src/codec/bytes.js';

export const CAPTURE_CIRC_OFFSET = 0x1234;
export const CAPTURE_X = new Uint8Array(createHash('sha1').update('orport session capture').digest());
export const CAPTURE_REQUESTS = [
  'GET /tor/server/authority HTTP/1.0\r\n\r\n',
  'GET /tor/status-vote/current/consensus HTTP/1.0\r\n\r\n',
  'GET /tor/server/all.z HTTP/1.0\r\n\r\n',
];

const path = process.env.ORPORT_TESTNET_JSON;
if (!path) throw new Error('run under `orport testnet -- …` (ORPORT_TESTNET_JSON is not set)');
const description = JSON.parse(readFileSync(path, 'utf8')) as { nodes: { nick: string; role: string; orPort?: number }[] };
const node = description.nodes.find((n) => n.role === 'relay' && n.orPort)!;

let torVersion = 'unknown';
try {
  torVersion = execFileSync('tor', ['--version'], { encoding: 'utf8' }).split('\n')[0]!.trim();
} catch {
  // not on PATH
}

const chunks: Uint8Array[] = [];
const socket = connect({ host: '127.0.0.1', port: node.orPort!, rejectUnauthorized: false, minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' });
const ended = new Set<number>();
let linkProtocol = 0;
let circId = 0;
let tlsCertificate = new Uint8Array(0);
const done = new Promise<void>((resolve, reject) => {
  const channel = new ChannelMachine(
    [3, 4, 5],
    { send: (bytes) => socket.write(bytes) },
    {
      handshakeComplete: (result) => {
        linkProtocol = result.linkProtocol.version;
        const circuit = channel.newCircuit({
          opened: () => {
            CAPTURE_REQUESTS.forEach((request, i) => {
              const id = i + 1;
              circuit.openStream(id, new BeginDirMsg(), {
                connected: () => undefined,
                data: () => true,
                ended: (error) => {
                  if (error) reject(error);
                  ended.add(id);
                  if (ended.size === CAPTURE_REQUESTS.length) resolve();
                },
              });
              circuit.sendData(id, utf8.encode(request));
            });
          },
          destroyed: (error) => reject(error),
        });
        circId = circuit.circId;
        circuit.startCreateFast();
      },
      closed: (error: OrportError) => reject(error),
    },
    {
      peerAddress: new Address('127.0.0.1'),
      randomInt: (min) => min + CAPTURE_CIRC_OFFSET,
      circuit: { randomBytes: (n) => CAPTURE_X.subarray(0, n) },
    },
  );
  socket.once('secureConnect', () => {
    tlsCertificate = new Uint8Array(socket.getPeerX509Certificate()?.raw ?? []);
    channel.start();
  });
  socket.on('data', (chunk: Buffer) => {
    chunks.push(new Uint8Array(chunk));
    channel.handleBytes(chunk);
  });
  socket.once('error', reject);
});
await done;
socket.destroy();

const out = {
  description: `One client session with ${node.nick} of a private tor network, as the bytes came out of TLS (scripts/capture-session.ts)`,
  torVersion,
  capturedAt: new Date().toISOString(),
  linkProtocol,
  circId,
  x: toHex(CAPTURE_X),
  requests: CAPTURE_REQUESTS,
  tlsCertificate: toHex(tlsCertificate),
  chunks: chunks.map(toHex),
};
const file = process.argv[2];
const text = JSON.stringify(out, null, 1) + '\n';
if (file) writeFileSync(file, text);
else process.stdout.write(text);
process.stderr.write(`captured ${chunks.length} chunks, ${chunks.reduce((n, c) => n + c.length, 0)} bytes, link protocol ${linkProtocol}, circuit ${circId.toString(16)}\n`);
