/**
 * CGO relay crypto (prop 359) against tor 0.4.9 exits on the private network: the
 * relays' consensus `pr` lines list Relay=6 (with FlowCtrl=2, Relay=5), buildCircuit({
 * relayCrypto: 'cgo' }) negotiates CGO with the exit only (the ntor v3 subprotocol
 * request next to the congestion-control request, as tor 0.4.9's client does), and on
 * such a circuit — V1 messages and 16-byte SENDME tags at the exit, tor1 on the others —
 * a 20 MiB download and a 5 MiB upload come out intact, with the exit's circuit SENDMEs
 * (tags checked) arriving every sendme_inc cells.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { TorClient } from '../../src/client/torclient.js';
import { offersCgo } from '../../src/client/handshakes.js';
import { loadTestnet, testnetSkipReason } from './testnet.js';
import { download, echoRoundTrip, startClientAndEcho, type ClientAndEcho } from './streamhelp.js';

describe('CGO relay crypto with tor 0.4.9 exits', { skip: testnetSkipReason() }, () => {
  let client: TorClient;
  let echoPort: number;
  let fixture: ClientAndEcho | undefined;
  const net = () => loadTestnet();
  const path = () => new URL(net().http.url).pathname;
  before(async () => {
    fixture = await startClientAndEcho();
    ({ client, echoPort } = fixture);
  });
  after(() => fixture?.close());

  it("every relay's consensus pr line offers CGO (FlowCtrl=2, Relay=5, Relay=6)", () => {
    const relays = client.consensus.relays;
    assert.ok(relays.length > 0);
    for (const r of relays) assert.ok(offersCgo(r), `${r.nickname}: pr Relay=${r.protocols.Relay} FlowCtrl=${r.protocols.FlowCtrl}`);
  });

  it("negotiated with the exit only; 20 MiB down intact", async () => {
    const circuit = await client.buildCircuit({ exitPort: net().http.port, relayCrypto: 'cgo' });
    try {
      assert.deepEqual(circuit.hops.map((h) => h.relayCrypto), ['tor1', 'tor1', 'cgo']);
      assert.ok(circuit.hops[2]!.congestionControl, 'CGO comes with congestion control');
      const got = await download(await circuit.openStream('127.0.0.1', net().http.port), path());
      assert.equal(got.sha256, net().http.fileSha256);
      const c = circuit.counters;
      const sendmeInc = circuit.hops[2]!.congestionControl!.sendmeInc;
      assert.ok(c.dataIn > 20 * 1024 * 1024 / 488, `${c.dataIn} DATA cells (V1 holds 488 bytes each)`);
      assert.ok(c.sendmesOut >= Math.floor(c.dataIn / sendmeInc) - 1, `${c.sendmesOut} SENDMEs for ${c.dataIn} DATA cells`);
    } finally {
      await circuit.close();
    }
  });

  it('5 MiB up intact; the exit acknowledges every sendme_inc cells with our CGO tags', async () => {
    const circuit = await client.buildCircuit({ exitPort: echoPort, relayCrypto: 'cgo' });
    try {
      assert.equal(circuit.hops[2]!.relayCrypto, 'cgo');
      const sendmeInc = circuit.hops[2]!.congestionControl!.sendmeInc;
      const stream = await circuit.openStream('127.0.0.1', echoPort);
      assert.ok((await echoRoundTrip(stream, 5 * 1024 * 1024)).intact, '5 MiB echoed intact');
      const c = circuit.counters;
      const expected = Math.floor(c.dataOut / sendmeInc);
      assert.ok(c.sendmesIn >= expected - 2 && c.sendmesIn <= expected + 1, `${c.sendmesIn} SENDMEs from the exit for our ${c.dataOut} DATA cells (sendme_inc ${sendmeInc})`);
      stream.destroy();
    } finally {
      await circuit.close();
    }
  });

  it("relayCrypto 'tor1' (the default) never asks", async () => {
    const circuit = await client.buildCircuit({ exitPort: net().http.port });
    try {
      assert.deepEqual(circuit.hops.map((h) => h.relayCrypto), ['tor1', 'tor1', 'tor1']);
    } finally {
      await circuit.close();
    }
  });
});
