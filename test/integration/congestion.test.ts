/**
 * Congestion control (prop 324) against tor 0.4.9 exits on the private network: buildCircuit
 * negotiates it with the exit (ntor v3's extension; the exit answers sendme_inc), a 20 MiB
 * download and a 5 MiB upload come out intact on such a circuit, the exit's circuit
 * SENDMEs arrive every sendme_inc cells of our upload (not every 100: the wire shows the
 * negotiation) and no stream SENDME ever comes, and a reader paused for 5 s gets an XOFF
 * sent for it and an XON once it drains, with the buffer bounded. `congestionControl:
 * false` builds with fixed windows.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { TorClient } from '../../src/client/torclient.js';
import { loadTestnet, testnetSkipReason } from './testnet.js';
import { download, echoRoundTrip, startClientAndEcho, type ClientAndEcho } from './streamhelp.js';
import { relayNodes } from '../../src/testnet/description.js';
import { EXIT_CIRC_LOG } from '../../src/testnet/torrc.js';


describe('congestion control with tor 0.4.9 exits', { skip: testnetSkipReason() }, () => {
  let client: TorClient;
  let echoPort: number;
  let fixture: ClientAndEcho | undefined;
  const net = () => loadTestnet();
  const path = () => new URL(net().http.url).pathname;
  /** The exit's own Vegas lines (tor logs one per congestion-window update, info, domain circ). */
  const vegasLines = (rsa: string): string[] => {
    const node = relayNodes(net()).find((n) => n.fingerprint === rsa);
    assert.ok(node, `exit ${rsa} is a node of the test network`);
    let text = '';
    try {
      text = readFileSync(join(node.dataDir, EXIT_CIRC_LOG), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    return text.split('\n').filter((line) => line.includes('CC: TOR_VEGAS'));
  };
  before(async () => {
    fixture = await startClientAndEcho();
    ({ client, echoPort } = fixture);
  });
  after(() => fixture?.close());

  it('negotiated with the exit only; 20 MiB down intact', async () => {
    const circuit = await client.buildCircuit({ exitPort: net().http.port });
    try {
      assert.deepEqual(circuit.hops.map((h) => h.congestionControl !== undefined), [false, false, true]);
      const sendmeInc = circuit.hops[2]!.congestionControl!.sendmeInc;
      assert.ok(sendmeInc >= 30 && sendmeInc <= 32, `sendme_inc ${sendmeInc}`);
      // The network votes the public network's data-path parameters (testnet PUBLIC_DATA_PATH_PARAMS), and we read them.
      const params = client.consensus.params;
      assert.equal(params.KISTSchedRunInterval, 3);
      assert.equal(params.cc_cwnd_inc_rate, 31);
      const vegasBefore = vegasLines(circuit.hops[2]!.rsa).length;
      const got = await download(await circuit.openStream('127.0.0.1', net().http.port), path());
      assert.equal(got.sha256, net().http.fileSha256);
      // The exit's side of the negotiation: it ran Vegas on our circuit SENDMEs.
      const vegas = vegasLines(circuit.hops[2]!.rsa).slice(vegasBefore);
      console.log(`# exit ${circuit.hops[2]!.nickname}: ${vegas.length} Vegas updates during the download; last: ${vegas.at(-1)?.replace(/^.*CC: /, 'CC: ')}`);
      assert.ok(vegas.length > 0, `the exit's ${EXIT_CIRC_LOG} shows congestion control running on the circuit`);
      const c = circuit.counters;
      // Our circuit SENDMEs: one per sendme_inc DATA cells from the exit (≈ 43,000 cells / 31), none per stream.
      assert.ok(c.sendmesOut >= Math.floor(c.dataIn / sendmeInc) - 1 && c.sendmesOut <= Math.ceil(c.dataIn / sendmeInc) + 1, `${c.sendmesOut} SENDMEs for ${c.dataIn} DATA cells`);
    } finally {
      await circuit.close();
    }
  });

  it('5 MiB up intact; the exit acknowledges every sendme_inc cells and sends no stream SENDME', async () => {
    const circuit = await client.buildCircuit({ exitPort: echoPort });
    try {
      const sendmeInc = circuit.hops[2]!.congestionControl!.sendmeInc;
      const stream = await circuit.openStream('127.0.0.1', echoPort);
      assert.ok((await echoRoundTrip(stream, 5 * 1024 * 1024)).intact, '5 MiB echoed intact');
      const c = circuit.counters;
      const expected = Math.floor(c.dataOut / sendmeInc);
      assert.ok(c.sendmesIn >= expected - 2 && c.sendmesIn <= expected + 1, `${c.sendmesIn} SENDMEs from the exit for our ${c.dataOut} DATA cells (sendme_inc ${sendmeInc}; fixed windows would give ${Math.floor(c.dataOut / 100)})`);
      stream.destroy();
    } finally {
      await circuit.close();
    }
  });

  it('a reader paused 5 s: XOFF goes out, XON after it drains; the buffer stays bounded; sha256 right', async () => {
    const circuit = await client.buildCircuit({ exitPort: net().http.port });
    try {
      const stream = await circuit.openStream('127.0.0.1', net().http.port);
      let paused = false;
      let buffered = 0;
      let xoffsDuringPause = 0;
      const heapBefore = process.memoryUsage().heapUsed;
      let heapDuring = 0;
      const got = await download(stream, path(), async (bytes) => {
        if (!paused && bytes > 2 * 1024 * 1024) {
          paused = true;
          await sleep(5000);
          buffered = stream.readableLength;
          xoffsDuringPause = circuit.counters.xoffsOut;
          heapDuring = process.memoryUsage().heapUsed;
        }
      });
      assert.equal(got.sha256, net().http.fileSha256);
      console.log(`# paused 5 s with congestion control: ${buffered} bytes buffered, heap growth ${((heapDuring - heapBefore) / 1048576).toFixed(1)} MiB, XOFF ${circuit.counters.xoffsOut}, XON ${circuit.counters.xonsOut}`);
      assert.ok(xoffsDuringPause >= 1, 'an XOFF went out while the reader was paused');
      assert.ok(circuit.counters.xonsOut >= 1, 'an XON once it drained');
      // The XOFF limit (cc_xoff_client 500 × 488 B) plus what was in flight (a congestion window).
      assert.ok(buffered < 4 * 1024 * 1024, `${buffered} bytes buffered`);
    } finally {
      await circuit.close();
    }
  });

  it('congestionControl: false builds with fixed windows', async () => {
    const circuit = await client.buildCircuit({ exitPort: net().http.port, congestionControl: false });
    try {
      assert.ok(circuit.hops.every((h) => h.congestionControl === undefined));
      const got = await download(await circuit.openStream('127.0.0.1', net().http.port), path());
      assert.equal(got.sha256, net().http.fileSha256);
    } finally {
      await circuit.close();
    }
  });
});
