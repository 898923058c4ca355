// scripts/setup.mjs — one-time set-up run before `npm test` and `npm run demo`.
// Plain Node (no dependencies), so it works on a fresh checkout:
//  1. tor and python3-stem from Debian (apt-get), if missing, checking afterwards that
//     the package started no tor daemon;
//  2. `npm ci` when node_modules is missing or older than package-lock.json;
//  3. `npm run build` (dist/ for the CLI and the demo).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';

const root = new URL('..', import.meta.url).pathname;
const log = (msg) => process.stderr.write(`[setup] ${msg}\n`);
const run = (cmd, args, opts = {}) => {
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: root, ...opts });
  if (r.status !== 0) {
    log(`'${cmd} ${args.join(' ')}' failed with status ${r.status ?? r.signal}`);
    process.exit(1);
  }
};
const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
const hasStem = () => spawnSync('/usr/bin/python3', ['-c', 'import stem.client'], { stdio: 'ignore' }).status === 0;

if (process.env.ORPORT_SKIP_APT !== '1' && (!has('tor') || !has('tor-gencert') || !hasStem())) {
  if (process.getuid?.() !== 0) {
    log('tor and python3-stem are missing; run as root, or: sudo apt-get install -y tor python3-stem');
    process.exit(1);
  }
  log('installing tor and python3-stem from Debian');
  run('apt-get', ['update']);
  // Debian's tor package would start a daemon in the host's network namespace; forbid
  // service starts while installing (policy-rc.d exit 101) and check afterwards.
  run('sh', ['-c', `set -e
    created=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; created=1; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y tor python3-stem
    if [ $created = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi`]);
}
if (has('pgrep')) {
  // This script runs in the namespace the user started it in (the host's, on a fresh
  // machine): a tor daemon sharing it is one the package started.
  const hostNs = (() => { try { return execFileSync('readlink', ['/proc/self/ns/net']).toString().trim(); } catch { return ''; } })();
  const pids = spawnSync('pgrep', ['-x', 'tor']).stdout.toString().split(/\s+/).filter(Boolean);
  for (const pid of pids) {
    let ns = '';
    try { ns = execFileSync('readlink', [`/proc/${pid}/ns/net`]).toString().trim(); } catch { continue; }
    if (hostNs && ns === hostNs) {
      log(`a tor daemon (pid ${pid}) runs in the host's network namespace; stopping it (service tor stop / kill)`);
      spawnSync('sh', ['-c', `service tor stop >/dev/null 2>&1; kill ${pid} 2>/dev/null`], { stdio: 'ignore' });
    }
  }
}

const lock = `${root}/package-lock.json`;
const stamp = `${root}/node_modules/.package-lock.json`;
if (!existsSync(stamp) || (existsSync(lock) && statSync(lock).mtimeMs > statSync(stamp).mtimeMs)) {
  log('npm ci');
  run('npm', ['ci', '--no-audit', '--no-fund']);
}
log('npm run build');
run('npm', ['run', '--silent', 'build']);
