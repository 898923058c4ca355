/**
 * scripts/capture-cert-vectors — captures every relay's CERTS cell and TLS certificate
 * from a running test network, as test data for the CERTS verification tests
 * (test/vectors/certs-testnet.json).
 *
 *   node --import tsx scripts/capture-cert-vectors.ts [OUT.json]
 *
 * Reads the network description from ORPORT_TESTNET_JSON (the project's format) or
 * TESTNET_JSON (nodes with nick/or_port/fingerprint/ed25519). The identities recorded
 * are the ones tor wrote itself (DataDirectory/fingerprint, fingerprint-ed25519) when
 * those files are readable, else the description's. Connects with verification off:
 * the point is the raw material.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { Relay } from '../src/client/relay.js';
import { toHex } from '../src/codec/bytes.js';

interface Target {
  nick: string;
  orPort: number;
  fingerprint: string;
  ed25519: string;
  dataDir: string | undefined;
}

function targets(): Target[] {
  const path = process.env.ORPORT_TESTNET_JSON ?? process.env.TESTNET_JSON;
  if (!path) throw new Error('set ORPORT_TESTNET_JSON (or TESTNET_JSON) to a test network description');
  const json = JSON.parse(readFileSync(path, 'utf8')) as { dir?: string; nodes: Record<string, unknown>[] };
  return json.nodes
    .filter((n) => typeof (n.orPort ?? n.or_port) === 'number')
    .map((n) => ({
      nick: String(n.nick),
      orPort: Number(n.orPort ?? n.or_port),
      fingerprint: String(n.fingerprint),
      ed25519: String(n.ed25519),
      dataDir: typeof n.dataDir === 'string' ? n.dataDir : json.dir ? join(json.dir, String(n.nick)) : undefined,
    }));
}

/** The identity tor wrote for itself, when its files are readable. */
function torWritten(t: Target): { fingerprint: string; ed25519: string; source: string } {
  try {
    if (!t.dataDir) throw new Error('no data directory');
    const fp = readFileSync(join(t.dataDir, 'fingerprint'), 'utf8').trim().split(/\s+/)[1]!;
    const ed = readFileSync(join(t.dataDir, 'fingerprint-ed25519'), 'utf8').trim().split(/\s+/)[1]!;
    return { fingerprint: fp, ed25519: ed, source: 'tor DataDirectory/fingerprint, fingerprint-ed25519' };
  } catch {
    return { fingerprint: t.fingerprint, ed25519: t.ed25519, source: 'network description' };
  }
}

let torVersion = 'unknown';
try {
  torVersion = execFileSync('tor', ['--version'], { encoding: 'utf8' }).split('\n')[0]!.trim();
} catch {
  // tor not on PATH here
}

const relays = [];
for (const t of targets()) {
  const relay = await Relay.connect('127.0.0.1', t.orPort, [3, 4, 5], { verifyCertificates: false });
  const capturedAt = new Date().toISOString();
  const identity = torWritten(t);
  relays.push({
    nick: t.nick,
    fingerprint: identity.fingerprint,
    ed25519: identity.ed25519,
    identitySource: identity.source,
    capturedAt,
    linkProtocol: relay.linkProtocol,
    tlsCertificate: toHex(relay.peerCertificate),
    certs: relay.certs.certificates.map((c) => ({ type: c.typeInt, value: toHex(c.value) })),
  });
  await relay.close();
}
const out = { description: 'CERTS cells and TLS certificates captured from the relays of a private tor network (scripts/capture-cert-vectors.ts)', torVersion, relays };
const file = process.argv[2];
if (file) writeFileSync(file, JSON.stringify(out, null, 1) + '\n');
else process.stdout.write(JSON.stringify(out, null, 1) + '\n');
