/** The README's examples run against the private network and print what they promise. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { relays, testnetSkipReason } from './testnet.js';
import { runDemo } from '../../src/cli/demo.js';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));

describe('examples', { skip: testnetSkipReason() }, () => {
  it('examples/one-hop-directory.ts lists every relay of the network', async () => {
    const node = relays()[0]!;
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'examples/one-hop-directory.ts', '127.0.0.1', String(node.orPort)], { cwd: root, timeout: 30_000 });
    assert.match(stdout, /^link protocol 5/m);
    assert.match(stdout, new RegExp(`HTTP 200: ${relays().length} relays`));
    for (const r of relays()) assert.ok(stdout.includes(r.fingerprint), `${r.nick} listed`);
  });

  it("orport demo's job: every relay in the table, the asked relay's identity proven", async () => {
    const node = relays()[0]!;
    const report = await runDemo(node);
    assert.deepEqual(report.identity, { rsa: node.fingerprint, ed25519: node.ed25519 });
    assert.equal(report.consensus.length, relays().length);
    assert.equal(report.descriptors.length, relays().length);
    for (const r of relays()) assert.match(report.table, new RegExp(`^${r.nick}\\s+${r.fingerprint}\\s+127\\.0\\.0\\.1:${r.orPort}`, 'm'));
  });
});
