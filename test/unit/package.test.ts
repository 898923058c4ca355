/**
 * The published package, as a user gets it: `npm pack`, installed into a scratch project,
 * then `import('orport/cell')`, `import('orport/datatype')`, `import('orport/http')` and `import('orport')` from
 * there. Stem's module shape is the entries' shape; framing helpers stay internal; every
 * entry has its types. Needs `npm run build` first (npm test's set-up does it).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';

const root = resolve(dirname(new URL(import.meta.url).pathname), '../..');

test('npm pack → npm install in a scratch project → the entries import, with types', { timeout: 120_000 }, () => {
  assert.ok(existsSync(join(root, 'dist/cell.js')), 'dist/ is built (npm run build)');
  const scratch = mkdtempSync(join(tmpdir(), 'orport-pack-'));
  try {
    execFileSync('npm', ['pack', '--silent', '--pack-destination', scratch], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    const tarball = readdirSync(scratch).find((f) => f.endsWith('.tgz'));
    assert.ok(tarball, 'npm pack wrote a tarball');
    // No registry here (a test reaches loopback only), and after `npm ci` npm's cache holds
    // tarballs but no registry metadata: the runtime dependencies, packed from node_modules,
    // are installed beside the package so npm resolves nothing remotely.
    const deps = execFileSync('npm', ['ls', '--omit=dev', '--all', '--parseable'], { cwd: root }).toString().trim().split('\n').slice(1);
    assert.ok(deps.length >= 2, `runtime dependencies: ${deps.join(', ')}`);
    for (const dir of deps) execFileSync('npm', ['pack', '--silent', '--ignore-scripts', '--pack-destination', scratch], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    const tarballs = readdirSync(scratch).filter((f) => f.endsWith('.tgz')).map((f) => `./${f}`);
    writeFileSync(join(scratch, 'package.json'), JSON.stringify({ name: 'scratch', private: true, type: 'module' }));
    try {
      execFileSync('npm', ['install', '--offline', '--ignore-scripts', '--no-audit', '--no-fund', '--silent', ...tarballs], { cwd: scratch, stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (err) {
      assert.fail(`npm install ${tarballs.join(' ')} in the scratch project failed: ${String((err as { stderr?: Buffer }).stderr ?? err)}`);
    }
    const script = `
      const cell = await import('orport/cell');
      const datatype = await import('orport/datatype');
      const all = await import('orport');
      const testing = await import('orport/testing');
      const http = await import('orport/http');
      console.log(JSON.stringify({
        cell: Object.keys(cell).sort(), datatype: Object.keys(datatype).sort(), all: Object.keys(all).sort(),
        testing: typeof testing.startFakeRelay,
        http: [typeof http.createDispatcher, typeof http.torFetch, typeof http.createHttpAgent, typeof http.createHttpsAgent],
        pop: cell.Cell.pop(new cell.VersionsCell([3, 4, 5]).pack(2), 2).cell.versions,
      }));`;
    const out = JSON.parse(execFileSync('node', ['--input-type=module', '-e', script], { cwd: scratch }).toString()) as {
      cell: string[]; datatype: string[]; all: string[]; testing: string; http: string[]; pop: number[];
    };
    for (const name of ['Cell', 'CircuitCell', 'RelayCell', 'VersionsCell', 'NetinfoCell', 'CertsCell', 'UnknownCell', 'cellByName', 'cellByValue', 'CELL_TYPES']) {
      assert.ok(out.cell.includes(name), `orport/cell exports ${name}`);
    }
    for (const name of ['readFrame', 'writeCellHeader', 'writeRelayHeader', 'decodeFrame', 'registerCells', 'frameCell']) {
      assert.ok(!out.cell.includes(name) && !out.all.includes(name), `${name} stays internal`);
    }
    for (const name of ['Size', 'Address', 'Certificate', 'LinkProtocol', 'LinkSpecifier', 'KDF', 'RelayCommand', 'split']) {
      assert.ok(out.datatype.includes(name), `orport/datatype exports ${name}`);
    }
    for (const name of [...out.cell, ...out.datatype]) assert.ok(out.all.includes(name), `orport exports ${name} too`);
    assert.equal(out.testing, 'function');
    assert.deepEqual(out.http, ['function', 'function', 'function', 'function'], 'orport/http has the HTTP adapters');
    assert.deepEqual(out.pop, [3, 4, 5]);
    for (const types of ['index.d.ts', 'cell.d.ts', 'datatype.d.ts', 'testing/index.d.ts', 'adapters/http.d.ts']) {
      assert.ok(existsSync(join(scratch, 'node_modules/orport/dist', types)), `the package has dist/${types}`);
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
});
