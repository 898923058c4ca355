/**
 * testnet/isolation — makes sure tor can only ever talk to 127.0.0.1.
 *
 * `checkIsolation()` inspects the current network namespace: it must differ
 * from pid 1's (when pid 1's is readable; in some sandboxes it is not), have
 * no interface but `lo`, have `lo` up, and have no IPv4 or IPv6 default route.
 * Interfaces and routes are read through `ip` (netlink, which answers for the
 * caller's namespace) and cross-checked with /proc/self/net (also per
 * namespace). /sys/class/net is NOT used: sysfs shows the namespace of whoever
 * mounted it, which is the host's even inside `unshare --net`.
 *
 * `ensureIsolated()` brings `lo` up in a fresh namespace and, as root outside
 * one, re-executes the current node command under `unshare --net` (it never
 * loops: the child is marked through the environment). This module starts no
 * tor and opens no socket.
 */
import { execFileSync, spawn } from 'node:child_process';
import { accessSync, constants, readFileSync, readlinkSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { EnvironmentError } from '../errors.js';
import { IsolationError } from './errors.js';

/** Set in the environment of a process re-executed under `unshare --net`. */
export const REEXEC_MARK_ENV = 'ORPORT_TESTNET_REEXECED';
/** The network namespace of the process that re-executed us (must differ from ours). */
export const PARENT_NETNS_ENV = 'ORPORT_TESTNET_PARENT_NETNS';

export interface InterfaceState {
  readonly name: string;
  readonly up: boolean;
}

export interface IsolationStatus {
  readonly isolated: boolean;
  /** e.g. `net:[4026532176]` */
  readonly netns: string;
  /** pid 1's namespace, or undefined when it cannot be read (some sandboxes hide it even from root). */
  readonly pid1Netns: string | undefined;
  readonly interfaces: readonly InterfaceState[];
  readonly defaultRoutes: readonly string[];
  /** Empty when isolated; otherwise one sentence per problem. */
  readonly problems: readonly string[];
}

const SEARCH_DIRS = ['/usr/sbin', '/sbin', '/usr/bin', '/bin', '/usr/local/sbin', '/usr/local/bin'];

/** Finds an executable in PATH and the usual sbin directories (root's PATH is not always set). */
export function findExecutable(name: string): string | undefined {
  if (name.includes('/')) return isExecutable(name) ? name : undefined;
  const dirs = [...(process.env.PATH ?? '').split(':').filter(Boolean), ...SEARCH_DIRS];
  for (const dir of dirs) {
    const candidate = `${dir}/${name}`;
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function ipCommand(): string {
  const ip = findExecutable('ip');
  if (!ip) throw new EnvironmentError("the 'ip' command (iproute2) is needed to inspect the network namespace; install it with: apt-get install -y iproute2");
  return ip;
}

function runIp(args: readonly string[]): string {
  return execFileSync(ipCommand(), args, { encoding: 'utf8', timeout: 5000, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Parses `ip -o link show`: one line per interface, `2: eth0@if5: <BROADCAST,UP,LOWER_UP> …`. */
export function parseIpLink(output: string): InterfaceState[] {
  const result: InterfaceState[] = [];
  for (const line of output.split('\n')) {
    const match = /^\d+:\s+([^:@\s]+)(?:@[^:\s]+)?:\s+<([^>]*)>/.exec(line);
    if (!match) continue;
    const flags = (match[2] ?? '').split(',');
    result.push({ name: match[1] ?? '', up: flags.includes('UP') });
  }
  return result;
}

/** Interface names from /proc/self/net/dev (two header lines, then `  lo: 123 …`). */
export function parseProcNetDev(text: string): string[] {
  return text
    .split('\n')
    .slice(2)
    .map((line) => line.split(':')[0]?.trim() ?? '')
    .filter((name) => name !== '');
}

/** Default routes in /proc/self/net/route (destination and mask 00000000). */
export function parseProcNetRouteDefaults(text: string): string[] {
  const found: string[] = [];
  for (const line of text.split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 8) continue;
    if (fields[1] === '00000000' && fields[7] === '00000000') found.push(`ipv4 default via ${hexToIpv4(fields[2] ?? '')} dev ${fields[0]}`);
  }
  return found;
}

function hexToIpv4(littleEndianHex: string): string {
  const value = Number.parseInt(littleEndianHex, 16);
  if (!Number.isFinite(value)) return littleEndianHex;
  return [value & 0xff, (value >>> 8) & 0xff, (value >>> 16) & 0xff, (value >>> 24) & 0xff].join('.');
}

function readlinkOrUndefined(path: string): string | undefined {
  try {
    return readlinkSync(path);
  } catch {
    return undefined;
  }
}

/** Inspects the current network namespace. Never throws for an unisolated namespace: see `problems`. */
export function checkIsolation(): IsolationStatus {
  const netns = readlinkOrUndefined('/proc/self/ns/net') ?? 'unknown';
  const pid1Netns = readlinkOrUndefined('/proc/1/ns/net');
  const problems: string[] = [];

  if (netns === 'unknown') problems.push('cannot read /proc/self/ns/net');
  if (pid1Netns !== undefined && pid1Netns === netns) problems.push(`this is pid 1's (the host's) network namespace ${netns}`);
  const parentNetns = process.env[PARENT_NETNS_ENV];
  if (parentNetns && parentNetns === netns) problems.push(`still in the parent's network namespace ${netns} after re-executing`);

  const interfaces = parseIpLink(runIp(['-o', 'link', 'show']));
  let procNames: string[] = [];
  try {
    procNames = parseProcNetDev(readFileSync('/proc/self/net/dev', 'utf8'));
  } catch {
    problems.push('cannot read /proc/self/net/dev');
  }
  const names = new Set([...interfaces.map((i) => i.name), ...procNames]);
  const others = [...names].filter((name) => name !== 'lo').sort();
  if (others.length > 0) problems.push(`interfaces other than lo exist: ${others.join(', ')}`);
  const lo = interfaces.find((i) => i.name === 'lo');
  if (!lo) problems.push('there is no lo interface');
  else if (!lo.up) problems.push('lo is down');

  const defaultRoutes: string[] = [];
  for (const family of ['-4', '-6']) {
    for (const line of runIp([family, 'route', 'show', 'default']).split('\n')) {
      if (line.trim() !== '') defaultRoutes.push(`${family === '-4' ? 'ipv4' : 'ipv6'} ${line.trim()}`);
    }
  }
  try {
    for (const route of parseProcNetRouteDefaults(readFileSync('/proc/self/net/route', 'utf8'))) {
      if (!defaultRoutes.some((r) => r.startsWith('ipv4 '))) defaultRoutes.push(route);
    }
  } catch {
    // /proc/self/net/route is absent without IPv4; `ip` already answered.
  }
  if (defaultRoutes.length > 0) problems.push(`there is a default route (${defaultRoutes.join('; ')})`);

  return { isolated: problems.length === 0, netns, pid1Netns, interfaces, defaultRoutes, problems };
}

/** Throws an IsolationError unless the namespace is isolated. Used right before any tor starts. */
export function assertIsolated(): IsolationStatus {
  const status = checkIsolation();
  if (!status.isolated) throw new IsolationError(status.problems, isolationAdvice());
  return status;
}

function isolationAdvice(): string {
  return process.getuid?.() === 0
    ? 'Run the command through `orport testnet`, `npm test`, or `unshare --net <command>` (they create one).'
    : 'Run as root (it then re-executes itself under `unshare --net`), or inside `unshare --user --map-root-user --net <command>`.';
}

/** Brings lo up; meant for a fresh namespace made by `unshare --net`, where it starts down. */
export function bringLoopbackUp(): void {
  runIp(['link', 'set', 'lo', 'up']);
}

export type EnsureIsolatedOutcome =
  | { readonly kind: 'isolated'; readonly status: IsolationStatus }
  /** The command ran again in a new namespace and finished there; exit with `exitCode`. */
  | { readonly kind: 'reexecuted'; readonly exitCode: number };

export interface EnsureIsolatedOptions {
  /** The command to run again under `unshare --net`; default: this node process's own command line. */
  readonly command?: readonly string[];
  /** Log sink for one line saying that we re-execute. */
  readonly log?: (message: string) => void;
}

/**
 * Returns `isolated` when this process may start tor (bringing lo up first if
 * this is a fresh namespace), or re-executes the command under `unshare --net`
 * as root and returns its exit status. Otherwise throws an IsolationError.
 */
export async function ensureIsolated(options: EnsureIsolatedOptions = {}): Promise<EnsureIsolatedOutcome> {
  let status = checkIsolation();
  const onlyLoIsDown = status.problems.length === 1 && status.problems[0] === 'lo is down';
  if (onlyLoIsDown) {
    bringLoopbackUp();
    status = checkIsolation();
  }
  if (status.isolated) return { kind: 'isolated', status };
  if (process.env[REEXEC_MARK_ENV] === '1' || process.getuid?.() !== 0) {
    throw new IsolationError(status.problems, isolationAdvice());
  }
  const command = options.command ?? [process.execPath, ...process.execArgv, ...process.argv.slice(1)];
  options.log?.(`not in an isolated network namespace (${status.problems.join('; ')}); re-executing under unshare --net`);
  return { kind: 'reexecuted', exitCode: await reexecInNamespace(command, status.netns) };
}

/**
 * Runs `command` under `unshare --net` with inherited stdio and resolves to its
 * exit status (128 + signal number when killed). SIGTERM and SIGHUP are
 * forwarded; SIGINT too (a terminal's Ctrl-C reaches both processes, and the
 * child treats a repeated SIGINT as the same request).
 */
export function reexecInNamespace(command: readonly string[], parentNetns: string): Promise<number> {
  const unshare = findExecutable('unshare');
  if (!unshare) return Promise.reject(new EnvironmentError("the 'unshare' command (util-linux) is needed to create a network namespace; install it with: apt-get install -y util-linux"));
  const [file, ...args] = command;
  if (file === undefined) return Promise.reject(new EnvironmentError('no command to re-execute'));
  return new Promise<number>((resolve, reject) => {
    const child = spawn(unshare, ['--net', '--', file, ...args], {
      stdio: 'inherit',
      env: { ...process.env, [REEXEC_MARK_ENV]: '1', [PARENT_NETNS_ENV]: parentNetns },
    });
    const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
    const forward = (signal: NodeJS.Signals): void => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    };
    for (const signal of signals) process.on(signal, forward);
    const cleanup = (): void => {
      for (const signal of signals) process.off(signal, forward);
    };
    child.once('error', (err) => {
      cleanup();
      reject(new EnvironmentError(`cannot run unshare: ${err.message}`, { cause: err }));
    });
    child.once('exit', (code, signal) => {
      cleanup();
      resolve(code ?? signalExitCode(signal));
    });
  });
}

/** 128 + the signal's number, as a shell reports a process killed by it. */
export function signalExitCode(signal: NodeJS.Signals | null): number {
  return 128 + (signal ? (osConstants.signals[signal] ?? 0) : 0);
}
