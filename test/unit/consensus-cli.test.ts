/**
 * `orport consensus` against fake directory caches (orport/testing) serving signed
 * synthetic documents: the summary (who signed, validity, relay count, flags, bandwidth)
 * as text and JSON, the cache reused on a second run, and exit status 1 with the
 * DirectoryError's message when the consensus does not verify.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { deflateSync } from 'node:zlib';
import { startFakeRelay, type FakeRelay } from '../../src/testing/fakerelay.js';
import { dirAuthorityTorrc, makeAuthorities, makeConsensus, makeRelays, type SyntheticAuthority, type SyntheticRelay } from '../../src/testing/dirdocs.js';

const root = resolve(dirname(new URL(import.meta.url).pathname), '../..');
let dir: string;
let authorities: SyntheticAuthority[];
let relays: SyntheticRelay[];
const fakes: FakeRelay[] = [];

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'orport-consensus-cli-'));
  authorities = makeAuthorities(3);
  relays = makeRelays(30);
});
after(async () => {
  await Promise.all(fakes.map((f) => f.close()));
  rmSync(dir, { recursive: true, force: true });
});

/** Fake caches serving `consensus` (and the given certificates), and a network file naming `authorities` at them. */
async function networkFile(name: string, consensus: string, certs: readonly SyntheticAuthority[]): Promise<string> {
  const started: FakeRelay[] = [];
  for (let i = 0; i < authorities.length; i++) {
    const fake = await startFakeRelay({
      documents: (path) => {
        if (path.startsWith('/tor/status-vote/')) return deflateSync(consensus);
        if (path.startsWith('/tor/keys/')) return deflateSync(certs.map((a) => a.certificate).join(''));
        if (path.startsWith('/tor/micro/d/')) {
          const wanted = new Set(path.slice(13).replace(/\.z$/, '').split('-'));
          return deflateSync(relays.filter((r) => wanted.has(r.microdescDigest)).map((r) => r.microdesc).join(''));
        }
        return undefined;
      },
    });
    fakes.push(fake);
    started.push(fake);
  }
  const file = join(dir, `${name}.torrc`);
  writeFileSync(file, dirAuthorityTorrc(started.map((f, i) => ({ authority: authorities[i]!, orPort: f.port, rsa: f.identity.rsa }))));
  return file;
}

/** Runs the CLI in a child process (asynchronously: the fake caches live in this one). */
function orport(...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(process.execPath, ['--import', 'tsx', join(root, 'src/cli/main.ts'), ...args], { cwd: root, encoding: 'utf8', timeout: 60_000 }, (err, stdout, stderr) => {
      done({ status: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr });
    });
  });
}

test('orport consensus: who signed, validity, relays, flags, bandwidth; --json; the cache on a second run', async () => {
  const validAfter = new Date(Date.now() - 30 * 60_000);
  const file = await networkFile('good', makeConsensus({ authorities, relays, validAfter }), authorities);
  const text = await orport('consensus', '--network', file);
  assert.equal(text.status, 0, text.stderr);
  assert.match(text.stdout, new RegExp(`consensus valid-after ${validAfter.toISOString().slice(0, 19)}`));
  assert.match(text.stdout, /signed by 3 of 3 authorities: auth[0-2], auth[0-2], auth[0-2]/);
  assert.match(text.stdout, /30 relays \(30 with microdescriptors\), total bandwidth [\d,]+ kB\/s/);
  assert.match(text.stdout, /flags: .*Running 30/);

  const cacheDir = join(dir, 'cache');
  const first = await orport('consensus', '--network', file, '--cache-dir', cacheDir, '--json');
  assert.equal(first.status, 0, first.stderr);
  const a = JSON.parse(first.stdout);
  assert.equal(a.relays, 30);
  assert.equal(a.totalBandwidth, relays.reduce((s, r) => s + r.bandwidth, 0));
  assert.equal(a.fromCache.consensus, false);
  const second = JSON.parse((await orport('consensus', '--network', file, '--cache-dir', cacheDir, '--json')).stdout);
  assert.equal(second.fromCache.consensus, true);
  assert.equal(second.fromCache.microdescs, 30);
  assert.deepEqual(second.requests, {});
});

test('orport consensus: exit status 1 with the DirectoryError when the consensus does not verify', async () => {
  const strangers = makeAuthorities(3);
  const file = await networkFile('strangers', makeConsensus({ authorities: strangers, relays, validAfter: new Date(Date.now() - 60_000) }), strangers);
  const r = await orport('consensus', '--network', file, '--timeout', '20000');
  assert.equal(r.status, 1);
  assert.match(r.stderr, /not trusted: 0 of the 3 configured authorities signed validly, 2 needed.*\[E_DIR_SIGNATURES\]/);

  const expired = await networkFile('expired', makeConsensus({ authorities, relays, validAfter: new Date(Date.now() - 5 * 3600_000) }), authorities);
  const e = await orport('consensus', '--network', expired, '--timeout', '20000');
  assert.equal(e.status, 1);
  assert.match(e.stderr, /the consensus expired at .*\[E_DIR_EXPIRED\]/);
});

test('orport consensus: usage errors exit 2', async () => {
  const r = await orport('consensus', 'extra');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /unexpected argument 'extra'/);
  const missing = await orport('consensus', '--network', join(dir, 'no-such-file'));
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /no-such-file/);
});
