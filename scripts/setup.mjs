// scripts/setup.mjs — one-time set-up run before `npm test` and `npm run demo`.
// Plain Node (no dependencies), so it works on a fresh checkout:
//  1. tor, python3-stem and curl (the tests' SOCKS client) from Debian (apt-get), if missing; if the package's own daemon
//     runs (its pid file), it is stopped by that pid;
//  2. `npm ci` when node_modules is missing or older than package-lock.json;
//  3. `npm run build` (dist/ for the CLI and the demo).
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';

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

if (process.env.ORPORT_SKIP_APT !== '1' && (!has('tor') || !has('tor-gencert') || !has('curl') || !hasStem())) {
  if (process.getuid?.() !== 0) {
    log('tor, curl or python3-stem is missing; run as root, or: sudo apt-get install -y tor python3-stem curl');
    process.exit(1);
  }
  log('installing tor, python3-stem and curl from Debian');
  run('apt-get', ['update']);
  // Debian's tor package would start a daemon in the host's network namespace; forbid
  // service starts while installing (policy-rc.d exit 101) and check afterwards.
  run('sh', ['-c', `set -e
    created=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; created=1; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y tor python3-stem curl
    if [ $created = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi`]);
}
// If the package started its daemon anyway, stop that one process by its pid (the
// package's pid file, or its service), never by name: other tor processes on this
// machine are not ours to end.
const pidFile = '/run/tor/tor.pid';
if (existsSync(pidFile)) {
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  let alive = false;
  try { alive = Number.isInteger(pid) && pid > 0 && process.kill(pid, 0); } catch { alive = false; }
  if (alive) {
    log(`the tor package's daemon (pid ${pid}, ${pidFile}) is running in this machine's network; stopping it`);
    spawnSync('sh', ['-c', `service tor stop >/dev/null 2>&1 || kill ${pid} 2>/dev/null`], { stdio: 'ignore' });
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
